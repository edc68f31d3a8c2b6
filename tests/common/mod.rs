//! Helpers for building test inputs.
#![allow(dead_code)]

use std::io::{Cursor, Write};

use snappack::convex::DocumentId;
use snappack::report::{Code, Report};
use snappack::validate::{validate, Options};

/// A ZIP with the given (name, content) entries, deflated.
pub fn zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
    zip_with(entries, zip::CompressionMethod::Deflated)
}

/// A ZIP with the given entries and compression method.
pub fn zip_with(entries: &[(&str, &[u8])], method: zip::CompressionMethod) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default().compression_method(method);
    for (name, content) in entries {
        writer.start_file(*name, options).unwrap();
        writer.write_all(content).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

/// The id of document `n` of table `table`.
pub fn id(table: u32, n: u8) -> String {
    DocumentId::new(table, [n; 16]).to_string()
}

/// A uniform-export document line.
pub fn doc(table: u32, n: u8, fields: &str) -> String {
    let comma = if fields.is_empty() { "" } else { "," };
    format!(
        r#"{{"_creationTime":1700000000000.5,"_id":"{}"{comma}{fields}}}"#,
        id(table, n)
    )
}

/// Validates bytes with default options.
pub fn check(name: &str, bytes: &[u8]) -> Report {
    check_with(name, bytes, &Options::default())
}

/// Validates bytes with options.
pub fn check_with(name: &str, bytes: &[u8], options: &Options) -> Report {
    validate(Cursor::new(bytes), name, options, &mut |_| true)
}

/// The error codes of a report, in order.
pub fn codes(report: &Report) -> Vec<Code> {
    report.errors.iter().map(|f| f.code).collect()
}
