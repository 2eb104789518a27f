//! Authenticode signatures, verified to a pinned trust anchor: the
//! decision is fpgate's, on well-kept parsers and signature mathematics
//! (`authenticode` for the PE digest, RustCrypto's `cms`, `x509-cert` and
//! `rsa`). Never from the engine's `pe.signatures[i].verified`, which pins
//! no root and picks the signing certificate by serial alone (see #32).
//!
//! A signature counts only when all of this holds:
//! - the file's Authenticode digest, recomputed, is the one the signature
//!   signs (`SpcIndirectDataContent`);
//! - the signed attributes' message digest is the hash of that content,
//!   and the signer's signature over the attributes verifies with the key
//!   of the one certificate whose issuer **and** serial number the signer
//!   names (two such certificates: refused);
//! - from that certificate, each certificate's signature verifies with the
//!   key of the next (issuer name equal, a CA), up to a certificate that
//!   either is pinned (the sha256 of its DER) or whose signature verifies
//!   with the anchor certificate's own key: an anchor-shaped certificate in
//!   the file's bag proves nothing;
//! - the signing certificate allows code signing, every certificate on
//!   the path is valid at the evaluation time (a date fixed in the config,
//!   so tiers do not drift with the clock), or at the time of an RFC 3161
//!   countersignature whose authority chains to a pinned time-stamping
//!   anchor (`verify_with`);
//! - if asked, the signer's subject contains the given text.
//!
//! Every signature of a dual-signed file (nested signatures) is examined.
//! Hostile input (truncated blobs, tables past the end, loops, thousands of
//! certificates) is a noted failure: never a panic (the parsers run under
//! `catch_unwind`), never a hang (the path is at most `MAX_PATH` long and
//! the bag at most `MAX_BAG` certificates).

use cms::content_info::ContentInfo;
use cms::signed_data::SignedData;
use const_oid::ObjectIdentifier;
use der::{Decode, Encode};
use sha2::Digest;

mod anchor;
mod catalog;
mod chain;
mod countersign;
mod keys;
pub use anchor::{Anchor, AnchorKey, SignedBy};
pub use catalog::{
    apply as catalog_apply, catalog_list, vouched, Catalog, CatalogFacts, Member, Vouch,
};

/// A PE's Authenticode digests: SHA-1 and SHA-256.
pub fn authenticode_digests(data: &[u8]) -> Result<[Vec<u8>; 2], String> {
    pe_digests(data)
}
#[cfg(test)]
use chain::der_sha256;
use chain::{allows_code_signing, bag, subject, verify_signer};
use countersign::anchored;
use keys::Hash;

/// Nested signatures examined, at most.
const MAX_SIGNATURES: usize = 8;

const OID_SPC_NESTED_SIGNATURE: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.4.1.311.2.4.1");

/// The signature tier rules of a run: anchors, the evaluation time and
/// what verdicts are cached under (the rules, the date, fpgate's version).
#[derive(Debug, Clone)]
pub struct Rules {
    pub anchors: Vec<Anchor>,
    /// Time-stamping authorities whose countersignatures are honoured
    /// (`[[tiers.timestamp]]`); none: a signer must be valid at `at`.
    pub timestamp_anchors: Vec<Anchor>,
    /// Seconds since the epoch.
    pub at: u64,
    pub fingerprint: [u8; 32],
}

/// What one content came to, as the results cache keeps it (by content,
/// under the rules' fingerprint).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Judgement {
    /// Its own signatures that verified to an anchor (a PE's embedded
    /// signatures; a catalog's signature).
    #[serde(default)]
    pub signed_by: Vec<SignedBy>,
    /// A PE's Authenticode digests, `sha1:HEX` and `sha256:HEX` (what a
    /// catalog names a PE by).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub authenticode: Vec<String>,
    /// A catalog signed to an anchor: the members it vouches for,
    /// `pe:sha256:HEX` (an Authenticode digest) or `flat:sha256:HEX` (a
    /// whole file's hash), sorted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vouches: Vec<String>,
}

/// Is an entry of this name a catalog candidate (`.cat`, any case)?
pub fn is_catalog_name(name: &[u8]) -> bool {
    name.len() > 4 && name[name.len() - 4..].eq_ignore_ascii_case(b".cat")
}

