//! The CI recipes in examples/ parse, wire the reports they produce into the
//! CI features they name, and the pull-request one, run locally against the
//! Shh/Updater-B example, fails with an annotation on the overbroad rule.

mod common;
use common::*;
use yaml_rust2::{Yaml, YamlLoader};

fn load(path: &str) -> Yaml {
    let text = std::fs::read_to_string(root().join(path)).unwrap();
    let mut docs = YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    assert_eq!(docs.len(), 1);
    docs.remove(0)
}

fn step<'a>(steps: &'a Yaml, name: &str) -> &'a Yaml {
    steps
        .as_vec()
        .unwrap()
        .iter()
        .find(|s| s["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("no step {name:?}"))
}

#[test]
fn github_pull_request_workflow_is_wired() {
    let y = load("examples/github/fpgate-pr.yml");
    assert!(!y["on"]["pull_request"].is_badvalue());
    assert_eq!(y["permissions"]["security-events"].as_str(), Some("write"));
    let steps = &y["jobs"]["gate"]["steps"];
    let checkout = &steps[0];
    assert_eq!(
        checkout["with"]["fetch-depth"].as_i64(),
        Some(0),
        "--baseline-ref needs history"
    );
    let gate = step(steps, "Gate the rule update")["run"].as_str().unwrap();
    assert!(gate.contains("--baseline-ref"));
    assert!(gate.contains("--report sarif=fpgate.sarif"));
    let upload = step(steps, "Upload SARIF to code scanning");
    assert_eq!(
        upload["if"].as_str(),
        Some("always()"),
        "upload even when the gate fails"
    );
    assert!(upload["uses"]
        .as_str()
        .unwrap()
        .starts_with("github/codeql-action/upload-sarif"));
    assert_eq!(upload["with"]["sarif_file"].as_str(), Some("fpgate.sarif"));
}

#[test]
fn github_nightly_workflow_is_wired() {
    let y = load("examples/github/fpgate-nightly.yml");
    assert!(y["on"]["schedule"][0]["cron"].as_str().is_some());
    let steps = &y["jobs"]["scan"]["steps"];
    assert!(step(steps, "Build the clean corpus")["run"]
        .as_str()
        .unwrap()
        .contains("corpus/fetch.sh"));
    let scan = step(steps, "Scan with the released rules")["run"]
        .as_str()
        .unwrap();
    assert!(scan.contains("--report html=fpgate-nightly.html"));
}

#[test]
fn gitlab_job_wires_the_junit_report() {
    let y = load("examples/gitlab/.gitlab-ci.yml");
    let job = &y["fpgate"];
    let script: Vec<&str> = job["script"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert!(script
        .iter()
        .any(|l| l.contains("--report junit=fpgate-junit.xml")));
    assert!(script.iter().any(|l| l.contains("--baseline-ref")));
    assert_eq!(
        job["artifacts"]["reports"]["junit"].as_str(),
        Some("fpgate-junit.xml")
    );
    assert_eq!(job["artifacts"]["when"].as_str(), Some("always"));
}

#[test]
fn pull_request_workflow_run_locally_blocks_with_an_annotation_on_the_rule_line() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .current_dir(p)
            .args(["-c", "user.name=ci", "-c", "user.email=ci@example.org"])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    // A rules repository: the released rules on main...
    std::fs::create_dir_all(p.join("rules")).unwrap();
    for entry in std::fs::read_dir(root().join("rules/released")).unwrap() {
        let e = entry.unwrap();
        std::fs::copy(e.path(), p.join("rules").join(e.file_name())).unwrap();
    }
    write(
        &p.join("fpgate.toml"),
        format!(
            "[rules]\ncandidate = [\"rules\"]\n\n[corpus]\npaths = [\"{}\"]\nexclude = [\"MANIFEST\", \"fetch.sh\"]\n",
            root().join("corpus").display()
        )
        .as_bytes(),
    );
    git(&["init", "-q", "-b", "main"]);
    git(&["add", "."]);
    git(&["commit", "-q", "-m", "released rules"]);
    git(&["update-ref", "refs/remotes/origin/main", "main"]);
    // ...and a pull request that adds the Shh/Updater-B rule.
    git(&["checkout", "-q", "-b", "update"]);
    std::fs::copy(
        root().join("rules/candidate/updaters.yar"),
        p.join("rules/updaters.yar"),
    )
    .unwrap();
    git(&["add", "."]);
    git(&["commit", "-q", "-m", "add updater heuristic"]);

    let y = load("examples/github/fpgate-pr.yml");
    let script = step(&y["jobs"]["gate"]["steps"], "Gate the rule update")["run"]
        .as_str()
        .unwrap()
        .replace("${{ github.base_ref }}", "main");
    let bin_dir = assert_cmd::cargo::cargo_bin("fpgate")
        .parent()
        .unwrap()
        .to_path_buf();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap());
    let summary = p.join("step-summary.md");
    let out = std::process::Command::new("bash")
        .current_dir(p)
        .args(["-e", "-c", &script])
        .env("PATH", path)
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_STEP_SUMMARY", &summary)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "the check fails:\n{stderr}");
    assert!(
        stderr.contains("::error file=rules/updaters.yar,line=11,title=fpgate%3A Shh_Updater_B flags a clean file::"),
        "{stderr}"
    );
    let sarif: serde_json::Value =
        serde_json::from_slice(&std::fs::read(p.join("fpgate.sarif")).unwrap()).unwrap();
    let loc = &sarif["runs"][0]["results"][0]["locations"][0]["physicalLocation"];
    assert_eq!(loc["artifactLocation"]["uri"], "rules/updaters.yar");
    assert_eq!(loc["region"]["startLine"], 11);
    assert!(p.join("fpgate-junit.xml").is_file() && p.join("fpgate-report.html").is_file());
    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(
        md.contains("BLOCKED") && md.contains("added: `Shh_Updater_B`"),
        "{md}"
    );
}
