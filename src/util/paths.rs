//! Where a path really leads, for the confinement of what a change may make
//! fpgate read: the checkout a run belongs to, version-control metadata
//! (`.git` holds a CI job's token in its config), the kernel's pseudo file
//! systems, and a path's lexical form (`..` taken away without touching the
//! disk, so a link planted in the tree is not followed to decide).

use std::ffi::OsStr;
use std::path::{Component, Path, PathBuf};

/// Names of version-control metadata directories (and of git's `.git`
/// file in a worktree or submodule): never read as corpus, samples or rules.
pub const VCS_NAMES: &[&str] = &[".git", ".hg", ".svn", ".bzr", "_darcs", ".jj", "CVS"];

/// Is `name` the name of a version-control metadata entry?
pub fn is_vcs_name(name: &OsStr) -> bool {
    VCS_NAMES.iter().any(|v| OsStr::new(v) == name)
}

/// The first version-control metadata component of `path`, if any.
pub fn vcs_component(path: &Path) -> Option<String> {
    path.components().find_map(|c| match c {
        Component::Normal(n) if is_vcs_name(n) => Some(n.to_string_lossy().into_owned()),
        _ => None,
    })
}

/// Does the absolute `path` lie in a kernel pseudo file system (`/proc`,
/// `/sys`, `/dev`), where a read can print a process's environment?
pub fn is_pseudo(path: &Path) -> bool {
    ["/proc", "/sys", "/dev"]
        .iter()
        .any(|p| path.starts_with(p))
}

/// `path` made absolute against the current directory, with `.` and `..`
/// taken away lexically (no link is followed).
pub fn lexical(path: &Path) -> PathBuf {
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        let cwd = std::env::current_dir()
            .and_then(|d| d.canonicalize())
            .unwrap_or_else(|_| PathBuf::from("/"));
        cwd.join(path)
    };
    let mut out = PathBuf::from("/");
    for c in abs.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(n) => out.push(n),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

/// The first symbolic link on the way to `path` (taken lexically, from the
/// root down) that sits in a directory of the checkout `home`: a link the
/// checkout's content put there, which a change can commit. `None` when no
/// such link is passed.
pub fn link_in_checkout(path: &Path, home: &Path) -> Option<PathBuf> {
    let mut prefix = PathBuf::from("/");
    for c in lexical(path).components().skip(1) {
        prefix.push(c);
        let is_link = std::fs::symlink_metadata(&prefix).is_ok_and(|m| m.file_type().is_symlink());
        let in_home = prefix
            .parent()
            .and_then(|d| d.canonicalize().ok())
            .is_some_and(|d| d.starts_with(home));
        if is_link && in_home {
            return Some(prefix);
        }
    }
    None
}

/// The checkout a path belongs to: the nearest directory at or above it
/// (canonical) that holds `.git`, else the directory itself.
pub fn checkout_of(dir: &Path) -> PathBuf {
    let dir = dir.canonicalize().unwrap_or_else(|_| lexical(dir));
    dir.ancestors()
        .find(|a| a.join(".git").exists())
        .unwrap_or(&dir)
        .to_path_buf()
}

/// Why a canonical path may not be read as part of `checkout`: it lies
/// outside it, in its version-control metadata, or in a pseudo file
/// system. `None`: it may be read.
pub fn escapes(canonical: &Path, checkout: &Path) -> Option<String> {
    if is_pseudo(canonical) {
        return Some(format!("{} is a kernel pseudo file", canonical.display()));
    }
    let Ok(rel) = canonical.strip_prefix(checkout) else {
        return Some(format!(
            "{} lies outside the checkout {}",
            canonical.display(),
            checkout.display()
        ));
    };
    vcs_component(rel).map(|v| {
        format!(
            "{} lies in version-control metadata ({v}) of the checkout {}",
            canonical.display(),
            checkout.display()
        )
    })
}

/// `escapes` for a path as it is on disk: where it leads, if it exists
/// and may not be read. `None` for a path that may be read, or that does
/// not exist (that is reported where it is read).
pub fn escapes_on_disk(path: &Path, checkout: &Path) -> Option<String> {
    escapes(&path.canonicalize().ok()?, checkout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lexical_takes_dots_away_without_the_disk() {
        assert_eq!(lexical(Path::new("/a/b/../c/./d")), PathBuf::from("/a/c/d"));
        assert_eq!(lexical(Path::new("/../x")), PathBuf::from("/x"));
    }

    #[test]
    fn a_link_inside_the_checkout_is_found_on_the_way() {
        let d = tempfile::tempdir().unwrap();
        let home = d.path().canonicalize().unwrap().join("repo");
        std::fs::create_dir_all(home.join("real")).unwrap();
        std::os::unix::fs::symlink("/etc", home.join("corpus")).unwrap();
        std::os::unix::fs::symlink(&home, d.path().join("alias")).unwrap();
        assert_eq!(
            link_in_checkout(&home.join("corpus/ssl"), &home),
            Some(home.join("corpus"))
        );
        assert_eq!(link_in_checkout(&home.join("real"), &home), None);
        // A link outside the checkout that leads into it is not the change's.
        assert_eq!(link_in_checkout(&d.path().join("alias/real"), &home), None);
    }

    #[test]
    fn escapes_names_outside_vcs_and_pseudo() {
        let top = Path::new("/w/repo");
        assert_eq!(escapes(Path::new("/w/repo/corpus/a"), top), None);
        assert!(escapes(Path::new("/w/other"), top)
            .unwrap()
            .contains("outside the checkout"));
        assert!(escapes(Path::new("/w/repo/.git/config"), top)
            .unwrap()
            .contains("(.git)"));
        assert!(escapes(Path::new("/w/repo/x/.hg/hgrc"), top)
            .unwrap()
            .contains("(.hg)"));
        assert!(escapes(Path::new("/proc/self/environ"), Path::new("/"))
            .unwrap()
            .contains("pseudo"));
        // A name that only starts like one is not metadata.
        assert_eq!(escapes(Path::new("/w/repo/.github/x"), top), None);
    }
}
