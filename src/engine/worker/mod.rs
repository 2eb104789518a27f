//! One scan worker: reads a file into its reusable buffer (or maps it, from
//! `MAP_FROM` bytes on), hashes it, asks the planner (if any) what each
//! ruleset still has to run on it, and runs that over the same bytes. One
//! worker per thread, the rules shared.

use super::{Answer, Hit, Outcome, Plan, Planner, ScanOptions, Subjects};
use crate::corpus::mapped::{Mapped, MAP_FROM};
use crate::corpus::members::Expanded;
use crate::corpus::read::{read_or_map, PreHashed, Stamp};
use crate::corpus::{external_value, format, CorpusFile, Reason};
use crate::rules::Ruleset;
use crate::util::interrupt::interrupted;
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Mutex;
use std::time::Duration;
use yara_x::{ScanError, Scanner};

mod members;

/// Which archive members are the run's (see `engine::Expand::keep`).
type Keep<'a> = Option<super::Keep<'a>>;

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

pub(super) struct Worker<'r> {
    rulesets: &'r [&'r Ruleset],
    planner: Option<&'r dyn Planner>,
    /// Per ruleset, a scanner of every rule: made when a file first needs
    /// one, so a run answered from the cache never builds the full rules.
    scanners: Vec<Option<Scanner<'r>>>,
    /// Per ruleset, a scanner of its changed rules only (see `Planner::delta_rules`).
    delta_scanners: Vec<Option<Scanner<'r>>>,
    sharing: Option<&'r super::Sharing<'r>>,
    /// A scanner of the baseline rules the candidate does not share.
    rest_scanner: Option<Scanner<'r>>,
    opts: ScanOptions,
    /// The file being scanned: read into `buf`, or mapped.
    buf: Vec<u8>,
    mapped: Option<Mapped>,
    /// Files of this size or more are mapped (`MAP_FROM`; tests set it).
    pub(super) map_from: u64,
    /// Open the file if it is an archive (as `opts.archives` says).
    pub(super) expand: bool,
    /// Another shard's archive: only its members are this run's.
    pub(super) foreign: bool,
}

/// The bytes of the file being scanned.
fn data<'a>(mapped: &'a Option<Mapped>, buf: &'a [u8]) -> &'a [u8] {
    mapped.as_ref().map_or(buf, Mapped::data)
}

impl Drop for Worker<'_> {
    fn drop(&mut self) {
        #[cfg(feature = "profiling")]
        if self.opts.profile {
            if let Some(Some(s)) = self.scanners.first() {
                super::profile::collect(s);
            }
        }
    }
}

