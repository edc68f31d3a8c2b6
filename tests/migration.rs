//! The migration-item stream: golden vectors, round trips, resumption and
//! every decoder error.

use snappack::convex::value::ValueRules;
use snappack::migration::*;
use snappack::NumberSource;

/// What a stream carries, as the encoder is fed and the decoder rebuilds it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Table(TableDecl, Vec<Vec<u8>>),
    File(FileStart, Vec<u8>),
}

fn table(
    component: &str,
    name: &str,
    number: Option<u32>,
    rules: ValueRules,
    lines: &[&[u8]],
) -> Part {
    Part::Table(
        TableDecl {
            component: component.into(),
            name: name.into(),
            number,
            number_source: if number.is_some() {
                NumberSource::Tables
            } else {
                NumberSource::Unassigned
            },
            rules,
            expected_documents: lines.len() as u64,
        },
        lines.iter().map(|l| l.to_vec()).collect(),
    )
}

fn file(component: &str, id: &str, content_type: Option<&str>, data: &[u8]) -> Part {
    Part::File(
        FileStart {
            component: component.into(),
            id: id.into(),
            content_type: content_type.map(Into::into),
            size: data.len() as u64,
        },
        data.to_vec(),
    )
}

fn header() -> Header {
    Header::new("snappack test", 1_700_000_000_000, Totals::default())
}

/// Encodes `parts`, feeding file data in chunks of `chunk` bytes.
fn encode(parts: &[Part], config: EncoderConfig, chunk: usize) -> (Vec<u8>, EncodeSummary) {
    try_encode(parts, config, chunk).unwrap()
}

fn try_encode(
    parts: &[Part],
    config: EncoderConfig,
    chunk: usize,
) -> Result<(Vec<u8>, EncodeSummary), EncodeError> {
    let mut encoder = Encoder::new(Vec::new(), config, header())?;
    for part in parts {
        match part {
            Part::Table(decl, lines) => {
                let t = encoder.table(decl.clone())?;
                for line in lines {
                    encoder.document(t, line)?;
                }
                encoder.end_table(t)?;
            }
            Part::File(start, data) => {
                encoder.file(start.clone())?;
                for piece in data.chunks(chunk.max(1)) {
                    encoder.file_data(piece)?;
                }
                encoder.end_file()?;
            }
        }
    }
    encoder.finish()
}

/// Decodes a whole stream fed in slices of `slice` bytes and rebuilds the parts.
fn decode(stream: &[u8], slice: usize) -> Result<(Header, Vec<Part>, Vec<Frame>), DecodeError> {
    let mut decoder = Decoder::default();
    let mut frames = Vec::new();
    for piece in stream.chunks(slice.max(1)) {
        for frame in decoder.decode(piece) {
            frames.push(frame?);
        }
        // As a server between requests: nothing it still needs is lost.
        decoder.shrink();
    }
    decoder.finish()?;
    let mut header = None;
    let mut parts: Vec<Part> = Vec::new();
    let mut tables = Vec::new(); // table index -> parts index
    let mut pending: Vec<u8> = Vec::new();
    for item in frames.iter().flat_map(|f| f.items.iter().cloned()) {
        match item {
            Item::Header(h) => header = Some(h),
            Item::Table(decl) => {
                tables.push(parts.len());
                parts.push(Part::Table(decl, Vec::new()));
            }
            Item::Documents { table, data } => {
                pending.extend_from_slice(&data);
                let Part::Table(_, lines) = &mut parts[tables[table as usize]] else {
                    panic!("documents of a file")
                };
                while let Some(end) = pending.iter().position(|&b| b == b'\n') {
                    lines.push(pending[..end].to_vec());
                    pending.drain(..=end);
                }
            }
            Item::File(start) => parts.push(Part::File(start, Vec::new())),
            Item::FileData(data) => match parts.last_mut() {
                Some(Part::File(_, bytes)) => bytes.extend_from_slice(&data),
                _ => panic!("file data outside a file"),
            },
            Item::TableEnd(_) | Item::FileEnd { .. } | Item::Done(_) => {}
        }
    }
    Ok((header.unwrap(), parts, frames))
}

fn sample() -> Vec<Part> {
    vec![
        table(
            "",
            "users",
            Some(10001),
            ValueRules::Uniform,
            &[
                br#"{"_id":"jd7f2yq3tcc5h4ce9qhqdk0ach6hbmyb","_creationTime":1.5,"name":"Ada"}"#,
                br#"{"name":"Grace"}"#,
            ],
        ),
        table("a/b", "empty", None, ValueRules::Plain, &[]),
        file(
            "",
            "kg2ah8mk1xtg35g7zyexyc96e96yr74f",
            Some("text/plain"),
            b"hello",
        ),
    ]
}

fn stored_small() -> EncoderConfig {
    EncoderConfig {
        max_frame_size: 128,
        level: 0,
        resume_from: 0,
        threads: 1,
        ..EncoderConfig::default()
    }
}

