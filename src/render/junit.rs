//! JUnit XML (GitLab, Jenkins, Azure): one test case per rule of the
//! candidate set. A rule with a blocking false positive, a denied warning
//! or a blocking problem of the known-bad samples (lost detection, missed
//! sample, untested rule) is a failure whose message lists the files and
//! evidence (a lost detection of a removed rule gets a case of its own); when corpus files could not be
//! scanned, every other rule is an error (its verdict is unknown for them).

use super::sarif::message;
use crate::util::escape::xml;
use crate::verdict::report::Report;
use std::collections::BTreeMap;
use std::fmt::Write;

/// The JUnit document: a test suite whose cases are the candidate's rules.
pub fn render(r: &Report) -> String {
    let failures = failures(r);
    let incomplete = !r.unscanned.is_empty() && !r.verdict.allow_incomplete;
    let unscanned_text: String = r
        .unscanned
        .iter()
        .take(50)
        .map(|u| format!("{} ({}: {})", u.path, u.reason.as_str(), u.detail))
        .collect::<Vec<_>>()
        .join("\n");

    let rules = &r.candidate_rules;
    let n_fail = rules
        .iter()
        .filter(|x| failures.contains_key(&(x.namespace.clone(), x.identifier.clone())))
        .count();
    let n_err = if incomplete { rules.len() - n_fail } else { 0 };
    // Cases beside the candidate's rules: removed rules that lost a sample,
    // and the policy's changes.
    let removed = failures
        .keys()
        .filter(|(ns, id)| {
            !rules
                .iter()
                .any(|x| &x.namespace == ns && &x.identifier == id)
        })
        .count();
    let policy = r.policy_changes.as_ref();
    let policy_fail = policy.is_some_and(|c| c.counts.blocking > 0) as usize;
    let since = r.history.as_ref();
    let since_fail = since.is_some_and(|h| h.blocking > 0) as usize;
    let tests = rules.len() + removed + policy.is_some() as usize + since.is_some() as usize;
    let n_fail = n_fail + removed + policy_fail + since_fail;
    let time = r.timings.scan_seconds;

    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"fpgate\" tests=\"{tests}\" failures=\"{n_fail}\" errors=\"{n_err}\" time=\"{time:.3}\">"
    );
    let _ = writeln!(
        out,
        "  <testsuite name=\"fpgate {}: false positives on the clean corpus\" tests=\"{tests}\" failures=\"{n_fail}\" errors=\"{n_err}\" skipped=\"0\" time=\"{time:.3}\">",
        xml(r.command.as_str()),
    );
    properties(&mut out, r);
    for rule in rules {
        let key = (rule.namespace.clone(), rule.identifier.clone());
        let file = rule.source.as_deref().unwrap_or("");
        let _ = write!(
            out,
            "    <testcase name=\"{}\" classname=\"{}\" file=\"{}\" line=\"{}\" time=\"0\"",
            xml(&rule.identifier),
            xml(&rule.namespace),
            xml(file),
            rule.line.unwrap_or(0)
        );
        if let Some(msgs) = failures.get(&key) {
            let _ = writeln!(out, ">");
            failure(&mut out, msgs);
            let _ = writeln!(out, "    </testcase>");
        } else if incomplete {
            let _ = writeln!(out, ">");
            let _ = writeln!(
                out,
                "      <error message=\"{}\" type=\"incomplete\">{}</error>",
                xml(&format!(
                    "{} corpus file(s) could not be scanned",
                    r.unscanned.len()
                )),
                xml(&unscanned_text)
            );
            let _ = writeln!(out, "    </testcase>");
        } else {
            let _ = writeln!(out, "/>");
        }
    }
    // A lost detection of a rule the candidate removed: its own case.
    for ((ns, id), msgs) in &failures {
        if rules
            .iter()
            .any(|x| &x.namespace == ns && &x.identifier == id)
        {
            continue;
        }
        let _ = writeln!(
            out,
            "    <testcase name=\"{}\" classname=\"{}\" file=\"\" line=\"0\" time=\"0\">",
            xml(id),
            xml(ns)
        );
        failure(&mut out, msgs);
        let _ = writeln!(out, "    </testcase>");
    }
    // `gate --baseline-ref`: the gate's own policy, one case.
    if let Some(c) = &r.policy_changes {
        let blocking: Vec<String> = c
            .lines()
            .into_iter()
            .filter(|l| l.4)
            .map(|(f, l, m, _, _)| format!("{}:{}: {m}", f.unwrap_or("?"), l.unwrap_or(0)))
            .collect();
        let _ = write!(
            out,
            "    <testcase name=\"policy changes since {}\" classname=\"fpgate.policy\" time=\"0\"",
            xml(&c.base_ref)
        );
        if blocking.is_empty() {
            let _ = writeln!(out, "/>");
        } else {
            let _ = writeln!(
                out,
                ">\n      <failure message=\"{}\" type=\"policy_change\">{}</failure>\n    </testcase>",
                xml(&format!(
                    "{} change(s) of the gate's own policy need a second review",
                    blocking.len()
                )),
                xml(&blocking.join("\n"))
            );
        }
    }
    // `--since-last`: one case, failing when a new finding blocks.
    if let Some(hs) = &r.history {
        let lines = hs.lines();
        let _ = write!(
            out,
            "    <testcase name=\"new since the last run\" classname=\"fpgate.history\" time=\"0\""
        );
        if hs.blocking == 0 {
            let _ = writeln!(out, "/>");
        } else {
            let text: Vec<&str> = lines
                .iter()
                .filter(|l| l.blocking)
                .map(|l| l.message.as_str())
                .collect();
            let _ = writeln!(
                out,
                ">\n      <failure message=\"{}\" type=\"new_since_last\">{}</failure>\n    </testcase>",
                xml(&format!("{} finding(s) new since the last run of these rules", hs.blocking)),
                xml(&text.join("\n"))
            );
        }
    }
    let _ = writeln!(out, "  </testsuite>");
    let _ = writeln!(out, "</testsuites>");
    out
}

