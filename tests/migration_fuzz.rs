//! Property tests of the decoder: random bytes, and valid streams mutated
//! (with and without their CRC32s fixed up, so damage reaches the payload,
//! item and order checks) never make it panic, and it decodes the same
//! however the input is sliced. Also random round trips.
//!
//! Cases per property: `SNAPPACK_FUZZ_CASES` (default 256). For a long run:
//! `SNAPPACK_FUZZ_CASES=400000 cargo test --release --test migration_fuzz`.

use std::sync::OnceLock;

use proptest::prelude::*;
use snappack::convex::value::ValueRules;
use snappack::migration::*;
use snappack::NumberSource;

fn cases() -> u32 {
    std::env::var("SNAPPACK_FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(256)
}

/// What a decoder makes of a stream: the frames, then how it ended.
type Outcome = (Vec<Frame>, Result<Totals, DecodeError>);

/// Decodes `stream` fed in slices of the given sizes (cycled), stopping at
/// the first error.
fn decode_sliced(stream: &[u8], slices: &[usize]) -> Outcome {
    let mut decoder = Decoder::new(DecoderConfig {
        max_frame_size: 1 << 16,
    });
    let mut frames = Vec::new();
    let mut rest = stream;
    let mut sizes = slices.iter().cycle();
    while !rest.is_empty() {
        let n = (*sizes.next().unwrap_or(&usize::MAX)).clamp(1, rest.len());
        for frame in decoder.decode(&rest[..n]) {
            match frame {
                Ok(frame) => frames.push(frame),
                Err(error) => return (frames, Err(error)),
            }
        }
        rest = &rest[n..];
    }
    let end = decoder.finish();
    (frames, end)
}

/// A small snapshot, varied by `seed`.
fn snapshot(seed: u64, config: EncoderConfig) -> Vec<u8> {
    let header = Header::new(format!("f{}", seed % 100), seed as i64, Totals::default());
    let mut e = Encoder::new(Vec::new(), config, header).unwrap();
    let mut x = seed | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for t in 0..(1 + next() % 3) {
        let table = e
            .table(TableDecl {
                component: if t == 1 { "c".into() } else { String::new() },
                name: format!("t{t}"),
                number: Some(10001 + t as u32),
                number_source: NumberSource::Id,
                rules: if t == 0 {
                    ValueRules::Uniform
                } else {
                    ValueRules::Plain
                },
                expected_documents: 0,
            })
            .unwrap();
        for d in 0..(next() % 20) {
            let line = format!(
                r#"{{"d":{d},"s":"{}"}}"#,
                "x".repeat((next() % 150) as usize)
            );
            e.document(table, line.as_bytes()).unwrap();
        }
        e.end_table(table).unwrap();
    }
    for f in 0..(next() % 3) {
        let data: Vec<u8> = (0..next() % 400).map(|_| next() as u8).collect();
        e.file(FileStart {
            component: String::new(),
            id: format!("f{f}"),
            content_type: (f == 0).then(|| "image/png".into()),
            size: data.len() as u64,
        })
        .unwrap();
        e.file_data(&data).unwrap();
        e.end_file().unwrap();
    }
    e.finish().unwrap().0
}

/// Valid streams to mutate: stored and deflated, small and larger frames.
fn corpus() -> &'static [Vec<u8>] {
    static CORPUS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    CORPUS.get_or_init(|| {
        let mut streams = Vec::new();
        for seed in 1..=6u64 {
            for (max_frame_size, level) in [(64, 0), (128, 5), (300, 0), (4096, 1)] {
                let config = EncoderConfig {
                    max_frame_size,
                    level,
                    resume_from: 0,
                    threads: 1 + (seed % 2) as usize,
                    ..EncoderConfig::default()
                };
                streams.push(snapshot(seed, config));
            }
        }
        streams
    })
}

