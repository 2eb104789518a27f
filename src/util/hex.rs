//! Byte formatting for evidence and hashes.

/// Lower-case hex of `bytes`, no separators.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 0xf) as usize] as char);
    }
    s
}

/// Hex with a space between bytes, as a hex editor shows it.
pub fn spaced_hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(&hex(&[*b]));
    }
    s
}

/// Printable ASCII rendering: bytes outside 0x20..=0x7e become `.`.
/// UTF-16LE text (a printable byte followed by NUL) shows its characters with
/// the NULs dropped, because that is how a reader recognises wide strings.
pub fn printable(bytes: &[u8]) -> String {
    let wide = bytes.len() >= 4
        && bytes
            .chunks(2)
            .all(|c| c.len() == 2 && (0x20..=0x7e).contains(&c[0]) && c[1] == 0);
    if wide {
        return bytes.chunks(2).map(|c| c[0] as char).collect();
    }
    bytes
        .iter()
        .map(|&b| {
            if (0x20..=0x7e).contains(&b) {
                b as char
            } else {
                '.'
            }
        })
        .collect()
}

/// Parse 64 hex digits into a sha256 digest.
/// Is `s` a sha256 in lowercase hex (as fpgate writes them)?
pub fn is_sha256(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

pub fn parse_sha256(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, chunk) in s.as_bytes().chunks(2).enumerate() {
        let hi = (chunk[0] as char).to_digit(16)?;
        let lo = (chunk[1] as char).to_digit(16)?;
        out[i] = (hi * 16 + lo) as u8;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_and_printable() {
        assert_eq!(hex(&[0x4d, 0x5a, 0x00, 0xff]), "4d5a00ff");
        assert_eq!(spaced_hex(&[0x4d, 0x5a]), "4d 5a");
        assert_eq!(printable(b"MZ\x90\x00ab"), "MZ..ab");
        assert_eq!(printable(b"U\0p\0d\0"), "Upd");
        let h = "ab".repeat(32);
        assert_eq!(hex(&parse_sha256(&h).unwrap()), h);
        assert!(parse_sha256("zz").is_none());
        assert!(parse_sha256(&"g".repeat(64)).is_none());
    }
}
