//! `fpgate gate`: the candidate against the released baseline; new false
//! positives (and, with `--perf`, a slower candidate) block the release.

use crate::error::Result;
use crate::exit::Exit;
use crate::settings::Run;

pub fn run(s: &Run) -> Result<Exit> {
    super::pipeline::run(s)
}
