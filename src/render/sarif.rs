//! SARIF 2.1.0, for GitHub code scanning, GitLab and the VS Code viewer.
//!
//! One result per blocking or excepted false positive, per blocking
//! compiler warning, and per problem of the known-bad samples (lost
//! detection, missed or untested; `gate --positives`), located at the rule's source file and line, with a
//! stable `partialFingerprints` entry (rule fingerprint + file sha256) so
//! code scanning tracks one finding across runs. Excepted findings carry a
//! `suppressions` entry with the exception's reason.

use crate::diagnostic::Diagnostic;
use crate::util::hex::hex;
use crate::verdict::report::{Finding, Report};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

pub const SCHEMA_URI: &str = "https://json.schemastore.org/sarif-2.1.0.json";

/// SARIF wants URIs; report paths are relative (or absolute) file paths.
fn uri(path: &str) -> String {
    let p = path.strip_prefix("./").unwrap_or(path);
    let mut out = String::with_capacity(p.len());
    for b in p.bytes() {
        match b {
            b'A'..=b'Z'
            | b'a'..=b'z'
            | b'0'..=b'9'
            | b'/'
            | b'-'
            | b'_'
            | b'.'
            | b'~'
            | b':'
            | b'@'
            | b'+' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

pub fn fingerprint(f: &Finding) -> String {
    let mut h = Sha256::new();
    h.update(f.rule.fingerprint.as_deref().unwrap_or(&f.rule.identifier));
    h.update(b":");
    h.update(f.sha256.as_bytes());
    hex(&h.finalize())
}

/// The one-line message of a finding, with its evidence, and with
/// `--explain` what the triage found (prevalence, what it needs).
pub fn message(f: &Finding, t: Option<&crate::verdict::triage::Triage>) -> String {
    let mut m = f.message();
    if let Some((t, rt)) = t.and_then(|t| t.rule_of(f).map(|rt| (t, rt))) {
        let prevalence: Vec<String> = f
            .patterns
            .iter()
            .filter_map(|p| {
                rt.prevalence(&p.identifier).map(|x| {
                    format!(
                        "{} in {} of {} clean files",
                        p.identifier, x.clean_files, t.clean_files
                    )
                })
            })
            .collect();
        if !prevalence.is_empty() {
            m.push_str(&format!(". Alone, {}", prevalence.join(", ")));
        }
        if let Some(n) = rt.necessity_of(&f.sha256) {
            let line = crate::render::necessity_line(n);
            let mut c = line.chars();
            let first = c
                .next()
                .map(|x| x.to_uppercase().collect::<String>())
                .unwrap_or_default();
            m.push_str(&format!(". {first}{}", c.as_str()));
        }
        if let Some(s) = rt.suggestions.first() {
            m.push_str(&format!(". Suggested narrowing: {}", s.summary));
        }
    }
    m
}

fn location(source: Option<&str>, line: Option<usize>) -> Value {
    let mut phys = json!({
        "artifactLocation": { "uri": uri(source.unwrap_or("unknown")) }
    });
    if let Some(l) = line.filter(|l| *l > 0) {
        phys["region"] = json!({ "startLine": l });
    }
    json!({ "physicalLocation": phys })
}

/// The SARIF 2.1.0 log of a run.
pub fn render(r: &Report) -> String {
    let mut rules: BTreeMap<String, Value> = BTreeMap::new();
    let mut results: Vec<Value> = Vec::new();

    let fps = &r.false_positives;
    let blocking = fps.new.iter().chain(&fps.persisting).filter(|f| f.blocking);
    for (f, suppressed) in blocking
        .map(|f| (f, false))
        .chain(fps.excepted.iter().map(|f| (f, true)))
    {
        let id = f.rule.name();
        rules
            .entry(id.clone())
            .or_insert_with(|| rule_description(&id, f));
        results.push(finding_result(&id, f, suppressed, r.triage.as_ref()));
    }

    for w in &r.blocking_warnings {
        let id = format!("yara-x/{}", w.code);
        rules.entry(id.clone()).or_insert_with(|| {
            json!({
                "id": id,
                "name": w.code,
                "shortDescription": { "text": format!("yara-x compiler warning {}", w.code) },
                "defaultConfiguration": { "level": "error" },
            })
        });
        results.push(warning_result(&id, w));
    }

    if let Some(d) = &r.detections {
        for p in d.problems() {
            let id = p.kind.code().to_string();
            rules.entry(id.clone()).or_insert_with(|| {
                json!({
                    "id": id,
                    "name": id.trim_start_matches("fpgate/"),
                    "shortDescription": { "text": p.kind.title() },
                    "defaultConfiguration": { "level": "error" },
                })
            });
            results.push(problem_result(&id, &p));
        }
    }

    if let Some(c) = &r.policy_changes {
        for (file, line, msg, dir, blocking) in c.lines() {
            let id = "fpgate/policy-change".to_string();
            rules.entry(id.clone()).or_insert_with(|| {
                json!({
                    "id": id,
                    "name": "policy-change",
                    "shortDescription": { "text": "the gate's own policy (fpgate.toml, exceptions) differs from the base revision's" },
                    "defaultConfiguration": { "level": "warning" },
                })
            });
            // A file at the base (`REF:path`) is no location in the tree.
            let at = file.filter(|f| !f.contains(':'));
            results.push(json!({
                "ruleId": id,
                "level": if blocking { "error" } else if dir == crate::verdict::policy_changes::Direction::Tightens { "note" } else { "warning" },
                "message": { "text": msg },
                "locations": [location(at.or(Some("fpgate.toml")), line.filter(|_| at.is_some()))],
                "partialFingerprints": { "fpgate/policy/v1": hex(&Sha256::digest(msg.as_bytes())) },
                "properties": { "direction": dir.as_str(), "blocking": blocking, "baseRef": c.base_ref },
            }));
        }
    }

    if let Some(hs) = &r.history {
        for l in hs.lines() {
            let id = "fpgate/new-since-last".to_string();
            rules.entry(id.clone()).or_insert_with(|| {
                json!({
                    "id": id,
                    "name": "new-since-last",
                    "shortDescription": { "text": "a finding the previous run of these rules did not have" },
                    "defaultConfiguration": { "level": "warning" },
                })
            });
            let f = l.finding;
            results.push(json!({
                "ruleId": id,
                "level": if l.blocking { "error" } else { "warning" },
                "message": { "text": l.message },
                "locations": [location(f.source.as_deref(), f.line)],
                "partialFingerprints": { "fpgate/since-last/v1": hex(&Sha256::digest(format!("{}\n{}\n{}", f.namespace, f.identifier, f.sha256).as_bytes())) },
                "properties": { "sha256": f.sha256, "paths": f.paths, "tier": f.tier.as_str(), "blocking": l.blocking },
            }));
        }
    }

    // ruleIndex ties each result to its rule description.
    let ids: Vec<String> = rules.keys().cloned().collect();
    for res in &mut results {
        let id = res["ruleId"].as_str().unwrap_or_default().to_string();
        if let Some(i) = ids.iter().position(|x| *x == id) {
            res["ruleIndex"] = json!(i);
        }
    }

    let doc = json!({
        "$schema": SCHEMA_URI,
        "version": "2.1.0",
        "runs": [{
            "tool": {
                "driver": {
                    "name": "fpgate",
                    "version": r.tool.version,
                    "semanticVersion": r.tool.version,
                    "rules": rules.into_values().collect::<Vec<_>>(),
                }
            },
            "automationDetails": { "id": format!("fpgate/{}/", r.command) },
            "results": results,
            "properties": {
                "verdict": r.verdict.result,
                "exitCode": r.verdict.exit_code,
                "reasons": r.verdict.reasons,
                "corpusHash": r.corpus.hash,
                "unscanned": r.unscanned.len(),
                "yaraXVersion": r.tool.yara_x_version,
            }
        }]
    });
    let mut s = serde_json::to_string_pretty(&doc).expect("sarif serialises");
    s.push('\n');
    s
}

/// The description of a YARA rule, for the driver's rule list.
fn rule_description(id: &str, f: &Finding) -> Value {
    let mut d = json!({
        "id": id,
        "name": f.rule.name(),
        "shortDescription": { "text": f.rule.description.clone().unwrap_or_else(|| format!("YARA rule {}", f.rule.name())) },
        "defaultConfiguration": { "level": "error" },
        "properties": {
            "tags": f.rule.tags,
            "fingerprint": f.rule.fingerprint,
            "source": f.rule.source,
            "line": f.rule.line,
        }
    });
    if let Some(a) = &f.rule.author {
        d["properties"]["author"] = json!(a);
    }
    d
}

/// One finding as a SARIF result (suppressed when an exception covers it).
fn finding_result(
    id: &str,
    f: &Finding,
    suppressed: bool,
    t: Option<&crate::verdict::triage::Triage>,
) -> Value {
    let mut res = json!({
        "ruleId": id,
        "level": "error",
        "kind": "fail",
        "message": { "text": message(f, t) },
        "locations": [location(f.rule.source.as_deref(), f.rule.line)],
        "partialFingerprints": { "fpgate/rule+file/v2": fingerprint(f) },
        "properties": {
            "class": f.class.as_str(),
            "tier": f.tier.as_str(),
            "ruleChange": f.rule_change,
            "sha256": f.sha256,
            "size": f.size,
            "format": f.format,
            "paths": f.paths,
            "patterns": f.patterns,
        }
    });
    if suppressed {
        if let Some(e) = &f.exception {
            res["suppressions"] = json!([{
                "kind": "external",
                "status": "accepted",
                "justification": format!("{} (owner {}, expires {}, {}:{})", e.reason, e.owner, e.expires, e.file, e.line),
            }]);
        }
    }
    res
}

/// A problem of the positives (lost detection, missed or untested) at
/// the rule's line; an excepted loss is suppressed, a missed sample of an
/// unchanged rule is a warning.
fn problem_result(id: &str, p: &crate::verdict::detections::Problem<'_>) -> Value {
    let level = if p.blocking || p.exception.is_some() {
        "error"
    } else {
        "warning"
    };
    let mut res = json!({
        "ruleId": id,
        "level": level,
        "kind": "fail",
        "message": { "text": p.message },
        "locations": [location(p.source, p.line)],
        "partialFingerprints": { "fpgate/detection/v1": p.fingerprint },
        "properties": { "rule": p.rule, "blocking": p.blocking },
    });
    if let Some(e) = p.exception {
        res["suppressions"] = json!([{
            "kind": "external",
            "status": "accepted",
            "justification": format!("{} (owner {}, expires {}, {}:{})", e.reason, e.owner, e.expires, e.file, e.line),
        }]);
    }
    res
}

fn warning_result(id: &str, w: &Diagnostic) -> Value {
    json!({
        "ruleId": id,
        "level": "error",
        "message": { "text": format!(
            "compiler warning {} in {} rule {}: {} (blocked by the warning policy)",
            w.code,
            "new or modified",
            w.rule.as_deref().unwrap_or("?"),
            w.title
        ) },
        "locations": [location(w.file.as_deref(), w.line.map(|l| l as usize))],
        "partialFingerprints": { "fpgate/warning/v1": hex(&Sha256::digest(format!(
            "{}:{}:{}", w.code, w.rule.as_deref().unwrap_or(""), w.title
        ))) },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_are_percent_encoded() {
        assert_eq!(uri("./rules/a b.yar"), "rules/a%20b.yar");
        assert_eq!(uri("rules/ü.yar"), "rules/%C3%BC.yar");
    }
}
