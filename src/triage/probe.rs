//! Running rules fpgate writes itself (one pattern alone, a rule with a
//! pattern taken out, a narrowed rule) over corpus files, through the same
//! path as any scan: compiled as files of a ruleset (each unit in its own
//! namespace), scanned by the engine with fail-closed reading and the
//! timeout, and answered from the results cache when the same rule text
//! already ran on the same content.

use crate::corpus::CorpusFile;
use crate::engine::{self, Outcome, ScanOptions};
use crate::error::{Error, Result};
use crate::rules::{CompileOptions, RuleFile, RuleKey};
use crate::store::Cache;
use std::collections::{BTreeSet, HashMap};
use std::path::Path;

/// One unit: a namespace of its own and its source text.
#[derive(Debug, Clone)]
pub struct Unit {
    pub namespace: String,
    pub text: String,
}

/// What the probe found, file by file (the order of the files given).
#[derive(Debug, Default)]
pub struct Found {
    /// Per file: the (namespace, rule) that matched it, or `None` when the
    /// file could not be scanned.
    pub files: Vec<Option<BTreeSet<RuleKey>>>,
    /// Files the results cache answered without a scan.
    pub from_cache: usize,
}

impl Found {
    /// Files that could not be scanned.
    pub fn unscanned(&self) -> usize {
        self.files.iter().filter(|f| f.is_none()).count()
    }

    /// Indices of the files `rule` matched.
    pub fn matched_by(&self, rule: &RuleKey) -> BTreeSet<usize> {
        self.files
            .iter()
            .enumerate()
            .filter(|(_, f)| f.as_ref().is_some_and(|m| m.contains(rule)))
            .map(|(i, _)| i)
            .collect()
    }
}

/// Does `text` compile on its own (with the run's options)? The error,
/// if not: a narrowing that does not compile is never proposed.
pub fn compiles(text: &str, opts: &CompileOptions) -> std::result::Result<(), String> {
    let mut c = crate::rules::compiler::new_compiler(&[], opts, &Default::default())
        .map_err(|e| e.to_string())?;
    c.add_source(yara_x::SourceCode::from(text))
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Scan `files` with `units`. No units: nothing matches.
pub fn run(
    units: &[Unit],
    files: &[CorpusFile],
    compile: &CompileOptions,
    scan: &ScanOptions,
    cache_dir: Option<&Path>,
) -> Result<Found> {
    if units.is_empty() || files.is_empty() {
        return Ok(Found {
            files: vec![Some(BTreeSet::new()); files.len()],
            from_cache: 0,
        });
    }
    let dir = tempfile::Builder::new()
        .prefix("fpgate-probe-")
        .tempdir()
        .map_err(|e| Error::io("temporary directory", e.to_string()))?;
    let root = dir
        .path()
        .canonicalize()
        .map_err(|e| Error::io(dir.path().display(), e.to_string()))?;
    let mut rule_files = Vec::with_capacity(units.len());
    for u in units {
        let name = format!("{}.yar", u.namespace);
        let disk = root.join(&name);
        std::fs::write(&disk, &u.text).map_err(|e| Error::io(disk.display(), e.to_string()))?;
        rule_files.push(RuleFile {
            disk,
            shown: format!("fpgate-probe/{name}"),
            namespace: u.namespace.clone(),
        });
    }
    let shown = rule_files.iter().map(|f| f.shown.clone()).collect();
    let mut opts = compile.clone();
    opts.cache_dir = cache_dir.map(Path::to_path_buf);
    let rs = crate::rules::compile_files("probe", shown, &rule_files, &[root], &opts)?;
    let mut cache = cache_dir.and_then(|d| Cache::open(d).ok());
    let pre = match cache.as_mut() {
        Some(c) => crate::cache::stat_lookup(c, files, scan.follow_symlinks),
        None => vec![None; files.len()],
    };
    let sets = [&rs];
    let mut run = cache
        .as_mut()
        .map(|c| crate::cache::CacheRun::new(c, &sets));
    if let Some(r) = run.as_mut() {
        // Lines about rules compiled alone: nothing the user must act on.
        let _ = r.prepare_deltas(files, &pre, &opts);
    }
    let progress = indicatif::ProgressBar::hidden();
    let mut scan = scan.clone();
    scan.profile = false;
    let outcomes = engine::scan_files(
        files,
        pre,
        &sets,
        run.as_ref().map(|r| r as &dyn engine::Planner),
        &scan,
        &progress,
    );
    let mut from_cache = 0;
    if let (Some(c), Some(r)) = (cache.as_mut(), run) {
        let st = r.stats(Path::new("."));
        from_cache = st.files_unread + st.files_read_not_scanned;
        let mut writes = r.writes.into_inner().unwrap_or_else(|e| e.into_inner());
        c.write(&mut writes, files);
        let _ = c.take_notes();
    }
    Ok(Found {
        files: per_file(&outcomes),
        from_cache,
    })
}

/// Each file's matches; a duplicate content takes its carrier's.
fn per_file(outcomes: &[Outcome]) -> Vec<Option<BTreeSet<RuleKey>>> {
    let mut by_sha: HashMap<[u8; 32], BTreeSet<RuleKey>> = HashMap::new();
    for o in outcomes {
        if let Outcome::Scanned {
            sha256,
            hits: Some(hits),
            ..
        } = o
        {
            let set = by_sha.entry(*sha256).or_default();
            for h in hits.iter().flatten() {
                set.insert(h.rule.clone());
            }
        }
    }
    outcomes
        .iter()
        .map(|o| match o {
            Outcome::Scanned { sha256, .. } => {
                Some(by_sha.get(sha256).cloned().unwrap_or_default())
            }
            Outcome::Unscanned { .. } => None,
        })
        .collect()
}
