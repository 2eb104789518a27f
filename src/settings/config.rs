//! `fpgate.toml`: what a team would otherwise repeat on every command.
//!
//! Found by walking up from the current directory (or given with
//! `--config`). Paths in it are relative to the file's own directory.
//! Unknown keys are an error naming the key and its line, so a typo cannot
//! silently switch a policy off. Command-line flags override the file.

use crate::error::{Error, Result};
use crate::rules::{Define, DefineValue, RulePath};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const FILE_NAME: &str = "fpgate.toml";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub rules: RulesSection,
    #[serde(default)]
    pub corpus: CorpusSection,
    #[serde(default)]
    pub scan: ScanSection,
    #[serde(default)]
    pub exceptions: ExceptionsSection,
    #[serde(default)]
    pub warnings: WarningsSection,
    #[serde(default)]
    pub positives: PositivesSection,
    #[serde(default)]
    pub policy: PolicySection,
    #[serde(default)]
    pub history: HistorySection,
    #[serde(default)]
    pub triage: TriageSection,
    /// `[tiers]`: critical files decided by verified code signatures.
    #[serde(default)]
    pub tiers: TiersSection,
    /// External variables, typed as TOML types.
    #[serde(default)]
    pub defines: BTreeMap<String, toml::Value>,
    /// Directory the config was found in; paths are relative to it.
    #[serde(skip)]
    pub dir: PathBuf,
    /// The file itself, for messages.
    #[serde(skip)]
    pub file: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesSection {
    /// `[NS:]PATH` each, as on the command line.
    #[serde(default)]
    pub candidate: Vec<RulePath>,
    #[serde(default)]
    pub baseline: Vec<RulePath>,
    pub baseline_ref: Option<String>,
    /// Extensions of rule files in rule directories [default: yar, yara].
    pub extensions: Option<Vec<String>>,
    /// `--relaxed-re-syntax`.
    pub relaxed_re_syntax: Option<bool>,
    /// `--ignore-module` for each.
    #[serde(default)]
    pub ignore_modules: Vec<String>,
}

/// `[policy]`: where the gate's policy comes from, and what a change of it
/// does (with a base revision, `--baseline-ref`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySection {
    /// `"base"` or `"worktree"`. Since the base's policy became the
    /// default with a base revision on the command line, `"base"` is what
    /// happens anyway and `"worktree"` opts out of nothing (kept so old
    /// configs parse; a note says so).
    pub source: Option<crate::verdict::policy_changes::Source>,
    /// Read from the base revision's config only: `true` lets the working
    /// tree's policy apply to changes against that base (a repository whose
    /// every change is trusted). In the config under review it does nothing.
    pub trust_worktree: Option<bool>,
    /// `"report"` (default) or `"block"`.
    pub changes: Option<crate::verdict::policy_changes::Mode>,
}

/// `[history]`: the run history (see `triage::history`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistorySection {
    /// `"off"` (default), `"report"` or `"block"` (`--since-last`).
    pub since_last: Option<crate::triage::history::SinceLast>,
    /// Record runs (default true; `--no-history`).
    pub record: Option<bool>,
}

/// `[tiers]`: `[[tiers.critical]]` rules (each a trust anchor a file's
/// Authenticode signature must chain to) and the date signatures are
/// judged at.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TiersSection {
    /// `YYYY-MM-DD`: certificates must be valid on this day (fixed, so
    /// tiers do not drift with the clock). Required with rules.
    pub date: Option<String>,
    #[serde(default)]
    pub critical: Vec<TierRule>,
    /// `[[tiers.timestamp]]`: time-stamping authorities whose RFC 3161
    /// countersignatures are honoured (a signer valid when stamped).
    #[serde(default)]
    pub timestamp: Vec<TimestampRule>,
}

/// One `[[tiers.timestamp]]` authority.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimestampRule {
    pub name: String,
    pub anchor: Option<PathBuf>,
    pub anchor_sha256: Option<String>,
}

