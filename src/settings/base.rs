//! The policy at the base revision (`gate --baseline-ref REF`): fpgate.toml
//! and the exceptions file as they were at REF, read with `git show` (the
//! working tree is never touched). `settings::diff` compares the working
//! tree's policy with it.
//!
//! A pull request can edit its rules and, in the same commit, the policy
//! that judges them: the base's policy applies by default, the diff makes
//! every such edit visible, and `policy.changes = "block"` makes a relaxing
//! edit block.

use super::config::{self, Config};
use crate::error::Result;
use crate::rules::gitref::{text_at, top_of};
use crate::verdict::exceptions::{self, ExceptionSet};
use std::path::{Path, PathBuf};

/// The base revision's policy files.
pub struct BasePolicy {
    pub rev: String,
    /// The base's fpgate.toml (its `file` is `REF:path`, its `dir` the
    /// working tree's directory of that path), with its text.
    pub config: Option<(Config, String)>,
    /// The base's exceptions file: `REF:path` and text.
    pub exceptions: Option<(String, String)>,
}

/// `path` (in the working tree, existing or not) relative to `top`, with
/// `/` separators, as git names it.
fn relative(top: &Path, path: &Path) -> Option<String> {
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().ok()?.join(path)
    };
    // Canonicalize the directory (the file may not exist in the tree).
    let dir = abs.parent()?.canonicalize().ok()?;
    let full = dir.join(abs.file_name()?);
    let rel = full.strip_prefix(top).ok()?;
    let parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_str().map(str::to_string))
        .collect::<Option<_>>()?;
    Some(parts.join("/"))
}

/// Read the base's fpgate.toml (at the working tree config's path, or
/// `fpgate.toml` in the current directory when there is none) and its
/// exceptions file. A config at REF that does not parse is an error naming
/// `REF:path` and the line; no config at REF is "no base policy".
pub fn read(rev: &str, head: &Config, exceptions_flag: Option<&Path>) -> Result<BasePolicy> {
    let top = top_of(rev)?;
    let cfg_path = head
        .file
        .clone()
        .unwrap_or_else(|| PathBuf::from(config::FILE_NAME));
    let config = match relative(&top, &cfg_path) {
        Some(rel) => match text_at(&top, rev, &rel)? {
            Some(text) => {
                let shown = format!("{rev}:{rel}");
                let mut c = config::parse(&text, Path::new(&shown))?;
                c.dir = head.dir.clone();
                c.file = Some(PathBuf::from(shown));
                Some((c, text))
            }
            None => None,
        },
        None => None,
    };
    // The base's exceptions file: the flag's path (the command line is
    // the CI's, not the change's), else what the base config names, else
    // the default beside it.
    let exc_path = match (exceptions_flag, config.as_ref().map(|c| &c.0)) {
        (Some(p), _) => p.to_path_buf(),
        (None, Some(c)) => c.resolve(
            c.exceptions
                .file
                .as_deref()
                .unwrap_or(Path::new(exceptions::DEFAULT_FILE)),
        ),
        (None, None) => head.resolve(Path::new(exceptions::DEFAULT_FILE)),
    };
    let exceptions = match relative(&top, &exc_path) {
        Some(rel) => text_at(&top, rev, &rel)?.map(|t| (format!("{rev}:{rel}"), t)),
        None => None,
    };
    Ok(BasePolicy {
        rev: rev.to_string(),
        config,
        exceptions,
    })
}

/// A working-tree path's file as it is at `rev`: `REF:path` and its text
/// (None: no such file there).
pub fn file_at(rev: &str, path: &Path) -> Result<Option<(String, String)>> {
    let top = top_of(rev)?;
    match relative(&top, path) {
        Some(rel) => Ok(text_at(&top, rev, &rel)?.map(|t| (format!("{rev}:{rel}"), t))),
        None => Ok(None),
    }
}

impl BasePolicy {
    /// The base's exceptions, parsed (errors name `REF:path:line`).
    pub fn exception_set(&self) -> Result<Option<ExceptionSet>> {
        self.exceptions
            .as_ref()
            .map(|(name, text)| exceptions::parse(text, Path::new(name)))
            .transpose()
    }

    /// The base's config, or an empty one where the working tree's is
    /// (first adoption: no policy at the base).
    pub fn into_config(self, head: &Config) -> Config {
        match self.config {
            Some((c, _)) => c,
            None => Config {
                dir: head.dir.clone(),
                ..Default::default()
            },
        }
    }
}
