//! `snappack pack` and `snappack unpack`: the migration-item stream on disk.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{BufReader, BufWriter, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context as _, Result};
use clap::Args;
use snappack::convex::names::check_identifier;
use snappack::migration::{
    component_prefix, pack, unpack_frames, DecodeError, DecoderConfig, EncoderConfig, Item,
    PackError, PackOptions, UnpackError, DEFAULT_FRAME_SIZE, DEFAULT_LEVEL,
};
use snappack::report::{grouped, Report};
use snappack::server::ingest::{Ingest, Rejection};

use super::output::{OutputDir, OutputFile};
use super::{
    human, only_option_errors, parse_frame_size, report_status, InputArgs, ProgressBar,
    PACK_THREADS_HELP,
};

#[derive(Args)]
#[command(mut_arg("threads", |threads| threads.help(PACK_THREADS_HELP)))]
pub(super) struct PackArgs {
    #[command(flatten)]
    input: InputArgs,
    /// Where to write the stream (`-`: standard output).
    #[arg(long, short)]
    out: PathBuf,
    /// Pack even when the input has validation errors (the server judges).
    #[arg(long)]
    force: bool,
    /// Deflate level of frames, 0 (store) to 9.
    #[arg(long, default_value_t = DEFAULT_LEVEL, value_parser = clap::value_parser!(u32).range(0..=9))]
    level: u32,
    /// Bound on a frame's uncompressed payload, 4096 to 16777216 bytes (the
    /// smallest holds the declaration of a table whose component path is at
    /// most 4,009 bytes, a longer one is refused naming the size it needs;
    /// the largest is the most `unpack` reads).
    #[arg(long, default_value_t = DEFAULT_FRAME_SIZE, value_parser = parse_frame_size)]
    frame_size: usize,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Args)]
pub(super) struct UnpackArgs {
    /// The stream written by `snappack pack` (`-`: standard input).
    stream: PathBuf,
    /// Check every document, `_storage` row and stored file again, as a
    /// server does when it receives the stream (values, ids, duplicates,
    /// table numbers), beside the frames' checksums, sequence, items and
    /// counts, which are always checked; the first document refused is
    /// named (table, line, field).
    #[arg(long)]
    verify: bool,
    /// Write the tables' `documents.jsonl`, `_tables` and stored files under
    /// this folder: a new or empty one, filled only once the whole stream
    /// checks out.
    #[arg(long, short)]
    out: Option<PathBuf>,
}

pub(super) fn run_pack(args: PackArgs) -> Result<ExitCode> {
    let mut validate = args.input.options()?;
    let (reader, name, format) = args.input.open()?;
    validate.format = format;
    let options = PackOptions {
        encoder: EncoderConfig {
            max_frame_size: args.frame_size,
            level: args.level,
            threads: validate.threads,
            ..EncoderConfig::default()
        },
        validate,
        force: args.force,
        producer: format!("snappack {}", env!("CARGO_PKG_VERSION")),
        created_at_ms: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64),
    };
    let input_len = reader.len();
    let out = OutputFile::create(&args.out, &[&args.input.file])?;
    let in_place = out.writes_in_place();
    let started = Instant::now();
    let mut bar = ProgressBar::new(!args.quiet);
    let result = pack(reader, &name, out, &options, &mut |p| {
        bar.update(p, started);
        true
    });
    bar.clear();
    // With the stream on standard output (`-o -`, or a device), the report
    // goes to standard error.
    let (mut stdout, color): (Box<dyn Write>, _) = if in_place {
        let color = std::io::stderr().is_terminal();
        (Box::new(std::io::stderr().lock()), color)
    } else {
        let color = std::io::stdout().is_terminal();
        (Box::new(std::io::stdout().lock()), color)
    };
    let color = color && super::colors_wanted();
    let mut not_packed = |report: &Report| -> Result<ExitCode> {
        human::print(&mut stdout, &name, report, started.elapsed(), color)?;
        if only_option_errors(report) {
            writeln!(stdout, "not packed: fix the options")?;
        } else if args.force {
            writeln!(
                stdout,
                "not packed: part of the input cannot be read or carried (see the errors above), so not even --force can pack it"
            )?;
        } else {
            writeln!(stdout, "not packed: fix the errors, or pack with --force")?;
        }
        Ok(report_status(report))
    };
    let (out, packed) = match result {
        Ok(done) => done,
        Err(PackError::Invalid(report)) => return not_packed(&report),
        // Its causes stay in the chain: a reader gone is told by them.
        Err(error) => {
            let into = match args.out.as_os_str() == "-" {
                true => "standard output".to_owned(),
                false => args.out.display().to_string(),
            };
            return Err(
                anyhow::Error::new(error).context(format!("cannot pack {name} into {into}"))
            );
        }
    };
    // --force packs past the input's errors, not past options that kept it
    // from being read; the output is dropped, so not written.
    if only_option_errors(&packed.report) {
        return not_packed(&packed.report);
    }
    out.finish()?;
    let s = packed.summary;
    writeln!(
        stdout,
        "packed {name}: {}, {}, {} into {}, {} ({:.1}% of the input) in {:.1}s{}",
        human::plural(s.totals.tables.into(), "table"),
        human::plural(s.totals.documents, "document"),
        human::plural(s.totals.files, "stored file"),
        human::plural(s.frames, "frame"),
        human::bytes(s.bytes_written),
        s.bytes_written as f64 * 100.0 / input_len.max(1) as f64,
        started.elapsed().as_secs_f64(),
        if packed.report.valid {
            ""
        } else {
            " (forced: the input has errors)"
        }
    )?;
    Ok(ExitCode::SUCCESS)
}

