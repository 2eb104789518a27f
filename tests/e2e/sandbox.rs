//! The include sandbox and rule-file links, against rules written to get
//! past them: every include statement the compiler acts on is checked,
//! whatever construct hides it from a simple lexer, and no byte of a file
//! outside the rule paths reaches stdout, stderr or any report.

use crate::common::*;
use std::path::Path;

const SECRET: &str = "hunter2-fpgate-sandbox-test";

fn project(rules: &[(&str, &[u8])]) -> Project {
    Project::new()
        .files("rules", rules)
        .file("corpus/f.bin", "MZ clean file")
}

/// `fpgate scan --no-config --rules RULES --corpus corpus`, run in `dir`.
fn scan_cmd(dir: &Path, rules: &str) -> assert_cmd::Command {
    let mut c = fpgate();
    c.current_dir(dir).args([
        "scan",
        "--no-config",
        "--rules",
        rules,
        "--corpus",
        "corpus",
    ]);
    c
}

/// `scan_cmd`, with `--format json` when `json`.
fn scan(dir: &Path, rules: &str, json: bool) -> Run {
    let mut c = scan_cmd(dir, rules);
    if json {
        c.args(["--format", "json"]);
    }
    run(&mut c)
}

/// `scan` with every report format asked for, and the secret in the
/// environment. Returns the run and the text of every report written.
fn scan_everything(dir: &Path, rules: &str) -> (Run, String) {
    let mut c = scan_cmd(dir, rules);
    c.env("SECRET_TOKEN", SECRET).args(["--format", "json"]);
    for f in [
        "json", "sarif", "junit", "github", "markdown", "html", "human",
    ] {
        c.arg("--report")
            .arg(format!("{f}={}", dir.join(format!("out.{f}")).display()));
    }
    let r = run(&mut c);
    let mut reports = String::new();
    for f in [
        "json", "sarif", "junit", "github", "markdown", "html", "human",
    ] {
        if let Ok(t) = std::fs::read_to_string(dir.join(format!("out.{f}"))) {
            reports.push_str(&t);
        }
    }
    (r, reports)
}

fn assert_no_leak(r: &Run, reports: &str, what: &str) {
    for text in [&r.stdout, &r.stderr, &reports.to_string()] {
        assert!(!text.contains(SECRET), "{what}: the secret leaked:\n{text}");
        assert!(
            !text.contains("root:x:0:0"),
            "{what}: /etc/passwd leaked:\n{text}"
        );
    }
    assert!(!r.stderr.contains("panicked"), "{what}: {}", r.stderr);
}

/// Include statements hidden behind constructs a hand-written lexer
/// misreads; `{T}` is the include target.
fn hiding_places() -> Vec<(&'static str, String)> {
    vec![
        (
            "regexp with // in a function argument",
            "import \"pe\"\nrule a { condition: pe.exports(/x\\/\\//) } include \"{T}\"\n".into(),
        ),
        (
            "regexp with /* in a function argument",
            "import \"pe\"\nrule a { condition: pe.exports(/a\\/*b/) }\ninclude \"{T}\"\n// */\n".into(),
        ),
        (
            "regexp after `and` in a function argument list",
            "import \"pe\"\nrule a { condition: filesize > 0 and pe.imports(/k\\/\\//, /x/) > 0 } include \"{T}\"\n".into(),
        ),
        (
            "regexp in a for-in tuple",
            "import \"pe\"\nrule a { condition: for any s in (\"x\") : (pe.exports(/\\/\\//)) } include \"{T}\"\n".into(),
        ),
        (
            "string with an escaped quote",
            "rule a { strings: $a = \"q\\\"//\" condition: $a } include \"{T}\"\n".into(),
        ),
        (
            "include on the same line as a closing brace, no space",
            "rule a { condition: true }include \"{T}\"\n".into(),
        ),
    ]
}

#[test]
fn the_reported_bypass_is_closed_for_passwd_and_environ() {
    for target in ["/etc/passwd", "/proc/self/environ"] {
        for (what, tmpl) in hiding_places() {
            let src = tmpl.replace("{T}", target);
            let d = project(&[("evil.yar", src.as_bytes())]);
            let (r, reports) = scan_everything(d.path(), "rules");
            let what = format!("{what} -> {target}");
            assert_eq!(r.code, 2, "{what}: exit {}\n{}", r.code, r.stderr);
            assert!(
                r.stderr.contains("outside the rule paths"),
                "{what}: {}",
                r.stderr
            );
            assert!(r.stderr.contains("evil.yar:"), "{what}: {}", r.stderr);
            assert_no_leak(&r, &reports, &what);
        }
    }
}

#[test]
fn a_nested_include_is_checked_too() {
    for (what, tmpl) in hiding_places() {
        let inner = tmpl
            .replace("{T}", "/proc/self/environ")
            .replace("rule a", "rule inner");
        let d = project(&[
            (
                "main.yar",
                b"include \"lib/inner.yar\"\nrule main { condition: true }\n",
            ),
            ("lib/inner.yar", inner.as_bytes()),
        ]);
        let (r, reports) = scan_everything(d.path(), "rules/main.yar");
        assert_eq!(r.code, 2, "{what}: {}", r.stderr);
        assert!(r.stderr.contains("inner.yar"), "{what}: {}", r.stderr);
        assert!(
            r.stderr.contains("outside the rule paths"),
            "{what}: {}",
            r.stderr
        );
        assert_no_leak(&r, &reports, what);
    }
}

