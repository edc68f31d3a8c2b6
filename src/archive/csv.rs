//! CSV rows as Convex types them: every cell that parses as a 64-bit float is
//! a number (non-finite ones become `null`), every other cell a string; with
//! a schema, optional fields whose value is `""` are removed.

use std::collections::HashSet;
use std::io::{self, Read};

use super::lines::{line_ends, starts_as_utf16, UTF16_HINT};
use crate::convex::names::{check_field_name, check_identifier};
use crate::convex::value::RowError;
use crate::report::Code;

/// A UTF-8 byte order mark.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// The most memory one record's cells (and their ends) may take: the
/// bound on a JSONL line. A stray `"` would otherwise read the rest of the
/// file into one cell.
const MAX_RECORD: usize = crate::validate::MAX_LINE;

/// What a header name with a tab inside it adds after Convex's message: no
/// field name holds one, and a file whose cells tabs separate (as
/// spreadsheets save "Text (tab delimited)") has them between its names.
const TAB_HINT: &str = "; the header holds a tab, which seems to separate its cells: Convex \
     separates CSV cells at commas only, so save the file with commas between them";

/// Why [`Records::read`] read no record.
enum ReadError {
    /// The input failed (a read error, or an inflate error of the stream
    /// the CSV comes from) while the record starting on `line` was read:
    /// the records before it were read whole.
    Io { error: io::Error, line: u64 },
    /// The record starting on `line` (the reader's `numbered`) is over
    /// [`MAX_RECORD`]; nothing after it is read.
    TooLarge { line: u64, numbered: u64 },
}

impl ReadError {
    /// As the row error it is, with its line: a failed input is no CSV
    /// error of a row, but the read error it is ([`Code::ReadFailed`], as
    /// for any input), on the line it was reading.
    fn into_row_error(self) -> (u64, RowError) {
        match self {
            ReadError::Io { error, line } => (
                line,
                RowError::new(Code::ReadFailed, format!("cannot read the input: {error}")),
            ),
            ReadError::TooLarge { line, numbered } => (
                line,
                RowError::new(
                    Code::ValueTooLargeError,
                    format!(
                        "CSV row {numbered} is longer than {MAX_RECORD} bytes, the longest row \
                         snappack reads (its own bound on memory; a `\"` that opens a field and \
                         is never closed makes the rest of the file one field), so the rows \
                         after it are not read"
                    ),
                ),
            ),
        }
    }
}

/// Reads CSV rows and renders each as the JSON object Convex would build.
pub struct CsvRows<R: Read> {
    records: Records<R>,
    /// Distinct header names in first-appearance order, each with the column
    /// that supplies its value (the last column of that name wins).
    columns: Vec<(String, usize)>,
    /// Every column's header name, for errors.
    headers: Vec<String>,
    /// The header's physical line.
    header_line: u64,
    drop_when_empty: HashSet<String>,
}

