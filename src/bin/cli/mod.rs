//! Subcommands of the `snappack` binary. Exit status: 0 done (input valid),
//! 1 the input has errors, 2 the command could not run, 141 the reader of
//! the output went away, 128 + N ended by signal N.

/// Writes a line to standard error, as `eprintln!` does, but never panics:
/// a standard error that is gone (a closed pipe, a logger that ended) loses
/// the line, and the command goes on (an upload, a server) as it would.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}

/// [`say!`] without the line's end (a progress bar redrawn in place).
macro_rules! say_raw {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let mut stderr = std::io::stderr().lock();
        let _ = write!(stderr, $($arg)*);
        let _ = stderr.flush();
    }};
}

/// Writes a line to standard output, ignoring a reader that has gone: for
/// what a command says once its work is done (an upload's summary), whose
/// exit status tells the outcome whoever reads the line.
macro_rules! tell {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

mod human;
mod output;
mod pack;
mod serve;
mod upload;

use std::fs::File;
use std::io::{BufReader, Cursor, IsTerminal, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{anyhow, bail, Context as _, Result};
use clap::{Args, Parser, Subcommand};
use snappack::migration::{DEFAULT_MAX_FRAME_SIZE, MIN_PACK_FRAME_SIZE};
use snappack::report::{Code, Report};
use snappack::validate::{
    merge_shards, validate_shard, ImportMode, Options, Schema, Shard, ShardReport, TargetTables,
};
use snappack::{Format, Progress};

use output::OutputFile;

/// Check Convex snapshot archives before they are uploaded, repackage them
/// into checksummed frames, and import them.
#[derive(Parser)]
#[command(name = "snappack", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check a snapshot (ZIP) or a single-table file (JSONL, JSON, CSV) the way Convex imports it.
    Validate(ValidateArgs),
    /// Write a synthetic Convex snapshot (for tests and benchmarks).
    Gen(GenArgs),
    /// Validate a snapshot and repackage it into a checksummed stream of frames.
    Pack(pack::PackArgs),
    /// Check a packed stream, and rebuild its tables and stored files.
    Unpack(pack::UnpackArgs),
    /// Run the import server (HTTP API, SQLite or PostgreSQL).
    Serve(serve::ServeArgs),
    /// Validate a snapshot against a server's tables, then upload it (resumable).
    Upload(upload::UploadArgs),
}

#[derive(Args)]
struct GenArgs {
    /// Where to write the ZIP (`-`: standard output).
    out: PathBuf,
    /// A JSON generator spec (file); the flags below override it. Its fields,
    /// all optional: seed (1), tables (3), documentsPerTable (100),
    /// totalDocuments, components ([]), storageFiles (0), storageMinBytes
    /// (16), storageMaxBytes (4096), prefix (""), document { fields (8),
    /// maxStringLen (40), nesting (2), maxArrayLen (4), wrappers (true) },
    /// faults ([]), compressionLevel (deflate, 1 to 9: 1).
    #[arg(long, value_name = "FILE")]
    spec: Option<PathBuf>,
    /// User tables per component (default 3).
    #[arg(long)]
    tables: Option<u32>,
    /// Documents per table (default 100).
    #[arg(long)]
    documents: Option<u64>,
    /// Documents in all, spread over the tables (instead of --documents).
    #[arg(long, conflicts_with = "documents")]
    total_documents: Option<u64>,
    /// Child components (repeat, or comma-separated): `a`, `a/b`.
    #[arg(long, value_delimiter = ',')]
    component: Vec<String>,
    /// Stored files per component.
    #[arg(long)]
    storage_files: Option<u32>,
    /// Folder every entry is under, e.g. `snapshot/`.
    #[arg(long)]
    prefix: Option<String>,
    /// Seed (the same seed gives the same bytes).
    #[arg(long)]
    seed: Option<u64>,
    /// Faults to inject (repeat, or comma-separated): duplicateId,
    /// foreignTableId, undecodableId, nonStringId, badJsonLine, nonObjectRow,
    /// wrapperRow, setWrapper, integerCreationTime, dollarFieldName,
    /// underscoreField, oversizedDocument, tooDeep, arrayTooLong,
    /// duplicateTableName, sharedTableNumber, invalidTableName,
    /// invalidComponentName, invalidStorageId, badGeneratedSchema,
    /// sha256Mismatch.
    #[arg(long, value_delimiter = ',')]
    fault: Vec<String>,
    /// Print the summary (tables, injected faults with their locations) as JSON.
    #[arg(long)]
    json: bool,
}

/// Whether colors may be used on a terminal: not when `NO_COLOR` is set to
/// anything but the empty string (no-color.org).
fn colors_wanted() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty())
}

