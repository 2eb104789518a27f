//! Loading and compiling a ruleset (the candidate or the baseline).
//!
//! A ruleset is a list of rule files and directories. All files are compiled
//! into one namespace, as `yr scan` does, so rules may reference each other
//! across files and a duplicated rule name is an error. Compile errors and
//! warnings are kept exactly as yara-x renders them, for people (stderr) and
//! for machines (the JSON report).

use crate::error::{Error, Result};
use crate::hexfmt::hex;
use crate::yarasrc::{self, SourceInfo};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use yara_x::{Compiler, MetaValue, Rules, SourceCode};

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

/// One diagnostic from the yara-x compiler.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct Diagnostic {
    #[serde(deserialize_with = "level")]
    pub level: Level,
    pub code: String,
    pub title: String,
    pub file: Option<String>,
    pub line: Option<u64>,
    pub column: Option<u64>,
    /// The rule the diagnostic is in, when it is inside one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// The full message as yara-x renders it (file:line:column, snippet).
    pub rendered: String,
}

/// "error" or "warning". (An alias, so that serde's derive does not tie the
/// whole struct to `'static` input.)
pub type Level = &'static str;

/// A diagnostic level read back from a partial report.
fn level<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<&'static str, D::Error> {
    let s: String = serde::Deserialize::deserialize(d)?;
    ["error", "warning"]
        .into_iter()
        .find(|l| *l == s)
        .ok_or_else(|| serde::de::Error::custom(format!("unknown diagnostic level {s:?}")))
}

