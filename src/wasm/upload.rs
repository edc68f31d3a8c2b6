//! What a browser needs to upload a snapshot to `snappack serve`: packing in
//! a Web Worker (the stream handed out in chunks, never held whole), the
//! frames of a packed stream, and the core's upload state machine
//! ([`crate::client::Upload`]) for a `fetch` driver in JavaScript
//! (`js/upload.js`), so the protocol's rules live in one place.

use std::io::{self, Write};

use js_sys::{Float64Array, Function, Uint8Array};
use wasm_bindgen::prelude::*;

use super::reader::ReadAhead;
use super::{api_error, progress_forwarder, source_of};
use crate::client::{scan_frames, Step, Upload, UploadConfig};
use crate::migration::{pack as pack_stream, PackError, PackOptions};
use crate::validate::ImportMode;
use crate::Options;

/// Bytes handed to JavaScript per `on_chunk` call.
const CHUNK: usize = 1 << 20;

/// Passes written bytes to a JavaScript function, [`CHUNK`] at a time.
struct ChunkWriter {
    on_chunk: Function,
    buf: Vec<u8>,
}

impl ChunkWriter {
    fn flush_chunk(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Uint8Array::from(&self.buf[..]);
        self.buf.clear();
        self.on_chunk
            .call1(&JsValue::NULL, &chunk)
            .map(|_| ())
            .map_err(|e| io::Error::other(super::reader::describe(&e)))
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(bytes);
        if self.buf.len() >= CHUNK {
            self.flush_chunk()?;
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.flush_chunk()
    }
}

/// The pack options every browser upload uses: the same as `snappack
/// upload`'s defaults, and a fixed creation time, so packing one file twice
/// gives the same bytes and an interrupted import can be resumed.
fn pack_options(validate: Options) -> PackOptions {
    PackOptions {
        validate,
        producer: format!("snappack {}", env!("CARGO_PKG_VERSION")),
        created_at_ms: 0,
        ..PackOptions::default()
    }
}

/// Validates `input` and, in the same walk, packs it into a stream of
/// frames, handed to `on_chunk(Uint8Array)` in order (about 1 MiB each).
///
/// Returns JSON `{"packed": true|false, "report": Report}`: `packed` is false
/// when the input has errors (the chunks given so far are then to be
/// dropped). Inputs and options are those of `validate`; an exception from
/// `on_progress` or `on_chunk` stops the walk and is rethrown.
#[wasm_bindgen]
pub fn pack(
    input: JsValue,
    file_name: &str,
    options_json: &str,
    on_progress: Option<Function>,
    on_chunk: Function,
) -> Result<String, JsValue> {
    let options: Options = serde_json::from_str(options_json)
        .map_err(|e| api_error("InvalidOptions", &format!("invalid options: {e}")))?;
    let source = ReadAhead::new(source_of(&input)?);
    let out = ChunkWriter {
        on_chunk,
        buf: Vec::with_capacity(CHUNK),
    };
    let mut thrown = None;
    let result = pack_stream(
        source,
        file_name,
        out,
        &pack_options(options),
        &mut progress_forwarder(on_progress.as_ref(), &mut thrown),
    );
    if let Some(error) = thrown {
        return Err(error);
    }
    let (packed, report) = match result {
        Ok((mut out, packed)) => {
            out.flush()
                .map_err(|e| api_error("WriteFailed", &e.to_string()))?;
            (true, packed.report)
        }
        Err(PackError::Invalid(report)) => (false, *report),
        Err(PackError::Cancelled(_)) => return Err(api_error("Cancelled", "packing was stopped")),
        Err(error @ PackError::Encode { .. }) => {
            return Err(api_error(error.code(), &error.to_string()))
        }
    };
    serde_json::to_string(&serde_json::json!({ "packed": packed, "report": report }))
        .map_err(|e| api_error("Internal", &e.to_string()))
}

/// The frames of a packed stream (a `Blob` in a Web Worker, or a
/// `Uint8Array`), as `[start0, end0, start1, end1, ...]` byte offsets; the
/// first frame's range includes the stream header.
#[wasm_bindgen(js_name = frameRanges)]
pub fn frame_ranges(stream: JsValue) -> Result<Float64Array, JsValue> {
    let ranges = scan_frames(ReadAhead::new(source_of(&stream)?))
        .map_err(|e| api_error("ReadFailed", &e.to_string()))?;
    let flat: Vec<f64> = ranges
        .iter()
        .flat_map(|&(start, end)| [start as f64, end as f64])
        .collect();
    Ok(Float64Array::from(&flat[..]))
}

/// The upload protocol's state machine (`docs/PROTOCOL.md`, "The client"),
/// for a JavaScript driver that makes the requests.
#[wasm_bindgen]
pub struct UploadMachine(Upload);

#[wasm_bindgen]
impl UploadMachine {
    /// An upload of a stream of `frames` frames in `mode` (`requireEmpty`,
    /// `append`, `replace`, `replaceAll`), sending `frames_per_request` frames
    /// per request; with `resume_id`, it continues that import.
    #[wasm_bindgen(constructor)]
    pub fn new(
        mode: &str,
        frames: f64,
        frames_per_request: f64,
        resume_id: Option<String>,
    ) -> Result<UploadMachine, JsValue> {
        let mode: ImportMode = serde_json::from_value(serde_json::Value::from(mode))
            .map_err(|_| api_error("InvalidOptions", &format!("unknown import mode {mode:?}")))?;
        let config = UploadConfig {
            mode,
            frames_per_request: frames_per_request.max(1.0) as u64,
            ..UploadConfig::default()
        };
        let frames = frames.max(0.0) as u64;
        Ok(UploadMachine(match resume_id {
            Some(id) => Upload::resume(config, frames, &id),
            None => Upload::new(config, frames),
        }))
    }

    /// What to do next, as JSON: `{"send": {"method", "path", "body"?,
    /// "seq"?, "count"?}}` (an Append's body is frames `seq..seq+count`),
    /// `{"sleep": ms}`, `{"done": answer}` or `{"failed": {"code",
    /// "message", "status", "component", "table", "line", "seq"}}`.
    pub fn step(&mut self) -> String {
        let step = match self.0.step() {
            Step::Send(request) => {
                let mut send = serde_json::json!({
                    "method": request.method(),
                    "path": request.path(),
                });
                if let Some(body) = request.json_body() {
                    send["body"] = body.into();
                }
                if let crate::client::Request::Append { seq, count, .. } = request {
                    send["seq"] = seq.into();
                    send["count"] = count.into();
                }
                serde_json::json!({ "send": send })
            }
            Step::Sleep(ms) => serde_json::json!({ "sleep": ms }),
            Step::Done(answer) => serde_json::json!({ "done": answer }),
            Step::Failed(error) => serde_json::json!({ "failed": error }),
        };
        step.to_string()
    }

    /// The server answered the last request with `status` and `body`.
    #[wasm_bindgen(js_name = onResponse)]
    pub fn on_response(&mut self, status: u16, body: &[u8]) {
        self.0.on_response(status, body);
    }

    /// The last request failed before an answer.
    #[wasm_bindgen(js_name = onNetworkError)]
    pub fn on_network_error(&mut self, message: &str) {
        self.0.on_network_error(message);
    }

    /// The import's id, once the server created it.
    #[wasm_bindgen(getter)]
    pub fn id(&self) -> Option<String> {
        self.0.id().map(str::to_owned)
    }

    /// Frames the server has acknowledged.
    #[wasm_bindgen(getter)]
    pub fn acknowledged(&self) -> f64 {
        self.0.acknowledged() as f64
    }
}
