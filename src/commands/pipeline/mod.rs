//! The run shared by `scan`, `check` and `gate`: compile the rulesets while
//! the corpus is walked and hashed, scan (asking the results cache what it
//! already knows), then either write a shard's partial report or build the
//! verdict and write the reports.

use crate::corpus::lock::Lock;
use crate::corpus::{self, Corpus};
use crate::engine::{self, Outcome};
use crate::error::{Error, Result};
use crate::exit::Exit;
use crate::rules::Ruleset;
use crate::settings::Run;
use crate::store::Cache;
use crate::util::interrupt;
use crate::verdict;
use crate::verdict::report::{Report, Timings};
use std::path::Path;
use std::time::Instant;

mod prepare;
pub(crate) mod signed;
use prepare::{prepare, Prepared};

/// A finished scan: everything the verdict (or a partial report) is
/// built from.
pub struct Scanned {
    pub candidate: Ruleset,
    pub baseline: Option<Ruleset>,
    pub corpus: Corpus,
    pub outcomes: Vec<Outcome>,
    /// `gate --positives`: the samples and their scans (scanned in the
    /// same pass as the corpus, split off after it).
    pub positives: Option<(Corpus, Vec<Outcome>)>,
    pub lock: Option<Lock>,
    /// A sharded run: where its files sit in the whole corpus.
    pub shard: Option<crate::shard::select::ShardRun>,
    pub compile_seconds: f64,
    pub scan_seconds: f64,
    pub cache: Option<crate::cache::CacheStats>,
    pub profile: Option<Vec<engine::RuleCost>>,
    /// A gate's baseline sharing the candidate's scan: (shared, own) rules.
    pub shared_scan: Option<crate::verdict::report::SharedScan>,
    /// Bytes the archive decoders produced.
    pub decoded_bytes: u64,
}

/// Run `s` to its exit code: a verdict, or for a shard, its partial report.
pub fn run(s: &Run) -> Result<Exit> {
    let started = Instant::now();
    let done = scan(s)?;
    conclude(s, done, None, started)
}

/// The end of a run: a shard writes its partial report (exit 0: the merge
/// decides); any other run builds its verdict (with the performance
/// measurement of `gate --perf`, if any) and writes its reports.
pub fn conclude(
    s: &Run,
    done: Scanned,
    performance: Option<crate::verdict::perf::PerfReport>,
    started: Instant,
) -> Result<Exit> {
    if let Some(shard) = &done.shard {
        write_partial(s, &done, shard, started)?;
        return Ok(Exit::Pass);
    }
    let mut report = finish(
        verdict::Inputs {
            command: s.command,
            candidate: &done.candidate,
            baseline: done.baseline.as_ref(),
            corpus: &done.corpus,
            outcomes: &done.outcomes,
            interrupted: interrupt::interrupted(),
            policy: &s.policy,
            performance,
            positives: done.positives.as_ref().zip(s.positives.as_ref()).map(
                |((corpus, outcomes), o)| verdict::detections::Positives {
                    corpus,
                    outcomes,
                    meta: &o.meta,
                    require_tested: o.require_tested,
                    digests: None,
                },
            ),
        },
        done.lock.as_ref().zip(s.lock.as_deref()),
    )?;
    if s.explain {
        report.triage = Some(triage(s, &report, &done)?);
    }
    report.profile = done.profile;
    report.timings = Timings::of(
        &report.corpus,
        done.compile_seconds,
        done.scan_seconds,
        started.elapsed().as_secs_f64(),
        s.scan.threads,
        done.cache,
    );
    report.timings.shared_scan = done.shared_scan;
    report.timings.decoded_bytes = done.decoded_bytes;
    report.corpus.archives.read = s.scan.archives.enabled;
    crate::triage::history::apply(&mut report, &s.history)?;
    crate::render::emit::emit(&report, &s.output)?;
    Ok(report.exit())
}

/// `--explain`: the triage of the new false positives, over the same clean
/// files and samples the run scanned.
fn triage(s: &Run, report: &Report, done: &Scanned) -> Result<crate::triage::Triage> {
    let samples: &[crate::corpus::CorpusFile] = done
        .positives
        .as_ref()
        .map_or(&[], |(p, _)| p.files.as_slice());
    let started = Instant::now();
    let fps: Vec<crate::triage::Fp> = report
        .false_positives
        .new
        .iter()
        .map(crate::triage::Fp::of)
        .collect();
    let t = crate::triage::analyse(
        &fps,
        &done.candidate,
        &done.corpus.files,
        samples,
        &crate::triage::Options {
            compile: &s.compile,
            scan: &s.scan,
            cache_dir: s.cache.as_deref(),
            explain: true,
        },
    )?;
    if !s.output.quiet && !t.rules.is_empty() {
        eprintln!(
            "fpgate: triage of {} rule(s) in {:.2}s ({} of {} file lookups answered by the results cache)",
            t.rules.len(),
            started.elapsed().as_secs_f64(),
            t.files_from_cache,
            t.probe_files
        );
    }
    Ok(t)
}

