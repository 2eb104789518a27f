//! fpgate: a release gate for YARA rule updates.
//!
//! It scans a candidate ruleset (and the released baseline) with yara-x over
//! a corpus of known-clean files and classifies every match as a new,
//! persisting or fixed false positive. New ones block the release; files
//! that could not be scanned make the gate fail closed.

pub mod cli;
pub mod corpus;
pub mod error;
pub mod escape;
pub mod exit;
pub mod hexfmt;
pub mod human;
pub mod output;
pub mod report;
pub mod rules;
pub mod scan;
pub mod yarasrc;
