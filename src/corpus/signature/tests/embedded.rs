//! Embedded signatures: genuine chains, forgeries, hostile data, ECDSA and
//! RSA-PSS.

use super::*;

#[test]
fn a_genuine_chain_to_a_pinned_anchor_counts_and_forgeries_do_not() {
    let p = vendor();
    let root = p.anchor("vendor-root", "root");
    let inter_pin = p.pin("vendor-intermediate", "inter");
    let signed = p.sign(&unsigned_pe(), "signed.exe", "chain.pem", "leaf", false);

    // Genuine: by the root certificate's key, and by the pinned intermediate.
    let v = verify(&signed, &[root.clone(), inter_pin.clone()], at());
    assert_eq!(
        anchors_of(&v),
        ["vendor-root", "vendor-intermediate"],
        "{v:?}"
    );
    assert_eq!(v.signed_by[0].subject, "CN=Vendor Corp");
    // With a subject constraint: held, and not held.
    let mut named = root.clone();
    named.subject = Some("CN=Vendor Corp".into());
    assert_eq!(
        anchors_of(&verify(&signed, &[named.clone()], at())),
        ["vendor-root"]
    );
    named.subject = Some("CN=Someone Else".into());
    assert!(verify(&signed, &[named], at()).signed_by.is_empty());

    // Unsigned: nothing, and nothing to note.
    let plain = std::fs::read(unsigned_pe()).unwrap();
    assert_eq!(
        verify(&plain, std::slice::from_ref(&root), at()),
        Verdict::default()
    );

    // Not yet valid, or expired, at the evaluation date.
    assert!(verify(&signed, std::slice::from_ref(&root), 1_000_000_000)
        .signed_by
        .is_empty());
    assert!(verify(
        &signed,
        std::slice::from_ref(&root),
        4_102_444_800 + 86_400 * 365 * 20
    )
    .signed_by
    .is_empty());

    // One byte changed after signing (in the code, not the signature).
    let mut flipped = signed.clone();
    flipped[0x400] ^= 0x01;
    let v = verify(&flipped, std::slice::from_ref(&root), at());
    assert!(v.signed_by.is_empty());
    assert!(
        v.notes
            .iter()
            .any(|n| n.contains("does not match its signature")),
        "{v:?}"
    );

    // Self-signed with the vendor's name: not the anchor's key.
    p.root("selfsigned", "Vendor Root CA");
    p.issue(
        "fakeleaf",
        "fakeleaf",
        "Vendor Corp",
        "selfsigned",
        "selfsigned",
        "leaf.ext",
        "3650",
        "4242",
    );
    p.chain("fake.pem", &["fakeleaf", "selfsigned"]);
    let forged = p.sign(
        &unsigned_pe(),
        "selfsigned.exe",
        "fake.pem",
        "fakeleaf",
        false,
    );
    assert!(verify(&forged, &[root.clone(), inter_pin.clone()], at())
        .signed_by
        .is_empty());

    // Signed under another, unpinned root.
    p.root("other", "Other Root");
    p.issue(
        "otherleaf",
        "otherleaf",
        "Vendor Corp",
        "other",
        "other",
        "leaf.ext",
        "3650",
        "7",
    );
    p.chain("other.pem", &["otherleaf", "other"]);
    let other = p.sign(&unsigned_pe(), "other.exe", "other.pem", "otherleaf", false);
    assert!(verify(&other, &[root.clone(), inter_pin.clone()], at())
        .signed_by
        .is_empty());
    assert_eq!(
        anchors_of(&verify(&other, &[p.anchor("other", "other")], at())),
        ["other"]
    );

    // A same-name fake intermediate beside the genuine one: the leaf it
    // issued does not reach the root, whatever else is in the bag.
    p.issue(
        "fakeinter",
        "fakeinter",
        "Vendor Code Signing CA",
        "selfsigned",
        "selfsigned",
        "ca.ext",
        "3650",
        "100",
    );
    p.issue(
        "leaf2",
        "leaf2",
        "Vendor Corp",
        "fakeinter",
        "fakeinter",
        "leaf.ext",
        "3650",
        "4243",
    );
    p.chain("beside.pem", &["leaf2", "fakeinter", "inter", "root"]);
    let beside = p.sign(&unsigned_pe(), "beside.exe", "beside.pem", "leaf2", false);
    assert!(verify(&beside, &[root.clone(), inter_pin.clone()], at())
        .signed_by
        .is_empty());

    // The re-signed forgery: the attacker's own key in a certificate that
    // names the vendor's intermediate as issuer and the genuine leaf's
    // serial, with the vendor's public certificates added to the bag.
    p.issue(
        "evil",
        "evil",
        "Vendor Corp",
        "fakeinter",
        "fakeinter",
        "leaf.ext",
        "3650",
        "4242",
    );
    p.chain("evil-with-genuine.pem", &["evil", "leaf", "inter", "root"]);
    let evil = p.sign(
        &unsigned_pe(),
        "evil1.exe",
        "evil-with-genuine.pem",
        "evil",
        false,
    );
    let v = verify(&evil, &[root.clone(), inter_pin.clone()], at());
    assert!(v.signed_by.is_empty(), "{v:?}");
    assert!(
        v.notes[0].contains("two certificates carry the signer's issuer and serial"),
        "{v:?}"
    );
    p.chain("evil-alone.pem", &["evil", "inter", "root"]);
    let evil = p.sign(&unsigned_pe(), "evil2.exe", "evil-alone.pem", "evil", false);
    let v = verify(&evil, &[root.clone(), inter_pin.clone()], at());
    assert!(v.signed_by.is_empty(), "{v:?}");
    assert!(
        v.notes[0].contains("no verified path from CN=Vendor Corp"),
        "{v:?}"
    );

    // A TLS certificate under the genuine root: not for code.
    p.issue(
        "tls",
        "tls",
        "Vendor Corp",
        "inter",
        "inter",
        "tls.ext",
        "3650",
        "9",
    );
    p.chain("tls-chain.pem", &["tls", "inter"]);
    let tls = p.sign(&unsigned_pe(), "tls.exe", "tls-chain.pem", "tls", false);
    let v = verify(&tls, std::slice::from_ref(&root), at());
    assert!(
        v.signed_by.is_empty() && v.notes.iter().any(|n| n.contains("not a code-signing")),
        "{v:?}"
    );

    // Dual-signed: every signature counts (the nested one is the vendor's).
    let dual = p.sign(&p.path("other.exe"), "dual.exe", "chain.pem", "leaf", true);
    let v = verify(&dual, &[root.clone(), p.anchor("other", "other")], at());
    let mut got = anchors_of(&v);
    got.sort();
    assert_eq!(got, ["other", "vendor-root"], "{v:?}");
}

