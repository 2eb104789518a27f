//! Catalog signatures: most Windows system files carry no signature of
//! their own; their hashes are listed in a signed catalog (`.cat`, a
//! certificate trust list in a SignedData), and the catalog's signature
//! vouches for them. A catalog counts like an embedded signature (the
//! signed attributes' digest of the list, the signer chosen by issuer and
//! serial, code signing, a path to an anchor at the evaluation date or a
//! countersigned time); then every member it lists is signed by the
//! catalog's signer: a PE by its Authenticode digest (SHA-1 or SHA-256),
//! any file by its SHA-256 (a flat member). A flat member hashed with
//! SHA-1 is not matched: content identity here is SHA-256.

use super::anchor::{Anchor, SignedBy};
use super::chain::{allows_code_signing, bag, verify_signer};
use super::countersign::anchored;
use cms::content_info::ContentInfo;
use cms::signed_data::SignedData;
use const_oid::ObjectIdentifier;
use der::{Decode, Encode, Tagged};
use std::collections::{BTreeMap, BTreeSet};

const OID_CTL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.311.10.1");
const OID_CATALOG_LIST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.311.12.1.1");
const OID_SPC_INDIRECT_DATA: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.4.1.311.2.1.4");
const OID_SPC_PE_IMAGE_DATA: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.4.1.311.2.1.15");
const OID_SPC_CAB_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.311.2.1.25");
/// Members of one catalog, at most.
const MAX_MEMBERS: usize = 1_000_000;

/// A certificate trust list (the content of a catalog).
#[derive(der::Sequence)]
struct Ctl {
    version: Option<der::asn1::Int>,
    subject_usage: Vec<ObjectIdentifier>,
    list_identifier: Option<der::asn1::OctetString>,
    sequence_number: Option<der::asn1::Int>,
    this_update: x509_cert::time::Time,
    next_update: Option<x509_cert::time::Time>,
    subject_algorithm: x509_cert::spki::AlgorithmIdentifierOwned,
    /// The members (SEQUENCE OF TrustedSubject), read one by one.
    trusted_subjects: Option<Vec<der::Any>>,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    extensions: Option<der::Any>,
}

/// One member: its identifier (a tag) and attributes.
#[derive(der::Sequence)]
struct TrustedSubject {
    identifier: der::asn1::OctetString,
    /// SET OF Attribute, read as it comes (catalog tools do not sort it).
    attributes: Option<der::Any>,
}

/// SpcIndirectDataContent, the value optional (as catalog tools write it).
#[derive(der::Sequence)]
struct Indirect {
    data: IndirectData,
    digest: authenticode::DigestInfo,
}

#[derive(der::Sequence)]
struct IndirectData {
    kind: ObjectIdentifier,
    value: Option<der::Any>,
}

/// A catalog's signers and the members it lists.
type Vouching = (Vec<SignedBy>, Vec<String>);

/// A catalog's signers (if it chains to an anchor) and the members it
/// lists. `Ok(None)`: not a catalog.
pub(super) fn verify(
    data: &[u8],
    (anchors, tsa): (&[Anchor], &[Anchor]),
    at: u64,
) -> Result<Option<Vouching>, String> {
    if data.first() != Some(&0x30) {
        return Ok(None);
    }
    let mut reader = der::SliceReader::new(data).map_err(|e| format!("catalog: {e}"))?;
    let Ok(ci) = ContentInfo::decode(&mut reader) else {
        return Ok(None);
    };
    if ci.content_type != const_oid::db::rfc6268::ID_SIGNED_DATA {
        return Ok(None);
    }
    let sd: SignedData = ci
        .content
        .decode_as()
        .map_err(|e| format!("catalog: SignedData: {e}"))?;
    if sd.encap_content_info.econtent_type != OID_CTL {
        return Ok(None);
    }
    let econtent = sd
        .encap_content_info
        .econtent
        .as_ref()
        .ok_or("catalog: no content")?;
    // Catalog tools put the list in directly (as Authenticode does); CMS
    // tools wrap it in an OCTET STRING. The digest is over the value.
    let ctl: Ctl = if econtent.tag() == der::Tag::OctetString {
        Ctl::from_der(econtent.value())
    } else {
        econtent.decode_as()
    }
    .map_err(|e| format!("catalog: certificate trust list: {e}"))?;
    if !ctl.subject_usage.contains(&OID_CATALOG_LIST) {
        return Err("catalog: not a catalog list".into());
    }
    let [si] = sd.signer_infos.0.as_slice() else {
        return Err("catalog: not exactly one signer".into());
    };
    let bag = bag(&sd)?;
    let (signer, _) = verify_signer(si, econtent.value(), &bag)?;
    if !allows_code_signing(signer) {
        return Err("catalog: not signed by a code-signing certificate".into());
    }
    let by = anchored(signer, si, &bag, (anchors, tsa), at)?;
    Ok(Some((by, members(&ctl))))
}

