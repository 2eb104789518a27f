//! The policy diff (`gate --baseline-ref`): the working tree's fpgate.toml
//! and exceptions against the base revision's (`settings::base`), each
//! difference marked `relaxes`, `tightens` or `changed`, at its file and
//! line (`verdict::policy_changes` holds what the report carries). An edit
//! that makes fpgate read something it did not before is never `tightens`.

use super::base::BasePolicy;
use super::config::{self, Config};
use crate::error::Result;
use crate::triage::history::SinceLast;
use crate::verdict::exceptions::{self, ExceptionSet, Target};
use crate::verdict::policy_changes::{
    Direction, ExceptionChange, Mode, PolicyChanges, SettingChange, Source,
};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

/// A config's settings that make policy, as `key -> value` strings.
fn settings(c: &Config) -> BTreeMap<String, Vec<String>> {
    let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut one = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            m.insert(k.to_string(), vec![v]);
        }
    };
    // Unset switches are off: setting one to its default changes nothing.
    let b = |v: Option<bool>| Some(v.unwrap_or(false).to_string());
    one("scan.allow_incomplete", b(c.scan.allow_incomplete));
    one("scan.allow_unevaluated", b(c.scan.allow_unevaluated));
    one("scan.timeout", c.scan.timeout.map(|t| t.to_string()));
    one("scan.max_file_size", c.scan.max_file_size.clone());
    one("exceptions.strict", b(c.exceptions.strict));
    one(
        "exceptions.file",
        c.exceptions.file.as_ref().map(|p| p.display().to_string()),
    );
    one("warnings.deny", b(c.warnings.deny));
    one(
        "corpus.lock",
        c.corpus.lock.as_ref().map(|p| p.display().to_string()),
    );
    one(
        "corpus.recipe",
        c.corpus.recipe.as_ref().map(|p| p.display().to_string()),
    );
    one(
        "corpus.store",
        c.corpus.store.as_ref().map(|p| p.display().to_string()),
    );
    one("corpus.follow_symlinks", b(c.corpus.follow_symlinks));
    one("tiers.date", c.tiers.date.clone());

    // On unless turned off.
    one(
        "corpus.archives",
        Some(c.corpus.archives.unwrap_or(true).to_string()),
    );
    let n = |v: Option<u64>| v.map(|n| n.to_string());
    one(
        "corpus.archive_depth",
        n(c.corpus.archive_depth.map(u64::from)),
    );
    one("corpus.archive_members", n(c.corpus.archive_members));
    one("corpus.archive_size", c.corpus.archive_size.clone());
    one("corpus.archive_ratio", n(c.corpus.archive_ratio));
    one("corpus.archive_time", n(c.corpus.archive_time));
    one(
        "corpus.archive_dictionary",
        c.corpus.archive_dictionary.clone(),
    );
    one("positives.require_tested", b(c.positives.require_tested));
    one("rules.baseline_ref", c.rules.baseline_ref.clone());
    one("rules.relaxed_re_syntax", b(c.rules.relaxed_re_syntax));
    one(
        "policy.source",
        Some(match c.policy.source.unwrap_or_default() {
            Source::Worktree => "worktree".to_string(),
            Source::Base => "base".to_string(),
        }),
    );
    one("policy.trust_worktree", b(c.policy.trust_worktree));
    one(
        "policy.changes",
        Some(match c.policy.changes.unwrap_or_default() {
            Mode::Report => "report".to_string(),
            Mode::Block => "block".to_string(),
        }),
    );
    one(
        "history.since_last",
        Some(
            match c.history.since_last.unwrap_or_default() {
                SinceLast::Off => "off",
                SinceLast::Report => "report",
                SinceLast::Block => "block",
            }
            .to_string(),
        ),
    );
    let mut list = |k: &str, v: Vec<String>| {
        if !v.is_empty() {
            m.insert(k.to_string(), v);
        }
    };
    let paths = |v: &[PathBuf]| v.iter().map(|p| p.display().to_string()).collect();
    list("corpus.paths", paths(&c.corpus.paths));
    list("corpus.critical", c.corpus.critical.clone());
    // Each signature tier rule as one value: a rule dropped or narrowed
    // (another anchor, a subject added) is a value removed.
    list(
        "tiers.critical",
        c.tiers
            .critical
            .iter()
            .map(|r| {
                format!(
                    "{} (anchor {}{})",
                    r.name,
                    r.anchor
                        .as_ref()
                        .map(|p| p.display().to_string())
                        .or_else(|| r.anchor_sha256.as_ref().map(|s| format!("sha256 {s}")))
                        .unwrap_or_default(),
                    r.subject
                        .as_ref()
                        .map(|s| format!(", subject {s:?}"))
                        .unwrap_or_default()
                )
            })
            .collect(),
    );
    list(
        "tiers.timestamp",
        c.tiers
            .timestamp
            .iter()
            .map(|r| {
                format!(
                    "{} (anchor {})",
                    r.name,
                    r.anchor
                        .as_ref()
                        .map(|p| p.display().to_string())
                        .or_else(|| r.anchor_sha256.as_ref().map(|s| format!("sha256 {s}")))
                        .unwrap_or_default()
                )
            })
            .collect(),
    );
    list("corpus.exclude", c.corpus.exclude.clone());
    list("warnings.deny_codes", c.warnings.deny_codes.clone());
    list("positives.paths", paths(&c.positives.paths));
    list(
        "positives.meta",
        c.positives.meta.clone().unwrap_or_default(),
    );
    list(
        "rules.candidate",
        c.rules.candidate.iter().map(|r| r.to_string()).collect(),
    );
    list(
        "rules.baseline",
        c.rules.baseline.iter().map(|r| r.to_string()).collect(),
    );
    list(
        "rules.extensions",
        c.rules.extensions.clone().unwrap_or_default(),
    );
    list("rules.ignore_modules", c.rules.ignore_modules.clone());
    for (k, v) in &c.defines {
        m.insert(format!("defines.{k}"), vec![v.to_string()]);
    }
    m
}

