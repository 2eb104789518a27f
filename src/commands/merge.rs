//! `fpgate merge PARTIAL.json...`: the verdict of a sharded run.

use crate::error::Result;
use crate::exit::Exit;
use crate::settings::Merge;
use crate::verdict::report::Timings;
use std::time::Instant;

pub fn run(s: &Merge) -> Result<Exit> {
    let started = Instant::now();
    // Each partial's files are taken out as soon as it is read: the merge
    // of a million files holds them once (see `shard::merge::take_files`).
    let mut parts = Vec::new();
    let mut files = Vec::new();
    for p in &s.partials {
        let mut partial = crate::shard::partial::load(p)?;
        files.push(crate::shard::merge::take_files(p, &mut partial)?);
        parts.push((p.clone(), partial));
    }
    let m = crate::shard::merge::merge(&parts, files)?;
    let mut report =
        super::pipeline::finish(m.inputs(), m.lock.as_ref().map(|(l, p)| (l, p.as_path())))?;
    report.timings = Timings::of(
        &report.corpus,
        m.timings.compile_seconds,
        m.timings.scan_seconds,
        m.timings.total_seconds + started.elapsed().as_secs_f64(),
        m.timings.threads,
        None,
    );
    report.timings.decoded_bytes = m.timings.decoded_bytes;
    report.corpus.archives.read = m.archives_read;
    crate::triage::history::apply(&mut report, &s.history)?;
    crate::render::emit::emit(&report, &s.output)?;
    Ok(report.exit())
}