#[test]
fn symlinked_include_targets_are_judged_by_where_they_lead() {
    let outside = tempfile::tempdir().unwrap();
    write(
        &outside.path().join("secret.yar"),
        format!("rule leak {{ condition: \"{SECRET}\" }}\n").as_bytes(),
    );
    // Inside the rule paths, through a link: works.
    let d = project(&[
        (
            "main.yar",
            b"include \"alias.yar\"\nrule Main { condition: Real }\n",
        ),
        ("lib/real.yar", b"rule Real { condition: filesize > 0 }\n"),
    ]);
    std::os::unix::fs::symlink("lib/real.yar", d.path().join("rules/alias.yar")).unwrap();
    let r = scan(d.path(), "rules/main.yar", true);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_eq!(pairs(&r.json(), "new").len(), 2);
    // A link inside the rule paths that leads outside: refused, unread.
    let e = project(&[(
        "main.yar",
        b"include \"lib/x.yar\"\nrule Main { condition: true }\n",
    )]);
    std::fs::create_dir_all(e.path().join("rules/lib")).unwrap();
    std::os::unix::fs::symlink(
        outside.path().join("secret.yar"),
        e.path().join("rules/lib/x.yar"),
    )
    .unwrap();
    let (r, reports) = scan_everything(e.path(), "rules/main.yar");
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("outside the rule paths"), "{}", r.stderr);
    assert_no_leak(&r, &reports, "linked include");
}

#[test]
fn a_fifo_include_is_refused_without_a_hang() {
    let d = project(&[(
        "main.yar",
        b"include \"pipe.yar\"\nrule Main { condition: true }\n",
    )]);
    let fifo = d.path().join("rules/pipe.yar");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    let r = scan(d.path(), "rules/main.yar", false);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("not a regular file"), "{}", r.stderr);
}

#[test]
fn linked_rule_files_are_compiled_or_refused_never_skipped() {
    // rules/x.yar -> ../other.yar: outside the rule paths, refused.
    let d = project(&[("a.yar", b"rule A { condition: false }\n")]);
    write(
        &d.path().join("other.yar"),
        b"rule Other { condition: filesize > 0 }\n",
    );
    std::os::unix::fs::symlink("../other.yar", d.path().join("rules/x.yar")).unwrap();
    let r = scan(d.path(), "rules", false);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("x.yar"), "{}", r.stderr);
    assert!(r.stderr.contains("outside the rule paths"), "{}", r.stderr);

    // A link to a file inside the rule paths: compiled and listed.
    let e = project(&[
        ("a.yar", b"rule A { condition: false }\n"),
        ("shared/b.rules", b"rule B { condition: filesize > 0 }\n"),
    ]);
    std::os::unix::fs::symlink("shared/b.rules", e.path().join("rules/b.yar")).unwrap();
    let r = scan(e.path(), "rules", true);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let j = r.json();
    assert_eq!(
        pairs(&j, "new"),
        vec![("B".to_string(), "corpus/f.bin".to_string())]
    );
    let files = j["rulesets"]["candidate"]["files"].to_string();
    assert!(files.contains("b.yar"), "{files}");

    // A linked directory that leads outside the rule paths: refused.
    let g = project(&[("a.yar", b"rule A { condition: false }\n")]);
    let outside = tempfile::tempdir().unwrap();
    write(
        &outside.path().join("o.yar"),
        b"rule O { condition: true }\n",
    );
    std::os::unix::fs::symlink(outside.path(), g.path().join("rules/vendor")).unwrap();
    let r = scan(g.path(), "rules", false);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("rules/vendor"), "{}", r.stderr);

    // A dangling link named like a rule file: refused.
    let f = project(&[("a.yar", b"rule A { condition: false }\n")]);
    std::os::unix::fs::symlink("nowhere.yar", f.path().join("rules/gone.yar")).unwrap();
    let r = scan(f.path(), "rules", false);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("gone.yar"), "{}", r.stderr);
}

#[test]
fn a_config_cannot_name_a_rule_file_outside_its_directory() {
    for target in ["/proc/self/environ", "/etc/passwd", "../outside.yar"] {
        let d = project(&[("ok.yar", b"rule ok { condition: false }\n")]);
        let repo = d.path().join("repo");
        std::fs::create_dir_all(&repo).unwrap();
        write(
            &d.path().join("outside.yar"),
            b"rule outside { condition: true }\n",
        );
        write(
            &repo.join("fpgate.toml"),
            format!("[rules]\ncandidate = [{target:?}]\n[corpus]\npaths = [\"../corpus\"]\n")
                .as_bytes(),
        );
        let r = run(fpgate()
            .current_dir(&repo)
            .env("SECRET_TOKEN", SECRET)
            .args(["scan", "--format", "json"]));
        assert_eq!(r.code, 2, "{target}: {}", r.stderr);
        assert!(
            r.stderr.contains("rules.candidate") && r.stderr.contains("is refused"),
            "{}",
            r.stderr
        );
        assert_no_leak(&r, "", target);
    }
}
