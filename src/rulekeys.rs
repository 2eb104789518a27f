//! Cache keys of single rules, and compiling a subset of a ruleset.
//!
//! The results cache remembers, per file content, which rules were run on it
//! and which matched. A rule is identified by its *effective fingerprint*:
//! a hash of its own normalised source (see `yarasrc`), of the effective
//! fingerprints of every rule it depends on (the rules its condition names,
//! rule-set wildcards such as `any of (Foo*)`, and every `global` rule), and
//! of everything else that can change a verdict: the fpgate and yara-x
//! versions, the `--define` values and the evidence limits. Editing one rule
//! therefore changes its key and the keys of the rules that use it, and no
//! other; a rule that matches nothing gets the same key in the candidate, the
//! baseline, and `fpgate check`, so each is scanned once.
//!
//! After an edit, the rules whose keys are new are compiled on their own
//! (with the rules they depend on) and only they are run over the corpus.

use crate::error::{Error, Result};
use crate::rules::{CompileOptions, RuleInfo, RuleKey, Ruleset, PATH_EXTERNALS};
use crate::yarasrc::SourceInfo;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use yara_x::{Rules, SourceCode};

/// Effective fingerprint of one rule (truncated sha256).
pub type Efp = [u8; 16];

/// The cache keys of every rule of a ruleset, declared or compiled.
#[derive(Debug, Clone, Default)]
pub struct RuleKeys {
    /// Every declared rule, in source order (private rules included).
    pub rules: Vec<DeclRef>,
    /// Index into `rules` by identifier (one namespace per ruleset).
    pub by_name: HashMap<String, usize>,
    /// Index into `rules` by effective fingerprint.
    pub by_efp: HashMap<Efp, usize>,
}

#[derive(Debug, Clone)]
pub struct DeclRef {
    pub key: RuleKey,
    pub efp: Efp,
    /// Its verdict can depend on the scanned path (`filename`, `filepath`,
    /// `extension`), itself or through a rule it depends on.
    pub path_dependent: bool,
    /// Rules it depends on (indices into `RuleKeys::rules`).
    pub deps: Vec<usize>,
    /// Source file index and byte span of its declaration.
    pub source: usize,
    pub span: (usize, usize),
}

