//! fpgate.toml: any text either parses or gives an error naming a line;
//! it never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        match fpgate::settings::config::parse(text, std::path::Path::new("fpgate.toml")) {
            Ok(cfg) => {
                let _ = cfg.defines();
            }
            Err(e) => assert!(e.to_string().starts_with("fpgate.toml:")),
        }
    }
});
