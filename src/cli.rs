//! The command line: clap types and value parsers only (the flags are the
//! public contract). `settings` turns them into what a command runs with;
//! `app` dispatches.

use crate::exit::HELP as EXIT_HELP;
use crate::render::output::ColorChoice;
use crate::rules::{Define, RulePath};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "fpgate",
    version,
    about = "Block YARA rule releases that would flag known-clean files",
    long_about = "fpgate scans a candidate YARA rule update (with yara-x) against a corpus of \
known-clean binaries and blocks the release if the update would flag any of them.",
    after_help = EXIT_HELP
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Report every (rule, clean file) match of a ruleset over the corpus.
    #[command(after_help = EXIT_HELP)]
    Scan(ScanArgs),
    /// Compare a candidate ruleset with the released one over the corpus and
    /// block on new false positives.
    #[command(after_help = EXIT_HELP)]
    Gate(GateArgs),
    /// Corpus integrity: write a lock file of the corpus.
    #[command(subcommand)]
    Corpus(CorpusCommand),
    /// Accepted false positives.
    #[command(subcommand)]
    Exceptions(ExceptionsCommand),
    /// For rule authors: scan the configured corpus with just these rule
    /// files and show which clean files they hit and why.
    #[command(after_help = EXIT_HELP)]
    Check(CheckArgs),
    /// Combine the partial reports of a sharded run (`--shard K/N`) into the
    /// final report and verdict; refuses a missing, duplicated or
    /// mismatched shard (exit 2).
    #[command(after_help = EXIT_HELP)]
    Merge(MergeArgs),
    /// List the recorded runs (the run history beside the results cache),
    /// newest last: when, what, the verdict and the findings per class.
    History(HistoryListArgs),
    /// Triage the new false positives of a JSON report: how common each
    /// pattern is in the corpus, which patterns the condition needs, and
    /// narrowings of each rule validated over the corpus (and --positives).
    /// Prints the report again with that added; nothing is applied.
    #[command(after_help = EXIT_HELP)]
    Explain(ExplainArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    /// to stdout, e.g. `fpgate completions bash > /etc/bash_completion.d/fpgate`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) to stdout, e.g. `fpgate man > fpgate.1`,
    /// or a command's: `fpgate man gate > fpgate-gate.1`.
    Man {
        #[arg(value_name = "COMMAND")]
        command: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The rule files (or directories) being written, each optionally
    /// prefixed with a namespace (NS:PATH).
    #[arg(required = true, value_name = "RULE_FILE")]
    pub rules: Vec<RulePath>,
    /// Run again whenever one of the rule files changes (Ctrl-C to stop).
    #[arg(long)]
    pub watch: bool,
    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(Debug, Subcommand)]
pub enum CorpusCommand {
    /// Hash every corpus file and write a lock: path, size, sha256, format,
    /// tier, and one hash over the whole list.
    #[command(after_help = EXIT_HELP)]
    Index(IndexArgs),
    /// Download what the corpus store lacks of the recipe
    /// (fpgate-corpus.toml): each artifact is verified against its sha256
    /// pin before anything reads it, then moved into the store atomically.
    #[command(after_help = EXIT_HELP)]
    Fetch(FetchArgs),
    /// Fetch SOURCE once and append it to the recipe, pinned by the sha256
    /// of what was downloaded (trust on first use: check it).
    #[command(after_help = EXIT_HELP)]
    Add(AddArgs),
}

/// Where the recipe and its store are (corpus fetch, corpus add).
#[derive(Debug, Clone, Args)]
pub struct RecipeArgs {
    /// The corpus recipe [default: corpus.recipe of fpgate.toml, else
    /// fpgate-corpus.toml beside fpgate.toml or in the current directory].
    #[arg(long, value_name = "FILE")]
    pub recipe: Option<PathBuf>,
    /// The corpus store [default: corpus.store of fpgate.toml, else
    /// corpus-store in the results cache directory].
    #[arg(long, value_name = "DIR", env = "FPGATE_STORE")]
    pub store: Option<PathBuf>,
    /// The results cache directory, beside which the store is by default.
    #[arg(long, value_name = "DIR", env = "FPGATE_CACHE")]
    pub cache: Option<PathBuf>,
    /// A download that receives nothing for SECS fails; a registry client
    /// (pip, npm, apt-get) is stopped after 10 x SECS.
    #[arg(long, value_name = "SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: u64,
    /// No progress bar and no summary on stderr.
    #[arg(long, short = 'q')]
    pub quiet: bool,
    #[command(flatten)]
    pub config: ConfigArgs,
}

#[derive(Debug, Args)]
pub struct FetchArgs {
    #[command(flatten)]
    pub recipe: RecipeArgs,
    /// Use the store only: an artifact it lacks is an error (exit 2).
    #[arg(long)]
    pub offline: bool,
    /// Remove store contents this recipe does not name.
    #[arg(long)]
    pub prune: bool,
    /// Fetch the recipe as it is at this git revision (the one a gate with
    /// --baseline-ref REF reads under review), not the working tree's.
    #[arg(long, value_name = "GIT_REF")]
    pub baseline_ref: Option<String>,
    /// Downloads at once.
    #[arg(long, short = 'j', value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=16))]
    pub jobs: u16,
}

#[derive(Debug, Args)]
pub struct AddArgs {
    /// What to fetch: a URL (https://, http://, file:), pypi:WHEEL.whl,
    /// npm:NAME@VERSION or deb:PACKAGE=VERSION.
    #[arg(value_name = "SOURCE")]
    pub source: String,
    /// The artifact's name in reports [default: the file name].
    #[arg(long)]
    pub name: Option<String>,
    /// Its tier: critical or standard.
    #[arg(long, value_name = "TIER")]
    pub tier: Option<String>,
    /// Its licence, as the recipe records it.
    #[arg(long, value_name = "SPDX")]
    pub license: Option<String>,
    /// A note kept with the entry.
    #[arg(long)]
    pub note: Option<String>,
    /// Replace the entry of the same name (re-pin), instead of refusing.
    #[arg(long)]
    pub replace: bool,
    #[command(flatten)]
    pub recipe: RecipeArgs,
}

#[derive(Debug, Subcommand)]
pub enum ExceptionsCommand {
    /// Append stub entries (reason "TODO", expiring in 90 days) for the new
    /// false positives of a JSON report, for a human to review and edit.
    Add(ExceptionsAddArgs),
}

#[derive(Debug, Args)]
pub struct ScanArgs {
    /// Rule files, or directories searched recursively for *.yar / *.yara
    /// (rules.extensions of fpgate.toml for others), each optionally
    /// prefixed with a namespace as yr takes them (NS:PATH)
    /// [default: rules.candidate of fpgate.toml].
    #[arg(long, num_args = 1.., value_name = "[NS:]PATH")]
    pub rules: Vec<RulePath>,
    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The partial reports, one per shard, in any order.
    #[arg(required = true, value_name = "PARTIAL.json")]
    pub partials: Vec<PathBuf>,
    #[command(flatten)]
    pub out: OutputArgs,
    #[command(flatten)]
    pub history: HistoryArgs,
    /// Where the run history is kept (the results cache directory; as for
    /// scan and gate).
    #[arg(long, value_name = "DIR", env = "FPGATE_CACHE")]
    pub cache: Option<PathBuf>,
}

/// The run history: every run is recorded beside the results cache.
#[derive(Debug, Clone, Args)]
pub struct HistoryArgs {
    /// Add a section "new since the last run of these rules" to every
    /// format: findings the previous run of the same command, rule paths
    /// and corpus roots did not have, and the trend of the last 30 runs.
    /// `--since-last=block`: such a finding (without an exception) blocks
    /// [config: history.since_last].
    #[arg(long, value_enum, value_name = "MODE", num_args = 0..=1, require_equals = true, default_missing_value = "report")]
    pub since_last: Option<crate::triage::history::SinceLast>,
    /// Do not record this run in the run history.
    #[arg(long)]
    pub no_history: bool,
}

#[derive(Debug, Args)]
pub struct HistoryListArgs {
    /// Only runs of this command (scan, gate, check).
    #[arg(long, value_name = "COMMAND")]
    pub command: Option<String>,
    /// At most this many runs (the newest).
    #[arg(long, default_value_t = 30)]
    pub limit: usize,
    /// One JSON document instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Where the run history is kept (the results cache directory).
    #[arg(long, value_name = "DIR", env = "FPGATE_CACHE")]
    pub cache: Option<PathBuf>,
    #[command(flatten)]
    pub config: ConfigArgs,
}

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// A JSON report of `fpgate gate`, `check` or `scan`.
    #[arg(value_name = "REPORT.json")]
    pub report: PathBuf,
    /// The rule files the report's candidate rules are in now [default: the
    /// report's rulesets.candidate.paths, which must lie in the current
    /// repository: a report is data, and rule files are quoted in errors].
    #[arg(long, num_args = 1.., value_name = "[NS:]PATH")]
    pub rules: Vec<RulePath>,
    /// Known-bad samples the narrowings must keep detecting
    /// [default: positives.paths of fpgate.toml].
    #[arg(long, num_args = 1.., value_name = "PATH")]
    pub positives: Vec<PathBuf>,
    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(Debug, Args)]
