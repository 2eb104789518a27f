//! Countersignatures: RFC 3161 tokens and PKCS#9 (legacy Authenticode
//! time stamping, from a server on 127.0.0.1).

use super::*;

use std::process::Command;

#[test]
fn a_countersignature_by_a_pinned_authority_vouches_for_an_expired_signer() {
    // A signer valid for a day only.
    let p = vendor_leaf_days("1");
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
