//! `pack` and `unpack` on generated snapshots: a round trip gives back every
//! document line and every stored file byte for byte.

mod common;

use std::collections::BTreeMap;
use std::io::{Cursor, Read};

use snappack::convex::value::ValueRules;
use snappack::gen::{write_snapshot, Fault, GenSpec};
use snappack::migration::*;
use snappack::report::Code;
use snappack::validate::Options;

fn generate(spec: &GenSpec) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    write_snapshot(&mut out, spec).expect("generates");
    out.into_inner()
}

fn options(force: bool) -> PackOptions {
    PackOptions {
        force,
        producer: "snappack test".into(),
        created_at_ms: 1_700_000_000_000,
        ..PackOptions::default()
    }
}

fn pack_zip(zip: &[u8], options: &PackOptions) -> Result<(Vec<u8>, Packed), PackError> {
    pack(
        Cursor::new(zip),
        "snapshot.zip",
        Vec::new(),
        options,
        &mut |_| true,
    )
}

/// Every entry of a ZIP by name.
fn entries(zip: &[u8]) -> BTreeMap<String, Vec<u8>> {
    let mut archive = zip::ZipArchive::new(Cursor::new(zip)).unwrap();
    (0..archive.len())
        .map(|i| {
            let mut file = archive.by_index(i).unwrap();
            let mut content = Vec::new();
            file.read_to_end(&mut content).unwrap();
            (file.name().unwrap().into_owned(), content)
        })
        .collect()
}

/// What a stream rebuilds: `documents.jsonl` per table and stored files,
/// under their archive names.
fn unpack_to_entries(stream: &[u8]) -> (Unpacked, BTreeMap<String, Vec<u8>>) {
    let mut tables: Vec<String> = Vec::new();
    let mut out: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut file: Option<String> = None;
    let unpacked = unpack(stream, DecoderConfig::default(), &mut |item| {
        match item {
            Item::Table(t) => {
                let name = format!(
                    "{}{}/documents.jsonl",
                    component_prefix(&t.component),
                    t.name
                );
                out.insert(name.clone(), Vec::new());
                tables.push(name);
            }
            Item::Documents { table, data } => out
                .get_mut(&tables[*table as usize])
                .unwrap()
                .extend_from_slice(data),
            Item::File(f) => {
                let name = format!("{}_storage/{}", component_prefix(&f.component), f.id);
                out.insert(name.clone(), Vec::new());
                file = Some(name);
            }
            Item::FileData(data) => out
                .get_mut(file.as_ref().unwrap())
                .unwrap()
                .extend_from_slice(data),
            _ => {}
        }
        Ok(())
    })
    .unwrap();
    (unpacked, out)
}

#[test]
fn round_trip_reproduces_every_line_and_file() {
    let spec = GenSpec {
        tables: 3,
        documents_per_table: 300,
        components: vec!["a".into(), "a/b".into()],
        storage_files: 4,
        storage_max_bytes: 50_000,
        ..GenSpec::default()
    };
    let zip = generate(&spec);
    let (stream, packed) = pack_zip(&zip, &options(false)).unwrap();
    assert!(packed.report.valid);
    let (unpacked, rebuilt) = unpack_to_entries(&stream);
    assert_eq!(unpacked.header.producer, "snappack test");
    assert_eq!(unpacked.totals, packed.summary.totals);
    assert_eq!(unpacked.totals.documents, packed.report.documents);
    assert_eq!(unpacked.bytes, stream.len() as u64);

    let source = entries(&zip);
    // Every rebuilt table and file is the source entry, byte for byte
    // (stored files keep their extension in the archive).
    for (name, content) in &rebuilt {
        let original = source
            .iter()
            .find(|(n, _)| {
                *n == name
                    || n.strip_prefix(name.as_str())
                        .is_some_and(|ext| ext.starts_with('.'))
            })
            .unwrap_or_else(|| panic!("{name} is not in the source"));
        assert!(original.1 == content, "{name} differs");
    }
    // And nothing importable is missing.
    let tables = source
        .keys()
        .filter(|n| n.ends_with("/documents.jsonl") && !n.contains("_tables/"))
        .count();
    let files = source
        .keys()
        .filter(|n| n.contains("_storage/") && !n.ends_with("documents.jsonl"))
        .count();
    assert_eq!(unpacked.tables.len(), tables);
    assert_eq!(unpacked.totals.files as usize, files);
    // Each table declares the rules of its generated schema: uniform where
    // the archive has a `"uniform"` one, plain where it has none.
    let mut uniform = 0;
    for t in &unpacked.tables {
        let schema = format!(
            "{}{}/generated_schema.jsonl",
            component_prefix(&t.component),
            t.name
        );
        let expected = match source.get(&schema) {
            Some(s) if s.as_slice() == b"\"uniform\"\n" => ValueRules::Uniform,
            None => ValueRules::Plain,
            Some(s) => panic!("{schema}: {}", String::from_utf8_lossy(s)),
        };
        uniform += usize::from(expected == ValueRules::Uniform);
        assert_eq!(t.rules, expected, "{}/{}", t.component, t.name);
    }
    assert!(uniform >= 9, "the generated tables are uniform");
    assert!(files >= 12 && unpacked.tables.iter().any(|t| t.component == "a/b"));
}

