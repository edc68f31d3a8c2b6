//! Validation in the order Convex's importer works: classify entries, read
//! generated schemas and `_tables`, assign table numbers, then check every
//! document of every table and every stored file — reporting everything
//! Convex would reject, with the entry and line.
//!
//! The same walk feeds a [`Sink`], so packing an archive reads it once.

mod ids;
mod numbers;
mod scan;
pub mod shard;
mod single;
pub(crate) mod storage;
pub mod table;
mod zip;

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::io::{self, Read, Seek, SeekFrom};
use std::rc::Rc;

use serde::{Deserialize, Serialize};

use crate::archive::lines::without_newline;
use crate::archive::Format;
use crate::convex::value::ValueRules;
use crate::convex::DocumentId;
use crate::report::{
    grouped, Code, Finding, ListedAt, NumberSource, Report, StorageSummary, TableSummary,
};

pub use numbers::{check_target, removed_by_import, Removed, TargetCheck, TargetCheckError};
pub use shard::{merge_shards, Shard, ShardError, ShardReport};
pub use table::{Precheck, Prechecked, RowFinding, TableChecker};
// For the server, which reads lines as the walk does.
#[cfg(not(target_arch = "wasm32"))]
pub(crate) use scan::line_too_long;
// For the server and the CSV reader, which bound lines and rows as the walk does.
pub(crate) use zip::MAX_LINE;

/// Convex's import modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ImportMode {
    /// Every imported table must be empty or absent.
    #[default]
    RequireEmpty,
    /// Documents are added to existing tables.
    Append,
    /// Each imported table replaces the table of that name.
    Replace,
    /// Like Replace, and every other user table is deleted.
    ReplaceAll,
}

impl ImportMode {
    /// Every mode, in the order of the docs.
    pub const ALL: [ImportMode; 4] = [
        ImportMode::RequireEmpty,
        ImportMode::Append,
        ImportMode::Replace,
        ImportMode::ReplaceAll,
    ];

    /// The mode's name as Convex's CLI and snappack's API spell it
    /// (`requireEmpty`, `append`, `replace`, `replaceAll`).
    pub fn as_str(self) -> &'static str {
        match self {
            ImportMode::RequireEmpty => "requireEmpty",
            ImportMode::Append => "append",
            ImportMode::Replace => "replace",
            ImportMode::ReplaceAll => "replaceAll",
        }
    }
}

impl std::fmt::Display for ImportMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ImportMode {
    type Err = String;

    /// A mode's name, or its kebab-case spelling (`require-empty`, `replace-all`).
    fn from_str(s: &str) -> Result<Self, String> {
        let name = match s {
            "require-empty" => "requireEmpty",
            "replace-all" => "replaceAll",
            _ => s,
        };
        ImportMode::ALL
            .into_iter()
            .find(|mode| mode.as_str() == name)
            .ok_or_else(|| {
                format!("unknown mode '{s}' (expected requireEmpty, append, replace or replaceAll)")
            })
    }
}

/// The active schema of the target tables, as far as CSV imports need it:
/// which top-level fields are optional.
///
/// JSON: `{"tables": {"users": {"fields": {"name": {"optional": false}, "nick": {"optional": true}}}}}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schema {
    /// Table name to its fields (tables of the import's component).
    pub tables: BTreeMap<String, TableSchema>,
}

/// One table's document fields.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableSchema {
    /// Field name to its properties.
    pub fields: BTreeMap<String, FieldSchema>,
}

/// One field of a table's schema.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldSchema {
    /// `v.optional(...)`: an empty CSV cell removes the field.
    #[serde(default)]
    pub optional: bool,
}

impl Schema {
    /// The optional fields of `table` (empty when the table has no schema).
    pub fn optional_fields(&self, table: &str) -> Vec<String> {
        self.tables.get(table).map_or_else(Vec::new, |t| {
            t.fields
                .iter()
                .filter(|(_, f)| f.optional)
                .map(|(name, _)| name.clone())
                .collect()
        })
    }
}

/// The target deployment's tables (step 3 of table numbering).
///
/// JSON: `{"tables": [{"component": "", "name": "users", "number": 10001, "documents": 3}]}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetTables {
    /// Every table of the deployment, system tables included where known.
    pub tables: Vec<TargetTable>,
}