/// The golden vector of docs/FORMAT.md: `sample()` stored in frames of at
/// most 128 bytes.
const GOLDEN_STORED: &str = "534e41505041434b0100000080000000c27e9adc5c0000005c0000000000000000000000000000002f321b6e0101000068e5cf8b0100000d000000736e61707061636b2074657374000000000000000000000000000000000000000000000000000000000000000000000000020000000005000000757365727300011127000002000000000000007f0000007f000000010000000000000000000000c8aa49a603000000005d0000007b225f6964223a226a64376632797133746363356834636539716871646b306163683668626d7962222c225f6372656174696f6e54696d65223a312e352c226e616d65223a22416461227d0a7b226e616d65223a224772616365227d0a040000000002000000000000005d00000000000000b59770be80000000800000000200000000000000000000000fef7f240203000000612f6205000000656d7074790300000000000000000000000000040100000000000000000000000000000000000000000000000500000000200000006b67326168386d6b31787467333567377a796578796339366539367972373466010a000000746578742f706c61696e0500000000000000060300000068656c4d0000004d000000030000000000000000000000a9477fdf06020000006c6f072cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824080200000002000000000000005d0000000000000001000000000000000500000000000000";

/// The same input with the default configuration (deflate level 5).
const GOLDEN_DEFAULT: &str = "534e41505041434b0100000000001000a8da017b21010000a3010000000000000000000001000000df6dc1b163646460c8787abe9b918181978181a1382fb1a02031395ba124b5b8848108c00422581918184a8b538b8a191805d5a1620c0c0ccc2022968181a15a293e3345c94a292bc53ccda8b2d0b82439d934c32439d5b230a33025db203139c32c2329b732494947293eb92835b124333f2f24333755c9ca50cf5447292f11c454724c4954aae5aa8671dd8b129353956ab958e0ce80da06025ba717ec6302d99fa89f04725d6a6e414925d83d70c0c288c24500907a0605060686ec74a3c40c8bdc6cc38a927463d374f3aacad48aca644bb3544bb3ca22739334462e06068692d48a12fd829cc4cc3cb03e060606361023233527279f5de793efaef80d8bf9d45e586b1dddf9689eb4985c8cfc72a7b86216e3a4c9dd33543840ee46773bcc5d30f300";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn golden_vectors_are_exact_and_documented() {
    let (stored, summary) = encode(&sample(), stored_small(), 64);
    assert_eq!(hex(&stored), GOLDEN_STORED);
    assert_eq!(summary.frames, 4);
    let (default, summary) = encode(&sample(), EncoderConfig::default(), 64);
    assert_eq!(hex(&default), GOLDEN_DEFAULT);
    assert_eq!(summary.frames, 1);
    let doc: String = include_str!("../docs/FORMAT.md")
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    assert!(
        doc.contains(GOLDEN_STORED),
        "FORMAT.md lacks the stored vector"
    );
    assert!(
        doc.contains(GOLDEN_DEFAULT),
        "FORMAT.md lacks the default vector"
    );
}

#[test]
fn golden_vector_decodes_to_its_items() {
    let stream: Vec<u8> = (0..GOLDEN_STORED.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&GOLDEN_STORED[i..i + 2], 16).unwrap())
        .collect();
    let (header, parts, frames) = decode(&stream, 1).unwrap();
    assert_eq!(header, self::header());
    assert_eq!(parts, sample());
    let sequences: Vec<u64> = frames.iter().map(|f| f.sequence).collect();
    assert_eq!(sequences, [0, 1, 2, 3]);
    assert_eq!(frames[0].offset, STREAM_HEADER_LEN as u64);
    let last = frames.last().unwrap();
    assert_eq!(last.offset + last.len, stream.len() as u64);
    assert_eq!(
        last.items.last(),
        Some(&Item::Done(Totals {
            tables: 2,
            documents: 2,
            document_bytes: 93,
            files: 1,
            file_bytes: 5,
        }))
    );
}

