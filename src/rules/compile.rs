//! Rule files to a `Ruleset`: read and parse every source (includes
//! through the sandbox), declare the standard externals the rules use,
//! compile (or load the compiled set from the cache, or validate an edit
//! without compiling what did not change), and describe every rule.

use super::build::{Job, LazyRules};
use super::compiler::hash_context;
use super::files::read_rule_file;
use super::source::{self, SourceInfo};
use super::{
    CompileOptions, Define, RuleFile, RuleInfo, RuleKey, RulePath, Ruleset, Source,
    STANDARD_EXTERNALS,
};
use crate::diagnostic::Diagnostic;
use crate::error::Result;
use crate::store::Lookup;
use crate::util::hex::hex;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use yara_x::Rules;

/// Compile the rule files under `paths` (each into its namespace). Any
/// compile error is `Error::Compile` (exit 2).
pub fn compile(label: &'static str, paths: &[RulePath], opts: &CompileOptions) -> Result<Ruleset> {
    let files: Vec<RuleFile> = super::files::collect_namespaced(paths, &opts.extensions)?
        .into_iter()
        .map(|(namespace, f)| RuleFile {
            shown: f.display().to_string(),
            disk: f,
            namespace,
        })
        .collect();
    let shown: Vec<String> = paths.iter().map(RulePath::to_string).collect();
    let dirs: Vec<PathBuf> = paths.iter().map(|p| p.path.clone()).collect();
    compile_files(
        label,
        shown,
        &files,
        &crate::rules::includes::roots(&dirs),
        opts,
    )
}

/// Compile `files` (namespace by namespace, in order).
/// `roots`: the directories `include` may read from (see `includes`).
pub fn compile_files(
    label: &'static str,
    paths: Vec<String>,
    files: &[RuleFile],
    roots: &[PathBuf],
    opts: &CompileOptions,
) -> Result<Ruleset> {
    let (sources, include_dirs) = read_sources(files, roots, opts)?;
    let (declared_std, per_file_externals) = externals(&sources, opts);
    let (rules, warnings) = compiled(
        crate::rules::build::Job {
            label,
            sources: sources.iter().filter(|s| !s.included).cloned().collect(),
            include_dirs,
            opts: opts.clone(),
            declared_std: declared_std.clone(),
            roots: roots.to_vec(),
            key: compiled_key(&sources, opts, &declared_std),
        },
        opts,
    )?;
    let info = rule_info(&sources);
    let fingerprint = ruleset_fingerprint(&info, &opts.defines);
    let cache = crate::rules::keys::compute(&sources, &info, &per_file_externals, opts);
    let evidence = crate::rules::evidence::Evidence::new(
        sources.iter().flat_map(|s| {
            s.info.rules.iter().map(move |r| {
                (
                    (s.namespace.clone(), r.identifier.clone()),
                    s.bytes.as_slice(),
                    r.patterns.as_slice(),
                )
            })
        }),
        opts.relaxed_re_syntax,
    );
    Ok(Ruleset {
        label,
        paths,
        files: files.iter().map(|f| f.shown.clone()).collect(),
        rules,
        evidence,
        info,
        warnings,
        fingerprint,
        per_file_externals,
        declared_std,
        cache,
        sources,
    })
}

/// Read and parse the top-level files, then the files they include (checked
/// by the include sandbox, namespace by namespace: an included file's rules
/// are in the namespace of the file that includes it). Returns the sources
/// and the include dirs.
fn read_sources(
    files: &[RuleFile],
    roots: &[PathBuf],
    opts: &CompileOptions,
) -> Result<(Vec<Source>, Vec<PathBuf>)> {
    use rayon::prelude::*;
    let bytes: Vec<Vec<u8>> = files
        .par_iter()
        .map(|f| read_rule_file(&f.disk, &f.shown))
        .collect::<Result<_>>()?;
    let infos = {
        let refs: Vec<&[u8]> = bytes.iter().map(Vec::as_slice).collect();
        source::analyse_all(&refs, opts.cache_dir.as_deref())
    };
    let mut sources: Vec<Source> = files
        .iter()
        .zip(bytes)
        .zip(infos)
        .map(|((f, bytes), info)| Source {
            origin: f.shown.clone(),
            namespace: f.namespace.clone(),
            bytes,
            info,
            included: false,
        })
        .collect();
    let include_dirs = crate::rules::includes::include_dirs(files.iter().map(|f| f.disk.as_path()));
    let mut included = Vec::new();
    let mut at = 0;
    while at < files.len() {
        let ns = &files[at].namespace;
        let end = at
            + files[at..]
                .iter()
                .take_while(|f| &f.namespace == ns)
                .count();
        let tops: Vec<(PathBuf, String, &SourceInfo)> = files[at..end]
            .iter()
            .zip(&sources[at..end])
            .map(|(f, s)| (f.disk.clone(), f.shown.clone(), &s.info))
            .collect();
        let plan = crate::rules::includes::check(&tops, &include_dirs, roots)?;
        included.extend(plan.included.into_iter().map(|i| Source {
            origin: i.origin,
            namespace: ns.clone(),
            bytes: i.bytes,
            info: i.info,
            included: true,
        }));
        at = end;
    }
    sources.extend(included);
    Ok((sources, include_dirs))
}

