//! The scan engine: one parallel pass over the corpus files.
//!
//! Each file is opened once (non-blocking, so a file swapped for a FIFO after
//! the walk cannot hang a worker), checked to be a regular file, read once
//! into the worker's reusable buffer, hashed, and, if no other worker has
//! already claimed the same content, scanned by every ruleset of the run
//! (candidate and baseline) from that same buffer. Files with identical
//! content are scanned once, unless a rule uses a per-path external variable
//! (`filename`, `filepath`, `extension`), in which case each path is scanned
//! with its own values.

pub mod profile;
mod worker;

use crate::corpus::format::Format;
use crate::corpus::members::{Expanded, Shape};
use crate::corpus::read::{ReadLimits, Stamp};
use crate::corpus::{CorpusFile, Reason};
use crate::rules::evidence::PatternEvidence;
use crate::rules::{RuleKey, Ruleset};
use indicatif::ProgressBar;
use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;
use worker::Worker;
use yara_x::Rules;

pub use crate::corpus::read::PreHashed;
pub use profile::{take_profile, RuleCost, PROFILING};

/// What one ruleset does with one file, as the planner decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// Every rule's result is known: run nothing.
    Skip,
    /// Run only the planner's subset of rules (`Planner::delta_rules`).
    Delta,
    /// Run every rule.
    Full,
}

/// How a file was answered, for the planner's counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Every result known and the file unchanged: not even read.
    Unread,
    /// Read (new stamp, or another path of the same content is being
    /// scanned) but not scanned.
    ReadOnly,
    /// Scanned with the subset of rules only.
    Delta,
    /// Scanned with every rule.
    Full,
}

/// The two identities of a file a planner keys results by: its content, and
/// its content with the values of the path externals.
pub type Subjects = ([u8; 32], [u8; 32]);

/// What the engine asks about results it need not compute (the results
/// cache implements this; the engine knows nothing of storage). Rulesets
/// are numbered as in the `rulesets` given to `scan_files`.
pub trait Planner: Sync {
    /// A file's subjects, computed once per file.
    fn subjects(&self, sha: &[u8; 32], f: &CorpusFile) -> Subjects;
    /// What ruleset `ruleset` must run on the file of subjects `s`.
    fn plan(&self, ruleset: usize, s: &Subjects) -> Plan;
    /// The compiled subset `Plan::Delta` runs, if the planner made one.
    fn delta_rules(&self, ruleset: usize) -> Option<&Rules>;
    /// The matches of the rules that ran under `plan`.
    fn record(&self, ruleset: usize, s: &Subjects, plan: Plan, hits: &[Hit]);
    /// The file's matches: `fresh` for the rules that ran, the known
    /// results for the others.
    fn assemble(&self, ruleset: usize, s: &Subjects, plan: Plan, fresh: Vec<Hit>) -> Vec<Hit>;
    /// A file's stamp, content hash, format and whether it is an archive,
    /// read in this run.
    fn record_stat(
        &self,
        file: usize,
        stamp: Stamp,
        sha: [u8; 32],
        format: Format,
        container: bool,
    );
    /// How a file was answered.
    fn count(&self, answer: Answer);
    /// What the archive of content `sha256` holds, if known (see
    /// `corpus::members::Shape`).
    fn members(&self, sha256: &[u8; 32]) -> Option<std::sync::Arc<Vec<Shape>>>;
    /// Remember what the archive of content `sha256` holds.
    fn record_members(&self, sha256: &[u8; 32], shape: &[Shape]);
}

#[derive(Debug, Clone)]
pub struct ScanOptions {
    pub threads: usize,
    pub timeout: Duration,
    pub max_file_size: u64,
    pub follow_symlinks: bool,
    /// Collect per-rule cost of the first ruleset (needs the `profiling`
    /// build feature).
    pub profile: bool,
    /// Whether and how the members of archives are read.
    pub archives: std::sync::Arc<crate::corpus::members::Archives>,
    /// `[[tiers.critical]]`: every PE content read is verified here.
    pub signatures: Option<std::sync::Arc<crate::corpus::signature::Verdicts>>,
}

