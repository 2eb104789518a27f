//! Small helpers every layer uses: hex forms, escaping, the interrupt flag.

pub mod escape;
pub mod hex;
pub mod interrupt;
