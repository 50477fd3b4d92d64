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

/// The first 16 hex digits of a UUID-shaped id (36 bytes, hyphens in place). Only those digits
/// are checked: the rest is not kept, and a non-UUID of exactly this shape still gets a stable
/// fingerprint.
fn uuid_prefix(id: &str) -> Option<u64> {
    let b = id.as_bytes();
    if b.len() != 36 || b[8] != b'-' || b[13] != b'-' || b[18] != b'-' || b[23] != b'-' {
        return None;
    }
    let word = |at: usize| -> u64 {
        let mut w = [0u8; 8];
        w.copy_from_slice(&b[at..at + 8]);
        u64::from_le_bytes(w)
    };
    let half = |at: usize| -> u64 {
        let mut w = [0u8; 4];
        w.copy_from_slice(&b[at..at + 4]);
        u32::from_le_bytes(w) as u64
    };
    let high = hex8(word(0))?;
    let low = hex8(half(9) | half(14) << 32)?;
    Some((high as u64) << 32 | low as u64)
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Eight ASCII hex digits (first digit in the lowest byte) to their value, all bytes at once.
/// Eight lookups or a `match` per byte cost a tenth of the whole record path; this is a handful
/// of integer operations and no branch per digit.
fn hex8(x: u64) -> Option<u32> {
    if x & HIGHS != 0 {
        return None;
    }
    // With every byte below 0x80, adding at most 0x50 to each cannot carry into the next byte,
    // so the high bit of each byte says whether it reached the bound.
    let at_least = |v: u64, lo: u8| v + ONES * (0x80 - lo as u64);
    let digit = at_least(x, b'0') & !at_least(x, b'9' + 1);
    let lower = x | (ONES * 0x20);
    let letter = at_least(lower, b'a') & !at_least(lower, b'f' + 1);
    if (digit | letter) & HIGHS != HIGHS {
        return None;
    }
    // '0'..'9' keep their low nibble; 'a'..'f' / 'A'..'F' (bit 0x40 set) add 9 to theirs.
    let nibbles = (x & (ONES * 0x0f)) + ((x & (ONES * 0x40)) >> 6) * 9;
    // First digit to the top, then squeeze the eight nibbles together.
    let mut v = nibbles.swap_bytes();
    v = (v | v >> 4) & 0x00ff_00ff_00ff_00ff;
    v = (v | v >> 8) & 0x0000_ffff_0000_ffff;
    v = (v | v >> 16) & 0x0000_0000_ffff_ffff;
    Some(v as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_keeps_its_prefix() {
        let (kind, code) = encode("550E8400-e29b-41d4-a716-446655440000");
        assert_eq!(decode(kind, code).as_deref(), Some("550e8400-e29b-41d4"));
    }

    /// The obvious per-byte parse, to check the word-at-a-time one against.
    fn hex8_reference(bytes: [u8; 8]) -> Option<u32> {
        bytes.iter().try_fold(0u32, |acc, &c| {
            let v = (c as char).to_digit(16)?;
            Some(acc << 4 | v)
        })
    }

    #[test]
    fn hex8_matches_the_per_byte_parse_for_every_byte_in_every_position() {
        let base = *b"0a1B2c3D";
        for pos in 0..8 {
            for c in 0..=255u8 {
                let mut bytes = base;
                bytes[pos] = c;
                assert_eq!(
                    hex8(u64::from_le_bytes(bytes)),
                    hex8_reference(bytes),
                    "byte {c:#04x} at {pos}"
                );
            }
        }
        // Pseudo-random words, mostly near the hex ranges.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let alphabet = b"0123456789abcdefABCDEF/:@G`g-";
        for _ in 0..200_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let bytes: [u8; 8] =
                std::array::from_fn(|i| alphabet[((state >> (i * 8)) as usize) % alphabet.len()]);
            assert_eq!(hex8(u64::from_le_bytes(bytes)), hex8_reference(bytes));
        }
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
