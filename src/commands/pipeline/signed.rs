//! Critical by verified code signature (`[[tiers.critical]]`): after the
//! scan, every PE entry's Authenticode signatures are verified to the
//! rules' anchors (`corpus::signature`), once per content: the scan's
//! workers judge every PE content they read while its bytes are in memory
//! (`ScanOptions::signatures`); verdicts are kept in the results cache
//! under the rules' fingerprint (anchors, date, fpgate's version), so a
//! warm run verifies nothing. An entry whose signature chains to an anchor
//! becomes critical; an archive member is judged by its own signature only
//! (it inherits nothing from a signed container). What neither the scan
//! nor the cache judged (a content the results cache answered without
//! reading, before these rules existed) is read again: files from disk,
//! members from their container, each container opened once.

use crate::corpus::format::Format;
use crate::corpus::signature::{self, Judgement};
use crate::corpus::{archive, Corpus, CorpusFile};
use crate::engine::Outcome;
use crate::settings::tiers::TierRules;
use rayon::prelude::*;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

fn domain(rules: &TierRules) -> String {
    format!("tiers2/{}", crate::util::hex::hex(&rules.fingerprint[..16]))
}

/// Mark the entries signed to an anchor critical and record who signed
/// them (by content, in `corpus.signed`): by a signature of their own, or
/// through a catalog of the corpus signed to an anchor. Returns how many
/// entries it made critical.
pub(crate) fn apply(
    corpus: &mut Corpus,
    outcomes: &[Outcome],
    rules: &TierRules,
    cache_dir: Option<&Path>,
    scan: &crate::engine::ScanOptions,
) -> usize {
    // Each content to judge (PE contents, and catalog candidates: entries
    // named *.cat), and the entries that hold it.
    let mut holders: BTreeMap<[u8; 32], Vec<usize>> = BTreeMap::new();
    let mut catalog_named: HashSet<[u8; 32]> = HashSet::new();
    for (i, o) in outcomes.iter().enumerate().take(corpus.files.len()) {
        let Outcome::Scanned { sha256, format, .. } = o else {
            continue;
        };
        let cat = signature::is_catalog_name(corpus.files[i].display().as_bytes());
        if cat {
            catalog_named.insert(*sha256);
        }
        if cat || matches!(format, Format::Pe | Format::Dotnet) {
            holders.entry(*sha256).or_default().push(i);
        }
    }
    if holders.is_empty() {
        return 0;
    }
    let shas: Vec<[u8; 32]> = holders.keys().copied().collect();
    let dom = domain(rules);
    // What the workers judged while the bytes were in memory.
    let judged: HashMap<[u8; 32], Judgement> = scan
        .signatures
        .as_ref()
        .map(|v| v.take())
        .unwrap_or_default();
    let mut verdicts: HashMap<[u8; 32], Judgement> = HashMap::new();
    let unjudged: Vec<[u8; 32]> = shas
        .iter()
        .filter(|s| !judged.contains_key(*s))
        .copied()
        .collect();
    if let Some(dir) = cache_dir {
        for (sha, v) in unjudged
            .iter()
            .zip(crate::store::small_get(dir, &dom, &unjudged))
        {
            if let Some(v) = v.and_then(|b| serde_json::from_slice::<Judgement>(&b).ok()) {
                verdicts.insert(*sha, v);
            }
        }
    }
    let missing: Vec<([u8; 32], usize)> = unjudged
        .iter()
        .filter(|s| !verdicts.contains_key(*s))
        .map(|s| (*s, holders[s][0]))
        .collect();
    // Judged now or read again now: kept for the next run.
    let mut fresh = verify_entries(&corpus.files, &missing, &catalog_named, rules, scan);
    fresh.extend(judged);
    if let Some(dir) = cache_dir {
        let rows: Vec<([u8; 32], Vec<u8>)> = fresh
            .iter()
            .map(|(sha, v)| (*sha, serde_json::to_vec(v).unwrap_or_default()))
            .collect();
        crate::store::small_put(dir, &dom, &rows);
    }
    verdicts.extend(fresh);
    let mut made = 0;
    for (sha, idx) in &holders {
        let Some(j) = verdicts.get(sha) else {
            continue;
        };
        let hex = crate::util::hex::hex(sha);
        if !j.vouches.is_empty() && !j.signed_by.is_empty() {
            for &i in idx {
                let name = corpus.files[i].display().to_string();
                corpus
                    .catalogs
                    .add_catalog(hex.clone(), &name, &j.signed_by, &j.vouches);
            }
        }
        if j.signed_by.is_empty() {
            if !j.authenticode.is_empty() {
                corpus
                    .catalogs
                    .authenticode
                    .insert(hex, j.authenticode.clone());
            }
            continue;
        }
        for &i in idx {
            if !corpus.files[i].critical {
                corpus.files[i].critical = true;
                made += 1;
            }
        }
        corpus.signed.insert(hex, j.signed_by.clone());
    }
    // Through catalogs: a PE by its Authenticode digest, any entry by its
    // content.
    // (The digests are kept without a catalog here: a shard's partial
    // report carries them for the catalogs of other shards.)
    if corpus.catalogs.catalogs.is_empty() {
        return made;
    }
    let content: Vec<Option<[u8; 32]>> =
        outcomes.iter().map(|o| o.content().map(|c| c.0)).collect();
    made + signature::catalog_apply(corpus, &content)
}

