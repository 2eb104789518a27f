//! Compiling an edited ruleset without compiling what did not change.
//!
//! A pull request edits a rule or two of a set of thousands. The verdict
//! needs two things from the compiler: that the whole set is valid (exactly
//! as valid as the full compile would find it: duplicate identifiers across
//! files, broken references, type errors) and its warnings. The compiled
//! form of the whole set is needed only to scan a file with every rule,
//! which a warm results cache rarely asks for.
//!
//! So, when the results cache knows some of the set's files (same name, same
//! bytes, same compile context) from an earlier successful compile:
//!
//! - The set is *validated* by yara-x itself, over every file, in order, with
//!   every import, rule declaration, modifier and condition as written; only
//!   the pattern definitions of the files the cache already knows are replaced
//!   by a trivial pattern with the same identifier (patterns are checked
//!   rule by rule and cannot be made invalid by another file, and they are
//!   what makes compiling slow). Any error sends the set to the full compile,
//!   whose diagnostics the user then sees, exactly as without this path.
//! - Warnings of the files the cache knows come from the cache; warnings of
//!   the changed files from this compile, which compiles them in full.
//! - The compiled rules are built only when a scan needs them (`LazyRules`),
//!   and a build that fails then makes those files unscanned (fail closed).
//!
//! `tests/differential.rs` checks that reports and exit codes on this path
//! equal those of a run without the cache after every kind of edit,
//! including edits that break the full compile.

use crate::diagnostic::Diagnostic;
use crate::error::Result;
use crate::rules::{CompileOptions, Source};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};
use yara_x::{Rules, SourceCode};

type Build = Box<dyn FnOnce() -> std::result::Result<Rules, String> + Send>;

/// Compiled rules, built (or read from the cache) on first use.
pub struct LazyRules {
    cell: OnceLock<std::result::Result<Rules, String>>,
    make: Mutex<Option<Build>>,
}

impl LazyRules {
    pub fn ready(rules: Rules) -> Self {
        let cell = OnceLock::new();
        let _ = cell.set(Ok(rules));
        LazyRules {
            cell,
            make: Mutex::new(None),
        }
    }

    pub fn later(
        make: impl FnOnce() -> std::result::Result<Rules, String> + Send + 'static,
    ) -> Self {
        LazyRules {
            cell: OnceLock::new(),
            make: Mutex::new(Some(Box::new(make))),
        }
    }