/// Recomputes the CRC32 of every frame whose bytes are all present.
fn fix_crcs(stream: &mut [u8]) {
    let mut at = STREAM_HEADER_LEN;
    while at + FRAME_HEADER_LEN <= stream.len() {
        let stored = u32::from_le_bytes(stream[at..at + 4].try_into().unwrap()) as usize;
        let end = at + FRAME_HEADER_LEN + stored;
        if end > stream.len() {
            return;
        }
        let mut crc = crc32fast::Hasher::new();
        crc.update(&stream[at..at + 20]);
        crc.update(&stream[at + FRAME_HEADER_LEN..end]);
        stream[at + 20..at + 24].copy_from_slice(&crc.finalize().to_le_bytes());
        at = end;
    }
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Set(usize, u8),
    Insert(usize, Vec<u8>),
    Remove(usize, usize),
    Duplicate(usize, usize),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 0u8..8).prop_map(|(at, bit)| Mutation::Flip(at, 1 << bit)),
        (any::<usize>(), any::<u8>()).prop_map(|(at, v)| Mutation::Set(at, v)),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(at, v)| Mutation::Insert(at, v)),
        (any::<usize>(), 1usize..40).prop_map(|(at, n)| Mutation::Remove(at, n)),
        (any::<usize>(), 1usize..200).prop_map(|(at, n)| Mutation::Duplicate(at, n)),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn apply(stream: &mut Vec<u8>, m: &Mutation) {
    let len = stream.len().max(1);
    match m {
        Mutation::Flip(at, bit) => {
            if let Some(b) = stream.get_mut(at % len) {
                *b ^= bit;
            }
        }
        Mutation::Set(at, v) => {
            if let Some(b) = stream.get_mut(at % len) {
                *b = *v;
            }
        }
        Mutation::Insert(at, bytes) => {
            let at = at % (stream.len() + 1);
            stream.splice(at..at, bytes.iter().copied());
        }
        Mutation::Remove(at, n) => {
            let at = at % len;
            let end = (at + n).min(stream.len());
            stream.drain(at.min(end)..end);
        }
        Mutation::Duplicate(at, n) => {
            let at = at % len;
            let end = (at + n).min(stream.len());
            let copy = stream[at.min(end)..end].to_vec();
            stream.splice(end..end, copy);
        }
        Mutation::Truncate(at) => stream.truncate(at % len),
    }
}

fn slices() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(prop_oneof![1usize..4, 1usize..64, 1usize..5000], 1..6)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Random bytes, after a valid stream header or not.
    #[test]
    fn random_bytes_never_panic(
        with_header in any::<bool>(),
        bytes in prop::collection::vec(any::<u8>(), 0..600),
        slices in slices(),
    ) {
        let mut stream = if with_header { corpus()[0][..STREAM_HEADER_LEN].to_vec() } else { Vec::new() };
        stream.extend(bytes);
        let whole = decode_sliced(&stream, &[usize::MAX]);
        let sliced = decode_sliced(&stream, &slices);
        prop_assert_eq!(whole, sliced);
    }

    /// Valid streams with a few mutations; with their CRC32s fixed up
    /// half the time, so the damage reaches items and order rules.
    #[test]
    fn mutated_streams_never_panic(
        pick in any::<prop::sample::Index>(),
        mutations in prop::collection::vec(mutation(), 1..4),
        fix in any::<bool>(),
        slices in slices(),
    ) {
        let original = &corpus()[pick.index(corpus().len())];
        let mut stream = original.clone();
        for m in &mutations {
            apply(&mut stream, m);
        }
        if fix {
            fix_crcs(&mut stream);
        }
        let whole = decode_sliced(&stream, &[usize::MAX]);
        let sliced = decode_sliced(&stream, &slices);
        prop_assert_eq!(&whole, &sliced);
        // Without forged CRC32s, a stream that still decodes cleanly says
        // what the original said (only a mutation that leaves the bytes as
        // they were gets through).
        if !fix && whole.1.is_ok() {
            let (frames, end) = decode_sliced(original, &[usize::MAX]);
            let items = |f: &[Frame]| f.iter().flat_map(|f| f.items.clone()).collect::<Vec<_>>();
            prop_assert_eq!(items(&whole.0), items(&frames));
            prop_assert_eq!(whole.1, end);
        }
    }

    /// Random snapshots round-trip under random configurations.
    #[test]
    fn random_snapshots_round_trip(
        seed in any::<u64>(),
        max_frame_size in 64usize..3000,
        level in 0u32..10,
        threads in 1usize..=2,
        slices in slices(),
    ) {
        let config = EncoderConfig { max_frame_size, level, resume_from: 0, threads, ..EncoderConfig::default() };
        let stream = snapshot(seed, config);
        let (frames, end) = decode_sliced(&stream, &slices);
        prop_assert!(end.is_ok(), "{:?}", end);
        let last = frames.last().unwrap();
        prop_assert_eq!(last.offset + last.len, stream.len() as u64);
        prop_assert!(frames.iter().all(|f| f.len as usize <= FRAME_HEADER_LEN + max_frame_size));
    }
}
