//! Reading a deflated ZIP entry with large buffers.
//!
//! The `zip` crate's entry reader feeds its inflater through an 8 KiB buffer,
//! so every few dozen KiB of output cost a call into the inflater, a refill
//! and a CRC update. [`DeflateEntry`] reads the entry's raw deflate stream in
//! large chunks and inflates straight into the caller's buffer, checking the
//! declared size and the CRC32 as the `zip` crate does, with its messages:
//! a corrupt stream is `corrupt deflate stream`, more bytes than declared is
//! `File is larger than its declared uncompressed size`, and a CRC32 that
//! does not match at the end is `Invalid checksum`.
//!
//! Natively, [`pipelined`] runs the inflater on a second thread while the
//! caller checks lines (the WebAssembly build has one thread).

use std::io::{self, Read};

use flate2::{Decompress, FlushDecompress, Status};

/// Compressed bytes read from the archive at a time.
pub const RAW_CHUNK: usize = 256 << 10;

/// The running CRC32 of an entry: crc32fast natively (it uses the CPU's
/// carry-less multiply); on wasm32, where crc32fast has only a byte-table
/// method, zlib-rs's braided CRC32, about a fifth faster there.
#[derive(Default)]
struct Crc32(
    #[cfg(not(target_arch = "wasm32"))] crc32fast::Hasher,
    #[cfg(target_arch = "wasm32")] u32,
);

impl Crc32 {
    fn update(&mut self, bytes: &[u8]) {
        #[cfg(not(target_arch = "wasm32"))]
        self.0.update(bytes);
        #[cfg(target_arch = "wasm32")]
        {
            self.0 = zlib_rs::crc32::crc32(self.0, bytes);
        }
    }

    fn value(&self) -> u32 {
        #[cfg(not(target_arch = "wasm32"))]
        return self.0.clone().finalize();
        #[cfg(target_arch = "wasm32")]
        self.0
    }
}

/// What the archive's directory says about an entry.
#[derive(Debug, Clone, Copy)]
pub struct Declared {
    /// Uncompressed size.
    pub size: u64,
    /// CRC32 of the uncompressed bytes.
    pub crc32: u32,
}

/// A raw deflate stream (`raw`) as the entry's uncompressed bytes.
pub struct DeflateEntry<R> {
    raw: R,
    input: Vec<u8>,
    start: usize,
    end: usize,
    raw_done: bool,
    inflater: Decompress,
    crc: Crc32,
    produced: u64,
    declared: Declared,
    finished: bool,
}

impl<R: Read> DeflateEntry<R> {
    /// Inflates `raw`, the compressed bytes of an entry with `declared` size and CRC32.
    pub fn new(raw: R, declared: Declared) -> Self {
        DeflateEntry {
            raw,
            input: vec![0; RAW_CHUNK],
            start: 0,
            end: 0,
            raw_done: false,
            inflater: Decompress::new(false),
            crc: Crc32::default(),
            produced: 0,
            declared,
            finished: false,
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

    /// The end of the stream: the CRC32 must match.
    fn finish(&mut self) -> io::Result<usize> {
        self.finished = true;
        if self.crc.value() != self.declared.crc32 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "Invalid checksum",
            ));
        }
        Ok(0)
    }
}

impl<R: Read> Read for DeflateEntry<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.finished || out.is_empty() {
            return Ok(0);
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
                .decompress(&self.input[self.start..self.end], out, flush)
                .map_err(|_| {
                    io::Error::new(io::ErrorKind::InvalidInput, "corrupt deflate stream")
                })?;
            self.start += (self.inflater.total_in() - in_before) as usize;
            let n = (self.inflater.total_out() - out_before) as usize;
            if n > 0 {
                self.produced += n as u64;
                if self.produced > self.declared.size {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "File is larger than its declared uncompressed size",
                    ));
                }
                self.crc.update(&out[..n]);
                return Ok(n);
            }
            // No output: the stream ended, or it is cut short (the CRC32 tells).
            if status == Status::StreamEnd || (self.raw_done && self.start == self.end) {
                return self.finish();
            }
        }
    }
}

#[cfg(not(target_arch = "wasm32"))]
pub use pipeline::pipelined;

