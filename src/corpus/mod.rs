//! Walking the corpus into a sorted list of files to scan, and a list of
//! entries that will not be scanned (with the reason). Nothing is opened
//! here; special files are recognised from their metadata so a FIFO is never
//! opened, and symlinks are only followed when asked (walkdir detects loops).

pub mod archive;
pub mod format;
pub mod lock;
pub mod mapped;
pub mod members;
pub mod read;

use crate::error::{Error, Result};
use serde::Serialize;
use std::collections::BTreeMap;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

/// Why a corpus entry was not (fully) scanned.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// FIFO, socket, character or block device: never opened.
    NotRegular,
    /// A symlink, not followed (use --follow-symlinks).
    Symlink,
    /// A symlink whose target does not exist.
    DanglingSymlink,
    /// A symlink that points back at one of its ancestors.
    SymlinkLoop,
    /// A followed symlink that resolves outside every corpus root (or into
    /// a kernel pseudo file system): a change may not make the gate read
    /// the CI runner's files.
    OutsideRoots,
    /// Version-control metadata (`.git` and the like): holds a CI job's
    /// credentials, never read.
    VcsMetadata,
    /// Permission denied or an I/O error while listing or reading.
    Unreadable,
    /// Listed, then gone before it could be read.
    Vanished,
    /// Its size or modification time changed while it was being read.
    Changed,
    /// Larger than --max-file-size.
    TooLarge,
    /// The scan took longer than --timeout.
    Timeout,
    /// yara-x returned an error for this file.
    ScanError,
    /// The scanner panicked on this file (a bug; the run went on).
    Panic,
    /// The run was interrupted (Ctrl-C, SIGTERM) before this file was scanned.
    Interrupted,
    /// An archive nested deeper than `corpus.archive_depth`: its members
    /// were not read.
    ArchiveDepth,
    /// An archive with more members than `corpus.archive_members`: those
    /// past the cap were not read.
    ArchiveMembers,
    /// An archive that decodes to more than `corpus.archive_size` in all:
    /// the rest was not read.
    ArchiveSize,
    /// A member that decodes to more than `corpus.archive_ratio` bytes per
    /// compressed byte (a bomb).
    ArchiveRatio,
    /// Zip entries whose data overlap (a bomb technique).
    ArchiveOverlap,
    /// A stream that asks for a larger dictionary than
    /// `corpus.archive_dictionary`.
    ArchiveDictionary,
    /// An encrypted archive member.
    Encrypted,
    /// A damaged or truncated archive (or member).
    Corrupt,
    /// An archive member stored with a method no reader here supports.
    Unsupported,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::NotRegular => "not_regular",
            Reason::Symlink => "symlink",
            Reason::DanglingSymlink => "dangling_symlink",
            Reason::SymlinkLoop => "symlink_loop",
            Reason::OutsideRoots => "outside_roots",
            Reason::VcsMetadata => "vcs_metadata",
            Reason::Unreadable => "unreadable",
            Reason::Vanished => "vanished",
            Reason::Changed => "changed",
            Reason::TooLarge => "too_large",
            Reason::Timeout => "timeout",
            Reason::ScanError => "scan_error",
            Reason::Panic => "panic",
            Reason::Interrupted => "interrupted",
            Reason::ArchiveDepth => "archive_depth",
            Reason::ArchiveMembers => "archive_members",
            Reason::ArchiveSize => "archive_size",
            Reason::ArchiveRatio => "archive_ratio",
            Reason::ArchiveOverlap => "archive_overlap",
            Reason::ArchiveDictionary => "archive_dictionary",
            Reason::Encrypted => "encrypted",
            Reason::Corrupt => "corrupt",
            Reason::Unsupported => "unsupported",
        }
    }

    /// The reason an archive reader gives for what it did not read.
    pub fn of_archive(why: archive::Why) -> Reason {
        use archive::Why;
        match why {
            Why::Depth => Reason::ArchiveDepth,
            Why::Members => Reason::ArchiveMembers,
            Why::MemberSize => Reason::TooLarge,
            Why::TotalSize => Reason::ArchiveSize,
            Why::Ratio => Reason::ArchiveRatio,
            Why::Overlap => Reason::ArchiveOverlap,
            Why::Time => Reason::Timeout,
            Why::Dictionary => Reason::ArchiveDictionary,
            Why::Encrypted => Reason::Encrypted,
            Why::Corrupt => Reason::Corrupt,
            Why::Unsupported => Reason::Unsupported,
        }
    }
}

