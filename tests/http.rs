//! The HTTP API on a real server on loopback, on every backend: the token,
//! every status of the protocol, CORS, the static page, and concurrent uploads.

// The server is native only.
#![cfg(not(target_arch = "wasm32"))]

mod server_support;

use server_support as common;
use server_support::{encode, frames, http, numbered_table, HttpResponse, StreamTable, TestServer};
use snappack::server::ServeConfig;

fn server(database: &str, configure: impl FnOnce(&mut ServeConfig)) -> TestServer {
    let mut config = ServeConfig {
        database: Some(database.to_owned()),
        data_dir: common::temp_dir("http"),
        www: None,
        token: Some("secret-token".into()),
        ..ServeConfig::default()
    };
    configure(&mut config);
    TestServer::start(config)
}

fn create(server: &TestServer, mode: &str) -> String {
    let response = server.call(
        "POST",
        "/api/imports",
        format!(r#"{{"mode":"{mode}"}}"#).as_bytes(),
    );
    assert_eq!(response.status, 201, "{:?}", response.json());
    let body = response.json();
    assert_eq!(body["nextSeq"], 0);
    assert_eq!(body["state"], "open");
    body["id"].as_str().unwrap().to_owned()
}

/// Uploads a whole stream, `per_request` frames at a time.
fn upload(server: &TestServer, id: &str, stream: &[u8], per_request: usize) {
    let ranges = frames(stream);
    for (batch, chunk) in ranges.chunks(per_request).enumerate() {
        let seq = batch * per_request;
        let body = &stream[chunk[0].start..chunk[chunk.len() - 1].end];
        let response = server.call("POST", &format!("/api/imports/{id}/frames?seq={seq}"), body);
        assert_eq!(response.status, 200, "{:?}", response.json());
        assert_eq!(response.json()["nextSeq"], (seq + chunk.len()) as u64);
    }
}

/// Appends `table` in an import of its own and finishes it: the import, and
/// the finish's answer.
fn append_and_finish(server: &TestServer, table: &StreamTable) -> (String, HttpResponse) {
    let stream = encode(std::slice::from_ref(table), &[], 1 << 20);
    let id = create(server, "append");
    upload(server, &id, &stream, 1);
    let finished = server.call("POST", &format!("/api/imports/{id}/finish"), b"");
    (id, finished)
}

#[test]
fn every_call_needs_the_token() {
    let (_, database) = &common::databases()[0];
    let server = server(database, |_| {});
    let no_token = http(server.addr, "GET", "/api/tables", &[], b"").unwrap();
    assert_eq!(no_token.status, 401);
    assert_eq!(no_token.json()["code"], "Unauthorized");
    // It names the scheme it takes, and where the token is.
    assert_eq!(no_token.header("WWW-Authenticate"), Some("Bearer"));
    let message = no_token.json()["message"].as_str().unwrap().to_owned();
    assert!(message.contains("Authorization: Bearer"), "{message}");
    assert!(
        message.contains("token file in its data folder"),
        "{message}"
    );
    let wrong = http(
        server.addr,
        "GET",
        "/api/tables",
        &[("Authorization", "Bearer secret-tokeN")],
        b"",
    )
    .unwrap();
    assert_eq!(wrong.status, 401);
    let wrong_scheme = http(
        server.addr,
        "GET",
        "/api/tables",
        &[("Authorization", "Basic secret-token")],
        b"",
    )
    .unwrap();
    assert_eq!(wrong_scheme.status, 401);
    let create = http(
        server.addr,
        "POST",
        "/api/imports",
        &[],
        br#"{"mode":"append"}"#,
    )
    .unwrap();
    assert_eq!(create.status, 401);
    let ok = server.call("GET", "/api/tables", b"");
    assert_eq!(ok.status, 200);
    // With the frame limit, which clients pack frames under.
    assert_eq!(
        ok.json(),
        serde_json::json!({"tables": [], "maxFrameSize": 16 << 20})
    );
    // The scheme's case does not matter; the token's does.
    for scheme in ["bearer", "BEARER"] {
        let header = format!("{scheme} secret-token");
        let given = [("Authorization", header.as_str())];
        let answer = http(server.addr, "GET", "/api/tables", &given, b"").unwrap();
        assert_eq!(answer.status, 200, "{scheme}");
    }
}

#[test]
fn upload_finish_and_every_refusal_status() {
    for (backend, database) in common::databases() {
        let server = server(&database, |c| c.max_request_bytes = 256 << 10);
        let users = numbered_table("users", 10001, 600, 1);
        let stream = encode(std::slice::from_ref(&users), &[], 4096);
        let ranges = frames(&stream);
        let id = create(&server, "requireEmpty");

        // 404: unknown import.
        let unknown = server.call("GET", "/api/imports/nope", b"");
        assert_eq!(unknown.status, 404, "{backend}");
        assert_eq!(
            server
                .call("POST", "/api/imports/nope/frames?seq=0", &stream)
                .status,
            404
        );

        // 409: wrong sequence, with the expected one.
        let gap = server.call(
            "POST",
            &format!("/api/imports/{id}/frames?seq=1"),
            &stream[ranges[0].clone()],
        );
        assert_eq!(gap.status, 409, "{backend}");
        assert_eq!(gap.json()["code"], "SequenceMismatch");
        assert_eq!(gap.json()["expectedSeq"], 0);

        upload(&server, &id, &stream[..ranges[4].end], 2);

        // 422: a corrupted frame; the import stays at it.
        let mut corrupt = stream[ranges[5].clone()].to_vec();
        let at = corrupt.len() - 3;
        corrupt[at] ^= 1;
        let bad = server.call("POST", &format!("/api/imports/{id}/frames?seq=5"), &corrupt);
        assert_eq!(bad.status, 422, "{backend}");
        assert_eq!(bad.json()["code"], "Checksum");
        assert_eq!(bad.json()["expectedSeq"], 5);

        // 413: a frame header declaring more than the limit, and a body over the limit.
        let mut huge = stream[ranges[5].clone()].to_vec();
        huge[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        let too_large = server.call("POST", &format!("/api/imports/{id}/frames?seq=5"), &huge);
        assert_eq!(too_large.status, 413, "{backend}: {:?}", too_large.json());
        assert_eq!(too_large.json()["code"], "FrameTooLarge");
        let body = vec![0u8; 300 << 10];
        let over = server.call("POST", &format!("/api/imports/{id}/frames?seq=5"), &body);
        assert_eq!(over.status, 413);
        assert_eq!(over.json()["code"], "RequestTooLarge", "{backend}");
        // Declared over the limit: answered from the headers, no body awaited.
        {
            use std::io::{Read, Write};
            let mut socket = std::net::TcpStream::connect(server.addr).unwrap();
            socket
                .set_read_timeout(Some(std::time::Duration::from_secs(10)))
                .unwrap();
            let head = format!(
                "POST /api/imports/{id}/frames?seq=5 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer secret-token\r\nContent-Length: 70000000\r\n\r\n"
            );
            socket.write_all(head.as_bytes()).unwrap();
            let mut answer = vec![0u8; 4096];
            let n = socket.read(&mut answer).expect("an answer before any body");
            let answer = String::from_utf8_lossy(&answer[..n]);
            assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
            assert!(answer.contains("\"code\":\"RequestTooLarge\""), "{answer}");
        }
        // Declared over the limit but not hugely: the body is read and
        // thrown away before the answer, so that a client that writes its
        // whole body before reading (as HTTP clients do) gets the refusal,
        // not a reset connection, however late its body comes.
        {
            use std::io::{Read, Write};
            let mut socket = std::net::TcpStream::connect(server.addr).unwrap();
            socket
                .set_read_timeout(Some(std::time::Duration::from_secs(10)))
                .unwrap();
            let body = vec![0u8; 1 << 20];
            let head = format!(
                "POST /api/imports/{id}/frames?seq=5 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer secret-token\r\nContent-Length: {}\r\n\r\n",
                body.len()
            );
            socket.write_all(head.as_bytes()).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(300));
            for piece in body.chunks(64 << 10) {
                socket.write_all(piece).expect("the whole body is taken");
            }
            let mut answer = vec![0u8; 4096];
            let n = socket.read(&mut answer).expect("the refusal");
            let answer = String::from_utf8_lossy(&answer[..n]);
            assert!(answer.starts_with("HTTP/1.1 413"), "{backend}: {answer}");
            assert!(answer.contains("\"code\":\"RequestTooLarge\""), "{answer}");
        }
        // Sent without a length (chunked), it is found over the limit as it
        // is read, and the answer names the limit as well.
        {
            use std::io::{Read, Write};
            let mut socket = std::net::TcpStream::connect(server.addr).unwrap();
            let head = format!(
                "POST /api/imports/{id}/frames?seq=5 HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer secret-token\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n",
                body.len()
            );
            socket.write_all(head.as_bytes()).unwrap();
            let _ = socket.write_all(&body);
            let _ = socket.write_all(b"\r\n0\r\n\r\n");
            let mut answer = Vec::new();
            let _ = socket.read_to_end(&mut answer);
            let answer = String::from_utf8_lossy(&answer);
            assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
            assert!(
                answer.contains(&format!(
                    "over the limit of {} bytes (--max-request-bytes)",
                    256 << 10
                )),
                "{backend}: {answer}"
            );
        }
        // The framework's own refusals answer JSON too.
        for (method, path, status, code) in [
            (
                "POST",
                format!("/api/imports/{id}/frames"),
                400,
                "BadRequest",
            ),
            (
                "POST",
                format!("/api/imports/{id}/frames?seq=abc"),
                400,
                "BadRequest",
            ),
            ("PUT", "/api/imports".to_owned(), 405, "MethodNotAllowed"),
        ] {
            let answer = server.call(method, &path, b"");
            assert_eq!(answer.status, status, "{method} {path}");
            assert_eq!(answer.json()["code"], code, "{method} {path}");
            assert!(answer.json()["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()));
        }

        // 409: finish before the stream is complete.
        let early = server.call("POST", &format!("/api/imports/{id}/finish"), b"");
        assert_eq!(early.status, 409);
        assert_eq!(early.json()["code"], "StreamIncomplete");

        // The rest, then finish.
        let rest: Vec<_> = ranges[5..].to_vec();
        for (i, range) in rest.iter().enumerate() {
            let seq = 5 + i;
            let r = server.call(
                "POST",
                &format!("/api/imports/{id}/frames?seq={seq}"),
                &stream[range.clone()],
            );
            assert_eq!(r.status, 200, "{backend}: {:?}", r.json());
        }
        let status = server
            .call("GET", &format!("/api/imports/{id}"), b"")
            .json();
        assert_eq!(status["complete"], true);
        assert_eq!(status["receivedBytes"], stream.len() as u64);
        let finished = server.call("POST", &format!("/api/imports/{id}/finish"), b"");
        assert_eq!(finished.status, 200, "{backend}: {:?}", finished.json());
        assert_eq!(finished.json()["tables"][0]["documents"], 600);
        let tables = server.call("GET", "/api/tables", b"").json();
        assert_eq!(
            tables["tables"],
            serde_json::json!([{"component": "", "name": "users", "number": 10001, "documents": 600}])
        );
        // A finished import takes no more frames.
        let after = server.call("POST", &format!("/api/imports/{id}/frames?seq=0"), &stream);
        assert_eq!(after.status, 409);
        assert_eq!(after.json()["code"], "ImportNotOpen");

        // 422 at finish: the same table again in RequireEmpty mode; nothing changes.
        let again = create(&server, "requireEmpty");
        upload(&server, &again, &stream, 8);
        let refused = server.call("POST", &format!("/api/imports/{again}/finish"), b"");
        assert_eq!(refused.status, 422, "{backend}");
        assert_eq!(refused.json()["code"], "TableExists");
        assert_eq!(refused.json()["table"], "users");
        assert_eq!(server.call("GET", "/api/tables", b"").json(), tables);
        let failed = server
            .call("GET", &format!("/api/imports/{again}"), b"")
            .json();
        assert_eq!(failed["state"], "failed");
    }
}

/// A frames request without a usable `seq`, or with a parameter it does not
/// take, is refused with a message that says what to send, not the query
/// parser's words.
#[test]
fn a_bad_seq_says_what_to_send() {
    let server = server(
        &common::temp_dir("http-seq").join("db").to_string_lossy(),
        |_| {},
    );
    let id = create(&server, "append");
    for (query, says) in [
        (
            "",
            "`seq` is missing: give the number of the request's first frame",
        ),
        (
            "?seq=abc",
            "`seq` must be a frame number (a whole number from 0), not \"abc\"",
        ),
        (
            "?seq=-1",
            "`seq` must be a frame number (a whole number from 0), not \"-1\"",
        ),
        ("?seq=0&seq=1", "`seq` is given more than once"),
        (
            "?seq=0&sequence=0",
            "unknown parameter \"sequence\": a frames request takes only seq",
        ),
    ] {
        let answer = server.call("POST", &format!("/api/imports/{id}/frames{query}"), b"");
        assert_eq!(answer.status, 400, "{query}");
        let body = answer.json();
        assert_eq!(body["code"], "BadRequest", "{query}");
        let message = body["message"].as_str().unwrap();
        assert!(message.contains(says), "{query}: {message}");
    }
    // The import is as it was.
    let status = server
        .call("GET", &format!("/api/imports/{id}"), b"")
        .json();
    assert_eq!(
        (status["state"].as_str(), status["nextSeq"].as_u64()),
        (Some("open"), Some(0))
    );
}

/// A method a call does not take is refused naming the call and the method,
/// and `Allow` lists the methods it takes.
#[test]
fn a_wrong_method_names_the_methods_the_call_takes() {
    let server = server(
        &common::temp_dir("http-405").join("db").to_string_lossy(),
        |_| {},
    );
    let id = create(&server, "append");
    for (method, path, takes) in [
        ("PUT", "/api/imports".to_owned(), "POST,GET,HEAD"),
        ("GET", format!("/api/imports/{id}/finish"), "POST"),
    ] {
        let answer = server.call(method, &path, b"");
        assert_eq!(answer.status, 405, "{method} {path}");
        let body = answer.json();
        assert_eq!(body["code"], "MethodNotAllowed");
        assert_eq!(
            body["message"],
            format!(
                "{path} does not take {method}: the answer's Allow header lists the methods it takes"
            )
        );
        assert_eq!(answer.header("allow"), Some(takes), "{method} {path}");
    }
}

/// A create body whose mode is not a string is told the modes there are,
/// not serde's "expected string or map".
#[test]
fn a_mode_that_is_no_string_is_told_the_modes() {
    let server = server(
        &common::temp_dir("http-mode").join("db").to_string_lossy(),
        |_| {},
    );
    for (body, shown) in [(r#"{"mode":null}"#, "null"), (r#"{"mode":5}"#, "5")] {
        let answer = server.call("POST", "/api/imports", body.as_bytes());
        assert_eq!(answer.status, 400, "{body}");
        assert_eq!(
            answer.json()["message"],
            format!(
                "bad import request: mode must be one of \"requireEmpty\", \"append\", \"replace\", \"replaceAll\" (or left out), not {shown}"
            ),
            "{body}"
        );
    }
    let imports = server.call("GET", "/api/imports", b"").json();
    assert_eq!(imports["imports"], serde_json::json!([]));
}

/// A single-table file goes into a user table: a target naming a system
/// table, which no such import can fill, is refused as the validator
/// refuses that `--table`, and no import is made.
#[test]
fn a_target_naming_a_system_table_is_refused() {
    let server = server(
        &common::temp_dir("http-target").join("db").to_string_lossy(),
        |_| {},
    );
    for table in ["_storage", "_tables", "_foo"] {
        let body = serde_json::json!({"target": {"component": "", "table": table}}).to_string();
        let answer = server.call("POST", "/api/imports", body.as_bytes());
        assert_eq!(answer.status, 400, "{table}: {:?}", answer.json());
        assert_eq!(answer.json()["code"], "BadRequest", "{table}");
        assert_eq!(
            answer.json()["message"],
            format!(
                "bad import target: Invalid table name {table} starts with metadata prefix '_'"
            ),
            "{table}"
        );
    }
    let imports = server.call("GET", "/api/imports", b"").json();
    assert_eq!(imports["imports"], serde_json::json!([]));
}

#[test]
fn a_rejected_document_answers_422_with_where() {
    for (backend, database) in common::databases() {
        let server = server(&database, |_| {});
        let mut users = numbered_table("users", 10001, 300, 1);
        users.lines[250] = r#"{"_id":"not an id"}"#.into();
        let stream = encode(&[users], &[], 4096);
        let id = create(&server, "replace");
        let response = server.call("POST", &format!("/api/imports/{id}/frames?seq=0"), &stream);
        assert_eq!(response.status, 422, "{backend}");
        let body = response.json();
        assert_eq!(body["code"], "InvalidId", "{backend}: {body}");
        assert_eq!(body["table"], "users");
        assert_eq!(body["line"], 251);
        assert_eq!(body["field"], "_id");
        let seq = body["seq"].as_u64().unwrap();
        assert!(seq > 0);
        // Frames before the bad one were kept.
        let status = server
            .call("GET", &format!("/api/imports/{id}"), b"")
            .json();
        assert_eq!(status["nextSeq"], seq);
        // Cancel: nothing stays.
        assert_eq!(
            server
                .call("POST", &format!("/api/imports/{id}/cancel"), b"")
                .status,
            200
        );
        assert_eq!(
            server.call("GET", "/api/tables", b"").json()["tables"],
            serde_json::json!([])
        );
        assert_eq!(
            server
                .call("GET", &format!("/api/imports/{id}"), b"")
                .json()["state"],
            "cancelled"
        );
    }
}

#[test]
fn cors_and_the_static_page() {
    let (_, database) = &common::databases()[0];
    let www = common::temp_dir("www");
    std::fs::write(www.join("index.html"), "<h1>snappack</h1>").unwrap();
    std::fs::write(www.join("app.js"), "console.log(1)").unwrap();
    // Larger than the pieces it is sent in, and not a multiple of them.
    let big: Vec<u8> = (0..1_000_003u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(www.join("big.wasm"), &big).unwrap();
    std::fs::write(www.join("empty.txt"), b"").unwrap();
    std::fs::create_dir(www.join("folder")).unwrap();
    let server = server(database, |c| {
        c.www = Some(www.clone());
        c.allow_origins = vec!["http://localhost:5173".into()];
    });
    let page = http(server.addr, "GET", "/", &[], b"").unwrap();
    assert_eq!(page.status, 200);
    assert_eq!(page.body, b"<h1>snappack</h1>");
    assert!(page
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));
    let js = http(server.addr, "GET", "/app.js", &[], b"").unwrap();
    assert!(js
        .header("content-type")
        .unwrap()
        .starts_with("text/javascript"));
    assert_eq!(
        http(server.addr, "GET", "/../Cargo.toml", &[], b"")
            .unwrap()
            .status,
        404
    );
    assert_eq!(
        http(server.addr, "GET", "/missing.js", &[], b"")
            .unwrap()
            .status,
        404
    );
    let wasm = http(server.addr, "GET", "/big.wasm", &[], b"").unwrap();
    assert_eq!(wasm.status, 200);
    assert_eq!(wasm.header("content-length"), Some("1000003"));
    assert_eq!(wasm.header("content-type"), Some("application/wasm"));
    assert!(wasm.body == big, "the file is sent whole");
    let empty = http(server.addr, "GET", "/empty.txt", &[], b"").unwrap();
    assert_eq!((empty.status, empty.body.len()), (200, 0));
    assert_eq!(
        http(server.addr, "GET", "/folder", &[], b"")
            .unwrap()
            .status,
        404
    );

    let preflight = http(
        server.addr,
        "OPTIONS",
        "/api/imports",
        &[
            ("Origin", "http://localhost:5173"),
            ("Access-Control-Request-Method", "POST"),
        ],
        b"",
    )
    .unwrap();
    assert_eq!(preflight.status, 204);
    assert_eq!(
        preflight.header("access-control-allow-origin"),
        Some("http://localhost:5173")
    );
    assert!(preflight
        .header("access-control-allow-headers")
        .unwrap()
        .contains("authorization"));
    let auth = format!("Bearer {}", server.token);
    let allowed = http(
        server.addr,
        "GET",
        "/api/tables",
        &[
            ("Origin", "http://localhost:5173"),
            ("Authorization", &auth),
        ],
        b"",
    )
    .unwrap();
    assert_eq!(
        allowed.header("access-control-allow-origin"),
        Some("http://localhost:5173")
    );
    let other = http(
        server.addr,
        "GET",
        "/api/tables",
        &[("Origin", "http://evil.example"), ("Authorization", &auth)],
        b"",
    )
    .unwrap();
    assert_eq!(other.status, 200);
    assert_eq!(other.header("access-control-allow-origin"), None);
    // Its preflight is refused saying why, not for the token it never has.
    let refused = http(
        server.addr,
        "OPTIONS",
        "/api/imports",
        &[
            ("Origin", "http://evil.example"),
            ("Access-Control-Request-Method", "POST"),
        ],
        b"",
    )
    .unwrap();
    assert_eq!(refused.status, 403);
    assert_eq!(refused.header("access-control-allow-origin"), None);
    assert_eq!(refused.json()["code"], "OriginNotAllowed");
    assert!(refused.json()["message"]
        .as_str()
        .unwrap()
        .contains("--allow-origin http://evil.example"));
    // Both answers depend on the origin, so both say so to caches.
    assert_eq!(allowed.header("vary"), Some("Origin"));
    assert_eq!(other.header("vary"), Some("Origin"));
}

#[test]
fn twenty_concurrent_uploads_all_land() {
    for (backend, database) in common::databases() {
        let server = std::sync::Arc::new(server(&database, |_| {}));
        let threads: Vec<_> = (0..20u8)
            .map(|i| {
                let server = server.clone();
                std::thread::spawn(move || {
                    let mut table = numbered_table(&format!("table{i}"), 10001 + i as u32, 200, i);
                    table.component = if i % 2 == 0 {
                        String::new()
                    } else {
                        format!("c{i}")
                    };
                    let stream = encode(&[table], &[], 4096);
                    let id = create(&server, "requireEmpty");
                    upload(&server, &id, &stream, 3);
                    let finished = server.call("POST", &format!("/api/imports/{id}/finish"), b"");
                    assert_eq!(finished.status, 200, "{:?}", finished.json());
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        let tables = server.call("GET", "/api/tables", b"").json();
        let tables = tables["tables"].as_array().unwrap();
        assert_eq!(tables.len(), 20, "{backend}");
        assert!(tables.iter().all(|t| t["documents"] == 200), "{backend}");
    }
}

#[test]
fn a_truncated_body_changes_nothing() {
    use std::io::{Read, Write};
    for (backend, database) in common::databases() {
        let server = server(&database, |_| {});
        let stream = encode(&[numbered_table("users", 10001, 300, 1)], &[], 4096);
        let id = create(&server, "requireEmpty");
        // The client announces the whole stream, sends half and hangs up.
        let mut socket = std::net::TcpStream::connect(server.addr).unwrap();
        let head = format!(
            "POST /api/imports/{id}/frames?seq=0 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Length: {}\r\n\r\n",
            server.token,
            stream.len()
        );
        socket.write_all(head.as_bytes()).unwrap();
        socket.write_all(&stream[..stream.len() / 2]).unwrap();
        socket.shutdown(std::net::Shutdown::Write).unwrap();
        let mut answer = Vec::new();
        let _ = socket.read_to_end(&mut answer);
        let status = server
            .call("GET", &format!("/api/imports/{id}"), b"")
            .json();
        assert_eq!(status["nextSeq"], 0, "{backend}: {status}");
        assert_eq!(status["receivedBytes"], 0, "{backend}");
        // The whole stream then lands.
        let r = server.call("POST", &format!("/api/imports/{id}/frames?seq=0"), &stream);
        assert_eq!(r.status, 200, "{backend}");
        assert_eq!(
            server
                .call("POST", &format!("/api/imports/{id}/finish"), b"")
                .status,
            200
        );
    }
}

/// An upload that asks where its import stands after a lost connection,
/// and finds it cancelled meanwhile (by another client, or by the server at
/// expiry), stops with `ImportNotOpen` and the import's state, as a refused
/// append would: the status answer has no code or message of its own.
#[test]
fn an_upload_finding_its_import_cancelled_says_so() {
    use snappack::client::{Request, Step, Upload, UploadConfig};
    let (_, database) = &common::databases()[0];
    let server = server(database, |_| {});
    let config = UploadConfig {
        backoff_ms: 1,
        ..UploadConfig::default()
    };
    let mut upload = Upload::new(config, 1);
    let send = |upload: &mut Upload, request: Request| {
        let body = request.json_body().unwrap_or_default();
        let answer = server.call(request.method(), &request.path(), body.as_bytes());
        upload.on_response(answer.status, &answer.body);
    };
    let Step::Send(create) = upload.step() else {
        panic!("no create request")
    };
    send(&mut upload, create);
    let id = upload.id().unwrap().to_owned();
    assert!(matches!(upload.step(), Step::Send(Request::Append { .. })));
    // The append is lost on the way; meanwhile the import is cancelled.
    let cancelled = server.call("POST", &format!("/api/imports/{id}/cancel"), b"");
    assert_eq!(cancelled.status, 200);
    upload.on_network_error("connection reset");
    let status = loop {
        match upload.step() {
            Step::Sleep(_) => continue,
            Step::Send(request) => break request,
            other => panic!("expected the status request, got {other:?}"),
        }
    };
    assert_eq!(status, Request::Status { id: id.clone() });
    send(&mut upload, status);
    let Step::Failed(error) = upload.step() else {
        panic!("the upload went on with a cancelled import")
    };
    assert_eq!(error.code, "ImportNotOpen", "{error}");
    assert!(
        error
            .message
            .starts_with(&format!("import {id} is cancelled")),
        "{error}"
    );
}

#[test]
fn imports_are_listed_with_their_label() {
    let (_, database) = &common::databases()[0];
    let server = server(database, |_| {});
    let created = server.call(
        "POST",
        "/api/imports",
        br#"{"mode":"append","label":"sha256:0123"}"#,
    );
    assert_eq!(created.status, 201);
    assert_eq!(created.json()["label"], "sha256:0123");
    let id = created.json()["id"].as_str().unwrap().to_owned();
    let list = server.call("GET", "/api/imports", b"").json();
    assert_eq!(list["imports"][0]["id"], id.as_str());
    assert_eq!(list["imports"][0]["label"], "sha256:0123");
    assert_eq!(list["imports"][0]["mode"], "append");
    let long = format!(r#"{{"label":"{}"}}"#, "x".repeat(300));
    assert_eq!(
        server.call("POST", "/api/imports", long.as_bytes()).status,
        400
    );
    // Only an object of known fields: not an array (which serde would read
    // field by field), not a misspelt field (which would be dropped).
    for body in [
        &br#"{"mode":"sideways"}"#[..],
        br#"["append"]"#,
        br#"[]"#,
        br#"{"mdoe":"append"}"#,
    ] {
        let answer = server.call("POST", "/api/imports", body);
        let why = String::from_utf8_lossy(body);
        assert_eq!(answer.status, 400, "{why}");
        assert_eq!(answer.json()["code"], "BadRequest", "{why}");
    }
    let typo = server.call("POST", "/api/imports", br#"{"mdoe":"append"}"#);
    let message = typo.json()["message"].as_str().unwrap().to_owned();
    assert!(message.contains("unknown field `mdoe`"), "{message}");
    // An empty body is the default mode.
    let default = server.call("POST", "/api/imports", b"");
    assert_eq!(default.json()["mode"], "requireEmpty");
}

/// The listing of imports is bounded: the newest 100 unless asked for
/// another number (up to 1000), oldest first, with the `before` of the next
/// older page in `older`; `state` keeps those in one state, which is how the
/// web page finds an open import however many ended since.
#[test]
fn the_listing_of_imports_comes_in_pages() {
    for (backend, database) in common::databases() {
        let server = server(&database, |_| {});
        let ids: Vec<String> = (0..105).map(|_| create(&server, "append")).collect();
        // All but the first are cancelled: it is the one open import.
        for id in &ids[1..] {
            let cancelled = server.call("POST", &format!("/api/imports/{id}/cancel"), b"");
            assert_eq!(cancelled.status, 200, "{backend}");
        }
        let listed = |query: &str| {
            let answer = server.call("GET", &format!("/api/imports{query}"), b"");
            assert_eq!(answer.status, 200, "{backend} {query}: {:?}", answer.json());
            let body = answer.json();
            let page: Vec<String> = body["imports"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["id"].as_str().unwrap().to_owned())
                .collect();
            (page, body["older"].as_str().map(str::to_owned))
        };
        let (page, older) = listed("");
        assert_eq!(page, ids[5..], "{backend}: the newest 100, oldest first");
        assert_eq!(older.as_deref(), Some(ids[5].as_str()), "{backend}");
        let (page, older) = listed(&format!("?before={}", ids[5]));
        assert_eq!(page, ids[..5], "{backend}");
        assert_eq!(older, None, "{backend}: nothing older");
        let (page, older) = listed("?limit=3");
        assert_eq!(page, ids[102..], "{backend}");
        assert_eq!(older.as_deref(), Some(ids[102].as_str()), "{backend}");
        let (page, _) = listed(&format!("?limit=2&before={}", ids[102]));
        assert_eq!(page, ids[100..102], "{backend}");
        let (page, older) = listed("?limit=1000");
        assert_eq!(page, ids, "{backend}");
        assert_eq!(older, None, "{backend}");
        let (page, older) = listed("?state=open");
        assert_eq!(page, ids[..1], "{backend}");
        assert_eq!(older, None, "{backend}");
        let (page, _) = listed("?state=cancelled&limit=1");
        assert_eq!(page, ids[104..], "{backend}");
        for bad in [
            "?limit=0",
            "?limit=1001",
            "?limit=ten",
            "?state=closed",
            "?before=0123",
            "?page=2",
            "?limit=1&limit=2",
        ] {
            let answer = server.call("GET", &format!("/api/imports{bad}"), b"");
            assert_eq!(answer.status, 400, "{backend} {bad}");
            assert_eq!(answer.json()["code"], "BadRequest", "{backend} {bad}");
        }
    }
}

#[test]
fn a_token_no_client_could_send_is_refused_at_start() {
    use snappack::server::resolve_token;
    let dir = common::temp_dir("tokens");
    for bad in ["tökén", " lead", "trail ", "tab\there"] {
        let error = resolve_token(Some(bad), &dir).unwrap_err();
        assert!(
            error.to_string().contains("printable ASCII"),
            "{bad:?}: {error}"
        );
    }
    assert_eq!(
        resolve_token(Some("fine-token"), &dir).unwrap(),
        ("fine-token".into(), false)
    );
    // One stored in the data folder is checked too.
    std::fs::write(dir.join("token"), "tökén\n").unwrap();
    assert!(resolve_token(None, &dir).is_err());
}

/// A connection that never finishes its request's headers is closed after
/// the header timeout, not held for good; the server goes on serving.
#[test]
fn a_request_whose_headers_never_end_is_cut_off() {
    use std::io::{Read, Write};
    let (_, database) = &common::databases()[0];
    let server = server(database, |c| {
        c.header_timeout = std::time::Duration::from_secs(1)
    });
    let mut socket = std::net::TcpStream::connect(server.addr).unwrap();
    socket
        .set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    socket
        .write_all(b"GET /api/tables HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let mut answer = Vec::new();
    // Closed by the server: read to its end (an error would be the 20 s timeout).
    socket
        .read_to_end(&mut answer)
        .expect("the server closes the connection");
    assert!(!String::from_utf8_lossy(&answer).contains("200 OK"));
    assert_eq!(server.call("GET", "/api/tables", b"").status, 200);
}

/// Past `max_connections`, a connection waits until one closes: an idle
/// keep-alive connection is closed after the header timeout, and the one
/// waiting is served then.
#[test]
fn connections_past_the_limit_wait_for_a_free_one() {
    use std::io::{Read, Write};
    use std::time::{Duration, Instant};
    let (_, database) = &common::databases()[0];
    let server = server(database, |c| {
        c.header_timeout = Duration::from_secs(1);
        c.max_connections = 1;
    });
    let request =
        b"GET /api/tables HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer secret-token\r\n\r\n";
    // The first connection gets an answer and then stays open, idle.
    let mut first = std::net::TcpStream::connect(server.addr).unwrap();
    first.write_all(request).unwrap();
    let mut answer = [0u8; 12];
    first.read_exact(&mut answer).unwrap();
    assert_eq!(&answer, b"HTTP/1.1 200");
    // The second is answered only once the first is closed by the server.
    let start = Instant::now();
    let mut second = std::net::TcpStream::connect(server.addr).unwrap();
    second
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    second.write_all(request).unwrap();
    second.read_exact(&mut answer).unwrap();
    assert_eq!(&answer, b"HTTP/1.1 200");
    assert!(
        start.elapsed() >= Duration::from_millis(500),
        "served at once, beside the first: {:?}",
        start.elapsed()
    );
    first
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut rest = Vec::new();
    first
        .read_to_end(&mut rest)
        .expect("the server closed the idle connection");
}

/// A body that stops coming is given up on, with an answer that says so.
#[test]
fn a_request_body_that_stops_coming_is_given_up() {
    use std::io::{Read, Write};
    let (_, database) = &common::databases()[0];
    let server = server(database, |c| {
        c.header_timeout = std::time::Duration::from_secs(1)
    });
    let id = create(&server, "requireEmpty");
    let mut socket = std::net::TcpStream::connect(server.addr).unwrap();
    socket
        .set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    let head = format!(
        "POST /api/imports/{id}/frames?seq=0 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer secret-token\r\nContent-Length: 1000\r\n\r\n"
    );
    socket.write_all(head.as_bytes()).unwrap();
    socket.write_all(b"SNAPPACK").unwrap();
    let mut answer = Vec::new();
    let _ = socket.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(
        answer.contains("no bytes of the body came for 1 s"),
        "{answer}"
    );
    // The import is where it was.
    let status = server
        .call("GET", &format!("/api/imports/{id}"), b"")
        .json();
    assert_eq!(status["nextSeq"], 0);
}

/// A second server on a data folder in use is refused before it touches
/// anything (it would reopen the first one's imports and append to their
/// staging logs too); an address in use is refused naming it, before any
/// import is reopened. The first server goes on.
/// Held while a test starts a process, and by a test that takes a data
/// folder again right after its server let it go: from fork to exec, a child
/// holds a copy of every descriptor of this process, the folder's lock among
/// them.
static SPAWNING: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn a_data_folder_serves_one_server_at_a_time() {
    let (_, database) = &common::databases()[0];
    let first_dir = common::temp_dir("in-use");
    let first = server(database, |c| c.data_dir = first_dir.clone());
    let id = create(&first, "requireEmpty");
    let data_dir = common::temp_dir("http");
    // `serve` as a child that must stop at once; one still serving after a
    // minute is stopped, and the test fails on its exit status.
    let serve = |data_dir: &std::path::Path, listen: &str| {
        let spawning = SPAWNING.lock().unwrap_or_else(|e| e.into_inner());
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_snappack"))
            .args(["serve", "--no-www", "--token", "t", "--listen", listen])
            .arg("--database")
            .arg(database)
            .arg("--data-dir")
            .arg(data_dir)
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(spawning);
        for _ in 0..600 {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let _ = child.kill();
        child.wait_with_output().unwrap()
    };
    let second = serve(&first_dir, "127.0.0.1:0");
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("is in use by another snappack serve"),
        "{stderr}"
    );
    let taken = first.addr.to_string();
    let third = serve(&data_dir, &taken);
    let stderr = String::from_utf8_lossy(&third.stderr);
    assert_eq!(third.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot listen on {taken}")),
        "{stderr}"
    );
    let status = first.call("GET", &format!("/api/imports/{id}"), b"");
    assert_eq!(status.json()["state"], "open");
}

/// A database serves one server at a time, whatever data folder the
/// second one is given: a copy of the first one's (same folder id) would
/// pass every check of the folder. The second is refused, naming what is
/// held; once the first stops, it starts.
#[test]
fn a_database_serves_one_server_at_a_time() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    for (backend, database) in common::databases() {
        let first_dir = common::temp_dir("db-in-use");
        let first = server(&database, |c| c.data_dir = first_dir.clone());
        let id = create(&first, "requireEmpty");
        let copy = common::temp_dir("db-in-use-copy");
        for name in ["folder-id", "database"] {
            std::fs::copy(first_dir.join(name), copy.join(name)).unwrap();
        }
        let bind = || {
            let config = ServeConfig {
                listen: "127.0.0.1:0".parse().unwrap(),
                database: Some(database.clone()),
                data_dir: copy.clone(),
                www: None,
                token: Some("secret-token".into()),
                ..ServeConfig::default()
            };
            runtime
                .block_on(snappack::server::Server::bind(config))
                .map(drop)
        };
        let refused = bind().expect_err(backend).to_string();
        assert!(
            refused.contains("is in use by another snappack serve"),
            "{backend}: {refused}"
        );
        let held = match backend {
            "sqlite" => "a lock on the database file, whatever its name, is held",
            _ => "session advisory lock",
        };
        // On PostgreSQL, whose session holds it, and how to end it.
        if backend == "postgres" {
            assert!(
                refused.contains("is held by the session of PostgreSQL backend ")
                    && refused.contains("`SELECT pg_terminate_backend("),
                "{refused}"
            );
        }
        assert!(refused.contains(held), "{backend}: {refused}");
        let status = first.call("GET", &format!("/api/imports/{id}"), b"");
        assert_eq!(status.json()["state"], "open", "{backend}");
        drop(first);
        bind().unwrap_or_else(|e| panic!("{backend}: {e}"));
    }
}

/// An SQLite database serves one server at a time under every name of its
/// file: a hard link or a symbolic link to it meets the same lock (a copy
/// of the data folder passes every other check). The refusal names the
/// process that holds it, and how it was started.
#[test]
fn an_sqlite_database_under_another_name_serves_one_server_at_a_time() {
    let folder = common::temp_dir("sqlite-names");
    let database = folder.join("snappack.db");
    let hard = common::temp_dir("sqlite-names-elsewhere").join("linked.db");
    let soft = folder.join("symlinked.db");
    let first_dir = folder.join("data");
    let (first, addr) =
        common::spawn_serve(database.to_str().unwrap(), &first_dir, "127.0.0.1:0", "t");
    std::fs::hard_link(&database, &hard).unwrap();
    std::os::unix::fs::symlink(&database, &soft).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let bind = |name: &std::path::Path| {
        let copy = common::temp_dir("sqlite-names-copy");
        std::fs::copy(first_dir.join("folder-id"), copy.join("folder-id")).unwrap();
        let config = ServeConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            database: Some(name.to_str().unwrap().to_owned()),
            data_dir: copy,
            www: None,
            token: Some("secret-token".into()),
            ..ServeConfig::default()
        };
        runtime.block_on(snappack::server::Server::bind(config))
    };
    for name in [&hard, &soft, &database] {
        let refused = bind(name).map(drop).expect_err("a second server started");
        let refused = refused.to_string();
        assert!(
            refused.contains("is in use by another snappack serve")
                && refused.contains(&format!(
                    "is held by process {} (snappack, --database {}, --data-dir {})",
                    first.id(),
                    database.display(),
                    first_dir.display()
                )),
            "{}: {refused}",
            name.display()
        );
    }
    let status = http(
        addr,
        "GET",
        "/api/imports",
        &[("Authorization", "Bearer t")],
        b"",
    );
    assert_eq!(status.unwrap().status, 200);
    // Once it stops, one server of this process holds the file, and the
    // next one, by another name, is refused too.
    drop(first);
    let second = bind(&hard).unwrap_or_else(|e| panic!("{e}"));
    let refused = bind(&soft).map(drop).expect_err("a third server started");
    assert!(
        refused
            .to_string()
            .contains("is held by another server of this process"),
        "{refused}"
    );
    drop(second);
    bind(&soft).unwrap_or_else(|e| panic!("{e}"));
}

/// Servers of earlier builds locked `<database>.lock` beside an SQLite
/// database rather than the file: during an upgrade, an old server and a
/// new one on the same database exclude each other, whichever came first,
/// and the refusal names the lock file and the process that holds it.
#[cfg(target_os = "linux")]
#[test]
fn an_sqlite_database_locked_by_an_earlier_server_is_refused() {
    let folder = common::temp_dir("sqlite-old-lock");
    let database = folder.join("snappack.db");
    let lock_file = folder.join("snappack.db.lock");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let bind = |data_dir: std::path::PathBuf| {
        let config = ServeConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            database: Some(database.to_str().unwrap().to_owned()),
            data_dir,
            www: None,
            token: Some("secret-token".into()),
            ..ServeConfig::default()
        };
        runtime.block_on(snappack::server::Server::bind(config))
    };
    // An earlier server holds its lock file: this one is refused.
    let old = std::fs::File::create(&lock_file).unwrap();
    old.try_lock().unwrap();
    let refused = bind(folder.join("data"))
        .map(drop)
        .expect_err("a server started beside an earlier one");
    let refused = refused.to_string();
    assert!(
        refused.contains("is in use by another snappack serve")
            && refused.contains(&format!(
                "its lock file {} is locked by process {}",
                lock_file.display(),
                std::process::id()
            ))
            && refused.contains("as a server of an earlier build locks it"),
        "{refused}"
    );
    drop(old);
    // This one serves, and an earlier server started now finds its lock
    // file locked.
    let (server, addr) = common::spawn_serve(
        database.to_str().unwrap(),
        &folder.join("data"),
        "127.0.0.1:0",
        "t",
    );
    let old = std::fs::File::create(&lock_file).unwrap();
    assert!(
        matches!(old.try_lock(), Err(std::fs::TryLockError::WouldBlock)),
        "an earlier server could lock {} beside a running one",
        lock_file.display()
    );
    let tables = http(
        addr,
        "GET",
        "/api/tables",
        &[("Authorization", "Bearer t")],
        b"",
    );
    assert_eq!(tables.unwrap().status, 200);
    drop(server);
    old.try_lock()
        .expect("the lock file was kept after the server stopped");
}

/// A PostgreSQL database's lock is a session's, which ends with its
/// connection (PostgreSQL restarted, or the session ended): the server
/// takes it again at once, so that a second server is refused again.
#[test]
fn a_lost_postgres_lock_is_taken_again() {
    let Some(url) = common::postgres_url() else {
        return;
    };
    let database = common::postgres_schema_url(&url);
    let first_dir = common::temp_dir("lock-lost");
    let first = server(&database, |c| c.data_dir = first_dir.clone());
    let mut admin = postgres::Client::connect(&database, postgres::NoTls).unwrap();
    let holders = |admin: &mut postgres::Client| -> Vec<i32> {
        admin
            .query(
                "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 2 \
                 AND objid::text::bigint = hashtext(current_schema())::bigint & 4294967295",
                &[],
            )
            .unwrap()
            .iter()
            .map(|row| row.get(0))
            .collect()
    };
    let held = holders(&mut admin);
    assert_eq!(held.len(), 1, "{held:?}");
    admin
        .execute("SELECT pg_terminate_backend($1)", &[&held[0]])
        .unwrap();
    let mut again = Vec::new();
    for _ in 0..100 {
        again = holders(&mut admin);
        if again.len() == 1 && again != held {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(again.len() == 1 && again != held, "{held:?} then {again:?}");
    // A second server, from a copy of the folder, is refused again.
    let copy = common::temp_dir("lock-lost-copy");
    for name in ["folder-id", "database"] {
        std::fs::copy(first_dir.join(name), copy.join(name)).unwrap();
    }
    let config = ServeConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        database: Some(database.clone()),
        data_dir: copy,
        www: None,
        token: Some("secret-token".into()),
        ..ServeConfig::default()
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let refused = runtime
        .block_on(snappack::server::Server::bind(config))
        .map(drop)
        .expect_err("a second server started");
    assert!(
        refused
            .to_string()
            .contains("is in use by another snappack serve"),
        "{refused}"
    );
    drop(first);
}

/// A server whose PostgreSQL lock went with its connection, and which finds
/// it held by another session when it comes to take it again, no longer
/// knows what that one does to the database: it stops, naming the holder,
/// and leaves its open import as it was, for the server started again once
/// the other one is gone to go on with.
#[test]
fn a_server_that_loses_its_postgres_lock_to_another_stops() {
    let Some(url) = common::postgres_url() else {
        return;
    };
    let database = common::postgres_schema_url(&url);
    let dir = common::temp_dir("lock-taken");
    let token = "secret-token";
    let (mut first, addr) = common::spawn_serve(&database, &dir, "127.0.0.1:0", token);
    let auth = format!("Bearer {token}");
    let call = |addr, method: &str, path: &str, body: &[u8]| {
        http(addr, method, path, &[("Authorization", &auth)], body).unwrap()
    };
    let stream = encode(&[numbered_table("docs", 10001, 300, 1)], &[], 4096);
    let ranges = frames(&stream);
    assert!(ranges.len() > 3, "{}", ranges.len());
    let created = call(addr, "POST", "/api/imports", br#"{"mode":"requireEmpty"}"#);
    assert_eq!(created.status, 201);
    let id = created.json()["id"].as_str().unwrap().to_owned();
    let half = &stream[..ranges[1].end];
    let appended = call(
        addr,
        "POST",
        &format!("/api/imports/{id}/frames?seq=0"),
        half,
    );
    assert_eq!(appended.status, 200, "{:?}", appended.json());
    // Another session takes the lock between its loss and the server's
    // next check (every 2 s): the server's session is ended, and this one
    // tries at once, again if the server was first.
    let mut admin = postgres::Client::connect(&database, postgres::NoTls).unwrap();
    let lock = "SELECT pg_try_advisory_lock(1936613744, hashtext(current_schema()))";
    let held_by_server = |admin: &mut postgres::Client| -> Vec<i32> {
        admin
            .query(
                "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 2 \
                 AND pid <> pg_backend_pid() \
                 AND objid::text::bigint = hashtext(current_schema())::bigint & 4294967295",
                &[],
            )
            .unwrap()
            .iter()
            .map(|row| row.get(0))
            .collect()
    };
    let mut taken = false;
    for _ in 0..20 {
        for pid in held_by_server(&mut admin) {
            admin
                .execute("SELECT pg_terminate_backend($1)", &[&pid])
                .unwrap();
        }
        if admin.query_one(lock, &[]).unwrap().get::<_, bool>(0) {
            taken = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(taken, "the server kept its lock");
    let admin_pid: i32 = admin
        .query_one("SELECT pg_backend_pid()", &[])
        .unwrap()
        .get(0);
    // It stops on its own, within a few checks.
    let mut exited = None;
    for _ in 0..200 {
        if let Some(status) = first.try_wait().unwrap() {
            exited = Some(status);
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    if exited.is_none() {
        first.kill().unwrap();
    }
    let mut stderr = String::new();
    std::io::Read::read_to_string(first.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    let status = exited.unwrap_or_else(|| panic!("still serving after 10 s: {stderr}"));
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("lost the database")
            && stderr.contains(&format!("PostgreSQL backend {admin_pid} ")),
        "{stderr}"
    );
    drop(first);
    // Once the other session is gone, the server started again goes on
    // with the import where it was.
    drop(admin);
    let (_again, addr) = common::spawn_serve(&database, &dir, "127.0.0.1:0", token);
    let status = call(addr, "GET", &format!("/api/imports/{id}"), b"");
    assert_eq!(status.json()["state"], "open");
    assert_eq!(status.json()["nextSeq"], 2);
    let rest = &stream[ranges[2].start..];
    let appended = call(
        addr,
        "POST",
        &format!("/api/imports/{id}/frames?seq=2"),
        rest,
    );
    assert_eq!(appended.status, 200, "{:?}", appended.json());
    let finished = call(addr, "POST", &format!("/api/imports/{id}/finish"), b"");
    assert_eq!(finished.status, 200, "{:?}", finished.json());
}

/// Advisory locks are per database, but PostgreSQL lists every database's:
/// a refused server names the session that holds its own database's lock,
/// not one of another database's server on a schema of the same name,
/// which ending would stop the wrong server.
#[test]
fn a_refused_server_names_the_holder_in_its_own_database() {
    let Some(url) = common::postgres_url() else {
        return;
    };
    let database = common::postgres_schema_url(&url);
    let schema = database.rsplit("%3D").next().unwrap().to_owned();
    // Another database of the cluster, whose schema of that name is held
    // by sessions that are not the server's.
    let other = common::unique("other");
    let mut admin = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    admin
        .batch_execute(&format!("CREATE DATABASE {other}"))
        .unwrap();
    let other_url = match url.rsplit_once('/') {
        Some((cluster, _)) => format!("{cluster}/{other}"),
        None => unreachable!(),
    };
    let mut others = Vec::new();
    let mut other_pids = Vec::new();
    for _ in 0..4 {
        let mut client = postgres::Client::connect(&other_url, postgres::NoTls).unwrap();
        let row = client
            .query_one(
                "SELECT pg_backend_pid(), pg_try_advisory_lock_shared($1, hashtext($2))",
                &[&0x736e_6170i32, &schema],
            )
            .unwrap();
        assert!(row.get::<_, bool>(1));
        other_pids.push(row.get::<_, i32>(0));
        others.push(client);
    }
    let first_dir = common::temp_dir("holder");
    let first = server(&database, |c| c.data_dir = first_dir.clone());
    let held: i32 = admin
        .query_one(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 2 \
             AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
             AND objid::text::bigint = hashtext($1)::bigint & 4294967295",
            &[&schema],
        )
        .unwrap()
        .get(0);
    let copy = common::temp_dir("holder-copy");
    for name in ["folder-id", "database"] {
        std::fs::copy(first_dir.join(name), copy.join(name)).unwrap();
    }
    let config = ServeConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        database: Some(database.clone()),
        data_dir: copy,
        www: None,
        token: Some("secret-token".into()),
        ..ServeConfig::default()
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let refused = runtime
        .block_on(snappack::server::Server::bind(config))
        .map(drop)
        .expect_err("a second server started")
        .to_string();
    assert!(
        refused.contains(&format!("PostgreSQL backend {held} ")),
        "{held}, not {other_pids:?}: {refused}"
    );
    drop(first);
    drop(others);
    admin
        .batch_execute(&format!("DROP DATABASE {other}"))
        .unwrap();
}

/// SQLite's in-memory database (`:memory:`), which would lose every
/// import when the server stops, and SQLite URIs are refused before
/// anything is made, saying how to name a file of that name.
#[test]
fn an_sqlite_name_that_is_no_file_is_refused() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    for (database, why) in [
        (":memory:", "loses every import when the server stops"),
        ("file:imports.db?mode=memory", "SQLite URI"),
    ] {
        let dir = common::temp_dir("memory");
        let config = ServeConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            database: Some(database.to_owned()),
            data_dir: dir.join("data"),
            www: None,
            token: Some("secret-token".into()),
            ..ServeConfig::default()
        };
        let refused = match runtime.block_on(snappack::server::Server::bind(config)) {
            Ok(_) => panic!("{database} served"),
            Err(e) => e.to_string(),
        };
        assert!(refused.contains(why), "{refused}");
        assert!(refused.contains(&format!("./{database}")), "{refused}");
        assert!(!dir.join("data").exists(), "{database}");
    }
}

/// An SQLite database that is the data folder, or a file or folder the
/// server keeps there (its token, the name of its database, its id, its
/// lock, staging logs and stored files), is refused before it is opened.
/// Before, `--database DATA/token` on a new folder served: the token,
/// written after the database was opened, replaced the database file,
/// and every import went into a file no name led to any more.
#[test]
fn a_database_that_is_the_data_folder_s_own_entry_is_refused() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let bind = |data: &std::path::Path, database: &std::path::Path| {
        let config = ServeConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            database: Some(database.to_str().unwrap().to_owned()),
            data_dir: data.to_owned(),
            www: None,
            token: None,
            ..ServeConfig::default()
        };
        runtime
            .block_on(snappack::server::Server::bind(config))
            .map(drop)
    };
    for name in [
        "token",
        "database",
        "folder-id",
        "lock",
        "files",
        "imports",
        ".token.new",
    ] {
        let data = common::temp_dir("own-entry").join("data");
        let refused = match bind(&data, &data.join(name)) {
            Ok(()) => panic!("{name} served"),
            Err(e) => e.to_string(),
        };
        assert!(
            refused.contains(&format!(
                "it is the data folder's own `{name}`, which the server keeps for itself: give \
                 another file, such as {} (the default)",
                data.join("snappack.db").display()
            )),
            "{name}: {refused}"
        );
        assert!(!data.join("token").exists(), "{name}: a token was made");
    }
    let data = common::temp_dir("own-entry").join("data");
    let refused = bind(&data, &data)
        .expect_err("the folder served")
        .to_string();
    assert!(
        refused.contains("it is the data folder, not a file in it"),
        "{refused}"
    );
    // Another file in the folder, or in a folder of its own there, serves.
    for name in ["tokens.db", "sub/token"] {
        let data = common::temp_dir("own-entry").join("data");
        std::fs::create_dir_all(data.join("sub")).unwrap();
        bind(&data, &data.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

/// A database that cannot be opened is named (without its password), with
/// PostgreSQL's own reason, not only `db error`.
#[test]
fn a_database_that_cannot_be_opened_is_named_with_the_reason() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let bind = |database: &str| {
        let config = ServeConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            database: Some(database.to_owned()),
            data_dir: common::temp_dir("unopened"),
            www: None,
            token: Some("secret-token".into()),
            ..ServeConfig::default()
        };
        match runtime.block_on(snappack::server::Server::bind(config)) {
            Ok(_) => panic!("{database} opened"),
            Err(e) => e.to_string(),
        }
    };
    let refused = bind("postgres://someone:hunter2@127.0.0.1:1/nowhere");
    assert!(
        refused.starts_with("cannot open the database postgresql://someone@127.0.0.1:1/nowhere: "),
        "{refused}"
    );
    assert!(
        refused.contains("error connecting to server: "),
        "{refused}"
    );
    assert!(!refused.contains("hunter2"), "{refused}");
    if let Some(url) = common::postgres_url() {
        let mut config: postgres::Config = url.parse().unwrap();
        config.dbname("snappack_no_such_database");
        let missing = format!(
            "postgres://{}@{}:{}/snappack_no_such_database",
            config.get_user().unwrap_or("postgres"),
            match &config.get_hosts()[0] {
                postgres::config::Host::Tcp(host) => host.clone(),
                other => panic!("{other:?}"),
            },
            config.get_ports()[0]
        );
        let message = bind(&missing);
        assert!(
            message.contains(r#"database "snappack_no_such_database" does not exist"#),
            "{message}"
        );
    }
}

#[test]
fn a_data_folder_serves_one_database_only() {
    let _spawning = SPAWNING.lock().unwrap_or_else(|e| e.into_inner());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    for ((backend, first), (_, second)) in common::databases().into_iter().zip(common::databases())
    {
        let data_dir = common::temp_dir("claimed");
        let bind = |database: &str| {
            let config = ServeConfig {
                listen: "127.0.0.1:0".parse().unwrap(),
                database: Some(database.to_owned()),
                data_dir: data_dir.clone(),
                www: None,
                token: Some("secret-token".into()),
                ..ServeConfig::default()
            };
            runtime
                .block_on(snappack::server::Server::bind(config))
                .map(drop)
        };
        bind(&first).unwrap();
        // The same database again, as often as it likes.
        bind(&first).unwrap();
        let refused = bind(&second).expect_err(backend).to_string();
        assert!(
            refused.contains("belongs to database") && refused.contains("--data-dir"),
            "{backend}: {refused}"
        );
        // Refused before it was opened: no SQLite file made for it.
        if backend == "sqlite" {
            assert!(!std::path::Path::new(&second).exists(), "{second}");
        }
        bind(&first).unwrap();
    }
    // A start refused for its folder makes no token, which it would never print.
    let data_dir = common::temp_dir("claimed-no-token");
    std::fs::write(data_dir.join("database"), "other.db\n").unwrap();
    let config = ServeConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        database: Some(data_dir.join("mine.db").to_string_lossy().into_owned()),
        data_dir: data_dir.clone(),
        www: None,
        token: None,
        ..ServeConfig::default()
    };
    let refused = runtime
        .block_on(snappack::server::Server::bind(config))
        .map(drop)
        .unwrap_err();
    assert!(
        refused.to_string().contains("belongs to database other.db"),
        "{refused}"
    );
    assert!(!data_dir.join("token").exists());
}

/// An import another import finished on a table of can no longer finish.
/// The server fails it as soon as it knows (its status says `tableChanged`),
/// and the next frames are refused with `TableChanged` and the table, as
/// its finish would be: a client sending normally, which reads no
/// status, learns it at its next request instead of after sending the whole
/// stream, and the client's state machine ends the upload there, without
/// retrying.
#[test]
fn frames_for_an_import_another_import_changed_a_table_of_are_refused() {
    use snappack::client::{Request, Step, Upload, UploadConfig};
    for (backend, database) in common::databases() {
        let server = server(&database, |_| {});
        let users = numbered_table("users", 10001, 400, 1);
        let stream = encode(std::slice::from_ref(&users), &[], 4096);
        let ranges = frames(&stream);
        assert!(ranges.len() > 6, "{backend}: {} frames", ranges.len());
        let config = UploadConfig {
            mode: snappack::validate::ImportMode::Replace,
            frames_per_request: 2,
            ..UploadConfig::default()
        };
        let mut client = Upload::new(config, ranges.len() as u64);
        let send = |client: &mut Upload, request: &Request| {
            let body = match request {
                Request::Append { seq, count, .. } => {
                    let (first, last) = (*seq as usize, (*seq + *count) as usize - 1);
                    stream[ranges[first].start..ranges[last].end].to_vec()
                }
                other => other.json_body().unwrap_or_default().into_bytes(),
            };
            let answer = server.call(request.method(), &request.path(), &body);
            client.on_response(answer.status, &answer.body);
            answer
        };
        // The import is created and receives its first frames.
        for _ in 0..2 {
            let Step::Send(request) = client.step() else {
                panic!("{backend}: no request")
            };
            assert_eq!(send(&mut client, &request).status / 100, 2, "{backend}");
        }
        let id = client.id().unwrap().to_owned();
        assert_eq!(client.acknowledged(), 2, "{backend}");

        // Another import replaces `users` and finishes.
        let other = create(&server, "replace");
        let replacement = encode(&[numbered_table("users", 10001, 10, 9)], &[], 4096);
        upload(&server, &other, &replacement, 1);
        let finished = server.call("POST", &format!("/api/imports/{other}/finish"), b"");
        assert_eq!(finished.status, 200, "{backend}: {:?}", finished.json());
        let status = server
            .call("GET", &format!("/api/imports/{id}"), b"")
            .json();
        assert_eq!(
            status["tableChanged"]["table"], "users",
            "{backend}: {status}"
        );
        // Failed at once: it could never finish.
        assert_eq!(status["state"], "failed", "{backend}: {status}");

        // The next frames are refused, and the upload ends there.
        let Step::Send(request) = client.step() else {
            panic!("{backend}: no request")
        };
        assert!(
            matches!(request, Request::Append { seq: 2, .. }),
            "{backend}: {request:?}"
        );
        let refused = send(&mut client, &request);
        assert_eq!(refused.status, 422, "{backend}: {:?}", refused.json());
        let body = refused.json();
        assert_eq!(
            (&body["code"], &body["component"], &body["table"]),
            (&"TableChanged".into(), &"".into(), &"users".into()),
            "{backend}: {body}"
        );
        let Step::Failed(error) = client.step() else {
            panic!("{backend}: the upload went on")
        };
        assert_eq!(
            (error.code.as_str(), error.table.as_deref(), error.status),
            ("TableChanged", Some("users"), Some(422)),
            "{backend}"
        );
        assert!(error.message.contains("Start the import again"), "{error}");

        // The import failed, as its finish would have: nothing of it is
        // left, and it takes no more frames.
        let status = server
            .call("GET", &format!("/api/imports/{id}"), b"")
            .json();
        assert_eq!(status["state"], "failed", "{backend}: {status}");
        assert!(
            status["error"]
                .as_str()
                .is_some_and(|e| e.starts_with("TableChanged: Table `users` changed")),
            "{backend}: {status}"
        );
        let again = server.call(
            "POST",
            &format!("/api/imports/{id}/frames?seq=2"),
            &stream[ranges[2].clone()],
        );
        assert_eq!(
            (again.status, again.json()["code"].clone()),
            (422, "TableChanged".into()),
            "{backend}"
        );
        let cancel = server.call("POST", &format!("/api/imports/{id}/cancel"), b"");
        assert_eq!(
            (cancel.status, cancel.json()["code"].clone()),
            (409, "ImportNotOpen".into()),
            "{backend}"
        );
        let tables = server.call("GET", "/api/tables", b"").json();
        assert_eq!(tables["tables"][0]["documents"], 10, "{backend}: {tables}");
        let store = snappack::server::store::open(&database).unwrap();
        assert_eq!(store.hidden_tables().unwrap(), 0, "{backend}");
    }
}

/// Of several documents of an append that already exist, the refusal names
/// the first in the file, whatever order the database finds them in: here
/// the first line's id sorts after the third's, and was stored after it.
/// Before, the one the database's join met first was named (line 3).
#[test]
fn of_several_documents_that_exist_the_first_in_the_file_is_named() {
    for (backend, database) in common::databases() {
        let server = server(&database, |_| {});
        let first = numbered_table("users", 10001, 3, 1);
        let (_, finished) = append_and_finish(&server, &first);
        assert_eq!(finished.status, 200, "{backend}: {:?}", finished.json());
        // The first import's last document, a new one, its first document.
        let mut again = numbered_table("users", 10001, 1, 2);
        again.lines.insert(0, first.lines[2].clone());
        again.lines.push(first.lines[0].clone());
        let (_, refused) = append_and_finish(&server, &again);
        assert_eq!(refused.status, 422, "{backend}");
        let body = refused.json();
        assert_eq!(body["code"], "DocumentExists", "{backend}: {body}");
        assert_eq!(body["line"], 1, "{backend}: {body}");
    }
}

/// An append refused at finish because a document's `_id` already exists
/// names the document's line in its table, as every other refusal of a
/// document does: in the answer, and in the failed import's status.
#[test]
fn a_document_that_exists_is_refused_naming_its_line() {
    for (backend, database) in common::databases() {
        let server = server(&database, |_| {});
        let first = numbered_table("users", 10001, 3, 1);
        let (_, finished) = append_and_finish(&server, &first);
        assert_eq!(finished.status, 200, "{backend}: {:?}", finished.json());
        // Two new documents, then the second of the first import's, then another.
        let mut again = numbered_table("users", 10001, 3, 2);
        again.lines.insert(2, first.lines[1].clone());
        let (id, refused) = append_and_finish(&server, &again);
        assert_eq!(refused.status, 422, "{backend}");
        let body = refused.json();
        assert_eq!(body["code"], "DocumentExists", "{backend}: {body}");
        assert_eq!(body["table"], "users", "{backend}: {body}");
        assert_eq!(body["line"], 3, "{backend}: {body}");
        assert_eq!(body["field"], "_id", "{backend}: {body}");
        let status = server
            .call("GET", &format!("/api/imports/{id}"), b"")
            .json();
        assert_eq!(status["state"], "failed", "{backend}: {status}");
        let error = status["error"].as_str().unwrap();
        assert!(
            error.starts_with("DocumentExists: ") && error.ends_with("(table users, line 3)"),
            "{backend}: {error}"
        );
    }
}
