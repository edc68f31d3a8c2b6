//! Single-table inputs: JSONL, a JSON array, CSV. The caller names the table.

use std::io::{self, Read, Seek};

use serde_json::value::RawValue;

use super::numbers::{apply_target, unassigned_number_warning, Numbering};
use super::table::{RowFinding, TableChecker};
use super::zip::{first_id_of, MAX_LINE};
use super::{read_failed, Context, Plan, PlannedTable, Sink, Stop, Tracked};
use crate::archive::csv::CsvRows;
use crate::archive::lines::{
    line_ends, starts_as_utf16, with_cr_alone_hint, without_newline, UTF16_HINT,
};
use crate::archive::{Format, LineError, LineReader};
use crate::convex::names::check_identifier;
use crate::convex::value::ValueRules;
use crate::report::{Code, Finding, NumberSource};

/// Largest JSON array file: Convex's transaction write limit.
pub const MAX_JSON_ARRAY: u64 = 16 << 20;

const BOM: &[u8] = b"\xEF\xBB\xBF";

pub(super) fn walk<R: Read + Seek>(
    mut input: R,
    file_name: &str,
    format: Format,
    ctx: &mut Context,
    sink: &mut dyn Sink,
) -> Result<Plan, Stop> {
    // Findings name their entry: bytes given without a name are the input.
    let file_name = match file_name {
        "" => "input",
        name => name,
    };
    // No table to import into: the file is left out.
    let empty = Plan {
        format: Some(format),
        left_out: vec![file_name.to_owned()],
        ..Plan::default()
    };
    let kind = match format {
        Format::Csv => "CSV",
        Format::JsonArray => "JSON",
        _ => "JSONL",
    };
    // A missing table name is the caller's option, not the input's error
    // (Convex's code for it is InvalidName); nothing is read.
    let Some(table) = ctx.options.table.clone() else {
        ctx.error(
            Finding::new(
                Code::InvalidName,
                format!("{kind} import requires table name"),
            )
            .entry(file_name),
        );
        return Ok(empty);
    };
    if let Err(reason) = check_identifier(&table) {
        ctx.error(
            Finding::new(
                Code::ImportInvalidName,
                format!("invalid table name {table}: {reason}"),
            )
            .entry(file_name),
        );
        return Ok(empty);
    }
    if let Some(refusal) = crate::convex::names::system_table_refusal(&table) {
        ctx.error(Finding::new(Code::InvalidTableName, refusal).entry(file_name));
        return Ok(empty);
    }
    let component = ctx.options.component.clone();
    let schema = ctx.options.schema.as_ref();
    let optional = schema
        .map(|s| s.optional_fields(&table))
        .unwrap_or_default();
    // A schema for other tables: nothing of it applies, which the user should know.
    if let Some(schema) = schema.filter(|s| format == Format::Csv && !s.tables.contains_key(&table))
    {
        let names: Vec<&str> = schema.tables.keys().map(String::as_str).collect();
        let has = match names.is_empty() {
            true => "no tables".to_owned(),
            false => format!("only {}", names.join(", ")),
        };
        ctx.warning(
            Finding::new(
                Code::SchemaTableMissing,
                format!("the schema has no table {table} ({has}), so no empty cell of this file is removed: give the table name the schema uses, or a schema with this table"),
            )
            .entry(file_name),
        );
    }

    // Step 2 of table numbering: the first row's `_id`. A JSON array file
    // is read whole once, for this and for its rows.
    let array = (format == Format::JsonArray)
        .then(|| ArrayFile::read(Tracked::new(&mut input, ctx.input.clone())));
    let first = match &array {
        Some(array) => array.first_id(),
        None => {
            let first = first_row(&mut input, format, &optional);
            let _ = input.rewind();
            first
        }
    };
    let mut numbering = Numbering::default();
    let (number, number_source) = match first {
        Some(n) => {
            let _ = numbering.claim(&component, &table, n);
            (Some(n), NumberSource::Id)
        }
        None => (None, NumberSource::Unassigned),
    };
    let mut tables = vec![PlannedTable {
        component: component.clone(),
        name: table.clone(),
        number,
        number_source,
        rules: ValueRules::Plain,
        entries: vec![file_name.to_owned()],
        listed_at: None,
    }];
    apply_target(&mut tables, &mut numbering, ctx);
    let plan = Plan {
        format: Some(format),
        tables,
        files: Vec::new(),
        bytes: 0,
        left_out: Vec::new(),
    };
    ctx.counts = vec![(0, 0)];
    if let Err(e) = sink.begin(&plan) {
        return Err(Stop::Sink(e, plan));
    }

    let reader = Tracked::new(input, ctx.input.clone());
    let mut scan = Scan {
        checker: match TableChecker::new(&table, plan.tables[0].number, ValueRules::Plain) {
            // Its elements are often all on one line.
            checker if format == Format::JsonArray => checker.place_by_row(),
            checker => checker,
        },
        ids_without_first: false,
        first_line: None,
        entry: file_name,
        component: &component,
        table: &table,
    };
    let result = match (format, array) {
        (_, Some(array)) => scan.json_array(array, ctx, sink),
        (Format::Csv, None) => scan.csv(reader, &optional, ctx, sink),
        (_, None) => scan.jsonl(reader, ctx, sink),
    };
    if scan.ids_without_first {
        let warning = unassigned_number_warning(&component, &table).entry(scan.entry);
        ctx.warning(match scan.first_line {
            Some(line) => warning.line(line),
            None => warning,
        });
    }
    let end = result
        .and_then(|()| sink.end_table(0).map_err(ScanStop::Sink))
        .and_then(|()| sink.finish().map_err(ScanStop::Sink));
    match end {
        Ok(()) => Ok(plan),
        Err(ScanStop::Cancelled) => Err(Stop::Cancelled(plan)),
        Err(ScanStop::Sink(e)) => Err(Stop::Sink(e, plan)),
    }
}

