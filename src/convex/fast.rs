//! The fast path of [`super::value::check_document`]: one tight scan over
//! the bytes of a line that accepts only documents that are plainly valid —
//! well-formed JSON as serde_json accepts it, no escapes other than the short
//! ones, no `$` keys but, under the uniform rules, the exact `$integer`,
//! `$float` and `$bytes` wrappers (decoded), within every limit — and
//! computes the same [`CheckedDocument`]. Anything else (every error, other
//! `$` keys, system fields other than `_id` and `_creationTime`, `\u`
//! escapes, exponents) returns `None`, and the full checker, which has the
//! exact messages, takes over. Tests check the two agree.

use super::id::DocumentId;
use super::value::{
    decode_base64, decode_base64_into, CheckedDocument, IdField, ValueRules, MAX_ARRAY_LEN,
    MAX_CREATION_TIME, MAX_DOCUMENT_NESTING, MAX_DOCUMENT_SIZE, MAX_OBJECT_FIELDS,
};
use crate::convex::names::MAX_FIELD_NAME_LEN;

/// Deepest nesting the fast path follows (documents deeper than 16 are errors anyway).
const MAX_DEPTH: u32 = MAX_DOCUMENT_NESTING;

/// Checks a line that is plainly a valid document; `None` means "ask the full checker".
pub fn check_fast(
    line: &[u8],
    rules: ValueRules,
    table_number: Option<u32>,
) -> Option<CheckedDocument> {
    scan_document(line, false, rules, table_number)
        .and_then(|(end, doc)| (end == line.len()).then_some(doc))
}

/// [`check_fast`] for the first line of `text`, which ends at the first
/// `\n` or at the end of `text`: the line's length, and what `check_fast`
/// gives for it. The line is found by the scan itself where the line is
/// plainly valid, so the lines of a chunk are read once, not also searched
/// for their ends.
pub fn check_fast_line(
    text: &[u8],
    rules: ValueRules,
    table_number: Option<u32>,
) -> (usize, Option<CheckedDocument>) {
    match scan_document(text, true, rules, table_number) {
        Some((end, doc)) if matches!(text.get(end), None | Some(b'\n')) => (end, Some(doc)),
        _ => (memchr::memchr(b'\n', text).unwrap_or(text.len()), None),
    }
}

/// The scan of one document at the start of `b`: where it ends (after the
/// whitespace that follows it) and what it is, or `None` for "ask the full
/// checker". With `in_line`, a `\n` is not whitespace but the end of the
/// line, so the scan never reads past it: in a line it never meets one.
fn scan_document(
    b: &[u8],
    in_line: bool,
    rules: ValueRules,
    table_number: Option<u32>,
) -> Option<(usize, CheckedDocument)> {
    // UTF-8 is checked where it can occur, inside strings ([`Scan::string`]):
    // outside strings the scan accepts ASCII only.
    let mut s = Scan {
        b,
        in_line,
        rules,
        size: 2,
        max_depth: 1,
    };
    let mut i = s.expect(s.ws(0), b'{')?;
    let mut id = IdField::Absent;
    let mut has_creation_time = false;
    i = s.ws(i);
    if s.at(i) == Some(b'}') {
        i += 1;
    } else {
        let mut fields = 0usize;
        loop {
            let (after, key) = s.key(i)?;
            fields += 1;
            s.size += key.len() as u64 + 1;
            i = s.ws(s.expect(s.ws(after), b':')?);
            i = match key {
                b"_id" => {
                    let (after, text) = s.plain_string(i)?;
                    s.size += 2 + text.len() as u64;
                    id = match DocumentId::decode_bytes(text) {
                        Ok(decoded) => IdField::Valid(decoded),
                        // The full checker reports it with the text.
                        Err(_) => return None,
                    };
                    after
                }
                b"_creationTime" => {
                    let (after, integer) = s.number(i)?;
                    let text = &b[i..after];
                    if integer && rules == ValueRules::Uniform || !creation_time_in_range(text) {
                        return None;
                    }
                    s.size += 9;
                    has_creation_time = true;
                    after
                }
                _ if key.first() == Some(&b'_') => return None,
                _ => s.value(i, 1)?,
            };
            i = s.ws(i);
            match s.at(i) {
                Some(b',') => i = s.ws(i + 1),
                Some(b'}') => {
                    i += 1;
                    break;
                }
                _ => return None,
            }
        }
        // Convex adds the system fields a row lacks before it counts.
        let added = usize::from(id == IdField::Absent) + usize::from(!has_creation_time);
        if fields + added > MAX_OBJECT_FIELDS {
            return None;
        }
    }
    if s.max_depth > MAX_DOCUMENT_NESTING {
        return None;
    }
    let end = s.ws(i);
    let mut size = s.size;
    if id == IdField::Absent {
        size += 3 + 1 + 2 + DocumentId::text_len(table_number.unwrap_or(10001)) as u64;
    }
    if !has_creation_time {
        size += 13 + 1 + 9;
    }
    (size <= MAX_DOCUMENT_SIZE).then_some((end, CheckedDocument { id, size }))
}

