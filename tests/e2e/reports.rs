//! CI-native reports, each parsed by a real parser: SARIF against the
//! official 2.1.0 JSON schema, JUnit with an XML parser, GitHub workflow
//! commands line by line, markdown tables cell by cell, HTML in a real
//! headless browser. Hostile names must survive every format intact.

use crate::common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn demo_cmd(extra: &[&str]) -> assert_cmd::Command {
    let mut c = fpgate();
    c.args([
        "gate",
        "--baseline",
        "rules/released",
        "--candidate",
        "rules/candidate",
        "--corpus",
        "corpus",
    ])
    .args(extra);
    c
}

fn demo(extra: &[&str]) -> Run {
    run(&mut demo_cmd(extra))
}

/// The SARIF 2.1.0 schema, from the serde-sarif package cargo fetched.
fn sarif_schema() -> Value {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap()).join(".cargo"));
    let src = home.join("registry/src");
    for index in std::fs::read_dir(&src).expect("cargo registry sources") {
        let p = index
            .unwrap()
            .path()
            .join("serde-sarif-0.8.0/src/schema.json");
        if p.is_file() {
            return serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap();
        }
    }
    panic!(
        "serde-sarif's schema.json not found under {}",
        src.display()
    );
}

fn validate_sarif(doc: &Value) {
    let schema = sarif_schema();
    assert!(schema["title"].as_str().unwrap().contains("2.1.0"));
    let validator = jsonschema::draft7::new(&schema).expect("schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(doc)
        .map(|e| format!("{e} at {}", e.instance_path))
        .collect();
    assert!(errors.is_empty(), "SARIF invalid: {errors:#?}");
    // And it parses into the typed SARIF model.
    let _: serde_sarif::sarif::Sarif = serde_json::from_value(doc.clone()).expect("typed SARIF");
}

#[test]
fn sarif_is_valid_and_points_at_the_rule_line() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("r.sarif");
    let r = demo(&["--report", &format!("sarif={}", out.display()), "--quiet"]);
    assert_eq!(r.code, 1);
    let doc: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    validate_sarif(&doc);
    let run = &doc["runs"][0];
    assert_eq!(run["tool"]["driver"]["name"], "fpgate");
    assert_eq!(run["tool"]["driver"]["rules"][0]["id"], "Shh_Updater_B");
    let results = run["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    for res in results {
        assert_eq!(res["ruleId"], "Shh_Updater_B");
        assert_eq!(res["ruleIndex"], 0);
        let loc = &res["locations"][0]["physicalLocation"];
        assert_eq!(
            loc["artifactLocation"]["uri"],
            "rules/candidate/updaters.yar"
        );
        assert_eq!(loc["region"]["startLine"], 11);
        assert_eq!(res["properties"]["sha256"].as_str().unwrap().len(), 64);
        assert!(res["message"]["text"].as_str().unwrap().contains("Update"));
    }
    // The fingerprint is stable across runs (code scanning tracks it).
    let again = d.path().join("again.sarif");
    demo(&["--report", &format!("sarif={}", again.display()), "--quiet"]);
    let doc2: Value = serde_json::from_slice(&std::fs::read(&again).unwrap()).unwrap();
    assert_eq!(
        results[0]["partialFingerprints"],
        doc2["runs"][0]["results"][0]["partialFingerprints"]
    );
}

#[test]
fn sarif_marks_excepted_findings_as_suppressed() {
    let dir = root().join("examples/policy-demo");
    let r = run(fpgate().current_dir(&dir).args([
        "gate",
        "--today",
        "2026-11-23",
        "--format",
        "sarif",
        "-q",
    ]));
    assert_eq!(r.code, 1);
    let doc = r.json();
    validate_sarif(&doc);
    let results = doc["runs"][0]["results"].as_array().unwrap();
    let suppressed: Vec<&Value> = results
        .iter()
        .filter(|x| x.get("suppressions").is_some())
        .collect();
    assert_eq!(suppressed.len(), 1);
    assert!(suppressed[0]["suppressions"][0]["justification"]
        .as_str()
        .unwrap()
        .contains("RULES-142"));
}

