//! Gate policy end to end: fpgate.toml, exceptions (applied, expired, stale,
//! unapproved, lapsed, critical), the critical tier, the corpus lock, rule
//! change classes, --baseline-ref and the warning policy.

use crate::common::*;
use serde_json::Value;
use std::path::Path;

const HIT: &[u8] = b"rule Hit { strings: $h = \"needle\" condition: $h }\n";

fn sha(data: &[u8]) -> String {
    fpgate::util::hex::hex(&<sha2::Sha256 as sha2::Digest>::digest(data))
}

/// A small project: base rules, candidate rules, a corpus, no config.
fn project(cand: &[u8], files: &[(&str, &[u8])]) -> Project {
    Project::new()
        .file("base/r.yar", "rule Quiet { condition: false }\n")
        .file("cand/r.yar", cand)
        .corpus(files)
}

fn gate(dir: &Path, extra: &[&str]) -> Run {
    run(fpgate()
        .current_dir(dir)
        .args([
            "gate",
            "--baseline",
            "base",
            "--candidate",
            "cand",
            "--corpus",
            "corpus",
        ])
        .args(["--format", "json", "--today", "2026-11-23"])
        .args(extra))
}

fn statuses(j: &Value) -> Vec<(u64, String)> {
    j["exceptions"]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["line"].as_u64().unwrap(),
                e["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn exception(rule: &str, target: &str, expires: &str, extra: &str) -> String {
    format!(
        "[[exception]]\nrule = \"{rule}\"\n{target}\nreason = \"accepted for the test\"\nowner = \"tester\"\nexpires = \"{expires}\"\n{extra}\n"
    )
}

#[test]
fn repository_config_makes_gate_need_no_arguments() {
    let r = run(fpgate().args(["gate"]));
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("rule Shh_Updater_B"));
    assert!(
        r.stdout
            .contains("corpus lock corpus.lock: 25 locked files verified"),
        "{}",
        r.stdout
    );
    // From a subdirectory the same file is found and its paths still resolve.
    let r = run(fpgate()
        .current_dir(root().join("rules"))
        .args(["gate", "--format", "json"]));
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_eq!(
        r.json()["rulesets"]["candidate"]["paths"][0],
        "../rules/candidate"
    );
    // Flags override the config: the released rules against themselves pass.
    let r = run(fpgate().args(["gate", "--candidate", "rules/released"]));
    assert_eq!(r.code, 0, "{}", r.stdout);
}

