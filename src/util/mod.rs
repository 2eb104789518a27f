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
