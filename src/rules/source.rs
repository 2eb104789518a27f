//! What fpgate needs to know about YARA source text, read with the engine's
//! own parser (`yara-x-parser`, at the exact version yara-x compiles with).
//!
//! yara-x's compiled `Rules` do not say where a rule was declared, and fpgate
//! needs that (evidence points a rule author at the rule's line), a
//! fingerprint of each rule that ignores comments and layout but sees every
//! token the compiler sees, the rules a condition refers to, the identifiers
//! conditions use (to decide which external variables to declare), and the
//! `import` and `include` statements. All of it comes from the parser the
//! compiler runs, so fpgate cannot read a file differently from the engine:
//! an `include` after a regular expression in a function argument, a `//`
//! inside a regexp, a brace in a string are tokens to both or to neither.
//!
//! Includes and imports are taken from the abstract syntax tree built exactly
//! as the compiler builds it (the compiler acts on those items even when the
//! file also has syntax errors); rules, spans and fingerprints from the
//! concrete syntax tree's event stream of the same parser.

use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use yara_x_parser::ast::{Item, MetaValue, WithSpan, AST};
use yara_x_parser::cst::{CSTStream, Event, SyntaxKind};
use yara_x_parser::Parser;

/// The fingerprint scheme: fingerprints are written `v2:<64 hex>`. Scheme 1
/// (bare 64 hex digits, fpgate 0.1) came from a hand-written lexer that
/// could miss edits; such fingerprints are recognised and never compared.
pub const FINGERPRINT_SCHEME: &str = "v2";

/// Bumped whenever what `analyse` computes changes: parses kept in the
/// results cache under another version are not used.
pub const ANALYSIS_VERSION: u32 = 2;

/// A rule declaration found in a source file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RuleDecl {
    pub identifier: String,
    /// 1-based line of the rule's identifier.
    pub line: usize,
    /// 1-based line of the rule's last token (its closing brace).
    pub end_line: usize,
    /// `v2:` + sha256 of the rule's tokens (kind and text) as the parser
    /// reads them, without comments and layout: any change the compiler
    /// sees changes it, meta and tags included.
    pub fingerprint: String,
    /// sha256 of the tokens that can change what the rule matches: the
    /// fingerprint's tokens without the `meta:` block and the tags.
    pub match_digest: [u8; 32],
    /// Byte span of the whole declaration (modifiers to closing brace).
    pub start: usize,
    pub end: usize,
    /// `global rule`: every rule of the namespace depends on it.
    pub global: bool,
    /// Identifiers used in the condition (rule references among them).
    pub refs: BTreeSet<String>,
    /// Tags, and the first `description` and `author` meta, as the
    /// compiler stores them (what the report shows of the rule).
    pub tags: Vec<String>,
    pub description: Option<String>,
    pub author: Option<String>,
    /// Each pattern definition: byte span and identifier (`$a`, or `$`).
    pub patterns: Vec<(usize, usize, String)>,
}

/// An `include "..."` statement, with the file name exactly as the compiler
/// will look it up.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IncludeDecl {
    pub target: String,
    pub line: usize,
}

/// What the parser learned from one source file.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct SourceInfo {
    pub rules: Vec<RuleDecl>,
    pub includes: Vec<IncludeDecl>,
    /// Modules imported by the file (`import "pe"`).
    pub imports: Vec<String>,
    /// Every identifier used in a condition of the file.
    pub identifiers: BTreeSet<String>,
    /// The parser reported syntax errors (the compiler will refuse it).
    pub syntax_errors: bool,
}

/// Byte offsets of line starts, for 1-based line numbers.
struct Lines(Vec<usize>);

impl Lines {
    fn new(src: &[u8]) -> Lines {
        let mut v = vec![0];
        v.extend(
            src.iter()
                .enumerate()
                .filter(|(_, b)| **b == b'\n')
                .map(|(i, _)| i + 1),
        );
        Lines(v)
    }
    fn line(&self, offset: usize) -> usize {
        self.0.partition_point(|&s| s <= offset)
    }
}

