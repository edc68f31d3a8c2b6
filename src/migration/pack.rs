//! `pack` and `unpack`: a snapshot to a stream in the one walk that
//! validates it, and a stream back to its tables' documents and files.

use std::io::{self, Read, Seek, Write};

use super::decoder::{Decoder, DecoderConfig, Frame};
use super::encoder::{EncodeSummary, Encoder, EncoderConfig};
use super::error::{DecodeError, EncodeError};
use super::item::{FileStart, Header, Item, TableDecl, Totals};
use crate::report::{Code, Report};
use crate::validate::{self, Options, Plan, Progress, Sink};

/// The smallest frame size the commands give a new stream: 4 KiB ([`pack`]
/// itself takes any the format allows, for imports started with smaller
/// ones). Document and file data are split across frames, every other item
/// is whole in one, and the largest of those is a table's declaration: 87
/// bytes and its component
/// path (a table name has at most 64 bytes; a stored file's declaration is
/// at most 59 bytes and its path; the header 51 and the producer's name).
/// So any table of a component path up to 4,009 bytes (61 nested components
/// with the longest names) fits; a longer one is refused before anything is
/// written, naming the table and the frame size it needs.
pub const MIN_PACK_FRAME_SIZE: usize = 4096;

/// How to pack.
#[derive(Debug, Clone, Default)]
pub struct PackOptions {
    /// Validation options (format, table, schema, target, mode).
    pub validate: Options,
    /// Pack even when the input has validation errors: every document line
    /// is packed, valid or not, for the server to judge. Not past errors
    /// that left part of the input unread (`Code::leaves_input_unread`,
    /// the plan's `left_out`): the server would never see that part.
    pub force: bool,
    /// Frame size, deflate level, first frame to write. Any frame size the
    /// format allows packs while every item that cannot be split fits a
    /// frame (a larger one is refused, naming it); the commands ask for at
    /// least [`MIN_PACK_FRAME_SIZE`], but continue an import in its own.
    pub encoder: EncoderConfig,
    /// Written into the header, for example `snappack 0.1.0`.
    pub producer: String,
    /// Milliseconds since the Unix epoch, written into the header.
    pub created_at_ms: i64,
}

/// What a successful pack produced.
#[derive(Debug, Clone)]
pub struct Packed {
    /// The validation report of the input.
    pub report: Report,
    /// What was written.
    pub summary: EncodeSummary,
}

/// Why a pack produced no stream.
#[derive(Debug, thiserror::Error)]
pub enum PackError {
    /// The input has validation errors and `force` is off.
    #[error("the input has {} validation errors; not packed", .0.error_count)]
    Invalid(Box<Report>),
    /// The progress callback stopped the walk.
    #[error("packing was stopped before the end")]
    Cancelled(Box<Report>),
    /// The walk's items could not be encoded, or writing failed.
    #[error("{error}")]
    Encode {
        /// The encoder's error.
        #[source]
        error: EncodeError,
        /// The report of the input, as far as it was read.
        report: Box<Report>,
    },
}

impl PackError {
    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            PackError::Invalid(_) => "InvalidInput",
            PackError::Cancelled(_) => "Cancelled",
            PackError::Encode { error, .. } => error.code(),
        }
    }
}

/// Validates `input` and, in the same walk, encodes it into `out`.
///
/// The header, table declarations and files come from the walk's plan; every
/// table is declared before the first document. Expected document counts are
/// 0: the walk knows them only at the end. Without `force`, encoding stops at
/// the first invalid document (the walk goes on, for the full report) and
/// the result is [`PackError::Invalid`]; the caller discards what was written.
pub fn pack<R: Read + Seek, W: Write>(
    input: R,
    file_name: &str,
    out: W,
    options: &PackOptions,
    on_progress: &mut dyn FnMut(Progress) -> bool,
) -> Result<(W, Packed), PackError> {
    let mut sink = PackSink {
        out: Some(out),
        encoder: None,
        options,
        plan_files: Vec::new(),
        open_file: None,
        refused: false,
        error: None,
    };
    let (report, plan) =
        validate::walk(input, file_name, &options.validate, &mut sink, on_progress);
    if let Some(error) = sink.error {
        return Err(PackError::Encode {
            error,
            report: Box::new(report),
        });
    }
    if report.warnings.iter().any(|w| w.code == Code::Cancelled) {
        return Err(PackError::Cancelled(Box::new(report)));
    }
    // `left_out` has the entries of every finding that left input unread,
    // listed or past `max_errors`.
    let forced = options.force && plan.left_out.is_empty();
    if sink.refused || !(report.valid || forced) {
        return Err(PackError::Invalid(Box::new(report)));
    }
    let encoder = match (sink.encoder, sink.out) {
        (Some(encoder), _) => Ok(encoder),
        // A walk that planned nothing still makes an (empty) stream.
        (None, Some(out)) => start(out, options, &Plan::default()),
        (None, None) => Err(EncodeError::Order("the walk gave no output".into())),
    };
    let encoder = match encoder {
        Ok(encoder) => encoder,
        Err(error) => {
            return Err(PackError::Encode {
                error,
                report: Box::new(report),
            })
        }
    };
    match encoder.finish() {
        Ok((out, summary)) => Ok((out, Packed { report, summary })),
        Err(error) => Err(PackError::Encode {
            error,
            report: Box::new(report),
        }),
    }
}

