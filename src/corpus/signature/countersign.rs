//! Countersignatures: the time a pinned time-stamping authority vouches a
//! signature existed at (see `verify_with`): an RFC 3161 token, or the
//! older PKCS#9 countersignature (a signer info of the authority's, whose
//! signed attributes hash the signature and carry the signing time).

use super::anchor::{Anchor, SignedBy};
use super::chain::{der_sha256, extension, path_to, subject, verify_signer, OID_EKU};
use super::keys::Hash;
use cms::content_info::ContentInfo;
use cms::signed_data::SignerInfo;
use const_oid::ObjectIdentifier;
use der::{Decode, Encode};
use x509_cert::Certificate;

const OID_RFC3161_TOKEN: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.311.3.3.1");
const OID_TST_INFO: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.1.4");
const OID_TIME_STAMPING: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.8");
const OID_PKCS9_COUNTERSIGNATURE: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.6");
const OID_SIGNING_TIME: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.5");

/// The anchors `signer` (of `si`, with `bag`) chains to: each anchor's
/// subject constraint held, the path valid at `at` or at the time of a
/// countersignature by one of `tsa`. None: an error saying why not.
pub(super) fn anchored(
    signer: &Certificate,
    si: &SignerInfo,
    bag: &[Certificate],
    (anchors, tsa): (&[Anchor], &[Anchor]),
    at: u64,
) -> Result<Vec<SignedBy>, String> {
    let mut out = Vec::new();
    let mut why = Vec::new();
    for a in anchors {
        if let Some(want) = &a.subject {
            if !subject(signer).contains(want.as_str()) {
                why.push(format!(
                    "{}: subject {:?} does not contain {want:?}",
                    a.name,
                    subject(signer)
                ));
                continue;
            }
        }
        // Valid now, or at a verified countersigned time.
        let checked = path_to(signer, bag, a, at).or_else(|e| {
            if tsa.is_empty() {
                return Err(e);
            }
            let when = countersigned_at(si, bag, tsa, at).map_err(|c| format!("{e}; {c}"))?;
            path_to(signer, bag, a, when).map_err(|e2| format!("{e2} (at the countersigned time)"))
        });
        match checked {
            Ok(()) => out.push(SignedBy {
                anchor: a.name.clone(),
                subject: subject(signer),
                signer_sha256: crate::util::hex::hex(&der_sha256(signer)),
                catalog: None,
            }),
            Err(e) => why.push(format!("{}: {e}", a.name)),
        }
    }
    if out.is_empty() {
        return Err(format!(
            "signed by {}, chained to no anchor ({})",
            subject(signer),
            why.join("; ")
        ));
    }
    Ok(out)
}

/// The time a countersignature of `si` vouches for (RFC 3161, else
/// PKCS#9 with the certificates of `bag`), once verified.
fn countersigned_at(
    si: &SignerInfo,
    bag: &[Certificate],
    tsa: &[Anchor],
    at: u64,
) -> Result<u64, String> {
    let rfc3161 = match rfc3161_at(si, tsa, at) {
        Ok(t) => return Ok(t),
        Err(e) => e,
    };
    match pkcs9_at(si, bag, tsa, at) {
        Ok(t) => Ok(t),
        Err(None) => Err(rfc3161),
        Err(Some(e)) => Err(e),
    }
}

/// The time a PKCS#9 countersignature of `si` vouches for: the
/// countersigner's signed attributes hash `si`'s signature, its signature
/// over them verifies with the one certificate of `bag` it names (issuer
/// and serial), that certificate allows time stamping and chains to one of
/// `tsa` at the signing time, which is no later than `at`. `Err(None)`:
/// there is no such countersignature.
fn pkcs9_at(
    si: &SignerInfo,
    bag: &[Certificate],
    tsa: &[Anchor],
    at: u64,
) -> Result<u64, Option<String>> {
    let value = si
        .unsigned_attrs
        .as_ref()
        .and_then(|attrs| attrs.iter().find(|a| a.oid == OID_PKCS9_COUNTERSIGNATURE))
        .and_then(|a| a.values.iter().next())
        .ok_or(None)?;
    let bad = |m: String| Some(format!("countersignature (PKCS#9): {m}"));
    let csi: SignerInfo = value.decode_as().map_err(|e| bad(e.to_string()))?;
    let (cert, _) = verify_signer(&csi, si.signature.as_bytes(), bag).map_err(bad)?;
    if !allows_time_stamping(cert) {
        return Err(bad("the authority is not for time stamping".into()));
    }
    let when = csi
        .signed_attrs
        .as_ref()
        .and_then(|attrs| attrs.iter().find(|a| a.oid == OID_SIGNING_TIME))
        .and_then(|a| a.values.iter().next())
        .and_then(|v| v.to_der().ok())
        .and_then(|d| x509_cert::time::Time::from_der(&d).ok())
        .ok_or_else(|| bad("no signing time".into()))?
        .to_unix_duration()
        .as_secs();
    if when > at {
        return Err(bad("stamped after the evaluation date".into()));
    }
    if !tsa.iter().any(|a| path_to(cert, bag, a, when).is_ok()) {
        return Err(bad("its authority chains to no time-stamping anchor".into()));
    }
    Ok(when)
}

