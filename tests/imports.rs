//! Imports driven without HTTP, on every backend: a stream lands with every
//! document and file, a restart trims a partial frame and resumes, refused
//! frames keep the import resumable and leave no trace.

// The binary and the server are native only.
#![cfg(not(target_arch = "wasm32"))]

mod server_support;

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};

use server_support as common;
use server_support::{encode, frames, numbered_table, StreamFile, StreamTable};
use snappack::convex::value::ValueRules;
use snappack::convex::DocumentId;
use snappack::migration::Decoder;
use snappack::server::imports::{Imports, ImportsError, Limits};
use snappack::server::store::{self, ImportMode, ImportState, Store};

fn open(database: &str, data_dir: &Path) -> Imports {
    let store: Arc<dyn Store> = store::open(database).unwrap().into();
    Imports::open(store, data_dir, Limits::default()).unwrap()
}

/// The documents of a table as the store has them, sorted, as lines.
fn stored_lines(imports: &Imports, component: &str, table: &str) -> Vec<String> {
    let mut lines: Vec<String> = imports
        .store()
        .documents(component, table)
        .unwrap()
        .unwrap_or_default()
        .into_iter()
        .map(|d| d.json)
        .collect();
    lines.sort();
    lines
}

/// CRC-32 of the uncompressed payloads of the stream's first `n` frames,
/// counted by a decoder of its own.
fn prefix_crc32(stream: &[u8], n: usize) -> u32 {
    let Some(end) = n.checked_sub(1).map(|last| frames(stream)[last].end) else {
        return 0;
    };
    let mut decoder = Decoder::default();
    let crc = decoder
        .decode(&stream[..end])
        .map(|frame| frame.unwrap().prefix_crc32);
    crc.last().unwrap()
}

fn sorted(lines: &[String]) -> Vec<String> {
    let mut lines = lines.to_vec();
    lines.sort();
    lines
}

fn base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A `_storage` row for a file with these bytes.
fn storage_row(id: &str, data: &[u8]) -> String {
    use sha2::Digest;
    let sha = base64(&sha2::Sha256::digest(data));
    format!(
        r#"{{"_id":"{id}","_creationTime":1700000000000.5,"sha256":"{sha}","size":{},"contentType":"application/octet-stream"}}"#,
        data.len()
    )
}

