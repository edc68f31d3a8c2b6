//! The imports a server is running: create, append frames, finish, cancel,
//! and reopening every unfinished import after a restart. Blocking code (the
//! HTTP layer calls it from blocking tasks); one lock per import, so many
//! imports proceed at once.
//!
//! Appending frames, in this order: decode and check every frame of the
//! request (the decoder: checksums, sequence, order, counts; [`Ingest`]:
//! every document), append the accepted frames to the staging log and fsync
//! it, write their stored files, then acknowledge. Their documents go into
//! the store on a thread of their own (`PendingWrite`) while the next
//! requests are checked: requests queue their writes, which land in order,
//! those queued together in one transaction, and finishing or cancelling
//! waits for the last.
//! Any refusal or failure after the decoder took a frame, or a store write
//! that failed, marks the import's in-memory state stale; it is rebuilt from
//! the log (the same code as a restart, which writes the frames the store
//! does not have) before the import is used again, so the import always
//! resumes at its last good frame.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::Serialize;

use super::files::{FileStore, PartFile};
use super::ingest::{Accepted, FilePiece, Ingest, Rejection};
use super::log::{OpenError, StagingLog};
use super::store::plan::recorded_table_changed;
use super::store::{
    ActivatedTable, FrameWrite, ImportError, ImportMode, ImportRecord, ImportState, ImportTarget,
    ImportsQuery, Observed, OwnedFrameWrite, Store, StoreError, DATABASE_REFUSED,
};
use crate::migration::{DecodeError, Decoder, DecoderConfig, Frame};

/// Why an import operation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum ImportsError {
    /// No such import.
    #[error("unknown import {0}")]
    Unknown(String),
    /// The import is finished, failed or cancelled.
    #[error("import {id} is {}", state.as_str())]
    NotOpen {
        /// The import.
        id: String,
        /// Its state.
        state: ImportState,
    },
    /// Frames at another sequence number than the next expected one.
    #[error("expected frame {expected}, got {got}")]
    Sequence {
        /// The next frame the import expects.
        expected: u64,
        /// The sequence number the request gave.
        got: u64,
    },
    /// Finish before the stream's `Done`.
    #[error("the stream is not complete: expected frame {expected} next")]
    Incomplete {
        /// The next frame the import expects.
        expected: u64,
    },
    /// An open import's stream declares frames larger than this server's
    /// `--max-frame-size` now takes: it cannot be reopened, nor dropped
    /// without losing what was acknowledged.
    #[error(
        "open import {id}: {error} (--max-frame-size): start the server with the limit it had \
         to finish the import, or cancel it there"
    )]
    OverLimit {
        /// The import.
        id: String,
        /// The decoder's refusal of the stream header.
        error: DecodeError,
    },
    /// A frame does not decode (checksum, order, counts...).
    #[error("frame {seq}: {error}")]
    Frame {
        /// The next frame the import expects (the bad frame's number).
        seq: u64,
        /// The decoder's error.
        error: DecodeError,
    },
    /// A frame's content is refused (a document, a table declaration).
    #[error("frame {}: {}: {}", .0.seq, .0.code, .0.message)]
    Rejected(Box<Rejection>),
    /// The body ends inside a frame.
    #[error("the request ends {partial} bytes into frame {seq}")]
    Truncated {
        /// The frame cut.
        seq: u64,
        /// Its bytes received.
        partial: u64,
    },
    /// Finish refused by Convex's rules; the import failed.
    #[error(transparent)]
    Refused(ImportError),
    /// The database or the disk failed.
    #[error("{0}")]
    Internal(String),
    /// The database refused the work with an error of its own that doing
    /// the same again meets again ([`StoreError::Refused`]): its words.
    #[error("the database refused it: {0}")]
    StoreRefused(String),
    /// The server stopped serving its database's imports ([`Imports::halt`]):
    /// why (another server holds the database now).
    #[error("{0}")]
    Halted(String),
}

impl From<StoreError> for ImportsError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::UnknownImport(id) => ImportsError::Unknown(id),
            StoreError::NotOpen { id, state } => ImportsError::NotOpen { id, state },
            StoreError::Import(e) => ImportsError::Refused(e),
            StoreError::Refused(words) => ImportsError::StoreRefused(words),
            other => ImportsError::Internal(other.to_string()),
        }
    }
}

impl From<std::io::Error> for ImportsError {
    fn from(e: std::io::Error) -> Self {
        ImportsError::Internal(format!("disk: {e}"))
    }
}

/// Where an import stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportStatus {
    /// The import's id.
    pub id: String,
    /// Its mode.
    pub mode: ImportMode,
    /// Its state.
    pub state: ImportState,
    /// The next frame it expects (open imports).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_seq: Option<u64>,
    /// Stream bytes received and kept (open imports).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub received_bytes: Option<u64>,
    /// The stream's max frame size (open imports, once frame 0 is in): a
    /// resumed upload must pack with it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frame_size: Option<u64>,
    /// CRC-32 of the uncompressed payloads of frames `0..next_seq` (open
    /// imports): a resumed upload checks that its input makes the same ones.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix_crc32: Option<u32>,
    /// True once the stream's `Done` is in: the import can finish.
    pub complete: bool,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The label the client gave at creation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// What the client said at creation the import targets (its component,
    /// and the table of a single-table file).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<ImportTarget>,
    /// Open imports: a table the import declared that another import
    /// changed since (`TableChanged`, with its table), which its finish
    /// would refuse: it can no longer finish, however much is sent, and
    /// its next frames fail it with that refusal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table_changed: Option<ImportError>,
}

/// An accepted append.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Appended {
    /// Frames accepted by this request.
    pub frames: u64,
    /// The next frame the import expects.
    pub next_seq: u64,
    /// Stream bytes received and kept.
    pub received_bytes: u64,
    /// True once the stream's `Done` is in.
    pub complete: bool,
}

/// Limits of the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The largest frame (uncompressed payload) a stream may use.
    pub max_frame_size: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_frame_size: DecoderConfig::default().max_frame_size,
        }
    }
}

/// One open import's in-memory state.
struct Open {
    id: String,
    mode: ImportMode,
    log: StagingLog,
    decoder: Decoder,
    ingest: Ingest,
    file: Option<PartFile>,
    /// Where the staging log ends: what status reports, even when the
    /// state above is ahead of it.
    logged: Progress,
    /// The state above is ahead of the log: rebuild it before use.
    stale: bool,
    /// The store write of the last request, if it may still be running.
    pending: PendingWrite,
    /// What the import saw of each table it declared (by component and
    /// name) when the declaration was acknowledged: a write made later
    /// (one redone from the log after it failed) records that, not what it
    /// sees then, which may be another import's finish on the table.
    observed: HashMap<(String, String), Observed>,
    /// Its slot's `changed`, which its store writes update.
    changed: Arc<Mutex<Option<ImportError>>>,
}

impl Open {
    /// Waits for the queued store writes; if one failed, the store lacks
    /// frames of the log, so the state must be rebuilt before the import
    /// goes on.
    fn settle_write(&mut self) {
        if let Err(e) = self.pending.wait() {
            eprintln!(
                "snappack: import {}: writing its last frames into the database failed ({e}); \
                 they are written again from its staging log",
                self.id
            );
            self.stale = true;
        }
    }
}

