//! The gate's own policy as part of the change (`gate --baseline-ref`):
//! fpgate.toml and the exceptions file are diffed against the base
//! revision's, every relaxation is reported at its line, `--policy-from-base`
//! applies the base's policy, and `policy.changes = "block"` blocks a change
//! that does not tighten the gate.

use crate::common::*;
use serde_json::Value;

const BASE_CONFIG: &str = "[rules]\ncandidate = [\"rules\"]\n\n[corpus]\npaths = [\"corpus\"]\ncritical = [\"**/Squirrel.exe\"]\n\n[scan]\nallow_incomplete = false\n\n[warnings]\ndeny_codes = [\"slow_pattern\"]\n";

/// A rules repository at its base commit: the released rules, the
/// Squirrel installer files of the corpus (critical), a config and an
/// exceptions file with one entry.
fn repo(base_config: &str) -> Project {
    let p = Project::new();
    copy_dir(&root().join("rules/released"), &p.join("rules"));
    let squirrel = root().join("corpus/npm/electron-winstaller-5.4.4");
    for f in ["Setup.exe", "Squirrel.exe"] {
        std::fs::create_dir_all(p.join("corpus")).unwrap();
        std::fs::copy(squirrel.join(f), p.join("corpus").join(f)).unwrap();
    }
    p.file_ref("fpgate.toml", base_config);
    p.file_ref(
        "fpgate-exceptions.toml",
        "[[exception]]\nrule = \"Old\"\npath = \"corpus/x\"\nreason = \"r\"\nowner = \"o\"\nexpires = \"2027-01-01\"\n",
    );
    p.git(&["init", "-q"]);
    p.git(&["add", "-A"]);
    p.git(&["commit", "-qm", "base"]);
    p
}

/// The pull request: Shh/Updater-B added, the policy relaxed in the same
/// change (allow_incomplete, the critical glob and the denied warning code
/// dropped, an expiry moved out, an exception for the new rule).
fn relax(p: &Project) {
    std::fs::copy(
        root().join("rules/candidate/updaters.yar"),
        p.join("rules/updaters.yar"),
    )
    .unwrap();
    p.file_ref(
        "fpgate.toml",
        "[rules]\ncandidate = [\"rules\"]\n\n[corpus]\npaths = [\"corpus\"]\n\n[scan]\nallow_incomplete = true\n\n[warnings]\ndeny_codes = []\n",
    );
    p.file_ref(
        "fpgate-exceptions.toml",
        "[[exception]]\nrule = \"Old\"\npath = \"corpus/x\"\nreason = \"r\"\nowner = \"o\"\nexpires = \"2028-01-01\"\n\n[[exception]]\nrule = \"Shh_Updater_B\"\npath = \"corpus/**\"\nreason = \"trust me\"\nowner = \"pr-author\"\nexpires = \"2030-01-01\"\ncritical = true\n",
    );
}

fn gate(p: &Project, extra: &[&str]) -> Run {
    let mut args = vec![
        "gate",
        "--baseline-ref",
        "HEAD",
        "--no-cache",
        "--today",
        "2026-11-30",
        "--format",
        "json",
    ];
    args.extend(extra);
    p.run(&args)
}

fn changes(j: &Value) -> Vec<(String, String)> {
    let c = &j["policy_changes"];
    c["settings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["key"].as_str().unwrap().to_string(),
                s["direction"].as_str().unwrap().to_string(),
            )
        })
        .chain(c["exceptions"].as_array().unwrap().iter().map(|e| {
            (
                format!(
                    "exception {} {}",
                    e["change"].as_str().unwrap(),
                    e["rule"].as_str().unwrap()
                ),
                e["direction"].as_str().unwrap().to_string(),
            )
        }))
        .collect()
}

