//! Rule paths to rule files: directories walked for `*.yar` / `*.yara` (or
//! the configured extensions),
//! symbolic links and special files judged (nothing is skipped without a
//! word), and each file read within its size limit.

use crate::error::{Error, Result};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The extensions of rule files in a rule directory (`rules.extensions` of
/// fpgate.toml): `yar` and `yara` unless configured. Compared without case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extensions(Vec<String>);

impl Default for Extensions {
    fn default() -> Self {
        Extensions(vec!["yar".into(), "yara".into()])
    }
}

impl Extensions {
    /// The configured list (a leading dot is allowed); `Err` says why not.
    pub fn new(list: &[String]) -> std::result::Result<Extensions, String> {
        let mut out = Vec::new();
        for e in list {
            let e = e.strip_prefix('.').unwrap_or(e);
            if e.is_empty() || e.contains(['/', '.', '*']) || e.trim() != e {
                return Err(format!(
                    "{e:?} is not a file extension (write yar, yara, rule...)"
                ));
            }
            out.push(e.to_ascii_lowercase());
        }
        if out.is_empty() {
            return Err("the list is empty: no file would be a rule file".into());
        }
        Ok(Extensions(out))
    }

    /// True for a rule file's name.
    pub fn matches(&self, p: &Path) -> bool {
        p.extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| self.0.iter().any(|x| e.eq_ignore_ascii_case(x)))
    }

    /// `*.yar or *.yara`, for messages.
    fn globs(&self) -> String {
        let g: Vec<String> = self.0.iter().map(|e| format!("*.{e}")).collect();
        match g.split_last() {
            Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
            _ => g.join(""),
        }
    }
}

/// Expand rule paths into a sorted list of rule files.
///
/// Nothing under a rule directory is skipped without a word: a symbolic
/// link named like a rule file is compiled when its target is a regular
/// file under the rule paths, and refused (exit 2) when it points outside
/// them, dangles or loops; a FIFO, socket or device named like a rule file
/// is refused; a linked directory that leads outside the rule paths is
/// refused. A file reached twice (a link to a rule file that is compiled
/// anyway) is compiled once, under its first name in sorted order.
pub fn collect_rule_files(paths: &[PathBuf], exts: &Extensions) -> Result<Vec<PathBuf>> {
    let roots = crate::rules::includes::roots(paths);
    let mut files = BTreeSet::new();
    for p in paths {
        let meta = std::fs::metadata(p).map_err(|e| {
            Error::rule_file(p.display(), format!("rule path {}: {e}", p.display()))
        })?;
        if meta.is_dir() {
            collect_dir(p, &roots, exts, &mut files)?;
        } else if !meta.is_file() {
            return Err(not_regular(p));
        } else {
            files.insert(p.clone());
        }
    }
    Ok(once_each(files))
}

/// The rule files under directory `p`; a directory without any is refused.
fn collect_dir(
    p: &Path,
    roots: &[PathBuf],
    exts: &Extensions,
    files: &mut BTreeSet<PathBuf>,
) -> Result<()> {
    let before = files.len();
    for entry in walkdir::WalkDir::new(p).sort_by_file_name() {
        let entry = entry.map_err(|e| {
            Error::rule_file(p.display(), format!("rule path {}: {e}", p.display()))
        })?;
        let (path, ft) = (entry.path(), entry.file_type());
        if ft.is_dir() {
            continue;
        }
        if ft.is_symlink() {
            if linked_rule_file(path, roots, exts)? {
                files.insert(path.to_path_buf());
            }
            continue;
        }
        if !exts.matches(path) {
            continue;
        }
        if !ft.is_file() {
            return Err(not_regular(path));
        }
        files.insert(path.to_path_buf());
    }
    if files.len() == before {
        return Err(Error::rule_file(
            p.display(),
            format!(
                "rule directory {} holds no {} files",
                p.display(),
                exts.globs()
            ),
        ));
    }
    Ok(())
}