/// Compute the keys. Fails (the ruleset is then scanned without the cache)
/// when the lexer cannot account for every compiled rule, or a source file
/// is not UTF-8 (its fingerprints would not see every byte).
pub fn compute(
    sources: &[(String, Vec<u8>, SourceInfo)],
    info: &BTreeMap<RuleKey, RuleInfo>,
    per_file_externals: &BTreeSet<&'static str>,
    opts: &CompileOptions,
) -> std::result::Result<RuleKeys, String> {
    let namespace = info
        .keys()
        .next()
        .map(|k| k.0.clone())
        .unwrap_or_else(|| "default".into());
    let mut decls: Vec<(usize, &crate::yarasrc::RuleDecl)> = Vec::new();
    let mut by_name: HashMap<String, usize> = HashMap::new();
    for (si, (origin, bytes, sinfo)) in sources.iter().enumerate() {
        if std::str::from_utf8(bytes).is_err() {
            return Err(format!("rule file {origin} is not UTF-8"));
        }
        for d in &sinfo.rules {
            if by_name.insert(d.identifier.clone(), decls.len()).is_some() {
                return Err(format!("rule {} is declared twice", d.identifier));
            }
            decls.push((si, d));
        }
    }
    for (ns, id) in info.keys() {
        if *ns != namespace || !by_name.contains_key(id) {
            return Err(format!("rule {ns}:{id} was not found in the sources"));
        }
    }
    let globals: Vec<usize> = (0..decls.len()).filter(|&i| decls[i].1.global).collect();
    let deps: Vec<Vec<usize>> = decls
        .iter()
        .enumerate()
        .map(|(i, (_, d))| {
            let mut out: BTreeSet<usize> = d
                .refs
                .iter()
                .filter_map(|r| by_name.get(r).copied())
                .collect();
            for w in &d.wildcards {
                out.extend(
                    decls
                        .iter()
                        .enumerate()
                        .filter(|(_, (_, o))| o.identifier.starts_with(w.as_str()))
                        .map(|(j, _)| j),
                );
            }
            out.extend(globals.iter().copied());
            out.remove(&i);
            out.into_iter().collect()
        })
        .collect();

    let mut ctx = Sha256::new();
    ctx.update(format!(
        "fpgate {} yara-x {} evidence {}x{}\n",
        env!("CARGO_PKG_VERSION"),
        yara_x::VERSION,
        crate::scan::EVIDENCE_MATCHES,
        crate::scan::EVIDENCE_BYTES
    ));
    for d in &opts.defines {
        ctx.update(format!(
            "define {}={}\n",
            d.name,
            serde_json::to_string(&d.value).unwrap_or_default()
        ));
    }
    let ctx: [u8; 32] = ctx.finalize().into();

    // Depth-first with an explicit state per rule; a cycle (not valid YARA,
    // but the lexer may be fooled) disables the cache.
    #[derive(Clone, Copy, PartialEq)]
    enum State {
        New,
        Busy,
        Done,
    }
    let n = decls.len();
    let mut state = vec![State::New; n];
    let mut efp = vec![[0u8; 16]; n];
    let mut path_dep = vec![false; n];
    fn visit(
        i: usize,
        decls: &[(usize, &crate::yarasrc::RuleDecl)],
        deps: &[Vec<usize>],
        ctx: &[u8; 32],
        pfe: &BTreeSet<&'static str>,
        state: &mut [State],
        efp: &mut [Efp],
        path_dep: &mut [bool],
    ) -> std::result::Result<(), String> {
        match state[i] {
            State::Done => return Ok(()),
            State::Busy => return Err(format!("rule {} depends on itself", decls[i].1.identifier)),
            State::New => {}
        }
        state[i] = State::Busy;
        for &d in &deps[i] {
            visit(d, decls, deps, ctx, pfe, state, efp, path_dep)?;
        }
        let d = decls[i].1;
        let mut h = Sha256::new();
        h.update(ctx);
        h.update(d.fingerprint.as_bytes());
        let mut dep_keys: Vec<Efp> = deps[i].iter().map(|&j| efp[j]).collect();
        dep_keys.sort();
        for k in &dep_keys {
            h.update(k);
        }
        let full: [u8; 32] = h.finalize().into();
        efp[i].copy_from_slice(&full[..16]);
        path_dep[i] = d
            .refs
            .iter()
            .any(|r| PATH_EXTERNALS.contains(&r.as_str()) && pfe.contains(r.as_str()))
            || deps[i].iter().any(|&j| path_dep[j]);
        state[i] = State::Done;
        Ok(())
    }
    for i in 0..n {
        visit(
            i,
            &decls,
            &deps,
            &ctx,
            per_file_externals,
            &mut state,
            &mut efp,
            &mut path_dep,
        )?;
    }
    let mut keys = RuleKeys {
        by_name,
        ..Default::default()
    };
    for (i, (si, d)) in decls.iter().enumerate() {
        keys.by_efp.insert(efp[i], i);
        keys.rules.push(DeclRef {
            key: (namespace.clone(), d.identifier.clone()),
            efp: efp[i],
            path_dependent: path_dep[i],
            deps: deps[i].clone(),
            source: *si,
            span: (d.start, d.end),
        });
    }
    Ok(keys)
}

/// `want` and every rule it depends on, transitively, in source order.
pub fn closure(keys: &RuleKeys, want: &[usize]) -> Vec<usize> {
    let mut seen = vec![false; keys.rules.len()];
    let mut stack: Vec<usize> = want.to_vec();
    while let Some(i) = stack.pop() {
        if i < seen.len() && !seen[i] {
            seen[i] = true;
            stack.extend(keys.rules[i].deps.iter().copied());
        }
    }
    (0..seen.len()).filter(|&i| seen[i]).collect()
}

