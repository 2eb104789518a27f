//! What a tier rule trusts (an anchor) and what a verified signature
//! comes to (who signed, to which anchor).

use x509_cert::Certificate;

/// A trust anchor: a certificate (its own key verifies the top of the
/// path), or the sha256 of the DER of a certificate files carry.
#[derive(Debug, Clone)]
pub enum AnchorKey {
    Certificate(Box<Certificate>),
    Pinned([u8; 32]),
}

/// One tier rule's anchor.
#[derive(Debug, Clone)]
pub struct Anchor {
    /// The rule's name, as reports show it.
    pub name: String,
    pub key: AnchorKey,
    /// Text the signer's subject must contain (e.g. `CN=Example Corp`).
    pub subject: Option<String>,
}

impl Anchor {
    /// An anchor from a PEM file's first certificate.
    pub fn from_pem(name: &str, pem: &str, subject: Option<String>) -> Result<Anchor, String> {
        let certs = Certificate::load_pem_chain(pem.as_bytes())
            .map_err(|e| format!("not a PEM certificate: {e}"))?;
        let cert = certs
            .into_iter()
            .next()
            .ok_or("no certificate in the PEM file")?;
        Ok(Anchor {
            name: name.to_string(),
            key: AnchorKey::Certificate(Box::new(cert)),
            subject,
        })
    }
}

/// A signature that verified to an anchor.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SignedBy {
    /// The anchor's (tier rule's) name.
    pub anchor: String,
    /// The signing certificate's subject.
    pub subject: String,
    /// The signing certificate's sha256 (DER), hex.
    pub signer_sha256: String,
    /// Signed through this catalog (the name of the corpus entry holding
    /// it), not by a signature of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalog: Option<String>,
}
