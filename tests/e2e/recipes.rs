//! The CI recipes in examples/ parse, wire the reports they produce into the
//! CI features they name, and the pull-request one, run locally against the
//! Shh/Updater-B example, fails with an annotation on the overbroad rule.

use crate::common::*;
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
    let fetch = step(steps, "Fetch the clean corpus")["run"]
        .as_str()
        .unwrap();
    assert!(
        fetch.contains("fpgate corpus fetch --recipe fpgate-corpus.toml"),
        "{fetch}"
    );
    let scan = step(steps, "Scan with the released rules")["run"]
        .as_str()
        .unwrap();
    assert!(scan.contains("--report html=fpgate-nightly.html"));
    // What is new since last night needs last night's history.
    assert!(scan.contains("--since-last"));
    let cache = step(steps, "Restore the results cache and the run history");
    assert_eq!(cache["with"]["path"].as_str(), Some("~/.cache/fpgate"));
    assert_eq!(
        cache["with"]["restore-keys"].as_str(),
        Some("fpgate-nightly-")
    );
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
    assert!(script
        .iter()
        .any(|l| l.contains("--report codequality=gl-code-quality.json")));
    assert_eq!(
        job["artifacts"]["reports"]["codequality"].as_str(),
        Some("gl-code-quality.json")
    );
    assert_eq!(job["artifacts"]["when"].as_str(), Some("always"));
    assert!(
        !script.iter().any(|l| l.contains("cargo build")),
        "installed once, not built per run"
    );
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
    // The corpus lies in the repository: a config may name nothing else.
    copy_dir(&root().join("corpus"), &p.join("corpus"));
    write(
        &p.join("fpgate.toml"),
        b"[rules]\ncandidate = [\"rules\"]\n\n[corpus]\npaths = [\"corpus\"]\nexclude = [\"MANIFEST\"]\n",
    );
    git(&["init", "-q", "-b", "main"]);
    git(&["add", "."]);
    git(&["commit", "-q", "-m", "released rules"]);
    git(&["update-ref", "refs/remotes/origin/main", "main"]);
    // ...and a pull request that adds the Shh/Updater-B rule, and an
    // exception for it in the same change (the policy comes from the base:
    // it does not apply, and it is shown).
    git(&["checkout", "-q", "-b", "update"]);
    std::fs::copy(
        root().join("rules/candidate/updaters.yar"),
        p.join("rules/updaters.yar"),
    )
    .unwrap();
    write(
        &p.join("fpgate-exceptions.toml"),
        b"[[exception]]\nrule = \"Shh_Updater_B\"\npath = \"**\"\nreason = \"mine\"\nowner = \"pr\"\nexpires = \"2099-01-01\"\ncritical = true\n",
    );
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
    assert!(
        md.contains("Applied: the base revision's policy")
            && md.contains("exception added for rule Shh\\_Updater\\_B"),
        "{md}"
    );
    assert!(
        stderr.contains("::warning file=fpgate-exceptions.toml,line=1,title=fpgate%3A the gate's policy relaxes::"),
        "{stderr}"
    );
}

/// Copy the rules and the corpus into `dir` (the recipes' scripts run there).
fn stage(dir: &std::path::Path) {
    for sub in ["rules", "corpus"] {
        copy_dir(&root().join(sub), &dir.join(sub));
    }
}

/// A small corpus recipe at `path`: two artifacts served from `file:` URLs
/// under `dir` (a real binary of the corpus, and a text file), pinned.
fn stage_recipe(dir: &std::path::Path, path: &std::path::Path) {
    use sha2::Digest;
    let served = dir.join("served");
    std::fs::create_dir_all(&served).unwrap();
    let mut text = String::new();
    for (name, from) in [
        (
            "vendor/rcedit.exe",
            root().join("corpus/npm/electron-winstaller-5.4.4/rcedit.exe"),
        ),
        ("notes.txt", root().join("rules/released/packers.yar")),
    ] {
        let bytes = std::fs::read(&from).unwrap();
        let file = served.join(name.replace('/', "_"));
        std::fs::write(&file, &bytes).unwrap();
        let pin: String = sha2::Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        text.push_str(&format!(
            "[[artifact]]\nname = {name:?}\nurl = \"file://{}\"\nsha256 = \"{pin}\"\n\n",
            file.display()
        ));
    }
    std::fs::write(path, text).unwrap();
}

