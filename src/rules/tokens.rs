//! Rule declarations read from the parser's concrete-syntax event stream:
//! each rule's span, its name and line, the fingerprint of every token the
//! compiler sees (comments and layout aside), the digest of what it matches
//! (meta and tags aside), its pattern definitions, the rules and
//! identifiers its condition names, and whether it is global.

use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use yara_x_parser::cst::{Event, SyntaxKind};

/// The fingerprint scheme: fingerprints are written `v2:<64 hex>`. Scheme 1
/// (bare 64 hex digits, fpgate 0.1) came from a hand-written lexer that
/// could miss edits; such fingerprints are recognised and never compared.
pub const FINGERPRINT_SCHEME: &str = "v2";

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
    /// `match_digest` without the rule's own name: equal for a rule and
    /// the same rule renamed.
    #[serde(default)]
    pub body_digest: [u8; 32],
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
    /// `private rule`: the engine never reports it as matching.
    #[serde(default)]
    pub private: bool,
    /// Every string meta whose value is a hex digest (32, 40 or 64 hex
    /// digits: md5, sha1, sha256), as (key, lowercase value): the samples
    /// the rule says it detects.
    #[serde(default)]
    pub hashes: Vec<(String, String)>,
    /// Each pattern definition: byte span and identifier (`$a`, or `$`).
    pub patterns: Vec<(usize, usize, String)>,
}

/// What the event stream says of a file's rules.
#[derive(Default)]
pub(super) struct Read {
    pub rules: Vec<RuleDecl>,
    /// Every identifier used in a condition of the file.
    pub identifiers: BTreeSet<String>,
    /// The parser reported syntax errors.
    pub syntax_errors: bool,
}

/// Read every top-level rule declaration of the stream.
pub(super) fn read_rules(events: &[Event], src: &[u8], lines: &Lines) -> Read {
    let mut info = Read::default();
    let mut stack: Vec<SyntaxKind> = Vec::new();
    let mut acc: Option<Acc> = None;
    for event in events {
        walk(event, src, lines, &mut stack, &mut acc, &mut info);
    }
    info
}

/// Byte offsets of line starts, for 1-based line numbers.
pub(super) struct Lines(Vec<usize>);

impl Lines {
    pub(super) fn new(src: &[u8]) -> Lines {
        let mut v = vec![0];
        v.extend(
            src.iter()
                .enumerate()
                .filter(|(_, b)| **b == b'\n')
                .map(|(i, _)| i + 1),
        );
        Lines(v)
    }
    pub(super) fn line(&self, offset: usize) -> usize {
        self.0.partition_point(|&s| s <= offset)
    }
}

/// A rule being read from the event stream.
struct Acc {
    fp: Sha256,
    matching: Sha256,
    /// `matching` without the rule's own name.
    body: Sha256,
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

/// One event of the parser's stream: rule declarations, their tokens.
fn walk(
    event: &Event,
    src: &[u8],
    lines: &Lines,
    stack: &mut Vec<SyntaxKind>,
    acc: &mut Option<Acc>,
    info: &mut Read,
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
            body: Sha256::new(),
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
    fn token(&mut self, kind: SyntaxKind, text: &[u8], start: usize, end: usize, info: &mut Read) {
        self.start.get_or_insert(start);
        self.end = end;
        hash_token(&mut self.fp, kind, text);
        if self.descriptive == 0 {
            hash_token(&mut self.matching, kind, text);
            let own_name = kind == SyntaxKind::IDENT
                && self.identifier.is_none()
                && self.last_kind == Some(SyntaxKind::RULE_KW);
            if !own_name {
                hash_token(&mut self.body, kind, text);
            }
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

fn finish(a: Acc, lines: &Lines, info: &mut Read) {
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
        body_digest: a.body.finalize().into(),
        start,
        end: a.end,
        global: a.global,
        refs: a.refs,
        tags: Vec::new(),
        description: None,
        author: None,
        private: false,
        hashes: Vec::new(),
        patterns: a.patterns,
    });
}
