//! The differential check: a run answered (partly) from the results cache
//! must equal a run without it, exactly (matches, evidence, verdict, exit
//! code), after every kind of edit a rule author makes, on real rules: the
//! repository's rule sets and a public rule set from ../shared/rulesets.
//! Edits that only touch meta, comments or layout must be answered from the
//! cache; edits that break the full compile must exit 2 on the cached path
//! too. A seeded generator of random edits checks the same equality.

use crate::common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};

struct Ws {
    _dir: tempfile::TempDir,
    rules: PathBuf,
    corpus: PathBuf,
    cache: PathBuf,
    /// Extra flags of every scan (compile options).
    args: Vec<&'static str>,
}

/// A private copy of the rules and the corpus, files aged an hour so the
/// stat cache may remember them, and an empty results cache.
fn workspace(with_public_set: bool) -> Ws {
    let d = tempfile::tempdir().unwrap();
    let rules = d.path().join("rules");
    let corpus = d.path().join("corpus");
    copy_dir(&root().join("rules/candidate"), &rules);
    if with_public_set {
        let public = root().join("../shared/rulesets/bartblaze-yara-rules/rules");
        assert!(
            public.is_dir(),
            "the differential check needs ../shared/rulesets beside the project"
        );
        copy_dir(&public, &rules.join("bartblaze"));
    }
    copy_dir(&root().join("corpus"), &corpus);
    std::fs::remove_file(corpus.join("MANIFEST")).ok();
    age(d.path());
    let cache = d.path().join("cache");
    Ws {
        _dir: d,
        rules,
        corpus,
        cache,
        args: Vec::new(),
    }
}

/// One scan: exit code, the JSON report (or JSON error report) without its
/// run-dependent timings, and the cache statistics.
fn scan(ws: &Ws, cached: bool) -> (i32, Value, Value) {
    let mut c = fpgate();
    c.args(["scan", "--no-config", "--format", "json", "--rules"])
        .arg(&ws.rules)
        .arg("--corpus")
        .arg(&ws.corpus)
        .args(&ws.args);
    if cached {
        c.arg("--cache").arg(&ws.cache);
    } else {
        c.arg("--no-cache");
    }
    let r = run(&mut c);
    assert!(matches!(r.code, 0..=2), "exit {}: {}", r.code, r.stderr);
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    let mut j = r.json();
    let t = j
        .as_object_mut()
        .and_then(|o| o.remove("timings"))
        .unwrap_or(Value::Null);
    (r.code, j, t["cache"].clone())
}

fn scanned(stats: &Value) -> u64 {
    stats["files_scanned_all_rules"].as_u64().unwrap_or(0)
        + stats["files_scanned_changed_rules"].as_u64().unwrap_or(0)
}

/// After an edit: the cached run equals the uncached one. Returns the
/// exit code and the cache statistics.
fn same(ws: &Ws, what: &str) -> (i32, Value) {
    let (pc, plain, _) = scan(ws, false);
    let (cc, cached, stats) = scan(ws, true);
    assert_eq!(cc, pc, "{what}: exit codes differ");
    if cached != plain {
        panic!(
            "{what}: the cached report differs from the uncached one at {}",
            first_difference(&cached, &plain, "")
        );
    }
    (pc, stats)
}

/// Where two JSON values first differ, with both sides, for the message.
fn first_difference(a: &Value, b: &Value, at: &str) -> String {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for k in x.keys().chain(y.keys()) {
                let (p, q) = (
                    x.get(k).unwrap_or(&Value::Null),
                    y.get(k).unwrap_or(&Value::Null),
                );
                if p != q {
                    return first_difference(p, q, &format!("{at}.{k}"));
                }
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (p, q)) in x.iter().zip(y).enumerate() {
                if p != q {
                    return first_difference(p, q, &format!("{at}[{i}]"));
                }
            }
        }
        _ => {}
    }
    format!("{at}: cached {a} / uncached {b}")
}

fn edit(path: &Path, from: &str, to: &str) {
    let src = std::fs::read_to_string(path).unwrap();
    assert!(src.contains(from), "{} lacks {from:?}", path.display());
    std::fs::write(path, src.replacen(from, to, 1)).unwrap();
}

fn append(path: &Path, text: &str) {
    let mut src = std::fs::read_to_string(path).unwrap_or_default();
    src.push_str(text);
    std::fs::write(path, src).unwrap();
}

