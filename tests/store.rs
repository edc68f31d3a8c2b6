//! The store's import semantics on every backend (SQLite, PostgreSQL): the
//! outcome matrix of Convex's own tests (flip / clone / unrelated / empty /
//! same deployment × the four modes), table-number conflicts, atomicity of
//! failed and cancelled imports, and two imports finishing on one table.

// The server is native only.
#![cfg(not(target_arch = "wasm32"))]

mod server_support;

use server_support as common;

use snappack::convex::DocumentId;
use snappack::server;
use snappack::server::store::{
    ActivatedTable, DocumentWrite, FrameWrite, ImportMode, ImportState, Store, StoreError,
    StoredDocument, TableDeclaration, TablePin, TargetTable,
};

/// A document: its internal id, its `_id` (number and text) if it has one, its line.
#[derive(Clone)]
struct Doc {
    internal: [u8; 16],
    id: Option<(u32, String)>,
    json: String,
}

fn with_id(number: u32, k: u8) -> Doc {
    let id = DocumentId::new(number, [k; 16]).encode();
    Doc {
        internal: [k; 16],
        json: format!(r#"{{"_id":"{id}","k":{k}}}"#),
        id: Some((number, id)),
    }
}

fn without_id(k: u8) -> Doc {
    Doc {
        internal: [k; 16],
        id: None,
        json: format!(r#"{{"k":{k}}}"#),
    }
}

#[derive(Clone)]
struct Table {
    component: &'static str,
    name: &'static str,
    number: Option<u32>,
    docs: Vec<Doc>,
}

fn table(name: &'static str, number: Option<u32>, docs: Vec<Doc>) -> Table {
    Table {
        component: "",
        name,
        number,
        docs,
    }
}

/// Starts an import and writes `tables` (declarations in frame 0, then one frame per table).
fn start(store: &dyn Store, mode: ImportMode, tables: &[Table]) -> String {
    let id = common::unique("import");
    store.create_import(&id, mode, None, None).unwrap();
    let declarations = tables
        .iter()
        .map(|t| TableDeclaration {
            component: t.component.into(),
            name: t.name.into(),
            number: t.number,
            observed: None,
        })
        .collect();
    store
        .write_frame(
            &id,
            &FrameWrite {
                seq: 0,
                tables: declarations,
                ..FrameWrite::default()
            },
        )
        .unwrap();
    for (i, t) in tables.iter().enumerate() {
        let pins = match (t.number, t.docs.iter().find_map(|d| d.id.clone())) {
            (None, Some((number, id))) => vec![TablePin {
                component: t.component.into(),
                table: t.name.into(),
                number,
                id,
            }],
            _ => vec![],
        };
        let frame = FrameWrite {
            seq: i as u64 + 1,
            tables: vec![],
            documents: t
                .docs
                .iter()
                .map(|d| DocumentWrite {
                    component: t.component,
                    table: t.name,
                    internal: d.internal,
                    json: &d.json,
                })
                .collect(),
            pins,
            // Not ended: finish indexes them (streams end each table, tests/imports.rs).
            ended: vec![],
        };
        store.write_frame(&id, &frame).unwrap();
    }
    id
}

fn import(
    store: &dyn Store,
    mode: ImportMode,
    tables: &[Table],
) -> Result<Vec<ActivatedTable>, StoreError> {
    let id = start(store, mode, tables);
    store.finish_import(&id)
}

type Dump = Vec<(TargetTable, Vec<StoredDocument>)>;

fn dump(store: &dyn Store) -> Dump {
    store
        .tables()
        .unwrap()
        .into_iter()
        .map(|t| {
            let docs = store.documents(&t.component, &t.name).unwrap().unwrap();
            (t, docs)
        })
        .collect()
}

/// `(name, number, documents)` of every active table.
fn summary(store: &dyn Store) -> Vec<(String, u32, u64)> {
    let mut tables: Vec<_> = store
        .tables()
        .unwrap()
        .into_iter()
        .map(|t| (t.name, t.number, t.documents))
        .collect();
    tables.sort();
    tables
}

fn owned(expected: &[(&str, u32, u64)]) -> Vec<(String, u32, u64)> {
    expected
        .iter()
        .map(|(n, num, d)| (n.to_string(), *num, *d))
        .collect()
}

/// The export of deployment A: table1 = 10001 and table2 = 10002, one document each.
fn export_a() -> Vec<Table> {
    vec![
        table("table1", Some(10001), vec![with_id(10001, 1)]),
        table("table2", Some(10002), vec![with_id(10002, 2)]),
    ]
}

/// Asserts that a refused import changed nothing, and left no hidden table behind.
fn assert_refused(
    store: &dyn Store,
    mode: ImportMode,
    tables: &[Table],
    code: &str,
    case: &str,
) -> StoreError {
    let before = dump(store);
    let id = start(store, mode, tables);
    let err = store.finish_import(&id).unwrap_err();
    match &err {
        StoreError::Import(e) => assert_eq!(e.code, code, "{case}: {e}"),
        other => panic!("{case}: expected {code}, got {other}"),
    }
    assert_eq!(dump(store), before, "{case}: the database changed");
    assert_eq!(
        store.hidden_tables().unwrap(),
        0,
        "{case}: hidden tables left"
    );
    let record = store.import(&id).unwrap();
    assert_eq!(record.state, ImportState::Failed, "{case}");
    assert!(record.error.unwrap().starts_with(code), "{case}");
    err
}

#[test]
fn outcome_matrix_of_convex_tests() {
    use ImportMode::*;
    type Expected = Result<&'static [(&'static str, u32, u64)], &'static str>;
    type Case = (&'static str, Vec<Table>, [(ImportMode, Expected); 4]);
    let both: &[(&str, u32, u64)] = &[("table1", 10001, 1), ("table2", 10002, 1)];
    let cases: &[Case] = &[
        (
            "flip",
            vec![
                table("table2", None, vec![without_id(11)]),
                table("table1", None, vec![without_id(12)]),
            ],
            [
                (Append, Err("TableNumberConflict")),
                (Replace, Ok(both)),
                (ReplaceAll, Ok(both)),
                (RequireEmpty, Err("TableExists")),
            ],
        ),
        (
            "clone",
            vec![
                table("table1", None, vec![without_id(11)]),
                table("table2", None, vec![without_id(12)]),
            ],
            [
                (Append, Ok(&[("table1", 10001, 2), ("table2", 10002, 2)])),
                (Replace, Ok(both)),
                (ReplaceAll, Ok(both)),
                (RequireEmpty, Err("TableExists")),
            ],
        ),
        (
            "unrelated",
            vec![
                table("table3", None, vec![without_id(11)]),
                table("table4", None, vec![without_id(12)]),
            ],
            [
                (Append, Err("TableConflict")),
                (Replace, Err("TableConflict")),
                (ReplaceAll, Ok(both)),
                (RequireEmpty, Err("TableConflict")),
            ],
        ),
        (
            "empty",
            vec![],
            [
                (Append, Ok(both)),
                (Replace, Ok(both)),
                (ReplaceAll, Ok(both)),
                (RequireEmpty, Ok(both)),
            ],
        ),
        (
            "same deployment",
            export_a(),
            [
                (Append, Err("DocumentExists")),
                (Replace, Ok(both)),
                (ReplaceAll, Ok(both)),
                (RequireEmpty, Err("TableExists")),
            ],
        ),
    ];
    for (scenario, target, outcomes) in cases {
        for (mode, expected) in outcomes {
            for (backend, store) in common::stores() {
                let store = &*store;
                let case = format!("{backend}: {scenario}, {}", mode);
                if !target.is_empty() {
                    import(store, RequireEmpty, target).unwrap();
                }
                match expected {
                    Ok(tables) => {
                        import(store, *mode, &export_a()).unwrap_or_else(|e| panic!("{case}: {e}"));
                        assert_eq!(summary(store), owned(tables), "{case}");
                        // A's documents are there under their own ids.
                        for t in export_a() {
                            let docs = store.documents("", t.name).unwrap().unwrap();
                            let id = &t.docs[0].id.as_ref().unwrap().1;
                            assert!(docs.iter().any(|d| &d.id == id), "{case}: {id} missing");
                        }
                    }
                    Err(code) => {
                        assert_refused(store, *mode, &export_a(), code, &case);
                    }
                }
            }
        }
    }
}

#[test]
fn convex_messages_for_number_clashes() {
    for (backend, store) in common::stores() {
        let store = &*store;
        // §8.4 test 32: table2's ids carry table1's number.
        import(
            store,
            ImportMode::RequireEmpty,
            &[table("table1", None, vec![with_id(10001, 1)])],
        )
        .unwrap();
        let err = assert_refused(
            store,
            ImportMode::Replace,
            &[table("table2", Some(10001), vec![with_id(10001, 1)])],
            "TableConflict",
            backend,
        );
        assert!(
            err.to_string().contains(
                "New table `table2` has IDs that conflict with existing table `table1`. To delete all existing tables, import with `npx convex import --replace-all`."
            ),
            "{backend}: {err}"
        );
        // Append into table1 with ids of another number.
        import(
            store,
            ImportMode::RequireEmpty,
            &[table("other", None, vec![])],
        )
        .unwrap();
        let err = assert_refused(
            store,
            ImportMode::Append,
            &[table("table1", Some(10003), vec![with_id(10003, 9)])],
            "TableNumberConflict",
            backend,
        );
        assert!(
            err.to_string()
                .ends_with("table table1 wants table number 10003 but was already assigned 10001"),
            "{backend}: {err}"
        );
        // Append of a document that exists.
        let err = assert_refused(
            store,
            ImportMode::Append,
            &[table("table1", None, vec![with_id(10001, 1)])],
            "DocumentExists",
            backend,
        );
        let id = DocumentId::new(10001, [1; 16]).encode();
        assert!(
            err.to_string().ends_with(&format!(
                "Cannot create document with _id {id} that already exists. Try to update it with `db.patch` or `db.replace`."
            )),
            "{backend}: {err}"
        );
        // A table without a declared number whose ids carry a number it does not get.
        let err = assert_refused(
            store,
            ImportMode::Replace,
            &[table("fresh", None, vec![without_id(3), with_id(10009, 4)])],
            "ImportConflict",
            backend,
        );
        assert!(err.to_string().contains("cannot be imported into 'fresh'"));
        // Appending keeps the table's number and adds the documents.
        import(
            store,
            ImportMode::Append,
            &[table("table1", None, vec![without_id(5)])],
        )
        .unwrap();
        assert_eq!(
            summary(store),
            owned(&[("other", 10002, 0), ("table1", 10001, 2)]),
            "{backend}"
        );
    }
}

#[test]
fn number_clash_appearing_before_finish_is_caught() {
    // §8.4 test 33: table1 declares 10001; before it finishes another import creates table2 (10001).
    for (backend, store) in common::stores() {
        let store = &*store;
        let maxid = "j57fzzzzzzzzzzzzzzzzzzzzzzzzzkyr";
        let id = DocumentId::decode(maxid).unwrap();
        let slow = start(
            store,
            ImportMode::Replace,
            &[Table {
                component: "",
                name: "table1",
                number: Some(10001),
                docs: vec![Doc {
                    internal: id.internal,
                    id: Some((10001, maxid.into())),
                    json: format!(r#"{{"_id":"{maxid}"}}"#),
                }],
            }],
        );
        import(
            store,
            ImportMode::RequireEmpty,
            &[table("table2", None, vec![without_id(1)])],
        )
        .unwrap();
        let before = dump(store);
        let err = store.finish_import(&slow).unwrap_err();
        assert!(
            err.to_string()
                .contains("New table `table1` has IDs that conflict with existing table `table2`"),
            "{backend}: {err}"
        );
        assert_eq!(dump(store), before, "{backend}");
    }
}

#[test]
fn components_are_separate_namespaces_and_replace_all_clears_them() {
    for (backend, store) in common::stores() {
        let store = &*store;
        let mut in_component = table("messages", None, vec![without_id(1)]);
        in_component.component = "waitlist";
        import(
            store,
            ImportMode::RequireEmpty,
            &[
                table("messages", None, vec![without_id(2)]),
                in_component.clone(),
            ],
        )
        .unwrap();
        let tables = store.tables().unwrap();
        assert_eq!(
            tables
                .iter()
                .map(|t| (t.component.as_str(), t.name.as_str(), t.number))
                .collect::<Vec<_>>(),
            vec![("", "messages", 10001), ("waitlist", "messages", 10001)],
            "{backend}"
        );
        // RequireEmpty into the component's non-empty table: TableExists, in the component.
        let err = assert_refused(
            store,
            ImportMode::RequireEmpty,
            &[in_component],
            "TableExists",
            backend,
        );
        match err {
            StoreError::Import(e) => assert_eq!(e.component, "waitlist"),
            other => panic!("{other}"),
        }
        // ReplaceAll of one root table deletes the user tables of every component.
        import(
            store,
            ImportMode::ReplaceAll,
            &[table("other", None, vec![])],
        )
        .unwrap();
        assert_eq!(summary(store), owned(&[("other", 10001, 0)]), "{backend}");
    }
}

#[test]
fn cancelled_import_leaves_nothing_and_cannot_finish() {
    for (backend, store) in common::stores() {
        let store = &*store;
        import(store, ImportMode::RequireEmpty, &export_a()).unwrap();
        let before = dump(store);
        let id = start(
            store,
            ImportMode::ReplaceAll,
            &[table("table1", None, vec![without_id(7), without_id(8)])],
        );
        assert_eq!(store.hidden_tables().unwrap(), 1, "{backend}");
        store.cancel_import(&id, None).unwrap();
        assert_eq!(dump(store), before, "{backend}");
        assert_eq!(store.hidden_tables().unwrap(), 0, "{backend}");
        assert_eq!(store.import(&id).unwrap().state, ImportState::Cancelled);
        assert!(matches!(
            store.finish_import(&id),
            Err(StoreError::NotOpen {
                state: ImportState::Cancelled,
                ..
            })
        ));
        assert!(matches!(
            store.cancel_import(&id, None),
            Err(StoreError::NotOpen { .. })
        ));
        assert!(matches!(
            store.finish_import("nope"),
            Err(StoreError::UnknownImport(_))
        ));
    }
}

#[test]
fn replayed_frames_are_written_once_and_gaps_refused() {
    for (backend, store) in common::stores() {
        let store = &*store;
        let tables = [table("t", None, vec![without_id(1), without_id(2)])];
        let id = start(store, ImportMode::RequireEmpty, &tables);
        assert_eq!(store.import(&id).unwrap().applied_seq, Some(1));
        // The same frame again (a replay after a restart) is skipped.
        let doc = without_id(1);
        store
            .write_frame(
                &id,
                &FrameWrite {
                    seq: 1,
                    documents: vec![DocumentWrite {
                        component: "",
                        table: "t",
                        internal: doc.internal,
                        json: &doc.json,
                    }],
                    ..FrameWrite::default()
                },
            )
            .unwrap();
        // A frame after a gap is refused: the frames between would be lost.
        let err = store
            .write_frame(
                &id,
                &FrameWrite {
                    seq: 3,
                    ..FrameWrite::default()
                },
            )
            .unwrap_err();
        assert!(
            err.to_string().contains("before frame 2"),
            "{backend}: {err}"
        );
        assert_eq!(store.import(&id).unwrap().applied_seq, Some(1));
        // A frame for an undeclared table is refused.
        let err = store
            .write_frame(
                &id,
                &FrameWrite {
                    seq: 2,
                    documents: vec![DocumentWrite {
                        component: "",
                        table: "nope",
                        internal: doc.internal,
                        json: &doc.json,
                    }],
                    ..FrameWrite::default()
                },
            )
            .unwrap_err();
        assert!(
            matches!(err, StoreError::UndeclaredTable { .. }),
            "{backend}: {err}"
        );
        store.finish_import(&id).unwrap();
        assert_eq!(summary(store), owned(&[("t", 10001, 2)]), "{backend}");
        let imports = store.imports().unwrap();
        assert_eq!(imports.last().unwrap().state, ImportState::Finished);
    }
}

#[test]
fn two_imports_finishing_on_one_table_second_fails_cleanly() {
    for (backend, store) in common::stores() {
        let store: std::sync::Arc<dyn Store> = store.into();
        import(
            &*store,
            ImportMode::RequireEmpty,
            &[table("t", None, vec![without_id(1)])],
        )
        .unwrap();
        for round in 0..5u8 {
            let a = start(
                &*store,
                ImportMode::Replace,
                &[table("t", None, vec![without_id(10 + round)])],
            );
            let b = start(
                &*store,
                ImportMode::Replace,
                &[table(
                    "t",
                    None,
                    vec![without_id(100 + round), without_id(200 + round)],
                )],
            );
            let finish = |id: String| {
                let store = store.clone();
                std::thread::spawn(move || store.finish_import(&id))
            };
            let (ra, rb) = (finish(a), finish(b));
            let (ra, rb) = (ra.join().unwrap(), rb.join().unwrap());
            assert!(
                ra.is_ok() != rb.is_ok(),
                "{backend}: exactly one wins: {ra:?} {rb:?}"
            );
            let loser = ra.as_ref().err().or(rb.as_ref().err()).unwrap();
            match loser {
                StoreError::Import(e) => assert_eq!(e.code, "TableChanged", "{backend}"),
                other => panic!("{backend}: {other}"),
            }
            let expected = if ra.is_ok() { 1 } else { 2 };
            assert_eq!(
                summary(&*store),
                owned(&[("t", 10001, expected)]),
                "{backend}"
            );
            assert_eq!(store.hidden_tables().unwrap(), 0, "{backend}");
        }
    }
}

/// Runs `sql` (several statements) on `database` of `backend` directly.
fn execute_batch(backend: &str, database: &str, sql: &str) {
    if backend == "sqlite" {
        rusqlite::Connection::open(database)
            .unwrap()
            .execute_batch(sql)
            .unwrap();
    } else {
        postgres::Client::connect(database, postgres::NoTls)
            .unwrap()
            .batch_execute(sql)
            .unwrap();
    }
}

#[test]
fn a_database_in_the_earlier_layout_is_refused_not_emptied() {
    for (backend, database) in common::databases() {
        let old = "CREATE TABLE snappack_documents (table_id INTEGER, json TEXT);
                   INSERT INTO snappack_documents VALUES (1, '{}');";
        execute_batch(backend, &database, old);
        match server::store::open(&database) {
            Err(StoreError::Database(message)) => assert!(
                message.contains("snappack_documents") && message.contains("earlier snappack"),
                "{backend}: {message}"
            ),
            Err(e) => panic!("{backend}: {e}"),
            Ok(_) => panic!("{backend}: opened a database in the earlier layout"),
        }
        // What was there is still there.
        let count: i64 = if backend == "sqlite" {
            rusqlite::Connection::open(&database)
                .unwrap()
                .query_row("SELECT COUNT(*) FROM snappack_documents", [], |r| r.get(0))
                .unwrap()
        } else {
            postgres::Client::connect(&database, postgres::NoTls)
                .unwrap()
                .query_one("SELECT COUNT(*) FROM snappack_documents", &[])
                .unwrap()
                .get(0)
        };
        assert_eq!(count, 1, "{backend}");
    }
}

/// A database made before imports recorded their target takes the new
/// column when opened: its imports read as before, without a target, and
/// new ones record theirs.
#[test]
fn a_database_made_before_import_targets_opens_and_records_them() {
    for (backend, database) in common::databases() {
        // The imports table as earlier versions made it, with an import.
        let seq = match backend {
            "sqlite" => "INTEGER PRIMARY KEY AUTOINCREMENT",
            _ => "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
        };
        let old = format!(
            "CREATE TABLE snappack_imports (seq {seq}, id TEXT NOT NULL UNIQUE, \
             mode TEXT NOT NULL, state TEXT NOT NULL, applied_seq BIGINT, error TEXT, label TEXT);
             INSERT INTO snappack_imports (id, mode, state, applied_seq, label) \
             VALUES ('old', 'append', 'finished', 0, 'x');"
        );
        execute_batch(backend, &database, &old);
        let store = server::store::open(&database).unwrap_or_else(|e| panic!("{backend}: {e}"));
        let record = store.import("old").unwrap();
        assert_eq!(
            (record.label.as_deref(), record.target),
            (Some("x"), None),
            "{backend}"
        );
        let target = server::store::ImportTarget {
            component: "billing".into(),
            table: Some("users".into()),
        };
        store
            .create_import("new", ImportMode::Append, None, Some(&target))
            .unwrap_or_else(|e| panic!("{backend}: {e}"));
        assert_eq!(
            store.import("new").unwrap().target,
            Some(target),
            "{backend}"
        );
        // Opened again, nothing changes.
        drop(store);
        let store = server::store::open(&database).unwrap();
        assert_eq!(store.imports().unwrap().len(), 2, "{backend}");
    }
}

/// A pooled PostgreSQL connection that the database ended while it was idle
/// (PostgreSQL restarted, or its session was terminated) is replaced: the
/// next transaction is made on a new connection, not answered with
/// "terminating connection due to administrator command".
#[test]
fn a_postgres_connection_ended_while_idle_is_replaced() {
    let Some(url) = common::postgres_url() else {
        return;
    };
    // A name of its own, so that only this store's sessions are ended.
    let name = format!("snappack-ended-{}", std::process::id());
    let schema_url = common::postgres_schema_url(&url);
    let store =
        server::store::PostgresStore::connect(&format!("{schema_url}&application_name={name}"))
            .unwrap();
    assert_eq!(store.tables().unwrap(), Vec::new());
    let mut admin = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let ended = admin
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
            &[&name],
        )
        .unwrap();
    assert!(!ended.is_empty(), "the store's idle connection was found");
    // Terminating is asynchronous: wait for the session to be gone.
    for _ in 0..100 {
        let left: i64 = admin
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
                &[&name],
            )
            .unwrap()
            .get(0);
        if left == 0 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(store.tables().unwrap(), Vec::new());
}

/// How many documents tables (`snappack_docs_*`) database `db` of `backend`
/// holds, visible or not.
fn documents_tables(backend: &str, db: &str) -> i64 {
    let query = if backend == "sqlite" {
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name LIKE 'snappack_docs_%'"
    } else {
        "SELECT COUNT(*) FROM pg_tables WHERE schemaname = current_schema() \
         AND tablename LIKE 'snappack_docs_%'"
    };
    if backend == "sqlite" {
        let conn = rusqlite::Connection::open(db).unwrap();
        conn.query_row(query, [], |row| row.get(0)).unwrap()
    } else {
        let mut client = postgres::Client::connect(db, postgres::NoTls).unwrap();
        client.query_one(query, &[]).unwrap().get(0)
    }
}

/// The tables a finish replaces or deletes are dropped once it is done:
/// the database keeps a documents table per active table, no more.
#[test]
fn a_finish_drops_the_tables_it_replaces_or_deletes() {
    for (backend, db) in common::databases() {
        let store: Box<dyn Store> = if backend == "sqlite" {
            Box::new(server::store::SqliteStore::open(&db).unwrap())
        } else {
            Box::new(server::store::PostgresStore::connect(&db).unwrap())
        };
        let store = &*store;
        import(store, ImportMode::RequireEmpty, &export_a()).unwrap();
        assert_eq!(documents_tables(backend, &db), 2, "{backend}");
        import(
            store,
            ImportMode::Replace,
            &[table("table1", None, vec![without_id(7), without_id(8)])],
        )
        .unwrap();
        assert_eq!(
            summary(store),
            owned(&[("table1", 10001, 2), ("table2", 10002, 1)]),
            "{backend}"
        );
        assert_eq!(documents_tables(backend, &db), 2, "{backend}");
        import(
            store,
            ImportMode::ReplaceAll,
            &[table("table3", None, vec![without_id(9)])],
        )
        .unwrap();
        assert_eq!(summary(store), owned(&[("table3", 10001, 1)]), "{backend}");
        assert_eq!(documents_tables(backend, &db), 1, "{backend}");
        assert_eq!(store.hidden_tables().unwrap(), 0, "{backend}");
        assert_eq!(store.drop_ended_tables().unwrap(), 0, "{backend}");
    }
}

/// A finish takes no lock on the tables it replaces or activates
/// (PostgreSQL would hold several per table until its commit, and a
/// default cluster has room for only so many: a replace of a few thousand
/// tables failed with "out of shared memory"): sessions reading the
/// replaced table, and writing the table that replaces it, do not hold it
/// up. The replaced table is dropped after the commit; when that fails
/// (here it cannot have its lock in time; a crash would do the same),
/// nothing sees the table, and the next start drops it.
#[test]
fn a_finish_retires_the_tables_it_replaces_and_drops_them_after_its_commit() {
    let Some(url) = common::postgres_url() else {
        return;
    };
    // A lock the store waits for fails it after a second, not never.
    let db = format!(
        "{}%20-clock_timeout%3D1000",
        common::postgres_schema_url(&url)
    );
    let store = server::store::PostgresStore::connect(&db).unwrap();
    import(&store, ImportMode::RequireEmpty, &export_a()).unwrap();
    let new_table1 = table("table1", None, vec![without_id(7), without_id(8)]);
    let id = start(
        &store,
        ImportMode::Replace,
        std::slice::from_ref(&new_table1),
    );
    // Its end is in: the table has its index.
    store
        .write_frame(
            &id,
            &FrameWrite {
                seq: 2,
                ended: vec![("".into(), "table1".into())],
                ..FrameWrite::default()
            },
        )
        .unwrap();
    let mut other = postgres::Client::connect(&db, postgres::NoTls).unwrap();
    let table_id = |client: &mut postgres::Client, active: bool| -> i64 {
        client
            .query_one(
                &format!(
                    "SELECT id FROM snappack_tables WHERE name = 'table1' AND import_id IS {}NULL",
                    if active { "" } else { "NOT " }
                ),
                &[],
            )
            .unwrap()
            .get(0)
    };
    let (old, new) = (table_id(&mut other, true), table_id(&mut other, false));
    let exists = |client: &mut postgres::Client| -> bool {
        client
            .query_one(
                &format!("SELECT to_regclass('snappack_docs_{old}') IS NOT NULL"),
                &[],
            )
            .unwrap()
            .get(0)
    };
    // A session in the middle of reading the table that will be replaced,
    // and of writing the one that replaces it.
    let mut busy = other.transaction().unwrap();
    busy.batch_execute(&format!(
        "SELECT COUNT(*) FROM snappack_docs_{old}; \
         LOCK TABLE snappack_docs_{new} IN ROW EXCLUSIVE MODE"
    ))
    .unwrap();
    store
        .finish_import(&id)
        .expect("the finish does not wait for the tables it replaces or activates");
    assert_eq!(
        summary(&store),
        owned(&[("table1", 10001, 2), ("table2", 10002, 1)])
    );
    busy.rollback().unwrap();
    // Not dropped (its lock was held), and seen by nothing.
    assert!(exists(&mut other));
    assert_eq!(
        store.documents("", "table1").unwrap().unwrap().len(),
        2,
        "the new table1"
    );
    assert_eq!(store.hidden_tables().unwrap(), 1);
    drop(store);
    // The next start.
    let store = server::store::PostgresStore::connect(&db).unwrap();
    assert_eq!(store.drop_ended_tables().unwrap(), 1);
    assert!(!exists(&mut other));
    assert_eq!(store.hidden_tables().unwrap(), 0);
    assert_eq!(documents_tables("postgres", &db), 2);
}

/// The page size of SQLite database `db`.
fn page_size(db: &str) -> i64 {
    rusqlite::Connection::open(db)
        .unwrap()
        .query_row("PRAGMA page_size", [], |row| row.get(0))
        .unwrap()
}

/// A database the store makes has 16 KiB pages; one made with other pages
/// keeps them, and imports into it as well.
#[test]
fn a_new_sqlite_database_has_16_kib_pages_and_an_existing_one_keeps_its_own() {
    let made = common::temp_dir("pages-new").join("snappack.db");
    let made = made.to_str().unwrap();
    let store = server::store::SqliteStore::open(made).unwrap();
    import(&store, ImportMode::RequireEmpty, &export_a()).unwrap();
    drop(store);
    assert_eq!(page_size(made), 16384);

    let existing = common::temp_dir("pages-existing").join("snappack.db");
    let existing = existing.to_str().unwrap();
    execute_batch(
        "sqlite",
        existing,
        "PRAGMA page_size = 4096; CREATE TABLE kept (x INTEGER); INSERT INTO kept VALUES (1);",
    );
    let store = server::store::SqliteStore::open(existing).unwrap();
    import(&store, ImportMode::RequireEmpty, &export_a()).unwrap();
    assert_eq!(
        summary(&store),
        owned(&[("table1", 10001, 1), ("table2", 10002, 1)])
    );
    drop(store);
    assert_eq!(page_size(existing), 4096);
}
