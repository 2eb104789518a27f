//! Walking the corpus roots into a sorted list of files to scan, and a list
//! of entries that will not be scanned (with the reason). Nothing is opened
//! here; special files are recognised from their metadata so a FIFO is never
//! opened, and symlinks are only followed when asked (walkdir detects loops).

use super::{display, Corpus, CorpusFile, Reason, Unscanned};
use crate::error::{Error, Result};
use std::collections::BTreeMap;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Default)]
pub struct WalkOptions {
    pub follow_symlinks: bool,
    /// Globs of critical files, matched against the root-relative path and
    /// the reported path.
    pub critical: Vec<String>,
    /// Globs of entries that are not part of the corpus at all (matched like
    /// `critical`); an excluded directory is not entered.
    pub exclude: Vec<String>,
}

/// Name of the provenance manifest a corpus root may hold: tab-separated,
/// with a header naming at least `path`; a `tier` column marks files
/// `critical`.
pub const MANIFEST: &str = "MANIFEST";

/// Compile the `kind` globs (critical, exclude) into one matcher.
pub(super) fn glob_set(kind: &str, globs: &[String]) -> Result<globset::GlobSet> {
    let mut builder = globset::GlobSetBuilder::new();
    for g in globs {
        builder.add(
            globset::Glob::new(g)
                .map_err(|e| Error::corpus(None, format!("{kind} glob {g:?}: {e}")))?,
        );
    }
    builder
        .build()
        .map_err(|e| Error::corpus(None, format!("{kind} globs: {e}")))
}

/// List the corpus. A root that does not exist, or a corpus with no regular
/// file at all, is an error (exit 2): a gate over nothing must never pass.
pub fn walk(roots: &[PathBuf], opts: &WalkOptions) -> Result<Corpus> {
    let globs = glob_set("critical", &opts.critical)?;
    let excluded = glob_set("exclude", &opts.exclude)?;
    let mut files: Vec<CorpusFile> = Vec::new();
    let mut skipped: BTreeMap<String, Unscanned> = BTreeMap::new();
    let mut skip = |path: &Path, reason: Reason, detail: String| {
        let p = display(path);
        skipped.entry(p.clone()).or_insert(Unscanned {
            path: p,
            reason,
            detail,
            components: None,
        });
    };

    // Where followed links may lead: into a root (the roots themselves were
    // confined when the settings were made).
    let allowed: Vec<PathBuf> = roots.iter().filter_map(|r| r.canonicalize().ok()).collect();
    for root in roots {
        if std::fs::symlink_metadata(root).is_err() {
            return Err(Error::corpus(
                Some(&display(root)),
                format!("corpus path {} does not exist", display(root)),
            ));
        }
        let manifest_critical = manifest_tiers(&root.join(MANIFEST))?;
        // Entries the filter below leaves out with a reason (it cannot
        // borrow `skip`, which the loop uses).
        let refused = std::cell::RefCell::new(Vec::new());
        // A root is followed even if it is a link: it was resolved and
        // confined when the settings were made.
        let walker = walkdir::WalkDir::new(root)
            .follow_links(opts.follow_symlinks)
            .follow_root_links(true)
            .sort_by_file_name();
        let walker = walker.into_iter().filter_entry(|e| {
            if e.depth() == 0 {
                return true;
            }
            if !excluded.is_empty() {
                let rel = e.path().strip_prefix(root).map(display).unwrap_or_default();
                if excluded.is_match(&rel) || excluded.is_match(display(e.path())) {
                    return false;
                }
            }
            match confined(e, &allowed) {
                None => true,
                Some(why) => {
                    refused.borrow_mut().push((e.path().to_path_buf(), why));
                    false
                }
            }
        });
        for entry in walker {
            match entry {
                Ok(e) if e.file_type().is_dir() => {}
                Ok(e) if e.file_type().is_file() => {
                    files.push(corpus_file(e, root, &manifest_critical, &globs));
                }
                Ok(e) if e.file_type().is_symlink() => skip(
                    e.path(),
                    Reason::Symlink,
                    "symbolic link not followed (use --follow-symlinks)".into(),
                ),
                Ok(e) => {
                    let kind = special_kind(e.file_type());
                    skip(e.path(), Reason::NotRegular, format!("{kind}, not opened"));
                }
                Err(err) => {
                    let (path, reason, detail) = walk_error(&err, root);
                    skip(&path, reason, detail);
                }
            }
        }
        // After the walk: the filter may leave out the last entries.
        for (path, (reason, detail)) in refused.into_inner() {
            skip(&path, reason, detail);
        }
    }
    if files.is_empty() {
        return Err(empty_corpus(roots, &skipped));
    }
    // Sorted by the reported path; a path reached from two roots is listed
    // once, as the later root has it (the sort is stable, and equal paths are
    // next to each other). Two non-UTF-8 paths shown alike are two files,
    // both scanned.
    sort_files(&mut files);

    Ok(Corpus {
        roots: roots.iter().map(|r| display(r)).collect(),
        files,
        skipped: skipped.into_values().collect(),
        listed: Vec::new(),
        recipe: None,
        signed: Default::default(),
        catalogs: Default::default(),
    })
}