/// What a stream names that unpack does not write (the stream decodes, but
/// no snapshot holds it): the input's fault, exit status 1.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Refused(String);

/// A table's folder from names in the stream, refusing a table or component
/// name that is not an identifier as Convex has them: it would not be read
/// back, and a stream must not write outside `root`.
fn folder(root: &Path, component: &str, name: &str) -> Result<PathBuf> {
    let segments = component.split('/').filter(|_| !component.is_empty());
    for segment in segments.chain([name]) {
        if let Err(why) = check_identifier(segment) {
            return Err(Refused(format!(
                "refusing to write table '{name}' of component '{component}': {why}"
            ))
            .into());
        }
    }
    Ok(root.join(component_prefix(component)).join(name))
}

/// The longest path, in bytes, this system's calls take: `PATH_MAX` less
/// its terminating NUL (Windows' `MAX_PATH` elsewhere).
#[cfg(unix)]
const MAX_PATH_BYTES: usize = libc::PATH_MAX as usize - 1;
#[cfg(not(unix))]
const MAX_PATH_BYTES: usize = 259;

/// Refuses at once a table whose files would be at a path longer than the
/// system takes (`MAX_PATH_BYTES`), as a component path nested deep can be:
/// creating them would fail, without the reason, only when reached. `files`
/// are the names written in the table's folder `dir`, under `root`.
fn fits_path_limit(
    root: &Path,
    dir: &Path,
    files: &[&str],
    table: &str,
    component: &str,
) -> Result<()> {
    for file in files {
        let path = dir.join(file);
        let length = path.as_os_str().len();
        if length <= MAX_PATH_BYTES {
            continue;
        }
        let entry = path.strip_prefix(root).unwrap_or(&path).to_string_lossy();
        let component = match component {
            "" => String::new(),
            path => format!(
                " of component {} ({} bytes)",
                human::shown(&abridged(path)),
                grouped(path.len() as u64)
            ),
        };
        bail!(
            "cannot write table {}{component}: its entry {} ({} bytes) would be at a path of {} \
             bytes with the output folder's, over the {} bytes a path may have on this system; \
             `unpack` without -o checks the stream without writing it",
            human::shown(table),
            human::shown(&abridged(&entry)),
            grouped(entry.len() as u64),
            grouped(length as u64),
            grouped(MAX_PATH_BYTES as u64),
        );
    }
    Ok(())
}

/// `text` whole when short, else its start and end around an ellipsis.
fn abridged(text: &str) -> String {
    const KEEP: usize = 60;
    if text.chars().count() <= 2 * KEEP {
        return text.to_owned();
    }
    let start: String = text.chars().take(KEEP).collect();
    let end: Vec<char> = text.chars().rev().take(KEEP).collect();
    format!("{start}…{}", end.into_iter().rev().collect::<String>())
}

/// Writes what a stream holds under a folder.
struct Rebuild {
    root: PathBuf,
    tables: Vec<PathBuf>,
    open: HashMap<u32, BufWriter<File>>,
    numbers: HashMap<String, Vec<(String, u32)>>,
    file: Option<BufWriter<File>>,
}

