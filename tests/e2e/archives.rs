//! Archives read in place, against independent readers. Every format is
//! built here with the real tools from the repository's corpus binaries
//! (nothing is committed), scanned in place by fpgate, and extracted with
//! another reader (Python's zipfile and tarfile, bsdtar, dpkg-deb -x and -e,
//! 7-Zip, cabextract, msiextract and msiinfo, rpm2cpio | cpio), the tree
//! then scanned by a plain yara-x loop: the same (rule, sha256) pairs, as
//! many times each. Then: cached == --no-cache, shards + merge == one run,
//! --no-archives, the lock, hostile archives end to end.

use crate::common::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Rules that tell binaries apart by content and by the member's own name
/// (no rule reads `filepath`: the oracle's paths are not fpgate's).
const RULES: &str = r#"
import "pe"
rule MZ { condition: uint16(0) == 0x5A4D }
rule ELF { condition: uint32(0) == 0x464C457F }
rule MachO { condition: uint32(0) == 0xFEEDFACF or uint32(0) == 0xCAFEBABE }
rule DosStub { strings: $a = "This program cannot be run in DOS mode" condition: $a }
rule Dll { condition: pe.is_pe and pe.characteristics & pe.DLL != 0 }
rule Arm64 { condition: pe.machine == pe.MACHINE_ARM64 }
rule ExeByName { condition: extension == ".exe" }
rule CliByName { condition: filename == "cli.exe" }
rule Big { condition: filesize > 100KB }
"#;

/// Corpus binaries packed into every archive, by their path inside it.
const TREE: &[(&str, &str)] = &[
    ("bin/cli.exe", "pypi/setuptools-75.6.0/cli.exe"),
    ("bin/gui-arm64.exe", "pypi/setuptools-75.6.0/gui-arm64.exe"),
    (
        "lib/_speedups.pyd",
        "pypi/markupsafe-3.0.2/_speedups.cp312-win_amd64.pyd",
    ),
    (
        "lib/_speedups.so",
        "pypi/markupsafe-3.0.2/_speedups.cpython-312-x86_64-linux-gnu.so",
    ),
    ("lib/fsevents.node", "npm/fsevents-2.3.3/fsevents.node"),
    ("t32.exe", "pypi/pip-24.3.1/t32.exe"),
    // The same content twice, and a name with the separator in it.
    ("copy/cli.exe", "pypi/setuptools-75.6.0/cli.exe"),
    ("odd!name.exe", "pypi/setuptools-75.6.0/gui.exe"),
];

