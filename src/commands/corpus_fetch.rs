//! `fpgate corpus fetch`: the recipe's artifacts into the corpus store.

use crate::cli::FetchArgs;
use crate::corpus::recipe;
use crate::error::Result;
use crate::exit::Exit;
use crate::fetch::{self, Done};
use crate::settings::recipe::RecipeCommand;
use std::time::Instant;

pub fn run(a: &FetchArgs) -> Result<Exit> {
    let s = RecipeCommand::of(&a.recipe)?;
    let recipe = match &a.baseline_ref {
        Some(rev) => match crate::settings::base::file_at(rev, &s.path)? {
            Some((shown, text)) => recipe::parse(&text, std::path::Path::new(&shown))?,
            None => {
                return Err(crate::error::Error::input(
                    "recipe",
                    s.path.display(),
                    format!("{} does not exist at {rev}", s.path.display()),
                ))
            }
        },
        None => recipe::load(&s.path)?,
    };
    let opts = fetch::Options {
        jobs: usize::from(a.jobs),
        timeout: s.timeout,
        offline: a.offline,
    };
    let started = Instant::now();
    let bar = crate::render::output::fetch_bar(recipe.artifacts.len() as u64, s.quiet);
    let summary = fetch::fetch_all(&recipe, &s.store, &opts, &bar)?;
    let named: std::collections::HashSet<&str> =
        recipe.artifacts.iter().map(|x| x.sha256.as_str()).collect();
    let (mut pruned, mut pruned_bytes) = (0usize, 0u64);
    if a.prune {
        let _held = s.store.lock()?;
        for (pin, size) in s.store.objects()? {
            if !named.contains(pin.as_str()) {
                s.store.remove(&pin)?;
                pruned += 1;
                pruned_bytes += size;
            }
        }
    }
    let objects = s.store.objects()?;
    let stale: Vec<&(String, u64)> = objects
        .iter()
        .filter(|(p, _)| !named.contains(p.as_str()))
        .collect();
    let total: u64 = objects.iter().map(|(_, n)| n).sum();
    let mut out = String::new();
    for (name, pin, done) in &summary.artifacts {
        if let Done::Downloaded(n) = done {
            out.push_str(&format!(
                "downloaded {} ({}, sha256 {})\n",
                crate::util::escape::term(name),
                mb(*n),
                pin
            ));
        }
    }
    for name in &summary.replaced {
        out.push_str(&format!(
            "replaced   {} (the store's copy did not match its pin)\n",
            crate::util::escape::term(name)
        ));
    }
    let (k, bytes) = summary.downloaded();
    out.push_str(&format!(
        "{} artifact(s) in {}: {} downloaded ({}), {} already in the store\n",
        recipe.artifacts.len(),
        recipe.file,
        k,
        mb(bytes),
        recipe.artifacts.len() - k
    ));
    if a.prune {
        out.push_str(&format!(
            "pruned {pruned} content(s) no recipe entry names ({})\n",
            mb(pruned_bytes)
        ));
    }
    out.push_str(&format!(
        "store {}: {} content(s), {}{}\n",
        s.store.dir().display(),
        objects.len(),
        mb(total),
        if stale.is_empty() {
            String::new()
        } else {
            format!(
                "; {} of them ({}) not named by this recipe (--prune removes them)",
                stale.len(),
                mb(stale.iter().map(|(_, n)| n).sum())
            )
        }
    ));
    crate::render::output::write(None, out.as_bytes())?;
    if !s.quiet {
        eprintln!(
            "fpgate: corpus fetch done in {:.1}s",
            started.elapsed().as_secs_f64()
        );
    }
    Ok(Exit::Pass)
}

/// Bytes as megabytes with one decimal (bytes below 100 KB).
pub fn mb(n: u64) -> String {
    if n < 100_000 {
        format!("{n} bytes")
    } else {
        format!("{:.1} MB", n as f64 / 1e6)
    }
}
