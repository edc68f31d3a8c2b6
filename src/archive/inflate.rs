//! Reading a compressed ZIP entry: deflate with large buffers, and zstd.
//!
//! The `zip` crate's entry reader feeds its inflater through an 8 KiB buffer,
//! so every few dozen KiB of output cost a call into the inflater, a refill
//! and a CRC update. [`DeflateEntry`] reads the entry's raw deflate stream in
//! large chunks and inflates straight into the caller's buffer. [`ZstdEntry`]
//! reads the zstd entries Convex also accepts (pure Rust, so in WebAssembly
//! too), and [`CheckedEntry`] stored ones and deflate64 ones (decoded by the
//! `deflate64` crate, wired in `validate::zip`). All check the declared size and
//! the CRC32 as Convex's reader does (a CRC32 declared as 0 is not checked),
//! with its messages: more bytes than declared is `File is larger than its
//! declared uncompressed size`, and a CRC32 that does not match at the end is
//! `Invalid checksum`; a corrupt stream is `corrupt deflate stream` or
//! `corrupt zstd stream`.

use std::io::{self, Read};

use flate2::{Decompress, FlushDecompress, Status};
use ruzstd::decoding::errors::{FrameDecoderError, ReadFrameHeaderError};
use ruzstd::decoding::{BlockDecodingStrategy, FrameDecoder};

use crate::crc32::Crc32;

/// Compressed bytes read from the archive at a time.
pub const RAW_CHUNK: usize = 256 << 10;

/// What the archive's directory says about an entry.
#[derive(Debug, Clone, Copy)]
pub struct Declared {
    /// Uncompressed size.
    pub size: u64,
    /// CRC32 of the uncompressed bytes.
    pub crc32: u32,
}

/// Checks an entry's bytes as they come against what the directory declares.
struct Verifier {
    crc: Crc32,
    produced: u64,
    declared: Declared,
}

impl Verifier {
    fn new(declared: Declared) -> Self {
        Verifier {
            crc: Crc32::new(),
            produced: 0,
            declared,
        }
    }

    /// The next bytes of the entry.
    fn update(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.produced += bytes.len() as u64;
        if self.produced > self.declared.size {
            return Err(larger_than_declared());
        }
        self.crc.update(bytes);
        Ok(())
    }

    /// The end of the entry: the CRC32 and the size must match. A CRC32
    /// declared as 0 is not checked, as Convex's ZIP reader does not.
    fn finish(&self) -> io::Result<()> {
        if self.declared.crc32 != 0 && self.crc.value() != self.declared.crc32 {
            return Err(AtEntryEnd("Invalid checksum".to_owned()).into());
        }
        if self.produced != self.declared.size {
            return Err(AtEntryEnd(format!(
                "the entry inflates to {} bytes, but the archive declares {}",
                self.produced, self.declared.size
            ))
            .into());
        }
        Ok(())
    }
}

/// An entry gives more bytes than the directory declares.
fn larger_than_declared() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        "File is larger than its declared uncompressed size",
    )
}

/// A check of the whole entry that fails once all of it is read (its CRC32,
/// its size): about the entry, not about where in it reading was.
#[derive(Debug)]
struct AtEntryEnd(String);

impl std::fmt::Display for AtEntryEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for AtEntryEnd {}

impl From<AtEntryEnd> for io::Error {
    fn from(e: AtEntryEnd) -> Self {
        io::Error::new(io::ErrorKind::InvalidData, e)
    }
}

/// Whether reading an entry failed on a check of the whole entry, made at
/// its end (its CRC32 or size), rather than where reading had reached (a
/// corrupt stream, more bytes than declared, the input's own failure):
/// findings about the latter name the line reached, the former none.
pub fn failed_at_entry_end(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<AtEntryEnd>())
}

/// A deflate entry's compressed bytes as its uncompressed bytes.
pub type DeflateEntry<R> = CheckedEntry<Inflater<R>>;

/// Inflates a deflate entry (`raw`, with `declared` size and CRC32).
pub fn deflate_entry<R: Read>(raw: R, declared: Declared) -> DeflateEntry<R> {
    CheckedEntry::new(Inflater::new(raw), declared)
}

/// A raw deflate stream inflated with large buffers; it ends (reads 0) at
/// the end of the stream or of `raw`, a stream cut short included: the
/// checks of [`CheckedEntry`] tell.
pub struct Inflater<R> {
    raw: R,
    input: Vec<u8>,
    start: usize,
    end: usize,
    raw_done: bool,
    inflater: Decompress,
    /// The stream was found corrupt after some output of the same call,
    /// which was returned first: the next read fails.
    corrupt: bool,
}

impl<R: Read> Inflater<R> {
    fn new(raw: R) -> Self {
        Inflater {
            raw,
            input: vec![0; RAW_CHUNK],
            start: 0,
            end: 0,
            raw_done: false,
            inflater: Decompress::new(false),
            corrupt: false,
        }
    }

