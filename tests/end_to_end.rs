//! End to end: generated snapshots (components, storage files) packed and
//! uploaded land with every document and file intact, compared against the
//! archive itself; `snappack upload` validates against the server's tables
//! first, retries through server restarts, and resumes with `--resume`; the
//! server checks each table's documents with the value rules the stream
//! declares for it, as the client did. On every backend.

// The server is native only.
#![cfg(not(target_arch = "wasm32"))]

mod server_support;

use std::io::{Cursor, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use server_support as common;
use server_support::{frames, Archive, TestServer};
use snappack::gen::{write_snapshot, GenSpec};
use snappack::migration::{pack, PackError, PackOptions, Packed};
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

/// `zip` with the second `_id` of every user table's documents made invalid
/// (one letter changed to `!`, so every line keeps its length), entries as before.
fn with_bad_first_ids(zip: &[u8]) -> Vec<u8> {
    let mut archive = zip::ZipArchive::new(Cursor::new(zip)).unwrap();
    let mut out = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).unwrap();
        let name = entry.name().unwrap().into_owned();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut bytes).unwrap();
        let user_table = name.ends_with("documents.jsonl")
            && !name
                .split('/')
                .any(|part| part.starts_with('_') && part != "_components");
        if user_table {
            // The second line's: the first one's numbers the table, which is checked before any frame.
            let second = bytes.iter().position(|&c| c == b'\n').unwrap();
            let at = second
                + bytes[second..]
                    .windows(7)
                    .position(|w| w == b"\"_id\":\"")
                    .unwrap()
                + 7;
            bytes[at] = b'!';
        }
        let options =
            zip::write::SimpleFileOptions::default().compression_method(entry.compression());
        out.start_file(name, options).unwrap();
        out.write_all(&bytes).unwrap();
    }
    out.finish().unwrap().into_inner()
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
        let stream = packed_stream(&zip, &options);
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

/// A snapshot of hundreds of tables lands whole, every table and document,
/// and so does a second import that replaces each of them: a database takes
/// many tables, not only many documents.
#[test]
fn a_snapshot_of_many_tables_lands_intact() {
    const TABLES: u32 = 300;
    for (backend, database) in common::databases() {
        let data_dir = common::temp_dir("many-tables");
        let server = TestServer::start(ServeConfig {
            database: Some(database.clone()),
            data_dir: data_dir.clone(),
            www: None,
            token: Some("t".into()),
            ..ServeConfig::default()
        });
        // The second snapshot has other documents in tables of the same names.
        for (seed, mode) in [(11, "requireEmpty"), (12, "replace")] {
            let spec = GenSpec {
                seed,
                tables: TABLES,
                documents_per_table: 3,
                ..GenSpec::default()
            };
            let mut zip = Cursor::new(Vec::new());
            write_snapshot(&mut zip, &spec).unwrap();
            let zip = zip.into_inner();
            let archive = Archive::read(&zip);
            let options = PackOptions {
                encoder: snappack::migration::EncoderConfig {
                    max_frame_size: 16 << 10,
                    ..Default::default()
                },
                ..PackOptions::default()
            };
            let stream = packed_stream(&zip, &options);
            let ranges = frames(&stream);
            let created = server
                .call(
                    "POST",
                    "/api/imports",
                    format!(r#"{{"mode":"{mode}"}}"#).as_bytes(),
                )
                .json();
            let id = created["id"].as_str().unwrap().to_owned();
            for (i, chunk) in ranges.chunks(8).enumerate() {
                let body = &stream[chunk[0].start..chunk[chunk.len() - 1].end];
                let r = server.call(
                    "POST",
                    &format!("/api/imports/{id}/frames?seq={}", i * 8),
                    body,
                );
                assert_eq!(r.status, 200, "{backend} {mode}: {:?}", r.json());
            }
            let finished = server.call("POST", &format!("/api/imports/{id}/finish"), b"");
            assert_eq!(
                finished.status,
                200,
                "{backend} {mode}: {:?}",
                finished.json()
            );
            let tables = server.call("GET", "/api/tables", b"").json();
            let tables = tables["tables"].as_array().unwrap();
            assert_eq!(tables.len(), TABLES as usize, "{backend} {mode}");
            assert!(
                tables.iter().all(|t| t["documents"] == 3),
                "{backend} {mode}: {tables:?}"
            );
            archive.assert_imported(&database, &data_dir);
        }
    }
}

const TOKEN: &str = "upload-test-token";

/// `snappack serve` as a process on a fixed loopback port.
fn serve(database: &str, data_dir: &Path, port: u16) -> common::ServeProcess {
    common::spawn_serve(database, data_dir, &format!("127.0.0.1:{port}"), TOKEN).0
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
        let out = upload(&zip_path, port, &["--mode", "replace", "--yes"])
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
        let mut client = upload(&zip_path, port, &["--mode", "replaceAll", "--yes"])
            .stderr(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        // After the list of what replaceAll removes, which --yes agrees to.
        common::stderr_line_with(&mut client, "started");
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
        let mut client = upload(&zip_path, port, &["--mode", "replace", "--yes"])
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let line = common::stderr_line_with(&mut client, "started");
        let id = line.split_whitespace().nth(2).unwrap().to_owned();
        client.kill().unwrap();
        client.wait().unwrap();
        // In its own mode: another one given is refused before anything is sent.
        let out = upload(&zip_path, port, &["--mode", "replaceAll", "--resume", &id])
            .output()
            .unwrap();
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!(
                "import {id} was started in replace mode, not replaceAll"
            )),
            "{backend}: {stderr}"
        );
        let out = upload(&zip_path, port, &["--resume", &id, "--yes"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{backend}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains(&id));
        archive.assert_imported(&database, &data_dir);
        // A finished import cannot be continued, and says so.
        let out = upload(&zip_path, port, &["--resume", &id, "--yes"])
            .output()
            .unwrap();
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!("import {id} is finished")),
            "{backend}: {stderr}"
        );
        server.kill().unwrap();
        server.wait().unwrap();
    }
}

#[test]
fn a_resumed_upload_packs_only_the_frames_the_server_lacks() {
    for (backend, database) in common::databases() {
        let dir = common::temp_dir("upload-resume");
        let zip_path = dir.join("snapshot.zip");
        let zip = snapshot(12);
        std::fs::write(&zip_path, &zip).unwrap();
        let archive = Archive::read(&zip);
        let port = free_port();
        let data_dir = dir.join("data");
        let mut server = serve(&database, &data_dir, port);
        let auth = format!("Bearer {TOKEN}");
        let addr = format!("127.0.0.1:{port}").parse().unwrap();
        let call = |method: &str, path: &str, body: &[u8]| {
            common::http(addr, method, path, &[("Authorization", &auth)], body).unwrap()
        };

        // The first frames of the stream `snappack upload` makes, sent by hand.
        let target = serde_json::from_slice(&call("GET", "/api/tables", b"").body).unwrap();
        let options = upload_pack_options(
            snappack::validate::Options {
                mode: snappack::validate::ImportMode::Replace,
                target: Some(target),
                ..Default::default()
            },
            // Smaller frames than the commands give a new stream (an import
            // an older version started): the import goes on in its own.
            1024,
        );
        let stream = packed_stream(&zip, &options);
        let ranges = frames(&stream);
        assert!(ranges.len() > 10, "{} frames", ranges.len());
        let created = call("POST", "/api/imports", br#"{"mode":"replace"}"#).json();
        let id = created["id"].as_str().unwrap().to_owned();
        let sent = call(
            "POST",
            &format!("/api/imports/{id}/frames?seq=0"),
            &stream[..ranges[4].end],
        );
        assert_eq!(sent.json()["nextSeq"], 5, "{backend}");

        // The import's frame size is the stream's; a resumed upload takes it
        // and refuses another.
        let status = call("GET", &format!("/api/imports/{id}"), b"").json();
        assert_eq!(status["frameSize"], 1024, "{backend}");
        let resume_with = |path: &std::path::Path, extra: &[&str]| {
            let url = format!("http://127.0.0.1:{port}");
            Command::new(env!("CARGO_BIN_EXE_snappack"))
                .args(["upload", path.to_str().unwrap(), "--url", &url])
                .args(["--token", TOKEN, "--resume", &id])
                .args(extra)
                .output()
                .unwrap()
        };
        let resume = |extra: &[&str]| resume_with(&zip_path, extra);
        let out = resume(&["--frame-size", "65536"]);
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!(
                "import {id} was started with frames of 1024 bytes, not 65536"
            )),
            "{backend}: {stderr}"
        );

        // Another input is refused before a frame is sent: its first frames
        // are not the import's (this import has no label to tell it by).
        let other_path = dir.join("other.zip");
        std::fs::write(&other_path, snapshot(13)).unwrap();
        let out = resume_with(&other_path, &[]);
        assert!(!out.status.success(), "{backend}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!("import {id} cannot continue with other.zip"))
                && stderr.contains("first 5 frames are not the ones this input makes"),
            "{backend}: {stderr}"
        );
        let status = call("GET", &format!("/api/imports/{id}"), b"").json();
        assert_eq!(status["nextSeq"], 5, "{backend}");
        assert_eq!(status["receivedBytes"], ranges[4].end, "{backend}");

        // A copy with an invalid document in those frames is another input
        // too (the server checked them): refused the same way, the import
        // left open, not cancelled for the copy's error.
        let damaged_path = dir.join("damaged.zip");
        std::fs::write(&damaged_path, with_bad_first_ids(&zip)).unwrap();
        let out = resume_with(&damaged_path, &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!("import {id} cannot continue with damaged.zip"))
                && stderr.contains(&format!("import {id} stays open")),
            "{backend}: {stderr}"
        );
        let status = call("GET", &format!("/api/imports/{id}"), b"").json();
        assert_eq!(
            (&status["state"], &status["nextSeq"]),
            (&"open".into(), &5.into()),
            "{backend}"
        );

        // Frames before 5 are not packed at all: asking for one would end the upload.
        let out = resume(&[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{backend}: {stderr}");
        assert!(
            stderr.contains(&format!("import {id} continues at frame 5")),
            "{stderr}"
        );
        let status = call("GET", &format!("/api/imports/{id}"), b"").json();
        assert_eq!(status["state"], "finished", "{backend}");
        archive.assert_imported(&database, &data_dir);
        server.kill().unwrap();
        server.wait().unwrap();
    }
}

