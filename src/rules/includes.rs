//! The include sandbox: `include` statements in rule files may only read
//! files under the rule paths given (a directory, or the directory of a rule
//! file). A rule in a pull request must not be able to pull `/etc/passwd` or
//! `/proc/self/environ` into a compile error on a CI runner.
//!
//! Every include statement is found with the engine's own parser (see
//! `rules::source`), in every top-level file and, recursively, in every file they
//! include, so fpgate sees exactly the include statements the compiler will
//! act on. Each is resolved the way yara-x resolves it (for a nested
//! include, first beside the including file, then in the include
//! directories; for a top-level file, in the include directories fpgate
//! hands to yara-x, which are the directories of the top-level rule files),
//! following symlinks with `canonicalize`. The ruleset is refused (exit 2)
//! when a candidate the compiler would open lies outside the roots, is not
//! a regular file (a FIFO would hang the compiler, a device would feed it
//! without end), or is larger than a rule file may be. Nothing is read from
//! outside the roots.

use crate::error::{Error, Result};
use crate::rules::source::{self, SourceInfo};
use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The largest rule file (top-level or included) fpgate reads.
pub const MAX_RULE_FILE: u64 = 64 << 20;

/// One file reached through `include`.
pub struct Included {
    /// The name yara-x gives it in diagnostics (canonical path, relative to
    /// the current directory when under it).
    pub origin: String,
    pub path: PathBuf,
    pub bytes: Vec<u8>,
    pub info: SourceInfo,
}

pub struct Plan {
    /// Every file the compiler will include, each once, in the order first
    /// reached.
    pub included: Vec<Included>,
}

/// How yara-x names an included file: its canonical path, relative to the
/// current directory when under it.
fn origin_of(canonical: &Path) -> String {
    let rel = std::env::current_dir()
        .and_then(|d| d.canonicalize())
        .ok()
        .and_then(|cwd| canonical.strip_prefix(cwd).ok().map(Path::to_path_buf));
    rel.unwrap_or_else(|| canonical.to_path_buf())
        .to_string_lossy()
        .replace('\\', "/")
}

fn outside(roots: &[PathBuf]) -> String {
    roots
        .iter()
        .map(|r| r.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The version-control metadata component (`.git`...) of the canonical
/// `path` below the rule path it lies under, if any: a rule path may be a
/// whole checkout, whose `.git/config` holds a CI job's token.
pub fn in_metadata(path: &Path, roots: &[PathBuf]) -> Option<String> {
    let root = roots.iter().find(|r| path.starts_with(r))?;
    crate::util::paths::vcs_component(path.strip_prefix(root).ok()?)
}

/// Resolve one include statement as yara-x will: the first candidate that
/// canonicalizes and reads. Refuses a candidate outside the roots or one
/// that is not a plain, bounded file before anything is read from it.
fn resolve(
    candidates: &[PathBuf],
    roots: &[PathBuf],
    at: &str,
    target: &str,
) -> Result<Option<(PathBuf, Vec<u8>)>> {
    for c in candidates {
        let Ok(canon) = c.canonicalize() else {
            continue;
        };
        if !roots.iter().any(|r| canon.starts_with(r)) {
            return Err(Error::rule_file(at, format!(
                "{at}: include {target:?} resolves outside the rule paths ({}); rules may only include files under the rule paths given",
                outside(roots)
            )));
        }
        if let Some(v) = in_metadata(&canon, roots) {
            return Err(Error::rule_file(
                at,
                format!(
                "{at}: include {target:?} resolves into version-control metadata ({v}); refused"
            ),
            ));
        }
        let Ok(meta) = std::fs::metadata(&canon) else {
            continue;
        };
        if meta.is_dir() {
            continue; // yara-x cannot read a directory and tries the next one
        }
        if !meta.is_file() {
            return Err(Error::rule_file(
                at,
                format!(
                    "{at}: include {target:?} is not a regular file ({}); refused",
                    canon.display()
                ),
            ));
        }
        if meta.len() > MAX_RULE_FILE {
            return Err(Error::rule_file(
                at,
                format!(
                    "{at}: include {target:?} is larger than {} MiB; refused",
                    MAX_RULE_FILE >> 20
                ),
            ));
        }
        let mut bytes = Vec::new();
        let read = std::fs::File::open(&canon)
            .and_then(|f| f.take(MAX_RULE_FILE + 1).read_to_end(&mut bytes));
        if read.is_err() {
            continue;
        }
        if bytes.len() as u64 > MAX_RULE_FILE {
            return Err(Error::rule_file(
                at,
                format!(
                    "{at}: include {target:?} grew past {} MiB while read; refused",
                    MAX_RULE_FILE >> 20
                ),
            ));
        }
        return Ok(Some((canon, bytes)));
    }
    Ok(None) // yara-x reports "include not found" itself
}

/// The compiler's include directories: the directory of each top-level
/// file, in order, each once.
pub fn include_dirs<'a>(files: impl Iterator<Item = &'a Path>) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    for path in files {
        if let Some(dir) = path
            .canonicalize()
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf))
        {
            if !out.contains(&dir) {
                out.push(dir);
            }
        }
    }
    out
}

