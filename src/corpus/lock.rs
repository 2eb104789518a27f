//! The corpus lock (`fpgate corpus index`): every file's path, size,
//! sha256, format and tier, and one hash over the whole list. A gate run
//! with a lock refuses a corpus whose locked files are missing or changed,
//! so a moved or shrunken corpus can never pass quietly.

use crate::corpus::Corpus;
use crate::error::{Error, Result};
use crate::util::hex::hex;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::Path;

pub const KIND: &str = "fpgate-corpus-lock";
/// Schema 2: archive members are entries (`pkg.whl!lib/x.so`) when
/// `archives` is true. Schema 1 locks (no members) still verify.
pub const LOCK_SCHEMA: u32 = 2;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Lock {
    pub kind: String,
    pub schema_version: u32,
    pub fpgate_version: String,
    /// sha256 over every entry (see `corpus_hash`).
    pub corpus_hash: String,
    /// Were archive members read (and listed as entries)? Absent in
    /// schema 1 locks, which list none.
    #[serde(default)]
    pub archives: bool,
    pub files: Vec<LockEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(deny_unknown_fields)]
pub struct LockEntry {
    /// Relative to its corpus root; an archive member as
    /// `ARCHIVE!member` (see `CorpusFile::member`).
    pub path: String,
    pub size: u64,
    pub sha256: String,
    pub format: String,
    pub tier: String,
    /// Information, not part of the corpus hash: the `[[tiers.critical]]`
    /// rules whose anchor the file's signature verified to, as
    /// `rule: signer subject`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signed_by: Vec<String>,
}

/// The hash over a sorted entry list: one line per file.
pub fn corpus_hash(entries: &[LockEntry]) -> String {
    let mut h = Sha256::new();
    for e in entries {
        hash_line(&mut h, &e.path, e.size, &e.sha256, &e.format, &e.tier);
    }
    hex(&h.finalize())
}

fn hash_line(h: &mut Sha256, path: &str, size: u64, sha256: &str, format: &str, tier: &str) {
    h.update(format!("{path}\t{size}\t{sha256}\t{format}\t{tier}\n"));
}

/// What a scanned file's content is: its sha256, size and format.
pub type Content = ([u8; 32], u64, crate::corpus::format::Format);

/// Entries for the files whose content is given (the scanned ones), sorted
/// by path. `contents` is in the order of `corpus.files`.
pub fn entries(corpus: &Corpus, contents: &[Option<Content>]) -> Result<Vec<LockEntry>> {
    let content = |i: usize| contents.get(i).copied().flatten();
    Ok(in_order(corpus, content)?
        .into_iter()
        .filter_map(|i| Some((&corpus.files[i], content(i)?)))
        .map(|(f, (sha256, size, format))| LockEntry {
            path: f.rel().to_string(),
            size,
            sha256: hex(&sha256),
            format: format.to_string(),
            tier: crate::corpus::Tier::of(f.critical).as_str().to_string(),
            signed_by: corpus
                .signed
                .get(&hex(&sha256))
                .map(|by| {
                    by.iter()
                        .map(|b| match &b.catalog {
                            None => format!("{}: {}", b.anchor, b.subject),
                            Some(c) => format!("{}: {} (catalog {c})", b.anchor, b.subject),
                        })
                        .collect()
                })
                .unwrap_or_default(),
        })
        .collect())
}

/// `corpus_hash(&entries(corpus, contents)?)`, without holding the entries
/// or the contents (a report's corpus hash, over a million files):
/// `content(i)` is the content of `corpus.files[i]`, if it was scanned.
pub fn hash_of(corpus: &Corpus, content: impl Fn(usize) -> Option<Content>) -> Result<String> {
    let mut h = Sha256::new();
    for i in in_order(corpus, &content)? {
        let Some((sha256, size, format)) = content(i) else {
            continue;
        };
        let f = &corpus.files[i];
        let tier = crate::corpus::Tier::of(f.critical).as_str();
        hash_line(
            &mut h,
            f.rel(),
            size,
            &hex(&sha256),
            &format.to_string(),
            tier,
        );
    }
    Ok(hex(&h.finalize()))
}

/// The indices of the files whose content is given, sorted by their
/// root-relative path, which must be unique. (With one root, that is the
/// corpus order, which is checked rather than sorted.)
fn in_order(corpus: &Corpus, content: impl Fn(usize) -> Option<Content>) -> Result<Vec<usize>> {
    let mut out: Vec<usize> = (0..corpus.files.len())
        .filter(|&i| content(i).is_some())
        .collect();
    let rel = |i: usize| corpus.files[i].rel();
    if !out.windows(2).all(|w| rel(w[0]) < rel(w[1])) {
        out.sort_by(|&a, &b| rel(a).cmp(rel(b)));
    }
    if let Some(w) = out.windows(2).find(|w| rel(w[0]) == rel(w[1])) {
        let path = rel(w[0]);
        return Err(Error::corpus(
            Some(path),
            format!(
                "two corpus roots both hold {path} (relative paths must be unique across roots)"
            ),
        ));
    }
    Ok(out)
}

