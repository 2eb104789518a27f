//! The performance-regression gate (`gate --perf`): is the candidate ruleset
//! slower than the baseline on the same files?
//!
//! A sample of the corpus (distinct contents, chosen by content hash so it
//! is the same on every machine) is read into memory once, so disk and page
//! cache do not take part. Then both rulesets scan the whole sample on one
//! thread, alternating (baseline, candidate, then candidate, baseline, ...)
//! so a drift in machine speed hits both alike, and the medians are
//! compared. The candidate blocks when its median is more than `ratio`
//! times the baseline's.

use crate::corpus::CorpusFile;
use crate::engine::Outcome;
use crate::rules::Ruleset;
use serde::Serialize;
use std::time::{Duration, Instant};
use yara_x::Scanner;

#[derive(Debug, Clone)]
pub struct PerfOptions {
    pub runs: usize,
    pub ratio: f64,
    pub sample_files: usize,
    pub sample_bytes: u64,
}

impl Default for PerfOptions {
    fn default() -> Self {
        PerfOptions {
            runs: 5,
            ratio: 1.25,
            sample_files: 500,
            sample_bytes: 64 << 20,
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq, schemars::JsonSchema)]
pub struct PerfReport {
    pub sample_files: usize,
    pub sample_bytes: u64,
    pub runs: usize,
    pub baseline_median_seconds: f64,
    pub candidate_median_seconds: f64,
    pub baseline_seconds: Vec<f64>,
    pub candidate_seconds: Vec<f64>,
    /// candidate median / baseline median.
    pub ratio: f64,
    pub max_ratio: f64,
    /// Spread of each side: (max - min) / median, a noise indicator.
    pub baseline_spread: f64,
    pub candidate_spread: f64,
    pub blocked: bool,
    /// The added and modified rules: where a slowdown must come from.
    pub changed_rules: Vec<String>,
    /// Rules that take more time in the candidate than in the baseline,
    /// most first (a build with `--features profiling` only; empty otherwise).
    pub attribution: Vec<RuleDelta>,
    /// Whether per-rule timing was available for `attribution`.
    pub attributed: bool,
}

#[derive(Debug, Clone, Serialize, PartialEq, schemars::JsonSchema)]
pub struct RuleDelta {
    pub rule: String,
    pub candidate_seconds: f64,
    pub baseline_seconds: f64,
    pub delta_seconds: f64,
}

/// Per-rule time differences between the two scanners, largest first.
#[cfg(feature = "profiling")]
fn attribute(base: &Scanner<'_>, cand: &Scanner<'_>) -> Vec<RuleDelta> {
    use std::collections::BTreeMap;
    let total = |s: &Scanner<'_>| -> BTreeMap<String, f64> {
        crate::engine::profile::rule_costs(s)
            .into_iter()
            .map(|(ns, r, c, p)| (format!("{ns}:{r}"), (c + p).as_secs_f64()))
            .collect()
    };
    let (b, c) = (total(base), total(cand));
    let mut out: Vec<RuleDelta> = c
        .iter()
        .map(|(k, cs)| {
            let bs = b.get(k).copied().unwrap_or(0.0);
            RuleDelta {
                rule: k.strip_prefix("default:").unwrap_or(k).to_string(),
                candidate_seconds: round(*cs),
                baseline_seconds: round(bs),
                delta_seconds: round(cs - bs),
            }
        })
        .filter(|d| d.delta_seconds > 0.0)
        .collect();
    out.sort_by(|a, b| b.delta_seconds.total_cmp(&a.delta_seconds));
    out.truncate(10);
    out
}

#[cfg(not(feature = "profiling"))]
fn attribute(_: &Scanner<'_>, _: &Scanner<'_>) -> Vec<RuleDelta> {
    Vec::new()
}

