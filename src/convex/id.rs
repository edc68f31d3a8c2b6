//! Convex document ids (version 6): `VInt(table number) ++ 16-byte internal id
//! ++ Fletcher-16 footer`, written in lowercase Crockford base32.
//!
//! Decoding is strict, exactly as Convex's server decodes: the length is
//! checked first, then the alphabet, the table number, the footer, and
//! finally the id must re-encode to the very same text.

use std::fmt;

/// The base32 alphabet Convex uses (Crockford, lowercase, no `i l o u`).
const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// Maps an ASCII byte to its 5-bit value, or 0xFF when it is not in the alphabet.
const DECODE: [u8; 256] = {
    let mut table = [0xFFu8; 256];
    let mut i = 0;
    while i < 32 {
        table[ALPHABET[i] as usize] = i as u8;
        i += 1;
    }
    table
};

/// Length of the internal id in bytes.
pub const INTERNAL_ID_LEN: usize = 16;
/// Shortest valid id text (table number below 128).
pub const MIN_ID_LEN: usize = 31;
/// Longest valid id text (table number of five VInt bytes).
pub const MAX_ID_LEN: usize = 37;

/// A decoded document id: the table number and the 16-byte internal id.
///
/// This is the compact form kept in duplicate sets (20 bytes).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct DocumentId {
    /// The table number encoded in the id (never 0).
    pub table: u32,
    /// The 16 bytes that identify the document within its table.
    pub internal: [u8; INTERNAL_ID_LEN],
}

/// Why an id text does not decode. Every variant reads "Unable to decode ID: ...".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdDecodeError {
    /// Wrong length, leftover bytes, or a text that is not the canonical encoding.
    #[error("Unable to decode ID: Invalid ID length {0}")]
    InvalidLength(usize),
    /// A character outside the lowercase Crockford alphabet.
    #[error("Unable to decode ID: ID wasn't valid base32")]
    InvalidBase32,
    /// The VInt ran off the end of the bytes.
    #[error("Unable to decode ID: Invalid table number")]
    Truncated,
    /// The VInt is longer than five bytes.
    #[error("Unable to decode ID: Invalid table number")]
    TooLarge,
    /// The table number is zero.
    #[error("Unable to decode ID: Invalid table number")]
    ZeroTableNumber,
    /// The footer does not match the Fletcher-16 checksum (found, expected).
    #[error("Unable to decode ID: Invalid ID version {0} (expected {1})")]
    InvalidIdVersion(u16, u16),
}

/// Hashed as two integers rather than field by field (the derived hash also
/// writes the internal id's length): ids are hashed once a document.
impl std::hash::Hash for DocumentId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u128(u128::from_le_bytes(self.internal));
        state.write_u32(self.table);
    }
}

/// The bytes an id text decodes to (at most 23).
struct DecodedBytes {
    buf: [u8; 24],
    len: usize,
}

impl std::ops::Deref for DecodedBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl DocumentId {
    /// Builds an id from its parts.
    pub const fn new(table: u32, internal: [u8; INTERNAL_ID_LEN]) -> Self {
        DocumentId { table, internal }
    }

    /// Decodes an id text with Convex's strict rules.
    pub fn decode(text: &str) -> Result<Self, IdDecodeError> {
        Self::decode_bytes(text.as_bytes())
    }

    /// Decodes an id given as ASCII bytes (see [`DocumentId::decode`]).
    pub fn decode_bytes(text: &[u8]) -> Result<Self, IdDecodeError> {
        let (id, bytes, vint_len) = Self::decode_lenient(text)?;
        // Canonical form only, the text re-encoding would write: no spare
        // character, the unused low bits of the last one zero, and the
        // shortest VInt for the number, with no bits beyond 32.
        let len = text.len();
        let spare_bits = len * 5 - bytes.len() * 8;
        let last = DECODE[text[len - 1] as usize];
        let vint_canonical =
            vint_len == 1 || (bytes[vint_len - 1] != 0 && (vint_len < 5 || bytes[4] < 0x10));
        if spare_bits >= 5 || last & ((1 << spare_bits) - 1) != 0 || !vint_canonical {
            return Err(IdDecodeError::InvalidLength(len));
        }
        Ok(id)
    }

