//! The corpus recipe (`fpgate-corpus.toml`): the clean corpus as code. One
//! `[[artifact]]` per file a team's corpus holds, pinned by its sha256, with
//! where it comes from (a URL, or a registry coordinate that names exactly
//! one file), and optionally its name in reports, tier, licence and a note.
//!
//! `fpgate corpus fetch` downloads what the content-addressed store lacks
//! (`fetch`); a run reads the artifacts from the store (`store`), each shown
//! by its name: `NAME`, and its members `NAME!member`.

use super::{CorpusFile, WalkOptions};
use crate::error::{Error, Result};
use crate::util::hex::is_sha256;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The recipe's conventional file name (beside `fpgate.toml`).
pub const FILE_NAME: &str = "fpgate-corpus.toml";

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRecipe {
    #[serde(default)]
    artifact: Vec<toml::Spanned<RawArtifact>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawArtifact {
    name: Option<toml::Spanned<String>>,
    sha256: toml::Spanned<String>,
    url: Option<toml::Spanned<String>>,
    pypi: Option<toml::Spanned<String>>,
    npm: Option<toml::Spanned<String>>,
    deb: Option<toml::Spanned<String>>,
    tier: Option<toml::Spanned<String>>,
    license: Option<String>,
    note: Option<String>,
}

/// Where an artifact comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `https://`, `http://` or `file:` (a team's mirror or object store).
    Url(String),
    /// A wheel's exact file name on the Python package index, downloaded
    /// with `pip download --no-deps --only-binary=:all:` (pip's own index
    /// configuration applies).
    Pypi(Wheel),
    /// `NAME@VERSION` (NAME may be `@scope/name`), downloaded with
    /// `npm pack --ignore-scripts`.
    Npm { name: String, version: String },
    /// `PACKAGE=VERSION` or `PACKAGE:ARCH=VERSION`, downloaded with
    /// `apt-get download`.
    Deb {
        package: String,
        arch: Option<String>,
        version: String,
    },
}

/// A wheel file name, taken apart (PEP 427):
/// `{name}-{version}(-{build})?-{python}-{abi}-{platform}.whl`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wheel {
    pub file: String,
    pub name: String,
    pub version: String,
    pub python: String,
    pub abi: String,
    pub platform: String,
}

impl Source {
    /// The source as the recipe and `corpus add` write it: `KEY = "VALUE"`.
    pub fn key_value(&self) -> (&'static str, String) {
        match self {
            Source::Url(u) => ("url", u.clone()),
            Source::Pypi(w) => ("pypi", w.file.clone()),
            Source::Npm { name, version } => ("npm", format!("{name}@{version}")),
            Source::Deb {
                package,
                arch,
                version,
            } => (
                "deb",
                match arch {
                    Some(a) => format!("{package}:{a}={version}"),
                    None => format!("{package}={version}"),
                },
            ),
        }
    }

    /// `KEY:VALUE`, as `corpus add` takes it and messages show it.
    pub fn spelled(&self) -> String {
        match self {
            Source::Url(u) => u.clone(),
            other => {
                let (k, v) = other.key_value();
                format!("{k}:{v}")
            }
        }
    }

    /// The file name the source yields (an artifact's default name).
    pub fn file_name(&self) -> String {
        match self {
            Source::Url(u) => {
                let path = u.split(['?', '#']).next().unwrap_or(u);
                let last = path.rsplit('/').next().unwrap_or("");
                if last.is_empty() {
                    "artifact".to_string()
                } else {
                    last.to_string()
                }
            }
            Source::Pypi(w) => w.file.clone(),
            // As npm pack names its tarball: `@scope/name` -> `scope-name`.
            Source::Npm { name, version } => {
                format!(
                    "{}-{version}.tgz",
                    name.trim_start_matches('@').replace('/', "-")
                )
            }
            // As Debian's pool names its files: without the epoch.
            Source::Deb {
                package,
                arch,
                version,
            } => {
                let v = version.split_once(':').map_or(version.as_str(), |(_, v)| v);
                match arch {
                    Some(a) => format!("{package}_{v}_{a}.deb"),
                    None => format!("{package}_{v}.deb"),
                }
            }
        }
    }

