//! Detection regression (`gate --positives`): a candidate that narrows a
//! released rule until it no longer detects a known-bad sample is blocked,
//! and the report says which sample and which patterns. The samples are
//! harmless and generated here (the EICAR test file, built from two halves
//! so no file of the repository holds it whole, and a file carrying the
//! example rules' strings).

use crate::common::*;
use serde_json::Value;

const NARROWED: &str = "(all of ($m*) and all of ($b*))";
const RELEASED: &str = "(2 of ($m*) or (1 of ($m*) and 1 of ($b*)) or all of ($b*))";

fn eicar() -> Vec<u8> {
    let halves = [
        "X5O!P%@AP[4\\PZX54(P^)7CC)7}$",
        "EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*",
    ];
    halves.concat().into_bytes()
}

fn mimikatz_like() -> Vec<u8> {
    let mut b = b"MZ\x90\x00".to_vec();
    b.extend([0u8; 60]);
    b.extend_from_slice(b"sekurlsa::logonpasswords lsadump::sam by gentilkiwi");
    b
}

/// The repository's released rules as baseline, a copy as candidate, the
/// repository's clean corpus, two samples.
fn project() -> Project {
    let p = Project::new();
    copy_dir(&root().join("rules/released"), &p.join("released"));
    copy_dir(&root().join("rules/released"), &p.join("candidate"));
    p.file_ref("positives/eicar.com", eicar());
    p.file_ref("positives/tools/mimi.exe", mimikatz_like());
    p
}

fn narrow(p: &Project) {
    let f = p.join("candidate/hacktools.yar");
    let text = std::fs::read_to_string(&f).unwrap();
    assert!(text.contains(RELEASED));
    std::fs::write(&f, text.replace(RELEASED, NARROWED)).unwrap();
}

fn gate(p: &Project, extra: &[&str]) -> Run {
    let corpus = root().join("corpus");
    let mut args = vec![
        "gate",
        "--no-config",
        "--candidate",
        "candidate",
        "--baseline",
        "released",
        "--corpus",
        corpus.to_str().unwrap(),
        "--positives",
        "positives",
        "--format",
        "json",
    ];
    args.extend(extra);
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    run(p.cmd(&[]).args(&args))
}

fn listed(d: &Value, list: &str) -> Vec<(String, String)> {
    d[list]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|f| {
            f["paths"].as_array().unwrap().iter().map(move |p| {
                (
                    f["rule"]["identifier"].as_str().unwrap().to_string(),
                    p.as_str().unwrap().to_string(),
                )
            })
        })
        .collect()
}

