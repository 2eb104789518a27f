//! The settings only `gate` has: which policy it applies (the base
//! revision's by default, the working tree's when the command line or the
//! base's own config asks), its candidate (always the change's rule
//! paths), its exceptions, known-bad samples and the --perf step.

use super::config::Config;
use super::{
    base, confine_flag_rules, date, exceptions_file, load, pick, Baseline, PositivesOptions, Run,
};
use crate::cli::GateArgs;
use crate::error::{Error, Result};
use crate::verdict::exceptions;
use crate::verdict::perf::PerfOptions;
use crate::verdict::policy::Policy;
use crate::verdict::report::RunKind;
use std::path::{Path, PathBuf};

impl Run {
    pub fn gate(a: &GateArgs) -> Result<Run> {
        let head = load(&a.common)?;
        // The change's rules are always gated: the candidate is the rule
        // paths of the working tree's config (confined to its checkout),
        // whichever policy applies, so a rule file the change adds under a
        // new directory is never skipped because the base did not name it.
        let head_candidate = if a.candidate.is_empty() && !head.rules.candidate.is_empty() {
            Some(head.resolve_rules(&head.rules.candidate, "rules.candidate")?)
        } else {
            None
        };
        let from = policy_source(a, head)?;
        if from.no_base_config && a.common.corpus.is_empty() {
            return Err(Error::usage(format!(
                "the policy comes from the base revision {}, which has no fpgate.toml (first adoption): \
                 give the corpus with --corpus (and the rest of the policy as flags), or apply the \
                 working tree's policy once with --policy-from-worktree",
                from.base_rev.as_deref().unwrap_or("?")
            )));
        }
        let cfg = from.cfg;
        let candidate = match head_candidate {
            Some(c) => c,
            None => pick(
                &a.candidate,
                &cfg,
                &cfg.rules.candidate,
                "--candidate",
                "rules.candidate",
            )?,
        };
        let baseline = if let Some(r) = &a.baseline_ref {
            Baseline::GitRef(r.clone())
        } else if !a.baseline.is_empty() {
            Baseline::Paths(confine_flag_rules(&a.baseline)?)
        } else if let Some(r) = &cfg.rules.baseline_ref {
            Baseline::GitRef(r.clone())
        } else if !cfg.rules.baseline.is_empty() {
            Baseline::Paths(cfg.resolve_rules(&cfg.rules.baseline, "rules.baseline")?)
        } else {
            Baseline::None
        };
        let perf = perf_options(a, &baseline)?;
        // The policy from the base: the base's recipe, not the change's
        // (a change could drop the artifacts its rules flag).
        let base_recipe = match (&from.base_rev, &a.common.recipe) {
            (Some(rev), None) => {
                match super::recipe::run_recipe_path(None, !a.common.corpus.is_empty(), &cfg)? {
                    Some(p) => base::file_at(rev, &p)?,
                    None => None,
                }
            }
            _ => None,
        };
        let mut run = Run::common(
            RunKind::Gate,
            candidate,
            baseline,
            &a.common,
            &cfg,
            base_recipe,
        )?;
        run.perf = perf;
        run.positives = positives(a, &cfg, &run)?;
        run.policy = gate_policy(a, &cfg, &run.policy, from.base_exceptions)?;
        run.policy.changes = from.changes;
        run.lock = match (&a.lock, &cfg.corpus.lock) {
            (Some(l), _) => Some(l.clone()),
            (None, Some(p)) => Some(cfg.confined_file(p, "corpus.lock")?),
            (None, None) => None,
        };
        // The policy from the base: the base's lock, not the change's.
        if let (Some(rev), Some(lock), None) = (&from.base_rev, &run.lock, &a.lock) {
            if let Some((shown, text)) = base::file_at(rev, lock)? {
                run.lock = Some(PathBuf::from(shown));
                run.lock_text = Some(text);
            }
        }
        Ok(run)
    }
}

/// `--positives` / `[positives]` (sharded like the corpus: each shard
/// scans the samples whose content is its own, `merge` classifies them).
fn positives(a: &GateArgs, cfg: &Config, _run: &Run) -> Result<Option<PositivesOptions>> {
    let paths = cfg.confine_roots(&a.positives, &cfg.positives.paths, "positives.paths")?;
    if paths.is_empty() {
        if a.require_tested {
            return Err(Error::usage(
                "--require-tested needs known-bad samples: give --positives PATH",
            ));
        }
        return Ok(None);
    }
    let meta = match &cfg.positives.meta {
        Some(m) if m.iter().any(|k| k.trim().is_empty()) => {
            return Err(Error::config(
                cfg.file.as_deref(),
                "positives.meta",
                "positives.meta: a meta key is empty",
            ))
        }
        Some(m) => m.clone(),
        None => crate::verdict::detections::DEFAULT_META
            .iter()
            .map(|s| s.to_string())
            .collect(),
    };
    Ok(Some(PositivesOptions {
        paths,
        meta,
        require_tested: a.require_tested || cfg.positives.require_tested.unwrap_or(false),
    }))
}