    /// Parse one source: `KEY` is `url`, `pypi`, `npm` or `deb`. A value
    /// that could be read as an option by the client (a leading `-`), or
    /// that names anything but one exact file, is refused: a recipe is part
    /// of a change, and its values become arguments.
    pub fn parse(key: &str, value: &str) -> std::result::Result<Source, String> {
        let value = value.trim();
        let plain = |s: &str, extra: &str| {
            !s.is_empty()
                && !s.starts_with(['-', '.'])
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._+-~".contains(c) || extra.contains(c))
        };
        match key {
            "url" => {
                let lower = value.to_ascii_lowercase();
                if !(lower.starts_with("https://")
                    || lower.starts_with("http://")
                    || lower.starts_with("file:"))
                {
                    return Err(format!(
                        "url {value:?}: only https://, http:// and file: URLs are fetched"
                    ));
                }
                if value.chars().any(|c| c.is_control() || c == ' ') {
                    return Err(format!("url {value:?}: spaces and control characters are not allowed (percent-encode them)"));
                }
                Ok(Source::Url(value.to_string()))
            }
            "pypi" => {
                let Some(stem) = value.strip_suffix(".whl") else {
                    return Err(format!(
                        "pypi {value:?}: name a wheel's exact file name (NAME-VERSION-PY-ABI-PLATFORM.whl); source distributions would run the package's build code"
                    ));
                };
                let parts: Vec<&str> = stem.split('-').collect();
                if !(5..=6).contains(&parts.len()) || !parts.iter().all(|p| plain(p, "")) {
                    return Err(format!(
                        "pypi {value:?}: not a wheel file name (NAME-VERSION[-BUILD]-PY-ABI-PLATFORM.whl)"
                    ));
                }
                let n = parts.len();
                Ok(Source::Pypi(Wheel {
                    file: value.to_string(),
                    name: parts[0].to_string(),
                    version: parts[1].to_string(),
                    python: parts[n - 3].to_string(),
                    abi: parts[n - 2].to_string(),
                    platform: parts[n - 1].to_string(),
                }))
            }
            "npm" => {
                let (scope, rest) = match value.strip_prefix('@') {
                    Some(r) => match r.split_once('/') {
                        Some((s, rest)) => (Some(s), rest),
                        None => {
                            return Err(format!(
                                "npm {value:?}: a scoped name is @SCOPE/NAME@VERSION"
                            ))
                        }
                    },
                    None => (None, value),
                };
                let Some((name, version)) = rest.split_once('@') else {
                    return Err(format!(
                        "npm {value:?}: give NAME@VERSION with an exact version"
                    ));
                };
                let ok = scope.is_none_or(|s| plain(s, ""))
                    && plain(name, "")
                    && plain(version, "")
                    && version.starts_with(|c: char| c.is_ascii_digit());
                if !ok {
                    return Err(format!(
                        "npm {value:?}: give NAME@VERSION with an exact version (no ranges, tags, URLs or paths)"
                    ));
                }
                Ok(Source::Npm {
                    name: match scope {
                        Some(s) => format!("@{s}/{name}"),
                        None => name.to_string(),
                    },
                    version: version.to_string(),
                })
            }
            "deb" => {
                let Some((pkg, version)) = value.split_once('=') else {
                    return Err(format!(
                        "deb {value:?}: give PACKAGE=VERSION (or PACKAGE:ARCH=VERSION) with an exact version"
                    ));
                };
                let (package, arch) = match pkg.split_once(':') {
                    Some((p, a)) => (p, Some(a)),
                    None => (pkg, None),
                };
                let ok = plain(package, "")
                    && arch.is_none_or(|a| plain(a, ""))
                    && plain(version, ":")
                    && version.starts_with(|c: char| c.is_ascii_digit());
                if !ok {
                    return Err(format!(
                        "deb {value:?}: give PACKAGE=VERSION (or PACKAGE:ARCH=VERSION) with an exact version"
                    ));
                }
                Ok(Source::Deb {
                    package: package.to_string(),
                    arch: arch.map(str::to_string),
                    version: version.to_string(),
                })
            }
            other => Err(format!("unknown source {other:?}")),
        }
    }