/// Keys whose values are paths fpgate reads.
const PATH_KEYS: &[&str] = &[
    "corpus.paths",
    "positives.paths",
    "corpus.lock",
    "corpus.recipe",
    "exceptions.file",
    "rules.candidate",
    "rules.baseline",
];

/// For a path-valued `key`: why `value`, resolved against the config's
/// directory, may not be read (outside the checkout, in its `.git`, a
/// pseudo file); `None` when it may, or is no path key.
fn escaping_path(cfg: &Config, key: &str, value: &str) -> Option<String> {
    if !PATH_KEYS.contains(&key) {
        return None;
    }
    let path = match key {
        "rules.candidate" | "rules.baseline" => value
            .parse::<crate::rules::RulePath>()
            .map(|r| r.path)
            .unwrap_or_else(|_| PathBuf::from(value)),
        _ => PathBuf::from(value),
    };
    let resolved = cfg.resolve(&path);
    // A path that does not exist is judged where it would lead lexically.
    let real = resolved
        .canonicalize()
        .unwrap_or_else(|_| crate::util::paths::lexical(&resolved));
    crate::util::paths::escapes(&real, &cfg.checkout())
}

/// Which way a change of `key` from `before` to `after` moves the gate.
fn direction(key: &str, before: &[String], after: &[String]) -> Direction {
    let flag = |v: &[String]| v.first().map(String::as_str) == Some("true");
    let flag_block = |v: &[String]| v.first().map(String::as_str) == Some("block");
    let removed = before.iter().any(|b| !after.contains(b));
    let added = after.iter().any(|a| !before.contains(a));
    match key {
        // true lets more through.
        "scan.allow_incomplete" | "scan.allow_unevaluated" => {
            if flag(after) && !flag(before) {
                Direction::Relaxes
            } else {
                Direction::Tightens
            }
        }
        // true lets less through.
        "exceptions.strict" | "warnings.deny" | "positives.require_tested" => {
            if flag(after) && !flag(before) {
                Direction::Tightens
            } else {
                Direction::Relaxes
            }
        }
        // false reads no archive's members: what they hold goes unchecked.
        // (A cap that is lowered leaves members unscanned, which fails the
        // run unless incomplete runs are allowed: `changed`.)
        "corpus.archives" => {
            if flag(before) && !flag(after) {
                Direction::Relaxes
            } else {
                Direction::Tightens
            }
        }
        // Only `block` blocks on what is new since the last run.
        "history.since_last" => {
            if flag_block(before) && !flag_block(after) {
                Direction::Relaxes
            } else if flag_block(after) && !flag_block(before) {
                Direction::Tightens
            } else {
                Direction::Changed
            }
        }
        // Each entry makes fpgate read more: dropping one checks less, and
        // adding one is never "tightens", since what is read can be printed
        // (a corpus file's bytes as evidence, a rule file in an error).
        "corpus.paths" | "positives.paths" | "rules.candidate" | "rules.baseline"
        | "rules.extensions" => {
            if removed {
                Direction::Relaxes
            } else {
                Direction::Changed
            }
        }
        // Each entry checks something: dropping one checks less.
        "corpus.critical"
        | "tiers.critical"
        | "tiers.timestamp"
        | "warnings.deny_codes"
        | "positives.meta" => {
            if removed {
                Direction::Relaxes
            } else if added {
                Direction::Tightens
            } else {
                Direction::Changed
            }
        }
        // Each entry leaves something out: adding one checks less.
        "corpus.exclude" => {
            if added {
                Direction::Relaxes
            } else {
                Direction::Tightens
            }
        }
        // No lock checks less; no recipe leaves its artifacts out.
        "corpus.lock" | "corpus.recipe" => match (before.is_empty(), after.is_empty()) {
            (false, true) => Direction::Relaxes,
            (true, false) => Direction::Tightens,
            _ => Direction::Changed,
        },
        "policy.source" => {
            if after.first().map(String::as_str) == Some("base") {
                Direction::Tightens
            } else {
                Direction::Relaxes
            }
        }
        "policy.trust_worktree" => {
            if flag(after) && !flag(before) {
                Direction::Relaxes
            } else {
                Direction::Tightens
            }
        }
        "policy.changes" => {
            if after.first().map(String::as_str) == Some("block") {
                Direction::Tightens
            } else {
                Direction::Relaxes
            }
        }
        _ => Direction::Changed,
    }
}

