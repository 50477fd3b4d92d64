//! Borrow ids squeezed into 64 bits, so a stored event stays 16 bytes.
//!
//! A UUID (any 36-byte id hyphenated like one) keeps its first 16 hex digits (a prefix you can grep logs with), a decimal integer is kept
//! exactly, anything else keeps a 64-bit hash shown as `#` + 16 hex digits. Correlating a return
//! with its borrow only needs equality, which all three keep (collisions are ~2^-64).

pub(crate) const NONE: u8 = 0;
const UUID_PREFIX: u8 = 1;
const NUMBER: u8 = 2;
const HASH: u8 = 3;

/// Fixed seeds: the same id always gets the same code within and across instances.
fn hasher() -> ahash::RandomState {
    ahash::RandomState::with_seeds(0x5eed_0001, 0x5eed_0002, 0x5eed_0003, 0x5eed_0004)
}

/// Encodes an id into (kind, 64-bit code).
pub(crate) fn encode(id: &str) -> (u8, u64) {
    if let Some(prefix) = uuid_prefix(id) {
        return (UUID_PREFIX, prefix);
    }
    if let Ok(n) = id.parse::<u64>() {
        // Only the canonical spelling round-trips exactly ("007" or "+7" would not).
        if n.to_string() == id {
            return (NUMBER, n);
        }
    }
    (HASH, hasher().hash_one(id))
}

/// The display form of a stored id.
pub(crate) fn decode(kind: u8, code: u64) -> Option<String> {
    match kind {
        UUID_PREFIX => Some(format!(
            "{:08x}-{:04x}-{:04x}",
            code >> 32,
            (code >> 16) & 0xffff,
            code & 0xffff
        )),
        NUMBER => Some(code.to_string()),
        HASH => Some(format!("#{code:016x}")),
        _ => None,
    }
}

/// Hex digit values; 0x10 marks a non-digit. A table keeps the scan branch-free: random hex
/// digits made the obvious `match` mispredict on every other byte.
static HEX: [u8; 256] = {
    let mut table = [0x10u8; 256];
    let mut i = 0;
    while i < 10 {
        table[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        table[b'a' as usize + i] = 10 + i as u8;
        table[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    table
};

/// Positions of the first 16 hex digits of a hyphenated UUID.
const PREFIX_DIGITS: [usize; 16] = [0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 14, 15, 16, 17];

/// The first 16 hex digits of a UUID-shaped id (36 bytes, hyphens in place). Only those digits
/// are checked: the rest is not kept, and a non-UUID of exactly this shape still gets a stable
/// fingerprint.
fn uuid_prefix(id: &str) -> Option<u64> {
    let b = id.as_bytes();
    if b.len() != 36 || b[8] != b'-' || b[13] != b'-' || b[18] != b'-' || b[23] != b'-' {
        return None;
    }
    let mut invalid = 0u8;
    let mut prefix = 0u64;
    for i in PREFIX_DIGITS {
        let v = HEX[b[i] as usize];
        invalid |= v;
        prefix = prefix << 4 | (v & 0xf) as u64;
    }
    (invalid & 0x10 == 0).then_some(prefix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_keeps_its_prefix() {
        let (kind, code) = encode("550E8400-e29b-41d4-a716-446655440000");
        assert_eq!(decode(kind, code).as_deref(), Some("550e8400-e29b-41d4"));
    }

    #[test]
    fn numbers_round_trip_and_others_hash() {
        let (kind, code) = encode("18446744073709551615");
        assert_eq!(decode(kind, code).as_deref(), Some("18446744073709551615"));
        assert_eq!(encode("550e840g-e29b-41d4-a716-446655440000").0, HASH);
        assert_eq!(encode("550e8400-e29b-41d4-a716-4466554400").0, HASH);
        let (kind, code) = encode("007");
        assert_eq!(kind, HASH);
        assert_eq!(encode("007"), (kind, code));
        assert_ne!(encode("lease-a"), encode("lease-b"));
        assert!(decode(kind, code).unwrap().starts_with('#'));
        assert_eq!(decode(NONE, 0), None);
    }
}
