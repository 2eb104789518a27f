//! Loading and compiling a ruleset (the candidate or the baseline).
//!
//! A ruleset is a list of rule files and directories. All files are compiled
//! into one namespace, as `yr scan` does, so rules may reference each other
//! across files and a duplicated rule name is an error. Compile errors and
//! warnings are kept exactly as yara-x renders them, for people (stderr) and
//! for machines (the JSON report).

pub mod build;
pub mod evidence;
pub mod gitref;
pub mod includes;
pub mod keys;
pub mod source;

use crate::diagnostic::Diagnostic;
use crate::error::{Error, Result};
use crate::rules::source::SourceInfo;
use crate::util::hex::hex;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use yara_x::{Compiler, Rules, SourceCode};

/// External variables that real rule sets (signature-base, LOKI, THOR) expect
/// the scanner to provide. Declared only when some rule uses them.
pub const STANDARD_EXTERNALS: &[&str] = &["filename", "filepath", "extension", "filetype", "owner"];

/// Externals whose value depends on the scanned path, not only on content.
pub const PATH_EXTERNALS: &[&str] = &["filename", "filepath", "extension"];

/// A `--define NAME=VALUE` external variable.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Define {
    pub name: String,
    pub value: DefineValue,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum DefineValue {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
}

impl std::str::FromStr for Define {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let (name, raw) = s
            .split_once('=')
            .ok_or_else(|| format!("`{s}` is not NAME=VALUE"))?;
        let valid = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(format!("`{name}` is not a valid YARA identifier"));
        }
        let value = if raw == "true" || raw == "false" {
            DefineValue::Bool(raw == "true")
        } else if let Ok(i) = raw.parse::<i64>() {
            DefineValue::Int(i)
        } else if let Ok(f) = raw.parse::<f64>().map_err(|_| ()).and_then(|f| {
            if raw.contains('.') {
                Ok(f)
            } else {
                Err(())
            }
        }) {
            DefineValue::Float(f)
        } else {
            // `"quoted"` values are strings with the quotes removed.
            let unq = raw
                .strip_prefix('"')
                .and_then(|r| r.strip_suffix('"'))
                .unwrap_or(raw);
            DefineValue::Str(unq.to_string())
        };
        Ok(Define {
            name: name.to_string(),
            value,
        })
    }
}

/// What the report says about each rule.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct RuleInfo {
    pub namespace: String,
    pub identifier: String,
    pub source: Option<String>,
    pub line: Option<usize>,
    pub tags: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// Fingerprint of the rule's normalised source (see `yarasrc`).
    pub fingerprint: Option<String>,
}

/// Key of a rule: (namespace, identifier).
pub type RuleKey = (String, String);

/// A compiled ruleset with everything the report needs to describe it.
pub struct Ruleset {
    pub label: &'static str,
    pub paths: Vec<String>,
    pub files: Vec<String>,
    /// Built when a scan first needs every rule (see `fastcompile`).
    pub rules: crate::rules::build::LazyRules,
    /// How a match's evidence is found (see `evidence`).
    pub evidence: crate::rules::evidence::Evidence,
    pub info: BTreeMap<RuleKey, RuleInfo>,
    pub warnings: Vec<Diagnostic>,
    pub fingerprint: String,
    /// Standard externals the sources use and fpgate sets per scanned file.
    pub per_file_externals: BTreeSet<&'static str>,
    /// Standard externals declared (with an empty default) for the sources.
    pub declared_std: BTreeSet<&'static str>,
    /// Per-rule cache keys, or why this ruleset cannot use the results cache.
    pub cache: std::result::Result<crate::rules::keys::RuleKeys, String>,
    /// Every source file, included files too: used to compile a subset of
    /// the rules.
    pub sources: Vec<Source>,
}

impl Ruleset {
    /// True when a rule's verdict may depend on the scanned path, so files
    /// with identical content must still be scanned once per path.
    pub fn path_dependent(&self) -> bool {
        self.per_file_externals
            .iter()
            .any(|e| PATH_EXTERNALS.contains(e))
    }

    pub fn rule_count(&self) -> usize {
        self.info.len()
    }
}

