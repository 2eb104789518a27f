//! A sharded run's side: which corpus files are this shard's (by content
//! hash, or by the corpus lock's hash without reading other shards' files),
//! and the partial report it writes for `fpgate merge`.

use super::partial::*;
use super::Shard;
use crate::corpus::lock::Lock;
use crate::corpus::read::PreHashed;
use crate::corpus::Corpus;
use crate::engine::{Outcome, ScanOptions};
use crate::error::{Error, Result};
use crate::rules::Ruleset;
use crate::verdict::policy::Policy;
use std::collections::BTreeMap;
use std::path::Path;

/// This shard's part of the corpus, after hashing every file (on every
/// thread) to learn which contents are its own.
///
/// `clean_files`: how many of `corpus.files` are the clean corpus; the
/// rest are known-bad samples (`gate --positives`), sharded the same way
/// but never looked up in the corpus lock.
pub fn select(
    corpus: Corpus,
    pre: Vec<Option<Box<PreHashed>>>,
    shard: Shard,
    opts: &ScanOptions,
    cache: Option<&mut crate::store::Cache>,
    lock: Option<(&Lock, &Path)>,
    clean_files: usize,
) -> Result<(Corpus, Vec<Option<Box<PreHashed>>>, Option<ShardRun>)> {
    // With a corpus lock, a locked file's shard comes from its locked hash:
    // the shard does not read the files of other shards. (Its own files
    // are read and hashed by the scan; a content that differs from the
    // lock stops the run.)
    let mut from_lock = locked_hashes(&corpus, lock);
    for l in from_lock.iter_mut().skip(clean_files) {
        *l = None;
    }
    let skip: Vec<bool> = from_lock.iter().map(Option::is_some).collect();
    let pre =
        crate::corpus::read::hash_rest(&corpus.files, pre, &skip, &opts.limits(), opts.threads);
    // Remember every hash, not only this shard's: tomorrow's run of this
    // shard hashes the whole corpus again.
    if let Some(cache) = cache {
        cache.remember_stats(&corpus.files, &pre);
    }
    let mut shas = Vec::with_capacity(pre.len());
    for ((f, p), l) in corpus.files.iter().zip(&pre).zip(&from_lock) {
        let sha = match (p, l) {
            (Some(p), Some(l)) if p.sha256 != *l => {
                return Err(lock_mismatch(lock, f.rel()));
            }
            (Some(p), _) => Some(p.sha256),
            (None, l) => *l,
        };
        shas.push(sha);
    }
    let digest = crate::shard::partial::corpus_digest(&corpus, &shas);
    let mut run = ShardRun {
        locked: Vec::new(),
        shard,
        digest,
        total_files: corpus.files.len(),
        total_skipped: corpus.skipped.len(),
        clean_files,
        file_index: Vec::new(),
        skipped_index: Vec::new(),
        foreign: Vec::new(),
    };
    let locked_archives = locked_archives(lock);
    let (corpus, kept) = run.take_own(
        corpus,
        pre,
        &shas,
        &from_lock,
        &opts.archives,
        &locked_archives,
        &opts.limits(),
    );
    Ok((corpus, kept, Some(run)))
}

/// The files a corpus lock lists members of (`ARCHIVE!member`): archives,
/// as far as the lock knows, without reading them.
fn locked_archives(lock: Option<(&Lock, &Path)>) -> std::collections::HashSet<String> {
    let mut out = std::collections::HashSet::new();
    for e in lock.iter().flat_map(|(l, _)| &l.files) {
        for (at, _) in e.path.match_indices('!') {
            out.insert(e.path[..at].to_string());
        }
    }
    out
}

