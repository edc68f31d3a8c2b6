//! The PostgreSQL backend: a small pool of connections (each with its
//! prepared statements), READ COMMITTED transactions, and a transaction-level
//! advisory lock that serializes finishing and cancelling imports, and the
//! writes that declare tables. A serving server also holds a session
//! advisory lock per schema on a connection of its own
//! ([`lock_for_serving`]), so that no second server serves the database.
//!
//! The blocking `postgres` client runs its own small tokio runtime, which
//! must not be entered (nor dropped) on a thread that drives another one:
//! inside a tokio context every call moves to a scoped plain thread.

use std::collections::HashMap;
use std::error::Error;
use std::io::Write as _;
use std::sync::Mutex;

use bytes::BytesMut;
use postgres::types::{to_sql_checked, IsNull, ToSql, Type};
use postgres::{Client, NoTls, Statement};

use super::sql::{
    delegate_store, old_layout_error, Backend, Cell, Conn, Param, SqlStore, OLD_DOCUMENTS_TABLE,
};
use super::StoreError;

/// Advisory lock key held by exclusive transactions ("snappack" in ASCII, cut to 8 bytes).
const LOCK_KEY: i64 = 0x736e_6170_7061_636b;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS snappack_imports (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    mode TEXT NOT NULL,
    state TEXT NOT NULL,
    applied_seq BIGINT,
    error TEXT,
    label TEXT,
    target TEXT
);
CREATE TABLE IF NOT EXISTS snappack_tables (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    component TEXT NOT NULL,
    name TEXT NOT NULL,
    number BIGINT,
    import_id TEXT,
    generation BIGINT NOT NULL DEFAULT 0,
    documents BIGINT NOT NULL DEFAULT 0,
    observed_id BIGINT,
    observed_generation BIGINT,
    pin_number BIGINT,
    pin_id TEXT
);
CREATE TABLE IF NOT EXISTS snappack_meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
-- Documents tables of tables a finish deleted or replaced, dropped after
-- its commit (and at the next start, should that fail).
CREATE TABLE IF NOT EXISTS snappack_retired (
    table_id BIGINT PRIMARY KEY
);
CREATE UNIQUE INDEX IF NOT EXISTS snappack_tables_active
    ON snappack_tables (component, name) WHERE import_id IS NULL;
CREATE UNIQUE INDEX IF NOT EXISTS snappack_tables_hidden
    ON snappack_tables (import_id, component, name) WHERE import_id IS NOT NULL;
";

/// A PostgreSQL error with its causes: the error itself often says only
/// `db error` or `error connecting to server`, and the server's message
/// (`database "x" does not exist`) or the system's is its source.
///
/// An error of the server's own that doing the same again meets again (a
/// limit of its configuration, such as the locks a transaction may hold, or
/// a missing right) is [`StoreError::Refused`], in its words, with its code
/// and hint; a lost connection, a deadlock, a cancelled statement and the
/// like ([`transient`]) are [`StoreError::Database`], made good by trying
/// again.
fn db(e: postgres::Error) -> StoreError {
    if let Some(error) = e.as_db_error() {
        if !transient(error.code().code()) {
            let mut message = format!("{} (SQLSTATE {})", error.message(), error.code().code());
            if let Some(detail) = error.detail() {
                message.push_str(&format!("; detail: {detail}"));
            }
            if let Some(hint) = error.hint() {
                message.push_str(&format!("; hint: {hint}"));
            }
            return StoreError::Refused(message);
        }
    }
    let mut message = e.to_string();
    let mut cause = std::error::Error::source(&e);
    while let Some(error) = cause {
        message.push_str(&format!(": {error}"));
        cause = error.source();
    }
    StoreError::Database(message)
}

/// Whether an error of SQLSTATE `code` may pass when the same is done again:
/// the connection's (class 08), a transaction rolled back for another's sake
/// (40: serialization failures, deadlocks), an operator's intervention or a
/// cancelled statement (57), a system or I/O error (58), too many
/// connections, a lock not available now, a session ended for idling.
fn transient(code: &str) -> bool {
    matches!(code.get(..2), Some("08" | "40" | "57" | "58"))
        || matches!(code, "53300" | "55P03" | "25P03")
}

/// The PostgreSQL store.
pub struct PostgresStore(SqlStore<Postgres>);

delegate_store!(PostgresStore);

impl PostgresStore {
    /// Connects to `url` (`postgres://user@host:port/db`, libpq-style
    /// parameters allowed) and creates the schema when missing.
    pub fn connect(url: &str) -> Result<Self, StoreError> {
        off_runtime(|| Self::connect_here(url))
    }

