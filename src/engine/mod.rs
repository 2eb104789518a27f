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

use crate::cache::plan::{CacheRun, Plan, Subjects};
use crate::corpus::{CorpusFile, Reason};
use crate::rules::{RuleKey, Ruleset};
use crate::util::hex::hex;
use indicatif::ProgressBar;
use rayon::prelude::*;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Mutex;
use std::time::Duration;
use yara_x::{ScanError, Scanner};

/// Set by the Ctrl-C / SIGTERM handler: workers stop taking new files.
pub static INTERRUPTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Was the run interrupted?
pub fn interrupted() -> bool {
    INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst)
}

/// How many matches of one pattern are kept as evidence (all are counted).
pub const EVIDENCE_MATCHES: usize = 5;
/// How many bytes of each match are shown.
pub const EVIDENCE_BYTES: usize = 32;

#[derive(Debug, Clone)]
pub struct ScanOptions {
    pub threads: usize,
    pub timeout: Duration,
    pub max_file_size: u64,
    pub follow_symlinks: bool,
    /// Collect per-rule cost of the first ruleset (needs the `profiling`
    /// build feature).
    pub profile: bool,
}

/// Time spent in one rule over a scan.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleCost {
    pub namespace: String,
    pub rule: String,
    pub condition_seconds: f64,
    pub pattern_matching_seconds: f64,
    pub total_seconds: f64,
}

/// Per-rule cost summed over every worker of a scan (first ruleset only).
static PROFILE: Mutex<Vec<(String, String, Duration, Duration)>> = Mutex::new(Vec::new());

/// Was this binary built with per-rule profiling?
pub const PROFILING: bool = cfg!(feature = "profiling");

/// Accumulated per-rule costs of the rules in `scanner`.
#[cfg(feature = "profiling")]
pub fn rule_costs(scanner: &Scanner<'_>) -> Vec<(String, String, Duration, Duration)> {
    scanner
        .slowest_rules(usize::MAX)
        .into_iter()
        .map(|p| {
            (
                p.namespace.to_string(),
                p.rule.to_string(),
                p.condition_exec_time,
                p.pattern_matching_time,
            )
        })
        .collect()
}

/// Take the costs collected since the last call, slowest first.
pub fn take_profile(limit: usize) -> Vec<RuleCost> {
    let raw = std::mem::take(&mut *PROFILE.lock().unwrap_or_else(|e| e.into_inner()));
    let mut sum: std::collections::BTreeMap<(String, String), (Duration, Duration)> =
        Default::default();
    for (ns, rule, c, p) in raw {
        let e = sum.entry((ns, rule)).or_default();
        e.0 += c;
        e.1 += p;
    }
    let mut out: Vec<RuleCost> = sum
        .into_iter()
        .map(|((namespace, rule), (c, p))| RuleCost {
            namespace,
            rule,
            condition_seconds: round6(c.as_secs_f64()),
            pattern_matching_seconds: round6(p.as_secs_f64()),
            total_seconds: round6((c + p).as_secs_f64()),
        })
        .filter(|r| r.total_seconds > 0.0)
        .collect();
    out.sort_by(|a, b| {
        b.total_seconds
            .total_cmp(&a.total_seconds)
            .then(a.rule.cmp(&b.rule))
    });
    out.truncate(limit);
    out
}

fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

/// One matched string of a rule, as evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct MatchEvidence {
    pub offset: usize,
    pub length: usize,
    /// The first bytes matched (at most 32), hex.
    pub hex: String,
    /// The same bytes as printable text (`.` for others; UTF-16 shown plain).
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct PatternEvidence {
    pub identifier: String,
    /// Every match of this pattern in the file (yara-x caps this per pattern).
    pub match_count: usize,
    /// The first matches, by offset.
    pub matches: Vec<MatchEvidence>,
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
        format: &'static str,
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

/// Scan every file with every ruleset. The result is in the order of `files`.
/// `pre` may hold early hashes (see `prehash`), by file index.
pub fn scan_files<'r>(
    files: &[CorpusFile],
    pre: &[Option<PreHashed>],
    rulesets: &'r [&'r Ruleset],
    cache: Option<&'r CacheRun<'r>>,
    opts: &ScanOptions,
    progress: &ProgressBar,
) -> Vec<Outcome> {
    let claimed: Mutex<HashSet<[u8; 32]>> = Mutex::new(HashSet::new());
    let path_dependent = rulesets.iter().any(|r| r.path_dependent());
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.threads)
        .thread_name(|i| format!("fpgate-scan-{i}"))
        .build();
    let run = || {
        files
            .par_iter()
            .enumerate()
            .with_min_len(1)
            .map_init(
                || Worker::new(rulesets, cache, opts),
                |w, (i, f)| {
                    let out = w.process(
                        f,
                        pre.get(i).and_then(Option::as_ref),
                        &claimed,
                        path_dependent,
                    );
                    progress.inc(1);
                    out
                },
            )
            .collect()
    };
    match pool {
        Ok(pool) => pool.install(run),
        // Could not spawn threads: scan on the current one rather than fail.
        Err(_) => run(),
    }
}

