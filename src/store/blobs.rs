//! Blobs kept beside the results: compiled rulesets (the most recent few)
//! and small values by domain (source analyses, per-file warnings), each
//! row with its checksum.

use super::{blob, check, int, try_open, unix_now, FILE};
use rusqlite::{params, Connection};
use sha2::Digest;
use std::path::Path;

/// Compiled rules kept for `key` (see `rules::compiled_key`): the
/// serialized rules and the warnings (JSON). Any problem is a miss; a
/// damaged cache is reported and replaced by `Cache::open`.
pub fn compiled_get(dir: &Path, key: &[u8; 32]) -> Lookup<(Vec<u8>, Vec<u8>)> {
    let Ok(conn) = try_open(&dir.join(FILE)) else {
        return Lookup::Miss;
    };
    let Ok((rules, warnings, chk)) = conn.query_row(
        "SELECT rules, warnings, chk FROM compiled WHERE key = ?1",
        [&key[..]],
        |r| Ok((blob(r, 0), blob(r, 1), int(r, 2))),
    ) else {
        return Lookup::Miss;
    };
    match (rules, warnings, chk) {
        (Some(rules), Some(warnings), Some(chk)) if chk == check(&[key, &rules, &warnings]) => {
            Lookup::Hit((rules, warnings))
        }
        _ => Lookup::Damaged,
    }
}

/// True when the store has a row for this compiled set (sound or not:
/// `compiled_get` tells which).
pub fn compiled_exists(dir: &Path, key: &[u8; 32]) -> bool {
    let Ok(conn) = try_open(&dir.join(FILE)) else {
        return false;
    };
    conn.query_row("SELECT 1 FROM compiled WHERE key = ?1", [&key[..]], |_| {
        Ok(())
    })
    .is_ok()
}

/// A lookup in the store: found, not there, or there but failing its
/// checksum (the caller says so and does the work again).
pub enum Lookup<T> {
    Hit(T),
    Miss,
    Damaged,
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
