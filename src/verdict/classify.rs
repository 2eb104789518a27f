//! From scan outcomes to findings: group the corpus paths by content, count
//! what was scanned, and classify every (rule, content) match as a new,
//! persisting or fixed false positive.

use super::report::{ArchivesRead, Class, CorpusSummary, FalsePositives, Finding};
use crate::corpus::{Corpus, Reason, Tier, Unscanned};
use crate::engine::{Hit, Outcome};
use crate::rules::evidence::PatternEvidence;
use crate::rules::{RuleInfo, RuleKey, Ruleset};
use crate::verdict::changes::Change;
use std::collections::{BTreeMap, BTreeSet};

/// The findings of a run, before any policy is applied.
pub struct Classified {
    pub corpus: CorpusSummary,
    pub findings: FalsePositives,
    /// Files that could not be scanned (walk-level skips included),
    /// sorted, each once.
    pub unscanned: Vec<Unscanned>,
}

/// Every path of one content (indices into the corpus, in its order), and
/// what the content is.
struct Group<'a> {
    sha256: [u8; 32],
    size: u64,
    format: crate::corpus::format::Format,
    files: &'a [usize],
}

/// (class, rule, content) -> (paths, evidence, the content's size and format)
type Found = BTreeMap<
    (Class, RuleKey, [u8; 32]),
    (
        BTreeSet<String>,
        Vec<PatternEvidence>,
        (u64, crate::corpus::format::Format),
    ),
>;

/// Classify a finished scan. `changes` (gate with a baseline) marks each
/// finding's rule as added, modified or unchanged.
pub fn classify(
    candidate: &Ruleset,
    baseline: Option<&Ruleset>,
    corpus: &Corpus,
    outcomes: &[Outcome],
    changes: Option<&BTreeMap<RuleKey, Change>>,
) -> Classified {
    let files = &corpus.files;
    let critical: BTreeSet<&str> = files
        .iter()
        .filter(|f| f.critical)
        .map(|f| f.display())
        .collect();
    let (by_content, mut unscanned, failed) = group(corpus, outcomes);
    let mut summary = CorpusSummary {
        roots: corpus.roots.clone(),
        recipe: corpus.recipe.clone(),
        entries: files.len() + corpus.skipped.len(),
        files: files.len(),
        critical_files: critical.len(),
        ..Default::default()
    };
    let mut found: Found = BTreeMap::new();
    let mut scanned_ok = vec![false; files.len()];
    for g in groups(&by_content, outcomes) {
        let sha = &g.sha256;
        let scans: Vec<(usize, &Vec<Vec<Hit>>)> = g
            .files
            .iter()
            .filter_map(|&i| match &outcomes[i] {
                Outcome::Scanned { hits: Some(h), .. } => Some((i, h)),
                _ => None,
            })
            .collect();
        if scans.is_empty() {
            // The only scan of this content failed: its duplicates were not
            // scanned either, and must not be counted as clean.
            let (reason, detail, owner) = failed.get(sha).cloned().unwrap_or((
                Reason::ScanError,
                "content was never scanned".into(),
                String::new(),
            ));
            for &i in g.files {
                unscanned.push(Unscanned {
                    path: files[i].display().to_string(),
                    reason,
                    detail: format!("{detail} (same content as {owner})"),
                    components: files[i].components(),
                });
            }
            continue;
        }
        for &i in g.files {
            scanned_ok[i] = true;
        }
        summary.count(&g);
        // One scan stands for every path of the content, unless each path
        // was scanned on its own (per-path external variables).
        let per_path = scans.len() == g.files.len();
        for (i, hits) in scans {
            let paths: Vec<String> = if per_path {
                vec![files[i].display().to_string()]
            } else {
                g.files
                    .iter()
                    .map(|&j| files[j].display().to_string())
                    .collect()
            };
            for (class, rule, evidence) in classify_hits(hits, baseline.is_some()) {
                let e = found
                    .entry((class, rule, *sha))
                    .or_insert_with(|| (BTreeSet::new(), evidence, (g.size, g.format)));
                e.0.extend(paths.iter().cloned());
            }
        }
    }
    summary.hash =
        crate::corpus::lock::hash_of(corpus, |i| outcomes[i].content().filter(|_| scanned_ok[i]))
            .unwrap_or_default();
    unscanned.sort();
    unscanned.dedup();
    summary.unscanned_files = unscanned.len();

    let members: std::collections::HashMap<&str, Vec<String>> = files
        .iter()
        .filter_map(|f| Some((f.display(), f.components()?)))
        .collect();
    summary.archives = ArchivesRead::of(corpus);
    let findings = findings(
        found,
        (&critical, &corpus.signed),
        &members,
        (candidate, baseline),
        changes,
    );
    Classified {
        corpus: summary,
        findings,
        unscanned,
    }
}

