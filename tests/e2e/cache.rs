//! The results cache, end to end: warm reruns, one edited rule, new files,
//! damaged caches, concurrent runs; every cached report must equal the
//! report of a run without the cache.

use crate::common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// A gate run's JSON report with the run-dependent `timings` removed, and
/// the cache statistics.
fn gate(cache: Option<&Path>, candidate: &Path, corpus: &Path) -> (Value, Value, String) {
    let mut c = fpgate();
    c.args(["gate", "--baseline", "rules/released", "--format", "json"])
        .arg("--candidate")
        .arg(candidate)
        .arg("--corpus")
        .arg(corpus);
    match cache {
        Some(d) => c.arg("--cache").arg(d),
        None => c.arg("--no-cache"),
    };
    let r = run(&mut c);
    assert!(r.code == 0 || r.code == 1, "exit {}: {}", r.code, r.stderr);
    let mut j = r.json();
    let t = j.as_object_mut().unwrap().remove("timings").unwrap();
    (j, t["cache"].clone(), r.stderr)
}

fn n(stats: &Value, key: &str) -> u64 {
    stats[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} in {stats}"))
}

/// A private copy of the candidate rules and corpus (old timestamps, so the
/// stat cache may remember them).
/// Returns the directory (kept alive by the caller), and in it the cache
/// directory to use, the candidate rules and the corpus.
fn workspace() -> (Project, PathBuf, PathBuf, PathBuf) {
    let d = Project::new();
    let (cand, corpus) = (d.join("candidate"), d.join("corpus"));
    copy_dir(&root().join("rules/candidate"), &cand);
    copy_dir(&root().join("corpus"), &corpus);
    age(d.path());
    let cache = d.path().join("cache");
    (d, cache, cand, corpus)
}

#[test]
fn warm_rerun_reads_nothing_and_reports_the_same() {
    let (_w, cache, cand, corpus) = workspace();
    cold_then_warm_agree_with_no_cache(&cache, &cand, &corpus, || ());
}

/// A gate without the cache, then with a cold cache (`after_cold` runs
/// next), then warm: both cached reports equal the uncached one, the cold
/// run scans every file and the warm run none. Returns the file count.
fn cold_then_warm_agree_with_no_cache(
    cache: &Path,
    cand: &Path,
    corpus: &Path,
    after_cold: impl FnOnce(),
) -> u64 {
    let (plain, none, _) = gate(None, cand, corpus);
    assert!(none.is_null());
    let (cold, s1, _) = gate(Some(cache), cand, corpus);
    assert_eq!(cold, plain);
    let files = plain["corpus"]["files"].as_u64().unwrap();
    assert_eq!(n(&s1, "files_scanned_all_rules"), files);
    after_cold();
    let (warm, s2, _) = gate(Some(cache), cand, corpus);
    assert_eq!(warm, plain, "a warm rerun gives the identical report");
    assert_eq!(n(&s2, "files_scanned_all_rules"), 0);
    assert_eq!(n(&s2, "files_scanned_changed_rules"), 0);
    // Files whose ctime is recent are re-read (not trusted by stamp), but
    // not rescanned.
    assert_eq!(
        n(&s2, "files_unread") + n(&s2, "files_read_not_scanned"),
        files
    );
    files
}