/// Judge one content: a PE's embedded signatures and its Authenticode
/// digests; a catalog's (`catalog_name`: the entry is named `*.cat`)
/// signature and members. Anything else: nothing.
pub fn judge(bytes: &[u8], catalog_name: bool, rules: &Rules) -> Judgement {
    let (anchors, tsa) = (&rules.anchors[..], &rules.timestamp_anchors[..]);
    let run = || {
        let mut j = Judgement::default();
        if bytes.starts_with(b"MZ") {
            let d = Digests::new(bytes);
            j.signed_by = verify_digests(&d, anchors, tsa, rules.at).signed_by;
            // Signed to an anchor: critical already, no catalog needed.
            if !j.signed_by.is_empty() {
                return j;
            }
            if let Ok([sha1, sha256]) = d.all() {
                j.authenticode = vec![
                    format!("sha1:{}", crate::util::hex::hex(sha1)),
                    format!("sha256:{}", crate::util::hex::hex(sha256)),
                ];
            }
        } else if catalog_name {
            if let Ok(Some((by, members))) = catalog::verify(bytes, (anchors, tsa), rules.at) {
                j.signed_by = by;
                j.vouches = members;
            }
        }
        j
    };
    std::panic::catch_unwind(run).unwrap_or_default()
}

/// The verdicts of a scan, gathered while the bytes are in memory: the
/// scan's workers hand every content they read to `judge`, once per
/// content, so nothing is read again for its signature.
#[derive(Debug)]
pub struct Verdicts {
    pub rules: std::sync::Arc<Rules>,
    found: std::sync::Mutex<std::collections::HashMap<[u8; 32], Judgement>>,
}

impl Verdicts {
    pub fn new(rules: std::sync::Arc<Rules>) -> Verdicts {
        Verdicts {
            rules,
            found: Default::default(),
        }
    }

    /// Judge `bytes` (content `sha256`, an entry named `name`) unless it is
    /// neither a PE nor a catalog candidate, or was judged already.
    pub fn judge(&self, sha256: &[u8; 32], name: &[u8], bytes: &[u8]) {
        let catalog_name = is_catalog_name(name);
        if !bytes.starts_with(b"MZ") && !catalog_name {
            return;
        }
        let lock = || self.found.lock().unwrap_or_else(|e| e.into_inner());
        if lock().contains_key(sha256) {
            return;
        }
        let j = judge(bytes, catalog_name, &self.rules);
        lock().insert(*sha256, j);
    }