/// The line of `key` (`section.name`) in a TOML text: `name = ` inside
/// `[section]`, or a dotted `section.name = ` at the top; else the
/// section's header line. For annotations only.
pub fn key_line(text: &str, key: &str) -> Option<usize> {
    let (section, name) = key.split_once('.')?;
    let mut current = String::new();
    let mut header = None;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if let Some(rest) = line.strip_prefix('[') {
            if let Some(end) = rest.find(']') {
                current = rest[..end].trim().to_string();
                if current == section {
                    header = Some(i + 1);
                }
                continue;
            }
        }
        let starts = |k: &str| {
            line.strip_prefix(k)
                .is_some_and(|r| r.trim_start().starts_with('='))
        };
        if (current == section && (starts(name) || starts(&format!("\"{name}\""))))
            || (current.is_empty() && starts(key))
        {
            return Some(i + 1);
        }
    }
    header
}

/// The diff of the working tree's policy against the base's. `head` is the
/// working tree's config (with its text, if it has a file), `head_exc` its
/// exceptions.
pub fn diff(
    base: &BasePolicy,
    head: (&Config, Option<&str>),
    head_exc: Option<&ExceptionSet>,
    source: Source,
    mode: Mode,
) -> Result<PolicyChanges> {
    let (head_cfg, head_text) = head;
    let empty = Config::default();
    let base_cfg = base.config.as_ref().map(|c| &c.0).unwrap_or(&empty);
    let (before, after) = (settings(base_cfg), settings(head_cfg));
    let keys: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    let head_file = head_cfg.file.as_ref().map(|f| f.display().to_string());
    let mut out = PolicyChanges {
        base_ref: base.rev.clone(),
        source,
        mode,
        base_config: base
            .config
            .as_ref()
            .and_then(|c| c.0.file.as_ref())
            .map(|f| f.display().to_string()),
        base_exceptions: base.exceptions.as_ref().map(|e| e.0.clone()),
        config: head_file.clone(),
        exceptions_file: head_exc.map(|e| e.file.clone()),
        notes: Vec::new(),
        settings: Vec::new(),
        exceptions: Vec::new(),
        counts: Default::default(),
    };
    if base.config.is_none() {
        out.notes.push(format!(
            "no base policy: {} has no {} (first adoption); every setting of the working tree counts as changed",
            base.rev,
            head_file.as_deref().unwrap_or(config::FILE_NAME)
        ));
    }
    for key in keys {
        let empty = Vec::new();
        let b = before.get(key.as_str()).unwrap_or(&empty);
        let a = after.get(key.as_str()).unwrap_or(&empty);
        if a == b {
            continue;
        }
        let mut dir = direction(key, b, a);
        let escaping: Vec<String> = a
            .iter()
            .filter(|v| !b.contains(v))
            .filter_map(|v| escaping_path(head_cfg, key, v))
            .collect();
        if !escaping.is_empty() && dir == Direction::Tightens {
            dir = Direction::Changed;
        }
        let show = |v: &[String]| (!v.is_empty()).then(|| v.join(", "));
        let mut detail = match (show(b), show(a)) {
            (Some(x), Some(y)) => format!("{x} -> {y}"),
            (None, Some(y)) => format!("set to {y}"),
            (Some(x), None) => format!("{x} removed"),
            (None, None) => String::new(),
        };
        let gone: Vec<&String> = b.iter().filter(|x| !a.contains(x)).collect();
        if a.len() + b.len() > 2 && !gone.is_empty() {
            detail = format!(
                "{} dropped ({detail})",
                gone.iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        for e in &escaping {
            detail.push_str(&format!(
                "; {e}: a config may not name it, and it is not read"
            ));
        }
        let (file, line) = match head_text.and_then(|t| key_line(t, key)) {
            Some(l) => (head_file.clone(), Some(l)),
            None => match &base.config {
                Some((c, t)) if a.is_empty() => (
                    c.file.as_ref().map(|f| f.display().to_string()),
                    key_line(t, key),
                ),
                _ => (head_file.clone(), None),
            },
        };
        out.settings.push(SettingChange {
            key: key.to_string(),
            before: show(b),
            after: show(a),
            direction: dir,
            file,
            line,
            detail,
            blocking: false,
        });
    }
    out.exceptions = exception_changes(base.exception_set()?.as_ref(), head_exc);
    out.settle();
    Ok(out)
}

/// An exception's identity: kind, rule, target.
fn identity(e: &exceptions::Exception) -> (String, String, String) {
    let target = match &e.target {
        Target::Sha256(s) => format!("sha256 {s}"),
        Target::Path(g, _) => format!("path {g}"),
    };
    let kind = if e.kind.is_false_positive() {
        "false_positive"
    } else {
        "lost_detection"
    };
    (kind.to_string(), e.rule.clone(), target)
}

fn exception_changes(
    base: Option<&ExceptionSet>,
    head: Option<&ExceptionSet>,
) -> Vec<ExceptionChange> {
    let index =
        |s: Option<&ExceptionSet>| -> BTreeMap<(String, String, String), exceptions::Exception> {
            s.map(|s| s.entries.iter().map(|e| (identity(e), e.clone())).collect())
                .unwrap_or_default()
        };
    let (b, h) = (index(base), index(head));
    let file = |s: Option<&ExceptionSet>| s.map(|s| s.file.clone()).unwrap_or_default();
    let mut out = Vec::new();
    let push = |out: &mut Vec<ExceptionChange>,
                id: &(String, String, String),
                change: &str,
                file: String,
                line: usize,
                direction: Direction,
                detail: String| {
        out.push(ExceptionChange {
            change: change.into(),
            kind: id.0.clone(),
            rule: id.1.clone(),
            target: id.2.clone(),
            direction,
            file,
            line,
            detail,
            blocking: false,
        })
    };
    for (id, e) in &h {
        match b.get(id) {
            None => push(
                &mut out,
                id,
                "added",
                file(head),
                e.line,
                Direction::Relaxes,
                format!(
                    "new exception (reason {:?}, owner {:?}, expires {}{})",
                    e.reason,
                    e.owner,
                    e.expires,
                    if e.critical { ", critical" } else { "" }
                ),
            ),
            Some(old) => {
                let mut what = Vec::new();
                let mut dir = Direction::Changed;
                let mut worse = false;
                let mut better = false;
                if e.expires != old.expires {
                    what.push(format!("expires {} -> {}", old.expires, e.expires));
                    if e.expires > old.expires {
                        worse = true;
                    } else {
                        better = true;
                    }
                }
                if e.critical != old.critical {
                    what.push(format!("critical {} -> {}", old.critical, e.critical));
                    if e.critical {
                        worse = true;
                    } else {
                        better = true;
                    }
                }
                if e.rule_fingerprint != old.rule_fingerprint {
                    what.push(match &e.rule_fingerprint {
                        None => "rule_fingerprint removed (no longer lapses when the rule changes)"
                            .to_string(),
                        Some(_) => "rule_fingerprint changed".to_string(),
                    });
                    if e.rule_fingerprint.is_none() {
                        worse = true;
                    }
                }
                if e.reason != old.reason {
                    what.push(format!("reason {:?} -> {:?}", old.reason, e.reason));
                }
                if e.owner != old.owner {
                    what.push(format!("owner {:?} -> {:?}", old.owner, e.owner));
                }
                if what.is_empty() {
                    continue;
                }
                if worse {
                    dir = Direction::Relaxes;
                } else if better {
                    dir = Direction::Tightens;
                }
                push(
                    &mut out,
                    id,
                    "changed",
                    file(head),
                    e.line,
                    dir,
                    what.join("; "),
                );
            }
        }
    }
    for (id, e) in &b {
        if !h.contains_key(id) {
            push(
                &mut out,
                id,
                "removed",
                file(base),
                e.line,
                Direction::Tightens,
                format!(
                    "exception removed (was reason {:?}, owner {:?})",
                    e.reason, e.owner
                ),
            );
        }
    }
    out.sort_by(|a, b| (&a.file, a.line, &a.change).cmp(&(&b.file, b.line, &b.change)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_found_in_sections_and_dotted() {
        let t =
            "# c\n[scan]\nthreads = 2\nallow_incomplete = true\n\n[corpus]\n  critical=[\"a\"]\n";
        assert_eq!(key_line(t, "scan.allow_incomplete"), Some(4));
        assert_eq!(key_line(t, "corpus.critical"), Some(7));
        assert_eq!(key_line(t, "corpus.lock"), Some(6), "the section's line");
        assert_eq!(key_line("scan.timeout = 3\n", "scan.timeout"), Some(1));
        assert_eq!(key_line("", "scan.timeout"), None);
    }

    #[test]
    fn directions() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        use Direction::*;
        assert_eq!(
            direction("scan.allow_incomplete", &[], &s(&["true"])),
            Relaxes
        );
        assert_eq!(
            direction("scan.allow_incomplete", &s(&["true"]), &s(&["false"])),
            Tightens
        );
        assert_eq!(direction("exceptions.strict", &s(&["true"]), &[]), Relaxes);
        assert_eq!(
            direction("corpus.critical", &s(&["a", "b"]), &s(&["a"])),
            Relaxes
        );
        assert_eq!(
            direction("corpus.critical", &s(&["a"]), &s(&["a", "b"])),
            Tightens
        );
        assert_eq!(direction("corpus.exclude", &[], &s(&["x/**"])), Relaxes);
        // A signature tier rule dropped, or narrowed (its value changes).
        assert_eq!(
            direction("tiers.critical", &s(&["a (anchor x)"]), &[]),
            Relaxes
        );
        assert_eq!(
            direction(
                "tiers.critical",
                &s(&["a (anchor x)"]),
                &s(&["a (anchor x, subject \"CN=V\")"])
            ),
            Relaxes
        );
        assert_eq!(
            direction("tiers.critical", &[], &s(&["a (anchor x)"])),
            Tightens
        );
        assert_eq!(
            direction("corpus.archives", &s(&["true"]), &s(&["false"])),
            Relaxes
        );
        assert_eq!(
            direction("corpus.archives", &s(&["false"]), &s(&["true"])),
            Tightens
        );
        // More to read is never "tightens": what is read can be printed.
        assert_eq!(
            direction("corpus.paths", &s(&["a"]), &s(&["a", "b"])),
            Changed
        );
        assert_eq!(direction("positives.paths", &[], &s(&["s"])), Changed);
        assert_eq!(direction("rules.candidate", &s(&["r"]), &[]), Relaxes);
        assert_eq!(
            direction("policy.trust_worktree", &[], &s(&["true"])),
            Relaxes
        );
        assert_eq!(direction("corpus.lock", &s(&["l"]), &[]), Relaxes);
        assert_eq!(direction("scan.timeout", &s(&["60"]), &s(&["5"])), Changed);
        assert_eq!(direction("policy.changes", &s(&["block"]), &[]), Relaxes);
    }
}
