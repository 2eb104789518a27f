//! Mechanical narrowings of a rule with false positives, and the test each
//! must pass to be proposed: run over the corpus and the known-bad samples,
//! it matches none of the rule's new false positives and still detects
//! every sample the rule as written detects. Nothing is ever applied.

use super::syntax::{PatternKind, RuleSyntax};
use crate::rules::subset::Standalone;
use crate::verdict::triage::PatternPrevalence;
pub use crate::verdict::triage::Suggestion;
use std::collections::BTreeSet;

/// At most this many suggestions per rule (the narrowest first).
pub const MAX_SUGGESTIONS: usize = 5;

/// A narrowing to try.
#[derive(Debug, Clone)]
pub struct Variant {
    pub kind: &'static str,
    pub summary: String,
    /// Order among equally good suggestions (smaller edits first).
    pub rank: u8,
    /// The edited rule declaration.
    pub rule: String,
    /// The probe unit: context and the edited rule.
    pub text: String,
}

/// What the narrowings are derived from.
pub struct Context<'a> {
    pub st: &'a Standalone,
    pub syntax: &'a RuleSyntax,
    pub prevalence: &'a [PatternPrevalence],
    /// Patterns that matched in the false positives.
    pub matched: BTreeSet<String>,
    pub fp_sizes: Vec<u64>,
    /// Is any false positive a PE file?
    pub fp_pe: bool,
    /// Sizes of the samples the rule detects as written.
    pub sample_sizes: Vec<u64>,
}

/// Every narrowing worth trying for the rule of `c`.
pub fn variants(c: &Context<'_>) -> Vec<Variant> {
    let rule = &c.st.rule;
    let mut out = Vec::new();
    let mut push =
        |kind: &'static str, rank: u8, summary: String, new_rule: String, imports: &[&str]| {
            let text = c.st.with_rule(&new_rule, imports);
            out.push(Variant {
                kind,
                summary,
                rank,
                rule: new_rule,
                text,
            });
        };
    for p in &c.syntax.patterns {
        if !c.matched.contains(&p.identifier) || p.identifier == "$" {
            continue;
        }
        let id = &p.identifier;
        if p.kind != PatternKind::Hex
            && !p.has("fullword")
            && !p.has("base64")
            && !p.has("base64wide")
        {
            let mut r = rule.clone();
            r.insert_str(p.span.1, " fullword");
            push("fullword", 0, format!("add `fullword` to {id}"), r, &[]);
        }
        if p.kind == PatternKind::Text && p.has("ascii") && p.has("wide") {
            for (drop, keep, kind) in [
                ("wide", "ascii", "ascii_only"),
                ("ascii", "wide", "wide_only"),
            ] {
                if let Some((_, (a, b))) = p.modifiers.iter().find(|(m, _)| m == drop) {
                    let mut r = rule.clone();
                    // The modifier and the blank before it.
                    let start = rule[..*a].trim_end().len();
                    r.replace_range(start..*b, "");
                    push(
                        kind,
                        1,
                        format!("match {id} as {keep} only (drop `{drop}`)"),
                        r,
                        &[],
                    );
                }
            }
        }
    }
    // Drop the most common matched pattern (when others remain).
    if c.syntax.patterns.len() > 1 {
        let most = c
            .prevalence
            .iter()
            .filter(|p| c.matched.contains(&p.identifier) && p.identifier != "$")
            .max_by(|a, b| (a.clean_files, &b.identifier).cmp(&(b.clean_files, &a.identifier)));
        if let Some(m) = most {
            if let Some(p) = c
                .syntax
                .patterns
                .iter()
                .find(|p| p.identifier == m.identifier)
            {
                let mut r = rule.clone();
                // The whole line when the definition has it to itself.
                let line_start = rule[..p.span.0].rfind('\n').map_or(0, |i| i + 1);
                let line_end = rule[p.span.1..]
                    .find('\n')
                    .map_or(rule.len(), |i| p.span.1 + i + 1);
                let alone = rule[line_start..p.span.0].trim().is_empty()
                    && rule[p.span.1..line_end].trim().is_empty();
                if alone {
                    r.replace_range(line_start..line_end, "");
                } else {
                    r.replace_range(p.span.0..p.span.1, "");
                }
                push(
                    "drop_pattern",
                    2,
                    format!(
                        "drop {} (the most common matched pattern: in {} clean file(s))",
                        m.identifier, m.clean_files
                    ),
                    r,
                    &[],
                );
            }
        }
    }
    // Require one more pattern of an `N of (...)`.
    for &(a, b, e) in &c.syntax.quantifiers {
        let q = rule[a..b].trim();
        let expr = rule[b..e].trim();
        let next = match q {
            "any" => Some(2),
            n => n.parse::<u32>().ok().map(|n| n + 1),
        };
        if let Some(next) = next {
            let mut r = rule.clone();
            r.replace_range(a..b, &next.to_string());
            let line = rule[..a].matches('\n').count() + c.st.line;
            push(
                "quantifier",
                2,
                format!("require `{next} {expr}` instead of `{q} {expr}` (line {line})"),
                r,
                &[],
            );
        }
    }
    if let Some((a, b)) = c.syntax.condition {
        let cond = &rule[a..b];
        let with = |extra: &str| {
            let mut r = rule.clone();
            r.replace_range(a..b, &format!("({cond}) and {extra}"));
            r
        };
        if let Some(bound) = filesize_bound(&c.fp_sizes, &c.sample_sizes) {
            push(
                "filesize",
                3,
                format!("bound the file size: `filesize {bound}`"),
                with(&format!("filesize {bound}")),
                &[],
            );
        }
        if c.fp_pe {
            let note = if c.st.imports.contains("pe") {
                String::new()
            } else {
                " (and `import \"pe\"` at the top of the file)".to_string()
            };
            push(
                "not_signed",
                4,
                format!("exclude signed PE files: `not pe.is_signed`{note}"),
                with("not pe.is_signed"),
                &["pe"],
            );
        }
    }
    out
}