/// `roots`: canonical directories includes may read from.
/// `files`: (path on disk, name shown, parser output) of the top-level files.
/// `include_dirs`: the directories the compiler is given (`include_dirs`
/// of every top-level file of the set, all namespaces).
pub fn check(
    files: &[(PathBuf, String, &SourceInfo)],
    include_dirs: &[PathBuf],
    roots: &[PathBuf],
) -> Result<Plan> {
    let mut included: Vec<Included> = Vec::new();
    let mut seen: HashSet<PathBuf> = HashSet::new();
    // (including file when nested, its shown name, its include statements)
    let mut work: Vec<(Option<PathBuf>, String, Vec<source::IncludeDecl>)> = files
        .iter()
        .rev()
        .map(|(_, shown, info)| (None, shown.clone(), info.includes.clone()))
        .collect();
    while let Some((from, shown, includes)) = work.pop() {
        let mut nested = Vec::new();
        for inc in includes {
            let mut candidates: Vec<PathBuf> = Vec::new();
            if let Some(dir) = from.as_deref().and_then(Path::parent) {
                candidates.push(dir.join(&inc.target));
            }
            candidates.extend(include_dirs.iter().map(|d| d.join(&inc.target)));
            let at = format!("{shown}:{}", inc.line);
            let Some((target, bytes)) = resolve(&candidates, roots, &at, &inc.target)? else {
                continue;
            };
            if !seen.insert(target.clone()) {
                continue;
            }
            let info = source::analyse(&bytes);
            let origin = origin_of(&target);
            nested.push((Some(target.clone()), origin.clone(), info.includes.clone()));
            included.push(Included {
                origin,
                path: target,
                bytes,
                info,
            });
        }
        // Depth-first, in statement order.
        work.extend(nested.into_iter().rev());
    }
    Ok(Plan { included })
}

/// The directories includes may read from: each rule directory given, and
/// the directory of each rule file given.
pub fn roots(paths: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for p in paths {
        if let Ok(c) = p.canonicalize() {
            let root = if c.is_dir() {
                c
            } else {
                c.parent().map(Path::to_path_buf).unwrap_or(c)
            };
            if !out.contains(&root) {
                out.push(root);
            }
        }
    }
    out
}

/// True when `origin` (a diagnostic's file name) is a file under the roots,
/// or one of the top-level files. Diagnostics that point anywhere else are
/// not echoed (defence in depth: the check above already keeps the compiler
/// from opening such a file).
pub fn origin_allowed(origin: &str, tops: &[String], roots: &[PathBuf]) -> bool {
    if tops.iter().any(|t| t == origin) {
        return true;
    }
    Path::new(origin)
        .canonicalize()
        .is_ok_and(|c| roots.iter().any(|r| c.starts_with(r)))
}
