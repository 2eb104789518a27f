//! Rows waiting to be written, moved out of memory while the scan runs.
//!
//! A cold run over a million files once held two result rows and a stat
//! row per file until the end (about 190 MB). Past `SPILL_AT` rows they go
//! to disk as a sorted run (an unnamed temporary file, `tempfile`: in
//! `TMPDIR`, else `/tmp`; gone when closed). At the end the runs are merged,
//! so the cache's B-trees are still filled in key order, and memory holds
//! one batch plus a small buffer per run instead of the whole run's rows.
//!
//! An external merge sort written here because the rows are few kinds of
//! fixed records and SQLite's own sorter, tried first, cost 8% more CPU on
//! a cold scan of 100,000 small files (temporary table, sort, read back).
//! A spill that cannot be made or written keeps the rows in memory, as
//! before: a machine without a writable temporary directory still gets its
//! cache.

use super::{SetId, StatEntry, Subject};
use crate::corpus::format::Format;
use crate::corpus::read::Stamp;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::FileExt;

/// Rows held in memory before they are moved to disk.
pub const SPILL_AT: usize = 65_536;
/// Read buffer per run while merging.
const READ_BUF: usize = 32 << 10;

/// A result row: subject, rule set, matches (serialised).
pub type DoneRow = (Subject, SetId, Vec<u8>);
/// A stat row: file index, what the stat cache remembers, format.
pub type StatRow = (u32, StatEntry, Format);

/// A row kind that can be written to a run and read back.
trait Record: Sized {
    fn put(&self, out: &mut Vec<u8>);
    fn take(r: &mut Reader<'_>) -> io::Result<Option<Self>>;
}

impl Record for DoneRow {
    fn put(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.0);
        out.extend_from_slice(&self.1);
        out.extend_from_slice(&(self.2.len() as u32).to_le_bytes());
        out.extend_from_slice(&self.2);
    }
    fn take(r: &mut Reader<'_>) -> io::Result<Option<Self>> {
        let Some(head) = r.bytes(52)? else {
            return Ok(None);
        };
        let subject: Subject = head[..32].try_into().map_err(bad)?;
        let set: SetId = head[32..48].try_into().map_err(bad)?;
        let n = u32::from_le_bytes(head[48..52].try_into().map_err(bad)?) as usize;
        let hits = r.bytes(n)?.ok_or_else(|| bad(()))?;
        Ok(Some((subject, set, hits)))
    }
}

impl Record for StatRow {
    fn put(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.0.to_le_bytes());
        for n in self.1.stamp.parts() {
            out.extend_from_slice(&n.to_le_bytes());
        }
        out.extend_from_slice(&self.1.sha256);
        let name = super::stats::format_column(self.2, self.1.container);
        out.push(name.len() as u8);
        out.extend_from_slice(name.as_bytes());
    }
    fn take(r: &mut Reader<'_>) -> io::Result<Option<Self>> {
        let Some(head) = r.bytes(4 + 56 + 32 + 1)? else {
            return Ok(None);
        };
        let file = u32::from_le_bytes(head[..4].try_into().map_err(bad)?);
        let mut n = [0i64; 7];
        for (k, slot) in n.iter_mut().enumerate() {
            let at = 4 + 8 * k;
            *slot = i64::from_le_bytes(head[at..at + 8].try_into().map_err(bad)?);
        }
        let sha256: [u8; 32] = head[60..92].try_into().map_err(bad)?;
        let name = r.bytes(head[92] as usize)?.ok_or_else(|| bad(()))?;
        let (format, container) = std::str::from_utf8(&name)
            .ok()
            .and_then(super::stats::parse_format_column)
            .ok_or_else(|| bad(()))?;
        let e = StatEntry {
            stamp: Stamp::from_parts(n),
            sha256,
            container,
        };
        Ok(Some((file, e, format)))
    }
}

fn bad<T>(_: T) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, "damaged spill file")
}

/// Sorted runs of one row kind in one temporary file.
#[derive(Debug)]
struct Runs {
    file: File,
    /// Each run's start and end offsets.
    runs: Vec<(u64, u64)>,
    end: u64,
}

impl Runs {
    fn new() -> io::Result<Runs> {
        Ok(Runs {
            file: tempfile::tempfile()?,
            runs: Vec::new(),
            end: 0,
        })
    }

    /// Append rows (already sorted) as one run.
    fn append<'a, R: Record + 'a>(&mut self, rows: impl Iterator<Item = &'a R>) -> io::Result<()> {
        let start = self.end;
        let mut w = BufWriter::with_capacity(READ_BUF, &self.file);
        let mut row = Vec::new();
        let mut len = 0u64;
        for r in rows {
            row.clear();
            r.put(&mut row);
            w.write_all(&row)?;
            len += row.len() as u64;
        }
        w.flush()?;
        drop(w);
        if len > 0 {
            self.end = start + len;
            self.runs.push((start, self.end));
        }
        Ok(())
    }

