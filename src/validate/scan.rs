//! Checking every line of one documents entry. The entry is read in chunks
//! of whole lines; each chunk is first *prechecked* (the stateless fast scan
//! of every line, [`Precheck`]) and then *merged* in order (duplicate ids,
//! the full checker for lines the fast scan left, findings, the sink).
//!
//! Natively, with two threads or more, a second thread prechecks chunks while
//! this one inflates the next; when the second thread is behind, this one
//! prechecks the chunk itself, so the two cores share the work whichever
//! stage is slower. Merging stays on this thread, so reports are the same
//! with any number of threads.

use std::cell::Cell;
use std::io::{self, Read};
use std::rc::Rc;

use super::storage::StorageMetadata;
use super::table::{Precheck, RowFinding, TableChecker};
use super::{Context, PlannedTable, Sink};
use crate::archive::{ChunkError, ChunkReader};
use crate::convex::value::{CheckedDocument, IdField};
use crate::report::{Code, Finding};

/// Bytes of lines in a chunk: small enough to stay in cache between the
/// precheck and the merge, large enough that handing chunks over is cheap.
const CHUNK: usize = 128 << 10;

/// Why scanning stopped early.
pub(super) enum ScanStop {
    Cancelled,
    Sink(io::Error),
}

/// A chunk of whole lines with, once prechecked, where each line ends and
/// what the fast scan made of it.
#[derive(Default)]
struct Chunk {
    bytes: Vec<u8>,
    len: usize,
    lines: Vec<(usize, Option<CheckedDocument>)>,
}

impl Chunk {
    /// Splits the chunk into lines and prechecks each (unless `precheck` is
    /// `None`, for tables checked only by the merge).
    fn precheck(&mut self, precheck: Option<Precheck>) {
        self.lines.clear();
        let data = &self.bytes[..self.len];
        let mut start = 0;
        for end in memchr::memchr_iter(b'\n', data) {
            self.lines
                .push((end, precheck.and_then(|p| p.line(&data[start..end]))));
            start = end + 1;
        }
        if start < data.len() {
            self.lines
                .push((data.len(), precheck.and_then(|p| p.line(&data[start..]))));
        }
    }
}

/// What the merge needs: the table, its checker and where findings go.
pub(super) struct EntryScan<'a, 'c> {
    pub t: usize,
    pub table: &'a PlannedTable,
    pub checker: &'a mut TableChecker,
    pub storage: Option<&'a mut StorageMetadata>,
    pub ids_without_first: &'a mut bool,
    pub position: &'a Rc<Cell<u64>>,
    pub ctx: &'a mut Context<'c>,
    pub sink: &'a mut dyn Sink,
    pub at: &'a dyn Fn(Finding) -> Finding,
    /// Rows merged so far.
    pub row: u64,
    /// Bytes of lines merged so far, newlines included.
    pub bytes: u64,
}

/// Whether to go on after a chunk.
#[derive(PartialEq, Eq)]
enum Flow {
    Continue,
    /// The rest of the entry cannot be read as lines (it is not UTF-8).
    Stop,
}

impl EntryScan<'_, '_> {
    /// Checks every line of `entry`, prechecking on a second thread when the
    /// options allow two threads.
    pub fn run(&mut self, entry: impl Read) -> Result<(), ScanStop> {
        let precheck = self.storage.is_none().then(|| self.checker.precheck());
        let mut reader = ChunkReader::new(entry, CHUNK, super::zip::MAX_LINE);
        #[cfg(not(target_arch = "wasm32"))]
        if self.ctx.options.threads >= 2 {
            return self.run_two_threads(reader, precheck);
        }
        let mut chunk = Chunk::default();
        loop {
            match reader.next_chunk(&mut chunk.bytes) {
                Ok(0) => break,
                Ok(len) => chunk.len = len,
                Err(e) => {
                    self.read_error(e);
                    break;
                }
            }
            chunk.precheck(precheck);
            if self.merge(&mut chunk)? == Flow::Stop {
                break;
            }
        }
        self.finish();
        Ok(())
    }

