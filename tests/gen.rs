//! The synthetic snapshot generator writes what Convex's exporter writes,
//! deterministically, and injects exactly the faults it reports.

use std::collections::HashMap;
use std::io::{Cursor, Read};

use base64::Engine as _;
use sha2::{Digest, Sha256};
use snappack::convex::value::{check_document, IdField, ValueRules};
use snappack::convex::DocumentId;
use snappack::gen::{write_snapshot, DocumentShape, Fault, GenSpec, GenSummary, InjectedFault};
use snappack::report::Code;
use snappack::{validate, Options};
use zip::{CompressionMethod, ZipArchive};

fn generate(spec: &GenSpec) -> (Vec<u8>, GenSummary) {
    let mut out = Cursor::new(Vec::new());
    let summary = write_snapshot(&mut out, spec).expect("generates");
    (out.into_inner(), summary)
}

/// Every entry: name and content, checking each is deflated with mode 0644.
fn entries(zip: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut archive = ZipArchive::new(Cursor::new(zip)).expect("readable zip");
    (0..archive.len())
        .map(|i| {
            let mut file = archive.by_index(i).unwrap();
            assert_eq!(file.compression(), CompressionMethod::Deflated);
            assert_eq!(file.unix_mode().map(|m| m & 0o777), Some(0o644));
            let mut content = Vec::new();
            file.read_to_end(&mut content).unwrap();
            (file.name().unwrap().into_owned(), content)
        })
        .collect()
}

fn text(entries: &[(String, Vec<u8>)], name: &str) -> String {
    let (_, content) = entries
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no entry {name}"));
    String::from_utf8(content.clone()).unwrap()
}

#[test]
fn layout_is_convex_exporters() {
    let spec = GenSpec {
        seed: 4,
        tables: 2,
        total_documents: Some(17),
        components: vec!["a/b".into()],
        storage_files: 2,
        prefix: "snapshot/".into(),
        ..GenSpec::default()
    };
    let (zip, summary) = generate(&spec);
    let entries = entries(&zip);
    let names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(summary.entries as usize, names.len());
    assert_eq!(names[0], "snapshot/README.md");
    assert_eq!(
        names[1..4],
        [
            "snapshot/_tables/documents.jsonl",
            "snapshot/_components/a/_tables/documents.jsonl",
            "snapshot/_components/a/_components/b/_tables/documents.jsonl",
        ]
    );
    // Tables smallest first, each documents then generated schema.
    assert_eq!(summary.tables.len(), 6);
    assert_eq!(summary.documents, 17);
    assert!(summary
        .tables
        .windows(2)
        .all(|w| w[0].documents <= w[1].documents));
    assert_eq!(summary.tables[0].documents, 2);
    for (i, table) in summary.tables.iter().enumerate() {
        let prefix = match table.component.as_str() {
            "" => "snapshot/".to_owned(),
            "a" => "snapshot/_components/a/".to_owned(),
            "a/b" => "snapshot/_components/a/_components/b/".to_owned(),
            other => panic!("component {other}"),
        };
        assert_eq!(
            table.entry,
            format!("{prefix}{}/documents.jsonl", table.name)
        );
        assert_eq!(names[4 + 2 * i], table.entry);
        let schema = format!("{prefix}{}/generated_schema.jsonl", table.name);
        assert_eq!(names[5 + 2 * i], schema);
        assert_eq!(text(&entries, &schema), "\"uniform\"\n");
        assert_eq!(text(&entries, &table.entry).len() as u64, table.bytes);
    }
    // `_tables`: one row per table of the component, sorted by number.
    for (component, prefix) in [
        ("", "snapshot/"),
        ("a", "snapshot/_components/a/"),
        ("a/b", "snapshot/_components/a/_components/b/"),
    ] {
        let mut expected: Vec<(u32, &str)> = summary
            .tables
            .iter()
            .filter(|t| t.component == component)
            .map(|t| (t.number, t.name.as_str()))
            .collect();
        expected.sort();
        let lines: Vec<String> = expected
            .iter()
            .map(|(n, name)| format!("{{\"name\":\"{name}\",\"id\":{n}}}\n"))
            .collect();
        assert_eq!(
            text(&entries, &format!("{prefix}_tables/documents.jsonl")),
            lines.concat()
        );
    }
    // Storage: metadata rows in the exporter's key order, then the files.
    assert_eq!(summary.storage.len(), 6);
    for (component, prefix) in [("", "snapshot/"), ("a", "snapshot/_components/a/")] {
        let rows = text(&entries, &format!("{prefix}_storage/documents.jsonl"));
        let files: Vec<_> = summary
            .storage
            .iter()
            .filter(|f| f.component == component)
            .collect();
        assert_eq!(rows.lines().count(), files.len());
        for (row, file) in rows.lines().zip(files) {
            let keys = [
                "_id",
                "_creationTime",
                "sha256",
                "size",
                "contentType",
                "internalId",
            ];
            let at: Vec<usize> = keys
                .iter()
                .map(|k| row.find(&format!("\"{k}\":")).unwrap())
                .collect();
            assert!(at.windows(2).all(|w| w[0] < w[1]), "{row}");
            let row: serde_json::Value = serde_json::from_str(row).unwrap();
            assert_eq!(row["_id"], file.id.as_str());
            assert_eq!(DocumentId::decode(&file.id).unwrap().table, 540);
            assert!(row["_creationTime"].is_f64());
            assert_eq!(row["size"], file.size);
            assert_eq!(row["internalId"].as_str().unwrap().len(), 36);
            let blob = entries.iter().find(|(n, _)| *n == file.entry).unwrap();
            assert_eq!(blob.1.len() as u64, file.size);
            let sha = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(&blob.1));
            assert_eq!(row["sha256"], sha.as_str());
            let ext = match file.content_type.as_deref() {
                Some("image/png") => ".png",
                Some("text/plain") => ".txt",
                Some("application/pdf") => ".pdf",
                Some("application/json") => ".json",
                None => "",
                Some(other) => panic!("content type {other}"),
            };
            assert_eq!(file.entry, format!("{prefix}_storage/{}{ext}", file.id));
            assert_eq!(row["contentType"].as_str(), file.content_type.as_deref());
        }
    }
}

