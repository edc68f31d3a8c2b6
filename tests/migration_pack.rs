//! `pack` and `unpack` on generated snapshots: a round trip gives back every
//! document line and every stored file byte for byte.

use std::collections::BTreeMap;
use std::io::{Cursor, Read};

use snappack::gen::{write_snapshot, Fault, GenSpec};
use snappack::migration::*;
use snappack::report::Code;

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
