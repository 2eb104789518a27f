//! `[[tiers.critical]]`: files whose Authenticode signature verifies to a
//! pinned anchor are critical (their persisting false positives block),
//! loose and inside archives, cached or not, sharded or not; a forged
//! re-signature and an unsigned copy are not. Signatures are made here
//! with openssl and osslsigncode.

use crate::common::*;
use serde_json::Value;
use std::path::Path;
use std::process::Command;

fn sh(dir: &Path, args: &[&str]) {
    let out = Command::new(args[0])
        .current_dir(dir)
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", args[0]));
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA `name` (self-signed unless `issuer`), or a code-signing leaf.
fn cert(dir: &Path, name: &str, cn: &str, issuer: Option<(&str, &str)>, ca: bool, serial: &str) {
    let ext = if ca {
        "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign\n"
    } else {
        "basicConstraints=critical,CA:FALSE\nextendedKeyUsage=codeSigning\n"
    };
    cert_ext(dir, name, cn, issuer, ext, "3650", serial)
}

/// A certificate `name` with the extensions `ext`, valid for `days`.
fn cert_ext(
    dir: &Path,
    name: &str,
    cn: &str,
    issuer: Option<(&str, &str)>,
    ext: &str,
    days: &str,
    serial: &str,
) {
    std::fs::write(dir.join(format!("{name}.ext")), ext).unwrap();
    match issuer {
        None => crate::support::root(dir, name, cn),
        Some(by) => crate::support::issue(
            dir,
            name,
            name,
            cn,
            by,
            &format!("{name}.ext"),
            days,
            serial,
            &[],
        ),
    }
}

fn sign(dir: &Path, input: &Path, out: &Path, chain: &[&str], key: &str) {
    let text: String = chain
        .iter()
        .map(|c| std::fs::read_to_string(dir.join(format!("{c}.pem"))).unwrap())
        .collect();
    std::fs::write(dir.join("chain.pem"), text).unwrap();
    sh(
        dir,
        &[
            "osslsigncode",
            "sign",
            "-certs",
            "chain.pem",
            "-key",
            &format!("{key}.key"),
            "-h",
            "sha256",
            "-in",
            input.to_str().unwrap(),
            "-out",
            out.to_str().unwrap(),
        ],
    );
}

/// (path, tier, signed_by) of every new or persisting finding.
fn tiers(j: &Value) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for class in ["new", "persisting"] {
        for f in j["false_positives"][class].as_array().unwrap() {
            for p in f["paths"].as_array().unwrap() {
                out.push((
                    p.as_str().unwrap().to_string(),
                    f["tier"].as_str().unwrap().to_string(),
                    f["signed_by"]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .map(|x| x.as_str().unwrap().to_string())
                                .collect::<Vec<_>>()
                                .join("; ")
                        })
                        .unwrap_or_default(),
                ));
            }
        }
    }
    out.sort();
    out
}

/// The vendor's PKI in `d/pki`: root -> intermediate -> code-signing leaf.
fn vendor_pki(d: &Path) -> std::path::PathBuf {
    let pki = d.join("pki");
    std::fs::create_dir_all(&pki).unwrap();
    cert(&pki, "root", "Vendor Root CA", None, true, "1");
    cert(
        &pki,
        "inter",
        "Vendor Code Signing CA",
        Some(("root", "root")),
        true,
        "100",
    );
    cert(
        &pki,
        "leaf",
        "Vendor Corp",
        Some(("inter", "inter")),
        false,
        "4242",
    );
    pki
}

/// `gate` with the baseline the candidate (every finding persists), JSON.
fn gate_json(p: &Project, extra: &[&str]) -> Run {
    let mut c = p.cmd(&[
        "gate",
        "--baseline",
        "rules",
        "--format",
        "json",
        "--no-history",
        "--today",
        "2026-12-06",
    ]);
    c.args(extra);
    run(&mut c)
}

