//! The staging log of one import: the stream bytes exactly as received (the
//! stream header, then every accepted frame), appended and fsynced before a
//! frame is acknowledged. The log is itself a valid stream prefix, so
//! reopening it is decoding it: a partial trailing frame (a crash in the
//! middle of an append) is trimmed, and the frames before it are replayed.
//! The file is open only while it is read or appended to, so imports left
//! open hold no file descriptor.

use std::fs::OpenOptions;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::migration::{DecodeError, Decoder, DecoderConfig, Frame, STREAM_HEADER_LEN};

/// A staging log.
pub struct StagingLog {
    path: PathBuf,
    len: u64,
}

/// What reopening a log found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reopened {
    /// Bytes kept.
    pub kept: u64,
    /// Bytes trimmed from the end.
    pub trimmed: u64,
}

impl StagingLog {
    /// Opens (or creates) the log at `path` and replays it: every frame goes
    /// through a fresh decoder and then `on_frame`. A partial trailing frame,
    /// or anything from the first frame the decoder or `on_frame` refuses,
    /// is trimmed. Returns the log, the decoder positioned after the last
    /// frame kept, and what was trimmed.
    pub fn open<E>(
        path: &Path,
        config: DecoderConfig,
        mut on_frame: impl FnMut(&Frame) -> Result<(), E>,
    ) -> Result<(Self, Decoder, Reopened), OpenError<E>> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        let len = file.metadata()?.len();
        // The stream header and whole frames; a partial trailing frame goes.
        let whole = match crate::client::scan_frames(&mut file)?.last() {
            Some(&(_, end)) => end,
            None if len >= STREAM_HEADER_LEN as u64 => STREAM_HEADER_LEN as u64,
            None => 0,
        };
        let mut decoder = Decoder::new(config);
        file.seek(SeekFrom::Start(0))?;
        let mut buf = vec![0u8; 1 << 20];
        let mut remaining = whole;
        while remaining > 0 {
            let want = buf.len().min(remaining as usize);
            let n = file.read(&mut buf[..want])?;
            if n == 0 {
                break;
            }
            remaining -= n as u64;
            let mut pos = 0;
            while pos < n {
                match decoder.feed(&buf[pos..n]) {
                    Ok(step) => {
                        pos += step.consumed;
                        if let Some(frame) = step.frame {
                            on_frame(&frame).map_err(OpenError::Frame)?;
                        }
                    }
                    // A stream this server's limits no longer take (its
                    // --max-frame-size was lowered): nothing in it is
                    // damaged, so nothing is cut; the import cannot go on.
                    Err(error @ DecodeError::FrameSizeOverLimit { .. }) => {
                        return Err(OpenError::OverLimit(error));
                    }
                    Err(error) => {
                        // A damaged frame inside the log: keep what is before it.
                        let kept = decoder.committed_offset();
                        file.set_len(kept)?;
                        file.sync_all()?;
                        return Err(OpenError::Damaged { error, kept });
                    }
                }
            }
        }
        let kept = whole - remaining;
        if kept < len {
            file.set_len(kept)?;
            file.sync_all()?;
        }
        Ok((
            StagingLog {
                path: path.to_owned(),
                len: kept,
            },
            decoder,
            Reopened {
                kept,
                trimmed: len - kept,
            },
        ))
    }

    /// Appends bytes and makes them durable before it returns.
    pub fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        let mut file = OpenOptions::new().append(true).open(&self.path)?;
        file.write_all(bytes)?;
        file.sync_data()?;
        self.len += bytes.len() as u64;
        Ok(())
    }

    /// Bytes in the log.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True when nothing was received yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Why a log does not reopen.
#[derive(Debug, thiserror::Error)]
pub enum OpenError<E> {
    /// Reading or trimming the file failed.
    #[error("staging log: {0}")]
    Io(#[from] io::Error),
    /// A frame in the log does not decode; the log was cut before it.
    #[error("staging log damaged at byte {kept}: {error}")]
    Damaged {
        /// The decoder's error.
        error: DecodeError,
        /// Bytes kept.
        kept: u64,
    },
    /// `on_frame` refused a frame.
    #[error("staging log replay: {0}")]
    Frame(E),
    /// The stream's header declares frames over this decoder's limit; the
    /// log is left as it is.
    #[error("staging log over the limits: {0}")]
    OverLimit(DecodeError),
}