/// The store writes of an import's accepted requests, made in order on a
/// thread of their own while the next requests are checked. Requests that
/// arrive while a write runs queue (a request waits, checked and logged but
/// unanswered, while [`QUEUED_BYTES`] or more are queued, so the queue holds
/// at most that plus one request), and the thread then writes all that is
/// queued in one transaction: a store
/// slower than the checks commits less often, and a commit (a flush to disk)
/// costs about as much for one request as for several. Dropping it waits
/// for it.
#[derive(Default)]
struct PendingWrite {
    shared: Arc<Writes>,
    thread: Option<JoinHandle<()>>,
}

/// Documents (bytes of their lines) queued for an import's store writes
/// beyond the write running, from which on a request waits for it.
const QUEUED_BYTES: usize = 16 << 20;

/// What an import's requests and its writing thread share.
#[derive(Default)]
struct Writes {
    state: Mutex<WritesState>,
    /// Signalled when the thread takes the queue, and when it stops.
    progressed: std::sync::Condvar,
}

/// The queue of an import's store writes, and how its thread stands.
#[derive(Default)]
struct WritesState {
    queued: Vec<OwnedFrameWrite>,
    queued_bytes: usize,
    /// A thread is writing, or about to take the queue.
    running: bool,
    /// The write that failed: what was queued after it was dropped, and
    /// nothing is written until [`PendingWrite::wait`] reports it.
    failed: Option<StoreError>,
}

impl PendingWrite {
    /// Queues `writes` for the store, starting the writing thread if none
    /// runs; waits first while the queue is full. `false`, and nothing
    /// queued, when an earlier write failed or no thread could be made: the
    /// writes are in the log, and rebuilding the import writes them. A
    /// write that declares tables then notes in `changed` whether another
    /// import finished on one of them since it was acknowledged (that
    /// finish may have looked for the import's tables before they were
    /// written).
    fn queue(
        &mut self,
        store: &Arc<dyn Store>,
        id: &str,
        writes: Vec<OwnedFrameWrite>,
        changed: &Arc<Mutex<Option<ImportError>>>,
        halted: &Halted,
    ) -> bool {
        let mut state = lock(&self.shared.state);
        while state.running && state.failed.is_none() && state.queued_bytes >= QUEUED_BYTES {
            state = wait(&self.shared.progressed, state);
        }
        if state.failed.is_some() {
            return false;
        }
        state.queued_bytes += writes.iter().map(OwnedFrameWrite::text_len).sum::<usize>();
        state.queued.extend(writes);
        if state.running {
            return true;
        }
        // The thread that ran last has stopped, or is about to.
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let (shared, store, id) = (self.shared.clone(), store.clone(), id.to_owned());
        let (changed, halted) = (changed.clone(), halted.clone());
        let spawned = std::thread::Builder::new()
            .name("snappack-store-write".into())
            .spawn(move || write_queued(&shared, &*store, &id, &changed, &halted));
        match spawned {
            Ok(thread) => {
                state.running = true;
                self.thread = Some(thread);
                true
            }
            Err(_) => {
                state.queued.clear();
                state.queued_bytes = 0;
                false
            }
        }
    }

    /// Waits until all that is queued is written; `Err` with the write that
    /// failed, if one did (what was queued after it was not written).
    fn wait(&mut self) -> Result<(), StoreError> {
        let mut state = lock(&self.shared.state);
        while state.running {
            state = wait(&self.shared.progressed, state);
        }
        let failed = state.failed.take();
        drop(state);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        failed.map_or(Ok(()), Err)
    }
}

impl Drop for PendingWrite {
    fn drop(&mut self) {
        let _ = self.wait();
    }
}

/// The writing thread: writes what is queued, a transaction at a time,
/// until the queue is empty or a write fails.
fn write_queued(
    shared: &Writes,
    store: &dyn Store,
    id: &str,
    changed: &Mutex<Option<ImportError>>,
    halted: &Halted,
) {
    loop {
        let mut state = lock(&shared.state);
        if state.queued.is_empty() {
            state.running = false;
            shared.progressed.notify_all();
            return;
        }
        let queued = std::mem::take(&mut state.queued);
        state.queued_bytes = 0;
        shared.progressed.notify_all();
        drop(state);
        // Checked before each write: the database may have been lost
        // while the requests were checked.
        let halted_for = lock(halted).clone();
        let outcome = match halted_for {
            Some(reason) => Err(StoreError::Database(reason)),
            None => {
                let writes: Vec<_> = queued.iter().map(OwnedFrameWrite::write).collect();
                // A panic fails the write rather than leaving it running.
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    store.write_frames(id, &writes)?;
                    if writes.iter().any(|write| !write.tables.is_empty()) {
                        note_changed(store, id, changed);
                    }
                    Ok(())
                }))
                .unwrap_or_else(|_| Err(StoreError::Database("a store write panicked".into())))
            }
        };
        if let Err(e) = outcome {
            let mut state = lock(&shared.state);
            state.failed = Some(e);
            state.queued.clear();
            state.queued_bytes = 0;
            state.running = false;
            shared.progressed.notify_all();
            return;
        }
    }
}

/// Waits on `condvar` with `guard`, as [`lock`] does on a poisoned lock.
fn wait<'a, T>(condvar: &std::sync::Condvar, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
    condvar
        .wait(guard)
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// An open import as requests find it: its state, behind the lock its
/// requests take in turn (`None` once it is closed), and where it stood
/// after its last request, which status reads without waiting for that lock.
struct Slot {
    open: Mutex<Option<Open>>,
    acknowledged: Mutex<Option<Progress>>,
    /// The import's label, as created: with its mode (in `Open`) and
    /// progress, an open import's status needs no database read, which
    /// would wait behind a write on SQLite's one connection.
    label: Option<String>,
    /// What the import targets, as created.
    target: Option<ImportTarget>,
    mode: ImportMode,
    /// A table the import declared that another import changed since: it
    /// can no longer finish. Set when the server starts and after every
    /// finished import, and after a write that declares tables (once set,
    /// it stays so: what the import declared against does not come back).
    changed: Arc<Mutex<Option<ImportError>>>,
    /// Why failing it, once `changed` was set, did not happen last time:
    /// said once, not at every try.
    release_error: Mutex<Option<String>>,
}

impl Slot {
    fn new(open: Open, label: Option<String>, target: Option<ImportTarget>) -> Arc<Slot> {
        Arc::new(Slot {
            acknowledged: Mutex::new(Some(open.logged)),
            mode: open.mode,
            label,
            target,
            changed: open.changed.clone(),
            release_error: Mutex::new(None),
            open: Mutex::new(Some(open)),
        })
    }

    /// Publishes where `open`'s log ends.
    fn acknowledge(&self, open: &Open) {
        *lock(&self.acknowledged) = Some(open.logged);
    }

    /// Closes the import; `open` is its lock, held.
    fn close(&self, open: &mut MutexGuard<'_, Option<Open>>) {
        **open = None;
        *lock(&self.acknowledged) = None;
    }
}

