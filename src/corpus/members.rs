//! Archive members as corpus entries. A corpus entry is either a file on
//! disk or a member of one (at any depth of nesting); this module says
//! which members are entries (the `exclude` globs), which are critical,
//! how they are named (see `CorpusFile::member`), and puts them into the
//! corpus after the scan that found them, each right after its container.
//!
//! What a reader could not read of a container (past a cap, corrupt,
//! encrypted) is an entry too: a member named by the container's names and
//! an empty last name, shown `ARCHIVE!` ("the rest of ARCHIVE"), whose
//! outcome says why. Links, directories and devices inside archives are
//! listed (`Listed`), neither scanned nor counted unscanned.

use super::archive::{self, Caps, Entry};
use super::walk::glob_set;
use super::{display, Corpus, CorpusFile, Reason, WalkOptions};
use crate::error::Result;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

/// How archives are read (`corpus.archives`, the caps).
#[derive(Debug, Clone)]
pub struct Archives {
    /// Read members at all (`--no-archives` turns it off).
    pub enabled: bool,
    pub caps: Caps,
    critical: globset::GlobSet,
    exclude: globset::GlobSet,
}

impl Default for Archives {
    fn default() -> Self {
        Archives::off()
    }
}

impl Archives {
    /// Archive reading with `caps`, members matched against the walk's
    /// `critical` and `exclude` globs like the files on disk.
    pub fn new(enabled: bool, caps: Caps, walk: &WalkOptions) -> Result<Archives> {
        Ok(Archives {
            enabled,
            caps,
            critical: glob_set("critical", &walk.critical)?,
            exclude: glob_set("exclude", &walk.exclude)?,
        })
    }

    /// No archive is opened.
    pub fn off() -> Archives {
        Archives {
            enabled: false,
            caps: Caps::default(),
            critical: globset::GlobSet::empty(),
            exclude: globset::GlobSet::empty(),
        }
    }

    /// The settings that change which members a scan finds, in words (for
    /// the keys shards and cached member lists must share).
    pub fn fingerprint(&self) -> String {
        if !self.enabled {
            return "off".into();
        }
        let c = &self.caps;
        format!(
            "depth={} members={} member_bytes={} total_bytes={} ratio={}/{} time={} dictionary={}",
            c.depth,
            c.members,
            c.member_bytes,
            c.total_bytes,
            c.ratio,
            c.ratio_after,
            c.time.as_secs(),
            c.dictionary_bytes
        )
    }

    fn matches(set: &globset::GlobSet, f: &CorpusFile) -> bool {
        !set.is_empty() && (set.is_match(f.rel()) || set.is_match(f.display()))
    }

    /// The member of `container` named `names`, unless it (or a container
    /// it is in) is excluded.
    fn entry(&self, container: &CorpusFile, names: &[Vec<u8>]) -> Option<CorpusFile> {
        let mut member = CorpusFile::member(container, names, container.critical);
        if self.exclude.is_empty() && self.critical.is_empty() {
            return Some(member);
        }
        // The containers it is in, then the member itself.
        for k in 1..=names.len() {
            let inner;
            let f = if k == names.len() {
                &member
            } else {
                inner = CorpusFile::member(container, &names[..k], false);
                &inner
            };
            if Archives::matches(&self.exclude, f) {
                return None;
            }
            member.critical |= Archives::matches(&self.critical, f);
        }
        Some(member)
    }
}

/// A link, directory or device inside an archive: listed, not scanned.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
pub struct Listed {
    /// Shown as `ARCHIVE!member`.
    pub path: String,
    /// What it is: `symbolic link to ...`, `hard link to ...`, `directory`.
    pub what: String,
}

/// What an archive holds, as read once: enough to answer its members
/// again without reading it (the results cache keeps it by the archive's
/// content and the caps; see `Archives::fingerprint`). Names as
/// `CorpusFile::member` takes them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Shape {
    File {
        names: Vec<Vec<u8>>,
        sha256: [u8; 32],
        size: u64,
        format: super::format::Format,
    },
    Listed {
        names: Vec<Vec<u8>>,
        what: String,
    },
    Unscanned {
        names: Vec<Vec<u8>>,
        reason: Reason,
        detail: String,
    },
}

