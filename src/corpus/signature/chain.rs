//! Who signed, and the path from the signer to an anchor: the signer is
//! the one certificate whose issuer **and** serial the signer names, its
//! signature over the signed attributes verified; each link verified with
//! the next certificate's key, up to a pinned certificate or one the
//! anchor's own key verifies.

use super::anchor::{Anchor, AnchorKey};
use super::keys::{self, Hash};
use cms::signed_data::{SignedData, SignerIdentifier, SignerInfo};
use const_oid::ObjectIdentifier;
use der::{Decode, Encode};
use sha2::Digest;
use x509_cert::Certificate;

/// Certificates on a path from the signer to the anchor, at most.
const MAX_PATH: usize = 8;
/// Certificates in a signature's bag, at most.
pub(super) const MAX_BAG: usize = 256;

const OID_CODE_SIGNING: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.3");
pub(super) const OID_EKU: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.37");
const OID_BASIC_CONSTRAINTS: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.19");

/// The certificate of `si` in `bag`, once the signed attributes' message
/// digest is the hash of `content` and the signer's signature over them
/// verifies with that certificate's key; and the signer's digest.
pub(super) fn verify_signer<'a>(
    si: &SignerInfo,
    content: &[u8],
    bag: &'a [Certificate],
) -> Result<(&'a Certificate, Hash), String> {
    let hash = Hash::of_digest(si.digest_alg.oid)
        .ok_or_else(|| format!("digest algorithm {} not supported", si.digest_alg.oid))?;
    let attrs = si
        .signed_attrs
        .as_ref()
        .ok_or("the signer has no signed attributes")?;
    let md = attrs
        .iter()
        .find(|a| a.oid == const_oid::db::rfc6268::ID_MESSAGE_DIGEST)
        .and_then(|a| a.values.iter().next())
        .and_then(|v| v.decode_as::<der::asn1::OctetString>().ok())
        .ok_or("the signer has no message digest attribute")?;
    if md.as_bytes() != hash.of(content).as_slice() {
        return Err("the signed message digest is not the content's".into());
    }
    let signer = signer_certificate(si, bag)?;
    let attrs_der = attrs
        .to_der()
        .map_err(|e| format!("signed attributes: {e}"))?;
    keys::verify(
        &signer.tbs_certificate.subject_public_key_info,
        &si.signature_algorithm,
        Some(hash),
        &attrs_der,
        si.signature.as_bytes(),
    )
    .map_err(|e| format!("the signer's signature does not verify: {e}"))?;
    Ok((signer, hash))
}

/// The certificates a signature carries (at most `MAX_BAG`).
pub(super) fn bag(sd: &SignedData) -> Result<Vec<Certificate>, String> {
    let Some(set) = &sd.certificates else {
        return Ok(Vec::new());
    };
    if set.0.len() > MAX_BAG {
        return Err(format!(
            "{} certificates in one signature: refused",
            set.0.len()
        ));
    }
    Ok(set
        .0
        .iter()
        .filter_map(|c| match c {
            cms::cert::CertificateChoices::Certificate(c) => Some(c.clone()),
            _ => None,
        })
        .collect())
}

/// The one certificate whose issuer and serial number the signer names.
pub(super) fn signer_certificate<'a>(
    si: &SignerInfo,
    bag: &'a [Certificate],
) -> Result<&'a Certificate, String> {
    let SignerIdentifier::IssuerAndSerialNumber(id) = &si.sid else {
        return Err("the signer is not named by issuer and serial number".into());
    };
    let issuer = id.issuer.to_der().map_err(|e| e.to_string())?;
    let mut matching: Vec<&Certificate> = bag
        .iter()
        .filter(|c| {
            c.tbs_certificate.serial_number == id.serial_number
                && c.tbs_certificate.issuer.to_der().ok().as_deref() == Some(issuer.as_slice())
        })
        .collect();
    // The same certificate twice is one certificate (time-stamping
    // authorities repeat theirs); two different ones are refused.
    let mut seen = std::collections::HashSet::new();
    matching.retain(|c| seen.insert(der_sha256(c)));
    match matching.as_slice() {
        [one] => Ok(one),
        [] => Err("the signing certificate is not in the signature".into()),
        _ => Err("two certificates carry the signer's issuer and serial number: refused".into()),
    }
}

