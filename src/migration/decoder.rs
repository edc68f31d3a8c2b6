//! The decoder: fed byte slices of any size, it checks and yields whole
//! frames of items.
//!
//! A frame is yielded only when all of it is good: its length within the
//! stream's bound, its CRC32, its sequence number, its payload, every item
//! and the order rules. Memory is one frame. A damaged or misnumbered frame
//! is rejected before any of its items count, and the decoder then expects
//! that frame again (see [`DecodeError::is_retryable`]); any other error is
//! final.

use flate2::Decompress;

use super::error::DecodeError;
use super::frame::{self, FrameHeader, FRAME_HEADER_LEN, MAGIC, MAX_FRAME_SIZE};
use super::frame::{MIN_FRAME_SIZE, STREAM_HEADER_LEN};
use super::item::{Item, ItemError, Totals};
use super::state::{StreamState, Violation};
use super::FORMAT_VERSION;
use crate::crc32::{self, Crc32};

/// The largest frame size a decoder accepts by default (`unpack`, and the
/// server unless `--max-frame-size` says otherwise): 16 MiB.
pub const DEFAULT_MAX_FRAME_SIZE: usize = 16 << 20;

/// Limits of a decoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecoderConfig {
    /// The largest frame size (uncompressed payload) a stream may declare.
    pub max_frame_size: usize,
}

impl Default for DecoderConfig {
    fn default() -> Self {
        DecoderConfig {
            max_frame_size: DEFAULT_MAX_FRAME_SIZE,
        }
    }
}

/// One checked frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Sequence number.
    pub sequence: u64,
    /// Stream offset of its first byte.
    pub offset: u64,
    /// Its length in the stream, header included.
    pub len: u64,
    /// Its items, in order.
    pub items: Vec<Item>,
    /// CRC-32 of the uncompressed payloads of the stream's frames up to and
    /// including this one ([`Decoder::prefix_crc32`] after it).
    pub prefix_crc32: u32,
}

/// What one [`Decoder::feed`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Input bytes taken. Less than given only when a frame completed.
    pub consumed: usize,
    /// The frame completed by those bytes.
    pub frame: Option<Frame>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    StreamHeader,
    Frames,
    Done,
}

/// An incremental stream decoder.
pub struct Decoder {
    limit: usize,
    frame_limit: usize,
    phase: Phase,
    /// The incomplete stream header or frame; after a frame completes, that
    /// frame until the next feed.
    buf: Vec<u8>,
    /// `buf` holds a completed frame.
    complete: bool,
    /// The frame header, once its bytes are in.
    header: Option<FrameHeader>,
    /// End of the last complete frame.
    committed: u64,
    sequence: u64,
    state: StreamState,
    inflater: Decompress,
    payload: Vec<u8>,
    /// CRC-32 of the uncompressed payloads of the frames decoded so far.
    prefix: Crc32,
    error: Option<DecodeError>,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new(DecoderConfig::default())
    }
}

impl Decoder {
    /// A decoder at the start of a stream.
    pub fn new(config: DecoderConfig) -> Self {
        Decoder {
            limit: config.max_frame_size.clamp(MIN_FRAME_SIZE, MAX_FRAME_SIZE),
            frame_limit: 0,
            phase: Phase::StreamHeader,
            buf: Vec::new(),
            complete: false,
            header: None,
            committed: 0,
            sequence: 0,
            state: StreamState::default(),
            inflater: Decompress::new(false),
            payload: Vec::new(),
            prefix: Crc32::new(),
            error: None,
        }
    }

    /// Takes bytes up to the end of the next frame and returns that frame
    /// when it completes.
    pub fn feed(&mut self, input: &[u8]) -> Result<Step, DecodeError> {
        if let Some(error) = &self.error {
            return Err(error.clone());
        }
        if self.complete {
            self.buf.clear();
            self.complete = false;
        }
        if self.phase == Phase::Done {
            if input.is_empty() {
                return Ok(Step {
                    consumed: 0,
                    frame: None,
                });
            }
            return Err(self.fail(DecodeError::TrailingData {
                offset: self.committed,
            }));
        }
        let mut consumed = 0;
        loop {
            let need = self.need();
            let take = (need - self.buf.len()).min(input.len() - consumed);
            self.buf
                .extend_from_slice(&input[consumed..consumed + take]);
            consumed += take;
            if self.buf.len() < need {
                return Ok(Step {
                    consumed,
                    frame: None,
                });
            }
            match (self.phase, self.header) {
                (Phase::StreamHeader, _) => self.stream_header()?,
                (_, None) => self.frame_header()?,
                (_, Some(header)) => {
                    let frame = self.frame(header)?;
                    return Ok(Step {
                        consumed,
                        frame: Some(frame),
                    });
                }
            }
        }
    }

