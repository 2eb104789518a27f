//! End-to-end tests of the release gate on the shipped example (the
//! Shh/Updater-B replay) and on small rule sets built per test.

use crate::common::*;
use std::collections::BTreeSet;

#[test]
fn demo_blocks_the_overbroad_updater_rule_with_evidence() {
    let r = run(fpgate().args([
        "gate",
        "--baseline",
        "rules/released",
        "--candidate",
        "rules/candidate",
        "--corpus",
        "corpus",
    ]));
    assert_eq!(r.code, 1, "stdout:\n{}\nstderr:\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("NEW false positives"));
    assert!(r
        .stdout
        .contains("rule Shh_Updater_B  rules/candidate/updaters.yar:"));
    assert!(r
        .stdout
        .contains("corpus/npm/electron-winstaller-5.4.4/Squirrel.exe"));
    assert!(
        r.stdout.contains("|Update.exe|"),
        "evidence shows the matched text"
    );
    let last = r.stdout.lines().last().unwrap();
    assert!(
        last.starts_with("BLOCKED: 2 new false positive(s) (1 rule(s), 2 file(s))"),
        "{last}"
    );
    // Not a terminal: no colour codes, no progress bar.
    assert!(!r.stdout.contains('\x1b'));
    assert!(!r.stderr.contains("scanning ["));
}

#[test]
fn demo_json_report_carries_rules_evidence_and_verdict() {
    let r = run(fpgate().args([
        "gate",
        "--baseline",
        "rules/released",
        "--candidate",
        "rules/candidate",
        "--corpus",
        "corpus",
        "--format",
        "json",
    ]));
    assert_eq!(r.code, 1, "{}", r.stderr);
    let j = r.json();
    assert_eq!(j["schema_version"], 1);
    assert_eq!(j["tool"]["yara_x_version"], yara_x::VERSION);
    assert_eq!(j["verdict"]["result"], "blocked");
    assert_eq!(j["verdict"]["exit_code"], 1);
    assert_eq!(j["corpus"]["unscanned_files"], 0);
    assert_eq!(
        pairs(&j, "new"),
        vec![
            (
                "Shh_Updater_B".into(),
                "corpus/npm/electron-winstaller-5.4.4/Setup.exe".into()
            ),
            (
                "Shh_Updater_B".into(),
                "corpus/npm/electron-winstaller-5.4.4/Squirrel.exe".into()
            ),
        ]
    );
    assert!(pairs(&j, "persisting").is_empty());
    assert!(pairs(&j, "fixed").is_empty());
    for label in ["candidate", "baseline"] {
        let fp = j["rulesets"][label]["fingerprint"].as_str().unwrap();
        assert_eq!(fp.len(), 64);
    }
    assert_ne!(
        j["rulesets"]["candidate"]["fingerprint"],
        j["rulesets"]["baseline"]["fingerprint"]
    );

    // The evidence is true: the bytes at each reported offset are the bytes shown.
    let f = &j["false_positives"]["new"][1];
    assert_eq!(f["rule"]["source"], "rules/candidate/updaters.yar");
    assert_eq!(f["rule"]["line"], 11);
    assert_eq!(
        f["rule"]["tags"],
        serde_json::json!(["updater", "heuristic"])
    );
    assert!(f["rule"]["description"]
        .as_str()
        .unwrap()
        .contains("updater"));
    let path = f["paths"][0].as_str().unwrap();
    let data = std::fs::read(root().join(path)).unwrap();
    assert_eq!(f["size"].as_u64().unwrap() as usize, data.len());
    let sha = f["sha256"].as_str().unwrap();
    assert_eq!(
        sha,
        fpgate::util::hex::hex(&<sha2::Sha256 as sha2::Digest>::digest(&data))
    );
    let mut checked = 0;
    for p in f["patterns"].as_array().unwrap() {
        assert!(
            p["match_count"].as_u64().unwrap() >= p["matches"].as_array().unwrap().len() as u64
        );
        for m in p["matches"].as_array().unwrap() {
            let off = m["offset"].as_u64().unwrap() as usize;
            let len = m["length"].as_u64().unwrap() as usize;
            let shown = &data[off..off + len.min(32)];
            assert_eq!(
                m["hex"].as_str().unwrap(),
                fpgate::util::hex::spaced_hex(shown)
            );
            checked += 1;
        }
    }
    assert!(checked > 0);
}

#[test]
fn released_rules_are_clean_on_the_corpus() {
    let r = run(fpgate().args(["scan", "--rules", "rules/released", "--corpus", "corpus"]));
    assert_eq!(r.code, 0, "stdout:\n{}\nstderr:\n{}", r.stdout, r.stderr);
    assert!(r.stdout.starts_with("PASS: 0 match(es)"), "{}", r.stdout);
    assert!(r.stderr.is_empty(), "no warnings expected: {}", r.stderr);
}

#[test]
fn scan_reports_every_match_and_exits_1() {
    let r = run(fpgate().args([
        "scan",
        "--rules",
        "rules/candidate",
        "--corpus",
        "corpus",
        "--format",
        "json",
    ]));
    assert_eq!(r.code, 1);
    let j = r.json();
    assert_eq!(j["command"], "scan");
    assert_eq!(pairs(&j, "new").len(), 2);
    // stderr carries the verdict line for a person; stdout only the report.
    assert!(r.stderr.contains("BLOCKED: 2 match(es)"), "{}", r.stderr);
}

#[test]
fn identical_baseline_and_candidate_pass() {
    let r = run(fpgate().args([
        "gate",
        "--baseline",
        "rules/released",
        "--candidate",
        "rules/released",
        "--corpus",
        "corpus",
    ]));
    assert_eq!(r.code, 0, "{}", r.stdout);
}

#[test]
fn new_persisting_and_fixed_are_told_apart() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    write(&p.join("corpus/a.bin"), b"alpha common");
    write(&p.join("corpus/b.bin"), b"beta common");
    write(&p.join("corpus/c.bin"), b"gamma");
    write(
        &p.join("base/r.yar"),
        b"rule Common { strings: $c = \"common\" condition: $c }\n\
          rule Gamma { strings: $g = \"gamma\" condition: $g }\n",
    );
    write(
        &p.join("cand/r.yar"),
        b"rule Common { strings: $c = \"common\" condition: $c }\n\
          rule Alpha { strings: $a = \"alpha\" condition: $a }\n",
    );
    let r = run(fpgate().current_dir(p).args([
        "gate",
        "--baseline",
        "base",
        "--candidate",
        "cand",
        "--corpus",
        "corpus",
        "--format",
        "json",
    ]));
    assert_eq!(r.code, 1, "{}", r.stderr);
    let j = r.json();
    assert_eq!(
        pairs(&j, "new"),
        vec![("Alpha".into(), "corpus/a.bin".into())]
    );
    assert_eq!(
        pairs(&j, "persisting"),
        vec![
            ("Common".into(), "corpus/a.bin".into()),
            ("Common".into(), "corpus/b.bin".into())
        ]
    );
    assert_eq!(
        pairs(&j, "fixed"),
        vec![("Gamma".into(), "corpus/c.bin".into())]
    );
    assert_eq!(
        j["false_positives"]["fixed"][0]["patterns"][0]["identifier"],
        "$g"
    );

    // Without the new rule the same update passes: persisting and fixed do not block.
    write(
        &p.join("cand/r.yar"),
        b"rule Common { strings: $c = \"common\" condition: $c }\n",
    );
    let r = run(fpgate().current_dir(p).args([
        "gate",
        "--baseline",
        "base",
        "--candidate",
        "cand",
        "--corpus",
        "corpus",
    ]));
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert!(r.stdout.contains("PERSISTING false positives (2)"));
    assert!(r.stdout.contains("FIXED false positives (1)"));
}

