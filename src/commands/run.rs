//! `fpgate scan` and `fpgate gate`: resolve flags and fpgate.toml into one
//! set of settings, compile, walk, scan, build the report, check the lock,
//! write the outputs.

use crate::cli::{
    print_diagnostics, CheckArgs, CommonArgs, Format, GateArgs, OutputArgs, ReportTarget, ScanArgs,
};
use crate::corpus::{self, WalkOptions};
use crate::engine::{self, Outcome, ScanOptions};
use crate::error::{Error, Result};
use crate::exit::Exit;
use crate::render::human::{self, Style};
use crate::render::output;
use crate::rules::{self, CompileOptions, Ruleset};
use crate::settings::config::Config;
use crate::verdict::exceptions::{self, ExceptionSet};
use crate::verdict::report::{self, Inputs, Policy, Report, Timings};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub const DEFAULT_TIMEOUT_SECS: u64 = 60;
pub const DEFAULT_MAX_FILE_SIZE: u64 = 256 << 20;

/// Where the baseline comes from.
enum Baseline {
    None,
    Paths(Vec<PathBuf>),
    GitRef(String),
}

/// Everything a run needs, after flags and config are merged.
struct Settings {
    command: &'static str,
    candidate: Vec<PathBuf>,
    baseline: Baseline,
    corpus: Vec<PathBuf>,
    walk: WalkOptions,
    scan: ScanOptions,
    compile: CompileOptions,
    allow_incomplete: bool,
    exceptions: Option<ExceptionSet>,
    strict: bool,
    deny_warnings: bool,
    deny_codes: Vec<String>,
    lock: Option<PathBuf>,
    today: Option<jiff::civil::Date>,
    perf: Option<crate::verdict::perf::PerfOptions>,
    /// Results cache directory; `None`: no cache.
    cache: Option<PathBuf>,
    shard: Option<crate::shard::partial::Shard>,
}

pub fn scan(a: &ScanArgs) -> Result<Exit> {
    let cfg = Config::load(a.common.config.config.as_deref(), a.common.config.no_config)?;
    let rules = pick(
        &a.rules,
        &cfg,
        &cfg.rules.candidate,
        "--rules",
        "rules.candidate",
    )?;
    let s = settings("scan", rules, Baseline::None, &a.common, &cfg)?;
    execute(s, &a.common)
}

/// `fpgate check RULE_FILE...`: `scan` with only these rules over the
/// configured corpus; with `--watch`, again on every save.
pub fn check(a: &CheckArgs) -> Result<Exit> {
    let cfg = Config::load(a.common.config.config.as_deref(), a.common.config.no_config)?;
    if !a.watch {
        let s = settings("check", a.rules.clone(), Baseline::None, &a.common, &cfg)?;
        return execute(s, &a.common);
    }
    let stamp = || -> Vec<Option<std::time::SystemTime>> {
        rules::collect_rule_files(&a.rules)
            .unwrap_or_default()
            .iter()
            .map(|f| std::fs::metadata(f).and_then(|m| m.modified()).ok())
            .collect()
    };
    crate::util::interrupt::install_handler();
    loop {
        let seen = stamp();
        let s = settings("check", a.rules.clone(), Baseline::None, &a.common, &cfg)?;
        match execute(s, &a.common) {
            Ok(exit) => eprintln!(
                "fpgate check: {} (exit {}); waiting for changes, Ctrl-C to stop",
                exit.name(),
                exit.code()
            ),
            // A rule that does not compile yet is the normal state of a
            // rule being written: show the error and wait for the next save.
            Err(e) => {
                crate::cli::report_error("check", None, &e);
                eprintln!("fpgate check: waiting for changes, Ctrl-C to stop");
            }
        }
        while stamp() == seen {
            if crate::util::interrupt::interrupted() {
                return Ok(Exit::Pass);
            }
            std::thread::sleep(Duration::from_millis(300));
        }
        crate::util::interrupt::reset();
    }
}

