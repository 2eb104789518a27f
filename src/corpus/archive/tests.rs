//! The archive reader against archives the real tools build.

use super::*;
use std::path::Path;
use std::process::Command;

/// Every entry of `data` as (path joined with `!`, what): the sha256
/// of a file's bytes, `listed: ...`, or `unscanned REASON`.
fn entries(data: &[u8], name: &str, caps: &Caps) -> Vec<(String, String)> {
    use sha2::{Digest, Sha256};
    let mut out = Vec::new();
    let f = detect(data).expect("an archive");
    open(data, name.as_bytes(), f, caps, &mut |e| {
        let join = |p: &[Vec<u8>]| {
            p.iter()
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .collect::<Vec<_>>()
                .join("!")
        };
        out.push(match e {
            Entry::File { path, data } => {
                (join(path), crate::util::hex::hex(&Sha256::digest(data)))
            }
            Entry::Listed { path, what } => (join(path), format!("listed: {what}")),
            Entry::Unscanned { path, why, .. } => {
                (join(path), format!("unscanned {}", why.as_str()))
            }
        });
    });
    out
}

fn sh(dir: &Path, script: &str) {
    let out = Command::new("sh")
        .current_dir(dir)
        .args(["-c", script])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn sha(data: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    crate::util::hex::hex(&Sha256::digest(data))
}

/// Two real binaries of the repository's corpus in `dir/tree`.
fn tree(dir: &Path) -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/pypi/setuptools-75.6.0");
    std::fs::create_dir_all(dir.join("tree/bin")).unwrap();
    let mut want = Vec::new();
    for (f, to) in [("cli.exe", "bin/cli.exe"), ("gui.exe", "gui.exe")] {
        let data = std::fs::read(root.join(f)).unwrap();
        std::fs::write(dir.join("tree").join(to), &data).unwrap();
        want.push((to.to_string(), sha(&data)));
    }
    want
}

#[test]
fn every_format_lists_what_the_real_tools_packed() {
    let d = tempfile::tempdir().unwrap();
    let want = tree(d.path());
    sh(
        d.path(),
        "cd tree && zip -qr ../a.zip . && tar cf ../a.tar bin gui.exe && cd .. \
        && gzip -k a.tar && xz -k a.tar && zstd -q a.tar && bzip2 -k a.tar \
        && gzip -c tree/gui.exe > gui.exe.gz",
    );
    let caps = Caps::default();
    let with = |prefix: &str, names: &[(String, String)]| -> Vec<(String, String)> {
        let mut v: Vec<_> = names
            .iter()
            .map(|(n, s)| (format!("{prefix}!{n}"), s.clone()))
            .collect();
        v.sort();
        v
    };
    let files = |v: Vec<(String, String)>| {
        let mut v: Vec<_> = v
            .into_iter()
            .filter(|(_, s)| !s.starts_with("listed"))
            .collect();
        v.sort();
        v
    };
    for name in [
        "a.zip",
        "a.tar",
        "a.tar.gz",
        "a.tar.xz",
        "a.tar.zst",
        "a.tar.bz2",
    ] {
        let data = std::fs::read(d.path().join(name)).unwrap();
        let got = files(entries(&data, name, &caps));
        let got: Vec<_> = got
            .into_iter()
            .map(|(p, s)| (p.replacen("!./", "!", 1), s))
            .collect();
        assert_eq!(got, with(name, &want), "{name}");
    }
    let gz = std::fs::read(d.path().join("gui.exe.gz")).unwrap();
    assert_eq!(
        entries(&gz, "gui.exe.gz", &caps),
        with("gui.exe.gz", &want[1..])
    );
}

