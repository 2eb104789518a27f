//! Secure by default: a pull request can never widen what the gate reads or
//! prints. A token is planted where a CI runner keeps credentials (a file
//! outside the checkout, the checkout's `.git/config`, the environment);
//! each hostile change is run with the command the README gives the CI gate
//! and with each recipe's command, and every output (stdout, stderr, every
//! report format, the run history, the results cache) is searched for it.

use crate::common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// `ghp_` and 36 letters and digits, as a GitHub token.
const TOKEN: &str = "ghp_LeakCanary0123456789abcdefghijKLMNOP";
/// The rule a hostile change adds to print the token as evidence.
const TOKEN_RULE: &str = "rule tok { strings: $t = /ghp_[A-Za-z0-9]{36}/ condition: $t }\n";
const BASE_CONFIG: &str = "[rules]\ncandidate = [\"rules\"]\n\n[corpus]\npaths = [\"corpus\"]\n";

/// Every form the token's secret part could take in an output: as text,
/// as spaced and packed hex (evidence), as a JSON byte list.
fn needles() -> Vec<Vec<u8>> {
    let secret = &TOKEN.as_bytes()[4..20];
    let spaced: Vec<String> = secret.iter().map(|b| format!("{b:02x}")).collect();
    let list: Vec<String> = secret.iter().map(|b| b.to_string()).collect();
    vec![
        secret.to_vec(),
        spaced.join(" ").into_bytes(),
        spaced.join(" ").to_uppercase().into_bytes(),
        spaced.concat().into_bytes(),
        list.join(",").into_bytes(),
    ]
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// A rules repository at its base commit, with the token in a credentials
/// file outside it and in its `.git/config` (as actions/checkout keeps it).
struct Repo {
    p: Project,
    /// Holds `creds/netrc`, outside the checkout.
    outside: tempfile::TempDir,
}

impl Repo {
    fn new(base_config: &str) -> Repo {
        let p = Project::new();
        copy_dir(&root().join("rules/released"), &p.join("rules"));
        let setuptools = root().join("corpus/pypi/setuptools-75.6.0");
        for f in ["cli.exe", "gui.exe"] {
            std::fs::create_dir_all(p.join("corpus")).unwrap();
            std::fs::copy(setuptools.join(f), p.join("corpus").join(f)).unwrap();
        }
        p.file_ref("fpgate.toml", base_config);
        p.git(&["init", "-q"]);
        p.git(&[
            "config",
            "http.https://github.com/.extraheader",
            &format!("AUTHORIZATION: basic {TOKEN}"),
        ]);
        p.git(&["add", "-A"]);
        p.git(&["commit", "-qm", "base"]);
        let outside = tempfile::tempdir().unwrap();
        write(
            &outside.path().join("creds/netrc"),
            format!("machine github.com login ci password {TOKEN}\n").as_bytes(),
        );
        // The change adds the rule that would print the token.
        p.file_ref("rules/tok.yar", TOKEN_RULE);
        Repo { p, outside }
    }

    fn creds(&self) -> PathBuf {
        self.outside.path().join("creds")
    }

    fn link(&self, target: &Path, at: &str) {
        let at = self.p.join(at);
        std::fs::create_dir_all(at.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(target, at).unwrap();
    }
}

/// The commands CI runs on a pull request: the README's gate, the GitHub
/// and GitLab recipes', the composite action's, the pre-commit hook's, and
/// the nightly scan's; each writes every report format.
fn commands() -> Vec<(&'static str, Vec<&'static str>)> {
    vec![
        ("README", vec!["gate", "--baseline-ref", "HEAD"]),
        (
            "PR recipe",
            vec!["gate", "--baseline-ref", "HEAD", "--policy-from-base"],
        ),
        (
            "pre-commit hook",
            vec!["gate", "--baseline-ref", "HEAD", "--policy-from-worktree"],
        ),
        ("nightly scan", vec!["scan", "--rules", "rules"]),
        (
            "sharded scan",
            vec!["scan", "--rules", "rules", "--shard", "1/1"],
        ),
    ]
}

const REPORTS: &[&str] = &[
    "json",
    "sarif",
    "junit",
    "markdown",
    "html",
    "codequality",
    "github",
    "concise",
];

/// Run each command on the change with every report, a results cache and
/// run history of its own, and the token in the environment; return what
/// each printed and wrote. A leak fails the test, naming command and place.
fn assert_no_leak(r: &Repo, what: &str) -> Vec<(String, Run)> {
    let mut runs = Vec::new();
    for (name, args) in commands() {
        let out = tempfile::tempdir().unwrap();
        let cache = out.path().join("cache");
        let mut cmd = r.p.cmd(&args);
        cmd.arg("--cache").arg(&cache).env("GITHUB_TOKEN", TOKEN);
        if args.contains(&"--shard") {
            // A shard writes its partial report only (merged elsewhere).
            cmd.arg("-o").arg(out.path().join("part.json"));
        } else {
            for f in REPORTS {
                cmd.arg("--report").arg(format!(
                    "{f}={}",
                    out.path().join(format!("r.{f}")).display()
                ));
            }
        }
        let run = run(&mut cmd);
        assert!(
            !run.stderr.contains("panicked"),
            "{what} / {name}: {}",
            run.stderr
        );
        let mut places: Vec<(String, Vec<u8>)> = vec![
            ("stdout".into(), run.stdout.clone().into_bytes()),
            ("stderr".into(), run.stderr.clone().into_bytes()),
        ];
        for e in walkdir::WalkDir::new(out.path()) {
            let e = e.unwrap();
            if e.file_type().is_file() {
                places.push((
                    e.path().display().to_string(),
                    std::fs::read(e.path()).unwrap(),
                ));
            }
        }
        for (place, bytes) in &places {
            for n in needles() {
                assert!(
                    !contains(bytes, &n),
                    "{what} / {name}: the token reached {place} (exit {}):\n{}\n{}",
                    run.code,
                    run.stdout,
                    run.stderr
                );
            }
        }
        if let Ok(j) = serde_json::from_slice::<Value>(
            &std::fs::read(out.path().join("r.json")).unwrap_or_default(),
        ) {
            let hit = ["new", "persisting", "excepted"].iter().any(|c| {
                j["false_positives"][c]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|f| f["rule"]["identifier"] == "tok")
            });
            assert!(!hit, "{what} / {name}: the token rule matched");
        }
        runs.push((name.to_string(), run));
    }
    runs
}

/// The README's command (`gate --baseline-ref BASE`), with `extra`
/// flags, as a JSON report.
fn gate(r: &Repo, extra: &[&str]) -> Run {
    let mut args = vec![
        "gate",
        "--baseline-ref",
        "HEAD",
        "--no-cache",
        "--format",
        "json",
    ];
    args.extend(extra);
    r.p.run(&args)
}

/// The README's command: the base's policy, and the change's edit listed.
fn readme_gate(r: &Repo) -> Value {
    gate(r, &[]).json()
}
fn setting<'a>(j: &'a Value, key: &str) -> &'a Value {
    j["policy_changes"]["settings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["key"] == key)
        .unwrap_or_else(|| panic!("{key} listed: {}", j["policy_changes"]))
}