impl TargetTables {
    /// Why these cannot be a deployment's tables: a bad component path or
    /// name, number 0, a name twice in one component, or a number twice
    /// among its user tables (system tables may share one: `_storage` is
    /// `_file_storage`'s).
    pub fn check(&self) -> Result<(), String> {
        let mut names = std::collections::HashSet::new();
        let mut numbers = std::collections::HashSet::new();
        for t in &self.tables {
            let (component, name) = (&t.component, &t.name);
            let table = format!("table '{name}'{}", in_component(component));
            crate::archive::check_component_path(component)
                .map_err(|why| format!("{table}: component path invalid: {why}"))?;
            // System tables (`_storage`, ...) start with `_`.
            crate::convex::names::check_identifier(name.strip_prefix('_').unwrap_or(name))
                .map_err(|why| format!("{table}: name invalid: {why}"))?;
            if t.number == 0 {
                return Err(format!("{table} has number 0"));
            }
            if !names.insert((component, name)) {
                return Err(format!("{table} is listed twice"));
            }
            if !name.starts_with('_') && !numbers.insert((component, t.number)) {
                return Err(format!(
                    "{table} has number {}, as another table there",
                    t.number
                ));
            }
        }
        Ok(())
    }
}

/// One existing table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetTable {
    /// Component path (`""` for the root).
    #[serde(default)]
    pub component: String,
    /// Table name.
    pub name: String,
    /// Table number.
    pub number: u32,
    /// Documents in it.
    #[serde(default)]
    pub documents: u64,
}

/// Default cap on listed errors.
pub const DEFAULT_MAX_ERRORS: usize = 1000;

/// What to validate and against what.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Options {
    /// The input's format; when `None`, from the file name's extension,
    /// else from the first bytes ([`Format::detect`]).
    pub format: Option<Format>,
    /// Target table of a single-table format (JSONL, JSON, CSV).
    pub table: Option<String>,
    /// Component path the import targets (`""` for the root).
    pub component: String,
    /// The target's active schema (CSV empty-string remapping).
    pub schema: Option<Schema>,
    /// The target deployment's tables.
    pub target: Option<TargetTables>,
    /// Import mode (for conflicts with the target's tables).
    pub mode: ImportMode,
    /// Errors, and warnings, listed at most ([`DEFAULT_MAX_ERRORS`] when `None`); the rest are counted.
    pub max_errors: Option<usize>,
    /// Threads, natively: with 2 or more, the calling thread inflates each
    /// documents entry while a second thread checks its lines. The
    /// WebAssembly build ignores it (it has one thread); not part of the JSON.
    #[serde(skip)]
    pub threads: usize,
    /// The input is the CLI's standard input (`-`), whatever name it is
    /// given for its entries: a finding about the input as a whole says
    /// "standard input" rather than quoting that name. Not part of the JSON.
    #[serde(skip)]
    pub stdin: bool,
}

/// How far validation is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    /// Bytes of the input read so far.
    pub bytes_read: u64,
    /// Size of the input.
    pub bytes_total: u64,
    /// Documents checked so far.
    pub documents: u64,
}

/// One table of the import, as planned before documents are read.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedTable {
    /// Component path.
    pub component: String,
    /// Table name (`_storage` for stored files' metadata).
    pub name: String,
    /// Assigned number.
    pub number: Option<u32>,
    /// Where the number came from.
    pub number_source: NumberSource,
    /// How the table's rows become values.
    pub rules: ValueRules,
    /// Entries feeding it, in order (empty for tables only listed in `_tables`).
    pub entries: Vec<String>,
    /// The `_tables` row that lists it, if one does: where findings about
    /// its number point, and, for a table no entry feeds, every finding
    /// about it.
    pub listed_at: Option<ListedAt>,
}

/// One stored file of the archive.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedFile {
    /// Component path.
    pub component: String,
    /// The file's id.
    pub id: DocumentId,
    /// Its entry name.
    pub entry: String,
    /// Uncompressed size.
    pub size: u64,
}