    /// `corpus add SOURCE`: `https://...`, `http://...`, `file:...`,
    /// `pypi:FILE.whl`, `npm:NAME@VERSION`, `deb:PACKAGE=VERSION`.
    pub fn of_argument(arg: &str) -> std::result::Result<Source, String> {
        let lower = arg.to_ascii_lowercase();
        if lower.starts_with("https://")
            || lower.starts_with("http://")
            || lower.starts_with("file:")
        {
            return Source::parse("url", arg);
        }
        match arg.split_once(':') {
            Some((k @ ("pypi" | "npm" | "deb"), v)) => Source::parse(k, v),
            _ => Err(format!(
                "{arg:?}: a source is a URL (https://, http://, file:), pypi:WHEEL.whl, npm:NAME@VERSION or deb:PACKAGE=VERSION"
            )),
        }
    }
}

/// One artifact of the recipe.
#[derive(Debug, Clone)]
pub struct Artifact {
    /// Its name in reports (unique in the recipe).
    pub name: String,
    /// The pin, lowercase hex.
    pub sha256: String,
    pub source: Source,
    pub critical: bool,
    pub license: Option<String>,
    pub note: Option<String>,
    /// Its line in the recipe (the `[[artifact]]` table's first key).
    pub line: usize,
}

/// A parsed recipe.
#[derive(Debug, Clone, Default)]
pub struct Recipe {
    /// The file as named in messages (`REF:path` when read at a base
    /// revision).
    pub file: String,
    pub artifacts: Vec<Artifact>,
}

/// An artifact's name: what stands for its store path in reports, globs
/// and `filepath`. Not empty, no control characters, no `!` (it separates
/// members), no `%` (escapes), not absolute, no `.`/`..` components.
fn name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        return Some("is empty");
    }
    if name.chars().any(|c| c.is_control()) {
        return Some("holds a control character");
    }
    if name.contains(['!', '%', '\\']) {
        return Some("holds '!', '%' or '\\' (they separate and escape archive members)");
    }
    if name.starts_with('/') || name.starts_with('-') {
        return Some("starts with '/' or '-'");
    }
    if name
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return Some("has an empty, '.' or '..' component");
    }
    None
}

