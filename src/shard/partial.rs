//! Sharded runs: `--shard K/N` scans the corpus files whose content hash
//! falls in shard K (so every path of one content lands in one shard) and
//! writes a *partial report*; `fpgate merge` checks that a set of partials
//! is complete and consistent and builds the one report a single run would
//! have given.
//!
//! A partial carries the facts the report is built from (every file of the
//! shard with its outcome and evidence, the rule metadata, the gate policy,
//! the corpus lock) plus a *key*: what must be equal across the shards of
//! one run (versions, rules, options, and a digest of the whole corpus as
//! every shard saw it: each shard hashes every file to find its own).

use super::Shard;
use crate::corpus::lock::Lock;
use crate::corpus::{Corpus, Reason, Unscanned};
use crate::diagnostic::Diagnostic;
use crate::engine::{Hit, Outcome};
use crate::error::{Error, Result};
use crate::rules::evidence::PatternEvidence;
use crate::rules::{RuleInfo, Ruleset};
use crate::util::hex::hex;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

pub const KIND: &str = "fpgate-partial";
/// Schema 2: archive members are file facts (`components`), and the
/// links inside archives are listed (`listed`).
pub const SCHEMA: u32 = 2;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Partial {
    pub kind: String,
    pub schema_version: u32,
    pub shard: Shard,
    pub key: Key,
    pub facts: Facts,
    pub timings: PartialTimings,
}