impl ScanOptions {
    /// What a corpus file may be to be read.
    pub fn limits(&self) -> ReadLimits {
        ReadLimits {
            max_file_size: self.max_file_size,
            follow_symlinks: self.follow_symlinks,
        }
    }
}

/// A rule that matched a file, with why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    pub rule: RuleKey,
    pub patterns: Vec<PatternEvidence>,
}

/// What happened to one corpus file.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Read and hashed. `hits` holds one list per ruleset, or `None` when
    /// another path with the same content carries the scan result.
    Scanned {
        sha256: [u8; 32],
        size: u64,
        /// From the magic bytes: see `formats::detect`.
        format: Format,
        hits: Option<Vec<Vec<Hit>>>,
    },
    /// Not (fully) scanned. `sha256` is known when the file was read but
    /// the scan itself failed, so duplicates of it are not taken as clean.
    Unscanned {
        reason: Reason,
        detail: String,
        sha256: Option<[u8; 32]>,
        size: Option<u64>,
    },
}

impl Outcome {
    /// What an outcome is until its file is done: a placeholder that
    /// allocates nothing (a million of them are made at once), replaced
    /// before anything reads it.
    pub const NOT_YET: Outcome = Outcome::Unscanned {
        reason: Reason::Interrupted,
        detail: String::new(),
        sha256: None,
        size: None,
    };

    /// The content of a scanned file (sha256, size, format).
    pub fn content(&self) -> Option<crate::corpus::lock::Content> {
        match self {
            Outcome::Scanned {
                sha256,
                size,
                format,
                ..
            } => Some((*sha256, *size, *format)),
            Outcome::Unscanned { .. } => None,
        }
    }
}

/// The contents of the files whose `ok` flag is set (for a corpus lock).
pub fn contents(outcomes: &[Outcome], ok: &[bool]) -> Vec<Option<crate::corpus::lock::Content>> {
    outcomes
        .iter()
        .zip(ok)
        .map(|(o, ok)| o.content().filter(|_| *ok))
        .collect()
}

/// A gate's baseline scanned with the candidate's results: the rules the
/// two sets share (same name, same key: the same tokens, dependencies and
/// context, so the same verdict on every file) are taken from the
/// candidate's scan of the file, and only the baseline's other rules (with
/// the rules they use) run, compiled on their own when a file first needs
/// them. A file is then searched once with every rule and once more with
/// the few changed ones, not twice with every rule.
pub struct Sharing<'r> {
    /// The ruleset whose results are shared (the candidate, 0) and the one
    /// that takes them (the baseline, 1).
    pub from: usize,
    pub to: usize,
    baseline: &'r Ruleset,
    opts: crate::rules::CompileOptions,
    /// The baseline's rules that are not shared, with their dependencies
    /// (indices into its rule keys); empty when every rule is shared.
    closure: Vec<usize>,
    /// `closure` compiled, on first use; `None` inside when it does not
    /// compile on its own (the baseline then runs in full, as before).
    rest: std::sync::OnceLock<Option<Rules>>,
    /// The rules `rest` holds (their results come from it).
    pub rest_keys: HashSet<RuleKey>,
    /// Baseline rules answered by the candidate's results.
    pub shared: HashSet<RuleKey>,
}

