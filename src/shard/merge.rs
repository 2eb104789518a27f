//! `fpgate merge`: check that a set of partial reports is one complete,
//! consistent run, and put the run back together. Every refusal names the
//! shard files involved (exit 2).

use super::partial::*;
use super::Shard;
use crate::corpus::lock::Lock;
use crate::corpus::{self, Corpus, CorpusFile, Unscanned};
use crate::engine::Outcome;
use crate::error::{Error, Result};
use crate::rules::Ruleset;
use crate::verdict::policy::Policy;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Everything a merged report is built from.
pub struct Merged {
    pub candidate: Ruleset,
    pub baseline: Option<Ruleset>,
    pub corpus: Corpus,
    pub outcomes: Vec<Outcome>,
    pub command: crate::verdict::report::RunKind,
    pub interrupted: bool,
    /// The policy every shard applied (their keys agree on it).
    pub policy: Policy,
    pub lock: Option<(Lock, PathBuf)>,
    pub timings: PartialTimings,
    /// `gate --positives`: the samples, split off the merged walk.
    pub positives: Option<MergedPositives>,
    /// Did the shards read archives' members (their keys agree on it)?
    pub archives_read: bool,
}

/// The known-bad samples of a merged run.
pub struct MergedPositives {
    pub corpus: Corpus,
    pub outcomes: Vec<Outcome>,
    pub meta: Vec<String>,
    pub require_tested: bool,
    /// Every shard's sha1/md5 of its samples.
    pub digests: Vec<crate::verdict::detections::ShortDigest>,
}

impl Merged {
    /// The verdict inputs of the merged run.
    pub fn inputs(&self) -> crate::verdict::Inputs<'_> {
        crate::verdict::Inputs {
            command: self.command,
            candidate: &self.candidate,
            baseline: self.baseline.as_ref(),
            corpus: &self.corpus,
            outcomes: &self.outcomes,
            interrupted: self.interrupted,
            policy: &self.policy,
            performance: None,
            positives: self
                .positives
                .as_ref()
                .map(|p| crate::verdict::detections::Positives {
                    corpus: &p.corpus,
                    outcomes: &p.outcomes,
                    meta: &p.meta,
                    require_tested: p.require_tested,
                    digests: Some(&p.digests),
                }),
        }
    }
}

/// Check a set of partial reports and combine them. Every failure names the
/// shard files involved (exit 2).
/// `files[k]` are the files of `parts[k]`, taken out by `take_files`.
pub fn merge(parts: &[(PathBuf, Partial)], files: Vec<Vec<ShardFile>>) -> Result<Merged> {
    let (first_path, first) = check_run(parts)?;
    let (mut corpus, mut outcomes, members) = assemble(parts, files, first)?;
    let positives = split_positives(parts, &mut corpus, &mut outcomes)?;
    // The archive members after their archives, as a single run has them.
    let clean = corpus.files.len();
    corpus::members::splice(&mut corpus, &mut outcomes, members, clean);
    // A catalog in one shard vouches for files in the others.
    let content: Vec<Option<[u8; 32]>> =
        outcomes.iter().map(|o| o.content().map(|c| c.0)).collect();
    corpus::signature::catalog_apply(&mut corpus, &content);
    corpus.listed = parts
        .iter()
        .flat_map(|(_, p)| p.facts.listed.iter().cloned())
        .collect();
    corpus.listed.sort();
    let key = &first.key;
    let command = crate::verdict::report::RunKind::by_name(&key.command)
        .ok_or_else(|| Error::shards(&[], format!("unknown command {:?}", key.command)))?;
    let mut timings = PartialTimings::default();
    for (_, p) in parts {
        timings.compile_seconds = timings.compile_seconds.max(p.timings.compile_seconds);
        timings.scan_seconds += p.timings.scan_seconds;
        timings.total_seconds = timings.total_seconds.max(p.timings.total_seconds);
        timings.threads += p.timings.threads;
        timings.decoded_bytes += p.timings.decoded_bytes;
    }
    let f = &first.facts;
    Ok(Merged {
        candidate: f.candidate.to_ruleset()?,
        baseline: f.baseline.as_ref().map(|b| b.to_ruleset()).transpose()?,
        corpus,
        outcomes,
        command,
        interrupted: parts.iter().any(|(_, p)| p.facts.interrupted),
        policy: policy(parts, first_path)?,
        lock: f
            .lock
            .as_ref()
            .map(|l| (l.lock.clone(), PathBuf::from(&l.path))),
        timings,
        positives,
        archives_read: key.options.get("archives").is_some_and(|a| a != "off"),
    })
}

