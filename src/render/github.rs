//! GitHub Actions workflow commands: one `::error` annotation per blocking
//! false positive, blocking warning and blocking problem of the known-bad
//! samples (lost detection, missed, untested) at its rule's line, so the author
//! sees it on the pull request's diff. Everything is escaped as the runner
//! requires (`%`, CR, LF; and `:` `,` in properties).

use super::sarif::message;
use crate::util::escape::{gh_data, gh_property};
use crate::verdict::report::Report;
use std::fmt::Write;

pub fn render(r: &Report) -> String {
    let mut out = String::new();
    let fps = &r.false_positives;
    for f in fps.new.iter().chain(&fps.persisting).filter(|f| f.blocking) {
        let mut props = Vec::new();
        if let Some(s) = &f.rule.source {
            props.push(format!("file={}", gh_property(s)));
        }
        if let Some(l) = f.rule.line {
            props.push(format!("line={l}"));
        }
        props.push(format!(
            "title={}",
            gh_property(&format!("fpgate: {} flags a clean file", f.rule.name()))
        ));
        let _ = writeln!(
            out,
            "::error {}::{}",
            props.join(","),
            gh_data(&message(f, r.triage.as_ref()))
        );
    }
    for w in &r.blocking_warnings {
        let mut props = Vec::new();
        if let Some(s) = &w.file {
            props.push(format!("file={}", gh_property(s)));
        }
        if let Some(l) = w.line {
            props.push(format!("line={l}"));
        }
        props.push(format!(
            "title={}",
            gh_property(&format!("fpgate: compiler warning {}", w.code))
        ));
        let _ = writeln!(
            out,
            "::error {}::{}",
            props.join(","),
            gh_data(&format!(
                "{} (in a new or modified rule; denied by the warning policy)",
                w.title
            ))
        );
    }
    if let Some(d) = &r.detections {
        for p in d.problems().iter().filter(|p| p.blocking) {
            let mut props = Vec::new();
            if let Some(s) = p.source {
                props.push(format!("file={}", gh_property(s)));
            }
            if let Some(l) = p.line {
                props.push(format!("line={l}"));
            }
            props.push(format!(
                "title={}",
                gh_property(&format!("fpgate: {}: {}", p.rule, p.kind.title()))
            ));
            let _ = writeln!(out, "::error {}::{}", props.join(","), gh_data(&p.message));
        }
    }
    if let Some(c) = &r.policy_changes {
        use crate::verdict::policy_changes::Direction;
        for (file, line, msg, dir, blocking) in c.lines() {
            if !blocking && dir == Direction::Tightens {
                continue;
            }
            let mut props = Vec::new();
            if let Some(f) = file.filter(|f| !f.contains(':')) {
                props.push(format!("file={}", gh_property(f)));
                if let Some(l) = line {
                    props.push(format!("line={l}"));
                }
            }
            props.push(format!(
                "title={}",
                gh_property(&format!("fpgate: the gate's policy {}", dir.as_str()))
            ));
            let _ = writeln!(
                out,
                "::{} {}::{}",
                if blocking { "error" } else { "warning" },
                props.join(","),
                gh_data(&msg)
            );
        }
    }
    if let Some(hs) = &r.history {
        for l in hs.lines() {
            let mut props = Vec::new();
            if let Some(f) = &l.finding.source {
                props.push(format!("file={}", gh_property(f)));
                if let Some(n) = l.finding.line {
                    props.push(format!("line={n}"));
                }
            }
            props.push(format!(
                "title={}",
                gh_property(&format!(
                    "fpgate: {}: new since the last run",
                    l.finding.rule()
                ))
            ));
            let _ = writeln!(
                out,
                "::{} {}::{}",
                if l.blocking { "error" } else { "warning" },
                props.join(","),
                gh_data(&l.message)
            );
        }
    }
    if !r.unscanned.is_empty() && !r.verdict.allow_incomplete {
        let _ = writeln!(
            out,
            "::error title={}::{}",
            gh_property("fpgate: corpus files could not be scanned"),
            gh_data(&format!(
                "{} file(s) unscanned, the gate fails closed: {}",
                r.unscanned.len(),
                r.unscanned
                    .iter()
                    .take(10)
                    .map(|u| format!("{} ({})", u.path, u.reason.as_str()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        );
    }
    if let Some(ex) = &r.exceptions {
        for e in ex
            .entries
            .iter()
            .filter(|e| e.status != crate::verdict::exceptions::Status::Applied)
        {
            let _ = writeln!(
                out,
                "::warning file={},line={},title={}::{}",
                gh_property(&e.file),
                e.line,
                gh_property(&format!("fpgate: exception {:?}", e.status).to_lowercase()),
                gh_data(&format!("{}: {}", e.rule, e.detail))
            );
        }
    }
    out
}