/// Why a file could not be scanned, from a yara-x scan error: a timeout
/// (`what` exceeded `--timeout`) or any other error.
fn scan_failure(
    e: ScanError,
    what: impl FnOnce() -> String,
    timeout: Duration,
) -> (Reason, String) {
    match e {
        ScanError::Timeout => (
            Reason::Timeout,
            format!("{} exceeded {}s (--timeout)", what(), timeout.as_secs_f64()),
        ),
        other => (Reason::ScanError, other.to_string()),
    }
}

struct Worker<'r> {
    rulesets: &'r [&'r Ruleset],
    cache: Option<&'r CacheRun<'r>>,
    /// Per ruleset, a scanner of every rule: made when a file first needs
    /// one, so a run answered from the cache never builds the full rules.
    scanners: Vec<Option<Scanner<'r>>>,
    /// Per ruleset, a scanner of its changed rules only (see `incremental`).
    delta_scanners: Vec<Option<Scanner<'r>>>,
    opts: ScanOptions,
    buf: Vec<u8>,
}

impl Drop for Worker<'_> {
    fn drop(&mut self) {
        #[cfg(feature = "profiling")]
        if self.opts.profile {
            if let Some(Some(s)) = self.scanners.first() {
                let costs = rule_costs(s);
                PROFILE
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .extend(costs);
            }
        }
    }
}

