//! The gate policy, one value: what a run applies to its findings (accepted
//! exceptions, the critical tier, compiler warnings that block, strictness,
//! whether unscanned files are accepted), what a partial report carries and
//! what `merge` checks.

use crate::corpus::Tier;
use crate::diagnostic::Diagnostic;
use crate::rules::{RuleKey, Ruleset};
use crate::verdict::changes::Change;
use crate::verdict::exceptions::{Exception, ExceptionReport, ExceptionSet, Kind, Status, Target};
use crate::verdict::report::{Class, Finding};
use jiff::civil::Date;
use std::collections::BTreeMap;

/// The gate policy of a run.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Accepted false positives.
    pub exceptions: Option<ExceptionSet>,
    /// The date exceptions expire against (`--today`); `None`: the day the
    /// verdict is built (UTC).
    pub today: Option<Date>,
    /// Stale exceptions fail the gate.
    pub strict: bool,
    /// Every compiler warning in a new or modified rule blocks.
    pub deny_warnings: bool,
    /// These warning codes block.
    pub deny_codes: Vec<String>,
    /// Files that could not be scanned do not fail the run.
    pub allow_incomplete: bool,
    /// Candidate rules the engine could not evaluate (an ignored module) do
    /// not fail the run.
    pub allow_unevaluated: bool,
    /// `gate --baseline-ref`: the policy's own changes against the base
    /// revision (blocking under `policy.changes = "block"`).
    pub changes: Option<super::policy_changes::PolicyChanges>,
}

impl Policy {
    /// The date exceptions expire against.
    pub fn date(&self) -> Date {
        self.today.unwrap_or_else(crate::verdict::exceptions::today)
    }
}

impl Default for Policy {
    /// No exceptions, nothing denied, fail closed.
    fn default() -> Self {
        Policy {
            exceptions: None,
            today: None,
            strict: false,
            deny_warnings: false,
            deny_codes: Vec::new(),
            allow_incomplete: false,
            allow_unevaluated: false,
            changes: None,
        }
    }
}

/// Compiler warnings that block: in a new or modified rule (any rule when
/// there is no baseline), when `--deny-warnings` is on or the warning's
/// code is listed in `deny_codes`.
pub fn blocking_warnings(
    cand: &Ruleset,
    changes: Option<&BTreeMap<RuleKey, Change>>,
    policy: &Policy,
) -> Vec<Diagnostic> {
    cand.warnings
        .iter()
        .filter(|w| policy.deny_warnings || policy.deny_codes.iter().any(|c| c == &w.code))
        .filter(|w| match (changes, &w.rule) {
            (None, _) => true,
            (Some(ch), Some(rule)) => {
                // The rule of that name declared in the warning's file
                // (the same name may be declared in another namespace).
                let key = cand
                    .info
                    .iter()
                    .find(|(k, i)| &k.1 == rule && i.source == w.file)
                    .or_else(|| cand.info.iter().find(|(k, _)| &k.1 == rule))
                    .map(|(k, _)| k.clone())
                    .unwrap_or_else(|| (crate::rules::DEFAULT_NAMESPACE.into(), rule.clone()));
                matches!(ch.get(&key), Some(Change::Added | Change::Modified) | None)
            }
            // A warning outside any rule (an import, say) is new only if
            // the file is; without knowing, it blocks: fail closed.
            (Some(_), None) => true,
        })
        .cloned()
        .collect()
}