/// Per corpus file, its hash in the corpus lock, if locked.
fn locked_hashes(corpus: &Corpus, lock: Option<(&Lock, &Path)>) -> Vec<Option<[u8; 32]>> {
    let locked: std::collections::HashMap<&str, [u8; 32]> = lock
        .map(|(l, _)| {
            l.files
                .iter()
                .filter_map(|e| {
                    Some((
                        e.path.as_str(),
                        crate::shard::partial::sha_from_hex(&e.sha256).ok()?,
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    corpus
        .files
        .iter()
        .map(|f| locked.get(f.rel()).copied())
        .collect()
}

impl ShardRun {
    /// The shard's own entries of the corpus (files by content, or by path
    /// when unreadable; walk-level skips by path), remembering where each
    /// sits in the whole corpus.
    fn take_own(
        &mut self,
        corpus: Corpus,
        pre: Vec<Option<Box<PreHashed>>>,
        shas: &[Option<[u8; 32]>],
        from_lock: &[Option<[u8; 32]>],
        archives: &crate::corpus::members::Archives,
        locked_archives: &std::collections::HashSet<String>,
        limits: &crate::corpus::read::ReadLimits,
    ) -> (Corpus, Vec<Option<Box<PreHashed>>>) {
        let shard = self.shard;
        let mut files = Vec::new();
        let mut kept = Vec::new();
        for (i, ((f, p), sha)) in corpus.files.into_iter().zip(pre).zip(shas).enumerate() {
            let owner = match sha {
                Some(sha) => Shard::of_content(sha, shard.count),
                None => Shard::of_path(f.display(), shard.count),
            };
            let own = owner == shard.index;
            // Another shard's archive is opened too: its members are
            // sharded by their own content.
            // Whether it is an archive: from its hash (read in full), the
            // lock (it lists members of it), else from its first and last
            // bytes (a file placed by its locked hash is not read here).
            let foreign = !own
                && archives.enabled
                && i < self.clean_files
                && match p.as_ref().and_then(|p| p.container) {
                    Some(c) => c,
                    None => {
                        locked_archives.contains(f.rel())
                            || crate::corpus::read::is_archive(f.path(), limits)
                    }
                };
            if own || foreign {
                self.locked.push(from_lock[i].filter(|_| own));
                self.file_index.push(i);
                self.foreign.push(foreign);
                files.push(f);
                kept.push(p);
            }
        }
        let mut skipped = Vec::new();
        for (i, u) in corpus.skipped.into_iter().enumerate() {
            if Shard::of_path(&u.path, shard.count) == shard.index {
                self.skipped_index.push(i);
                skipped.push(u);
            }
        }
        let corpus = Corpus {
            roots: corpus.roots,
            files,
            skipped,
            listed: corpus.listed,
            recipe: corpus.recipe,
            signed: corpus.signed,
            catalogs: corpus.catalogs,
        };
        (corpus, kept)
    }
}

/// The error of a corpus file whose content is not the locked one.
fn lock_mismatch(lock: Option<(&Lock, &Path)>, rel: &str) -> Error {
    let lock = lock
        .map(|(_, p)| p.display().to_string())
        .unwrap_or_default();
    Error::LockMismatch {
        message: format!(
            "the corpus does not match {lock}: changed: {}",
            crate::util::escape::term(rel)
        ),
        lock,
        file: Some(rel.to_string()),
    }
}

/// A sharded run: where its entries sit in the whole corpus.
pub struct ShardRun {
    /// Per file of the shard, its hash in the corpus lock (by which it may
    /// have been placed here).
    locked: Vec<Option<[u8; 32]>>,
    shard: Shard,
    digest: String,
    total_files: usize,
    total_skipped: usize,
    /// Files of the whole walk before the known-bad samples.
    clean_files: usize,
    file_index: Vec<usize>,
    skipped_index: Vec<usize>,
    /// Per file of the scan: another shard's archive, opened for its
    /// members only (see `expand`).
    foreign: Vec<bool>,
}

impl ShardRun {
    /// How many of this shard's files are known-bad samples (the last ones).
    pub fn own_samples(&self) -> usize {
        self.file_index
            .iter()
            .filter(|i| **i >= self.clean_files)
            .count()
    }

    /// What the scan opens as archives: the shard's own files, and other
    /// shards' archives for their members; of the members, those whose
    /// content (or, without one, path) is this shard's.
    pub fn expand<'a>(
        &'a self,
        upto: usize,
        keep: crate::engine::Keep<'a>,
    ) -> crate::engine::Expand<'a> {
        crate::engine::Expand {
            upto,
            foreign: &self.foreign,
            keep: Some(keep),
        }
    }

    /// Is an archive member (of content `sha256`, else placed by its path)
    /// this shard's?
    pub fn owns(&self, m: &crate::corpus::CorpusFile, sha256: Option<&[u8; 32]>) -> bool {
        let n = self.shard.count;
        let owner = match sha256 {
            Some(sha) => Shard::of_content(sha, n),
            None => Shard::of_path(m.display(), n),
        };
        owner == self.shard.index
    }

    /// The members the scan found, spliced into the shard's files
    /// (`origins`, see `corpus::members::splice`): each is reported at its
    /// archive's index (by the shard that owns the member, which may not be
    /// the archive's). Other shards' archives leave the list here.
    pub fn add_members(
        &mut self,
        corpus: &mut Corpus,
        outcomes: &mut Vec<Outcome>,
        origins: &[crate::corpus::members::Origin],
    ) {
        let index = std::mem::take(&mut self.file_index);
        let locked = std::mem::take(&mut self.locked);
        let foreign = std::mem::take(&mut self.foreign);
        let files = std::mem::take(&mut corpus.files);
        let outs = std::mem::take(outcomes);
        for ((o, f), out) in origins.iter().zip(files).zip(outs) {
            if !o.member && foreign.get(o.index).copied().unwrap_or(false) {
                continue;
            }
            self.file_index.push(index[o.index]);
            self.locked
                .push(if o.member { None } else { locked[o.index] });
            corpus.files.push(f);
            outcomes.push(out);
        }
    }

    /// A file placed by its locked hash must still have that content.
    pub fn check_locked(
        &self,
        corpus: &Corpus,
        outcomes: &[Outcome],
        lock: Option<(&Lock, &Path)>,
    ) -> Result<()> {
        for ((f, o), l) in corpus.files.iter().zip(outcomes).zip(&self.locked) {
            let sha = match o {
                Outcome::Scanned { sha256, .. } => Some(sha256),
                Outcome::Unscanned { sha256, .. } => sha256.as_ref(),
            };
            if let (Some(sha), Some(l)) = (sha, l) {
                if sha != l {
                    return Err(lock_mismatch(lock, f.rel()));
                }
            }
        }
        Ok(())
    }

    /// The partial report of this shard.
    pub fn partial(&self, run: &ShardInputs<'_>, timings: PartialTimings) -> Partial {
        let p = run.policy;
        let exceptions = p.exceptions.as_ref().map(|e| TextFile {
            file: e.file.clone(),
            text: e.text.clone(),
        });
        let lock = run.lock.map(|(l, path)| LockFacts {
            path: path.display().to_string(),
            lock: l.clone(),
        });
        Partial {
            kind: KIND.into(),
            schema_version: SCHEMA,
            shard: self.shard,
            key: Key {
                fpgate_version: env!("CARGO_PKG_VERSION").into(),
                yara_x_version: yara_x::VERSION.into(),
                command: run.command.as_str().into(),
                candidate_fingerprint: run.candidate.fingerprint.clone(),
                baseline_fingerprint: run.baseline.map(|b| b.fingerprint.clone()),
                corpus_digest: self.digest.clone(),
                corpus_files: self.total_files,
                corpus_skipped: self.total_skipped,
                options: key_options(run, exceptions.as_ref(), lock.as_ref()),
            },
            facts: Facts {
                candidate: RulesetFacts::of(run.candidate, run.positives.is_some()),
                baseline: run
                    .baseline
                    .map(|b| RulesetFacts::of(b, run.positives.is_some())),
                roots: run.corpus.roots.clone(),
                recipe: run.corpus.recipe.clone(),
                signed: run.corpus.signed.clone(),
                catalogs: run.corpus.catalogs.clone(),
                files: self.file_facts(run),
                policy_changes: p.changes.clone(),
                positives: run.positives.as_ref().map(|p| PositivesFacts {
                    roots: p.corpus.roots.clone(),
                    first: self.clean_files,
                    skipped: p.corpus.skipped.clone(),
                    meta: p.meta.to_vec(),
                    require_tested: p.require_tested,
                    digests: if crate::verdict::detections::names_short_hashes(
                        run.candidate,
                        p.meta,
                    ) {
                        crate::verdict::detections::short_digests_of(p.corpus, p.outcomes)
                    } else {
                        Vec::new()
                    },
                }),
                listed: run.corpus.listed.clone(),
                skipped: self
                    .skipped_index
                    .iter()
                    .copied()
                    .zip(run.corpus.skipped.iter().cloned())
                    .collect(),
                allow_incomplete: p.allow_incomplete,
                allow_unevaluated: p.allow_unevaluated,
                interrupted: run.interrupted,
                exceptions,
                today: p.date().to_string(),
                strict: p.strict,
                deny_warnings: p.deny_warnings,
                deny_codes: p.deny_codes.clone(),
                lock,
            },
            timings,
        }
    }

    /// Every file of the shard: its clean files, then its samples.
    fn file_facts(&self, run: &ShardInputs<'_>) -> Vec<FileFact> {
        let (pos_files, pos_out): (&[crate::corpus::CorpusFile], &[Outcome]) = match &run.positives
        {
            Some(p) => (&p.corpus.files, p.outcomes),
            None => (&[], &[]),
        };
        run.corpus
            .files
            .iter()
            .chain(pos_files)
            .zip(run.outcomes.iter().chain(pos_out))
            .zip(&self.file_index)
            .map(|((f, o), &index)| {
                let components = f.components();
                FileFact {
                    index,
                    // A member's is its display: it is opened by no path;
                    // a recipe artifact's too (its store path is not
                    // reported).
                    path: match components {
                        Some(_) => f.display().to_string(),
                        None if f.is_stored() => f.display().to_string(),
                        None => f.path().display().to_string(),
                    },
                    display: f.display().to_string(),
                    rel: f.rel().to_string(),
                    critical: f.critical,
                    components,
                    outcome: OutcomeFact::of(o),
                }
            })
            .collect()
    }
}

/// What a shard's partial report is made of.
pub struct ShardInputs<'a> {
    pub command: crate::verdict::report::RunKind,
    pub candidate: &'a Ruleset,
    pub baseline: Option<&'a Ruleset>,
    pub corpus: &'a Corpus,
    pub outcomes: &'a [Outcome],
    pub policy: &'a Policy,
    pub scan: &'a ScanOptions,
    pub lock: Option<(&'a Lock, &'a Path)>,
    pub interrupted: bool,
    /// `gate --positives`: this shard's samples and their scans.
    pub positives: Option<ShardPositives<'a>>,
}

/// A shard's known-bad samples and what is asked of them.
pub struct ShardPositives<'a> {
    /// The shard's samples (roots and walk-level skips of all of them).
    pub corpus: &'a Corpus,
    pub outcomes: &'a [Outcome],
    pub meta: &'a [String],
    pub require_tested: bool,
}

/// The options every shard of one run must share (the key's `options`).
fn key_options(
    run: &ShardInputs<'_>,
    exceptions: Option<&TextFile>,
    lock: Option<&LockFacts>,
) -> BTreeMap<String, String> {
    let (p, s) = (run.policy, run.scan);
    let mut options = BTreeMap::new();
    let mut opt = |k: &str, v: String| {
        options.insert(k.to_string(), v);
    };
    opt("allow_incomplete", p.allow_incomplete.to_string());
    opt("allow_unevaluated", p.allow_unevaluated.to_string());
    opt("timeout_seconds", s.timeout.as_secs().to_string());
    opt("max_file_size", s.max_file_size.to_string());
    opt("follow_symlinks", s.follow_symlinks.to_string());
    opt("archives", s.archives.fingerprint());
    opt("strict", p.strict.to_string());
    opt("deny_warnings", p.deny_warnings.to_string());
    opt("deny_codes", p.deny_codes.join(","));
    // Only an explicit date: shards may straddle midnight.
    if let Some(t) = &p.today {
        opt("today", t.to_string());
    }
    opt(
        "exceptions",
        exceptions
            .map(|e| text_digest(&e.text))
            .unwrap_or_else(|| "none".into()),
    );
    opt(
        "positives",
        match &run.positives {
            Some(p) => text_digest(&format!(
                "{:?}\n{:?}\n{:?}\n{}",
                p.corpus.roots,
                p.corpus
                    .skipped
                    .iter()
                    .map(|u| (&u.path, u.reason.as_str()))
                    .collect::<Vec<_>>(),
                p.meta,
                p.require_tested
            )),
            None => "none".into(),
        },
    );
    opt(
        "lock",
        lock.map(|l| text_digest(&serde_json::to_string(&l.lock).unwrap_or_default()))
            .unwrap_or_else(|| "none".into()),
    );
    options
}