/// A member as the scan sees it: decoded (with its content hash), known
/// from an earlier read of its unchanged archive, or not readable and why.
pub enum Member<'a> {
    File(&'a CorpusFile, &'a [u8], &'a super::lock::Content),
    Known(&'a CorpusFile, &'a super::lock::Content),
    Unscanned(&'a CorpusFile, Reason, String),
}

/// What one container held, as corpus entries, with what the scan made of
/// each (`T`, the engine's outcome).
#[derive(Debug)]
pub struct Expanded<T> {
    pub members: Vec<(CorpusFile, T)>,
    pub listed: Vec<Listed>,
    /// Bytes the decoders produced.
    pub decoded: u64,
    /// The archive as read, for the results cache; `None` when what was
    /// read depends on the clock (a time cap was hit) or it was not read.
    pub shape: Option<Vec<Shape>>,
}

impl<T> Expanded<T> {
    fn new() -> Expanded<T> {
        Expanded {
            members: Vec::new(),
            listed: Vec::new(),
            decoded: 0,
            shape: None,
        }
    }

    /// One entry of the archive: a member (handed to `scan`) or a listed
    /// one, unless excluded.
    fn add(
        &mut self,
        container: &CorpusFile,
        opts: &Archives,
        shape: &Shape,
        data: Option<&[u8]>,
        scan: &mut impl FnMut(Member<'_>) -> T,
    ) {
        match shape {
            Shape::File {
                names,
                sha256,
                size,
                format,
            } => {
                if let Some(f) = opts.entry(container, names) {
                    let content = (*sha256, *size, *format);
                    let t = match data {
                        Some(d) => scan(Member::File(&f, d, &content)),
                        None => scan(Member::Known(&f, &content)),
                    };
                    self.members.push((f, t));
                }
            }
            Shape::Listed { names, what } => {
                if let Some(f) = opts.entry(container, names) {
                    self.listed.push(Listed {
                        path: f.display().to_string(),
                        what: what.clone(),
                    });
                }
            }
            Shape::Unscanned {
                names,
                reason,
                detail,
            } => {
                if let Some(f) = opts.entry(container, names) {
                    let t = scan(Member::Unscanned(&f, *reason, detail.clone()));
                    self.members.push((f, t));
                }
            }
        }
    }
}

/// The members of `container` (a file on disk whose bytes are `data`), each
/// handed to `scan` as it is decoded; `None` when `data` is no archive or
/// archives are off.
pub fn expand<T>(
    container: &CorpusFile,
    data: &[u8],
    opts: &Archives,
    mut scan: impl FnMut(Member<'_>) -> T,
) -> Option<Expanded<T>> {
    use sha2::Digest;
    if !opts.enabled || container.member_names().is_some() {
        return None;
    }
    let format = archive::detect(data)?;
    let name = container.file_name().into_bytes();
    let mut out = Expanded::new();
    let mut shape = Vec::new();
    let mut timed_out = false;
    // Members handed over as files: a reason given later for the same
    // path is about the container it is (what of it was not read).
    let mut files: HashSet<Vec<Vec<u8>>> = HashSet::new();
    // A reader that panics (a bug in it, or in a crate it uses) leaves the
    // rest of the archive unscanned; what it handed over before stays.
    let opened = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        archive::open(data, &name, format, &opts.caps, &mut |e| {
            let (s, bytes) = match e {
                Entry::File { path, data } => {
                    files.insert(path[1..].to_vec());
                    let s = Shape::File {
                        names: path[1..].to_vec(),
                        sha256: sha2::Sha256::digest(data).into(),
                        size: data.len() as u64,
                        format: super::format::detect(data),
                    };
                    (s, Some(data))
                }
                Entry::Listed { path, what } => (
                    Shape::Listed {
                        names: path[1..].to_vec(),
                        what,
                    },
                    None,
                ),
                Entry::Unscanned { path, why, detail } => {
                    let mut names = path[1..].to_vec();
                    if names.is_empty() || files.contains(&names) {
                        // The rest of a container: `ARCHIVE!`.
                        names.push(Vec::new());
                    }
                    timed_out |= why == archive::Why::Time;
                    let reason = Reason::of_archive(why);
                    (
                        Shape::Unscanned {
                            names,
                            reason,
                            detail,
                        },
                        None,
                    )
                }
            };
            out.add(container, opts, &s, bytes, &mut scan);
            shape.push(s);
        })
    }));
    match opened {
        Ok(decoded) => {
            out.decoded = decoded;
            out.shape = (!timed_out).then_some(shape);
        }
        Err(panic) => {
            let msg = crate::util::panic_message(panic.as_ref());
            let s = Shape::Unscanned {
                names: vec![Vec::new()],
                reason: Reason::Panic,
                detail: format!("the {} reader panicked: {msg}", format.as_str()),
            };
            out.add(container, opts, &s, None, &mut scan);
        }
    }
    Some(out)
}

