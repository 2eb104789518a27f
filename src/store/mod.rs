//! The results cache: one SQLite database in the cache directory.
//!
//! SQLite (through rusqlite, with SQLite built in) rather than redb because
//! the cache is shared by concurrent processes: a nightly scan, a CI gate and
//! a rule author's `fpgate check` may run at once on one machine. SQLite in
//! WAL mode lets any number of processes read while one writes, and waits
//! (`busy_timeout`) instead of failing; redb allows one process per database
//! file. What the cache holds:
//!
//! - `stat`: absolute path, device, inode, size, mtime, ctime → sha256 and
//!   format, so unchanged files are neither read nor hashed again. Entries
//!   for files modified within the last seconds are not stored (a file
//!   rewritten within one timestamp tick would look unchanged).
//! - `rulesets`: a set of rule keys (see `rules::keys`) that were run together.
//! - `done`: this subject (a file content, or a content and its path for
//!   rules that read the path) was scanned with every rule of this set, and
//!   matched these of them, with the evidence (in the same row, so a match
//!   cannot be lost without the row's checksum failing).
//!
//! Every row carries a checksum over its key and value; the file carries an
//! application id and a schema version. A file that is not an fpgate cache,
//! or is damaged, is reported and replaced by a new one; a row whose checksum
//! is wrong is reported and ignored (the file is scanned again). Rows are
//! only ever added or replaced with identical values, so concurrent runs
//! writing the same results cannot disagree. Timeouts and scan errors are
//! never stored.

mod blobs;
mod results;
mod spill;
mod stats;

pub use blobs::{compiled_exists, compiled_get, compiled_put, small_get, small_put, Lookup};
pub use stats::stat_row;

use crate::corpus::format::Format;
use crate::corpus::read::Stamp;
use crate::error::Error;
use crate::util::chunked::Chunked;
use rusqlite::{Connection, ErrorCode};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The database file inside the cache directory.
pub const FILE: &str = "fpgate-cache.sqlite";
/// "fpgt": SQLite's application id for fpgate caches.
const APP_ID: i32 = 0x6670_6774;
/// Bump when the tables change: older caches are then replaced.
const SCHEMA: i32 = 4;
/// Results of rule sets no run has used for this long are dropped, and
/// stat entries of files that no longer exist (checked once a day).
const KEEP_SECONDS: i64 = 30 * 86_400;

/// A content (sha256), or a content and the path-dependent external values.
pub type Subject = [u8; 32];
/// A rule's key (see `rules::keys`): what the results are stored under.
pub type Efp = [u8; 16];
/// Identifier of a set of rule keys.
pub type SetId = [u8; 16];

/// What the stat cache remembers of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatEntry {
    pub stamp: Stamp,
    pub sha256: [u8; 32],
    /// Is the content an archive (see `corpus::archive::detect`)? `None`
    /// in rows an older fpgate wrote: the file is then read once more.
    pub container: Option<bool>,
}

/// The results the cache already holds for the rules of this run.
#[derive(Debug)]
pub struct Known<E> {
    /// Sets of rule keys that include at least one rule of this run.
    pub sets: Vec<Vec<Efp>>,
    /// Their ids.
    pub set_ids: Vec<SetId>,
    /// Per subject, the sets (indices into `sets`) it was scanned with: an
    /// index into `lists` (a million contents share a few such lists).
    /// Sorted by subject: 36 bytes a content, where a hash map of a million
    /// takes twice that, and three times while it grows.
    done: Vec<(Subject, u32)>,
    /// The distinct lists of sets, sorted, each once (see `done`).
    lists: Vec<Vec<u32>>,
    /// Per subject, the rules of this run it matched, with evidence.
    pub hits: HashMap<Subject, Vec<(Efp, E)>>,
}

impl<E> Known<E> {
    /// The sets (indices into `sets`) `subject` was scanned with, sorted.
    pub fn done(&self, subject: &Subject) -> &[u32] {
        match self.done.binary_search_by(|(s, _)| s.cmp(subject)) {
            Ok(at) => self.lists[self.done[at].1 as usize].as_slice(),
            Err(_) => &[],
        }
    }

    /// How many subjects have results.
    pub fn subjects(&self) -> usize {
        self.done.len()
    }

