//! `gate --perf`, the performance-regression gate. The slow rule below costs
//! a loop over every byte of every file, several times the whole released
//! ruleset, so the verdict does not hinge on machine noise; exact timings
//! are never asserted.

use crate::common::*;

fn gate(cand: &std::path::Path, extra: &[&str]) -> Run {
    run(fpgate()
        .args([
            "gate",
            "--no-config",
            "--baseline",
            "rules/released",
            "--candidate",
        ])
        .arg(cand)
        .args([
            "--corpus",
            "corpus",
            "--exclude",
            "MANIFEST",
            "--format",
            "json",
            "-q",
        ])
        .args(extra))
}

#[test]
fn a_much_slower_candidate_is_blocked_and_its_new_rules_named() {
    let d = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(root().join("rules/released")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), d.path().join(e.file_name())).unwrap();
    }
    write(
        &d.path().join("slow.yar"),
        b"rule SlowLoop { condition: for any i in (0..filesize - 4) : ( uint32(i) == 0x41424344 and uint16(i + 4) == 0x4546 ) }\n",
    );
    let r = gate(
        d.path(),
        &["--perf", "--perf-ratio", "2", "--perf-runs", "3"],
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    let j = r.json();
    let p = &j["performance"];
    assert_eq!(p["blocked"], true, "{p}");
    assert_eq!(p["changed_rules"], serde_json::json!(["SlowLoop"]));
    assert_eq!(p["runs"], 3);
    assert_eq!(p["baseline_seconds"].as_array().unwrap().len(), 3);
    assert_eq!(
        p["sample_files"], 24,
        "distinct contents of the bundled corpus (Setup.exe's member Update.exe one of them)"
    );
    assert!(j["verdict"]["reasons"][0]
        .as_str()
        .unwrap()
        .contains("slower than the baseline"));
    assert_eq!(j["verdict"]["counts"]["new"], 0, "blocked by speed alone");
    assert_eq!(p["attributed"], fpgate::engine::PROFILING);
    if fpgate::engine::PROFILING {
        assert_eq!(p["attribution"][0]["rule"], "SlowLoop", "{p}");
        assert!(j["verdict"]["reasons"][0]
            .as_str()
            .unwrap()
            .contains("slower rules: SlowLoop"));
    }

    // The same candidate passes the false-positive gate without --perf.
    let r = gate(d.path(), &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.json().get("performance").is_none());
}

#[test]
fn perf_needs_a_baseline_and_a_sane_ratio() {
    let r = run(fpgate().args([
        "gate",
        "--no-config",
        "--candidate",
        "rules/released",
        "--corpus",
        "corpus",
        "--perf",
    ]));
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("--perf compares with a baseline"),
        "{}",
        r.stderr
    );
    let r = run(fpgate().args([
        "gate",
        "--no-config",
        "--baseline",
        "rules/released",
        "--candidate",
        "rules/released",
        "--corpus",
        "corpus",
        "--perf",
        "--perf-ratio",
        "0.5",
    ]));
    assert_eq!(r.code, 2);
}

#[test]
fn profile_lists_the_slowest_rules_or_says_how_to_get_them() {
    // yara-x only reports rules that took over 100 ms in one scanner, so
    // the slow rule loops over every byte four times, on one thread.
    let d = tempfile::tempdir().unwrap();
    write(
        &d.path().join("r.yar"),
        b"rule SlowLoop { condition:\n\
            for any i in (0..filesize - 4) : ( uint32(i) == 0x7B5A3C1E and uint16(i) == 0x3C1E ) or\n\
            for any j in (0..filesize - 4) : ( uint32be(j) == 0x9A3C5E71 ) or\n\
            for any k in (0..filesize - 4) : ( uint32(k) == 0x6E5D4C3B and uint16(k) == 0x4C3B ) or\n\
            for any m in (0..filesize - 4) : ( uint32be(m) == 0x1F2E3D4C ) }\n\
          rule Cheap { strings: $a = \"zzzz-not-there\" condition: $a }\n",
    );
    let scan = |extra: &[&str]| {
        run(fpgate()
            .current_dir(d.path())
            .args([
                "scan",
                "--no-config",
                "--rules",
                "r.yar",
                "-j",
                "1",
                "--profile",
                "--corpus",
            ])
            .arg(root().join("corpus"))
            .args(extra))
    };
    let r = scan(&["--format", "json", "-q"]);
    if fpgate::engine::PROFILING {
        assert_eq!(r.code, 0, "{}", r.stderr);
        let j = r.json();
        let prof = j["profile"].as_array().expect("profile in the report");
        assert_eq!(prof[0]["rule"], "SlowLoop", "{prof:?}");
        assert!(prof[0]["condition_seconds"].as_f64().unwrap() > 0.1);
        assert!(scan(&[]).stdout.contains("SLOWEST RULES"));
    } else {
        assert_eq!(r.code, 2);
        assert!(r.stderr.contains("--features profiling"), "{}", r.stderr);
    }
}
