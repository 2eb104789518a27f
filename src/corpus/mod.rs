//! The corpus: what an entry is (a file on disk, or a member of an archive
//! on disk: `entry`), how the roots are walked into a sorted list of files
//! and a list of entries that will not be scanned, with the reason (`walk`),
//! how files are read (`read`, `mapped`) and archives opened (`archive`,
//! `members`), their format (`format`) and the corpus lock (`lock`).

pub mod archive;
mod entry;
pub mod format;
pub mod lock;
pub mod mapped;
pub mod members;
pub mod read;
pub mod recipe;
pub mod signature;
pub mod store;
mod walk;

pub use entry::{display, external_value, CorpusFile};
pub use recipe::gather;
pub use walk::{walk, WalkOptions, MANIFEST};

use serde::Serialize;

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

#[derive(Debug, Default)]
pub struct Corpus {
    pub roots: Vec<String>,
    /// Files on disk, then (after the scan) the archive members among them.
    pub files: Vec<CorpusFile>,
    pub skipped: Vec<Unscanned>,
    /// Links, directories and devices inside archives: listed, not scanned.
    pub listed: Vec<members::Listed>,
    /// The recipe whose artifacts are part of the corpus, if any.
    pub recipe: Option<RecipeFacts>,
    /// Contents (sha256 hex) whose code signature verified to a tier
    /// rule's anchor, and who signed them.
    pub signed: std::collections::BTreeMap<String, Vec<signature::SignedBy>>,
    /// What signatures through catalogs rest on (see `CatalogFacts`).
    pub catalogs: signature::CatalogFacts,
}

/// A corpus recipe as a report names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct RecipeFacts {
    /// The recipe file (`REF:path` when read at a base revision).
    pub file: String,
    /// Artifacts it names (all in the corpus, unless excluded by a glob).
    pub artifacts: usize,
    /// The corpus store they were read from.
    pub store: String,
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
