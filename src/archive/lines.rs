//! Splitting a byte stream into lines with one reusable buffer: lines are
//! handed out as borrowed slices, never copied.

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

    /// The next line with its 1-based number, or `None` at the end. A line
    /// longer than the limit is an `InvalidData` error.
    pub fn next_line(&mut self) -> Option<(u64, io::Result<&[u8]>)> {
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
        self.consumed += (to - from) as u64 + u64::from(self.start > to);
        Some((self.line, Ok(&self.buf[from..to])))
    }

    fn fill(&mut self) -> io::Result<()> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.scanned -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            if self.buf.len() >= self.max_line {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "line {} is longer than {} bytes",
                        self.line + 1,
                        self.max_line
                    ),
                ));
            }
            let grown = (self.buf.len() * 2).min(self.max_line);
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
                Err(e) => return Err(e),
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
        let lines = collect(&data, 128);
        assert!(matches!(&lines[0], Err(e) if e.contains("line 1 is longer than 128 bytes")));
    }

    #[test]
    fn counts_bytes() {
        let mut reader = LineReader::new(&b"ab\ncd"[..], 1 << 20);
        while reader.next_line().is_some() {}
        assert_eq!(reader.bytes_consumed(), 5);
        assert_eq!(reader.line_number(), 2);
    }
}
