//! One module per command.

pub mod corpus_index;
pub mod exceptions_add;
pub mod run;
