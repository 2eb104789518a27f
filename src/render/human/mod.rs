//! The human report: grouped by rule, sorted, one verdict line at the end.
//! Every name that comes from a rule or the corpus goes through
//! `escape::term` so it cannot drive the terminal.

pub use super::terminal::{human_bytes, verdict_line, Style};

mod findings;

use crate::util::escape::term;
use crate::verdict::report::Report;
pub use findings::triage_report;
use findings::{detections, findings};
use std::fmt::Write;

/// Compiler warnings listed one per line in the human report; the rest are
/// counted (a public ruleset can carry thousands).
pub const WARNING_LINES: usize = 20;

/// The human report: every section that has something to say, then the
/// reasons and the verdict line.
pub fn render(r: &Report, style: Style) -> String {
    let mut out = String::new();
    for part in [
        since_last,
        findings,
        triage_notes,
        detections,
        blocking_warnings,
        exceptions,
        policy_changes,
        rule_changes,
        profile,
        performance,
        lock,
        unscanned,
        unevaluated,
        warnings,
    ] {
        part(&mut out, r, style);
    }
    if r.triage.is_none() && !r.false_positives.new.is_empty() {
        let _ = writeln!(
            out,
            "{}",
            style.dim("hint: --explain shows how common each matched pattern is in the corpus, which ones the condition needs, and narrowings that clear these false positives")
        );
    }
    if !r.verdict.reasons.is_empty() {
        let _ = writeln!(out, "why: {}", r.verdict.reasons.join("; "));
    }
    out.push_str(&verdict_line(r, style));
    out.push('\n');
    out
}

/// `--since-last`: what is new since the last run of these rules.
fn since_last(out: &mut String, r: &Report, style: Style) {
    let Some(h) = &r.history else {
        return;
    };
    let lines = crate::render::since_last_lines(h);
    let title = format!("SINCE THE LAST RUN: {}", lines[0]);
    let _ = writeln!(
        out,
        "{}\n",
        if h.new_since_last.is_empty() {
            title
        } else if h.blocking > 0 {
            style.red(&title)
        } else {
            style.yellow(&title)
        }
    );
    for n in &lines[1..] {
        let _ = writeln!(out, "  {}", term(n));
    }
    for f in &h.new_since_last {
        let crit = if f.tier == crate::corpus::Tier::Critical {
            " [CRITICAL]"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "  + rule {} ({} {}){}{} on {}",
            term(&f.rule()),
            f.class.as_str(),
            if f.excepted { "excepted" } else { "finding" },
            crit,
            match (&f.source, f.line) {
                (Some(s), Some(l)) => format!(" {}:{l}", term(s)),
                _ => String::new(),
            },
            term(&f.paths.join(", "))
        );
    }
    if h.trend.len() > 1 {
        let counts: Vec<String> = h.trend.iter().map(|t| t.findings.to_string()).collect();
        let _ = writeln!(
            out,
            "  findings per run, last {} runs (oldest first): {}",
            h.trend.len(),
            counts.join(" ")
        );
    }
    out.push('\n');
}

/// Triage notes that concern the whole run (rules left out, unscanned).
fn triage_notes(out: &mut String, r: &Report, style: Style) {
    if let Some(t) = &r.triage {
        for n in &t.notes {
            let _ = writeln!(out, "{}", style.yellow(&format!("triage: {}", term(n))));
        }
        if !t.notes.is_empty() {
            out.push('\n');
        }
    }
}

/// Compiler warnings the warning policy turns into blocking findings.
fn blocking_warnings(out: &mut String, r: &Report, style: Style) {
    if !r.blocking_warnings.is_empty() {
        let _ = writeln!(
            out,
            "{} ({}) - compiler warnings in new or modified rules, denied by the warning policy\n",
            style.red("BLOCKING warnings"),
            r.blocking_warnings.len()
        );
        for w in &r.blocking_warnings {
            let _ = writeln!(
                out,
                "  rule {}  {}:{}  {} [{}]",
                style.bold(&term(w.rule.as_deref().unwrap_or("?"))),
                term(w.file.as_deref().unwrap_or("?")),
                w.line.unwrap_or(0),
                term(&w.title),
                w.code
            );
        }
        out.push('\n');
    }
}

