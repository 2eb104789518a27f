//! Detection regression (`gate --positives`): the candidate must keep
//! detecting the known-bad samples the baseline detected.
//!
//! The samples are scanned in the same pass as the clean corpus (read once,
//! de-duplicated, cached like clean files) and classified by the same code:
//! per (rule, sample), **lost** (the baseline detected it, the candidate does
//! not; blocks), **gained**, **kept**. A rule renamed without any other
//! change keeps its samples (matched by the digest of its body without its
//! name), so a rename is not one loss and one gain. Rules that name their
//! samples in meta (`hash`, `sha256`, `md5`, ...) are checked against the
//! samples present; rules that detect no sample are listed as untested.

mod meta;

use super::changes::Change;
use super::classify;
use super::exceptions::{ExceptionSet, Kind};
use super::report::{Class, ExceptionsSummary, Finding};
use crate::corpus::{Corpus, Unscanned};
use crate::engine::Outcome;
use crate::rules::{RuleKey, Ruleset};
use jiff::civil::Date;
use meta::expected;
pub use meta::{names_short_hashes, short_digests_of, ShortDigest, DEFAULT_META};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// The known-bad samples of a run and what is asked of them.
pub struct Positives<'a> {
    pub corpus: &'a Corpus,
    pub outcomes: &'a [Outcome],
    /// Meta keys that name samples.
    pub meta: &'a [String],
    /// An added or modified rule that detects no sample blocks.
    pub require_tested: bool,
    /// sha1 and md5 of the samples by sha256, when they were taken where
    /// the samples were read (a merge of sharded runs); else the samples
    /// are read again when a rule names one by sha1 or md5.
    pub digests: Option<&'a [ShortDigest]>,
}