pub(super) fn subject(c: &Certificate) -> String {
    c.tbs_certificate.subject.to_string()
}

pub(super) fn extension(c: &Certificate, oid: ObjectIdentifier) -> Option<&[u8]> {
    c.tbs_certificate
        .extensions
        .as_ref()?
        .iter()
        .find(|e| e.extn_id == oid)
        .map(|e| e.extn_value.as_bytes())
}

pub(super) fn allows_code_signing(c: &Certificate) -> bool {
    extension(c, OID_EKU)
        .and_then(|v| x509_cert::ext::pkix::ExtendedKeyUsage::from_der(v).ok())
        .is_some_and(|eku| eku.0.contains(&OID_CODE_SIGNING))
}

pub(super) fn is_ca(c: &Certificate) -> bool {
    extension(c, OID_BASIC_CONSTRAINTS)
        .and_then(|v| x509_cert::ext::pkix::BasicConstraints::from_der(v).ok())
        .is_some_and(|b| b.ca)
}

pub(super) fn valid_at(c: &Certificate, at: u64) -> bool {
    let v = &c.tbs_certificate.validity;
    let from = v.not_before.to_unix_duration().as_secs();
    let to = v.not_after.to_unix_duration().as_secs();
    from <= at && at <= to
}

/// Does `c`'s signature verify with `issuer`'s key (and name)?
pub(super) fn signed_by(c: &Certificate, issuer: &Certificate) -> bool {
    if c.tbs_certificate.issuer != issuer.tbs_certificate.subject {
        return false;
    }
    let Ok(tbs) = c.tbs_certificate.to_der() else {
        return false;
    };
    let Some(sig) = c.signature.as_bytes() else {
        return false;
    };
    keys::verify(
        &issuer.tbs_certificate.subject_public_key_info,
        &c.signature_algorithm,
        None,
        &tbs,
        sig,
    )
    .is_ok()
}

pub(super) fn der_sha256(c: &Certificate) -> [u8; 32] {
    sha2::Sha256::digest(c.to_der().unwrap_or_default()).into()
}

/// A path from `leaf` to the anchor through the bag: each link's signature
/// verified, each certificate valid at `at`, each issuer a CA.
pub(super) fn path_to(
    leaf: &Certificate,
    bag: &[Certificate],
    anchor: &Anchor,
    at: u64,
) -> Result<(), String> {
    let mut current = leaf;
    let mut visited: Vec<[u8; 32]> = Vec::new();
    for _ in 0..MAX_PATH {
        if !valid_at(current, at) {
            return Err(format!(
                "{} is not valid at the evaluation date",
                subject(current)
            ));
        }
        let id = der_sha256(current);
        if visited.contains(&id) {
            return Err("the certificates form a loop".into());
        }
        visited.push(id);
        match &anchor.key {
            AnchorKey::Pinned(pin) if &id == pin => return Ok(()),
            AnchorKey::Certificate(root) => {
                if der_sha256(root) == id {
                    return Ok(());
                }
                if signed_by(current, root) {
                    if !valid_at(root, at) {
                        return Err("the anchor is not valid at the evaluation date".into());
                    }
                    return Ok(());
                }
            }
            AnchorKey::Pinned(_) => {}
        }
        // The next link: a CA in the bag whose key verifies this one.
        match bag
            .iter()
            .find(|c| !visited.contains(&der_sha256(c)) && is_ca(c) && signed_by(current, c))
        {
            Some(next) => current = next,
            None => {
                return Err(format!(
                    "no verified path from {} to the anchor",
                    subject(leaf)
                ))
            }
        }
    }
    Err(format!(
        "no path of at most {MAX_PATH} certificates to the anchor"
    ))
}