/// A corpus entry that was not scanned.
#[derive(
    Debug,
    Clone,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
pub struct Unscanned {
    pub path: String,
    pub reason: Reason,
    pub detail: String,
    /// An archive member's path as components: the archive on disk, then
    /// each member name (an empty last name: what was not read of the
    /// archive before it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub components: Option<Vec<String>>,
}

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
}

impl CorpusFile {
    /// A file at `path`, shown as `display(path)`, at `rel` under its root.
    pub fn new(path: PathBuf, rel: &str, critical: bool) -> CorpusFile {
        let shown = display(&path);
        let raw = (path.to_str() != Some(shown.as_str())).then_some(path);
        CorpusFile::of_parts(shown, raw, rel, critical)
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
        let mut f = CorpusFile::of_parts(shown, Some(container.path().to_path_buf()), &rel, critical);
        if let Some(odd) = f.odd.as_mut() {
            odd.member = Some(names.to_vec());
        }
        f
    }

    /// As reported in a partial report: a member shown as `shown`, its
    /// names as the report carried them (`components` less the container).
    pub fn shown_member(shown: String, rel: &str, critical: bool, components: &[String]) -> CorpusFile {
        let mut f = CorpusFile::of_parts(shown, None, rel, critical);
        let names = components.iter().skip(1).map(|c| c.as_bytes().to_vec()).collect();
        let odd = f.odd.get_or_insert_with(|| {
            Box::new(Odd {
                path: None,
                rel: None,
                member: None,
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
        let mut out = vec![display(self.path())];
        out.extend(names.iter().map(|n| String::from_utf8_lossy(n).into_owned()));
        Some(out)
    }

    /// The base name: the file's, or an archive member's last name after
    /// its last `/` (lossy UTF-8), as the `filename` external sees it.
    pub fn file_name(&self) -> String {
        match self.member_names().and_then(|n| n.last()) {
            Some(name) => {
                let base = name.rsplit(|b| *b == b'/' || *b == b'\\').next().unwrap_or(name);
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

#[derive(Debug, Default)]
pub struct Corpus {
    pub roots: Vec<String>,
    /// Files on disk, then (after the scan) the archive members among them.
    pub files: Vec<CorpusFile>,
    pub skipped: Vec<Unscanned>,
    /// Links, directories and devices inside archives: listed, not scanned.
    pub listed: Vec<members::Listed>,
}

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
fn glob_set(kind: &str, globs: &[String]) -> Result<globset::GlobSet> {
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

    Ok(Corpus {
        roots: roots.iter().map(|r| display(r)).collect(),
        files,
        skipped: skipped.into_values().collect(),
        listed: Vec::new(),
    })
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

/// How a path is shown in reports: as reached from the root the user gave.
/// Non-UTF-8 bytes are replaced (U+FFFD); the file itself is still scanned.
pub fn display(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// A corpus file's tier: critical files (an OS updater, the vendor's own
/// agent) block on persisting false positives too.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Default, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    /// Sorted first: critical findings are shown first.
    Critical,
    #[default]
    Standard,
}

impl Tier {
    pub fn of(critical: bool) -> Tier {
        if critical {
            Tier::Critical
        } else {
            Tier::Standard
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Critical => "critical",
            Tier::Standard => "standard",
        }
    }
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