pub struct GateArgs {
    /// The rule update to be released: files or directories, each
    /// optionally prefixed with a namespace (NS:PATH)
    /// [default: rules.candidate of fpgate.toml].
    #[arg(long, num_args = 1.., value_name = "[NS:]PATH")]
    pub candidate: Vec<RulePath>,
    /// The released rules (NS:PATH as for --candidate). Without a baseline,
    /// every match of the candidate is new.
    #[arg(long, num_args = 1.., value_name = "[NS:]PATH", conflicts_with = "baseline_ref")]
    pub baseline: Vec<RulePath>,
    /// Take the baseline from the candidate's rule paths at this git
    /// revision of the current repository (e.g. a pull request's merge base).
    #[arg(long, value_name = "GIT_REF")]
    pub baseline_ref: Option<String>,
    /// Accepted false positives [default: exceptions.file of fpgate.toml, else
    /// fpgate-exceptions.toml beside it, if present].
    #[arg(long, value_name = "FILE")]
    pub exceptions: Option<PathBuf>,
    /// Apply fpgate.toml, the exceptions file and the corpus lock as they
    /// are at --baseline-ref, not the working tree's, so a change cannot
    /// loosen the gate that judges it (the working tree's are still diffed
    /// and reported). The default whenever --baseline-ref is given; kept
    /// so scripts that pass it keep working.
    #[arg(long)]
    pub policy_from_base: bool,
    /// Apply the working tree's fpgate.toml, exceptions file and lock even
    /// though --baseline-ref is given (a local check of one's own change,
    /// such as the pre-commit hook); the base's are still diffed. Only the
    /// command line, or policy.trust_worktree = true in the base's config,
    /// can ask for this: the change under review cannot.
    #[arg(long, conflicts_with = "policy_from_base")]
    pub policy_from_worktree: bool,
    /// Stale exceptions (that matched nothing) fail the gate.
    #[arg(long)]
    pub strict: bool,
    /// Compiler warnings in new or modified rules block the release.
    #[arg(long)]
    pub deny_warnings: bool,
    /// Only this warning code blocks (repeatable), e.g. slow_pattern.
    #[arg(long = "deny-warning", value_name = "CODE")]
    pub deny_warning_codes: Vec<String>,
    /// Known-bad samples (files or directories, read as data only): the
    /// candidate must keep detecting what the baseline detected; a lost
    /// detection blocks [default: positives.paths of fpgate.toml].
    #[arg(long, num_args = 1.., value_name = "PATH")]
    pub positives: Vec<PathBuf>,
    /// With --positives: an added or modified rule that detects no sample
    /// blocks the release.
    #[arg(long)]
    pub require_tested: bool,
    /// Check the corpus against this lock (from `fpgate corpus index`):
    /// missing or changed locked files are an error.
    #[arg(long, value_name = "FILE")]
    pub lock: Option<PathBuf>,
    /// The date exceptions expire against, YYYY-MM-DD [default: today, UTC].
    #[arg(long, value_name = "DATE")]
    pub today: Option<String>,
    /// Performance-regression gate: time the baseline and the candidate on
    /// the same sample of the corpus (alternating runs, medians) and block
    /// when the candidate is slower than --perf-ratio times the baseline.
    #[arg(long)]
    pub perf: bool,
    /// Largest accepted candidate/baseline time ratio.
    #[arg(long, value_name = "RATIO", default_value_t = 1.25)]
    pub perf_ratio: f64,
    /// Measured runs of each ruleset (after one warm-up run).
    #[arg(long, value_name = "N", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub perf_runs: u32,
    /// At most this many distinct files in the sample (chosen by content hash).
    #[arg(long, value_name = "N", default_value_t = 500)]
    pub perf_sample: usize,
    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(Debug, Args)]