/// What an import contains, known before any document is read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// The input's format.
    pub format: Option<Format>,
    /// Tables in import order.
    pub tables: Vec<PlannedTable>,
    /// Stored files that will be imported (their component has `_storage` metadata).
    pub files: Vec<PlannedFile>,
    /// Uncompressed bytes of the document entries and files.
    pub bytes: u64,
    /// Entries (or the single-table file) that no stream can carry whole, so
    /// packing refuses them even when forced: those not read because of an
    /// error about them, such as a table name that is not one, and `_tables`
    /// entries with a row that declares no table.
    pub left_out: Vec<String>,
}

/// Receives the walk of an input: the plan, every document line (valid or
/// not), every stored file's bytes. Packing implements it.
pub trait Sink {
    /// Before any document, once the plan is known.
    fn begin(&mut self, _plan: &Plan) -> io::Result<()> {
        Ok(())
    }

    /// One document line of table `table` (an index into the plan's tables),
    /// as a single-line JSON object; `valid` is false when it was rejected.
    fn document(&mut self, _table: usize, _line: &[u8], _valid: bool) -> io::Result<()> {
        Ok(())
    }

    /// After the last document of table `table`.
    fn end_table(&mut self, _table: usize) -> io::Result<()> {
        Ok(())
    }

    /// A chunk of stored file `file` (an index into the plan's files); chunks come in order.
    fn file_chunk(&mut self, _file: usize, _chunk: &[u8]) -> io::Result<()> {
        Ok(())
    }

    /// After the last chunk of stored file `file`, with its SHA-256.
    fn end_file(&mut self, _file: usize, _sha256: &[u8; 32]) -> io::Result<()> {
        Ok(())
    }

