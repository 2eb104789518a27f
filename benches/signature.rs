//! What verifying a file's Authenticode signatures to a pinned anchor costs
//! (`fpgate::corpus::signature::verify`), per signed file. Run with
//! `cargo bench --features profiling --bench signature`.
//!
//! FPGATE_SIGNED_PE=FILE and FPGATE_ANCHOR_SHA256=HEX measure a real signed
//! file against the certificate it carries with that DER sha256 (e.g.
//! msvcp140.dll from the msvc-runtime wheel of fpgate-corpus.toml, pinned
//! to "Microsoft Windows Third Party Component CA 2013"); without them, a
//! PE of the bundled corpus is signed here (openssl + osslsigncode) under a
//! test root, root -> intermediate -> leaf, RSA 2048, SHA-256.

#[path = "../tests/support/openssl.rs"]
mod support;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use fpgate::corpus::signature::{catalog_list, judge, verify, Anchor, AnchorKey, Member, Rules};
use std::path::Path;

fn sh(dir: &Path, args: &[&str]) {
    support::run(dir, args[0], &args[1..])
}

/// (signed PE, anchor) made here.
fn made_here(dir: &Path) -> (Vec<u8>, Anchor) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::write(dir.join("ca.ext"), "basicConstraints=critical,CA:TRUE\n").unwrap();
    std::fs::write(dir.join("leaf.ext"), "extendedKeyUsage=codeSigning\n").unwrap();
    support::root(dir, "root", "Bench Root");
    support::issue(
        dir,
        "inter",
        "inter",
        "Bench CA",
        ("root", "root"),
        "ca.ext",
        "3650",
        "7",
        &[],
    );
    support::issue(
        dir,
        "leaf",
        "leaf",
        "Bench Vendor",
        ("inter", "inter"),
        "leaf.ext",
        "3650",
        "7",
        &[],
    );
    let chain = format!(
        "{}{}",
        std::fs::read_to_string(dir.join("leaf.pem")).unwrap(),
        std::fs::read_to_string(dir.join("inter.pem")).unwrap()
    );
    std::fs::write(dir.join("chain.pem"), chain).unwrap();
    let pe = root.join("corpus/npm/electron-winstaller-5.4.4/Squirrel.exe");
    sh(
        dir,
        &[
            "osslsigncode",
            "sign",
            "-certs",
            "chain.pem",
            "-key",
            "leaf.key",
            "-h",
            "sha256",
            "-in",
            pe.to_str().unwrap(),
            "-out",
            "signed.exe",
        ],
    );
    let anchor = Anchor::from_pem(
        "bench-root",
        &std::fs::read_to_string(dir.join("root.pem")).unwrap(),
        None,
    )
    .unwrap();
    (std::fs::read(dir.join("signed.exe")).unwrap(), anchor)
}

fn bench_signature(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 60;
    let (data, anchor, what) = match (
        std::env::var_os("FPGATE_SIGNED_PE"),
        std::env::var("FPGATE_ANCHOR_SHA256").ok(),
    ) {
        (Some(pe), Some(pin)) => {
            let pin =
                fpgate::util::hex::parse_sha256(&pin).expect("FPGATE_ANCHOR_SHA256: 64 hex digits");
            let anchor = Anchor {
                name: "pinned".into(),
                key: AnchorKey::Pinned(pin),
                subject: None,
            };
            (std::fs::read(&pe).unwrap(), anchor, "given")
        }
        _ => {
            let (d, a) = made_here(dir.path());
            (d, a, "made_here")
        }
    };
    let v = verify(&data, std::slice::from_ref(&anchor), now);
    assert!(
        !v.signed_by.is_empty(),
        "the bench file does not verify: {v:?}"
    );
    let mut g = c.benchmark_group("signature");
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.bench_function(format!("verify_{what}"), |b| {
        b.iter(|| verify(&data, std::slice::from_ref(&anchor), now))
    });
    let unsigned = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("corpus/npm/electron-winstaller-5.4.4/Squirrel.exe"),
    )
    .unwrap();
    g.bench_function("unsigned_pe", |b| {
        b.iter(|| verify(&unsigned, std::slice::from_ref(&anchor), now))
    });
    // What a tier run does with every PE content: its signatures, and its
    // Authenticode digests (SHA-1 and SHA-256, one pass) for catalogs.
    let rules = Rules {
        anchors: vec![anchor.clone()],
        timestamp_anchors: Vec::new(),
        at: now,
        fingerprint: [0; 32],
    };
    g.bench_function("judge_unsigned_pe", |b| {
        b.iter(|| judge(&unsigned, false, &rules))
    });
    g.finish();
    // A catalog of 10,000 members (made here only).
    if dir.path().join("leaf.pem").exists() {
        let digests: Vec<[u8; 32]> = (0u32..10_000)
            .map(|i| <sha2::Sha256 as sha2::Digest>::digest(i.to_le_bytes()).into())
            .collect();
        let members: Vec<Member> = digests
            .iter()
            .map(|d| Member::Pe {
                sha1: false,
                digest: d,
            })
            .collect();
        let cat = support::sign_catalog(
            dir.path(),
            &dir.path().join("big.cat"),
            &catalog_list(&members),
            "leaf",
            &dir.path().join("inter.pem"),
        );
        let j = judge(&cat, true, &rules);
        assert_eq!(j.vouches.len(), 10_000, "the bench catalog verifies");
        let mut g = c.benchmark_group("signature");
        g.throughput(Throughput::Bytes(cat.len() as u64));
        g.bench_function("catalog_10000_members", |b| {
            b.iter(|| judge(&cat, true, &rules))
        });
        g.finish();
    }
}

criterion_group!(benches, bench_signature);
criterion_main!(benches);
