//! `fpgate explain REPORT.json`: the triage of a report's new false
//! positives (prevalence, necessity, validated narrowings), computed from
//! the report's rules and corpus as they are on disk now.

use crate::cli::ExplainArgs;
use crate::error::{Error, Result};
use crate::exit::Exit;
use crate::render::Format;
use crate::triage::{self, Fp};
use std::time::Instant;

pub fn run(a: &ExplainArgs) -> Result<Exit> {
    let started = Instant::now();
    let name = a.report.display().to_string();
    let text = std::fs::read(&a.report)
        .map_err(|e| Error::io(&name, format!("cannot read report {name}: {e}")))?;
    let report: serde_json::Value = serde_json::from_slice(&text).map_err(|e| {
        Error::input(
            "report",
            &name,
            format!("{name}:{}: not a JSON report: {e}", e.line()),
        )
    })?;
    if report["schema_version"].as_u64() != Some(crate::verdict::report::SCHEMA_VERSION as u64) {
        return Err(Error::input(
            "report",
            &name,
            format!(
                "{name}: not a JSON report of this fpgate (schema_version {} expected)",
                crate::verdict::report::SCHEMA_VERSION
            ),
        ));
    }
    let (s, positives) = crate::settings::Run::explain(a, &report)?;
    let fps = Fp::from_json(&report);
    let candidate = crate::rules::compile("candidate", &s.candidate, &s.compile)?;
    let corpus = crate::corpus::gather(
        &s.corpus,
        &s.walk,
        s.recipe.as_ref().map(|r| (&r.recipe, &r.store)),
    )?;
    let samples = if positives.is_empty() {
        Vec::new()
    } else {
        let opts = crate::corpus::WalkOptions {
            follow_symlinks: s.walk.follow_symlinks,
            ..Default::default()
        };
        crate::corpus::walk(&positives, &opts)?.files
    };
    let missing: Vec<&str> = fps
        .iter()
        .flat_map(|f| f.paths.iter())
        .filter(|p| !corpus.files.iter().any(|c| c.display() == *p))
        .map(String::as_str)
        .collect();
    let mut t = triage::analyse(
        &fps,
        &candidate,
        &corpus.files,
        &samples,
        &triage::Options {
            compile: &s.compile,
            scan: &s.scan,
            cache_dir: s.cache.as_deref(),
            explain: true,
        },
    )?;
    if !missing.is_empty() {
        t.notes.push(format!(
            "{} false positive path(s) of the report are not in the corpus now (run explain from the directory the report was made in, or give --corpus): {}",
            missing.len(),
            missing.join(", ")
        ));
    }
    let target = s.output.targets.first();
    let (format, path) = target.map_or((Format::Human, None), |t| (t.format, t.path.clone()));
    let color = target.is_some_and(|t| crate::render::emit::human_color(t, s.output.color));
    let body = match format {
        Format::Json => {
            let mut b = serde_json::to_string_pretty(&serde_json::json!({
                "schema_version": crate::verdict::report::SCHEMA_VERSION,
                "report": name,
                "triage": t,
            }))
            .map_err(|e| Error::internal(format!("explain: {e}")))?;
            b.push('\n');
            b
        }
        Format::Human => {
            crate::render::human::triage_report(&t, crate::render::human::Style { color })
        }
        other => {
            return Err(Error::usage(format!(
                "explain writes human or json, not {}",
                other.name()
            )))
        }
    };
    crate::render::output::write(path.as_deref(), body.as_bytes())?;
    if !s.output.quiet {
        eprintln!(
            "fpgate explain: {} rule(s), {} new false positive(s), {} clean file(s), {} sample(s) in {:.2}s ({} of {} file lookups answered by the results cache)",
            t.rules.len(),
            fps.len(),
            t.clean_files,
            t.samples,
            started.elapsed().as_secs_f64(),
            t.files_from_cache,
            t.probe_files
        );
    }
    Ok(Exit::Pass)
}