    /// Every row of every run, in key order.
    fn merge<R: Record, K: Ord>(
        &self,
        key: impl Fn(&R) -> K,
        mut f: impl FnMut(R) -> io::Result<()>,
    ) -> io::Result<()> {
        let mut readers: Vec<Reader<'_>> = self
            .runs
            .iter()
            .map(|&(at, end)| Reader::new(&self.file, at, end))
            .collect();
        let mut heads: Vec<Option<R>> = Vec::with_capacity(readers.len());
        let mut heap = BinaryHeap::new();
        for (i, r) in readers.iter_mut().enumerate() {
            let head = R::take(r)?;
            if let Some(h) = &head {
                heap.push(Reverse((key(h), i)));
            }
            heads.push(head);
        }
        while let Some(Reverse((_, i))) = heap.pop() {
            let Some(row) = heads[i].take() else {
                continue;
            };
            let next = R::take(&mut readers[i])?;
            if let Some(h) = &next {
                heap.push(Reverse((key(h), i)));
            }
            heads[i] = next;
            f(row)?;
        }
        Ok(())
    }
}

/// Reads one run through a buffer of its own (positioned reads, so the
/// runs of one file are read side by side).
struct Reader<'f> {
    file: &'f File,
    at: u64,
    end: u64,
    buf: Vec<u8>,
    pos: usize,
}

impl<'f> Reader<'f> {
    fn new(file: &'f File, at: u64, end: u64) -> Reader<'f> {
        Reader {
            file,
            at,
            end,
            buf: Vec::new(),
            pos: 0,
        }
    }

    /// The next `n` bytes; `None` at the end of the run.
    fn bytes(&mut self, n: usize) -> io::Result<Option<Vec<u8>>> {
        if n > 0 && self.pos == self.buf.len() && self.at == self.end {
            return Ok(None);
        }
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            if self.pos == self.buf.len() {
                let want = (self.end - self.at).min(READ_BUF as u64) as usize;
                if want == 0 {
                    return Err(bad(()));
                }
                self.buf.resize(want, 0);
                self.file.read_exact_at(&mut self.buf, self.at)?;
                self.at += want as u64;
                self.pos = 0;
            }
            let k = (n - out.len()).min(self.buf.len() - self.pos);
            out.extend_from_slice(&self.buf[self.pos..self.pos + k]);
            self.pos += k;
        }
        Ok(Some(out))
    }
}

/// The result and stat rows moved to disk.
#[derive(Debug)]
pub struct Spill {
    done: Runs,
    stats: Runs,
}

impl Spill {
    pub fn open() -> io::Result<Spill> {
        Ok(Spill {
            done: Runs::new()?,
            stats: Runs::new()?,
        })
    }

    /// Sort the rows and append them, each kind as one run.
    pub fn append(&mut self, mut done: Vec<DoneRow>, mut stats: Vec<&StatRow>) -> io::Result<()> {
        done.sort_unstable_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        stats.sort_unstable_by_key(|r| r.0);
        self.done.append(done.iter())?;
        self.stats.append(stats.into_iter())
    }

    /// Every result row, sorted by subject and rule set.
    pub fn each_done(&self, f: impl FnMut(DoneRow) -> io::Result<()>) -> io::Result<()> {
        self.done.merge(|r: &DoneRow| (r.0, r.1), f)
    }

    /// Every stat row, sorted by file index.
    pub fn each_stat(&self, f: impl FnMut(StatRow) -> io::Result<()>) -> io::Result<()> {
        self.stats.merge(|r: &StatRow| r.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_merge_into_one_sorted_stream() {
        let mut s = Spill::open().unwrap();
        let stamp = Stamp::from_parts([1, 2, 3, 4, 5, 6, 7]);
        let row = |i: u32| -> StatRow {
            (
                i,
                StatEntry {
                    stamp,
                    sha256: [i as u8; 32],
                    container: [None, Some(false), Some(true)][i as usize % 3],
                },
                Format::Pe,
            )
        };
        let done = |i: u8, hits: &str| -> DoneRow { ([i; 32], [i / 2; 16], hits.into()) };
        let a = [row(5), row(1), row(9)];
        let b = [row(4), row(0)];
        s.append(vec![done(3, "[]"), done(1, "[x]")], a.iter().collect())
            .unwrap();
        s.append(
            vec![done(2, ""), done(0, "[long evidence]")],
            b.iter().collect(),
        )
        .unwrap();
        s.append(Vec::new(), Vec::new()).unwrap();
        let mut got = Vec::new();
        s.each_stat(|r| {
            got.push(r);
            Ok(())
        })
        .unwrap();
        assert_eq!(got, [row(0), row(1), row(4), row(5), row(9)]);
        let mut got = Vec::new();
        s.each_done(|r| {
            got.push(r);
            Ok(())
        })
        .unwrap();
        assert_eq!(
            got,
            [
                done(0, "[long evidence]"),
                done(1, "[x]"),
                done(2, ""),
                done(3, "[]")
            ]
        );
    }
}