impl<'r> Worker<'r> {
    fn new(
        rulesets: &'r [&'r Ruleset],
        cache: Option<&'r CacheRun<'r>>,
        opts: &ScanOptions,
    ) -> Self {
        let mut w = Worker {
            rulesets,
            cache,
            scanners: Vec::new(),
            delta_scanners: Vec::new(),
            opts: opts.clone(),
            buf: Vec::new(),
        };
        w.reset_scanners();
        w
    }

    fn reset_scanners(&mut self) {
        let timeout = self.opts.timeout;
        self.scanners = self.rulesets.iter().map(|_| None).collect();
        let cache = self.cache;
        self.delta_scanners = (0..self.rulesets.len())
            .map(|i| {
                let d = cache?.plans[i].delta.as_ref()?;
                let mut s = Scanner::new(&d.rules);
                s.set_timeout(timeout);
                Some(s)
            })
            .collect();
    }

    /// The file's cache subjects (`None` without a cache).
    fn subjects(&self, sha: &[u8; 32], f: &CorpusFile) -> Option<Subjects> {
        self.cache.map(|_| crate::cache::plan::subjects(sha, f))
    }

    /// Each ruleset's plan for this file (all `Full` without a cache).
    fn plans(&self, s: Option<&Subjects>) -> Vec<Plan> {
        (0..self.rulesets.len())
            .map(|i| match (self.cache, s) {
                (Some(c), Some(s)) => c.plan(i, s),
                _ => Plan::Full,
            })
            .collect()
    }

    /// The matches per ruleset, from `fresh` results and the cache.
    fn assemble(
        &self,
        s: Option<&Subjects>,
        plans: &[Plan],
        fresh: Vec<Vec<Hit>>,
    ) -> Vec<Vec<Hit>> {
        fresh
            .into_iter()
            .zip(plans)
            .enumerate()
            .map(|(i, (hits, &plan))| match (self.cache, s) {
                (Some(c), Some(s)) => {
                    if plan != Plan::Skip {
                        c.record(i, s, plan, &hits);
                    }
                    c.assemble(i, s, plan, hits)
                }
                _ => hits,
            })
            .collect()
    }

    fn process(
        &mut self,
        f: &CorpusFile,
        pre: Option<&PreHashed>,
        claimed: &Mutex<HashSet<[u8; 32]>>,
        path_dependent: bool,
    ) -> Outcome {
        let unscanned = |reason, detail: String| Outcome::Unscanned {
            reason,
            detail,
            sha256: None,
            size: None,
        };
        if interrupted() {
            return unscanned(
                Reason::Interrupted,
                "the run was interrupted before this file was scanned".into(),
            );
        }
        // Known content whose every result is cached: not even read.
        if let (Some(_), Some(p)) = (self.cache, pre) {
            let subj = self.subjects(&p.sha256, f);
            let plans = self.plans(subj.as_ref());
            if plans.iter().all(|p| *p == Plan::Skip) {
                if !p.cached {
                    if let Some(c) = self.cache {
                        c.record_stat(f, p.stamp, p.sha256, p.format);
                    }
                }
                let empty = vec![Vec::new(); plans.len()];
                if let Some(c) = self.cache {
                    c.count(crate::cache::plan::UNREAD);
                }
                return Outcome::Scanned {
                    sha256: p.sha256,
                    size: p.stamp.size,
                    format: p.format,
                    hits: Some(self.assemble(subj.as_ref(), &plans, empty)),
                };
            }
        }
        let stamp = match self.read(f) {
            Ok(stamp) => stamp,
            Err((reason, detail)) => return unscanned(reason, detail),
        };
        let size = stamp.size;
        let sha256: [u8; 32] = match pre {
            Some(p) if p.stamp == stamp => p.sha256,
            _ => Sha256::digest(&self.buf).into(),
        };
        let format = crate::corpus::format::detect(&self.buf);
        if let Some(c) = self.cache {
            if !pre.is_some_and(|p| p.cached && p.stamp == stamp) {
                c.record_stat(f, stamp, sha256, format);
            }
        }
        let subj = self.subjects(&sha256, f);
        let plans = self.plans(subj.as_ref());
        let count = |what| {
            if let Some(c) = self.cache {
                c.count(what);
            }
        };
        if plans.iter().all(|p| *p == Plan::Skip) {
            count(crate::cache::plan::READ_ONLY);
            let empty = vec![Vec::new(); plans.len()];
            return Outcome::Scanned {
                sha256,
                size,
                format,
                hits: Some(self.assemble(subj.as_ref(), &plans, empty)),
            };
        }

        let first = claimed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(sha256);
        if !first && !path_dependent {
            // Another path of this content is being scanned.
            count(crate::cache::plan::READ_ONLY);
            return Outcome::Scanned {
                sha256,
                size,
                format,
                hits: None,
            };
        }
        count(if plans.contains(&Plan::Full) {
            crate::cache::plan::FULL
        } else {
            crate::cache::plan::DELTA
        });

        match catch_unwind(AssertUnwindSafe(|| self.scan_buf(f, &plans))) {
            Ok(Ok(hits)) => Outcome::Scanned {
                sha256,
                size,
                format,
                hits: Some(self.assemble(subj.as_ref(), &plans, hits)),
            },
            Ok(Err((reason, detail))) => Outcome::Unscanned {
                reason,
                detail,
                sha256: Some(sha256),
                size: Some(size),
            },
            Err(panic) => {
                // The scanner may be in any state after a panic: start afresh.
                self.reset_scanners();
                let msg = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".into());
                Outcome::Unscanned {
                    reason: Reason::Panic,
                    detail: format!("scanner panicked: {msg}"),
                    sha256: Some(sha256),
                    size: Some(size),
                }
            }
        }
    }

    /// Read the whole file into `self.buf`, fail-closed on anything odd.
    fn read(&mut self, f: &CorpusFile) -> Result<Stamp, (Reason, String)> {
        read_into(&f.path, &mut self.buf, &self.opts)
    }

    fn scan_buf(
        &mut self,
        f: &CorpusFile,
        plans: &[Plan],
    ) -> Result<Vec<Vec<Hit>>, (Reason, String)> {
        let mut all = Vec::with_capacity(self.scanners.len());
        let timeout = self.opts.timeout;
        for (i, (full, rs)) in self
            .scanners
            .iter_mut()
            .zip(self.rulesets.iter())
            .enumerate()
        {
            let scanner = match (plans[i], self.delta_scanners.get_mut(i)) {
                (Plan::Skip, _) => {
                    all.push(Vec::new());
                    continue;
                }
                (Plan::Delta, Some(Some(d))) => d,
                _ => {
                    if full.is_none() {
                        // Built by the first worker that needs it; a build
                        // that fails leaves the file unscanned.
                        let rules = rs
                            .rules
                            .get()
                            .map_err(|e| (Reason::ScanError, format!("{} rules: {e}", rs.label)))?;
                        let mut s = Scanner::new(rules);
                        s.set_timeout(timeout);
                        *full = Some(s);
                    }
                    full.as_mut().expect("made above")
                }
            };
            for ext in &rs.per_file_externals {
                let value = external_value(ext, f, &self.buf);
                scanner
                    .set_global(ext, value.as_str())
                    .map_err(|e| (Reason::ScanError, format!("setting `{ext}`: {e}")))?;
            }
            let results = scanner
                .scan(&self.buf)
                .map_err(|e| scan_failure(e, || format!("{} ruleset scan", rs.label), timeout))?;
            let matched: Vec<crate::rules::RuleKey> = results
                .matching_rules()
                .map(|rule| (rule.namespace().to_string(), rule.identifier().to_string()))
                .collect();
            // Evidence from the rule alone (see `evidence`), so it does not
            // depend on which other rules ran on this file.
            let mut hits = Vec::with_capacity(matched.len());
            for rule in matched {
                let patterns = rs.evidence.of(&rule.1, &self.buf, timeout).map_err(|e| {
                    scan_failure(
                        e,
                        || format!("{} ruleset: evidence of {}", rs.label, rule.1),
                        timeout,
                    )
                })?;
                hits.push(Hit { rule, patterns });
            }
            hits.sort_by(|a, b| a.rule.cmp(&b.rule));
            all.push(hits);
        }
        Ok(all)
    }
}

