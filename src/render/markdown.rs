//! Markdown summary: for a pull-request comment, a chat message, or the
//! GitHub Actions step summary.

use crate::exit::Exit;
use crate::util::escape::markdown as md;
use crate::verdict::report::{Finding, Report};
use std::fmt::Write;

/// The markdown summary (GitHub step summary, PR comments).
pub fn render(r: &Report) -> String {
    let mut out = String::new();
    for part in [
        summary,
        since_last,
        blocking,
        triage,
        detections,
        policy_changes,
        lists,
        unscanned,
    ] {
        part(&mut out, r);
    }
    out
}

/// The verdict, the reasons, the counts per tier, the scan figures.
fn summary(out: &mut String, r: &Report) {
    let c = &r.verdict.counts;
    let icon = match r.verdict.result {
        Exit::Blocked => "❌ **BLOCKED**",
        Exit::Incomplete => "⚠️ **INCOMPLETE**",
        Exit::Pass | Exit::Error => "✅ **PASS**",
    };
    let _ = writeln!(out, "## fpgate {}: {icon}\n", r.command);
    for reason in &r.verdict.reasons {
        let _ = writeln!(out, "- {}", md(reason));
    }
    if !r.verdict.reasons.is_empty() {
        out.push('\n');
    }
    let _ = writeln!(out, "| | new | persisting | fixed | excepted |");
    let _ = writeln!(out, "|---|---:|---:|---:|---:|");
    for (tier, t) in &c.by_tier {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            tier.as_str(),
            t.new,
            t.persisting,
            t.fixed,
            t.excepted
        );
    }
    let _ = writeln!(
        out,
        "| **total** | **{}** | **{}** | **{}** | **{}** |\n",
        c.new, c.persisting, c.fixed, c.excepted
    );
    let _ = writeln!(
        out,
        "Scanned {} of {} corpus files ({} unique contents), {} unscanned; corpus hash `{}`.\n",
        r.corpus.scanned_files,
        r.corpus.entries,
        r.corpus.unique_contents,
        c.unscanned,
        r.corpus.hash.get(..16).unwrap_or("")
    );
}

/// The tables of blocking false positives.
fn blocking(out: &mut String, r: &Report) {
    table(
        out,
        "New false positives",
        &r.false_positives.new,
        r.triage.as_ref(),
    );
    let blocking_persisting: Vec<Finding> = r
        .false_positives
        .persisting
        .iter()
        .filter(|f| f.blocking)
        .cloned()
        .collect();
    table(
        out,
        "Persisting false positives on critical files",
        &blocking_persisting,
        None,
    );
}

/// `--since-last`: findings new since the last run of these rules.
fn since_last(out: &mut String, r: &Report) {
    let Some(h) = &r.history else {
        return;
    };
    let lines = crate::render::since_last_lines(h);
    let _ = writeln!(out, "### Since the last run\n");
    for l in &lines {
        let _ = writeln!(out, "- {}", md(l));
    }
    out.push('\n');
    if !h.new_since_last.is_empty() {
        let _ = writeln!(out, "| rule | file | tier | class |");
        let _ = writeln!(out, "|---|---|---|---|");
        for f in &h.new_since_last {
            let loc = match (&f.source, f.line) {
                (Some(s), Some(l)) => format!("{} ({}:{l})", md(&f.rule()), md(s)),
                _ => md(&f.rule()),
            };
            let files: Vec<String> = f.paths.iter().map(|p| md(p)).collect();
            let _ = writeln!(
                out,
                "| {loc} | {} | {} | {}{} |",
                files.join("<br>"),
                f.tier.as_str(),
                f.class.as_str(),
                if f.excepted { " (excepted)" } else { "" }
            );
        }
        out.push('\n');
    }
    if h.trend.len() > 1 {
        let counts: Vec<String> = h.trend.iter().map(|t| t.findings.to_string()).collect();
        let _ = writeln!(
            out,
            "Findings per run, last {} runs (oldest first): {}\n",
            h.trend.len(),
            counts.join(", ")
        );
    }
}

