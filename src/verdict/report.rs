//! The report: the one value every output format is written from (findings,
//! rule changes, exceptions, the verdict, timings).
//!
//! Everything in a report is sorted, so two runs over the same inputs give
//! the same JSON except for `timings`.

use crate::cache::CacheStats;
use crate::corpus::format::Format;
use crate::corpus::lock::LockCheck;
use crate::corpus::{Tier, Unscanned};
use crate::diagnostic::Diagnostic;
use crate::exit::Exit;
use crate::rules::evidence::PatternEvidence;
use crate::rules::{RuleInfo, Ruleset};
use crate::verdict::changes::{Change, RuleChanges};
use crate::verdict::exceptions::ExceptionReport;
use serde::Serialize;
use std::collections::BTreeMap;

/// The JSON Schema (draft 2020-12) of the JSON report, generated from the
/// types that are serialised (docs/report.schema.json; a test keeps the
/// file equal to this).
pub fn json_schema() -> String {
    let mut schema = serde_json::to_value(schemars::schema_for!(Report)).unwrap_or_default();
    if let Some(o) = schema.as_object_mut() {
        o.insert(
            "title".into(),
            format!("fpgate JSON report, schema_version {SCHEMA_VERSION}").into(),
        );
    }
    let mut s = serde_json::to_string_pretty(&schema).unwrap_or_default();
    s.push('\n');
    s
}

/// Version of the JSON report layout. Bumped on any incompatible change.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    /// The candidate matches, the baseline did not: blocks the release.
    New,
    /// Both match: already shipped, reported, does not block.
    Persisting,
    /// The baseline matched, the candidate does not.
    Fixed,
    /// A known-bad sample the baseline detected and the candidate does not
    /// (`gate --positives`): blocks the release.
    Lost,
    /// A known-bad sample only the candidate detects.
    Gained,
    /// A known-bad sample both detect (a renamed rule counts as the same).
    Kept,
}

impl Class {
    pub fn as_str(self) -> &'static str {
        match self {
            Class::New => "new",
            Class::Persisting => "persisting",
            Class::Fixed => "fixed",
            Class::Lost => "lost",
            Class::Gained => "gained",
            Class::Kept => "kept",
        }
    }
}

/// One false positive: one rule on one clean content (all its paths).
#[derive(Debug, Clone, Serialize, PartialEq, schemars::JsonSchema)]
pub struct Finding {
    pub class: Class,
    /// Does this finding block the release?
    pub blocking: bool,
    /// Critical when any of its paths is in the critical tier.
    pub tier: Tier,
    pub rule: RuleInfo,
    /// For a gate with a baseline: is the rule added, modified or unchanged?
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule_change: Option<Change>,
    pub sha256: String,
    pub size: u64,
    pub format: Format,
    pub paths: Vec<String>,
    /// When a path names an archive member: every path as components (a
    /// file on disk as one, a member as its archive on disk and then each
    /// member name), in the order of `paths`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub path_components: Vec<Vec<String>>,
    /// The patterns that matched: from the candidate scan, or for a fixed
    /// false positive from the baseline scan.
    pub patterns: Vec<PatternEvidence>,
    /// The exception that covers it (only in `false_positives.excepted`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exception: Option<ExceptionReport>,
    /// Why a matching exception was not applied, and similar remarks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Critical by verified code signature (`[[tiers.critical]]`): who
    /// signed the file and to which rule's anchor the chain verified, one
    /// line per signature ("signed by CN=…, chain to pinned anchor `x`").
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signed_by: Vec<String>,
}

