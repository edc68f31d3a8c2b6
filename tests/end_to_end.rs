//! End to end: generated snapshots (components, storage files) packed and
//! uploaded land with every document and file intact, compared against the
//! archive itself; `snappack upload` validates against the server's tables
//! first, retries through server restarts, and resumes with `--resume`. On
//! every backend.

mod server_support;

use std::io::{BufRead, BufReader, Cursor};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use server_support as common;
use server_support::{frames, Archive, TestServer};
use snappack::gen::{write_snapshot, GenSpec};
use snappack::migration::{pack, PackOptions};
use snappack::server::ServeConfig;

fn snapshot(seed: u64) -> Vec<u8> {
    let spec = GenSpec {
        seed,
        tables: 3,
        documents_per_table: 300,
        components: vec!["waitlist".into(), "waitlist/ratelimit".into()],
        storage_files: 3,
        ..GenSpec::default()
    };
    let mut zip = Cursor::new(Vec::new());
    write_snapshot(&mut zip, &spec).unwrap();
    zip.into_inner()
}

#[test]
fn generated_snapshots_land_intact() {
    for (backend, database) in common::databases() {
        let zip = snapshot(7);
        let archive = Archive::read(&zip);
        assert!(
            archive.plan.as_ref().unwrap().files.len() >= 9,
            "files in every component"
        );
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
        for (i, chunk) in ranges.chunks(4).enumerate() {
            let body = &stream[chunk[0].start..chunk[chunk.len() - 1].end];
            let r = server.call(
                "POST",
                &format!("/api/imports/{id}/frames?seq={}", i * 4),
                body,
            );
            assert_eq!(r.status, 200, "{backend}: {:?}", r.json());
        }
        let finished = server.call("POST", &format!("/api/imports/{id}/finish"), b"");
        assert_eq!(finished.status, 200, "{backend}: {:?}", finished.json());
        drop(server);
        archive.assert_imported(&database, &data_dir);
    }
}

const TOKEN: &str = "upload-test-token";

/// `snappack serve` as a process on a fixed loopback port.
fn serve(database: &str, data_dir: &Path, port: u16) -> Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_snappack"))
        .args(["serve", "--no-www", "--token", TOKEN])
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--database")
        .arg(database)
        .arg("--data-dir")
        .arg(data_dir)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stderr.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.contains("listening"), "{line}");
    child
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn upload(zip: &Path, port: u16, extra: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_snappack"));
    command
        .arg("upload")
        .arg(zip)
        .arg("--url")
        .arg(format!("http://127.0.0.1:{port}"))
        .args([
            "--token",
            TOKEN,
            "--frame-size",
            "8192",
            "--frames-per-request",
            "1",
        ])
        .args(extra);
    command
}

#[test]
fn snappack_upload_validates_first_retries_through_restarts_and_resumes() {
    for (backend, database) in common::databases() {
        let dir = common::temp_dir("upload");
        let zip_path = dir.join("snapshot.zip");
        let zip = snapshot(11);
        std::fs::write(&zip_path, &zip).unwrap();
        let archive = Archive::read(&zip);
        let data_dir = dir.join("data");
        let port = free_port();
        let mut server = serve(&database, &data_dir, port);

        // A clean upload.
        let out = upload(&zip_path, port, &["--mode", "replace"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{backend}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("finished"));
        archive.assert_imported(&database, &data_dir);

        // requireEmpty into the same tables: refused before anything is sent.
        let out = upload(&zip_path, port, &[]).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{backend}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("TableExists"));
        let auth = format!("Bearer {TOKEN}");
        let addr = format!("127.0.0.1:{port}").parse().unwrap();
        let imports = common::http(
            addr,
            "GET",
            "/api/imports",
            &[("Authorization", &auth)],
            b"",
        )
        .unwrap()
        .json();
        assert_eq!(
            imports["imports"].as_array().unwrap().len(),
            1,
            "{backend}: nothing sent"
        );

        // The server killed and restarted in the middle: the client retries and resumes by itself.
        let mut client = upload(&zip_path, port, &["--mode", "replaceAll"])
            .stderr(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(client.stderr.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(line.contains("started"), "{line}");
        server.kill().unwrap();
        server.wait().unwrap();
        server = serve(&database, &data_dir, port);
        let out = client.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{backend}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        archive.assert_imported(&database, &data_dir);

        // An upload whose client dies is continued with --resume.
        let mut client = upload(&zip_path, port, &["--mode", "replace"])
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(client.stderr.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        let id = line.split_whitespace().nth(2).unwrap().to_owned();
        client.kill().unwrap();
        client.wait().unwrap();
        let out = upload(&zip_path, port, &["--mode", "replace", "--resume", &id])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{backend}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains(&id));
        archive.assert_imported(&database, &data_dir);
        server.kill().unwrap();
        server.wait().unwrap();
    }
}