fn matched(report: &Value) -> usize {
    report["false_positives"]["new"]
        .as_array()
        .map_or(0, |a| a.len())
}

#[test]
fn cached_equals_uncached_after_every_kind_of_edit() {
    let ws = workspace(true);
    let upd = ws.rules.join("updaters.yar");
    let extra = ws.rules.join("zz_edits.yar");
    let (code, _) = same(&ws, "cold");
    assert_eq!(code, 1, "the demo candidate is blocked");

    // Each step: what it is, the edit, whether only meta/comments changed.
    type Step<'a> = (&'static str, Box<dyn Fn() + 'a>, bool);
    let steps: Vec<Step> = vec![
        ("warm rerun", Box::new(|| {}), true),
        (
            "regexp in a function argument, then `and` -> `or` after it",
            Box::new(|| {
                append(&extra, "import \"pe\"\nrule regex_arg { condition: pe.exports(/http:\\/\\//) and filesize > 0 }\n")
            }),
            false,
        ),
        (
            "the issue's stale-cache edit",
            Box::new(|| edit(&extra, "/) and filesize", "/) or filesize")),
            false,
        ),
        (
            "operator swap in a real rule",
            Box::new(|| edit(&upd, "and 1 of ($ex*)", "and 2 of ($ex*)")),
            false,
        ),
        (
            "operator swap back",
            Box::new(|| edit(&upd, "and 2 of ($ex*)", "and 1 of ($ex*)")),
            false,
        ),
        (
            "string edit",
            Box::new(|| {
                append(&extra, "rule text_edit { strings: $a = \"This program cannot be run in DOS mode\" condition: $a }\n")
            }),
            false,
        ),
        (
            "string edit 2",
            Box::new(|| edit(&extra, "cannot be run in DOS", "cannot be run in D0S")),
            false,
        ),
        (
            "nocase",
            Box::new(|| edit(&extra, "D0S mode\"", "D0S mode\" nocase")),
            false,
        ),
        (
            "nocase back",
            Box::new(|| edit(&extra, "D0S mode\" nocase", "DOS mode\" nocase")),
            false,
        ),
        (
            "wide",
            Box::new(|| edit(&extra, "DOS mode\" nocase", "DOS mode\" wide")),
            false,
        ),
        (
            "ascii wide",
            Box::new(|| edit(&extra, "DOS mode\" wide", "DOS mode\" ascii wide")),
            false,
        ),
        (
            "fullword",
            Box::new(|| edit(&extra, "DOS mode\" ascii wide", "DOS mode\" fullword")),
            false,
        ),
        (
            "xor",
            Box::new(|| edit(&extra, "DOS mode\" fullword", "DOS mode\" xor(1-3)")),
            false,
        ),
        (
            "hex edit",
            Box::new(|| {
                append(
                    &extra,
                    "rule hex_edit { strings: $h = { 4D 5A 90 00 } condition: $h at 0 }\n",
                )
            }),
            false,
        ),
        (
            "hex edit 2",
            Box::new(|| edit(&extra, "{ 4D 5A 90 00 }", "{ 4D 5A ?? 00 }")),
            false,
        ),
        (
            "hex edit 3",
            Box::new(|| edit(&extra, "{ 4D 5A ?? 00 }", "{ 4D 5A [0-2] 03 }")),
            false,
        ),
        (
            "rule renamed",
            Box::new(|| edit(&extra, "rule hex_edit", "rule hex_renamed")),
            false,
        ),
        (
            "a referenced rule is added and used",
            Box::new(|| {
                append(&extra, "private rule helper { strings: $z = \"zzzz-no-such-text\" condition: $z }\nrule user_of_helper { condition: helper and filesize > 10 }\n")
            }),
            false,
        ),
        (
            "the referenced rule changes",
            Box::new(|| edit(&extra, "\"zzzz-no-such-text\"", "\"PE\\x00\\x00\"")),
            false,
        ),
        (
            "a referenced rule made public",
            Box::new(|| edit(&extra, "private rule helper", "rule helper")),
            false,
        ),
        (
            "meta-only edit of a real rule",
            Box::new(|| edit(&upd, "description = \"", "description = \"(edited) ")),
            true,
        ),
        (
            "meta-only edit of a public rule",
            Box::new(|| {
                let f = public_file(&ws.rules);
                edit(&f, "author = \"", "author = \"someone else, ");
            }),
            true,
        ),
        (
            "comment and layout only",
            Box::new(|| {
                edit(
                    &upd,
                    "\nrule Shh_Updater_B",
                    "\n// a comment\n/* another */\nrule   Shh_Updater_B",
                );
                edit(&extra, "condition: helper", "condition:\n\n      helper");
            }),
            true,
        ),
        (
            "tags only",
            Box::new(|| edit(&extra, "rule hex_renamed", "rule hex_renamed : newtag")),
            true,
        ),
        (
            "a public rule made to match everything",
            Box::new(|| {
                let f = public_file(&ws.rules);
                edit(&f, "condition:", "condition: filesize > 0 or");
            }),
            false,
        ),
        (
            "a global rule added",
            Box::new(|| {
                append(
                    &extra,
                    "global rule only_small { condition: filesize < 300KB }\n",
                )
            }),
            false,
        ),
        (
            "the global rule changed",
            Box::new(|| edit(&extra, "filesize < 300KB", "filesize < 3MB")),
            false,
        ),
        (
            "the global rule removed",
            Box::new(|| edit(&extra, "global rule only_small", "rule only_small")),
            false,
        ),
    ];
    let mut last_matches = 0;
    let mut changed = 0;
    for (what, step, meta_only) in &steps {
        step();
        let (code, stats) = same(&ws, what);
        assert!(code == 0 || code == 1, "{what}: exit {code}");
        if *meta_only {
            assert_eq!(
                scanned(&stats),
                0,
                "{what}: answered from the cache without scanning: {stats}"
            );
        }
        if *meta_only || what.starts_with("operator swap") || what.starts_with("string edit") {
            // Neither compiled in full nor loaded: the edit was validated,
            // its rules compiled alone, the rest answered from the cache.
            assert_eq!(
                stats["full_rules_loaded"],
                serde_json::json!([]),
                "{what}: {stats}"
            );
        }
        let (_, r, _) = scan(&ws, true);
        if matched(&r) != last_matches {
            changed += 1;
        }
        last_matches = matched(&r);
    }
    assert!(
        changed >= 6,
        "the edits must change the verdicts ({changed} did)"
    );
}

