//! The exceptions file: parse or fail with `file:line`, never panic; every
//! accepted entry has a reason, an owner and a real date.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        match fpgate::verdict::exceptions::parse(text, std::path::Path::new("e.toml")) {
            Ok(set) => {
                for e in &set.entries {
                    assert!(!e.reason.trim().is_empty() && !e.owner.trim().is_empty());
                    assert!(e.line >= 1);
                }
            }
            Err(e) => assert!(e.to_string().starts_with("e.toml:")),
        }
    }
});