/// One `[[tiers.critical]]` rule.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierRule {
    pub name: String,
    /// A PEM certificate in the checkout whose own key must verify the
    /// top of the signer's chain.
    pub anchor: Option<PathBuf>,
    /// Or: the sha256 of the DER of a certificate the files carry.
    pub anchor_sha256: Option<String>,
    /// Text the signer's subject must contain, e.g. `CN=Example Corp`.
    pub subject: Option<String>,
}

/// `[triage]`: `--explain` by default.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriageSection {
    pub explain: Option<bool>,
}

/// `[positives]`: known-bad samples for `gate` (detection regression).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PositivesSection {
    #[serde(default)]
    pub paths: Vec<PathBuf>,
    /// Meta keys whose hex digests name a rule's samples.
    pub meta: Option<Vec<String>>,
    /// `--require-tested`.
    pub require_tested: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorpusSection {
    #[serde(default)]
    pub paths: Vec<PathBuf>,
    pub lock: Option<PathBuf>,
    /// Globs of critical files (matched against the path relative to its
    /// corpus root and against the path as reported).
    #[serde(default)]
    pub critical: Vec<String>,
    /// Globs of files and directories that are not part of the corpus.
    #[serde(default)]
    pub exclude: Vec<String>,
    pub follow_symlinks: Option<bool>,
    /// Read the members of archives (default true; `--no-archives`).
    pub archives: Option<bool>,
    /// The corpus recipe (`fpgate-corpus.toml`): its artifacts join the
    /// corpus, read from the store.
    pub recipe: Option<PathBuf>,
    /// The corpus store (default: `corpus-store` in the cache directory).
    pub store: Option<PathBuf>,
    /// Archives nested in archives, the outermost being depth 1 (default 5).
    pub archive_depth: Option<u32>,
    /// Members per archive (default 10000).
    pub archive_members: Option<u64>,
    /// Bytes decoded per top-level archive, a size like "1G" (default 1G).
    pub archive_size: Option<String>,
    /// Decoded bytes per compressed byte, checked past the first 100 KiB
    /// (default 100).
    pub archive_ratio: Option<u64>,
    /// Seconds of reading per top-level archive (default 120).
    pub archive_time: Option<u64>,
    /// The largest dictionary a 7z/xz/zstd stream may declare (default 128M).
    pub archive_dictionary: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScanSection {
    pub threads: Option<u16>,
    pub timeout: Option<u64>,
    pub max_file_size: Option<String>,
    pub allow_incomplete: Option<bool>,
    /// `--allow-unevaluated`.
    pub allow_unevaluated: Option<bool>,
    /// Results cache directory (relative to this file), or `false` for none.
    pub cache: Option<toml::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExceptionsSection {
    pub file: Option<PathBuf>,
    pub strict: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WarningsSection {
    /// Every compiler warning in a new or modified rule blocks.
    pub deny: Option<bool>,
    /// Only these warning codes (e.g. "slow_pattern") block.
    #[serde(default)]
    pub deny_codes: Vec<String>,
}

impl Config {
    /// Load `explicit`, or the nearest `fpgate.toml` above the current
    /// directory, or an empty config when there is none.
    pub fn load(explicit: Option<&Path>, disabled: bool) -> Result<Config> {
        if disabled {
            return Ok(Config {
                dir: PathBuf::from("."),
                ..Default::default()
            });
        }
        let path = match explicit {
            Some(p) => Some(p.to_path_buf()),
            None => discover(),
        };
        let Some(path) = path else {
            return Ok(Config {
                dir: PathBuf::from("."),
                ..Default::default()
            });
        };
        // The config is part of the change: a committed link named
        // fpgate.toml may not make fpgate parse (and quote) `.git/config`.
        match explicit {
            Some(p) => confine_flag_root(p, &crate::util::paths::checkout_of(Path::new(".")))?,
            None => {
                let dir = path
                    .parent()
                    .filter(|p| !p.as_os_str().is_empty())
                    .unwrap_or(Path::new("."));
                let home = crate::util::paths::checkout_of(dir);
                if let Some(why) = crate::util::paths::escapes_on_disk(&path, &home) {
                    return Err(Error::config(
                        Some(&path),
                        "",
                        format!(
                            "{}: refused: {why}; give a config elsewhere with --config",
                            path.display()
                        ),
                    ));
                }
            }
        }
        let text = std::fs::read_to_string(&path).map_err(|e| {
            Error::io(
                path.display(),
                format!("cannot read config {}: {e}", path.display()),
            )
        })?;
        let mut cfg = parse(&text, &path)?;
        cfg.dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        cfg.file = Some(path);
        Ok(cfg)
    }

    /// A path from the config, resolved against the config's directory.
    pub fn resolve(&self, p: &Path) -> PathBuf {
        if p.is_absolute() || self.dir == Path::new(".") {
            p.to_path_buf()
        } else {
            self.dir.join(p)
        }
    }

    pub fn resolve_all(&self, ps: &[PathBuf]) -> Vec<PathBuf> {
        ps.iter().map(|p| self.resolve(p)).collect()
    }

    /// The checkout the config belongs to: the nearest directory above the
    /// config that holds `.git`, or the config's directory when it is in
    /// none. What a config names must lie in it (and not in its `.git`).
    pub fn checkout(&self) -> PathBuf {
        crate::util::paths::checkout_of(&self.dir)
    }

    /// Rule paths from the config (`key`), which must lie in the config's
    /// checkout (see `checkout`), outside its version-control metadata: a
    /// config is part of the change it judges, and a rule file is echoed
    /// in compile errors, so a config may not name `/proc/self/environ` or
    /// `.git/config` as a rule file. Paths elsewhere are given as flags.
    pub fn resolve_rules(&self, ps: &[RulePath], key: &str) -> Result<Vec<RulePath>> {
        let home = self.checkout();
        ps.iter()
            .map(|p| {
                let r = self.resolve(&p.path);
                match crate::util::paths::escapes_on_disk(&r, &home) {
                    Some(why) => Err(Error::config(self.file.as_deref(), key, format!(
                        "{key}: {} is refused: {why}; a config may only name rules in its own checkout (give other rule paths as flags)",
                        p.path.display(),
                    ))),
                    None => Ok(p.with_path(r)),
                }
            })
            .collect()
    }

    /// A file the config names (`key`: the corpus lock, the exceptions
    /// file), resolved; refused when it resolves outside the checkout or
    /// into its version-control metadata (its text would be quoted in
    /// errors). A file that does not exist is reported where it is read.
    pub fn confined_file(&self, p: &Path, key: &str) -> Result<PathBuf> {
        let r = self.resolve(p);
        if let Some(why) = crate::util::paths::escapes_on_disk(&r, &self.checkout()) {
            return Err(Error::config(
                self.file.as_deref(),
                key,
                format!(
                    "{}: {key}: {} is refused: {why}; give a file elsewhere on the command line",
                    self.name(),
                    p.display()
                ),
            ));
        }
        Ok(r)
    }

    /// Corpus roots: the flag's, else the config's, else an error. Each is
    /// confined (see `confine_roots`).
    pub fn corpus_roots(&self, flag: &[PathBuf]) -> Result<Vec<PathBuf>> {
        if flag.is_empty() && self.corpus.paths.is_empty() {
            return Err(Error::corpus(
                None,
                "no corpus given: use --corpus PATH... or set corpus.paths in fpgate.toml",
            ));
        }
        self.confine_roots(flag, &self.corpus.paths, "corpus.paths")
    }

    /// Roots to walk (corpus or known-bad samples): the flag's, else the
    /// config's (`key`). Whoever names a root, it is resolved: a root the
    /// config names (or data such as a report) must lie in the checkout,
    /// outside its version-control metadata and the kernel's pseudo file
    /// systems; a root given on the command line is read as given, except
    /// that one inside the checkout which a link leads elsewhere is refused
    /// like the config's (a change can commit `corpus` as a link to the CI
    /// runner's home). Refusals are exit 2, before anything is read.
    pub fn confine_roots(
        &self,
        flag: &[PathBuf],
        from_cfg: &[PathBuf],
        key: &str,
    ) -> Result<Vec<PathBuf>> {
        if !flag.is_empty() {
            let home = crate::util::paths::checkout_of(Path::new("."));
            for p in flag {
                confine_flag_root(p, &home)?;
            }
            return Ok(flag.to_vec());
        }
        let roots = self.resolve_all(from_cfg);
        self.confine_data_roots(&roots, key)?;
        Ok(roots)
    }

    /// Roots named by the config, or by data (a report): each must lie in
    /// the config's checkout, outside its metadata and pseudo files.
    pub fn confine_data_roots(&self, roots: &[PathBuf], key: &str) -> Result<()> {
        let home = self.checkout();
        for r in roots {
            // A root that does not exist is the walk's error.
            if let Some(why) = crate::util::paths::escapes_on_disk(r, &home) {
                return Err(Error::config(
                    self.file.as_deref(),
                    key,
                    format!(
                        "{key}: {} is refused: {why}; fpgate.toml may only name paths in its own checkout: give a path elsewhere on the command line",
                        r.display()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// How to walk the corpus: the config's globs plus the flags'.
    pub fn walk_options(
        &self,
        follow_symlinks: bool,
        critical: &[String],
        exclude: &[String],
    ) -> crate::corpus::WalkOptions {
        crate::corpus::WalkOptions {
            follow_symlinks: follow_symlinks || self.corpus.follow_symlinks.unwrap_or(false),
            critical: self
                .corpus
                .critical
                .iter()
                .chain(critical)
                .cloned()
                .collect(),
            exclude: self.corpus.exclude.iter().chain(exclude).cloned().collect(),
        }
    }

    /// How archives are read: `corpus.archives` (off with `no_archives`),
    /// the caps, each member at most `member_bytes` (the run's
    /// `max_file_size`).
    pub fn archives(
        &self,
        no_archives: bool,
        walk: &crate::corpus::WalkOptions,
        member_bytes: u64,
    ) -> Result<crate::corpus::members::Archives> {
        use crate::corpus::archive::Caps;
        let c = &self.corpus;
        let size = |key: &str, v: &Option<String>, default: u64| -> Result<u64> {
            match v {
                None => Ok(default),
                Some(s) => crate::cli::parse_size(s).map_err(|e| {
                    Error::config(
                        self.file.as_deref(),
                        key,
                        format!("fpgate.toml: {key}: {e}"),
                    )
                }),
            }
        };
        let positive = |key: &str, v: Option<u64>, default: u64| -> Result<u64> {
            match v {
                Some(0) => Err(Error::config(
                    self.file.as_deref(),
                    key,
                    format!("fpgate.toml: {key}: must be at least 1"),
                )),
                Some(n) => Ok(n),
                None => Ok(default),
            }
        };
        let d = Caps::default();
        let caps = Caps {
            depth: positive(
                "corpus.archive_depth",
                c.archive_depth.map(u64::from),
                d.depth.into(),
            )?
            .min(u64::from(u32::MAX)) as u32,
            members: positive("corpus.archive_members", c.archive_members, d.members)?,
            member_bytes,
            total_bytes: size("corpus.archive_size", &c.archive_size, d.total_bytes)?,
            ratio: positive("corpus.archive_ratio", c.archive_ratio, d.ratio)?,
            ratio_after: d.ratio_after,
            time: std::time::Duration::from_secs(positive(
                "corpus.archive_time",
                c.archive_time,
                d.time.as_secs(),
            )?),
            dictionary_bytes: size(
                "corpus.archive_dictionary",
                &c.archive_dictionary,
                d.dictionary_bytes,
            )?,
        };
        let enabled = !no_archives && c.archives.unwrap_or(true);
        crate::corpus::members::Archives::new(enabled, caps, walk)
    }

    /// Worker threads: the flag's, else the config's, else every core.
    pub fn threads(&self, flag: Option<u16>) -> usize {
        flag.or(self.scan.threads)
            .map(usize::from)
            .filter(|n| *n > 0)
            .unwrap_or_else(|| {
                std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(1)
            })
    }

    /// The `[defines]` table as `--define`s.
    pub fn defines(&self) -> Result<Vec<Define>> {
        self.defines
            .iter()
            .map(|(name, v)| {
                let value = match v {
                    toml::Value::String(s) => DefineValue::Str(s.clone()),
                    toml::Value::Integer(i) => DefineValue::Int(*i),
                    toml::Value::Float(f) => DefineValue::Float(*f),
                    toml::Value::Boolean(b) => DefineValue::Bool(*b),
                    other => {
                        return Err(Error::config(
                            self.file.as_deref(),
                            &format!("defines.{name}"),
                            format!(
                        "{}: defines.{name}: must be a string, integer, float or boolean, not {}",
                        self.name(),
                        other.type_str()
                    ),
                        ))
                    }
                };
                Ok(Define {
                    name: name.clone(),
                    value,
                })
            })
            .collect()
    }

    pub fn name(&self) -> String {
        self.file
            .as_ref()
            .map(|f| f.display().to_string())
            .unwrap_or_else(|| FILE_NAME.to_string())
    }
}

/// A path given on the command line: read as given, unless a symbolic link
/// in a directory of the checkout `home` (which a change can commit) takes
/// it elsewhere (outside the checkout, into its metadata or a pseudo file
/// system): the command line named the checkout's directory, not what a
/// change linked it to.
pub fn confine_flag_root(p: &Path, home: &Path) -> Result<()> {
    // A path that does not exist is the walk's error.
    let Some(why) = crate::util::paths::escapes_on_disk(p, home) else {
        return Ok(());
    };
    match crate::util::paths::link_in_checkout(p, home) {
        None => Ok(()),
        Some(_) => Err(Error::corpus(
            Some(&p.display().to_string()),
            format!(
                "{} is refused: it is a link (or lies under one) and resolves elsewhere: {why}; name the target itself on the command line if it is meant",
                p.display()
            ),
        )),
    }
}

/// Parse a config; errors name the file, line and column (and the key).
pub fn parse(text: &str, path: &Path) -> Result<Config> {
    toml::from_str::<Config>(text).map_err(|e| Error::toml("config", path, text, &e))
}

/// The nearest `fpgate.toml` in the current directory or above it, as a
/// relative path (`fpgate.toml`, `../fpgate.toml`, ...) so reports stay short.
fn discover() -> Option<PathBuf> {
    let cwd = std::env::current_dir().ok()?;
    let mut rel = PathBuf::new();
    for dir in cwd.ancestors() {
        if dir.join(FILE_NAME).is_file() {
            return Some(if rel.as_os_str().is_empty() {
                PathBuf::from(FILE_NAME)
            } else {
                rel.join(FILE_NAME)
            });
        }
        rel.push("..");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_config_parses() {
        let c = parse(
            r#"
[rules]
candidate = ["rules/candidate"]
baseline = ["rules/released"]

[corpus]
paths = ["corpus"]
lock = "corpus.lock"
critical = ["**/Squirrel.exe"]

[scan]
threads = 2
timeout = 30
max_file_size = "64M"

[exceptions]
file = "exc.toml"
strict = true

[warnings]
deny_codes = ["slow_pattern"]

[defines]
owner = "SYSTEM"
level = 3
"#,
            Path::new("fpgate.toml"),
        )
        .unwrap();
        assert_eq!(c.rules.candidate, vec![RulePath::plain("rules/candidate")]);
        assert_eq!(c.corpus.critical, vec!["**/Squirrel.exe".to_string()]);
        assert_eq!(c.scan.threads, Some(2));
        assert_eq!(c.exceptions.strict, Some(true));
        let d = c.defines().unwrap();
        assert_eq!(d.len(), 2);
    }

    #[test]
    fn unknown_key_is_an_error_with_its_line() {
        let e = parse(
            "[corpus]\npaths = [\"c\"]\ncriticl = [\"x\"]\n",
            Path::new("fpgate.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("fpgate.toml:3:"), "{e}");
        assert!(e.contains("criticl"), "{e}");
    }

    #[test]
    fn wrong_type_is_an_error_with_its_line() {
        let e = parse("[scan]\nthreads = \"two\"\n", Path::new("x.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("x.toml:2:"), "{e}");
    }
}