/// Parse a recipe; errors name the file, line and column.
pub fn parse(text: &str, file: &Path) -> Result<Recipe> {
    let raw: RawRecipe = toml::from_str(text).map_err(|e| Error::toml("recipe", file, text, &e))?;
    let shown = file.display().to_string();
    let at = |span: std::ops::Range<usize>, message: String| {
        let (line, column) = crate::util::line_col(text, span.start);
        Error::Input {
            what: "recipe",
            file: shown.clone(),
            line: Some(line),
            column: Some(column),
            message: format!("{shown}:{line}:{column}: {message}"),
        }
    };
    let mut artifacts: Vec<Artifact> = Vec::with_capacity(raw.artifact.len());
    let mut names = std::collections::HashMap::new();
    for spanned in raw.artifact {
        let span = spanned.span();
        let a = spanned.into_inner();
        let sources: Vec<(&str, &toml::Spanned<String>)> = [
            ("url", &a.url),
            ("pypi", &a.pypi),
            ("npm", &a.npm),
            ("deb", &a.deb),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| (k, v)))
        .collect();
        let (key, value) =
            match sources.as_slice() {
                [one] => *one,
                [] => {
                    return Err(at(
                        span,
                        "artifact has no source: give one of url, pypi, npm, deb".into(),
                    ))
                }
                [_, second, ..] => return Err(at(
                    second.1.span(),
                    "artifact has more than one source: give exactly one of url, pypi, npm, deb"
                        .into(),
                )),
            };
        let source = Source::parse(key, value.get_ref()).map_err(|m| at(value.span(), m))?;
        let sha256 = a.sha256.get_ref().trim().to_ascii_lowercase();
        if !is_sha256(&sha256) {
            return Err(at(
                a.sha256.span(),
                format!("sha256 {:?} is not 64 hex digits", a.sha256.get_ref()),
            ));
        }
        let (name, name_span) = match &a.name {
            Some(n) => (n.get_ref().clone(), n.span()),
            None => (source.file_name(), value.span()),
        };
        if let Some(why) = name_problem(&name) {
            return Err(at(name_span, format!("artifact name {name:?} {why}")));
        }
        let critical = match a.tier.as_ref().map(|t| (t.get_ref().as_str(), t.span())) {
            None | Some(("standard", _)) => false,
            Some(("critical", _)) => true,
            Some((other, span)) => {
                return Err(at(
                    span,
                    format!("tier {other:?}: a tier is \"critical\" or \"standard\""),
                ))
            }
        };
        let (line, _) = crate::util::line_col(text, span.start);
        if let Some(first) = names.insert(name.clone(), line) {
            return Err(at(
                name_span,
                format!("artifact name {name:?} is used twice (first at line {first}); names are unique (set `name`)"),
            ));
        }
        artifacts.push(Artifact {
            name,
            sha256,
            source,
            critical,
            license: a.license,
            note: a.note,
            line,
        });
    }
    Ok(Recipe {
        file: shown,
        artifacts,
    })
}

/// Read and parse a recipe file.
pub fn load(path: &Path) -> Result<Recipe> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::input(
            "recipe",
            path.display(),
            format!("cannot read the corpus recipe {}: {e}", path.display()),
        )
    })?;
    parse(&text, path)
}

/// The artifacts as corpus files: each read from the store (verified
/// against its pin first: `store::Store::verified`), shown by its name.
/// Exclude globs leave artifacts out; critical globs and the artifact's
/// tier make it critical. An artifact the store lacks is an error naming it
/// (exit 2): the corpus would be smaller than the recipe says.
pub fn corpus_files(
    recipe: &Recipe,
    store: &super::store::Store,
    walk: &WalkOptions,
) -> Result<Vec<CorpusFile>> {
    let critical = super::walk::glob_set("critical", &walk.critical)?;
    let excluded = super::walk::glob_set("exclude", &walk.exclude)?;
    let mut missing = Vec::new();
    let mut files = Vec::with_capacity(recipe.artifacts.len());
    for a in &recipe.artifacts {
        if excluded.is_match(&a.name) {
            continue;
        }
        match store.verified(&a.sha256)? {
            Some(path) => files.push(CorpusFile::stored(
                path,
                &a.name,
                a.critical || critical.is_match(&a.name),
            )),
            None => missing.push(a),
        }
    }
    if let Some(first) = missing.first() {
        let mut msg = format!(
            "{} artifact(s) of {} are not in the corpus store {}: run `fpgate corpus fetch`",
            missing.len(),
            recipe.file,
            store.dir().display()
        );
        for a in missing.iter().take(20) {
            msg.push_str(&format!(
                "\n  {}:{}: {} ({})",
                recipe.file, a.line, a.name, a.sha256
            ));
        }
        return Err(Error::corpus(Some(&first.name), msg));
    }
    Ok(files)
}

