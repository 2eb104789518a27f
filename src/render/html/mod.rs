//! A self-contained HTML report for the nightly scan: the verdict, charts of
//! false positives per rule and per corpus format (inline SVG), a sortable
//! table, a card per rule with its evidence, and (with `--positives`) a
//! detection coverage table per rule. No network, no external
//! script or style: one file that opens anywhere.

mod charts;

use crate::util::escape::html as h;
use crate::verdict::report::{Finding, Report};
use charts::{charts, since_last, trend};
use std::collections::BTreeMap;
use std::fmt::Write;

const STYLE: &str = r#"
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem;color:#1b1f24;background:#fafbfc}
h1{margin:0 0 .3rem 0;font-size:1.6rem}
.verdict{display:inline-block;padding:.3rem .8rem;border-radius:.4rem;font-weight:700;color:#fff}
.blocked{background:#c62828}.incomplete{background:#b26a00}.pass{background:#2e7d32}
.counts{display:flex;gap:1rem;flex-wrap:wrap;margin:1rem 0}
.count{background:#fff;border:1px solid #d0d7de;border-radius:.5rem;padding:.6rem 1rem;min-width:7rem}
.count b{display:block;font-size:1.5rem}
.charts{display:flex;gap:2rem;flex-wrap:wrap}
.chart{background:#fff;border:1px solid #d0d7de;border-radius:.5rem;padding:1rem}
table{border-collapse:collapse;background:#fff;width:100%;font-size:.9rem}
th,td{border:1px solid #d0d7de;padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:#f0f3f6;cursor:pointer;user-select:none}
th.sorted-asc::after{content:" ▲"}th.sorted-desc::after{content:" ▼"}
.card{background:#fff;border:1px solid #d0d7de;border-left:6px solid #c62828;border-radius:.5rem;padding:.8rem 1rem;margin:1rem 0}
.card.persisting{border-left-color:#b26a00}.card.fixed{border-left-color:#2e7d32}.card.excepted{border-left-color:#8c959f}
.crit{color:#c62828;font-weight:700}
code,pre{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.85rem}
pre{background:#f6f8fa;padding:.4rem;overflow-x:auto;margin:.2rem 0}
.muted{color:#57606a}
"#;

const SCRIPT: &str = r#"
document.querySelectorAll('table.sortable').forEach(function(table){
  table.setAttribute('data-sortable', 'ready');
  table.querySelectorAll('th').forEach(function(th, col){
    th.addEventListener('click', function(){
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      var asc = !th.classList.contains('sorted-asc');
      table.querySelectorAll('th').forEach(function(x){x.classList.remove('sorted-asc','sorted-desc');});
      th.classList.add(asc ? 'sorted-asc' : 'sorted-desc');
      rows.sort(function(a, b){
        var x = a.cells[col].getAttribute('data-sort') || a.cells[col].textContent;
        var y = b.cells[col].getAttribute('data-sort') || b.cells[col].textContent;
        var nx = parseFloat(x), ny = parseFloat(y);
        var r = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
        return asc ? r : -r;
      });
      rows.forEach(function(r){ body.appendChild(r); });
    });
  });
});
"#;

/// The HTML report: one self-contained page.
pub fn render(r: &Report) -> String {
    let fps = &r.false_positives;
    let all: Vec<&Finding> = fps
        .new
        .iter()
        .chain(&fps.persisting)
        .chain(&fps.excepted)
        .chain(&fps.fixed)
        .collect();
    let mut out = String::new();
    for part in [
        head, since_last, charts, trend, table, cards, triage, coverage, policy, unscanned,
    ] {
        part(&mut out, r, &all);
    }

    out
}

/// The page head, the verdict, the reasons and the counts.
fn head(out: &mut String, r: &Report, _all: &[&Finding]) {
    let c = &r.verdict.counts;
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">\
         <title>fpgate {} report: {}</title><style>{STYLE}</style></head><body>\n",
        h(r.command.as_str()),
        h(r.verdict.result.name())
    );
    let _ = writeln!(
        out,
        "<h1>fpgate {} report</h1><p><span id=\"verdict\" class=\"verdict {}\">{}</span> <span class=\"muted\">exit code {} · fpgate {} · yara-x {}</span></p>",
        h(r.command.as_str()),
        h(r.verdict.result.name()),
        h(&r.verdict.result.name().to_uppercase()),
        r.verdict.exit_code,
        h(r.tool.version),
        h(r.tool.yara_x_version)
    );
    if !r.verdict.reasons.is_empty() {
        let _ = writeln!(out, "<ul id=\"reasons\">");
        for reason in &r.verdict.reasons {
            let _ = writeln!(out, "<li>{}</li>", h(reason));
        }
        let _ = writeln!(out, "</ul>");
    }
    let _ = writeln!(out, "<div class=\"counts\">");
    for (label, n) in [
        ("new", c.new),
        ("persisting", c.persisting),
        ("fixed", c.fixed),
        ("excepted", c.excepted),
        ("unscanned", c.unscanned),
        ("files scanned", r.corpus.scanned_files),
    ] {
        let _ = writeln!(out, "<div class=\"count\"><b>{n}</b>{label}</div>");
    }
    let _ = writeln!(out, "</div>");
}

/// A sortable table of every finding.
fn table(out: &mut String, _r: &Report, all: &[&Finding]) {
    // Sortable table of every finding.
    let _ = writeln!(out, "<h2>All findings</h2>");
    if all.is_empty() {
        let _ = writeln!(
            out,
            "<p id=\"no-findings\">No rule matched a clean file.</p>"
        );
    } else {
        let _ = writeln!(
            out,
            "<table class=\"sortable\" id=\"findings\"><thead><tr><th>class</th><th>tier</th><th>rule</th><th>file</th><th>format</th><th>size</th><th>patterns</th></tr></thead><tbody>"
        );
        for f in all {
            for p in &f.paths {
                let pats: Vec<String> = f
                    .patterns
                    .iter()
                    .map(|p| format!("{} ×{}", h(&p.identifier), p.match_count))
                    .collect();
                let _ = writeln!(
                    out,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td><td data-sort=\"{}\">{}</td><td>{}</td></tr>",
                    if f.exception.is_some() { "excepted" } else { f.class.as_str() },
                    tier(f),
                    h(&f.rule.name()),
                    h(p),
                    h(f.format.as_str()),
                    f.size,
                    crate::render::human::human_bytes(f.size),
                    pats.join(", ")
                );
            }
        }
        let _ = writeln!(out, "</tbody></table>");
    }
}

/// A card per rule with its evidence.
fn cards(out: &mut String, r: &Report, all: &[&Finding]) {
    // A card per rule with evidence.
    let _ = writeln!(out, "<h2>Evidence per rule</h2>");
    let mut by_rule: BTreeMap<(String, String, &str), Vec<&Finding>> = BTreeMap::new();
    for f in all {
        let class = if f.exception.is_some() {
            "excepted"
        } else {
            f.class.as_str()
        };
        by_rule
            .entry((f.rule.namespace.clone(), f.rule.identifier.clone(), class))
            .or_default()
            .push(f);
    }
    for ((_, id, class), list) in &by_rule {
        let rule = &list[0].rule;
        let _ = writeln!(
            out,
            "<div class=\"card {class}\"><h3>{} <span class=\"muted\">({class})</span></h3><p class=\"muted\">{}:{}{}</p>",
            h(id),
            h(rule.source.as_deref().unwrap_or("?")),
            rule.line.unwrap_or(0),
            if rule.tags.is_empty() { String::new() } else { format!(" · tags: {}", h(&rule.tags.join(", "))) }
        );
        if let Some(d) = &rule.description {
            let _ = writeln!(out, "<p>{}</p>", h(d));
        }
        for f in list {
            let _ = writeln!(
                out,
                "<p>{} <code>{}</code> · {} · sha256 <code>{}</code></p>",
                if f.tier == crate::corpus::Tier::Critical {
                    "<span class=\"crit\">CRITICAL</span>"
                } else {
                    ""
                },
                f.paths
                    .iter()
                    .map(|p| h(p))
                    .collect::<Vec<_>>()
                    .join("</code>, <code>"),
                crate::render::human::human_bytes(f.size),
                h(&f.sha256)
            );
            if let Some(e) = &f.exception {
                let _ = writeln!(
                    out,
                    "<p class=\"muted\">excepted by {}:{} (owner {}, expires {}): {}</p>",
                    h(&e.file),
                    e.line,
                    h(&e.owner),
                    h(&e.expires),
                    h(&e.reason)
                );
            }
            for n in f.signed_by.iter().chain(&f.notes) {
                let _ = writeln!(out, "<p class=\"crit\">{}</p>", h(n));
            }
            let tri = (f.class == crate::verdict::report::Class::New && f.exception.is_none())
                .then_some(r.triage.as_ref())
                .flatten()
                .and_then(|t| t.rule_of(f).map(|rt| (t, rt)));
            for p in &f.patterns {
                for m in &p.matches {
                    let _ = writeln!(
                        out,
                        "<pre>{} at 0x{:08x} ({} bytes): {}  |{}|</pre>",
                        h(&p.identifier),
                        m.offset,
                        m.length,
                        h(&m.hex),
                        h(&m.text)
                    );
                }
                if let Some((t, rt)) = tri {
                    let _ = writeln!(
                        out,
                        "<p class=\"muted prevalence\">{}</p>",
                        h(&crate::render::triage_note(t, rt, &f.sha256, &p.identifier))
                    );
                }
            }
            if let Some(n) = tri.and_then(|(_, rt)| rt.necessity_of(&f.sha256)) {
                let _ = writeln!(
                    out,
                    "<p class=\"necessity\"><b>{}</b></p>",
                    h(&crate::render::necessity_line(n))
                );
            }
        }
        let _ = writeln!(out, "</div>");
    }
}

/// Files that could not be scanned, and the page foot.
/// `gate --positives`: a detection coverage table, one row per rule (every
/// candidate rule, and removed rules that lost a sample).
fn coverage(out: &mut String, r: &Report, _all: &[&Finding]) {
    let Some(d) = &r.detections else {
        return;
    };
    #[derive(Default)]
    struct Row {
        kept: usize,
        gained: usize,
        lost: usize,
        excepted: usize,
        expected: [usize; 3],
        untested: bool,
        blocking: bool,
        place: String,
    }
    let mut rows: BTreeMap<String, Row> = BTreeMap::new();
    let place = |s: &Option<String>, l: Option<usize>| match (s, l) {
        (Some(s), Some(l)) => format!("{s}:{l}"),
        (Some(s), None) => s.clone(),
        _ => String::new(),
    };
    for i in &r.candidate_rules {
        rows.entry(i.name()).or_default().place = place(&i.source, i.line);
    }
    for (list, which) in [(&d.kept, 0), (&d.gained, 1), (&d.lost, 2), (&d.excepted, 3)] {
        for f in list {
            let row = rows.entry(f.rule.name()).or_default();
            if row.place.is_empty() {
                row.place = place(&f.rule.source, f.rule.line);
            }
            match which {
                0 => row.kept += 1,
                1 => row.gained += 1,
                2 => {
                    row.lost += 1;
                    row.blocking |= f.blocking;
                }
                _ => row.excepted += 1,
            }
        }
    }
    for x in &d.expected_samples {
        let row = rows
            .entry(crate::rules::rule_name(&x.namespace, &x.identifier))
            .or_default();
        row.expected[x.status as usize] += 1;
        row.blocking |= x.blocking;
    }
    for u in &d.untested_rules {
        let row = rows
            .entry(crate::rules::rule_name(&u.namespace, &u.identifier))
            .or_default();
        row.untested = true;
        row.blocking |= u.blocking;
    }
    let c = &d.counts;
    let _ = writeln!(
        out,
        "<h2>Detection coverage ({} known-bad samples, {} scanned)</h2><p>{} lost, {} kept, {} gained, {} excepted; {} rule(s) detect no sample.</p>",
        d.samples, d.scanned_samples, c.lost, c.kept, c.gained, c.excepted, c.untested_rules
    );
    let _ = writeln!(
        out,
        "<table class=\"sortable\" id=\"coverage\"><thead><tr><th>rule</th><th>location</th><th>status</th><th>kept</th><th>gained</th><th>lost</th><th>excepted</th><th>meta samples detected</th><th>missed</th><th>not present</th></tr></thead><tbody>"
    );
    for (name, row) in &rows {
        let status = if row.lost > 0 {
            "lost"
        } else if row.expected[1] > 0 {
            "missed"
        } else if row.untested {
            "untested"
        } else {
            "tested"
        };
        let _ = writeln!(
            out,
            "<tr class=\"{status}{}\"><td>{}</td><td><code>{}</code></td><td>{}{status}{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            if row.blocking { " blocking" } else { "" },
            h(name),
            h(&row.place),
            if row.blocking { "<span class=\"crit\">" } else { "" },
            if row.blocking { " (blocks)</span>" } else { "" },
            row.kept,
            row.gained,
            row.lost,
            row.excepted,
            row.expected[0],
            row.expected[1],
            row.expected[2]
        );
    }
    let _ = writeln!(out, "</tbody></table>");
}

/// `gate --baseline-ref`: the policy's own changes against the base.
fn policy(out: &mut String, r: &Report, _all: &[&Finding]) {
    let Some(c) = &r.policy_changes else {
        return;
    };
    let _ = writeln!(
        out,
        "<h2>Policy changes since <code>{}</code></h2><p>{} relax, {} tighten, {} other; the {} policy is applied.</p>",
        h(&c.base_ref),
        c.counts.relaxes,
        c.counts.tightens,
        c.counts.changed,
        match c.source {
            crate::verdict::policy_changes::Source::Base => "base revision's",
            crate::verdict::policy_changes::Source::Worktree => "working tree's",
        }
    );
    for n in &c.notes {
        let _ = writeln!(out, "<p class=\"muted\">{}</p>", h(n));
    }
    let lines = c.lines();
    if lines.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "<table class=\"sortable\" id=\"policy-changes\"><thead><tr><th>where</th><th>direction</th><th>change</th></tr></thead><tbody>"
    );
    for (file, line, msg, dir, blocking) in lines {
        let _ = writeln!(
            out,
            "<tr class=\"{}\"><td><code>{}:{}</code></td><td>{}{}</td><td>{}</td></tr>",
            dir.as_str(),
            h(file.unwrap_or("?")),
            line.unwrap_or(0),
            dir.as_str(),
            if blocking {
                " <span class=\"crit\">(blocks)</span>"
            } else {
                ""
            },
            h(&msg)
        );
    }
    let _ = writeln!(out, "</tbody></table>");
}

fn unscanned(out: &mut String, r: &Report, _all: &[&Finding]) {
    if !r.unscanned.is_empty() {
        let _ = writeln!(
            out,
            "<h2>Unscanned files ({})</h2><ul id=\"unscanned\">",
            r.unscanned.len()
        );
        for u in &r.unscanned {
            let _ = writeln!(
                out,
                "<li><code>{}</code>: {} ({})</li>",
                h(&u.path),
                u.reason.as_str(),
                h(&u.detail)
            );
        }
        let _ = writeln!(out, "</ul>");
    }
    let _ = writeln!(
        out,
        "<p class=\"muted\">Corpus: {} files, {} unique contents, hash <code>{}</code>. Scan {:.2}s at {:.1} MB/s with {} threads.</p>",
        r.corpus.files,
        r.corpus.unique_contents,
        h(&r.corpus.hash),
        r.timings.scan_seconds,
        r.timings.throughput_mb_per_s,
        r.timings.threads
    );
    let _ = writeln!(out, "<script>{SCRIPT}</script></body></html>");
}

/// `--explain`: per rule, the notes and the narrowings that passed.
fn triage(out: &mut String, r: &Report, _all: &[&Finding]) {
    let Some(t) = &r.triage else {
        return;
    };
    let _ = writeln!(
        out,
        "<section id=\"triage\"><h2>Triage of the new false positives</h2>"
    );
    for n in &t.notes {
        let _ = writeln!(out, "<p class=\"muted\">{}</p>", h(n));
    }
    for rt in &t.rules {
        let _ = writeln!(out, "<div class=\"card\"><h3>{}</h3>", h(&rt.name()));
        let _ = writeln!(
            out,
            "<table><thead><tr><th>pattern</th><th>clean files it occurs in (of {})</th><th>false positives it occurs in</th></tr></thead><tbody>",
            t.clean_files
        );
        for p in &rt.patterns {
            let _ = writeln!(
                out,
                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
                h(&p.definition),
                p.clean_files,
                p.in_false_positives
            );
        }
        let _ = writeln!(out, "</tbody></table>");
        for n in &rt.notes {
            let _ = writeln!(out, "<p class=\"muted\">{}</p>", h(n));
        }
        for n in &rt.necessity {
            let _ = writeln!(
                out,
                "<p><code>{}</code>: {}</p>",
                h(&n.paths.join(", ")),
                h(&crate::render::necessity_line(n))
            );
        }
        if t.explained {
            if rt.suggestions.is_empty() {
                let _ = writeln!(
                    out,
                    "<p>No narrowing tried clears every false positive of this rule without losing a detection.</p>"
                );
            }
            for s in &rt.suggestions {
                let _ = writeln!(
                    out,
                    "<p class=\"suggestion\"><b>Suggested:</b> {} (clears {} false positive(s); clean files {} → {}; samples {} → {})</p><pre>{}</pre>",
                    h(&s.summary),
                    s.clears,
                    s.clean_files_before,
                    s.clean_files_after,
                    s.samples_before,
                    s.samples_after,
                    h(&s.diff)
                );
            }
        }
        let _ = writeln!(out, "</div>");
    }
    let _ = writeln!(out, "</section>");
}

fn tier(f: &Finding) -> &'static str {
    f.tier.as_str()
}