#[test]
fn a_tar_hard_link_is_a_member_with_its_target_s_bytes() {
    let d = tempfile::tempdir().unwrap();
    let want = tree(d.path());
    sh(
        d.path(),
        "cd tree && ln gui.exe bin/hard.exe && ln -s gui.exe soft.exe \
         && tar cf ../h.tar gui.exe bin soft.exe && cd .. && gzip -k h.tar",
    );
    for name in ["h.tar", "h.tar.gz"] {
        let data = std::fs::read(d.path().join(name)).unwrap();
        let got = entries(&data, name, &Caps::default());
        let find = |p: &str| {
            got.iter()
                .find(|(n, _)| n.ends_with(p))
                .map(|(_, w)| w.clone())
        };
        assert_eq!(find("!gui.exe"), Some(want[1].1.clone()), "{name}: {got:?}");
        assert_eq!(
            find("!bin/hard.exe"),
            Some(want[1].1.clone()),
            "{name}: {got:?}"
        );
        assert_eq!(find("!bin/cli.exe"), Some(want[0].1.clone()), "{name}");
        assert_eq!(
            find("!soft.exe").as_deref(),
            Some("listed: symbolic link to gui.exe"),
            "{name}"
        );
    }
}

#[test]
fn a_deb_s_tars_are_layers_and_links_are_listed() {
    let d = tempfile::tempdir().unwrap();
    let want = tree(d.path());
    sh(d.path(), "mkdir -p pkg/DEBIAN pkg/usr && cp -r tree/* pkg/usr/ \
        && ln -s gui.exe pkg/usr/gui-link.exe \
        && printf 'Package: t\\nVersion: 1\\nArchitecture: all\\nMaintainer: t <t@example.org>\\nDescription: t\\n' > pkg/DEBIAN/control \
        && dpkg-deb -Zxz --root-owner-group -b pkg t.deb >/dev/null");
    let data = std::fs::read(d.path().join("t.deb")).unwrap();
    let got = entries(&data, "t.deb", &Caps::default());
    let find = |p: &str| got.iter().find(|(n, _)| n == p).map(|(_, w)| w.clone());
    assert_eq!(
        find("t.deb!./usr/bin/cli.exe"),
        Some(want[0].1.clone()),
        "{got:?}"
    );
    assert_eq!(find("t.deb!./usr/gui.exe"), Some(want[1].1.clone()));
    assert_eq!(
        find("t.deb!./usr/gui-link.exe").as_deref(),
        Some("listed: symbolic link to gui.exe")
    );
    assert!(
        find("t.deb!./control").is_some(),
        "control members are entries: {got:?}"
    );
    assert!(
        got.iter().all(|(n, _)| !n.contains("data.tar")),
        "the data tar is a layer: {got:?}"
    );
}

#[test]
fn a_pe_with_a_zip_appended_is_opened() {
    let d = tempfile::tempdir().unwrap();
    let want = tree(d.path());
    sh(
        d.path(),
        "cd tree && zip -qr ../a.zip . && cd .. && cat tree/gui.exe a.zip > setup.exe",
    );
    let data = std::fs::read(d.path().join("setup.exe")).unwrap();
    assert_eq!(detect(&data), Some(Format::Zip));
    let got: Vec<_> = entries(&data, "setup.exe", &Caps::default())
        .into_iter()
        .filter(|(_, s)| !s.starts_with("listed"))
        .collect();
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(got.contains(&("setup.exe!gui.exe".to_string(), want[1].1.clone())));
}

