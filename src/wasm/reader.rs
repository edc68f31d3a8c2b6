//! `Read + Seek` over JavaScript byte sources.
//!
//! The core reads archives through `Read + Seek` in many small calls (ZIP
//! headers, inflater refills). Crossing into JavaScript for each would cost
//! more than the work, so [`ReadAhead`] asks its [`Source`] for up to 8 MiB at
//! a time and serves the small reads from that buffer inside WebAssembly. Like
//! an operating system's read-ahead, the amount grows while reads are
//! sequential and starts small again after a jump, so hopping between ZIP
//! headers does not fetch megabytes it then throws away. A short skip forward
//! (less than the last fetch) still counts as sequential: visiting the headers
//! of many small entries one after the other then costs a few growing fetches
//! rather than one small fetch each. In a browser each `FileReaderSync` call
//! costs milliseconds besides its bytes: on the bench archive, 8 MiB fetches
//! cut Chromium's time by about 7% against 4 MiB ones (16 MiB saved 3% more,
//! for 17 MiB more renderer memory on a 1 GB archive). With two workers
//! sharing the 1 GB archive, 4 MiB fetches lowered the renderer's peak from
//! about 280 to 250 MiB but took 15-20% longer.
//!
//! Sources: a `Uint8Array` in memory, a `Blob`/`File` read with
//! `FileReaderSync` (Web Workers only: the file is never read whole), and a
//! JavaScript callback `(offset, into) => bytesRead` that fills a view of
//! WebAssembly memory (Node reads files through `fs.readSync` this way,
//! straight into the buffer that needs them).

use std::io::{self, Read, Seek, SeekFrom};

use js_sys::{Function, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{Blob, FileReaderSync};

/// Most bytes fetched from JavaScript per call (while reading sequentially).
pub const READ_AHEAD: usize = 8 << 20;
/// Bytes fetched after a jump; doubled for each sequential fetch.
pub const MIN_READ_AHEAD: usize = 64 << 10;

/// Random access to a fixed-length run of bytes held by JavaScript.
pub trait Source {
    /// Total length in bytes.
    fn len(&self) -> u64;
    /// Fills all of `buf` with the bytes starting at `offset`; the caller
    /// never asks past the end.
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()>;
    /// Called once, before the first read or seek, when [`Source::len`] is
    /// 0: fails when the input cannot be read at all. A `File` picked in a
    /// page and then moved or deleted before its size was first asked says
    /// it has 0 bytes, and only a read tells it is gone.
    fn check_empty(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Source for Box<dyn Source> {
    fn len(&self) -> u64 {
        (**self).len()
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        (**self).read_at(offset, buf)
    }

    fn check_empty(&mut self) -> io::Result<()> {
        (**self).check_empty()
    }
}

/// A [`Source`] as `Read + Seek`, fetching up to [`READ_AHEAD`] bytes per call.
pub struct ReadAhead<S> {
    source: S,
    len: u64,
    pos: u64,
    buf: Vec<u8>,
    /// Offset of `buf[0]` in the source.
    buf_start: u64,
    /// Where the last fetch ended: a fetch from there continues a sequential run.
    fetched_to: u64,
    /// Bytes the last fetch asked for.
    fetch_len: usize,
    /// False while an input of no bytes has not been found readable yet.
    readable: bool,
}

impl<S: Source> ReadAhead<S> {
    /// Wraps `source`.
    pub fn new(source: S) -> Self {
        let len = source.len();
        ReadAhead {
            source,
            len,
            pos: 0,
            buf: Vec::new(),
            buf_start: 0,
            fetched_to: 0,
            fetch_len: MIN_READ_AHEAD / 2,
            readable: len > 0,
        }
    }

    /// Fails, at every call until it succeeds, while an input of no bytes
    /// cannot be read ([`Source::check_empty`]): so a missing file is a read
    /// failure, not an empty input.
    fn check_readable(&mut self) -> io::Result<()> {
        if !self.readable {
            self.source.check_empty()?;
            self.readable = true;
        }
        Ok(())
    }

    /// How many bytes to fetch at `self.pos`: twice the last fetch if this
    /// one starts where it ended or skips less than it fetched, else a little.
    fn next_fetch_len(&mut self) -> usize {
        let continues =
            self.pos >= self.fetched_to && self.pos - self.fetched_to < self.fetch_len as u64;
        self.fetch_len = if continues {
            (self.fetch_len * 2).min(READ_AHEAD)
        } else {
            MIN_READ_AHEAD
        };
        (self.len - self.pos).min(self.fetch_len as u64) as usize
    }
}

impl<S: Source> Read for ReadAhead<S> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        self.check_readable()?;
        if out.is_empty() || self.pos >= self.len {
            return Ok(0);
        }
        let buffered = self.buf_start..self.buf_start + self.buf.len() as u64;
        if !buffered.contains(&self.pos) {
            let want = self.next_fetch_len();
            self.fetched_to = self.pos + want as u64;
            if out.len() >= want {
                // A read as large as the fetch goes straight to the caller.
                self.source.read_at(self.pos, &mut out[..want])?;
                self.pos += want as u64;
                return Ok(want);
            }
            self.buf.resize(want, 0);
            if let Err(error) = self.source.read_at(self.pos, &mut self.buf) {
                self.buf.clear();
                return Err(error);
            }
            self.buf_start = self.pos;
        }
        let from = (self.pos - self.buf_start) as usize;
        let n = out.len().min(self.buf.len() - from);
        out[..n].copy_from_slice(&self.buf[from..from + n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl<S: Source> Seek for ReadAhead<S> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        self.check_readable()?;
        let target = match to {
            SeekFrom::Start(offset) => Some(offset),
            SeekFrom::End(delta) => self.len.checked_add_signed(delta),
            SeekFrom::Current(delta) => self.pos.checked_add_signed(delta),
        };
        match target {
            Some(pos) => {
                self.pos = pos;
                Ok(pos)
            }
            None => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek before the start of the input",
            )),
        }
    }
}

/// Describes a JavaScript exception for an `io::Error`.
pub fn describe(error: &JsValue) -> String {
    if let Some(error) = error.dyn_ref::<js_sys::Error>() {
        return String::from(error.message());
    }
    error.as_string().unwrap_or_else(|| format!("{error:?}"))
}

fn js_io_error(what: &str, error: JsValue) -> io::Error {
    io::Error::other(format!("{what}: {}", describe(&error)))
}

fn short_read(what: &str, got: u32, wanted: usize) -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        format!("{what} returned {got} bytes where {wanted} were asked for"),
    )
}