    /// Iterates over the frames that `input` completes. Stops after the
    /// first error.
    pub fn decode<'d, 'i>(&'d mut self, input: &'i [u8]) -> Frames<'d, 'i> {
        Frames {
            decoder: self,
            input,
            failed: false,
        }
    }

    /// Checks that the stream ended cleanly after `Done`, and returns the
    /// totals received. A stream cut inside a frame is
    /// [`DecodeError::Truncated`]; keep its bytes up to the error's offset.
    pub fn finish(&self) -> Result<Totals, DecodeError> {
        if let Some(error) = &self.error {
            return Err(error.clone());
        }
        let partial = if self.complete {
            0
        } else {
            self.buf.len() as u64
        };
        match self.phase {
            Phase::Done => Ok(self.state.totals()),
            _ if partial > 0 || self.phase == Phase::StreamHeader => Err(DecodeError::Truncated {
                offset: self.committed,
                partial,
            }),
            _ => Err(DecodeError::MissingDone {
                offset: self.committed,
            }),
        }
    }

    /// End of the last complete frame: where the next frame starts.
    pub fn committed_offset(&self) -> u64 {
        self.committed
    }

    /// The stream's max frame size, once its header is in.
    pub fn frame_size(&self) -> Option<usize> {
        (self.frame_limit > 0).then_some(self.frame_limit)
    }

    /// Sequence number of the next frame.
    pub fn next_sequence(&self) -> u64 {
        self.sequence
    }

    /// CRC-32 of the uncompressed payloads of the frames decoded so far, one
    /// after the other: what a sender resuming at [`Decoder::next_sequence`]
    /// compares with the frames it cuts
    /// ([`EncoderConfig::resume_crc32`](super::EncoderConfig::resume_crc32)).
    pub fn prefix_crc32(&self) -> u32 {
        self.prefix.value()
    }

    /// True once the frame with `Done` is in.
    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// Gives back the memory of the frames decoded so far (up to two frames'
    /// worth), keeping only an incomplete frame's bytes: for a decoder kept
    /// between inputs, as an open import's is between requests. Drops
    /// [`Decoder::last_frame_bytes`].
    pub fn shrink(&mut self) {
        if self.complete {
            self.buf = Vec::new();
            self.complete = false;
        }
        self.buf.shrink_to_fit();
        self.payload = Vec::new();
    }

    /// The bytes of the frame the last [`Decoder::feed`] completed, as
    /// received (for example to append to a log).
    pub fn last_frame_bytes(&self) -> Option<&[u8]> {
        self.complete.then_some(self.buf.as_slice())
    }

    fn need(&self) -> usize {
        match (self.phase, self.header) {
            (Phase::StreamHeader, _) => STREAM_HEADER_LEN,
            (_, None) => FRAME_HEADER_LEN,
            (_, Some(h)) => FRAME_HEADER_LEN + h.stored_len as usize,
        }
    }

    /// Records a final error.
    fn fail(&mut self, error: DecodeError) -> DecodeError {
        self.error = Some(error.clone());
        error
    }

    /// Drops the bad frame's bytes: the decoder expects it again.
    fn reject(&mut self, error: DecodeError) -> DecodeError {
        self.buf.clear();
        self.header = None;
        error
    }

    fn stream_header(&mut self) -> Result<(), DecodeError> {
        let h = &self.buf;
        let error = if h[..8] != MAGIC {
            Some(DecodeError::BadMagic)
        } else if u16::from_le_bytes([h[8], h[9]]) != FORMAT_VERSION {
            Some(DecodeError::UnsupportedVersion {
                version: u16::from_le_bytes([h[8], h[9]]),
            })
        } else if crc32::hash(&h[..16]).to_le_bytes() != h[16..20] {
            Some(DecodeError::BadStreamHeader {
                reason: "header CRC32 does not match",
            })
        } else if h[10..12] != [0, 0] {
            Some(DecodeError::BadStreamHeader {
                reason: "flags are not zero",
            })
        } else {
            let size = u32::from_le_bytes([h[12], h[13], h[14], h[15]]) as usize;
            if !(MIN_FRAME_SIZE..=MAX_FRAME_SIZE).contains(&size) {
                Some(DecodeError::BadStreamHeader {
                    reason: "max frame size is outside the format's range",
                })
            } else if size > self.limit {
                Some(DecodeError::FrameSizeOverLimit {
                    size: size as u64,
                    limit: self.limit as u64,
                })
            } else {
                self.frame_limit = size;
                None
            }
        };
        if let Some(error) = error {
            return Err(self.fail(error));
        }
        self.committed = STREAM_HEADER_LEN as u64;
        self.buf.clear();
        self.phase = Phase::Frames;
        Ok(())
    }