#[test]
fn bombs_hit_their_caps_on_what_the_decoder_produces() {
    let d = tempfile::tempdir().unwrap();
    // 200 MB of zeros: ratio far above 100:1, in a zip and a gzip.
    sh(d.path(), "head -c 200000000 /dev/zero > zeros && zip -q z.zip zeros && gzip -c zeros > zeros.gz && xz -c zeros > zeros.xz");
    let caps = Caps::default();
    for (name, want) in [
        ("z.zip", "z.zip!zeros"),
        ("zeros.gz", "zeros.gz"),
        ("zeros.xz", "zeros.xz"),
    ] {
        let data = std::fs::read(d.path().join(name)).unwrap();
        let got = entries(&data, name, &caps);
        assert_eq!(
            got,
            [(want.to_string(), "unscanned archive_ratio".to_string())],
            "{name}"
        );
    }
    // Nested deeper than the cap: the innermost is unscanned, not skipped.
    sh(d.path(), "echo x > f && zip -q n1.zip f && for i in 1 2 3 4 5 6; do zip -q n$((i+1)).zip n$i.zip; done");
    let data = std::fs::read(d.path().join("n7.zip")).unwrap();
    let got = entries(&data, "n7.zip", &caps);
    assert!(
        got.iter().any(|(_, w)| w == "unscanned archive_depth"),
        "{got:?}"
    );
    assert!(!got.iter().any(|(n, _)| n.ends_with("!f")), "{got:?}");
    // A member cap, a member-count cap and a total cap.
    let small = Caps {
        member_bytes: 1000,
        ..Caps::default()
    };
    let data = std::fs::read(d.path().join("n1.zip")).unwrap();
    assert_eq!(entries(&data, "n1.zip", &small).len(), 1);
    sh(d.path(), "head -c 5000 /dev/urandom > r && zip -q r.zip r");
    let data = std::fs::read(d.path().join("r.zip")).unwrap();
    let caps = [
        (small, "r.zip!r", "too_large"),
        (
            Caps {
                members: 0,
                ..Caps::default()
            },
            "r.zip",
            "archive_members",
        ),
        (
            Caps {
                total_bytes: 100,
                ..Caps::default()
            },
            "r.zip!r",
            "archive_size",
        ),
    ];
    for (cap, at, why) in caps {
        assert_eq!(
            entries(&data, "r.zip", &cap),
            [(at.to_string(), format!("unscanned {why}"))]
        );
    }
}

#[test]
fn a_stream_asking_for_a_huge_dictionary_is_refused_before_decoding() {
    let d = tempfile::tempdir().unwrap();
    sh(d.path(), "echo small > s && xz --lzma2=dict=1536MiB -c s > s.xz && cat s | zstd -q --long=31 -c > s.zst");
    for name in ["s.xz", "s.zst"] {
        let data = std::fs::read(d.path().join(name)).unwrap();
        let caps = Caps {
            dictionary_bytes: 1 << 20,
            ..Caps::default()
        };
        let got = entries(&data, name, &caps);
        assert_eq!(
            got,
            [(name.to_string(), "unscanned archive_dictionary".to_string())],
            "{name}"
        );
    }
}

#[test]
fn encrypted_truncated_and_overlapping_zips_are_unscanned() {
    let d = tempfile::tempdir().unwrap();
    tree(d.path());
    sh(d.path(), "cd tree && zip -q -P secret ../enc.zip gui.exe");
    let data = std::fs::read(d.path().join("enc.zip")).unwrap();
    assert_eq!(
        entries(&data, "enc.zip", &Caps::default()),
        [(
            "enc.zip!gui.exe".to_string(),
            "unscanned encrypted".to_string()
        )]
    );
    // Truncated inside a member's data: corrupt, never a short file.
    sh(d.path(), "cd tree && tar cf ../t.tar gui.exe && cd .. && gzip -c t.tar > t.tgz && head -c 4000 t.tgz > cut.tgz");
    let data = std::fs::read(d.path().join("cut.tgz")).unwrap();
    let got = entries(&data, "cut.tgz", &Caps::default());
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(got[0].1.starts_with("unscanned"), "{got:?}");
    // Two central-directory entries over one local entry.
    let mut z = Vec::new();
    {
        let mut w = zip::ZipWriter::new(io::Cursor::new(&mut z));
        w.start_file("a", zip::write::SimpleFileOptions::default())
            .unwrap();
        io::Write::write_all(&mut w, &[b'x'; 1000]).unwrap();
        w.finish().unwrap();
    }
    let overlapping = overlap_copy(&z);
    assert_eq!(
        entries(&overlapping, "o.zip", &Caps::default()),
        [("o.zip".to_string(), "unscanned archive_overlap".to_string())]
    );
}

