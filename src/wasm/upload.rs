//! What a browser needs to upload a snapshot to `snappack serve`: packing in
//! a Web Worker (the stream handed out in chunks with the frames they
//! complete, never held whole), and the core's upload state machine
//! ([`crate::client::Upload`]) for a `fetch` driver in JavaScript
//! (`js/upload.js`), so the protocol's rules live in one place.

use std::io::{self, Write};

use js_sys::{Float64Array, Function, Uint8Array};
use wasm_bindgen::prelude::*;

use super::reader::ReadAhead;
use super::{api_error, parse_mode, parse_options, progress_forwarder, source_of, to_json};
use crate::client::{frame_size_for, FrameEnds, InputPosition, Step, Upload, UploadConfig};
use crate::migration::{
    pack as pack_stream, EncodeError, PackError, PackOptions, MAX_FRAME_SIZE, MIN_FRAME_SIZE,
};
use crate::Options;

/// Bytes handed to JavaScript per `on_chunk` call.
const CHUNK: usize = 1 << 20;

/// Passes written bytes to a JavaScript function, [`CHUNK`] at a time, with
/// the end offsets of the frames each chunk completes and how far into the
/// input the walk was as each was written.
struct ChunkWriter {
    on_chunk: Function,
    buf: Vec<u8>,
    frames: FrameEnds,
    input: InputPosition,
    /// Frames completed in `buf`: their ends, and the input position of each.
    ends: Vec<u64>,
    inputs: Vec<f64>,
}