/// The first public rule file that has an `author` meta and a condition.
fn public_file(rules: &Path) -> PathBuf {
    let mut files: Vec<PathBuf> = walkdir::WalkDir::new(rules.join("bartblaze"))
        .sort_by_file_name()
        .into_iter()
        .filter_map(Result::ok)
        .map(|e| e.into_path())
        .filter(|p| {
            p.extension().is_some_and(|x| x == "yar")
                && std::fs::read_to_string(p).is_ok_and(|s| {
                    s.contains("author = \"") && s.matches("condition:").count() == 1
                })
        })
        .collect();
    files.truncate(1);
    files.pop().expect("a public rule file")
}

#[test]
fn edits_that_break_the_full_compile_exit_2_with_the_cache_too() {
    let ws = workspace(false);
    let extra = ws.rules.join("zz_edits.yar");
    append(&extra, "rule a1 { condition: filesize > 0 }\n");
    // An unchanged file that uses a rule of the edited one.
    append(
        &ws.rules.join("zz_user.yar"),
        "rule a2 { condition: a1 and filesize > 1 }\n",
    );
    assert_eq!(same(&ws, "cold").0, 1);
    let breaks: Vec<(&str, &str, &str)> = vec![
        (
            "duplicate identifier across files",
            "rule a1 {",
            "rule Shh_Updater_B_dup {",
        ),
        (
            "broken reference",
            "condition: filesize > 0 }",
            "condition: a_missing }",
        ),
        (
            "type error",
            "condition: filesize > 0 }",
            "condition: filesize + \"x\" }",
        ),
        (
            "syntax error",
            "condition: filesize > 0 }",
            "condition: filesize > 0 and }",
        ),
        // The edit renames a rule another, unchanged file refers to.
        (
            "a reference in an unchanged file broken",
            "rule a1 {",
            "rule a1_renamed {",
        ),
        (
            "a pattern made invalid",
            "rule a1 { condition: filesize > 0 }",
            "rule a1 { strings: $a = { 4D 5A [-] } condition: $a }",
        ),
        (
            "an unused pattern",
            "rule a1 { condition: filesize > 0 }",
            "rule a1 { strings: $a = \"abc\" condition: filesize > 0 }",
        ),
        (
            "an unknown module",
            "rule a1 {",
            "import \"no_such_module\"\nrule a1 {",
        ),
    ];
    let upd = std::fs::read_to_string(ws.rules.join("updaters.yar")).unwrap();
    let first_rule = upd
        .split("rule ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap()
        .to_string();
    let pristine = std::fs::read_to_string(&extra).unwrap();
    for (what, from, to) in breaks {
        std::fs::write(&extra, &pristine).unwrap();
        let to = to.replace("Shh_Updater_B_dup", &first_rule);
        edit(&extra, from, &to);
        let (code, _) = same(&ws, what);
        assert_eq!(code, 2, "{what} must be refused");
    }
}

/// A tiny deterministic generator (xorshift), so a failure names its seed.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// One random edit of `src`: operators, numbers, string bytes, modifiers,
/// comments and layout, anywhere in the text. Whatever it does (even when
/// the result no longer compiles), the cached run must equal the plain one.
fn mutate(src: &str, rng: &mut Rng) -> (String, String) {
    let swaps: &[(&str, &str)] = &[
        (" and ", " or "),
        (" or ", " and "),
        ("any of", "all of"),
        ("all of", "any of"),
        (" >= ", " < "),
        (" == ", " != "),
        ("\" ", "\" nocase "),
        ("\" ", "\" wide "),
        ("\" ", "\" fullword "),
        ("\" ", "\" ascii wide "),
        ("\" ", "\" xor "),
        ("condition:", "condition: filesize > 0 or"),
        ("condition:", "condition: // note\n"),
        ("{", "{ /* c */"),
        ("\n", "\n\n   "),
        ("description = \"", "description = \"x"),
    ];
    for _ in 0..8 {
        let (from, to) = swaps[rng.below(swaps.len())];
        let hits: Vec<usize> = src.match_indices(from).map(|(i, _)| i).collect();
        if hits.is_empty() {
            continue;
        }
        let at = hits[rng.below(hits.len())];
        let line = src[..at].matches('\n').count() + 1;
        return (
            format!("{}{}{}", &src[..at], to, &src[at + from.len()..]),
            format!("line {line}: {from:?} -> {to:?}"),
        );
    }
    // Otherwise flip one ASCII letter or digit.
    let b = src.as_bytes();
    let spots: Vec<usize> = (0..b.len())
        .filter(|&i| b[i].is_ascii_alphanumeric())
        .collect();
    let i = spots[rng.below(spots.len())];
    let mut out = b.to_vec();
    out[i] = if out[i].is_ascii_digit() {
        b'0' + (out[i] - b'0' + 1) % 10
    } else {
        out[i] ^ 0x20
    };
    let line = src[..i].matches('\n').count() + 1;
    let what = format!(
        "line {line}: byte {:?} -> {:?}",
        b[i] as char, out[i] as char
    );
    (String::from_utf8(out).unwrap(), what)
}

#[test]
fn random_edits_keep_cached_equal_to_uncached() {
    // The repository's rules and a public rule set; the repository's rules
    // (which hit the clean corpus) are edited half the time.
    let ws = workspace(true);
    let all: Vec<PathBuf> = walkdir::WalkDir::new(&ws.rules)
        .sort_by_file_name()
        .into_iter()
        .filter_map(Result::ok)
        .map(|e| e.into_path())
        .filter(|p| p.extension().is_some_and(|x| x == "yar"))
        .collect();
    let ours: Vec<PathBuf> = all
        .iter()
        .filter(|p| p.parent() == Some(ws.rules.as_path()))
        .cloned()
        .collect();
    let seed = std::env::var("FPGATE_DIFF_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x9e37_79b9_7f4a_7c15u64);
    let rounds: usize = std::env::var("FPGATE_DIFF_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let mut rng = Rng(seed);
    same(&ws, "cold");
    for round in 0..rounds {
        let pool = if rng.below(2) == 0 { &ours } else { &all };
        let f = &pool[rng.below(pool.len())];
        let src = std::fs::read_to_string(f).unwrap();
        let (new, change) = mutate(&src, &mut rng);
        std::fs::write(f, &new).unwrap();
        let what = format!("seed {seed:#x} round {round}: {}, {change}", f.display());
        let (code, _) = same(&ws, &what);
        if code == 2 {
            std::fs::write(f, &src).unwrap(); // keep the set compiling
        }
    }
}

#[test]
fn oracle_holds_with_the_cache_cold_warm_and_after_edits() {
    let ws = workspace(false);
    let base = ws.corpus.parent().unwrap().to_path_buf();
    let oracle = |rules: &Path| oracle_pairs(rules, &ws.corpus, &base);
    let got = |ws: &Ws| -> Vec<(String, String)> {
        let r = run(fpgate()
            .current_dir(ws.corpus.parent().unwrap())
            .args([
                "scan",
                "--no-config",
                "--format",
                "json",
                "--rules",
                "rules",
                "--corpus",
                "corpus",
                // The oracle walks files on disk; members of archives are
                // checked against other readers in `archives`.
                "--no-archives",
            ])
            .arg("--cache")
            .arg(&ws.cache));
        assert!(r.code == 0 || r.code == 1, "{}", r.stderr);
        pairs(&r.json(), "new")
    };
    let cold = got(&ws);
    assert!(!cold.is_empty());
    assert_eq!(cold, oracle(&ws.rules), "cold");
    assert_eq!(got(&ws), oracle(&ws.rules), "warm");
    let upd = ws.rules.join("updaters.yar");
    edit(&upd, "and 1 of ($ex*)", "and 2 of ($ex*)");
    assert_eq!(got(&ws), oracle(&ws.rules), "after an edit");
    append(&upd, "\nrule everything { condition: filesize > 0 }\n");
    let after = got(&ws);
    assert_eq!(after, oracle(&ws.rules), "after an added rule");
    assert!(after.len() > cold.len());
}

/// yr's compile options change what compiles, so they are part of every key:
/// with `--relaxed-re-syntax` and `--ignore-module`, on the repository's rules
/// plus a rule of each kind, the cached run equals the uncached one cold, warm,
/// after editing a rule, and after a rule that uses the ignored module starts
/// being used by another.
#[test]
fn compile_options_keep_cached_equal_to_uncached() {
    let mut ws = workspace(false);
    ws.args = vec![
        "--relaxed-re-syntax",
        "--ignore-module",
        "magic",
        "--allow-unevaluated",
    ];
    let extra = ws.rules.join("options.yar");
    append(
        &extra,
        "import \"magic\"\n\
         rule Relaxed { strings: $r = /Update\\Rxe/ condition: $r }\n\
         rule UsesMagic { condition: magic.type() contains \"PE\" }\n\
         rule Loose { strings: $a = \"Downloading\" condition: $a }\n",
    );
    let (code, _) = same(&ws, "cold");
    assert_eq!(code, 1, "Loose matches the updaters");
    same(&ws, "warm");
    edit(&extra, "\"Downloading\"", "\"URLDownloadToFile\"");
    same(&ws, "a rule edited");
    append(&extra, "rule UsesUser { condition: UsesMagic or Loose }\n");
    let (_, plain, _) = scan(&ws, false);
    let un: Vec<&str> = plain["rulesets"]["candidate"]["unevaluated"]
        .as_array()
        .expect("unevaluated rules listed")
        .iter()
        .map(|u| u["rule"].as_str().unwrap())
        .collect();
    assert_eq!(un, ["UsesMagic", "UsesUser"]);
    same(&ws, "a rule that depends on an ignored one");
    // The same rules without the options: a different answer, never the
    // cached one (magic is unknown without --ignore-module: exit 2).
    ws.args.clear();
    let (code, _) = same(&ws, "options dropped");
    assert_eq!(code, 2);
}

/// A ruleset as a report describes it, without its paths, and with
/// `baseline/` written `SET/` in its file names.
/// `fpgate gate` of baseline/ and candidate/ over corpus/ (a workspace's
/// layout in the two gate tests below).
const GATE: [&str; 7] = [
    "gate",
    "--baseline",
    "baseline",
    "--candidate",
    "candidate",
    "--corpus",
    "corpus",
];

/// The baseline's own full compile: `fpgate scan` with it as the candidate.
const OWN: [&str; 6] = [
    "scan",
    "--rules",
    "baseline",
    "--corpus",
    "corpus",
    "--no-cache",
];

fn described(r: &Value, set: &str) -> Value {
    let text = serde_json::to_string(&r["rulesets"][set])
        .unwrap()
        .replace("baseline/", "SET/");
    let mut v: Value = serde_json::from_str(&text).unwrap();
    v.as_object_mut().unwrap().remove("paths");
    v
}

/// A gate's baseline validated against the candidate's full compile (files
/// byte-identical to a candidate file are not compiled in full again) says
/// what the baseline's own full compile says: the same rules, warnings
/// (file, line, rule, rendered text), verdicts; and a broken baseline file
/// is still an error.
#[test]
fn a_baseline_validated_against_the_candidate_equals_its_own_full_compile() {
    let same = "rule Same {\n  strings: $a = { 41 41 41 41 }\n  condition: $a and 2\n}\n\
                private rule Helper { strings: $h = \"HHHH\" condition: $h }\n";
    let p = Project::new()
        .file("baseline/a_same.yar", same)
        .file("candidate/a_same.yar", same)
        .file(
            "baseline/b_changed.yar",
            "rule Changed { strings: $b = \"BBBB\" condition: $b and 1 }\n\
             rule UsesHelper { condition: Helper }\n",
        )
        .file(
            "candidate/b_changed.yar",
            "rule Changed { strings: $b = \"BBBB\" condition: $b and filesize > 6 }\n\
             rule UsesHelper { condition: Helper }\n",
        )
        .file(
            "baseline/c_removed.yar",
            "rule Removed { strings: $c = \"CCCC\" condition: $c }\n",
        )
        .corpus(&[
            ("f1", b"AAAA"),
            ("f2", b"BBBB"),
            ("f3", b"CCCC"),
            ("f4", b"HHHH"),
            ("f5", b"BBBB and more"),
        ]);
    // The baseline's own full compile: as the candidate of a scan.
    let own = p.run(&[&OWN[..], &["--format", "json"]].concat());
    assert_eq!(own.code, 1, "{}", own.stderr);
    let own = own.json();
    assert_eq!(
        own["rulesets"]["candidate"]["warnings"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    // `fpgate gate` of baseline/ and candidate/ over corpus/, then `extra`.
    let gate_cmd = |extra: &[&str]| {
        let mut args = GATE.to_vec();
        args.extend_from_slice(extra);
        p.cmd(&args)
    };
    let gate = |extra: &[&str]| run(&mut gate_cmd(extra));
    let empty = p.join("empty-cache");
    for cache in [vec!["--no-cache"], vec!["--cache", empty.to_str().unwrap()]] {
        let mut extra = vec!["--format", "json"];
        extra.extend(cache.iter().copied());
        let g = gate(&extra);
        // Nothing new: Changed now needs more than 6 bytes, and f5 has them.
        assert_eq!(g.code, 0, "{}", g.stderr);
        let g = g.json();
        assert_eq!(
            described(&g, "baseline"),
            described(&own, "candidate"),
            "{cache:?}"
        );
        // The path was taken: the baseline's complete rules were never built
        // (a cold cache says so; each shared rule came from the candidate).
        if cache[0] == "--cache" {
            let loaded = &g["timings"]["cache"]["full_rules_loaded"];
            assert!(
                !loaded.as_array().unwrap().iter().any(|v| v == "baseline"),
                "{loaded}"
            );
        }
        // The verdicts: what two plain yara-x loops say (see `oracle`).
        let found = |class: &str| pairs(&g, class);
        let has = |class: &str, rule: &str, file: &str| {
            found(class)
                .iter()
                .any(|(r, p)| r == rule && p.ends_with(file))
        };
        assert!(has("fixed", "Removed", "f3"), "{:?}", found("fixed"));
        assert!(has("fixed", "Changed", "f2"), "{:?}", found("fixed"));
        assert!(has("persisting", "Same", "f1"), "{:?}", found("persisting"));
        assert!(
            has("persisting", "UsesHelper", "f4"),
            "{:?}",
            found("persisting")
        );
    }
    // One worker thread everywhere (`RAYON_NUM_THREADS` also sizes the
    // background pool the baseline parses on while the candidate compiles):
    // the same baseline, and no wait on a thread that is itself waiting (a
    // hang fails the run's time limit).
    let mut one = gate_cmd(&["--no-cache", "-j", "1", "--format", "json"]);
    let g = run(one.env("RAYON_NUM_THREADS", "1"));
    assert_eq!(g.code, 0, "{}", g.stderr);
    assert_eq!(
        described(&g.json(), "baseline"),
        described(&own, "candidate")
    );
    // `file` made `text`: the gate exits 2 naming `set` and `word`.
    let broken = |file: &str, text: &str, set: &str, word: &str| {
        p.file_ref(file, text);
        let g = gate(&["--no-cache"]);
        assert_eq!(g.code, 2, "{}", g.stderr);
        assert!(
            g.stderr.contains(set) && g.stderr.contains(word),
            "{}",
            g.stderr
        );
        g
    };
    // A broken baseline file that the candidate does not have: exit 2, the
    // baseline's error.
    broken(
        "baseline/c_removed.yar",
        "rule Removed { condition: nosuch }\n",
        "baseline",
        "nosuch",
    );
    // A broken candidate: exit 2 with the candidate's error, whatever the
    // baseline (which stops waiting for it and is not compiled).
    let g = broken(
        "candidate/a_same.yar",
        "rule Same { condition: alsonosuch }\n",
        "candidate",
        "alsonosuch",
    );
    assert!(!g.stderr.contains("was not compiled"), "{}", g.stderr);
}

/// A file's warnings can depend on another file: yara-x ignores a rule that
/// uses a module left out (`--ignore-module`), and every rule that uses
/// that rule, with an `ignored_rule` warning in the using rule's own file.
/// A file byte-identical to a file compiled elsewhere (a gate's candidate,
/// an earlier run in the cache) must not take that file's warnings when
/// the set it is in does not give them.
#[test]
fn warnings_that_depend_on_another_file_are_not_taken_from_an_identical_file() {
    let uses = "rule X { strings: $x = \"XXXX\" condition: $x or Helper }\n";
    let ignored = "import \"foo\"\nrule Helper { condition: foo.x }\n";
    let plain = "rule Helper { condition: filesize > 100 }\n";
    let p = Project::new()
        .file("candidate/a.yar", ignored)
        .file("candidate/z.yar", uses)
        .file("baseline/a.yar", plain)
        .file("baseline/z.yar", uses)
        .file("set/a.yar", ignored)
        .file("set/z.yar", uses)
        .corpus(&[("f1", b"XXXX")]);
    let run_with = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--ignore-module", "foo", "--format", "json"]);
        p.run(&all)
    };
    let codes = |r: &Value| -> Vec<(String, String)> {
        r["rulesets"]["candidate"]["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| (w["code"].to_string(), w["file"].to_string()))
            .collect()
    };
    // The scenario: z.yar warns in the candidate, not in the baseline.
    let cand = run_with(&[
        "scan",
        "--rules",
        "candidate",
        "--corpus",
        "corpus",
        "--no-cache",
    ]);
    assert!(
        codes(&cand.json()).contains(&(
            "\"ignored_rule\"".to_string(),
            "\"candidate/z.yar\"".to_string()
        )),
        "{}",
        cand.stderr
    );
    let own = run_with(&OWN);
    assert_eq!(own.code, 1, "{}", own.stderr);
    let own = own.json();
    assert_eq!(codes(&own), vec![]);
    // A gate's baseline, validated against the candidate.
    let empty = p.join("empty-cache");
    for cache in [vec!["--no-cache"], vec!["--cache", empty.to_str().unwrap()]] {
        let mut args = GATE.to_vec();
        args.extend(cache.iter().copied());
        let g = run_with(&args);
        assert!(matches!(g.code, 0 | 1 | 3), "{}", g.stderr);
        assert_eq!(
            described(&g.json(), "baseline"),
            described(&own, "candidate"),
            "{cache:?}"
        );
    }
    // The cache: z.yar's warnings kept by a run of the set, then a.yar
    // edited so that Helper no longer uses the module.
    let cache = p.join("cache");
    let cache = cache.to_str().unwrap();
    let first = run_with(&[
        "scan", "--rules", "set", "--corpus", "corpus", "--cache", cache,
    ]);
    assert_eq!(first.code, 3, "{}", first.stderr);
    p.file_ref("set/a.yar", plain);
    let cached = run_with(&[
        "scan", "--rules", "set", "--corpus", "corpus", "--cache", cache,
    ]);
    let plain_run = run_with(&["scan", "--rules", "set", "--corpus", "corpus", "--no-cache"]);
    assert_eq!(cached.code, plain_run.code, "{}", cached.stderr);
    let (cached, plain_run) = (cached.json(), plain_run.json());
    assert_eq!(
        described(&cached, "candidate"),
        described(&plain_run, "candidate")
    );
    assert_eq!(codes(&plain_run), vec![]);
    assert_eq!(pairs(&cached, "new"), pairs(&plain_run, "new"));
}