/// `gate --positives`: the samples are the files of the merged walk from
/// the index every shard names on; split them off, with every shard's
/// digests. A content that is both a sample and a clean file is an error,
/// as in a single run.
fn split_positives(
    parts: &[(PathBuf, Partial)],
    corpus: &mut Corpus,
    outcomes: &mut Vec<Outcome>,
) -> Result<Option<MergedPositives>> {
    let (first_path, first) = &parts[0];
    let same = |a: &PositivesFacts, b: &PositivesFacts| {
        (&a.roots, a.first, &a.skipped, &a.meta, a.require_tested)
            == (&b.roots, b.first, &b.skipped, &b.meta, b.require_tested)
    };
    for (path, p) in parts {
        let agree = match (&first.facts.positives, &p.facts.positives) {
            (None, None) => true,
            (Some(a), Some(b)) => same(a, b),
            _ => false,
        };
        if !agree {
            return Err(Error::shards(
                &[first_path.as_path(), path.as_path()],
                format!(
                    "mismatched shards: {} and {} differ in their known-bad samples (--positives)",
                    first_path.display(),
                    path.display()
                ),
            ));
        }
    }
    let Some(pf) = &first.facts.positives else {
        return Ok(None);
    };
    if pf.first > corpus.files.len() {
        return Err(Error::shards(
            &[first_path.as_path()],
            format!(
                "partial report {}: the samples start at file {} of {}",
                first_path.display(),
                pf.first,
                corpus.files.len()
            ),
        ));
    }
    let samples = Corpus {
        roots: pf.roots.clone(),
        files: corpus.files.split_off(pf.first),
        skipped: pf.skipped.clone(),
        listed: Vec::new(),
        recipe: None,
        signed: Default::default(),
        catalogs: Default::default(),
    };
    let theirs = outcomes.split_off(pf.first);
    crate::verdict::detections::disjoint_contents(corpus, outcomes, &samples, &theirs)?;
    let mut digests: Vec<_> = parts
        .iter()
        .flat_map(|(_, p)| p.facts.positives.iter().flat_map(|x| x.digests.clone()))
        .collect();
    digests.sort_by(|a, b| a.sha256.cmp(&b.sha256));
    digests.dedup();
    Ok(Some(MergedPositives {
        corpus: samples,
        outcomes: theirs,
        meta: pf.meta.clone(),
        require_tested: pf.require_tested,
        digests,
    }))
}

/// The policy the shards applied, from the first one's facts (the keys
/// agree on every part of it but the date).
fn policy(parts: &[(PathBuf, Partial)], first_path: &Path) -> Result<Policy> {
    let f = &parts[0].1.facts;
    // Shards may straddle midnight: the latest date is the strictest.
    let today = parts
        .iter()
        .filter_map(|(_, p)| crate::verdict::exceptions::parse_date(&p.facts.today))
        .max()
        .ok_or_else(|| {
            Error::shards(
                &[first_path],
                format!("partial report {}: bad date", first_path.display()),
            )
        })?;
    Ok(Policy {
        exceptions: f
            .exceptions
            .as_ref()
            .map(|t| crate::verdict::exceptions::parse(&t.text, Path::new(&t.file)))
            .transpose()?,
        today: Some(today),
        strict: f.strict,
        deny_warnings: f.deny_warnings,
        deny_codes: f.deny_codes.clone(),
        allow_incomplete: f.allow_incomplete,
        allow_unevaluated: f.allow_unevaluated,
        changes: f.policy_changes.clone(),
    })
}