/// `--explain`: per rule, what each false positive needs, and the
/// narrowings that passed (as diffs).
fn triage(out: &mut String, r: &Report) {
    let Some(t) = &r.triage else {
        return;
    };
    let _ = writeln!(out, "### Triage of the new false positives\n");
    for n in &t.notes {
        let _ = writeln!(out, "- {}", md(n));
    }
    for rt in &t.rules {
        let _ = writeln!(out, "#### {}\n", md(&rt.name()));
        for n in &rt.notes {
            let _ = writeln!(out, "- {}", md(n));
        }
        for n in &rt.necessity {
            let _ = writeln!(
                out,
                "- {}: {}",
                md(&n.paths.join(", ")),
                md(&crate::render::necessity_line(n))
            );
        }
        if t.explained {
            if rt.suggestions.is_empty() {
                let _ = writeln!(
                    out,
                    "\nNo narrowing tried clears every false positive without losing a detection."
                );
            }
            for s in &rt.suggestions {
                let _ = writeln!(
                    out,
                    "\n**Suggested:** {} (clears {} false positive(s); clean files {} → {}; samples {} → {})\n",
                    md(&s.summary),
                    s.clears,
                    s.clean_files_before,
                    s.clean_files_after,
                    s.samples_before,
                    s.samples_after
                );
                // The longest run of backticks inside decides the fence.
                let fence = "`".repeat(3.max(longest_backticks(&s.diff) + 1));
                let _ = writeln!(out, "{fence}diff\n{}{fence}", s.diff);
            }
        }
        out.push('\n');
    }
}

fn longest_backticks(s: &str) -> usize {
    let (mut best, mut run) = (0, 0);
    for c in s.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        best = best.max(run);
    }
    best
}

/// `gate --positives`: the counts, the lost detections (with the patterns
/// the baseline matched), and the blocking missed and untested rules.
fn detections(out: &mut String, r: &Report) {
    let Some(d) = &r.detections else {
        return;
    };
    let c = &d.counts;
    let _ = writeln!(
        out,
        "### Known-bad samples: {} lost, {} kept, {} gained, {} excepted
",
        c.lost, c.kept, c.gained, c.excepted
    );
    let _ = writeln!(
        out,
        "{} of {} samples scanned; {} rule(s) detect no sample; samples named in rule meta: {} detected, {} missed, {} not present.\n",
        d.scanned_samples,
        d.samples,
        c.untested_rules,
        c.expected_detected,
        c.expected_missed,
        c.expected_untestable
    );
    if !d.lost.is_empty() {
        let _ = writeln!(out, "| lost rule | sample | matched in the baseline |");
        let _ = writeln!(out, "|---|---|---|");
        for f in &d.lost {
            let loc = match (&f.rule.source, f.rule.line) {
                (Some(s), Some(l)) => format!("{} ({}:{l})", md(&f.rule.name()), md(s)),
                _ => md(&f.rule.name()),
            };
            let files: Vec<String> = f.paths.iter().map(|p| md(p)).collect();
            let _ = writeln!(
                out,
                "| {loc} | {} | {} |",
                files.join("<br>"),
                patterns(f).join("<br>")
            );
        }
        out.push('\n');
    }
    let others: Vec<_> = d
        .problems()
        .into_iter()
        .filter(|p| p.blocking && p.kind != crate::verdict::detections::ProblemKind::LostDetection)
        .collect();
    for p in others {
        let _ = writeln!(out, "- {}", md(&p.message));
    }
    out.push('\n');
}

/// `gate --baseline-ref`: the policy's own changes against the base.
fn policy_changes(out: &mut String, r: &Report) {
    let Some(c) = &r.policy_changes else {
        return;
    };
    let lines = c.lines();
    let _ = writeln!(
        out,
        "### Policy changes since `{}`: {} relax, {} tighten, {} other\n",
        c.base_ref.replace('`', "'"),
        c.counts.relaxes,
        c.counts.tightens,
        c.counts.changed
    );
    let _ = writeln!(
        out,
        "Applied: the {}{}.\n",
        match c.source {
            crate::verdict::policy_changes::Source::Base =>
                "base revision's policy (the default with `--baseline-ref`)",
            crate::verdict::policy_changes::Source::Worktree => "working tree's policy",
        },
        if c.mode == crate::verdict::policy_changes::Mode::Block {
            "; changes that do not tighten the gate block (`policy.changes = \"block\"`)"
        } else {
            ""
        }
    );
    for n in &c.notes {
        let _ = writeln!(out, "- {}", md(n));
    }
    if !lines.is_empty() {
        let _ = writeln!(out, "| where | change | direction |");
        let _ = writeln!(out, "|---|---|---|");
        for (file, line, msg, dir, blocking) in lines {
            let _ = writeln!(
                out,
                "| {}:{} | {} | {}{} |",
                md(file.unwrap_or("?")),
                line.unwrap_or(0),
                md(&msg),
                dir.as_str(),
                if blocking { " **(blocks)**" } else { "" }
            );
        }
    }
    out.push('\n');
}

