//! Run history: every scan, gate, check and merged sharded run is recorded
//! in `fpgate-history.sqlite` beside the results cache (its own file: the
//! cache may be replaced when damaged or outdated, the history is kept),
//! with when it ran, the rules' and the corpus's fingerprints, its counts
//! and the identity of every finding (rule, content, class, tier).
//!
//! A *series* is the runs of one command over the same rule paths and
//! corpus roots: "the last run of these rules". `--since-last` compares a
//! run with the previous run of its series and lists every finding that
//! is new since then (a released rule that now flags a newly added clean
//! file), and draws the trend of the last runs.

use crate::error::{Error, Result};
pub use crate::verdict::history::{
    HistorySection, PastRun, SinceLast, SinceLastFinding, SinceLastLine,
};
use crate::verdict::report::{Finding, Report};
use rusqlite::{params, Connection};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The history database inside the cache directory.
pub const FILE: &str = "fpgate-history.sqlite";
/// "fpgh": SQLite's application id for fpgate run histories.
const APP_ID: i32 = 0x6670_6768;
const SCHEMA: i32 = 1;
/// Runs drawn in a report's trend.
pub const TREND_RUNS: usize = 30;
/// Runs kept per series (older ones are dropped).
const KEEP_RUNS: i64 = 1000;

/// Where the history lives and what a run does with it.
#[derive(Debug, Clone, Default)]
pub struct HistoryOptions {
    /// The database file; `None`: no history (`--no-history`).
    pub file: Option<PathBuf>,
    pub since_last: SinceLast,
}

/// A finding's identity across runs.
type Ident = (String, String, String);

/// Every candidate match on a clean file, with whether it is excepted.
fn findings(r: &Report) -> Vec<(&Finding, bool)> {
    let fp = &r.false_positives;
    fp.new
        .iter()
        .chain(&fp.persisting)
        .map(|f| (f, false))
        .chain(fp.excepted.iter().map(|f| (f, true)))
        .collect()
}

fn ident(f: &Finding) -> Ident {
    (
        f.rule.namespace.clone(),
        f.rule.identifier.clone(),
        f.sha256.clone(),
    )
}

/// The series a report belongs to.
pub fn series(r: &Report) -> (String, String, String) {
    let rules = r
        .rulesets
        .get("candidate")
        .map(|s| s.paths.join(" "))
        .unwrap_or_default();
    let mut corpus = r.corpus.roots.join(" ");
    // A recipe is part of what the corpus is (runs without one keep their
    // series as before).
    if let Some(recipe) = &r.corpus.recipe {
        if !corpus.is_empty() {
            corpus.push(' ');
        }
        corpus.push_str(&format!("recipe:{}", recipe.file));
    }
    // Relative paths name different rules from another directory.
    let cwd = std::env::current_dir().unwrap_or_default();
    let mut h = Sha256::new();
    h.update(format!(
        "{}\n{}\n{rules}\n{corpus}\n",
        cwd.display(),
        r.command.as_str()
    ));
    let id = crate::util::hex::hex(&h.finalize())[..16].to_string();
    (id, rules, corpus)
}

pub struct History {
    conn: Connection,
    pub path: PathBuf,
}

fn open_conn(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(30))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    let app: i32 = conn.pragma_query_value(None, "application_id", |r| r.get(0))?;
    let ver: i32 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let tables: i64 = conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))?;
    if tables == 0 {
        conn.execute_batch(&format!(
            "PRAGMA application_id = {APP_ID}; PRAGMA user_version = {SCHEMA};
             CREATE TABLE runs(id INTEGER PRIMARY KEY AUTOINCREMENT, series TEXT NOT NULL,
               at TEXT NOT NULL, command TEXT NOT NULL, rules TEXT NOT NULL, corpus TEXT NOT NULL,
               rules_fingerprint TEXT NOT NULL, corpus_hash TEXT NOT NULL, files INTEGER NOT NULL,
               result TEXT NOT NULL);
             CREATE INDEX runs_series ON runs(series, id);
             CREATE TABLE findings(run INTEGER NOT NULL, namespace TEXT NOT NULL,
               identifier TEXT NOT NULL, sha256 TEXT NOT NULL, class TEXT NOT NULL,
               tier TEXT NOT NULL, excepted INTEGER NOT NULL, path TEXT NOT NULL);
             CREATE INDEX findings_run ON findings(run);"
        ))?;
    } else if app != APP_ID || ver != SCHEMA {
        return Err(rusqlite::Error::InvalidQuery);
    }
    Ok(conn)
}