/// An upload resumed while another client still sends to the import (the
/// first upload, still running, say) may learn from its first status that
/// the server has more frames than it has packed, none yet: it panicked
/// there (a subtraction under zero). It goes on from the server's frame and
/// the import lands whole.
#[test]
fn a_resumed_upload_whose_import_another_client_advances_goes_on() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let (backend, database) = common::databases().remove(0);
    let dir = common::temp_dir("upload-resume-race");
    let zip_path = dir.join("snapshot.zip");
    let zip = snapshot(13);
    std::fs::write(&zip_path, &zip).unwrap();
    let archive = Archive::read(&zip);
    let server = test_server(&database, &dir.join("data"));
    let options = upload_pack_options(
        snappack::validate::Options {
            mode: snappack::validate::ImportMode::Replace,
            target: Some(
                serde_json::from_slice(&server.call("GET", "/api/tables", b"").body).unwrap(),
            ),
            ..Default::default()
        },
        1024,
    );
    let stream = packed_stream(&zip, &options);
    let ranges = frames(&stream);
    assert!(ranges.len() > 20, "{} frames", ranges.len());
    let created = server
        .call("POST", "/api/imports", br#"{"mode":"replace"}"#)
        .json();
    let id = created["id"].as_str().unwrap().to_owned();
    let sent = server.call(
        "POST",
        &format!("/api/imports/{id}/frames?seq=0"),
        &stream[..ranges[4].end],
    );
    assert_eq!(sent.json()["nextSeq"], 5, "{backend}");
    // The other client sends ten more frames just before the upload's
    // state machine asks the status (its second status request).
    let (addr, token) = (server.addr, server.token.clone());
    let (more, statuses) = (
        stream[ranges[5].start..ranges[14].end].to_vec(),
        AtomicUsize::new(0),
    );
    let path = format!("/api/imports/{id} ");
    let frames_path = format!("/api/imports/{id}/frames?seq=5");
    let proxy = proxy(addr, move |line| {
        if line.starts_with("GET ")
            && line.contains(&path)
            && statuses.fetch_add(1, Ordering::SeqCst) == 1
        {
            let auth = format!("Bearer {token}");
            let r = common::http(
                addr,
                "POST",
                &frames_path,
                &[("Authorization", &auth)],
                &more,
            )
            .unwrap();
            assert_eq!(r.status, 200);
        }
        false
    });
    let out = upload_at(proxy, &server.token, &zip_path, &["--resume", &id, "--yes"]);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stderr.contains(&format!("import {id} continues at frame 5")),
        "{stderr}"
    );
    assert!(
        stdout.contains(&format!("import {id} finished")),
        "{stdout}"
    );
    drop(server);
    archive.assert_imported(&database, &dir.join("data"));
}

#[test]
fn a_document_error_found_while_sending_cancels_the_import() {
    for (backend, database) in common::databases() {
        let dir = common::temp_dir("upload-bad");
        let zip_path = dir.join("snapshot.zip");
        let spec = GenSpec {
            seed: 5,
            tables: 2,
            documents_per_table: 400,
            faults: vec![snappack::gen::Fault::DuplicateId],
            ..GenSpec::default()
        };
        let mut zip = Cursor::new(Vec::new());
        write_snapshot(&mut zip, &spec).unwrap();
        std::fs::write(&zip_path, zip.into_inner()).unwrap();
        let port = free_port();
        let mut server = serve(&database, &dir.join("data"), port);

        let out = upload(&zip_path, port, &["--mode", "replace", "--yes"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{backend}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("DuplicateId"));
        assert!(String::from_utf8_lossy(&out.stderr).contains("cancelled"));
        let auth = format!("Bearer {TOKEN}");
        let addr = format!("127.0.0.1:{port}").parse().unwrap();
        let get = |path: &str| {
            common::http(addr, "GET", path, &[("Authorization", &auth)], b"")
                .unwrap()
                .json()
        };
        let imports = get("/api/imports");
        let imports = imports["imports"].as_array().unwrap();
        assert_eq!(imports.len(), 1, "{backend}");
        assert_eq!(imports[0]["state"], "cancelled", "{backend}");
        assert_eq!(
            get("/api/tables")["tables"],
            serde_json::json!([]),
            "{backend}"
        );
        server.kill().unwrap();
        server.wait().unwrap();
    }
}

/// `snappack upload` in a process, against an in-process server.
fn upload_to(server: &TestServer, input: &Path, extra: &[&str]) -> std::process::Output {
    upload_at(server.addr, &server.token, input, extra)
}

/// `snappack upload --quiet` of `input` to the server at `addr` (or a proxy
/// before it), with `extra` arguments.
fn upload_at(
    addr: std::net::SocketAddr,
    token: &str,
    input: &Path,
    extra: &[&str],
) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_snappack"))
        .arg("upload")
        .arg(input)
        .args(["--url", &format!("http://{addr}")])
        .args(["--token", token, "--quiet"])
        .args(extra)
        .output()
        .unwrap()
}

/// `upload --frame-size` is checked as `pack`'s is, before the import is
/// created: a server would refuse the stream's first frame and keep the
/// import open until it expires.
#[test]
fn upload_checks_the_frame_size_before_creating_an_import() {
    let dir = common::temp_dir("upload-frame-size");
    let zip_path = dir.join("snapshot.zip");
    std::fs::write(&zip_path, snapshot(3)).unwrap();
    let server = test_server(&dir.join("db").to_string_lossy(), &dir.join("data"));
    for size in ["20000000", "1"] {
        let out = upload_to(&server, &zip_path, &["--frame-size", size]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{size}: {stderr}");
        assert!(stderr.contains("the frame size must be from"), "{stderr}");
    }
    let imports = server.call("GET", "/api/imports", b"").json();
    assert_eq!(imports["imports"], serde_json::json!([]));
}

/// A stream `pack` wrote is not a snapshot: `upload` says what sends it,
/// and creates no import.
#[test]
fn upload_of_a_packed_stream_says_what_sends_it() {
    let dir = common::temp_dir("upload-stream");
    let stream = dir.join("snapshot.snappack");
    std::fs::write(
        &stream,
        packed_stream(&snapshot(3), &PackOptions::default()),
    )
    .unwrap();
    let server = test_server(&dir.join("db").to_string_lossy(), &dir.join("data"));
    let out = upload_to(&server, &stream, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("is a stream written by `snappack pack`, not a snapshot"),
        "{stderr}"
    );
    let imports = server.call("GET", "/api/imports", b"").json();
    assert_eq!(imports["imports"], serde_json::json!([]));
}

/// A server that takes smaller requests and frames than `upload` sends by
/// default: requests of several frames over `--max-request-bytes` are sent
/// again in smaller ones; frames are packed no larger than the
/// `--max-frame-size` the server advertises (a `--frame-size` over it is
/// lowered, and said so), and the imports land. A server that does not
/// advertise it (an older one) gets frames of the size asked for, as
/// before: refused, upload says how to continue, and that works.
#[test]
fn upload_fits_the_servers_request_and_frame_limits() {
    let dir = common::temp_dir("upload-limits");
    let zip_path = dir.join("snapshot.zip");
    std::fs::write(&zip_path, snapshot(5)).unwrap();
    let server = TestServer::start(ServeConfig {
        database: Some(dir.join("db").to_string_lossy().into_owned()),
        data_dir: dir.join("data"),
        www: None,
        token: Some("t".into()),
        max_request_bytes: 40_000,
        max_frame_size: 16 << 10,
        ..ServeConfig::default()
    });
    let tables = server.call("GET", "/api/tables", b"").json();
    assert_eq!(tables["maxFrameSize"], 16 << 10, "{tables}");
    let out = upload_to(
        &server,
        &zip_path,
        &["--frame-size", "8192", "--frames-per-request", "64"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("at most"), "{stderr}");

    // The default frame size (1 MiB) is over the server's limit: its limit
    // is used, without a word (nothing asked for was changed).
    let out = upload_to(&server, &zip_path, &["--mode", "replace", "--yes"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("at most"), "{stderr}");
    // A frame size asked for over it: lowered to it, and said so.
    let out = upload_to(
        &server,
        &zip_path,
        &["--mode", "replace", "--yes", "--frame-size", "65536"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("the server takes frames of at most 16384 bytes (its --max-frame-size): packing frames of 16384 bytes, not 65536"),
        "{stderr}"
    );
    let imports = server.call("GET", "/api/imports", b"").json();
    let states: Vec<_> = imports["imports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["state"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(states, ["finished"; 3]);

    // An older server, which does not advertise its limit: frames of 1 MiB
    // (here the whole stream is one), refused with the first request, and
    // the import has no frame.
    let old = old_server_proxy(server.addr);
    let upload_to_old = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_snappack"))
            .arg("upload")
            .arg(&zip_path)
            .args(["--url", &format!("http://{old}"), "--token", &server.token])
            .args(args)
            .output()
            .unwrap()
    };
    let out = upload_to_old(&["--mode", "replace", "--yes"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Not the input's fault: the frames are too large for this server.
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("RequestTooLarge"), "{stderr}");
    let imports = server.call("GET", "/api/imports", b"").json();
    let id = imports["imports"][3]["id"].as_str().unwrap().to_owned();
    assert!(
        stderr.contains(&format!(
            "continue with --resume {id} and a smaller --frame-size"
        )),
        "{stderr}"
    );
    let out = upload_to_old(&["--resume", &id, "--frame-size", "16384", "--yes"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let status = server
        .call("GET", &format!("/api/imports/{id}"), b"")
        .json();
    assert_eq!(status["state"], "finished");
}

/// A proxy in front of `server` that answers as a server from before
/// `GET /api/tables` advertised the frame limit: without `maxFrameSize`.
fn old_server_proxy(server: std::net::SocketAddr) -> std::net::SocketAddr {
    proxy_rewriting(
        server,
        |_| false,
        |first_line, answer| {
            if !first_line.starts_with("GET /api/tables ") {
                return answer;
            }
            let split = answer.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
            let mut body: serde_json::Value = serde_json::from_slice(&answer[split..]).unwrap();
            body.as_object_mut()
                .unwrap()
                .remove("maxFrameSize")
                .unwrap();
            let body = serde_json::to_vec(&body).unwrap();
            let head: String = String::from_utf8_lossy(&answer[..split])
                .split_inclusive("\r\n")
                .map(
                    |line| match line.to_ascii_lowercase().starts_with("content-length:") {
                        true => format!("content-length: {}\r\n", body.len()),
                        false => line.to_owned(),
                    },
                )
                .collect();
            [head.into_bytes(), body].concat()
        },
    )
}

/// Reads one HTTP message (head and a `Content-Length` body) from `from`;
/// `None` at the end of the connection.
fn read_message(from: &mut std::io::BufReader<std::net::TcpStream>) -> Option<Vec<u8>> {
    use std::io::{BufRead, Read};
    let mut message = Vec::new();
    let mut length = 0;
    loop {
        let mut line = String::new();
        if from.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap();
            }
        }
        message.extend_from_slice(line.as_bytes());
        if line == "\r\n" {
            break;
        }
    }
    let start = message.len();
    message.resize(start + length, 0);
    from.read_exact(&mut message[start..]).ok()?;
    Some(message)
}

/// A proxy in front of `server` that passes requests on and their answers
/// back. `meddle` is given each request's first line before the request is
/// passed on; when it answers true, the proxy hangs up instead of passing
/// the server's answer back.
fn proxy(
    server: std::net::SocketAddr,
    meddle: impl Fn(&str) -> bool + Send + Sync + 'static,
) -> std::net::SocketAddr {
    proxy_rewriting(server, meddle, |_, answer| answer)
}

/// [`proxy`], passing each answer back as `rewrite` makes it, given the
/// request's first line and the answer (head and body).
fn proxy_rewriting(
    server: std::net::SocketAddr,
    meddle: impl Fn(&str) -> bool + Send + Sync + 'static,
    rewrite: impl Fn(&str, Vec<u8>) -> Vec<u8> + Send + Sync + 'static,
) -> std::net::SocketAddr {
    use std::io::Write;
    use std::sync::Arc;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (meddle, rewrite) = (Arc::new(meddle), Arc::new(rewrite));
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let (client, meddle, rewrite) = (client.unwrap(), meddle.clone(), rewrite.clone());
            std::thread::spawn(move || {
                let mut reader = std::io::BufReader::new(client.try_clone().unwrap());
                let mut writer = client;
                let upstream = std::net::TcpStream::connect(server).unwrap();
                let mut answers = std::io::BufReader::new(upstream.try_clone().unwrap());
                let mut upstream = upstream;
                while let Some(request) = read_message(&mut reader) {
                    let first_line = String::from_utf8_lossy(&request[..request.len().min(200)])
                        .lines()
                        .next()
                        .unwrap_or_default()
                        .to_owned();
                    let lose = meddle(&first_line);
                    upstream.write_all(&request).unwrap();
                    let answer = read_message(&mut answers).unwrap();
                    if lose {
                        return;
                    }
                    writer.write_all(&rewrite(&first_line, answer)).unwrap();
                }
            });
        }
    });
    addr
}

/// A proxy in front of `server` that hangs up instead of answering the
/// first request whose first line has `lose` in it, once the server has
/// answered it.
fn lossy_proxy(server: std::net::SocketAddr, lose: &'static str) -> std::net::SocketAddr {
    use std::sync::atomic::{AtomicBool, Ordering};
    let lost = AtomicBool::new(false);
    proxy(server, move |line| {
        line.contains(lose) && !lost.swap(true, Ordering::SeqCst)
    })
}

/// A proxy in front of `server` that passes requests on and their answers
/// back, but holds the first request whose first line starts with `stall`:
/// it is neither passed on nor answered, and its connection stays open
/// until the client lets it go.
fn stalling_proxy(server: std::net::SocketAddr, stall: &'static str) -> std::net::SocketAddr {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let stalled = Arc::new(AtomicBool::new(false));
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let (client, stalled) = (client.unwrap(), stalled.clone());
            std::thread::spawn(move || {
                use std::io::Write;
                let mut reader = std::io::BufReader::new(client.try_clone().unwrap());
                let mut writer = client;
                let mut upstream = std::net::TcpStream::connect(server).unwrap();
                let mut answers = std::io::BufReader::new(upstream.try_clone().unwrap());
                while let Some(request) = read_message(&mut reader) {
                    if request.starts_with(stall.as_bytes())
                        && !stalled.swap(true, Ordering::SeqCst)
                    {
                        // Held: read whatever comes until the client hangs up.
                        while read_message(&mut reader).is_some() {}
                        return;
                    }
                    upstream.write_all(&request).unwrap();
                    let answer = read_message(&mut answers).unwrap();
                    writer.write_all(&answer).unwrap();
                }
            });
        }
    });
    addr
}