#[test]
fn same_seed_same_bytes() {
    let spec = GenSpec {
        storage_files: 1,
        components: vec!["c".into()],
        faults: vec![Fault::DuplicateId, Fault::BadJsonLine],
        ..GenSpec::default()
    };
    let (a, summary_a) = generate(&spec);
    let (b, summary_b) = generate(&spec);
    assert_eq!(a, b);
    assert_eq!(summary_a, summary_b);
    let (c, _) = generate(&GenSpec { seed: 2, ..spec });
    assert_ne!(a, c);
}

const LINE_CODES: [Code; 7] = [
    Code::JsonInvalidRow,
    Code::InvalidConvexValue,
    Code::NotAnObject,
    Code::InvalidIdError,
    Code::InvalidCreationTimeError,
    Code::InvalidDocumentError,
    Code::ValueTooLargeError,
];

/// Every line of every table passes the document checker, carries an id of
/// its table, in canonical exporter form, except the injected faults, which
/// fail exactly as reported.
#[test]
fn documents_are_valid_except_the_injected_faults() {
    let spec = GenSpec {
        seed: 11,
        tables: 1,
        documents_per_table: 8_050,
        components: vec!["a".into()],
        storage_files: 2,
        faults: Fault::ALL.to_vec(),
        compression_level: 1,
        document: DocumentShape {
            nesting: 3,
            ..DocumentShape::default()
        },
        ..GenSpec::default()
    };
    let (zip, summary) = generate(&spec);
    let entries = entries(&zip);
    assert_eq!(summary.faults.len(), Fault::ALL.len());
    for (fault, at) in Fault::ALL.iter().zip(&summary.faults) {
        assert_eq!(at.fault, *fault);
        assert_eq!(at.code, fault.code());
        assert!(
            entries.iter().any(|(n, _)| *n == at.entry),
            "{fault:?} at missing entry {}",
            at.entry
        );
    }
    let faults_at = |entry: &str, line: u64| -> Option<&InjectedFault> {
        summary
            .faults
            .iter()
            .find(|f| f.entry == entry && f.line == Some(line))
    };
    let mut checked_faults = 0;
    for table in &summary.tables {
        let content = text(&entries, &table.entry);
        assert_eq!(content.lines().count() as u64, table.documents);
        let mut ids: HashMap<DocumentId, u64> = HashMap::new();
        for (i, line) in content.lines().enumerate() {
            let row = i as u64 + 1;
            let result = check_document(line, ValueRules::Uniform, row, Some(table.number));
            let fault = faults_at(&table.entry, row);
            if let Some(fault) = fault.filter(|f| LINE_CODES.contains(&f.code)) {
                assert_eq!(result.map_err(|e| e.code), Err(fault.code), "{fault:?}");
                checked_faults += 1;
                continue;
            }
            let doc = result.unwrap_or_else(|e| panic!("{} line {row}: {e:?}", table.entry));
            match (fault.map(|f| f.code), doc.id) {
                (Some(Code::InvalidId), IdField::Invalid(..)) => checked_faults += 1,
                (Some(Code::ImportConflict), IdField::Valid(id)) => {
                    assert_ne!(id.table, table.number);
                    checked_faults += 1;
                }
                (Some(Code::DuplicateId), IdField::Valid(id)) => {
                    assert_eq!(ids.get(&id), fault.unwrap().first_line.as_ref());
                    assert!(row - fault.unwrap().first_line.unwrap() > 8000);
                    checked_faults += 1;
                }
                (None, IdField::Valid(id)) => {
                    assert_eq!(id.table, table.number);
                    assert_eq!(ids.insert(id, row), None, "{} line {row}", table.entry);
                    assert_keys_sorted(line);
                    let value: serde_json::Value = serde_json::from_str(line).unwrap();
                    assert!(value["_creationTime"].is_f64());
                }
                (code, id) => panic!("{} line {row}: {code:?} with {id:?}", table.entry),
            }
        }
    }
    let row_faults = summary
        .faults
        .iter()
        .filter(|f| {
            f.table
                .as_deref()
                .is_some_and(|t| !t.starts_with('_') && !t.starts_with("legacy"))
        })
        .count();
    assert_eq!(checked_faults, row_faults);
    // `_tables` faults sit on the reported line.
    for fault in &summary.faults {
        let line = |n: u64| {
            text(&entries, &fault.entry)
                .lines()
                .nth(n as usize - 1)
                .unwrap()
                .to_owned()
        };
        match fault.fault {
            Fault::DuplicateTableName | Fault::SharedTableNumber => {
                let row: serde_json::Value =
                    serde_json::from_str(&line(fault.line.unwrap())).unwrap();
                let same = |key: &str| {
                    text(&entries, &fault.entry)
                        .lines()
                        .filter(|l| {
                            serde_json::from_str::<serde_json::Value>(l).unwrap()[key] == row[key]
                        })
                        .count()
                };
                let key = if fault.fault == Fault::DuplicateTableName {
                    "name"
                } else {
                    "id"
                };
                assert_eq!(same(key), 2, "{fault:?}");
            }
            Fault::Sha256Mismatch => {
                let file = summary
                    .storage
                    .iter()
                    .find(|f| f.entry == fault.entry)
                    .unwrap();
                let prefix = fault.entry.rsplit_once('/').unwrap().0;
                let rows = text(&entries, &format!("{prefix}/documents.jsonl"));
                let row: serde_json::Value = rows
                    .lines()
                    .map(|l| serde_json::from_str(l).unwrap())
                    .find(|r: &serde_json::Value| r["_id"] == file.id.as_str())
                    .unwrap();
                let blob = entries.iter().find(|(n, _)| *n == file.entry).unwrap();
                let sha = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(&blob.1));
                assert_ne!(row["sha256"], sha.as_str());
            }
            _ => {}
        }
    }
}