#[test]
fn a_narrowed_rule_that_loses_a_sample_is_blocked_with_the_patterns_it_lost() {
    let p = project();
    // Unchanged candidate: every detection kept, the gate passes.
    let r = gate(&p, &["--no-cache"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let d = &r.json()["detections"];
    assert_eq!(d["counts"]["lost"], 0);
    assert_eq!(
        listed(d, "kept"),
        [
            (
                "HackTool_Mimikatz_Strings".into(),
                "positives/tools/mimi.exe".into()
            ),
            ("Test_EICAR_File".into(), "positives/eicar.com".into()),
        ]
    );
    // Samples are not clean files: no false positive, not in the corpus.
    assert_eq!(r.json()["verdict"]["counts"]["persisting"], 0);

    narrow(&p);
    for cache in [
        vec!["--no-cache"],
        vec!["--cache", "cache"],
        vec!["--cache", "cache"],
    ] {
        let r = gate(&p, &cache);
        assert_eq!(r.code, 1, "{cache:?}: {}", r.stderr);
        let j = r.json();
        let d = &j["detections"];
        assert_eq!(
            listed(d, "lost"),
            [(
                "HackTool_Mimikatz_Strings".into(),
                "positives/tools/mimi.exe".into()
            )],
            "{cache:?}"
        );
        let lost = &d["lost"][0];
        assert_eq!(lost["class"], "lost");
        assert_eq!(lost["blocking"], true);
        let patterns: Vec<&str> = lost["patterns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["identifier"].as_str().unwrap())
            .collect();
        assert_eq!(
            patterns,
            ["$m1", "$m2", "$b1"],
            "what matched in the baseline"
        );
        assert!(j["verdict"]["reasons"][0]
            .as_str()
            .unwrap()
            .contains("1 detection(s) of known-bad samples lost"));
    }
    // The human report says it too.
    let human = run(p.cmd(&[]).args([
        "gate",
        "--no-config",
        "--no-cache",
        "--candidate",
        "candidate",
        "--baseline",
        "released",
        "--corpus",
        root().join("corpus").to_str().unwrap(),
        "--positives",
        "positives",
    ]));
    assert_eq!(human.code, 1);
    assert!(
        human.stdout.contains("LOST detections (1)"),
        "{}",
        human.stdout
    );
    assert!(
        human.stdout.contains("|sekurlsa::logonpasswords|"),
        "{}",
        human.stdout
    );
}

#[test]
fn a_renamed_rule_keeps_its_samples_and_an_exception_accepts_a_loss() {
    let p = project();
    let f = p.join("candidate/hacktools.yar");
    let text = std::fs::read_to_string(&f).unwrap();
    std::fs::write(
        &f,
        text.replace(
            "rule HackTool_Mimikatz_Strings",
            "rule HackTool_Mimikatz_Renamed",
        ),
    )
    .unwrap();
    let r = gate(&p, &["--no-cache"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let d = &r.json()["detections"];
    assert_eq!(d["counts"]["lost"], 0, "{d}");
    let kept = d["kept"].as_array().unwrap();
    let renamed = kept
        .iter()
        .find(|f| f["rule"]["identifier"] == "HackTool_Mimikatz_Renamed")
        .expect("the renamed rule keeps the sample");
    assert!(renamed["notes"][0]
        .as_str()
        .unwrap()
        .contains("renamed from HackTool_Mimikatz_Strings"));

    // A real loss, accepted by a lost_detection exception (and a
    // false-positive exception for the same rule does not cover it).
    std::fs::write(&f, text.replace(RELEASED, NARROWED)).unwrap();
    let sha = sha256_hex(&mimikatz_like());
    p.file_ref(
        "ex.toml",
        format!(
            "[[exception]]\nrule = \"HackTool_Mimikatz_Strings\"\nsha256 = \"{sha}\"\nreason = \"fp kind does not cover losses\"\nowner = \"t\"\nexpires = \"2099-01-01\"\n"
        ),
    );
    let r = gate(&p, &["--no-cache", "--exceptions", "ex.toml"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    p.file_ref(
        "ex.toml",
        format!(
            "[[exception]]\nrule = \"HackTool_Mimikatz_Strings\"\nsha256 = \"{sha}\"\nkind = \"lost_detection\"\nreason = \"the sample is obsolete\"\nowner = \"t\"\nexpires = \"2099-01-01\"\n"
        ),
    );
    let r = gate(&p, &["--no-cache", "--exceptions", "ex.toml"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let j = r.json();
    assert_eq!(j["detections"]["counts"]["excepted"], 1);
    assert_eq!(j["exceptions"]["entries"][0]["kind"], "lost_detection");
    assert_eq!(j["exceptions"]["entries"][0]["status"], "applied");
    // A bad kind is an error naming the file and line.
    p.file_ref(
        "ex.toml",
        "[[exception]]\nrule = \"R\"\npath = \"*\"\nkind = \"lost\"\nreason = \"r\"\nowner = \"t\"\nexpires = \"2099-01-01\"\n",
    );
    let r = gate(&p, &["--no-cache", "--exceptions", "ex.toml"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("ex.toml:4") && r.stderr.contains("lost_detection"),
        "{}",
        r.stderr
    );
}

fn sha256_hex(b: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

#[test]
fn samples_named_in_meta_and_untested_rules() {
    let p = project();
    let md5 = {
        use md5::Digest;
        md5::Md5::digest(mimikatz_like())
            .iter()
            .map(|x| format!("{x:02x}"))
            .collect::<String>()
    };
    let missing = "a".repeat(64);
    p.file_ref(
        "candidate/new.yar",
        format!(
            "rule New_Tool {{\n  meta:\n    hash = \"{md5}\"\n    sha256 = \"{missing}\"\n  strings:\n    $a = \"lsadump::sam\" fullword\n  condition:\n    $a and filesize > 1MB\n}}\n\
             rule New_Untested {{ strings: $a = \"nothing like this\" condition: $a }}\n\
             private rule Helper {{ condition: false }}\n"
        ),
    );
    let r = gate(&p, &["--no-cache"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let d = &r.json()["detections"];
    let expected: Vec<(String, String, bool)> = d["expected_samples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["hash"].as_str().unwrap().to_string(),
                x["status"].as_str().unwrap().to_string(),
                x["blocking"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        expected,
        // Sorted by rule, then hash.
        [
            (missing, "untestable".into(), false),
            (md5.clone(), "missed".into(), true)
        ]
    );
    let untested: Vec<(&str, bool)> = d["untested_rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["identifier"].as_str().unwrap(),
                u["blocking"].as_bool().unwrap(),
            )
        })
        .collect();
    assert!(untested.contains(&("New_Untested", false)), "{untested:?}");
    assert!(
        !untested.iter().any(|u| u.0 == "Helper"),
        "private rules are not listed"
    );
    // --require-tested: the added untested rules block too.
    let r = gate(&p, &["--no-cache", "--require-tested"]);
    let d = &r.json()["detections"];
    let blocking: Vec<&str> = d["untested_rules"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["blocking"] == true)
        .map(|u| u["identifier"].as_str().unwrap())
        .collect();
    assert_eq!(blocking, ["New_Tool", "New_Untested"]);
}

#[test]
fn bad_positives_are_errors_and_unreadable_samples_fail_closed() {
    let p = project();
    let corpus = root().join("corpus");
    let corpus = corpus.to_str().unwrap();
    let base = [
        "gate",
        "--no-config",
        "--no-cache",
        "--candidate",
        "candidate",
        "--baseline",
        "released",
        "--corpus",
    ];
    let go = |extra: &[&str]| run(p.cmd(&base).arg(corpus).args(extra));
    let r = go(&["--positives", "nowhere"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("positives path nowhere does not exist"),
        "{}",
        r.stderr
    );
    std::fs::create_dir_all(p.join("empty")).unwrap();
    let r = go(&["--positives", "empty"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("positives"), "{}", r.stderr);
    // A corpus file given as a sample.
    let clean = root().join("corpus/MANIFEST");
    let r = go(&["--positives", clean.to_str().unwrap()]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("both a known-bad sample and a clean corpus file"),
        "{}",
        r.stderr
    );
    // The same content as a clean file.
    let some_clean = walkdir::WalkDir::new(root().join("corpus"))
        .into_iter()
        .flatten()
        .find(|e| e.file_type().is_file() && e.file_name() != "MANIFEST")
        .unwrap();
    std::fs::copy(some_clean.path(), p.join("positives/copy.bin")).unwrap();
    let r = go(&["--positives", "positives"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("same content as the clean corpus file"),
        "{}",
        r.stderr
    );
    std::fs::remove_file(p.join("positives/copy.bin")).unwrap();
    // --require-tested alone, and with --shard.
    assert_eq!(go(&["--require-tested"]).code, 2);
    assert_eq!(go(&["--positives", "positives", "--shard", "1/2"]).code, 2);
    // An unreadable sample: unscanned, the run is incomplete (exit 3).
    open_up(p.path());
    for d in ["candidate", "released", "positives", "positives/tools"] {
        open_up(&p.join(d));
        for e in std::fs::read_dir(p.join(d)).unwrap().flatten() {
            open_up(&e.path());
        }
    }
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        p.join("positives/eicar.com"),
        std::fs::Permissions::from_mode(0o000),
    )
    .unwrap();
    let r = run_unprivileged(
        p.path(),
        &[
            "gate",
            "--no-config",
            "--no-cache",
            "--candidate",
            "candidate",
            "--baseline",
            "released",
            "--corpus",
            corpus,
            "--positives",
            "positives",
            "--format",
            "json",
        ],
    );
    assert_eq!(r.code, 3, "{}", r.stderr);
    let j = r.json();
    assert!(
        unscanned(&j)
            .iter()
            .any(|(path, reason)| path == "positives/eicar.com" && reason == "unreadable"),
        "{:?}",
        unscanned(&j)
    );
}
