//! CSV rows as Convex types them: every cell that parses as a 64-bit float is
//! a number (non-finite ones become `null`), every other cell a string; with
//! a schema, optional fields whose value is `""` are removed.

use std::collections::{HashSet, VecDeque};
use std::io::{self, Read};

use crate::convex::names::{check_field_name, check_identifier};
use crate::convex::value::RowError;
use crate::report::Code;

/// Reads CSV rows and renders each as the JSON object Convex would build.
pub struct CsvRows<R: Read> {
    reader: csv::Reader<LineCounter<R>>,
    record: csv::ByteRecord,
    /// Distinct header names in first-appearance order, each with the column
    /// that supplies its value (the last column of that name wins).
    columns: Vec<(String, usize)>,
    /// Every column's header name, for errors.
    headers: Vec<String>,
    width: usize,
    drop_when_empty: HashSet<String>,
}

impl<R: Read> CsvRows<R> {
    /// Reads the header row. `optional_fields` are the table's optional
    /// top-level fields from the schema (empty without a schema). An error
    /// comes with the header's physical line, past the blank lines before it.
    pub fn new(input: R, optional_fields: &[String]) -> Result<Self, (u64, RowError)> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(true)
            .from_reader(LineCounter::new(input));
        let header = match reader.byte_headers() {
            Ok(h) => h.clone(),
            Err(e) => return Err((1, parse_error(1, e))),
        };
        let line = match header.position() {
            Some(p) => reader.get_mut().line_at(p.byte()),
            None => 1,
        };
        let mut columns: Vec<(String, usize)> = Vec::new();
        let mut headers = Vec::with_capacity(header.len());
        for (index, cell) in header.iter().enumerate() {
            let text = std::str::from_utf8(cell).map_err(|e| (line, parse_error(1, e)))?;
            let name = text.trim_matches(' ');
            if let Err(reason) = check_field_name(name) {
                let error = RowError::new(
                    Code::CsvInvalidHeader,
                    format!("CSV header {name:?} isn't a valid field name: {reason}"),
                );
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
            reader,
            record: csv::ByteRecord::new(),
            width: header.len(),
            columns,
            headers,
            drop_when_empty,
        })
    }

    /// Renders the next row as a JSON object into `out` (cleared first) and
    /// returns the row's physical line number, or `None` at the end. An error
    /// comes with the line it was found on.
    ///
    /// Messages number rows as Convex's do, by the CSV reader's count, which
    /// counts `\n`s only and starts a record where the one before it ended:
    /// before the blank lines it skips, and, after a `\r\n`, before its
    /// `\n`. The line returned is where the record is, a `\r` alone ending
    /// a line too.
    pub fn next_row(&mut self, out: &mut String) -> Option<Result<u64, (u64, RowError)>> {
        match self.reader.read_byte_record(&mut self.record) {
            Ok(false) => return None,
            Ok(true) => {}
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                return Some(Err((line, parse_error(line, e))));
            }
        }
        let (numbered, line) = match self.record.position() {
            Some(p) => (p.line(), self.reader.get_mut().line_at(p.byte())),
            None => (0, 0),
        };
        if self.record.len() != self.width {
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
        for (cell, name) in self.record.iter().zip(&self.headers) {
            if let Err(e) = std::str::from_utf8(cell) {
                return Some(Err((line, parse_error(numbered, e).at(Some(name.clone())))));
            }
        }
        out.clear();
        out.push('{');
        let mut first = true;
        for (name, column) in &self.columns {
            // UTF-8, checked above.
            let cell = std::str::from_utf8(&self.record[*column]).unwrap_or_default();
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

/// Counts the lines of what the CSV reader reads, to tell the line a record
/// starts on from where the reader started reading it. It keeps the bytes
/// read since the last record asked about (that record's rest and the
/// reader's read-ahead). A line ends at a `\n`, a `\r\n` or a `\r` alone,
/// as the CSV reader ends records (it counts only `\n`s).
struct LineCounter<R> {
    inner: R,
    /// The bytes read from offset `start` on.
    window: VecDeque<u8>,
    start: u64,
    /// The lines ended before `start`.
    lines: u64,
    /// Whether the byte before `start` is a `\r`, whose line a `\n` right
    /// after it does not end again.
    after_cr: bool,
}

impl<R> LineCounter<R> {
    fn new(inner: R) -> Self {
        LineCounter {
            inner,
            window: VecDeque::new(),
            start: 0,
            lines: 0,
            after_cr: false,
        }
    }

    /// The line (from 1) of the record the reader started reading at byte
    /// `offset`: past the `\r` and `\n` there, which end lines and which
    /// no record starts with (a field that does is quoted). Offsets asked
    /// about only grow.
    fn line_at(&mut self, offset: u64) -> u64 {
        let passed = (offset.saturating_sub(self.start) as usize).min(self.window.len());
        self.lines += line_ends(self.window.drain(..passed), &mut self.after_cr);
        self.start += passed as u64;
        let mut after_cr = self.after_cr;
        let blank = self
            .window
            .iter()
            .copied()
            .take_while(|&b| b == b'\n' || b == b'\r');
        self.lines + line_ends(blank, &mut after_cr) + 1
    }
}

/// The lines `bytes` end; `after_cr` says whether the byte before them is
/// a `\r`, and then whether their last one is.
fn line_ends(bytes: impl Iterator<Item = u8>, after_cr: &mut bool) -> u64 {
    let mut ends = 0;
    for byte in bytes {
        ends += u64::from(byte == b'\r' || (byte == b'\n' && !*after_cr));
        *after_cr = byte == b'\r';
    }
    ends
}

impl<R: Read> Read for LineCounter<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.window.extend(&buf[..n]);
        Ok(n)
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
    }

    /// Lines where the records are, whatever the reader's own count, which
    /// the messages keep, as Convex's do.
    #[test]
    fn rows_are_placed_on_their_physical_lines() {
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
            let mut reader = CsvRows::new(csv.as_bytes(), &[]).unwrap();
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
            assert_eq!(got, expected, "{csv:?}");
        }
    }
}