/// The validator finds a fault-free archive valid, with the generated tables
/// and numbers, and reports exactly the injected faults of another.
#[test]
fn validator_agrees_with_the_generator() {
    let clean = GenSpec {
        seed: 3,
        components: vec!["a/b".into()],
        storage_files: 2,
        prefix: "snapshot/".into(),
        ..GenSpec::default()
    };
    let (zip, summary) = generate(&clean);
    let report = validate(
        Cursor::new(zip),
        "clean.zip",
        &Options::default(),
        &mut |_| true,
    );
    assert!(report.valid, "{:?}", report.errors);
    for table in &summary.tables {
        let found = report
            .tables
            .iter()
            .find(|t| t.component == table.component && t.name == table.name)
            .unwrap_or_else(|| panic!("{table:?} not in the report"));
        assert_eq!(found.number, Some(table.number));
        assert_eq!(found.documents, table.documents);
    }
    assert_eq!(report.storage.files, summary.storage.len() as u64);

    let faults: Vec<Fault> = Fault::ALL.to_vec();
    let faulty = GenSpec {
        seed: 11,
        tables: 1,
        documents_per_table: 8_050,
        components: vec!["a".into()],
        storage_files: 2,
        faults,
        ..GenSpec::default()
    };
    let (zip, summary) = generate(&faulty);
    let report = validate(
        Cursor::new(zip),
        "faulty.zip",
        &Options::default(),
        &mut |_| true,
    );
    let mut injected: Vec<(Code, String, Option<u64>)> = summary
        .faults
        .iter()
        .map(|f| (f.code, f.entry.clone(), f.line))
        .collect();
    let mut reported: Vec<(Code, String, Option<u64>)> = report
        .errors
        .iter()
        .map(|e| (e.code, e.entry.clone().unwrap_or_default(), e.line))
        .collect();
    injected.sort();
    reported.sort();
    assert_eq!(reported, injected);
    let duplicate = report
        .errors
        .iter()
        .find(|e| e.code == Code::DuplicateId)
        .unwrap();
    let injected = summary
        .faults
        .iter()
        .find(|f| f.fault == Fault::DuplicateId)
        .unwrap();
    assert_eq!(duplicate.first_line, injected.first_line);
}

