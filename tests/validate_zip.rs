//! Snapshot ZIPs built by the tests, validated as Convex would import them.

mod common;

use common::*;
use snappack::convex::DocumentId;
use snappack::report::{Code, Finding, NumberSource};
use snappack::validate::{check_target, ImportMode, Options, TargetTable, TargetTables};

const UNIFORM: &[u8] = b"\"uniform\"\n";

#[test]
fn the_real_convex_export_is_valid() {
    let bytes = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/data/convex-real/cron-jobs-export.zip"
    ))
    .or_else(|_| std::fs::read("/work/shared/data/convex-real/cron-jobs-export.zip"))
    .expect("the shared real export");
    let report = check("cron-jobs-export.zip", &bytes);
    assert!(report.valid, "{report:#?}");
    assert_eq!(report.tables.len(), 1);
    let t = &report.tables[0];
    assert_eq!(
        (t.name.as_str(), t.number, t.number_source, t.documents),
        ("messages", Some(10001), NumberSource::Tables, 0)
    );
}

#[test]
fn a_full_export_with_components_storage_and_a_prefix_is_valid() {
    let users = [doc(10001, 1, r#""name":"a""#), doc(10001, 2, r#""n":5"#)].join("\n") + "\n";
    let child = doc(10001, 3, r#""text":"hi""#) + "\n";
    let storage_id = id(540, 9);
    let blob = b"foobarbaz";
    let sha = "l981iLWj8kurw4UbNy8Lpxqdzd7UOxS50Glhv8FwfZ0=";
    let storage_row = format!(
        r#"{{"_id":"{storage_id}","_creationTime":1.5,"sha256":"{sha}","size":9,"contentType":"text/plain","internalId":"5a7e2f6e-1c1e-4b8e-9c1a-3f2b1d0e9a7b"}}"#
    ) + "\n";
    let bytes = zip(&[
        ("snapshot/README.md", b"hello"),
        (
            "snapshot/_tables/documents.jsonl",
            br#"{"name":"users","id":10001}"#,
        ),
        ("snapshot/users/documents.jsonl", users.as_bytes()),
        ("snapshot/users/generated_schema.jsonl", UNIFORM),
        (
            "snapshot/_components/chat/_tables/documents.jsonl",
            br#"{"name":"messages","id":10001}"#,
        ),
        (
            "snapshot/_components/chat/messages/documents.jsonl",
            child.as_bytes(),
        ),
        (
            "snapshot/_components/chat/messages/generated_schema.jsonl",
            UNIFORM,
        ),
        ("snapshot/_storage/documents.jsonl", storage_row.as_bytes()),
        (&format!("snapshot/_storage/{storage_id}.txt"), blob),
        ("snapshot/_scheduled_functions/documents.jsonl", b"{}\n"),
    ]);
    let report = check("export.zip", &bytes);
    assert!(report.valid, "{:#?}", report.errors);
    let summary: Vec<(&str, &str, Option<u32>, NumberSource, u64)> = report
        .tables
        .iter()
        .map(|t| {
            (
                t.component.as_str(),
                t.name.as_str(),
                t.number,
                t.number_source,
                t.documents,
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("", "users", Some(10001), NumberSource::Tables, 2),
            ("chat", "messages", Some(10001), NumberSource::Tables, 1),
            ("", "_storage", Some(540), NumberSource::Id, 1),
        ]
    );
    assert_eq!(report.storage.files, 1);
    assert_eq!(report.storage.bytes, 9);
    assert_eq!(
        report.warnings.iter().map(|w| w.code).collect::<Vec<_>>(),
        vec![Code::SkippedSystemTable]
    );
}

#[test]
fn duplicate_ids_anywhere_in_a_table_name_both_lines() {
    let mut lines: Vec<String> = (0..20).map(|n| doc(10001, n, "")).collect();
    lines.push(doc(10001, 3, r#""again":true"#));
    let bytes = zip(&[
        ("users/documents.jsonl", lines.join("\n").as_bytes()),
        ("users/generated_schema.jsonl", UNIFORM),
    ]);
    let report = check("s.zip", &bytes);
    assert_eq!(codes(&report), vec![Code::DuplicateId]);
    let e = &report.errors[0];
    assert_eq!((e.line, e.first_line), (Some(21), Some(4)));
    assert_eq!(e.entry.as_deref(), Some("users/documents.jsonl"));
    assert_eq!(e.table.as_deref(), Some("users"));
    assert!(e
        .message
        .starts_with(r#"Objects in table "users" have duplicate _id fields"#));
    assert!(e.excerpt.as_deref().unwrap().contains(r#""again":true"#));
}

#[test]
fn table_number_conflicts() {
    // _tables lists two names on one number.
    let report = check(
        "a.zip",
        &zip(&[(
            "_tables/documents.jsonl",
            b"{\"name\":\"table1\",\"id\":10001}\n   {\"name\":\"table2\",\"id\":10001}\n",
        )]),
    );
    assert_eq!(codes(&report), vec![Code::InvalidId]);
    assert!(
        report.errors[0]
            .message
            .contains("conflict between `table1` and `table2`"),
        "{}",
        report.errors[0].message
    );
    assert_eq!(report.errors[0].line, Some(2));
    // The same file under a plain folder is still the root `_tables`.
    let report = check(
        "b.zip",
        &zip(&[(
            "component/_tables/documents.jsonl",
            b"{\"name\":\"table1\",\"id\":10001}\n{\"name\":\"table2\",\"id\":10001}\n",
        )]),
    );
    assert_eq!(codes(&report), vec![Code::InvalidId]);
    // Two tables whose first ids carry one number.
    let max = "j57fzzzzzzzzzzzzzzzzzzzzzzzzzkyr";
    let row = format!(r#"{{"_id":"{max}"}}"#);
    let report = check(
        "c.zip",
        &zip(&[
            ("table1/documents.jsonl", row.as_bytes()),
            ("table2/documents.jsonl", row.as_bytes()),
        ]),
    );
    assert_eq!(codes(&report), vec![Code::InvalidId]);
    assert!(report.errors[0]
        .message
        .contains("conflict between `table1` and `table2` with number 10001"));
    // table2's ids are that error, not a number the server will choose.
    assert_eq!(report.warnings, []);
    // `_tables` against a first id.
    let report = check(
        "d.zip",
        &zip(&[
            (
                "_tables/documents.jsonl",
                br#"{"name":"table1","id":10001}"#,
            ),
            ("table2/documents.jsonl", row.as_bytes()),
        ]),
    );
    assert_eq!(codes(&report), vec![Code::InvalidId]);
    assert!(report.errors[0]
        .message
        .contains("conflict between `table1` and `table2`"));
}

/// A component folder is `_components/<name>/` with a name that is not
/// empty; names are checked from the innermost out, as Convex peels them.
#[test]
fn component_folders_are_read_as_convex_reads_them() {
    let line = doc(10001, 1, "") + "\n";
    let report = check(
        "c.zip",
        &zip(&[("_components//t/documents.jsonl", line.as_bytes())]),
    );
    assert!(report.valid, "{:?}", report.errors);
    assert_eq!(
        (
            report.tables[0].component.as_str(),
            report.tables[0].name.as_str()
        ),
        ("", "t")
    );
    let report = check(
        "c.zip",
        &zip(&[(
            "_components/a-b/_components/c-d/t/documents.jsonl",
            line.as_bytes(),
        )]),
    );
    assert_eq!(codes(&report), vec![Code::InvalidComponentName]);
    assert!(report.errors[0]
        .message
        .starts_with("component name 'c-d' invalid: "));
}

#[test]
fn tables_rows_are_checked() {
    let rows = [
        r#"{"name":"users","id":10001}"#,
        r#"{"name":"users","id":10002}"#,
        r#"[1]"#,
        r#"{"id":10003}"#,
        r#"{"name":"bad\"name","id":10004}"#,
        r#"{"name":"t","id":"10005"}"#,
        r#"{"name":"z","id":0}"#,
        r#"{"name":"_hidden","id":10006}"#,
        r#"{"name":"#,
    ]
    .join("\n");
    let report = check(
        "t.zip",
        &zip(&[("_tables/documents.jsonl", rows.as_bytes())]),
    );
    assert_eq!(
        codes(&report),
        vec![
            Code::DuplicateTableName,
            Code::NotAnObject,
            Code::InvalidConvexValue,
            Code::InvalidName,
            Code::InvalidConvexValue,
            Code::InvalidConvexValue,
            Code::InvalidTableName,
            Code::JsonInvalidRow,
        ]
    );
    assert_eq!(
        report.errors[0].message,
        "`_tables` contains duplicate entries for `users`"
    );
    assert_eq!(
        report.errors[2].message,
        "Row 4 wasn't a valid Convex value: table requires name"
    );
    // Convex prints the name, and the `id` it could not take, with `{:?}`.
    assert!(report.errors[3]
        .message
        .starts_with(r#""bad\"name" isn't a valid table name: "#));
    assert_eq!(
        report.errors[4].message,
        r#"Row 6 wasn't a valid Convex value: table requires id (received Some(String("10005")))"#
    );
    assert_eq!(
        report.errors[5].message,
        "Row 7 wasn't a valid Convex value: table requires id (received Some(Number(0)))"
    );
    let missing = check(
        "t.zip",
        &zip(&[(
            "_tables/documents.jsonl",
            br#"{"name":"t","id":0.5}
{"name":"u"}"#,
        )]),
    );
    let messages: Vec<&str> = missing.errors.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(
        messages,
        vec![
            "Row 1 wasn't a valid Convex value: table requires id (received Some(Number(0.5)))",
            "Row 2 wasn't a valid Convex value: table requires id (received None)",
        ]
    );
    let lines: Vec<u64> = report.errors.iter().map(|e| e.line.unwrap()).collect();
    assert_eq!(lines, vec![2, 3, 4, 5, 6, 7, 8, 9]);
    // A listed table without documents is created empty.
    assert_eq!(
        report
            .tables
            .iter()
            .map(|t| t.name.as_str())
            .collect::<Vec<_>>(),
        vec!["users"]
    );
}

#[test]
fn documents_are_checked_with_their_table_number_and_schema() {
    let lines = [
        doc(10001, 1, ""),
        doc(10002, 2, ""),                                     // ImportConflict
        r#"{"_id":"not-an-id"}"#.to_owned(),                   // InvalidId
        r#"{"_creationTime":1700000000000,"x":1}"#.to_owned(), // InvalidCreationTimeError (uniform)
        r#"{"a":{"$set":[]}}"#.to_owned(),                     // InvalidConvexValue
        r#"["array"]"#.to_owned(),                             // InvalidConvexValue
        r#"{"a":"#.to_owned(),                                 // JsonInvalidRow
        r#"{"$integer":"AQAAAAAAAAA="}"#.to_owned(),           // NotAnObject
        r#"{"_other":1}"#.to_owned(),                          // InvalidDocumentError
        format!(r#"{{"big":"{}"}}"#, "x".repeat(1 << 20)),     // ValueTooLargeError
        r#"{"_id":12}"#.to_owned(),                            // InvalidIdError
        String::new(),                                         // JsonInvalidRow (empty line)
        r#"{"ok":{"$bytes":"aGVsbG8="},"n":{"$integer":"AQAAAAAAAAA="}}"#.to_owned(),
    ]
    .join("\n");
    let bytes = zip(&[
        ("users/documents.jsonl", lines.as_bytes()),
        ("users/generated_schema.jsonl", UNIFORM),
    ]);
    let report = check("s.zip", &bytes);
    assert_eq!(
        codes(&report),
        vec![
            Code::ImportConflict,
            Code::InvalidId,
            Code::InvalidCreationTimeError,
            Code::InvalidConvexValue,
            Code::InvalidConvexValue,
            Code::JsonInvalidRow,
            Code::NotAnObject,
            Code::InvalidDocumentError,
            Code::ValueTooLargeError,
            Code::InvalidIdError,
            Code::JsonInvalidRow,
        ]
    );
    let lines: Vec<u64> = report.errors.iter().map(|e| e.line.unwrap()).collect();
    assert_eq!(lines, vec![2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    assert_eq!(report.tables[0].documents, 13);
    // Without a generated schema every number is a Float64 and `$` keys are errors.
    let plain = zip(&[(
        "users/documents.jsonl",
        br#"{"_creationTime":1700000000000,"n":{"$integer":"AQAAAAAAAAA="}}"#,
    )]);
    let report = check("p.zip", &plain);
    assert_eq!(codes(&report), vec![Code::InvalidConvexValue]);
    assert!(report.errors[0]
        .message
        .ends_with("Field name $integer starts with '$', which is reserved."));
}

/// The excerpt of a long line that is not JSON shows where it breaks, not
/// only its start; a line's other errors show its start.
#[test]
fn a_long_line_that_is_not_json_is_excerpted_where_it_breaks() {
    let line = format!(r#"{{"a":"{}" "b":1}}"#, "x".repeat(5000));
    let report = check("j.zip", &zip(&[("t/documents.jsonl", line.as_bytes())]));
    assert_eq!(codes(&report), vec![Code::JsonInvalidRow]);
    let excerpt = report.errors[0].excerpt.as_deref().unwrap();
    assert!(
        excerpt.starts_with("...x") && excerpt.contains(r#"x" "b":1}"#),
        "{excerpt}"
    );
    assert!(excerpt.len() <= 130, "{excerpt}");
    let line = format!(r#"{{"$a":"{}"}}"#, "x".repeat(5000));
    let report = check("j.zip", &zip(&[("t/documents.jsonl", line.as_bytes())]));
    assert!(report.errors[0]
        .excerpt
        .as_deref()
        .unwrap()
        .starts_with(r#"{"$a":"xxx"#));
}

/// A row with several problems gets the one Convex meets first when it
/// inserts it: the size, then the `_id` (not decoding, another table's
/// number, a repeat), then the rest, the rules of a valid document in one
/// message.
#[test]
fn a_row_with_several_problems_gets_convex_first() {
    let lines = [
        doc(10001, 1, ""),
        r#"{"_id":"not-an-id","_x":1}"#.to_owned(), // InvalidId, not the `_x`
        doc(10002, 2, r#""_x":1"#),                 // ImportConflict
        doc(10001, 1, r#""_x":1"#),                 // DuplicateId
        r#"{"_id":"not-an-id","_creationTime":5}"#.to_owned(), // InvalidId, not the Int64 time
        format!(r#"{{"_x":1,"big":"{}"}}"#, "x".repeat(1 << 20)), // ValueTooLargeError
        r#"{"_creationTime":0.0,"_y":1,"_x":2}"#.to_owned(), // InvalidDocumentError, all three
    ]
    .join("\n");
    let bytes = zip(&[
        ("users/documents.jsonl", lines.as_bytes()),
        ("users/generated_schema.jsonl", UNIFORM),
    ]);
    let report = check("s.zip", &bytes);
    assert_eq!(
        codes(&report),
        vec![
            Code::InvalidId,
            Code::ImportConflict,
            Code::DuplicateId,
            Code::InvalidId,
            Code::ValueTooLargeError,
            Code::InvalidDocumentError,
        ]
    );
    let fields: Vec<Option<&str>> = report.errors.iter().map(|e| e.field.as_deref()).collect();
    assert_eq!(
        fields,
        vec![
            Some("_id"),
            Some("_id"),
            Some("_id"),
            Some("_id"),
            None,
            Some("_creationTime")
        ]
    );
    assert_eq!(
        report.errors[5].message,
        "Row 7 isn't a valid document: The '_creationTime' field should be a timestamp in milliseconds, is 0\n \
         Field '_x' starts with an underscore, which is only allowed for system fields like '_id'\n \
         Field '_y' starts with an underscore, which is only allowed for system fields like '_id'"
    );
}

#[test]
fn entry_names_are_checked() {
    let report = check(
        "n.zip",
        &zip(&[
            ("Users Table/documents.jsonl", b"{}"),
            ("_components/bad-name/t/documents.jsonl", b"{}"),
            ("_storage/documents.jsonl", b""),
            ("_storage/notanid.png", b"x"),
            ("my_storage/generated_schema.jsonl", UNIFORM),
        ]),
    );
    assert_eq!(
        codes(&report),
        vec![
            Code::InvalidTableName,
            Code::InvalidComponentName,
            Code::InvalidStorageId,
            Code::InvalidStorageId
        ]
    );
    assert_eq!(report.errors[0].message, "table name 'Users Table' invalid: Identifier Users Table has invalid character ' ': Identifiers can only contain alphanumeric characters or underscores");
    assert_eq!(
        report.errors[2].entry.as_deref(),
        Some("_storage/notanid.png")
    );
    assert!(report.errors[3]
        .message
        .starts_with("_storage id 'generated_schema' invalid: "));
}

/// A stored file named twice (with and without an extension) is an error
/// only where Convex imports the component's files, which it does only
/// with `_storage` metadata: without it, both are ignored, as Convex
/// ignores them, and the snapshot imports.
#[test]
fn a_stored_file_named_twice_is_an_error_only_where_files_are_imported() {
    let file = id(540, 1);
    let png = format!("_storage/{file}.png");
    let plain = format!("_storage/{file}");
    let users = doc(10001, 1, "");
    let entries = |storage: bool| {
        let mut entries = vec![
            ("users/documents.jsonl", users.as_bytes()),
            (png.as_str(), &b"a"[..]),
            (plain.as_str(), &b"b"[..]),
        ];
        if storage {
            entries.push(("_storage/documents.jsonl", &b""[..]));
        }
        zip(&entries)
    };
    let report = check("twice.zip", &entries(false));
    assert!(report.valid, "{:#?}", report.errors);
    let warnings: Vec<Code> = report.warnings.iter().map(|w| w.code).collect();
    assert_eq!(warnings, [Code::StorageFilesIgnored]);
    assert_eq!(report.storage.files, 0);

    let report = check("twice.zip", &entries(true));
    assert_eq!(codes(&report), [Code::DuplicateId], "{:#?}", report.errors);
    assert_eq!(report.errors[0].entry.as_deref(), Some(plain.as_str()));
    assert_eq!(
        report.errors[0].message,
        format!(
            "Objects in table \"_storage\" have duplicate _id fields: entries {png} and {plain} are both stored file {file}"
        )
    );
}

/// Entries named like table data that Convex does not read are warned
/// about, each with why; a README or macOS's resource forks are not.
#[test]
fn entries_convex_ignores_that_look_like_tables_are_warned_about() {
    let report = check(
        "ignored.zip",
        &zip(&[
            ("users\\documents.jsonl", b"{\"a\":1}\n"),
            ("posts/Documents.jsonl", b"{\"a\":1}\n"),
            ("documents.jsonl", b"{\"a\":1}\n"),
            ("tasks/tasks.jsonl", b"{\"a\":1}\n"),
            ("README.md", b"hello"),
            ("__MACOSX/users/._documents.jsonl", b"x"),
            ("exports/snapshot_dev_1700000000.ZIP", b"PK\x05\x06"),
            // A stored file may be an archive.
            ("backup/_storage/.zip", b"PK\x05\x06"),
        ]),
    );
    assert!(report.valid, "{:?}", report.errors);
    assert!(report.tables.is_empty());
    let warned: Vec<_> = report
        .warnings
        .iter()
        .map(|w| (w.code, w.entry.as_deref().unwrap(), w.message.as_str()))
        .collect();
    let why = |text: &str| format!("this entry is not read, as Convex does not read it: {text}");
    assert_eq!(
        warned,
        vec![
            (Code::EntryIgnored, "users\\documents.jsonl", why("its name has `\\` between folders, where a ZIP has `/`").as_str()),
            (Code::EntryIgnored, "posts/Documents.jsonl", why("a table's entries are named in lowercase: `<table>/documents.jsonl`").as_str()),
            (Code::EntryIgnored, "documents.jsonl", why("a table's documents are read from `<table>/documents.jsonl`, not from a file at the top of the archive").as_str()),
            (Code::EntryIgnored, "tasks/tasks.jsonl", why("a table's documents are read from `<table>/documents.jsonl` only").as_str()),
            (Code::EntryIgnored, "exports/snapshot_dev_1700000000.ZIP", why("it is an archive, and Convex does not open an archive inside the snapshot: give the snapshot's own archive, whose entries are `<table>/documents.jsonl`").as_str()),
        ]
    );
}

#[test]
fn not_a_zip_and_broken_entries() {
    // Shorter than a ZIP's end record too: the archive's fault, not a read's.
    for bytes in [&b"this is not a zip file at all"[..], b"tiny", b"PK tiny"] {
        let report = check("x.zip", bytes);
        assert_eq!(
            codes(&report),
            vec![Code::InvalidZip],
            "{:?}",
            report.errors
        );
        assert!(!report.valid);
    }
    let report = check("x.zip", b"this is not a zip file at all");
    assert_eq!(
        report.errors[0].message,
        "invalid zip file: this is not a ZIP archive (it does not start with \"PK\")"
    );
    // Nothing at all is said to be nothing, not another kind of file.
    let report = check("x.zip", b"");
    assert_eq!(codes(&report), vec![Code::InvalidZip]);
    assert_eq!(
        report.errors[0].message,
        "invalid zip file: the archive is empty (0 bytes)"
    );
    // An input that cannot be read says so, with the reason.
    struct Unreadable;
    impl std::io::Read for Unreadable {
        fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("the disk went away"))
        }
    }
    impl std::io::Seek for Unreadable {
        fn seek(&mut self, _: std::io::SeekFrom) -> std::io::Result<u64> {
            Ok(0)
        }
    }
    let report =
        snappack::validate::validate(Unreadable, "gone.zip", &Options::default(), &mut |_| true);
    assert_eq!(codes(&report), vec![Code::ReadFailed]);
    assert_eq!(
        report.errors[0].message,
        "cannot read the input: the disk went away"
    );
    // A download that stopped short says so.
    let whole = zip(&[("users/documents.jsonl", b"{}\n")]);
    for cut in [10, 30, whole.len() / 2] {
        let report = check("cut.zip", &whole[..whole.len() - cut]);
        assert_eq!(codes(&report), vec![Code::InvalidZip]);
        assert!(
            report.errors[0]
                .message
                .starts_with("invalid zip file: the archive is damaged or cut short ("),
            "{}",
            report.errors[0].message
        );
        // Without the zip crate's names of its structures.
        assert!(
            !report.errors[0].message.contains("::"),
            "{}",
            report.errors[0].message
        );
    }
    // Bad UTF-8 inside an entry is InvalidZip, with the line.
    let report = check(
        "u.zip",
        &zip(&[("users/documents.jsonl", b"{}\n{\"a\":\"\xff\"}\n")]),
    );
    assert_eq!(codes(&report), vec![Code::InvalidZip]);
    assert_eq!(report.errors[0].line, Some(2));
    // A corrupted deflate stream.
    let mut bytes = zip(&[(
        "users/documents.jsonl",
        "{\"a\":1}\n".repeat(2000).as_bytes(),
    )]);
    let at = bytes.windows(4).position(|w| w == b"PK\x03\x04").unwrap() + 60;
    for b in &mut bytes[at..at + 40] {
        *b ^= 0x5a;
    }
    let report = check("c.zip", &bytes);
    assert!(
        codes(&report).contains(&Code::InvalidZip),
        "{:?}",
        report.errors
    );
}

/// `bytes` with every `from` replaced by `to` (of the same length).
fn patched(mut bytes: Vec<u8>, from: &[u8], to: &[u8]) -> Vec<u8> {
    assert_eq!(from.len(), to.len());
    let mut at = 0;
    while let Some(found) = bytes[at..].windows(from.len()).position(|w| w == from) {
        bytes[at + found..at + found + to.len()].copy_from_slice(to);
        at += found + to.len();
    }
    bytes
}

/// The offset of the first central directory header in `bytes`.
fn central_header(bytes: &[u8]) -> usize {
    bytes.windows(4).position(|w| w == b"PK\x01\x02").unwrap()
}

#[test]
fn entries_that_share_a_name_are_refused_not_dropped() {
    let first = doc(10001, 1, r#""a":1"#) + "\n";
    let bytes = patched(
        zip(&[
            ("users/documents.jsonl", first.as_bytes()),
            ("users/documents.jsonX", b"{\"a\":2}\n"),
            ("notes/documents.jsonl", b"{}\n"),
        ]),
        b"users/documents.jsonX",
        b"users/documents.jsonl",
    );
    let report = check("twice.zip", &bytes);
    assert_eq!(
        codes(&report),
        vec![Code::DuplicateEntryName],
        "{:#?}",
        report.errors
    );
    let finding = &report.errors[0];
    assert_eq!(finding.entry.as_deref(), Some("users/documents.jsonl"));
    assert!(finding
        .message
        .starts_with("2 entries of the archive are named 'users/documents.jsonl'"));
    assert!(!report.valid);
}

#[test]
fn the_component_path_given_is_checked() {
    let bytes = zip(&[("users/documents.jsonl", b"{}\n")]);
    for (component, valid) in [
        ("", true),
        ("billing", true),
        ("a/b", true),
        ("bad-name", false),
        ("a//b", false),
        ("/", false),
        ("a/", false),
    ] {
        let options = Options {
            component: component.into(),
            ..Options::default()
        };
        let report = check_with("c.zip", &bytes, &options);
        if valid {
            assert!(report.valid, "{component:?}: {:#?}", report.errors);
        } else {
            assert_eq!(
                codes(&report),
                vec![Code::InvalidComponentPath],
                "{component:?}"
            );
            assert!(
                report.errors[0].message.starts_with(&format!(
                    "component path '{component}' invalid: component name "
                )),
                "{}",
                report.errors[0].message
            );
        }
    }
}

#[test]
fn a_table_whose_first_id_number_is_taken_has_that_error_and_no_warning() {
    let line = doc(10001, 1, r#""a":1"#) + "\n";
    let bytes = zip(&[
        ("t1/documents.jsonl", line.as_bytes()),
        ("t2/documents.jsonl", line.as_bytes()),
    ]);
    let report = check("same.zip", &bytes);
    assert_eq!(codes(&report), [Code::InvalidId]);
    assert_eq!(report.errors[0].table.as_deref(), Some("t2"));
    // Not "the server chooses its number": the import stops at the clash.
    assert_eq!(report.warnings, []);
    // A table whose first document has no `_id` does get the warning.
    let bytes = zip(&[(
        "t/documents.jsonl",
        format!("{{\"a\":1}}\n{line}").as_bytes(),
    )]);
    let report = check("late.zip", &bytes);
    assert!(report.valid, "{:?}", report.errors);
    assert_eq!(report.warnings.len(), 1);
    let warning = &report.warnings[0];
    assert_eq!(
        (warning.code, warning.table.as_deref()),
        (Code::UnassignedTableNumber, Some("t"))
    );
    assert_eq!(
        warning.message,
        "documents of t carry _id values, but the table got no number from _tables or from its first document's _id, so the server chooses the table's number and these ids will likely not match it (ImportConflict)"
    );
}

#[test]
fn an_encrypted_entry_is_an_invalid_zip_as_in_convex() {
    let mut bytes = zip(&[("users/documents.jsonl", b"{}\n")]);
    // The "encrypted" flag, in the local and the central header.
    let local = bytes.windows(4).position(|w| w == b"PK\x03\x04").unwrap();
    bytes[local + 6] |= 1;
    let central = central_header(&bytes);
    bytes[central + 8] |= 1;
    let report = check("secret.zip", &bytes);
    assert_only_error_is_in(&report, Code::InvalidZip, "users/documents.jsonl");
    assert!(
        report.errors[0]
            .message
            .starts_with("invalid zip file: the entry cannot be read: "),
        "{}",
        report.errors[0].message
    );
}

/// An entry in a compression method neither Convex nor snappack reads
/// (bzip2, LZMA, XZ) is `UnsupportedCompression`, naming the method: it
/// was `InvalidZip`, as if the entry were damaged, since the zip crate says
/// so only when the entry is first read. That holds for a table's
/// documents, a generated schema and a stored file alike.
#[test]
fn an_entry_in_an_unsupported_method_says_so() {
    let users = doc(10001, 1, "") + "\n";
    let file = format!("_storage/{}", id(540, 1));
    for (name, content) in [
        ("users/documents.jsonl", users.as_bytes()),
        ("users/generated_schema.jsonl", UNIFORM),
        (file.as_str(), b"BZh91AY&SY"),
    ] {
        for method in [12u16, 14, 95] {
            // Stored, then marked as compressed with `method`, beside the
            // `_storage` metadata that has the stored file read.
            let mut bytes = zip_with(
                &[(name, content), ("_storage/documents.jsonl", b"")],
                zip::CompressionMethod::Stored,
            );
            for (signature, method_at) in [(b"PK\x03\x04", 8), (b"PK\x01\x02", 10)] {
                let at = bytes
                    .windows(4)
                    .position(|w| w == signature)
                    .expect("the entry's header");
                bytes[at + method_at..at + method_at + 2].copy_from_slice(&method.to_le_bytes());
            }
            let report = check("m.zip", &bytes);
            assert_eq!(
                codes(&report),
                [Code::UnsupportedCompression],
                "{name} {method}: {:#?}",
                report.errors
            );
            assert_eq!(report.errors[0].entry.as_deref(), Some(name));
            assert_eq!(
                report.errors[0].message,
                format!(
                    "the entry uses compression method {method}, which snappack cannot read \
                     (stored, deflate, deflate64 and zstd are supported)"
                )
            );
        }
    }
}

/// Deflate64 entries are checked as Convex checks every entry: one that
/// inflates to less than the archive declares is damaged (the zip crate
/// took it), and a CRC-32 declared as 0 is not checked (the zip crate
/// refused it).
#[test]
fn deflate64_entries_are_checked_as_convex_checks_them() {
    let mut lines = String::new();
    for n in 1..=50u8 {
        lines += &(doc(10001, n, &format!(r#""n":{n}"#)) + "\n");
    }
    // Stored blocks mean the same in Deflate64 as in deflate.
    let mut raw = Vec::new();
    let mut encoder = flate2::write::DeflateEncoder::new(&mut raw, flate2::Compression::none());
    std::io::Write::write_all(&mut encoder, lines.as_bytes()).unwrap();
    encoder.finish().unwrap();
    let name = "users/documents.jsonl";
    let whole = zip_raw(name, 9, &raw, lines.as_bytes());
    let report = check("d.zip", &whole);
    assert!(report.valid, "{:#?}", report.errors);
    assert_eq!(report.documents, 50);

    // The entry's CRC-32 and size, in its local and central headers.
    let patched = |crc: u32, size: u32| {
        let mut bytes = whole.clone();
        for (signature, crc_at) in [(b"PK\x03\x04", 14), (b"PK\x01\x02", 16)] {
            let at = bytes.windows(4).position(|w| w == signature).unwrap() + crc_at;
            bytes[at..at + 4].copy_from_slice(&crc.to_le_bytes());
            bytes[at + 8..at + 12].copy_from_slice(&size.to_le_bytes());
        }
        bytes
    };
    let crc = crc32fast::hash(lines.as_bytes());
    let size = lines.len() as u32;
    let report = check("d.zip", &patched(0, size));
    assert!(report.valid, "{:#?}", report.errors);
    assert_eq!(report.documents, 50);

    let report = check("d.zip", &patched(crc, size + 7));
    assert_only_error_is_in(&report, Code::InvalidZip, name);
    assert_eq!(
        report.errors[0].message,
        format!(
            "invalid zip file: the entry inflates to {size} bytes, but the archive declares {} (lines 1 to 50 were read)",
            size + 7
        )
    );
}

#[test]
fn zstd_entries_are_read_as_convex_reads_them() {
    use ruzstd::encoding::{compress_to_vec, CompressionLevel};
    let mut lines = String::new();
    for n in 1..=200u8 {
        lines += &(doc(10001, n, &format!(r#""n":{n}"#)) + "\n");
    }
    lines += &(doc(10001, 7, "") + "\n");
    let raw = compress_to_vec(lines.as_bytes(), CompressionLevel::Fastest);
    // Damaged: its bytes are refused, with the entry.
    let mut damaged = raw.clone();
    let middle = damaged.len() / 2;
    for b in &mut damaged[middle..middle + 16] {
        *b ^= 0xA5;
    }
    let report = check(
        "z.zip",
        &zip_raw("users/documents.jsonl", 93, &damaged, lines.as_bytes()),
    );
    assert_only_error_is_in(&report, Code::InvalidZip, "users/documents.jsonl");
    let report = check(
        "z.zip",
        &zip_raw("users/documents.jsonl", 93, b"not zstd", lines.as_bytes()),
    );
    assert_eq!(codes(&report), vec![Code::InvalidZip]);
    assert!(
        report.errors[0]
            .message
            .starts_with("invalid zip file: corrupt zstd stream"),
        "{}",
        report.errors[0].message
    );

    // Frames one after the other (as pzstd writes them) and skippable
    // frames, as libzstd reads them; bytes after a frame that are no frame
    // are refused.
    let half = lines.len() / 2;
    let frames = [
        compress_to_vec(&lines.as_bytes()[..half], CompressionLevel::Fastest),
        compress_to_vec(&lines.as_bytes()[half..], CompressionLevel::Fastest),
    ]
    .concat();
    let mut skippable = 0x184D_2A50_u32.to_le_bytes().to_vec();
    skippable.extend(4u32.to_le_bytes());
    skippable.extend(b"abcd");
    let with_skippable = [&skippable[..], &raw, &skippable].concat();
    // One byte after the last frame is a trailer Convex's reader takes; two are not.
    let with_trailer = [&raw[..], &[0]].concat();
    for raw in [raw.clone(), frames, with_skippable, with_trailer] {
        let report = check(
            "z.zip",
            &zip_raw("users/documents.jsonl", 93, &raw, lines.as_bytes()),
        );
        assert_eq!(report.tables[0].documents, 201);
        assert_eq!(
            codes(&report),
            vec![Code::DuplicateId],
            "{:#?}",
            report.errors
        );
        assert_eq!(
            (report.errors[0].line, report.errors[0].first_line),
            (Some(201), Some(7))
        );
    }
    for trailer in [&b"garbage!"[..], &skippable[..6], &[0, 0]] {
        let raw = [&raw[..], trailer].concat();
        let report = check(
            "z.zip",
            &zip_raw("users/documents.jsonl", 93, &raw, lines.as_bytes()),
        );
        let error = report.errors.iter().find(|e| e.code == Code::InvalidZip);
        assert!(
            error.is_some_and(|e| e
                .message
                .contains("corrupt zstd stream: the bytes after frame 1 are not a zstd frame")),
            "{:#?}",
            report.errors
        );
    }
}

#[test]
fn a_checksum_declared_as_zero_is_not_checked_as_in_convex() {
    let lines = doc(10001, 1, "") + "\n";
    for method in [
        zip::CompressionMethod::Deflated,
        zip::CompressionMethod::Stored,
    ] {
        let mut bytes = zip_with(&[("users/documents.jsonl", lines.as_bytes())], method);
        let local = bytes.windows(4).position(|w| w == b"PK\x03\x04").unwrap() + 14;
        bytes[local..local + 4].fill(0);
        let central = central_header(&bytes) + 16;
        bytes[central..central + 4].fill(0);
        let report = check("zero.zip", &bytes);
        assert!(report.valid, "{method:?}: {:#?}", report.errors);
        assert_eq!(report.documents, 1);
        // Any other wrong checksum is refused, stored or deflated.
        bytes[central] = 1;
        bytes[local] = 1;
        let report = check("wrong.zip", &bytes);
        assert_eq!(codes(&report), vec![Code::InvalidZip], "{method:?}");
    }
}

/// Damaged compressed data in the middle of an entry: every line before
/// the damage is read and checked, and the finding names the line the
/// damage is in, as a read failure in a JSONL file does (it named none).
#[test]
fn damaged_data_in_an_entry_names_the_line_it_is_in() {
    use std::io::Write;
    let mut lines = String::new();
    for n in 1..=3000 {
        lines += &format!("{{\"n\":{n},\"pad\":\"{}\"}}\n", "x".repeat(n % 50));
    }
    let mut encoder =
        flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(lines.as_bytes()).unwrap();
    // Ends the lines on a byte boundary; then a block of the reserved type 3.
    encoder.flush().unwrap();
    let mut raw = encoder.get_ref().clone();
    raw.extend_from_slice(&[0x07, 0xFF, 0xFF, 0x00]);
    let whole = lines.clone() + "{\"n\":3001}\n{\"n\":3002}\n";
    let name = "users/documents.jsonl";
    let bytes = zip_raw(name, 8, &raw, whole.as_bytes());
    for threads in [1, 2] {
        let options = Options {
            threads,
            ..Options::default()
        };
        let report = check_with("damaged.zip", &bytes, &options);
        assert_only_error_is_in(&report, Code::InvalidZip, name);
        let error = &report.errors[0];
        assert_eq!(
            error.message,
            "invalid zip file: corrupt deflate stream (lines 1 to 3000 were read)"
        );
        assert_eq!(error.line, Some(3001), "{error:#?}");
        assert_eq!(report.documents, 3000);
    }
}

/// An entry whose compressed size, in the central directory, reaches past
/// the end of the archive is refused, naming it: a deflated one was read
/// as valid (its stream ends of itself), a stored one said it was larger
/// than its declared size. The other entries are read.
#[test]
fn an_entry_reaching_past_the_end_of_the_archive_is_refused() {
    let users = "{\"a\":1}\n{\"a\":2}\n";
    let posts = "{\"b\":1}\n";
    for method in [
        zip::CompressionMethod::Deflated,
        zip::CompressionMethod::Stored,
    ] {
        let mut bytes = zip_with(
            &[
                ("users/documents.jsonl", users.as_bytes()),
                ("posts/documents.jsonl", posts.as_bytes()),
            ],
            method,
        );
        let at = central_header(&bytes) + 20;
        let declared = bytes.len() as u32 + 1000;
        bytes[at..at + 4].copy_from_slice(&declared.to_le_bytes());
        let report = check("past.zip", &bytes);
        assert_only_error_is_in(&report, Code::InvalidZip, "users/documents.jsonl");
        let message = &report.errors[0].message;
        assert!(
            message.contains(&format!(
                "declares {declared} bytes of compressed data from byte 51, past the end of the \
                 archive ({} bytes)",
                bytes.len()
            )),
            "{method:?}: {message}"
        );
        assert_eq!(report.documents, 1, "{method:?}");
    }
}

/// An archive comment holding an end-of-central-directory record that lists
/// no entries made the archive read as a valid, empty one (which replaceAll
/// imports by deleting every table): it is refused, saying so. A comment
/// that merely holds the record's signature does not change what is read.
#[test]
fn an_end_record_in_the_archive_comment_is_not_read_as_an_empty_archive() {
    let lines = "{\"a\":1}\n{\"a\":2}\n";
    let with_comment = |comment: &[u8]| {
        let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        writer
            .start_file(
                "users/documents.jsonl",
                zip::write::SimpleFileOptions::default(),
            )
            .unwrap();
        std::io::Write::write_all(&mut writer, lines.as_bytes()).unwrap();
        writer.set_raw_comment(comment.into()).unwrap();
        writer.finish().unwrap().into_inner()
    };
    for comment in [
        &b"made by PK\x05\x06 tools"[..],
        b"PK\x05\x06",
        b"xxPK\x05\x06\x00\x00",
    ] {
        let report = check("comment.zip", &with_comment(comment));
        assert!(report.valid, "{comment:?}: {:#?}", report.errors);
        assert_eq!(report.documents, 2, "{comment:?}");
    }
    // A whole record, of an archive with no entries, as the comment; and
    // with bytes after it.
    let mut record = b"PK\x05\x06".to_vec();
    record.extend([0; 18]);
    for comment in [record.clone(), [&record[..], b"xyz"].concat()] {
        let bytes = with_comment(&comment);
        let report = check("empty-comment.zip", &bytes);
        assert_eq!(
            codes(&report),
            vec![Code::InvalidZip],
            "{:#?}",
            report.errors
        );
        let own = bytes.len() - comment.len() - 22;
        assert_eq!(
            report.errors[0].message,
            format!(
                "invalid zip file: the archive's comment holds an end-of-central-directory \
                 record (at byte {}) that lists no entries, and ZIP readers take that one for \
                 the archive's own (at byte {own}): read so, this archive is empty; rewrite it \
                 without that comment",
                own + 22
            )
        );
    }
    // An archive with no entries at all is still an empty archive.
    let report = check("empty.zip", &zip(&[]));
    assert!(report.valid, "{:#?}", report.errors);
    assert!(report.tables.is_empty());
}

/// An entry that gives more bytes than it declares: the lines within the
/// declared size are read and checked, and the finding names the line the
/// size ends in. (The bytes read with the first ones past it were dropped,
/// and with them every line of a small entry.)
#[test]
fn an_entry_larger_than_it_declares_is_read_up_to_its_declared_size() {
    let lines = "{\"a\":1}\n".repeat(9) + "{\"$a\":1}\n";
    for method in [
        zip::CompressionMethod::Deflated,
        zip::CompressionMethod::Stored,
    ] {
        let mut bytes = zip_with(&[("users/documents.jsonl", lines.as_bytes())], method);
        // The central directory's uncompressed size: 5 bytes short.
        let at = central_header(&bytes) + 24;
        let declared = lines.len() as u32 - 5;
        bytes[at..at + 4].copy_from_slice(&declared.to_le_bytes());
        let report = check("long.zip", &bytes);
        assert_only_error_is_in(&report, Code::InvalidZip, "users/documents.jsonl");
        assert_eq!(
            report.errors[0].message,
            "invalid zip file: File is larger than its declared uncompressed size (lines 1 to 9 were read)",
            "{method:?}"
        );
        assert_eq!(report.errors[0].line, Some(10), "{method:?}");
        assert_eq!(report.documents, 9, "{method:?}");
    }
}

#[test]
fn an_entry_must_inflate_to_its_declared_size() {
    let lines = "{\"a\":1}\n".repeat(10);
    let mut bytes = zip(&[("users/documents.jsonl", lines.as_bytes())]);
    // The central directory's uncompressed size: 10 bytes more than there are.
    let at = central_header(&bytes) + 24;
    let declared = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) + 10;
    bytes[at..at + 4].copy_from_slice(&declared.to_le_bytes());
    let report = check("short.zip", &bytes);
    assert_eq!(codes(&report), vec![Code::InvalidZip]);
    assert_eq!(
        report.errors[0].message,
        format!(
            "invalid zip file: the entry inflates to {} bytes, but the archive declares {declared} (lines 1 to 10 were read)",
            lines.len()
        )
    );
}

#[test]
fn a_bad_checksum_is_the_entry_s_and_every_line_is_still_checked() {
    let mut lines = "{\"a\":1}\n".repeat(3000);
    lines.push_str("{\"$bad\":1}\n");
    let mut bytes = zip(&[("users/documents.jsonl", lines.as_bytes())]);
    let at = central_header(&bytes) + 16;
    bytes[at] ^= 1;
    for threads in [1, 2] {
        let options = Options {
            threads,
            ..Options::default()
        };
        let report = check_with("crc.zip", &bytes, &options);
        assert_eq!(
            codes(&report),
            vec![Code::InvalidConvexValue, Code::InvalidZip],
            "{:#?}",
            report.errors
        );
        assert_eq!(
            report.errors[0].line,
            Some(3001),
            "the last line was checked"
        );
        let crc = &report.errors[1];
        assert_eq!(crc.line, None, "a checksum is the whole entry's");
        assert_eq!(
            crc.message,
            "invalid zip file: Invalid checksum (lines 1 to 3001 were read)"
        );
    }
}

#[test]
fn generated_schema_first_line_rules() {
    let report = check(
        "g.zip",
        &zip(&[
            ("a/generated_schema.jsonl", b""),
            ("b/generated_schema.jsonl", b"5\n"),
            ("c/generated_schema.jsonl", b"{bad\n"),
        ]),
    );
    assert_eq!(
        codes(&report),
        vec![
            Code::JsonInvalidRow,
            Code::InvalidConvexValue,
            Code::JsonInvalidRow
        ]
    );
    assert_eq!(
        report.errors[0].message,
        "Row 1 wasn't valid JSON: EOF while parsing a value at line 1 column 0"
    );
    assert_eq!(
        report.errors[1].message,
        "Row 1 wasn't a valid Convex value: first line of generated_schema must be a string"
    );
}

#[test]
fn storage_files_are_checked_against_their_metadata() {
    let sid = id(540, 1);
    let other = id(540, 2);
    let wrong_sha = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";
    let rows = format!(
        "{{\"_id\":\"{sid}\",\"sha256\":\"{wrong_sha}\"}}\n{{\"_id\":\"{other}\"}}\n{{\"_id\":\"{}\"}}\n",
        id(541, 3)
    );
    let report = check(
        "s.zip",
        &zip(&[
            ("_storage/documents.jsonl", rows.as_bytes()),
            (&format!("_storage/{sid}.bin"), b"data"),
        ]),
    );
    assert_eq!(codes(&report), vec![Code::InvalidId, Code::Sha256Mismatch]);
    assert_eq!(report.errors[0].line, Some(3));
    assert!(report.errors[1]
        .message
        .starts_with("Sha256 mismatch. Expected: 47DEQ"));
    let warnings: Vec<Code> = report.warnings.iter().map(|w| w.code).collect();
    assert_eq!(warnings, vec![Code::StorageFileMissing]);
    let missing = &report.warnings[0];
    assert_eq!(
        (missing.entry.as_deref(), missing.line),
        (Some("_storage/documents.jsonl"), Some(2))
    );
    // Files without a metadata stream are ignored, with a warning.
    let report = check("i.zip", &zip(&[(&format!("_storage/{sid}"), b"data")]));
    assert!(report.valid);
    assert_eq!(report.warnings[0].code, Code::StorageFilesIgnored);
    // The extension is not part of the id: two entries of one file.
    let report = check(
        "d.zip",
        &zip(&[
            (
                "_storage/documents.jsonl",
                format!("{{\"_id\":\"{sid}\"}}\n").as_bytes(),
            ),
            (&format!("_storage/{sid}"), b"abc"),
            (&format!("_storage/{sid}.txt"), b"abcd"),
        ]),
    );
    assert_only_error_is_in(&report, Code::DuplicateId, &format!("_storage/{sid}.txt"));
    assert!(report.errors[0]
        .message
        .contains(&format!("_storage/{sid} and")));
    assert_eq!(report.storage.files, 1);
    // Two rows of one file: the later one counts, as Convex collects rows
    // by id. Its digest is the one checked.
    let valid_then_wrong = [wrong_sha, ""].map(|sha| {
        let sha = if sha.is_empty() {
            String::new()
        } else {
            format!(",\"sha256\":\"{sha}\"")
        };
        format!("{{\"_id\":\"{sid}\"{sha}}}\n")
    });
    for (rows, expected) in [
        (valid_then_wrong.concat(), vec![]),
        (
            [&valid_then_wrong[1][..], &valid_then_wrong[0]].concat(),
            vec![Code::Sha256Mismatch],
        ),
    ] {
        let report = check(
            "r.zip",
            &zip(&[
                ("_storage/documents.jsonl", rows.as_bytes()),
                (&format!("_storage/{sid}"), b"abc"),
            ]),
        );
        assert_eq!(codes(&report), expected, "{rows}");
    }
    // A creation time of 0 reads fine; the document Convex inserts for a
    // file refuses it, so it is an error only for a row whose file came.
    let rows = format!(
        "{{\"_id\":\"{sid}\",\"_creationTime\":0}}\n{{\"_id\":\"{other}\",\"_creationTime\":0}}\n"
    );
    let report = check(
        "t.zip",
        &zip(&[
            ("_storage/documents.jsonl", rows.as_bytes()),
            (&format!("_storage/{sid}"), b"abc"),
        ]),
    );
    assert_eq!(codes(&report), vec![Code::InvalidDocumentError]);
    let error = &report.errors[0];
    assert_eq!(
        (error.entry.as_deref(), error.line, error.field.as_deref()),
        (
            Some("_storage/documents.jsonl"),
            Some(1),
            Some("_creationTime")
        )
    );
}

#[test]
fn more_user_tables_than_a_deployment_takes_are_refused_with_or_without_a_target() {
    // `_tables` rows only: each listed table is created empty.
    let archive = |count: u32| {
        let rows: String = (0..count)
            .map(|i| format!("{{\"name\":\"t{i}\",\"id\":{}}}\n", 10001 + i))
            .collect();
        zip(&[("_tables/documents.jsonl", rows.as_bytes())])
    };
    let refused = |report: &snappack::report::Report| codes(report).contains(&Code::TooManyTables);
    for (count, want) in [(10_000, false), (10_001, true)] {
        let report = check("many.zip", &archive(count));
        assert_eq!(
            (refused(&report), report.valid),
            (want, !want),
            "{count} tables"
        );
    }
    // With the target's tables, those the import keeps count too, except in replaceAll.
    let target = TargetTables {
        tables: ["kept", "_scheduled_jobs"]
            .iter()
            .zip(1..)
            .map(|(name, number)| TargetTable {
                component: String::new(),
                name: (*name).into(),
                number,
                documents: 1,
            })
            .collect(),
    };
    for (mode, want) in [(ImportMode::Append, true), (ImportMode::ReplaceAll, false)] {
        let options = Options {
            mode,
            target: Some(target.clone()),
            ..Options::default()
        };
        let report = check_with("many.zip", &archive(10_000), &options);
        assert_eq!(refused(&report), want, "{mode:?}");
    }
}

#[test]
fn target_tables_and_modes() {
    let archive = zip(&[
        (
            "_tables/documents.jsonl",
            b"{\"name\":\"table1\",\"id\":10001}\n{\"name\":\"table2\",\"id\":10002}\n",
        ),
        ("table1/documents.jsonl", doc(10001, 1, "").as_bytes()),
        ("table2/documents.jsonl", doc(10002, 1, "").as_bytes()),
        ("table3/documents.jsonl", br#"{"x":1}"#),
    ]);
    let target = |tables: &[(&str, u32, u64)]| TargetTables {
        tables: tables
            .iter()
            .map(|(name, number, documents)| TargetTable {
                component: String::new(),
                name: (*name).into(),
                number: *number,
                documents: *documents,
            })
            .collect(),
    };
    let run = |mode: ImportMode, t: TargetTables| {
        let report = check_with(
            "m.zip",
            &archive,
            &Options {
                mode,
                target: Some(t),
                ..Options::default()
            },
        );
        codes(&report)
    };
    // Empty target: every mode passes.
    for mode in ImportMode::ALL {
        assert_eq!(run(mode, target(&[])), vec![], "{mode:?}");
    }
    // A table-level finding names the table's documents entry.
    let report = check_with(
        "m.zip",
        &archive,
        &Options {
            mode: ImportMode::RequireEmpty,
            target: Some(target(&[("table1", 10001, 5)])),
            ..Options::default()
        },
    );
    assert_eq!(codes(&report), vec![Code::TableExists]);
    assert_eq!(
        report.errors[0].entry.as_deref(),
        Some("table1/documents.jsonl")
    );
    // A list no deployment has is an options error, whatever the mode.
    let system = target(&[
        ("_storage", 540, 0),
        ("_file_storage", 540, 0),
        ("t", 10009, 0),
    ]);
    assert_eq!(run(ImportMode::Append, system), vec![]);
    for (bad, why) in [
        (target(&[("t", 0, 0)]), "table 't' has number 0"),
        (
            target(&[("no space", 10001, 0)]),
            "table 'no space': name invalid",
        ),
        (
            target(&[("t", 10001, 0), ("t", 10002, 0)]),
            "table 't' is listed twice",
        ),
        (
            target(&[("t", 10001, 0), ("u", 10001, 0)]),
            "table 'u' has number 10001, as another",
        ),
    ] {
        let report = check_with(
            "m.zip",
            &archive,
            &Options {
                target: Some(bad),
                ..Options::default()
            },
        );
        assert_eq!(codes(&report), [Code::InvalidOptions], "{why}");
        assert!(
            report.errors[0].message.contains(why),
            "{}",
            report.errors[0].message
        );
    }
    // Same tables, other documents.
    let clone = target(&[("table1", 10001, 1), ("table2", 10002, 1)]);
    assert_eq!(run(ImportMode::Append, clone.clone()), vec![]);
    assert_eq!(run(ImportMode::Replace, clone.clone()), vec![]);
    assert_eq!(
        run(ImportMode::RequireEmpty, clone),
        vec![Code::TableExists, Code::TableExists]
    );
    // Numbers flipped.
    let flipped = target(&[("table2", 10001, 1), ("table1", 10002, 1)]);
    assert_eq!(run(ImportMode::Replace, flipped.clone()), vec![]);
    assert_eq!(run(ImportMode::ReplaceAll, flipped.clone()), vec![]);
    assert_eq!(
        run(ImportMode::Append, flipped),
        vec![Code::TableNumberConflict, Code::TableNumberConflict]
    );
    // Unrelated tables on the same numbers.
    let unrelated = target(&[("table3x", 10001, 1), ("table4", 10002, 1)]);
    assert_eq!(
        run(ImportMode::Replace, unrelated.clone()),
        vec![Code::TableConflict, Code::TableConflict]
    );
    assert_eq!(run(ImportMode::ReplaceAll, unrelated), vec![]);
    // Step 3: table3 reuses the target's number for its name.
    let report = check_with(
        "m.zip",
        &archive,
        &Options {
            mode: ImportMode::Replace,
            target: Some(target(&[("table3", 10010, 0)])),
            ..Options::default()
        },
    );
    let t3 = report.tables.iter().find(|t| t.name == "table3").unwrap();
    assert_eq!(
        (t3.number, t3.number_source),
        (Some(10010), NumberSource::Target)
    );
    let conflict = check_with(
        "m.zip",
        &archive,
        &Options {
            mode: ImportMode::Replace,
            target: Some(target(&[("table9", 10001, 3)])),
            ..Options::default()
        },
    );
    assert!(conflict.errors[0]
        .message
        .contains("New table `table1` has IDs that conflict with existing table `table9`"));
}

#[test]
fn appending_to_a_table_whose_number_another_imported_table_took_is_a_conflict() {
    // table2 takes 10001 from its first `_id`; table1, without `_id`s, is on
    // 10001 in the target, and appended to, it stays there.
    let archive = zip(&[
        ("table2/documents.jsonl", doc(10001, 1, "").as_bytes()),
        ("table1/documents.jsonl", b"{\"a\":1}\n"),
    ]);
    let target = TargetTables {
        tables: vec![TargetTable {
            component: String::new(),
            name: "table1".into(),
            number: 10001,
            documents: 1,
        }],
    };
    let run = |mode| {
        let options = Options {
            mode,
            target: Some(target.clone()),
            ..Options::default()
        };
        check_with("m.zip", &archive, &options)
    };
    let appended = run(ImportMode::Append);
    assert_eq!(codes(&appended), [Code::TableNumberConflict]);
    let conflict = &appended.errors[0];
    assert_eq!(
        conflict.message,
        "conflict between `table2` and `table1` with table number 10001"
    );
    // On the first line of table1, whose first document gives it no
    // number, and the line that gives table2 its number.
    let at = |f: &snappack::Finding| (f.entry.clone(), f.line, f.first_entry.clone(), f.first_line);
    assert_eq!(
        at(conflict),
        (
            Some("table1/documents.jsonl".into()),
            Some(1),
            Some("table2/documents.jsonl".into()),
            Some(1)
        )
    );
    assert_eq!(conflict.table.as_deref(), Some("table1"));
    let table1 = appended.tables.iter().find(|t| t.name == "table1");
    assert_eq!(table1.unwrap().number, Some(10001));
    // The report alone says the same.
    let base = check("m.zip", &archive);
    let checked = check_target(&base, &target, ImportMode::Append).unwrap();
    assert_eq!(checked.errors, appended.errors);
    // table2's number from its `_tables` row: that row is the first line.
    let listed = zip(&[
        (
            "_tables/documents.jsonl",
            b"{\"name\":\"other\",\"id\":10005}\n{\"name\":\"table2\",\"id\":10001}\n",
        ),
        ("table2/documents.jsonl", doc(10001, 1, "").as_bytes()),
        ("table1/documents.jsonl", b"{\"a\":1}\n"),
    ]);
    let options = Options {
        mode: ImportMode::Append,
        target: Some(target.clone()),
        ..Options::default()
    };
    let appended = check_with("m.zip", &listed, &options);
    assert_eq!(codes(&appended), [Code::TableNumberConflict]);
    assert_eq!(
        at(&appended.errors[0]),
        (
            Some("table1/documents.jsonl".into()),
            Some(1),
            Some("_tables/documents.jsonl".into()),
            Some(2)
        )
    );
    // Replaced, table1 becomes a new table with a number of its own.
    let replaced = run(ImportMode::Replace);
    assert!(replaced.valid, "{:?}", replaced.errors);
    let table1 = replaced.tables.iter().find(|t| t.name == "table1");
    assert_eq!(table1.unwrap().number_source, NumberSource::Unassigned);
}

#[test]
fn findings_about_a_table_only_listed_in_tables_point_at_its_row() {
    let archive = zip(&[(
        "_components/a/_tables/documents.jsonl",
        b"{\"name\":\"s\",\"id\":10002}\n{\"name\":\"t\",\"id\":10001}\n",
    )]);
    let target = |name: &str| TargetTables {
        tables: vec![TargetTable {
            component: "a".into(),
            name: name.into(),
            number: 10001,
            documents: 1,
        }],
    };
    let base = check("m.zip", &archive);
    assert!(base.valid, "{:?}", base.errors);
    for (mode, target, code) in [
        (ImportMode::Replace, target("x"), Code::TableConflict),
        (ImportMode::RequireEmpty, target("t"), Code::TableExists),
    ] {
        let options = Options {
            mode,
            target: Some(target.clone()),
            ..Options::default()
        };
        let report = check_with("m.zip", &archive, &options);
        assert_eq!(codes(&report), [code]);
        let finding = &report.errors[0];
        assert_eq!(
            (
                finding.entry.as_deref(),
                finding.line,
                finding.table.as_deref()
            ),
            (
                Some("_components/a/_tables/documents.jsonl"),
                Some(2),
                Some("t")
            )
        );
        // The report alone locates it the same.
        let checked = check_target(&base, &target, mode).unwrap();
        assert_eq!(checked.errors, report.errors);
    }
}

/// A system table of the target keeps its number in every mode (ReplaceAll
/// deletes user tables only), so an imported table numbered as it is a
/// conflict, worded as Convex words it, as the server refuses it.
#[test]
fn a_number_a_system_table_holds_conflicts_in_every_mode_even_replace_all() {
    let archive = zip(&[("files/documents.jsonl", doc(540, 1, "").as_bytes())]);
    let target = |name: &str| TargetTables {
        tables: vec![TargetTable {
            component: String::new(),
            name: name.into(),
            number: 540,
            documents: 1,
        }],
    };
    let base = check("m.zip", &archive);
    assert!(base.valid, "{:?}", base.errors);
    for (holder, says) in [
        ("_storage", "existing system table"),
        (
            "_scheduled_functions",
            "existing internal table. Consider importing",
        ),
        ("photos", "existing table `photos`"),
    ] {
        for mode in [
            ImportMode::Append,
            ImportMode::Replace,
            ImportMode::ReplaceAll,
        ] {
            let options = Options {
                mode,
                target: Some(target(holder)),
                ..Options::default()
            };
            let report = check_with("m.zip", &archive, &options);
            // ReplaceAll deletes a user table, and its number is free.
            if mode == ImportMode::ReplaceAll && holder == "photos" {
                assert!(report.valid, "{:?}", report.errors);
                continue;
            }
            assert_eq!(codes(&report), [Code::TableConflict], "{holder} {mode:?}");
            let message = &report.errors[0].message;
            assert!(
                message.starts_with(&format!(
                    "New table `files` has IDs that conflict with {says}"
                )),
                "{message}"
            );
            let checked = check_target(&base, &target(holder), mode).unwrap();
            assert_eq!(checked.errors, report.errors);
        }
    }
}

#[test]
fn a_report_checked_against_a_target_gives_the_numbers_and_conflicts_validating_with_it_gives() {
    let archive = zip(&[
        (
            "_tables/documents.jsonl",
            b"{\"name\":\"table1\",\"id\":10001}\n{\"name\":\"table2\",\"id\":10002}\n{\"name\":\"empty\",\"id\":10007}\n",
        ),
        ("table1/documents.jsonl", doc(10001, 1, "").as_bytes()),
        ("table2/documents.jsonl", doc(10002, 1, "").as_bytes()),
        // Numbered by its first `_id`, and by none.
        ("table4/documents.jsonl", doc(10004, 1, "").as_bytes()),
        ("table3/documents.jsonl", b"{\"x\":1}\n{\"x\":2}\n"),
        (
            "_components/c/table1/documents.jsonl",
            doc(10001, 2, "").as_bytes(),
        ),
    ]);
    let table = |component: &str, name: &str, number: u32, documents: u64| TargetTable {
        component: component.into(),
        name: name.into(),
        number,
        documents,
    };
    let targets = [
        vec![],
        vec![table("", "table1", 10001, 1), table("", "table2", 10002, 0)],
        vec![table("", "table2", 10001, 1), table("", "table1", 10002, 1)],
        vec![
            table("", "table3x", 10001, 1),
            table("", "table4", 10002, 1),
        ],
        // table3 takes the target's number, unless the archive holds it.
        vec![table("", "table3", 10010, 4), table("", "_storage", 540, 0)],
        vec![table("", "table3", 10004, 4), table("", "other", 10009, 2)],
        vec![table("c", "table1", 10005, 1), table("c", "x", 10001, 1)],
        vec![
            table("", "empty", 10008, 3),
            table("", "_scheduled_jobs", 10007, 3),
        ],
    ];
    let base = check("m.zip", &archive);
    assert!(base.valid, "{:?}", base.errors);
    for tables in targets {
        let target = TargetTables { tables };
        for mode in ImportMode::ALL {
            let options = Options {
                mode,
                target: Some(target.clone()),
                ..Options::default()
            };
            let with = check_with("m.zip", &archive, &options);
            let checked = check_target(&base, &target, mode).unwrap();
            let why = format!("{mode:?} against {:?}", target.tables);
            // table3's rows carry no `_id`s, but a report cannot say so: a
            // number the target gives it leaves the check inexact.
            let table3 = checked.tables.iter().find(|t| t.name == "table3");
            assert_eq!(checked.exact, table3.unwrap().number.is_none(), "{why}");
            assert_eq!(checked.tables, with.tables, "{why}");
            assert_eq!(checked.errors, with.errors, "{why}");
        }
    }

    // A list no deployment has is refused.
    let twice = TargetTables {
        tables: vec![table("", "t", 10001, 0), table("", "t", 10002, 0)],
    };
    let refused = check_target(&base, &twice, ImportMode::Append).unwrap_err();
    assert_eq!(refused.code(), "InvalidOptions");
    assert!(
        refused.to_string().contains("table 't' is listed twice"),
        "{refused}"
    );

    // Documents with `_id`s after a first one without: only validating with
    // the target checks them against the number it gives the table.
    let late_ids = zip(&[(
        "t/documents.jsonl",
        format!("{{\"x\":1}}\n{}\n", doc(10001, 1, "")).as_bytes(),
    )]);
    let base = check("late.zip", &late_ids);
    let target = TargetTables {
        tables: vec![table("", "t", 10002, 1)],
    };
    let checked = check_target(&base, &target, ImportMode::Append).unwrap();
    assert!(!checked.exact);
    let with = check_with(
        "late.zip",
        &late_ids,
        &Options {
            mode: ImportMode::Append,
            target: Some(target.clone()),
            ..Options::default()
        },
    );
    assert_eq!(codes(&with), vec![Code::ImportConflict]);
    assert_eq!(checked.tables, with.tables);
    // A table the target does not number keeps its ids unchecked, as validating does.
    let elsewhere = TargetTables {
        tables: vec![table("", "u", 10002, 1)],
    };
    assert!(
        check_target(&base, &elsewhere, ImportMode::Append)
            .unwrap()
            .exact
    );
}

#[test]
fn max_errors_caps_the_list_not_the_count() {
    let lines = vec!["[]"; 50].join("\n");
    let report = check_with(
        "e.zip",
        &zip(&[("t/documents.jsonl", lines.as_bytes())]),
        &Options {
            max_errors: Some(5),
            ..Options::default()
        },
    );
    assert_eq!(report.errors.len(), 5);
    assert_eq!(report.error_count, 50);
    let cap = report.warnings.last().unwrap();
    assert_eq!(cap.code, Code::TooManyErrors);
    assert_eq!(cap.message, "50 errors in all; only the first 5 are listed");

    let lines = vec!["[]"; 1200].join("\n");
    let report = check_with(
        "e.zip",
        &zip(&[("t/documents.jsonl", lines.as_bytes())]),
        &Options {
            max_errors: Some(0),
            ..Options::default()
        },
    );
    assert!(report.errors.is_empty());
    assert_eq!(
        report.warnings.last().unwrap().message,
        "1,200 errors in all; none are listed"
    );
    // One error, or one listed, is said in the singular (it was "1 errors
    // in all" and "only the first 1 are listed").
    for (lines, max_errors, said) in [
        (1, 0, "1 error in all; it is not listed"),
        (3, 1, "3 errors in all; only the first is listed"),
    ] {
        let lines = vec!["[]"; lines].join("\n");
        let report = check_with(
            "e.zip",
            &zip(&[("t/documents.jsonl", lines.as_bytes())]),
            &Options {
                max_errors: Some(max_errors),
                ..Options::default()
            },
        );
        assert_eq!(report.warnings.last().unwrap().message, said);
    }
}

#[test]
fn stored_entries_and_deflate_read_alike() {
    let body = (0..100)
        .map(|n| doc(10001, n, ""))
        .collect::<Vec<_>>()
        .join("\n");
    let entries: [(&str, &[u8]); 1] = [("t/documents.jsonl", body.as_bytes())];
    let a = check("a.zip", &zip_with(&entries, zip::CompressionMethod::Stored));
    let b = check("a.zip", &zip(&entries));
    assert!(a.valid && b.valid);
    assert_eq!(a, b);
    assert_eq!(a.tables[0].bytes, body.len() as u64);
}

#[test]
fn cancelling_stops_the_walk() {
    let body = (0..300_000u32)
        .map(|n| format!(r#"{{"n":{n}}}"#))
        .collect::<Vec<_>>()
        .join("\n");
    let bytes = zip_with(
        &[("t/documents.jsonl", body.as_bytes())],
        zip::CompressionMethod::Stored,
    );
    let mut calls = 0;
    let report = snappack::validate(
        std::io::Cursor::new(&bytes),
        "c.zip",
        &Options::default(),
        &mut |_| {
            calls += 1;
            calls < 2
        },
    );
    assert!(!report.valid);
    assert_eq!(report.warnings.last().unwrap().code, Code::Cancelled);
    assert!(report.documents < 300_000);
}

#[test]
fn legacy_generated_schemas() {
    let id_a = id(10001, 1);
    let schema = format!(
        "\"{{\\\"_creationTime\\\": float64, \\\"_id\\\": id<10001>, \\\"n\\\": int64 | string}}\"\n{{\"{id_a}\": {{\"n\": \"int64\"}}}}\n"
    );
    let row = format!(r#"{{"_id":"{id_a}","_creationTime":1.7e12,"n":"5"}}"#);
    let report = check(
        "l.zip",
        &zip(&[
            ("t/generated_schema.jsonl", schema.as_bytes()),
            ("t/documents.jsonl", row.as_bytes()),
        ]),
    );
    assert!(report.valid, "{:?}", report.errors);
    assert_eq!(report.warnings[0].code, Code::LegacyGeneratedSchema);
    assert_eq!(report.warnings[0].table.as_deref(), Some("t"));
    // It says what that means for the values: they are not decoded.
    assert!(report.warnings[0].message.contains("packs and imports"));
    assert!(report.warnings[0].message.contains("stay strings"));
    let report = check(
        "l.zip",
        &zip(&[
            ("t/generated_schema.jsonl", b"\"{broken\"\n"),
            (
                "u/generated_schema.jsonl",
                b"\"never\"\n[1]\n{\"a\":1,\"b\":2}\n",
            ),
        ]),
    );
    assert_eq!(
        codes(&report),
        vec![
            Code::InvalidGeneratedSchema,
            Code::InvalidConvexValue,
            Code::InvalidConvexValue
        ]
    );
    assert!(report.errors[0]
        .message
        .starts_with("cannot parse t/generated_schema.jsonl: "));
    assert_eq!(
        report.errors[1].message,
        "Row 2 wasn't a valid Convex value: overrides should be object"
    );
    assert_eq!(report.errors[2].line, Some(3));
    // Each names the table whose schema it is.
    let tables: Vec<_> = report.errors.iter().map(|e| e.table.as_deref()).collect();
    assert_eq!(tables, [Some("t"), Some("u"), Some("u")]);
}

/// A legacy schema whose deflate stream breaks after its first lines: the
/// entry's error, as a documents entry's would be (it was once a UTF-8 error).
#[test]
fn a_legacy_schema_that_cannot_be_read_to_its_end_is_an_invalid_zip() {
    let shape = "\"{\\\"_id\\\": id<10001>}\"\n{\"a\": 1}\n";
    // A stored block with the first lines, then a block of the reserved type 3.
    let mut raw = vec![0x00];
    raw.extend_from_slice(&(shape.len() as u16).to_le_bytes());
    raw.extend_from_slice(&(!(shape.len() as u16)).to_le_bytes());
    raw.extend_from_slice(shape.as_bytes());
    raw.push(0x07);
    let mut content = shape.as_bytes().to_vec();
    content.extend_from_slice(b"{\"b\": 2}\n");
    let report = check(
        "l.zip",
        &zip_raw("t/generated_schema.jsonl", 8, &raw, &content),
    );
    // The lines before the damage are read and checked (the second is no
    // override line); the damage is where the third starts.
    assert_eq!(
        codes(&report),
        vec![Code::InvalidConvexValue, Code::InvalidZip],
        "{:?}",
        report.errors
    );
    assert_eq!(report.errors[0].line, Some(2));
    assert_eq!(
        report.errors[1].message,
        "invalid zip file: corrupt deflate stream"
    );
    assert_eq!(report.errors[1].line, Some(3));
    assert_eq!(
        report.errors[1].entry.as_deref(),
        Some("t/generated_schema.jsonl")
    );
}

#[test]
fn two_threads_report_exactly_what_one_does() {
    use snappack::gen::{Fault, GenSpec};
    let spec = GenSpec {
        tables: 3,
        total_documents: Some(20_000),
        components: vec!["a".into()],
        storage_files: 3,
        faults: vec![
            Fault::DuplicateId,
            Fault::ForeignTableId,
            Fault::UndecodableId,
            Fault::BadJsonLine,
            Fault::OversizedDocument,
            Fault::Sha256Mismatch,
        ],
        ..GenSpec::default()
    };
    let bytes = generated(&spec);
    // The same archive with a damaged documents entry: a byte of its
    // compressed data flipped (a CRC32 or inflate error, mid-entry).
    let mut damaged = bytes.clone();
    let at = damaged.len() / 2;
    damaged[at] ^= 0x55;
    for bytes in [&bytes, &damaged] {
        let one = check_with("s.zip", bytes, &Options::default());
        let two = check_with(
            "s.zip",
            bytes,
            &Options {
                threads: 2,
                ..Options::default()
            },
        );
        assert!(one.error_count >= 6);
        assert_eq!(
            serde_json::to_value(&one).unwrap(),
            serde_json::to_value(&two).unwrap()
        );
    }
}

#[test]
fn a_line_that_is_not_utf8_ends_its_entry_alike_with_one_thread_or_two() {
    // A table in two entries (a prefix folder and the root) of many chunks'
    // worth of lines; line 4000 of the first is not UTF-8. Lines after it are
    // not read, so their ids are not seen: the second entry repeats them
    // without a duplicate, and repeats one id from before line 4000 with one.
    let number = 10001;
    let id_of =
        |n: u32| DocumentId::new(number, n.to_le_bytes().repeat(4).try_into().unwrap()).to_string();
    let line = |n: u32| {
        format!(
            r#"{{"_creationTime":1700000000000.5,"_id":"{}","text":"{}"}}"#,
            id_of(n),
            "long enough to spread over several chunks ".repeat(8)
        )
    };
    let mut first = String::new();
    for n in 0..12_000 {
        first.push_str(&line(n));
        first.push('\n');
    }
    let mut first = first.into_bytes();
    let at = first
        .iter()
        .enumerate()
        .filter(|(_, &c)| c == b'\n')
        .nth(3998)
        .unwrap()
        .0
        + 1;
    first.insert(at, 0xFF);
    let second = format!("{}\n{}\n", line(11_000), line(5));
    let tables = format!("{{\"name\":\"users\",\"id\":{number}}}\n");
    let bytes = zip(&[
        ("_tables/documents.jsonl", tables.as_bytes()),
        ("users/documents.jsonl", &first),
        ("users/generated_schema.jsonl", UNIFORM),
        ("more/users/documents.jsonl", second.as_bytes()),
        ("more/users/generated_schema.jsonl", UNIFORM),
    ]);
    let one = check_with("s.zip", &bytes, &Options::default());
    let two = check_with(
        "s.zip",
        &bytes,
        &Options {
            threads: 2,
            ..Options::default()
        },
    );
    assert_eq!(
        serde_json::to_value(&one).unwrap(),
        serde_json::to_value(&two).unwrap()
    );
    let found: Vec<_> = one.errors.iter().map(|f| (f.code, f.line)).collect();
    assert_eq!(
        found,
        [(Code::InvalidZip, Some(4000)), (Code::DuplicateId, Some(2))],
        "{:#?}",
        one.errors
    );
}

/// Workers that share a walk (`validate_shard`, `merge_shards`) make the
/// report one walk makes: `check_with` compares them on every archive of
/// these tests; these archives have findings in many tables, components and
/// stored files, and caps that cut the lists short.
#[test]
fn workers_sharing_a_walk_report_what_one_walk_reports() {
    use snappack::gen::{Fault, GenSpec};
    for seed in 1..=8u64 {
        // A few faults each, a different few per seed.
        let faults = Fault::ALL
            .iter()
            .copied()
            .cycle()
            .skip(seed as usize * 3)
            .take(4)
            .collect();
        let spec = GenSpec {
            seed,
            tables: 3,
            documents_per_table: 40,
            components: vec!["c".into(), "c/d".into()],
            storage_files: 2,
            faults,
            ..GenSpec::default()
        };
        let zip = generated(&spec);
        for max_errors in [1, 2, 3, 1000] {
            let options = Options {
                max_errors: Some(max_errors),
                ..Options::default()
            };
            check_with("snapshot.zip", &zip, &options);
        }
    }

    // Errors in three tables and files missing in two components: with a
    // cap of 4, the listed errors are the walk's first four.
    let bad = |table: u32| {
        [
            doc(table, 1, ""),
            doc(table, 1, ""),
            "{".to_owned(),
            doc(table, 2, r#""$x":1"#),
        ]
        .join("\n")
            + "\n"
    };
    let storage_row = |n: u8| {
        format!(
            r#"{{"_id":"{}","_creationTime":1.5,"sha256":"l981iLWj8kurw4UbNy8Lpxqdzd7UOxS50Glhv8FwfZ0=","size":9}}"#,
            id(540, n)
        ) + "\n"
    };
    let (a, b, c) = (bad(10001), bad(10002), bad(10001));
    let (s1, s2) = (storage_row(1), storage_row(2));
    let bytes = zip(&[
        ("a/documents.jsonl", a.as_bytes()),
        ("b/documents.jsonl", b.as_bytes()),
        ("_components/x/c/documents.jsonl", c.as_bytes()),
        ("_storage/documents.jsonl", s1.as_bytes()),
        ("_components/x/_storage/documents.jsonl", s2.as_bytes()),
        (&format!("_storage/{}", id(540, 1)), b"wrong"),
    ]);
    let options = Options {
        max_errors: Some(4),
        ..Options::default()
    };
    let report = check_with("x.zip", &bytes, &options);
    assert_eq!(report.error_count, 10, "{report:#?}");
    let lines: Vec<_> = report
        .errors
        .iter()
        .map(|f| (f.entry.as_deref(), f.line))
        .collect();
    assert_eq!(
        lines,
        [
            (Some("a/documents.jsonl"), Some(2)),
            (Some("a/documents.jsonl"), Some(3)),
            (Some("a/documents.jsonl"), Some(4)),
            (Some("b/documents.jsonl"), Some(2)),
        ]
    );
    let warned: Vec<Code> = report.warnings.iter().map(|f| f.code).collect();
    assert!(warned.contains(&Code::StorageFileMissing), "{warned:?}");
    assert_eq!(warned.last(), Some(&Code::TooManyErrors));
}

#[test]
fn each_worker_counts_progress_through_its_own_share() {
    use snappack::validate::{merge_shards, validate_shard, Shard, ShardError};
    let tables: Vec<String> = (0..4)
        .map(|t| {
            (1..=60)
                .map(|n| doc(10001 + t, n, r#""v":"some text""#) + "\n")
                .collect()
        })
        .collect();
    let names: Vec<String> = (0..4).map(|t| format!("t{t}/documents.jsonl")).collect();
    let entries: Vec<(&str, &[u8])> = names
        .iter()
        .zip(&tables)
        .map(|(n, t)| (n.as_str(), t.as_bytes()))
        .collect();
    let bytes = zip(&entries);
    let mut shards = Vec::new();
    let mut totals = 0;
    for index in 0..2 {
        let mut seen = Vec::new();
        let shard = Shard { index, count: 2 };
        shards.push(validate_shard(
            std::io::Cursor::new(&bytes),
            "x.zip",
            &Options::default(),
            shard,
            &mut |p| {
                seen.push(p);
                true
            },
        ));
        let last = seen.last().expect("progress");
        assert_eq!(last.bytes_read, last.bytes_total);
        assert!(seen.windows(2).all(|w| w[0].bytes_read <= w[1].bytes_read));
        assert_eq!(last.documents, 120, "two tables of 60 each");
        totals += last.bytes_total;
    }
    // Each worker's share is its entries' compressed bytes: together, most
    // of the archive, never more.
    assert!(totals > bytes.len() as u64 / 2 && totals < bytes.len() as u64);
    let report = merge_shards(shards.clone()).expect("merges");
    assert!(report.valid);
    assert_eq!(report.documents, 240);

    // An input that changed between the workers' reads: one fails to open
    // it, or plans other tables. Never a merged report that looks valid.
    let worker = |bytes: &[u8], index| {
        let shard = Shard { index, count: 2 };
        validate_shard(
            std::io::Cursor::new(bytes),
            "x.zip",
            &Options::default(),
            shard,
            &mut |_| true,
        )
    };
    let cut = &bytes[..bytes.len() / 2];
    let fewer = zip(&entries[..3]);
    for changed in [cut, &fewer[..]] {
        let merged = merge_shards(vec![worker(&bytes, 0), worker(changed, 1)]);
        assert!(
            matches!(merged, Err(ShardError::Mismatched(_))),
            "{merged:?}"
        );
    }

    shards.pop();
    assert!(matches!(
        merge_shards(shards),
        Err(ShardError::Mismatched(_))
    ));
    assert!(matches!(
        merge_shards(Vec::new()),
        Err(ShardError::Mismatched(_))
    ));

    // A worker that does not exist is told so, as an option error.
    let report = worker(&bytes, 2).report;
    assert_eq!(codes(&report), [Code::InvalidOptions]);
    assert!(report.errors[0].message.contains("worker 2 of 2"));
}

/// The report has one error, `code`, about entry `entry`.
fn assert_only_error_is_in(report: &snappack::Report, code: Code, entry: &str) {
    assert_eq!(codes(report), vec![code], "{:#?}", report.errors);
    assert_eq!(report.errors[0].entry.as_deref(), Some(entry));
}

/// An input that cannot be read on (a disk error, or a file cut short
/// while it is read) is not a damaged archive: it is reported once, as
/// `ReadFailed`, where the walk was, and the walk stops there.
#[test]
fn an_input_that_fails_mid_walk_is_reported_once_and_the_walk_stops() {
    use snappack::gen::GenSpec;
    use snappack::validate::{merge_shards, validate, validate_shard, Shard};
    let bytes = generated(&GenSpec {
        tables: 4,
        documents_per_table: 3000,
        storage_files: 2,
        ..GenSpec::default()
    });
    let whole = check("s.zip", &bytes);
    assert!(whole.valid, "{:#?}", whole.errors);
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(&bytes)).expect("zip");
    let entries: Vec<(String, u64, u64)> = (0..archive.len())
        .map(|i| {
            let e = archive.by_index_raw(i).expect("entry");
            let name = e.name().expect("name").into_owned();
            (name, e.header_start(), e.compressed_size())
        })
        .collect();
    let documents: Vec<&(String, u64, u64)> = entries
        .iter()
        .filter(|(name, ..)| name.ends_with("/documents.jsonl") && !name.starts_with('_'))
        .collect();
    assert!(documents.len() >= 3, "{entries:?}");

    // In the middle of the second table's documents: every document of the
    // first table is counted, some of the second's, none after. (Only that
    // entry fails, as when a file is cut short after the walk read the
    // central directory and the generated schemas.)
    let (name, start, len) = documents[1];
    let failing = |ends| FailsAt::new(&bytes, start + 100 + len / 2, ends).until(start + len);
    for ends in [false, true] {
        let input = failing(ends);
        let report = validate(input, "s.zip", &Options::default(), &mut |_| true);
        assert_only_error_is_in(&report, Code::ReadFailed, name);
        let message = &report.errors[0].message;
        let why = if ends {
            "it ends at byte"
        } else {
            "the disk failed"
        };
        assert!(message.starts_with("cannot read the input: "), "{message}");
        assert!(message.contains(why), "{message}");
        assert_eq!(report.error_count, 1);
        let counted = |r: &snappack::Report, entry: &str| {
            let table = r
                .tables
                .iter()
                .find(|t| t.entries.iter().any(|e| e == entry));
            table.expect("table").documents
        };
        assert_eq!(
            counted(&report, &documents[0].0),
            counted(&whole, &documents[0].0)
        );
        assert!((1..counted(&whole, name)).contains(&counted(&report, name)));
        // The line reading had reached, as in a JSONL file.
        assert_eq!(report.errors[0].line, Some(counted(&report, name) + 1));
        assert_eq!(counted(&report, &documents[2].0), 0);
        assert_eq!(report.storage.files, 0);

        // Workers that share the walk each stop where the input failed them.
        let shards = (0..2)
            .map(|index| {
                let input = failing(ends);
                let shard = Shard { index, count: 2 };
                validate_shard(input, "s.zip", &Options::default(), shard, &mut |_| true)
            })
            .collect();
        let merged = merge_shards(shards).expect("merges");
        assert!(!merged.valid);
        assert!(!merged.errors.is_empty());
        assert!(
            codes(&merged).iter().all(|&c| c == Code::ReadFailed),
            "{merged:#?}"
        );
    }

    // While generated schemas are read, before any table is planned.
    let (schema, start, _) = entries
        .iter()
        .filter(|(name, ..)| name.ends_with("/generated_schema.jsonl"))
        .nth(1)
        .expect("a second generated schema");
    let input = FailsAt::new(&bytes, start + 1, false).until(start + 2);
    let report = validate(input, "s.zip", &Options::default(), &mut |_| true);
    assert_only_error_is_in(&report, Code::ReadFailed, schema);
    assert!(report.tables.is_empty());

    // While the archive is opened: no entry to name.
    let report = validate(
        FailsAt::new(&bytes, 10, true),
        "s.zip",
        &Options::default(),
        &mut |_| true,
    );
    assert_eq!(codes(&report), [Code::ReadFailed], "{:#?}", report.errors);
    assert!(
        report.errors[0].message.contains("it ends at byte"),
        "{:#?}",
        report.errors
    );
}

/// Lines longer than a chunk carry over into whichever buffer the second
/// thread handed back, which may be smaller than the line.
#[test]
fn long_lines_read_the_same_with_two_threads() {
    let long = |n: u8| doc(10001, n, &format!(r#""s":"{}""#, "\\u0041".repeat(50_000))) + "\n";
    let table: String = (1..=4).map(long).collect();
    let bytes = zip(&[("t/documents.jsonl", table.as_bytes())]);
    for threads in [1, 2] {
        let options = Options {
            threads,
            ..Options::default()
        };
        let report = check_with("long.zip", &bytes, &options);
        assert!(report.valid, "{threads} threads: {:?}", report.errors);
        assert_eq!(report.documents, 4);
    }
}

/// Two documents entries of one table are one table: a duplicate id across
/// them is found, and the finding names the entry and line of the first.
#[test]
fn a_duplicate_across_two_entries_of_a_table_names_the_first_entry() {
    let first = format!("{}\n{}\n", doc(10001, 1, ""), doc(10001, 2, ""));
    let second = format!(
        "{}\n{}\n{}\n",
        doc(10001, 3, ""),
        doc(10001, 2, ""),
        doc(10001, 3, "")
    );
    let report = check(
        "two.zip",
        &zip(&[
            ("users/documents.jsonl", first.as_bytes()),
            ("copy/users/documents.jsonl", second.as_bytes()),
        ]),
    );
    assert_eq!(codes(&report), vec![Code::DuplicateId, Code::DuplicateId]);
    // Convex continues a table it is importing from its document count, so
    // it would skip the second entry's first documents: the warning says so.
    let repeated: Vec<_> = report
        .warnings
        .iter()
        .filter(|w| w.code == Code::RepeatedTableEntry)
        .collect();
    assert_eq!(repeated.len(), 1);
    assert_eq!(
        repeated[0].entry.as_deref(),
        Some("copy/users/documents.jsonl")
    );
    assert!(
        repeated[0]
            .message
            .contains("skips as many of this entry's first documents"),
        "{}",
        repeated[0].message
    );
    let across = &report.errors[0];
    assert_eq!(
        (
            across.entry.as_deref(),
            across.line,
            across.first_line,
            across.first_entry.as_deref()
        ),
        (
            Some("copy/users/documents.jsonl"),
            Some(2),
            Some(2),
            Some("users/documents.jsonl")
        )
    );
    assert!(across
        .message
        .ends_with("first on line 2 of users/documents.jsonl)"));
    // Within the same entry, no entry is named.
    let within = &report.errors[1];
    assert_eq!(
        (
            within.line,
            within.first_line,
            within.first_entry.as_deref()
        ),
        (Some(3), Some(1), None)
    );
}

/// Where a finding about stored files or table numbers points: the line
/// that gave what is wrong, in the human report and the JSON alike.
fn place(finding: &snappack::report::Finding) -> (Code, Option<&str>, Option<u64>) {
    (finding.code, finding.entry.as_deref(), finding.line)
}

#[test]
fn a_sha256_mismatch_names_the_row_that_declares_the_digest() {
    let sid = id(540, 1);
    let other = id(540, 2);
    let wrong_sha = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";
    // Two `_storage` entries: lines count per entry, so each row's entry is named.
    let first = format!("{{\"_id\":\"{other}\"}}\n");
    let second = format!(
        "{{\"_id\":\"{id3}\"}}\n{{\"_id\":\"{sid}\",\"sha256\":\"{wrong_sha}\"}}\n",
        id3 = id(540, 3)
    );
    let report = check(
        "s.zip",
        &zip(&[
            ("_storage/documents.jsonl", first.as_bytes()),
            ("copy/_storage/documents.jsonl", second.as_bytes()),
            (&format!("_storage/{sid}.bin"), b"data"),
        ]),
    );
    assert_eq!(codes(&report), vec![Code::Sha256Mismatch]);
    let mismatch = &report.errors[0];
    let file = format!("_storage/{sid}.bin");
    assert_eq!(
        place(mismatch),
        (Code::Sha256Mismatch, Some(file.as_str()), None)
    );
    assert_eq!(
        (mismatch.first_line, mismatch.first_entry.as_deref()),
        (Some(2), Some("copy/_storage/documents.jsonl"))
    );
    assert!(
        mismatch.message.ends_with(
            "(the sha256 of the _storage row on line 2 of copy/_storage/documents.jsonl)"
        ),
        "{}",
        mismatch.message
    );
    // Rows without a file are named in their own entry.
    let missing: Vec<_> = report
        .warnings
        .iter()
        .filter(|w| w.code == Code::StorageFileMissing)
        .map(place)
        .collect();
    assert_eq!(
        missing,
        [
            (
                Code::StorageFileMissing,
                Some("_storage/documents.jsonl"),
                Some(1)
            ),
            (
                Code::StorageFileMissing,
                Some("copy/_storage/documents.jsonl"),
                Some(1)
            ),
        ]
    );
}

#[test]
fn a_number_conflict_points_at_the_line_that_gave_the_number() {
    let archive = zip(&[
        (
            "_tables/documents.jsonl",
            b"{\"name\":\"other\",\"id\":10009}\n{\"name\":\"listed\",\"id\":10001}\n",
        ),
        ("listed/documents.jsonl", doc(10001, 1, "").as_bytes()),
        (
            "byid/documents.jsonl",
            format!("{}\n", doc(10002, 1, "")).as_bytes(),
        ),
    ]);
    let target = TargetTables {
        tables: vec![
            TargetTable {
                component: String::new(),
                name: "x".into(),
                number: 10001,
                documents: 1,
            },
            TargetTable {
                component: String::new(),
                name: "y".into(),
                number: 10002,
                documents: 1,
            },
            TargetTable {
                component: String::new(),
                name: "listed".into(),
                number: 10005,
                documents: 1,
            },
        ],
    };
    let base = check("n.zip", &archive);
    assert!(base.valid, "{:?}", base.errors);
    let listed = base.tables.iter().find(|t| t.name == "listed").unwrap();
    let row = listed.listed_at.as_ref().unwrap();
    assert_eq!(
        (row.entry.as_str(), row.line),
        ("_tables/documents.jsonl", 2)
    );
    for (mode, expected) in [
        (
            ImportMode::Replace,
            vec![
                (
                    Code::TableConflict,
                    Some("_tables/documents.jsonl"),
                    Some(2),
                ),
                (Code::TableConflict, Some("byid/documents.jsonl"), Some(1)),
            ],
        ),
        (
            ImportMode::Append,
            vec![
                (
                    Code::TableNumberConflict,
                    Some("_tables/documents.jsonl"),
                    Some(2),
                ),
                (
                    Code::TableConflict,
                    Some("_tables/documents.jsonl"),
                    Some(2),
                ),
                (Code::TableConflict, Some("byid/documents.jsonl"), Some(1)),
            ],
        ),
    ] {
        let options = Options {
            mode,
            target: Some(target.clone()),
            ..Options::default()
        };
        let report = check_with("n.zip", &archive, &options);
        let places: Vec<_> = report.errors.iter().map(place).collect();
        assert_eq!(places, expected, "{mode:?}");
        // The report alone locates them the same.
        let checked = check_target(&base, &target, mode).unwrap();
        assert_eq!(checked.errors, report.errors, "{mode:?}");
    }
}

#[test]
fn a_table_numbered_by_the_server_is_warned_about_at_its_first_document() {
    let line = doc(10001, 1, r#""a":1"#) + "\n";
    let unassigned = |entries: &[(&str, &[u8])]| {
        let report = check("late.zip", &zip(entries));
        assert!(report.valid, "{:?}", report.errors);
        report
            .warnings
            .iter()
            .filter(|w| w.code == Code::UnassignedTableNumber)
            .map(|w| (w.code, w.entry.clone(), w.line))
            .collect::<Vec<_>>()
    };
    // The first document has no `_id`: there.
    assert_eq!(
        unassigned(&[(
            "t/documents.jsonl",
            format!("{{\"a\":1}}\n{line}").as_bytes()
        )]),
        [(
            Code::UnassignedTableNumber,
            Some("t/documents.jsonl".to_owned()),
            Some(1)
        )]
    );
    // The table's first entry is empty, which left it without a number: the
    // next entry's first line numbers nothing, whether it has an `_id` or not,
    // so the warning names the empty entry, not a line of another.
    let with_id = doc(10001, 2, r#""a":2"#) + "\n";
    for first in ["{\"a\":1}\n", &with_id] {
        assert_eq!(
            unassigned(&[
                ("t/documents.jsonl", b""),
                (
                    "copy/t/documents.jsonl",
                    format!("{first}{line}").as_bytes()
                ),
            ]),
            [(
                Code::UnassignedTableNumber,
                Some("t/documents.jsonl".to_owned()),
                None
            )],
            "{first}"
        );
    }
}

/// Convex reads every line of an entry with the `\n` that ends it: JSON
/// that ends too soon is worded past that `\n` (in documents, `_tables`
/// and `_storage` rows, generated schemas), and on a last line without
/// one, at its end.
#[test]
fn errors_at_the_end_of_a_line_are_worded_past_its_newline() {
    let past = "wasn't valid JSON: EOF while parsing a value at line 2 column 0";
    let report = check(
        "m.zip",
        &zip(&[
            ("_tables/documents.jsonl", b"\n"),
            ("_storage/documents.jsonl", b" \r\n"),
            ("a/generated_schema.jsonl", b"\n"),
            ("a/documents.jsonl", b"{}\n\n{\"x\":"),
        ]),
    );
    let found: Vec<_> = report
        .errors
        .iter()
        .map(|e| (e.entry.as_deref().unwrap(), e.line, e.message.clone()))
        .collect();
    assert_eq!(
        found,
        [
            ("a/generated_schema.jsonl", Some(1), format!("Row 1 {past}")),
            ("_tables/documents.jsonl", Some(1), format!("Row 1 {past}")),
            ("_storage/documents.jsonl", Some(1), format!("Row 1 {past}")),
            ("a/documents.jsonl", Some(2), format!("Row 2 {past}")),
            (
                "a/documents.jsonl",
                Some(3),
                "Row 3 wasn't valid JSON: EOF while parsing a value at line 1 column 5".into()
            ),
        ]
    );
}

/// Warnings past the cap are counted, as errors are: a report that lists
/// the first `max_errors` says how many there are in all, with any number of
/// workers (`check_with` compares them).
#[test]
fn warnings_past_the_cap_are_counted() {
    let mut entries: Vec<(String, Vec<u8>)> = Vec::new();
    for t in 0..3u32 {
        let name = ["users", "posts", "tags"][t as usize];
        let doc = format!("{}\n", doc(10001 + t, 1, r#""a":1"#));
        entries.push((format!("{name}/documents.jsonl"), doc.into_bytes()));
        // Entries Convex ignores, each a warning, beside every table.
        for n in 0..7 {
            entries.push((format!("{name}_notes/note{n}.jsonl"), Vec::new()));
        }
    }
    let entries: Vec<(&str, &[u8])> = entries
        .iter()
        .map(|(name, bytes)| (name.as_str(), bytes.as_slice()))
        .collect();
    let bytes = zip(&entries);
    let options = Options {
        max_errors: Some(5),
        ..Options::default()
    };
    let report = check_with("notes.zip", &bytes, &options);
    assert!(report.valid, "{:?}", report.errors);
    assert_eq!(report.warnings.len(), 5);
    assert_eq!(report.warning_count, 21, "{:?}", report.warnings);
    let unlimited = check_with("notes.zip", &bytes, &Options::default());
    assert_eq!(unlimited.warnings.len(), 21);
    assert_eq!(unlimited.warning_count, 21);
}

/// A `_creationTime` Convex cannot read (negative, `-0` too, NaN or
/// infinite) fails a Convex import with an internal error that names no row;
/// snappack said `InvalidDocumentError`, Convex's code for a time it reads
/// and refuses (0, 2^53 and up), whose message a user would then look for
/// in vain. It is a code of snappack's own, naming the row, the field and
/// what Convex does.
#[test]
fn a_creation_time_convex_cannot_read_is_named_as_such() {
    let lines = [
        r#"{"_creationTime":-1.5,"a":1}"#.to_owned(),
        r#"{"_creationTime":-0.0}"#.to_owned(),
        r#"{"_creationTime":{"$float":"AAAAAAAA8P8="}}"#.to_owned(),
        r#"{"_creationTime":0.0}"#.to_owned(),
    ];
    let jsonl = lines.join("\n") + "\n";
    let report = check(
        "t.zip",
        &zip(&[
            ("users/generated_schema.jsonl", UNIFORM),
            ("users/documents.jsonl", jsonl.as_bytes()),
        ]),
    );
    assert_eq!(
        codes(&report),
        [
            Code::UnreadableCreationTime,
            Code::UnreadableCreationTime,
            Code::UnreadableCreationTime,
            // Convex reads 0, and refuses it as a document's time.
            Code::InvalidDocumentError,
        ],
        "{:#?}",
        report.errors
    );
    for (error, (line, shown)) in report
        .errors
        .iter()
        .zip([(1, "-1.5"), (2, "-0"), (3, "-inf")])
    {
        assert_eq!(error.line, Some(line));
        assert_eq!(error.field.as_deref(), Some("_creationTime"));
        assert_eq!(error.entry.as_deref(), Some("users/documents.jsonl"));
        assert!(
            error.message.starts_with(&format!(
                "Row {line}: '_creationTime' is {shown}, which Convex cannot read as a creation time"
            )),
            "{}",
            error.message
        );
        assert!(
            error.message.contains("internal error"),
            "{}",
            error.message
        );
    }
}

/// A table's entry saved as UTF-16 is told so after Convex's message, as a
/// single-table file is; it was only "line 1 is not valid UTF-8".
#[test]
fn an_entry_saved_as_utf16_is_told_so() {
    let utf16 = |text: &str| -> Vec<u8> {
        let mut bytes = vec![0xFF, 0xFE];
        bytes.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
        bytes
    };
    let users = utf16(&(doc(10001, 1, "") + "\n"));
    let tables = utf16("{\"name\":\"users\",\"id\":10001}\n");
    let hint = "; the entry starts with a UTF-16 byte order mark: save it as UTF-8";
    for (entries, entry) in [
        (
            vec![("users/documents.jsonl", users.as_slice())],
            "users/documents.jsonl",
        ),
        (
            vec![("_tables/documents.jsonl", tables.as_slice())],
            "_tables/documents.jsonl",
        ),
    ] {
        let report = check("t.zip", &zip(&entries));
        assert_eq!(codes(&report), [Code::InvalidZip], "{:?}", report.errors);
        let error = &report.errors[0];
        assert_eq!(error.entry.as_deref(), Some(entry));
        assert_eq!(
            error.message,
            format!("invalid zip file: line 1 is not valid UTF-8{hint}")
        );
    }
    // Another byte that is not UTF-8 is not called UTF-16.
    let report = check("t.zip", &zip(&[("users/documents.jsonl", b"\xFF{}\n")]));
    assert_eq!(
        report.errors[0].message,
        "invalid zip file: line 1 is not valid UTF-8"
    );
}

/// An entry that starts with a UTF-8 byte order mark is JSON Convex cannot
/// parse in a ZIP archive ("expected value at line 1 column 1", about a
/// mark no editor shows): the finding says why after Convex's message.
/// The one finding of an archive of `entry` alone: its first line is
/// not JSON.
fn only_invalid_first_row(entry: &str, bytes: &[u8]) -> Finding {
    let report = check("t.zip", &zip(&[(entry, bytes)]));
    assert_eq!(
        codes(&report),
        [Code::JsonInvalidRow],
        "{:?}",
        report.errors
    );
    let error = report.errors[0].clone();
    assert_eq!((error.entry.as_deref(), error.line), (Some(entry), Some(1)));
    error
}

#[test]
fn an_entry_with_a_utf8_byte_order_mark_is_told_why_it_is_not_json() {
    let users = format!("\u{FEFF}{}\n", doc(10001, 1, ""));
    let tables = "\u{FEFF}{\"name\":\"users\",\"id\":10001}\n";
    let hint = "; the entry starts with a UTF-8 byte order mark, which Convex reads as part of \
                the row: save it without one";
    for (entry, bytes) in [
        ("users/documents.jsonl", users.as_bytes()),
        ("_tables/documents.jsonl", tables.as_bytes()),
    ] {
        let error = only_invalid_first_row(entry, bytes);
        assert_eq!(
            error.message,
            format!("Row 1 wasn't valid JSON: expected value at line 1 column 1{hint}")
        );
    }
    // Not on a later line, nor without the mark.
    let later = format!("{}\n\u{FEFF}{{}}\nnot json\n", doc(10001, 1, ""));
    let report = check(
        "t.zip",
        &zip(&[("users/documents.jsonl", later.as_bytes())]),
    );
    assert_eq!(report.errors.len(), 2, "{:?}", report.errors);
    assert!(report
        .errors
        .iter()
        .all(|e| !e.message.contains("byte order mark")));
}

/// A generated schema saved as UTF-16, or with a UTF-8 byte order mark, is
/// told so after Convex's message, as a table's documents are.
#[test]
fn a_generated_schema_saved_as_utf16_or_with_a_mark_is_told_so() {
    let mut utf16 = vec![0xFF, 0xFE];
    utf16.extend("\"uniform\"\n".encode_utf16().flat_map(u16::to_le_bytes));
    let marked = "\u{FEFF}\"uniform\"\n";
    let users = doc(10001, 1, "") + "\n";
    for (schema, code, message) in [
        (
            utf16.as_slice(),
            Code::NotUtf8,
            "Import wasn't valid UTF8: invalid utf-8 sequence of 1 bytes from index 0; the entry \
             starts with a UTF-16 byte order mark: save it as UTF-8",
        ),
        (
            marked.as_bytes(),
            Code::JsonInvalidRow,
            "Row 1 wasn't valid JSON: expected value at line 1 column 1; the entry starts with a \
             UTF-8 byte order mark, which Convex reads as part of the row: save it without one",
        ),
    ] {
        let report = check(
            "t.zip",
            &zip(&[
                ("users/generated_schema.jsonl", schema),
                ("users/documents.jsonl", users.as_bytes()),
            ]),
        );
        assert_eq!(codes(&report), [code], "{:?}", report.errors);
        let error = &report.errors[0];
        assert_eq!(error.entry.as_deref(), Some("users/generated_schema.jsonl"));
        assert_eq!(error.message, message);
    }
}

/// A table's entry (or `_tables`) whose lines a `\r` alone ends (old Mac
/// line ends) is one line to Convex, refused for what follows its first
/// value; the finding says why after Convex's message, as a single-table
/// JSONL file's does. Before, an entry got only "trailing characters".
#[test]
fn an_entry_whose_lines_end_with_a_carriage_return_alone_is_told_so() {
    let hint = "; the entry's lines end with a carriage return alone (\\r, as old Mac files \
                have them), which does not end a JSONL line, so they read as one: save the \
                entry with \\n line ends";
    let users = format!("{}\r{}\r", doc(10001, 1, ""), doc(10001, 2, ""));
    let tables = "{\"name\":\"users\",\"id\":10001}\r{\"name\":\"posts\",\"id\":10002}\r";
    for (entry, bytes) in [
        ("users/documents.jsonl", users.as_bytes()),
        ("_tables/documents.jsonl", tables.as_bytes()),
    ] {
        let error = only_invalid_first_row(entry, bytes);
        assert!(
            error
                .message
                .starts_with("Row 1 wasn't valid JSON: trailing characters"),
            "{}",
            error.message
        );
        assert!(error.message.ends_with(hint), "{}", error.message);
    }
    // A `\r\n`, or a `\r` after text that is not a value, is not told so.
    let users = format!("{}\r\n{} x\r{{}}\n", doc(10001, 1, ""), doc(10001, 2, ""));
    let report = check(
        "t.zip",
        &zip(&[("users/documents.jsonl", users.as_bytes())]),
    );
    assert_eq!(
        codes(&report),
        [Code::JsonInvalidRow],
        "{:?}",
        report.errors
    );
    assert!(!report.errors[0].message.contains("carriage"));
}