    /// Decodes an id text without the canonical-form checks: the id, the
    /// decoded bytes and the length of their VInt.
    #[inline]
    fn decode_lenient(text: &[u8]) -> Result<(Self, DecodedBytes, usize), IdDecodeError> {
        let len = text.len();
        if !(MIN_ID_LEN..=MAX_ID_LEN).contains(&len) {
            return Err(IdDecodeError::InvalidLength(len));
        }
        let mut buf = [0u8; 24];
        let n = base32_decode(text, &mut buf)?;
        let bytes = &buf[..n];
        let (table, vint_len) = read_vint(bytes)?;
        if table == 0 {
            return Err(IdDecodeError::ZeroTableNumber);
        }
        if bytes.len() < vint_len + INTERNAL_ID_LEN + 2 {
            return Err(IdDecodeError::InvalidLength(len));
        }
        let footer_at = vint_len + INTERNAL_ID_LEN;
        let found = u16::from_le_bytes([bytes[footer_at], bytes[footer_at + 1]]);
        let expected = fletcher16(&bytes[..footer_at]);
        if found != expected {
            return Err(IdDecodeError::InvalidIdVersion(found, expected));
        }
        if bytes.len() != footer_at + 2 {
            return Err(IdDecodeError::InvalidLength(len));
        }
        let mut internal = [0u8; INTERNAL_ID_LEN];
        internal.copy_from_slice(&bytes[vint_len..footer_at]);
        Ok((
            DocumentId { table, internal },
            DecodedBytes { buf, len: n },
            vint_len,
        ))
    }

    /// Writes the id's text into `out` and returns it as a slice of `out`.
    pub fn encode_into<'a>(&self, out: &'a mut [u8; MAX_ID_LEN]) -> &'a [u8] {
        let mut bytes = [0u8; 23];
        let mut n = write_vint(self.table, &mut bytes);
        bytes[n..n + INTERNAL_ID_LEN].copy_from_slice(&self.internal);
        n += INTERNAL_ID_LEN;
        let footer = fletcher16(&bytes[..n]).to_le_bytes();
        bytes[n..n + 2].copy_from_slice(&footer);
        n += 2;
        let len = base32_encode(&bytes[..n], out);
        &out[..len]
    }

    /// The id's text.
    pub fn encode(&self) -> String {
        let mut out = [0u8; MAX_ID_LEN];
        let text = self.encode_into(&mut out);
        // The alphabet is ASCII.
        String::from_utf8(text.to_vec()).expect("base32 output is ASCII")
    }

    /// Length of the text of an id with this table number.
    pub fn text_len(table: u32) -> usize {
        let vint = match table {
            0..=0x7F => 1,
            0x80..=0x3FFF => 2,
            0x4000..=0x1F_FFFF => 3,
            0x20_0000..=0x0FFF_FFFF => 4,
            _ => 5,
        };
        (vint + INTERNAL_ID_LEN + 2) * 8 / 5
            + usize::from(!((vint + INTERNAL_ID_LEN + 2) * 8).is_multiple_of(5))
    }
}

impl fmt::Display for DocumentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = [0u8; MAX_ID_LEN];
        let text = self.encode_into(&mut out);
        f.write_str(std::str::from_utf8(text).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for DocumentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DocumentId({}, {self})", self.table)
    }
}

/// Fletcher-16 with both sums modulo 256: `c1 << 8 | c0`.
fn fletcher16(bytes: &[u8]) -> u16 {
    // Byte i is added into c1 once for each of the n - i running sums c0
    // it is part of: two independent sums instead of a chain of additions.
    let n = bytes.len() as u32;
    let (mut c0, mut c1) = (0u32, 0u32);
    for (i, &b) in (0..).zip(bytes) {
        c0 = c0.wrapping_add(u32::from(b));
        c1 = c1.wrapping_add((n - i) * u32::from(b));
    }
    (((c1 & 0xFF) as u16) << 8) | (c0 & 0xFF) as u16
}

