//! Cache keys of single rules (compiling a subset of a ruleset is in
//! `rules::subset`).
//!
//! The results cache remembers, per file content, which rules were run on it
//! and which matched. A rule is identified by its *effective fingerprint*:
//! a hash of the tokens of its declaration that can change what it matches
//! (as the engine's own parser reads them; comments, layout, `meta:` and tags
//! do not count, see `rules::source`), of the effective fingerprints of every rule
//! it depends on (the rules its condition names, and every `global` rule),
//! and of everything else that can change a verdict: the fpgate and yara-x
//! versions, the `--define` values and the evidence limits. Editing one rule
//! therefore changes its key and the keys of the rules that use it, and no
//! other; a rule that matches nothing gets the same key in the candidate, the
//! baseline, and `fpgate check`, so each is scanned once.
//!
//! Dependencies are over-approximated (any identifier in a condition that
//! names a rule of the set): a false dependency costs a cache miss, never a
//! wrong answer. Rules that depend on each other through such a cycle share
//! one key for the whole cycle.

use crate::rules::{CompileOptions, RuleInfo, RuleKey, Source, PATH_EXTERNALS};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Effective fingerprint of one rule (truncated sha256).
pub use crate::store::Efp;

/// The cache keys of every rule of a ruleset, declared or compiled.
#[derive(Debug, Clone, Default)]
pub struct RuleKeys {
    /// Every declared rule, in source order (private rules included).
    pub rules: Vec<DeclRef>,
    /// Index into `rules` by (namespace, identifier).
    pub by_name: HashMap<RuleKey, usize>,
    /// Index into `rules` by effective fingerprint.
    pub by_efp: HashMap<Efp, usize>,
    /// Rules whose identity could not be determined, with the reason: they
    /// (and the rules that use them) get a key no run shares, so they run
    /// on every file; every other rule still uses the cache.
    pub uncached: Vec<(String, String)>,
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

/// The run context every key includes: versions, evidence limits, defines.
fn context(opts: &CompileOptions) -> [u8; 32] {
    let mut ctx = Sha256::new();
    ctx.update(format!(
        "fpgate {} yara-x {} keys v3 evidence-by-rule {}x{}\n",
        env!("CARGO_PKG_VERSION"),
        yara_x::VERSION,
        crate::rules::evidence::EVIDENCE_MATCHES,
        crate::rules::evidence::EVIDENCE_BYTES
    ));
    for d in &opts.defines {
        ctx.update(format!(
            "define {}={}\n",
            d.name,
            serde_json::to_string(&d.value).unwrap_or_default()
        ));
    }
    // Options that change what compiles, and so what matches; the key of
    // a run without them stays what it was.
    if opts.relaxed_re_syntax {
        ctx.update(b"relaxed_re_syntax\n");
    }
    for m in &opts.ignored_modules {
        ctx.update(format!("ignore_module {m}\n"));
    }
    ctx.finalize().into()
}

/// Strongly connected components of the dependency graph (Tarjan, without
/// recursion), each as a list of rule indices, dependencies first.
fn components(deps: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let n = deps.len();
    let mut index = vec![usize::MAX; n];
    let mut low = vec![0usize; n];
    let mut on_stack = vec![false; n];
    let mut stack: Vec<usize> = Vec::new();
    let mut out: Vec<Vec<usize>> = Vec::new();
    let mut next = 0usize;
    for root in 0..n {
        if index[root] != usize::MAX {
            continue;
        }
        // (node, next edge to look at)
        let mut call: Vec<(usize, usize)> = vec![(root, 0)];
        index[root] = next;
        low[root] = next;
        next += 1;
        stack.push(root);
        on_stack[root] = true;
        while let Some(top) = call.last_mut() {
            let v = top.0;
            if let Some(&w) = deps[v].get(top.1) {
                top.1 += 1;
                if index[w] == usize::MAX {
                    index[w] = next;
                    low[w] = next;
                    next += 1;
                    stack.push(w);
                    on_stack[w] = true;
                    call.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
            } else {
                call.pop();
                if let Some(&(u, _)) = call.last() {
                    low[u] = low[u].min(low[v]);
                }
                if low[v] == index[v] {
                    let mut comp = Vec::new();
                    while let Some(w) = stack.pop() {
                        on_stack[w] = false;
                        comp.push(w);
                        if w == v {
                            break;
                        }
                    }
                    comp.sort_unstable();
                    out.push(comp);
                }
            }
        }
    }
    out
}

/// Compute the keys of every rule declared in `sources`. Fails (the
/// ruleset is then scanned without the cache) only when nothing about the
/// set can be trusted; a rule whose identity is unclear is listed in
/// `uncached` and runs on every file.
pub fn compute(
    sources: &[Source],
    info: &BTreeMap<RuleKey, RuleInfo>,
    per_file_externals: &BTreeSet<&'static str>,
    opts: &CompileOptions,
) -> std::result::Result<RuleKeys, String> {
    let (decls, by_name, volatile) = declarations(sources);
    // A compiled rule the parser did not find would mean the parser and
    // the compiler disagree about the set: nothing in it is trusted.
    if let Some((ns, id)) = info.keys().find(|k| !by_name.contains_key(*k)) {
        return Err(format!(
            "rule {ns}:{id} was compiled but not found by the parser"
        ));
    }
    let deps = dependencies(&decls, &by_name);
    let (efp, path_dep, uncached) = component_keys(
        &decls,
        &deps,
        &volatile,
        &Keying {
            ctx: context(opts),
            per_file_externals,
        },
    );
    let mut keys = RuleKeys {
        by_name,
        uncached,
        ..Default::default()
    };
    for (i, (si, ns, d)) in decls.iter().enumerate() {
        keys.by_efp.insert(efp[i], i);
        keys.rules.push(DeclRef {
            key: (ns.to_string(), d.identifier.clone()),
            efp: efp[i],
            path_dependent: path_dep[i],
            deps: deps[i].clone(),
            source: *si,
            span: (d.start, d.end),
        });
    }
    Ok(keys)
}

/// A declaration: its source's index, its namespace, and the parser's view
/// of it.
type Decl<'a> = (usize, &'a str, &'a crate::rules::source::RuleDecl);

/// Every rule declaration in source order, the index of each name, and the
/// rules that must never be answered from the cache (with why).
fn declarations(
    sources: &[Source],
) -> (
    Vec<Decl<'_>>,
    HashMap<RuleKey, usize>,
    BTreeMap<usize, String>,
) {
    let mut decls: Vec<Decl<'_>> = Vec::new();
    let mut by_name: HashMap<RuleKey, usize> = HashMap::new();
    let mut volatile: BTreeMap<usize, String> = BTreeMap::new();
    for (si, s) in sources.iter().enumerate() {
        for d in &s.info.rules {
            let key = (s.namespace.clone(), d.identifier.clone());
            match by_name.get(&key) {
                // Only possible when the compiler also saw both (a file
                // included twice); the first declaration is the one that
                // compiled, and neither may be trusted to the cache.
                Some(&first) => {
                    volatile.insert(first, "declared twice in the sources".into());
                }
                None => {
                    by_name.insert(key, decls.len());
                    decls.push((si, s.namespace.as_str(), d));
                }
            }
        }
    }
    (decls, by_name, volatile)
}

/// Per rule, the rules it may depend on: the ones of its namespace its
/// condition names, and every global rule of its namespace (a rule sees
/// no other namespace).
fn dependencies(decls: &[Decl<'_>], by_name: &HashMap<RuleKey, usize>) -> Vec<Vec<usize>> {
    let mut globals: HashMap<&str, Vec<usize>> = HashMap::new();
    for (g, (_, ns, d)) in decls.iter().enumerate() {
        if d.global {
            globals.entry(ns).or_default().push(g);
        }
    }
    decls
        .iter()
        .enumerate()
        .map(|(i, (_, ns, d))| {
            let mut out: BTreeSet<usize> = d
                .refs
                .iter()
                .filter_map(|r| by_name.get(&(ns.to_string(), r.clone())).copied())
                .collect();
            out.extend(globals.get(ns).into_iter().flatten().copied());
            out.remove(&i);
            out.into_iter().collect()
        })
        .collect()
}

/// What every key of one ruleset is computed with.
struct Keying<'a> {
    ctx: [u8; 32],
    per_file_externals: &'a BTreeSet<&'static str>,
}

/// A key nobody else has: for rules that must not be answered from the
/// cache. Drawn from the clock and the process, never reused.
fn nonce() -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(format!(
        "{:?} {}",
        std::time::SystemTime::now(),
        std::process::id()
    ));
    h.finalize().into()
}

/// Each rule's key (shared by the members of a dependency cycle, plus each
/// member's name), whether it reads the path, and the rules left uncached.
fn component_keys(
    decls: &[Decl<'_>],
    deps: &[Vec<usize>],
    volatile: &BTreeMap<usize, String>,
    k: &Keying<'_>,
) -> (Vec<Efp>, Vec<bool>, Vec<(String, String)>) {
    let nonce = nonce();
    let n = decls.len();
    let mut efp = vec![[0u8; 16]; n];
    let mut path_dep = vec![false; n];
    let mut uncached = Vec::new();
    for comp in components(deps) {
        let in_comp: BTreeSet<usize> = comp.iter().copied().collect();
        let mut h = Sha256::new();
        h.update(k.ctx);
        let mut dep_keys: BTreeSet<Efp> = BTreeSet::new();
        let mut pd = false;
        for &i in &comp {
            for &j in &deps[i] {
                if !in_comp.contains(&j) {
                    dep_keys.insert(efp[j]);
                    pd |= path_dep[j];
                }
            }
            pd |= decls[i].2.refs.iter().any(|r| {
                PATH_EXTERNALS.contains(&r.as_str()) && k.per_file_externals.contains(r.as_str())
            });
        }
        // Members in source order: their names and match digests.
        for &i in &comp {
            let (_, ns, d) = decls[i];
            // The namespace only when not the default, so the keys of sets
            // without namespaces stay what they were.
            if ns != crate::rules::DEFAULT_NAMESPACE {
                h.update(format!("namespace {ns}\n"));
            }
            h.update((d.identifier.len() as u64).to_le_bytes());
            h.update(d.identifier.as_bytes());
            h.update(d.match_digest);
            if let Some(why) = volatile.get(&i) {
                h.update(nonce);
                uncached.push((format!("{ns}:{}", d.identifier), why.clone()));
            }
        }
        for key in &dep_keys {
            h.update(key);
        }
        let base: [u8; 32] = h.finalize().into();
        for &i in &comp {
            // Each member its own key: the component's, plus its name.
            let mut m = Sha256::new();
            m.update(base);
            m.update(decls[i].2.identifier.as_bytes());
            let full: [u8; 32] = m.finalize().into();
            efp[i].copy_from_slice(&full[..16]);
            path_dep[i] = pd;
        }
    }
    (efp, path_dep, uncached)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The index of a rule of the default namespace.
    fn idx(k: &RuleKeys, name: &str) -> usize {
        k.by_name[&("default".to_string(), name.to_string())]
    }
    use crate::rules::subset::{closure, compile_subset};
    use crate::rules::Ruleset;
    use crate::rules::{compile, RulePath};

    fn keys_of(src: &str) -> (tempfile::TempDir, Ruleset) {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("r.yar");
        std::fs::write(&f, src).unwrap();
        let rs = compile(
            "candidate",
            &[RulePath::plain(&f)],
            &CompileOptions::default(),
        )
        .unwrap();
        (d, rs)
    }

    fn efp(rs: &Ruleset, name: &str) -> Efp {
        let k = rs.cache.as_ref().unwrap();
        k.rules[idx(k, name)].efp
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
        assert!(k.rules[idx(k, "ByName")].path_dependent);
        assert!(!k.rules[idx(k, "Alone")].path_dependent);
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
            ..Default::default()
        };
        let a = compile("candidate", &[RulePath::plain(&f)], &opts("1")).unwrap();
        let b = compile("candidate", &[RulePath::plain(&f)], &opts("3")).unwrap();
        assert_ne!(efp(&a, "R"), efp(&b, "R"));
    }

    #[test]
    fn subset_compiles_with_its_dependencies_and_scans_alike() {
        let (_d, rs) = keys_of(BASE);
        let k = rs.cache.as_ref().unwrap();
        let sub = closure(k, &[idx(k, "UsesHelper")]);
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
    fn meta_and_tags_do_not_change_the_key_but_private_does() {
        let (_d, a) = keys_of(BASE);
        let (_e, b) =
            keys_of(&BASE.replace("rule Alone {", "rule Alone : newtag { meta: note = \"x\""));
        assert_eq!(efp(&a, "Alone"), efp(&b, "Alone"));
        let (_f, c) = keys_of(&BASE.replace("rule Alone", "private rule Alone"));
        assert_ne!(efp(&a, "Alone"), efp(&c, "Alone"));
    }

    #[test]
    fn rules_referring_to_each_other_by_name_share_a_component() {
        // A meta key or a field named like a rule is no dependency to the
        // engine; over-approximating it must not turn the cache off.
        let src = "rule A { meta: B = 1 condition: filesize > 1 }\nrule B { condition: A }\n";
        let (_d, rs) = keys_of(src);
        let k = rs.cache.as_ref().unwrap();
        assert!(k.uncached.is_empty());
        assert_eq!(k.rules[idx(k, "B")].deps, vec![idx(k, "A")]);
        assert!(k.rules[idx(k, "A")].deps.is_empty());
    }

    #[test]
    fn a_rule_of_unclear_identity_runs_alone_uncached() {
        // The same rule declared in two sources (a file reached twice):
        // that rule and its users get keys no run shares, the rest are
        // keyed as always.
        let (_d, rs) = keys_of(BASE);
        let mut sources = rs.sources.clone();
        sources.push(sources[0].clone());
        let k = compute(
            &sources,
            &rs.info,
            &rs.per_file_externals,
            &CompileOptions::default(),
        )
        .unwrap();
        let again = compute(
            &sources,
            &rs.info,
            &rs.per_file_externals,
            &CompileOptions::default(),
        )
        .unwrap();
        let normal = rs.cache.as_ref().unwrap();
        let e = |k: &RuleKeys, n: &str| k.rules[idx(k, n)].efp;
        assert_eq!(k.uncached.len(), normal.rules.len(), "{:?}", k.uncached);
        assert_ne!(e(&k, "Alone"), e(&again, "Alone"));
        assert_ne!(e(&k, "Alone"), e(normal, "Alone"));
        // One duplicate only: the others keep their keys.
        let mut one = rs.sources.clone();
        let mut dup = one[0].clone();
        dup.info.rules.retain(|r| r.identifier == "ByName");
        one.push(dup);
        let k = compute(
            &one,
            &rs.info,
            &rs.per_file_externals,
            &CompileOptions::default(),
        )
        .unwrap();
        assert_eq!(k.uncached.len(), 1, "{:?}", k.uncached);
        assert_eq!(e(&k, "Alone"), e(normal, "Alone"));
        assert_ne!(e(&k, "ByName"), e(normal, "ByName"));
    }

    #[test]
    fn a_cycle_is_one_component() {
        let c = components(&[vec![1], vec![0], vec![0]]);
        assert_eq!(c, vec![vec![0, 1], vec![2]]);
    }
}
