//! fpgate: a release gate for YARA rule updates.
//!
//! It scans a candidate ruleset (and the released baseline) with yara-x over
//! a corpus of known-clean files and classifies every match as a new,
//! persisting or fixed false positive. New ones block the release, unless an
//! exception with a reason, an owner and an expiry covers them; files that
//! could not be scanned make the gate fail closed.
//!
//! Data flows one way, and the modules are listed in that order: each one
//! uses only the ones above it.

pub mod cache;
pub mod cli;
pub mod commands;
pub mod corpus;
pub mod engine;
pub mod error;
pub mod exit;
pub mod render;
pub mod rules;
pub mod settings;
pub mod shard;
pub mod util;
pub mod verdict;
