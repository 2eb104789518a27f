//! A worker's side of archives: the members of an archive it has read,
//! each judged like a file from the archive's bytes; an unchanged archive's
//! members answered from its shape; a member of the run's list read again
//! from its archive (triage).

use super::{Keep, Worker};
use crate::corpus::members::{self, Expanded, Member};
use crate::corpus::{format, CorpusFile, Reason};
use crate::engine::{Answer, Outcome, Plan};
use crate::util::interrupt::interrupted;
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::sync::Mutex;

impl Worker<'_> {
    /// An archive member that is an entry of the run's list (triage scans
    /// the entries a run found): read again from its container.
    pub(super) fn process_member(
        &mut self,
        f: &CorpusFile,
        claimed: &Mutex<HashSet<[u8; 32]>>,
        path_dependent: bool,
    ) -> Outcome {
        let caps = &self.opts.archives.caps;
        let Some(data) = members::read_entry(f, self.opts.max_file_size, caps) else {
            return Outcome::Unscanned {
                reason: Reason::Vanished,
                detail: "the member could not be read again from its archive".into(),
                sha256: None,
                size: None,
            };
        };
        let sha256: [u8; 32] = Sha256::digest(&data).into();
        let format = format::detect(&data);
        self.judge(f, &data, sha256, claimed, path_dependent)
            .outcome(sha256, data.len() as u64, format)
    }

    /// The members of `f`, if it is an archive, each scanned like a file.
    pub(super) fn expand(
        &mut self,
        f: &CorpusFile,
        bytes: &[u8],
        container_sha: &[u8; 32],
        claimed: &Mutex<HashSet<[u8; 32]>>,
        path_dependent: bool,
        keep: Keep<'_>,
    ) -> Option<Expanded<Outcome>> {
        if !self.expand {
            return None;
        }
        let ours = |m: &CorpusFile, sha: Option<&[u8; 32]>| keep.is_none_or(|k| k(m, sha));
        let archives = self.opts.archives.clone();
        let x = members::expand(f, bytes, &archives, |m| match m {
            Member::Unscanned(m, reason, detail) => ours(m, None).then_some(Outcome::Unscanned {
                reason,
                detail,
                sha256: None,
                size: None,
            }),
            Member::File(m, _, c) | Member::Known(m, c) if !ours(m, Some(&c.0)) => None,
            Member::File(..) | Member::Known(..) if interrupted() => Some(Outcome::Unscanned {
                reason: Reason::Interrupted,
                detail: "the run was interrupted before this member was scanned".into(),
                sha256: None,
                size: None,
            }),
            Member::File(m, data, &(sha256, size, format)) => Some(
                self.judge(m, data, sha256, claimed, path_dependent)
                    .outcome(sha256, size, format),
            ),
            // Not handed over by `expand`.
            Member::Known(..) => Some(Outcome::Unscanned {
                reason: Reason::ScanError,
                detail: "internal: a member without its bytes".into(),
                sha256: None,
                size: None,
            }),
        })?;
        if let (Some(c), Some(shape)) = (self.planner, &x.shape) {
            c.record_members(container_sha, shape);
        }
        Some(kept(x, self.foreign))
    }

    /// An unchanged archive whose shape the planner kept and whose every
    /// member's results it has: its members answered without reading it.
    pub(super) fn members_unread(
        &self,
        f: &CorpusFile,
        sha256: &[u8; 32],
        keep: Keep<'_>,
    ) -> Option<Expanded<Outcome>> {
        let c = self.planner?;
        let shape = c.members(sha256)?;
        let ours = |m: &CorpusFile, sha: Option<&[u8; 32]>| keep.is_none_or(|k| k(m, sha));
        // Each member: answered (Some(Some)), not this run's (Some(None)),
        // or to be scanned (None: the archive is read).
        let x = members::replay(f, &shape, &self.opts.archives, |m| match m {
            Member::Known(m, c) if !ours(m, Some(&c.0)) => Some(None),
            Member::Unscanned(m, ..) if !ours(m, None) => Some(None),
            Member::Known(m, &(sha256, size, format)) => {
                let subj = self.subjects(&sha256, m);
                let plans = self.plans(subj.as_ref());
                if !plans.iter().all(|p| *p == Plan::Skip) {
                    return None;
                }
                let empty = vec![Vec::new(); plans.len()];
                Some(Some(Outcome::Scanned {
                    sha256,
                    size,
                    format,
                    hits: Some(self.assemble(subj.as_ref(), &plans, empty)),
                }))
            }
            Member::Unscanned(_, reason, detail) => Some(Some(Outcome::Unscanned {
                reason,
                detail,
                sha256: None,
                size: None,
            })),
            Member::File(..) => None,
        });
        let mut out = Expanded {
            members: Vec::with_capacity(x.members.len()),
            // Another shard's archive's links are listed by that shard.
            listed: if self.foreign { Vec::new() } else { x.listed },
            decoded: 0,
            shape: None,
        };
        for (m, o) in x.members {
            if let Some(o) = o? {
                out.members.push((m, o));
            }
        }
        for _ in &out.members {
            c.count(Answer::Unread);
        }
        Some(out)
    }
}

/// The members this run keeps (the others are another shard's), and the
/// links it lists (another shard's archive's are that shard's to list).
fn kept(x: Expanded<Option<Outcome>>, foreign: bool) -> Expanded<Outcome> {
    Expanded {
        members: x
            .members
            .into_iter()
            .filter_map(|(m, o)| Some((m, o?)))
            .collect(),
        listed: if foreign { Vec::new() } else { x.listed },
        decoded: x.decoded,
        shape: x.shape,
    }
}
