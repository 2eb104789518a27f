//! RFC 3161 countersignatures: the time a pinned time-stamping authority
//! vouches a signature existed at (see `verify_with`).

use super::chain::{extension, path_to, verify_signer};
use super::keys::Hash;
use super::{Anchor, OID_EKU};
use cms::content_info::ContentInfo;
use cms::signed_data::SignerInfo;
use const_oid::ObjectIdentifier;
use der::{Decode, Encode};
use x509_cert::Certificate;

const OID_RFC3161_TOKEN: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.311.3.3.1");
const OID_TST_INFO: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.1.4");
const OID_TIME_STAMPING: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.8");

/// The time an RFC 3161 countersignature of `si` vouches for, once it is
/// verified: the token's imprint is the hash of `si`'s signature, the
/// authority's signature over the token verifies, the authority's
/// certificate allows time stamping and chains to one of `tsa` at that
/// time, and the time is no later than `at`.
pub(super) fn countersigned_at(si: &SignerInfo, tsa: &[Anchor], at: u64) -> Result<u64, String> {
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
    let stamping = extension(tsa_cert, OID_EKU)
        .and_then(|v| x509_cert::ext::pkix::ExtendedKeyUsage::from_der(v).ok())
        .is_some_and(|eku| eku.0.contains(&OID_TIME_STAMPING));
    if !stamping {
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