#[test]
fn route_1_a_corpus_path_to_the_runners_files_in_the_change_config() {
    let r = Repo::new(BASE_CONFIG);
    r.p.file_ref(
        "fpgate.toml",
        format!(
            "[rules]\ncandidate = [\"rules\"]\n\n[corpus]\npaths = [\"corpus\", \"{}\"]\n# lock = \"corpus.lock\"\n",
            r.creds().display()
        ),
    );
    let runs = assert_no_leak(&r, "route 1");
    // The working tree's policy (pre-commit, nightly scan) refuses the path.
    for (name, run) in &runs[2..] {
        assert_eq!(run.code, 2, "{name}: {}", run.stderr);
        assert!(
            run.stderr.contains("outside the checkout"),
            "{name}: {}",
            run.stderr
        );
    }
    // The README's gate applies the base's policy and lists the edit as
    // changed, never "tightens", saying where the path leads.
    let j = readme_gate(&r);
    assert_eq!(j["policy_changes"]["source"], "base");
    let s = setting(&j, "corpus.paths");
    assert_eq!(s["direction"], "changed", "{s}");
    assert!(
        s["detail"]
            .as_str()
            .unwrap()
            .contains("outside the checkout"),
        "{s}"
    );
    assert_eq!(j["corpus"]["roots"], serde_json::json!(["corpus"]));
}