/// A stream that `pack` wrote, given where a snapshot goes: the input's
/// name (or `standard input`).
#[derive(Debug)]
struct PackedStreamGiven(String);

impl std::fmt::Display for PackedStreamGiven {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} is a stream written by `snappack pack`, not a snapshot: `snappack unpack` checks it",
            self.0
        )
    }
}

impl std::error::Error for PackedStreamGiven {}

/// Refuses a stream that `pack` wrote, given where a snapshot goes: it is
/// not one, and `unpack` is what checks it.
fn refuse_packed_stream(path: &Path, input: &mut Input) -> Result<()> {
    let mut head = [0u8; 8];
    let read = input.read_exact(&mut head);
    input.rewind()?;
    if read.is_ok() && head == snappack::migration::MAGIC {
        let input = match path.as_os_str() == "-" {
            true => "standard input".to_owned(),
            false => path.display().to_string(),
        };
        return Err(PackedStreamGiven(input).into());
    }
    Ok(())
}

/// What to validate and how.
#[derive(Args)]
struct InputArgs {
    /// The snapshot ZIP, or a .jsonl, .json or .csv file; `-` reads standard input.
    file: PathBuf,
    /// Input format: zip, jsonl, json or csv (default: from the file's extension, else from its
    /// first bytes).
    #[arg(long, value_parser = parse_format)]
    format: Option<Format>,
    /// Target table, for single-table formats.
    #[arg(long)]
    table: Option<String>,
    /// Component path the import targets (default: the root).
    #[arg(long, default_value = "", hide_default_value = true)]
    component: String,
    /// The target's schema (JSON), for CSV empty-string remapping.
    #[arg(long, value_name = "FILE")]
    schema: Option<PathBuf>,
    /// The target deployment's tables (JSON), to reuse numbers and find conflicts before upload.
    #[arg(long, value_name = "FILE")]
    target_tables: Option<PathBuf>,
    /// Import mode: requireEmpty (the default), append, replace, replaceAll.
    #[arg(long)]
    mode: Option<ImportMode>,
    /// List at most this many errors (all are counted).
    #[arg(long, default_value_t = snappack::validate::DEFAULT_MAX_ERRORS)]
    max_errors: usize,
    /// The cores to use, 1 to 64 (default: all, at most 8). With 2 or more,
    /// a ZIP archive's tables are split among that many walks, each of two
    /// threads (one inflates, the other checks lines); the report is the same.
    // `pack` and `upload` say what it does for them: `PACK_THREADS_HELP`.
    #[arg(long, default_value_t = default_threads(),
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=64))]
    threads: usize,
}

#[derive(Args)]
struct ValidateArgs {
    #[command(flatten)]
    input: InputArgs,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
}

/// `--threads` in `pack` and `upload`, which validate in one walk while
/// they encode.
const PACK_THREADS_HELP: &str = "Threads, 1 to 64 (default: the cores, at most 8). With 2 or \
     more, the input is inflated on a second thread while lines are checked, and frames are \
     compressed on a third; more than 2 change nothing. The frames are the same bytes either way";

fn parse_format(s: &str) -> Result<Format, String> {
    s.parse()
}

