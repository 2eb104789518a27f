//! Oracle and external-variable tests.
//!
//! The oracle is a plain sequential yara-x loop over the same files with the
//! same rules and the same per-file external variables; fpgate's parallel,
//! deduplicating scan must find exactly the same (rule, file) pairs.

use crate::common::*;
use std::collections::BTreeSet;
use std::path::Path;

fn oracle(rule_dir: &str, corpus: &str) -> BTreeSet<(String, String)> {
    let root = root();
    oracle_pairs(&root.join(rule_dir), &root.join(corpus), &root)
        .into_iter()
        .collect()
}

#[test]
fn fpgate_finds_exactly_what_a_sequential_yara_x_loop_finds() {
    for rules in ["rules/candidate", "rules/released"] {
        let expected = oracle(rules, "corpus");
        let r = run(fpgate().args([
            "scan", "--rules", rules, "--corpus", "corpus", "--format", "json",
        ]));
        assert!(r.code == 0 || r.code == 1, "{}", r.stderr);
        let got: BTreeSet<_> = pairs(&r.json(), "new").into_iter().collect();
        assert_eq!(got, expected, "ruleset {rules}");
    }
    assert!(
        !oracle("rules/candidate", "corpus").is_empty(),
        "the oracle must see the demo hits"
    );
}

#[test]
fn per_path_externals_split_identical_contents() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    for name in ["a/setup.exe", "b/setup.dat", "c/Update.EXE"] {
        write(&p.join("corpus").join(name), b"MZ identical content");
    }
    write(
        &p.join("r.yar"),
        b"rule ExeOnly { condition: extension == \".exe\" }\n\
          rule NamedSetup { condition: filename == \"setup.exe\" or filename == \"setup.dat\" }\n\
          rule InB { condition: filepath contains \"/b/\" }\n",
    );
    let r = run(fpgate().current_dir(p).args([
        "scan", "--rules", "r.yar", "--corpus", "corpus", "--format", "json",
    ]));
    assert_eq!(r.code, 1, "{}", r.stderr);
    let j = r.json();
    assert_eq!(
        pairs(&j, "new"),
        vec![
            ("ExeOnly".into(), "corpus/a/setup.exe".into()),
            ("ExeOnly".into(), "corpus/c/Update.EXE".into()),
            ("InB".into(), "corpus/b/setup.dat".into()),
            ("NamedSetup".into(), "corpus/a/setup.exe".into()),
            ("NamedSetup".into(), "corpus/b/setup.dat".into()),
        ]
    );
    assert_eq!(
        j["rulesets"]["candidate"]["per_file_externals"],
        serde_json::json!(["extension", "filename", "filepath"])
    );
}

fn define_case(dir: &Path, extra: &[&str]) -> Run {
    run(fpgate()
        .current_dir(dir)
        .args([
            "scan", "--rules", "r.yar", "--corpus", "corpus", "--format", "json",
        ])
        .args(extra))
}

#[test]
fn defines_declare_custom_externals_and_undeclared_ones_fail_to_compile() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    write(&p.join("corpus/f"), b"anything");
    write(
        &p.join("r.yar"),
        b"rule Env { condition: env_tier == \"prod\" and max_size > 3 and strict }\n",
    );
    // Undeclared external: a compile error naming it, exit 2.
    let r = define_case(p, &[]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("unknown identifier `env_tier`"),
        "{}",
        r.stderr
    );

    let r = define_case(
        p,
        &[
            "-d",
            "env_tier=prod",
            "-d",
            "max_size=4",
            "--define",
            "strict=true",
        ],
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_eq!(
        pairs(&r.json(), "new"),
        vec![("Env".into(), "corpus/f".into())]
    );

    let r = define_case(
        p,
        &[
            "-d",
            "env_tier=dev",
            "-d",
            "max_size=4",
            "-d",
            "strict=true",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
}

#[test]
fn signature_base_style_externals_compile_and_a_define_overrides_them() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    write(&p.join("corpus/tool.exe"), b"MZ payload");
    write(
        &p.join("r.yar"),
        b"rule SB { condition: filetype == \"EXE\" and owner == \"\" and not filepath contains \"Windows\" }\n",
    );
    let r = define_case(p, &[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let r = define_case(p, &["-d", "owner=SYSTEM"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
}
