//! `fpgate corpus index`: hash the corpus and write its lock.

use crate::corpus;
use crate::corpus::lock;
use crate::engine::{self, Outcome, ScanOptions};
use crate::error::Result;
use crate::exit::Exit;
use crate::settings::Index;
use indicatif::ProgressBar;
use std::time::Duration;

pub fn run(a: &Index) -> Result<Exit> {
    let follow_symlinks = a.walk.follow_symlinks;
    let mut corpus = corpus::gather(
        &a.corpus,
        &a.walk,
        a.recipe.as_ref().map(|r| (&r.recipe, &r.store)),
    )?;
    let threads = a.threads;
    // No rules: the scan engine only reads, hashes and detects formats.
    let opts = ScanOptions {
        threads,
        timeout: Duration::from_secs(60),
        max_file_size: u64::MAX,
        follow_symlinks,
        profile: false,
        archives: std::sync::Arc::new(a.archives.clone()),
        signatures: a
            .tiers
            .clone()
            .map(|r| std::sync::Arc::new(crate::corpus::signature::Verdicts::new(r))),
    };
    let n = corpus.files.len();
    let scan = engine::scan_files_sharing(
        &corpus.files,
        Vec::new(),
        &[],
        None,
        None,
        &opts,
        engine::Expand {
            upto: n,
            ..Default::default()
        },
        &ProgressBar::hidden(),
    );
    let mut outcomes = scan.outcomes;
    let (_, added) = corpus::members::splice(&mut corpus, &mut outcomes, scan.members, n);
    if let Some(rules) = &a.tiers {
        crate::commands::pipeline::signed::apply(&mut corpus, &outcomes, rules, None, &opts);
    }

    let mut problems: Vec<String> = corpus
        .skipped
        .iter()
        .map(|u| {
            format!(
                "{} ({}: {})",
                crate::util::escape::term(&u.path),
                u.reason.as_str(),
                u.detail
            )
        })
        .collect();
    let mut ok = Vec::with_capacity(outcomes.len());
    for (f, o) in corpus.files.iter().zip(&outcomes) {
        match o {
            Outcome::Scanned { .. } => ok.push(true),
            Outcome::Unscanned { reason, detail, .. } => {
                ok.push(false);
                problems.push(format!(
                    "{} ({}: {detail})",
                    crate::util::escape::term(f.display()),
                    reason.as_str()
                ));
            }
        }
    }
    for p in &problems {
        eprintln!("fpgate: not indexed: {p}");
    }
    if !problems.is_empty() && !a.allow_incomplete {
        eprintln!(
            "fpgate: {} corpus entr(y/ies) could not be indexed; no lock written (use --allow-incomplete to write it anyway)",
            problems.len()
        );
        return Ok(Exit::Incomplete);
    }
    let entries = lock::entries(&corpus, &engine::contents(&outcomes, &ok))?;
    let l = lock::build(entries, a.archives.enabled);
    let mut text = serde_json::to_string_pretty(&l).expect("lock serialises");
    text.push('\n');
    crate::render::output::write(Some(&a.output), text.as_bytes())?;
    let critical_n = l
        .files
        .iter()
        .filter(|e| e.tier == crate::corpus::Tier::Critical.as_str())
        .count();
    let members = if a.archives.enabled {
        format!(
            ", {} of them members of {} archives",
            added.members, added.containers
        )
    } else {
        ", archives as files only (--no-archives)".to_string()
    };
    eprintln!(
        "fpgate: locked {} files ({} critical{members}), corpus hash {} -> {}",
        l.files.len(),
        critical_n,
        l.corpus_hash,
        a.output.display()
    );
    Ok(if problems.is_empty() {
        Exit::Pass
    } else {
        Exit::Incomplete
    })
}