    /// Set what was scanned with what from (subject, set) pairs, in any
    /// order: sorted, then each subject's run of pairs becomes one entry
    /// (written in place over the pairs) naming its list of sets.
    fn set_done(&mut self, mut pairs: Vec<(Subject, u32)>) {
        pairs.sort_unstable();
        pairs.dedup();
        let mut index: HashMap<Vec<u32>, u32> = HashMap::new();
        let (mut read, mut write) = (0, 0);
        while read < pairs.len() {
            let subject = pairs[read].0;
            let mut list = Vec::new();
            while read < pairs.len() && pairs[read].0 == subject {
                list.push(pairs[read].1);
                read += 1;
            }
            let next = self.lists.len() as u32;
            let id = *index.entry(list).or_insert_with_key(|l| {
                self.lists.push(l.clone());
                next
            });
            pairs[write] = (subject, id);
            write += 1;
        }
        pairs.truncate(write);
        pairs.shrink_to_fit();
        self.done = pairs;
    }
}

/// What a result row stores of its matches: the JSON list (`[]` for none).
fn hits_blob<E: serde::Serialize>(hits: &Option<Box<[(Efp, E)]>>) -> Vec<u8> {
    let hits: &[(Efp, E)] = hits.as_deref().unwrap_or_default();
    serde_json::to_vec(hits).unwrap_or_default()
}

/// A result row waiting to be written: subject, rule set (index into
/// `Writes::done_sets`), matches (none: `None`).
type DoneRow<E> = (Subject, u32, Option<Box<[(Efp, E)]>>);

/// Results of this run to store.
#[derive(Debug)]
pub struct Writes<E> {
    /// Rule sets this run used: kept from expiring (see `KEEP_SECONDS`).
    pub touch: Vec<SetId>,
    /// Stat rows pushed for each file while the scan runs (grown by
    /// chunks): the file's index in the run's file list, not its path,
    /// which `Cache::write` takes from that list as it writes the row.
    pub stats: Chunked<(u32, StatEntry, Format)>,
    pub sets: Vec<(SetId, Vec<Efp>)>,
    /// Result rows pushed for each file scanned (see `push_done`): the
    /// subject, the rule set (an index into `done_sets`: a run records
    /// under a few) and the matches, boxed since most files match nothing.
    done: Chunked<DoneRow<E>>,
    done_sets: Vec<SetId>,
    /// Where rows go once `spill::SPILL_AT` are held (see `spill`).
    spill: Option<spill::Spill>,
    /// The spill could not be made or written: rows stay in memory.
    spill_off: bool,
    /// Rows held before they are spilled (`spill::SPILL_AT`; tests set less).
    spill_at: usize,
}

impl<E> Writes<E> {
    /// Remember that `subject` was scanned with rule set `set` and matched
    /// `hits` (rule key, evidence).
    pub fn push_done(&mut self, subject: Subject, set: SetId, hits: Vec<(Efp, E)>) {
        let at = match self.done_sets.iter().position(|s| *s == set) {
            Some(at) => at,
            None => {
                self.done_sets.push(set);
                self.done_sets.len() - 1
            }
        };
        let hits = (!hits.is_empty()).then(|| hits.into_boxed_slice());
        self.done.push((subject, at as u32, hits));
    }
}

impl<E: serde::Serialize> Writes<E> {
    /// Move the rows held in memory to the spill once there are enough of
    /// them (see `spill`).
    pub fn spill_if_full(&mut self) {
        if self.done.len() + self.stats.len() >= self.spill_at {
            self.spill_held();
        }
    }

    /// Before the rows are written: the rows still in memory join the
    /// spilled ones, so all are written in one sorted pass.
    fn spill_rest(&mut self) {
        if self.spill.is_some() {
            self.spill_held();
        }
    }

    fn spill_held(&mut self) {
        if self.spill_off || (self.done.is_empty() && self.stats.is_empty()) {
            return;
        }
        if self.spill.is_none() {
            match spill::Spill::open() {
                Ok(s) => self.spill = Some(s),
                Err(_) => {
                    self.spill_off = true;
                    return;
                }
            }
        }
        let Some(sp) = self.spill.as_mut() else {
            return;
        };
        let sets = &self.done_sets;
        let done = self
            .done
            .iter()
            .map(|(subject, set, hits)| (*subject, sets[*set as usize], hits_blob(hits)))
            .collect();
        match sp.append(done, self.stats.iter().collect()) {
            Ok(()) => {
                self.done = Chunked::default();
                self.stats = Chunked::default();
            }
            // Kept in memory; what was spilled before is still written.
            Err(_) => self.spill_off = true,
        }
    }
}