    fn refill(&mut self) -> io::Result<()> {
        self.start = 0;
        self.end = 0;
        loop {
            match self.raw.read(&mut self.input) {
                Ok(0) => {
                    self.raw_done = true;
                    return Ok(());
                }
                Ok(n) => {
                    self.end = n;
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

impl<R: Read> Read for Inflater<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let corrupt = || io::Error::new(io::ErrorKind::InvalidInput, "corrupt deflate stream");
        if self.corrupt {
            return Err(corrupt());
        }
        loop {
            if self.start == self.end && !self.raw_done {
                self.refill()?;
            }
            let flush = if self.raw_done {
                FlushDecompress::Finish
            } else {
                FlushDecompress::None
            };
            let (in_before, out_before) = (self.inflater.total_in(), self.inflater.total_out());
            let status = self
                .inflater
                .decompress(&self.input[self.start..self.end], out, flush);
            self.start += (self.inflater.total_in() - in_before) as usize;
            let n = (self.inflater.total_out() - out_before) as usize;
            // What the stream held before the damage is returned first, so
            // that a reader gets every line before it.
            let Ok(status) = status else {
                self.corrupt = true;
                return if n > 0 { Ok(n) } else { Err(corrupt()) };
            };
            // No output: the stream ended, or it is cut short.
            if n > 0 || status == Status::StreamEnd || (self.raw_done && self.start == self.end) {
                return Ok(n);
            }
        }
    }
}

/// An entry's bytes as `inner` gives them (stored bytes, or a decoder's
/// output), checked against what the directory declares; the one place
/// entries are checked, whatever their method.
pub struct CheckedEntry<R> {
    inner: R,
    verifier: Verifier,
    finished: bool,
    /// More bytes came than declared, after the declared ones, which were
    /// returned first: the next read fails.
    overflowed: bool,
}

impl<R: Read> CheckedEntry<R> {
    /// Checks what `inner` reads against `declared`.
    pub fn new(inner: R, declared: Declared) -> Self {
        CheckedEntry {
            inner,
            verifier: Verifier::new(declared),
            finished: false,
            overflowed: false,
        }
    }
}

impl<R: Read> Read for CheckedEntry<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.finished || out.is_empty() {
            return Ok(0);
        }
        if self.overflowed {
            return Err(larger_than_declared());
        }
        let n = self.inner.read(out)?;
        if n == 0 {
            self.finished = true;
            self.verifier.finish()?;
            return Ok(0);
        }
        // The bytes up to the declared size are returned before the error,
        // so that a reader gets every line before it.
        let room = self.verifier.declared.size - self.verifier.produced;
        if n as u64 > room && room > 0 {
            self.overflowed = true;
            self.verifier.update(&out[..room as usize])?;
            return Ok(room as usize);
        }
        self.verifier.update(&out[..n])?;
        Ok(n)
    }
}

/// A zstd entry's compressed bytes as its uncompressed bytes.
pub type ZstdEntry<R> = CheckedEntry<ZstdStream<R>>;

/// Decodes a zstd entry (`raw`, with `declared` size and CRC32); fails when
/// it does not start with a zstd frame.
pub fn zstd_entry<R: Read>(raw: R, declared: Declared) -> io::Result<ZstdEntry<R>> {
    let mut stream = ZstdStream {
        decoder: FrameDecoder::new(),
        raw,
        frames: 0,
    };
    if !stream.next_frame()? {
        return Err(corrupt_zstd("no frame"));
    }
    Ok(CheckedEntry::new(stream, declared))
}

/// A zstd stream as libzstd's streaming decoder reads it: frames one after
/// the other (as `pzstd` writes them), skippable frames skipped, and
/// anything after a frame that is not one an error, but for a single byte
/// at the end, which Convex's ZIP reader takes as a trailer.
pub struct ZstdStream<R: Read> {
    decoder: FrameDecoder,
    raw: R,
    /// Frames started so far.
    frames: u64,
}

impl<R: Read> ZstdStream<R> {
    /// Starts the next frame that has content, past skippable ones; false at
    /// the end of the input.
    fn next_frame(&mut self) -> io::Result<bool> {
        loop {
            let mut head = [0u8; 2];
            let mut n = 0;
            while n < head.len() {
                match self.raw.read(&mut head[n..])? {
                    0 => break,
                    read => n += read,
                }
            }
            // Convex's ZIP reader takes one byte left after a frame as a trailer.
            if n == 0 || n == 1 && self.frames > 0 {
                return Ok(false);
            }
            match self.decoder.reset((&head[..n]).chain(&mut self.raw)) {
                Ok(()) => {
                    self.frames += 1;
                    return Ok(true);
                }
                Err(FrameDecoderError::ReadFrameHeaderError(ReadFrameHeaderError::SkipFrame {
                    length,
                    ..
                })) => {
                    let skipped =
                        io::copy(&mut (&mut self.raw).take(length.into()), &mut io::sink())?;
                    if skipped < u64::from(length) {
                        return Err(corrupt_zstd("a skippable frame is cut short"));
                    }
                }
                Err(e) if self.frames > 0 => {
                    return Err(corrupt_zstd(format_args!(
                        "the bytes after frame {} are not a zstd frame ({e})",
                        self.frames
                    )))
                }
                Err(e) => return Err(corrupt_zstd(e)),
            }
        }
    }
}

impl<R: Read> Read for ZstdStream<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            while self.decoder.can_collect() == 0 && !self.decoder.is_finished() {
                self.decoder
                    .decode_blocks(&mut self.raw, BlockDecodingStrategy::UptoBlocks(1))
                    .map_err(corrupt_zstd)?;
            }
            let n = self.decoder.read(out).map_err(corrupt_zstd)?;
            if n > 0 || out.is_empty() || !self.next_frame()? {
                return Ok(n);
            }
        }
    }
}