/// Compile the rules `subset` (a `closure`) of `rs` on their own: each
/// source file contributes its imports and the text of its rules in the
/// subset, in their original order, so names resolve as they did.
pub fn compile_subset(rs: &Ruleset, subset: &[usize], opts: &CompileOptions) -> Result<Rules> {
    let keys = rs.cache.as_ref().map_err(|e| Error::usage(e.clone()))?;
    let mut compiler = crate::rules::new_compiler(&[], opts, &rs.declared_std)?;
    let mut by_source: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for &i in subset {
        by_source.entry(keys.rules[i].source).or_default().push(i);
    }
    for (si, mut idx) in by_source {
        let (origin, text, info) = &rs.sources[si];
        idx.sort_by_key(|&i| keys.rules[i].span.0);
        let mut src = String::new();
        for m in &info.imports {
            src.push_str(&format!(
                "import {}\n",
                serde_json::to_string(m).unwrap_or_default()
            ));
        }
        for i in idx {
            let (a, b) = keys.rules[i].span;
            let piece = text
                .get(a..b)
                .ok_or_else(|| Error::usage(format!("rule span outside {origin}")))?;
            src.push_str(piece);
            src.push('\n');
        }
        compiler
            .add_source(SourceCode::from(src.as_str()).with_origin(origin.as_str()))
            .map_err(|e| Error::usage(format!("compiling a subset of {origin}: {e}")))?;
    }
    Ok(compiler.build())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::compile;

    fn keys_of(src: &str) -> (tempfile::TempDir, Ruleset) {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("r.yar");
        std::fs::write(&f, src).unwrap();
        let rs = compile("candidate", &[f], &CompileOptions::default()).unwrap();
        (d, rs)
    }

    fn efp(rs: &Ruleset, name: &str) -> Efp {
        let k = rs.cache.as_ref().unwrap();
        k.rules[k.by_name[name]].efp
    }

    const BASE: &str = r#"
private rule Helper { strings: $a = "abc" condition: $a }
rule UsesHelper { condition: Helper and filesize > 10 }
rule Alone { strings: $b = { 4D 5A } condition: $b at 0 }
rule Wild { condition: UsesHelper or Alone }
rule ByName { condition: filename == "x.exe" }
"#;

    #[test]
    fn editing_a_rule_changes_it_and_its_users_only() {
        let (_d, a) = keys_of(BASE);
        let (_e, b) = keys_of(&BASE.replace("\"abc\"", "\"abd\""));
        assert_ne!(efp(&a, "Helper"), efp(&b, "Helper"));
        assert_ne!(efp(&a, "UsesHelper"), efp(&b, "UsesHelper"));
        // Wild uses UsesHelper, which uses Helper.
        assert_ne!(efp(&a, "Wild"), efp(&b, "Wild"));
        assert_eq!(efp(&a, "Alone"), efp(&b, "Alone"));
        assert_eq!(efp(&a, "ByName"), efp(&b, "ByName"));
        // Comments and layout change nothing.
        let (_f, c) = keys_of(&BASE.replace("rule Alone {", "// note\nrule   Alone\n{"));
        assert_eq!(efp(&a, "Alone"), efp(&c, "Alone"));
        let k = a.cache.as_ref().unwrap();
        assert!(k.rules[k.by_name["ByName"]].path_dependent);
        assert!(!k.rules[k.by_name["Alone"]].path_dependent);
    }

    #[test]
    fn a_global_rule_is_a_dependency_of_every_rule() {
        let (_d, a) = keys_of(BASE);
        let (_e, b) = keys_of(&format!(
            "{BASE}\nglobal rule Small {{ condition: filesize < 100 }}\n"
        ));
        assert_ne!(efp(&a, "Alone"), efp(&b, "Alone"));
    }

    #[test]
    fn defines_are_part_of_the_key() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("r.yar");
        std::fs::write(&f, "rule R { condition: level > 2 }").unwrap();
        let opts = |v: &str| CompileOptions {
            defines: vec![format!("level={v}").parse().unwrap()],
            cache_dir: None,
        };
        let a = compile("candidate", std::slice::from_ref(&f), &opts("1")).unwrap();
        let b = compile("candidate", std::slice::from_ref(&f), &opts("3")).unwrap();
        assert_ne!(efp(&a, "R"), efp(&b, "R"));
    }

    #[test]
    fn subset_compiles_with_its_dependencies_and_scans_alike() {
        let (_d, rs) = keys_of(BASE);
        let k = rs.cache.as_ref().unwrap();
        let sub = closure(k, &[k.by_name["UsesHelper"]]);
        let names: Vec<&str> = sub.iter().map(|&i| k.rules[i].key.1.as_str()).collect();
        assert_eq!(names, vec!["Helper", "UsesHelper"]);
        let rules = compile_subset(&rs, &sub, &CompileOptions::default()).unwrap();
        let mut s = yara_x::Scanner::new(&rules);
        let data = b"xxxxabcxxxxxxxxxxxx";
        let hit: Vec<String> = s
            .scan(data)
            .unwrap()
            .matching_rules()
            .map(|r| r.identifier().to_string())
            .collect();
        assert_eq!(hit, vec!["UsesHelper"]);
    }

    #[test]
    fn includes_and_non_utf8_sources_turn_the_cache_off() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("r.yar");
        std::fs::write(&f, b"rule R { strings: $a = \"\xff\" condition: $a }").unwrap();
        let rs = compile("candidate", &[f], &CompileOptions::default());
        if let Ok(rs) = rs {
            assert!(rs.cache.is_err());
        }
    }
}