impl Diagnostic {
    fn from_yarax<T: Serialize + std::fmt::Display>(level: &'static str, item: &T) -> Self {
        let v = serde_json::to_value(item).unwrap_or_default();
        let field = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
        let file = v
            .get("labels")
            .and_then(|l| l.get(0))
            .and_then(|l| l.get("code_origin"))
            .and_then(|o| o.as_str())
            .map(str::to_string);
        Diagnostic {
            level,
            code: field("code"),
            title: field("title"),
            file,
            line: v.get("line").and_then(|x| x.as_u64()),
            column: v.get("column").and_then(|x| x.as_u64()),
            rule: None,
            rendered: item.to_string(),
        }
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
    pub rules: Rules,
    pub info: BTreeMap<RuleKey, RuleInfo>,
    pub warnings: Vec<Diagnostic>,
    pub fingerprint: String,
    /// Standard externals the sources use and fpgate sets per scanned file.
    pub per_file_externals: BTreeSet<&'static str>,
    /// Standard externals declared (with an empty default) for the sources.
    pub declared_std: BTreeSet<&'static str>,
    /// Per-rule cache keys, or why this ruleset cannot use the results cache.
    pub cache: std::result::Result<crate::rulekeys::RuleKeys, String>,
    /// Every source file: shown name, text (empty when not UTF-8), what the
    /// lexer found. Used to compile a subset of the rules.
    pub sources: Vec<(String, String, SourceInfo)>,
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

/// Expand rule paths into a sorted list of rule files.
pub fn collect_rule_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files = BTreeSet::new();
    for p in paths {
        let meta = std::fs::metadata(p)
            .map_err(|e| Error::usage(format!("rule path {}: {e}", p.display())))?;
        if meta.is_dir() {
            let before = files.len();
            for entry in walkdir::WalkDir::new(p).sort_by_file_name() {
                let entry =
                    entry.map_err(|e| Error::usage(format!("rule path {}: {e}", p.display())))?;
                let is_rule = entry.file_type().is_file()
                    && entry
                        .path()
                        .extension()
                        .and_then(|e| e.to_str())
                        .is_some_and(|e| {
                            e.eq_ignore_ascii_case("yar") || e.eq_ignore_ascii_case("yara")
                        });
                if is_rule {
                    files.insert(entry.into_path());
                }
            }
            if files.len() == before {
                return Err(Error::usage(format!(
                    "rule directory {} holds no *.yar or *.yara files",
                    p.display()
                )));
            }
        } else {
            files.insert(p.clone());
        }
    }
    Ok(files.into_iter().collect())
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
    compile_files(label, shown, &files, &crate::includes::roots(paths), opts)
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
    let mut sources: Vec<(String, Vec<u8>, SourceInfo)> = Vec::new();
    for (f, shown) in files {
        let bytes = std::fs::read(f)
            .map_err(|e| Error::usage(format!("cannot read rule file {shown}: {e}")))?;
        let info = yarasrc::analyse(&String::from_utf8_lossy(&bytes));
        sources.push((shown.clone(), bytes, info));
    }
    let tops: Vec<(PathBuf, String, &SourceInfo)> = files
        .iter()
        .zip(&sources)
        .map(|((f, shown), (_, _, info))| (f.clone(), shown.clone(), info))
        .collect();
    let plan = crate::includes::check(&tops, roots)?;

    let used: BTreeSet<&str> = sources
        .iter()
        .flat_map(|(_, _, i)| i.identifiers.iter().map(String::as_str))
        .chain(plan.identifiers.iter().map(String::as_str))
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
    // An unchanged ruleset (every byte of every file, the definitions, the
    // versions) is loaded from the cache instead of compiled. Rules with
    // includes are always compiled (the included files are not in the key).
    let has_includes = sources.iter().any(|s| !s.2.includes.is_empty());
    let key = (!has_includes).then(|| compiled_key(&sources, opts, &declared_std));
    let cached = match (&opts.cache_dir, &key) {
        (Some(dir), Some(key)) => crate::cache::compiled_get(dir, key).and_then(|(r, w)| {
            let rules = Rules::deserialize(&r).ok()?;
            let warnings: Vec<Diagnostic> = serde_json::from_slice(&w).ok()?;
            Some((rules, warnings))
        }),
        _ => None,
    };
    let (rules, warnings) = match cached {
        Some(hit) => hit,
        None => {
            let (rules, warnings) = compile_now(label, &sources, &plan, opts, &declared_std)?;
            if let (Some(dir), Some(key)) = (&opts.cache_dir, &key) {
                if let (Ok(r), Ok(w)) = (rules.serialize(), serde_json::to_vec(&warnings)) {
                    crate::cache::compiled_put(dir, key, &r, &w);
                }
            }
            (rules, warnings)
        }
    };

    // Where each rule was declared, from our own lexer.
    let mut decls: BTreeMap<&str, (&str, usize, &str)> = BTreeMap::new();
    for (origin, _, info) in &sources {
        for r in &info.rules {
            decls.entry(r.identifier.as_str()).or_insert((
                origin.as_str(),
                r.line,
                r.fingerprint.as_str(),
            ));
        }
    }

    let mut info = BTreeMap::new();
    for rule in rules.iter() {
        let decl = decls.get(rule.identifier());
        let mut description = None;
        let mut author = None;
        for (k, v) in rule.metadata() {
            let text = match v {
                MetaValue::String(s) => s.to_string(),
                MetaValue::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
                _ => continue,
            };
            match k {
                "description" if description.is_none() => description = Some(text),
                "author" if author.is_none() => author = Some(text),
                _ => {}
            }
        }
        let key = (rule.namespace().to_string(), rule.identifier().to_string());
        info.insert(
            key.clone(),
            RuleInfo {
                namespace: key.0,
                identifier: key.1,
                source: decl.map(|d| d.0.to_string()),
                line: decl.map(|d| d.1),
                tags: rule.tags().map(|t| t.identifier().to_string()).collect(),
                description,
                author,
                fingerprint: decl.map(|d| d.2.to_string()),
            },
        );
    }

    let fingerprint = ruleset_fingerprint(&info, &opts.defines);
    let cache = if has_includes {
        Err("the rules use `include`".to_string())
    } else {
        crate::rulekeys::compute(&sources, &info, &per_file_externals, opts)
    };
    Ok(Ruleset {
        label,
        paths,
        files: sources.iter().map(|(o, _, _)| o.clone()).collect(),
        rules,
        info,
        warnings,
        fingerprint,
        per_file_externals,
        declared_std,
        cache,
        sources: sources
            .into_iter()
            .map(|(o, b, i)| (o, String::from_utf8(b).unwrap_or_default(), i))
            .collect(),
    })
}

/// Compile with yara-x: the rules and their warnings, or every error.
fn compile_now(
    label: &'static str,
    sources: &[(String, Vec<u8>, SourceInfo)],
    plan: &crate::includes::Plan,
    opts: &CompileOptions,
    declared_std: &BTreeSet<&'static str>,
) -> Result<(Rules, Vec<Diagnostic>)> {
    let mut compiler = new_compiler(&plan.include_dirs, opts, declared_std)?;

    for (origin, bytes, _) in sources {
        // Errors are collected by the compiler; keep adding files so the user
        // sees every broken file at once, not one per run.
        let _ =
            compiler.add_source(SourceCode::from(bytes.as_slice()).with_origin(origin.as_str()));
    }
    let errors: Vec<Diagnostic> = compiler
        .errors()
        .iter()
        .map(|e| Diagnostic::from_yarax("error", e))
        .collect();
    let in_rule = |d: &mut Diagnostic| {
        let (Some(file), Some(line)) = (d.file.as_deref(), d.line) else {
            return;
        };
        d.rule = sources
            .iter()
            .filter(|(origin, _, _)| origin == file)
            .flat_map(|(_, _, info)| info.rules.iter())
            .find(|r| (r.line as u64..=r.end_line as u64).contains(&line))
            .map(|r| r.identifier.clone());
    };
    let warnings: Vec<Diagnostic> = compiler
        .warnings()
        .iter()
        .map(|w| {
            let mut d = Diagnostic::from_yarax("warning", w);
            in_rule(&mut d);
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

/// The compiled-rules cache key: versions, every file's name and bytes,
/// the definitions and the declared externals.
fn compiled_key(
    sources: &[(String, Vec<u8>, SourceInfo)],
    opts: &CompileOptions,
    declared_std: &BTreeSet<&'static str>,
) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(format!(
        "fpgate {} yara-x {}\n",
        env!("CARGO_PKG_VERSION"),
        yara_x::VERSION
    ));
    for (origin, bytes, _) in sources {
        h.update((origin.len() as u64).to_le_bytes());
        h.update(origin.as_bytes());
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    }
    h.update(serde_json::to_vec(&opts.defines).unwrap_or_default());
    for e in declared_std {
        h.update(format!("extern {e}\n"));
    }
    h.finalize().into()
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
            .map_err(|e| Error::usage(format!("external `{ext}`: {e}")))?;
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