fn corrupt_zstd(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("corrupt zstd stream: {e}"),
    )
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use std::io::Write;

    use flate2::write::DeflateEncoder;
    use flate2::Compression;

    use super::*;

    /// A few MiB of text-like bytes, so that several chunks go each way.
    fn text(len: usize) -> Vec<u8> {
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        (0..len)
            .map(|i| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                if i % 61 == 60 {
                    b'\n'
                } else {
                    b"abcdefgh {}\":,0123456789"[(state % 24) as usize]
                }
            })
            .collect()
    }

    fn deflate(data: &[u8]) -> Vec<u8> {
        let mut encoder = DeflateEncoder::new(Vec::new(), Compression::fast());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    fn declared(data: &[u8]) -> Declared {
        Declared {
            size: data.len() as u64,
            crc32: crc32fast::hash(data),
        }
    }

    /// Reads everything with small reads, as a line reader at a buffer's end would.
    fn read_all(mut reader: impl Read) -> (Vec<u8>, Option<String>) {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 300_000];
        loop {
            match reader.read(&mut buf) {
                Ok(0) => return (out, None),
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) => return (out, Some(e.to_string())),
            }
        }
    }

    #[test]
    fn inflates_whole_entries() {
        for len in [0, 1, 70_000, 5 << 20] {
            let data = text(len);
            let (out, error) = read_all(deflate_entry(&deflate(&data)[..], declared(&data)));
            assert_eq!(error, None);
            assert!(out == data, "{len} bytes");
        }
    }

    #[test]
    fn errors_read_as_the_zip_crate_words_them() {
        let data = text(3 << 20);
        let raw = deflate(&data);
        let mut crc = declared(&data);
        crc.crc32 ^= 1;
        let mut small = declared(&data);
        small.size -= 1;
        // A block of the reserved type 3.
        let corrupt = [0xFF; 64];
        let cases = [
            (&raw[..], crc, "Invalid checksum"),
            (&raw[..raw.len() / 3], declared(&data), "Invalid checksum"),
            (
                &raw[..],
                small,
                "File is larger than its declared uncompressed size",
            ),
            (&corrupt[..], declared(&data), "corrupt deflate stream"),
        ];
        let mut large = declared(&data);
        large.size += 1;
        let (_, error) = read_all(deflate_entry(&raw[..], large));
        let expected = format!(
            "the entry inflates to {} bytes, but the archive declares {}",
            data.len(),
            data.len() + 1
        );
        assert_eq!(error, Some(expected));
        for (raw, declared, message) in cases {
            let (_, error) = read_all(deflate_entry(raw, declared));
            assert_eq!(error.as_deref(), Some(message));
        }
    }

    /// The bytes a damaged stream holds before the damage are read, then
    /// the damage is the error: the line it is in can be named. Only the
    /// checks made at the end are the whole entry's.
    #[test]
    fn a_damaged_stream_gives_what_precedes_the_damage() {
        let data = text(64 << 10);
        let mut encoder = DeflateEncoder::new(Vec::new(), Compression::fast());
        encoder.write_all(&data).unwrap();
        // A sync flush ends the bytes so far on a byte boundary; then a
        // final block of the reserved type 3.
        encoder.flush().unwrap();
        let mut raw = encoder.get_ref().clone();
        raw.push(0x07);
        let mut whole = data.clone();
        whole.extend_from_slice(b"more");
        let mut reader = deflate_entry(&raw[..], declared(&whole));
        let mut out = vec![0u8; 1 << 20];
        let n = reader.read(&mut out).unwrap();
        assert!(out[..n] == data[..]);
        let error = reader.read(&mut out).unwrap_err();
        assert_eq!(error.to_string(), "corrupt deflate stream");
        assert!(!failed_at_entry_end(&error));
        let mut crc = declared(&data);
        crc.crc32 ^= 1;
        let error = deflate_entry(&deflate(&data)[..], crc)
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        assert!(failed_at_entry_end(&error));
    }

    #[test]
    fn a_long_run_without_output_is_not_the_end() {
        // Empty stored blocks (5 bytes, no output each), more than a raw
        // chunk holds, then a final one holding "ok".
        let mut raw = [0x00, 0x00, 0x00, 0xFF, 0xFF].repeat(400_000);
        raw.extend_from_slice(&[0x01, 0x02, 0x00, 0xFD, 0xFF, b'o', b'k']);
        let (out, error) = read_all(deflate_entry(&raw[..], declared(b"ok")));
        assert_eq!(error, None);
        assert_eq!(out, b"ok");
    }
}