/// Apply the exceptions of `kind` to the findings of `lists` (new and
/// persisting false positives, or lost detections). Excepted findings move
/// to the returned list; every exception of that kind gets a status line.
pub fn apply_exceptions(
    set: &ExceptionSet,
    kind: Kind,
    today: Date,
    lists: [&mut Vec<Finding>; 2],
) -> (Vec<Finding>, Vec<ExceptionReport>) {
    let what = match kind {
        Kind::FalsePositive => "false positive",
        Kind::LostDetection => "lost detection",
    };
    let mut excepted = Vec::new();
    let mut applied = vec![0usize; set.entries.len()];
    let mut refusals: Vec<Option<(Status, String)>> = vec![None; set.entries.len()];

    for list in lists {
        let mut kept = Vec::new();
        for f in list.drain(..) {
            let mut remaining = Some(f);
            for (i, e) in set.entries.iter().enumerate() {
                let Some(f) = remaining.take() else { break };
                if e.kind != kind || !e.matches_rule(&f.rule.namespace, &f.rule.identifier) {
                    remaining = Some(f);
                    continue;
                }
                let (covered, rest) = split_paths(e, f);
                remaining = rest;
                let Some(mut cov) = covered else { continue };
                match refusal(e, &cov, today) {
                    Some((status, why)) => {
                        cov.notes.push(format!(
                            "exception {}:{} not applied: {why}",
                            set.file, e.line
                        ));
                        refusals[i] = Some((status, why));
                        kept.push(cov);
                    }
                    None => {
                        applied[i] += 1;
                        cov.exception = Some(ExceptionReport::of(
                            set,
                            e,
                            Status::Applied,
                            0,
                            String::new(),
                        ));
                        excepted.push(cov);
                    }
                }
            }
            kept.extend(remaining);
        }
        kept.sort_by(Finding::order);
        list.extend(kept);
    }
    excepted.sort_by(Finding::order);

    let reports = set
        .entries
        .iter()
        .enumerate()
        .filter(|(_, e)| e.kind == kind)
        .map(|(i, e)| {
            let (status, detail) = if applied[i] > 0 {
                (Status::Applied, format!("covers {} {what}(s)", applied[i]))
            } else if let Some((s, why)) = &refusals[i] {
                (*s, why.clone())
            } else if e.expires < today {
                (
                    Status::Expired,
                    format!("expired on {} and matched nothing in this run", e.expires),
                )
            } else {
                (Status::Stale, format!("matched no {what} in this run"))
            };
            ExceptionReport::of(set, e, status, applied[i], detail)
        })
        .collect();
    (excepted, reports)
}

/// Why an exception that matches a finding may not be applied to it.
fn refusal(e: &Exception, f: &Finding, today: Date) -> Option<(Status, String)> {
    if e.expires < today {
        return Some((Status::Expired, format!("expired on {}", e.expires)));
    }
    if e.is_todo() {
        return Some((
            Status::Unapproved,
            "reason or owner is still \"TODO\"".into(),
        ));
    }
    if let Some(fp) = &e.rule_fingerprint {
        if crate::rules::source::fingerprint_scheme(fp) == Some(1) {
            return Some((
                Status::Lapsed,
                format!(
                    "rule_fingerprint was written by fpgate 0.1 (scheme 1, a lexer that could miss edits) and cannot be compared; review the rule and set rule_fingerprint = {:?}",
                    f.rule.fingerprint.as_deref().unwrap_or("?")
                ),
            ));
        }
        if f.rule.fingerprint.as_deref() != Some(fp.as_str()) {
            return Some((
                Status::Lapsed,
                "the rule changed since the exception was written (rule_fingerprint)".into(),
            ));
        }
    }
    if f.tier == Tier::Critical && !e.critical {
        return Some((
            Status::RefusedCritical,
            "the file is critical and the entry lacks `critical = true`".into(),
        ));
    }
    None
}

/// Split a finding into the part an exception's target covers and the rest.
fn split_paths(e: &Exception, f: Finding) -> (Option<Finding>, Option<Finding>) {
    match &e.target {
        Target::Sha256(s) => {
            if *s == f.sha256 {
                (Some(f), None)
            } else {
                (None, Some(f))
            }
        }
        Target::Path(_, glob) => {
            let (inside, outside): (Vec<String>, Vec<String>) =
                f.paths.iter().cloned().partition(|p| glob.is_match(p));
            if inside.is_empty() {
                (None, Some(f))
            } else if outside.is_empty() {
                (Some(f), None)
            } else {
                let mut a = f.clone();
                a.paths = inside;
                let mut b = f;
                b.paths = outside;
                (Some(a), Some(b))
            }
        }
    }
}

/// Does this finding block the release?
pub fn blocks(f: &Finding) -> bool {
    f.exception.is_none()
        && (f.class == Class::New || (f.tier == Tier::Critical && f.class == Class::Persisting))
}
