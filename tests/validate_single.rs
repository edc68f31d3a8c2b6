//! Single-table inputs: JSONL, JSON arrays and CSV.

mod common;

use common::*;
use snappack::report::{Code, NumberSource};
use snappack::validate::{FieldSchema, Options, Schema, TableSchema};

fn into(table: &str) -> Options {
    Options {
        table: Some(table.into()),
        ..Options::default()
    }
}

#[test]
fn jsonl_rows() {
    let report = check_with(
        "t.jsonl",
        b"{\"name\":\"test\",\"value\":42}\n{\"name\":\"hello\",\"value\":123}\n",
        &into("t"),
    );
    assert!(report.valid, "{:?}", report.errors);
    assert_eq!(report.tables[0].documents, 2);
    let report = check_with("t.jsonl", b"\xEF\xBB\xBF{\"a\":1}\n", &into("t"));
    assert_eq!(codes(&report), vec![Code::Utf8BomNotSupported]);
    assert_eq!(report.errors[0].line, Some(1));
    let report = check_with(
        "t.jsonl",
        b"{\"a\":1}\n\n{\"a\":2}\n{\"a\":\xff}\n",
        &into("t"),
    );
    assert_eq!(codes(&report), vec![Code::JsonInvalidRow, Code::NotUtf8]);
    assert_eq!(report.errors[0].line, Some(2));
    assert!(
        !report.errors[1].message.contains("UTF-16"),
        "{}",
        report.errors[1].message
    );
    // A file saved as UTF-16 is told so, in either byte order.
    for utf16 in [
        b"\xFF\xFE{\x00\"\x00a\x00\"\x00:\x001\x00}\x00\n\x00".as_slice(),
        b"\xFE\xFF\x00{\x00\"\x00a\x00\"\x00:\x001\x00}\x00\n".as_slice(),
    ] {
        let report = check_with("t.jsonl", utf16, &into("t"));
        assert_eq!(codes(&report), vec![Code::NotUtf8]);
        assert!(
            report.errors[0]
                .message
                .ends_with("; it starts with a UTF-16 byte order mark: save it as UTF-8)"),
            "{}",
            report.errors[0].message
        );
    }
    // Bytes without a name (as the npm package may be given): findings name the input.
    let report = check_with("", b"{\"a\":1}\nnot json\n", &into("t"));
    assert_eq!(report.errors[0].entry.as_deref(), Some("input"));
    assert_eq!(report.tables[0].entries, ["input"]);
    // A line longer than any reader reads is too large a value, where it is.
    let mut long = b"{\"a\":1}\n{\"b\":\"".to_vec();
    long.resize(long.len() + (64 << 20), b'x');
    long.extend_from_slice(b"\"}\n");
    let report = check_with("t.jsonl", &long, &into("t"));
    assert_eq!(codes(&report), vec![Code::ValueTooLargeError]);
    assert_eq!(report.errors[0].line, Some(2));
    let message = &report.errors[0].message;
    assert!(message.starts_with("Row 2: line 2 is longer than 67108864 bytes, the longest line snappack reads (its own bound"), "{message}");
    assert!(!message.contains("a document can be at most"), "{message}");
    // What follows it is not read, and the report says so.
    assert!(
        message.ends_with("so the lines after it are not read and not counted"),
        "{message}"
    );
    // Every number is a Float64 without a generated schema, so an integer creation time is fine.
    let report = check_with(
        "t.jsonl",
        b"{\"_creationTime\":1700000000000}\n",
        &into("t"),
    );
    assert!(report.valid);
}

/// A row that is not an object is named by its compact JSON, as Convex
/// prints the value it parsed.
#[test]
fn rows_that_are_not_objects_are_named_as_convex_prints_them() {
    let report = check_with("t.jsonl", b"[1, {\"a\": 2}]\n1e2\n-0\n", &into("t"));
    let messages: Vec<&str> = report.errors.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(
        messages,
        vec![
            "Row 1 wasn't a valid Convex value: expected object, received [1,{\"a\":2}]",
            "Row 2 wasn't a valid Convex value: expected object, received 100.0",
            "Row 3 wasn't a valid Convex value: expected object, received -0.0",
        ]
    );
}

/// Convex prints a CSV header it refuses with `{:?}`, quotes and control
/// characters escaped.
#[test]
fn csv_headers_are_named_as_convex_prints_them() {
    let report = check_with("t.csv", b"\"a\"\"b\",\tc\n1,2\n", &into("t"));
    assert_eq!(codes(&report), vec![Code::CsvInvalidHeader]);
    assert_eq!(
        report.errors[0].message,
        "CSV header \"\\tc\" isn't a valid field name: Field name \tc has invalid character '\t': Field names can only contain non-control ASCII characters"
    );
    let report = check_with("t.csv", b"\"$a\"\"b\"\n1\n", &into("t"));
    assert_eq!(
        report.errors[0].message,
        r#"CSV header "$a\"b" isn't a valid field name: Field name $a"b starts with '$', which is reserved."#
    );
}

