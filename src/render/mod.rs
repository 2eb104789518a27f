//! Every output format, written from the same in-memory `Report`, so no
//! format can disagree with another.

pub mod codequality;
pub mod concise;
pub mod emit;
pub mod github;
pub mod html;
pub mod human;
pub mod junit;
pub mod markdown;
pub mod output;
pub mod sarif;
pub mod terminal;

use crate::error::{Error, Result};
use crate::render::human::Style;

use crate::verdict::report::Report;
use clap::ValueEnum;
pub use emit::Output;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Human,
    Json,
    Sarif,
    Junit,
    Github,
    Markdown,
    Html,
    /// One `path:line:col: level: message` line per problem (editors).
    Concise,
    /// GitLab Code Quality.
    Codequality,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Human => "human",
            Format::Json => "json",
            Format::Sarif => "sarif",
            Format::Junit => "junit",
            Format::Github => "github",
            Format::Markdown => "markdown",
            Format::Html => "html",
            Format::Concise => "concise",
            Format::Codequality => "codequality",
        }
    }
}

/// `--report FORMAT=PATH`: one more report of the run (`-` is stdout).
#[derive(Debug, Clone, PartialEq)]
pub struct ReportTarget {
    pub format: Format,
    /// None: stdout.
    pub path: Option<PathBuf>,
}

impl std::str::FromStr for ReportTarget {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let (f, p) = s.split_once('=').ok_or_else(|| {
            format!("`{s}` is not FORMAT=PATH (e.g. sarif=fpgate.sarif, junit=-)")
        })?;
        let format = Format::from_str(f, true).map_err(|_| {
            format!(
                "unknown report format `{f}` (human, json, sarif, junit, github, markdown, html, concise, codequality)"
            )
        })?;
        if p.is_empty() {
            return Err(format!("`{s}`: the path is empty (use - for stdout)"));
        }
        Ok(ReportTarget {
            format,
            path: (p != "-").then(|| PathBuf::from(p)),
        })
    }
}

/// Render one format. `color` only affects `human`.
pub fn render(format: Format, r: &Report, color: bool) -> String {
    match format {
        Format::Human => human::render(r, Style { color }),
        Format::Json => {
            let mut s = serde_json::to_string_pretty(r).expect("report serialises");
            s.push('\n');
            s
        }
        Format::Sarif => sarif::render(r),
        Format::Junit => junit::render(r),
        Format::Github => github::render(r),
        Format::Markdown => markdown::render(r),
        Format::Html => html::render(r),
        Format::Concise => concise::render(r),
        Format::Codequality => codequality::render(r),
    }
}

/// Refuse two outputs to the same place: the second would overwrite the first.
pub fn check_distinct(targets: &[ReportTarget]) -> Result<()> {
    let mut seen: Vec<(Option<PathBuf>, Format)> = Vec::new();
    for t in targets {
        let key = t.path.as_deref().map(normalise);
        if let Some((_, other)) = seen.iter().find(|(k, _)| *k == key) {
            return Err(Error::usage(format!(
                "the {} and {} reports would both be written to {}: give each its own path",
                other.name(),
                t.format.name(),
                t.path
                    .as_deref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|| "stdout".into())
            )));
        }
        seen.push((key, t.format));
    }
    Ok(())
}

/// An absolute form of `p` for comparison (its directory resolved if it
/// exists, so `a/../r.json` and `r.json` compare equal).
fn normalise(p: &Path) -> PathBuf {
    let abs = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|d| d.join(p))
            .unwrap_or_else(|_| p.to_path_buf())
    };
    match (
        abs.parent().and_then(|d| d.canonicalize().ok()),
        abs.file_name(),
    ) {
        (Some(d), Some(n)) => d.join(n),
        _ => abs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_targets_parse() {
        let t: ReportTarget = "sarif=out/x.sarif".parse().unwrap();
        assert_eq!(t.format, Format::Sarif);
        assert_eq!(t.path, Some(PathBuf::from("out/x.sarif")));
        let t: ReportTarget = "JUnit=-".parse().unwrap();
        assert_eq!((t.format, t.path), (Format::Junit, None));
        assert!("sarif".parse::<ReportTarget>().is_err());
        assert!("pdf=x".parse::<ReportTarget>().is_err());
        assert!("json=".parse::<ReportTarget>().is_err());
    }

    #[test]
    fn same_destination_twice_is_refused() {
        let a: ReportTarget = "json=r.out".parse().unwrap();
        let b: ReportTarget = "sarif=./r.out".parse().unwrap();
        let c: ReportTarget = "junit=-".parse().unwrap();
        let d: ReportTarget = "html=-".parse().unwrap();
        assert!(check_distinct(&[a.clone(), c.clone()]).is_ok());
        assert!(check_distinct(&[a, b])
            .unwrap_err()
            .to_string()
            .contains("both be written to"));
        assert!(check_distinct(&[c, d]).is_err());
    }
}

/// The triage of one matched pattern of a finding, one line: how common it
/// is in clean files, and whether this false positive needs it.
pub fn triage_note(
    t: &crate::triage::Triage,
    rt: &crate::triage::RuleTriage,
    sha256: &str,
    pattern: &str,
) -> String {
    let mut parts = Vec::new();
    if let Some(p) = rt.prevalence(pattern) {
        parts.push(format!(
            "{pattern} alone occurs in {} of {} clean files",
            p.clean_files, t.clean_files
        ));
    }
    if let Some(n) = rt.necessity_of(sha256) {
        if n.necessary.iter().any(|x| x == pattern) {
            parts.push("necessary: without it the rule does not match this file".into());
        } else if n.not_necessary.iter().any(|x| x == pattern) {
            parts.push("not necessary: the rule matches this file without it".into());
        }
    }
    parts.join("; ")
}

/// What one false positive needs, one line.
pub fn necessity_line(n: &crate::triage::Necessity) -> String {
    if n.necessary.is_empty() {
        let pairs: Vec<String> = n.necessary_pairs.iter().map(|p| p.join(" + ")).collect();
        let mut line = format!(
            "no single matched pattern is necessary: the rule still matches with any one of {} taken out",
            n.not_necessary.join(", ")
        );
        if !pairs.is_empty() {
            line.push_str(&format!(
                "; taking out both of {} clears it",
                pairs.join(", or ")
            ));
        }
        line
    } else {
        format!(
            "the condition needs {}: narrowing {} clears this false positive",
            n.necessary.join(", "),
            if n.necessary.len() == 1 {
                "it"
            } else {
                "any one of them"
            }
        )
    }
}

/// The history section's lines: the comparison, then one line per finding
/// new since the last run.
pub fn since_last_lines(h: &crate::triage::history::HistorySection) -> Vec<String> {
    let mut out = Vec::new();
    match &h.previous {
        Some(p) => out.push(format!(
            "{} finding(s) new since the last run of these rules (run {} at {}), {} gone{}",
            h.new_since_last.len(),
            p.id,
            p.at,
            h.gone_since_last,
            if h.blocking > 0 {
                format!("; {} block (--since-last=block)", h.blocking)
            } else {
                String::new()
            }
        )),
        None => out.push(
            "no earlier run of these rules over this corpus is recorded: nothing to compare with"
                .into(),
        ),
    }
    out.extend(h.notes.iter().cloned());
    out
}
