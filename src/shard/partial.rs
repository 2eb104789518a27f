//! Sharded runs: `--shard K/N` scans the corpus files whose content hash
//! falls in shard K (so every path of one content lands in one shard) and
//! writes a *partial report*; `fpgate merge` checks that a set of partials
//! is complete and consistent and builds the one report a single run would
//! have given.
//!
//! A partial carries the facts the report is built from (every file of the
//! shard with its outcome and evidence, the rule metadata, the gate policy,
//! the corpus lock) plus a *key*: what must be equal across the shards of
//! one run (versions, rules, options, and a digest of the whole corpus as
//! every shard saw it: each shard hashes every file to find its own).

use crate::corpus::lock::Lock;
use crate::corpus::{Corpus, CorpusFile, Reason, Unscanned};
use crate::diagnostic::Diagnostic;
use crate::engine::{Hit, Outcome};
use crate::error::{Error, Result};
use crate::rules::evidence::PatternEvidence;
use crate::rules::{RuleInfo, Ruleset};
use crate::util::hex::hex;
use crate::verdict::exceptions::ExceptionSet;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

pub const KIND: &str = "fpgate-partial";
pub const SCHEMA: u32 = 1;

/// `--shard K/N`: K in 1..=N.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl std::str::FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let (k, n) = s
            .split_once('/')
            .ok_or_else(|| format!("`{s}` is not K/N (for example 2/8)"))?;
        let k: u32 = k
            .trim()
            .parse()
            .map_err(|_| format!("shard index `{k}` is not a number"))?;
        let n: u32 = n
            .trim()
            .parse()
            .map_err(|_| format!("shard count `{n}` is not a number"))?;
        if n == 0 || k == 0 || k > n {
            return Err(format!(
                "shard {k}/{n}: K must be between 1 and N (shards are numbered from 1)"
            ));
        }
        Ok(Shard { index: k, count: n })
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl Shard {
    /// The shard (1-based) of a content hash.
    pub fn of_content(sha: &[u8; 32], count: u32) -> u32 {
        let v = u64::from_le_bytes(sha[..8].try_into().unwrap_or([0; 8]));
        (v % count as u64) as u32 + 1
    }

    /// The shard of an entry whose content is unknown (unreadable, not a
    /// regular file): by its reported path.
    pub fn of_path(path: &str, count: u32) -> u32 {
        let d: [u8; 32] = Sha256::digest(path.as_bytes()).into();
        Shard::of_content(&d, count)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Partial {
    pub kind: String,
    pub schema_version: u32,
    pub shard: Shard,
    pub key: Key,
    pub facts: Facts,
    pub timings: PartialTimings,
}

/// What must be equal in every shard of one run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Key {
    pub fpgate_version: String,
    pub yara_x_version: String,
    pub command: String,
    pub candidate_fingerprint: String,
    pub baseline_fingerprint: Option<String>,
    /// sha256 over every corpus entry in walk order: path, tier, and
    /// content hash (or why it has none).
    pub corpus_digest: String,
    pub corpus_files: usize,
    pub corpus_skipped: usize,
    /// Scan and policy options, and digests of the exceptions and lock.
    pub options: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct PartialTimings {
    pub compile_seconds: f64,
    pub scan_seconds: f64,
    pub total_seconds: f64,
    pub threads: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Facts {
    pub candidate: RulesetFacts,
    pub baseline: Option<RulesetFacts>,
    pub roots: Vec<String>,
    /// The shard's files, with their index in the whole corpus walk.
    pub files: Vec<FileFact>,
    /// The shard's walk-level skips (symlinks, FIFOs...), with their index.
    pub skipped: Vec<(usize, Unscanned)>,
    pub allow_incomplete: bool,
    pub interrupted: bool,
    pub exceptions: Option<TextFile>,
    /// The date exceptions expire against (YYYY-MM-DD).
    pub today: String,
    pub strict: bool,
    pub deny_warnings: bool,
    pub deny_codes: Vec<String>,
    pub lock: Option<LockFacts>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TextFile {
    pub file: String,
    pub text: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LockFacts {
    pub path: String,
    pub lock: Lock,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RulesetFacts {
    pub label: String,
    pub paths: Vec<String>,
    pub files: Vec<String>,
    pub fingerprint: String,
    pub per_file_externals: Vec<String>,
    pub rules: Vec<RuleInfo>,
    pub warnings: Vec<Diagnostic>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FileFact {
    pub index: usize,
    /// The path as opened by the shard (for the record; not used).
    pub path: String,
    pub display: String,
    pub rel: String,
    pub critical: bool,
    pub outcome: OutcomeFact,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "status", rename_all = "snake_case", deny_unknown_fields)]
pub enum OutcomeFact {
    Scanned {
        sha256: String,
        size: u64,
        format: String,
        /// Per ruleset (candidate, then baseline); absent when another path
        /// of the same content carries the result.
        hits: Option<Vec<Vec<HitFact>>>,
    },
    Unscanned {
        reason: Reason,
        detail: String,
        sha256: Option<String>,
        size: Option<u64>,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HitFact {
    pub namespace: String,
    pub rule: String,
    pub patterns: Vec<PatternEvidence>,
}

impl RulesetFacts {
    pub fn of(rs: &Ruleset) -> Self {
        RulesetFacts {
            label: rs.label.to_string(),
            paths: rs.paths.clone(),
            files: rs.files.clone(),
            fingerprint: rs.fingerprint.clone(),
            per_file_externals: rs
                .per_file_externals
                .iter()
                .map(|s| s.to_string())
                .collect(),
            rules: rs.info.values().cloned().collect(),
            warnings: rs.warnings.clone(),
        }
    }

    /// A ruleset for building the report (its compiled rules are empty:
    /// nothing is scanned after a merge).
    fn to_ruleset(&self) -> Result<Ruleset> {
        let label = ["candidate", "baseline"]
            .into_iter()
            .find(|l| *l == self.label)
            .ok_or_else(|| Error::usage(format!("unknown ruleset label {:?}", self.label)))?;
        let per_file_externals = self
            .per_file_externals
            .iter()
            .map(|e| {
                crate::rules::STANDARD_EXTERNALS
                    .iter()
                    .copied()
                    .find(|s| s == e)
                    .ok_or_else(|| Error::usage(format!("unknown external {e:?}")))
            })
            .collect::<Result<BTreeSet<&'static str>>>()?;
        Ok(Ruleset {
            label,
            paths: self.paths.clone(),
            files: self.files.clone(),
            rules: crate::rules::build::LazyRules::ready(yara_x::Compiler::new().build()),
            evidence: Default::default(),
            info: self
                .rules
                .iter()
                .map(|r| ((r.namespace.clone(), r.identifier.clone()), r.clone()))
                .collect(),
            warnings: self.warnings.clone(),
            fingerprint: self.fingerprint.clone(),
            per_file_externals,
            declared_std: BTreeSet::new(),
            cache: Err("rebuilt from a partial report".into()),
            sources: Vec::new(),
        })
    }
}

pub fn sha_from_hex(s: &str) -> Result<[u8; 32]> {
    let bad = || Error::usage(format!("{s:?} is not a sha256"));
    if s.len() != 64 {
        return Err(bad());
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(2 * i..2 * i + 2).ok_or_else(bad)?, 16).map_err(|_| bad())?;
    }
    Ok(out)
}

impl OutcomeFact {
    pub fn of(o: &Outcome) -> Self {
        match o {
            Outcome::Scanned {
                sha256,
                size,
                format,
                hits,
            } => OutcomeFact::Scanned {
                sha256: hex(sha256),
                size: *size,
                format: format.to_string(),
                hits: hits.as_ref().map(|sets| {
                    sets.iter()
                        .map(|hs| {
                            hs.iter()
                                .map(|h| HitFact {
                                    namespace: h.rule.0.clone(),
                                    rule: h.rule.1.clone(),
                                    patterns: h.patterns.clone(),
                                })
                                .collect()
                        })
                        .collect()
                }),
            },
            Outcome::Unscanned {
                reason,
                detail,
                sha256,
                size,
            } => OutcomeFact::Unscanned {
                reason: *reason,
                detail: detail.clone(),
                sha256: sha256.as_ref().map(|s| hex(s)),
                size: *size,
            },
        }
    }

    fn to_outcome(&self) -> Result<Outcome> {
        Ok(match self {
            OutcomeFact::Scanned {
                sha256,
                size,
                format,
                hits,
            } => Outcome::Scanned {
                sha256: sha_from_hex(sha256)?,
                size: *size,
                format: crate::corpus::format::by_name(format)
                    .ok_or_else(|| Error::usage(format!("unknown file format {format:?}")))?,
                hits: hits.as_ref().map(|sets| {
                    sets.iter()
                        .map(|hs| {
                            hs.iter()
                                .map(|h| Hit {
                                    rule: (h.namespace.clone(), h.rule.clone()),
                                    patterns: h.patterns.clone(),
                                })
                                .collect()
                        })
                        .collect()
                }),
            },
            OutcomeFact::Unscanned {
                reason,
                detail,
                sha256,
                size,
            } => Outcome::Unscanned {
                reason: *reason,
                detail: detail.clone(),
                sha256: sha256.as_deref().map(sha_from_hex).transpose()?,
                size: *size,
            },
        })
    }

    /// The shard this outcome must be in, when that can be told: by its
    /// content (see `Shard::of_content`). A file that could not be read has
    /// no content hash; it was placed by path, or by a hash taken before it
    /// vanished, so any shard may report it (once).
    fn shard(&self, count: u32) -> Result<Option<u32>> {
        let sha = match self {
            OutcomeFact::Scanned { sha256, .. } => Some(sha256),
            OutcomeFact::Unscanned { sha256, .. } => sha256.as_ref(),
        };
        sha.map(|s| Ok(Shard::of_content(&sha_from_hex(s)?, count)))
            .transpose()
    }
}

/// The digest of the whole corpus as one shard saw it: every file's path,
/// tier and content hash (from hashing every file to pick this shard's).
pub fn corpus_digest(corpus: &Corpus, shas: &[Option<[u8; 32]>]) -> String {
    let mut h = Sha256::new();
    for (f, sha) in corpus.files.iter().zip(shas) {
        let content = sha.map(|s| hex(&s)).unwrap_or_else(|| "-".into());
        h.update(format!(
            "file\t{}\t{}\t{}\t{content}\n",
            f.display, f.rel, f.critical
        ));
    }
    for u in &corpus.skipped {
        h.update(format!("skipped\t{}\t{}\n", u.path, u.reason.as_str()));
    }
    hex(&h.finalize())
}

/// A digest of a text (exceptions, lock) for the key.
pub fn text_digest(text: &str) -> String {
    hex(&Sha256::digest(text.as_bytes()))
}

/// Read and check one partial report.
pub fn load(path: &Path) -> Result<Partial> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::usage(format!("partial report {}: {e}", path.display())))?;
    parse(&text, path)
}

/// Parse one partial report (`path` is for messages).
pub fn parse(text: &str, path: &Path) -> Result<Partial> {
    let shown = path.display();
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        Error::usage(format!(
            "partial report {shown}:{}:{}: not JSON (truncated?): {e}",
            e.line(),
            e.column()
        ))
    })?;
    if v.get("kind").and_then(|k| k.as_str()) != Some(KIND) {
        return Err(Error::usage(format!(
            "{shown} is not an fpgate partial report (no \"kind\": \"{KIND}\"): write one with --shard K/N"
        )));
    }
    if v.get("schema_version").and_then(|k| k.as_u64()) != Some(SCHEMA as u64) {
        return Err(Error::usage(format!(
            "partial report {shown}: schema_version {} is not {SCHEMA} (made by another fpgate version?)",
            v.get("schema_version").unwrap_or(&serde_json::Value::Null)
        )));
    }
    serde_json::from_value(v).map_err(|e| Error::usage(format!("partial report {shown}: {e}")))
}

/// Everything a merged report is built from.
pub struct Merged {
    pub candidate: Ruleset,
    pub baseline: Option<Ruleset>,
    pub corpus: Corpus,
    pub outcomes: Vec<Outcome>,
    pub command: &'static str,
    pub allow_incomplete: bool,
    pub interrupted: bool,
    pub exceptions: Option<ExceptionSet>,
    pub today: jiff::civil::Date,
    pub strict: bool,
    pub deny_warnings: bool,
    pub deny_codes: Vec<String>,
    pub lock: Option<(Lock, PathBuf)>,
    pub timings: PartialTimings,
}

impl Merged {
    /// The report inputs of the merged run.
    pub fn inputs(&self) -> crate::verdict::report::Inputs<'_> {
        crate::verdict::report::Inputs {
            command: self.command,
            candidate: &self.candidate,
            baseline: self.baseline.as_ref(),
            corpus: &self.corpus,
            outcomes: &self.outcomes,
            allow_incomplete: self.allow_incomplete,
            interrupted: self.interrupted,
            timings: Default::default(),
            policy: crate::verdict::report::Policy {
                exceptions: self.exceptions.as_ref(),
                today: Some(self.today),
                strict: self.strict,
                deny_warnings: self.deny_warnings,
                deny_codes: self.deny_codes.clone(),
            },
        }
    }
}

/// Check a set of partial reports and combine them. Every failure is a
/// usage error (exit 2) naming the shard files involved.
pub fn merge(parts: &[(PathBuf, Partial)]) -> Result<Merged> {
    let Some((first_path, first)) = parts.first() else {
        return Err(Error::usage("merge: no partial reports given"));
    };
    let n = first.shard.count;
    let mut by_index: BTreeMap<u32, &PathBuf> = BTreeMap::new();
    for (path, p) in parts {
        if p.shard.count == 0 || p.shard.index == 0 || p.shard.index > p.shard.count {
            return Err(Error::usage(format!(
                "partial report {}: shard {} is not K/N with 1 <= K <= N",
                path.display(),
                p.shard
            )));
        }
        if p.shard.count != n {
            return Err(Error::usage(format!(
                "mismatched shards: {} is shard {} but {} is shard {}: they are not from one run",
                first_path.display(),
                first.shard,
                path.display(),
                p.shard
            )));
        }
        if p.key != first.key {
            let what = key_difference(&first.key, &p.key);
            return Err(Error::usage(format!(
                "mismatched shards: {} and {} differ in {what}: they are not from one run",
                first_path.display(),
                path.display()
            )));
        }
        if p.facts.candidate != first.facts.candidate || p.facts.baseline != first.facts.baseline {
            return Err(Error::usage(format!(
                "mismatched shards: {} and {} describe different rules",
                first_path.display(),
                path.display()
            )));
        }
        if let Some(other) = by_index.insert(p.shard.index, path) {
            return Err(Error::usage(format!(
                "duplicated shard {}: {} and {}",
                p.shard,
                other.display(),
                path.display()
            )));
        }
    }
    let missing: Vec<String> = (1..=n)
        .filter(|k| !by_index.contains_key(k))
        .map(|k| format!("{k}/{n}"))
        .collect();
    if !missing.is_empty() {
        return Err(Error::usage(format!(
            "missing shard(s) {}: got {} of {n} partial reports; the verdict needs all of them",
            missing.join(", "),
            parts.len()
        )));
    }

    // Every corpus entry exactly once, in the shard its content picks.
    let key = &first.key;
    let listed: usize = parts
        .iter()
        .map(|(_, p)| p.facts.files.len() + p.facts.skipped.len())
        .sum();
    let total = key.corpus_files.saturating_add(key.corpus_skipped);
    if listed != total {
        return Err(Error::usage(format!(
            "the partial reports list {listed} corpus entries, their key says {total}: an edited or truncated shard?"
        )));
    }
    let rulesets = 1 + first.facts.baseline.is_some() as usize;
    let known_rules: BTreeSet<(&str, &str)> = std::iter::once(&first.facts.candidate)
        .chain(first.facts.baseline.as_ref())
        .flat_map(|r| r.rules.iter())
        .map(|r| (r.namespace.as_str(), r.identifier.as_str()))
        .collect();
    let mut files: Vec<Option<(CorpusFile, Outcome)>> = vec![None; key.corpus_files];
    let mut skipped: Vec<Option<Unscanned>> = vec![None; key.corpus_skipped];
    for (path, p) in parts {
        let bad = |what: String| {
            Error::usage(format!(
                "partial report {} (shard {}) is inconsistent: {what}",
                path.display(),
                p.shard
            ))
        };
        for f in &p.facts.files {
            let slot = files
                .get_mut(f.index)
                .ok_or_else(|| bad(format!("file index {} is outside the corpus", f.index)))?;
            if slot.is_some() {
                return Err(bad(format!("{} is reported by two shards", f.display)));
            }
            if let OutcomeFact::Scanned { hits: Some(h), .. } = &f.outcome {
                if h.len() != rulesets {
                    return Err(bad(format!(
                        "{} has results for {} rulesets, not {rulesets}",
                        f.display,
                        h.len()
                    )));
                }
                if let Some(x) = h
                    .iter()
                    .flatten()
                    .find(|x| !known_rules.contains(&(x.namespace.as_str(), x.rule.as_str())))
                {
                    return Err(bad(format!(
                        "{} matched rule {}:{}, which the rulesets do not have",
                        f.display, x.namespace, x.rule
                    )));
                }
            }
            let owner = f.outcome.shard(n).map_err(|e| bad(e.to_string()))?;
            if let Some(owner) = owner.filter(|o| *o != p.shard.index) {
                return Err(bad(format!(
                    "{} belongs to shard {owner}/{n}, not to this one",
                    f.display
                )));
            }
            *slot = Some((
                CorpusFile {
                    path: PathBuf::from(&f.path),
                    display: f.display.clone(),
                    rel: f.rel.clone(),
                    critical: f.critical,
                },
                f.outcome.to_outcome().map_err(|e| bad(e.to_string()))?,
            ));
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
    let lost = files.iter().filter(|f| f.is_none()).count()
        + skipped.iter().filter(|s| s.is_none()).count();
    if lost > 0 {
        return Err(Error::usage(format!(
            "the partial reports cover {} of {} corpus entries: {lost} missing (an edited or truncated shard?)",
            key.corpus_files + key.corpus_skipped - lost,
            key.corpus_files + key.corpus_skipped
        )));
    }
    let (cfiles, outcomes): (Vec<CorpusFile>, Vec<Outcome>) = files.into_iter().flatten().unzip();
    let corpus = Corpus {
        roots: first.facts.roots.clone(),
        files: cfiles,
        skipped: skipped.into_iter().flatten().collect(),
    };

    let f = &first.facts;
    // Shards may straddle midnight: the latest date is the strictest.
    let today = parts
        .iter()
        .filter_map(|(_, p)| crate::verdict::exceptions::parse_date(&p.facts.today))
        .max()
        .ok_or_else(|| {
            Error::usage(format!("partial report {}: bad date", first_path.display()))
        })?;
    let exceptions = f
        .exceptions
        .as_ref()
        .map(|t| crate::verdict::exceptions::parse(&t.text, Path::new(&t.file)))
        .transpose()?;
    let lock = f
        .lock
        .as_ref()
        .map(|l| (l.lock.clone(), PathBuf::from(&l.path)));
    let command = ["scan", "gate", "check"]
        .into_iter()
        .find(|c| *c == key.command)
        .ok_or_else(|| Error::usage(format!("unknown command {:?}", key.command)))?;
    let mut timings = PartialTimings::default();
    for (_, p) in parts {
        timings.compile_seconds = timings.compile_seconds.max(p.timings.compile_seconds);
        timings.scan_seconds += p.timings.scan_seconds;
        timings.total_seconds = timings.total_seconds.max(p.timings.total_seconds);
        timings.threads += p.timings.threads;
    }
    Ok(Merged {
        candidate: f.candidate.to_ruleset()?,
        baseline: f.baseline.as_ref().map(|b| b.to_ruleset()).transpose()?,
        corpus,
        outcomes,
        command,
        allow_incomplete: f.allow_incomplete,
        interrupted: parts.iter().any(|(_, p)| p.facts.interrupted),
        exceptions,
        today,
        strict: f.strict,
        deny_warnings: f.deny_warnings,
        deny_codes: f.deny_codes.clone(),
        lock,
        timings,
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_syntax() {
        assert_eq!(
            "2/8".parse::<Shard>().unwrap(),
            Shard { index: 2, count: 8 }
        );
        assert!("0/8".parse::<Shard>().is_err());
        assert!("9/8".parse::<Shard>().is_err());
        assert!("1/0".parse::<Shard>().is_err());
        assert!("x/2".parse::<Shard>().is_err());
        assert!("2".parse::<Shard>().is_err());
    }

    #[test]
    fn every_content_has_one_shard_in_range() {
        for n in 1..9u32 {
            for b in 0..=255u8 {
                let k = Shard::of_content(&[b; 32], n);
                assert!((1..=n).contains(&k));
            }
        }
    }
}
