//! The one error type: everything that ends a run without a verdict.
//!
//! Each variant says what kind of thing went wrong and carries its facts
//! (file, line, key, shard, path), so CI and the JSON error report can tell a
//! flag typo from an unreadable lock or a mismatched shard; `Display` is the
//! sentence a person reads. Every variant owns its exit code (`exit`): all
//! of them are 2 today ("error, no verdict"), the documented contract.

use crate::diagnostic::Diagnostic;
use crate::exit::Exit;
use serde_json::{json, Value};

pub type Result<T> = std::result::Result<T, Error>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A flag, or a combination of flags, that cannot work.
    #[error("{message}")]
    Usage { message: String },
    /// fpgate.toml (or the value a flag gives for one of its keys) is wrong.
    #[error("{message}")]
    Config {
        file: Option<String>,
        line: Option<usize>,
        column: Option<usize>,
        key: Option<String>,
        message: String,
    },
    /// A file fpgate parses is malformed: `what` is "exceptions",
    /// "corpus lock", "partial report" or "report".
    #[error("{message}")]
    Input {
        what: &'static str,
        file: String,
        line: Option<usize>,
        column: Option<usize>,
        message: String,
    },
    /// A rule path or rule file cannot be used (missing, unreadable, outside
    /// the rule paths, an include the sandbox refuses).
    #[error("{message}")]
    RuleFile {
        path: String,
        line: Option<usize>,
        message: String,
    },
    /// A ruleset does not compile.
    #[error("the {ruleset} ruleset does not compile: {} error(s)", errors.len())]
    Compile {
        ruleset: &'static str,
        errors: Vec<Diagnostic>,
        warnings: Vec<Diagnostic>,
    },
    /// No corpus, a corpus path that does not exist or holds no files, a
    /// bad glob, two roots holding the same relative path.
    #[error("{message}")]
    Corpus {
        path: Option<String>,
        message: String,
    },
    /// The corpus does not match its lock.
    #[error("{message}")]
    LockMismatch {
        lock: String,
        file: Option<String>,
        message: String,
    },
    /// Partial reports that do not make one complete run.
    #[error("{message}")]
    Shards {
        files: Vec<String>,
        shard: Option<String>,
        message: String,
    },
    /// `--baseline-ref`: git failed or the revision lacks the rule paths.
    #[error("{message}")]
    Git {
        git_ref: Option<String>,
        message: String,
    },
    /// A file or directory fpgate needs could not be read or made.
    #[error("{message}")]
    Io { path: String, message: String },
    /// Writing a report failed.
    #[error("cannot write {path}: {source}")]
    Output {
        path: String,
        source: std::io::Error,
    },
    /// A part of fpgate failed unexpectedly (a thread panicked).
    #[error("{message}")]
    Internal { message: String },
}

impl Error {
    pub fn usage(message: impl Into<String>) -> Self {
        Error::Usage {
            message: message.into(),
        }
    }

    pub fn config(file: Option<&std::path::Path>, key: &str, message: impl Into<String>) -> Self {
        Error::Config {
            file: file.map(|f| f.display().to_string()),
            line: None,
            column: None,
            key: Some(key.to_string()),
            message: message.into(),
        }
    }

    /// `file:line:column: message` for a TOML file that does not parse or
    /// has an unknown key or a wrong type.
    pub fn toml(
        what: &'static str,
        path: &std::path::Path,
        text: &str,
        e: &toml::de::Error,
    ) -> Self {
        let (line, column) = e
            .span()
            .map(|s| crate::util::line_col(text, s.start))
            .unwrap_or((0, 0));
        let message = format!(
            "{}:{line}:{column}: {}",
            path.display(),
            e.message().trim_end()
        );
        let file = path.display().to_string();
        let (line, column) = (
            Some(line).filter(|l| *l > 0),
            Some(column).filter(|_| line > 0),
        );
        if what == "config" {
            Error::Config {
                file: Some(file),
                line,
                column,
                key: None,
                message,
            }
        } else {
            Error::Input {
                what,
                file,
                line,
                column,
                message,
            }
        }
    }

    pub fn input(
        what: &'static str,
        file: impl std::fmt::Display,
        message: impl Into<String>,
    ) -> Self {
        Error::Input {
            what,
            file: file.to_string(),
            line: None,
            column: None,
            message: message.into(),
        }
    }

