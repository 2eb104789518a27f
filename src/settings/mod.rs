//! Flags and fpgate.toml, resolved once into the immutable settings of a
//! command. Flags win over the file; paths in the file are relative to it.
//! Every refusal (a bad flag, a bad key, flags that cannot go together, two
//! reports to one place) happens here, before any corpus file is read.

pub mod base;
pub mod config;
pub mod diff;
mod gate;
pub mod recipe;
mod side;
pub mod tiers;
pub use side::{ExceptionsAdd, Index, Merge};

use crate::cli::{CheckArgs, CommonArgs, OutputArgs, ScanArgs};
use crate::corpus::WalkOptions;
use crate::engine::ScanOptions;
use crate::error::{Error, Result};
use crate::render::{Format, Output, ReportTarget};
use crate::rules::{CompileOptions, RulePath};
use crate::shard::Shard;
use crate::verdict::exceptions;
use crate::verdict::perf::PerfOptions;
use crate::verdict::policy::Policy;
use crate::verdict::report::RunKind;
use config::Config;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const DEFAULT_TIMEOUT_SECS: u64 = 60;
pub const DEFAULT_MAX_FILE_SIZE: u64 = 256 << 20;

/// `gate --positives`: the known-bad samples and what is asked of them.
#[derive(Debug, Clone)]
pub struct PositivesOptions {
    pub paths: Vec<PathBuf>,
    /// Meta keys that name a rule's samples.
    pub meta: Vec<String>,
    pub require_tested: bool,
}

/// Where the baseline comes from.
#[derive(Debug, Clone)]
pub enum Baseline {
    None,
    Paths(Vec<RulePath>),
    GitRef(String),
}

/// The settings of `scan`, `check` and `gate`: one run over the corpus.
#[derive(Debug, Clone)]
pub struct Run {
    pub command: RunKind,
    pub candidate: Vec<RulePath>,
    pub baseline: Baseline,
    pub corpus: Vec<PathBuf>,
    pub walk: WalkOptions,
    pub scan: ScanOptions,
    pub compile: CompileOptions,
    /// What the verdict applies (and partial reports carry).
    pub policy: Policy,
    /// The corpus lock to check against.
    pub lock: Option<PathBuf>,
    /// The lock's text when it was read at the base revision (the policy
    /// from the base; `lock` is then `REF:path`, for messages).
    pub lock_text: Option<String>,
    /// `gate --perf`.
    pub perf: Option<PerfOptions>,
    /// `gate --positives`.
    pub positives: Option<PositivesOptions>,
    /// Results cache directory; `None`: no cache.
    pub cache: Option<PathBuf>,
    pub shard: Option<Shard>,
    pub output: Output,
    /// The run history and `--since-last`.
    pub history: crate::triage::history::HistoryOptions,
    /// `--explain`: triage the new false positives.
    pub explain: bool,
    /// The corpus recipe, whose artifacts join the corpus (from the store).
    pub recipe: Option<recipe::RecipeRun>,
    /// `[[tiers.critical]]`: critical by verified code signature.
    pub tiers: Option<std::sync::Arc<tiers::TierRules>>,
}

impl Run {
    pub fn scan(a: &ScanArgs) -> Result<Run> {
        let cfg = load(&a.common)?;
        let rules = pick(
            &a.rules,
            &cfg,
            &cfg.rules.candidate,
            "--rules",
            "rules.candidate",
        )?;
        Run::common(RunKind::Scan, rules, Baseline::None, &a.common, &cfg, None)
    }

    pub fn check(a: &CheckArgs) -> Result<Run> {
        let cfg = load(&a.common)?;
        Run::common(
            RunKind::Check,
            confine_flag_rules(&a.rules)?,
            Baseline::None,
            &a.common,
            &cfg,
            None,
        )
    }