/// The scan's state but for the cursor. Every step takes the index it
/// starts at and returns the one after what it read: passed by value, the
/// cursor stays in a register instead of going through memory at each call.
struct Scan<'a> {
    b: &'a [u8],
    /// `\n` ends the line rather than being whitespace.
    in_line: bool,
    rules: ValueRules,
    /// Convex's size of everything scanned so far (it is additive).
    size: u64,
    /// Deepest container seen; the document itself is depth 1.
    max_depth: u32,
}

impl<'a> Scan<'a> {
    /// The byte at `i`, if any.
    #[inline(always)]
    fn at(&self, i: usize) -> Option<u8> {
        self.b.get(i).copied()
    }

    /// Past the whitespace from `i` on.
    #[inline(always)]
    fn ws(&self, mut i: usize) -> usize {
        loop {
            match self.at(i) {
                Some(b' ' | b'\t' | b'\r') => i += 1,
                Some(b'\n') if !self.in_line => i += 1,
                _ => return i,
            }
        }
    }

    /// Past `c` at `i`, which must be there.
    #[inline(always)]
    fn expect(&self, i: usize, c: u8) -> Option<usize> {
        (self.at(i) == Some(c)).then_some(i + 1)
    }

    /// Past one value at `i` in a container at `depth`. Strings and numbers,
    /// most values, are read here, inlined into the loops over fields and
    /// elements; containers go through [`Scan::container`].
    #[inline(always)]
    fn value(&mut self, i: usize, depth: u32) -> Option<usize> {
        match self.at(i)? {
            b'"' => {
                let (after, len) = self.string(i)?;
                self.size += 2 + len;
                Some(after)
            }
            b'-' | b'0'..=b'9' => {
                self.size += 9;
                Some(self.number(i)?.0)
            }
            b'{' | b'[' => self.container(i, depth),
            b't' => self.literal(i, b"true"),
            b'f' => self.literal(i, b"false"),
            b'n' => self.literal(i, b"null"),
            _ => None,
        }
    }

    /// Past the object, array or `$` wrapper at `i`.
    #[inline(never)]
    fn container(&mut self, i: usize, depth: u32) -> Option<usize> {
        if self.b[i] == b'[' {
            self.array(i, depth + 1)
        } else if self.rules == ValueRules::Uniform && self.starts_wrapper(i) {
            self.wrapper(i)
        } else {
            self.object(i, depth + 1)
        }
    }

    /// Past `true`, `false` or `null` (`word`) at `i`: size 1.
    fn literal(&mut self, i: usize, word: &[u8]) -> Option<usize> {
        self.b[i..].starts_with(word).then(|| {
            self.size += 1;
            i + word.len()
        })
    }