#[test]
fn packing_is_deterministic_and_resumable() {
    let zip = generate(&GenSpec {
        storage_files: 2,
        ..GenSpec::default()
    });
    let config = EncoderConfig {
        max_frame_size: 4096,
        ..EncoderConfig::default()
    };
    let options = PackOptions {
        encoder: config,
        ..options(false)
    };
    let (stream, packed) = pack_zip(&zip, &options).unwrap();
    assert_eq!(pack_zip(&zip, &options).unwrap().0, stream);
    assert!(packed.summary.frames > 5);
    // Two threads, inflating and checking, compressing frames: the same bytes.
    let two_threads = PackOptions {
        encoder: EncoderConfig {
            threads: 2,
            ..config
        },
        validate: Options {
            threads: 2,
            ..options.validate.clone()
        },
        ..options.clone()
    };
    let (two, two_packed) = pack_zip(&zip, &two_threads).unwrap();
    assert!(two == stream, "two threads packed other bytes");
    assert_eq!(two_packed.summary, packed.summary);
    let mut decoder = Decoder::default();
    let frames: Vec<Frame> = decoder.decode(&stream).map(Result::unwrap).collect();
    let resume = &frames[frames.len() / 2];
    let resumed = PackOptions {
        encoder: EncoderConfig {
            resume_from: resume.sequence,
            ..config
        },
        ..options
    };
    let (tail, _) = pack_zip(&zip, &resumed).unwrap();
    assert_eq!(tail, stream[resume.offset as usize..]);
}