    /// `fpgate explain REPORT.json`: the report's candidate rules over its
    /// corpus roots (or `--corpus`), the samples of `--positives` or the
    /// config; the rest as for `check`.
    pub fn explain(
        a: &crate::cli::ExplainArgs,
        report: &serde_json::Value,
    ) -> Result<(Run, Vec<PathBuf>)> {
        let cfg = load(&a.common)?;
        let name = a.report.display().to_string();
        let strings = |v: &serde_json::Value| -> Vec<String> {
            v.as_array()
                .into_iter()
                .flatten()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        };
        let rules: Vec<RulePath> = if !a.rules.is_empty() {
            confine_flag_rules(&a.rules)?
        } else {
            let named = strings(&report["rulesets"]["candidate"]["paths"])
                .iter()
                .map(|p| p.parse::<RulePath>())
                .collect::<std::result::Result<Vec<_>, String>>()
                .map_err(|e| {
                    Error::input(
                        "report",
                        &name,
                        format!("{name}: rulesets.candidate.paths: {e}"),
                    )
                })?;
            confine_to_repository(&named, &name)?
        };
        if rules.is_empty() {
            return Err(Error::input(
                "report",
                &name,
                format!("{name}: no rulesets.candidate.paths: not a JSON report of fpgate scan, check or gate"),
            ));
        }
        let mut common = a.common.clone();
        if common.corpus.is_empty() {
            // A report is data: the roots it names are confined like the
            // config's (in this checkout, not in its .git).
            let named: Vec<PathBuf> = strings(&report["corpus"]["roots"])
                .into_iter()
                .map(PathBuf::from)
                .collect();
            confine_report_paths(
                named.iter().map(PathBuf::as_path),
                &name,
                "corpus root",
                "--corpus",
            )?;
            common.corpus = named;
        }
        let mut run = Run::common(RunKind::Check, rules, Baseline::None, &common, &cfg, None)?;
        run.explain = true;
        let positives = cfg.confine_roots(&a.positives, &cfg.positives.paths, "positives.paths")?;
        Ok((run, positives))
    }

    /// What every run resolves: corpus, walk, scan, compile, cache, shard
    /// and outputs. The policy is the default one (`gate` sets its own).
    /// `base_recipe`: the recipe's text as a base revision has it (`gate`
    /// under review), as `(REF:path, text)`.
    fn common(
        command: RunKind,
        candidate: Vec<RulePath>,
        baseline: Baseline,
        c: &CommonArgs,
        cfg: &Config,
        base_recipe: Option<(String, String)>,
    ) -> Result<Run> {
        let recipe_path = recipe::run_recipe_path(c.recipe.as_deref(), !c.corpus.is_empty(), cfg)?;
        let corpus = if recipe_path.is_some() && c.corpus.is_empty() && cfg.corpus.paths.is_empty()
        {
            Vec::new()
        } else {
            cfg.corpus_roots(&c.corpus)?
        };
        let recipe = match recipe_path {
            Some(p) => {
                let store = recipe::store_dir(c.store.as_deref(), c.cache.as_deref(), cfg)?;
                Some(match &base_recipe {
                    Some((shown, text)) => recipe::load(Path::new(shown), Some(text), store)?,
                    None => recipe::load(&p, None, store)?,
                })
            }
            None => None,
        };
        let walk = cfg.walk_options(c.follow_symlinks, &c.critical, &c.exclude);
        if c.profile && !crate::engine::PROFILING {
            return Err(Error::usage(
                "--profile needs per-rule timing, which this fpgate was built without: \
                 cargo build --release --features profiling",
            ));
        }
        check_shard(c)?;
        crate::rules::files::namespace_groups(&candidate)?;
        if let Baseline::Paths(p) = &baseline {
            crate::rules::files::namespace_groups(p)?;
        }
        let cache = cache_dir(c, cfg)?;
        let max_file_size = max_file_size(c, cfg)?;
        let archives = cfg.archives(c.no_archives, &walk, max_file_size)?;
        let tier_rules = tiers::rules(cfg)?;
        let mut defines = cfg.defines()?;
        for d in &c.defines {
            defines.retain(|x| x.name != d.name);
            defines.push(d.clone());
        }
        Ok(Run {
            command,
            candidate,
            baseline,
            corpus,
            scan: ScanOptions {
                threads: cfg.threads(c.threads),
                timeout: Duration::from_secs(
                    c.timeout
                        .or(cfg.scan.timeout)
                        .unwrap_or(DEFAULT_TIMEOUT_SECS)
                        .max(1),
                ),
                max_file_size,
                follow_symlinks: walk.follow_symlinks,
                profile: c.profile,
                archives: std::sync::Arc::new(archives),
                signatures: tier_rules
                    .clone()
                    .map(|r| std::sync::Arc::new(crate::corpus::signature::Verdicts::new(r))),
            },
            walk,
            compile: CompileOptions {
                defines,
                cache_dir: cache.clone(),
                extensions: extensions(cfg)?,
                relaxed_re_syntax: c.relaxed_re_syntax
                    || cfg.rules.relaxed_re_syntax.unwrap_or(false),
                ignored_modules: ignored_modules(c, cfg)?,
                parse_first: false,
            },
            policy: Policy {
                allow_incomplete: c.allow_incomplete || cfg.scan.allow_incomplete.unwrap_or(false),
                allow_unevaluated: c.allow_unevaluated
                    || cfg.scan.allow_unevaluated.unwrap_or(false),
                ..Policy::default()
            },
            lock: None,
            lock_text: None,
            perf: None,
            positives: None,
            cache,
            shard: c.shard,
            output: output(&c.out)?,
            history: history_options(&c.history, c.cache.as_deref(), Some(cfg)),
            explain: c.explain || cfg.triage.explain.unwrap_or(false),
            recipe,
            tiers: tier_rules,
        })
    }
}

