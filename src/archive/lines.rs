//! Splitting a byte stream into lines with reusable buffers: [`LineReader`]
//! hands out lines one at a time as borrowed slices, [`ChunkReader`] fills
//! buffers with runs of whole lines that can be checked on another thread.

use std::io::{self, Read};

/// Buffer size to start with; it grows for longer lines, up to the limit.
const INITIAL_BUFFER: usize = 1 << 20;

/// Reads `\n`-separated lines (the `\n` is not part of the line; a `\r`
/// before it stays, as JSON whitespace). A final line without `\n` counts;
/// an empty stream has no lines.
pub struct LineReader<R> {
    inner: R,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// Bytes before `end` already known to hold no `\n`.
    scanned: usize,
    eof: bool,
    line: u64,
    max_line: usize,
    consumed: u64,
}

impl<R: Read> LineReader<R> {
    /// A reader whose lines may be at most `max_line` bytes.
    pub fn new(inner: R, max_line: usize) -> Self {
        LineReader {
            inner,
            buf: vec![0; INITIAL_BUFFER.min(max_line.max(64))],
            start: 0,
            end: 0,
            scanned: 0,
            eof: false,
            line: 0,
            max_line,
            consumed: 0,
        }
    }

    /// Number of the line last returned (1-based).
    pub fn line_number(&self) -> u64 {
        self.line
    }

    /// Bytes consumed so far, newlines included.
    pub fn bytes_consumed(&self) -> u64 {
        self.consumed
    }

    /// The next line with its 1-based number, or `None` at the end.
    pub fn next_line(&mut self) -> Option<(u64, Result<&[u8], LineError>)> {
        let (row, line) = self.next_line_with_end()?;
        Some((row, line.map(|line| without_newline(line).0)))
    }

    /// [`next_line`](Self::next_line), with the `\n` that ends the line
    /// when one does ([`without_newline`] tells).
    pub fn next_line_with_end(&mut self) -> Option<(u64, Result<&[u8], LineError>)> {
        let (from, to) = loop {
            let unscanned = self.start.max(self.scanned);
            if let Some(pos) = memchr::memchr(b'\n', &self.buf[unscanned..self.end]) {
                let at = unscanned + pos;
                let from = self.start;
                self.start = at + 1;
                self.scanned = self.start;
                break (from, at);
            }
            self.scanned = self.end;
            if self.eof {
                if self.start == self.end {
                    return None;
                }
                let from = self.start;
                self.start = self.end;
                break (from, self.end);
            }
            if let Err(e) = self.fill() {
                return Some((self.line + 1, Err(e)));
            }
        };
        self.line += 1;
        let newline = usize::from(self.start > to);
        self.consumed += (to - from + newline) as u64;
        Some((self.line, Ok(&self.buf[from..to + newline])))
    }

    fn fill(&mut self) -> Result<(), LineError> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.scanned -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            // Room for a line of `max_line` bytes and its newline, or the
            // end of the input after it.
            if self.buf.len() > self.max_line {
                return Err(LineError::LineTooLong);
            }
            let grown = (self.buf.len() * 2).min(self.max_line + 1);
            self.buf.resize(grown, 0);
        }
        loop {
            match self.inner.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(());
                }
                Ok(n) => {
                    self.end += n;
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(LineError::Read(e)),
            }
        }
    }
}

/// A line read with its end ([`LineReader::next_line_with_end`]) without
/// it, and whether it had a `\n`.
pub fn without_newline(line: &[u8]) -> (&[u8], bool) {
    match line.strip_suffix(b"\n") {
        Some(text) => (text, true),
        None => (line, false),
    }
}

/// Whether `bytes` start with a UTF-16 byte order mark (either byte
/// order): a file saved as UTF-16, as some editors and spreadsheets save
/// "Unicode text", which no importer of UTF-8 reads.
pub fn starts_as_utf16(bytes: &[u8]) -> bool {
    bytes.starts_with(b"\xFF\xFE") || bytes.starts_with(b"\xFE\xFF")
}

