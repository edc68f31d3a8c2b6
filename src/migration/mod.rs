//! The migration-item stream: how a validated snapshot travels from the
//! client to the server.
//!
//! A stream is a small header followed by frames. Each frame carries its
//! sequence number, a payload of whole [`Item`]s compressed with raw
//! deflate, and a CRC32, so it can be checked on its own. The [`Encoder`]
//! batches items into frames with bounded memory and reproduces the same
//! bytes for the same input (a sender resumes by re-encoding and skipping
//! the frames the receiver already has); the [`Decoder`] is fed arbitrary
//! byte slices, checks every frame, the item order and every count and
//! checksum, and never panics on bad input. `docs/FORMAT.md` gives the exact
//! bytes.

mod decoder;
mod encoder;
mod error;
mod frame;
mod frame_writer;
mod item;
mod pack;
mod state;

pub use decoder::{Decoder, DecoderConfig, Frame, Frames, Step, DEFAULT_MAX_FRAME_SIZE};
pub use encoder::{EncodeSummary, Encoder, EncoderConfig, DEFAULT_LEVEL};
pub use error::{DecodeError, EncodeError};
pub use frame::{FRAME_HEADER_LEN, MAGIC, MAX_FRAME_SIZE, MIN_FRAME_SIZE, STREAM_HEADER_LEN};
pub use item::{FileStart, Header, Item, TableDecl, TableEnd, Totals};
pub use pack::{
    component_prefix, pack, unpack, unpack_frames, PackError, PackOptions, Packed, UnpackError,
    Unpacked, MIN_PACK_FRAME_SIZE,
};

/// The version of the stream format this build writes and reads.
pub const FORMAT_VERSION: u16 = 1;

/// Default bound on a frame's uncompressed payload: 1 MiB.
pub const DEFAULT_FRAME_SIZE: usize = 1 << 20;
