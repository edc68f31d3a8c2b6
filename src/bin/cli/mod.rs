//! Subcommands of the `snappack` binary. Exit status: 0 done (input valid),
//! 1 the input has errors, 2 the command could not run.

mod human;

use std::fs::File;
use std::io::{BufReader, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context as _, Result};
use clap::{Args, Parser, Subcommand};
use snappack::validate::{ImportMode, Options, Schema, TargetTables};
use snappack::Format;

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
}

/// What to validate and how.
#[derive(Args)]
struct InputArgs {
    /// The snapshot ZIP, or a .jsonl, .json or .csv file.
    file: PathBuf,
    /// Input format (default: from the file's extension).
    #[arg(long, value_parser = parse_format)]
    format: Option<Format>,
    /// Target table, for single-table formats.
    #[arg(long)]
    table: Option<String>,
    /// Component path the import targets (default: the root).
    #[arg(long, default_value = "")]
    component: String,
    /// The target's schema (JSON), for CSV empty-string remapping.
    #[arg(long, value_name = "FILE")]
    schema: Option<PathBuf>,
    /// The target deployment's tables (JSON), to reuse numbers and find conflicts before upload.
    #[arg(long, value_name = "FILE")]
    target_tables: Option<PathBuf>,
    /// Import mode: requireEmpty, append, replace, replaceAll.
    #[arg(long, default_value = "requireEmpty")]
    mode: ImportMode,
    /// List at most this many errors (all are counted).
    #[arg(long, default_value_t = snappack::validate::DEFAULT_MAX_ERRORS)]
    max_errors: usize,
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

fn parse_format(s: &str) -> Result<Format, String> {
    s.parse()
}

/// Runs the command line; the exit status says whether the input is valid.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Validate(args) => validate(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("snappack: {e:#}");
            ExitCode::from(2)
        }
    }
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
                .map(read_json::<Schema>)
                .transpose()?,
            target: self.target_tables.as_deref().map(read_target).transpose()?,
            mode: self.mode,
            max_errors: Some(self.max_errors),
        })
    }

    fn open(&self) -> Result<(BufReader<File>, String)> {
        let file = File::open(&self.file)
            .with_context(|| format!("cannot open {}", self.file.display()))?;
        let name = self
            .file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok((BufReader::with_capacity(1 << 20, file), name))
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not valid", path.display()))
}

/// The target's tables: `{"tables": [...]}` or a bare array.
fn read_target(path: &Path) -> Result<TargetTables> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str::<TargetTables>(&text)
        .or_else(|_| serde_json::from_str(&text).map(|tables| TargetTables { tables }))
        .with_context(|| {
            format!(
                "{} is not a table list (expected {{\"tables\": [{{\"component\": \"\", \"name\": \"users\", \"number\": 10001, \"documents\": 0}}]}})",
                path.display()
            )
        })
}

fn validate(args: ValidateArgs) -> Result<ExitCode> {
    let options = args.input.options()?;
    let (reader, name) = args.input.open()?;
    let started = Instant::now();
    let mut bar = ProgressBar::new(!args.quiet && !args.json);
    let report = snappack::validate(reader, &name, &options, &mut |p| {
        bar.update(p, started);
        true
    });
    bar.clear();
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer(&mut out, &report)?;
        writeln!(out)?;
    } else {
        let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        human::print(&mut out, &name, &report, started.elapsed(), color)?;
    }
    Ok(if report.valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// A one-line progress bar on stderr, drawn only when stderr is a terminal.
struct ProgressBar {
    enabled: bool,
    drawn: bool,
}

impl ProgressBar {
    fn new(wanted: bool) -> Self {
        ProgressBar {
            enabled: wanted && std::io::stderr().is_terminal(),
            drawn: false,
        }
    }

    fn update(&mut self, p: snappack::Progress, started: Instant) {
        if !self.enabled || p.bytes_total == 0 {
            return;
        }
        let fraction = p.bytes_read as f64 / p.bytes_total as f64;
        let width = 30;
        let filled = (fraction * width as f64) as usize;
        let secs = started.elapsed().as_secs_f64().max(1e-3);
        let rate = p.bytes_read as f64 / secs;
        let eta = if rate > 0.0 {
            (p.bytes_total - p.bytes_read) as f64 / rate
        } else {
            0.0
        };
        eprint!(
            "\r[{}{}] {:>3.0}%  {} / {}  {}/s  {} documents  ETA {:.0}s ",
            "#".repeat(filled),
            " ".repeat(width - filled.min(width)),
            fraction * 100.0,
            human::bytes(p.bytes_read),
            human::bytes(p.bytes_total),
            human::bytes(rate as u64),
            human::count(p.documents),
            eta
        );
        self.drawn = true;
    }

    fn clear(&mut self) {
        if self.drawn {
            eprint!("\r\x1b[2K");
        }
    }
}