/// Continuing a receiver's frames, an invalid document among those it has
/// means the input is another (it checked them): `ResumeMismatch`, which a
/// client reports without cancelling the import. One past them is the
/// input's own error, refused as any.
#[test]
fn an_invalid_document_in_the_receivers_frames_is_another_input() {
    let lines: Vec<String> = (0..400)
        .map(|i| format!(r#"{{"n":{i},"text":"{}"}}"#, "x".repeat(80)))
        .collect();
    let input = |bad: Option<usize>| -> Vec<u8> {
        let mut lines = lines.clone();
        if let Some(bad) = bad {
            lines[bad] = r#"{"n":"#.into();
        }
        (lines.join("\n") + "\n").into_bytes()
    };
    let options = PackOptions {
        validate: snappack::Options {
            table: Some("items".into()),
            ..Default::default()
        },
        encoder: EncoderConfig {
            max_frame_size: 4096,
            ..EncoderConfig::default()
        },
        ..options(false)
    };
    let pack_jsonl = |bytes: Vec<u8>, options: &PackOptions| {
        pack(
            Cursor::new(bytes),
            "items.jsonl",
            Vec::new(),
            options,
            &mut |_| true,
        )
    };
    let (stream, packed) = pack_jsonl(input(None), &options).unwrap();
    let frames: Vec<Frame> = Decoder::default()
        .decode(&stream)
        .map(Result::unwrap)
        .collect();
    assert!(
        packed.summary.frames > 6,
        "{} frames",
        packed.summary.frames
    );
    let resume_from = packed.summary.frames / 2;
    let resumed = PackOptions {
        encoder: EncoderConfig {
            resume_from,
            resume_crc32: Some(frames[resume_from as usize - 1].prefix_crc32),
            ..options.encoder
        },
        ..options.clone()
    };
    assert!(pack_jsonl(input(None), &resumed).is_ok());
    let error = pack_jsonl(input(Some(3)), &resumed).unwrap_err();
    assert_eq!(error.code(), "ResumeMismatch", "{error}");
    let error = pack_jsonl(input(Some(398)), &resumed).unwrap_err();
    assert!(matches!(error, PackError::Invalid(_)), "{error}");
}

/// Continuing a receiver's frames with the same file packed for another
/// table (or component, or schema) makes other frames: the mismatch says
/// so, since the file itself is the one the import was started with.
/// Before, it said only that the input was another.
#[test]
fn resuming_for_another_table_says_the_target_may_differ() {
    let jsonl: String = (0..400)
        .map(|i| format!("{{\"n\":{i},\"text\":\"{}\"}}\n", "x".repeat(80)))
        .collect();
    let packed_for = |table: &str, encoder: EncoderConfig| {
        let options = PackOptions {
            validate: snappack::Options {
                table: Some(table.into()),
                ..Default::default()
            },
            encoder,
            ..options(false)
        };
        pack(
            Cursor::new(jsonl.as_bytes()),
            "items.jsonl",
            Vec::new(),
            &options,
            &mut |_| true,
        )
    };
    let encoder = EncoderConfig {
        max_frame_size: 4096,
        ..EncoderConfig::default()
    };
    let (stream, packed) = packed_for("items", encoder).unwrap();
    let frames: Vec<Frame> = Decoder::default()
        .decode(&stream)
        .map(Result::unwrap)
        .collect();
    let resume_from = packed.summary.frames / 2;
    let resumed = EncoderConfig {
        resume_from,
        resume_crc32: Some(frames[resume_from as usize - 1].prefix_crc32),
        ..encoder
    };
    assert!(packed_for("items", resumed).is_ok());
    let error = packed_for("things", resumed).unwrap_err();
    assert_eq!(error.code(), "ResumeMismatch", "{error}");
    assert!(
        error.to_string().contains(
            "or not packed for the same target (the component, a single-table file's table, a \
             CSV file's schema: give the ones the import was started with)"
        ),
        "{error}"
    );
}

#[test]
fn invalid_input_is_refused_unless_forced() {
    let zip = generate(&GenSpec {
        faults: vec![Fault::DuplicateId, Fault::BadJsonLine],
        ..GenSpec::default()
    });
    let error = pack_zip(&zip, &options(false)).unwrap_err();
    let PackError::Invalid(report) = &error else {
        panic!("{error}");
    };
    assert_eq!(error.code(), "InvalidInput");
    assert!(report.errors.iter().any(|e| e.code == Code::DuplicateId));

    let (stream, packed) = pack_zip(&zip, &options(true)).unwrap();
    assert!(!packed.report.valid);
    // Forced: every line read is packed, the invalid ones included.
    let (unpacked, _) = unpack_to_entries(&stream);
    assert_eq!(unpacked.totals.documents, packed.report.documents);
}

#[test]
fn force_does_not_pack_past_an_entry_it_could_not_read() {
    let mut zip = generate(&GenSpec::default());
    let mut archive = zip::ZipArchive::new(Cursor::new(zip.clone())).unwrap();
    let (start, len) = (0..archive.len())
        .find_map(|i| {
            let e = archive.by_index_raw(i).unwrap();
            let name = e.name().unwrap();
            (name.ends_with("/documents.jsonl") && !name.starts_with('_'))
                .then(|| (e.header_start() as usize, e.compressed_size() as usize))
        })
        .unwrap();
    // A damaged deflate stream: the rest of that table cannot be read.
    zip[start + 100 + len / 2] ^= 0xFF;
    let error = pack_zip(&zip, &options(true)).unwrap_err();
    let PackError::Invalid(report) = &error else {
        panic!("{error}");
    };
    assert!(
        report.errors.iter().any(|e| e.code == Code::InvalidZip),
        "{:#?}",
        report.errors
    );
}

/// The same when that error is past `max_errors`, so not listed: forced,
/// the table was packed cut short at the damage, and said to be packed.
#[test]
fn force_does_not_pack_past_an_unread_entry_whose_error_is_not_listed() {
    use std::io::Write;
    let mut lines = String::from("{\"n\":\n");
    for n in 0..3000 {
        lines += &format!("{{\"n\":{n}}}\n");
    }
    let mut encoder =
        flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(lines.as_bytes()).unwrap();
    encoder.flush().unwrap();
    // Then a block of the reserved type 3: the rest cannot be read.
    let mut raw = encoder.get_ref().clone();
    raw.push(0x07);
    let whole = lines + "{\"n\":3000}\n";
    let zip = common::zip_raw("users/documents.jsonl", 8, &raw, whole.as_bytes());
    for max_errors in [None, Some(1)] {
        let mut options = options(true);
        options.validate.max_errors = max_errors;
        let report = match pack_zip(&zip, &options) {
            Err(PackError::Invalid(report)) => report,
            Err(error) => panic!("{max_errors:?}: {error}"),
            Ok((_, packed)) => panic!("{max_errors:?}: packed {:?}", packed.summary),
        };
        assert_eq!(report.error_count, 2, "{:#?}", report.errors);
        assert_eq!(report.errors[0].code, Code::JsonInvalidRow);
    }
}

#[test]
fn force_does_not_pack_an_input_with_entries_it_must_leave_out() {
    // A table folder that is not a table name: its entry is not read.
    let zip = common::zip(&[
        ("bad-name/documents.jsonl", b"{\"a\":1}\n"),
        ("ok/documents.jsonl", b"{\"b\":2}\n"),
    ]);
    let error = pack_zip(&zip, &options(true)).unwrap_err();
    let PackError::Invalid(report) = &error else {
        panic!("{error}");
    };
    assert!(report
        .errors
        .iter()
        .any(|e| e.entry.as_deref() == Some("bad-name/documents.jsonl")));

    // A `_tables` row that declares no table (its number is another's): the
    // stream has no place for it, so the server could not refuse it.
    let zip = common::zip(&[
        (
            "_tables/documents.jsonl",
            b"{\"name\":\"a\",\"id\":10001}\n{\"name\":\"ghost\",\"id\":10001}\n",
        ),
        ("a/documents.jsonl", b"{\"b\":2}\n"),
    ]);
    let error = pack_zip(&zip, &options(true)).unwrap_err();
    let PackError::Invalid(report) = &error else {
        panic!("{error}");
    };
    assert_eq!(
        report.errors.iter().map(|e| e.code).collect::<Vec<_>>(),
        [Code::InvalidId]
    );

    // A line longer than any read, and a JSON array over Convex's bound:
    // what follows or all of it is not read, so the stream would lack it.
    let mut long = b"{\"a\":1".to_vec();
    long.resize((64 << 20) + 1, b' ');
    long.extend_from_slice(b"}\n{\"b\":2}\n");
    let mut big = b"[".to_vec();
    big.extend(std::iter::repeat_n(b"{\"a\":1},".as_slice(), 2_200_000).flatten());
    big.extend_from_slice(b"{\"a\":1}]");
    for (name, input, code) in [
        ("long.jsonl", long, Code::ValueTooLargeError),
        ("big.json", big, Code::JsonArrayTooLarge),
    ] {
        let options = PackOptions {
            validate: snappack::Options {
                table: Some("t".into()),
                ..Default::default()
            },
            ..options(true)
        };
        let error = pack(Cursor::new(&input), name, Vec::new(), &options, &mut |_| {
            true
        })
        .unwrap_err();
        let PackError::Invalid(report) = &error else {
            panic!("{name}: {error}");
        };
        assert_eq!(
            report.errors.iter().map(|e| e.code).collect::<Vec<_>>(),
            [code],
            "{name}"
        );
    }

    // A table file with no table to go into.
    let error = pack(
        Cursor::new(&b"{\"a\":1}\n"[..]),
        "items.jsonl",
        Vec::new(),
        &options(true),
        &mut |_| true,
    )
    .unwrap_err();
    assert!(matches!(error, PackError::Invalid(_)), "{error}");
}

#[test]
fn a_single_table_file_packs() {
    let jsonl = b"{\"a\":1}\n{\"b\":\"x\"}\n";
    let options = PackOptions {
        validate: snappack::Options {
            table: Some("items".into()),
            ..Default::default()
        },
        ..options(false)
    };
    let (stream, _) = pack(
        Cursor::new(&jsonl[..]),
        "items.jsonl",
        Vec::new(),
        &options,
        &mut |_| true,
    )
    .unwrap();
    let (unpacked, rebuilt) = unpack_to_entries(&stream);
    assert_eq!(unpacked.tables[0].name, "items");
    assert_eq!(unpacked.tables[0].rules, ValueRules::Plain);
    assert_eq!(rebuilt["items/documents.jsonl"], jsonl);
}

#[test]
fn unpack_reports_a_bad_stream() {
    let zip = generate(&GenSpec::default());
    let (mut stream, _) = pack_zip(&zip, &options(false)).unwrap();
    stream.truncate(stream.len() - 3);
    let error = unpack(&stream[..], DecoderConfig::default(), &mut |_| Ok(())).unwrap_err();
    assert_eq!(error.code(), "Truncated");
}

#[test]
fn packed_size_is_within_five_percent_of_the_zip() {
    let zip = generate(&GenSpec {
        tables: 4,
        documents_per_table: 3000,
        storage_files: 3,
        ..GenSpec::default()
    });
    let (stream, _) = pack_zip(&zip, &options(false)).unwrap();
    let ratio = stream.len() as f64 / zip.len() as f64;
    println!(
        "zip {} bytes, stream {} bytes, ratio {ratio:.3}",
        zip.len(),
        stream.len()
    );
    assert!(ratio <= 1.05, "ratio {ratio}");
}

fn snappack(args: &[&std::path::Path]) -> (i32, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_snappack"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
    )
}

#[test]
fn cli_pack_then_unpack_rebuilds_the_snapshot() {
    use std::path::Path;
    let dir = std::env::temp_dir().join(format!("snappack-migration-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let zip = generate(&GenSpec {
        components: vec!["c".into()],
        storage_files: 2,
        ..GenSpec::default()
    });
    let source = dir.join("snap.zip");
    std::fs::write(&source, &zip).unwrap();
    let stream = dir.join("snap.snappack");
    let out = dir.join("out");
    let (code, stdout) = snappack(&[
        Path::new("pack"),
        &source,
        Path::new("-q"),
        Path::new("-o"),
        &stream,
    ]);
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.starts_with("packed snap.zip:"), "{stdout}");
    let (code, stdout) = snappack(&[
        Path::new("unpack"),
        &stream,
        Path::new("--verify"),
        Path::new("-o"),
        &out,
    ]);
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains(": an intact stream: "), "{stdout}");
    for (name, content) in entries(&zip) {
        if name == "README.md" {
            continue;
        }
        // Stored files come back under their id, without the extension.
        let rebuilt = match name.rsplit_once('.') {
            Some((stem, _)) if name.contains("_storage/") && !name.ends_with(".jsonl") => {
                out.join(stem)
            }
            _ => out.join(&name),
        };
        let bytes = std::fs::read(&rebuilt).unwrap_or_else(|_| panic!("{name} not rebuilt"));
        if name.ends_with("_tables/documents.jsonl") {
            let mut a: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
            let mut b: Vec<&[u8]> = content.split(|&b| b == b'\n').collect();
            a.sort();
            b.sort();
            assert_eq!(a, b, "{name}");
        } else {
            assert!(bytes == content, "{name} differs");
        }
    }
    // A damaged stream is refused with its code, and exit status 1.
    let mut bytes = std::fs::read(&stream).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    let damaged = dir.join("damaged.snappack");
    std::fs::write(&damaged, bytes).unwrap();
    let (code, stdout) = snappack(&[Path::new("unpack"), &damaged]);
    assert_eq!(code, 1);
    assert!(stdout.contains("[Checksum]"), "{stdout}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn csv_and_json_array_files_pack_as_json_lines() {
    let options = PackOptions {
        validate: snappack::Options {
            table: Some("items".into()),
            ..Default::default()
        },
        ..options(false)
    };
    let cases: [(&str, &[u8]); 2] = [
        ("items.csv", b"a,b\n1,x\n2,\n"),
        (
            "items.json",
            b"[\n  {\"a\": 1,\n   \"b\": \"x\"},\n  {\"a\": 2, \"b\": \"\"}\n]\n",
        ),
    ];
    for (name, bytes) in cases {
        let (stream, _) = pack(Cursor::new(bytes), name, Vec::new(), &options, &mut |_| {
            true
        })
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        let (unpacked, rebuilt) = unpack_to_entries(&stream);
        assert_eq!(unpacked.totals.documents, 2, "{name}");
        assert_eq!(unpacked.tables[0].rules, ValueRules::Plain, "{name}");
        for line in rebuilt["items/documents.jsonl"]
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
        {
            let value: serde_json::Value = serde_json::from_slice(line).unwrap();
            assert!(value.is_object(), "{name}: {value}");
            assert!(value["b"].is_string(), "{name}: {value}");
        }
    }
}