/// The standard externals the sources use and the user did not define
/// (declared with an empty default), and those of them fpgate sets per
/// scanned file.
fn externals(
    sources: &[Source],
    opts: &CompileOptions,
) -> (BTreeSet<&'static str>, BTreeSet<&'static str>) {
    let used: BTreeSet<&str> = sources
        .iter()
        .flat_map(|s| s.info.identifiers.iter().map(String::as_str))
        .collect();
    let user_defined: BTreeSet<&str> = opts.defines.iter().map(|d| d.name.as_str()).collect();
    let declared_std: BTreeSet<&'static str> = STANDARD_EXTERNALS
        .iter()
        .copied()
        .filter(|ext| used.contains(ext) && !user_defined.contains(ext))
        .collect();
    let per_file = declared_std
        .iter()
        .copied()
        .filter(|e| *e != "owner")
        .collect();
    (declared_std, per_file)
}

/// The compiled rules, built when a scan first needs them, and the
/// compiler's warnings. An unchanged ruleset (every byte of every file,
/// included files too, the definitions, the versions) is loaded from the
/// cache instead of compiled; an edited one is validated without compiling
/// what did not change (see `build`).
fn compiled(job: Job, opts: &CompileOptions) -> Result<(LazyRules, Vec<Diagnostic>)> {
    let cached =
        opts.cache_dir
            .as_ref()
            .and_then(|dir| match crate::store::compiled_get(dir, &job.key) {
                Lookup::Hit((r, w)) => {
                    let warnings: Vec<Diagnostic> = serde_json::from_slice(&w).ok()?;
                    Some((r, warnings))
                }
                Lookup::Miss => None,
                Lookup::Damaged => {
                    eprintln!(
                        "fpgate: cache {}: damaged compiled rules ignored (compiling again)",
                        dir.display()
                    );
                    None
                }
            });
    if let Some((bytes, warnings)) = cached {
        let rules = LazyRules::later(move || {
            Rules::deserialize(&bytes)
                .or_else(|_| job.full().map(|r| r.0))
                .map_err(|e| e.to_string())
        });
        return Ok((rules, warnings));
    }
    match job.validate() {
        Some(warnings) => {
            let rules =
                LazyRules::later(move || job.full().map(|r| r.0).map_err(|e| e.to_string()));
            Ok((rules, warnings))
        }
        None => {
            let (rules, warnings) = job.full()?;
            Ok((LazyRules::ready(rules), warnings))
        }
    }
}

/// What the report says of each rule, from the parser: the same values the
/// compiler stores (it converts the same syntax tree).
fn rule_info(sources: &[Source]) -> BTreeMap<RuleKey, RuleInfo> {
    let mut info = BTreeMap::new();
    for s in sources {
        for r in &s.info.rules {
            let key = (s.namespace.clone(), r.identifier.clone());
            info.entry(key.clone()).or_insert_with(|| RuleInfo {
                namespace: key.0,
                identifier: key.1,
                source: Some(s.origin.clone()),
                line: Some(r.line),
                tags: r.tags.clone(),
                description: r.description.clone(),
                author: r.author.clone(),
                fingerprint: Some(r.fingerprint.clone()),
            });
        }
    }
    info
}

/// The compiled-rules cache key: versions, every file's name and bytes
/// (included files too), the definitions and the declared externals.
fn compiled_key(
    sources: &[Source],
    opts: &CompileOptions,
    declared_std: &BTreeSet<&'static str>,
) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(format!(
        "fpgate {} yara-x {}\n",
        env!("CARGO_PKG_VERSION"),
        yara_x::VERSION
    ));
    for s in sources {
        h.update([s.included as u8]);
        // The namespace only when not the default: keys of sets without
        // namespaces stay what they were.
        if s.namespace != super::DEFAULT_NAMESPACE {
            h.update(format!("namespace {}\n", s.namespace));
        }
        h.update((s.origin.len() as u64).to_le_bytes());
        h.update(s.origin.as_bytes());
        h.update((s.bytes.len() as u64).to_le_bytes());
        h.update(&s.bytes);
    }
    hash_context(&mut h, opts, declared_std);
    h.finalize().into()
}

/// Hash over every rule's fingerprint and the external definitions: equal
/// for two rulesets that differ only in comments, layout or file split.
fn ruleset_fingerprint(info: &BTreeMap<RuleKey, RuleInfo>, defines: &[Define]) -> String {
    let mut h = Sha256::new();
    for ((ns, id), r) in info {
        h.update(format!(
            "{ns}:{id}={}\n",
            r.fingerprint.as_deref().unwrap_or("?")
        ));
    }
    for d in defines {
        h.update(format!(
            "define {}={}\n",
            d.name,
            serde_json::to_string(&d.value).unwrap_or_default()
        ));
    }
    hex(&h.finalize())
}
