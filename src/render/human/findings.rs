//! The human report's findings: the four lists (new, persisting, fixed,
//! excepted), detection regressions, each rule's group and each finding with
//! its patterns, and the triage of `--explain` / `fpgate explain`.

use crate::render::terminal::group_digits;
use crate::render::terminal::Style;
use crate::util::escape::term;
use crate::verdict::report::{Finding, Report, RunKind};
use std::fmt::Write;

/// The four lists of findings, each under its title.
pub(super) fn findings(out: &mut String, r: &Report, style: Style) {
    let fps = &r.false_positives;
    let (new_title, new_note) = if r.command != RunKind::Gate {
        (
            "MATCHES on clean files",
            "every match on a known-clean file is a false positive",
        )
    } else {
        (
            "NEW false positives",
            "the candidate matches, the baseline did not: these block the release",
        )
    };
    section(
        out,
        style,
        &fps.new,
        &style.red(new_title),
        new_note,
        r.triage.as_ref(),
    );
    section(
        out,
        style,
        &fps.persisting,
        &style.yellow("PERSISTING false positives"),
        "already matched by the baseline: reported, not blocking",
        None,
    );
    section(
        out,
        style,
        &fps.fixed,
        &style.green("FIXED false positives"),
        "matched by the baseline, no longer by the candidate",
        None,
    );
    section(
        out,
        style,
        &fps.excepted,
        &style.dim("EXCEPTED false positives"),
        "covered by an exception: reported, not blocking",
        None,
    );
}

/// `gate --positives`: lost detections in full (with the patterns that
/// matched in the baseline), gained and excepted ones, missed and
/// untestable expected samples, untested rules.
pub(super) fn detections(out: &mut String, r: &Report, style: Style) {
    use crate::verdict::detections::ExpectedStatus;
    let Some(d) = &r.detections else { return };
    section(
        out,
        style,
        &d.lost,
        &style.red("LOST detections"),
        "the baseline detected these known-bad samples, the candidate does not (shown: what matched in the baseline); these block the release",
        None,
    );
    section(
        out,
        style,
        &d.excepted,
        &style.dim("EXCEPTED lost detections"),
        "covered by a lost_detection exception: reported, not blocking",
        None,
    );
    section(
        out,
        style,
        &d.gained,
        &style.green("GAINED detections"),
        "known-bad samples only the candidate detects",
        None,
    );
    let _ = writeln!(
        out,
        "DETECTIONS over {} known-bad sample(s) ({} scanned): {} kept, {} gained, {} lost, {} excepted",
        d.samples, d.scanned_samples, d.counts.kept, d.counts.gained, d.counts.lost, d.counts.excepted
    );
    for renamed in d.kept.iter().filter(|f| !f.notes.is_empty()) {
        let _ = writeln!(
            out,
            "  kept       {}  {} ({})",
            term(&renamed.rule.name()),
            term(&renamed.paths.join(", ")),
            term(&renamed.notes.join("; "))
        );
    }
    for x in &d.expected_samples {
        let word = match x.status {
            ExpectedStatus::Detected => continue,
            ExpectedStatus::Missed if x.blocking => style.red("missed    "),
            ExpectedStatus::Missed => "missed    ".to_string(),
            ExpectedStatus::Untestable => style.yellow("untestable"),
        };
        let _ = writeln!(
            out,
            "  {word} {}  {}:{}  {} = {}  {}",
            term(&crate::rules::rule_name(&x.namespace, &x.identifier)),
            term(x.source.as_deref().unwrap_or("?")),
            x.line.unwrap_or(0),
            term(&x.meta),
            x.hash,
            if x.paths.is_empty() {
                "(no such sample: nothing tested)".to_string()
            } else {
                format!("({})", term(&x.paths.join(", ")))
            }
        );
    }
    if d.counts.expected_detected > 0 {
        let _ = writeln!(
            out,
            "  {} sample(s) named in rule meta detected as expected",
            d.counts.expected_detected
        );
    }
    if !d.untested_rules.is_empty() {
        let blocking = d.untested_rules.iter().filter(|u| u.blocking).count();
        let _ = writeln!(
            out,
            "UNTESTED rules ({}): detect no known-bad sample{}",
            d.untested_rules.len(),
            if blocking > 0 {
                format!("; {blocking} added or modified, blocking under --require-tested")
            } else {
                String::new()
            }
        );
        // The blocking ones first, then the others, up to a screenful.
        let mut list: Vec<_> = d.untested_rules.iter().collect();
        list.sort_by_key(|u| !u.blocking);
        for u in list.iter().take(20) {
            let _ = writeln!(
                out,
                "  {}{}  {}:{}",
                if u.blocking {
                    style.red("blocks ")
                } else {
                    String::new()
                },
                term(&crate::rules::rule_name(&u.namespace, &u.identifier)),
                term(u.source.as_deref().unwrap_or("?")),
                u.line.unwrap_or(0)
            );
        }
        if list.len() > 20 {
            let _ = writeln!(
                out,
                "  ... {} more (all in the JSON report)",
                list.len() - 20
            );
        }
    }
    out.push('\n');
}