impl History {
    /// Open (or create) the history at `path`. A file that is not an fpgate
    /// history is an error: it is never replaced (it may be someone's data).
    pub fn open(path: &Path) -> Result<History> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir.display(), e.to_string()))?;
        }
        let conn = open_conn(path).map_err(|e| {
            Error::io(
                path.display(),
                format!(
                    "run history {}: not an fpgate run history, damaged or unusable ({e})",
                    path.display()
                ),
            )
        })?;
        Ok(History {
            conn,
            path: path.to_path_buf(),
        })
    }

    /// Record the run of `r`; its id.
    pub fn record(&mut self, r: &Report, at: &str) -> Result<i64> {
        let (series, rules, corpus) = series(r);
        let fp = r
            .rulesets
            .get("candidate")
            .map(|s| s.fingerprint.clone())
            .unwrap_or_default();
        let err = |e: rusqlite::Error| Error::io(self.path.display(), format!("run history: {e}"));
        let tx = self.conn.transaction().map_err(err)?;
        tx.execute(
            "INSERT INTO runs(series, at, command, rules, corpus, rules_fingerprint, corpus_hash, files, result)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                series,
                at,
                r.command.as_str(),
                rules,
                corpus,
                fp,
                r.corpus.hash,
                r.corpus.scanned_files as i64,
                r.verdict.result.name()
            ],
        )
        .map_err(err)?;
        let id = tx.last_insert_rowid();
        {
            let mut st = tx
                .prepare(
                    "INSERT INTO findings(run, namespace, identifier, sha256, class, tier, excepted, path)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )
                .map_err(err)?;
            for (f, excepted) in findings(r) {
                st.execute(params![
                    id,
                    f.rule.namespace,
                    f.rule.identifier,
                    f.sha256,
                    f.class.as_str(),
                    f.tier.as_str(),
                    excepted as i64,
                    f.paths.first().cloned().unwrap_or_default()
                ])
                .map_err(err)?;
            }
        }
        // Keep the newest runs of the series.
        tx.execute(
            "DELETE FROM findings WHERE run IN (SELECT id FROM runs WHERE series = ?1 AND id <= ?2 - ?3)",
            params![series, id, KEEP_RUNS],
        )
        .map_err(err)?;
        tx.execute(
            "DELETE FROM runs WHERE series = ?1 AND id <= ?2 - ?3",
            params![series, id, KEEP_RUNS],
        )
        .map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(id)
    }

    /// The runs of `series` (every series when `None`), newest last, at
    /// most `limit` of them, before run `before` if given.
    pub fn runs(
        &self,
        series: Option<&str>,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<PastRun>> {
        let err = |e: rusqlite::Error| Error::io(self.path.display(), format!("run history: {e}"));
        let mut st = self
            .conn
            .prepare(
                "SELECT id, at, command, rules, corpus, rules_fingerprint, corpus_hash, files, result
                 FROM runs WHERE (?1 IS NULL OR series = ?1) AND (?2 IS NULL OR id < ?2)
                 ORDER BY id DESC LIMIT ?3",
            )
            .map_err(err)?;
        let rows = st
            .query_map(params![series, before, limit as i64], |row| {
                Ok(PastRun {
                    id: row.get(0)?,
                    at: row.get(1)?,
                    command: row.get(2)?,
                    rules: row.get(3)?,
                    corpus: row.get(4)?,
                    rules_fingerprint: row.get(5)?,
                    corpus_hash: row.get(6)?,
                    files: row.get::<_, i64>(7)? as usize,
                    result: row.get(8)?,
                    findings: 0,
                    by_class: BTreeMap::new(),
                    by_tier: BTreeMap::new(),
                    by_rule: BTreeMap::new(),
                })
            })
            .map_err(err)?;
        let mut out: Vec<PastRun> = rows.collect::<rusqlite::Result<_>>().map_err(err)?;
        out.reverse();
        for run in out.iter_mut() {
            let mut st = self
                .conn
                .prepare_cached(
                    "SELECT namespace, identifier, class, tier, excepted FROM findings WHERE run = ?1",
                )
                .map_err(err)?;
            let rows = st
                .query_map([run.id], |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, String>(2)?,
                        row.get::<_, String>(3)?,
                        row.get::<_, i64>(4)?,
                    ))
                })
                .map_err(err)?;
            for row in rows {
                let (ns, id, class, tier, excepted) = row.map_err(err)?;
                run.findings += 1;
                let class = if excepted != 0 {
                    "excepted".to_string()
                } else {
                    class
                };
                *run.by_class.entry(class).or_default() += 1;
                *run.by_tier.entry(tier).or_default() += 1;
                *run.by_rule
                    .entry(crate::rules::rule_name(&ns, &id))
                    .or_default() += 1;
            }
        }
        Ok(out)
    }

    /// The finding identities of run `id`.
    fn idents(&self, id: i64) -> Result<BTreeSet<Ident>> {
        let err = |e: rusqlite::Error| Error::io(self.path.display(), format!("run history: {e}"));
        let mut st = self
            .conn
            .prepare("SELECT namespace, identifier, sha256 FROM findings WHERE run = ?1")
            .map_err(err)?;
        let rows = st
            .query_map([id], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
            .map_err(err)?;
        rows.collect::<rusqlite::Result<_>>().map_err(err)
    }
}