#[test]
fn identical_files_are_scanned_once_and_reported_together() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    for name in ["x/one.exe", "y/two.dll", "z/three"] {
        write(&p.join("corpus").join(name), b"MZ same bytes updater");
    }
    write(&p.join("corpus/other"), b"different");
    write(
        &p.join("r.yar"),
        b"rule U { strings: $u = \"updater\" condition: $u }\n",
    );
    let r = run(fpgate().current_dir(p).args([
        "scan", "--rules", "r.yar", "--corpus", "corpus", "--format", "json",
    ]));
    assert_eq!(r.code, 1);
    let j = r.json();
    let new = j["false_positives"]["new"].as_array().unwrap();
    assert_eq!(new.len(), 1, "one finding for one content");
    assert_eq!(
        new[0]["paths"],
        serde_json::json!(["corpus/x/one.exe", "corpus/y/two.dll", "corpus/z/three"])
    );
    assert_eq!(j["corpus"]["files"], 4);
    assert_eq!(j["corpus"]["unique_contents"], 2);
}

#[test]
fn report_is_deterministic_apart_from_timings() {
    let args = [
        "gate",
        "--baseline",
        "rules/released",
        "--candidate",
        "rules/candidate",
        "--corpus",
        "corpus",
        "--format",
        "json",
    ];
    let mut a = run(fpgate().args(args)).json();
    let mut b = run(fpgate().args(args).args(["--threads", "1"])).json();
    for j in [&mut a, &mut b] {
        j.as_object_mut().unwrap().remove("timings");
    }
    assert_eq!(a, b);
}

#[test]
fn output_file_gets_the_report_and_stdout_stays_empty() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("report.json");
    let r = run(fpgate()
        .args([
            "gate",
            "--no-config",
            "--candidate",
            "rules/candidate",
            "--corpus",
            "corpus",
            "--format",
            "json",
            "--output",
        ])
        .arg(&out));
    assert_eq!(r.code, 1);
    assert!(r.stdout.is_empty());
    let j: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    // Without a baseline every match is new.
    assert_eq!(j["verdict"]["counts"]["new"], 2);
    assert!(j["rulesets"].get("baseline").is_none());
}

#[test]
fn colour_only_when_asked_and_no_color_respected() {
    let base = ["scan", "--rules", "rules/candidate", "--corpus", "corpus"];
    let r = run(fpgate().args(base).args(["--color", "always"]));
    assert!(r.stdout.contains("\x1b[1;31mBLOCKED"));
    // auto + not a terminal: plain, whatever NO_COLOR says.
    let r = run(fpgate().args(base).env("NO_COLOR", "1"));
    assert!(!r.stdout.contains('\x1b'));
    let r = run(fpgate().args(base).args(["--color", "never"]));
    assert!(!r.stdout.contains('\x1b'));
}

#[test]
fn threads_do_not_change_the_match_set() {
    let mut sets = BTreeSet::new();
    for t in ["1", "2", "4"] {
        let r = run(fpgate().args([
            "scan",
            "--rules",
            "rules/candidate",
            "--corpus",
            "corpus",
            "--format",
            "json",
            "--threads",
            t,
        ]));
        sets.insert(pairs(&r.json(), "new"));
    }
    assert_eq!(sets.len(), 1);
}
