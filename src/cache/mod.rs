//! One run's use of the results cache: for every file and ruleset, which
//! rules still have to run (none, the changed ones, or all), and the
//! report's matches put together from cached and fresh results.

use crate::rules::evidence::PatternEvidence;
use crate::store::{self, SetId, Subject};

/// The evidence of a rule's match, as the store keeps it.
type Evidence = Vec<PatternEvidence>;
type Known = store::Known<Evidence>;
type Writes = store::Writes<Evidence>;
use crate::corpus::format::Format;
use crate::corpus::members::{Archives, Member, Shape};

mod shapes;
use crate::corpus::read::{PreHashed, Stamp};
use crate::corpus::CorpusFile;
use crate::engine::{Answer, Hit, Plan, Planner, Subjects};
use crate::rules::keys::{Efp, RuleKeys};
use crate::rules::{CompileOptions, Ruleset};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use yara_x::Rules;

/// A set of rules, as a bit per rule of a ruleset's `RuleKeys`.
type Mask = Vec<u64>;

fn mask_new(n: usize) -> Mask {
    vec![0; n.div_ceil(64)]
}
fn mask_set(m: &mut Mask, i: usize) {
    m[i / 64] |= 1 << (i % 64);
}
fn mask_has(m: &Mask, i: usize) -> bool {
    m[i / 64] & (1 << (i % 64)) != 0
}
fn mask_count(m: &Mask) -> usize {
    m.iter().map(|w| w.count_ones() as usize).sum()
}

/// The rules of a ruleset that are new to the cache, compiled on their own.
pub struct Delta {
    pub rules: Rules,
    /// The rules compiled (the new ones and their dependencies).
    members: Mask,
    sets: [(SetId, Vec<Efp>); 2],
    /// Rule count, for the log.
    pub count: usize,
}

/// The cache's view of one ruleset.
pub struct RulesetPlan<'r> {
    rs: &'r Ruleset,
    keys: Option<&'r RuleKeys>,
    /// Per known set, the rules of this ruleset it covers.
    set_masks: Vec<Mask>,
    /// The whole ruleset, split into path-independent and path-dependent
    /// rules (stored under the content and under content and path).
    full: [(SetId, Vec<Efp>); 2],
    pub delta: Option<Delta>,
    all: Mask,
}

impl RulesetPlan<'_> {
    /// The rules of this ruleset that none of the known sets `sets`
    /// (indices into `set_masks`) covers.
    fn not_covered_by(&self, sets: impl IntoIterator<Item = usize>) -> Mask {
        let mut m = self.all.clone();
        for s in sets {
            for (w, c) in m.iter_mut().zip(&self.set_masks[s]) {
                *w &= !c;
            }
        }
        m
    }
}

/// Everything one run needs from and gives to the cache.
pub struct CacheRun<'r> {
    pub known: Known,
    pub plans: Vec<RulesetPlan<'r>>,
    pub writes: Mutex<Writes>,
    /// Unix time at the start of the run (see `Stamp::racy`).
    pub now: i64,
    memo: Mutex<HashMap<(usize, Vec<u32>), Mask>>,
    /// Files answered from the cache without reading them, read but not
    /// scanned, scanned with changed rules only, scanned with every rule.
    pub counts: [std::sync::atomic::AtomicUsize; 4],
    /// What the run's unchanged archives hold, as read before (see
    /// `load_members`), and what this run read of others.
    shapes: HashMap<[u8; 32], std::sync::Arc<Vec<Shape>>>,
    new_shapes: Mutex<Vec<([u8; 32], Vec<u8>)>>,
    /// How archives are read in this run: the key of `shapes` in the store.
    archives: Option<std::sync::Arc<Archives>>,
}

/// A file's `Subjects` (computed once per file: plan, record and assemble
/// all use them).
pub fn subjects(sha: &[u8; 32], f: &CorpusFile) -> Subjects {
    let mut h = Sha256::new();
    h.update(b"path-externals\0");
    h.update(sha);
    for ext in crate::rules::PATH_EXTERNALS {
        let v = crate::corpus::external_value(ext, f, &[]);
        h.update((v.len() as u64).to_le_bytes());
        h.update(v.as_bytes());
    }
    (*sha, h.finalize().into())
}

