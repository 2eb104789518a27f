//! Escaping of names that come from the corpus or from rules before they
//! reach a terminal: a file called `\x1b]0;pwned\x07` must not retitle the
//! user's window, and a newline in a file name must not forge a report line.

use std::fmt::Write;

/// Escape control characters (C0, DEL, C1) so the string prints on one line
/// and cannot drive the terminal. Printable Unicode is kept as is.
pub fn term(s: &str) -> String {
    if !s.chars().any(needs_escape) {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if needs_escape(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// Like `term`, but keeps line breaks: for multi-line messages whose lines
/// fpgate composed itself.
pub fn term_multiline(s: &str) -> String {
    s.split('\n').map(term).collect::<Vec<_>>().join("\n")
}

fn needs_escape(c: char) -> bool {
    c.is_control()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_controls_only() {
        assert_eq!(term("plain/päth.exe"), "plain/päth.exe");
        assert_eq!(term("a\nb"), "a\\nb");
        assert_eq!(term("\u{1b}]0;x\u{7}"), "\\u{1b}]0;x\\u{7}");
        assert_eq!(term("\u{9b}"), "\\u{9b}");
    }
}
