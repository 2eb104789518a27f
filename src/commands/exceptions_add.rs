//! `fpgate exceptions add --from REPORT.json`: append stub exceptions for
//! the new false positives of a report. Stubs say "TODO" and the gate
//! refuses to apply them until a human writes the reason and owner.

use crate::error::{Error, Result};
use crate::exit::Exit;
use crate::settings::ExceptionsAdd;
use crate::verdict::exceptions::{self, toml_str, Target, TODO};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;

pub fn run(s: &ExceptionsAdd) -> Result<Exit> {
    let (file, expires) = (&s.file, s.expires);
    let new = new_false_positives(&s.from)?;
    // Skip pairs the file already has an entry for.
    let existing = exceptions::load(file, false)?.unwrap_or_default();
    let mut have: BTreeSet<(String, String)> = existing
        .entries
        .iter()
        .filter_map(|e| match &e.target {
            Target::Sha256(s) => Some((e.identifier.clone(), s.clone())),
            Target::Path(..) => None,
        })
        .collect();
    let mut out = String::new();
    let mut added = 0;
    for f in &new {
        let field = |v: &Value, k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
        let rule = f.get("rule").cloned().unwrap_or_default();
        let (Some(id), Some(sha)) = (field(&rule, "identifier"), field(f, "sha256")) else {
            return Err(Error::input(
                "report",
                s.from.display(),
                format!(
                    "{}: a new false positive lacks rule.identifier or sha256",
                    s.from.display()
                ),
            ));
        };
        if have.insert((id.clone(), sha.clone())) {
            out.push_str(&stub(f, &rule, &id, &sha, expires));
            added += 1;
        }
    }
    let mut content = std::fs::read_to_string(file).unwrap_or_default();
    if content.is_empty() {
        content.push_str(
            "# Accepted false positives: see fpgate's docs/configuration.md, \"Exceptions\".\n",
        );
    }
    content.push_str(&out);
    // Refuse to write something the gate could not read back.
    exceptions::parse(&content, file)?;
    crate::render::output::write(Some(file), content.as_bytes())?;
    eprintln!(
        "fpgate: {added} stub exception(s) added to {} (reason and owner are TODO: the gate will not apply them until they are filled in)",
        file.display()
    );
    Ok(Exit::Pass)
}

/// The new false positives of a JSON report.
fn new_false_positives(from: &Path) -> Result<Vec<Value>> {
    let text = std::fs::read_to_string(from).map_err(|e| {
        Error::io(
            from.display(),
            format!("cannot read report {}: {e}", from.display()),
        )
    })?;
    let report: Value = serde_json::from_str(&text).map_err(|e| {
        Error::input(
            "report",
            from.display(),
            format!(
                "{}:{}:{}: not a JSON report: {e}",
                from.display(),
                e.line(),
                e.column()
            ),
        )
    })?;
    report
        .get("false_positives")
        .and_then(|f| f.get("new"))
        .and_then(|n| n.as_array())
        .cloned()
        .ok_or_else(|| {
            Error::input(
                "report",
                from.display(),
                format!(
                    "{}: no false_positives.new list: not an fpgate report",
                    from.display()
                ),
            )
        })
}

/// One stub entry: the rule and content, TODO reason and owner.
fn stub(f: &Value, rule: &Value, id: &str, sha: &str, expires: jiff::civil::Date) -> String {
    let field = |v: &Value, k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
    let ns = field(rule, "namespace").unwrap_or_else(|| crate::rules::DEFAULT_NAMESPACE.into());
    let rule_name = crate::rules::rule_name(&ns, id);
    let paths: Vec<String> = f
        .get("paths")
        .and_then(|p| p.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let mut out = String::from("\n[[exception]]\n");
    for p in &paths {
        out.push_str(&format!("# file: {}\n", crate::util::escape::term(p)));
    }
    out.push_str(&format!("rule = {}\n", toml_str(&rule_name)));
    out.push_str(&format!("sha256 = {}\n", toml_str(sha)));
    if let Some(fp) = field(rule, "fingerprint") {
        out.push_str(&format!("rule_fingerprint = {}\n", toml_str(&fp)));
    }
    out.push_str(&format!("reason = {}\n", toml_str(TODO)));
    out.push_str(&format!("owner = {}\n", toml_str(TODO)));
    out.push_str(&format!("expires = {}\n", toml_str(&expires.to_string())));
    if f.get("tier").and_then(|t| t.as_str()) == Some(crate::corpus::Tier::Critical.as_str()) {
        out.push_str("# The file is critical: the entry needs this to apply.\ncritical = true\n");
    }
    out
}