/// Exceptions a reviewer should look at: critical ones, and any not applied.
fn exceptions(out: &mut String, r: &Report, style: Style) {
    if let Some(ex) = &r.exceptions {
        let notable: Vec<_> = ex
            .entries
            .iter()
            .filter(|e| e.critical || e.status != crate::verdict::exceptions::Status::Applied)
            .collect();
        if !notable.is_empty() {
            let _ = writeln!(
                out,
                "{} ({})\n",
                style.yellow("EXCEPTIONS to review"),
                term(&ex.file)
            );
            for e in notable {
                let status = format!("{:?}", e.status).to_lowercase();
                let target = e.sha256.as_deref().or(e.path.as_deref()).unwrap_or("?");
                let crit = if e.critical { " [critical]" } else { "" };
                let _ = writeln!(
                    out,
                    "  line {}: rule {} on {}{} - {}: {} (owner {}, expires {})",
                    e.line,
                    term(&e.rule),
                    term(target),
                    crit,
                    status,
                    term(&e.detail),
                    term(&e.owner),
                    e.expires
                );
            }
            out.push('\n');
        }
    }
}

/// `gate --baseline-ref`: the policy's own changes against the base.
fn policy_changes(out: &mut String, r: &Report, style: Style) {
    let Some(c) = &r.policy_changes else {
        return;
    };
    let applied = match c.source {
        crate::verdict::policy_changes::Source::Base => {
            "the base's policy is applied, the default with --baseline-ref"
        }
        crate::verdict::policy_changes::Source::Worktree => "the working tree's policy is applied",
    };
    for n in &c.notes {
        let _ = writeln!(out, "policy: {}", term(n));
    }
    let lines = c.lines();
    if lines.is_empty() {
        let _ = writeln!(
            out,
            "POLICY unchanged since {} ({applied})\n",
            term(&c.base_ref)
        );
        return;
    }
    let title = format!(
        "POLICY CHANGES since {} ({} relax, {} tighten, {} other; {applied}{})",
        term(&c.base_ref),
        c.counts.relaxes,
        c.counts.tightens,
        c.counts.changed,
        if c.counts.blocking > 0 {
            "; blocking under policy.changes = \"block\""
        } else {
            ""
        }
    );
    let _ = writeln!(
        out,
        "{}\n",
        if c.counts.relaxes > 0 || c.counts.blocking > 0 {
            style.yellow(&title)
        } else {
            title
        }
    );
    for (file, line, msg, _, blocking) in lines {
        let at = match (file, line) {
            (Some(f), Some(l)) => format!("{}:{l}", term(f)),
            (Some(f), None) => term(f),
            _ => "?".into(),
        };
        let _ = writeln!(
            out,
            "  {at}: {}{}",
            term(&msg),
            if blocking { " [blocks]" } else { "" }
        );
    }
    out.push('\n');
}

/// Added, modified and removed rules (gate with a baseline).
fn rule_changes(out: &mut String, r: &Report, _style: Style) {
    if let Some(ch) = &r.rule_changes {
        if !(ch.added.is_empty() && ch.modified.is_empty() && ch.removed.is_empty()) {
            let _ = writeln!(
                out,
                "RULE CHANGES: {} added, {} modified, {} removed, {} unchanged",
                ch.added.len(),
                ch.modified.len(),
                ch.removed.len(),
                ch.unchanged
            );
            for (word, rr) in ch.listed() {
                let _ = writeln!(
                    out,
                    "  {word:<8} {}  {}:{}",
                    term(&rr.name()),
                    term(rr.source.as_deref().unwrap_or("?")),
                    rr.line.unwrap_or(0)
                );
            }
            out.push('\n');
        }
    }
}

/// `--profile`: the slowest rules.
fn profile(out: &mut String, r: &Report, _style: Style) {
    if let Some(prof) = &r.profile {
        let _ = writeln!(
            out,
            "SLOWEST RULES (candidate, summed over all threads; yara-x leaves out rules under 100 ms per thread)\n"
        );
        if prof.is_empty() {
            let _ = writeln!(out, "  no rule took 100 ms or more on any thread");
        }
        let _ = writeln!(
            out,
            "  {:>10} {:>10} {:>10}  rule",
            "total s", "condition", "patterns"
        );
        for c in prof.iter().take(20) {
            let _ = writeln!(
                out,
                "  {:>10.4} {:>10.4} {:>10.4}  {}",
                c.total_seconds,
                c.condition_seconds,
                c.pattern_matching_seconds,
                term(&c.rule)
            );
        }
        out.push('\n');
    }
}

