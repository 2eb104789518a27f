//! Coarse file format from magic bytes, for the corpus lock and reports.

/// Every name `detect` returns.
pub const NAMES: &[&str] = &["pe", "dotnet", "elf", "macho", "script", "other"];

/// The `detect` name equal to `name` (for names read back from a cache or
/// a partial report).
pub fn by_name(name: &str) -> Option<&'static str> {
    NAMES.iter().copied().find(|n| *n == name)
}

/// One of "pe", "dotnet", "elf", "macho", "script", "other".
pub fn detect(data: &[u8]) -> &'static str {
    match data {
        [b'M', b'Z', ..] => {
            if is_dotnet(data) {
                "dotnet"
            } else {
                "pe"
            }
        }
        [0x7f, b'E', b'L', b'F', ..] => "elf",
        [0xfe, 0xed, 0xfa, 0xce | 0xcf, ..] | [0xce | 0xcf, 0xfa, 0xed, 0xfe, ..] => "macho",
        // Fat Mach-O shares its magic with Java class files; a fat header
        // holds a small architecture count where a class file has versions.
        [0xca, 0xfe, 0xba, 0xbe, 0, 0, 0, n, ..] if *n > 0 && *n < 20 => "macho",
        [b'#', b'!', ..] => "script",
        _ => "other",
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
/// against: a second view of the same magic bytes, kept as LOKI defines it
/// (any `cafebabe` is "MACHO" there, where `detect` checks the fat header).
pub fn file_type(data: &[u8]) -> &'static str {
    match data {
        [b'M', b'Z', ..] => "EXE",
        [0x7f, b'E', b'L', b'F', ..] => "ELF",
        [0xfe, 0xed, 0xfa, 0xce | 0xcf, ..]
        | [0xce | 0xcf, 0xfa, 0xed, 0xfe, ..]
        | [0xca, 0xfe, 0xba, 0xbe, ..] => "MACHO",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_corpus_formats() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
        let f = |p: &str| detect(&std::fs::read(root.join(p)).unwrap());
        assert_eq!(f("npm/electron-winstaller-5.4.4/Squirrel.exe"), "dotnet");
        assert_eq!(f("npm/electron-winstaller-5.4.4/Setup.exe"), "pe");
        assert_eq!(f("pypi/ninja-1.11.1.3/manylinux_x86_64/ninja"), "elf");
        assert_eq!(f("pypi/ninja-1.11.1.3/macosx_universal2/ninja"), "macho");
        assert_eq!(f("npm/fsevents-2.3.3/fsevents.node"), "macho");
        assert_eq!(f("MANIFEST"), "other");
        assert_eq!(detect(b"#!/bin/sh\n"), "script");
        assert_eq!(detect(&[0xca, 0xfe, 0xba, 0xbe, 0, 0, 0, 52]), "other");
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
