//! Making a signed catalog with openssl, for the unit tests, the end-to-end
//! tests and the benches (each includes this file).

use std::path::Path;

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
