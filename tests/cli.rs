//! The `snappack` binary: exit statuses, the JSON report and the human report.

// The binary and the server are native only.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use std::process::Command;

use common::*;

fn snappack(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_snappack"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn temp_file(name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("snappack-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn json_report_has_the_contract_shape() {
    let body = [doc(10001, 1, ""), doc(10001, 2, ""), doc(10001, 1, "")].join("\n");
    let path = temp_file(
        "dup.zip",
        &zip(&[
            ("_tables/documents.jsonl", br#"{"name":"users","id":10001}"#),
            ("users/documents.jsonl", body.as_bytes()),
        ]),
    );
    let (code, stdout, _) = snappack(&["validate", path.to_str().unwrap(), "--json"]);
    assert_eq!(code, 1);
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["valid"], false);
    assert_eq!(report["tables"][0]["component"], "");
    assert_eq!(report["tables"][0]["name"], "users");
    assert_eq!(report["tables"][0]["number"], 10001);
    assert_eq!(report["tables"][0]["number_source"], "tables");
    assert_eq!(report["tables"][0]["documents"], 3);
    assert_eq!(report["tables"][0]["bytes"], body.len() as u64);
    let error = &report["errors"][0];
    assert_eq!(error["code"], "DuplicateId");
    assert_eq!(error["entry"], "users/documents.jsonl");
    assert_eq!(error["table"], "users");
    assert_eq!(error["line"], 3);
    assert!(report["warnings"].is_array());
}

#[test]
fn exit_statuses_and_human_report() {
    let good = temp_file(
        "good.zip",
        &zip(&[("users/documents.jsonl", doc(10001, 1, "").as_bytes())]),
    );
    let (code, stdout, _) = snappack(&["validate", good.to_str().unwrap()]);
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("users"));
    assert!(stdout.contains("VALID"));

    let bad = temp_file("bad.jsonl", b"{\"a\":1}\n{oops}\n");
    let (code, stdout, _) = snappack(&["validate", bad.to_str().unwrap(), "--table", "things"]);
    assert_eq!(code, 1);
    assert!(stdout.contains("bad.jsonl:2 JsonInvalidRow"), "{stdout}");
    assert!(stdout.contains("{oops}"), "{stdout}");
    assert!(stdout.contains("INVALID: 1 error in 1 table"), "{stdout}");

    let (code, _, stderr) = snappack(&["validate", "/definitely/not/here.zip"]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("cannot open /definitely/not/here.zip"),
        "{stderr}"
    );
    let (code, _, _) = snappack(&["validate", good.to_str().unwrap(), "--mode", "sideways"]);
    assert_eq!(code, 2);
    // An unzipped export's folder is not something to check: exit 2, saying so.
    let folder = good.with_file_name("unzipped.zip");
    std::fs::create_dir_all(&folder).unwrap();
    let (code, _, stderr) = snappack(&["validate", folder.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(stderr.contains("unzipped.zip is a folder"), "{stderr}");
}

#[test]
fn target_tables_file() {
    let archive = temp_file(
        "t.zip",
        &zip(&[("users/documents.jsonl", doc(10001, 1, "").as_bytes())]),
    );
    let target = temp_file(
        "target.json",
        br#"{"tables":[{"component":"","name":"other","number":10001,"documents":4}]}"#,
    );
    let (code, stdout, _) = snappack(&[
        "validate",
        archive.to_str().unwrap(),
        "--json",
        "--mode",
        "replace",
        "--target-tables",
        target.to_str().unwrap(),
    ]);
    assert_eq!(code, 1);
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["errors"][0]["code"], "TableConflict");
    let (code, _, _) = snappack(&[
        "validate",
        archive.to_str().unwrap(),
        "--mode",
        "replaceAll",
        "--target-tables",
        target.to_str().unwrap(),
    ]);
    assert_eq!(code, 0);
}

#[test]
fn a_failure_and_its_cause_are_each_said_once() {
    // A database in an earlier layout: the server's error wraps the store's,
    // whose message the wrapper already includes.
    let database = temp_file("old-layout.db", b"");
    std::fs::remove_file(&database).unwrap();
    rusqlite::Connection::open(&database)
        .unwrap()
        .execute_batch("CREATE TABLE snappack_documents (table_id INTEGER, json TEXT);")
        .unwrap();
    let data = database.with_file_name("old-layout-data");
    let (code, _, stderr) = snappack(&[
        "serve",
        "--database",
        database.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ]);
    assert_eq!(code, 2);
    assert_eq!(stderr.matches("earlier snappack").count(), 1, "{stderr}");
    assert!(stderr.starts_with("snappack: database: "), "{stderr}");
}