    /// After everything.
    fn finish(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A sink that keeps nothing.
pub struct NoSink;

impl Sink for NoSink {}

/// Validates an input and returns the report.
///
/// `file_name` gives the format when `options.format` is `None`, and names
/// the entry of single-table formats. `on_progress` is called now and then;
/// returning `false` stops the walk (the report then says so).
pub fn validate<R: Read + Seek>(
    input: R,
    file_name: &str,
    options: &Options,
    on_progress: &mut dyn FnMut(Progress) -> bool,
) -> Report {
    walk(input, file_name, options, &mut NoSink, on_progress).0
}

/// Validates an input and feeds every table, document and file to `sink`.
/// Returns the report and the plan.
pub fn walk<R: Read + Seek>(
    input: R,
    file_name: &str,
    options: &Options,
    sink: &mut dyn Sink,
    on_progress: &mut dyn FnMut(Progress) -> bool,
) -> (Report, Plan) {
    let (ctx, format, plan) = walk_as(input, file_name, options, sink, on_progress, None);
    let report = ctx.into_report(format, &plan);
    (report, plan)
}

/// Validates this worker's share of an input that `shard.count` workers
/// validate together (see [`shard`]): the plan in full, then only the
/// tables and stored files given to this worker. [`merge_shards`] makes the
/// report of all the workers' results. Progress counts this worker's share.
pub fn validate_shard<R: Read + Seek>(
    input: R,
    file_name: &str,
    options: &Options,
    shard: Shard,
    on_progress: &mut dyn FnMut(Progress) -> bool,
) -> ShardReport {
    let (ctx, format, plan) = walk_as(
        input,
        file_name,
        options,
        &mut NoSink,
        on_progress,
        Some(shard),
    );
    ctx.into_shard_report(format, &plan, shard)
}

/// The walk behind [`walk`] and [`validate_shard`].
fn walk_as<'a, R: Read + Seek>(
    mut input: R,
    file_name: &str,
    options: &'a Options,
    sink: &mut dyn Sink,
    on_progress: &'a mut dyn FnMut(Progress) -> bool,
    shard: Option<Shard>,
) -> (Context<'a>, Option<Format>, Plan) {
    let mut ctx = Context::new(options, on_progress);
    let detected = match options.format {
        Some(format) => Ok(Some(format)),
        None => Format::detect(file_name, &mut input),
    };
    let format = detected.as_ref().ok().copied().flatten();
    if let Some(Shard { index, count }) = shard.filter(|s| s.index >= s.count) {
        ctx.error(Finding::new(
            Code::InvalidOptions,
            format!("worker {index} of {count} does not exist"),
        ));
        return (ctx, format, Plan::default());
    }
    if let Some(Err(why)) = options.target.as_ref().map(TargetTables::check) {
        ctx.error(Finding::new(
            Code::InvalidOptions,
            format!("the target deployment's tables are not valid: {why}"),
        ));
        return (ctx, format, Plan::default());
    }
    ctx.shard = shard;
    let total = detected
        .and_then(|_| input.seek(io::SeekFrom::End(0)))
        .and_then(|end| {
            input.rewind()?;
            Ok(end)
        });
    let component = crate::archive::check_component_path(&options.component);
    let plan = match (component, format, total) {
        (Err(why), _, _) => {
            let path = &options.component;
            ctx.error(Finding::new(
                Code::InvalidComponentPath,
                format!("component path '{path}' invalid: {why}"),
            ));
            Plan::default()
        }
        (_, _, Err(e)) => {
            ctx.error(read_failed(e));
            Plan::default()
        }
        (_, None, total) => {
            let why = unknown_format(&mut input, file_name, &total, options.stdin);
            ctx.error(Finding::new(Code::InvalidOptions, why));
            Plan::default()
        }
        (Ok(()), Some(format), Ok(total)) => {
            ctx.progress.bytes_total = total;
            ctx.input = Rc::new(Input::new(total));
            let result = match format {
                Format::Zip => zip::walk(input, &mut ctx, sink),
                // A single-table file is one table: worker 0's.
                _ if !ctx.owns_table(0) => Ok(Plan {
                    format: Some(format),
                    ..Plan::default()
                }),
                _ => single::walk(input, file_name, format, &mut ctx, sink),
            };
            ctx.set_phase(shard::END_PHASE);
            match result {
                Ok(plan) => plan,
                Err(Stop::Cancelled(plan)) => {
                    ctx.warning(Finding::new(
                        Code::Cancelled,
                        "validation was stopped before the end",
                    ));
                    ctx.cancelled = true;
                    plan
                }
                Err(Stop::Sink(e, plan)) => {
                    ctx.error(Finding::new(
                        Code::ReadFailed,
                        format!("the walk's consumer failed: {e}"),
                    ));
                    plan
                }
                Err(Stop::InputFailed(plan)) => {
                    // Where no entry's read reported it (a first id's, say).
                    ctx.read_error(Finding::new(Code::ReadFailed, ""));
                    plan
                }
            }
        }
    };
    let mut plan = plan;
    plan.left_out.append(&mut ctx.left_unread);
    (ctx, format, plan)
}

/// Why the format of an input (named `file_name`, `total` bytes long,
/// standard input when `stdin`) cannot be told, and what to give instead.
fn unknown_format<R: Read + Seek>(
    input: &mut R,
    file_name: &str,
    total: &io::Result<u64>,
    stdin: bool,
) -> String {
    // A file saved as UTF-16 starts with neither `[` nor `{`, and is
    // no format snappack or Convex reads: said before its format is given.
    let mut head = [0u8; 2];
    let utf16 = input
        .rewind()
        .and_then(|()| input.read_exact(&mut head))
        .is_ok()
        && crate::archive::lines::starts_as_utf16(&head);
    let input = match file_name {
        "" => "the input (it has no name)".to_owned(),
        name => format!("'{name}'"),
    };
    let why = match (total, stdin) {
        (Ok(0), true) => "standard input was empty (nothing was piped in): there is \
                          nothing to check, nor any first bytes to tell its format by; \
                          pipe the snapshot in or give its file, or, to check an empty \
                          single-table file, give its format with --format (jsonl, json \
                          or csv)"
            .to_owned(),
        (_, true) => "cannot tell the format of standard input from its first bytes \
                      (it has no name, so no extension): give it with --format (zip, \
                      jsonl, json or csv)"
            .to_owned(),
        (Ok(0), false) => format!(
            "{input} is empty (0 bytes), and its name does not tell its format: \
             give a format (zip, jsonl, json or csv)"
        ),
        _ => format!(
            "cannot tell the format of {input} from its extension or its first bytes: \
             give a format (zip, jsonl, json or csv)"
        ),
    };
    match (utf16, stdin) {
        (true, true) => format!(
            "cannot tell the format of standard input: it {}, then give its format \
             with --format (zip, jsonl, json or csv)",
            crate::archive::lines::UTF16_HINT
        ),
        (true, false) => format!(
            "cannot tell the format of {input}: it {}, then give its format (zip, \
             jsonl, json or csv), or a name whose extension tells it",
            crate::archive::lines::UTF16_HINT
        ),
        (false, _) => why,
    }
}

/// Why a walk ended early.
pub(crate) enum Stop {
    /// The progress callback asked to stop.
    Cancelled(Plan),
    /// The sink failed.
    Sink(io::Error, Plan),
    /// The input itself could not be read on ([`Input::failure`]).
    InputFailed(Plan),
}

/// What a walk knows of its input as it reads it, shared by the walk and the
/// [`Tracked`] reader deep inside the archive: how far it has read (for
/// progress) and why the input itself failed, if it did.
#[derive(Debug, Default)]
pub(crate) struct Input {
    /// Its length when the walk began.
    len: u64,
    position: Cell<u64>,
    failure: RefCell<Option<String>>,
}

impl Input {
    fn new(len: u64) -> Self {
        Input {
            len,
            ..Input::default()
        }
    }