/// Sorted by the reported path; a path reached from two roots is listed
/// once, as the later root has it (the sort is stable, and equal paths are
/// next to each other). Two non-UTF-8 paths shown alike are two files,
/// both scanned.
pub(super) fn sort_files(files: &mut Vec<CorpusFile>) {
    files.sort_by(|a, b| {
        let by_path = || a.path().as_os_str().cmp(b.path().as_os_str());
        a.display().cmp(b.display()).then_with(by_path)
    });
    files.dedup_by(|later, kept| {
        let same = later.path().as_os_str() == kept.path().as_os_str();
        if same {
            std::mem::swap(later, kept);
        }
        same
    });
    files.shrink_to_fit();
}

/// Why an entry below a root may not be read, if it may not: it is
/// version-control metadata, or a followed link that resolves outside every
/// root (`allowed`, canonical) or into metadata or a pseudo file system.
fn confined(e: &walkdir::DirEntry, allowed: &[PathBuf]) -> Option<(Reason, String)> {
    use crate::util::paths::{is_pseudo, is_vcs_name, vcs_component};
    if is_vcs_name(e.file_name()) {
        return Some((
            Reason::VcsMetadata,
            "version-control metadata, not read (leave it out with corpus.exclude)".into(),
        ));
    }
    // Only a link that is followed leads anywhere (one that is not is
    // unscanned as a link).
    if !e.path_is_symlink() || e.file_type().is_symlink() {
        return None;
    }
    let target = match e.path().canonicalize() {
        Ok(t) => t,
        // Dangling links and loops are the walk's own errors.
        Err(_) => return None,
    };
    let inside = allowed
        .iter()
        .find(|r| target.starts_with(r))
        .filter(|r| !is_pseudo(&target) || is_pseudo(r));
    match inside {
        None => Some((
            Reason::OutsideRoots,
            format!(
                "symbolic link to {}, outside the corpus roots: not read (give that path as a root on the command line if it is meant)",
                display(&target)
            ),
        )),
        Some(r) => {
            let rel = target.strip_prefix(r).unwrap_or(&target);
            vcs_component(rel).map(|v| {
                (
                    Reason::VcsMetadata,
                    format!(
                        "symbolic link into version-control metadata ({v}): {}, not read",
                        display(&target)
                    ),
                )
            })
        }
    }
}

/// A regular file of the walk, with its root-relative path and its tier.
fn corpus_file(
    e: walkdir::DirEntry,
    root: &Path,
    manifest_critical: &std::collections::HashSet<String>,
    globs: &globset::GlobSet,
) -> CorpusFile {
    let rel = match e.path().strip_prefix(root) {
        Ok(r) if !r.as_os_str().is_empty() => display(r),
        _ => e.file_name().to_string_lossy().into_owned(),
    };
    let critical = manifest_critical.contains(&rel)
        || globs.is_match(&rel)
        || globs.is_match(display(e.path()));
    CorpusFile::new(e.into_path(), &rel, critical)
}