/// A rule being read from the event stream.
struct Acc {
    fp: Sha256,
    matching: Sha256,
    identifier: Option<String>,
    ident_offset: usize,
    start: Option<usize>,
    end: usize,
    global: bool,
    refs: BTreeSet<String>,
    last_kind: Option<SyntaxKind>,
    in_condition: bool,
    /// Depth inside `meta:` or tags (not part of what the rule matches).
    descriptive: u32,
    in_mods: bool,
    patterns: Vec<(usize, usize, String)>,
    /// Inside a pattern definition: where it started, its identifier.
    pattern: Option<(usize, String)>,
}

fn hash_token(h: &mut Sha256, kind: SyntaxKind, text: &[u8]) {
    h.update((kind as u16).to_le_bytes());
    h.update((text.len() as u64).to_le_bytes());
    h.update(text);
}

/// `analyse` for many files, in parallel, each answered from the results
/// cache (`cache_dir`) when the same bytes were analysed before.
pub fn analyse_all(files: &[&[u8]], cache_dir: Option<&std::path::Path>) -> Vec<SourceInfo> {
    use rayon::prelude::*;
    const DOMAIN: &str = "source-info";
    let keys: Vec<[u8; 32]> = files.par_iter().map(|b| source_key(b)).collect();
    let known: Vec<Option<SourceInfo>> = match cache_dir {
        Some(dir) => crate::store::small_get(dir, DOMAIN, &keys)
            .into_iter()
            .map(|v| v.and_then(|v| serde_json::from_slice(&v).ok()))
            .collect(),
        None => vec![None; files.len()],
    };
    // A file that mentions `include` anywhere is always parsed afresh: the
    // include sandbox never rests on a value read back from the cache.
    let out: Vec<(SourceInfo, bool)> = files
        .par_iter()
        .zip(known)
        .map(|(b, k)| match k {
            Some(info) if !mentions_include(b) => (info, false),
            _ => (analyse(b), true),
        })
        .collect();
    if let Some(dir) = cache_dir {
        let rows: Vec<([u8; 32], Vec<u8>)> = out
            .iter()
            .zip(&keys)
            .filter(|((_, fresh), _)| *fresh)
            .filter_map(|((info, _), k)| Some((*k, serde_json::to_vec(info).ok()?)))
            .collect();
        crate::store::small_put(dir, DOMAIN, &rows);
    }
    out.into_iter().map(|(i, _)| i).collect()
}

/// The cache key of a file's parse: the analysis and engine versions and
/// the bytes.
fn source_key(b: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(format!(
        "analysis v{ANALYSIS_VERSION} fpgate {} yara-x {}\n",
        env!("CARGO_PKG_VERSION"),
        yara_x::VERSION
    ));
    h.update(b);
    h.finalize().into()
}

fn mentions_include(b: &[u8]) -> bool {
    b.windows(7).any(|w| w == b"include")
}

/// Analyse one YARA source file. Never fails: what the parser cannot read
/// the compiler will refuse, with its own error.
pub fn analyse(src: &[u8]) -> SourceInfo {
    let lines = Lines::new(src);
    let mut info = SourceInfo::default();

    // One parse: the events feed this pass, then the AST, built from them
    // exactly as the compiler builds it (`CSTStream` over the parser).
    let events: Vec<Event> = Parser::new(src).collect();
    let mut stack: Vec<SyntaxKind> = Vec::new();
    let mut acc: Option<Acc> = None;
    for event in &events {
        walk(event, src, &lines, &mut stack, &mut acc, &mut info);
    }

    // Includes and imports: the items the compiler itself acts on.
    let ast = AST::from(CSTStream::new(src, events.into_iter()));
    // (identifier, tags, description, author) of each rule, in order.
    type Described = (String, Vec<String>, Option<String>, Option<String>);
    let mut described: Vec<Described> = Vec::new();
    for item in ast.items() {
        match item {
            Item::Rule(rule) => {
                let text = |v: &MetaValue| match v {
                    MetaValue::String((s, _)) => Some(s.to_string()),
                    MetaValue::Bytes((b, _)) => Some(String::from_utf8_lossy(b).into_owned()),
                    _ => None,
                };
                let meta = |key: &str| {
                    rule.meta
                        .iter()
                        .flatten()
                        .filter(|m| m.identifier.name == key)
                        .find_map(|m| text(&m.value))
                };
                described.push((
                    rule.identifier.name.to_string(),
                    rule.tags
                        .iter()
                        .flatten()
                        .map(|t| t.name.to_string())
                        .collect(),
                    meta("description"),
                    meta("author"),
                ));
            }
            Item::Include(inc) => info.includes.push(IncludeDecl {
                target: inc.file_name.to_string(),
                line: lines.line(inc.span().start()),
            }),
            Item::Import(imp) => info.imports.push(imp.module_name.to_string()),
        }
    }
    info.syntax_errors |= !ast.errors().is_empty();

    // Attach what the AST says of each rule, in declaration order.
    let mut next = 0;
    for r in &mut info.rules {
        if let Some(k) = described[next..].iter().position(|d| d.0 == r.identifier) {
            let d = &described[next + k];
            r.tags = d.1.clone();
            r.description = d.2.clone();
            r.author = d.3.clone();
            next += k + 1;
        }
    }
    info
}

