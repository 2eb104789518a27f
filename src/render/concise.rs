//! `concise`: one `path:line:column: level: message` line per problem, for
//! editors and CI problem matchers (examples/github/fpgate-problem-matcher.json).
//! Blocking findings, denied warnings and blocking problems of the
//! known-bad samples point at the rule's line; files
//! that could not be scanned point at the file; a last line gives the
//! verdict. Every name goes through `escape::term`: a line cannot be forged.

use super::sarif::message;
use crate::util::escape::term;
use crate::verdict::report::Report;
use std::fmt::Write;

/// The concise report.
pub fn render(r: &Report) -> String {
    let mut out = String::new();
    let fps = &r.false_positives;
    for f in fps.new.iter().chain(&fps.persisting).filter(|f| f.blocking) {
        let _ = writeln!(
            out,
            "{}:{}:1: error: {} [{}]",
            term(f.rule.source.as_deref().unwrap_or("?")),
            f.rule.line.unwrap_or(1),
            term(&message(f, r.triage.as_ref())),
            f.rule.name()
        );
    }
    for w in &r.blocking_warnings {
        let _ = writeln!(
            out,
            "{}:{}:{}: error: compiler warning {} denied by the warning policy: {}",
            term(w.file.as_deref().unwrap_or("?")),
            w.line.unwrap_or(1),
            w.column.unwrap_or(1),
            w.code,
            term(&w.title)
        );
    }
    if let Some(d) = &r.detections {
        for p in d.problems().iter().filter(|p| p.blocking) {
            let _ = writeln!(
                out,
                "{}:{}:1: error: {} [{}]",
                term(p.source.unwrap_or("?")),
                p.line.unwrap_or(1),
                term(&p.message),
                p.rule
            );
        }
    }
    if let Some(c) = &r.policy_changes {
        for (file, line, msg, dir, blocking) in c.lines() {
            if !blocking && dir == crate::verdict::policy_changes::Direction::Tightens {
                continue;
            }
            let _ = writeln!(
                out,
                "{}:{}:1: {}: {}",
                term(file.unwrap_or("fpgate.toml")),
                line.unwrap_or(1),
                if blocking { "error" } else { "warning" },
                term(&msg)
            );
        }
    }
    if let Some(hs) = &r.history {
        for l in hs.lines() {
            let _ = writeln!(
                out,
                "{}:{}:1: {}: {}",
                term(l.finding.source.as_deref().unwrap_or("unknown")),
                l.finding.line.unwrap_or(1),
                if l.blocking { "error" } else { "warning" },
                term(&l.message)
            );
        }
    }
    let level = if r.verdict.allow_incomplete {
        "warning"
    } else {
        "error"
    };
    for u in &r.unscanned {
        let _ = writeln!(
            out,
            "{}:1:1: {level}: not scanned ({}): {}",
            term(&u.path),
            u.reason.as_str(),
            term(&u.detail)
        );
    }
    let _ = writeln!(
        out,
        "{}",
        super::terminal::verdict_line(r, super::terminal::Style { color: false })
    );
    out
}
