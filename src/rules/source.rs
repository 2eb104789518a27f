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

pub use super::tokens::{RuleDecl, FINGERPRINT_SCHEME};

use super::tokens::{self, Lines};
use sha2::{Digest, Sha256};
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, OnceLock};
use yara_x_parser::ast::{Item, MetaValue, WithSpan, AST};
use yara_x_parser::cst::{CSTStream, Event};
use yara_x_parser::Parser;

/// Bumped whenever what `analyse` computes changes: parses kept in the
/// results cache under another version are not used.
pub const ANALYSIS_VERSION: u32 = 3;

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

/// `analyse` for many files, in parallel, each answered from the results
/// cache (`cache_dir`) when the same bytes were analysed before.
pub fn analyse_all(files: &[&[u8]], cache_dir: Option<&std::path::Path>) -> Vec<SourceInfo> {
    let known = lookup(files, cache_dir);
    finish(files, known, cache_dir, true)
}

const DOMAIN: &str = "source-info";

/// The parses the results cache holds for `files` (none without a cache).
/// A file that mentions `include` anywhere is never answered from the
/// cache: the include sandbox never rests on a value read back from it.
pub fn lookup(files: &[&[u8]], cache_dir: Option<&std::path::Path>) -> Vec<Option<SourceInfo>> {
    use rayon::prelude::*;
    let Some(dir) = cache_dir else {
        return vec![None; files.len()];
    };
    let keys: Vec<[u8; 32]> = files.par_iter().map(|b| source_key(b)).collect();
    crate::store::small_get(dir, DOMAIN, &keys)
        .into_iter()
        .zip(files)
        .map(|(v, b)| {
            v.and_then(|v| serde_json::from_slice(&v).ok())
                .filter(|_| !mentions_include(b))
        })
        .collect()
}

/// `known` completed: every file it has no parse for is parsed (on every
/// thread when `parallel`, else on this one) and the new parses are kept in
/// the cache.
pub fn finish(
    files: &[&[u8]],
    known: Vec<Option<SourceInfo>>,
    cache_dir: Option<&std::path::Path>,
    parallel: bool,
) -> Vec<SourceInfo> {
    use rayon::prelude::*;
    // A fresh parse comes with its key (the cache's and the memo's).
    let one = |(b, k): (&&[u8], Option<SourceInfo>)| match k {
        Some(info) => (info, None),
        None => {
            let key = source_key(b);
            (analysed(b, key), Some(key))
        }
    };
    let out: Vec<(SourceInfo, Option<[u8; 32]>)> = if parallel {
        files.par_iter().zip(known).map(one).collect()
    } else {
        files.iter().zip(known).map(one).collect()
    };
    if let Some(dir) = cache_dir {
        let rows: Vec<([u8; 32], Vec<u8>)> = out
            .iter()
            .filter_map(|(info, key)| Some(((*key)?, serde_json::to_vec(info).ok()?)))
            .collect();
        crate::store::small_put(dir, DOMAIN, &rows);
    }
    out.into_iter().map(|(i, _)| i).collect()
}

/// `analyse`, once per content in this process: a gate's baseline shares
/// most of its files with the candidate, and the two sets are parsed side
/// by side (a parse is a function of the bytes alone). A file being parsed
/// by another thread is waited for, not parsed twice.
/// `key` is `source_key(b)`.
fn analysed(b: &[u8], key: [u8; 32]) -> SourceInfo {
    type Done = Mutex<HashMap<[u8; 32], Arc<OnceLock<SourceInfo>>>>;
    static DONE: OnceLock<Done> = OnceLock::new();
    let cell = DONE
        .get_or_init(Done::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(key)
        .or_default()
        .clone();
    cell.get_or_init(|| analyse(b)).clone()
}

/// True when the compile must wait for this file's parse: it may include
/// another file (the include sandbox checks every `include` before the
/// compiler sees it) or may use a standard external variable (which is
/// declared before any source is added). Any other file's parse only
/// describes its rules, and can run while the compiler works. Both are
/// tested on the raw bytes, so a file that is not `needed_before_compile`
/// has no `include` statement and no standard external in its conditions.
pub fn needed_before_compile(b: &[u8]) -> bool {
    mentions_include(b)
        || super::STANDARD_EXTERNALS
            .iter()
            .any(|e| b.windows(e.len()).any(|w| w == e.as_bytes()))
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
    let read = tokens::read_rules(&events, src, &lines);
    info.rules = read.rules;
    info.identifiers = read.identifiers;
    info.syntax_errors = read.syntax_errors;

    // Includes and imports: the items the compiler itself acts on.
    let ast = AST::from(CSTStream::new(src, events.into_iter()));
    // What the AST says of each rule, in order.
    struct Described {
        identifier: String,
        tags: Vec<String>,
        description: Option<String>,
        author: Option<String>,
        private: bool,
        hashes: Vec<(String, String)>,
    }
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
                let hashes = rule
                    .meta
                    .iter()
                    .flatten()
                    .filter_map(|m| {
                        let v = text(&m.value)?.trim().to_ascii_lowercase();
                        let digest = matches!(v.len(), 32 | 40 | 64)
                            && v.bytes().all(|b| b.is_ascii_hexdigit());
                        digest.then(|| (m.identifier.name.to_string(), v))
                    })
                    .collect();
                described.push(Described {
                    identifier: rule.identifier.name.to_string(),
                    tags: rule
                        .tags
                        .iter()
                        .flatten()
                        .map(|t| t.name.to_string())
                        .collect(),
                    description: meta("description"),
                    author: meta("author"),
                    private: rule.flags.contains(yara_x_parser::ast::RuleFlags::Private),
                    hashes,
                });
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
        if let Some(k) = described[next..]
            .iter()
            .position(|d| d.identifier == r.identifier)
        {
            let d = &described[next + k];
            r.tags = d.tags.clone();
            r.description = d.description.clone();
            r.author = d.author.clone();
            r.private = d.private;
            r.hashes = d.hashes.clone();
            next += k + 1;
        }
    }
    info
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
    fn files_parsed_side_by_side_are_parsed_as_alone() {
        // Two sets sharing files, parsed on two threads at once (a gate):
        // each file's parse is its own, whichever thread made it.
        let a = b"rule a { strings: $a = \"aaaa\" condition: $a }".to_vec();
        let b = b"import \"pe\"\nrule b : t { condition: pe.is_dll() }".to_vec();
        let c = b"rule c { condition: filename == \"x\" }".to_vec();
        let one: Vec<&[u8]> = vec![&a, &b, &c, &a];
        let two: Vec<&[u8]> = vec![&c, &a, &b];
        let (x, y) = std::thread::scope(|s| {
            let x = s.spawn(|| finish(&one, vec![None; 4], None, true));
            let y = s.spawn(|| finish(&two, vec![None; 3], None, false));
            (x.join().unwrap(), y.join().unwrap())
        });
        let json = |i: &SourceInfo| serde_json::to_string(i).unwrap();
        for (file, info) in one.iter().zip(&x).chain(two.iter().zip(&y)) {
            assert_eq!(json(info), json(&analyse(file)));
        }
        assert_eq!(x[0].rules[0].identifier, "a");
        assert_eq!(y[2].imports, vec!["pe"]);
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