#[test]
fn route_2_samples_from_the_runners_files() {
    let r = Repo::new(BASE_CONFIG);
    r.p.file_ref(
        "fpgate.toml",
        format!(
            "{BASE_CONFIG}\n[positives]\npaths = [\"{}\"]\n",
            r.creds().display()
        ),
    );
    let runs = assert_no_leak(&r, "route 2");
    assert_eq!(runs[2].1.code, 2, "pre-commit: {}", runs[2].1.stderr);
    let j = readme_gate(&r);
    assert_eq!(setting(&j, "positives.paths")["direction"], "changed");
}

#[test]
fn route_3_a_committed_link_to_a_credentials_file_followed() {
    // The change turns following on; and a base that follows links itself.
    for base in [
        BASE_CONFIG.to_string(),
        format!("{BASE_CONFIG}follow_symlinks = true\n"),
    ] {
        let r = Repo::new(&base);
        r.link(&r.creds().join("netrc"), "corpus/netrc");
        r.p.file_ref(
            "fpgate.toml",
            format!("{BASE_CONFIG}follow_symlinks = true\n"),
        );
        let runs = assert_no_leak(&r, "route 3");
        // Unscanned (a link not followed under a base that does not
        // follow, else outside the roots): the run fails closed.
        for (name, run) in &runs {
            // A shard exits 0 once its partial report is written: the
            // merge decides (and fails closed on what the shard left out).
            let want = if name == "sharded scan" { 0 } else { 3 };
            assert_eq!(run.code, want, "{name}: {}", run.stderr);
        }
        let run =
            r.p.run(&["scan", "--rules", "rules", "--no-cache", "--format", "json"]);
        assert_eq!(
            unscanned(&run.json()),
            [("corpus/netrc".to_string(), "outside_roots".to_string())]
        );
    }
}

#[test]
fn route_4_the_corpus_directory_replaced_by_a_link_outside() {
    let r = Repo::new(BASE_CONFIG);
    std::fs::remove_dir_all(r.p.join("corpus")).unwrap();
    r.link(&r.creds(), "corpus");
    let runs = assert_no_leak(&r, "route 4");
    for (name, run) in &runs {
        assert_eq!(run.code, 2, "{name}: {}", run.stderr);
    }
    // Named on the command line, the same link is refused too.
    let run = r.p.run(&[
        "scan",
        "--no-config",
        "--rules",
        "rules",
        "--corpus",
        "corpus",
        "--no-cache",
    ]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("is a link"), "{}", run.stderr);
}