    fn connect_here(url: &str) -> Result<Self, StoreError> {
        let config: postgres::Config = url
            .parse()
            .map_err(|e| StoreError::Database(format!("bad PostgreSQL URL: {e}")))?;
        let mut backend = Postgres {
            config,
            idle: Mutex::new(Vec::new()),
            tables_per_transaction: 1,
        };
        let mut pooled = backend.take()?;
        let locks: String = pooled
            .client
            .query_one("SHOW max_locks_per_transaction", &[])
            .map_err(db)?
            .get(0);
        // Creating a table (with its TOAST table and index) takes 4 locks,
        // dropping one 7; a transaction may hold about twice the average
        // the server sets aside for each (the shared table has room to spare).
        backend.tables_per_transaction = (locks.parse::<usize>().unwrap_or(64) / 2).max(1);
        let mut tx = pooled.client.transaction().map_err(db)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_KEY])
            .map_err(db)?;
        let old: bool = tx
            .query_one(
                "SELECT to_regclass($1) IS NOT NULL",
                &[&OLD_DOCUMENTS_TABLE],
            )
            .map_err(db)?
            .get(0);
        if old {
            return Err(old_layout_error());
        }
        tx.batch_execute(SCHEMA).map_err(db)?;
        // Databases made before imports recorded their target (looked up
        // first: the change locks the table, even when it has the column).
        let has_target: bool = tx
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = \
                 to_regclass('snappack_imports') AND attname = 'target' AND NOT attisdropped)",
                &[],
            )
            .map_err(db)?
            .get(0);
        if !has_target {
            tx.batch_execute("ALTER TABLE snappack_imports ADD COLUMN target TEXT")
                .map_err(db)?;
        }
        tx.commit().map_err(db)?;
        backend.give_back(pooled);
        Ok(PostgresStore(SqlStore::new(backend)))
    }
}

/// First key of the session advisory lock a server holds on its database
/// ("snap" in ASCII); the second is the hash of its schema's name, since
/// each schema is a database of its own to snappack.
const SERVE_KEY: i32 = 0x736e_6170;

/// A PostgreSQL database (the schema the URL chooses) held by one server:
/// a session advisory lock, on a connection of its own, released when it
/// is dropped or when the process ends, however it ends.
pub struct ServingLock {
    url: String,
    client: Option<Client>,
}

impl ServingLock {
    /// Takes the lock again if its connection closed (PostgreSQL restarted,
    /// or the session was ended): `Ok(true)` when it did, `Ok(false)` when
    /// it was held; `InUse` when another server took it meanwhile.
    pub fn keep(&mut self) -> Result<bool, StoreError> {
        // A round trip: the blocking client notices a closed connection
        // only when it is used.
        let alive = off_runtime(|| {
            self.client
                .as_mut()
                .is_some_and(|client| client.is_valid(std::time::Duration::from_secs(10)).is_ok())
        });
        if alive {
            return Ok(false);
        }
        let closed = self.client.take();
        off_runtime(move || drop(closed));
        let mut again = lock_for_serving(&self.url)?;
        self.client = again.client.take();
        Ok(true)
    }
}

impl Drop for ServingLock {
    fn drop(&mut self) {
        let client = self.client.take();
        off_runtime(move || drop(client));
    }
}

