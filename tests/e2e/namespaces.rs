//! `NS:PATH` rule paths, as yr takes them: each path's rules in its own
//! namespace. Checked against the engine itself (yara-x compiling the same
//! files with `new_namespace`, as yr does), with the cache cold, warm and
//! after an edit, through a gate against a baseline and `--baseline-ref`.

use crate::common::*;
use serde_json::Value;
use std::collections::BTreeSet;

/// (namespace, rule, path) of every match a JSON report lists, any class.
fn triples(report: &Value) -> BTreeSet<(String, String, String)> {
    let mut out = BTreeSet::new();
    for class in ["new", "persisting", "excepted"] {
        for f in report["false_positives"][class]
            .as_array()
            .into_iter()
            .flatten()
        {
            for p in f["paths"].as_array().unwrap() {
                out.insert((
                    f["rule"]["namespace"].as_str().unwrap().to_string(),
                    f["rule"]["identifier"].as_str().unwrap().to_string(),
                    p.as_str().unwrap().to_string(),
                ));
            }
        }
    }
    out
}

/// The engine's answer: yara-x with one namespace per group, in order, and
/// a plain loop over the corpus.
fn engine(p: &Project, groups: &[(&str, &[&str])]) -> BTreeSet<(String, String, String)> {
    let mut c = yara_x::Compiler::new();
    for (ns, files) in groups {
        c.new_namespace(ns);
        for f in *files {
            c.add_source(std::fs::read_to_string(p.join(f)).unwrap().as_str())
                .unwrap();
        }
    }
    let rules = c.build();
    let mut scanner = yara_x::Scanner::new(&rules);
    let mut out = BTreeSet::new();
    for e in walkdir::WalkDir::new(p.join("corpus")).sort_by_file_name() {
        let e = e.unwrap();
        if !e.file_type().is_file() {
            continue;
        }
        let rel = e
            .path()
            .strip_prefix(p.path())
            .unwrap()
            .display()
            .to_string();
        for r in scanner.scan_file(e.path()).unwrap().matching_rules() {
            out.insert((
                r.namespace().to_string(),
                r.identifier().to_string(),
                rel.clone(),
            ));
        }
    }
    out
}

/// Two teams' rule directories with the same rule names, a global rule
/// that must bind only its own namespace, a rule using another by name, and
/// a file of the default namespace.
fn project() -> Project {
    Project::new()
        .file(
            "a/a.yar",
            "global rule OnlyPE { condition: uint16(0) == 0x5A4D }\n\
             rule Dup { strings: $d = \"Downloading\" condition: $d }\n",
        )
        .file(
            "b/b.yar",
            "rule Dup { strings: $d = \"Downloading\" condition: $d }\n\
             rule UsesDup { strings: $u = \"update\" condition: Dup and $u }\n",
        )
        .file(
            "plain.yar",
            "rule Dup { strings: $d = \"Downloading\" condition: $d }\n",
        )
        .corpus(&[
            ("pe.exe", b"MZ\x90\x00 Downloading the update"),
            ("elf.bin", b"\x7fELF Downloading the update"),
            ("none.txt", b"nothing here"),
        ])
}

const PATHS: [&str; 3] = ["team_a:a", "team_b:b", "plain.yar"];

fn scan(p: &Project, rules: &[&str], extra: &[&str]) -> Run {
    let mut args = vec![
        "scan",
        "--no-config",
        "--corpus",
        "corpus",
        "--format",
        "json",
        "--rules",
    ];
    args.extend(rules);
    args.extend(extra);
    p.run(&args)
}