/// What must be equal in every shard of one run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Key {
    pub fpgate_version: String,
    pub yara_x_version: String,
    pub command: String,
    pub candidate_fingerprint: String,
    pub baseline_fingerprint: Option<String>,
    /// sha256 over every corpus entry in walk order: path, tier, and
    /// content hash (or why it has none).
    pub corpus_digest: String,
    pub corpus_files: usize,
    pub corpus_skipped: usize,
    /// Scan and policy options, and digests of the exceptions and lock.
    pub options: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct PartialTimings {
    pub compile_seconds: f64,
    pub scan_seconds: f64,
    pub total_seconds: f64,
    pub threads: usize,
    /// Bytes the archive decoders produced.
    #[serde(default)]
    pub decoded_bytes: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Facts {
    pub candidate: RulesetFacts,
    pub baseline: Option<RulesetFacts>,
    pub roots: Vec<String>,
    /// The corpus recipe whose artifacts are part of the corpus.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipe: Option<crate::corpus::RecipeFacts>,
    /// Contents of this shard signed to a tier rule's anchor.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub signed: std::collections::BTreeMap<String, Vec<crate::corpus::signature::SignedBy>>,
    /// What catalog signatures rest on: this shard's catalogs and the
    /// Authenticode digests of its PE contents (a catalog in one shard
    /// vouches for files in others; merge matches them).
    #[serde(
        default,
        skip_serializing_if = "crate::corpus::signature::CatalogFacts::is_empty"
    )]
    pub catalogs: crate::corpus::signature::CatalogFacts,
    /// The shard's files, with their index in the whole corpus walk.
    pub files: Vec<FileFact>,
    /// The shard's walk-level skips (symlinks, FIFOs...), with their index.
    pub skipped: Vec<(usize, Unscanned)>,
    /// Links, directories and devices inside the shard's archives.
    #[serde(default)]
    pub listed: Vec<crate::corpus::members::Listed>,
    pub allow_incomplete: bool,
    #[serde(default)]
    pub allow_unevaluated: bool,
    pub interrupted: bool,
    pub exceptions: Option<TextFile>,
    /// The date exceptions expire against (YYYY-MM-DD).
    pub today: String,
    pub strict: bool,
    pub deny_warnings: bool,
    pub deny_codes: Vec<String>,
    pub lock: Option<LockFacts>,
    /// `gate --positives`: the known-bad samples are files of the walk
    /// from index `first` on (after the clean corpus), sharded by content
    /// like it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub positives: Option<PositivesFacts>,
    /// `gate --baseline-ref`: the policy's changes against the base.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_changes: Option<crate::verdict::policy_changes::PolicyChanges>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PositivesFacts {
    pub roots: Vec<String>,
    /// The walk index of the first sample.
    pub first: usize,
    /// The samples' walk-level skips (every shard carries all of them).
    pub skipped: Vec<Unscanned>,
    pub meta: Vec<String>,
    pub require_tested: bool,
    /// sha1 and md5 of this shard's samples, when a rule names a sample by
    /// one of them (merge does not read the samples).
    pub digests: Vec<crate::verdict::detections::ShortDigest>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TextFile {
    pub file: String,
    pub text: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LockFacts {
    pub path: String,
    pub lock: Lock,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RulesetFacts {
    pub label: String,
    pub paths: Vec<String>,
    pub files: Vec<String>,
    pub fingerprint: String,
    pub per_file_externals: Vec<String>,
    pub rules: Vec<RuleInfo>,
    pub warnings: Vec<Diagnostic>,
    /// `gate --positives`: each namespace's rule declarations as the
    /// parser read them (renames, private rules and the samples named in
    /// meta are judged from them after the merge).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub decls: Vec<NamespaceDecls>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NamespaceDecls {
    pub namespace: String,
    pub rules: Vec<crate::rules::source::RuleDecl>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FileFact {
    /// Its index in the whole corpus walk; a member's is its archive's.
    pub index: usize,
    /// The path as opened by the shard (for the record; not used).
    pub path: String,
    pub display: String,
    pub rel: String,
    pub critical: bool,
    /// An archive member (of the file at `index`, in this shard): the
    /// archive's path, then each member name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub components: Option<Vec<String>>,
    pub outcome: OutcomeFact,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "status", rename_all = "snake_case", deny_unknown_fields)]
pub enum OutcomeFact {
    Scanned {
        sha256: String,
        size: u64,
        format: String,
        /// Per ruleset (candidate, then baseline); absent when another path
        /// of the same content carries the result.
        hits: Option<Vec<Vec<HitFact>>>,
    },
    Unscanned {
        reason: Reason,
        detail: String,
        sha256: Option<String>,
        size: Option<u64>,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HitFact {
    pub namespace: String,
    pub rule: String,
    pub patterns: Vec<PatternEvidence>,
}

impl RulesetFacts {
    /// `decls`: carry the rule declarations (for `--positives`).
    pub fn of(rs: &Ruleset, decls: bool) -> Self {
        let mut by_ns: Vec<NamespaceDecls> = Vec::new();
        if decls {
            for s in &rs.sources {
                match by_ns.iter_mut().find(|d| d.namespace == s.namespace) {
                    Some(d) => d.rules.extend(s.info.rules.iter().cloned()),
                    None => by_ns.push(NamespaceDecls {
                        namespace: s.namespace.clone(),
                        rules: s.info.rules.clone(),
                    }),
                }
            }
        }
        RulesetFacts {
            decls: by_ns,
            label: rs.label.to_string(),
            paths: rs.paths.clone(),
            files: rs.files.clone(),
            fingerprint: rs.fingerprint.clone(),
            per_file_externals: rs
                .per_file_externals
                .iter()
                .map(|s| s.to_string())
                .collect(),
            rules: rs.info.values().cloned().collect(),
            warnings: rs.warnings.clone(),
        }
    }

    /// A ruleset for building the report (its compiled rules are empty:
    /// nothing is scanned after a merge).
    pub fn to_ruleset(&self) -> Result<Ruleset> {
        let label = ["candidate", "baseline"]
            .into_iter()
            .find(|l| *l == self.label)
            .ok_or_else(|| Error::shards(&[], format!("unknown ruleset label {:?}", self.label)))?;
        let per_file_externals = self
            .per_file_externals
            .iter()
            .map(|e| {
                crate::rules::STANDARD_EXTERNALS
                    .iter()
                    .copied()
                    .find(|s| s == e)
                    .ok_or_else(|| Error::shards(&[], format!("unknown external {e:?}")))
            })
            .collect::<Result<BTreeSet<&'static str>>>()?;
        Ok(Ruleset {
            label,
            paths: self.paths.clone(),
            files: self.files.clone(),
            rules: crate::rules::build::LazyRules::ready(yara_x::Compiler::new().build()),
            evidence: Default::default(),
            info: self
                .rules
                .iter()
                .map(|r| ((r.namespace.clone(), r.identifier.clone()), r.clone()))
                .collect(),
            warnings: self.warnings.clone(),
            fingerprint: self.fingerprint.clone(),
            per_file_externals,
            declared_std: BTreeSet::new(),
            cache: Err("rebuilt from a partial report".into()),
            sources: self
                .decls
                .iter()
                .map(|d| crate::rules::Source {
                    origin: String::new(),
                    namespace: d.namespace.clone(),
                    bytes: Vec::new(),
                    info: crate::rules::source::SourceInfo {
                        rules: d.rules.clone(),
                        ..Default::default()
                    },
                    included: false,
                })
                .collect(),
        })
    }
}

/// A sha256 written in a partial report or a lock.
pub fn sha_from_hex(s: &str) -> Result<[u8; 32]> {
    crate::util::hex::parse_sha256(s)
        .ok_or_else(|| Error::shards(&[], format!("{s:?} is not a sha256")))
}

impl OutcomeFact {
    pub fn of(o: &Outcome) -> Self {
        match o {
            Outcome::Scanned {
                sha256,
                size,
                format,
                hits,
            } => OutcomeFact::Scanned {
                sha256: hex(sha256),
                size: *size,
                format: format.to_string(),
                hits: hits.as_ref().map(|sets| {
                    sets.iter()
                        .map(|hs| {
                            hs.iter()
                                .map(|h| HitFact {
                                    namespace: h.rule.0.clone(),
                                    rule: h.rule.1.clone(),
                                    patterns: h.patterns.clone(),
                                })
                                .collect()
                        })
                        .collect()
                }),
            },
            Outcome::Unscanned {
                reason,
                detail,
                sha256,
                size,
            } => OutcomeFact::Unscanned {
                reason: *reason,
                detail: detail.clone(),
                sha256: sha256.as_ref().map(|s| hex(s)),
                size: *size,
            },
        }
    }

    pub fn to_outcome(&self) -> Result<Outcome> {
        Ok(match self {
            OutcomeFact::Scanned {
                sha256,
                size,
                format,
                hits,
            } => Outcome::Scanned {
                sha256: sha_from_hex(sha256)?,
                size: *size,
                format: crate::corpus::format::Format::by_name(format)
                    .ok_or_else(|| Error::shards(&[], format!("unknown file format {format:?}")))?,
                hits: hits.as_ref().map(|sets| {
                    sets.iter()
                        .map(|hs| {
                            hs.iter()
                                .map(|h| Hit {
                                    rule: (h.namespace.clone(), h.rule.clone()),
                                    patterns: h.patterns.clone(),
                                })
                                .collect()
                        })
                        .collect()
                }),
            },
            OutcomeFact::Unscanned {
                reason,
                detail,
                sha256,
                size,
            } => Outcome::Unscanned {
                reason: *reason,
                detail: detail.clone(),
                sha256: sha256.as_deref().map(sha_from_hex).transpose()?,
                size: *size,
            },
        })
    }

    /// The shard this outcome must be in, when that can be told: by its
    /// content (see `Shard::of_content`). A file that could not be read has
    /// no content hash; it was placed by path, or by a hash taken before it
    /// vanished, so any shard may report it (once).
    pub fn shard(&self, count: u32) -> Result<Option<u32>> {
        let sha = match self {
            OutcomeFact::Scanned { sha256, .. } => Some(sha256),
            OutcomeFact::Unscanned { sha256, .. } => sha256.as_ref(),
        };
        sha.map(|s| Ok(Shard::of_content(&sha_from_hex(s)?, count)))
            .transpose()
    }
}

/// The digest of the whole corpus as one shard saw it: every file's path,
/// tier and content hash (from hashing every file to pick this shard's).
pub fn corpus_digest(corpus: &Corpus, shas: &[Option<[u8; 32]>]) -> String {
    let mut h = Sha256::new();
    for (f, sha) in corpus.files.iter().zip(shas) {
        let content = sha.map(|s| hex(&s)).unwrap_or_else(|| "-".into());
        h.update(format!(
            "file\t{}\t{}\t{}\t{content}\n",
            f.display(),
            f.rel(),
            f.critical
        ));
    }
    for u in &corpus.skipped {
        h.update(format!("skipped\t{}\t{}\n", u.path, u.reason.as_str()));
    }
    hex(&h.finalize())
}

/// A digest of a text (exceptions, lock) for the key.
pub fn text_digest(text: &str) -> String {
    hex(&Sha256::digest(text.as_bytes()))
}

/// Read and check one partial report.
pub fn load(path: &Path) -> Result<Partial> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::io(
            path.display(),
            format!("partial report {}: {e}", path.display()),
        )
    })?;
    parse(&text, path)
}

/// Parse one partial report (`path` is for messages). Its kind and schema
/// are read first (skipping the rest) so that another file gets its own
/// error; then the report is parsed into its types directly (no JSON tree:
/// a shard of a million-file corpus would need several times its size).
pub fn parse(text: &str, path: &Path) -> Result<Partial> {
    #[derive(Deserialize)]
    struct Header {
        kind: Option<serde_json::Value>,
        schema_version: Option<serde_json::Value>,
    }
    let shown = path.display();
    let not_ours = || {
        Error::input("partial report", &shown, format!(
            "{shown} is not an fpgate partial report (no \"kind\": \"{KIND}\"): write one with --shard K/N"
        ))
    };
    let header: Header = match serde_json::from_str(text) {
        Ok(h) => h,
        Err(e) if e.is_data() => return Err(not_ours()),
        Err(e) => {
            return Err(Error::input(
                "partial report",
                &shown,
                format!(
                    "partial report {shown}:{}:{}: not JSON (truncated?): {e}",
                    e.line(),
                    e.column()
                ),
            ))
        }
    };
    if header.kind.as_ref().and_then(|k| k.as_str()) != Some(KIND) {
        return Err(not_ours());
    }
    if header.schema_version.as_ref().and_then(|k| k.as_u64()) != Some(SCHEMA as u64) {
        return Err(Error::input("partial report", &shown, format!(
            "partial report {shown}: schema_version {} is not {SCHEMA} (made by another fpgate version?)",
            header.schema_version.unwrap_or(serde_json::Value::Null)
        )));
    }
    serde_json::from_str(text).map_err(|e| {
        Error::input(
            "partial report",
            &shown,
            format!("partial report {shown}: {e}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(text: &str) -> String {
        parse(text, Path::new("p.json")).unwrap_err().to_string()
    }

    #[test]
    fn what_is_not_a_partial_report_is_named_before_its_fields_are_read() {
        let e = refused("{\"kind\": \"fpgate-partial\",\n \"schema");
        assert!(
            e.contains("p.json:2:") && e.contains("not JSON (truncated?)"),
            "{e}"
        );
        for other in ["[1, 2]", "{\"kind\": \"fpgate-report\", \"x\": [1]}", "{}"] {
            let e = refused(other);
            assert!(
                e.contains("is not an fpgate partial report"),
                "{other}: {e}"
            );
        }
        let e = refused(&format!(
            "{{\"kind\": \"{KIND}\", \"schema_version\": 999}}"
        ));
        assert!(e.contains("schema_version 999 is not"), "{e}");
        let e = refused(&format!(
            "{{\"kind\": \"{KIND}\", \"schema_version\": {SCHEMA}, \"shard\": 1}}"
        ));
        assert!(e.starts_with("partial report p.json: "), "{e}");
    }
}