impl<R: Read> CsvRows<R> {
    /// Reads the header row. `optional_fields` are the table's optional
    /// top-level fields from the schema (empty without a schema). An error
    /// comes with the header's physical line, past the blank lines before it.
    pub fn new(input: R, optional_fields: &[String]) -> Result<Self, (u64, RowError)> {
        let mut records = Records::new(input);
        // An input without a record has a header without cells.
        let (line, at) = match records.read() {
            Ok(Some(at)) => (at.line, at),
            Ok(None) => (1, At::default()),
            Err(e) => return Err(e.into_row_error()),
        };
        // The whole header is read as text before any name is checked.
        if let Some((_, mut error)) = records.utf8_error(&at) {
            // A file saved as UTF-16 is told so, after Convex's message.
            if at.byte == 0 && records.len() > 0 && starts_as_utf16(records.cell(0)) {
                error.message = format!("{}; the file {UTF16_HINT}", error.message);
            }
            return Err((line, error));
        }
        let mut columns: Vec<(String, usize)> = Vec::new();
        let mut headers = Vec::with_capacity(records.len());
        for index in 0..records.len() {
            // UTF-8, checked above.
            let text = std::str::from_utf8(records.cell(index)).unwrap_or_default();
            let name = text.trim_matches(' ');
            if let Err(reason) = check_field_name(name) {
                let mut message = format!("CSV header {name:?} isn't a valid field name: {reason}");
                // A tab-separated file has names with tabs between them
                // (a tab at either end of a name is not that).
                if name.trim_matches('\t').contains('\t') {
                    message.push_str(TAB_HINT);
                }
                // A quote never closed makes the rest of the file a name.
                if let Some(quote) = records
                    .unclosed_quote
                    .filter(|_| index + 1 == records.len())
                {
                    message.push_str(&format!(
                        "; the '\"' that opens it on line {quote} is never closed, so the rest of \
                         the file is in it"
                    ));
                }
                let error = RowError::new(Code::CsvInvalidHeader, message);
                return Err((line, error.at(Some(name.to_owned()))));
            }
            headers.push(name.to_owned());
            match columns.iter_mut().find(|(n, _)| n == name) {
                Some(slot) => slot.1 = index,
                None => columns.push((name.to_owned(), index)),
            }
        }
        let drop_when_empty = optional_fields
            .iter()
            .filter(|f| check_identifier(f).is_ok())
            .cloned()
            .collect();
        Ok(CsvRows {
            records,
            columns,
            headers,
            header_line: line,
            drop_when_empty,
        })
    }

    /// The line of a `"` that opened a cell and was never closed, once the
    /// last row is read: Convex's reader, as this one, takes the rest of
    /// the file, line ends and all, as that cell.
    pub fn unclosed_quote(&self) -> Option<u64> {
        self.records.unclosed_quote
    }

    /// The header's names, one a column, trimmed, and its physical line.
    pub fn header(&self) -> (&[String], u64) {
        (&self.headers, self.header_line)
    }

    /// Renders the next row as a JSON object into `out` (cleared first) and
    /// returns the row's physical line number, or `None` at the end. An error
    /// comes with the line it was found on (when the input failed, the line
    /// it was reading: [`Code::ReadFailed`]).
    ///
    /// Messages number rows as Convex's do, by the CSV reader's count, which
    /// counts `\n`s only and starts a record where the one before it ended:
    /// before the blank lines it skips, and, after a `\r\n`, before its
    /// `\n`. The line returned is where the record is, a `\r` alone ending
    /// a line too.
    pub fn next_row(&mut self, out: &mut String) -> Option<Result<u64, (u64, RowError)>> {
        let at = match self.records.read() {
            Ok(None) => return None,
            Ok(Some(at)) => at,
            Err(e) => return Some(Err(e.into_row_error())),
        };
        let (numbered, line) = (at.numbered, at.line);
        if self.records.len() != self.headers.len() {
            return Some(Err((
                line,
                RowError::new(
                    Code::CsvRowMissingFields,
                    format!("CSV row {numbered} doesn't have all of the fields in the header"),
                ),
            )));
        }
        // Every cell is read as text, those of a column whose name a later
        // column repeats too.
        if let Some((index, error)) = self.records.utf8_error(&at) {
            return Some(Err((line, error.at(Some(self.headers[index].clone())))));
        }
        out.clear();
        out.push('{');
        let mut first = true;
        for (name, column) in &self.columns {
            // UTF-8, checked above.
            let cell = std::str::from_utf8(self.records.cell(*column)).unwrap_or_default();
            if cell.is_empty() && self.drop_when_empty.contains(name) {
                continue;
            }
            if !first {
                out.push(',');
            }
            first = false;
            push_json_string(out, name);
            out.push(':');
            push_cell(out, cell);
        }
        out.push('}');
        Some(Ok(line))
    }
}

/// Where a record is: as Convex's CSV reader places it in its messages,
/// and the physical line it starts on.
#[derive(Clone, Copy, Default)]
struct At {
    /// The reader's number for its line: its count of `\n`s before the
    /// record, plus one.
    numbered: u64,
    /// The records read before it (the header is record 0).
    record: u64,
    /// The bytes the parser was given before it (a byte order mark too).
    byte: u64,
    /// The line it starts on, counting `\r\n`, `\n` and `\r` alone.
    line: u64,
}