/// What a finding about a file or line that [`starts_as_utf16`] adds,
/// after the words Convex's message has ("the file " or "it " before it).
pub const UTF16_HINT: &str = "starts with a UTF-16 byte order mark: save it as UTF-8";

/// Whether a JSONL line that is not one JSON value holds lines a `\r`
/// alone ends, as old Mac files have them: JSONL lines end at a `\n` only,
/// so such a file or entry reads as one line. The line has a `\r` before
/// its last byte (one inside a JSON string is escaped) with a JSON value
/// before it.
pub fn ends_lines_with_cr_alone(line: &[u8]) -> bool {
    match memchr::memchr(b'\r', line) {
        Some(cr) => {
            cr + 1 < line.len()
                && serde_json::from_slice::<&serde_json::value::RawValue>(&line[..cr]).is_ok()
        }
        None => false,
    }
}

/// `message`, Convex's about a JSONL line, `line`, that is not JSON, with
/// why after it when the line [`ends_lines_with_cr_alone`]: Convex's words
/// ("trailing characters") name no cause. `input` is what holds the line,
/// "file" or "entry".
pub fn with_cr_alone_hint(message: String, line: &[u8], input: &str) -> String {
    match ends_lines_with_cr_alone(line) {
        true => format!(
            "{message}; the {input}'s lines end with a carriage return alone (\\r, as old Mac \
             files have them), which does not end a JSONL line, so they read as one: save the \
             {input} with \\n line ends"
        ),
        false => message,
    }
}

/// The lines `bytes` end, a `\r\n`, a `\n` or a `\r` alone ending one;
/// `after_cr` says whether the byte before them is a `\r`, and then
/// whether their last one is.
pub fn line_ends(bytes: &[u8], after_cr: &mut bool) -> u64 {
    let mut ends = 0;
    for at in memchr::memchr2_iter(b'\r', b'\n', bytes) {
        let cr_before = match at {
            0 => *after_cr,
            _ => bytes[at - 1] == b'\r',
        };
        ends += u64::from(bytes[at] == b'\r' || !cr_before);
    }
    if let Some(&last) = bytes.last() {
        *after_cr = last == b'\r';
    }
    ends
}

/// Why the next line could not be read ([`LineReader::next_line`],
/// [`ChunkReader::next_chunk`]).
#[derive(Debug, thiserror::Error)]
pub enum LineError {
    /// A line is longer than the reader's limit.
    #[error("the line is longer than the limit")]
    LineTooLong,
    /// Reading (or inflating) the input failed.
    #[error(transparent)]
    Read(io::Error),
}

/// Reads runs of whole `\n`-separated lines into buffers the caller owns and
/// may reuse. Lines are the same as [`LineReader`]'s: every line in a chunk
/// ends with `\n` except a final line of the stream that has none.
pub struct ChunkReader<R> {
    inner: R,
    /// The start of a line that did not fit the previous chunk.
    carry: Vec<u8>,
    eof: bool,
    /// A read that failed after whole lines were read: those lines come
    /// first, then this.
    failed: Option<io::Error>,
    target: usize,
    max_line: usize,
}

impl<R: Read> ChunkReader<R> {
    /// A reader of chunks of about `target` bytes whose lines may be at most
    /// `max_line` bytes.
    pub fn new(inner: R, target: usize, max_line: usize) -> Self {
        ChunkReader {
            inner,
            carry: Vec::new(),
            eof: false,
            failed: None,
            target: target.max(1),
            max_line,
        }
    }

