//! The client side of the import protocol (`docs/PROTOCOL.md`) as a sans-IO
//! state machine: it says which request to make next, and is told what came
//! back; the driver (the native `snappack upload`, or WebAssembly in a
//! browser) does the HTTP, the sleeping, and reads the frames.
//!
//! It creates an import (or resumes one by id), sends frames from the
//! server's expected sequence number, adopts the server's number on a
//! sequence mismatch, retries with exponential backoff on network errors and
//! server failures (asking the server where it stands before going on), and
//! finishes. Refusals the same bytes would meet again (a rejected document,
//! a conflict at finish, a wrong token) end the upload with the server's
//! code, message and location.
//!
//! Beside it: [`FrameEnds`], the frame boundaries of a stream as it is
//! written (each with its [`InputPosition`]), so that frames are sent while
//! packing goes on; and [`FileIdentity`], what an import's label records of
//! its file.

mod fingerprint;

use std::io::{self, Read, Seek, SeekFrom};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::migration::{
    DEFAULT_FRAME_SIZE, FRAME_HEADER_LEN, MIN_PACK_FRAME_SIZE, STREAM_HEADER_LEN,
};
use crate::validate::ImportMode;

pub use fingerprint::{FileIdentity, FINGERPRINT_SPAN, MAX_LABEL_LEN};

/// The length of a frame, from its header's stored payload length.
pub fn frame_len(header: &[u8; FRAME_HEADER_LEN]) -> u64 {
    FRAME_HEADER_LEN as u64
        + u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as u64
}

/// The byte ranges of a stream's frames, read from the frame headers' stored
/// lengths (without checking them), as `(start, end)` offsets; the first
/// range starts at 0 and so includes the stream header. Stops at the first
/// incomplete frame: the input may be a prefix of a stream.
pub fn scan_frames<R: Read + Seek>(mut input: R) -> io::Result<Vec<(u64, u64)>> {
    let len = input.seek(SeekFrom::End(0))?;
    let mut out = Vec::new();
    if len < STREAM_HEADER_LEN as u64 {
        return Ok(out);
    }
    let (mut start, mut pos) = (0, STREAM_HEADER_LEN as u64);
    let mut header = [0u8; FRAME_HEADER_LEN];
    while pos + FRAME_HEADER_LEN as u64 <= len {
        input.seek(SeekFrom::Start(pos))?;
        input.read_exact(&mut header)?;
        let end = pos + frame_len(&header);
        if end > len {
            break;
        }
        out.push((start, end));
        (start, pos) = (end, end);
    }
    Ok(out)
}

/// [`scan_frames`] of bytes in memory.
pub fn frame_ranges(bytes: &[u8]) -> Vec<(u64, u64)> {
    scan_frames(io::Cursor::new(bytes)).unwrap_or_default()
}

/// How far into its input a packing walk has read, shared between the walk's
/// progress callback, which sets it, and the writer of the stream, which
/// marks each frame it completes with it: how much of the input a frame's
/// arrival at the server stands for (it may lag the frame by the walk's
/// progress step, 1 MiB, and lead it by what the encoder holds).
#[derive(Debug, Clone, Default)]
pub struct InputPosition(Arc<AtomicU64>);

impl InputPosition {
    /// The walk reached `bytes_read` (its progress's `bytes_read`).
    pub fn set(&self, bytes_read: u64) {
        self.0.store(bytes_read, Ordering::Relaxed);
    }

    /// Where the walk was last.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Where frames end in a stream that is being written: fed every byte as it
/// is written, in pieces of any size, it tells which frames each piece
/// completes, so a sender can send them while packing goes on.
#[derive(Debug, Clone)]
pub struct FrameEnds {
    /// Bytes fed so far.
    written: u64,
    /// Where the stream header, or the frame being fed, ends; `None` while
    /// its frame header is incomplete.
    end: Option<u64>,
    /// The frame header being fed.
    header: [u8; FRAME_HEADER_LEN],
    header_len: usize,
}

impl Default for FrameEnds {
    fn default() -> Self {
        FrameEnds::from_frame(0)
    }
}

impl FrameEnds {
    /// For a stream written from frame `first` on
    /// ([`EncoderConfig::resume_from`](crate::migration::EncoderConfig::resume_from)):
    /// from frame 0 it starts with the stream header, else with that frame.
    pub fn from_frame(first: u64) -> Self {
        FrameEnds::starting_with_header(first == 0)
    }

    /// For a stream that starts with the stream header, or with a frame
    /// (resumed, or a shard that does not hold frame 0).
    pub fn starting_with_header(header: bool) -> Self {
        FrameEnds {
            written: 0,
            end: header.then_some(STREAM_HEADER_LEN as u64),
            header: [0; FRAME_HEADER_LEN],
            header_len: 0,
        }
    }

    /// Takes the next bytes of the stream and appends to `ends` the end
    /// offset of each frame they complete.
    pub fn feed(&mut self, mut bytes: &[u8], ends: &mut Vec<u64>) {
        while !bytes.is_empty() {
            match self.end {
                Some(end) => {
                    let take = bytes.len().min((end - self.written) as usize);
                    self.written += take as u64;
                    bytes = &bytes[take..];
                    if self.written == end {
                        // The stream header ends no frame.
                        if end != STREAM_HEADER_LEN as u64 {
                            ends.push(end);
                        }
                        self.end = None;
                    }
                }
                None => {
                    let take = bytes.len().min(FRAME_HEADER_LEN - self.header_len);
                    self.header[self.header_len..self.header_len + take]
                        .copy_from_slice(&bytes[..take]);
                    self.header_len += take;
                    self.written += take as u64;
                    bytes = &bytes[take..];
                    if self.header_len == FRAME_HEADER_LEN {
                        self.header_len = 0;
                        let end = self.written - FRAME_HEADER_LEN as u64 + frame_len(&self.header);
                        if end == self.written {
                            ends.push(end);
                        } else {
                            self.end = Some(end);
                        }
                    }
                }
            }
        }
    }
}

/// The frame size a new stream is packed with for a server, and whether the
/// server's limit lowered the one asked for: see [`frame_size_for`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameSizeChoice {
    /// The bound of a frame's payload to pack with.
    pub size: usize,
    /// The size asked for, when it was over the server's limit and `size`
    /// is that limit instead (a default frame size lowered is not named).
    pub lowered_from: Option<usize>,
}

