//! The settings of the commands beside a run: `merge` (partial reports
//! into one), `corpus index` (the lock) and `exceptions add`.

use super::config::Config;
use super::{date, exceptions_file, history_options, output, recipe, DEFAULT_MAX_FILE_SIZE};
use crate::cli::{ExceptionsAddArgs, IndexArgs, MergeArgs};
use crate::corpus::WalkOptions;
use crate::error::{Error, Result};
use crate::render::Output;
use crate::verdict::exceptions;
use std::path::PathBuf;

/// The settings of `merge`.
#[derive(Debug, Clone)]
pub struct Merge {
    pub partials: Vec<PathBuf>,
    pub output: Output,
    pub history: crate::triage::history::HistoryOptions,
}

impl Merge {
    pub fn of(a: &MergeArgs) -> Result<Merge> {
        Ok(Merge {
            partials: a.partials.clone(),
            output: output(&a.out)?,
            history: history_options(&a.history, a.cache.as_deref(), None),
        })
    }
}

/// The settings of `corpus index`.
#[derive(Debug, Clone)]
pub struct Index {
    pub corpus: Vec<PathBuf>,
    pub walk: WalkOptions,
    /// How archives' members are read (each at most `scan.max_file_size`).
    pub archives: crate::corpus::members::Archives,
    pub threads: usize,
    pub output: PathBuf,
    pub allow_incomplete: bool,
    /// The corpus recipe's artifacts, locked by their names.
    pub recipe: Option<recipe::RecipeRun>,
    /// `[[tiers.critical]]`: signed files are locked critical, with who
    /// signed them.
    pub tiers: Option<std::sync::Arc<super::tiers::TierRules>>,
}

impl Index {
    pub fn of(a: &IndexArgs) -> Result<Index> {
        let cfg = Config::load(a.config.config.as_deref(), a.config.no_config)?;
        let walk = cfg.walk_options(a.follow_symlinks, &a.critical, &a.exclude);
        // Members as a scan reads them: each at most scan.max_file_size.
        let member_bytes = match &cfg.scan.max_file_size {
            Some(s) => crate::cli::parse_size(s).map_err(|e| {
                Error::config(
                    cfg.file.as_deref(),
                    "scan.max_file_size",
                    format!("fpgate.toml: scan.max_file_size: {e}"),
                )
            })?,
            None => DEFAULT_MAX_FILE_SIZE,
        };
        let recipe_path = recipe::run_recipe_path(a.recipe.as_deref(), !a.corpus.is_empty(), &cfg)?;
        let recipe = recipe_path
            .map(|p| {
                let store = recipe::store_dir(a.store.as_deref(), None, &cfg)?;
                recipe::load(&p, None, store)
            })
            .transpose()?;
        let corpus = if recipe.is_some() && a.corpus.is_empty() && cfg.corpus.paths.is_empty() {
            Vec::new()
        } else {
            cfg.corpus_roots(&a.corpus)?
        };
        Ok(Index {
            corpus,
            recipe,
            tiers: super::tiers::rules(&cfg)?,
            archives: cfg.archives(a.no_archives, &walk, member_bytes)?,
            walk,
            threads: cfg.threads(a.threads),
            output: a.output.clone(),
            allow_incomplete: a.allow_incomplete,
        })
    }
}

/// The settings of `exceptions add`.
#[derive(Debug, Clone)]
pub struct ExceptionsAdd {
    pub from: PathBuf,
    pub file: PathBuf,
    pub expires: jiff::civil::Date,
}

impl ExceptionsAdd {
    pub fn of(a: &ExceptionsAddArgs) -> Result<ExceptionsAdd> {
        let cfg = Config::load(a.config.config.as_deref(), a.config.no_config)?;
        let (file, _) = exceptions_file(a.file.as_deref(), &cfg)?;
        let today = match a.today.as_deref() {
            Some(d) => date(d)?,
            None => exceptions::today(),
        };
        let expires = today
            .checked_add(jiff::Span::new().days(i64::from(a.days)))
            .map_err(|e| Error::usage(format!("--days {}: {e}", a.days)))?;
        Ok(ExceptionsAdd {
            from: a.from.clone(),
            file,
            expires,
        })
    }
}
