//! The corpus recipe (`fpgate-corpus.toml`) and its store: `corpus fetch`
//! against a real HTTP(S) server on 127.0.0.1 started here (Python's
//! standard library; a CA and a server certificate made here with openssl),
//! serving artifacts built here; every failure keeps nothing; a run over the
//! recipe equals a run over the same files on disk, cached, sharded and
//! locked; `corpus add` pins and re-pins; the gate under review reads the
//! base's recipe; the registry clients where the registries answer.

use crate::common::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The test server: `/files/N` (with Content-Length), `/cut/N` (half the
/// body, then the connection closes), `/stall/N` (a little, then nothing
/// for a minute), `/flaky/N` (stalls the first time, then serves),
/// `/redirect/N` (302 to `/files/N`), `/gzip/N` (the file gzipped, sent with
/// `Content-Encoding: gzip`), anything else 404. Every request is appended
/// to `log`.
const SERVER: &str = r#"
import gzip, http.server, os, ssl, sys, threading, time
root, log = sys.argv[1], sys.argv[2]
seen = set()
lock = threading.Lock()
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a):
        pass
    def do_GET(self):
        with open(log, "a") as f:
            f.write(self.path + "\n")
        parts = self.path.split("/", 2)
        kind, name = (parts[1], parts[2]) if len(parts) == 3 else ("", "")
        path = os.path.join(root, name)
        if kind == "redirect":
            self.send_response(302)
            self.send_header("Location", "/files/" + name)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if not name or not os.path.isfile(path):
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        data = open(path, "rb").read()
        if kind == "flaky":
            with lock:
                first = name not in seen
                seen.add(name)
            kind = "stall" if first else "files"
        if kind == "gzip":
            data = gzip.compress(data, mtime=0)
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        if kind == "gzip":
            self.send_header("Content-Encoding", "gzip")
        self.end_headers()
        if kind == "files" or kind == "gzip":
            self.wfile.write(data)
        elif kind == "cut":
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
        elif kind == "stall":
            self.wfile.write(data[:1000])
            self.wfile.flush()
            time.sleep(60)
srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
srv.daemon_threads = True
if len(sys.argv) > 4:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(sys.argv[3], sys.argv[4])
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print(srv.server_address[1], flush=True)
srv.serve_forever()
"#;

/// A running test server, stopped on drop.
struct Server {
    child: Child,
    base: String,
    log: PathBuf,
}

impl Server {
    /// Serve `root`; with `tls` (certificate, key), over HTTPS.
    fn start(dir: &Path, root: &Path, tls: Option<(&Path, &Path)>) -> Server {
        let script = dir.join("server.py");
        std::fs::write(&script, SERVER).unwrap();
        let log = dir.join(format!("requests-{}.log", tls.is_some()));
        let mut cmd = Command::new("python3");
        cmd.arg(&script).arg(root).arg(&log);
        if let Some((c, k)) = tls {
            cmd.arg(c).arg(k);
        }
        let mut child = cmd.stdout(Stdio::piped()).spawn().expect("python3 runs");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port: u16 = line.trim().parse().expect("the server says its port");
        let scheme = if tls.is_some() { "https" } else { "http" };
        Server {
            child,
            base: format!("{scheme}://127.0.0.1:{port}"),
            log,
        }
    }