pub fn build(entries: Vec<LockEntry>, archives: bool) -> Lock {
    Lock {
        kind: KIND.into(),
        schema_version: LOCK_SCHEMA,
        fpgate_version: env!("CARGO_PKG_VERSION").into(),
        corpus_hash: corpus_hash(&entries),
        archives,
        files: entries,
    }
}

/// Read and verify a lock file: well-formed, ours, and not edited by hand
/// (its hash must match its entries).
pub fn load(path: &Path) -> Result<Lock> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::io(
            path.display(),
            format!("cannot read corpus lock {}: {e}", path.display()),
        )
    })?;
    parse(&text, path)
}

/// Parse and verify the text of a lock file (`path` names it in errors).
pub fn parse(text: &str, path: &Path) -> Result<Lock> {
    let lock: Lock = serde_json::from_str(text).map_err(|e| {
        Error::input(
            "corpus lock",
            path.display(),
            format!(
                "{}:{}:{}: not a valid corpus lock: {e}",
                path.display(),
                e.line(),
                e.column()
            ),
        )
    })?;
    if lock.kind != KIND || !(1..=LOCK_SCHEMA).contains(&lock.schema_version) {
        return Err(Error::input(
            "corpus lock",
            path.display(),
            format!(
                "{}: not an fpgate corpus lock of schema 1 to {LOCK_SCHEMA} (kind {:?}, schema {})",
                path.display(),
                lock.kind,
                lock.schema_version
            ),
        ));
    }
    let mut sorted = lock.files.clone();
    sorted.sort();
    if sorted != lock.files || corpus_hash(&lock.files) != lock.corpus_hash {
        return Err(Error::input(
            "corpus lock",
            path.display(),
            format!(
                "{}: corpus_hash does not match the entries: the lock was edited or corrupted; \
             rebuild it with `fpgate corpus index`",
                path.display()
            ),
        ));
    }
    Ok(lock)
}