/// The partials are one run: the same shard count and key, each shard
/// once, none missing. Returns the first partial.
fn check_run(parts: &[(PathBuf, Partial)]) -> Result<(&Path, &Partial)> {
    let Some((first_path, first)) = parts.first() else {
        return Err(Error::shards(&[], "merge: no partial reports given"));
    };
    let n = first.shard.count;
    let mut by_index: BTreeMap<u32, &PathBuf> = BTreeMap::new();
    for (path, p) in parts {
        if p.shard.count == 0 || p.shard.index == 0 || p.shard.index > p.shard.count {
            return Err(Error::shards(
                &[path.as_path()],
                format!(
                    "partial report {}: shard {} is not K/N with 1 <= K <= N",
                    path.display(),
                    p.shard
                ),
            ));
        }
        if p.shard.count != n {
            return Err(Error::shards(
                &[first_path.as_path(), path.as_path()],
                format!(
                "mismatched shards: {} is shard {} but {} is shard {}: they are not from one run",
                first_path.display(),
                first.shard,
                path.display(),
                p.shard
            ),
            ));
        }
        if p.key != first.key {
            let what = key_difference(&first.key, &p.key);
            return Err(Error::shards(
                &[first_path.as_path(), path.as_path()],
                format!(
                    "mismatched shards: {} and {} differ in {what}: they are not from one run",
                    first_path.display(),
                    path.display()
                ),
            ));
        }
        if p.facts.candidate != first.facts.candidate || p.facts.baseline != first.facts.baseline {
            return Err(Error::shards(
                &[first_path.as_path(), path.as_path()],
                format!(
                    "mismatched shards: {} and {} describe different rules",
                    first_path.display(),
                    path.display()
                ),
            ));
        }
        if let Some(other) = by_index.insert(p.shard.index, path) {
            return Err(Error::shards(
                &[other.as_path(), path.as_path()],
                format!(
                    "duplicated shard {}: {} and {}",
                    p.shard,
                    other.display(),
                    path.display()
                ),
            ));
        }
    }
    let missing: Vec<String> = (1..=n)
        .filter(|k| !by_index.contains_key(k))
        .map(|k| format!("{k}/{n}"))
        .collect();
    if !missing.is_empty() {
        return Err(Error::shards(
            &[],
            format!(
                "missing shard(s) {}: got {} of {n} partial reports; the verdict needs all of them",
                missing.join(", "),
                parts.len()
            ),
        ));
    }

    Ok((first_path.as_path(), first))
}

