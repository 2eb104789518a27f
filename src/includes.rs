//! The include sandbox: `include` statements in rule files may only read
//! files under the rule paths given on the command line (a directory, or the
//! directory of a rule file). A candidate rule must not be able to pull
//! `/etc/passwd` into a compile error message on a CI runner.
//!
//! fpgate resolves every include the way yara-x will (relative to the
//! including file for nested includes; for top-level files, in the include
//! directories fpgate hands to yara-x, which are the directories of the
//! top-level rule files, all inside the roots), follows symlinks with
//! `canonicalize`, and refuses the ruleset (exit 2) when a target falls
//! outside the roots. Nothing is read from outside the roots.

use crate::error::{Error, Result};
use crate::yarasrc::{self, SourceInfo};
use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};

/// Included files larger than this are not analysed here (yara-x still
/// compiles them); their includes and identifiers are then not seen.
const MAX_ANALYSED: u64 = 64 << 20;

pub struct Plan {
    /// Directories to hand to yara-x as include directories, in order.
    pub include_dirs: Vec<PathBuf>,
    /// Identifiers used anywhere in included files.
    pub identifiers: BTreeSet<String>,
}

/// `roots`: canonical directories includes may read from.
/// `files`: (path on disk, name shown, lexer output) of the top-level files.
pub fn check(files: &[(PathBuf, String, &SourceInfo)], roots: &[PathBuf]) -> Result<Plan> {
    let mut include_dirs: Vec<PathBuf> = Vec::new();
    for (path, _, _) in files {
        if let Some(dir) = path
            .canonicalize()
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf))
        {
            if !include_dirs.contains(&dir) {
                include_dirs.push(dir);
            }
        }
    }
    let mut plan = Plan {
        include_dirs,
        identifiers: BTreeSet::new(),
    };
    let mut seen: HashSet<PathBuf> = HashSet::new();
    // (including file's directory, or None for a top-level file; shown name; includes)
    let mut work: Vec<(Option<PathBuf>, String, Vec<yarasrc::IncludeDecl>)> = files
        .iter()
        .map(|(_, shown, info)| (None, shown.clone(), info.includes.clone()))
        .collect();
    while let Some((dir, shown, includes)) = work.pop() {
        for inc in includes {
            let mut candidates: Vec<PathBuf> = Vec::new();
            if let Some(d) = &dir {
                candidates.push(d.join(&inc.target));
            }
            candidates.extend(plan.include_dirs.iter().map(|d| d.join(&inc.target)));
            let Some(target) = candidates.iter().find_map(|c| c.canonicalize().ok()) else {
                continue; // yara-x reports "include not found" itself
            };
            if !roots.iter().any(|r| target.starts_with(r)) {
                return Err(Error::usage(format!(
                    "{shown}:{}: include {:?} resolves outside the rule paths ({}); rules may only include files under the rule paths given",
                    inc.line,
                    inc.target,
                    roots.iter().map(|r| r.display().to_string()).collect::<Vec<_>>().join(", ")
                )));
            }
            if !seen.insert(target.clone()) {
                continue;
            }
            let small = std::fs::metadata(&target)
                .map(|m| m.is_file() && m.len() <= MAX_ANALYSED)
                .unwrap_or(false);
            if !small {
                continue;
            }
            if let Ok(bytes) = std::fs::read(&target) {
                let info = yarasrc::analyse(&String::from_utf8_lossy(&bytes));
                plan.identifiers.extend(info.identifiers.iter().cloned());
                work.push((
                    target.parent().map(Path::to_path_buf),
                    target.display().to_string(),
                    info.includes,
                ));
            }
        }
    }
    Ok(plan)
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
