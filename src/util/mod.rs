//! Small helpers every layer uses: hex forms, escaping, the interrupt flag.

pub mod chunked;
pub mod escape;
pub mod hex;
pub mod interrupt;
pub mod paths;

/// What a caught panic said (its `&str` or `String` payload).
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

/// 1-based line and column of a byte offset in a text.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text.as_bytes()[..offset.min(text.len())];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let col = before.iter().rev().take_while(|&&b| b != b'\n').count() + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    #[test]
    fn line_and_column() {
        assert_eq!(super::line_col("ab\ncd", 4), (2, 2));
        assert_eq!(super::line_col("ab", 0), (1, 1));
    }
}

/// Lower the calling thread's scheduling priority by `by` (Linux: `nice`
/// is per thread). For helper threads whose work only fills a core the
/// critical path leaves idle: with two cores and three busy threads, the
/// compiler keeps its core. Elsewhere a no-op (`setpriority` there would
/// lower the whole process).
fn lower_priority(by: i32) {
    #[cfg(target_os = "linux")]
    // SAFETY: plain system calls on the calling thread's own id.
    unsafe {
        let tid = libc::gettid();
        let now = libc::getpriority(libc::PRIO_PROCESS, tid as libc::id_t);
        let _ = libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, (now + by).min(19));
    }
    #[cfg(not(target_os = "linux"))]
    let _ = by;
}

/// Background work the next step waits for (parsing beside the compiler,
/// a gate's baseline): below the compiler, above `idle_thread`.
pub fn background_thread() {
    lower_priority(10);
}

/// Work that only saves the next step some time if a core is idle anyway
/// (early hashing: what it does not hash, the scan hashes).
pub fn idle_thread() {
    lower_priority(19);
}

/// A thread pool for `background_thread` work on every core (rayon's own
/// pool runs at normal priority, and would take the compiler's core).
/// `None` if its threads cannot be started: the caller works on its own
/// thread then.
pub fn background_pool() -> Option<&'static rayon::ThreadPool> {
    static POOL: std::sync::OnceLock<Option<rayon::ThreadPool>> = std::sync::OnceLock::new();
    POOL.get_or_init(|| {
        rayon::ThreadPoolBuilder::new()
            .thread_name(|i| format!("fpgate-background-{i}"))
            .start_handler(|_| background_thread())
            .build()
            .ok()
    })
    .as_ref()
}