impl Finding {
    /// The one-line message of a finding, with its evidence: what happened
    /// to which file, and which patterns matched (for a lost detection, the
    /// patterns that matched in the baseline and no longer do).
    pub fn message(&self) -> String {
        let paths = self.paths.join(", ");
        let name = self.rule.name();
        let mut m = match self.class {
            Class::Lost => format!(
                "lost detection: rule {name} no longer detects the known-bad sample {paths}"
            ),
            Class::Gained => {
                format!("gained detection: rule {name} detects the known-bad sample {paths}")
            }
            Class::Kept => {
                format!("kept detection: rule {name} detects the known-bad sample {paths}")
            }
            c => format!(
                "{} false positive: rule {name} matches the known-clean file {paths}",
                c.as_str()
            ),
        };
        if self.tier == Tier::Critical {
            m.push_str(" (CRITICAL tier");
            for s in &self.signed_by {
                m.push_str(&format!("; {s}"));
            }
            m.push(')');
        }
        m.push_str(&format!(" [sha256 {}, {} bytes]", self.sha256, self.size));
        let ev: Vec<String> = self
            .patterns
            .iter()
            .filter_map(|p| {
                p.matches.first().map(|x| {
                    format!(
                        "{} at 0x{:x} \"{}\" ({} match(es))",
                        p.identifier, x.offset, x.text, p.match_count
                    )
                })
            })
            .collect();
        if !ev.is_empty() {
            m.push_str(match self.class {
                Class::Lost => ". The baseline matched: ",
                _ => ". Matched: ",
            });
            m.push_str(&ev.join("; "));
        }
        m
    }

    /// Report order: critical first, then by rule, then by path.
    pub fn order(a: &Finding, b: &Finding) -> std::cmp::Ordering {
        (a.tier, &a.rule.namespace, &a.rule.identifier, &a.paths).cmp(&(
            b.tier,
            &b.rule.namespace,
            &b.rule.identifier,
            &b.paths,
        ))
    }
}

/// Which command made a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunKind {
    Scan,
    Check,
    Gate,
}

impl RunKind {
    pub const ALL: [RunKind; 3] = [RunKind::Scan, RunKind::Check, RunKind::Gate];

    pub fn as_str(self) -> &'static str {
        match self {
            RunKind::Scan => "scan",
            RunKind::Check => "check",
            RunKind::Gate => "gate",
        }
    }

    /// The kind named `name` (as a partial report's key writes it).
    pub fn by_name(name: &str) -> Option<RunKind> {
        RunKind::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

impl std::fmt::Display for RunKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Serialize, PartialEq, schemars::JsonSchema)]
pub struct Tool {
    pub name: &'static str,
    pub version: &'static str,
    pub yara_x_version: &'static str,
}