    /// What was judged so far (and forget it).
    pub fn take(&self) -> std::collections::HashMap<[u8; 32], Judgement> {
        std::mem::take(&mut *self.found.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// What the signatures of one file came to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verdict {
    /// Signatures that verified to an anchor (each at most once).
    pub signed_by: Vec<SignedBy>,
    /// Why the others did not (one line each).
    pub notes: Vec<String>,
}

/// Verify every Authenticode signature of `data` (a PE file) against the
/// anchors at `at_unix` (seconds). Not a PE, or no signature: an empty
/// verdict.
pub fn verify(data: &[u8], anchors: &[Anchor], at_unix: u64) -> Verdict {
    verify_with(data, anchors, &[], at_unix)
}

/// `verify`, and a signature whose path is not valid at `at_unix` counts
/// when it carries an RFC 3161 countersignature whose time-stamping
/// authority chains to one of `tsa` (its signature, its token's imprint of
/// the signer's signature, its time-stamping usage all verified) and the
/// path is valid at the countersigned time (no later than `at_unix`).
pub fn verify_with(data: &[u8], anchors: &[Anchor], tsa: &[Anchor], at_unix: u64) -> Verdict {
    match std::panic::catch_unwind(|| verify_inner(data, anchors, tsa, at_unix)) {
        Ok(v) => v,
        Err(p) => Verdict {
            signed_by: Vec::new(),
            notes: vec![format!(
                "a signature parser panicked: {}",
                crate::util::panic_message(&*p)
            )],
        },
    }
}

fn verify_inner(data: &[u8], anchors: &[Anchor], tsa: &[Anchor], at_unix: u64) -> Verdict {
    verify_digests(&Digests::new(data), anchors, tsa, at_unix)
}

fn verify_digests(digests: &Digests, anchors: &[Anchor], tsa: &[Anchor], at_unix: u64) -> Verdict {
    let mut v = Verdict::default();
    let blobs = match pe_signatures(digests.data) {
        Ok(Some(x)) => x,
        Ok(None) => return v,
        Err(e) => {
            v.notes.push(e);
            return v;
        }
    };
    // Each attribute certificate, and the signatures nested in them.
    let mut queue: Vec<Vec<u8>> = blobs;
    let mut seen = 0;
    while let Some(blob) = queue.pop() {
        seen += 1;
        if seen > MAX_SIGNATURES {
            v.notes.push(format!(
                "more than {MAX_SIGNATURES} signatures: the rest not examined"
            ));
            break;
        }
        match one_signature(&blob, digests, (anchors, tsa), at_unix, &mut queue) {
            Ok(by) => {
                for b in by {
                    if !v.signed_by.contains(&b) {
                        v.signed_by.push(b);
                    }
                }
            }
            Err(e) => v.notes.push(e),
        }
    }
    v
}

/// The file's Authenticode digests, each computed when first asked for
/// (a signature needs one; catalogs need both: then in one pass).
struct Digests<'a> {
    data: &'a [u8],
    sha1: std::cell::OnceCell<Result<Vec<u8>, String>>,
    sha256: std::cell::OnceCell<Result<Vec<u8>, String>>,
}

impl Digests<'_> {
    fn new(data: &[u8]) -> Digests<'_> {
        Digests {
            data,
            sha1: Default::default(),
            sha256: Default::default(),
        }
    }

    /// Both digests (SHA-1, SHA-256).
    fn all(&self) -> Result<[&[u8]; 2], String> {
        if self.sha1.get().is_none() && self.sha256.get().is_none() {
            let (a, b) = match pe_digests(self.data) {
                Ok([a, b]) => (Ok(a), Ok(b)),
                Err(e) => (Err(e.clone()), Err(e)),
            };
            let _ = self.sha1.set(a);
            let _ = self.sha256.set(b);
        }
        Ok([self.get(Hash::Sha1)?, self.get(Hash::Sha256)?])
    }

    fn get(&self, hash: Hash) -> Result<&[u8], String> {
        let cell = match hash {
            Hash::Sha1 => &self.sha1,
            Hash::Sha256 => &self.sha256,
            _ => return Err("an Authenticode digest other than SHA-1 or SHA-256".into()),
        };
        cell.get_or_init(|| match hash {
            Hash::Sha1 => pe_digest(self.data, sha1::Sha1::new()),
            _ => pe_digest(self.data, sha2::Sha256::new()),
        })
        .as_deref()
        .map_err(|e| e.clone())
    }
}

/// The Authenticode digest of a PE with `hasher`.
fn pe_digest<H: Digest + sha2::digest::Update>(
    data: &[u8],
    mut hasher: H,
) -> Result<Vec<u8>, String> {
    pe_walk(data, &mut hasher)?;
    Ok(hasher.finalize().to_vec())
}

/// Feed a PE's Authenticode ranges to `h`.
fn pe_walk(data: &[u8], h: &mut dyn sha2::digest::Update) -> Result<(), String> {
    use object::read::pe::{PeFile32, PeFile64};
    let done = match PeFile64::parse(data) {
        Ok(pe) => authenticode::authenticode_digest(&pe, h),
        Err(_) => match PeFile32::parse(data) {
            Ok(pe) => authenticode::authenticode_digest(&pe, h),
            Err(e) => return Err(format!("not a PE: {e}")),
        },
    };
    done.map_err(|e| format!("Authenticode digest: {e}"))
}

/// Two hashers fed the same bytes.
struct Both(sha1::Sha1, sha2::Sha256);

impl sha2::digest::Update for Both {
    fn update(&mut self, data: &[u8]) {
        sha2::digest::Update::update(&mut self.0, data);
        sha2::digest::Update::update(&mut self.1, data);
    }
}

/// The Authenticode digests of a PE: SHA-1 and SHA-256 (one pass).
fn pe_digests(data: &[u8]) -> Result<[Vec<u8>; 2], String> {
    let mut h = Both(sha1::Sha1::new(), sha2::Sha256::new());
    pe_walk(data, &mut h)?;
    Ok([h.0.finalize().to_vec(), h.1.finalize().to_vec()])
}

