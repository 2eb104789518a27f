//! Exit codes 2 and 3 and the fail-closed behaviour: bad rules, bad corpus
//! paths, files that cannot be scanned. Each test checks the exit code,
//! stdout and stderr separately.

use crate::common::*;
use std::os::unix::fs::PermissionsExt;

const MATCH_NOTHING: &[u8] =
    b"rule Never { strings: $n = \"no such bytes anywhere 8c1f\" condition: $n }\n";

fn setup(files: &[(&str, &[u8])]) -> Project {
    Project::new().file("r.yar", MATCH_NOTHING).corpus(files)
}

fn scan_json(p: &Project, extra: &[&str]) -> Run {
    run(p
        .cmd(&[
            "scan", "--rules", "r.yar", "--corpus", "corpus", "--format", "json",
        ])
        .args(extra))
}

#[test]
fn missing_corpus_is_exit_2_with_the_path_named() {
    let d = setup(&[]);
    let r = d.run(&["scan", "--rules", "r.yar", "--corpus", "nope"]);
    assert_eq!(r.code, 2);
    assert!(r.stdout.is_empty());
    assert!(
        r.stderr.contains("corpus path nope does not exist"),
        "{}",
        r.stderr
    );
}

#[test]
fn empty_corpus_is_exit_2_never_a_pass() {
    let d = setup(&[]);
    std::fs::create_dir_all(d.path().join("corpus/sub")).unwrap();
    let r = scan_json(&d, &[]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("holds no regular files"), "{}", r.stderr);
    // JSON was asked for, so CI still gets a machine-readable error.
    let j = r.json();
    assert_eq!(j["verdict"]["result"], "error");
    assert_eq!(j["verdict"]["exit_code"], 2);
    assert_eq!(j["schema_version"], 1);
}

#[test]
fn syntax_error_is_exit_2_with_file_line_and_column() {
    let d = setup(&[("a", b"x")]);
    write(
        &d.path().join("bad.yar"),
        b"rule Fine { condition: true }\n\nrule Broken {\n  strings: $a = \"x\"\n  condition: $a and\n}\n",
    );
    let r = d.run(&[
        "gate",
        "--candidate",
        "bad.yar",
        "--corpus",
        "corpus",
        "--format",
        "json",
    ]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("--> bad.yar:6:1"), "{}", r.stderr);
    assert!(r.stderr.contains("the candidate ruleset does not compile"));
    let j = r.json();
    assert_eq!(j["verdict"]["result"], "error");
    let diag = &j["diagnostics"][0];
    assert_eq!(diag["level"], "error");
    assert_eq!(diag["file"], "bad.yar");
    assert_eq!(diag["line"], 6);
    assert!(diag["code"].as_str().unwrap().starts_with('E'));
}