/// The members of `container` again, from its `shape` as read before (its
/// content unchanged): each handed to `scan` as `Member::Known`.
pub fn replay<T>(
    container: &CorpusFile,
    shape: &[Shape],
    opts: &Archives,
    mut scan: impl FnMut(Member<'_>) -> T,
) -> Expanded<T> {
    let mut out = Expanded::new();
    for s in shape {
        out.add(container, opts, s, None, &mut scan);
    }
    out
}

/// Where an entry of the spliced corpus came from: the walk's file
/// `index`, or a member of that file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin {
    pub index: usize,
    pub member: bool,
}

/// What splicing added, for the report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Added {
    /// Files on disk that were archives.
    pub containers: usize,
    pub members: usize,
    pub decoded: u64,
}

/// Put the members found in the scan into the corpus and `outcomes` after
/// their containers (`expanded`: by walk index), keeping the first `clean`
/// files' part sorted by the shown path (the rest, known-bad samples,
/// stay last). Returns each entry's origin.
pub fn splice<T>(
    corpus: &mut Corpus,
    outcomes: &mut Vec<T>,
    mut expanded: Vec<(usize, Expanded<T>)>,
    clean: usize,
) -> (Vec<Origin>, Added) {
    let n = corpus.files.len();
    let mut added = Added::default();
    if expanded.is_empty() {
        let origins = (0..n)
            .map(|index| Origin {
                index,
                member: false,
            })
            .collect();
        return (origins, added);
    }
    expanded.sort_by_key(|(i, _)| *i);
    let files = std::mem::take(&mut corpus.files);
    let outs = std::mem::take(outcomes);
    let mut rows: Vec<(CorpusFile, T, Origin)> = Vec::with_capacity(n);
    let mut more = expanded.into_iter().peekable();
    for (index, (f, o)) in files.into_iter().zip(outs).enumerate() {
        rows.push((
            f,
            o,
            Origin {
                index,
                member: false,
            },
        ));
        while let Some((_, x)) = more.next_if(|(i, _)| *i == index) {
            // A file that only looked like an archive holds nothing.
            added.containers += usize::from(!x.members.is_empty() || !x.listed.is_empty());
            added.members += x.members.len();
            added.decoded += x.decoded;
            corpus.listed.extend(x.listed);
            rows.extend(x.members.into_iter().map(|(f, o)| {
                (
                    f,
                    o,
                    Origin {
                        index,
                        member: true,
                    },
                )
            }));
        }
    }
    // The clean part (files and their members) sorted by the shown path;
    // equal paths keep their order.
    let cut = rows
        .iter()
        .position(|(_, _, o)| o.index >= clean)
        .unwrap_or(rows.len());
    rows[..cut].sort_by(|a, b| a.0.display().cmp(b.0.display()));
    corpus.listed.sort();
    let mut origins = Vec::with_capacity(rows.len());
    for (f, o, origin) in rows {
        corpus.files.push(f);
        outcomes.push(o);
        origins.push(origin);
    }
    (origins, added)
}