enum ScanStop {
    Cancelled,
    Sink(io::Error),
}

/// The table number in the first row's `_id` of a CSV or JSONL file, if any.
fn first_row<R: Read>(input: &mut R, format: Format, optional: &[String]) -> Option<u32> {
    match format {
        Format::Csv => {
            let mut rows = CsvRows::new(input, optional).ok()?;
            let mut json = String::new();
            rows.next_row(&mut json)?.ok()?;
            first_id_of(json.as_bytes())
        }
        _ => {
            let mut lines = LineReader::new(input, MAX_LINE);
            first_id_of(lines.next_line()?.1.ok()?)
        }
    }
}

/// A JSON array file read whole, as Convex reads it: up to a byte past
/// [`MAX_JSON_ARRAY`], which tells a file over it.
struct ArrayFile {
    bytes: Vec<u8>,
    /// The error that stopped reading early (`bytes` holds what was read).
    failed: Option<io::Error>,
}

impl ArrayFile {
    fn read(input: impl Read) -> Self {
        let mut bytes = Vec::new();
        let failed = input.take(MAX_JSON_ARRAY + 1).read_to_end(&mut bytes).err();
        ArrayFile { bytes, failed }
    }

    /// The table number in the first element's `_id`, if the file was read
    /// whole and is a JSON array.
    fn first_id(&self) -> Option<u32> {
        if self.failed.is_some() || self.bytes.len() as u64 > MAX_JSON_ARRAY {
            return None;
        }
        let text = std::str::from_utf8(&self.bytes).ok()?;
        let rows: Vec<&RawValue> = serde_json::from_str(text).ok()?;
        first_id_of(rows.first()?.get().as_bytes())
    }
}

/// A JSONL or JSON input that starts with a byte order mark, which Convex refuses.
fn bom_refused() -> Finding {
    Finding::new(
        Code::Utf8BomNotSupported,
        "UTF-8 BOM is not supported. Please save your file without BOM.",
    )
}

struct Scan<'a> {
    checker: TableChecker,
    ids_without_first: bool,
    /// The line of the first document, whose `_id` numbers the table.
    first_line: Option<u64>,
    entry: &'a str,
    component: &'a str,
    table: &'a str,
}