/// CSV records as Convex's CSV reader parses them (csv-core, with the
/// defaults Convex's reader keeps, records of any length, and one UTF-8
/// byte order mark at the start skipped), each with the line it is on,
/// counted in the bytes as the parser passes them. A line ends at a `\n`,
/// a `\r\n` or a `\r` alone, as the parser ends records (its own count
/// has only `\n`s).
struct Records<R> {
    input: R,
    parser: csv_core::Reader,
    /// Bytes read from `input`, of which `buffer[at..filled]` are not parsed yet.
    buffer: Box<[u8]>,
    at: usize,
    filled: usize,
    /// Whether the parser has been given bytes.
    started: bool,
    /// Whether a record was too large: nothing after it is read.
    stopped: bool,
    /// Whether the bytes parsed so far end inside a quoted cell.
    quotes: Quotes,
    /// The line of a `"` that opened the last record's last cell and was
    /// never closed, once that record is read.
    unclosed_quote: Option<u64>,
    /// The cells of the record read last, end to end, and where each ends.
    cells: Vec<u8>,
    ends: Vec<usize>,
    len: usize,
    /// The lines ended in the bytes parsed so far.
    lines: u64,
    /// Whether the last byte parsed is a `\r`, whose line a `\n` right
    /// after it does not end again.
    after_cr: bool,
    /// The bytes given to the parser and the records it read so far.
    consumed: u64,
    records: u64,
}

impl<R: Read> Records<R> {
    fn new(input: R) -> Self {
        Records {
            input,
            parser: csv_core::Reader::new(),
            buffer: vec![0; 64 << 10].into_boxed_slice(),
            at: 0,
            filled: 0,
            started: false,
            stopped: false,
            quotes: Quotes::default(),
            unclosed_quote: None,
            cells: vec![0; 1024],
            ends: vec![0; 64],
            len: 0,
            lines: 0,
            after_cr: false,
            consumed: 0,
            records: 0,
        }
    }

    /// Reads the next record; returns where it is, or `None` at the end.
    fn read(&mut self) -> Result<Option<At>, ReadError> {
        use csv_core::ReadRecordResult;
        if self.stopped {
            return Ok(None);
        }
        let (numbered, record, byte) = (self.parser.line(), self.records, self.consumed);
        let mut line = None;
        let (mut written, mut ended) = (0, 0);
        loop {
            if self.at == self.filled {
                let lines = self.lines;
                self.fill().map_err(|error| ReadError::Io {
                    error,
                    line: line.unwrap_or(lines + 1),
                })?;
            }
            let input = &self.buffer[self.at..self.filled];
            // At the end of the input, whether the record ends inside a
            // quoted cell (the parser ends it there, as Convex's reader does).
            let unclosed = input.is_empty() && self.quotes.open();
            // The parser skips a byte order mark its first bytes start with.
            let bom = !self.started && input.starts_with(BOM);
            self.started = true;
            let (result, read, out, end) =
                self.parser
                    .read_record(input, &mut self.cells[written..], &mut self.ends[ended..]);
            self.at += read;
            self.consumed += read as u64;
            written += out;
            ended += end;
            let mut passed = &input[..read];
            if bom {
                passed = &passed[BOM.len()..];
            }
            self.quotes.pass(passed);
            if line.is_none() {
                // The blank lines the parser skips: the record starts at
                // the first byte that ends no line (a field that starts
                // with one is quoted).
                let blank = passed.iter().take_while(|&&b| b == b'\r' || b == b'\n');
                let (skipped, rest) = passed.split_at(blank.count());
                self.lines += line_ends(skipped, &mut self.after_cr);
                if !rest.is_empty() {
                    line = Some(self.lines + 1);
                }
                passed = rest;
            }
            self.lines += line_ends(passed, &mut self.after_cr);
            match result {
                ReadRecordResult::InputEmpty => {}
                ReadRecordResult::OutputFull | ReadRecordResult::OutputEndsFull
                    if self.cells.len() + self.ends.len() * size_of::<usize>() >= MAX_RECORD =>
                {
                    self.stopped = true;
                    let line = line.unwrap_or(self.lines + 1);
                    return Err(ReadError::TooLarge { line, numbered });
                }
                ReadRecordResult::OutputFull => self.cells.resize(self.cells.len() * 2, 0),
                ReadRecordResult::OutputEndsFull => self.ends.resize(self.ends.len() * 2, 0),
                ReadRecordResult::Record => {
                    self.len = ended;
                    self.records += 1;
                    if unclosed && ended > 0 {
                        // The cell holds every byte after the `"` (a `""`
                        // in it is one `"`, which ends no line), so the
                        // quote is on the line its line ends go back to.
                        let after = line_ends(self.cell(ended - 1), &mut false);
                        self.unclosed_quote = Some(self.lines - after + 1);
                    }
                    return Ok(Some(At {
                        numbered,
                        record,
                        byte,
                        line: line.unwrap_or(self.lines + 1),
                    }));
                }
                ReadRecordResult::End => return Ok(None),
            }
        }
    }