/// Inflate on a second thread, natively.
#[cfg(not(target_arch = "wasm32"))]
mod pipeline {
    use std::io::{self, Read};
    use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TryRecvError, TrySendError};
    use std::thread::Scope;

    use super::{Declared, DeflateEntry, RAW_CHUNK};

    /// Uncompressed bytes handed over at a time.
    const OUT_CHUNK: usize = 1 << 20;
    /// Chunks in flight each way.
    const DEPTH: usize = 4;

    /// What the inflating thread says.
    enum Message {
        /// Uncompressed bytes, in order.
        Data(Vec<u8>),
        /// It has nothing to read: send a chunk, or end the stream.
        NeedInput,
        /// The stream failed; nothing follows.
        Failed(io::Error),
    }

    /// Compressed chunks as a `Read`, on the inflating thread.
    struct Chunks {
        from: Receiver<Vec<u8>>,
        to: SyncSender<Message>,
        current: Vec<u8>,
        at: usize,
    }

    impl Read for Chunks {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            if self.at == self.current.len() {
                let next = match self.from.try_recv() {
                    Ok(chunk) => Ok(chunk),
                    Err(TryRecvError::Empty) => {
                        // Ask before waiting, so the reading thread never waits on us in turn.
                        if self.to.send(Message::NeedInput).is_err() {
                            return Ok(0);
                        }
                        self.from.recv().map_err(|_| ())
                    }
                    Err(TryRecvError::Disconnected) => Err(()),
                };
                match next {
                    Ok(chunk) => {
                        self.current = chunk;
                        self.at = 0;
                    }
                    Err(()) => return Ok(0),
                }
            }
            let n = out.len().min(self.current.len() - self.at);
            out[..n].copy_from_slice(&self.current[self.at..self.at + n]);
            self.at += n;
            Ok(n)
        }
    }

    /// The reading side: sends compressed chunks, hands out uncompressed bytes.
    pub struct Pipelined<R> {
        raw: R,
        to: Option<SyncSender<Vec<u8>>>,
        pending: Option<Vec<u8>>,
        from: Receiver<Message>,
        current: Vec<u8>,
        at: usize,
    }

    /// Inflates `raw` (a raw deflate stream with `declared` size and CRC32)
    /// on a thread of `scope`; the result reads like [`DeflateEntry`], with
    /// the same errors, while inflating runs ahead of the reader.
    pub fn pipelined<'scope, R: Read>(
        scope: &'scope Scope<'scope, '_>,
        raw: R,
        declared: Declared,
    ) -> Pipelined<R> {
        let (to_inflater, from_reader) = sync_channel::<Vec<u8>>(DEPTH);
        let (to_reader, from_inflater) = sync_channel::<Message>(DEPTH);
        scope.spawn(move || {
            let chunks = Chunks {
                from: from_reader,
                to: to_reader.clone(),
                current: Vec::new(),
                at: 0,
            };
            let mut entry = DeflateEntry::new(chunks, declared);
            loop {
                let mut buf = vec![0u8; OUT_CHUNK];
                let mut filled = 0;
                let result = loop {
                    match entry.read(&mut buf[filled..]) {
                        Ok(0) => break Ok(true),
                        Ok(n) => filled += n,
                        Err(e) => break Err(e),
                    }
                    if filled == buf.len() {
                        break Ok(false);
                    }
                };
                buf.truncate(filled);
                if filled > 0 && to_reader.send(Message::Data(buf)).is_err() {
                    return;
                }
                match result {
                    Ok(false) => {}
                    Ok(true) => return,
                    Err(e) => {
                        let _ = to_reader.send(Message::Failed(e));
                        return;
                    }
                }
            }
        });
        Pipelined {
            raw,
            to: Some(to_inflater),
            pending: None,
            from: from_inflater,
            current: Vec::new(),
            at: 0,
        }
    }

    impl<R: Read> Pipelined<R> {
        /// Sends compressed chunks until the channel is full or the stream has been read.
        fn top_up(&mut self) -> io::Result<()> {
            while let Some(to) = &self.to {
                let chunk = match self.pending.take() {
                    Some(chunk) => chunk,
                    None => {
                        let mut chunk = vec![0u8; RAW_CHUNK];
                        let n = read_full(&mut self.raw, &mut chunk)?;
                        if n == 0 {
                            // The end: the inflater sees the channel close.
                            self.to = None;
                            return Ok(());
                        }
                        chunk.truncate(n);
                        chunk
                    }
                };
                match to.try_send(chunk) {
                    Ok(()) => {}
                    Err(TrySendError::Full(chunk)) => {
                        self.pending = Some(chunk);
                        return Ok(());
                    }
                    // The inflater stopped (it failed, and says why).
                    Err(TrySendError::Disconnected(_)) => {
                        self.to = None;
                        return Ok(());
                    }
                }
            }
            Ok(())
        }
    }

    impl<R: Read> Read for Pipelined<R> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            while self.at == self.current.len() {
                self.top_up()?;
                match self.from.recv() {
                    Ok(Message::Data(data)) => {
                        self.current = data;
                        self.at = 0;
                    }
                    Ok(Message::NeedInput) => {}
                    Ok(Message::Failed(e)) => return Err(e),
                    // The inflater is done.
                    Err(_) => return Ok(0),
                }
            }
            let n = out.len().min(self.current.len() - self.at);
            out[..n].copy_from_slice(&self.current[self.at..self.at + n]);
            self.at += n;
            Ok(n)
        }
    }

    /// Reads until `buf` is full or the input ends.
    fn read_full(raw: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
        let mut filled = 0;
        while filled < buf.len() {
            match raw.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(filled)
    }
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

    /// Both readers, one thread and two, on the same stream.
    fn both(raw: &[u8], declared: Declared) -> [(Vec<u8>, Option<String>); 2] {
        let one = read_all(DeflateEntry::new(raw, declared));
        let two = std::thread::scope(|scope| read_all(pipelined(scope, raw, declared)));
        [one, two]
    }

    #[test]
    fn inflates_whole_entries_with_one_thread_or_two() {
        for len in [0, 1, 70_000, 5 << 20] {
            let data = text(len);
            for (out, error) in both(&deflate(&data), declared(&data)) {
                assert_eq!(error, None);
                assert!(out == data, "{len} bytes");
            }
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
        for (raw, declared, message) in cases {
            for (_, error) in both(raw, declared) {
                assert_eq!(error.as_deref(), Some(message));
            }
        }
    }

    #[test]
    fn a_long_run_without_output_does_not_stall_the_pipeline() {
        // Empty stored blocks (5 bytes, no output each), far more than the
        // chunks in flight, then a final one holding "ok".
        let mut raw = [0x00, 0x00, 0x00, 0xFF, 0xFF].repeat(400_000);
        raw.extend_from_slice(&[0x01, 0x02, 0x00, 0xFD, 0xFF, b'o', b'k']);
        for (out, error) in both(&raw, declared(b"ok")) {
            assert_eq!(error, None);
            assert_eq!(out, b"ok");
        }
    }
}
