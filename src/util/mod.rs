//! Small helpers every layer uses: hex forms and escaping.

pub mod escape;
pub mod hex;