/// The bytes of a corpus entry: the file, or the member read from its
/// container on disk (for what re-reads entries after the scan: triage,
/// `--perf`). `None` when it cannot be read now.
pub fn read_entry(f: &CorpusFile, max_file_size: u64, caps: &Caps) -> Option<Vec<u8>> {
    let data = std::fs::read(f.path()).ok()?;
    let Some(names) = f.member_names() else {
        return Some(data).filter(|d| d.len() as u64 <= max_file_size);
    };
    let format = archive::detect(&data)?;
    let name = std::path::Path::new(&display(f.path()))
        .file_name()
        .map(|n| n.to_string_lossy().into_owned().into_bytes())
        .unwrap_or_default();
    let mut found = None;
    archive::open(&data, &name, format, caps, &mut |e| {
        if let Entry::File { path, data } = e {
            if found.is_none() && path[1..] == *names {
                found = Some(data.to_vec());
            }
        }
    });
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zip_of(members: &[(&str, &[u8])]) -> Vec<u8> {
        use std::io::Write;
        let mut z = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        for (name, data) in members {
            z.start_file(*name, zip::write::SimpleFileOptions::default())
                .unwrap();
            z.write_all(data).unwrap();
        }
        z.finish().unwrap().into_inner()
    }

    #[test]
    fn members_are_named_tiered_excluded_and_spliced_after_their_container() {
        let inner = zip_of(&[("x.dll", b"inner")]);
        let outer = zip_of(&[
            ("b.exe", b"bbb"),
            ("a!b.exe", b"forged?"),
            ("lib/inner.jar", &inner),
            ("skip/me.bin", b"no"),
        ]);
        let walk = WalkOptions {
            critical: vec!["*.zip!lib/*.jar".into()],
            exclude: vec!["*!skip/*".into()],
            ..Default::default()
        };
        let opts = Archives::new(true, Caps::default(), &walk).unwrap();
        let container = CorpusFile::new("root/p.zip".into(), "p.zip", false);
        let x = expand(&container, &outer, &opts, |m| match m {
            Member::File(f, data, _) => (f.critical, data.len()),
            _ => unreachable!(),
        })
        .unwrap();
        // Replayed from its shape: the same entries, without the bytes.
        let again = replay(&container, x.shape.as_ref().unwrap(), &opts, |m| match m {
            Member::Known(f, c) => (f.critical, c.1 as usize),
            _ => unreachable!(),
        });
        let entries = |x: &Expanded<(bool, usize)>| -> Vec<(String, bool, usize)> {
            x.members
                .iter()
                .map(|(f, (c, n))| (f.display().to_string(), *c, *n))
                .collect()
        };
        assert_eq!(entries(&again), entries(&x));
        let got: Vec<(&str, bool, usize)> = x
            .members
            .iter()
            .map(|(f, (c, n))| (f.display(), *c, *n))
            .collect();
        assert_eq!(
            got,
            [
                ("root/p.zip!b.exe", false, 3),
                ("root/p.zip!a%21b.exe", false, 7),
                ("root/p.zip!lib/inner.jar", true, inner.len()),
                // Critical as its container is.
                ("root/p.zip!lib/inner.jar!x.dll", true, 5),
            ]
        );
        let nested = &x.members[3].0;
        assert_eq!(nested.rel(), "p.zip!lib/inner.jar!x.dll");
        assert_eq!(nested.file_name(), "x.dll");
        assert_eq!(nested.path(), std::path::Path::new("root/p.zip"));
        assert_eq!(
            nested.components().unwrap(),
            ["root/p.zip", "lib/inner.jar", "x.dll"]
        );
        // Spliced after the container, the clean part sorted by path.
        let mut corpus = Corpus {
            files: vec![
                CorpusFile::new("root/a".into(), "a", false),
                container.clone(),
                CorpusFile::new("root/p.zip.sig".into(), "p.zip.sig", false),
                CorpusFile::new("samples/s".into(), "s", false),
            ],
            ..Default::default()
        };
        let mut outs = vec![(false, 0), (false, 0), (false, 0), (false, 0)];
        let (origins, added) = splice(&mut corpus, &mut outs, vec![(1, x)], 3);
        let shown: Vec<&str> = corpus.files.iter().map(|f| f.display()).collect();
        assert_eq!(
            shown,
            [
                "root/a",
                "root/p.zip",
                "root/p.zip!a%21b.exe",
                "root/p.zip!b.exe",
                "root/p.zip!lib/inner.jar",
                "root/p.zip!lib/inner.jar!x.dll",
                "root/p.zip.sig",
                "samples/s"
            ]
        );
        assert_eq!(outs.len(), 8);
        assert_eq!(
            origins.iter().filter(|o| o.member).count(),
            4,
            "{origins:?}"
        );
        assert_eq!((added.containers, added.members), (1, 4));
        assert_eq!(
            origins[7],
            Origin {
                index: 3,
                member: false
            }
        );
        // Read back from the container on disk.
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("p.zip");
        std::fs::write(&p, &outer).unwrap();
        let c = CorpusFile::new(p, "p.zip", false);
        let m = CorpusFile::member(&c, &[b"lib/inner.jar".to_vec(), b"x.dll".to_vec()], false);
        assert_eq!(read_entry(&m, 1 << 20, &Caps::default()).unwrap(), b"inner");
    }

    #[test]
    fn what_a_reader_could_not_read_is_the_rest_of_its_container() {
        let z = zip_of(&[("a.bin", b"aaaa"), ("b.bin", b"bbbb")]);
        let c = CorpusFile::new("r/z.zip".into(), "z.zip", false);
        let caps = Caps {
            members: 1,
            ..Caps::default()
        };
        let opts = Archives::new(true, caps, &WalkOptions::default()).unwrap();
        let x = expand(&c, &z, &opts, |m| match m {
            Member::Unscanned(_, r, _) => Some(r),
            _ => None,
        })
        .unwrap();
        let got: Vec<(&str, Option<Reason>)> =
            x.members.iter().map(|(f, r)| (f.display(), *r)).collect();
        assert!(
            got.contains(&("r/z.zip!", Some(Reason::ArchiveMembers))),
            "{got:?}"
        );
        assert_eq!(
            x.members.last().unwrap().0.components().unwrap(),
            ["r/z.zip", ""]
        );
        // Off: nothing is opened.
        assert!(expand(&c, &z, &Archives::off(), |_| ()).is_none());
    }

    #[test]
    fn a_panic_while_reading_leaves_the_rest_of_the_archive_unscanned() {
        let z = zip_of(&[("a.bin", b"aaaa"), ("b.bin", b"bbbb")]);
        let c = CorpusFile::new("r/z.zip".into(), "z.zip", false);
        let opts = Archives::new(true, Caps::default(), &WalkOptions::default()).unwrap();
        let mut seen = 0;
        let x = expand(&c, &z, &opts, |m| match m {
            Member::File(f, ..) => {
                seen += 1;
                if seen == 2 {
                    panic!("boom on {}", f.display());
                }
                None
            }
            Member::Unscanned(_, r, d) => Some((r, d)),
            Member::Known(..) => None,
        })
        .unwrap();
        let got: Vec<(&str, &Option<(Reason, String)>)> =
            x.members.iter().map(|(f, o)| (f.display(), o)).collect();
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[0], ("r/z.zip!a.bin", &None));
        let (path, Some((reason, detail))) = got[1] else {
            panic!("{got:?}")
        };
        assert_eq!((path, *reason), ("r/z.zip!", Reason::Panic));
        assert!(
            detail.contains("zip reader panicked: boom on r/z.zip!b.bin"),
            "{detail}"
        );
        assert!(x.shape.is_none(), "not kept for the cache");
    }
}