/// One event of the parser's stream: rule declarations, their tokens.
fn walk(
    event: &Event,
    src: &[u8],
    lines: &Lines,
    stack: &mut Vec<SyntaxKind>,
    acc: &mut Option<Acc>,
    info: &mut SourceInfo,
) {
    match event {
        Event::Begin { kind, span } => {
            if *kind == SyntaxKind::RULE_DECL && stack.len() == 1 {
                *acc = Some(Acc::new());
            }
            if let Some(a) = acc.as_mut() {
                a.begin(*kind, span.start());
            }
            stack.push(*kind);
        }
        Event::End { kind, span } => {
            stack.pop();
            if let Some(a) = acc.as_mut() {
                a.end(*kind, span.end());
            }
            if *kind == SyntaxKind::RULE_DECL && stack.len() == 1 {
                if let Some(a) = acc.take() {
                    finish(a, lines, info);
                }
            }
        }
        Event::Token { kind, span } => {
            if matches!(
                kind,
                SyntaxKind::WHITESPACE | SyntaxKind::NEWLINE | SyntaxKind::COMMENT
            ) {
                return;
            }
            if let Some(a) = acc.as_mut() {
                let text = src.get(span.range()).unwrap_or_default();
                a.token(*kind, text, span.start(), span.end(), info);
            }
        }
        Event::Error { .. } => info.syntax_errors = true,
    }
}

impl Acc {
    fn new() -> Acc {
        Acc {
            fp: Sha256::new(),
            matching: Sha256::new(),
            identifier: None,
            ident_offset: 0,
            start: None,
            end: 0,
            global: false,
            refs: BTreeSet::new(),
            last_kind: None,
            in_condition: false,
            descriptive: 0,
            in_mods: false,
            patterns: Vec::new(),
            pattern: None,
        }
    }

    /// A node of the rule begins at `start`.
    fn begin(&mut self, kind: SyntaxKind, start: usize) {
        match kind {
            SyntaxKind::CONDITION_BLK => self.in_condition = true,
            SyntaxKind::META_BLK | SyntaxKind::RULE_TAGS => self.descriptive += 1,
            SyntaxKind::RULE_MODS => self.in_mods = true,
            SyntaxKind::PATTERN_DEF => self.pattern = Some((start, String::new())),
            _ => {}
        }
    }

    /// A node of the rule ends at `end`.
    fn end(&mut self, kind: SyntaxKind, end: usize) {
        match kind {
            SyntaxKind::PATTERN_DEF => {
                if let Some((start, id)) = self.pattern.take() {
                    self.patterns.push((start, end, id));
                }
            }
            SyntaxKind::CONDITION_BLK => self.in_condition = false,
            SyntaxKind::META_BLK | SyntaxKind::RULE_TAGS => self.descriptive -= 1,
            SyntaxKind::RULE_MODS => self.in_mods = false,
            _ => {}
        }
    }