#[test]
fn junit_has_one_case_per_rule_and_fails_the_overbroad_one() {
    let r = demo(&["--format", "junit"]);
    assert_eq!(r.code, 1);
    let doc = roxmltree::Document::parse(&r.stdout).expect("well-formed XML");
    let cases: Vec<roxmltree::Node> = doc
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    assert_eq!(cases.len(), 10, "one per candidate rule");
    let failed: Vec<&roxmltree::Node> = cases
        .iter()
        .filter(|c| c.children().any(|x| x.has_tag_name("failure")))
        .collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].attribute("name"), Some("Shh_Updater_B"));
    assert_eq!(
        failed[0].attribute("file"),
        Some("rules/candidate/updaters.yar")
    );
    let text = failed[0]
        .children()
        .find(|x| x.has_tag_name("failure"))
        .unwrap()
        .text()
        .unwrap();
    assert!(
        text.contains("Squirrel.exe") && text.contains("Setup.exe"),
        "{text}"
    );
    let suite = doc
        .descendants()
        .find(|n| n.has_tag_name("testsuite"))
        .unwrap();
    assert_eq!(suite.attribute("failures"), Some("1"));
    assert_eq!(suite.attribute("errors"), Some("0"));
}

#[test]
fn junit_reports_unscanned_files_as_errors() {
    let d = Project::new()
        .file(
            "r.yar",
            "rule A { condition: false }\nrule B { condition: false }\n",
        )
        .file("corpus/ok", "x");
    std::process::Command::new("mkfifo")
        .arg(d.join("corpus/pipe"))
        .status()
        .unwrap();
    let r = d.run(&[
        "scan",
        "--no-config",
        "--rules",
        "r.yar",
        "--corpus",
        "corpus",
        "--format",
        "junit",
    ]);
    assert_eq!(r.code, 3);
    let doc = roxmltree::Document::parse(&r.stdout).unwrap();
    let errors = doc
        .descendants()
        .filter(|n| n.has_tag_name("error"))
        .count();
    assert_eq!(errors, 2);
    assert!(
        r.stdout.contains("corpus/pipe (not_regular"),
        "{}",
        r.stdout
    );
}

#[test]
fn github_annotations_and_step_summary_under_actions() {
    let d = tempfile::tempdir().unwrap();
    let summary = d.path().join("summary.md");
    std::fs::write(&summary, "previous step\n").unwrap();
    let r = run(demo_cmd(&["--quiet"])
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_STEP_SUMMARY", &summary));
    assert_eq!(r.code, 1);
    let errors: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.starts_with("::error "))
        .collect();
    assert_eq!(errors.len(), 2, "{}", r.stderr);
    for e in &errors {
        assert!(
            e.starts_with("::error file=rules/candidate/updaters.yar,line=11,title=fpgate%3A Shh_Updater_B flags a clean file::"),
            "{e}"
        );
    }
    // stdout keeps the human report only.
    assert!(!r.stdout.contains("::error"));
    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(
        md.starts_with("previous step\n## fpgate gate: "),
        "appended, not overwritten:\n{md}"
    );
    assert!(
        md.contains("| Shh\\_Updater\\_B (rules/candidate/updaters.yar:11) |"),
        "{md}"
    );
    assert!(md.contains("### Changed rules: 1 added"), "{md}");

    // Outside Actions: no workflow commands.
    let r = demo(&["--quiet"]);
    assert!(!r.stderr.contains("::error"));
}

/// A corpus and a rule whose names try to break every format.
fn hostile_project() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let rule = "rule Evil : tag { meta: description = \"<img src=x onerror=alert(1)> | `code` ]]> %0A,:\" \
                strings: $a = \"<script>\" condition: $a }\n";
    write(&d.path().join("rules/evil.yar"), rule.as_bytes());
    let name = "a|b <script>alert(1)</script> 100%,x:y\nnext]]>.bin";
    write(&d.path().join("corpus").join(name), b"xx<script>xx");
    d
}

