//! Flags and fpgate.toml, resolved into the settings of one run.

pub mod config;
