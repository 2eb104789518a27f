//! Certificates and signed catalogs made with openssl, for the unit tests,
//! the end-to-end tests and the benches (each includes this file). Files
//! are named by a stem in `dir`: `NAME.key`, `NAME.pem`.

use std::path::Path;

/// Run `prog` in `dir`; its failure (with its stderr) fails the test.
pub fn run(dir: &Path, prog: &str, args: &[&str]) {
    let out = std::process::Command::new(prog)
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

/// An RSA 2048 key `NAME.key`, unless there is one.
pub fn rsa_key(dir: &Path, name: &str) {
    if !dir.join(format!("{name}.key")).exists() {
        run(
            dir,
            "openssl",
            &["genrsa", "-out", &format!("{name}.key"), "2048"],
        );
    }
}

/// A self-signed CA certificate `NAME.pem` (key `NAME.key`, RSA unless
/// made before), subject `CN=cn`, valid for ten years.
pub fn root(dir: &Path, name: &str, cn: &str) {
    rsa_key(dir, name);
    let (key, pem, subj) = (
        format!("{name}.key"),
        format!("{name}.pem"),
        format!("/CN={cn}"),
    );
    run(
        dir,
        "openssl",
        &[
            "req",
            "-x509",
            "-new",
            "-key",
            &key,
            "-out",
            &pem,
            "-days",
            "3650",
            "-subj",
            &subj,
            "-addext",
            "basicConstraints=critical,CA:TRUE",
        ],
    );
}

/// A certificate `NAME.pem` for the key `KEY.key` (RSA unless made
/// before), subject `CN=cn`, issued by `issuer` (`ISSUER.pem`, key
/// `ISSUER_KEY.key`) with the extensions of the file `ext`, valid for
/// `days` days, serial `serial`; `more`: more arguments for `openssl x509`.
#[allow(clippy::too_many_arguments)]
pub fn issue(
    dir: &Path,
    name: &str,
    key: &str,
    cn: &str,
    (issuer, issuer_key): (&str, &str),
    ext: &str,
    days: &str,
    serial: &str,
    more: &[&str],
) {
    rsa_key(dir, key);
    let (csr, subj) = (format!("{name}.csr"), format!("/CN={cn}"));
    let key = format!("{key}.key");
    run(
        dir,
        "openssl",
        &["req", "-new", "-key", &key, "-out", &csr, "-subj", &subj],
    );
    let (ca, ca_key, pem) = (
        format!("{issuer}.pem"),
        format!("{issuer_key}.key"),
        format!("{name}.pem"),
    );
    let mut args = vec![
        "x509",
        "-req",
        "-in",
        &csr,
        "-CA",
        &ca,
        "-CAkey",
        &ca_key,
        "-out",
        &pem,
        "-days",
        days,
        "-set_serial",
        serial,
        "-extfile",
        ext,
    ];
    args.extend_from_slice(more);
    run(dir, "openssl", &args);
}

/// Sign `list` (a catalog list's DER, see `corpus::signature::catalog_list`)
/// as a catalog: CMS SignedData of content type certificate trust list, by
/// `signer` (`SIGNER.pem`, `SIGNER.key` in `dir`) with the certificates of
/// `certfile`; written to `out`, returned.
pub fn sign_catalog(dir: &Path, out: &Path, list: &[u8], signer: &str, certfile: &Path) -> Vec<u8> {
    std::fs::write(dir.join("list.der"), list).unwrap();
    let st = std::process::Command::new("openssl")
        .current_dir(dir)
        .args(["cms", "-sign", "-binary", "-nodetach", "-outform", "DER"])
        .args(["-econtent_type", "1.3.6.1.4.1.311.10.1", "-md", "sha256"])
        .args(["-in", "list.der", "-signer", &format!("{signer}.pem")])
        .args(["-inkey", &format!("{signer}.key"), "-certfile"])
        .arg(certfile)
        .arg("-out")
        .arg(out)
        .output()
        .expect("openssl");
    assert!(
        st.status.success(),
        "openssl cms: {}",
        String::from_utf8_lossy(&st.stderr)
    );
    std::fs::read(out).unwrap()
}