/// Takes the database `url` names for one server; `InUse` when another
/// server holds it.
pub fn lock_for_serving(url: &str) -> Result<ServingLock, StoreError> {
    off_runtime(|| {
        let mut config: postgres::Config = url
            .parse()
            .map_err(|e| StoreError::Database(format!("bad PostgreSQL URL: {e}")))?;
        // The lock is taken again every few seconds once lost (`keep`): a
        // host that does not answer must not hold that up for the system's
        // TCP connect timeout (minutes). A URL's own `connect_timeout` wins.
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(std::time::Duration::from_secs(10));
        }
        let mut client = config.connect(NoTls).map_err(db)?;
        // A server whose machine is gone (not only its process) would hold
        // the lock until PostgreSQL notices: by default, hours of TCP
        // keepalive. Its session probes every 10 s after 30 s of silence.
        client
            .batch_execute(
                "SET tcp_keepalives_idle = 30; SET tcp_keepalives_interval = 10; \
                 SET tcp_keepalives_count = 3",
            )
            .map_err(db)?;
        let row = client
            .query_one(
                "SELECT pg_try_advisory_lock($1, hashtext(coalesce(current_schema(), ''))), \
                 current_database()::text, coalesce(current_schema(), '')::text",
                &[&SERVE_KEY],
            )
            .map_err(db)?;
        let (taken, database, schema): (bool, String, String) =
            (row.get(0), row.get(1), row.get(2));
        if taken {
            return Ok(ServingLock {
                url: url.to_owned(),
                client: Some(client),
            });
        }
        // Who holds it, for the message: a session of another server. An
        // advisory lock is the database's, but pg_locks lists every
        // database's (another's server on a schema of this name too).
        let holder = client
            .query(
                "SELECT l.pid, coalesce(host(a.client_addr), 'a local socket'), \
                 coalesce(a.backend_start::text, '?') \
                 FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid \
                 WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2 \
                 AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
                 AND l.classid::text::bigint = $1::bigint \
                 AND l.objid::text::bigint = hashtext(coalesce(current_schema(), ''))::bigint & 4294967295",
                &[&i64::from(SERVE_KEY)],
            )
            .ok()
            .and_then(|rows| rows.into_iter().next())
            .map(|row| {
                let (pid, from, since): (i32, String, String) = (row.get(0), row.get(1), row.get(2));
                format!(
                    " by the session of PostgreSQL backend {pid} (from {from}, since {since}); if \
                     that server is gone for good, `SELECT pg_terminate_backend({pid})` ends it"
                )
            })
            .unwrap_or_default();
        off_runtime(move || drop(client));
        Err(StoreError::InUse(format!(
            "schema {schema:?} of PostgreSQL database {database:?} (its session advisory lock \
             ({SERVE_KEY}, hashtext({schema:?})) is held{holder})"
        )))
    })
}

