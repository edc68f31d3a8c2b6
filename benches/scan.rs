//! The document scan on its own: every line of a snapshot's documents
//! entries, inflated into memory first (not timed), through the fast path
//! ([`check_fast`]) that validation runs on each line, several times. For
//! work on the scan, without inflate, reading or the duplicate set around it:
//! `cargo bench --bench scan -- <snapshot.zip> [repetitions]`.
//!
//! Prints MB/s of document lines per repetition (by the thread's CPU time,
//! and by wall time) and how many lines the fast path left to the full checker.

use std::io::Read;
use std::time::Instant;

use snappack::convex::fast::check_fast;
use snappack::convex::value::ValueRules;

mod support;

fn main() {
    let (mut archive, repetitions) = support::snapshot_and_repetitions("scan");
    let mut data = Vec::new();
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).expect("entry");
        let name = entry.name().expect("entry name").into_owned();
        if name.ends_with("documents.jsonl") && !name.contains("_storage") {
            entry.read_to_end(&mut data).expect("inflate entry");
        }
    }
    let lines: Vec<&[u8]> = data
        .split(|&c| c == b'\n')
        .filter(|line| !line.is_empty())
        .collect();
    for _ in 0..repetitions {
        let start = Instant::now();
        let cpu_start = support::thread_cpu_seconds();
        let unsure = lines
            .iter()
            .filter(|line| check_fast(line, ValueRules::Uniform, None).is_none())
            .count();
        let cpu = support::thread_cpu_seconds() - cpu_start;
        let wall = start.elapsed().as_secs_f64();
        let rate = |seconds: f64| data.len() as f64 / seconds / 1e6;
        println!(
            "{:.0} MB/s by CPU time ({:.0} by wall time), {} lines, {unsure} left to the full checker",
            rate(cpu),
            rate(wall),
            lines.len()
        );
    }
}
