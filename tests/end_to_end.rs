//! End to end: generated snapshots (components, storage files) packed and
//! uploaded over HTTP land with every document and file intact, compared
//! against the archive itself. On every backend.

mod server_support;

use std::collections::BTreeMap;
use std::io::Cursor;

use server_support as common;
use server_support::{frames, TestServer};
use snappack::gen::{write_snapshot, GenSpec};
use snappack::migration::{pack, PackOptions};
use snappack::server::ServeConfig;
use snappack::validate::{walk, Options, Plan, Sink};

/// Collects what the archive holds: each table's lines and each file's bytes.
#[derive(Default)]
struct Archive {
    plan: Option<Plan>,
    lines: BTreeMap<usize, Vec<String>>,
    files: BTreeMap<usize, Vec<u8>>,
}

impl Sink for Archive {
    fn begin(&mut self, plan: &Plan) -> std::io::Result<()> {
        self.plan = Some(plan.clone());
        Ok(())
    }
    fn document(&mut self, table: usize, line: &[u8], _valid: bool) -> std::io::Result<()> {
        self.lines
            .entry(table)
            .or_default()
            .push(String::from_utf8(line.to_vec()).unwrap());
        Ok(())
    }
    fn file_chunk(&mut self, file: usize, chunk: &[u8]) -> std::io::Result<()> {
        self.files.entry(file).or_default().extend_from_slice(chunk);
        Ok(())
    }
}

#[test]
fn generated_snapshots_land_intact() {
    for (backend, database) in common::databases() {
        let spec = GenSpec {
            seed: 7,
            tables: 3,
            documents_per_table: 300,
            components: vec!["waitlist".into(), "waitlist/ratelimit".into()],
            storage_files: 3,
            ..GenSpec::default()
        };
        let mut zip = Cursor::new(Vec::new());
        write_snapshot(&mut zip, &spec).unwrap();
        let zip = zip.into_inner();

        let mut archive = Archive::default();
        let (report, _) = walk(
            Cursor::new(&zip),
            "snapshot.zip",
            &Options::default(),
            &mut archive,
            &mut |_| true,
        );
        assert!(report.valid, "{:?}", report.errors);
        let plan = archive.plan.clone().unwrap();
        assert!(plan.files.len() >= 9, "files in every component");

        let options = PackOptions {
            encoder: snappack::migration::EncoderConfig {
                max_frame_size: 16 << 10,
                ..Default::default()
            },
            ..PackOptions::default()
        };
        let (stream, _) = pack(
            Cursor::new(&zip),
            "snapshot.zip",
            Vec::new(),
            &options,
            &mut |_| true,
        )
        .unwrap();
        let ranges = frames(&stream);
        assert!(ranges.len() > 5);

        let data_dir = common::temp_dir("e2e");
        let server = TestServer::start(ServeConfig {
            database: Some(database.clone()),
            data_dir: data_dir.clone(),
            www: None,
            token: Some("t".into()),
            ..ServeConfig::default()
        });
        let created = server
            .call("POST", "/api/imports", br#"{"mode":"replaceAll"}"#)
            .json();
        let id = created["id"].as_str().unwrap().to_owned();
        for chunk in ranges.chunks(4) {
            let first = ranges.iter().position(|r| r == &chunk[0]).unwrap();
            let body = &stream[chunk[0].start..chunk[chunk.len() - 1].end];
            let r = server.call(
                "POST",
                &format!("/api/imports/{id}/frames?seq={first}"),
                body,
            );
            assert_eq!(r.status, 200, "{backend}: {:?}", r.json());
        }
        let finished = server.call("POST", &format!("/api/imports/{id}/finish"), b"");
        assert_eq!(finished.status, 200, "{backend}: {:?}", finished.json());
        drop(server);

        let store = snappack::server::store::open(&database).unwrap();
        for (index, table) in plan.tables.iter().enumerate() {
            let mut expected = archive.lines.get(&index).cloned().unwrap_or_default();
            expected.sort();
            let mut stored: Vec<String> = store
                .documents(&table.component, &table.name)
                .unwrap()
                .unwrap_or_else(|| panic!("{backend}: {}/{} missing", table.component, table.name))
                .into_iter()
                .map(|d| d.json)
                .collect();
            stored.sort();
            assert_eq!(
                stored, expected,
                "{backend}: {}/{}",
                table.component, table.name
            );
        }
        let files = snappack::server::files::FileStore::open(data_dir.join("files")).unwrap();
        for (index, bytes) in &archive.files {
            use sha2::Digest;
            let sha: [u8; 32] = sha2::Sha256::digest(bytes).into();
            assert_eq!(
                &std::fs::read(files.path(&sha)).unwrap(),
                bytes,
                "{backend}: file {index}"
            );
        }
        assert_eq!(archive.files.len(), plan.files.len());
    }
}
