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
        let key = anchor_key(cfg, "tiers.critical", &r.name, &r.anchor, &r.anchor_sha256)?;
        h.update(format!("{}\n{:?}\n", r.name, r.subject));
        fingerprint(&mut h, &key);
        anchors.push(Anchor {
            name: r.name.clone(),
            key,
            subject: r.subject.clone(),
        });
    }
    let mut timestamp_anchors = Vec::new();
    for r in &t.timestamp {
        let key = anchor_key(cfg, "tiers.timestamp", &r.name, &r.anchor, &r.anchor_sha256)?;
        h.update(format!("timestamp {}\n", r.name));
        fingerprint(&mut h, &key);
        timestamp_anchors.push(Anchor {
            name: r.name.clone(),
            key,
            subject: None,
        });
    }
    Ok(Some(Arc::new(TierRules {
        anchors,
        timestamp_anchors,
        at,
        fingerprint: h.finalize().into(),
    })))
}

/// A rule's anchor: a PEM certificate in the config's checkout, or the
/// sha256 of a certificate's DER (exactly one of them).
fn anchor_key(
    cfg: &Config,
    key: &str,
    name: &str,
    anchor: &Option<std::path::PathBuf>,
    pin: &Option<String>,
) -> Result<AnchorKey> {
    let err = |m: String| Error::config(cfg.file.as_deref(), key, m);
    match (anchor, pin) {
        (Some(p), None) => {
            let path = cfg.confined_file(p, &format!("{key}.anchor"))?;
            let pem = std::fs::read_to_string(&path)
                .map_err(|e| err(format!("{name}: {}: {e}", path.display())))?;
            Anchor::from_pem(name, &pem, None)
                .map(|a| a.key)
                .map_err(|e| err(format!("{name}: {}: {e}", path.display())))
        }
        (None, Some(hex)) => crate::util::hex::parse_sha256(&hex.to_ascii_lowercase())
            .map(AnchorKey::Pinned)
            .ok_or_else(|| {
                err(format!(
                    "tier rule {name:?}: anchor_sha256 is not 64 hex digits"
                ))
            }),
        _ => Err(err(format!(
            "tier rule {name:?}: give exactly one of anchor (a PEM file) and anchor_sha256"
        ))),
    }
}

fn fingerprint(h: &mut sha2::Sha256, key: &AnchorKey) {
    match key {
        AnchorKey::Certificate(c) => {
            use der::Encode;
            h.update(c.to_der().unwrap_or_default());
        }
        AnchorKey::Pinned(p) => h.update(p),
    }
}