#[test]
fn single_table_names() {
    // Convex's code for it.
    assert_eq!(codes(&check("t.jsonl", b"{}")), vec![Code::InvalidName]);
    assert_eq!(
        check("t.jsonl", b"{}").errors[0].message,
        "JSONL import requires table name"
    );
    assert_eq!(
        codes(&check_with("t.csv", b"a\n1\n", &into("bad name"))),
        vec![Code::ImportInvalidName]
    );
    assert_eq!(
        codes(&check_with("t.json", b"[]", &into("_system"))),
        vec![Code::InvalidTableName]
    );
    assert_eq!(
        codes(&check_with("t.zip", &zip(&[]), &into("x"))),
        vec![Code::InvalidName]
    );
    // Told JSON lines by its first byte, it needs a table name too.
    assert_eq!(codes(&check("t.txt", b"{}")), vec![Code::InvalidName]);
}

#[test]
fn json_arrays() {
    let report = check_with(
        "t.json",
        b"[{\"name\":\"test\",\"value\":42},\n {\"b\":\n 2}]",
        &into("t"),
    );
    assert!(report.valid, "{:?}", report.errors);
    assert_eq!(report.tables[0].documents, 2);
    let report = check_with("t.json", b"\xEF\xBB\xBF[]", &into("t"));
    assert_eq!(codes(&report), vec![Code::Utf8BomNotSupported]);
    assert_eq!(report.errors[0].line, Some(1));
    assert_eq!(
        codes(&check_with("t.json", b"[{]", &into("t"))),
        vec![Code::NotJson]
    );
    assert_eq!(
        codes(&check_with("t.json", b"{\"a\":1}", &into("t"))),
        vec![Code::NotJsonArray]
    );
    // Convex parses the bytes as JSON: bad UTF-8 is not JSON, where it is.
    let report = check_with("t.json", b"[{\"a\":1},\n{\"b\":\"\xff\"}]", &into("t"));
    assert_eq!(codes(&report), vec![Code::NotJson]);
    assert_eq!(
        report.errors[0].message,
        "Not valid JSON: invalid unicode code point at line 2 column 7"
    );
    assert_eq!(report.errors[0].line, Some(2));
    let report = check_with("t.json", b"[{\"a\":1},\n5,\n{\"$x\":1}]", &into("t"));
    assert_eq!(
        codes(&report),
        vec![Code::InvalidConvexValue, Code::InvalidConvexValue]
    );
    assert_eq!(
        report
            .errors
            .iter()
            .map(|e| e.line.unwrap())
            .collect::<Vec<_>>(),
        vec![2, 3]
    );
    assert!(report.errors[0]
        .message
        .starts_with("Row 2 wasn't a valid Convex value"));
    // A `\r` alone ends a line too, as a `\r\n` does, for elements and for
    // what is not JSON, whose message keeps serde_json's own count.
    let lines = |report: &snappack::report::Report| -> Vec<u64> {
        report.errors.iter().map(|e| e.line.unwrap()).collect()
    };
    for (json, expected) in [
        (&b"[{\"a\":1},\r5,\r\r{\"$x\":1}]"[..], vec![2, 4]),
        (b"[{\"a\":1},\r\n5,\n\r\r\n{\"$x\":1}]", vec![2, 5]),
        (b"[\r\n\r{\"a\":1},\n\r5,{\"$x\":1}]", vec![5, 5]),
    ] {
        let report = check_with("t.json", json, &into("t"));
        assert_eq!(lines(&report), expected, "{json:?}");
    }
    let report = check_with("t.json", b"[{\"a\":1},\r5,\r\r\n{]", &into("t"));
    assert_eq!(codes(&report), vec![Code::NotJson]);
    assert_eq!(
        report.errors[0].message,
        "Not valid JSON: key must be a string at line 2 column 2"
    );
    assert_eq!(lines(&report), [4]);
    let report = check_with("t.json", b"[5,\r\r{\"b\":\"\xff\"}]", &into("t"));
    assert_eq!(codes(&report), vec![Code::NotJson]);
    assert_eq!(lines(&report), [3]);
    // Nesting as deep as serde_json parses a whole file (127 levels, the
    // array's included) is the row's problem; one level more is the file's.
    let nested = |depth: usize| {
        let mut json = String::from("[{\"s\":\"[[\\\"\",\"a\":");
        json.push_str(&"[".repeat(depth - 2));
        json.push_str(&"]".repeat(depth - 2));
        json.push_str("}]");
        json
    };
    let report = check_with("t.json", nested(127).as_bytes(), &into("t"));
    assert!(
        !codes(&report).contains(&Code::NotJson),
        "{:?}",
        report.errors
    );
    let report = check_with("t.json", nested(128).as_bytes(), &into("t"));
    assert_eq!(codes(&report), vec![Code::NotJson]);
    assert!(
        report.errors[0]
            .message
            .starts_with("Not valid JSON: recursion limit exceeded"),
        "{}",
        report.errors[0].message
    );
    let mut big = b"[".to_vec();
    big.extend(std::iter::repeat_n(b' ', 16 << 20));
    big.push(b']');
    let report = check_with("t.json", &big, &into("t"));
    assert_eq!(codes(&report), vec![Code::JsonArrayTooLarge]);
    // The file's size, not where reading stopped.
    assert!(report.errors[0]
        .message
        .contains("16777218 bytes > maximum 16 MiB"));
}

