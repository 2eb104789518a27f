//! The members of packages and installers, read in place: the zip family
//! (found by its end-of-central-directory record, so a PE with a zip
//! appended opens too), tar, lone gzip / xz / zstd / bzip2 streams (a
//! `.tgz` is a stream around a tar), ar (a `.deb`: its control and data
//! tars), 7z, CAB (MSZIP, LZX), RPM (the cpio payload, whatever its
//! compression) and MSI (its embedded CABs, members named from its File
//! table, and its other streams, such as Binary-table DLLs). Formats are
//! told by content, never by name; a file that only looks like a zip or a
//! compound file (stray `PK` bytes, an Office document) and does not open
//! as one is no container, not a failure.
//!
//! Nothing is written to disk: each regular member is decoded into memory,
//! up to the member cap, and handed to the caller with its path (the list
//! of names from the outermost container in). A member that is itself an
//! archive is opened too, to a depth cap. Compression layers and a
//! `.deb`'s tars are not members of their own: only what they hold is.
//!
//! Bomb-safe and fail-closed: every cap counts the bytes the decoders
//! actually produce and stops them there (sizes an archive declares are
//! never trusted); a cap that is hit, an encrypted, corrupt or unsupported
//! member is reported as `Entry::Unscanned` with its reason, never skipped.
//!
//! Not wired into the corpus yet (issue: archives in place): the corpus
//! entry that names a member, and the scan of members, come next.

mod indexed;
mod unix;
mod windows;

use std::cell::Cell;
use std::io::{self, Read};
use std::rc::Rc;
use std::time::{Duration, Instant};

/// The limits of one top-level archive (and everything nested in it).
#[derive(Debug, Clone)]
pub struct Caps {
    /// Containers inside containers: the top-level archive is depth 1.
    pub depth: u32,
    /// Members of one container.
    pub members: u64,
    /// Bytes of one member, decoded (the corpus' `max_file_size`).
    pub member_bytes: u64,
    /// Bytes decoded in all, per top-level archive.
    pub total_bytes: u64,
    /// Decoded bytes per compressed byte of one stream or member, checked
    /// once `ratio_after` bytes were decoded.
    pub ratio: u64,
    pub ratio_after: u64,
    /// Wall time per top-level archive, reading only (the time the
    /// caller spends on each member is not counted).
    pub time: Duration,
    /// The largest dictionary (window) a stream may ask for (xz, zstd).
    pub dictionary_bytes: u64,
}

impl Default for Caps {
    fn default() -> Self {
        Caps {
            depth: 5,
            members: 10_000,
            member_bytes: 256 << 20,
            total_bytes: 1 << 30,
            ratio: 100,
            ratio_after: 100 << 10,
            time: Duration::from_secs(120),
            dictionary_bytes: 128 << 20,
        }
    }
}

/// A container format, told by content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Zip,
    Tar,
    Gzip,
    Xz,
    Zstd,
    Bzip2,
    Ar,
    SevenZip,
    Cab,
    Rpm,
    Msi,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Zip => "zip",
            Format::Tar => "tar",
            Format::Gzip => "gzip",
            Format::Xz => "xz",
            Format::Zstd => "zstd",
            Format::Bzip2 => "bzip2",
            Format::Ar => "ar",
            Format::SevenZip => "7z",
            Format::Cab => "cab",
            Format::Rpm => "rpm",
            Format::Msi => "msi",
        }
    }

    /// A compression layer around one stream (not a container of names).
    fn is_stream(self) -> bool {
        matches!(
            self,
            Format::Gzip | Format::Xz | Format::Zstd | Format::Bzip2
        )
    }
}

/// Why a member (or the rest of a container) was not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// Nested deeper than `Caps::depth`.
    Depth,
    /// The container has more than `Caps::members` members.
    Members,
    /// The member decodes to more than `Caps::member_bytes`.
    MemberSize,
    /// The archive decodes to more than `Caps::total_bytes`.
    TotalSize,
    /// Decodes to more than `Caps::ratio` bytes per compressed byte.
    Ratio,
    /// Zip entries whose data overlap (a bomb technique).
    Overlap,
    /// Past `Caps::time`.
    Time,
    /// Asks for a dictionary larger than `Caps::dictionary_bytes`.
    Dictionary,
    Encrypted,
    Corrupt,
    Unsupported,
}