impl ChunkWriter {
    fn flush_chunk(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Uint8Array::from(&self.buf[..]);
        let ends: Vec<f64> = self.ends.drain(..).map(|end| end as f64).collect();
        let inputs = Float64Array::from(&self.inputs[..]);
        self.inputs.clear();
        self.buf.clear();
        self.on_chunk
            .call3(
                &JsValue::NULL,
                &chunk,
                &Float64Array::from(&ends[..]),
                &inputs,
            )
            .map(|_| ())
            .map_err(|e| io::Error::other(super::reader::describe(&e)))
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.frames.feed(bytes, &mut self.ends);
        self.inputs.resize(self.ends.len(), self.input.get() as f64);
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
/// frames, handed to `on_chunk(chunk: Uint8Array, frameEnds: Float64Array,
/// frameInputs: Float64Array)` in order: about 1 MiB each, with the stream
/// offsets where the frames it completes end (the first frame's range starts
/// at 0, with the stream header), and for each of those frames how far into
/// the input the walk had read when it was written (the progress's
/// `bytesRead`: what the frame's arrival stands for).
///
/// With `first_frame` (a frame the server already has the ones before,
/// when continuing an import), the stream starts at that frame: the frames
/// before it are walked and checked but neither compressed nor handed out,
/// and offsets count from its start. `prefix_crc32` is then the import's
/// (its status's `prefixCrc32`): packing fails with `ResumeMismatch` before
/// handing out a frame when the input's frames before `first_frame` are not
/// the ones the import has. `level` is the deflate level of frames,
/// 0 (store) to 9 (default 5): lower levels pack faster and send more bytes.
/// `frame_size` bounds a frame's payload (default 1 MiB): a continued import
/// must be packed with its stream's (its status's `frameSize`).
/// `max_frame_size` is the server's limit (the `maxFrameSize` its table
/// listing advertises): frames are packed no larger
/// ([`client::frame_size_for`](crate::client::frame_size_for), as
/// `snappack upload` does).
///
/// With `shards` over 1, several workers share the compressing: each walks
/// and checks the whole input, and hands out only its share of the frames,
/// every `shards`-th from the first one on, starting with its `shard`-th
/// (the stream header with shard 0). Put together in sequence order, the
/// shards' frames are the whole stream, byte for byte.
///
/// Returns JSON `{"packed": true|false, "report": Report}`: `packed` is false
/// when the input has errors (the chunks given so far are then to be
/// dropped). Inputs and options are those of `validate`; an exception from
/// `on_progress` or `on_chunk` stops the walk and is rethrown.
// The binding's arguments are positional for JavaScript.
#[allow(clippy::too_many_arguments)]
#[wasm_bindgen]
pub fn pack(
    input: JsValue,
    file_name: &str,
    options_json: &str,
    on_progress: Option<Function>,
    on_chunk: Function,
    first_frame: Option<f64>,
    prefix_crc32: Option<u32>,
    level: Option<u32>,
    shard: Option<u32>,
    shards: Option<u32>,
    frame_size: Option<u32>,
    max_frame_size: Option<f64>,
) -> Result<String, JsValue> {
    let options = parse_options(options_json)?;
    let first_frame = first_frame.unwrap_or(0.0);
    if !(first_frame >= 0.0 && first_frame.fract() == 0.0) {
        return Err(api_error(
            "InvalidOptions",
            "firstFrame must be a whole number of frames",
        ));
    }
    let first_frame = first_frame as u64;
    if level.is_some_and(|level| level > 9) {
        return Err(api_error(
            "InvalidOptions",
            "level must be a deflate level, 0 to 9",
        ));
    }
    let (shard, shards) = (shard.unwrap_or(0), shards.unwrap_or(1));
    if shard >= shards {
        return Err(api_error(
            "InvalidOptions",
            "shard must be less than shards, and shards at least 1",
        ));
    }
    let source = ReadAhead::new(source_of(&input)?);
    let read_to = InputPosition::default();
    let out = ChunkWriter {
        on_chunk,
        buf: Vec::with_capacity(CHUNK),
        frames: FrameEnds::starting_with_header(first_frame == 0 && shard == 0),
        input: read_to.clone(),
        ends: Vec::new(),
        inputs: Vec::new(),
    };
    let mut options = pack_options(options);
    options.encoder.resume_from = first_frame;
    options.encoder.resume_crc32 = prefix_crc32;
    options.encoder.shard = shard.into();
    options.encoder.shards = shards.into();
    if let Some(level) = level {
        options.encoder.level = level;
    }
    if let Some(size) = frame_size {
        // An import continued in its own frame size may have one below
        // the smallest a new stream is given.
        if !(MIN_FRAME_SIZE..=MAX_FRAME_SIZE).contains(&(size as usize)) {
            return Err(api_error(
                "InvalidOptions",
                &format!("frameSize must be {MIN_FRAME_SIZE} to {MAX_FRAME_SIZE} bytes"),
            ));
        }
    }
    let server_max = match max_frame_size {
        None => None,
        Some(max) if max >= 0.0 && max.fract() == 0.0 && max <= u64::MAX as f64 => {
            Some(max as u64)
        }
        Some(max) => {
            return Err(api_error(
                "InvalidOptions",
                &format!("target.maxFrameSize must be a whole number of bytes (the server's frame limit, as fetchTables gives it), not {max}"),
            ))
        }
    };
    options.encoder.max_frame_size =
        frame_size_for(frame_size.map(|size| size as usize), server_max)
            .map_err(|e| api_error("InvalidOptions", &format!("target.maxFrameSize: {e}")))?
            .size;
    let mut thrown = None;
    let result = {
        let mut forward = progress_forwarder(on_progress.as_ref(), &mut thrown);
        pack_stream(source, file_name, out, &options, &mut |progress| {
            read_to.set(progress.bytes_read);
            forward(progress)
        })
    };
    if let Some(error) = thrown {
        return Err(error);
    }
    let (packed, report) = match result {
        Ok((mut out, packed)) => {
            out.flush().map_err(|e| {
                api_error("Internal", &format!("handing out the stream failed: {e}"))
            })?;
            (true, packed.report)
        }
        Err(PackError::Invalid(report)) => (false, *report),
        Err(error) => return Err(pack_failure(&error, frame_size)),
    };
    to_json(&serde_json::json!({ "packed": packed, "report": report }))
}

/// Why packing stopped, as the package's errors: a frame size too small
/// for one of the input's items is a misuse of `frameSize`; anything else
/// (the stream could not be handed out, the walk stopped without an
/// exception) is the package's own failure.
fn pack_failure(error: &PackError, frame_size: Option<u32>) -> JsValue {
    match error {
        PackError::Encode {
            error: EncodeError::ItemTooLarge { .. },
            ..
        } => api_error(
            "InvalidOptions",
            &format!(
                "{error}: frameSize {} is too small for this input (from 4096 bytes, every table's declaration fits a frame)",
                frame_size.map_or_else(|| "(default)".to_owned(), |size| size.to_string())
            ),
        ),
        PackError::Encode {
            error: error @ EncodeError::ResumeMismatch { .. },
            ..
        } => api_error(error.code(), &error.to_string()),
        _ => api_error(
            "Internal",
            &format!("packing failed ({}): {error}", error.code()),
        ),
    }
}

/// The upload protocol's state machine (`docs/PROTOCOL.md`, "The client"),
/// for a JavaScript driver that makes the requests.
#[wasm_bindgen]
pub struct UploadMachine(Upload);

#[wasm_bindgen]
impl UploadMachine {
    /// An upload of a stream of `frames` frames in `mode` (`requireEmpty`,
    /// `append`, `replace`, `replaceAll`), sending `frames_per_request` frames
    /// per request; with `resume_id`, it continues that import, else it
    /// creates one labelled `label` (if given). Without `frames`, the stream
    /// is still being packed: announce its frames with `addFrames` and its
    /// end with `packingDone`. `first_frame` is the first frame the driver
    /// has (when it packed from the server's `nextSeq`).
    #[wasm_bindgen(constructor)]
    pub fn new(
        mode: &str,
        frames: Option<f64>,
        frames_per_request: f64,
        resume_id: Option<String>,
        label: Option<String>,
        first_frame: Option<f64>,
    ) -> Result<UploadMachine, JsValue> {
        let config = UploadConfig {
            mode: parse_mode(mode)?,
            frames_per_request: frames_per_request.max(1.0) as u64,
            ..UploadConfig::default()
        };
        let known = frames.map_or(0, |frames| frames.max(0.0) as u64);
        let upload = match resume_id {
            Some(id) => Upload::resume(config, known, &id),
            None => match label {
                Some(label) => Upload::new(config, known).with_label(label),
                None => Upload::new(config, known),
            },
        };
        let upload = upload.from_frame(first_frame.map_or(0, |first| first.max(0.0) as u64));
        Ok(UploadMachine(match frames {
            Some(_) => upload,
            None => upload.packing(),
        }))
    }

    /// `frames` frames (in all) are packed now.
    #[wasm_bindgen(js_name = addFrames)]
    pub fn add_frames(&mut self, frames: f64) {
        self.0.add_frames(frames.max(0.0) as u64);
    }

    /// Every frame is packed.
    #[wasm_bindgen(js_name = packingDone)]
    pub fn packing_done(&mut self) {
        self.0.packing_done();
    }

    /// What to do next, as JSON: `{"send": {"method", "path", "body"?,
    /// "seq"?, "count"?}}` (an Append's body is frames `seq..seq+count`),
    /// `{"sleep": ms}`, `{"wait": true}` (for more packed frames),
    /// `{"done": answer}` or `{"failed": {"code", "message", "status",
    /// "component", "table", "line", "seq"}}`.
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
            Step::Wait => serde_json::json!({ "wait": true }),
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

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::io::Cursor;
    use std::rc::Rc;

    use wasm_bindgen::JsCast;
    use wasm_bindgen_test::wasm_bindgen_test;

    use super::*;
    use crate::client::frame_ranges as native_ranges;

    /// A snapshot big enough for several frames (and several chunks).
    fn snapshot() -> Vec<u8> {
        let spec: crate::gen::GenSpec = serde_json::from_str(
            r#"{"tables": 2, "totalDocuments": 12000, "components": ["c"], "storageFiles": 2,
                "compressionLevel": 1}"#,
        )
        .unwrap();
        let mut out = Cursor::new(Vec::new());
        crate::gen::write_snapshot(&mut out, &spec).unwrap();
        out.into_inner()
    }

    /// What the binding handed out: the chunks joined, each chunk's length
    /// and the frame ends it came with, and the frames' input positions.
    #[derive(Default)]
    struct Handed {
        stream: Vec<u8>,
        chunks: Vec<(usize, Vec<f64>)>,
        inputs: Vec<f64>,
    }

    /// Runs the binding and returns its answer and what it handed out.
    fn packed(
        input: &[u8],
        name: &str,
        first_frame: Option<f64>,
        level: Option<u32>,
    ) -> (serde_json::Value, Handed) {
        sharded(input, name, first_frame, level, None)
    }

    /// [`packed`] for shard `shard.0` of `shard.1`.
    fn sharded(
        input: &[u8],
        name: &str,
        first_frame: Option<f64>,
        level: Option<u32>,
        shard: Option<(u32, u32)>,
    ) -> (serde_json::Value, Handed) {
        let handed = Rc::new(RefCell::new(Handed::default()));
        let on_chunk = {
            let handed = handed.clone();
            Closure::<dyn Fn(Uint8Array, Float64Array, Float64Array)>::new(
                move |chunk: Uint8Array, ends: Float64Array, inputs: Float64Array| {
                    let mut handed = handed.borrow_mut();
                    handed.stream.extend(chunk.to_vec());
                    handed.chunks.push((chunk.length() as usize, ends.to_vec()));
                    assert_eq!(inputs.length(), ends.length(), "one position per frame");
                    handed.inputs.extend(inputs.to_vec());
                },
            )
        };
        let answer = pack(
            Uint8Array::from(input).into(),
            name,
            "{}",
            None,
            on_chunk.as_ref().unchecked_ref::<Function>().clone(),
            first_frame,
            None,
            level,
            shard.map(|s| s.0),
            shard.map(|s| s.1),
            None,
            None,
        )
        .unwrap();
        let handed = handed.take();
        (serde_json::from_str(&answer).unwrap(), handed)
    }

    #[wasm_bindgen_test]
    fn pack_hands_out_the_cores_stream_and_its_frames() {
        let zip = snapshot();
        let (answer, handed) = packed(&zip, "s.zip", None, None);
        let stream = handed.stream;
        assert_eq!(answer["packed"], true, "{answer}");
        assert_eq!(answer["report"]["valid"], true);
        let (want, _) = pack_stream(
            Cursor::new(&zip),
            "s.zip",
            Vec::new(),
            &pack_options(Options::default()),
            &mut |_| true,
        )
        .unwrap();
        assert_eq!(stream, want, "the chunks join into the core's stream");
        assert!(
            handed.chunks.len() > 1,
            "{} bytes in one chunk",
            stream.len()
        );

        // Each chunk comes with the ends of the frames it completes.
        let want: Vec<f64> = native_ranges(&stream)
            .into_iter()
            .map(|(_, end)| end as f64)
            .collect();
        assert!(want.len() > 4, "several frames");
        let mut offset = 0.0;
        let mut ends = Vec::new();
        for (len, chunk_ends) in handed.chunks {
            offset += len as f64;
            assert!(chunk_ends.iter().all(|&end| end <= offset));
            ends.extend(chunk_ends);
        }
        assert_eq!(ends, want);
        // Each frame says how far into the input the walk was: only growing,
        // the whole input by the last frame, which the first is well short of.
        let inputs = &handed.inputs;
        assert!(inputs.windows(2).all(|w| w[0] <= w[1]), "{inputs:?}");
        assert_eq!(inputs.last().copied(), Some(zip.len() as f64));
        assert!(inputs[0] < zip.len() as f64 / 2.0, "{inputs:?}");

        // From frame 3: the same frames from there, their ends counted from frame 3's start.
        let (answer, resumed) = packed(&zip, "s.zip", Some(3.0), None);
        assert_eq!(answer["packed"], true, "{answer}");
        let skipped = want[2];
        assert_eq!(resumed.stream, stream[skipped as usize..]);
        let ends: Vec<f64> = resumed
            .chunks
            .into_iter()
            .flat_map(|(_, ends)| ends)
            .collect();
        let tail: Vec<f64> = want[3..].iter().map(|end| end - skipped).collect();
        assert_eq!(ends, tail);

        // Level 0 stores every frame: the same frames, each as long as its payload.
        let (answer, stored) = packed(&zip, "s.zip", None, Some(0));
        assert_eq!(answer["packed"], true, "{answer}");
        let frames = native_ranges(&stored.stream);
        assert_eq!(frames.len(), want.len());
        assert!(stored.stream.len() > stream.len());
        for (start, _) in frames {
            // The first range holds the stream header.
            let header = if start == 0 {
                crate::migration::STREAM_HEADER_LEN
            } else {
                0
            } + start as usize;
            let method = stored.stream[header + 16];
            assert_eq!(method, 0, "frame at {start} is stored");
        }
    }

    #[wasm_bindgen_test]
    fn shards_put_together_in_sequence_order_are_the_whole_stream() {
        let zip = snapshot();
        for first in [0u64, 1] {
            let (_, whole) = packed(&zip, "s.zip", Some(first as f64), None);
            let frames = |handed: &Handed| -> Vec<Vec<u8>> {
                let ends: Vec<usize> = handed
                    .chunks
                    .iter()
                    .flat_map(|(_, ends)| ends.iter().map(|&end| end as usize))
                    .collect();
                assert_eq!(ends.last().copied(), Some(handed.stream.len()));
                let starts = std::iter::once(0).chain(ends.iter().copied());
                starts
                    .zip(ends.iter().copied())
                    .map(|(start, end)| handed.stream[start..end].to_vec())
                    .collect()
            };
            let want = frames(&whole);
            assert!(want.len() > 3, "several frames");
            let shards: Vec<Vec<Vec<u8>>> = (0..3)
                .map(|k| {
                    let (answer, handed) =
                        sharded(&zip, "s.zip", Some(first as f64), None, Some((k, 3)));
                    assert_eq!(answer["packed"], true, "{answer}");
                    frames(&handed)
                })
                .collect();
            let interleaved: Vec<Vec<u8>> = (0..want.len())
                .map(|i| shards[i % 3][i / 3].clone())
                .collect();
            assert_eq!(shards.iter().map(Vec::len).sum::<usize>(), want.len());
            assert!(interleaved == want, "from frame {first}");
            // A shard's frames stand for the input the whole stream's do.
            for k in 0..3 {
                let (_, handed) = sharded(&zip, "s.zip", Some(first as f64), None, Some((k, 3)));
                let own: Vec<f64> = whole
                    .inputs
                    .iter()
                    .copied()
                    .skip(k as usize)
                    .step_by(3)
                    .collect();
                assert_eq!(handed.inputs, own, "shard {k} from frame {first}");
            }
        }
    }

    #[wasm_bindgen_test]
    fn an_invalid_input_is_not_packed_and_its_report_says_why() {
        let (answer, _) = packed(b"{\"a\": 1}\nnot json\n", "t.jsonl", None, None);
        // No table name for a single-table file: invalid options, or an error in the report.
        assert_eq!(answer["packed"], false, "{answer}");
        assert_eq!(answer["report"]["valid"], false);
    }

    #[wasm_bindgen_test]
    fn the_upload_machine_speaks_the_protocol() {
        let mut machine =
            UploadMachine::new("replace", Some(3.0), 2.0, None, Some("fp-1".into()), None).unwrap();
        let step: serde_json::Value = serde_json::from_str(&machine.step()).unwrap();
        assert_eq!(step["send"]["method"], "POST");
        assert_eq!(step["send"]["path"], "/api/imports");
        let body: serde_json::Value =
            serde_json::from_str(step["send"]["body"].as_str().unwrap()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"mode": "replace", "label": "fp-1"})
        );
        machine.on_response(201, br#"{"id":"abc","nextSeq":0,"state":"open"}"#);
        assert_eq!(machine.id().as_deref(), Some("abc"));
        let step: serde_json::Value = serde_json::from_str(&machine.step()).unwrap();
        assert_eq!(
            step["send"],
            serde_json::json!({"method": "POST", "path": "/api/imports/abc/frames?seq=0", "seq": 0, "count": 2})
        );
        machine.on_network_error("reset");
        let step: serde_json::Value = serde_json::from_str(&machine.step()).unwrap();
        assert!(step["sleep"].as_u64().unwrap() > 0);

        let mut resumed =
            UploadMachine::new("append", Some(3.0), 4.0, Some("abc".into()), None, None).unwrap();
        let step: serde_json::Value = serde_json::from_str(&resumed.step()).unwrap();
        assert_eq!(step["send"]["path"], "/api/imports/abc");
        resumed.on_response(
            422,
            br#"{"code":"DuplicateId","message":"dup","table":"t","line":7,"seq":1}"#,
        );
        let step: serde_json::Value = serde_json::from_str(&resumed.step()).unwrap();
        assert_eq!(step["failed"]["code"], "DuplicateId");
        assert_eq!(step["failed"]["line"], 7);

        assert!(UploadMachine::new("sideways", Some(1.0), 1.0, None, None, None).is_err());
    }

    #[wasm_bindgen_test]
    fn while_packing_the_machine_waits_for_frames_and_the_end() {
        let step = |machine: &mut UploadMachine| -> serde_json::Value {
            serde_json::from_str(&machine.step()).unwrap()
        };
        let mut machine = UploadMachine::new("append", None, 2.0, None, None, None).unwrap();
        assert_eq!(step(&mut machine)["send"]["path"], "/api/imports");
        machine.on_response(201, br#"{"id":"abc","nextSeq":0,"state":"open"}"#);
        assert_eq!(step(&mut machine)["wait"], true);
        machine.add_frames(1.0);
        assert_eq!(step(&mut machine)["send"]["count"], 1);
        machine.on_response(200, br#"{"nextSeq":1}"#);
        assert_eq!(step(&mut machine)["wait"], true, "finish waits for the end");
        machine.packing_done();
        assert_eq!(
            step(&mut machine)["send"]["path"],
            "/api/imports/abc/finish"
        );
    }
}
