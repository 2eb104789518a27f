//! Exit codes: the contract CI scripts rely on.

/// Process exit codes, documented in `--help` and the README.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Exit {
    /// gate: no new false positive; scan: no match. Every file was scanned
    /// (or `--allow-incomplete` was given).
    Pass = 0,
    /// gate: at least one new false positive; scan: at least one match.
    Blocked = 1,
    /// No verdict: bad arguments, a rule that does not compile, a corpus path
    /// that does not exist or holds no files, an unwritable report.
    Error = 2,
    /// The verdict would pass, but some files could not be scanned, or
    /// some candidate rules could not be evaluated (an ignored module).
    Incomplete = 3,
}

impl Exit {
    pub fn code(self) -> i32 {
        self as i32
    }
    pub fn name(self) -> &'static str {
        match self {
            Exit::Pass => "pass",
            Exit::Blocked => "blocked",
            Exit::Error => "error",
            Exit::Incomplete => "incomplete",
        }
    }
}

pub const HELP: &str = "\
Exit codes:
  0  pass: no new false positive (scan: no match) and every file was scanned
  1  blocked: at least one new false positive (scan: at least one match)
  2  error, no verdict: bad arguments, a rule that does not compile, a corpus
     path that does not exist or holds no files, a report that cannot be written,
     a corpus that does not match its lock; merge: a missing, duplicated or
     mismatched shard, or a partial report that is truncated or edited
  3  incomplete: the verdict would pass but some files could not be scanned
     (use --allow-incomplete to accept that), or some candidate rules could not
     be evaluated because they use an ignored module (--allow-unevaluated)";