/// Bytes already in JavaScript memory.
pub struct BytesSource(pub Uint8Array);

impl Source for BytesSource {
    fn len(&self) -> u64 {
        u64::from(self.0.length())
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let start = offset as u32;
        self.0
            .subarray(start, start + buf.len() as u32)
            .copy_to(buf);
        Ok(())
    }
}

/// A `Blob` or `File`, read slice by slice with `FileReaderSync`.
pub struct BlobSource {
    blob: Blob,
    reader: FileReaderSync,
}

impl BlobSource {
    /// Fails outside a Web Worker, where `FileReaderSync` does not exist.
    pub fn new(blob: Blob) -> Result<Self, JsValue> {
        Ok(BlobSource {
            blob,
            reader: FileReaderSync::new()?,
        })
    }
}

impl Source for BlobSource {
    fn len(&self) -> u64 {
        self.blob.size() as u64
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let end = offset + buf.len() as u64;
        let slice = self
            .blob
            .slice_with_f64_and_f64(offset as f64, end as f64)
            .map_err(|e| js_io_error("Blob.slice", e))?;
        let bytes = self
            .reader
            .read_as_array_buffer(&slice)
            .map_err(|e| js_io_error("FileReaderSync", e))?;
        let view = Uint8Array::new(&bytes);
        if view.length() as usize != buf.len() {
            return Err(short_read("FileReaderSync", view.length(), buf.len()));
        }
        view.copy_to(buf);
        nudge_young_collector(buf.len());
        Ok(())
    }

    fn check_empty(&mut self) -> io::Result<()> {
        // The whole File, not a slice of it: reading an empty slice of a
        // missing file succeeds.
        self.reader
            .read_as_array_buffer(&self.blob)
            .map(drop)
            .map_err(|e| js_io_error("FileReaderSync", e))
    }
}

/// Allocates short-lived JavaScript arrays, about the slice's size, so that
/// the worker's young-generation collector runs every slice or two and frees
/// the slices already read. Chromium does not count them as memory pressure
/// (detaching a slice with `transfer` does not free it either): without
/// this, validating a 1 GB file grew the renderer by about the file's size.
/// With a quarter of the slice's size, the renderer's peak on the bench's
/// 1 GB archive was 245 MiB with one worker and 305 with two; with the
/// slice's size, 217-223 and 281-295, in about the same time; with four
/// times it, no lower.
fn nudge_young_collector(slice_len: usize) {
    for _ in 0..slice_len.div_ceil(64 << 10) {
        drop(js_sys::Array::new_with_length(8 << 10));
    }
}

/// A JavaScript function `(offset: number, into: Uint8Array) => number` over
/// an input of a known size: it fills `into` with the bytes from `offset` on
/// and returns how many it wrote, which must be all of them.
pub struct CallbackSource {
    read: Function,
    len: u64,
}

impl CallbackSource {
    /// Wraps `read` over `len` bytes.
    pub fn new(read: Function, len: u64) -> Self {
        CallbackSource { read, len }
    }
}

impl Source for CallbackSource {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        // SAFETY: the view lives until the callback returns, and while it
        // runs nothing here allocates, so WebAssembly memory cannot grow
        // and move `buf`. A callback that keeps the view and writes to it
        // later can only change bytes it is asked for again.
        let into = unsafe { Uint8Array::view_mut_raw(buf.as_mut_ptr(), buf.len()) };
        let written = self
            .read
            .call2(&JsValue::NULL, &JsValue::from_f64(offset as f64), &into)
            // The callback's own words: it says what it was reading.
            .map_err(|e| io::Error::other(describe(&e)))?;
        match written.as_f64() {
            Some(n) if n == buf.len() as f64 => Ok(()),
            Some(n) => Err(short_read("read callback", n as u32, buf.len())),
            None => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "read callback did not return the number of bytes it wrote",
            )),
        }
    }
}
