//! The signature mathematics, on RustCrypto's crates: RSA (PKCS#1 v1.5 and
//! PSS) and ECDSA on P-256 and P-384, with SHA-1 and SHA-2 digests. Which
//! scheme is the signature algorithm's; the key must be of its kind.

use const_oid::ObjectIdentifier;
use der::{Decode, Encode};
use sha2::Digest;
use x509_cert::spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

const OID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const OID_P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const OID_P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const OID_RSA_PSS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.10");
const OID_ECDSA_SHA1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.1");
const OID_MGF1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.8");

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Hash {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    pub(super) fn of(self, data: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha1 => sha1::Sha1::digest(data).to_vec(),
            Hash::Sha256 => sha2::Sha256::digest(data).to_vec(),
            Hash::Sha384 => sha2::Sha384::digest(data).to_vec(),
            Hash::Sha512 => sha2::Sha512::digest(data).to_vec(),
        }
    }

    /// The hash a digest algorithm names.
    pub(super) fn of_digest(oid: ObjectIdentifier) -> Option<Hash> {
        use const_oid::db::rfc5912::*;
        match oid {
            o if o == ID_SHA_1 => Some(Hash::Sha1),
            o if o == ID_SHA_256 => Some(Hash::Sha256),
            o if o == ID_SHA_384 => Some(Hash::Sha384),
            o if o == ID_SHA_512 => Some(Hash::Sha512),
            _ => None,
        }
    }

    fn pkcs1v15(self) -> rsa::Pkcs1v15Sign {
        match self {
            Hash::Sha1 => rsa::Pkcs1v15Sign::new::<sha1::Sha1>(),
            Hash::Sha256 => rsa::Pkcs1v15Sign::new::<sha2::Sha256>(),
            Hash::Sha384 => rsa::Pkcs1v15Sign::new::<sha2::Sha384>(),
            Hash::Sha512 => rsa::Pkcs1v15Sign::new::<sha2::Sha512>(),
        }
    }

    fn pss(self, salt: usize) -> rsa::Pss {
        match self {
            Hash::Sha1 => rsa::Pss::new_with_salt::<sha1::Sha1>(salt),
            Hash::Sha256 => rsa::Pss::new_with_salt::<sha2::Sha256>(salt),
            Hash::Sha384 => rsa::Pss::new_with_salt::<sha2::Sha384>(salt),
            Hash::Sha512 => rsa::Pss::new_with_salt::<sha2::Sha512>(salt),
        }
    }
}

/// How a signature is made: the scheme and its hash.
#[derive(Debug, PartialEq, Eq)]
enum Scheme {
    Pkcs1v15(Hash),
    Pss(Hash, usize),
    Ecdsa(Hash),
}

/// The scheme a signature algorithm names. A bare key algorithm
/// (`rsaEncryption`, `id-ecPublicKey`, as CMS signers may say) takes the
/// hash `digest` of the signer.
fn scheme(alg: &AlgorithmIdentifierOwned, digest: Option<Hash>) -> Result<Scheme, String> {
    use const_oid::db::rfc5912::*;
    let o = alg.oid;
    let need = || digest.ok_or_else(|| format!("signature algorithm {o} without a digest"));
    Ok(match o {
        _ if o == RSA_ENCRYPTION => Scheme::Pkcs1v15(need()?),
        _ if o == SHA_1_WITH_RSA_ENCRYPTION => Scheme::Pkcs1v15(Hash::Sha1),
        _ if o == SHA_256_WITH_RSA_ENCRYPTION => Scheme::Pkcs1v15(Hash::Sha256),
        _ if o == SHA_384_WITH_RSA_ENCRYPTION => Scheme::Pkcs1v15(Hash::Sha384),
        _ if o == SHA_512_WITH_RSA_ENCRYPTION => Scheme::Pkcs1v15(Hash::Sha512),
        _ if o == OID_EC_PUBLIC_KEY => Scheme::Ecdsa(need()?),
        _ if o == OID_ECDSA_SHA1 => Scheme::Ecdsa(Hash::Sha1),
        _ if o == ECDSA_WITH_SHA_256 => Scheme::Ecdsa(Hash::Sha256),
        _ if o == ECDSA_WITH_SHA_384 => Scheme::Ecdsa(Hash::Sha384),
        _ if o == ECDSA_WITH_SHA_512 => Scheme::Ecdsa(Hash::Sha512),
        _ if o == OID_RSA_PSS => {
            let params = alg
                .parameters
                .as_ref()
                .ok_or("RSA-PSS without parameters")?
                .to_der()
                .map_err(|e| format!("RSA-PSS parameters: {e}"))?;
            let p = rsa::pkcs1::RsaPssParams::try_from(params.as_slice())
                .map_err(|e| format!("RSA-PSS parameters: {e}"))?;
            let hash = Hash::of_digest(p.hash.oid).ok_or("RSA-PSS: hash not supported")?;
            let mgf_hash = p
                .mask_gen
                .parameters
                .as_ref()
                .map(|h| h.oid)
                .and_then(Hash::of_digest);
            if p.mask_gen.oid != OID_MGF1 || mgf_hash != Some(hash) {
                return Err("RSA-PSS: a mask generation other than MGF1 with the same hash".into());
            }
            if p.trailer_field != rsa::pkcs1::TrailerField::BC {
                return Err("RSA-PSS: trailer field not supported".into());
            }
            Scheme::Pss(hash, p.salt_len as usize)
        }
        _ => return Err(format!("signature algorithm {o} not supported")),
    })
}