/// A `--frame-size` (`pack`, `upload`) whose stream the default decoder
/// (`unpack`'s, and a server's unless configured otherwise) reads back.
fn parse_frame_size(s: &str) -> Result<usize, String> {
    let (min, max) = (MIN_PACK_FRAME_SIZE, DEFAULT_MAX_FRAME_SIZE);
    let size: usize = s.parse().map_err(|e| format!("{e}"))?;
    if (min..=max).contains(&size) {
        Ok(size)
    } else {
        Err(format!(
            "the frame size must be from {min} to {max} bytes (unpack and a server by default read no larger frames)"
        ))
    }
}

/// Runs the command line; the exit status says whether the input is valid.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // The commands whose output a reader may stop reading (`| head`); the
    // server and the client also write to sockets, whose closing is an error.
    let output_only = !matches!(cli.command, Command::Serve(_) | Command::Upload(_));
    let result = match cli.command {
        Command::Validate(args) => validate(args),
        Command::Gen(args) => generate(args),
        Command::Pack(args) => pack::run_pack(args),
        Command::Unpack(args) => pack::run_unpack(args),
        Command::Serve(args) => serve::run(args),
        Command::Upload(args) => upload::run(args),
    };
    match result {
        Ok(code) => code,
        // Quiet, with the status a shell gives a program SIGPIPE ended, as
        // `cat` and `grep` end when their reader has gone.
        Err(e) if output_only && reader_gone(&e) => ExitCode::from(141),
        Err(e) => {
            say!("snappack: {}", describe(&e));
            ExitCode::from(2)
        }
    }
}

/// Whether `error` comes from writing to a pipe nobody reads any more.
fn reader_gone(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        let kind = match cause.downcast_ref::<serde_json::Error>() {
            Some(e) => e.io_error_kind(),
            None => cause.downcast_ref::<std::io::Error>().map(|e| e.kind()),
        };
        kind == Some(std::io::ErrorKind::BrokenPipe)
    })
}

/// An error and its causes, each said once: many errors already name their
/// cause in their own message, which `{:#}` would then repeat.
fn describe(error: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in error.chain().map(ToString::to_string) {
        if !text.contains(&cause) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&cause);
        }
    }
    text
}

impl InputArgs {
    fn options(&self) -> Result<Options> {
        Ok(Options {
            format: self.format,
            table: self.table.clone(),
            component: self.component.clone(),
            schema: self
                .schema
                .as_deref()
                .map(|path| read_json::<Schema>(path, SCHEMA_SHAPE))
                .transpose()?,
            target: self.target_tables.as_deref().map(read_target).transpose()?,
            mode: self.mode.unwrap_or_default(),
            max_errors: Some(self.max_errors),
            threads: self.threads,
            stdin: self.file.as_os_str() == "-",
        })
    }

    /// Opens the input and tells its format, once for every walk of it:
    /// `--format`, else the name's extension, else its first bytes
    /// ([`Format::detect`]); `None` when none of them tells (the walk
    /// then says so). A stream written by `pack` is refused.
    fn open(&self) -> Result<(Input, String, Option<Format>)> {
        let (mut input, name) = self.open_any()?;
        let format = match self.format {
            Some(format) => Some(format),
            None => Format::detect(&name, &mut input)
                .with_context(|| format!("cannot read {}", self.file.display()))?,
        };
        if format.is_none() {
            refuse_packed_stream(&self.file, &mut input)?;
        }
        Ok((input, name, format))
    }

