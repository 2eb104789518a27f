//! What the report carries of the run history (`--since-last`): the
//! comparison with the previous run of the same rules and the trend. The
//! history itself is kept and read by `triage::history`.

use crate::corpus::Tier;
use crate::verdict::report::Class;
use serde::Serialize;
use std::collections::BTreeMap;

/// What `--since-last` does.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    clap::ValueEnum,
    Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum SinceLast {
    /// No section.
    #[default]
    Off,
    /// Add the section to every format.
    Report,
    /// Add it, and a finding new since the last run (without an exception)
    /// blocks (exit 1).
    Block,
}

impl SinceLast {
    pub fn by_name(s: &str) -> Option<SinceLast> {
        match s {
            "off" => Some(SinceLast::Off),
            "report" => Some(SinceLast::Report),
            "block" => Some(SinceLast::Block),
            _ => None,
        }
    }
}

/// The report's history section (only with `--since-last`).
#[derive(Debug, Clone, Serialize, PartialEq, schemars::JsonSchema)]
pub struct HistorySection {
    pub mode: SinceLast,
    /// This run's id in the history (absent when it could not be recorded).
    pub run: Option<i64>,
    /// The series: the command, the rule paths and the corpus roots.
    pub series: String,
    /// The previous run of the series, if any.
    pub previous: Option<PastRun>,
    /// Findings of this run that the previous run did not have (by rule and
    /// content), critical first.
    pub new_since_last: Vec<SinceLastFinding>,
    /// Findings of the previous run that this run no longer has.
    pub gone_since_last: usize,
    /// New-since-last findings that block (`block` mode, no exception).
    pub blocking: usize,
    /// The last runs of the series, oldest first, this one last.
    pub trend: Vec<PastRun>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq, schemars::JsonSchema)]
pub struct SinceLastFinding {
    pub class: Class,
    pub tier: Tier,
    /// Covered by an exception (never blocks).
    pub excepted: bool,
    pub namespace: String,
    pub identifier: String,
    pub source: Option<String>,
    pub line: Option<usize>,
    pub sha256: String,
    pub paths: Vec<String>,
}

impl SinceLastFinding {
    pub fn rule(&self) -> String {
        crate::rules::rule_name(&self.namespace, &self.identifier)
    }
}

/// One line per finding new since the last run, for the machine formats.
pub struct SinceLastLine<'a> {
    pub finding: &'a SinceLastFinding,
    pub message: String,
    pub blocking: bool,
}

impl HistorySection {
    pub fn lines(&self) -> Vec<SinceLastLine<'_>> {
        let run = self.previous.as_ref().map_or(0, |p| p.id);
        self.new_since_last
            .iter()
            .map(|f| SinceLastLine {
                finding: f,
                message: format!(
                    "new since the last run of these rules (run {run}): rule {} matches the known-clean file {} ({} finding{}{})",
                    f.rule(),
                    f.paths.join(", "),
                    f.class.as_str(),
                    if f.tier == Tier::Critical { ", critical tier" } else { "" },
                    if f.excepted { ", excepted" } else { "" }
                ),
                blocking: self.mode == SinceLast::Block && !f.excepted,
            })
            .collect()
    }
}

/// One recorded run.
#[derive(Debug, Clone, Serialize, PartialEq, schemars::JsonSchema)]
pub struct PastRun {
    pub id: i64,
    /// RFC 3339, UTC.
    pub at: String,
    pub command: String,
    pub rules: String,
    pub corpus: String,
    pub rules_fingerprint: String,
    pub corpus_hash: String,
    pub files: usize,
    pub result: String,
    /// Findings (candidate matches on clean files, excepted included).
    pub findings: usize,
    /// Findings per class (new, persisting, excepted) and per tier.
    pub by_class: BTreeMap<String, usize>,
    pub by_tier: BTreeMap<String, usize>,
    /// Findings per rule.
    pub by_rule: BTreeMap<String, usize>,
}