/// Runs `f` on a thread outside any tokio runtime.
fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    if tokio::runtime::Handle::try_current().is_err() {
        return f();
    }
    std::thread::scope(|scope| {
        scope
            .spawn(f)
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

struct Pooled {
    client: Client,
    statements: HashMap<String, Statement>,
}

pub(super) struct Postgres {
    config: postgres::Config,
    idle: Mutex<Vec<Pooled>>,
    /// Half the server's `max_locks_per_transaction`.
    tables_per_transaction: usize,
}

impl Postgres {
    fn take(&self) -> Result<Pooled, StoreError> {
        let idle = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        match idle {
            Some(pooled) if !pooled.client.is_closed() => Ok(pooled),
            _ => self.connect_new(),
        }
    }

    fn connect_new(&self) -> Result<Pooled, StoreError> {
        Ok(Pooled {
            client: self.config.connect(NoTls).map_err(db)?,
            statements: HashMap::new(),
        })
    }

    fn give_back(&self, pooled: Pooled) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(pooled);
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let idle = std::mem::take(self.idle.get_mut().unwrap_or_else(|p| p.into_inner()));
        off_runtime(move || drop(idle));
    }
}

impl ToSql for Param<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        match *self {
            Param::Null => Ok(IsNull::Yes),
            Param::Int(v) => v.to_sql(ty, out),
            Param::Text(v) => v.to_sql(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

struct PgConn<'a, 'b> {
    tx: &'a mut postgres::Transaction<'b>,
    statements: &'a mut HashMap<String, Statement>,
}

impl PgConn<'_, '_> {
    /// The prepared statement of `sql`. Statements with parameters are the
    /// fixed ones, kept for the connection's life; one without is made for
    /// one table (`CREATE TABLE snappack_docs_7 ...`), and is closed once
    /// run: kept, a connection would hold one per table it ever touched,
    /// and PostgreSQL looks at every statement a session keeps at each
    /// catalog change, which made creating n tables take time in n².
    fn statement(&mut self, sql: &str, params: &[Param<'_>]) -> Result<Statement, StoreError> {
        if params.is_empty() {
            return self.tx.prepare(sql).map_err(db);
        }
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.tx.prepare(sql).map_err(db)?;
        self.statements.insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }
}

fn cell(row: &postgres::Row, i: usize) -> Result<Cell, StoreError> {
    let ty = row.columns()[i].type_();
    let cell = if *ty == Type::INT8 {
        row.try_get::<_, Option<i64>>(i).map_err(db)?.map(Cell::Int)
    } else if *ty == Type::INT4 {
        row.try_get::<_, Option<i32>>(i)
            .map_err(db)?
            .map(|v| Cell::Int(v.into()))
    } else if *ty == Type::BYTEA {
        row.try_get::<_, Option<Vec<u8>>>(i)
            .map_err(db)?
            .map(Cell::Blob)
    } else {
        row.try_get::<_, Option<String>>(i)
            .map_err(db)?
            .map(Cell::Text)
    };
    Ok(cell.unwrap_or(Cell::Null))
}

impl Conn for PgConn<'_, '_> {
    fn exec(&mut self, sql: &str, params: &[Param<'_>]) -> Result<u64, StoreError> {
        let statement = self.statement(sql, params)?;
        let params: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p as _).collect();
        self.tx.execute(&statement, &params).map_err(db)
    }

    fn query(&mut self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Vec<Cell>>, StoreError> {
        let statement = self.statement(sql, params)?;
        let params: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p as _).collect();
        let rows = self.tx.query(&statement, &params).map_err(db)?;
        rows.iter()
            .map(|row| (0..row.len()).map(|i| cell(row, i)).collect())
            .collect()
    }

    /// One `COPY ... FROM STDIN` in PostgreSQL's binary format: a header,
    /// per row a field count and each field's length and bytes, a trailer.
    fn insert_documents(
        &mut self,
        table: &str,
        rows: &[([u8; 16], &str)],
    ) -> Result<(), StoreError> {
        const FLUSH_AT: usize = 1 << 20;
        let too_long = |len: usize| {
            i32::try_from(len)
                .map_err(|_| StoreError::Database(format!("a document of {len} bytes")))
        };
        let mut writer = self
            .tx
            .copy_in(&format!(
                "COPY {table} (internal_id, json) FROM STDIN (FORMAT binary)"
            ))
            .map_err(db)?;
        let io = |e: std::io::Error| StoreError::Database(format!("COPY: {e}"));
        let mut buf = Vec::with_capacity(FLUSH_AT + (64 << 10));
        buf.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
        buf.extend_from_slice(&0i32.to_be_bytes()); // flags
        buf.extend_from_slice(&0i32.to_be_bytes()); // header extension length
        for (internal, json) in rows {
            buf.extend_from_slice(&2i16.to_be_bytes());
            buf.extend_from_slice(&16i32.to_be_bytes());
            buf.extend_from_slice(internal);
            buf.extend_from_slice(&too_long(json.len())?.to_be_bytes());
            buf.extend_from_slice(json.as_bytes());
            if buf.len() >= FLUSH_AT {
                writer.write_all(&buf).map_err(io)?;
                buf.clear();
            }
        }
        buf.extend_from_slice(&(-1i16).to_be_bytes());
        writer.write_all(&buf).map_err(io)?;
        writer.finish().map_err(db)?;
        Ok(())
    }
}

impl Backend for Postgres {
    const BYTES: &'static str = "BYTEA";
    const ADDED_ORDER: &'static str = "ctid";
    const DOCUMENTS_INDEXES: &'static str =
        "SELECT indexname::text FROM pg_indexes WHERE schemaname = current_schema() AND indexname LIKE 'snappack_docs_%'";

    fn tables_per_transaction(&self) -> usize {
        self.tables_per_transaction
    }

    fn transaction<T: Send>(
        &self,
        exclusive: bool,
        f: impl FnOnce(&mut dyn Conn) -> Result<T, StoreError> + Send,
    ) -> Result<T, StoreError> {
        off_runtime(|| self.transaction_here(exclusive, f))
    }
}

impl Postgres {
    fn transaction_here<T>(
        &self,
        exclusive: bool,
        f: impl FnOnce(&mut dyn Conn) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut f = Some(f);
        // `Err((error, true))`: BEGIN failed, nothing ran.
        let mut attempt = |pooled: &mut Pooled| -> Result<T, (StoreError, bool)> {
            let mut tx = pooled.client.transaction().map_err(|e| (db(e), true))?;
            if exclusive {
                tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_KEY])
                    .map_err(|e| (db(e), false))?;
            }
            let f = f.take().expect("the transaction's work runs once");
            let value = f(&mut PgConn {
                tx: &mut tx,
                statements: &mut pooled.statements,
            })
            .map_err(|e| (e, false))?;
            tx.commit().map_err(|e| (db(e), false))?;
            Ok(value)
        };
        let mut pooled = self.take()?;
        let mut result = attempt(&mut pooled);
        // An idle connection that PostgreSQL ended meanwhile (it restarted,
        // or an administrator ended the session) looks open until it is
        // used: its BEGIN fails before anything ran, and the transaction is
        // made on a new connection instead of failing the request.
        if matches!(result, Err((_, true))) && pooled.client.is_closed() {
            pooled = self.connect_new()?;
            result = attempt(&mut pooled);
        }
        self.give_back(pooled);
        result.map_err(|(error, _)| error)
    }
}
