//! `fpgate completions SHELL` and `fpgate man`: the command line described
//! for shells and for `man`, generated from the same definition as `--help`.

use crate::error::{Error, Result};
use crate::exit::Exit;

/// A completion script for `shell`, on stdout.
pub fn completions(shell: clap_complete::Shell, mut cmd: clap::Command) -> Result<Exit> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "fpgate", &mut out);
    crate::render::output::write(None, &out)?;
    Ok(Exit::Pass)
}

/// The man page (roff) of fpgate, or of one of its commands
/// (`fpgate-gate(1)`...), on stdout.
pub fn man(cmd: clap::Command, sub: Option<&str>) -> Result<Exit> {
    let page = match sub {
        None => cmd,
        Some(name) => {
            let c = cmd
                .find_subcommand(name)
                .cloned()
                .ok_or_else(|| Error::usage(format!("fpgate man: no command {name:?}")))?;
            // clap keeps names as static strings; one page per process.
            let full: &'static str = Box::leak(format!("fpgate-{name}").into_boxed_str());
            c.name(full)
        }
    };
    let mut out = Vec::new();
    clap_mangen::Man::new(page)
        .render(&mut out)
        .map_err(|e| Error::internal(format!("man page: {e}")))?;
    crate::render::output::write(None, &out)?;
    Ok(Exit::Pass)
}
