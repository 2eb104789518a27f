//! `fpgate gate`: the candidate against the released baseline; new false
//! positives (and, with `--perf`, a slower candidate) block the release.

use super::pipeline::{self, Scanned};
use crate::error::{Error, Result};
use crate::exit::Exit;
use crate::settings::Run;
use crate::verdict::perf;

pub fn run(s: &Run) -> Result<Exit> {
    let started = std::time::Instant::now();
    let done = pipeline::scan(s)?;
    // A shard is never measured (settings refuse --perf with --shard).
    let performance = match (&s.perf, &done.shard) {
        (Some(po), None) => Some(measure(&done, po)?),
        _ => None,
    };
    pipeline::conclude(s, done, performance, started)
}

/// `gate --perf`: time baseline and candidate on a sample of the corpus.
fn measure(done: &Scanned, po: &perf::PerfOptions) -> Result<perf::PerfReport> {
    let Some(base) = done.baseline.as_ref() else {
        return Err(Error::usage(
            "--perf compares with a baseline: give --baseline or --baseline-ref",
        ));
    };
    let sample = perf::sample(&done.corpus.files, &done.outcomes, po);
    if sample.is_empty() {
        return Err(Error::usage("--perf: no scanned file to measure with"));
    }
    let (changes, _) = crate::verdict::changes::rule_changes(&done.candidate, base);
    let changed: Vec<String> = changes
        .added
        .iter()
        .chain(&changes.modified)
        .map(|r| r.identifier.clone())
        .collect();
    perf::measure(base, &done.candidate, &sample, po, changed)
}