pub fn gate(a: &GateArgs) -> Result<Exit> {
    let cfg = Config::load(a.common.config.config.as_deref(), a.common.config.no_config)?;
    let candidate = pick(
        &a.candidate,
        &cfg,
        &cfg.rules.candidate,
        "--candidate",
        "rules.candidate",
    )?;
    let baseline = if let Some(r) = &a.baseline_ref {
        Baseline::GitRef(r.clone())
    } else if !a.baseline.is_empty() {
        Baseline::Paths(a.baseline.clone())
    } else if let Some(r) = &cfg.rules.baseline_ref {
        Baseline::GitRef(r.clone())
    } else if !cfg.rules.baseline.is_empty() {
        Baseline::Paths(cfg.resolve_rules(&cfg.rules.baseline, "rules.baseline")?)
    } else {
        Baseline::None
    };
    let mut s = settings("gate", candidate, baseline, &a.common, &cfg)?;

    // Exceptions: an explicit file must exist; the default one may not.
    let (exc_path, required) = match (&a.exceptions, &cfg.exceptions.file) {
        (Some(p), _) => (p.clone(), true),
        (None, Some(p)) => (cfg.resolve(p), true),
        (None, None) => (cfg.resolve(Path::new(exceptions::DEFAULT_FILE)), false),
    };
    s.exceptions = exceptions::load(&exc_path, required)?;
    s.strict = a.strict || cfg.exceptions.strict.unwrap_or(false);
    s.deny_warnings = a.deny_warnings || cfg.warnings.deny.unwrap_or(false);
    s.deny_codes = cfg.warnings.deny_codes.clone();
    s.deny_codes.extend(a.deny_warning_codes.iter().cloned());
    s.lock = a
        .lock
        .clone()
        .or_else(|| cfg.corpus.lock.as_ref().map(|p| cfg.resolve(p)));
    if a.perf && s.shard.is_some() {
        return Err(Error::usage(
            "--perf cannot be combined with --shard: run it in one job",
        ));
    }
    if a.perf {
        if !(a.perf_ratio.is_finite() && a.perf_ratio >= 1.0) {
            return Err(Error::usage(format!(
                "--perf-ratio {} must be a number >= 1",
                a.perf_ratio
            )));
        }
        s.perf = Some(crate::verdict::perf::PerfOptions {
            runs: a.perf_runs as usize,
            ratio: a.perf_ratio,
            sample_files: a.perf_sample.max(1),
            ..Default::default()
        });
    }
    s.today = match &a.today {
        Some(d) => Some(
            exceptions::parse_date(d)
                .ok_or_else(|| Error::usage(format!("--today {d:?} is not a date YYYY-MM-DD")))?,
        ),
        None => None,
    };
    execute(s, &a.common)
}

/// Flag values win; otherwise the config's (resolved against its directory).
fn pick(
    flag: &[PathBuf],
    cfg: &Config,
    from_cfg: &[PathBuf],
    flag_name: &str,
    key: &str,
) -> Result<Vec<PathBuf>> {
    if !flag.is_empty() {
        Ok(flag.to_vec())
    } else if !from_cfg.is_empty() {
        cfg.resolve_rules(from_cfg, key)
    } else {
        Err(Error::usage(format!(
            "no rules given: use {flag_name} PATH... or set {key} in fpgate.toml"
        )))
    }
}