fn split_sets(keys: &RuleKeys, members: impl Iterator<Item = usize>) -> [(SetId, Vec<Efp>); 2] {
    let mut plain = Vec::new();
    let mut path = Vec::new();
    for i in members {
        let r = &keys.rules[i];
        if r.path_dependent {
            path.push(r.efp);
        } else {
            plain.push(r.efp);
        }
    }
    [(store::set_id(&plain), plain), (store::set_id(&path), path)]
}

/// How the files of a run were answered, with a results cache.
#[derive(
    Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq, Default, schemars::JsonSchema,
)]
pub struct CacheStats {
    pub dir: String,
    /// Every result cached and the file unchanged: not even read.
    pub files_unread: usize,
    /// Read (new stamp) but every result cached, or another path of the
    /// same content scanned in this run.
    pub files_read_not_scanned: usize,
    /// Scanned with the rules that had no cached results only.
    pub files_scanned_changed_rules: usize,
    /// Scanned with every rule.
    pub files_scanned_all_rules: usize,
    /// Rules run alone on the files that had everything else cached, per
    /// ruleset label.
    pub changed_rules: std::collections::BTreeMap<String, usize>,
    /// Rulesets that cannot be cached per rule, and why.
    pub uncached_rulesets: std::collections::BTreeMap<String, String>,
    /// Rulesets whose complete compiled form this run built or loaded (a
    /// file needed every rule, or the set was compiled in full); a run that
    /// the cache and the changed rules answer lists none.
    #[serde(default)]
    pub full_rules_loaded: Vec<String>,
}

