//! Partial reports and `merge`: any bytes, split into up to four partial
//! reports, are parsed and merged, and a merge that is accepted is built
//! into a report; each step refuses or succeeds, never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut parts = Vec::new();
    for (i, chunk) in text.split("\n---\n").take(4).enumerate() {
        let path = PathBuf::from(format!("part-{i}.json"));
        if let Ok(p) = fpgate::shard::partial::parse(chunk, &path) {
            parts.push((path, p));
        }
    }
    let Ok(m) = fpgate::shard::merge::merge(&parts) else {
        return;
    };
    let report = fpgate::verdict::build(m.inputs());
    let _ = serde_json::to_string(&report);
});
