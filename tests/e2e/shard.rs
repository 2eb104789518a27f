//! Sharded runs and `fpgate merge`: merging the N partial reports of a
//! corpus gives the report of one run, for several N; an incomplete,
//! duplicated, mismatched, truncated or edited set is refused (exit 2).

use crate::common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// A corpus with everything a merge must get right: the real binaries,
/// two paths of one content, a skipped entry (dangling symlink) and a
/// critical tier from the manifest.
fn corpus() -> Project {
    let d = Project::new();
    let c = d.join("corpus");
    copy_dir(&root().join("corpus"), &c);
    let first_exe = walkdir::WalkDir::new(&c)
        .sort_by_file_name()
        .into_iter()
        .filter_map(Result::ok)
        .find(|e| e.path().extension().is_some_and(|x| x == "exe"))
        .unwrap();
    std::fs::copy(first_exe.path(), c.join("copy-of-an-updater.exe")).unwrap();
    std::os::unix::fs::symlink("/nonexistent/target", c.join("dangling")).unwrap();
    d
}

fn gate_args(corpus: &Path) -> Vec<String> {
    vec![
        "gate".into(),
        "--baseline".into(),
        "rules/released".into(),
        "--candidate".into(),
        "rules/candidate".into(),
        "--corpus".into(),
        corpus.display().to_string(),
        "--allow-incomplete".into(),
        "--today".into(),
        "2026-11-23".into(),
        "--no-cache".into(),
    ]
}

fn without_timings(mut v: Value) -> Value {
    v.as_object_mut().unwrap().remove("timings");
    v
}

/// Write the N partial reports of a run, return their paths.
fn shards(args: &[String], n: u32, out: &Path) -> Vec<PathBuf> {
    (1..=n)
        .map(|k| {
            let p = out.join(format!("part-{k}-of-{n}.json"));
            let r = run(fpgate()
                .args(args)
                .arg("--shard")
                .arg(format!("{k}/{n}"))
                .arg("-o")
                .arg(&p));
            assert_eq!(r.code, 0, "shard {k}/{n}: {}", r.stderr);
            p
        })
        .collect()
}

fn merge(parts: &[PathBuf]) -> Run {
    run(fpgate().arg("merge").args(parts).args(["--format", "json"]))
}

#[test]
fn merging_n_shards_gives_the_report_of_one_run() {
    let d = corpus();
    let args = gate_args(&d.path().join("corpus"));
    let one = run(fpgate().args(&args).args(["--format", "json"]));
    assert_eq!(one.code, 1, "{}", one.stderr);
    let want = without_timings(one.json());
    assert!(!want["unscanned"].as_array().unwrap().is_empty());
    for n in [1, 2, 3, 7] {
        let out = tempfile::tempdir().unwrap();
        let parts = shards(&args, n, out.path());
        let m = merge(&parts);
        assert_eq!(m.code, one.code, "N={n}: {}", m.stderr);
        assert_eq!(without_timings(m.json()), want, "N={n}");
        // Any order of the partials.
        let mut rev = parts.clone();
        rev.reverse();
        assert_eq!(without_timings(merge(&rev).json()), want, "N={n} reversed");
    }
}

#[test]
fn merge_with_a_lock_and_exceptions_matches_one_run() {
    // The policy demo: lock, critical tier, strict exceptions of each kind.
    let args: Vec<String> = [
        "gate",
        "--config",
        "examples/policy-demo/fpgate.toml",
        "--today",
        "2026-11-23",
        "--no-cache",
    ]
    .map(String::from)
    .to_vec();
    let one = run(fpgate().args(&args).args(["--format", "json"]));
    assert!(
        !one.json()["exceptions"]["entries"]
            .as_array()
            .unwrap()
            .is_empty(),
        "{}",
        one.stdout
    );
    let out = tempfile::tempdir().unwrap();
    let parts = shards(&args, 4, out.path());
    let m = merge(&parts);
    assert_eq!(m.code, one.code, "{}", m.stderr);
    let want = without_timings(one.json());
    assert!(want["corpus"]["lock"]["verified"].as_u64().unwrap() > 0);
    assert_eq!(without_timings(m.json()), want);
    // The merge writes every format a run can.
    let sarif = out.path().join("m.sarif");
    let r = run(fpgate()
        .arg("merge")
        .args(&parts)
        .arg("--report")
        .arg(format!("sarif={}", sarif.display())));
    assert_eq!(r.code, one.code, "{}", r.stderr);
    assert!(std::fs::read_to_string(&sarif)
        .unwrap()
        .contains("Shh_Updater_B"));
}

