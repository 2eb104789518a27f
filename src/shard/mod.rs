//! Sharded runs.

pub mod partial;