fn settings(
    command: &'static str,
    candidate: Vec<PathBuf>,
    baseline: Baseline,
    c: &CommonArgs,
    cfg: &Config,
) -> Result<Settings> {
    let corpus = cfg.corpus_roots(&c.corpus)?;
    let walk = cfg.walk_options(c.follow_symlinks, &c.critical, &c.exclude);
    let threads = cfg.threads(c.threads);
    let follow_symlinks = walk.follow_symlinks;
    let max_file_size = match (c.max_file_size, &cfg.scan.max_file_size) {
        (Some(n), _) => n,
        (None, Some(s)) => crate::cli::parse_size(s)
            .map_err(|e| Error::usage(format!("fpgate.toml: scan.max_file_size: {e}")))?,
        (None, None) => DEFAULT_MAX_FILE_SIZE,
    };
    if c.profile && !engine::PROFILING {
        return Err(Error::usage(
            "--profile needs per-rule timing, which this fpgate was built without: \
             cargo build --release --features profiling",
        ));
    }
    let timeout = c
        .timeout
        .or(cfg.scan.timeout)
        .unwrap_or(DEFAULT_TIMEOUT_SECS)
        .max(1);
    if c.shard.is_some() {
        if c.out.format.is_some_and(|f| f != Format::Json) || !c.out.reports.is_empty() {
            return Err(Error::usage(
                "--shard writes a partial report (JSON) for `fpgate merge`: \
                 give the other formats to the merge (--format, --report)",
            ));
        }
        if c.profile {
            return Err(Error::usage("--profile cannot be combined with --shard"));
        }
    }
    let cache = if c.no_cache || c.profile {
        // Profiling times the rules on every file: nothing comes from the cache.
        None
    } else if let Some(d) = &c.cache {
        Some(d.clone())
    } else {
        match &cfg.scan.cache {
            Some(toml::Value::String(d)) => Some(cfg.resolve(Path::new(d))),
            Some(toml::Value::Boolean(false)) => None,
            Some(toml::Value::Boolean(true)) | None => crate::store::default_dir(),
            Some(other) => {
                return Err(Error::usage(format!(
                    "fpgate.toml: scan.cache must be a directory or false, not {other}"
                )))
            }
        }
    };
    let mut defines = cfg.defines()?;
    for d in &c.defines {
        defines.retain(|x| x.name != d.name);
        defines.push(d.clone());
    }
    Ok(Settings {
        command,
        candidate,
        baseline,
        corpus,
        walk,
        scan: ScanOptions {
            threads,
            timeout: Duration::from_secs(timeout),
            max_file_size,
            follow_symlinks,
            profile: c.profile,
        },
        compile: CompileOptions {
            defines,
            cache_dir: cache.clone(),
        },
        allow_incomplete: c.allow_incomplete || cfg.scan.allow_incomplete.unwrap_or(false),
        exceptions: None,
        strict: false,
        deny_warnings: false,
        deny_codes: Vec::new(),
        lock: None,
        today: None,
        perf: None,
        cache,
        shard: c.shard,
    })
}

fn compile_baseline(s: &Settings) -> Result<Option<Ruleset>> {
    Ok(match &s.baseline {
        Baseline::None => None,
        Baseline::Paths(p) => Some(rules::compile("baseline", p, &s.compile)?),
        Baseline::GitRef(r) => {
            // The extracted files live until the baseline is compiled.
            let x = crate::rules::gitref::extract(r, &s.candidate)?;
            let root = x
                .dir
                .path()
                .canonicalize()
                .map_err(|e| Error::usage(e.to_string()))?;
            Some(rules::compile_files(
                "baseline",
                x.display_paths.clone(),
                &x.files,
                &[root],
                &s.compile,
            )?)
        }
    })
}