/// Starts an encoder and declares the plan's tables.
fn start<W: Write>(out: W, options: &PackOptions, plan: &Plan) -> Result<Encoder<W>, EncodeError> {
    let expected = Totals {
        tables: plan.tables.len() as u32,
        documents: 0,
        document_bytes: 0,
        files: plan.files.len() as u64,
        file_bytes: plan.files.iter().map(|f| f.size).sum(),
    };
    let header = Header::new(options.producer.clone(), options.created_at_ms, expected);
    let mut encoder = Encoder::new(out, options.encoder, header)?;
    for table in &plan.tables {
        let declared = encoder.table(TableDecl {
            component: table.component.clone(),
            name: table.name.clone(),
            number: table.number,
            number_source: table.number_source,
            rules: table.rules,
            expected_documents: 0,
        });
        if let Err(EncodeError::ItemTooLarge { size, limit }) = declared {
            let component = match table.component.as_str() {
                "" => String::new(),
                path => format!(" of component {path}"),
            };
            return Err(EncodeError::InvalidConfig(format!(
                "the declaration of table {}{component} is {size} bytes, more than a frame of {limit}: pack with frames of {size} bytes or more",
                table.name
            )));
        }
        declared?;
    }
    Ok(encoder)
}

/// The walk's consumer: feeds the encoder.
struct PackSink<'a, W: Write> {
    out: Option<W>,
    encoder: Option<Encoder<W>>,
    options: &'a PackOptions,
    plan_files: Vec<FileStart>,
    open_file: Option<usize>,
    /// An invalid document was seen without `force`: encode no more once
    /// past the frames a resumed receiver has ([`PackSink::encode`]).
    refused: bool,
    error: Option<EncodeError>,
}

impl<W: Write> PackSink<'_, W> {
    /// Runs `f` on the encoder unless packing stopped; keeps its error.
    fn encode(
        &mut self,
        f: impl FnOnce(&mut Encoder<W>, &mut Self) -> Result<(), EncodeError>,
    ) -> io::Result<()> {
        let Some(mut encoder) = self.encoder.take() else {
            return Ok(());
        };
        // A resumed receiver checked every document of the frames it has:
        // one invalid there means this input is not the one it was sent,
        // which the encoder tells (`ResumeMismatch`) once it reaches the
        // receiver's frames and compares their payloads. So it goes on to there.
        if self.refused && !encoder.in_checked_prefix() {
            self.encoder = Some(encoder);
            return Ok(());
        }
        let result = f(&mut encoder, self);
        self.encoder = Some(encoder);
        result.map_err(|error| {
            let io = io::Error::other(error.to_string());
            self.error = Some(error);
            io
        })
    }
}