/// A frames request the server never answers is given up on after
/// `--timeout`, tried again as any network error is, and the import lands
/// whole.
#[test]
fn an_upload_whose_request_gets_no_answer_tries_again_after_its_timeout() {
    let dir = common::temp_dir("upload-stalled");
    let zip_path = dir.join("snapshot.zip");
    let zip = snapshot(8);
    std::fs::write(&zip_path, &zip).unwrap();
    let server = test_server(&dir.join("db").to_string_lossy(), &dir.join("data"));
    let proxy = stalling_proxy(server.addr, "POST /api/imports/");
    let started = std::time::Instant::now();
    let out = upload_at(
        proxy,
        &server.token,
        &zip_path,
        &["--frame-size", "8192", "--timeout", "1"],
    );
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(60),
        "{stdout}{stderr}"
    );
    let imports = server.call("GET", "/api/imports", b"").json();
    assert_eq!(imports["imports"][0]["state"], "finished", "{imports}");
    let archive = Archive::read(&zip);
    let tables = server.call("GET", "/api/tables", b"").json();
    let landed: usize = tables["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["documents"].as_u64().unwrap() as usize)
        .sum();
    let expected: usize = archive.lines.values().map(Vec::len).sum();
    assert_eq!(landed, expected, "{tables}");
}

/// When the answer to finish is lost, upload asks the import's status, finds
/// it finished, and says so: it does not know the tables it activated, and
/// does not claim there were none.
#[test]
fn an_upload_whose_finish_answer_is_lost_says_it_finished() {
    let dir = common::temp_dir("upload-finish-lost");
    let zip_path = dir.join("snapshot.zip");
    std::fs::write(&zip_path, snapshot(6)).unwrap();
    let server = test_server(&dir.join("db").to_string_lossy(), &dir.join("data"));
    let proxy = lossy_proxy(server.addr, "/finish");
    let out = Command::new(env!("CARGO_BIN_EXE_snappack"))
        .arg("upload")
        .arg(&zip_path)
        .args([
            "--url",
            &format!("http://{proxy}"),
            "--token",
            &server.token,
        ])
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    let imports = server.call("GET", "/api/imports", b"").json();
    assert_eq!(imports["imports"][0]["state"], "finished");
    assert!(
        stdout.contains("finished (no answer listing its tables"),
        "{stdout}"
    );
    assert!(!stdout.contains("0 tables"), "{stdout}");
    let tables = server.call("GET", "/api/tables", b"").json();
    assert_eq!(tables["tables"].as_array().unwrap().len(), 12, "{tables}");
}

