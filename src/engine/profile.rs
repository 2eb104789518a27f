//! Per-rule cost (`--profile`, and per-rule attribution in `gate --perf`):
//! yara-x times every rule on every file when fpgate is built with the
//! `profiling` feature.

use serde::Serialize;
use std::sync::Mutex;
use std::time::Duration;
#[cfg(feature = "profiling")]
use yara_x::Scanner;

/// Time spent in one rule over a scan.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct RuleCost {
    pub namespace: String,
    pub rule: String,
    pub condition_seconds: f64,
    pub pattern_matching_seconds: f64,
    pub total_seconds: f64,
}

/// Per-rule cost summed over every worker of a scan (first ruleset only).
static PROFILE: Mutex<Vec<(String, String, Duration, Duration)>> = Mutex::new(Vec::new());

/// Was this binary built with per-rule profiling?
pub const PROFILING: bool = cfg!(feature = "profiling");

/// Accumulated per-rule costs of the rules in `scanner`.
#[cfg(feature = "profiling")]
pub fn rule_costs(scanner: &Scanner<'_>) -> Vec<(String, String, Duration, Duration)> {
    scanner
        .slowest_rules(usize::MAX)
        .into_iter()
        .map(|p| {
            (
                p.namespace.to_string(),
                p.rule.to_string(),
                p.condition_exec_time,
                p.pattern_matching_time,
            )
        })
        .collect()
}

/// Add one worker's per-rule costs to the run's.
#[cfg(feature = "profiling")]
pub(super) fn collect(scanner: &Scanner<'_>) {
    let costs = rule_costs(scanner);
    PROFILE
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .extend(costs);
}

/// Take the costs collected since the last call, slowest first.
pub fn take_profile(limit: usize) -> Vec<RuleCost> {
    let raw = std::mem::take(&mut *PROFILE.lock().unwrap_or_else(|e| e.into_inner()));
    let mut sum: std::collections::BTreeMap<(String, String), (Duration, Duration)> =
        Default::default();
    for (ns, rule, c, p) in raw {
        let e = sum.entry((ns, rule)).or_default();
        e.0 += c;
        e.1 += p;
    }
    let mut out: Vec<RuleCost> = sum
        .into_iter()
        .map(|((namespace, rule), (c, p))| RuleCost {
            namespace,
            rule,
            condition_seconds: round6(c.as_secs_f64()),
            pattern_matching_seconds: round6(p.as_secs_f64()),
            total_seconds: round6((c + p).as_secs_f64()),
        })
        .filter(|r| r.total_seconds > 0.0)
        .collect();
    out.sort_by(|a, b| {
        b.total_seconds
            .total_cmp(&a.total_seconds)
            .then(a.rule.cmp(&b.rule))
    });
    out.truncate(limit);
    out
}

fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}