impl<'r> CacheRun<'r> {
    /// Load what the cache knows about the rules of `rulesets`.
    pub fn new(cache: &mut store::Cache, rulesets: &[&'r Ruleset]) -> CacheRun<'r> {
        let all: HashSet<Efp> = rulesets
            .iter()
            .filter_map(|rs| rs.cache.as_ref().ok())
            .flat_map(|k| k.rules.iter().map(|r| r.efp))
            .collect();
        let known = if all.is_empty() {
            Known::default()
        } else {
            cache.known(&all)
        };
        let known_sets: Vec<HashSet<Efp>> = known
            .sets
            .iter()
            .map(|s| s.iter().copied().collect())
            .collect();
        let mut writes = Writes::default();
        writes.touch = known.set_ids.clone();
        let plans = rulesets
            .iter()
            .map(|rs| {
                let keys = rs.cache.as_ref().ok();
                let n = keys.map_or(0, |k| k.rules.len());
                let mut all = mask_new(n);
                (0..n).for_each(|i| mask_set(&mut all, i));
                let set_masks = keys
                    .map(|k| {
                        known_sets
                            .iter()
                            .map(|s| {
                                let mut m = mask_new(n);
                                for (i, r) in k.rules.iter().enumerate() {
                                    if s.contains(&r.efp) {
                                        mask_set(&mut m, i);
                                    }
                                }
                                m
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let full = keys.map(|k| split_sets(k, 0..n)).unwrap_or_default();
                if keys.is_some() {
                    writes.sets.extend(full.iter().cloned());
                }
                RulesetPlan {
                    rs,
                    keys,
                    set_masks,
                    full,
                    delta: None,
                    all,
                }
            })
            .collect();
        CacheRun {
            known,
            plans,
            writes: Mutex::new(writes),
            now: store::unix_now(),
            memo: Mutex::new(HashMap::new()),
            counts: Default::default(),
            shapes: HashMap::new(),
            new_shapes: Mutex::new(Vec::new()),
            archives: None,
        }
    }

    pub fn count(&self, answer: Answer) {
        let i = match answer {
            Answer::Unread => 0,
            Answer::ReadOnly => 1,
            Answer::Delta => 2,
            Answer::Full => 3,
        };
        self.counts[i].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// How much the cache saved, for the report's timings.
    pub fn stats(&self, dir: &std::path::Path) -> CacheStats {
        let n: Vec<usize> = self
            .counts
            .iter()
            .map(|c| c.load(std::sync::atomic::Ordering::Relaxed))
            .collect();
        CacheStats {
            dir: dir.display().to_string(),
            files_unread: n[0],
            files_read_not_scanned: n[1],
            files_scanned_changed_rules: n[2],
            files_scanned_all_rules: n[3],
            changed_rules: self
                .plans
                .iter()
                .filter_map(|p| Some((p.rs.label.to_string(), p.delta.as_ref()?.count)))
                .collect(),
            uncached_rulesets: self
                .plans
                .iter()
                .filter_map(|p| {
                    let why = match &p.rs.cache {
                        Err(e) => e.clone(),
                        Ok(k) if k.uncached.is_empty() => return None,
                        Ok(k) => format!(
                            "these rules run on every file, the rest use the cache: {}",
                            k.uncached
                                .iter()
                                .map(|(r, why)| format!("{r} ({why})"))
                                .collect::<Vec<_>>()
                                .join("; ")
                        ),
                    };
                    Some((p.rs.label.to_string(), why))
                })
                .collect(),
            full_rules_loaded: self
                .plans
                .iter()
                .filter(|p| p.rs.rules.is_built())
                .map(|p| p.rs.label.to_string())
                .collect(),
        }
    }

    /// The rules of ruleset `i` the cache has no result for, for this file.
    fn missing(&self, i: usize, a: &Subject, b: &Subject) -> Option<Mask> {
        let p = &self.plans[i];
        p.keys?;
        let mut sets: Vec<u32> = self
            .known
            .done(a)
            .iter()
            .chain(self.known.done(b))
            .copied()
            .collect();
        sets.sort_unstable();
        sets.dedup();
        let key = (i, sets);
        let mut memo = self.memo.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(m) = memo.get(&key) {
            return Some(m.clone());
        }
        let m = p.not_covered_by(key.1.iter().map(|&s| s as usize));
        memo.insert(key, m.clone());
        Some(m)
    }

    /// What ruleset `i` must do with the file of subjects `s`.
    pub fn plan(&self, i: usize, s: &Subjects) -> Plan {
        let Some(missing) = self.missing(i, &s.0, &s.1) else {
            return Plan::Full;
        };
        if mask_count(&missing) == 0 {
            return Plan::Skip;
        }
        match &self.plans[i].delta {
            Some(d) if missing.iter().zip(&d.members).all(|(m, d)| m & !d == 0) => Plan::Delta,
            _ => Plan::Full,
        }
    }

    /// Before the scan: find the rules the cache lacks, for the files
    /// already hashed and, whatever was hashed, the rules no result in the
    /// cache covers (an edited rule is new to every file); when that is a
    /// minority of a ruleset (one rule edited), compile those rules with
    /// their dependencies so the scan runs only them. Returns a line for
    /// stderr per ruleset where that failed.
    ///
    /// The rules no stored result covers do not depend on how many files
    /// the early hashing reached before the rules compiled: with none (a
    /// busy machine, stamps too recent to trust), an edited rule still runs
    /// alone.
    pub fn prepare_deltas(
        &mut self,
        files: &[CorpusFile],
        pre: &[Option<Box<PreHashed>>],
        opts: &CompileOptions,
    ) -> Vec<String> {
        let mut log = Vec::new();
        let mut known: Vec<Subjects> = files
            .iter()
            .zip(pre)
            .filter_map(|(f, p)| Some(subjects(&p.as_ref()?.sha256, f)))
            .collect();
        // The members of the unchanged archives count as hashed files.
        if let Some(archives) = &self.archives {
            for (f, p) in files.iter().zip(pre) {
                let Some(shape) = p.as_ref().and_then(|p| self.shapes.get(&p.sha256)) else {
                    continue;
                };
                let x = crate::corpus::members::replay(f, shape, archives, |m| match m {
                    Member::Known(m, c) => Some(subjects(&c.0, m)),
                    _ => None,
                });
                known.extend(x.members.into_iter().filter_map(|(_, s)| s));
            }
        }
        for i in 0..self.plans.len() {
            let Some(keys) = self.plans[i].keys else {
                continue;
            };
            let n = keys.rules.len();
            // The rules no stored result covers (all of them, so no delta,
            // when the cache knows nothing), then what each hashed file lacks.
            let p = &self.plans[i];
            let mut union = p.not_covered_by(0..p.set_masks.len());
            for (a, b) in &known {
                let Some(m) = self.missing(i, a, b) else {
                    continue;
                };
                let c = mask_count(&m);
                if c > 0 && c < n {
                    for (u, w) in union.iter_mut().zip(&m) {
                        *u |= w;
                    }
                }
            }
            let wanted: Vec<usize> = (0..n).filter(|&j| mask_has(&union, j)).collect();
            if wanted.is_empty() || wanted.len() * 2 > n {
                continue;
            }
            let members_list = crate::rules::subset::closure(keys, &wanted);
            let rs = self.plans[i].rs;
            match crate::rules::subset::compile_subset(rs, &members_list, opts) {
                Ok(rules) => {
                    let mut members = mask_new(n);
                    members_list.iter().for_each(|&j| mask_set(&mut members, j));
                    let sets = split_sets(keys, members_list.iter().copied());
                    self.writes
                        .get_mut()
                        .unwrap_or_else(|e| e.into_inner())
                        .sets
                        .extend(sets.iter().cloned());
                    self.plans[i].delta = Some(Delta {
                        rules,
                        members,
                        sets,
                        count: members_list.len(),
                    });
                }
                Err(e) => log.push(format!(
                    "{} ruleset: could not compile the changed rules on their own ({e}); running all rules",
                    rs.label
                )),
            }
        }
        log
    }

    /// Remember what ruleset `i` found in a file it scanned under `plan`.
    pub fn record(&self, i: usize, s: &Subjects, plan: Plan, hits: &[Hit]) {
        let p = &self.plans[i];
        let Some(keys) = p.keys else { return };
        let sets = match (plan, &p.delta) {
            (Plan::Full, _) => &p.full,
            (Plan::Delta, Some(d)) => &d.sets,
            _ => return,
        };
        let (a, b) = *s;
        let mut found: [Vec<(Efp, Evidence)>; 2] = Default::default();
        for h in hits {
            if let Some(&j) = keys.by_name.get(&h.rule) {
                let r = &keys.rules[j];
                found[r.path_dependent as usize].push((r.efp, h.patterns.clone()));
            }
        }
        let [plain, path] = found;
        let mut w = self.writes.lock().unwrap_or_else(|e| e.into_inner());
        if !sets[0].1.is_empty() {
            w.push_done(a, sets[0].0, plain);
        }
        if !sets[1].1.is_empty() {
            w.push_done(b, sets[1].0, path);
        }
        w.spill_if_full();
    }

    /// The matches of ruleset `i` on a file: `fresh` for the rules that
    /// ran under `plan`, the cache's for the others.
    pub fn assemble(&self, i: usize, s: &Subjects, plan: Plan, fresh: Vec<Hit>) -> Vec<Hit> {
        let p = &self.plans[i];
        let Some(keys) = p.keys else { return fresh };
        let ran: Option<&Mask> = match (plan, &p.delta) {
            (Plan::Full, _) => return fresh,
            (Plan::Delta, Some(d)) => Some(&d.members),
            _ => None,
        };
        let (a, b) = *s;
        let mut out = fresh;
        for (subject, path_kind) in [(a, false), (b, true)] {
            for (efp, ev) in self.known.hits.get(&subject).into_iter().flatten() {
                let Some(&j) = keys.by_efp.get(efp) else {
                    continue;
                };
                let r = &keys.rules[j];
                if r.path_dependent != path_kind
                    || ran.is_some_and(|m| mask_has(m, j))
                    || !p.rs.info.contains_key(&r.key)
                {
                    continue;
                }
                out.push(Hit {
                    rule: r.key.clone(),
                    patterns: ev.clone(),
                });
            }
        }
        out.sort_by(|x, y| x.rule.cmp(&y.rule));
        out.dedup_by(|x, y| x.rule == y.rule);
        out
    }

    /// Remember a file's stamp and content hash.
    pub fn record_stat(
        &self,
        file: usize,
        stamp: Stamp,
        sha: [u8; 32],
        format: Format,
        container: bool,
    ) {
        if let Some(row) = store::stat_row(file, stamp, sha, format, Some(container), self.now) {
            let mut w = self.writes.lock().unwrap_or_else(|e| e.into_inner());
            w.stats.push(row);
            w.spill_if_full();
        }
    }
}

/// Stat-cache lookups for the walked files: a file whose current stamp
/// equals the remembered one gets its remembered hash.
pub fn stat_lookup(
    cache: &mut store::Cache,
    files: &[CorpusFile],
    follow_symlinks: bool,
) -> Vec<Option<Box<PreHashed>>> {
    let abs = files
        .iter()
        .map(|f| std::path::absolute(f.path()).unwrap_or_else(|_| f.path().to_path_buf()));
    cache.stats(abs, |i, e, format| {
        let f = &files[i];
        // An archive member's path is its archive's: never its stamp.
        if f.member_names().is_some() {
            return None;
        }
        let meta = if follow_symlinks {
            std::fs::metadata(f.path())
        } else {
            std::fs::symlink_metadata(f.path())
        }
        .ok()?;
        if !meta.file_type().is_file() || Stamp::of(&meta) != e.stamp {
            return None;
        }
        Some(Box::new(PreHashed {
            stamp: e.stamp,
            sha256: e.sha256,
            format,
            container: e.container,
            cached: true,
        }))
    })
}

impl Planner for CacheRun<'_> {
    fn subjects(&self, sha: &[u8; 32], f: &CorpusFile) -> Subjects {
        subjects(sha, f)
    }
    fn plan(&self, ruleset: usize, s: &Subjects) -> Plan {
        CacheRun::plan(self, ruleset, s)
    }
    fn delta_rules(&self, ruleset: usize) -> Option<&Rules> {
        self.plans.get(ruleset)?.delta.as_ref().map(|d| &d.rules)
    }
    fn record(&self, ruleset: usize, s: &Subjects, plan: Plan, hits: &[Hit]) {
        CacheRun::record(self, ruleset, s, plan, hits)
    }
    fn assemble(&self, ruleset: usize, s: &Subjects, plan: Plan, fresh: Vec<Hit>) -> Vec<Hit> {
        CacheRun::assemble(self, ruleset, s, plan, fresh)
    }
    fn record_stat(
        &self,
        file: usize,
        stamp: Stamp,
        sha: [u8; 32],
        format: Format,
        container: bool,
    ) {
        CacheRun::record_stat(self, file, stamp, sha, format, container)
    }
    fn count(&self, answer: Answer) {
        CacheRun::count(self, answer)
    }
    fn members(&self, sha256: &[u8; 32]) -> Option<std::sync::Arc<Vec<Shape>>> {
        self.shapes.get(sha256).cloned()
    }
    fn record_members(&self, sha256: &[u8; 32], shape: &[Shape]) {
        CacheRun::record_members(self, sha256, shape)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::{compile, RulePath};

    const RULES: &str = r#"
rule Mz { strings: $a = { 4D 5A } condition: $a at 0 }
rule Big { condition: filesize > 4 }
rule Word { strings: $w = "clean" condition: $w }
"#;

    fn ruleset(dir: &std::path::Path, src: &str) -> Ruleset {
        let f = dir.join("r.yar");
        std::fs::write(&f, src).unwrap();
        compile(
            "candidate",
            &[RulePath::plain(&f)],
            &CompileOptions::default(),
        )
        .unwrap()
    }

    /// One rule edited since the cached run, and no file hashed before the
    /// scan (the early hashing reached none): the edited rule alone runs,
    /// and the other rules' matches come from the cache.
    #[test]
    fn an_edited_rule_runs_alone_when_no_file_was_hashed_early() {
        let d = tempfile::tempdir().unwrap();
        let data = b"MZ a clean file";
        let path = d.path().join("x.bin");
        std::fs::write(&path, data).unwrap();
        let files = vec![CorpusFile::new(path, "x.bin", false)];
        let s = subjects(&Sha256::digest(data).into(), &files[0]);
        let mut cache = store::Cache::open(&d.path().join("cache")).unwrap();
        let opts = CompileOptions::default();

        let v1 = ruleset(d.path(), RULES);
        let mut run = CacheRun::new(&mut cache, &[&v1]);
        assert!(run.prepare_deltas(&files, &[None], &opts).is_empty());
        assert!(run.plans[0].delta.is_none(), "a cold cache: no delta");
        assert_eq!(run.plan(0, &s), Plan::Full);
        let hits = |names: &[&str]| -> Vec<Hit> {
            names
                .iter()
                .map(|n| Hit {
                    rule: ("default".to_string(), n.to_string()),
                    patterns: Vec::new(),
                })
                .collect()
        };
        run.record(0, &s, Plan::Full, &hits(&["Big", "Mz", "Word"]));
        let mut w = run.writes.into_inner().unwrap();
        cache.write(&mut w, &files);

        let v2 = ruleset(d.path(), &RULES.replace("\"clean\"", "\"dirty\""));
        let mut run = CacheRun::new(&mut cache, &[&v2]);
        assert!(run.prepare_deltas(&files, &[None], &opts).is_empty());
        assert_eq!(run.plans[0].delta.as_ref().map(|d| d.count), Some(1));
        assert_eq!(run.plan(0, &s), Plan::Delta);
        let got = run.assemble(0, &s, Plan::Delta, Vec::new());
        assert_eq!(got, hits(&["Big", "Mz"]), "cached matches; Word ran again");
    }
}