impl Why {
    pub fn as_str(self) -> &'static str {
        match self {
            Why::Depth => "archive_depth",
            Why::Members => "archive_members",
            Why::MemberSize => "too_large",
            Why::TotalSize => "archive_size",
            Why::Ratio => "archive_ratio",
            Why::Overlap => "archive_overlap",
            Why::Time => "timeout",
            Why::Dictionary => "archive_dictionary",
            Why::Encrypted => "encrypted",
            Why::Corrupt => "corrupt",
            Why::Unsupported => "unsupported",
        }
    }
}

/// What a container holds, one member at a time. `path` names the member
/// from the outermost container in (raw bytes: names are only names).
#[derive(Debug)]
pub enum Entry<'a> {
    /// A regular member, decoded.
    File { path: &'a [Vec<u8>], data: &'a [u8] },
    /// A link, directory or device member: listed, not read.
    Listed { path: &'a [Vec<u8>], what: String },
    /// A member (or the rest of a container, then `path` names the
    /// container) that was not read.
    Unscanned {
        path: &'a [Vec<u8>],
        why: Why,
        detail: String,
    },
}

/// How much of a file's start and end `detect_parts` needs: a tar header,
/// and a zip end record with the longest comment.
pub const HEAD: usize = 512;
pub const TAIL: usize = 65_535 + 22;

/// The container format of `data`, if it is one.
pub fn detect(data: &[u8]) -> Option<Format> {
    let tail = &data[data.len().saturating_sub(TAIL)..];
    detect_parts(&data[..data.len().min(HEAD)], tail)
}

/// `detect` from a file's first `HEAD` bytes and last `TAIL` bytes only
/// (the whole file when it is shorter): whether another shard's file is an
/// archive, without reading it all.
pub fn detect_parts(head: &[u8], tail: &[u8]) -> Option<Format> {
    let data = head;
    if data.starts_with(&[0x1f, 0x8b]) {
        Some(Format::Gzip)
    } else if data.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Some(Format::Xz)
    } else if data.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Some(Format::Zstd)
    } else if data.starts_with(b"BZh") && data.get(3).is_some_and(|d| (b'1'..=b'9').contains(d)) {
        Some(Format::Bzip2)
    } else if is_deb(data) {
        Some(Format::Ar)
    } else if data.starts_with(&[b'7', b'z', 0xbc, 0xaf, 0x27, 0x1c]) {
        Some(Format::SevenZip)
    } else if data.starts_with(b"MSCF\0\0\0\0") {
        Some(Format::Cab)
    } else if data.starts_with(&[0xed, 0xab, 0xee, 0xdb]) {
        Some(Format::Rpm)
    } else if data.starts_with(&[0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1]) {
        Some(Format::Msi)
    } else if is_tar(data) {
        Some(Format::Tar)
    } else if has_zip_end(tail) {
        Some(Format::Zip)
    } else {
        None
    }
}

/// A `.deb`: an ar archive whose first member is `debian-binary`. Other ar
/// archives (static and import libraries: `.a`, MSVC `.lib`) are files,
/// not containers: their members are object files, and the MSVC variant
/// (timestamps of `-1`) is not one the ar reader takes.
fn is_deb(data: &[u8]) -> bool {
    data.starts_with(b"!<arch>\n") && data.get(8..21) == Some(&b"debian-binary"[..])
}

/// A tar header: `ustar` at 257 (POSIX and GNU), or a v7 header whose
/// checksum is right.
fn is_tar(data: &[u8]) -> bool {
    let Some(h) = data.get(..512) else {
        return false;
    };
    if &h[257..262] == b"ustar" {
        return true;
    }
    let field = std::str::from_utf8(&h[148..156]).unwrap_or("");
    let Ok(want) = u32::from_str_radix(field.trim_matches(|c| c == ' ' || c == '\0'), 8) else {
        return false;
    };
    let sum: u32 = h
        .iter()
        .enumerate()
        .map(|(i, b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u32::from(*b)
            }
        })
        .sum();
    sum == want && h[0] != 0
}

/// An end-of-central-directory record in the last 64 KiB + 22 bytes (its
/// comment is at most 65,535 bytes), as `unzip` finds it.
fn has_zip_end(data: &[u8]) -> bool {
    let from = data.len().saturating_sub(65_535 + 22);
    data[from..].windows(4).any(|w| w == [b'P', b'K', 5, 6])
}

