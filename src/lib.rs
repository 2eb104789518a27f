//! fpgate: a release gate for YARA rule updates.
//!
//! It scans a candidate ruleset (and the released baseline) with yara-x over
//! a corpus of known-clean files and classifies every match as a new,
//! persisting or fixed false positive. New ones block the release, unless an
//! exception with a reason, an owner and an expiry covers them; files that
//! could not be scanned make the gate fail closed.

pub mod cache;
pub mod cli;
pub mod config;
pub mod corpus;
pub mod error;
pub mod escape;
pub mod evidence;
pub mod exceptions;
pub mod exit;
pub mod export;
pub mod fastcompile;
pub mod formats;
pub mod gate;
pub mod gitref;
pub mod hexfmt;
pub mod human;
pub mod includes;
pub mod incremental;
pub mod index;
pub mod lock;
pub mod output;
pub mod partial;
pub mod perf;
pub mod policy;
pub mod report;
pub mod rulekeys;
pub mod rules;
pub mod scan;
pub mod stubs;
pub mod yarasrc;