#[test]
fn a_zip_that_understates_its_sizes_is_never_a_short_clean_member() {
    // 200 KB of zeros, deflated, whose headers (local and central) say it
    // decodes to 10 bytes: what it yields is judged by what the decoder
    // produces, never by the declared size.
    let mut z = Vec::new();
    {
        let mut w = zip::ZipWriter::new(io::Cursor::new(&mut z));
        let o = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        w.start_file("zeros", o).unwrap();
        io::Write::write_all(&mut w, &vec![0u8; 200_000]).unwrap();
        w.finish().unwrap();
    }
    let lie = 10u32.to_le_bytes();
    // Uncompressed size: at 22 in the local header, 24 in the central one.
    let local = z.windows(4).position(|w| w == [b'P', b'K', 3, 4]).unwrap();
    z[local + 22..local + 26].copy_from_slice(&lie);
    let central = z.windows(4).position(|w| w == [b'P', b'K', 1, 2]).unwrap();
    z[central + 24..central + 28].copy_from_slice(&lie);
    for (caps, want) in [
        // The ratio cap stops the decoder past 100 KiB at more than 100:1.
        (Caps::default(), "unscanned archive_ratio"),
        // A member cap below what it really decodes to.
        (
            Caps {
                ratio: u64::MAX,
                member_bytes: 1000,
                ..Caps::default()
            },
            "unscanned too_large",
        ),
    ] {
        let got = entries(&z, "u.zip", &caps);
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(
            got[0].1 == want || got[0].1 == "unscanned corrupt",
            "{want}: {got:?}"
        );
        assert_ne!(got[0].1, sha(&[0u8; 10]), "never the 10 bytes it declares");
    }
}

/// A zip whose central directory lists its one entry twice, under two
/// names (both pointing at the same local header).
fn overlap_copy(z: &[u8]) -> Vec<u8> {
    let cd = z.windows(4).position(|w| w == [b'P', b'K', 1, 2]).unwrap();
    let eocd = z.windows(4).rposition(|w| w == [b'P', b'K', 5, 6]).unwrap();
    let entry = &z[cd..eocd];
    let mut out = z[..cd].to_vec();
    out.extend_from_slice(entry);
    // The second under another name (its first byte at 46 in the
    // central-directory header), over the same local entry.
    let mut other = entry.to_vec();
    other[46] = b'b';
    out.extend_from_slice(&other);
    let mut end = z[eocd..].to_vec();
    let n = u16::from_le_bytes([end[10], end[11]]) * 2;
    end[8..10].copy_from_slice(&n.to_le_bytes());
    end[10..12].copy_from_slice(&n.to_le_bytes());
    let size = (entry.len() * 2) as u32;
    end[12..16].copy_from_slice(&size.to_le_bytes());
    out.extend_from_slice(&end);
    out
}

#[test]
fn odd_member_names_are_only_names() {
    let d = tempfile::tempdir().unwrap();
    // `..` and absolute names, written with Python's tarfile.
    sh(
        d.path(),
        "python3 -c \"import tarfile,io; t=tarfile.open('odd.tar','w'); \
        [t.addfile(tarfile.TarInfo(n), io.BytesIO(b'')) or None for n in []]; \
        i=tarfile.TarInfo('../../escape'); i.size=3; t.addfile(i, io.BytesIO(b'abc')); \
        i=tarfile.TarInfo('/etc/passwd'); i.size=3; t.addfile(i, io.BytesIO(b'def')); t.close()\"",
    );
    let data = std::fs::read(d.path().join("odd.tar")).unwrap();
    let got = entries(&data, "odd.tar", &Caps::default());
    let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["odd.tar!../../escape", "odd.tar!/etc/passwd"]);
    assert!(!d.path().parent().unwrap().join("escape").exists());
}