fn allows_time_stamping(c: &Certificate) -> bool {
    extension(c, OID_EKU)
        .and_then(|v| x509_cert::ext::pkix::ExtendedKeyUsage::from_der(v).ok())
        .is_some_and(|eku| eku.0.contains(&OID_TIME_STAMPING))
}

/// The time an RFC 3161 countersignature of `si` vouches for, once it is
/// verified: the token's imprint is the hash of `si`'s signature, the
/// authority's signature over the token verifies, the authority's
/// certificate allows time stamping and chains to one of `tsa` at that
/// time, and the time is no later than `at`.
fn rfc3161_at(si: &SignerInfo, tsa: &[Anchor], at: u64) -> Result<u64, String> {
    let token = si
        .unsigned_attrs
        .as_ref()
        .and_then(|attrs| attrs.iter().find(|a| a.oid == OID_RFC3161_TOKEN))
        .and_then(|a| a.values.iter().next())
        .ok_or("no RFC 3161 countersignature")?;
    let der = token
        .to_der()
        .map_err(|e| format!("countersignature: {e}"))?;
    let ci = ContentInfo::from_der(&der).map_err(|e| format!("countersignature: {e}"))?;
    // Time-stamping authorities repeat their certificate in the token's
    // bag (a SET OF that strict DER refuses): read the bag as a sequence.
    let sd: TokenSignedData = ci
        .content
        .decode_as()
        .map_err(|e| format!("countersignature: {e}"))?;
    if sd.encap_content_info.econtent_type != OID_TST_INFO {
        return Err("countersignature: not a time-stamp token".into());
    }
    let tst = sd
        .encap_content_info
        .econtent
        .as_ref()
        .and_then(|c| c.decode_as::<der::asn1::OctetString>().ok())
        .ok_or("countersignature: no TSTInfo")?;
    let (imprint_alg, imprint, gen_time) = tst_info(tst.as_bytes())?;
    let ih = Hash::of_digest(imprint_alg).ok_or("countersignature: imprint hash not supported")?;
    if ih.of(si.signature.as_bytes()) != imprint {
        return Err("countersignature: it does not stamp this signature".into());
    }
    let [tsi] = sd.signer_infos.0.as_slice() else {
        return Err("countersignature: not exactly one signer".into());
    };
    let bag: Vec<Certificate> = match &sd.certificates {
        Some(c) => c.iter().cloned().collect(),
        None => Vec::new(),
    };
    let (tsa_cert, _) =
        verify_signer(tsi, tst.as_bytes(), &bag).map_err(|e| format!("countersignature: {e}"))?;
    if !allows_time_stamping(tsa_cert) {
        return Err("countersignature: the authority is not for time stamping".into());
    }
    if gen_time > at {
        return Err("countersignature: stamped after the evaluation date".into());
    }
    if !tsa
        .iter()
        .any(|a| path_to(tsa_cert, &bag, a, gen_time).is_ok())
    {
        return Err("countersignature: its authority chains to no time-stamping anchor".into());
    }
    Ok(gen_time)
}

/// A time-stamp token's SignedData, its certificate bag read leniently
/// (as a sequence, at most `MAX_TOKEN_BAG` certificates).
#[derive(der::Sequence)]
struct TokenSignedData {
    version: cms::content_info::CmsVersion,
    digest_algorithms: der::Any,
    encap_content_info: cms::signed_data::EncapsulatedContentInfo,
    #[asn1(
        context_specific = "0",
        tag_mode = "IMPLICIT",
        constructed = "true",
        optional = "true"
    )]
    certificates: Option<der::asn1::SequenceOf<Certificate, MAX_TOKEN_BAG>>,
    #[asn1(
        context_specific = "1",
        tag_mode = "IMPLICIT",
        constructed = "true",
        optional = "true"
    )]
    crls: Option<der::Any>,
    signer_infos: cms::signed_data::SignerInfos,
}

/// Certificates in a time-stamp token's bag, at most.
const MAX_TOKEN_BAG: usize = 16;

/// TSTInfo (RFC 3161): the imprint's algorithm and hash, and genTime.
fn tst_info(der_bytes: &[u8]) -> Result<(ObjectIdentifier, Vec<u8>, u64), String> {
    use der::Reader;
    let bad = |e: der::Error| format!("countersignature: TSTInfo: {e}");
    let mut r = der::SliceReader::new(der_bytes).map_err(bad)?;
    r.sequence(|r| {
        let _version: der::asn1::Int = r.decode()?;
        let _policy: ObjectIdentifier = r.decode()?;
        let (alg, hash) = r.sequence(|r| {
            let alg: x509_cert::spki::AlgorithmIdentifierOwned = r.decode()?;
            let hash: der::asn1::OctetString = r.decode()?;
            Ok((alg.oid, hash.as_bytes().to_vec()))
        })?;
        let _serial: der::asn1::Int = r.decode()?;
        let gen: der::asn1::GeneralizedTime = r.decode()?;
        // accuracy, ordering, nonce, tsa, extensions: not needed.
        let rest = r.remaining_len();
        r.read_slice(rest)?;
        Ok((alg, hash, gen.to_unix_duration().as_secs()))
    })
    .map_err(bad)
}