/// What a file looked like when it was read: if all of this is unchanged,
/// so is its content (ctime cannot be set back by a user).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
    ino: u64,
    dev: u64,
}

impl Stamp {
    pub fn of(m: &std::fs::Metadata) -> Stamp {
        Stamp {
            size: m.len(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
            ino: m.ino(),
            dev: m.dev(),
        }
    }

    /// dev, ino, size, mtime, mtime_ns, ctime, ctime_ns (as stored).
    pub fn parts(&self) -> [i64; 7] {
        [
            self.dev as i64,
            self.ino as i64,
            self.size as i64,
            self.mtime.0,
            self.mtime.1,
            self.ctime.0,
            self.ctime.1,
        ]
    }

    pub fn from_parts(n: [i64; 7]) -> Stamp {
        Stamp {
            dev: n[0] as u64,
            ino: n[1] as u64,
            size: n[2] as u64,
            mtime: (n[3], n[4]),
            ctime: (n[5], n[6]),
        }
    }

    /// Modified within `secs` of `now` (unix seconds): a later write in the
    /// same timestamp tick could leave the stamp unchanged.
    pub fn racy(&self, now: i64, secs: i64) -> bool {
        self.mtime.0 >= now - secs || self.ctime.0 >= now - secs
    }
}

/// A sha256 known ahead of the scan: from the stat cache, or computed while
/// the rules compile.
#[derive(Debug, Clone, Copy)]
pub struct PreHashed {
    pub stamp: Stamp,
    pub sha256: [u8; 32],
    pub format: &'static str,
    /// Came from the stat cache (so need not be stored again).
    pub cached: bool,
}

/// Read a whole file into `buf`, fail-closed on anything odd: opened
/// non-blocking and (unless following links) without following a link,
/// checked to be a regular file within the size limit, and re-checked
/// after the read so a file that changed meanwhile is reported.
fn read_into(
    path: &std::path::Path,
    buf: &mut Vec<u8>,
    opts: &ScanOptions,
) -> Result<Stamp, (Reason, String)> {
    let io = |e: std::io::Error| -> (Reason, String) {
        let reason = match e.kind() {
            std::io::ErrorKind::NotFound => Reason::Vanished,
            _ if e.raw_os_error() == Some(libc::ELOOP) => Reason::Symlink,
            _ => Reason::Unreadable,
        };
        (reason, e.to_string())
    };
    let mut flags = libc::O_NONBLOCK;
    if !opts.follow_symlinks {
        flags |= libc::O_NOFOLLOW;
    }
    let mut file = File::options()
        .read(true)
        .custom_flags(flags)
        .open(path)
        .map_err(io)?;
    let before = file.metadata().map_err(io)?;
    if !before.file_type().is_file() {
        return Err((Reason::NotRegular, "not a regular file when opened".into()));
    }
    if before.len() > opts.max_file_size {
        return Err((
            Reason::TooLarge,
            format!(
                "{} bytes, over the limit of {} (--max-file-size)",
                before.len(),
                opts.max_file_size
            ),
        ));
    }
    buf.clear();
    // Shrink a buffer that an earlier huge file left behind, so one big
    // file does not pin its size in every worker for the rest of the run.
    if buf.capacity() > 64 << 20 && before.len() < 16 << 20 {
        *buf = Vec::new();
    }
    buf.reserve(before.len() as usize);
    (&mut file)
        .take(opts.max_file_size.saturating_add(1))
        .read_to_end(buf)
        .map_err(io)?;
    let after = file.metadata().map_err(io)?;
    let read = buf.len() as u64;
    if read != before.len()
        || after.len() != before.len()
        || after.mtime() != before.mtime()
        || after.mtime_nsec() != before.mtime_nsec()
    {
        return Err((
            Reason::Changed,
            format!(
                "changed while being read (size {} -> {}, {} bytes read)",
                before.len(),
                after.len(),
                read
            ),
        ));
    }
    Ok(Stamp {
        size: read,
        mtime: (after.mtime(), after.mtime_nsec()),
        ctime: (after.ctime(), after.ctime_nsec()),
        ino: after.ino(),
        dev: after.dev(),
    })
}

/// Hash files in order on the calling thread until `stop` is set: used on
/// the core that is idle while yara-x compiles the rules on one thread.
/// The scan re-reads each file and uses the early hash only when the file's
/// stamp (size, mtime, ctime, inode) is unchanged.
pub fn prehash(
    files: &[CorpusFile],
    mut out: Vec<Option<PreHashed>>,
    opts: &ScanOptions,
    stop: &std::sync::atomic::AtomicBool,
) -> Vec<Option<PreHashed>> {
    out.resize(files.len(), None);
    let mut buf = Vec::new();
    for (slot, f) in out.iter_mut().zip(files) {
        if stop.load(std::sync::atomic::Ordering::Relaxed) || interrupted() {
            break;
        }
        if slot.is_some() {
            continue;
        }
        if let Ok(stamp) = read_into(&f.path, &mut buf, opts) {
            *slot = Some(PreHashed {
                stamp,
                sha256: Sha256::digest(&buf).into(),
                format: crate::corpus::format::detect(&buf),
                cached: false,
            });
        }
    }
    out
}

/// Hash, on every thread, the files `pre` has no hash for and `skip` does
/// not exclude (a sharded run must know every file's content hash to find
/// its own).
pub fn hash_rest(
    files: &[CorpusFile],
    mut pre: Vec<Option<PreHashed>>,
    skip: &[bool],
    opts: &ScanOptions,
) -> Vec<Option<PreHashed>> {
    pre.resize(files.len(), None);
    let run = || {
        files
            .par_iter()
            .zip(pre.into_par_iter())
            .enumerate()
            .map_init(Vec::new, |buf, (i, (f, p))| {
                if p.is_some() || skip.get(i).copied().unwrap_or(false) || interrupted() {
                    return p;
                }
                let stamp = read_into(&f.path, buf, opts).ok()?;
                Some(PreHashed {
                    stamp,
                    sha256: Sha256::digest(&*buf).into(),
                    format: crate::corpus::format::detect(buf),
                    cached: false,
                })
            })
            .collect()
    };
    match rayon::ThreadPoolBuilder::new()
        .num_threads(opts.threads)
        .build()
    {
        Ok(pool) => pool.install(run),
        Err(_) => run(),
    }
}

/// Value of a standard external variable for one file.
pub(crate) fn external_value(name: &str, f: &CorpusFile, data: &[u8]) -> String {
    match name {
        "filename" => f
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        "filepath" => f.display.clone(),
        "extension" => f
            .path
            .extension()
            .map(|e| format!(".{}", e.to_string_lossy().to_lowercase()))
            .unwrap_or_default(),
        "filetype" => file_type(data).to_string(),
        _ => String::new(),
    }
}

/// The coarse file type LOKI-style rules compare `filetype` against.
pub fn file_type(data: &[u8]) -> &'static str {
    match data {
        [b'M', b'Z', ..] => "EXE",
        [0x7f, b'E', b'L', b'F', ..] => "ELF",
        [0xfe, 0xed, 0xfa, 0xce | 0xcf, ..]
        | [0xce | 0xcf, 0xfa, 0xed, 0xfe, ..]
        | [0xca, 0xfe, 0xba, 0xbe, ..] => "MACHO",
        _ => "",
    }
}

