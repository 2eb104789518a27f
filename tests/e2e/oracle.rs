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

/// A gate searches each file once with every rule: the baseline's rules
/// that are the candidate's too take the candidate's results, the others
/// (modified, removed, and rules whose dependency or global rule changed)
/// run on their own. Its classes must be exactly what two plain yara-x
/// loops give (new = candidate - baseline, fixed = baseline - candidate),
/// without the cache, with a cold cache and with a warm one.
#[test]
fn a_gate_sharing_the_candidates_scan_agrees_with_two_yara_x_loops() {
    // (baseline, candidate, corpus, baseline rules shared, run on their own)
    let cases: [(&str, &str, &[(&str, &[u8])], u64, u64); 2] = [
        (
            "rule Same { strings: $a = \"AAAA\" condition: $a }\n\
             rule Modified { strings: $b = \"BBBB\" condition: $b }\n\
             rule Removed { strings: $c = \"CCCC\" condition: $c }\n\
             private rule Helper { strings: $h = \"HHHH\" condition: $h }\n\
             rule UsesHelper { condition: Helper }\n",
            "rule Same { strings: $a = \"AAAA\" condition: $a }\n\
             rule Modified { strings: $b = \"BBBB\" condition: $b and filesize > 10 }\n\
             rule Added { strings: $d = \"DDDD\" condition: $d }\n\
             private rule Helper { strings: $h = \"HHHX\" condition: $h }\n\
             rule UsesHelper { condition: Helper }\n",
            &[
                ("f1", b"AAAA"),
                ("f2", b"BBBB"),
                ("f3", b"CCCC"),
                ("f4", b"HHHH"),
                ("f5", b"HHHX"),
                ("f6", b"DDDD .. BBBB .. AAAA"),
            ],
            1,
            4,
        ),
        (
            "global rule G { condition: filesize > 0 }\n\
             rule X { strings: $x = \"XXXX\" condition: $x }\n\
             rule Y { strings: $y = \"YYYY\" condition: $y }\n",
            "global rule G { condition: filesize > 6 }\n\
             rule X { strings: $x = \"XXXX\" condition: $x }\n\
             rule Y { strings: $y = \"YYYY\" condition: $y }\n",
            &[
                ("g1", b"XXXX"),
                ("g2", b"XXXX long"),
                ("g3", b"YYYY"),
                ("g4", b"none"),
            ],
            // Every rule depends on the global rule that changed.
            0,
            3,
        ),
    ];
    for (baseline, candidate, corpus, shared, own) in cases {
        let p = Project::new()
            .file("baseline/r.yar", baseline)
            .file("candidate/r.yar", candidate)
            .corpus(corpus);
        let b: BTreeSet<_> = oracle_pairs(&p.join("baseline"), &p.join("corpus"), p.path())
            .into_iter()
            .collect();
        let c: BTreeSet<_> = oracle_pairs(&p.join("candidate"), &p.join("corpus"), p.path())
            .into_iter()
            .collect();
        let cache = p.join("cache");
        for extra in [
            vec!["--no-cache"],
            vec!["--cache", cache.to_str().unwrap()],
            vec!["--cache", cache.to_str().unwrap()],
        ] {
            let mut args = vec![
                "gate",
                "--no-config",
                "--candidate",
                "candidate",
                "--baseline",
                "baseline",
                "--corpus",
                "corpus",
                "--format",
                "json",
            ];
            args.extend(extra.iter().copied());
            let r = p.run(&args);
            assert!(r.code <= 1, "{}", r.stderr);
            let j = r.json();
            let got = |class: &str| -> BTreeSet<(String, String)> {
                pairs(&j, class).into_iter().collect()
            };
            assert_eq!(got("new"), &c - &b, "{extra:?}");
            assert_eq!(got("persisting"), &c & &b, "{extra:?}");
            assert_eq!(got("fixed"), &b - &c, "{extra:?}");
            // The baseline really took the candidate's results.
            let sh = &j["timings"]["shared_scan"];
            assert_eq!(sh["shared_rules"].as_u64(), Some(shared), "{sh}");
            assert_eq!(sh["own_rules"].as_u64(), Some(own), "{sh}");
        }
        assert!(!(&b - &c).is_empty(), "the case must change a verdict");
    }
}
