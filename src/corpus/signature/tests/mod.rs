//! Real signatures made here with openssl and osslsigncode (Debian's), on
//! an unsigned PE of the bundled corpus, and what `verify` makes of them:
//! a genuine chain to the pinned anchor counts; the forgeries described in
//! #32 and hostile signature data do not, and never panic or hang.

use super::*;
use std::path::{Path, PathBuf};
use x509_cert::Certificate;

mod catalogs;
mod countersignatures;
mod embedded;

#[path = "../../../../tests/support/openssl.rs"]
mod support;

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
    support::run(dir, prog, args)
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

    /// A self-signed CA `name` with subject `cn`.
    fn root(&self, name: &str, cn: &str) {
        support::root(self.dir.path(), name, cn)
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
        issuer: (&str, &str),
        ext: &str,
        days: &str,
        serial: &str,
        more: &[&str],
    ) {
        support::issue(
            self.dir.path(),
            name,
            key,
            cn,
            issuer,
            ext,
            days,
            serial,
            more,
        )
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
    vendor_leaf_days("3650")
}

/// `vendor`, its leaf valid for `days` days.
fn vendor_leaf_days(days: &str) -> Pki {
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
        days,
        "4242",
    );
    p.chain("chain.pem", &["leaf", "inter"]);
    p
}
