//! Errors of the encoder and the decoder, each with a stable code.

/// Why a stream does not decode. Offsets are byte offsets in the stream;
/// `offset` is where the bad frame starts, `at` the item's byte position in
/// that frame's uncompressed payload.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The stream does not start with the magic.
    #[error("not a snappack stream: bad magic at offset 0")]
    BadMagic,
    /// The stream's format version is not this build's.
    #[error("unsupported stream format version {version} at offset 8")]
    UnsupportedVersion {
        /// The version found.
        version: u16,
    },
    /// The stream header's flags, frame size or checksum are wrong.
    #[error("corrupt stream header: {reason}")]
    BadStreamHeader {
        /// What is wrong.
        reason: &'static str,
    },
    /// The stream header allows frames larger than this reader takes.
    #[error("the stream's frames may be {size} bytes, over the limit of {limit}")]
    FrameSizeOverLimit {
        /// The stream's max frame size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// A frame's declared length is over the limit.
    #[error("frame at offset {offset}: {size} bytes is over the limit of {limit}")]
    FrameTooLarge {
        /// Frame start.
        offset: u64,
        /// Declared length.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// A frame's CRC32 does not match its bytes.
    #[error("frame at offset {offset}: CRC32 is {actual:08x}, header says {expected:08x}")]
    Checksum {
        /// Frame start.
        offset: u64,
        /// CRC32 in the header.
        expected: u32,
        /// CRC32 of the bytes received.
        actual: u32,
    },
    /// A frame's sequence number is not the next one.
    #[error("frame at offset {offset}: sequence number {found}, expected {expected}")]
    SequenceGap {
        /// Frame start.
        offset: u64,
        /// The next sequence number.
        expected: u64,
        /// The one in the frame.
        found: u64,
    },
    /// A frame header's method, reserved bytes or lengths are not valid.
    #[error("frame at offset {offset}: bad frame header: {reason}")]
    BadFrameHeader {
        /// Frame start.
        offset: u64,
        /// What is wrong.
        reason: &'static str,
    },
    /// A compressed payload does not inflate to exactly its declared length.
    #[error("frame at offset {offset}: payload does not inflate to its declared length")]
    Inflate {
        /// Frame start.
        offset: u64,
    },
    /// An item tag this version does not know.
    #[error("frame at offset {offset}, payload byte {at}: unknown item tag {tag}")]
    UnknownItem {
        /// Frame start.
        offset: u64,
        /// Item position in the payload.
        at: u64,
        /// The tag.
        tag: u8,
    },
    /// An item's bytes do not decode.
    #[error("frame at offset {offset}, payload byte {at}: malformed item: {reason}")]
    MalformedItem {
        /// Frame start.
        offset: u64,
        /// Item position in the payload.
        at: u64,
        /// What is wrong.
        reason: &'static str,
    },
    /// An item breaks the order rules.
    #[error("frame at offset {offset}, payload byte {at}: out of order: {reason}")]
    OrderViolation {
        /// Frame start.
        offset: u64,
        /// Item position in the payload.
        at: u64,
        /// Which rule.
        reason: String,
    },
    /// A count, size or checksum does not match the data received.
    #[error("frame at offset {offset}, payload byte {at}: {reason}")]
    ContentMismatch {
        /// Frame start.
        offset: u64,
        /// Item position in the payload.
        at: u64,
        /// What differs.
        reason: String,
    },
    /// Bytes after the frame holding `Done`.
    #[error("data after the end of the stream at offset {offset}")]
    TrailingData {
        /// Where the stream ended.
        offset: u64,
    },
    /// The input ended inside the stream header or a frame.
    #[error("stream truncated: {partial} bytes of an incomplete {} after offset {offset}", if *offset == 0 { "stream header or first frame" } else { "frame" })]
    Truncated {
        /// End of the last complete frame: keep up to here.
        offset: u64,
        /// Bytes of the incomplete frame.
        partial: u64,
    },
    /// The input ended between frames, but before `Done`.
    #[error("stream ends at offset {offset} before Done")]
    MissingDone {
        /// End of the last complete frame.
        offset: u64,
    },
}

impl DecodeError {
    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            DecodeError::BadMagic => "BadMagic",
            DecodeError::UnsupportedVersion { .. } => "UnsupportedVersion",
            DecodeError::BadStreamHeader { .. } => "BadStreamHeader",
            DecodeError::FrameTooLarge { .. } | DecodeError::FrameSizeOverLimit { .. } => {
                "FrameTooLarge"
            }
            DecodeError::Checksum { .. } => "Checksum",
            DecodeError::SequenceGap { .. } => "SequenceGap",
            DecodeError::BadFrameHeader { .. } => "BadFrameHeader",
            DecodeError::Inflate { .. } => "Inflate",
            DecodeError::UnknownItem { .. } => "UnknownItem",
            DecodeError::MalformedItem { .. } => "MalformedItem",
            DecodeError::OrderViolation { .. } => "OrderViolation",
            DecodeError::ContentMismatch { .. } => "ContentMismatch",
            DecodeError::TrailingData { .. } => "TrailingData",
            DecodeError::Truncated { .. } => "Truncated",
            DecodeError::MissingDone { .. } => "MissingDone",
        }
    }

    /// The stream offset the error is about: the bad frame's start, or the
    /// end of the last good frame.
    pub fn offset(&self) -> u64 {
        match self {
            DecodeError::BadMagic
            | DecodeError::BadStreamHeader { .. }
            | DecodeError::FrameSizeOverLimit { .. } => 0,
            DecodeError::UnsupportedVersion { .. } => 8,
            DecodeError::FrameTooLarge { offset, .. }
            | DecodeError::Checksum { offset, .. }
            | DecodeError::SequenceGap { offset, .. }
            | DecodeError::BadFrameHeader { offset, .. }
            | DecodeError::Inflate { offset }
            | DecodeError::UnknownItem { offset, .. }
            | DecodeError::MalformedItem { offset, .. }
            | DecodeError::OrderViolation { offset, .. }
            | DecodeError::ContentMismatch { offset, .. }
            | DecodeError::TrailingData { offset }
            | DecodeError::Truncated { offset, .. }
            | DecodeError::MissingDone { offset } => *offset,
        }
    }

    /// True for a frame that was rejected before any of its items were
    /// applied (a damaged, oversized or misnumbered frame): the decoder stays
    /// usable and expects that frame again at [`DecodeError::offset`].
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            DecodeError::FrameTooLarge { .. }
                | DecodeError::Checksum { .. }
                | DecodeError::SequenceGap { .. }
                | DecodeError::BadFrameHeader { .. }
                | DecodeError::Inflate { .. }
        )
    }
}