/// What the lock check found.
#[derive(Debug, Clone, Serialize, PartialEq, Default, schemars::JsonSchema)]
pub struct LockCheck {
    pub file: String,
    pub corpus_hash: String,
    /// Locked files present with the locked content.
    pub verified: usize,
    /// Files in the corpus that the lock does not list (reported, allowed).
    pub new_files: Vec<String>,
    /// What the check has to say beyond the counts (a lock of an older
    /// schema, archives read in one and not the other).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// Compare a run with its lock. Locked files that are missing, or present
/// with another content, are an error (exit 2); locked files that could not
/// be read are already unscanned (exit 3), so they are not repeated here.
/// `scanned` says, per corpus file, whether it was scanned.
pub fn check(
    lock: &Lock,
    lock_path: &Path,
    current: &[LockEntry],
    scanned: &[bool],
    corpus: &Corpus,
) -> Result<LockCheck> {
    let now: BTreeMap<&str, &LockEntry> = current.iter().map(|e| (e.path.as_str(), e)).collect();
    let listed_unscanned: std::collections::HashSet<&str> = corpus
        .files
        .iter()
        .zip(scanned)
        .filter(|(_, ok)| !**ok)
        .map(|(f, _)| f.rel())
        .collect();
    let mut missing = Vec::new();
    let mut changed = Vec::new();
    let mut retiered = Vec::new();
    let mut verified = 0;
    for e in &lock.files {
        match now.get(e.path.as_str()) {
            Some(n) if n.sha256 == e.sha256 && n.size == e.size => {
                verified += 1;
                if n.tier != e.tier {
                    retiered.push(format!("{} ({} -> {})", e.path, e.tier, n.tier));
                }
            }
            Some(n) => changed.push(format!(
                "{} (locked {} / {} bytes, now {} / {} bytes)",
                e.path,
                &e.sha256[..12],
                e.size,
                &n.sha256[..12],
                n.size
            )),
            None if listed_unscanned.contains(e.path.as_str()) => {}
            None => missing.push(e.path.clone()),
        }
    }
    if !missing.is_empty() || !changed.is_empty() {
        let mut msg = format!(
            "the corpus does not match {}: {} locked file(s) missing, {} changed",
            lock_path.display(),
            missing.len(),
            changed.len()
        );
        if lock.archives && missing.iter().any(|m| m.contains('!')) {
            msg.push_str(
                " (the lock lists archive members: run with archives read, or re-index with `fpgate corpus index --no-archives`)",
            );
        }
        for m in missing.iter().take(20) {
            msg.push_str(&format!("\n  missing: {}", crate::util::escape::term(m)));
        }
        for c in changed.iter().take(20) {
            msg.push_str(&format!("\n  changed: {}", crate::util::escape::term(c)));
        }
        if missing.len() + changed.len() > 40 {
            msg.push_str("\n  ...");
        }
        return Err(Error::LockMismatch {
            lock: lock_path.display().to_string(),
            file: missing.first().or(changed.first()).map(|s| s.to_string()),
            message: msg,
        });
    }
    let locked: std::collections::HashSet<&str> =
        lock.files.iter().map(|e| e.path.as_str()).collect();
    let members_now = corpus.files.iter().any(|f| f.member_names().is_some());
    let mut notes = Vec::new();
    // A tier is information: a signature rule (or a glob) added since the
    // lock changes it without changing the corpus.
    if !retiered.is_empty() {
        let shown: Vec<&str> = retiered.iter().take(10).map(String::as_str).collect();
        notes.push(format!(
            "{} locked file(s) changed tier since {} (not a mismatch): {}{}",
            retiered.len(),
            lock_path.display(),
            shown.join(", "),
            if retiered.len() > 10 { ", ..." } else { "" }
        ));
    }
    if members_now && !lock.archives {
        notes.push(format!(
            "{} lists no archive members (schema {}{}): the members read in this run are new files to it; re-index with `fpgate corpus index` to lock them",
            lock_path.display(),
            lock.schema_version,
            if lock.schema_version < 2 { ", made before members were read" } else { ", made with --no-archives" }
        ));
    }
    Ok(LockCheck {
        file: lock_path.display().to_string(),
        corpus_hash: lock.corpus_hash.clone(),
        verified,
        new_files: current
            .iter()
            .filter(|e| !locked.contains(e.path.as_str()))
            .map(|e| e.path.clone())
            .collect(),
        notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(p: &str, sha: char) -> LockEntry {
        LockEntry {
            path: p.into(),
            size: 1,
            sha256: sha.to_string().repeat(64),
            format: "other".into(),
            tier: "standard".into(),
            signed_by: Vec::new(),
        }
    }

    #[test]
    fn the_streamed_corpus_hash_is_the_hash_of_the_entries() {
        use crate::corpus::format::Format;
        use crate::corpus::CorpusFile;
        let file =
            |rel: &str, critical| CorpusFile::new(format!("root/{rel}").into(), rel, critical);
        let mut corpus = Corpus {
            files: vec![
                file("b/z", false),
                file("a", true),
                file("b/a", false),
                file("c", false),
            ],
            ..Default::default()
        };
        let contents = vec![
            Some(([2; 32], 10, Format::Pe)),
            Some(([1; 32], 0, Format::Other)),
            Some(([2; 32], 10, Format::Pe)),
            None, // not scanned: not in the lock, not in the hash
        ];
        let listed = entries(&corpus, &contents).unwrap();
        let paths: Vec<&str> = listed.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["a", "b/a", "b/z"]);
        assert_eq!(listed[0].tier, "critical");
        assert_eq!(
            hash_of(&corpus, |i| contents[i]).unwrap(),
            corpus_hash(&listed)
        );
        let mut other = contents.clone();
        other[2] = Some(([3; 32], 10, Format::Pe));
        assert_ne!(
            hash_of(&corpus, |i| other[i]).unwrap(),
            corpus_hash(&listed)
        );
        // Two roots holding the same relative path: an error either way.
        corpus.files[3] = file("a", false);
        let mut dup = contents.clone();
        dup[3] = Some(([4; 32], 1, Format::Elf));
        let e = hash_of(&corpus, |i| dup[i]).unwrap_err().to_string();
        assert!(e.contains("two corpus roots both hold a"), "{e}");
        assert_eq!(entries(&corpus, &dup).unwrap_err().to_string(), e);
    }

    #[test]
    fn edited_or_truncated_locks_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("corpus.lock");
        let lock = build(vec![entry("a", 'a'), entry("b", 'b')], true);
        std::fs::write(&p, serde_json::to_string_pretty(&lock).unwrap()).unwrap();
        assert_eq!(load(&p).unwrap(), lock);

        let text = std::fs::read_to_string(&p).unwrap();
        std::fs::write(&p, text.replace(&"b".repeat(64), &"c".repeat(64))).unwrap();
        assert!(load(&p)
            .unwrap_err()
            .to_string()
            .contains("was edited or corrupted"));

        std::fs::write(&p, &text[..text.len() / 2]).unwrap();
        let e = load(&p).unwrap_err().to_string();
        assert!(
            e.contains("corpus.lock:") && e.contains("not a valid corpus lock"),
            "{e}"
        );

        std::fs::write(&p, text.replace(KIND, "something-else")).unwrap();
        assert!(load(&p)
            .unwrap_err()
            .to_string()
            .contains("not an fpgate corpus lock"));
    }
}