impl Rebuild {
    fn item(&mut self, item: &Item) -> Result<()> {
        match item {
            Item::Table(t) => {
                // `_tables` is rebuilt from the numbers; other system tables
                // are never imported.
                if t.name.starts_with('_') && t.name != "_storage" {
                    return Err(Refused(format!(
                        "refusing to write table '{}': a system table a snapshot cannot import",
                        t.name
                    ))
                    .into());
                }
                let dir = folder(&self.root, &t.component, &t.name)?;
                // Every table is declared before any document: a path too
                // long is said before anything else is written. Its files,
                // and the component's `_tables` rows written at the end.
                let stored_file = "x".repeat(snappack::convex::id::MAX_ID_LEN);
                let files: &[&str] = match t.name.as_str() {
                    "_storage" => &["documents.jsonl", &stored_file],
                    _ => &["documents.jsonl", "generated_schema.jsonl"],
                };
                fits_path_limit(&self.root, &dir, files, &t.name, &t.component)?;
                let tables = folder(&self.root, &t.component, "_tables")?;
                fits_path_limit(
                    &self.root,
                    &tables,
                    &["documents.jsonl"],
                    "_tables",
                    &t.component,
                )?;
                fs::create_dir_all(&dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
                let path = dir.join("documents.jsonl");
                File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
                self.tables.push(path);
                // The rows were checked with these rules; keep them for a re-import.
                if t.rules == snappack::convex::value::ValueRules::Uniform {
                    fs::write(dir.join("generated_schema.jsonl"), "\"uniform\"\n")?;
                }
                if let (Some(number), false) = (t.number, t.name.starts_with('_')) {
                    self.numbers
                        .entry(t.component.clone())
                        .or_default()
                        .push((t.name.clone(), number));
                }
            }
            Item::Documents { table, data } => {
                if !self.open.contains_key(table) {
                    let path = &self.tables[*table as usize];
                    let file = File::options().append(true).open(path)?;
                    self.open
                        .insert(*table, BufWriter::with_capacity(1 << 20, file));
                }
                if let Some(out) = self.open.get_mut(table) {
                    out.write_all(data)?;
                }
            }
            Item::TableEnd(end) => {
                if let Some(mut out) = self.open.remove(&end.table) {
                    out.flush()?;
                }
            }
            Item::File(f) => {
                // An id that does not decode would not be read back as a file.
                if let Err(e) = snappack::convex::DocumentId::decode(&f.id) {
                    return Err(Refused(format!(
                        "refusing to write stored file '{}': its id does not decode ({e})",
                        f.id
                    ))
                    .into());
                }
                let path = folder(&self.root, &f.component, "_storage")?;
                fits_path_limit(&self.root, &path, &[&f.id], "_storage", &f.component)?;
                fs::create_dir_all(&path)
                    .with_context(|| format!("cannot create {}", path.display()))?;
                // A decoded id is alphanumeric: a plain file name.
                let path = path.join(&f.id);
                self.file =
                    Some(BufWriter::new(File::create(&path).with_context(|| {
                        format!("cannot create {}", path.display())
                    })?));
            }
            Item::FileData(data) => {
                if let Some(out) = &mut self.file {
                    out.write_all(data)?;
                }
            }
            Item::FileEnd { .. } => {
                if let Some(mut out) = self.file.take() {
                    out.flush()?;
                }
            }
            Item::Done(_) => {
                for (component, tables) in &self.numbers {
                    let dir = folder(&self.root, component, "_tables")?;
                    fs::create_dir_all(&dir)?;
                    let mut out = BufWriter::new(File::create(dir.join("documents.jsonl"))?);
                    for (name, number) in tables {
                        // Keys in the order Convex's exporter writes them.
                        let name = serde_json::to_string(name)?;
                        writeln!(out, "{{\"name\":{name},\"id\":{number}}}")?;
                    }
                    out.flush()?;
                }
            }
            Item::Header(_) => {}
        }
        Ok(())
    }
}

/// The result of writing unpack's verdict to standard output, saying where
/// a failure was.
fn said(written: std::io::Result<()>) -> Result<()> {
    written.context("cannot write the result to standard output")
}

/// A document, row or file that a server refuses (`unpack --verify`), in
/// words: its code, table, line, field and frame.
fn rejected(rejection: &Rejection) -> Refused {
    let mut place = String::new();
    if let Some(table) = &rejection.table {
        place.push_str(&format!(" in table {table}"));
        if !rejection.component.is_empty() {
            place.push_str(&format!(" of component {}", rejection.component));
        }
    }
    if let Some(line) = rejection.line {
        place.push_str(&format!(", document {line}"));
    }
    if let Some(field) = &rejection.field {
        place.push_str(&format!(", field {field}"));
    }
    Refused(format!(
        "a server would refuse it: {}{place} (frame {}): {}",
        rejection.code, rejection.seq, rejection.message
    ))
}

pub(super) fn run_unpack(args: UnpackArgs) -> Result<ExitCode> {
    let input: Box<dyn Read> = if args.stream == Path::new("-") {
        Box::new(std::io::stdin().lock())
    } else {
        if args.stream.is_dir() {
            bail!(
                "{} is a folder: give a stream that `snappack pack` wrote (a .snappack file)",
                args.stream.display()
            );
        }
        Box::new(
            File::open(&args.stream)
                .with_context(|| format!("cannot open {}", args.stream.display()))?,
        )
    };
    let started = Instant::now();
    if args.out.as_deref() == Some(Path::new("-")) {
        bail!("-o takes a folder to write the tables and files into; `-` (standard output) is not one");
    }
    // Filled beside the target, moved into place once the whole stream checks.
    let output = args.out.as_deref().map(OutputDir::create).transpose()?;
    let mut rebuild = output.as_ref().map(|output| Rebuild {
        root: output.path().to_owned(),
        tables: Vec::new(),
        open: HashMap::new(),
        numbers: HashMap::new(),
        file: None,
    });
    let mut input = BufReader::new(input);
    // What the stream starts with, to tell a snapshot given by mistake.
    let head = std::io::BufRead::fill_buf(&mut input)
        .map(|bytes| bytes[..bytes.len().min(8)].to_vec())
        .unwrap_or_default();
    // What a server checks of every frame it receives.
    let mut ingest = args.verify.then(|| Ingest::new("unpack"));
    let result = unpack_frames(input, DecoderConfig::default(), &mut |frame| {
        if let Some(ingest) = &mut ingest {
            if let Err(rejection) = ingest.frame(frame) {
                return Err(std::io::Error::other(rejected(&rejection)));
            }
        }
        let Some(rebuild) = &mut rebuild else {
            return Ok(());
        };
        frame.items.iter().try_for_each(|item| {
            rebuild
                .item(item)
                .map_err(|e| match e.downcast::<Refused>() {
                    Ok(refused) => std::io::Error::other(refused),
                    Err(other) => std::io::Error::other(other),
                })
        })
    });
    drop(rebuild);
    let name = match args.stream.to_str() {
        Some("-") => "stdin".to_owned(),
        _ => args.stream.display().to_string(),
    };
    let not_written = match &args.out {
        Some(out) => format!("; no output was written to {}", out.display()),
        None => String::new(),
    };
    match result {
        Ok(u) => {
            if let Some(output) = output {
                output.finish()?;
            }
            let checked = match args.verify {
                true => "; a server accepts every document, row and file",
                false => "",
            };
            said(writeln!(
                std::io::stdout(),
                "{name}: an intact stream: {}, {}, {} ({}), {} ({}), written by {} in {:.1}s{checked}",
                human::plural(u.frames, "frame"),
                human::plural(u.totals.tables.into(), "table"),
                human::plural(u.totals.documents, "document"),
                human::bytes(u.totals.document_bytes),
                human::plural(u.totals.files, "stored file"),
                human::bytes(u.totals.file_bytes),
                human::shown(&u.header.producer),
                started.elapsed().as_secs_f64()
            ))?;
            Ok(ExitCode::SUCCESS)
        }
        Err(UnpackError::Decode(error)) => {
            // Names in the message come from the stream.
            let mut message = human::shown(&error.to_string()).into_owned();
            // Nothing at all: said plainly, not as a header cut short.
            if head.is_empty() {
                message = match args.stream.to_str() {
                    Some("-") => "standard input was empty (nothing was piped in): give the \
                                  stream `snappack pack` wrote"
                        .to_owned(),
                    _ => "the file is empty (0 bytes): give the stream `snappack pack` wrote"
                        .to_owned(),
                };
            }
            if matches!(error, DecodeError::BadMagic) {
                if let Some(format) = snappack::Format::from_first_bytes(&head) {
                    message.push_str(&format!(
                        " (it reads as {}: validate, pack or upload take that)",
                        match format {
                            snappack::Format::Zip => "a ZIP archive",
                            _ => "JSON",
                        }
                    ));
                }
            }
            said(writeln!(
                std::io::stdout(),
                "{name}: invalid: {message} [{}]{not_written}",
                error.code()
            ))?;
            Ok(ExitCode::from(1))
        }
        Err(UnpackError::Consumer(error))
            if error
                .get_ref()
                .is_some_and(|inner| inner.downcast_ref::<Refused>().is_some()) =>
        {
            let message = human::shown(&error.to_string()).into_owned();
            said(writeln!(
                std::io::stdout(),
                "{name}: {message}{not_written}"
            ))?;
            Ok(ExitCode::from(1))
        }
        Err(error) => bail!("cannot unpack {name}: {error}{not_written}"),
    }
}