/// The frame size to pack a new import's stream with: `asked` (else
/// [`DEFAULT_FRAME_SIZE`]), or the server's limit when that is smaller
/// (`server_max`, the `maxFrameSize` of its table listing: `GET
/// /api/tables`), so that the server takes every frame. A server that does
/// not advertise one (`None`: an older server) gets the size asked for, as
/// before. Refused, with why, only when the server takes no frame as large
/// as the smallest snappack packs ([`MIN_PACK_FRAME_SIZE`]). A continued
/// import is packed in its own stream's frame size instead, which its
/// server took.
pub fn frame_size_for(
    asked: Option<usize>,
    server_max: Option<u64>,
) -> Result<FrameSizeChoice, String> {
    let wanted = asked.unwrap_or(DEFAULT_FRAME_SIZE);
    let Some(limit) = server_max else {
        return Ok(FrameSizeChoice {
            size: wanted,
            lowered_from: None,
        });
    };
    if limit < MIN_PACK_FRAME_SIZE as u64 {
        return Err(format!(
            "the server takes frames of at most {limit} bytes (its maxFrameSize), under the \
             {MIN_PACK_FRAME_SIZE} bytes snappack packs at least"
        ));
    }
    if wanted as u64 <= limit {
        return Ok(FrameSizeChoice {
            size: wanted,
            lowered_from: None,
        });
    }
    Ok(FrameSizeChoice {
        size: limit as usize,
        lowered_from: asked,
    })
}

/// The frame limit a server's table listing (`GET /api/tables`, as JSON)
/// advertises (`maxFrameSize`), if it does: older servers do not.
pub fn advertised_max_frame_size(listing: &serde_json::Value) -> Option<u64> {
    listing.get("maxFrameSize")?.as_u64()
}

/// How an upload behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadConfig {
    /// The import mode (for a new import).
    pub mode: ImportMode,
    /// Frames per request, at most: halved each time a request of several
    /// is refused as too large (`413`, but for `FrameTooLarge`).
    pub frames_per_request: u64,
    /// Retries in a row before giving up.
    pub max_retries: u32,
    /// First backoff, in milliseconds; doubled on each retry in a row.
    pub backoff_ms: u64,
    /// Longest backoff, in milliseconds.
    pub max_backoff_ms: u64,
}

impl Default for UploadConfig {
    fn default() -> Self {
        UploadConfig {
            mode: ImportMode::RequireEmpty,
            frames_per_request: 4,
            max_retries: 8,
            backoff_ms: 250,
            max_backoff_ms: 10_000,
        }
    }
}

/// What an import targets, as the client that creates it says: the
/// component its tables go into and, for a single-table file, the table it
/// is imported as. The server records it with the import and says it in
/// the import's status, so that a resumed upload given other options can
/// be told so before it sends anything.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportTarget {
    /// Component path (`""` for the root).
    #[serde(default)]
    pub component: String,
    /// The table a single-table file (JSONL, JSON array, CSV) is imported
    /// as; `None` for a snapshot archive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
}

impl ImportTarget {
    /// The longest component path a target may name, in bytes: longer ones
    /// cannot be declared in the smallest frames snappack packs.
    pub const MAX_COMPONENT_LEN: usize = 4096;

    /// Why the server refuses this target, if it does: a component path or
    /// table name that is not one, or a system table (a name starting with
    /// `_`), which no single-table import goes into.
    pub fn check(&self) -> Result<(), String> {
        if self.component.len() > Self::MAX_COMPONENT_LEN {
            return Err(format!(
                "component path is longer than {} bytes",
                Self::MAX_COMPONENT_LEN
            ));
        }
        crate::archive::check_component_path(&self.component)
            .map_err(|why| format!("component path '{}' invalid: {why}", self.component))?;
        if let Some(table) = &self.table {
            crate::convex::names::check_identifier(table)
                .map_err(|why| format!("table name '{table}' invalid: {why}"))?;
            // As the validator refuses such a `--table`, in Convex's words.
            if let Some(refusal) = crate::convex::names::system_table_refusal(table) {
                return Err(refusal);
            }
        }
        Ok(())
    }
}

/// A request to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// `POST /api/imports` with a JSON body.
    Create {
        /// The mode.
        mode: ImportMode,
        /// The label to find the import by (for example a fingerprint of the file).
        label: Option<String>,
        /// What the import targets, to record with it.
        target: Option<ImportTarget>,
    },
    /// `GET /api/imports/{id}`.
    Status {
        /// The import.
        id: String,
    },
    /// `POST /api/imports/{id}/frames?seq={seq}` with frames `seq..seq+count` as the body.
    Append {
        /// The import.
        id: String,
        /// First frame.
        seq: u64,
        /// Frames in the body.
        count: u64,
    },
    /// `POST /api/imports/{id}/finish`.
    Finish {
        /// The import.
        id: String,
    },
}