pub struct IndexArgs {
    /// Corpus files or directories [default: corpus.paths of fpgate.toml].
    #[arg(long, num_args = 1.., value_name = "PATH")]
    pub corpus: Vec<PathBuf>,
    /// Where to write the lock (atomically).
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: PathBuf,
    /// Mark files matching this glob critical (repeatable).
    #[arg(long, value_name = "GLOB")]
    pub critical: Vec<String>,
    /// Leave files or directories matching this glob out (repeatable).
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,
    #[arg(long)]
    pub follow_symlinks: bool,
    /// Lock archives as files only, not their members [config:
    /// corpus.archives = false].
    #[arg(long)]
    pub no_archives: bool,
    /// The corpus recipe's artifacts are part of the corpus (read from the
    /// corpus store) [config: corpus.recipe].
    #[arg(long, value_name = "FILE")]
    pub recipe: Option<PathBuf>,
    /// The corpus store [config: corpus.store].
    #[arg(long, value_name = "DIR", env = "FPGATE_STORE")]
    pub store: Option<PathBuf>,
    /// Write the lock even when some files could not be read.
    #[arg(long)]
    pub allow_incomplete: bool,
    #[arg(long, short = 'j', value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub threads: Option<u16>,
    #[command(flatten)]
    pub config: ConfigArgs,
}

