//! Rule by rule, what a candidate changes against its baseline: added,
//! modified (a different fingerprint), removed, unchanged.

use crate::rules::{RuleInfo, RuleKey, Ruleset};
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    Added,
    Modified,
    Removed,
    Unchanged,
}

impl Change {
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Added => "added",
            Change::Modified => "modified",
            Change::Removed => "removed",
            Change::Unchanged => "unchanged",
        }
    }
}

/// A rule named in the change list.
#[derive(Debug, Clone, Serialize, PartialEq, schemars::JsonSchema)]
pub struct RuleRef {
    pub namespace: String,
    pub identifier: String,
    pub source: Option<String>,
    pub line: Option<usize>,
    pub fingerprint: Option<String>,
}

impl RuleRef {
    /// See `rules::rule_name`.
    pub fn name(&self) -> String {
        crate::rules::rule_name(&self.namespace, &self.identifier)
    }

    fn of(r: &RuleInfo) -> Self {
        RuleRef {
            namespace: r.namespace.clone(),
            identifier: r.identifier.clone(),
            source: r.source.clone(),
            line: r.line,
            fingerprint: r.fingerprint.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq, Default, schemars::JsonSchema)]
pub struct RuleChanges {
    pub added: Vec<RuleRef>,
    pub modified: Vec<RuleRef>,
    pub removed: Vec<RuleRef>,
    pub unchanged: usize,
}

impl RuleChanges {
    /// Every changed rule with its change word, in report order.
    pub fn listed(&self) -> impl Iterator<Item = (&'static str, &RuleRef)> {
        self.added
            .iter()
            .map(|r| ("added", r))
            .chain(self.modified.iter().map(|r| ("modified", r)))
            .chain(self.removed.iter().map(|r| ("removed", r)))
    }
}

/// Compare candidate and baseline rule by rule (namespace + identifier;
/// equal when their normalised-source fingerprints are equal).
pub fn rule_changes(cand: &Ruleset, base: &Ruleset) -> (RuleChanges, BTreeMap<RuleKey, Change>) {
    let mut out = RuleChanges::default();
    let mut map = BTreeMap::new();
    for (k, r) in &cand.info {
        let change = match base.info.get(k) {
            None => {
                out.added.push(RuleRef::of(r));
                Change::Added
            }
            Some(b) if b.fingerprint != r.fingerprint => {
                out.modified.push(RuleRef::of(r));
                Change::Modified
            }
            Some(_) => {
                out.unchanged += 1;
                Change::Unchanged
            }
        };
        map.insert(k.clone(), change);
    }
    for (k, r) in &base.info {
        if !cand.info.contains_key(k) {
            out.removed.push(RuleRef::of(r));
            map.insert(k.clone(), Change::Removed);
        }
    }
    (out, map)
}