/// Ctrl-C in the middle of `snappack upload` leaves no spool file of the
/// packed stream behind (it is unlinked as soon as it is opened), and says
/// last how to continue the import, which `--resume` then finishes. Before,
/// it ended without a word.
#[test]
fn an_interrupted_upload_leaves_no_spool_file_and_says_how_to_go_on() {
    let dir = common::temp_dir("upload-interrupted");
    let zip_path = dir.join("snapshot.zip");
    std::fs::write(&zip_path, snapshot(4)).unwrap();
    let server = test_server(&dir.join("db").to_string_lossy(), &dir.join("data"));
    let mut client = Command::new(env!("CARGO_BIN_EXE_snappack"))
        .arg("upload")
        .arg(&zip_path)
        .args(["--url", &format!("http://{}", server.addr)])
        .args(["--token", &server.token, "--frame-size", "4096"])
        .args(["--frames-per-request", "1", "--level", "9"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let line = common::first_stderr_line(&mut client);
    assert!(line.contains("started"), "{line}");
    let sent = Command::new("kill")
        .args(["-INT", &client.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let mut rest = String::new();
    std::io::Read::read_to_string(client.stderr.as_mut().unwrap(), &mut rest).unwrap();
    let status = client.wait().unwrap();
    assert!(!status.success(), "interrupted before it finished");
    let spool = std::env::temp_dir().join(format!("snappack-upload-{}.snappack", client.id()));
    assert!(!spool.exists(), "{} left behind", spool.display());
    // It says how to go on, last, as Ctrl-C's status (the line that named
    // the import when it started may be far back by then); and it goes on.
    let id = line.split_whitespace().nth(2).unwrap();
    assert_eq!(status.code(), Some(130), "{rest}");
    assert_eq!(
        rest.lines().last(),
        Some(
            format!(
                "snappack: interrupted: import {id} stays open: continue it with --resume {id}"
            )
            .as_str()
        ),
        "{rest}"
    );
    let out = upload_to(&server, &zip_path, &["--resume", id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A server, and an upload, whose standard error is gone (a closed pipe: a
/// logger that ended) go on, their lines lost. Before, the first line
/// either wrote panicked (exit 101): the server never served, and an upload
/// whose import finished ended as if it had crashed.
#[test]
fn a_closed_standard_error_stops_neither_serve_nor_upload() {
    let dir = common::temp_dir("closed-stderr");
    let closed = || {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        writer
    };
    let port = free_port();
    let mut server = Command::new(env!("CARGO_BIN_EXE_snappack"))
        .args(["serve", "--no-www", "--token", TOKEN])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .arg("--data-dir")
        .arg(dir.join("data"))
        .stderr(closed())
        .spawn()
        .unwrap();
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    let auth = format!("Bearer {TOKEN}");
    let mut answered = None;
    for _ in 0..200 {
        if let Some(status) = server.try_wait().unwrap() {
            panic!("serve ended: {status}");
        }
        if let Ok(answer) =
            common::http(addr, "GET", "/api/tables", &[("Authorization", &auth)], b"")
        {
            answered = Some(answer.status);
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(answered, Some(200));
    let zip_path = dir.join("snapshot.zip");
    std::fs::write(&zip_path, snapshot(51)).unwrap();
    let out = upload(&zip_path, port, &[])
        .stderr(closed())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("finished: "), "{stdout}");
    let _ = server.kill();
    server.wait().unwrap();
}

/// `upload --resume` with another file than the import was started with is
/// refused before anything is sent, naming both files; the right one
/// continues it. Labels of older clients (name and size) are checked too.
#[test]
fn a_resumed_upload_refuses_another_file() {
    let dir = common::temp_dir("upload-resume-other");
    let (right, wrong) = (dir.join("a"), dir.join("b"));
    std::fs::create_dir_all(&right).unwrap();
    std::fs::create_dir_all(&wrong).unwrap();
    let (right, wrong) = (right.join("snapshot.zip"), wrong.join("snapshot.zip"));
    let (right_zip, wrong_zip) = (snapshot(21), snapshot(22));
    std::fs::write(&right, &right_zip).unwrap();
    std::fs::write(&wrong, &wrong_zip).unwrap();
    let server = test_server(&dir.join("db").to_string_lossy(), &dir.join("data"));
    let identity = identity_of("snapshot.zip", &right_zip);
    let create = |label: &str| {
        let body = serde_json::json!({"mode": "replace", "label": label}).to_string();
        let created = server.call("POST", "/api/imports", body.as_bytes()).json();
        created["id"].as_str().unwrap().to_owned()
    };
    let old_label = format!("snapshot.zip ({} bytes)", right_zip.len() - 1);
    for (label, recorded) in [
        (identity.label(), identity.to_string()),
        (old_label.clone(), old_label),
    ] {
        let id = create(&label);
        let out = upload_to(&server, &wrong, &["--resume", &id, "--yes"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains(&format!(
                "import {id} was started with {recorded}, not snapshot.zip ({} bytes, fingerprint",
                wrong_zip.len()
            )),
            "{stderr}"
        );
        assert!(stderr.contains("without --resume"), "{stderr}");
        assert!(
            stderr.contains(&format!("/api/imports/{id}/cancel")),
            "{stderr}"
        );
        let status = server
            .call("GET", &format!("/api/imports/{id}"), b"")
            .json();
        assert_eq!(
            (status["nextSeq"].as_u64(), status["receivedBytes"].as_u64()),
            (Some(0), Some(0)),
            "nothing sent"
        );
    }
    let id = create(&identity.label());
    let out = upload_to(&server, &right, &["--resume", &id, "--yes"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A new import is labelled with the file's fingerprint.
    let out = upload_to(&server, &right, &["--mode", "replace", "--yes"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let new_id = stdout.split_whitespace().nth(2).unwrap();
    let status = server
        .call("GET", &format!("/api/imports/{new_id}"), b"")
        .json();
    assert_eq!(
        status["label"],
        serde_json::json!(identity.label()),
        "{stdout}"
    );
}

/// An import records what it targets (the component given to `upload`),
/// and a resumed upload given another component is told so before it
/// sends anything. Before, the import did not say it, and resuming an
/// import into a component without `--component` checked the snapshot's
/// tables against the root's, refusing with `TableExists` for tables that
/// were never the import's.
#[test]
fn a_resumed_upload_with_another_component_says_the_one_it_was_started_with() {
    let dir = common::temp_dir("upload-resume-component");
    let path = dir.join("snapshot.zip");
    let zip = snapshot(41);
    std::fs::write(&path, &zip).unwrap();
    let server = test_server(&dir.join("db").to_string_lossy(), &dir.join("data"));
    // The root has the snapshot's tables already.
    let out = upload_to(&server, &path, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // An upload records its component.
    let out = upload_to(&server, &path, &["--component", "other"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = stdout.split_whitespace().nth(2).unwrap();
    let status = server
        .call("GET", &format!("/api/imports/{id}"), b"")
        .json();
    assert_eq!(
        status["target"],
        serde_json::json!({"component": "other"}),
        "{status}"
    );

    // An upload into component `billing` interrupted after three frames, as
    // `upload --component billing` makes them.
    let target = serde_json::from_slice(&server.call("GET", "/api/tables", b"").body).unwrap();
    let options = upload_pack_options(
        snappack::validate::Options {
            component: "billing".into(),
            target: Some(target),
            ..Default::default()
        },
        4096,
    );
    let stream = packed_stream(&zip, &options);
    let ranges = frames(&stream);
    let identity = identity_of("snapshot.zip", &zip);
    let body = serde_json::json!({
        "mode": "requireEmpty",
        "label": identity.label(),
        "target": {"component": "billing"},
    });
    let created = server
        .call("POST", "/api/imports", body.to_string().as_bytes())
        .json();
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(
        created["target"],
        serde_json::json!({"component": "billing"})
    );
    let sent = server.call(
        "POST",
        &format!("/api/imports/{id}/frames?seq=0"),
        &stream[..ranges[2].end],
    );
    assert_eq!(sent.json()["nextSeq"], 3);

    for (extra, given) in [
        (vec![], "no --component (the root)"),
        (vec!["--component", "other"], "--component other"),
    ] {
        let mut args = vec!["--resume", id.as_str()];
        args.extend(extra);
        let out = upload_to(&server, &path, &args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains(&format!(
                "import {id} was started with --component billing, and this upload has {given}: \
                 give --component billing to continue it"
            )),
            "{stderr}"
        );
        assert!(!stderr.contains("TableExists"), "{stderr}");
        let status = server
            .call("GET", &format!("/api/imports/{id}"), b"")
            .json();
        assert_eq!(status["nextSeq"], 3, "nothing sent: {status}");
    }
    // With it, the import goes on and lands in billing.
    let out = upload_to(&server, &path, &["--resume", &id, "--component", "billing"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tables = server.call("GET", "/api/tables", b"").json();
    let billing = tables["tables"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["component"] == "billing")
        .count();
    assert!(billing > 0, "{tables}");

    // The server refuses a target that names no component or table.
    for target in [
        serde_json::json!({"component": "not a name"}),
        serde_json::json!({"component": "", "table": "a-b"}),
        serde_json::json!({"component": "", "extra": 1}),
    ] {
        let body = serde_json::json!({"target": target}).to_string();
        let answer = server.call("POST", "/api/imports", body.as_bytes());
        assert_eq!(answer.status, 400, "{target}");
        assert_eq!(answer.json()["code"], "BadRequest", "{target}");
    }
}

/// A finished upload prints a one-line summary and at most 20 of its
/// tables; with `--quiet`, only the summary.
/// What replace and replaceAll remove from the server's tables is listed
/// before anything is sent, and without a terminal it takes `--yes`.
#[test]
fn removing_the_servers_documents_is_listed_and_takes_yes() {
    let dir = common::temp_dir("upload-removes");
    let server = test_server(&dir.join("db").to_string_lossy(), &dir.join("data"));
    let write = |name: &str, tables: u32| {
        let path = dir.join(name);
        let spec = GenSpec {
            tables,
            documents_per_table: 3,
            ..GenSpec::default()
        };
        let mut zip = Cursor::new(Vec::new());
        write_snapshot(&mut zip, &spec).unwrap();
        std::fs::write(&path, zip.into_inner()).unwrap();
        path
    };
    let two = write("two.zip", 2);
    let one = write("one.zip", 1);
    // Into empty tables nothing is removed: no question.
    let out = upload_to(&server, &two, &["--mode", "replace"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let imports = || {
        server.call("GET", "/api/imports", b"").json()["imports"]
            .as_array()
            .unwrap()
            .len()
    };
    assert_eq!(imports(), 1);

    // replaceAll of one table: one replaced, one deleted; refused without --yes.
    let out = upload_to(&server, &one, &["--mode", "replaceAll"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("in replaceAll mode, this import removes 6 documents from 2 tables of the server when it finishes:")
            && stderr.contains("  users: its 3 documents, replaced by the snapshot's")
            && stderr.contains("  messages: deleted with its 3 documents (the snapshot does not have it)")
            && stderr.contains("nothing was sent: give --yes to go ahead with these removals"),
        "{stderr}"
    );
    assert_eq!(imports(), 1, "nothing was sent");
    // On a terminal it asks: "n" sends nothing, "y" goes ahead. util-linux's
    // `script` gives the command a terminal and types the answer into it.
    let asked = |answer: &str| {
        let command = format!(
            "{} upload {} --url http://{} --token {} --quiet --mode replaceAll",
            env!("CARGO_BIN_EXE_snappack"),
            one.display(),
            server.addr,
            server.token
        );
        let mut child = Command::new("script")
            .args(["--quiet", "--return", "--command", &command, "/dev/null"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("util-linux's script runs the command on a terminal");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(answer.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (code, terminal) = asked("n\n");
    assert_eq!(code, Some(1), "{terminal}");
    assert!(
        terminal.contains("Go ahead? [y/N]") && terminal.contains("not uploaded: nothing was sent"),
        "{terminal}"
    );
    assert_eq!(imports(), 1, "nothing was sent");
    let (code, terminal) = asked("y\n");
    assert_eq!(code, Some(0), "{terminal}");
    assert_eq!(imports(), 2);
    let out = upload_to(&server, &two, &["--mode", "replace", "--yes"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = upload_to(&server, &one, &["--mode", "replaceAll", "--yes"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tables = server.call("GET", "/api/tables", b"").json();
    let names: Vec<_> = tables["tables"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str().filter(|n| !n.starts_with('_')))
        .collect();
    assert_eq!(names, ["users"]);
}

/// On a terminal, `upload` shows how much of the input the server has, from
/// the first acknowledged frame on, while packing goes on; the share only
/// grows and reaches the whole input.
#[test]
fn on_a_terminal_upload_shows_the_share_of_the_input_the_server_has() {
    let dir = common::temp_dir("upload-bar");
    let zip_path = dir.join("snapshot.zip");
    let spec = GenSpec {
        tables: 2,
        total_documents: Some(20_000),
        compression_level: 1,
        ..GenSpec::default()
    };
    let mut zip = Cursor::new(Vec::new());
    write_snapshot(&mut zip, &spec).unwrap();
    std::fs::write(&zip_path, zip.into_inner()).unwrap();
    let server = test_server(&dir.join("db").to_string_lossy(), &dir.join("data"));
    // Small frames, one per request: the upload takes long enough for the bar to be drawn often.
    let command = format!(
        "{} upload {} --url http://{} --token {} --frame-size 4096 --frames-per-request 1",
        env!("CARGO_BIN_EXE_snappack"),
        zip_path.display(),
        server.addr,
        server.token
    );
    let out = Command::new("script")
        .args(["--quiet", "--return", "--command", &command, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .expect("util-linux's script runs the command on a terminal");
    let terminal = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{terminal}");
    let shares: Vec<u32> = terminal
        .split("\x1b[K")
        .filter_map(|drawn| drawn.split_once("% of the input")?.0.parse().ok())
        .collect();
    assert!(shares.len() > 3, "{terminal}");
    assert!(shares.windows(2).all(|w| w[0] <= w[1]), "{shares:?}");
    assert!(
        shares[0] < 50 && shares.iter().any(|&s| s >= 90),
        "{shares:?}"
    );
}

#[test]
fn a_finished_upload_lists_few_tables_and_none_when_quiet() {
    let dir = common::temp_dir("upload-summary");
    let zip_path = dir.join("snapshot.zip");
    let spec = GenSpec {
        tables: 25,
        documents_per_table: 2,
        ..GenSpec::default()
    };
    let mut zip = Cursor::new(Vec::new());
    write_snapshot(&mut zip, &spec).unwrap();
    std::fs::write(&zip_path, zip.into_inner()).unwrap();
    let server = test_server(&dir.join("db").to_string_lossy(), &dir.join("data"));
    // --quiet (as upload_to passes it): the summary alone.
    let out = upload_to(&server, &zip_path, &["--mode", "replace", "--yes"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(
        stdout
            .trim_end()
            .ends_with("finished: 25 tables, 50 documents"),
        "{stdout}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_snappack"))
        .arg("upload")
        .arg(&zip_path)
        .args(["--url", &format!("http://{}", server.addr)])
        .args(["--token", &server.token, "--mode", "replace", "--yes"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 22, "{stdout}");
    assert_eq!(
        lines[21],
        "  and 5 more (GET /api/tables lists every table)"
    );
    // The removals: every one when they are to be agreed to, the first 20
    // once agreed to with --yes.
    let stderr = String::from_utf8_lossy(&out.stderr);
    let replaced = |text: &str| text.matches(", replaced by the snapshot's").count();
    assert_eq!(replaced(&stderr), 20, "{stderr}");
    assert!(stderr.contains("  and 5 more\n"), "{stderr}");
    let out = upload_to(&server, &zip_path, &["--mode", "replace"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(replaced(&stderr), 25, "{stderr}");
    assert!(!stderr.contains("more"), "{stderr}");
}

/// A ZIP of the given entries.
fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    use std::io::Write;
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (name, content) in entries {
        writer
            .start_file(*name, zip::write::SimpleFileOptions::default())
            .unwrap();
        writer.write_all(content).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

/// The options `snappack upload` packs with, its validation options given,
/// in frames of at most `max_frame_size` bytes.
fn upload_pack_options(
    validate: snappack::validate::Options,
    max_frame_size: usize,
) -> PackOptions {
    PackOptions {
        validate,
        encoder: snappack::migration::EncoderConfig {
            max_frame_size,
            ..Default::default()
        },
        producer: format!("snappack {}", env!("CARGO_PKG_VERSION")),
        created_at_ms: 0,
        ..PackOptions::default()
    }
}

/// What an import's label records of the file `name` holding `bytes`, as
/// `snappack upload` makes it.
fn identity_of(name: &str, bytes: &[u8]) -> snappack::client::FileIdentity {
    let span = snappack::client::FINGERPRINT_SPAN.min(bytes.len() as u64) as usize;
    snappack::client::FileIdentity::of(
        name,
        bytes.len() as u64,
        &bytes[..span],
        &bytes[bytes.len() - span..],
    )
}

/// The stream of a valid snapshot packed with `options`.
fn packed_stream(zip: &[u8], options: &PackOptions) -> Vec<u8> {
    pack(
        Cursor::new(zip),
        "snapshot.zip",
        Vec::new(),
        options,
        &mut |_| true,
    )
    .unwrap()
    .0
}

/// Packs `input`, forced or not; a single-table file goes to table `items`.
fn pack_input(file_name: &str, input: &[u8], force: bool) -> Result<(Vec<u8>, Packed), PackError> {
    let options = PackOptions {
        validate: snappack::Options {
            table: (!file_name.ends_with(".zip")).then(|| "items".into()),
            ..Default::default()
        },
        force,
        ..PackOptions::default()
    };
    pack(
        Cursor::new(input),
        file_name,
        Vec::new(),
        &options,
        &mut |_| true,
    )
}

/// Sends a whole stream as one request to a new import: the server's answer.
fn send_stream(server: &TestServer, stream: &[u8]) -> (String, common::HttpResponse) {
    let created = server
        .call("POST", "/api/imports", br#"{"mode":"replaceAll"}"#)
        .json();
    let id = created["id"].as_str().unwrap().to_owned();
    let response = server.call("POST", &format!("/api/imports/{id}/frames?seq=0"), stream);
    (id, response)
}

fn test_server(database: &str, data_dir: &Path) -> TestServer {
    TestServer::start(ServeConfig {
        database: Some(database.to_owned()),
        data_dir: data_dir.to_owned(),
        www: None,
        token: Some("t".into()),
        ..ServeConfig::default()
    })
}

/// Without a `"uniform"` generated schema every number is a Float64, so an
/// integer `_creationTime` is valid: the client accepts it, and the server,
/// checking with the rules the stream declares, lands it.
#[test]
fn plain_tables_with_an_integer_creation_time_land() {
    let lines = "{\"_creationTime\":1700000000000,\"n\":1}\n\
                 {\"_creationTime\":1700000000001,\"n\":2}\n";
    let inputs = [
        ("items.jsonl", lines.as_bytes().to_vec()),
        (
            "snapshot.zip",
            zip_of(&[("items/documents.jsonl", lines.as_bytes())]),
        ),
    ];
    for (backend, database) in common::databases() {
        // A database is served from one data folder.
        let data_dir = common::temp_dir("plain");
        for (file_name, input) in &inputs {
            let (stream, packed) = pack_input(file_name, input, false).unwrap();
            assert!(packed.report.valid, "{file_name}");
            let server = test_server(&database, &data_dir);
            let (id, response) = send_stream(&server, &stream);
            assert_eq!(
                response.status,
                200,
                "{backend} {file_name}: {:?}",
                response.json()
            );
            let finished = server.call("POST", &format!("/api/imports/{id}/finish"), b"");
            assert_eq!(finished.status, 200, "{backend}: {:?}", finished.json());
            drop(server);
            let store = snappack::server::store::open(&database).unwrap();
            let mut stored: Vec<String> = store
                .documents("", "items")
                .unwrap()
                .unwrap()
                .into_iter()
                .map(|d| d.json)
                .collect();
            stored.sort();
            let expected: Vec<&str> = lines.lines().collect();
            assert_eq!(stored, expected, "{backend} {file_name}");
        }
    }
}

/// The server re-validates every document with the rules its table declares,
/// whatever the client let through (`force`): an integer `_creationTime` in
/// a `"uniform"` table, and a `$integer` wrapper in a plain one, are refused
/// with where.
#[test]
fn the_server_checks_forced_streams_with_the_declared_rules() {
    let uniform = zip_of(&[
        ("users/generated_schema.jsonl", b"\"uniform\"\n"),
        (
            "users/documents.jsonl",
            b"{\"_creationTime\":1700000000000.5,\"n\":1}\n\
              {\"_creationTime\":1700000000000,\"n\":2}\n",
        ),
    ]);
    let wrapper = b"{\"n\":1}\n{\"n\":{\"$integer\":\"AQAAAAAAAAA=\"}}\n".to_vec();
    let cases = [
        ("snapshot.zip", uniform, "users", "InvalidCreationTimeError"),
        ("items.jsonl", wrapper, "items", "InvalidConvexValue"),
    ];
    for (backend, database) in common::databases() {
        let server = test_server(&database, &common::temp_dir("forced"));
        for (file_name, input, table, code) in &cases {
            // The client refuses it with the same code...
            let Err(PackError::Invalid(report)) = pack_input(file_name, input, false) else {
                panic!("{file_name}: the client accepts it");
            };
            assert_eq!(report.errors[0].code.as_str(), *code, "{file_name}");
            // ...and, forced, packs it for the server to judge.
            let (stream, packed) = pack_input(file_name, input, true).unwrap();
            assert!(!packed.report.valid, "{file_name}");
            let (_, response) = send_stream(&server, &stream);
            assert_eq!(response.status, 422, "{backend} {file_name}");
            let body = response.json();
            assert_eq!(body["code"], *code, "{backend} {file_name}: {body}");
            assert_eq!(body["table"], *table, "{backend} {file_name}: {body}");
            assert_eq!(body["line"], 2, "{backend} {file_name}: {body}");
        }
    }
}

/// An import whose table another import changed since (replaced it under
/// another number, here) can no longer finish (`TableChanged`): the server
/// fails it at once, its status says which table, from the change on and
/// after a restart, and
/// `upload --resume` says so before sending anything, instead of calling the
/// file another input (the frames it packs now would number that table
/// otherwise).
#[test]
fn a_resumed_upload_whose_table_another_import_changed_says_which() {
    for (backend, database) in common::databases() {
        let dir = common::temp_dir("upload-resume-changed");
        let data_dir = dir.join("data");
        let rows: String = (0..400)
            .map(|n| format!("{{\"n\":{n},\"text\":\"{}\"}}\n", "x".repeat(n % 50)))
            .collect();
        let (rows_path, one_path, other_path) = (
            dir.join("rows.jsonl"),
            dir.join("one.jsonl"),
            dir.join("t.zip"),
        );
        std::fs::write(&rows_path, &rows).unwrap();
        std::fs::write(&one_path, "{\"n\":1}\n").unwrap();
        std::fs::write(
            &other_path,
            zip_of(&[
                ("_tables/documents.jsonl", br#"{"name":"t","id":10002}"#),
                ("t/documents.jsonl", br#"{"n":2}"#),
            ]),
        )
        .unwrap();
        let server = test_server(&database, &data_dir);
        let out = upload_to(&server, &one_path, &["--table", "t"]);
        assert!(out.status.success(), "{backend}: {out:?}");

        // Part of an append into `t` (10001, from the server's tables), as
        // `snappack upload --table t --mode append` packs it.
        let target = serde_json::from_slice(&server.call("GET", "/api/tables", b"").body).unwrap();
        let options = upload_pack_options(
            snappack::validate::Options {
                mode: snappack::validate::ImportMode::Append,
                table: Some("t".into()),
                target: Some(target),
                ..Default::default()
            },
            4096,
        );
        let (stream, _) = pack(
            Cursor::new(rows.as_bytes()),
            "rows.jsonl",
            Vec::new(),
            &options,
            &mut |_| true,
        )
        .unwrap();
        let ranges = frames(&stream);
        assert!(ranges.len() > 4, "{backend}: {} frames", ranges.len());
        let created = server
            .call("POST", "/api/imports", br#"{"mode":"append"}"#)
            .json();
        let id = created["id"].as_str().unwrap().to_owned();
        let sent = server.call(
            "POST",
            &format!("/api/imports/{id}/frames?seq=0"),
            &stream[..ranges[2].end],
        );
        assert_eq!(sent.json()["nextSeq"], 3, "{backend}");
        let status = server
            .call("GET", &format!("/api/imports/{id}"), b"")
            .json();
        assert!(status.get("tableChanged").is_none(), "{backend}: {status}");

        // Another import replaces `t`, as 10002.
        let out = upload_to(&server, &other_path, &["--mode", "replace", "--yes"]);
        assert!(out.status.success(), "{backend}: {out:?}");
        // The server failed it at once: it could never finish.
        let changed = |server: &TestServer| {
            let status = server
                .call("GET", &format!("/api/imports/{id}"), b"")
                .json();
            assert_eq!(status["state"], "failed", "{backend}: {status}");
            status["tableChanged"].clone()
        };
        let expected = serde_json::json!({
            "code": "TableChanged",
            "message": "Table `t` changed while this import was running (another import finished on it). Start the import again.",
            "component": "",
            "table": "t",
        });
        assert_eq!(changed(&server), expected, "{backend}");
        let resume = |server: &TestServer| {
            let out = upload_to(server, &rows_path, &["--table", "t", "--resume", &id]);
            let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
            assert_eq!(out.status.code(), Some(1), "{backend}: {stderr}");
            assert!(
                stderr.contains(&format!(
                    "import {id} failed: it could no longer finish: TableChanged: Table `t` changed"
                )) && stderr.contains("Nothing was sent")
                    && !stderr.contains("/cancel"),
                "{backend}: {stderr}"
            );
            assert!(!stderr.contains("ResumeMismatch") && !stderr.contains("not the input"));
        };
        resume(&server);
        assert_eq!(changed(&server), expected, "{backend}");

        // A restarted server knows it too.
        drop(server);
        let server = test_server(&database, &data_dir);
        assert_eq!(changed(&server), expected, "{backend}");
        resume(&server);
    }
}

/// `upload --resume` of an import that is finished, failed (here its finish
/// was refused: `TableExists`) or cancelled is a refusal of that import, as
/// one another import failed is: exit 1, naming its state (and why), and
/// saying to upload again without `--resume`; nothing is sent.
#[test]
fn a_resumed_upload_of_a_closed_import_says_its_state_and_exits_1() {
    for (backend, database) in common::databases() {
        let dir = common::temp_dir("upload-resume-closed");
        let zip = zip_of(&[("users/documents.jsonl", br#"{"n":1}"#)]);
        let zip_path = dir.join("users.zip");
        std::fs::write(&zip_path, &zip).unwrap();
        let server = test_server(&database, &dir.join("data"));
        let resume = |id: &str| {
            let before = server
                .call("GET", &format!("/api/imports/{id}"), b"")
                .json();
            let out = upload_to(&server, &zip_path, &["--resume", id]);
            let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
            assert_eq!(out.status.code(), Some(1), "{backend}: {stderr}");
            assert!(
                stderr.contains("Nothing was sent")
                    && stderr.contains(&format!("upload {} without --resume", zip_path.display())),
                "{backend}: {stderr}"
            );
            let after = server
                .call("GET", &format!("/api/imports/{id}"), b"")
                .json();
            assert_eq!(before, after, "{backend}");
            stderr
        };

        let out = upload_to(&server, &zip_path, &[]);
        assert!(out.status.success(), "{backend}: {out:?}");
        let imports = server.call("GET", "/api/imports", b"").json();
        let finished = imports["imports"][0]["id"].as_str().unwrap().to_owned();
        let stderr = resume(&finished);
        assert!(
            stderr.contains(&format!(
                "import {finished} is finished: its tables are on the server"
            )),
            "{backend}: {stderr}"
        );

        // The same snapshot again, in requireEmpty mode: its finish is refused.
        let stream = packed_stream(&zip, &PackOptions::default());
        let created = server
            .call("POST", "/api/imports", br#"{"mode":"requireEmpty"}"#)
            .json();
        let failed = created["id"].as_str().unwrap().to_owned();
        let sent = server.call(
            "POST",
            &format!("/api/imports/{failed}/frames?seq=0"),
            &stream,
        );
        assert_eq!(sent.status, 200, "{backend}: {:?}", sent.json());
        let finish = server.call("POST", &format!("/api/imports/{failed}/finish"), b"");
        assert_eq!(finish.json()["code"], "TableExists", "{backend}");
        let stderr = resume(&failed);
        assert!(
            stderr.contains(&format!(
                "import {failed} failed (TableExists: Table users already exists."
            )) && stderr.contains("it cannot be continued"),
            "{backend}: {stderr}"
        );

        let created = server
            .call("POST", "/api/imports", br#"{"mode":"append"}"#)
            .json();
        let cancelled = created["id"].as_str().unwrap().to_owned();
        let cancel = server.call("POST", &format!("/api/imports/{cancelled}/cancel"), b"");
        assert_eq!(cancel.status, 200, "{backend}");
        let stderr = resume(&cancelled);
        assert!(
            stderr.contains(&format!(
                "import {cancelled} was cancelled: it cannot be continued"
            )),
            "{backend}: {stderr}"
        );

        // An id the server does not know is a wrong option: exit 2.
        let out = upload_to(&server, &zip_path, &["--resume", "0123456789abcdef"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{backend}: {stderr}");
        assert_eq!(
            stderr.trim_end(),
            format!(
                "snappack: http://{} has no import 0123456789abcdef: give the id an upload \
                 printed when it started (`import ID started`), or upload without --resume to \
                 start a new import",
                server.addr
            ),
            "{backend}"
        );
    }
}

/// The removals `upload` lists and asks about in replace and replaceAll
/// modes are those of the server's tables, which the server's import
/// removes from, also when `--target-tables` gives other tables (here none)
/// to number the snapshot against: off a terminal, without `--yes`, nothing
/// is sent and the server's tables stay.
#[test]
fn upload_with_target_tables_asks_about_the_servers_removals() {
    for (backend, database) in common::databases() {
        let dir = common::temp_dir("upload-target-removals");
        let (rows_path, zip_path, tables_path) = (
            dir.join("rows.jsonl"),
            dir.join("users.zip"),
            dir.join("tables.json"),
        );
        std::fs::write(&rows_path, "{\"n\":1}\n{\"n\":2}\n").unwrap();
        std::fs::write(
            &zip_path,
            zip_of(&[("users/documents.jsonl", br#"{"n":1}"#)]),
        )
        .unwrap();
        std::fs::write(&tables_path, r#"{"tables": []}"#).unwrap();
        let server = test_server(&database, &dir.join("data"));
        for table in ["kept", "users"] {
            let out = upload_to(&server, &rows_path, &["--table", table]);
            assert!(out.status.success(), "{backend}: {out:?}");
        }
        let tables = server.call("GET", "/api/tables", b"").json();
        let target = ["--target-tables", tables_path.to_str().unwrap()];

        for mode in ["replace", "replaceAll"] {
            let out = upload_to(
                &server,
                &zip_path,
                &[&["--mode", mode][..], &target].concat(),
            );
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{backend} {mode}: {stderr}");
            assert!(
                stderr.contains("  users: its 2 documents, replaced by the snapshot's")
                    && stderr.contains("give --yes to go ahead with these removals"),
                "{backend} {mode}: {stderr}"
            );
            assert_eq!(
                stderr.contains("  kept: deleted with its 2 documents"),
                mode == "replaceAll",
                "{backend} {mode}: {stderr}"
            );
            assert_eq!(
                server.call("GET", "/api/tables", b"").json(),
                tables,
                "{backend}"
            );
        }
        // Agreed to, it goes as the server's mode says.
        let out = upload_to(
            &server,
            &zip_path,
            &[&["--mode", "replaceAll", "--yes"][..], &target].concat(),
        );
        assert!(out.status.success(), "{backend}: {out:?}");
        let names: Vec<_> = server.call("GET", "/api/tables", b"").json()["tables"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(names, ["users"], "{backend}");
    }
}

/// An upload sending normally (it reads no status) whose table another
/// import changes mid-way is refused at its next request (`TableChanged`,
/// the import failed on the server): it stops there, sends nothing more,
/// exits 1 and says to start again, not to resume.
#[test]
fn an_upload_whose_table_another_import_changes_mid_way_stops_at_once() {
    use std::sync::{Arc, Mutex};
    for (backend, database) in common::databases() {
        let dir = common::temp_dir("upload-changed-mid-way");
        let rows: String = (0..400)
            .map(|n| format!("{{\"n\":{n},\"text\":\"{}\"}}\n", "x".repeat(n % 50)))
            .collect();
        let (rows_path, other_path) = (dir.join("rows.jsonl"), dir.join("t.jsonl"));
        std::fs::write(&rows_path, &rows).unwrap();
        std::fs::write(&other_path, "{\"n\":1}\n").unwrap();
        let server = Arc::new(test_server(&database, &dir.join("data")));
        // Before the upload's third frames go on, another import creates `t`.
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (meddler, record) = (server.clone(), seen.clone());
        let proxy = proxy(server.addr, move |line| {
            let mut seen = record.lock().unwrap();
            if line.contains("/frames?seq=2 ") {
                let out = upload_to(&meddler, &other_path, &["--table", "t"]);
                assert!(out.status.success(), "{out:?}");
            }
            seen.push(line.to_owned());
            false
        });
        let out = Command::new(env!("CARGO_BIN_EXE_snappack"))
            .arg("upload")
            .arg(&rows_path)
            .args(["--table", "t", "--url", &format!("http://{proxy}")])
            .args(["--token", &server.token, "--frame-size", "4096"])
            .args(["--frames-per-request", "1"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{backend}: {stderr}");
        assert!(
            stderr.contains(
                "upload failed: TableChanged: Table `t` changed while this import was running \
                 (another import finished on it). Start the import again. (table t)"
            ) && !stderr.contains("--resume ID")
                && !stderr.contains("stays open"),
            "{backend}: {stderr}"
        );
        let seen = seen.lock().unwrap().clone();
        let last = seen.last().unwrap();
        assert!(last.contains("/frames?seq=2 "), "{backend}: {seen:?}");
        let imports = server.call("GET", "/api/imports", b"").json();
        let states: Vec<&str> = imports["imports"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["state"].as_str().unwrap())
            .collect();
        assert_eq!(states, ["failed", "finished"], "{backend}: {imports}");
    }
}

/// A database is served from one data folder, which has its open imports'
/// staging logs and its stored files: a server given another folder for it
/// is refused (while the first server runs, as the database is in use;
/// after, for the folder), and leaves the imports open (it would cancel
/// them, their logs missing there).
/// A folder lost for good is replaced by writing its id into the new one.
#[test]
fn a_database_is_served_from_one_data_folder() {
    for (backend, database) in common::databases() {
        let dir = common::temp_dir("one-folder");
        let (first, second) = (dir.join("first"), dir.join("second"));
        let (mut server, addr) = common::spawn_serve(&database, &first, "127.0.0.1:0", TOKEN);
        let auth = format!("Bearer {TOKEN}");
        let call = |method: &str, path: &str, body: &[u8]| {
            common::http(addr, method, path, &[("Authorization", &auth)], body).unwrap()
        };
        let stream = packed_stream(&snapshot(31), &PackOptions::default());
        let id = call("POST", "/api/imports", b"").json()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let first_frame = &stream[..frames(&stream)[0].end];
        let sent = call(
            "POST",
            &format!("/api/imports/{id}/frames?seq=0"),
            first_frame,
        );
        assert_eq!(sent.status, 200, "{backend}");

        // Refused at once; were it not, it would serve: its first line says.
        let start_second = |refusal: &str| -> String {
            let (mut second_server, stderr) =
                common::start_serve(&database, &second, "127.0.0.1:0", TOKEN);
            // Refused, it has ended; serving, it is killed when dropped.
            let refused = stderr.contains(refusal);
            let code = match refused {
                true => second_server.wait().unwrap().code(),
                false => None,
            };
            assert!(refused && code == Some(2), "{backend}: {code:?} {stderr}");
            stderr
        };
        // While the first runs, the database is in use.
        start_second("is in use by another snappack serve");
        let status = call("GET", &format!("/api/imports/{id}"), b"").json();
        assert_eq!(
            (&status["state"], &status["nextSeq"]),
            (&"open".into(), &1.into()),
            "{backend}"
        );
        // Its frame is in the database before the server goes (written
        // after the answer).
        let store = snappack::server::store::open(&database).unwrap();
        for _ in 0..500 {
            if store.import(&id).unwrap().applied_seq.is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(store.import(&id).unwrap().applied_seq, Some(0), "{backend}");
        drop(store);
        server.kill().unwrap();
        server.wait().unwrap();
        // Once it stopped, the database is another folder's.
        let stderr = start_second("is served from another data folder");
        let owner = std::fs::read_to_string(first.join("folder-id")).unwrap();
        let owner = owner.trim();
        assert!(
            stderr.contains(&format!(
                "write {owner} into {}",
                second.join("folder-id").display()
            )),
            "{backend}: {stderr}"
        );

        // The first folder lost for good: the second takes its id (the
        // import, whose log is lost, is cancelled). The refused start left
        // no folder to write it into.
        assert!(
            !second.exists(),
            "{backend}: the refused start left its folder"
        );
        std::fs::create_dir(&second).unwrap();
        std::fs::write(second.join("folder-id"), owner).unwrap();
        let server = test_server(&database, &second);
        let status = server
            .call("GET", &format!("/api/imports/{id}"), b"")
            .json();
        assert_eq!(status["state"], "cancelled", "{backend}: {status}");
    }
}

/// A start refused because the database is served from another data folder
/// makes no admin token in the folder it was given: the token of a folder
/// is printed at the start that makes it, which is the first one that
/// serves, not a refused one that left it unprinted for good.
#[test]
fn a_start_refused_for_another_data_folder_makes_no_token() {
    for (backend, database) in common::databases() {
        let dir = common::temp_dir("refused-token");
        let (first, second) = (dir.join("first"), dir.join("second"));
        let (mut server, _) = common::spawn_serve(&database, &first, "127.0.0.1:0", TOKEN);
        server.kill().unwrap();
        server.wait().unwrap();
        let serve = || {
            Command::new(env!("CARGO_BIN_EXE_snappack"))
                .args(["serve", "--no-www", "--listen", "127.0.0.1:0"])
                .arg("--database")
                .arg(&database)
                .arg("--data-dir")
                .arg(&second)
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        };
        let mut refused = serve();
        let stderr = common::first_stderr_line(&mut refused);
        let code = refused.wait().unwrap().code();
        assert!(
            stderr.contains("is served from another data folder") && code == Some(2),
            "{backend}: {code:?} {stderr}"
        );
        assert!(
            !second.join("token").exists(),
            "{backend}: a token was made"
        );

        // Given the first folder's id, it serves, and prints the token it makes.
        let owner = std::fs::read_to_string(first.join("folder-id")).unwrap();
        std::fs::create_dir_all(&second).unwrap();
        std::fs::write(second.join("folder-id"), owner).unwrap();
        let mut serving = serve();
        let line = common::stderr_line_with(&mut serving, "admin token");
        let _ = serving.kill();
        serving.wait().unwrap();
        let made = std::fs::read_to_string(second.join("token")).unwrap();
        assert!(
            line.contains("new admin token") && line.contains(made.trim()),
            "{backend}: {line}"
        );
    }
}

/// A start refused because the database is served from another data folder
/// gives a new folder no id: nothing in it says it is a data folder that
/// was served from, and the refusal says it has none. Before, the refused
/// start wrote the new folder's `folder-id` first.
#[test]
fn a_start_refused_for_another_data_folder_gives_it_no_id() {
    for (backend, database) in common::databases() {
        let dir = common::temp_dir("refused-id");
        let (first, second) = (dir.join("first"), dir.join("second"));
        let (mut server, _) = common::spawn_serve(&database, &first, "127.0.0.1:0", TOKEN);
        server.kill().unwrap();
        server.wait().unwrap();
        let owner = std::fs::read_to_string(first.join("folder-id")).unwrap();
        let (mut refused, stderr) = common::start_serve(&database, &second, "127.0.0.1:0", TOKEN);
        let code = refused.wait().unwrap().code();
        assert!(
            stderr.contains("is served from another data folder") && code == Some(2),
            "{backend}: {code:?} {stderr}"
        );
        assert!(
            stderr.contains(&format!(
                "file says {}; {} has none yet)",
                owner.trim(),
                second.display()
            )),
            "{backend}: {stderr}"
        );
        for name in ["folder-id", "database", "token"] {
            assert!(
                !second.join(name).exists(),
                "{backend}: the refused start wrote {name}"
            );
        }
        // The database is still the first folder's, which serves it.
        let (mut server, _) = common::spawn_serve(&database, &first, "127.0.0.1:0", TOKEN);
        server.kill().unwrap();
        server.wait().unwrap();
    }
}

/// Every path under `dir`, relative to it, with each file's size and
/// CRC-32, sorted.
fn tree(dir: &Path) -> Vec<(String, Option<(usize, u32)>)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, Option<(usize, u32)>)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.strip_prefix(root).unwrap().display().to_string();
            if path.is_dir() {
                out.push((name, None));
                walk(root, &path, out);
            } else {
                let bytes = std::fs::read(&path).unwrap();
                out.push((name, Some((bytes.len(), crc32fast::hash(&bytes)))));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// A start refused once it took the data folder (or the database) leaves
/// the disk as it found it: a data folder it made is gone again, with its
/// lock file and any folder made above it, and so is the lock file it made
/// beside the database, and a database it made (with the folder's id and
/// name of it); a folder that was there stays, emptied of what the start
/// made. Before, `NEW/`, `NEW/lock` and `<file>.lock` stayed behind. A
/// refusal for the folder's own entries names them.
#[test]
fn a_refused_start_leaves_the_disk_as_it_found_it() {
    let dir = common::temp_dir("refused-leftovers");
    let served = dir.join("served.db");
    let served = served.to_str().unwrap();
    let (mut server, _) = common::spawn_serve(served, &dir.join("first"), "127.0.0.1:0", TOKEN);
    server.kill().unwrap();
    server.wait().unwrap();
    std::fs::write(dir.join("some.zip"), b"PK\x03\x04 not a database at all").unwrap();
    std::fs::create_dir(dir.join("a-folder")).unwrap();
    std::fs::create_dir(dir.join("kept")).unwrap();
    let before = tree(&dir);
    let refused = |database: &Path, data_dir: &Path, refusal: &str| {
        let (mut start, stderr) =
            common::start_serve(database.to_str().unwrap(), data_dir, "127.0.0.1:0", TOKEN);
        let code = start.wait().unwrap().code();
        assert!(
            stderr.contains(refusal) && code == Some(2),
            "{code:?} {stderr}"
        );
        assert_eq!(tree(&dir), before, "after: {stderr}");
    };
    let new = dir.join("new").join("deeper");
    // The database is the first folder's.
    refused(
        Path::new(served),
        &new,
        "is served from another data folder",
    );
    // Not a database: neither the new folder nor `some.zip.lock` stays.
    refused(&dir.join("some.zip"), &new, "file is not a database");
    // A folder that was there stays, and stays empty.
    refused(
        &dir.join("some.zip"),
        &dir.join("kept"),
        "file is not a database",
    );
    // A folder named as the database.
    refused(&dir.join("a-folder"), &new, "Is a directory");
    // A folder whose `imports` is a file, refused once a new database in it
    // was made and named: neither stays.
    let odd = dir.join("odd");
    std::fs::create_dir(&odd).unwrap();
    std::fs::write(odd.join("imports"), b"").unwrap();
    let before = tree(&dir);
    let odd_imports = odd.join("imports").display().to_string();
    let (mut start, stderr) = common::start_serve(
        odd.join("snappack.db").to_str().unwrap(),
        &odd,
        "127.0.0.1:0",
        TOKEN,
    );
    assert_eq!(start.wait().unwrap().code(), Some(2), "{stderr}");
    assert!(stderr.contains(&odd_imports), "{stderr}");
    assert_eq!(tree(&dir), before, "after: {stderr}");
    // A `token` that is a folder, said naming it before the database opens.
    std::fs::remove_file(odd.join("imports")).unwrap();
    std::fs::create_dir(odd.join("token")).unwrap();
    let before = tree(&dir);
    let out = Command::new(env!("CARGO_BIN_EXE_snappack"))
        .args(["serve", "--no-www", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&odd)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("{}: Is a directory", odd.join("token").display())),
        "{stderr}"
    );
    assert_eq!(tree(&dir), before, "after: {stderr}");
    // The new folder, served at last, is made again.
    let (mut server, _) = common::spawn_serve(
        dir.join("new.db").to_str().unwrap(),
        &new,
        "127.0.0.1:0",
        TOKEN,
    );
    server.kill().unwrap();
    server.wait().unwrap();
    assert!(new.join("folder-id").exists());
}

/// A ZIP of the entries of `zip` under `prefix`, in their order.
fn entries_under(zip: &[u8], prefix: &str) -> Vec<u8> {
    let mut archive = zip::ZipArchive::new(Cursor::new(zip)).unwrap();
    let mut kept = Vec::new();
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).unwrap();
        let name = entry.name().unwrap().into_owned();
        if name.starts_with(prefix) {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut bytes).unwrap();
            kept.push((name, bytes));
        }
    }
    let entries: Vec<(&str, &[u8])> = kept
        .iter()
        .map(|(name, bytes)| (name.as_str(), bytes.as_slice()))
        .collect();
    zip_of(&entries)
}

/// A refusal about a component's table names the table with its component's
/// path, as the summaries do: `users` alone would say the root's table.
#[test]
fn a_refused_upload_names_a_components_table_with_its_path() {
    for (backend, database) in common::databases() {
        let dir = common::temp_dir("upload-component-refusal");
        let zip_path = dir.join("waitlist-users.zip");
        std::fs::write(
            &zip_path,
            entries_under(&snapshot(5), "_components/waitlist/users/"),
        )
        .unwrap();
        let server = test_server(&database, &dir.join("data"));
        let first = upload_to(&server, &zip_path, &["--mode", "append"]);
        assert!(first.status.success(), "{backend}: {first:?}");
        // The same documents again: the server refuses them at finish.
        let again = upload_to(&server, &zip_path, &["--mode", "append"]);
        let stderr = String::from_utf8_lossy(&again.stderr);
        assert_eq!(again.status.code(), Some(1), "{backend}: {stderr}");
        assert!(
            stderr.contains("upload failed: DocumentExists: ")
                && stderr.contains("(table waitlist/users, document "),
            "{backend}: {stderr}"
        );
    }
}

/// A failed import's status says which table its refusal is about, with the
/// component's path: Convex's message names the table alone.
#[test]
fn a_failed_imports_status_names_the_components_table() {
    for (backend, database) in common::databases() {
        let dir = common::temp_dir("failed-status-component");
        let zip = entries_under(&snapshot(6), "_components/waitlist/users/");
        let stream = packed_stream(&zip, &PackOptions::default());
        let server = test_server(&database, &dir.join("data"));
        let mut states = Vec::new();
        for mode in ["append", "requireEmpty"] {
            let body = format!(r#"{{"mode":"{mode}"}}"#);
            let created = server.call("POST", "/api/imports", body.as_bytes()).json();
            let id = created["id"].as_str().unwrap().to_owned();
            let sent = server.call("POST", &format!("/api/imports/{id}/frames?seq=0"), &stream);
            assert_eq!(sent.status, 200, "{backend}: {:?}", sent.json());
            let finished = server.call("POST", &format!("/api/imports/{id}/finish"), b"");
            states.push((finished.status, finished.json()["code"].clone()));
            if finished.status == 422 {
                let status = server
                    .call("GET", &format!("/api/imports/{id}"), b"")
                    .json();
                assert_eq!(status["state"], "failed", "{backend}: {status}");
                let error = status["error"].as_str().unwrap();
                assert!(
                    error.starts_with("TableExists: Table users already exists")
                        && error.ends_with(" (table waitlist/users)"),
                    "{backend}: {error}"
                );
            }
        }
        assert_eq!(
            states,
            [(200, serde_json::Value::Null), (422, "TableExists".into())],
            "{backend}"
        );
    }
}

/// SIGTERM (what `kill`, systemd and container runtimes send) stops the
/// server as Ctrl-C does: the requests under way finish, and it exits with
/// status 0 instead of being ended by the signal.
#[test]
fn serve_stops_cleanly_on_sigterm() {
    let dir = common::temp_dir("serve-sigterm");
    let (mut server, addr) = common::spawn_serve(
        &dir.join("snappack.db").to_string_lossy(),
        &dir.join("data"),
        "127.0.0.1:0",
        TOKEN,
    );
    let bearer = format!("Bearer {TOKEN}");
    let answer = common::http(
        addr,
        "GET",
        "/api/tables",
        &[("Authorization", bearer.as_str())],
        b"",
    )
    .unwrap();
    assert_eq!(answer.status, 200);
    let sent = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let status = server.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{status:?}");
}

/// An upload to a URL with a path the server does not have (`.../api`) says
/// what address to give, not only the server's 404.
#[test]
fn an_upload_to_a_wrong_path_says_which_address_to_give() {
    let dir = common::temp_dir("upload-wrong-path");
    let zip_path = dir.join("snapshot.zip");
    std::fs::write(&zip_path, snapshot(3)).unwrap();
    let server = test_server(&dir.join("db").to_string_lossy(), &dir.join("data"));
    let out = Command::new(env!("CARGO_BIN_EXE_snappack"))
        .arg("upload")
        .arg(&zip_path)
        .args(["--url", &format!("http://{}/api", server.addr)])
        .args(["--token", &server.token, "--quiet"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "(it has no http://{}/api/api/tables: give the address `snappack serve` prints, \
             without a path such as /api)",
            server.addr
        )),
        "{stderr}"
    );
    let imports = server.call("GET", "/api/imports", b"").json();
    assert_eq!(imports["imports"], serde_json::json!([]));
}

/// A PostgreSQL server that refuses an import's work the same way whatever
/// the number of tries (here a missing right, as a too low
/// `max_locks_per_transaction` refuses an import of thousands of tables):
/// the import fails with the database's own words and what to do, its
/// hidden tables go, and `snappack upload` ends with that message, exit
/// status 1, instead of trying again forever. Once when the frames' store
/// write is refused (again when written from the staging log), once when
/// the finish is (twice); the tables are as they were.
#[test]
fn an_import_the_database_refuses_again_fails_with_its_words() {
    let Some(url) = common::postgres_url() else {
        return;
    };
    // The server connects as a role of its own, on a schema it may create
    // tables in but does not own, so that the test can take rights away.
    let schema = common::unique("refused");
    let role = common::unique("refused_role");
    let mut admin = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    admin
        .batch_execute(&format!(
            "CREATE SCHEMA {schema}; CREATE ROLE {role} LOGIN; \
             GRANT USAGE, CREATE ON SCHEMA {schema} TO {role}"
        ))
        .unwrap();
    let sep = if url.contains('?') { '&' } else { '?' };
    let database = format!("{url}{sep}options=-csearch_path%3D{schema}%20-crole%3D{role}");
    let dir = common::temp_dir("refused");
    let server = TestServer::start(ServeConfig {
        database: Some(database.clone()),
        data_dir: dir.join("data"),
        www: None,
        token: Some("t".into()),
        ..ServeConfig::default()
    });
    let input = |seed| {
        let path = dir.join(format!("snapshot{seed}.zip"));
        let spec = GenSpec {
            seed,
            tables: 3,
            documents_per_table: 20,
            ..GenSpec::default()
        };
        let mut zip = Cursor::new(Vec::new());
        write_snapshot(&mut zip, &spec).unwrap();
        std::fs::write(&path, zip.into_inner()).unwrap();
        path
    };
    let first = upload_to(&server, &input(1), &[]);
    assert!(first.status.success(), "{first:?}");
    let tables_before = server.call("GET", "/api/tables", b"").json()["tables"].clone();
    let last_import = |server: &TestServer| {
        let listed = server.call("GET", "/api/imports", b"").json();
        listed["imports"]
            .as_array()
            .unwrap()
            .last()
            .unwrap()
            .clone()
    };
    let hidden_tables = || {
        admin_count(
            &url,
            &format!("SELECT COUNT(*) FROM {schema}.snappack_tables WHERE import_id IS NOT NULL"),
        )
    };

    // The finish lists the tables a replace import replaces in a table the
    // server's role no longer owns: refused, and again a moment later.
    admin
        .batch_execute(&format!(
            "ALTER TABLE {schema}.snappack_retired OWNER TO current_user"
        ))
        .unwrap();
    let replace = upload_to(&server, &input(2), &["--mode", "replace", "--yes"]);
    let stderr = String::from_utf8_lossy(&replace.stderr);
    assert_eq!(replace.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("DatabaseRefused")
            && stderr.contains("refused to finish the import")
            && stderr.contains("permission denied for table snappack_retired"),
        "{stderr}"
    );
    let status = last_import(&server);
    assert_eq!(status["state"], "failed", "{status}");
    let error = status["error"].as_str().unwrap();
    assert!(
        error.starts_with("DatabaseRefused: ") && error.contains("(SQLSTATE 42501)"),
        "{error}"
    );
    assert_eq!(
        server.call("GET", "/api/tables", b"").json()["tables"],
        tables_before
    );
    assert_eq!(hidden_tables(), 0);

    // Creating the import's hidden tables is refused: its write fails, and
    // again when it is made good from the staging log at the next request.
    admin
        .batch_execute(&format!("REVOKE CREATE ON SCHEMA {schema} FROM {role}"))
        .unwrap();
    let append = upload_to(&server, &input(3), &["--mode", "replace", "--yes"]);
    let stderr = String::from_utf8_lossy(&append.stderr);
    assert_eq!(append.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("DatabaseRefused")
            && stderr.contains("refused to write the import's frames")
            && stderr.contains(&format!("permission denied for schema {schema}")),
        "{stderr}"
    );
    let status = last_import(&server);
    assert_eq!(status["state"], "failed", "{status}");
    assert_eq!(
        server.call("GET", "/api/tables", b"").json()["tables"],
        tables_before
    );
    assert_eq!(hidden_tables(), 0);
    drop(server);
    admin
        .batch_execute(&format!(
            "DROP SCHEMA {schema} CASCADE; DROP OWNED BY {role}; DROP ROLE {role}"
        ))
        .unwrap();
}

/// The one number a query of the test cluster's answers.
fn admin_count(url: &str, query: &str) -> i64 {
    let mut client = postgres::Client::connect(url, postgres::NoTls).unwrap();
    client.query_one(query, &[]).unwrap().get(0)
}

/// An import whose own store write finds that another import changed a
/// table it declared (the write landed after that finish, which looked
/// for the import's tables before they were written) can no longer
/// finish; no request holds it then, so the server's check every 2 s
/// fails it: its staging folder and hidden tables go without a request
/// of its client, and its status and frames then say `TableChanged`.
/// On PostgreSQL, where the write and the finish run side by side: the
/// import's first write (declaring `posts`) is held before its commit by a
/// lock on its import's row while its second request (declaring `users`)
/// queues its write, and the other import finishes on `users` meanwhile.
#[test]
fn an_import_its_own_write_finds_changed_is_failed_within_seconds() {
    use server_support::{encode, numbered_table};
    use snappack::migration::{Decoder, Item};
    let Some(url) = common::postgres_url() else {
        return;
    };
    let database = common::postgres_schema_url(&url);
    let dir = common::temp_dir("changed-by-own-write");
    let data_dir = dir.join("data");
    let server = test_server(&database, &data_dir);
    let mine = encode(
        &[
            numbered_table("posts", 10002, 300, 1),
            numbered_table("users", 10001, 300, 1),
        ],
        &[],
        4096,
    );
    let ranges = frames(&mine);
    // The first frame that declares `users`: the second request starts there.
    let mut decoder = Decoder::default();
    let declares_users =
        decoder
            .decode(&mine)
            .position(|frame| {
                frame.unwrap().items.iter().any(
                    |item| matches!(item, Item::Table(declaration) if declaration.name == "users"),
                )
            })
            .unwrap();
    assert!(declares_users > 0 && declares_users + 1 < ranges.len());
    let theirs = encode(&[numbered_table("users", 10001, 10, 2)], &[], 4096);
    let create = || {
        let created = server.call("POST", "/api/imports", br#"{"mode":"replace"}"#);
        assert_eq!(created.status, 201);
        created.json()["id"].as_str().unwrap().to_owned()
    };
    let (id, other) = (create(), create());
    let sent = server.call(
        "POST",
        &format!("/api/imports/{other}/frames?seq=0"),
        &theirs,
    );
    assert_eq!(sent.status, 200, "{}", sent.json());

    let mut waits = postgres::Client::connect(&database, postgres::NoTls).unwrap();
    let mut holder = postgres::Client::connect(&database, postgres::NoTls).unwrap();
    let mut held = holder.transaction().unwrap();
    held.execute(
        "SELECT 1 FROM snappack_imports WHERE id = $1 FOR UPDATE",
        &[&id],
    )
    .unwrap();
    let send = |from: usize, to: usize| {
        let body = &mine[ranges[from].start..ranges[to - 1].end];
        let sent = server.call(
            "POST",
            &format!("/api/imports/{id}/frames?seq={from}"),
            body,
        );
        assert_eq!(sent.status, 200, "{}", sent.json());
    };
    send(0, declares_users);
    // Held: its documents are written, its `applied_seq` waits for the row.
    let mut held_write = false;
    for _ in 0..1000 {
        let waiting: i64 = waits
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' \
                 AND query LIKE 'UPDATE snappack_imports SET applied_seq%'",
                &[],
            )
            .unwrap()
            .get(0);
        if waiting > 0 {
            held_write = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(held_write, "the first write was not held");
    send(declares_users, ranges.len());
    let finished = server.call("POST", &format!("/api/imports/{other}/finish"), b"");
    assert_eq!(finished.status, 200, "{}", finished.json());
    held.rollback().unwrap();
    let released = std::time::Instant::now();

    // Nothing is asked of the import: the server fails it on its own, its
    // hidden tables and staging folder gone, within its 2 s check.
    let staging = data_dir.join("imports").join(&id);
    let hidden = |waits: &mut postgres::Client| -> i64 {
        waits
            .query_one(
                "SELECT count(*) FROM snappack_tables WHERE import_id = $1",
                &[&id],
            )
            .unwrap()
            .get(0)
    };
    while staging.exists() || hidden(&mut waits) > 0 {
        assert!(
            released.elapsed() < std::time::Duration::from_secs(8),
            "the import was not failed"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let state: String = waits
        .query_one("SELECT state FROM snappack_imports WHERE id = $1", &[&id])
        .unwrap()
        .get(0);
    assert_eq!(state, "failed");

    let status = server
        .call("GET", &format!("/api/imports/{id}"), b"")
        .json();
    assert_eq!(status["state"], "failed", "{status}");
    assert_eq!(status["tableChanged"]["code"], "TableChanged", "{status}");
    assert_eq!(status["tableChanged"]["table"], "users", "{status}");
    let next = ranges.len() - 1;
    let refused = server.call(
        "POST",
        &format!("/api/imports/{id}/frames?seq={next}"),
        &mine[ranges[next].clone()],
    );
    assert_eq!(
        (refused.status, refused.json()["code"].as_str()),
        (422, Some("TableChanged"))
    );
    // The other import's documents are the table's.
    let tables = server.call("GET", "/api/tables", b"").json();
    let users = tables["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "users")
        .cloned();
    assert_eq!(users.map(|t| t["documents"].clone()), Some(10.into()));
}
