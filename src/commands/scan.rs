//! `fpgate scan`: every (rule, clean file) match of one ruleset.

use crate::error::Result;
use crate::exit::Exit;
use crate::settings::Run;

pub fn run(s: &Run) -> Result<Exit> {
    super::pipeline::run(s)
}
