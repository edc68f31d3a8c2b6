//! The encoder: an item sink that packs items into frames and writes them.
//!
//! Memory is one frame's payload and its compressed form. Where frames are
//! cut depends only on the items (never on how the caller chunks a storage
//! file's data), so the same items always give the same frames: a sender
//! resumes by encoding again with [`EncoderConfig::resume_from`] set to the
//! first frame the receiver lacks.

use std::io::Write;

use super::error::EncodeError;
use super::frame::{self, MAX_FRAME_SIZE, MIN_FRAME_SIZE};
use super::frame_writer::FrameWriter;
use super::item::{FileStart, Header, Item, TableDecl, Totals, DOCUMENTS_HEAD_LEN};
use super::item::{FILE_DATA_HEAD_LEN, TAG_DOCUMENTS, TAG_FILE_DATA};
use super::state::StreamState;
use super::DEFAULT_FRAME_SIZE;
use crate::crc32::Crc32;

/// Deflate level used by default: the fastest level whose stream stays
/// within 5% of a ZIP's size on snapshot data (levels 1 to 4 are 46% to 6%
/// larger; see `docs/FORMAT.md`).
pub const DEFAULT_LEVEL: u32 = 5;

/// How the encoder cuts and compresses frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncoderConfig {
    /// Bound on a frame's uncompressed payload, in bytes
    /// ([`MIN_FRAME_SIZE`]..=[`MAX_FRAME_SIZE`]).
    pub max_frame_size: usize,
    /// Deflate level, 0 (store) to 9.
    pub level: u32,
    /// First frame to write. Frames before it, and the stream header when it
    /// is not 0, are cut and counted but neither compressed nor written.
    pub resume_from: u64,
    /// When resuming, the receiver's CRC-32 of the payloads of the frames
    /// before `resume_from` ([`Decoder::prefix_crc32`](super::Decoder::prefix_crc32)).
    /// The encoder compares it with its own frames' before writing any, and
    /// fails with [`EncodeError::ResumeMismatch`] when they differ: the input
    /// is not the one the receiver's frames were packed from.
    pub resume_crc32: Option<u32>,
    /// Threads that compress frames: with 2, a helper thread compresses
    /// frames while the encoder goes on (natively; in WebAssembly there is
    /// one). The bytes written are the same with any number.
    pub threads: usize,
    /// Which frames this encoder writes, so that several encoders of one
    /// input share the compressing (browser workers): of the frames from
    /// `resume_from` on, every `shards`-th, starting with the `shard`-th
    /// (and the stream header with shard 0). `shard: 0, shards: 1` writes
    /// them all. Frames do not depend on their compression, so every shard
    /// cuts the same ones.
    pub shard: u64,
    /// How many encoders share the frames (1 or more).
    pub shards: u64,
}

impl Default for EncoderConfig {
    fn default() -> Self {
        EncoderConfig {
            max_frame_size: DEFAULT_FRAME_SIZE,
            level: DEFAULT_LEVEL,
            resume_from: 0,
            resume_crc32: None,
            threads: 1,
            shard: 0,
            shards: 1,
        }
    }
}

impl EncoderConfig {
    /// Whether this encoder writes frame `sequence`.
    fn writes(&self, sequence: u64) -> bool {
        sequence >= self.resume_from && (sequence - self.resume_from) % self.shards == self.shard
    }
}

/// What an encoder wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncodeSummary {
    /// Frames in the whole stream, written or skipped.
    pub frames: u64,
    /// Bytes written (the whole stream unless resuming).
    pub bytes_written: u64,
    /// The totals sent in `Done`.
    pub totals: Totals,
}

/// The kind of a data item: document data of a table, or file data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Data {
    Documents(u32),
    File,
}

/// Packs items into frames and writes them to `W`.
pub struct Encoder<W: Write> {
    out: W,
    config: EncoderConfig,
    state: StreamState,
    payload: Vec<u8>,
    /// The data item ending the pending payload, which more data of its
    /// kind extends, and where its length field is.
    open: Option<(Data, usize)>,
    sequence: u64,
    bytes_written: u64,
    frames: FrameWriter,
    /// CRC-32 of the payloads of the frames before `resume_from`, while they
    /// are cut (only with [`EncoderConfig::resume_crc32`]).
    prefix: Crc32,
}

