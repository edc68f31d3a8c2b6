//! Throughput and size of the migration-item stream on generated snapshot
//! data: `cargo bench --bench migration`. Prints, for each deflate level,
//! encode and decode rates (MB/s of uncompressed input) and the stream's
//! size against a ZIP of the same tables and files (deflate, default level,
//! as Convex's exporter writes). `SNAPPACK_BENCH_LEVELS=1,6` picks levels.

use std::io::{Cursor, Write};
use std::time::Instant;

use snappack::convex::id::DocumentId;
use snappack::convex::value::ValueRules;
use snappack::migration::*;
use snappack::NumberSource;

/// A small deterministic generator (xorshift).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const WORDS: &[&str] = &[
    "the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "snapshot", "table", "import",
    "convex", "document", "value", "server", "client", "stream", "frame", "order", "message",
    "channel", "user", "hello", "world", "deploy", "query", "mutation", "action",
];

/// Convex-like documents: random ids, creation times, text, numbers, arrays.
fn documents(rng: &mut Rng, table: u32, count: usize) -> Vec<Vec<u8>> {
    let mut time = 1_700_000_000_000.0_f64;
    (0..count)
        .map(|i| {
            let mut internal = [0u8; 16];
            for b in &mut internal {
                *b = rng.next() as u8;
            }
            let id = DocumentId { table, internal }.encode();
            time += rng.below(100_000) as f64 / 7.0;
            let words: Vec<&str> = (0..3 + rng.below(25))
                .map(|_| WORDS[rng.below(WORDS.len() as u64) as usize])
                .collect();
            format!(
                r#"{{"_id":"{id}","_creationTime":{time},"author":"user{}","body":"{}","likes":{},"score":{},"tags":["{}","{}"],"index":{i}}}"#,
                rng.below(500),
                words.join(" "),
                rng.below(1000),
                rng.below(1_000_000) as f64 / 1000.0,
                WORDS[rng.below(WORDS.len() as u64) as usize],
                WORDS[rng.below(WORDS.len() as u64) as usize],
            )
            .into_bytes()
        })
        .collect()
}

fn main() {
    let mut rng = Rng(0x5eed);
    let tables: Vec<(String, u32, Vec<Vec<u8>>)> =
        [("messages", 10001, 120_000), ("users", 10002, 20_000)]
            .iter()
            .map(|&(name, number, count)| {
                (name.to_owned(), number, documents(&mut rng, number, count))
            })
            .collect();
    // Stored files: half text-like (compressible), half random (not).
    let files: Vec<(String, Vec<u8>)> = (0..20)
        .map(|i| {
            let data: Vec<u8> = if i % 2 == 0 {
                (0..200_000)
                    .map(|j| WORDS[(j * 7 + i) % WORDS.len()].as_bytes()[0])
                    .collect()
            } else {
                (0..200_000).map(|_| rng.next() as u8).collect()
            };
            let id = DocumentId {
                table: 540,
                internal: [i as u8; 16],
            }
            .encode();
            (id, data)
        })
        .collect();
    let input_bytes: usize = tables
        .iter()
        .flat_map(|t| &t.2)
        .map(|l| l.len() + 1)
        .sum::<usize>()
        + files.iter().map(|f| f.1.len()).sum::<usize>();

    // The ZIP a Convex export of the same data would be.
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, _, lines) in &tables {
        zip.start_file(format!("{name}/documents.jsonl"), options)
            .unwrap();
        for line in lines {
            zip.write_all(line).unwrap();
            zip.write_all(b"\n").unwrap();
        }
    }
    for (id, data) in &files {
        zip.start_file(format!("_storage/{id}"), options).unwrap();
        zip.write_all(data).unwrap();
    }
    let zip_len = zip.finish().unwrap().into_inner().len();
    println!(
        "input {:.1} MB, zip {:.1} MB ({} documents, {} files)",
        input_bytes as f64 / 1e6,
        zip_len as f64 / 1e6,
        tables.iter().map(|t| t.2.len()).sum::<usize>(),
        files.len()
    );

    let levels: Vec<u32> = std::env::var("SNAPPACK_BENCH_LEVELS")
        .unwrap_or_else(|_| "0,1,2,4,5,6".into())
        .split(',')
        .map(|l| {
            l.trim()
                .parse()
                .expect("SNAPPACK_BENCH_LEVELS: comma-separated levels")
        })
        .collect();
    for level in levels {
        let config = EncoderConfig {
            level,
            ..EncoderConfig::default()
        };
        let start = Instant::now();
        let mut encoder = Encoder::new(
            Vec::new(),
            config,
            Header::new("bench", 0, Totals::default()),
        )
        .unwrap();
        for (name, number, lines) in &tables {
            let t = encoder
                .table(TableDecl {
                    component: String::new(),
                    name: name.clone(),
                    number: Some(*number),
                    number_source: NumberSource::Tables,
                    rules: ValueRules::Uniform,
                    expected_documents: lines.len() as u64,
                })
                .unwrap();
            for line in lines {
                encoder.document(t, line).unwrap();
            }
            encoder.end_table(t).unwrap();
        }
        for (id, data) in &files {
            encoder
                .file(FileStart {
                    component: String::new(),
                    id: id.clone(),
                    content_type: None,
                    size: data.len() as u64,
                })
                .unwrap();
            for chunk in data.chunks(64 << 10) {
                encoder.file_data(chunk).unwrap();
            }
            encoder.end_file().unwrap();
        }
        let (stream, summary) = encoder.finish().unwrap();
        let encode_secs = start.elapsed().as_secs_f64();

        let start = Instant::now();
        let mut decoder = Decoder::default();
        let mut items = 0;
        for chunk in stream.chunks(256 << 10) {
            for frame in decoder.decode(chunk) {
                items += frame.unwrap().items.len();
            }
        }
        decoder.finish().unwrap();
        let decode_secs = start.elapsed().as_secs_f64();
        println!(
            "level {level}: {} frames, {items} items, stream {:.2} MB = {:.3} x zip; encode {:.0} MB/s, decode {:.0} MB/s",
            summary.frames,
            stream.len() as f64 / 1e6,
            stream.len() as f64 / zip_len as f64,
            input_bytes as f64 / 1e6 / encode_secs,
            input_bytes as f64 / 1e6 / decode_secs,
        );
    }
}
