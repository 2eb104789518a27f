//! Triage of new false positives, for the rule author who must fix one:
//! how common each pattern of the offending rule is in clean software
//! (prevalence), which matched patterns the condition really needs
//! (necessity), and, with `--explain`, mechanical narrowings of the rule
//! that were run over the corpus (and the known-bad samples) and clear the
//! false positives without losing a detection (suggestions).
//!
//! Everything is measured, nothing guessed: each question becomes a rule
//! fpgate writes (a pattern alone, the rule with one pattern taken out, a
//! narrowed rule), and all of them run in one scan through the engine and
//! the results cache (`probe`), so asking again is answered from the cache.

pub mod history;
pub mod probe;
pub mod suggest;
pub mod syntax;

use crate::corpus::CorpusFile;
use crate::engine::ScanOptions;
use crate::error::Result;
use crate::rules::subset::Standalone;
use crate::rules::{CompileOptions, RuleKey, Ruleset};
use crate::verdict::report::Finding;
pub use crate::verdict::triage::{Necessity, PatternPrevalence, RuleTriage, Triage};
use probe::Unit;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// At most this many rules are triaged per run (the first, in report
/// order); the others are named in a note.
pub const MAX_RULES: usize = 20;

/// A new false positive, as the triage needs it (from a report in memory
/// or from a JSON report).
#[derive(Debug, Clone)]
pub struct Fp {
    pub namespace: String,
    pub identifier: String,
    pub sha256: String,
    pub paths: Vec<String>,
    pub size: u64,
    pub pe: bool,
    /// The patterns that matched.
    pub patterns: Vec<String>,
}

impl Fp {
    pub fn of(f: &Finding) -> Fp {
        Fp {
            namespace: f.rule.namespace.clone(),
            identifier: f.rule.identifier.clone(),
            sha256: f.sha256.clone(),
            paths: f.paths.clone(),
            size: f.size,
            pe: f.format == crate::corpus::format::Format::Pe,
            patterns: f.patterns.iter().map(|p| p.identifier.clone()).collect(),
        }
    }

    /// The new false positives of a JSON report (`fpgate explain`).
    pub fn from_json(v: &serde_json::Value) -> Vec<Fp> {
        let s = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
        v["false_positives"]["new"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|f| Fp {
                namespace: s(&f["rule"]["namespace"]),
                identifier: s(&f["rule"]["identifier"]),
                sha256: s(&f["sha256"]),
                paths: f["paths"].as_array().into_iter().flatten().map(s).collect(),
                size: f["size"].as_u64().unwrap_or(0),
                pe: f["format"].as_str() == Some("pe"),
                patterns: f["patterns"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|p| s(&p["identifier"]))
                    .collect(),
            })
            .collect()
    }
}

/// What a triage runs with.
pub struct Options<'a> {
    pub compile: &'a CompileOptions,
    pub scan: &'a ScanOptions,
    pub cache_dir: Option<&'a Path>,
    /// Try narrowings too.
    pub explain: bool,
}

/// Per false positive (by content), the indices of its clean files.
fn fp_files<'a>(
    findings: &[&'a Fp],
    display_index: &BTreeMap<&str, usize>,
) -> BTreeMap<&'a str, BTreeSet<usize>> {
    findings
        .iter()
        .map(|f| {
            (
                f.sha256.as_str(),
                f.paths
                    .iter()
                    .filter_map(|p| display_index.get(p.as_str()).copied())
                    .collect(),
            )
        })
        .collect()
}

/// A rule of one pattern definition alone (prevalence).
fn pattern_alone(def: &str) -> String {
    format!("rule pattern {{\n  strings:\n    {def}\n  condition:\n    any of them\n}}\n")
}

/// Pairs of matched patterns are taken out together when at most this
/// many patterns matched (28 pairs).
const MAX_PAIRED: usize = 8;

/// A never-matching stand-in for pattern `id` taken out: 32 bytes derived
/// from its name, which no file is expected to hold (a rule run with it
/// must lose the pattern's matches; the rule as is is run beside it).
fn absent_bytes(id: &str) -> [u8; 32] {
    Sha256::digest(format!("fpgate: pattern {id} was taken out").as_bytes()).into()
}