/// Where an open import stands, as far as its staging log goes.
#[derive(Debug, Clone, Copy)]
struct Progress {
    next_seq: u64,
    received_bytes: u64,
    frame_size: Option<u64>,
    prefix_crc32: u32,
    complete: bool,
}

impl Progress {
    /// Where a decoder that read the whole log `log_len` bytes long is.
    fn of(decoder: &Decoder, log_len: u64) -> Self {
        Progress {
            next_seq: decoder.next_sequence(),
            received_bytes: log_len,
            frame_size: decoder.frame_size().map(|size| size as u64),
            prefix_crc32: decoder.prefix_crc32(),
            complete: decoder.is_done(),
        }
    }
}

/// Why the server stopped serving its database's imports, once it did.
type Halted = Arc<Mutex<Option<String>>>;

/// Every import of a server.
pub struct Imports {
    store: Arc<dyn Store>,
    dir: PathBuf,
    files: FileStore,
    limits: Limits,
    open: Mutex<HashMap<String, Arc<Slot>>>,
    /// Held by a sweep of the stored files, and by `create` to add an
    /// import: no import opens (and receives files) while a sweep that
    /// found none open runs.
    sweeping: Mutex<()>,
    /// Set by [`halt`](Self::halt): every change is refused from then on.
    halted: Halted,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Notes in `changed` a table open import `id` declared that another import
/// changed since, if there is one now. Only ever set: a later answer may
/// come from an earlier read. A failure is said; its finish checks again.
fn note_changed(store: &dyn Store, id: &str, changed: &Mutex<Option<ImportError>>) {
    if lock(changed).is_some() {
        return;
    }
    match store.changed_table(id) {
        Ok(Some(table)) => *lock(changed) = Some(table),
        Ok(None) => {}
        Err(e) => say!("snappack: import {id}: cannot check its tables: {e}"),
    }
}

/// The store write of accepted frame `seq`, its declarations recording what
/// the import saw of their tables when they were acknowledged (`observed`).
fn frame_write<'s>(
    accepted: &'s Accepted<'_>,
    seq: u64,
    ingest: &'s Ingest,
    observed: &HashMap<(String, String), Observed>,
) -> FrameWrite<'s> {
    let mut write = accepted.write(seq, ingest);
    for table in &mut write.tables {
        let key = (table.component.clone(), table.name.clone());
        table.observed = observed.get(&key).copied();
    }
    write
}

/// How long a finish the database refused waits before it is tried once
/// more: a limit PostgreSQL shares between sessions (the locks they hold)
/// may have been reached for another session's sake.
const FINISH_RETRY: Duration = Duration::from_secs(1);

/// What a user can do about the database's refusal `words`.
fn refusal_advice(words: &str) -> &'static str {
    if words.contains("max_locks_per_transaction") {
        "Raise max_locks_per_transaction on the PostgreSQL server (in postgresql.conf, or \
         ALTER SYSTEM SET max_locks_per_transaction = ...; it takes effect when the server \
         restarts), then import again"
    } else {
        "Set the database right as its words say, then import again"
    }
}

/// The refusal that fails an import whose frames the database refused to
/// write twice the same way (`words`), the second time from the staging log.
fn write_refused(words: &str) -> ImportError {
    // (A hint ends with a period of its own.)
    let words = words.trim_end_matches('.');
    ImportError {
        code: DATABASE_REFUSED,
        message: format!(
            "The database refused to write the import's frames into its hidden tables, again when \
             they were written from the staging log: {words}. {}.",
            refusal_advice(words)
        ),
        component: String::new(),
        table: None,
        line: None,
    }
}

/// The refusal that fails an import whose finish the database refused
/// twice the same way (`words`).
fn finish_refused(words: &str) -> ImportError {
    let words = words.trim_end_matches('.');
    ImportError {
        code: DATABASE_REFUSED,
        message: format!(
            "The database refused to finish the import (every table it imports is made visible, \
             and every table it replaces or deletes retired, in one transaction, which in append \
             mode holds locks on every table appended to and from), twice: {words}. {}.",
            refusal_advice(words)
        ),
        component: String::new(),
        table: None,
        line: None,
    }
}

/// The file digest a `_storage` row names, if it names one.
fn row_sha256(json: &str) -> Option<[u8; 32]> {
    #[derive(serde::Deserialize)]
    struct Row {
        sha256: String,
    }
    let row: Row = serde_json::from_str(json).ok()?;
    crate::convex::value::decode_base64(&row.sha256)
        .ok()?
        .try_into()
        .ok()
}

/// Step 1 of an append: decodes every whole frame of `body`, which follows
/// the first `base` bytes of the stream, and why the request is refused,
/// if it is (a frame the decoder refuses, a body that ends inside a frame,
/// a first request with the stream header alone).
fn decode_frames(
    decoder: &mut Decoder,
    base: u64,
    body: &[u8],
) -> (Vec<Frame>, Option<ImportsError>) {
    let mut frames = Vec::new();
    let mut pos = 0;
    let mut refusal = None;
    while pos < body.len() {
        match decoder.feed(&body[pos..]) {
            Ok(step) => {
                pos += step.consumed;
                if let Some(frame) = step.frame {
                    frames.push(frame);
                }
            }
            Err(error) => {
                refusal = Some(ImportsError::Frame {
                    seq: decoder.next_sequence(),
                    error,
                });
                break;
            }
        }
    }
    // A first request brings frame 0 with the stream header: a header
    // alone would be logged while `nextSeq` stays 0, and the next first
    // request, header and all, would not follow it.
    if refusal.is_none() && base == 0 && frames.is_empty() {
        refusal = Some(ImportsError::Truncated {
            seq: 0,
            partial: body.len() as u64,
        });
    }
    if refusal.is_none() && decoder.committed_offset() < base + body.len() as u64 {
        refusal = Some(ImportsError::Truncated {
            seq: decoder.next_sequence(),
            partial: base + body.len() as u64 - decoder.committed_offset(),
        });
    }
    (frames, refusal)
}

/// The folders under `dir` named as import ids are (anything else there
/// is not an import's, and is left alone).
fn import_folders(dir: &Path) -> Result<Vec<String>, ImportsError> {
    let mut ids = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        let id_like =
            name.len() == 32 && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if id_like && entry.file_type()?.is_dir() {
            ids.push(name);
        }
    }
    Ok(ids)
}

fn random_id() -> Result<String, ImportsError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| ImportsError::Internal(format!("random: {e}")))?;
    Ok(crate::hex(&bytes))
}