/// Options shared by both rulesets of a run.
#[derive(Debug, Clone, Default)]
pub struct CompileOptions {
    pub defines: Vec<Define>,
    /// Results cache directory: compiled rules are kept there too, keyed
    /// by every source byte, so an unchanged ruleset is not compiled again.
    pub cache_dir: Option<PathBuf>,
}

/// True for a rule file's extension (`.yar`, `.yara`, any case).
fn is_rule_name(p: &std::path::Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("yar") || e.eq_ignore_ascii_case("yara"))
}

/// Expand rule paths into a sorted list of rule files.
///
/// Nothing under a rule directory is skipped without a word: a symbolic
/// link named like a rule file is compiled when its target is a regular
/// file under the rule paths, and refused (exit 2) when it points outside
/// them, dangles or loops; a FIFO, socket or device named like a rule file
/// is refused; a linked directory that leads outside the rule paths is
/// refused. A file reached twice (a link to a rule file that is compiled
/// anyway) is compiled once, under its first name in sorted order.
pub fn collect_rule_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let roots = crate::rules::includes::roots(paths);
    let inside = |c: &std::path::Path| roots.iter().any(|r| c.starts_with(r));
    let mut files = BTreeSet::new();
    for p in paths {
        let meta = std::fs::metadata(p).map_err(|e| {
            Error::rule_file(p.display(), format!("rule path {}: {e}", p.display()))
        })?;
        if meta.is_dir() {
            let before = files.len();
            for entry in walkdir::WalkDir::new(p).sort_by_file_name() {
                let entry = entry.map_err(|e| {
                    Error::rule_file(p.display(), format!("rule path {}: {e}", p.display()))
                })?;
                let path = entry.path();
                let ft = entry.file_type();
                if ft.is_dir() {
                    continue;
                }
                if ft.is_symlink() {
                    let target = path.canonicalize().map_err(|e| {
                        Error::rule_file(
                            path.display(),
                            format!(
                                "rule path {}: a symbolic link that does not resolve ({e})",
                                path.display()
                            ),
                        )
                    });
                    let is_dir = std::fs::metadata(path).is_ok_and(|m| m.is_dir());
                    if !is_rule_name(path) && !is_dir {
                        continue;
                    }
                    let target = target?;
                    if !inside(&target) {
                        return Err(Error::rule_file(path.display(), format!(
                            "rule path {} is a symbolic link to {}, outside the rule paths; the gate would judge other rules than the ones that ship",
                            path.display(),
                            target.display()
                        )));
                    }
                    if is_dir {
                        continue; // its files are under the rule paths and walked there
                    }
                    if !std::fs::metadata(&target).is_ok_and(|m| m.is_file()) {
                        return Err(Error::rule_file(
                            path.display(),
                            format!(
                                "rule path {} links to {}, which is not a regular file",
                                path.display(),
                                target.display()
                            ),
                        ));
                    }
                    files.insert(path.to_path_buf());
                    continue;
                }
                if !is_rule_name(path) {
                    continue;
                }
                if !ft.is_file() {
                    return Err(Error::rule_file(
                        path.display(),
                        format!(
                            "rule path {} is not a regular file (a FIFO, socket or device)",
                            path.display()
                        ),
                    ));
                }
                files.insert(path.to_path_buf());
            }
            if files.len() == before {
                return Err(Error::rule_file(
                    p.display(),
                    format!(
                        "rule directory {} holds no *.yar or *.yara files",
                        p.display()
                    ),
                ));
            }
        } else if !meta.is_file() {
            return Err(Error::rule_file(
                p.display(),
                format!(
                    "rule path {} is not a regular file (a FIFO, socket or device)",
                    p.display()
                ),
            ));
        } else {
            files.insert(p.clone());
        }
    }
    // One file reached under two names is compiled once.
    let mut seen: std::collections::HashMap<PathBuf, PathBuf> = std::collections::HashMap::new();
    let mut out = Vec::new();
    for f in files {
        match f.canonicalize() {
            Ok(c) => match seen.get(&c) {
                Some(first) => eprintln!(
                    "fpgate: rule file {} is the same file as {}; compiled once",
                    f.display(),
                    first.display()
                ),
                None => {
                    seen.insert(c, f.clone());
                    out.push(f);
                }
            },
            Err(_) => out.push(f),
        }
    }
    Ok(out)
}

