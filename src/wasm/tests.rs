//! Tests of the wasm-bindgen layer, run headless in Node:
//! `cargo test --lib --target wasm32-unknown-unknown` (the runner is
//! `wasm-bindgen-test-runner`, see `.cargo/config.toml`).

use std::cell::Cell;
use std::io::{Cursor, Read, Seek, SeekFrom};
use std::rc::Rc;

use js_sys::{Function, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen_test::wasm_bindgen_test;

use super::reader::{ReadAhead, Source, MIN_READ_AHEAD, READ_AHEAD};
use super::validate;

/// An in-memory source that counts its calls and the bytes they fetch.
struct CountingSource {
    bytes: Vec<u8>,
    calls: Rc<Cell<usize>>,
    fetched: Rc<Cell<usize>>,
}

impl Source for CountingSource {
    fn len(&self) -> u64 {
        self.bytes.len() as u64
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        self.calls.set(self.calls.get() + 1);
        self.fetched.set(self.fetched.get() + buf.len());
        let start = offset as usize;
        buf.copy_from_slice(&self.bytes[start..start + buf.len()]);
        Ok(())
    }
}

fn sample(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

#[wasm_bindgen_test]
fn read_ahead_reads_like_a_cursor_and_crosses_rarely() {
    let bytes = sample(READ_AHEAD * 2 + 12_345);
    let calls = Rc::new(Cell::new(0));
    let fetched = Rc::new(Cell::new(0));
    let source = CountingSource {
        bytes: bytes.clone(),
        calls: calls.clone(),
        fetched: fetched.clone(),
    };
    let mut reader = ReadAhead::new(source);
    let mut expected = Cursor::new(bytes);

    // Seeks and reads of many sizes, as a ZIP reader does.
    let steps: [(SeekFrom, usize); 7] = [
        (SeekFrom::End(-22), 22),
        (SeekFrom::End(-5000), 4000),
        (SeekFrom::Start(0), 30),
        (SeekFrom::Current(0), 64 * 1024),
        (SeekFrom::Current(10), READ_AHEAD + 1),
        (SeekFrom::Start(READ_AHEAD as u64 - 3), 10),
        (SeekFrom::End(-3), 100),
    ];
    for (to, len) in steps {
        assert_eq!(reader.seek(to).unwrap(), expected.seek(to).unwrap());
        let mut got = vec![0u8; len];
        let mut want = vec![0u8; len];
        let n = read_fully(&mut reader, &mut got);
        let m = read_fully(&mut expected, &mut want);
        assert_eq!((n, &got[..n]), (m, &want[..m]), "at {to:?} for {len}");
    }
    assert!(
        calls.get() <= 2 * steps.len(),
        "{} calls to the source",
        calls.get()
    );

    // Reading byte by byte from the start fetches every byte once, in
    // fetches that double up to READ_AHEAD.
    calls.set(0);
    fetched.set(0);
    reader.seek(SeekFrom::Start(0)).unwrap();
    let mut all = Vec::new();
    let mut byte = [0u8; 1];
    while reader.read(&mut byte).unwrap() == 1 {
        all.push(byte[0]);
    }
    let bytes = expected.into_inner();
    assert_eq!(all, bytes);
    assert_eq!(fetched.get(), bytes.len());
    // MIN_READ_AHEAD, doubled up to READ_AHEAD, then READ_AHEAD and the rest.
    let doublings = (READ_AHEAD / MIN_READ_AHEAD).ilog2() as usize;
    assert!(
        calls.get() <= doublings + 3,
        "{} calls to the source",
        calls.get()
    );
}

#[wasm_bindgen_test]
fn read_ahead_fetches_little_after_a_jump() {
    let fetched = Rc::new(Cell::new(0));
    let source = CountingSource {
        bytes: sample(64 << 20),
        calls: Rc::default(),
        fetched: fetched.clone(),
    };
    let mut reader = ReadAhead::new(source);
    // Headers far apart, as a ZIP reader visits them.
    for i in 0..32u64 {
        reader.seek(SeekFrom::Start(i * (2 << 20) + 7)).unwrap();
        let mut header = [0u8; 30];
        reader.read_exact(&mut header).unwrap();
    }
    assert_eq!(fetched.get(), 32 * MIN_READ_AHEAD);
}

#[wasm_bindgen_test]
fn read_ahead_keeps_growing_over_short_skips() {
    let calls = Rc::new(Cell::new(0));
    let bytes = sample(8 << 20);
    let source = CountingSource {
        bytes: bytes.clone(),
        calls: calls.clone(),
        fetched: Rc::default(),
    };
    let mut reader = ReadAhead::new(source);
    // The headers of small stored files, one after the other: 200 of them,
    // 30 KiB apart, in 6 MiB.
    for i in 0..200u64 {
        let at = (1 << 20) + i * 30_000;
        reader.seek(SeekFrom::Start(at)).unwrap();
        let mut header = [0u8; 30];
        reader.read_exact(&mut header).unwrap();
        assert_eq!(header[..], bytes[at as usize..at as usize + 30]);
    }
    assert!(calls.get() <= 8, "{} calls to the source", calls.get());
}

fn read_fully(reader: &mut impl Read, buf: &mut [u8]) -> usize {
    let mut n = 0;
    while n < buf.len() {
        match reader.read(&mut buf[n..]).unwrap() {
            0 => break,
            k => n += k,
        }
    }
    n
}

#[wasm_bindgen_test]
fn read_ahead_rejects_seeks_before_the_start() {
    let source = CountingSource {
        bytes: sample(100),
        calls: Rc::default(),
        fetched: Rc::default(),
    };
    let mut reader = ReadAhead::new(source);
    assert!(reader.seek(SeekFrom::Current(-1)).is_err());
    assert_eq!(reader.seek(SeekFrom::End(5)).unwrap(), 105);
    assert_eq!(reader.read(&mut [0u8; 10]).unwrap(), 0);
}

/// The JSON the core itself gives for `bytes`, without the glue.
fn core_report(bytes: &[u8], file_name: &str, options_json: &str) -> String {
    let options = serde_json::from_str(options_json).unwrap();
    let report = crate::validate(Cursor::new(bytes), file_name, &options, &mut |_| true);
    serde_json::to_string(&report).unwrap()
}

/// A JSONL table with one good and one broken line.
const JSONL: &[u8] = b"{\"a\":1}\nnot json\n";

/// A generated snapshot with components, stored files and faults, read in
/// several fetches.
fn snapshot() -> Vec<u8> {
    let spec = crate::gen::GenSpec {
        tables: 3,
        total_documents: Some(30_000),
        components: vec!["a".into()],
        storage_files: 3,
        faults: vec![
            crate::gen::Fault::DuplicateId,
            crate::gen::Fault::BadJsonLine,
        ],
        compression_level: 1,
        ..Default::default()
    };
    let mut out = Cursor::new(Vec::new());
    crate::gen::write_snapshot(&mut out, &spec).unwrap();
    out.into_inner()
}

#[wasm_bindgen_test]
fn every_input_kind_gives_the_core_report() {
    let zip = snapshot();
    // Several fetches, each twice the last.
    assert!(zip.len() > 8 * MIN_READ_AHEAD, "{} bytes", zip.len());
    let cases: [(&[u8], &str, &str); 2] = [
        (&zip, "snapshot.zip", "{}"),
        (JSONL, "t.jsonl", r#"{"table":"t"}"#),
    ];
    for (bytes, name, options) in cases {
        let want = core_report(bytes, name, options);
        assert!(want.contains(r#""valid":false"#), "{want}");
        let array = Uint8Array::from(bytes);
        let inputs: Vec<JsValue> = vec![
            array.clone().into(),
            array.buffer().into(),
            callback_input(bytes),
        ];
        for input in inputs {
            assert_eq!(validate(input, name, options, None).unwrap(), want);
        }
    }
}

/// `{ size, read }` over `bytes`.
fn callback_input(bytes: &[u8]) -> JsValue {
    let array = Uint8Array::from(bytes);
    let read =
        Closure::<dyn Fn(f64, Uint8Array) -> f64>::new(move |offset: f64, into: Uint8Array| {
            let end = offset as u32 + into.length();
            into.set(&array.subarray(offset as u32, end), 0);
            f64::from(into.length())
        });
    let input = js_sys::Object::new();
    Reflect::set(&input, &"size".into(), &(bytes.len() as f64).into()).unwrap();
    Reflect::set(&input, &"read".into(), read.as_ref()).unwrap();
    read.forget();
    input.into()
}

/// A read callback that says it wrote fewer bytes than asked, or says
/// nothing, is a read failure that the report names.
#[wasm_bindgen_test]
fn a_read_callback_that_falls_short_is_a_read_failure() {
    for (answer, says) in [
        ("into.length - 1", "read callback returned"),
        ("undefined", "did not return the number of bytes"),
    ] {
        let read = Function::new_with_args("offset, into", &format!("return {answer};"));
        let input = js_sys::Object::new();
        Reflect::set(&input, &"size".into(), &(JSONL.len() as f64).into()).unwrap();
        Reflect::set(&input, &"read".into(), &read).unwrap();
        let report = validate(input.into(), "t.jsonl", r#"{"table":"t"}"#, None).unwrap();
        assert!(report.contains(r#""code":"ReadFailed""#), "{report}");
        assert!(report.contains(says), "{says}: {report}");
    }
}

fn error_code(error: &JsValue) -> String {
    Reflect::get(error, &"code".into())
        .unwrap()
        .as_string()
        .unwrap_or_default()
}

#[wasm_bindgen_test]
fn misuse_throws_errors_with_codes() {
    let bytes: JsValue = Uint8Array::from(JSONL).into();
    let error = validate(bytes, "t.jsonl", r#"{"mode":"sideways"}"#, None).unwrap_err();
    assert!(error.is_instance_of::<js_sys::Error>());
    assert_eq!(error_code(&error), "InvalidOptions");

    let error = validate(JsValue::from_f64(3.0), "t.jsonl", "{}", None).unwrap_err();
    assert_eq!(error_code(&error), "InvalidInput");

    // Node has Blob but no FileReaderSync: Blobs are for Web Workers.
    let parts = js_sys::Array::of1(&Uint8Array::from(JSONL));
    let blob = web_sys::Blob::new_with_u8_array_sequence(&parts).unwrap();
    let error = validate(blob.into(), "t.jsonl", "{}", None).unwrap_err();
    assert_eq!(error_code(&error), "Unsupported");
}

#[wasm_bindgen_test]
fn progress_arrives_and_a_throwing_callback_cancels() {
    let bytes = JSONL.repeat(200_000);
    let input: JsValue = Uint8Array::from(&bytes[..]).into();
    let calls = js_sys::Array::new();
    let record = Function::new_with_args(
        "calls",
        "return (read, total, documents) => { calls.push([read, total, documents]); }",
    )
    .call1(&JsValue::NULL, &calls)
    .unwrap()
    .dyn_into::<Function>()
    .unwrap();
    validate(input.clone(), "t.jsonl", r#"{"table":"t"}"#, Some(record)).unwrap();
    assert!(calls.length() >= 3, "{} progress calls", calls.length());
    let last = js_sys::Array::from(&calls.get(calls.length() - 1));
    assert_eq!(last.get(0).as_f64(), Some(bytes.len() as f64));
    assert_eq!(last.get(1).as_f64(), Some(bytes.len() as f64));

    let cancel = Function::new_with_args("", "throw new Error('stop here')");
    let error = validate(input, "t.jsonl", r#"{"table":"t"}"#, Some(cancel)).unwrap_err();
    let message = js_sys::Error::from(error).message();
    assert_eq!(String::from(message), "stop here");
}

#[wasm_bindgen_test]
fn zstd_entries_decode_and_are_checked_in_webassembly_too() {
    use crate::archive::inflate::{zstd_entry, Declared};
    let lines = b"{\"a\":1}\n".repeat(50_000);
    let raw =
        ruzstd::encoding::compress_to_vec(&lines[..], ruzstd::encoding::CompressionLevel::Fastest);
    let declared = Declared {
        size: lines.len() as u64,
        crc32: crc32fast::hash(&lines),
    };
    let mut out = Vec::new();
    zstd_entry(&raw[..], declared)
        .unwrap()
        .read_to_end(&mut out)
        .unwrap();
    assert!(out == lines);
    // WebAssembly's own CRC-32 (archive::crc32) tells a wrong checksum.
    let wrong = Declared {
        crc32: declared.crc32 ^ 1,
        ..declared
    };
    let error = zstd_entry(&raw[..], wrong)
        .unwrap()
        .read_to_end(&mut Vec::new())
        .unwrap_err();
    assert_eq!(error.to_string(), "Invalid checksum");
}