#[test]
fn config_errors_name_the_key_and_line() {
    let d = project(HIT, &[("a", b"x")]);
    write(
        &d.path().join("fpgate.toml"),
        b"[corpus]\npaths = [\"corpus\"]\n\n[scan]\nthreds = 2\n",
    );
    let r = d.run(&["gate", "--candidate", "cand"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("fpgate.toml:5:1"), "{}", r.stderr);
    assert!(r.stderr.contains("threds"), "{}", r.stderr);
    // --no-config ignores it (and then needs the corpus on the command line).
    let r = d.run(&["gate", "--candidate", "cand", "--no-config"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("no corpus given"), "{}", r.stderr);
}

#[test]
fn policy_demo_exercises_excepted_expired_stale_critical_and_new_together() {
    let dir = root().join("examples/policy-demo");
    let r =
        run(fpgate()
            .current_dir(&dir)
            .args(["gate", "--today", "2026-11-23", "--format", "json"]));
    assert_eq!(r.code, 1, "{}", r.stderr);
    let j = r.json();
    let new = &j["false_positives"]["new"];
    assert_eq!(new.as_array().unwrap().len(), 1);
    assert!(new[0]["paths"][0]
        .as_str()
        .unwrap()
        .ends_with("Squirrel.exe"));
    assert_eq!(new[0]["tier"], "critical");
    assert_eq!(new[0]["blocking"], true);
    assert_eq!(new[0]["rule_change"], "added");
    assert!(new[0]["notes"][0]
        .as_str()
        .unwrap()
        .contains("expired on 2026-10-31"));
    let exc = &j["false_positives"]["excepted"];
    assert!(exc[0]["paths"][0].as_str().unwrap().ends_with("Setup.exe"));
    assert_eq!(exc[0]["exception"]["line"], 2);
    assert_eq!(exc[0]["blocking"], false);
    assert_eq!(
        statuses(&j),
        vec![
            (2, "applied".into()),
            (11, "expired".into()),
            (20, "stale".into())
        ]
    );
    let c = &j["verdict"]["counts"];
    assert_eq!(
        (c["excepted"].as_u64(), c["exceptions_stale"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(c["by_tier"]["critical"]["new"], 1);
    assert_eq!(c["by_tier"]["critical"]["excepted"], 1);
    let reasons = j["verdict"]["reasons"].to_string();
    assert!(
        reasons.contains("stale exception(s) under --strict"),
        "{reasons}"
    );

    // The expired entry is the only blocker apart from strict: move the date back and it applies.
    let r =
        run(fpgate()
            .current_dir(&dir)
            .args(["gate", "--today", "2026-10-01", "--format", "json"]));
    assert_eq!(r.code, 1, "still blocked by the stale entry under strict");
    assert_eq!(r.json()["verdict"]["counts"]["new"], 0);
}

#[test]
fn strict_makes_stale_exceptions_fail() {
    let d = project(HIT, &[("a.bin", b"a needle"), ("b.bin", b"clean")]);
    let exc = exception(
        "Hit",
        &format!("sha256 = \"{}\"", sha(b"a needle")),
        "2027-01-01",
        "",
    ) + &exception(
        "Hit",
        &format!("sha256 = \"{}\"", sha(b"clean")),
        "2027-01-01",
        "",
    );
    write(&d.path().join("fpgate-exceptions.toml"), exc.as_bytes());
    let r = gate(d.path(), &[]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    let j = r.json();
    assert_eq!(
        statuses(&j),
        vec![(1, "applied".into()), (8, "stale".into())]
    );
    assert_eq!(
        j["false_positives"]["excepted"][0]["paths"],
        serde_json::json!(["corpus/a.bin"])
    );
    let r = gate(d.path(), &["--strict"]);
    assert_eq!(r.code, 1);
    assert_eq!(r.json()["verdict"]["counts"]["blocking"], 0);
}

#[test]
fn malformed_exceptions_file_is_exit_2_with_file_and_line() {
    let d = project(HIT, &[("a.bin", b"a needle")]);
    let exc = exception(
        "Hit",
        &format!("sha256 = \"{}\"", sha(b"a needle")),
        "2027-13-01",
        "",
    );
    write(&d.path().join("exc.toml"), exc.as_bytes());
    let r = gate(d.path(), &["--exceptions", "exc.toml"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("exc.toml:6:"), "{}", r.stderr);
    assert!(r.stderr.contains("expires"), "{}", r.stderr);
    // Named explicitly but missing: an error, not "no exceptions".
    let r = gate(d.path(), &["--exceptions", "missing.toml"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("missing.toml"), "{}", r.stderr);
}

#[test]
fn stubs_from_a_report_are_refused_until_a_human_fills_them_in() {
    let d = project(HIT, &[("a.bin", b"a needle")]);
    let r = gate(d.path(), &["--output", "report.json"]);
    assert_eq!(r.code, 1);
    let r = d.run(&[
        "exceptions",
        "add",
        "--from",
        "report.json",
        "--today",
        "2026-11-23",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let text = std::fs::read_to_string(d.path().join("fpgate-exceptions.toml")).unwrap();
    assert!(text.contains("reason = \"TODO\""), "{text}");
    assert!(text.contains("expires = \"2027-02-21\""), "{text}");
    assert!(text.contains(&sha(b"a needle")), "{text}");
    assert!(text.contains("rule_fingerprint = "), "{text}");

    let r = gate(d.path(), &[]);
    assert_eq!(r.code, 1, "a TODO stub must not apply");
    assert_eq!(statuses(&r.json()), vec![(3, "unapproved".into())]);

    // Adding again does not duplicate the entry.
    d.run(&["exceptions", "add", "--from", "report.json"]);
    let again = std::fs::read_to_string(d.path().join("fpgate-exceptions.toml")).unwrap();
    assert_eq!(again, text);

    let filled = text
        .replace("reason = \"TODO\"", "reason = \"test fixture\"")
        .replace("owner = \"TODO\"", "owner = \"qa\"");
    write(&d.path().join("fpgate-exceptions.toml"), filled.as_bytes());
    let r = gate(d.path(), &[]);
    assert_eq!(r.code, 0, "{}", r.stdout);

    // The rule changes: the fingerprint no longer matches, the exception lapses.
    write(
        &d.path().join("cand/r.yar"),
        b"rule Hit { strings: $h = \"needle\" condition: $h and filesize < 100 }\n",
    );
    let r = gate(d.path(), &[]);
    assert_eq!(r.code, 1);
    let j = r.json();
    assert_eq!(statuses(&j), vec![(3, "lapsed".into())]);
    assert_eq!(j["false_positives"]["new"][0]["rule_change"], "added");
}

#[test]
fn critical_files_block_even_when_persisting_and_need_critical_exceptions() {
    let d = project(
        HIT,
        &[
            ("os/kernel32.dll", b"MZ needle"),
            ("app/x.bin", b"needle too"),
        ],
    );
    write(&d.path().join("base/r.yar"), HIT);
    // Both files were already hit by the released rule: persisting.
    let r = gate(d.path(), &[]);
    assert_eq!(
        r.code, 0,
        "persisting on standard files does not block: {}",
        r.stdout
    );
    let r = gate(d.path(), &["--critical", "os/**"]);
    assert_eq!(r.code, 1);
    let j = r.json();
    let p = &j["false_positives"]["persisting"];
    assert_eq!(p[0]["tier"], "critical", "critical shown first");
    assert_eq!(p[0]["blocking"], true);
    assert_eq!(p[1]["blocking"], false);
    assert_eq!(j["corpus"]["critical_files"], 1);

    // An exception without critical = true does not cover a critical file.
    let target = format!("sha256 = \"{}\"", sha(b"MZ needle"));
    write(
        &d.path().join("fpgate-exceptions.toml"),
        exception("Hit", &target, "2027-01-01", "").as_bytes(),
    );
    let r = gate(d.path(), &["--critical", "os/**"]);
    assert_eq!(r.code, 1);
    assert_eq!(statuses(&r.json()), vec![(1, "refused_critical".into())]);
    write(
        &d.path().join("fpgate-exceptions.toml"),
        exception("Hit", &target, "2027-01-01", "critical = true").as_bytes(),
    );
    let r = gate(d.path(), &["--critical", "os/**"]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    let r = d.run(&[
        "gate",
        "--baseline",
        "base",
        "--candidate",
        "cand",
        "--corpus",
        "corpus",
        "--critical",
        "os/**",
        "--today",
        "2026-11-23",
    ]);
    assert!(
        r.stdout.contains("[critical]"),
        "critical entries are listed on every run:\n{}",
        r.stdout
    );
}

#[test]
fn path_glob_exceptions_cover_only_matching_paths() {
    let d = project(
        HIT,
        &[("vendor/a.bin", b"needle"), ("own/a.bin", b"needle")],
    );
    write(
        &d.path().join("fpgate-exceptions.toml"),
        exception("Hit", "path = \"corpus/vendor/**\"", "2027-01-01", "").as_bytes(),
    );
    let r = gate(d.path(), &[]);
    assert_eq!(r.code, 1);
    let j = r.json();
    assert_eq!(
        pairs(&j, "new"),
        vec![("Hit".into(), "corpus/own/a.bin".into())]
    );
    assert_eq!(
        pairs(&j, "excepted"),
        vec![("Hit".into(), "corpus/vendor/a.bin".into())]
    );
}

#[test]
fn corpus_lock_catches_missing_changed_and_new_files() {
    let d = project(
        b"rule Quiet2 { condition: false }\n",
        &[("a.bin", b"one"), ("b.bin", b"two")],
    );
    let p = d.path();
    let r = run(fpgate().current_dir(p).args([
        "corpus",
        "index",
        "--corpus",
        "corpus",
        "--output",
        "corpus.lock",
    ]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lock: Value =
        serde_json::from_slice(&std::fs::read(p.join("corpus.lock")).unwrap()).unwrap();
    assert_eq!(lock["files"].as_array().unwrap().len(), 2);
    assert_eq!(lock["files"][0]["path"], "a.bin");
    assert_eq!(lock["files"][0]["format"], "other");
    let hash = lock["corpus_hash"].as_str().unwrap().to_string();

    let r = gate(p, &["--lock", "corpus.lock"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let j = r.json();
    assert_eq!(
        j["corpus"]["hash"],
        hash.as_str(),
        "the report records the same corpus hash"
    );
    assert_eq!(j["corpus"]["lock"]["verified"], 2);

    write(&p.join("corpus/c.bin"), b"three");
    let r = gate(p, &["--lock", "corpus.lock"]);
    assert_eq!(r.code, 0);
    assert_eq!(
        r.json()["corpus"]["lock"]["new_files"],
        serde_json::json!(["c.bin"])
    );

    write(&p.join("corpus/a.bin"), b"ONE");
    let r = gate(p, &["--lock", "corpus.lock"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("changed: a.bin"), "{}", r.stderr);

    std::fs::remove_file(p.join("corpus/a.bin")).unwrap();
    let r = gate(p, &["--lock", "corpus.lock"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("missing: a.bin"), "{}", r.stderr);
    assert_eq!(r.json()["verdict"]["result"], "error");

    // A lock edited by hand is refused.
    let text = std::fs::read_to_string(p.join("corpus.lock")).unwrap();
    write(
        &p.join("corpus.lock"),
        text.replace("\"size\": 3", "\"size\": 4").as_bytes(),
    );
    let r = gate(p, &["--lock", "corpus.lock"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("edited or corrupted"), "{}", r.stderr);
}

#[test]
fn index_fails_closed_on_unindexable_entries() {
    let d = project(HIT, &[("a.bin", b"x")]);
    std::process::Command::new("mkfifo")
        .arg(d.path().join("corpus/fifo"))
        .status()
        .unwrap();
    let r = d.run(&["corpus", "index", "--corpus", "corpus", "-o", "l.json"]);
    assert_eq!(r.code, 3);
    assert!(!d.path().join("l.json").exists());
    assert!(
        r.stderr.contains("corpus/fifo (not_regular"),
        "{}",
        r.stderr
    );
}

#[test]
fn rule_changes_are_listed_even_when_clean() {
    let d = project(b"", &[("a.bin", b"nothing here")]);
    write(
        &d.path().join("base/r.yar"),
        b"rule Same { condition: false }\nrule Changed { strings: $a = \"x1\" condition: $a }\nrule Gone { condition: false }\n",
    );
    write(
        &d.path().join("cand/r.yar"),
        b"// a comment does not change a rule\nrule Same {\n  condition: false\n}\nrule Changed { strings: $a = \"x2\" condition: $a }\nrule Fresh { condition: false }\n",
    );
    let r = gate(d.path(), &[]);
    assert_eq!(r.code, 0);
    let ch = &r.json()["rule_changes"];
    let names = |k: &str| -> Vec<String> {
        ch[k]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["identifier"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(names("added"), vec!["Fresh"]);
    assert_eq!(names("modified"), vec!["Changed"]);
    assert_eq!(names("removed"), vec!["Gone"]);
    assert_eq!(ch["unchanged"], 1);
    assert_eq!(ch["modified"][0]["line"], 5);
}

#[test]
fn deny_warnings_blocks_only_new_or_modified_rules() {
    let slow = b"rule OldSlow { strings: $a = /[a-z]+/ condition: $a }\n";
    let d = project(b"", &[("a.bin", b"nothing")]);
    write(&d.path().join("base/r.yar"), slow);
    let mut cand = slow.to_vec();
    cand.extend_from_slice(b"rule NewSlow { strings: $a = /[0-9]+/ condition: $a }\n");
    write(&d.path().join("cand/r.yar"), &cand);
    let r = gate(d.path(), &[]);
    assert_eq!(r.code, 0, "warnings alone do not block: {}", r.stderr);
    assert!(r.stderr.contains("warning["), "warnings shown on stderr");
    let r = gate(d.path(), &["--deny-warnings"]);
    assert_eq!(r.code, 1);
    let j = r.json();
    let bw = j["blocking_warnings"].as_array().unwrap();
    assert_eq!(bw.len(), 1, "{bw:?}");
    assert_eq!(bw[0]["rule"], "NewSlow");
    assert_eq!(bw[0]["line"], 2);
    let code = bw[0]["code"].as_str().unwrap().to_string();
    // The same, by warning code.
    let r = gate(d.path(), &["--deny-warning", &code]);
    assert_eq!(r.code, 1);
    let r = gate(d.path(), &["--deny-warning", "some_other_code"]);
    assert_eq!(r.code, 0);
}

#[test]
fn baseline_from_a_git_revision() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    let git = |args: &[&str]| {
        let st = std::process::Command::new("git")
            .current_dir(p)
            .args(["-c", "user.name=t", "-c", "user.email=t@example.org"])
            .args(args)
            .output()
            .unwrap();
        assert!(
            st.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&st.stderr)
        );
    };
    git(&["init", "-q", "-b", "main"]);
    write(
        &p.join("rules/base.yar"),
        b"rule Released { strings: $r = \"released\" condition: $r }\n",
    );
    write(&p.join("corpus/a.bin"), b"a released updater");
    git(&["add", "."]);
    git(&["commit", "-q", "-m", "v1"]);
    // The pull request adds an overbroad rule.
    write(
        &p.join("rules/new.yar"),
        b"rule Overbroad { strings: $u = \"updater\" condition: $u }\n",
    );
    let r = run(fpgate().current_dir(p).args([
        "gate",
        "--candidate",
        "rules",
        "--baseline-ref",
        "main",
        "--corpus",
        "corpus",
        "--format",
        "json",
    ]));
    assert_eq!(r.code, 1, "{}", r.stderr);
    let j = r.json();
    assert_eq!(
        pairs(&j, "new"),
        vec![("Overbroad".into(), "corpus/a.bin".into())]
    );
    assert_eq!(
        pairs(&j, "persisting"),
        vec![("Released".into(), "corpus/a.bin".into())]
    );
    assert_eq!(
        j["rulesets"]["baseline"]["paths"],
        serde_json::json!(["main:rules"])
    );
    assert_eq!(
        j["rulesets"]["baseline"]["files"],
        serde_json::json!(["main:rules/base.yar"])
    );
    assert_eq!(j["false_positives"]["new"][0]["rule_change"], "added");

    let r = run(fpgate().current_dir(p).args([
        "gate",
        "--candidate",
        "rules",
        "--baseline-ref",
        "no-such-ref",
        "--corpus",
        "corpus",
    ]));
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("no such revision"), "{}", r.stderr);
}

/// Fingerprints written by fpgate 0.1 (bare 64 hex digits, from its
/// lexer) are recognised: the exception lapses with a note giving the
/// rule's current fingerprint; a current (v2) fingerprint still applies.
#[test]
fn exceptions_with_a_scheme_1_fingerprint_lapse_with_a_note() {
    let d = project(HIT, &[("a.bin", b"a needle")]);
    let target = format!("sha256 = \"{}\"", sha(b"a needle"));
    let old = format!("rule_fingerprint = \"{}\"", "ab".repeat(32));
    write(
        &d.path().join("fpgate-exceptions.toml"),
        exception("Hit", &target, "2027-01-01", &old).as_bytes(),
    );
    let r = gate(d.path(), &[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let j = r.json();
    assert_eq!(statuses(&j), vec![(1, "lapsed".into())]);
    let detail = j["exceptions"]["entries"][0]["detail"].as_str().unwrap();
    assert!(detail.contains("fpgate 0.1"), "{detail}");
    let current = j["false_positives"]["new"][0]["rule"]["fingerprint"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(current.starts_with("v2:"), "{current}");
    assert!(detail.contains(&current), "{detail}");
    // Re-approved with the current fingerprint: applied.
    write(
        &d.path().join("fpgate-exceptions.toml"),
        exception(
            "Hit",
            &target,
            "2027-01-01",
            &format!("rule_fingerprint = \"{current}\""),
        )
        .as_bytes(),
    );
    let r = gate(d.path(), &[]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert_eq!(statuses(&r.json()), vec![(1, "applied".into())]);
}
