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
    /// Wall time per top-level archive.
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

/// The container format of `data`, if it is one.
pub fn detect(data: &[u8]) -> Option<Format> {
    if data.starts_with(&[0x1f, 0x8b]) {
        Some(Format::Gzip)
    } else if data.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Some(Format::Xz)
    } else if data.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Some(Format::Zstd)
    } else if data.starts_with(b"BZh") && data.get(3).is_some_and(|d| (b'1'..=b'9').contains(d)) {
        Some(Format::Bzip2)
    } else if data.starts_with(b"!<arch>\n") {
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
    } else if has_zip_end(data) {
        Some(Format::Zip)
    } else {
        None
    }
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
/// every member to `visit`, nested ones too.
pub fn open(
    data: &[u8],
    name: &[u8],
    format: Format,
    caps: &Caps,
    visit: &mut dyn FnMut(Entry<'_>),
) {
    let mut w = Walk {
        caps,
        started: Instant::now(),
        produced: Rc::new(Cell::new(0)),
        visit,
    };
    let mut path = vec![name.to_vec()];
    w.container(data, &mut path, 1, format);
}

struct Walk<'c, 'v> {
    caps: &'c Caps,
    started: Instant,
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
    /// Decoded by this decoder.
    out: u64,
    /// Compressed bytes it took (None: not known, e.g. a stored member).
    input: Option<Rc<Cell<u64>>>,
    produced: Rc<Cell<u64>>,
}

impl<R: Read> Read for Guarded<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.started.elapsed() > self.caps.time {
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
    fn unscanned(&mut self, path: &[Vec<u8>], why: Why, detail: String) {
        (self.visit)(Entry::Unscanned { path, why, detail });
    }

    fn guard<R: Read>(&self, inner: R, input: Option<Rc<Cell<u64>>>) -> Guarded<'c, R> {
        Guarded {
            inner,
            caps: self.caps,
            started: self.started,
            out: 0,
            input,
            produced: self.produced.clone(),
        }
    }

    /// A regular member: handed over, then opened if it is an archive.
    fn member(&mut self, data: &[u8], path: &mut Vec<Vec<u8>>, depth: u32) {
        (self.visit)(Entry::File { path, data });
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

    /// A lone compression stream: a tar inside is read as the tar (the
    /// stream is only a layer); anything else is one member, named after
    /// the stream without its compression suffix.
    fn stream(&mut self, data: &[u8], path: &mut Vec<Vec<u8>>, depth: u32, f: Format) {
        let taken = Rc::new(Cell::new(0));
        let input = Counting {
            inner: data,
            n: taken.clone(),
        };
        let dec = match self.decoder(f, input) {
            Ok(d) => d,
            Err(e) => {
                let (why, detail) = why_of(&e);
                return self.unscanned(path, why, detail);
            }
        };
        let mut guarded = self.guard(dec, Some(taken));
        // Enough to tell a tar from anything else.
        let mut head = Vec::new();
        if let Err(e) = (&mut guarded).take(512).read_to_end(&mut head) {
            let (why, detail) = why_of(&e);
            return self.unscanned(path, why, detail);
        }
        if is_tar(&head) {
            let chained = io::Cursor::new(head).chain(guarded);
            return self.tar_from(chained, path, depth);
        }
        let rest = read_capped(
            &mut guarded,
            self.caps.member_bytes.saturating_sub(head.len() as u64),
        );
        drop(guarded);
        match rest {
            Ok(mut more) => {
                head.append(&mut more);
                let inner = inner_name(path.last().map(Vec::as_slice).unwrap_or(b""), f);
                path.push(inner);
                self.member(&head, path, depth);
                path.pop();
            }
            Err(e) => {
                let (why, detail) = why_of(&e);
                self.unscanned(path, why, detail);
            }
        }
    }

    fn tar(&mut self, data: &[u8], path: &mut Vec<Vec<u8>>, depth: u32) {
        let r = self.guard(data, None);
        self.tar_from(r, path, depth);
    }

    /// The members of a tar read from `r` (sequentially: a tar inside a
    /// stream is never held whole).
    fn tar_from<R: Read>(&mut self, r: R, path: &mut Vec<Vec<u8>>, depth: u32) {
        let mut archive = tar::Archive::new(r);
        let entries = match archive.entries() {
            Ok(e) => e,
            Err(e) => {
                let (why, detail) = why_of(&e);
                return self.unscanned(path, why, detail);
            }
        };
        let mut count = 0u64;
        for entry in entries {
            let mut entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    let (why, detail) = why_of(&e);
                    return self.unscanned(path, why, detail);
                }
            };
            count += 1;
            if count > self.caps.members {
                return self.unscanned(
                    path,
                    Why::Members,
                    format!("more than {} members; the rest not read", self.caps.members),
                );
            }
            path.push(entry.path_bytes().into_owned());
            let kind = entry.header().entry_type();
            if kind.is_file() || kind == tar::EntryType::Continuous {
                match read_capped(&mut entry, self.caps.member_bytes) {
                    Ok(data) => self.member(&data, path, depth),
                    Err(e) => {
                        let (why, detail) = why_of(&e);
                        let stop = why != Why::MemberSize;
                        self.unscanned(path, why, detail);
                        if stop {
                            path.pop();
                            return;
                        }
                    }
                }
            } else {
                let target = entry
                    .link_name_bytes()
                    .map(|t| String::from_utf8_lossy(&t).into_owned());
                let what = match (kind, target) {
                    (tar::EntryType::Link, Some(t)) => format!("hard link to {t}"),
                    (tar::EntryType::Symlink, Some(t)) => format!("symbolic link to {t}"),
                    (tar::EntryType::Directory, _) => "directory".to_string(),
                    (k, _) => format!("{k:?}").to_lowercase(),
                };
                (self.visit)(Entry::Listed { path, what });
            }
            path.pop();
        }
    }

    fn zip(&mut self, data: &[u8], path: &mut Vec<Vec<u8>>, depth: u32) {
        let mut z = match zip::ZipArchive::new(io::Cursor::new(data)) {
            Ok(z) => z,
            // Found by a stray end record (a PE that links a zip library
            // carries its signature): not a zip, no members.
            Err(_) if !data.starts_with(b"PK") => return,
            Err(e) => return self.unscanned(path, Why::Corrupt, e.to_string()),
        };
        if z.len() as u64 > self.caps.members {
            return self.unscanned(
                path,
                Why::Members,
                format!("{} members, more than {}", z.len(), self.caps.members),
            );
        }
        // Overlapping entries (several names over one compressed stream)
        // are refused whole: the classic non-recursive bomb.
        let mut spans = Vec::new();
        for i in 0..z.len() {
            if let Ok(f) = z.by_index_raw(i) {
                if let Some(start) = f.data_start() {
                    spans.push((f.header_start(), start.saturating_add(f.compressed_size())));
                }
            }
        }
        spans.sort_unstable();
        if spans.windows(2).any(|w| w[1].0 < w[0].1) {
            return self.unscanned(
                path,
                Why::Overlap,
                "entries whose data overlap; not read".into(),
            );
        }
        for i in 0..z.len() {
            let (name, encrypted, dir, link, compressed) = match z.by_index_raw(i) {
                Ok(f) => (
                    f.name_raw().to_vec(),
                    f.encrypted(),
                    f.is_dir(),
                    f.is_symlink(),
                    f.compressed_size(),
                ),
                Err(e) => return self.unscanned(path, Why::Corrupt, e.to_string()),
            };
            path.push(name);
            if dir || link {
                let what = if dir { "directory" } else { "symbolic link" };
                (self.visit)(Entry::Listed {
                    path,
                    what: what.into(),
                });
            } else if encrypted {
                self.unscanned(path, Why::Encrypted, "encrypted member".into());
            } else {
                let read = match z.by_index(i) {
                    Ok(f) => {
                        let taken = Rc::new(Cell::new(compressed));
                        let mut g = Guarded {
                            inner: f,
                            caps: self.caps,
                            started: self.started,
                            out: 0,
                            input: Some(taken),
                            produced: self.produced.clone(),
                        };
                        read_capped(&mut g, self.caps.member_bytes)
                    }
                    Err(zip::result::ZipError::UnsupportedArchive(m)) => {
                        Err(io::Error::new(io::ErrorKind::Unsupported, m))
                    }
                    Err(e) => Err(io::Error::other(e.to_string())),
                };
                match read {
                    Ok(data) => self.member(&data, path, depth),
                    Err(e) => {
                        let (why, detail) = why_of(&e);
                        self.unscanned(path, why, detail);
                    }
                }
            }
            path.pop();
        }
    }

    /// An ar archive. A `.deb` (its first member `debian-binary`): the
    /// control and data tars are layers, their members are the entries.
    fn ar(&mut self, data: &[u8], path: &mut Vec<Vec<u8>>, depth: u32) {
        let mut a = ar::Archive::new(data);
        let mut count = 0u64;
        let mut deb = false;
        while let Some(entry) = a.next_entry() {
            let mut entry = match entry {
                Ok(e) => e,
                Err(e) => return self.unscanned(path, Why::Corrupt, e.to_string()),
            };
            count += 1;
            if count > self.caps.members {
                return self.unscanned(
                    path,
                    Why::Members,
                    format!("more than {} members; the rest not read", self.caps.members),
                );
            }
            let name = entry.header().identifier().to_vec();
            if count == 1 && name == b"debian-binary" {
                deb = true;
            }
            let layer = deb && (name.starts_with(b"control.tar") || name.starts_with(b"data.tar"));
            let mut g = self.guard(&mut entry, None);
            let read = read_capped(&mut g, self.caps.member_bytes);
            drop(g);
            path.push(name);
            match read {
                Ok(body) => match detect(&body) {
                    Some(f) if layer && (f.is_stream() || f == Format::Tar) => {
                        path.pop();
                        self.container(&body, path, depth, f);
                        continue;
                    }
                    _ => self.member(&body, path, depth),
                },
                Err(e) => {
                    let (why, detail) = why_of(&e);
                    self.unscanned(path, why, detail);
                }
            }
            path.pop();
        }
    }
}