fn read_vint(bytes: &[u8]) -> Result<(u32, usize), IdDecodeError> {
    let mut value: u32 = 0;
    for i in 0..5 {
        let Some(&b) = bytes.get(i) else {
            return Err(IdDecodeError::Truncated);
        };
        // Bits beyond 32 are dropped here; the canonical re-encode check rejects them.
        value |= u32::from(b & 0x7F).checked_shl(7 * i as u32).unwrap_or(0);
        if b & 0x80 == 0 {
            return Ok((value, i + 1));
        }
    }
    Err(IdDecodeError::TooLarge)
}

fn write_vint(mut value: u32, out: &mut [u8]) -> usize {
    let mut n = 0;
    while value >= 0x80 {
        out[n] = (value as u8) | 0x80;
        value >>= 7;
        n += 1;
    }
    out[n] = value as u8;
    n + 1
}

/// Decodes `text` into `out`, most significant bit first; returns `len * 5 / 8` bytes.
fn base32_decode(text: &[u8], out: &mut [u8; 24]) -> Result<usize, IdDecodeError> {
    // Eight characters are 40 bits, five whole bytes: those groups need no
    // bit bookkeeping, and an invalid character (0xFF in the table) only
    // has to be noticed once, at the end.
    let mut invalid = 0u8;
    let mut n = 0;
    let groups = text.chunks_exact(8);
    let tail = groups.remainder();
    for group in groups {
        let mut acc = 0u64;
        for &c in group {
            let v = DECODE[c as usize];
            invalid |= v;
            acc = (acc << 5) | u64::from(v & 31);
        }
        out[n..n + 5].copy_from_slice(&acc.to_be_bytes()[3..]);
        n += 5;
    }
    let mut acc: u32 = 0;
    let mut bits = 0;
    for &c in tail {
        let v = DECODE[c as usize];
        invalid |= v;
        acc = (acc << 5) | u32::from(v & 31);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out[n] = (acc >> bits) as u8;
            n += 1;
        }
        acc &= (1 << bits) - 1;
    }
    if invalid > 31 {
        return Err(IdDecodeError::InvalidBase32);
    }
    Ok(n)
}

