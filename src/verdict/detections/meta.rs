//! The samples a rule names in its meta (`hash`, `sha256`, `md5`, ...):
//! which keys count, the samples' short digests (sha1, md5; read again, or
//! from the shards' partial reports), and each named sample checked.

use super::{ExpectedSample, ExpectedStatus, Positives};
use crate::corpus::Corpus;
use crate::engine::Outcome;
use crate::rules::{RuleKey, Ruleset};
use crate::verdict::changes::Change;
use std::collections::{BTreeMap, BTreeSet};

/// Meta keys whose hex digest values name a rule's samples, unless
/// configured (`positives.meta`): the names public rule sets use.
pub const DEFAULT_META: &[&str] = &[
    "hash",
    "hash0",
    "hash1",
    "hash2",
    "hash3",
    "hash4",
    "hash5",
    "hash6",
    "hash7",
    "hash8",
    "hash9",
    "sha256",
    "sha1",
    "md5",
    "sample",
    "reference_hash",
];

/// A sample's sha1 and md5 beside its sha256 (hex).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShortDigest {
    pub sha256: String,
    pub sha1: String,
    pub md5: String,
}

/// Does a rule of `cand` name a sample by sha1 or md5 under `meta`? (Then
/// the samples' short digests are needed.)
pub fn names_short_hashes(cand: &Ruleset, meta: &[String]) -> bool {
    cand.sources.iter().flat_map(|s| &s.info.rules).any(|d| {
        d.hashes
            .iter()
            .any(|(k, h)| h.len() != 64 && meta.iter().any(|m| m.eq_ignore_ascii_case(k)))
    })
}

/// The sha1 and md5 of every scanned sample (read again, checked against
/// the sha256 of the scan), for a shard's partial report.
pub fn short_digests_of(corpus: &Corpus, outcomes: &[Outcome]) -> Vec<ShortDigest> {
    let mut out: BTreeMap<[u8; 32], ShortDigest> = BTreeMap::new();
    for (f, o) in corpus.files.iter().zip(outcomes) {
        if let Outcome::Scanned { sha256, .. } = o {
            if out.contains_key(sha256) {
                continue;
            }
            let (sha1, md5) = short_digests(f.path(), sha256);
            if !sha1.is_empty() {
                out.insert(
                    *sha256,
                    ShortDigest {
                        sha256: crate::util::hex::hex(sha256),
                        sha1,
                        md5,
                    },
                );
            }
        }
    }
    out.into_values().collect()
}

/// Every (rule, hash) a candidate rule's meta names under the configured
/// keys, checked against the samples (by sha256, sha1 or md5).
pub(super) fn expected(
    p: &Positives<'_>,
    cand: &Ruleset,
    detected: &BTreeSet<(String, String, String)>,
    change: &dyn Fn(&RuleKey) -> Option<Change>,
    changed: &dyn Fn(&RuleKey) -> bool,
) -> Vec<ExpectedSample> {
    let mut named: Vec<(RuleKey, String, String)> = Vec::new();
    for s in &cand.sources {
        for d in &s.info.rules {
            for (key, hash) in &d.hashes {
                if p.meta.iter().any(|m| m.eq_ignore_ascii_case(key)) {
                    named.push((
                        (s.namespace.clone(), d.identifier.clone()),
                        key.clone(),
                        hash.clone(),
                    ));
                }
            }
        }
    }
    if named.is_empty() {
        return Vec::new();
    }
    let digests = sample_digests(p, named.iter().any(|n| n.2.len() != 64));
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    for (k, key, hash) in named {
        if !seen.insert((k.clone(), hash.clone())) {
            continue;
        }
        let matching: Vec<&SampleDigest> = digests
            .iter()
            .filter(|d| d.sha256 == hash || d.sha1 == hash || d.md5 == hash)
            .collect();
        let status = if matching.is_empty() {
            ExpectedStatus::Untestable
        } else if matching
            .iter()
            .any(|d| detected.contains(&(k.0.clone(), k.1.clone(), d.sha256.clone())))
        {
            ExpectedStatus::Detected
        } else {
            ExpectedStatus::Missed
        };
        let info = cand.info.get(&k);
        out.push(ExpectedSample {
            source: info.and_then(|i| i.source.clone()),
            line: info.and_then(|i| i.line),
            namespace: k.0.clone(),
            identifier: k.1.clone(),
            meta: key,
            hash,
            status,
            paths: matching
                .iter()
                .flat_map(|d| d.paths.iter().cloned())
                .collect(),
            rule_change: change(&k),
            blocking: status == ExpectedStatus::Missed && changed(&k),
        });
    }
    out.sort_by(|a, b| {
        (&a.namespace, &a.identifier, &a.hash).cmp(&(&b.namespace, &b.identifier, &b.hash))
    });
    out
}

struct SampleDigest {
    sha256: String,
    sha1: String,
    md5: String,
    paths: Vec<String>,
}

/// The digests of every scanned sample: sha256 from the scan; sha1 and md5
/// (only when a rule names a sample by one) from the shards' partial
/// reports after a merge, else from reading the samples again.
fn sample_digests(p: &Positives<'_>, short: bool) -> Vec<SampleDigest> {
    let computed;
    let known: &[ShortDigest] = match p.digests {
        Some(known) => known,
        None if short => {
            computed = short_digests_of(p.corpus, p.outcomes);
            &computed
        }
        None => &[],
    };
    let short_of: std::collections::HashMap<&str, &ShortDigest> =
        known.iter().map(|d| (d.sha256.as_str(), d)).collect();
    let mut by_sha: BTreeMap<[u8; 32], SampleDigest> = BTreeMap::new();
    for (f, o) in p.corpus.files.iter().zip(p.outcomes) {
        let Outcome::Scanned { sha256, .. } = o else {
            continue;
        };
        let e = by_sha.entry(*sha256).or_insert_with(|| {
            let sha256 = crate::util::hex::hex(sha256);
            let (sha1, md5) = short_of
                .get(sha256.as_str())
                .map(|d| (d.sha1.clone(), d.md5.clone()))
                .unwrap_or_default();
            SampleDigest {
                sha256,
                sha1,
                md5,
                paths: Vec::new(),
            }
        });
        e.paths.push(f.display().to_string());
    }
    by_sha.into_values().collect()
}

/// sha1 and md5 of a sample, when it still has the content that was scanned
/// (else empty: a sample named by those digests is then untestable).
fn short_digests(path: &std::path::Path, sha256: &[u8; 32]) -> (String, String) {
    use sha1::Digest as _;
    let Ok(data) = std::fs::read(path) else {
        return (String::new(), String::new());
    };
    if <sha2::Sha256 as sha2::Digest>::digest(&data).as_slice() != sha256 {
        return (String::new(), String::new());
    }
    (
        crate::util::hex::hex(&sha1::Sha1::digest(&data)),
        crate::util::hex::hex(&md5::Md5::digest(&data)),
    )
}
