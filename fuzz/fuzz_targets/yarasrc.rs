//! fpgate's own YARA lexer (rule lines, fingerprints, includes): any input,
//! no panic, and every rule line lies inside the text.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let info = fpgate::yarasrc::analyse(&text);
    let lines = text.lines().count().max(1);
    for r in &info.rules {
        assert!(r.line >= 1 && r.line <= r.end_line && r.end_line <= lines + 1);
    }
});