/// Encodes `bytes` without padding; unused low bits of the last character are zero.
fn base32_encode(bytes: &[u8], out: &mut [u8; MAX_ID_LEN]) -> usize {
    let mut acc: u32 = 0;
    let mut bits = 0;
    let mut n = 0;
    for &b in bytes {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out[n] = ALPHABET[((acc >> bits) & 31) as usize];
            n += 1;
        }
        acc &= (1 << bits) - 1;
    }
    if bits > 0 {
        out[n] = ALPHABET[((acc << (5 - bits)) & 31) as usize];
        n += 1;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The canonical-form rule as Convex states it: decode leniently, then
    /// the id must re-encode to the very same text.
    fn decode_by_re_encoding(text: &[u8]) -> Result<DocumentId, IdDecodeError> {
        let (id, _, _) = DocumentId::decode_lenient(text)?;
        let mut again = [0u8; MAX_ID_LEN];
        if id.encode_into(&mut again) != text {
            return Err(IdDecodeError::InvalidLength(text.len()));
        }
        Ok(id)
    }

    fn hex(s: &str) -> [u8; 16] {
        let mut out = [0u8; 16];
        for (i, o) in out.iter_mut().enumerate() {
            *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap();
        }
        out
    }

    #[test]
    fn stability_vector() {
        let mut internal = [0u8; 16];
        internal[0] = 251;
        for i in 1..16 {
            internal[i] = ((u32::from(internal[i - 1]) * 251) % 256) as u8;
        }
        let id = DocumentId::new(1017, internal);
        assert_eq!(id.encode(), "z43zp6c3e75gkmz1kfwj6mbbx5sw281h");
        assert_eq!(
            DocumentId::decode("z43zp6c3e75gkmz1kfwj6mbbx5sw281h"),
            Ok(id)
        );
    }

    #[test]
    fn literal_ids_from_convex() {
        let cases = [
            (
                "jd7f2yq3tcc5h4ce9qhqdk0ach6hbmyb",
                10003,
                "f17ae3d31858918e4de376cc0a644d15",
            ),
            (
                "j571sbvz5zj1ps44j9f433pf1n6s7egs",
                10001,
                "1caf7f2fe41b6484925e418ecf0d4d93",
            ),
            (
                "kg2ah8mk1xtg35g7zyexyc96e96yr74f",
                540,
                "a8a2930f75019607ff9ddf3126724dec",
            ),
            (
                "kg21pzwemsm55e1fnt2kcsvgjh6h6gtf",
                540,
                "1b7f8ea66852b82fae85366770944d13",
            ),
            (
                "k423gp2tq6nsw6ngwhkw72c3z17fkb5t",
                537,
                "38585ab9ab9e1ab0e467c38983f84ef9",
            ),
            (
                "4d9wy5r5x7rmjdjqnx45ct829fff4ar",
                35,
                "53cf1705e9f1493657af485669024bde",
            ),
            (
                "2rsfck4e88mvyb011h9k7znq9h1mb00",
                22,
                "32f64c8e4229bf2c010c5333feb74c43",
            ),
            (
                "3yvf0j22p6ez1rqyy5m379kz9kh4sar",
                31,
                "b6f04842b19df0e2fef16833a67f4ce2",
            ),
            (
                "2pj577m1qs11bje4wwb6abkt9wa3m6g",
                21,
                "a4539e81be4215c9c4e716652e7a4f14",
            ),
            (
                "074wwt1x3qmwz35bvscy44eq2yngrt8",
                1,
                "c9ce683d1de9cf8cabde59e211d717ab",
            ),
        ];
        for (text, table, internal) in cases {
            let id = DocumentId::decode(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(id, DocumentId::new(table, hex(internal)), "{text}");
            assert_eq!(id.encode(), text);
        }
    }

    #[test]
    fn computed_vectors_round_trip() {
        let seq: [u8; 16] = core::array::from_fn(|i| i as u8);
        let cases: [(u32, [u8; 16], &str); 13] = [
            (1, [0; 16], "0400000000000000000000000000248"),
            (1, [0xff; 16], "07zzzzzzzzzzzzzzzzzzzzzzzzzz328"),
            (1, seq, "040020g30g2gc1r81450p30d1r7qke8"),
            (127, [0x11; 16], "fw8h248h248h248h248h248h248ryxr"),
            (128, [0; 16], "g00g000000000000000000000000108h"),
            (10001, [0xff; 16], "j57fzzzzzzzzzzzzzzzzzzzzzzzzzkyr"),
            (16383, [1; 16], "zxzg2081040g2081040g2081040g33q5"),
            (16384, [2; 16], "g20020g2081040g2081040g2081040h1m4"),
            (2097151, [0xab; 16], "zzzqzaxbnentqaxbnentqaxbnentqasd48"),
            (2097152, [0; 16], "g2080080000000000000000000000000g68g"),
            (
                268435455,
                [0x5a; 16],
                "zzzzyzttb9d5mpjtb9d5mpjtb9d5mpjt3g30",
            ),
            (268435456, [0; 16], "g2081001000000000000000000000000000h2"),
            (
                4294967295,
                [0xff; 16],
                "zzzzzzrfzzzzzzzzzzzzzzzzzzzzzzzzzzxjj",
            ),
        ];
        for (table, internal, text) in cases {
            let id = DocumentId::new(table, internal);
            assert_eq!(id.encode(), text, "table {table}");
            assert_eq!(DocumentId::decode(text), Ok(id), "{text}");
            assert_eq!(DocumentId::text_len(table), text.len());
        }
    }

    #[test]
    fn invalid_ids() {
        use IdDecodeError::*;
        let cases: [(&str, IdDecodeError); 10] = [
            ("sssswsgggggggggsgcsssfafffsffks", InvalidLength(31)),
            ("mz1xn7tymdnktmmzqy5xxhn7tjs2nkkfmtjjr", InvalidLength(37)),
            ("003ge1r70w3ge1r70w3ge1r70w3q1e0", ZeroTableNumber),
            (
                "j57fzzzzzzzzzzzzzzzzzzzzzzzzzky0",
                InvalidIdVersion(49359, 55503),
            ),
            ("J57FZZZZZZZZZZZZZZZZZZZZZZZZZKYR", InvalidBase32),
            ("i57fzzzzzzzzzzzzzzzzzzzzzzzzzkyr", InvalidBase32),
            ("g400000000000000000000000000108j", InvalidLength(32)),
            ("s00g0000000000000000000000001j910", InvalidLength(33)),
            ("0m4gj289144gj289144gj289144sa79", InvalidLength(31)),
            ("000000000000000000000000000000", InvalidLength(30)),
        ];
        for (text, err) in cases {
            assert_eq!(DocumentId::decode(text), Err(err), "{text}");
        }
        assert_eq!(DocumentId::decode(&"0".repeat(38)), Err(InvalidLength(38)));
        assert_eq!(
            DocumentId::decode("j57fzzzzzzzzzzzzzzzzzzzzzzzzzky0")
                .unwrap_err()
                .to_string(),
            "Unable to decode ID: Invalid ID version 49359 (expected 55503)"
        );
    }

    proptest! {
        #[test]
        fn fletcher16_is_the_running_sums(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            let (mut c0, mut c1) = (0u8, 0u8);
            for &b in &bytes {
                c0 = c0.wrapping_add(b);
                c1 = c1.wrapping_add(c0);
            }
            prop_assert_eq!(fletcher16(&bytes), (u16::from(c1) << 8) | u16::from(c0));
        }

        #[test]
        fn one_character_outside_the_alphabet_anywhere_is_invalid_base32(
            at in 0usize..37,
            bad in any::<u8>().prop_filter("not base32", |c| !ALPHABET.contains(c)),
        ) {
            let mut text = DocumentId::new(10001, [7; 16]).encode().into_bytes();
            text.resize(37, b'0');
            text[at] = bad;
            let mut out = [0u8; 24];
            prop_assert_eq!(base32_decode(&text, &mut out), Err(IdDecodeError::InvalidBase32));
        }

        #[test]
        fn encode_decode_round_trip(table in 1u32.., internal in any::<[u8; 16]>()) {
            let id = DocumentId::new(table, internal);
            let text = id.encode();
            prop_assert_eq!(text.len(), DocumentId::text_len(table));
            prop_assert_eq!(DocumentId::decode(&text), Ok(id));
        }

        #[test]
        fn decoded_text_re_encodes_to_itself(text in "[0-9a-hjkmnp-tv-z]{31,37}") {
            if let Ok(id) = DocumentId::decode(&text) {
                prop_assert_eq!(id.encode(), text);
            }
        }

        #[test]
        fn decode_agrees_with_decoding_and_re_encoding(
            vint in proptest::collection::vec(any::<u8>(), 1..6),
            internal in any::<[u8; 16]>(),
            footer_ok in any::<bool>(),
            spare in 0u32..32,
            extra in proptest::option::of(0usize..32),
        ) {
            // Any VInt bytes (over-long ones too), a footer that matches or
            // not, stray low bits, and sometimes a spare character.
            let mut bytes = vint;
            bytes.extend_from_slice(&internal);
            let footer = fletcher16(&bytes).wrapping_add(u16::from(!footer_ok));
            bytes.extend_from_slice(&footer.to_le_bytes());
            let mut text = Vec::new();
            let (mut acc, mut bits) = (0u32, 0);
            for &b in &bytes {
                acc = (acc << 8) | u32::from(b);
                bits += 8;
                while bits >= 5 {
                    bits -= 5;
                    text.push(ALPHABET[((acc >> bits) & 31) as usize]);
                }
                acc &= (1 << bits) - 1;
            }
            if bits > 0 {
                let low = spare & ((1 << (5 - bits)) - 1);
                text.push(ALPHABET[(((acc << (5 - bits)) | low) & 31) as usize]);
            }
            if let Some(c) = extra {
                text.push(ALPHABET[c]);
            }
            prop_assert_eq!(
                DocumentId::decode_bytes(&text),
                decode_by_re_encoding(&text),
                "{}",
                String::from_utf8_lossy(&text)
            );
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..48)) {
            let _ = DocumentId::decode_bytes(&bytes);
        }
    }
}