    /// How far into the input the last read or seek went.
    pub fn position(&self) -> u64 {
        self.position.get()
    }

    /// Why the input could not be read, once a read of it failed.
    pub fn failure(&self) -> Option<String> {
        self.failure.borrow().clone()
    }

    fn fail(&self, e: io::Error) -> io::Error {
        self.failure
            .borrow_mut()
            .get_or_insert_with(|| e.to_string());
        e
    }
}

/// The walk's reader of its input, keeping [`Input`] up to date. A read that
/// fails, or that meets the end before the length the input had when the
/// walk began (a file cut short while it is read), is the input's failure:
/// the errors it causes above (of an entry, of a line) are not the archive's.
pub(crate) struct Tracked<R> {
    inner: R,
    input: Rc<Input>,
}

impl<R> Tracked<R> {
    /// Reads `inner`, the input `input` describes.
    pub fn new(inner: R, input: Rc<Input>) -> Self {
        Tracked { inner, input }
    }
}

impl<R: Read> Read for Tracked<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let at = self.input.position();
        match self.inner.read(buf) {
            Ok(0) if !buf.is_empty() && at < self.input.len => {
                Err(self.input.fail(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "it ends at byte {at}, but it had {} bytes when validation began",
                        self.input.len
                    ),
                )))
            }
            Ok(n) => {
                self.input.position.set(at + n as u64);
                Ok(n)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Err(e),
            Err(e) => Err(self.input.fail(e)),
        }
    }
}

/// A seek that fails is the archive's doing (an offset before the start, as
/// a damaged or tiny archive gives), not the input's.
impl<R: Seek> Seek for Tracked<R> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let at = self.inner.seek(pos)?;
        self.input.position.set(at);
        Ok(at)
    }
}

/// State shared by the walks: options, findings, counts, progress.
pub(crate) struct Context<'a> {
    pub options: &'a Options,
    on_progress: &'a mut dyn FnMut(Progress) -> bool,
    pub progress: Progress,
    next_report: u64,
    errors: Vec<Finding>,
    warnings: Vec<Finding>,
    error_count: u64,
    warning_count: u64,
    max_errors: usize,
    /// Per table (index into the plan): documents and bytes.
    pub counts: Vec<(u64, u64)>,
    pub storage: StorageSummary,
    cancelled: bool,
    /// This worker, when several validate the input together.
    shard: Option<Shard>,
    /// Which worker checks each table (empty: this one checks them all).
    pub owners: Vec<u32>,
    /// The phase of the walk findings now come from ([`shard`]).
    phase: u32,
    error_phases: Vec<u32>,
    warning_phases: Vec<u32>,
    /// Errors and warnings counted when the walk left the plan's phase.
    plan_errors: Option<u64>,
    plan_warnings: Option<u64>,
    /// A worker's progress counts its own share: the bytes of the entries
    /// it checked, and of the one it is in from its start.
    pub share: Option<Share>,
    /// The input being walked.
    pub input: Rc<Input>,
    /// Whether the input's failure has been reported.
    input_failure_reported: bool,
    /// Entries (or the file) whose rest was not read after a finding that
    /// says so, such as a line too long: the plan's `left_out` at the end.
    pub left_unread: Vec<String>,
}