/// Asserts that the keys of every object in `json` are in byte order.
fn assert_keys_sorted(json: &str) {
    let bytes = json.as_bytes();
    let mut last_key: Vec<Option<&[u8]>> = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'{' | b'[' => last_key.push(None),
            b'}' | b']' => {
                last_key.pop();
            }
            b'"' => {
                let start = i + 1;
                i += 1;
                while bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                if bytes.get(i + 1) == Some(&b':') {
                    let key = &bytes[start..i];
                    let slot = last_key.last_mut().unwrap();
                    assert!(
                        slot.is_none_or(|prev| prev < key),
                        "keys out of order in {json}"
                    );
                    *slot = Some(key);
                }
            }
            _ => {}
        }
        i += 1;
    }
}

/// Python's own ZIP reader accepts the archive and its CRCs.
#[test]
fn python_zipfile_test_passes() {
    let spec = GenSpec {
        storage_files: 3,
        components: vec!["x".into()],
        ..GenSpec::default()
    };
    let (zip, _) = generate(&spec);
    let path = std::env::temp_dir().join(format!("snappack-gen-{}.zip", std::process::id()));
    std::fs::write(&path, zip).unwrap();
    let result = std::process::Command::new("python3")
        .args(["-m", "zipfile", "-t"])
        .arg(&path)
        .output();
    std::fs::remove_file(&path).unwrap();
    match result {
        Ok(output) => assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        ),
        Err(e) => eprintln!("python3 not available, check skipped: {e}"),
    }
}

