//! Ctrl-C and SIGTERM. The first one stops the run from taking new files:
//! the files being scanned finish (bounded by --timeout), the partial report
//! is written and the run exits non-zero. A second one leaves at once (exit
//! 130); reports are written atomically, so nothing half-written is left.

use std::sync::atomic::{AtomicBool, Ordering};

/// Set by the handler: workers stop taking new files.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Was the run interrupted?
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Forget an interruption (`check --watch` goes on to the next run).
pub fn reset() {
    INTERRUPTED.store(false, Ordering::SeqCst);
}

/// Install the handler, once per process.
pub fn install_handler() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        let _ = ctrlc::set_handler(|| {
            if INTERRUPTED.swap(true, Ordering::SeqCst) {
                std::process::exit(130);
            }
            eprintln!("fpgate: interrupted: finishing the files being scanned, then writing a partial report (interrupt again to quit now)");
        });
    });
}
