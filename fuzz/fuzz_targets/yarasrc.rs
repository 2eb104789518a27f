//! Rule identity read with the engine's parser (rule lines, spans,
//! fingerprints, includes): any input, no panic, every rule's span and lines
//! lie inside the text, and adding a comment and blank lines around the text
//! changes no fingerprint.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let info = fpgate::rules::source::analyse(data);
    let lines = data.iter().filter(|b| **b == b'\n').count() + 1;
    for r in &info.rules {
        assert!(r.start < r.end && r.end <= data.len());
        assert!(r.line >= 1 && r.line <= r.end_line && r.end_line <= lines);
    }
    let mut padded = b"// fuzz\n\n".to_vec();
    padded.extend_from_slice(data);
    padded.extend_from_slice(b"\n");
    let again = fpgate::rules::source::analyse(&padded);
    if !info.syntax_errors {
        let a: Vec<_> = info.rules.iter().map(|r| &r.fingerprint).collect();
        let b: Vec<_> = again.rules.iter().map(|r| &r.fingerprint).collect();
        assert_eq!(a, b);
    }
});