/// Damaged archives (bytes flipped, cut short), of every format the
/// real tools build: a reason or members, never a panic or a member
/// past its cap. A deterministic stand-in for fuzzing.
#[test]
fn damaged_archives_never_panic_or_pass_a_cap() {
    let d = tempfile::tempdir().unwrap();
    tree(d.path());
    sh(
        d.path(),
        "cd tree && zip -qr ../a.zip . && tar cf ../a.tar . && cd .. \
        && gzip -k a.tar && xz -k a.tar && zstd -q a.tar && bzip2 -k a.tar \
        && cd tree && 7zz a -bd -bso0 ../a.7z . && cd .. && gcab -c -z a.cab tree/gui.exe",
    );
    let caps = Caps {
        member_bytes: 64 << 10,
        total_bytes: 256 << 10,
        ..Caps::default()
    };
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut panics = Vec::new();
    for name in [
        "a.zip",
        "a.tar",
        "a.tar.gz",
        "a.tar.xz",
        "a.tar.zst",
        "a.tar.bz2",
        "a.7z",
        "a.cab",
    ] {
        let good = std::fs::read(d.path().join(name)).unwrap();
        for round in 0..150 {
            let mut data = good.clone();
            if round % 3 == 0 {
                data.truncate((next() as usize) % data.len());
            }
            for _ in 0..1 + next() % 8 {
                let at = (next() as usize) % data.len().max(1);
                if let Some(b) = data.get_mut(at) {
                    *b ^= 1 << (next() % 8);
                }
            }
            let Some(f) = detect(&data) else { continue };
            let r = std::panic::catch_unwind(|| {
                let mut total = 0u64;
                open(&data, name.as_bytes(), f, &caps, &mut |e| {
                    if let Entry::File { data, .. } = e {
                        assert!(data.len() as u64 <= caps.member_bytes);
                        total += data.len() as u64;
                    }
                });
                total
            });
            match r {
                // A nested member is counted in its container too.
                Ok(total) => assert!(total <= caps.total_bytes * 2, "{name} round {round}"),
                Err(_) => panics.push(format!("{name} round {round}")),
            }
        }
    }
    assert!(panics.is_empty(), "panicked on {panics:?}");
}

#[test]
fn seven_zip_and_cab_list_what_7zz_and_gcab_packed() {
    let d = tempfile::tempdir().unwrap();
    let want = tree(d.path());
    sh(d.path(), "cd tree && 7zz a -bd -bso0 ../a.7z bin gui.exe && 7zz a -bd -bso0 -ms=off ../b.7z bin gui.exe \
        && cd .. && gcab -c -z c.cab tree/bin/cli.exe tree/gui.exe");
    let caps = Caps::default();
    for name in ["a.7z", "b.7z"] {
        let data = std::fs::read(d.path().join(name)).unwrap();
        let mut got: Vec<_> = entries(&data, name, &caps)
            .into_iter()
            .filter(|(_, w)| !w.starts_with("listed"))
            .collect();
        got.sort();
        let mut expect: Vec<_> = want
            .iter()
            .map(|(n, s)| (format!("{name}!{n}"), s.clone()))
            .collect();
        expect.sort();
        assert_eq!(got, expect, "{name}");
    }
    let data = std::fs::read(d.path().join("c.cab")).unwrap();
    let mut got = entries(&data, "c.cab", &caps);
    got.sort();
    assert_eq!(
        got,
        [
            // CAB names are Windows paths, kept as they are.
            ("c.cab!tree\\bin\\cli.exe".to_string(), want[0].1.clone()),
            ("c.cab!tree\\gui.exe".to_string(), want[1].1.clone())
        ]
    );
    // A member cap hit inside a solid 7z block: that member and the
    // rest of its block are unscanned, none is skipped.
    let small = Caps {
        member_bytes: 1000,
        ..Caps::default()
    };
    let data = std::fs::read(d.path().join("a.7z")).unwrap();
    let got = entries(&data, "a.7z", &small);
    let files: Vec<_> = got
        .iter()
        .filter(|(_, w)| !w.starts_with("listed"))
        .collect();
    assert_eq!(files.len(), 2, "{got:?}");
    assert!(
        files.iter().all(|(_, w)| w.starts_with("unscanned")),
        "{got:?}"
    );
    // A 7z asking for a larger dictionary than the cap is refused
    // before decoding (7-Zip shrinks a dictionary to the data, so the
    // data is 2 MB and the cap 1 MiB).
    sh(
        d.path(),
        "echo small > s && head -c 2000000 /dev/urandom > big \
         && 7zz a -bd -bso0 -m0=lzma2:d=1536m s.7z big",
    );
    let data = std::fs::read(d.path().join("s.7z")).unwrap();
    let tight = Caps {
        dictionary_bytes: 1 << 20,
        ..Caps::default()
    };
    assert_eq!(
        entries(&data, "s.7z", &tight),
        [(
            "s.7z!big".to_string(), // named: the limit is met at its block
            "unscanned archive_dictionary".to_string()
        )]
    );
    // Encrypted.
    sh(d.path(), "7zz a -bd -bso0 -psecret -mhe=off e.7z s");
    let data = std::fs::read(d.path().join("e.7z")).unwrap();
    let got = entries(&data, "e.7z", &caps);
    assert!(
        got.iter().all(|(_, w)| w == "unscanned encrypted"),
        "{got:?}"
    );
}