const HOSTILE_NAME: &str = "corpus/a|b <script>alert(1)</script> 100%,x:y\nnext]]>.bin";

#[test]
fn hostile_names_survive_every_format() {
    let d = hostile_project();
    let p = d.path();
    let args = |fmt: &str| -> Vec<String> {
        [
            "scan",
            "--no-config",
            "--rules",
            "rules",
            "--corpus",
            "corpus",
            "--format",
            fmt,
            "-q",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    // JSON: exact round trip.
    let r = run(fpgate().current_dir(p).args(args("json")));
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_eq!(
        pairs(&r.json(), "new"),
        vec![("Evil".into(), HOSTILE_NAME.into())]
    );

    // SARIF: valid, and the name is intact inside the JSON strings.
    let r = run(fpgate().current_dir(p).args(args("sarif")));
    let doc = r.json();
    validate_sarif(&doc);
    assert_eq!(
        doc["runs"][0]["results"][0]["properties"]["paths"][0],
        HOSTILE_NAME
    );

    // JUnit: parses, and the parser gives back the exact name.
    let r = run(fpgate().current_dir(p).args(args("junit")));
    let x = roxmltree::Document::parse(&r.stdout).expect("XML stays well-formed");
    let failure = x.descendants().find(|n| n.has_tag_name("failure")).unwrap();
    assert!(
        failure.text().unwrap().contains(HOSTILE_NAME),
        "{:?}",
        failure.text()
    );

    // GitHub: one line per annotation, nothing broken out of its command.
    let r = run(fpgate().current_dir(p).args(args("github")));
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{}", r.stdout);
    assert!(lines[0].starts_with("::error file=rules/evil.yar,line=1,title="));
    assert!(
        lines[0].contains("100%25%2Cx%3Ay%0Anext") || lines[0].contains("100%25,x:y%0Anext"),
        "{}",
        lines[0]
    );

    // Markdown: the findings table keeps exactly four cells per row.
    let r = run(fpgate().current_dir(p).args(args("markdown")));
    let row = r
        .stdout
        .lines()
        .find(|l| l.starts_with("| Evil"))
        .expect("table row");
    let cells = row.split('|').count() - row.matches("\\|").count();
    assert_eq!(cells, 6, "4 cells between 5 pipes: {row}");
    assert!(!r.stdout.contains("<script>"), "{}", r.stdout);

    // Human: escaped control characters, no raw newline inside the name.
    let r = run(fpgate().current_dir(p).args(args("human")));
    assert!(r.stdout.contains("100%,x:y\\nnext]]>.bin"), "{}", r.stdout);
}

#[test]
fn several_reports_in_one_run_agree() {
    let d = tempfile::tempdir().unwrap();
    let f = |n: &str| d.path().join(n).display().to_string();
    let r = demo(&[
        "--format",
        "json",
        "--report",
        &format!("sarif={}", f("r.sarif")),
        "--report",
        &format!("junit={}", f("r.xml")),
        "--report",
        &format!("markdown={}", f("r.md")),
        "--report",
        &format!("html={}", f("r.html")),
    ]);
    assert_eq!(r.code, 1);
    let j = r.json();
    let sarif: Value = serde_json::from_slice(&std::fs::read(f("r.sarif")).unwrap()).unwrap();
    assert_eq!(
        sarif["runs"][0]["results"].as_array().unwrap().len() as u64,
        j["verdict"]["counts"]["blocking"].as_u64().unwrap()
    );
    let xml = std::fs::read_to_string(f("r.xml")).unwrap();
    assert!(xml.contains("failures=\"1\""));
    assert!(std::fs::read_to_string(f("r.md"))
        .unwrap()
        .contains("BLOCKED"));
    assert!(std::fs::read_to_string(f("r.html"))
        .unwrap()
        .contains("BLOCKED"));
}

#[test]
fn a_report_on_stdout_replaces_the_default_and_clashes_are_refused() {
    let r = demo(&["--report", "json=-", "-q"]);
    assert_eq!(r.code, 1);
    assert_eq!(
        r.json()["schema_version"],
        1,
        "stdout carries only the JSON report"
    );

    let d = tempfile::tempdir().unwrap();
    let same = d.path().join("same.out").display().to_string();
    let r = demo(&["--output", &same, "--report", &format!("sarif={same}")]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("would both be written to"),
        "{}",
        r.stderr
    );
    let r = demo(&["--format", "human", "--report", "json=-"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("stdout"), "{}", r.stderr);
    let r = demo(&["--report", "pdf=x.pdf"]);
    assert_eq!(r.code, 2);
}

// ---- HTML in a real browser ------------------------------------------------

pub(crate) fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|name| {
            std::env::var_os("PATH")?
                .to_str()?
                .split(':')
                .map(|d| Path::new(d).join(name))
                .find(|p| p.is_file())
        })
}

pub(crate) fn headless(browser: &Path, profile: &Path) -> std::process::Command {
    let mut c = std::process::Command::new(browser);
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1280,2000",
    ])
    .arg(format!("--user-data-dir={}", profile.display()));
    c
}