    /// [`open`](Self::open) whatever the input holds.
    fn open_any(&self) -> Result<(Input, String)> {
        if self.file.as_os_str() == "-" {
            let mut bytes = Vec::new();
            std::io::stdin()
                .lock()
                .read_to_end(&mut bytes)
                .context("cannot read standard input")?;
            return Ok((Input::Memory(Cursor::new(bytes)), "stdin".to_owned()));
        }
        let mut file = File::open(&self.file)
            .with_context(|| format!("cannot open {}", self.file.display()))?;
        let metadata = file
            .metadata()
            .with_context(|| format!("cannot read {}", self.file.display()))?;
        if metadata.is_dir() {
            bail!(
                "{} is a folder: give the snapshot's .zip (or a .jsonl, .json or .csv file)",
                self.file.display()
            );
        }
        let name = self
            .file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if metadata.is_file() && metadata.len() > 0 {
            // Smaller than the raw chunks inflating reads, which then bypass the buffer.
            return Ok((Input::File(BufReader::with_capacity(64 << 10, file)), name));
        }
        // A pipe, a device or a file that says it is empty (as those of
        // /proc do) cannot be read at an offset: it is read whole first.
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .with_context(|| format!("cannot read {}", self.file.display()))?;
        Ok((Input::Memory(Cursor::new(bytes)), name))
    }
}

/// An input as the walks read it: a file, or the whole of one that cannot
/// seek, read into memory.
enum Input {
    File(BufReader<File>),
    Memory(Cursor<Vec<u8>>),
}

impl Input {
    /// Its size in bytes.
    fn len(&self) -> u64 {
        match self {
            Input::File(file) => file.get_ref().metadata().map_or(0, |m| m.len()),
            Input::Memory(bytes) => bytes.get_ref().len() as u64,
        }
    }

    /// Whether it can be opened again, for more walks at once.
    fn reopens(&self) -> bool {
        matches!(self, Input::File(_))
    }
}

impl Read for Input {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Input::File(file) => file.read(buf),
            Input::Memory(bytes) => bytes.read(buf),
        }
    }
}

impl Seek for Input {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        match self {
            Input::File(file) => file.seek(pos),
            Input::Memory(bytes) => bytes.seek(pos),
        }
    }
}

/// A walk (or thread) per core, at most 8.
fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(8))
}

/// The JSON file `path`, refused as not `what` (its shape, so that the
/// user sees what was expected beside what is wrong).
fn read_json<T: serde::de::DeserializeOwned>(path: &Path, what: &str) -> Result<T> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not {what}", path.display()))
}

/// What a `--schema` file holds.
const SCHEMA_SHAPE: &str = "a schema (expected {\"tables\": {\"users\": {\"fields\": \
     {\"name\": {\"optional\": false}, \"nickname\": {\"optional\": true}}}}})";

/// The target's tables: `{"tables": [...]}` or a bare array.
fn read_target(path: &Path) -> Result<TargetTables> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    // The first character says which shape, so the error is about that one.
    let parsed = match text.trim_start().starts_with('[') {
        true => serde_json::from_str(&text).map(|tables| TargetTables { tables }),
        false => serde_json::from_str::<TargetTables>(&text),
    };
    parsed.with_context(|| {
            format!(
                "{} is not a table list (expected {{\"tables\": [{{\"component\": \"\", \"name\": \"users\", \"number\": 10001, \"documents\": 0}}]}})",
                path.display()
            )
        })
}

fn validate(args: ValidateArgs) -> Result<ExitCode> {
    let mut options = args.input.options()?;
    let (reader, name, format) = args.input.open()?;
    options.format = format;
    let started = Instant::now();
    let mut bar = ProgressBar::new(!args.quiet && !args.json);
    let zip = options.format == Some(Format::Zip);
    // A walk per core, each of two threads: while one walk's checking
    // thread waits for its inflating one, another walk's threads run.
    let workers = if zip && reader.reopens() {
        options.threads
    } else {
        1
    };
    let report = if workers > 1 {
        let size = reader.len();
        drop(reader);
        let mut on_progress = |p| bar.update(p, started);
        validate_in_workers(
            &args.input,
            &name,
            &options,
            workers,
            size,
            &mut on_progress,
        )?
    } else {
        snappack::validate(reader, &name, &options, &mut |p| {
            bar.update(p, started);
            true
        })
    };
    bar.clear();
    let mut out = std::io::stdout().lock();
    let written = if args.json {
        serde_json::to_writer(&mut out, &report)
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(out))
    } else {
        let color = std::io::stdout().is_terminal() && colors_wanted();
        human::print(&mut out, &name, &report, started.elapsed(), color)
    };
    // Flushed here, where a failure is still told.
    written
        .and_then(|()| out.flush())
        .context("cannot write the report to standard output")?;
    Ok(report_status(&report))
}