impl<E> Default for Known<E> {
    fn default() -> Self {
        Known {
            sets: Vec::new(),
            set_ids: Vec::new(),
            done: Vec::new(),
            lists: Vec::new(),
            hits: HashMap::new(),
        }
    }
}

impl<E> Default for Writes<E> {
    fn default() -> Self {
        Writes {
            touch: Vec::new(),
            stats: Chunked::default(),
            sets: Vec::new(),
            done: Chunked::default(),
            done_sets: Vec::new(),
            spill: None,
            spill_off: false,
            spill_at: spill::SPILL_AT,
        }
    }
}

pub struct Cache {
    conn: Connection,
    pub path: PathBuf,
    /// Rows that failed their checksum in this run.
    pub bad_rows: usize,
    /// What went wrong and was recovered from (a replaced cache, ignored
    /// rows), for the caller to tell the user (see `take_notes`).
    notes: Vec<String>,
}

enum Bad {
    /// Not usable at all (cannot create the directory, no permission): the
    /// run goes on without a cache.
    Io(String),
    /// Not an fpgate cache, another schema, or damaged: start a new one.
    Foreign(String),
}

fn classify(e: rusqlite::Error) -> Bad {
    if is_corrupt(&e) {
        Bad::Foreign(format!("damaged or not a database ({e})"))
    } else {
        Bad::Io(e.to_string())
    }
}

/// Is this error a sign of a damaged or foreign database (as opposed to a
/// busy, read-only, full or unreachable one)? A table of another layout
/// ("no such column") counts as foreign.
fn is_corrupt(e: &rusqlite::Error) -> bool {
    match e {
        rusqlite::Error::SqliteFailure(f, _) => !matches!(
            f.code,
            ErrorCode::DatabaseBusy
                | ErrorCode::DatabaseLocked
                | ErrorCode::ReadOnly
                | ErrorCode::CannotOpen
                | ErrorCode::PermissionDenied
                | ErrorCode::DiskFull
                | ErrorCode::SystemIoFailure
                | ErrorCode::OutOfMemory
                | ErrorCode::OperationInterrupted
                | ErrorCode::FileLockingProtocolFailed
        ),
        rusqlite::Error::SqlInputError { .. } => true,
        _ => false,
    }
}

/// First 8 bytes of sha256 over the parts, as SQLite's integer.
fn check(parts: &[&[u8]]) -> i64 {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    let d = h.finalize();
    i64::from_le_bytes(d[..8].try_into().unwrap_or([0; 8]))
}

/// The id of a set of rule keys: sha256 of the sorted keys.
pub fn set_id(efps: &[Efp]) -> SetId {
    let mut v = efps.to_vec();
    v.sort();
    v.dedup();
    let mut h = Sha256::new();
    for e in &v {
        h.update(e);
    }
    let d: [u8; 32] = h.finalize().into();
    d[..16].try_into().unwrap_or([0; 16])
}

