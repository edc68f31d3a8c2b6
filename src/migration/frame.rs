//! The framing layer: the stream header and the frame header, with their
//! checksums, and per-frame compression.
//!
//! ```text
//! stream header (20 bytes)
//!   0  8  magic "SNAPPACK"
//!   8  2  format version (u16 LE)
//!  10  2  flags, zero
//!  12  4  max frame size: bound on every frame's uncompressed payload (u32 LE)
//!  16  4  CRC32 of bytes 0..16 (u32 LE)
//! frame (24-byte header, then the stored payload)
//!   0  4  stored payload length (u32 LE)
//!   4  4  uncompressed payload length (u32 LE)
//!   8  8  sequence number (u64 LE), 0 for the first frame
//!  16  1  method: 0 stored, 1 raw deflate
//!  17  3  zero
//!  20  4  CRC32 of bytes 0..20 and the stored payload (u32 LE)
//! ```

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use super::FORMAT_VERSION;
use crate::crc32::{self, Crc32};

/// The first eight bytes of every stream.
pub const MAGIC: [u8; 8] = *b"SNAPPACK";
/// Length of the stream header.
pub const STREAM_HEADER_LEN: usize = 20;
/// Length of a frame header.
pub const FRAME_HEADER_LEN: usize = 24;
/// Smallest configurable frame size.
pub const MIN_FRAME_SIZE: usize = 64;
/// Largest configurable frame size: 64 MiB.
pub const MAX_FRAME_SIZE: usize = 64 << 20;

pub(crate) const METHOD_STORED: u8 = 0;
pub(crate) const METHOD_DEFLATE: u8 = 1;

/// The stream header's bytes.
pub(crate) fn stream_header(max_frame_size: u32) -> [u8; STREAM_HEADER_LEN] {
    let mut h = [0; STREAM_HEADER_LEN];
    h[..8].copy_from_slice(&MAGIC);
    h[8..10].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    h[12..16].copy_from_slice(&max_frame_size.to_le_bytes());
    let crc = crc32::hash(&h[..16]);
    h[16..].copy_from_slice(&crc.to_le_bytes());
    h
}

/// A frame header's fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FrameHeader {
    pub stored_len: u32,
    pub payload_len: u32,
    pub sequence: u64,
    pub method: u8,
    pub reserved: [u8; 3],
    pub crc: u32,
}

impl FrameHeader {
    pub(crate) fn parse(b: &[u8; FRAME_HEADER_LEN]) -> Self {
        let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let mut sequence = [0; 8];
        sequence.copy_from_slice(&b[8..16]);
        FrameHeader {
            stored_len: u32_at(0),
            payload_len: u32_at(4),
            sequence: u64::from_le_bytes(sequence),
            method: b[16],
            reserved: [b[17], b[18], b[19]],
            crc: u32_at(20),
        }
    }

    /// The header's bytes, with the CRC32 over them and the stored payload.
    pub(crate) fn write(
        sequence: u64,
        method: u8,
        payload_len: usize,
        stored: &[u8],
    ) -> [u8; FRAME_HEADER_LEN] {
        let mut h = [0; FRAME_HEADER_LEN];
        h[0..4].copy_from_slice(&(stored.len() as u32).to_le_bytes());
        h[4..8].copy_from_slice(&(payload_len as u32).to_le_bytes());
        h[8..16].copy_from_slice(&sequence.to_le_bytes());
        h[16] = method;
        let crc = frame_crc(&h, stored);
        h[20..].copy_from_slice(&crc.to_le_bytes());
        h
    }
}

/// CRC32 of a frame header's first 20 bytes and its stored payload.
pub(crate) fn frame_crc(header: &[u8; FRAME_HEADER_LEN], stored: &[u8]) -> u32 {
    let mut crc = Crc32::new();
    crc.update(&header[..20]);
    crc.update(stored);
    crc.value()
}

/// Compresses `payload` into `out` if raw deflate makes it smaller and
/// returns whether it did. Level 0 never compresses.
pub(crate) fn compress(
    deflate: &mut Option<Compress>,
    level: u32,
    payload: &[u8],
    out: &mut Vec<u8>,
) -> bool {
    if level == 0 || payload.len() < 2 {
        return false;
    }
    let deflate = deflate.get_or_insert_with(|| Compress::new(Compression::new(level), false));
    deflate.reset();
    // Room for the whole stream even when the payload does not compress
    // (zlib-rs's level 1 panics when it runs out of room); a stream that is
    // not shorter than the payload is not worth storing compressed.
    out.clear();
    out.resize(payload.len() + payload.len() / 8 + 64, 0);
    let status = deflate.compress(payload, out, FlushCompress::Finish);
    out.truncate(deflate.total_out() as usize);
    matches!(status, Ok(Status::StreamEnd)) && out.len() < payload.len()
}

/// Inflates `stored` into `out`, which must come to exactly `payload_len`
/// bytes with no input left over.
pub(crate) fn inflate(
    inflater: &mut Decompress,
    stored: &[u8],
    payload_len: usize,
    out: &mut Vec<u8>,
) -> bool {
    inflater.reset(false);
    out.clear();
    out.resize(payload_len, 0);
    let status = inflater.decompress(stored, out, FlushDecompress::Finish);
    matches!(status, Ok(Status::StreamEnd))
        && inflater.total_out() == payload_len as u64
        && inflater.total_in() == stored.len() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incompressible_payloads_stay_stored_at_every_level() {
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let noise: Vec<u8> = (0..100_000)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        let text = b"snapshot ".repeat(10_000);
        for level in 1..=9 {
            let mut deflate = None;
            let mut out = Vec::new();
            assert!(
                !compress(&mut deflate, level, &noise, &mut out),
                "level {level}"
            );
            assert!(
                compress(&mut deflate, level, &text, &mut out),
                "level {level}"
            );
            assert!(out.len() < text.len());
        }
    }
}