#[test]
fn broken_baseline_is_also_exit_2() {
    let d = setup(&[("a", b"x")]);
    write(
        &d.path().join("base.yar"),
        b"rule B { condition: pe.is_pe }\n",
    );
    let r = d.run(&[
        "gate",
        "--candidate",
        "r.yar",
        "--baseline",
        "base.yar",
        "--corpus",
        "corpus",
    ]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("the baseline ruleset does not compile"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("base.yar:1:"), "{}", r.stderr);
}

#[test]
fn every_broken_file_is_reported_in_one_run() {
    let d = setup(&[("a", b"x")]);
    write(
        &d.path().join("rules/one.yar"),
        b"rule One { condition: nope1 }\n",
    );
    write(
        &d.path().join("rules/two.yara"),
        b"rule Two { condition: nope2 }\n",
    );
    let r = d.run(&["scan", "--rules", "rules", "--corpus", "corpus"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("rules/one.yar:1:"), "{}", r.stderr);
    assert!(r.stderr.contains("rules/two.yara:1:"), "{}", r.stderr);
}

#[test]
fn rule_directory_without_rules_and_missing_rule_file_are_exit_2() {
    let d = setup(&[("a", b"x")]);
    std::fs::create_dir_all(d.path().join("empty")).unwrap();
    let r = d.run(&["scan", "--rules", "empty", "--corpus", "corpus"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("holds no *.yar or *.yara files"),
        "{}",
        r.stderr
    );
    let r = d.run(&["scan", "--rules", "missing.yar", "--corpus", "corpus"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("missing.yar"), "{}", r.stderr);
}

#[test]
fn bad_arguments_are_exit_2() {
    let r = run(fpgate().args(["gate", "--corpus", "corpus", "--no-config"]));
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("--candidate"), "{}", r.stderr);
    let r = run(fpgate().args(["gate", "--bogus-flag"]));
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("--bogus-flag"), "{}", r.stderr);
    let r = run(fpgate().args([
        "scan",
        "--rules",
        "rules/released",
        "--corpus",
        "corpus",
        "--threads",
        "0",
    ]));
    assert_eq!(r.code, 2);
    let r = run(fpgate().args([
        "scan",
        "--rules",
        "rules/released",
        "--corpus",
        "corpus",
        "-d",
        "1x=2",
    ]));
    assert_eq!(r.code, 2);
}

#[test]
fn help_documents_exit_codes() {
    let r = run(fpgate().args(["gate", "--help"]));
    assert_eq!(r.code, 0);
    for line in ["0  pass", "1  blocked", "2  error", "3  incomplete"] {
        assert!(
            r.stdout.contains(line),
            "{line} missing from --help:\n{}",
            r.stdout
        );
    }
}

#[test]
fn fifo_is_reported_never_opened_and_fails_closed() {
    let d = setup(&[("ok.bin", b"fine")]);
    let fifo = d.path().join("corpus/pipe");
    let st = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(st.success());
    // Opening the FIFO for reading would block forever: the test's timeout
    // (see common::fpgate) turns a hang into a failure.
    let r = scan_json(&d, &[]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    let j = r.json();
    assert_eq!(
        unscanned(&j),
        vec![("corpus/pipe".to_string(), "not_regular".to_string())]
    );
    assert_eq!(j["verdict"]["result"], "incomplete");
    assert_eq!(j["corpus"]["scanned_files"], 1);
    assert!(r.stderr.contains("INCOMPLETE"), "{}", r.stderr);

    // --allow-incomplete: passes, still lists the FIFO.
    let r = scan_json(&d, &["--allow-incomplete"]);
    assert_eq!(r.code, 0);
    assert_eq!(unscanned(&r.json()).len(), 1);
}

#[test]
fn blocked_wins_over_incomplete() {
    let d = setup(&[("hit.bin", b"no such bytes anywhere 8c1f")]);
    std::process::Command::new("mkfifo")
        .arg(d.path().join("corpus/pipe"))
        .status()
        .unwrap();
    let r = scan_json(&d, &[]);
    assert_eq!(r.code, 1);
    assert_eq!(r.json()["verdict"]["counts"]["unscanned"], 1);
}

#[test]
fn symlinks_are_not_followed_unless_asked_and_loops_do_not_hang() {
    let d = setup(&[("real.bin", b"data")]);
    let c = d.path().join("corpus");
    std::os::unix::fs::symlink(c.join("real.bin"), c.join("link.bin")).unwrap();
    std::os::unix::fs::symlink(&c, c.join("loop")).unwrap();
    std::os::unix::fs::symlink(c.join("gone"), c.join("dangling")).unwrap();

    let r = scan_json(&d, &[]);
    assert_eq!(r.code, 3);
    let u = unscanned(&r.json());
    assert_eq!(
        u,
        vec![
            ("corpus/dangling".to_string(), "symlink".to_string()),
            ("corpus/link.bin".to_string(), "symlink".to_string()),
            ("corpus/loop".to_string(), "symlink".to_string()),
        ]
    );

    let r = scan_json(&d, &["--follow-symlinks"]);
    assert_eq!(r.code, 3);
    let j = r.json();
    let u = unscanned(&j);
    assert!(
        u.contains(&("corpus/loop".to_string(), "symlink_loop".to_string())),
        "{u:?}"
    );
    assert!(
        u.contains(&(
            "corpus/dangling".to_string(),
            "dangling_symlink".to_string()
        )),
        "{u:?}"
    );
    assert_eq!(j["corpus"]["scanned_files"], 2, "real.bin and link.bin");
}

#[test]
fn too_large_files_are_unscanned() {
    let d = setup(&[("big.bin", &[0u8; 4096]), ("small.bin", b"x")]);
    let r = scan_json(&d, &["--max-file-size", "1K"]);
    assert_eq!(r.code, 3);
    let j = r.json();
    assert_eq!(
        unscanned(&j),
        vec![("corpus/big.bin".to_string(), "too_large".to_string())]
    );
    assert!(j["unscanned"][0]["detail"]
        .as_str()
        .unwrap()
        .contains("4096 bytes"));
}

#[test]
fn zero_byte_files_are_scanned() {
    let d = setup(&[("empty.bin", b"")]);
    write(
        &d.path().join("r.yar"),
        b"rule Empty { condition: filesize == 0 }\n",
    );
    let r = scan_json(&d, &[]);
    assert_eq!(r.code, 1);
    assert_eq!(
        pairs(&r.json(), "new"),
        vec![("Empty".into(), "corpus/empty.bin".into())]
    );
}

#[test]
fn a_rule_that_exceeds_the_timeout_makes_the_file_unscanned() {
    let d = setup(&[("zeros.bin", &vec![0u8; 1 << 20])]);
    write(
        &d.path().join("r.yar"),
        b"rule Slow { condition: for all i in (0..filesize - 1) : ( for all j in (0..filesize - 1) : ( uint8(i) == uint8(j) ) ) }\n",
    );
    let r = scan_json(&d, &["--timeout", "1"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    let j = r.json();
    assert_eq!(
        unscanned(&j),
        vec![("corpus/zeros.bin".to_string(), "timeout".to_string())]
    );
}

#[test]
fn unreadable_file_and_directory_fail_closed() {
    let d = setup(&[
        ("ok.bin", b"fine"),
        ("secret.bin", b"hidden"),
        ("locked/inner.bin", b"x"),
    ]);
    for p in [
        d.path(),
        &d.path().join("corpus"),
        &d.path().join("r.yar"),
        &d.path().join("corpus/ok.bin"),
    ] {
        open_up(p);
    }
    std::fs::set_permissions(
        d.path().join("corpus/secret.bin"),
        std::fs::Permissions::from_mode(0o000),
    )
    .unwrap();
    std::fs::set_permissions(
        d.path().join("corpus/locked"),
        std::fs::Permissions::from_mode(0o000),
    )
    .unwrap();
    let r = run_unprivileged(
        d.path(),
        &[
            "scan",
            "--rules",
            "r.yar",
            "--corpus",
            "corpus",
            "--format",
            "json",
            "--no-config",
        ],
    );
    assert_eq!(r.code, 3, "{}", r.stderr);
    let j = r.json();
    assert_eq!(
        unscanned(&j),
        vec![
            ("corpus/locked".to_string(), "unreadable".to_string()),
            ("corpus/secret.bin".to_string(), "unreadable".to_string()),
        ]
    );
    assert!(j["unscanned"][1]["detail"]
        .as_str()
        .unwrap()
        .contains("ermission denied"));
    std::fs::set_permissions(
        d.path().join("corpus/locked"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
}

#[test]
fn non_utf8_and_control_character_names_are_scanned_and_escaped() {
    use std::os::unix::ffi::OsStrExt;
    let d = setup(&[]);
    write(
        &d.path().join("r.yar"),
        b"rule Hit { strings: $h = \"hit\" condition: $h }\n",
    );
    let c = d.path().join("corpus");
    write(
        &c.join(std::ffi::OsStr::from_bytes(b"latin1-\xe9.bin")),
        b"hit",
    );
    write(&c.join("evil\n\x1b]0;pwned\x07.bin"), b"hit");
    let r = d.run(&["scan", "--rules", "r.yar", "--corpus", "corpus"]);
    assert_eq!(r.code, 1);
    assert!(
        !r.stdout.contains('\x1b'),
        "raw escape reached the terminal"
    );
    assert!(
        r.stdout.contains("evil\\n\\u{1b}]0;pwned\\u{7}.bin"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("latin1-\u{fffd}.bin"), "{}", r.stdout);
    assert!(r.stdout.contains("2 file(s)"));
}

#[test]
fn output_to_a_directory_is_exit_2() {
    let d = setup(&[("a", b"x")]);
    let r = d.run(&[
        "scan", "--rules", "r.yar", "--corpus", "corpus", "--output", "corpus",
    ]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("cannot write corpus"), "{}", r.stderr);
}

/// The JSON error report says what kind of error ended the run and carries
/// its facts, not only a message: CI can tell a typo in fpgate.toml from a
/// rule that does not compile or a partial report that is not one.
#[test]
fn json_error_reports_carry_the_kind_and_facts() {
    let d = setup(&[("a.bin", b"MZ")])
        .file(
            "fpgate.toml",
            "[corpus]\npaths = [\"corpus\"]\ncriticl = [\"x\"]\n",
        )
        .file("bad.yar", "rule x { condition: \n")
        .file("not-a-partial.json", "{\"kind\": \"something else\"}\n");
    let error = |args: &[&str]| {
        let r = d.run(args);
        assert_eq!(r.code, 2, "{}", r.stderr);
        let j = r.json();
        assert_eq!(j["verdict"]["result"], "error");
        assert_eq!(j["error"]["exit_code"], 2);
        assert_eq!(j["error"]["message"], j["verdict"]["message"]);
        j["error"].clone()
    };
    let e = error(&["scan", "--rules", "r.yar", "--format", "json"]);
    assert_eq!(e["kind"], "config", "{e}");
    assert_eq!(e["file"], "fpgate.toml");
    assert_eq!(e["line"], 3);
    let scan = |rules: &str, corpus: &str| {
        error(&[
            "scan",
            "--no-config",
            "--rules",
            rules,
            "--corpus",
            corpus,
            "--format",
            "json",
        ])
    };
    let e = scan("bad.yar", "corpus");
    assert_eq!(e["kind"], "compile", "{e}");
    assert_eq!(e["ruleset"], "candidate");
    assert_eq!(e["errors"], 1);
    let e = scan("r.yar", "nope");
    assert_eq!(e["kind"], "corpus", "{e}");
    assert_eq!(e["path"], "nope");
    let e = error(&["merge", "not-a-partial.json", "--format", "json"]);
    assert_eq!(e["kind"], "input", "{e}");
    assert_eq!(e["what"], "partial report");
    assert_eq!(e["file"], "not-a-partial.json");
    let e = error(&[
        "gate",
        "--no-config",
        "--candidate",
        "r.yar",
        "--corpus",
        "corpus",
        "--perf",
        "--format",
        "json",
    ]);
    assert_eq!(e["kind"], "usage", "{e}");
}

/// `--version` names the engine version every verdict depends on.
#[test]
fn version_names_the_engine() {
    let r = run(fpgate().arg("--version"));
    assert_eq!(r.code, 0);
    let want = format!("fpgate {} (yara-x ", env!("CARGO_PKG_VERSION"));
    assert!(r.stdout.starts_with(&want), "{}", r.stdout);
    assert!(r.stdout.trim_end().ends_with(')'), "{}", r.stdout);
}

/// Public rule sets use `.rule` too: `rules.extensions` says what a rule
/// file is called; the default stays `.yar` / `.yara`, and a bad list is a
/// config error naming the key.
#[test]
fn rule_extensions_are_configurable() {
    let rule = "rule Hit { strings: $h = \"needle\" condition: $h }\n";
    let d = Project::new()
        .file("rules/a.rule", rule)
        .corpus(&[("f.bin", b"a needle here")]);
    let scan = |d: &Project| d.run(&["scan", "--rules", "rules", "--format", "json"]);
    d.file_ref("fpgate.toml", "[corpus]\npaths = [\"corpus\"]\n");
    let r = scan(&d);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("holds no *.yar or *.yara files"),
        "{}",
        r.stderr
    );
    d.file_ref(
        "fpgate.toml",
        "[rules]\nextensions = [\"yar\", \".RULE\"]\n[corpus]\npaths = [\"corpus\"]\n",
    );
    let r = scan(&d);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_eq!(
        r.json()["rulesets"]["candidate"]["files"][0],
        "rules/a.rule"
    );
    d.file_ref(
        "fpgate.toml",
        "[rules]\nextensions = [\"*.rule\"]\n[corpus]\npaths = [\"corpus\"]\n",
    );
    let r = scan(&d);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert_eq!(r.json()["error"]["key"], "rules.extensions", "{}", r.stdout);
}

/// Shell completions and man pages come from the same definition as
/// `--help`: every command and flag is in them, and the bash script parses.
#[test]
fn completions_and_man_pages_describe_every_command() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let r = run(fpgate().args(["completions", shell]));
        assert_eq!(r.code, 0, "{shell}: {}", r.stderr);
        for word in ["gate", "merge", "baseline-ref", "ignore-module"] {
            assert!(r.stdout.contains(word), "{shell} lacks {word}");
        }
    }
    let bash = run(fpgate().args(["completions", "bash"])).stdout;
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("fpgate.bash");
    write(&f, bash.as_bytes());
    let ok = std::process::Command::new("bash")
        .arg("-n")
        .arg(&f)
        .status()
        .unwrap();
    assert!(ok.success(), "bash -n rejects the completion script");
    let r = run(fpgate().arg("man"));
    assert_eq!(r.code, 0);
    assert!(r.stdout.contains(".TH fpgate 1"), "{}", &r.stdout[..200]);
    let r = run(fpgate().args(["man", "gate"]));
    assert!(r.stdout.contains(".TH fpgate-gate 1") && r.stdout.contains("perf"));
    let r = run(fpgate().args(["man", "nope"]));
    assert_eq!(r.code, 2);
}

#[test]
fn a_file_truncated_while_it_is_scanned_is_reported_changed_not_a_crash() {
    // Files of 64 KiB and more are mapped, not copied; reading a mapped page
    // past the end of a file that shrank raises SIGBUS. Here the file is cut
    // while fpgate has it mapped (seen in /proc/PID/maps: the scan's mapping,
    // since the early hashing beside the compiler reads, not maps).
    let d = setup(&[("small.bin", b"fine")]);
    let big = d.path().join("corpus/big.bin");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(256 << 20)
        .unwrap();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_fpgate"))
        .current_dir(d.path())
        .env("FPGATE_CACHE", test_cache())
        .args([
            "scan",
            "--rules",
            "r.yar",
            "--corpus",
            "corpus",
            "--format",
            "json",
            "--no-cache",
            "--max-file-size",
            "1G",
            "-j",
            "1",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let maps = format!("/proc/{}/maps", child.id());
    let started = std::time::Instant::now();
    let mut cut = false;
    while started.elapsed() < std::time::Duration::from_secs(60) {
        let Ok(m) = std::fs::read_to_string(&maps) else {
            break; // exited
        };
        if m.contains("big.bin") {
            std::fs::OpenOptions::new()
                .write(true)
                .open(&big)
                .unwrap()
                .set_len(4096)
                .unwrap();
            cut = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(cut, "the file was never seen mapped: {stderr}");
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        unscanned(&j),
        vec![("corpus/big.bin".to_string(), "changed".to_string())]
    );
    let detail = j["unscanned"][0]["detail"].as_str().unwrap();
    assert!(detail.contains("changed while being scanned"), "{detail}");
    assert_eq!(j["corpus"]["scanned_files"], 1);
}
