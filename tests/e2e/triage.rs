//! Triage (`--explain`, `fpgate explain`): pattern prevalence, necessity
//! and validated narrowings, each checked against yara-x itself.

use crate::common::*;
use serde_json::Value;

/// The demo's gate with `--explain`, as JSON.
fn demo_explained(extra: &[&str]) -> Value {
    let mut c = fpgate();
    c.args(["gate", "--explain", "--format", "json"])
        .args(extra);
    let r = run(&mut c);
    assert_eq!(r.code, 1, "{}", r.stderr);
    r.json()
}

/// Each pattern's prevalence is the number of corpus files a rule made of
/// that pattern alone matches under a plain yara-x loop.
#[test]
fn prevalence_is_each_pattern_alone_under_yara_x() {
    let j = demo_explained(&[]);
    let t = &j["triage"];
    // 25 files and Setup.exe's member Update.exe.
    assert_eq!(t["clean_files"], 26);
    let rule = &t["rules"][0];
    assert_eq!(rule["identifier"], "Shh_Updater_B");
    let patterns = rule["patterns"].as_array().unwrap();
    assert_eq!(patterns.len(), 8, "{rule}");
    let scanned: std::collections::BTreeSet<String> =
        pairs(&j, "new").into_iter().map(|(_, p)| p).collect();
    assert!(!scanned.is_empty());
    // The corpus' one archive member (Squirrel's Setup.exe is a PE with a
    // zip appended, holding Update.exe), extracted by another reader.
    let members = tempfile::tempdir().unwrap();
    let st = std::process::Command::new("python3")
        .args([
            "-c",
            "import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])",
        ])
        .arg(root().join("corpus/npm/electron-winstaller-5.4.4/Setup.exe"))
        .arg(members.path())
        .status()
        .unwrap();
    assert!(st.success());
    for p in patterns {
        let d = tempfile::tempdir().unwrap();
        write(
            &d.path().join("p.yar"),
            format!(
                "rule p {{\n strings:\n  {}\n condition:\n  any of them\n}}\n",
                p["definition"].as_str().unwrap()
            )
            .as_bytes(),
        );
        let hits = oracle_pairs(d.path(), &root().join("corpus"), &root());
        // The oracle walks every file under corpus/, manifests too: count
        // only the files the gate scanned.
        let corpus_files: Vec<String> = j["corpus"]["roots"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap().to_string())
            .collect();
        assert_eq!(corpus_files, ["corpus"]);
        let n = hits
            .iter()
            .filter(|(_, path)| !path.ends_with(".tsv") && !path.ends_with(".md"))
            .count()
            + oracle_pairs(d.path(), members.path(), members.path()).len();
        assert_eq!(p["clean_files"].as_u64().unwrap() as usize, n, "{p}");
    }
    // The evidence of every new false positive shows it.
    let r = run(fpgate().args(["gate", "--explain", "--color", "never"]));
    assert!(
        r.stdout
            .contains("$ex1 alone occurs in 18 of 26 clean files"),
        "{}",
        r.stdout
    );
}

const NEEDS: &str = r#"rule Needs {
  strings:
    $a = "ALPHA-MARK"
    $b = "BRAVO-MARK"
    $c = "CHARLIE-MARK"
    $d = "DELTA-MARK"
  condition:
    $a and ($b or $c) and #d >= 0
}
"#;

const FILE: &[u8] = b"head ALPHA-MARK .. BRAVO-MARK .. CHARLIE-MARK .. DELTA-MARK tail";

fn yara_matches(rule: &str, data: &[u8]) -> bool {
    let rules = yara_x::compile(rule).unwrap();
    let mut s = yara_x::Scanner::new(&rules);
    s.scan(data).unwrap().matching_rules().count() > 0
}