    /// A token of the rule (not trivia), spanning `start..end`.
    fn token(
        &mut self,
        kind: SyntaxKind,
        text: &[u8],
        start: usize,
        end: usize,
        info: &mut SourceInfo,
    ) {
        self.start.get_or_insert(start);
        self.end = end;
        hash_token(&mut self.fp, kind, text);
        if self.descriptive == 0 {
            hash_token(&mut self.matching, kind, text);
        }
        if kind == SyntaxKind::PATTERN_IDENT {
            if let Some((_, id)) = self.pattern.as_mut().filter(|p| p.1.is_empty()) {
                *id = String::from_utf8_lossy(text).into_owned();
            }
        }
        if kind == SyntaxKind::GLOBAL_KW && self.in_mods {
            self.global = true;
        }
        if kind == SyntaxKind::IDENT {
            let s = String::from_utf8_lossy(text).into_owned();
            if self.identifier.is_none() && self.last_kind == Some(SyntaxKind::RULE_KW) {
                self.identifier = Some(s);
                self.ident_offset = start;
            } else if self.in_condition {
                info.identifiers.insert(s.clone());
                self.refs.insert(s);
            }
        }
        self.last_kind = Some(kind);
    }
}

fn finish(a: Acc, lines: &Lines, info: &mut SourceInfo) {
    let (Some(identifier), Some(start)) = (a.identifier, a.start) else {
        return; // a declaration the parser could not read: a compile error
    };
    let fp: [u8; 32] = a.fp.finalize().into();
    info.rules.push(RuleDecl {
        identifier,
        line: lines.line(a.ident_offset),
        end_line: lines.line(a.end.saturating_sub(1)),
        fingerprint: format!("{FINGERPRINT_SCHEME}:{}", crate::util::hex::hex(&fp)),
        match_digest: a.matching.finalize().into(),
        start,
        end: a.end,
        global: a.global,
        refs: a.refs,
        tags: Vec::new(),
        description: None,
        author: None,
        patterns: a.patterns,
    });
}