/// Read one rule file: a regular file of at most `MAX_RULE_FILE` bytes
/// (never a FIFO, which would block the read).
fn read_rule_file(f: &std::path::Path, shown: &str) -> Result<Vec<u8>> {
    use std::io::Read;
    let limit = crate::rules::includes::MAX_RULE_FILE;
    let meta = std::fs::metadata(f)
        .map_err(|e| Error::rule_file(shown, format!("cannot read rule file {shown}: {e}")))?;
    if !meta.is_file() {
        return Err(Error::rule_file(
            shown,
            format!("rule file {shown} is not a regular file"),
        ));
    }
    let mut bytes = Vec::new();
    std::fs::File::open(f)
        .and_then(|h| h.take(limit + 1).read_to_end(&mut bytes))
        .map_err(|e| Error::rule_file(shown, format!("cannot read rule file {shown}: {e}")))?;
    if bytes.len() as u64 > limit {
        return Err(Error::rule_file(
            shown,
            format!("rule file {shown} is larger than {} MiB", limit >> 20),
        ));
    }
    Ok(bytes)
}

/// Compile the rule files under `paths`. Any compile error is
/// `Error::Compile` (exit 2).
pub fn compile(label: &'static str, paths: &[PathBuf], opts: &CompileOptions) -> Result<Ruleset> {
    let files: Vec<(PathBuf, String)> = collect_rule_files(paths)?
        .into_iter()
        .map(|f| {
            let shown = f.display().to_string();
            (f, shown)
        })
        .collect();
    let shown: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    compile_files(
        label,
        shown,
        &files,
        &crate::rules::includes::roots(paths),
        opts,
    )
}

/// One source file of a ruleset: a top-level rule file, or a file reached
/// through `include`.
#[derive(Debug, Clone)]
pub struct Source {
    /// The name diagnostics and reports give it.
    pub origin: String,
    pub bytes: Vec<u8>,
    pub info: SourceInfo,
    pub included: bool,
}