#[test]
fn hostile_signature_data_is_never_critical_nor_a_panic() {
    let p = vendor();
    let root = p.anchor("vendor-root", "root");
    let signed = p.sign(&unsigned_pe(), "signed.exe", "chain.pem", "leaf", false);
    // The certificate table: the security directory of a PE32+ image.
    let pe_off = u32::from_le_bytes(signed[0x3c..0x40].try_into().unwrap()) as usize;
    let dir = pe_off + 24 + 112 + 4 * 8;
    let table = u32::from_le_bytes(signed[dir..dir + 4].try_into().unwrap()) as usize;
    let size = u32::from_le_bytes(signed[dir + 4..dir + 8].try_into().unwrap()) as usize;
    assert!(table > 0 && size > 0 && table + size <= signed.len());

    let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();
    // The file ends inside the PKCS#7 blob.
    cases.push(("file truncated", signed[..table + size / 2].to_vec()));
    // The blob truncated inside a consistent table (entry and directory
    // sizes say half of it).
    let mut short = signed.clone();
    let half = (size / 2) & !7;
    short[table..table + 4].copy_from_slice(&(half as u32).to_le_bytes());
    short[dir + 4..dir + 8].copy_from_slice(&(half as u32).to_le_bytes());
    short.truncate(table + half);
    cases.push(("blob truncated", short));
    // A table pointing past the end of the file.
    let mut past = signed.clone();
    past[dir..dir + 4].copy_from_slice(&((signed.len() as u32) + 4096).to_le_bytes());
    cases.push(("past the end", past));
    // The blob's bytes scrambled (malformed DER), sizes intact.
    let mut garbage = signed.clone();
    for b in &mut garbage[table + 8 + 16..table + size - 16] {
        *b = b.wrapping_mul(31).wrapping_add(7);
    }
    cases.push(("malformed", garbage));
    // A loop of cross-signed CAs under the leaf.
    support::rsa_key(p.dir.path(), "a");
    support::rsa_key(p.dir.path(), "b");
    p.root("a", "Loop A");
    p.issue(
        "b",
        "b",
        "Loop B",
        "a",
        "a",
        p.s("ca.ext").as_str(),
        "3650",
        "2",
    );
    p.issue(
        "a2",
        "a",
        "Loop A",
        "b",
        "b",
        p.s("ca.ext").as_str(),
        "3650",
        "3",
    );
    p.issue(
        "loopleaf",
        "loopleaf",
        "Vendor Corp",
        "a2",
        "a",
        p.s("leaf.ext").as_str(),
        "3650",
        "4",
    );
    p.chain("loop.pem", &["loopleaf", "a2", "b"]);
    cases.push((
        "loop",
        p.sign(&unsigned_pe(), "loop.exe", "loop.pem", "loopleaf", false),
    ));
    // More certificates in the bag than a signature may carry (distinct
    // ones: a SET OF may not repeat one).
    let mut many = std::fs::read_to_string(p.path("leaf.pem")).unwrap();
    for n in 0..300 {
        sh(
            p.dir.path(),
            "openssl",
            &[
                "x509",
                "-req",
                "-in",
                "inter.csr",
                "-CA",
                "root.pem",
                "-CAkey",
                "root.key",
                "-out",
                "n.pem",
                "-days",
                "30",
                "-set_serial",
                &(1000 + n).to_string(),
            ],
        );
        many.push_str(&std::fs::read_to_string(p.path("n.pem")).unwrap());
    }
    std::fs::write(p.path("many.pem"), many).unwrap();
    cases.push((
        "many",
        p.sign(&unsigned_pe(), "many.exe", "many.pem", "leaf", false),
    ));
    let many_notes = verify(&cases.last().unwrap().1, std::slice::from_ref(&root), at()).notes;
    assert!(
        many_notes[0].contains("certificates in one signature: refused"),
        "{many_notes:?}"
    );

    for (what, data) in cases {
        let started = std::time::Instant::now();
        let v = verify(&data, std::slice::from_ref(&root), at());
        assert!(v.signed_by.is_empty(), "{what}: {v:?}");
        assert!(!v.notes.is_empty(), "{what}: noted");
        assert!(started.elapsed().as_secs() < 10, "{what}: no hang");
    }
    // Random bytes after an MZ: not a PE, nothing to say.
    let mut junk = b"MZ".to_vec();
    junk.extend(std::iter::repeat_n(0xAB, 4096));
    assert_eq!(verify(&junk, &[root], at()), Verdict::default());
}