    /// [`run`](Self::run) with a second thread that prechecks chunks.
    #[cfg(not(target_arch = "wasm32"))]
    fn run_two_threads(
        &mut self,
        mut reader: ChunkReader<impl Read>,
        precheck: Option<Precheck>,
    ) -> Result<(), ScanStop> {
        use std::collections::VecDeque;
        use std::sync::mpsc::{channel, sync_channel, TrySendError};

        /// Chunks read but not yet merged, beyond which this thread waits for the other.
        const MAX_PENDING: usize = 8;

        std::thread::scope(|scope| {
            let (to_helper, inbox) = sync_channel::<Chunk>(2);
            let (outbox, from_helper) = channel::<Chunk>();
            scope.spawn(move || {
                for mut chunk in inbox {
                    chunk.precheck(precheck);
                    if outbox.send(chunk).is_err() {
                        break;
                    }
                }
            });
            // In reading order; `None` is a chunk the helper has.
            let mut pending: VecDeque<Option<Chunk>> = VecDeque::new();
            let mut spare: Vec<Chunk> = Vec::new();
            let mut read_error = None;
            let mut flow = Flow::Continue;
            loop {
                let mut chunk = spare.pop().unwrap_or_default();
                match reader.next_chunk(&mut chunk.bytes) {
                    Ok(0) => break,
                    Ok(len) => chunk.len = len,
                    Err(e) => {
                        read_error = Some(e);
                        break;
                    }
                }
                match to_helper.try_send(chunk) {
                    Ok(()) => pending.push_back(None),
                    Err(TrySendError::Full(mut chunk) | TrySendError::Disconnected(mut chunk)) => {
                        chunk.precheck(precheck);
                        pending.push_back(Some(chunk));
                    }
                }
                // Merge what is ready, in order.
                while let Some(front) = pending.front_mut() {
                    let mut chunk = match front.take() {
                        Some(chunk) => chunk,
                        None if pending.len() > MAX_PENDING => {
                            from_helper.recv().expect("the helper outlives its inbox")
                        }
                        None => match from_helper.try_recv() {
                            Ok(chunk) => chunk,
                            Err(_) => break,
                        },
                    };
                    pending.pop_front();
                    flow = self.merge(&mut chunk)?;
                    spare.push(chunk);
                    if flow == Flow::Stop {
                        break;
                    }
                }
                if flow == Flow::Stop {
                    break;
                }
            }
            drop(to_helper);
            while flow == Flow::Continue {
                let Some(front) = pending.pop_front() else {
                    break;
                };
                let mut chunk = match front {
                    Some(chunk) => chunk,
                    None => from_helper.recv().expect("the helper outlives its inbox"),
                };
                flow = self.merge(&mut chunk)?;
            }
            if flow == Flow::Continue {
                if let Some(e) = read_error {
                    self.read_error(e);
                }
            }
            self.finish();
            Ok(())
        })
    }

    /// Merges one prechecked chunk: every line in order.
    fn merge(&mut self, chunk: &mut Chunk) -> Result<Flow, ScanStop> {
        let mut start = 0;
        let data = &chunk.bytes[..chunk.len];
        for (end, prechecked) in chunk.lines.drain(..) {
            let line = &data[start..end];
            self.bytes += (end - start) as u64 + u64::from(end < data.len());
            start = end + 1;
            self.row += 1;
            let row = self.row;
            let result = match self.storage.as_deref_mut() {
                Some(meta) => match std::str::from_utf8(line) {
                    Ok(text) => meta.check_row(text, row, self.table.number),
                    Err(e) => Err(RowFinding {
                        code: Code::NotUtf8,
                        message: e.to_string(),
                        first_line: None,
                    }),
                },
                None => self
                    .checker
                    .check_prechecked(line, prechecked, row, row)
                    .map(|doc| {
                        if self.table.number.is_none() && matches!(doc.id, IdField::Valid(_)) {
                            *self.ids_without_first = true;
                        }
                    }),
            };
            let valid = result.is_ok();
            if let Err(RowFinding {
                code,
                message,
                first_line,
            }) = result
            {
                if code == Code::NotUtf8 {
                    self.ctx.error(
                        (self.at)(Finding::new(
                            Code::InvalidZip,
                            format!("invalid zip file: line {row} is not valid UTF-8"),
                        ))
                        .line(row),
                    );
                    return Ok(Flow::Stop);
                }
                let mut finding = (self.at)(Finding::new(code, message))
                    .line(row)
                    .excerpt(&String::from_utf8_lossy(line));
                finding.first_line = first_line;
                self.ctx.error(finding);
            }
            self.sink
                .document(self.t, line, valid)
                .map_err(ScanStop::Sink)?;
            self.ctx.progress.documents += 1;
            if !self.ctx.tick(self.position.get()) {
                return Err(ScanStop::Cancelled);
            }
        }
        Ok(Flow::Continue)
    }

    /// Reports why the rest of the entry could not be read.
    fn read_error(&mut self, e: ChunkError) {
        let row = self.row + 1;
        let finding = match e {
            ChunkError::LineTooLong => Finding::new(
                Code::ValueTooLargeError,
                format!(
                    "Row {row}: line {row} is longer than {} bytes; a document can be at most 1 MiB",
                    super::zip::MAX_LINE
                ),
            ),
            ChunkError::Read(e) => Finding::new(Code::InvalidZip, format!("invalid zip file: {e}")),
        };
        self.ctx.error((self.at)(finding).line(row));
    }

    /// Adds the entry's rows and bytes to its table's counts.
    fn finish(&mut self) {
        let counts = &mut self.ctx.counts[self.t];
        counts.0 += self.row;
        counts.1 += self.bytes;
    }
}