impl<'r> Sharing<'r> {
    /// The sharing of `to` with `from`, or `None` when either set has no
    /// rule keys.
    pub fn of(
        rulesets: &[&'r Ruleset],
        from: usize,
        to: usize,
        opts: &crate::rules::CompileOptions,
    ) -> Option<Sharing<'r>> {
        let (a, b) = (*rulesets.get(from)?, *rulesets.get(to)?);
        let (ka, kb) = (a.cache.as_ref().ok()?, b.cache.as_ref().ok()?);
        let uncached: HashSet<&str> = kb.uncached.iter().map(|(r, _)| r.as_str()).collect();
        let mut shared = HashSet::new();
        let mut rest = Vec::new();
        for (i, r) in kb.rules.iter().enumerate() {
            // Only compiled rules count (an unevaluated rule is in neither
            // scan).
            if !b.info.contains_key(&r.key) {
                continue;
            }
            let same = ka
                .by_name
                .get(&r.key)
                .is_some_and(|&j| ka.rules[j].efp == r.efp);
            if same && !uncached.contains(r.key.1.as_str()) {
                shared.insert(r.key.clone());
            } else {
                rest.push(i);
            }
        }
        let closure = if rest.is_empty() {
            Vec::new()
        } else {
            crate::rules::subset::closure(kb, &rest)
        };
        let rest_keys = closure.iter().map(|&i| kb.rules[i].key.clone()).collect();
        Some(Sharing {
            from,
            to,
            baseline: b,
            opts: opts.clone(),
            closure,
            rest: std::sync::OnceLock::new(),
            rest_keys,
            shared,
        })
    }

    /// Does the baseline run rules of its own?
    pub fn has_rest(&self) -> bool {
        !self.closure.is_empty()
    }

    /// The baseline's own rules, compiled on first use; `None` when they
    /// do not compile on their own.
    pub fn rest(&self) -> Option<&Rules> {
        self.rest
            .get_or_init(|| {
                crate::rules::subset::compile_subset(self.baseline, &self.closure, &self.opts).ok()
            })
            .as_ref()
    }
}

/// Scan every file with every ruleset. The result is in the order of `files`.
/// `pre` may hold early hashes (see `prehash`), by file index. Archives are
/// not opened (their members, if any, are entries of `files`).
pub fn scan_files<'r>(
    files: &[CorpusFile],
    pre: Vec<Option<Box<PreHashed>>>,
    rulesets: &'r [&'r Ruleset],
    planner: Option<&'r dyn Planner>,
    opts: &ScanOptions,
    progress: &ProgressBar,
) -> Vec<Outcome> {
    let none = Expand::default();
    scan_files_sharing(files, pre, rulesets, planner, None, opts, none, progress).outcomes
}

/// What a scan found: an outcome per file, in the order of `files`, and
/// the members of the files that are archives, by file index.
pub struct Scan {
    pub outcomes: Vec<Outcome>,
    pub members: Vec<(usize, Expanded<Outcome>)>,
}

/// Which files a scan opens as archives (as `opts.archives` says), and
/// which of their members it keeps.
#[derive(Clone, Copy, Default)]
pub struct Expand<'a> {
    /// Files before this index may be archives (the known-bad samples after
    /// it are not opened).
    pub upto: usize,
    /// Files that are not the run's own (another shard's archives): only
    /// their members are scanned, and their own outcome is not used. Empty:
    /// none.
    pub foreign: &'a [bool],
    /// A sharded run: is a member (of content `sha256`, or placed by its
    /// path when it has none) this shard's? Others are not scanned.
    pub keep: Option<Keep<'a>>,
}

/// Is an archive member (of content `sha256`, if it has one) the run's?
pub type Keep<'a> = &'a (dyn Fn(&CorpusFile, Option<&[u8; 32]>) -> bool + Sync);