/// Generates a ~200 MB (uncompressed) archive and prints the speed; run with
/// `cargo test --release --test gen -- --ignored --nocapture`.
#[test]
#[ignore = "large; a measurement, not a check"]
fn large_archive() {
    let spec = GenSpec {
        tables: 10,
        documents_per_table: 50_000,
        storage_files: 20,
        storage_max_bytes: 1 << 20,
        compression_level: std::env::var("GEN_LEVEL").map_or(1, |l| l.parse().unwrap()),
        ..GenSpec::default()
    };
    let path = std::env::temp_dir().join(format!("snappack-large-{}.zip", std::process::id()));
    let file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    let start = std::time::Instant::now();
    let summary = write_snapshot(file, &spec).unwrap();
    let elapsed = start.elapsed().as_secs_f64();
    let zipped = std::fs::metadata(&path).unwrap().len();
    std::fs::remove_file(&path).unwrap();
    assert!(summary.bytes > 150 << 20);
    eprintln!(
        "{} documents, {:.1} MB uncompressed, {:.1} MB zipped, {elapsed:.2} s, {:.0} MB/s",
        summary.documents,
        summary.bytes as f64 / 1e6,
        zipped as f64 / 1e6,
        summary.bytes as f64 / 1e6 / elapsed
    );
}

/// `gen --help` names every fault it can inject, as `--fault` takes it.
#[test]
fn gen_help_names_every_fault() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_snappack"))
        .args(["gen", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8(out.stdout)
        .unwrap()
        .replace(['\n', ' '], "");
    for fault in Fault::ALL {
        let name = serde_json::to_value(fault).unwrap();
        let name = name.as_str().unwrap();
        assert!(help.contains(name), "{name} is not in gen --help");
    }
    // The range of compressionLevel that a spec may give: level 0 is refused.
    assert!(help.contains("compressionLevel(deflate,1to9:1)"), "{help}");
    let spec = std::env::temp_dir().join(format!("snappack-gen-level-{}.json", std::process::id()));
    std::fs::write(&spec, r#"{"compressionLevel": 0}"#).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_snappack"))
        .args(["gen", "-", "--spec", spec.to_str().unwrap()])
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&spec);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("compressionLevel must be 1 to 9"),
        "{stderr}"
    );
}

/// `gen` into a pipe, which cannot seek, writes the archive as it makes it,
/// in bounded memory: it made the whole archive in memory first, and ran
/// out of it where a file could be written. What it writes (each entry's
/// sizes and CRC-32 after its data, as Convex's exporter writes them, flag
/// bit 3) is what the library writes into a file in entries and contents,
/// and validates as it does.
#[cfg(unix)]
#[test]
fn gen_into_a_pipe_streams_in_bounded_memory() {
    let dir = std::env::temp_dir().join(format!("snappack-gen-stream-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // Stored files of random bytes, which do not compress: over 16 MiB of
    // archive, whose buffer in memory would have grown to 32 MiB.
    let spec = GenSpec {
        tables: 1,
        documents_per_table: 10,
        storage_files: 17,
        storage_min_bytes: 1 << 20,
        storage_max_bytes: 1 << 20,
        ..GenSpec::default()
    };
    let spec_path = dir.join("spec.json");
    std::fs::write(&spec_path, serde_json::to_vec(&spec).unwrap()).unwrap();
    // The address space the command may take: some 25 MiB are the binary
    // and its libraries, which a 40 MiB bound leaves room above.
    let run = std::process::Command::new("bash")
        .args([
            "-c",
            "ulimit -v 40960 && exec \"$0\" gen - --spec \"$1\"",
            env!("CARGO_BIN_EXE_snappack"),
            spec_path.to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(0), "{stderr}");
    assert!(run.stdout.len() > 16 << 20, "{}", run.stdout.len());
    assert!(stderr.starts_with("wrote standard output: "), "{stderr}");
    let mut archive = ZipArchive::new(Cursor::new(&run.stdout)).expect("readable zip");
    for i in 0..archive.len() {
        let file = archive.by_index_raw(i).unwrap();
        let name = file.name().unwrap().into_owned();
        assert!(file.flags().is_using_data_descriptor(), "{name}");
    }
    let (file_bytes, _) = generate(&spec);
    assert_eq!(entries(&run.stdout), entries(&file_bytes));
    let report = validate(
        Cursor::new(&run.stdout),
        "piped.zip",
        &Options::default(),
        &mut |_| true,
    );
    assert!(report.valid, "{:?}", report.errors);
    assert_eq!(report.storage.files, 17);
}
