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
//!   the changed files from this compile, which compiles them in full. A
//!   known file's warnings about its pattern definitions depend on its own
//!   text only; its other warnings can depend on other files (a rule using a
//!   rule another file made ignored warns `ignored_rule`), so they must be
//!   the ones this compile gives the file, or the set is compiled in full.
//!   A gate's baseline does the same with the candidate's compile as what
//!   is known (`Reference`).
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
        let stub: Vec<bool> = known.iter().map(Option::is_some).collect();
        let fresh = self.check_stubbed(&stub)?;
        self.assemble(known, &fresh, keys)
    }

    /// Compile the set with the pattern definitions of the files `stub`
    /// marks replaced by trivial ones: `Some(warnings)` when yara-x accepts
    /// it, at least one file is stubbed, no file includes another and every
    /// warning lies in a top-level file (only the warnings of the files not
    /// stubbed are meaningful); `None` otherwise.
    fn check_stubbed(&self, stub: &[bool]) -> Option<Vec<Diagnostic>> {
        if self.sources.is_empty() || self.sources.iter().any(|s| !s.info.includes.is_empty()) {
            return None;
        }
        if !stub.iter().any(|s| *s) {
            return None;
        }
        let mut compiler = crate::rules::compiler::new_compiler(
            &self.include_dirs,
            &self.opts,
            &self.declared_std,
        )
        .ok()?;
        for (s, stubbed_here) in self.sources.iter().zip(stub) {
            let text = if *stubbed_here {
                stubbed(s)
            } else {
                s.bytes.clone()
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
        Some(fresh)
    }

    /// The set's warnings: `known`'s for the files it has, `fresh`'s (the
    /// stubbed compile's) for the others, in file order; and the rows to
    /// keep for those others. `None` when a known file's warnings outside
    /// its pattern definitions are not the ones the stubbed compile found
    /// for it: those warnings can depend on other files (a rule that uses
    /// a rule another file has made ignored warns `ignored_rule`), so the
    /// file's warnings in this set are not known (the caller compiles it).
    fn assemble(
        &self,
        known: Vec<Option<Vec<Diagnostic>>>,
        fresh: &[Diagnostic],
        keys: &[[u8; 32]],
    ) -> Option<(Vec<Diagnostic>, Vec<([u8; 32], Vec<u8>)>)> {
        let mut out = Vec::new();
        let mut rows = Vec::new();
        for ((s, k), key) in self.sources.iter().zip(known).zip(keys) {
            let mine: Vec<Diagnostic> = fresh
                .iter()
                .filter(|w| w.file.as_deref() == Some(s.origin.as_str()))
                .cloned()
                .collect();
            match k {
                Some(w) => {
                    if outside_patterns(&w) != outside_patterns(&mine) {
                        return None;
                    }
                    out.extend(w)
                }
                None => {
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

/// The warnings yara-x gives on a pattern definition, from the pattern
/// itself and its own rule's condition (`slow_pattern` is not given for a
/// pattern the condition anchors): the stubbed compile cannot give them, and
/// another file cannot change them.
const PATTERN_WARNINGS: [&str; 5] = [
    "slow_pattern",
    "duplicate_pattern_value",
    "consecutive_jumps",
    "text_as_hex",
    "redundant_modifier",
];

/// The warnings of one file that are not about a pattern definition, as
/// compared between a stubbed compile and a full one (columns and rendered
/// text left out: a stub can shift the columns after it on its line).
fn outside_patterns(ws: &[Diagnostic]) -> Vec<(&str, &str, Option<u64>, Option<&str>)> {
    ws.iter()
        .filter(|w| !PATTERN_WARNINGS.contains(&w.code.as_str()))
        .map(|w| (w.code.as_str(), w.title.as_str(), w.line, w.rule.as_deref()))
        .collect()
}

/// The top-level files of a set, by namespace and content (and name),
/// known as soon as they are read.
pub struct Files(Vec<(String, [u8; 32], String)>);

impl Files {
    pub fn of(sources: &[Source]) -> Self {
        Files(
            sources
                .iter()
                .filter(|s| !s.included)
                .map(|s| {
                    (
                        s.namespace.clone(),
                        Sha256::digest(&s.bytes).into(),
                        s.origin.clone(),
                    )
                })
                .collect(),
        )
    }

    /// The name of the file here with `s`'s namespace and bytes.
    fn origin_of(&self, s: &Source) -> Option<&str> {
        let sha: [u8; 32] = Sha256::digest(&s.bytes).into();
        self.0
            .iter()
            .find(|(ns, h, _)| *ns == s.namespace && *h == sha)
            .map(|(_, _, o)| o.as_str())
    }
}

/// A gate's candidate, as its baseline sees it (the baseline is validated
/// against it; see `Reference`).
pub trait Lead: Sync {
    /// The candidate's top-level files, once read (waits for the read, not
    /// the compile); `None` if it stopped before.
    fn files(&self) -> Option<std::sync::Arc<Files>>;
    /// The candidate's full compile (waits for it). `Err` when it failed:
    /// the run stops at its errors, so this compile stops too. `Ok(None)`
    /// when its outcome is unknown (it panicked): compile alone.
    fn outcome(&self) -> Result<Option<std::sync::Arc<Reference>>>;
}

/// How a compile relates to another one running beside it.
#[derive(Clone, Copy)]
pub enum Link<'a> {
    /// On its own.
    Alone,
    /// A gate's candidate: hands its files to the baseline once read.
    Leads(&'a (dyn Fn(std::sync::Arc<Files>) + Sync)),
    /// A gate's baseline: validated against the candidate.
    Follows(&'a dyn Lead),
}

/// A ruleset another full compile accepted (a gate's candidate): its
/// top-level files by namespace and content, and its warnings. A file of
/// another set that is byte for byte one of these files, in the same
/// namespace and compiled with the same options, has patterns that compile
/// and the same warnings (patterns are checked rule by rule; the rest of the
/// set is checked for real by `validate_known`).
pub struct Reference {
    files: Files,
    warnings: Vec<Diagnostic>,
    placed: bool,
}

impl Reference {
    pub fn of(rs: &crate::rules::Ruleset) -> Self {
        let files = Files::of(&rs.sources);
        // Every warning must lie in a top-level file to be handed on.
        let placed = rs.warnings.iter().all(|w| {
            w.file
                .as_ref()
                .is_some_and(|f| files.0.iter().any(|(_, _, o)| o == f))
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
                let origin = self.files.origin_of(s)?;
                Some(
                    self.warnings
                        .iter()
                        .filter(|w| w.file.as_deref() == Some(origin))
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
    /// Validated against a gate's candidate: the files identical to the
    /// candidate's are stubbed and checked beside the candidate's compile
    /// (file identity needs only the bytes), then take the candidate's
    /// warnings once it has compiled. `Ok(None)` when this path does not
    /// apply or the stubbed set has an error (the caller then validates or
    /// compiles otherwise); `Err` when the candidate failed.
    pub fn validate_following(&self, lead: &dyn Lead) -> Result<Option<Vec<Diagnostic>>> {
        let stub: Vec<bool> = match lead.files() {
            Some(files) => self
                .sources
                .iter()
                .map(|s| files.origin_of(s).is_some())
                .collect(),
            None => Vec::new(),
        };
        let fresh = self.check_stubbed(&stub);
        let Some(reference) = lead.outcome()? else {
            return Ok(None);
        };
        let Some(fresh) = fresh else {
            return Ok(None);
        };
        let known = reference.known_for(self);
        // Every stubbed file takes the warnings of the file its patterns
        // were checked in (an unplaced warning there makes `known` empty).
        if stub.iter().zip(&known).any(|(s, k)| *s && k.is_none()) {
            return Ok(None);
        }
        let known = known
            .into_iter()
            .zip(&stub)
            .map(|(k, s)| k.filter(|_| *s))
            .collect();
        let keys: Vec<[u8; 32]> = self.sources.iter().map(|s| self.file_key(s)).collect();
        let Some((out, rows)) = self.assemble(known, &fresh, &keys) else {
            return Ok(None);
        };
        if let Some(dir) = &self.opts.cache_dir {
            crate::store::small_put(dir, "file-warnings", &rows);
        }
        Ok(Some(out))
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