impl<W: Write> Encoder<W> {
    /// Starts a stream: writes the stream header (unless resuming) and
    /// queues `header`.
    pub fn new(out: W, config: EncoderConfig, header: Header) -> Result<Self, EncodeError> {
        if !(MIN_FRAME_SIZE..=MAX_FRAME_SIZE).contains(&config.max_frame_size) {
            return Err(EncodeError::InvalidConfig(format!(
                "max_frame_size {} is outside {MIN_FRAME_SIZE}..={MAX_FRAME_SIZE}",
                config.max_frame_size
            )));
        }
        if config.level > 9 {
            return Err(EncodeError::InvalidConfig(format!(
                "deflate level {} is over 9",
                config.level
            )));
        }
        if config.shard >= config.shards {
            return Err(EncodeError::InvalidConfig(format!(
                "shard {} of {} does not exist",
                config.shard, config.shards
            )));
        }
        let mut encoder = Encoder {
            out,
            config,
            state: StreamState::default(),
            payload: Vec::with_capacity(config.max_frame_size),
            open: None,
            sequence: 0,
            bytes_written: 0,
            frames: FrameWriter::new(config.level, config.threads),
            prefix: Crc32::new(),
        };
        if config.resume_from == 0 && config.shard == 0 {
            encoder.write(&frame::stream_header(config.max_frame_size as u32))?;
        }
        let item = Item::Header(header);
        encoder.check_fits(&item)?;
        encoder.state.apply(&item)?;
        encoder.append(&item)?;
        Ok(encoder)
    }

    /// Whether what is encoded now goes into the frames a resumed receiver
    /// already has and whose payloads it checks ([`EncoderConfig::resume_crc32`]).
    pub fn in_checked_prefix(&self) -> bool {
        self.config.resume_crc32.is_some() && self.sequence < self.config.resume_from
    }

    /// Declares a table and returns its index.
    pub fn table(&mut self, decl: TableDecl) -> Result<u32, EncodeError> {
        let item = Item::Table(decl);
        self.check_fits(&item)?;
        let index = self.state.totals().tables;
        self.state.apply(&item)?;
        self.append(&item)?;
        Ok(index)
    }

    /// Adds one document of a table: its JSON line exactly as read, without
    /// the line terminator.
    pub fn document(&mut self, table: u32, line: &[u8]) -> Result<(), EncodeError> {
        if line.contains(&b'\n') {
            return Err(EncodeError::NewlineInDocument {
                table,
                document: self.state.documents_in(table),
            });
        }
        self.state.documents(table, line)?;
        self.state.documents(table, b"\n")?;
        let extends = matches!(self.open, Some((Data::Documents(t), _)) if t == table);
        let head = if extends { 0 } else { DOCUMENTS_HEAD_LEN };
        if self.payload.len() + head + line.len() + 1 > self.config.max_frame_size {
            // A line starts in a new frame unless it fits the current one;
            // one longer than a frame is then split across frames.
            self.flush()?;
        }
        self.append_data(Data::Documents(table), line)?;
        self.append_data(Data::Documents(table), b"\n")
    }

    /// Ends a table: no more documents of it follow.
    pub fn end_table(&mut self, table: u32) -> Result<(), EncodeError> {
        let end = self.state.end_table(table)?;
        self.append(&Item::TableEnd(end))
    }

    /// Starts a storage file; its data follows with [`Encoder::file_data`].
    pub fn file(&mut self, start: FileStart) -> Result<(), EncodeError> {
        let item = Item::File(start);
        self.check_fits(&item)?;
        self.state.apply(&item)?;
        self.append(&item)
    }

    /// Adds data to the open storage file, in chunks of any size.
    pub fn file_data(&mut self, data: &[u8]) -> Result<(), EncodeError> {
        self.state.file_data(data)?;
        self.append_data(Data::File, data)
    }

    /// Completes the open storage file and returns the SHA-256 of its data.
    pub fn end_file(&mut self) -> Result<[u8; 32], EncodeError> {
        let sha256 = self.state.end_file()?;
        self.append(&Item::FileEnd { sha256 })?;
        Ok(sha256)
    }