/// A shard's run ends with its partial report; `merge` gives the verdict.
fn write_partial(
    s: &Run,
    done: &Scanned,
    shard: &crate::shard::select::ShardRun,
    started: Instant,
) -> Result<()> {
    let round3 = |x: f64| (x * 1000.0).round() / 1000.0;
    let partial = shard.partial(
        &crate::shard::select::ShardInputs {
            command: s.command,
            candidate: &done.candidate,
            baseline: done.baseline.as_ref(),
            corpus: &done.corpus,
            outcomes: &done.outcomes,
            policy: &s.policy,
            scan: &s.scan,
            lock: done.lock.as_ref().zip(s.lock.as_deref()),
            interrupted: interrupt::interrupted(),
            positives: done.positives.as_ref().zip(s.positives.as_ref()).map(
                |((corpus, outcomes), o)| crate::shard::select::ShardPositives {
                    corpus,
                    outcomes,
                    meta: &o.meta,
                    require_tested: o.require_tested,
                },
            ),
        },
        crate::shard::partial::PartialTimings {
            compile_seconds: round3(done.compile_seconds),
            scan_seconds: round3(done.scan_seconds),
            total_seconds: round3(started.elapsed().as_secs_f64()),
            threads: s.scan.threads,
            decoded_bytes: done.decoded_bytes,
        },
    );
    let mut body = serde_json::to_string(&partial)
        .map_err(|e| Error::internal(format!("partial report: {e}")))?;
    body.push('\n');
    let path = s.output.path.as_deref();
    crate::render::output::write(path, body.as_bytes())?;
    if !s.output.quiet {
        eprintln!(
            "fpgate: shard {}: {} of {} corpus entries, partial report written{}; `fpgate merge` over all {} partial reports gives the verdict",
            partial.shard,
            partial.facts.files.len() + partial.facts.skipped.len(),
            partial.key.corpus_files + partial.key.corpus_skipped,
            path.map(|p| format!(" to {}", p.display())).unwrap_or_default(),
            partial.shard.count
        );
    }
    Ok(())
}

/// Build the report of a finished scan and check it against the corpus
/// lock: the last step of a run, and all of a merge.
pub fn finish(inp: verdict::Inputs<'_>, lock: Option<(&Lock, &Path)>) -> Result<Report> {
    let (corpus, outcomes) = (inp.corpus, inp.outcomes);
    let mut report = verdict::build(inp);
    if let Some((lock, path)) = lock {
        // A file counts as scanned unless the report lists it unscanned
        // (duplicates of a content whose scan failed are listed too).
        let unscanned: std::collections::HashSet<&str> =
            report.unscanned.iter().map(|u| u.path.as_str()).collect();
        let ok: Vec<bool> = corpus
            .files
            .iter()
            .zip(outcomes)
            .map(|(f, o)| matches!(o, Outcome::Scanned { .. }) && !unscanned.contains(f.display()))
            .collect();
        let current = crate::corpus::lock::entries(corpus, &engine::contents(outcomes, &ok))?;
        report.corpus.lock = Some(crate::corpus::lock::check(
            lock, path, &current, &ok, corpus,
        )?);
    }
    Ok(report)
}

