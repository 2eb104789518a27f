//! The decision: from the findings after policy, the counts, the reasons
//! (one line each) and the verdict with its exit code. The only place a
//! verdict is decided.

use super::report::{
    Class, Counts, ExceptionsSummary, FalsePositives, Finding, TierCounts, Verdict,
};
use crate::corpus::Tier;
use crate::diagnostic::Diagnostic;
use crate::exit::Exit;
use crate::verdict::exceptions::Status;
use crate::verdict::perf::PerfReport;
use crate::verdict::policy::Policy;
use std::collections::{BTreeMap, BTreeSet};

/// What the decision looks at.
pub struct Facts<'a> {
    pub findings: &'a FalsePositives,
    pub blocking_warnings: &'a [Diagnostic],
    pub exceptions: Option<&'a ExceptionsSummary>,
    pub unscanned: usize,
    pub interrupted: bool,
    pub performance: Option<&'a PerfReport>,
    /// Candidate rules the engine could not evaluate.
    pub unevaluated: &'a [crate::rules::Unevaluated],
    /// `gate --positives`: the detections' counts.
    pub detections: Option<&'a crate::verdict::detections::DetectionCounts>,
}

/// Decide the verdict of a run under `policy`.
pub fn decide(f: &Facts<'_>, policy: &Policy) -> Verdict {
    let counts = count(f);
    let blocking: Vec<&Finding> = f
        .findings
        .new
        .iter()
        .chain(&f.findings.persisting)
        .filter(|x| x.blocking)
        .collect();
    let strict_fail = policy.strict && counts.exceptions_stale > 0;
    let perf_blocks = f.performance.is_some_and(|p| p.blocked);
    let detections_block = f.detections.is_some_and(|d| d.blocking > 0);
    let policy_block = policy
        .changes
        .as_ref()
        .is_some_and(|c| c.counts.blocking > 0);
    let blocked = !blocking.is_empty()
        || !f.blocking_warnings.is_empty()
        || strict_fail
        || detections_block
        || policy_block;
    let result = if blocked || perf_blocks {
        Exit::Blocked
    } else if f.interrupted
        || (counts.unscanned > 0 && !policy.allow_incomplete)
        || (counts.unevaluated_rules > 0 && !policy.allow_unevaluated)
    {
        Exit::Incomplete
    } else {
        Exit::Pass
    };
    Verdict {
        result,
        exit_code: result.code(),
        allow_incomplete: policy.allow_incomplete,
        allow_unevaluated: policy.allow_unevaluated,
        strict: policy.strict,
        interrupted: f.interrupted,
        reasons: reasons(f, &blocking, &counts, policy),
        counts,
    }
}

/// The detection-regression reasons, one line each.
fn detection_reasons(d: &crate::verdict::detections::DetectionCounts) -> Vec<String> {
    let mut out = Vec::new();
    if d.lost > 0 {
        out.push(format!(
            "{} detection(s) of known-bad samples lost without an exception",
            d.lost
        ));
    }
    let other = d.blocking - d.lost;
    if other > 0 {
        out.push(format!(
            "{other} added or modified rule(s) miss a sample their meta names, or detect no sample under --require-tested"
        ));
    }
    out
}

