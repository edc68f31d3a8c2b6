//! The `snappack` binary: exit statuses, the JSON report and the human report.

// The binary and the server are native only.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

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

/// An empty folder of its own for one test.
fn fresh_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir()
        .join(format!("snappack-cli-{}", std::process::id()))
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A valid one-table snapshot.
fn valid_zip() -> Vec<u8> {
    zip(&[("users/documents.jsonl", doc(10001, 1, "").as_bytes())])
}

fn arg(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// The names in a folder, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
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
    let (code, _, stderr) = snappack(&["unpack", folder.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("unzipped.zip is a folder: give a stream that `snappack pack` wrote"),
        "{stderr}"
    );
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
    // A bad file: the error is about the shape it has.
    for (content, cause) in [
        (
            &br#"{"tables":5}"#[..],
            "invalid type: integer `5`, expected a sequence at line 1 column 11",
        ),
        (b"{bad", "key must be a string at line 1 column 2"),
        (
            b"[{\"name\":1}]",
            "invalid type: integer `1`, expected a string at line 1 column 10",
        ),
    ] {
        let bad = temp_file("bad-target.json", content);
        let (code, _, stderr) =
            snappack(&["validate", arg(&archive), "--target-tables", arg(&bad)]);
        assert_eq!(code, 2);
        assert!(stderr.contains(cause), "{stderr}");
    }
}

/// A `--schema` file that is not a schema, and a `gen --spec` file that is
/// not a spec, say what was expected beside what is wrong, as a bad
/// `--target-tables` file does. Before, both said only "is not valid".
#[test]
fn a_schema_or_spec_file_that_is_not_one_says_what_is_expected() {
    let csv = temp_file("schema-users.csv", b"name,nickname\nann,\n");
    let bad = temp_file(
        "bad-schema.json",
        br#"{"users": {"fields": {"nickname": {"optional": true}}}}"#,
    );
    let (code, _, stderr) = snappack(&[
        "validate",
        arg(&csv),
        "--table",
        "users",
        "--schema",
        arg(&bad),
    ]);
    assert_eq!(code, 2, "{stderr}");
    let expected = format!(
        "{} is not a schema (expected {{\"tables\": {{\"users\": {{\"fields\": {{\"name\": \
         {{\"optional\": false}}, \"nickname\": {{\"optional\": true}}}}}}}}}}): missing field \
         `tables`",
        bad.display()
    );
    assert!(stderr.contains(&expected), "{stderr}");
    let spec = temp_file("bad-spec.json", br#"{"tables": "three"}"#);
    let out = fresh_dir("bad-spec").join("out.zip");
    let (code, _, stderr) = snappack(&["gen", arg(&out), "--spec", arg(&spec)]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{} is not a generator spec (its fields are listed by `snappack gen --help`): \
             invalid type",
            spec.display()
        )),
        "{stderr}"
    );
}

#[test]
fn control_characters_from_the_input_are_not_sent_to_the_terminal() {
    let archive = temp_file(
        "escape.zip",
        &zip(&[(
            "users/documents.jsonl",
            b"not json \x1b]0;title\x07\x1b[2J\n",
        )]),
    );
    let (code, stdout, _) = snappack(&["validate", arg(&archive)]);
    assert_eq!(code, 1);
    assert!(
        !stdout.contains('\x1b') && !stdout.contains('\x07'),
        "{stdout:?}"
    );
    assert!(
        stdout.contains("not json \\u{1b}]0;title\\u{7}\\u{1b}[2J"),
        "{stdout}"
    );
}

/// Bidirectional formatting characters reorder what a terminal shows after
/// them ("Trojan Source"): an entry name or a line could make one finding
/// read as another.
#[test]
fn bidirectional_controls_from_the_input_are_shown_escaped() {
    let archive = temp_file(
        "bidi.zip",
        &zip(&[
            ("us\u{202e}sre/documents.jsonl", b"{}\n".as_slice()),
            (
                "users/documents.jsonl",
                "not json \u{2067}abc\u{2069} \u{200f}\n".as_bytes(),
            ),
        ]),
    );
    let (code, stdout, _) = snappack(&["validate", arg(&archive)]);
    assert_eq!(code, 1, "{stdout}");
    for c in ['\u{202e}', '\u{2067}', '\u{2069}', '\u{200f}'] {
        assert!(!stdout.contains(c), "{c:?} in {stdout:?}");
    }
    assert!(
        stdout.contains("us\\u{202e}sre/documents.jsonl"),
        "{stdout}"
    );
    assert!(
        stdout.contains("not json \\u{2067}abc\\u{2069} \\u{200f}"),
        "{stdout}"
    );
}

/// Names and values from the input of any length stay readable: a finding's
/// entry, field and message are shortened in the middle (the JSON report
/// has them whole).
#[test]
fn long_names_and_values_are_shortened_in_the_human_report() {
    let long_field = format!("${}", "k".repeat(100_000));
    let long_id = "x".repeat(100_000);
    let entry = format!("{}/documents.jsonl", "t".repeat(5000));
    let lines = format!("{{{:?}:1}}\n{{\"_id\":{:?}}}\n", long_field, long_id);
    let archive = temp_file(
        "long.zip",
        &zip(&[
            ("users/documents.jsonl", lines.as_bytes()),
            (&entry, b"{}\n"),
        ]),
    );
    let (code, stdout, _) = snappack(&["validate", arg(&archive)]);
    assert_eq!(code, 1, "{stdout}");
    for line in stdout.lines() {
        assert!(line.len() < 1000, "a line of {} bytes", line.len());
    }
    assert!(
        stdout.contains("users/documents.jsonl:1 field [\"$kkk"),
        "{stdout}"
    );
    assert!(stdout.contains("kkk...kkk"), "{stdout}");
    assert!(
        stdout.contains("starts with '$', which is reserved."),
        "{stdout}"
    );
    assert!(
        stdout.contains("users/documents.jsonl:2 field _id InvalidId"),
        "{stdout}"
    );
    assert!(stdout.contains("Invalid ID length 100000"), "{stdout}");
    assert!(
        stdout.contains("ttt...ttt") && stdout.contains("ttt/documents.jsonl InvalidTableName"),
        "{stdout}"
    );
    let (_, json, _) = snappack(&["validate", arg(&archive), "--json"]);
    assert!(json.contains(&long_id), "the JSON report keeps them whole");
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
    assert!(
        stderr.starts_with("snappack: cannot open the database "),
        "{stderr}"
    );
}

#[test]
fn serve_says_what_is_wrong_with_its_data_folder_or_database() {
    let dir = fresh_dir("serve-setup");
    let file = dir.join("a-file");
    std::fs::write(&file, b"").unwrap();
    let missing = dir.join("missing").join("x.db");
    let serve = |extra: &[&str]| {
        let mut args = vec!["serve", "--listen", "127.0.0.1:0", "--no-www"];
        args.extend_from_slice(extra);
        let (code, _, stderr) = snappack(&args);
        assert_eq!(code, 2, "{stderr}");
        stderr
    };
    let data = dir.join("data");
    for (args, said) in [
        // Empty, it named no file, in words that did not say which option.
        (
            vec!["--data-dir", arg(&data), "--database", ""],
            "error: a value is required for '--database <DATABASE>' but none was supplied"
                .to_owned(),
        ),
        (
            vec!["--data-dir", arg(&file)],
            format!(
                "snappack: cannot use the data folder {}: it is a file, not a folder",
                file.display()
            ),
        ),
        (
            vec!["--data-dir", arg(&data), "--database", arg(&missing)],
            format!(
                "snappack: cannot open the database {}: its folder {} cannot be opened: ",
                missing.display(),
                missing.parent().unwrap().display()
            ),
        ),
    ] {
        let stderr = serve(&args);
        assert!(stderr.starts_with(&said), "{stderr}");
    }
    // A folder whose `database` file was left empty is not taken for any.
    let unnamed = dir.join("unnamed");
    std::fs::create_dir(&unnamed).unwrap();
    std::fs::write(unnamed.join("database"), b"").unwrap();
    let stderr = serve(&["--data-dir", arg(&unnamed)]);
    assert!(
        stderr.starts_with(&format!(
            "snappack: the data folder {} names no database: its file {}/database",
            unnamed.display(),
            unnamed.display()
        )),
        "{stderr}"
    );
    assert_eq!(std::fs::read(unnamed.join("database")).unwrap(), b"");
    // Another kind of URL is not taken for a file name, nor is anything made.
    let untouched = dir.join("untouched");
    let stderr = serve(&[
        "--data-dir",
        arg(&untouched),
        "--database",
        "mysql://me:secret@db/x",
    ]);
    assert!(
        stderr.starts_with("snappack: cannot open the database mysql://…: only postgres://"),
        "{stderr}"
    );
    assert!(!stderr.contains("secret"), "{stderr}");
    assert!(!untouched.exists());
}

/// An `--allow-origin` no browser would send (a trailing `/`, a path,
/// capitals, a default port) is refused, naming the origin to give: the
/// server compares origins byte for byte, so such a one matched no request
/// and the page's calls failed in the browser without a word from the
/// server.
#[test]
fn serve_refuses_an_origin_no_browser_sends() {
    let dir = fresh_dir("serve-origin");
    for (given, said) in [
        (
            "https://app.example.com/",
            "sends this origin as https://app.example.com,",
        ),
        (
            "HTTPS://App.Example.com",
            "sends this origin as https://app.example.com,",
        ),
        (
            "https://app.example.com:443",
            "sends this origin as https://app.example.com,",
        ),
        (
            "http://localhost:8080/page",
            "is not an origin (an origin has no path",
        ),
        (
            "app.example.com",
            "is not an origin: give it as a browser sends it",
        ),
        ("", "is not an origin"),
    ] {
        let (code, _, stderr) = snappack(&[
            "serve",
            "--no-www",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            arg(&dir.join("data")),
            "--allow-origin",
            given,
        ]);
        assert_eq!(code, 2, "{given}: {stderr}");
        assert!(stderr.contains(said), "{given}: {stderr}");
    }
    assert!(!dir.join("data").exists());
}

#[test]
fn gen_on_a_full_disk_says_so_once() {
    let (code, _, stderr) = snappack(&["gen", "/dev/full", "--tables", "2", "--documents", "100"]);
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(
        stderr,
        "snappack: cannot write /dev/full: No space left on device (os error 28)\n"
    );
}

