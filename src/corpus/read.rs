//! Reading a corpus file, fail-closed: opened non-blocking (a file swapped
//! for a FIFO after the walk cannot hang a reader) and without following a
//! link unless asked, checked to be a regular file within the size limit,
//! and re-checked after the read so a file that changed meanwhile is
//! reported. Also the early hashing of the corpus (while the rules compile,
//! and for sharded runs) and the stamps the stat cache compares.

use crate::corpus::format::Format;
use crate::corpus::mapped::{Mapped, MAP_FROM};
use crate::corpus::{CorpusFile, Reason};
use crate::util::interrupt::interrupted;
use rayon::prelude::*;
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};

/// What a corpus file may be to be read.
#[derive(Debug, Clone, Copy)]
pub struct ReadLimits {
    pub max_file_size: u64,
    pub follow_symlinks: bool,
}

/// What a file looked like when it was read: if all of this is unchanged,
/// so is its content (ctime cannot be set back by a user).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
    ino: u64,
    dev: u64,
}

impl Stamp {
    pub fn of(m: &std::fs::Metadata) -> Stamp {
        Stamp {
            size: m.len(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
            ino: m.ino(),
            dev: m.dev(),
        }
    }

    /// dev, ino, size, mtime, mtime_ns, ctime, ctime_ns (as stored).
    pub fn parts(&self) -> [i64; 7] {
        [
            self.dev as i64,
            self.ino as i64,
            self.size as i64,
            self.mtime.0,
            self.mtime.1,
            self.ctime.0,
            self.ctime.1,
        ]
    }

    pub fn from_parts(n: [i64; 7]) -> Stamp {
        Stamp {
            dev: n[0] as u64,
            ino: n[1] as u64,
            size: n[2] as u64,
            mtime: (n[3], n[4]),
            ctime: (n[5], n[6]),
        }
    }

    /// Modified within `secs` of `now` (unix seconds): a later write in the
    /// same timestamp tick could leave the stamp unchanged.
    pub fn racy(&self, now: i64, secs: i64) -> bool {
        self.mtime.0 >= now - secs || self.ctime.0 >= now - secs
    }
}

/// A sha256 known ahead of the scan: from the stat cache, or computed while
/// the rules compile.
#[derive(Debug, Clone, Copy)]
pub struct PreHashed {
    pub stamp: Stamp,
    pub sha256: [u8; 32],
    pub format: Format,
    /// Is it an archive (`None`: not known, from an older stat cache)?
    pub container: Option<bool>,
    /// Came from the stat cache (so need not be stored again).
    pub cached: bool,
}

/// Is the file at `path` an archive (see `archive::detect_parts`)? Reads
/// its first and last bytes only; a file that cannot be read is not (its
/// own shard reports why).
pub fn is_archive(path: &std::path::Path, opts: &ReadLimits) -> bool {
    use crate::corpus::archive::{detect_parts, HEAD, TAIL};
    use std::io::{Read, Seek, SeekFrom};
    let Ok((mut file, meta)) = open_checked(path, opts) else {
        return false;
    };
    let mut head = Vec::with_capacity(HEAD);
    if (&mut file)
        .take(HEAD as u64)
        .read_to_end(&mut head)
        .is_err()
    {
        return false;
    }
    let from = meta.len().saturating_sub(TAIL as u64);
    let mut tail = Vec::with_capacity(TAIL);
    if file.seek(SeekFrom::Start(from)).is_err() || file.read_to_end(&mut tail).is_err() {
        return false;
    }
    detect_parts(&head, &tail).is_some()
}

/// Open a corpus file to read it, fail-closed on anything odd: opened
/// non-blocking (a FIFO cannot hang the reader) and, unless following
/// links, without following a link; it must be a regular file within the
/// size limit. Returns the file and what it looked like when opened.
fn open_checked(
    path: &std::path::Path,
    opts: &ReadLimits,
) -> Result<(File, std::fs::Metadata), (Reason, String)> {
    let mut flags = libc::O_NONBLOCK;
    if !opts.follow_symlinks {
        flags |= libc::O_NOFOLLOW;
    }
    let file = File::options()
        .read(true)
        .custom_flags(flags)
        .open(path)
        .map_err(io_failure)?;
    let before = file.metadata().map_err(io_failure)?;
    if !before.file_type().is_file() {
        return Err((Reason::NotRegular, "not a regular file when opened".into()));
    }
    if before.len() > opts.max_file_size {
        return Err((
            Reason::TooLarge,
            format!(
                "{} bytes, over the limit of {} (--max-file-size)",
                before.len(),
                opts.max_file_size
            ),
        ));
    }
    Ok((file, before))
}

/// Why a file could not be read, from the error.
pub fn io_failure(e: std::io::Error) -> (Reason, String) {
    let reason = match e.kind() {
        std::io::ErrorKind::NotFound => Reason::Vanished,
        _ if e.raw_os_error() == Some(libc::ELOOP) => Reason::Symlink,
        _ => Reason::Unreadable,
    };
    (reason, e.to_string())
}

/// Read a whole file into `buf`, fail-closed on anything odd (see
/// `open_checked`), and re-checked after the read so a file that changed
/// meanwhile is reported.
pub fn read_into(
    path: &std::path::Path,
    buf: &mut Vec<u8>,
    opts: &ReadLimits,
) -> Result<Stamp, (Reason, String)> {
    read_or_map(path, buf, opts, u64::MAX).map(|(stamp, _)| stamp)
}

/// Open a corpus file fail-closed (see `open_checked`) and map it when it
/// has `map_from` bytes or more, else read it whole into `buf` (checked as
/// `read_into` checks). Returns its stamp and, if it was mapped, the
/// mapping, whose user must check it after use (`Mapped::unchanged`).
pub fn read_or_map(
    path: &std::path::Path,
    buf: &mut Vec<u8>,
    opts: &ReadLimits,
    map_from: u64,
) -> Result<(Stamp, Option<Mapped>), (Reason, String)> {
    let (mut file, before) = open_checked(path, opts)?;
    if before.len() >= map_from {
        match Mapped::new(file, &before) {
            Ok(m) => return Ok((m.stamp(), Some(m))),
            Err(f) => file = f,
        }
    }
    Ok((read_opened(file, &before, buf, opts)?, None))
}

/// Read a file opened by `open_checked` (`before`: its metadata then) into
/// `buf`, and check that it did not change meanwhile.
fn read_opened(
    mut file: File,
    before: &std::fs::Metadata,
    buf: &mut Vec<u8>,
    opts: &ReadLimits,
) -> Result<Stamp, (Reason, String)> {
    buf.clear();
    // Shrink a buffer that an earlier huge file left behind, so one big
    // file does not pin its size in every worker for the rest of the run.
    if buf.capacity() > 64 << 20 && before.len() < 16 << 20 {
        *buf = Vec::new();
    }
    buf.reserve(before.len() as usize);
    (&mut file)
        .take(opts.max_file_size.saturating_add(1))
        .read_to_end(buf)
        .map_err(io_failure)?;
    let after = file.metadata().map_err(io_failure)?;
    let read = buf.len() as u64;
    if read != before.len()
        || after.len() != before.len()
        || after.mtime() != before.mtime()
        || after.mtime_nsec() != before.mtime_nsec()
    {
        return Err((
            Reason::Changed,
            format!(
                "changed while being read (size {} -> {}, {} bytes read)",
                before.len(),
                after.len(),
                read
            ),
        ));
    }
    Ok(Stamp {
        size: read,
        mtime: (after.mtime(), after.mtime_nsec()),
        ctime: (after.ctime(), after.ctime_nsec()),
        ino: after.ino(),
        dev: after.dev(),
    })
}

/// Hash files in order on the calling thread until `stop` is set: used on
/// the core that is idle while yara-x compiles the rules on one thread.
/// The scan re-reads each file and uses the early hash only when the file's
/// stamp (size, mtime, ctime, inode) is unchanged.
pub fn prehash(
    files: &[CorpusFile],
    mut out: Vec<Option<Box<PreHashed>>>,
    opts: &ReadLimits,
    stop: &std::sync::atomic::AtomicBool,
) -> Vec<Option<Box<PreHashed>>> {
    out.resize(files.len(), None);
    let mut buf = Vec::new();
    for (slot, f) in out.iter_mut().zip(files) {
        if stop.load(std::sync::atomic::Ordering::Relaxed) || interrupted() {
            break;
        }
        if slot.is_some() {
            continue;
        }
        // Read, not mapped: this runs on the core the compiler leaves idle,
        // where a copy costs no wall time (and the scan's mapping is then
        // the only one of a file).
        *slot = early_hash(f, &mut buf, opts, false);
    }
    out
}

/// One file's early hash: read (or, with `map`, mapped from `MAP_FROM`
/// bytes on, as the scan does) and hashed; `None` if it could not be, or
/// changed meanwhile (the scan will say why).
fn early_hash(
    f: &CorpusFile,
    buf: &mut Vec<u8>,
    opts: &ReadLimits,
    map: bool,
) -> Option<Box<PreHashed>> {
    // An archive member has no stamp of its own: the scan reads it.
    if f.member_names().is_some() {
        return None;
    }
    let map_from = if map { MAP_FROM } else { u64::MAX };
    let (stamp, mapped) = read_or_map(f.path(), buf, opts, map_from).ok()?;
    let data = mapped.as_ref().map_or(&buf[..], Mapped::data);
    let hashed = Box::new(PreHashed {
        stamp,
        sha256: Sha256::digest(data).into(),
        format: crate::corpus::format::detect(data),
        container: Some(crate::corpus::archive::detect(data).is_some()),
        cached: false,
    });
    match mapped.map_or(Ok(()), |m| m.unchanged()) {
        Ok(()) => Some(hashed),
        Err(_) => None,
    }
}

/// Hash, on every thread, the files `pre` has no hash for and `skip` does
/// not exclude (a sharded run must know every file's content hash to find
/// its own).
pub fn hash_rest(
    files: &[CorpusFile],
    mut pre: Vec<Option<Box<PreHashed>>>,
    skip: &[bool],
    opts: &ReadLimits,
    threads: usize,
) -> Vec<Option<Box<PreHashed>>> {
    pre.resize(files.len(), None);
    let run = || {
        files
            .par_iter()
            .zip(pre.into_par_iter())
            .enumerate()
            .map_init(Vec::new, |buf, (i, (f, p))| {
                if p.is_some() || skip.get(i).copied().unwrap_or(false) || interrupted() {
                    return p;
                }
                early_hash(f, buf, opts, true)
            })
            .collect()
    };
    match rayon::ThreadPoolBuilder::new().num_threads(threads).build() {
        Ok(pool) => pool.install(run),
        Err(_) => run(),
    }
}