#[test]
fn an_rpm_payload_lists_what_rpmbuild_packed() {
    let d = tempfile::tempdir().unwrap();
    let want = tree(d.path());
    let top = d.path().join("rpm");
    let spec = "Name: t\nVersion: 1\nRelease: 1\nSummary: t\nLicense: MIT\nBuildArch: noarch\n\
        %description\nt\n%install\nmkdir -p %{buildroot}/opt/t/bin\n\
        cp TREE/bin/cli.exe %{buildroot}/opt/t/bin/\ncp TREE/gui.exe %{buildroot}/opt/t/\n\
        ln -s gui.exe %{buildroot}/opt/t/link.exe\n%files\n/opt/t\n";
    let spec = spec.replace("TREE", &d.path().join("tree").display().to_string());
    std::fs::create_dir_all(&top).unwrap();
    std::fs::write(d.path().join("t.spec"), spec).unwrap();
    for comp in ["w9.gzdio", "w6.xzdio", "w19.zstdio"] {
        sh(
            d.path(),
            &format!(
                "rpmbuild -bb --quiet --define '_topdir {}' --define '_binary_payload {comp}' \
                 --define '__os_install_post %{{nil}}' t.spec >/dev/null 2>&1 \
                 && cp {}/RPMS/noarch/t-1-1.noarch.rpm t.rpm",
                top.display(),
                top.display()
            ),
        );
        let data = std::fs::read(d.path().join("t.rpm")).unwrap();
        let mut got = entries(&data, "t.rpm", &Caps::default());
        got.sort();
        let find = |p: &str| got.iter().find(|(n, _)| n == p).map(|(_, w)| w.clone());
        assert_eq!(
            find("t.rpm!./opt/t/bin/cli.exe"),
            Some(want[0].1.clone()),
            "{comp}: {got:?}"
        );
        assert_eq!(
            find("t.rpm!./opt/t/gui.exe"),
            Some(want[1].1.clone()),
            "{comp}"
        );
        assert_eq!(
            find("t.rpm!./opt/t/link.exe").as_deref(),
            Some("listed: symbolic link"),
            "{comp}"
        );
    }
}