impl Request {
    /// The HTTP method.
    pub fn method(&self) -> &'static str {
        match self {
            Request::Status { .. } => "GET",
            _ => "POST",
        }
    }

    /// The path (and query), below the server's base URL.
    pub fn path(&self) -> String {
        match self {
            Request::Create { .. } => "/api/imports".into(),
            Request::Status { id } => import_path(id),
            Request::Append { id, seq, .. } => format!("{}/frames?seq={seq}", import_path(id)),
            Request::Finish { id } => format!("{}/finish", import_path(id)),
        }
    }

    /// The JSON body, for requests that have one (Append's body is frames).
    pub fn json_body(&self) -> Option<String> {
        match self {
            Request::Create {
                mode,
                label,
                target,
            } => {
                let mut body = serde_json::json!({ "mode": mode });
                if let Some(label) = label {
                    body["label"] = label.as_str().into();
                }
                if let Some(target) = target {
                    body["target"] = serde_json::json!(target);
                }
                Some(body.to_string())
            }
            _ => None,
        }
    }
}

/// What the driver does next.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Make this request and report the answer.
    Send(Request),
    /// Wait this many milliseconds, then ask again.
    Sleep(u64),
    /// The next frames to send are not packed yet: announce them with
    /// [`Upload::add_frames`] (or the end with [`Upload::packing_done`]),
    /// then ask again.
    Wait,
    /// The import is finished; the server's last answer.
    Done(serde_json::Value),
    /// The upload cannot go on.
    Failed(UploadError),
}

/// The path of import `id` (`/api/imports/{id}`), every byte of the id but
/// letters and digits percent-encoded, so that an id typed by hand
/// (`--resume`) stays one segment and cannot reach another path (`..`,
/// `/`, `?`).
pub fn import_path(id: &str) -> String {
    let mut path = String::from("/api/imports/");
    for byte in id.bytes() {
        match byte {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' => path.push(byte as char),
            _ => path.push_str(&format!("%{byte:02X}")),
        }
    }
    path
}

/// Why an upload stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(rename_all = "camelCase")]
#[error("{code}: {message}")]
pub struct UploadError {
    /// The server's code (or `NetworkError`, `Protocol`).
    pub code: String,
    /// The message.
    pub message: String,
    /// HTTP status, when the server answered.
    pub status: Option<u16>,
    /// Component of the table concerned.
    #[serde(default)]
    pub component: String,
    /// Table concerned.
    pub table: Option<String>,
    /// 1-based document number within the table.
    pub line: Option<u64>,
    /// The field concerned, as a path from the document.
    #[serde(default)]
    pub field: Option<String>,
    /// Frame concerned.
    pub seq: Option<u64>,
}

impl UploadError {
    fn new(code: &str, message: impl Into<String>, status: Option<u16>) -> Self {
        UploadError {
            code: code.into(),
            message: message.into(),
            status,
            component: String::new(),
            table: None,
            line: None,
            field: None,
            seq: None,
        }
    }

    /// The error of an answer the upload cannot go on from: the server's
    /// own (its body's `code`, `message` and where), or, for an answer
    /// without a code (not a snappack server's error: a proxy's page, or
    /// another server at that URL), one saying which request met it.
    fn from_answer(request: &Request, status: u16, body: &serde_json::Value) -> Self {
        if body.get("code").is_some_and(|code| code.is_string()) {
            return Self::from_body(status, body);
        }
        let message = format!(
            "{} {} was answered with HTTP status {status} and no snappack error: \
             is the URL the snappack server's?",
            request.method(),
            request.path()
        );
        UploadError::new(&format!("Http{status}"), message, Some(status))
    }