/// The whole corpus: the roots walked (none: only the recipe), and the
/// recipe's artifacts from the store (each verified against its pin before
/// anything reads it), in one sorted list.
pub fn gather(
    roots: &[PathBuf],
    opts: &WalkOptions,
    recipe: Option<(&Recipe, &super::store::Store)>,
) -> Result<super::Corpus> {
    let Some((recipe, store)) = recipe else {
        return super::walk(roots, opts);
    };
    let mut c = if roots.is_empty() {
        super::Corpus::default()
    } else {
        super::walk(roots, opts)?
    };
    let mut stored = corpus_files(recipe, store, opts)?;
    if stored.is_empty() && c.files.is_empty() {
        return Err(Error::corpus(
            Some(&recipe.file),
            format!(
                "the corpus is empty: {} names no artifact{}",
                recipe.file,
                if opts.exclude.is_empty() {
                    ""
                } else {
                    " that is not excluded"
                }
            ),
        ));
    }
    c.files.append(&mut stored);
    super::walk::sort_files(&mut c.files);
    c.recipe = Some(super::RecipeFacts {
        file: recipe.file.clone(),
        artifacts: recipe.artifacts.len(),
        store: super::display(store.dir()),
    });
    Ok(c)
}

/// A path as the recipe's `file:` URLs and messages show it.
pub fn file_url_path(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("file://")
        .or_else(|| url.strip_prefix("file:"))?;
    // file://host/path: only the local host.
    let rest = rest.strip_prefix("localhost").unwrap_or(rest);
    let decoded = percent_decode(rest)?;
    use std::os::unix::ffi::OsStringExt;
    Some(PathBuf::from(std::ffi::OsString::from_vec(decoded)))
}

fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(out)
}