/// (exit code, stderr) of a merge that must be refused.
fn refused(parts: &[PathBuf]) -> String {
    let r = merge(parts);
    assert_eq!(r.code, 2, "stdout: {}\nstderr: {}", r.stdout, r.stderr);
    r.stderr
}

#[test]
fn missing_duplicated_and_mismatched_shards_are_refused() {
    let d = corpus();
    let args = gate_args(&d.path().join("corpus"));
    let out = tempfile::tempdir().unwrap();
    let parts = shards(&args, 3, out.path());

    let err = refused(&parts[..2]);
    assert!(err.contains("missing shard(s) 3/3"), "{err}");
    let err = refused(&[parts[0].clone(), parts[1].clone(), parts[1].clone()]);
    assert!(err.contains("duplicated shard 2/3"), "{err}");

    // Shard 3 of another split.
    let other = tempfile::tempdir().unwrap();
    let four = shards(&args, 4, other.path());
    let err = refused(&[parts[0].clone(), parts[1].clone(), four[2].clone()]);
    assert!(err.contains("mismatched shards"), "{err}");

    // Shard 3 made with other rules.
    let mut other_rules = args.clone();
    let i = other_rules
        .iter()
        .position(|a| a == "rules/candidate")
        .unwrap();
    other_rules[i] = "rules/released".into();
    let alt = shards(&other_rules, 3, other.path());
    let err = refused(&[parts[0].clone(), parts[1].clone(), alt[2].clone()]);
    assert!(err.contains("differ in rules"), "{err}");

    // Shard 3 made with another option.
    let mut opt = args.clone();
    opt.push("--max-file-size".into());
    opt.push("100M".into());
    let alt = shards(&opt, 3, other.path());
    let err = refused(&[parts[0].clone(), parts[1].clone(), alt[2].clone()]);
    assert!(err.contains("option max_file_size"), "{err}");

    // Shard 3 made over a corpus with one more file.
    std::fs::write(d.path().join("corpus/extra.bin"), b"one more clean file").unwrap();
    let alt = shards(&args, 3, other.path());
    let err = refused(&[parts[0].clone(), parts[1].clone(), alt[2].clone()]);
    assert!(err.contains("differ in corpus"), "{err}");
}