impl Imports {
    /// The imports of `store`, with staging logs under `data_dir/imports`
    /// and stored files under `data_dir/files`. Reopens every unfinished
    /// import (trimming partial frames) before returning, and removes the
    /// staging folders of imports the database does not know (its records
    /// were lost: dropped and made again). Only while nothing else uses the
    /// data folder (a server holds its lock).
    pub fn open(
        store: Arc<dyn Store>,
        data_dir: &Path,
        limits: Limits,
    ) -> Result<Self, ImportsError> {
        let dir = data_dir.join("imports");
        fs::create_dir_all(&dir).map_err(|e| super::at(&dir, e))?;
        super::sync_folder(data_dir).map_err(|e| super::at(data_dir, e))?;
        let files = data_dir.join("files");
        let imports = Imports {
            store,
            files: FileStore::open(&files).map_err(|e| super::at(&files, e))?,
            dir,
            limits,
            open: Mutex::new(HashMap::new()),
            sweeping: Mutex::new(()),
            halted: Halted::default(),
        };
        // What ended imports left of their hidden tables (a crash, or a
        // failure, while they were dropped after the import ended).
        // Nothing sees them: one that cannot be dropped now does not stop
        // the start, and is tried again at the next.
        match imports.store.drop_ended_tables() {
            Ok(0) => {}
            Ok(dropped) => {
                eprintln!("snappack: dropped {dropped} tables that ended imports left")
            }
            Err(e) => eprintln!(
                "snappack: the tables ended imports left could not all be dropped ({e}): \
                 nothing sees them, and the next start tries again"
            ),
        }
        // Listed before the database is read: an import's record is made
        // before its folder, so a folder listed here whose import the
        // database does not know is not one being made meanwhile.
        let folders = import_folders(&imports.dir)?;
        let records = imports.store.imports()?;
        let known: HashSet<&str> = records.iter().map(|r| r.id.as_str()).collect();
        for id in folders.iter().filter(|id| !known.contains(id.as_str())) {
            // Its frames cannot be imported or resumed without the record.
            let path = imports.dir.join(id);
            match fs::remove_dir_all(&path) {
                Ok(()) => say!(
                    "snappack: removed the staging folder {}: the database does not know import {id} (its records were lost)",
                    path.display()
                ),
                Err(e) => say!(
                    "snappack: could not remove the staging folder {} (the database does not know import {id}): {e}",
                    path.display()
                ),
            }
        }
        for record in records {
            imports.resume(record)?;
        }
        // Those that can no longer finish are failed now; not before every
        // open import is back, since failing one sweeps the stored files
        // when it finds no import open.
        imports.release_changed();
        // A sweep that fails keeps its mark, and is tried again later:
        // the imports are open and can be served meanwhile.
        imports.sweep_after_end();
        Ok(imports)
    }

    /// At a start, what becomes of import `record`: a closed one's staging
    /// log is removed (a crash came between the commit that closed it and
    /// the removal); an open one is reopened from its log, or cancelled,
    /// saying why, when the log is lost or no longer replays, or failed
    /// when the database refuses its frames again.
    fn resume(&self, record: ImportRecord) -> Result<(), ImportsError> {
        if record.state != ImportState::Open {
            // Its staging log, if a crash came between the commit that
            // closed it and the log's removal.
            if self.dir.join(&record.id).exists() {
                self.forget(&record.id);
            }
            return Ok(());
        }
        // Frames written to the database, and no log of them (another
        // data folder, or one emptied by hand): started again from frame
        // 0, the import would keep those rows whatever is sent.
        let log = self.log_path(&record.id);
        let logged = fs::File::open(&log)
            .ok()
            .and_then(|file| crate::client::scan_frames(file).ok())
            .is_some_and(|frames| !frames.is_empty());
        let why = if record.applied_seq.is_some() && !logged {
            format!(
                "its staging log {} is missing or empty, but the database has frames of it",
                log.display()
            )
        } else {
            let observed = self.read_observed(&record.id);
            match self.reopen(&record.id, record.mode, &observed) {
                Ok(mut open) => {
                    open.observed = observed;
                    let slot = Slot::new(open, record.label, record.target);
                    *lock(&slot.changed) = self.store.changed_table(&record.id)?;
                    lock(&self.open).insert(record.id, slot);
                    return Ok(());
                }
                // A log this server's checks no longer accept: the import cannot go on.
                Err(ImportsError::Rejected(rejection)) => format!(
                    "its staging log does not replay ({}: {})",
                    rejection.code, rejection.message
                ),
                // Its frames, written from the log, refused by the
                // database as the write that failed before the server
                // ended was (or else a first time; either way it would
                // be refused at every start): the import fails.
                Err(ImportsError::StoreRefused(words)) => {
                    let refusal = write_refused(&words);
                    eprintln!(
                        "snappack: import {} failed: {}",
                        record.id,
                        refusal.recorded()
                    );
                    self.files.mark_sweep_due()?;
                    self.store.fail_import(&record.id, &refusal)?;
                    self.forget(&record.id);
                    return Ok(());
                }
                // Over a lowered --max-frame-size too, the start fails: the
                // import goes on once the limit is what it was.
                Err(e) => return Err(e),
            }
        };
        say!("snappack: import {} cancelled: {why}", record.id);
        let reason = format!("cancelled by the server: {why}");
        self.files.mark_sweep_due()?;
        self.store.cancel_import(&record.id, Some(&reason))?;
        self.forget(&record.id);
        Ok(())
    }

    /// Removes the stored files no `_storage` row refers to, once an import
    /// marked it due (one that did not finish, or one that replaced
    /// `_storage` rows), when no import is open: at a start, and when the
    /// last open import ends, and hourly while one is due (after a sweep
    /// that failed). The mark is made before the import ends, so after a
    /// crash the next start sweeps.
    fn sweep_if_idle(&self) -> Result<(), ImportsError> {
        let _sweeping = lock(&self.sweeping);
        // The mark stays, for the server that serves the database next.
        if self.running().is_err() {
            return Ok(());
        }
        if !lock(&self.open).is_empty() || !self.files.sweep_due() {
            return Ok(());
        }
        let (files, bytes) = self.sweep_files()?;
        self.files.sweep_done()?;
        if files > 0 {
            say!(
                "snappack: removed {files} stored files ({bytes} bytes) that no _storage row refers to (left by imports that did not finish, or by stored files replaced since)"
            );
        }
        Ok(())
    }

    /// Removes the stored files no `_storage` row refers to if a sweep is
    /// due and no import is open, as after an import ends: for a server to
    /// try again, now and then, a sweep that failed (said on standard
    /// error; its mark stays, for the next time).
    pub fn retry_sweep(&self) {
        self.sweep_after_end();
    }

    /// [`sweep_if_idle`](Self::sweep_if_idle) after an import ended or at a
    /// start, which happened whatever the sweep meets: a failure is said,
    /// and the mark stays for the next time.
    fn sweep_after_end(&self) {
        if let Err(e) = self.sweep_if_idle() {
            say!("snappack: stored files no _storage row refers to are kept for now: {e}");
        }
    }

    /// Removes the stored files no `_storage` row refers to (those of
    /// imports cancelled or failed, and those whose rows a replace or
    /// replaceAll import dropped: content-addressed files are shared, so
    /// they cannot go with their import or row); returns how many and their
    /// bytes. Only with no import open, since an open import's rows come at
    /// its end, after its files; nothing at all if a row names no digest.
    fn sweep_files(&self) -> Result<(usize, u64), ImportsError> {
        let kept = self.files.list()?;
        if kept.is_empty() {
            return Ok((0, 0));
        }
        let mut referenced = HashSet::new();
        for table in self.store.tables()? {
            if table.name != "_storage" {
                continue;
            }
            let rows = self.store.documents(&table.component, &table.name)?;
            for row in rows.unwrap_or_default() {
                match row_sha256(&row.json) {
                    Some(sha256) => referenced.insert(sha256),
                    None => return Ok((0, 0)),
                };
            }
        }
        let (mut files, mut bytes) = (0, 0);
        for (sha256, size) in kept {
            if !referenced.contains(&sha256) {
                self.files.remove(&sha256)?;
                files += 1;
                bytes += size;
            }
        }
        Ok((files, bytes))
    }