/// A rule's failure element: its blocking problems, one per line.
fn failure(out: &mut String, msgs: &[(&'static str, String)]) {
    let text: Vec<&str> = msgs.iter().map(|m| m.1.as_str()).collect();
    // Before detections existed, warnings were counted with the false
    // positives: that output stays as it was.
    if msgs
        .iter()
        .all(|m| matches!(m.0, "false_positive" | "compiler_warning"))
    {
        let _ = writeln!(
            out,
            "      <failure message=\"{}\" type=\"false_positive\">{}</failure>",
            xml(&format!(
                "{} blocking false positive(s) on clean files",
                msgs.len()
            )),
            xml(&text.join("\n"))
        );
        return;
    }
    let kinds: std::collections::BTreeSet<&str> = msgs.iter().map(|m| m.0).collect();
    let kind = if kinds.len() == 1 {
        msgs[0].0
    } else {
        "several"
    };
    let what = |k: &str| msgs.iter().filter(|m| m.0 == k).count();
    let mut parts = Vec::new();
    for (k, words) in [
        (
            "false_positive",
            "blocking false positive(s) on clean files",
        ),
        ("compiler_warning", "denied compiler warning(s)"),
        ("lost_detection", "lost detection(s) of known-bad samples"),
        ("missed_sample", "missed sample(s) named in the rule's meta"),
        ("untested_rule", "known-bad samples detected: none"),
    ] {
        let n = what(k);
        if n > 0 {
            parts.push(if k == "untested_rule" {
                words.to_string()
            } else {
                format!("{n} {words}")
            });
        }
    }
    let _ = writeln!(
        out,
        "      <failure message=\"{}\" type=\"{kind}\">{}</failure>",
        xml(&parts.join(", ")),
        xml(&text.join("\n"))
    );
}

/// Per rule, the messages of its blocking false positives, denied
/// warnings and blocking problems of the known-bad samples.
fn failures(r: &Report) -> BTreeMap<(String, String), Vec<(&'static str, String)>> {
    let fps = &r.false_positives;
    let mut failures: BTreeMap<(String, String), Vec<(&'static str, String)>> = BTreeMap::new();
    for f in fps.new.iter().chain(&fps.persisting).filter(|f| f.blocking) {
        failures
            .entry((f.rule.namespace.clone(), f.rule.identifier.clone()))
            .or_default()
            .push(("false_positive", message(f, r.triage.as_ref())));
    }
    for w in &r.blocking_warnings {
        if let Some(rule) = &w.rule {
            let ns = r
                .candidate_rules
                .iter()
                .find(|i| &i.identifier == rule && i.source == w.file)
                .map_or(crate::rules::DEFAULT_NAMESPACE, |i| i.namespace.as_str());
            failures
                .entry((ns.to_string(), rule.clone()))
                .or_default()
                .push((
                    "compiler_warning",
                    format!(
                        "{}:{}: compiler warning {}: {}",
                        w.file.as_deref().unwrap_or("?"),
                        w.line.unwrap_or(0),
                        w.code,
                        w.title
                    ),
                ));
        }
    }
    if let Some(d) = &r.detections {
        use crate::verdict::detections::ProblemKind;
        for p in d.problems().into_iter().filter(|p| p.blocking) {
            let kind = match p.kind {
                ProblemKind::LostDetection => "lost_detection",
                ProblemKind::MissedSample => "missed_sample",
                ProblemKind::UntestedRule => "untested_rule",
            };
            failures
                .entry((p.namespace, p.identifier))
                .or_default()
                .push((kind, p.message));
        }
    }
    failures
}

/// The run's facts as suite properties.
fn properties(out: &mut String, r: &Report) {
    let _ = writeln!(out, "    <properties>");
    for (k, v) in [
        ("verdict", r.verdict.result.name().to_string()),
        ("corpus_hash", r.corpus.hash.clone()),
        ("scanned_files", r.corpus.scanned_files.to_string()),
        ("unscanned_files", r.unscanned.len().to_string()),
        ("yara_x_version", r.tool.yara_x_version.to_string()),
    ] {
        let _ = writeln!(
            out,
            "      <property name=\"{}\" value=\"{}\"/>",
            xml(k),
            xml(&v)
        );
    }
    let _ = writeln!(out, "    </properties>");
}
