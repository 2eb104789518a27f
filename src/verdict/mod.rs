//! From scan outcomes to the verdict.

pub mod exceptions;
pub mod perf;
pub mod policy;
pub mod report;
