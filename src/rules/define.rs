//! `--define NAME=VALUE` and `[defines]`: external variables for the rules.

use serde::Serialize;

/// A `--define NAME=VALUE` external variable.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Define {
    pub name: String,
    pub value: DefineValue,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum DefineValue {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
}

impl std::str::FromStr for Define {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let (name, raw) = s
            .split_once('=')
            .ok_or_else(|| format!("`{s}` is not NAME=VALUE"))?;
        let valid = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(format!("`{name}` is not a valid YARA identifier"));
        }
        let value = if raw == "true" || raw == "false" {
            DefineValue::Bool(raw == "true")
        } else if let Ok(i) = raw.parse::<i64>() {
            DefineValue::Int(i)
        } else if let Ok(f) = raw.parse::<f64>().map_err(|_| ()).and_then(|f| {
            if raw.contains('.') {
                Ok(f)
            } else {
                Err(())
            }
        }) {
            DefineValue::Float(f)
        } else {
            // `"quoted"` values are strings with the quotes removed.
            let unq = raw
                .strip_prefix('"')
                .and_then(|r| r.strip_suffix('"'))
                .unwrap_or(raw);
            DefineValue::Str(unq.to_string())
        };
        Ok(Define {
            name: name.to_string(),
            value,
        })
    }
}