/// `scan_files`, with a gate's baseline taking the candidate's results for
/// the rules they share (see `Sharing`), and the members of the archives
/// among the files read and scanned too (see `Expand`).
#[allow(clippy::too_many_arguments)]
pub fn scan_files_sharing<'r>(
    files: &[CorpusFile],
    pre: Vec<Option<Box<PreHashed>>>,
    rulesets: &'r [&'r Ruleset],
    planner: Option<&'r dyn Planner>,
    sharing: Option<&'r Sharing<'r>>,
    opts: &ScanOptions,
    expand: Expand<'_>,
    progress: &ProgressBar,
) -> Scan {
    let claimed: Mutex<HashSet<[u8; 32]>> = Mutex::new(HashSet::new());
    let path_dependent = rulesets.iter().any(|r| r.path_dependent());
    let order = schedule(files.len(), &pre);
    // The early hashes and the outcomes, in file order, behind one lock
    // taken twice a file: each early hash is taken by the worker that
    // scans its file (and freed when that file is done), and each outcome
    // is written where it is returned from, so no second list of a million
    // outcomes is made at the end.
    let table = Mutex::new(Table {
        pre,
        out: (0..files.len()).map(|_| Outcome::NOT_YET).collect(),
        done: vec![false; files.len()],
        members: Vec::new(),
    });
    let lock = || table.lock().unwrap_or_else(|e| e.into_inner());
    let next = AtomicUsize::new(0);
    // One worker (its scanners made once) per thread, each taking the next
    // file of `order` until none is left.
    let work = || {
        let mut w = Worker::new(rulesets, planner, sharing, opts);
        loop {
            let k = next.fetch_add(1, Ordering::Relaxed);
            let Some(&i) = order.get(k) else { break };
            let early = lock().pre.get_mut(i).and_then(Option::take);
            w.expand = i < expand.upto;
            w.foreign = expand.foreign.get(i).copied().unwrap_or(false);
            let (out, members) = w.process(
                &files[i],
                i,
                early.as_deref(),
                &claimed,
                path_dependent,
                expand.keep,
            );
            drop(early);
            let mut t = lock();
            t.out[i] = out;
            t.done[i] = true;
            if let Some(m) = members {
                t.members.push((i, m));
            }
            drop(t);
            progress.inc(1);
        }
    };
    std::thread::scope(|scope| {
        for i in 1..opts.threads.max(1) {
            // A thread that cannot be spawned leaves its share to the others.
            let _ = std::thread::Builder::new()
                .name(format!("fpgate-scan-{i}"))
                .spawn_scoped(scope, work);
        }
        // This thread is a worker too (the only one if none could be
        // spawned: the scan runs rather than fails).
        work();
    });
    let Table {
        mut out,
        done,
        mut members,
        ..
    } = table.into_inner().unwrap_or_else(|e| e.into_inner());
    for (o, _) in out.iter_mut().zip(done).filter(|(_, d)| !d) {
        *o = Outcome::Unscanned {
            reason: Reason::Interrupted,
            detail: "the scan stopped before this file".into(),
            sha256: None,
            size: None,
        };
    }
    members.sort_by_key(|(i, _)| *i);
    Scan {
        outcomes: out,
        members,
    }
}

/// What the scan's workers share, by file index (see `scan_files_sharing`).
struct Table {
    pre: Vec<Option<Box<PreHashed>>>,
    out: Vec<Outcome>,
    /// Which outcomes were written.
    done: Vec<bool>,
    /// The members of the archives scanned so far, by file index.
    members: Vec<(usize, Expanded<Outcome>)>,
}