    /// The rules; the first caller builds them, the others wait.
    pub fn get(&self) -> std::result::Result<&Rules, String> {
        self.cell
            .get_or_init(|| {
                let make = self.make.lock().unwrap_or_else(|e| e.into_inner()).take();
                match make {
                    Some(f) => f(),
                    None => Err("the compiled rules are not available".into()),
                }
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// True once the rules exist (for the log: was the full set compiled?).
    pub fn is_built(&self) -> bool {
        self.cell.get().is_some_and(|r| r.is_ok())
    }
}

/// Everything a compile of one ruleset needs, owned, so the full build can
/// run later, on whichever thread first needs the rules.
#[derive(Clone)]
pub struct Job {
    pub label: &'static str,
    /// Top-level files only (included files are read by the compiler).
    pub sources: Vec<Source>,
    pub include_dirs: Vec<PathBuf>,
    pub opts: CompileOptions,
    pub declared_std: BTreeSet<&'static str>,
    pub roots: Vec<PathBuf>,
    /// The compiled-rules cache key of the whole set.
    pub key: [u8; 32],
}

impl Job {
    fn tops(&self) -> Vec<String> {
        self.sources.iter().map(|s| s.origin.clone()).collect()
    }

    /// The full compile: rules and warnings, or every error. Keeps the
    /// compiled rules and each file's warnings in the cache.
    pub fn full(&self) -> Result<(Rules, Vec<Diagnostic>)> {
        let (rules, warnings) = self.compile()?;
        self.keep(&rules, &warnings);
        Ok((rules, warnings))
    }

    /// The full compile, nothing kept.
    pub fn compile(&self) -> Result<(Rules, Vec<Diagnostic>)> {
        let tops = self.tops();
        let roots = self.roots.clone();
        let allowed = move |o: &str| crate::rules::includes::origin_allowed(o, &tops, &roots);
        crate::rules::compiler::compile_now(
            self.label,
            &self.sources,
            &self.include_dirs,
            &self.opts,
            &self.declared_std,
            &allowed,
        )
    }

    /// Keep a full compile's rules and each file's warnings in the cache.
    pub fn keep(&self, rules: &Rules, warnings: &[Diagnostic]) {
        if let Some(dir) = &self.opts.cache_dir {
            if let (Ok(r), Ok(w)) = (rules.serialize(), serde_json::to_vec(warnings)) {
                crate::store::compiled_put(dir, &self.key, &r, &w);
            }
            self.remember_warnings(warnings);
        }
    }

    /// Each file's share of `warnings`, kept under the file's key. Nothing
    /// is kept when a warning cannot be placed in one top-level file.
    fn remember_warnings(&self, warnings: &[Diagnostic]) {
        let Some(dir) = &self.opts.cache_dir else {
            return;
        };
        if self.sources.iter().any(|s| !s.info.includes.is_empty()) {
            return;
        }
        let tops = self.tops();
        if warnings
            .iter()
            .any(|w| !w.file.as_ref().is_some_and(|f| tops.contains(f)))
        {
            return;
        }
        let rows: Vec<([u8; 32], Vec<u8>)> = self
            .sources
            .iter()
            .filter_map(|s| {
                let mine: Vec<&Diagnostic> = warnings
                    .iter()
                    .filter(|w| w.file.as_deref() == Some(s.origin.as_str()))
                    .collect();
                Some((self.file_key(s), serde_json::to_vec(&mine).ok()?))
            })
            .collect();
        crate::store::small_put(dir, "file-warnings", &rows);
    }

    /// A file's key: versions, its name and bytes, and the compile context
    /// (definitions, declared externals).
    fn file_key(&self, s: &Source) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(format!(
            "file-warnings v1 fpgate {} yara-x {}\n",
            env!("CARGO_PKG_VERSION"),
            yara_x::VERSION
        ));
        h.update((s.origin.len() as u64).to_le_bytes());
        h.update(s.origin.as_bytes());
        if s.namespace != crate::rules::DEFAULT_NAMESPACE {
            h.update(format!("namespace {}\n", s.namespace));
        }
        h.update((s.bytes.len() as u64).to_le_bytes());
        h.update(&s.bytes);
        crate::rules::compiler::hash_context(&mut h, &self.opts, &self.declared_std);
        h.finalize().into()
    }

    /// Validate the set with the compiler, patterns of known files stubbed.
    /// `Some(warnings)` when it is valid and the cache knew at least one of
    /// its files; `None` when this path does not apply or found an error
    /// (the caller then compiles in full, which reports it).
    pub fn validate(&self) -> Option<Vec<Diagnostic>> {
        let dir = self.opts.cache_dir.as_ref()?;
        if self.sources.is_empty() || self.sources.iter().any(|s| !s.info.includes.is_empty()) {
            return None;
        }
        let keys: Vec<[u8; 32]> = self.sources.iter().map(|s| self.file_key(s)).collect();
        let known: Vec<Option<Vec<Diagnostic>>> =
            crate::store::small_get(dir, "file-warnings", &keys)
                .into_iter()
                .map(|b| b.and_then(|b| serde_json::from_slice(&b).ok()))
                .collect();
        let (out, rows) = self.validate_known(known, &keys)?;
        crate::store::small_put(dir, "file-warnings", &rows);
        Some(out)
    }

    /// Validate the set with the compiler, the pattern definitions of the
    /// files `known` has warnings for stubbed (their patterns were checked
    /// by another compile, which gave those warnings). `Some` when valid and
    /// `known` had at least one file: the warnings of the whole set, and the
    /// rows to keep for the other files (each under its `keys` entry).
    pub fn validate_known(
        &self,
        known: Vec<Option<Vec<Diagnostic>>>,
        keys: &[[u8; 32]],
    ) -> Option<(Vec<Diagnostic>, Vec<([u8; 32], Vec<u8>)>)> {
        if self.sources.is_empty() || self.sources.iter().any(|s| !s.info.includes.is_empty()) {
            return None;
        }
        if known.iter().all(Option::is_none) {
            return None;
        }
        let mut compiler = crate::rules::compiler::new_compiler(
            &self.include_dirs,
            &self.opts,
            &self.declared_std,
        )
        .ok()?;
        for (s, k) in self.sources.iter().zip(&known) {
            let text = match k {
                Some(_) => stubbed(s),
                None => s.bytes.clone(),
            };
            let _ = compiler
                .new_namespace(&s.namespace)
                .add_source(SourceCode::from(text.as_slice()).with_origin(s.origin.as_str()));
        }
        if !compiler.errors().is_empty() {
            return None;
        }
        let tops = self.tops();
        let allowed = |o: &str| crate::rules::includes::origin_allowed(o, &tops, &self.roots);
        let fresh: Vec<Diagnostic> = compiler
            .warnings()
            .iter()
            .map(|w| {
                let mut d = Diagnostic::from_yarax("warning", w, &allowed);
                crate::rules::compiler::attach_rule(&mut d, &self.sources);
                d
            })
            .collect();
        // A warning that names no file of the set cannot be placed: trust
        // only the full compile then.
        if fresh
            .iter()
            .any(|w| !w.file.as_ref().is_some_and(|f| tops.contains(f)))
        {
            return None;
        }
        let mut out = Vec::new();
        let mut rows = Vec::new();
        for ((s, k), key) in self.sources.iter().zip(known).zip(keys) {
            match k {
                Some(w) => out.extend(w),
                None => {
                    let mine: Vec<Diagnostic> = fresh
                        .iter()
                        .filter(|w| w.file.as_deref() == Some(s.origin.as_str()))
                        .cloned()
                        .collect();
                    if let Ok(v) = serde_json::to_vec(&mine) {
                        rows.push((*key, v));
                    }
                    out.extend(mine);
                }
            }
        }
        Some((out, rows))
    }
}

/// A ruleset another full compile accepted (a gate's candidate): its
/// top-level files by namespace and content, and its warnings. A file of
/// another set that is byte for byte one of these files, in the same
/// namespace and compiled with the same options, has patterns that compile
/// and the same warnings (patterns are checked rule by rule; the rest of the
/// set is checked for real by `validate_known`).
pub struct Reference {
    files: Vec<(String, [u8; 32], String)>,
    warnings: Vec<Diagnostic>,
    placed: bool,
}

impl Reference {
    pub fn of(rs: &crate::rules::Ruleset) -> Self {
        let files: Vec<(String, [u8; 32], String)> = rs
            .sources
            .iter()
            .filter(|s| !s.included)
            .map(|s| {
                (
                    s.namespace.clone(),
                    Sha256::digest(&s.bytes).into(),
                    s.origin.clone(),
                )
            })
            .collect();
        // Every warning must lie in a top-level file to be handed on.
        let placed = rs.warnings.iter().all(|w| {
            w.file
                .as_ref()
                .is_some_and(|f| files.iter().any(|(_, _, o)| o == f))
        });
        Reference {
            files,
            warnings: rs.warnings.clone(),
            placed,
        }
    }

    /// Per top-level file of `job`, the warnings of its identical file
    /// here, moved to the job's file name; `None` where there is none.
    fn known_for(&self, job: &Job) -> Vec<Option<Vec<Diagnostic>>> {
        job.sources
            .iter()
            .map(|s| {
                if !self.placed {
                    return None;
                }
                let sha: [u8; 32] = Sha256::digest(&s.bytes).into();
                let (_, _, origin) = self
                    .files
                    .iter()
                    .find(|(ns, h, _)| *ns == s.namespace && *h == sha)?;
                Some(
                    self.warnings
                        .iter()
                        .filter(|w| w.file.as_deref() == Some(origin.as_str()))
                        .map(|w| moved(w, origin, &s.origin))
                        .collect(),
                )
            })
            .collect()
    }
}

/// A diagnostic of one file given to an identical file of another name.
fn moved(d: &Diagnostic, from: &str, to: &str) -> Diagnostic {
    let mut d = d.clone();
    d.file = Some(to.to_string());
    d.rendered = d
        .rendered
        .replacen(&format!("--> {from}:"), &format!("--> {to}:"), 1);
    d
}

impl Job {
    /// `validate_known` with the files `r` holds identical copies of: the
    /// set's warnings, or `None` when this path does not apply.
    pub fn validate_against(&self, r: &Reference) -> Option<Vec<Diagnostic>> {
        let keys: Vec<[u8; 32]> = self.sources.iter().map(|s| self.file_key(s)).collect();
        let (out, rows) = self.validate_known(r.known_for(self), &keys)?;
        if let Some(dir) = &self.opts.cache_dir {
            crate::store::small_put(dir, "file-warnings", &rows);
        }
        Some(out)
    }
}

/// The file with each pattern definition replaced by a trivial one with the
/// same identifier: everything else (imports, rule names, modifiers, tags,
/// meta, conditions) as written.
fn stubbed(s: &Source) -> Vec<u8> {
    let mut spans: Vec<&(usize, usize, String)> = s
        .info
        .rules
        .iter()
        .flat_map(|r| r.patterns.iter())
        .collect();
    spans.sort_by_key(|p| p.0);
    let mut out = Vec::with_capacity(s.bytes.len());
    let mut at = 0;
    for (a, b, id) in spans {
        if *a < at || *b > s.bytes.len() {
            return s.bytes.clone(); // overlapping spans: compile as written
        }
        out.extend_from_slice(&s.bytes[at..*a]);
        out.extend_from_slice(format!("{id} = \"fpgate stub pattern\"").as_bytes());
        // Keep the line count, so later lines keep their numbers.
        let newlines = s.bytes[*a..*b].iter().filter(|c| **c == b'\n').count();
        out.extend(std::iter::repeat_n(b'\n', newlines));
        at = *b;
    }
    out.extend_from_slice(&s.bytes[at..]);
    out
}
