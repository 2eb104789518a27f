//! Where the corpus recipe and its store are, for runs (`--recipe`,
//! `corpus.recipe`) and for `corpus fetch` / `corpus add`.
//!
//! A recipe the config names must lie in the config's checkout (it is part
//! of the change under review; `gate` with a base revision reads it as the
//! base has it). The store may be anywhere: only files whose sha256 is a
//! pin of the recipe are ever read from it, each verified before use.

use super::config::Config;
use crate::cli::RecipeArgs;
use crate::corpus::recipe::{self, Recipe};
use crate::corpus::store::Store;
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// A run's recipe: the parsed file and the store its artifacts are in.
#[derive(Debug, Clone)]
pub struct RecipeRun {
    /// The file as given or configured (a base revision's text is parsed
    /// under the name `REF:path`).
    pub path: PathBuf,
    pub recipe: Recipe,
    pub store: Store,
}

/// The recipe of a run: the flag's; else, unless `--corpus` was given (the
/// command line then says what the corpus is), the config's.
pub fn run_recipe_path(
    flag: Option<&Path>,
    corpus_flag: bool,
    cfg: &Config,
) -> Result<Option<PathBuf>> {
    if let Some(p) = flag {
        return Ok(Some(p.to_path_buf()));
    }
    if corpus_flag {
        return Ok(None);
    }
    cfg.corpus
        .recipe
        .as_ref()
        .map(|p| cfg.confined_file(p, "corpus.recipe"))
        .transpose()
}

/// The store: the flag's (or FPGATE_STORE), the config's `corpus.store`,
/// else `corpus-store` in the results cache directory (`--cache`, the
/// config's `scan.cache`, the default cache directory).
pub fn store_dir(flag: Option<&Path>, cache_flag: Option<&Path>, cfg: &Config) -> Result<PathBuf> {
    if let Some(p) = flag {
        return Ok(p.to_path_buf());
    }
    if let Some(p) = &cfg.corpus.store {
        return Ok(cfg.resolve(p));
    }
    let cache = cache_flag
        .map(Path::to_path_buf)
        .or_else(|| match &cfg.scan.cache {
            Some(toml::Value::String(d)) => Some(cfg.resolve(Path::new(d))),
            _ => crate::store::default_dir(),
        });
    cache
        .map(|d| d.join(crate::corpus::store::DEFAULT_SUBDIR))
        .ok_or_else(|| {
            Error::usage("no directory for the corpus store: give --store DIR (or set HOME)")
        })
}

/// Load a run's recipe (from `text` when it was read at a base revision).
pub fn load(path: &Path, text: Option<&str>, store: PathBuf) -> Result<RecipeRun> {
    let recipe = match text {
        Some(t) => recipe::parse(t, path)?,
        None => recipe::load(path)?,
    };
    Ok(RecipeRun {
        path: path.to_path_buf(),
        recipe,
        store: Store::new(store),
    })
}

/// The settings of `corpus fetch` and `corpus add`.
#[derive(Debug, Clone)]
pub struct RecipeCommand {
    pub path: PathBuf,
    pub store: Store,
    pub timeout: std::time::Duration,
    pub quiet: bool,
}

impl RecipeCommand {
    /// The recipe: `--recipe`, else `corpus.recipe`, else
    /// `fpgate-corpus.toml` beside the config (or in the current directory).
    pub fn of(a: &RecipeArgs) -> Result<RecipeCommand> {
        let cfg = Config::load(a.config.config.as_deref(), a.config.no_config)?;
        let path = match (&a.recipe, &cfg.corpus.recipe) {
            (Some(p), _) => p.clone(),
            (None, Some(p)) => cfg.confined_file(p, "corpus.recipe")?,
            (None, None) => cfg.resolve(Path::new(recipe::FILE_NAME)),
        };
        Ok(RecipeCommand {
            path,
            store: Store::new(store_dir(a.store.as_deref(), a.cache.as_deref(), &cfg)?),
            timeout: std::time::Duration::from_secs(a.timeout),
            quiet: a.quiet,
        })
    }
}
