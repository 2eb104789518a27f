//! `fpgate history`: the recorded runs, newest last.

use crate::cli::HistoryListArgs;
use crate::error::{Error, Result};
use crate::exit::Exit;
use crate::triage::history::History;

pub fn run(a: &HistoryListArgs) -> Result<Exit> {
    let cfg =
        crate::settings::config::Config::load(a.config.config.as_deref(), a.config.no_config)?;
    let file = crate::settings::history_file(a.cache.as_deref(), Some(&cfg))
        .ok_or_else(|| Error::usage("no cache directory: give --cache DIR"))?;
    let runs = if file.exists() {
        let h = History::open(&file)?;
        let mut runs = h.runs(None, None, usize::MAX)?;
        if let Some(c) = &a.command {
            runs.retain(|r| &r.command == c);
        }
        let skip = runs.len().saturating_sub(a.limit);
        runs.drain(..skip);
        runs
    } else {
        Vec::new()
    };
    let body = if a.json {
        let mut b = serde_json::to_string_pretty(&serde_json::json!({
            "schema_version": crate::verdict::report::SCHEMA_VERSION,
            "history": file.display().to_string(),
            "runs": runs,
        }))
        .map_err(|e| Error::internal(format!("history: {e}")))?;
        b.push('\n');
        b
    } else if runs.is_empty() {
        format!("no runs recorded in {}\n", file.display())
    } else {
        let mut out = format!(
            "{:>5}  {:<20}  {:<5}  {:<10}  {:>6}  {:>8}  {:>5}  {:>10}  {:>8}  {:>8}  rules -> corpus\n",
            "run", "at (UTC)", "cmd", "result", "files", "findings", "new", "persisting", "excepted", "critical"
        );
        for r in &runs {
            let c = |k: &str| r.by_class.get(k).copied().unwrap_or(0);
            out.push_str(&format!(
                "{:>5}  {:<20}  {:<5}  {:<10}  {:>6}  {:>8}  {:>5}  {:>10}  {:>8}  {:>8}  {} -> {}\n",
                r.id,
                r.at,
                r.command,
                r.result,
                r.files,
                r.findings,
                c("new"),
                c("persisting"),
                c("excepted"),
                r.by_tier.get("critical").copied().unwrap_or(0),
                crate::util::escape::term(&r.rules),
                crate::util::escape::term(&r.corpus)
            ));
        }
        out
    };
    crate::render::output::write(None, body.as_bytes())?;
    Ok(Exit::Pass)
}