fn execute(s: Settings, common: &CommonArgs) -> Result<Exit> {
    let started = Instant::now();
    // yara-x compiles on one thread: build the two rulesets side by side
    // (a 1,200-rule set takes seconds), and walk and hash the corpus
    // meanwhile.
    let compiled = std::sync::atomic::AtomicBool::new(false);
    let cache = s
        .cache
        .as_ref()
        .and_then(|dir| match crate::store::Cache::open(dir) {
            Ok(c) => Some(c),
            Err(e) => {
                eprintln!("fpgate: {e}; running without a results cache");
                None
            }
        });
    let (candidate, baseline, walked) = std::thread::scope(|scope| {
        let base = scope.spawn(|| compile_baseline(&s));
        // Walk the corpus, look the files up in the stat cache, then hash
        // the others on the otherwise idle core until the rules are
        // compiled; the scan reuses those hashes.
        let (s_ref, compiled_ref) = (&s, &compiled);
        let walk = scope.spawn(move || {
            let mut cache = cache;
            corpus::walk(&s_ref.corpus, &s_ref.walk).map(|c| {
                let known = match cache.as_mut() {
                    Some(cache) => {
                        crate::cache::stat_lookup(cache, &c.files, s_ref.scan.follow_symlinks)
                    }
                    None => Vec::new(),
                };
                let pre = crate::corpus::read::prehash(
                    &c.files,
                    known,
                    &s_ref.scan.limits(),
                    compiled_ref,
                );
                (c, pre, cache)
            })
        });
        let candidate = rules::compile("candidate", &s.candidate, &s.compile);
        let baseline = base
            .join()
            .unwrap_or_else(|_| Err(Error::usage("baseline compilation panicked")));
        compiled.store(true, std::sync::atomic::Ordering::Relaxed);
        let walked = walk
            .join()
            .unwrap_or_else(|_| Err(Error::usage("corpus walk panicked")));
        (candidate, baseline, walked)
    });
    // Errors in the order a user fixes them: candidate, baseline, corpus.
    let candidate = candidate?;
    let baseline = baseline?;
    let (corpus, prehashed, mut cache) = walked?;
    let lock = s
        .lock
        .as_ref()
        .map(|p| crate::corpus::lock::load(p))
        .transpose()?;
    let (corpus, prehashed, shard) = match s.shard {
        None => (corpus, prehashed, None),
        Some(sh) => select_shard(
            corpus,
            prehashed,
            sh,
            &s.scan,
            cache.as_mut(),
            lock.as_ref().zip(s.lock.as_deref()),
        )?,
    };
    let compile_seconds = started.elapsed().as_secs_f64();
    for rs in std::iter::once(&candidate).chain(baseline.as_ref()) {
        print_warnings(rs, common.out.quiet);
    }

    crate::util::interrupt::install_handler();
    let progress = progress_bar(corpus.files.len() as u64, common.out.quiet);
    let mut sets: Vec<&Ruleset> = vec![&candidate];
    sets.extend(baseline.as_ref());
    let scan_started = Instant::now();
    let mut cache_run = cache
        .as_mut()
        .map(|c| crate::cache::CacheRun::new(c, &sets));
    if let Some(run) = cache_run.as_mut() {
        for line in run.prepare_deltas(&corpus.files, &prehashed, &s.compile) {
            if !common.out.quiet {
                eprintln!("fpgate: {line}");
            }
        }
    }
    let outcomes = engine::scan_files(
        &corpus.files,
        &prehashed,
        &sets,
        cache_run.as_ref().map(|r| r as &dyn engine::Planner),
        &s.scan,
        &progress,
    );
    let mut cache_stats = None;
    if let (Some(c), Some(run)) = (cache.as_mut(), cache_run) {
        cache_stats = Some(run.stats(c.path.parent().unwrap_or(Path::new("."))));
        let writes = run.writes.into_inner().unwrap_or_else(|e| e.into_inner());
        c.write(&writes);
    }
    let scan_seconds = scan_started.elapsed().as_secs_f64();
    progress.finish_and_clear();
    let profile = s.scan.profile.then(|| engine::take_profile(50));

    if let Some(shard) = shard {
        // A file placed by its locked hash must still have that content.
        for ((f, o), l) in corpus.files.iter().zip(&outcomes).zip(&shard.locked) {
            let sha = match o {
                Outcome::Scanned { sha256, .. } => Some(sha256),
                Outcome::Unscanned { sha256, .. } => sha256.as_ref(),
            };
            if let (Some(sha), Some(l)) = (sha, l) {
                if sha != l {
                    return Err(lock_mismatch(lock.as_ref().zip(s.lock.as_deref()), &f.rel));
                }
            }
        }
        let partial = shard.partial(
            &s,
            &candidate,
            baseline.as_ref(),
            &corpus,
            &outcomes,
            lock,
            crate::shard::partial::PartialTimings {
                compile_seconds: round3(compile_seconds),
                scan_seconds: round3(scan_seconds),
                total_seconds: round3(started.elapsed().as_secs_f64()),
                threads: s.scan.threads,
            },
        );
        let mut body = serde_json::to_string(&partial)
            .map_err(|e| Error::usage(format!("partial report: {e}")))?;
        body.push('\n');
        let path = common.out.output.clone().filter(|p| p.as_os_str() != "-");
        output::write(path.as_deref(), body.as_bytes())?;
        if !common.out.quiet {
            eprintln!(
                "fpgate: shard {}: {} of {} corpus entries, partial report written{}; `fpgate merge` over all {} partial reports gives the verdict",
                partial.shard,
                partial.facts.files.len() + partial.facts.skipped.len(),
                partial.key.corpus_files + partial.key.corpus_skipped,
                path.map(|p| format!(" to {}", p.display())).unwrap_or_default(),
                partial.shard.count
            );
        }
        return Ok(Exit::Pass);
    }

    let mut report = finish(
        Inputs {
            command: s.command,
            candidate: &candidate,
            baseline: baseline.as_ref(),
            corpus: &corpus,
            outcomes: &outcomes,
            allow_incomplete: s.allow_incomplete,
            interrupted: crate::util::interrupt::interrupted(),
            timings: Timings::default(),
            policy: Policy {
                exceptions: s.exceptions.as_ref(),
                today: s.today,
                strict: s.strict,
                deny_warnings: s.deny_warnings,
                deny_codes: s.deny_codes.clone(),
            },
        },
        lock.as_ref().zip(s.lock.as_deref()),
    )?;

    report.profile = profile;
    if let Some(po) = &s.perf {
        let Some(base) = baseline.as_ref() else {
            return Err(Error::usage(
                "--perf compares with a baseline: give --baseline or --baseline-ref",
            ));
        };
        let sample = crate::verdict::perf::sample(&corpus.files, &outcomes, po);
        if sample.is_empty() {
            return Err(Error::usage("--perf: no scanned file to measure with"));
        }
        let changed: Vec<String> = report
            .rule_changes
            .iter()
            .flat_map(|c| c.added.iter().chain(&c.modified))
            .map(|r| r.identifier.clone())
            .collect();
        let pr = crate::verdict::perf::measure(base, &candidate, &sample, po, changed)?;
        if pr.blocked {
            let suspects = if !pr.attribution.is_empty() {
                let top: Vec<String> = pr
                    .attribution
                    .iter()
                    .take(3)
                    .map(|a| format!("{} (+{:.4}s)", a.rule, a.delta_seconds))
                    .collect();
                format!("; slower rules: {}", top.join(", "))
            } else if pr.changed_rules.is_empty() {
                String::new()
            } else {
                format!("; added or modified rules: {}", pr.changed_rules.join(", "))
            };
            report.block(format!(
                "the candidate is {:.2}x slower than the baseline (limit {:.2}x){suspects}",
                pr.ratio, pr.max_ratio
            ));
        }
        report.performance = Some(pr);
    }

    report.timings = Timings::of(
        &report.corpus,
        compile_seconds,
        scan_seconds,
        started.elapsed().as_secs_f64(),
        s.scan.threads,
        cache_stats,
    );

    emit(&report, &common.out)?;
    Ok(report.exit())
}