/// Validates a ZIP archive of `size` bytes in `workers` walks at once, each
/// checking a run of its tables on two threads (`validate_shard`), and
/// merges their findings into the report one walk makes. Progress is the
/// walks' shares added up.
fn validate_in_workers(
    input: &InputArgs,
    name: &str,
    options: &Options,
    workers: usize,
    size: u64,
    on_progress: &mut dyn FnMut(Progress),
) -> Result<Report> {
    let count = u32::try_from(workers)?;
    let options = Options {
        threads: 2,
        ..options.clone()
    };
    let (sender, progress) = std::sync::mpsc::channel::<(u32, Progress)>();
    let shards = std::thread::scope(|scope| {
        let walks: Vec<_> = (0..count)
            .map(|index| {
                let (sender, options) = (sender.clone(), &options);
                scope.spawn(move || -> Result<ShardReport> {
                    // Of the format `options` has, told when it was first opened.
                    let (reader, _) = input.open_any()?;
                    let shard = Shard { index, count };
                    Ok(validate_shard(reader, name, options, shard, &mut |p| {
                        sender.send((index, p)).is_ok()
                    }))
                })
            })
            .collect();
        drop(sender);
        let mut shares: Vec<Option<Progress>> = vec![None; workers];
        for (index, p) in progress {
            shares[index as usize] = Some(p);
            on_progress(combined(&shares, size));
        }
        walks
            .into_iter()
            .map(|walk| {
                walk.join()
                    .map_err(|_| anyhow!("a validation thread panicked"))?
            })
            .collect::<Result<Vec<_>>>()
    })?;
    Ok(merge_shards(shards)?)
}

/// The progress of walks that share an input of `size` bytes: the mean of
/// their fractions (a walk not heard from yet has done nothing; one with
/// nothing to do is done), and every document they read.
fn combined(shares: &[Option<Progress>], size: u64) -> Progress {
    let fraction = |p: &Option<Progress>| match p {
        None => 0.0,
        Some(p) if p.bytes_total == 0 => 1.0,
        Some(p) => p.bytes_read as f64 / p.bytes_total as f64,
    };
    let mean = shares.iter().map(fraction).sum::<f64>() / shares.len().max(1) as f64;
    Progress {
        bytes_read: (size as f64 * mean) as u64,
        bytes_total: size,
        documents: shares.iter().flatten().map(|p| p.documents).sum(),
    }
}

/// The exit status for a validation report: 0 valid, 1 the input has
/// errors, 2 when its only errors are about the options given (the input
/// was not checked: the command could not run).
fn report_status(report: &Report) -> ExitCode {
    if report.valid {
        ExitCode::SUCCESS
    } else if only_option_errors(report) {
        ExitCode::from(2)
    } else {
        ExitCode::from(1)
    }
}

/// Whether every error of the report (all listed) is about the options.
fn only_option_errors(report: &Report) -> bool {
    report.error_count > 0
        && report.error_count == report.errors.len() as u64
        && report.errors.iter().all(|f| about_options(report, f))
}

/// Whether a finding of `report` is about the options given, not the input:
/// `InvalidOptions`; a `--component` that is no component path; a table
/// name missing (or given for an archive with no table), Convex's
/// `InvalidName` without a line, with nothing else checked; or, for a
/// single-table file, a `--table` that Convex refuses as a name (nothing is
/// read then).
fn about_options(report: &Report, finding: &snappack::report::Finding) -> bool {
    let no_line_nothing_read = finding.line.is_none() && report.tables.is_empty();
    match finding.code {
        Code::InvalidOptions | Code::InvalidComponentPath => true,
        Code::InvalidName => no_line_nothing_read,
        Code::ImportInvalidName | Code::InvalidTableName => {
            no_line_nothing_read && report.format != Format::Zip.as_str()
        }
        _ => false,
    }
}