/// Why the encoder refuses an item or its configuration.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    /// The configuration is out of range.
    #[error("invalid encoder configuration: {0}")]
    InvalidConfig(String),
    /// The items break the order rules (see `docs/FORMAT.md`).
    #[error("out of order: {0}")]
    Order(String),
    /// A storage file's data does not add up to its declared size.
    #[error("{0}")]
    Mismatch(String),
    /// One item is larger than a frame.
    #[error("an item of {size} bytes does not fit a frame of {limit}")]
    ItemTooLarge {
        /// Encoded item size.
        size: usize,
        /// Frame size.
        limit: usize,
    },
    /// A document line contains a newline byte.
    #[error("document {document} of table {table} contains a newline byte")]
    NewlineInDocument {
        /// Table index.
        table: u32,
        /// 0-based document number in the table.
        document: u64,
    },
    /// Resuming: the frames the receiver has are not the ones this input
    /// makes, so it is not the input they were packed from.
    #[error("{}", resume_mismatch(*receiver_frames, *frames))]
    ResumeMismatch {
        /// Frames the receiver has.
        receiver_frames: u64,
        /// Frames the whole input makes, when fewer than the receiver has.
        frames: Option<u64>,
    },
    /// Writing the output failed.
    #[error("writing the stream failed: {0}")]
    Write(#[from] std::io::Error),
}

fn resume_mismatch(receiver_frames: u64, frames: Option<u64>) -> String {
    match frames {
        Some(frames) => format!(
            "the input makes {frames} frames, fewer than the {receiver_frames} the import already has: it is not the input the import was started with"
        ),
        None => format!(
            "the import's first {receiver_frames} frames are not the ones this input makes: it is not the input the import was started with, or not packed for the same target (the component, a single-table file's table, a CSV file's schema: give the ones the import was started with), or the import's stream was made by `snappack pack`, whose header records when it packed, or by another version of snappack"
        ),
    }
}

impl EncodeError {
    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            EncodeError::InvalidConfig(_) => "InvalidConfig",
            EncodeError::Order(_) => "OrderViolation",
            EncodeError::Mismatch(_) => "ContentMismatch",
            EncodeError::ItemTooLarge { .. } => "ItemTooLarge",
            EncodeError::NewlineInDocument { .. } => "NewlineInDocument",
            EncodeError::ResumeMismatch { .. } => "ResumeMismatch",
            EncodeError::Write(_) => "WriteFailed",
        }
    }
}

impl From<super::state::Violation> for EncodeError {
    fn from(v: super::state::Violation) -> Self {
        match v {
            super::state::Violation::Order(reason) => EncodeError::Order(reason),
            super::state::Violation::Mismatch(reason) => EncodeError::Mismatch(reason),
        }
    }
}