    /// Fills the start of `buf` with whole lines and returns how many bytes
    /// it filled; 0 at the end of the stream. `buf` grows as needed (its
    /// length is its storage, so a reused buffer is never zeroed again).
    ///
    /// When reading fails, the whole lines read before the failure are
    /// handed out first (a line cut short by it is dropped), then the error.
    pub fn next_chunk(&mut self, buf: &mut Vec<u8>) -> Result<usize, LineError> {
        if let Some(e) = self.failed.take() {
            return Err(LineError::Read(e));
        }
        // A reused buffer may be smaller than a long line carried over.
        let least = self.target.max(self.carry.len() + 1);
        if buf.len() < least {
            buf.resize(least, 0);
        }
        let mut filled = self.carry.len();
        buf[..filled].copy_from_slice(&self.carry);
        self.carry.clear();
        // The start of a long line is not held on to once it is handed out.
        if self.carry.capacity() > 4 * self.target {
            self.carry = Vec::new();
        }
        // The carried bytes hold no `\n`.
        let mut searched = filled;
        loop {
            if filled >= self.target || self.eof {
                if let Some(last) = memchr::memrchr(b'\n', &buf[searched..filled]) {
                    let end = searched + last + 1;
                    self.carry.extend_from_slice(&buf[end..filled]);
                    return Ok(end);
                }
                searched = filled;
                if self.eof {
                    return Ok(filled);
                }
            }
            if filled > self.max_line {
                return Err(LineError::LineTooLong);
            }
            if filled == buf.len() {
                let grown = (buf.len() * 2).min(self.max_line + 1).max(filled + 1);
                buf.resize(grown, 0);
            }
            match self.inner.read(&mut buf[filled..]) {
                Ok(0) => self.eof = true,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => match memchr::memrchr(b'\n', &buf[..filled]) {
                    Some(last) => {
                        self.failed = Some(e);
                        return Ok(last + 1);
                    }
                    None => return Err(LineError::Read(e)),
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(data: &[u8], max: usize) -> Vec<Result<Vec<u8>, String>> {
        let mut reader = LineReader::new(data, max);
        let mut out = Vec::new();
        while let Some((_, line)) = reader.next_line() {
            match line {
                Ok(l) => out.push(Ok(l.to_vec())),
                Err(e) => {
                    out.push(Err(e.to_string()));
                    break;
                }
            }
        }
        out
    }

    #[test]
    fn splits_lines() {
        let lines = collect(b"a\n\nbc\r\nd", 1 << 20);
        let expect: Vec<Result<Vec<u8>, String>> = vec![
            Ok(b"a".to_vec()),
            Ok(vec![]),
            Ok(b"bc\r".to_vec()),
            Ok(b"d".to_vec()),
        ];
        assert_eq!(lines, expect);
        assert!(collect(b"", 1 << 20).is_empty());
        assert_eq!(collect(b"x\n", 1 << 20).len(), 1);
    }

    #[test]
    fn long_lines_grow_the_buffer_until_the_limit() {
        let long = vec![b'x'; 300];
        let mut data = long.clone();
        data.push(b'\n');
        data.extend_from_slice(b"y");
        assert_eq!(collect(&data, 512), vec![Ok(long), Ok(b"y".to_vec())]);
        let mut reader = LineReader::new(&data[..], 128);
        assert!(matches!(
            reader.next_line(),
            Some((1, Err(LineError::LineTooLong)))
        ));
        // A line of exactly the limit is a line, with its newline or at the end.
        let mut at_limit = vec![b'x'; 256];
        assert_eq!(collect(&at_limit, 256), vec![Ok(at_limit.clone())]);
        at_limit.extend_from_slice(b"\ny");
        assert_eq!(
            collect(&at_limit, 256),
            vec![Ok(vec![b'x'; 256]), Ok(b"y".to_vec())]
        );
        assert_eq!(
            collect(&[b'x'; 257], 256),
            vec![Err(LineError::LineTooLong.to_string())]
        );
    }

    #[test]
    fn counts_bytes() {
        let mut reader = LineReader::new(&b"ab\ncd"[..], 1 << 20);
        while reader.next_line().is_some() {}
        assert_eq!(reader.bytes_consumed(), 5);
        assert_eq!(reader.line_number(), 2);
    }

    /// A reader that returns at most `step` bytes a call.
    struct Trickle<'a>(&'a [u8], usize);

    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let n = self.0.len().min(out.len()).min(self.1);
            out[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    /// The chunks of `data`, each read into one buffer reused, or (`fresh`)
    /// into a new one as a second thread hands buffers back in any order.
    fn chunks_into(
        data: &[u8],
        step: usize,
        target: usize,
        max: usize,
        fresh: bool,
    ) -> Result<Vec<Vec<u8>>, ()> {
        let mut reader = ChunkReader::new(Trickle(data, step), target, max);
        let mut buf = Vec::new();
        let mut out = Vec::new();
        loop {
            if fresh {
                buf = Vec::new();
            }
            match reader.next_chunk(&mut buf) {
                Ok(0) => return Ok(out),
                Ok(n) => out.push(buf[..n].to_vec()),
                Err(LineError::LineTooLong) => return Err(()),
                Err(LineError::Read(e)) => panic!("{e}"),
            }
        }
    }

    /// The chunks into one reused buffer, checking that fresh buffers
    /// give the same bytes (cut elsewhere: a grown buffer takes more).
    fn chunks(data: &[u8], step: usize, target: usize, max: usize) -> Result<Vec<Vec<u8>>, ()> {
        let reused = chunks_into(data, step, target, max, false);
        let fresh = chunks_into(data, step, target, max, true);
        assert_eq!(
            fresh.clone().map(|c| c.concat()),
            reused.clone().map(|c| c.concat())
        );
        for chunk in fresh.iter().flatten() {
            assert!(chunk.ends_with(b"\n") || data.ends_with(chunk), "{chunk:?}");
        }
        reused
    }

    #[test]
    fn chunks_hold_whole_lines() {
        let data = b"a\n\nbc\r\nd";
        for step in 1..=data.len() {
            for target in 1..=data.len() + 1 {
                let got = chunks(data, step, target, 64).unwrap();
                assert_eq!(got.concat(), data);
                let (last, rest) = got.split_last().unwrap();
                assert!(rest.iter().all(|c| c.ends_with(b"\n")));
                assert!(last.ends_with(b"d"));
            }
        }
        assert_eq!(chunks(b"", 3, 4, 64), Ok(vec![]));
    }

    #[test]
    fn a_chunk_grows_for_a_long_line_until_the_limit() {
        let mut data = vec![b'x'; 300];
        data.extend_from_slice(b"\ny\n");
        assert_eq!(chunks(&data, 50, 16, 512).unwrap().concat(), data);
        assert_eq!(chunks(&data, 50, 16, 128), Err(()));
    }

    #[test]
    fn the_whole_lines_before_a_failed_read_come_first() {
        /// Gives its bytes, then fails.
        struct FailsAfter(&'static [u8]);
        impl Read for FailsAfter {
            fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
                if self.0.is_empty() {
                    return Err(io::Error::other("cut"));
                }
                let n = self.0.len().min(out.len());
                out[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut reader = ChunkReader::new(FailsAfter(b"a\nbb\nc"), 1 << 10, 1 << 20);
        let mut buf = Vec::new();
        let len = reader.next_chunk(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"a\nbb\n", "the cut line is dropped");
        assert!(
            matches!(reader.next_chunk(&mut buf), Err(LineError::Read(e)) if e.to_string() == "cut")
        );
    }

    proptest::proptest! {
        #[test]
        fn chunks_split_the_lines_a_line_reader_reads(
            data in proptest::collection::vec(proptest::prop_oneof![proptest::strategy::Just(b'\n'), b'a'..=b'c'], 0..200),
            step in 1usize..40,
            target in 1usize..64,
        ) {
            let mut expected = Vec::new();
            let mut lines = LineReader::new(&data[..], 1 << 20);
            while let Some((_, line)) = lines.next_line() {
                expected.push(line.unwrap().to_vec());
            }
            let mut got = Vec::new();
            for chunk in chunks(&data, step, target, 1 << 20).unwrap() {
                let body = chunk.strip_suffix(b"\n").unwrap_or(&chunk);
                got.extend(body.split(|&c| c == b'\n').map(<[u8]>::to_vec));
            }
            proptest::prop_assert_eq!(got, expected);
        }
    }
}
