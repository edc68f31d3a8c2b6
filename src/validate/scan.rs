//! Checking every line of one documents entry. The entry is read in chunks
//! of whole lines, and each chunk goes through three steps:
//!
//! 1. *precheck*: the stateless fast scan of every line ([`Precheck`]);
//! 2. *check*, in order: everything with state, in the [`TableChecker`]
//!    (duplicate ids) or the `_storage` metadata, and the full checker for
//!    the lines the fast scan left;
//! 3. *report*, in order: findings, the sink, progress.
//!
//! Natively, with two threads or more, a second thread takes steps 1 and 2
//! while this one inflates the next chunk and reports; when the second thread
//! is behind, this one prechecks chunks itself and holds them until the second
//! has room, so the two cores share the work whichever step is slower. Steps
//! 2 and 3 see the chunks in order on one thread each, so reports are the
//! same with any number of threads.

use std::io::{self, Read};

use super::storage::StorageMetadata;
use super::table::{Precheck, Prechecked, RowFinding, TableChecker};
use super::{Context, PlannedTable, Sink};
use crate::archive::{ChunkReader, LineError};
use crate::report::{Code, Finding};

/// Bytes of lines in a chunk: small enough to stay in cache from one step to
/// the next, large enough that handing chunks over is cheap.
const CHUNK: usize = 128 << 10;

/// Bytes of chunks a walk with two threads has read ahead (with the helper,
/// or held for it) before it reads another: chunks of long lines (up to
/// [`super::zip::MAX_LINE`] each) are not read ahead by the dozen, so a walk
/// holds about one such line at a time beside this much.
#[cfg(not(target_arch = "wasm32"))]
const MAX_AHEAD: usize = 8 << 20;

/// A chunk whose storage grew past this (for a long line) is not kept for
/// reuse: its memory goes back once the line is checked.
#[cfg(not(target_arch = "wasm32"))]
const MAX_SPARE: usize = 4 * CHUNK;

/// The most ids room is made for in advance (about 100 MB of set).
const MAX_RESERVED_IDS: u64 = 1 << 22;

/// Why scanning stopped early.
pub(super) enum ScanStop {
    Cancelled,
    Sink(io::Error),
}

/// A chunk of whole lines and what the steps made of them.
#[derive(Default)]
struct Chunk {
    bytes: Vec<u8>,
    len: usize,
    prechecked: bool,
    /// Step 1: where each line ends and what the fast scan found.
    lines: Vec<(usize, Prechecked)>,
    /// Step 2: where each line ends and its outcome (whether it carries a
    /// valid `_id`, or why it is rejected), up to the line that stops the entry.
    outcomes: Vec<(usize, Result<bool, Box<RowFinding>>)>,
}

impl Chunk {
    /// Step 1: splits the chunk into lines and prechecks each, unless
    /// `precheck` is `None` (tables that step 2 checks whole).
    fn precheck(&mut self, precheck: Option<Precheck>) {
        self.lines.clear();
        let data = &self.bytes[..self.len];
        let mut start = 0;
        // A line ends at a `\n` or at the end of the chunk.
        while start < data.len() {
            let rest = &data[start..];
            let (len, prechecked) = match precheck {
                Some(precheck) => precheck.first_line(rest),
                None => (
                    memchr::memchr(b'\n', rest).unwrap_or(rest.len()),
                    Prechecked::Unsure,
                ),
            };
            self.lines.push((start + len, prechecked));
            start += len + 1;
        }
        self.prechecked = true;
    }
}

/// Step 2's state: the table's checker, and the rows checked so far.
pub(super) struct Checking<'a> {
    pub checker: &'a mut TableChecker,
    pub storage: Option<&'a mut StorageMetadata>,
    pub number: Option<u32>,
    /// The entry's declared uncompressed size, for sizing the duplicate-id set.
    entry_size: u64,
    row: u64,
    /// A line was not UTF-8: the rest of the entry is not read as lines.
    stopped: bool,
}

