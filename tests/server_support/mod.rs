//! Test helpers shared by the server's integration tests: a fresh store on
//! every backend the machine has (SQLite always; PostgreSQL when
//! `SNAPPACK_TEST_POSTGRES_URL` is set, and required when `CI` is set).
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use snappack::server::store::{PostgresStore, SqliteStore, Store};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A name no other test of this run (or an earlier run) uses.
pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{prefix}_{}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        nanos % 1_000_000_000
    )
}

/// A fresh directory under the target folder.
pub fn temp_dir(prefix: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(unique(prefix));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The PostgreSQL URL for tests, if any; panics in CI when it is missing.
pub fn postgres_url() -> Option<String> {
    match std::env::var("SNAPPACK_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => panic!(
            "CI is set but SNAPPACK_TEST_POSTGRES_URL is not: start the cluster with \
             `eval \"$(scripts/pg-test-cluster.sh start)\"`"
        ),
        _ => {
            eprintln!("SNAPPACK_TEST_POSTGRES_URL is not set: PostgreSQL tests skipped");
            None
        }
    }
}

/// A PostgreSQL URL whose connections use a fresh, empty schema.
pub fn postgres_schema_url(url: &str) -> String {
    let schema = unique("t");
    let mut client = postgres::Client::connect(url, postgres::NoTls).unwrap();
    client
        .batch_execute(&format!("CREATE SCHEMA {schema}"))
        .unwrap();
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}options=-csearch_path%3D{schema}")
}

/// A `--database` value of a fresh database per backend: `("sqlite", path)`
/// and, when available, `("postgres", url)`.
pub fn databases() -> Vec<(&'static str, String)> {
    let mut out = vec![(
        "sqlite",
        temp_dir("sqlite")
            .join("snappack.db")
            .to_string_lossy()
            .into_owned(),
    )];
    if let Some(url) = postgres_url() {
        out.push(("postgres", postgres_schema_url(&url)));
    }
    out
}

/// A fresh store per backend.
pub fn stores() -> Vec<(&'static str, Box<dyn Store>)> {
    databases()
        .into_iter()
        .map(|(name, db)| {
            let store: Box<dyn Store> = if name == "sqlite" {
                Box::new(SqliteStore::open(&db).unwrap())
            } else {
                Box::new(PostgresStore::connect(&db).unwrap())
            };
            (name, store)
        })
        .collect()
}
