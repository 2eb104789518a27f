//! A small lexer over YARA source text.
//!
//! yara-x compiles the rules, but its compiled `Rules` do not say where a rule
//! was declared, and fpgate needs that (evidence points a rule author at the
//! rule's line) plus a fingerprint of each rule that ignores comments and
//! whitespace, the identifiers the sources use (to decide which external
//! variables to declare) and the `include` statements. This lexer only has to
//! be good enough to find top-level declarations; yara-x remains the judge of
//! what is valid YARA.

use sha2::{Digest, Sha256};
use std::collections::BTreeSet;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Ident(String),
    /// Any other token, kept verbatim (strings, regexps, numbers, punctuation).
    Other(String),
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    line: usize,
    /// Byte span in the source.
    start: usize,
    end: usize,
}

impl Token {
    fn text(&self) -> &str {
        match &self.tok {
            Tok::Ident(s) | Tok::Other(s) => s,
        }
    }
    fn is_ident(&self, word: &str) -> bool {
        matches!(&self.tok, Tok::Ident(s) if s == word)
    }
    fn is_punct(&self, p: &str) -> bool {
        matches!(&self.tok, Tok::Other(s) if s == p)
    }
}

/// A rule declaration found in a source file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleDecl {
    pub identifier: String,
    /// 1-based line of the rule's identifier.
    pub line: usize,
    /// 1-based line of the rule's closing brace.
    pub end_line: usize,
    /// sha256 (hex) of the rule's token stream: comments and layout do not
    /// change it, any change to its meta, strings or condition does.
    pub fingerprint: String,
    /// Byte span of the whole declaration (modifiers to closing brace).
    pub start: usize,
    pub end: usize,
    /// `global rule`: every rule of the namespace depends on it.
    pub global: bool,
    /// Identifiers used inside the rule (candidates for rule references).
    pub refs: BTreeSet<String>,
    /// Prefixes of rule-set wildcards such as `any of (Foo*)`.
    pub wildcards: Vec<String>,
}

/// An `include "..."` statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncludeDecl {
    pub target: String,
    pub line: usize,
}

/// What the lexer learned from one source file.
#[derive(Debug, Clone, Default)]
pub struct SourceInfo {
    pub rules: Vec<RuleDecl>,
    pub includes: Vec<IncludeDecl>,
    /// Modules imported by the file (`import "pe"`).
    pub imports: Vec<String>,
    /// Every identifier that appears in the file (keywords included).
    pub identifiers: BTreeSet<String>,
}

/// Analyse one YARA source file. Never fails: text it does not understand is
/// kept as opaque tokens, and yara-x reports the real error when compiling.
pub fn analyse(src: &str) -> SourceInfo {
    let tokens = tokenize(src);
    let mut info = SourceInfo::default();
    for t in &tokens {
        if let Tok::Ident(s) = &t.tok {
            info.identifiers.insert(s.clone());
        }
    }

    let mut depth: i64 = 0;
    let mut i = 0;
    while i < tokens.len() {
        let t = &tokens[i];
        if t.is_punct("{") {
            depth += 1;
        } else if t.is_punct("}") {
            depth -= 1;
        } else if depth == 0 && t.is_ident("include") {
            if let Some(next) = tokens.get(i + 1) {
                if let Tok::Other(s) = &next.tok {
                    if s.starts_with('"') {
                        info.includes.push(IncludeDecl {
                            target: unquote(s),
                            line: t.line,
                        });
                    }
                }
            }
        } else if depth == 0 && t.is_ident("import") {
            if let Some(Tok::Other(s)) = tokens.get(i + 1).map(|n| &n.tok) {
                if s.starts_with('"') {
                    info.imports.push(unquote(s));
                }
            }
        } else if depth == 0 && t.is_ident("rule") {
            // Modifiers (`private`, `global`) before `rule` belong to it.
            let mut start = i;
            while start > 0
                && (tokens[start - 1].is_ident("private") || tokens[start - 1].is_ident("global"))
            {
                start -= 1;
            }
            if let Some(name) = tokens.get(i + 1) {
                if let Tok::Ident(ident) = &name.tok {
                    let end = rule_end(&tokens, i + 2);
                    let body = &tokens[i + 2..end];
                    let refs = body
                        .iter()
                        .filter_map(|t| match &t.tok {
                            Tok::Ident(s) => Some(s.clone()),
                            Tok::Other(_) => None,
                        })
                        .collect();
                    let wildcards = body
                        .windows(2)
                        .filter_map(|w| match (&w[0].tok, w[1].is_punct("*")) {
                            (Tok::Ident(s), true) if w[0].end == w[1].start => Some(s.clone()),
                            _ => None,
                        })
                        .collect();
                    info.rules.push(RuleDecl {
                        identifier: ident.clone(),
                        line: name.line,
                        end_line: tokens[end - 1].line,
                        fingerprint: fingerprint(&tokens[start..end]),
                        start: tokens[start].start,
                        end: tokens[end - 1].end,
                        global: tokens[start..i].iter().any(|t| t.is_ident("global")),
                        refs,
                        wildcards,
                    });
                    i = end;
                    continue;
                }
            }
        }
        i += 1;
    }
    info
}

/// Index one past the `}` that closes the rule body starting at or after `from`.
fn rule_end(tokens: &[Token], from: usize) -> usize {
    let mut depth = 0i64;
    let mut j = from;
    while j < tokens.len() {
        if tokens[j].is_punct("{") {
            depth += 1;
        } else if tokens[j].is_punct("}") {
            depth -= 1;
            if depth == 0 {
                return j + 1;
            }
        }
        j += 1;
    }
    tokens.len()
}