impl<'a> Checking<'a> {
    /// Step 2's state for one entry.
    pub fn new(
        checker: &'a mut TableChecker,
        storage: Option<&'a mut StorageMetadata>,
        number: Option<u32>,
        entry_size: u64,
    ) -> Self {
        Checking {
            checker,
            storage,
            number,
            entry_size,
            row: 0,
            stopped: false,
        }
    }

    /// Step 2 for one prechecked chunk.
    fn check(&mut self, chunk: &mut Chunk) {
        chunk.outcomes.clear();
        if self.stopped {
            return;
        }
        if self.row == 0 && chunk.len > 0 {
            // Room for the entry's ids at once, estimated from its first
            // lines: growing would hold the old and the new table together.
            // The declared size is the archive's word, so the room is capped.
            let lines = chunk.lines.len() as u64 * self.entry_size / chunk.len as u64;
            self.checker
                .reserve_ids(lines.min(MAX_RESERVED_IDS) as usize);
        }
        // The chunk's places in the duplicate set, read together.
        for (_, prechecked) in &chunk.lines {
            self.checker.preload(prechecked);
        }
        let data = &chunk.bytes[..chunk.len];
        let mut start = 0;
        for (end, prechecked) in chunk.lines.drain(..) {
            let line = &data[start..end];
            start = end + 1;
            self.row += 1;
            let row = self.row;
            let outcome = match self.storage.as_deref_mut() {
                Some(meta) => match std::str::from_utf8(line) {
                    Ok(text) => meta.check_row(text, row, self.number).map(|()| false),
                    Err(e) => Err(RowFinding::new(Code::NotUtf8, e.to_string())),
                },
                None => self.checker.check_prechecked(line, prechecked, row, row),
            }
            .map_err(Box::new);
            let stop = matches!(&outcome, Err(f) if f.code == Code::NotUtf8);
            chunk.outcomes.push((end, outcome));
            if stop {
                self.stopped = true;
                break;
            }
        }
    }
}

/// Step 3's state: where findings, lines and progress go.
pub(super) struct Reporting<'a, 'c> {
    pub t: usize,
    pub table: &'a PlannedTable,
    pub ids_without_first: &'a mut bool,
    pub ctx: &'a mut Context<'c>,
    pub sink: &'a mut dyn Sink,
    pub at: &'a dyn Fn(Finding) -> Finding,
    /// Rows reported so far.
    pub row: u64,
    /// Bytes of lines reported so far, newlines included.
    pub bytes: u64,
}

/// Whether to go on after a chunk.
#[derive(PartialEq, Eq)]
enum Flow {
    Continue,
    /// The rest of the entry cannot be read as lines (it is not UTF-8).
    Stop,
}

/// Checks every line of `entry`: step 2 in `checking`, step 3 in `reporting`.
pub(super) fn scan(
    entry: impl Read,
    mut checking: Checking,
    reporting: &mut Reporting,
) -> Result<(), ScanStop> {
    let precheck = checking
        .storage
        .is_none()
        .then(|| checking.checker.precheck());
    let mut reader = ChunkReader::new(entry, CHUNK, super::zip::MAX_LINE);
    #[cfg(not(target_arch = "wasm32"))]
    if reporting.ctx.options.threads >= 2 && precheck.is_some() {
        return scan_two_threads(reader, precheck, checking, reporting);
    }
    let mut chunk = Chunk::default();
    loop {
        match reader.next_chunk(&mut chunk.bytes) {
            Ok(0) => break,
            Ok(len) => chunk.len = len,
            Err(e) => {
                reporting.read_error(e);
                break;
            }
        }
        chunk.precheck(precheck);
        checking.check(&mut chunk);
        if reporting.report(&chunk)? == Flow::Stop {
            break;
        }
    }
    reporting.finish();
    Ok(())
}