/// Necessity: `$a` alone is needed, `$b`/`$c` only together, `$d` not at
/// all; and yara-x agrees on copies of the file with those strings blanked.
#[test]
fn necessity_names_what_the_condition_needs_and_yara_x_agrees() {
    let p = Project::new()
        .file("rules/needs.yar", NEEDS)
        .corpus(&[("f.bin", FILE), ("g.bin", b"nothing")]);
    let r = p.run(&[
        "check",
        "--no-config",
        "rules/needs.yar",
        "--corpus",
        "corpus",
        "--explain",
        "--format",
        "json",
    ]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let j = r.json();
    let n = &j["triage"]["rules"][0]["necessity"][0];
    assert_eq!(n["paths"][0], "corpus/f.bin");
    assert_eq!(n["necessary"], serde_json::json!(["$a"]));
    assert_eq!(n["not_necessary"], serde_json::json!(["$b", "$c", "$d"]));
    assert_eq!(n["necessary_pairs"], serde_json::json!([["$b", "$c"]]));
    // The engine on the file with the strings blanked out.
    let blank = |words: &[&str]| {
        let mut s = String::from_utf8(FILE.to_vec()).unwrap();
        for w in words {
            s = s.replace(w, &"_".repeat(w.len()));
        }
        s.into_bytes()
    };
    assert!(yara_matches(NEEDS, FILE));
    assert!(!yara_matches(NEEDS, &blank(&["ALPHA-MARK"])));
    assert!(yara_matches(NEEDS, &blank(&["BRAVO-MARK"])));
    assert!(yara_matches(NEEDS, &blank(&["CHARLIE-MARK"])));
    assert!(yara_matches(NEEDS, &blank(&["DELTA-MARK"])));
    assert!(!yara_matches(
        NEEDS,
        &blank(&["BRAVO-MARK", "CHARLIE-MARK"])
    ));
    let human = p.run(&[
        "check",
        "--no-config",
        "rules/needs.yar",
        "--corpus",
        "corpus",
        "--explain",
        "--color",
        "never",
    ]);
    assert!(
        human
            .stdout
            .contains("the condition needs $a: narrowing it clears this false positive"),
        "{}",
        human.stdout
    );
}

const BROAD: &str = r#"rule Broad_Name : demo {
  meta:
    description = "names a tool by a string clean software embeds"
  strings:
    $name = "evilcorp" ascii wide
  condition:
    $name
}
"#;

/// A rule whose string a clean file embeds inside a longer word: the
/// `fullword` narrowing clears it and keeps the sample; `wide only` clears
/// it too but loses the (ASCII) sample, so it is not proposed. The diff,
/// applied, gives a rule yara-x agrees with.
fn broad_project() -> Project {
    let mut big = vec![b'.'; 300_000];
    big[1000..1016].copy_from_slice(b"xxevilcorpxx1234");
    Project::new()
        .file("released/empty.yar", "rule Nothing { condition: false }\n")
        .file("candidate/broad.yar", BROAD)
        .corpus(&[("vendor/tool.exe", &big), ("vendor/other.bin", b"clean")])
        .file("samples/dropper.bin", b"MZ run evilcorp now")
}

fn broad_gate(p: &Project, extra: &[&str]) -> Run {
    let mut a = vec![
        "gate",
        "--no-config",
        "--candidate",
        "candidate",
        "--baseline",
        "released",
        "--corpus",
        "corpus",
        "--positives",
        "samples",
    ];
    a.extend_from_slice(extra);
    p.run(&a)
}

