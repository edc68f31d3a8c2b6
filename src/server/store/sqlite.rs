//! The SQLite backend: one file, bundled SQLite, one connection behind a
//! mutex (SQLite has one writer at a time anyway).
//!
//! Durability: a rollback journal (`TRUNCATE`) with `synchronous = FULL`,
//! SQLite's fully durable setting: a committed transaction survives a crash
//! of the process or of the machine, and an interrupted one is rolled back
//! when the file is next opened. A rollback journal rather than a WAL
//! because imports mostly append pages to the end of the file, and SQLite
//! journals only the pages that existed before the transaction: the
//! documents are written once, where a WAL writes them twice (into the WAL,
//! then into the file at each checkpoint). Readers outside the server wait
//! while a transaction commits.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, TransactionBehavior};

use super::sql::{
    delegate_store, old_layout_error, Backend, Cell, Conn, Param, SqlStore, OLD_DOCUMENTS_TABLE,
};
use super::StoreError;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS snappack_imports (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    mode TEXT NOT NULL,
    state TEXT NOT NULL,
    applied_seq INTEGER,
    error TEXT,
    label TEXT
);
CREATE TABLE IF NOT EXISTS snappack_tables (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    component TEXT NOT NULL,
    name TEXT NOT NULL,
    number INTEGER,
    import_id TEXT,
    generation INTEGER NOT NULL DEFAULT 0,
    documents INTEGER NOT NULL DEFAULT 0,
    observed_id INTEGER,
    observed_generation INTEGER,
    pin_number INTEGER,
    pin_id TEXT
);
CREATE TABLE IF NOT EXISTS snappack_meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS snappack_tables_active
    ON snappack_tables (component, name) WHERE import_id IS NULL;
CREATE UNIQUE INDEX IF NOT EXISTS snappack_tables_hidden
    ON snappack_tables (import_id, component, name) WHERE import_id IS NOT NULL;
";

fn db(e: rusqlite::Error) -> StoreError {
    StoreError::Database(e.to_string())
}

/// The SQLite store.
pub struct SqliteStore(SqlStore<Sqlite>);

delegate_store!(SqliteStore);

/// Takes the SQLite database `path` for one server: an exclusive lock on
/// the file `<path>.lock` beside it (the path as the system resolves it, so
/// that every name of the file finds the same lock); `InUse` when another
/// server holds it.
pub(super) fn lock_for_serving(path: &Path) -> Result<std::fs::File, StoreError> {
    let failed = |what: &Path, e: std::io::Error| {
        StoreError::Database(format!("cannot lock {}: {e}", what.display()))
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| failed(parent, e))?;
    }
    let name = path
        .file_name()
        .ok_or_else(|| StoreError::Database(format!("{} names no file", path.display())))?;
    let folder = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let resolved = std::fs::canonicalize(path)
        .or_else(|_| std::fs::canonicalize(folder).map(|folder| folder.join(name)))
        .map_err(|e| failed(path, e))?;
    let mut lock_name = resolved.file_name().unwrap_or(name).to_owned();
    lock_name.push(".lock");
    let lock = resolved.with_file_name(lock_name);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock)
        .map_err(|e| failed(&lock, e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::InUse(format!(
            "SQLite database {} (its lock file {} is locked)",
            resolved.display(),
            lock.display()
        ))),
        Err(std::fs::TryLockError::Error(e)) => Err(failed(&lock, e)),
    }
}

impl SqliteStore {
    /// Opens (or creates) the database file, creating its folder and schema.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| {
                StoreError::Database(format!("cannot create {}: {e}", parent.display()))
            })?;
        }
        let conn = Connection::open(path).map_err(db)?;
        // See the module's documentation.
        conn.pragma_update(None, "journal_mode", "TRUNCATE")
            .map_err(db)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(db)?;
        // Imports write large transactions: statement journals in memory
        // rather than in temporary files, and a 64 MiB page cache so that
        // pages are not spilled and written twice before the commit.
        conn.pragma_update(None, "temp_store", "MEMORY")
            .map_err(db)?;
        conn.pragma_update(None, "cache_size", -65536).map_err(db)?;
        conn.busy_timeout(std::time::Duration::from_secs(30))
            .map_err(db)?;
        // A statement per table (each table has its own documents table).
        conn.set_prepared_statement_cache_capacity(256);
        let old: bool = conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1)",
                [OLD_DOCUMENTS_TABLE],
                |row| row.get(0),
            )
            .map_err(db)?;
        if old {
            return Err(old_layout_error());
        }
        conn.execute_batch(SCHEMA).map_err(db)?;
        Ok(SqliteStore(SqlStore::new(Sqlite(Mutex::new(conn)))))
    }
}

pub(super) struct Sqlite(Mutex<Connection>);

impl rusqlite::ToSql for Param<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match *self {
            Param::Null => ValueRef::Null,
            Param::Int(v) => ValueRef::Integer(v),
            Param::Text(v) => ValueRef::Text(v.as_bytes()),
        }))
    }
}

/// `$n` placeholders as SQLite's `?n`: SQLite numbers `$n` parameters by
/// their first appearance, not by `n`.
fn numbered(sql: &str) -> String {
    sql.replace('$', "?")
}

impl Conn for rusqlite::Transaction<'_> {
    fn exec(&mut self, sql: &str, params: &[Param<'_>]) -> Result<u64, StoreError> {
        let mut statement = self.prepare_cached(&numbered(sql)).map_err(db)?;
        let changed = statement
            .execute(rusqlite::params_from_iter(params))
            .map_err(db)?;
        Ok(changed as u64)
    }

    fn query(&mut self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Vec<Cell>>, StoreError> {
        let mut statement = self.prepare_cached(&numbered(sql)).map_err(db)?;
        let columns = statement.column_count();
        let mut rows = statement
            .query(rusqlite::params_from_iter(params))
            .map_err(db)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(db)? {
            let mut cells = Vec::with_capacity(columns);
            for i in 0..columns {
                cells.push(match row.get_ref(i).map_err(db)? {
                    ValueRef::Null => Cell::Null,
                    ValueRef::Integer(v) => Cell::Int(v),
                    ValueRef::Real(v) => Cell::Int(v as i64),
                    ValueRef::Text(v) => Cell::Text(String::from_utf8_lossy(v).into_owned()),
                    ValueRef::Blob(v) => Cell::Blob(v.to_vec()),
                });
            }
            out.push(cells);
        }
        Ok(out)
    }

    fn insert_documents(
        &mut self,
        table: &str,
        rows: &[([u8; 16], &str)],
    ) -> Result<(), StoreError> {
        let mut statement = self
            .prepare_cached(&format!(
                "INSERT INTO {table} (internal_id, json) VALUES (?1, ?2)"
            ))
            .map_err(db)?;
        for (internal, json) in rows {
            statement.execute((&internal[..], json)).map_err(db)?;
        }
        Ok(())
    }
}

impl Backend for Sqlite {
    const BYTES: &'static str = "BLOB";

    fn transaction<T: Send>(
        &self,
        _exclusive: bool,
        f: impl FnOnce(&mut dyn Conn) -> Result<T, StoreError> + Send,
    ) -> Result<T, StoreError> {
        // One connection: every transaction is exclusive.
        let mut conn = self
            .0
            .lock()
            .map_err(|_| StoreError::Database("a previous transaction panicked".into()))?;
        let mut tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db)?;
        let value = f(&mut tx)?;
        tx.commit().map_err(db)?;
        Ok(value)
    }
}
