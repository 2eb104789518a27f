//! What a corpus entry is: a file on disk, or a member of an archive on disk
//! (at any depth of nesting); where its bytes live, how it is named in
//! reports (`ARCHIVE!member`, escaped), and the values of the path
//! externals (`filename`, `filepath`, `extension`) it gives the rules.

use super::format;
use std::path::{Path, PathBuf};

/// A regular file to scan. One allocation for the common case (a UTF-8
/// path under its root): the corpus of a million files is held whole.
#[derive(Debug, Clone)]
pub struct CorpusFile {
    /// The path as reported: as reached from the root the user gave (lossy
    /// UTF-8, see `display`).
    shown: Box<str>,
    /// Where in `shown` the root-relative path starts.
    rel_at: u32,
    /// In the critical tier (config glob or corpus manifest).
    pub critical: bool,
    /// The rare rest: the path itself when it is not UTF-8, a relative
    /// path that is not a suffix of the shown one.
    odd: Option<Box<Odd>>,
}

#[derive(Debug, Clone)]
struct Odd {
    /// The file to open: the path itself when it is not UTF-8, and for an
    /// archive member the container on disk.
    path: Option<PathBuf>,
    rel: Option<String>,
    /// An archive member: its names from the container on disk in (one
    /// per level of nesting; raw bytes, they are only names).
    member: Option<Vec<Vec<u8>>>,
    /// A recipe artifact: opened from the store, shown by its name.
    stored: bool,
}

impl CorpusFile {
    /// A file at `path`, shown as `display(path)`, at `rel` under its root.
    pub fn new(path: PathBuf, rel: &str, critical: bool) -> CorpusFile {
        let shown = display(&path);
        let raw = (path.to_str() != Some(shown.as_str())).then_some(path);
        CorpusFile::of_parts(shown, raw, rel, critical)
    }

    /// An artifact of the corpus recipe: read from `path` in the store,
    /// shown (and matched by globs, and seen by `filepath`) as `name`.
    pub fn stored(path: PathBuf, name: &str, critical: bool) -> CorpusFile {
        let mut f = CorpusFile::of_parts(name.to_string(), Some(path), name, critical);
        if let Some(odd) = f.odd.as_mut() {
            odd.stored = true;
        }
        f
    }

    /// A recipe artifact (opened from the store, shown by its name), or a
    /// member of one.
    pub fn is_stored(&self) -> bool {
        self.odd.as_ref().is_some_and(|o| o.stored)
    }

    /// As reported in a partial report: the path is its shown form.
    pub fn shown(shown: String, rel: &str, critical: bool) -> CorpusFile {
        CorpusFile::of_parts(shown, None, rel, critical)
    }

    fn of_parts(shown: String, path: Option<PathBuf>, rel: &str, critical: bool) -> CorpusFile {
        let rel_at = shown
            .len()
            .checked_sub(rel.len())
            .filter(|&at| shown.get(at..) == Some(rel))
            .and_then(|at| u32::try_from(at).ok());
        let odd = (path.is_some() || rel_at.is_none()).then(|| {
            Box::new(Odd {
                path,
                rel: rel_at.is_none().then(|| rel.to_string()),
                member: None,
                stored: false,
            })
        });
        CorpusFile {
            shown: shown.into_boxed_str(),
            rel_at: rel_at.unwrap_or(0),
            critical,
            odd,
        }
    }

    /// A member of the archive `container` (a file on disk), named by
    /// `names` from that container in: shown as
    /// `CONTAINER!member[!nested...]` with each name escaped (see
    /// `escape::member_name`), so no name can forge another.
    pub fn member(container: &CorpusFile, names: &[Vec<u8>], critical: bool) -> CorpusFile {
        let mut suffix = String::new();
        for n in names {
            suffix.push('!');
            suffix.push_str(&crate::util::escape::member_name(n));
        }
        let shown = format!("{}{suffix}", container.display());
        let rel = format!("{}{suffix}", container.rel());
        let mut f =
            CorpusFile::of_parts(shown, Some(container.path().to_path_buf()), &rel, critical);
        if let Some(odd) = f.odd.as_mut() {
            odd.member = Some(names.to_vec());
            odd.stored = container.is_stored();
        }
        f
    }

