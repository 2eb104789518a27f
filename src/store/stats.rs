//! The stat cache: a file's absolute path and stamp (device, inode, size,
//! mtime, ctime) -> its sha256 and format, so unchanged files are neither
//! read nor hashed again.

use super::{blob, check, int, unix_now, Cache, StatEntry, Writes};
use crate::corpus::format::Format;
use crate::corpus::read::{PreHashed, Stamp};
use std::path::PathBuf;

impl Cache {
    /// Store the stamps and hashes of files hashed in this run (not those
    /// that came from the stat cache, nor files modified in the last
    /// seconds: see `Stamp::racy`).
    pub fn remember_stats(
        &mut self,
        files: &[crate::corpus::CorpusFile],
        pre: &[Option<Box<PreHashed>>],
    ) {
        let now = unix_now();
        let mut w = Writes::<()>::default();
        for (i, p) in pre.iter().enumerate() {
            let Some(p) = p.as_ref().filter(|p| !p.cached) else {
                continue;
            };
            if let Some(row) = stat_row(i, p.stamp, p.sha256, p.format, p.container, now) {
                w.stats.push(row);
                w.spill_if_full();
            }
        }
        self.write(&mut w, files);
    }

    /// Look the files up by their absolute paths, in order: `keep` gets
    /// each file's entry (by index) and says what to hold of it. Nothing
    /// else is held per file (a million paths, rows and answers were once
    /// all in memory at the same time). If the store fails part way, no
    /// file counts as known.
    pub fn stats<T>(
        &mut self,
        paths: impl ExactSizeIterator<Item = PathBuf>,
        mut keep: impl FnMut(usize, StatEntry, Format) -> Option<T>,
    ) -> Vec<Option<T>> {
        let n = paths.len();
        let r = self.try_stats(paths, &mut keep);
        let mut out = self.recover(r, "reading file stamps", Vec::new());
        out.resize_with(n, || None);
        out
    }

    fn try_stats<T>(
        &mut self,
        paths: impl ExactSizeIterator<Item = PathBuf>,
        keep: &mut impl FnMut(usize, StatEntry, Format) -> Option<T>,
    ) -> rusqlite::Result<Vec<Option<T>>> {
        use std::os::unix::ffi::OsStrExt;
        let mut bad = 0;
        let mut out = Vec::with_capacity(paths.len());
        {
            let tx = self.conn.transaction()?;
            {
                let mut q = tx.prepare_cached(
                    "SELECT dev, ino, size, mtime, mtime_ns, ctime, ctime_ns, sha256, format, chk
                     FROM stat WHERE path = ?1",
                )?;
                for (i, p) in paths.enumerate() {
                    let key = p.as_os_str().as_bytes();
                    let row = q
                        .query_row([key], |r| {
                            let mut n = [0i64; 7];
                            let mut ok = true;
                            for (k, slot) in n.iter_mut().enumerate() {
                                match int(r, k) {
                                    Some(v) => *slot = v,
                                    None => ok = false,
                                }
                            }
                            let format = r.get::<_, String>(8).ok();
                            Ok((ok.then_some(n), blob(r, 7), format, int(r, 9)))
                        })
                        .map(Some)
                        .or_else(|e| match e {
                            rusqlite::Error::QueryReturnedNoRows => Ok(None),
                            e => Err(e),
                        })?;
                    let entry = row.and_then(|(n, sha, format, chk)| {
                        let (Some(n), Some(sha), Some(format), Some(chk)) = (n, sha, format, chk)
                        else {
                            bad += 1;
                            return None;
                        };
                        if chk != stat_check(key, &n, &sha, &format) {
                            bad += 1;
                            return None;
                        }
                        let (Ok(sha256), Some((format, container))) = (
                            <[u8; 32]>::try_from(sha.as_slice()),
                            parse_format_column(&format),
                        ) else {
                            bad += 1;
                            return None;
                        };
                        Some((
                            StatEntry {
                                stamp: Stamp::from_parts(n),
                                sha256,
                                container,
                            },
                            format,
                        ))
                    });
                    out.push(entry.and_then(|(e, format)| keep(i, e, format)));
                }
            }
            tx.commit()?;
        }
        self.note_bad(bad);
        Ok(out)
    }
}

/// A stat-cache row for file `index` of the run's file list, read in this
/// run, unless it was modified within the last 2 seconds of `now` (see
/// `Stamp::racy`).
pub fn stat_row(
    index: usize,
    stamp: Stamp,
    sha256: [u8; 32],
    format: Format,
    container: Option<bool>,
    now: i64,
) -> Option<(u32, StatEntry, Format)> {
    if stamp.racy(now, 2) {
        return None;
    }
    Some((
        u32::try_from(index).ok()?,
        StatEntry {
            stamp,
            sha256,
            container,
        },
        format,
    ))
}

/// The `format` column: the format's name, then `;archive` or `;plain`
/// when it is known whether the content is an archive (rows of older
/// versions carry the name alone).
pub(super) fn format_column(format: Format, container: Option<bool>) -> String {
    match container {
        None => format.as_str().to_string(),
        Some(true) => format!("{format};archive"),
        Some(false) => format!("{format};plain"),
    }
}

pub(super) fn parse_format_column(s: &str) -> Option<(Format, Option<bool>)> {
    let (name, container) = match s.split_once(';') {
        None => (s, None),
        Some((name, "archive")) => (name, Some(true)),
        Some((name, "plain")) => (name, Some(false)),
        Some(_) => return None,
    };
    Some((Format::by_name(name)?, container))
}

pub(super) fn stat_check(path: &[u8], n: &[i64; 7], sha: &[u8], format: &str) -> i64 {
    let nums: Vec<u8> = n.iter().flat_map(|x| x.to_le_bytes()).collect();
    check(&[path, &nums, sha, format.as_bytes()])
}