/// Open the container `data` (named `name`, of format `format`) and hand
/// every member to `visit`, nested ones too. Returns the bytes decoded.
pub fn open(
    data: &[u8],
    name: &[u8],
    format: Format,
    caps: &Caps,
    visit: &mut dyn FnMut(Entry<'_>),
) -> u64 {
    let mut w = Walk {
        caps,
        started: Instant::now(),
        visiting: Rc::new(Cell::new(Duration::ZERO)),
        produced: Rc::new(Cell::new(0)),
        visit,
    };
    let mut path = vec![name.to_vec()];
    w.container(data, &mut path, 1, format);
    w.produced.get()
}

struct Walk<'c, 'v> {
    caps: &'c Caps,
    started: Instant,
    /// Time spent in `visit` (scanning members), which is not the
    /// archive's: its clock counts reading only.
    visiting: Rc<Cell<Duration>>,
    /// Bytes decoded so far in this top-level archive.
    produced: Rc<Cell<u64>>,
    visit: &'v mut dyn FnMut(Entry<'_>),
}

/// A cap hit while decoding, carried through `io::Error`.
#[derive(Debug)]
struct Hit(Why, String);

impl std::fmt::Display for Hit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.0.as_str(), self.1)
    }
}

impl std::error::Error for Hit {}

fn hit(why: Why, detail: String) -> io::Error {
    io::Error::other(Hit(why, detail))
}

/// The reason of a failed read: a cap's, else corrupt (or unsupported).
fn why_of(e: &io::Error) -> (Why, String) {
    if let Some(h) = e.get_ref().and_then(|x| x.downcast_ref::<Hit>()) {
        return (h.0, h.1.clone());
    }
    let s = e.to_string();
    // xz's memory limit, zstd's window limit: the dictionary cap.
    if s.contains("mem_limit") || s.contains("too much memory") {
        return (Why::Dictionary, s);
    }
    if e.kind() == io::ErrorKind::Unsupported
        || s.contains("unsupported")
        || s.contains("Unsupported")
    {
        (Why::Unsupported, s)
    } else {
        (Why::Corrupt, s)
    }
}

/// Counts the compressed bytes a decoder takes.
struct Counting<R> {
    inner: R,
    n: Rc<Cell<u64>>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let k = self.inner.read(buf)?;
        self.n.set(self.n.get() + k as u64);
        Ok(k)
    }
}

/// Wraps a decoder: counts what it produces against the archive's total,
/// its ratio against the compressed bytes it took, and the clock.
struct Guarded<'c, R> {
    inner: R,
    caps: &'c Caps,
    started: Instant,
    visiting: Rc<Cell<Duration>>,
    /// Decoded by this decoder.
    out: u64,
    /// Compressed bytes it took (None: not known, e.g. a stored member).
    input: Option<Rc<Cell<u64>>>,
    produced: Rc<Cell<u64>>,
}

impl<R: Read> Read for Guarded<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.started.elapsed().saturating_sub(self.visiting.get()) > self.caps.time {
            return Err(hit(
                Why::Time,
                format!("archive not read within {} s", self.caps.time.as_secs()),
            ));
        }
        let k = self.inner.read(buf)?;
        self.out += k as u64;
        let total = self.produced.get() + k as u64;
        self.produced.set(total);
        if total > self.caps.total_bytes {
            return Err(hit(
                Why::TotalSize,
                format!(
                    "decodes to more than {} bytes in all",
                    self.caps.total_bytes
                ),
            ));
        }
        if let Some(input) = &self.input {
            let taken = input.get().max(1);
            if self.out > self.caps.ratio_after && self.out > self.caps.ratio.saturating_mul(taken)
            {
                return Err(hit(
                    Why::Ratio,
                    format!(
                        "decodes to more than {}:1 ({} bytes from {taken})",
                        self.caps.ratio, self.out
                    ),
                ));
            }
        }
        Ok(k)
    }
}

/// Read all of `r`, at most `cap` bytes (one more is an error).
fn read_capped(r: &mut dyn Read, cap: u64) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    r.take(cap + 1).read_to_end(&mut out)?;
    if out.len() as u64 > cap {
        return Err(hit(
            Why::MemberSize,
            format!("member decodes to more than {cap} bytes"),
        ));
    }
    Ok(out)
}