/// Shard `k` of `n` of `gate_json`'s run, its partial report in
/// `partK.json`.
fn shard_gate(p: &Project, k: u32, n: u32) -> std::path::PathBuf {
    let out = p.path().join(format!("part{k}.json"));
    let shard = format!("{k}/{n}");
    let r = p.run(&[
        "gate",
        "--baseline",
        "rules",
        "--no-cache",
        "--today",
        "2026-12-06",
        "--shard",
        shard.as_str(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    out
}

#[test]
fn files_signed_to_a_pinned_anchor_are_critical_and_forgeries_are_not() {
    let p = Project::new();
    let d = p.path();
    let pki = vendor_pki(d);
    // The attacker: a same-name intermediate of their own, and a leaf with
    // the genuine leaf's name and serial under it.
    cert(&pki, "fakeroot", "Vendor Root CA", None, true, "1");
    cert(
        &pki,
        "fakeinter",
        "Vendor Code Signing CA",
        Some(("fakeroot", "fakeroot")),
        true,
        "100",
    );
    cert(
        &pki,
        "evil",
        "Vendor Corp",
        Some(("fakeinter", "fakeinter")),
        false,
        "4242",
    );

    let updater = root().join("corpus/npm/electron-winstaller-5.4.4/Squirrel.exe");
    std::fs::create_dir_all(d.join("corpus/signed")).unwrap();
    std::fs::create_dir_all(d.join("corpus/forged")).unwrap();
    std::fs::create_dir_all(d.join("corpus/unsigned")).unwrap();
    std::fs::create_dir_all(d.join("certs")).unwrap();
    sign(
        &pki,
        &updater,
        &d.join("corpus/signed/Squirrel.exe"),
        &["leaf", "inter"],
        "leaf",
    );
    sign(
        &pki,
        &updater,
        &d.join("corpus/forged/Squirrel.exe"),
        &["evil", "inter", "root"],
        "evil",
    );
    std::fs::copy(&updater, d.join("corpus/unsigned/Squirrel.exe")).unwrap();
    std::fs::copy(pki.join("root.pem"), d.join("certs/vendor-root.pem")).unwrap();
    // The signed updater inside a zip: critical by its own signature.
    let st = Command::new("python3")
        .current_dir(d)
        .args([
            "-c",
            "import zipfile; z = zipfile.ZipFile('corpus/pkg.zip', 'w'); z.write('corpus/signed/Squirrel.exe', 'bin/Squirrel.exe'); z.close()",
        ])
        .status()
        .unwrap();
    assert!(st.success());
    copy_dir(&root().join("rules/candidate"), &d.join("rules"));
    let base_cfg = "[rules]\ncandidate = [\"rules\"]\n\n[corpus]\npaths = [\"corpus\"]\n";
    let with_rule = format!(
        "{base_cfg}\n[tiers]\ndate = \"2030-01-01\"\n\n[[tiers.critical]]\nname = \"vendor-release\"\nanchor = \"certs/vendor-root.pem\"\nsubject = \"CN=Vendor Corp\"\n"
    );
    p.file_ref("fpgate.toml", &with_rule);
    // The baseline is the candidate: every false positive persists, and
    // only a critical one blocks.
    let gate = |extra: &[&str]| gate_json(&p, extra);
    let plain = gate(&["--no-cache"]);
    assert_eq!(
        plain.code, 1,
        "critical persisting false positives block: {}",
        plain.stderr
    );
    let j = plain.json();
    let reasons = serde_json::to_string(&j["verdict"]).unwrap();
    assert!(
        reasons.contains("1 of them on files critical by a verified signature"),
        "{reasons}"
    );
    let signed = "signed by CN=Vendor Corp, chain to pinned anchor `vendor-release`".to_string();
    assert_eq!(
        tiers(&j),
        [
            (
                "corpus/forged/Squirrel.exe".into(),
                "standard".into(),
                String::new()
            ),
            (
                "corpus/pkg.zip!bin/Squirrel.exe".into(),
                "critical".into(),
                signed.clone()
            ),
            (
                "corpus/signed/Squirrel.exe".into(),
                "critical".into(),
                signed.clone()
            ),
            (
                "corpus/unsigned/Squirrel.exe".into(),
                "standard".into(),
                String::new()
            ),
        ],
        "{j:#}"
    );
    // Without the rule nothing is critical, and nothing blocks.
    p.file_ref("fpgate.toml", base_cfg);
    let r = gate(&["--no-cache"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    p.file_ref("fpgate.toml", &with_rule);

    // Cached (cold, then warm) and sharded runs agree with the plain one.
    let cache = d.join("cache");
    let cache = cache.to_str().unwrap();
    for _ in 0..2 {
        let r = gate(&["--cache", cache]);
        assert_eq!(r.code, 1, "{}", r.stderr);
        assert_eq!(r.json()["false_positives"], j["false_positives"]);
    }
    let mut parts = Vec::new();
    for k in 1..=2 {
        parts.push(shard_gate(&p, k, 2).display().to_string());
    }
    let mut merge = p.cmd(&["merge", "--format", "json", "--no-history"]);
    merge.args(&parts);
    let merged = run(&mut merge);
    assert_eq!(merged.code, 1, "{}", merged.stderr);
    assert_eq!(merged.json()["false_positives"], j["false_positives"]);

    // The human and SARIF reports say who signed it.
    let report = |format: &str| {
        p.run(&[
            "gate",
            "--baseline",
            "rules",
            "--no-history",
            "--today",
            "2026-12-06",
            "--no-cache",
            "--format",
            format,
        ])
    };
    let r = report("human");
    assert!(r.stdout.contains(&signed), "{}", r.stdout);
    let r = report("markdown");
    assert!(
        r.stdout.contains("**critical** (signed by CN=Vendor Corp"),
        "{}",
        r.stdout
    );
    let r = report("sarif");
    assert!(
        r.stdout.contains("chain to pinned anchor `vendor-release`"),
        "{}",
        r.stdout
    );

    // The lock records who signed (information), and a tier that changed
    // since (the rule dropped) is a note, not a mismatch.
    let r = p.run(&["corpus", "index", "--output", "corpus.lock"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lock: Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("corpus.lock")).unwrap()).unwrap();
    let entry = |path: &str| {
        lock["files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["path"] == path)
            .unwrap_or_else(|| panic!("{path} not locked: {lock:#}"))
            .clone()
    };
    let signed_entry = entry("signed/Squirrel.exe");
    assert_eq!(signed_entry["tier"], "critical");
    assert_eq!(
        signed_entry["signed_by"][0],
        "vendor-release: CN=Vendor Corp"
    );
    assert_eq!(entry("pkg.zip!bin/Squirrel.exe")["tier"], "critical");
    assert_eq!(entry("forged/Squirrel.exe")["tier"], "standard");
    assert!(entry("forged/Squirrel.exe").get("signed_by").is_none());
    p.file_ref("fpgate.toml", base_cfg);
    let r = gate(&["--no-cache", "--lock", "corpus.lock"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let notes = serde_json::to_string(&r.json()["corpus"]["lock"]["notes"]).unwrap();
    assert!(notes.contains("2 locked file(s) changed tier"), "{notes}");
    // An anchor the config names outside its checkout is refused (a
    // change may not make fpgate read the runner's files).
    p.file_ref(
        "fpgate.toml",
        format!("{base_cfg}\n[tiers]\ndate = \"2030-01-01\"\n[[tiers.critical]]\nname = \"x\"\nanchor = \"/etc/hostname\"\n"),
    );
    let r = gate(&["--no-cache"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("refused"), "{}", r.stderr);
    // Bad rules are refused with the key.
    p.file_ref(
        "fpgate.toml",
        format!("{base_cfg}\n[[tiers.critical]]\nname = \"x\"\nanchor_sha256 = \"00\"\n"),
    );
    let r = gate(&["--no-cache"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("tiers.date"), "{}", r.stderr);
    p.file_ref(
        "fpgate.toml",
        format!("{base_cfg}\n[tiers]\ndate = \"2030-01-01\"\n[[tiers.critical]]\nname = \"x\"\nanchor_sha256 = \"00\"\n"),
    );
    let r = gate(&["--no-cache"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("not 64 hex digits"), "{}", r.stderr);

    // Under review: a change that adds the rule tightens the gate, and the
    // policy diff says how many old findings it makes blocking.
    p.file_ref("fpgate.toml", base_cfg);
    p.file_ref(".gitignore", "cache/\npart*.json\ncorpus.lock\n");
    p.git(&["init", "-q"]);
    p.git(&["add", "-A"]);
    p.git(&["commit", "-qm", "base"]);
    p.file_ref("fpgate.toml", &with_rule);
    let r = p.run(&[
        "gate",
        "--baseline-ref",
        "HEAD",
        "--policy-from-worktree",
        "--no-cache",
        "--no-history",
        "--today",
        "2026-12-06",
        "--format",
        "json",
    ]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let pc = serde_json::to_string(&r.json()["policy_changes"]).unwrap();
    assert!(
        pc.contains("tiers.critical: 1 persisting false positive(s) block now"),
        "{pc}"
    );
}

/// A catalog: `list` signed by `signer` with the certificates of `certs`.
fn catalog(dir: &Path, out: &Path, list: &[u8], signer: &str, certs: &str) {
    crate::support::sign_catalog(dir, out, list, signer, &dir.join(format!("{certs}.pem")));
}

#[test]
fn catalogs_and_countersignatures_decide_tiers_through_the_config() {
    use fpgate::corpus::signature::{authenticode_digests, catalog_list, Member};
    let p = Project::new();
    let d = p.path();
    let pki = vendor_pki(d);
    // A signer valid for a day: expired at tiers.date, unless a pinned
    // authority stamped the signature while it was valid.
    cert_ext(
        &pki,
        "shortleaf",
        "Vendor Build",
        Some(("inter", "inter")),
        "basicConstraints=critical,CA:FALSE\nextendedKeyUsage=codeSigning\n",
        "1",
        "4343",
    );
    cert(&pki, "tsaroot", "Stamp Root CA", None, true, "2");
    cert_ext(
        &pki,
        "tsa",
        "Stamp Authority",
        Some(("tsaroot", "tsaroot")),
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=critical,timeStamping\n",
        "3650",
        "5",
    );
    // The attacker's own root under the vendor's names.
    cert(&pki, "fakeroot", "Vendor Root CA", None, true, "1");
    cert(
        &pki,
        "evil",
        "Vendor Corp",
        Some(("fakeroot", "fakeroot")),
        false,
        "4242",
    );
    let text: String = ["inter", "root"]
        .iter()
        .map(|c| std::fs::read_to_string(pki.join(format!("{c}.pem"))).unwrap())
        .collect();
    std::fs::write(pki.join("vendorchain.pem"), text).unwrap();

    let updater = root().join("corpus/npm/electron-winstaller-5.4.4/Squirrel.exe");
    let bytes = std::fs::read(&updater).unwrap();
    for dir in ["sys", "other", "stamped", "forged"] {
        std::fs::create_dir_all(d.join("corpus").join(dir)).unwrap();
    }
    // The vendor's catalog lists the unsigned updater (by its Authenticode
    // digest); a copy with bytes appended is not listed, and the
    // attacker's catalog listing it proves nothing.
    std::fs::write(d.join("corpus/sys/Squirrel.exe"), &bytes).unwrap();
    let mut changed = bytes.clone();
    changed.extend_from_slice(b"appended after the catalog was made");
    std::fs::write(d.join("corpus/other/Squirrel.exe"), &changed).unwrap();
    let [_, listed] = authenticode_digests(&bytes).unwrap();
    let [_, unlisted] = authenticode_digests(&changed).unwrap();
    catalog(
        &pki,
        &d.join("corpus/sys/vendor.cat"),
        &catalog_list(&[Member::Pe {
            sha1: false,
            digest: &listed,
        }]),
        "leaf",
        "inter",
    );
    catalog(
        &pki,
        &d.join("corpus/forged/vendor.cat"),
        &catalog_list(&[Member::Pe {
            sha1: false,
            digest: &unlisted,
        }]),
        "evil",
        "fakeroot",
    );
    // The listed updater inside a zip: vouched for by its own content.
    let st = Command::new("python3")
        .current_dir(d)
        .args([
            "-c",
            "import zipfile; z = zipfile.ZipFile('corpus/app.zip', 'w'); z.write('corpus/sys/Squirrel.exe', 'bin/Squirrel.exe'); z.close()",
        ])
        .status()
        .unwrap();
    assert!(st.success());
    // Signed by the short-lived signer, stamped by the authority now.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string();
    let chain: String = ["shortleaf", "inter"]
        .iter()
        .map(|c| std::fs::read_to_string(pki.join(format!("{c}.pem"))).unwrap())
        .collect();
    std::fs::write(pki.join("shortchain.pem"), chain).unwrap();
    sh(
        &pki,
        &[
            "osslsigncode",
            "sign",
            "-certs",
            "shortchain.pem",
            "-key",
            "shortleaf.key",
            "-h",
            "sha256",
            "-TSA-certs",
            "tsa.pem",
            "-TSA-key",
            "tsa.key",
            "-TSA-time",
            &now,
            "-in",
            d.join("corpus/other/Squirrel.exe").to_str().unwrap(),
            "-out",
            d.join("corpus/stamped/Squirrel.exe").to_str().unwrap(),
        ],
    );
    std::fs::create_dir_all(d.join("certs")).unwrap();
    std::fs::copy(pki.join("root.pem"), d.join("certs/vendor-root.pem")).unwrap();
    std::fs::copy(pki.join("tsaroot.pem"), d.join("certs/stamp-root.pem")).unwrap();
    copy_dir(&root().join("rules/candidate"), &d.join("rules"));
    let base_cfg = "[rules]\ncandidate = [\"rules\"]\n\n[corpus]\npaths = [\"corpus\"]\n\n[tiers]\ndate = \"2030-01-01\"\n\n[[tiers.critical]]\nname = \"vendor-release\"\nanchor = \"certs/vendor-root.pem\"\n";
    let with_stamps = format!(
        "{base_cfg}\n[[tiers.timestamp]]\nname = \"stamps\"\nanchor = \"certs/stamp-root.pem\"\n"
    );
    p.file_ref("fpgate.toml", &with_stamps);
    let gate = |extra: &[&str]| gate_json(&p, extra);
    let plain = gate(&["--no-cache"]);
    assert_eq!(plain.code, 1, "{}", plain.stderr);
    let j = plain.json();
    let via = "listed in catalog corpus/sys/vendor.cat, signed by CN=Vendor Corp, chain to pinned anchor `vendor-release`".to_string();
    let stamped = "signed by CN=Vendor Build, chain to pinned anchor `vendor-release`".to_string();
    assert_eq!(
        tiers(&j),
        [
            (
                "corpus/app.zip!bin/Squirrel.exe".into(),
                "critical".into(),
                via.clone()
            ),
            (
                "corpus/other/Squirrel.exe".into(),
                "standard".into(),
                String::new()
            ),
            (
                "corpus/stamped/Squirrel.exe".into(),
                "critical".into(),
                stamped.clone()
            ),
            ("corpus/sys/Squirrel.exe".into(), "critical".into(), via),
        ],
        "{j:#}"
    );
    // Without the authority pinned, the expired signer counts for nothing.
    p.file_ref("fpgate.toml", base_cfg);
    let r = gate(&["--no-cache"]);
    let t = tiers(&r.json());
    assert!(
        t.contains(&(
            "corpus/stamped/Squirrel.exe".into(),
            "standard".into(),
            String::new()
        )),
        "{t:?}"
    );
    p.file_ref("fpgate.toml", &with_stamps);

    // Cached (cold, warm) and sharded runs agree with the plain one; the
    // catalog and the files it lists are in different shards.
    let cache = d.join("cache");
    let cache = cache.to_str().unwrap();
    for _ in 0..2 {
        let r = gate(&["--cache", cache]);
        assert_eq!(r.code, 1, "{}", r.stderr);
        assert_eq!(r.json()["false_positives"], j["false_positives"]);
    }
    // A results cache warmed without tier rules answers every content
    // unread: the verdicts come from reading the entries again (files from
    // disk, the member from its zip), and agree.
    let cache2 = d.join("cache2");
    let cache2 = cache2.to_str().unwrap();
    // (The cache keeps no stamp of a file changed within 2 whole seconds
    // of the run's start, `Stamp::racy`: let them pass.)
    std::thread::sleep(std::time::Duration::from_millis(3100));
    p.file_ref(
        "fpgate.toml",
        "[rules]\ncandidate = [\"rules\"]\n\n[corpus]\npaths = [\"corpus\"]\n",
    );
    assert_eq!(gate(&["--cache", cache2]).code, 0);
    p.file_ref("fpgate.toml", &with_stamps);
    for _ in 0..2 {
        let r = gate(&["--cache", cache2]);
        assert_eq!(r.code, 1, "{}", r.stderr);
        let rj = r.json();
        assert_eq!(rj["false_positives"], j["false_positives"]);
        // The scan read nothing: the verdicts were not the workers'.
        let c = &rj["timings"]["cache"];
        assert_eq!(c["files_read_not_scanned"], 0, "{c}");
        assert_eq!(c["files_scanned_all_rules"], 0, "{c}");
        assert_eq!(c["files_scanned_changed_rules"], 0, "{c}");
    }

    // Which shard holds the catalog depends on its content (new keys each
    // time): over 2 to 5 shards, at least one split of the catalog from a
    // file it lists is all but certain.
    let mut cross = false;
    for n in [2, 3, 4, 5] {
        let mut parts = Vec::new();
        for k in 1..=n {
            let out = shard_gate(&p, k, n);
            let part: Value =
                serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
            let facts = &part["facts"]["catalogs"];
            let has_catalog = facts["catalogs"].as_object().is_some_and(|m| !m.is_empty());
            let files = serde_json::to_string(&part["facts"]["files"]).unwrap();
            cross |=
                !has_catalog && (files.contains("sys/Squirrel.exe") || files.contains("app.zip"));
            parts.push(out.display().to_string());
        }
        let mut merge = p.cmd(&["merge", "--format", "json", "--no-history"]);
        merge.args(&parts);
        let merged = run(&mut merge);
        assert_eq!(merged.code, 1, "{}", merged.stderr);
        assert_eq!(
            merged.json()["false_positives"],
            j["false_positives"],
            "{n} shards"
        );
    }
    assert!(cross, "no shard split the catalog from a file it lists");

    // The lock records the tier and the catalog it came through.
    let r = p.run(&["corpus", "index", "--output", "corpus.lock"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lock: Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("corpus.lock")).unwrap()).unwrap();
    let entry = lock["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["path"] == "sys/Squirrel.exe")
        .unwrap();
    assert_eq!(entry["tier"], "critical", "{entry}");
    assert_eq!(
        entry["signed_by"][0],
        "vendor-release: CN=Vendor Corp (catalog corpus/sys/vendor.cat)"
    );
}