/// The attribute certificates of a PE (their DER blobs); `None`: not a
/// PE, or no certificate table.
fn pe_signatures(data: &[u8]) -> Result<Option<Vec<Vec<u8>>>, String> {
    use authenticode::{AttributeCertificateIterator, PeTrait};
    use object::read::pe::{PeFile32, PeFile64};
    if data.len() < 2 || &data[..2] != b"MZ" {
        return Ok(None);
    }
    let run = |pe: &dyn PeTrait| -> Result<Option<Vec<Vec<u8>>>, String> {
        let Some(iter) =
            AttributeCertificateIterator::new(pe).map_err(|e| format!("certificate table: {e}"))?
        else {
            return Ok(None);
        };
        let mut blobs = Vec::new();
        for c in iter {
            let c = c.map_err(|e| format!("attribute certificate: {e}"))?;
            blobs.push(c.data.to_vec());
        }
        Ok(Some(blobs))
    };
    let blobs = if let Ok(pe) = PeFile64::parse(data) {
        run(&pe)?
    } else {
        match PeFile32::parse(data) {
            Ok(pe) => run(&pe)?,
            Err(_) => None,
        }
    };
    Ok(blobs)
}

/// Verify one signature blob (a ContentInfo of SignedData); nested
/// signatures found in it are pushed onto `queue`.
fn one_signature(
    blob: &[u8],
    digests: &Digests,
    (anchors, tsa): (&[Anchor], &[Anchor]),
    at: u64,
    queue: &mut Vec<Vec<u8>>,
) -> Result<Vec<SignedBy>, String> {
    let mut reader = der::SliceReader::new(blob).map_err(|e| format!("signature: {e}"))?;
    let ci = ContentInfo::decode(&mut reader).map_err(|e| format!("signature: {e}"))?;
    if ci.content_type != const_oid::db::rfc6268::ID_SIGNED_DATA {
        return Err("signature: not SignedData".into());
    }
    let sd: SignedData = ci
        .content
        .decode_as()
        .map_err(|e| format!("SignedData: {e}"))?;
    let [si] = sd.signer_infos.0.as_slice() else {
        return Err("SignedData: not exactly one signer".into());
    };
    // Nested signatures (dual signing) ride in the unsigned attributes.
    if let Some(attrs) = &si.unsigned_attrs {
        for a in attrs.iter().filter(|a| a.oid == OID_SPC_NESTED_SIGNATURE) {
            for v in a.values.iter() {
                if let Ok(der) = v.to_der() {
                    queue.push(der);
                }
            }
        }
    }
    let econtent = sd
        .encap_content_info
        .econtent
        .as_ref()
        .ok_or("SignedData: no content")?;
    let indirect: authenticode::SpcIndirectDataContent = econtent
        .decode_as()
        .map_err(|e| format!("SpcIndirectDataContent: {e}"))?;
    // The file's digest, by the signature's own algorithm.
    let alg = indirect.message_digest.digest_algorithm.oid;
    let hash = if alg == const_oid::db::rfc5912::ID_SHA_256 {
        Hash::Sha256
    } else if alg == const_oid::db::rfc5912::ID_SHA_1 {
        Hash::Sha1
    } else {
        return Err(format!("digest algorithm {alg} not supported"));
    };
    let file_digest = digests.get(hash)?;
    if indirect.message_digest.digest.as_bytes() != file_digest {
        return Err(
            "the file's Authenticode digest does not match its signature (modified after signing)"
                .into(),
        );
    }
    if si.digest_alg.oid != alg {
        return Err("the signer's digest algorithm differs from the content's".into());
    }
    // The signed attributes: the content's hash, and the signature over them.
    let bag = bag(&sd)?;
    let (signer, _) = verify_signer(si, econtent.value(), &bag)?;
    if !allows_code_signing(signer) {
        return Err(format!(
            "{}: not a code-signing certificate",
            subject(signer)
        ));
    }
    anchored(signer, si, &bag, (anchors, tsa), at)
}

#[cfg(test)]
mod tests;
