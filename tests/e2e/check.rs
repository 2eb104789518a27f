//! `fpgate check` for rule authors: one rule against the corpus, and
//! `--watch` rerunning on save.

use crate::common::*;
use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

#[test]
fn check_scans_the_configured_corpus_with_just_the_given_rule() {
    // The repository's fpgate.toml supplies the corpus.
    let r = run(fpgate().args([
        "check",
        "rules/candidate/updaters.yar",
        "--format",
        "json",
        "-q",
    ]));
    assert_eq!(r.code, 1, "{}", r.stderr);
    let j = r.json();
    assert_eq!(j["command"], "check");
    assert_eq!(j["rulesets"]["candidate"]["rules"], 1);
    let p = pairs(&j, "new");
    assert_eq!(p.len(), 2);
    assert!(p.iter().all(|(rule, _)| rule == "Shh_Updater_B"));
    let r = run(fpgate().args(["check", "rules/released/test_files.yar"]));
    assert_eq!(r.code, 0, "{}", r.stdout);
}

#[test]
fn watch_reruns_on_save_and_survives_a_broken_rule() {
    let d = tempfile::tempdir().unwrap();
    write(&d.path().join("corpus/f"), b"hello updater");
    write(
        &d.path().join("r.yar"),
        b"rule A { strings: $a = \"nothing\" condition: $a }\n",
    );
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("fpgate"))
        .current_dir(d.path())
        .env("FPGATE_CACHE", test_cache())
        .args([
            "check",
            "r.yar",
            "--no-config",
            "--corpus",
            "corpus",
            "--watch",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let wait_for = |what: &str| {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(l) if l.contains(what) => return l,
                Ok(_) => continue,
                Err(_) => panic!("never saw {what:?}"),
            }
        }
    };
    assert!(wait_for("waiting for changes").contains("pass"));
    // mtime granularity: make sure the save is seen as a change.
    std::thread::sleep(Duration::from_millis(1100));
    write(
        &d.path().join("r.yar"),
        b"rule A { strings: $a = \"updater\" condition: $a }\n",
    );
    assert!(wait_for("waiting for changes").contains("blocked"));
    std::thread::sleep(Duration::from_millis(1100));
    write(&d.path().join("r.yar"), b"rule A { condition: oops }\n");
    wait_for("unknown identifier `oops`");
    wait_for("waiting for changes");
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "--watch did not stop on SIGINT");
        std::thread::sleep(Duration::from_millis(50));
    }
}