/// Does `signature` over `message` verify with the key `spki` under the
/// signature algorithm `alg` (a bare key algorithm takes `digest`)?
pub(super) fn verify(
    spki: &SubjectPublicKeyInfoOwned,
    alg: &AlgorithmIdentifierOwned,
    digest: Option<Hash>,
    message: &[u8],
    signature: &[u8],
) -> Result<(), String> {
    let key_alg = spki.algorithm.oid;
    let key_bytes = spki.subject_public_key.raw_bytes();
    match scheme(alg, digest)? {
        Scheme::Pkcs1v15(h) => rsa_key(key_alg, key_bytes)?
            .verify(h.pkcs1v15(), &h.of(message), signature)
            .map_err(|e| e.to_string()),
        Scheme::Pss(h, salt) => rsa_key(key_alg, key_bytes)?
            .verify(h.pss(salt), &h.of(message), signature)
            .map_err(|e| e.to_string()),
        Scheme::Ecdsa(h) => {
            use p256::ecdsa::signature::hazmat::PrehashVerifier;
            if key_alg != OID_EC_PUBLIC_KEY {
                return Err(format!("an ECDSA signature by a {key_alg} key"));
            }
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.to_der().ok())
                .and_then(|d| ObjectIdentifier::from_der(&d).ok())
                .ok_or("EC key without a named curve")?;
            let prehash = h.of(message);
            let bad = |e: p256::ecdsa::Error| format!("ECDSA: {e}");
            if curve == OID_P256 {
                let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(key_bytes).map_err(bad)?;
                let sig = p256::ecdsa::Signature::from_der(signature).map_err(bad)?;
                key.verify_prehash(&prehash, &sig).map_err(bad)
            } else if curve == OID_P384 {
                let key = p384::ecdsa::VerifyingKey::from_sec1_bytes(key_bytes).map_err(bad)?;
                let sig = p384::ecdsa::Signature::from_der(signature).map_err(bad)?;
                key.verify_prehash(&prehash, &sig).map_err(bad)
            } else {
                Err(format!("EC curve {curve} not supported"))
            }
        }
    }
}

/// The RSA key of a certificate whose key algorithm is `key_alg`.
fn rsa_key(key_alg: ObjectIdentifier, key_bytes: &[u8]) -> Result<rsa::RsaPublicKey, String> {
    use rsa::pkcs1::DecodeRsaPublicKey;
    if key_alg != const_oid::db::rfc5912::RSA_ENCRYPTION && key_alg != OID_RSA_PSS {
        return Err(format!("an RSA signature by a {key_alg} key"));
    }
    rsa::RsaPublicKey::from_pkcs1_der(key_bytes).map_err(|e| format!("RSA key: {e}"))
}
