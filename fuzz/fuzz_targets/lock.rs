//! The corpus lock: parse or refuse, never panic; an accepted lock always
//! hashes to its recorded corpus_hash.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(lock) = fpgate::corpus::lock::parse(text, std::path::Path::new("corpus.lock")) {
            assert_eq!(fpgate::corpus::lock::corpus_hash(&lock.files), lock.corpus_hash);
        }
    }
});
