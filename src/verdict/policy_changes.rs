//! The gate's own policy as part of the change (`gate --baseline-ref`):
//! what fpgate.toml and the exceptions file say now against what they said
//! at the base revision, each difference marked `relaxes`, `tightens` or
//! (where the direction is not clear) `changed`. The values are computed by
//! `settings::base`; this module holds what the report carries and how a
//! change counts towards the verdict.

use serde::{Deserialize, Serialize};

/// Which policy the run applied.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The working tree's fpgate.toml and exceptions (the change's own).
    #[default]
    Worktree,
    /// The base revision's (`--policy-from-base`, `policy.source = "base"`).
    Base,
}

/// What a policy change does to the verdict.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Reported, never blocks.
    #[default]
    Report,
    /// Every change that does not clearly tighten the gate, and every
    /// added exception, blocks (`policy.changes = "block"`).
    Block,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// The gate lets more through than at the base.
    Relaxes,
    /// The gate lets less through.
    Tightens,
    /// Neither clearly: reviewed like a relaxation under `block`.
    Changed,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Relaxes => "relaxes",
            Direction::Tightens => "tightens",
            Direction::Changed => "changed",
        }
    }
}

/// One setting of fpgate.toml that differs from the base.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingChange {
    /// `section.key`, as in fpgate.toml.
    pub key: String,
    /// The value at the base (absent: not set).
    pub before: Option<String>,
    /// The value now (absent: not set).
    pub after: Option<String>,
    pub direction: Direction,
    /// Where the change is now (the working tree's file and line; for a
    /// removed key, its section's line or the base's file and line).
    pub file: Option<String>,
    pub line: Option<usize>,
    /// In words.
    pub detail: String,
    pub blocking: bool,
}

/// One exception added, removed or changed since the base.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExceptionChange {
    /// `added`, `removed` or `changed`.
    pub change: String,
    pub rule: String,
    /// `false_positive` or `lost_detection`.
    pub kind: String,
    /// `sha256 <hex>` or `path <glob>`.
    pub target: String,
    pub direction: Direction,
    pub file: String,
    pub line: usize,
    pub detail: String,
    pub blocking: bool,
}

/// The policy diff of a gate against its base revision.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyChanges {
    /// The base revision, as given.
    pub base_ref: String,
    pub source: Source,
    pub mode: Mode,
    /// `REF:path` of the base's config and exceptions file (absent: none at
    /// the base).
    pub base_config: Option<String>,
    pub base_exceptions: Option<String>,
    /// The working tree's config and exceptions file (absent: none).
    pub config: Option<String>,
    pub exceptions_file: Option<String>,
    /// Remarks: "no base policy" (first adoption), a ref from the config...
    pub notes: Vec<String>,
    pub settings: Vec<SettingChange>,
    pub exceptions: Vec<ExceptionChange>,
    pub counts: ChangeCounts,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeCounts {
    pub relaxes: usize,
    pub tightens: usize,
    pub changed: usize,
    pub exceptions_added: usize,
    pub exceptions_removed: usize,
    pub exceptions_changed: usize,
    /// Changes that block the release (`mode = "block"` only).
    pub blocking: usize,
}

impl PolicyChanges {
    /// Mark what blocks under the mode and count.
    pub fn settle(&mut self) {
        let block = self.mode == Mode::Block;
        for s in &mut self.settings {
            s.blocking = block && s.direction != Direction::Tightens;
        }
        for e in &mut self.exceptions {
            e.blocking = block && e.direction != Direction::Tightens;
        }
        let dir = |d: Direction| {
            self.settings.iter().filter(|s| s.direction == d).count()
                + self.exceptions.iter().filter(|e| e.direction == d).count()
        };
        let ex = |c: &str| self.exceptions.iter().filter(|e| e.change == c).count();
        self.counts = ChangeCounts {
            relaxes: dir(Direction::Relaxes),
            tightens: dir(Direction::Tightens),
            changed: dir(Direction::Changed),
            exceptions_added: ex("added"),
            exceptions_removed: ex("removed"),
            exceptions_changed: ex("changed"),
            blocking: self.settings.iter().filter(|s| s.blocking).count()
                + self.exceptions.iter().filter(|e| e.blocking).count(),
        };
    }

    /// Every change in one list, for the line-oriented formats: (file,
    /// line, message, direction, blocking).
    pub fn lines(&self) -> Vec<(Option<&str>, Option<usize>, String, Direction, bool)> {
        let mut out = Vec::new();
        for s in &self.settings {
            out.push((
                s.file.as_deref(),
                s.line,
                format!(
                    "policy change ({}): {}: {}",
                    s.direction.as_str(),
                    s.key,
                    s.detail
                ),
                s.direction,
                s.blocking,
            ));
        }
        for e in &self.exceptions {
            out.push((
                Some(e.file.as_str()),
                Some(e.line),
                format!(
                    "policy change ({}): exception {} for rule {} ({}, {}): {}",
                    e.direction.as_str(),
                    e.change,
                    e.rule,
                    e.kind,
                    e.target,
                    e.detail
                ),
                e.direction,
                e.blocking,
            ));
        }
        out
    }
}