fn unit_name(kind: &str, text: &str) -> String {
    let h = Sha256::digest(text.as_bytes());
    format!("fpgate_{kind}_{}", &crate::util::hex::hex(&h)[..16])
}

/// Per rule being triaged: what the probe must run for it.
struct Plan<'a> {
    key: RuleKey,
    findings: Vec<&'a Fp>,
    st: Standalone,
    syntax: syntax::RuleSyntax,
    /// The rule as is, alone.
    as_is: String,
    /// (matched patterns taken out, unit namespace of the rule without them)
    without: Vec<(Vec<String>, String)>,
    variants: Vec<suggest::Variant>,
    triage: RuleTriage,
}

/// Triage the new false positives of `report`, whose candidate rules are
/// `candidate`, over the clean files `clean` and the samples `samples`.
pub fn analyse(
    fps: &[Fp],
    candidate: &Ruleset,
    clean: &[CorpusFile],
    samples: &[CorpusFile],
    o: &Options<'_>,
) -> Result<Triage> {
    let mut out = Triage {
        clean_files: clean.len(),
        samples: samples.len(),
        explained: o.explain,
        ..Default::default()
    };
    let mut by_rule: BTreeMap<RuleKey, Vec<&Fp>> = BTreeMap::new();
    for f in fps {
        by_rule
            .entry((f.namespace.clone(), f.identifier.clone()))
            .or_default()
            .push(f);
    }
    if by_rule.len() > MAX_RULES {
        let rest: Vec<String> = by_rule
            .keys()
            .skip(MAX_RULES)
            .map(|k| crate::rules::rule_name(&k.0, &k.1))
            .collect();
        out.notes.push(format!(
            "{} rule(s) with new false positives beyond the first {MAX_RULES} were not triaged: {}",
            rest.len(),
            rest.join(", ")
        ));
    }
    let display_index: BTreeMap<&str, usize> = clean
        .iter()
        .enumerate()
        .map(|(i, f)| (f.display(), i))
        .collect();
    let mut units: BTreeMap<String, String> = BTreeMap::new();
    let mut plans: Vec<Plan<'_>> = Vec::new();
    let mut failed: Vec<RuleTriage> = Vec::new();
    for (key, findings) in by_rule.into_iter().take(MAX_RULES) {
        let info = candidate.info.get(&key);
        let mut t = RuleTriage {
            namespace: key.0.clone(),
            identifier: key.1.clone(),
            source: info.and_then(|i| i.source.clone()),
            line: info.and_then(|i| i.line),
            false_positives: findings.len(),
            patterns: Vec::new(),
            necessity: Vec::new(),
            suggestions: Vec::new(),
            rejected: Vec::new(),
            notes: Vec::new(),
        };
        let st = match crate::rules::subset::standalone(candidate, &key) {
            Ok(st) => st,
            Err(why) => {
                t.notes.push(format!(
                    "the rule cannot be run on its own ({why}): not triaged"
                ));
                failed.push(t);
                continue;
            }
        };
        let syn = syntax::read(&st.rule);
        if syn.errors {
            t.notes
                .push("the parser could not read the rule on its own: not triaged".into());
            failed.push(t);
            continue;
        }
        // Prevalence: each pattern alone.
        for p in &syn.patterns {
            let def = &st.rule[p.span.0..p.span.1];
            let text = pattern_alone(def);
            units.insert(unit_name("pattern", &text), text);
        }
        let as_is = st.with_rule(&st.rule, &[]);
        units.insert(unit_name("rule", &as_is), as_is.clone());
        // Necessity: the rule with each matched pattern taken out.
        let matched: BTreeSet<&str> = findings
            .iter()
            .flat_map(|f| f.patterns.iter().map(String::as_str))
            .collect();
        let mut takeable: Vec<(&str, &syntax::PatternSyntax)> = Vec::new();
        for id in &matched {
            let same: Vec<&syntax::PatternSyntax> = syn
                .patterns
                .iter()
                .filter(|p| p.identifier == *id)
                .collect();
            match same.as_slice() {
                [p] => takeable.push((id, p)),
                _ => t.notes.push(format!(
                    "{id}: anonymous or repeated pattern identifier, its necessity is not measured"
                )),
            }
        }
        // One at a time; and two at a time when few patterns matched (a
        // condition such as `1 of ($a, $b)` needs one of a pair).
        let mut sets: Vec<Vec<usize>> = (0..takeable.len()).map(|i| vec![i]).collect();
        if takeable.len() <= MAX_PAIRED {
            for i in 0..takeable.len() {
                for j in i + 1..takeable.len() {
                    sets.push(vec![i, j]);
                }
            }
        }
        let mut without = Vec::new();
        for set in sets {
            let mut picked: Vec<&syntax::PatternSyntax> =
                set.iter().map(|&i| takeable[i].1).collect();
            // Edit from the end so earlier spans stay valid.
            picked.sort_by_key(|p| std::cmp::Reverse(p.span.0));
            let mut rule = st.rule.clone();
            for p in &picked {
                let stand_in = crate::util::hex::spaced_hex(&absent_bytes(&p.identifier));
                rule.replace_range(
                    p.span.0..p.span.1,
                    &format!("{} = {{ {stand_in} }}", p.identifier),
                );
            }
            let ids: Vec<String> = set.iter().map(|&i| takeable[i].0.to_string()).collect();
            let text = st.with_rule(&rule, &[]);
            if probe::compiles(&text, o.compile).is_err() {
                if ids.len() == 1 {
                    t.notes.push(format!(
                        "{}: the rule does not compile with the pattern taken out, its necessity is not measured",
                        ids[0]
                    ));
                }
                continue;
            }
            let ns = unit_name("without", &text);
            units.insert(ns.clone(), text);
            without.push((ids, ns));
        }
        plans.push(Plan {
            key,
            findings,
            st,
            syntax: syn,
            as_is,
            without,
            variants: Vec::new(),
            triage: t,
        });
    }
    // Prevalence first when narrowings need it (dropping the most common
    // pattern): patterns and rule-as-is run first, narrowings second.
    let all_files: Vec<CorpusFile> = clean.iter().chain(samples).cloned().collect();
    let unit_list = |m: &BTreeMap<String, String>| -> Vec<Unit> {
        m.iter()
            .map(|(ns, text)| Unit {
                namespace: ns.clone(),
                text: text.clone(),
            })
            .collect()
    };
    let found = probe::run(
        &unit_list(&units),
        &all_files,
        o.compile,
        o.scan,
        o.cache_dir,
    )?;
    out.files_from_cache = found.from_cache;
    out.probe_files = all_files.len();
    let clean_n = clean.len();
    let count_clean = |ns: &str, id: &str| -> BTreeSet<usize> {
        found
            .matched_by(&(ns.to_string(), id.to_string()))
            .into_iter()
            .filter(|&i| i < clean_n)
            .collect()
    };
    let unscanned = found.unscanned();
    if unscanned > 0 {
        out.notes.push(format!(
            "{unscanned} file(s) could not be scanned for the triage: counts below leave them out"
        ));
    }
    let mut results: Vec<RuleTriage> = Vec::new();
    let mut second: BTreeMap<String, String> = BTreeMap::new();
    for plan in plans.iter_mut() {
        let mut t = plan.triage.clone();
        let fp_files = fp_files(&plan.findings, &display_index);
        for p in &plan.syntax.patterns {
            let def = &plan.st.rule[p.span.0..p.span.1];
            let text = pattern_alone(def);
            let hits = count_clean(&unit_name("pattern", &text), "pattern");
            t.patterns.push(PatternPrevalence {
                identifier: p.identifier.clone(),
                definition: def.to_string(),
                clean_files: hits.len(),
                in_false_positives: fp_files
                    .values()
                    .filter(|ix| ix.iter().any(|i| hits.contains(i)))
                    .count(),
            });
        }
        let as_is_ns = unit_name("rule", &plan.as_is);
        let as_is_hits = found.matched_by(&(as_is_ns.clone(), plan.key.1.clone()));
        let reproduced = fp_files
            .values()
            .all(|ix| ix.iter().any(|i| as_is_hits.contains(i)));
        if !reproduced {
            t.notes.push(
                "run on its own, the rule does not match all of its false positives (it depends on more than its own text and the rules it names): necessity and narrowings are not shown".into(),
            );
            results.push(t);
            continue;
        }
        for (sha, ix) in &fp_files {
            let f = plan.findings.iter().find(|f| f.sha256 == *sha);
            let mut n = Necessity {
                sha256: sha.to_string(),
                paths: f.map(|f| f.paths.clone()).unwrap_or_default(),
                necessary: Vec::new(),
                not_necessary: Vec::new(),
                necessary_pairs: Vec::new(),
            };
            let in_file: BTreeSet<&str> = f
                .map(|f| f.patterns.iter().map(String::as_str).collect())
                .unwrap_or_default();
            let mut pairs = Vec::new();
            for (ids, ns) in &plan.without {
                if !ids.iter().all(|id| in_file.contains(id.as_str())) {
                    continue;
                }
                let still = found.matched_by(&(ns.clone(), plan.key.1.clone()));
                let clears = !ix.iter().any(|i| still.contains(i));
                match ids.as_slice() {
                    [id] if clears => n.necessary.push(id.clone()),
                    [id] => n.not_necessary.push(id.clone()),
                    _ if clears => pairs.push(ids.clone()),
                    _ => {}
                }
            }
            // A pair matters only when neither of its patterns is needed alone.
            n.necessary_pairs = pairs
                .into_iter()
                .filter(|p| !p.iter().any(|id| n.necessary.contains(id)))
                .collect();
            t.necessity.push(n);
        }
        if o.explain {
            let ctx = suggest::Context {
                st: &plan.st,
                syntax: &plan.syntax,
                prevalence: &t.patterns,
                matched: plan
                    .findings
                    .iter()
                    .flat_map(|f| f.patterns.iter().cloned())
                    .collect(),
                fp_sizes: plan.findings.iter().map(|f| f.size).collect(),
                fp_pe: plan.findings.iter().any(|f| f.pe),
                sample_sizes: as_is_hits
                    .iter()
                    .filter(|&&i| i >= clean_n)
                    .filter_map(|&i| std::fs::metadata(all_files[i].path()).ok().map(|m| m.len()))
                    .collect(),
            };
            for v in suggest::variants(&ctx) {
                match probe::compiles(&v.text, o.compile) {
                    Ok(()) => {
                        let ns = unit_name("narrow", &v.text);
                        second.insert(ns, v.text.clone());
                        plan.variants.push(v);
                    }
                    Err(e) => t.rejected.push(format!(
                        "{}: does not compile ({})",
                        v.summary,
                        e.lines().next().unwrap_or_default()
                    )),
                }
            }
        }
        results.push(t);
    }
    if o.explain && !second.is_empty() {
        let found2 = probe::run(
            &unit_list(&second),
            &all_files,
            o.compile,
            o.scan,
            o.cache_dir,
        )?;
        out.files_from_cache += found2.from_cache;
        out.probe_files += all_files.len();
        for plan in &plans {
            let Some(t) = results
                .iter_mut()
                .find(|r| r.namespace == plan.key.0 && r.identifier == plan.key.1)
            else {
                continue;
            };
            let as_is_hits =
                found.matched_by(&(unit_name("rule", &plan.as_is), plan.key.1.clone()));
            let fp_any: BTreeSet<usize> = fp_files(&plan.findings, &display_index)
                .into_values()
                .flatten()
                .collect();
            for v in &plan.variants {
                let hits = found2.matched_by(&(unit_name("narrow", &v.text), plan.key.1.clone()));
                let judged = suggest::judge(
                    v,
                    &hits,
                    &as_is_hits,
                    &fp_any,
                    plan.findings.len(),
                    clean_n,
                    &plan.st,
                );
                match judged {
                    Ok(s) => t.suggestions.push(s),
                    Err(why) => t.rejected.push(why),
                }
            }
            t.suggestions.sort_by(|a, b| {
                (a.clean_files_after, a.rank, &a.summary).cmp(&(
                    b.clean_files_after,
                    b.rank,
                    &b.summary,
                ))
            });
            t.suggestions.truncate(suggest::MAX_SUGGESTIONS);
        }
    }
    results.extend(failed);
    results.sort_by(|a, b| (&a.namespace, &a.identifier).cmp(&(&b.namespace, &b.identifier)));
    out.rules = results;
    Ok(out)
}