/// [`scan`] with a second thread for steps 1 and 2.
#[cfg(not(target_arch = "wasm32"))]
fn scan_two_threads(
    mut reader: ChunkReader<impl Read>,
    precheck: Option<Precheck>,
    mut checking: Checking,
    reporting: &mut Reporting,
) -> Result<(), ScanStop> {
    use std::collections::VecDeque;
    use std::sync::mpsc::{channel, sync_channel, TrySendError};

    /// Chunks this thread prechecks and holds while the helper is behind,
    /// before it waits for the helper.
    const MAX_HELD: usize = 4;

    std::thread::scope(|scope| {
        let (to_helper, inbox) = sync_channel::<Chunk>(4);
        let (outbox, from_helper) = channel::<Chunk>();
        scope.spawn(move || {
            for mut chunk in inbox {
                if !chunk.prechecked {
                    chunk.precheck(precheck);
                }
                checking.check(&mut chunk);
                if outbox.send(chunk).is_err() {
                    break;
                }
            }
        });
        // Prechecked here, to go to the helper in order once it has room.
        let mut held: VecDeque<Chunk> = VecDeque::new();
        let mut sent = Sent::default();
        let mut read_error = None;
        let mut flow = Flow::Continue;
        'read: loop {
            // Report the chunks back from the helper; with too much read
            // ahead (long lines), wait for them while the helper has some.
            loop {
                let chunk = if sent.bytes > MAX_AHEAD && sent.count > held.len() {
                    match from_helper.recv() {
                        Ok(chunk) => chunk,
                        Err(_) => break 'read,
                    }
                } else {
                    match from_helper.try_recv() {
                        Ok(chunk) => chunk,
                        Err(_) => break,
                    }
                };
                flow = sent.report(chunk, reporting)?;
                if flow == Flow::Stop {
                    break 'read;
                }
            }
            if sent.bytes > MAX_AHEAD {
                // Still too much, and all of it held here: the helper gets the oldest.
                if let Some(chunk) = held.pop_front() {
                    if to_helper.send(chunk).is_err() {
                        break;
                    }
                }
                continue;
            }
            while let Some(chunk) = held.pop_front() {
                match to_helper.try_send(chunk) {
                    Ok(()) => {}
                    Err(TrySendError::Full(chunk) | TrySendError::Disconnected(chunk)) => {
                        held.push_front(chunk);
                        break;
                    }
                }
            }
            if held.len() >= MAX_HELD {
                // Wait for the helper to take the oldest.
                if let Some(chunk) = held.pop_front() {
                    if to_helper.send(chunk).is_err() {
                        break;
                    }
                }
                continue;
            }
            let mut chunk: Chunk = sent.spare.pop().unwrap_or_default();
            match reader.next_chunk(&mut chunk.bytes) {
                Ok(0) => break,
                Ok(len) => chunk.len = len,
                Err(e) => {
                    read_error = Some(e);
                    break;
                }
            }
            chunk.prechecked = false;
            sent.count += 1;
            sent.bytes += chunk.bytes.len();
            if held.is_empty() {
                match to_helper.try_send(chunk) {
                    Ok(()) => continue,
                    Err(TrySendError::Full(back) | TrySendError::Disconnected(back)) => {
                        chunk = back
                    }
                }
            }
            // The helper is behind: take step 1 here.
            chunk.precheck(precheck);
            held.push_back(chunk);
        }
        if flow == Flow::Continue {
            for chunk in held.drain(..) {
                if to_helper.send(chunk).is_err() {
                    break;
                }
            }
        }
        drop(to_helper);
        while flow == Flow::Continue && sent.count > 0 {
            let Ok(chunk) = from_helper.recv() else {
                break;
            };
            flow = sent.report(chunk, reporting)?;
        }
        if flow == Flow::Continue {
            if let Some(e) = read_error {
                reporting.read_error(e);
            }
        }
        reporting.finish();
        Ok(())
    })
}

/// The chunks a walk with two threads has read and not yet reported (with
/// the helper, or held for it), and the storage of reported ones for reuse.
#[cfg(not(target_arch = "wasm32"))]
#[derive(Default)]
struct Sent {
    count: usize,
    /// Storage of the chunks read and not yet reported.
    bytes: usize,
    spare: Vec<Chunk>,
}

#[cfg(not(target_arch = "wasm32"))]
impl Sent {
    /// Step 3 for a chunk back from the helper; its storage is kept for the
    /// next read unless it grew for a long line.
    fn report(&mut self, mut chunk: Chunk, reporting: &mut Reporting) -> Result<Flow, ScanStop> {
        self.count -= 1;
        self.bytes -= chunk.bytes.len();
        let flow = reporting.report(&chunk)?;
        if chunk.bytes.len() > MAX_SPARE {
            chunk.bytes = Vec::new();
        }
        self.spare.push(chunk);
        Ok(flow)
    }
}

