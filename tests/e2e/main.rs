//! End-to-end tests of the fpgate binary: one test binary (linked once),
//! one module per area, helpers and the `Project` builder in `common`.

mod common;
#[path = "../support/openssl.rs"]
mod support;

mod archives;
mod cache;
mod check;
mod corpus_recipe;
mod differential;
mod faults;
mod gate;
mod history;
mod hostile;
mod namespaces;
mod oracle;
mod perf;
mod policy;
mod policy_base;
mod positives;
mod recipes;
mod reports;
mod sandbox;
mod secure;
mod shard;
mod signature_tiers;
mod triage;
