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
    // --require-tested without samples.
    assert_eq!(go(&["--require-tested"]).code, 2);
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

/// The line of `rule NAME` in a file.
fn rule_line(file: &std::path::Path, name: &str) -> usize {
    std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .position(|l| l.contains(&format!("rule {name}")))
        .unwrap()
        + 1
}

/// A narrowed rule (lost), a rule that misses the sample its meta names
/// (missed) and an untested added rule under --require-tested.
fn three_problems() -> Project {
    let p = project();
    narrow(&p);
    let md5 = {
        use md5::Digest;
        md5::Md5::digest(mimikatz_like())
            .iter()
            .map(|x| format!("{x:02x}"))
            .collect::<String>()
    };
    p.file_ref(
        "candidate/new.yar",
        format!(
            "rule New_Tool {{\n  meta:\n    md5 = \"{md5}\"\n  strings:\n    $a = \"lsadump::sam\" fullword\n  condition:\n    $a and filesize > 1MB\n}}\n"
        ),
    );
    p
}

#[test]
fn every_format_carries_the_detection_problems_at_the_rules_line() {
    let p = three_problems();
    let line = rule_line(
        &p.join("candidate/hacktools.yar"),
        "HackTool_Mimikatz_Strings",
    );
    let formats = [
        "sarif",
        "junit",
        "github",
        "concise",
        "codequality",
        "markdown",
        "html",
    ];
    let mut extra = vec!["--no-cache".to_string(), "--require-tested".to_string()];
    for f in formats {
        extra.push("--report".into());
        extra.push(format!("{f}=out.{f}"));
    }
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    let r = gate(&p, &extra);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let read = |f: &str| std::fs::read_to_string(p.join(&format!("out.{f}"))).unwrap();

    // SARIF: one result per problem, at the candidate's line to fix.
    let sarif: Value = serde_json::from_str(&read("sarif")).unwrap();
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    let by_id =
        |id: &str| -> Vec<&Value> { results.iter().filter(|x| x["ruleId"] == id).collect() };
    let lost = by_id("fpgate/lost-detection");
    assert_eq!(lost.len(), 1, "{results:#?}");
    let loc = &lost[0]["locations"][0]["physicalLocation"];
    assert_eq!(loc["artifactLocation"]["uri"], "candidate/hacktools.yar");
    assert_eq!(loc["region"]["startLine"], line);
    let text = lost[0]["message"]["text"].as_str().unwrap();
    assert!(
        text.contains("no longer detects the known-bad sample positives/tools/mimi.exe"),
        "{text}"
    );
    assert!(text.contains("The baseline matched: $m1 at 0x"), "{text}");
    let missed = by_id("fpgate/missed-sample");
    assert_eq!(missed.len(), 1);
    assert_eq!(
        missed[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
        "candidate/new.yar"
    );
    // New_Tool detects nothing, nor does the narrowed rule any more.
    assert_eq!(by_id("fpgate/untested-rule").len(), 2);
    // Every result's ruleIndex points at its rule.
    let rules = sarif["runs"][0]["tool"]["driver"]["rules"]
        .as_array()
        .unwrap();
    for x in results {
        assert_eq!(
            rules[x["ruleIndex"].as_u64().unwrap() as usize]["id"],
            x["ruleId"]
        );
    }

    let gh = read("github");
    assert!(
        gh.contains(&format!("::error file=candidate/hacktools.yar,line={line},title=fpgate%3A HackTool_Mimikatz_Strings%3A lost detection")),
        "{gh}"
    );
    assert_eq!(gh.matches("::error ").count(), 4, "{gh}");

    let concise = read("concise");
    assert!(
        concise.contains(&format!("candidate/hacktools.yar:{line}:1: error: lost detection: rule HackTool_Mimikatz_Strings")),
        "{concise}"
    );
    assert!(
        concise.contains("candidate/new.yar:1:1: error: missed sample: rule New_Tool"),
        "{concise}"
    );
    assert!(
        concise.contains("candidate/new.yar:1:1: error: untested rule: added rule New_Tool"),
        "{concise}"
    );

    let cq: Value = serde_json::from_str(&read("codequality")).unwrap();
    let lost: Vec<&Value> = cq
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["check_name"] == "fpgate/lost-detection")
        .collect();
    assert_eq!(lost.len(), 1);
    assert_eq!(lost[0]["severity"], "critical");
    assert_eq!(lost[0]["location"]["lines"]["begin"], line);

    let junit = read("junit");
    let case = junit
        .split("<testcase ")
        .find(|c| c.starts_with("name=\"HackTool_Mimikatz_Strings\""))
        .unwrap();
    assert!(case.contains("type=\"several\""), "{case}");
    assert!(
        case.contains("1 lost detection(s) of known-bad samples, known-bad samples detected: none"),
        "{case}"
    );
    let case = junit
        .split("<testcase ")
        .find(|c| c.starts_with("name=\"New_Tool\""))
        .unwrap();
    assert!(case.contains("type=\"several\""), "{case}");

    let md = read("markdown");
    assert!(
        md.contains("### Known-bad samples: 1 lost, 1 kept, 0 gained, 0 excepted"),
        "{md}"
    );
    assert!(md.contains("positives/tools/mimi.exe"), "{md}");
    assert!(md.contains("$m1 ×"), "{md}");

    let html = read("html");
    let table = &html[html.find("id=\"coverage\"").unwrap()..];
    let row = table
        .split("<tr")
        .find(|r| r.contains(">HackTool_Mimikatz_Strings<"))
        .unwrap();
    assert!(row.starts_with(" class=\"lost blocking\""), "{row}");
    let row = table
        .split("<tr")
        .find(|r| r.contains(">Test_EICAR_File<"))
        .unwrap();
    assert!(row.starts_with(" class=\"tested\""), "{row}");
}

