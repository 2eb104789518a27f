//! JUnit XML (GitLab, Jenkins, Azure): one test case per rule of the
//! candidate set. A rule with a blocking false positive is a failure whose
//! message lists the files and evidence; when corpus files could not be
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
    let time = r.timings.scan_seconds;

    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"fpgate\" tests=\"{}\" failures=\"{n_fail}\" errors=\"{n_err}\" time=\"{time:.3}\">",
        rules.len()
    );
    let _ = writeln!(
        out,
        "  <testsuite name=\"fpgate {}: false positives on the clean corpus\" tests=\"{}\" failures=\"{n_fail}\" errors=\"{n_err}\" skipped=\"0\" time=\"{time:.3}\">",
        xml(r.command.as_str()),
        rules.len()
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
            let _ = writeln!(
                out,
                "      <failure message=\"{}\" type=\"false_positive\">{}</failure>",
                xml(&format!(
                    "{} blocking false positive(s) on clean files",
                    msgs.len()
                )),
                xml(&msgs.join("\n"))
            );
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
    let _ = writeln!(out, "  </testsuite>");
    let _ = writeln!(out, "</testsuites>");
    out
}

/// Per rule, the messages of its blocking false positives and denied
/// warnings.
fn failures(r: &Report) -> BTreeMap<(String, String), Vec<String>> {
    let fps = &r.false_positives;
    let mut failures: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for f in fps.new.iter().chain(&fps.persisting).filter(|f| f.blocking) {
        failures
            .entry((f.rule.namespace.clone(), f.rule.identifier.clone()))
            .or_default()
            .push(message(f));
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
                .push(format!(
                    "{}:{}: compiler warning {}: {}",
                    w.file.as_deref().unwrap_or("?"),
                    w.line.unwrap_or(0),
                    w.code,
                    w.title
                ));
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
