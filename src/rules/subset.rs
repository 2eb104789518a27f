//! Compiling a subset of a ruleset: after an edit, the rules whose keys are
//! new are compiled on their own (with the rules they depend on), and only
//! they are run over the corpus.

use super::keys::RuleKeys;
use super::{CompileOptions, Ruleset};
use crate::error::{Error, Result};
use std::collections::{BTreeMap, BTreeSet};
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

/// Compile the rules `subset` (a `closure`) of `rs` on their own: every
/// module any source imports, then the text of the rules in the subset, in
/// their original order (source by source), so names resolve as they did.
pub fn compile_subset(rs: &Ruleset, subset: &[usize], opts: &CompileOptions) -> Result<Rules> {
    let keys = rs.cache.as_ref().map_err(|e| Error::internal(e.clone()))?;
    let mut compiler = crate::rules::compiler::new_compiler(&[], opts, &rs.declared_std)?;
    // The modules the subset's conditions name, of those any source imports
    // (an import is namespace-wide, and yara-x runs every imported module on
    // every file, used or not: importing all of them would parse each file
    // as PE, ELF, .NET... for one rule that needs none).
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
        .flat_map(|s| s.info.imports.iter().map(String::as_str))
        .filter(|m| named.contains(m))
        .collect();
    let mut by_source: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for &i in subset {
        by_source.entry(keys.rules[i].source).or_default().push(i);
    }
    let mut src = String::new();
    for m in imports {
        src.push_str(&format!(
            "import {}\n",
            serde_json::to_string(m).unwrap_or_default()
        ));
    }
    for (si, mut idx) in by_source {
        let s = &rs.sources[si];
        let text = std::str::from_utf8(&s.bytes)
            .map_err(|_| Error::internal(format!("{} is not UTF-8", s.origin)))?;
        idx.sort_by_key(|&i| keys.rules[i].span.0);
        for i in idx {
            let (a, b) = keys.rules[i].span;
            let piece = text
                .get(a..b)
                .ok_or_else(|| Error::internal(format!("rule span outside {}", s.origin)))?;
            src.push_str(piece);
            src.push('\n');
        }
    }
    compiler
        .add_source(SourceCode::from(src.as_str()).with_origin("fpgate-subset"))
        .map_err(|e| Error::internal(format!("compiling a subset of the rules: {e}")))?;
    Ok(compiler.build())
}