fn sh(dir: &Path, script: &str) {
    let out = Command::new("sh")
        .current_dir(dir)
        .args(["-c", script])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

const WXS: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<Wix xmlns="http://schemas.microsoft.com/wix/2006/wi">
  <Product Id="*" Name="T" Language="1033" Version="1.0.0" Manufacturer="t"
       UpgradeCode="12345678-1234-1234-1234-123456789012">
<Package InstallerVersion="200" Compressed="yes" />
<Media Id="1" Cabinet="t.cab" EmbedCab="yes" />
<Directory Id="TARGETDIR" Name="SourceDir">
  <Directory Id="ProgramFilesFolder">
    <Directory Id="INSTALLDIR" Name="T">
      <Component Id="C1" Guid="12345678-1234-1234-1234-123456789013">
        <File Id="clikey" Name="cli.exe" Source="tree/bin/cli.exe" />
        <File Id="pydkey" Name="_speedups.pyd" Source="tree/lib/_speedups.pyd" />
        <File Id="t32key" Name="t32.exe" Source="tree/t32.exe" />
      </Component>
    </Directory>
  </Directory>
</Directory>
<Binary Id="CustomAction.dll" SourceFile="tree/bin/gui-arm64.exe" />
<Feature Id="F" Level="1"><ComponentRef Id="C1" /></Feature>
  </Product>
</Wix>
"#;

/// The archives, built in `dir/corpus` from `dir/tree`; each extracted by
/// another reader into `dir/x/<archive name>/`.
fn build(dir: &Path) {
    for (to, from) in TREE {
        let data = std::fs::read(root().join("corpus").join(from)).unwrap();
        write(&dir.join("tree").join(to), &data);
    }
    std::fs::create_dir_all(dir.join("corpus")).unwrap();
    std::fs::create_dir_all(dir.join("x")).unwrap();
    // zip family, tar with every compression, a lone stream, 7z, CAB.
    sh(
        dir,
        "cd tree && zip -qr ../corpus/a.zip . && tar cf ../a.tar . && cd .. \
         && gzip -c a.tar > corpus/a.tar.gz && xz -c a.tar > corpus/a.tar.xz \
         && zstd -q -c a.tar > corpus/a.tar.zst && bzip2 -c a.tar > corpus/a.tbz2 \
         && gzip -c tree/t32.exe > corpus/t32.exe.gz \
         && cat tree/t32.exe corpus/a.zip > corpus/sfx-setup.exe \
         && (cd tree && 7zz a -bd -mx=5 ../corpus/a.7z . >/dev/null) \
         && (cd tree && gcab -c -z ../corpus/a.cab bin/cli.exe lib/_speedups.pyd t32.exe)",
    );
    // A zip holding a tar.gz holding the tree: nested twice.
    sh(
        dir,
        "mkdir -p n && cp corpus/a.tar.gz n/inner.tar.gz && cp tree/t32.exe n/ \
         && (cd n && zip -q ../corpus/nested.zip inner.tar.gz t32.exe)",
    );
    // .deb, with a link (listed, not scanned).
    sh(
        dir,
        "mkdir -p pkg/DEBIAN pkg/usr/lib/t && cp -r tree/* pkg/usr/lib/t/ \
         && ln -s cli.exe pkg/usr/lib/t/bin/link.exe \
         && printf 'Package: t\\nVersion: 1\\nArchitecture: all\\nMaintainer: t <t@example.org>\\nDescription: t\\n' > pkg/DEBIAN/control \
         && dpkg-deb -Zxz --root-owner-group -b pkg corpus/a.deb >/dev/null",
    );
    // .rpm (xz payload).
    let top = dir.join("rpm");
    std::fs::create_dir_all(&top).unwrap();
    let spec = "Name: t\nVersion: 1\nRelease: 1\nSummary: t\nLicense: MIT\nBuildArch: noarch\n\
        %description\nt\n%install\nmkdir -p %{buildroot}/opt/t\ncp -r TREE/* %{buildroot}/opt/t/\n\
        %files\n/opt/t\n";
    std::fs::write(
        dir.join("t.spec"),
        spec.replace("TREE", &dir.join("tree").display().to_string()),
    )
    .unwrap();
    sh(
        dir,
        &format!(
            "rpmbuild -bb --quiet --define '_topdir {t}' --define '_binary_payload w6.xzdio' \
             --define '__os_install_post %{{nil}}' t.spec >/dev/null 2>&1 \
             && cp {t}/RPMS/noarch/t-1-1.noarch.rpm corpus/a.rpm",
            t = top.display()
        ),
    );
    // MSI: an embedded CAB and a Binary-table DLL.
    std::fs::write(dir.join("t.wxs"), WXS).unwrap();
    sh(dir, "wixl -o corpus/a.msi t.wxs");
    // A loose file beside the archives.
    sh(dir, "cp tree/bin/cli.exe corpus/loose-cli.exe");

    // The other readers.
    let py = r#"
import sys, tarfile, zipfile, os
def unzip(src, dst):
    with zipfile.ZipFile(src) as z:
        for i in z.infolist():
            if not i.is_dir():
                p = os.path.join(dst, i.filename)
                os.makedirs(os.path.dirname(p), exist_ok=True)
                open(p, 'wb').write(z.read(i))
def untar(src, dst):
    with tarfile.open(src, 'r:*') as t:
        for m in t.getmembers():
            if m.isfile():
                p = os.path.join(dst, m.name)
                os.makedirs(os.path.dirname(p), exist_ok=True)
                open(p, 'wb').write(t.extractfile(m).read())
kind, src, dst = sys.argv[1:]
{'zip': unzip, 'tar': untar}[kind](src, dst)
"#;
    std::fs::write(dir.join("x.py"), py).unwrap();
    sh(
        dir,
        "python3 x.py zip corpus/a.zip x/a.zip \
         && python3 x.py zip corpus/sfx-setup.exe x/sfx-setup.exe \
         && python3 x.py tar corpus/a.tar.gz x/a.tar.gz \
         && python3 x.py tar corpus/a.tar.xz x/a.tar.xz \
         && python3 x.py tar corpus/a.tbz2 x/a.tbz2 \
         && mkdir -p x/a.tar.zst && bsdtar -xf corpus/a.tar.zst -C x/a.tar.zst \
         && mkdir -p x/t32.exe.gz && gzip -dc corpus/t32.exe.gz > x/t32.exe.gz/t32.exe \
         && 7zz x -bd -ox/a.7z corpus/a.7z >/dev/null \
         && mkdir -p x/a.cab && cabextract -q -d x/a.cab corpus/a.cab \
         && python3 x.py zip corpus/nested.zip x/nested.zip \
         && python3 x.py tar x/nested.zip/inner.tar.gz x/nested.zip/inner \
         && mkdir -p x/a.deb && dpkg-deb -x corpus/a.deb x/a.deb/data && dpkg-deb -e corpus/a.deb x/a.deb/control \
         && mkdir -p x/a.rpm && (cd x/a.rpm && rpm2cpio ../../corpus/a.rpm | cpio -idm --quiet) \
         && mkdir -p x/a.msi && msiextract -C x/a.msi corpus/a.msi >/dev/null \
         && (cd x/a.msi && msiinfo extract ../../corpus/a.msi Binary.CustomAction.dll > CustomAction.dll)",
    );
    // The inner tar.gz is a member (a file of the outer zip): it stays.
}

/// A plain yara-x loop over every regular file under `dirs`: (rule, sha256)
/// -> how many files matched, with `filename` and `extension` from each
/// file's own name.
fn oracle(rules: &str, dirs: &[PathBuf]) -> BTreeMap<(String, String), usize> {
    use sha2::Digest;
    let mut compiler = yara_x::Compiler::new();
    for ext in ["filename", "filepath", "extension"] {
        compiler.define_global(ext, "").unwrap();
    }
    compiler.add_source(rules).unwrap();
    let rules = compiler.build();
    let mut scanner = yara_x::Scanner::new(&rules);
    let mut out = BTreeMap::new();
    for d in dirs {
        for e in walkdir::WalkDir::new(d) {
            let e = e.unwrap();
            if !e.file_type().is_file() {
                continue;
            }
            let data = std::fs::read(e.path()).unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            let ext = Path::new(&name)
                .extension()
                .map(|x| format!(".{}", x.to_string_lossy().to_lowercase()))
                .unwrap_or_default();
            scanner.set_global("filename", name.as_str()).unwrap();
            scanner.set_global("extension", ext.as_str()).unwrap();
            let sha = hex(&sha2::Sha256::digest(&data));
            for r in scanner.scan(&data).unwrap().matching_rules() {
                *out.entry((r.identifier().to_string(), sha.clone()))
                    .or_default() += 1;
            }
        }
    }
    out
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// fpgate's findings as (rule, sha256) -> how many paths.
fn found(report: &Value) -> BTreeMap<(String, String), usize> {
    let mut out = BTreeMap::new();
    for f in report["false_positives"]["new"].as_array().unwrap() {
        let key = (
            f["rule"]["identifier"].as_str().unwrap().to_string(),
            f["sha256"].as_str().unwrap().to_string(),
        );
        *out.entry(key).or_default() += f["paths"].as_array().unwrap().len();
    }
    out
}

fn scan(dir: &Path, extra: &[&str]) -> Run {
    run(fpgate()
        .current_dir(dir)
        .args([
            "scan",
            "--no-config",
            "--rules",
            "r.yar",
            "--corpus",
            "corpus",
            "--format",
            "json",
        ])
        .args(extra))
}

/// The report without what differs from run to run.
fn stable(mut r: Value) -> Value {
    r["timings"] = Value::Null;
    r
}

#[test]
fn scanning_in_place_equals_extracting_with_other_readers() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    build(dir);
    std::fs::write(dir.join("r.yar"), RULES).unwrap();
    let r = scan(dir, &["--no-cache"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let j = r.json();
    // The tree extracted, and the files on disk themselves (the archives
    // are scanned as files too).
    let mut dirs = vec![dir.join("x")];
    for e in std::fs::read_dir(dir.join("corpus")).unwrap() {
        dirs.push(e.unwrap().path());
    }
    let want = oracle(RULES, &dirs);
    let got = found(&j);
    let diff: Vec<_> = want
        .iter()
        .filter(|(k, n)| got.get(*k) != Some(n))
        .map(|(k, n)| format!("{k:?}: oracle {n}, fpgate {:?}", got.get(k)))
        .chain(
            got.iter()
                .filter(|(k, _)| !want.contains_key(*k))
                .map(|(k, n)| format!("{k:?}: fpgate {n}, not the oracle")),
        )
        .collect();
    assert!(diff.is_empty(), "{}", diff.join("\n"));
    // Every archive was opened, and nothing left unscanned.
    let a = &j["corpus"]["archives"];
    assert_eq!(a["read"], true);
    assert_eq!(a["archives"], 13, "{a}");
    assert_eq!(j["unscanned"], serde_json::json!([]));
    // The link in the .deb is listed, not scanned.
    assert!(
        a["listed"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["path"] == "corpus/a.deb!./usr/lib/t/bin/link.exe"
                && l["what"] == "symbolic link to cli.exe"),
        "{a}"
    );
    // Names: escaped, nested, with their components.
    let paths: Vec<&str> = j["false_positives"]["new"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|f| f["paths"].as_array().unwrap())
        .map(|p| p.as_str().unwrap())
        .collect();
    for p in [
        "corpus/a.zip!odd%21name.exe",
        "corpus/nested.zip!inner.tar.gz!./bin/cli.exe",
        "corpus/a.msi!Binary.CustomAction.dll",
        "corpus/sfx-setup.exe!t32.exe",
        "corpus/t32.exe.gz!t32.exe",
    ] {
        assert!(paths.contains(&p), "{p} not in {paths:?}");
    }
    // cli.exe's content on disk and nested twice: one finding of rule MZ,
    // each path as components.
    let mz = j["false_positives"]["new"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| {
            f["rule"]["identifier"] == "MZ"
                && f["paths"]
                    .as_array()
                    .unwrap()
                    .contains(&serde_json::json!("corpus/loose-cli.exe"))
        })
        .unwrap();
    let comps = mz["path_components"].as_array().unwrap();
    assert_eq!(comps.len(), mz["paths"].as_array().unwrap().len());
    assert!(comps.contains(&serde_json::json!([
        "corpus/nested.zip",
        "inner.tar.gz",
        "./bin/cli.exe"
    ])));
    assert!(comps.contains(&serde_json::json!(["corpus/loose-cli.exe"])));

    // --no-archives: the files on disk only, as before.
    let off = scan(dir, &["--no-cache", "--no-archives"]).json();
    let want_off = oracle(RULES, &dirs[1..]);
    assert_eq!(found(&off), want_off);
    assert_eq!(off["corpus"]["archives"]["read"], false);
    assert_eq!(off["corpus"]["files"], 13 + 1);
}

#[test]
fn cached_shards_and_the_lock_agree_with_a_plain_run() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    build(dir);
    std::fs::write(dir.join("r.yar"), RULES).unwrap();
    age(&dir.join("corpus"));
    // A file changed in the last 2 s (whole seconds) is not remembered by
    // the stat cache (its ctime is now): wait that out, so the warm runs
    // read nothing.
    std::thread::sleep(std::time::Duration::from_millis(3100));
    let plain = stable(scan(dir, &["--no-cache"]).json());
    let cache = dir.join("cache");
    let cache = cache.to_str().unwrap();
    for round in ["cold", "warm", "warm again"] {
        let r = scan(dir, &["--cache", cache]);
        let mut j = r.json();
        assert_eq!(stable(j.clone()), plain, "{round}");
        if round != "cold" {
            // Answered without reading a file, members and all.
            let c = j["timings"]["cache"].take();
            for k in [
                "files_read_not_scanned",
                "files_scanned_changed_rules",
                "files_scanned_all_rules",
            ] {
                assert_eq!(c[k], 0, "{round}: {k}: {c}");
            }
            assert_eq!(j["timings"]["decoded_bytes"], 0, "{round}");
        }
    }
    // Shards + merge == one run: members are sharded by their own content
    // (each shard opens every archive, keeps its members), without a cache
    // and with one (cold, then warm: answered from the archives' shapes).
    let shard_cache = dir.join("shard-cache");
    for mode in ["no cache", "cache cold", "cache warm"] {
        let mut parts = Vec::new();
        for k in 1..=3 {
            let out = dir.join(format!("part{k}.json"));
            let shard = format!("{k}/3");
            let mut args = vec!["--shard", &shard, "-o", out.to_str().unwrap()];
            match mode {
                "no cache" => args.push("--no-cache"),
                _ => args.extend(["--cache", shard_cache.to_str().unwrap()]),
            }
            let r = scan(dir, &args);
            assert_eq!(r.code, 0, "{mode}: {}", r.stderr);
            let part: Value =
                serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
            // A member is reported by the shard of its content.
            for f in part["facts"]["files"].as_array().unwrap() {
                if f.get("components").is_some() && f["outcome"]["status"] == "scanned" {
                    let sha = f["outcome"]["sha256"].as_str().unwrap();
                    let v = u64::from_str_radix(
                        &sha[..16]
                            .as_bytes()
                            .chunks(2)
                            .rev()
                            .map(|c| std::str::from_utf8(c).unwrap())
                            .collect::<String>(),
                        16,
                    )
                    .unwrap();
                    assert_eq!(v % 3 + 1, k, "{mode}: {f}");
                }
            }
            parts.push(out);
        }
        let m = run(fpgate()
            .current_dir(dir)
            .args(["merge", "--format", "json"])
            .args(&parts));
        assert_eq!(m.code, 1, "{mode}: {}", m.stderr);
        let merged = stable(m.json());
        assert_eq!(
            merged["false_positives"], plain["false_positives"],
            "{mode}: merged findings"
        );
        assert_eq!(merged["corpus"], plain["corpus"], "{mode}: merged corpus");
        assert_eq!(merged["unscanned"], plain["unscanned"], "{mode}");
    }

    // The lock lists members; a run verifies against it, and a changed
    // member inside an archive is a mismatch.
    let idx = run(fpgate().current_dir(dir).args([
        "corpus",
        "index",
        "--no-config",
        "--corpus",
        "corpus",
        "-o",
        "corpus.lock",
    ]));
    assert_eq!(idx.code, 0, "{}", idx.stderr);
    let lock: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("corpus.lock")).unwrap()).unwrap();
    assert_eq!(lock["schema_version"], 2);
    assert_eq!(lock["archives"], true);
    let locked: Vec<&str> = lock["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert!(locked.contains(&"a.deb!./usr/lib/t/t32.exe"), "{locked:?}");
    let gate = |dir: &Path| {
        run(fpgate().current_dir(dir).args([
            "gate",
            "--no-config",
            "--no-cache",
            "--candidate",
            "r.yar",
            "--corpus",
            "corpus",
            "--lock",
            "corpus.lock",
            "--format",
            "json",
        ]))
    };
    let r = gate(dir);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let j = r.json();
    assert_eq!(
        j["corpus"]["lock"]["verified"].as_u64().unwrap() as usize,
        locked.len()
    );
    // The same zip with one member changed: the lock names the member.
    sh(
        dir,
        "cp tree/bin/gui-arm64.exe tree/bin/cli.exe && rm corpus/a.zip \
         && (cd tree && zip -qr ../corpus/a.zip .)",
    );
    let r = gate(dir);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("a.zip!bin/cli.exe"), "{}", r.stderr);
}