/// A one-line progress bar on stderr, drawn only when stderr is a terminal,
/// at most ten times a second, and never wider than the terminal: a line
/// that wrapped would be redrawn below itself, filling the screen.
struct ProgressBar {
    enabled: bool,
    drawn: bool,
    last: Option<Instant>,
}

impl ProgressBar {
    fn new(wanted: bool) -> Self {
        ProgressBar {
            enabled: wanted && std::io::stderr().is_terminal(),
            drawn: false,
            last: None,
        }
    }

    fn update(&mut self, p: snappack::Progress, started: Instant) {
        let done = p.bytes_read >= p.bytes_total;
        if !self.enabled
            || p.bytes_total == 0
            || !done
                && self
                    .last
                    .is_some_and(|t| t.elapsed() < std::time::Duration::from_millis(100))
        {
            return;
        }
        self.last = Some(Instant::now());
        let fraction = p.bytes_read as f64 / p.bytes_total as f64;
        let secs = started.elapsed().as_secs_f64().max(1e-3);
        let rate = p.bytes_read as f64 / secs;
        let eta = if rate > 0.0 {
            p.bytes_total.saturating_sub(p.bytes_read) as f64 / rate
        } else {
            0.0
        };
        let text = format!(
            "{:>3.0}%  {} / {}  {}/s  {}  ETA {:.0}s",
            fraction * 100.0,
            human::bytes(p.bytes_read),
            human::bytes(p.bytes_total),
            human::bytes(rate as u64),
            human::plural(p.documents, "document"),
            eta
        );
        let line = bar_line(fraction, &text, terminal_width());
        say_raw!("\r\x1b[K{line}");
        let _ = std::io::stderr().flush();
        self.drawn = true;
    }

    fn clear(&mut self) {
        if self.drawn {
            say_raw!("\r\x1b[K");
        }
    }
}

/// A progress line of at most `width - 1` characters (the last column
/// would wrap on some terminals): a bar of up to 30 cells before `text`,
/// narrower or left out where the terminal is narrow, and `text` cut last.
fn bar_line(fraction: f64, text: &str, width: usize) -> String {
    let room = width.saturating_sub(1);
    let text_len = text.chars().count();
    // `[`, `]` and two spaces around the cells.
    let cells = room.saturating_sub(text_len + 4).min(30);
    let mut line = String::new();
    if cells >= 10 {
        let filled = ((fraction.clamp(0.0, 1.0) * cells as f64) as usize).min(cells);
        line.push('[');
        line.push_str(&"#".repeat(filled));
        line.push_str(&" ".repeat(cells - filled));
        line.push_str("]  ");
    }
    line.extend(text.chars().take(room - line.len().min(room)));
    line
}