/// What a special file is, in words.
fn special_kind(ft: std::fs::FileType) -> &'static str {
    if ft.is_fifo() {
        "FIFO"
    } else if ft.is_socket() {
        "socket"
    } else if ft.is_char_device() {
        "character device"
    } else if ft.is_block_device() {
        "block device"
    } else {
        "special file"
    }
}

/// An entry the walk could not visit: where, and why.
fn walk_error(err: &walkdir::Error, root: &Path) -> (PathBuf, Reason, String) {
    let path = err
        .path()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| root.to_path_buf());
    if let Some(anc) = err.loop_ancestor() {
        let detail = format!("symlink loop back to {}", display(anc));
        return (path, Reason::SymlinkLoop, detail);
    }
    let dangling = std::fs::symlink_metadata(&path)
        .map(|m| m.file_type().is_symlink())
        .unwrap_or(false)
        && std::fs::metadata(&path).is_err();
    if dangling {
        let detail = "symlink target does not exist".to_string();
        return (path, Reason::DanglingSymlink, detail);
    }
    let detail = err
        .io_error()
        .map(|e| e.to_string())
        .unwrap_or_else(|| err.to_string());
    let reason = match err.io_error().map(|e| e.kind()) {
        Some(std::io::ErrorKind::NotFound) => Reason::Vanished,
        _ => Reason::Unreadable,
    };
    (path, reason, detail)
}

