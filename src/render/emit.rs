//! Writing a run's outputs: every report target, the GitHub Actions extras
//! (annotations on stderr, the step summary), the verdict line for the
//! person at the terminal, and compiler diagnostics on stderr.

use super::human::Style;
use super::output;
use super::output::ColorChoice;
use super::{Format, ReportTarget};
use crate::diagnostic::Diagnostic;
use crate::error::Result;
use crate::rules::Ruleset;
use crate::verdict::report::Report;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

/// Where a command's reports go and how they look.
#[derive(Debug, Clone)]
pub struct Output {
    /// Every report of the run, checked to go to distinct places.
    pub targets: Vec<ReportTarget>,
    /// `--output` (for a sharded run: where its partial report goes).
    pub path: Option<PathBuf>,
    pub color: ColorChoice,
    pub quiet: bool,
}

/// Diagnostics on stderr, as yara-x renders them.
pub fn print_diagnostics(diags: &[Diagnostic]) {
    for d in diags {
        eprintln!("{}", d.rendered);
    }
}

/// Compiler warnings in full on stderr, up to a limit: a public ruleset can
/// carry thousands, and the JSON report keeps every one.
pub fn print_warnings(rs: &Ruleset, quiet: bool) {
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

/// Colour for a report target: human format on a terminal's stdout, as
/// `--color` and `NO_COLOR` say.
pub fn human_color(t: &ReportTarget, choice: ColorChoice) -> bool {
    t.format == Format::Human
        && t.path.is_none()
        && output::use_color(
            choice,
            std::io::stdout().is_terminal(),
            std::env::var("NO_COLOR").ok().as_deref(),
        )
}

/// Write every report of a run, and what CI and a person at the terminal
/// also need.
pub fn emit(report: &Report, out: &Output) -> Result<()> {
    let targets = &out.targets;
    for t in targets {
        let color = human_color(t, out.color);
        let body = super::render(t.format, report, color);
        output::write(t.path.as_deref(), body.as_bytes())?;
    }
    // Under GitHub Actions: annotations on the rule lines (the runner reads
    // workflow commands from stderr as well as stdout) and the step summary.
    if std::env::var("GITHUB_ACTIONS").as_deref() == Ok("true") {
        let on_stdout = targets
            .iter()
            .any(|t| t.format == Format::Github && t.path.is_none());
        if !on_stdout {
            eprint!("{}", super::github::render(report));
        }
        if let Some(summary) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|s| !s.is_empty()) {
            output::append(
                Path::new(&summary),
                super::markdown::render(report).as_bytes(),
            )?;
        }
    }
    // A person reading a machine format on stdout, or a file, still wants
    // the verdict on the terminal; stderr is theirs.
    let human_on_stdout = targets
        .iter()
        .any(|t| matches!(t.format, Format::Human | Format::Concise) && t.path.is_none());
    if !human_on_stdout && !out.quiet {
        eprintln!(
            "{}",
            super::human::verdict_line(report, Style { color: false })
        );
    }
    Ok(())
}