/// `gate --perf`: the measurement.
fn performance(out: &mut String, r: &Report, style: Style) {
    if let Some(p) = &r.performance {
        let word = if p.blocked {
            style.red("SLOWER")
        } else {
            style.green("ok")
        };
        let _ = writeln!(
            out,
            "PERFORMANCE {word}: candidate {:.3}s vs baseline {:.3}s (median of {} alternating runs over {} files, {}): ratio {:.3}, limit {:.2}; run-to-run spread {:.0}% / {:.0}%",
            p.candidate_median_seconds,
            p.baseline_median_seconds,
            p.runs,
            p.sample_files,
            human_bytes(p.sample_bytes),
            p.ratio,
            p.max_ratio,
            p.candidate_spread * 100.0,
            p.baseline_spread * 100.0
        );
        if !p.changed_rules.is_empty() {
            let _ = writeln!(
                out,
                "  added or modified rules: {}",
                term(&p.changed_rules.join(", "))
            );
        }
        out.push('\n');
    }
}

/// The corpus lock check.
fn lock(out: &mut String, r: &Report, _style: Style) {
    if let Some(l) = &r.corpus.lock {
        let _ = writeln!(
            out,
            "corpus lock {}: {} locked files verified, {} new since the lock",
            term(&l.file),
            l.verified,
            l.new_files.len()
        );
        for n in l.new_files.iter().take(20) {
            let _ = writeln!(out, "  new: {}", term(n));
        }
        out.push('\n');
    }
}

/// Files that could not be scanned.
fn unscanned(out: &mut String, r: &Report, style: Style) {
    if !r.unscanned.is_empty() {
        let _ = writeln!(
            out,
            "{} ({}) - {}\n",
            style.yellow("UNSCANNED files"),
            r.unscanned.len(),
            if r.verdict.allow_incomplete {
                "accepted by --allow-incomplete"
            } else {
                "fail closed: the gate cannot pass while these are unscanned"
            }
        );
        for u in &r.unscanned {
            let _ = writeln!(
                out,
                "  {}  [{}] {}",
                term(&u.path),
                u.reason.as_str(),
                term(&u.detail)
            );
        }
        out.push('\n');
    }
}

/// Rules the engine did not compile (an ignored module): their verdict is
/// unknown.
fn unevaluated(out: &mut String, r: &Report, style: Style) {
    for (label, rs) in &r.rulesets {
        if rs.unevaluated.is_empty() {
            continue;
        }
        let _ = writeln!(
            out,
            "{} ({}) in the {label} ruleset - they use an ignored module: {}\n",
            style.yellow("UNEVALUATED rules"),
            rs.unevaluated.len(),
            if r.verdict.allow_unevaluated {
                "accepted by --allow-unevaluated"
            } else {
                "fail closed: the gate cannot pass over rules it did not run"
            }
        );
        for u in &rs.unevaluated {
            let _ = writeln!(
                out,
                "  {}  {}:{}  (module {})",
                term(&u.rule),
                term(u.file.as_deref().unwrap_or("?")),
                u.line.unwrap_or(0),
                term(&u.module)
            );
        }
        out.push('\n');
    }
}

/// A summary of each ruleset's compiler warnings (full text on stderr).
fn warnings(out: &mut String, r: &Report, style: Style) {
    for (label, rs) in &r.rulesets {
        if !rs.warnings.is_empty() {
            let _ = writeln!(
                out,
                "{} {} compiler warning(s) in the {label} ruleset (full text on stderr)",
                style.yellow("warning:"),
                rs.warnings.len()
            );
            for w in rs.warnings.iter().take(WARNING_LINES) {
                let _ = writeln!(
                    out,
                    "  {}:{}: {} [{}]",
                    term(w.file.as_deref().unwrap_or("?")),
                    w.line.unwrap_or(0),
                    term(&w.title),
                    w.code
                );
            }
            if rs.warnings.len() > WARNING_LINES {
                let _ = writeln!(
                    out,
                    "  ... and {} more (all of them are in the JSON report)",
                    rs.warnings.len() - WARNING_LINES
                );
            }
            out.push('\n');
        }
    }
}
