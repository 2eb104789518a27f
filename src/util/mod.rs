//! Small helpers every layer uses: hex forms, escaping, the interrupt flag.

pub mod escape;
pub mod hex;
pub mod interrupt;

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

/// Lower the calling thread's scheduling priority (Linux: `nice` is per
/// thread). For helper threads whose work only fills a core the critical
/// path leaves idle (early hashing, parsing beside the compiler): with two
/// cores and three busy threads, the compiler keeps its core. Elsewhere a
/// no-op (`setpriority` there would lower the whole process).
pub fn background_thread() {
    #[cfg(target_os = "linux")]
    // SAFETY: plain system calls on the calling thread's own id.
    unsafe {
        let tid = libc::gettid();
        let now = libc::getpriority(libc::PRIO_PROCESS, tid as libc::id_t);
        let _ = libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, (now + 10).min(19));
    }
}
