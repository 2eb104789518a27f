//! Signed catalogs and what they vouch for.

use super::*;

impl Pki {
    /// A catalog: `list` signed by `signer` with the certificates of
    /// `certfile`.
    fn catalog(&self, out: &str, list: &[u8], signer: &str, certfile: &str) -> Vec<u8> {
        support::sign_catalog(
            self.dir.path(),
            &self.path(out),
            list,
            signer,
            Path::new(certfile),
        )
    }
}

fn rules(anchors: Vec<Anchor>) -> Rules {
    Rules {
        anchors,
        timestamp_anchors: Vec::new(),
        at: at(),
        fingerprint: [0; 32],
    }
}

#[test]
fn a_catalog_signed_to_an_anchor_vouches_for_its_members_and_nothing_else() {
    let p = vendor();
    let r = rules(vec![p.anchor("vendor-root", "root")]);
    let pe = std::fs::read(unsigned_pe()).unwrap();
    let [sha1, sha256] = pe_digests(&pe).unwrap();
    let flat = b"a data file the catalog lists by its hash".to_vec();
    let flat_sha = sha2::Sha256::digest(&flat).to_vec();
    let list = catalog_list(&[
        Member::Pe {
            sha1: false,
            digest: &sha256,
        },
        Member::Flat {
            sha1: false,
            digest: &flat_sha,
        },
    ]);
    let cat = p.catalog("v.cat", &list, "leaf", &p.s("inter.pem"));
    let j = judge(&cat, true, &r);
    assert_eq!(
        anchors_of(&Verdict {
            signed_by: j.signed_by.clone(),
            notes: vec![]
        }),
        ["vendor-root"],
        "{j:?}"
    );
    assert_eq!(j.vouches.len(), 2, "{j:?}");
    // Not named *.cat: not read as a catalog.
    assert_eq!(judge(&cat, false, &r), Judgement::default());

    // The PE, judged on its own: no signature, its digests recorded.
    let pj = judge(&pe, false, &r);
    assert!(pj.signed_by.is_empty());
    assert_eq!(
        pj.authenticode,
        [
            format!("sha1:{}", crate::util::hex::hex(&sha1)),
            format!("sha256:{}", crate::util::hex::hex(&sha256))
        ]
    );
    let vouch = vouched([("sys/v.cat", &j.signed_by[..], &j.vouches[..])]);
    let by = vouch.of("00", &pj.authenticode);
    assert_eq!(by.len(), 1);
    assert_eq!(by[0].catalog.as_deref(), Some("sys/v.cat"));
    assert_eq!(by[0].subject, "CN=Vendor Corp");
    assert_eq!(vouch.of(&crate::util::hex::hex(&flat_sha), &[]).len(), 1);
    // The PE changed after the catalog was made: not vouched for.
    let mut changed = pe.clone();
    changed[0x400] ^= 1;
    let cj = judge(&changed, false, &r);
    assert!(vouch.of("00", &cj.authenticode).is_empty());
    // A SHA-1 catalog member counts the same.
    let list1 = catalog_list(&[Member::Pe {
        sha1: true,
        digest: &sha1,
    }]);
    let cat1 = p.catalog("v1.cat", &list1, "leaf", &p.s("inter.pem"));
    let j1 = judge(&cat1, true, &r);
    assert_eq!(
        vouched([("v1.cat", &j1.signed_by[..], &j1.vouches[..])])
            .of("00", &pj.authenticode)
            .len(),
        1
    );

    // A member added to the list after signing: the signature fails.
    let at_digest = cat
        .windows(flat_sha.len())
        .position(|w| w == flat_sha.as_slice())
        .unwrap();
    let mut tampered = cat.clone();
    tampered[at_digest] ^= 1;
    let tj = judge(&tampered, true, &r);
    assert!(tj.signed_by.is_empty() && tj.vouches.is_empty(), "{tj:?}");

    // As Windows' catalog tools write it: the list is the content itself
    // (a SEQUENCE, not wrapped in an OCTET STRING), its message digest the
    // hash of the list's contents. openssl signs the contents; then the
    // OCTET STRING's tag becomes the SEQUENCE's (same length).
    let header = match list[1] {
        n if n < 0x80 => 2,
        n => 2 + (n & 0x7f) as usize,
    };
    let mut ms = p.catalog("ms.cat", &list[header..], "leaf", &p.s("inter.pem"));
    let at_content = ms
        .windows(list.len() - header)
        .position(|w| w == &list[header..])
        .unwrap();
    let tag_at = at_content - header;
    assert_eq!(ms[tag_at], 0x04, "an OCTET STRING of the same length");
    ms[tag_at] = 0x30;
    let mj = judge(&ms, true, &r);
    assert_eq!(mj.vouches, j.vouches, "{mj:?}");
    assert_eq!(mj.signed_by, j.signed_by);
    let mut ms_tampered = ms.clone();
    let at = ms
        .windows(flat_sha.len())
        .position(|w| w == flat_sha.as_slice())
        .unwrap();
    ms_tampered[at] ^= 1;
    assert!(judge(&ms_tampered, true, &r).vouches.is_empty());
    assert!(vouched([("t.cat", &tj.signed_by[..], &tj.vouches[..])]).is_empty());

    // Signed under another root with the vendor's names: vouches nothing.
    p.root("other", "Vendor Root CA");
    p.issue(
        "otherleaf",
        "otherleaf",
        "Vendor Corp",
        "other",
        "other",
        "leaf.ext",
        "3650",
        "4242",
    );
    let forged = p.catalog("f.cat", &list, "otherleaf", &p.s("other.pem"));
    let fj = judge(&forged, true, &r);
    assert!(fj.signed_by.is_empty() && fj.vouches.is_empty(), "{fj:?}");
    // Signed by the vendor's TLS certificate (no code-signing usage).
    p.issue(
        "tls",
        "tls",
        "Vendor Corp",
        "inter",
        "inter",
        "tls.ext",
        "3650",
        "77",
    );
    let tls = p.catalog("tls.cat", &list, "tls", &p.s("inter.pem"));
    assert!(judge(&tls, true, &r).signed_by.is_empty());

    // Hostile catalogs: truncated, garbage, a signed non-catalog.
    for n in [0, 1, 10, cat.len() / 2, cat.len() - 1] {
        assert!(judge(&cat[..n], true, &r).signed_by.is_empty());
    }
    assert!(judge(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff], true, &r)
        .signed_by
        .is_empty());
}
