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
//! - `rulesets`: a set of rule keys (see `rulekeys`) that were run together.
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

use crate::corpus::format::Format;
use crate::corpus::read::{PreHashed, Stamp};
use rusqlite::{params, Connection, ErrorCode};
use serde::{de::DeserializeOwned, Serialize};
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
}

/// The results the cache already holds for the rules of this run.
#[derive(Debug)]
pub struct Known<E> {
    /// Sets of rule keys that include at least one rule of this run.
    pub sets: Vec<Vec<Efp>>,
    /// Their ids.
    pub set_ids: Vec<SetId>,
    /// Per subject, the sets (indices into `sets`) it was scanned with.
    pub done: HashMap<Subject, Vec<u32>>,
    /// Per subject, the rules of this run it matched, with evidence.
    pub hits: HashMap<Subject, Vec<(Efp, E)>>,
}

/// Results of this run to store.
#[derive(Debug)]
pub struct Writes<E> {
    /// Rule sets this run used: kept from expiring (see `KEEP_SECONDS`).
    pub touch: Vec<SetId>,
    pub stats: Vec<(PathBuf, StatEntry, String)>,
    pub sets: Vec<(SetId, Vec<Efp>)>,
    pub done: Vec<(Subject, SetId, Vec<(Efp, E)>)>,
}

impl<E> Default for Known<E> {
    fn default() -> Self {
        Known {
            sets: Vec::new(),
            set_ids: Vec::new(),
            done: HashMap::new(),
            hits: HashMap::new(),
        }
    }
}

impl<E> Default for Writes<E> {
    fn default() -> Self {
        Writes {
            touch: Vec::new(),
            stats: Vec::new(),
            sets: Vec::new(),
            done: Vec::new(),
        }
    }
}

pub struct Cache {
    conn: Connection,
    pub path: PathBuf,
    /// Rows that failed their checksum in this run.
    pub bad_rows: usize,
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
    /// reported on stderr and replaced. `Err`: no cache can be used (the
    /// caller reports it and scans without one).
    pub fn open(dir: &Path) -> Result<Cache, String> {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create cache directory {}: {e}", dir.display()))?;
        let path = dir.join(FILE);
        match try_open(&path) {
            Ok(conn) => Ok(Cache {
                conn,
                path,
                bad_rows: 0,
            }),
            Err(Bad::Io(e)) => Err(format!("cache {}: {e}", path.display())),
            Err(Bad::Foreign(why)) => {
                eprintln!(
                    "fpgate: cache {}: {why}; it is not trusted: starting a new cache",
                    path.display()
                );
                discard(&path);
                match try_open(&path) {
                    Ok(conn) => Ok(Cache {
                        conn,
                        path,
                        bad_rows: 0,
                    }),
                    Err(Bad::Io(e) | Bad::Foreign(e)) => {
                        Err(format!("cache {}: {e}", path.display()))
                    }
                }
            }
        }
    }