#[test]
fn a_relaxed_policy_is_reported_at_its_lines_in_every_format() {
    let p = repo(BASE_CONFIG);
    // Nothing changed: no change reported.
    let r = gate(&p, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(changes(&r.json()), Vec::<(String, String)>::new());
    relax(&p);
    // By default the base's policy applies: the change's exception does not.
    let r = gate(&p, &[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_eq!(r.json()["policy_changes"]["source"], "base");
    let r = gate(
        &p,
        &[
            "--policy-from-worktree",
            "--report",
            "sarif=out.sarif",
            "--report",
            "github=out.gh",
            "--report",
            "markdown=out.md",
            "--report",
            "html=out.html",
            "--report",
            "concise=out.txt",
        ],
    );
    // The working tree's policy applies: its exception covers the new rule.
    assert_eq!(r.code, 0, "{}", r.stderr);
    let j = r.json();
    assert_eq!(
        j["false_positives"]["excepted"].as_array().unwrap().len(),
        2
    );
    let want: Vec<(String, String)> = [
        ("corpus.critical", "relaxes"),
        ("scan.allow_incomplete", "relaxes"),
        ("warnings.deny_codes", "relaxes"),
        ("exception changed Old", "relaxes"),
        ("exception added Shh_Updater_B", "relaxes"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(changes(&j), want);
    let c = &j["policy_changes"];
    assert_eq!(c["source"], "worktree");
    assert_eq!(c["mode"], "report");
    assert_eq!(c["base_config"], "HEAD:fpgate.toml");
    assert_eq!(c["counts"]["relaxes"], 5);
    assert_eq!(c["counts"]["blocking"], 0);
    let allow = &c["settings"][1];
    assert_eq!(
        (allow["file"].as_str(), allow["line"].as_u64()),
        (Some("fpgate.toml"), Some(8))
    );
    assert_eq!(allow["detail"], "false -> true");
    let added = &c["exceptions"][1];
    assert_eq!(
        (added["file"].as_str(), added["line"].as_u64()),
        (Some("fpgate-exceptions.toml"), Some(8))
    );

    let read = |f: &str| std::fs::read_to_string(p.join(f)).unwrap();
    let sarif: Value = serde_json::from_str(&read("out.sarif")).unwrap();
    let results: Vec<&Value> = sarif["runs"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["ruleId"] == "fpgate/policy-change")
        .collect();
    assert_eq!(results.len(), 5);
    assert!(results.iter().any(
        |x| x["locations"][0]["physicalLocation"]["region"]["startLine"] == 8
            && x["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "fpgate.toml"
    ));
    let gh = read("out.gh");
    assert!(
        gh.contains("::warning file=fpgate.toml,line=8,title=fpgate%3A the gate's policy relaxes::policy change (relaxes): scan.allow_incomplete: false -> true"),
        "{gh}"
    );
    let md = read("out.md");
    assert!(
        md.contains("### Policy changes since `HEAD`: 5 relax, 0 tighten, 0 other"),
        "{md}"
    );
    assert!(read("out.html").contains("id=\"policy-changes\""));
    assert!(read("out.txt").contains("fpgate-exceptions.toml:8:1: warning: policy change (relaxes): exception added for rule Shh_Updater_B"));
    // Human: a section naming each change.
    let r = p.run(&[
        "gate",
        "--policy-from-worktree",
        "--baseline-ref",
        "HEAD",
        "--no-cache",
        "--color",
        "never",
    ]);
    assert!(r.stdout.contains("POLICY CHANGES since HEAD (5 relax, 0 tighten, 0 other; the working tree's policy is applied)"), "{}", r.stdout);
}

#[test]
fn policy_from_base_applies_the_bases_config_and_exceptions() {
    let p = repo(BASE_CONFIG);
    relax(&p);
    let r = gate(&p, &["--policy-from-base"]);
    // The base's exceptions do not cover the new rule: blocked on the
    // critical installer the working tree's config had dropped.
    assert_eq!(r.code, 1, "{}", r.stderr);
    let j = r.json();
    assert_eq!(j["policy_changes"]["source"], "base");
    assert_eq!(
        j["false_positives"]["excepted"].as_array().unwrap().len(),
        0
    );
    let new = j["false_positives"]["new"].as_array().unwrap();
    assert_eq!(new.len(), 2);
    assert!(
        new.iter().any(|f| f["tier"] == "critical"),
        "the base's critical glob applies"
    );
    assert_eq!(j["exceptions"]["file"], "HEAD:fpgate-exceptions.toml");
    // The same from the base config's policy.source, even when the change
    // removes it: the base decides.
    let p = repo(&format!("{BASE_CONFIG}\n[policy]\nsource = \"base\"\n"));
    relax(&p);
    let r = gate(&p, &[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let j = r.json();
    assert_eq!(j["policy_changes"]["source"], "base");
    assert!(changes(&j).contains(&("policy.source".into(), "relaxes".into())));
}

#[test]
fn block_mode_blocks_a_relaxing_change_and_names_it() {
    let p = repo(&format!("{BASE_CONFIG}\n[policy]\nchanges = \"block\"\n"));
    // Tightening alone passes: a critical glob added.
    p.file_ref(
        "fpgate.toml",
        format!(
            "{}\n[policy]\nchanges = \"block\"\n",
            BASE_CONFIG.replace(
                "critical = [\"**/Squirrel.exe\"]",
                "critical = [\"**/Squirrel.exe\", \"**/Setup.exe\"]"
            )
        ),
    );
    let r = gate(&p, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        changes(&r.json()),
        [("corpus.critical".to_string(), "tightens".to_string())]
    );
    // The relaxing change (which also drops `changes = "block"`) blocks.
    relax(&p);
    std::fs::remove_file(p.join("rules/updaters.yar")).unwrap();
    let r = gate(&p, &[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let j = r.json();
    assert_eq!(j["policy_changes"]["mode"], "block");
    assert_eq!(j["policy_changes"]["counts"]["blocking"], 6);
    let reason = j["verdict"]["reasons"][0].as_str().unwrap();
    assert!(
        reason.contains("change(s) of the gate's own policy since HEAD need a second review"),
        "{reason}"
    );
    assert!(
        reason.contains("scan.allow_incomplete (relaxes)"),
        "{reason}"
    );
    assert_eq!(
        j["false_positives"]["new"].as_array().unwrap().len(),
        0,
        "no rule change"
    );
    // JUnit: one failing case for the policy; Code Quality: an issue each.
    let r = gate(
        &p,
        &["--report", "junit=j.xml", "--report", "codequality=cq.json"],
    );
    assert_eq!(r.code, 1);
    let junit = std::fs::read_to_string(p.join("j.xml")).unwrap();
    assert!(
        junit.contains("<testcase name=\"policy changes since HEAD\" classname=\"fpgate.policy\""),
        "{junit}"
    );
    assert!(junit.contains("type=\"policy_change\""), "{junit}");
    assert!(junit.contains("failures=\"1\""), "{junit}");
    let cq: Value =
        serde_json::from_str(&std::fs::read_to_string(p.join("cq.json")).unwrap()).unwrap();
    let policy: Vec<&Value> = cq
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["check_name"] == "fpgate/policy-change")
        .collect();
    assert_eq!(policy.len(), 6);
    assert!(policy.iter().all(|i| i["severity"] == "critical"));
}

#[test]
fn bad_and_missing_base_policies() {
    let p = repo(BASE_CONFIG);
    // No such revision: exit 2 naming it.
    let r = p.run(&["gate", "--baseline-ref", "no-such-ref", "--no-cache"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("no-such-ref"), "{}", r.stderr);
    // A base config that does not parse: exit 2 naming REF:file:line.
    p.file_ref("fpgate.toml", "[scan]\nallow_incomplete = maybe\n");
    p.git(&["commit", "-qam", "broken"]);
    p.file_ref("fpgate.toml", BASE_CONFIG);
    let r = p.run(&["gate", "--baseline-ref", "HEAD", "--no-cache"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("HEAD:fpgate.toml:2"), "{}", r.stderr);
    // No config at the base (first adoption): the base's policy is empty,
    // so the corpus must come from the command line, or the working
    // tree's policy is asked for there.
    p.git(&["rm", "-q", "--cached", "fpgate.toml"]);
    p.git(&["commit", "-qm", "no config"]);
    let r = gate(&p, &[]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("first adoption") && r.stderr.contains("--policy-from-worktree"),
        "{}",
        r.stderr
    );
    let r = gate(&p, &["--corpus", "corpus"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.json()["policy_changes"]["source"], "base");
    let r = gate(&p, &["--policy-from-worktree"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let j = r.json();
    assert!(j["policy_changes"]["notes"][0]
        .as_str()
        .unwrap()
        .starts_with("no base policy"));
    assert!(j["policy_changes"]["base_config"].is_null());
    assert!(changes(&j).contains(&("corpus.critical".into(), "tightens".into())));
    // The policy from the base needs the base on the command line.
    let r = p.run(&["gate", "--policy-from-base", "--no-cache"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("--baseline-ref"), "{}", r.stderr);
    p.file_ref(
        "fpgate.toml",
        format!("{BASE_CONFIG}baseline_ref = \"HEAD\"\n[policy]\nsource = \"base\"\n")
            .replace(
                "[rules]\ncandidate = [\"rules\"]\n",
                "[rules]\ncandidate = [\"rules\"]\nbaseline_ref = \"HEAD\"\n",
            )
            .replace("baseline_ref = \"HEAD\"\n[policy]", "[policy]"),
    );
    let r = p.run(&["gate", "--no-cache"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("could name the change itself"),
        "{}",
        r.stderr
    );
}

#[test]
fn the_base_lock_applies_with_the_policy_from_the_base() {
    let p = repo(&format!("{BASE_CONFIG}").replace(
        "critical = [\"**/Squirrel.exe\"]\n",
        "critical = [\"**/Squirrel.exe\"]\nlock = \"corpus.lock\"\n",
    ));
    let r = p.run(&[
        "corpus",
        "index",
        "--corpus",
        "corpus",
        "--output",
        "corpus.lock",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    p.git(&["add", "corpus.lock"]);
    p.git(&["commit", "-qm", "lock"]);
    // The change drops the critical installer from the corpus and writes a
    // lock to match.
    std::fs::remove_file(p.join("corpus/Squirrel.exe")).unwrap();
    let r = p.run(&[
        "corpus",
        "index",
        "--corpus",
        "corpus",
        "--output",
        "corpus.lock",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        gate(&p, &["--policy-from-worktree"]).code,
        0,
        "the change's own lock agrees with it"
    );
    let r = gate(&p, &[]);
    assert_eq!(
        r.code, 2,
        "the base's lock (the default) does not: {}",
        r.stderr
    );
    let r = gate(&p, &["--policy-from-base"]);
    assert_eq!(r.code, 2, "the base's lock does not: {}", r.stderr);
    assert!(
        r.stderr.contains("HEAD:corpus.lock") && r.stderr.contains("Squirrel.exe"),
        "{}",
        r.stderr
    );
}

#[test]
fn shards_carry_the_policy_changes_and_no_config_means_no_diff() {
    let p = repo(BASE_CONFIG);
    relax(&p);
    let strip = |mut v: Value| {
        v.as_object_mut().unwrap().remove("timings");
        v
    };
    // The base's policy (the default): the change's exception does not
    // apply, the new rule blocks.
    let one = gate(&p, &[]);
    assert_eq!(one.code, 1, "{}", one.stderr);
    let want = strip(one.json());
    assert_eq!(want["policy_changes"]["counts"]["relaxes"], 5);
    let parts: Vec<String> = (1..=2)
        .map(|k| {
            let part = p.join(&format!("part{k}.json")).display().to_string();
            let shard = format!("{k}/2");
            let r = gate(&p, &["--shard", &shard, "-o", &part]);
            assert_eq!(r.code, 0, "{}", r.stderr);
            part
        })
        .collect();
    let m = run(p.cmd(&["merge"]).args(&parts).args(["--format", "json"]));
    assert_eq!(m.code, one.code, "{}", m.stderr);
    assert_eq!(strip(m.json()), want);
    // --no-config: there is no policy of the working tree to compare.
    let r = p.run(&[
        "gate",
        "--no-config",
        "--baseline-ref",
        "HEAD",
        "--candidate",
        "rules",
        "--corpus",
        "corpus",
        "--no-cache",
        "--format",
        "json",
    ]);
    // (The default exceptions file beside it still applies, as ever.)
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.json().get("policy_changes").is_none());
    let r = p.run(&[
        "gate",
        "--no-config",
        "--policy-from-base",
        "--baseline-ref",
        "HEAD",
        "--candidate",
        "rules",
        "--corpus",
        "corpus",
    ]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("--no-config"), "{}", r.stderr);
}