/// Choose the sample: distinct scanned contents, ordered by sha256, until
/// either limit is reached. Returns the files' bytes.
pub fn sample(files: &[CorpusFile], outcomes: &[Outcome], opts: &PerfOptions) -> Vec<Vec<u8>> {
    let mut picked: Vec<([u8; 32], &CorpusFile)> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (f, o) in files.iter().zip(outcomes) {
        if let Outcome::Scanned { sha256, .. } = o {
            if seen.insert(*sha256) {
                picked.push((*sha256, f));
            }
        }
    }
    picked.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = Vec::new();
    let mut bytes = 0u64;
    for (_, f) in picked {
        if out.len() >= opts.sample_files || bytes >= opts.sample_bytes {
            break;
        }
        let caps = crate::corpus::archive::Caps::default();
        if let Some(data) = crate::corpus::members::read_entry(f, u64::MAX, &caps) {
            bytes += data.len() as u64;
            out.push(data);
        }
    }
    out
}

fn time_scan(scanner: &mut Scanner<'_>, sample: &[Vec<u8>]) -> Duration {
    let t = Instant::now();
    for data in sample {
        // Errors (timeouts) cost time like any scan; the verdict part of
        // the gate already reported them.
        let _ = scanner.scan(data);
    }
    t.elapsed()
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let n = s.len();
    if n == 0 {
        0.0
    } else if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

fn spread(v: &[f64]) -> f64 {
    let m = median(v);
    let max = v.iter().cloned().fold(f64::MIN, f64::max);
    let min = v.iter().cloned().fold(f64::MAX, f64::min);
    if m > 0.0 {
        (max - min) / m
    } else {
        0.0
    }
}

fn round(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

/// Measure both rulesets on the sample.
pub fn measure(
    baseline: &Ruleset,
    candidate: &Ruleset,
    sample: &[Vec<u8>],
    opts: &PerfOptions,
    changed_rules: Vec<String>,
) -> crate::error::Result<PerfReport> {
    fn built(rs: &Ruleset) -> crate::error::Result<&yara_x::Rules> {
        rs.rules
            .get()
            .map_err(|e| crate::error::Error::internal(format!("{} rules: {e}", rs.label)))
    }
    let mut sb = Scanner::new(built(baseline)?);
    let mut sc = Scanner::new(built(candidate)?);
    for s in [&mut sb, &mut sc] {
        s.set_timeout(Duration::from_secs(60));
    }
    // One unmeasured round warms caches and lazily built structures.
    time_scan(&mut sb, sample);
    time_scan(&mut sc, sample);
    let mut b = Vec::new();
    let mut c = Vec::new();
    for i in 0..opts.runs.max(1) {
        if i % 2 == 0 {
            b.push(time_scan(&mut sb, sample).as_secs_f64());
            c.push(time_scan(&mut sc, sample).as_secs_f64());
        } else {
            c.push(time_scan(&mut sc, sample).as_secs_f64());
            b.push(time_scan(&mut sb, sample).as_secs_f64());
        }
    }
    let (bm, cm) = (median(&b), median(&c));
    let attribution = attribute(&sb, &sc);
    let ratio = if bm > 0.0 { cm / bm } else { 1.0 };
    Ok(PerfReport {
        sample_files: sample.len(),
        sample_bytes: sample.iter().map(|d| d.len() as u64).sum(),
        runs: opts.runs.max(1),
        baseline_median_seconds: round(bm),
        candidate_median_seconds: round(cm),
        baseline_spread: round(spread(&b)),
        candidate_spread: round(spread(&c)),
        baseline_seconds: b.into_iter().map(round).collect(),
        candidate_seconds: c.into_iter().map(round).collect(),
        ratio: round(ratio),
        max_ratio: opts.ratio,
        blocked: ratio > opts.ratio,
        changed_rules,
        attribution,
        attributed: crate::engine::PROFILING,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_spread() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(&[]), 0.0);
        assert!((spread(&[1.0, 2.0, 3.0]) - 1.0).abs() < 1e-9);
    }
}