/// Every corpus entry exactly once, in the shard its content picks, in the
/// order of the whole corpus walk.
fn assemble(
    parts: &[(PathBuf, Partial)],
    part_files: Vec<Vec<ShardFile>>,
    first: &Partial,
) -> Result<(Corpus, Vec<Outcome>, Members)> {
    let n = first.shard.count;
    let key = &first.key;
    let is_member = |f: &ShardFile| f.1.member_names().is_some();
    let listed: usize = parts
        .iter()
        .zip(&part_files)
        .map(|((_, p), files)| {
            files.iter().filter(|f| !is_member(f)).count() + p.facts.skipped.len()
        })
        .sum();
    let total = key.corpus_files.saturating_add(key.corpus_skipped);
    if listed != total {
        return Err(Error::shards(&[], format!(
            "the partial reports list {listed} corpus entries, their key says {total}: an edited or truncated shard?"
        )));
    }
    // The files and their outcomes go straight to where the report reads
    // them, by corpus index (no list of pairs split into two lists at the
    // end: a million files were held twice for a moment).
    let mut cfiles: Vec<Option<CorpusFile>> = vec![None; key.corpus_files];
    let mut outcomes: Vec<Outcome> = (0..key.corpus_files).map(|_| Outcome::NOT_YET).collect();
    let mut skipped: Vec<Option<Unscanned>> = vec![None; key.corpus_skipped];
    let mut members: BTreeMap<usize, Vec<(CorpusFile, Outcome)>> = BTreeMap::new();
    for ((path, p), part_files) in parts.iter().zip(part_files) {
        let bad = |what: String| inconsistent(path, p, what);
        for (index, f, outcome) in part_files {
            // A member is reported by the shard of its content, at its
            // archive's index (the archive may be another shard's).
            if f.member_names().is_some() {
                if index >= key.corpus_files {
                    return Err(bad(format!(
                        "{} is a member of file {index}, outside the corpus",
                        f.display()
                    )));
                }
                members.entry(index).or_default().push((f, outcome));
                continue;
            }
            let slot = cfiles
                .get_mut(index)
                .ok_or_else(|| bad(format!("file index {index} is outside the corpus")))?;
            if slot.is_some() {
                return Err(bad(format!("{} is reported by two shards", f.display())));
            }
            *slot = Some(f);
            outcomes[index] = outcome;
        }
        for (i, u) in &p.facts.skipped {
            let slot = skipped
                .get_mut(*i)
                .ok_or_else(|| bad(format!("skipped entry index {i} is outside the corpus")))?;
            if slot.is_some() {
                return Err(bad(format!("{} is reported by two shards", u.path)));
            }
            if Shard::of_path(&u.path, n) != p.shard.index {
                return Err(bad(format!("{} does not belong to this shard", u.path)));
            }
            *slot = Some(u.clone());
        }
    }
    let lost = cfiles.iter().filter(|f| f.is_none()).count()
        + skipped.iter().filter(|s| s.is_none()).count();
    if lost > 0 {
        return Err(Error::shards(&[], format!(
            "the partial reports cover {} of {} corpus entries: {lost} missing (an edited or truncated shard?)",
            key.corpus_files + key.corpus_skipped - lost,
            key.corpus_files + key.corpus_skipped
        )));
    }
    let cfiles: Vec<CorpusFile> = cfiles.into_iter().flatten().collect();
    let corpus = Corpus {
        roots: first.facts.roots.clone(),
        files: cfiles,
        skipped: skipped.into_iter().flatten().collect(),
        listed: Vec::new(),
        recipe: first.facts.recipe.clone(),
        // Each shard judged the signatures of its own contents.
        signed: parts
            .iter()
            .flat_map(|(_, p)| p.facts.signed.clone())
            .collect(),
        catalogs: {
            let mut c = corpus::signature::CatalogFacts::default();
            for (_, p) in parts {
                c.extend(p.facts.catalogs.clone());
            }
            c
        },
    };
    let members = members
        .into_iter()
        .map(|(i, members)| {
            let x = corpus::members::Expanded {
                members,
                listed: Vec::new(),
                decoded: 0,
                shape: None,
            };
            (i, x)
        })
        .collect();
    Ok((corpus, outcomes, members))
}

/// The members the shards reported, by their archive's walk index.
type Members = Vec<(usize, corpus::members::Expanded<Outcome>)>;

/// A corpus file as a shard reported it: its index in the whole corpus
/// walk, the file, its outcome.
pub type ShardFile = (usize, CorpusFile, Outcome);

