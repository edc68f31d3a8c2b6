//! The ceiling for validation: raw inflate speed of a snapshot's document
//! entries, with nothing else done to the bytes, by zlib-rs (what snappack
//! uses) and, for comparison, miniz_oxide. `npm run bench` runs it on the
//! same archive as the validators:
//! `cargo bench --bench inflate -- <snapshot.zip> [repetitions]`.
//!
//! Each entry's compressed bytes are read into memory first (not timed), then
//! inflated into a 1 MiB buffer that is thrown away. Prints one JSON line:
//! uncompressed bytes, compressed bytes and, per inflater and repetition, wall
//! and thread CPU seconds.

use std::time::Instant;

#[path = "support/inflaters.rs"]
mod inflaters;
mod support;

use inflaters::{document_streams, Inflater};

fn main() {
    let (mut archive, repetitions) = support::snapshot_and_repetitions("inflate");
    let streams = document_streams(&mut archive);
    let uncompressed: u64 = streams.iter().map(|s| s.size).sum();
    let compressed: usize = streams.iter().map(|s| s.deflated.len()).sum();
    let mut out = vec![0u8; 1 << 20];
    let mut measure = |inflater: Inflater| {
        let mut runs = Vec::new();
        for _ in 0..repetitions {
            let cpu = support::thread_cpu_seconds();
            let start = Instant::now();
            inflater.inflate_all(&streams, &mut out);
            let wall = start.elapsed().as_secs_f64();
            runs.push(format!(
                r#"{{"wallSeconds":{wall},"cpuSeconds":{}}}"#,
                support::thread_cpu_seconds() - cpu
            ));
        }
        runs.join(",")
    };
    let zlib_rs = measure(Inflater::ZlibRs);
    let miniz_oxide = measure(Inflater::MinizOxide);
    println!(
        r#"{{"uncompressedBytes":{uncompressed},"compressedBytes":{compressed},"entries":{},"runs":[{zlib_rs}],"minizOxideRuns":[{miniz_oxide}]}}"#,
        streams.len(),
    );
}