    /// The stored files.
    pub fn files(&self) -> &FileStore {
        &self.files
    }

    /// The server's limits.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    fn log_path(&self, id: &str) -> PathBuf {
        self.dir.join(id).join("stream.snappack")
    }

    /// The file beside an import's log where what it saw of the tables it
    /// declared is kept, a JSON line per table (the last line of a table
    /// wins): a write that failed and is made good after a restart records
    /// that too.
    fn observed_path(&self, id: &str) -> PathBuf {
        self.dir.join(id).join("observed.jsonl")
    }

    /// Appends what import `id` saw of the tables it declares, durably,
    /// before the declarations are acknowledged.
    fn keep_observed(
        &self,
        id: &str,
        tables: &[(&str, &str)],
        seen: &[Observed],
    ) -> Result<(), ImportsError> {
        use std::io::Write as _;
        let path = self.observed_path(id);
        let new = !path.exists();
        let mut lines = String::new();
        for (&(component, name), seen) in tables.iter().zip(seen) {
            let line = serde_json::json!([component, name, seen]).to_string();
            lines.push_str(&line);
            lines.push('\n');
        }
        let mut file = fs::OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&path)?;
        // A line cut by a crash is ended first: the lines appended after it
        // would join it, and be left out with it when read back.
        if file.metadata()?.len() > 0 {
            use std::io::{Read as _, Seek as _};
            let mut last = [0];
            file.seek(std::io::SeekFrom::End(-1))?;
            file.read_exact(&mut last)?;
            if last != *b"\n" {
                lines.insert(0, '\n');
            }
        }
        file.write_all(lines.as_bytes())?;
        file.sync_all()?;
        if new {
            super::sync_folder(&self.dir.join(id))?;
        }
        Ok(())
    }

    /// What import `id` saw of the tables it declared, as kept by
    /// [`keep_observed`](Self::keep_observed); a line cut by a crash is
    /// left out (its frames were not acknowledged).
    fn read_observed(&self, id: &str) -> HashMap<(String, String), Observed> {
        let text = fs::read_to_string(self.observed_path(id)).unwrap_or_default();
        text.lines()
            .filter_map(|line| serde_json::from_str::<(String, String, Observed)>(line).ok())
            .map(|(component, name, seen)| ((component, name), seen))
            .collect()
    }

    /// Rebuilds a stale open import from its log ([`reopen`](Self::reopen)),
    /// keeping what it saw of its tables as it declared them, and notes
    /// whether one changed since (a declaration written only now, after
    /// another import's finish looked for it).
    fn rebuild(&self, open: &mut Open) -> Result<(), ImportsError> {
        let mut fresh = self.reopen(&open.id, open.mode, &open.observed)?;
        fresh.observed = std::mem::take(&mut open.observed);
        fresh.changed = open.changed.clone();
        *open = fresh;
        note_changed(&*self.store, &open.id, &open.changed);
        Ok(())
    }

    /// Rebuilds an import's state from its log, writing into the store the
    /// frames it does not have yet; a declaration among them records what
    /// `observed` says the import saw of its table, if it says.
    fn reopen(
        &self,
        id: &str,
        mode: ImportMode,
        observed: &HashMap<(String, String), Observed>,
    ) -> Result<Open, ImportsError> {
        let folder = self.dir.join(id);
        if !folder.is_dir() {
            fs::create_dir_all(&folder)?;
            super::sync_folder(&self.dir)?;
        }
        loop {
            let applied = self.store.import(id)?.applied_seq;
            let mut ingest = Ingest::new(id);
            let mut file = None;
            let opened = StagingLog::open(
                &self.log_path(id),
                DecoderConfig {
                    max_frame_size: self.limits.max_frame_size,
                },
                |frame| {
                    let accepted = ingest
                        .frame(frame)
                        .map_err(|r| ImportsError::Rejected(Box::new(r)))?;
                    if applied.is_none_or(|applied| frame.sequence > applied) {
                        let write = frame_write(&accepted, frame.sequence, &ingest, observed);
                        self.store.write_frame(id, &write)?;
                    }
                    self.keep_files(id, &accepted, &mut file)
                },
            );
            match opened {
                Ok((log, mut decoder, _)) => {
                    // The log's entry, made by the open, must be durable
                    // before a frame in it is acknowledged.
                    super::sync_folder(&folder)?;
                    decoder.shrink();
                    return Ok(Open {
                        logged: Progress::of(&decoder, log.len()),
                        id: id.to_owned(),
                        mode,
                        log,
                        decoder,
                        ingest,
                        file,
                        stale: false,
                        pending: PendingWrite::default(),
                        observed: HashMap::new(),
                        changed: Arc::default(),
                    });
                }
                // The log was cut before a damaged frame: replay what is left.
                // Frames were acknowledged past it, so the client sends them
                // again from the new `nextSeq`; said, since the disk lost data.
                Err(OpenError::Damaged { error, kept }) => {
                    say!(
                        "snappack: import {id}: its staging log is damaged at byte {kept} ({error}); \
                         it is cut there, and the frames from there on are asked of the client again"
                    );
                    continue;
                }
                Err(OpenError::Io(e)) => return Err(e.into()),
                Err(OpenError::Frame(e)) => return Err(e),
                Err(OpenError::OverLimit(error)) => {
                    return Err(ImportsError::OverLimit {
                        id: id.to_owned(),
                        error,
                    })
                }
            }
        }
    }

    /// Writes an accepted frame's pieces of stored files.
    fn keep_files(
        &self,
        id: &str,
        accepted: &Accepted<'_>,
        file: &mut Option<PartFile>,
    ) -> Result<(), ImportsError> {
        for piece in &accepted.files {
            match piece {
                FilePiece::Start { .. } => {
                    *file = Some(PartFile::create(&self.dir.join(id).join("file.part"))?)
                }
                FilePiece::Data(data) => match file {
                    Some(f) => f.write(data)?,
                    None => return Err(ImportsError::Internal("file data without a file".into())),
                },
                FilePiece::End(sha256) => match file.take() {
                    Some(f) => f.finish(&self.files, sha256)?,
                    None => return Err(ImportsError::Internal("file end without a file".into())),
                },
            }
        }
        Ok(())
    }

    /// Stops changing the database and the data folder, for `reason`: every
    /// request that would (create, append, finish, cancel, expire, a sweep
    /// of the stored files) is refused from now on with
    /// [`ImportsError::Halted`], those waiting for an import's lock and a
    /// store write not yet begun included. For a server that lost its
    /// database to another one: what it knows of the imports may no longer
    /// be true, and two servers must not write into one database.
    pub fn halt(&self, reason: &str) {
        lock(&self.halted).get_or_insert_with(|| reason.to_owned());
    }

    /// `Halted` once [`halt`](Self::halt) was called.
    fn running(&self) -> Result<(), ImportsError> {
        match lock(&self.halted).clone() {
            Some(reason) => Err(ImportsError::Halted(reason)),
            None => Ok(()),
        }
    }

    fn handle(&self, id: &str) -> Result<Arc<Slot>, ImportsError> {
        if let Some(handle) = lock(&self.open).get(id) {
            return Ok(handle.clone());
        }
        let record = self.store.import(id)?;
        Err(ImportsError::NotOpen {
            id: id.to_owned(),
            state: record.state,
        })
    }

    /// The import was finished or cancelled while this request waited for
    /// its lock: `NotOpen`, with the state it is in now.
    fn closed_meanwhile(&self, id: &str) -> ImportsError {
        match self.store.import(id) {
            Ok(record) => ImportsError::NotOpen {
                id: id.to_owned(),
                state: record.state,
            },
            Err(e) => e.into(),
        }
    }

    /// Runs `f` on the open import, rebuilt first when stale. An import
    /// that another import changed a table of (its status's `tableChanged`)
    /// fails instead, with that refusal, as its finish would: nothing sent
    /// to it could ever land.
    fn with_open<T>(
        &self,
        id: &str,
        f: impl FnOnce(&mut Open) -> Result<T, ImportsError>,
    ) -> Result<T, ImportsError> {
        let handle = self.handle(id).map_err(|e| self.as_refusal(e))?;
        let mut slot = lock(&handle.open);
        self.running()?;
        let Some(open) = slot.as_mut() else {
            return Err(self.as_refusal(self.closed_meanwhile(id)));
        };
        let mut changed = lock(&handle.changed).clone();
        if changed.is_none() && open.stale {
            // Reopening reads how far the store got: after the last write.
            open.settle_write();
            if let Err(e) = self.rebuild(open) {
                return Err(self.fail_if_refused(id, &handle, slot, e));
            }
            changed = lock(&handle.changed).clone();
        }
        if let Some(changed) = changed {
            self.release(id, &handle, slot, &changed)?;
            return Err(ImportsError::Refused(changed));
        }
        // Still open: the lock was held throughout.
        let Some(open) = slot.as_mut() else {
            return Err(self.closed_meanwhile(id));
        };
        let result = f(open);
        handle.acknowledge(open);
        // Another import's finish that found this one can no longer finish
        // while the request held its lock left failing it to the request.
        drop(slot);
        self.try_release(id, &handle);
        result
    }

    /// Starts an import (whose target is not said).
    pub fn create(
        &self,
        mode: ImportMode,
        label: Option<&str>,
    ) -> Result<ImportStatus, ImportsError> {
        self.create_for(mode, label, None)
    }

    /// Starts an import, recording what it targets when the client says it.
    pub fn create_for(
        &self,
        mode: ImportMode,
        label: Option<&str>,
        target: Option<&ImportTarget>,
    ) -> Result<ImportStatus, ImportsError> {
        self.running()?;
        let id = random_id()?;
        self.store.create_import(&id, mode, label, target)?;
        let open = self.reopen(&id, mode, &HashMap::new())?;
        let slot = Slot::new(open, label.map(str::to_owned), target.cloned());
        let _sweeping = lock(&self.sweeping);
        lock(&self.open).insert(id.clone(), slot);
        self.status(&id)
    }

    /// Where an import stands. An open import busy with a request is
    /// described as it was before that request: status never waits for it.
    pub fn status(&self, id: &str) -> Result<ImportStatus, ImportsError> {
        // Open (closing clears its progress, before the import's lock goes).
        if let Some(slot) = lock(&self.open).get(id).cloned() {
            // One that can no longer finish is failed now, unless a request
            // holds it (which fails it as it ends): the answer says so.
            self.try_release(id, &slot);
            if let Some(progress) = *lock(&slot.acknowledged) {
                return Ok(ImportStatus {
                    id: id.to_owned(),
                    mode: slot.mode,
                    state: ImportState::Open,
                    next_seq: Some(progress.next_seq),
                    received_bytes: Some(progress.received_bytes),
                    frame_size: progress.frame_size,
                    prefix_crc32: Some(progress.prefix_crc32),
                    complete: progress.complete,
                    error: None,
                    label: slot.label.clone(),
                    target: slot.target.clone(),
                    table_changed: lock(&slot.changed).clone(),
                });
            }
        }
        let record = self.store.import(id)?;
        Ok(Self::closed_status(record))
    }

    /// The status of an import as its record says, for one that is not
    /// open (in this server's memory).
    fn closed_status(record: ImportRecord) -> ImportStatus {
        // Failed because another import changed a table it declared: said
        // as an open import's status says it.
        let table_changed = match record.state {
            ImportState::Failed => record.error.as_deref().and_then(recorded_table_changed),
            _ => None,
        };
        ImportStatus {
            id: record.id,
            mode: record.mode,
            complete: record.state == ImportState::Finished,
            state: record.state,
            next_seq: None,
            received_bytes: None,
            frame_size: None,
            prefix_crc32: None,
            error: record.error,
            label: record.label,
            target: record.target,
            table_changed,
        }
    }

    /// The newest imports `query` asks for, oldest first, and whether
    /// older ones it matches were left out.
    pub fn list(&self, query: ImportsQuery<'_>) -> Result<(Vec<ImportStatus>, bool), ImportsError> {
        let page = self.store.imports_page(query)?;
        let mut listed = Vec::with_capacity(page.imports.len());
        for record in page.imports {
            let open = lock(&self.open).contains_key(&record.id);
            listed.push(match open {
                // Where it stands now, from memory.
                true => self.status(&record.id)?,
                false => Self::closed_status(record),
            });
        }
        Ok((listed, page.older))
    }

    /// Appends stream bytes holding whole frames, the first numbered `seq`
    /// (for `seq` 0 the bytes start with the stream header).
    pub fn append(&self, id: &str, seq: u64, body: &[u8]) -> Result<Appended, ImportsError> {
        self.with_open(id, |open| {
            let expected = open.decoder.next_sequence();
            if seq != expected {
                return Err(ImportsError::Sequence { expected, got: seq });
            }
            let base = open.log.len();
            let result = self.append_frames(open, base, body);
            // A damaged, oversized or misnumbered frame leaves the decoder
            // expecting it again, and nothing of it was checked further: the
            // state is good if the decoder is where the log ends (it is not
            // when it read a stream header that was not logged). Anything
            // else may have advanced it past the log.
            let intact = matches!(&result, Err(ImportsError::Frame { error, .. }) if error.is_retryable())
                && open.decoder.committed_offset() == open.log.len();
            if result.is_err() && !intact {
                open.stale = true;
            }
            result
        })
    }

    /// [`append`](Self::append) for the bytes `body`, which follow the
    /// first `base` bytes of the log: every frame is decoded and checked,
    /// the good ones (those before the first refused) are logged and
    /// written; a refusal is answered once they are.
    fn append_frames(
        &self,
        open: &mut Open,
        base: u64,
        body: &[u8],
    ) -> Result<Appended, ImportsError> {
        // 1. Decode every frame of the body.
        let (frames, mut refusal) = decode_frames(&mut open.decoder, base, body);
        // 2. Check their content, in order; stop at the first refusal.
        let mut accepted = Vec::with_capacity(frames.len());
        for frame in &frames {
            match open.ingest.frame(frame) {
                Ok(a) => accepted.push(a),
                Err(rejection) => {
                    refusal = Some(ImportsError::Rejected(Box::new(rejection)));
                    break;
                }
            }
        }
        // What the import sees of the tables it declares, as it is told
        // they are: the store writes record that, however late they land.
        let declared: Vec<(&str, &str)> = accepted
            .iter()
            .flat_map(|a| &a.tables)
            .map(|t| (t.component.as_str(), t.name.as_str()))
            .collect();
        if !declared.is_empty() {
            let seen = self.store.observe_tables(&declared)?;
            // Kept on disk too, for a write made good after a restart.
            self.keep_observed(&open.id, &declared, &seen)?;
            for (&(component, name), seen) in declared.iter().zip(seen) {
                let key = (component.to_owned(), name.to_owned());
                open.observed.insert(key, seen);
            }
        }
        // 3. The good frames (and for a first request, the stream header) go to the log.
        let good_end = match (&refusal, accepted.len()) {
            (None, _) => base + body.len() as u64,
            (Some(_), 0) => base,
            (Some(_), n) => frames[n - 1].offset + frames[n - 1].len,
        };
        if good_end > base {
            open.log.append(&body[..(good_end - base) as usize])?;
            let done = open.decoder.is_done() && accepted.len() == frames.len();
            let last = accepted.len().checked_sub(1).map(|last| &frames[last]);
            open.logged = Progress {
                next_seq: last.map_or(open.logged.next_seq, |frame| frame.sequence + 1),
                prefix_crc32: last.map_or(open.logged.prefix_crc32, |frame| frame.prefix_crc32),
                complete: done,
                ..Progress::of(&open.decoder, open.log.len())
            };
        }
        // 4. Then into the stores: the files here, and the documents on a
        // thread of their own, after the previous requests'.
        let mut writes = Vec::with_capacity(accepted.len());
        for (frame, a) in frames.iter().zip(&accepted) {
            self.keep_files(&open.id, a, &mut open.file)?;
            let write = frame_write(a, frame.sequence, &open.ingest, &open.observed);
            writes.push(OwnedFrameWrite::new(&write));
        }
        if open.stale
            || !open
                .pending
                .queue(&self.store, &open.id, writes, &open.changed, &self.halted)
        {
            // The frames are in the log: rebuilding the state before the
            // next request writes what the store lacks, these included.
            open.stale = true;
        }
        // Idle until the next request, maybe for days.
        open.decoder.shrink();
        match refusal {
            Some(e) => Err(e),
            None => Ok(Appended {
                frames: accepted.len() as u64,
                next_seq: open.logged.next_seq,
                received_bytes: open.logged.received_bytes,
                complete: open.logged.complete,
            }),
        }
    }

    /// Activates a complete import's tables (Convex's mode semantics), or
    /// fails it, leaving the database as it was.
    pub fn finish(&self, id: &str) -> Result<Vec<ActivatedTable>, ImportsError> {
        let handle = self.handle(id).map_err(|e| self.as_refusal(e))?;
        let mut slot = lock(&handle.open);
        self.running()?;
        let Some(open) = slot.as_mut() else {
            return Err(self.as_refusal(self.closed_meanwhile(id)));
        };
        open.settle_write();
        if open.stale {
            if let Err(e) = self.rebuild(open) {
                return Err(self.fail_if_refused(id, &handle, slot, e));
            }
        }
        if !open.decoder.is_done() {
            return Err(ImportsError::Incomplete {
                expected: open.decoder.next_sequence(),
            });
        }
        // Replacing `_storage` rows may leave files no row refers to; marked
        // before, so that a crash right after the commit leaves it marked.
        if matches!(open.mode, ImportMode::Replace | ImportMode::ReplaceAll)
            && open.ingest.declares_storage()
        {
            self.files.mark_sweep_due()?;
        }
        // The wait for the last write may have been long.
        self.running()?;
        let ingest = &open.ingest;
        let lines =
            |component: &str, table: &str, document| ingest.line_of(component, table, document);
        let mut result = self.store.finish_import_locating(id, &lines);
        if matches!(result, Err(StoreError::Refused(_))) {
            std::thread::sleep(FINISH_RETRY);
            result = self.store.finish_import_locating(id, &lines);
        }
        // Refused twice: trying again would be refused again, so the import
        // fails, with the database's words and what to do.
        if let Err(StoreError::Refused(words)) = &result {
            let refusal = finish_refused(words);
            result = match self.store.fail_import(id, &refusal) {
                Ok(()) => {
                    eprintln!("snappack: import {id} failed: {}", refusal.recorded());
                    Err(refusal.into())
                }
                Err(e) => Err(e),
            };
        }
        if let Err(StoreError::Database(e) | StoreError::Refused(e)) = result {
            return Err(ImportsError::Internal(e));
        }
        if result.is_err() {
            // Refused, the import failed: its files may be left unreferenced.
            self.files.mark_sweep_due()?;
        }
        handle.close(&mut slot);
        drop(slot);
        self.forget(id);
        self.sweep_after_end();
        let activated = result?;
        self.note_changed_tables();
        Ok(activated)
    }

    /// After an import finished: the open imports that declared a table it
    /// changed can no longer finish, which their status says from now on,
    /// so that a client learns it before sending the rest.
    fn note_changed_tables(&self) {
        let open: Vec<(String, Arc<Slot>)> = lock(&self.open)
            .iter()
            .map(|(id, slot)| (id.clone(), slot.clone()))
            .collect();
        for (id, slot) in open {
            note_changed(&*self.store, &id, &slot.changed);
            self.try_release(&id, &slot);
        }
    }

    /// Fails every open import that can no longer finish (its status's
    /// `tableChanged`) and is not busy with a request: for those whose
    /// store write found it, after the request that made the write was
    /// answered. Run now and then by the server.
    pub fn release_changed(&self) {
        let changed: Vec<(String, Arc<Slot>)> = lock(&self.open)
            .iter()
            .filter(|(_, slot)| lock(&slot.changed).is_some())
            .map(|(id, slot)| (id.clone(), slot.clone()))
            .collect();
        for (id, slot) in changed {
            self.try_release(&id, &slot);
        }
    }

    /// Fails open import `id` now if another import changed a table it
    /// declared (its `changed`) and no request holds its lock: a request
    /// that holds it calls this again as it ends. A failure is said, and
    /// it is tried again later ([`release_changed`](Self::release_changed)).
    fn try_release(&self, id: &str, handle: &Arc<Slot>) {
        if self.running().is_err() {
            return;
        }
        let Some(changed) = lock(&handle.changed).clone() else {
            return;
        };
        let slot = match handle.open.try_lock() {
            Ok(slot) => slot,
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(TryLockError::WouldBlock) => return,
        };
        if slot.is_none() {
            return;
        }
        if let Err(e) = self.release(id, handle, slot, &changed) {
            let e = e.to_string();
            let mut said = lock(&handle.release_error);
            if said.as_ref() != Some(&e) {
                say!(
                    "snappack: import {id} can no longer finish ({}), but failing it did not happen: {e} (tried again every few seconds)",
                    changed.recorded()
                );
                *said = Some(e);
            }
        }
    }

    /// Fails open import `id`, whose lock `slot` is, with `changed` (another
    /// import changed a table it declared): it could never finish, however
    /// much were sent, so its hidden tables, staging log and memory are let
    /// go at once rather than when its client comes back or it expires. Its
    /// record stays, with the refusal, for the client that asks.
    fn release(
        &self,
        id: &str,
        handle: &Slot,
        slot: MutexGuard<'_, Option<Open>>,
        changed: &ImportError,
    ) -> Result<(), ImportsError> {
        self.end_open(id, handle, slot, || self.store.fail_import(id, changed))?;
        say!(
            "snappack: import {id} failed: {}: it can no longer finish",
            changed.recorded()
        );
        Ok(())
    }

    /// `error`, from writing open import `id`'s frames again from its
    /// staging log (its lock `slot`, held) after a write of them failed:
    /// when the database refused them again the same way
    /// ([`ImportsError::StoreRefused`]), trying on would be refused forever,
    /// so the import fails with the database's words and what to do (its
    /// hidden tables and staging log go), and that refusal is returned.
    /// Any other error (a lost connection) is returned as it is: the next
    /// request tries again.
    fn fail_if_refused(
        &self,
        id: &str,
        handle: &Slot,
        slot: MutexGuard<'_, Option<Open>>,
        error: ImportsError,
    ) -> ImportsError {
        let ImportsError::StoreRefused(words) = error else {
            return error;
        };
        let refusal = write_refused(&words);
        match self.end_open(id, handle, slot, || self.store.fail_import(id, &refusal)) {
            Ok(()) => {
                eprintln!("snappack: import {id} failed: {}", refusal.recorded());
                ImportsError::Refused(refusal)
            }
            Err(e) => e,
        }
    }

    /// `NotOpen` for an import the server failed because another import
    /// changed a table it declared is that refusal, as frames sent to it
    /// and its finish met before it was failed.
    fn as_refusal(&self, error: ImportsError) -> ImportsError {
        let ImportsError::NotOpen {
            id,
            state: ImportState::Failed,
        } = &error
        else {
            return error;
        };
        match self.store.import(id).map(|record| record.error) {
            Ok(Some(recorded)) => match recorded_table_changed(&recorded) {
                Some(changed) => ImportsError::Refused(changed),
                None => error,
            },
            _ => error,
        }
    }

    /// Cancels every open import that received nothing (its staging log
    /// unchanged) for longer than `idle`; returns their ids. Abandoned
    /// uploads would otherwise keep their hidden tables, log and memory.
    pub fn expire(&self, idle: Duration) -> Result<Vec<String>, ImportsError> {
        let ids: Vec<String> = lock(&self.open).keys().cloned().collect();
        let mut expired = Vec::new();
        for id in ids {
            let changed = fs::metadata(self.log_path(&id)).and_then(|m| m.modified());
            let idle_for = changed.map(|at| at.elapsed().unwrap_or_default());
            if idle_for.is_ok_and(|d| d > idle) {
                let reason = format!(
                    "expired: nothing was received for more than {}",
                    describe_duration(idle)
                );
                match self.end(&id, Some(&reason)) {
                    Ok(()) => expired.push(id),
                    // Finished or cancelled meanwhile.
                    Err(ImportsError::NotOpen { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(expired)
    }

    /// Cancels an open import: its hidden tables and staging log are dropped.
    pub fn cancel(&self, id: &str) -> Result<(), ImportsError> {
        self.end(id, None)
    }

    /// Cancels an open import, for `reason` when the server ends it.
    fn end(&self, id: &str, reason: Option<&str>) -> Result<(), ImportsError> {
        let handle = self.handle(id)?;
        let slot = lock(&handle.open);
        self.running()?;
        if slot.is_none() {
            return Err(self.closed_meanwhile(id));
        }
        self.end_open(id, &handle, slot, || self.store.cancel_import(id, reason))
    }

    /// Ends open import `id`, whose lock `slot` is, with `end` (which drops
    /// its hidden tables): its stored files may be left unreferenced, and
    /// its staging log goes.
    fn end_open(
        &self,
        id: &str,
        handle: &Slot,
        mut slot: MutexGuard<'_, Option<Open>>,
        end: impl FnOnce() -> Result<(), StoreError>,
    ) -> Result<(), ImportsError> {
        // The last write lands (or fails) before the hidden tables are dropped.
        if let Some(open) = slot.as_mut() {
            open.settle_write();
        }
        self.files.mark_sweep_due()?;
        end()?;
        handle.close(&mut slot);
        drop(slot);
        self.forget(id);
        self.sweep_after_end();
        Ok(())
    }

    fn forget(&self, id: &str) {
        lock(&self.open).remove(id);
        let _ = fs::remove_dir_all(self.dir.join(id));
    }
}

/// A duration in words: whole days, else whole hours, else seconds.
pub(crate) fn describe_duration(d: Duration) -> String {
    let (n, unit) = match d.as_secs() {
        s if s >= 86_400 && s % 86_400 == 0 => (s / 86_400, "day"),
        s if s >= 3_600 && s % 3_600 == 0 => (s / 3_600, "hour"),
        s => (s, "second"),
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    /// Status answers while a request holds the import's lock, from what the
    /// import acknowledged last, instead of waiting for the request.
    #[test]
    fn status_does_not_wait_for_a_busy_import() {
        let dir = std::env::temp_dir().join(format!("snappack-busy-status-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let store: Arc<dyn Store> = super::super::store::open(dir.join("db").to_str().unwrap())
            .unwrap()
            .into();
        let imports = Arc::new(Imports::open(store, &dir, Limits::default()).unwrap());
        let id = imports
            .create(ImportMode::RequireEmpty, Some("busy"))
            .unwrap()
            .id;
        let slot = imports.handle(&id).unwrap();
        let (held, release) = (mpsc::channel(), mpsc::channel::<()>());
        let holder = std::thread::spawn(move || {
            let _busy = lock(&slot.open);
            held.0.send(()).unwrap();
            let _ = release.1.recv_timeout(Duration::from_secs(30));
        });
        held.1.recv().unwrap();
        let (answer, answered) = mpsc::channel();
        let asker = imports.clone();
        let asked = id.clone();
        std::thread::spawn(move || answer.send(asker.status(&asked)).unwrap());
        let status = answered.recv_timeout(Duration::from_secs(10));
        release.0.send(()).unwrap();
        holder.join().unwrap();
        let status = status.expect("status waited for the busy import").unwrap();
        assert_eq!(status.state, ImportState::Open);
        assert_eq!(status.next_seq, Some(0));
        assert_eq!(status.label.as_deref(), Some("busy"));
        imports.cancel(&id).unwrap();
        assert_eq!(imports.status(&id).unwrap().state, ImportState::Cancelled);
        let _ = fs::remove_dir_all(&dir);
    }
}
