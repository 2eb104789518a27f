//! The first step of a run: compile the rulesets side by side while the
//! corpus is walked, looked up in the stat cache and hashed on the idle
//! core.

use super::print_notes;
use crate::corpus::read::PreHashed;
use crate::corpus::{self, Corpus};
use crate::error::{Error, Result};
use crate::rules::{self, CompileOptions, Ruleset};
use crate::settings::{Baseline, Run};
use crate::store::Cache;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// What the compile-and-walk step hands to the scan.
pub(super) struct Prepared {
    pub(super) candidate: Ruleset,
    pub(super) baseline: Option<Ruleset>,
    /// The corpus, with the positives' files after its own.
    pub(super) corpus: Corpus,
    /// The positives: roots and skipped entries, and how many files (the
    /// last ones of `corpus`).
    pub(super) positives: Option<(Corpus, usize)>,
    pub(super) prehashed: Vec<Option<Box<PreHashed>>>,
    pub(super) cache: Option<Cache>,
}

/// yara-x compiles on one thread: build the two rulesets side by side (a
/// 1,200-rule set takes seconds), and walk and hash the corpus meanwhile.
/// Errors come in the order a user fixes them: candidate, baseline, corpus.
pub(super) fn prepare(s: &Run) -> Result<Prepared> {
    let compiled = AtomicBool::new(false);
    let cache = s.cache.as_ref().and_then(|dir| match Cache::open(dir) {
        Ok(mut c) => {
            print_notes(&mut c);
            Some(c)
        }
        Err(e) => {
            eprintln!("fpgate: {e}; running without a results cache");
            None
        }
    });
    // A gate's baseline is validated against the candidate (see
    // `rules::build::Reference`): it parses first, the candidate beside its
    // own compile, as a scan does.
    let base_opts = CompileOptions {
        parse_first: true,
        ..s.compile.clone()
    };
    let (files_sent, files) = std::sync::mpsc::sync_channel(1);
    let (outcome_sent, outcome) = std::sync::mpsc::sync_channel(1);
    let lead = Lead {
        files: Mutex::new(files),
        outcome: Mutex::new(outcome),
    };
    let (candidate, baseline, walked) = std::thread::scope(|scope| {
        // Moved in: a panicking candidate drops the senders before the
        // scope waits for the baseline, which then compiles alone.
        let files_sent = Mutex::new(Some(files_sent));
        let outcome_sent = outcome_sent;
        let tell = |f: Arc<rules::build::Files>| {
            if let Some(tx) = files_sent.lock().unwrap_or_else(|e| e.into_inner()).take() {
                let _ = tx.send(f);
            }
        };
        let lead = &lead;
        let base = scope.spawn(move || compile_baseline(s, &base_opts, rules::Link::Follows(lead)));
        let compiled_ref = &compiled;
        let walk = scope.spawn(move || walk_and_hash(s, cache, compiled_ref));
        let link = if matches!(s.baseline, Baseline::None) {
            rules::Link::Alone
        } else {
            rules::Link::Leads(&tell)
        };
        let candidate = rules::compile_linked("candidate", &s.candidate, &s.compile, link);
        // A candidate that stopped before reading all its files: the
        // baseline learns it from its outcome.
        drop(files_sent.lock().unwrap_or_else(|e| e.into_inner()).take());
        // Err: the run stops at the candidate's errors, and the baseline
        // stops too.
        let _ = outcome_sent.send(
            candidate
                .as_ref()
                .ok()
                .map(|c| Arc::new(rules::Reference::of(c))),
        );
        let baseline = base
            .join()
            .unwrap_or_else(|_| Err(Error::internal("baseline compilation panicked")));
        compiled.store(true, Ordering::Relaxed);
        let walked = walk
            .join()
            .unwrap_or_else(|_| Err(Error::internal("corpus walk panicked")));
        (candidate, baseline, walked)
    });
    let candidate = candidate?;
    let baseline = baseline?;
    let (corpus, positives, prehashed, cache) = walked?;
    Ok(Prepared {
        candidate,
        baseline,
        corpus,
        positives,
        prehashed,
        cache,
    })
}

/// The candidate as the gate's baseline sees it (see `rules::build::Lead`).
struct Lead {
    files: Mutex<std::sync::mpsc::Receiver<Arc<rules::build::Files>>>,
    outcome: Mutex<std::sync::mpsc::Receiver<Option<Arc<rules::Reference>>>>,
}

