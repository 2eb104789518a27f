//! Accepted false positives: one `[[exception]]` per (rule, clean file),
//! each with a reason, an owner and an expiry date. The same file accepts
//! lost detections (a rule that no longer detects a known-bad sample,
//! `gate --positives`) with `kind = "lost_detection"`; the sample is then
//! named by `sha256` or `path` as a clean file is.
//!
//! ```toml
//! [[exception]]
//! rule = "Shh_Updater_B"        # identifier, or "namespace:identifier"
//! sha256 = "<64 hex>"           # the clean file's content (preferred)
//! # path = "vendor/updaters/**" # or a glob, only when sha256 is absent
//! reason = "why this is acceptable"
//! owner = "who answers for it"
//! expires = "2027-03-31"
//! # rule_fingerprint = "v2:<hex>" # lapses when the rule's body changes
//! # critical = true             # needed to cover a critical file
//! # kind = "lost_detection"     # accepts a lost detection instead
//! ```

use crate::error::{Error, Result};
use crate::util::hex::parse_sha256;
use crate::util::line_col;
use globset::{Glob, GlobMatcher};
use jiff::civil::Date;
use serde::{Deserialize, Serialize};
use std::path::Path;
use toml::Spanned;

pub const DEFAULT_FILE: &str = "fpgate-exceptions.toml";
/// A reason still saying this is a stub nobody has reviewed.
pub const TODO: &str = "TODO";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    exception: Vec<Spanned<RawException>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawException {
    rule: Spanned<String>,
    sha256: Option<Spanned<String>>,
    path: Option<Spanned<String>>,
    reason: Option<Spanned<String>>,
    owner: Option<Spanned<String>>,
    expires: Option<Spanned<toml::Value>>,
    rule_fingerprint: Option<Spanned<String>>,
    #[serde(default)]
    critical: bool,
    kind: Option<Spanned<String>>,
}

/// What an exception accepts.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A rule matching a known-clean file.
    #[default]
    FalsePositive,
    /// A rule no longer detecting a known-bad sample it detected before.
    LostDetection,
}

impl Kind {
    pub fn is_false_positive(&self) -> bool {
        *self == Kind::FalsePositive
    }
}

#[derive(Debug, Clone)]
pub enum Target {
    Sha256(String),
    Path(String, GlobMatcher),
}

#[derive(Debug, Clone)]
pub struct Exception {
    pub line: usize,
    pub rule: String,
    pub namespace: Option<String>,
    pub identifier: String,
    pub target: Target,
    pub reason: String,
    pub owner: String,
    pub expires: Date,
    pub rule_fingerprint: Option<String>,
    pub critical: bool,
    pub kind: Kind,
}

impl Exception {
    /// Matches the rule `namespace:identifier`.
    pub fn matches_rule(&self, namespace: &str, identifier: &str) -> bool {
        self.identifier == identifier && self.namespace.as_deref().is_none_or(|ns| ns == namespace)
    }
    pub fn is_todo(&self) -> bool {
        self.reason.trim() == TODO || self.owner.trim() == TODO
    }
}

#[derive(Debug, Clone, Default)]
pub struct ExceptionSet {
    pub file: String,
    pub entries: Vec<Exception>,
    /// The file's text (carried in partial reports so `merge` can apply
    /// the same exceptions).
    pub text: String,
}

/// How an exception fared in this run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Covered at least one false positive.
    Applied,
    /// Past its expiry date: not applied.
    Expired,
    /// Reason or owner is still "TODO": not applied.
    Unapproved,
    /// `rule_fingerprint` no longer matches the rule: not applied.
    Lapsed,
    /// Matches a critical file but lacks `critical = true`: not applied.
    RefusedCritical,
    /// Matched no false positive in this run.
    Stale,
}

/// One exception as the report shows it.
#[derive(Debug, Clone, Serialize, PartialEq, schemars::JsonSchema)]
pub struct ExceptionReport {
    pub file: String,
    pub line: usize,
    pub rule: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    pub reason: String,
    pub owner: String,
    pub expires: String,
    pub critical: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule_fingerprint: Option<String>,
    /// Absent for a false-positive exception.
    #[serde(default, skip_serializing_if = "Kind::is_false_positive")]
    pub kind: Kind,
    pub status: Status,
    /// False positives (rule, content) it covered.
    pub applied_to: usize,
    pub detail: String,
}

impl ExceptionReport {
    pub fn of(
        set: &ExceptionSet,
        e: &Exception,
        status: Status,
        applied_to: usize,
        detail: String,
    ) -> Self {
        let (sha256, path) = match &e.target {
            Target::Sha256(s) => (Some(s.clone()), None),
            Target::Path(g, _) => (None, Some(g.clone())),
        };
        ExceptionReport {
            file: set.file.clone(),
            line: e.line,
            rule: e.rule.clone(),
            sha256,
            path,
            reason: e.reason.clone(),
            owner: e.owner.clone(),
            expires: e.expires.to_string(),
            critical: e.critical,
            rule_fingerprint: e.rule_fingerprint.clone(),
            kind: e.kind,
            status,
            applied_to,
            detail,
        }
    }
}