/// Run a recipe's shell script with fpgate on PATH.
fn sh(dir: &std::path::Path, script: &str, env: &[(&str, String)]) -> std::process::Output {
    let bin_dir = assert_cmd::cargo::cargo_bin("fpgate")
        .parent()
        .unwrap()
        .to_path_buf();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap());
    let mut c = std::process::Command::new("sh");
    c.current_dir(dir)
        .args(["-c", script])
        .env("PATH", path)
        .env("FPGATE_CACHE", test_cache())
        .env_remove("GITHUB_ACTIONS");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn without_timings(mut v: serde_json::Value) -> serde_json::Value {
    v.as_object_mut().unwrap().remove("timings");
    v
}

#[test]
fn github_sharded_workflow_merges_like_one_run() {
    let y = load("examples/github/fpgate-sharded.yml");
    let shards = y["env"]["SHARDS"].as_i64().unwrap();
    let matrix: Vec<i64> = y["jobs"]["shard"]["strategy"]["matrix"]["shard"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    assert_eq!(matrix, (1..=shards).collect::<Vec<_>>());
    let merge_job = &y["jobs"]["merge"];
    assert_eq!(merge_job["needs"].as_str(), Some("shard"));
    assert_eq!(merge_job["if"].as_str(), Some("always()"));

    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    stage(p);
    let runner_temp = p.join("runner");
    std::fs::create_dir_all(runner_temp.join("clean-corpus")).unwrap();
    std::fs::copy(
        root().join("rules/released/packers.yar"),
        runner_temp.join("clean-corpus/not-a-binary.txt"),
    )
    .unwrap();
    let env = [
        ("RUNNER_TEMP", runner_temp.display().to_string()),
        ("SHARDS", shards.to_string()),
        ("FPGATE_STORE", p.join("store").display().to_string()),
    ];
    // The recipe, fetched by the workflow's own step.
    stage_recipe(p, &p.join("fpgate-corpus.toml"));
    let fetch = step(&y["jobs"]["shard"]["steps"], "Fetch the clean corpus")["run"]
        .as_str()
        .unwrap();
    let out = sh(p, fetch, &env);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let scan = step(&y["jobs"]["shard"]["steps"], "Scan one shard")["run"]
        .as_str()
        .unwrap();
    std::fs::create_dir_all(p.join("parts")).unwrap();
    for k in &matrix {
        let out = sh(
            p,
            &scan.replace("${{ matrix.shard }}", &k.to_string()),
            &env,
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // What download-artifact with merge-multiple does.
        std::fs::rename(
            p.join(format!("fpgate-part-{k}.json")),
            p.join(format!("parts/fpgate-part-{k}.json")),
        )
        .unwrap();
    }
    let merge = step(&merge_job["steps"], "Merge into one verdict")["run"]
        .as_str()
        .unwrap();
    let out = sh(p, merge, &env);
    let one = sh(
        p,
        "fpgate scan --rules rules/released --corpus corpus --recipe fpgate-corpus.toml --format json",
        &env,
    );
    assert_eq!(out.status.code(), one.status.code());
    let merged: serde_json::Value =
        serde_json::from_slice(&std::fs::read(p.join("fpgate-nightly.json")).unwrap()).unwrap();
    let single: serde_json::Value = serde_json::from_slice(&one.stdout).unwrap();
    assert_eq!(single["corpus"]["recipe"]["artifacts"], 2, "{single:#}");
    assert_eq!(without_timings(merged), without_timings(single));
    assert!(p.join("fpgate-junit.xml").is_file() && p.join("fpgate-nightly.html").is_file());
}

#[test]
fn kubernetes_indexed_job_merges_like_one_run() {
    let text =
        std::fs::read_to_string(root().join("examples/kubernetes/fpgate-shards.yaml")).unwrap();
    let docs = YamlLoader::load_from_str(&text).unwrap();
    assert_eq!(docs.len(), 2);
    // Two CronJobs, every night, never overlapping themselves.
    for d in &docs {
        assert_eq!(d["kind"].as_str(), Some("CronJob"));
        assert_eq!(d["spec"]["schedule"], docs[0]["spec"]["schedule"]);
        assert_eq!(d["spec"]["concurrencyPolicy"].as_str(), Some("Forbid"));
    }
    let (shards_job, merge_job) = (
        &docs[0]["spec"]["jobTemplate"],
        &docs[1]["spec"]["jobTemplate"],
    );
    assert_eq!(
        shards_job["spec"]["completionMode"].as_str(),
        Some("Indexed")
    );
    let completions = shards_job["spec"]["completions"].as_i64().unwrap();
    let container = |job: &Yaml| job["spec"]["template"]["spec"]["containers"][0].clone();
    let env_shards = |c: &Yaml| {
        c["env"]
            .as_vec()
            .unwrap()
            .iter()
            .find(|e| e["name"].as_str() == Some("SHARDS"))
            .unwrap()["value"]
            .as_str()
            .unwrap()
            .parse::<i64>()
            .unwrap()
    };
    let (sc, mc) = (container(shards_job), container(merge_job));
    assert_eq!(env_shards(&sc), completions);
    assert_eq!(env_shards(&mc), completions);

    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    stage(p);
    // The rules repository's fpgate.toml, read through --config.
    write(
        &p.join("rules/fpgate.toml"),
        b"[corpus]\ncritical = [\"**/Squirrel.exe\"]\n",
    );
    stage_recipe(p, &p.join("rules/fpgate-corpus.toml"));
    assert!(sc["args"][0]
        .as_str()
        .unwrap()
        .contains("--config /data/rules/fpgate.toml"));
    // The pod's mounts, as directories here.
    let local = |script: &str| {
        script
            .replace("/data/rules", &p.join("rules").display().to_string())
            .replace("/data/corpus", &p.join("corpus").display().to_string())
            .replace("/results", &p.join("results").display().to_string())
            .replace("/cache", &p.join("cache").display().to_string())
    };
    let shard_script = local(sc["args"][0].as_str().unwrap());
    for index in 0..completions {
        let out = sh(
            p,
            &shard_script,
            &[
                ("JOB_COMPLETION_INDEX", index.to_string()),
                ("SHARDS", completions.to_string()),
            ],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = sh(
        p,
        &local(mc["args"][0].as_str().unwrap()),
        &[("SHARDS", completions.to_string())],
    );
    let one = sh(
        p,
        &local("fpgate scan --config /data/rules/fpgate.toml --rules /data/rules/released --corpus /data/corpus --recipe /data/rules/fpgate-corpus.toml --store /cache/corpus-store --no-cache --format json"),
        &[],
    );
    assert_eq!(
        out.status.code(),
        one.status.code(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !p.join("results/tonight").exists(),
        "tonight's partials are moved away"
    );
    let done = std::fs::read_dir(p.join("results"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let merged: serde_json::Value =
        serde_json::from_slice(&std::fs::read(done.join("fpgate-nightly.json")).unwrap()).unwrap();
    let single: serde_json::Value = serde_json::from_slice(&one.stdout).unwrap();
    assert_eq!(without_timings(merged), without_timings(single));
}

/// The pre-commit hooks run `fpgate gate --baseline-ref HEAD` in a rules
/// repository: run here, exactly as the hook's entry says, in a throwaway
/// git repository with no Cargo.toml, a committed clean rule, and then an
/// overbroad one staged on top.
#[test]
fn pre_commit_hook_gates_staged_rules_against_head() {
    let hooks = load(".pre-commit-hooks.yaml");
    let hooks = hooks.as_vec().expect("a list of hooks");
    assert!(hooks.len() >= 2);
    let entry = hooks[0]["entry"].as_str().expect("entry").to_string();
    for h in hooks {
        assert_eq!(h["entry"].as_str(), Some(entry.as_str()));
        assert_eq!(h["pass_filenames"].as_bool(), Some(false));
    }
    let args: Vec<&str> = entry.split_whitespace().collect();
    assert_eq!(args[..2], ["fpgate", "gate"]);
    let d = Project::new()
        .file(
            "fpgate.toml",
            "[rules]\ncandidate = [\"rules\"]\n[corpus]\npaths = [\"corpus\"]\n",
        )
        .file(
            "rules/clean.yar",
            "rule Clean { strings: $a = \"never here 1f3e\" condition: $a }\n",
        )
        .corpus(&[("updater.exe", b"MZ ... Update.exe ... Downloading")]);
    let git = |a: &[&str]| {
        let ok = std::process::Command::new("git")
            .current_dir(d.path())
            .args(["-c", "user.email=t@example.org", "-c", "user.name=t"])
            .args(a)
            .status()
            .unwrap()
            .success();
        assert!(ok, "git {a:?}");
    };
    git(&["init", "-q"]);
    git(&["add", "-A"]);
    git(&["commit", "-qm", "released rules"]);
    assert!(!d.join("Cargo.toml").exists());
    let r = d.run(&args[1..]);
    assert_eq!(r.code, 0, "nothing changed: {}", r.stderr);
    d.file_ref(
        "rules/updaters.yar",
        "rule Updater { strings: $u = \"Update.exe\" condition: $u }\n",
    );
    git(&["add", "rules/updaters.yar"]);
    let r = d.run(&args[1..]);
    assert_eq!(
        r.code, 1,
        "the staged rule flags a clean file: {}",
        r.stderr
    );
    assert!(r.stdout.contains("Updater"), "{}", r.stdout);
}

/// `cargo install` gets what fpgate needs and nothing else: the sources,
/// the lock file, the README and the licence; no corpus binaries, example
/// rules, tests or CI recipes.
#[test]
fn the_package_holds_what_install_needs() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .current_dir(root())
        .args(["package", "--list", "--allow-dirty", "--quiet"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list = String::from_utf8_lossy(&out.stdout);
    let files: Vec<&str> = list.lines().collect();
    for need in [
        "Cargo.toml",
        "Cargo.lock",
        "README.md",
        "LICENSE",
        "src/main.rs",
        "src/lib.rs",
    ] {
        assert!(files.contains(&need), "{need} missing from the package");
    }
    for f in &files {
        let top = f.split('/').next().unwrap();
        assert!(
            [
                "src",
                "Cargo.toml",
                "Cargo.toml.orig",
                "Cargo.lock",
                "README.md",
                "LICENSE",
                ".cargo_vcs_info.json"
            ]
            .contains(&top),
            "{f} is in the package"
        );
    }
}

/// What crates.io would be sent passes its checks (metadata, size, the
/// dependencies resolvable from the registry with the lock file): `cargo
/// publish --dry-run`. Not verified by a build here: that compiles yara-x
/// from scratch in a separate target directory (minutes); the installed
/// binary the recipes use is built from the same files.
#[test]
fn the_package_would_publish() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .current_dir(root())
        .args([
            "publish",
            "--dry-run",
            "--no-verify",
            "--locked",
            "--allow-dirty",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("aborting upload due to dry run"), "{err}");
    // The only warnings: the tests and benchmarks stay out of the package.
    for w in err.lines().filter(|l| l.starts_with("warning:")) {
        assert!(
            w.contains("is not included in the published package")
                || w.contains("aborting upload due to dry run")
                // No public home yet: no repository URL that would not exist.
                || w.contains("manifest has no documentation, homepage or repository"),
            "{w}"
        );
    }
}

/// Run a recipe's step script with a `$HOME` whose `.fpgate/bin/fpgate` is
/// the binary under test (as the Actions cache restores it) and no cargo on
/// PATH: the install step must not build, and must put fpgate on the path.
fn run_installed(
    dir: &std::path::Path,
    script: &str,
    env: &[(&str, String)],
) -> std::process::Output {
    let home = dir.join("home");
    std::fs::create_dir_all(home.join(".fpgate/bin")).unwrap();
    let bin = home.join(".fpgate/bin/fpgate");
    if !bin.exists() {
        std::os::unix::fs::symlink(assert_cmd::cargo::cargo_bin("fpgate"), &bin).unwrap();
    }
    let mut c = std::process::Command::new("bash");
    c.current_dir(dir)
        .args(["-c", script])
        .env("HOME", &home)
        .env("PATH", "/usr/bin:/bin")
        .env("FPGATE_CACHE", test_cache())
        .env_remove("GITHUB_ACTIONS");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

/// No recipe compiles fpgate per run: the pull-request one installs a pinned
/// version once (cached), the sharded one builds once and the shards
/// download the binary; the install step, run here with the cache restored,
/// builds nothing and puts fpgate on the path.
#[test]
fn recipes_install_once_and_need_no_cargo_toml() {
    for f in [
        "examples/github/fpgate-pr.yml",
        "examples/github/fpgate-sharded.yml",
    ] {
        let text = std::fs::read_to_string(root().join(f)).unwrap();
        assert!(!text.contains("cargo build"), "{f} builds fpgate per run");
    }
    let y = load("examples/github/fpgate-pr.yml");
    let install = step(&y["jobs"]["gate"]["steps"], "Install fpgate")["run"]
        .as_str()
        .unwrap();
    assert!(install.contains("cargo install --locked"), "{install}");
    let d = tempfile::tempdir().unwrap();
    let gh_path = d.path().join("github_path");
    let out = run_installed(
        d.path(),
        install,
        &[("GITHUB_PATH", gh_path.display().to_string())],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let added = std::fs::read_to_string(&gh_path).unwrap();
    assert_eq!(
        added.trim(),
        d.path().join("home/.fpgate/bin").display().to_string()
    );

    let y = load("examples/github/fpgate-sharded.yml");
    assert_eq!(y["jobs"]["shard"]["needs"].as_str(), Some("build"));
    let shard_steps = &y["jobs"]["shard"]["steps"];
    assert_eq!(
        step(shard_steps, "Fetch fpgate")["with"]["name"].as_str(),
        Some("fpgate-bin")
    );
    let share = step(&y["jobs"]["build"]["steps"], "Share fpgate");
    assert_eq!(share["with"]["name"].as_str(), Some("fpgate-bin"));
}

/// The composite action: installs once (here: restored), then runs fpgate
/// with the given arguments, split on whitespace and never expanded by the
/// shell, and fails with fpgate's exit code.
#[test]
fn composite_action_runs_fpgate_with_its_exit_code() {
    let y = load("action.yml");
    assert_eq!(y["runs"]["using"].as_str(), Some("composite"));
    assert!(!y["inputs"]["args"]["required"].is_badvalue());
    let steps = &y["runs"]["steps"];
    let install = step(steps, "Install fpgate")["run"].as_str().unwrap();
    let run_step = step(steps, "Run fpgate")["run"].as_str().unwrap();
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    stage(p);
    let gh_path = p.join("github_path");
    let env = |args: &str| {
        vec![
            ("GITHUB_PATH", gh_path.display().to_string()),
            ("FPGATE_VERSION", "v0.1.0".to_string()),
            ("GITHUB_ACTION_PATH", root().display().to_string()),
            ("FPGATE_ARGS", args.to_string()),
        ]
    };
    let out = run_installed(p, install, &env(""));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let gate =
        "gate --no-config --baseline rules/released --candidate rules/candidate --corpus corpus -q";
    let out = run_installed(p, run_step, &env(gate));
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Arguments are not evaluated by the shell.
    let out = run_installed(
        p,
        run_step,
        &env("scan --no-config --rules $(touch pwned) *"),
    );
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!p.join("pwned").exists());
}

/// The image recipe (not built by the tests: no container daemon here):
/// multi-stage, installs with --locked from the package's own files, runs
/// as a non-root user, and has git for --baseline-ref; the Kubernetes
/// recipe uses the tag it documents.
#[test]
fn dockerfile_is_multi_stage_non_root_and_locked() {
    let text = std::fs::read_to_string(root().join("examples/docker/Dockerfile")).unwrap();
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .collect();
    let froms: Vec<&&str> = lines.iter().filter(|l| l.starts_with("FROM ")).collect();
    assert_eq!(froms.len(), 2, "build and runtime stages");
    assert!(text.contains("cargo install --locked --path ."));
    assert!(text.contains("COPY --from=build /out/bin/fpgate"));
    let user = lines
        .iter()
        .rev()
        .find(|l| l.starts_with("USER "))
        .expect("USER");
    assert!(!user.contains("root") && !user.ends_with(" 0"), "{user}");
    assert!(text.contains(" git "), "git for --baseline-ref");
    // The build context has what the package has (see Cargo.toml include).
    for f in ["Cargo.toml", "Cargo.lock", "README.md", "LICENSE", "src"] {
        assert!(root().join(f).exists());
        assert!(text.contains(f), "{f} copied");
    }
    let k8s =
        std::fs::read_to_string(root().join("examples/kubernetes/fpgate-shards.yaml")).unwrap();
    assert!(k8s.contains("image: fpgate:0.1.0") && text.contains("-t fpgate:0.1.0"));
}
