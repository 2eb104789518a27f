//! Hostile and broken inputs: each case gets a clear message naming the
//! culprit, the documented exit code, no panic, no hang, and never a pass
//! that hides an unscanned file. (More cases live in faults.rs and policy.rs.)

use crate::common::*;
use std::path::Path;
use std::time::Duration;

fn project(rules: &[(&str, &[u8])], files: &[(&str, &[u8])]) -> Project {
    Project::new().files("rules", rules).corpus(files)
}

fn scan(p: &Project, extra: &[&str]) -> Run {
    run(p
        .cmd(&[
            "scan",
            "--no-config",
            "--rules",
            "rules",
            "--corpus",
            "corpus",
        ])
        .args(extra))
}

fn no_panic(r: &Run) {
    assert!(!r.stderr.contains("panicked"), "panic:\n{}", r.stderr);
}

#[test]
fn include_cannot_read_outside_the_rule_paths() {
    let secret_dir = tempfile::tempdir().unwrap();
    let secret = secret_dir.path().join("secret.txt");
    write(&secret, b"root:x:0:0:TOP-SECRET-LINE\n");
    let cases: Vec<(String, Box<dyn Fn(&Path)>)> = vec![
        (
            "include \"../../../../../../../../../etc/passwd\"".into(),
            Box::new(|_: &Path| {}),
        ),
        (
            format!("include \"{}\"", secret.display()),
            Box::new(|_: &Path| {}),
        ),
        (
            "include \"sub/innocent.yar\"".into(),
            Box::new({
                let secret = secret.clone();
                move |d: &Path| {
                    std::fs::create_dir_all(d.join("rules/sub")).unwrap();
                    std::os::unix::fs::symlink(&secret, d.join("rules/sub/innocent.yar")).unwrap();
                }
            }),
        ),
    ];
    for (include, prepare) in cases {
        let src = format!("{include}\nrule R {{ condition: true }}\n");
        let d = project(&[("evil.yar", src.as_bytes())], &[("f", b"x")]);
        prepare(d.path());
        let r = scan(&d, &[]);
        assert_eq!(r.code, 2, "{include}: {}", r.stderr);
        // The include is refused, or (a link in the rule directory that
        // leads outside) the rule file itself is.
        assert!(
            r.stderr.contains("evil.yar:1: include") || r.stderr.contains("sub/innocent.yar"),
            "{}",
            r.stderr
        );
        assert!(r.stderr.contains("outside the rule paths"), "{}", r.stderr);
        assert!(
            !r.stderr.contains("TOP-SECRET") && !r.stderr.contains("root:x:0:0"),
            "{}",
            r.stderr
        );
        assert!(r.stdout.is_empty());
    }
}