/// Rule paths named by a report (`fpgate explain`) must lie in the current
/// directory's checkout (the nearest directory above it that holds `.git`,
/// else the current directory), outside its `.git`: a report is data, and a
/// rule file is quoted in compile errors, so a report may not name
/// `/proc/self/environ` or `.git/config`.
fn confine_to_repository(paths: &[RulePath], report: &str) -> Result<Vec<RulePath>> {
    confine_report_paths(
        paths.iter().map(|p| p.path.as_path()),
        report,
        "rule path",
        "--rules",
    )?;
    Ok(paths.to_vec())
}

/// Paths a report names (`what`: rule paths, corpus roots) must lie in the
/// current directory's checkout, outside its `.git`; else exit 2, naming
/// the flag that gives them instead.
fn confine_report_paths<'a>(
    paths: impl Iterator<Item = &'a Path>,
    report: &str,
    what: &str,
    flag: &str,
) -> Result<()> {
    let home = crate::util::paths::checkout_of(Path::new("."));
    for p in paths {
        if let Some(why) = crate::util::paths::escapes_on_disk(p, &home) {
            return Err(Error::input(
                "report",
                report,
                format!(
                    "{report}: {what} {} is refused: {why}; give them with {flag}",
                    p.display()
                ),
            ));
        }
    }
    Ok(())
}

/// Where the run history is (beside the results cache, even when the
/// cache itself is off) and what `--since-last` does.
pub(super) fn history_options(
    a: &crate::cli::HistoryArgs,
    cache: Option<&Path>,
    cfg: Option<&Config>,
) -> crate::triage::history::HistoryOptions {
    let record = !a.no_history && cfg.and_then(|c| c.history.record).unwrap_or(true);
    crate::triage::history::HistoryOptions {
        file: history_file(cache, cfg).filter(|_| record),
        since_last: a
            .since_last
            .or_else(|| cfg.and_then(|c| c.history.since_last))
            .unwrap_or_default(),
    }
}

/// The run history's file: in `--cache DIR`, else the config's
/// `scan.cache` directory, else the default cache directory.
pub fn history_file(cache: Option<&Path>, cfg: Option<&Config>) -> Option<PathBuf> {
    let dir = cache.map(Path::to_path_buf).or_else(|| {
        cfg.and_then(|c| match &c.scan.cache {
            Some(toml::Value::String(d)) => Some(c.resolve(Path::new(d))),
            _ => None,
        })
        .or_else(crate::store::default_dir)
    })?;
    Some(dir.join(crate::triage::history::FILE))
}