    /// Writes `Done` and the last frame, flushes, and returns the output.
    pub fn finish(mut self) -> Result<(W, EncodeSummary), EncodeError> {
        let totals = self.state.done()?;
        self.append(&Item::Done(totals))?;
        self.flush()?;
        if self.sequence <= self.config.resume_from {
            // The receiver has every frame of this input, or more.
            self.check_resumed_prefix()?;
        }
        self.bytes_written += self.frames.finish(&mut self.out)?;
        self.out.flush()?;
        let summary = EncodeSummary {
            frames: self.sequence,
            bytes_written: self.bytes_written,
            totals,
        };
        Ok((self.out, summary))
    }

    fn check_fits(&self, item: &Item) -> Result<(), EncodeError> {
        let size = item.encoded_len();
        if size > self.config.max_frame_size {
            return Err(EncodeError::ItemTooLarge {
                size,
                limit: self.config.max_frame_size,
            });
        }
        Ok(())
    }

    /// Appends a whole item, starting a new frame if it does not fit.
    fn append(&mut self, item: &Item) -> Result<(), EncodeError> {
        self.check_fits(item)?;
        if self.payload.len() + item.encoded_len() > self.config.max_frame_size {
            self.flush()?;
        }
        item.encode(&mut self.payload);
        self.open = None;
        Ok(())
    }

    /// Appends data to the open item of its kind, or to new items, cutting
    /// frames as they fill.
    fn append_data(&mut self, kind: Data, mut data: &[u8]) -> Result<(), EncodeError> {
        let max = self.config.max_frame_size;
        while !data.is_empty() {
            let len_at = match self.open {
                Some((open, len_at)) if open == kind && self.payload.len() < max => len_at,
                _ => {
                    let head = match kind {
                        Data::Documents(_) => DOCUMENTS_HEAD_LEN,
                        Data::File => FILE_DATA_HEAD_LEN,
                    };
                    // A new item needs room for its head and one byte.
                    if self.payload.len() + head >= max {
                        self.flush()?;
                    }
                    match kind {
                        Data::Documents(table) => {
                            self.payload.push(TAG_DOCUMENTS);
                            self.payload.extend_from_slice(&table.to_le_bytes());
                        }
                        Data::File => self.payload.push(TAG_FILE_DATA),
                    }
                    let len_at = self.payload.len();
                    self.payload.extend_from_slice(&0u32.to_le_bytes());
                    self.open = Some((kind, len_at));
                    len_at
                }
            };
            let take = data.len().min(max - self.payload.len());
            self.payload.extend_from_slice(&data[..take]);
            data = &data[take..];
            let field = &mut self.payload[len_at..len_at + 4];
            let len = u32::from_le_bytes([field[0], field[1], field[2], field[3]]) + take as u32;
            field.copy_from_slice(&len.to_le_bytes());
        }
        Ok(())
    }

    /// Cuts the pending payload into a frame and hands it to the frame
    /// writer, unless this encoder does not write it.
    fn flush(&mut self) -> Result<(), EncodeError> {
        if self.payload.is_empty() {
            return Ok(());
        }
        if self.in_checked_prefix() {
            self.prefix.update(&self.payload);
        }
        if self.config.writes(self.sequence) {
            self.bytes_written +=
                self.frames
                    .frame(self.sequence, &mut self.payload, &mut self.out)?;
        }
        self.sequence += 1;
        self.payload.clear();
        self.open = None;
        // The receiver's frames are all cut: they must be the ones it has.
        if self.sequence == self.config.resume_from {
            self.check_resumed_prefix()?;
        }
        Ok(())
    }

    /// Fails when the frames before `resume_from` are not the receiver's:
    /// fewer of them, or other payloads.
    fn check_resumed_prefix(&self) -> Result<(), EncodeError> {
        let Some(expected) = self.config.resume_crc32 else {
            return Ok(());
        };
        let short = self.sequence < self.config.resume_from;
        if short || self.prefix.value() != expected {
            return Err(EncodeError::ResumeMismatch {
                receiver_frames: self.config.resume_from,
                frames: short.then_some(self.sequence),
            });
        }
        Ok(())
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), EncodeError> {
        self.out.write_all(bytes)?;
        self.bytes_written += bytes.len() as u64;
        Ok(())
    }
}