/// How far a worker is through its own share of the input.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Share {
    /// Compressed bytes of the entries it finished.
    pub done: u64,
    /// Where the entry it is in starts, and its compressed length.
    pub entry: (u64, u64),
}

/// Report progress after about this many bytes, or after a 256th of a
/// smaller input (but no less than 64 KiB): a small input's bar moves too.
const PROGRESS_EVERY: u64 = 1 << 20;
const MIN_PROGRESS_EVERY: u64 = 64 << 10;

impl<'a> Context<'a> {
    fn new(options: &'a Options, on_progress: &'a mut dyn FnMut(Progress) -> bool) -> Self {
        Context {
            options,
            on_progress,
            progress: Progress::default(),
            next_report: 0,
            errors: Vec::new(),
            warnings: Vec::new(),
            error_count: 0,
            warning_count: 0,
            max_errors: options.max_errors.unwrap_or(DEFAULT_MAX_ERRORS),
            counts: Vec::new(),
            storage: StorageSummary::default(),
            cancelled: false,
            shard: None,
            owners: Vec::new(),
            phase: shard::PLAN_PHASE,
            error_phases: Vec::new(),
            warning_phases: Vec::new(),
            plan_errors: None,
            plan_warnings: None,
            share: None,
            input: Rc::default(),
            input_failure_reported: false,
            left_unread: Vec::new(),
        }
    }

    /// This worker, when several validate the input together.
    pub fn shard(&self) -> Option<Shard> {
        self.shard
    }

    /// Whether this worker checks table `t` (an index into the plan's tables).
    pub fn owns_table(&self, t: usize) -> bool {
        self.shard.is_none_or(|s| {
            self.owners
                .get(t)
                .map_or(s.index == 0, |&owner| owner == s.index)
        })
    }

    /// A worker starts on the entry at `span` (local header offset,
    /// compressed size): the one before it is done.
    pub fn enter_share(&mut self, span: (u64, u64)) {
        if let Some(share) = &mut self.share {
            share.done += share.entry.1;
            share.entry = span;
        }
    }

    /// Findings from now on come from `phase` of the walk ([`shard`]).
    pub fn set_phase(&mut self, phase: u32) {
        if self.plan_errors.is_none() && phase != shard::PLAN_PHASE {
            self.plan_errors = Some(self.error_count);
            self.plan_warnings = Some(self.warning_count);
        }
        self.phase = phase;
    }

    /// Records an error (listed while under the cap, always counted). One
    /// that left input unread ([`Code::leaves_input_unread`]) also puts its
    /// entry (`""`: the archive) in `left_unread`, listed or not.
    pub fn error(&mut self, finding: Finding) {
        self.note_unread(&finding);
        self.error_count += 1;
        if self.errors.len() < self.max_errors {
            self.errors.push(finding);
            self.error_phases.push(self.phase);
        }
    }

    /// Records an error met reading an entry or a line (`finding`), or,
    /// when it came of the input's own failure, that failure: once, as
    /// `ReadFailed`, where `finding` is, and listed whatever the cap, for
    /// the walk stops there ([`Context::input_failed`]).
    pub fn read_error(&mut self, finding: Finding) {
        let Some(why) = self.input.failure() else {
            return self.error(finding);
        };
        if std::mem::replace(&mut self.input_failure_reported, true) {
            return;
        }
        let stopped = match finding.entry {
            Some(_) => "; validation stopped at this entry",
            None => "",
        };
        let finding = Finding {
            code: Code::ReadFailed,
            message: format!("cannot read the input: {why}{stopped}"),
            ..finding
        };
        self.note_unread(&finding);
        self.error_count += 1;
        self.errors.push(finding);
        self.error_phases.push(self.phase);
    }

