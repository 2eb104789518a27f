//! From scan outcomes to the verdict, in the order the data flows:
//! `classify` (findings), `changes` (rule by rule, with a baseline),
//! `policy` (exceptions, tiers, warnings), `decide` (the verdict and its
//! exit code). `report` is what every renderer reads.

pub mod changes;
pub mod classify;
pub mod decide;
pub mod detections;
pub mod exceptions;
pub mod history;
pub mod perf;
pub mod policy;
pub mod policy_changes;
pub mod report;
pub mod triage;

use crate::corpus::Corpus;
use crate::engine::Outcome;
use crate::rules::Ruleset;
use policy::Policy;
use report::{ExceptionsSummary, Finding, Report, RulesetSummary, Timings, Tool, SCHEMA_VERSION};
use std::collections::BTreeMap;

/// Everything a verdict is built from.
pub struct Inputs<'a> {
    pub command: report::RunKind,
    pub candidate: &'a Ruleset,
    pub baseline: Option<&'a Ruleset>,
    pub corpus: &'a Corpus,
    pub outcomes: &'a [Outcome],
    pub interrupted: bool,
    pub policy: &'a Policy,
    /// `gate --perf`: the measurement, which may block.
    pub performance: Option<perf::PerfReport>,
    /// `gate --positives`: the known-bad samples' scans.
    pub positives: Option<detections::Positives<'a>>,
}

/// Build the report: classify, apply the policy, decide.
pub fn build(inp: Inputs<'_>) -> Report {
    let changes = inp
        .baseline
        .map(|b| changes::rule_changes(inp.candidate, b));
    let c = classify::classify(
        inp.candidate,
        inp.baseline,
        inp.corpus,
        inp.outcomes,
        changes.as_ref().map(|c| &c.1),
    );
    let mut fps = c.findings;
    let mut unscanned = c.unscanned;
    let mut exceptions = inp.policy.exceptions.as_ref().map(|set| {
        let (excepted, entries) = policy::apply_exceptions(
            set,
            exceptions::Kind::FalsePositive,
            inp.policy.date(),
            [&mut fps.new, &mut fps.persisting],
        );
        fps.excepted = excepted;
        ExceptionsSummary {
            file: set.file.clone(),
            entries,
        }
    });
    let detections = match &inp.positives {
        Some(p) => {
            let d = detections::build(
                p,
                (inp.candidate, inp.baseline),
                changes.as_ref().map(|c| &c.1),
                inp.policy.exceptions.as_ref(),
                inp.policy.date(),
            );
            detections::merge_exception_reports(&mut exceptions, d.exception_reports);
            unscanned.extend(d.unscanned);
            unscanned.sort();
            unscanned.dedup();
            Some(d.detections)
        }
        None => {
            // Lost-detection exceptions still get their status line.
            if let Some(set) = &inp.policy.exceptions {
                let (_, lines) = policy::apply_exceptions(
                    set,
                    exceptions::Kind::LostDetection,
                    inp.policy.date(),
                    [&mut Vec::new(), &mut Vec::new()],
                );
                detections::merge_exception_reports(&mut exceptions, lines);
            }
            None
        }
    };
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
    let blocking_warnings =
        policy::blocking_warnings(inp.candidate, changes.as_ref().map(|c| &c.1), inp.policy);
    let candidate = RulesetSummary::of(inp.candidate);
    let verdict = decide::decide(
        &decide::Facts {
            unevaluated: &candidate.unevaluated,
            findings: &fps,
            blocking_warnings: &blocking_warnings,
            exceptions: exceptions.as_ref(),
            unscanned: unscanned.len(),
            detections: detections.as_ref().map(|d| &d.counts),
            interrupted: inp.interrupted,
            performance: inp.performance.as_ref(),
        },
        inp.policy,
    );
    let mut rulesets = BTreeMap::new();
    rulesets.insert("candidate", candidate);
    if let Some(b) = inp.baseline {
        rulesets.insert("baseline", RulesetSummary::of(b));
    }
    let policy_changes = inp.policy.changes.clone().map(|mut pc| {
        // A signature tier rule added by the change turns old findings
        // into blocking ones at once: the diff says how many.
        if pc.settings.iter().any(|s| {
            s.key == "tiers.critical" && s.direction == policy_changes::Direction::Tightens
        }) {
            let n = fps
                .persisting
                .iter()
                .filter(|f| f.blocking && !f.signed_by.is_empty())
                .count();
            pc.notes.push(format!(
                "tiers.critical: {n} persisting false positive(s) block now because a signature tier rule makes their files critical"
            ));
        }
        pc
    });
    Report {
        schema_version: SCHEMA_VERSION,
        tool: Tool::current(),
        command: inp.command,
        rulesets,
        corpus: c.corpus,
        false_positives: fps,
        rule_changes: changes.map(|c| c.0),
        blocking_warnings,
        exceptions,
        performance: inp.performance,
        profile: None,
        unscanned,
        detections,
        policy_changes,
        history: None,
        triage: None,
        verdict,
        timings: Timings::default(),
        candidate_rules: inp.candidate.info.values().cloned().collect(),
    }
}