    /// Reads the next bytes into the buffer (none at the end, where the
    /// parser ends the last record). The first time, more than a byte
    /// order mark when the input has more: the parser skips a mark only
    /// when it sees the whole of it, and takes what is left of its first
    /// bytes as the end of the input when that is nothing.
    fn fill(&mut self) -> io::Result<()> {
        self.at = 0;
        self.filled = 0;
        loop {
            let read = read_some(&mut self.input, &mut self.buffer[self.filled..])?;
            self.filled += read;
            if read == 0 || self.started || self.filled > BOM.len() {
                return Ok(());
            }
        }
    }

    /// The first cell of the record read last, `at`, that is not UTF-8:
    /// its index and the error Convex's reader gives, in its words (which
    /// count fields from 1).
    fn utf8_error(&self, at: &At) -> Option<(usize, RowError)> {
        (0..self.len).find_map(|index| {
            let e = std::str::from_utf8(self.cell(index)).err()?;
            let field = index + 1;
            let reason = format!(
                "CSV parse error: record {} (line {}, field: {field}, byte: {}): invalid utf-8: invalid UTF-8 in field {field} near byte index {}",
                at.record,
                at.numbered,
                at.byte,
                e.valid_up_to()
            );
            Some((index, parse_error(at.numbered, reason)))
        })
    }

    /// The number of cells of the record read last.
    fn len(&self) -> usize {
        self.len
    }

    /// Cell `index` (below [`len`](Self::len)) of the record read last.
    fn cell(&self, index: usize) -> &[u8] {
        let start = match index {
            0 => 0,
            _ => self.ends[index - 1],
        };
        &self.cells[start..self.ends[index]]
    }
}

/// Whether CSV bytes end inside a quoted cell, the quotes followed as the
/// parser follows them (which does not tell): a `"` that starts a cell opens
/// it, in it a `""` is a `"`, and a `"` before any other byte closes it (the
/// bytes after are the cell's, unquoted). Only `"`s are looked for, and
/// outside quotes the byte before each: a cell or line end (`,`, `\r`,
/// `\n`) or none (`in_cell`) before it starts a cell.
#[derive(Default)]
struct Quotes {
    /// Inside a quoted cell.
    quoted: bool,
    /// Inside a quoted cell and after a `"`: the next byte tells whether it
    /// closed the cell.
    closing: bool,
    /// Outside quotes, after a byte that is not a cell or line end: a `"`
    /// now is the cell's.
    in_cell: bool,
}

