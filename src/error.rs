//! Errors that prevent a verdict. Every one of them exits with code 2.

use crate::diagnostic::Diagnostic;

pub type Result<T> = std::result::Result<T, Error>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad arguments or inputs: a missing path, an empty corpus, a bad define.
    #[error("{0}")]
    Usage(String),
    /// A ruleset does not compile.
    #[error("the {ruleset} ruleset does not compile: {} error(s)", errors.len())]
    Compile {
        ruleset: &'static str,
        errors: Vec<Diagnostic>,
        warnings: Vec<Diagnostic>,
    },
    /// Writing a report failed.
    #[error("cannot write {path}: {source}")]
    Output {
        path: String,
        source: std::io::Error,
    },
}

impl Error {
    pub fn usage(msg: impl Into<String>) -> Self {
        Error::Usage(msg.into())
    }
}
