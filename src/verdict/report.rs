//! The in-memory report every output format is written from, and the
//! classification of matches into new / persisting / fixed false positives.
//!
//! Everything in a report is sorted, so two runs over the same inputs give
//! the same JSON except for `timings`.

use crate::cache::CacheStats;
use crate::corpus::lock::LockCheck;
use crate::corpus::{Corpus, Reason, Unscanned};
use crate::diagnostic::Diagnostic;
use crate::engine::{Hit, Outcome};
use crate::exit::Exit;
use crate::rules::evidence::PatternEvidence;
use crate::rules::{RuleInfo, RuleKey, Ruleset};
use crate::verdict::exceptions::{ExceptionReport, ExceptionSet, Status};
use crate::verdict::policy::{self, Change, RuleChanges, Tier};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// Version of the JSON report layout. Bumped on any incompatible change.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    /// The candidate matches, the baseline did not: blocks the release.
    New,
    /// Both match: already shipped, reported, does not block.
    Persisting,
    /// The baseline matched, the candidate does not.
    Fixed,
}

impl Class {
    pub fn as_str(self) -> &'static str {
        match self {
            Class::New => "new",
            Class::Persisting => "persisting",
            Class::Fixed => "fixed",
        }
    }
}

/// One false positive: one rule on one clean content (all its paths).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Finding {
    pub class: Class,
    /// Does this finding block the release?
    pub blocking: bool,
    /// "critical" when any of its paths is in the critical tier.
    pub tier: Tier,
    pub rule: RuleInfo,
    /// For a gate with a baseline: is the rule added, modified or unchanged?
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule_change: Option<Change>,
    pub sha256: String,
    pub size: u64,
    /// "pe", "dotnet", "elf", "macho", "script" or "other".
    pub format: String,
    pub paths: Vec<String>,
    /// The patterns that matched: from the candidate scan, or for a fixed
    /// false positive from the baseline scan.
    pub patterns: Vec<PatternEvidence>,
    /// The exception that covers it (only in `false_positives.excepted`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exception: Option<ExceptionReport>,
    /// Why a matching exception was not applied, and similar remarks.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl Finding {
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