/// The scheme a fingerprint string was written under: `Some(2)` for the
/// current one, `Some(1)` for fpgate 0.1's (64 hex digits), else `None`.
pub fn fingerprint_scheme(fp: &str) -> Option<u8> {
    let hex64 = |s: &str| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit());
    match fp.strip_prefix("v2:") {
        Some(rest) if hex64(rest) => Some(2),
        Some(_) => None,
        None if hex64(fp) => Some(1),
        None => None,
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
        let info = analyse(SRC.as_bytes());
        let names: Vec<_> = info
            .rules
            .iter()
            .map(|r| (r.identifier.as_str(), r.line))
            .collect();
        assert_eq!(names, vec![("Helper", 7), ("First", 9), ("Second", 20)]);
        assert_eq!(info.rules[1].end_line, 19);
        assert!(info.rules[2].global && !info.rules[1].global);
        assert!(info.rules[1].refs.contains("Helper"));
        assert!(info.rules[1].refs.contains("filename"));
        assert_eq!(info.includes.len(), 1);
        assert_eq!(info.includes[0].target, "common.yar");
        assert_eq!(info.includes[0].line, 3);
        assert_eq!(info.imports, vec!["pe"]);
        assert!(info.identifiers.contains("filename"));
        assert!(!info.identifiers.contains("NotARule"));
        assert!(!info.identifiers.contains("description"));
        let r = &info.rules[1];
        assert!(SRC[r.start..r.end].starts_with("rule First"));
        assert!(SRC[r.start..r.end].ends_with('}'));
        let h = &info.rules[0];
        assert!(SRC[h.start..h.end].starts_with("private rule Helper"));
        let pats: Vec<(&str, &str)> = r
            .patterns
            .iter()
            .map(|(a, b, id)| (id.as_str(), &SRC[*a..*b]))
            .collect();
        assert_eq!(
            pats,
            vec![
                ("$a", "$a = \"rule Fake {\""),
                ("$b", "$b = { 4D 5A [2-4] ?? }"),
                ("$c", "$c = /a\\/b{2}}/i"),
            ]
        );
    }

    #[test]
    fn fingerprint_ignores_layout_and_comments_but_not_content() {
        let fp = |s: &str| analyse(s.as_bytes()).rules[0].clone();
        let a = fp("rule X { strings: $a = \"abc\" condition: $a }");
        let b = fp(
            "// c\nrule   X\n{\n  strings:\n    $a = \"abc\" /* x */\n  condition:\n    $a\n}\n",
        );
        let c = fp("rule X { strings: $a = \"abd\" condition: $a }");
        let m = fp("rule X { meta: a = 1 strings: $a = \"abc\" condition: $a }");
        let t = fp("rule X : t { strings: $a = \"abc\" condition: $a }");
        assert_eq!(a.fingerprint, b.fingerprint);
        assert_eq!(a.match_digest, b.match_digest);
        assert_ne!(a.fingerprint, c.fingerprint);
        assert_ne!(a.match_digest, c.match_digest);
        // Meta and tags are part of the rule, not of what it matches.
        assert_ne!(a.fingerprint, m.fingerprint);
        assert_eq!(a.match_digest, m.match_digest);
        assert_ne!(a.fingerprint, t.fingerprint);
        assert_eq!(a.match_digest, t.match_digest);
        assert_eq!(fingerprint_scheme(&a.fingerprint), Some(2));
    }

    #[test]
    fn a_regexp_in_a_function_argument_is_not_a_comment() {
        // fpgate 0.1's lexer read `//` here as a comment: it missed the
        // include and every edit after it on the line.
        let src =
            "import \"pe\"\nrule a { condition: pe.exports(/x\\/\\//) } include \"/etc/passwd\"\n";
        let info = analyse(src.as_bytes());
        assert_eq!(info.includes.len(), 1);
        assert_eq!(info.includes[0].target, "/etc/passwd");
        let a = analyse(
            b"import \"pe\"\nrule r { condition: pe.exports(/http:\\/\\//) and filesize > 0 }",
        );
        let b = analyse(
            b"import \"pe\"\nrule r { condition: pe.exports(/http:\\/\\//) or filesize > 0 }",
        );
        assert_ne!(a.rules[0].fingerprint, b.rules[0].fingerprint);
        assert_ne!(a.rules[0].match_digest, b.rules[0].match_digest);
    }

    #[test]
    fn unterminated_string_does_not_swallow_the_file() {
        let info =
            analyse(b"rule A { strings: $a = \"abc\n condition: $a }\nrule B { condition: true }");
        assert!(info.syntax_errors);
        let names: Vec<_> = info.rules.iter().map(|r| r.identifier.clone()).collect();
        assert!(names.contains(&"B".to_string()), "{names:?}");
    }

    #[test]
    fn parses_come_back_from_the_cache_but_includes_never_do() {
        let d = tempfile::tempdir().unwrap();
        let plain = b"rule a { condition: true }".to_vec();
        let inc = b"include \"x.yar\"\nrule b { condition: true }".to_vec();
        let first = analyse_all(&[&plain, &inc], Some(d.path()));
        assert_eq!(first[1].includes.len(), 1);
        // A cache that lies: both entries claim one rule `forged`, no include.
        let mut forged = analyse(b"rule forged { condition: true }");
        forged.includes.clear();
        let v = serde_json::to_vec(&forged).unwrap();
        crate::store::small_put(
            d.path(),
            "source-info",
            &[(source_key(&plain), v.clone()), (source_key(&inc), v)],
        );
        let again = analyse_all(&[&plain, &inc], Some(d.path()));
        assert_eq!(
            again[0].rules[0].identifier, "forged",
            "read back from the cache"
        );
        assert_eq!(
            again[1].includes.len(),
            1,
            "a file with `include` is parsed afresh"
        );
        assert_eq!(again[1].rules[0].identifier, "b");
    }

    #[test]
    fn schemes() {
        assert_eq!(fingerprint_scheme(&"a".repeat(64)), Some(1));
        assert_eq!(
            fingerprint_scheme(&format!("v2:{}", "0".repeat(64))),
            Some(2)
        );
        assert_eq!(fingerprint_scheme("v2:zz"), None);
        assert_eq!(fingerprint_scheme("nope"), None);
    }
}