impl rules::build::Lead for Lead {
    fn files(&self) -> Option<Arc<rules::build::Files>> {
        self.files
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .recv()
            .ok()
    }

    fn outcome(&self) -> Result<Option<Arc<rules::Reference>>> {
        match self
            .outcome
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .recv()
        {
            Ok(Some(r)) => Ok(Some(r)),
            // The candidate does not compile: the run stops at its errors
            // (see `prepare`), so compiling the baseline would only delay
            // exit 2.
            Ok(None) => Err(Error::internal(
                "the baseline was not compiled: the candidate does not compile",
            )),
            Err(_) => Ok(None),
        }
    }
}

/// Walk the corpus, look the files up in the stat cache, then hash the
/// others on the otherwise idle core until the rules are compiled; the scan
/// reuses those hashes.
fn walk_and_hash(s: &Run, mut cache: Option<Cache>, compiled: &AtomicBool) -> Result<Walked> {
    let mut c = corpus::gather(
        &s.corpus,
        &s.walk,
        s.recipe.as_ref().map(|r| (&r.recipe, &r.store)),
    )?;
    let positives = match &s.positives {
        Some(p) => {
            let mut pos = walk_positives(&p.paths, &c, s.walk.follow_symlinks)?;
            let n = pos.files.len();
            // Scanned with the corpus; split off again after the scan.
            c.files.append(&mut pos.files);
            Some((pos, n))
        }
        None => None,
    };
    let known = match cache.as_mut() {
        Some(cache) => crate::cache::stat_lookup(cache, &c.files, s.scan.follow_symlinks),
        None => Vec::new(),
    };
    // Fills a core nothing else wants, without taking it from the compilers
    // or the parses (the thread ends with the early hashes; what it did not
    // hash, the scan hashes).
    crate::util::idle_thread();
    let pre = crate::corpus::read::prehash(&c.files, known, &s.scan.limits(), compiled);
    Ok((c, positives, pre, cache))
}

/// The corpus (positives appended), the positives' roots and skipped
/// entries, the early hashes, the cache.
type Walked = (
    Corpus,
    Option<(Corpus, usize)>,
    Vec<Option<Box<PreHashed>>>,
    Option<Cache>,
);

/// Walk the known-bad samples (no tier or exclude globs: every sample
/// counts). A path that does not exist or holds no file is an error, and so
/// is a sample that is also a corpus file.
fn walk_positives(paths: &[std::path::PathBuf], clean: &Corpus, follow: bool) -> Result<Corpus> {
    let opts = corpus::WalkOptions {
        follow_symlinks: follow,
        ..Default::default()
    };
    let pos = corpus::walk(paths, &opts).map_err(|e| match e {
        Error::Corpus { path, message } => Error::input(
            "positives",
            path.unwrap_or_else(|| "--positives".into()),
            message.replacen("corpus", "positives", 1),
        ),
        other => other,
    })?;
    let canon = |f: &corpus::CorpusFile| {
        f.path()
            .canonicalize()
            .unwrap_or_else(|_| f.path().to_path_buf())
    };
    let clean_files: std::collections::HashMap<std::path::PathBuf, &str> = clean
        .files
        .iter()
        .map(|f| (canon(f), f.display()))
        .collect();
    for f in &pos.files {
        if let Some(other) = clean_files.get(&canon(f)) {
            return Err(Error::input(
                "positives",
                f.display(),
                format!(
                    "{} is both a known-bad sample and a clean corpus file ({other}): a file is one or the other",
                    f.display()
                ),
            ));
        }
    }
    Ok(pos)
}

fn compile_baseline(s: &Run, opts: &CompileOptions, link: rules::Link) -> Result<Option<Ruleset>> {
    Ok(match &s.baseline {
        Baseline::None => None,
        Baseline::Paths(p) => Some(rules::compile_linked("baseline", p, opts, link)?),
        Baseline::GitRef(r) => {
            // The extracted files live until the baseline is compiled.
            let x = crate::rules::gitref::extract(r, &s.candidate, &opts.extensions)?;
            let root = x
                .dir
                .path()
                .canonicalize()
                .map_err(|e| Error::io(x.dir.path().display(), e.to_string()))?;
            Some(rules::compile_files_linked(
                "baseline",
                x.display_paths.clone(),
                &x.files,
                &[root],
                opts,
                link,
            )?)
        }
    })
}