#[derive(Debug, Clone, Serialize, PartialEq)]
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

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RulesetSummary {
    pub paths: Vec<String>,
    pub files: Vec<String>,
    pub rules: usize,
    pub fingerprint: String,
    pub per_file_externals: Vec<String>,
    pub warnings: Vec<Diagnostic>,
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
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct CorpusSummary {
    pub roots: Vec<String>,
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
    pub formats: BTreeMap<String, usize>,
    /// sha256 over (path, size, sha256, format, tier) of every scanned file,
    /// as in a corpus lock: equal hashes mean the same corpus.
    pub hash: String,
    /// Present when the run was checked against a corpus lock.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lock: Option<LockCheck>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct FalsePositives {
    pub new: Vec<Finding>,
    pub persisting: Vec<Finding>,
    pub fixed: Vec<Finding>,
    /// New or persisting false positives covered by an exception.
    pub excepted: Vec<Finding>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct TierCounts {
    pub new: usize,
    pub persisting: usize,
    pub fixed: usize,
    pub excepted: usize,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ExceptionsSummary {
    pub file: String,
    /// Every entry with its status, in file order. Entries with
    /// `critical = true` are always listed here.
    pub entries: Vec<ExceptionReport>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Default)]
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
    pub by_tier: BTreeMap<&'static str, TierCounts>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Verdict {
    /// "pass", "blocked" or "incomplete".
    pub result: &'static str,
    pub exit_code: i32,
    pub allow_incomplete: bool,
    pub strict: bool,
    /// The run was interrupted: the report is partial, and the verdict can
    /// only be "blocked" or "incomplete".
    pub interrupted: bool,
    /// Why the verdict is what it is, one line each.
    pub reasons: Vec<String>,
    pub counts: Counts,
}

#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct Timings {
    pub compile_seconds: f64,
    pub scan_seconds: f64,
    pub total_seconds: f64,
    /// Corpus bytes (every path) per second of scan time, in MB/s (10^6).
    pub throughput_mb_per_s: f64,
    pub files_per_s: f64,
    pub threads: usize,
    /// What the results cache saved in this run (absent with `--no-cache`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache: Option<CacheStats>,
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
            cache,
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Report {
    pub schema_version: u32,
    pub tool: Tool,
    /// "scan" or "gate".
    pub command: &'static str,
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
    pub verdict: Verdict,
    pub timings: Timings,
    /// Every rule of the candidate set (for per-rule formats such as JUnit).
    #[serde(skip)]
    pub candidate_rules: Vec<RuleInfo>,
}

impl Report {
    /// Add a blocking reason found after the report was built (the
    /// performance gate); blocked wins over every other verdict.
    pub fn block(&mut self, reason: String) {
        self.verdict.reasons.insert(0, reason);
        self.verdict.result = Exit::Blocked.name();
        self.verdict.exit_code = Exit::Blocked.code();
    }

    pub fn exit(&self) -> Exit {
        match self.verdict.result {
            "blocked" => Exit::Blocked,
            "incomplete" => Exit::Incomplete,
            _ => Exit::Pass,
        }
    }
}

/// Everything needed to build a report from a finished scan.
pub struct Inputs<'a> {
    pub command: &'static str,
    pub candidate: &'a Ruleset,
    pub baseline: Option<&'a Ruleset>,
    pub corpus: &'a Corpus,
    pub outcomes: &'a [Outcome],
    pub allow_incomplete: bool,
    pub interrupted: bool,
    pub timings: Timings,
    pub policy: Policy<'a>,
}

/// The gate policy of a run.
#[derive(Default)]
pub struct Policy<'a> {
    pub exceptions: Option<&'a ExceptionSet>,
    pub today: Option<jiff::civil::Date>,
    /// Stale exceptions fail the gate.
    pub strict: bool,
    pub deny_warnings: bool,
    pub deny_codes: Vec<String>,
}