impl Quotes {
    /// Follows the quotes of the next bytes the parser is given.
    fn pass(&mut self, mut bytes: &[u8]) {
        while let Some(&first) = bytes.first() {
            if self.closing {
                self.closing = false;
                if first == b'"' {
                    // `""`: a `"` in the cell, which stays quoted.
                    bytes = &bytes[1..];
                } else {
                    // Closed; this byte is read unquoted.
                    self.quoted = false;
                    self.in_cell = true;
                }
            } else if self.quoted {
                match memchr::memchr(b'"', bytes) {
                    Some(at) => {
                        self.closing = true;
                        bytes = &bytes[at + 1..];
                    }
                    None => return,
                }
            } else {
                let ends_cell = |byte: u8| matches!(byte, b',' | b'\r' | b'\n');
                match memchr::memchr(b'"', bytes) {
                    Some(at) => {
                        self.quoted = match at {
                            0 => !self.in_cell,
                            _ => ends_cell(bytes[at - 1]),
                        };
                        self.in_cell = true;
                        bytes = &bytes[at + 1..];
                    }
                    None => {
                        self.in_cell = bytes.last().is_some_and(|&last| !ends_cell(last));
                        return;
                    }
                }
            }
        }
    }

    /// Whether the bytes so far end inside a quoted cell that a `"` has not closed.
    fn open(&self) -> bool {
        self.quoted && !self.closing
    }
}

/// Reads into `buffer`, again when interrupted.
fn read_some(input: &mut impl Read, buffer: &mut [u8]) -> io::Result<usize> {
    loop {
        match input.read(buffer) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            read => return read,
        }
    }
}

/// Row `line` cannot be read as CSV (or holds a cell that is not UTF-8).
fn parse_error(line: u64, e: impl std::fmt::Display) -> RowError {
    RowError::new(
        Code::CsvInvalidRow,
        format!("Failed to parse CSV row {line}: {e}"),
    )
}

/// A cell as Convex types it: a float when Rust's `f64` parser takes the
/// whole cell (`null` when not finite), otherwise the string itself.
fn push_cell(out: &mut String, cell: &str) {
    match cell.parse::<f64>() {
        // A finite float always prints with a `.` or an exponent, so it reads back as a Float64.
        Ok(number) if number.is_finite() => {
            out.push_str(&serde_json::to_string(&number).unwrap_or_default())
        }
        Ok(_) => out.push_str("null"),
        Err(_) => push_json_string(out, cell),
    }
}