#[test]
fn includes_inside_the_rule_paths_work_and_nest() {
    let d = project(
        &[
            (
                "main.yar",
                b"include \"lib/common.yar\"\nrule Main { condition: Common }\n",
            ),
            (
                "lib/common.yar",
                b"include \"leaf.yar\"\nrule Common { condition: Leaf }\n",
            ),
            ("lib/leaf.yar", b"rule Leaf { condition: filesize > 0 }\n"),
        ],
        &[("f", b"x")],
    );
    let r = d.run(&[
        "scan",
        "--no-config",
        "--rules",
        "rules/main.yar",
        "--corpus",
        "corpus",
        "--format",
        "json",
    ]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_eq!(pairs(&r.json(), "new").len(), 3);
}

#[test]
fn unknown_module_and_duplicate_rules_across_files_are_exit_2() {
    let d = project(
        &[(
            "a.yar",
            b"import \"nosuchmodule\"\nrule A { condition: true }\n",
        )],
        &[("f", b"x")],
    );
    let r = scan(&d, &[]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("unknown module `nosuchmodule`"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("rules/a.yar:1:"), "{}", r.stderr);

    let d = project(
        &[
            ("one.yar", b"rule Same { condition: true }\n"),
            ("two.yar", b"rule Same { condition: false }\n"),
        ],
        &[("f", b"x")],
    );
    let r = scan(&d, &[]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("duplicate rule `Same`"), "{}", r.stderr);
    assert!(
        r.stderr.contains("rules/two.yar:1:") && r.stderr.contains("rules/one.yar:1:"),
        "{}",
        r.stderr
    );
}

#[test]
fn binary_garbage_as_a_rule_file_is_exit_2() {
    let d = project(
        &[(
            "garbage.yar",
            b"rule A { condition: true }\n\xff\xfe\x00\x01 junk",
        )],
        &[("f", b"x")],
    );
    let r = scan(&d, &[]);
    assert_eq!(r.code, 2);
    no_panic(&r);
    assert!(r.stderr.contains("garbage.yar"), "{}", r.stderr);
}

#[test]
fn an_enormous_rule_file_compiles_and_scans() {
    let mut src = String::new();
    for i in 0..5000 {
        src.push_str(&format!(
            "rule R{i} {{ meta: description = \"generated {i}\" strings: $a = \"marker-{i:05}\" condition: $a }}\n"
        ));
    }
    let d = project(
        &[("big.yar", src.as_bytes())],
        &[("hit", b"xx marker-04321 xx"), ("clean", b"nothing")],
    );
    let r = scan(&d, &["--format", "json"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let j = r.json();
    assert_eq!(j["rulesets"]["candidate"]["rules"], 5000);
    assert_eq!(
        pairs(&j, "new"),
        vec![("R4321".into(), "corpus/hit".into())]
    );
    assert_eq!(j["false_positives"]["new"][0]["rule"]["line"], 4322);
}

#[test]
fn devices_are_never_opened() {
    let d = project(
        &[("r.yar", b"rule R { condition: true }\n")],
        &[("f", b"x")],
    );
    // A device given as the corpus itself: nothing to scan, an error, no hang.
    let r = d.run(&[
        "scan",
        "--no-config",
        "--rules",
        "rules",
        "--corpus",
        "/dev/zero",
    ]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr
            .contains("/dev/zero (not_regular: character device, not opened)"),
        "{}",
        r.stderr
    );
    // A device node inside the corpus (needs root to create; the FIFO test
    // in faults.rs covers the same path without it).
    let node = d.path().join("corpus/zero");
    let made = std::process::Command::new("mknod")
        .arg(&node)
        .args(["c", "1", "5"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if made {
        let r = scan(&d, &["--format", "json"]);
        assert_eq!(r.code, 1, "the rule matches f; the device is listed");
        assert!(
            unscanned(&r.json()).contains(&("corpus/zero".to_string(), "not_regular".to_string()))
        );
    }
}

#[test]
fn a_huge_sparse_file_is_refused_without_being_read() {
    let d = project(
        &[("r.yar", b"rule R { strings: $a = \"x\" condition: $a }\n")],
        &[("small", b"y")],
    );
    let f = std::fs::File::create(d.path().join("corpus/sparse.img")).unwrap();
    f.set_len(64 << 30).unwrap(); // 64 GiB of nothing
    drop(f);
    let r = scan(&d, &["--format", "json"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    let j = r.json();
    assert_eq!(
        unscanned(&j),
        vec![("corpus/sparse.img".to_string(), "too_large".to_string())]
    );
}

#[test]
fn unwritable_output_paths_are_exit_2() {
    let d = project(
        &[("r.yar", b"rule R { condition: false }\n")],
        &[("f", b"x")],
    );
    let r = scan(&d, &["--output", "no/such/dir/report.json"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("cannot write no/such/dir/report.json"),
        "{}",
        r.stderr
    );
    // A read-only directory, for a user who cannot write there.
    std::fs::create_dir_all(d.path().join("ro")).unwrap();
    for p in [
        d.path().to_path_buf(),
        d.path().join("ro"),
        d.path().join("rules"),
        d.path().join("rules/r.yar"),
        d.path().join("corpus"),
        d.path().join("corpus/f"),
    ] {
        open_up(&p);
    }
    let r = run_unprivileged(
        d.path(),
        &[
            "scan",
            "--no-config",
            "--rules",
            "rules",
            "--corpus",
            "corpus",
            "--output",
            "ro/report.json",
        ],
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("cannot write ro/report.json"),
        "{}",
        r.stderr
    );
    assert!(
        std::fs::read_dir(d.path().join("ro"))
            .unwrap()
            .next()
            .is_none(),
        "no temporary file left behind"
    );
}

#[test]
fn malformed_config_and_exceptions_name_file_and_line() {
    let d = project(
        &[("r.yar", b"rule R { condition: false }\n")],
        &[("f", b"x")],
    );
    write(
        &d.path().join("fpgate.toml"),
        b"[corpus]\npaths = [\"corpus\"\n",
    );
    let r = d.run(&["gate", "--candidate", "rules"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("fpgate.toml:2:"), "{}", r.stderr);

    write(
        &d.path().join("fpgate.toml"),
        b"[corpus]\npaths = \"corpus\"\n",
    );
    let r = d.run(&["gate", "--candidate", "rules"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("fpgate.toml:2:"), "{}", r.stderr);

    write(
        &d.path().join("fpgate.toml"),
        b"[corpus]\npaths = [\"corpus\"]\n",
    );
    write(
        &d.path().join("fpgate-exceptions.toml"),
        format!(
            "[[exception]]\nrule = \"R\"\nsha256 = \"{}\"\nreason = \"r\"\nowner = \"o\"\nexpires = \"2027-01-01\"\ncritical = \"yes\"\n",
            "a".repeat(64)
        )
        .as_bytes(),
    );
    let r = d.run(&["gate", "--candidate", "rules"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("fpgate-exceptions.toml:7:"),
        "{}",
        r.stderr
    );
    no_panic(&r);
}

#[test]
fn truncated_or_foreign_lock_is_exit_2() {
    let d = project(
        &[("r.yar", b"rule R { condition: false }\n")],
        &[("f", b"x")],
    );
    write(
        &d.path().join("l.json"),
        b"{\"kind\": \"fpgate-corpus-lock\", \"schema_version\": 1, \"files\": [",
    );
    let r = scan(&d, &[]);
    assert_eq!(r.code, 0, "scan has no --lock; sanity check");
    let r = d.run(&[
        "gate",
        "--no-config",
        "--candidate",
        "rules",
        "--corpus",
        "corpus",
        "--lock",
        "l.json",
    ]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("l.json:1:"), "{}", r.stderr);
    write(&d.path().join("l.json"), b"{\"some\": \"other json\"}");
    let r = d.run(&[
        "gate",
        "--no-config",
        "--candidate",
        "rules",
        "--corpus",
        "corpus",
        "--lock",
        "l.json",
    ]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("not a valid corpus lock"), "{}", r.stderr);
}

#[test]
fn sigterm_writes_a_partial_report_and_exits_non_zero() {
    // Every file takes --timeout seconds under this rule, so the run is long
    // enough to interrupt; the workers finish their current file and stop.
    let slow = b"rule Slow { condition: for all i in (0..filesize - 1) : ( for all j in (0..filesize - 1) : ( uint8(i) == uint8(j) ) ) }\n";
    let files: Vec<(String, Vec<u8>)> = (0..12)
        .map(|i| (format!("f{i:02}"), vec![i as u8; 1 << 20]))
        .collect();
    let d = project(&[("slow.yar", slow)], &[]);
    for (n, data) in &files {
        write(&d.path().join("corpus").join(n), data);
    }
    let bin = assert_cmd::cargo::cargo_bin("fpgate");
    let mut child = std::process::Command::new(bin)
        .current_dir(d.path())
        .env("FPGATE_CACHE", test_cache())
        .args([
            "scan",
            "--no-config",
            "--rules",
            "rules",
            "--corpus",
            "corpus",
            "--timeout",
            "2",
            "-j",
            "2",
        ])
        .args(["--format", "json", "--output", "report.json"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Interrupted once the scan runs (the handler is installed before it):
    // a worker maps the first file it scans; the early hashing only reads.
    let maps = format!("/proc/{}/maps", child.id());
    let waiting = std::time::Instant::now();
    while !std::fs::read_to_string(&maps).is_ok_and(|m| m.contains("/corpus/f")) {
        assert!(
            waiting.elapsed() < Duration::from_secs(60),
            "the scan never started"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    // A hang fails here rather than blocking the suite.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "fpgate did not stop after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    let j: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.path().join("report.json")).unwrap()).unwrap();
    assert_eq!(j["verdict"]["interrupted"], true);
    assert_eq!(j["verdict"]["result"], "incomplete");
    let reasons: Vec<String> = unscanned(&j).into_iter().map(|(_, r)| r).collect();
    assert!(
        reasons.iter().filter(|r| *r == "interrupted").count() >= 6,
        "{reasons:?}"
    );
    assert_eq!(
        reasons.len(),
        12,
        "every file is accounted for: {reasons:?}"
    );
    // Nothing half-written next to the report.
    let names: Vec<String> = std::fs::read_dir(d.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.ends_with(".tmp")), "{names:?}");
}

/// yr's compile options, with yr's semantics. `--ignore-module magic`: the
/// rules that use the module (directly, or through a rule they use) are not
/// compiled, are listed as unevaluated, and the run is incomplete (exit 3)
/// unless `--allow-unevaluated`; the other rules still run and match.
#[test]
fn ignored_modules_leave_rules_unevaluated_and_fail_closed() {
    let d = project(
        &[(
            "m.yar",
            b"import \"magic\"\n\
              rule UsesMagic { condition: magic.type() contains \"PE\" }\n\
              rule UsesUser { condition: UsesMagic }\n\
              rule Plain { strings: $a = \"needle\" condition: $a }\n",
        )],
        &[("f.bin", b"a needle")],
    );
    let r = scan(&d, &["--format", "json"]);
    assert_eq!(r.code, 2, "unknown module without the option: {}", r.stderr);
    let r = scan(&d, &["--format", "json", "--ignore-module", "magic"]);
    no_panic(&r);
    assert_eq!(r.code, 1, "Plain still matches: {}", r.stderr);
    let j = r.json();
    let un: Vec<&str> = j["rulesets"]["candidate"]["unevaluated"]
        .as_array()
        .expect("unevaluated listed")
        .iter()
        .map(|u| u["rule"].as_str().unwrap())
        .collect();
    assert_eq!(un, ["UsesMagic", "UsesUser"]);
    assert_eq!(j["verdict"]["counts"]["unevaluated_rules"], 2);
    // The option is part of every cache key: a warm cache does not answer
    // the same rules compiled without it.
    let r = scan(&d, &["--format", "json"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    // Nothing matched: incomplete, not a pass.
    let d = project(
        &[(
            "m.yar",
            b"import \"magic\"\nrule UsesMagic { condition: magic.type() contains \"PE\" }\n",
        )],
        &[("f.bin", b"clean")],
    );
    let r = scan(&d, &["--format", "json", "--ignore-module", "magic"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    let reasons = r.json()["verdict"]["reasons"].to_string();
    assert!(
        reasons.contains("could not be evaluated (ignored module(s): magic)"),
        "{reasons}"
    );
    let r = scan(
        &d,
        &[
            "--ignore-module",
            "magic",
            "--allow-unevaluated",
            "--color",
            "never",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("UNEVALUATED rules (1)"), "{}", r.stdout);
    // From fpgate.toml too.
    write(
        &d.join("fpgate.toml"),
        b"[rules]\nignore_modules = [\"magic\"]\n[scan]\nallow_unevaluated = true\n",
    );
    let r = d.run(&["scan", "--rules", "rules", "--corpus", "corpus"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
}

/// `--relaxed-re-syntax` accepts what YARA accepts and yara-x refuses by
/// default, for the rule and for its evidence.
#[test]
fn relaxed_re_syntax_compiles_what_yara_accepts() {
    let d = project(
        &[(
            "r.yar",
            b"rule R { strings: $r = /ab\\Rc/ condition: $r }\n",
        )],
        &[("f.bin", b"xx abRc xx")],
    );
    let r = scan(&d, &["--format", "json"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    let r = scan(&d, &["--format", "json", "--relaxed-re-syntax"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let j = r.json();
    let f = &j["false_positives"]["new"][0];
    assert_eq!(f["rule"]["identifier"], "R");
    assert_eq!(f["patterns"][0]["matches"][0]["text"], "abRc");
    let r = scan(&d, &["--format", "json"]);
    assert_eq!(r.code, 2, "not answered from the cache: {}", r.stderr);
}