/// A corpus without a single regular file is an error, never a pass.
fn empty_corpus(roots: &[PathBuf], skipped: &BTreeMap<String, Unscanned>) -> Error {
    let mut msg = format!(
        "the corpus ({}) holds no regular files to scan",
        roots
            .iter()
            .map(|r| display(r))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if !skipped.is_empty() {
        msg.push_str(&format!(
            "; {} entries could not be scanned:",
            skipped.len()
        ));
        for s in skipped.values().take(10) {
            msg.push_str(&format!(
                "\n  {} ({}: {})",
                crate::util::escape::term(&s.path),
                s.reason.as_str(),
                s.detail
            ));
        }
    }
    Error::corpus(None, msg)
}

/// Paths marked `critical` in a corpus root's MANIFEST (if it has one).
fn manifest_tiers(path: &Path) -> Result<std::collections::HashSet<String>> {
    let mut out = std::collections::HashSet::new();
    // A manifest is the corpus' own file: a link that leads out of its
    // root (or into `.git`) is refused, since its cells are quoted in errors.
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
        let root = path.parent().and_then(|r| r.canonicalize().ok());
        let inside = match (root, path.canonicalize()) {
            (Some(r), Ok(t)) => crate::util::paths::escapes(&t, &r).is_none(),
            _ => true, // dangling: nothing to read
        };
        if !inside {
            return Err(Error::input(
                "corpus manifest",
                path.display(),
                format!(
                    "{}: a symbolic link that leads out of its corpus root (or into version-control metadata); refused",
                    path.display()
                ),
            ));
        }
    }
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(out);
    };
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.starts_with('#') && !l.trim().is_empty());
    let Some((_, header)) = lines.next() else {
        return Ok(out);
    };
    let cols: Vec<&str> = header.split('\t').collect();
    let (Some(pi), Some(ti)) = (
        cols.iter().position(|c| *c == "path"),
        cols.iter().position(|c| *c == "tier"),
    ) else {
        return Ok(out);
    };
    for (n, line) in lines {
        let f: Vec<&str> = line.split('\t').collect();
        match (f.get(pi), f.get(ti)) {
            (Some(p), Some(&"critical")) => {
                out.insert(p.to_string());
            }
            (Some(_), Some(&"standard" | &"")) => {}
            (Some(_), Some(other)) => {
                return Err(Error::input(
                    "corpus manifest",
                    path.display(),
                    format!(
                        "{}:{}: unknown tier {other:?} (use critical or standard)",
                        path.display(),
                        n + 1
                    ),
                ))
            }
            _ => {
                return Err(Error::input(
                    "corpus manifest",
                    path.display(),
                    format!(
                        "{}:{}: expected {} tab-separated columns",
                        path.display(),
                        n + 1,
                        cols.len()
                    ),
                ))
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_root_is_an_error() {
        let r = walk(
            &[PathBuf::from("/definitely/not/here")],
            &WalkOptions::default(),
        );
        assert!(
            matches!(r, Err(Error::Corpus { path: Some(p), message }) if message.contains("does not exist") && p.contains("not/here"))
        );
    }

    #[test]
    fn empty_dir_is_an_error_and_files_are_sorted() {
        let d = tempfile::tempdir().unwrap();
        assert!(walk(&[d.path().to_path_buf()], &WalkOptions::default()).is_err());
        std::fs::write(d.path().join("b"), b"x").unwrap();
        std::fs::create_dir(d.path().join("a")).unwrap();
        std::fs::write(d.path().join("a/z"), b"x").unwrap();
        let c = walk(&[d.path().to_path_buf()], &WalkOptions::default()).unwrap();
        let names: Vec<_> = c
            .files
            .iter()
            .map(|f| f.path().strip_prefix(d.path()).unwrap().to_path_buf())
            .collect();
        assert_eq!(names, vec![PathBuf::from("a/z"), PathBuf::from("b")]);
    }

    #[test]
    fn two_files_shown_alike_are_both_scanned_and_one_path_from_two_roots_once() {
        use std::os::unix::ffi::OsStrExt;
        let d = tempfile::tempdir().unwrap();
        for name in [&b"\xfe"[..], b"\xff", b"z"] {
            std::fs::write(d.path().join(std::ffi::OsStr::from_bytes(name)), b"x").unwrap();
        }
        let root = d.path().to_path_buf();
        // The root twice: each file once, although the two shown alike sort
        // between the copies of each other.
        let roots = [root.clone(), root.clone(), root.join("z")];
        let c = walk(&roots, &WalkOptions::default()).unwrap();
        let raw: Vec<_> = c.files.iter().map(|f| f.path().to_path_buf()).collect();
        let shown: Vec<_> = c.files.iter().map(|f| f.display().to_string()).collect();
        let base = display(&root);
        assert_eq!(
            shown,
            [
                format!("{base}/z"),
                format!("{base}/\u{fffd}"),
                format!("{base}/\u{fffd}")
            ]
        );
        assert_ne!(raw[1], raw[2]);
    }

    #[test]
    fn critical_tier_from_globs_and_manifest() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("os")).unwrap();
        for f in ["os/svchost.exe", "app/Update.exe", "other.bin"] {
            let p = d.path().join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, b"x").unwrap();
        }
        std::fs::write(
            d.path().join("MANIFEST"),
            "# comment\npath\tsha256\ttier\napp/Update.exe\t-\tcritical\nother.bin\t-\tstandard\n",
        )
        .unwrap();
        let opts = WalkOptions {
            critical: vec!["os/**".into()],
            ..Default::default()
        };
        let c = walk(&[d.path().to_path_buf()], &opts).unwrap();
        let crit: Vec<_> = c
            .files
            .iter()
            .filter(|f| f.critical)
            .map(|f| f.rel())
            .collect();
        assert_eq!(crit, vec!["app/Update.exe", "os/svchost.exe"]);

        std::fs::write(d.path().join("MANIFEST"), "path\ttier\nother.bin\tcrit\n").unwrap();
        let e = walk(&[d.path().to_path_buf()], &opts)
            .unwrap_err()
            .to_string();
        assert!(e.contains("MANIFEST:2: unknown tier"), "{e}");
    }

    #[test]
    fn followed_links_stay_in_the_roots_and_out_of_vcs_metadata() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("netrc"), b"secret").unwrap();
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("corpus");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::create_dir_all(d.path().join(".git")).unwrap();
        std::fs::write(d.path().join(".git/config"), b"token").unwrap();
        std::fs::write(root.join("sub/a"), b"x").unwrap();
        std::fs::create_dir_all(root.join(".git")).unwrap();
        std::fs::write(root.join(".git/HEAD"), b"ref").unwrap();
        let link = |to: &Path, name: &str| std::os::unix::fs::symlink(to, root.join(name)).unwrap();
        link(&root.join("sub/a"), "inside");
        link(&outside.path().join("netrc"), "file-out");
        link(outside.path(), "dir-out");
        link(&d.path().join(".git/config"), "git-config");
        link(&root.join(".git"), "git-dir");
        link(Path::new("/proc/self/environ"), "environ");
        let follow = WalkOptions {
            follow_symlinks: true,
            ..Default::default()
        };
        let c = walk(std::slice::from_ref(&root), &follow).unwrap();
        let files: Vec<&str> = c.files.iter().map(|f| f.rel()).collect();
        assert_eq!(files, ["inside", "sub/a"]);
        let mut reasons: Vec<(String, Reason)> = c
            .skipped
            .iter()
            .map(|s| (s.path.rsplit('/').next().unwrap().to_string(), s.reason))
            .collect();
        reasons.sort();
        assert_eq!(
            reasons,
            [
                (".git".to_string(), Reason::VcsMetadata),
                ("dir-out".into(), Reason::OutsideRoots),
                ("environ".into(), Reason::OutsideRoots),
                ("file-out".into(), Reason::OutsideRoots),
                ("git-config".into(), Reason::OutsideRoots),
                ("git-dir".into(), Reason::VcsMetadata),
            ]
        );
        // Not following: links are unscanned as links, metadata still is.
        let c = walk(std::slice::from_ref(&root), &WalkOptions::default()).unwrap();
        assert_eq!(c.files.len(), 1);
        assert!(c
            .skipped
            .iter()
            .any(|s| s.reason == Reason::VcsMetadata && s.path.ends_with("/.git")));
        // Excluded metadata is not part of the corpus at all.
        let excl = WalkOptions {
            exclude: vec!["**/.git".into()],
            ..Default::default()
        };
        let c = walk(&[root], &excl).unwrap();
        assert!(c.skipped.iter().all(|s| s.reason == Reason::Symlink));
    }

    #[test]
    fn a_manifest_linked_out_of_its_root_is_refused() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("m"), "path\ttier\na\tghp_x\n").unwrap();
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("a"), b"x").unwrap();
        std::os::unix::fs::symlink(outside.path().join("m"), d.path().join(MANIFEST)).unwrap();
        let e = walk(&[d.path().to_path_buf()], &WalkOptions::default())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("leads out of its corpus root") && !e.contains("ghp_"),
            "{e}"
        );
    }

    #[test]
    fn symlinks_skipped_unless_followed_and_loops_reported() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("f"), b"x").unwrap();
        std::os::unix::fs::symlink(d.path().join("f"), d.path().join("link")).unwrap();
        std::os::unix::fs::symlink(d.path(), d.path().join("loop")).unwrap();
        let c = walk(&[d.path().to_path_buf()], &WalkOptions::default()).unwrap();
        assert_eq!(c.files.len(), 1);
        let reasons: Vec<_> = c.skipped.iter().map(|s| s.reason).collect();
        assert_eq!(reasons, vec![Reason::Symlink, Reason::Symlink]);

        let c = walk(
            &[d.path().to_path_buf()],
            &WalkOptions {
                follow_symlinks: true,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(c.files.len(), 2);
        assert_eq!(c.skipped.len(), 1);
        assert_eq!(c.skipped[0].reason, Reason::SymlinkLoop);
    }
}