/// `gate --perf`: checked here, so a run that cannot measure is refused
/// before it scans.
fn perf_options(a: &GateArgs, baseline: &Baseline) -> Result<Option<PerfOptions>> {
    if !a.perf {
        return Ok(None);
    }
    if a.common.shard.is_some() {
        return Err(Error::usage(
            "--perf cannot be combined with --shard: run it in one job",
        ));
    }
    if !(a.perf_ratio.is_finite() && a.perf_ratio >= 1.0) {
        return Err(Error::usage(format!(
            "--perf-ratio {} must be a number >= 1",
            a.perf_ratio
        )));
    }
    if matches!(baseline, Baseline::None) {
        return Err(Error::usage(
            "--perf compares with a baseline: give --baseline or --baseline-ref",
        ));
    }
    Ok(Some(PerfOptions {
        runs: a.perf_runs as usize,
        ratio: a.perf_ratio,
        sample_files: a.perf_sample.max(1),
        ..Default::default()
    }))
}

/// The policy a gate applies, and its changes against the base revision.
struct PolicyFrom {
    /// The config the run applies: the working tree's, or the base's.
    cfg: Config,
    changes: Option<crate::verdict::policy_changes::PolicyChanges>,
    /// With the policy from the base: the base's exceptions (None: the
    /// base has no exceptions file), applied instead of the working tree's.
    base_exceptions: Option<Option<exceptions::ExceptionSet>>,
    /// With the policy from the base: the revision (its lock is read there).
    base_rev: Option<String>,
    /// The policy from the base, and the base has no fpgate.toml.
    no_base_config: bool,
}

impl PolicyFrom {
    fn worktree(
        cfg: Config,
        changes: Option<crate::verdict::policy_changes::PolicyChanges>,
    ) -> Self {
        PolicyFrom {
            cfg,
            changes,
            base_exceptions: None,
            base_rev: None,
            no_base_config: false,
        }
    }
}

/// Which policy a gate applies, and why (a note for stderr and the report
/// when it is not the default).
fn choose_source(
    a: &GateArgs,
    head: &Config,
    base: &base::BasePolicy,
) -> Result<(crate::verdict::policy_changes::Source, Vec<String>)> {
    use crate::verdict::policy_changes::Source;
    let rev = &base.rev;
    let base_policy = base.config.as_ref().map(|c| &c.0.policy);
    let asks_base = a.policy_from_base
        || head.policy.source == Some(Source::Base)
        || base_policy.and_then(|p| p.source) == Some(Source::Base);
    let mut notes = Vec::new();
    // `policy.source = "worktree"` was the documented default, and copied
    // configs carry it: it no longer opts out of anything.
    for (cfg, whose) in [
        (Some(head), "the working tree's"),
        (base.config.as_ref().map(|c| &c.0), "the base's"),
    ] {
        if cfg.and_then(|c| c.policy.source) == Some(Source::Worktree) && a.baseline_ref.is_some() {
            notes.push(format!(
                "policy.source = \"worktree\" in {whose} fpgate.toml no longer applies the working tree's policy \
                 (the base's policy is now the default); a maintainer opts out with --policy-from-worktree \
                 or policy.trust_worktree = true in the base's fpgate.toml"
            ));
        }
    }
    if a.baseline_ref.is_none() {
        // The base named only by the configuration under review.
        if asks_base {
            return Err(Error::usage(format!(
                "the policy comes from the base revision, which must then be given on the command line (--baseline-ref {rev}): rules.baseline_ref is part of the configuration under review and could name the change itself"
            )));
        }
        notes.push(format!(
            "the base revision {rev} is named only by rules.baseline_ref of the configuration under review, which cannot choose the policy: the working tree's policy is applied (give --baseline-ref {rev} on the command line to apply the base's)"
        ));
        return Ok((Source::Worktree, notes));
    }
    if a.policy_from_worktree {
        notes.push(
            "--policy-from-worktree: the working tree's policy is applied, as the command line asks".into(),
        );
        return Ok((Source::Worktree, notes));
    }
    let trusted = base_policy.and_then(|p| p.trust_worktree) == Some(true);
    if trusted && !asks_base {
        notes.push(format!(
            "policy.trust_worktree = true in {rev}'s fpgate.toml: the working tree's policy is applied"
        ));
        return Ok((Source::Worktree, notes));
    }
    Ok((Source::Base, notes))
}

