//! Every escaping fpgate does, in one place. Names that come from the corpus
//! or from rules are escaped before they reach a terminal (a file called
//! `\x1b]0;pwned\x07` must not retitle the user's window, and a newline in a
//! file name must not forge a report line) and before they enter a report
//! format (XML, HTML, Markdown, GitHub workflow commands).

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

/// An archive member's name as shown after its container's path: `%`,
/// `!` (the separator of `ARCHIVE!member`), control characters and bytes
/// that are not UTF-8 become `%XX`, so no name can forge another member,
/// another container or a line of a report. Everything else is kept,
/// `/`, `..` and a leading `/` included: they are only names.
pub fn member_name(name: &[u8]) -> String {
    let mut out = String::with_capacity(name.len());
    for chunk in name.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c == '%' || c == '!' || c.is_control() {
                let mut b = [0u8; 4];
                for byte in c.encode_utf8(&mut b).bytes() {
                    let _ = write!(out, "%{byte:02X}");
                }
            } else {
                out.push(c);
            }
        }
        for byte in chunk.invalid() {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

// Escaping for each report format: every string that comes from rules,
// metadata or file names goes through one of these.

/// XML text and attribute values; characters XML 1.0 cannot carry at all
/// (most C0 controls) become `\u{..}`.
pub fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\t' => out.push_str("&#9;"),
            '\r' => out.push_str("&#13;"),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => {
                out.push_str(&format!("\\u{{{:x}}}", c as u32))
            }
            c => out.push(c),
        }
    }
    out
}

/// HTML text and attribute values.
pub fn html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\n' && c != '\t' => {
                out.push_str(&format!("\\u{{{:x}}}", c as u32))
            }
            c => out.push(c),
        }
    }
    out
}

/// Markdown inline text (table cells included): no formatting, no HTML,
/// no links, no line breaks can be injected.
pub fn markdown(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' | '`' | '*' | '_' | '{' | '}' | '[' | ']' | '(' | ')' | '#' | '+' | '!' | '|'
            | '~' | '>' | '<' => {
                out.push('\\');
                out.push(c);
            }
            '&' => out.push_str("&amp;"),
            '\n' | '\r' => out.push(' '),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// The message part of a GitHub workflow command (`::error ...::MESSAGE`).
pub fn gh_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// A property value of a GitHub workflow command (`file=...,title=...`).
pub fn gh_property(s: &str) -> String {
    gh_data(s).replace(':', "%3A").replace(',', "%2C")
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

    #[test]
    fn hostile_strings_are_neutralised() {
        let evil = "a<b>&\"c'\n|*x*`[l](u)\x1b%:,";
        assert_eq!(
            xml(evil),
            "a&lt;b&gt;&amp;&quot;c&apos;&#10;|*x*`[l](u)\\u{1b}%:,"
        );
        assert_eq!(
            html(evil),
            "a&lt;b&gt;&amp;&quot;c&#39;\n|*x*`[l](u)\\u{1b}%:,"
        );
        assert_eq!(
            markdown(evil),
            "a\\<b\\>&amp;\"c' \\|\\*x\\*\\`\\[l\\]\\(u\\)\\u{1b}%:,"
        );
        assert_eq!(gh_data("50%\nnext"), "50%25%0Anext");
        assert_eq!(gh_property("a,b:c\n"), "a%2Cb%3Ac%0A");
    }

    #[test]
    fn member_names_cannot_forge_a_member() {
        assert_eq!(member_name(b"lib/a.dll"), "lib/a.dll");
        assert_eq!(member_name(b"../../etc/passwd"), "../../etc/passwd");
        assert_eq!(member_name(b"a!b.dll"), "a%21b.dll");
        assert_eq!(member_name(b"100%"), "100%25");
        assert_eq!(member_name(b"x\0y\nz"), "x%00y%0Az");
        assert_eq!(member_name(b"\xff\xfeok"), "%FF%FEok");
        assert_eq!(member_name("caf\u{e9}".as_bytes()), "caf\u{e9}");
        // C1 controls are escaped byte by byte.
        assert_eq!(member_name("\u{9b}".as_bytes()), "%C2%9B");
    }
}