#[test]
fn namespaced_paths_match_what_the_engine_finds_cached_and_not() {
    let p = project();
    let groups: [(&str, &[&str]); 3] = [
        ("team_a", &["a/a.yar"]),
        ("team_b", &["b/b.yar"]),
        ("default", &["plain.yar"]),
    ];
    let expected = engine(&p, &groups);
    // The global rule binds team_a only; the same name in three namespaces
    // is three rules.
    assert!(expected.contains(&("team_b".into(), "Dup".into(), "corpus/elf.bin".into())));
    assert!(!expected.contains(&("team_a".into(), "Dup".into(), "corpus/elf.bin".into())));
    assert!(expected.contains(&("default".into(), "Dup".into(), "corpus/elf.bin".into())));
    let cache = p.join("cache");
    let cache = cache.to_str().unwrap();
    for (what, extra) in [
        ("no cache", vec!["--no-cache"]),
        ("cold", vec!["--cache", cache]),
        ("warm", vec!["--cache", cache]),
    ] {
        let r = scan(&p, &PATHS, &extra);
        assert_eq!(r.code, 1, "{what}: {}", r.stderr);
        assert_eq!(triples(&r.json()), expected, "{what}");
    }
    // An edit in one namespace: only that namespace's answer changes, and
    // the cache (which now runs the edited rule alone) agrees.
    p.file_ref(
        "b/b.yar",
        "rule Dup { strings: $d = \"Downloading\" condition: $d and uint32(0) == 0x464c457f }\n\
         rule UsesDup { strings: $u = \"update\" condition: Dup and $u }\n",
    );
    let expected = engine(&p, &groups);
    let cached = scan(&p, &PATHS, &["--cache", cache]);
    let plain = scan(&p, &PATHS, &["--no-cache"]);
    assert_eq!(triples(&plain.json()), expected);
    assert_eq!(triples(&cached.json()), expected, "{}", cached.stderr);
    let j = cached.json();
    // Answered by running the edited rule and its user alone (a subset
    // compiled into its namespace), the other namespaces from the cache.
    let stats = &j["timings"]["cache"];
    assert_eq!(stats["changed_rules"]["candidate"], 2, "{stats}");
    assert_eq!(stats["files_scanned_all_rules"], 0, "{stats}");
    assert_eq!(stats["uncached_rulesets"], serde_json::json!({}), "{stats}");
    assert_eq!(
        j["rulesets"]["candidate"]["paths"],
        serde_json::json!(["team_a:a", "team_b:b", "plain.yar"])
    );
    // Five rules, three of them named Dup.
    assert_eq!(
        j["rulesets"]["candidate"]["rules"], 5,
        "{}",
        j["rulesets"]["candidate"]
    );
}

#[test]
fn a_rule_cannot_see_another_namespace_and_the_error_names_it() {
    let p = Project::new()
        .file("a/a.yar", "rule Helper { condition: true }\n")
        .file("b/b.yar", "rule User { condition: Helper }\n")
        .corpus(&[("x", b"x")]);
    // One namespace: compiles.
    assert_eq!(scan(&p, &["a", "b"], &[]).code, 1);
    // Two: `Helper` is unknown in team_b, as yr says.
    let r = scan(&p, &["team_a:a", "team_b:b"], &[]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("b/b.yar") && r.stderr.contains("Helper"),
        "{}",
        r.stderr
    );
}

