//! `fpgate corpus fetch`: bring the recipe's artifacts into the corpus
//! store. Each download streams to a file in the store's `tmp/` while it is
//! hashed, and is moved into place only when its sha256 is its pin: nothing
//! parses an artifact before that, and nothing partial is ever used.
//!
//! Sources: URLs through a well-kept HTTP client (`http`), registry
//! coordinates through that ecosystem's own client (`registry`: pip, npm,
//! apt-get), neither running any of the package's code.

mod http;
mod registry;

use crate::corpus::recipe::{Artifact, Recipe, Source};
use crate::corpus::store::Store;
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Options {
    /// Downloads at once.
    pub jobs: usize,
    /// An HTTP download that receives nothing for this long fails; a
    /// registry client is stopped after ten times this.
    pub timeout: Duration,
    /// Use the store only: what it lacks is an error.
    pub offline: bool,
}

/// What a fetch did, per artifact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Done {
    /// Already in the store (verified).
    Present,
    /// Downloaded, verified and moved into place: this many bytes.
    Downloaded(u64),
}

/// A fetch's result: every artifact in recipe order.
#[derive(Debug)]
pub struct Summary {
    pub artifacts: Vec<(String, String, Done)>,
    /// Damaged store files that were replaced.
    pub replaced: Vec<String>,
}

impl Summary {
    pub fn downloaded(&self) -> (usize, u64) {
        self.artifacts
            .iter()
            .filter_map(|(_, _, d)| match d {
                Done::Downloaded(n) => Some(*n),
                Done::Present => None,
            })
            .fold((0, 0), |(k, b), n| (k + 1, b + n))
    }
}

/// Fetch every artifact the store lacks (`jobs` at a time). Any failure is
/// an error naming each failed artifact with its line in the recipe (exit
/// 2); what was verified before the failure stays in the store.
pub fn fetch_all(
    recipe: &Recipe,
    store: &Store,
    opts: &Options,
    progress: &indicatif::ProgressBar,
) -> Result<Summary> {
    let _held = store.lock()?;
    store.clear_temp()?;
    let mut todo = Vec::new();
    let mut done: Vec<Option<Done>> = vec![None; recipe.artifacts.len()];
    let mut replaced = Vec::new();
    let mut errors: Vec<(usize, String)> = Vec::new();
    for (i, a) in recipe.artifacts.iter().enumerate() {
        match store.verified(&a.sha256) {
            Ok(Some(_)) => done[i] = Some(Done::Present),
            Ok(None) => todo.push(i),
            // Damaged: never used; fetched again.
            Err(_) => {
                store.remove(&a.sha256)?;
                replaced.push(a.name.clone());
                todo.push(i);
            }
        }
    }
    if opts.offline {
        for &i in &todo {
            errors.push((i, "not in the store, and --offline was given".into()));
        }
        todo.clear();
    }
    progress.set_length(todo.len() as u64);
    let agent = http::agent(opts);
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, std::result::Result<u64, String>)>> = Mutex::new(Vec::new());
    let counter = AtomicU64::new(0);
    std::thread::scope(|scope| {
        for _ in 0..opts.jobs.clamp(1, 16).min(todo.len().max(1)) {
            scope.spawn(|| loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                let Some(&i) = todo.get(k) else { break };
                let a = &recipe.artifacts[i];
                progress.set_message(a.name.clone());
                let r = download(&agent, a, Some(&a.sha256), store, opts, &counter)
                    .map(|(_, size, _)| size);
                progress.inc(1);
                results
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((i, r));
            });
        }
    });
    progress.finish_and_clear();
    for (i, r) in results.into_inner().unwrap_or_else(|e| e.into_inner()) {
        match r {
            Ok(n) => done[i] = Some(Done::Downloaded(n)),
            Err(m) => errors.push((i, m)),
        }
    }
    if !errors.is_empty() {
        errors.sort();
        let (first, _) = errors[0];
        let mut msg = format!(
            "{} of {} artifact(s) of {} could not be fetched; nothing unverified was kept",
            errors.len(),
            recipe.artifacts.len(),
            recipe.file
        );
        for (i, m) in &errors {
            let a = &recipe.artifacts[*i];
            msg.push_str(&format!(
                "\n  {}:{}: {} ({}): {}",
                recipe.file,
                a.line,
                a.name,
                a.source.spelled(),
                crate::util::escape::term_multiline(m)
            ));
        }
        return Err(Error::Input {
            what: "recipe",
            file: recipe.file.clone(),
            line: Some(recipe.artifacts[first].line),
            column: None,
            message: msg,
        });
    }
    Ok(Summary {
        artifacts: recipe
            .artifacts
            .iter()
            .zip(done)
            .map(|(a, d)| (a.name.clone(), a.sha256.clone(), d.unwrap_or(Done::Present)))
            .collect(),
        replaced,
    })
}

/// Download one artifact into the store. With a pin, the download must
/// hash to it; without one (`corpus add`: trust on first use), it is kept
/// under whatever it hashes to. Returns (sha256, size, store path).
pub fn download(
    agent: &ureq::Agent,
    a: &Artifact,
    pin: Option<&str>,
    store: &Store,
    opts: &Options,
    counter: &AtomicU64,
) -> std::result::Result<(String, u64, PathBuf), String> {
    let tmp_dir = store.temp_dir().map_err(|e| e.to_string())?;
    let n = counter.fetch_add(1, Ordering::Relaxed);
    let part = tmp_dir.join(format!("{}-{n}.part", std::process::id()));
    let result = match &a.source {
        Source::Url(url) => http::to_file(agent, url, &part, opts),
        other => registry::to_file(other, &tmp_dir, &part, n, opts),
    };
    let (sha, size) = match result {
        Ok(x) => x,
        Err(m) => {
            let _ = std::fs::remove_file(&part);
            return Err(m);
        }
    };
    if let Some(pin) = pin {
        if sha != pin {
            let _ = std::fs::remove_file(&part);
            return Err(format!(
                "sha256 mismatch: pinned {pin}, downloaded {sha} ({size} bytes); the download was discarded (if the source changed on purpose, re-pin with `fpgate corpus add --replace`)"
            ));
        }
    }
    let dest = store.put(&part, &sha).map_err(|e| {
        let _ = std::fs::remove_file(&part);
        e.to_string()
    })?;
    Ok((sha, size, dest))
}

/// Hash a stream into `dest` as it is written: (sha256 hex, bytes).
fn stream_to(mut from: impl std::io::Read, dest: &Path) -> std::io::Result<(String, u64)> {
    use sha2::{Digest, Sha256};
    use std::io::Write;
    let mut out = std::fs::File::create(dest)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut n = 0u64;
    loop {
        let k = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        h.update(&buf[..k]);
        out.write_all(&buf[..k])?;
        n += k as u64;
    }
    out.flush()?;
    Ok((crate::util::hex::hex(&h.finalize()), n))
}

/// The agent `corpus add` uses for its one download.
pub fn agent(opts: &Options) -> ureq::Agent {
    http::agent(opts)
}