/// A symbolic link in a rule directory: is it a rule file to compile? A
/// link named like a rule file must resolve to a regular file under the
/// rule paths; a linked directory must lead inside them (its files are
/// walked there); anything else named like a rule file is refused.
fn linked_rule_file(path: &Path, roots: &[PathBuf], exts: &Extensions) -> Result<bool> {
    let target = path.canonicalize().map_err(|e| {
        Error::rule_file(
            path.display(),
            format!(
                "rule path {}: a symbolic link that does not resolve ({e})",
                path.display()
            ),
        )
    });
    let is_dir = std::fs::metadata(path).is_ok_and(|m| m.is_dir());
    if !exts.matches(path) && !is_dir {
        return Ok(false);
    }
    let target = target?;
    if !roots.iter().any(|r| target.starts_with(r)) {
        return Err(Error::rule_file(path.display(), format!(
            "rule path {} is a symbolic link to {}, outside the rule paths; the gate would judge other rules than the ones that ship",
            path.display(),
            target.display()
        )));
    }
    if is_dir {
        return Ok(false);
    }
    if !std::fs::metadata(&target).is_ok_and(|m| m.is_file()) {
        return Err(Error::rule_file(
            path.display(),
            format!(
                "rule path {} links to {}, which is not a regular file",
                path.display(),
                target.display()
            ),
        ));
    }
    Ok(true)
}

fn not_regular(p: &Path) -> Error {
    Error::rule_file(
        p.display(),
        format!(
            "rule path {} is not a regular file (a FIFO, socket or device)",
            p.display()
        ),
    )
}

/// One file reached under two names is compiled once, under its first
/// name in sorted order (with a note on stderr).
fn once_each(files: BTreeSet<PathBuf>) -> Vec<PathBuf> {
    let mut seen: std::collections::HashMap<PathBuf, PathBuf> = std::collections::HashMap::new();
    let mut out = Vec::new();
    for f in files {
        match f.canonicalize() {
            Ok(c) => match seen.get(&c) {
                Some(first) => eprintln!(
                    "fpgate: rule file {} is the same file as {}; compiled once",
                    f.display(),
                    first.display()
                ),
                None => {
                    seen.insert(c, f.clone());
                    out.push(f);
                }
            },
            Err(_) => out.push(f),
        }
    }
    out
}

/// Read one rule file: a regular file of at most `MAX_RULE_FILE` bytes
/// (never a FIFO, which would block the read).
pub(crate) fn read_rule_file(f: &std::path::Path, shown: &str) -> Result<Vec<u8>> {
    use std::io::Read;
    let limit = crate::rules::includes::MAX_RULE_FILE;
    let meta = std::fs::metadata(f)
        .map_err(|e| Error::rule_file(shown, format!("cannot read rule file {shown}: {e}")))?;
    if !meta.is_file() {
        return Err(Error::rule_file(
            shown,
            format!("rule file {shown} is not a regular file"),
        ));
    }
    let mut bytes = Vec::new();
    std::fs::File::open(f)
        .and_then(|h| h.take(limit + 1).read_to_end(&mut bytes))
        .map_err(|e| Error::rule_file(shown, format!("cannot read rule file {shown}: {e}")))?;
    if bytes.len() as u64 > limit {
        return Err(Error::rule_file(
            shown,
            format!("rule file {shown} is larger than {} MiB", limit >> 20),
        ));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions() {
        let d = Extensions::default();
        assert!(d.matches(Path::new("a/b.YAR")) && d.matches(Path::new("x.yara")));
        assert!(!d.matches(Path::new("x.rule")) && !d.matches(Path::new("yar")));
        assert_eq!(d.globs(), "*.yar or *.yara");
        let e = Extensions::new(&[".rule".into(), "Yar".into(), "yara".into()]).unwrap();
        assert!(e.matches(Path::new("x.rule")) && e.matches(Path::new("x.yar")));
        assert_eq!(e.globs(), "*.rule, *.yar or *.yara");
        for bad in ["", "*.yar", "a/b", " yar", "tar.gz"] {
            assert!(Extensions::new(&[bad.into()]).is_err(), "{bad:?}");
        }
        assert!(Extensions::new(&[]).is_err());
    }
}
