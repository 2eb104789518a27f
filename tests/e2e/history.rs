//! The run history: every run is recorded beside the results cache;
//! `--since-last` lists what is new since the last run of the same rules
//! over the same corpus roots, in every format, and `--since-last=block`
//! blocks on it; `fpgate history` lists the runs; the HTML report draws the
//! trend (checked in headless Chromium, with a screenshot).

use crate::common::*;
use serde_json::Value;

const RULE: &str = r#"rule Updater_Heuristic : updater {
  strings:
    $a = "fetch-and-run-update"
  condition:
    $a
}
"#;

/// Rules in `rules/` (released and candidate alike), a corpus of one file
/// the rule matches and one it does not; its own cache and history.
fn nightly() -> Project {
    Project::new().file("rules/updater.yar", RULE).corpus(&[
        ("app/first.bin", b"MZ ... fetch-and-run-update ..."),
        ("app/clean.bin", b"nothing to see"),
    ])
}

fn gate(p: &Project, extra: &[&str]) -> Run {
    let cache = p.join("cache");
    let mut args = vec![
        "gate",
        "--no-config",
        "--candidate",
        "rules",
        "--baseline",
        "rules",
        "--corpus",
        "corpus",
        "--cache",
        cache.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    p.run(&args)
}

#[test]
fn a_clean_file_added_overnight_is_new_since_the_last_run_and_blocks_when_asked() {
    let p = nightly();
    // Night 1: the released rule already flags first.bin (persisting: the
    // baseline is the same rules), so the gate passes.
    let r = gate(&p, &["--since-last", "--format", "json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let j = r.json();
    let h = &j["history"];
    assert!(h["previous"].is_null(), "{h}");
    assert_eq!(h["new_since_last"].as_array().unwrap().len(), 0);
    assert_eq!(h["trend"].as_array().unwrap().len(), 1);

    // Night 2: a newly added clean file is flagged by the same rule.
    p.file_ref("corpus/app/second.bin", b"xx fetch-and-run-update xx");
    let r = gate(&p, &["--since-last", "--format", "json"]);
    assert_eq!(r.code, 0, "report mode does not block: {}", r.stderr);
    let j = r.json();
    let h = &j["history"];
    assert_eq!(h["previous"]["id"], j["history"]["trend"][0]["id"]);
    let new: Vec<&Value> = h["new_since_last"].as_array().unwrap().iter().collect();
    assert_eq!(new.len(), 1, "{h}");
    assert_eq!(new[0]["paths"][0], "corpus/app/second.bin");
    assert_eq!(new[0]["identifier"], "Updater_Heuristic");
    assert_eq!(new[0]["class"], "persisting");
    assert_eq!(h["gone_since_last"], 0);
    assert!(h["notes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n.as_str().unwrap().contains("the corpus changed")));
    let trend: Vec<u64> = h["trend"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["findings"].as_u64().unwrap())
        .collect();
    assert_eq!(trend, [1, 2]);

    // Night 3: one more file; in block mode it blocks, in every format.
    p.file_ref("corpus/app/third.bin", b"fetch-and-run-update");
    let out = p.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let o = |f: &str| format!("{f}={}", out.join(f).display());
    let r = gate(
        &p,
        &[
            "--since-last=block",
            "--format",
            "json",
            "--report",
            &o("sarif"),
            "--report",
            &o("junit"),
            "--report",
            &o("github"),
            "--report",
            &o("concise"),
            "--report",
            &o("codequality"),
            "--report",
            &o("markdown"),
            "--report",
            &o("human"),
        ],
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    let j = r.json();
    assert_eq!(j["history"]["blocking"], 1);
    assert_eq!(j["verdict"]["result"], "blocked");
    let reason = j["verdict"]["reasons"][0].as_str().unwrap();
    assert!(reason.contains("new since the last run"), "{reason}");
    let read = |f: &str| std::fs::read_to_string(out.join(f)).unwrap();
    let sarif: Value = serde_json::from_str(&read("sarif")).unwrap();
    let res: Vec<&Value> = sarif["runs"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["ruleId"] == "fpgate/new-since-last")
        .collect();
    assert_eq!(res.len(), 1);
    assert_eq!(res[0]["level"], "error");
    assert!(res[0]["message"]["text"]
        .as_str()
        .unwrap()
        .contains("corpus/app/third.bin"));
    assert_eq!(
        res[0]["locations"][0]["physicalLocation"]["region"]["startLine"],
        1
    );
    let junit = read("junit");
    let doc = roxmltree::Document::parse(&junit).unwrap();
    let case = doc
        .descendants()
        .find(|n| n.attribute("name") == Some("new since the last run"))
        .expect("since-last case");
    assert_eq!(
        case.children()
            .find(|c| c.has_tag_name("failure"))
            .unwrap()
            .attribute("type"),
        Some("new_since_last")
    );
    assert!(read("github").contains("::error file=rules/updater.yar,line=1,"));
    assert!(read("concise")
        .lines()
        .any(|l| l.starts_with("rules/updater.yar:1:1: error: new since the last run")));
    let cq: Value = serde_json::from_str(&read("codequality")).unwrap();
    assert!(cq
        .as_array()
        .unwrap()
        .iter()
        .any(|i| i["check_name"] == "fpgate/new-since-last"));
    assert!(read("markdown").contains("### Since the last run"));
    let human = read("human");
    assert!(
        human.contains("SINCE THE LAST RUN: 1 finding(s) new since the last run"),
        "{human}"
    );
    assert!(human.contains("findings per run, last 3 runs (oldest first): 1 2 3"));

    // An exception covers it: it is still listed, and no longer blocks.
    p.file_ref("corpus/app/fourth.bin", b"fetch-and-run-update!");
    p.file_ref(
        "exceptions.toml",
        "[[exception]]\nrule = \"Updater_Heuristic\"\npath = \"corpus/app/fourth.bin\"\nreason = \"known\"\nowner = \"t\"\nexpires = \"2999-01-01\"\n",
    );
    let r = gate(
        &p,
        &[
            "--since-last=block",
            "--exceptions",
            "exceptions.toml",
            "--format",
            "json",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stdout);
    let h = &r.json()["history"];
    assert_eq!(h["new_since_last"][0]["excepted"], true);
    assert_eq!(h["blocking"], 0);

    // `fpgate history` lists the four runs, newest last.
    let cache = p.join("cache");
    let r = p.run(&[
        "history",
        "--no-config",
        "--cache",
        cache.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let runs = r.json()["runs"].as_array().unwrap().clone();
    assert_eq!(runs.len(), 4);
    let findings: Vec<u64> = runs
        .iter()
        .map(|r| r["findings"].as_u64().unwrap())
        .collect();
    assert_eq!(findings, [1, 2, 3, 4]);
    assert_eq!(runs[3]["by_class"]["excepted"], 1);
    let r = p.run(&["history", "--no-config", "--cache", cache.to_str().unwrap()]);
    assert_eq!(r.stdout.lines().count(), 5, "{}", r.stdout);
    assert!(r.stdout.lines().last().unwrap().contains("rules -> corpus"));
}

/// Another series (other rules, or another command) is not "the last run
/// of these rules"; `--no-history` records nothing, and `--since-last`
/// with it is refused.
#[test]
fn series_are_kept_apart_and_no_history_records_nothing() {
    let p = nightly().file("other/updater.yar", RULE);
    let cache = p.join("cache");
    let c = cache.to_str().unwrap();
    let scan = |rules: &str, extra: &[&str]| {
        let mut a = vec![
            "scan",
            "--no-config",
            "--rules",
            rules,
            "--corpus",
            "corpus",
            "--cache",
            c,
            "--format",
            "json",
        ];
        a.extend_from_slice(extra);
        p.run(&a)
    };
    assert_eq!(scan("rules", &["--since-last"]).code, 1);
    let r = scan("other", &["--since-last"]);
    assert!(r.json()["history"]["previous"].is_null(), "another series");
    let r = scan("rules", &["--since-last"]);
    assert!(r.json()["history"]["previous"]["id"].is_i64());
    assert_eq!(
        r.json()["history"]["new_since_last"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    let before = p
        .run(&["history", "--no-config", "--cache", c, "--json"])
        .json()["runs"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(before, 3);
    assert_eq!(scan("rules", &["--no-history"]).code, 1);
    let after = p
        .run(&["history", "--no-config", "--cache", c, "--json"])
        .json()["runs"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(after, 3, "--no-history recorded a run");
    let r = scan("rules", &["--no-history", "--since-last"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("--since-last needs the run history"));
    // Without the section, a report is what it always was.
    assert!(scan("rules", &[]).json().get("history").is_none());
}

/// A history file that is not one: reported, the run goes on (report
/// mode); `block` mode cannot tell what is new and refuses (exit 2).
#[test]
fn a_damaged_history_is_reported_and_block_mode_fails_closed() {
    let p = nightly();
    let cache = p.join("cache");
    p.file_ref(
        "cache/fpgate-history.sqlite",
        b"this is not a database, just text. ".repeat(200),
    );
    let c = cache.to_str().unwrap();
    let args = |mode: &str| {
        vec![
            "scan".to_string(),
            "--no-config".into(),
            "--rules".into(),
            "rules".into(),
            "--corpus".into(),
            "corpus".into(),
            "--cache".into(),
            c.to_string(),
            "--format".into(),
            "json".into(),
            format!("--since-last={mode}"),
        ]
    };
    let r = run(p.cmd(&[]).args(args("report")));
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("fpgate-history.sqlite"), "{}", r.stderr);
    let notes = r.json()["history"]["notes"].to_string();
    assert!(notes.contains("not an fpgate run history"), "{notes}");
    let r = run(p.cmd(&[]).args(args("block")));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("fpgate-history.sqlite"), "{}", r.stderr);
    // The file was left as it was.
    assert!(std::fs::read(cache.join("fpgate-history.sqlite"))
        .unwrap()
        .starts_with(b"this is not"));
}

/// A sharded nightly: `merge` records the run, in the same series as the
/// unsharded run of the same rules and corpus.
#[test]
fn a_merged_sharded_run_joins_the_series() {
    let p = nightly();
    let cache = p.join("cache");
    let c = cache.to_str().unwrap();
    let r = gate(&p, &["--since-last", "--format", "json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    p.file_ref("corpus/app/second.bin", b"fetch-and-run-update");
    let mut parts = Vec::new();
    for k in 1..=2 {
        let part = p.join(&format!("part{k}.json"));
        let r = gate(
            &p,
            &["--shard", &format!("{k}/2"), "-o", part.to_str().unwrap()],
        );
        assert_eq!(r.code, 0, "{}", r.stderr);
        parts.push(part.to_str().unwrap().to_string());
    }
    let mut args = vec!["merge", "--cache", c, "--since-last", "--format", "json"];
    args.extend(parts.iter().map(String::as_str));
    let r = p.run(&args);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let h = &r.json()["history"];
    assert!(h["previous"]["id"].is_i64(), "{h}");
    let new = h["new_since_last"].as_array().unwrap();
    assert_eq!(new.len(), 1, "{h}");
    assert_eq!(new[0]["paths"][0], "corpus/app/second.bin");
    // Shards record nothing: their partial reports are not runs.
    let runs = p
        .run(&["history", "--no-config", "--cache", c, "--json"])
        .json()["runs"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(runs, 2);
}

/// The nightly HTML report draws the trend of the last runs (all findings,
/// per tier, per rule) as inline SVG; headless Chromium renders it, and a
/// screenshot is taken.
#[test]
fn the_html_trend_renders_in_a_headless_browser() {
    let Some(browser) = crate::reports::chromium() else {
        assert!(
            std::env::var("FPGATE_REQUIRE_BROWSER").as_deref() != Ok("1"),
            "chromium is required (apt-get install chromium)"
        );
        eprintln!("SKIPPED: no chromium on PATH; install it to run this test");
        return;
    };
    let p = nightly().file("corpus/crit/setup.exe", b"fetch-and-run-update");
    let html = p.join("nightly.html");
    for night in 0..4 {
        p.file_ref(
            &format!("corpus/app/night{night}.bin"),
            format!("night {night} fetch-and-run-update"),
        );
        let r = gate(
            &p,
            &[
                "--since-last",
                "--critical",
                "crit/**",
                "-q",
                "--report",
                &format!("html={}", html.display()),
            ],
        );
        // A persisting false positive on a critical file blocks.
        assert_eq!(r.code, 1, "{}", r.stderr);
    }
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("id=\"chart-trend\""));
    let profile = tempfile::tempdir().unwrap();
    let out = crate::reports::headless(&browser, profile.path())
        .arg("--dump-dom")
        .arg(format!("file://{}", html.display()))
        .output()
        .expect("chromium ran");
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(
        dom.contains("</html>"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for series in [
        "all findings",
        "critical tier",
        "standard tier",
        "rule Updater_Heuristic",
    ] {
        assert!(
            dom.contains(&format!("data-series=\"{series}\"")),
            "{series} not drawn"
        );
    }
    assert!(dom.contains("Trend: false positives per run (last 4 runs of these rules)"));
    assert!(dom.contains("id=\"since-last\""));
    assert!(dom.contains("corpus/app/night3.bin"));
    // The per-rule table: 3, 4, 5, 6 findings over the four nights.
    let table = dom.find("id=\"trend-rules\"").expect("trend table");
    let row_start = table
        + dom[table..]
            .find("<td>Updater_Heuristic</td>")
            .expect("trend row");
    let row = &dom[row_start..dom[row_start..].find("</tr>").unwrap() + row_start];
    assert_eq!(row.matches("<td>").count(), 5, "{row}");
    assert!(
        row.ends_with("<td>3</td><td>4</td><td>5</td><td>6</td>"),
        "{row}"
    );
    crate::reports::screenshot(&browser, profile.path(), &html, &p.join("trend.png"));
}