impl Walk<'_, '_> {
    /// A 7z archive. Its dictionary is capped before anything is decoded;
    /// one decoder thread (the scan has the cores). A cap hit inside a
    /// solid block abandons the block: its later entries are unscanned with
    /// the same reason, never skipped.
    fn seven_zip(&mut self, data: &[u8], path: &mut Vec<Vec<u8>>, depth: u32) {
        use sevenz_rust2::{ArchiveReader, EntryDecision, Error as E, Password};
        let kib = usize::try_from(self.caps.dictionary_bytes >> 10).unwrap_or(usize::MAX);
        let why_7z = |e: &E| -> (Why, String) {
            let why = match e {
                E::MaxMemLimited { .. } => Why::Dictionary,
                E::PasswordRequired => Why::Encrypted,
                // Without a password: AES shows as a method not built in.
                E::UnsupportedCompressionMethod(m) if m.to_ascii_lowercase().contains("aes") => {
                    Why::Encrypted
                }
                E::UnsupportedCompressionMethod(_)
                | E::Unsupported(_)
                | E::UnsupportedVersion { .. }
                | E::ExternalUnsupported => Why::Unsupported,
                E::Io(io, _) => return why_of(io),
                _ => Why::Corrupt,
            };
            (why, e.to_string())
        };
        let mut reader = match ArchiveReader::new_with_memory_limit(
            io::Cursor::new(data),
            Password::empty(),
            kib,
        ) {
            Ok(r) => r,
            Err(e) => {
                let (why, detail) = why_7z(&e);
                return self.unscanned(path, why, detail);
            }
        };
        reader.set_thread_count(1);
        let entries = reader.archive().files.clone();
        if entries.len() as u64 > self.caps.members {
            return self.unscanned(
                path,
                Why::Members,
                format!("{} members, more than {}", entries.len(), self.caps.members),
            );
        }
        let mut seen = vec![false; entries.len()];
        let mut at = 0usize;
        let mut abandoned: Option<(Why, String)> = None;
        let result = reader.for_each_entries_with_decision(|entry, r| {
            // Entries come in archive order; find this one's index.
            while at < entries.len() && entries[at].name() != entry.name() {
                at += 1;
            }
            if let Some(s) = seen.get_mut(at) {
                *s = true;
            }
            path.push(entry.name().as_bytes().to_vec());
            let mut decision = EntryDecision::Continue;
            if entry.is_directory() {
                (self.visit)(Entry::Listed {
                    path,
                    what: "directory".into(),
                });
            } else {
                let mut g = self.guard(r, None);
                match read_capped(&mut g, self.caps.member_bytes) {
                    Ok(body) => self.member(&body, path, depth),
                    Err(e) => {
                        let (why, detail) = why_of(&e);
                        self.unscanned(path, why, detail.clone());
                        // The rest of this block is not decoded.
                        abandoned = Some((why, detail));
                        decision = EntryDecision::SkipBlock;
                    }
                }
            }
            path.pop();
            at += 1;
            Ok(decision)
        });
        if let Err(e) = result {
            let (why, detail) = why_7z(&e);
            abandoned.get_or_insert((why, detail));
        }
        // Every entry not reached is unscanned: a gate never passes over
        // what it did not read.
        let (why, detail) = abandoned.unwrap_or((Why::Corrupt, "not reached".into()));
        for (i, e) in entries.iter().enumerate() {
            if !seen[i] && !e.is_directory() {
                path.push(e.name().as_bytes().to_vec());
                self.unscanned(path, why, format!("not read: {detail}"));
                path.pop();
            }
        }
    }