/// Read each (content, an entry holding it) and verify its signatures:
/// files from disk, members from their container (opened once each). An
/// entry that cannot be read again is left out (not critical, not cached).
fn verify_entries(
    files: &[CorpusFile],
    missing: &[([u8; 32], usize)],
    catalog_named: &HashSet<[u8; 32]>,
    rules: &TierRules,
    scan: &crate::engine::ScanOptions,
) -> Vec<([u8; 32], Judgement)> {
    // Grouped by the file on disk.
    let mut by_container: BTreeMap<&Path, Vec<([u8; 32], usize)>> = BTreeMap::new();
    for &(sha, i) in missing {
        by_container
            .entry(files[i].path())
            .or_default()
            .push((sha, i));
    }
    let groups: Vec<_> = by_container.into_iter().collect();
    groups
        .par_iter()
        .flat_map_iter(|(path, wanted)| {
            let mut out = Vec::new();
            // As the scan opens files: regular files only, non-blocking (a
            // FIFO put in a file's place since the scan cannot hang this).
            let read = |p: &Path| -> std::io::Result<Vec<u8>> {
                let mut f = crate::corpus::store::open_regular(p, scan.follow_symlinks)?;
                let mut data = Vec::new();
                std::io::Read::read_to_end(&mut f, &mut data)?;
                Ok(data)
            };
            let Ok(data) = read(path) else {
                return out;
            };
            let verify = |sha: &[u8; 32], bytes: &[u8]| {
                signature::judge(bytes, catalog_named.contains(sha), rules)
            };
            let mut members: HashMap<&[Vec<u8>], [u8; 32]> = HashMap::new();
            for &(sha, i) in wanted {
                match files[i].member_names() {
                    None => out.push((sha, verify(&sha, &data))),
                    Some(names) => {
                        members.insert(names, sha);
                    }
                }
            }
            if !members.is_empty() {
                if let Some(format) = archive::detect(&data) {
                    let name = path
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned().into_bytes())
                        .unwrap_or_default();
                    archive::open(&data, &name, format, &scan.archives.caps, &mut |e| {
                        if let archive::Entry::File { path, data } = e {
                            if let Some(sha) = path.get(1..).and_then(|p| members.remove(p)) {
                                out.push((sha, verify(&sha, data)));
                            }
                        }
                    });
                }
            }
            out
        })
        .collect()
}