#[derive(Debug, Args)]
pub struct ExceptionsAddArgs {
    /// A JSON report of `fpgate gate --format json`.
    #[arg(long, value_name = "REPORT.json")]
    pub from: PathBuf,
    /// The exceptions file to append to [default: as for `gate`].
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Days until the stub entries expire.
    #[arg(long, default_value_t = 90)]
    pub days: u32,
    /// Today's date, YYYY-MM-DD [default: today, UTC].
    #[arg(long, value_name = "DATE")]
    pub today: Option<String>,
    #[command(flatten)]
    pub config: ConfigArgs,
}

pub use crate::render::{Format, ReportTarget};

/// Where and how a run's reports go (scan, gate, check, merge).
#[derive(Debug, Clone, Args)]
pub struct OutputArgs {
    /// Report format written to stdout (or --output) [default: human].
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Write the report to FILE instead of stdout (atomically; `-` is stdout).
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Also write FORMAT to PATH (repeatable; `-` is stdout): human, json,
    /// sarif, junit, github, markdown, html, concise, codequality. Under GitHub Actions
    /// (GITHUB_ACTIONS=true) annotations go to stderr and a markdown summary
    /// is appended to $GITHUB_STEP_SUMMARY as well.
    #[arg(long = "report", value_name = "FORMAT=PATH")]
    pub reports: Vec<ReportTarget>,
    /// Colour in human output.
    #[arg(long, value_enum, default_value = "auto")]
    pub color: ColorChoice,
    /// No progress bar and no summary line on stderr.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

#[derive(Debug, Clone, Args)]
pub struct ConfigArgs {
    /// Configuration file [default: the nearest fpgate.toml in the current
    /// directory or above].
    #[arg(long, value_name = "FILE", conflicts_with = "no_config")]
    pub config: Option<PathBuf>,
    /// Ignore fpgate.toml.
    #[arg(long)]
    pub no_config: bool,
}

#[derive(Debug, Clone, Args)]
pub struct CommonArgs {
    /// Known-clean files or directories, searched recursively
    /// [default: corpus.paths of fpgate.toml].
    #[arg(long, num_args = 1.., value_name = "PATH")]
    pub corpus: Vec<PathBuf>,
    /// Mark corpus files matching this glob critical (repeatable; adds to
    /// corpus.critical of fpgate.toml and the corpus MANIFEST's tier column).
    #[arg(long, value_name = "GLOB")]
    pub critical: Vec<String>,
    /// Leave files or directories matching this glob out of the corpus
    /// (repeatable; adds to corpus.exclude of fpgate.toml).
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,
    #[command(flatten)]
    pub out: OutputArgs,
    /// Worker threads [default: all cores].
    #[arg(long, short = 'j', value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub threads: Option<u16>,
    /// Pass (exit 0) even when some files could not be scanned; they are
    /// still listed in the report.
    #[arg(long)]
    pub allow_incomplete: bool,
    /// Define an external variable for the rules (repeatable). VALUE is a
    /// bool (true/false), an integer, a float, or else a string.
    #[arg(long = "define", short = 'd', value_name = "NAME=VALUE")]
    pub defines: Vec<Define>,
    /// Accept the regular expressions YARA accepts and yara-x does not by
    /// default, as `yr --relaxed-re-syntax` (also rules.relaxed_re_syntax).
    #[arg(long)]
    pub relaxed_re_syntax: bool,
    /// Treat module NAME as unsupported, as `yr --ignore-module` (repeatable;
    /// adds to rules.ignore_modules). Rules that use it are not compiled and
    /// are reported unevaluated: the run is incomplete (exit 3) unless
    /// --allow-unevaluated.
    #[arg(long = "ignore-module", value_name = "NAME")]
    pub ignore_modules: Vec<String>,
    /// Pass even when rules of the candidate could not be evaluated (they
    /// used an ignored module); they are still listed in the report.
    #[arg(long)]
    pub allow_unevaluated: bool,
    /// Per-file scan timeout in seconds; a file that times out is unscanned
    /// [default: 60].
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: Option<u64>,
    /// Files larger than this are not scanned (reported as too_large).
    /// A byte count or K/M/G suffixes (powers of 1024) [default: 256M].
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub max_file_size: Option<u64>,
    /// Follow symbolic links in the corpus (loops are detected and reported).
    #[arg(long)]
    pub follow_symlinks: bool,
    /// Scan archives (zip, jar, wheel, tar.gz, .deb, .rpm, CAB, MSI, 7z) as
    /// files only, not their members [config: corpus.archives = false].
    #[arg(long)]
    pub no_archives: bool,
    /// Add the artifacts of this corpus recipe (fpgate-corpus.toml) to the
    /// corpus, read from the corpus store (`fpgate corpus fetch`) and shown
    /// by their names [config: corpus.recipe; --corpus alone leaves the
    /// config's recipe out].
    #[arg(long, value_name = "FILE")]
    pub recipe: Option<PathBuf>,
    /// The corpus store the recipe's artifacts are read from [default:
    /// corpus.store of fpgate.toml, else corpus-store in the results cache
    /// directory].
    #[arg(long, value_name = "DIR", env = "FPGATE_STORE")]
    pub store: Option<PathBuf>,
    /// Report the slowest rules of the (candidate) ruleset over this scan:
    /// time in conditions and in pattern matching. Needs a build with
    /// `--features profiling`.
    #[arg(long)]
    pub profile: bool,
    /// Results cache directory (default: scan.cache in fpgate.toml, else
    /// $XDG_CACHE_HOME/fpgate or ~/.cache/fpgate). Unchanged files are not
    /// read again and unchanged rules are not run again.
    #[arg(long, value_name = "DIR", env = "FPGATE_CACHE")]
    pub cache: Option<PathBuf>,
    /// Scan only shard K of N (1 <= K <= N): the files whose content hash
    /// falls in it. Writes a partial report (JSON) for `fpgate merge`, and
    /// exits 0 once it is written: the merge gives the verdict.
    #[arg(long, value_name = "K/N")]
    pub shard: Option<crate::shard::Shard>,
    /// Scan every file with every rule; neither read nor write the cache
    /// (wins over --cache and FPGATE_CACHE).
    #[arg(long)]
    pub no_cache: bool,
    /// Triage each rule with a new false positive: how many clean files
    /// each of its patterns occurs in, which matched patterns the condition
    /// needs, and narrowings of the rule run over the corpus (and the
    /// known-bad samples) that clear the false positives without losing a
    /// detection, as diffs [config: triage.explain].
    #[arg(long)]
    pub explain: bool,
    #[command(flatten)]
    pub history: HistoryArgs,
    #[command(flatten)]
    pub config: ConfigArgs,
}

pub fn parse_size(s: &str) -> std::result::Result<u64, String> {
    let t = s.trim();
    let (num, mul) = match t.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        None => (t, 1u64),
        Some((i, _)) => {
            let mul = match t[i..].to_ascii_uppercase().as_str() {
                "K" | "KB" | "KIB" => 1 << 10,
                "M" | "MB" | "MIB" => 1 << 20,
                "G" | "GB" | "GIB" => 1 << 30,
                other => return Err(format!("unknown size unit `{other}` (use K, M or G)")),
            };
            (&t[..i], mul)
        }
    };
    let n: u64 = num.parse().map_err(|_| format!("`{s}` is not a size"))?;
    n.checked_mul(mul)
        .ok_or_else(|| format!("`{s}` is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_valid() {
        Cli::command().debug_assert();
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("10"), Ok(10));
        assert_eq!(parse_size("2K"), Ok(2048));
        assert_eq!(parse_size("256M"), Ok(256 << 20));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert!(parse_size("1T").is_err());
        assert!(parse_size("x").is_err());
    }
}
