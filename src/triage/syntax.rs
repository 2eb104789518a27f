//! The parts of one rule declaration a narrowing edits, read with the
//! engine's own parser: each pattern definition (its kind, its modifiers
//! and where they end) and the condition's expression.

use yara_x_parser::cst::{Event, SyntaxKind};
use yara_x_parser::Parser;

/// What kind of value a pattern has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatternKind {
    Text,
    Hex,
    Regex,
}

/// One pattern definition of a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternSyntax {
    /// `$a`, or `$` for an anonymous pattern.
    pub identifier: String,
    /// Byte span of the whole definition (identifier to last modifier).
    pub span: (usize, usize),
    pub kind: PatternKind,
    /// The modifiers' keywords (`ascii`, `wide`, `fullword`, `xor`...),
    /// each with its byte span (arguments included).
    pub modifiers: Vec<(String, (usize, usize))>,
}

impl PatternSyntax {
    pub fn has(&self, modifier: &str) -> bool {
        self.modifiers.iter().any(|(m, _)| m == modifier)
    }
}

/// A rule declaration's editable parts. Spans are byte offsets into the
/// text that was read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleSyntax {
    pub patterns: Vec<PatternSyntax>,
    /// The condition's expression (after `condition:`).
    pub condition: Option<(usize, usize)>,
    /// The quantifiers of `... of` expressions in the condition (`any`,
    /// `2`, `all`...), by byte span, with the end of their expression.
    pub quantifiers: Vec<(usize, usize, usize)>,
    /// The parser found errors: nothing is edited.
    pub errors: bool,
}

/// Read the first rule declaration of `text` (one rule's source).
pub fn read(text: &str) -> RuleSyntax {
    let src = text.as_bytes();
    let mut out = RuleSyntax::default();
    let mut stack: Vec<SyntaxKind> = Vec::new();
    let mut pattern: Option<PatternSyntax> = None;
    let mut modifier: Option<(String, (usize, usize))> = None;
    let mut in_condition = false;
    let mut after_colon = false;
    let mut cond_start: Option<usize> = None;
    let mut cond_end = 0;
    let mut rules_seen = 0;
    for ev in Parser::new(src) {
        match ev {
            Event::Begin { kind, span } => {
                if kind == SyntaxKind::RULE_DECL {
                    rules_seen += 1;
                }
                if rules_seen == 1 {
                    match kind {
                        SyntaxKind::PATTERN_DEF => {
                            pattern = Some(PatternSyntax {
                                identifier: String::new(),
                                span: (span.start(), span.end()),
                                kind: PatternKind::Text,
                                modifiers: Vec::new(),
                            })
                        }
                        SyntaxKind::HEX_PATTERN
                            if stack.last() == Some(&SyntaxKind::PATTERN_DEF) =>
                        {
                            if let Some(p) = pattern.as_mut() {
                                p.kind = PatternKind::Hex;
                            }
                        }
                        SyntaxKind::REGEXP if stack.last() == Some(&SyntaxKind::PATTERN_DEF) => {
                            if let Some(p) = pattern.as_mut() {
                                p.kind = PatternKind::Regex;
                            }
                        }
                        SyntaxKind::PATTERN_MOD => {
                            modifier = Some((String::new(), (span.start(), span.end())))
                        }
                        SyntaxKind::CONDITION_BLK => {
                            in_condition = true;
                            after_colon = false;
                        }
                        SyntaxKind::QUANTIFIER
                            if in_condition && stack.last() == Some(&SyntaxKind::OF_EXPR) =>
                        {
                            out.quantifiers.push((span.start(), span.end(), span.end()));
                        }
                        _ => {}
                    }
                }
                stack.push(kind);
            }
            Event::End { kind, span } => {
                stack.pop();
                if rules_seen != 1 {
                    continue;
                }
                match kind {
                    SyntaxKind::OF_EXPR => {
                        if let Some(q) = out.quantifiers.last_mut().filter(|q| q.2 == q.1) {
                            q.2 = span.end();
                        }
                    }
                    SyntaxKind::PATTERN_MOD => {
                        if let (Some(p), Some(mut m)) = (pattern.as_mut(), modifier.take()) {
                            m.1 .1 = span.end();
                            p.modifiers.push(m);
                        }
                    }
                    SyntaxKind::PATTERN_DEF => {
                        if let Some(mut p) = pattern.take() {
                            p.span.1 = span.end();
                            out.patterns.push(p);
                        }
                    }
                    SyntaxKind::CONDITION_BLK => {
                        in_condition = false;
                        if let Some(s) = cond_start {
                            out.condition = Some((s, cond_end));
                        }
                    }
                    _ => {}
                }
            }
            Event::Token { kind, span } => {
                if rules_seen != 1
                    || matches!(
                        kind,
                        SyntaxKind::WHITESPACE | SyntaxKind::NEWLINE | SyntaxKind::COMMENT
                    )
                {
                    continue;
                }
                let t = String::from_utf8_lossy(src.get(span.range()).unwrap_or_default());
                if kind == SyntaxKind::REGEXP && modifier.is_none() {
                    if let Some(p) = pattern.as_mut() {
                        p.kind = PatternKind::Regex;
                    }
                }
                if kind == SyntaxKind::PATTERN_IDENT {
                    if let Some(p) = pattern.as_mut().filter(|p| p.identifier.is_empty()) {
                        p.identifier = t.into_owned();
                    }
                } else if let Some(m) = modifier.as_mut().filter(|m| m.0.is_empty()) {
                    m.0 = t.into_owned();
                }
                if in_condition {
                    if !after_colon {
                        after_colon = kind == SyntaxKind::COLON;
                    } else {
                        cond_start.get_or_insert(span.start());
                        cond_end = span.end();
                    }
                }
            }
            Event::Error { .. } => out.errors = true,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_modifiers_and_condition() {
        let text = "rule r : t {\n meta:\n  a = \"x\"\n strings:\n  $a = \"Update.exe\" ascii wide // c\n  $b = { 4D 5A }\n  $c = /ab+c/i fullword xor(1-2)\n condition:\n  2 of ($a, $b) and\n  $c\n}";
        let r = read(text);
        assert!(!r.errors);
        let ids: Vec<&str> = r.patterns.iter().map(|p| p.identifier.as_str()).collect();
        assert_eq!(ids, ["$a", "$b", "$c"]);
        assert_eq!(r.patterns[0].kind, PatternKind::Text);
        assert_eq!(r.patterns[1].kind, PatternKind::Hex);
        assert_eq!(r.patterns[2].kind, PatternKind::Regex);
        let mods: Vec<&str> = r.patterns[2]
            .modifiers
            .iter()
            .map(|m| m.0.as_str())
            .collect();
        assert_eq!(mods, ["fullword", "xor"]);
        let (a, b) = r.patterns[2].modifiers[1].1;
        assert_eq!(&text[a..b], "xor(1-2)");
        let (a, b) = r.patterns[0].span;
        assert_eq!(&text[a..b], "$a = \"Update.exe\" ascii wide");
        let (a, b) = r.condition.unwrap();
        assert_eq!(&text[a..b], "2 of ($a, $b) and\n  $c");
        let q: Vec<(&str, &str)> = r
            .quantifiers
            .iter()
            .map(|&(a, b, e)| (&text[a..b], &text[a..e]))
            .collect();
        assert_eq!(q, [("2", "2 of ($a, $b)")]);
    }
}