/// Sizes as a rule author writes them: 1, 2 or 5 times a power of ten,
/// in bytes, KB or MB.
fn nice_sizes() -> Vec<u64> {
    let mut v = Vec::new();
    for unit in [1u64, 1024, 1024 * 1024] {
        let mut p = 1u64;
        while p <= 1000 {
            for m in [1, 2, 5] {
                v.push(m * p * unit);
            }
            p *= 10;
        }
    }
    v.sort_unstable();
    v.dedup();
    v
}

fn size_text(n: u64) -> String {
    const MB: u64 = 1024 * 1024;
    if n >= MB && n.is_multiple_of(MB) {
        format!("{}MB", n / MB)
    } else if n >= 1024 && n.is_multiple_of(1024) {
        format!("{}KB", n / 1024)
    } else {
        n.to_string()
    }
}

/// A `filesize` comparison that separates the false positives from the
/// samples: `< N` when every false positive is larger than every detected
/// sample (or there are no samples), `> N` when every one is smaller.
fn filesize_bound(fps: &[u64], samples: &[u64]) -> Option<String> {
    let (min_fp, max_fp) = (*fps.iter().min()?, *fps.iter().max()?);
    let nice = nice_sizes();
    let max_s = samples.iter().max().copied();
    let min_s = samples.iter().min().copied();
    // Upper bound: the first nice size above every sample, if it stays at
    // or below the smallest false positive; else the smallest one itself.
    if max_s.is_none_or(|s| s < min_fp) {
        let n = match max_s {
            Some(s) => nice
                .iter()
                .copied()
                .find(|&n| n > s && n <= min_fp)
                .unwrap_or(min_fp),
            None => nice
                .iter()
                .copied()
                .rev()
                .find(|&n| n <= min_fp)
                .unwrap_or(min_fp),
        };
        if n > 0 {
            return Some(format!("< {}", size_text(n)));
        }
    }
    if let Some(s) = min_s.filter(|&s| s > max_fp) {
        let n = nice
            .iter()
            .copied()
            .rev()
            .find(|&n| n < s && n >= max_fp)
            .unwrap_or(max_fp);
        return Some(format!("> {}", size_text(n)));
    }
    None
}

/// Does variant `v` (matching `hits`, indices into clean files then
/// samples) qualify against the rule as written (`as_is`)?
pub fn judge(
    v: &Variant,
    hits: &BTreeSet<usize>,
    as_is: &BTreeSet<usize>,
    fp_files: &BTreeSet<usize>,
    false_positives: usize,
    clean_n: usize,
    st: &Standalone,
) -> std::result::Result<Suggestion, String> {
    let still = fp_files.iter().filter(|i| hits.contains(i)).count();
    if still > 0 {
        return Err(format!(
            "{}: still matches {still} of the false positive file(s)",
            v.summary
        ));
    }
    let samples_before: BTreeSet<usize> = as_is.iter().copied().filter(|&i| i >= clean_n).collect();
    let lost = samples_before.iter().filter(|i| !hits.contains(i)).count();
    if lost > 0 {
        return Err(format!(
            "{}: loses {lost} detection(s) of known-bad samples",
            v.summary
        ));
    }
    Ok(Suggestion {
        kind: v.kind.to_string(),
        summary: v.summary.clone(),
        diff: diff(&st.origin, st.line, &st.rule, &v.rule),
        clears: false_positives,
        clean_files_before: as_is.iter().filter(|&&i| i < clean_n).count(),
        clean_files_after: hits.iter().filter(|&&i| i < clean_n).count(),
        samples_before: samples_before.len(),
        samples_after: hits.iter().filter(|&&i| i >= clean_n).count(),
        rank: v.rank,
    })
}