/// Blocking warnings, rule changes and exceptions to review.
fn lists(out: &mut String, r: &Report) {
    if !r.blocking_warnings.is_empty() {
        let _ = writeln!(out, "### Blocking compiler warnings\n");
        let _ = writeln!(out, "| rule | location | warning |");
        let _ = writeln!(out, "|---|---|---|");
        for w in &r.blocking_warnings {
            let _ = writeln!(
                out,
                "| {} | {}:{} | {} ({}) |",
                md(w.rule.as_deref().unwrap_or("?")),
                md(w.file.as_deref().unwrap_or("?")),
                w.line.unwrap_or(0),
                md(&w.title),
                md(&w.code)
            );
        }
        out.push('\n');
    }

    if let Some(ch) = &r.rule_changes {
        let _ = writeln!(
            out,
            "### Changed rules: {} added, {} modified, {} removed\n",
            ch.added.len(),
            ch.modified.len(),
            ch.removed.len()
        );
        for (word, rr) in ch.listed() {
            let _ = writeln!(
                out,
                "- {word}: `{}` ({}:{})",
                rr.name().replace('`', "'"),
                md(rr.source.as_deref().unwrap_or("?")),
                rr.line.unwrap_or(0)
            );
        }
        out.push('\n');
    }

    if let Some(ex) = &r.exceptions {
        let notable: Vec<_> = ex
            .entries
            .iter()
            .filter(|e| e.status != crate::verdict::exceptions::Status::Applied || e.critical)
            .collect();
        if !notable.is_empty() {
            let _ = writeln!(out, "### Exceptions to review\n");
            let _ = writeln!(out, "| line | rule | status | owner | expires | detail |");
            let _ = writeln!(out, "|---:|---|---|---|---|---|");
            for e in notable {
                let _ = writeln!(
                    out,
                    "| {} | {} | {:?}{} | {} | {} | {} |",
                    e.line,
                    md(&e.rule),
                    e.status,
                    if e.critical { " (critical)" } else { "" },
                    md(&e.owner),
                    e.expires,
                    md(&e.detail)
                );
            }
            out.push('\n');
        }
    }
}

/// Files that could not be scanned.
fn unscanned(out: &mut String, r: &Report) {
    if !r.unscanned.is_empty() {
        let _ = writeln!(out, "### Unscanned files ({})\n", r.unscanned.len());
        for u in r.unscanned.iter().take(50) {
            let _ = writeln!(
                out,
                "- {} ({}: {})",
                md(&u.path),
                u.reason.as_str(),
                md(&u.detail)
            );
        }
        if r.unscanned.len() > 50 {
            let _ = writeln!(out, "- ... and {} more", r.unscanned.len() - 50);
        }
        out.push('\n');
    }
}

fn table(out: &mut String, title: &str, list: &[Finding], tri: Option<&crate::triage::Triage>) {
    if list.is_empty() {
        return;
    }
    let _ = writeln!(out, "### {title} ({})\n", list.len());
    let _ = writeln!(out, "| rule | file | tier | matched patterns |");
    let _ = writeln!(out, "|---|---|---|---|");
    for f in list {
        let loc = match (&f.rule.source, f.rule.line) {
            (Some(s), Some(l)) => format!("{} ({}:{l})", md(&f.rule.name()), md(s)),
            _ => md(&f.rule.name()),
        };
        let mut pats = patterns(f);
        if let Some((t, rt)) = tri.and_then(|t| t.rule_of(f).map(|rt| (t, rt))) {
            for (cell, p) in pats.iter_mut().zip(&f.patterns) {
                cell.push_str(&format!(
                    " — {}",
                    md(&crate::render::triage_note(t, rt, &f.sha256, &p.identifier))
                ));
            }
        }
        let files: Vec<String> = f.paths.iter().map(|p| md(p)).collect();
        let _ = writeln!(
            out,
            "| {loc} | {} | {} | {} |",
            files.join("<br>"),
            if f.tier == crate::corpus::Tier::Critical {
                if f.signed_by.is_empty() {
                    "**critical**".to_string()
                } else {
                    format!("**critical** ({})", md(&f.signed_by.join("; ")))
                }
            } else {
                "standard".to_string()
            },
            pats.join("<br>")
        );
    }
    out.push('\n');
}

/// A finding's matched patterns, one cell line each.
fn patterns(f: &Finding) -> Vec<String> {
    f.patterns
        .iter()
        .map(|p| match p.matches.first() {
            Some(m) => format!(
                "{} ×{} at 0x{:x} “{}”",
                md(&p.identifier),
                p.match_count,
                m.offset,
                md(&m.text)
            ),
            None => md(&p.identifier),
        })
        .collect()
}
