//! The human report: grouped by rule, sorted, one verdict line at the end.
//! Every name that comes from a rule or the corpus goes through
//! `escape::term` so it cannot drive the terminal.

pub use super::terminal::{human_bytes, verdict_line, Style};

use super::terminal::group_digits;
use crate::util::escape::term;
use crate::verdict::report::{Finding, Report, RunKind};
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

/// The four lists of findings, each under its title.
fn findings(out: &mut String, r: &Report, style: Style) {
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

/// `gate --positives`: lost detections in full (with the patterns that
/// matched in the baseline), gained and excepted ones, missed and
/// untestable expected samples, untested rules.
fn detections(out: &mut String, r: &Report, style: Style) {
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