/// The findings, each with its rule's description, tier and change.
fn findings(
    found: Found,
    (critical, signed): (
        &BTreeSet<&str>,
        &BTreeMap<String, Vec<crate::corpus::signature::SignedBy>>,
    ),
    members: &std::collections::HashMap<&str, Vec<String>>,
    (candidate, baseline): (&Ruleset, Option<&Ruleset>),
    changes: Option<&BTreeMap<RuleKey, Change>>,
) -> FalsePositives {
    let mut findings = FalsePositives::default();
    for ((class, rule, sha), (paths, patterns, (size, format))) in found {
        let ruleset = match class {
            Class::Fixed | Class::Lost => baseline.unwrap_or(candidate),
            _ => candidate,
        };
        let path_components = if paths.iter().any(|p| members.contains_key(p.as_str())) {
            paths
                .iter()
                .map(|p| {
                    members
                        .get(p.as_str())
                        .cloned()
                        .unwrap_or_else(|| vec![p.clone()])
                })
                .collect()
        } else {
            Vec::new()
        };
        let f = Finding {
            class,
            blocking: false,
            tier: if paths.iter().any(|p| critical.contains(p.as_str())) {
                Tier::Critical
            } else {
                Tier::Standard
            },
            rule: rule_info(ruleset, &rule),
            rule_change: match (changes, class) {
                (Some(_), Class::Fixed | Class::Lost) | (None, _) => None,
                (Some(map), _) => map.get(&rule).copied(),
            },
            sha256: crate::util::hex::hex(&sha),
            size,
            format,
            paths: paths.into_iter().collect(),
            path_components,
            patterns,
            exception: None,
            notes: Vec::new(),
            signed_by: signed
                .get(&crate::util::hex::hex(&sha))
                .map(|by| {
                    by.iter()
                        .map(|b| match &b.catalog {
                            None => format!(
                                "signed by {}, chain to pinned anchor `{}`",
                                b.subject, b.anchor
                            ),
                            Some(cat) => format!(
                                "listed in catalog {cat}, signed by {}, chain to pinned anchor `{}`",
                                b.subject, b.anchor
                            ),
                        })
                        .collect()
                })
                .unwrap_or_default(),
        };
        match class {
            Class::New | Class::Gained => findings.new.push(f),
            Class::Persisting | Class::Kept => findings.persisting.push(f),
            Class::Fixed | Class::Lost => findings.fixed.push(f),
        }
    }
    findings
}

impl CorpusSummary {
    /// Count one scanned content with all its paths.
    fn count(&mut self, g: &Group) {
        let n = g.files.len();
        self.scanned_files += n;
        self.bytes += g.size * n as u64;
        self.unique_contents += 1;
        self.unique_bytes += g.size;
        *self.formats.entry(g.format).or_default() += n;
    }
}

/// A content's scan failure: reason, detail, and the path that failed.
type Failure = (Reason, String, String);