const TABLES: &str = "
CREATE TABLE stat(path BLOB PRIMARY KEY, dev INTEGER NOT NULL, ino INTEGER NOT NULL,
    size INTEGER NOT NULL, mtime INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
    ctime INTEGER NOT NULL, ctime_ns INTEGER NOT NULL, sha256 BLOB NOT NULL,
    format TEXT NOT NULL, chk INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE rulesets(id BLOB PRIMARY KEY, rules BLOB NOT NULL, chk INTEGER NOT NULL,
    used INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE compiled(key BLOB PRIMARY KEY, rules BLOB NOT NULL, warnings BLOB NOT NULL,
    made INTEGER NOT NULL, chk INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE done(subject BLOB NOT NULL, ruleset BLOB NOT NULL, hits BLOB NOT NULL,
    chk INTEGER NOT NULL, PRIMARY KEY(subject, ruleset)) WITHOUT ROWID;
";

/// Where the cache lives when neither `--cache` nor the config says.
pub fn default_dir() -> Option<PathBuf> {
    if let Some(x) = std::env::var_os("XDG_CACHE_HOME").filter(|x| !x.is_empty()) {
        return Some(PathBuf::from(x).join("fpgate"));
    }
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| PathBuf::from(h).join(".cache").join("fpgate"))
}

impl Cache {
    /// Open (or create) the cache in `dir`. A damaged or foreign file is
    /// replaced (and a note says so). `Err`: no cache can be used (the
    /// caller reports it and scans without one).
    pub fn open(dir: &Path) -> crate::error::Result<Cache> {
        std::fs::create_dir_all(dir).map_err(|e| {
            Error::io(
                dir.display(),
                format!("cannot create cache directory {}: {e}", dir.display()),
            )
        })?;
        let path = dir.join(FILE);
        let unusable =
            |e: String| Error::io(path.display(), format!("cache {}: {e}", path.display()));
        let (conn, notes) = match try_open(&path) {
            Ok(conn) => (conn, Vec::new()),
            Err(Bad::Io(e)) => return Err(unusable(e)),
            Err(Bad::Foreign(why)) => {
                let note = format!(
                    "cache {}: {why}; it is not trusted: starting a new cache",
                    path.display()
                );
                discard(&path);
                match try_open(&path) {
                    Ok(conn) => (conn, vec![note]),
                    Err(Bad::Io(e) | Bad::Foreign(e)) => return Err(unusable(e)),
                }
            }
        };
        Ok(Cache {
            conn,
            path,
            bad_rows: 0,
            notes,
        })
    }

    /// The notes of what went wrong and was recovered from since the last
    /// call: the caller shows them (the store never prints).
    pub fn take_notes(&mut self) -> Vec<String> {
        std::mem::take(&mut self.notes)
    }

    /// Replace a cache found damaged while in use.
    fn rebuild(&mut self, why: &rusqlite::Error) {
        self.notes.push(format!(
            "cache {}: damaged ({why}); it is not trusted: starting a new cache",
            self.path.display()
        ));
        discard(&self.path);
        if let Ok(conn) = try_open(&self.path) {
            self.conn = conn;
        }
    }

    /// The value of a cache operation, or after a failure (reported; a
    /// damaged cache is replaced), `fallback`: the run goes on as if the
    /// cache knew nothing.
    fn recover<T>(&mut self, r: rusqlite::Result<T>, what: &str, fallback: T) -> T {
        match r {
            Ok(v) => v,
            Err(e) => {
                if is_corrupt(&e) {
                    self.rebuild(&e);
                } else {
                    let note = format!("cache {}: {what}: {e}", self.path.display());
                    self.notes.push(note);
                }
                fallback
            }
        }
    }

    fn note_bad(&mut self, bad: usize) {
        if bad > 0 {
            self.notes.push(format!(
                "cache {}: {bad} damaged entr{} ignored (those files are scanned again)",
                self.path.display(),
                if bad == 1 { "y" } else { "ies" }
            ));
            self.bad_rows += bad;
        }
    }
}

/// A BLOB column, or `None` for any other type (a damaged row).
fn blob(r: &rusqlite::Row<'_>, i: usize) -> Option<Vec<u8>> {
    match r.get_ref(i).ok()? {
        rusqlite::types::ValueRef::Blob(b) => Some(b.to_vec()),
        _ => None,
    }
}

/// An INTEGER column, or `None` for any other type.
fn int(r: &rusqlite::Row<'_>, i: usize) -> Option<i64> {
    match r.get_ref(i).ok()? {
        rusqlite::types::ValueRef::Integer(v) => Some(v),
        _ => None,
    }
}

/// Seconds since 1970 (0 if the clock is before it).
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn discard(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(p));
    }
}

/// Opening, and on first use creating, the database is done by one process
/// at a time: runs started together on a new cache directory each found
/// the file empty and raced through `journal_mode=WAL` and the schema,
/// and SQLite answers some of those lock conflicts with "database is
/// locked" at once, without its busy timeout (switching the journal mode
/// and first reading a new WAL file do not wait). An exclusive `flock` on
/// a file beside the database orders them; it is held for milliseconds, and
/// a run that cannot get it within a minute goes on without the lock.
struct OpenLock(Option<std::fs::File>);