    /// An MSI (a compound file with MSI tables; any other compound file is
    /// no container): every stream that is not a table is read; an
    /// embedded CAB is opened with its members named from the File table
    /// (`FileName`'s long name), other streams (Binary-table DLLs such as
    /// custom actions, an icon) are members under their stream names.
    fn msi(&mut self, data: &[u8], path: &mut Vec<Vec<u8>>, depth: u32) {
        let Ok(mut pkg) = msi::Package::open(io::Cursor::new(data)) else {
            return;
        };
        let mut names = std::collections::HashMap::new();
        if pkg.has_table("File") {
            if let Ok(rows) = pkg.select_rows(msi::Select::table("File")) {
                for row in rows {
                    if let (Some(key), Some(name)) =
                        (row["File"].as_str(), row["FileName"].as_str())
                    {
                        let long = name.rsplit('|').next().unwrap_or(name);
                        names.insert(key.to_string(), long.to_string());
                    }
                }
            }
        }
        let mut streams: Vec<String> = pkg.streams().collect();
        streams.sort();
        if streams.len() as u64 > self.caps.members {
            return self.unscanned(
                path,
                Why::Members,
                format!("{} streams, more than {}", streams.len(), self.caps.members),
            );
        }
        for s in streams {
            let read = match pkg.read_stream(&s) {
                Ok(r) => {
                    let mut g = self.guard(r, None);
                    read_capped(&mut g, self.caps.member_bytes)
                }
                Err(e) => Err(e),
            };
            path.push(s.as_bytes().to_vec());
            match read {
                Ok(body) if detect(&body) == Some(Format::Cab) => {
                    // The CAB is a layer: its files are the members.
                    path.pop();
                    self.cab_named(&body, path, depth, Some(&names));
                    continue;
                }
                Ok(body) => self.member(&body, path, depth),
                Err(e) => {
                    let (why, detail) = why_of(&e);
                    self.unscanned(path, why, detail);
                }
            }
            path.pop();
        }
    }