#[test]
fn route_5_inside_the_checkout_nothing_in_git() {
    // The config names .git; a committed link leads into it; the base follows.
    let r = Repo::new(&format!("{BASE_CONFIG}follow_symlinks = true\n"));
    r.p.file_ref("fpgate.toml", "[rules]\ncandidate = [\"rules\"]\n[corpus]\npaths = [\"corpus\", \".git\"]\nfollow_symlinks = true\n");
    r.link(&r.p.join(".git/config"), "corpus/gitconfig");
    r.link(&r.p.join(".git"), "corpus/gitdir");
    let runs = assert_no_leak(&r, "route 5");
    assert_eq!(runs[2].1.code, 2, "pre-commit: {}", runs[2].1.stderr);
    assert!(
        runs[2].1.stderr.contains("version-control metadata"),
        "{}",
        runs[2].1.stderr
    );
    // The README's gate: the links are unscanned, the run fails closed.
    let run = gate(&r, &[]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    let mut reasons = unscanned(&run.json());
    reasons.sort();
    assert_eq!(
        reasons,
        [
            ("corpus/gitconfig".to_string(), "outside_roots".to_string()),
            ("corpus/gitdir".to_string(), "outside_roots".to_string()),
        ]
    );
    let j = run.json();
    assert!(setting(&j, "corpus.paths")["detail"]
        .as_str()
        .unwrap()
        .contains("(.git)"));
}

#[test]
fn pseudo_files_and_the_environment() {
    let r = Repo::new(&format!("{BASE_CONFIG}follow_symlinks = true\n"));
    r.link(Path::new("/proc/self/environ"), "corpus/environ");
    r.p.file_ref(
        "fpgate.toml",
        "[rules]\ncandidate = [\"rules\"]\n[corpus]\npaths = [\"corpus\", \"/proc/self/environ\"]\nfollow_symlinks = true\n",
    );
    let runs = assert_no_leak(&r, "environ");
    assert_eq!(runs[2].1.code, 2, "{}", runs[2].1.stderr);
    let run = gate(&r, &[]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert_eq!(
        unscanned(&run.json()),
        [("corpus/environ".to_string(), "outside_roots".to_string())]
    );
}

#[test]
fn rules_includes_and_configs_cannot_reach_git() {
    // A whole checkout as the rule path: an include of .git/config, a
    // linked rule file into .git, .git/config named as a rule file.
    for (what, config, files) in [
        (
            "include",
            "[rules]\ncandidate = [\".\"]\n[corpus]\npaths = [\"corpus\"]\n",
            vec![("inc.yar", "include \".git/config\"\n")],
        ),
        (
            "named",
            "[rules]\ncandidate = [\".git/config\"]\n[corpus]\npaths = [\"corpus\"]\n",
            vec![],
        ),
        (
            "linked",
            "[rules]\ncandidate = [\"rules\"]\n[corpus]\npaths = [\"corpus\"]\n",
            vec![],
        ),
    ] {
        let r = Repo::new(BASE_CONFIG);
        r.p.file_ref("fpgate.toml", config);
        for (f, text) in files {
            r.p.file_ref(f, text);
        }
        if what == "linked" {
            r.link(&r.p.join(".git/config"), "rules/git.yar");
        }
        let runs = assert_no_leak(&r, what);
        for (name, run) in &runs {
            // The nightly scan names its rules on the command line.
            if name.ends_with("scan") && what != "linked" {
                assert_eq!(run.code, 0, "{what} / {name}: {}", run.stderr);
                continue;
            }
            assert_eq!(run.code, 2, "{what} / {name}: {}", run.stderr);
        }
        // The config itself as a committed link into .git.
        std::fs::remove_file(r.p.join("fpgate.toml")).unwrap();
        r.link(&r.p.join(".git/config"), "fpgate.toml");
        for (name, run) in assert_no_leak(&r, "config link") {
            assert_eq!(run.code, 2, "{name}: {}", run.stderr);
        }
    }
}

#[test]
fn a_report_given_to_explain_cannot_name_the_runners_files() {
    let r = Repo::new(BASE_CONFIG);
    for (rules, roots) in [
        (serde_json::json!(["rules"]), serde_json::json!([r.creds()])),
        (serde_json::json!(["rules"]), serde_json::json!([".git"])),
        (
            serde_json::json!([r.creds().join("netrc")]),
            serde_json::json!(["corpus"]),
        ),
        (
            serde_json::json!([".git/config"]),
            serde_json::json!(["corpus"]),
        ),
    ] {
        let report = serde_json::json!({
            "schema_version": 1,
            "rulesets": {"candidate": {"paths": rules}},
            "corpus": {"roots": roots},
            "false_positives": {"new": []},
        });
        r.p.file_ref("evil.json", report.to_string());
        let run = r.p.run(&["explain", "evil.json", "--no-cache"]);
        assert_eq!(run.code, 2, "{report}: {}", run.stderr);
        for n in needles() {
            assert!(!contains(run.stdout.as_bytes(), &n) && !contains(run.stderr.as_bytes(), &n));
        }
    }
}

/// The change's rules are always gated: a rule file under a directory the
/// change adds to `rules.candidate` is scanned under the base's policy.
#[test]
fn the_changes_rules_are_always_gated() {
    let r = Repo::new(BASE_CONFIG);
    r.p.file_ref(
        "rules-new/mz.yar",
        "rule Any_PE { strings: $mz = \"This program cannot be run\" condition: $mz }\n",
    );
    r.p.file_ref(
        "fpgate.toml",
        "[rules]\ncandidate = [\"rules\", \"rules-new\"]\n\n[corpus]\npaths = [\"corpus\"]\n",
    );
    let run = gate(&r, &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let j = run.json();
    assert_eq!(j["policy_changes"]["source"], "base");
    assert_eq!(pairs(&j, "new").len(), 2, "{}", j["false_positives"]);
    assert_eq!(setting(&j, "rules.candidate")["direction"], "changed");
}

/// Only the command line, or the base's own config, can apply the working
/// tree's policy; `policy.source = "worktree"` in the change is a note.
#[test]
fn only_the_base_or_the_command_line_trusts_the_worktree() {
    let exception = "[[exception]]\nrule = \"Any_PE\"\npath = \"corpus/**\"\nreason = \"mine\"\nowner = \"pr\"\nexpires = \"2099-01-01\"\n";
    let change = |r: &Repo| {
        r.p.file_ref(
            "rules/mz.yar",
            "rule Any_PE { strings: $mz = \"This program cannot be run\" condition: $mz }\n",
        );
        r.p.file_ref("fpgate-exceptions.toml", exception);
        r.p.file_ref(
            "fpgate.toml",
            format!("{BASE_CONFIG}\n[policy]\nsource = \"worktree\"\ntrust_worktree = true\n"),
        );
    };
    let r = Repo::new(BASE_CONFIG);
    change(&r);
    let run = gate(&r, &[]);
    assert_eq!(
        run.code, 1,
        "the change's exception does not apply: {}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("no longer applies the working tree's policy"),
        "{}",
        run.stderr
    );
    let j = run.json();
    assert_eq!(setting(&j, "policy.trust_worktree")["direction"], "relaxes");
    let run = gate(&r, &["--policy-from-worktree"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json()["policy_changes"]["source"], "worktree");
    // The base trusts the working tree.
    let r = Repo::new(&format!("{BASE_CONFIG}\n[policy]\ntrust_worktree = true\n"));
    change(&r);
    let run = gate(&r, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json()["policy_changes"]["source"], "worktree");
    // A base named only by the config under review cannot choose.
    let r = Repo::new(BASE_CONFIG);
    change(&r);
    r.p.file_ref(
        "fpgate.toml",
        "[rules]\ncandidate = [\"rules\"]\nbaseline_ref = \"HEAD\"\n\n[corpus]\npaths = [\"corpus\"]\n",
    );
    let run = r.p.run(&["gate", "--no-cache", "--format", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("cannot choose the policy"),
        "{}",
        run.stderr
    );
    let j = run.json();
    assert_eq!(j["policy_changes"]["source"], "worktree");
    assert!(j["policy_changes"]["notes"]
        .to_string()
        .contains("cannot choose the policy"));
}

/// Runs started together on a new cache directory each use the cache
/// (the store's first initialisation raced: "database is locked").
#[test]
fn concurrent_first_runs_all_use_the_cache() {
    for round in 0..3 {
        let d = tempfile::tempdir().unwrap();
        let cache = d.path().join(format!("cache{round}"));
        let children: Vec<_> = (0..8)
            .map(|_| {
                std::process::Command::new(assert_cmd::cargo::cargo_bin("fpgate"))
                    .current_dir(root())
                    .args([
                        "scan",
                        "--no-config",
                        "--rules",
                        "rules/released",
                        "--corpus",
                        "corpus/pypi/setuptools-75.6.0",
                        "-q",
                        "--format",
                        "json",
                        "--cache",
                    ])
                    .arg(&cache)
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for c in children {
            let out = c.wait_with_output().unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                !err.contains("without a results cache") && !err.contains("locked"),
                "round {round}: {err}"
            );
        }
    }
}
