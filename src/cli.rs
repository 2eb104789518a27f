//! Command-line interface: parse, validate into options, run, map to an
//! exit code. `main` only calls `run`.

use crate::corpus::{self, WalkOptions};
use crate::error::{Error, Result};
use crate::exit::{Exit, HELP as EXIT_HELP};
use crate::human::{self, Style};
use crate::output::{self, ColorChoice};
use crate::report::{self, Inputs, Report, Timings, Tool, SCHEMA_VERSION};
use crate::rules::{self, CompileOptions, Define, Diagnostic, Ruleset};
use crate::scan::{self, ScanOptions};
use clap::{Args, Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::{Duration, Instant};

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
}

#[derive(Debug, Args)]
pub struct ScanArgs {
    /// Rule files, or directories searched recursively for *.yar / *.yara.
    #[arg(long, required = true, num_args = 1.., value_name = "PATH")]
    pub rules: Vec<PathBuf>,
    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(Debug, Args)]
pub struct GateArgs {
    /// The rule update to be released: files or directories.
    #[arg(long, required = true, num_args = 1.., value_name = "PATH")]
    pub candidate: Vec<PathBuf>,
    /// The released rules. Without it, every match of the candidate is new.
    #[arg(long, num_args = 1.., value_name = "PATH")]
    pub baseline: Vec<PathBuf>,
    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Human,
    Json,
}

#[derive(Debug, Args)]
pub struct CommonArgs {
    /// Known-clean files or directories (searched recursively).
    #[arg(long, required = true, num_args = 1.., value_name = "PATH")]
    pub corpus: Vec<PathBuf>,
    /// Report format written to stdout (or --output).
    #[arg(long, value_enum, default_value = "human")]
    pub format: Format,
    /// Write the report to FILE instead of stdout (atomically; `-` is stdout).
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
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
    /// Per-file scan timeout in seconds; a file that times out is unscanned.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub timeout: u64,
    /// Files larger than this are not scanned (reported as too_large).
    /// Accepts a plain byte count or K/M/G suffixes (powers of 1024).
    #[arg(long, value_name = "SIZE", default_value = "256M", value_parser = parse_size)]
    pub max_file_size: u64,
    /// Follow symbolic links in the corpus (loops are detected and reported).
    #[arg(long)]
    pub follow_symlinks: bool,
    /// Colour in human output.
    #[arg(long, value_enum, default_value = "auto")]
    pub color: ColorChoice,
    /// No progress bar and no summary line on stderr.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

fn parse_size(s: &str) -> std::result::Result<u64, String> {
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

/// Parse the command line, run, and return the process exit code.
pub fn run() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => 0,
                _ => Exit::Error.code(),
            };
        }
    };
    let (command, candidate, baseline, common) = match &cli.command {
        Command::Scan(a) => ("scan", &a.rules, &[][..], &a.common),
        Command::Gate(a) => ("gate", &a.candidate, &a.baseline[..], &a.common),
    };
    match execute(command, candidate, baseline, common) {
        Ok(exit) => exit.code(),
        Err(e) => {
            report_error(command, common, &e);
            Exit::Error.code()
        }
    }
}

fn execute(
    command: &'static str,
    candidate_paths: &[PathBuf],
    baseline_paths: &[PathBuf],
    common: &CommonArgs,
) -> Result<Exit> {
    let started = Instant::now();
    let copts = CompileOptions {
        defines: common.defines.clone(),
    };

    let candidate = rules::compile("candidate", candidate_paths, &copts)?;
    let baseline = if baseline_paths.is_empty() {
        None
    } else {
        Some(rules::compile("baseline", baseline_paths, &copts)?)
    };
    let compile_seconds = started.elapsed().as_secs_f64();
    for rs in std::iter::once(&candidate).chain(baseline.as_ref()) {
        print_diagnostics(&rs.warnings);
    }

    let corpus = corpus::walk(
        &common.corpus,
        &WalkOptions {
            follow_symlinks: common.follow_symlinks,
        },
    )?;

    let threads = common.threads.map(usize::from).unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    let opts = ScanOptions {
        threads,
        timeout: Duration::from_secs(common.timeout.max(1)),
        max_file_size: common.max_file_size,
        follow_symlinks: common.follow_symlinks,
    };
    let progress = progress_bar(corpus.files.len() as u64, common.quiet);
    let mut sets: Vec<&Ruleset> = vec![&candidate];
    sets.extend(baseline.as_ref());
    let scan_started = Instant::now();
    let outcomes = scan::scan_files(&corpus.files, &sets, &opts, &progress);
    let scan_seconds = scan_started.elapsed().as_secs_f64();
    progress.finish_and_clear();

    let mut report = report::build(Inputs {
        command,
        candidate: &candidate,
        baseline: baseline.as_ref(),
        corpus: &corpus,
        outcomes: &outcomes,
        allow_incomplete: common.allow_incomplete,
        timings: Timings::default(),
    });
    report.timings = Timings {
        compile_seconds: round3(compile_seconds),
        scan_seconds: round3(scan_seconds),
        total_seconds: round3(started.elapsed().as_secs_f64()),
        throughput_mb_per_s: round3(report.corpus.bytes as f64 / 1e6 / scan_seconds.max(1e-9)),
        files_per_s: round3(report.corpus.scanned_files as f64 / scan_seconds.max(1e-9)),
        threads,
    };

    emit(&report, common)?;
    Ok(report.exit())
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn emit(report: &Report, common: &CommonArgs) -> Result<()> {
    let to_file = common.output.as_ref().is_some_and(|p| p.as_os_str() != "-");
    let body = match common.format {
        Format::Json => {
            let mut s = serde_json::to_string_pretty(report).expect("report serialises");
            s.push('\n');
            s
        }
        Format::Human => {
            let color = !to_file
                && output::use_color(
                    common.color,
                    std::io::stdout().is_terminal(),
                    std::env::var("NO_COLOR").ok().as_deref(),
                );
            human::render(report, Style { color })
        }
    };
    output::write(common.output.as_deref(), body.as_bytes())?;
    // A person reading a JSON report on stdout, or a file, still wants the
    // verdict on the terminal; stderr is theirs.
    if (to_file || common.format != Format::Human) && !common.quiet {
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

fn print_diagnostics(diags: &[Diagnostic]) {
    for d in diags {
        eprintln!("{}", d.rendered);
    }
}

/// An error ends the run without a verdict: say so on stderr, and when the
/// user asked for JSON, write a JSON error report so CI still has a file.
fn report_error(command: &str, common: &CommonArgs, e: &Error) {
    let diagnostics: Vec<Diagnostic> = match e {
        Error::Compile {
            errors, warnings, ..
        } => {
            print_diagnostics(warnings);
            print_diagnostics(errors);
            errors.iter().chain(warnings.iter()).cloned().collect()
        }
        _ => Vec::new(),
    };
    eprintln!("fpgate: error: {e}");
    if common.format == Format::Json {
        let v = serde_json::json!({
            "schema_version": SCHEMA_VERSION,
            "tool": Tool::current(),
            "command": command,
            "verdict": {
                "result": "error",
                "exit_code": Exit::Error.code(),
                "message": e.to_string(),
            },
            "diagnostics": diagnostics,
        });
        let mut s = serde_json::to_string_pretty(&v).expect("error report serialises");
        s.push('\n');
        if let Err(w) = output::write(common.output.as_deref(), s.as_bytes()) {
            eprintln!("fpgate: error: {w}");
        }
    }
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
