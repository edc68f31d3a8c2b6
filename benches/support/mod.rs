//! What the benches that read a snapshot share: their arguments
//! (`-- <snapshot.zip> [repetitions]`) and opening the archive.

use std::fs::File;
use std::io::BufReader;

use zip::ZipArchive;

/// The snapshot named on the command line, opened, and how many
/// repetitions to run (5 unless given); exits with a usage line otherwise.
pub fn snapshot_and_repetitions(bench: &str) -> (ZipArchive<BufReader<File>>, usize) {
    // `cargo bench` passes `--bench`; everything else is ours.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let Some(path) = args.first() else {
        eprintln!("usage: cargo bench --bench {bench} -- <snapshot.zip> [repetitions]");
        std::process::exit(2);
    };
    let repetitions = args.get(1).map_or(5, |r| r.parse().expect("repetitions"));
    let archive =
        ZipArchive::new(BufReader::new(File::open(path).expect("open"))).expect("a ZIP archive");
    (archive, repetitions)
}

/// CPU time of this thread, from /proc (nanoseconds on the CPU, in
/// schedstat): on a shared machine it moves less than wall time. Zero where
/// /proc is missing.
pub fn thread_cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |ns| ns / 1e9)
}