impl<'r> Worker<'r> {
    pub(super) fn new(
        rulesets: &'r [&'r Ruleset],
        planner: Option<&'r dyn Planner>,
        sharing: Option<&'r super::Sharing<'r>>,
        opts: &ScanOptions,
    ) -> Self {
        let mut w = Worker {
            rulesets,
            planner,
            scanners: Vec::new(),
            delta_scanners: Vec::new(),
            sharing,
            rest_scanner: None,
            opts: opts.clone(),
            buf: Vec::new(),
            mapped: None,
            map_from: MAP_FROM,
            expand: false,
            foreign: false,
        };
        w.reset_scanners();
        w
    }

    fn reset_scanners(&mut self) {
        let timeout = self.opts.timeout;
        self.scanners = self.rulesets.iter().map(|_| None).collect();
        let planner = self.planner;
        self.delta_scanners = (0..self.rulesets.len())
            .map(|i| {
                let rules = planner?.delta_rules(i)?;
                let mut s = Scanner::new(rules);
                s.set_timeout(timeout);
                Some(s)
            })
            .collect();
        // Made when a file first needs it (see `scan_buf`).
        self.rest_scanner = None;
    }

    /// The file's cache subjects (`None` without a cache).
    fn subjects(&self, sha: &[u8; 32], f: &CorpusFile) -> Option<Subjects> {
        self.planner.map(|p| p.subjects(sha, f))
    }

    /// Each ruleset's plan for this file (all `Full` without a cache).
    fn plans(&self, s: Option<&Subjects>) -> Vec<Plan> {
        (0..self.rulesets.len())
            .map(|i| match (self.planner, s) {
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
            .map(|(i, (hits, &plan))| match (self.planner, s) {
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

    /// Scan `f`, file `index` of the run's file list.
    pub(super) fn process(
        &mut self,
        f: &CorpusFile,
        index: usize,
        pre: Option<&PreHashed>,
        claimed: &Mutex<HashSet<[u8; 32]>>,
        path_dependent: bool,
        keep: Keep<'_>,
    ) -> (Outcome, Option<Expanded<Outcome>>) {
        let unscanned = |reason, detail: String| Outcome::Unscanned {
            reason,
            detail,
            sha256: None,
            size: None,
        };
        if interrupted() {
            return (
                unscanned(
                    Reason::Interrupted,
                    "the run was interrupted before this file was scanned".into(),
                ),
                None,
            );
        }
        if f.member_names().is_some() {
            return (self.process_member(f, claimed, path_dependent), None);
        }
        if let Some(out) = self.answered_unread(f, index, pre, keep) {
            return out;
        }
        let stamp = match self.read(f) {
            Ok(stamp) => stamp,
            Err((reason, detail)) => return (unscanned(reason, detail), None),
        };
        self.process_read(f, index, pre, stamp, claimed, path_dependent, keep)
    }

    /// The rest of `process` once the file is read (or mapped): hash it, ask
    /// the planner, scan what is left to scan; then, for an archive, the
    /// same for each of its members (see `corpus::members`).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn process_read(
        &mut self,
        f: &CorpusFile,
        index: usize,
        pre: Option<&PreHashed>,
        stamp: Stamp,
        claimed: &Mutex<HashSet<[u8; 32]>>,
        path_dependent: bool,
        keep: Keep<'_>,
    ) -> (Outcome, Option<Expanded<Outcome>>) {
        let size = stamp.size;
        // The bytes leave the worker while its scanners run over them (and
        // over the members decoded from them).
        let buf = std::mem::take(&mut self.buf);
        let mapped = self.mapped.take();
        let bytes = data(&mapped, &buf);
        let sha256: [u8; 32] = match pre {
            Some(p) if p.stamp == stamp => p.sha256,
            _ => Sha256::digest(bytes).into(),
        };
        let format = format::detect(bytes);
        let container = crate::corpus::archive::detect(bytes).is_some();
        // Another shard's archive is not scanned: its members are.
        let judged = if self.foreign {
            Judged::Duplicate
        } else {
            self.judge(f, bytes, sha256, claimed, path_dependent)
        };
        // A copy of an archive, or one whose own scan failed, still has
        // its members (their contents are claimed like any other).
        let expanded = self.expand(f, bytes, &sha256, claimed, path_dependent, keep);
        let unchanged = mapped.as_ref().map_or(Ok(()), Mapped::unchanged);
        drop(mapped);
        self.buf = buf;
        // Nothing that was read is used (stored, or answered) before it is
        // known that the file did not change while it was read.
        if let Err((reason, detail)) = unchanged {
            let ours = judged.claimed();
            return (
                Outcome::Unscanned {
                    reason,
                    detail,
                    // A content this file claimed: its duplicates share the failure.
                    sha256: ours.then_some(sha256),
                    size: ours.then_some(size),
                },
                None,
            );
        }
        if let Some(c) = self.planner {
            let known = pre.is_some_and(|p| p.cached && p.stamp == stamp && p.container.is_some());
            if !known {
                c.record_stat(index, stamp, sha256, format, container);
            }
        }
        (judged.outcome(sha256, size, format), expanded)
    }

    /// Scan `bytes` (of content `sha256`) as the planner says, counting how
    /// it was answered.
    fn judge(
        &mut self,
        f: &CorpusFile,
        bytes: &[u8],
        sha256: [u8; 32],
        claimed: &Mutex<HashSet<[u8; 32]>>,
        path_dependent: bool,
    ) -> Judged {
        // [[tiers.critical]]: the signature is judged while the bytes are here.
        if let Some(v) = &self.opts.signatures {
            v.judge(&sha256, f.display().as_bytes(), bytes);
        }
        let subj = self.subjects(&sha256, f);
        let plans = self.plans(subj.as_ref());
        if plans.iter().all(|p| *p == Plan::Skip) {
            self.count(Answer::ReadOnly);
            let empty = vec![Vec::new(); plans.len()];
            return Judged::Answered {
                hits: self.assemble(subj.as_ref(), &plans, empty),
            };
        }
        let first = claimed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(sha256);
        // Unless another path of this content is being scanned.
        if !(first || path_dependent) {
            self.count(Answer::ReadOnly);
            return Judged::Duplicate;
        }
        let result = self.scan_guarded(f, bytes, &plans);
        self.count(if plans.contains(&Plan::Full) {
            Answer::Full
        } else {
            Answer::Delta
        });
        match result {
            Ok(hits) => Judged::Scanned {
                hits: self.assemble(subj.as_ref(), &plans, hits),
            },
            Err((reason, detail)) => Judged::Failed { reason, detail },
        }
    }

    fn count(&self, answer: Answer) {
        if let Some(c) = self.planner {
            c.count(answer);
        }
    }

    /// Known content whose every result the planner has: answered without
    /// reading the file; an archive too, when its members are to be read
    /// and the planner knows its shape and every member's results.
    fn answered_unread(
        &self,
        f: &CorpusFile,
        index: usize,
        pre: Option<&PreHashed>,
        keep: Keep<'_>,
    ) -> Option<(Outcome, Option<Expanded<Outcome>>)> {
        let (c, p) = (self.planner?, pre?);
        let archives = self.expand && self.opts.archives.enabled;
        if archives && p.container.is_none() {
            return None;
        }
        let subj = self.subjects(&p.sha256, f);
        let plans = self.plans(subj.as_ref());
        if !self.foreign && !plans.iter().all(|p| *p == Plan::Skip) {
            return None;
        }
        let members = if archives && p.container == Some(true) {
            Some(self.members_unread(f, &p.sha256, keep)?)
        } else {
            None
        };
        if !p.cached {
            let container = p.container.unwrap_or(false);
            c.record_stat(index, p.stamp, p.sha256, p.format, container);
        }
        if self.foreign {
            // Another shard's archive: nothing of its own is answered (or
            // recorded); the run drops it.
            let out = Outcome::Scanned {
                sha256: p.sha256,
                size: p.stamp.size,
                format: p.format,
                hits: None,
            };
            return Some((out, members));
        }
        c.count(Answer::Unread);
        let empty = vec![Vec::new(); plans.len()];
        let out = Outcome::Scanned {
            sha256: p.sha256,
            size: p.stamp.size,
            format: p.format,
            hits: Some(self.assemble(subj.as_ref(), &plans, empty)),
        };
        Some((out, members))
    }

    /// Scan the buffer, a panic in the engine becoming this file's failure
    /// (the worker's scanners are rebuilt).
    fn scan_guarded(
        &mut self,
        f: &CorpusFile,
        bytes: &[u8],
        plans: &[Plan],
    ) -> Result<Vec<Vec<Hit>>, (Reason, String)> {
        match catch_unwind(AssertUnwindSafe(|| self.scan_buf(f, bytes, plans))) {
            Ok(r) => r,
            Err(panic) => {
                // The scanner may be in any state after a panic: start afresh.
                self.reset_scanners();
                let msg = crate::util::panic_message(panic.as_ref());
                Err((Reason::Panic, format!("scanner panicked: {msg}")))
            }
        }
    }

    /// Open the file, fail-closed on anything odd, and map it (from
    /// `map_from` bytes on) or read it whole into `self.buf`.
    pub(super) fn read(&mut self, f: &CorpusFile) -> Result<Stamp, (Reason, String)> {
        self.mapped = None;
        let limits = self.opts.limits();
        let (stamp, mapped) = read_or_map(f.path(), &mut self.buf, &limits, self.map_from)?;
        self.mapped = mapped;
        Ok(stamp)
    }

    fn scan_buf(
        &mut self,
        f: &CorpusFile,
        bytes: &[u8],
        plans: &[Plan],
    ) -> Result<Vec<Vec<Hit>>, (Reason, String)> {
        let mut all: Vec<Vec<Hit>> = Vec::with_capacity(self.scanners.len());
        let timeout = self.opts.timeout;
        // The baseline takes the candidate's results when both run in full
        // (and its own rules, if any, compile on their own).
        let sharing = self.sharing.filter(|sh| {
            plans.get(sh.from) == Some(&Plan::Full)
                && plans.get(sh.to) == Some(&Plan::Full)
                && (!sh.has_rest() || sh.rest().is_some())
        });
        let rulesets = self.rulesets;
        for (i, &rs) in rulesets.iter().enumerate() {
            if let Some(sh) = sharing.filter(|sh| sh.to == i) {
                let mut hits: Vec<Hit> = all[sh.from]
                    .iter()
                    .filter(|h| sh.shared.contains(&h.rule) && !sh.rest_keys.contains(&h.rule))
                    .cloned()
                    .collect();
                if let Some(rules) = sh.rest().filter(|_| sh.has_rest()) {
                    let scanner = self.rest_scanner.get_or_insert_with(|| {
                        let mut s = Scanner::new(rules);
                        s.set_timeout(timeout);
                        s
                    });
                    hits.extend(scan_one(scanner, rs, f, bytes, timeout)?);
                }
                hits.sort_by(|a, b| a.rule.cmp(&b.rule));
                all.push(hits);
                continue;
            }
            let scanner = match (plans[i], self.delta_scanners.get_mut(i)) {
                (Plan::Skip, _) => {
                    all.push(Vec::new());
                    continue;
                }
                (Plan::Delta, Some(Some(d))) => d,
                _ => {
                    let full = &mut self.scanners[i];
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
            let mut hits = scan_one(scanner, rs, f, bytes, timeout)?;
            hits.sort_by(|a, b| a.rule.cmp(&b.rule));
            all.push(hits);
        }
        Ok(all)
    }
}

/// One scanner of ruleset `rs` over `buf`: the matching rules, each with
/// its evidence.
fn scan_one(
    scanner: &mut Scanner<'_>,
    rs: &Ruleset,
    f: &CorpusFile,
    buf: &[u8],
    timeout: Duration,
) -> Result<Vec<Hit>, (Reason, String)> {
    for ext in &rs.per_file_externals {
        let value = external_value(ext, f, buf);
        scanner
            .set_global(ext, value.as_str())
            .map_err(|e| (Reason::ScanError, format!("setting `{ext}`: {e}")))?;
    }
    let results = scanner
        .scan(buf)
        .map_err(|e| scan_failure(e, || format!("{} ruleset scan", rs.label), timeout))?;
    let matched: Vec<crate::rules::RuleKey> = results
        .matching_rules()
        .map(|rule| (rule.namespace().to_string(), rule.identifier().to_string()))
        .collect();
    // Evidence from the rule alone (see `evidence`), so it does not depend
    // on which other rules ran on this file.
    let mut hits = Vec::with_capacity(matched.len());
    for rule in matched {
        let patterns = rs.evidence.of(&rule, buf, timeout).map_err(|e| {
            scan_failure(
                e,
                || format!("{} ruleset: evidence of {}", rs.label, rule.1),
                timeout,
            )
        })?;
        hits.push(Hit { rule, patterns });
    }
    Ok(hits)
}

/// What the planner and the scan made of one content.
enum Judged {
    /// Every result known: nothing ran.
    Answered {
        hits: Vec<Vec<Hit>>,
    },
    /// Another path of this content carries the scan.
    Duplicate,
    Scanned {
        hits: Vec<Vec<Hit>>,
    },
    Failed {
        reason: Reason,
        detail: String,
    },
}

impl Judged {
    /// Did this path claim the content (and so carry its result)?
    fn claimed(&self) -> bool {
        matches!(self, Judged::Scanned { .. } | Judged::Failed { .. })
    }

    fn outcome(self, sha256: [u8; 32], size: u64, format: format::Format) -> Outcome {
        let scanned = |hits| Outcome::Scanned {
            sha256,
            size,
            format,
            hits,
        };
        match self {
            Judged::Answered { hits } | Judged::Scanned { hits } => scanned(Some(hits)),
            Judged::Duplicate => scanned(None),
            Judged::Failed { reason, detail } => Outcome::Unscanned {
                reason,
                detail,
                sha256: Some(sha256),
                size: Some(size),
            },
        }
    }
}