    fn requests(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sha256(data: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut c = Command::new("python3")
        .args([
            "-c",
            "import gzip,sys; sys.stdout.buffer.write(gzip.compress(sys.stdin.buffer.read(), mtime=0))",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(c.stdin.as_mut().unwrap(), data).unwrap();
    drop(c.stdin.take());
    c.wait_with_output().unwrap().stdout
}

/// A zip of `files` (python's zipfile), as bytes.
fn zip(dir: &Path, files: &[(&str, &Path)]) -> Vec<u8> {
    let out = dir.join("made.zip");
    let mut args = vec![
        "-c".to_string(),
        "import sys, zipfile\nz = zipfile.ZipFile(sys.argv[1], 'w', zipfile.ZIP_DEFLATED)\nfor i in range(2, len(sys.argv), 2): z.write(sys.argv[i + 1], sys.argv[i])\nz.close()".to_string(),
        out.display().to_string(),
    ];
    for (name, path) in files {
        args.push(name.to_string());
        args.push(path.display().to_string());
    }
    assert!(Command::new("python3")
        .args(&args)
        .status()
        .unwrap()
        .success());
    let bytes = std::fs::read(&out).unwrap();
    std::fs::remove_file(out).unwrap();
    bytes
}

/// A CA and a certificate for 127.0.0.1 it signed: (ca.pem, cert, key).
fn certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let sh = |args: &[&str]| {
        let out = Command::new("openssl")
            .current_dir(dir)
            .args(args)
            .output()
            .expect("openssl runs");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    sh(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=fpgate test CA",
    ]);
    sh(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "srv.key",
        "-out",
        "srv.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\nkeyUsage=digitalSignature,keyEncipherment\n",
    )
    .unwrap();
    sh(&[
        "x509",
        "-req",
        "-in",
        "srv.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "srv.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
    (dir.join("ca.pem"), dir.join("srv.pem"), dir.join("srv.key"))
}

fn artifact(name: Option<&str>, url: &str, pin: &str, extra: &str) -> String {
    let name = name.map(|n| format!("name = {n:?}\n")).unwrap_or_default();
    format!("[[artifact]]\n{name}url = {url:?}\nsha256 = {pin:?}\n{extra}\n")
}

fn store_has(store: &Path, pin: &str) -> bool {
    store.join("sha256").join(pin).exists()
}

fn temp_is_empty(store: &Path) -> bool {
    std::fs::read_dir(store.join("tmp"))
        .map(|mut d| d.next().is_none())
        .unwrap_or(true)
}

/// (rule, sha256) -> how many corpus paths, over every class of a report.
fn rule_contents(report: &Value) -> BTreeMap<(String, String), usize> {
    let mut out = BTreeMap::new();
    for class in ["new", "persisting", "fixed", "excepted"] {
        for f in report["false_positives"][class]
            .as_array()
            .into_iter()
            .flatten()
        {
            let n = f["paths"].as_array().map_or(1, Vec::len);
            *out.entry((
                f["rule"]["identifier"].as_str().unwrap().to_string(),
                f["sha256"].as_str().unwrap().to_string(),
            ))
            .or_insert(0) += n;
        }
    }
    out
}

fn paths_of(report: &Value) -> Vec<String> {
    let mut out: Vec<String> = pairs(report, "new").into_iter().map(|(_, p)| p).collect();
    out.sort();
    out
}

/// The project: the example rules, a served directory with a real
/// updater (the Shh/Updater-B example flags it) and a zip holding it and
/// a second real binary.
struct Setup {
    p: Project,
    setup_exe: Vec<u8>,
    zip: Vec<u8>,
}

fn setup() -> Setup {
    let p = Project::new();
    copy_dir(&root().join("rules"), &p.join("rules"));
    let squirrel = root().join("corpus/npm/electron-winstaller-5.4.4");
    let setup_exe = std::fs::read(squirrel.join("Setup.exe")).unwrap();
    let zip = zip(
        p.path(),
        &[
            ("bin/Setup.exe", &squirrel.join("Setup.exe")),
            ("bin/rcedit.exe", &squirrel.join("rcedit.exe")),
        ],
    );
    p.file_ref("served/Setup.exe", &setup_exe);
    p.file_ref("served/pkg.zip", &zip);
    p.file_ref("served/data.bin", b"plain data, served gzipped");
    Setup { p, setup_exe, zip }
}

#[test]
fn fetch_over_https_verifies_and_a_recipe_run_equals_a_run_over_the_files() {
    let Setup { p, setup_exe, zip } = setup();
    let (ca, cert, key) = certificates(p.path());
    let srv = Server::start(p.path(), &p.join("served"), Some((&cert, &key)));
    let gz = gzip(b"plain data, served gzipped");
    let recipe = [
        artifact(
            Some("vendor/Setup.exe"),
            &format!("{}/files/Setup.exe", srv.base),
            &sha256(&setup_exe),
            "tier = \"critical\"\nlicense = \"MIT\"",
        ),
        artifact(
            None,
            &format!("{}/redirect/pkg.zip", srv.base),
            &sha256(&zip),
            "",
        ),
        // Served with Content-Encoding: gzip: the pin is of the bytes
        // served, which are never decoded on the way.
        artifact(
            Some("data.bin.gz"),
            &format!("{}/gzip/data.bin", srv.base),
            &sha256(&gz),
            "",
        ),
    ]
    .concat();
    p.file_ref("fpgate-corpus.toml", &recipe);
    let store = p.join("store");
    let fetch = |extra: &[&str]| {
        let mut c = p.cmd(&["corpus", "fetch", "--no-config", "--store", "store"]);
        c.args(extra).env("SSL_CERT_FILE", &ca);
        run(&mut c)
    };
    let r = fetch(&[]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout
            .contains("3 artifact(s) in fpgate-corpus.toml: 3 downloaded"),
        "{}",
        r.stdout
    );
    for pin in [sha256(&setup_exe), sha256(&zip), sha256(&gz)] {
        assert!(store_has(&store, &pin));
    }
    assert!(temp_is_empty(&store));
    let served = srv.requests().len();
    // A second fetch downloads nothing.
    let r = fetch(&[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout
            .contains(": 0 downloaded (0 bytes), 3 already in the store"),
        "{}",
        r.stdout
    );
    assert_eq!(srv.requests().len(), served, "nothing was requested");
    // An untrusted certificate is refused, naming the entry.
    let r = run(p
        .cmd(&["corpus", "fetch", "--no-config", "--store", "other-store"])
        .env(
            "SSL_CERT_FILE",
            p.join("srv.pem").with_file_name("nonexistent.pem"),
        ));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("fpgate-corpus.toml:1: vendor/Setup.exe"),
        "{}",
        r.stderr
    );
    assert!(!p
        .join("other-store/sha256")
        .join(sha256(&setup_exe))
        .exists());

    // The recipe as the corpus equals the same files on disk (named as
    // the recipe names them), with members read in place.
    std::fs::create_dir_all(p.join("disk/vendor")).unwrap();
    std::fs::write(p.join("disk/vendor/Setup.exe"), &setup_exe).unwrap();
    std::fs::write(p.join("disk/pkg.zip"), &zip).unwrap();
    std::fs::write(p.join("disk/data.bin.gz"), &gz).unwrap();
    let scan = |args: &[&str]| {
        let mut c = p.cmd(&[
            "scan",
            "--no-config",
            "--rules",
            "rules/candidate",
            "--format",
            "json",
            "--allow-incomplete",
        ]);
        c.args(args);
        let r = run(&mut c);
        assert!(r.code == 0 || r.code == 1, "{args:?}: {}", r.stderr);
        r.json()
    };
    let from_recipe = scan(&[
        "--recipe",
        "fpgate-corpus.toml",
        "--store",
        "store",
        "--no-cache",
    ]);
    let from_disk = scan(&["--corpus", "disk", "--no-cache"]);
    assert_eq!(rule_contents(&from_recipe), rule_contents(&from_disk));
    assert!(
        !rule_contents(&from_recipe).is_empty(),
        "the example rule flags the updater"
    );
    let disk_paths: Vec<String> = paths_of(&from_disk)
        .into_iter()
        .map(|p| p.trim_start_matches("disk/").to_string())
        .collect();
    assert_eq!(paths_of(&from_recipe), disk_paths);
    assert!(
        paths_of(&from_recipe).contains(&"pkg.zip!bin/Setup.exe".to_string())
            && paths_of(&from_recipe).contains(&"vendor/Setup.exe".to_string()),
        "{:?}",
        paths_of(&from_recipe)
    );
    assert_eq!(from_recipe["corpus"]["files"], from_disk["corpus"]["files"]);
    assert_eq!(from_recipe["corpus"]["recipe"]["artifacts"], 3);
    // The artifact's tier holds for it and its members (Setup.exe carries
    // Update.exe); the disk run has none.
    assert_eq!(from_recipe["corpus"]["critical_files"], 2);
    assert_eq!(from_disk["corpus"]["critical_files"], 0);
    let critical: Vec<&Value> = from_recipe["false_positives"]["new"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["tier"] == "critical")
        .collect();
    assert_eq!(critical.len(), 1, "{from_recipe:#}");
    // A member's components start with the artifact's name, not the store.
    let comps = serde_json::to_string(&from_recipe["false_positives"]).unwrap();
    assert!(!comps.contains("store/sha256"), "{comps}");

    // Cached (cold, then warm) == --no-cache; shards + merge == one run.
    let cache = p.join("cache");
    let cache = cache.to_str().unwrap();
    let cold = scan(&[
        "--recipe",
        "fpgate-corpus.toml",
        "--store",
        "store",
        "--cache",
        cache,
    ]);
    let warm = scan(&[
        "--recipe",
        "fpgate-corpus.toml",
        "--store",
        "store",
        "--cache",
        cache,
    ]);
    for r in [&cold, &warm] {
        assert_eq!(r["false_positives"], from_recipe["false_positives"]);
        assert_eq!(r["corpus"]["files"], from_recipe["corpus"]["files"]);
    }
    let mut parts = Vec::new();
    for k in 1..=2 {
        let out = p.join(&format!("part{k}.json"));
        let shard = format!("{k}/2");
        let r = p.run(&[
            "scan",
            "--no-config",
            "--rules",
            "rules/candidate",
            "--recipe",
            "fpgate-corpus.toml",
            "--store",
            "store",
            "--no-cache",
            "--shard",
            shard.as_str(),
            "-o",
            out.to_str().unwrap(),
        ]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        parts.push(out.display().to_string());
    }
    let mut merge = p.cmd(&["merge", "--format", "json", "--no-history"]);
    merge.args(&parts);
    let merged = run(&mut merge);
    assert_eq!(merged.code, 1, "{}", merged.stderr);
    let merged = merged.json();
    assert_eq!(merged["false_positives"], from_recipe["false_positives"]);
    assert_eq!(merged["corpus"]["recipe"], from_recipe["corpus"]["recipe"]);

    // The lock: the recipe's artifacts and their members by name.
    let r = p.run(&[
        "corpus",
        "index",
        "--no-config",
        "--recipe",
        "fpgate-corpus.toml",
        "--store",
        "store",
        "--output",
        "corpus.lock",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lock: Value =
        serde_json::from_str(&std::fs::read_to_string(p.join("corpus.lock")).unwrap()).unwrap();
    let locked: Vec<&str> = lock["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert!(
        locked.contains(&"vendor/Setup.exe") && locked.contains(&"pkg.zip!bin/rcedit.exe"),
        "{locked:?}"
    );
    let r = p.run(&[
        "gate",
        "--no-config",
        "--candidate",
        "rules/candidate",
        "--baseline",
        "rules/released",
        "--recipe",
        "fpgate-corpus.toml",
        "--store",
        "store",
        "--lock",
        "corpus.lock",
        "--no-cache",
        "--format",
        "json",
    ]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_eq!(r.json()["corpus"]["lock"]["verified"], locked.len());
}

#[test]
fn a_failed_download_keeps_nothing_and_a_damaged_store_is_never_used() {
    let Setup { p, setup_exe, zip } = setup();
    let srv = Server::start(p.path(), &p.join("served"), None);
    let store = p.join("store");
    let fetch_one = |url: &str, pin: &str, extra: &[&str]| {
        p.file_ref("r.toml", artifact(Some("x.bin"), url, pin, ""));
        let mut c = p.cmd(&[
            "corpus",
            "fetch",
            "--no-config",
            "--recipe",
            "r.toml",
            "--store",
            "store",
        ]);
        c.args(extra);
        run(&mut c)
    };
    let exe_pin = sha256(&setup_exe);
    for (url, pin, expect) in [
        // A wrong pin: the download is discarded.
        (
            format!("{}/files/Setup.exe", srv.base),
            sha256(b"something else"),
            "sha256 mismatch",
        ),
        (
            format!("{}/files/missing.exe", srv.base),
            exe_pin.clone(),
            "HTTP status 404",
        ),
        (
            format!("{}/cut/Setup.exe", srv.base),
            exe_pin.clone(),
            "r.toml:1: x.bin",
        ),
        (
            format!("{}/stall/Setup.exe", srv.base),
            exe_pin.clone(),
            "r.toml:1: x.bin",
        ),
        // Served gzipped, pinned as the file: not decoded, so not it.
        (
            format!("{}/gzip/Setup.exe", srv.base),
            exe_pin.clone(),
            "sha256 mismatch",
        ),
    ] {
        let started = std::time::Instant::now();
        let r = fetch_one(&url, &pin, &["--timeout", "2"]);
        assert_eq!(r.code, 2, "{url}: {}", r.stderr);
        assert!(r.stderr.contains(expect), "{url}: {}", r.stderr);
        assert!(
            started.elapsed().as_secs() < 30,
            "{url}: the stall timed out"
        );
        assert!(
            !store_has(&store, &pin) && !store_has(&store, &exe_pin),
            "{url}"
        );
        assert!(temp_is_empty(&store), "{url}: nothing partial is left");
    }
    // A hostile recipe naming a credential outside the repository: it is
    // read only to be hashed, refused, and never printed or kept.
    let secret_dir = tempfile::tempdir().unwrap();
    let secret = secret_dir.path().join("token");
    std::fs::write(&secret, "ghp_SECRETTOKEN0123456789").unwrap();
    let r = fetch_one(&format!("file://{}", secret.display()), &exe_pin, &[]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("sha256 mismatch"), "{}", r.stderr);
    assert!(!r.stderr.contains("SECRETTOKEN") && !r.stdout.contains("SECRETTOKEN"));
    assert!(temp_is_empty(&store));
    // --offline: from the store only.
    let url = format!("{}/files/Setup.exe", srv.base);
    let r = fetch_one(&url, &exe_pin, &["--offline"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("--offline"), "{}", r.stderr);
    // A run over a recipe whose artifact the store lacks: exit 2, naming it.
    let scan = || {
        p.run(&[
            "scan",
            "--no-config",
            "--rules",
            "rules/candidate",
            "--recipe",
            "r.toml",
            "--store",
            "store",
            "--no-cache",
        ])
    };
    let r = scan();
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("r.toml:1: x.bin") && r.stderr.contains("corpus fetch"),
        "{}",
        r.stderr
    );
    let r = fetch_one(&url, &exe_pin, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = fetch_one(&url, &exe_pin, &["--offline"]);
    assert_eq!(r.code, 0, "with the artifact in the store: {}", r.stderr);
    assert_eq!(scan().code, 1);

    // Damaged in place: the run refuses it; a fetch replaces it.
    let object = store.join("sha256").join(&exe_pin);
    std::fs::set_permissions(&object, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let mut damaged = setup_exe.clone();
    damaged[1000] ^= 0xff;
    std::fs::write(&object, &damaged).unwrap();
    let r = scan();
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("does not match its name"), "{}", r.stderr);
    let r = fetch_one(&url, &exe_pin, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("replaced   x.bin"), "{}", r.stdout);
    assert_eq!(std::fs::read(&object).unwrap(), setup_exe);
    assert_eq!(scan().code, 1);

    // kill -9 in the middle of a download, then fetch again: the part
    // file is never used, and the next fetch completes.
    let flaky = format!("{}/flaky/pkg.zip", srv.base);
    let zip_pin = sha256(&zip);
    p.file_ref("r.toml", artifact(Some("pkg.zip"), &flaky, &zip_pin, ""));
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("fpgate"))
        .current_dir(p.path())
        .args([
            "corpus",
            "fetch",
            "--no-config",
            "--recipe",
            "r.toml",
            "--store",
            "store",
            "-q",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while temp_is_empty(&store) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(!temp_is_empty(&store), "the download started");
    // SAFETY: killing the child this test spawned.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    let _ = child.wait();
    assert!(!store_has(&store, &zip_pin));
    let r = p.run(&[
        "scan",
        "--no-config",
        "--rules",
        "rules/candidate",
        "--recipe",
        "r.toml",
        "--store",
        "store",
        "--no-cache",
    ]);
    assert_eq!(
        r.code, 2,
        "the interrupted download is not in the store: {}",
        r.stderr
    );
    let r = run(&mut p.cmd(&[
        "corpus",
        "fetch",
        "--no-config",
        "--recipe",
        "r.toml",
        "--store",
        "store",
    ]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(store_has(&store, &zip_pin) && temp_is_empty(&store));
    // --prune: the updater's content is no longer named.
    let r = run(&mut p.cmd(&[
        "corpus",
        "fetch",
        "--no-config",
        "--recipe",
        "r.toml",
        "--store",
        "store",
        "--prune",
    ]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("pruned 1 content(s)"), "{}", r.stdout);
    assert!(!store_has(&store, &exe_pin) && store_has(&store, &zip_pin));
}

#[test]
fn corpus_add_pins_on_first_use_and_replace_re_pins() {
    let Setup { p, setup_exe, .. } = setup();
    let served = p.join("served/Setup.exe");
    let url = format!("file://{}", served.display());
    let add = |extra: &[&str]| {
        let mut c = p.cmd(&[
            "corpus",
            "add",
            "--no-config",
            "--store",
            "store",
            "--recipe",
            "r.toml",
        ]);
        c.args(extra);
        run(&mut c)
    };
    let r = add(&[
        &url,
        "--name",
        "vendor/Setup.exe",
        "--tier",
        "critical",
        "--license",
        "MIT",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("trust on first use"), "{}", r.stderr);
    let text = std::fs::read_to_string(p.join("r.toml")).unwrap();
    assert!(
        text.contains(&format!("sha256 = \"{}\"", sha256(&setup_exe))),
        "{text}"
    );
    assert!(text.contains("tier = \"critical\"") && text.contains("name = \"vendor/Setup.exe\""));
    // The same name again: refused without --replace.
    let r = add(&[&url, "--name", "vendor/Setup.exe"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("--replace"), "{}", r.stderr);
    // The source changed: --replace re-pins, keeping the other entries.
    let r = add(&[&format!("file://{}", p.join("served/data.bin").display())]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let mut changed = setup_exe.clone();
    changed.extend_from_slice(b"appended");
    std::fs::write(&served, &changed).unwrap();
    let r = add(&[&url, "--name", "vendor/Setup.exe", "--replace"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout
            .contains(&format!("re-pinned (was {})", sha256(&setup_exe))),
        "{}",
        r.stdout
    );
    let text = std::fs::read_to_string(p.join("r.toml")).unwrap();
    assert_eq!(text.matches("[[artifact]]").count(), 2, "{text}");
    assert!(
        text.contains(&sha256(&changed)) && !text.contains(&sha256(&setup_exe)),
        "{text}"
    );
    let r = run(&mut p.cmd(&[
        "corpus",
        "fetch",
        "--no-config",
        "--recipe",
        "r.toml",
        "--store",
        "store",
        "--offline",
    ]));
    assert_eq!(r.code, 0, "what add fetched is in the store: {}", r.stderr);
    // Bad sources are refused before anything runs.
    for bad in [
        "pypi:numpy",
        "npm:left-pad@latest",
        "deb:-oDir=/tmp",
        "ftp://x/y",
        "/etc/passwd",
    ] {
        let r = add(&[bad]);
        assert_eq!(r.code, 2, "{bad}: {}", r.stderr);
    }
    // Unknown keys and bad values name the line.
    for (text, expect) in [
        (
            "[[artifact]]\nurl = \"https://x/a\"\nsha256 = \"00\"\n",
            "not 64 hex",
        ),
        ("[[artifact]]\nurl = \"https://x/a\"\nsha = \"00\"\n", "sha"),
    ] {
        p.file_ref("bad.toml", text);
        let r = run(&mut p.cmd(&[
            "corpus",
            "fetch",
            "--no-config",
            "--recipe",
            "bad.toml",
            "--store",
            "store",
        ]));
        assert_eq!(r.code, 2);
        assert!(
            r.stderr.contains("bad.toml:3:") && r.stderr.contains(expect),
            "{}",
            r.stderr
        );
    }
}

#[test]
fn the_gate_under_review_reads_the_bases_recipe() {
    let Setup { p, setup_exe, .. } = setup();
    let url = format!("file://{}", p.join("served/Setup.exe").display());
    let data_url = format!("file://{}", p.join("served/data.bin").display());
    let data_pin = sha256(b"plain data, served gzipped");
    p.file_ref(
        "fpgate.toml",
        "[rules]\ncandidate = [\"rules/released\"]\n\n[corpus]\nrecipe = \"fpgate-corpus.toml\"\nstore = \"store\"\n",
    );
    p.file_ref(
        "fpgate-corpus.toml",
        [
            artifact(
                Some("vendor/Setup.exe"),
                &url,
                &sha256(&setup_exe),
                "tier = \"critical\"",
            ),
            artifact(Some("data.bin"), &data_url, &data_pin, ""),
        ]
        .concat(),
    );
    let r = p.run(&["corpus", "fetch", "-q"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    p.file_ref(".gitignore", "store/\n");
    p.git(&["init", "-q"]);
    p.git(&["add", "-A"]);
    p.git(&["commit", "-qm", "base"]);
    // The change adds the overbroad rule and drops the updater it flags
    // from the recipe.
    std::fs::copy(
        root().join("rules/candidate/updaters.yar"),
        p.join("rules/released/updaters.yar"),
    )
    .unwrap();
    p.file_ref(
        "fpgate-corpus.toml",
        artifact(Some("data.bin"), &data_url, &data_pin, ""),
    );
    let gate = |extra: &[&str]| {
        let mut c = p.cmd(&[
            "gate",
            "--baseline-ref",
            "HEAD",
            "--no-cache",
            "--format",
            "json",
            "--no-history",
        ]);
        c.args(extra);
        run(&mut c)
    };
    // The base's recipe, fetched into a fresh store, is what the gate needs.
    std::fs::rename(p.join("store"), p.join("store-before")).unwrap();
    let r = p.run(&["corpus", "fetch", "-q", "--baseline-ref", "HEAD"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout
            .contains("2 artifact(s) in HEAD:fpgate-corpus.toml: 2 downloaded"),
        "{}",
        r.stdout
    );
    let r = gate(&[]);
    assert_eq!(
        r.code, 1,
        "the base's recipe still holds the updater: {}",
        r.stderr
    );
    let j = r.json();
    assert_eq!(j["corpus"]["recipe"]["file"], "HEAD:fpgate-corpus.toml");
    // The policy diff names the dropped artifact, at its line in the base.
    let dropped = j["policy_changes"]["settings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["key"] == "recipe.artifact \"vendor/Setup.exe\"")
        .unwrap_or_else(|| panic!("{:#}", j["policy_changes"]));
    assert_eq!(dropped["direction"], "relaxes");
    assert_eq!(dropped["file"], "HEAD:fpgate-corpus.toml");
    assert_eq!(dropped["line"], 1);
    assert!(
        paths_of(&j).contains(&"vendor/Setup.exe".to_string()),
        "{j:#}"
    );
    let r = gate(&["--policy-from-worktree"]);
    assert_eq!(
        r.code, 0,
        "the change's own recipe leaves it out: {}",
        r.stderr
    );
    // Dropping the recipe from the config is a relaxing change.
    p.file_ref(
        "fpgate.toml",
        "[rules]\ncandidate = [\"rules/released\"]\n\n[corpus]\npaths = [\"served\"]\n",
    );
    let r = gate(&[]);
    let changes = serde_json::to_string(&r.json()["policy_changes"]).unwrap();
    assert!(
        changes.contains("corpus.recipe") && changes.contains("relaxes"),
        "{changes}"
    );
}

/// The registry clients, where their registries answer (skipped with a
/// note where they do not: the suite passes offline). Each source is added
/// (trust on first use), then fetched again into an empty store, which
/// verifies it against the pin `add` wrote.
#[test]
fn registry_sources_through_their_own_clients() {
    let p = Project::new();
    let probe = |cmd: &str, args: &[&str]| -> bool {
        let d = tempfile::tempdir().unwrap();
        Command::new(cmd)
            .current_dir(d.path())
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let d = p.path().display().to_string();
    let mut sources = Vec::new();
    if probe(
        "python3",
        &[
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "-d",
            ".",
            "six==1.16.0",
        ],
    ) {
        sources.push("pypi:six-1.16.0-py2.py3-none-any.whl".to_string());
    } else {
        eprintln!("note: PyPI unreachable (or no pip): pypi source not tested");
    }
    if probe(
        "npm",
        &["pack", "--ignore-scripts", "--silent", "left-pad@1.3.0"],
    ) {
        sources.push("npm:left-pad@1.3.0".to_string());
    } else {
        eprintln!("note: the npm registry unreachable (or no npm): npm source not tested");
    }
    let jq = Command::new("apt-cache")
        .args(["policy", "jq"])
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .find_map(|l| l.trim().strip_prefix("Candidate: ").map(str::to_string))
        })
        .filter(|v| v != "(none)");
    match jq {
        Some(v) if probe("apt-get", &["download", "-q", &format!("jq={v}")]) => {
            sources.push(format!("deb:jq={v}"))
        }
        _ => eprintln!("note: no Debian archive reachable (or no apt-get): deb source not tested"),
    }
    let _ = d;
    for s in &sources {
        let r = p.run(&[
            "corpus",
            "add",
            "--no-config",
            "--recipe",
            "r.toml",
            "--store",
            "first",
            s,
        ]);
        assert_eq!(r.code, 0, "{s}: {}", r.stderr);
    }
    if !sources.is_empty() {
        let r = p.run(&[
            "corpus",
            "fetch",
            "--no-config",
            "--recipe",
            "r.toml",
            "--store",
            "second",
        ]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert!(
            r.stdout
                .contains(&format!("{n} downloaded", n = sources.len())),
            "{}",
            r.stdout
        );
    }
    // A Debian version the archive does not have: what it offers is named.
    if sources.iter().any(|s| s.starts_with("deb:")) {
        p.file_ref(
            "old.toml",
            format!(
                "[[artifact]]\ndeb = \"jq=0.0.1-gone\"\nsha256 = \"{}\"\n",
                "0".repeat(64)
            ),
        );
        let r = p.run(&[
            "corpus",
            "fetch",
            "--no-config",
            "--recipe",
            "old.toml",
            "--store",
            "second",
        ]);
        assert_eq!(r.code, 2, "{}", r.stderr);
        assert!(r.stderr.contains("the archive offers jq"), "{}", r.stderr);
    }
}

/// The repository's own recipe parses (fpgate reads it: `--offline` over an
/// empty store names every artifact), and every artifact carries its
/// licence and a registry source or URL.
#[test]
fn the_starter_recipe_parses_and_every_artifact_has_its_licence() {
    let text = std::fs::read_to_string(root().join("fpgate-corpus.toml")).unwrap();
    let v: toml::Value = toml::from_str(&text).unwrap();
    let arts = v["artifact"].as_array().unwrap();
    assert!(arts.len() >= 30, "{}", arts.len());
    for a in arts {
        assert!(
            a.get("license")
                .and_then(|l| l.as_str())
                .is_some_and(|l| !l.is_empty()),
            "{a:?}"
        );
    }
    let critical = arts
        .iter()
        .filter(|a| a.get("tier").and_then(|t| t.as_str()) == Some("critical"))
        .count();
    assert!(
        critical >= 5,
        "security products, system files and installers are critical"
    );
    let d = tempfile::tempdir().unwrap();
    let r = run(fpgate()
        .args([
            "corpus",
            "fetch",
            "--no-config",
            "--offline",
            "--recipe",
            "fpgate-corpus.toml",
            "--store",
        ])
        .arg(d.path()));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!(
            "{n} of {n} artifact(s) of fpgate-corpus.toml could not be fetched",
            n = arts.len()
        )),
        "{}",
        r.stderr
    );
}