impl Reporting<'_, '_> {
    /// Step 3 for one checked chunk: every line in order.
    fn report(&mut self, chunk: &Chunk) -> Result<Flow, ScanStop> {
        let data = &chunk.bytes[..chunk.len];
        let mut start = 0;
        for (end, outcome) in &chunk.outcomes {
            let (end, line) = (*end, &data[start..*end]);
            self.bytes += (end - start) as u64 + u64::from(end < data.len());
            start = end + 1;
            self.row += 1;
            let row = self.row;
            match outcome {
                Ok(has_id) => {
                    if *has_id && self.table.number.is_none() {
                        *self.ids_without_first = true;
                    }
                }
                Err(f) if f.code == Code::NotUtf8 => {
                    self.ctx.error(
                        (self.at)(Finding::new(
                            Code::InvalidZip,
                            super::zip::not_utf8_message(line, row),
                        ))
                        .line(row),
                    );
                    return Ok(Flow::Stop);
                }
                Err(f) => {
                    let newline = end < data.len();
                    let message =
                        super::as_read_with_newline(f.code, f.message.clone(), line, row, newline);
                    let message = match f.code {
                        Code::JsonInvalidRow => super::zip::with_entry_hints(message, line, row),
                        _ => message,
                    };
                    let finding = (self.at)(Finding::new(f.code, message))
                        .line(row)
                        .excerpt_at(&String::from_utf8_lossy(line), f.at_byte);
                    self.ctx.error(f.locate(finding));
                }
            }
            self.sink
                .document(self.t, line, outcome.is_ok())
                .map_err(ScanStop::Sink)?;
            self.ctx.progress.documents += 1;
            if !self.ctx.tick(self.ctx.input.position()) {
                return Err(ScanStop::Cancelled);
            }
        }
        Ok(Flow::Continue)
    }

    /// Reports why the rest of the entry could not be read.
    fn read_error(&mut self, e: LineError) {
        let row = self.row + 1;
        let finding = match e {
            LineError::LineTooLong => line_too_long(row),
            // About the entry's data, not a line's document: every whole
            // line before the failure was read and checked. A failure in
            // the middle of the entry, or of the input itself, names the
            // line reading had reached, as in a JSONL file; a check of the
            // whole entry at its end (its CRC32, its size) names none.
            LineError::Read(e) => {
                let message = match self.row {
                    0 => format!("invalid zip file: {e}"),
                    read => format!("invalid zip file: {e} (lines 1 to {read} were read)"),
                };
                let mut finding = (self.at)(Finding::new(Code::InvalidZip, message));
                let at_end = crate::archive::inflate::failed_at_entry_end(&e);
                if !at_end || self.ctx.input_failed() {
                    finding = finding.line(row);
                }
                self.ctx.read_error(finding);
                return;
            }
        };
        let finding = (self.at)(finding).line(row);
        // The lines after it are not read: nothing can carry them.
        self.ctx.left_unread.extend(finding.entry.clone());
        self.ctx.error(finding);
    }

    /// Adds the entry's rows and bytes to its table's counts.
    fn finish(&mut self) {
        let counts = &mut self.ctx.counts[self.t];
        counts.0 += self.row;
        counts.1 += self.bytes;
    }
}

/// A document line longer than any reader reads: line `row` of an entry or
/// a file (the finding says where). The bound is snappack's, on the memory
/// one line takes, not Convex's (whose reader takes lines of any length):
/// the message says so, since the document itself may be small.
pub(crate) fn line_too_long(row: u64) -> Finding {
    Finding::new(
        Code::ValueTooLargeError,
        format!(
            "Row {row}: line {row} is longer than {} bytes, the longest line snappack reads \
             (its own bound on memory, not a Convex limit; remove the whitespace between values \
             if the document is smaller), so the lines after it are not read and not counted",
            super::zip::MAX_LINE
        ),
    )
}