    fn object(&mut self, i: usize, depth: u32) -> Option<usize> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.max_depth = self.max_depth.max(depth);
        self.size += 2;
        let mut i = self.ws(i + 1);
        if self.at(i) == Some(b'}') {
            return Some(i + 1);
        }
        let mut fields = 0usize;
        loop {
            let (after, key) = self.key(i)?;
            fields += 1;
            self.size += key.len() as u64 + 1;
            i = self.ws(self.expect(self.ws(after), b':')?);
            i = self.value(i, depth)?;
            i = self.ws(i);
            match self.at(i) {
                Some(b',') => i = self.ws(i + 1),
                Some(b'}') => return (fields <= MAX_OBJECT_FIELDS).then_some(i + 1),
                _ => return None,
            }
        }
    }

    fn array(&mut self, i: usize, depth: u32) -> Option<usize> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.max_depth = self.max_depth.max(depth);
        self.size += 2;
        let mut i = self.ws(i + 1);
        if self.at(i) == Some(b']') {
            return Some(i + 1);
        }
        let mut len = 0usize;
        loop {
            i = self.value(i, depth)?;
            i = self.ws(i);
            len += 1;
            match self.at(i) {
                Some(b',') => i = self.ws(i + 1),
                Some(b']') => return (len <= MAX_ARRAY_LEN).then_some(i + 1),
                _ => return None,
            }
        }
    }

    /// True when the object at `i` starts with a `$` key.
    fn starts_wrapper(&self, i: usize) -> bool {
        self.b[self.ws(i + 1)..].starts_with(b"\"$")
    }

    /// Past `{"$integer": "<b64>"}`, `{"$float": "<b64>"}` (only the floats
    /// JSON cannot write) or `{"$bytes": "<b64>"}` at `i`, exactly.
    fn wrapper(&mut self, i: usize) -> Option<usize> {
        let (i, key) = self.plain_string(self.ws(i + 1))?;
        let (i, payload) = self.plain_string(self.ws(self.expect(self.ws(i), b':')?))?;
        let i = self.expect(self.ws(i), b'}')?;
        // Numbers take 8 bytes: a small buffer saves an allocation.
        let mut small = [0u8; 64];
        let len = match decode_base64_into(payload, &mut small) {
            Some(len) => len,
            None => decode_base64(std::str::from_utf8(payload).ok()?)
                .ok()?
                .len(),
        };
        let bytes = small.get(..len).unwrap_or_default();
        self.size += match key {
            b"$integer" if len == 8 => 9,
            b"$float" if len == 8 => {
                let value = f64::from_le_bytes(bytes.try_into().ok()?);
                if value.is_normal() || value.is_subnormal() {
                    return None;
                }
                9
            }
            b"$bytes" => 2 + len as u64,
            _ => return None,
        };
        Some(i)
    }

    /// An object key at `i`: printable ASCII without escapes, not starting
    /// with `$`.
    #[inline(always)]
    fn key(&self, i: usize) -> Option<(usize, &'a [u8])> {
        let (after, text) = self.plain_string(i)?;
        (text.len() <= MAX_FIELD_NAME_LEN && text.first() != Some(&b'$')).then_some((after, text))
    }

    /// A string of printable ASCII without escapes at `i` (a key, an id,
    /// base64): past it, and its bytes.
    #[inline(always)]
    fn plain_string(&self, i: usize) -> Option<(usize, &'a [u8])> {
        let start = self.expect(i, b'"')?;
        let end = start + string_stop::<true>(&self.b[start..])?;
        (self.b[end] == b'"').then(|| (end + 1, &self.b[start..end]))
    }

    /// A string with at most the short escapes at `i`: past it, and its
    /// decoded length.
    #[inline(always)]
    fn string(&self, i: usize) -> Option<(usize, u64)> {
        let mut i = i + 1;
        let mut len = 0u64;
        loop {
            let end = i + string_stop::<false>(&self.b[i..])?;
            len += (end - i) as u64;
            match self.b[end] {
                b'"' => return Some((end + 1, len)),
                b'\\' => {}
                // Non-ASCII: one UTF-8 character, then on.
                0x80.. => {
                    let width = utf8_char_width(&self.b[end..])?;
                    len += width as u64;
                    i = end + width;
                    continue;
                }
                // A control character.
                _ => return None,
            }
            match self.at(end + 1)? {
                b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {
                    len += 1;
                    i = end + 2;
                }
                _ => return None,
            }
        }
    }

    /// A number in JSON's grammar without an exponent at `i`: past it, and
    /// whether it is an integer.
    #[inline(always)]
    fn number(&self, i: usize) -> Option<(usize, bool)> {
        let start = i;
        let mut i = i + usize::from(self.at(i) == Some(b'-'));
        match self.at(i)? {
            b'0' => i += 1,
            b'1'..=b'9' => i = self.digits(i),
            _ => return None,
        }
        let mut integer = true;
        if self.at(i) == Some(b'.') {
            let after = self.digits(i + 1);
            if after == i + 1 {
                return None;
            }
            i = after;
            integer = false;
        }
        match self.at(i) {
            // Exponents can overflow, which serde_json rejects: leave them to the full checker.
            Some(b'e' | b'E') => return None,
            // "01" is not a number.
            Some(b'0'..=b'9') => return None,
            _ => {}
        }
        // Sizes are the same for Int64 and Float64; only numbers too big for
        // a float are errors (serde_json rejects them).
        (i - start <= 300).then_some((i, integer))
    }

    /// Past the run of ASCII digits at `i`, eight at a time while eight remain.
    #[inline(always)]
    fn digits(&self, mut i: usize) -> usize {
        const ONES: u64 = 0x0101_0101_0101_0101;
        while let Some(word) = self.b[i..].first_chunk::<8>() {
            // A byte is a digit when, xor '0', it is below 10; adding 0x76
            // sets its high bit otherwise. Carries only go up from a byte
            // that is not a digit, so the lowest set bit is exact.
            let v = u64::from_le_bytes(*word) ^ (ONES * 0x30);
            let not_digit = (v.wrapping_add(ONES * 0x76) | v) & (ONES * 0x80);
            if not_digit != 0 {
                return i + (not_digit.trailing_zeros() / 8) as usize;
            }
            i += 8;
        }
        while let Some(b'0'..=b'9') = self.at(i) {
            i += 1;
        }
        i
    }
}

