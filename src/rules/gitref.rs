//! `--baseline-ref`: the baseline ruleset is the same rule paths at a git
//! revision of the current repository (say, a pull request's merge base),
//! so CI needs no second checkout. Files are read with `git show` into a
//! temporary directory (keeping their layout, so relative includes work)
//! and reported as `REF:path`.

use crate::error::{Error, Result};
use crate::rules::{RuleFile, RulePath};
use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Extracted {
    /// Keeps the extracted files alive while the ruleset compiles.
    pub dir: tempfile::TempDir,
    /// Namespace by namespace, as the paths give them.
    pub files: Vec<RuleFile>,
    pub display_paths: Vec<String>,
}

fn git(dir: &Path, args: &[&str]) -> Result<Vec<u8>> {
    let out = Command::new("git")
        .current_dir(dir)
        .args(args)
        .output()
        .map_err(|e| Error::git(None, format!("--baseline-ref needs git: {e}")))?;
    if !out.status.success() {
        return Err(Error::git(
            None,
            format!(
                "git {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        ));
    }
    Ok(out.stdout)
}

/// The top directory of the current repository, with `rev` checked to be
/// one of its commits (an error naming `rev` otherwise).
pub fn top_of(rev: &str) -> Result<PathBuf> {
    if rev.starts_with('-') {
        return Err(Error::git(
            Some(rev),
            format!("--baseline-ref {rev:?} is not a revision"),
        ));
    }
    let cwd = std::env::current_dir().map_err(|e| Error::io(".", e.to_string()))?;
    let top = String::from_utf8_lossy(&git(&cwd, &["rev-parse", "--show-toplevel"])?)
        .trim()
        .to_string();
    let top = PathBuf::from(top)
        .canonicalize()
        .map_err(|e| Error::git(Some(rev), format!("git top level: {e}")))?;
    let commit = format!("{rev}^{{commit}}");
    git(&top, &["rev-parse", "--verify", "--quiet", &commit]).map_err(|_| {
        Error::git(
            Some(rev),
            format!(
                "--baseline-ref {rev:?}: no such revision in {}",
                top.display()
            ),
        )
    })?;
    Ok(top)
}

/// The text of the file `rel` (relative to the repository's top, `/`
/// separated) at `rev`, or None when it does not exist there.
pub fn text_at(top: &Path, rev: &str, rel: &str) -> Result<Option<String>> {
    let spec = format!("{rev}:{rel}");
    if git(top, &["cat-file", "-e", &spec]).is_err() {
        return Ok(None);
    }
    let bytes = git(top, &["show", &spec])?;
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| Error::input("git file", &spec, format!("{spec} is not UTF-8 text")))
}

/// Extract the rule files under `paths` as they were at `rev`.
pub fn extract(
    rev: &str,
    paths: &[RulePath],
    exts: &crate::rules::Extensions,
) -> Result<Extracted> {
    let top = top_of(rev)?;
    let dir = tempfile::tempdir()
        .map_err(|e| Error::io("temporary directory", format!("temporary directory: {e}")))?;
    let mut files: Vec<RuleFile> = Vec::new();
    let mut display_paths = Vec::new();
    for (namespace, group) in crate::rules::files::namespace_groups(paths)? {
        let mut mine = Vec::new();
        for p in &group {
            let (shown, found) = extract_path(rev, &top, p, dir.path(), exts)?;
            display_paths.push(match namespace.as_str() {
                crate::rules::DEFAULT_NAMESPACE => shown,
                ns => format!("{ns}:{shown}"),
            });
            mine.extend(found);
        }
        mine.sort_by(|a, b| a.1.cmp(&b.1));
        mine.dedup_by(|a, b| a.1 == b.1);
        files.extend(mine.into_iter().map(|(disk, shown)| RuleFile {
            disk,
            shown,
            namespace: namespace.clone(),
        }));
    }
    Ok(Extracted {
        dir,
        files,
        display_paths,
    })
}

/// The rule files of one rule path at `rev`, written under `dir`: the name
/// reports give the path, and each file (on disk, shown).
fn extract_path(
    rev: &str,
    top: &Path,
    p: &Path,
    dir: &Path,
    exts: &crate::rules::Extensions,
) -> Result<(String, Vec<(PathBuf, String)>)> {
    let mut files = Vec::new();
    let abs = p
        .canonicalize()
        .map_err(|e| Error::rule_file(p.display(), format!("rule path {}: {e}", p.display())))?;
    let rel = abs.strip_prefix(top).map_err(|_| {
        Error::git(
            Some(rev),
            format!(
                "rule path {} is outside the git repository {}",
                p.display(),
                top.display()
            ),
        )
    })?;
    let rel_s = rel.to_string_lossy().replace('\\', "/");
    let shown = format!("{rev}:{rel_s}");
    let spec = if rel_s.is_empty() {
        ".".to_string()
    } else {
        rel_s.clone()
    };
    let listing = git(
        top,
        &["ls-tree", "-r", "-z", "--name-only", rev, "--", &spec],
    )?;
    let is_dir = abs.is_dir();
    for name in listing.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let name = String::from_utf8_lossy(name).into_owned();
        if is_dir && !exts.matches(std::path::Path::new(&name)) {
            continue;
        }
        let content = git(top, &["show", &format!("{rev}:{name}")])?;
        let dest = dir.join(&name);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| Error::io(parent.display(), e.to_string()))?;
        }
        std::fs::write(&dest, content).map_err(|e| Error::io(dest.display(), e.to_string()))?;
        files.push((dest, format!("{rev}:{name}")));
    }
    Ok((shown, files))
}
