//! `fpgate check RULE_FILE...`: `scan` with only these rules over the
//! configured corpus, for the rule author; with `--watch`, again on every
//! save.

use crate::cli::CheckArgs;
use crate::error::Result;
use crate::exit::Exit;
use crate::settings::Run;
use crate::util::interrupt;
use std::time::{Duration, SystemTime};

pub fn run(s: &Run) -> Result<Exit> {
    super::pipeline::run(s)
}

/// `check --watch`: run, wait for a rule file to change, run again, until
/// Ctrl-C. A run's error (a rule that does not compile yet) is shown and
/// waited out; settings that cannot work end the watch.
pub fn watch(a: &CheckArgs, report_error: &dyn Fn(&crate::error::Error)) -> Result<Exit> {
    let stamp = |s: &Run| -> Vec<Option<SystemTime>> {
        crate::rules::files::collect_namespaced(&a.rules, &s.compile.extensions)
            .unwrap_or_default()
            .iter()
            .map(|(_, f)| std::fs::metadata(f).and_then(|m| m.modified()).ok())
            .collect()
    };
    interrupt::install_handler();
    loop {
        let s = Run::check(a)?;
        let seen = stamp(&s);
        match run(&s) {
            Ok(exit) => eprintln!(
                "fpgate check: {} (exit {}); waiting for changes, Ctrl-C to stop",
                exit.name(),
                exit.code()
            ),
            // A rule that does not compile yet is the normal state of a
            // rule being written: show the error and wait for the next save.
            Err(e) => {
                report_error(&e);
                eprintln!("fpgate check: waiting for changes, Ctrl-C to stop");
            }
        }
        while stamp(&s) == seen {
            if interrupt::interrupted() {
                return Ok(Exit::Pass);
            }
            std::thread::sleep(Duration::from_millis(300));
        }
        interrupt::reset();
    }
}
