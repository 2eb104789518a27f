//! Per-rule results: which sets of rule keys a subject (a content, or a
//! content with its path externals) was scanned with, and which of those
//! rules matched it, with their evidence (any serialisable type).

use super::stats::stat_check;
use super::{
    blob, check, int, set_id, unix_now, Cache, Efp, Known, SetId, StatEntry, Subject, Writes,
    KEEP_SECONDS,
};
use crate::corpus::format::Format;
use rusqlite::params;
use serde::{de::DeserializeOwned, Serialize};
use std::collections::HashMap;
use std::path::Path;

impl Cache {
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
        // (subject, set) pairs, gathered by chunks, then one exact list.
        let mut pairs: crate::util::chunked::Chunked<(Subject, u32)> = Default::default();
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
                pairs.push((subject, si));
                // Most contents match nothing: no entry for them (a million
                // empty lists cost tens of MB).
                for (e, ev) in hits {
                    if !efps.contains(&e) {
                        continue;
                    }
                    let list = known.hits.entry(subject).or_default();
                    if !list.iter().any(|(x, _)| *x == e) {
                        list.push((e, ev));
                    }
                }
            }
        }
        tx.commit()?;
        let mut all = Vec::with_capacity(pairs.len());
        all.extend(pairs.iter().copied());
        drop(pairs);
        known.set_done(all);
        self.note_bad(bad);
        Ok(known)
    }

    /// Store this run's results in one transaction. Failing to store is
    /// reported, not fatal: the results are already in the report. `files`
    /// is the run's file list, which the stat rows index.
    pub fn write<E: Serialize>(&mut self, w: &mut Writes<E>, files: &[crate::corpus::CorpusFile]) {
        w.spill_rest();
        let r = self.try_write(w, files);
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

    fn try_write<E: Serialize>(
        &mut self,
        w: &Writes<E>,
        files: &[crate::corpus::CorpusFile],
    ) -> rusqlite::Result<()> {
        use std::os::unix::ffi::OsStrExt;
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        {
            let mut q = tx.prepare_cached(
                "INSERT OR REPLACE INTO stat VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )?;
            // In file order, which is path order (sorted runs, one per
            // corpus root): B-tree inserts then touch each page once
            // instead of a random page per row (a million rows would
            // otherwise not fit the page cache and cost superlinear time).
            // The absolute path is made here, row by row, not held. Spilled
            // rows come back sorted; rows still in memory (a spill that
            // failed part way) follow, sorted.
            let mut put_stat = |i: u32, e: &StatEntry, format: Format| -> rusqlite::Result<()> {
                let Some(f) = files.get(i as usize) else {
                    return Ok(());
                };
                let Ok(path) = std::path::absolute(f.path()) else {
                    return Ok(());
                };
                let key = path.as_os_str().as_bytes();
                let n = e.stamp.parts();
                let column = super::stats::format_column(format, e.container);
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
                    column.as_str(),
                    stat_check(key, &n, &e.sha256, &column)
                ])?;
                Ok(())
            };
            if let Some(sp) = &w.spill {
                through_spill(|f| sp.each_stat(f), |(i, e, f)| put_stat(i, &e, f))?;
            }
            let mut stats: Vec<_> = w.stats.iter().collect();
            stats.sort_unstable_by_key(|r| r.0);
            for (i, e, format) in stats {
                put_stat(*i, e, *format)?;
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
            let mut put_done = |subject: &Subject, set: &SetId, blob: &[u8]| {
                q.execute(params![
                    &subject[..],
                    &set[..],
                    blob,
                    check(&[subject, set, blob])
                ])
                .map(|_| ())
            };
            if let Some(sp) = &w.spill {
                through_spill(
                    |f| sp.each_done(f),
                    |(s, set, hits)| put_done(&s, &set, &hits),
                )?;
            }
            let mut done: Vec<_> = w.done.iter().collect();
            let set_of = |i: u32| &w.done_sets[i as usize];
            done.sort_by(|a, b| (&a.0, set_of(a.1)).cmp(&(&b.0, set_of(b.1))));
            for (subject, set, hits) in done {
                put_done(subject, set_of(*set), &super::hits_blob(hits))?;
            }
        }
        Self::collect_garbage(&tx, unix_now())?;
        tx.commit()
    }
}

/// Feed spilled rows (`each`) to `put`: an error on either side stops it
/// and is the store's error.
fn through_spill<R>(
    each: impl FnOnce(&mut dyn FnMut(R) -> std::io::Result<()>) -> std::io::Result<()>,
    mut put: impl FnMut(R) -> rusqlite::Result<()>,
) -> rusqlite::Result<()> {
    let mut failed = None;
    let r = each(&mut |row| {
        put(row).map_err(|e| {
            failed = Some(e);
            std::io::Error::other("the cache refused a row")
        })
    });
    match (r, failed) {
        (Ok(()), _) => Ok(()),
        (Err(_), Some(e)) => Err(e),
        (Err(e), None) => Err(rusqlite::Error::ToSqlConversionFailure(Box::new(e))),
    }
}