    /// Puts the entry of `finding` in `left_unread` when its code says
    /// input was left unread (once per entry in a row).
    fn note_unread(&mut self, finding: &Finding) {
        if !finding.code.leaves_input_unread() {
            return;
        }
        let entry = finding.entry.as_deref().unwrap_or_default();
        if self.left_unread.last().map(String::as_str) != Some(entry) {
            self.left_unread.push(entry.to_owned());
        }
    }

    /// Whether the input itself failed: the walk stops.
    pub fn input_failed(&self) -> bool {
        self.input.failure.borrow().is_some()
    }

    /// Where the findings listed so far end, for [`Context::name_table_since`].
    pub fn findings_mark(&self) -> (usize, usize) {
        (self.errors.len(), self.warnings.len())
    }

    /// Names the table in the findings listed since `mark` that name none:
    /// those of an entry that is the table's own, such as its generated schema.
    pub fn name_table_since(&mut self, mark: (usize, usize), component: &str, table: &str) {
        let (errors, warnings) = mark;
        for finding in self.errors[errors..]
            .iter_mut()
            .chain(&mut self.warnings[warnings..])
        {
            if finding.table.is_none() {
                finding.component = component.to_owned();
                finding.table = Some(table.to_owned());
            }
        }
    }

    /// Records a warning.
    pub fn warning(&mut self, finding: Finding) {
        self.warning_count += 1;
        if self.warnings.len() < self.max_errors {
            self.warnings.push(finding);
            self.warning_phases.push(self.phase);
        }
    }

    /// Updates progress from the reader's position in the input; `false`
    /// means the caller asked to stop.
    pub fn tick(&mut self, position: u64) -> bool {
        let bytes_read = match self.share {
            None => position,
            Some(Share {
                done,
                entry: (start, len),
            }) => done + position.saturating_sub(start).min(len),
        };
        self.progress.bytes_read = bytes_read.min(self.progress.bytes_total);
        if self.progress.bytes_read >= self.next_report {
            let step = (self.progress.bytes_total / 256).clamp(MIN_PROGRESS_EVERY, PROGRESS_EVERY);
            self.next_report = self.progress.bytes_read + step;
            return (self.on_progress)(self.progress);
        }
        true
    }

    fn into_report(mut self, format: Option<Format>, plan: &Plan) -> Report {
        if !self.cancelled {
            self.progress.bytes_read = self.progress.bytes_total;
            (self.on_progress)(self.progress);
        }
        // Workers leave this to the merge, which counts all of them.
        if self.shard.is_none() {
            if let Some(too_many) = too_many_errors(self.error_count, self.errors.len()) {
                self.warnings.push(too_many);
                self.warning_count += 1;
            }
        }
        let tables: Vec<TableSummary> = plan
            .tables
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let (documents, bytes) = self.counts.get(i).copied().unwrap_or_default();
                TableSummary {
                    component: t.component.clone(),
                    name: t.name.clone(),
                    number: t.number,
                    number_source: t.number_source,
                    documents,
                    bytes,
                    entries: t.entries.clone(),
                    listed_at: t.listed_at.clone(),
                }
            })
            .collect();
        Report {
            valid: self.error_count == 0 && !self.cancelled,
            format: format.map_or("unknown", Format::as_str).to_owned(),
            documents: tables.iter().map(|t| t.documents).sum(),
            bytes: tables.iter().map(|t| t.bytes).sum::<u64>() + self.storage.bytes,
            tables,
            storage: self.storage,
            errors: self.errors,
            warnings: self.warnings,
            error_count: self.error_count,
            warning_count: self.warning_count,
        }
    }
}

impl Context<'_> {
    fn into_shard_report(
        mut self,
        format: Option<Format>,
        plan: &Plan,
        shard: Shard,
    ) -> ShardReport {
        let error_phases = std::mem::take(&mut self.error_phases);
        let warning_phases = std::mem::take(&mut self.warning_phases);
        let plan_errors = self.plan_errors.unwrap_or(self.error_count);
        let plan_warnings = self.plan_warnings.unwrap_or(self.warning_count);
        let max_errors = self.max_errors;
        let cancelled = self.cancelled;
        ShardReport {
            shard,
            report: self.into_report(format, plan),
            error_phases,
            warning_phases,
            plan_errors,
            plan_warnings,
            max_errors,
            cancelled,
        }
    }
}

