//! fpgate: a release gate for YARA rule updates.
//!
//! It scans a candidate ruleset (and the released baseline) with yara-x over
//! a corpus of known-clean files and classifies every match as a new,
//! persisting or fixed false positive. New ones block the release, unless an
//! exception with a reason, an owner and an expiry covers them; files that
//! could not be scanned make the gate fail closed.
//!
//! Data flows one way: arguments and fpgate.toml become settings; the corpus
//! is walked; the engine scans it with the rules; the findings become a
//! verdict; renderers write it. Each layer uses only the ones below it.

// The layers, lowest first (rustfmt sorts the declarations below):
//   util, diagnostic, exit, error      helpers, exit codes, the error type
//   corpus                             the clean files: walk, read, format, lock,
//                                      the recipe and its content-addressed store
//   fetch                              the recipe's artifacts into the store
//   store                              the SQLite store (results, stamps, blobs)
//   rules                              rule files -> compiled sets, identity, keys
//   engine                             the parallel scan; asks a `Planner`
//   cache                              the planner: what the store already knows
//   verdict                            findings, policy, exceptions, decision
//   triage                             after the verdict: run history, --explain
//   shard                              partial reports and their merge
//   render                             one module per report format, writing
//   cli, settings                      flags; flags + fpgate.toml -> settings
//   commands, app                      one module per command; the entry point
pub mod app;
pub mod cache;
pub mod cli;
pub mod commands;
pub mod corpus;
pub mod diagnostic;
pub mod engine;
pub mod error;
pub mod exit;
pub mod fetch;
pub mod render;
pub mod rules;
pub mod settings;
pub mod shard;
pub mod store;
pub mod triage;
pub mod util;
pub mod verdict;
