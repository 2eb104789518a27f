//! Evidence of a match: which of the rule's patterns matched, where.
//!
//! yara-x searches a file for patterns lazily, the first time a condition
//! needs a pattern. A rule whose condition is decided without its patterns
//! (`filesize > 0 or $a`) therefore shows its patterns' matches only when
//! some *other* rule of the same compiled set made the search run on that
//! file. Evidence read off the scan would then depend on the rest of the set,
//! and a rule run alone (a changed rule, with the other results from the
//! cache) would show different evidence than the whole set run together.
//!
//! So evidence is a function of the rule and the file alone: for each match,
//! the rule's pattern definitions, exactly as written, are compiled into one
//! rule whose condition is `any of them` (which always runs the search), and
//! that rule's matches on the file are the evidence. Clean files rarely
//! match, so this costs one small scan per match.

use crate::rules::RuleKey;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use yara_x::{Rules, Scanner, SourceCode};

/// How many matches of one pattern are kept as evidence (all are counted).
pub const EVIDENCE_MATCHES: usize = 5;
/// How many bytes of each match are shown.
pub const EVIDENCE_BYTES: usize = 32;

/// One matched string of a rule, as evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct MatchEvidence {
    pub offset: usize,
    pub length: usize,
    /// The first bytes matched (at most 32), hex.
    pub hex: String,
    /// The same bytes as printable text (`.` for others; UTF-16 shown plain).
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct PatternEvidence {
    pub identifier: String,
    /// Every match of this pattern in the file (yara-x caps this per pattern).
    pub match_count: usize,
    /// The first matches, by offset.
    pub matches: Vec<MatchEvidence>,
}

/// Per rule (namespace, identifier), the source of its evidence rule;
/// compiled on first use and shared by the workers.
#[derive(Default)]
pub struct Evidence {
    sources: HashMap<RuleKey, String>,
    /// Compile the patterns as the rules were (`--relaxed-re-syntax`).
    relaxed_re_syntax: bool,
    compiled: Mutex<HashMap<RuleKey, Arc<Option<Rules>>>>,
}

impl Evidence {
    /// From each rule's pattern definitions (`source` bytes, and the spans
    /// the parser found). Rules without patterns have no evidence.
    pub fn new<'a>(
        rules: impl Iterator<Item = (RuleKey, &'a [u8], &'a [(usize, usize, String)])>,
        relaxed_re_syntax: bool,
    ) -> Self {
        let mut sources = HashMap::new();
        for (id, bytes, patterns) in rules {
            if patterns.is_empty() || sources.contains_key(&id) {
                continue;
            }
            let mut src = String::from("rule fpgate_evidence {\n  strings:\n");
            for (a, b, _) in patterns {
                let Some(def) = bytes.get(*a..*b).and_then(|d| std::str::from_utf8(d).ok()) else {
                    continue;
                };
                src.push_str("    ");
                src.push_str(def);
                src.push('\n');
            }
            src.push_str("  condition:\n    any of them\n}\n");
            sources.insert(id, src);
        }
        Evidence {
            sources,
            relaxed_re_syntax,
            compiled: Mutex::new(HashMap::new()),
        }
    }

    fn rules_for(&self, id: &RuleKey) -> Option<Arc<Option<Rules>>> {
        let src = self.sources.get(id)?;
        let mut map = self.compiled.lock().unwrap_or_else(|e| e.into_inner());
        let entry = map.entry(id.clone()).or_insert_with(|| {
            let mut c = yara_x::Compiler::new();
            c.colorize_errors(false);
            c.relaxed_re_syntax(self.relaxed_re_syntax);
            // The same text compiled in the rule itself: an error here
            // leaves the evidence empty, the same way on every path.
            let ok = c.add_source(SourceCode::from(src.as_str())).is_ok();
            Arc::new(ok.then(|| c.build()))
        });
        Some(entry.clone())
    }

    /// The evidence of rule `id` on `data`: every pattern of the rule that
    /// occurs in it, with its first matches.
    pub fn of(
        &self,
        id: &RuleKey,
        data: &[u8],
        timeout: std::time::Duration,
    ) -> Result<Vec<PatternEvidence>, yara_x::ScanError> {
        let Some(rules) = self.rules_for(id) else {
            return Ok(Vec::new());
        };
        let Some(rules) = rules.as_ref() else {
            return Ok(Vec::new());
        };
        let mut scanner = Scanner::new(rules);
        scanner.set_timeout(timeout);
        let results = scanner.scan(data)?;
        Ok(results
            .matching_rules()
            .flat_map(|r| patterns_of(&r))
            .collect())
    }
}

/// The matched patterns of a matching rule, with their first matches.
fn patterns_of(rule: &yara_x::Rule) -> Vec<PatternEvidence> {
    rule.patterns()
        .include_private(true)
        .filter_map(|p| {
            let matches = p.matches();
            let count = matches.len();
            if count == 0 {
                return None;
            }
            let evidence = matches
                .take(EVIDENCE_MATCHES)
                .map(|m| {
                    let r = m.range();
                    let data = m.data();
                    let shown = &data[..data.len().min(EVIDENCE_BYTES)];
                    MatchEvidence {
                        offset: r.start,
                        length: r.len(),
                        hex: crate::util::hex::spaced_hex(shown),
                        text: crate::util::hex::printable(shown),
                    }
                })
                .collect();
            Some(PatternEvidence {
                identifier: p.identifier().to_string(),
                match_count: count,
                matches: evidence,
            })
        })
        .collect()
}