    /// Replace a cache found damaged while in use.
    fn rebuild(&mut self, why: &rusqlite::Error) {
        eprintln!(
            "fpgate: cache {}: damaged ({why}); it is not trusted: starting a new cache",
            self.path.display()
        );
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
                    eprintln!("fpgate: cache {}: {what}: {e}", self.path.display());
                }
                fallback
            }
        }
    }

    /// Store the stamps and hashes of files hashed in this run (not those
    /// that came from the stat cache, nor files modified in the last
    /// seconds: see `Stamp::racy`).
    pub fn remember_stats<'a>(
        &mut self,
        files: impl Iterator<Item = (&'a crate::corpus::CorpusFile, &'a Option<PreHashed>)>,
    ) {
        let now = unix_now();
        let stats = files
            .filter_map(|(f, p)| {
                let p = p.as_ref().filter(|p| !p.cached)?;
                stat_row(f, p.stamp, p.sha256, p.format, now)
            })
            .collect();
        self.write(&Writes::<()> {
            stats,
            ..Default::default()
        });
    }

    /// The stat entries of `paths` (absolute), in order.
    pub fn stats(&mut self, paths: &[PathBuf]) -> Vec<Option<(StatEntry, Format)>> {
        let r = self.try_stats(paths);
        self.recover(r, "reading file stamps", vec![None; paths.len()])
    }

    fn try_stats(
        &mut self,
        paths: &[PathBuf],
    ) -> rusqlite::Result<Vec<Option<(StatEntry, Format)>>> {
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
                for p in paths {
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
                    out.push(row.and_then(|(n, sha, format, chk)| {
                        let (Some(n), Some(sha), Some(format), Some(chk)) = (n, sha, format, chk)
                        else {
                            bad += 1;
                            return None;
                        };
                        if chk != stat_check(key, &n, &sha, &format) {
                            bad += 1;
                            return None;
                        }
                        let (Ok(sha256), Some(format)) = (
                            <[u8; 32]>::try_from(sha.as_slice()),
                            crate::corpus::format::Format::by_name(&format),
                        ) else {
                            bad += 1;
                            return None;
                        };
                        Some((
                            StatEntry {
                                stamp: Stamp::from_parts(n),
                                sha256,
                            },
                            format,
                        ))
                    }));
                }
            }
            tx.commit()?;
        }
        self.note_bad(bad);
        Ok(out)
    }

    fn note_bad(&mut self, bad: usize) {
        if bad > 0 {
            eprintln!(
                "fpgate: cache {}: {bad} damaged entr{} ignored (those files are scanned again)",
                self.path.display(),
                if bad == 1 { "y" } else { "ies" }
            );
            self.bad_rows += bad;
        }
    }

    /// Everything the cache knows about the rule keys `efps` (all the rules
    /// of this run).
    pub fn known<E: DeserializeOwned>(
        &mut self,
        efps: &std::collections::HashSet<Efp>,
    ) -> Known<E> {
        let r = self.try_known(efps);
        self.recover(r, "reading results", Known::default())
    }

    fn try_known<E: DeserializeOwned>(
        &mut self,
        efps: &std::collections::HashSet<Efp>,
    ) -> rusqlite::Result<Known<E>> {
        let mut known = Known::default();
        let mut bad = 0;
        let tx = self.conn.transaction()?;
        let mut set_index: HashMap<Vec<u8>, u32> = HashMap::new();
        {
            let mut q = tx.prepare("SELECT id, rules, chk FROM rulesets")?;
            let mut rows = q.query([])?;
            while let Some(r) = rows.next()? {
                let (Some(id), Some(rules), Some(chk)) = (blob(r, 0), blob(r, 1), int(r, 2)) else {
                    bad += 1;
                    continue;
                };
                if chk != check(&[&id, &rules]) || rules.len() % 16 != 0 {
                    bad += 1;
                    continue;
                }
                let list: Vec<Efp> = rules
                    .chunks_exact(16)
                    .filter_map(|c| c.try_into().ok())
                    .collect();
                if set_id(&list)[..] != id[..] {
                    bad += 1;
                    continue;
                }
                if list.iter().any(|e| efps.contains(e)) {
                    if let Ok(sid) = SetId::try_from(id.as_slice()) {
                        known.set_ids.push(sid);
                    }
                    set_index.insert(id, known.sets.len() as u32);
                    known.sets.push(list);
                }
            }
        }
        if !known.sets.is_empty() {
            let mut q = tx.prepare("SELECT subject, ruleset, hits, chk FROM done")?;
            let mut rows = q.query([])?;
            while let Some(r) = rows.next()? {
                let Some(set) = blob(r, 1) else {
                    bad += 1;
                    continue;
                };
                let Some(&si) = set_index.get(&set) else {
                    continue;
                };
                let (Some(subject), Some(hits), Some(chk)) = (blob(r, 0), blob(r, 2), int(r, 3))
                else {
                    bad += 1;
                    continue;
                };
                if chk != check(&[&subject, &set, &hits]) {
                    bad += 1;
                    continue;
                }
                let (Ok(subject), Ok(hits)) = (
                    Subject::try_from(subject.as_slice()),
                    serde_json::from_slice::<Vec<(Efp, E)>>(&hits),
                ) else {
                    bad += 1;
                    continue;
                };
                known.done.entry(subject).or_default().push(si);
                let list = known.hits.entry(subject).or_default();
                for (e, ev) in hits {
                    if efps.contains(&e) && !list.iter().any(|(x, _)| *x == e) {
                        list.push((e, ev));
                    }
                }
            }
        }
        tx.commit()?;
        for v in known.done.values_mut() {
            v.sort_unstable();
            v.dedup();
        }
        self.note_bad(bad);
        Ok(known)
    }

    /// Store this run's results in one transaction. Failing to store is
    /// reported, not fatal: the results are already in the report.
    pub fn write<E: Serialize>(&mut self, w: &Writes<E>) {
        let r = self.try_write(w);
        self.recover(r, "could not store results", ());
    }

    /// At most once a day: drop the results of rule sets unused for
    /// `KEEP_SECONDS` and the stat entries of files that no longer exist.
    fn collect_garbage(tx: &rusqlite::Transaction<'_>, now: i64) -> rusqlite::Result<()> {
        let last: i64 = tx
            .query_row("SELECT value FROM meta WHERE key = 'gc'", [], |r| r.get(0))
            .or_else(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => Ok(0),
                e => Err(e),
            })?;
        if now - last < 86_400 {
            return Ok(());
        }
        let cutoff = now - KEEP_SECONDS;
        tx.execute(
            "DELETE FROM done WHERE ruleset IN (SELECT id FROM rulesets WHERE used < ?1)",
            [cutoff],
        )?;
        tx.execute("DELETE FROM rulesets WHERE used < ?1", [cutoff])?;
        let gone: Vec<Vec<u8>> = {
            use std::os::unix::ffi::OsStrExt;
            let mut q = tx.prepare("SELECT path FROM stat")?;
            let mut rows = q.query([])?;
            let mut gone = Vec::new();
            while let Some(r) = rows.next()? {
                let Some(p) = blob(r, 0) else { continue };
                let path = Path::new(std::ffi::OsStr::from_bytes(&p));
                if std::fs::symlink_metadata(path).is_err() {
                    gone.push(p);
                }
            }
            gone
        };
        let mut q = tx.prepare("DELETE FROM stat WHERE path = ?1")?;
        for p in gone {
            q.execute([p])?;
        }
        tx.execute("INSERT OR REPLACE INTO meta VALUES ('gc', ?1)", [now])?;
        Ok(())
    }

    fn try_write<E: Serialize>(&mut self, w: &Writes<E>) -> rusqlite::Result<()> {
        use std::os::unix::ffi::OsStrExt;
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        {
            let mut q = tx.prepare_cached(
                "INSERT OR REPLACE INTO stat VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )?;
            for (path, e, format) in &w.stats {
                let key = path.as_os_str().as_bytes();
                let n = e.stamp.parts();
                q.execute(params![
                    key,
                    n[0],
                    n[1],
                    n[2],
                    n[3],
                    n[4],
                    n[5],
                    n[6],
                    &e.sha256[..],
                    format,
                    stat_check(key, &n, &e.sha256, format)
                ])?;
            }
            let now = unix_now();
            let mut q =
                tx.prepare_cached("INSERT OR IGNORE INTO rulesets VALUES (?1, ?2, ?3, ?4)")?;
            for (id, efps) in &w.sets {
                let mut v = efps.clone();
                v.sort();
                v.dedup();
                let blob: Vec<u8> = v.concat();
                q.execute(params![&id[..], &blob, check(&[id, &blob]), now])?;
            }
            let mut q = tx.prepare_cached("UPDATE rulesets SET used = ?2 WHERE id = ?1")?;
            for id in w.touch.iter().chain(w.sets.iter().map(|(id, _)| id)) {
                q.execute(params![&id[..], now])?;
            }
            let mut q = tx.prepare_cached("INSERT OR REPLACE INTO done VALUES (?1, ?2, ?3, ?4)")?;
            for (subject, set, hits) in &w.done {
                let blob = serde_json::to_vec(hits).unwrap_or_default();
                q.execute(params![
                    &subject[..],
                    &set[..],
                    &blob,
                    check(&[subject, set, &blob])
                ])?;
            }
        }
        Self::collect_garbage(&tx, unix_now())?;
        tx.commit()
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

/// Compiled rules kept for `key` (see `rules::compiled_key`): the
/// serialized rules and the warnings (JSON). Any problem is a miss; a
/// damaged cache is reported and replaced by `Cache::open`.
pub fn compiled_get(dir: &Path, key: &[u8; 32]) -> Option<(Vec<u8>, Vec<u8>)> {
    let conn = try_open(&dir.join(FILE)).ok()?;
    let (rules, warnings, chk) = conn
        .query_row(
            "SELECT rules, warnings, chk FROM compiled WHERE key = ?1",
            [&key[..]],
            |r| Ok((blob(r, 0), blob(r, 1), int(r, 2))),
        )
        .ok()?;
    match (rules, warnings, chk) {
        (Some(rules), Some(warnings), Some(chk)) if chk == check(&[key, &rules, &warnings]) => {
            Some((rules, warnings))
        }
        _ => {
            eprintln!(
                "fpgate: cache {}: damaged compiled rules ignored (compiling again)",
                dir.display()
            );
            None
        }
    }
}

/// Keep compiled rules; only the most recent few rulesets are kept.
pub fn compiled_put(dir: &Path, key: &[u8; 32], rules: &[u8], warnings: &[u8]) {
    const KEEP: i64 = 8;
    let Ok(conn) = try_open(&dir.join(FILE)) else {
        return;
    };
    put_compiled_row(&conn, key, rules, warnings, unix_now());
    let _ = conn.execute(
        "DELETE FROM compiled WHERE length(rules) > 0 AND key NOT IN \
         (SELECT key FROM compiled WHERE length(rules) > 0 ORDER BY made DESC LIMIT ?1)",
        [KEEP],
    );
}

/// One row of `compiled`, with its checksum.
fn put_compiled_row(conn: &Connection, key: &[u8; 32], rules: &[u8], warnings: &[u8], made: i64) {
    let _ = conn.execute(
        "INSERT OR REPLACE INTO compiled VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            &key[..],
            rules,
            warnings,
            made,
            check(&[key, rules, warnings])
        ],
    );
}

/// Small per-file values (a rule file's warnings, its parse) are kept in
/// `compiled` with no rules, under a key separated by `domain`.
fn small_key(domain: &str, key: &[u8; 32]) -> [u8; 32] {
    let mut h = sha2::Sha256::new();
    sha2::Digest::update(&mut h, domain.as_bytes());
    sha2::Digest::update(&mut h, b"\0");
    sha2::Digest::update(&mut h, key);
    sha2::Digest::finalize(h).into()
}

/// The values kept for `keys` in `domain`, if known and intact.
pub fn small_get(dir: &Path, domain: &str, keys: &[[u8; 32]]) -> Vec<Option<Vec<u8>>> {
    let Ok(conn) = try_open(&dir.join(FILE)) else {
        return vec![None; keys.len()];
    };
    let Ok(mut stmt) = conn.prepare("SELECT rules, warnings, chk FROM compiled WHERE key = ?1")
    else {
        return vec![None; keys.len()];
    };
    keys.iter()
        .map(|k| {
            let key = small_key(domain, k);
            let (rules, warnings, chk) = stmt
                .query_row([&key[..]], |r| Ok((blob(r, 0), blob(r, 1), int(r, 2))))
                .ok()?;
            match (rules, warnings, chk) {
                (Some(r), Some(w), Some(c)) if r.is_empty() && c == check(&[&key, &r, &w]) => {
                    Some(w)
                }
                _ => None, // damaged: the file is compiled in full again
            }
        })
        .collect()
}

/// Keep values in `domain`, in one transaction; rows unused for 30 days
/// are dropped.
pub fn small_put(dir: &Path, domain: &str, rows: &[([u8; 32], Vec<u8>)]) {
    if rows.is_empty() {
        return;
    }
    let Ok(mut conn) = try_open(&dir.join(FILE)) else {
        return;
    };
    let now = unix_now();
    let Ok(tx) = conn.transaction() else { return };
    for (k, value) in rows {
        put_compiled_row(&tx, &small_key(domain, k), &[], value, now);
    }
    let _ = tx.execute(
        "DELETE FROM compiled WHERE length(rules) = 0 AND made < ?1",
        [now - 30 * 86_400],
    );
    let _ = tx.commit();
}

/// A stat-cache row for a file read in this run, unless it was modified
/// within the last 2 seconds of `now` (see `Stamp::racy`).
pub fn stat_row(
    f: &crate::corpus::CorpusFile,
    stamp: Stamp,
    sha256: [u8; 32],
    format: Format,
    now: i64,
) -> Option<(PathBuf, StatEntry, String)> {
    if stamp.racy(now, 2) {
        return None;
    }
    let abs = std::path::absolute(&f.path).ok()?;
    Some((abs, StatEntry { stamp, sha256 }, format.to_string()))
}

/// Seconds since 1970 (0 if the clock is before it).
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn stat_check(path: &[u8], n: &[i64; 7], sha: &[u8], format: &str) -> i64 {
    let nums: Vec<u8> = n.iter().flat_map(|x| x.to_le_bytes()).collect();
    check(&[path, &nums, sha, format.as_bytes()])
}

fn discard(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(p));
    }
}

