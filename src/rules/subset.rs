//! Compiling a subset of a ruleset: after an edit, the rules whose keys are
//! new are compiled on their own (with the rules they depend on), and only
//! they are run over the corpus.

use super::keys::RuleKeys;
use super::{CompileOptions, Ruleset};
use crate::error::{Error, Result};
use std::collections::BTreeSet;
use yara_x::{Rules, SourceCode};

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

/// Compile the rules `subset` (a `closure`) of `rs` on their own, each
/// namespace into its own: every module that namespace's sources import
/// and its subset's conditions name, then the text of the rules in the
/// subset, each after the rules it uses (a rule of a top-level file may use
/// one of a file it includes, which comes later in the sources), so names
/// resolve as they did.
pub fn compile_subset(rs: &Ruleset, subset: &[usize], opts: &CompileOptions) -> Result<Rules> {
    let keys = rs.cache.as_ref().map_err(|e| Error::internal(e.clone()))?;
    let mut compiler = crate::rules::compiler::new_compiler(&[], opts, &rs.declared_std)?;
    // Namespace by namespace, in the order the set gives them.
    let mut by_ns: Vec<(&str, Vec<usize>)> = Vec::new();
    let mut ordered = subset.to_vec();
    ordered.sort_by_key(|&i| keys.rules[i].source);
    for i in ordered {
        let ns = keys.rules[i].key.0.as_str();
        match by_ns.iter_mut().find(|(n, _)| *n == ns) {
            Some((_, list)) => list.push(i),
            None => by_ns.push((ns, vec![i])),
        }
    }
    for (ns, members) in by_ns {
        let src = namespace_text(rs, keys, ns, &members)?;
        compiler
            .new_namespace(ns)
            .add_source(SourceCode::from(src.as_str()).with_origin("fpgate-subset"))
            .map_err(|e| Error::internal(format!("compiling a subset of the rules: {e}")))?;
    }
    Ok(compiler.build())
}

/// The source of one namespace's share of a subset: its imports, then its
/// rules' text.
fn namespace_text(rs: &Ruleset, keys: &RuleKeys, ns: &str, subset: &[usize]) -> Result<String> {
    // The modules the subset's conditions name, of those the namespace's
    // sources import (an import is namespace-wide, and yara-x runs every
    // imported module on every file, used or not: importing all of them
    // would parse each file as PE, ELF, .NET... for one rule that needs
    // none).
    let named: BTreeSet<&str> = subset
        .iter()
        .filter_map(|&i| {
            let r = &keys.rules[i];
            rs.sources[r.source]
                .info
                .rules
                .iter()
                .find(|d| d.identifier == r.key.1)
        })
        .flat_map(|d| d.refs.iter().map(String::as_str))
        .collect();
    let imports: BTreeSet<&str> = rs
        .sources
        .iter()
        .filter(|s| s.namespace == ns)
        .flat_map(|s| s.info.imports.iter().map(String::as_str))
        .filter(|m| named.contains(m))
        .collect();
    let mut src = String::new();
    for m in imports {
        src.push_str(&format!(
            "import {}\n",
            serde_json::to_string(m).unwrap_or_default()
        ));
    }
    for i in dependencies_first(keys, subset) {
        let s = &rs.sources[keys.rules[i].source];
        let (a, b) = keys.rules[i].span;
        let piece = s
            .bytes
            .get(a..b)
            .and_then(|p| std::str::from_utf8(p).ok())
            .ok_or_else(|| Error::internal(format!("rule span outside {}", s.origin)))?;
        src.push_str(piece);
        src.push('\n');
    }
    Ok(src)
}