/// The report targets of a run: the main one (`--format` to stdout or
/// `--output`) and every `--report FORMAT=PATH`. When a `--report` takes
/// stdout and the main format was not asked for, the main one is dropped.
pub(super) fn output(o: &OutputArgs) -> Result<Output> {
    let mut targets = Vec::new();
    let extra_on_stdout = o.reports.iter().any(|r| r.path.is_none());
    let main_path = o.output.clone().filter(|p| p.as_os_str() != "-");
    if !(extra_on_stdout && o.format.is_none() && main_path.is_none()) {
        targets.push(ReportTarget {
            format: o.format.unwrap_or(Format::Human),
            path: main_path.clone(),
        });
    }
    targets.extend(o.reports.iter().cloned());
    crate::render::check_distinct(&targets)?;
    Ok(Output {
        targets,
        path: main_path,
        color: o.color,
        quiet: o.quiet,
    })
}

fn load(c: &CommonArgs) -> Result<Config> {
    Config::load(c.config.config.as_deref(), c.config.no_config)
}

/// Rule paths given on the command line are read as given, except one in
/// the checkout that a committed link leads elsewhere (see
/// `config::confine_flag_root`): `--candidate rules/x.yar` may not compile
/// a link to `.git/config` into an error that quotes it.
fn confine_flag_rules(paths: &[RulePath]) -> Result<Vec<RulePath>> {
    let home = crate::util::paths::checkout_of(Path::new("."));
    for p in paths {
        config::confine_flag_root(&p.path, &home)?;
    }
    Ok(paths.to_vec())
}

/// Flag values win; otherwise the config's (resolved against its directory).
fn pick(
    flag: &[RulePath],
    cfg: &Config,
    from_cfg: &[RulePath],
    flag_name: &str,
    key: &str,
) -> Result<Vec<RulePath>> {
    if !flag.is_empty() {
        confine_flag_rules(flag)
    } else if !from_cfg.is_empty() {
        cfg.resolve_rules(from_cfg, key)
    } else {
        Err(Error::usage(format!(
            "no rules given: use {flag_name} PATH... or set {key} in fpgate.toml"
        )))
    }
}