#[test]
fn bad_namespace_arguments_are_refused_before_anything_is_read() {
    let p = project();
    for (rules, says) in [
        (
            vec!["team_a:a", "team_b:b", "team_a:plain.yar"],
            "side by side",
        ),
        (vec![":a"], "both parts"),
        (vec!["team_a:"], "both parts"),
        (vec!["te am:a"], "may hold letters"),
    ] {
        let r = scan(&p, &rules, &[]);
        assert_eq!(r.code, 2, "{rules:?}: {}", r.stderr);
        assert!(r.stderr.contains(says), "{rules:?}: {}", r.stderr);
    }
    // A colon after a slash is part of the path.
    p.file_ref("odd/x:y.yar", "rule Odd { condition: false }\n");
    let r = scan(&p, &["./odd/x:y.yar"], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
}

#[test]
fn gate_compares_rules_namespace_by_namespace_and_exceptions_name_them() {
    let p = project()
        .file("fpgate.toml", "[rules]\ncandidate = [\"team_a:a\", \"team_b:b\", \"plain.yar\"]\nbaseline_ref = \"HEAD\"\n[corpus]\npaths = [\"corpus\"]\n")
        .file(
            "fpgate-exceptions.toml",
            "[[exception]]\nrule = \"team_b:UsesDup\"\npath = \"corpus/*\"\nreason = \"accepted: test\"\nowner = \"t\"\nexpires = \"2099-01-01\"\n",
        );
    p.git(&["init", "-q", "-b", "main"]);
    p.git(&["add", "."]);
    p.git(&["commit", "-q", "-m", "v1"]);
    // The change edits team_b's Dup only; team_a's and default's, same name,
    // stay unchanged.
    p.file_ref(
        "b/b.yar",
        "rule Dup { strings: $d = \"Downloading\" condition: $d and filesize < 100 }\n\
         rule UsesDup { strings: $u = \"update\" condition: Dup and $u }\n",
    );
    let r = p.run(&["gate", "--format", "json", "--no-cache"]);
    let j = r.json();
    let changed: Vec<String> = j["rule_changes"]["modified"]
        .as_array()
        .unwrap_or_else(|| {
            panic!(
                "{}",
                serde_json::to_string_pretty(&j["rule_changes"]).unwrap()
            )
        })
        .iter()
        .map(|c| {
            format!(
                "{}:{}",
                c["namespace"].as_str().unwrap(),
                c["identifier"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(changed, ["team_b:Dup"]);
    assert_eq!(
        j["rulesets"]["baseline"]["paths"],
        serde_json::json!(["team_a:HEAD:a", "team_b:HEAD:b", "HEAD:plain.yar"])
    );
    // Every match was there before: persisting; team_b:UsesDup is excepted.
    let excepted: BTreeSet<String> = j["false_positives"]["excepted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            format!(
                "{}:{}",
                f["rule"]["namespace"].as_str().unwrap(),
                f["rule"]["identifier"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(excepted, ["team_b:UsesDup".to_string()].into());
    assert!(triples(&j)
        .iter()
        .all(|t| t.0 != "team_b" || t.1 != "UsesDup" || t.2 != "corpus/none.txt"));
    assert_eq!(r.code, 0, "{}", r.stderr);
    // The cached gate says the same.
    let cached = p.run(&["gate", "--format", "json"]);
    assert_eq!(triples(&cached.json()), triples(&j));
    assert_eq!(cached.code, 0);
}

/// A file included from two namespaces is compiled into each; a rule of a
/// top-level file that uses a rule of an included one survives an edit of
/// the included file with the cache (the changed rules are compiled alone,
/// each after the rules it uses); shards merged give the one run's answer.
#[test]
fn included_files_edits_and_shards_keep_namespaces_apart() {
    let p = project()
        .file(
            "a/shared.inc",
            "rule Shared { strings: $s = \"update\" condition: $s }\n",
        )
        .file(
            "a/inc.yar",
            "include \"shared.inc\"\nrule UsesShared { condition: Shared }\n",
        )
        .file("b/inc.yar", "include \"../a/shared.inc\"\n");
    let cache = p.join("cache");
    let cache = cache.to_str().unwrap();
    let both = |what: &str| -> BTreeSet<(String, String, String)> {
        let cached = scan(&p, &PATHS, &["--cache", cache]);
        let plain = scan(&p, &PATHS, &["--no-cache"]);
        assert_eq!(plain.code, 1, "{what}: {}", plain.stderr);
        assert!(
            !cached.stderr.contains("running all rules"),
            "{what}: {}",
            cached.stderr
        );
        assert_eq!(triples(&cached.json()), triples(&plain.json()), "{what}");
        triples(&plain.json())
    };
    let t = both("cold");
    // team_a's global rule binds team_a's copy of the included rule only.
    assert!(t.contains(&("team_b".into(), "Shared".into(), "corpus/elf.bin".into())));
    assert!(!t.contains(&("team_a".into(), "Shared".into(), "corpus/elf.bin".into())));
    assert!(t.contains(&("team_a".into(), "UsesShared".into(), "corpus/pe.exe".into())));
    p.file_ref(
        "a/shared.inc",
        "rule Shared { strings: $s = \"update\" condition: $s and filesize > 30 }\n",
    );
    let t = both("the included file edited");
    assert!(!t.iter().any(|x| x.1 == "UsesShared"), "{t:?}");

    // Shards and merge.
    let mut args: Vec<String> = ["scan", "--no-config", "--no-cache", "--corpus"]
        .map(String::from)
        .to_vec();
    args.push(p.join("corpus").display().to_string());
    args.push("--rules".into());
    for r in PATHS {
        let (ns, path) = r.split_once(':').unwrap_or(("", r));
        let abs = p.join(path).display().to_string();
        args.push(if ns.is_empty() {
            abs
        } else {
            format!("{ns}:{abs}")
        });
    }
    let one = run(fpgate().args(&args).args(["--format", "json"]));
    let mut parts = Vec::new();
    for k in 1..=2 {
        let out = p.join(&format!("part{k}.json"));
        let r = run(fpgate()
            .args(&args)
            .arg("--shard")
            .arg(format!("{k}/2"))
            .arg("-o")
            .arg(&out));
        assert_eq!(r.code, 0, "{}", r.stderr);
        parts.push(out);
    }
    let merged = run(fpgate()
        .arg("merge")
        .args(&parts)
        .args(["--format", "json"]));
    assert_eq!(merged.code, one.code, "{}", merged.stderr);
    assert_eq!(triples(&merged.json()), triples(&one.json()));
}
