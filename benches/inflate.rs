//! The ceiling for validation: raw inflate speed of a snapshot's document
//! entries, with nothing else done to the bytes. `npm run bench` runs it on
//! the same archive as the validators:
//! `cargo bench --bench inflate -- <snapshot.zip> [repetitions]`.
//!
//! Each entry's compressed bytes are read into memory first (not timed), then
//! inflated with zlib-rs through flate2 into a 1 MiB buffer that is thrown
//! away. Prints one JSON line: uncompressed bytes, compressed bytes and, per
//! repetition, wall and thread CPU seconds.

use std::io::Read;
use std::time::Instant;

use flate2::{Decompress, FlushDecompress, Status};
use zip::CompressionMethod;

mod support;

fn main() {
    let (mut archive, repetitions) = support::snapshot_and_repetitions("inflate");
    let mut streams = Vec::new();
    let mut uncompressed = 0u64;
    for i in 0..archive.len() {
        let mut entry = archive.by_index_raw(i).expect("entry");
        if !entry
            .name()
            .expect("entry name")
            .ends_with("documents.jsonl")
            || entry.compression() != CompressionMethod::Deflated
        {
            continue;
        }
        uncompressed += entry.size();
        let mut data = Vec::with_capacity(entry.compressed_size() as usize);
        entry.read_to_end(&mut data).expect("read entry");
        streams.push((data, entry.size()));
    }
    let compressed: usize = streams.iter().map(|s| s.0.len()).sum();
    let mut out = vec![0u8; 1 << 20];
    let mut runs = Vec::new();
    for _ in 0..repetitions {
        let cpu = thread_cpu_seconds();
        let start = Instant::now();
        for (data, size) in &streams {
            let mut inflater = Decompress::new(false);
            loop {
                let before = inflater.total_in() as usize;
                let status = inflater
                    .decompress(&data[before..], &mut out, FlushDecompress::None)
                    .expect("inflate");
                if status == Status::StreamEnd {
                    break;
                }
            }
            assert_eq!(inflater.total_out(), *size, "inflated size");
        }
        let wall = start.elapsed().as_secs_f64();
        runs.push(format!(
            r#"{{"wallSeconds":{wall},"cpuSeconds":{}}}"#,
            thread_cpu_seconds() - cpu
        ));
    }
    println!(
        r#"{{"uncompressedBytes":{uncompressed},"compressedBytes":{compressed},"entries":{},"runs":[{}]}}"#,
        streams.len(),
        runs.join(",")
    );
}

/// CPU time of this thread, from /proc (nanoseconds on the CPU, in
/// schedstat): on a shared machine it moves less than wall time. Zero where
/// /proc is missing.
fn thread_cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |ns| ns / 1e9)
}