    /// An RPM: its headers say where the payload starts; the payload is a
    /// cpio archive, compressed or not (told by content), whose regular
    /// files are the members (a hard link's other names carry no data and
    /// are listed).
    fn rpm(&mut self, data: &[u8], path: &mut Vec<Vec<u8>>, depth: u32) {
        let mut cur = io::Cursor::new(data);
        if let Err(e) = rpm::PackageMetadata::parse(&mut cur) {
            return self.unscanned(path, Why::Corrupt, format!("RPM headers: {e}"));
        }
        let payload = &data[(cur.position() as usize).min(data.len())..];
        let taken = Rc::new(Cell::new(0));
        let input = Counting {
            inner: payload,
            n: taken.clone(),
        };
        let dec: Box<dyn Read + '_> = match detect(payload) {
            Some(f) if f.is_stream() => match self.decoder(f, input) {
                Ok(d) => d,
                Err(e) => {
                    let (why, detail) = why_of(&e);
                    return self.unscanned(path, why, detail);
                }
            },
            _ if payload.starts_with(b"07070") => Box::new(input),
            _ => {
                return self.unscanned(
                    path,
                    Why::Unsupported,
                    "an RPM payload that is neither cpio nor a known compression of it".into(),
                )
            }
        };
        let mut r: Box<dyn Read + '_> = Box::new(self.guard(dec, Some(taken)));
        let mut count = 0u64;
        loop {
            let entry = match cpio::newc::Reader::new(r) {
                Ok(e) => e,
                Err(e) => {
                    let (why, detail) = why_of(&e);
                    return self.unscanned(path, why, detail);
                }
            };
            if entry.entry().is_trailer() {
                return;
            }
            count += 1;
            if count > self.caps.members {
                return self.unscanned(
                    path,
                    Why::Members,
                    format!("more than {} members; the rest not read", self.caps.members),
                );
            }
            let (name, mode, size, nlink) = {
                let e = entry.entry();
                (
                    e.name().as_bytes().to_vec(),
                    e.mode(),
                    e.file_size(),
                    e.nlink(),
                )
            };
            path.push(name);
            let mut entry = entry;
            if mode & 0o170000 == 0o100000 && !(size == 0 && nlink > 1) {
                match read_capped(&mut entry, self.caps.member_bytes) {
                    Ok(body) => self.member(&body, path, depth),
                    Err(e) => {
                        let (why, detail) = why_of(&e);
                        self.unscanned(path, why, detail);
                        path.pop();
                        if why != Why::MemberSize {
                            return;
                        }
                        // The rest of an oversized member is read past
                        // (still under the total, ratio and time caps).
                        match entry.finish() {
                            Ok(next) => {
                                r = next;
                                continue;
                            }
                            Err(e) => {
                                let (why, detail) = why_of(&e);
                                return self.unscanned(path, why, detail);
                            }
                        }
                    }
                }
            } else {
                let what = match mode & 0o170000 {
                    0o040000 => "directory".to_string(),
                    0o120000 => "symbolic link".to_string(),
                    0o100000 => "hard link (its data is under another name)".to_string(),
                    m => format!("special file (mode {m:o})"),
                };
                (self.visit)(Entry::Listed { path, what });
            }
            path.pop();
            r = match entry.finish() {
                Ok(next) => next,
                Err(e) => {
                    let (why, detail) = why_of(&e);
                    return self.unscanned(path, why, detail);
                }
            };
        }
    }

    /// A CAB: each folder's files, each decoded from its folder.
    fn cab(&mut self, data: &[u8], path: &mut Vec<Vec<u8>>, depth: u32) {
        self.cab_named(data, path, depth, None);
    }

    /// A CAB whose member names may be keys of a table (an MSI's File
    /// table): `names` maps them to the names shown.
    fn cab_named(
        &mut self,
        data: &[u8],
        path: &mut Vec<Vec<u8>>,
        depth: u32,
        names: Option<&std::collections::HashMap<String, String>>,
    ) {
        let mut c = match cab::Cabinet::new(io::Cursor::new(data)) {
            Ok(c) => c,
            Err(e) => return self.unscanned(path, Why::Corrupt, e.to_string()),
        };
        let map = names;
        let mut entries = Vec::new();
        for folder in c.folder_entries() {
            let unsupported = match folder.compression_type() {
                cab::CompressionType::Quantum(..) => Some("Quantum compression"),
                _ => None,
            };
            for f in folder.file_entries() {
                entries.push((f.name().to_string(), unsupported));
            }
        }
        if entries.len() as u64 > self.caps.members {
            return self.unscanned(
                path,
                Why::Members,
                format!("{} members, more than {}", entries.len(), self.caps.members),
            );
        }
        for (name, unsupported) in entries {
            let shown = map.and_then(|m| m.get(&name)).unwrap_or(&name);
            path.push(shown.as_bytes().to_vec());
            if let Some(what) = unsupported {
                self.unscanned(path, Why::Unsupported, format!("{what} is not read"));
            } else {
                let read = match c.read_file(&name) {
                    Ok(r) => {
                        let mut g = self.guard(r, None);
                        read_capped(&mut g, self.caps.member_bytes)
                    }
                    Err(e) => Err(e),
                };
                match read {
                    Ok(body) => self.member(&body, path, depth),
                    Err(e) => {
                        let (why, detail) = why_of(&e);
                        self.unscanned(path, why, detail);
                    }
                }
            }
            path.pop();
        }
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
mod tests {
    use super::*;
    use std::path::Path;
    use std::process::Command;

    /// Every entry of `data` as (path joined with `!`, what): the sha256
    /// of a file's bytes, `listed: ...`, or `unscanned REASON`.
    fn entries(data: &[u8], name: &str, caps: &Caps) -> Vec<(String, String)> {
        use sha2::{Digest, Sha256};
        let mut out = Vec::new();
        let f = detect(data).expect("an archive");
        open(data, name.as_bytes(), f, caps, &mut |e| {
            let join = |p: &[Vec<u8>]| {
                p.iter()
                    .map(|c| String::from_utf8_lossy(c).into_owned())
                    .collect::<Vec<_>>()
                    .join("!")
            };
            out.push(match e {
                Entry::File { path, data } => {
                    (join(path), crate::util::hex::hex(&Sha256::digest(data)))
                }
                Entry::Listed { path, what } => (join(path), format!("listed: {what}")),
                Entry::Unscanned { path, why, .. } => {
                    (join(path), format!("unscanned {}", why.as_str()))
                }
            });
        });
        out
    }

    fn sh(dir: &Path, script: &str) {
        let out = Command::new("sh")
            .current_dir(dir)
            .args(["-c", script])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{script}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn sha(data: &[u8]) -> String {
        use sha2::{Digest, Sha256};
        crate::util::hex::hex(&Sha256::digest(data))
    }

    /// Two real binaries of the repository's corpus in `dir/tree`.
    fn tree(dir: &Path) -> Vec<(String, String)> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/pypi/setuptools-75.6.0");
        std::fs::create_dir_all(dir.join("tree/bin")).unwrap();
        let mut want = Vec::new();
        for (f, to) in [("cli.exe", "bin/cli.exe"), ("gui.exe", "gui.exe")] {
            let data = std::fs::read(root.join(f)).unwrap();
            std::fs::write(dir.join("tree").join(to), &data).unwrap();
            want.push((to.to_string(), sha(&data)));
        }
        want
    }

    #[test]
    fn every_format_lists_what_the_real_tools_packed() {
        let d = tempfile::tempdir().unwrap();
        let want = tree(d.path());
        sh(
            d.path(),
            "cd tree && zip -qr ../a.zip . && tar cf ../a.tar bin gui.exe && cd .. \
            && gzip -k a.tar && xz -k a.tar && zstd -q a.tar && bzip2 -k a.tar \
            && gzip -c tree/gui.exe > gui.exe.gz",
        );
        let caps = Caps::default();
        let with = |prefix: &str, names: &[(String, String)]| -> Vec<(String, String)> {
            let mut v: Vec<_> = names
                .iter()
                .map(|(n, s)| (format!("{prefix}!{n}"), s.clone()))
                .collect();
            v.sort();
            v
        };
        let files = |v: Vec<(String, String)>| {
            let mut v: Vec<_> = v
                .into_iter()
                .filter(|(_, s)| !s.starts_with("listed"))
                .collect();
            v.sort();
            v
        };
        for name in [
            "a.zip",
            "a.tar",
            "a.tar.gz",
            "a.tar.xz",
            "a.tar.zst",
            "a.tar.bz2",
        ] {
            let data = std::fs::read(d.path().join(name)).unwrap();
            let got = files(entries(&data, name, &caps));
            let got: Vec<_> = got
                .into_iter()
                .map(|(p, s)| (p.replacen("!./", "!", 1), s))
                .collect();
            assert_eq!(got, with(name, &want), "{name}");
        }
        let gz = std::fs::read(d.path().join("gui.exe.gz")).unwrap();
        assert_eq!(
            entries(&gz, "gui.exe.gz", &caps),
            with("gui.exe.gz", &want[1..])
        );
    }

    #[test]
    fn a_deb_s_tars_are_layers_and_links_are_listed() {
        let d = tempfile::tempdir().unwrap();
        let want = tree(d.path());
        sh(d.path(), "mkdir -p pkg/DEBIAN pkg/usr && cp -r tree/* pkg/usr/ \
            && ln -s gui.exe pkg/usr/gui-link.exe \
            && printf 'Package: t\\nVersion: 1\\nArchitecture: all\\nMaintainer: t <t@example.org>\\nDescription: t\\n' > pkg/DEBIAN/control \
            && dpkg-deb -Zxz --root-owner-group -b pkg t.deb >/dev/null");
        let data = std::fs::read(d.path().join("t.deb")).unwrap();
        let got = entries(&data, "t.deb", &Caps::default());
        let find = |p: &str| got.iter().find(|(n, _)| n == p).map(|(_, w)| w.clone());
        assert_eq!(
            find("t.deb!./usr/bin/cli.exe"),
            Some(want[0].1.clone()),
            "{got:?}"
        );
        assert_eq!(find("t.deb!./usr/gui.exe"), Some(want[1].1.clone()));
        assert_eq!(
            find("t.deb!./usr/gui-link.exe").as_deref(),
            Some("listed: symbolic link to gui.exe")
        );
        assert!(
            find("t.deb!./control").is_some(),
            "control members are entries: {got:?}"
        );
        assert!(
            got.iter().all(|(n, _)| !n.contains("data.tar")),
            "the data tar is a layer: {got:?}"
        );
    }

    #[test]
    fn a_pe_with_a_zip_appended_is_opened() {
        let d = tempfile::tempdir().unwrap();
        let want = tree(d.path());
        sh(
            d.path(),
            "cd tree && zip -qr ../a.zip . && cd .. && cat tree/gui.exe a.zip > setup.exe",
        );
        let data = std::fs::read(d.path().join("setup.exe")).unwrap();
        assert_eq!(detect(&data), Some(Format::Zip));
        let got: Vec<_> = entries(&data, "setup.exe", &Caps::default())
            .into_iter()
            .filter(|(_, s)| !s.starts_with("listed"))
            .collect();
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(got.contains(&("setup.exe!gui.exe".to_string(), want[1].1.clone())));
    }

    #[test]
    fn bombs_hit_their_caps_on_what_the_decoder_produces() {
        let d = tempfile::tempdir().unwrap();
        // 200 MB of zeros: ratio far above 100:1, in a zip and a gzip.
        sh(d.path(), "head -c 200000000 /dev/zero > zeros && zip -q z.zip zeros && gzip -c zeros > zeros.gz && xz -c zeros > zeros.xz");
        let caps = Caps::default();
        for (name, want) in [
            ("z.zip", "z.zip!zeros"),
            ("zeros.gz", "zeros.gz"),
            ("zeros.xz", "zeros.xz"),
        ] {
            let data = std::fs::read(d.path().join(name)).unwrap();
            let got = entries(&data, name, &caps);
            assert_eq!(
                got,
                [(want.to_string(), "unscanned archive_ratio".to_string())],
                "{name}"
            );
        }
        // Nested deeper than the cap: the innermost is unscanned, not skipped.
        sh(d.path(), "echo x > f && zip -q n1.zip f && for i in 1 2 3 4 5 6; do zip -q n$((i+1)).zip n$i.zip; done");
        let data = std::fs::read(d.path().join("n7.zip")).unwrap();
        let got = entries(&data, "n7.zip", &caps);
        assert!(
            got.iter().any(|(_, w)| w == "unscanned archive_depth"),
            "{got:?}"
        );
        assert!(!got.iter().any(|(n, _)| n.ends_with("!f")), "{got:?}");
        // A member cap, a member-count cap and a total cap.
        let small = Caps {
            member_bytes: 1000,
            ..Caps::default()
        };
        let data = std::fs::read(d.path().join("n1.zip")).unwrap();
        assert_eq!(entries(&data, "n1.zip", &small).len(), 1);
        sh(d.path(), "head -c 5000 /dev/urandom > r && zip -q r.zip r");
        let data = std::fs::read(d.path().join("r.zip")).unwrap();
        assert_eq!(
            entries(&data, "r.zip", &small),
            [("r.zip!r".to_string(), "unscanned too_large".to_string())]
        );
        let few = Caps {
            members: 0,
            ..Caps::default()
        };
        assert_eq!(
            entries(&data, "r.zip", &few),
            [("r.zip".to_string(), "unscanned archive_members".to_string())]
        );
        let total = Caps {
            total_bytes: 100,
            ..Caps::default()
        };
        assert_eq!(
            entries(&data, "r.zip", &total),
            [("r.zip!r".to_string(), "unscanned archive_size".to_string())]
        );
    }

    #[test]
    fn a_stream_asking_for_a_huge_dictionary_is_refused_before_decoding() {
        let d = tempfile::tempdir().unwrap();
        sh(d.path(), "echo small > s && xz --lzma2=dict=1536MiB -c s > s.xz && cat s | zstd -q --long=31 -c > s.zst");
        for name in ["s.xz", "s.zst"] {
            let data = std::fs::read(d.path().join(name)).unwrap();
            let caps = Caps {
                dictionary_bytes: 1 << 20,
                ..Caps::default()
            };
            let got = entries(&data, name, &caps);
            assert_eq!(
                got,
                [(name.to_string(), "unscanned archive_dictionary".to_string())],
                "{name}"
            );
        }
    }

    #[test]
    fn encrypted_truncated_and_overlapping_zips_are_unscanned() {
        let d = tempfile::tempdir().unwrap();
        tree(d.path());
        sh(d.path(), "cd tree && zip -q -P secret ../enc.zip gui.exe");
        let data = std::fs::read(d.path().join("enc.zip")).unwrap();
        assert_eq!(
            entries(&data, "enc.zip", &Caps::default()),
            [(
                "enc.zip!gui.exe".to_string(),
                "unscanned encrypted".to_string()
            )]
        );
        // Truncated inside a member's data: corrupt, never a short file.
        sh(d.path(), "cd tree && tar cf ../t.tar gui.exe && cd .. && gzip -c t.tar > t.tgz && head -c 4000 t.tgz > cut.tgz");
        let data = std::fs::read(d.path().join("cut.tgz")).unwrap();
        let got = entries(&data, "cut.tgz", &Caps::default());
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(got[0].1.starts_with("unscanned"), "{got:?}");
        // Two central-directory entries over one local entry.
        let mut z = Vec::new();
        {
            let mut w = zip::ZipWriter::new(io::Cursor::new(&mut z));
            w.start_file("a", zip::write::SimpleFileOptions::default())
                .unwrap();
            io::Write::write_all(&mut w, &[b'x'; 1000]).unwrap();
            w.finish().unwrap();
        }
        let overlapping = overlap_copy(&z);
        assert_eq!(
            entries(&overlapping, "o.zip", &Caps::default()),
            [("o.zip".to_string(), "unscanned archive_overlap".to_string())]
        );
    }

    /// A zip whose central directory lists its one entry twice, under two
    /// names (both pointing at the same local header).
    fn overlap_copy(z: &[u8]) -> Vec<u8> {
        let cd = z.windows(4).position(|w| w == [b'P', b'K', 1, 2]).unwrap();
        let eocd = z.windows(4).rposition(|w| w == [b'P', b'K', 5, 6]).unwrap();
        let entry = &z[cd..eocd];
        let mut out = z[..cd].to_vec();
        out.extend_from_slice(entry);
        // The second under another name (its first byte at 46 in the
        // central-directory header), over the same local entry.
        let mut other = entry.to_vec();
        other[46] = b'b';
        out.extend_from_slice(&other);
        let mut end = z[eocd..].to_vec();
        let n = u16::from_le_bytes([end[10], end[11]]) * 2;
        end[8..10].copy_from_slice(&n.to_le_bytes());
        end[10..12].copy_from_slice(&n.to_le_bytes());
        let size = (entry.len() * 2) as u32;
        end[12..16].copy_from_slice(&size.to_le_bytes());
        out.extend_from_slice(&end);
        out
    }

    #[test]
    fn odd_member_names_are_only_names() {
        let d = tempfile::tempdir().unwrap();
        // `..` and absolute names, written with Python's tarfile.
        sh(d.path(), "python3 -c \"import tarfile,io; t=tarfile.open('odd.tar','w'); \
            [t.addfile(tarfile.TarInfo(n), io.BytesIO(b'')) or None for n in []]; \
            i=tarfile.TarInfo('../../escape'); i.size=3; t.addfile(i, io.BytesIO(b'abc')); \
            i=tarfile.TarInfo('/etc/passwd'); i.size=3; t.addfile(i, io.BytesIO(b'def')); t.close()\"");
        let data = std::fs::read(d.path().join("odd.tar")).unwrap();
        let got = entries(&data, "odd.tar", &Caps::default());
        let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["odd.tar!../../escape", "odd.tar!/etc/passwd"]);
        assert!(!d.path().parent().unwrap().join("escape").exists());
    }

    /// Damaged archives (bytes flipped, cut short), of every format the
    /// real tools build: a reason or members, never a panic or a member
    /// past its cap. A deterministic stand-in for fuzzing.
    #[test]
    fn damaged_archives_never_panic_or_pass_a_cap() {
        let d = tempfile::tempdir().unwrap();
        tree(d.path());
        sh(
            d.path(),
            "cd tree && zip -qr ../a.zip . && tar cf ../a.tar . && cd .. \
            && gzip -k a.tar && xz -k a.tar && zstd -q a.tar && bzip2 -k a.tar \
            && cd tree && 7zz a -bd -bso0 ../a.7z . && cd .. && gcab -c -z a.cab tree/gui.exe",
        );
        let caps = Caps {
            member_bytes: 64 << 10,
            total_bytes: 256 << 10,
            ..Caps::default()
        };
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut panics = Vec::new();
        for name in [
            "a.zip",
            "a.tar",
            "a.tar.gz",
            "a.tar.xz",
            "a.tar.zst",
            "a.tar.bz2",
            "a.7z",
            "a.cab",
        ] {
            let good = std::fs::read(d.path().join(name)).unwrap();
            for round in 0..150 {
                let mut data = good.clone();
                if round % 3 == 0 {
                    data.truncate((next() as usize) % data.len());
                }
                for _ in 0..1 + next() % 8 {
                    let at = (next() as usize) % data.len().max(1);
                    if let Some(b) = data.get_mut(at) {
                        *b ^= 1 << (next() % 8);
                    }
                }
                let Some(f) = detect(&data) else { continue };
                let r = std::panic::catch_unwind(|| {
                    let mut total = 0u64;
                    open(&data, name.as_bytes(), f, &caps, &mut |e| {
                        if let Entry::File { data, .. } = e {
                            assert!(data.len() as u64 <= caps.member_bytes);
                            total += data.len() as u64;
                        }
                    });
                    total
                });
                match r {
                    // A nested member is counted in its container too.
                    Ok(total) => assert!(total <= caps.total_bytes * 2, "{name} round {round}"),
                    Err(_) => panics.push(format!("{name} round {round}")),
                }
            }
        }
        assert!(panics.is_empty(), "panicked on {panics:?}");
    }

    #[test]
    fn seven_zip_and_cab_list_what_7zz_and_gcab_packed() {
        let d = tempfile::tempdir().unwrap();
        let want = tree(d.path());
        sh(d.path(), "cd tree && 7zz a -bd -bso0 ../a.7z bin gui.exe && 7zz a -bd -bso0 -ms=off ../b.7z bin gui.exe \
            && cd .. && gcab -c -z c.cab tree/bin/cli.exe tree/gui.exe");
        let caps = Caps::default();
        for name in ["a.7z", "b.7z"] {
            let data = std::fs::read(d.path().join(name)).unwrap();
            let mut got: Vec<_> = entries(&data, name, &caps)
                .into_iter()
                .filter(|(_, w)| !w.starts_with("listed"))
                .collect();
            got.sort();
            let mut expect: Vec<_> = want
                .iter()
                .map(|(n, s)| (format!("{name}!{n}"), s.clone()))
                .collect();
            expect.sort();
            assert_eq!(got, expect, "{name}");
        }
        let data = std::fs::read(d.path().join("c.cab")).unwrap();
        let mut got = entries(&data, "c.cab", &caps);
        got.sort();
        assert_eq!(
            got,
            [
                // CAB names are Windows paths, kept as they are.
                ("c.cab!tree\\bin\\cli.exe".to_string(), want[0].1.clone()),
                ("c.cab!tree\\gui.exe".to_string(), want[1].1.clone())
            ]
        );
        // A member cap hit inside a solid 7z block: that member and the
        // rest of its block are unscanned, none is skipped.
        let small = Caps {
            member_bytes: 1000,
            ..Caps::default()
        };
        let data = std::fs::read(d.path().join("a.7z")).unwrap();
        let got = entries(&data, "a.7z", &small);
        let files: Vec<_> = got
            .iter()
            .filter(|(_, w)| !w.starts_with("listed"))
            .collect();
        assert_eq!(files.len(), 2, "{got:?}");
        assert!(
            files.iter().all(|(_, w)| w.starts_with("unscanned")),
            "{got:?}"
        );
        // A 7z asking for a larger dictionary than the cap is refused
        // before decoding (7-Zip shrinks a dictionary to the data, so the
        // data is 2 MB and the cap 1 MiB).
        sh(
            d.path(),
            "echo small > s && head -c 2000000 /dev/urandom > big \
             && 7zz a -bd -bso0 -m0=lzma2:d=1536m s.7z big",
        );
        let data = std::fs::read(d.path().join("s.7z")).unwrap();
        let tight = Caps {
            dictionary_bytes: 1 << 20,
            ..Caps::default()
        };
        assert_eq!(
            entries(&data, "s.7z", &tight),
            [(
                "s.7z!big".to_string(), // named: the limit is met at its block
                "unscanned archive_dictionary".to_string()
            )]
        );
        // Encrypted.
        sh(d.path(), "7zz a -bd -bso0 -psecret -mhe=off e.7z s");
        let data = std::fs::read(d.path().join("e.7z")).unwrap();
        let got = entries(&data, "e.7z", &caps);
        assert!(
            got.iter().all(|(_, w)| w == "unscanned encrypted"),
            "{got:?}"
        );
    }

    #[test]
    fn an_rpm_payload_lists_what_rpmbuild_packed() {
        let d = tempfile::tempdir().unwrap();
        let want = tree(d.path());
        let top = d.path().join("rpm");
        let spec = "Name: t\nVersion: 1\nRelease: 1\nSummary: t\nLicense: MIT\nBuildArch: noarch\n\
            %description\nt\n%install\nmkdir -p %{buildroot}/opt/t/bin\n\
            cp TREE/bin/cli.exe %{buildroot}/opt/t/bin/\ncp TREE/gui.exe %{buildroot}/opt/t/\n\
            ln -s gui.exe %{buildroot}/opt/t/link.exe\n%files\n/opt/t\n";
        let spec = spec.replace("TREE", &d.path().join("tree").display().to_string());
        std::fs::create_dir_all(&top).unwrap();
        std::fs::write(d.path().join("t.spec"), spec).unwrap();
        for comp in ["w9.gzdio", "w6.xzdio", "w19.zstdio"] {
            sh(
                d.path(),
                &format!(
                    "rpmbuild -bb --quiet --define '_topdir {}' --define '_binary_payload {comp}' \
                     --define '__os_install_post %{{nil}}' t.spec >/dev/null 2>&1 \
                     && cp {}/RPMS/noarch/t-1-1.noarch.rpm t.rpm",
                    top.display(),
                    top.display()
                ),
            );
            let data = std::fs::read(d.path().join("t.rpm")).unwrap();
            let mut got = entries(&data, "t.rpm", &Caps::default());
            got.sort();
            let find = |p: &str| got.iter().find(|(n, _)| n == p).map(|(_, w)| w.clone());
            assert_eq!(
                find("t.rpm!./opt/t/bin/cli.exe"),
                Some(want[0].1.clone()),
                "{comp}: {got:?}"
            );
            assert_eq!(
                find("t.rpm!./opt/t/gui.exe"),
                Some(want[1].1.clone()),
                "{comp}"
            );
            assert_eq!(
                find("t.rpm!./opt/t/link.exe").as_deref(),
                Some("listed: symbolic link"),
                "{comp}"
            );
        }
    }

    #[test]
    fn an_msi_s_cab_members_are_named_from_its_file_table() {
        let d = tempfile::tempdir().unwrap();
        let want = tree(d.path());
        let wxs = r#"<?xml version="1.0" encoding="utf-8"?>
<Wix xmlns="http://schemas.microsoft.com/wix/2006/wi">
  <Product Id="*" Name="T" Language="1033" Version="1.0.0" Manufacturer="t"
           UpgradeCode="12345678-1234-1234-1234-123456789012">
    <Package InstallerVersion="200" Compressed="yes" />
    <Media Id="1" Cabinet="t.cab" EmbedCab="yes" />
    <Directory Id="TARGETDIR" Name="SourceDir">
      <Directory Id="ProgramFilesFolder">
        <Directory Id="INSTALLDIR" Name="T">
          <Component Id="C1" Guid="12345678-1234-1234-1234-123456789013">
            <File Id="clikey" Name="cli.exe" Source="tree/bin/cli.exe" />
            <File Id="guikey" Name="gui.exe" Source="tree/gui.exe" />
          </Component>
        </Directory>
      </Directory>
    </Directory>
    <Binary Id="CustomAction.dll" SourceFile="tree/gui.exe" />
    <Feature Id="F" Level="1"><ComponentRef Id="C1" /></Feature>
  </Product>
</Wix>
"#;
        std::fs::write(d.path().join("t.wxs"), wxs).unwrap();
        sh(d.path(), "wixl -o t.msi t.wxs");
        let data = std::fs::read(d.path().join("t.msi")).unwrap();
        let mut got = entries(&data, "t.msi", &Caps::default());
        got.sort();
        let find = |p: &str| got.iter().find(|(n, _)| n == p).map(|(_, w)| w.clone());
        assert_eq!(find("t.msi!cli.exe"), Some(want[0].1.clone()), "{got:?}");
        assert_eq!(find("t.msi!gui.exe"), Some(want[1].1.clone()), "{got:?}");
        assert_eq!(
            find("t.msi!Binary.CustomAction.dll"),
            Some(want[1].1.clone()),
            "{got:?}"
        );
        assert!(
            got.iter().all(|(_, w)| !w.starts_with("unscanned")),
            "{got:?}"
        );
    }

    #[test]
    fn what_only_looks_like_a_container_is_none() {
        // A PE carrying an end-of-central-directory signature (as one that
        // links a zip library does), and a compound file that is no MSI.
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/pypi/setuptools-75.6.0");
        let mut pe = std::fs::read(root.join("gui.exe")).unwrap();
        pe.extend_from_slice(b"PK\x05\x06 not an end record");
        assert_eq!(detect(&pe), Some(Format::Zip));
        assert!(entries(&pe, "gui.exe", &Caps::default()).is_empty());
        let mut cfb = vec![0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1];
        cfb.extend_from_slice(&[0u8; 600]);
        assert!(entries(&cfb, "x.doc", &Caps::default()).is_empty());
    }

    #[test]
    fn names_of_what_a_lone_stream_holds() {
        assert_eq!(inner_name(b"a/x.exe.gz", Format::Gzip), b"x.exe");
        assert_eq!(inner_name(b"x.TGZ", Format::Gzip), b"x.tar");
        assert_eq!(inner_name(b"x", Format::Xz), b"x");
        assert_eq!(detect(b"not an archive at all"), None);
    }
}
