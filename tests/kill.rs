//! The server killed (SIGKILL) at random points of an upload, twenty times,
//! restarted each time, and the upload resumed from the server's expected
//! frame: the database ends up equal to a clean import's. On every backend.

// The server is native only.
#![cfg(not(target_arch = "wasm32"))]

mod server_support;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use server_support as common;
use server_support::{encode, frames, http, numbered_table, StreamTable};

const TOKEN: &str = "kill-test-token";

fn start(database: &str, data_dir: &Path) -> (common::ServeProcess, SocketAddr) {
    common::spawn_serve(database, data_dir, "127.0.0.1:0", TOKEN)
}

fn call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &[u8],
) -> std::io::Result<server_support::HttpResponse> {
    let auth = format!("Bearer {TOKEN}");
    http(addr, method, path, &[("Authorization", &auth)], body)
}

/// A small deterministic generator (xorshift).
struct Random(u64);

impl Random {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Sends frames from the server's expected one, at most `requests` requests
/// (unbounded with `None`). Returns whether the whole stream is in; `false`
/// also when the server died.
fn upload(
    addr: SocketAddr,
    id: &str,
    stream: &[u8],
    random: &mut Random,
    requests: Option<u64>,
) -> bool {
    let ranges = frames(stream);
    let Ok(status) = call(addr, "GET", &format!("/api/imports/{id}"), b"") else {
        return false;
    };
    let mut next = status.json()["nextSeq"].as_u64().unwrap() as usize;
    let mut sent = 0;
    while next < ranges.len() {
        if requests.is_some_and(|max| sent == max) {
            return false;
        }
        sent += 1;
        let count = 1 + random.below(3) as usize;
        let end = (next + count).min(ranges.len());
        let body = &stream[ranges[next].start..ranges[end - 1].end];
        match call(
            addr,
            "POST",
            &format!("/api/imports/{id}/frames?seq={next}"),
            body,
        ) {
            Ok(r) if r.status == 200 => next = r.json()["nextSeq"].as_u64().unwrap() as usize,
            Ok(r) => panic!(
                "status {}: {:?}",
                r.status,
                String::from_utf8_lossy(&r.body)
            ),
            Err(_) => return false,
        }
    }
    true
}

/// Asserts that `database` holds exactly `tables`, every document of each,
/// and no hidden table (`context` names the run in a failure).
fn assert_holds(database: &str, tables: &[StreamTable], context: &str) {
    let store = snappack::server::store::open(database).unwrap();
    for t in tables {
        let mut stored: Vec<String> = store
            .documents(&t.component, &t.name)
            .unwrap()
            .unwrap()
            .into_iter()
            .map(|d| d.json)
            .collect();
        stored.sort();
        let mut expected = t.lines.clone();
        expected.sort();
        assert_eq!(stored, expected, "{context}: {}", t.name);
    }
    assert_eq!(store.hidden_tables().unwrap(), 0, "{context}");
}

fn tables() -> Vec<StreamTable> {
    let mut tables: Vec<StreamTable> = (0..4u8)
        .map(|i| numbered_table(&format!("table{i}"), 10001 + i as u32, 1500, i))
        .collect();
    tables[3].component = "child".into();
    tables
}

#[test]
fn killed_twenty_times_the_upload_still_lands_intact() {
    for (backend, database) in common::databases() {
        let data_dir = common::temp_dir("kill");
        let tables = tables();
        let stream = encode(&tables, &[], 2048);
        let (mut child, mut addr) = start(&database, &data_dir);
        let created = call(addr, "POST", "/api/imports", br#"{"mode":"replace"}"#).unwrap();
        let id = created.json()["id"].as_str().unwrap().to_owned();
        let mut random = Random(0x9e37_79b9_7f4a_7c15);
        // Each round sends a few requests, then kills the server while one
        // more request may be in flight, so kills land both between and
        // inside requests; the stream has frames enough for every round.
        for kill in 0..20 {
            let requests = 1 + random.below(3);
            assert!(
                !upload(addr, &id, &stream, &mut random, Some(requests)),
                "{backend}: the stream was in before kill {kill}"
            );
            let in_flight = {
                let stream = stream.clone();
                let id = id.clone();
                let mut random = Random(random.below(u64::MAX) | 1);
                std::thread::spawn(move || upload(addr, &id, &stream, &mut random, Some(1)))
            };
            std::thread::sleep(Duration::from_millis(random.below(3)));
            child.kill().unwrap();
            child.wait().unwrap();
            in_flight.join().unwrap();
            (child, addr) = start(&database, &data_dir);
        }
        // Resume after the last restart and finish.
        assert!(upload(addr, &id, &stream, &mut random, None), "{backend}");
        let finished = call(addr, "POST", &format!("/api/imports/{id}/finish"), b"").unwrap();
        assert_eq!(finished.status, 200, "{backend}: {:?}", finished.json());
        child.kill().unwrap();
        child.wait().unwrap();

        // The database equals a clean import's: every table, every document.
        assert_holds(&database, &tables, backend);
    }
}

/// Told to stop (SIGTERM) while a store write waits on the database (here
/// for a lock another session holds on the tables' table), the server waits
/// for it no longer than `--stop-timeout`, then exits with status 1 and
/// says why. The write, cut off, is rolled back by the database, and the
/// next start writes its frames again from the staging log: the upload
/// resumes there and lands intact.
#[test]
fn a_stop_waits_for_a_stuck_store_write_no_longer_than_the_stop_timeout() {
    let Some(url) = common::postgres_url() else {
        return;
    };
    let database = common::postgres_schema_url(&url);
    let data_dir = common::temp_dir("stop-timeout");
    let tables = tables();
    let stream = encode(&tables, &[], 2048);
    let ranges = frames(&stream);
    let (mut child, line) = common::start_serve_with(
        &database,
        &data_dir,
        "127.0.0.1:0",
        TOKEN,
        &["--stop-timeout", "2"],
    );
    let addr: SocketAddr = line
        .trim()
        .rsplit("http://")
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"));
    let created = call(addr, "POST", "/api/imports", br#"{"mode":"replace"}"#).unwrap();
    let id = created.json()["id"].as_str().unwrap().to_owned();

    // Writers of the tables' table wait for this session (readers do not).
    let mut locker = postgres::Client::connect(&database, postgres::NoTls).unwrap();
    let mut lock = locker.transaction().unwrap();
    lock.batch_execute("LOCK TABLE snappack_tables IN SHARE MODE")
        .unwrap();
    // Frame 0 declares the tables: acknowledged, its write then waits.
    let first = call(
        addr,
        "POST",
        &format!("/api/imports/{id}/frames?seq=0"),
        &stream[ranges[0].clone()],
    )
    .unwrap();
    assert_eq!(first.status, 200, "{:?}", first.json());
    // The next request waits for that write.
    let waiting = {
        let body = stream[ranges[1].start..ranges[2].end].to_vec();
        let id = id.clone();
        std::thread::spawn(move || {
            call(
                addr,
                "POST",
                &format!("/api/imports/{id}/frames?seq=1"),
                &body,
            )
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    let asked = std::time::Instant::now();
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            asked.elapsed() < Duration::from_secs(20),
            "the server still runs 20 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(asked.elapsed() >= Duration::from_secs(2), "it waited");
    assert_eq!(status.code(), Some(1), "{status:?}");
    let said = common::stderr_line_with(&mut child, "--stop-timeout");
    assert!(said.contains("staging log"), "{said}");
    let _ = waiting.join().unwrap();
    lock.rollback().unwrap();

    // Started again, the server has every acknowledged frame.
    let (_child, addr) = start(&database, &data_dir);
    let mut random = Random(0x2545_f491_4f6c_dd1d);
    assert!(upload(addr, &id, &stream, &mut random, None));
    let finished = call(addr, "POST", &format!("/api/imports/{id}/finish"), b"").unwrap();
    assert_eq!(finished.status, 200, "{:?}", finished.json());
    assert_holds(&database, &tables, "");
}