/// Hex form of a digest, for reports.
pub fn sha_hex(d: &[u8; 32]) -> String {
    hex(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ruleset() -> Ruleset {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("r.yar");
        std::fs::write(&f, "rule A { strings: $a = \"abc\" condition: $a }").unwrap();
        crate::rules::compile("candidate", &[f], &Default::default()).unwrap()
    }

    fn opts() -> ScanOptions {
        ScanOptions {
            threads: 1,
            timeout: Duration::from_secs(10),
            max_file_size: 1 << 20,
            follow_symlinks: false,
            profile: false,
        }
    }

    fn outcome_of(path: std::path::PathBuf) -> Outcome {
        let rs = ruleset();
        let sets = [&rs];
        let mut w = Worker::new(&sets, None, &opts());
        let f = CorpusFile {
            display: path.display().to_string(),
            rel: String::new(),
            critical: false,
            path,
        };
        w.process(&f, None, &Mutex::new(HashSet::new()), false)
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

    #[test]
    fn duplicates_are_scanned_once_with_evidence() {
        let d = tempfile::tempdir().unwrap();
        let files: Vec<CorpusFile> = ["a", "b"]
            .iter()
            .map(|n| {
                let p = d.path().join(n);
                std::fs::write(&p, b"xxabcxx").unwrap();
                CorpusFile {
                    display: n.to_string(),
                    rel: n.to_string(),
                    critical: false,
                    path: p,
                }
            })
            .collect();
        let rs = ruleset();
        let out = scan_files(&files, &[], &[&rs], None, &opts(), &ProgressBar::hidden());
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
                CorpusFile {
                    display: n.to_string(),
                    rel: n.to_string(),
                    critical: false,
                    path: p,
                }
            })
            .collect();
        let stop = std::sync::atomic::AtomicBool::new(false);
        let pre = prehash(&files, Vec::new(), &opts(), &stop);
        assert!(pre.iter().all(Option::is_some));
        // Same length, new content: the stamp (mtime/ctime) differs.
        std::fs::write(&files[1].path, "edited after!").unwrap();
        let rs = ruleset();
        let out = scan_files(&files, &pre, &[&rs], None, &opts(), &ProgressBar::hidden());
        let sha = |o: &Outcome| match o {
            Outcome::Scanned { sha256, .. } => *sha256,
            other => panic!("{other:?}"),
        };
        let digest = |b: &[u8]| -> [u8; 32] { Sha256::digest(b).into() };
        assert_eq!(sha(&out[0]), digest(b"same before"));
        assert_eq!(sha(&out[1]), digest(b"edited after!"));
        // A stop flag set from the start hashes nothing.
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(prehash(&files, Vec::new(), &opts(), &stop)
            .iter()
            .all(Option::is_none));
    }

    #[test]
    fn file_types_by_magic() {
        assert_eq!(file_type(b"MZ\x90\x00"), "EXE");
        assert_eq!(file_type(b"\x7fELF\x02"), "ELF");
        assert_eq!(file_type(&[0xcf, 0xfa, 0xed, 0xfe]), "MACHO");
        assert_eq!(file_type(&[0xca, 0xfe, 0xba, 0xbe]), "MACHO");
        assert_eq!(file_type(b"#!/bin/sh"), "");
    }
}