    fn from_body(status: u16, body: &serde_json::Value) -> Self {
        let text = |key: &str| body.get(key).and_then(|v| v.as_str()).map(str::to_owned);
        UploadError {
            code: text("code").unwrap_or_else(|| format!("Http{status}")),
            message: text("message").unwrap_or_else(|| format!("HTTP status {status}")),
            status: Some(status),
            component: text("component").unwrap_or_default(),
            table: text("table"),
            line: body.get("line").and_then(|v| v.as_u64()),
            field: text("field"),
            seq: body.get("seq").and_then(|v| v.as_u64()),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum State {
    /// About to send this request.
    Ready(Request),
    /// Waiting for the answer to this request.
    Waiting(Request),
    /// Backing off this long; then this request.
    Backoff(u64, Request),
    /// To send from this frame once it is packed.
    Packing(u64),
    Done(serde_json::Value),
    Failed(UploadError),
}

/// One upload of a stream of `frames` frames.
#[derive(Debug, Clone)]
pub struct Upload {
    config: UploadConfig,
    label: Option<String>,
    target: Option<ImportTarget>,
    /// Frames packed so far (all of them once `packed`).
    frames: u64,
    /// True when `frames` is the whole stream.
    packed: bool,
    id: Option<String>,
    /// The first frame the driver has (see [`Upload::from_frame`]).
    first_frame: u64,
    next_seq: u64,
    retries: u32,
    state: State,
}

impl Upload {
    /// A new import for a stream of `frames` frames.
    pub fn new(config: UploadConfig, frames: u64) -> Self {
        Upload {
            state: State::Ready(Request::Create {
                mode: config.mode,
                label: None,
                target: None,
            }),
            config,
            label: None,
            target: None,
            frames,
            packed: true,
            id: None,
            first_frame: 0,
            next_seq: 0,
            retries: 0,
        }
    }

    /// Continues import `id` from wherever the server stands.
    pub fn resume(config: UploadConfig, frames: u64, id: &str) -> Self {
        Upload {
            state: State::Ready(Request::Status { id: id.to_owned() }),
            id: Some(id.to_owned()),
            ..Upload::new(config, frames)
        }
    }

    /// Gives a new import a label (for example a fingerprint of the file),
    /// listed with the server's imports so the upload can be found again.
    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        let label = label.into();
        if let State::Ready(Request::Create { label: slot, .. }) = &mut self.state {
            *slot = Some(label.clone());
        }
        self.label = Some(label);
        self
    }

    /// Says what a new import targets (its component, and the table of a
    /// single-table file), which the server records with it.
    pub fn with_target(mut self, target: ImportTarget) -> Self {
        if let State::Ready(Request::Create { target: slot, .. }) = &mut self.state {
            *slot = Some(target.clone());
        }
        self.target = Some(target);
        self
    }

    /// Sends a stream while it is being packed: no frame is known yet;
    /// announce them with [`Upload::add_frames`] as they are written and the
    /// end with [`Upload::packing_done`]. Frames go out as soon as they are
    /// packed (up to `frames_per_request` a request); finish waits for the end.
    pub fn packing(mut self) -> Self {
        self.frames = 0;
        self.packed = false;
        self
    }

    /// The driver has the frames from `first` on only (it packed from the
    /// server's `nextSeq` when resuming): a server that asks for an earlier
    /// one ends the upload with a `Protocol` error.
    pub fn from_frame(mut self, first: u64) -> Self {
        self.first_frame = first;
        self
    }

    /// `frames` frames (in all) are packed now.
    pub fn add_frames(&mut self, frames: u64) {
        self.frames = self.frames.max(frames);
        self.wake();
    }

    /// Every frame is packed: the stream has `self.frames()` of them.
    pub fn packing_done(&mut self) {
        self.packed = true;
        self.wake();
    }

    /// True once every frame of the stream is known.
    pub fn is_packed(&self) -> bool {
        self.packed
    }

    fn wake(&mut self) {
        if let State::Packing(seq) = self.state {
            self.send_from(seq);
        }
    }

    /// The import's id, once created.
    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    /// Frames the server has acknowledged.
    pub fn acknowledged(&self) -> u64 {
        self.next_seq
    }

    /// Frames in the stream.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// What to do now.
    pub fn step(&mut self) -> Step {
        let placeholder = State::Failed(UploadError::new("Protocol", "", None));
        match std::mem::replace(&mut self.state, placeholder) {
            State::Ready(request) | State::Backoff(0, request) | State::Waiting(request) => {
                self.state = State::Waiting(request.clone());
                Step::Send(request)
            }
            State::Backoff(ms, request) => {
                self.state = State::Backoff(0, request);
                Step::Sleep(ms)
            }
            State::Packing(seq) => {
                self.state = State::Packing(seq);
                Step::Wait
            }
            State::Done(result) => {
                self.state = State::Done(result.clone());
                Step::Done(result)
            }
            State::Failed(error) => {
                self.state = State::Failed(error.clone());
                Step::Failed(error)
            }
        }
    }

    fn send_from(&mut self, seq: u64) {
        self.next_seq = seq;
        let Some(id) = self.id.clone() else {
            return self.fail(UploadError::new("Protocol", "no import id", None));
        };
        if seq < self.first_frame {
            let message = format!(
                "the server lacks frame {seq}, which it had when packing started at frame {}: continue the upload again",
                self.first_frame
            );
            return self.fail(UploadError::new("Protocol", message, None));
        }
        if seq >= self.frames && !self.packed {
            self.state = State::Packing(seq);
            return;
        }
        self.state = State::Ready(if seq >= self.frames {
            Request::Finish { id }
        } else {
            Request::Append {
                id,
                seq,
                count: self.config.frames_per_request.max(1).min(self.frames - seq),
            }
        });
    }

    /// After a backoff, asks where the server stands (or creates the import again).
    fn retry(&mut self, error: UploadError) {
        self.retries += 1;
        if self.retries > self.config.max_retries {
            let mut error = error;
            error.message = format!(
                "gave up after {} retries: {}",
                self.config.max_retries, error.message
            );
            return self.fail(error);
        }
        let backoff = self
            .config
            .backoff_ms
            .saturating_mul(1 << (self.retries - 1).min(20))
            .min(self.config.max_backoff_ms);
        let request = match &self.id {
            Some(id) => Request::Status { id: id.clone() },
            None => Request::Create {
                mode: self.config.mode,
                label: self.label.clone(),
                target: self.target.clone(),
            },
        };
        self.state = State::Backoff(backoff.max(1), request);
    }

    /// The request failed before an answer (connection refused, reset, timeout).
    pub fn on_network_error(&mut self, message: &str) {
        if matches!(self.state, State::Waiting(_)) {
            self.retry(UploadError::new("NetworkError", message, None));
        }
    }

    /// The server answered with `status` and `body`.
    pub fn on_response(&mut self, status: u16, body: &[u8]) {
        let State::Waiting(request) = &self.state else {
            return;
        };
        let request = request.clone();
        let json: serde_json::Value =
            serde_json::from_slice(body).unwrap_or(serde_json::Value::Null);
        if status >= 500 {
            return self.retry(UploadError::from_answer(&request, status, &json));
        }
        let code = json.get("code").and_then(|v| v.as_str());
        let expected = json.get("expectedSeq").and_then(|v| v.as_u64());
        let next_seq = json.get("nextSeq").and_then(|v| v.as_u64());
        let missing = |what: &str| {
            UploadError::new("Protocol", format!("no {what} in the answer"), Some(status))
        };
        match (&request, status) {
            // A server from before imports recorded their target refuses
            // the field: the import is made again without it (the server
            // cannot record it, and a resume cannot compare it).
            (
                Request::Create {
                    target: Some(_), ..
                },
                400,
            ) if code == Some("BadRequest")
                && json
                    .get("message")
                    .and_then(|m| m.as_str())
                    .is_some_and(|m| m.contains("unknown field `target`")) =>
            {
                self.target = None;
                self.state = State::Ready(Request::Create {
                    mode: self.config.mode,
                    label: self.label.clone(),
                    target: None,
                });
            }
            (Request::Create { .. }, 201) => match json.get("id").and_then(|v| v.as_str()) {
                Some(id) => {
                    self.id = Some(id.to_owned());
                    self.retries = 0;
                    self.send_from(0);
                }
                None => self.fail(missing("import id")),
            },
            (Request::Status { .. }, 200) => match json.get("state").and_then(|v| v.as_str()) {
                // Another import changed a table this one declared: its
                // finish would be refused, so nothing more is sent (the
                // server fails such an import as soon as it finds it).
                Some("open" | "failed")
                    if json.get("tableChanged").is_some_and(|c| c.is_object()) =>
                {
                    let mut error = UploadError::from_body(status, &json["tableChanged"]);
                    error.message.push_str(&format!(
                        " (import {} can no longer finish: start a new upload)",
                        self.id.as_deref().unwrap_or("?")
                    ));
                    self.fail(error)
                }
                Some("open") => match next_seq {
                    Some(seq) => self.send_from(seq),
                    None => self.fail(missing("nextSeq")),
                },
                Some("finished") => self.state = State::Done(json),
                // Failed or cancelled meanwhile (by another client, by the
                // server at expiry): the status has no code or message of
                // its own, so say it as a refused append would.
                state => {
                    let id = json.get("id").and_then(|v| v.as_str());
                    let mut message = format!(
                        "import {} is {}",
                        id.or(self.id.as_deref()).unwrap_or("?"),
                        state.unwrap_or("not open")
                    );
                    if let Some(why) = json.get("error").and_then(|v| v.as_str()) {
                        message.push_str(&format!(" ({why})"));
                    }
                    message.push_str(": start a new upload");
                    self.fail(UploadError::new("ImportNotOpen", message, Some(status)))
                }
            },
            (Request::Append { .. }, 200) => match next_seq {
                Some(seq) => {
                    self.retries = 0;
                    self.send_from(seq);
                }
                None => self.fail(missing("nextSeq")),
            },
            (Request::Finish { .. }, 200) => self.state = State::Done(json),
            // Finished already (by another client, or by this finish when its
            // answer was lost on the way): what a status saying so would end in.
            (Request::Finish { .. }, 409)
                if code == Some("ImportNotOpen")
                    && json.get("state").and_then(|v| v.as_str()) == Some("finished") =>
            {
                self.state = State::Done(json)
            }
            // The server knows better where the stream stands.
            (Request::Append { .. } | Request::Finish { .. }, 409) if expected.is_some() => {
                self.retries += 1;
                if self.retries > self.config.max_retries {
                    // The server moved on each time: someone else is sending.
                    let mut error = UploadError::from_body(status, &json);
                    error.message.push_str(&format!(
                        " ({} times in a row: is another upload sending to this import?)",
                        self.retries
                    ));
                    self.fail(error);
                } else {
                    self.send_from(expected.unwrap_or(0));
                }
            }
            // A body over the server's (or a proxy's) request limit, refused
            // before it was read: the same frames in smaller requests.
            (Request::Append { seq, count, .. }, 413)
                if *count > 1 && code != Some("FrameTooLarge") =>
            {
                self.config.frames_per_request = count / 2;
                self.send_from(*seq);
            }
            // A frame damaged on the way: ask and send it again.
            (Request::Append { .. }, 422) if code == Some("Checksum") => {
                self.retry(UploadError::from_body(status, &json))
            }
            _ => self.fail(UploadError::from_answer(&request, status, &json)),
        }
    }

    fn fail(&mut self, error: UploadError) {
        self.state = State::Failed(error);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> UploadConfig {
        UploadConfig {
            mode: ImportMode::Replace,
            frames_per_request: 2,
            max_retries: 3,
            backoff_ms: 100,
            max_backoff_ms: 250,
        }
    }

    fn sent(upload: &mut Upload) -> Request {
        match upload.step() {
            Step::Send(request) => request,
            other => panic!("expected a request, got {other:?}"),
        }
    }

    fn append(seq: u64, count: u64) -> Request {
        Request::Append {
            id: "abc".into(),
            seq,
            count,
        }
    }

    #[test]
    fn frame_ends_fed_in_pieces_are_the_streams_frame_ends() {
        let spec: crate::gen::GenSpec = serde_json::from_str(
            r#"{"tables": 2, "totalDocuments": 3000, "storageFiles": 2, "compressionLevel": 1}"#,
        )
        .unwrap();
        let mut zip = io::Cursor::new(Vec::new());
        crate::gen::write_snapshot(&mut zip, &spec).unwrap();
        zip.set_position(0);
        let options = crate::migration::PackOptions {
            encoder: crate::migration::EncoderConfig {
                max_frame_size: 16 << 10,
                ..Default::default()
            },
            ..Default::default()
        };
        let (stream, _) =
            crate::migration::pack(zip.clone(), "s.zip", Vec::new(), &options, &mut |_| true)
                .unwrap();
        let want: Vec<u64> = frame_ranges(&stream).iter().map(|r| r.1).collect();
        assert!(want.len() > 10, "{} frames", want.len());
        assert_eq!(want.last(), Some(&(stream.len() as u64)));
        // Pieces smaller than a frame header, and larger than a frame.
        for piece in [1, 5, 13, 1000, 40_000, stream.len()] {
            let mut frames = FrameEnds::default();
            let mut ends = Vec::new();
            for bytes in stream.chunks(piece) {
                frames.feed(bytes, &mut ends);
            }
            assert_eq!(ends, want, "pieces of {piece}");
        }

        // Resumed at frame 7: frames 7.. as the whole stream has them, with
        // their ends counted from frame 7's start.
        let mut resumed = options.clone();
        resumed.encoder.resume_from = 7;
        let (tail, _) =
            crate::migration::pack(zip, "s.zip", Vec::new(), &resumed, &mut |_| true).unwrap();
        let skipped = want[6];
        assert_eq!(tail, stream[skipped as usize..]);
        for piece in [1, 13, 40_000] {
            let mut frames = FrameEnds::from_frame(7);
            let mut ends = Vec::new();
            for bytes in tail.chunks(piece) {
                frames.feed(bytes, &mut ends);
            }
            let tail_ends: Vec<u64> = want[7..].iter().map(|end| end - skipped).collect();
            assert_eq!(ends, tail_ends, "resumed, pieces of {piece}");
        }
    }

    #[test]
    fn the_frame_size_is_the_one_asked_for_unless_the_server_takes_less() {
        let choice =
            |asked, server| frame_size_for(asked, server).map(|c| (c.size, c.lowered_from));
        // An older server says nothing: as before.
        assert_eq!(choice(None, None), Ok((DEFAULT_FRAME_SIZE, None)));
        assert_eq!(choice(Some(8 << 20), None), Ok((8 << 20, None)));
        // Within the limit, or at it.
        assert_eq!(choice(None, Some(16 << 20)), Ok((DEFAULT_FRAME_SIZE, None)));
        assert_eq!(choice(Some(65536), Some(65536)), Ok((65536, None)));
        // Over it: the limit, and the size asked for is named; the default is not.
        assert_eq!(choice(None, Some(65536)), Ok((65536, None)));
        assert_eq!(
            choice(Some(1 << 20), Some(65536)),
            Ok((65536, Some(1 << 20)))
        );
        // A limit under the smallest frames snappack packs.
        let refused = frame_size_for(None, Some(1000)).unwrap_err();
        assert!(
            refused.contains("at most 1000 bytes") && refused.contains("4096"),
            "{refused}"
        );
        assert_eq!(
            advertised_max_frame_size(&serde_json::json!({"tables": [], "maxFrameSize": 65536})),
            Some(65536)
        );
        assert_eq!(
            advertised_max_frame_size(&serde_json::json!({"tables": []})),
            None
        );
    }

    #[test]
    fn a_request_too_large_is_sent_again_in_smaller_ones_a_frame_too_large_is_not() {
        let mut upload = Upload::new(config(), 5);
        sent(&mut upload);
        upload.on_response(201, br#"{"id":"abc"}"#);
        assert_eq!(sent(&mut upload), append(0, 2));
        upload.on_response(413, br#"{"code":"RequestTooLarge","message":"over"}"#);
        assert_eq!(sent(&mut upload), append(0, 1));
        upload.on_response(200, br#"{"nextSeq":1}"#);
        // Requests stay smaller from then on.
        assert_eq!(sent(&mut upload), append(1, 1));
        upload.on_response(413, br#"{"code":"RequestTooLarge","message":"over"}"#);
        assert!(matches!(upload.step(), Step::Failed(e) if e.code == "RequestTooLarge"));

        let mut upload = Upload::new(config(), 5);
        sent(&mut upload);
        upload.on_response(201, br#"{"id":"abc"}"#);
        assert_eq!(sent(&mut upload), append(0, 2));
        upload.on_response(413, br#"{"code":"FrameTooLarge","message":"over"}"#);
        assert!(matches!(upload.step(), Step::Failed(e) if e.code == "FrameTooLarge"));
    }

    #[test]
    fn a_clean_upload_creates_appends_and_finishes() {
        let mut upload = Upload::new(config(), 5).with_label("sha256:abc");
        let create = sent(&mut upload);
        assert_eq!(
            create.json_body().unwrap(),
            r#"{"mode":"replace","label":"sha256:abc"}"#
        );
        upload.on_response(201, br#"{"id":"abc","nextSeq":0,"state":"open"}"#);
        let first = sent(&mut upload);
        assert_eq!(first, append(0, 2));
        assert_eq!(first.path(), "/api/imports/abc/frames?seq=0");
        upload.on_response(200, br#"{"nextSeq":2}"#);
        assert_eq!(sent(&mut upload), append(2, 2));
        upload.on_response(200, br#"{"nextSeq":4}"#);
        assert_eq!(sent(&mut upload), append(4, 1));
        upload.on_response(200, br#"{"nextSeq":5}"#);
        assert_eq!(sent(&mut upload), Request::Finish { id: "abc".into() });
        upload.on_response(200, br#"{"state":"finished","tables":[]}"#);
        assert!(matches!(upload.step(), Step::Done(_)));
        assert_eq!(upload.acknowledged(), 5);
    }

    /// Another server at the URL (one that answers anything with JSON, or
    /// a proxy's page) answers without a snappack error: the failure names
    /// the request and asks whether the URL is a snappack server's.
    #[test]
    fn an_answer_that_is_not_a_snappack_servers_says_so() {
        for (status, body) in [
            (200, &br#"{"hello":1}"#[..]),
            (404, b"<html>Not Found</html>"),
        ] {
            let mut upload = Upload::new(config(), 1);
            sent(&mut upload);
            upload.on_response(status, body);
            match upload.step() {
                Step::Failed(e) => {
                    assert_eq!(e.code, format!("Http{status}"));
                    assert_eq!(e.status, Some(status));
                    assert!(e.message.contains("POST /api/imports"), "{}", e.message);
                    assert!(e.message.contains("snappack server"), "{}", e.message);
                }
                other => panic!("{other:?}"),
            }
        }
        // A snappack error keeps the server's own words.
        let mut upload = Upload::new(config(), 1);
        sent(&mut upload);
        upload.on_response(401, br#"{"code":"Unauthorized","message":"wrong token"}"#);
        assert!(matches!(upload.step(), Step::Failed(e) if e.message == "wrong token"));
    }

    /// An import's target goes with its creation; a server from before
    /// targets were recorded refuses the field, and the import is made
    /// again without it.
    #[test]
    fn a_target_a_server_does_not_know_is_left_out() {
        let target = ImportTarget {
            component: "billing".into(),
            table: None,
        };
        let mut upload = Upload::new(config(), 1).with_label("x").with_target(target);
        let create = sent(&mut upload);
        assert_eq!(
            create.json_body().unwrap(),
            r#"{"mode":"replace","label":"x","target":{"component":"billing"}}"#
        );
        upload.on_response(
            400,
            br#"{"code":"BadRequest","message":"bad import request: unknown field `target`, expected `mode` or `label` at line 1 column 50"}"#,
        );
        let again = sent(&mut upload);
        assert_eq!(
            again.json_body().unwrap(),
            r#"{"mode":"replace","label":"x"}"#
        );
        upload.on_response(201, br#"{"id":"abc","nextSeq":0,"state":"open"}"#);
        assert_eq!(sent(&mut upload), append(0, 1));
        // Any other refusal of the creation is the upload's end, as before.
        let mut upload = Upload::new(config(), 1).with_target(ImportTarget::default());
        sent(&mut upload);
        upload.on_response(
            400,
            br#"{"code":"BadRequest","message":"bad import target: no"}"#,
        );
        assert!(matches!(upload.step(), Step::Failed(_)));
    }

    #[test]
    fn frames_go_out_as_they_are_packed_and_finish_waits_for_the_end() {
        let mut upload = Upload::new(config(), 0).packing();
        sent(&mut upload);
        upload.on_response(201, br#"{"id":"abc"}"#);
        assert_eq!(upload.step(), Step::Wait);
        upload.add_frames(1);
        assert_eq!(sent(&mut upload), append(0, 1));
        upload.add_frames(4);
        upload.on_response(200, br#"{"nextSeq":1}"#);
        assert_eq!(sent(&mut upload), append(1, 2));
        upload.on_response(200, br#"{"nextSeq":3}"#);
        assert_eq!(sent(&mut upload), append(3, 1));
        upload.on_response(200, br#"{"nextSeq":4}"#);
        assert_eq!(upload.step(), Step::Wait);
        assert_eq!(upload.step(), Step::Wait);
        upload.packing_done();
        assert_eq!(sent(&mut upload), Request::Finish { id: "abc".into() });

        // Resumed ahead of the packing: wait until the server's frame is packed.
        let mut upload = Upload::resume(config(), 0, "abc").packing();
        sent(&mut upload);
        upload.on_response(200, br#"{"state":"open","nextSeq":3}"#);
        upload.add_frames(3);
        assert_eq!(upload.step(), Step::Wait);
        upload.add_frames(7);
        assert_eq!(sent(&mut upload), append(3, 2));
    }

    #[test]
    fn network_errors_back_off_then_resume_from_the_server() {
        let mut upload = Upload::new(config(), 10);
        sent(&mut upload);
        upload.on_response(201, br#"{"id":"abc"}"#);
        sent(&mut upload);
        upload.on_network_error("connection reset");
        assert_eq!(upload.step(), Step::Sleep(100));
        assert_eq!(sent(&mut upload), Request::Status { id: "abc".into() });
        upload.on_network_error("connection refused");
        assert_eq!(upload.step(), Step::Sleep(200));
        assert_eq!(sent(&mut upload), Request::Status { id: "abc".into() });
        upload.on_response(200, br#"{"state":"open","nextSeq":6}"#);
        assert_eq!(sent(&mut upload), append(6, 2));
        // Success resets the count; four failures in a row give up.
        upload.on_response(200, br#"{"nextSeq":8}"#);
        for backoff in [100, 200, 250] {
            sent(&mut upload);
            upload.on_response(503, br#"{"code":"Internal","message":"database down"}"#);
            assert_eq!(upload.step(), Step::Sleep(backoff));
        }
        sent(&mut upload);
        upload.on_network_error("refused");
        match upload.step() {
            Step::Failed(e) => assert_eq!(e.code, "NetworkError"),
            other => panic!("{other:?}"),
        }
    }

    /// A status saying another import changed a table of this one (which
    /// its finish would refuse) ends the upload with that refusal, whether
    /// it is the first answer of a resumed upload or one after a retry, and
    /// whether the server has failed the import for it yet or not.
    #[test]
    fn an_import_whose_table_changed_is_not_sent_to() {
        let changed_while_open = br#"{"state":"open","nextSeq":4,"tableChanged":{"code":"TableChanged","message":"Table `t` changed while this import was running (another import finished on it). Start the import again.","component":"c","table":"t"}}"#;
        let failed_for_it = br#"{"state":"failed","error":"TableChanged: Table `t` changed while this import was running (another import finished on it). Start the import again. (table c/t)","tableChanged":{"code":"TableChanged","message":"Table `t` changed while this import was running (another import finished on it). Start the import again.","component":"c","table":"t"}}"#;
        let uploads = [&changed_while_open[..], &failed_for_it[..]].map(|changed| {
            let resumed = Upload::resume(config(), 10, "abc");
            let mut retried = Upload::new(config(), 10);
            sent(&mut retried);
            retried.on_response(201, br#"{"id":"abc"}"#);
            sent(&mut retried);
            retried.on_network_error("connection reset");
            retried.step();
            [(resumed, changed), (retried, changed)]
        });
        for (mut upload, changed) in uploads.into_iter().flatten() {
            assert_eq!(sent(&mut upload), Request::Status { id: "abc".into() });
            upload.on_response(200, changed);
            match upload.step() {
                Step::Failed(e) => {
                    assert_eq!(e.code, "TableChanged");
                    assert_eq!((e.component.as_str(), e.table.as_deref()), ("c", Some("t")));
                    assert!(
                        e.message.starts_with("Table `t` changed")
                            && e.message.contains("import abc can no longer finish"),
                        "{}",
                        e.message
                    );
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn the_server_sequence_wins_and_refusals_stop_with_where() {
        let mut upload = Upload::resume(config(), 10, "abc");
        assert_eq!(sent(&mut upload), Request::Status { id: "abc".into() });
        upload.on_response(200, br#"{"state":"open","nextSeq":4}"#);
        assert_eq!(sent(&mut upload), append(4, 2));
        upload.on_response(409, br#"{"code":"SequenceMismatch","expectedSeq":3}"#);
        assert_eq!(sent(&mut upload), append(3, 2));
        upload.on_response(
            422,
            br#"{"code":"DuplicateId","message":"dup","table":"users","line":301,"field":"_id","seq":3,"expectedSeq":3}"#,
        );
        match upload.step() {
            Step::Failed(e) => {
                assert_eq!(e.code, "DuplicateId");
                assert_eq!(
                    (e.table.as_deref(), e.line, e.field.as_deref(), e.seq),
                    (Some("users"), Some(301), Some("_id"), Some(3))
                );
                assert_eq!(e.status, Some(422));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_finish_refused_as_finished_is_done_and_a_sequence_that_keeps_moving_fails_saying_why() {
        let mut upload = Upload::resume(config(), 2, "abc");
        sent(&mut upload);
        upload.on_response(200, br#"{"state":"open","nextSeq":2}"#);
        assert_eq!(sent(&mut upload), Request::Finish { id: "abc".into() });
        upload.on_response(
            409,
            br#"{"code":"ImportNotOpen","message":"import abc is finished","state":"finished"}"#,
        );
        assert!(matches!(upload.step(), Step::Done(_)));

        // A cancelled import still fails.
        let mut upload = Upload::resume(config(), 2, "abc");
        sent(&mut upload);
        upload.on_response(200, br#"{"state":"open","nextSeq":2}"#);
        sent(&mut upload);
        upload.on_response(
            409,
            br#"{"code":"ImportNotOpen","message":"import abc is cancelled","state":"cancelled"}"#,
        );
        assert!(matches!(upload.step(), Step::Failed(e) if e.code == "ImportNotOpen"));

        // Another sender keeps moving the expected frame on.
        let mut upload = Upload::resume(config(), 100, "abc");
        sent(&mut upload);
        upload.on_response(200, br#"{"state":"open","nextSeq":0}"#);
        for seq in 1..=4 {
            sent(&mut upload);
            let body = format!(
                r#"{{"code":"SequenceMismatch","message":"expected frame {}","expectedSeq":{}}}"#,
                seq * 10,
                seq * 10
            );
            upload.on_response(409, body.as_bytes());
        }
        let Step::Failed(error) = upload.step() else {
            panic!("the upload goes on");
        };
        assert_eq!(error.code, "SequenceMismatch");
        assert!(
            error.message.contains("another upload"),
            "{}",
            error.message
        );
    }

    #[test]
    fn an_id_typed_by_hand_stays_one_path_segment() {
        let status = Request::Status {
            id: "../tables?x=1".into(),
        };
        assert_eq!(status.path(), "/api/imports/%2E%2E%2Ftables%3Fx%3D1");
        let finish = Request::Finish {
            id: "99f446add71525e7".into(),
        };
        assert_eq!(finish.path(), "/api/imports/99f446add71525e7/finish");
    }

    #[test]
    fn a_server_behind_the_first_packed_frame_ends_the_upload() {
        let mut upload = Upload::resume(config(), 0, "abc").packing().from_frame(5);
        upload.add_frames(7);
        assert_eq!(sent(&mut upload), Request::Status { id: "abc".into() });
        upload.on_response(200, br#"{"state":"open","nextSeq":5}"#);
        assert_eq!(sent(&mut upload), append(5, 2));
        // The server lost frames it had acknowledged: they were never packed here.
        upload.on_response(409, br#"{"code":"SequenceMismatch","expectedSeq":3}"#);
        let Step::Failed(error) = upload.step() else {
            panic!("the upload goes on");
        };
        assert_eq!(error.code, "Protocol");
        assert!(error.message.contains("frame 3"), "{}", error.message);
    }

    #[test]
    fn a_finished_import_resumes_as_done_and_a_damaged_frame_is_resent() {
        let mut upload = Upload::resume(config(), 3, "abc");
        sent(&mut upload);
        upload.on_response(200, br#"{"state":"finished"}"#);
        assert!(matches!(upload.step(), Step::Done(_)));

        let mut upload = Upload::resume(config(), 3, "abc");
        sent(&mut upload);
        upload.on_response(200, br#"{"state":"open","nextSeq":0}"#);
        sent(&mut upload);
        upload.on_response(422, br#"{"code":"Checksum","expectedSeq":0}"#);
        assert_eq!(upload.step(), Step::Sleep(100));
        assert_eq!(sent(&mut upload), Request::Status { id: "abc".into() });
    }

    #[test]
    fn frame_ranges_follow_the_headers() {
        let mut stream = vec![0u8; STREAM_HEADER_LEN];
        for stored in [5u32, 0, 7] {
            let mut header = [0u8; FRAME_HEADER_LEN];
            header[..4].copy_from_slice(&stored.to_le_bytes());
            stream.extend_from_slice(&header);
            stream.extend(std::iter::repeat_n(1u8, stored as usize));
        }
        let h = (STREAM_HEADER_LEN + FRAME_HEADER_LEN) as u64;
        let f = FRAME_HEADER_LEN as u64;
        assert_eq!(
            frame_ranges(&stream),
            vec![
                (0, h + 5),
                (h + 5, h + 5 + f),
                (h + 5 + f, h + 5 + 2 * f + 7)
            ]
        );
        assert_eq!(frame_ranges(&stream[..stream.len() - 1]).len(), 2);
        assert!(frame_ranges(&stream[..10]).is_empty());
    }
}