/// The digests a catalog lists, `pe:ALG:HEX` or `flat:ALG:HEX`, sorted.
fn members(ctl: &Ctl) -> Vec<String> {
    let mut out = BTreeSet::new();
    let Some(subjects) = &ctl.trusted_subjects else {
        return Vec::new();
    };
    for s in subjects.iter().take(MAX_MEMBERS) {
        let Ok(s) = s.decode_as::<TrustedSubject>() else {
            continue;
        };
        let Some(attrs) = &s.attributes else {
            continue;
        };
        let Ok(mut r) = der::SliceReader::new(attrs.value()) else {
            continue;
        };
        while let Ok(a) = x509_cert::attr::Attribute::decode(&mut r) {
            if a.oid != OID_SPC_INDIRECT_DATA {
                continue;
            }
            for v in a.values.iter() {
                let Ok(ind) = v.decode_as::<Indirect>() else {
                    continue;
                };
                let kind = if ind.data.kind == OID_SPC_PE_IMAGE_DATA {
                    "pe"
                } else if ind.data.kind == OID_SPC_CAB_DATA {
                    "flat"
                } else {
                    continue;
                };
                let alg = ind.digest.digest_algorithm.oid;
                let alg = if alg == const_oid::db::rfc5912::ID_SHA_256 {
                    "sha256"
                } else if alg == const_oid::db::rfc5912::ID_SHA_1 {
                    "sha1"
                } else {
                    continue;
                };
                out.insert(format!(
                    "{kind}:{alg}:{}",
                    crate::util::hex::hex(ind.digest.digest.as_bytes())
                ));
            }
        }
    }
    out.into_iter().collect()
}

/// The members verified catalogs vouch for, and by whom.
#[derive(Debug, Default)]
pub struct Vouch(BTreeMap<String, Vec<SignedBy>>);

/// What `catalogs` vouch for: (the name of an entry holding the catalog,
/// its signers, its members). A catalog vouches only if its own signature
/// chained to an anchor (signers not empty).
pub fn vouched<'a>(
    catalogs: impl IntoIterator<Item = (&'a str, &'a [SignedBy], &'a [String])>,
) -> Vouch {
    let mut v = Vouch::default();
    for (name, signed_by, members) in catalogs {
        if signed_by.is_empty() || members.is_empty() {
            continue;
        }
        let by: Vec<SignedBy> = signed_by
            .iter()
            .map(|b| SignedBy {
                catalog: Some(name.to_string()),
                ..b.clone()
            })
            .collect();
        for m in members {
            let e = v.0.entry(m.clone()).or_default();
            for b in &by {
                if !e.contains(b) {
                    e.push(b.clone());
                }
            }
        }
    }
    v
}

impl Vouch {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Who vouches for a content: `sha256` its content identity (hex),
    /// `authenticode` its PE digests (`Judgement::authenticode`).
    pub fn of(&self, sha256: &str, authenticode: &[String]) -> Vec<SignedBy> {
        let mut out: Vec<SignedBy> = Vec::new();
        let keys = std::iter::once(format!("flat:sha256:{sha256}"))
            .chain(authenticode.iter().map(|d| format!("pe:{d}")));
        for k in keys {
            for b in self.0.get(&k).into_iter().flatten() {
                if !out.contains(b) {
                    out.push(b.clone());
                }
            }
        }
        out
    }
}

/// What catalog signatures need beyond one content: the Authenticode
/// digests of the PE contents not signed on their own, and the catalogs
/// signed to an anchor (by content). Shards carry it in their partial
/// reports, so a catalog in one shard vouches for a file in another.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CatalogFacts {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub authenticode: BTreeMap<String, Vec<String>>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub catalogs: BTreeMap<String, Catalog>,
}

/// A catalog signed to an anchor: the first of the names it has in the
/// corpus (sorted, so shards and a single run name it alike), its signers
/// and the members it lists.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Catalog {
    pub name: String,
    pub signed_by: Vec<SignedBy>,
    pub members: Vec<String>,
}

impl CatalogFacts {
    pub fn is_empty(&self) -> bool {
        self.authenticode.is_empty() && self.catalogs.is_empty()
    }

    /// Record the catalog `sha256` (hex) named `name` in the corpus.
    pub fn add_catalog(
        &mut self,
        sha256: String,
        name: &str,
        signed_by: &[SignedBy],
        members: &[String],
    ) {
        match self.catalogs.get_mut(&sha256) {
            Some(c) if c.name.as_str() <= name => {}
            Some(c) => c.name = name.to_string(),
            None => {
                self.catalogs.insert(
                    sha256,
                    Catalog {
                        name: name.to_string(),
                        signed_by: signed_by.to_vec(),
                        members: members.to_vec(),
                    },
                );
            }
        }
    }

