//! `[tiers]` of fpgate.toml: the trust anchors of `[[tiers.critical]]` read
//! and checked (a PEM file inside the config's checkout, or a pinned
//! certificate sha256), and the evaluation date.

use super::config::Config;
use crate::corpus::signature::{Anchor, AnchorKey};
use crate::error::{Error, Result};
use sha2::Digest;
use std::sync::Arc;

/// The signature tier rules of a run (the evaluation time is the start of
/// `tiers.date`, UTC).
pub type TierRules = crate::corpus::signature::Rules;

/// The rules of `cfg`, if any.
pub fn rules(cfg: &Config) -> Result<Option<Arc<TierRules>>> {
    let t = &cfg.tiers;
    if t.critical.is_empty() {
        return Ok(None);
    }
    let err = |key: &str, m: String| Error::config(cfg.file.as_deref(), key, m);
    let date = t.date.as_deref().ok_or_else(|| {
        err(
            "tiers.date",
            "tiers.date is required with [[tiers.critical]]: the day signatures are judged at (YYYY-MM-DD), fixed so tiers do not drift with the clock".into(),
        )
    })?;
    let day: jiff::civil::Date = date
        .parse()
        .map_err(|e| err("tiers.date", format!("tiers.date {date:?}: {e}")))?;
    let at = day
        .to_zoned(jiff::tz::TimeZone::UTC)
        .map_err(|e| err("tiers.date", e.to_string()))?
        .timestamp()
        .as_second()
        .max(0) as u64;
    let mut h = sha2::Sha256::new();
    h.update(format!(
        "fpgate {} tiers v1 at {at}\n",
        env!("CARGO_PKG_VERSION")
    ));
    let mut anchors = Vec::new();
    let mut names = std::collections::HashSet::new();
    for r in &t.critical {
        if !names.insert(r.name.clone()) {
            return Err(err(
                "tiers.critical",
                format!("tier rule {:?} is named twice", r.name),
            ));
        }
        let key = match (&r.anchor, &r.anchor_sha256) {
            (Some(p), None) => {
                let path = cfg.confined_file(p, "tiers.critical.anchor")?;
                let pem = std::fs::read_to_string(&path).map_err(|e| {
                    err("tiers.critical.anchor", format!("{}: {e}", path.display()))
                })?;
                let a = Anchor::from_pem(&r.name, &pem, None).map_err(|e| {
                    err("tiers.critical.anchor", format!("{}: {e}", path.display()))
                })?;
                a.key
            }
            (None, Some(hex)) => match crate::util::hex::parse_sha256(&hex.to_ascii_lowercase()) {
                Some(pin) => AnchorKey::Pinned(pin),
                None => {
                    return Err(err(
                        "tiers.critical.anchor_sha256",
                        format!("tier rule {:?}: anchor_sha256 is not 64 hex digits", r.name),
                    ))
                }
            },
            _ => {
                return Err(err(
                    "tiers.critical",
                    format!(
                        "tier rule {:?}: give exactly one of anchor (a PEM file) and anchor_sha256",
                        r.name
                    ),
                ))
            }
        };
        h.update(format!("{}\n{:?}\n", r.name, r.subject));
        match &key {
            AnchorKey::Certificate(c) => {
                use der::Encode;
                h.update(c.to_der().unwrap_or_default());
            }
            AnchorKey::Pinned(p) => h.update(p),
        }
        anchors.push(Anchor {
            name: r.name.clone(),
            key,
            subject: r.subject.clone(),
        });
    }
    Ok(Some(Arc::new(TierRules {
        anchors,
        at,
        fingerprint: h.finalize().into(),
    })))
}
