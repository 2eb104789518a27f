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

/// A rule path as given on the command line or in fpgate.toml:
/// `[NAMESPACE:]PATH`, as `yr` takes it. The rules of a path with a
/// namespace are compiled into that namespace; the others into `default`.
/// A prefix holding `/` is part of the path (write `./a:b.yar` for a file
/// whose name has a colon).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RulePath {
    pub namespace: Option<String>,
    pub path: PathBuf,
}

impl RulePath {
    pub fn plain(path: impl Into<PathBuf>) -> RulePath {
        RulePath {
            namespace: None,
            path: path.into(),
        }
    }

    /// The namespace its rules go into.
    pub fn ns(&self) -> &str {
        self.namespace.as_deref().unwrap_or(DEFAULT_NAMESPACE)
    }

    /// The same path elsewhere (resolved against a directory), same namespace.
    pub fn with_path(&self, path: PathBuf) -> RulePath {
        RulePath {
            namespace: self.namespace.clone(),
            path,
        }
    }
}

/// The namespace of rules given without one (yara-x's and yr's name).
pub const DEFAULT_NAMESPACE: &str = "default";

impl std::str::FromStr for RulePath {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<RulePath, String> {
        match s.split_once(':') {
            Some((ns, path)) if !ns.contains('/') => {
                if ns.is_empty() || path.is_empty() {
                    return Err(format!(
                        "{s:?}: write NAMESPACE:PATH with both parts, or ./{s} for a path"
                    ));
                }
                if !ns
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
                {
                    return Err(format!(
                        "{s:?}: namespace {ns:?} may hold letters, digits, `_`, `.` and `-` only (write ./{s} for a path)"
                    ));
                }
                Ok(RulePath {
                    namespace: Some(ns.to_string()),
                    path: PathBuf::from(path),
                })
            }
            _ => Ok(RulePath::plain(s)),
        }
    }
}

impl<'de> serde::Deserialize<'de> for RulePath {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<RulePath, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl std::fmt::Display for RulePath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{ns}:{}", self.path.display()),
            None => write!(f, "{}", self.path.display()),
        }
    }
}

/// The rule paths in groups of one namespace each, in the order given, as
/// yr compiles them (a path switches the compiler to its namespace). A
/// namespace given again after another one would be a second namespace of
/// the same name in yara-x, whose rules cannot see the first one's: refused.
pub fn namespace_groups(paths: &[RulePath]) -> Result<Vec<(String, Vec<PathBuf>)>> {
    let mut groups: Vec<(String, Vec<PathBuf>)> = Vec::new();
    for p in paths {
        match groups.last_mut() {
            Some((ns, list)) if ns == p.ns() => list.push(p.path.clone()),
            _ => {
                if groups.iter().any(|(ns, _)| ns == p.ns()) {
                    return Err(Error::usage(format!(
                        "rule path {p}: namespace {:?} was given before, with other namespaces between; \
                         give the paths of one namespace side by side (yara-x would make two namespaces of that name)",
                        p.ns()
                    )));
                }
                groups.push((p.ns().to_string(), vec![p.path.clone()]));
            }
        }
    }
    Ok(groups)
}

/// Every rule file under `paths`, with its namespace: namespace by
/// namespace in the order given, sorted within each.
pub fn collect_namespaced(paths: &[RulePath], exts: &Extensions) -> Result<Vec<(String, PathBuf)>> {
    let all: Vec<PathBuf> = paths.iter().map(|p| p.path.clone()).collect();
    let mut out = Vec::new();
    for (ns, group) in namespace_groups(paths)? {
        for f in collect_rule_files_within(&group, &all, exts)? {
            out.push((ns.clone(), f));
        }
    }
    Ok(out)
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
    collect_rule_files_within(paths, paths, exts)
}

/// `collect_rule_files` of `paths`, links allowed to lead anywhere under
/// `all` (every rule path of the set).
fn collect_rule_files_within(
    paths: &[PathBuf],
    all: &[PathBuf],
    exts: &Extensions,
) -> Result<Vec<PathBuf>> {
    let roots = crate::rules::includes::roots(all);
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
    // Version-control metadata under a rule directory (a whole checkout
    // given as rules) holds no rules, and may hold a CI job's token.
    let walker = walkdir::WalkDir::new(p)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| e.depth() == 0 || !crate::util::paths::is_vcs_name(e.file_name()));
    for entry in walker {
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
    if let Some(v) = crate::rules::includes::in_metadata(&target, roots) {
        return Err(Error::rule_file(
            path.display(),
            format!(
                "rule path {} is a symbolic link into version-control metadata ({v}): {}; refused",
                path.display(),
                target.display()
            ),
        ));
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

    #[test]
    fn rule_paths_with_and_without_namespaces() {
        let p = |s: &str| s.parse::<RulePath>();
        assert_eq!(p("rules/a").unwrap(), RulePath::plain("rules/a"));
        let ns = p("team_a:rules/a").unwrap();
        assert_eq!(
            (ns.ns(), ns.path.as_path()),
            ("team_a", Path::new("rules/a"))
        );
        assert_eq!(ns.to_string(), "team_a:rules/a");
        assert_eq!(p("./x:y.yar").unwrap(), RulePath::plain("./x:y.yar"));
        assert_eq!(p("/abs/x:y").unwrap(), RulePath::plain("/abs/x:y"));
        for bad in [":a", "ns:", "a b:c", "ns$:c"] {
            assert!(p(bad).is_err(), "{bad}");
        }
        let groups = |v: &[&str]| {
            namespace_groups(&v.iter().map(|s| p(s).unwrap()).collect::<Vec<_>>())
                .map(|g| g.into_iter().map(|(n, l)| (n, l.len())).collect::<Vec<_>>())
        };
        assert_eq!(
            groups(&["a", "b", "x:c", "x:d", "y:e"]).unwrap(),
            [
                ("default".to_string(), 2),
                ("x".to_string(), 2),
                ("y".to_string(), 1)
            ]
        );
        // `default` again after `x`: two namespaces of one name in yara-x.
        assert!(groups(&["a", "x:c", "e"]).is_err());
        assert!(groups(&["x:a", "y:c", "x:e"]).is_err());
    }
}