fn sample() -> (Vec<StreamTable>, Vec<StreamFile>) {
    let storage_id = DocumentId::new(540, [7; 16]).to_string();
    let data: Vec<u8> = (0..3000u32).map(|i| (i * 7 % 251) as u8).collect();
    let mut in_component = numbered_table("messages", 10001, 50, 3);
    in_component.component = "waitlist".into();
    let storage = StreamTable {
        component: String::new(),
        name: "_storage".into(),
        number: Some(540),
        rules: ValueRules::Plain,
        lines: vec![storage_row(&storage_id, &data)],
    };
    let no_ids = StreamTable {
        component: String::new(),
        name: "notes".into(),
        number: None,
        rules: ValueRules::Plain,
        lines: (0..30).map(|i| format!(r#"{{"n":{i}}}"#)).collect(),
    };
    let file = StreamFile {
        component: String::new(),
        id: storage_id,
        data,
    };
    (
        vec![
            numbered_table("users", 10001, 400, 1),
            numbered_table("posts", 10002, 200, 2),
            in_component,
            storage,
            no_ids,
        ],
        vec![file],
    )
}

fn send_all(imports: &Imports, id: &str, stream: &[u8], from: usize) {
    for (seq, range) in frames(stream).into_iter().enumerate().skip(from) {
        let appended = imports
            .append(id, seq as u64, &stream[range])
            .unwrap_or_else(|e| panic!("frame {seq}: {e}"));
        assert_eq!(appended.next_seq, seq as u64 + 1);
    }
}

fn assert_landed(imports: &Imports, tables: &[StreamTable], files: &[StreamFile]) {
    for t in tables {
        assert_eq!(
            stored_lines(imports, &t.component, &t.name),
            sorted(&t.lines),
            "table {}/{}",
            t.component,
            t.name
        );
    }
    for f in files {
        use sha2::Digest;
        let sha: [u8; 32] = sha2::Sha256::digest(&f.data).into();
        assert_eq!(std::fs::read(imports.files().path(&sha)).unwrap(), f.data);
    }
}

#[test]
fn a_stream_lands_with_every_document_and_file() {
    for (backend, database) in common::databases() {
        let dir = common::temp_dir("imports");
        let imports = open(&database, &dir);
        let (tables, files) = sample();
        let stream = encode(&tables, &files, 4096);
        assert!(frames(&stream).len() > 10, "several frames");
        let status = imports.create(ImportMode::RequireEmpty, None).unwrap();
        assert_eq!(status.next_seq, Some(0));
        // Finishing before Done is refused.
        assert!(matches!(
            imports.finish(&status.id),
            Err(ImportsError::Incomplete { expected: 0 })
        ));
        send_all(&imports, &status.id, &stream, 0);
        assert!(imports.status(&status.id).unwrap().complete);
        let activated = imports.finish(&status.id).unwrap();
        assert_eq!(activated.len(), tables.len(), "{backend}");
        assert_landed(&imports, &tables, &files);
        let notes = activated.iter().find(|t| t.name == "notes").unwrap();
        assert_eq!(notes.number, 10003, "{backend}: first free number");
        assert_eq!(
            imports.status(&status.id).unwrap().state,
            ImportState::Finished
        );
        // The staging log is gone.
        assert!(!dir.join("imports").join(&status.id).exists());
    }
}

/// A finish or cancel that waited while another finished the import is told
/// the import is finished, not that there is no such import.
#[test]
fn finishes_and_cancels_that_race_are_told_the_import_is_finished() {
    for (backend, database) in common::databases() {
        let dir = common::temp_dir("race");
        let imports = open(&database, &dir);
        let (tables, files) = sample();
        let stream = encode(&tables, &files, 4096);
        let id = imports.create(ImportMode::RequireEmpty, None).unwrap().id;
        send_all(&imports, &id, &stream, 0);
        let start = std::sync::Barrier::new(4);
        let outcomes: Vec<Result<(), ImportsError>> = std::thread::scope(|scope| {
            let racers: Vec<_> = (0..4)
                .map(|i| {
                    let (imports, id, start) = (&imports, &id, &start);
                    scope.spawn(move || {
                        start.wait();
                        match i % 2 {
                            0 => imports.finish(id).map(drop),
                            _ => imports.cancel(id),
                        }
                    })
                })
                .collect();
            racers.into_iter().map(|r| r.join().unwrap()).collect()
        });
        let won = outcomes.iter().filter(|o| o.is_ok()).count();
        assert_eq!(won, 1, "{backend}: {outcomes:?}");
        let state = imports.status(&id).unwrap().state;
        for lost in outcomes.iter().filter_map(|o| o.as_ref().err()) {
            assert!(
                matches!(lost, ImportsError::NotOpen { state: s, .. } if *s == state),
                "{backend}: {lost:?}"
            );
        }
    }
}

#[test]
fn a_restart_trims_a_partial_frame_and_resumes() {
    for (backend, database) in common::databases() {
        let dir = common::temp_dir("restart");
        let (tables, files) = sample();
        let stream = encode(&tables, &files, 4096);
        let ranges = frames(&stream);
        let half = ranges.len() / 2;
        let id = {
            let imports = open(&database, &dir);
            let id = imports.create(ImportMode::Replace, None).unwrap().id;
            for (seq, range) in ranges.iter().take(half).enumerate() {
                imports
                    .append(&id, seq as u64, &stream[range.clone()])
                    .unwrap();
            }
            id
        };
        // A crash in the middle of writing the next frame.
        let log = dir.join("imports").join(&id).join("stream.snappack");
        let next = &stream[ranges[half].clone()];
        let mut bytes = std::fs::read(&log).unwrap();
        let kept = bytes.len();
        bytes.extend_from_slice(&next[..next.len() / 2]);
        std::fs::write(&log, &bytes).unwrap();

        let imports = open(&database, &dir);
        let status = imports.status(&id).unwrap();
        assert_eq!(status.next_seq, Some(half as u64), "{backend}");
        assert_eq!(status.received_bytes, Some(kept as u64), "{backend}");
        // What a resuming client checks its frames against, replayed from the log.
        let crc = prefix_crc32(&stream, half);
        assert_ne!(crc, prefix_crc32(&stream, half - 1));
        assert_eq!(status.prefix_crc32, Some(crc), "{backend}");
        assert_eq!(std::fs::metadata(&log).unwrap().len(), kept as u64);
        send_all(&imports, &id, &stream, half);
        imports.finish(&id).unwrap();
        assert_landed(&imports, &tables, &files);
    }
}

/// An open import whose frames the database has but whose staging log is
/// gone or empty (another data folder, or a folder emptied by hand) is cancelled at
/// the start, saying why: started again from frame 0 it would keep the rows
/// of the frames it had, whatever is sent. One with nothing in the database
/// starts again from frame 0.
#[test]
fn an_import_whose_log_is_missing_is_cancelled_if_the_database_has_its_frames() {
    for (backend, database) in common::databases() {
        let dir = common::temp_dir("missing-log");
        let (tables, files) = sample();
        let stream = encode(&tables, &files, 4096);
        let ranges = frames(&stream);
        let (sent, emptied, empty) = {
            let imports = open(&database, &dir);
            let mut sent = Vec::new();
            for _ in 0..2 {
                let id = imports.create(ImportMode::Replace, None).unwrap().id;
                for (seq, range) in ranges.iter().take(3).enumerate() {
                    imports
                        .append(&id, seq as u64, &stream[range.clone()])
                        .unwrap();
                }
                sent.push(id);
            }
            let empty = imports.create(ImportMode::Replace, None).unwrap().id;
            (sent[0].clone(), sent[1].clone(), empty)
        };
        for id in [&sent, &empty] {
            std::fs::remove_dir_all(dir.join("imports").join(id)).unwrap();
        }
        // Emptied, as by hand: no frame of it is left to replay.
        let log = dir.join("imports").join(&emptied).join("stream.snappack");
        std::fs::write(log, b"").unwrap();
        let imports = open(&database, &dir);
        for id in [&sent, &emptied] {
            let status = imports.status(id).unwrap();
            assert_eq!(status.state, ImportState::Cancelled, "{backend}");
            let error = status.error.unwrap_or_default();
            assert!(
                error.contains("staging log")
                    && error.contains("is missing or empty, but the database has frames of it"),
                "{backend}: {error}"
            );
        }
        let status = imports.status(&empty).unwrap();
        assert_eq!(status.state, ImportState::Open, "{backend}");
        assert_eq!(status.next_seq, Some(0), "{backend}");
    }
}

/// A frame damaged on disk in the middle of the log: the restart cuts the
/// log there, the client sends the frames from there again, and every
/// document lands once (the database already had some of them).
#[test]
fn a_log_damaged_in_the_middle_is_cut_there_and_sent_again() {
    for (backend, database) in common::databases() {
        let dir = common::temp_dir("damaged");
        let (tables, files) = sample();
        let stream = encode(&tables, &files, 4096);
        let ranges = frames(&stream);
        let last = ranges.len() - 1;
        let id = {
            let imports = open(&database, &dir);
            let id = imports.create(ImportMode::Replace, None).unwrap().id;
            for (seq, range) in ranges.iter().take(last).enumerate() {
                imports
                    .append(&id, seq as u64, &stream[range.clone()])
                    .unwrap();
            }
            id
        };
        let damaged = last / 2;
        let log = dir.join("imports").join(&id).join("stream.snappack");
        let mut bytes = std::fs::read(&log).unwrap();
        bytes[ranges[damaged].end - 1] ^= 0x55;
        std::fs::write(&log, &bytes).unwrap();

        let imports = open(&database, &dir);
        let status = imports.status(&id).unwrap();
        assert_eq!(status.next_seq, Some(damaged as u64), "{backend}");
        assert_eq!(
            status.received_bytes,
            Some(ranges[damaged].start as u64),
            "{backend}"
        );
        assert_eq!(
            status.prefix_crc32,
            Some(prefix_crc32(&stream, damaged)),
            "{backend}"
        );
        send_all(&imports, &id, &stream, damaged);
        imports.finish(&id).unwrap();
        assert_landed(&imports, &tables, &files);
    }
}

/// A restart with a --max-frame-size below the frames an open import was
/// sent in: the start fails, naming the import and both sizes, and nothing
/// of the import is cut or dropped (its log holds acknowledged frames the
/// database has): back at the old limit, it goes on and finishes.
#[test]
fn a_lowered_frame_limit_under_an_open_import_stops_the_start_and_loses_nothing() {
    for (backend, database) in common::databases() {
        let dir = common::temp_dir("lowered-limit");
        let (tables, files) = sample();
        let stream = encode(&tables, &files, 8192);
        let ranges = frames(&stream);
        let id = {
            let imports = open(&database, &dir);
            let id = imports.create(ImportMode::Replace, None).unwrap().id;
            for (seq, range) in ranges.iter().take(3).enumerate() {
                imports
                    .append(&id, seq as u64, &stream[range.clone()])
                    .unwrap();
            }
            id
        };
        let store: Arc<dyn Store> = store::open(&database).unwrap().into();
        let limits = Limits {
            max_frame_size: 4096,
        };
        let Err(refused) = Imports::open(store, &dir, limits) else {
            panic!("{backend}: the server starts under the import's frames");
        };
        let why = refused.to_string();
        for part in [id.as_str(), "8192", "4096", "--max-frame-size"] {
            assert!(why.contains(part), "{backend}: {part} in {why}");
        }
        let imports = open(&database, &dir);
        assert_eq!(imports.status(&id).unwrap().next_seq, Some(3), "{backend}");
        send_all(&imports, &id, &stream, 3);
        imports.finish(&id).unwrap();
        assert_landed(&imports, &tables, &files);
    }
}

#[test]
fn frames_logged_but_not_in_the_database_are_replayed_on_restart() {
    for (backend, database) in common::databases() {
        let dir = common::temp_dir("replay");
        let (tables, files) = sample();
        let stream = encode(&tables, &files, 4096);
        let ranges = frames(&stream);
        let id = open(&database, &dir)
            .create(ImportMode::RequireEmpty, None)
            .unwrap()
            .id;
        // A crash after the log's fsync, before the database write: the log
        // holds frames the store never saw.
        let log = dir.join("imports").join(&id).join("stream.snappack");
        std::fs::write(&log, &stream[..ranges[5].end]).unwrap();
        let imports = open(&database, &dir);
        assert_eq!(imports.status(&id).unwrap().next_seq, Some(6), "{backend}");
        send_all(&imports, &id, &stream, 6);
        imports.finish(&id).unwrap();
        assert_landed(&imports, &tables, &files);
        // A crash after the commit that finished it, before its log was
        // removed: the next start removes it.
        drop(imports);
        std::fs::create_dir_all(log.parent().unwrap()).unwrap();
        std::fs::write(&log, &stream).unwrap();
        let imports = open(&database, &dir);
        assert!(
            !log.parent().unwrap().exists(),
            "{backend}: the finished import's log is gone"
        );
        assert_eq!(imports.status(&id).unwrap().state, ImportState::Finished);
    }
}

#[test]
fn refused_frames_keep_the_import_resumable() {
    for (backend, database) in common::databases() {
        let dir = common::temp_dir("refused");
        let imports = open(&database, &dir);
        let (tables, files) = sample();
        let stream = encode(&tables, &files, 4096);
        let ranges = frames(&stream);
        let id = imports.create(ImportMode::RequireEmpty, None).unwrap().id;
        for (seq, range) in ranges.iter().take(3).enumerate() {
            imports
                .append(&id, seq as u64, &stream[range.clone()])
                .unwrap();
        }
        let frame3 = &stream[ranges[3].clone()];
        // A corrupted frame.
        let mut corrupt = frame3.to_vec();
        let last = corrupt.len() - 1;
        corrupt[last] ^= 0x55;
        match imports.append(&id, 3, &corrupt) {
            Err(ImportsError::Frame { seq: 3, error }) => assert_eq!(error.code(), "Checksum"),
            other => panic!("{backend}: {other:?}"),
        }
        // A gap and a replay.
        let frame4 = &stream[ranges[4].clone()];
        assert!(matches!(
            imports.append(&id, 4, frame4),
            Err(ImportsError::Sequence {
                expected: 3,
                got: 4
            })
        ));
        assert!(matches!(
            imports.append(&id, 2, &stream[ranges[2].clone()]),
            Err(ImportsError::Sequence { expected: 3, .. })
        ));
        // A body cut inside a frame.
        assert!(matches!(
            imports.append(&id, 3, &frame3[..frame3.len() / 2]),
            Err(ImportsError::Truncated { seq: 3, .. })
        ));
        // A frame sent with its sequence number but meant for another place.
        assert!(matches!(
            imports.append(&id, 3, frame4),
            Err(ImportsError::Frame { seq: 3, .. })
        ));
        // Two frames in one request.
        let both = [frame3, frame4].concat();
        let appended = imports.append(&id, 3, &both).unwrap();
        assert_eq!((appended.frames, appended.next_seq), (2, 5), "{backend}");
        send_all(&imports, &id, &stream, 5);
        imports.finish(&id).unwrap();
        assert_landed(&imports, &tables, &files);
    }
}

#[test]
fn a_refused_first_request_leaves_frame_0_to_be_sent_with_the_header_again() {
    for (backend, database) in common::databases() {
        let dir = common::temp_dir("first");
        let imports = open(&database, &dir);
        let (tables, files) = sample();
        let stream = encode(&tables, &files, 4096);
        let frame0 = &stream[frames(&stream)[0].clone()];
        let id = imports.create(ImportMode::RequireEmpty, None).unwrap().id;
        // The header and a damaged frame 0.
        let mut damaged = frame0.to_vec();
        let last = damaged.len() - 1;
        damaged[last] ^= 0x55;
        match imports.append(&id, 0, &damaged) {
            Err(ImportsError::Frame { seq: 0, error }) => assert_eq!(error.code(), "Checksum"),
            other => panic!("{backend}: {other:?}"),
        }
        // The header alone, and the header with part of frame 0.
        for cut in [20, 40] {
            match imports.append(&id, 0, &frame0[..cut]) {
                Err(ImportsError::Truncated { seq: 0, partial }) => assert_eq!(partial, cut as u64),
                other => panic!("{backend}: {other:?}"),
            }
        }
        let status = imports.status(&id).unwrap();
        assert_eq!(
            (status.next_seq, status.received_bytes),
            (Some(0), Some(0)),
            "{backend}"
        );
        // Then the whole first request, as PROTOCOL says it starts.
        send_all(&imports, &id, &stream, 0);
        imports.finish(&id).unwrap();
        assert_landed(&imports, &tables, &files);
    }
}

#[test]
fn a_stored_file_in_a_bad_component_is_refused_like_a_table_there() {
    let (_, database) = common::databases().remove(0);
    let dir = common::temp_dir("file-component");
    let imports = open(&database, &dir);
    let file = StreamFile {
        component: "../..".into(),
        id: DocumentId::new(540, [3; 16]).to_string(),
        data: b"hello".to_vec(),
    };
    let stream = encode(&[], &[file], 4096);
    let id = imports.create(ImportMode::RequireEmpty, None).unwrap().id;
    let refused = (0..frames(&stream).len()).find_map(|seq| {
        match imports.append(&id, seq as u64, &stream[frames(&stream)[seq].clone()]) {
            Ok(_) => None,
            Err(ImportsError::Rejected(r)) => Some(r),
            Err(e) => panic!("{e}"),
        }
    });
    let r = refused.expect("the file is refused");
    assert_eq!(
        (r.code, r.component.as_str()),
        ("InvalidComponentName", "../..")
    );
    assert!(
        r.message.starts_with("component name '..' invalid"),
        "{}",
        r.message
    );
}

#[test]
fn imports_idle_for_too_long_are_cancelled_and_the_others_go_on() {
    let (_, database) = common::databases().remove(0);
    let dir = common::temp_dir("expire");
    let imports = open(&database, &dir);
    let (tables, files) = sample();
    let stream = encode(&tables, &files, 4096);
    let frame0 = &stream[frames(&stream)[0].clone()];
    let idle = imports.create(ImportMode::RequireEmpty, None).unwrap().id;
    let busy = imports.create(ImportMode::RequireEmpty, None).unwrap().id;
    for id in [&idle, &busy] {
        imports.append(id, 0, frame0).unwrap();
    }
    // The idle one last received a frame eight days ago.
    let log = dir.join("imports").join(&idle).join("stream.snappack");
    let eight_days = std::time::Duration::from_secs(8 * 24 * 3600);
    std::fs::File::options()
        .write(true)
        .open(&log)
        .unwrap()
        .set_modified(std::time::SystemTime::now() - eight_days)
        .unwrap();
    let week = std::time::Duration::from_secs(7 * 24 * 3600);
    assert_eq!(imports.expire(week).unwrap(), vec![idle.clone()]);
    assert!(!log.exists(), "its staging log is gone");
    assert!(matches!(
        imports.append(&idle, 1, frame0),
        Err(ImportsError::NotOpen { .. } | ImportsError::Unknown(_))
    ));
    // Its status says why it was cancelled.
    let status = imports.status(&idle).unwrap();
    assert_eq!(status.state, ImportState::Cancelled);
    assert_eq!(
        status.error.as_deref(),
        Some("expired: nothing was received for more than 7 days")
    );
    assert_eq!(imports.expire(week).unwrap(), Vec::<String>::new());
    send_all(&imports, &busy, &stream, 1);
    imports.finish(&busy).unwrap();
    assert_landed(&imports, &tables, &files);
}

/// Open file descriptors of this process.
#[cfg(target_os = "linux")]
fn open_descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[cfg(target_os = "linux")]
#[test]
fn imports_left_open_hold_no_file_descriptors() {
    let (_, database) = common::databases().remove(0);
    let dir = common::temp_dir("descriptors");
    let imports = open(&database, &dir);
    let (tables, files) = sample();
    let stream = encode(&tables, &files, 4096);
    let frame0 = &stream[frames(&stream)[0].clone()];
    let first = imports.create(ImportMode::RequireEmpty, None).unwrap().id;
    imports.append(&first, 0, frame0).unwrap();
    // And imports stopped inside a stored file.
    let big = StreamFile {
        component: String::new(),
        id: DocumentId::new(540, [9; 16]).to_string(),
        data: (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect(),
    };
    let with_file = encode(&[], &[big], 4096);
    let first_ten = &with_file[frames(&with_file)[0].start..frames(&with_file)[9].end];
    let before = open_descriptors();
    for _ in 0..40 {
        let id = imports.create(ImportMode::RequireEmpty, None).unwrap().id;
        imports.append(&id, 0, frame0).unwrap();
        let id = imports.create(ImportMode::RequireEmpty, None).unwrap().id;
        imports.append(&id, 0, first_ten).unwrap();
    }
    let after = open_descriptors();
    // Other tests of this binary open and close files meanwhile: a margin,
    // well below the 40 or 80 descriptors one per import would hold.
    assert!(
        after < before + 25,
        "{before} descriptors before 80 more open imports, {after} after"
    );
}

#[test]
fn a_rejected_document_names_table_line_and_frame_and_leaves_no_trace() {
    for (backend, database) in common::databases() {
        let dir = common::temp_dir("rejected");
        let imports = open(&database, &dir);
        let before: Vec<_> = imports.store().tables().unwrap();
        let mut users = numbered_table("users", 10001, 400, 1);
        users.lines[300] = users.lines[10].clone();
        let stream = encode(&[users], &[], 4096);
        let ranges = frames(&stream);
        let id = imports.create(ImportMode::RequireEmpty, None).unwrap().id;
        let mut rejected = None;
        for (seq, range) in ranges.iter().enumerate() {
            match imports.append(&id, seq as u64, &stream[range.clone()]) {
                Ok(_) => {}
                Err(ImportsError::Rejected(r)) => {
                    rejected = Some(r);
                    break;
                }
                Err(e) => panic!("{backend}: {e}"),
            }
        }
        let r = rejected.expect("the duplicate is rejected");
        assert_eq!(r.code, "DuplicateId", "{backend}");
        assert_eq!(r.table.as_deref(), Some("users"));
        assert_eq!(r.line, Some(301));
        assert!(r.seq > 0);
        // The import stays at the rejected frame.
        let status = imports.status(&id).unwrap();
        assert_eq!(status.next_seq, Some(r.seq), "{backend}");
        let crc = prefix_crc32(&stream, r.seq as usize);
        assert_eq!(status.prefix_crc32, Some(crc), "{backend}");
        // Sending it again gets the same answer.
        let again = imports.append(&id, r.seq, &stream[ranges[r.seq as usize].clone()]);
        assert!(matches!(again, Err(ImportsError::Rejected(ref again)) if again.line == Some(301)));
        // The frame before it and it in one request: the first is taken, and
        // the CRC-32 is of the frames taken only.
        let other = imports.create(ImportMode::RequireEmpty, None).unwrap().id;
        let last = r.seq as usize - 1;
        for (seq, range) in ranges.iter().take(last).enumerate() {
            imports
                .append(&other, seq as u64, &stream[range.clone()])
                .unwrap();
        }
        let both = &stream[ranges[last].start..ranges[last + 1].end];
        let both = imports.append(&other, last as u64, both);
        assert!(matches!(both, Err(ImportsError::Rejected(_))), "{both:?}");
        let status = imports.status(&other).unwrap();
        assert_eq!(status.next_seq, Some(r.seq), "{backend}");
        assert_eq!(status.prefix_crc32, Some(crc), "{backend}");
        imports.cancel(&other).unwrap();
        imports.cancel(&id).unwrap();
        assert_eq!(imports.store().tables().unwrap(), before, "{backend}");
        assert_eq!(imports.store().hidden_tables().unwrap(), 0, "{backend}");
        assert!(matches!(
            imports.append(&id, 0, &stream),
            Err(ImportsError::NotOpen {
                state: ImportState::Cancelled,
                ..
            })
        ));
        assert!(matches!(
            imports.status("nope"),
            Err(ImportsError::Unknown(_))
        ));
    }
}

#[test]
fn a_number_taken_from_the_target_is_decided_again_at_finish() {
    use snappack::migration::{Encoder, EncoderConfig, Header, TableDecl, Totals};
    use snappack::report::NumberSource;
    for (backend, database) in common::databases() {
        let dir = common::temp_dir("target");
        let imports = open(&database, &dir);
        // The server has `users` at 10001.
        let first = encode(&[numbered_table("users", 10001, 3, 1)], &[], 4096);
        let id = imports.create(ImportMode::RequireEmpty, None).unwrap().id;
        imports.append(&id, 0, &first).unwrap();
        imports.finish(&id).unwrap();
        // A client that saw `users` at 10005 (the server's tables changed since)
        // declares that number with source "target", for documents without ids.
        let mut encoder = Encoder::new(
            Vec::new(),
            EncoderConfig::default(),
            Header::new("t", 0, Totals::default()),
        )
        .unwrap();
        let table = encoder
            .table(TableDecl {
                component: String::new(),
                name: "users".into(),
                number: Some(10005),
                number_source: NumberSource::Target,
                rules: ValueRules::Plain,
                expected_documents: 1,
            })
            .unwrap();
        encoder.document(table, br#"{"name":"new"}"#).unwrap();
        encoder.end_table(table).unwrap();
        let stream = encoder.finish().unwrap().0;
        let id = imports.create(ImportMode::Append, None).unwrap().id;
        imports.append(&id, 0, &stream).unwrap();
        let activated = imports.finish(&id).unwrap();
        assert_eq!(
            (activated[0].number, activated[0].appended),
            (10001, true),
            "{backend}"
        );
        assert_eq!(
            imports.store().tables().unwrap()[0].documents,
            4,
            "{backend}"
        );
    }
}

#[test]
fn storage_rows_are_checked_against_their_files() {
    for (backend, database) in common::databases() {
        let dir = common::temp_dir("storage");
        let imports = open(&database, &dir);
        let with_file = DocumentId::new(540, [1; 16]).to_string();
        let without_file = DocumentId::new(540, [2; 16]).to_string();
        let data = b"foobarbaz".to_vec();
        let storage = |rows: Vec<String>| StreamTable {
            component: String::new(),
            name: "_storage".into(),
            number: Some(540),
            rules: ValueRules::Plain,
            lines: rows,
        };
        let file = StreamFile {
            component: String::new(),
            id: with_file.clone(),
            data: data.clone(),
        };
        // A row without its file is skipped, as Convex skips it; a file
        // without a row gets one with its id, digest and size.
        let without_row = DocumentId::new(540, [3; 16]).to_string();
        let unlisted = StreamFile {
            component: String::new(),
            id: without_row.clone(),
            data: b"no row for me".to_vec(),
        };
        let stream = encode(
            &[storage(vec![
                storage_row(&with_file, &data),
                storage_row(&without_file, b"gone"),
            ])],
            &[file.clone(), unlisted],
            4096,
        );
        let id = imports.create(ImportMode::Replace, None).unwrap().id;
        imports.append(&id, 0, &stream).unwrap();
        imports.finish(&id).unwrap();
        let default_row = format!(
            r#"{{"_id":"{without_row}","sha256":"{}","size":13}}"#,
            base64(&<sha2::Sha256 as sha2::Digest>::digest(b"no row for me"))
        );
        assert_eq!(
            sorted(&stored_lines(&imports, "", "_storage")),
            sorted(&[storage_row(&with_file, &data), default_row]),
            "{backend}"
        );

        // A file whose bytes are not its row's digest: Sha256Mismatch.
        let stream = encode(
            &[storage(vec![storage_row(&with_file, b"other bytes")])],
            std::slice::from_ref(&file),
            4096,
        );
        let id = imports.create(ImportMode::Replace, None).unwrap().id;
        match imports.append(&id, 0, &stream) {
            Err(ImportsError::Rejected(r)) => {
                assert_eq!(r.code, "Sha256Mismatch", "{backend}");
                assert!(
                    r.message.starts_with("Sha256 mismatch. Expected: "),
                    "{}",
                    r.message
                );
            }
            other => panic!("{backend}: {other:?}"),
        }
        // A creation time of 0 reads fine, but the row of a file that came
        // is inserted as a document, which refuses it.
        let zero = format!(r#"{{"_id":"{with_file}","_creationTime":0}}"#);
        let stream = encode(&[storage(vec![zero])], std::slice::from_ref(&file), 4096);
        let id = imports.create(ImportMode::Replace, None).unwrap().id;
        match imports.append(&id, 0, &stream) {
            Err(ImportsError::Rejected(r)) => {
                assert_eq!(r.code, "InvalidDocumentError", "{backend}");
                assert_eq!(r.field.as_deref(), Some("_creationTime"), "{backend}");
            }
            other => panic!("{backend}: {other:?}"),
        }
        // Two rows of one file: the later one is stored, as in Convex,
        // with the file's digest and size where it gives none (what finds
        // the file in the file store).
        let later = format!(r#"{{"_id":"{with_file}","contentType":"text/plain","size":null}}"#);
        let stream = encode(
            &[storage(vec![storage_row(&with_file, &data), later.clone()])],
            std::slice::from_ref(&file),
            4096,
        );
        let id = imports.create(ImportMode::Replace, None).unwrap().id;
        imports.append(&id, 0, &stream).unwrap();
        imports.finish(&id).unwrap();
        let digest = base64(&<sha2::Sha256 as sha2::Digest>::digest(&data));
        assert_eq!(
            stored_lines(&imports, "", "_storage"),
            vec![format!(
                r#"{{"_id":"{with_file}","contentType":"text/plain","size":9,"sha256":"{digest}"}}"#
            )],
            "{backend}"
        );
        // A row Convex cannot read: InvalidConvexValue.
        let stream = encode(
            &[storage(vec![format!(
                r#"{{"_id":"{with_file}","sha256":"x"}}"#
            )])],
            &[],
            4096,
        );
        let id = imports.create(ImportMode::Replace, None).unwrap().id;
        match imports.append(&id, 0, &stream) {
            Err(ImportsError::Rejected(r)) => {
                assert_eq!(
                    (r.code, r.line),
                    ("InvalidConvexValue", Some(1)),
                    "{backend}"
                )
            }
            other => panic!("{backend}: {other:?}"),
        }
    }
}

/// A line that goes on across frames is refused once it is longer than any
/// line is read, not kept growing until it ends.
#[test]
fn a_line_split_across_frames_is_refused_once_too_long() {
    let (_, database) = common::databases().remove(0);
    let dir = common::temp_dir("long-line");
    let imports = open(&database, &dir);
    let mut long = String::from("{\"a\":\"");
    long.push_str(&"x".repeat(72 << 20));
    let table = StreamTable {
        lines: vec![long],
        ..numbered_table("t", 10001, 0, 0)
    };
    let stream = encode(&[table], &[], 4 << 20);
    let ranges = frames(&stream);
    let id = imports.create(ImportMode::RequireEmpty, None).unwrap().id;
    let mut refused = None;
    for (seq, range) in ranges.iter().enumerate() {
        if let Err(e) = imports.append(&id, seq as u64, &stream[range.clone()]) {
            refused = Some((seq, e));
            break;
        }
    }
    let Some((seq, ImportsError::Rejected(r))) = refused else {
        panic!("{refused:?}");
    };
    assert_eq!((r.code, r.line), ("ValueTooLargeError", Some(1)));
    assert!(
        seq < ranges.len() - 1,
        "refused before the line ended, at frame {seq}"
    );
}

/// A stream that declares more user tables than a deployment takes is
/// refused at the declaration, not after its hidden tables were made.
#[test]
fn more_tables_than_a_deployment_takes_are_refused_when_declared() {
    let (_, database) = common::databases().remove(0);
    let dir = common::temp_dir("many-tables");
    let imports = open(&database, &dir);
    let tables: Vec<StreamTable> = (0..10_001)
        .map(|i| StreamTable {
            lines: Vec::new(),
            ..numbered_table(&format!("t{i}"), 10_001 + i, 0, 0)
        })
        .collect();
    let stream = encode(&tables, &[], 1 << 20);
    let id = imports.create(ImportMode::RequireEmpty, None).unwrap().id;
    let first = frames(&stream)[0].clone();
    match imports.append(&id, 0, &stream[first]) {
        Err(ImportsError::Rejected(r)) => {
            assert_eq!(r.code, "TooManyTables");
            assert_eq!(r.table.as_deref(), Some("t10000"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(imports.store().hidden_tables().unwrap(), 0);
}

/// A `_storage` table and its files, one per seed, and their digests.
fn with_files(seeds: &[u8]) -> (Vec<StreamTable>, Vec<StreamFile>, Vec<[u8; 32]>) {
    use sha2::Digest;
    let mut storage = StreamTable {
        component: String::new(),
        name: "_storage".into(),
        number: Some(540),
        rules: ValueRules::Plain,
        lines: Vec::new(),
    };
    let (mut files, mut digests) = (Vec::new(), Vec::new());
    for &seed in seeds {
        let id = DocumentId::new(540, [seed; 16]).to_string();
        let data: Vec<u8> = (0..5000u32).map(|i| (i as u8).wrapping_mul(seed)).collect();
        digests.push(sha2::Sha256::digest(&data).into());
        storage.lines.push(storage_row(&id, &data));
        files.push(StreamFile {
            component: String::new(),
            id,
            data,
        });
    }
    (vec![storage], files, digests)
}

/// An append import that received every frame of `tables` but the last
/// (its files are in, the rows at its end are not): its id.
fn open_with_its_files(
    imports: &Imports,
    (tables, files, _): &(Vec<StreamTable>, Vec<StreamFile>, Vec<[u8; 32]>),
) -> String {
    let id = imports.create(ImportMode::Append, None).unwrap().id;
    let stream = encode(tables, files, 1024);
    let ranges = frames(&stream);
    let before_done = ranges.len() - 1;
    for (seq, range) in ranges.into_iter().take(before_done).enumerate() {
        imports.append(&id, seq as u64, &stream[range]).unwrap();
    }
    id
}

/// Stored files that no `_storage` row refers to (left by a cancelled
/// import) are removed at the next start with no import open; those of a
/// finished import stay, and so do an open import's, whose rows come at its
/// end.
#[test]
fn files_of_imports_that_did_not_finish_are_removed_at_a_start() {
    for (backend, database) in common::databases() {
        let dir = common::temp_dir("sweep");
        let (finished, cancelled, open_one) =
            (with_files(&[3]), with_files(&[5]), with_files(&[7, 9]));
        let open_id = {
            let imports = open(&database, &dir);
            let id = imports.create(ImportMode::Append, None).unwrap().id;
            send_all(&imports, &id, &encode(&finished.0, &finished.1, 4096), 0);
            imports.finish(&id).unwrap();
            // Left open with its first file in, and the frames with the rows not.
            let open_id = open_with_its_files(&imports, &open_one);
            assert!(imports.files().contains(&open_one.2[0]), "{backend}");
            let id = imports.create(ImportMode::Append, None).unwrap().id;
            send_all(&imports, &id, &encode(&cancelled.0, &cancelled.1, 4096), 0);
            imports.cancel(&id).unwrap();
            assert!(imports.files().contains(&cancelled.2[0]), "{backend}");
            open_id
        };
        // A start with an import open keeps every file.
        let imports = open(&database, &dir);
        for sha256 in [finished.2[0], cancelled.2[0], open_one.2[0]] {
            assert!(imports.files().contains(&sha256), "{backend}");
        }
        // With none open, the cancelled import's file goes; the others stay.
        imports.cancel(&open_id).unwrap();
        drop(imports);
        let imports = open(&database, &dir);
        assert!(imports.files().contains(&finished.2[0]), "{backend}");
        assert!(!imports.files().contains(&cancelled.2[0]), "{backend}");
        assert!(!imports.files().contains(&open_one.2[0]), "{backend}");
        assert_landed(&imports, &finished.0, &finished.1);
    }
}

/// An open import's status comes from the server's own state: it reads
/// nothing from the database, which on SQLite would wait behind a write.
#[test]
fn an_open_imports_status_reads_nothing_from_the_database() {
    for (backend, database) in common::databases() {
        let dir = common::temp_dir("status-no-read");
        let store = Arc::new(FailingWrite::new(&database, usize::MAX, false));
        let imports = Imports::open(store.clone(), &dir, Limits::default()).unwrap();
        let id = imports
            .create(ImportMode::Replace, Some("mine"))
            .unwrap()
            .id;
        // The next read of an import fails: this status must not make one.
        store.down.store(true, Ordering::SeqCst);
        let status = imports.status(&id).unwrap();
        assert_eq!(
            (
                status.state,
                status.mode,
                status.next_seq,
                status.label.as_deref()
            ),
            (
                ImportState::Open,
                ImportMode::Replace,
                Some(0),
                Some("mine")
            ),
            "{backend}"
        );
        assert!(
            store.down.load(Ordering::SeqCst),
            "{backend}: the database was read"
        );
    }
}

/// A store whose first write of the `fail_at`-th frame (counting from 1)
/// fails, whichever write holds it (requests that arrive while a write runs
/// are written together); with `outage`, the store is down for the next
/// read of an import too.
struct FailingWrite {
    inner: Box<dyn Store>,
    writes: AtomicUsize,
    fail_at: usize,
    failed: AtomicBool,
    outage: bool,
    down: AtomicBool,
    /// Reading an active table's documents fails (as the sweep does).
    documents_down: AtomicBool,
    /// When set, the first write of frames waits for a message on it.
    hold_first: Mutex<Option<mpsc::Receiver<()>>>,
    /// The frames (sequence numbers) each write of frames was given.
    batches: Mutex<Vec<Vec<u64>>>,
}

impl FailingWrite {
    fn new(database: &str, fail_at: usize, outage: bool) -> Self {
        FailingWrite {
            inner: store::open(database).unwrap(),
            writes: AtomicUsize::new(0),
            fail_at,
            failed: AtomicBool::new(false),
            outage,
            down: AtomicBool::new(false),
            documents_down: AtomicBool::new(false),
            hold_first: Mutex::new(None),
            batches: Mutex::new(Vec::new()),
        }
    }
}

impl Store for FailingWrite {
    fn tables(&self) -> Result<Vec<store::TargetTable>, store::StoreError> {
        self.inner.tables()
    }
    fn create_import(
        &self,
        id: &str,
        mode: ImportMode,
        label: Option<&str>,
        target: Option<&store::ImportTarget>,
    ) -> Result<(), store::StoreError> {
        self.inner.create_import(id, mode, label, target)
    }
    fn imports(&self) -> Result<Vec<store::ImportRecord>, store::StoreError> {
        self.inner.imports()
    }
    fn imports_page(
        &self,
        query: store::ImportsQuery<'_>,
    ) -> Result<store::ImportsPage, store::StoreError> {
        self.inner.imports_page(query)
    }
    fn import(&self, id: &str) -> Result<store::ImportRecord, store::StoreError> {
        if self.down.swap(false, Ordering::SeqCst) {
            return Err(store::StoreError::Database("connection refused".into()));
        }
        self.inner.import(id)
    }
    fn write_frames(
        &self,
        import: &str,
        frames: &[store::FrameWrite<'_>],
    ) -> Result<(), store::StoreError> {
        let n = 1 + self.writes.fetch_add(1, Ordering::SeqCst);
        let seqs = frames.iter().map(|frame| frame.seq).collect();
        self.batches.lock().unwrap().push(seqs);
        if n == 1 {
            if let Some(held) = self.hold_first.lock().unwrap().take() {
                let _ = held.recv();
            }
        }
        let fails = frames
            .iter()
            .any(|frame| frame.seq + 1 == self.fail_at as u64);
        if fails && !self.failed.swap(true, Ordering::SeqCst) {
            self.down.store(self.outage, Ordering::SeqCst);
            return Err(store::StoreError::Database("the disk is full".into()));
        }
        self.inner.write_frames(import, frames)
    }
    fn finish_import_locating(
        &self,
        import: &str,
        lines: &store::DocumentLines<'_>,
    ) -> Result<Vec<store::ActivatedTable>, store::StoreError> {
        self.inner.finish_import_locating(import, lines)
    }
    fn cancel_import(&self, import: &str, reason: Option<&str>) -> Result<(), store::StoreError> {
        self.inner.cancel_import(import, reason)
    }
    fn fail_import(
        &self,
        import: &str,
        error: &store::ImportError,
    ) -> Result<(), store::StoreError> {
        self.inner.fail_import(import, error)
    }
    fn observe_tables(
        &self,
        tables: &[(&str, &str)],
    ) -> Result<Vec<store::Observed>, store::StoreError> {
        self.inner.observe_tables(tables)
    }
    fn changed_table(&self, import: &str) -> Result<Option<store::ImportError>, store::StoreError> {
        self.inner.changed_table(import)
    }
    fn claim_data_folder(&self, folder: &str) -> Result<Option<String>, store::StoreError> {
        self.inner.claim_data_folder(folder)
    }
    fn data_folder(&self) -> Result<Option<String>, store::StoreError> {
        self.inner.data_folder()
    }
    fn hidden_tables(&self) -> Result<u64, store::StoreError> {
        self.inner.hidden_tables()
    }
    fn drop_ended_tables(&self) -> Result<u64, store::StoreError> {
        self.inner.drop_ended_tables()
    }
    fn documents(
        &self,
        component: &str,
        table: &str,
    ) -> Result<Option<Vec<store::StoredDocument>>, store::StoreError> {
        if self.documents_down.load(Ordering::SeqCst) {
            return Err(store::StoreError::Database("connection refused".into()));
        }
        self.inner.documents(component, table)
    }
}

/// A sweep of the stored files that fails, when an import ends or at a
/// start, is said and tried again later: the start goes on (the server
/// serves meanwhile), and the file is removed once a sweep can be made.
#[test]
fn a_sweep_that_fails_does_not_stop_a_start_and_is_tried_again() {
    for (backend, database) in common::databases() {
        let dir = common::temp_dir("sweep-fails");
        // The first file of the second is in before its last frame.
        let (finished, cancelled) = (with_files(&[3]), with_files(&[5, 7]));
        let store = Arc::new(FailingWrite::new(&database, usize::MAX, false));
        {
            let imports = Imports::open(store.clone(), &dir, Limits::default()).unwrap();
            let id = imports.create(ImportMode::Append, None).unwrap().id;
            send_all(&imports, &id, &encode(&finished.0, &finished.1, 4096), 0);
            imports.finish(&id).unwrap();
            let id = open_with_its_files(&imports, &cancelled);
            assert!(imports.files().contains(&cancelled.2[0]), "{backend}");
            store.documents_down.store(true, Ordering::SeqCst);
            imports.cancel(&id).unwrap();
        }
        // Still due, and still failing: the start goes on.
        let imports = Imports::open(store.clone(), &dir, Limits::default())
            .unwrap_or_else(|e| panic!("{backend}: {e}"));
        assert!(imports.files().sweep_due(), "{backend}");
        assert!(imports.files().contains(&cancelled.2[0]), "{backend}");
        let id = imports.create(ImportMode::Append, None).unwrap().id;
        imports.cancel(&id).unwrap();
        // Tried again once the database answers.
        store.documents_down.store(false, Ordering::SeqCst);
        imports.retry_sweep();
        assert!(!imports.files().sweep_due(), "{backend}");
        assert!(!imports.files().contains(&cancelled.2[0]), "{backend}");
        assert!(imports.files().contains(&finished.2[0]), "{backend}");
    }
}

/// Documents go into the store after a request is answered, while the next
/// is checked. A write that fails there loses nothing: its frames are in
/// the staging log, and the import writes them again, in order, before it
/// goes on or finishes, whichever request's write it was.
#[test]
fn a_store_write_that_fails_after_the_answer_is_made_good_from_the_log() {
    let (tables, files) = sample();
    let stream = encode(&tables, &files, 4096);
    let requests = frames(&stream).len();
    for fail_at in [1, 2, requests / 2, requests] {
        for (backend, database) in common::databases() {
            let dir = common::temp_dir("failing-write");
            let store = FailingWrite::new(&database, fail_at, false);
            let imports = Imports::open(Arc::new(store), &dir, Limits::default()).unwrap();
            let id = imports.create(ImportMode::RequireEmpty, None).unwrap().id;
            send_all(&imports, &id, &stream, 0);
            imports
                .finish(&id)
                .unwrap_or_else(|e| panic!("{backend}, the write of frame {fail_at} failed: {e}"));
            assert_landed(&imports, &tables, &files);
        }
    }
}

/// A new import of a stream whose first store write is held, and the
/// thread that sends the stream's other frames meanwhile.
struct HeldFirstWrite {
    id: String,
    /// Lets the held write go. Declared after the imports, it is dropped
    /// before them (which wait for the write) when an assertion fails.
    release: mpsc::Sender<()>,
    /// What each frame from the second on was answered: the import's next
    /// `seq`, or the error.
    answers: mpsc::Receiver<Result<u64, ImportsError>>,
    sender: std::thread::JoinHandle<()>,
}

/// Creates an import of `stream`, appends its first frame and waits until
/// `store` holds its write, then sends the other frames on a thread.
fn hold_first_write_and_send_the_rest(
    store: &FailingWrite,
    imports: &Arc<Imports>,
    stream: &[u8],
) -> HeldFirstWrite {
    let (release, held) = mpsc::channel();
    *store.hold_first.lock().unwrap() = Some(held);
    let id = imports.create(ImportMode::RequireEmpty, None).unwrap().id;
    let ranges = frames(stream);
    imports.append(&id, 0, &stream[ranges[0].clone()]).unwrap();
    while store.writes.load(Ordering::SeqCst) == 0 {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let (answered, answers) = mpsc::channel();
    let sender = {
        let (imports, id, stream) = (imports.clone(), id.clone(), stream.to_vec());
        std::thread::spawn(move || {
            for (seq, range) in ranges.into_iter().enumerate().skip(1) {
                let appended = imports.append(&id, seq as u64, &stream[range]);
                answered.send(appended.map(|a| a.next_seq)).unwrap();
            }
        })
    };
    HeldFirstWrite {
        id,
        release,
        answers,
        sender,
    }
}

/// Requests that arrive while a store write runs are answered at once, and
/// their frames go into the store together, in order, in the next write:
/// a slow store commits less often rather than holding up the requests.
#[test]
fn requests_during_a_store_write_are_answered_and_written_together_after_it() {
    let (tables, files) = sample();
    let stream = encode(&tables, &files, 4096);
    let ranges = frames(&stream);
    assert!(ranges.len() >= 4, "{} frames", ranges.len());
    for (backend, database) in common::databases() {
        let dir = common::temp_dir("writes-together");
        let store = Arc::new(FailingWrite::new(&database, usize::MAX, false));
        let imports = Arc::new(Imports::open(store.clone(), &dir, Limits::default()).unwrap());
        // The first write is held: the other frames are sent meanwhile.
        let HeldFirstWrite {
            id,
            release,
            answers,
            sender,
        } = hold_first_write_and_send_the_rest(&store, &imports, &stream);
        for seq in 1..ranges.len() as u64 {
            let next = answers
                .recv_timeout(std::time::Duration::from_secs(30))
                .unwrap_or_else(|_| panic!("{backend}: frame {seq} was not answered"))
                .unwrap_or_else(|e| panic!("{backend}: frame {seq}: {e}"));
            assert_eq!(next, seq + 1, "{backend}");
        }
        sender.join().unwrap();
        release.send(()).unwrap();
        imports
            .finish(&id)
            .unwrap_or_else(|e| panic!("{backend}: {e}"));
        assert_landed(&imports, &tables, &files);
        let all: Vec<u64> = (1..ranges.len() as u64).collect();
        assert_eq!(
            *store.batches.lock().unwrap(),
            vec![vec![0], all],
            "{backend}"
        );
    }
}

/// Documents queued for an import's store writes beyond the one running
/// before a request waits for it (`QUEUED_BYTES` in the server).
const QUEUED_BYTES: usize = 16 << 20;

/// Bytes of the documents each frame of `stream` holds, as the store
/// writes them (their lines, without the newlines).
fn document_bytes(stream: &[u8]) -> Vec<usize> {
    let mut decoder = Decoder::default();
    decoder
        .decode(stream)
        .map(|frame| {
            frame
                .unwrap()
                .items
                .iter()
                .map(|item| match item {
                    snappack::migration::Item::Documents { data, .. } => {
                        data.len() - data.iter().filter(|&&b| b == b'\n').count()
                    }
                    _ => 0,
                })
                .sum()
        })
        .collect()
}

/// While a store write runs, requests queue theirs; once the queue holds
/// 16 MiB of documents, the next request waits for the running write (the
/// import's memory stays bounded) and is answered only after it: here the
/// first write is held while more than 16 MiB arrive. Nothing is lost or
/// reordered: the queue is written after the held write, the waiting
/// request's frames after it, and the import lands whole.
#[test]
fn a_request_past_the_queued_documents_limit_waits_for_the_running_write() {
    // About 20 MiB of documents, in frames of about 1 MiB.
    let padding = "x".repeat(1000);
    let mut table = numbered_table("users", 10001, 20_000, 1);
    for line in &mut table.lines {
        line.insert_str(line.len() - 1, &format!(r#","padding":"{padding}""#));
    }
    let tables = [table];
    let stream = encode(&tables, &[], 1 << 20);
    let ranges = frames(&stream);
    let sizes = document_bytes(&stream);
    // The first request whose frames arrive with 16 MiB queued behind the held one.
    let mut queued = 0;
    let waits = (1..ranges.len())
        .find(|&seq| {
            let full = queued >= QUEUED_BYTES;
            queued += sizes[seq];
            full
        })
        .expect("the stream is too small to fill the queue");
    assert!(waits + 1 < ranges.len(), "{waits} of {}", ranges.len());
    for (backend, database) in common::databases() {
        let dir = common::temp_dir("queue-full");
        let store = Arc::new(FailingWrite::new(&database, usize::MAX, false));
        let imports = Arc::new(Imports::open(store.clone(), &dir, Limits::default()).unwrap());
        let HeldFirstWrite {
            id,
            release,
            answers,
            sender,
        } = hold_first_write_and_send_the_rest(&store, &imports, &stream);
        let answer = |seq: u64, within: u64| {
            answers
                .recv_timeout(std::time::Duration::from_secs(within))
                .map(|next| next.unwrap_or_else(|e| panic!("{backend}: frame {seq}: {e}")))
        };
        // Answered while the first write is held, until the queue is full.
        for seq in 1..waits as u64 {
            let next = answer(seq, 60)
                .unwrap_or_else(|_| panic!("{backend}: frame {seq} was not answered"));
            assert_eq!(next, seq + 1, "{backend}");
        }
        // Its frames are checked and logged, and it waits.
        let log = dir.join("imports").join(&id).join("stream.snappack");
        let logged = ranges[waits].end as u64;
        for _ in 0..6000 {
            if std::fs::metadata(&log).unwrap().len() >= logged {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(std::fs::metadata(&log).unwrap().len(), logged, "{backend}");
        assert!(
            answer(waits as u64, 1).is_err(),
            "{backend}: frame {waits} was answered with {} bytes queued",
            sizes[1..waits].iter().sum::<usize>()
        );
        assert_eq!(store.writes.load(Ordering::SeqCst), 1, "{backend}");
        release.send(()).unwrap();
        for seq in waits as u64..ranges.len() as u64 {
            let next = answer(seq, 60)
                .unwrap_or_else(|_| panic!("{backend}: frame {seq} was not answered"));
            assert_eq!(next, seq + 1, "{backend}");
        }
        sender.join().unwrap();
        imports
            .finish(&id)
            .unwrap_or_else(|e| panic!("{backend}: {e}"));
        assert_landed(&imports, &tables, &[]);
        // In order, each frame once: the held write, the queue it held up
        // (the waiting request not in it), then the rest.
        let batches = store.batches.lock().unwrap().clone();
        assert_eq!(batches[0], vec![0], "{backend}");
        assert_eq!(
            batches[1],
            (1..waits as u64).collect::<Vec<_>>(),
            "{backend}"
        );
        let all: Vec<u64> = batches.concat();
        assert_eq!(
            all,
            (0..ranges.len() as u64).collect::<Vec<_>>(),
            "{backend}"
        );
    }
}

/// A write that declares a table and fails is made good from the log after
/// another import finished on that table: the import saw the table as it
/// was before, so it can no longer finish (`TableChanged`), as when its
/// write had landed at once; the other import's documents stay.
#[test]
fn a_declaration_written_again_after_another_finish_still_fails_the_import() {
    let mine = encode(&[numbered_table("users", 10001, 300, 1)], &[], 4096);
    let theirs_tables = [numbered_table("users", 10001, 10, 2)];
    let theirs = encode(&theirs_tables, &[], 4096);
    for (backend, database) in common::databases() {
        let dir = common::temp_dir("declared-then-failed");
        // The first write of all, which declares `users` for the first import, fails.
        let store = Arc::new(FailingWrite::new(&database, 1, false));
        let imports = Imports::open(store.clone(), &dir, Limits::default()).unwrap();
        let id = imports.create(ImportMode::Replace, None).unwrap().id;
        let first = frames(&mine)[0].clone();
        imports.append(&id, 0, &mine[first]).unwrap();
        while store.writes.load(Ordering::SeqCst) == 0 {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let other = imports.create(ImportMode::Replace, None).unwrap().id;
        send_all(&imports, &other, &theirs, 0);
        imports.finish(&other).unwrap();
        // The rest is refused once the first write is made good, else the finish is.
        let mut refusal = None;
        for (seq, range) in frames(&mine).into_iter().enumerate().skip(1) {
            if let Err(e) = imports.append(&id, seq as u64, &mine[range]) {
                refusal = Some(e);
                break;
            }
        }
        let refusal = match refusal {
            Some(refusal) => refusal,
            None => imports.finish(&id).expect_err(backend),
        };
        match refusal {
            ImportsError::Refused(e) => {
                assert_eq!(
                    (e.code, e.table.as_deref()),
                    ("TableChanged", Some("users"))
                )
            }
            other => panic!("{backend}: {other:?}"),
        }
        assert_eq!(imports.status(&id).unwrap().state, ImportState::Failed);
        assert_landed(&imports, &theirs_tables, &[]);
    }
}

/// An append refused at finish because a `_storage` row's `_id` exists
/// names the row's line in the import's `_storage` table, as for any
/// other table.
#[test]
fn a_storage_row_that_exists_is_refused_naming_its_line() {
    for (backend, database) in common::databases() {
        let dir = common::temp_dir("storage-exists");
        let imports = open(&database, &dir);
        let (first, again) = (with_files(&[3, 5]), with_files(&[9, 11, 5]));
        for (files, outcome) in [(&first, None), (&again, Some(3))] {
            let id = imports.create(ImportMode::Append, None).unwrap().id;
            send_all(&imports, &id, &encode(&files.0, &files.1, 4096), 0);
            match (imports.finish(&id), outcome) {
                (Ok(_), None) => {}
                (Err(ImportsError::Refused(e)), Some(line)) => assert_eq!(
                    (e.code, e.table.as_deref(), e.line),
                    ("DocumentExists", Some("_storage"), Some(line)),
                    "{backend}"
                ),
                (other, _) => panic!("{backend}: {:?}", other.map(drop)),
            }
        }
    }
}

/// An open import that another import's finish leaves unable to finish (a
/// table it declared changed) is failed at once, not when its client comes
/// back or it expires: its hidden tables and staging folder go, and so do
/// its stored files, which no row refers to, once no import is open. Its
/// status says why, as `tableChanged`, and its frames and its finish meet
/// that refusal, as they did while it was open.
#[test]
fn an_import_that_can_no_longer_finish_lets_go_of_what_it_holds_at_once() {
    let theirs_tables = [numbered_table("users", 10001, 10, 2)];
    let theirs = encode(&theirs_tables, &[], 4096);
    for (backend, database) in common::databases() {
        let dir = common::temp_dir("changed-released");
        let imports = open(&database, &dir);
        let (mut tables, files, digests) = with_files(&[21, 23]);
        tables.insert(0, numbered_table("users", 10001, 300, 1));
        let mine = (tables, files, digests);
        let id = open_with_its_files(&imports, &mine);
        assert!(dir.join("imports").join(&id).exists(), "{backend}");
        assert!(imports.store().hidden_tables().unwrap() > 0, "{backend}");
        assert!(imports.files().contains(&mine.2[0]), "{backend}");

        let other = imports.create(ImportMode::Replace, None).unwrap().id;
        send_all(&imports, &other, &theirs, 0);
        imports.finish(&other).unwrap();

        let status = imports.status(&id).unwrap();
        assert_eq!(status.state, ImportState::Failed, "{backend}");
        let changed = status.table_changed.clone().expect("no tableChanged");
        assert_eq!(
            (
                changed.code,
                changed.component.as_str(),
                changed.table.as_deref()
            ),
            ("TableChanged", "", Some("users")),
            "{backend}"
        );
        assert!(
            status
                .error
                .as_deref()
                .is_some_and(|e| e.starts_with("TableChanged: ")),
            "{backend}: {status:?}"
        );
        assert!(!dir.join("imports").join(&id).exists(), "{backend}");
        assert_eq!(imports.store().hidden_tables().unwrap(), 0, "{backend}");
        assert!(
            !imports.files().contains(&mine.2[0]) && !imports.files().contains(&mine.2[1]),
            "{backend}: its files are kept"
        );
        assert_landed(&imports, &theirs_tables, &[]);

        let stream = encode(&mine.0, &mine.1, 1024);
        let ranges = frames(&stream);
        let last = ranges.len() - 1;
        for refused in [
            imports
                .append(&id, last as u64, &stream[ranges[last].clone()])
                .map(drop),
            imports.finish(&id).map(drop),
        ] {
            match refused {
                Err(ImportsError::Refused(e)) => {
                    assert_eq!(
                        (e.code, e.table.as_deref()),
                        ("TableChanged", Some("users"))
                    )
                }
                other => panic!("{backend}: {other:?}"),
            }
        }
        assert!(
            matches!(
                imports.cancel(&id),
                Err(ImportsError::NotOpen {
                    state: ImportState::Failed,
                    ..
                })
            ),
            "{backend}"
        );
        // A restarted server says the same.
        drop(imports);
        let imports = open(&database, &dir);
        let status = imports.status(&id).unwrap();
        assert_eq!(status.state, ImportState::Failed, "{backend}");
        assert_eq!(status.table_changed, Some(changed), "{backend}");
    }
}

/// The same after a restart: what the import saw of its table when its
/// declaration was acknowledged is kept beside its log, so the write made
/// good at the next start records it too, and the import says at once
/// that it can no longer finish.
#[test]
fn a_declaration_written_again_at_a_restart_still_fails_the_import() {
    let mine = encode(&[numbered_table("users", 10001, 300, 1)], &[], 4096);
    let theirs_tables = [numbered_table("users", 10001, 10, 2)];
    let theirs = encode(&theirs_tables, &[], 4096);
    for (backend, database) in common::databases() {
        let dir = common::temp_dir("declared-then-restarted");
        let id = {
            let store = Arc::new(FailingWrite::new(&database, 1, false));
            let imports = Imports::open(store.clone(), &dir, Limits::default()).unwrap();
            let id = imports.create(ImportMode::Replace, None).unwrap().id;
            let first = frames(&mine)[0].clone();
            imports.append(&id, 0, &mine[first]).unwrap();
            while store.writes.load(Ordering::SeqCst) == 0 {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            let other = imports.create(ImportMode::Replace, None).unwrap().id;
            send_all(&imports, &other, &theirs, 0);
            imports.finish(&other).unwrap();
            id
        };
        let imports = open(&database, &dir);
        let status = imports.status(&id).unwrap();
        // Failed as the server started, letting go of what it held.
        assert_eq!(status.state, ImportState::Failed, "{backend}");
        assert!(!dir.join("imports").join(&id).exists(), "{backend}");
        assert_eq!(imports.store().hidden_tables().unwrap(), 0, "{backend}");
        let changed = status.table_changed;
        let changed = changed.unwrap_or_else(|| panic!("{backend}: no tableChanged"));
        assert_eq!(
            (changed.code, changed.table.as_deref()),
            ("TableChanged", Some("users")),
            "{backend}"
        );
        let second = frames(&mine)[1].clone();
        match imports.append(&id, 1, &mine[second]) {
            Err(ImportsError::Refused(e)) => assert_eq!(e.code, "TableChanged", "{backend}"),
            other => panic!("{backend}: {other:?}"),
        }
        assert_landed(&imports, &theirs_tables, &[]);
    }
}

/// The same when an earlier request's line in `observed.jsonl` was cut by a
/// crash (before that request was acknowledged): the lines appended after
/// it are read back, not joined to it and left out with it.
#[test]
fn a_declaration_kept_after_a_cut_line_still_fails_the_import_at_a_restart() {
    let mine = encode(&[numbered_table("users", 10001, 300, 1)], &[], 4096);
    let theirs_tables = [numbered_table("users", 10001, 10, 2)];
    let theirs = encode(&theirs_tables, &[], 4096);
    for (backend, database) in common::databases() {
        let dir = common::temp_dir("declared-after-cut-line");
        let id = {
            let store = Arc::new(FailingWrite::new(&database, 1, false));
            let imports = Imports::open(store.clone(), &dir, Limits::default()).unwrap();
            let id = imports.create(ImportMode::Replace, None).unwrap().id;
            let observed = dir.join("imports").join(&id).join("observed.jsonl");
            std::fs::write(&observed, "[\"\",\"us").unwrap();
            let first = frames(&mine)[0].clone();
            imports.append(&id, 0, &mine[first]).unwrap();
            while store.writes.load(Ordering::SeqCst) == 0 {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            let other = imports.create(ImportMode::Replace, None).unwrap().id;
            send_all(&imports, &other, &theirs, 0);
            imports.finish(&other).unwrap();
            id
        };
        let imports = open(&database, &dir);
        let changed = imports.status(&id).unwrap().table_changed;
        let changed = changed.unwrap_or_else(|| panic!("{backend}: no tableChanged"));
        assert_eq!(
            (changed.code, changed.table.as_deref()),
            ("TableChanged", Some("users")),
            "{backend}"
        );
    }
}

/// A failed write is not forgotten when the store is still down for the
/// rebuild that would make it good: a finish that failed for it, or an early
/// finish, is followed by a finish that lands every document.
#[test]
fn a_failed_write_is_made_good_even_after_a_rebuild_that_failed() {
    let (tables, files) = sample();
    let stream = encode(&tables, &files, 4096);
    let requests = frames(&stream).len();
    for (fail_at, early_finish_at) in [(requests, requests), (requests / 2, requests / 2)] {
        for (backend, database) in common::databases() {
            let dir = common::temp_dir("outage");
            let store = FailingWrite::new(&database, fail_at, true);
            let imports = Imports::open(Arc::new(store), &dir, Limits::default()).unwrap();
            let id = imports.create(ImportMode::RequireEmpty, None).unwrap().id;
            for (seq, range) in frames(&stream)
                .into_iter()
                .enumerate()
                .take(early_finish_at)
            {
                imports.append(&id, seq as u64, &stream[range]).unwrap();
            }
            // Its rebuild cannot read the store.
            assert!(imports.finish(&id).is_err(), "{backend}");
            send_all(&imports, &id, &stream, early_finish_at);
            imports
                .finish(&id)
                .unwrap_or_else(|e| panic!("{backend}, the write of frame {fail_at} failed: {e}"));
            assert_landed(&imports, &tables, &files);
        }
    }
}

/// Stored files whose `_storage` rows a replace or replaceAll import
/// dropped are removed once it finished, when no import is open (an open
/// import's files have no row yet), else when the last open one ends, after
/// a restart too; files still referred to stay.
#[test]
fn files_whose_rows_a_replacing_import_dropped_are_removed() {
    for (backend, database) in common::databases() {
        let dir = common::temp_dir("sweep-replaced");
        // The open import's `_storage` is a component's: one of the root,
        // which the replacing import changes, could no longer finish and
        // would be failed at once.
        let mut open_one = with_files(&[7, 11]);
        open_one.0[0].component = "waitlist".into();
        for file in &mut open_one.1 {
            file.component = "waitlist".into();
        }
        let (first, replacing, last) = (with_files(&[3, 5]), with_files(&[5, 9]), with_files(&[9]));
        let kept = |imports: &Imports, digests: &[[u8; 32]]| -> Vec<bool> {
            digests
                .iter()
                .map(|d| imports.files().contains(d))
                .collect()
        };
        let open_id = {
            let imports = open(&database, &dir);
            let id = imports.create(ImportMode::RequireEmpty, None).unwrap().id;
            send_all(&imports, &id, &encode(&first.0, &first.1, 4096), 0);
            imports.finish(&id).unwrap();
            // An import left open with its file in and its row not yet.
            let open_id = open_with_its_files(&imports, &open_one);
            let id = imports.create(ImportMode::Replace, None).unwrap().id;
            send_all(&imports, &id, &encode(&replacing.0, &replacing.1, 4096), 0);
            imports.finish(&id).unwrap();
            // File 3 has no row now, but an import is open: every file stays.
            assert_eq!(
                kept(
                    &imports,
                    &[first.2[0], first.2[1], replacing.2[1], open_one.2[0]]
                ),
                [true; 4],
                "{backend}"
            );
            open_id
        };
        // Nor does a start with that import open remove any.
        let imports = open(&database, &dir);
        assert!(imports.files().contains(&first.2[0]), "{backend}");
        assert!(imports.files().contains(&open_one.2[0]), "{backend}");
        // When it ends, the files no row refers to go at once.
        imports.cancel(&open_id).unwrap();
        assert_eq!(
            kept(
                &imports,
                &[first.2[0], open_one.2[0], first.2[1], replacing.2[1]]
            ),
            [false, false, true, true],
            "{backend}"
        );
        // With none open, as soon as the replacing import finished.
        let id = imports.create(ImportMode::ReplaceAll, None).unwrap().id;
        send_all(&imports, &id, &encode(&last.0, &last.1, 4096), 0);
        imports.finish(&id).unwrap();
        assert_eq!(
            kept(&imports, &[first.2[1], last.2[0]]),
            [false, true],
            "{backend}"
        );
        assert_landed(&imports, &last.0, &last.1);
        // A file's two-digit folder goes with its last file.
        for folder in std::fs::read_dir(dir.join("files")).unwrap() {
            let folder = folder.unwrap().path();
            if folder.is_dir() {
                let left = std::fs::read_dir(&folder).unwrap().count();
                assert!(left > 0, "{backend}: {} is left empty", folder.display());
            }
        }
    }
}

/// On PostgreSQL an import's store writes run beside other imports'
/// finishes. A finish that commits while another import's write declaring
/// one of its tables is still uncommitted must still leave that import
/// saying `tableChanged` (its finish would be refused): here the write is
/// held before its commit (a row lock on its import) while the other
/// import finishes on the table.
#[test]
fn a_table_declared_while_another_import_finishes_on_it_is_noted_changed() {
    let Some(url) = common::postgres_url() else {
        return;
    };
    let database = common::postgres_schema_url(&url);
    let dir = common::temp_dir("changed-while-declared");
    let imports = Arc::new(open(&database, &dir));
    let mine = encode(&[numbered_table("users", 10001, 300, 1)], &[], 4096);
    let theirs = encode(&[numbered_table("users", 10001, 10, 2)], &[], 4096);
    let id = imports.create(ImportMode::Replace, None).unwrap().id;
    let other = imports.create(ImportMode::Replace, None).unwrap().id;
    send_all(&imports, &other, &theirs, 0);
    // Sent whole: it can finish.
    assert!(imports.status(&other).unwrap().complete);
    let mut waits = postgres::Client::connect(&database, postgres::NoTls).unwrap();
    let waiting = |waits: &mut postgres::Client, query: &str| -> bool {
        waits
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE $1",
                &[&format!("{query}%")],
            )
            .unwrap()
            .get::<_, i64>(0)
            > 0
    };
    let wait_for = |waits: &mut postgres::Client, what: &dyn Fn(&mut postgres::Client) -> bool| {
        for _ in 0..500 {
            if what(waits) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("timed out");
    };

    // The write of the first frame (declaring `users`) is held before it commits.
    let mut holder = postgres::Client::connect(&database, postgres::NoTls).unwrap();
    let mut held = holder.transaction().unwrap();
    held.execute(
        "SELECT 1 FROM snappack_imports WHERE id = $1 FOR UPDATE",
        &[&id],
    )
    .unwrap();
    let first = frames(&mine)[0].clone();
    imports.append(&id, 0, &mine[first]).unwrap();
    wait_for(&mut waits, &|w| {
        waiting(w, "UPDATE snappack_imports SET applied_seq")
            || waiting(w, "SELECT pg_advisory_xact_lock")
    });

    // The other import finishes on `users` meanwhile (or waits for that
    // write: its declaration, committed before the documents, is seen by
    // the finish, which notes the import changed and waits for the write to
    // fail it).
    let finishing = {
        let (imports, other) = (imports.clone(), other.clone());
        std::thread::spawn(move || imports.finish(&other))
    };
    wait_for(&mut waits, &|w| {
        finishing.is_finished()
            || waiting(w, "SELECT pg_advisory_xact_lock")
            || imports.status(&id).unwrap().table_changed.is_some()
    });
    held.rollback().unwrap();
    finishing.join().unwrap().unwrap();

    // The import says it can no longer finish, and is refused more frames.
    let status = imports.status(&id).unwrap();
    let changed = status.table_changed.expect("no tableChanged");
    assert_eq!(
        (changed.code, changed.table.as_deref()),
        ("TableChanged", Some("users"))
    );
    let second = frames(&mine)[1].clone();
    match imports.append(&id, 1, &mine[second]) {
        Err(ImportsError::Refused(e)) => assert_eq!(e.code, "TableChanged"),
        other => panic!("{other:?}"),
    }
}

/// A database whose records were lost (dropped and made again) leaves the
/// staging folders of its imports in the data folder: the next start
/// removes them, and keeps those of the imports the database knows, and
/// anything else in the folder.
#[test]
fn staging_folders_of_imports_the_database_does_not_know_are_removed_at_start() {
    for (backend, database) in common::databases() {
        let dir = common::temp_dir("unknown-staging");
        let lost = open(&database, &dir)
            .create(ImportMode::Append, None)
            .unwrap()
            .id;
        let staging = dir.join("imports");
        assert!(staging.join(&lost).is_dir(), "{backend}");
        std::fs::write(staging.join("notes.txt"), "mine").unwrap();
        std::fs::create_dir_all(staging.join("not-an-import")).unwrap();
        // The same data folder, a database made again (another, empty one).
        let (_, again) = common::databases()
            .into_iter()
            .find(|(b, _)| *b == backend)
            .unwrap();
        let imports = open(&again, &dir);
        assert!(!staging.join(&lost).exists(), "{backend}");
        let live = imports.create(ImportMode::Append, None).unwrap().id;
        let finished = imports.create(ImportMode::Append, None).unwrap().id;
        imports.cancel(&finished).unwrap();
        drop(imports);
        let imports = open(&again, &dir);
        assert!(staging.join(&live).is_dir(), "{backend}");
        assert_eq!(
            imports.status(&live).unwrap().state,
            ImportState::Open,
            "{backend}"
        );
        assert!(staging.join("notes.txt").is_file(), "{backend}");
        assert!(staging.join("not-an-import").is_dir(), "{backend}");
        let mut left: Vec<_> = std::fs::read_dir(&staging)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        let mut expected = vec![live.clone(), "not-an-import".into(), "notes.txt".into()];
        expected.sort();
        assert_eq!(left, expected, "{backend}");
    }
}

/// A halted server (its database lost to another one) changes nothing
/// more: every request that would is refused with the reason, and the
/// imports are left where they were, for a server on the database to go
/// on with.
#[test]
fn halted_imports_refuse_every_change() {
    for (backend, database) in common::databases() {
        let dir = common::temp_dir("halted");
        let stream = encode(&[numbered_table("docs", 10001, 200, 1)], &[], 4096);
        let ranges = frames(&stream);
        assert!(ranges.len() > 2, "{backend}");
        let imports = open(&database, &dir);
        let id = imports.create(ImportMode::RequireEmpty, None).unwrap().id;
        let done = imports.create(ImportMode::Append, None).unwrap().id;
        imports.append(&done, 0, &stream).unwrap();
        imports.append(&id, 0, &stream[..ranges[0].end]).unwrap();
        imports.halt("another server holds the database");
        let refused = |result: Result<(), ImportsError>| match result {
            Err(ImportsError::Halted(reason)) => {
                assert_eq!(reason, "another server holds the database", "{backend}")
            }
            other => panic!("{backend}: {other:?}"),
        };
        refused(imports.create(ImportMode::Replace, None).map(drop));
        refused(imports.append(&id, 1, &stream[ranges[1].clone()]).map(drop));
        refused(imports.finish(&done).map(drop));
        refused(imports.cancel(&id));
        refused(imports.expire(std::time::Duration::ZERO).map(drop));
        assert_eq!(imports.status(&id).unwrap().next_seq, Some(1), "{backend}");
        drop(imports);
        // Another server finds both where they were.
        let imports = open(&database, &dir);
        let status = imports.status(&id).unwrap();
        assert_eq!(
            (status.state, status.next_seq),
            (ImportState::Open, Some(1)),
            "{backend}"
        );
        assert!(imports.status(&done).unwrap().complete, "{backend}");
        imports.finish(&done).unwrap();
        assert_eq!(stored_lines(&imports, "", "docs").len(), 200, "{backend}");
        assert_eq!(imports.store().imports().unwrap().len(), 2, "{backend}");
    }
}