    pub fn rule_file(path: impl std::fmt::Display, message: impl Into<String>) -> Self {
        Error::RuleFile {
            path: path.to_string(),
            line: None,
            message: message.into(),
        }
    }

    pub fn corpus(path: Option<&str>, message: impl Into<String>) -> Self {
        Error::Corpus {
            path: path.map(str::to_string),
            message: message.into(),
        }
    }

    pub fn shards(files: &[&std::path::Path], message: impl Into<String>) -> Self {
        Error::Shards {
            files: files.iter().map(|f| f.display().to_string()).collect(),
            shard: None,
            message: message.into(),
        }
    }

    pub fn git(git_ref: Option<&str>, message: impl Into<String>) -> Self {
        Error::Git {
            git_ref: git_ref.map(str::to_string),
            message: message.into(),
        }
    }

    pub fn io(path: impl std::fmt::Display, message: impl Into<String>) -> Self {
        Error::Io {
            path: path.to_string(),
            message: message.into(),
        }
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Error::Internal {
            message: message.into(),
        }
    }

    /// The process exit code of this error.
    pub fn exit(&self) -> Exit {
        match self {
            Error::Usage { .. }
            | Error::Config { .. }
            | Error::Input { .. }
            | Error::RuleFile { .. }
            | Error::Compile { .. }
            | Error::Corpus { .. }
            | Error::LockMismatch { .. }
            | Error::Shards { .. }
            | Error::Git { .. }
            | Error::Io { .. }
            | Error::Output { .. }
            | Error::Internal { .. } => Exit::Error,
        }
    }

    /// The kind of error, as the JSON error report names it.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Usage { .. } => "usage",
            Error::Config { .. } => "config",
            Error::Input { .. } => "input",
            Error::RuleFile { .. } => "rule_file",
            Error::Compile { .. } => "compile",
            Error::Corpus { .. } => "corpus",
            Error::LockMismatch { .. } => "lock_mismatch",
            Error::Shards { .. } => "shards",
            Error::Git { .. } => "git",
            Error::Io { .. } => "io",
            Error::Output { .. } => "output",
            Error::Internal { .. } => "internal",
        }
    }

    /// The error for machines: its kind, its facts and its message.
    pub fn to_json(&self) -> Value {
        let mut v = match self {
            Error::Usage { .. } | Error::Internal { .. } => json!({}),
            Error::Config {
                file,
                line,
                column,
                key,
                ..
            } => json!({ "file": file, "line": line, "column": column, "key": key }),
            Error::Input {
                what,
                file,
                line,
                column,
                ..
            } => json!({ "what": what, "file": file, "line": line, "column": column }),
            Error::RuleFile { path, line, .. } => json!({ "path": path, "line": line }),
            Error::Compile {
                ruleset,
                errors,
                warnings,
            } => json!({ "ruleset": ruleset, "errors": errors.len(), "warnings": warnings.len() }),
            Error::Corpus { path, .. } => json!({ "path": path }),
            Error::LockMismatch { lock, file, .. } => json!({ "lock": lock, "file": file }),
            Error::Shards { files, shard, .. } => json!({ "files": files, "shard": shard }),
            Error::Git { git_ref, .. } => json!({ "git_ref": git_ref }),
            Error::Io { path, .. } | Error::Output { path, .. } => json!({ "path": path }),
        };
        if let Some(o) = v.as_object_mut() {
            o.insert("kind".into(), self.kind().into());
            o.insert("exit_code".into(), self.exit().code().into());
            o.insert("message".into(), self.to_string().into());
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_errors_carry_file_line_and_column() {
        let text = "[scan]\nthreads = \"two\"\n";
        let e = toml::from_str::<toml::Value>("[scan]\nthreads = \n").unwrap_err();
        let err = Error::toml("config", std::path::Path::new("x.toml"), text, &e);
        let v = err.to_json();
        assert_eq!(v["kind"], "config");
        assert_eq!(v["file"], "x.toml");
        assert_eq!(v["exit_code"], 2);
        assert!(v["line"].as_u64().is_some(), "{v}");
        assert!(err.to_string().starts_with("x.toml:"), "{err}");
    }

    #[test]
    fn every_error_exits_2() {
        for e in [
            Error::usage("x"),
            Error::internal("x"),
            Error::shards(&[], "x"),
        ] {
            assert_eq!(e.exit(), Exit::Error);
        }
    }
}