/// A spec that cannot be made is said as such, not as a failure to write
/// the output, which is left as it was; standard output is named so.
#[test]
fn gen_says_a_spec_error_is_the_specs() {
    let dir = fresh_dir("gen-spec");
    let out = dir.join("made.zip");
    let (code, _, stderr) = snappack(&[
        "gen",
        arg(&out),
        "--documents",
        "1",
        "--fault",
        "duplicateId",
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(
        stderr,
        "snappack: invalid generator spec: fault duplicateId needs a table of 3 or more documents\n"
    );
    assert!(names(&dir).is_empty());
    let run = Command::new(env!("CARGO_BIN_EXE_snappack"))
        .args(["gen", "-"])
        .stdout(std::fs::File::create("/dev/full").unwrap())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.starts_with("snappack: cannot write to standard output: "),
        "{stderr}"
    );
}

/// Past the first MiB, where the failure comes in the middle of an entry
/// and the ZIP writer, dropped, would finish the archive and complain.
#[cfg(unix)]
#[test]
fn gen_past_a_file_size_limit_says_so_once() {
    let out = fresh_dir("gen-limit").join("made.zip");
    // bash counts `ulimit -f` in KiB.
    let run = Command::new("bash")
        .args([
            "-c",
            "ulimit -f 1024; exec \"$0\" gen \"$1\" --tables 3 --documents 20000",
            env!("CARGO_BIN_EXE_snappack"),
            arg(&out),
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(2), "{stderr}");
    // One line, from snappack; the ZIP writer says nothing of its own.
    let said = format!(
        "snappack: cannot write {}: cannot write the archive: ",
        out.display()
    );
    assert!(stderr.starts_with(&said), "{stderr}");
    assert!(
        stderr.ends_with("File too large (os error 27)\n"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(names(out.parent().unwrap()).is_empty());
}

/// A report that cannot be written (a full disk under standard output)
/// says so, and what it was writing.
#[test]
fn a_report_that_cannot_be_written_says_where() {
    let dir = fresh_dir("report-full");
    let input = dir.join("s.zip");
    std::fs::write(&input, valid_zip()).unwrap();
    let stream = dir.join("s.snappack");
    let (code, _, stderr) = snappack(&["pack", arg(&input), "-o", arg(&stream)]);
    assert_eq!(code, 0, "{stderr}");
    for (args, what) in [
        (vec!["validate", arg(&input)], "the report"),
        (vec!["validate", arg(&input), "--json"], "the report"),
        (vec!["unpack", arg(&stream)], "the result"),
    ] {
        let run = Command::new(env!("CARGO_BIN_EXE_snappack"))
            .args(&args)
            .stdout(std::fs::File::create("/dev/full").unwrap())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert_eq!(run.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(
            stderr,
            format!("snappack: cannot write {what} to standard output: No space left on device (os error 28)\n"),
            "{args:?}"
        );
    }
}

#[test]
fn output_to_a_reader_that_has_gone_ends_quietly() {
    let zip = temp_file("gone.zip", &valid_zip());
    let gen_out = fresh_dir("gone").join("made.zip");
    for args in [
        vec!["validate", arg(&zip)],
        vec!["validate", arg(&zip), "--json"],
        vec!["gen", arg(&gen_out), "--json"],
        vec!["pack", arg(&zip), "-o", "-"],
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_snappack"))
            .args(&args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // The reader goes before a byte is written, as `| head -c 0` would.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(141), "{args:?}: {stderr}");
        assert_eq!(stderr, "", "{args:?}");
    }
}

#[test]
fn pack_refuses_to_overwrite_its_input() {
    let dir = fresh_dir("pack-over-input");
    let input = dir.join("in.zip");
    std::fs::write(&input, valid_zip()).unwrap();
    std::os::unix::fs::symlink(&input, dir.join("alias.zip")).unwrap();
    for out in [
        input.clone(),
        dir.join("alias.zip"),
        dir.join(".").join("in.zip"),
    ] {
        let (code, _, stderr) = snappack(&["pack", arg(&input), "-o", arg(&out), "-q"]);
        assert_eq!(code, 2, "{stderr}");
        assert!(
            stderr.contains(&format!(
                "the output {} is the input {}",
                out.display(),
                input.display()
            )),
            "{stderr}"
        );
        assert_eq!(std::fs::read(&input).unwrap(), valid_zip());
        assert_eq!(names(&dir), ["alias.zip", "in.zip"]);
    }
    // Nor when the input is standard input, redirected from the output.
    let out = Command::new(env!("CARGO_BIN_EXE_snappack"))
        .args(["pack", "-", "-o", arg(&input), "-q"])
        .stdin(std::fs::File::open(&input).unwrap())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "the output {} is the input standard input",
            input.display()
        )),
        "{stderr}"
    );
    assert_eq!(std::fs::read(&input).unwrap(), valid_zip());
    // A file that happens to be named like an unfinished output is not touched.
    let precious = dir.join("out.snappack.partial");
    std::fs::write(&precious, "precious").unwrap();
    let out = dir.join("out.snappack");
    let (code, _, stderr) = snappack(&["pack", arg(&input), "-o", arg(&out), "-q"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(std::fs::read_to_string(&precious).unwrap(), "precious");
    // gen does not write over its spec either.
    let spec = dir.join("spec.json");
    std::fs::write(&spec, "{}").unwrap();
    let (code, _, stderr) = snappack(&["gen", arg(&spec), "--spec", arg(&spec)]);
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(std::fs::read_to_string(&spec).unwrap(), "{}");
}

#[test]
fn pack_refuses_a_folder_as_output_and_leaves_no_partial_file() {
    let dir = fresh_dir("pack-folder");
    let input = dir.join("in.zip");
    std::fs::write(&input, valid_zip()).unwrap();
    std::fs::create_dir(dir.join("sub")).unwrap();
    for (out, says) in [
        ("sub", "sub is a folder"),
        ("sub/", "sub/ names a folder"),
        ("new/", "new/ names a folder"),
    ] {
        let out = format!("{}/{out}", dir.display());
        let (code, _, stderr) = snappack(&["pack", arg(&input), "-o", &out, "-q"]);
        assert_eq!(code, 2, "{stderr}");
        assert!(stderr.contains(says), "{stderr}");
        assert_eq!(names(&dir), ["in.zip", "sub"]);
        assert!(names(&dir.join("sub")).is_empty());
    }
    // A failure after writing began leaves nothing either.
    let bad = dir.join("bad.zip");
    std::fs::write(&bad, zip(&[("users/documents.jsonl", b"{oops}")])).unwrap();
    let (code, _, _) = snappack(&["pack", arg(&bad), "-o", arg(&dir.join("out")), "-q"]);
    assert_eq!(code, 1);
    assert_eq!(names(&dir), ["bad.zip", "in.zip", "sub"]);
}

/// An output in a folder that does not exist is refused naming that
/// folder: the error named the hidden partial file instead ("cannot create
/// out/x.snappack.123.partial ... No such file or directory").
#[test]
fn an_output_in_a_missing_folder_names_the_folder() {
    let dir = fresh_dir("missing-folder");
    let input = dir.join("in.zip");
    std::fs::write(&input, valid_zip()).unwrap();
    let (code, _, stderr) = snappack(&[
        "pack",
        arg(&input),
        "-o",
        arg(&dir.join("s.snappack")),
        "-q",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let missing = dir.join("missing");
    let runs: [Vec<&str>; 3] = [
        vec!["pack", arg(&input), "-q", "-o"],
        vec!["unpack", "s.snappack", "-o"],
        vec!["gen"],
    ];
    for run in runs {
        let out = missing.join("out");
        let mut command = Command::new(env!("CARGO_BIN_EXE_snappack"));
        command.current_dir(&dir).args(&run).arg(&out);
        let output = command.output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{run:?}: {stderr}");
        let says = format!(
            "cannot write {}: the folder {} does not exist",
            out.display(),
            missing.display()
        );
        assert!(stderr.contains(&says), "{run:?}: {stderr}");
        assert!(!stderr.contains("partial"), "{run:?}: {stderr}");
        assert_eq!(names(&dir), ["in.zip", "s.snappack"]);
    }
}

#[test]
fn pack_and_gen_write_through_a_symbolic_link() {
    let dir = fresh_dir("pack-symlink");
    let input = dir.join("in.zip");
    std::fs::write(&input, valid_zip()).unwrap();
    // One link to a file that exists, one to a file that does not yet.
    std::fs::write(dir.join("old.snappack"), b"old").unwrap();
    std::os::unix::fs::symlink("old.snappack", dir.join("link")).unwrap();
    std::os::unix::fs::symlink(dir.join("new.snappack"), dir.join("dangling")).unwrap();
    for link in ["link", "dangling"] {
        let link = dir.join(link);
        let (code, _, stderr) = snappack(&["pack", arg(&input), "-o", arg(&link), "-q"]);
        assert_eq!(code, 0, "{stderr}");
        assert!(std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert!(std::fs::read(&link).unwrap().starts_with(b"SNAPPACK"));
    }
    std::os::unix::fs::symlink("generated.zip", dir.join("gen-link")).unwrap();
    let (code, _, stderr) = snappack(&["gen", arg(&dir.join("gen-link")), "--tables", "1"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(std::fs::read(dir.join("generated.zip"))
        .unwrap()
        .starts_with(b"PK"));
    assert_eq!(
        names(&dir),
        [
            "dangling",
            "gen-link",
            "generated.zip",
            "in.zip",
            "link",
            "new.snappack",
            "old.snappack"
        ]
    );
}

#[test]
fn pack_writes_straight_into_a_fifo_or_a_device() {
    let dir = fresh_dir("pack-fifo");
    let input = dir.join("in.zip");
    std::fs::write(&input, valid_zip()).unwrap();
    let fifo = dir.join("fifo");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let copy = dir.join("copy.snappack");
    let mut reader = Command::new("cat")
        .arg(&fifo)
        .stdout(std::fs::File::create(&copy).unwrap())
        .spawn()
        .unwrap();
    let (code, _, stderr) = snappack(&["pack", arg(&input), "-o", arg(&fifo), "-q"]);
    assert_eq!(code, 0, "{stderr}");
    // The reader ends once the FIFO's writer closes it; it never would if
    // the FIFO had been replaced.
    let deadline = Instant::now() + Duration::from_secs(20);
    while reader.try_wait().unwrap().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = reader.kill();
    let _ = reader.wait();
    use std::os::unix::fs::FileTypeExt;
    assert!(std::fs::symlink_metadata(&fifo)
        .unwrap()
        .file_type()
        .is_fifo());
    assert!(std::fs::read(&copy).unwrap().starts_with(b"SNAPPACK"));

    // A character device (like /dev/null) where it may be made (as root).
    let device = dir.join("null");
    let made = Command::new("mknod")
        .args([arg(&device), "c", "1", "3"])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if made {
        let (code, _, stderr) = snappack(&["pack", arg(&input), "-o", arg(&device), "-q"]);
        assert_eq!(code, 0, "{stderr}");
        let kind = std::fs::symlink_metadata(&device).unwrap().file_type();
        assert!(kind.is_char_device());
    }
    assert!(!names(&dir).iter().any(|n| n.ends_with(".partial")));
}

#[test]
fn gen_writes_into_a_pipe_the_bytes_it_writes_into_a_file() {
    let dir = fresh_dir("gen-pipe");
    let file = dir.join("a.zip");
    let flags = ["--tables", "2", "--documents", "30", "--storage-files", "1"];
    let (code, stdout, stderr) = snappack(&[&["gen", arg(&file)][..], &flags].concat());
    assert_eq!(code, 0, "{stderr}");
    // The user tables' documents; stored files bring their `_storage` rows.
    let summary = format!(
        "wrote {}: 2 user tables with 60 documents, 1 stored file (with their _storage rows), ",
        file.display()
    );
    assert!(stdout.starts_with(&summary), "{stdout}");
    // /dev/stdout is a pipe here: the ZIP writer cannot seek in it, and the
    // summary must not follow the archive into it.
    let out = Command::new(env!("CARGO_BIN_EXE_snappack"))
        .args([&["gen", "/dev/stdout"][..], &flags].concat())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.starts_with("wrote /dev/stdout: 2 user tables with "),
        "{stderr}"
    );
    assert!(out.stdout == std::fs::read(&file).unwrap());
}

/// `unpack --verify` checks every document again as a server does: a
/// stream `pack --force` made of a snapshot with a duplicate id is intact
/// (plain `unpack` says so), but `--verify` refuses it, naming the code,
/// table, document and field, and writes no output; a valid one passes.
#[test]
fn unpack_verify_checks_documents_as_a_server_does() {
    let dir = fresh_dir("unpack-verify");
    for (name, fault) in [("bad", Some("duplicateId")), ("good", None)] {
        let (input, stream) = (
            dir.join(format!("{name}.zip")),
            dir.join(format!("{name}.snappack")),
        );
        let mut gen = vec![
            "gen",
            arg(&input),
            "--documents",
            "40",
            "--storage-files",
            "2",
        ];
        if let Some(fault) = fault {
            gen.extend(["--fault", fault]);
        }
        let (code, _, stderr) = snappack(&gen);
        assert_eq!(code, 0, "{stderr}");
        let pack = ["pack", arg(&input), "-o", arg(&stream), "--force", "-q"];
        let (code, stdout, stderr) = snappack(&pack);
        assert_eq!(code, 0, "{stdout}{stderr}");
        let (code, stdout, _) = snappack(&["unpack", arg(&stream)]);
        assert_eq!(code, 0, "{stdout}");
        assert!(stdout.contains("an intact stream:"), "{stdout}");
        let out = dir.join(format!("{name}-out"));
        let (code, stdout, _) = snappack(&["unpack", arg(&stream), "--verify", "-o", arg(&out)]);
        if fault.is_some() {
            assert_eq!(code, 1, "{stdout}");
            assert!(
                stdout.contains("a server would refuse it: DuplicateId in table "),
                "{stdout}"
            );
            assert!(stdout.contains(", field _id (frame 0)"), "{stdout}");
            assert!(stdout.contains("no output was written"), "{stdout}");
            assert!(!out.exists());
        } else {
            assert_eq!(code, 0, "{stdout}");
            assert!(
                stdout.contains("; a server accepts every document, row and file"),
                "{stdout}"
            );
            assert!(out.join("_storage").is_dir());
        }
    }
}

#[test]
fn unpack_writes_no_output_from_a_bad_stream() {
    let dir = fresh_dir("unpack-bad-stream");
    let (input, stream) = (dir.join("g.zip"), dir.join("g.snappack"));
    let gen = ["gen", arg(&input), "--tables", "2", "--documents", "3"];
    let (code, _, stderr) =
        snappack(&[&gen[..], &["--storage-files", "2", "--seed", "1"]].concat());
    assert_eq!(code, 0, "{stderr}");
    let pack = [
        "pack",
        arg(&input),
        "-o",
        arg(&stream),
        "--frame-size",
        "4096",
        "-q",
    ];
    let (code, _, stderr) = snappack(&pack);
    assert_eq!(code, 0, "{stderr}");
    let bytes = std::fs::read(&stream).unwrap();
    let truncated = dir.join("truncated.snappack");
    std::fs::write(&truncated, &bytes[..bytes.len() * 2 / 3]).unwrap();

    // The stream's frames up to the cut are good, but its end is missing.
    let out = dir.join("out");
    let (code, stdout, _) = snappack(&["unpack", arg(&truncated), "-o", arg(&out)]);
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("[Truncated]"), "{stdout}");
    assert!(
        stdout.contains(&format!("no output was written to {}", out.display())),
        "{stdout}"
    );
    assert_eq!(names(&dir), ["g.snappack", "g.zip", "truncated.snappack"]);

    // A whole stream lands in a new folder, or in an empty one.
    let (code, stdout, _) = snappack(&["unpack", arg(&stream), "-o", arg(&out)]);
    assert_eq!(code, 0, "{stdout}");
    assert!(out.join("_tables/documents.jsonl").is_file());
    let empty = dir.join("empty");
    std::fs::create_dir(&empty).unwrap();
    // The folder given is filled, not replaced: it keeps its permissions.
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    std::fs::set_permissions(&empty, std::fs::Permissions::from_mode(0o700)).unwrap();
    let before = std::fs::metadata(&empty).unwrap();
    let (code, stdout, _) = snappack(&["unpack", arg(&stream), "-o", arg(&empty)]);
    assert_eq!(code, 0, "{stdout}");
    assert_eq!(names(&empty), names(&out));
    let after = std::fs::metadata(&empty).unwrap();
    assert_eq!((after.ino(), after.mode() & 0o777), (before.ino(), 0o700));

    // A folder with files in it is refused up front, as is a file.
    for (taken, says) in [(&out, "is not empty"), (&input, "is not a folder")] {
        let (code, _, stderr) = snappack(&["unpack", arg(&stream), "-o", arg(taken)]);
        assert_eq!(code, 2, "{stderr}");
        assert!(stderr.contains(says), "{stderr}");
    }
    // A folder whose parent is missing: the refusal names the folder
    // given and the one missing, not the temporary one it was to be
    // filled as.
    let lost = dir.join("missing/deeper/out");
    let (code, _, stderr) = snappack(&["unpack", arg(&stream), "-o", arg(&lost)]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains(&format!(
            "cannot write {}: the folder {} does not exist",
            lost.display(),
            dir.join("missing/deeper").display()
        )),
        "{stderr}"
    );
    assert!(!names(&dir).iter().any(|n| n.ends_with(".partial")));
}

#[test]
fn pack_refuses_a_frame_size_unpack_cannot_read() {
    use snappack::migration::{DecoderConfig, MIN_PACK_FRAME_SIZE as MIN_FRAME_SIZE};
    let dir = fresh_dir("pack-frame-size");
    let input = dir.join("in.zip");
    std::fs::write(&input, valid_zip()).unwrap();
    let stream = dir.join("out.snappack");
    let max = DecoderConfig::default().max_frame_size;
    let range = format!("from {MIN_FRAME_SIZE} to {max} bytes");
    let pack = |size: usize| {
        let size = size.to_string();
        snappack(&[
            "pack",
            arg(&input),
            "-o",
            arg(&stream),
            "--frame-size",
            &size,
        ])
    };
    for size in [max + 1, MIN_FRAME_SIZE - 1] {
        let (code, _, stderr) = pack(size);
        assert_eq!(code, 2, "{stderr}");
        assert!(stderr.contains(&range), "{stderr}");
        assert_eq!(names(&dir), ["in.zip"]);
    }
    let (code, _, stderr) = pack(max);
    assert_eq!(code, 0, "{stderr}");
    let (code, stdout, _) = snappack(&["unpack", arg(&stream)]);
    assert_eq!(code, 0, "{stdout}");
}

/// The smallest frame size the option takes, as its error says, is the one
/// `--help` gives, and a snapshot whose tables have the longest names, in a
/// component, packs at it and unpacks to the same documents.
#[test]
fn the_smallest_frame_size_packs_a_component_and_a_long_table_name() {
    let dir = fresh_dir("pack-min-frame-size");
    let (input, stream) = (dir.join("in.zip"), dir.join("out.snappack"));
    let (code, _, stderr) =
        snappack(&["pack", arg(&input), "-o", arg(&stream), "--frame-size", "1"]);
    assert_eq!(code, 2, "{stderr}");
    let range = stderr
        .split("must be from ")
        .nth(1)
        .and_then(|rest| rest.split(" bytes").next())
        .unwrap_or_else(|| panic!("no range in {stderr}"));
    let (min, max) = range.split_once(" to ").unwrap();
    for command in ["pack", "upload"] {
        let (code, help, _) = snappack(&[command, "--help"]);
        assert_eq!(code, 0);
        assert!(
            help.contains(&format!("{min} to {max}")),
            "{command}: {help}"
        );
    }

    let long = "t".repeat(64);
    let lines: String = (1..=120).map(|n| doc(10002, n, "\"n\":1") + "\n").collect();
    let entry = format!("_components/billing/{long}/documents.jsonl");
    let users = doc(10001, 1, "");
    std::fs::write(
        &input,
        zip(&[
            ("users/documents.jsonl", users.as_bytes()),
            (&entry, lines.as_bytes()),
        ]),
    )
    .unwrap();
    let (code, stdout, stderr) = snappack(&[
        "pack",
        arg(&input),
        "-o",
        arg(&stream),
        "-q",
        "--frame-size",
        min,
    ]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let out = dir.join("out");
    let (code, stdout, _) = snappack(&["unpack", arg(&stream), "--verify", "-o", arg(&out)]);
    assert_eq!(code, 0, "{stdout}");
    let rebuilt = std::fs::read_to_string(out.join(&entry)).unwrap();
    assert_eq!(rebuilt, lines);
}

/// Sends SIGINT or SIGTERM to a process.
fn signal(pid: u32, name: &str) {
    let sent = Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
}

/// Ctrl-C (or SIGTERM, SIGHUP, SIGQUIT) in the middle of `pack` leaves no `.partial` file.
#[test]
fn an_interrupted_pack_leaves_nothing_behind() {
    let dir = fresh_dir("pack-interrupted");
    let input = dir.join("big.zip");
    let spec = snappack::gen::GenSpec {
        tables: 4,
        total_documents: Some(100_000),
        ..Default::default()
    };
    std::fs::write(&input, generated(&spec)).unwrap();
    let out = dir.join("out.snappack");
    // A closed terminal (HUP) and QUIT too.
    for (name, status) in [("INT", 130), ("TERM", 143), ("HUP", 129), ("QUIT", 131)] {
        let mut pack = Command::new(env!("CARGO_BIN_EXE_snappack"))
            .args(["pack", arg(&input), "-o", arg(&out), "-q"])
            .args(["--level", "9", "--threads", "1"])
            .spawn()
            .unwrap();
        let partial = dir.join(format!("out.snappack.{}.partial", pack.id()));
        let started = Instant::now();
        while !partial.exists() && started.elapsed() < Duration::from_secs(60) {
            std::thread::sleep(Duration::from_millis(10));
        }
        std::thread::sleep(Duration::from_millis(200));
        signal(pack.id(), name);
        let code = pack.wait().unwrap().code();
        assert_eq!(code, Some(status), "SIG{name} ends pack mid-way");
        assert_eq!(names(&dir), ["big.zip"], "SIG{name}");
    }
}

/// A single-table file without `--table` is a bad option: exit 2, nothing
/// checked or packed.
#[test]
fn a_single_table_file_without_a_table_exits_2() {
    let dir = fresh_dir("no-table");
    for (name, content) in [
        ("t.jsonl", "{\"a\":1}\n"),
        ("t.csv", "a\n1\n"),
        ("t.json", "[{\"a\":1}]"),
    ] {
        let input = dir.join(name);
        std::fs::write(&input, content).unwrap();
        let (code, stdout, _) = snappack(&["validate", arg(&input)]);
        assert_eq!(code, 2, "{name}: {stdout}");
        assert!(stdout.contains("requires table name"), "{stdout}");
        // The option to give is named.
        assert!(
            stdout.contains(&format!(
                "{name} is one table's documents: give the table to import them into with --table NAME."
            )),
            "{stdout}"
        );
        assert!(
            stdout.contains("fix the options: nothing was checked"),
            "{stdout}"
        );
        let out = dir.join("out.snappack");
        let (code, stdout, _) = snappack(&["pack", arg(&input), "-o", arg(&out)]);
        assert_eq!(code, 2, "{name}: {stdout}");
        assert!(stdout.contains("not packed: fix the options"), "{stdout}");
        assert!(!out.exists());
        // With Convex's code for it.
        let (_, json, _) = snappack(&["validate", arg(&input), "--json"]);
        let report: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(report["errors"][0]["code"], "InvalidName", "{json}");
    }
    // An archive whose one error is a `_tables` row's bad name is the input's: status 1.
    let archive = dir.join("names.zip");
    std::fs::write(
        &archive,
        zip(&[(
            "_tables/documents.jsonl",
            b"{\"name\":\"bad name\",\"id\":10001}\n",
        )]),
    )
    .unwrap();
    let (code, stdout, _) = snappack(&["validate", arg(&archive)]);
    assert_eq!(code, 1, "{stdout}");
}

/// `--help` shows a default once, in words where its value is empty.
#[test]
fn help_shows_no_empty_default() {
    for command in ["validate", "pack", "upload"] {
        let (code, stdout, _) = snappack(&[command, "--help"]);
        assert_eq!(code, 0);
        assert!(!stdout.contains("[default: \"\"]"), "{command}: {stdout}");
        assert!(stdout.contains("(default: the root)"), "{stdout}");
    }
}

/// A finding about no entry or line lines up with the others.
#[test]
fn a_finding_without_a_place_is_indented_as_the_others() {
    let input = temp_file("not-a.zip", b"plain text");
    let (code, stdout, _) = snappack(&["validate", arg(&input)]);
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.contains("\n  archive\n    InvalidZip invalid zip file: "),
        "{stdout}"
    );
}

/// A packed stream given where a snapshot goes, and a snapshot given to
/// unpack, are named for what they are, with the command that takes them.
#[test]
fn a_stream_and_a_snapshot_given_to_the_wrong_command_say_which_one_takes_them() {
    let dir = fresh_dir("wrong-command");
    let input = dir.join("s.zip");
    std::fs::write(&input, valid_zip()).unwrap();
    let stream = dir.join("s.snappack");
    let (code, _, stderr) = snappack(&["pack", arg(&input), "-o", arg(&stream)]);
    assert_eq!(code, 0, "{stderr}");
    let out = dir.join("again.snappack");
    for args in [
        vec!["validate", arg(&stream)],
        vec!["validate", arg(&stream), "--json"],
        vec!["pack", arg(&stream), "-o", arg(&out)],
    ] {
        let (code, stdout, stderr) = snappack(&args);
        assert_eq!(code, 2, "{args:?}: {stdout}{stderr}");
        assert_eq!(
            stderr,
            format!(
                "snappack: {} is a stream written by `snappack pack`, not a snapshot: `snappack unpack` checks it\n",
                stream.display()
            )
        );
        assert!(stdout.is_empty(), "{stdout}");
    }
    assert!(!out.exists());
    // upload says what it takes instead, and how a server takes the stream;
    // no request is made (the tables are given).
    let tables = temp_file("wrong-command-tables.json", br#"{"tables": []}"#);
    let (code, stdout, stderr) = snappack(&[
        "upload",
        arg(&stream),
        "--url",
        "http://127.0.0.1:9",
        "--token",
        "t",
        "--target-tables",
        arg(&tables),
    ]);
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert_eq!(
        stderr,
        format!(
            "snappack: {} is a stream written by `snappack pack`, not a snapshot: `snappack unpack` \
             checks it; `snappack upload` takes the snapshot it was packed from, and a server the \
             stream itself as an import's frames (POST /api/imports/ID/frames, docs/PROTOCOL.md)\n",
            stream.display()
        )
    );
    let (code, stdout, _) = snappack(&["unpack", arg(&input)]);
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.contains(
            "bad magic at offset 0 (it reads as a ZIP archive: validate, pack or upload take that)"
        ),
        "{stdout}"
    );
}

/// A `--table` Convex refuses as a name, a `--table` given with a ZIP
/// archive (whose tables are its entries'), or a `--component` that is no
/// component path, is a wrong option (status 2, nothing checked), as a
/// missing `--table` is; an archive's own bad table name stays the input's.
/// Before, an archive given a `--table` was checked whole (exit 1, the
/// option's error among the archive's findings).
#[test]
fn a_bad_table_or_component_option_exits_2() {
    let dir = fresh_dir("bad-options");
    let single = dir.join("t.jsonl");
    std::fs::write(&single, "{\"a\":1}\n").unwrap();
    let archive = dir.join("s.zip");
    std::fs::write(&archive, valid_zip()).unwrap();
    for args in [
        vec!["validate", arg(&single), "--table", "bad name"],
        vec!["validate", arg(&single), "--table", "_system"],
        vec![
            "validate",
            arg(&single),
            "--table",
            "t",
            "--component",
            "a/b$",
        ],
        vec!["validate", arg(&archive), "--component", "a//b"],
        vec!["validate", arg(&archive), "--table", "users"],
    ] {
        let (code, stdout, _) = snappack(&args);
        assert_eq!(code, 2, "{args:?}: {stdout}");
        assert!(
            stdout.contains("fix the options: nothing was checked"),
            "{args:?}: {stdout}"
        );
        let out = dir.join("out.snappack");
        let mut pack = args.clone();
        pack[0] = "pack";
        pack.extend(["-o", arg(&out)]);
        let (code, stdout, _) = snappack(&pack);
        assert_eq!(code, 2, "{pack:?}: {stdout}");
        assert!(stdout.contains("not packed: fix the options"), "{stdout}");
        assert!(!out.exists());
    }
    let bad_names = dir.join("names.zip");
    std::fs::write(&bad_names, zip(&[("bad-name/documents.jsonl", b"{}\n")])).unwrap();
    let (code, stdout, _) = snappack(&["validate", arg(&bad_names)]);
    assert_eq!(code, 1, "{stdout}");
}

/// The one-line summaries of `gen`, `validate`, `pack` and `unpack` count
/// in the singular for one, and `unpack` gives the documents' and the stored
/// files' bytes each after its own count.
#[test]
fn summaries_count_one_in_the_singular() {
    let dir = fresh_dir("singular");
    let snapshot = dir.join("one.zip");
    let (code, stdout, stderr) = snappack(&[
        "gen",
        arg(&snapshot),
        "--tables",
        "1",
        "--documents",
        "1",
        "--storage-files",
        "1",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout
            .contains(": 1 user table with 1 document, 1 stored file (with their _storage rows), "),
        "{stdout}"
    );
    assert!(stdout.contains(" uncompressed, 0 faults"), "{stdout}");

    let single = temp_file("singular.jsonl", b"{\"a\":1}\n");
    let (code, stdout, _) = snappack(&["validate", arg(&single), "--table", "t"]);
    assert_eq!(code, 0, "{stdout}");
    assert!(
        stdout.starts_with("singular.jsonl (jsonl): 1 table, 1 document, 8 B\n"),
        "{stdout}"
    );

    let stream = dir.join("one.snappack");
    let (code, stdout, stderr) = snappack(&["pack", arg(&snapshot), "-o", arg(&stream)]);
    assert_eq!(code, 0, "{stderr}");
    // The user table and `_storage`, each with one document.
    assert!(
        stdout.contains(": 2 tables, 2 documents, 1 stored file into 1 frame, "),
        "{stdout}"
    );
    let (code, stdout, stderr) = snappack(&["unpack", arg(&stream)]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains(": an intact stream: 1 frame, 2 tables, 2 documents ("),
        "{stdout}"
    );
    assert!(stdout.contains(" B), 1 stored file ("), "{stdout}");
}

/// `pack -o -` writes the stream to standard output (its report to standard
/// error), and `unpack -` reads one from standard input; no file named `-`
/// appears.
#[test]
fn pack_writes_to_and_unpack_reads_from_standard_streams() {
    use std::io::Write;
    let dir = fresh_dir("std-streams");
    let snapshot = dir.join("s.zip");
    let (code, _, stderr) =
        snappack(&["gen", arg(&snapshot), "--tables", "2", "--documents", "20"]);
    assert_eq!(code, 0, "{stderr}");
    let packed = Command::new(env!("CARGO_BIN_EXE_snappack"))
        .current_dir(&dir)
        .args(["pack", "s.zip", "-o", "-", "--quiet"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&packed.stderr);
    assert_eq!(packed.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.starts_with("packed s.zip: 2 tables, 40 documents"),
        "{stderr}"
    );
    assert!(packed.stdout.starts_with(b"SNAPPACK"));
    assert!(!dir.join("-").exists());
    let mut unpack = Command::new(env!("CARGO_BIN_EXE_snappack"))
        .args(["unpack", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    unpack
        .stdin
        .take()
        .unwrap()
        .write_all(&packed.stdout)
        .unwrap();
    let out = unpack.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.starts_with("stdin: an intact stream: 1 frame, 2 tables, 40 documents"),
        "{stdout}"
    );
    // Nothing piped in, or an empty file: said plainly, not as a stream
    // header cut short.
    let empty = Command::new(env!("CARGO_BIN_EXE_snappack"))
        .args(["unpack", "-"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&empty.stdout);
    assert_eq!(empty.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.starts_with("stdin: invalid: standard input was empty (nothing was piped in)"),
        "{stdout}"
    );
    let file = dir.join("empty.snappack");
    std::fs::write(&file, b"").unwrap();
    let (code, stdout, _) = snappack(&["unpack", arg(&file)]);
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.contains("empty.snappack: invalid: the file is empty (0 bytes)"),
        "{stdout}"
    );
}

/// Out-of-range `--threads` and `--frames-per-request` are refused with
/// their bounds (exit 2), before anything is read or sent.
#[test]
fn thread_and_request_counts_are_bounded() {
    let input = temp_file("bounded.zip", &valid_zip());
    for threads in ["0", "1000"] {
        let (code, _, stderr) = snappack(&["validate", arg(&input), "--threads", threads]);
        assert_eq!(code, 2, "{stderr}");
        assert!(
            stderr.contains(&format!("{threads} is not in 1..=64")),
            "{stderr}"
        );
    }
    let (code, _, stderr) = snappack(&["validate", arg(&input), "--threads", "64", "-q"]);
    assert_eq!(code, 0, "{stderr}");
    for count in ["0", "1025"] {
        let upload = [
            "upload",
            arg(&input),
            "--url",
            "http://127.0.0.1:9",
            "--token",
            "t",
        ];
        let (code, _, stderr) = snappack(&[&upload[..], &["--frames-per-request", count]].concat());
        assert_eq!(code, 2, "{stderr}");
        assert!(
            stderr.contains(&format!("{count} is not in 1..=1024")),
            "{stderr}"
        );
    }
}

/// `upload --url` must be an `http://` address (the server speaks plain
/// HTTP): an `https://` one, or one without a scheme, is refused at once
/// (exit 2) with what to give instead, not when connecting.
#[test]
fn upload_takes_only_an_http_url() {
    let input = temp_file("url.zip", &valid_zip());
    for (url, says) in [
        ("https://127.0.0.1:9", "plain HTTP only"),
        ("127.0.0.1:9", "e.g. http://127.0.0.1:8080"),
    ] {
        let (code, _, stderr) = snappack(&["upload", arg(&input), "--url", url, "--token", "t"]);
        assert_eq!(code, 2, "{stderr}");
        assert!(stderr.contains(says), "{url}: {stderr}");
    }
}

/// A server that takes the connection and never answers, or stops in the
/// middle of its answer, is given up on after `--timeout`, in words that
/// name it and the time waited (the transport said only `timeout: global`,
/// and after five minutes, which no option changed).
#[test]
fn upload_gives_up_on_a_server_that_does_not_answer_within_its_timeout() {
    use std::io::{Read, Write};
    let input = temp_file("silent.zip", &valid_zip());
    for partial in [false, true] {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for mut socket in listener.incoming().flatten() {
                if partial {
                    let mut request = [0u8; 4096];
                    let _ = socket.read(&mut request);
                    let _ = socket.write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"tables\":",
                    );
                }
                held.push(socket);
            }
        });
        let started = Instant::now();
        let (code, _, stderr) = snappack(&[
            "upload",
            arg(&input),
            "--url",
            &url,
            "--token",
            "t",
            "--timeout",
            "1",
        ]);
        assert_ne!(code, 0, "{stderr}");
        assert!(
            stderr.contains(&format!(
                "{url} did not answer within 1 s (--timeout sets how long a request may take)"
            )),
            "partial {partial}: {stderr}"
        );
        assert!(started.elapsed() < Duration::from_secs(20), "{stderr}");
    }
    let (code, _, stderr) = snappack(&[
        "upload",
        arg(&input),
        "--url",
        "http://127.0.0.1:9",
        "--token",
        "t",
        "--timeout",
        "0",
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--timeout"), "{stderr}");
}

/// `serve`'s limits are bounded when read (exit 2): a largest frame below
/// what snappack packs would refuse every stream, hours past the bound
/// overflowed into a panic, no connection at all would serve nothing, and a
/// request body under one frame could never carry a stream of that size.
#[test]
fn serve_limits_are_bounded() {
    // A data folder that cannot be made: a server that took the options
    // would stop there, rather than serve.
    let not_a_folder = temp_file("serve-limits", b"a file");
    for (option, value, says) in [
        (
            "--max-frame-size",
            "10",
            "the largest frame must be from 4096",
        ),
        (
            "--max-frame-size",
            "67108865",
            "the largest frame must be from 4096",
        ),
        (
            "--expire-after-hours",
            "18446744073709551615",
            "is not in 0..=876000",
        ),
        ("--max-connections", "0", "0 is not in 1.."),
        ("--stop-timeout", "0", "0 is not in 1..=86400"),
        (
            "--max-frame-size",
            "67108864",
            "--max-request-bytes 67108864 cannot hold one frame of --max-frame-size 67108864",
        ),
        (
            "--max-request-bytes",
            "16777259",
            "--max-request-bytes 16777259 cannot hold one frame of --max-frame-size 16777216 with its headers (16777260 bytes)",
        ),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_snappack"))
            .args([
                "serve",
                "--no-www",
                "--listen",
                "127.0.0.1:0",
                "--token",
                "t",
            ])
            .arg("--data-dir")
            .arg(&not_a_folder)
            .args([option, value])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{option} {value}: {stderr}");
        assert!(stderr.contains(says), "{option} {value}: {stderr}");
    }
}

/// `serve` started where its web page folder is not says so at once.
#[test]
fn serve_warns_when_the_web_page_folder_is_missing() {
    use std::io::{BufRead, BufReader};
    let dir = fresh_dir("serve-no-www");
    let mut serve = Command::new(env!("CARGO_BIN_EXE_snappack"))
        .args(["serve", "--listen", "127.0.0.1:0", "--token", "t"])
        .current_dir(&dir)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(serve.stderr.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    serve.kill().unwrap();
    serve.wait().unwrap();
    let www = dir.join("www");
    assert!(
        line.contains(&format!("warning: no web page folder at {}", www.display())),
        "{line}"
    );
}

/// `serve --listen` takes a host name and port (`localhost:PORT`, as
/// `SNAPPACK_LISTEN=host:port` for `scripts/start.sh` reads), and says what
/// it takes when given neither.
#[test]
fn serve_listens_on_a_host_name() {
    use std::io::{BufRead, BufReader};
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = fresh_dir("serve-localhost");
    let mut serve = Command::new(env!("CARGO_BIN_EXE_snappack"))
        .args(["serve", "--no-www", "--token", "t", "--listen"])
        .arg(format!("localhost:{port}"))
        .current_dir(&dir)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(serve.stderr.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    serve.kill().unwrap();
    serve.wait().unwrap();
    assert_eq!(
        line,
        format!("snappack: listening on http://127.0.0.1:{port}\n")
    );

    let (code, _, stderr) = snappack(&["serve", "--listen", "8080"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("invalid value '8080' for '--listen <LISTEN>': give an address and port, such as 127.0.0.1:8080 or localhost:8080"),
        "{stderr}"
    );
}

#[test]
fn an_input_whose_format_cannot_be_told_exits_2() {
    let dir = fresh_dir("no-extension");
    let input = dir.join("noext");
    // CSV, which has no sign of its own in its first bytes.
    std::fs::write(&input, b"a,b\n1,2\n").unwrap();
    // The report says why (InvalidOptions), and the status that nothing was checked.
    let (code, stdout, _) = snappack(&["validate", arg(&input), "--table", "t", "--json"]);
    assert_eq!(code, 2, "{stdout}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["errors"][0]["code"], "InvalidOptions");
    let (code, stdout, _) = snappack(&["validate", arg(&input), "--table", "t"]);
    assert_eq!(code, 2, "{stdout}");
    assert!(stdout.contains("cannot tell the format"), "{stdout}");
    assert!(
        stdout.contains("fix the options: nothing was checked"),
        "{stdout}"
    );
    assert!(!stdout.contains("Convex would reject"), "{stdout}");
    // The same as an unknown --format.
    let (code, _, _) = snappack(&["validate", arg(&input), "--format", "xml"]);
    assert_eq!(code, 2);
    // pack refuses it, --force or not, and writes nothing.
    let out = dir.join("out.snappack");
    for force in [&[][..], &["--force"]] {
        let pack = [
            &["pack", arg(&input), "--table", "t", "-o", arg(&out)][..],
            force,
        ]
        .concat();
        let (code, stdout, _) = snappack(&pack);
        assert_eq!(code, 2, "{stdout}");
        assert!(stdout.contains("not packed: fix the options"), "{stdout}");
        assert_eq!(names(&dir), ["noext"]);
    }
    // Errors in the input itself stay exit 1, and are Convex's verdict.
    std::fs::write(&input, b"{\"a\":\n").unwrap();
    let (code, stdout, _) =
        snappack(&["validate", arg(&input), "--format", "jsonl", "--table", "t"]);
    assert_eq!(code, 1);
    assert!(
        stdout.contains("Convex would reject this import."),
        "{stdout}"
    );
}

#[test]
fn an_input_without_an_extension_or_on_standard_input_is_told_by_its_first_bytes() {
    use std::io::Write;
    let dir = fresh_dir("first-bytes");
    let twice = doc(10001, 1, "") + "\n" + &doc(10001, 1, "");
    let archive = zip(&[("users/documents.jsonl", twice.as_bytes())]);
    let run = |args: &[&str], stdin: &[u8]| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_snappack"))
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stdin).unwrap();
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8(out.stdout).unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stdout}");
        let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(report["documents"], 2, "{args:?}: {stdout}");
        assert_eq!(report["errors"][0]["code"], "DuplicateId", "{stdout}");
        report
    };
    // A ZIP without an extension, split among walks as a .zip is.
    let named = dir.join("snapshot");
    std::fs::write(&named, &archive).unwrap();
    for threads in ["1", "4"] {
        let report = run(
            &["validate", arg(&named), "--json", "--threads", threads],
            b"",
        );
        assert_eq!(report["format"], "zip");
    }
    // `-` is standard input: a ZIP, and a table's JSON lines.
    let report = run(&["validate", "-", "--json"], &archive);
    assert_eq!(report["format"], "zip");
    let report = run(
        &["validate", "-", "--table", "users", "--json"],
        twice.as_bytes(),
    );
    assert_eq!(report["format"], "jsonl");
    assert_eq!(report["errors"][0]["entry"], "stdin");
    // Nothing at all on standard input: said so, with what to give.
    let empty = Command::new(env!("CARGO_BIN_EXE_snappack"))
        .args(["validate", "-"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&empty.stdout);
    assert_eq!(empty.status.code(), Some(2), "{stdout}");
    assert!(
        stdout.contains("standard input was empty (nothing was piped in)")
            && stdout.contains("give its format with --format"),
        "{stdout}"
    );
    assert!(!stdout.contains("'stdin'"), "{stdout}");
    // Piped bytes of no format it can tell: no name to blame either.
    let csv = Command::new(env!("CARGO_BIN_EXE_snappack"))
        .args(["validate", "-", "--table", "users"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(b"name,age\nada,36\n")?;
            child.wait_with_output()
        })
        .unwrap();
    let stdout = String::from_utf8_lossy(&csv.stdout);
    assert_eq!(csv.status.code(), Some(2), "{stdout}");
    assert!(
        stdout.contains("cannot tell the format of standard input from its first bytes")
            && stdout.contains("--format"),
        "{stdout}"
    );
    // A file of that name is still a file, named as such.
    let file = dir.join("stdin");
    std::fs::write(&file, b"").unwrap();
    let named = Command::new(env!("CARGO_BIN_EXE_snappack"))
        .args(["validate", arg(&file)])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&named.stdout);
    assert!(stdout.contains("'stdin' is empty (0 bytes)"), "{stdout}");
}

#[test]
fn walks_of_two_threads_split_an_archive_and_report_what_one_thread_reports() {
    use snappack::gen::{Fault, GenSpec};
    let spec = GenSpec {
        tables: 4,
        documents_per_table: 300,
        components: vec!["a".into()],
        storage_files: 2,
        faults: vec![
            Fault::DuplicateId,
            Fault::BadJsonLine,
            Fault::Sha256Mismatch,
            Fault::ForeignTableId,
        ],
        ..GenSpec::default()
    };
    let path = temp_file("pairs.zip", &generated(&spec));
    for extra in [&[][..], &["--max-errors", "2"][..]] {
        let run = |threads: &str| {
            let mut args = vec!["validate", arg(&path), "--json", "--threads", threads];
            args.extend(extra);
            let (status, stdout, stderr) = snappack(&args);
            assert_eq!(status, 1, "{stderr}");
            stdout
        };
        let one = run("1");
        let report: serde_json::Value = serde_json::from_str(&one).unwrap();
        assert!(report["error_count"].as_u64().unwrap() >= 4, "{one}");
        // 2 threads: two walks of two threads each; 3: three.
        assert_eq!(run("2"), one, "{extra:?}");
        assert_eq!(run("3"), one, "{extra:?}");
    }
}

/// With `--max-errors`, the verdict counts every error and says how many
/// tables the listed ones are in (it cannot know the others' tables).
#[test]
fn a_capped_report_says_its_table_count_is_of_the_errors_listed() {
    let twice = doc(10001, 1, "") + "\n" + &doc(10001, 1, "");
    let twice_too = doc(10002, 1, "") + "\n" + &doc(10002, 1, "");
    let path = temp_file(
        "capped.zip",
        &zip(&[
            ("users/documents.jsonl", twice.as_bytes()),
            ("posts/documents.jsonl", twice_too.as_bytes()),
        ]),
    );
    let (status, all, _) = snappack(&["validate", arg(&path)]);
    assert_eq!(status, 1);
    assert!(all.contains("INVALID: 2 errors in 2 tables;"), "{all}");
    let (status, capped, _) = snappack(&["validate", arg(&path), "--max-errors", "1"]);
    assert_eq!(status, 1);
    assert!(
        capped.contains("INVALID: 2 errors, the 1 listed in 1 table;"),
        "{capped}"
    );
}

#[test]
fn a_pipe_is_read_whole_and_validated() {
    let dir = fresh_dir("pipe-in");
    let fifo = dir.join("snapshot.zip");
    let bytes = zip(&[(
        "users/documents.jsonl",
        (doc(10001, 1, "") + "\n" + &doc(10001, 1, "")).as_bytes(),
    )]);
    // With 4 threads, a file would be opened again by each of two walks; a
    // pipe, which cannot be, must not be (nor must that hang: 60 s at most).
    for threads in ["1", "4"] {
        let _ = std::fs::remove_file(&fifo);
        let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
        assert!(made.success());
        let writer = {
            let (fifo, bytes) = (fifo.clone(), bytes.clone());
            std::thread::spawn(move || std::fs::write(fifo, bytes))
        };
        let out = Command::new("timeout")
            .args(["60", env!("CARGO_BIN_EXE_snappack"), "validate", arg(&fifo)])
            .args(["--json", "--threads", threads])
            .output()
            .unwrap();
        let _ = writer.join();
        let stdout = String::from_utf8(out.stdout).unwrap();
        assert_eq!(out.status.code(), Some(1), "{threads} threads: {stdout}");
        let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(report["documents"], 2);
        assert_eq!(report["errors"][0]["code"], "DuplicateId", "{stdout}");
    }
}

/// Text from a stream is shown escaped: a producer with a terminal escape
/// sequence cannot clear or retitle the terminal.
#[test]
fn unpack_shows_the_streams_text_escaped() {
    use snappack::migration::{pack, PackOptions};
    let dir = fresh_dir("unpack-escaped");
    let jsonl = b"{\"a\":1}\n";
    let options = PackOptions {
        validate: snappack::Options {
            table: Some("items".into()),
            ..Default::default()
        },
        producer: "evil \u{1b}[2J".into(),
        ..PackOptions::default()
    };
    let (stream, _) = pack(
        std::io::Cursor::new(&jsonl[..]),
        "items.jsonl",
        Vec::new(),
        &options,
        &mut |_| true,
    )
    .unwrap();
    let path = dir.join("s.snappack");
    std::fs::write(&path, stream).unwrap();
    let (code, stdout, _) = snappack(&["unpack", arg(&path)]);
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("written by evil \\u{1b}[2J"), "{stdout}");
    assert!(!stdout.contains('\u{1b}'), "{stdout}");
}

/// What unpack would write where it could not be read back is refused: a
/// `_tables` table (rebuilt from the numbers) or a stored file whose id is
/// not one.
#[test]
fn unpack_refuses_what_it_could_not_write_back() {
    use snappack::convex::value::ValueRules;
    use snappack::migration::{Encoder, EncoderConfig, FileStart, Header, TableDecl, Totals};
    use snappack::report::NumberSource;
    let dir = fresh_dir("unpack-refuses");
    let stream = |table: &str, file: &str| {
        let header = Header::new("test", 0, Totals::default());
        let mut e = Encoder::new(Vec::new(), EncoderConfig::default(), header).unwrap();
        let t = e
            .table(TableDecl {
                component: String::new(),
                name: table.into(),
                number: Some(10001),
                number_source: NumberSource::Tables,
                rules: ValueRules::Plain,
                expected_documents: 1,
            })
            .unwrap();
        e.document(t, b"{\"a\":1}").unwrap();
        e.end_table(t).unwrap();
        e.file(FileStart {
            component: String::new(),
            id: file.into(),
            content_type: None,
            size: 1,
        })
        .unwrap();
        e.file_data(b"x").unwrap();
        e.end_file().unwrap();
        e.finish().unwrap().0
    };
    let id = snappack::convex::DocumentId::new(540, [3; 16]).to_string();
    let long = "x".repeat(65);
    for (table, file, why) in [
        ("_tables", id.as_str(), "a system table"),
        ("users", "documents", "its id does not decode"),
        // Names Convex's identifier rule refuses (no import reads them back).
        (
            long.as_str(),
            id.as_str(),
            "Identifier is too long (65 > maximum 64)",
        ),
        ("9lives", id.as_str(), "Invalid first character '9'"),
        ("..", id.as_str(), "Invalid first character '.'"),
    ] {
        let path = dir.join("refused.snappack");
        std::fs::write(&path, stream(table, file)).unwrap();
        let out = dir.join("refused-out");
        // The input's fault: status 1, said with the stream's name.
        let (code, stdout, _) = snappack(&["unpack", arg(&path), "-o", arg(&out)]);
        assert_eq!(code, 1, "{stdout}");
        assert!(stdout.contains(why), "{stdout}");
        assert!(stdout.contains("no output was written to"), "{stdout}");
        assert!(!out.exists(), "nothing is written");
    }
    // `-o -` is no folder.
    let (code, _, stderr) = snappack(&["unpack", arg(&dir.join("refused.snappack")), "-o", "-"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("-o takes a folder"), "{stderr}");
    // The same stream with names it can write back unpacks.
    let path = dir.join("good.snappack");
    std::fs::write(&path, stream("users", &id)).unwrap();
    let (code, stdout, _) = snappack(&["unpack", arg(&path), "-o", arg(&dir.join("good"))]);
    assert_eq!(code, 0, "{stdout}");
}

/// `--mode` says that `--resume` takes the import's own mode only where
/// there is a `--resume`: in `upload`, not in `validate` or `pack`; and
/// `upload`'s `--target-tables` says it stands in for the server's tables.
#[test]
fn only_upload_help_speaks_of_resume_and_the_server() {
    for (command, resumes) in [("validate", false), ("pack", false), ("upload", true)] {
        let (code, stdout, _) = snappack(&[command, "--help"]);
        assert_eq!(code, 0, "{stdout}");
        let mode = stdout
            .split("--mode <MODE>")
            .nth(1)
            .and_then(|rest| rest.split("\n  ").find(|s| !s.trim().is_empty()))
            .unwrap_or_default();
        assert!(
            mode.contains("Import mode: requireEmpty"),
            "{command}: {mode}"
        );
        assert_eq!(mode.contains("--resume"), resumes, "{command}: {mode}");
        assert_eq!(
            stdout.contains("instead of the server's (GET /api/tables)"),
            resumes,
            "{command}: {stdout}"
        );
    }
}

/// Each command's `--threads` says what it does there: `validate` splits
/// an archive among walks; `pack` and `upload` compress frames too.
#[test]
fn threads_help_speaks_of_its_own_command() {
    for (command, packs) in [("validate", false), ("pack", true), ("upload", true)] {
        let (code, stdout, _) = snappack(&[command, "--help"]);
        assert_eq!(code, 0, "{stdout}");
        let threads = stdout
            .split("--threads <THREADS>")
            .nth(1)
            .and_then(|rest| rest.split("\n  -").next())
            .unwrap_or_default();
        assert!(threads.contains("1 to 64"), "{command}: {threads}");
        assert!(!threads.contains("`pack`"), "{command}: {threads}");
        assert!(!threads.contains("`validate`"), "{command}: {threads}");
        assert_eq!(threads.contains("walks"), !packs, "{command}: {threads}");
        assert_eq!(
            threads.contains("frames are"),
            packs,
            "{command}: {threads}"
        );
    }
}

/// A deflate level past 9 is a bad option, refused before anything is read,
/// packed or asked of a server (an import created first would stay open).
#[test]
fn a_level_past_9_is_refused_before_any_work() {
    let dir = fresh_dir("level");
    let input = dir.join("t.jsonl");
    std::fs::write(&input, "{\"a\":1}\n").unwrap();
    let out = dir.join("out.snappack");
    for args in [
        vec![
            "pack",
            arg(&input),
            "--table",
            "t",
            "-o",
            arg(&out),
            "--level",
            "10",
        ],
        vec![
            "upload",
            arg(&input),
            "--table",
            "t",
            "--url",
            "http://127.0.0.1:9",
            "--token",
            "t",
            "--level",
            "10",
        ],
    ] {
        let (code, _, stderr) = snappack(&args);
        assert_eq!(code, 2, "{stderr}");
        assert!(stderr.contains("10 is not in 0..=9"), "{stderr}");
        assert!(!out.exists());
    }
}

/// Runs `command` (a shell command line) on a terminal `columns` wide, and
/// returns what it wrote there.
#[cfg(unix)]
fn on_a_terminal(columns: u32, command: &str) -> String {
    let out = Command::new("script")
        .args([
            "-qec",
            &format!("stty cols {columns}; {command}"),
            "/dev/null",
        ])
        .output()
        .expect("script (util-linux) runs a command on a terminal");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Colors on a terminal, unless `NO_COLOR` is set to something (an empty
/// value is as if unset, as no-color.org says).
#[cfg(unix)]
#[test]
fn the_report_is_colored_on_a_terminal_unless_no_color_says_otherwise() {
    let input = temp_file("color.zip", &valid_zip());
    let bin = env!("CARGO_BIN_EXE_snappack");
    for (env, colored) in [("", true), ("NO_COLOR= ", true), ("NO_COLOR=1 ", false)] {
        let screen = on_a_terminal(80, &format!("{env}{bin} validate {}", arg(&input)));
        assert!(screen.contains("VALID"), "{screen:?}");
        assert_eq!(screen.contains("\x1b[1;32m"), colored, "{env}: {screen:?}");
    }
    let (_, piped, _) = snappack(&["validate", arg(&input)]);
    assert!(!piped.contains('\x1b'), "{piped:?}");
}

#[cfg(unix)]
#[test]
fn progress_bars_fit_the_terminal() {
    let dir = fresh_dir("progress-width");
    let input = dir.join("snapshot.zip");
    let (code, _, stderr) = snappack(&["gen", arg(&input), "--documents", "3000"]);
    assert_eq!(code, 0, "{stderr}");
    let out = dir.join("snapshot.snappack");
    let bin = env!("CARGO_BIN_EXE_snappack");
    for command in [
        format!("{bin} validate {}", arg(&input)),
        format!("{bin} validate {} --threads 1", arg(&input)),
        format!("{bin} pack {} -o {}", arg(&input), arg(&out)),
    ] {
        for columns in [40, 60, 80] {
            let _ = std::fs::remove_file(&out);
            let screen = on_a_terminal(columns, &command);
            // Each drawing of the bar starts at the line's start (and
            // clears it); the report's lines come after the last.
            let drawn: Vec<&str> = screen
                .split('\r')
                .map(|part| part.trim_start_matches("\x1b[K"))
                .filter(|line| line.contains(" / ") && !line.contains('\n'))
                .collect();
            assert!(!drawn.is_empty(), "{command}: no progress on {screen:?}");
            for line in drawn {
                assert!(
                    line.chars().count() < columns as usize,
                    "{command}: {line:?} is wider than {columns} columns"
                );
            }
        }
    }
}

/// The peak resident memory of `snappack args` (its output dropped), in
/// bytes, as its `VmHWM` said last while it ran, and its exit status. (Its
/// `wait4` usage would count this process's memory too: a child spawned
/// shares it until its exec.)
#[cfg(target_os = "linux")]
fn peak_memory(args: &[&std::ffi::OsStr]) -> (i32, u64) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_snappack"))
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let status = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    loop {
        let text = std::fs::read_to_string(&status).unwrap_or_default();
        let hwm = text
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|kb| kb.trim().trim_end_matches("kB").trim().parse::<u64>().ok());
        peak = peak.max(hwm.unwrap_or(0) * 1024);
        if let Some(exit) = child.try_wait().unwrap() {
            return (exit.code().unwrap_or(-1), peak);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A ZIP whose entries (name, deflated data, CRC-32, uncompressed size)
/// hold data already deflated.
#[cfg(target_os = "linux")]
fn deflated_zip(entries: &[(&str, &[u8], u32, u64)]) -> Vec<u8> {
    let (mut out, mut directory) = (Vec::new(), Vec::new());
    for &(name, raw, crc, size) in entries {
        let mut fields = Vec::new();
        fields.extend_from_slice(&crc.to_le_bytes());
        fields.extend_from_slice(&(raw.len() as u32).to_le_bytes());
        fields.extend_from_slice(&(size as u32).to_le_bytes());
        fields.extend_from_slice(&(name.len() as u16).to_le_bytes());
        let at = out.len() as u32;
        // Local header: signature, version needed, flags, deflate, time, date.
        out.extend_from_slice(&[0x50, 0x4b, 0x03, 0x04, 20, 0, 0, 0, 8, 0, 0, 0, 0, 0]);
        out.extend_from_slice(&fields);
        out.extend_from_slice(&[0; 2]);
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(raw);
        // Central header: signature, made by, needed, flags, deflate, time, date.
        directory.extend_from_slice(&[0x50, 0x4b, 0x01, 0x02, 20, 3, 20, 0, 0, 0, 8, 0]);
        directory.extend_from_slice(&[0; 4]);
        directory.extend_from_slice(&fields);
        // Extra and comment lengths, disk, attributes, then the local header.
        directory.extend_from_slice(&[0; 12]);
        directory.extend_from_slice(&at.to_le_bytes());
        directory.extend_from_slice(name.as_bytes());
    }
    let (at, len, count) = (
        out.len() as u32,
        directory.len() as u32,
        entries.len() as u16,
    );
    out.extend_from_slice(&directory);
    out.extend_from_slice(&[0x50, 0x4b, 0x05, 0x06, 0, 0, 0, 0]);
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&at.to_le_bytes());
    out.extend_from_slice(&[0; 2]);
    out
}

/// A walk with two threads reads ahead of the thread that checks lines, but
/// not by a dozen long lines: two entries of 16 MiB lines (whitespace after
/// a small document, deflated to almost nothing), checked by two walks of
/// two threads each, are checked holding a few of their lines at once (with
/// more threads than cores, the checking threads fall behind; the walks
/// held 22 of the 24 lines at once before).
#[cfg(target_os = "linux")]
#[test]
fn long_lines_are_not_read_ahead_by_the_dozen() {
    use flate2::{Compress, Compression, FlushCompress};
    const LINE: usize = 16 << 20;
    const LINES: usize = 12;
    let line = format!("{{\"a\":1}}{}\n", " ".repeat(LINE - 8));
    // One line deflated, flushed whole (so its blocks stand alone), as often
    // as the entry has lines, then an empty final block.
    let mut compress = Compress::new(Compression::fast(), false);
    let mut segment = Vec::with_capacity(4 << 20);
    while (compress.total_in() as usize) < line.len() {
        let from = compress.total_in() as usize;
        compress
            .compress_vec(&line.as_bytes()[from..], &mut segment, FlushCompress::Full)
            .unwrap();
        segment.reserve(1 << 20);
    }
    let mut raw = segment.repeat(LINES);
    raw.extend_from_slice(&[0x03, 0x00]);
    let mut crc = crc32fast::Hasher::new();
    for _ in 0..LINES {
        crc.update(line.as_bytes());
    }
    let (crc, size) = (crc.finalize(), (LINES * LINE) as u64);
    let dir = fresh_dir("long-lines-ahead");
    let archive = dir.join("long.zip");
    let entries = [
        ("a/documents.jsonl", &raw[..], crc, size),
        ("b/documents.jsonl", &raw[..], crc, size),
    ];
    std::fs::write(&archive, deflated_zip(&entries)).unwrap();
    let (code, peak) = peak_memory(&[
        "validate".as_ref(),
        archive.as_os_str(),
        "--threads".as_ref(),
        "2".as_ref(),
        "--quiet".as_ref(),
    ]);
    assert_eq!(code, 0);
    assert!(
        peak < (LINES * LINE) as u64,
        "{} MiB at the peak, for two entries of {} MiB",
        peak >> 20,
        (LINES * LINE) >> 20
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A token no request could carry (a line break, a character outside
/// ASCII, spaces at its ends) is refused before any request, naming where
/// it came from: it said the server "cannot be reached". An empty
/// `--token` is refused as such, even with `$SNAPPACK_TOKEN` set, which
/// it used to be passed over for; an empty `$SNAPPACK_TOKEN` is no token.
#[test]
fn upload_refuses_a_token_no_request_could_carry() {
    let dir = fresh_dir("upload-token");
    let input = dir.join("t.jsonl");
    std::fs::write(&input, "{\"a\":1}\n").unwrap();
    // Nothing listens there: a request would fail otherwise.
    let url = "http://127.0.0.1:9";
    let upload = |token: Option<&str>, env: Option<&str>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_snappack"));
        command.args([
            "upload",
            arg(&input),
            "--table",
            "t",
            "--url",
            url,
            "--quiet",
        ]);
        command.env_remove("SNAPPACK_TOKEN");
        if let Some(env) = env {
            command.env("SNAPPACK_TOKEN", env);
        }
        if let Some(token) = token {
            command.args(["--token", token]);
        }
        let out = command.output().unwrap();
        (
            out.status.code().unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    };
    for (token, env, says) in [
        (
            Some("ab\ncd"),
            None,
            "the token given by --token has a character that is not printable",
        ),
        (
            Some("é"),
            None,
            "the token given by --token has a character that is not printable",
        ),
        (
            Some(" ab"),
            None,
            "the token given by --token has spaces at its ends",
        ),
        (
            None,
            Some("ab\r"),
            "the token given by $SNAPPACK_TOKEN has a character",
        ),
        (Some(""), None, "--token is empty"),
        (Some(""), Some("abc"), "--token is empty"),
        (Some(""), Some("ab\r"), "--token is empty"),
        (None, None, "no token: give --token or set SNAPPACK_TOKEN"),
        (
            None,
            Some(""),
            "no token: give --token or set SNAPPACK_TOKEN (it is set, but empty)",
        ),
    ] {
        let (code, stderr) = upload(token, env);
        assert_eq!(code, 2, "{token:?} {env:?}: {stderr}");
        assert!(stderr.contains(says), "{token:?} {env:?}: {stderr}");
        assert!(
            !stderr.contains("cannot reach"),
            "{token:?} {env:?}: {stderr}"
        );
    }
}

/// `serve` refuses a `$SNAPPACK_TOKEN` set but empty, as `upload` does: it
/// took it for unset and served with its stored token, or a new one, which
/// a client holding that variable does not have. One no request could carry
/// is refused naming the variable. Nothing is started or written.
#[test]
fn serve_refuses_an_empty_or_unsendable_token_variable() {
    use std::os::unix::ffi::OsStrExt;
    let dir = fresh_dir("serve-token");
    let data = dir.join("data");
    let cases: [(&std::ffi::OsStr, &str); 3] = [
        ("".as_ref(), "SNAPPACK_TOKEN is set, but empty"),
        (
            " ab".as_ref(),
            "the token given by $SNAPPACK_TOKEN has spaces at its ends",
        ),
        (
            std::ffi::OsStr::from_bytes(b"ab\xff"),
            "the token given by $SNAPPACK_TOKEN has a character that is not printable",
        ),
    ];
    for (env, says) in cases {
        let mut child = Command::new(env!("CARGO_BIN_EXE_snappack"))
            .args(["serve", "--listen", "127.0.0.1:0", "--no-www", "--data-dir"])
            .arg(&data)
            .env("SNAPPACK_TOKEN", env)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                child.kill().unwrap();
                let out = child.wait_with_output().unwrap();
                panic!(
                    "{env:?}: the server started: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{env:?}: {stderr}");
        assert!(stderr.contains(says), "{env:?}: {stderr}");
        assert!(!data.join("token").exists(), "{env:?}: {stderr}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// An upload whose only errors are about the options (a CSV file without
/// `--table`, nothing piped in) says to fix the options, as `pack` does:
/// it said "the snapshot has errors", of a snapshot it had not checked.
#[test]
fn upload_refused_for_its_options_says_so() {
    let dir = fresh_dir("upload-options");
    let input = dir.join("t.csv");
    std::fs::write(&input, "a,b\n1,2\n").unwrap();
    let tables = dir.join("tables.json");
    std::fs::write(&tables, r#"{"tables": []}"#).unwrap();
    // Nothing listens there: the check comes before any request.
    let base = [
        "upload",
        "--url",
        "http://127.0.0.1:9",
        "--token",
        "t",
        "--target-tables",
        arg(&tables),
    ];
    for (file, stdin) in [(arg(&input), false), ("-", true)] {
        let mut command = Command::new(env!("CARGO_BIN_EXE_snappack"));
        command.args(base).arg(file);
        if stdin {
            command.stdin(std::process::Stdio::null());
        }
        let out = command.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{file}: {stderr}");
        assert!(
            stderr.contains("not uploaded: fix the options"),
            "{file}: {stderr}"
        );
        assert!(!stderr.contains("the snapshot has errors"), "{stderr}");
    }
}

/// An empty `--resume` is refused as an option, before any request: it
/// was sent, and the server's 404 said "cannot continue import : ...".
#[test]
fn upload_refuses_an_empty_resume() {
    let dir = fresh_dir("upload-resume");
    let input = dir.join("t.jsonl");
    std::fs::write(&input, "{\"a\":1}\n").unwrap();
    let (code, _, stderr) = snappack(&[
        "upload",
        arg(&input),
        "--table",
        "t",
        "--url",
        "http://127.0.0.1:9",
        "--token",
        "t",
        "--resume",
        "",
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--resume <ID>"), "{stderr}");
    assert!(!stderr.contains("cannot reach"), "{stderr}");
}

/// An empty `serve --token` is refused: it was taken as no token, so the
/// server used the one in its data folder, or made and printed a new one.
#[test]
fn serve_refuses_an_empty_token() {
    let dir = fresh_dir("serve-empty-token");
    let data = dir.join("data");
    let database = dir.join("db.sqlite");
    let mut child = Command::new(env!("CARGO_BIN_EXE_snappack"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .arg("--database")
        .arg(&database)
        .args(["--no-www", "--token", ""])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // A server that started would serve until stopped.
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("serve started with an empty --token");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--token <TOKEN>"), "{stderr}");
    assert!(!data.exists());
}

/// A component path nested deep enough that its tables' files would be
/// over the system's limit on a path: `pack` takes it (Convex imports it),
/// plain `unpack` checks it, and `unpack -o` refuses it at once, naming the
/// table, its component and the limit, with nothing written. It failed on
/// reaching the table with "cannot create <the path>", without the reason.
#[cfg(target_os = "linux")]
#[test]
fn unpack_says_a_path_over_the_systems_limit_before_writing() {
    let dir = fresh_dir("unpack-deep");
    // 60 components of 64 bytes: a path of some 4,600 bytes.
    let prefix: String = (0..60)
        .map(|i| format!("_components/c{i:02}{}/", "x".repeat(61)))
        .collect();
    let deep = format!("{prefix}users/documents.jsonl");
    let snapshot = dir.join("deep.zip");
    std::fs::write(
        &snapshot,
        zip(&[
            ("users/documents.jsonl", b"{\"a\":1}\n"),
            (&deep, b"{\"a\":2}\n"),
        ]),
    )
    .unwrap();
    let stream = dir.join("deep.snappack");
    let (code, _, stderr) = snappack(&["pack", arg(&snapshot), "-o", arg(&stream), "-q"]);
    assert_eq!(code, 0, "{stderr}");
    let (code, stdout, stderr) = snappack(&["unpack", arg(&stream)]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let out = dir.join("out");
    let (code, stdout, stderr) = snappack(&["unpack", arg(&stream), "-o", arg(&out)]);
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(
        stderr.contains("cannot write table users of component c00x"),
        "{stderr}"
    );
    assert!(
        stderr.contains("over the 4,095 bytes a path may have on this system"),
        "{stderr}"
    );
    assert!(stderr.contains("no output was written to"), "{stderr}");
    assert_eq!(names(&dir), ["deep.snappack", "deep.zip"]);
}

/// A valid single-table file is called a file in the verdict, not a
/// snapshot, which a ZIP archive is.
#[test]
fn a_valid_single_table_file_is_called_a_file() {
    let dir = fresh_dir("verdict-file");
    for (name, bytes, what) in [
        ("rows.csv", &b"name\nada\n"[..], "file"),
        ("rows.jsonl", b"{\"name\":\"ada\"}\n", "file"),
        ("rows.json", b"[{\"name\":\"ada\"}]", "file"),
        ("snapshot.zip", &valid_zip()[..], "snapshot"),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        let mut args = vec!["validate", arg(&path)];
        if what == "file" {
            args.extend(["--table", "people"]);
        }
        let (code, stdout, stderr) = snappack(&args);
        assert_eq!(code, 0, "{stdout}{stderr}");
        assert!(
            stdout.contains(&format!("VALID: Convex would import this {what}.")),
            "{name}: {stdout}"
        );
    }
}

/// JSON lines named .json, or a JSON array named .jsonl, fail with Convex's
/// words for a broken file ("trailing characters", "EOF while parsing"):
/// the human report says which format the file needs, as the web page does;
/// other broken files get no such advice.
#[test]
fn a_table_file_of_the_other_json_format_is_told_the_format_it_needs() {
    let dir = fresh_dir("other-json-format");
    for (name, bytes, hint) in [
        (
            "lines.json",
            &b"{\"a\":1}\n{\"a\":2}\n"[..],
            Some(
                "lines.json holds more than one JSON value: if it has one document a line \
                 (JSON lines), give --format jsonl (or name it .jsonl).",
            ),
        ),
        (
            "array.jsonl",
            b"[\n  {\"a\":1},\n  {\"a\":2}\n]\n",
            Some(
                "array.jsonl starts with [: if it is one JSON array of documents, give --format \
                 json (or name it .json).",
            ),
        ),
        ("broken.jsonl", b"{\"a\":1}\n{\"a\":\n", None),
        ("broken.json", b"[{\"a\":1},", None),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        let (code, stdout, _) = snappack(&["validate", arg(&path), "--table", "t"]);
        assert_eq!(code, 1, "{stdout}");
        match hint {
            // After the path given, on a line of its own.
            Some(hint) => assert!(stdout.contains(&format!("{hint}\n")), "{stdout}"),
            None => assert!(!stdout.contains("--format"), "{stdout}"),
        }
    }
}