/// Hostile archives, end to end: each is an unscanned entry with its own
/// reason (exit 3), the run neither hangs nor panics nor grows past its
/// memory bound, odd names are only names, and nothing is written.
#[test]
fn hostile_archives_are_unscanned_with_their_reasons_and_nothing_is_written() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let cli = root().join("corpus/pypi/setuptools-75.6.0/cli.exe");
    std::fs::create_dir_all(dir.join("corpus")).unwrap();
    std::fs::copy(&cli, dir.join("cli.exe")).unwrap();
    let py = r#"
import io, tarfile, zipfile
# A nested bomb: 300 MB of zeros (more than the member cap), deflated, in a
# zip; that zip 8 times in another.
inner = io.BytesIO()
with zipfile.ZipFile(inner, 'w', zipfile.ZIP_DEFLATED) as z:
    with z.open('zeros.bin', 'w', force_zip64=True) as f:
        block = bytes(1 << 20)
        for _ in range(300):
            f.write(block)
with zipfile.ZipFile('corpus/bomb.zip', 'w') as z:
    for i in range(8):
        z.writestr('layer%d.zip' % i, inner.getvalue())
# Names that try to leave the archive, a link, a newline and a byte that is
# not UTF-8.
cli = open('cli.exe', 'rb').read()
with tarfile.open('corpus/hostile.tar', 'w', format=tarfile.GNU_FORMAT) as t:
    for name in ['../../escape.exe', '/etc/cron.d/x.exe', 'a\nb.exe', b'\xff.exe'.decode('utf-8', 'surrogateescape')]:
        i = tarfile.TarInfo(name)
        i.size = len(cli)
        t.addfile(i, io.BytesIO(cli))
    l = tarfile.TarInfo('link.exe')
    l.type = tarfile.SYMTYPE
    l.linkname = '/etc/shadow'
    t.addfile(l)
