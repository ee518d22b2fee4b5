//! Bytes as lowercase hex and back: how byte strings travel in line-based and JSON formats
//! (the apply journal, strings that are not UTF-8 on the wire).

/// `bytes` as lowercase hex.
pub fn encode(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// The bytes `hex` spells; None if it is not an even number of hex digits.
pub fn decode(hex: &[u8]) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    hex.chunks(2)
        .map(|pair| std::str::from_utf8(pair).ok().and_then(|pair| u8::from_str_radix(pair, 16).ok()))
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trips_and_refuses_odd_input() {
        assert_eq!(super::encode(b"\x00\xffa"), "00ff61");
        assert_eq!(super::decode(b"00ff61").as_deref(), Some(&b"\x00\xffa"[..]));
        assert_eq!(super::decode(b"0"), None);
        assert_eq!(super::decode(b"zz"), None);
    }
}