/// `members` in declaration order, except that each comes after the rules
/// it depends on (depth first; a cycle of over-approximated dependencies
/// is cut where it closes, and such a subset then fails to compile, which
/// sends the run to the full rules).
fn dependencies_first(keys: &RuleKeys, members: &[usize]) -> Vec<usize> {
    let wanted: BTreeSet<usize> = members.iter().copied().collect();
    let mut ordered: Vec<usize> = members.to_vec();
    ordered.sort_by_key(|&i| (keys.rules[i].source, keys.rules[i].span.0));
    let mut done: BTreeSet<usize> = BTreeSet::new();
    let mut out = Vec::with_capacity(members.len());
    for start in ordered {
        // (rule, its dependencies not looked at yet)
        let mut stack: Vec<(usize, std::slice::Iter<'_, usize>)> = Vec::new();
        if done.insert(start) {
            stack.push((start, keys.rules[start].deps.iter()));
        }
        while let Some((at, deps)) = stack.last_mut() {
            match deps.find(|d| wanted.contains(d) && !done.contains(d)) {
                Some(&d) => {
                    done.insert(d);
                    stack.push((d, keys.rules[d].deps.iter()));
                }
                None => {
                    out.push(*at);
                    stack.pop();
                }
            }
        }
    }
    out
}

/// One rule's text, and what it needs to compile on its own: the imports
/// of its namespace that it (or a rule it uses) names, and the text of the
/// rules it depends on (global rules of its namespace included), in an
/// order that compiles.
#[derive(Debug, Clone)]
pub struct Standalone {
    pub namespace: String,
    /// Imports and the rules it depends on.
    pub context: String,
    /// The rule's own declaration, as written.
    pub rule: String,
    /// Where the declaration starts in its source file (1-based line).
    pub line: usize,
    pub origin: String,
    /// Modules the rule's namespace imports.
    pub imports: BTreeSet<String>,
}

impl Standalone {
    /// The unit's source with the rule's declaration replaced by `rule`
    /// and `extra_imports` added.
    pub fn with_rule(&self, rule: &str, extra_imports: &[&str]) -> String {
        let mut s = String::new();
        for m in extra_imports {
            let line = format!("import \"{m}\"\n");
            if !self.context.contains(&line) {
                s.push_str(&line);
            }
        }
        s.push_str(&self.context);
        s.push_str(rule);
        s.push('\n');
        s
    }
}

/// The rule `key` of `rs` with its context (see `Standalone`), or why not.
pub fn standalone(rs: &Ruleset, key: &super::RuleKey) -> std::result::Result<Standalone, String> {
    let keys = rs.cache.as_ref().map_err(Clone::clone)?;
    let &i = keys
        .by_name
        .get(key)
        .ok_or_else(|| format!("rule {}:{} not found", key.0, key.1))?;
    let members = closure(keys, &[i]);
    let text = |j: usize| -> std::result::Result<&str, String> {
        let s = &rs.sources[keys.rules[j].source];
        let (a, b) = keys.rules[j].span;
        s.bytes
            .get(a..b)
            .and_then(|p| std::str::from_utf8(p).ok())
            .ok_or_else(|| format!("rule span outside {}", s.origin))
    };
    let mut context = namespace_text(rs, keys, &key.0, &members).map_err(|e| e.to_string())?;
    // namespace_text ends with every member, the rule among them: keep the
    // imports and the others, the rule itself goes last, as written.
    let own = text(i)?;
    let own_line = format!("{own}\n");
    if let Some(at) = context.rfind(&own_line) {
        context.replace_range(at..at + own_line.len(), "");
    }
    let s = &rs.sources[keys.rules[i].source];
    let line = s
        .bytes
        .get(..keys.rules[i].span.0)
        .map_or(1, |b| b.iter().filter(|&&c| c == b'\n').count() + 1);
    Ok(Standalone {
        namespace: key.0.clone(),
        context,
        rule: own.to_string(),
        line,
        origin: s.origin.clone(),
        imports: rs
            .sources
            .iter()
            .filter(|x| x.namespace == key.0)
            .flat_map(|x| x.info.imports.iter().cloned())
            .collect(),
    })
}