impl OpenLock {
    fn take(db: &Path) -> OpenLock {
        use std::os::unix::io::AsRawFd;
        let mut p = db.as_os_str().to_owned();
        p.push(".lock");
        let Ok(f) = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(PathBuf::from(p))
        else {
            return OpenLock(None);
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            // SAFETY: flock on a descriptor this function owns.
            if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
                return OpenLock(Some(f));
            }
            if std::time::Instant::now() > deadline {
                return OpenLock(None);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for OpenLock {
    fn drop(&mut self) {
        use std::os::unix::io::AsRawFd;
        if let Some(f) = &self.0 {
            // SAFETY: as above; closing the file would release it too.
            unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_UN) };
        }
    }
}

fn try_open(path: &Path) -> Result<Connection, Bad> {
    let _one_at_a_time = OpenLock::take(path);
    let conn = Connection::open(path).map_err(classify)?;
    conn.busy_timeout(Duration::from_secs(60))
        .map_err(classify)?;
    let app: i32 = conn
        .query_row("PRAGMA application_id", [], |r| r.get(0))
        .map_err(classify)?;
    if app == 0 {
        init(&conn)?;
    }
    let app: i32 = conn
        .query_row("PRAGMA application_id", [], |r| r.get(0))
        .map_err(classify)?;
    if app != APP_ID {
        return Err(Bad::Foreign(
            "an SQLite database that is not an fpgate cache".into(),
        ));
    }
    let version: i32 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(classify)?;
    if version != SCHEMA {
        return Err(Bad::Foreign(format!(
            "cache format {version}, this fpgate uses format {SCHEMA}"
        )));
    }
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(classify)?;
    // 64 MiB of page cache (SQLite's default is 2 MiB): a run over a
    // million files writes a million rows into each of two B-trees.
    conn.pragma_update(None, "cache_size", -65_536)
        .map_err(classify)?;
    Ok(conn)
}

/// Create the tables in a new, empty database (another process may be
/// doing the same: the write lock decides, the loser finds them made).
fn init(conn: &Connection) -> Result<(), Bad> {
    // WAL persists in the file; it cannot be switched inside a transaction.
    let _: String = conn
        .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
        .map_err(classify)?;
    conn.execute_batch("BEGIN IMMEDIATE").map_err(classify)?;
    let body = || -> Result<(), Bad> {
        let app: i32 = conn
            .query_row("PRAGMA application_id", [], |r| r.get(0))
            .map_err(classify)?;
        if app != 0 {
            return Ok(());
        }
        let objects: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
            .map_err(classify)?;
        if objects > 0 {
            return Err(Bad::Foreign(
                "an SQLite database that is not an fpgate cache".into(),
            ));
        }
        conn.execute_batch(TABLES).map_err(classify)?;
        conn.execute_batch(&format!(
            "PRAGMA application_id = {APP_ID}; PRAGMA user_version = {SCHEMA};"
        ))
        .map_err(classify)
    };
    match body() {
        Ok(()) => conn.execute_batch("COMMIT").map_err(classify),
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corpus::CorpusFile;
    use rusqlite::params;

    /// Many opens at once of a new cache each get a usable cache (they
    /// raced through its first initialisation: "database is locked").
    /// Separate connections in one process lock each other as processes do.
    #[test]
    fn opens_at_once_on_a_new_cache_all_succeed() {
        for round in 0..40 {
            let d = tempfile::tempdir().unwrap();
            let dir = d.path().join("cache");
            let start = std::sync::Barrier::new(8);
            let failures: Vec<String> = std::thread::scope(|s| {
                let handles: Vec<_> = (0..8)
                    .map(|_| {
                        s.spawn(|| {
                            start.wait();
                            Cache::open(&dir).err().map(|e| e.to_string())
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .filter_map(|h| h.join().unwrap())
                    .collect()
            });
            assert!(failures.is_empty(), "round {round}: {failures:?}");
        }
    }

    #[test]
    fn what_each_content_was_scanned_with_is_found_from_pairs_in_any_order() {
        let mut k = Known::<()>::default();
        let (a, b, c, x): (Subject, Subject, Subject, Subject) =
            ([3; 32], [1; 32], [2; 32], [9; 32]);
        k.set_done(vec![(a, 1), (b, 0), (a, 0), (c, 1), (b, 1), (a, 1), (c, 0)]);
        for s in [a, b, c] {
            assert_eq!(k.done(&s), &[0, 1]);
        }
        assert_eq!(k.done(&x), &[] as &[u32]);
        assert_eq!((k.subjects(), k.lists.len()), (3, 1), "one list, shared");
        k.set_done(vec![(c, 2), (a, 0)]);
        assert_eq!(
            (k.done(&a), k.done(&c), k.done(&b)),
            (&[0][..], &[2][..], &[][..])
        );
    }

    /// The rows a run stores, spilled to disk part way (a threshold of 5
    /// rows, so several batches and a rest still in memory) or held to the
    /// end, make the same tables, and what is read back is the same.
    #[test]
    fn spilled_rows_are_stored_as_held_rows_are() {
        let d = tempfile::tempdir().unwrap();
        let paths: Vec<PathBuf> = (0..23)
            .map(|i| {
                let p = d.path().join(format!("f{i:02}"));
                std::fs::write(&p, [i as u8]).unwrap();
                p
            })
            .collect();
        let files: Vec<CorpusFile> = paths
            .iter()
            .map(|p| CorpusFile::new(p.clone(), &p.file_name().unwrap().to_string_lossy(), false))
            .collect();
        let (e1, e2): (Efp, Efp) = ([1; 16], [2; 16]);
        let (id, other) = (set_id(&[e1, e2]), set_id(&[e2]));
        let tables = |spill_at: usize| {
            let dir = tempfile::tempdir().unwrap();
            let mut c = Cache::open(dir.path()).unwrap();
            let mut w = Writes {
                sets: vec![(id, vec![e1, e2]), (other, vec![e2])],
                spill_at,
                ..Default::default()
            };
            // Out of order, as workers finish them.
            for i in (0..files.len()).rev() {
                let meta = std::fs::metadata(&paths[i]).unwrap();
                let entry = StatEntry {
                    stamp: Stamp::of(&meta),
                    sha256: [i as u8; 32],
                    container: Some(i % 2 == 0),
                };
                w.stats.push((i as u32, entry, Format::Other));
                let hits = if i % 4 == 0 {
                    vec![(e2, format!("$a at {i}"))]
                } else {
                    vec![]
                };
                w.push_done([(i * 7 % 23) as u8; 32], id, hits);
                w.push_done([(i * 7 % 23) as u8; 32], other, vec![]);
                w.spill_if_full();
            }
            assert_eq!(w.spill.is_some(), spill_at < 1000);
            c.write(&mut w, &files);
            let dump = |sql: &str| -> Vec<String> {
                let mut q = c.conn.prepare(sql).unwrap();
                q.query_map([], |r| r.get::<_, String>(0))
                    .unwrap()
                    .map(Result::unwrap)
                    .collect()
            };
            let stat = dump(
                "SELECT quote(path) || quote(sha256) || size || mtime_ns || format || chk \
                 FROM stat ORDER BY path",
            );
            let done = dump(
                "SELECT quote(subject) || quote(ruleset) || quote(hits) || chk \
                 FROM done ORDER BY subject, ruleset",
            );
            let want: std::collections::HashSet<Efp> = [e1, e2].into_iter().collect();
            let k = c.known::<String>(&want);
            let mut hits: Vec<_> = k.hits.into_iter().collect();
            hits.sort();
            let found = c.stats(paths.iter().cloned(), |i, e, f| Some((i, e, f)));
            (stat, done, hits, found)
        };
        let held = tables(usize::MAX);
        let spilled = tables(5);
        assert_eq!(held.0.len(), 23);
        assert_eq!(held.1.len(), 46);
        assert_eq!(held.2.len(), 6);
        assert!(held.3.iter().all(Option::is_some));
        assert_eq!(held, spilled);
    }

    #[test]
    fn round_trip_and_checksums() {
        let d = tempfile::tempdir().unwrap();
        let mut c = Cache::open(d.path()).unwrap();
        let e1: Efp = [1; 16];
        let e2: Efp = [2; 16];
        let id = set_id(&[e1, e2]);
        let subject: Subject = [7; 32];
        // The store keeps any serialisable evidence; here, strings.
        let ev = vec!["$a at 0x10".to_string()];
        let other_id = set_id(&[e2]);
        let clean: Subject = [8; 32];
        let mut w = Writes {
            sets: vec![(id, vec![e1, e2]), (other_id, vec![e2])],
            ..Default::default()
        };
        w.push_done(subject, id, vec![(e2, ev.clone())]);
        w.push_done(clean, other_id, vec![]);
        w.push_done(clean, id, vec![]);
        c.write(&mut w, &[]);
        let want: std::collections::HashSet<Efp> = [e2].into_iter().collect();
        let k = c.known(&want);
        assert_eq!(k.sets.len(), 2);
        let index = |s: &SetId| k.set_ids.iter().position(|x| x == s).unwrap() as u32;
        assert_eq!(k.done(&subject), &[index(&id)]);
        let mut both = vec![index(&id), index(&other_id)];
        both.sort();
        assert_eq!(k.done(&clean), both.as_slice());
        assert_eq!(k.hits[&subject], vec![(e2, ev)]);
        assert!(!k.hits.contains_key(&clean));
        // A row edited behind fpgate's back (here: its match removed) is
        // not trusted.
        c.conn
            .execute(
                "UPDATE done SET hits = ?1 WHERE subject = ?2",
                params![&b"[]"[..], &subject[..]],
            )
            .unwrap();
        let k = c.known::<Vec<String>>(&want);
        assert_eq!(k.done(&subject), &[] as &[u32]);
        assert_eq!(k.subjects(), 1);
        assert_eq!(c.bad_rows, 1);
    }

    #[test]
    fn unused_rule_sets_and_vanished_files_are_collected() {
        let d = tempfile::tempdir().unwrap();
        let mut c = Cache::open(d.path()).unwrap();
        let (old, new): (Efp, Efp) = ([1; 16], [2; 16]);
        let (old_id, new_id) = (set_id(&[old]), set_id(&[new]));
        let kept = d.path().join("kept");
        std::fs::write(&kept, b"x").unwrap();
        let stamp = Stamp::of(&std::fs::metadata(&kept).unwrap());
        let entry = StatEntry {
            stamp,
            sha256: [3; 32],
            container: Some(true),
        };
        // Stat rows name files by their index in the run's file list.
        let files = [
            CorpusFile::new(kept.clone(), "kept", false),
            CorpusFile::new(d.path().join("gone"), "gone", false),
        ];
        let mut w = Writes {
            sets: vec![(old_id, vec![old]), (new_id, vec![new])],
            stats: [(1, entry, Format::Other), (0, entry, Format::Other)]
                .into_iter()
                .collect(),
            ..Default::default()
        };
        w.push_done([7; 32], old_id, Vec::<(Efp, ())>::new());
        w.push_done([7; 32], new_id, vec![]);
        c.write(&mut w, &files);
        assert_eq!(
            c.stats(
                [std::path::absolute(&kept).unwrap()].into_iter(),
                |_, e, f| Some((e, f))
            ),
            vec![Some((entry, Format::Other))]
        );
        // The old set was last used 40 days ago; the last collection was
        // two days ago.
        let now = unix_now();
        c.conn
            .execute(
                "UPDATE rulesets SET used = ?1 WHERE id = ?2",
                params![now - 40 * 86_400, &old_id[..]],
            )
            .unwrap();
        c.conn
            .execute("UPDATE meta SET value = ?1", [now - 2 * 86_400])
            .unwrap();
        c.write(&mut Writes::<()>::default(), &[]);
        let count = |sql: &str| -> i64 { c.conn.query_row(sql, [], |r| r.get(0)).unwrap() };
        assert_eq!(count("SELECT count(*) FROM rulesets"), 1);
        assert_eq!(count("SELECT count(*) FROM done"), 1);
        assert_eq!(count("SELECT count(*) FROM stat"), 1);
        let both: std::collections::HashSet<Efp> = [old, new].into_iter().collect();
        assert_eq!(c.known::<()>(&both).set_ids, vec![new_id]);
    }

    #[test]
    fn foreign_and_garbage_files_are_replaced() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join(FILE);
        std::fs::write(&p, vec![0x42u8; 8192]).unwrap();
        let mut c = Cache::open(d.path()).unwrap();
        assert!(c.known::<()>(&Default::default()).sets.is_empty());
        drop(c);
        std::fs::remove_file(&p).unwrap();
        let other = Connection::open(&p).unwrap();
        other.execute_batch("CREATE TABLE t(x)").unwrap();
        drop(other);
        let c = Cache::open(d.path()).unwrap();
        let app: i32 = c
            .conn
            .query_row("PRAGMA application_id", [], |r| r.get(0))
            .unwrap();
        assert_eq!(app, APP_ID);
    }
}