/// Build the report of a finished scan and check it against the corpus
/// lock: the last step of a run, and all of a merge.
fn finish(inp: Inputs<'_>, lock: Option<(&crate::corpus::lock::Lock, &Path)>) -> Result<Report> {
    let (corpus, outcomes) = (inp.corpus, inp.outcomes);
    let mut report = report::build(inp);
    if let Some((lock, path)) = lock {
        // A file counts as scanned unless the report lists it unscanned
        // (duplicates of a content whose scan failed are listed too).
        let unscanned: std::collections::HashSet<&str> =
            report.unscanned.iter().map(|u| u.path.as_str()).collect();
        let ok: Vec<bool> = corpus
            .files
            .iter()
            .zip(outcomes)
            .map(|(f, o)| {
                matches!(o, Outcome::Scanned { .. }) && !unscanned.contains(f.display.as_str())
            })
            .collect();
        let current = crate::corpus::lock::entries(corpus, &engine::contents(outcomes, &ok))?;
        report.corpus.lock = Some(crate::corpus::lock::check(
            lock, path, &current, &ok, corpus,
        )?);
    }
    Ok(report)
}

/// This shard's part of the corpus, after hashing every file (on every
/// thread) to learn which contents are its own.
fn select_shard(
    corpus: corpus::Corpus,
    pre: Vec<Option<crate::corpus::read::PreHashed>>,
    shard: crate::shard::partial::Shard,
    opts: &ScanOptions,
    cache: Option<&mut crate::store::Cache>,
    lock: Option<(&crate::corpus::lock::Lock, &Path)>,
) -> Result<(
    corpus::Corpus,
    Vec<Option<crate::corpus::read::PreHashed>>,
    Option<ShardRun>,
)> {
    use crate::shard::partial::Shard;
    // With a corpus lock, a locked file's shard comes from its locked hash:
    // the shard does not read the files of other shards. (Its own files
    // are read and hashed by the scan; a content that differs from the
    // lock stops the run.)
    let locked: std::collections::HashMap<&str, [u8; 32]> = lock
        .map(|(l, _)| {
            l.files
                .iter()
                .filter_map(|e| {
                    Some((
                        e.path.as_str(),
                        crate::shard::partial::sha_from_hex(&e.sha256).ok()?,
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    let from_lock: Vec<Option<[u8; 32]>> = corpus
        .files
        .iter()
        .map(|f| locked.get(f.rel.as_str()).copied())
        .collect();
    let skip: Vec<bool> = from_lock.iter().map(Option::is_some).collect();
    let pre =
        crate::corpus::read::hash_rest(&corpus.files, pre, &skip, &opts.limits(), opts.threads);
    // Remember every hash, not only this shard's: tomorrow's run of this
    // shard hashes the whole corpus again.
    if let Some(cache) = cache {
        cache.remember_stats(corpus.files.iter().zip(&pre));
    }
    let mut shas = Vec::with_capacity(pre.len());
    for ((f, p), l) in corpus.files.iter().zip(&pre).zip(&from_lock) {
        let sha = match (p, l) {
            (Some(p), Some(l)) if p.sha256 != *l => {
                return Err(lock_mismatch(lock, &f.rel));
            }
            (Some(p), _) => Some(p.sha256),
            (None, l) => *l,
        };
        shas.push(sha);
    }
    let digest = crate::shard::partial::corpus_digest(&corpus, &shas);
    let (total_files, total_skipped) = (corpus.files.len(), corpus.skipped.len());
    let mut run = ShardRun {
        locked: Vec::new(),
        shard,
        digest,
        total_files,
        total_skipped,
        file_index: Vec::new(),
        skipped_index: Vec::new(),
    };
    let mut files = Vec::new();
    let mut kept = Vec::new();
    for (i, ((f, p), sha)) in corpus.files.into_iter().zip(pre).zip(&shas).enumerate() {
        let owner = match sha {
            Some(sha) => Shard::of_content(sha, shard.count),
            None => Shard::of_path(&f.display, shard.count),
        };
        if owner == shard.index {
            run.locked.push(from_lock[i]);
            run.file_index.push(i);
            files.push(f);
            kept.push(p);
        }
    }
    let mut skipped = Vec::new();
    for (i, u) in corpus.skipped.into_iter().enumerate() {
        if Shard::of_path(&u.path, shard.count) == shard.index {
            run.skipped_index.push(i);
            skipped.push(u);
        }
    }
    let corpus = corpus::Corpus {
        roots: corpus.roots,
        files,
        skipped,
    };
    Ok((corpus, kept, Some(run)))
}

/// The error of a corpus file whose content is not the locked one.
fn lock_mismatch(lock: Option<(&crate::corpus::lock::Lock, &Path)>, rel: &str) -> Error {
    Error::usage(format!(
        "the corpus does not match {}: changed: {}",
        lock.map(|(_, p)| p.display().to_string())
            .unwrap_or_default(),
        crate::util::escape::term(rel)
    ))
}

/// A sharded run: where its entries sit in the whole corpus.
struct ShardRun {
    /// Per file of the shard, its hash in the corpus lock (by which it may
    /// have been placed here).
    locked: Vec<Option<[u8; 32]>>,
    shard: crate::shard::partial::Shard,
    digest: String,
    total_files: usize,
    total_skipped: usize,
    file_index: Vec<usize>,
    skipped_index: Vec<usize>,
}

impl ShardRun {
    #[allow(clippy::too_many_arguments)]
    fn partial(
        &self,
        s: &Settings,
        candidate: &Ruleset,
        baseline: Option<&Ruleset>,
        corpus: &corpus::Corpus,
        outcomes: &[Outcome],
        lock: Option<crate::corpus::lock::Lock>,
        timings: crate::shard::partial::PartialTimings,
    ) -> crate::shard::partial::Partial {
        use crate::shard::partial::*;
        let exceptions = s.exceptions.as_ref().map(|e| TextFile {
            file: e.file.clone(),
            text: e.text.clone(),
        });
        let lock = lock.map(|l| LockFacts {
            path: s
                .lock
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            lock: l,
        });
        let mut options = std::collections::BTreeMap::new();
        let mut opt = |k: &str, v: String| {
            options.insert(k.to_string(), v);
        };
        opt("allow_incomplete", s.allow_incomplete.to_string());
        opt("timeout_seconds", s.scan.timeout.as_secs().to_string());
        opt("max_file_size", s.scan.max_file_size.to_string());
        opt("follow_symlinks", s.scan.follow_symlinks.to_string());
        opt("strict", s.strict.to_string());
        opt("deny_warnings", s.deny_warnings.to_string());
        opt("deny_codes", s.deny_codes.join(","));
        if let Some(t) = &s.today {
            opt("today", t.to_string());
        }
        opt(
            "exceptions",
            exceptions
                .as_ref()
                .map(|e| text_digest(&e.text))
                .unwrap_or_else(|| "none".into()),
        );
        opt(
            "lock",
            lock.as_ref()
                .map(|l| text_digest(&serde_json::to_string(&l.lock).unwrap_or_default()))
                .unwrap_or_else(|| "none".into()),
        );
        Partial {
            kind: KIND.into(),
            schema_version: SCHEMA,
            shard: self.shard,
            key: Key {
                fpgate_version: env!("CARGO_PKG_VERSION").into(),
                yara_x_version: yara_x::VERSION.into(),
                command: s.command.into(),
                candidate_fingerprint: candidate.fingerprint.clone(),
                baseline_fingerprint: baseline.map(|b| b.fingerprint.clone()),
                corpus_digest: self.digest.clone(),
                corpus_files: self.total_files,
                corpus_skipped: self.total_skipped,
                options,
            },
            facts: Facts {
                candidate: RulesetFacts::of(candidate),
                baseline: baseline.map(RulesetFacts::of),
                roots: corpus.roots.clone(),
                files: corpus
                    .files
                    .iter()
                    .zip(outcomes)
                    .zip(&self.file_index)
                    .map(|((f, o), &index)| FileFact {
                        index,
                        path: f.path.display().to_string(),
                        display: f.display.clone(),
                        rel: f.rel.clone(),
                        critical: f.critical,
                        outcome: OutcomeFact::of(o),
                    })
                    .collect(),
                skipped: self
                    .skipped_index
                    .iter()
                    .copied()
                    .zip(corpus.skipped.iter().cloned())
                    .collect(),
                allow_incomplete: s.allow_incomplete,
                interrupted: crate::util::interrupt::interrupted(),
                exceptions,
                today: s
                    .today
                    .unwrap_or_else(crate::verdict::exceptions::today)
                    .to_string(),
                strict: s.strict,
                deny_warnings: s.deny_warnings,
                deny_codes: s.deny_codes.clone(),
                lock,
            },
            timings,
        }
    }
}

/// `fpgate merge PARTIAL.json...`
pub fn merge(a: &crate::cli::MergeArgs) -> Result<Exit> {
    let started = Instant::now();
    let parts = a
        .partials
        .iter()
        .map(|p| Ok((p.clone(), crate::shard::partial::load(p)?)))
        .collect::<Result<Vec<_>>>()?;
    let m = crate::shard::partial::merge(&parts)?;
    let mut report = finish(m.inputs(), m.lock.as_ref().map(|(l, p)| (l, p.as_path())))?;
    report.timings = Timings::of(
        &report.corpus,
        m.timings.compile_seconds,
        m.timings.scan_seconds,
        m.timings.total_seconds + started.elapsed().as_secs_f64(),
        m.timings.threads,
        None,
    );
    emit(&report, &a.out)?;
    Ok(report.exit())
}

/// Compiler warnings in full on stderr, up to a limit: a public ruleset can
/// carry thousands, and the JSON report keeps every one.
fn print_warnings(rs: &Ruleset, quiet: bool) {
    const FULL: usize = 10;
    if quiet {
        return;
    }
    print_diagnostics(&rs.warnings[..rs.warnings.len().min(FULL)]);
    if rs.warnings.len() > FULL {
        eprintln!(
            "fpgate: {} more compiler warning(s) in the {} ruleset not shown here (all are in the JSON report)",
            rs.warnings.len() - FULL,
            rs.label
        );
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// The report targets of a run: the main one (`--format` to stdout or
/// `--output`) and every `--report FORMAT=PATH`. When a `--report` takes
/// stdout and the main format was not asked for, the main one is dropped.
fn targets(common: &OutputArgs) -> Result<Vec<ReportTarget>> {
    let mut t = Vec::new();
    let extra_on_stdout = common.reports.iter().any(|r| r.path.is_none());
    let main_path = common.output.clone().filter(|p| p.as_os_str() != "-");
    if !(extra_on_stdout && common.format.is_none() && main_path.is_none()) {
        t.push(ReportTarget {
            format: common.format.unwrap_or(Format::Human),
            path: main_path,
        });
    }
    t.extend(common.reports.iter().cloned());
    crate::render::check_distinct(&t)?;
    Ok(t)
}

fn emit(report: &Report, common: &OutputArgs) -> Result<()> {
    let targets = targets(common)?;
    for t in &targets {
        let color = t.format == Format::Human
            && t.path.is_none()
            && output::use_color(
                common.color,
                std::io::stdout().is_terminal(),
                std::env::var("NO_COLOR").ok().as_deref(),
            );
        let body = crate::render::render(t.format, report, color);
        output::write(t.path.as_deref(), body.as_bytes())?;
    }
    // Under GitHub Actions: annotations on the rule lines (the runner reads
    // workflow commands from stderr as well as stdout) and the step summary.
    if std::env::var("GITHUB_ACTIONS").as_deref() == Ok("true") {
        let on_stdout = targets
            .iter()
            .any(|t| t.format == Format::Github && t.path.is_none());
        if !on_stdout {
            eprint!("{}", crate::render::github::render(report));
        }
        if let Some(summary) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|s| !s.is_empty()) {
            output::append(
                Path::new(&summary),
                crate::render::markdown::render(report).as_bytes(),
            )?;
        }
    }
    // A person reading a machine format on stdout, or a file, still wants
    // the verdict on the terminal; stderr is theirs.
    let human_on_stdout = targets
        .iter()
        .any(|t| t.format == Format::Human && t.path.is_none());
    if !human_on_stdout && !common.quiet {
        eprintln!("{}", human::verdict_line(report, Style { color: false }));
    }
    Ok(())
}

fn progress_bar(len: u64, quiet: bool) -> ProgressBar {
    let show = output::show_progress(
        std::io::stderr().is_terminal(),
        std::env::var("CI").ok().as_deref(),
        quiet,
    );
    if !show {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} scanning [{bar:30}] {pos}/{len} files {per_sec} eta {eta}",
    ) {
        pb.set_style(style.progress_chars("=> "));
    }
    pb
}
