//! Helpers for building test inputs.
#![allow(dead_code)]

use std::io::{Cursor, Write};

use snappack::convex::DocumentId;
use snappack::report::{Code, Report};
use snappack::validate::{merge_shards, validate, validate_shard, Options, Shard};

/// The snapshot `spec` generates, as bytes.
pub fn generated(spec: &snappack::gen::GenSpec) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    snappack::gen::write_snapshot(&mut out, spec).expect("generates");
    out.into_inner()
}

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

/// A ZIP of one entry whose data is `raw`, already compressed with `method`
/// (ZIP's method number), holding `content` uncompressed: for methods the
/// zip crate does not write.
pub fn zip_raw(name: &str, method: u16, raw: &[u8], content: &[u8]) -> Vec<u8> {
    let crc = crc32fast::hash(content);
    let sizes = |out: &mut Vec<u8>| {
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(&(raw.len() as u32).to_le_bytes());
        out.extend_from_slice(&(content.len() as u32).to_le_bytes());
        out.extend_from_slice(&(name.len() as u16).to_le_bytes());
    };
    let mut out = Vec::new();
    // Local header: signature, version needed, flags, method, time, date.
    out.extend_from_slice(&[0x50, 0x4b, 0x03, 0x04, 63, 0, 0, 0]);
    out.extend_from_slice(&method.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    sizes(&mut out);
    out.extend_from_slice(&[0; 2]);
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(raw);
    let directory = out.len();
    // Central header: signature, made by, needed, flags, method, time, date.
    out.extend_from_slice(&[0x50, 0x4b, 0x01, 0x02, 63, 3, 63, 0, 0, 0]);
    out.extend_from_slice(&method.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    sizes(&mut out);
    // Extra and comment lengths, disk, attributes, the local header at 0.
    out.extend_from_slice(&[0; 16]);
    out.extend_from_slice(name.as_bytes());
    let directory_len = out.len() - directory;
    // End of central directory: one entry.
    out.extend_from_slice(&[0x50, 0x4b, 0x05, 0x06, 0, 0, 0, 0, 1, 0, 1, 0]);
    out.extend_from_slice(&(directory_len as u32).to_le_bytes());
    out.extend_from_slice(&(directory as u32).to_le_bytes());
    out.extend_from_slice(&[0; 2]);
    out
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

/// Validates bytes with options; and, to prove that workers sharing the
/// walk make the same report, again split across two to four workers.
pub fn check_with(name: &str, bytes: &[u8], options: &Options) -> Report {
    let report = validate(Cursor::new(bytes), name, options, &mut |_| true);
    for count in 2..=4 {
        assert_eq!(
            in_shards(name, bytes, options, count),
            report,
            "{count} workers disagree with one"
        );
    }
    report
}

/// The report of `count` workers that validate bytes together.
pub fn in_shards(name: &str, bytes: &[u8], options: &Options, count: u32) -> Report {
    let shards = (0..count)
        .map(|index| {
            let shard = Shard { index, count };
            validate_shard(Cursor::new(bytes), name, options, shard, &mut |_| true)
        })
        .collect();
    merge_shards(shards).expect("the workers' reports merge")
}

/// The error codes of a report, in order.
pub fn codes(report: &Report) -> Vec<Code> {
    report.errors.iter().map(|f| f.code).collect()
}

/// An input whose bytes from `at` to `until` cannot be read: a read there
/// fails with an I/O error, or, with `ends`, finds the end (a file cut short
/// while it is read). Its length is still the whole of `bytes`.
pub struct FailsAt<'a> {
    pub bytes: Cursor<&'a [u8]>,
    pub at: u64,
    pub until: u64,
    pub ends: bool,
}

impl<'a> FailsAt<'a> {
    /// `bytes`, failing from `at` to the end.
    pub fn new(bytes: &'a [u8], at: u64, ends: bool) -> Self {
        FailsAt {
            bytes: Cursor::new(bytes),
            at,
            until: bytes.len() as u64,
            ends,
        }
    }

    /// Failing only up to `until` (a ZIP's central directory can be read).
    pub fn until(self, until: u64) -> Self {
        FailsAt { until, ..self }
    }
}

impl std::io::Read for FailsAt<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let position = self.bytes.position();
        if (self.at..self.until).contains(&position) {
            return match self.ends {
                true => Ok(0),
                false => Err(std::io::Error::other("the disk failed")),
            };
        }
        let left = self.at.saturating_sub(position);
        let n = match left {
            0 => buf.len(),
            left => buf.len().min(usize::try_from(left).unwrap_or(usize::MAX)),
        };
        std::io::Read::read(&mut self.bytes, &mut buf[..n])
    }
}

impl std::io::Seek for FailsAt<'_> {
    fn seek(&mut self, pos: std::io::SeekFrom) -> std::io::Result<u64> {
        std::io::Seek::seek(&mut self.bytes, pos)
    }
}