/// Compile, walk, scan.
pub fn scan(s: &Run) -> Result<Scanned> {
    let started = Instant::now();
    let Prepared {
        candidate,
        baseline,
        corpus,
        positives,
        prehashed,
        mut cache,
    } = prepare(s)?;
    let lock = s
        .lock
        .as_ref()
        .map(|p| match &s.lock_text {
            Some(text) => crate::corpus::lock::parse(text, p),
            None => crate::corpus::lock::load(p),
        })
        .transpose()?;
    let clean_files = corpus.files.len() - positives.as_ref().map_or(0, |p| p.1);
    let (mut corpus, prehashed, shard) = match s.shard {
        None => (corpus, prehashed, None),
        Some(sh) => crate::shard::select::select(
            corpus,
            prehashed,
            sh,
            &s.scan,
            cache.as_mut(),
            lock.as_ref().zip(s.lock.as_deref()),
            clean_files,
        )?,
    };
    let compile_seconds = started.elapsed().as_secs_f64();
    for rs in std::iter::once(&candidate).chain(baseline.as_ref()) {
        crate::render::emit::print_warnings(rs, s.output.quiet);
    }
    interrupt::install_handler();
    let progress = crate::render::output::progress_bar(corpus.files.len() as u64, s.output.quiet);
    let mut sets: Vec<&Ruleset> = vec![&candidate];
    sets.extend(baseline.as_ref());
    let scan_started = Instant::now();
    let cache_dir = cache
        .as_ref()
        .map(|c| c.path.parent().unwrap_or(Path::new(".")).to_path_buf());
    let mut cache_run = cache
        .as_mut()
        .map(|c| crate::cache::CacheRun::new(c, &sets));
    if let (Some(run), Some(dir)) = (cache_run.as_mut(), &cache_dir) {
        run.load_members(dir, &s.scan.archives, &prehashed);
    }
    if let Some(run) = cache_run.as_mut() {
        for line in run.prepare_deltas(&corpus.files, &prehashed, &s.compile) {
            if !s.output.quiet {
                eprintln!("fpgate: {line}");
            }
        }
    }
    // A gate searches each file once with every rule: the baseline takes
    // the candidate's results for the rules they share (see `Sharing`).
    // `--profile` times the candidate's full rules alone.
    let sharing = if sets.len() == 2 && !s.scan.profile {
        engine::Sharing::of(&sets, 0, 1, &s.compile)
    } else {
        None
    };
    // The clean files' archives are opened, not the known-bad samples'.
    let clean_here = corpus.files.len()
        - match (&shard, &positives) {
            (Some(sh), _) => sh.own_samples(),
            (None, Some((_, n))) => *n,
            (None, None) => 0,
        };
    let owns = |m: &corpus::CorpusFile, sha: Option<&[u8; 32]>| {
        shard.as_ref().is_none_or(|sh| sh.owns(m, sha))
    };
    let expand = match &shard {
        Some(sh) => sh.expand(clean_here, &owns),
        None => engine::Expand {
            upto: clean_here,
            ..Default::default()
        },
    };
    let engine::Scan {
        mut outcomes,
        members,
    } = engine::scan_files_sharing(
        &corpus.files,
        prehashed,
        &sets,
        cache_run.as_ref().map(|r| r as &dyn engine::Planner),
        sharing.as_ref(),
        &s.scan,
        expand,
        &progress,
    );
    let shared_scan = sharing.map(|sh| crate::verdict::report::SharedScan {
        shared_rules: sh.shared.len(),
        own_rules: sh.rest_keys.len(),
    });
    let mut cache_stats = None;
    if let (Some(c), Some(run)) = (cache.as_mut(), cache_run) {
        cache_stats = Some(run.stats(c.path.parent().unwrap_or(Path::new("."))));
        if let Some(dir) = &cache_dir {
            run.save_members(dir);
        }
        let mut writes = run.writes.into_inner().unwrap_or_else(|e| e.into_inner());
        c.write(&mut writes, &corpus.files);
    }
    if let Some(c) = cache.as_mut() {
        print_notes(c);
    }
    let scan_seconds = scan_started.elapsed().as_secs_f64();
    progress.finish_and_clear();
    drop(sets);
    let mut shard = shard;
    if let Some(shard) = &shard {
        shard.check_locked(&corpus, &outcomes, lock.as_ref().zip(s.lock.as_deref()))?;
    }
    // The members found become entries, each after its container.
    let (origins, added) = corpus::members::splice(&mut corpus, &mut outcomes, members, clean_here);
    if let Some(shard) = shard.as_mut() {
        shard.add_members(&mut corpus, &mut outcomes, &origins);
    }
    let decoded_bytes = added.decoded;
    let positives = match positives {
        Some((mut p, n)) => {
            // A shard holds only the samples whose content is its own.
            let n = shard.as_ref().map_or(n, |sh| sh.own_samples());
            let at = corpus.files.len() - n;
            p.files = corpus.files.split_off(at);
            let theirs = outcomes.split_off(at);
            verdict::detections::disjoint_contents(&corpus, &outcomes, &p, &theirs)?;
            Some((p, theirs))
        }
        None => None,
    };
    // Critical by verified signature: the clean corpus's PE entries.
    if let Some(rules) = &s.tiers {
        let n = signed::apply(&mut corpus, &outcomes, rules, cache_dir.as_deref(), &s.scan);
        if n > 0 && !s.output.quiet {
            eprintln!("fpgate: {n} corpus entr(y/ies) critical by a verified signature ([[tiers.critical]])");
        }
    }
    Ok(Scanned {
        decoded_bytes,
        shared_scan,
        positives,
        profile: s.scan.profile.then(|| engine::take_profile(50)),
        candidate,
        baseline,
        corpus,
        outcomes,
        lock,
        shard,
        compile_seconds,
        scan_seconds,
        cache: cache_stats,
    })
}

/// What the results cache recovered from (a replaced file, ignored rows):
/// the user hears of it, and the run goes on.
fn print_notes(c: &mut Cache) {
    for n in c.take_notes() {
        eprintln!("fpgate: {n}");
    }
}
