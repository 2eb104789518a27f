//! Sharded runs: `--shard K/N` scans the corpus files whose content hash
//! falls in shard K (so every path of one content lands in one shard) and
//! writes a partial report (`partial`); `fpgate merge` checks that a set of
//! partials is complete and consistent and builds the one report a single
//! run would have given (`merge`). `select` is the shard's side of a run.

pub mod merge;
pub mod partial;
pub mod select;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// `--shard K/N`: K in 1..=N.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl std::str::FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let (k, n) = s
            .split_once('/')
            .ok_or_else(|| format!("`{s}` is not K/N (for example 2/8)"))?;
        let k: u32 = k
            .trim()
            .parse()
            .map_err(|_| format!("shard index `{k}` is not a number"))?;
        let n: u32 = n
            .trim()
            .parse()
            .map_err(|_| format!("shard count `{n}` is not a number"))?;
        if n == 0 || k == 0 || k > n {
            return Err(format!(
                "shard {k}/{n}: K must be between 1 and N (shards are numbered from 1)"
            ));
        }
        Ok(Shard { index: k, count: n })
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl Shard {
    /// The shard (1-based) of a content hash.
    pub fn of_content(sha: &[u8; 32], count: u32) -> u32 {
        let v = u64::from_le_bytes(sha[..8].try_into().unwrap_or([0; 8]));
        (v % count as u64) as u32 + 1
    }

    /// The shard of an entry whose content is unknown (unreadable, not a
    /// regular file): by its reported path.
    pub fn of_path(path: &str, count: u32) -> u32 {
        let d: [u8; 32] = Sha256::digest(path.as_bytes()).into();
        Shard::of_content(&d, count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_syntax() {
        assert_eq!(
            "2/8".parse::<Shard>().unwrap(),
            Shard { index: 2, count: 8 }
        );
        assert!("0/8".parse::<Shard>().is_err());
        assert!("9/8".parse::<Shard>().is_err());
        assert!("1/0".parse::<Shard>().is_err());
        assert!("x/2".parse::<Shard>().is_err());
        assert!("2".parse::<Shard>().is_err());
    }

    #[test]
    fn every_content_has_one_shard_in_range() {
        for n in 1..9u32 {
            for b in 0..=255u8 {
                let k = Shard::of_content(&[b; 32], n);
                assert!((1..=n).contains(&k));
            }
        }
    }
}