#[test]
fn sharded_runs_merge_to_the_report_of_one_run_without_reading_the_samples() {
    let p = three_problems();
    // A walk-level skip among the samples: reported the same way.
    std::os::unix::fs::symlink("/nonexistent/target", p.join("positives/dangling")).unwrap();
    let base = [
        "--no-cache",
        "--require-tested",
        "--allow-incomplete",
        "--today",
        "2026-11-30",
    ];
    let one = gate(&p, &base);
    assert_eq!(one.code, 1, "{}", one.stderr);
    let strip = |mut v: Value| {
        v.as_object_mut().unwrap().remove("timings");
        v
    };
    let want = strip(one.json());
    assert_eq!(want["detections"]["counts"]["lost"], 1);
    assert_eq!(
        want["detections"]["counts"]["expected_missed"], 1,
        "md5 from the sample"
    );
    // The results cache answers the same, cold and warm.
    for round in ["cold", "warm"] {
        let mut args = base.to_vec();
        args[0] = "--cache";
        args.insert(1, "cache");
        let r = gate(&p, &args);
        assert_eq!(r.code, one.code, "{round}: {}", r.stderr);
        assert_eq!(strip(r.json()), want, "cached ({round}) == --no-cache");
    }
    for n in [1u32, 2, 3] {
        let out = p.join(&format!("parts-{n}"));
        std::fs::create_dir_all(&out).unwrap();
        let parts: Vec<String> = (1..=n)
            .map(|k| {
                let part = out.join(format!("{k}.json")).display().to_string();
                let shard = format!("{k}/{n}");
                let mut args = base.to_vec();
                args.extend(["--shard", shard.as_str(), "-o", part.as_str()]);
                let r = gate(&p, &args);
                assert_eq!(r.code, 0, "shard {k}/{n}: {}", r.stderr);
                part
            })
            .collect();
        // merge reads only the partial reports: the samples may be gone.
        let moved = p.join("positives-away");
        std::fs::rename(p.join("positives"), &moved).unwrap();
        let m = run(p
            .cmd(&[])
            .arg("merge")
            .args(&parts)
            .args(["--format", "json"]));
        std::fs::rename(&moved, p.join("positives")).unwrap();
        assert_eq!(m.code, one.code, "N={n}: {}", m.stderr);
        assert_eq!(strip(m.json()), want, "N={n}");
    }
    // Shards of runs with different samples do not merge.
    let out = p.join("mixed");
    std::fs::create_dir_all(&out).unwrap();
    let a = out.join("1.json").display().to_string();
    let b = out.join("2.json").display().to_string();
    let mut args = base.to_vec();
    args.extend(["--shard", "1/2", "-o", a.as_str()]);
    assert_eq!(gate(&p, &args).code, 0);
    p.file_ref("positives/extra.bin", b"another sample");
    let mut args = base.to_vec();
    args.extend(["--shard", "2/2", "-o", b.as_str()]);
    assert_eq!(gate(&p, &args).code, 0);
    let m = run(p.cmd(&[]).arg("merge").args([&a, &b]));
    assert_eq!(m.code, 2, "{}", m.stderr);
    assert!(m.stderr.contains("mismatched shards"), "{}", m.stderr);
}