/// Whether a `_creationTime` (a number's text, no exponent) is in Convex's
/// range `0 < t < 2^53`: decided from the digits when the integer part has at
/// most 15 (below 2^53 whatever the fraction), by parsing otherwise.
fn creation_time_in_range(text: &[u8]) -> bool {
    if text.first() == Some(&b'-') {
        return false;
    }
    let integer_digits = text.iter().position(|&c| c == b'.').unwrap_or(text.len());
    if integer_digits <= 15 {
        return text.iter().any(|&c| matches!(c, b'1'..=b'9'));
    }
    std::str::from_utf8(text)
        .ok()
        .and_then(|t| t.parse::<f64>().ok())
        .is_some_and(|t| t > 0.0 && t < MAX_CREATION_TIME)
}

/// The width of the UTF-8 character `bytes` starts with (its first byte is
/// not ASCII), or `None` if it is not one as `str::from_utf8` decides:
/// shortest forms of Unicode scalar values, Table 3-7 of the Unicode standard.
#[inline]
fn utf8_char_width(bytes: &[u8]) -> Option<usize> {
    let (width, second) = match *bytes.first()? {
        0xC2..=0xDF => (2, 0x80..=0xBF),
        0xE0 => (3, 0xA0..=0xBF),
        0xE1..=0xEC | 0xEE..=0xEF => (3, 0x80..=0xBF),
        0xED => (3, 0x80..=0x9F),
        0xF0 => (4, 0x90..=0xBF),
        0xF1..=0xF3 => (4, 0x80..=0xBF),
        0xF4 => (4, 0x80..=0x8F),
        _ => return None,
    };
    let sequence = bytes.get(..width)?;
    (second.contains(&sequence[1]) && sequence[2..].iter().all(|&c| c & 0xC0 == 0x80))
        .then_some(width)
}