/// One list of findings under its title, grouped by rule.
fn section(
    out: &mut String,
    style: Style,
    list: &[Finding],
    title: &str,
    note: &str,
    tri: Option<&crate::triage::Triage>,
) {
    if list.is_empty() {
        return;
    }
    let _ = writeln!(out, "{title} ({}) - {note}\n", list.len());
    let mut i = 0;
    while i < list.len() {
        // Group consecutive findings of the same rule (the list is sorted).
        let rule = &list[i].rule;
        let mut j = i;
        while j < list.len()
            && list[j].rule.identifier == rule.identifier
            && list[j].rule.namespace == rule.namespace
        {
            j += 1;
        }
        rule_header(out, style, &list[i..j]);
        let t = tri.and_then(|t| t.rule_of(&list[i]).map(|r| (t, r)));
        for f in &list[i..j] {
            finding(out, style, f, t);
        }
        if let Some((t, rt)) = t {
            triage_rule(out, style, t, rt);
        }
        out.push('\n');
        i = j;
    }
}

/// A rule's heading: name, place, tags, change, file count, description.
fn rule_header(out: &mut String, style: Style, group: &[Finding]) {
    let rule = &group[0].rule;
    let loc = match (&rule.source, rule.line) {
        (Some(s), Some(l)) => format!("{}:{l}", term(s)),
        (Some(s), None) => term(s),
        _ => "source unknown".into(),
    };
    let tags = if rule.tags.is_empty() {
        String::new()
    } else {
        format!("  [{}]", term(&rule.tags.join(", ")))
    };
    let files: usize = group.iter().map(|f| f.paths.len()).sum();
    let change = match group[0].rule_change {
        Some(crate::verdict::changes::Change::Added) => "  (new rule)",
        Some(crate::verdict::changes::Change::Modified) => "  (modified rule)",
        _ => "",
    };
    let _ = writeln!(
        out,
        "  rule {}  {}{}{}  - {} file(s)",
        style.bold(&term(&rule.name())),
        style.dim(&loc),
        tags,
        change,
        files
    );
    match (&rule.description, &rule.author) {
        (Some(d), Some(a)) => {
            let _ = writeln!(out, "    \"{}\" (author: {})", term(d), term(a));
        }
        (Some(d), None) => {
            let _ = writeln!(out, "    \"{}\"", term(d));
        }
        (None, Some(a)) => {
            let _ = writeln!(out, "    (author: {})", term(a));
        }
        _ => {}
    }
}

/// One finding: its paths, exception, notes, hash, and the evidence.
fn finding(
    out: &mut String,
    style: Style,
    f: &Finding,
    tri: Option<(&crate::triage::Triage, &crate::triage::RuleTriage)>,
) {
    let crit = if f.tier == crate::corpus::Tier::Critical {
        format!(" {}", style.red("[CRITICAL]"))
    } else {
        String::new()
    };
    for (k, p) in f.paths.iter().enumerate() {
        let prefix = if k == 0 { "    -" } else { "     " };
        let mark = if k == 0 { crit.as_str() } else { "" };
        let _ = writeln!(out, "{prefix} {}{mark}", term(p));
    }
    if let Some(e) = &f.exception {
        let _ = writeln!(
            out,
            "      excepted by {}:{} (owner {}, expires {}): {}",
            term(&e.file),
            e.line,
            term(&e.owner),
            e.expires,
            term(&e.reason)
        );
    }
    for s in &f.signed_by {
        let _ = writeln!(out, "      {}", style.red(&term(s)));
    }
    for n in &f.notes {
        let _ = writeln!(out, "      {}", style.yellow(&term(n)));
    }
    let dup = if f.paths.len() > 1 {
        format!(", {} identical files", f.paths.len())
    } else {
        String::new()
    };
    let _ = writeln!(
        out,
        "      {}",
        style.dim(&format!(
            "sha256 {}, {} bytes{dup}",
            f.sha256,
            group_digits(f.size)
        ))
    );
    for p in &f.patterns {
        for m in &p.matches {
            let _ = writeln!(
                out,
                "      {} at 0x{:08x} ({} bytes): {}  |{}|",
                term(&p.identifier),
                m.offset,
                m.length,
                m.hex,
                term(&m.text)
            );
        }
        if p.match_count > p.matches.len() {
            let _ = writeln!(
                out,
                "      {} ... {} more match(es)",
                term(&p.identifier),
                p.match_count - p.matches.len()
            );
        }
        if let Some((t, rt)) = tri {
            let _ = writeln!(
                out,
                "        {}",
                style.dim(&crate::render::triage_note(t, rt, &f.sha256, &p.identifier))
            );
        }
    }
    if f.patterns.is_empty() {
        let _ = writeln!(out, "      (condition matched without any string)");
    }
    if let Some(n) = tri.and_then(|(_, rt)| rt.necessity_of(&f.sha256)) {
        let _ = writeln!(
            out,
            "      {}",
            style.bold(&term(&crate::render::necessity_line(n)))
        );
    }
}