    fn frame_header(&mut self) -> Result<(), DecodeError> {
        let bytes: &[u8; FRAME_HEADER_LEN] = self.buf[..].try_into().expect("header length");
        let header = FrameHeader::parse(bytes);
        let size = header.stored_len.max(header.payload_len) as u64;
        if size > self.frame_limit as u64 {
            let limit = self.frame_limit as u64;
            return Err(self.reject(DecodeError::FrameTooLarge {
                offset: self.committed,
                size,
                limit,
            }));
        }
        self.header = Some(header);
        Ok(())
    }

    fn frame(&mut self, h: FrameHeader) -> Result<Frame, DecodeError> {
        let offset = self.committed;
        let header_bytes: &[u8; FRAME_HEADER_LEN] = self.buf[..FRAME_HEADER_LEN]
            .try_into()
            .expect("header length");
        let stored = &self.buf[FRAME_HEADER_LEN..];
        let actual = frame::frame_crc(header_bytes, stored);
        let bad_header = |reason| DecodeError::BadFrameHeader { offset, reason };
        let check = if actual != h.crc {
            Err(DecodeError::Checksum {
                offset,
                expected: h.crc,
                actual,
            })
        } else if h.sequence != self.sequence {
            Err(DecodeError::SequenceGap {
                offset,
                expected: self.sequence,
                found: h.sequence,
            })
        } else if h.reserved != [0; 3] {
            Err(bad_header("reserved bytes are not zero"))
        } else if h.payload_len == 0 {
            Err(bad_header("empty payload"))
        } else {
            match h.method {
                frame::METHOD_STORED if h.stored_len == h.payload_len => Ok(false),
                frame::METHOD_STORED => Err(bad_header("stored payload length differs")),
                frame::METHOD_DEFLATE if h.stored_len < h.payload_len => {
                    if frame::inflate(
                        &mut self.inflater,
                        stored,
                        h.payload_len as usize,
                        &mut self.payload,
                    ) {
                        Ok(true)
                    } else {
                        Err(DecodeError::Inflate { offset })
                    }
                }
                frame::METHOD_DEFLATE => Err(bad_header("compressed payload is not smaller")),
                _ => Err(bad_header("unknown compression method")),
            }
        };
        let inflated = match check {
            Ok(inflated) => inflated,
            Err(error) => return Err(self.reject(error)),
        };
        let payload = if inflated { &self.payload[..] } else { stored };
        let items = match read_items(&mut self.state, payload, offset) {
            Ok(items) => items,
            Err(error) => return Err(self.fail(error)),
        };
        self.prefix.update(payload);
        let len = self.buf.len() as u64;
        self.committed += len;
        self.sequence += 1;
        self.header = None;
        self.complete = true;
        if self.state.is_done() {
            self.phase = Phase::Done;
        }
        Ok(Frame {
            sequence: h.sequence,
            offset,
            len,
            items,
            prefix_crc32: self.prefix.value(),
        })
    }
}

/// Decodes and applies every item of a frame's payload.
fn read_items(
    state: &mut StreamState,
    payload: &[u8],
    offset: u64,
) -> Result<Vec<Item>, DecodeError> {
    let mut items = Vec::new();
    let mut pos = 0;
    while pos < payload.len() {
        let at = pos as u64;
        let item = Item::decode(payload, &mut pos).map_err(|e| match e {
            ItemError::Unknown(tag) => DecodeError::UnknownItem { offset, at, tag },
            ItemError::Malformed(reason) => DecodeError::MalformedItem { offset, at, reason },
        })?;
        state.apply(&item).map_err(|v| match v {
            Violation::Order(reason) => DecodeError::OrderViolation { offset, at, reason },
            Violation::Mismatch(reason) => DecodeError::ContentMismatch { offset, at, reason },
        })?;
        items.push(item);
    }
    Ok(items)
}

/// The frames one input slice completes; see [`Decoder::decode`].
pub struct Frames<'d, 'i> {
    decoder: &'d mut Decoder,
    input: &'i [u8],
    failed: bool,
}

impl Iterator for Frames<'_, '_> {
    type Item = Result<Frame, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.failed && !self.input.is_empty() {
            match self.decoder.feed(self.input) {
                Ok(step) => {
                    self.input = &self.input[step.consumed..];
                    if let Some(frame) = step.frame {
                        return Some(Ok(frame));
                    }
                }
                Err(error) => {
                    self.failed = true;
                    return Some(Err(error));
                }
            }
        }
        None
    }
}
