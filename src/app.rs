//! The entry point: parse the command line, run the command, and turn its
//! verdict or error into the process exit code.

use std::process::ExitCode;

/// Run fpgate with the process's arguments.
pub fn run() -> ExitCode {
    ExitCode::from(crate::cli::run() as u8)
}