/// `rules.ignore_modules` and `--ignore-module`: module names, sorted, each
/// once (the compiled rules and every cache key depend on the set).
fn ignored_modules(c: &CommonArgs, cfg: &Config) -> Result<Vec<String>> {
    let mut out: Vec<String> = cfg
        .rules
        .ignore_modules
        .iter()
        .chain(&c.ignore_modules)
        .map(|m| m.trim().to_string())
        .collect();
    if let Some(bad) = out
        .iter()
        .find(|m| m.is_empty() || !m.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_'))
    {
        return Err(Error::usage(format!(
            "--ignore-module {bad:?} is not a module name (e.g. magic, cuckoo)"
        )));
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// `rules.extensions` of fpgate.toml.
fn extensions(cfg: &Config) -> Result<crate::rules::Extensions> {
    match &cfg.rules.extensions {
        None => Ok(Default::default()),
        Some(list) => crate::rules::Extensions::new(list).map_err(|e| {
            Error::config(
                cfg.file.as_deref(),
                "rules.extensions",
                format!("{}: rules.extensions: {e}", cfg.name()),
            )
        }),
    }
}

/// A sharded run writes one partial report (JSON) and no profile.
fn check_shard(c: &CommonArgs) -> Result<()> {
    if c.shard.is_none() {
        return Ok(());
    }
    if c.out.format.is_some_and(|f| f != Format::Json) || !c.out.reports.is_empty() {
        return Err(Error::usage(
            "--shard writes a partial report (JSON) for `fpgate merge`: \
             give the other formats to the merge (--format, --report)",
        ));
    }
    if c.profile {
        return Err(Error::usage("--profile cannot be combined with --shard"));
    }
    Ok(())
}

fn max_file_size(c: &CommonArgs, cfg: &Config) -> Result<u64> {
    Ok(match (c.max_file_size, &cfg.scan.max_file_size) {
        (Some(n), _) => n,
        (None, Some(s)) => crate::cli::parse_size(s).map_err(|e| {
            Error::config(
                cfg.file.as_deref(),
                "scan.max_file_size",
                format!("fpgate.toml: scan.max_file_size: {e}"),
            )
        })?,
        (None, None) => DEFAULT_MAX_FILE_SIZE,
    })
}

/// The results cache directory, or `None` for no cache.
fn cache_dir(c: &CommonArgs, cfg: &Config) -> Result<Option<PathBuf>> {
    if c.no_cache || c.profile {
        // Profiling times the rules on every file: nothing comes from the cache.
        return Ok(None);
    }
    if let Some(d) = &c.cache {
        return Ok(Some(d.clone()));
    }
    match &cfg.scan.cache {
        Some(toml::Value::String(d)) => Ok(Some(cfg.resolve(Path::new(d)))),
        Some(toml::Value::Boolean(false)) => Ok(None),
        Some(toml::Value::Boolean(true)) | None => Ok(crate::store::default_dir()),
        Some(other) => Err(Error::config(
            cfg.file.as_deref(),
            "scan.cache",
            format!("fpgate.toml: scan.cache must be a directory or false, not {other}"),
        )),
    }
}

/// The exceptions file, and whether it must exist: an explicit file must;
/// the default one may be absent.
/// One the config names, or the default beside it, must lie in the
/// config's checkout, outside its `.git` (a committed link could lead there).
pub(super) fn exceptions_file(flag: Option<&Path>, cfg: &Config) -> Result<(PathBuf, bool)> {
    Ok(match (flag, &cfg.exceptions.file) {
        (Some(p), _) => (p.to_path_buf(), true),
        (None, Some(p)) => (cfg.confined_file(p, "exceptions.file")?, true),
        (None, None) => (
            cfg.confined_file(Path::new(exceptions::DEFAULT_FILE), "exceptions.file")?,
            false,
        ),
    })
}

/// `--today DATE`.
pub(super) fn date(d: &str) -> Result<jiff::civil::Date> {
    exceptions::parse_date(d)
        .ok_or_else(|| Error::usage(format!("--today {d:?} is not a date YYYY-MM-DD")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn gate(args: &[&str]) -> Result<Run> {
        let mut argv = vec!["fpgate", "gate", "--no-config", "--no-cache"];
        argv.extend(args);
        match Cli::try_parse_from(argv).expect("arguments parse").command {
            Command::Gate(a) => Run::gate(&a),
            _ => unreachable!(),
        }
    }

    /// Refusals come from the settings alone: the paths named here do not
    /// exist, and no refusal is about them.
    #[test]
    fn refusals_come_before_any_file_is_read() {
        let base = ["--candidate", "/nowhere/c", "--corpus", "/nowhere/corpus"];
        let refused = |extra: &[&str], what: &str| {
            let mut args = base.to_vec();
            args.extend(extra);
            let e = gate(&args).expect_err("refused");
            assert_eq!(e.kind(), "usage", "{e}");
            assert!(e.to_string().contains(what), "{e}");
        };
        refused(&["--perf"], "--perf compares with a baseline");
        refused(
            &["--perf", "--baseline", "/nowhere/b", "--shard", "1/2"],
            "--perf cannot be combined with --shard",
        );
        refused(
            &["--perf", "--baseline", "/nowhere/b", "--perf-ratio", "0.5"],
            "--perf-ratio",
        );
        refused(&["--shard", "1/2", "--format", "sarif"], "--shard writes");
        refused(
            &["--report", "json=r.out", "--report", "sarif=./r.out"],
            "both be written to",
        );
        refused(&["--today", "2026-13-01"], "--today");
    }

    #[test]
    fn gate_settings_resolve_the_policy_once() {
        let mut args = vec![
            "--candidate",
            "/nowhere/c",
            "--corpus",
            "/nowhere/corpus",
            "--strict",
            "--deny-warning",
            "slow_pattern",
            "--today",
            "2026-11-23",
            "--allow-incomplete",
        ];
        let run = gate(&args).expect("settings");
        let p = &run.policy;
        assert!(p.strict && p.allow_incomplete && !p.deny_warnings);
        assert_eq!(p.deny_codes, vec!["slow_pattern".to_string()]);
        assert_eq!(
            p.today.map(|d| d.to_string()).as_deref(),
            Some("2026-11-23")
        );
        assert_eq!(run.output.targets.len(), 1);
        // An explicit exceptions file must exist: that is the one read.
        args.extend(["--exceptions", "/nowhere/e.toml"]);
        let e = gate(&args).expect_err("missing exceptions file");
        assert_eq!(e.kind(), "io", "{e}");
    }
}