#[test]
fn one_edited_rule_runs_alone_and_new_files_get_every_rule() {
    let (_w, cache, cand, corpus) = workspace();
    gate(Some(&cache), &cand, &corpus);

    // Tighten the overbroad rule: it now needs two process-start strings.
    let f = cand.join("updaters.yar");
    let src = std::fs::read_to_string(&f).unwrap();
    let edited = src.replace("and 1 of ($ex*)", "and 2 of ($ex*)");
    assert_ne!(src, edited);
    std::fs::write(&f, edited).unwrap();
    let (plain, _, _) = gate(None, &cand, &corpus);
    let (cached, s, _) = gate(Some(&cache), &cand, &corpus);
    assert_eq!(cached, plain);
    let files = plain["corpus"]["files"].as_u64().unwrap();
    assert_eq!(n(&s, "files_scanned_all_rules"), 0, "{s}");
    assert_eq!(n(&s, "files_scanned_changed_rules"), files, "{s}");
    assert_eq!(s["changed_rules"]["candidate"], 1, "{s}");

    // A new corpus file (new content): scanned with every rule; the rest
    // comes from the cache.
    let exe = walkdir::WalkDir::new(&corpus)
        .sort_by_file_name()
        .into_iter()
        .filter_map(Result::ok)
        .find(|e| e.path().extension().is_some_and(|x| x == "exe"))
        .unwrap();
    let mut data = std::fs::read(exe.path()).unwrap();
    data.extend_from_slice(b"appended: a new content");
    std::fs::write(corpus.join("new-launcher.exe"), data).unwrap();
    let (plain, _, _) = gate(None, &cand, &corpus);
    let (cached, s, _) = gate(Some(&cache), &cand, &corpus);
    assert_eq!(cached, plain);
    // The first .exe is Squirrel's Setup.exe, a zip appended to a PE: the
    // new file and its member (Update.exe, known content under a new path,
    // which the candidate's path rules see) are scanned with every rule.
    assert_eq!(n(&s, "files_scanned_all_rules"), 2, "{s}");
    assert_eq!(n(&s, "files_scanned_changed_rules"), 0, "{s}");
}

#[test]
fn a_damaged_or_foreign_cache_is_reported_and_rebuilt() {
    let (_w, cache, cand, corpus) = workspace();
    let (plain, _, _) = gate(None, &cand, &corpus);
    gate(Some(&cache), &cand, &corpus);
    let db = cache.join("fpgate-cache.sqlite");
    // Garbage over the whole file.
    let len = std::fs::metadata(&db).unwrap().len() as usize;
    std::fs::write(&db, vec![0x5a; len.max(4096)]).unwrap();
    let (r, s, err) = gate(Some(&cache), &cand, &corpus);
    assert_eq!(r, plain);
    assert!(err.contains("not trusted"), "{err}");
    let files = plain["corpus"]["files"].as_u64().unwrap();
    assert_eq!(n(&s, "files_scanned_all_rules"), files);
    // Rebuilt: the next run is warm again.
    let (r, s, err) = gate(Some(&cache), &cand, &corpus);
    assert_eq!(r, plain);
    assert_eq!(n(&s, "files_scanned_all_rules"), 0, "{err}");

    // Rows altered behind fpgate's back: every match erased.
    let conn = rusqlite::Connection::open(&db).unwrap();
    let changed = conn.execute("UPDATE done SET hits = '[]'", []).unwrap();
    assert!(changed > 0);
    drop(conn);
    let (r, _, err) = gate(Some(&cache), &cand, &corpus);
    assert_eq!(r, plain, "altered rows must not hide a match");
    assert!(err.contains("damaged entr"), "{err}");
}

#[test]
fn concurrent_runs_sharing_a_cache_agree() {
    let (_w, cache, cand, corpus) = workspace();
    let (plain, _, _) = gate(None, &cand, &corpus);
    let results: Vec<Value> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..4)
            .map(|_| s.spawn(|| gate(Some(&cache), &cand, &corpus).0))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for r in results {
        assert_eq!(r, plain);
    }
    let (r, s, _) = gate(Some(&cache), &cand, &corpus);
    assert_eq!(r, plain);
    assert_eq!(n(&s, "files_scanned_all_rules"), 0);
}

#[test]
fn an_unwritable_cache_directory_degrades_to_no_cache() {
    let (w, _, cand, corpus) = workspace();
    let blocker = w.path().join("file-not-dir");
    std::fs::write(&blocker, b"x").unwrap();
    let (plain, _, _) = gate(None, &cand, &corpus);
    let (r, s, err) = gate(Some(&blocker.join("cache")), &cand, &corpus);
    assert_eq!(r, plain);
    assert!(s.is_null());
    assert!(err.contains("running without a results cache"), "{err}");
}