#[test]
fn duplicate_ids_in_a_json_array_name_their_rows() {
    // All on one line, as JSON.stringify writes it: lines would say nothing.
    let id = "jd7f2yq3tcc5h4ce9qhqdk0ach6hbmyb";
    let array = format!(r#"[{{"a":1}},{{"_id":"{id}"}},{{"b":2}},{{"_id":"{id}"}}]"#);
    let report = check_with("t.json", array.as_bytes(), &into("table1"));
    assert_eq!(codes(&report), vec![Code::DuplicateId]);
    let finding = &report.errors[0];
    assert_eq!(
        finding.message,
        format!(r#"Objects in table "table1" have duplicate _id fields ({id} in rows 2 and 4)"#)
    );
    assert_eq!((finding.line, finding.first_line), (Some(1), None));
}

#[test]
fn csv_rows_and_duplicate_ids() {
    let csv = b"_id,value\n\"jd7f2yq3tcc5h4ce9qhqdk0ach6hbmyb\",\"hi\"\n\"jd7f2yq3tcc5h4ce9qhqdk0ach6hbmyb\",\"there\"\n";
    let report = check_with("t.csv", csv, &into("table1"));
    assert_eq!(codes(&report), vec![Code::DuplicateId]);
    assert!(report.errors[0]
        .message
        .starts_with(r#"Objects in table "table1" have duplicate _id fields"#));
    assert_eq!(
        (report.errors[0].line, report.errors[0].first_line),
        (Some(3), Some(2))
    );
    assert_eq!(
        (report.tables[0].number, report.tables[0].number_source),
        (Some(10003), NumberSource::Id)
    );

    let report = check_with("t.csv", b"a,b\n1,2\n3\n", &into("t"));
    assert_eq!(codes(&report), vec![Code::CsvRowMissingFields]);
    assert_eq!(report.errors[0].line, Some(3));
    assert_eq!(
        codes(&check_with("t.csv", b"a,$b\n1,2\n", &into("t"))),
        vec![Code::CsvInvalidHeader]
    );
    assert_eq!(
        codes(&check_with("t.csv", b"a\n\xff\n", &into("t"))),
        vec![Code::CsvInvalidRow]
    );
    // Every cell is read as text, even one whose column a later one of the
    // same name replaces; the error names the column.
    let report = check_with("t.csv", b"a,b,a\n\xff,1,2\n", &into("t"));
    assert_eq!(codes(&report), vec![Code::CsvInvalidRow]);
    assert_eq!(
        (report.errors[0].line, report.errors[0].field.as_deref()),
        (Some(2), Some("a"))
    );
    let report = check_with("t.csv", b"a,$b\n1,2\n", &into("t"));
    assert_eq!(report.errors[0].field.as_deref(), Some("$b"));
    // A duplicate id names its field.
    let report = check_with("t.csv", csv, &into("table1"));
    assert_eq!(report.errors[0].field.as_deref(), Some("_id"));
    // A BOM is ignored in CSV.
    assert!(check_with("t.csv", b"\xEF\xBB\xBFa\n1\n", &into("t")).valid);
}

#[test]
fn csv_empty_strings_are_removed_for_optional_fields() {
    // The sink sees the rows exactly as they would be imported.
    struct Rows(Vec<String>);
    impl snappack::validate::Sink for Rows {
        fn document(&mut self, _t: usize, line: &[u8], _valid: bool) -> std::io::Result<()> {
            self.0.push(String::from_utf8(line.to_vec()).unwrap());
            Ok(())
        }
    }
    let schema = |optional: bool| Schema {
        tables: [(
            "table1".to_owned(),
            TableSchema {
                fields: ["a", "b", "c", "d"]
                    .into_iter()
                    .map(|f| (f.to_owned(), FieldSchema { optional }))
                    .collect(),
            },
        )]
        .into(),
    };
    let csv = b"\na,b,c,d\n\"\",,\"\"\"\",\"\"\"\"\"\"\n";
    // The rows a walk of `csv` into `table` gives, and its report.
    let walk = |table: &str, schema: Option<Schema>| {
        let options = Options {
            table: Some(table.into()),
            schema,
            ..Options::default()
        };
        let mut rows = Rows(Vec::new());
        let (report, _) = snappack::validate::walk(
            std::io::Cursor::new(&csv[..]),
            "t.csv",
            &options,
            &mut rows,
            &mut |_| true,
        );
        (rows.0, report)
    };
    for (schema, expected) in [
        (None, r#"{"a":"","b":"","c":"\"","d":"\"\""}"#),
        (
            Some(schema(false)),
            r#"{"a":"","b":"","c":"\"","d":"\"\""}"#,
        ),
        (Some(schema(true)), r#"{"c":"\"","d":"\"\""}"#),
    ] {
        let (rows, report) = walk("table1", schema);
        assert!(report.valid, "{:?}", report.errors);
        assert_eq!(rows, vec![expected.to_owned()]);
        assert_eq!(report.warnings, []);
    }
    // A schema without the file's table: nothing is removed, and the report says why.
    let (rows, report) = walk("people", Some(schema(true)));
    assert_eq!(rows, [r#"{"a":"","b":"","c":"\"","d":"\"\""}"#]);
    let codes: Vec<Code> = report.warnings.iter().map(|w| w.code).collect();
    assert_eq!(codes, [Code::SchemaTableMissing]);
    assert!(
        report.warnings[0]
            .message
            .starts_with("the schema has no table people (only table1)"),
        "{}",
        report.warnings[0].message
    );
}

/// A file cut short while it is read is not a shorter import: the lines it
/// had are not reported as the whole table, but as an input that failed.
#[test]
fn a_file_cut_short_while_read_fails_rather_than_losing_rows() {
    let jsonl: String = (0..2000).map(|n| format!("{{\"n\":{n}}}\n")).collect();
    let json = format!(
        "[{}]",
        (0..2000)
            .map(|n| format!("{{\"n\":{n}}}"))
            .collect::<Vec<_>>()
            .join(",")
    );
    let csv: String = std::iter::once("n\n".to_owned())
        .chain((0..2000).map(|n| format!("{n}\n")))
        .collect();
    for (name, bytes) in [("t.jsonl", &jsonl), ("t.json", &json), ("t.csv", &csv)] {
        let whole = check_with(name, bytes.as_bytes(), &into("t"));
        assert!(whole.valid, "{name}: {:?}", whole.errors);
        let cut = FailsAt::new(bytes.as_bytes(), bytes.len() as u64 / 2, true);
        let report = snappack::validate::validate(cut, name, &into("t"), &mut |_| true);
        assert!(!report.valid, "{name}");
        assert_eq!(
            codes(&report).last(),
            Some(&Code::ReadFailed),
            "{name}: {:?}",
            report.errors
        );
        let failure = report.errors.last().expect("an error");
        assert_eq!(failure.entry.as_deref(), Some(name));
        assert!(
            failure.message.contains("it ends at byte"),
            "{name}: {}",
            failure.message
        );
    }
}

/// An input that fails while a JSONL, JSON array or CSV file is read is
/// `ReadFailed` naming the file and the line reached, whatever the read
/// error is (a disk's, or a file cut short), and nothing after it is read.
/// A CSV one was `CsvInvalidRow`, "row 0", when the failure was not the
/// input's own, and neither said which line the walk had reached; a JSON
/// array's, read whole before it is parsed, named no line.
#[test]
fn a_read_error_names_the_line_it_reached() {
    let jsonl: String = (0..20_000).map(|n| format!("{{\"n\":{n}}}\n")).collect();
    let csv: String = std::iter::once("n\n".to_owned())
        .chain((0..20_000).map(|n| format!("{n}\n")))
        .collect();
    let json = format!(
        "[\n{}\n]\n",
        (0..20_000)
            .map(|n| format!("{{\"n\":{n}}}"))
            .collect::<Vec<_>>()
            .join(",\n")
    );
    for (name, bytes) in [("t.jsonl", &jsonl), ("t.csv", &csv), ("t.json", &json)] {
        let at = bytes.len() as u64 / 2;
        // The line the failure is in: the lines before it were read whole.
        let line = bytes.as_bytes()[..at as usize]
            .iter()
            .filter(|&&b| b == b'\n')
            .count() as u64
            + 1;
        for ends in [false, true] {
            let input = FailsAt::new(bytes.as_bytes(), at, ends);
            let report = snappack::validate::validate(input, name, &into("t"), &mut |_| true);
            assert_eq!(
                codes(&report),
                [Code::ReadFailed],
                "{name}: {:?}",
                report.errors
            );
            let failure = &report.errors[0];
            assert_eq!(failure.entry.as_deref(), Some(name));
            assert!(
                failure.message.starts_with("cannot read the input: "),
                "{name}: {}",
                failure.message
            );
            let reached = failure.line.expect("the line reached");
            assert_eq!(reached, line, "{name}");
            // Rows before it were counted, none after.
            let documents = report.tables[0].documents;
            let before = match name {
                "t.csv" => reached - 2,
                // Read whole before any element is checked.
                "t.json" => 0,
                _ => reached - 1,
            };
            assert_eq!(documents, before, "{name}");
        }
    }
}

/// Documents with `_id`s after a first one without: the warning points at
/// the first document, whose `_id` would have numbered the table.
#[test]
fn a_table_numbered_by_the_server_is_warned_about_at_its_first_document() {
    let with_id = id(10001, 1);
    for (name, bytes, line) in [
        (
            "t.jsonl",
            format!("{{\"a\":1}}\n{{\"_id\":\"{with_id}\"}}\n"),
            1,
        ),
        // The first row's `_id` is "", which does not decode (an error of its own).
        ("t.csv", format!("_id,a\n,1\n{with_id},2\n"), 2),
        (
            "t.json",
            format!("[\n\n  {{\"a\":1}},\n  {{\"_id\":\"{with_id}\"}}\n]"),
            3,
        ),
    ] {
        let report = check_with(name, bytes.as_bytes(), &into("t"));
        let warnings: Vec<_> = report
            .warnings
            .iter()
            .map(|w| (w.code, w.entry.as_deref(), w.line))
            .collect();
        assert_eq!(
            warnings,
            [(Code::UnassignedTableNumber, Some(name), Some(line))],
            "{name}"
        );
    }
}

/// A CSV file with `\r\n` line ends (as spreadsheets write) or blank lines:
/// findings name the line the row is on; messages number rows as Convex's do.
#[test]
fn csv_findings_name_the_line_their_row_is_on() {
    let report = check_with("t.csv", b"a,b\r\n1,2\r\n\r\n3\r\n4,5\r\n", &into("t"));
    let found: Vec<_> = report
        .errors
        .iter()
        .map(|e| (e.code, e.line, e.message.as_str()))
        .collect();
    assert_eq!(
        found,
        [(
            Code::CsvRowMissingFields,
            Some(4),
            "CSV row 2 doesn't have all of the fields in the header"
        )]
    );
}

/// A header after blank lines: its errors name the line it is on.
#[test]
fn csv_header_findings_name_the_header_line() {
    for (csv, line) in [
        (&b"\n\n\nok,$bad\n1,2\n"[..], 4),
        (b"\r\n\r\nok,$bad\r\n1,2\r\n", 3),
        (b"ok,$bad\n1,2\n", 1),
        (b"\n\na,\xff\n1,2\n", 3),
    ] {
        let report = check_with("t.csv", csv, &into("t"));
        assert_eq!(report.errors.len(), 1, "{csv:?}: {:?}", report.errors);
        assert_eq!(report.errors[0].line, Some(line), "{csv:?}");
    }
}

/// A CSV file with a `\r` alone at the end of each line (old Mac files),
/// which the CSV reader also takes as a row end: findings name each row's line.
#[test]
fn csv_findings_count_lines_a_lone_carriage_return_ends() {
    let report = check_with("t.csv", b"a,b\r1,2\r3\r\r4\r5,6\r", &into("t"));
    let found: Vec<_> = report.errors.iter().map(|e| (e.code, e.line)).collect();
    assert_eq!(
        found,
        [
            (Code::CsvRowMissingFields, Some(3)),
            (Code::CsvRowMissingFields, Some(5))
        ]
    );
    let report = check_with("t.csv", b"\r\r\nok,$bad\r1,2\r", &into("t"));
    assert_eq!(codes(&report), [Code::CsvInvalidHeader]);
    assert_eq!(report.errors[0].line, Some(3));
}

/// Convex's CSV reader skips one byte order mark at the start: a second
/// one is part of the first header, which is then not a field name; lines
/// are counted past the one skipped.
/// A CSV or JSON array file saved as UTF-16 (as some editors and
/// spreadsheets save "Unicode text") is told so after Convex's message, as
/// a JSONL one is; before, only the JSONL file was, and the others read as
/// a stray byte or a file that is not JSON.
#[test]
fn a_csv_or_json_array_file_saved_as_utf16_is_told_so() {
    fn utf16(text: &str, little_endian: bool) -> Vec<u8> {
        let mut bytes = match little_endian {
            true => vec![0xFF, 0xFE],
            false => vec![0xFE, 0xFF],
        };
        for unit in text.encode_utf16() {
            bytes.extend(match little_endian {
                true => unit.to_le_bytes(),
                false => unit.to_be_bytes(),
            });
        }
        bytes
    }
    let hint = "; the file starts with a UTF-16 byte order mark: save it as UTF-8";
    for little_endian in [true, false] {
        for (name, text, code, convex) in [
            (
                "t.csv",
                "name,n\nada,1\n",
                Code::CsvInvalidRow,
                "Failed to parse CSV row 1: CSV parse error: record 0 (line 1, field: 1, byte: 0): \
                 invalid utf-8: invalid UTF-8 in field 1 near byte index 0",
            ),
            (
                "t.json",
                "[{\"name\":\"ada\"}]\n",
                Code::NotJson,
                "Not valid JSON: expected value at line 1 column 1",
            ),
        ] {
            let report = check_with(name, &utf16(text, little_endian), &into("t"));
            assert_eq!(codes(&report), [code], "{name}: {:?}", report.errors);
            assert_eq!(report.errors[0].line, Some(1), "{name}");
            assert_eq!(report.errors[0].message, format!("{convex}{hint}"), "{name}");
        }
    }
    // Other bad bytes at the start are not called UTF-16.
    for (name, bytes) in [("t.csv", &b"\xFFname\n1\n"[..]), ("t.json", b"\xFF[]")] {
        let report = check_with(name, bytes, &into("t"));
        assert!(!report.valid, "{name}");
        assert!(
            !report.errors[0].message.contains("UTF-16"),
            "{name}: {}",
            report.errors[0].message
        );
    }
}

#[test]
fn csv_skips_one_byte_order_mark() {
    assert!(check_with("t.csv", b"\xEF\xBB\xBFa\n1\n", &into("t")).valid);
    let report = check_with("t.csv", b"\xEF\xBB\xBF\xEF\xBB\xBFa\n1\n", &into("t"));
    assert_eq!(codes(&report), [Code::CsvInvalidHeader]);
    assert_eq!(report.errors[0].line, Some(1));
    assert!(
        report.errors[0].message.contains("\\u{feff}a"),
        "{}",
        report.errors[0].message
    );
    let report = check_with("t.csv", b"\xEF\xBB\xBF\n\na,$b\n1,2\n", &into("t"));
    assert_eq!(codes(&report), [Code::CsvInvalidHeader]);
    assert_eq!(report.errors[0].line, Some(3));
    // Not at the start, it is part of a cell.
    let report = check_with("t.csv", b"\n\xEF\xBB\xBFa\n1\n", &into("t"));
    assert_eq!(codes(&report), [Code::CsvInvalidHeader]);
    assert_eq!(report.errors[0].line, Some(2));
}

/// Convex parses each JSONL line with the `\n` that ends it: JSON that
/// ends too soon is worded past that `\n`, and where a last line has none,
/// at the end of the line.
#[test]
fn jsonl_errors_at_the_end_of_a_line_are_worded_past_its_newline() {
    let report = check_with(
        "t.jsonl",
        b"{\"a\":1}\n\n  \r\n{\"a\":\n{\"b\":\"x\n{\"c\":1",
        &into("t"),
    );
    let found: Vec<_> = report
        .errors
        .iter()
        .map(|e| (e.line.unwrap(), e.message.as_str()))
        .collect();
    assert_eq!(
        found,
        [
            (2, "Row 2 wasn't valid JSON: EOF while parsing a value at line 2 column 0"),
            (3, "Row 3 wasn't valid JSON: EOF while parsing a value at line 2 column 0"),
            (4, "Row 4 wasn't valid JSON: EOF while parsing a value at line 2 column 0"),
            (
                5,
                "Row 5 wasn't valid JSON: control character (\\u0000-\\u001F) found while parsing a string at line 1 column 7"
            ),
            (6, "Row 6 wasn't valid JSON: EOF while parsing an object at line 1 column 6"),
        ]
    );
}

/// Files without rows are what Convex imports as an empty table: a CSV
/// without bytes (its reader gives a header without cells and no record),
/// with a header alone, or with blank lines alone; a JSONL file without
/// bytes; the JSON array `[]`. A JSON file without bytes is not JSON, and a
/// JSONL line that is empty is not a row.
#[test]
fn files_without_rows_are_empty_tables_as_in_convex() {
    for (name, bytes) in [
        ("t.csv", &b""[..]),
        ("t.csv", b"a,b\n"),
        ("t.csv", b"\xEF\xBB\xBF"),
        ("t.csv", b"\r\n\r\n"),
        ("t.jsonl", b""),
        ("t.json", b"[]"),
    ] {
        let report = check_with(name, bytes, &into("t"));
        assert!(report.valid, "{name} {bytes:?}: {:?}", report.errors);
        assert_eq!(report.tables.len(), 1);
        assert_eq!(
            (report.tables[0].name.as_str(), report.tables[0].documents),
            ("t", 0)
        );
    }
    let report = check_with("t.json", b"", &into("t"));
    assert_eq!(codes(&report), vec![Code::NotJson]);
    assert_eq!(
        report.errors[0].message,
        "Not valid JSON: EOF while parsing a value at line 1 column 0"
    );
    let report = check_with("t.jsonl", b"\n", &into("t"));
    assert_eq!(codes(&report), vec![Code::JsonInvalidRow]);
}

/// A negative `_creationTime` in a JSONL or CSV file is Convex's internal
/// error, not a rule of a valid document: a code of snappack's own, naming
/// the line and the field.
#[test]
fn a_negative_creation_time_is_named_with_its_line_and_field() {
    for (name, bytes, line) in [
        ("t.jsonl", &b"{\"a\":1}\n{\"_creationTime\":-5}\n"[..], 2),
        ("t.csv", b"_creationTime,a\n1700000000000,x\n-5,y\n", 3),
    ] {
        let report = check_with(name, bytes, &into("t"));
        assert_eq!(
            codes(&report),
            [Code::UnreadableCreationTime],
            "{name}: {:?}",
            report.errors
        );
        let error = &report.errors[0];
        assert_eq!(error.line, Some(line), "{name}");
        assert_eq!(error.field.as_deref(), Some("_creationTime"), "{name}");
        assert!(
            error.message.contains("'_creationTime' is -5"),
            "{}",
            error.message
        );
    }
}

/// A file saved as UTF-16, whose name does not tell its format, is told to
/// be saved as UTF-8: its first bytes tell no format, and giving one would
/// only lead to another error. It was only told to give a format.
#[test]
fn a_utf16_file_of_no_known_format_is_told_to_be_saved_as_utf8() {
    let mut bytes = vec![0xFF, 0xFE];
    bytes.extend("{\"a\":1}\n".encode_utf16().flat_map(u16::to_le_bytes));
    for (name, stdin, start) in [
        ("rows", false, "cannot tell the format of 'rows': "),
        ("", true, "cannot tell the format of standard input: "),
    ] {
        let options = Options { stdin, ..into("t") };
        let report = check_with(name, &bytes, &options);
        assert_eq!(
            codes(&report),
            [Code::InvalidOptions],
            "{:?}",
            report.errors
        );
        let message = &report.errors[0].message;
        assert!(
            message.starts_with(&format!(
                "{start}it starts with a UTF-16 byte order mark: save it as UTF-8, then give its format"
            )),
            "{message}"
        );
    }
    // Bytes of no format, not UTF-16, are only told to give a format.
    let report = check_with("rows", b"a,b\n1,2\n", &into("t"));
    assert!(
        !report.errors[0].message.contains("UTF-16"),
        "{}",
        report.errors[0].message
    );
}

/// A CSV file whose cells a `;` separates (as spreadsheets save "CSV" where
/// a comma is the decimal mark) is one column to Convex, every row one
/// field: valid, and it was said to be so without a word.
#[test]
fn a_csv_file_separated_by_semicolons_is_warned_about() {
    let report = check_with("t.csv", b"\nname;age\nada;36\nalan;41\n", &into("t"));
    assert!(report.valid, "{:?}", report.errors);
    assert_eq!(report.warnings.len(), 1, "{:?}", report.warnings);
    let warning = &report.warnings[0];
    assert_eq!(warning.code, Code::CsvOneColumn);
    // The header's line, past the blank line before it.
    assert_eq!(warning.line, Some(2));
    assert_eq!(warning.field.as_deref(), Some("name;age"));
    assert!(
        warning.message.starts_with(
            "the header is one column, \"name;age\", which holds ';': Convex separates CSV cells \
             at commas only"
        ),
        "{}",
        warning.message
    );
    // Commas, or one column of a plain name, are not warned about.
    for csv in [&b"name,note\nada,a;b\n"[..], b"name\nada;b\n"] {
        let report = check_with("t.csv", csv, &into("t"));
        assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    }
}

/// A CSV header that names two columns alike is valid (Convex keeps the
/// last column's cells), but the other column's cells would be lost
/// without a word: each such name is warned about once, on the header's line.
#[test]
fn a_csv_header_naming_two_columns_alike_is_warned_about() {
    let report = check_with("t.csv", b"a,b,a,a,b\n1,2,3,4,5\n", &into("t"));
    assert!(report.valid, "{:?}", report.errors);
    let warnings: Vec<_> = report
        .warnings
        .iter()
        .map(|w| (w.code, w.line, w.field.as_deref(), w.message.as_str()))
        .collect();
    assert_eq!(
        warnings,
        [
            (
                Code::CsvDuplicateHeader,
                Some(1),
                Some("a"),
                "the header names columns 1, 3 and 4 \"a\": Convex keeps the cells of the last, \
                 column 4, so those of columns 1 and 3 are not imported; give the columns \
                 different names to import them all"
            ),
            (
                Code::CsvDuplicateHeader,
                Some(1),
                Some("b"),
                "the header names columns 2 and 5 \"b\": Convex keeps the cells of the last, \
                 column 5, so those of column 2 are not imported; give the columns different \
                 names to import them all"
            ),
        ]
    );
    // Names given once are not warned about.
    let report = check_with("t.csv", b"a,b\n1,2\n", &into("t"));
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
}

/// A JSONL file whose lines a `\r` alone ends (old Mac files) is one line
/// to Convex, refused for what follows its first value; the finding keeps
/// Convex's message and says what the line ends are and how to save the
/// file. Before, it said only "trailing characters".
#[test]
fn a_jsonl_file_whose_lines_end_with_a_carriage_return_alone_is_told_so() {
    let hint = "; the file's lines end with a carriage return alone (\\r, as old Mac files \
                have them), which does not end a JSONL line, so they read as one: save the file \
                with \\n line ends";
    let report = check_with("t.jsonl", b"{\"a\":1}\r{\"a\":2}\r", &into("t"));
    let found: Vec<_> = report
        .errors
        .iter()
        .map(|e| (e.code, e.line, e.message.as_str()))
        .collect();
    let message = format!("Row 1 wasn't valid JSON: trailing characters at line 1 column 9{hint}");
    assert_eq!(found, [(Code::JsonInvalidRow, Some(1), message.as_str())]);
    // A `\r` that is whitespace, a `\r\n`, or a `\r` after text that is
    // not a value is not told so.
    for jsonl in [
        &b"{\"a\":\r1}\n{\"a\":2}\r\n"[..],
        b"{\"a\":1} x\r{\"a\":2}\n",
        b"{\"a\" 1}\r\n",
    ] {
        let report = check_with("t.jsonl", jsonl, &into("t"));
        for error in &report.errors {
            assert!(
                !error.message.contains("carriage"),
                "{jsonl:?}: {}",
                error.message
            );
        }
    }
}

/// A CSV file whose cells tabs separate is refused for its header, as
/// Convex refuses it (no field name holds a tab); the finding keeps
/// Convex's message and says that tabs seem to separate the cells. Before,
/// it said only that the header holds a control character.
#[test]
fn a_csv_file_separated_by_tabs_is_told_so() {
    let report = check_with("t.csv", b"name\tage\nada\t36\n", &into("t"));
    let found: Vec<_> = report
        .errors
        .iter()
        .map(|e| (e.code, e.line, e.field.as_deref(), e.message.as_str()))
        .collect();
    assert_eq!(
        found,
        [(
            Code::CsvInvalidHeader,
            Some(1),
            Some("name\tage"),
            "CSV header \"name\\tage\" isn't a valid field name: Field name name\tage has invalid \
             character '\t': Field names can only contain non-control ASCII characters; the \
             header holds a tab, which seems to separate its cells: Convex separates CSV cells \
             at commas only, so save the file with commas between them"
        )]
    );
    // Another bad name, or a tab at the start of one, is not told so
    // (csv_headers_are_named_as_convex_prints_them); tabs in rows are text.
    let report = check_with("t.csv", b"ok,$bad\n1,2\n", &into("t"));
    assert!(
        !report.errors[0].message.contains("tab"),
        "{:?}",
        report.errors
    );
    let report = check_with("t.csv", b"name\nada\t36\n", &into("t"));
    assert!(report.valid, "{:?}", report.errors);
}

/// A CSV file whose last row opens a quoted cell that is never closed is
/// valid to Convex, whose reader ends the cell at the end of the file, so
/// the lines after the quote are one cell, not rows. Before, it was valid
/// without a word; now a warning names the line the quote opens on.
#[test]
fn a_csv_quote_never_closed_is_warned_about() {
    let message = |line: u64| {
        format!(
            "a '\"' opens a cell on line {line} and is never closed: Convex reads the rest of \
             the file, line ends and all, into that one cell; if the lines after it are rows, \
             close the quote (a '\"' inside a quoted cell is written '\"\"')"
        )
    };
    for (csv, line) in [
        (&b"name\n\"unterminated\nmore\n"[..], 2),
        // After quoted cells that hold line ends and quotes, on the third
        // line of the row; a `""` in the open cell, and line ends of each kind.
        (b"a,b\r\n\"x\ry\",\"p\"\"\nq\",\"r\"\"\r\ns\n\r\n", 4),
        (b"a,b\n1,2\n3,\"", 3),
    ] {
        let report = check_with("t.csv", csv, &into("t"));
        let found: Vec<_> = report
            .warnings
            .iter()
            .map(|w| (w.code, w.line, w.message.clone()))
            .collect();
        assert_eq!(
            found,
            [(Code::CsvUnclosedQuote, Some(line), message(line))],
            "{csv:?}"
        );
    }
    let report = check_with("t.csv", b"name\n\"unterminated\nmore\n", &into("t"));
    assert!(report.valid, "{:?}", report.errors);
    // In the header, where the rest of the file is a name Convex refuses,
    // the refusal says so.
    let report = check_with("t.csv", b"\nid,\"name\nada\n", &into("t"));
    let found: Vec<_> = report
        .errors
        .iter()
        .map(|e| (e.code, e.line, e.message.as_str()))
        .collect();
    assert_eq!(
        found,
        [(
            Code::CsvInvalidHeader,
            Some(2),
            "CSV header \"name\\nada\\n\" isn't a valid field name: Field name name\nada\n has \
             invalid character '\n': Field names can only contain non-control ASCII characters; \
             the '\"' that opens it on line 2 is never closed, so the rest of the file is in it"
        )]
    );
    // Quotes closed at the end, or in an unquoted cell, are not warned about.
    for csv in [
        &b"a,b\n1,\"2\""[..],
        b"a,b\n1,\"2\"\n",
        b"a,b\n1,\"x\"\"\"",
        b"a,b\n1,x\"",
        b"a,b\n1,",
        b"a,b\n1,2\r",
        b"a,b\n\"1\n\",2",
    ] {
        let report = check_with("t.csv", csv, &into("t"));
        assert!(report.warnings.is_empty(), "{csv:?}: {:?}", report.warnings);
    }
}

/// A JSON array file is read whole once, for the table number in its first
/// element's `_id` and for its rows; before, it was read whole twice (up to
/// 16 MiB each time). Its report is the same as ever.
#[test]
fn a_json_array_file_is_read_once() {
    use std::io::{Cursor, Read, Seek, SeekFrom};
    /// Counts the bytes read from it.
    struct Counted<'a>(Cursor<&'a [u8]>, u64);
    impl Read for Counted<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.0.read(buf)?;
            self.1 += n as u64;
            Ok(n)
        }
    }
    impl Seek for Counted<'_> {
        fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
            self.0.seek(pos)
        }
    }
    let mut json = format!("[{{\"_id\":\"{}\",\"a\":1}}", id(10_001, 7)).into_bytes();
    for n in 0..20_000 {
        json.extend_from_slice(format!(",\n{{\"a\":{n}}}").as_bytes());
    }
    json.push(b']');
    let mut input = Counted(Cursor::new(&json), 0);
    let report = snappack::validate::walk(
        &mut input,
        "t.json",
        &into("t"),
        &mut snappack::validate::NoSink,
        &mut |_| true,
    )
    .0;
    assert!(report.valid, "{:?}", report.errors);
    assert_eq!(report.tables[0].documents, 20_001);
    assert_eq!(report.tables[0].number, Some(10_001));
    assert_eq!(input.1, json.len() as u64, "bytes read");
    assert_eq!(report, check_with("t.json", &json, &into("t")));
}