    pub fn extend(&mut self, other: CatalogFacts) {
        self.authenticode.extend(other.authenticode);
        for (sha, c) in other.catalogs {
            self.add_catalog(sha, &c.name, &c.signed_by, &c.members);
        }
    }

    /// Who the catalogs vouch for.
    pub fn vouch(&self) -> Vouch {
        vouched(
            self.catalogs
                .values()
                .map(|c| (c.name.as_str(), &c.signed_by[..], &c.members[..])),
        )
    }
}

/// Mark critical the entries of `corpus` a catalog of `corpus.catalogs`
/// vouches for, and record who signed them in `corpus.signed`.
/// `content[i]`: the content (sha256) of entry `i`, if it was scanned.
/// Returns how many entries it made critical.
pub fn apply(corpus: &mut crate::corpus::Corpus, content: &[Option<[u8; 32]>]) -> usize {
    let vouch = corpus.catalogs.vouch();
    if vouch.is_empty() {
        return 0;
    }
    let mut made = 0;
    let none = Vec::new();
    for (i, sha) in content.iter().enumerate().take(corpus.files.len()) {
        let Some(sha) = sha else { continue };
        let hex = crate::util::hex::hex(sha);
        let digests = corpus.catalogs.authenticode.get(&hex).unwrap_or(&none);
        let by = vouch.of(&hex, digests);
        if by.is_empty() {
            continue;
        }
        if !corpus.files[i].critical {
            corpus.files[i].critical = true;
            made += 1;
        }
        let e = corpus.signed.entry(hex).or_default();
        for b in by {
            if !e.contains(&b) {
                e.push(b);
            }
        }
    }
    made
}

/// A member for `catalog_list`: a PE by its Authenticode digest, or a
/// flat file by its hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Member<'a> {
    Pe { sha1: bool, digest: &'a [u8] },
    Flat { sha1: bool, digest: &'a [u8] },
}

/// The DER of a catalog list (a certificate trust list) naming `members`,
/// as a catalog signer signs it (tests make catalogs with it and openssl).
#[doc(hidden)]
pub fn catalog_list(members: &[Member]) -> Vec<u8> {
    use der::asn1::{Any, OctetString};
    let alg = |sha1: bool| x509_cert::spki::AlgorithmIdentifierOwned {
        oid: if sha1 {
            const_oid::db::rfc5912::ID_SHA_1
        } else {
            const_oid::db::rfc5912::ID_SHA_256
        },
        parameters: Some(Any::null()),
    };
    let subjects: Vec<Any> = members
        .iter()
        .map(|m| {
            let (kind, sha1, digest) = match *m {
                Member::Pe { sha1, digest } => (OID_SPC_PE_IMAGE_DATA, sha1, digest),
                Member::Flat { sha1, digest } => (OID_SPC_CAB_DATA, sha1, digest),
            };
            let indirect = Indirect {
                data: IndirectData {
                    kind,
                    value: Some(Any::new(der::Tag::Sequence, Vec::new()).expect("empty")),
                },
                digest: authenticode::DigestInfo {
                    digest_algorithm: alg(sha1),
                    digest: OctetString::new(digest.to_vec()).expect("digest"),
                },
            };
            let attr = x509_cert::attr::Attribute {
                oid: OID_SPC_INDIRECT_DATA,
                values: der::asn1::SetOfVec::try_from(vec![
                    Any::encode_from(&indirect).expect("indirect")
                ])
                .expect("one value"),
            };
            let set = Any::new(der::Tag::Set, attr.to_der().expect("attribute")).expect("set");
            let tag = crate::util::hex::hex(digest).to_uppercase();
            let subject = TrustedSubject {
                identifier: OctetString::new(
                    tag.encode_utf16()
                        .flat_map(u16::to_le_bytes)
                        .collect::<Vec<u8>>(),
                )
                .expect("tag"),
                attributes: Some(set),
            };
            Any::encode_from(&subject).expect("subject")
        })
        .collect();
    let ctl = Ctl {
        version: None,
        subject_usage: vec![OID_CATALOG_LIST],
        list_identifier: Some(OctetString::new(b"fpgate-test".to_vec()).expect("id")),
        sequence_number: None,
        this_update: x509_cert::time::Time::UtcTime(
            der::asn1::UtcTime::from_unix_duration(std::time::Duration::from_secs(1_700_000_000))
                .expect("time"),
        ),
        next_update: None,
        subject_algorithm: x509_cert::spki::AlgorithmIdentifierOwned {
            oid: ObjectIdentifier::new_unwrap("1.3.6.1.4.1.311.12.1.2"),
            parameters: Some(Any::null()),
        },
        trusted_subjects: Some(subjects),
        extensions: None,
    };
    ctl.to_der().expect("catalog list")
}