#[test]
fn truncated_edited_and_foreign_partials_are_refused() {
    let d = corpus();
    let args = gate_args(&d.path().join("corpus"));
    let out = tempfile::tempdir().unwrap();
    let parts = shards(&args, 2, out.path());
    let text = std::fs::read_to_string(&parts[1]).unwrap();
    let bad = out.path().join("bad.json");
    let with = |p: &Path| vec![parts[0].clone(), p.to_path_buf()];

    std::fs::write(&bad, &text[..text.len() / 2]).unwrap();
    let err = refused(&with(&bad));
    assert!(err.contains("truncated"), "{err}");

    // A file dropped from the shard (a false positive hidden by an edit).
    let mut v: Value = serde_json::from_str(&text).unwrap();
    let files = v["facts"]["files"].as_array_mut().unwrap();
    assert!(!files.is_empty());
    files.pop();
    std::fs::write(&bad, v.to_string()).unwrap();
    let err = refused(&with(&bad));
    assert!(err.contains("edited or truncated shard"), "{err}");

    // A scanned file copied into the other shard, or moved there.
    let mut first: Value =
        serde_json::from_str(&std::fs::read_to_string(&parts[0]).unwrap()).unwrap();
    let files = first["facts"]["files"].as_array_mut().unwrap();
    let at = files
        .iter()
        .position(|f| f["outcome"]["status"] == "scanned")
        .unwrap();
    let moved = files[at].clone();
    let mut v: Value = serde_json::from_str(&text).unwrap();
    v["facts"]["files"].as_array_mut().unwrap().push(moved);
    std::fs::write(&bad, v.to_string()).unwrap();
    // (Each partial's files are checked as it is read, before the count.)
    let err = refused(&with(&bad));
    assert!(
        err.contains("belongs to shard 1/2, not to this one"),
        "{err}"
    );
    files.remove(at);
    let first_edited = out.path().join("first-edited.json");
    std::fs::write(&first_edited, first.to_string()).unwrap();
    let err = refused(&[first_edited.clone(), bad.clone()]);
    assert!(err.contains("belongs to shard 1/2"), "{err}");

    // Results for a rule the rulesets do not have.
    let mut v: Value = serde_json::from_str(&text).unwrap();
    let f = v["facts"]["files"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|f| f["outcome"]["status"] == "scanned" && f["outcome"]["hits"].is_array())
        .unwrap();
    f["outcome"]["hits"][0] =
        serde_json::json!([{"namespace": "default", "rule": "Invented", "patterns": []}]);
    std::fs::write(&bad, v.to_string()).unwrap();
    let err = refused(&with(&bad));
    assert!(err.contains("which the rulesets do not have"), "{err}");

    // An unknown field, a wrong kind, a report that is not a partial.
    let mut v: Value = serde_json::from_str(&text).unwrap();
    v["facts"]["surprise"] = Value::Bool(true);
    std::fs::write(&bad, v.to_string()).unwrap();
    let err = refused(&with(&bad));
    assert!(err.contains("unknown field"), "{err}");
    let plain = run(fpgate().args(&args).args(["--format", "json"]));
    std::fs::write(&bad, plain.stdout).unwrap();
    let err = refused(&with(&bad));
    assert!(err.contains("not an fpgate partial report"), "{err}");
    let err = refused(&[out.path().join("does-not-exist.json")]);
    assert!(err.contains("does-not-exist.json"), "{err}");
}

#[test]
fn shard_flags_are_checked() {
    let scan = |extra: &[&str]| {
        run(fpgate()
            .args(["scan", "--rules", "rules/released", "--corpus", "corpus"])
            .args(extra))
    };
    let r = scan(&["--shard", "0/3"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("numbered from 1"), "{}", r.stderr);
    let r = scan(&["--shard", "1/3", "--format", "human"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("partial report"), "{}", r.stderr);
    // A scan's shard on stdout is a partial report.
    let r = scan(&["--shard", "1/1"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.json()["kind"], "fpgate-partial");
}

#[test]
fn with_a_lock_shards_place_files_by_locked_hash_and_refuse_a_changed_file() {
    let d = tempfile::tempdir().unwrap();
    let c = d.path().join("corpus");
    copy_dir(&root().join("corpus"), &c);
    let lock = d.path().join("corpus.lock");
    let r = run(fpgate()
        .args(["corpus", "index", "--corpus"])
        .arg(&c)
        .arg("--output")
        .arg(&lock));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let mut args = gate_args(&c);
    args.push("--lock".into());
    args.push(lock.display().to_string());
    let one = run(fpgate().args(&args).args(["--format", "json"]));
    let out = tempfile::tempdir().unwrap();
    let parts = shards(&args, 3, out.path());
    let m = merge(&parts);
    assert_eq!(m.code, one.code, "{}", m.stderr);
    assert_eq!(without_timings(m.json()), without_timings(one.json()));

    // A locked file changes: the shard that meets it stops (exit 2).
    let victim = c.join("npm/electron-winstaller-5.4.4/Setup.exe");
    let mut data = std::fs::read(&victim).unwrap();
    data.extend_from_slice(b"tampered");
    std::fs::write(&victim, data).unwrap();
    let mut refused_by = 0;
    for k in 1..=3 {
        let r = run(fpgate()
            .args(&args)
            .arg("--shard")
            .arg(format!("{k}/3"))
            .arg("-o")
            .arg(out.path().join(format!("again-{k}.json"))));
        if r.code == 2 {
            assert!(
                r.stderr.contains("does not match") && r.stderr.contains("Setup.exe"),
                "{}",
                r.stderr
            );
            refused_by += 1;
        } else {
            assert_eq!(r.code, 0, "{}", r.stderr);
        }
    }
    assert!(refused_by >= 1);
}