/// The scanned files ordered by content (then corpus order), so that each
/// content's paths are a run (see `groups`); the unscanned ones (the walk's
/// skips first) and the failures of contents that were read.
fn group(
    corpus: &Corpus,
    outcomes: &[Outcome],
) -> (Vec<usize>, Vec<Unscanned>, BTreeMap<[u8; 32], Failure>) {
    let mut by_content = Vec::new();
    let mut unscanned = corpus.skipped.clone();
    let mut failed = BTreeMap::new();
    for (i, out) in outcomes.iter().enumerate() {
        match out {
            Outcome::Scanned { .. } => by_content.push(i),
            Outcome::Unscanned {
                reason,
                detail,
                sha256,
                ..
            } => {
                let display = corpus.files[i].display();
                unscanned.push(Unscanned {
                    path: display.to_string(),
                    reason: *reason,
                    detail: detail.clone(),
                    components: corpus.files[i].components(),
                });
                if let Some(sha) = sha256 {
                    failed.insert(*sha, (*reason, detail.clone(), display.to_string()));
                }
            }
        }
    }
    let sha = |i: usize| outcomes[i].content().map(|c| c.0);
    by_content.sort_unstable_by(|&a, &b| sha(a).cmp(&sha(b)).then(a.cmp(&b)));
    (by_content, unscanned, failed)
}

/// The contents of `by_content` (see `group`), in sha256 order.
fn groups<'a>(by_content: &'a [usize], outcomes: &'a [Outcome]) -> impl Iterator<Item = Group<'a>> {
    let sha = |i: usize| outcomes[i].content().map(|c| c.0);
    by_content
        .chunk_by(move |&a, &b| sha(a) == sha(b))
        .filter_map(|files| {
            let (sha256, size, format) = outcomes[files[0]].content()?;
            Some(Group {
                sha256,
                size,
                format,
                files,
            })
        })
}

/// What the report says of a rule (its name alone if the ruleset does not
/// describe it).
fn rule_info(rs: &Ruleset, rule: &RuleKey) -> RuleInfo {
    rs.info.get(rule).cloned().unwrap_or_else(|| RuleInfo {
        namespace: rule.0.clone(),
        identifier: rule.1.clone(),
        source: None,
        line: None,
        tags: Vec::new(),
        description: None,
        author: None,
        fingerprint: None,
    })
}

/// Classify the hits of one scan. `hits[0]` is the candidate, `hits[1]` the
/// baseline (when there is one). Rules are compared by namespace+identifier.
fn classify_hits(
    hits: &[Vec<Hit>],
    has_baseline: bool,
) -> Vec<(Class, RuleKey, Vec<PatternEvidence>)> {
    let cand = &hits[0];
    let empty = Vec::new();
    let base = if has_baseline {
        hits.get(1).unwrap_or(&empty)
    } else {
        &empty
    };
    let base_keys: BTreeSet<&RuleKey> = base.iter().map(|h| &h.rule).collect();
    let cand_keys: BTreeSet<&RuleKey> = cand.iter().map(|h| &h.rule).collect();
    let mut out = Vec::new();
    for h in cand {
        let class = if base_keys.contains(&h.rule) {
            Class::Persisting
        } else {
            Class::New
        };
        out.push((class, h.rule.clone(), h.patterns.clone()));
    }
    for h in base {
        if !cand_keys.contains(&h.rule) {
            out.push((Class::Fixed, h.rule.clone(), h.patterns.clone()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(name: &str) -> Hit {
        Hit {
            rule: ("default".into(), name.into()),
            patterns: Vec::new(),
        }
    }

    #[test]
    fn classification() {
        let hits = vec![vec![hit("A"), hit("B")], vec![hit("B"), hit("C")]];
        let got: Vec<_> = classify_hits(&hits, true)
            .into_iter()
            .map(|(c, r, _)| (c, r.1))
            .collect();
        assert_eq!(
            got,
            vec![
                (Class::New, "A".to_string()),
                (Class::Persisting, "B".to_string()),
                (Class::Fixed, "C".to_string())
            ]
        );
        let got: Vec<_> = classify_hits(&hits[..1], false)
            .into_iter()
            .map(|(c, _, _)| c)
            .collect();
        assert_eq!(got, vec![Class::New, Class::New]);
    }
}