impl Tool {
    pub fn current() -> Self {
        Tool {
            name: "fpgate",
            version: env!("CARGO_PKG_VERSION"),
            yara_x_version: yara_x::VERSION,
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq, schemars::JsonSchema)]
pub struct RulesetSummary {
    pub paths: Vec<String>,
    pub files: Vec<String>,
    pub rules: usize,
    pub fingerprint: String,
    pub per_file_externals: Vec<String>,
    pub warnings: Vec<Diagnostic>,
    /// Rules the engine did not compile (they use an ignored module).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unevaluated: Vec<crate::rules::Unevaluated>,
}

impl RulesetSummary {
    pub fn of(rs: &Ruleset) -> Self {
        RulesetSummary {
            paths: rs.paths.clone(),
            files: rs.files.clone(),
            rules: rs.rule_count(),
            fingerprint: rs.fingerprint.clone(),
            per_file_externals: rs
                .per_file_externals
                .iter()
                .map(|s| s.to_string())
                .collect(),
            warnings: rs.warnings.clone(),
            unevaluated: rs.unevaluated(),
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq, Default, schemars::JsonSchema)]
pub struct CorpusSummary {
    pub roots: Vec<String>,
    /// The corpus recipe whose artifacts are part of the corpus (shown by
    /// their names: `NAME`, members `NAME!member`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recipe: Option<crate::corpus::RecipeFacts>,
    /// Every entry found: regular files plus special files and links.
    pub entries: usize,
    /// Regular files found.
    pub files: usize,
    /// Files read, hashed and scanned (directly or as a duplicate).
    pub scanned_files: usize,
    /// Bytes of the scanned files (every path counted).
    pub bytes: u64,
    /// Distinct contents among the scanned files.
    pub unique_contents: usize,
    /// Bytes actually scanned (each distinct content once).
    pub unique_bytes: u64,
    pub unscanned_files: usize,
    /// Files in the critical tier.
    pub critical_files: usize,
    /// Scanned files per format.
    pub formats: BTreeMap<Format, usize>,
    /// sha256 over (path, size, sha256, format, tier) of every scanned file,
    /// as in a corpus lock: equal hashes mean the same corpus.
    pub hash: String,
    /// Present when the run was checked against a corpus lock.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lock: Option<LockCheck>,
    /// What was read of archives: their members are corpus files (counted
    /// above, named `ARCHIVE!member`).
    pub archives: ArchivesRead,
}

/// The members of archives in a run.
#[derive(Debug, Clone, Serialize, PartialEq, Default, schemars::JsonSchema)]
pub struct ArchivesRead {
    /// Were members read (`corpus.archives`, `--no-archives`)?
    pub read: bool,
    /// Files on disk whose members were read.
    pub archives: usize,
    /// Their members (regular files, at any depth), each a corpus file;
    /// what could not be read of an archive counts as one, unscanned.
    pub members: usize,
    /// Links, directories and devices inside archives: listed, not scanned
    /// and not counted unscanned.
    pub listed: Vec<crate::corpus::members::Listed>,
}

impl ArchivesRead {
    /// The counts of a corpus whose members are spliced in (`read` is the
    /// run's to set).
    pub fn of(corpus: &crate::corpus::Corpus) -> ArchivesRead {
        let mut archives = std::collections::BTreeSet::new();
        let mut members = 0;
        for f in &corpus.files {
            if f.member_names().is_some() {
                members += 1;
                archives.insert(f.path());
            }
        }
        ArchivesRead {
            read: false,
            archives: archives.len(),
            members,
            listed: corpus.listed.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq, Default, schemars::JsonSchema)]
pub struct FalsePositives {
    pub new: Vec<Finding>,
    pub persisting: Vec<Finding>,
    pub fixed: Vec<Finding>,
    /// New or persisting false positives covered by an exception.
    pub excepted: Vec<Finding>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Default, schemars::JsonSchema)]
pub struct TierCounts {
    pub new: usize,
    pub persisting: usize,
    pub fixed: usize,
    pub excepted: usize,
}

#[derive(Debug, Clone, Serialize, PartialEq, schemars::JsonSchema)]
pub struct ExceptionsSummary {
    pub file: String,
    /// Every entry with its status, in file order. Entries with
    /// `critical = true` are always listed here.
    pub entries: Vec<ExceptionReport>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Default, schemars::JsonSchema)]
pub struct Counts {
    pub new: usize,
    pub persisting: usize,
    pub fixed: usize,
    /// Distinct rules with at least one new false positive.
    pub new_rules: usize,
    /// Distinct corpus paths with at least one new false positive.
    pub new_files: usize,
    pub unscanned: usize,
    pub excepted: usize,
    pub blocking: usize,
    pub blocking_warnings: usize,
    pub exceptions_stale: usize,
    pub exceptions_expired: usize,
    pub exceptions_not_applied: usize,
    /// Candidate rules that could not be evaluated (`--ignore-module`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub unevaluated_rules: usize,
    pub by_tier: BTreeMap<Tier, TierCounts>,
}

#[derive(Debug, Clone, Serialize, PartialEq, schemars::JsonSchema)]
pub struct Verdict {
    /// pass, blocked or incomplete.
    pub result: Exit,
    pub exit_code: i32,
    pub allow_incomplete: bool,
    /// `--allow-unevaluated` (shown only when given).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_unevaluated: bool,
    pub strict: bool,
    /// The run was interrupted: the report is partial, and the verdict can
    /// only be "blocked" or "incomplete".
    pub interrupted: bool,
    /// Why the verdict is what it is, one line each.
    pub reasons: Vec<String>,
    pub counts: Counts,
}

#[derive(Debug, Clone, Serialize, PartialEq, Default, schemars::JsonSchema)]
pub struct Timings {
    pub compile_seconds: f64,
    pub scan_seconds: f64,
    pub total_seconds: f64,
    /// Corpus bytes (every path) per second of scan time, in MB/s (10^6).
    pub throughput_mb_per_s: f64,
    pub files_per_s: f64,
    pub threads: usize,
    /// Bytes the archive decoders produced to read members (0 when no
    /// archive was opened; a merged report sums its shards').
    #[serde(default)]
    pub decoded_bytes: u64,
    /// What the results cache saved in this run (absent with `--no-cache`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache: Option<CacheStats>,
    /// A gate: the baseline rules answered by the candidate's scan of each
    /// file (same rule, same key), and the ones run on their own (modified,
    /// removed, and the rules they use). Absent when both sets ran in full.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared_scan: Option<SharedScan>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Default, schemars::JsonSchema)]
pub struct SharedScan {
    pub shared_rules: usize,
    pub own_rules: usize,
}

impl Timings {
    /// A run's timings (seconds, rounded to ms); speeds are per second of
    /// scan time over every path of the corpus.
    pub fn of(
        corpus: &CorpusSummary,
        compile_seconds: f64,
        scan_seconds: f64,
        total_seconds: f64,
        threads: usize,
        cache: Option<CacheStats>,
    ) -> Timings {
        let r3 = |x: f64| (x * 1000.0).round() / 1000.0;
        let per_s = |n: f64| r3(n / scan_seconds.max(1e-9));
        Timings {
            compile_seconds: r3(compile_seconds),
            scan_seconds: r3(scan_seconds),
            total_seconds: r3(total_seconds),
            throughput_mb_per_s: per_s(corpus.bytes as f64 / 1e6),
            files_per_s: per_s(corpus.scanned_files as f64),
            threads,
            decoded_bytes: 0,
            cache,
            shared_scan: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq, schemars::JsonSchema)]
pub struct Report {
    pub schema_version: u32,
    pub tool: Tool,
    pub command: RunKind,
    pub rulesets: BTreeMap<&'static str, RulesetSummary>,
    pub corpus: CorpusSummary,
    pub false_positives: FalsePositives,
    /// Added / modified / removed rules (gate with a baseline).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule_changes: Option<RuleChanges>,
    /// Compiler warnings in new or modified rules that the warning policy
    /// turns into blocking findings.
    pub blocking_warnings: Vec<Diagnostic>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exceptions: Option<ExceptionsSummary>,
    /// `--profile`: the slowest rules of the candidate over this scan.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<Vec<crate::engine::RuleCost>>,
    /// `gate --perf`: baseline and candidate timed on the same sample.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub performance: Option<crate::verdict::perf::PerfReport>,
    pub unscanned: Vec<Unscanned>,
    /// `gate --positives`: lost, gained and kept detections of known-bad
    /// samples, untested rules, samples named in rule meta.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detections: Option<crate::verdict::detections::Detections>,
    /// `gate --baseline-ref`: fpgate.toml and the exceptions file against
    /// the base revision's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_changes: Option<crate::verdict::policy_changes::PolicyChanges>,
    /// `--since-last`: findings new since the last run of these rules, and
    /// the trend of the last runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<crate::verdict::history::HistorySection>,
    /// `--explain`: prevalence and necessity of the new false positives'
    /// patterns, and validated narrowings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub triage: Option<crate::verdict::triage::Triage>,
    pub verdict: Verdict,
    pub timings: Timings,
    /// Every rule of the candidate set (for per-rule formats such as JUnit).
    #[serde(skip)]
    pub candidate_rules: Vec<RuleInfo>,
}

impl Report {
    /// The exit code the verdict gives.
    pub fn exit(&self) -> Exit {
        self.verdict.result
    }
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}