/// A unified diff of a rule declaration that starts at `line` of `origin`
/// and its edited form: a longest-common-subsequence line diff, with two
/// lines of context around each change.
pub fn diff(origin: &str, line: usize, old: &str, new: &str) -> String {
    let a: Vec<&str> = old.split('\n').collect();
    let b: Vec<&str> = new.split('\n').collect();
    // lcs[i][j]: the longest common subsequence of a[i..] and b[j..].
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    // The edit script: (' ' | '-' | '+', line of a or b, text).
    let mut ops: Vec<(char, usize, usize, &str)> = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            ops.push((' ', i, j, a[i]));
            i += 1;
            j += 1;
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            ops.push(('-', i, j, a[i]));
            i += 1;
        } else {
            ops.push(('+', i, j, b[j]));
            j += 1;
        }
    }
    const CTX: usize = 2;
    let changed: Vec<usize> = (0..ops.len()).filter(|&k| ops[k].0 != ' ').collect();
    let mut out = format!("--- a/{origin}\n+++ b/{origin}\n");
    let mut k = 0;
    while k < changed.len() {
        // A hunk: changes closer than twice the context share one.
        let from = changed[k].saturating_sub(CTX);
        let mut last = changed[k];
        while k + 1 < changed.len() && changed[k + 1] <= last + 2 * CTX + 1 {
            k += 1;
            last = changed[k];
        }
        let to = (last + CTX + 1).min(ops.len());
        let hunk = &ops[from..to];
        let a_len = hunk.iter().filter(|o| o.0 != '+').count();
        let b_len = hunk.iter().filter(|o| o.0 != '-').count();
        out.push_str(&format!(
            "@@ -{},{a_len} +{},{b_len} @@\n",
            line + hunk[0].1,
            line + hunk[0].2
        ));
        for (op, _, _, text) in hunk {
            out.push(*op);
            out.push_str(text);
            out.push('\n');
        }
        k += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_separate_false_positives_from_samples() {
        assert_eq!(
            filesize_bound(&[223_232, 1_899_520], &[]).as_deref(),
            Some("< 200KB")
        );
        assert_eq!(
            filesize_bound(&[223_232], &[40_000]).as_deref(),
            Some("< 50KB")
        );
        assert_eq!(
            filesize_bound(&[1000], &[5_000_000]).as_deref(),
            Some("> 2MB")
        );
        assert_eq!(filesize_bound(&[1000, 9000], &[5000]), None);
        assert_eq!(filesize_bound(&[], &[5000]), None);
    }

    #[test]
    fn a_diff_keeps_unchanged_lines_of_a_wrapped_condition_as_context() {
        let old = "rule r {\n condition:\n  for any i in (1..#a):\n  (\n   x\n  )\n}";
        let new = "rule r {\n condition:\n  (for any i in (1..#a):\n  (\n   x\n  )) and filesize < 1KB\n}";
        let d = diff("r.yar", 1, old, new);
        assert_eq!(
            d,
            "--- a/r.yar\n+++ b/r.yar\n@@ -1,7 +1,7 @@\n rule r {\n  condition:\n-  for any i in (1..#a):\n+  (for any i in (1..#a):\n   (\n    x\n-  )\n+  )) and filesize < 1KB\n }\n"
        );
    }

    #[test]
    fn a_diff_shows_the_changed_lines_at_their_file_lines() {
        let old = "rule r {\n strings:\n  $a = \"x\"\n condition:\n  $a\n}";
        let new = "rule r {\n strings:\n  $a = \"x\" fullword\n condition:\n  $a\n}";
        let d = diff("r.yar", 10, old, new);
        assert_eq!(
            d,
            "--- a/r.yar\n+++ b/r.yar\n@@ -10,5 +10,5 @@\n rule r {\n  strings:\n-  $a = \"x\"\n+  $a = \"x\" fullword\n  condition:\n   $a\n"
        );
    }
}
