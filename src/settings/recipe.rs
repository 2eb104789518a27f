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
use crate::verdict::policy_changes::{Direction, SettingChange};
use std::collections::{BTreeMap, BTreeSet};
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

/// The corpus recipe's changes against the base's, artifact by artifact
/// (matched by name), as settings `recipe.artifact "NAME"`: an artifact
/// dropped, or a tier lowered, relaxes (its files are no longer checked, or
/// no longer block); one added or re-pinned is changed (the base's recipe is
/// what applies under review); a tier raised tightens. `head`'s lines are
/// where a change is shown, `base`'s for a dropped artifact.
pub fn recipe_changes(
    base: Option<&crate::corpus::recipe::Recipe>,
    head: Option<&crate::corpus::recipe::Recipe>,
) -> Vec<SettingChange> {
    use crate::corpus::recipe::Artifact;
    let empty = crate::corpus::recipe::Recipe::default();
    let (b, h) = (base.unwrap_or(&empty), head.unwrap_or(&empty));
    let by_name = |r: &'_ crate::corpus::recipe::Recipe| -> BTreeMap<String, Artifact> {
        r.artifacts
            .iter()
            .map(|a| (a.name.clone(), a.clone()))
            .collect()
    };
    let (before, after) = (by_name(b), by_name(h));
    let names: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    let tier = |a: &Artifact| if a.critical { "critical" } else { "standard" };
    let value = |a: &Artifact| {
        format!(
            "{} sha256 {} ({})",
            a.source.spelled(),
            &a.sha256[..12],
            tier(a)
        )
    };
    let mut out = Vec::new();
    for name in names {
        let (was, now) = (before.get(name), after.get(name));
        let (direction, detail, file, line) = match (was, now) {
            (Some(w), None) => (
                Direction::Relaxes,
                format!("artifact {name:?} dropped from the corpus recipe: its files are no longer checked"),
                b.file.clone(),
                w.line,
            ),
            (None, Some(n)) => (
                Direction::Changed,
                format!("artifact {name:?} added to the corpus recipe"),
                h.file.clone(),
                n.line,
            ),
            (Some(w), Some(n)) if w.sha256 != n.sha256 || w.source != n.source => (
                if w.critical && !n.critical { Direction::Relaxes } else { Direction::Changed },
                format!("artifact {name:?} re-pinned or moved to another source"),
                h.file.clone(),
                n.line,
            ),
            (Some(w), Some(n)) if w.critical != n.critical => (
                if n.critical { Direction::Tightens } else { Direction::Relaxes },
                format!("artifact {name:?}: tier {} -> {}", tier(w), tier(n)),
                h.file.clone(),
                n.line,
            ),
            _ => continue,
        };
        out.push(SettingChange {
            key: format!("recipe.artifact {name:?}"),
            before: was.map(value),
            after: now.map(value),
            direction,
            file: Some(file),
            line: Some(line),
            detail,
            blocking: false,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::policy_changes::Direction;

    #[test]
    fn recipe_artifacts_dropped_or_lowered_relax() {
        use crate::corpus::recipe::parse;
        let pin = |c: char| c.to_string().repeat(64);
        let entry = |name: &str, sha: char, tier: &str| {
            format!(
                "[[artifact]]\nname = {name:?}\nurl = \"https://m/{name}\"\nsha256 = \"{}\"\ntier = {tier:?}\n",
                pin(sha)
            )
        };
        let base = parse(
            &[
                entry("a", 'a', "critical"),
                entry("b", 'b', "standard"),
                entry("c", 'c', "critical"),
                entry("d", 'd', "standard"),
            ]
            .concat(),
            std::path::Path::new("HEAD:r.toml"),
        )
        .unwrap();
        let head = parse(
            &[
                entry("b", 'b', "critical"),
                entry("c", 'c', "standard"),
                entry("d", 'e', "standard"),
                entry("new", 'f', "standard"),
            ]
            .concat(),
            std::path::Path::new("r.toml"),
        )
        .unwrap();
        let got: Vec<(String, Direction, String, usize)> = recipe_changes(Some(&base), Some(&head))
            .into_iter()
            .map(|c| (c.key, c.direction, c.file.unwrap(), c.line.unwrap()))
            .collect();
        use Direction::*;
        assert_eq!(
            got,
            [
                (
                    "recipe.artifact \"a\"".to_string(),
                    Relaxes,
                    "HEAD:r.toml".to_string(),
                    1
                ),
                (
                    "recipe.artifact \"b\"".to_string(),
                    Tightens,
                    "r.toml".to_string(),
                    1
                ),
                (
                    "recipe.artifact \"c\"".to_string(),
                    Relaxes,
                    "r.toml".to_string(),
                    6
                ),
                (
                    "recipe.artifact \"d\"".to_string(),
                    Changed,
                    "r.toml".to_string(),
                    11
                ),
                (
                    "recipe.artifact \"new\"".to_string(),
                    Changed,
                    "r.toml".to_string(),
                    16
                ),
            ]
        );
    }
}
