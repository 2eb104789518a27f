//! Containers with an index of their members: the zip family (overlapping
//! entries refused) and 7z (solid blocks).

use super::{read_capped, why_of, Entry, Walk, Why};
use std::cell::Cell;
use std::io;
use std::rc::Rc;

impl Walk<'_, '_> {
    pub(super) fn zip(&mut self, data: &[u8], path: &mut Vec<Vec<u8>>, depth: u32) {
        let mut z = match zip::ZipArchive::new(io::Cursor::new(data)) {
            Ok(z) => z,
            // Found by a stray end record (a PE that links a zip library
            // carries its signature): not a zip, no members.
            Err(_) if !data.starts_with(b"PK") => return,
            Err(e) => return self.unscanned(path, Why::Corrupt, e.to_string()),
        };
        if self.over_members(path, z.len() as u64) {
            return;
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
                self.emit(Entry::Listed {
                    path,
                    what: what.into(),
                });
            } else if encrypted {
                self.unscanned(path, Why::Encrypted, "encrypted member".into());
            } else {
                let read = match z.by_index(i) {
                    Ok(f) => {
                        let mut g = self.guard(f, Some(Rc::new(Cell::new(compressed))));
                        read_capped(&mut g, self.caps.member_bytes)
                    }
                    Err(zip::result::ZipError::UnsupportedArchive(m)) => {
                        Err(io::Error::new(io::ErrorKind::Unsupported, m))
                    }
                    Err(e) => Err(io::Error::other(e.to_string())),
                };
                match read {
                    Ok(data) => self.member(&data, path, depth),
                    Err(e) => self.failed(path, &e),
                }
            }
            path.pop();
        }
    }

    /// A 7z archive. Its dictionary is capped before anything is decoded;
    /// one decoder thread (the scan has the cores). A cap hit inside a
    /// solid block abandons the block: its later entries are unscanned with
    /// the same reason, never skipped.
    pub(super) fn seven_zip(&mut self, data: &[u8], path: &mut Vec<Vec<u8>>, depth: u32) {
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
        if self.over_members(path, entries.len() as u64) {
            return;
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
                self.emit(Entry::Listed {
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
}