fn fingerprint(tokens: &[Token]) -> String {
    let mut h = Sha256::new();
    for t in tokens {
        h.update(t.text().as_bytes());
        h.update([0u8]);
    }
    crate::hexfmt::hex(&h.finalize())
}

fn unquote(s: &str) -> String {
    let inner = s.strip_prefix('"').unwrap_or(s);
    let inner = inner.strip_suffix('"').unwrap_or(inner);
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some(other) => out.push(other),
                None => {}
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn tokenize(src: &str) -> Vec<Token> {
    let b = src.as_bytes();
    let mut out: Vec<Token> = Vec::new();
    let mut i = 0;
    let mut line = 1;
    while i < b.len() {
        let c = b[i];
        if c == b'\n' {
            line += 1;
            i += 1;
        } else if c.is_ascii_whitespace() {
            i += 1;
        } else if c == b'/' && b.get(i + 1) == Some(&b'/') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if c == b'/' && b.get(i + 1) == Some(&b'*') {
            i += 2;
            while i < b.len() && !(b[i] == b'*' && b.get(i + 1) == Some(&b'/')) {
                if b[i] == b'\n' {
                    line += 1;
                }
                i += 1;
            }
            i = (i + 2).min(b.len());
        } else if c == b'"' {
            let end = delimited(b, i, b'"');
            out.push(Token {
                tok: Tok::Other(src[i..end].to_string()),
                line,
                start: i,
                end,
            });
            i = end;
        } else if c == b'/' && regex_may_start(&out) {
            let mut end = delimited(b, i, b'/');
            // Regexp modifiers: /abc/is
            while end < b.len() && b[end].is_ascii_alphabetic() {
                end += 1;
            }
            out.push(Token {
                tok: Tok::Other(src[i..end].to_string()),
                line,
                start: i,
                end,
            });
            i = end;
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            out.push(Token {
                tok: Tok::Ident(src[start..i].to_string()),
                line,
                start,
                end: i,
            });
        } else if c.is_ascii_alphanumeric() || matches!(c, b'$' | b'#' | b'@' | b'!') {
            // Numbers and pattern references ($a, #a, @a[1], !a): one token.
            let start = i;
            i += 1;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'*') {
                i += 1;
            }
            out.push(Token {
                tok: Tok::Other(src[start..i].to_string()),
                line,
                start,
                end: i,
            });
        } else {
            // One character of punctuation (or one UTF-8 character).
            let len = utf8_len(c);
            let end = (i + len).min(b.len());
            out.push(Token {
                tok: Tok::Other(String::from_utf8_lossy(&b[i..end]).into_owned()),
                line,
                start: i,
                end,
            });
            i = end;
        }
    }
    out
}

/// A `/` starts a regexp after `=` (pattern definition) or `matches`.
fn regex_may_start(prev: &[Token]) -> bool {
    match prev.last() {
        Some(t) => t.is_punct("=") || t.is_ident("matches"),
        None => false,
    }
}

/// Returns the end (exclusive) of a token delimited by `delim` with backslash
/// escapes. Strings and regexps cannot span lines in YARA, so an unterminated
/// one ends at the line end and does not swallow the rest of the file.
fn delimited(b: &[u8], start: usize, delim: u8) -> usize {
    let mut i = start + 1;
    while i < b.len() {
        match b[i] {
            b'\\' if b.get(i + 1) != Some(&b'\n') => i += 2,
            b'\n' => return i,
            x if x == delim => return i + 1,
            _ => i += 1,
        }
    }
    b.len()
}

fn utf8_len(first: u8) -> usize {
    match first {
        0x00..=0x7f => 1,
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf7 => 4,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: &str = r#"
import "pe"
include "common.yar"
// rule NotARule { condition: true }
/* rule AlsoNot {
   condition: true } */
private rule Helper { condition: true }

rule First : tag1 tag2
{
    meta:
        description = "has a } brace and // not a comment"
    strings:
        $a = "rule Fake {"
        $b = { 4D 5A [2-4] ?? }
        $c = /a\/b{2}}/i
    condition:
        Helper and any of them and filename matches /\.exe$/
}
global rule Second { condition: filesize < 10 }
"#;

    #[test]
    fn finds_rules_with_lines_skipping_comments_and_strings() {
        let info = analyse(SRC);
        let names: Vec<_> = info
            .rules
            .iter()
            .map(|r| (r.identifier.as_str(), r.line))
            .collect();
        assert_eq!(names, vec![("Helper", 7), ("First", 9), ("Second", 20)]);
        assert_eq!(info.rules[1].end_line, 19);
        assert_eq!(info.includes.len(), 1);
        assert_eq!(info.includes[0].target, "common.yar");
        assert_eq!(info.includes[0].line, 3);
        assert!(info.identifiers.contains("filename"));
        assert!(!info.identifiers.contains("NotARule"));
    }

    #[test]
    fn fingerprint_ignores_layout_and_comments_but_not_content() {
        let a = analyse("rule X { strings: $a = \"abc\" condition: $a }");
        let b = analyse(
            "// c\nrule   X\n{\n  strings:\n    $a = \"abc\" /* x */\n  condition:\n    $a\n}\n",
        );
        let c = analyse("rule X { strings: $a = \"abd\" condition: $a }");
        assert_eq!(a.rules[0].fingerprint, b.rules[0].fingerprint);
        assert_ne!(a.rules[0].fingerprint, c.rules[0].fingerprint);
    }

    #[test]
    fn unterminated_string_does_not_swallow_the_file() {
        let info =
            analyse("rule A { strings: $a = \"abc\n condition: $a }\nrule B { condition: true }");
        let names: Vec<_> = info.rules.iter().map(|r| r.identifier.clone()).collect();
        assert_eq!(names, vec!["A", "B"]);
    }
}