/// Load an exceptions file. `required`: a missing file is an error (it was
/// named explicitly); otherwise a missing default file means no exceptions.
pub fn load(path: &Path, required: bool) -> Result<Option<ExceptionSet>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => return Ok(None),
        Err(e) => {
            return Err(Error::io(
                path.display(),
                format!("cannot read exceptions file {}: {e}", path.display()),
            ))
        }
    };
    parse(&text, path).map(Some)
}

pub fn parse(text: &str, path: &Path) -> Result<ExceptionSet> {
    let raw: RawFile =
        toml::from_str(text).map_err(|e| Error::toml("exceptions", path, text, &e))?;
    let name = path.display().to_string();
    let mut entries = Vec::new();
    for (n, spanned) in raw.exception.into_iter().enumerate() {
        // The span of an array-of-tables entry is its `[[exception]]` header.
        let line = line_col(text, spanned.span().start).0;
        let cx = Entry {
            text,
            name: &name,
            number: n + 1,
            header: format!("{name}:{line}"),
        };
        entries.push(cx.exception(spanned.into_inner(), line)?);
    }
    Ok(ExceptionSet {
        file: name,
        entries,
        text: text.to_string(),
    })
}

/// One `[[exception]]` entry being read: where it is, for messages.
struct Entry<'a> {
    text: &'a str,
    name: &'a str,
    /// 1-based, in file order.
    number: usize,
    /// `file:line` of its header.
    header: String,
}

impl Entry<'_> {
    /// `file:line:column` of a byte offset.
    fn at(&self, offset: usize) -> String {
        let (l, c) = line_col(self.text, offset);
        format!("{}:{l}:{c}", self.name)
    }

    fn bad(&self, where_: String, msg: String) -> Error {
        Error::input(
            "exceptions",
            &where_,
            format!("{where_}: exception #{}: {msg}", self.number),
        )
    }

    fn exception(&self, r: RawException, line: usize) -> Result<Exception> {
        let rule_text = r.rule.get_ref().trim().to_string();
        if rule_text.is_empty() {
            return Err(self.bad(self.at(r.rule.span().start), "`rule` is empty".into()));
        }
        let (namespace, identifier) = match rule_text.split_once(':') {
            Some((ns, id)) => (Some(ns.to_string()), id.to_string()),
            None => (None, rule_text.clone()),
        };
        Ok(Exception {
            line,
            target: self.target(&r)?,
            reason: self.required(&r.reason, "reason")?,
            owner: self.required(&r.owner, "owner")?,
            expires: self.expires(&r)?,
            rule_fingerprint: self.fingerprint(&r)?,
            rule: rule_text,
            namespace,
            identifier,
            critical: r.critical,
            kind: self.kind(&r)?,
        })
    }

    fn kind(&self, r: &RawException) -> Result<Kind> {
        match r.kind.as_ref().map(|k| (k.get_ref().trim(), k.span().start)) {
            None | Some(("false_positive", _)) => Ok(Kind::FalsePositive),
            Some(("lost_detection", _)) => Ok(Kind::LostDetection),
            Some((other, at)) => Err(self.bad(
                self.at(at),
                format!("`kind` is \"false_positive\" (the default) or \"lost_detection\", not {other:?}"),
            )),
        }
    }

    fn target(&self, r: &RawException) -> Result<Target> {
        match (&r.sha256, &r.path) {
            (Some(s), None) => {
                let v = s.get_ref().trim().to_ascii_lowercase();
                if parse_sha256(&v).is_none() {
                    return Err(self.bad(
                        self.at(s.span().start),
                        format!("`sha256` must be 64 hex digits, not {:?}", s.get_ref()),
                    ));
                }
                Ok(Target::Sha256(v))
            }
            (None, Some(p)) => {
                let g = Glob::new(p.get_ref()).map_err(|e| {
                    self.bad(self.at(p.span().start), format!("bad `path` glob: {e}"))
                })?;
                Ok(Target::Path(p.get_ref().clone(), g.compile_matcher()))
            }
            (Some(s), Some(_)) => Err(self.bad(
                self.at(s.span().start),
                "give `sha256` or `path`, not both (`path` is only for when the content is unknown)".into(),
            )),
            (None, None) => Err(self.bad(
                self.header.clone(),
                "needs `sha256` (or a `path` glob)".into(),
            )),
        }
    }

    fn required(&self, field: &Option<Spanned<String>>, key: &str) -> Result<String> {
        match field {
            Some(v) if !v.get_ref().trim().is_empty() => Ok(v.get_ref().trim().to_string()),
            Some(v) => Err(self.bad(self.at(v.span().start), format!("`{key}` is empty"))),
            None => Err(self.bad(self.header.clone(), format!("`{key}` is required"))),
        }
    }

    fn expires(&self, r: &RawException) -> Result<Date> {
        let Some(v) = &r.expires else {
            return Err(self.bad(
                self.header.clone(),
                "`expires` is required (YYYY-MM-DD)".into(),
            ));
        };
        let s = match v.get_ref() {
            toml::Value::String(s) => s.clone(),
            toml::Value::Datetime(d) => d.to_string(),
            other => other.to_string(),
        };
        parse_date(&s).ok_or_else(|| {
            self.bad(
                self.at(v.span().start),
                format!("`expires` must be a date YYYY-MM-DD, not {s:?}"),
            )
        })
    }

    fn fingerprint(&self, r: &RawException) -> Result<Option<String>> {
        let Some(f) = &r.rule_fingerprint else {
            return Ok(None);
        };
        let v = f.get_ref().trim().to_ascii_lowercase();
        if crate::rules::source::fingerprint_scheme(&v).is_none() {
            return Err(self.bad(
                self.at(f.span().start),
                "`rule_fingerprint` must be \"v2:\" and 64 hex digits, as reports print it (or 64 hex digits written by fpgate 0.1)".into(),
            ));
        }
        Ok(Some(v))
    }
}

