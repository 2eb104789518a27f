//! Coarse file format from magic bytes, for the corpus lock and reports:
//! the one place fpgate looks at a file's first bytes.

use serde::{Deserialize, Serialize};

/// A corpus file's format. Declared in name order: reports list formats in
/// that order.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Dotnet,
    Elf,
    Macho,
    Other,
    Pe,
    Script,
}

impl Format {
    pub const ALL: [Format; 6] = [
        Format::Dotnet,
        Format::Elf,
        Format::Macho,
        Format::Other,
        Format::Pe,
        Format::Script,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Format::Dotnet => "dotnet",
            Format::Elf => "elf",
            Format::Macho => "macho",
            Format::Other => "other",
            Format::Pe => "pe",
            Format::Script => "script",
        }
    }

    /// The format named `name` (as read back from a cache or a partial
    /// report).
    pub fn by_name(name: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.as_str() == name)
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The format of a file's content.
pub fn detect(data: &[u8]) -> Format {
    match data {
        [b'M', b'Z', ..] => {
            if is_dotnet(data) {
                Format::Dotnet
            } else {
                Format::Pe
            }
        }
        [0x7f, b'E', b'L', b'F', ..] => Format::Elf,
        [0xfe, 0xed, 0xfa, 0xce | 0xcf, ..] | [0xce | 0xcf, 0xfa, 0xed, 0xfe, ..] => Format::Macho,
        // Fat Mach-O shares its magic with Java class files; a fat header
        // holds a small architecture count where a class file has versions.
        [0xca, 0xfe, 0xba, 0xbe, 0, 0, 0, n, ..] if *n > 0 && *n < 20 => Format::Macho,
        [b'#', b'!', ..] => Format::Script,
        _ => Format::Other,
    }
}

fn u16_at(d: &[u8], o: usize) -> Option<u16> {
    d.get(o..o + 2).map(|b| u16::from_le_bytes([b[0], b[1]]))
}

fn u32_at(d: &[u8], o: usize) -> Option<u32> {
    d.get(o..o + 4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// A PE whose CLR runtime header (data directory 14) is present.
fn is_dotnet(d: &[u8]) -> bool {
    let Some(pe) = u32_at(d, 0x3c).map(|v| v as usize) else {
        return false;
    };
    if d.get(pe..pe + 4) != Some(b"PE\0\0") {
        return false;
    }
    let opt = pe + 24;
    let dirs = match u16_at(d, opt) {
        Some(0x10b) => opt + 96,
        Some(0x20b) => opt + 112,
        _ => return false,
    };
    let Some(count) = u32_at(d, opt + if dirs == opt + 96 { 92 } else { 108 }) else {
        return false;
    };
    if count <= 14 {
        return false;
    }
    let clr = dirs + 14 * 8;
    matches!((u32_at(d, clr), u32_at(d, clr + 4)), (Some(rva), Some(size)) if rva != 0 && size != 0)
}

/// The coarse file type LOKI-style rules compare the `filetype` external
/// against: `detect` seen through LOKI's names (LOKI also takes any
/// `cafebabe` for Mach-O, where `detect` checks the fat header).
pub fn file_type(data: &[u8]) -> &'static str {
    match detect(data) {
        Format::Pe | Format::Dotnet => "EXE",
        Format::Elf => "ELF",
        Format::Macho => "MACHO",
        _ if data.starts_with(&[0xca, 0xfe, 0xba, 0xbe]) => "MACHO",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_corpus_formats() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
        let f = |p: &str| detect(&std::fs::read(root.join(p)).unwrap()).as_str();
        assert_eq!(f("npm/electron-winstaller-5.4.4/Squirrel.exe"), "dotnet");
        assert_eq!(f("npm/electron-winstaller-5.4.4/Setup.exe"), "pe");
        assert_eq!(f("pypi/ninja-1.11.1.3/manylinux_x86_64/ninja"), "elf");
        assert_eq!(f("pypi/ninja-1.11.1.3/macosx_universal2/ninja"), "macho");
        assert_eq!(f("npm/fsevents-2.3.3/fsevents.node"), "macho");
        assert_eq!(f("MANIFEST"), "other");
        assert_eq!(detect(b"#!/bin/sh\n"), Format::Script);
        assert_eq!(
            detect(&[0xca, 0xfe, 0xba, 0xbe, 0, 0, 0, 52]),
            Format::Other
        );
        for f in Format::ALL {
            assert_eq!(Format::by_name(f.as_str()), Some(f));
        }
    }

    #[test]
    fn file_types_by_magic() {
        assert_eq!(file_type(b"MZ\x90\x00"), "EXE");
        assert_eq!(file_type(b"\x7fELF\x02"), "ELF");
        assert_eq!(file_type(&[0xcf, 0xfa, 0xed, 0xfe]), "MACHO");
        assert_eq!(file_type(&[0xca, 0xfe, 0xba, 0xbe]), "MACHO");
        assert_eq!(file_type(b"#!/bin/sh"), "");
    }
}
