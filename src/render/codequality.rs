//! GitLab Code Quality (`--report codequality=PATH`, artifact
//! `reports: codequality`): the report format GitLab shows in merge
//! requests on every tier. One issue per false positive (blocking ones as
//! `blocker` or `critical`, the others `minor`, excepted ones `info`) and
//! per denied compiler warning and per problem of the known-bad samples
//! (lost detection: `critical`, `info` when excepted; missed sample;
//! untested rule), each at its rule's line, with a fingerprint
//! that stays the same for the same rule and file across runs.

use super::sarif::{fingerprint, message};
use crate::corpus::Tier;
use crate::verdict::report::{Finding, Report};
use serde_json::{json, Value};

/// The Code Quality report: a JSON array of issues.
pub fn render(r: &Report) -> String {
    let fps = &r.false_positives;
    let mut issues: Vec<Value> = fps
        .new
        .iter()
        .chain(&fps.persisting)
        .chain(&fps.fixed)
        .chain(&fps.excepted)
        .map(|f| issue(f, r.triage.as_ref()))
        .collect();
    for w in &r.blocking_warnings {
        issues.push(json!({
            "type": "issue",
            "check_name": format!("yara-x/{}", w.code),
            "description": format!("compiler warning {} denied by the warning policy: {}", w.code, w.title),
            "categories": ["Style"],
            "severity": "major",
            "fingerprint": crate::util::hex::hex(&<sha2::Sha256 as sha2::Digest>::digest(
                format!("{}:{}:{}", w.code, w.rule.as_deref().unwrap_or(""), w.title).as_bytes()
            )),
            "location": {
                "path": w.file.as_deref().unwrap_or("unknown"),
                "lines": { "begin": w.line.unwrap_or(1) }
            }
        }));
    }
    if let Some(d) = &r.detections {
        for p in d.problems() {
            let severity = match (p.blocking, p.exception.is_some()) {
                (true, _) => "critical",
                (false, true) => "info",
                (false, false) => "minor",
            };
            issues.push(json!({
                "type": "issue",
                "check_name": p.kind.code(),
                "description": p.message,
                "categories": ["Bug Risk"],
                "severity": severity,
                "fingerprint": p.fingerprint,
                "location": {
                    "path": p.source.unwrap_or("unknown"),
                    "lines": { "begin": p.line.unwrap_or(1) }
                }
            }));
        }
    }
    if let Some(c) = &r.policy_changes {
        use crate::verdict::policy_changes::Direction;
        for (file, line, msg, dir, blocking) in c.lines() {
            let severity = match (blocking, dir) {
                (true, _) => "critical",
                (false, Direction::Relaxes) => "major",
                (false, Direction::Changed) => "minor",
                (false, Direction::Tightens) => "info",
            };
            issues.push(json!({
                "type": "issue",
                "check_name": "fpgate/policy-change",
                "description": msg,
                "categories": ["Security"],
                "severity": severity,
                "fingerprint": crate::util::hex::hex(&<sha2::Sha256 as sha2::Digest>::digest(msg.as_bytes())),
                "location": {
                    // A file at the base (`REF:path`) is no location in the tree.
                    "path": file.filter(|f| !f.contains(':')).unwrap_or("fpgate.toml"),
                    "lines": { "begin": line.unwrap_or(1) }
                }
            }));
        }
    }
    if let Some(hs) = &r.history {
        for l in hs.lines() {
            let f = l.finding;
            issues.push(json!({
                "type": "issue",
                "check_name": "fpgate/new-since-last",
                "description": l.message,
                "categories": ["Bug Risk"],
                "severity": if l.blocking { "critical" } else { "major" },
                "fingerprint": crate::util::hex::hex(&<sha2::Sha256 as sha2::Digest>::digest(
                    format!("since-last\n{}\n{}\n{}", f.namespace, f.identifier, f.sha256).as_bytes()
                )),
                "location": {
                    "path": f.source.as_deref().unwrap_or("unknown"),
                    "lines": { "begin": f.line.unwrap_or(1) }
                }
            }));
        }
    }
    let mut s = serde_json::to_string_pretty(&issues).expect("code quality serialises");
    s.push('\n');
    s
}

fn issue(f: &Finding, t: Option<&crate::verdict::triage::Triage>) -> Value {
    let severity = match (f.blocking, f.exception.is_some(), f.tier) {
        (true, _, Tier::Critical) => "blocker",
        (true, _, Tier::Standard) => "critical",
        (false, true, _) => "info",
        (false, false, _) => "minor",
    };
    json!({
        "type": "issue",
        "check_name": format!("fpgate/{}", f.rule.name()),
        "description": message(f, t),
        "categories": ["Bug Risk"],
        "severity": severity,
        "fingerprint": fingerprint(f),
        "location": {
            "path": f.rule.source.as_deref().unwrap_or("unknown"),
            "lines": { "begin": f.rule.line.unwrap_or(1) }
        }
    })
}
