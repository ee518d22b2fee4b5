//! Bytes as lowercase hex and back: how byte strings travel in line-based and JSON formats
//! (the apply journal, strings that are not UTF-8 on the wire).

const DIGITS: &[u8; 16] = b"0123456789abcdef";

/// `bytes` as lowercase hex.
pub fn encode(bytes: &[u8]) -> String {
    let mut hex = String::with_capacity(bytes.len() * 2);
    encode_into(bytes, &mut hex);
    hex
}

/// Appends `bytes` as lowercase hex to `out` (no allocation per line where many are written).
pub fn encode_into(bytes: &[u8], out: &mut String) {
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0xf)]));
    }
}

/// The bytes `hex` spells (either case); None if it is not an even number of hex digits.
pub fn decode(hex: &[u8]) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    hex.chunks_exact(2).map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?)).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trips_and_refuses_odd_input() {
        assert_eq!(super::encode(b"\x00\xffa"), "00ff61");
        assert_eq!(super::decode(b"00ff61").as_deref(), Some(&b"\x00\xffa"[..]));
        assert_eq!(super::decode(b"0"), None);
        assert_eq!(super::decode(b"zz"), None);
        assert_eq!(super::decode(b"+f"), None, "a sign is not a digit");
        assert_eq!(super::decode(b"0A").as_deref(), Some(&b"\x0a"[..]));
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(super::decode(super::encode(&all).as_bytes()), Some(all));
    }
}