/// A bigger input: several tables, components, a line longer than a frame,
/// files of several sizes (one empty, one incompressible).
fn varied() -> Vec<Part> {
    let mut x = 1u32;
    let mut noise = |n: usize| -> Vec<u8> {
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect()
    };
    let long = format!(r#"{{"text":"{}"}}"#, "ab".repeat(3000)).into_bytes();
    let lines: Vec<Vec<u8>> = (0..300)
        .map(|i| format!(r#"{{"n":{i},"s":"row {i}"}}"#).into_bytes())
        .collect();
    let line_refs: Vec<&[u8]> = lines.iter().map(|l| l.as_slice()).collect();
    let random_file = noise(5000);
    vec![
        table("", "numbers", Some(10001), ValueRules::Uniform, &line_refs),
        table(
            "",
            "long",
            Some(10002),
            ValueRules::Plain,
            &[b"{}", &long, b"", &long],
        ),
        table(
            "c1/c2",
            "nested",
            None,
            ValueRules::Uniform,
            &line_refs[..7],
        ),
        table("", "empty", None, ValueRules::Plain, &[]),
        // Files come after every table.
        file("", "f1", None, b""),
        file("c1", "f2", Some("application/octet-stream"), &random_file),
        file(
            "",
            "f3",
            Some("text/plain"),
            &"text ".repeat(2000).into_bytes(),
        ),
    ]
}

#[test]
fn round_trips_at_every_frame_size_level_and_slicing() {
    let parts = varied();
    for max_frame_size in [64, 100, 1000, 4096, DEFAULT_FRAME_SIZE] {
        for level in [0, 1, 5, 9] {
            let config = EncoderConfig {
                max_frame_size,
                level,
                resume_from: 0,
                threads: 1,
                ..EncoderConfig::default()
            };
            let (stream, summary) = encode(&parts, config, 777);
            // Where frames are cut does not depend on how file data is fed.
            assert_eq!(encode(&parts, config, 1).0, stream);
            assert_eq!(encode(&parts, config, 1 << 20).0, stream);
            // Nor do the bytes on a second compressing thread.
            let two = EncoderConfig {
                threads: 2,
                ..config
            };
            assert_eq!(encode(&parts, two, 777), (stream.clone(), summary));
            for slice in [1, 13, 4096, stream.len()] {
                let (header, decoded, frames) = decode(&stream, slice).unwrap();
                assert_eq!(header, self::header());
                assert_eq!(decoded, parts, "frame size {max_frame_size}, level {level}");
                assert_eq!(frames.len() as u64, summary.frames);
            }
            assert_eq!(summary.totals.tables, 4);
            assert_eq!(summary.totals.documents, 300 + 4 + 7);
            assert_eq!(summary.totals.files, 3);
            assert_eq!(summary.totals.file_bytes, 5000 + 10000);
        }
    }
}

#[test]
fn frames_respect_the_size_bound() {
    let parts = varied();
    for max_frame_size in [64, 200, 4096] {
        let config = EncoderConfig {
            max_frame_size,
            level: 0,
            resume_from: 0,
            threads: 1,
            ..EncoderConfig::default()
        };
        let (stream, _) = encode(&parts, config, 100);
        let (_, _, frames) = decode(&stream, 4096).unwrap();
        for frame in &frames {
            assert!(frame.len as usize <= FRAME_HEADER_LEN + max_frame_size);
        }
        // A line longer than a frame is the only thing split: every other
        // line is whole in one frame.
        let split = frames
            .iter()
            .filter(|f| {
                matches!(f.items.last(), Some(Item::Documents { data, .. }) if data.last() != Some(&b'\n'))
            })
            .count();
        assert!(
            split >= 2 * (6004 / max_frame_size),
            "{split} splits at {max_frame_size}"
        );
    }
}

#[test]
fn shards_write_every_frame_once_with_the_same_bytes() {
    let parts = varied();
    let config = EncoderConfig {
        max_frame_size: 1000,
        level: 5,
        ..EncoderConfig::default()
    };
    let (stream, summary) = encode(&parts, config, 300);
    let (_, _, frames) = decode(&stream, stream.len()).unwrap();
    assert!(frames.len() > 6, "{} frames", frames.len());
    // Frame i's bytes in the whole stream (the first with the stream header).
    let whole: Vec<&[u8]> = frames
        .iter()
        .map(|f| {
            &stream[if f.sequence == 0 {
                0
            } else {
                f.offset as usize
            }..(f.offset + f.len) as usize]
        })
        .collect();
    for shards in [2u64, 3] {
        for shard in 0..shards {
            let (part, part_summary) = encode(
                &parts,
                EncoderConfig {
                    shard,
                    shards,
                    ..config
                },
                77,
            );
            let mine: Vec<u8> = whole
                .iter()
                .enumerate()
                .filter(|(i, _)| *i as u64 % shards == shard)
                .flat_map(|(_, bytes)| bytes.iter().copied())
                .collect();
            assert_eq!(part, mine, "shard {shard} of {shards}");
            assert_eq!(part_summary.frames, summary.frames);
        }
    }
    assert!(snappack::migration::Encoder::new(
        Vec::new(),
        EncoderConfig {
            shard: 2,
            shards: 2,
            ..config
        },
        snappack::migration::Header::new("t", 0, snappack::migration::Totals::default()),
    )
    .is_err());
}

#[test]
fn resuming_at_any_frame_reproduces_the_same_bytes() {
    let parts = varied();
    for level in [0, 5] {
        let config = EncoderConfig {
            max_frame_size: 1000,
            level,
            resume_from: 0,
            threads: 1,
            ..EncoderConfig::default()
        };
        let (stream, summary) = encode(&parts, config, 300);
        let (_, _, frames) = decode(&stream, stream.len()).unwrap();
        // What the receiver has before each frame: the CRC-32 of the payloads before it.
        let crc_before = |sequence: u64| match sequence {
            0 => 0,
            n => frames[n as usize - 1].prefix_crc32,
        };
        for frame in &frames {
            let resumed = EncoderConfig {
                resume_from: frame.sequence,
                resume_crc32: Some(crc_before(frame.sequence)),
                threads: 1 + (frame.sequence % 2) as usize,
                ..config
            };
            let (tail, tail_summary) = encode(&parts, resumed, 999);
            let skipped = if frame.sequence == 0 {
                0
            } else {
                frame.offset as usize
            };
            assert_eq!(
                tail,
                stream[skipped..],
                "resume at frame {}",
                frame.sequence
            );
            assert_eq!(tail_summary.frames, summary.frames);
            assert_eq!(tail_summary.bytes_written, tail.len() as u64);
        }
        // Past the end: nothing to send.
        let (tail, _) = encode(
            &parts,
            EncoderConfig {
                resume_from: summary.frames,
                resume_crc32: Some(crc_before(summary.frames)),
                ..config
            },
            1,
        );
        assert!(tail.is_empty());
    }
}

#[test]
fn resuming_with_other_input_fails_before_writing_a_frame() {
    let parts = varied();
    let config = EncoderConfig {
        max_frame_size: 1000,
        level: 0,
        ..EncoderConfig::default()
    };
    let (stream, summary) = encode(&parts, config, 300);
    let (_, _, frames) = decode(&stream, stream.len()).unwrap();
    let resume_from = summary.frames - 2;
    let resumed = EncoderConfig {
        resume_from,
        resume_crc32: Some(frames[resume_from as usize - 1].prefix_crc32),
        ..config
    };
    // The same input resumes; one byte changed in its first frames, or
    // fewer frames than the receiver has, does not.
    assert!(try_encode(&parts, resumed, 300).is_ok());
    let mut changed = parts.clone();
    let Part::Table(_, lines) = &mut changed[0] else {
        panic!("the first part is a table");
    };
    lines[1][3] ^= 1;
    let error = try_encode(&changed, resumed, 300).unwrap_err();
    assert_eq!(error.code(), "ResumeMismatch");
    assert!(
        error
            .to_string()
            .contains(&format!("first {resume_from} frames")),
        "{error}"
    );
    let shorter = &parts[..1];
    let error = try_encode(shorter, resumed, 300).unwrap_err();
    assert_eq!(error.code(), "ResumeMismatch");
    assert!(error.to_string().contains("fewer than the"), "{error}");
}

#[test]
fn a_receiver_trims_a_partial_tail_and_continues() {
    let config = EncoderConfig {
        max_frame_size: 200,
        level: 5,
        resume_from: 0,
        threads: 1,
        ..EncoderConfig::default()
    };
    let (stream, _) = encode(&varied(), config, 64);
    let cut = stream.len() * 2 / 3;
    let mut decoder = Decoder::default();
    let received: Vec<Frame> = decoder.decode(&stream[..cut]).map(Result::unwrap).collect();
    let Err(DecodeError::Truncated { offset, partial }) = decoder.finish() else {
        panic!("a cut stream is truncated");
    };
    assert_eq!(offset, decoder.committed_offset());
    assert_eq!(offset + partial, cut as u64);
    let last = received.last().unwrap();
    assert_eq!(last.offset + last.len, offset);
    assert_eq!(decoder.next_sequence(), last.sequence + 1);
    // A fresh receiver replays the kept bytes, then takes the sender's
    // resumed output from the next frame on.
    let mut decoder = Decoder::default();
    for frame in decoder.decode(&stream[..offset as usize]) {
        frame.unwrap();
    }
    assert!(matches!(decoder.finish(), Err(DecodeError::MissingDone { offset: o }) if o == offset));
    let (tail, _) = encode(
        &varied(),
        EncoderConfig {
            resume_from: decoder.next_sequence(),
            ..config
        },
        5,
    );
    for frame in decoder.decode(&tail) {
        frame.unwrap();
    }
    assert_eq!(decoder.finish().unwrap().documents, 311);
}

#[test]
fn last_frame_bytes_are_the_frame_as_received() {
    let (stream, _) = encode(&sample(), stored_small(), 64);
    let mut decoder = Decoder::default();
    let mut input = &stream[..];
    let mut rebuilt = stream[..STREAM_HEADER_LEN].to_vec();
    while !input.is_empty() {
        let step = decoder.feed(input).unwrap();
        input = &input[step.consumed..];
        if let Some(frame) = step.frame {
            let bytes = decoder.last_frame_bytes().unwrap();
            assert_eq!(bytes.len() as u64, frame.len);
            rebuilt.extend_from_slice(bytes);
        } else {
            assert!(decoder.last_frame_bytes().is_none());
        }
    }
    assert_eq!(rebuilt, stream);
}

// ---- Decoder errors, on hand-made bytes that follow docs/FORMAT.md ----

fn stream_head(version: u16, flags: u16, max_frame_size: u32) -> Vec<u8> {
    let mut h = b"SNAPPACK".to_vec();
    h.extend(version.to_le_bytes());
    h.extend(flags.to_le_bytes());
    h.extend(max_frame_size.to_le_bytes());
    let crc = crc32fast::hash(&h);
    h.extend(crc.to_le_bytes());
    h
}

fn raw_frame(sequence: u64, method: u8, payload_len: u32, stored: &[u8], reserved: u8) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend((stored.len() as u32).to_le_bytes());
    f.extend(payload_len.to_le_bytes());
    f.extend(sequence.to_le_bytes());
    f.extend([method, reserved, 0, 0]);
    let mut crc = crc32fast::Hasher::new();
    crc.update(&f);
    crc.update(stored);
    f.extend(crc.finalize().to_le_bytes());
    f.extend(stored);
    f
}

fn stored_frame(sequence: u64, payload: &[u8]) -> Vec<u8> {
    raw_frame(sequence, 0, payload.len() as u32, payload, 0)
}

fn string(s: &[u8]) -> Vec<u8> {
    let mut v = (s.len() as u32).to_le_bytes().to_vec();
    v.extend(s);
    v
}

fn totals(t: [u64; 5]) -> Vec<u8> {
    let mut v = (t[0] as u32).to_le_bytes().to_vec();
    for n in &t[1..] {
        v.extend(n.to_le_bytes());
    }
    v
}

fn header_item(version: u16, producer: &[u8]) -> Vec<u8> {
    let mut v = vec![1];
    v.extend(version.to_le_bytes());
    v.extend(7i64.to_le_bytes());
    v.extend(string(producer));
    v.extend(totals([0; 5]));
    v
}

fn table_item(source: u8, rules: u8) -> Vec<u8> {
    named_table_item(b"t", source, rules)
}

fn named_table_item(name: &[u8], source: u8, rules: u8) -> Vec<u8> {
    let mut v = vec![2];
    v.extend(string(b""));
    v.extend(string(name));
    v.push(source);
    v.push(rules);
    v.extend(0u32.to_le_bytes());
    v.extend(0u64.to_le_bytes());
    v
}

fn documents_item(table: u32, data: &[u8]) -> Vec<u8> {
    let mut v = vec![3];
    v.extend(table.to_le_bytes());
    v.extend(string(data));
    v
}

fn table_end_item(table: u32, documents: u64, data: &[u8]) -> Vec<u8> {
    let mut v = vec![4];
    v.extend(table.to_le_bytes());
    v.extend(documents.to_le_bytes());
    v.extend((data.len() as u64).to_le_bytes());
    v.extend(crc32fast::hash(data).to_le_bytes());
    v
}

fn file_item(size: u64) -> Vec<u8> {
    let mut v = vec![5];
    v.extend(string(b""));
    v.extend(string(b"id"));
    v.push(0);
    v.extend(size.to_le_bytes());
    v
}

fn file_data_item(data: &[u8]) -> Vec<u8> {
    let mut v = vec![6];
    v.extend(string(data));
    v
}

fn file_end_item(data: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    let mut v = vec![7];
    v.extend(sha2::Sha256::digest(data));
    v
}

fn done_item(t: [u64; 5]) -> Vec<u8> {
    let mut v = vec![8];
    v.extend(totals(t));
    v
}

/// A stream of stored frames, one per payload.
fn stream_of(payloads: &[Vec<u8>]) -> Vec<u8> {
    let mut s = stream_head(1, 0, 4096);
    for (i, p) in payloads.iter().enumerate() {
        s.extend(stored_frame(i as u64, p));
    }
    s
}

fn error_of(stream: &[u8]) -> DecodeError {
    let mut decoder = Decoder::default();
    for frame in decoder.decode(stream) {
        if let Err(error) = frame {
            return error;
        }
    }
    decoder.finish().unwrap_err()
}

fn concat(parts: &[Vec<u8>]) -> Vec<u8> {
    parts.concat()
}

const FIRST: u64 = STREAM_HEADER_LEN as u64;

#[test]
fn hand_made_stream_decodes() {
    let data = b"{}\n{\"a\":1}\n";
    let stream = stream_of(&[
        header_item(1, b"hand"),
        concat(&[table_item(3, 1), documents_item(0, &data[..4])]),
        concat(&[documents_item(0, &data[4..]), table_end_item(0, 2, data)]),
        concat(&[file_item(3), file_data_item(b"abc"), file_end_item(b"abc")]),
        done_item([1, 2, data.len() as u64, 1, 3]),
    ]);
    let (header, parts, _) = decode(&stream, 3).unwrap();
    assert_eq!(header.producer, "hand");
    assert_eq!(parts.len(), 2);
    let Part::Table(decl, lines) = &parts[0] else {
        panic!("a table first")
    };
    assert_eq!(decl.rules, ValueRules::Uniform);
    assert_eq!(lines.len(), 2);
}

#[test]
fn stream_header_errors() {
    let good = stream_of(&[concat(&[header_item(1, b""), done_item([0; 5])])]);
    decode(&good, 1).unwrap();
    let mut bad = good.clone();
    bad[0] = b's';
    assert_eq!(error_of(&bad), DecodeError::BadMagic);
    let mut v2 = stream_head(2, 0, 4096);
    v2.extend(&good[STREAM_HEADER_LEN..]);
    assert_eq!(
        error_of(&v2),
        DecodeError::UnsupportedVersion { version: 2 }
    );
    let mut crc = good.clone();
    crc[19] ^= 1;
    let flags = stream_head(1, 1, 4096);
    let tiny = stream_head(1, 0, 63);
    let huge = stream_head(1, 0, 64 << 20);
    let over_format = stream_head(1, 0, (64 << 20) + 1);
    for bad in [&crc[..], &flags, &tiny, &over_format] {
        let error = error_of(bad);
        assert_eq!(error.code(), "BadStreamHeader", "{error}");
        assert_eq!(error.offset(), 0);
    }
    // Frames larger than this decoder takes: said so, with both sizes.
    let error = error_of(&huge);
    assert_eq!(
        error,
        DecodeError::FrameSizeOverLimit {
            size: 64 << 20,
            limit: DEFAULT_MAX_FRAME_SIZE as u64
        }
    );
    assert_eq!((error.code(), error.offset()), ("FrameTooLarge", 0));
    assert!(!error.is_retryable());
    assert_eq!(
        error.to_string(),
        format!(
            "the stream's frames may be {} bytes, over the limit of {}",
            64 << 20,
            DEFAULT_MAX_FRAME_SIZE
        )
    );
    // A decoder configured for larger frames takes the huge one.
    let mut decoder = Decoder::new(DecoderConfig {
        max_frame_size: 64 << 20,
    });
    decoder.feed(&huge).unwrap();
}

#[test]
fn frame_level_errors_name_the_frame() {
    let header = header_item(1, b"");
    let second = concat(&[
        table_item(3, 0),
        table_end_item(0, 0, b""),
        done_item([1, 0, 0, 0, 0]),
    ]);
    let good = stream_of(&[header.clone(), second.clone()]);
    decode(&good, 7).unwrap();
    let frame1 = FIRST + (FRAME_HEADER_LEN + header.len()) as u64;
    let head = |frames: &[Vec<u8>]| {
        let mut s = stream_head(1, 0, 4096);
        s.extend(stored_frame(0, &header));
        s.extend(frames.concat());
        s
    };

    let oversize = head(&[raw_frame(1, 0, 4097, &[0; 4097], 0)]);
    assert_eq!(
        error_of(&oversize),
        DecodeError::FrameTooLarge {
            offset: frame1,
            size: 4097,
            limit: 4096
        }
    );
    // The length is checked before the payload is awaited.
    let mut decoder = Decoder::default();
    let result: Vec<_> = decoder
        .decode(&oversize[..frame1 as usize + FRAME_HEADER_LEN])
        .collect();
    assert!(matches!(
        result.last(),
        Some(Err(DecodeError::FrameTooLarge { .. }))
    ));

    let mut flipped = good.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 0x40;
    let error = error_of(&flipped);
    assert!(
        matches!(error, DecodeError::Checksum { offset, .. } if offset == frame1),
        "{error}"
    );

    let gap = head(&[stored_frame(2, &second)]);
    assert_eq!(
        error_of(&gap),
        DecodeError::SequenceGap {
            offset: frame1,
            expected: 1,
            found: 2
        }
    );

    let bad_headers = [
        (
            raw_frame(1, 0, second.len() as u32, &second, 1),
            "reserved bytes are not zero",
        ),
        (
            raw_frame(1, 7, second.len() as u32, &second, 0),
            "unknown compression method",
        ),
        (raw_frame(1, 0, 0, &[], 0), "empty payload"),
        (
            raw_frame(1, 0, 1000, &second, 0),
            "stored payload length differs",
        ),
        (
            raw_frame(1, 1, second.len() as u32, &second, 0),
            "compressed payload is not smaller",
        ),
    ];
    for (frame, reason) in bad_headers {
        assert_eq!(
            error_of(&head(&[frame])),
            DecodeError::BadFrameHeader {
                offset: frame1,
                reason
            }
        );
    }

    for garbage in [
        &[0xff, 0xff, 0xff][..],
        b"\x03\x00",
        b"\x01\x02\x00\xfd\xffab",
    ] {
        let inflate = head(&[raw_frame(1, 1, 10, garbage, 0)]);
        assert_eq!(error_of(&inflate), DecodeError::Inflate { offset: frame1 });
    }
    // A valid deflate stream that inflates to fewer or more bytes than declared.
    let deflated = {
        use std::io::Write;
        let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(&second).unwrap();
        e.finish().unwrap()
    };
    for declared in [second.len() as u32 - 1, second.len() as u32 + 1] {
        let inflate = head(&[raw_frame(1, 1, declared, &deflated, 0)]);
        assert_eq!(error_of(&inflate), DecodeError::Inflate { offset: frame1 });
    }
    // And the right length decodes.
    decode(
        &head(&[raw_frame(1, 1, second.len() as u32, &deflated, 0)]),
        5,
    )
    .unwrap();
}

#[test]
fn retryable_errors_leave_the_decoder_expecting_the_frame_again() {
    let (stream, _) = encode(
        &varied(),
        EncoderConfig {
            max_frame_size: 500,
            ..EncoderConfig::default()
        },
        64,
    );
    let (_, _, frames) = decode(&stream, stream.len()).unwrap();
    let victim = &frames[3];
    let start = victim.offset as usize;
    let end = start + victim.len as usize;
    let mut decoder = Decoder::default();
    for frame in decoder.decode(&stream[..start]) {
        frame.unwrap();
    }
    let mut damaged = stream[start..end].to_vec();
    damaged[30] ^= 1;
    let error = decoder.decode(&damaged).next().unwrap().unwrap_err();
    assert!(matches!(error, DecodeError::Checksum { offset, .. } if offset == victim.offset));
    assert!(error.is_retryable());
    assert_eq!(decoder.committed_offset(), victim.offset);
    // The next frame in its place is also refused: the sequence is checked.
    let next = &stream[end..end + frames[4].len as usize];
    let error = decoder.decode(next).next().unwrap().unwrap_err();
    assert_eq!(
        error,
        DecodeError::SequenceGap {
            offset: victim.offset,
            expected: 3,
            found: 4
        }
    );
    // The frame sent again, and the rest, decode.
    let again: Vec<Frame> = decoder
        .decode(&stream[start..])
        .map(Result::unwrap)
        .collect();
    assert_eq!(again[0], *victim);
    decoder.finish().unwrap();
}

#[test]
fn item_errors_name_the_item() {
    let header = header_item(1, b"");
    let at = header.len() as u64;
    let case = |second: Vec<u8>| error_of(&stream_of(&[concat(&[header.clone(), second])]));

    assert_eq!(
        case(vec![0x63, 0, 0]),
        DecodeError::UnknownItem {
            offset: FIRST,
            at,
            tag: 0x63
        }
    );
    assert_eq!(
        error_of(&stream_of(&[vec![0]])),
        DecodeError::UnknownItem {
            offset: FIRST,
            at: 0,
            tag: 0
        }
    );
    let malformed = [
        (
            header_item(1, b"ab")[..10].to_vec(),
            "item runs past the end of the frame",
        ),
        (header_item(1, b"\xff"), "string is not UTF-8"),
        (table_item(9, 0), "unknown number source"),
        (table_item(3, 2), "unknown value rules"),
        (table_item(3, 0xff), "unknown value rules"),
        (documents_item(0, b""), "empty data"),
        (file_data_item(b""), "empty data"),
        (
            concat(&[vec![5], string(b""), string(b"id"), vec![2]]),
            "bad content type flag",
        ),
        (vec![4, 0, 0], "item runs past the end of the frame"),
    ];
    for (item, reason) in malformed {
        assert_eq!(
            case(item),
            DecodeError::MalformedItem {
                offset: FIRST,
                at,
                reason
            }
        );
    }
}

#[test]
fn order_and_content_errors_name_the_item() {
    let h = header_item(1, b"");
    let t = table_item(3, 0);
    let order = [
        (vec![t.clone()], "a table declaration before the header"),
        (vec![h.clone(), h.clone()], "a second header"),
        (
            vec![header_item(2, b"")],
            "header version 2 in a version 1 stream",
        ),
        (
            vec![h.clone(), documents_item(0, b"{}\n")],
            "documents of undeclared table 0",
        ),
        (
            vec![
                h.clone(),
                t.clone(),
                table_end_item(0, 0, b""),
                documents_item(0, b"{}\n"),
            ],
            "documents of ended table 0",
        ),
        (
            vec![
                h.clone(),
                t.clone(),
                table_end_item(0, 0, b""),
                table_end_item(0, 0, b""),
            ],
            "the end of ended table 0",
        ),
        (
            vec![
                h.clone(),
                t.clone(),
                named_table_item(b"u", 3, 0),
                documents_item(0, b"{"),
                documents_item(1, b"}\n"),
            ],
            "documents while a line of table 0 is unfinished",
        ),
        (
            vec![h.clone(), t.clone(), t.clone()],
            "table t of component '' is declared twice",
        ),
        (
            vec![h.clone(), t.clone(), file_item(0)],
            "stored file id before every table is ended: files come after the tables",
        ),
        (
            vec![h.clone(), file_item(0), file_end_item(b""), t.clone()],
            "table t declared after a storage file: tables come first",
        ),
        (
            vec![h.clone(), file_item(0), file_end_item(b""), file_item(0)],
            "stored file id of component '' is sent twice",
        ),
        (
            vec![
                h.clone(),
                t.clone(),
                documents_item(0, b"{"),
                table_end_item(0, 0, b"{"),
            ],
            "a table end while a line of table 0 is unfinished",
        ),
        (
            vec![h.clone(), file_data_item(b"x")],
            "file data outside a storage file",
        ),
        (
            vec![h.clone(), file_end_item(b"")],
            "file end outside a storage file",
        ),
        (
            vec![h.clone(), file_item(1), t.clone()],
            "a table declaration inside a storage file",
        ),
        (
            vec![h.clone(), file_item(0), file_item(0)],
            "a storage file inside a storage file",
        ),
        (
            vec![h.clone(), t.clone(), done_item([1, 0, 0, 0, 0])],
            "Done before table 0 is ended",
        ),
        (
            vec![h.clone(), file_item(0), done_item([0, 0, 0, 1, 0])],
            "Done inside a storage file",
        ),
        (
            vec![h.clone(), done_item([0; 5]), t.clone()],
            "a table declaration after Done",
        ),
    ];
    for (items, reason) in order {
        let at = items[..items.len() - 1].iter().map(Vec::len).sum::<usize>() as u64;
        assert_eq!(
            error_of(&stream_of(&[items.concat()])),
            DecodeError::OrderViolation {
                offset: FIRST,
                at,
                reason: reason.into()
            },
            "{reason}"
        );
    }
    let mismatch = [
        vec![
            h.clone(),
            t.clone(),
            documents_item(0, b"{}\n"),
            table_end_item(0, 2, b"{}\n"),
        ],
        vec![
            h.clone(),
            t.clone(),
            documents_item(0, b"{}\n"),
            table_end_item(0, 1, b"[]\n"),
        ],
        vec![h.clone(), file_item(1), file_data_item(b"ab")],
        vec![
            h.clone(),
            file_item(3),
            file_data_item(b"ab"),
            file_end_item(b"ab"),
        ],
        vec![
            h.clone(),
            file_item(2),
            file_data_item(b"ab"),
            file_end_item(b"ba"),
        ],
        vec![h.clone(), done_item([0, 0, 0, 0, 1])],
    ];
    for items in mismatch {
        let at = items[..items.len() - 1].iter().map(Vec::len).sum::<usize>() as u64;
        let error = error_of(&stream_of(&[items.concat()]));
        assert!(
            matches!(&error, DecodeError::ContentMismatch { offset: FIRST, at: a, .. } if *a == at),
            "{error}"
        );
        assert!(!error.is_retryable());
    }
    // Totals are told in words, not as a Rust structure.
    let error = error_of(&stream_of(&[
        [h.clone(), done_item([0, 0, 0, 0, 1])].concat()
    ]));
    assert!(
        error
            .to_string()
            .contains("Done says 0 tables, 0 documents (0 bytes), 0 files (1 bytes)"),
        "{error}"
    );
}

#[test]
fn stream_end_errors() {
    let (stream, _) = encode(&sample(), stored_small(), 64);
    let mut trailing = stream.clone();
    trailing.push(0);
    assert_eq!(
        error_of(&trailing),
        DecodeError::TrailingData {
            offset: stream.len() as u64
        }
    );
    assert_eq!(
        error_of(&[]),
        DecodeError::Truncated {
            offset: 0,
            partial: 0
        }
    );
    assert_eq!(
        error_of(&stream[..5]),
        DecodeError::Truncated {
            offset: 0,
            partial: 5
        }
    );
    assert!(error_of(&stream[..5])
        .to_string()
        .contains("incomplete stream header or first frame"));
    assert_eq!(error_of(&stream[..stream.len() - 1]).code(), "Truncated");
    assert_eq!(
        error_of(&stream[..STREAM_HEADER_LEN]),
        DecodeError::MissingDone { offset: FIRST }
    );
    // Errors are final: the decoder keeps answering with the same one.
    let mut decoder = Decoder::default();
    let error = decoder.decode(&trailing).last().unwrap().unwrap_err();
    assert_eq!(decoder.feed(b"more"), Err(error.clone()));
    assert_eq!(decoder.finish(), Err(error));
}

#[test]
fn every_decode_error_code_is_distinct() {
    let codes = [
        "BadMagic",
        "UnsupportedVersion",
        "BadStreamHeader",
        "FrameTooLarge",
        "Checksum",
        "SequenceGap",
        "BadFrameHeader",
        "Inflate",
        "UnknownItem",
        "MalformedItem",
        "OrderViolation",
        "ContentMismatch",
        "TrailingData",
        "Truncated",
        "MissingDone",
    ];
    let unique: std::collections::BTreeSet<_> = codes.iter().collect();
    assert_eq!(unique.len(), codes.len());
}

// ---- Encoder errors ----

#[test]
fn encoder_refuses_what_a_decoder_would() {
    let config = EncoderConfig::default();
    let new = || Encoder::new(Vec::new(), config, header()).unwrap();
    let decl = || match &sample()[0] {
        Part::Table(decl, _) => decl.clone(),
        _ => unreachable!(),
    };

    let mut e = new();
    assert_eq!(e.document(0, b"{}").unwrap_err().code(), "OrderViolation");
    let t = e.table(decl()).unwrap();
    e.document(t, b"{}").unwrap();
    let err = e.document(t, b"{\n}").unwrap_err();
    assert!(
        matches!(
            err,
            EncodeError::NewlineInDocument {
                table: 0,
                document: 1
            }
        ),
        "{err}"
    );
    e.end_table(t).unwrap();
    assert_eq!(e.end_table(t).unwrap_err().code(), "OrderViolation");
    assert_eq!(e.file_data(b"x").unwrap_err().code(), "OrderViolation");
    e.file(FileStart {
        component: String::new(),
        id: "i".into(),
        content_type: None,
        size: 2,
    })
    .unwrap();
    assert_eq!(e.table(decl()).unwrap_err().code(), "OrderViolation");
    assert_eq!(e.file_data(b"abc").unwrap_err().code(), "ContentMismatch");
    e.file_data(b"a").unwrap();
    assert_eq!(e.end_file().unwrap_err().code(), "ContentMismatch");

    let mut e = new();
    e.table(decl()).unwrap();
    assert_eq!(e.finish().unwrap_err().code(), "OrderViolation");

    let mut e = new();
    let mut zero = decl();
    zero.number = Some(0);
    assert_eq!(e.table(zero).unwrap_err().code(), "OrderViolation");

    let small = EncoderConfig {
        max_frame_size: 64,
        ..config
    };
    let big = Header::new("x".repeat(100), 0, Totals::default());
    let err = Encoder::new(Vec::new(), small, big).err().unwrap();
    assert!(
        matches!(
            err,
            EncodeError::ItemTooLarge {
                size: 151,
                limit: 64
            }
        ),
        "{err}"
    );

    for bad in [
        EncoderConfig {
            max_frame_size: 63,
            ..config
        },
        EncoderConfig {
            max_frame_size: (64 << 20) + 1,
            ..config
        },
        EncoderConfig {
            level: 10,
            ..config
        },
    ] {
        let err = Encoder::new(Vec::new(), bad, header()).err().unwrap();
        assert_eq!(err.code(), "InvalidConfig");
    }
}