#[test]
fn an_msi_s_cab_members_are_named_from_its_file_table() {
    let d = tempfile::tempdir().unwrap();
    let want = tree(d.path());
    let wxs = r#"<?xml version="1.0" encoding="utf-8"?>
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
        <File Id="guikey" Name="gui.exe" Source="tree/gui.exe" />
      </Component>
    </Directory>
  </Directory>
</Directory>
<Binary Id="CustomAction.dll" SourceFile="tree/gui.exe" />
<Feature Id="F" Level="1"><ComponentRef Id="C1" /></Feature>
  </Product>
</Wix>
"#;
    std::fs::write(d.path().join("t.wxs"), wxs).unwrap();
    sh(d.path(), "wixl -o t.msi t.wxs");
    let data = std::fs::read(d.path().join("t.msi")).unwrap();
    let mut got = entries(&data, "t.msi", &Caps::default());
    got.sort();
    let find = |p: &str| got.iter().find(|(n, _)| n == p).map(|(_, w)| w.clone());
    assert_eq!(find("t.msi!cli.exe"), Some(want[0].1.clone()), "{got:?}");
    assert_eq!(find("t.msi!gui.exe"), Some(want[1].1.clone()), "{got:?}");
    assert_eq!(
        find("t.msi!Binary.CustomAction.dll"),
        Some(want[1].1.clone()),
        "{got:?}"
    );
    assert!(
        got.iter().all(|(_, w)| !w.starts_with("unscanned")),
        "{got:?}"
    );
}

#[test]
fn what_only_looks_like_a_container_is_none() {
    // A PE carrying an end-of-central-directory signature (as one that
    // links a zip library does), and a compound file that is no MSI.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/pypi/setuptools-75.6.0");
    let mut pe = std::fs::read(root.join("gui.exe")).unwrap();
    pe.extend_from_slice(b"PK\x05\x06 not an end record");
    assert_eq!(detect(&pe), Some(Format::Zip));
    assert!(entries(&pe, "gui.exe", &Caps::default()).is_empty());
    let mut cfb = vec![0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1];
    cfb.extend_from_slice(&[0u8; 600]);
    assert!(entries(&cfb, "x.doc", &Caps::default()).is_empty());
    // A static library (ar, as numpy's wheels ship MSVC import libraries
    // with timestamps of -1) is a file, not a container: only a .deb's ar
    // is opened.
    let d = tempfile::tempdir().unwrap();
    tree(d.path());
    sh(d.path(), "ar rc lib.a tree/gui.exe");
    let lib = std::fs::read(d.path().join("lib.a")).unwrap();
    assert_eq!(detect(&lib), None);
    let mut msvc =
        b"!<arch>\n/               -1          0     0     0       4         `\n".to_vec();
    msvc.extend_from_slice(&[0u8; 4]);
    assert_eq!(detect(&msvc), None);
}

#[test]
fn a_file_s_head_and_tail_tell_what_the_whole_tells() {
    let d = tempfile::tempdir().unwrap();
    tree(d.path());
    sh(
        d.path(),
        "cd tree && zip -qr ../a.zip . && tar cf ../a.tar . && cd .. && gzip -k a.tar \
         && cat tree/gui.exe a.zip > sfx.exe && head -c 100000 /dev/urandom > r.bin \
         && cat a.zip r.bin > zip-then-100k.bin",
    );
    let limits = crate::corpus::read::ReadLimits {
        max_file_size: 1 << 30,
        follow_symlinks: false,
    };
    for (name, archive) in [
        ("a.zip", true),
        ("a.tar", true),
        ("a.tar.gz", true),
        ("sfx.exe", true),
        ("tree/gui.exe", false),
        ("r.bin", false),
        // The end record is more than 64 KiB from the end: no zip, as
        // for unzip.
        ("zip-then-100k.bin", false),
    ] {
        let p = d.path().join(name);
        let data = std::fs::read(&p).unwrap();
        assert_eq!(detect(&data).is_some(), archive, "{name}");
        assert_eq!(
            crate::corpus::read::is_archive(&p, &limits),
            archive,
            "{name}"
        );
    }
}

#[test]
fn names_of_what_a_lone_stream_holds() {
    assert_eq!(inner_name(b"a/x.exe.gz", Format::Gzip), b"x.exe");
    assert_eq!(inner_name(b"x.TGZ", Format::Gzip), b"x.tar");
    assert_eq!(inner_name(b"x", Format::Xz), b"x");
    assert_eq!(detect(b"not an archive at all"), None);
}