    /// As reported in a partial report: a member shown as `shown`, its
    /// names as the report carried them (`components` less the container).
    pub fn shown_member(
        shown: String,
        rel: &str,
        critical: bool,
        components: &[String],
    ) -> CorpusFile {
        let mut f = CorpusFile::of_parts(shown, None, rel, critical);
        let names = components
            .iter()
            .skip(1)
            .map(|c| c.as_bytes().to_vec())
            .collect();
        let odd = f.odd.get_or_insert_with(|| {
            Box::new(Odd {
                path: None,
                rel: None,
                member: None,
                stored: false,
            })
        });
        if odd.path.is_none() {
            odd.path = components.first().map(PathBuf::from);
        }
        odd.member = Some(names);
        f
    }

    /// An archive member's names from its container on disk in (`None`
    /// for a file on disk).
    pub fn member_names(&self) -> Option<&[Vec<u8>]> {
        self.odd.as_ref().and_then(|o| o.member.as_deref())
    }

    /// For an archive member: its path as components, the container on
    /// disk (as shown) and then each member name (lossy UTF-8), as JSON
    /// reports carry it.
    pub fn components(&self) -> Option<Vec<String>> {
        let names = self.member_names()?;
        // The container as shown (a recipe artifact's name, not its store
        // path): the shown path less the escaped member names.
        let suffix: usize = names
            .iter()
            .map(|n| 1 + crate::util::escape::member_name(n).len())
            .sum();
        let container = self
            .shown
            .get(..self.shown.len().saturating_sub(suffix))
            .map(str::to_string)
            .unwrap_or_else(|| display(self.path()));
        let mut out = vec![container];
        out.extend(
            names
                .iter()
                .map(|n| String::from_utf8_lossy(n).into_owned()),
        );
        Some(out)
    }

    /// The base name: the file's, or an archive member's last name after
    /// its last `/` (lossy UTF-8), as the `filename` external sees it.
    pub fn file_name(&self) -> String {
        match self.member_names().and_then(|n| n.last()) {
            Some(name) => {
                let base = name
                    .rsplit(|b| *b == b'/' || *b == b'\\')
                    .next()
                    .unwrap_or(name);
                String::from_utf8_lossy(base).into_owned()
            }
            None => self
                .path()
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        }
    }

    /// The file to open (for an archive member, its container on disk).
    pub fn path(&self) -> &Path {
        match self.odd.as_ref().and_then(|o| o.path.as_deref()) {
            Some(p) => p,
            None => Path::new(&*self.shown),
        }
    }

    /// The path as reported: as reached from the root the user gave.
    pub fn display(&self) -> &str {
        &self.shown
    }

    /// The path relative to its corpus root (the file name for a root that
    /// is a file): what the corpus lock and tier globs refer to.
    pub fn rel(&self) -> &str {
        match self.odd.as_ref().and_then(|o| o.rel.as_deref()) {
            Some(r) => r,
            None => &self.shown[self.rel_at as usize..],
        }
    }
}

/// How a path is shown in reports: as reached from the root the user gave.
/// Non-UTF-8 bytes are replaced (U+FFFD); the file itself is still scanned.
pub fn display(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// Value of a standard external variable for one file.
pub fn external_value(name: &str, f: &CorpusFile, data: &[u8]) -> String {
    match name {
        "filename" => f.file_name(),
        "filepath" => f.display().to_string(),
        "extension" => {
            let name = f.file_name();
            match Path::new(&name).extension() {
                Some(e) => format!(".{}", e.to_string_lossy().to_lowercase()),
                None => String::new(),
            }
        }
        "filetype" => format::file_type(data).to_string(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_keeps_its_path_its_shown_path_and_its_relative_path() {
        use std::os::unix::ffi::OsStrExt;
        let f = CorpusFile::new("root/a/b.exe".into(), "a/b.exe", true);
        assert_eq!(
            (f.path(), f.display(), f.rel(), f.critical),
            (Path::new("root/a/b.exe"), "root/a/b.exe", "a/b.exe", true)
        );
        assert!(f.odd.is_none(), "one allocation for the common case");
        // Not UTF-8: opened by its own bytes, shown lossily.
        let raw = PathBuf::from(std::ffi::OsStr::from_bytes(b"root/\xff.bin"));
        let f = CorpusFile::new(raw.clone(), "\u{fffd}.bin", false);
        assert_eq!(f.path(), raw.as_path());
        assert_eq!(
            (f.display(), f.rel()),
            ("root/\u{fffd}.bin", "\u{fffd}.bin")
        );
        // A relative path that is not a suffix of the shown one is kept.
        let f = CorpusFile::shown("x/y".into(), "other", false);
        assert_eq!(
            (f.path(), f.display(), f.rel()),
            (Path::new("x/y"), "x/y", "other")
        );
    }
}