impl<'c> Walk<'c, '_> {
    /// Hand `e` to the caller, its time off the archive's clock.
    fn emit(&mut self, e: Entry<'_>) {
        let t = Instant::now();
        (self.visit)(e);
        self.visiting.set(self.visiting.get() + t.elapsed());
    }

    fn unscanned(&mut self, path: &[Vec<u8>], why: Why, detail: String) {
        self.emit(Entry::Unscanned { path, why, detail });
    }

    /// A read that failed: unscanned with the cap's reason, else corrupt.
    fn failed(&mut self, path: &[Vec<u8>], e: &io::Error) {
        let (why, detail) = why_of(e);
        self.unscanned(path, why, detail);
    }

    /// Past the member cap with `n` members: the container (`path`) is
    /// unscanned for those past it, and true is returned.
    fn over_members(&mut self, path: &[Vec<u8>], n: u64) -> bool {
        if n <= self.caps.members {
            return false;
        }
        self.unscanned(
            path,
            Why::Members,
            format!(
                "{n} members or more, more than {}; those past it not read",
                self.caps.members
            ),
        );
        true
    }

    fn guard<R: Read>(&self, inner: R, input: Option<Rc<Cell<u64>>>) -> Guarded<'c, R> {
        Guarded {
            inner,
            caps: self.caps,
            started: self.started,
            visiting: self.visiting.clone(),
            out: 0,
            input,
            produced: self.produced.clone(),
        }
    }

    /// A regular member: handed over, then opened if it is an archive.
    fn member(&mut self, data: &[u8], path: &mut Vec<Vec<u8>>, depth: u32) {
        self.emit(Entry::File { path, data });
        if let Some(f) = detect(data) {
            if depth >= self.caps.depth {
                self.unscanned(
                    path,
                    Why::Depth,
                    format!("a {} nested deeper than {}", f.as_str(), self.caps.depth),
                );
            } else {
                self.container(data, path, depth + 1, f);
            }
        }
    }

    fn container(&mut self, data: &[u8], path: &mut Vec<Vec<u8>>, depth: u32, f: Format) {
        match f {
            Format::Zip => self.zip(data, path, depth),
            Format::Tar => self.tar(data, path, depth),
            Format::Ar => self.ar(data, path, depth),
            Format::SevenZip => self.seven_zip(data, path, depth),
            Format::Cab => self.cab(data, path, depth),
            Format::Rpm => self.rpm(data, path, depth),
            Format::Msi => self.msi(data, path, depth),
            _ => self.stream(data, path, depth, f),
        }
    }

    /// A decoder for the stream format `f` over `input`, with the
    /// dictionary cap where the format declares one.
    fn decoder<'a>(&self, f: Format, input: Counting<&'a [u8]>) -> io::Result<Box<dyn Read + 'a>> {
        Ok(match f {
            Format::Gzip => Box::new(flate2::read::MultiGzDecoder::new(input)),
            Format::Bzip2 => Box::new(bzip2::read::MultiBzDecoder::new(input)),
            Format::Xz => {
                let kib = u32::try_from(self.caps.dictionary_bytes >> 10).unwrap_or(u32::MAX);
                Box::new(lzma_rust2::XzReader::new_mem_limit(input, true, kib))
            }
            Format::Zstd => {
                let mut d = zstd::stream::read::Decoder::new(input)?;
                let log = 63 - self.caps.dictionary_bytes.max(1 << 10).leading_zeros();
                d.window_log_max(log)?;
                Box::new(d)
            }
            _ => return Err(io::Error::other("not a stream format")),
        })
    }
}

/// The name of what a lone stream holds: the stream's name without its
/// compression suffix (`x.exe.gz` holds `x.exe`, `x.tgz` `x.tar`), else
/// the name itself.
fn inner_name(name: &[u8], f: Format) -> Vec<u8> {
    let suffixes: &[(&[u8], &[u8])] = match f {
        Format::Gzip => &[(b".tgz", b".tar"), (b".gz", b""), (b".z", b"")],
        Format::Xz => &[(b".txz", b".tar"), (b".xz", b"")],
        Format::Zstd => &[(b".tzst", b".tar"), (b".zst", b""), (b".zstd", b"")],
        Format::Bzip2 => &[(b".tbz2", b".tar"), (b".tbz", b".tar"), (b".bz2", b"")],
        _ => &[],
    };
    let base = name.rsplit(|b| *b == b'/').next().unwrap_or(name);
    let lower = base.to_ascii_lowercase();
    for (suffix, repl) in suffixes {
        if lower.ends_with(suffix) && base.len() > suffix.len() {
            let mut out = base[..base.len() - suffix.len()].to_vec();
            out.extend_from_slice(repl);
            return out;
        }
    }
    base.to_vec()
}

#[cfg(test)]
mod tests;