fn try_open(path: &Path) -> Result<Connection, Bad> {
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
        c.write(&Writes {
            sets: vec![(id, vec![e1, e2])],
            done: vec![(subject, id, vec![(e2, ev.clone())])],
            ..Default::default()
        });
        let want: std::collections::HashSet<Efp> = [e2].into_iter().collect();
        let k = c.known(&want);
        assert_eq!(k.sets.len(), 1);
        assert_eq!(k.done[&subject], vec![0]);
        assert_eq!(k.hits[&subject], vec![(e2, ev)]);
        // A row edited behind fpgate's back (here: its match removed) is
        // not trusted.
        c.conn
            .execute("UPDATE done SET hits = ?1", [&b"[]"[..]])
            .unwrap();
        let k = c.known::<Vec<String>>(&want);
        assert!(k.done.is_empty());
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
        };
        c.write(&Writes {
            sets: vec![(old_id, vec![old]), (new_id, vec![new])],
            done: vec![
                ([7; 32], old_id, Vec::<(Efp, ())>::new()),
                ([7; 32], new_id, vec![]),
            ],
            stats: vec![
                (kept.clone(), entry, "other".into()),
                (d.path().join("gone"), entry, "other".into()),
            ],
            ..Default::default()
        });
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
        c.write(&Writes::<()>::default());
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