/// A triaged rule's notes, narrowings that qualified (as diffs) and the
/// ones that did not.
fn triage_rule(
    out: &mut String,
    style: Style,
    t: &crate::triage::Triage,
    rt: &crate::triage::RuleTriage,
) {
    for n in &rt.notes {
        let _ = writeln!(out, "    {}", style.yellow(&format!("triage: {}", term(n))));
    }
    if !t.explained {
        return;
    }
    let against = if t.samples > 0 {
        format!(
            "{} clean files and {} known-bad samples",
            t.clean_files, t.samples
        )
    } else {
        format!(
            "{} clean files (no known-bad samples: give --positives to check detections)",
            t.clean_files
        )
    };
    if rt.suggestions.is_empty() {
        let _ = writeln!(
            out,
            "    {}",
            style.yellow(&format!("no narrowing tried clears every false positive of this rule without losing a detection (run over {against})"))
        );
    } else {
        let _ = writeln!(
            out,
            "    {} (each run over {against}; nothing is applied):",
            style.green("SUGGESTED narrowings")
        );
        for s in &rt.suggestions {
            let _ = writeln!(
                out,
                "    * {}: clears {} false positive(s); clean files matched {} -> {}; samples detected {} -> {}",
                term(&s.summary),
                s.clears,
                s.clean_files_before,
                s.clean_files_after,
                s.samples_before,
                s.samples_after
            );
            for l in s.diff.lines() {
                let l = term(l);
                let shown = if l.starts_with('+') && !l.starts_with("+++") {
                    style.green(&l)
                } else if l.starts_with('-') && !l.starts_with("---") {
                    style.red(&l)
                } else {
                    l
                };
                let _ = writeln!(out, "      {shown}");
            }
        }
    }
    for r in &rt.rejected {
        let _ = writeln!(out, "    {}", style.dim(&format!("tried: {}", term(r))));
    }
}

/// `fpgate explain`: the triage alone, rule by rule.
pub fn triage_report(t: &crate::triage::Triage, style: Style) -> String {
    let mut out = String::new();
    for n in &t.notes {
        let _ = writeln!(out, "{}", style.yellow(&format!("triage: {}", term(n))));
    }
    if t.rules.is_empty() {
        let _ = writeln!(out, "no new false positive to explain");
    }
    for rt in &t.rules {
        let loc = match (&rt.source, rt.line) {
            (Some(s), Some(l)) => format!("{}:{l}", term(s)),
            _ => "source unknown".into(),
        };
        let _ = writeln!(
            out,
            "\nrule {}  {}  - {} new false positive(s)",
            style.bold(&term(&rt.name())),
            style.dim(&loc),
            rt.false_positives
        );
        if !rt.patterns.is_empty() {
            let _ = writeln!(
                out,
                "  patterns (clean files of {} each occurs in alone):",
                t.clean_files
            );
            for p in &rt.patterns {
                let _ = writeln!(
                    out,
                    "    {:>6}  {}{}",
                    p.clean_files,
                    term(&p.definition),
                    if p.in_false_positives > 0 {
                        format!("  (in {} of the false positives)", p.in_false_positives)
                    } else {
                        String::new()
                    }
                );
            }
        }
        // False positives that need the same patterns, together.
        let mut groups: Vec<(String, Vec<String>)> = Vec::new();
        for n in &rt.necessity {
            let line = crate::render::necessity_line(n);
            match groups.iter_mut().find(|g| g.0 == line) {
                Some(g) => g.1.extend(n.paths.iter().cloned()),
                None => groups.push((line, n.paths.clone())),
            }
        }
        for (line, paths) in groups {
            let shown: Vec<&str> = paths.iter().take(5).map(String::as_str).collect();
            let more = if paths.len() > shown.len() {
                format!(" and {} more", paths.len() - shown.len())
            } else {
                String::new()
            };
            let _ = writeln!(out, "  {}{more}:", term(&shown.join(", ")));
            let _ = writeln!(out, "    {}", style.bold(&term(&line)));
        }
        triage_rule(&mut out, style, t, rt);
    }
    out
}