#[test]
fn ecdsa_signers_and_rsa_pss_certificates_verify_and_forgeries_do_not() {
    // ECDSA: a P-384 root, a P-256 code-signing leaf; osslsigncode signs
    // with the EC key (ecdsa-with-SHA256 in the signer info).
    let p = Pki::new();
    p.ec_key("ecroot", "secp384r1");
    p.root("ecroot", "EC Vendor Root");
    p.ec_key("ecleaf", "prime256v1");
    p.issue(
        "ecleaf",
        "ecleaf",
        "EC Vendor",
        "ecroot",
        "ecroot",
        "leaf.ext",
        "3650",
        "9",
    );
    p.chain("ec.pem", &["ecleaf"]);
    let signed = p.sign(&unsigned_pe(), "ec.exe", "ec.pem", "ecleaf", false);
    let root = p.anchor("ec-root", "ecroot");
    let v = verify(&signed, std::slice::from_ref(&root), at());
    assert_eq!(anchors_of(&v), ["ec-root"], "{v:?}");
    assert_eq!(v.signed_by[0].subject, "CN=EC Vendor");
    // A byte changed after signing.
    let mut flipped = signed.clone();
    flipped[0x400] ^= 0x01;
    assert!(verify(&flipped, std::slice::from_ref(&root), at())
        .signed_by
        .is_empty());
    // Another P-384 root of the same name issued the same-named leaf.
    p.ec_key("ecfake", "secp384r1");
    p.root("ecfake", "EC Vendor Root");
    p.ec_key("ecfakeleaf", "prime256v1");
    p.issue(
        "ecfakeleaf",
        "ecfakeleaf",
        "EC Vendor",
        "ecfake",
        "ecfake",
        "leaf.ext",
        "3650",
        "9",
    );
    p.chain("ecfake.pem", &["ecfakeleaf", "ecfake"]);
    let forged = p.sign(&unsigned_pe(), "ecf.exe", "ecfake.pem", "ecfakeleaf", false);
    let v = verify(&forged, std::slice::from_ref(&root), at());
    assert!(v.signed_by.is_empty(), "{v:?}");
    // A mixed chain: an RSA root issued the EC leaf's certificate.
    p.root("rsaroot", "Mixed Root");
    p.issue(
        "ecleaf2",
        "ecleaf",
        "EC Vendor",
        "rsaroot",
        "rsaroot",
        "leaf.ext",
        "3650",
        "10",
    );
    p.chain("mixed.pem", &["ecleaf2"]);
    let mixed = p.sign(&unsigned_pe(), "mixed.exe", "mixed.pem", "ecleaf", false);
    assert_eq!(
        anchors_of(&verify(&mixed, &[p.anchor("mixed", "rsaroot")], at())),
        ["mixed"]
    );

    // RSA-PSS: the intermediate's and the leaf's certificates signed with
    // PSS (SHA-256, salt 32); the signer itself signs PKCS#1 v1.5.
    let pss = [
        "-sigopt",
        "rsa_padding_mode:pss",
        "-sigopt",
        "rsa_pss_saltlen:32",
        "-sha256",
    ];
    p.root("pssroot", "PSS Root");
    p.issue_with(
        "pssinter",
        "pssinter",
        "PSS Intermediate",
        ("pssroot", "pssroot"),
        "ca.ext",
        "3650",
        "11",
        &pss,
    );
    p.issue_with(
        "pssleaf",
        "pssleaf",
        "PSS Vendor",
        ("pssinter", "pssinter"),
        "leaf.ext",
        "3650",
        "12",
        &pss,
    );
    let text = std::fs::read_to_string(p.path("pssleaf.pem")).unwrap();
    let leaf = Certificate::load_pem_chain(text.as_bytes())
        .unwrap()
        .remove(0);
    assert_eq!(
        leaf.signature_algorithm.oid.to_string(),
        "1.2.840.113549.1.1.10",
        "openssl made a PSS certificate"
    );
    p.chain("pss.pem", &["pssleaf", "pssinter"]);
    let signed = p.sign(&unsigned_pe(), "pss.exe", "pss.pem", "pssleaf", false);
    let pss_root = p.anchor("pss-root", "pssroot");
    let v = verify(&signed, std::slice::from_ref(&pss_root), at());
    assert_eq!(anchors_of(&v), ["pss-root"], "{v:?}");
    // The intermediate's PSS signature damaged in the file's bag: no path.
    let inter_text = std::fs::read_to_string(p.path("pssinter.pem")).unwrap();
    let inter = Certificate::load_pem_chain(inter_text.as_bytes())
        .unwrap()
        .remove(0);
    let sig = inter.signature.raw_bytes().to_vec();
    let at_sig = signed
        .windows(sig.len())
        .position(|w| w == sig.as_slice())
        .expect("the intermediate's signature is in the file");
    let mut broken = signed.clone();
    broken[at_sig + 10] ^= 0x01;
    let v = verify(&broken, std::slice::from_ref(&pss_root), at());
    assert!(v.signed_by.is_empty(), "{v:?}");
}