/// Now, RFC 3339 UTC (seconds).
pub fn now() -> String {
    jiff::Timestamp::now()
        .round(jiff::Unit::Second)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// Record the run of `report` and, with `--since-last`, add the history
/// section (and in `block` mode, the verdict's reason). A history that
/// cannot be opened is a note in `report` mode and an error in `block`
/// mode (the gate cannot tell what is new).
pub fn apply(report: &mut Report, o: &HistoryOptions) -> Result<()> {
    let Some(file) = &o.file else {
        if o.since_last != SinceLast::Off {
            return Err(Error::usage(
                "--since-last needs the run history: drop --no-history",
            ));
        }
        return Ok(());
    };
    let mut h = match History::open(file) {
        Ok(h) => h,
        Err(e) if o.since_last == SinceLast::Block => return Err(e),
        Err(e) => {
            eprintln!("fpgate: {e}; this run is not recorded");
            if o.since_last == SinceLast::Report {
                report.history = Some(HistorySection {
                    mode: o.since_last,
                    run: None,
                    series: series(report).0,
                    previous: None,
                    new_since_last: Vec::new(),
                    gone_since_last: 0,
                    blocking: 0,
                    trend: Vec::new(),
                    notes: vec![format!("{e}: nothing to compare with")],
                });
            }
            return Ok(());
        }
    };
    let (series_id, _, _) = series(report);
    let previous = h.runs(Some(&series_id), None, 1)?.pop();
    let before: BTreeSet<Ident> = match &previous {
        Some(p) => h.idents(p.id)?,
        None => BTreeSet::new(),
    };
    let id = match h.record(report, &now()) {
        Ok(id) => Some(id),
        Err(e) if o.since_last == SinceLast::Block => return Err(e),
        Err(e) => {
            eprintln!("fpgate: {e}; this run is not recorded");
            None
        }
    };
    if o.since_last == SinceLast::Off {
        return Ok(());
    }
    let now_ids: BTreeSet<Ident> = findings(report).iter().map(|(f, _)| ident(f)).collect();
    let mut new: Vec<SinceLastFinding> = Vec::new();
    let mut notes = Vec::new();
    if let Some(p) = &previous {
        let mut seen = BTreeSet::new();
        for (f, excepted) in findings(report) {
            let k = ident(f);
            if before.contains(&k) || !seen.insert(k) {
                continue;
            }
            new.push(SinceLastFinding {
                class: f.class,
                tier: f.tier,
                excepted,
                namespace: f.rule.namespace.clone(),
                identifier: f.rule.identifier.clone(),
                source: f.rule.source.clone(),
                line: f.rule.line,
                sha256: f.sha256.clone(),
                paths: f.paths.clone(),
            });
        }
        let fp = report
            .rulesets
            .get("candidate")
            .map(|s| s.fingerprint.as_str())
            .unwrap_or_default();
        if p.rules_fingerprint != fp {
            notes.push(format!(
                "the rules changed since run {} ({}): a finding may be new because a rule changed",
                p.id, p.at
            ));
        }
        if p.corpus_hash != report.corpus.hash {
            notes.push(format!(
                "the corpus changed since run {} ({} files then, {} now)",
                p.id, p.files, report.corpus.scanned_files
            ));
        }
    }
    new.sort_by(|a, b| {
        (a.tier, &a.namespace, &a.identifier, &a.paths).cmp(&(
            b.tier,
            &b.namespace,
            &b.identifier,
            &b.paths,
        ))
    });
    let gone = before.difference(&now_ids).count();
    let blocking = if o.since_last == SinceLast::Block {
        new.iter().filter(|f| !f.excepted).count()
    } else {
        0
    };
    let trend = match id {
        Some(id) => h.runs(Some(&series_id), Some(id + 1), TREND_RUNS)?,
        None => Vec::new(),
    };
    if blocking > 0 {
        crate::verdict::decide::block(
            &mut report.verdict,
            format!(
                "{blocking} finding(s) new since the last run of these rules (run {}), without an exception (--since-last=block)",
                previous.as_ref().map_or(0, |p| p.id)
            ),
        );
    }
    report.history = Some(HistorySection {
        mode: o.since_last,
        run: id,
        series: series_id,
        previous,
        new_since_last: new,
        gone_since_last: gone,
        blocking,
        trend,
        notes,
    });
    Ok(())
}