/// An artifact's entry as the recipe holds it (what `corpus add` appends).
pub fn entry_text(a: &Artifact, with_name: bool) -> String {
    let q = |s: &str| toml::Value::String(s.to_string()).to_string();
    let mut t = String::from("[[artifact]]\n");
    if with_name {
        t.push_str(&format!("name = {}\n", q(&a.name)));
    }
    let (k, v) = a.source.key_value();
    t.push_str(&format!("{k} = {}\n", q(&v)));
    t.push_str(&format!("sha256 = {}\n", q(&a.sha256)));
    if a.critical {
        t.push_str("tier = \"critical\"\n");
    }
    if let Some(l) = &a.license {
        t.push_str(&format!("license = {}\n", q(l)));
    }
    if let Some(n) = &a.note {
        t.push_str(&format!("note = {}\n", q(n)));
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    const PIN: &str = "3790624780082365f47549d032f3770eeb2b1e8bd1f7b2e02dace1afa361b4ed";

    fn err(text: &str) -> String {
        parse(text, Path::new("r.toml")).unwrap_err().to_string()
    }

    #[test]
    fn sources_names_and_tiers() {
        let text = format!(
            r#"
[[artifact]]
pypi = "pip-24.3.1-py3-none-any.whl"
sha256 = "{PIN}"
license = "MIT"

[[artifact]]
npm = "@esbuild/win32-x64@0.24.0"
sha256 = "{}"
tier = "critical"

[[artifact]]
deb = "clamav=1:1.4.6+dfsg-0+deb12u1"
sha256 = "{}"

[[artifact]]
name = "vendor/agent.msi"
url = "https://mirror.example/a/agent.msi?sig=1"
sha256 = "{}"
"#,
            PIN.to_uppercase(),
            "a".repeat(64),
            "b".repeat(64)
        );
        let r = parse(&text, Path::new("r.toml")).unwrap();
        let names: Vec<&str> = r.artifacts.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "pip-24.3.1-py3-none-any.whl",
                "esbuild-win32-x64-0.24.0.tgz",
                "clamav_1.4.6+dfsg-0+deb12u1.deb",
                "vendor/agent.msi"
            ]
        );
        assert_eq!(r.artifacts[0].sha256, PIN, "pins are kept in lowercase");
        assert!(r.artifacts[1].critical && !r.artifacts[0].critical);
        assert_eq!(r.artifacts[2].line, 12, "the [[artifact]] header's line");
        match &r.artifacts[0].source {
            Source::Pypi(w) => assert_eq!(
                (
                    w.name.as_str(),
                    w.python.as_str(),
                    w.abi.as_str(),
                    w.platform.as_str()
                ),
                ("pip", "py3", "none", "any")
            ),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            Source::of_argument("deb:clamav:amd64=1.4.6")
                .unwrap()
                .spelled(),
            "deb:clamav:amd64=1.4.6"
        );
        assert_eq!(
            Source::of_argument("https://x/y.zip").unwrap().file_name(),
            "y.zip"
        );
    }

    #[test]
    fn bad_recipes_name_the_line() {
        let e = err(&format!(
            "[[artifact]]\nurl = \"https://x/a\"\nsha256 = \"{PIN}\"\nshasum = \"x\"\n"
        ));
        assert!(e.starts_with("r.toml:4:") && e.contains("shasum"), "{e}");
        let e = err("\n[[artifact]]\nurl = \"https://x/a\"\nsha256 = \"abc\"\n");
        assert!(
            e.starts_with("r.toml:4:") && e.contains("not 64 hex"),
            "{e}"
        );
        let e = err(&format!("[[artifact]]\nsha256 = \"{PIN}\"\n"));
        assert!(e.contains("no source"), "{e}");
        let e = err(&format!(
            "[[artifact]]\nurl = \"https://x/a\"\nnpm = \"a@1\"\nsha256 = \"{PIN}\"\n"
        ));
        assert!(e.contains("more than one source"), "{e}");
        let e = err(&format!(
            "[[artifact]]\nurl = \"https://x/a\"\nsha256 = \"{PIN}\"\n[[artifact]]\nurl = \"https://y/a\"\nsha256 = \"{PIN}\"\n"
        ));
        assert!(
            e.starts_with("r.toml:5:") && e.contains("used twice (first at line 1)"),
            "{e}"
        );
        for (k, v) in [
            ("url", "ftp://x/a"),
            ("url", "/etc/passwd"),
            ("pypi", "numpy==2.1"),
            ("pypi", "--index-url=http://evil/x-1-py3-none-any.whl"),
            ("npm", "left-pad"),
            ("npm", "left-pad@^1"),
            ("npm", "left-pad@latest"),
            ("npm", "git+https://x/y@1"),
            ("deb", "jq"),
            ("deb", "-o=Dir::Etc=/tmp=1"),
            ("deb", "jq=1.6 evil"),
        ] {
            let e = err(&format!("[[artifact]]\n{k} = {v:?}\nsha256 = \"{PIN}\"\n"));
            assert!(e.starts_with("r.toml:2:"), "{k} {v}: {e}");
        }
        for name in ["", "a!b", "../x", "/abs", "a//b", "x%41", "tab\there"] {
            let e = err(&format!(
                "[[artifact]]\nname = {name:?}\nurl = \"https://x/a\"\nsha256 = \"{PIN}\"\n"
            ));
            assert!(e.contains("artifact name"), "{name}: {e}");
        }
        let e = err(&format!(
            "[[artifact]]\nurl = \"https://x/a\"\nsha256 = \"{PIN}\"\ntier = \"gold\"\n"
        ));
        assert!(e.contains("tier \"gold\""), "{e}");
    }

    #[test]
    fn entries_written_by_add_parse_back() {
        let a = Artifact {
            name: "x \"quoted\".zip".into(),
            sha256: PIN.into(),
            source: Source::Url("https://h/p/x.zip".into()),
            critical: true,
            license: Some("MIT".into()),
            note: Some("first pin: trust on first use".into()),
            line: 0,
        };
        let r = parse(&entry_text(&a, true), Path::new("r")).unwrap();
        let b = &r.artifacts[0];
        assert_eq!(
            (&b.name, &b.sha256, &b.source, b.critical, &b.license, &b.note),
            (&a.name, &a.sha256, &a.source, a.critical, &a.license, &a.note)
        );
        assert_eq!(
            file_url_path("file:///tmp/a%20b.zip"),
            Some(PathBuf::from("/tmp/a b.zip"))
        );
    }
}