/// A table whose declaration does not fit a frame is refused before
/// anything is written, with the frame size it needs; a frame size under
/// the smallest is refused too.
#[test]
fn a_declaration_larger_than_a_frame_names_the_table_and_the_size_it_needs() {
    let component = vec!["c".repeat(64); 70].join("/");
    let lines = b"{\"n\":1}\n";
    let pack_at = |size: usize| {
        let options = PackOptions {
            validate: Options {
                table: Some("items".into()),
                component: component.clone(),
                ..Options::default()
            },
            encoder: EncoderConfig {
                max_frame_size: size,
                ..EncoderConfig::default()
            },
            ..options(false)
        };
        pack(
            Cursor::new(lines),
            "items.jsonl",
            Vec::new(),
            &options,
            &mut |_| true,
        )
    };
    // Tag, two strings (length and bytes), enum bytes, number, count.
    let needed = 1 + 4 + component.len() + 4 + "items".len() + 2 + 4 + 8;
    let Err(error) = pack_at(MIN_PACK_FRAME_SIZE) else {
        panic!("a declaration of {needed} bytes is refused");
    };
    assert_eq!(
        error.to_string(),
        format!(
            "invalid encoder configuration: the declaration of table items of component {component} is {needed} bytes, more than a frame of {MIN_PACK_FRAME_SIZE}: pack with frames of {needed} bytes or more"
        )
    );
    assert!(pack_at(needed).is_ok());
    // Below the commands' minimum (an import an older version started), a
    // stream packs while its declarations fit.
    let small = PackOptions {
        validate: Options {
            table: Some("items".into()),
            ..Options::default()
        },
        encoder: EncoderConfig {
            max_frame_size: 1024,
            ..EncoderConfig::default()
        },
        ..options(false)
    };
    let packed = pack(
        Cursor::new(lines),
        "items.jsonl",
        Vec::new(),
        &small,
        &mut |_| true,
    );
    assert!(packed.is_ok(), "{:?}", packed.err());
}
