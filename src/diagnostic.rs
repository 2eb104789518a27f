//! A compiler diagnostic (error or warning) as fpgate reports it: the same
//! diagnostic for people (yara-x's rendering, rustc-style) and for machines
//! (code, file, line, column, rule), in every report and in error reports.

use serde::Serialize;

/// One diagnostic from the yara-x compiler.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, schemars::JsonSchema)]
pub struct Diagnostic {
    #[serde(deserialize_with = "level")]
    pub level: Level,
    pub code: String,
    pub title: String,
    pub file: Option<String>,
    pub line: Option<u64>,
    pub column: Option<u64>,
    /// The rule the diagnostic is in, when it is inside one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// The full message as yara-x renders it (file:line:column, snippet).
    pub rendered: String,
}

/// "error" or "warning". (An alias, so that serde's derive does not tie the
/// whole struct to `'static` input.)
pub type Level = &'static str;

/// A diagnostic level read back from a partial report.
fn level<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<&'static str, D::Error> {
    let s: String = serde::Deserialize::deserialize(d)?;
    ["error", "warning"]
        .into_iter()
        .find(|l| *l == s)
        .ok_or_else(|| serde::de::Error::custom(format!("unknown diagnostic level {s:?}")))
}

impl Diagnostic {
    /// A yara-x error or warning. One whose labels point at a file that
    /// `allowed` refuses keeps its code but not its text: the text would
    /// quote that file.
    pub fn from_yarax<T: Serialize + std::fmt::Display>(
        level: &'static str,
        item: &T,
        allowed: &dyn Fn(&str) -> bool,
    ) -> Self {
        let v = serde_json::to_value(item).unwrap_or_default();
        let field = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
        let origins: Vec<&str> = v
            .get("labels")
            .and_then(|l| l.as_array())
            .into_iter()
            .flatten()
            .filter_map(|l| l.get("code_origin").and_then(|o| o.as_str()))
            .collect();
        if let Some(bad) = origins.iter().find(|o| !allowed(o)) {
            let note = format!(
                "not shown: this diagnostic quotes {bad:?}, which is not a rule file under the rule paths"
            );
            return Diagnostic {
                level,
                code: field("code"),
                title: note.clone(),
                file: None,
                line: None,
                column: None,
                rule: None,
                rendered: format!("{level}[{}]: {note}", field("code")),
            };
        }
        Diagnostic {
            level,
            code: field("code"),
            title: field("title"),
            file: origins.first().map(|s| s.to_string()),
            line: v.get("line").and_then(|x| x.as_u64()),
            column: v.get("column").and_then(|x| x.as_u64()),
            rule: None,
            rendered: item.to_string(),
        }
    }
}
