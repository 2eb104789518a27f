//! Rule files to a `Ruleset`: read and parse every source (includes
//! through the sandbox), declare the standard externals the rules use,
//! compile (or load the compiled set from the cache, or validate an edit
//! without compiling what did not change), and describe every rule.

use super::build::{Files, Job, LazyRules, Link};
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
    compile_linked(label, paths, opts, Link::Alone)
}

/// `compile`, linked to another compile running beside it (a gate's
/// candidate and baseline; see `build::Reference`).
pub fn compile_linked(
    label: &'static str,
    paths: &[RulePath],
    opts: &CompileOptions,
    link: Link,
) -> Result<Ruleset> {
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
    compile_files_linked(
        label,
        shown,
        &files,
        &crate::rules::includes::roots(&dirs),
        opts,
        link,
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
    compile_files_linked(label, paths, files, roots, opts, Link::Alone)
}

/// `compile_files`, linked (see `compile_linked`).
pub fn compile_files_linked(
    label: &'static str,
    paths: Vec<String>,
    files: &[RuleFile],
    roots: &[PathBuf],
    opts: &CompileOptions,
    link: Link,
) -> Result<Ruleset> {
    let (mut sources, include_dirs, later) = read_sources(files, roots, opts)?;
    if let Link::Leads(tell) = link {
        tell(std::sync::Arc::new(Files::of(&sources)));
    }
    // Exact although `later` is not parsed yet: a file parsed later names
    // no standard external (see `source::needed_before_compile`).
    let (declared_std, per_file_externals) = externals(&sources, opts);
    let job = Job {
        label,
        sources: sources.iter().filter(|s| !s.included).cloned().collect(),
        include_dirs,
        opts: opts.clone(),
        declared_std: declared_std.clone(),
        roots: roots.to_vec(),
        key: compiled_key(&sources, opts, &declared_std),
    };
    let (rules, warnings) = match later {
        Some(later) => overlapped(job, &mut sources, later, opts)?,
        None => compiled(job, opts, link)?,
    };
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

/// The top-level files whose parse waits: their indices in the sources.
struct Later(Vec<usize>);

/// Read and parse the top-level files, then the files they include (checked
/// by the include sandbox, namespace by namespace: an included file's rules
/// are in the namespace of the file that includes it). Returns the sources
/// and the include dirs.
///
/// On a cold parse (no cache, or the cache knows none of the files), the
/// files the compile does not depend on are left unparsed (`Later`): they
/// are parsed while yara-x compiles (`overlapped`). Their `info` is empty
/// until then, which is exact for what happens before the compile: such a
/// file has no `include` and names no standard external.
fn read_sources(
    files: &[RuleFile],
    roots: &[PathBuf],
    opts: &CompileOptions,
) -> Result<(Vec<Source>, Vec<PathBuf>, Option<Later>)> {
    use rayon::prelude::*;
    let bytes: Vec<Vec<u8>> = files
        .par_iter()
        .map(|f| read_rule_file(&f.disk, &f.shown))
        .collect::<Result<_>>()?;
    let (infos, later) = {
        let refs: Vec<&[u8]> = bytes.iter().map(Vec::as_slice).collect();
        let known = source::lookup(&refs, opts.cache_dir.as_deref());
        let cold = known.iter().all(Option::is_none) && !opts.parse_first;
        let wait: Vec<bool> = refs
            .par_iter()
            .map(|b| !cold || source::needed_before_compile(b))
            .collect();
        let later: Vec<usize> = (0..refs.len()).filter(|&i| !wait[i]).collect();
        // Parse now what the compile waits for (the parses of `later`
        // stay empty); or everything, when nothing waits.
        let now: Vec<&[u8]> = (0..refs.len())
            .filter(|&i| wait[i])
            .map(|i| refs[i])
            .collect();
        let now_known: Vec<Option<SourceInfo>> = known
            .into_iter()
            .zip(&wait)
            .filter(|(_, w)| **w)
            .map(|(k, _)| k)
            .collect();
        let finish = || source::finish(&now, now_known, opts.cache_dir.as_deref(), true);
        // A gate's baseline parses beside the candidate's compile, below
        // its priority (see `CompileOptions::parse_first`).
        let mut parsed = match crate::util::background_pool().filter(|_| opts.parse_first) {
            Some(pool) => pool.install(finish),
            None => finish(),
        }
        .into_iter();
        let infos: Vec<SourceInfo> = wait
            .iter()
            .map(|w| {
                if *w {
                    parsed.next().unwrap_or_default()
                } else {
                    SourceInfo::default()
                }
            })
            .collect();
        (infos, (!later.is_empty()).then_some(Later(later)))
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
    Ok((sources, include_dirs, later))
}

/// The cold compile: yara-x compiles the whole set on this thread while the
/// files in `later` are parsed on the others (the parse is needed only to
/// describe the rules: lines, fingerprints, keys). The compiler's warnings
/// are placed in their rules once the parse is in, and only then kept in
/// the cache, so they are the same as those of `compiled`. A compiled set
/// the cache already holds is used as `compiled` uses it.
fn overlapped(
    mut job: Job,
    sources: &mut [Source],
    later: Later,
    opts: &CompileOptions,
) -> Result<(LazyRules, Vec<Diagnostic>)> {
    let cache_dir = opts.cache_dir.as_deref();
    let parse = |sources: &[Source]| {
        let refs: Vec<&[u8]> = later
            .0
            .iter()
            .map(|&i| sources[i].bytes.as_slice())
            .collect();
        let none = vec![None; refs.len()];
        // Below the compiler's priority: the compiler keeps a core of its
        // own, the parse takes what it leaves.
        match crate::util::background_pool() {
            Some(pool) => pool.install(|| source::finish(&refs, none, cache_dir, true)),
            None => {
                crate::util::background_thread();
                source::finish(&refs, none, cache_dir, false)
            }
        }
    };
    let fill = |sources: &mut [Source], infos: Vec<SourceInfo>| {
        for (&i, info) in later.0.iter().zip(infos) {
            sources[i].info = info;
        }
    };
    let in_cache = cache_dir.is_some_and(|dir| crate::store::compiled_exists(dir, &job.key));
    if in_cache {
        let infos = parse(sources);
        fill(&mut job.sources, infos.clone());
        fill(sources, infos);
        return compiled(job, opts, Link::Alone);
    }
    let (full, infos) = std::thread::scope(|scope| {
        let shared: &[Source] = sources;
        let parsing = scope.spawn(move || parse(shared));
        let full = job.compile();
        let infos = parsing.join();
        (full, infos)
    });
    let infos = match infos {
        Ok(i) => i,
        Err(_) => return Err(crate::error::Error::internal("rule parse panicked")),
    };
    fill(&mut job.sources, infos.clone());
    fill(sources, infos);
    let place = |ws: &mut Vec<Diagnostic>| {
        for w in ws.iter_mut() {
            super::compiler::attach_rule(w, &job.sources);
        }
    };
    match full {
        Ok((rules, mut warnings)) => {
            place(&mut warnings);
            job.keep(&rules, &warnings);
            Ok((LazyRules::ready(rules), warnings))
        }
        Err(crate::error::Error::Compile {
            ruleset,
            errors,
            mut warnings,
        }) => {
            place(&mut warnings);
            Err(crate::error::Error::Compile {
                ruleset,
                errors,
                warnings,
            })
        }
        Err(e) => Err(e),
    }
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
fn compiled(job: Job, opts: &CompileOptions, link: Link) -> Result<(LazyRules, Vec<Diagnostic>)> {
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
    // Without its compiled form, a set validated before (same `job.key`:
    // every byte, the definitions, the externals, the versions) is valid,
    // with the same warnings; the complete rules are built only if a scan
    // needs them.
    let validated = |job: &Job| {
        let dir = opts.cache_dir.as_ref()?;
        let w = crate::store::small_get(dir, VALIDATED, &[job.key]).pop()??;
        serde_json::from_slice::<Vec<Diagnostic>>(&w).ok()
    };
    if let Some(warnings) = validated(&job) {
        return Ok((build_later(job), warnings));
    }
    // Files identical to another set's that compiled in full (a gate's
    // candidate): their patterns are not compiled again.
    let following = match link {
        Link::Follows(lead) => job.validate_following(lead)?,
        _ => None,
    };
    let valid = following.or_else(|| job.validate());
    match valid {
        Some(warnings) => {
            if let (Some(dir), Ok(w)) = (&opts.cache_dir, serde_json::to_vec(&warnings)) {
                crate::store::small_put(dir, VALIDATED, &[(job.key, w)]);
            }
            Ok((build_later(job), warnings))
        }
        None => {
            let (rules, warnings) = job.full()?;
            Ok((LazyRules::ready(rules), warnings))
        }
    }
}

/// The cache domain of sets validated without being compiled in full.
const VALIDATED: &str = "validated-set";

/// The complete rules, compiled when a scan first needs them (a build that
/// fails then leaves the files it was needed for unscanned).
fn build_later(job: Job) -> LazyRules {
    LazyRules::later(move || job.full().map(|r| r.0).map_err(|e| e.to_string()))
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Everything a compile says of a ruleset, as text to compare.
    fn described(rs: &Ruleset) -> String {
        let keys = rs
            .cache
            .as_ref()
            .map(|k| format!("{:?}", k.rules.iter().map(|r| r.efp).collect::<Vec<_>>()))
            .unwrap_or_else(|e| e.clone());
        let infos: Vec<String> = rs
            .sources
            .iter()
            .map(|s| serde_json::to_string(&s.info).unwrap())
            .collect();
        format!(
            "{:?}\n{}\n{}\n{:?}\n{:?}\n{}\n{:?}",
            rs.info,
            serde_json::to_string(&rs.warnings).unwrap(),
            rs.fingerprint,
            rs.declared_std,
            rs.per_file_externals,
            keys,
            infos
        )
    }

    #[test]
    fn parsing_beside_the_compiler_describes_the_set_as_parsing_first() {
        let d = tempfile::tempdir().unwrap();
        let w = |n: &str, t: &str| std::fs::write(d.path().join(n), t).unwrap();
        // Parsed while yara-x compiles: no include, no standard external;
        // one warning to place in its rule.
        w(
            "a.yar",
            "rule Plain { strings: $a = \"abc\" condition: $a }\n\
             rule Warned {\n strings: $b = { 4D 5A }\n condition: $b and 2\n}\n",
        );
        // Parsed before: names a standard external; includes a file.
        w(
            "b.yar",
            "rule ByName { condition: filename == \"x.exe\" and 1 }\n",
        );
        w(
            "c.yar",
            "include \"helper.inc\"\nrule UsesHelper { condition: Helper }\n",
        );
        w(
            "helper.inc",
            "private rule Helper { strings: $h = \"zz\" condition: $h }\n",
        );
        let a = std::fs::read(d.path().join("a.yar")).unwrap();
        assert!(!source::needed_before_compile(&a));
        let paths = [RulePath::plain(d.path())];

        // No cache: the cold parse, beside the compiler.
        let cold = compile("candidate", &paths, &CompileOptions::default()).unwrap();
        assert_eq!(cold.warnings.len(), 3, "{:?}", cold.warnings);
        assert!(cold
            .warnings
            .iter()
            .any(|w| w.rule.as_deref() == Some("Warned")));
        assert!(cold
            .warnings
            .iter()
            .any(|w| w.rule.as_deref() == Some("ByName")));
        assert!(cold.declared_std.contains("filename"));

        // A cache: the first compile is cold (beside the compiler), the
        // second finds every parse in the cache and parses before compiling.
        let cache = tempfile::tempdir().unwrap();
        let opts = CompileOptions {
            cache_dir: Some(cache.path().to_path_buf()),
            ..CompileOptions::default()
        };
        let first = compile("candidate", &paths, &opts).unwrap();
        let known = {
            let refs: Vec<&[u8]> = first.sources.iter().map(|s| s.bytes.as_slice()).collect();
            source::lookup(&refs, Some(cache.path()))
        };
        assert!(
            known.iter().any(Option::is_some),
            "parses kept in the cache"
        );
        let warm = compile("candidate", &paths, &opts).unwrap();
        assert_eq!(described(&cold), described(&first));
        assert_eq!(described(&cold), described(&warm));
        // And the compiled rules agree: each set finds the same rules.
        let data = b"MZ abc zz";
        let hits = |rs: &Ruleset| {
            let mut s = yara_x::Scanner::new(rs.rules.get().unwrap());
            s.set_global("filename", "x.exe").unwrap();
            let r = s.scan(data).unwrap();
            let mut v: Vec<String> = r
                .matching_rules()
                .map(|r| r.identifier().to_string())
                .collect();
            v.sort();
            v
        };
        assert_eq!(hits(&cold), ["ByName", "Plain", "UsesHelper", "Warned"]);
        assert_eq!(hits(&cold), hits(&warm));
    }
}