/// With a base revision (`--baseline-ref`), read the base's policy, diff
/// the working tree's against it, and pick the one to apply. With the base
/// given on the command line, the base's applies unless the command line
/// (`--policy-from-worktree`) or the base's own config
/// (`policy.trust_worktree = true`) says otherwise: the policy under review
/// never judges itself by default. A base named only by the config under
/// review (`rules.baseline_ref`) cannot choose the policy: the working
/// tree's applies, and a note says so.
fn policy_source(a: &GateArgs, head: Config) -> Result<PolicyFrom> {
    use crate::verdict::policy_changes::{Mode, Source};
    let rev = match (&a.baseline_ref, a.baseline.is_empty()) {
        (Some(r), _) => Some(r.clone()),
        (None, true) => head.rules.baseline_ref.clone(),
        (None, false) => None,
    };
    if a.common.config.no_config {
        if a.policy_from_base {
            return Err(Error::usage(
                "--policy-from-base applies the base revision's fpgate.toml: it cannot be combined with --no-config",
            ));
        }
        // No config: no policy of the working tree to compare.
        return Ok(PolicyFrom::worktree(head, None));
    }
    let Some(rev) = rev else {
        if a.policy_from_base || head.policy.source == Some(Source::Base) {
            return Err(Error::usage(
                "the policy from the base needs a base revision: give --baseline-ref REF",
            ));
        }
        return Ok(PolicyFrom::worktree(head, None));
    };
    let base = base::read(&rev, &head, a.exceptions.as_deref())?;
    let (source, notes) = choose_source(a, &head, &base)?;
    for n in &notes {
        eprintln!("fpgate: note: {n}");
    }
    let base_policy = base.config.as_ref().map(|c| &c.0.policy);
    let mode = if [Some(&head.policy), base_policy]
        .into_iter()
        .flatten()
        .any(|p| p.changes == Some(Mode::Block))
    {
        Mode::Block
    } else {
        Mode::Report
    };
    let head_text = head
        .file
        .as_ref()
        .and_then(|f| std::fs::read_to_string(f).ok());
    let head_exc = if source == Source::Base {
        // Not applied: a broken (or refused) file is reported, not fatal.
        exceptions_file(a.exceptions.as_deref(), &head)
            .ok()
            .and_then(|(file, _)| exceptions::load(&file, false).ok().flatten())
    } else {
        let (file, required) = exceptions_file(a.exceptions.as_deref(), &head)?;
        exceptions::load(&file, required)?
    };
    let mut changes = super::diff::diff(
        &base,
        (&head, head_text.as_deref()),
        head_exc.as_ref(),
        source,
        mode,
    )?;
    changes.notes.extend(notes);
    recipe_changes(&base, &head, &mut changes);
    if source == Source::Worktree {
        return Ok(PolicyFrom::worktree(head, Some(changes)));
    }
    let base_exc = base.exception_set()?;
    let no_base_config = base.config.is_none();
    Ok(PolicyFrom {
        base_rev: Some(base.rev.clone()),
        cfg: base.into_config(&head),
        changes: Some(changes),
        base_exceptions: Some(base_exc),
        no_base_config,
    })
}

fn gate_policy(
    a: &GateArgs,
    cfg: &Config,
    common: &Policy,
    base_exceptions: Option<Option<exceptions::ExceptionSet>>,
) -> Result<Policy> {
    let mut deny_codes = cfg.warnings.deny_codes.clone();
    deny_codes.extend(a.deny_warning_codes.iter().cloned());
    Ok(Policy {
        exceptions: match base_exceptions {
            Some(set) => set,
            None => {
                let (file, required) = exceptions_file(a.exceptions.as_deref(), cfg)?;
                exceptions::load(&file, required)?
            }
        },
        today: a.today.as_deref().map(date).transpose()?,
        strict: a.strict || cfg.exceptions.strict.unwrap_or(false),
        deny_warnings: a.deny_warnings || cfg.warnings.deny.unwrap_or(false),
        deny_codes,
        allow_incomplete: common.allow_incomplete,
        allow_unevaluated: common.allow_unevaluated,
        changes: None,
    })
}

/// The corpus recipe's changes against the base's (see
/// `recipe::recipe_changes`): the recipe each config names, the base's read
/// at the base revision. A recipe that does not parse in the working tree
/// is a note, not an error (the base's applies).
fn recipe_changes(
    base: &base::BasePolicy,
    head: &Config,
    changes: &mut crate::verdict::policy_changes::PolicyChanges,
) {
    use crate::corpus::recipe;
    let base_recipe = base.config.as_ref().and_then(|(c, _)| {
        let p = c.corpus.recipe.as_ref()?;
        let (shown, text) = base::file_at(&base.rev, &c.resolve(p)).ok()??;
        recipe::parse(&text, Path::new(&shown)).ok()
    });
    let head_recipe = match head.corpus.recipe.as_ref() {
        Some(p) => match recipe::load(&head.resolve(p)) {
            Ok(r) => Some(r),
            Err(e) => {
                changes
                    .notes
                    .push(format!("the working tree's corpus recipe is not read: {e}"));
                None
            }
        },
        None => None,
    };
    if base_recipe.is_none() && head_recipe.is_none() {
        return;
    }
    changes.settings.extend(super::recipe::recipe_changes(
        base_recipe.as_ref(),
        head_recipe.as_ref(),
    ));
    changes.settle();
}