/// A screenshot of `page` to `shot`: a PNG, and not a blank one.
pub(crate) fn screenshot(browser: &Path, profile: &Path, page: &Path, shot: &Path) {
    let out = headless(browser, profile)
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    assert!(out.status.success());
    let png = std::fs::read(shot).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    assert!(png.len() > 10_000, "a blank page would be tiny");
}

#[test]
fn html_report_renders_in_a_headless_browser() {
    let Some(browser) = chromium() else {
        // CI installs chromium and sets FPGATE_REQUIRE_BROWSER=1, so there
        // this cannot pass without actually rendering.
        assert!(
            std::env::var("FPGATE_REQUIRE_BROWSER").as_deref() != Ok("1"),
            "chromium is required (apt-get install chromium)"
        );
        eprintln!("SKIPPED: no chromium on PATH; install it to run this test");
        return;
    };
    let d = hostile_project();
    let html = d.path().join("report.html");
    let r = run(fpgate()
        .current_dir(d.path())
        .args([
            "scan",
            "--no-config",
            "--rules",
            "rules",
            "--corpus",
            "corpus",
            "--report",
        ])
        .arg(format!("html={}", html.display()))
        .arg("-q"));
    assert_eq!(r.code, 1, "{}", r.stderr);
    let demo_html = d.path().join("demo.html");
    demo(&["-q", "--report", &format!("html={}", demo_html.display())]);

    for (page, must) in [
        (
            &demo_html,
            vec![
                "BLOCKED",
                "Shh_Updater_B",
                "Squirrel.exe",
                "per rule (files)",
                "per corpus format (files)",
            ],
        ),
        (&html, vec!["BLOCKED", "Evil"]),
    ] {
        let profile = tempfile::tempdir().unwrap();
        let out = headless(&browser, profile.path())
            .arg("--dump-dom")
            .arg(format!("file://{}", page.display()))
            .output()
            .expect("chromium ran");
        let dom = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && dom.contains("</html>"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        for text in must {
            assert!(dom.contains(text), "{text} not rendered");
        }
        // The script ran (it marks the table) and nothing was injected.
        assert!(
            dom.contains("data-sortable=\"ready\""),
            "sorting script did not run"
        );
        assert!(
            !dom.contains("<img src=\"x\""),
            "an injected element was created"
        );
        assert!(
            !dom.contains("<script>alert(1)"),
            "an injected script element was created"
        );

        screenshot(&browser, profile.path(), page, &d.path().join("shot.png"));
    }
    // The hostile name is shown as text.
    let profile = tempfile::tempdir().unwrap();
    let out = headless(&browser, profile.path())
        .arg("--dump-dom")
        .arg(format!("file://{}", html.display()))
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(
        dom.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "name not shown as text"
    );
}

/// `concise`: one `path:line:col: level: message` line per problem, each
/// matched by the problem matcher shipped in examples/github, then the
/// verdict line.
#[test]
fn concise_lines_fit_the_problem_matcher() {
    let r = demo(&["--format", "concise"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let matcher: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("examples/github/fpgate-problem-matcher.json"))
            .unwrap(),
    )
    .unwrap();
    let pattern = matcher["problemMatcher"][0]["pattern"][0]["regexp"]
        .as_str()
        .unwrap();
    // The matcher's regexp, checked by hand (no regex engine in the tests):
    // it must be the documented shape.
    assert_eq!(pattern, r"^(.+?):(\d+):(\d+): (error|warning): (.*)$");
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", r.stdout);
    for l in &lines[..2] {
        let (loc, rest) = l.split_once(": error: ").expect("level");
        let mut parts = loc.rsplitn(3, ':');
        let (col, line, file) = (parts.next(), parts.next(), parts.next());
        assert_eq!(file, Some("rules/candidate/updaters.yar"), "{l}");
        assert!(line.unwrap().parse::<u32>().unwrap() > 0, "{l}");
        assert_eq!(col, Some("1"), "{l}");
        assert!(rest.contains("Shh_Updater_B"), "{l}");
    }
    assert!(lines[2].starts_with("BLOCKED: "), "{}", lines[2]);
    // The verdict is on stdout already: not repeated on stderr.
    assert!(!r.stderr.contains("BLOCKED"), "{}", r.stderr);
}

/// GitLab Code Quality: a JSON array of issues with the fields GitLab
/// reads, one per false positive, fingerprints stable across runs.
#[test]
fn codequality_report_has_gitlabs_fields() {
    let r = demo(&["--format", "codequality"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let j: Value = serde_json::from_str(&r.stdout).unwrap();
    let issues = j.as_array().expect("an array");
    assert_eq!(issues.len(), 2);
    for i in issues {
        for k in ["description", "check_name", "fingerprint", "severity"] {
            assert!(i[k].is_string(), "{k} in {i}");
        }
        assert_eq!(i["severity"], "blocker", "critical tier: {i}");
        assert_eq!(i["location"]["path"], "rules/candidate/updaters.yar");
        assert!(i["location"]["lines"]["begin"].as_u64().unwrap() > 0);
    }
    let again: Value = serde_json::from_str(&demo(&["--format", "codequality"]).stdout).unwrap();
    assert_eq!(j, again, "stable across runs");
}

/// docs/report.schema.json is the schema of the JSON report, generated from
/// the report's own types (regenerate with FPGATE_BLESS=1), and real reports
/// (the demo's, a report with exceptions and unscanned files) validate
/// against it.
#[test]
fn json_report_schema_is_current_and_reports_validate() {
    let path = root().join("docs/report.schema.json");
    let generated = fpgate::verdict::report::json_schema();
    if std::env::var_os("FPGATE_BLESS").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        on_disk == generated,
        "docs/report.schema.json is out of date: FPGATE_BLESS=1 cargo test --release --features profiling json_report_schema"
    );
    let schema: Value = serde_json::from_str(&generated).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("a valid JSON Schema");
    let mut reports = vec![demo(&["--format", "json"]).json()];
    let policy = root().join("examples/policy-demo");
    reports.push(
        run(fpgate().current_dir(&policy).args([
            "gate",
            "--today",
            "2026-11-23",
            "--format",
            "json",
        ]))
        .json(),
    );
    // With the history and triage sections (twice: a previous run and a
    // trend of two).
    let cache = tempfile::tempdir().unwrap();
    for _ in 0..2 {
        reports.push(
            demo(&[
                "--format",
                "json",
                "--explain",
                "--since-last",
                "--cache",
                cache.path().to_str().unwrap(),
            ])
            .json(),
        );
    }
    assert!(reports[3]["history"]["previous"]["id"].is_i64());
    assert!(reports[3]["triage"]["rules"][0]["suggestions"].is_array());
    for r in &reports {
        let errors: Vec<String> = validator.iter_errors(r).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{errors:#?}");
    }
}