/// Why the verdict is what it is, one line each, most important first.
fn reasons(f: &Facts<'_>, blocking: &[&Finding], counts: &Counts, policy: &Policy) -> Vec<String> {
    let mut reasons = Vec::new();
    if let Some(p) = f.performance.filter(|p| p.blocked) {
        reasons.push(perf_reason(p));
    }
    let new_blocking = blocking.iter().filter(|x| x.class == Class::New).count();
    if new_blocking > 0 {
        reasons.push(format!(
            "{new_blocking} new false positive(s) without an exception"
        ));
    }
    let crit_persisting = blocking.len() - new_blocking;
    if crit_persisting > 0 {
        reasons.push(format!(
            "{crit_persisting} persisting false positive(s) on critical files"
        ));
        // A signature tier rule turns old findings into blocking ones at
        // once: say how many of them it is.
        let by_signature = blocking
            .iter()
            .filter(|x| x.class != Class::New && !x.signed_by.is_empty())
            .count();
        if by_signature > 0 {
            reasons.push(format!(
                "{by_signature} of them on files critical by a verified signature ([[tiers.critical]])"
            ));
        }
    }
    let crit = blocking.iter().filter(|x| x.tier == Tier::Critical).count();
    if crit > 0 {
        reasons.push(format!(
            "{crit} blocking false positive(s) on critical files"
        ));
    }
    if let Some(d) = f.detections {
        reasons.extend(detection_reasons(d));
    }
    if let Some(c) = policy.changes.as_ref().filter(|c| c.counts.blocking > 0) {
        let named: Vec<String> = c
            .settings
            .iter()
            .filter(|s| s.blocking)
            .map(|s| format!("{} ({})", s.key, s.direction.as_str()))
            .chain(c.exceptions.iter().filter(|e| e.blocking).map(|e| {
                format!(
                    "exception {} for {} ({}:{})",
                    e.change, e.rule, e.file, e.line
                )
            }))
            .take(5)
            .collect();
        reasons.push(format!(
            "{} change(s) of the gate's own policy since {} need a second review (policy.changes = \"block\"): {}{}",
            c.counts.blocking,
            c.base_ref,
            named.join(", "),
            if c.counts.blocking > named.len() { ", ..." } else { "" }
        ));
    }
    if !f.blocking_warnings.is_empty() {
        reasons.push(format!(
            "{} compiler warning(s) in new or modified rules denied by the warning policy",
            f.blocking_warnings.len()
        ));
    }
    if policy.strict && counts.exceptions_stale > 0 {
        reasons.push(format!(
            "{} stale exception(s) under --strict",
            counts.exceptions_stale
        ));
    }
    if counts.unscanned > 0 {
        reasons.push(format!(
            "{} file(s) could not be scanned{}",
            counts.unscanned,
            if policy.allow_incomplete {
                " (accepted by --allow-incomplete)"
            } else {
                ""
            }
        ));
    }
    if !f.unevaluated.is_empty() {
        let mut modules: Vec<&str> = f.unevaluated.iter().map(|u| u.module.as_str()).collect();
        modules.sort_unstable();
        modules.dedup();
        reasons.push(format!(
            "{} rule(s) of the candidate could not be evaluated (ignored module(s): {}){}",
            f.unevaluated.len(),
            modules.join(", "),
            if policy.allow_unevaluated {
                " (accepted by --allow-unevaluated)"
            } else {
                ""
            }
        ));
    }
    if f.interrupted {
        reasons.push("the run was interrupted: this report is partial".to_string());
    }
    reasons
}

/// The performance gate's reason: the slowdown, and the rules to suspect.
fn perf_reason(p: &PerfReport) -> String {
    let suspects = if !p.attribution.is_empty() {
        let top: Vec<String> = p
            .attribution
            .iter()
            .take(3)
            .map(|a| format!("{} (+{:.4}s)", a.rule, a.delta_seconds))
            .collect();
        format!("; slower rules: {}", top.join(", "))
    } else if p.changed_rules.is_empty() {
        String::new()
    } else {
        format!("; added or modified rules: {}", p.changed_rules.join(", "))
    };
    format!(
        "the candidate is {:.2}x slower than the baseline (limit {:.2}x){suspects}",
        p.ratio, p.max_ratio
    )
}

fn count(f: &Facts<'_>) -> Counts {
    let fps = f.findings;
    let status_count = |s: Status| {
        f.exceptions
            .map(|e| e.entries.iter().filter(|x| x.status == s).count())
            .unwrap_or(0)
    };
    let mut by_tier: BTreeMap<Tier, TierCounts> = BTreeMap::new();
    for t in [Tier::Critical, Tier::Standard] {
        by_tier.insert(t, TierCounts::default());
    }
    for (list, field) in [
        (&fps.new, 0),
        (&fps.persisting, 1),
        (&fps.fixed, 2),
        (&fps.excepted, 3),
    ] {
        for x in list {
            let c = by_tier.entry(x.tier).or_default();
            *[&mut c.new, &mut c.persisting, &mut c.fixed, &mut c.excepted][field] += 1;
        }
    }
    let blocking = fps
        .new
        .iter()
        .chain(&fps.persisting)
        .filter(|x| x.blocking)
        .count();
    Counts {
        new: fps.new.len(),
        persisting: fps.persisting.len(),
        fixed: fps.fixed.len(),
        new_rules: fps
            .new
            .iter()
            .map(|x| (&x.rule.namespace, &x.rule.identifier))
            .collect::<BTreeSet<_>>()
            .len(),
        new_files: fps
            .new
            .iter()
            .flat_map(|x| x.paths.iter())
            .collect::<BTreeSet<_>>()
            .len(),
        unscanned: f.unscanned,
        excepted: fps.excepted.len(),
        blocking,
        blocking_warnings: f.blocking_warnings.len(),
        exceptions_stale: status_count(Status::Stale),
        exceptions_expired: status_count(Status::Expired),
        exceptions_not_applied: status_count(Status::Unapproved)
            + status_count(Status::Lapsed)
            + status_count(Status::RefusedCritical),
        unevaluated_rules: f.unevaluated.len(),
        by_tier,
    }
}

/// A check made after the findings were decided (the run history's
/// `--since-last=block`) blocks the release: the verdict becomes blocked,
/// whatever it was, with `reason` first.
pub fn block(v: &mut Verdict, reason: String) {
    v.result = Exit::Blocked;
    v.exit_code = Exit::Blocked.code();
    v.reasons.insert(0, reason);
}
