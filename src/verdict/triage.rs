//! What the report carries of a triage (`--explain`): per rule with a new
//! false positive, its patterns' prevalence, what each false positive
//! needs, and the narrowings that passed. Computed by `triage`.

use crate::verdict::report::Finding;
use serde::Serialize;

/// The triage section of a report.
#[derive(Debug, Clone, Serialize, PartialEq, Default, schemars::JsonSchema)]
pub struct Triage {
    /// Clean corpus files each pattern and variant was run over.
    pub clean_files: usize,
    /// Known-bad samples the variants were run over (`--positives`).
    pub samples: usize,
    /// Were narrowings tried (`--explain`, `fpgate explain`)?
    pub explained: bool,
    /// One entry per rule with a new false positive.
    pub rules: Vec<RuleTriage>,
    /// File lookups of the probe scans (each scan looks at every clean
    /// file and sample), and how many of them the results cache answered.
    pub probe_files: usize,
    pub files_from_cache: usize,
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq, schemars::JsonSchema)]
pub struct RuleTriage {
    pub namespace: String,
    pub identifier: String,
    pub source: Option<String>,
    pub line: Option<usize>,
    /// The rule's new false positives (distinct contents).
    pub false_positives: usize,
    /// Every pattern of the rule, with the clean files it occurs in.
    pub patterns: Vec<PatternPrevalence>,
    /// Per new false positive: the matched patterns the condition needs.
    pub necessity: Vec<Necessity>,
    /// Narrowings that clear every new false positive of the rule and keep
    /// every detection (only when explained).
    pub suggestions: Vec<Suggestion>,
    /// Narrowings tried that did not qualify, one line each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rejected: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// How common one pattern is in the clean corpus.
#[derive(Debug, Clone, Serialize, PartialEq, schemars::JsonSchema)]
pub struct PatternPrevalence {
    pub identifier: String,
    /// The definition as written.
    pub definition: String,
    /// Clean corpus files (paths) the pattern alone occurs in.
    pub clean_files: usize,
    /// Of the rule's new false positives, how many it occurs in.
    pub in_false_positives: usize,
}

/// Which matched patterns one false positive needs.
#[derive(Debug, Clone, Serialize, PartialEq, schemars::JsonSchema)]
pub struct Necessity {
    pub sha256: String,
    pub paths: Vec<String>,
    /// Matched patterns whose removal alone clears the match: fix one of
    /// these.
    pub necessary: Vec<String>,
    /// Matched patterns the rule still matches without (one at a time).
    pub not_necessary: Vec<String>,
    /// Pairs of matched patterns, neither necessary alone, whose removal
    /// together clears the match (measured when at most 8 patterns matched).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub necessary_pairs: Vec<Vec<String>>,
}

impl Triage {
    /// The triage of the rule of `f`, if any.
    pub fn rule_of(&self, f: &Finding) -> Option<&RuleTriage> {
        self.rules
            .iter()
            .find(|r| r.namespace == f.rule.namespace && r.identifier == f.rule.identifier)
    }
}

impl RuleTriage {
    pub fn name(&self) -> String {
        crate::rules::rule_name(&self.namespace, &self.identifier)
    }

    /// The prevalence of pattern `id`.
    pub fn prevalence(&self, id: &str) -> Option<&PatternPrevalence> {
        self.patterns.iter().find(|p| p.identifier == id)
    }

    /// The necessity entry of the finding with content `sha256`.
    pub fn necessity_of(&self, sha256: &str) -> Option<&Necessity> {
        self.necessity.iter().find(|n| n.sha256 == sha256)
    }
}

/// A narrowing that passed.
#[derive(Debug, Clone, Serialize, PartialEq, schemars::JsonSchema)]
pub struct Suggestion {
    /// fullword, ascii_only, wide_only, quantifier, drop_pattern, filesize,
    /// not_signed.
    pub kind: String,
    pub summary: String,
    /// A unified diff of the rule's source file.
    pub diff: String,
    /// The rule's new false positives it clears (all of them).
    pub clears: usize,
    /// Clean corpus files the rule matches as written, and narrowed.
    pub clean_files_before: usize,
    pub clean_files_after: usize,
    /// Known-bad samples the rule detects as written, and narrowed.
    pub samples_before: usize,
    pub samples_after: usize,
    #[serde(skip)]
    pub rank: u8,
}