impl Scan<'_> {
    fn at(&self, finding: Finding) -> Finding {
        finding.entry(self.entry).table(self.component, self.table)
    }

    /// Checks one document and hands it to the sink. Returns `false` after
    /// a line that is not UTF-8, which ends the input. `newline`: whether
    /// a `\n` ends it in the input (a JSONL line).
    fn document(
        &mut self,
        text: &[u8],
        newline: bool,
        row: u64,
        line: u64,
        ctx: &mut Context,
        sink: &mut dyn Sink,
    ) -> Result<bool, ScanStop> {
        self.first_line.get_or_insert(line);
        let valid = match self.checker.check(text, row, line) {
            Ok(doc) => {
                if self.checker.number().is_none()
                    && matches!(doc.id, crate::convex::value::IdField::Valid(_))
                {
                    self.ids_without_first = true;
                }
                true
            }
            Err(RowFinding {
                code: Code::NotUtf8,
                message,
                ..
            }) => {
                ctx.error(self.at(Finding::new(Code::NotUtf8, message)).line(line));
                return Ok(false);
            }
            Err(row_finding) => {
                let (code, message) = (row_finding.code, row_finding.message.clone());
                let message = super::as_read_with_newline(code, message, text, row, newline);
                let message = match code {
                    Code::JsonInvalidRow => with_cr_alone_hint(message, text, "file"),
                    _ => message,
                };
                let finding = self
                    .at(Finding::new(code, message))
                    .line(line)
                    .excerpt_at(&String::from_utf8_lossy(text), row_finding.at_byte);
                ctx.error(row_finding.locate(finding));
                false
            }
        };
        sink.document(0, text, valid).map_err(ScanStop::Sink)?;
        ctx.counts[0].0 += 1;
        ctx.progress.documents += 1;
        if !ctx.tick(ctx.input.position()) {
            return Err(ScanStop::Cancelled);
        }
        Ok(true)
    }

    fn jsonl<R: Read>(
        &mut self,
        input: R,
        ctx: &mut Context,
        sink: &mut dyn Sink,
    ) -> Result<(), ScanStop> {
        let mut lines = LineReader::new(input, MAX_LINE);
        while let Some((row, line)) = lines.next_line_with_end() {
            let (line, newline) = match line {
                Ok(line) => without_newline(line),
                Err(LineError::LineTooLong) => {
                    ctx.error(self.at(super::scan::line_too_long(row)).line(row));
                    // The lines after it are not read: nothing can carry them.
                    ctx.left_unread.push(self.entry.to_owned());
                    break;
                }
                // About the input, not the line: every line before was
                // checked; `row` is the line it was reading.
                Err(LineError::Read(e)) => {
                    ctx.read_error(self.at(read_failed(e)).line(row));
                    break;
                }
            };
            if row == 1 && line.starts_with(BOM) {
                ctx.error(self.at(bom_refused()).line(1));
                break;
            }
            if !self.document(line, newline, row, row, ctx, sink)? {
                break;
            }
        }
        ctx.counts[0].1 = lines.bytes_consumed();
        Ok(())
    }

    fn json_array(
        &mut self,
        array: ArrayFile,
        ctx: &mut Context,
        sink: &mut dyn Sink,
    ) -> Result<(), ScanStop> {
        let ArrayFile { bytes, failed } = array;
        if let Some(e) = failed {
            // The file is read whole before it is parsed: the failure is on
            // the line reading had reached (what was read is kept), as a
            // JSONL file's is.
            let line = line_ends(&bytes, &mut false) + 1;
            ctx.read_error(self.at(read_failed(e)).line(line));
            return Ok(());
        }
        if bytes.len() as u64 > MAX_JSON_ARRAY {
            // The file's size where it is known; reading stopped past the limit.
            let size = ctx.progress.bytes_total.max(bytes.len() as u64);
            ctx.error(self.at(Finding::new(
                Code::JsonArrayTooLarge,
                format!(
                    "Import is too large for JSON ({size} bytes > maximum 16 MiB). Consider converting data to JSONLines"
                ),
            )));
            ctx.left_unread.push(self.entry.to_owned());
            return Ok(());
        }
        ctx.counts[0].1 = bytes.len() as u64;
        if bytes.starts_with(BOM) {
            ctx.error(self.at(bom_refused()).line(1));
            return Ok(());
        }
        let text = match std::str::from_utf8(&bytes) {
            Ok(text) => text,
            Err(e) => {
                // Convex parses the bytes as JSON, which refuses bad UTF-8
                // (or whatever comes first) as not JSON.
                let finding = match serde_json::from_slice::<serde_json::Value>(&bytes) {
                    // A file saved as UTF-16 is told so, after Convex's message.
                    Err(e) if starts_as_utf16(&bytes) => Finding::new(
                        Code::NotJson,
                        format!("Not valid JSON: {e}; the file {UTF16_HINT}"),
                    )
                    .line(physical_line(&bytes, &e)),
                    Err(e) => Finding::new(Code::NotJson, format!("Not valid JSON: {e}"))
                        .line(physical_line(&bytes, &e)),
                    Ok(_) => Finding::new(Code::NotUtf8, format!("Import wasn't valid UTF8: {e}")),
                };
                ctx.error(self.at(finding));
                return Ok(());
            }
        };
        // Convex parses the whole file into values, where nesting stops at
        // serde_json's limit (128 levels, the array's own included); a raw
        // parse has no limit, so deep files are parsed as values first.
        let parsed = match nesting_depth(text.as_bytes()) {
            0..128 => serde_json::from_str::<&RawValue>(text),
            _ => serde_json::from_str::<serde_json::Value>(text)
                .and_then(|_| serde_json::from_str::<&RawValue>(text)),
        };
        let whole = match parsed {
            Ok(whole) => whole,
            Err(e) => {
                ctx.error(
                    self.at(Finding::new(Code::NotJson, format!("Not valid JSON: {e}")))
                        .line(physical_line(text.as_bytes(), &e)),
                );
                return Ok(());
            }
        };
        let rows: Vec<&RawValue> = match serde_json::from_str(whole.get()) {
            Ok(rows) => rows,
            Err(_) => {
                ctx.error(self.at(Finding::new(Code::NotJsonArray, "Not a JSON array")));
                return Ok(());
            }
        };
        // Elements are placed on their lines, which a `\r\n`, a `\n` or a
        // `\r` alone ends; a file without a `\r` (the usual) has only `\n`s
        // to count, which is faster.
        let has_cr = memchr::memchr(b'\r', text.as_bytes()).is_some();
        let mut after_cr = false;
        let mut line = 1u64;
        let mut counted_to = 0usize;
        for (i, raw) in rows.iter().enumerate() {
            let element = raw.get();
            let offset = element.as_ptr() as usize - text.as_ptr() as usize;
            let between = &text.as_bytes()[counted_to..offset];
            line += match has_cr {
                true => line_ends(between, &mut after_cr),
                false => memchr::memchr_iter(b'\n', between).count() as u64,
            };
            counted_to = offset;
            // JSON strings hold no raw line breaks: any in the element are whitespace.
            let one_line;
            let element = if element.contains(['\n', '\r']) {
                one_line = element.replace(['\n', '\r'], " ");
                one_line.as_str()
            } else {
                element
            };
            self.document(element.as_bytes(), false, i as u64 + 1, line, ctx, sink)?;
        }
        Ok(())
    }

    fn csv<R: Read>(
        &mut self,
        input: R,
        optional: &[String],
        ctx: &mut Context,
        sink: &mut dyn Sink,
    ) -> Result<(), ScanStop> {
        // A byte order mark at the start is skipped, as Convex's CSV reader
        // skips it (one: a second is in the first header).
        let mut rows = match CsvRows::new(input, optional) {
            Ok(rows) => rows,
            Err((line, e)) => {
                let finding = self.at(Finding::new(e.code, e.message)).field(e.field);
                ctx.read_error(finding.line(line));
                return Ok(());
            }
        };
        // A file whose cells a `;` separates (as spreadsheets save "CSV"
        // where a comma is the decimal mark) reads as one column. (A tab
        // in a header is refused, no field name holds one, and the refusal
        // says tabs seem to separate the cells.)
        if let ([name], line) = rows.header() {
            if name.contains(';') {
                ctx.warning(
                    self.at(Finding::new(
                        Code::CsvOneColumn,
                        format!(
                            "the header is one column, {name:?}, which holds ';': Convex \
                             separates CSV cells at commas only, so every row would be one field \
                             of that name; if ';' separates the cells, save the file with commas \
                             between them"
                        ),
                    ))
                    .line(line)
                    .field(Some(name.clone())),
                );
            }
        }
        // A name given to two columns: Convex keeps the last one's cells,
        // and the others' would be lost without a word.
        let (headers, line) = rows.header();
        for (last, name) in headers.iter().enumerate() {
            let earlier: Vec<String> = (0..last)
                .filter(|&c| headers[c] == *name)
                .map(|c| (c + 1).to_string())
                .collect();
            if earlier.is_empty() || headers[last + 1..].contains(name) {
                continue;
            }
            let columns = |numbers: &[String]| match numbers {
                [one] => format!("column {one}"),
                [rest @ .., last] => format!("columns {} and {last}", rest.join(", ")),
                [] => String::new(),
            };
            let all = [earlier.clone(), vec![(last + 1).to_string()]].concat();
            ctx.warning(
                self.at(Finding::new(
                    Code::CsvDuplicateHeader,
                    format!(
                        "the header names {} {name:?}: Convex keeps the cells of the last, \
                         column {}, so those of {} are not imported; give the columns different \
                         names to import them all",
                        columns(&all),
                        last + 1,
                        columns(&earlier)
                    ),
                ))
                .line(line)
                .field(Some(name.clone())),
            );
        }
        let mut json = String::new();
        let mut row = 0u64;
        while let Some(result) = rows.next_row(&mut json) {
            row += 1;
            match result {
                Ok(line) => {
                    let text = std::mem::take(&mut json);
                    self.document(text.as_bytes(), false, row, line, ctx, sink)?;
                    json = text;
                }
                Err((line, e)) => {
                    // Convex's reader stops at a row it cannot parse; nothing
                    // after an input that failed can be read.
                    let stop = matches!(e.code, Code::CsvInvalidRow | Code::ReadFailed);
                    let finding = self.at(Finding::new(e.code, e.message)).field(e.field);
                    ctx.read_error(finding.line(line));
                    if stop {
                        break;
                    }
                }
            }
        }
        // Valid to Convex, but the rows after the quote are one cell.
        if let Some(line) = rows.unclosed_quote() {
            ctx.warning(
                self.at(Finding::new(
                    Code::CsvUnclosedQuote,
                    format!(
                        "a '\"' opens a cell on line {line} and is never closed: Convex reads \
                         the rest of the file, line ends and all, into that one cell; if the \
                         lines after it are rows, close the quote (a '\"' inside a quoted cell \
                         is written '\"\"')"
                    ),
                ))
                .line(line),
            );
        }
        ctx.counts[0].1 = ctx.input.position();
        Ok(())
    }
}

/// The line of `json` that serde_json's error `e` is on, a `\r\n`, a `\n`
/// or a `\r` alone ending a line (serde_json counts only `\n`s, and its
/// column counts the bytes from the start of its line).
fn physical_line(json: &[u8], e: &serde_json::Error) -> u64 {
    let start = match e.line() {
        0 | 1 => 0,
        line => memchr::memchr_iter(b'\n', json)
            .nth(line - 2)
            .map_or(json.len(), |at| at + 1),
    };
    let at = (start + e.column()).min(json.len());
    line_ends(&json[..at], &mut false) + 1
}

/// The deepest nesting of arrays and objects in `json` (valid JSON).
fn nesting_depth(json: &[u8]) -> usize {
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for &byte in json {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}