/// The message of a finding of `code` on line `row`, `text`, which ends
/// with a `\n` when `newline`: `message`, unless it is a JSON syntax error
/// at the end of `text`, which Convex, reading the line with its `\n`,
/// words past it ([`json_error_with_newline`](crate::convex::value::json_error_with_newline)).
fn as_read_with_newline(
    code: Code,
    message: String,
    text: &[u8],
    row: u64,
    newline: bool,
) -> String {
    match code == Code::JsonInvalidRow && newline {
        true => crate::convex::value::json_error_with_newline(text, row).unwrap_or(message),
        false => message,
    }
}

/// The input itself cannot be read (not one of its entries or lines).
fn read_failed(e: impl std::fmt::Display) -> Finding {
    Finding::new(Code::ReadFailed, format!("cannot read the input: {e}"))
}

/// The warning that says errors went past the cap, if they did.
fn too_many_errors(count: u64, listed: usize) -> Option<Finding> {
    (count > listed as u64).then(|| {
        Finding::new(
            Code::TooManyErrors,
            match (count, listed) {
                (1, _) => "1 error in all; it is not listed".to_owned(),
                (_, 0) => format!("{} errors in all; none are listed", grouped(count)),
                (_, 1) => format!("{} errors in all; only the first is listed", grouped(count)),
                _ => format!(
                    "{} errors in all; only the first {} are listed",
                    grouped(count),
                    grouped(listed as u64)
                ),
            },
        )
    })
}

/// Convex's message for an imported table (`table` of `component`) whose
/// number the existing table `holder`, which stays, already has.
pub fn table_conflict_message(table: &str, component: &str, holder: &str) -> String {
    let in_comp = in_component(component);
    let what = match holder {
        "_storage" => "existing system table".to_owned(),
        internal if internal.starts_with('_') => "existing internal table. Consider importing this table without `_id` fields or import into a new deployment.".to_owned(),
        user => format!(
            "existing table `{user}`. To delete all existing tables, import with `npx convex import --replace-all`."
        ),
    };
    format!("New table `{table}`{in_comp} has IDs that conflict with {what}")
}

/// `""` for the root component, ` in '<path>'` otherwise, as Convex words it.
pub fn in_component(component: &str) -> String {
    if component.is_empty() {
        String::new()
    } else {
        format!(" in '{component}'")
    }
}

/// A legacy (pre-"uniform") generated schema: the shape must parse and
/// every override line must be well formed. Rows of such a table are checked
/// with the plain rules, which the warning says.
fn legacy_schema<R: Read>(
    shape: &str,
    lines: &mut crate::archive::LineReader<R>,
    entry: &str,
    ctx: &mut Context,
) {
    if let Err(reason) = crate::convex::legacy::parse_shape(shape) {
        ctx.error(
            Finding::new(
                Code::InvalidGeneratedSchema,
                format!("cannot parse {entry}: {reason}"),
            )
            .entry(entry)
            .line(1),
        );
        return;
    }
    while let Some((row, line)) = lines.next_line_with_end() {
        let (line, newline) = match line {
            Err(e) => {
                ctx.read_error(zip::schema_line_error(&e, row).entry(entry));
                break;
            }
            Ok(line) => without_newline(line),
        };
        let result = match std::str::from_utf8(line) {
            Err(e) => Err(crate::convex::value::RowError::new(
                Code::NotUtf8,
                format!("Import wasn't valid UTF8: {e}"),
            )),
            Ok(text) => crate::convex::legacy::parse_override_line(text, row).map(|_| ()),
        };
        if let Err(e) = result {
            let message = as_read_with_newline(e.code, e.message, line, row, newline);
            ctx.error(Finding::new(e.code, message).entry(entry).line(row));
        }
    }
    // An empty table's shape has nothing to decode.
    if shape != "never" {
        ctx.warning(
            Finding::new(
                Code::LegacyGeneratedSchema,
                "legacy generated schema: snappack checks, packs and imports this table's values as plain JSON (numbers as Float64, strings as strings) without decoding them by the shape, so Int64, bytes and NaN/Infinity written as strings stay strings",
            )
            .entry(entry),
        );
    }
}