/// A strict ISO date: exactly YYYY-MM-DD.
pub fn parse_date(s: &str) -> Option<Date> {
    let s = s.trim();
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    s.parse::<Date>().ok()
}

/// Today's date in UTC (expiry is by calendar day, the same everywhere).
pub fn today() -> Date {
    jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date()
}

/// Quote a string as a TOML basic string.
pub fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
# accepted false positives
[[exception]]
rule = "Shh_Updater_B"
sha256 = "76359cd4b0349a83337b941332ad042c90351c2bb0a4628307740324c97984cc"
reason = "Squirrel updater, vendor-signed"
owner = "rules-team@example.org"
expires = "2027-03-31"
critical = true

[[exception]]
rule = "default:Other"
path = "vendor/**"
reason = "vendored"
owner = "me"
expires = 2027-01-01
"#;

    #[test]
    fn parses_entries_with_header_lines() {
        let s = parse(GOOD, Path::new("e.toml")).unwrap();
        assert_eq!(s.entries.len(), 2);
        assert_eq!(s.entries[0].line, 3);
        assert!(s.entries[0].critical);
        assert_eq!(s.entries[1].line, 11);
        assert_eq!(s.entries[1].namespace.as_deref(), Some("default"));
        assert_eq!(s.entries[1].expires.to_string(), "2027-01-01");
        assert!(s.entries[1].matches_rule("default", "Other"));
        assert!(!s.entries[1].matches_rule("x", "Other"));
    }

    fn err(text: &str) -> String {
        parse(text, Path::new("e.toml")).unwrap_err().to_string()
    }

    #[test]
    fn malformed_entries_name_file_and_line() {
        let base = "[[exception]]\nrule = \"R\"\nsha256 = \"";
        let sha = "ab".repeat(32);
        let e = err(&format!(
            "{base}{sha}\"\nreason = \"r\"\nowner = \"o\"\nexpires = \"2027-02-30\"\n"
        ));
        assert!(e.starts_with("e.toml:6:") && e.contains("expires"), "{e}");
        let e = err(&format!(
            "{base}xyz\"\nreason = \"r\"\nowner = \"o\"\nexpires = \"2027-02-01\"\n"
        ));
        assert!(e.starts_with("e.toml:3:") && e.contains("64 hex"), "{e}");
        let e = err(&format!(
            "{base}{sha}\"\nowner = \"o\"\nexpires = \"2027-02-01\"\n"
        ));
        assert!(
            e.starts_with("e.toml:1:") && e.contains("`reason` is required"),
            "{e}"
        );
        let e = err(&format!(
            "{base}{sha}\"\nreason = \"  \"\nowner = \"o\"\nexpires = \"2027-02-01\"\n"
        ));
        assert!(
            e.starts_with("e.toml:4:") && e.contains("`reason` is empty"),
            "{e}"
        );
        let e = err(&format!(
            "{base}{sha}\"\nreason = \"r\"\nowner = \"o\"\nexpires = \"2027-02-01\"\nexpire = 1\n"
        ));
        assert!(e.starts_with("e.toml:") && e.contains("expire"), "{e}");
        let e = err("[[exception]]\nrule = \"R\"\nreason = \"r\"\nowner = \"o\"\nexpires = \"2027-02-01\"\n");
        assert!(e.contains("needs `sha256`"), "{e}");
        let e = err("[[exception]\n");
        assert!(e.starts_with("e.toml:1:"), "{e}");
    }

    #[test]
    fn dates_are_strict() {
        assert!(parse_date("2027-03-31").is_some());
        assert!(parse_date("2027-3-31").is_none());
        assert!(parse_date("31/03/2027").is_none());
        assert!(parse_date("2027-02-29").is_none());
    }
}