#[test]
fn suggestions_clear_the_false_positive_keep_the_sample_and_yara_x_agrees() {
    let p = broad_project();
    let r = broad_gate(&p, &["--explain", "--format", "json"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let j = r.json();
    let rule = &j["triage"]["rules"][0];
    assert_eq!(j["triage"]["samples"], 1);
    let kinds: Vec<&str> = rule["suggestions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"fullword"), "{rule}");
    assert!(!kinds.contains(&"wide_only"), "{rule}");
    let rejected = rule["rejected"].to_string();
    assert!(
        rejected.contains("as wide only (drop `ascii`): loses 1 detection"),
        "{rejected}"
    );
    let full = rule["suggestions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["kind"] == "fullword")
        .unwrap();
    assert_eq!(full["clears"], 1);
    assert_eq!(full["clean_files_after"], 0);
    assert_eq!(full["samples_before"], 1);
    assert_eq!(full["samples_after"], 1);
    // Apply the diff (one hunk) to the rule file and ask yara-x.
    let diff = full["diff"].as_str().unwrap();
    assert!(
        diff.starts_with("--- a/candidate/broad.yar\n+++ b/candidate/broad.yar\n@@ -3,5 +3,5 @@\n"),
        "{diff}"
    );
    let old: Vec<&str> = diff
        .lines()
        .filter(|l| l.starts_with('-') && !l.starts_with("---"))
        .map(|l| &l[1..])
        .collect();
    let new: Vec<&str> = diff
        .lines()
        .filter(|l| l.starts_with('+') && !l.starts_with("+++"))
        .map(|l| &l[1..])
        .collect();
    let fixed = BROAD.replace(&old.join("\n"), &new.join("\n"));
    assert_ne!(fixed, BROAD);
    assert!(
        fixed.contains("$name = \"evilcorp\" ascii wide fullword"),
        "{fixed}"
    );
    let clean = std::fs::read(p.join("corpus/vendor/tool.exe")).unwrap();
    assert!(yara_matches(BROAD, &clean));
    assert!(!yara_matches(&fixed, &clean));
    assert!(yara_matches(&fixed, b"MZ run evilcorp now"));

    // `fpgate explain REPORT.json` gives the same triage from the report.
    p.file_ref("report.json", &r.stdout);
    let e = p.run(&[
        "explain",
        "report.json",
        "--no-config",
        "--positives",
        "samples",
        "--format",
        "json",
    ]);
    assert_eq!(e.code, 0, "{}", e.stderr);
    let mut a = j["triage"].clone();
    let mut b = e.json()["triage"].clone();
    for t in [&mut a, &mut b] {
        t.as_object_mut().unwrap().remove("files_from_cache");
    }
    assert_eq!(a, b);
    let human = p.run(&[
        "explain",
        "report.json",
        "--no-config",
        "--positives",
        "samples",
        "--color",
        "never",
    ]);
    assert!(
        human.stdout.contains("SUGGESTED narrowings"),
        "{}",
        human.stdout
    );
    assert!(
        human
            .stdout
            .contains("+    $name = \"evilcorp\" ascii wide fullword"),
        "{}",
        human.stdout
    );
}

/// The triage answered from the results cache is the triage computed
/// afresh (`--no-cache`), cold and warm, and after an edit of the rule.
#[test]
fn triage_from_the_cache_equals_triage_without_it() {
    let p = broad_project();
    let cache = p.join("cache");
    let c = cache.to_str().unwrap();
    let get = |extra: &[&str]| {
        let mut a = vec!["--explain", "--format", "json"];
        a.extend_from_slice(extra);
        let r = broad_gate(&p, &a);
        assert_eq!(r.code, 1, "{}", r.stderr);
        let mut t = r.json()["triage"].clone();
        let hits = t["files_from_cache"].as_u64().unwrap();
        t.as_object_mut().unwrap().remove("files_from_cache");
        (t, hits)
    };
    let (plain, _) = get(&["--no-cache"]);
    let (cold, cold_hits) = get(&["--cache", c]);
    let (warm, warm_hits) = get(&["--cache", c]);
    assert_eq!(plain, cold);
    assert_eq!(plain, warm);
    assert_eq!(cold_hits, 0);
    assert!(warm_hits > 0, "the warm run used the cache");
    // Edit: a second pattern; cached and uncached agree again.
    p.file_ref(
        "candidate/broad.yar",
        BROAD
            .replace(
                "    $name = \"evilcorp\" ascii wide\n",
                "    $name = \"evilcorp\" ascii wide\n    $run = \"run\"\n",
            )
            .replace("$name\n}", "$name or $run\n}"),
    );
    let (plain, _) = get(&["--no-cache"]);
    let (warm, _) = get(&["--cache", c]);
    assert_eq!(plain, warm);
    assert_eq!(plain["rules"][0]["patterns"].as_array().unwrap().len(), 2);
}

#[test]
fn explain_refuses_what_is_not_a_report() {
    let p = Project::new()
        .file("bad.json", "{ not json")
        .file("other.json", "{\"schema_version\": 99}");
    let r = p.run(&["explain", "bad.json", "--no-config"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("bad.json:1: not a JSON report"),
        "{}",
        r.stderr
    );
    let r = p.run(&["explain", "other.json", "--no-config"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr
            .contains("other.json: not a JSON report of this fpgate"),
        "{}",
        r.stderr
    );
    let r = p.run(&["explain", "missing.json", "--no-config"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("missing.json"), "{}", r.stderr);
    // A report is data: the rule files it names must be in this repository
    // (a rule file is quoted in compile errors).
    p.file_ref(
        "hostile.json",
        r#"{"schema_version": 1, "rulesets": {"candidate": {"paths": ["/proc/self/environ"]}},
            "corpus": {"roots": ["."]}, "false_positives": {"new": []}}"#,
    );
    let r = p.run(&["explain", "hostile.json", "--no-config"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("rule path /proc/self/environ is refused"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("PATH="), "{}", r.stderr);
}