"#;
    std::fs::write(dir.join("mk.py"), py).unwrap();
    sh(dir, "python3 mk.py");
    sh(
        dir,
        "zip -q -P secret corpus/enc.zip cli.exe \
         && tar cf t.tar cli.exe && gzip -c t.tar > t.tgz && head -c 4000 t.tgz > corpus/cut.tgz \
         && xz --lzma2=dict=1536MiB -c cli.exe > corpus/dict.xz \
         && cp cli.exe corpus/plain.exe",
    );
    std::fs::write(dir.join("r.yar"), RULES).unwrap();
    let before = listing(dir);
    // Peak memory of this one run (its own child process).
    let measure = "import resource,subprocess,sys\n\
        r=subprocess.run(sys.argv[1:],capture_output=True)\n\
        sys.stdout.buffer.write(r.stdout)\n\
        sys.stderr.buffer.write(r.stderr)\n\
        open('rss','w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))\n\
        sys.exit(r.returncode)";
    let mut cmd = assert_cmd::Command::new("python3");
    cmd.current_dir(dir)
        .args(["-c", measure])
        .arg(env!("CARGO_BIN_EXE_fpgate"))
        .args([
            "scan",
            "--no-config",
            "--no-cache",
            "--rules",
            "r.yar",
            "--corpus",
            "corpus",
            "--format",
            "json",
            "-j",
            "2",
        ])
        .env_remove("FPGATE_CACHE");
    let r = run(&mut cmd);
    // New false positives block (1); the unscanned entries are listed too.
    assert_eq!(r.code, 1, "{}", r.stderr);
    let j = r.json();
    let why: BTreeMap<String, String> = j["unscanned"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["path"].as_str().unwrap().to_string(),
                u["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for (path, reason) in [
        ("corpus/bomb.zip!layer0.zip!zeros.bin", "archive_ratio"),
        ("corpus/bomb.zip!layer7.zip!zeros.bin", "archive_ratio"),
        ("corpus/enc.zip!cli.exe", "encrypted"),
        ("corpus/dict.xz!", "archive_dictionary"),
    ] {
        assert_eq!(
            why.get(path).map(String::as_str),
            Some(reason),
            "{path}: {why:?}"
        );
    }
    // Truncated inside the member: the member, or the rest of the tar.
    assert!(
        why.iter()
            .any(|(p, r)| p.starts_with("corpus/cut.tgz!") && r == "corrupt"),
        "{why:?}"
    );
    // Odd names scanned under their escaped names; the link listed.
    let mz: Vec<String> = j["false_positives"]["new"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"]["identifier"] == "MZ")
        .flat_map(|f| f["paths"].as_array().unwrap().clone())
        .map(|p| p.as_str().unwrap().to_string())
        .collect();
    for p in [
        "corpus/hostile.tar!../../escape.exe",
        "corpus/hostile.tar!/etc/cron.d/x.exe",
        "corpus/hostile.tar!a%0Ab.exe",
        "corpus/hostile.tar!%FF.exe",
        "corpus/plain.exe",
    ] {
        assert!(mz.contains(&p.to_string()), "{p}: {mz:?}");
    }
    assert!(j["corpus"]["archives"]["listed"]
        .as_array()
        .unwrap()
        .iter()
        .any(|l| l["path"] == "corpus/hostile.tar!link.exe"
            && l["what"] == "symbolic link to /etc/shadow"));
    // Nothing was written: not beside the corpus, not above it.
    assert_eq!(listing(dir), before);
    assert!(!dir.join("../escape.exe").exists());
    // The bomb was stopped by its ratio: far under one member cap (256 MiB)
    // per thread.
    let rss_kib: u64 = std::fs::read_to_string(dir.join("rss"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(rss_kib < 200 * 1024, "peak RSS {rss_kib} KiB");
    // Rules that match nothing: the unscanned entries alone make the run
    // incomplete (3), unless allowed (0).
    std::fs::write(dir.join("none.yar"), "rule None { condition: false }").unwrap();
    for (extra, code) in [(None, 3), (Some("--allow-incomplete"), 0)] {
        let r = run(fpgate()
            .current_dir(dir)
            .args([
                "scan",
                "--no-config",
                "--no-cache",
                "--rules",
                "none.yar",
                "--corpus",
                "corpus",
            ])
            .args(extra));
        assert_eq!(r.code, code, "{extra:?}: {}", r.stderr);
    }
}

/// Every path under `dir` (but the run's own `rss` file), sorted.
fn listing(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = walkdir::WalkDir::new(dir)
        .into_iter()
        .map(|e| e.unwrap().into_path())
        .filter(|p| p.file_name().is_none_or(|n| n != "rss"))
        .collect();
    v.sort();
    v
}
