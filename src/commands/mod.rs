//! One module per command. Each takes its validated settings and returns
//! the exit code of its verdict; errors go up to `app`.

pub mod check;
pub mod corpus_add;
pub mod corpus_fetch;
pub mod corpus_index;
pub mod docs;
pub mod exceptions_add;
pub mod explain;
pub mod gate;
pub mod history;
pub mod merge;
pub mod pipeline;
pub mod scan;