#[test]
fn the_demo_blocks_the_narrowed_rule_and_names_the_lost_sample() {
    let bin = assert_cmd::cargo::cargo_bin("fpgate");
    let r = run(assert_cmd::Command::new("bash")
        .arg(root().join("examples/positives-demo/run.sh"))
        .args(["--format", "json"])
        .env("FPGATE", &bin)
        .env("FPGATE_CACHE", test_cache())
        .timeout(std::time::Duration::from_secs(120)));
    assert_eq!(r.code, 1, "{}", r.stderr);
    let j = r.json();
    let d = &j["detections"];
    assert_eq!(
        listed(d, "lost"),
        [(
            "HackTool_Mimikatz_Strings".into(),
            "positives/tools/mimi.exe".into()
        )]
    );
    assert_eq!(d["counts"]["kept"], 1, "EICAR still detected");
    assert_eq!(
        j["verdict"]["counts"]["new"], 0,
        "no false positive involved"
    );
    // The human report says which patterns were lost.
    let r = run(assert_cmd::Command::new("bash")
        .arg(root().join("examples/positives-demo/run.sh"))
        .env("FPGATE", &bin)
        .env("FPGATE_CACHE", test_cache())
        .env("NO_COLOR", "1")
        .timeout(std::time::Duration::from_secs(120)));
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stdout.contains("positives/tools/mimi.exe"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("$m1"), "{}", r.stdout);
}

#[test]
fn a_split_rule_keeps_its_sample_and_a_removed_one_loses_it() {
    let p = project();
    let f = p.join("candidate/hacktools.yar");
    let text = std::fs::read_to_string(&f).unwrap();
    let start = text.find("rule HackTool_Mimikatz_Strings").unwrap();
    let end = start + text[start..].find("\n}\n").unwrap() + 3;
    let without = format!("{}{}", &text[..start], &text[end..]);
    std::fs::write(&f, &without).unwrap();
    // Removed, nothing added: the loss blocks.
    let r = gate(&p, &["--no-cache"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let d = &r.json()["detections"];
    assert_eq!(
        listed(d, "lost"),
        [(
            "HackTool_Mimikatz_Strings".into(),
            "positives/tools/mimi.exe".into()
        )]
    );
    // Reported at the baseline's rule, since the candidate has none.
    assert_eq!(d["lost"][0]["rule"]["source"], "released/hacktools.yar");
    // Split into two added rules that each detect the sample: kept, twice.
    p.file_ref(
        "candidate/mimikatz.yar",
        "rule HackTool_Mimikatz_Modules { strings: $m1 = \"sekurlsa::logonpasswords\" $m2 = \"lsadump::sam\" condition: all of them }\n\
         rule HackTool_Mimikatz_Banner { strings: $b1 = \"gentilkiwi\" condition: $b1 }\n",
    );
    let r = gate(&p, &["--no-cache"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let d = &r.json()["detections"];
    assert_eq!(d["counts"]["lost"], 0, "{d}");
    let moved: Vec<&str> = d["kept"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| {
            k["notes"].as_array().is_some_and(|n| {
                n.iter().any(|n| {
                    n.as_str()
                        .unwrap()
                        .contains("moved from the removed rule(s) HackTool_Mimikatz_Strings")
                })
            })
        })
        .map(|k| k["rule"]["identifier"].as_str().unwrap())
        .collect();
    assert_eq!(
        moved,
        ["HackTool_Mimikatz_Banner", "HackTool_Mimikatz_Modules"]
    );
    // An added rule that detects a different sample takes nothing over.
    p.file_ref(
        "candidate/mimikatz.yar",
        "rule HackTool_Other { strings: $a = \"EICAR\" condition: $a }\n",
    );
    let r = gate(&p, &["--no-cache"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_eq!(r.json()["detections"]["counts"]["lost"], 1);
}