#[test]
fn check_shares_results_with_the_gate_and_answers_from_the_cache() {
    let (_w, cache, cand, corpus) = workspace();
    gate(Some(&cache), &cand, &corpus);
    let check = |extra: &[&str]| {
        let r = run(fpgate()
            .arg("check")
            .arg(cand.join("updaters.yar"))
            .arg("--corpus")
            .arg(&corpus)
            .arg("--cache")
            .arg(&cache)
            .args(["--format", "json"])
            .args(extra));
        assert_eq!(r.code, 1, "the rule hits clean updaters: {}", r.stderr);
        let mut j = r.json();
        let t = j.as_object_mut().unwrap().remove("timings").unwrap();
        (j, t["cache"].clone())
    };
    // The rule ran in the gate: the check scans nothing.
    let (cached, s) = check(&[]);
    assert_eq!(n(&s, "files_scanned_all_rules"), 0, "{s}");
    assert_eq!(n(&s, "files_scanned_changed_rules"), 0, "{s}");
    let (fresh, _) = check(&["--no-cache"]);
    assert_eq!(cached, fresh);
    assert!(!cached["false_positives"]["new"]
        .as_array()
        .unwrap()
        .is_empty());
}

#[test]
fn damaged_compiled_rules_are_compiled_again() {
    let (_w, cache, cand, corpus) = workspace();
    let (plain, _, _) = gate(None, &cand, &corpus);
    gate(Some(&cache), &cand, &corpus);
    let db = cache.join("fpgate-cache.sqlite");
    let conn = rusqlite::Connection::open(&db).unwrap();
    let kept: i64 = conn
        .query_row(
            "SELECT count(*) FROM compiled WHERE length(rules) > 0",
            [],
            |r| r.get(0),
        )
        .unwrap();
    // The baseline, validated against the candidate's full compile, is never
    // built on this corpus (each rule it shares with the candidate takes the
    // candidate's result), so only the candidate's compiled form is kept.
    assert_eq!(kept, 1, "the candidate is kept compiled");
    // Flip one bit in the middle of every compiled ruleset (native code).
    let rows: Vec<(Vec<u8>, Vec<u8>)> = conn
        .prepare("SELECT key, rules FROM compiled WHERE length(rules) > 0")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for (key, mut rules) in rows {
        let mid = rules.len() / 2;
        rules[mid] ^= 1;
        conn.execute(
            "UPDATE compiled SET rules = ?1 WHERE key = ?2",
            rusqlite::params![rules, key],
        )
        .unwrap();
    }
    drop(conn);
    let (r, _, err) = gate(Some(&cache), &cand, &corpus);
    assert_eq!(r, plain);
    assert!(err.contains("damaged compiled rules ignored"), "{err}");
}

/// Past 65,536 rows waiting to be written, the cache's rows go to disk as
/// sorted runs and are merged at the end (`store::spill`). A corpus big
/// enough for that (23,000 small files plus the real ones: a stat row and
/// two result rows each, with rules that read the path): the cold and the
/// warm run give the report of a run without the cache, and the warm run
/// scans nothing, so every spilled row was stored and found.
#[test]
fn rows_spilled_to_disk_are_stored_and_found() {
    let (_w, cache, cand, corpus) = workspace();
    let gen = corpus.join("gen");
    for k in 0..23u32 {
        let dir = gen.join(format!("{k:02}"));
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..1000u32 {
            let n = k * 1000 + i;
            let mut body = b"MZ".to_vec();
            body.extend_from_slice(&n.to_le_bytes().repeat(16));
            std::fs::write(dir.join(format!("f{i:04}.bin")), body).unwrap();
        }
    }
    age(&gen);
    // The premise: more rows than are held in memory.
    let rows_stored = || {
        let db = rusqlite::Connection::open(cache.join("fpgate-cache.sqlite")).unwrap();
        let rows: i64 = db
            .query_row(
                "SELECT (SELECT count(*) FROM stat) + (SELECT count(*) FROM done)",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(rows > 65_536, "{rows} rows");
    };
    let files = cold_then_warm_agree_with_no_cache(&cache, &cand, &corpus, rows_stored);
    assert!(files > 23_000, "{files}");
}
