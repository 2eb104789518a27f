//! Loading and compiling a ruleset (the candidate or the baseline).
//!
//! A ruleset is a list of rule files and directories, each optionally
//! prefixed with a namespace (`NS:PATH`, as `yr scan` takes them). The files
//! of one namespace are compiled together, as `yr scan` does, so rules may
//! reference each other across files and a duplicated rule name is an
//! error; paths without a namespace go into `default`. Compile errors and
//! warnings are kept exactly as yara-x renders them, for people (stderr) and
//! for machines (the JSON report).

pub mod build;
pub mod compile;
pub mod compiler;
pub mod define;
pub mod evidence;
pub mod files;
pub mod gitref;
pub mod includes;
pub mod keys;
pub mod source;
pub mod subset;
mod tokens;

use crate::diagnostic::Diagnostic;
use crate::rules::source::SourceInfo;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

pub use build::{Link, Reference};
pub use compile::{compile, compile_files, compile_files_linked, compile_linked};
pub use define::{Define, DefineValue};
pub use files::{collect_rule_files, Extensions, RulePath, DEFAULT_NAMESPACE};

/// External variables that real rule sets (signature-base, LOKI, THOR) expect
/// the scanner to provide. Declared only when some rule uses them.
pub const STANDARD_EXTERNALS: &[&str] = &["filename", "filepath", "extension", "filetype", "owner"];

/// Externals whose value depends on the scanned path, not only on content.
pub const PATH_EXTERNALS: &[&str] = &["filename", "filepath", "extension"];

/// A top-level rule file to compile: where it is read from, the name
/// reports give it, and the namespace its rules go into.
#[derive(Debug, Clone)]
pub struct RuleFile {
    pub disk: PathBuf,
    pub shown: String,
    pub namespace: String,
}

/// One source file of a ruleset: a top-level rule file, or a file reached
/// through `include` (in the namespace of the file that includes it; a file
/// included from two namespaces is two sources).
#[derive(Debug, Clone)]
pub struct Source {
    /// The name diagnostics and reports give it.
    pub origin: String,
    pub namespace: String,
    pub bytes: Vec<u8>,
    pub info: SourceInfo,
    pub included: bool,
}

/// What the report says about each rule.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, schemars::JsonSchema)]
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
    /// Fingerprint of the rule's normalised source (see `rules::source`).
    pub fingerprint: Option<String>,
}

/// A rule's name as reports show it: the identifier, `NS:identifier` when
/// the rule is not in the default namespace (as exceptions and yr write it).
pub fn rule_name(namespace: &str, identifier: &str) -> String {
    if namespace == DEFAULT_NAMESPACE {
        identifier.to_string()
    } else {
        format!("{namespace}:{identifier}")
    }
}

impl RuleInfo {
    /// See `rule_name`.
    pub fn name(&self) -> String {
        rule_name(&self.namespace, &self.identifier)
    }
}

/// Key of a rule: (namespace, identifier).
pub type RuleKey = (String, String);

/// A compiled ruleset with everything the report needs to describe it.
pub struct Ruleset {
    pub label: &'static str,
    pub paths: Vec<String>,
    pub files: Vec<String>,
    /// Built when a scan first needs every rule (see `build`).
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
    /// What a rule file in a rule directory is called (see `files`).
    pub extensions: Extensions,
    /// Accept the regular expressions YARA accepts and yara-x does not by
    /// default (`yr --relaxed-re-syntax`).
    pub relaxed_re_syntax: bool,
    /// Modules the engine treats as unsupported (`yr --ignore-module`): the
    /// rules that use them are not compiled, and are reported unevaluated.
    pub ignored_modules: Vec<String>,
    /// Parse every rule file before compiling, even on a cold parse, on the
    /// background threads (below the priority of a compile). Set for a
    /// gate's baseline, which needs its parse to be validated against the
    /// candidate (`build::Link`) while the candidate compiles; the parses
    /// of files both sets have are shared (`source::finish`). Changes when
    /// the work is done, never its result.
    pub parse_first: bool,
}

/// A rule the engine did not compile because it uses an ignored module
/// (directly, or through a rule it depends on): its verdict is unknown.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, schemars::JsonSchema)]
pub struct Unevaluated {
    pub rule: String,
    pub module: String,
    pub file: Option<String>,
    pub line: Option<u64>,
}

impl Ruleset {
    /// The rules of this set the engine ignored, from its warnings
    /// (`unsupported_module` in the rule, or `ignored_rule` through a rule
    /// it uses), sorted, each once.
    pub fn unevaluated(&self) -> Vec<Unevaluated> {
        let quoted = |s: &str| -> Vec<String> {
            s.split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_string)
                .collect()
        };
        let mut out: Vec<Unevaluated> = self
            .warnings
            .iter()
            .filter_map(|w| {
                let q = quoted(&w.title);
                let (rule, module) = match w.code.as_str() {
                    "unsupported_module" => (w.rule.clone()?, q.first()?.clone()),
                    "ignored_rule" => (q.first()?.clone(), q.last()?.clone()),
                    _ => return None,
                };
                Some(Unevaluated {
                    rule,
                    module,
                    file: w.file.clone(),
                    line: w.line,
                })
            })
            .collect();
        out.sort();
        out.dedup_by(|a, b| a.rule == b.rule);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use yara_x::{Compiler, SourceCode};

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
        match compile(
            "candidate",
            &[RulePath::plain(&f)],
            &CompileOptions::default(),
        ) {
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
                &[RulePath::plain(&set)],
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
        let rs = compile(
            "candidate",
            &[RulePath::plain(&f)],
            &CompileOptions::default(),
        )
        .unwrap();
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
            &[RulePath::plain(&f)],
            &CompileOptions::default(),
        )
        .unwrap();
        assert!(rs.path_dependent());
        assert!(rs.per_file_externals.contains("extension"));
        let g = dir.path().join("plain.yar");
        std::fs::write(&g, "rule p { condition: true }\n").unwrap();
        let rs = compile(
            "candidate",
            &[RulePath::plain(&g)],
            &CompileOptions::default(),
        )
        .unwrap();
        assert!(!rs.path_dependent());
        assert_eq!(rs.info.values().next().unwrap().line, Some(1));
    }
}