/// The order files are scanned in: the largest first, so no thread is left
/// with a large file when the others have finished (sizes known from the
/// early hashes; files without one first, in corpus order, since their
/// size is unknown).
fn schedule(n: usize, pre: &[Option<Box<PreHashed>>]) -> Vec<usize> {
    let size = |i: usize| pre.get(i).and_then(Option::as_ref).map(|p| p.stamp.size);
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| match size(i) {
        None => (0, 0, i),
        Some(s) => (1, u64::MAX - s, i),
    });
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_of_unknown_size_first_then_the_largest() {
        let pre = |size: u64| {
            let d = tempfile::tempdir().unwrap();
            let p = d.path().join("f");
            std::fs::write(&p, vec![0u8; size as usize]).unwrap();
            let stamp =
                crate::corpus::read::read_into(&p, &mut Vec::new(), &opts().limits()).unwrap();
            Some(Box::new(PreHashed {
                stamp,
                sha256: [0; 32],
                format: crate::corpus::format::Format::Other,
                container: Some(false),
                cached: false,
            }))
        };
        let pres = vec![pre(10), None, pre(300), pre(20), None, pre(300)];
        assert_eq!(schedule(6, &pres), [1, 4, 2, 5, 3, 0]);
        // Files beyond the early hashes count as unknown.
        assert_eq!(schedule(3, &[]), [0, 1, 2]);
    }
    use crate::corpus::read::prehash;
    use sha2::{Digest, Sha256};

    fn ruleset() -> Ruleset {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("r.yar");
        std::fs::write(&f, "rule A { strings: $a = \"abc\" condition: $a }").unwrap();
        crate::rules::compile(
            "candidate",
            &[crate::rules::RulePath::plain(&f)],
            &Default::default(),
        )
        .unwrap()
    }

    fn opts() -> ScanOptions {
        ScanOptions {
            threads: 1,
            timeout: Duration::from_secs(10),
            max_file_size: 1 << 20,
            follow_symlinks: false,
            profile: false,
            archives: Default::default(),
            signatures: None,
        }
    }

    fn outcome_of(path: std::path::PathBuf) -> Outcome {
        let rs = ruleset();
        let sets = [&rs];
        let mut w = Worker::new(&sets, None, None, &opts());
        let f = CorpusFile::new(path, "", false);
        w.process(&f, 0, None, &Mutex::new(HashSet::new()), false, None)
            .0
    }

    fn reason(o: &Outcome) -> Option<Reason> {
        match o {
            Outcome::Unscanned { reason, .. } => Some(*reason),
            Outcome::Scanned { .. } => None,
        }
    }

    #[test]
    fn file_replaced_by_fifo_after_the_walk_does_not_block() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("fifo");
        assert!(std::process::Command::new("mkfifo")
            .arg(&p)
            .status()
            .unwrap()
            .success());
        assert_eq!(reason(&outcome_of(p)), Some(Reason::NotRegular));
    }

    #[test]
    fn vanished_and_changed_files_are_unscanned() {
        assert_eq!(
            reason(&outcome_of("/no/such/file".into())),
            Some(Reason::Vanished)
        );
        // procfs reports size 0 but yields bytes: the read does not match the
        // size seen at open, exactly what a file growing mid-read looks like.
        assert_eq!(
            reason(&outcome_of("/proc/self/status".into())),
            Some(Reason::Changed)
        );
    }

    /// The repository's rule sets (candidate, baseline) and its corpus.
    fn repository() -> (Vec<Ruleset>, Vec<CorpusFile>) {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let set = |label: &'static str| {
            let mut paths: Vec<_> = std::fs::read_dir(root.join("rules").join(label))
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|e| e == "yar"))
                .collect();
            paths.sort();
            let paths: Vec<_> = paths.iter().map(crate::rules::RulePath::plain).collect();
            crate::rules::compile(label, &paths, &Default::default()).unwrap()
        };
        let corpus = crate::corpus::walk(&[root.join("corpus")], &Default::default()).unwrap();
        (vec![set("candidate"), set("released")], corpus.files)
    }

    #[test]
    fn mapped_files_give_what_read_files_give() {
        let (sets, files) = repository();
        let sets: Vec<&Ruleset> = sets.iter().collect();
        let run = |map_from: u64| -> Vec<String> {
            let o = ScanOptions {
                max_file_size: 64 << 20,
                ..opts()
            };
            let mut w = Worker::new(&sets, None, None, &o);
            w.map_from = map_from;
            let claimed = Mutex::new(HashSet::new());
            files
                .iter()
                .enumerate()
                .map(|(i, f)| format!("{:?}", w.process(f, i, None, &claimed, true, None).0))
                .collect()
        };
        let (read, mapped) = (run(u64::MAX), run(0));
        assert_eq!(read, mapped);
        // A real match with evidence (the candidate's overbroad rule on a
        // 218 KiB installer), and every file scanned.
        assert!(read
            .iter()
            .any(|o| o.contains("Shh_Updater_B") && o.contains("offset")));
        assert!(read.iter().all(|o| o.starts_with("Scanned")));
        let big = files.iter().filter(|f| {
            std::fs::metadata(f.path()).unwrap().len() >= crate::corpus::mapped::MAP_FROM
        });
        assert!(big.count() >= 5);
    }

    #[test]
    fn a_mapped_file_that_changes_before_its_scan_ends_is_not_used() {
        let d = tempfile::tempdir().unwrap();
        let rs = ruleset();
        let sets = [&rs];
        let mut content = vec![b'x'; 300_000];
        content[250_000..250_003].copy_from_slice(b"abc");
        for change in ["truncated", "rewritten"] {
            let p = d.path().join(change);
            std::fs::write(&p, &content).unwrap();
            let f = CorpusFile::new(p.clone(), change, false);
            let mut w = Worker::new(&sets, None, None, &opts());
            w.map_from = 0;
            let stamp = w.read(&f).unwrap();
            let file = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
            if change == "truncated" {
                file.set_len(1000).unwrap();
            } else {
                use std::io::{Seek, Write};
                let mut file = file;
                file.seek(std::io::SeekFrom::Start(250_000)).unwrap();
                file.write_all(b"zzz").unwrap();
                // A different mtime even within one clock tick.
                file.set_modified(std::time::UNIX_EPOCH).unwrap();
            }
            let claimed = Mutex::new(HashSet::new());
            let (out, _) = w.process_read(&f, 0, None, stamp, &claimed, false, None);
            match &out {
                Outcome::Unscanned {
                    reason: Reason::Changed,
                    detail,
                    ..
                } => assert!(detail.contains("while being scanned"), "{detail}"),
                other => panic!("{change}: {other:?}"),
            }
        }
    }

    #[test]
    fn duplicates_are_scanned_once_with_evidence() {
        let d = tempfile::tempdir().unwrap();
        let files: Vec<CorpusFile> = ["a", "b"]
            .iter()
            .map(|n| {
                let p = d.path().join(n);
                std::fs::write(&p, b"xxabcxx").unwrap();
                CorpusFile::new(p, n, false)
            })
            .collect();
        let rs = ruleset();
        let out = scan_files(
            &files,
            Vec::new(),
            &[&rs],
            None,
            &opts(),
            &ProgressBar::hidden(),
        );
        let scanned: Vec<_> = out
            .iter()
            .filter_map(|o| match o {
                Outcome::Scanned { hits: Some(h), .. } => Some(h.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(scanned.len(), 1, "second copy rides on the first scan");
        let ev = &scanned[0][0][0].patterns[0];
        assert_eq!((ev.identifier.as_str(), ev.match_count), ("$a", 1));
        assert_eq!(ev.matches[0].offset, 2);
        assert_eq!(ev.matches[0].text, "abc");
    }

    #[test]
    fn early_hashes_are_used_only_for_unchanged_files() {
        let d = tempfile::tempdir().unwrap();
        let files: Vec<CorpusFile> = ["same", "edited"]
            .iter()
            .map(|n| {
                let p = d.path().join(n);
                std::fs::write(&p, format!("{n} before")).unwrap();
                CorpusFile::new(p, n, false)
            })
            .collect();
        let stop = std::sync::atomic::AtomicBool::new(false);
        let pre = prehash(&files, Vec::new(), &opts().limits(), &stop);
        assert!(pre.iter().all(Option::is_some));
        // Same length, new content: the stamp (mtime/ctime) differs.
        std::fs::write(files[1].path(), "edited after!").unwrap();
        let rs = ruleset();
        let out = scan_files(&files, pre, &[&rs], None, &opts(), &ProgressBar::hidden());
        let sha = |o: &Outcome| match o {
            Outcome::Scanned { sha256, .. } => *sha256,
            other => panic!("{other:?}"),
        };
        let digest = |b: &[u8]| -> [u8; 32] { Sha256::digest(b).into() };
        assert_eq!(sha(&out[0]), digest(b"same before"));
        assert_eq!(sha(&out[1]), digest(b"edited after!"));
        // A stop flag set from the start hashes nothing.
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(prehash(&files, Vec::new(), &opts().limits(), &stop)
            .iter()
            .all(Option::is_none));
    }
}
