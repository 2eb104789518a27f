//! Real signatures made here with openssl and osslsigncode (Debian's), on
//! an unsigned PE of the bundled corpus, and what `verify` makes of them:
//! a genuine chain to the pinned anchor counts; the forgeries described in
//! #32 and hostile signature data do not, and never panic or hang.

use super::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use x509_cert::Certificate;

/// The evaluation date of these tests: an hour after the certificates
/// were made (they are valid for ten years from now).
fn at() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600
}

fn sh(dir: &Path, prog: &str, args: &[&str]) {
    let out = Command::new(prog)
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{prog}: {e}"));
    assert!(
        out.status.success(),
        "{prog} {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Pki {
        let p = Pki {
            dir: tempfile::tempdir().unwrap(),
        };
        std::fs::write(
            p.path("ca.ext"),
            "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n",
        )
        .unwrap();
        std::fs::write(
            p.path("leaf.ext"),
            "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=codeSigning\n",
        )
        .unwrap();
        std::fs::write(
            p.path("tsa.ext"),
            "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=critical,timeStamping\n",
        )
        .unwrap();
        std::fs::write(
            p.path("tls.ext"),
            "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        p
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn s(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }

    fn key(&self, name: &str) {
        if !self.path(&format!("{name}.key")).exists() {
            sh(
                self.dir.path(),
                "openssl",
                &["genrsa", "-out", &format!("{name}.key"), "2048"],
            );
        }
    }

    /// A self-signed CA `name` with subject `cn`.
    fn root(&self, name: &str, cn: &str) {
        self.key(name);
        sh(
            self.dir.path(),
            "openssl",
            &[
                "req",
                "-x509",
                "-new",
                "-key",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.pem"),
                "-days",
                "3650",
                "-subj",
                &format!("/CN={cn}"),
                "-addext",
                "basicConstraints=critical,CA:TRUE",
            ],
        );
    }

    /// A certificate `name` (key `key`), subject `cn`, issued by `issuer`
    /// (its certificate and key `issuer_key`), with extensions `ext`,
    /// valid from `start` for `days`, serial `serial`.
    #[allow(clippy::too_many_arguments)]
    fn issue(
        &self,
        name: &str,
        key: &str,
        cn: &str,
        issuer: &str,
        issuer_key: &str,
        ext: &str,
        days: &str,
        serial: &str,
    ) {
        self.issue_with(name, key, cn, (issuer, issuer_key), ext, days, serial, &[])
    }

    /// An elliptic-curve key `name` on `curve` (before `root`/`issue`).
    fn ec_key(&self, name: &str, curve: &str) {
        sh(
            self.dir.path(),
            "openssl",
            &[
                "ecparam",
                "-name",
                curve,
                "-genkey",
                "-noout",
                "-out",
                &format!("{name}.key"),
            ],
        );
    }

    /// `issue`, with more arguments for `openssl x509` (`-sigopt ...`).
    #[allow(clippy::too_many_arguments)]
    fn issue_with(
        &self,
        name: &str,
        key: &str,
        cn: &str,
        (issuer, issuer_key): (&str, &str),
        ext: &str,
        days: &str,
        serial: &str,
        more: &[&str],
    ) {
        self.key(key);
        sh(
            self.dir.path(),
            "openssl",
            &[
                "req",
                "-new",
                "-key",
                &format!("{key}.key"),
                "-out",
                &format!("{name}.csr"),
                "-subj",
                &format!("/CN={cn}"),
            ],
        );
        sh(
            self.dir.path(),
            "openssl",
            &[
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                &format!("{issuer}.pem"),
                "-CAkey",
                &format!("{issuer_key}.key"),
                "-out",
                &format!("{name}.pem"),
                "-days",
                days,
                "-set_serial",
                serial,
                "-extfile",
                ext,
            ]
            .into_iter()
            .chain(more.iter().copied())
            .collect::<Vec<_>>(),
        );
    }

    fn chain(&self, name: &str, parts: &[&str]) {
        let mut text = String::new();
        for p in parts {
            text.push_str(&std::fs::read_to_string(self.path(&format!("{p}.pem"))).unwrap());
        }
        std::fs::write(self.path(name), text).unwrap();
    }

    /// Sign the test PE with `key` and the certificates of `chain`; with
    /// `nest`, add a nested signature to `input` instead.
    fn sign(&self, input: &Path, out: &str, chain: &str, key: &str, nest: bool) -> Vec<u8> {
        let mut args = vec!["sign"];
        if nest {
            args.push("-nest");
        }
        let (c, k, i, o) = (
            self.s(chain),
            self.s(&format!("{key}.key")),
            input.display().to_string(),
            self.s(out),
        );
        args.extend([
            "-certs", &c, "-key", &k, "-h", "sha256", "-in", &i, "-out", &o,
        ]);
        sh(self.dir.path(), "osslsigncode", &args);
        std::fs::read(self.path(out)).unwrap()
    }

    fn anchor(&self, name: &str, cert: &str) -> Anchor {
        let pem = std::fs::read_to_string(self.path(&format!("{cert}.pem"))).unwrap();
        Anchor::from_pem(name, &pem, None).unwrap()
    }

    fn pin(&self, name: &str, cert: &str) -> Anchor {
        let pem = std::fs::read_to_string(self.path(&format!("{cert}.pem"))).unwrap();
        let c = Certificate::load_pem_chain(pem.as_bytes())
            .unwrap()
            .remove(0);
        Anchor {
            name: name.into(),
            key: AnchorKey::Pinned(der_sha256(&c)),
            subject: None,
        }
    }
}

fn unsigned_pe() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("corpus/pypi/setuptools-75.6.0/cli-64.exe")
}

fn anchors_of(v: &Verdict) -> Vec<&str> {
    v.signed_by.iter().map(|s| s.anchor.as_str()).collect()
}

/// The vendor's PKI: root -> intermediate -> leaf (code signing).
fn vendor() -> Pki {
    let p = Pki::new();
    p.root("root", "Vendor Root CA");
    p.issue(
        "inter",
        "inter",
        "Vendor Code Signing CA",
        "root",
        "root",
        "ca.ext",
        "3650",
        "100",
    );
    p.issue(
        "leaf",
        "leaf",
        "Vendor Corp",
        "inter",
        "inter",
        "leaf.ext",
        "3650",
        "4242",
    );
    p.chain("chain.pem", &["leaf", "inter"]);
    p
}

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
    p.key("a");
    p.key("b");
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
fn a_countersignature_by_a_pinned_authority_vouches_for_an_expired_signer() {
    let p = Pki::new();
    p.root("root", "Vendor Root CA");
    p.issue(
        "inter",
        "inter",
        "Vendor Code Signing CA",
        "root",
        "root",
        "ca.ext",
        "3650",
        "100",
    );
    // A signer valid for a day only.
    p.issue(
        "leaf",
        "leaf",
        "Vendor Corp",
        "inter",
        "inter",
        "leaf.ext",
        "1",
        "4242",
    );
    p.chain("chain.pem", &["leaf", "inter"]);
    p.root("tsaroot", "Stamp Root CA");
    p.issue(
        "tsa",
        "tsa",
        "Stamp Authority",
        "tsaroot",
        "tsaroot",
        "tsa.ext",
        "3650",
        "5",
    );
    p.chain("tsachain.pem", &["tsa", "tsaroot"]);
    p.root("otherroot", "Other Stamp Root");
    let now = at() - 3600;
    let stamped = |out: &str, time: u64| {
        let (c, k, t, i, o) = (
            p.s("chain.pem"),
            p.s("leaf.key"),
            time.to_string(),
            unsigned_pe().display().to_string(),
            p.s(out),
        );
        sh(
            p.dir.path(),
            "osslsigncode",
            &[
                "sign",
                "-certs",
                &c,
                "-key",
                &k,
                "-h",
                "sha256",
                "-TSA-certs",
                &p.s("tsa.pem"),
                "-TSA-key",
                &p.s("tsa.key"),
                "-TSA-time",
                &t,
                "-in",
                &i,
                "-out",
                &o,
            ],
        );
        std::fs::read(p.path(out)).unwrap()
    };
    let root = p.anchor("vendor-root", "root");
    let tsa = p.anchor("stamps", "tsaroot");
    let later = now + 30 * 86_400;
    let ok = stamped("stamped.exe", now);
    // Valid now without the stamp; a month later only with it.
    assert_eq!(
        anchors_of(&verify(&ok, std::slice::from_ref(&root), now + 60)),
        ["vendor-root"]
    );
    assert!(verify(&ok, std::slice::from_ref(&root), later)
        .signed_by
        .is_empty());
    let v = verify_with(
        &ok,
        std::slice::from_ref(&root),
        std::slice::from_ref(&tsa),
        later,
    );
    assert_eq!(anchors_of(&v), ["vendor-root"], "{v:?}");
    // An authority nobody pinned vouches for nothing.
    let other = p.anchor("other", "otherroot");
    let v = verify_with(&ok, std::slice::from_ref(&root), &[other], later);
    assert!(
        v.signed_by.is_empty() && v.notes[0].contains("no time-stamping anchor"),
        "{v:?}"
    );
    // Stamped before the signer was valid: no.
    let early = stamped("early.exe", now - 10 * 86_400);
    let v = verify_with(
        &early,
        std::slice::from_ref(&root),
        std::slice::from_ref(&tsa),
        later,
    );
    assert!(v.signed_by.is_empty(), "{v:?}");
    // Unstamped and expired: no, whatever authorities are pinned.
    let plain = p.sign(&unsigned_pe(), "plain.exe", "chain.pem", "leaf", false);
    let v = verify_with(
        &plain,
        std::slice::from_ref(&root),
        std::slice::from_ref(&tsa),
        later,
    );
    assert!(
        v.signed_by.is_empty() && v.notes[0].contains("no RFC 3161"),
        "{v:?}"
    );
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

#[path = "../../../tests/support/catalog.rs"]
mod support;

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

/// A legacy Authenticode time-stamping server on 127.0.0.1 (what
/// `osslsigncode -t` asks): it answers the base64 request with a base64
/// SignedData over the signature's value, signed by `tsa` with openssl.
/// Stopped when dropped.
struct LegacyTsa {
    child: std::process::Child,
    url: String,
}

impl LegacyTsa {
    fn start(dir: &Path) -> LegacyTsa {
        let script = r#"
import base64, http.server, subprocess
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers['Content-Length']))
        open('req.der', 'wb').write(base64.b64decode(body))
        out = subprocess.run(['openssl', 'asn1parse', '-inform', 'DER', '-in', 'req.der'],
                             capture_output=True, text=True).stdout
        hexes = [l.split('[HEX DUMP]:')[1].strip() for l in out.splitlines()
                 if 'OCTET STRING' in l and '[HEX DUMP]:' in l]
        open('sigval.bin', 'wb').write(bytes.fromhex(hexes[-1]))
        subprocess.run(['openssl', 'cms', '-sign', '-binary', '-nodetach', '-in', 'sigval.bin',
                        '-signer', 'tsa.pem', '-inkey', 'tsa.key', '-outform', 'DER',
                        '-md', 'sha256', '-out', 'resp.der'], check=True)
        resp = base64.b64encode(open('resp.der', 'rb').read())
        self.send_response(200)
        self.send_header('Content-Type', 'application/octet-stream')
        self.send_header('Content-Length', str(len(resp)))
        self.end_headers()
        self.wfile.write(resp)
    def log_message(self, *a):
        pass
s = http.server.HTTPServer(('127.0.0.1', 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
"#;
        let mut child = Command::new("python3")
            .current_dir(dir)
            .args(["-c", script])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3");
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        LegacyTsa {
            child,
            url: format!("http://127.0.0.1:{}", line.trim()),
        }
    }
}

impl Drop for LegacyTsa {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_pkcs9_countersignature_by_a_pinned_authority_vouches_for_an_expired_signer() {
    let p = Pki::new();
    p.root("root", "Vendor Root CA");
    // A signer valid for a day only, straight under the root.
    p.issue(
        "leaf",
        "leaf",
        "Vendor Corp",
        "root",
        "root",
        "leaf.ext",
        "1",
        "4242",
    );
    p.root("tsaroot", "Legacy Stamp Root");
    p.issue(
        "tsa",
        "tsa",
        "Legacy Stamp",
        "tsaroot",
        "tsaroot",
        "tsa.ext",
        "3650",
        "6",
    );
    // A stamping certificate without the time-stamping usage.
    p.issue(
        "notsa",
        "notsa",
        "Not A Stamp",
        "tsaroot",
        "tsaroot",
        "leaf.ext",
        "3650",
        "8",
    );
    let server = LegacyTsa::start(p.dir.path());
    let sign = |out: &str, url: &str| {
        let (c, k, i, o) = (
            p.s("leaf.pem"),
            p.s("leaf.key"),
            unsigned_pe().display().to_string(),
            p.s(out),
        );
        sh(
            p.dir.path(),
            "osslsigncode",
            &[
                "sign", "-certs", &c, "-key", &k, "-h", "sha256", "-t", url, "-in", &i, "-out", &o,
            ],
        );
        std::fs::read(p.path(out)).unwrap()
    };
    let stamped = sign("pkcs9.exe", &server.url);
    // A PKCS#9 countersignature, not an RFC 3161 token.
    let marker = [
        0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x06,
    ];
    assert!(stamped.windows(marker.len()).any(|w| w == marker));
    let root = p.anchor("vendor-root", "root");
    let tsa = p.anchor("legacy-stamps", "tsaroot");
    let later = at() + 30 * 86_400;
    assert!(verify(&stamped, std::slice::from_ref(&root), later)
        .signed_by
        .is_empty());
    let v = verify_with(
        &stamped,
        std::slice::from_ref(&root),
        std::slice::from_ref(&tsa),
        later,
    );
    assert_eq!(anchors_of(&v), ["vendor-root"], "{v:?}");
    // The evaluation date before the stamp: the stamp does not count.
    let v = verify_with(
        &stamped,
        std::slice::from_ref(&root),
        std::slice::from_ref(&tsa),
        1_000_000_000,
    );
    assert!(v.signed_by.is_empty(), "{v:?}");
    // An authority nobody pinned.
    p.root("other", "Other Root");
    let v = verify_with(
        &stamped,
        std::slice::from_ref(&root),
        &[p.anchor("other", "other")],
        later,
    );
    assert!(
        v.signed_by.is_empty() && v.notes[0].contains("no time-stamping anchor"),
        "{v:?}"
    );
    // The countersigner's signature damaged (the file's last bytes, before
    // the table's padding): the stamp does not count.
    let mut broken = stamped.clone();
    let n = broken.len();
    broken[n - 20] ^= 1;
    let v = verify_with(
        &broken,
        std::slice::from_ref(&root),
        std::slice::from_ref(&tsa),
        later,
    );
    assert!(
        v.signed_by.is_empty() && v.notes[0].contains("PKCS#9"),
        "{v:?}"
    );
    // Stamped by a certificate without the time-stamping usage.
    drop(server);
    std::fs::copy(p.path("notsa.pem"), p.path("tsa.pem")).unwrap();
    std::fs::copy(p.path("notsa.key"), p.path("tsa.key")).unwrap();
    let server = LegacyTsa::start(p.dir.path());
    let wrong = sign("notsa.exe", &server.url);
    let v = verify_with(
        &wrong,
        std::slice::from_ref(&root),
        std::slice::from_ref(&tsa),
        later,
    );
    assert!(
        v.signed_by.is_empty() && v.notes[0].contains("not for time stamping"),
        "{v:?}"
    );
}