impl<W: Write> Sink for PackSink<'_, W> {
    fn begin(&mut self, plan: &Plan) -> io::Result<()> {
        let Some(out) = self.out.take() else {
            return Ok(());
        };
        self.plan_files = plan
            .files
            .iter()
            .map(|f| FileStart {
                component: f.component.clone(),
                id: f.id.to_string(),
                content_type: None,
                size: f.size,
            })
            .collect();
        match start(out, self.options, plan) {
            Ok(encoder) => {
                self.encoder = Some(encoder);
                Ok(())
            }
            Err(error) => {
                let io = io::Error::other(error.to_string());
                self.error = Some(error);
                Err(io)
            }
        }
    }

    fn document(&mut self, table: usize, line: &[u8], valid: bool) -> io::Result<()> {
        if !valid && !self.options.force {
            self.refused = true;
        }
        self.encode(|e, _| e.document(table as u32, line))
    }

    fn end_table(&mut self, table: usize) -> io::Result<()> {
        self.encode(|e, _| e.end_table(table as u32))
    }

    fn file_chunk(&mut self, file: usize, chunk: &[u8]) -> io::Result<()> {
        self.encode(|e, sink| {
            sink.open(e, file)?;
            e.file_data(chunk)
        })
    }

    fn end_file(&mut self, file: usize, sha256: &[u8; 32]) -> io::Result<()> {
        self.encode(|e, sink| {
            sink.open(e, file)?;
            sink.open_file = None;
            if e.end_file()? != *sha256 {
                return Err(EncodeError::Mismatch(format!(
                    "stored file {file}: the walk's SHA-256 differs from the encoder's"
                )));
            }
            Ok(())
        })
    }
}

impl<W: Write> PackSink<'_, W> {
    /// Starts file `file` unless it is the open one.
    fn open(&mut self, encoder: &mut Encoder<W>, file: usize) -> Result<(), EncodeError> {
        if self.open_file == Some(file) {
            return Ok(());
        }
        if let Some(open) = self.open_file {
            return Err(EncodeError::Order(format!(
                "stored file {open} ends before all its bytes were read"
            )));
        }
        let start =
            self.plan_files.get(file).cloned().ok_or_else(|| {
                EncodeError::Order(format!("stored file {file} is not in the plan"))
            })?;
        encoder.file(start)?;
        self.open_file = Some(file);
        Ok(())
    }
}

/// What [`unpack`] read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unpacked {
    /// The stream's header.
    pub header: Header,
    /// The tables, by index.
    pub tables: Vec<TableDecl>,
    /// The totals in `Done`, as checked.
    pub totals: Totals,
    /// Frames read.
    pub frames: u64,
    /// Bytes read.
    pub bytes: u64,
}

/// Why [`unpack`] stopped.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    /// Reading the input failed.
    #[error("cannot read the stream: {0}")]
    Read(io::Error),
    /// The stream is not valid.
    #[error("{0}")]
    Decode(#[from] DecodeError),
    /// The item consumer failed.
    #[error("{0}")]
    Consumer(io::Error),
}

impl UnpackError {
    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            UnpackError::Read(_) => "ReadFailed",
            UnpackError::Decode(e) => e.code(),
            UnpackError::Consumer(_) => "WriteFailed",
        }
    }
}

/// Reads a whole stream, checking every frame, count and checksum, and hands
/// every item to `on_item` in order. Returns only after `Done` and a clean
/// end; items of a bad frame are never handed out.
pub fn unpack<R: Read>(
    input: R,
    config: DecoderConfig,
    on_item: &mut dyn FnMut(&Item) -> io::Result<()>,
) -> Result<Unpacked, UnpackError> {
    unpack_frames(input, config, &mut |frame| {
        frame.items.iter().try_for_each(&mut *on_item)
    })
}

/// [`unpack`], handing over each frame whole (its items in order, with its
/// sequence number), as a server receives them.
pub fn unpack_frames<R: Read>(
    mut input: R,
    config: DecoderConfig,
    on_frame: &mut dyn FnMut(&Frame) -> io::Result<()>,
) -> Result<Unpacked, UnpackError> {
    let mut decoder = Decoder::new(config);
    let mut buf = vec![0u8; 256 << 10];
    let mut header = None;
    let mut tables = Vec::new();
    let mut frames = 0;
    let mut bytes = 0;
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(UnpackError::Read(e)),
        };
        bytes += n as u64;
        for frame in decoder.decode(&buf[..n]) {
            let frame = frame?;
            frames += 1;
            for item in &frame.items {
                match item {
                    Item::Header(h) => header = Some(h.clone()),
                    Item::Table(t) => tables.push(t.clone()),
                    _ => {}
                }
            }
            on_frame(&frame).map_err(UnpackError::Consumer)?;
        }
    }
    let totals = decoder.finish()?;
    Ok(Unpacked {
        header: header.expect("a finished stream has a header"),
        tables,
        totals,
        frames,
        bytes,
    })
}

/// The archive folder of a table or `_storage` in component `component`:
/// `""` for the root, `_components/a/_components/b/` for `a/b`.
pub fn component_prefix(component: &str) -> String {
    component
        .split('/')
        .filter(|c| !c.is_empty())
        .map(|c| format!("_components/{c}/"))
        .collect()
}