/// Compile `files` (path on disk, name shown in reports and diagnostics).
/// `roots`: the directories `include` may read from (see `includes`).
pub fn compile_files(
    label: &'static str,
    paths: Vec<String>,
    files: &[(PathBuf, String)],
    roots: &[PathBuf],
    opts: &CompileOptions,
) -> Result<Ruleset> {
    use rayon::prelude::*;
    let bytes: Vec<Vec<u8>> = files
        .par_iter()
        .map(|(f, shown)| read_rule_file(f, shown))
        .collect::<Result<_>>()?;
    let infos = {
        let refs: Vec<&[u8]> = bytes.iter().map(Vec::as_slice).collect();
        source::analyse_all(&refs, opts.cache_dir.as_deref())
    };
    let mut sources: Vec<Source> = files
        .iter()
        .zip(bytes)
        .zip(infos)
        .map(|(((_, shown), bytes), info)| Source {
            origin: shown.clone(),
            bytes,
            info,
            included: false,
        })
        .collect();
    let tops: Vec<(PathBuf, String, &SourceInfo)> = files
        .iter()
        .zip(&sources)
        .map(|((f, shown), s)| (f.clone(), shown.clone(), &s.info))
        .collect();
    let plan = crate::rules::includes::check(&tops, roots)?;
    let top_names: Vec<String> = files.iter().map(|(_, s)| s.clone()).collect();
    sources.extend(plan.included.into_iter().map(|i| Source {
        origin: i.origin,
        bytes: i.bytes,
        info: i.info,
        included: true,
    }));

    let used: BTreeSet<&str> = sources
        .iter()
        .flat_map(|s| s.info.identifiers.iter().map(String::as_str))
        .collect();
    let user_defined: BTreeSet<&str> = opts.defines.iter().map(|d| d.name.as_str()).collect();

    let mut declared_std = BTreeSet::new();
    for ext in STANDARD_EXTERNALS {
        if used.contains(ext) && !user_defined.contains(ext) {
            declared_std.insert(*ext);
        }
    }
    let per_file_externals: BTreeSet<&'static str> = declared_std
        .iter()
        .copied()
        .filter(|e| *e != "owner")
        .collect();
    // An unchanged ruleset (every byte of every file, included files too,
    // the definitions, the versions) is loaded from the cache instead of
    // compiled; an edited one is validated without compiling what did not
    // change (see `fastcompile`). Either way the compiled rules are built
    // only when a scan needs them.
    let key = compiled_key(&sources, opts, &declared_std);
    let job = crate::rules::build::Job {
        label,
        sources: sources.iter().filter(|s| !s.included).cloned().collect(),
        include_dirs: plan.include_dirs.clone(),
        opts: opts.clone(),
        declared_std: declared_std.clone(),
        roots: roots.to_vec(),
        key,
    };
    let cached = opts.cache_dir.as_ref().and_then(|dir| {
        let (r, w) = crate::store::compiled_get(dir, &key)?;
        let warnings: Vec<Diagnostic> = serde_json::from_slice(&w).ok()?;
        Some((r, warnings))
    });
    let (rules, warnings) = match cached {
        Some((bytes, warnings)) => {
            let job = job.clone();
            let rules = crate::rules::build::LazyRules::later(move || {
                Rules::deserialize(&bytes)
                    .or_else(|_| job.full().map(|r| r.0))
                    .map_err(|e| e.to_string())
            });
            (rules, warnings)
        }
        None => match job.validate() {
            Some(warnings) => {
                let job = job.clone();
                let rules = crate::rules::build::LazyRules::later(move || {
                    job.full().map(|r| r.0).map_err(|e| e.to_string())
                });
                (rules, warnings)
            }
            None => {
                let (rules, warnings) = job.full()?;
                (crate::rules::build::LazyRules::ready(rules), warnings)
            }
        },
    };

    // What the report says of each rule, from the parser: the same values
    // the compiler stores (it converts the same syntax tree).
    let mut info = BTreeMap::new();
    for s in &sources {
        for r in &s.info.rules {
            let key = ("default".to_string(), r.identifier.clone());
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

    let fingerprint = ruleset_fingerprint(&info, &opts.defines);
    let cache = crate::rules::keys::compute(&sources, &info, &per_file_externals, opts);
    let evidence = crate::rules::evidence::Evidence::new(sources.iter().flat_map(|s| {
        s.info.rules.iter().map(move |r| {
            (
                r.identifier.as_str(),
                s.bytes.as_slice(),
                r.patterns.as_slice(),
            )
        })
    }));
    Ok(Ruleset {
        label,
        paths,
        files: top_names,
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

/// The rule a diagnostic lies in, by its file and line.
pub(crate) fn attach_rule(d: &mut Diagnostic, sources: &[Source]) {
    let (Some(file), Some(line)) = (d.file.as_deref(), d.line) else {
        return;
    };
    d.rule = sources
        .iter()
        .filter(|s| s.origin == file)
        .flat_map(|s| s.info.rules.iter())
        .find(|r| (r.line as u64..=r.end_line as u64).contains(&line))
        .map(|r| r.identifier.clone());
}

/// Compile with yara-x: the rules and their warnings, or every error.
/// Diagnostics that point at a file `allowed` refuses are not echoed.
pub(crate) fn compile_now(
    label: &'static str,
    sources: &[Source],
    include_dirs: &[PathBuf],
    opts: &CompileOptions,
    declared_std: &BTreeSet<&'static str>,
    allowed: &dyn Fn(&str) -> bool,
) -> Result<(Rules, Vec<Diagnostic>)> {
    let mut compiler = new_compiler(include_dirs, opts, declared_std)?;

    for s in sources.iter().filter(|s| !s.included) {
        // Errors are collected by the compiler; keep adding files so the user
        // sees every broken file at once, not one per run.
        let _ = compiler
            .add_source(SourceCode::from(s.bytes.as_slice()).with_origin(s.origin.as_str()));
    }
    let errors: Vec<Diagnostic> = compiler
        .errors()
        .iter()
        .map(|e| Diagnostic::from_yarax("error", e, allowed))
        .collect();
    let warnings: Vec<Diagnostic> = compiler
        .warnings()
        .iter()
        .map(|w| {
            let mut d = Diagnostic::from_yarax("warning", w, allowed);
            attach_rule(&mut d, sources);
            d
        })
        .collect();
    if !errors.is_empty() {
        return Err(Error::Compile {
            ruleset: label,
            errors,
            warnings,
        });
    }
    Ok((compiler.build(), warnings))
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
        h.update((s.origin.len() as u64).to_le_bytes());
        h.update(s.origin.as_bytes());
        h.update((s.bytes.len() as u64).to_le_bytes());
        h.update(&s.bytes);
    }
    hash_context(&mut h, opts, declared_std);
    h.finalize().into()
}

/// What besides the source text a compile depends on: the definitions and
/// the declared standard externals (part of every compile-related key).
pub(crate) fn hash_context(
    h: &mut Sha256,
    opts: &CompileOptions,
    declared_std: &BTreeSet<&'static str>,
) {
    h.update(serde_json::to_vec(&opts.defines).unwrap_or_default());
    for e in declared_std {
        h.update(format!("extern {e}\n"));
    }
}

/// A compiler with fpgate's settings: no colour, includes only from the
/// sandboxed directories, the `--define`s and the standard externals.
pub fn new_compiler<'a>(
    include_dirs: &[PathBuf],
    opts: &CompileOptions,
    declared_std: &BTreeSet<&'static str>,
) -> Result<Compiler<'a>> {
    let mut compiler = Compiler::new();
    compiler.colorize_errors(false);
    // Without include directories yara-x would look in the current
    // directory, outside the sandbox.
    for d in include_dirs {
        compiler.add_include_dir(d);
    }
    if include_dirs.is_empty() {
        compiler.enable_includes(false);
    }
    for d in &opts.defines {
        let r = match &d.value {
            DefineValue::Bool(b) => compiler.define_global(&d.name, *b),
            DefineValue::Int(i) => compiler.define_global(&d.name, *i),
            DefineValue::Float(f) => compiler.define_global(&d.name, *f),
            DefineValue::Str(s) => compiler.define_global(&d.name, s.as_str()),
        };
        r.map_err(|e| Error::usage(format!("--define {}: {e}", d.name)))?;
    }
    for ext in declared_std {
        compiler
            .define_global(ext, "")
            .map_err(|e| Error::internal(format!("external `{ext}`: {e}")))?;
    }
    Ok(compiler)
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

    #[test]
    fn define_parsing() {
        let d: Define = "a=1".parse().unwrap();
        assert_eq!(d.value, DefineValue::Int(1));
        let d: Define = "a=true".parse().unwrap();
        assert_eq!(d.value, DefineValue::Bool(true));
        let d: Define = "a=1.5".parse().unwrap();
        assert_eq!(d.value, DefineValue::Float(1.5));
        let d: Define = "a=\"x y\"".parse().unwrap();
        assert_eq!(d.value, DefineValue::Str("x y".into()));
        let d: Define = "owner=SYSTEM".parse().unwrap();
        assert_eq!(d.value, DefineValue::Str("SYSTEM".into()));
        assert!("noequals".parse::<Define>().is_err());
        assert!("1bad=2".parse::<Define>().is_err());
        assert!("inf=nan".parse::<Define>().is_ok());
    }

    #[test]
    fn compile_reports_errors_with_location() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("bad.yar");
        std::fs::write(
            &f,
            "rule ok { condition: true }\nrule bad { condition: nope }\n",
        )
        .unwrap();
        match compile("candidate", &[f], &CompileOptions::default()) {
            Err(Error::Compile { errors, .. }) => {
                assert_eq!(errors.len(), 1);
                assert_eq!(errors[0].line, Some(2));
                assert!(errors[0].file.as_deref().unwrap().ends_with("bad.yar"));
                assert!(
                    errors[0].rendered.contains("bad.yar:2:"),
                    "{}",
                    errors[0].rendered
                );
            }
            Err(e) => panic!("unexpected error {e}"),
            Ok(_) => panic!("compiled a broken rule"),
        }
    }

    /// The report's rule descriptions come from the parser; they must be
    /// what the compiled rules say, on real rule sets.
    #[test]
    fn rule_info_from_the_parser_equals_the_compiled_rules() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut sets = vec![root.join("rules/candidate"), root.join("rules/released")];
        for s in [
            "reversinglabs-yara-rules/yara",
            "bartblaze-yara-rules/rules",
        ] {
            let p = root.join("../shared/rulesets").join(s);
            if p.is_dir() {
                sets.push(p);
            }
        }
        for set in sets {
            let rs = compile(
                "candidate",
                std::slice::from_ref(&set),
                &CompileOptions::default(),
            )
            .unwrap_or_else(|e| panic!("{}: {e}", set.display()));
            let rules = rs.rules.get().unwrap();
            let mut compiled = BTreeMap::new();
            for r in rules.iter() {
                let text = |k: &str| {
                    r.metadata().find_map(|(key, v)| match (key == k, v) {
                        (true, yara_x::MetaValue::String(s)) => Some(s.to_string()),
                        (true, yara_x::MetaValue::Bytes(b)) => {
                            Some(String::from_utf8_lossy(b).into_owned())
                        }
                        _ => None,
                    })
                };
                compiled.insert(
                    (r.namespace().to_string(), r.identifier().to_string()),
                    (
                        r.tags()
                            .map(|t| t.identifier().to_string())
                            .collect::<Vec<_>>(),
                        text("description"),
                        text("author"),
                    ),
                );
            }
            let parsed: BTreeMap<_, _> = rs
                .info
                .iter()
                .map(|(k, i)| {
                    (
                        k.clone(),
                        (i.tags.clone(), i.description.clone(), i.author.clone()),
                    )
                })
                .collect();
            assert_eq!(parsed, compiled, "{}", set.display());
        }
    }

    #[test]
    fn private_rules_are_listed_like_the_compiler_lists_them() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("p.yar");
        std::fs::write(
            &f,
            "private rule h { condition: true }\nrule u { condition: h }\n",
        )
        .unwrap();
        let rs = compile("candidate", &[f], &CompileOptions::default()).unwrap();
        let compiled: Vec<String> = rs
            .rules
            .get()
            .unwrap()
            .iter()
            .map(|r| r.identifier().to_string())
            .collect();
        let parsed: Vec<String> = rs.info.keys().map(|k| k.1.clone()).collect();
        assert_eq!(parsed, compiled);
    }

    #[test]
    fn a_diagnostic_quoting_a_file_outside_the_rule_paths_is_not_echoed() {
        let mut c = Compiler::new();
        c.colorize_errors(false);
        let _ = c.add_source(
            SourceCode::from("SECRET=hunter2 rule {").with_origin("/proc/self/environ"),
        );
        let e = &c.errors()[0];
        let shown = Diagnostic::from_yarax("error", e, &|o: &str| o != "/proc/self/environ");
        assert!(!shown.rendered.contains("hunter2"), "{}", shown.rendered);
        assert!(!shown.title.contains("hunter2"));
        assert!(shown.rendered.contains("/proc/self/environ"));
        let plain = Diagnostic::from_yarax("error", e, &|_: &str| true);
        assert!(
            plain.rendered.contains("hunter2"),
            "the check itself sees the text"
        );
    }

    #[test]
    fn standard_externals_declared_only_when_used() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("ext.yar");
        std::fs::write(
            &f,
            "rule e { condition: extension == \".exe\" and owner == \"\" }\n",
        )
        .unwrap();
        let rs = compile(
            "candidate",
            std::slice::from_ref(&f),
            &CompileOptions::default(),
        )
        .unwrap();
        assert!(rs.path_dependent());
        assert!(rs.per_file_externals.contains("extension"));
        let g = dir.path().join("plain.yar");
        std::fs::write(&g, "rule p { condition: true }\n").unwrap();
        let rs = compile("candidate", &[g], &CompileOptions::default()).unwrap();
        assert!(!rs.path_dependent());
        assert_eq!(rs.info.values().next().unwrap().line, Some(1));
    }
}