fn push_json_string(out: &mut String, text: &str) {
    // Serializing a &str to JSON cannot fail.
    out.push_str(&serde_json::to_string(text).unwrap_or_default());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(csv: &str, optional: &[&str]) -> Vec<Result<String, RowError>> {
        let optional: Vec<String> = optional.iter().map(|s| s.to_string()).collect();
        let mut reader = match CsvRows::new(csv.as_bytes(), &optional) {
            Ok(r) => r,
            Err((_, e)) => return vec![Err(e)],
        };
        let mut out = String::new();
        let mut all = Vec::new();
        while let Some(row) = reader.next_row(&mut out) {
            all.push(row.map(|_| out.clone()).map_err(|(_, e)| e));
        }
        all
    }

    #[test]
    fn types_cells_like_convex() {
        let got = rows(
            "\na,b,c\n1,a string i guess,1.2\n5.10,-100,\"a string in quotes\"\n",
            &[],
        );
        assert_eq!(
            got,
            vec![
                Ok(r#"{"a":1.0,"b":"a string i guess","c":1.2}"#.to_owned()),
                Ok(r#"{"a":5.1,"b":-100.0,"c":"a string in quotes"}"#.to_owned()),
            ]
        );
        let got = rows("\na,b,c,d\n\"\",,\"\"\"\",\"\"\"\"\"\"\n", &[]);
        assert_eq!(
            got,
            vec![Ok(r#"{"a":"","b":"","c":"\"","d":"\"\""}"#.to_owned())]
        );
        let got = rows("x,y,z,w,v\nNaN,inf,1.,.5,0x10\n", &[]);
        assert_eq!(
            got,
            vec![Ok(
                r#"{"x":null,"y":null,"z":1.0,"w":0.5,"v":"0x10"}"#.to_owned()
            )]
        );
        let got = rows("x,y\n\" 1\",1_000\n", &[]);
        assert_eq!(got, vec![Ok(r#"{"x":" 1","y":"1_000"}"#.to_owned())]);
    }

    #[test]
    fn removes_optional_empty_strings() {
        let got = rows(
            "\na,b,c,d\n\"\",,\"\"\"\",\"\"\"\"\"\"\n",
            &["a", "b", "c", "d"],
        );
        assert_eq!(got, vec![Ok(r#"{"c":"\"","d":"\"\""}"#.to_owned())]);
        let got = rows("a,b\n\"\",\n", &["a"]);
        assert_eq!(got, vec![Ok(r#"{"b":""}"#.to_owned())]);
    }

    #[test]
    fn a_row_over_the_bound_is_refused_and_ends_the_file() {
        // A `"` never closed: the rest of the input would be one cell.
        let input = io::Cursor::new(&b"a\n1\n\"x"[..])
            .chain(io::repeat(b'y').take(MAX_RECORD as u64))
            .chain(&b"\n2\n"[..]);
        let mut reader = CsvRows::new(input, &[]).expect("header");
        let mut out = String::new();
        assert!(matches!(reader.next_row(&mut out), Some(Ok(2))));
        let (line, error) = reader.next_row(&mut out).unwrap().unwrap_err();
        assert_eq!((line, error.code), (3, Code::ValueTooLargeError));
        assert!(
            error.message.starts_with("CSV row 3 is longer than"),
            "{}",
            error.message
        );
        assert!(reader.next_row(&mut out).is_none());
        // Many empty cells take memory too (their ends).
        let input = io::Cursor::new(&b"a\n"[..]).chain(io::repeat(b',').take(MAX_RECORD as u64));
        let mut reader = CsvRows::new(input, &[]).expect("header");
        let (line, error) = reader.next_row(&mut out).unwrap().unwrap_err();
        assert_eq!((line, error.code), (2, Code::ValueTooLargeError));
    }

    #[test]
    fn header_and_row_errors() {
        let got = rows("ok,$bad\n1,2\n", &[]);
        assert_eq!(got[0].as_ref().unwrap_err().code, Code::CsvInvalidHeader);
        assert_eq!(
            got[0].as_ref().unwrap_err().message,
            "CSV header \"$bad\" isn't a valid field name: Field name $bad starts with '$', which is reserved."
        );
        let got = rows("a,b\n1,2\n3\n4,5,6\n", &[]);
        assert!(got[0].is_ok());
        let e = got[1].as_ref().unwrap_err();
        assert_eq!(e.code, Code::CsvRowMissingFields);
        assert_eq!(
            e.message,
            "CSV row 3 doesn't have all of the fields in the header"
        );
        assert_eq!(got[2].as_ref().unwrap_err().code, Code::CsvRowMissingFields);
        let got = rows(" a ,a\n1,2\n", &[]);
        assert_eq!(got, vec![Ok(r#"{"a":2.0}"#.to_owned())]);
        assert!(rows("", &[]).is_empty());
        assert!(rows("\u{feff}", &[]).is_empty());
    }

    /// A cell that is not UTF-8 is refused in the words of Convex's reader,
    /// csv-async, whose positions are the csv crate's (which counts fields
    /// from 0 where csv-async counts them from 1): the record, the reader's
    /// line, the field and the byte where the record starts, a byte order
    /// mark and the blank lines before it included.
    #[test]
    fn cells_not_utf8_are_refused_as_convex_words_it() {
        fn expected(input: &[u8]) -> String {
            let mut reader = ::csv::Reader::from_reader(input);
            let error = match reader.headers() {
                Err(e) => e,
                Ok(_) => reader
                    .records()
                    .find_map(Result::err)
                    .expect("a record that is not UTF-8"),
            };
            let ::csv::ErrorKind::Utf8 {
                pos: Some(pos),
                err,
            } = error.kind()
            else {
                panic!("{error}");
            };
            let field = err.field() + 1;
            format!(
                "Failed to parse CSV row {line}: CSV parse error: record {} (line {line}, field: {field}, byte: {}): invalid utf-8: invalid UTF-8 in field {field} near byte index {}",
                pos.record(),
                pos.byte(),
                err.valid_up_to(),
                line = pos.line(),
            )
        }
        for input in [
            &b"a\n\xff\n"[..],
            b"a,\xff\n1,2\n",
            b"\n\nok,$bad,x\xffy\n1,2,3\n",
            b"\xEF\xBB\xBFa,b\r\n\r\n1,2\r\n3,x\xffy\r\n",
            b"\n\na,b\n\n1,2\n\"q\nr\",ab\xc3\n",
            b"a\r1\r\r\xff\r",
            b"x,y\n1,2\n3,4\n\"\xc3\xa9\",5\n\"\xc3\",5\n",
        ] {
            let mut got = None;
            match CsvRows::new(input, &[]) {
                Err((_, e)) => got = Some(e),
                Ok(mut rows) => {
                    let mut out = String::new();
                    while let Some(row) = rows.next_row(&mut out) {
                        if let Err((_, e)) = row {
                            got = Some(e);
                            break;
                        }
                    }
                }
            }
            let got = got.expect("an error");
            assert_eq!(got.code, Code::CsvInvalidRow);
            assert_eq!(got.message, expected(input), "{input:?}");
        }
    }

    /// Lines where the records are, whatever the reader's own count, which
    /// the messages keep, as Convex's do; the same when the input comes a
    /// byte at a time (a `\r\n` split between reads, a record across them).
    #[test]
    fn rows_are_placed_on_their_physical_lines() {
        fn placed(input: impl Read) -> Vec<(u64, Option<u64>)> {
            let mut reader = CsvRows::new(input, &[]).map_err(|(_, e)| e).unwrap();
            let mut out = String::new();
            let mut got = Vec::new();
            while let Some(row) = reader.next_row(&mut out) {
                got.push(match row {
                    Ok(line) => (line, None),
                    Err((line, e)) => {
                        assert_eq!(e.code, Code::CsvRowMissingFields);
                        let numbered = e.message.split(' ').nth(2).unwrap().parse::<u64>().unwrap();
                        (line, Some(numbered))
                    }
                });
            }
            got
        }
        /// One byte a read, after an interruption.
        struct Trickle<'a>(&'a [u8], bool);
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                self.1 = !self.1;
                if self.1 {
                    return Err(io::ErrorKind::Interrupted.into());
                }
                let n = self.0.len().min(buf.len()).min(1);
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        for (csv, expected) in [
            ("a,b\n1,2\n3\n", vec![(2, None), (3, Some(3))]),
            ("a,b\r\n1,2\r\n3\r\n", vec![(2, None), (3, Some(2))]),
            ("\n\na,b\n\n1,2\n\n\n3\n", vec![(5, None), (8, Some(6))]),
            ("a,b\n\"x\ny\",2\n\n3", vec![(2, None), (5, Some(4))]),
            ("a,b\r\n\r\n1,2\r\n\r\n3\r\n", vec![(3, None), (5, Some(3))]),
            // A `\r` alone ends a line too (the reader's count has none).
            ("a,b\r1,2\r3\r", vec![(2, None), (3, Some(1))]),
            (
                "a,b\r\r1,2\n\r\n3\r\"x\ry\",1\r\r",
                vec![(3, None), (5, Some(2)), (6, None)],
            ),
            ("a,b\n\"x\r\ny\r\",2\r\n\r3", vec![(2, None), (6, Some(3))]),
        ] {
            assert_eq!(placed(csv.as_bytes()), expected, "{csv:?}");
            assert_eq!(placed(Trickle(csv.as_bytes(), false)), expected, "{csv:?}");
            // After a byte order mark, which is skipped even a byte a read.
            let marked = [BOM, csv.as_bytes()].concat();
            assert_eq!(placed(&marked[..]), expected, "{csv:?}");
            assert_eq!(placed(Trickle(&marked, false)), expected, "{csv:?}");
        }
        // A record longer than the reader's buffer, after one as wide as it.
        let wide = format!(
            "a,b\n{},2\r\n\r\n{}\n",
            "x".repeat(200_000),
            "y,".repeat(50_000)
        );
        assert_eq!(placed(wide.as_bytes()), [(2, None), (4, Some(2))]);
    }

    /// `Quotes` follows quotes as the parser does: on every input of up to
    /// five bytes of `"`, `,`, `\r`, `\n` and `a`, given in two parts cut
    /// anywhere, it ends inside a quoted cell when the parser does. The
    /// parser does not tell, but copies of one that keeps its state as a
    /// value (its NFA; the DFA's copy is not whole) can be asked: only inside
    /// a quoted cell does `"` and a line end end the record (the `"` closes
    /// the cell) where a line end alone does not (it is the cell's).
    #[test]
    fn quotes_are_followed_as_the_parser_follows_them() {
        fn parser_in_quotes(input: &[u8]) -> bool {
            let mut parser = csv_core::ReaderBuilder::new().nfa(true).build();
            let (mut cells, mut ends) = ([0u8; 64], [0usize; 64]);
            let mut rest = input;
            while !rest.is_empty() {
                let (_, read, _, _) = parser.read_record(rest, &mut cells, &mut ends);
                rest = &rest[read..];
            }
            let mut ends_record = |probe: &[u8]| {
                let (result, ..) = parser.clone().read_record(probe, &mut cells, &mut ends);
                result == csv_core::ReadRecordResult::Record
            };
            ends_record(b"\"\n") && !ends_record(b"\n")
        }
        let alphabet = *b"\",\r\na";
        let mut inputs = vec![Vec::new()];
        let (mut checked, mut open) = (0, 0);
        for _ in 0..5 {
            inputs = inputs
                .iter()
                .flat_map(|input| {
                    alphabet
                        .iter()
                        .map(move |&b| [input.as_slice(), &[b]].concat())
                })
                .collect();
            for input in &inputs {
                let expected = parser_in_quotes(input);
                open += usize::from(expected);
                for cut in 0..=input.len() {
                    let mut quotes = Quotes::default();
                    quotes.pass(&input[..cut]);
                    quotes.pass(&input[cut..]);
                    assert_eq!(
                        quotes.open(),
                        expected,
                        "{:?} cut at {cut}",
                        input.escape_ascii().to_string()
                    );
                    checked += 1;
                }
            }
        }
        assert!(checked > 10_000 && open > 1_000, "{checked} {open}");
    }

    /// An input that fails (an I/O error, or a deflate stream that is
    /// corrupt) is not a CSV row that does not parse: it is `ReadFailed`, on
    /// the line the reader reached, and nothing after it is read.
    #[test]
    fn a_failing_input_is_a_read_error_on_the_line_reached() {
        /// `bytes`, then an error instead of the rest.
        struct Fails<'a>(&'a [u8]);
        impl Read for Fails<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if self.0.is_empty() {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "corrupt deflate stream",
                    ));
                }
                let n = buf.len().min(self.0.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        // In the header.
        let Err((line, error)) = CsvRows::new(Fails(b"a,"), &[]) else {
            panic!("a header that cannot be read");
        };
        assert_eq!((line, error.code), (1, Code::ReadFailed));
        assert_eq!(
            error.message,
            "cannot read the input: corrupt deflate stream"
        );
        // In a row: the rows before it were read; the one it was in is named.
        let mut rows = CsvRows::new(Fails(b"a,b\n1,2\r\n\n3,\"x\ny"), &[]).expect("a header");
        let mut out = String::new();
        assert_eq!(rows.next_row(&mut out).map(|r| r.ok()), Some(Some(2)));
        let Some(Err((line, error))) = rows.next_row(&mut out) else {
            panic!("a row that cannot be read");
        };
        assert_eq!((line, error.code), (4, Code::ReadFailed));
        assert_eq!(
            error.message,
            "cannot read the input: corrupt deflate stream"
        );
    }
}