/// Build the report: group paths by content, classify, apply the policy,
/// count, decide.
pub fn build(inp: Inputs<'_>) -> Report {
    let files = &inp.corpus.files;
    let mut unscanned: Vec<Unscanned> = inp.corpus.skipped.clone();
    let critical: BTreeSet<&str> = files
        .iter()
        .filter(|f| f.critical)
        .map(|f| f.display.as_str())
        .collect();

    // Content groups: every path of one content, and its scan results.
    let mut groups: BTreeMap<[u8; 32], (u64, &'static str, Vec<usize>)> = BTreeMap::new();
    let mut failed: BTreeMap<[u8; 32], (Reason, String, String)> = BTreeMap::new();
    for (i, out) in inp.outcomes.iter().enumerate() {
        match out {
            Outcome::Scanned {
                sha256,
                size,
                format,
                ..
            } => {
                groups
                    .entry(*sha256)
                    .or_insert((*size, format, Vec::new()))
                    .2
                    .push(i);
            }
            Outcome::Unscanned {
                reason,
                detail,
                sha256,
                ..
            } => {
                unscanned.push(Unscanned {
                    path: files[i].display.clone(),
                    reason: *reason,
                    detail: detail.clone(),
                });
                if let Some(sha) = sha256 {
                    failed.insert(*sha, (*reason, detail.clone(), files[i].display.clone()));
                }
            }
        }
    }

    let mut corpus = CorpusSummary {
        roots: inp.corpus.roots.clone(),
        entries: files.len() + inp.corpus.skipped.len(),
        files: files.len(),
        critical_files: critical.len(),
        ..Default::default()
    };

    // (class, rule, sha) -> (paths, evidence)
    type Found = BTreeMap<(Class, RuleKey, [u8; 32]), (BTreeSet<String>, Vec<PatternEvidence>)>;
    let mut found: Found = BTreeMap::new();
    let mut contents: BTreeMap<[u8; 32], (u64, &'static str)> = BTreeMap::new();
    let mut scanned_ok = vec![false; files.len()];
    for (sha, (size, format, idxs)) in &groups {
        let scans: Vec<(usize, &Vec<Vec<Hit>>)> = idxs
            .iter()
            .filter_map(|&i| match &inp.outcomes[i] {
                Outcome::Scanned { hits: Some(h), .. } => Some((i, h)),
                _ => None,
            })
            .collect();
        if scans.is_empty() {
            // The only scan of this content failed: its duplicates were not
            // scanned either, and must not be counted as clean.
            let (reason, detail, owner) = failed.get(sha).cloned().unwrap_or((
                Reason::ScanError,
                "content was never scanned".into(),
                String::new(),
            ));
            for &i in idxs {
                unscanned.push(Unscanned {
                    path: files[i].display.clone(),
                    reason,
                    detail: format!("{detail} (same content as {owner})"),
                });
            }
            continue;
        }
        for &i in idxs {
            scanned_ok[i] = true;
        }
        corpus.scanned_files += idxs.len();
        corpus.bytes += size * idxs.len() as u64;
        corpus.unique_contents += 1;
        corpus.unique_bytes += size;
        *corpus.formats.entry(format.to_string()).or_default() += idxs.len();
        contents.insert(*sha, (*size, format));

        // One scan stands for every path of the content, unless each path
        // was scanned on its own (per-path external variables).
        let per_path = scans.len() == idxs.len();
        for (i, hits) in scans {
            let paths: Vec<String> = if per_path {
                vec![files[i].display.clone()]
            } else {
                idxs.iter().map(|&j| files[j].display.clone()).collect()
            };
            for (class, rule, evidence) in classify(hits, inp.baseline.is_some()) {
                let e = found
                    .entry((class, rule, *sha))
                    .or_insert_with(|| (BTreeSet::new(), evidence));
                e.0.extend(paths.iter().cloned());
            }
        }
    }
    corpus.hash = crate::corpus::lock::entries(
        inp.corpus,
        &crate::engine::contents(inp.outcomes, &scanned_ok),
    )
    .map(|e| crate::corpus::lock::corpus_hash(&e))
    .unwrap_or_default();

    let changes = inp.baseline.map(|b| policy::rule_changes(inp.candidate, b));

    let mut fps = FalsePositives::default();
    for ((class, rule, sha), (paths, patterns)) in found {
        let ruleset = if class == Class::Fixed {
            inp.baseline.unwrap_or(inp.candidate)
        } else {
            inp.candidate
        };
        let info = ruleset
            .info
            .get(&rule)
            .cloned()
            .unwrap_or_else(|| RuleInfo {
                namespace: rule.0.clone(),
                identifier: rule.1.clone(),
                source: None,
                line: None,
                tags: Vec::new(),
                description: None,
                author: None,
                fingerprint: None,
            });
        let (size, format) = contents.get(&sha).copied().unwrap_or((0, "other"));
        let tier = if paths.iter().any(|p| critical.contains(p.as_str())) {
            Tier::Critical
        } else {
            Tier::Standard
        };
        let rule_change = match (&changes, class) {
            (Some((_, map)), Class::New | Class::Persisting) => map.get(&rule).copied(),
            _ => None,
        };
        let f = Finding {
            class,
            blocking: false,
            tier,
            rule: info,
            rule_change,
            sha256: crate::util::hex::hex(&sha),
            size,
            format: format.to_string(),
            paths: paths.into_iter().collect(),
            patterns,
            exception: None,
            notes: Vec::new(),
        };
        match class {
            Class::New => fps.new.push(f),
            Class::Persisting => fps.persisting.push(f),
            Class::Fixed => fps.fixed.push(f),
        }
    }

    let today = inp
        .policy
        .today
        .unwrap_or_else(crate::verdict::exceptions::today);
    let exceptions = inp.policy.exceptions.map(|set| {
        let (excepted, entries) =
            policy::apply_exceptions(set, today, &mut fps.new, &mut fps.persisting);
        fps.excepted = excepted;
        ExceptionsSummary {
            file: set.file.clone(),
            entries,
        }
    });
    for list in [
        &mut fps.new,
        &mut fps.persisting,
        &mut fps.fixed,
        &mut fps.excepted,
    ] {
        list.sort_by(Finding::order);
        for f in list.iter_mut() {
            f.blocking = policy::blocks(f);
        }
    }

    let blocking_warnings = policy::blocking_warnings(
        inp.candidate,
        changes.as_ref().map(|c| &c.1),
        inp.policy.deny_warnings,
        &inp.policy.deny_codes,
    );

    unscanned.sort();
    unscanned.dedup();
    corpus.unscanned_files = unscanned.len();

    let status_count = |s: Status| {
        exceptions
            .as_ref()
            .map(|e| e.entries.iter().filter(|x| x.status == s).count())
            .unwrap_or(0)
    };
    let mut by_tier: BTreeMap<&'static str, TierCounts> = BTreeMap::new();
    for t in ["critical", "standard"] {
        by_tier.insert(t, TierCounts::default());
    }
    let tier_name = |t: Tier| {
        if t == Tier::Critical {
            "critical"
        } else {
            "standard"
        }
    };
    for f in &fps.new {
        by_tier.get_mut(tier_name(f.tier)).unwrap().new += 1;
    }
    for f in &fps.persisting {
        by_tier.get_mut(tier_name(f.tier)).unwrap().persisting += 1;
    }
    for f in &fps.fixed {
        by_tier.get_mut(tier_name(f.tier)).unwrap().fixed += 1;
    }
    for f in &fps.excepted {
        by_tier.get_mut(tier_name(f.tier)).unwrap().excepted += 1;
    }
    let blocking_findings: Vec<&Finding> = fps
        .new
        .iter()
        .chain(&fps.persisting)
        .filter(|f| f.blocking)
        .collect();
    let counts = Counts {
        new: fps.new.len(),
        persisting: fps.persisting.len(),
        fixed: fps.fixed.len(),
        new_rules: fps
            .new
            .iter()
            .map(|f| (&f.rule.namespace, &f.rule.identifier))
            .collect::<BTreeSet<_>>()
            .len(),
        new_files: fps
            .new
            .iter()
            .flat_map(|f| f.paths.iter())
            .collect::<BTreeSet<_>>()
            .len(),
        unscanned: unscanned.len(),
        excepted: fps.excepted.len(),
        blocking: blocking_findings.len(),
        blocking_warnings: blocking_warnings.len(),
        exceptions_stale: status_count(Status::Stale),
        exceptions_expired: status_count(Status::Expired),
        exceptions_not_applied: status_count(Status::Unapproved)
            + status_count(Status::Lapsed)
            + status_count(Status::RefusedCritical),
        by_tier,
    };

    let mut reasons = Vec::new();
    let crit_new = blocking_findings
        .iter()
        .filter(|f| f.tier == Tier::Critical)
        .count();
    let new_blocking = blocking_findings
        .iter()
        .filter(|f| f.class == Class::New)
        .count();
    if new_blocking > 0 {
        reasons.push(format!(
            "{new_blocking} new false positive(s) without an exception"
        ));
    }
    let crit_persisting = blocking_findings.len() - new_blocking;
    if crit_persisting > 0 {
        reasons.push(format!(
            "{crit_persisting} persisting false positive(s) on critical files"
        ));
    }
    if crit_new > 0 {
        reasons.push(format!(
            "{crit_new} blocking false positive(s) on critical files"
        ));
    }
    if !blocking_warnings.is_empty() {
        reasons.push(format!(
            "{} compiler warning(s) in new or modified rules denied by the warning policy",
            blocking_warnings.len()
        ));
    }
    let strict_fail = inp.policy.strict && counts.exceptions_stale > 0;
    if strict_fail {
        reasons.push(format!(
            "{} stale exception(s) under --strict",
            counts.exceptions_stale
        ));
    }
    let blocked = !blocking_findings.is_empty() || !blocking_warnings.is_empty() || strict_fail;
    if counts.unscanned > 0 {
        reasons.push(format!(
            "{} file(s) could not be scanned{}",
            counts.unscanned,
            if inp.allow_incomplete {
                " (accepted by --allow-incomplete)"
            } else {
                ""
            }
        ));
    }
    if inp.interrupted {
        reasons.push("the run was interrupted: this report is partial".to_string());
    }
    let exit = if blocked {
        Exit::Blocked
    } else if inp.interrupted || (counts.unscanned > 0 && !inp.allow_incomplete) {
        Exit::Incomplete
    } else {
        Exit::Pass
    };

    let mut rulesets = BTreeMap::new();
    rulesets.insert("candidate", RulesetSummary::of(inp.candidate));
    if let Some(b) = inp.baseline {
        rulesets.insert("baseline", RulesetSummary::of(b));
    }

    Report {
        schema_version: SCHEMA_VERSION,
        tool: Tool::current(),
        command: inp.command,
        rulesets,
        corpus,
        false_positives: fps,
        rule_changes: changes.map(|c| c.0),
        blocking_warnings,
        exceptions,
        performance: None,
        profile: None,
        unscanned,
        verdict: Verdict {
            result: exit.name(),
            exit_code: exit.code(),
            allow_incomplete: inp.allow_incomplete,
            strict: inp.policy.strict,
            interrupted: inp.interrupted,
            reasons,
            counts,
        },
        timings: inp.timings,
        candidate_rules: inp.candidate.info.values().cloned().collect(),
    }
}

/// Classify the hits of one scan. `hits[0]` is the candidate, `hits[1]` the
/// baseline (when there is one). Rules are compared by namespace+identifier.
fn classify(hits: &[Vec<Hit>], has_baseline: bool) -> Vec<(Class, RuleKey, Vec<PatternEvidence>)> {
    let cand = &hits[0];
    let empty = Vec::new();
    let base = if has_baseline {
        hits.get(1).unwrap_or(&empty)
    } else {
        &empty
    };
    let base_keys: BTreeSet<&RuleKey> = base.iter().map(|h| &h.rule).collect();
    let cand_keys: BTreeSet<&RuleKey> = cand.iter().map(|h| &h.rule).collect();
    let mut out = Vec::new();
    for h in cand {
        let class = if base_keys.contains(&h.rule) {
            Class::Persisting
        } else {
            Class::New
        };
        out.push((class, h.rule.clone(), h.patterns.clone()));
    }
    for h in base {
        if !cand_keys.contains(&h.rule) {
            out.push((Class::Fixed, h.rule.clone(), h.patterns.clone()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(name: &str) -> Hit {
        Hit {
            rule: ("default".into(), name.into()),
            patterns: Vec::new(),
        }
    }

    #[test]
    fn classification() {
        let hits = vec![vec![hit("A"), hit("B")], vec![hit("B"), hit("C")]];
        let got: Vec<_> = classify(&hits, true)
            .into_iter()
            .map(|(c, r, _)| (c, r.1))
            .collect();
        assert_eq!(
            got,
            vec![
                (Class::New, "A".to_string()),
                (Class::Persisting, "B".to_string()),
                (Class::Fixed, "C".to_string())
            ]
        );
        let got: Vec<_> = classify(&hits[..1], false)
            .into_iter()
            .map(|(c, _, _)| c)
            .collect();
        assert_eq!(got, vec![Class::New, Class::New]);
    }
}