/// Take the file facts out of a partial report just read, checked (see
/// `check_file`) and converted: the merge holds each file once, not as a
/// fact and again as its result.
pub fn take_files(path: &Path, p: &mut Partial) -> Result<Vec<ShardFile>> {
    let facts = std::mem::take(&mut p.facts.files);
    let rulesets = 1 + p.facts.baseline.is_some() as usize;
    let known_rules: BTreeSet<(&str, &str)> = std::iter::once(&p.facts.candidate)
        .chain(p.facts.baseline.as_ref())
        .flat_map(|r| r.rules.iter())
        .map(|r| (r.namespace.as_str(), r.identifier.as_str()))
        .collect();
    let bad = |what: String| inconsistent(path, p, what);
    facts
        .into_iter()
        .map(|f| {
            check_file(&f, p.shard, rulesets, &known_rules).map_err(bad)?;
            if f.path != f.display {
                return Err(bad(format!(
                    "{} is reported with two paths ({})",
                    f.display, f.path
                )));
            }
            let outcome = f.outcome.to_outcome().map_err(|e| bad(e.to_string()))?;
            let file = match &f.components {
                Some(c) => CorpusFile::shown_member(f.display, &f.rel, f.critical, c),
                None => CorpusFile::shown(f.display, &f.rel, f.critical),
            };
            Ok((f.index, file, outcome))
        })
        .collect()
}

/// A partial report that contradicts itself or the others.
fn inconsistent(path: &Path, p: &Partial, what: String) -> Error {
    Error::Shards {
        files: vec![path.display().to_string()],
        shard: Some(p.shard.to_string()),
        message: format!(
            "partial report {} (shard {}) is inconsistent: {what}",
            path.display(),
            p.shard
        ),
    }
}

/// A shard's file fact is what its shard can report: results for every
/// ruleset, only rules the rulesets have, and a content of this shard.
fn check_file(
    f: &FileFact,
    shard: Shard,
    rulesets: usize,
    known_rules: &BTreeSet<(&str, &str)>,
) -> std::result::Result<(), String> {
    if let OutcomeFact::Scanned { hits: Some(h), .. } = &f.outcome {
        if h.len() != rulesets {
            return Err(format!(
                "{} has results for {} rulesets, not {rulesets}",
                f.display,
                h.len()
            ));
        }
        if let Some(x) = h
            .iter()
            .flatten()
            .find(|x| !known_rules.contains(&(x.namespace.as_str(), x.rule.as_str())))
        {
            return Err(format!(
                "{} matched rule {}:{}, which the rulesets do not have",
                f.display, x.namespace, x.rule
            ));
        }
    }
    let n = shard.count;
    let owner = f.outcome.shard(n).map_err(|e| e.to_string())?;
    if let Some(owner) = owner.filter(|o| *o != shard.index) {
        return Err(format!(
            "{} belongs to shard {owner}/{n}, not to this one",
            f.display
        ));
    }
    Ok(())
}

/// Which part of two keys differs, in words.
fn key_difference(a: &Key, b: &Key) -> String {
    let mut what = Vec::new();
    if a.fpgate_version != b.fpgate_version || a.yara_x_version != b.yara_x_version {
        what.push(format!(
            "fpgate/yara-x version ({} / {} vs {} / {})",
            a.fpgate_version, a.yara_x_version, b.fpgate_version, b.yara_x_version
        ));
    }
    if a.command != b.command {
        what.push(format!("command ({} vs {})", a.command, b.command));
    }
    if a.candidate_fingerprint != b.candidate_fingerprint
        || a.baseline_fingerprint != b.baseline_fingerprint
    {
        what.push("rules".into());
    }
    if a.corpus_digest != b.corpus_digest
        || a.corpus_files != b.corpus_files
        || a.corpus_skipped != b.corpus_skipped
    {
        what.push(format!(
            "corpus ({} vs {} files, or different contents)",
            a.corpus_files, b.corpus_files
        ));
    }
    for (k, v) in &a.options {
        if b.options.get(k) != Some(v) {
            what.push(format!(
                "option {k} ({v} vs {})",
                b.options.get(k).map(String::as_str).unwrap_or("unset")
            ));
        }
    }
    for k in b.options.keys() {
        if !a.options.contains_key(k) {
            what.push(format!("option {k}"));
        }
    }
    if what.is_empty() {
        "their keys".into()
    } else {
        what.join(", ")
    }
}