/// A content that is both a sample and a clean file is an error naming
/// both paths (it would be a false positive and a detection at once).
pub fn disjoint_contents(
    clean: &Corpus,
    clean_out: &[Outcome],
    pos: &Corpus,
    pos_out: &[Outcome],
) -> crate::error::Result<()> {
    let mut seen: std::collections::HashMap<[u8; 32], &str> = std::collections::HashMap::new();
    for (f, o) in clean.files.iter().zip(clean_out) {
        if let Outcome::Scanned { sha256, .. } = o {
            seen.entry(*sha256).or_insert(f.display());
        }
    }
    for (f, o) in pos.files.iter().zip(pos_out) {
        if let Outcome::Scanned { sha256, .. } = o {
            if let Some(other) = seen.get(sha256) {
                return Err(crate::error::Error::input(
                    "positives",
                    f.display(),
                    format!(
                        "sample {} has the same content as the clean corpus file {other}: a content is known-bad or known-clean, not both",
                        f.display()
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// What the report says of the positives.
#[derive(Debug, Clone, Serialize, PartialEq, Default, schemars::JsonSchema)]
pub struct Detections {
    pub roots: Vec<String>,
    /// Regular files under the positives paths.
    pub samples: usize,
    pub scanned_samples: usize,
    pub counts: DetectionCounts,
    /// Detected by the baseline, not by the candidate (after exceptions).
    pub lost: Vec<Finding>,
    pub gained: Vec<Finding>,
    pub kept: Vec<Finding>,
    /// Lost detections accepted by an exception (`kind = "lost_detection"`).
    pub excepted: Vec<Finding>,
    /// Candidate rules (not private) that detect no sample.
    pub untested_rules: Vec<UntestedRule>,
    /// Samples named by a rule's meta, and whether the rule detects them.
    pub expected_samples: Vec<ExpectedSample>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Default, schemars::JsonSchema)]
pub struct DetectionCounts {
    pub lost: usize,
    pub gained: usize,
    pub kept: usize,
    pub excepted: usize,
    pub untested_rules: usize,
    pub expected_detected: usize,
    pub expected_missed: usize,
    pub expected_untestable: usize,
    /// Lost detections, missed expected samples and untested rules that
    /// block the release.
    pub blocking: usize,
}

/// A candidate rule no sample exercises.
#[derive(Debug, Clone, Serialize, PartialEq, schemars::JsonSchema)]
pub struct UntestedRule {
    pub namespace: String,
    pub identifier: String,
    pub source: Option<String>,
    pub line: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule_change: Option<Change>,
    /// Blocks under `--require-tested` (added or modified rules only).
    pub blocking: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExpectedStatus {
    /// The sample is present and the rule detects it.
    Detected,
    /// The sample is present and the rule does not detect it.
    Missed,
    /// No sample with that hash is present: nothing was tested.
    Untestable,
}

/// A sample a rule names in its meta.
#[derive(Debug, Clone, Serialize, PartialEq, schemars::JsonSchema)]
pub struct ExpectedSample {
    pub namespace: String,
    pub identifier: String,
    pub source: Option<String>,
    pub line: Option<usize>,
    /// The meta key and value that name it.
    pub meta: String,
    pub hash: String,
    pub status: ExpectedStatus,
    /// The samples with that hash.
    pub paths: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule_change: Option<Change>,
    /// A missed sample of an added or modified rule blocks.
    pub blocking: bool,
}

/// Everything the positives add to a report: the detections, the lost
/// exceptions' status lines, and the samples that could not be scanned.
pub struct Checked {
    pub detections: Detections,
    pub exception_reports: Vec<super::exceptions::ExceptionReport>,
    pub unscanned: Vec<Unscanned>,
}

/// Classify the samples' scans. `changes`: rule by rule against the
/// baseline (none without one: every rule counts as added).
pub fn build(
    p: &Positives<'_>,
    (candidate, baseline): (&Ruleset, Option<&Ruleset>),
    changes: Option<&BTreeMap<RuleKey, Change>>,
    exceptions: Option<&ExceptionSet>,
    today: Date,
) -> Checked {
    let c = classify::classify(candidate, baseline, p.corpus, p.outcomes, changes);
    let relabel = |list: Vec<Finding>, class: Class| -> Vec<Finding> {
        list.into_iter()
            .map(|mut f| {
                f.class = class;
                f.tier = crate::corpus::Tier::Standard;
                f
            })
            .collect()
    };
    let mut lost = relabel(c.findings.fixed, Class::Lost);
    let mut gained = relabel(c.findings.new, Class::Gained);
    let mut kept = relabel(c.findings.persisting, Class::Kept);
    if let Some(b) = baseline {
        renames(candidate, b, &mut lost, &mut gained, &mut kept);
    }
    let (mut excepted, exception_reports) = match exceptions {
        Some(set) => super::policy::apply_exceptions(
            set,
            Kind::LostDetection,
            today,
            [&mut lost, &mut Vec::new()],
        ),
        None => (Vec::new(), Vec::new()),
    };
    for f in lost.iter_mut().chain(excepted.iter_mut()) {
        f.blocking = f.exception.is_none();
        // The line to fix is the candidate's, when the rule is still there.
        let key = (f.rule.namespace.clone(), f.rule.identifier.clone());
        if let Some(info) = candidate.info.get(&key) {
            f.rule = info.clone();
        }
    }
    let change = |k: &RuleKey| changes.and_then(|m| m.get(k).copied());
    // Added or modified (every rule without a baseline).
    let changed = |k: &RuleKey| {
        changes.is_none() || matches!(change(k), Some(Change::Added | Change::Modified))
    };
    let detected: BTreeSet<(String, String, String)> = gained
        .iter()
        .chain(&kept)
        .map(|f| {
            (
                f.rule.namespace.clone(),
                f.rule.identifier.clone(),
                f.sha256.clone(),
            )
        })
        .collect();
    let untested_rules = untested(candidate, &detected, p.require_tested, &change, &changed);
    let expected_samples = expected(p, candidate, &detected, &change, &changed);
    let mut d = Detections {
        roots: p.corpus.roots.clone(),
        samples: c.corpus.files,
        scanned_samples: c.corpus.scanned_files,
        lost,
        gained,
        kept,
        excepted,
        untested_rules,
        expected_samples,
        ..Default::default()
    };
    for list in [&mut d.lost, &mut d.gained, &mut d.kept, &mut d.excepted] {
        list.sort_by(Finding::order);
    }
    let e = |s: ExpectedStatus| d.expected_samples.iter().filter(|x| x.status == s).count();
    d.counts = DetectionCounts {
        lost: d.lost.len(),
        gained: d.gained.len(),
        kept: d.kept.len(),
        excepted: d.excepted.len(),
        untested_rules: d.untested_rules.len(),
        expected_detected: e(ExpectedStatus::Detected),
        expected_missed: e(ExpectedStatus::Missed),
        expected_untestable: e(ExpectedStatus::Untestable),
        blocking: d.lost.len()
            + d.untested_rules.iter().filter(|u| u.blocking).count()
            + d.expected_samples.iter().filter(|x| x.blocking).count(),
    };
    Checked {
        detections: d,
        exception_reports,
        unscanned: c.unscanned,
    }
}

/// A lost (rule, sample) whose baseline rule reappears in the candidate
/// under another name with the same body, detecting the same sample, is
/// kept: the gained finding moves to `kept` with a note, the loss goes.
/// So is a loss by a rule the candidate removed when a rule the candidate
/// added detects the sample (a rename with edits, a split, a merge).
fn renames(
    cand: &Ruleset,
    base: &Ruleset,
    lost: &mut Vec<Finding>,
    gained: &mut Vec<Finding>,
    kept: &mut Vec<Finding>,
) {
    let base_bodies = bodies(base);
    let cand_bodies = bodies(cand);
    let body_of = |map: &BTreeMap<RuleKey, [u8; 32]>, f: &Finding| {
        map.get(&(f.rule.namespace.clone(), f.rule.identifier.clone()))
            .copied()
    };
    lost.retain(|l| {
        let Some(body) = body_of(&base_bodies, l) else {
            return true;
        };
        let Some(at) = gained
            .iter()
            .position(|g| g.sha256 == l.sha256 && body_of(&cand_bodies, g) == Some(body))
        else {
            return true;
        };
        let mut g = gained.remove(at);
        g.class = Class::Kept;
        g.notes
            .push(format!("renamed from {} (same rule body)", l.rule.name()));
        kept.push(g);
        false
    });
    // A removed rule whose sample an added rule detects: renamed and
    // edited, or split into several rules (or several merged into one).
    // The detection moved; every added rule that took it is kept.
    let in_cand = |f: &Finding| {
        cand_bodies.contains_key(&(f.rule.namespace.clone(), f.rule.identifier.clone()))
    };
    let in_base = |f: &Finding| {
        base_bodies.contains_key(&(f.rule.namespace.clone(), f.rule.identifier.clone()))
    };
    let mut moved: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    lost.retain(|l| {
        if in_cand(l) {
            return true;
        }
        let takers: Vec<usize> = gained
            .iter()
            .enumerate()
            .filter(|(_, g)| g.sha256 == l.sha256 && !in_base(g))
            .map(|(i, _)| i)
            .collect();
        for &i in &takers {
            moved.entry(i).or_default().push(l.rule.name());
        }
        takers.is_empty()
    });
    for (i, from) in moved.into_iter().rev() {
        let mut g = gained.remove(i);
        g.class = Class::Kept;
        g.notes.push(format!(
            "detection moved from the removed rule(s) {} (renamed, split or merged)",
            from.join(", ")
        ));
        kept.push(g);
    }
}

/// Each rule's body digest (without its name).
fn bodies(rs: &Ruleset) -> BTreeMap<RuleKey, [u8; 32]> {
    let mut out = BTreeMap::new();
    for s in &rs.sources {
        for d in &s.info.rules {
            out.entry((s.namespace.clone(), d.identifier.clone()))
                .or_insert(d.body_digest);
        }
    }
    out
}

/// Candidate rules (not private: the engine never reports those) that
/// detect no sample.
fn untested(
    cand: &Ruleset,
    detected: &BTreeSet<(String, String, String)>,
    require_tested: bool,
    change: &dyn Fn(&RuleKey) -> Option<Change>,
    changed: &dyn Fn(&RuleKey) -> bool,
) -> Vec<UntestedRule> {
    let tested: BTreeSet<(&str, &str)> = detected
        .iter()
        .map(|(ns, id, _)| (ns.as_str(), id.as_str()))
        .collect();
    let private: BTreeSet<RuleKey> = cand
        .sources
        .iter()
        .flat_map(|s| {
            s.info
                .rules
                .iter()
                .filter(|d| d.private)
                .map(move |d| (s.namespace.clone(), d.identifier.clone()))
        })
        .collect();
    cand.info
        .iter()
        .filter(|(k, _)| !private.contains(*k) && !tested.contains(&(k.0.as_str(), k.1.as_str())))
        .map(|(k, i)| UntestedRule {
            namespace: k.0.clone(),
            identifier: k.1.clone(),
            source: i.source.clone(),
            line: i.line,
            rule_change: change(k),
            blocking: require_tested && changed(k),
        })
        .collect()
}

/// What a problem of the positives is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemKind {
    /// The baseline detected a sample the candidate does not.
    LostDetection,
    /// A rule does not detect a sample its meta names.
    MissedSample,
    /// An added or modified rule detects no sample (`--require-tested`).
    UntestedRule,
}

impl ProblemKind {
    /// A stable code (SARIF rule id, Code Quality check name).
    pub fn code(self) -> &'static str {
        match self {
            ProblemKind::LostDetection => "fpgate/lost-detection",
            ProblemKind::MissedSample => "fpgate/missed-sample",
            ProblemKind::UntestedRule => "fpgate/untested-rule",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            ProblemKind::LostDetection => "lost detection of a known-bad sample",
            ProblemKind::MissedSample => "a sample named in the rule's meta is not detected",
            ProblemKind::UntestedRule => "an added or modified rule detects no known-bad sample",
        }
    }
}

/// One problem the positives found, located at the rule's line: what the
/// line-oriented formats (SARIF, annotations, concise, Code Quality, JUnit)
/// report.
#[derive(Debug, Clone)]
pub struct Problem<'a> {
    pub kind: ProblemKind,
    /// The rule's name (`NS:rule` outside the default namespace).
    pub rule: String,
    pub namespace: String,
    pub identifier: String,
    pub source: Option<&'a str>,
    pub line: Option<usize>,
    pub message: String,
    pub blocking: bool,
    /// The exception that accepts it (a lost detection only).
    pub exception: Option<&'a super::exceptions::ExceptionReport>,
    /// Stable across runs for the same rule and sample (or meta hash).
    pub fingerprint: String,
}

impl Detections {
    /// Every lost detection (blocking or excepted), every missed expected
    /// sample, and every untested rule that blocks, in report order.
    pub fn problems(&self) -> Vec<Problem<'_>> {
        let digest = |parts: &[&str]| {
            use sha2::Digest as _;
            crate::util::hex::hex(&sha2::Sha256::digest(parts.join("\u{0}").as_bytes()))
        };
        let mut out = Vec::new();
        for f in self.lost.iter().chain(&self.excepted) {
            out.push(Problem {
                kind: ProblemKind::LostDetection,
                rule: f.rule.name(),
                namespace: f.rule.namespace.clone(),
                identifier: f.rule.identifier.clone(),
                source: f.rule.source.as_deref(),
                line: f.rule.line,
                message: f.message(),
                blocking: f.blocking,
                exception: f.exception.as_ref(),
                fingerprint: digest(&["lost", &f.rule.name(), &f.sha256]),
            });
        }
        for x in self
            .expected_samples
            .iter()
            .filter(|x| x.status == ExpectedStatus::Missed)
        {
            let name = crate::rules::rule_name(&x.namespace, &x.identifier);
            out.push(Problem {
                kind: ProblemKind::MissedSample,
                message: format!(
                    "missed sample: rule {name} names the sample {} = {} in its meta, and does not detect it ({}){}",
                    x.meta,
                    x.hash,
                    x.paths.join(", "),
                    if x.blocking { "" } else { " (an unchanged rule: reported, not blocking)" }
                ),
                fingerprint: digest(&["missed", &name, &x.hash]),
                rule: name,
                namespace: x.namespace.clone(),
                identifier: x.identifier.clone(),
                source: x.source.as_deref(),
                line: x.line,
                blocking: x.blocking,
                exception: None,
            });
        }
        for u in self.untested_rules.iter().filter(|u| u.blocking) {
            let name = crate::rules::rule_name(&u.namespace, &u.identifier);
            out.push(Problem {
                kind: ProblemKind::UntestedRule,
                message: format!(
                    "untested rule: {} rule {name} detects none of the {} known-bad sample(s) (--require-tested)",
                    u.rule_change.map(|c| c.as_str()).unwrap_or("new"),
                    self.scanned_samples
                ),
                fingerprint: digest(&["untested", &name]),
                rule: name,
                namespace: u.namespace.clone(),
                identifier: u.identifier.clone(),
                source: u.source.as_deref(),
                line: u.line,
                blocking: true,
                exception: None,
            });
        }
        out
    }
}

/// The exception status lines of both kinds, in file order.
pub fn merge_exception_reports(
    summary: &mut Option<ExceptionsSummary>,
    lost: Vec<super::exceptions::ExceptionReport>,
) {
    if let Some(s) = summary {
        s.entries.extend(lost);
        s.entries.sort_by_key(|e| e.line);
    }
}