/// The columns of the terminal on stderr (80 when it does not say).
fn terminal_width() -> usize {
    #[cfg(unix)]
    {
        let mut size = libc::winsize {
            ws_row: 0,
            ws_col: 0,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCGWINSZ only writes a `winsize` through the pointer,
        // which points at one.
        let read = unsafe { libc::ioctl(libc::STDERR_FILENO, libc::TIOCGWINSZ, &mut size) };
        if read == 0 && size.ws_col > 0 {
            return size.ws_col.into();
        }
    }
    80
}

fn generate(args: GenArgs) -> Result<ExitCode> {
    let mut spec: snappack::gen::GenSpec = match &args.spec {
        Some(path) => read_json(
            path,
            "a generator spec (its fields are listed by `snappack gen --help`)",
        )?,
        None => Default::default(),
    };
    if let Some(tables) = args.tables {
        spec.tables = tables;
    }
    if let Some(documents) = args.documents {
        spec.documents_per_table = documents;
    }
    if args.total_documents.is_some() {
        spec.total_documents = args.total_documents;
    }
    if !args.component.is_empty() {
        spec.components = args.component.clone();
    }
    if let Some(files) = args.storage_files {
        spec.storage_files = files;
    }
    if let Some(prefix) = &args.prefix {
        spec.prefix = prefix.clone();
    }
    if let Some(seed) = args.seed {
        spec.seed = seed;
    }
    for fault in &args.fault {
        let parsed = serde_json::from_value(serde_json::Value::String(fault.clone()))
            .with_context(|| format!("unknown fault '{fault}'"))?;
        spec.faults.push(parsed);
    }
    let inputs: Vec<&Path> = args.spec.as_deref().into_iter().collect();
    let mut out = OutputFile::create(&args.out, &inputs)?;
    // A device or FIFO (such as /dev/stdout) may be what standard output
    // carries: the summary goes to standard error then.
    let mut report: Box<dyn Write> = match out.writes_in_place() {
        true => Box::new(std::io::stderr().lock()),
        false => Box::new(std::io::stdout().lock()),
    };
    let cannot_write = || match args.out.to_str() {
        Some("-") => "cannot write to standard output".to_owned(),
        _ => format!("cannot write {}", args.out.display()),
    };
    // A spec that asks for the impossible is said as it is: nothing about
    // the output is wrong.
    let failed = |error: snappack::gen::GenError| match error {
        snappack::gen::GenError::Spec(_) => anyhow::Error::new(error),
        _ => anyhow::Error::new(error).context(cannot_write()),
    };
    // Written front to back (each entry's sizes after its data, as Convex's
    // exporter writes them), so that a pipe, which cannot seek, gets the
    // archive as it is made, in bounded memory, and the same bytes as a file.
    let summary = snappack::gen::write_snapshot_streamed(&mut out, &spec).map_err(failed)?;
    // What the last writes left in the buffer, failing as a write does.
    out.flush().with_context(cannot_write)?;
    out.finish()?;
    if args.json {
        serde_json::to_writer_pretty(&mut report, &summary)?;
        writeln!(report)?;
    } else {
        writeln!(
            report,
            "wrote {}: {} with {}, {} (with their _storage rows), {} uncompressed, {}",
            match args.out.to_str() {
                Some("-") => "standard output".into(),
                _ => args.out.display().to_string(),
            },
            human::plural(summary.tables.len() as u64, "user table"),
            human::plural(summary.documents, "document"),
            human::plural(summary.storage.len() as u64, "stored file"),
            human::bytes(summary.bytes),
            human::plural(summary.faults.len() as u64, "fault")
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `open` tells the format once, for every walk, and leaves the input
    /// at its start for them.
    #[test]
    fn an_input_is_opened_with_its_format() {
        let dir = std::env::temp_dir().join(format!("snappack-open-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for (name, bytes, given, told) in [
            (
                "lines",
                &b"\n{\"a\":1}\n"[..],
                None,
                Some(Format::JsonLines),
            ),
            ("rows.csv", b"a\n1\n", None, Some(Format::Csv)),
            ("rows", b"a\n1\n", Some("csv"), Some(Format::Csv)),
            ("unknown", b"a\n1\n", None, None),
        ] {
            let path = dir.join(name);
            std::fs::write(&path, bytes).unwrap();
            let mut args = vec!["snappack", "validate", path.to_str().unwrap()];
            args.extend(given.iter().flat_map(|f| ["--format", f]));
            let Command::Validate(validate) = Cli::parse_from(args).command else {
                unreachable!()
            };
            let (mut input, opened, format) = validate.input.open().unwrap();
            assert_eq!((opened.as_str(), format), (name, told));
            let mut read = Vec::new();
            input.read_to_end(&mut read).unwrap();
            assert_eq!(read, bytes, "{name}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