/// Where the first byte that ends a run of plain string content is: `"`,
/// `\\`, a control character (below 0x20), a non-ASCII byte, and with `DEL`
/// 0x7F too (so that what runs to a `"` is printable ASCII). Looked for
/// sixteen bytes at a time where the target has 128-bit SIMD (x86-64's SSE2,
/// WebAssembly's simd128), eight at a time otherwise and at the end.
#[inline]
fn string_stop<const DEL: bool>(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut at = 0;
    #[cfg(any(
        target_arch = "x86_64",
        all(target_arch = "wasm32", target_feature = "simd128")
    ))]
    while let Some(block) = bytes[at..].first_chunk::<16>() {
        let found = simd::string_stops::<DEL>(block);
        if found != 0 {
            return Some(at + found.trailing_zeros() as usize);
        }
        at += 16;
    }
    // A byte's high bit is set in `zero(x)` where x's byte is zero; a borrow
    // can only set bits above a byte that is, so the lowest is exact.
    let zero = |x: u64| x.wrapping_sub(ONES) & !x;
    let mut words = bytes[at..].chunks_exact(8);
    for word in &mut words {
        let v = u64::from_le_bytes(word.try_into().ok()?);
        let mut found = zero(v ^ (ONES * u64::from(b'"')))
            | zero(v ^ (ONES * u64::from(b'\\')))
            // Below 0x20, or with the high bit set.
            | (v.wrapping_sub(ONES * 0x20) & !v)
            | v;
        if DEL {
            found |= zero(v ^ (ONES * 0x7F));
        }
        found &= HIGH;
        if found != 0 {
            return Some(at + (found.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    let rest = words.remainder();
    let p = rest
        .iter()
        .position(|&c| c == b'"' || c == b'\\' || !(0x20..0x80).contains(&c) || DEL && c == 0x7F)?;
    Some(at + p)
}

/// [`string_stop`]'s sixteen-byte step: one bit per byte of `block` that
/// ends plain string content. Compared as signed bytes, those from 0x80 up
/// are negative, so "below 0x20" takes in the non-ASCII ones too.
mod simd {
    #[cfg(target_arch = "x86_64")]
    #[inline]
    pub fn string_stops<const DEL: bool>(block: &[u8; 16]) -> u32 {
        use std::arch::x86_64::*;
        // SAFETY: SSE2 is part of x86-64; the load reads the 16 bytes of `block`.
        unsafe {
            let v = _mm_loadu_si128(block.as_ptr().cast());
            let quote = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8));
            let backslash = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8));
            let control_or_high = _mm_cmplt_epi8(v, _mm_set1_epi8(0x20));
            let mut stops = _mm_or_si128(_mm_or_si128(quote, backslash), control_or_high);
            if DEL {
                stops = _mm_or_si128(stops, _mm_cmpeq_epi8(v, _mm_set1_epi8(0x7F)));
            }
            _mm_movemask_epi8(stops) as u32
        }
    }

    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    #[inline]
    pub fn string_stops<const DEL: bool>(block: &[u8; 16]) -> u32 {
        use std::arch::wasm32::*;
        // SAFETY: the load reads the 16 bytes of `block`.
        let v = unsafe { v128_load(block.as_ptr().cast()) };
        let quote = u8x16_eq(v, u8x16_splat(b'"'));
        let backslash = u8x16_eq(v, u8x16_splat(b'\\'));
        let control_or_high = i8x16_lt(v, i8x16_splat(0x20));
        let mut stops = v128_or(v128_or(quote, backslash), control_or_high);
        if DEL {
            stops = v128_or(stops, u8x16_eq(v, u8x16_splat(0x7F)));
        }
        u32::from(u8x16_bitmask(stops))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convex::value::check_document;
    use proptest::prelude::*;

    /// Whether `run` is UTF-8, character by character as the scan reads it.
    fn is_utf8(run: &[u8]) -> bool {
        let mut i = 0;
        while let Some(&c) = run.get(i) {
            match if c < 0x80 {
                Some(1)
            } else {
                utf8_char_width(&run[i..])
            } {
                Some(width) => i += width,
                None => return false,
            }
        }
        true
    }

    fn agree(line: &str) -> bool {
        agree_repeating(line, false)
    }

    /// [`agree`] for a line whose objects may repeat a key (`repeats`).
    fn agree_repeating(line: &str, repeats: bool) -> bool {
        let mut hit = false;
        for rules in [ValueRules::Uniform, ValueRules::Plain] {
            agree_in_chunk(line.as_bytes(), rules);
            if let Some(fast) = check_fast(line.as_bytes(), rules, Some(10001)) {
                hit = true;
                let full = check_document(line, rules, 1, Some(10001));
                let full = full.unwrap_or_else(|e| panic!("{line} {rules:?}: {e:?}"));
                assert_eq!(full.id, fast.id, "{line} {rules:?}");
                // A repeated key counts once for Convex (its last value) and
                // at each repeat for the fast scan, which needs only an upper
                // bound: a size past the limit sends the line to the full check.
                match repeats {
                    true => assert!(full.size <= fast.size, "{line} {rules:?}"),
                    false => assert_eq!(full.size, fast.size, "{line} {rules:?}"),
                }
            }
        }
        hit
    }

    /// [`check_fast_line`] finds the first line of `text`, followed by
    /// more lines as in a chunk, and judges it as [`check_fast`] does.
    fn agree_in_chunk(text: &[u8], rules: ValueRules) {
        let first = text.split(|&c| c == b'\n').next().unwrap_or_default();
        for next in [&b""[..], b"\n", b"\n{\"x\":1}", b"\n\"x\":1}"] {
            let chunk = [text, next].concat();
            let (len, doc) = check_fast_line(&chunk, rules, Some(10001));
            assert_eq!(len, first.len(), "{:?}", String::from_utf8_lossy(&chunk));
            assert_eq!(doc, check_fast(first, rules, Some(10001)));
        }
    }

    #[test]
    fn plain_documents_take_the_fast_path_and_agree() {
        let id = DocumentId::new(10001, [7; 16]);
        let lines = [
            format!(r#"{{"_creationTime":1700000000000.5,"_id":"{id}","a":"x","b":[1,-2.5,true,null,{{"c":"d\n"}}],"e":{{}}}}"#),
            r#"{"foo":"bar"}"#.to_owned(),
            r#" { "a" : [ ] , "b" : "\"quoted\" \\ \/ \t" } "#.to_owned(),
            r#"{"héllo":1}"#.replace("héllo", "hello"),
            r#"{"s":"héllo wörld"}"#.to_owned(),
            "{}".to_owned(),
            r#"{"n":-0,"m":0.0,"big":123456789012345678}"#.to_owned(),
            r#"{"b":{"$bytes":"aGVsbG8="},"i":[{"$integer":"AQAAAAAAAAA="}],"f":{ "$float" : "AAAAAAAA+H8=" }}"#.to_owned(),
        ];
        for line in &lines {
            assert!(agree(line), "fast path not taken for {line}");
        }
    }

    #[test]
    fn bytes_of_any_length_take_the_fast_path_and_agree() {
        use base64::Engine;
        // Around the small buffer's 64 bytes, and past it.
        for len in [0, 1, 8, 63, 64, 65, 130] {
            let payload = base64::engine::general_purpose::STANDARD.encode(vec![7u8; len]);
            let line = format!(r#"{{"b":{{"$bytes":"{payload}"}}}}"#);
            assert!(agree(&line), "{line}");
            let bad = format!(r#"{{"b":{{"$bytes":"{payload}!"}}}}"#);
            assert_eq!(
                check_fast(bad.as_bytes(), ValueRules::Uniform, Some(10001)),
                None
            );
        }
    }

    /// Runs in both builds: WebAssembly has its own 16-byte search.
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn string_stops_are_found_wherever_they_are() {
        for stop in [b'"', b'\\', 0x00, 0x1F, 0x7F, 0x80, 0xC3, 0xFF] {
            for at in 0..40 {
                // Plain bytes around the stop, the edges of the plain range too.
                let mut run: Vec<u8> = (0..48).map(|i| [b'a', 0x20, 0x7E, b'!'][i % 4]).collect();
                run[at] = stop;
                let found = (stop != 0x7F).then_some(at);
                assert_eq!(string_stop::<false>(&run), found, "{stop:#x} at {at}");
                assert_eq!(string_stop::<true>(&run), Some(at), "{stop:#x} at {at}");
                assert_eq!(string_stop::<true>(&run[..at]), None, "{stop:#x} at {at}");
            }
        }
    }

    #[test]
    fn digit_runs_end_where_the_digits_do() {
        // Runs across the eight-at-a-time boundary, then every kind of end.
        for len in 1..=20 {
            let digits: String = "1234567890".repeat(2)[..len].to_owned();
            for (end, fast) in [
                ("}", true),
                (",\"b\":1}", true),
                (".5}", true),
                (" }", true),
                ("e5}", false),
                ("x}", false),
                ("\u{7f}}", false),
                ("/}", false),
                (":}", false),
            ] {
                let line = format!(r#"{{"a":{digits}{end}"#);
                assert_eq!(agree(&line), fast, "{line}");
            }
        }
    }

    #[test]
    fn anything_unusual_falls_back() {
        for line in [
            r#"{"a":1e5}"#,
            r#"{"a":"\u00e9"}"#,
            r#"{"$a":1}"#,
            r#"{"a":{"$integer":"AQAAAA=="}}"#,
            r#"{"a":{"$float":"AAAAAAAA8D8="}}"#,
            r#"{"a":{"$bytes":"aGk=","x":1}}"#,
            r#"{"a":{"$set":"aGk="}}"#,
            r#"{"_x":1}"#,
            r#"{"a":01}"#,
            r#"{"a":1.}"#,
            r#"{"a":1,}"#,
            r#"{"a":1} x"#,
            r#"{"a":[1,]}"#,
            r#"{"a":tru}"#,
            r#"{"_id":"nope"}"#,
            r#"{"_creationTime":1700000000000}"#,
            r#"{"a":"tab	in"}"#,
            "[1]",
            "",
        ] {
            assert_eq!(
                check_fast(line.as_bytes(), ValueRules::Uniform, Some(10001)),
                None,
                "{line}"
            );
        }
        // Plain rules take an integer creation time.
        assert!(check_fast(
            br#"{"_creationTime":1700000000000}"#,
            ValueRules::Plain,
            None
        )
        .is_some());
    }

    #[test]
    fn every_sequence_of_up_to_three_bytes_is_judged_as_std_judges_it() {
        for lead in 0x80..=0xFFu8 {
            for second in 0..=0xFFu8 {
                assert_eq!(
                    is_utf8(&[lead, second]),
                    std::str::from_utf8(&[lead, second]).is_ok()
                );
                for third in 0..=0xFFu8 {
                    let run = [lead, second, third];
                    assert_eq!(is_utf8(&run), std::str::from_utf8(&run).is_ok(), "{run:x?}");
                }
            }
        }
        // Four bytes: every lead with the edges of each continuation range.
        for lead in 0xF0..=0xFFu8 {
            for second in [0x7F, 0x80, 0x8F, 0x90, 0xBF, 0xC0] {
                for rest in [0x7F, 0x80, 0xBF, 0xC0] {
                    let run = [lead, second, rest, rest];
                    assert_eq!(is_utf8(&run), std::str::from_utf8(&run).is_ok(), "{run:x?}");
                }
            }
        }
    }

    #[test]
    fn creation_times_in_range_are_decided_as_a_parse_would() {
        for text in [
            "1",
            "0",
            "0.0",
            "-1",
            "0.0001",
            "1700000000000.5",
            "999999999999999.99",
            "9007199254740991",
            "9007199254740992",
            "9007199254740991.6",
            "9007199254740993",
            "-0.0",
            "00",
            "12345678901234567890",
        ] {
            let t: f64 = text.parse().unwrap();
            assert_eq!(
                creation_time_in_range(text.as_bytes()),
                t > 0.0 && t < MAX_CREATION_TIME,
                "{text}"
            );
        }
    }

    proptest! {
        #[test]
        fn utf8_runs_are_judged_as_std_judges_them(
            run in proptest::collection::vec(prop_oneof![0x80u8..=0xFF, 0u8..0x80, any::<u8>()], 0..12),
        ) {
            prop_assert_eq!(is_utf8(&run), std::str::from_utf8(&run).is_ok());
        }

        #[test]
        fn utf8_text_is_utf8(text in "\\PC{0,8}") {
            prop_assert!(is_utf8(text.as_bytes()));
        }

        #[test]
        fn creation_time_range_agrees_with_parsing(text in "-?[0-9]{1,20}(\\.[0-9]{1,20})?") {
            let t: f64 = text.parse().unwrap();
            prop_assert_eq!(creation_time_in_range(text.as_bytes()), t > 0.0 && t < MAX_CREATION_TIME);
        }

        #[test]
        fn fast_never_accepts_what_the_full_checker_rejects(line in r#"[{}\[\]":,0-9a-z_ .\\-]{0,48}"#) {
            agree(&line);
        }

        #[test]
        fn fast_agrees_on_any_bytes_in_strings(
            content in proptest::collection::vec(
                prop_oneof![Just(b'"'), Just(b'\\'), 0u8..0x21, 0x7Eu8..=0xFF, any::<u8>()],
                0..24,
            ),
        ) {
            let mut line = br#"{"k":["x","#.to_vec();
            line.extend_from_slice(&content);
            line.extend_from_slice(br#"",1]}"#);
            match std::str::from_utf8(&line) {
                Ok(text) => { agree(text); }
                Err(_) => {
                    for rules in [ValueRules::Uniform, ValueRules::Plain] {
                        prop_assert_eq!(check_fast(&line, rules, Some(10001)), None);
                        agree_in_chunk(&line, rules);
                    }
                }
            }
        }

        #[test]
        fn fast_agrees_on_structured_documents(
            keys in proptest::collection::vec("[a-z_$]{0,6}", 0..6),
            values in proptest::collection::vec(r#"(-?[0-9]{1,20}(\.[0-9]{1,3})?|"[a-z\\"]{0,5}"|true|null|\[\]|\{\}|\[1,"x"\]|\{"\$(bytes|integer|float|x)":"[A-Za-z0-9+/=]{0,12}"\})"#, 0..6),
        ) {
            let fields: Vec<String> = keys.iter().zip(&values).map(|(k, v)| format!("\"{k}\":{v}")).collect();
            let distinct: std::collections::HashSet<_> = keys.iter().take(fields.len()).collect();
            agree_repeating(&format!("{{{}}}", fields.join(",")), distinct.len() < fields.len());
        }
    }
}
