//! The SQLite backend: one file, bundled SQLite, one connection behind a
//! mutex (SQLite has one writer at a time anyway). A serving server holds a
//! lock on the file (`lock_for_serving`: a `flock` on it on Linux, a lock
//! on `<file>.lock` beside it elsewhere and on network file systems; on
//! Linux that one too, which servers of earlier builds take), so that no
//! second server serves it.
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
//!
//! Pages of 16 KiB in a new database, rather than SQLite's 4 KiB: documents
//! are rows of hundreds of bytes written in bulk, so a page holds more of
//! them (fewer B-tree pages, splits, overflow chains and writes), which
//! made an import through the HTTP API about an eighth faster. A database
//! made with other pages keeps them.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, TransactionBehavior};

use super::sql::{
    delegate_store, old_layout_error, Backend, Cell, Conn, Param, SqlStore, OLD_DOCUMENTS_TABLE,
};
use super::StoreError;
use crate::server::made::{lock_file, open_or_make, LockFile, Made};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS snappack_imports (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    mode TEXT NOT NULL,
    state TEXT NOT NULL,
    applied_seq INTEGER,
    error TEXT,
    label TEXT,
    target TEXT
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
-- Documents tables of tables a finish deleted or replaced, dropped after
-- its commit (and at the next start, should that fail).
CREATE TABLE IF NOT EXISTS snappack_retired (
    table_id INTEGER PRIMARY KEY
);
CREATE UNIQUE INDEX IF NOT EXISTS snappack_tables_active
    ON snappack_tables (component, name) WHERE import_id IS NULL;
CREATE UNIQUE INDEX IF NOT EXISTS snappack_tables_hidden
    ON snappack_tables (import_id, component, name) WHERE import_id IS NOT NULL;
";

/// The page size of a database this store makes (see the module's
/// documentation).
const PAGE_SIZE: u32 = 16384;

fn db(e: rusqlite::Error) -> StoreError {
    StoreError::Database(e.to_string())
}

/// The SQLite store.
pub struct SqliteStore(SqlStore<Sqlite>);

delegate_store!(SqliteStore);

/// An SQLite database held by one server ([`super::lock_for_serving`]) until
/// dropped.
pub struct DatabaseLock {
    #[allow(dead_code)]
    held: Held,
    /// What taking the lock made: folders, the lock file beside the
    /// database, the database file (and its journal, which SQLite makes).
    made: Made,
    /// Whether the database file is among them: a new database.
    made_database: bool,
}

impl DatabaseLock {
    /// Whether taking the lock made the database file: the database is new,
    /// and a refused start removes it.
    pub(super) fn made_database(&self) -> bool {
        self.made_database
    }

    /// Lets go of the database, removing first what taking it made (a
    /// refused start leaves the disk as it found it).
    pub(super) fn remove_made(mut self) {
        self.made.remove();
    }
}

/// What a [`DatabaseLock`] holds: its fields are kept for their locks, never
/// read.
#[allow(dead_code)]
enum Held {
    /// A lock on the database file itself: every name of the file (hard
    /// links, symbolic links) finds it; and the lock on `<file>.lock`
    /// beside it, the one servers of earlier builds take, so that such a
    /// server and this one exclude each other during an upgrade.
    #[cfg(target_os = "linux")]
    File {
        file: file_lock::Locked,
        beside: std::fs::File,
    },
    /// A lock on `<file>.lock` beside the file, as the system resolves its
    /// path: elsewhere, and on network file systems.
    Beside(std::fs::File),
}

/// Takes the SQLite database `path` for one server; `InUse`, naming who
/// holds it when that can be told, when another server holds it. What it
/// makes is removed again when it is refused, and listed in the lock.
///
/// On Linux, an exclusive `flock` on the database file itself, so that
/// every name of the file (two hard links, a symbolic link) meets the same
/// lock. SQLite locks the file with `fcntl` locks, which Linux keeps apart
/// from `flock` locks, so the two do not meet (on NFS and SMB, where Linux
/// makes `flock` an `fcntl` lock, and on other systems, where they may
/// meet, the lock is on `<path>.lock` beside the file instead, the path as
/// the system resolves it). Servers of earlier builds locked only
/// `<path>.lock`, so on Linux that lock is taken as well, after the one on
/// the file: an earlier server and this one never serve the database at
/// once, whichever started first, as during an upgrade.
pub(super) fn lock_for_serving(path: &Path) -> Result<DatabaseLock, StoreError> {
    let mut made = Made::default();
    let held = lock_making(path, &mut made);
    match held {
        Ok(held) => Ok(DatabaseLock {
            held,
            made_database: made.contains(path),
            made,
        }),
        Err(e) => {
            made.remove();
            Err(e)
        }
    }
}

fn lock_making(path: &Path, made: &mut Made) -> Result<Held, StoreError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        made.create_dir_all(parent)
            .map_err(|e| cannot_lock(parent, e))?;
    }
    #[cfg(target_os = "linux")]
    if !file_lock::on_network_file_system(path) {
        let file = file_lock::lock(path, made)?;
        // Refused, `file` is dropped, which lets go of the file's lock.
        let beside = lock_beside(path, ", as a server of an earlier build locks it", made)?;
        return Ok(Held::File { file, beside });
    }
    let beside = lock_beside(path, "", made)?;
    // Made here rather than by SQLite, so that it is known to be new.
    make_database_file(path, made)?;
    Ok(Held::Beside(beside))
}

/// Makes the database file `path` (empty: an empty database to SQLite) if
/// it is missing, listing it in `made`, with the journal SQLite will make
/// beside it (which a missing database cannot have had). `None` when it
/// was removed between a make that found it and the open that followed.
fn make_database_file(path: &Path, made: &mut Made) -> Result<Option<std::fs::File>, StoreError> {
    let Some((file, new)) = open_or_make(path, true).map_err(|e| cannot_lock(path, e))? else {
        return Ok(None);
    };
    if new {
        made.file(path.to_owned());
        let mut journal = path.as_os_str().to_owned();
        journal.push("-journal");
        let journal = std::path::PathBuf::from(journal);
        if std::fs::symlink_metadata(&journal).is_err() {
            made.file(journal);
        }
    }
    Ok(Some(file))
}

fn cannot_lock(what: &Path, e: std::io::Error) -> StoreError {
    StoreError::Database(format!("cannot lock {}: {e}", what.display()))
}

/// The lock on `<path>.lock` beside the database file, held on the file
/// returned (listed in `made` if this made it); refused, the message names
/// the process that holds it when that can be told, then `why`.
fn lock_beside(path: &Path, why: &str, made: &mut Made) -> Result<std::fs::File, StoreError> {
    let name = path
        .file_name()
        .ok_or_else(|| StoreError::Database(format!("{} names no file", path.display())))?;
    let folder = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let resolved = std::fs::canonicalize(path)
        .or_else(|_| std::fs::canonicalize(folder).map(|folder| folder.join(name)))
        .map_err(|e| cannot_lock(path, e))?;
    let mut lock_name = resolved.file_name().unwrap_or(name).to_owned();
    lock_name.push(".lock");
    let lock = resolved.with_file_name(lock_name);
    match lock_file(&lock).map_err(|e| cannot_lock(&lock, e))? {
        LockFile::Locked { file, made: new } => {
            if new {
                made.file(lock);
            }
            Ok(file)
        }
        LockFile::Held(file) => {
            #[cfg(target_os = "linux")]
            let holder = file_lock::holder(&file);
            #[cfg(not(target_os = "linux"))]
            let holder = {
                let _ = file;
                String::new()
            };
            Err(StoreError::InUse(format!(
                "SQLite database {} (its lock file {} is locked{holder}{why})",
                resolved.display(),
                lock.display()
            )))
        }
    }
}

/// The lock on the database file itself (Linux).
///
/// Closing a descriptor of a file lets go of every `fcntl` lock the process
/// holds on it, SQLite's among them (a connection of this process may be in
/// the middle of a write then). So the descriptor a lock is taken on is
/// never closed: a lock let go is unlocked, and the next one on the same
/// file in this process takes that descriptor again. That one descriptor is
/// also how a second server of this process on the file is refused, since a
/// `flock` does not refuse its own descriptor.
#[cfg(target_os = "linux")]
mod file_lock {
    use std::os::unix::fs::MetadataExt as _;
    use std::path::Path;
    use std::sync::{Arc, Mutex, MutexGuard};

    use super::cannot_lock;
    use crate::server::made::{names_file, Made};
    use crate::server::store::StoreError;

    /// A descriptor of a database file this process locked, and whether
    /// one of its servers holds the lock now.
    pub(super) struct Kept {
        pub(super) file: Arc<std::fs::File>,
        pub(super) held: bool,
    }

    static KEPT: Mutex<Vec<Kept>> = Mutex::new(Vec::new());

    pub(super) fn kept() -> MutexGuard<'static, Vec<Kept>> {
        KEPT.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The file's device and inode.
    fn identity(meta: &std::fs::Metadata) -> (u64, u64) {
        (meta.dev(), meta.ino())
    }

    /// Whether `path`'s folder is on NFS or SMB, where `flock` is an
    /// `fcntl` lock and would meet SQLite's.
    pub(super) fn on_network_file_system(path: &Path) -> bool {
        use std::os::unix::ffi::OsStrExt as _;
        const NFS: i64 = 0x6969;
        const SMB: i64 = 0x517b;
        const CIFS: i64 = 0xff53_4d42;
        const SMB2: i64 = 0xfe53_4d42;
        let folder = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        let Ok(name) = std::ffi::CString::new(folder.as_os_str().as_bytes()) else {
            return false;
        };
        let mut info = std::mem::MaybeUninit::<libc::statfs>::zeroed();
        // SAFETY: `name` is a NUL-terminated path and `info` has room for
        // the answer, which is read only when the call succeeded.
        let kind = unsafe {
            if libc::statfs(name.as_ptr(), info.as_mut_ptr()) != 0 {
                return false;
            }
            info.assume_init().f_type
        };
        #[allow(clippy::unnecessary_cast, clippy::useless_conversion)]
        let kind = i64::from(kind as u32);
        [NFS, SMB, CIFS, SMB2].contains(&kind)
    }

    /// The lock on a database file, let go (unlocked, not closed) when
    /// dropped.
    pub(super) struct Locked(Arc<std::fs::File>);

    impl Drop for Locked {
        fn drop(&mut self) {
            let _ = self.0.unlock();
            let mut kept = kept();
            if let Some(entry) = kept.iter_mut().find(|k| Arc::ptr_eq(&k.file, &self.0)) {
                entry.held = false;
            }
        }
    }

    /// Locks the database file `path` (making it, empty, if it is missing:
    /// listed in `made` then, with the journal SQLite will make beside it).
    /// The lock counts once `path` still names the file locked: a refused
    /// start removes a database file it made.
    pub(super) fn lock(path: &Path, made: &mut Made) -> Result<Locked, StoreError> {
        for _ in 0..100 {
            let mut kept = kept();
            let existing = std::fs::metadata(path).ok().and_then(|meta| {
                kept.iter().position(|k| {
                    k.file
                        .metadata()
                        .is_ok_and(|m| identity(&m) == identity(&meta))
                })
            });
            let index = match existing {
                Some(index) => index,
                None => {
                    // An empty file is an empty database to SQLite.
                    let Some(file) = super::make_database_file(path, made)? else {
                        continue;
                    };
                    kept.push(Kept {
                        file: Arc::new(file),
                        held: false,
                    });
                    kept.len() - 1
                }
            };
            let entry = &mut kept[index];
            let refused = |holder: String| {
                StoreError::InUse(format!(
                    "SQLite database {} (a lock on the database file, whatever its name, is held{holder})",
                    path.display()
                ))
            };
            if entry.held {
                return Err(refused(format!(
                    " by another server of this process ({})",
                    std::process::id()
                )));
            }
            match entry.file.try_lock() {
                Ok(()) if names_file(path, &entry.file) => {
                    entry.held = true;
                    return Ok(Locked(entry.file.clone()));
                }
                // Removed by a refused start after it was opened.
                Ok(()) => {
                    let _ = entry.file.unlock();
                }
                Err(std::fs::TryLockError::WouldBlock) => return Err(refused(holder(&entry.file))),
                Err(std::fs::TryLockError::Error(e)) => return Err(cannot_lock(path, e)),
            }
        }
        Err(cannot_lock(
            path,
            std::io::Error::other("it was removed and made again at every try to lock it"),
        ))
    }

    /// Who holds the `flock` on `file`, as `/proc/locks` tells it: ` by
    /// process N (its program, --database and --data-dir)`, or nothing when
    /// it cannot be told.
    pub(super) fn holder(file: &std::fs::File) -> String {
        let Ok(meta) = file.metadata() else {
            return String::new();
        };
        let (dev, ino) = identity(&meta);
        let key = format!(
            "{:02x}:{:02x}:{ino}",
            libc::major(dev as libc::dev_t),
            libc::minor(dev as libc::dev_t)
        );
        let locks = std::fs::read_to_string("/proc/locks").unwrap_or_default();
        // `1: FLOCK  ADVISORY  WRITE 4711 fe:00:1234 0 EOF`; a waiting
        // lock's line has `->` after the number.
        let pid = locks.lines().find_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            (fields.get(1) == Some(&"FLOCK") && fields.get(5) == Some(&key.as_str()))
                .then(|| fields[4].parse::<u32>().ok())
                .flatten()
        });
        match pid {
            Some(pid) => format!(" by process {pid}{}", describe_process(pid)),
            None => String::new(),
        }
    }

    /// ` (program, --database X, --data-dir Y)` of a process, from its
    /// command line (only these: another may be a secret, as `--token`).
    fn describe_process(pid: u32) -> String {
        let Ok(line) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            return String::new();
        };
        let args: Vec<String> = line
            .split(|&b| b == 0)
            .filter(|arg| !arg.is_empty())
            .map(|arg| String::from_utf8_lossy(arg).into_owned())
            .collect();
        let Some(program) = args.first() else {
            return String::new();
        };
        let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).ok();
        let mut parts = vec![program.rsplit('/').next().unwrap_or(program).to_owned()];
        for option in ["--database", "--data-dir"] {
            let value =
                args.iter()
                    .enumerate()
                    .find_map(|(i, arg)| match arg.strip_prefix(option) {
                        Some("") => args.get(i + 1).cloned(),
                        Some(rest) => rest.strip_prefix('=').map(str::to_owned),
                        None => None,
                    });
            if let Some(value) = value.filter(|v| !v.contains("://")) {
                let value = match &cwd {
                    Some(cwd) if Path::new(&value).is_relative() => {
                        cwd.join(&value).display().to_string()
                    }
                    _ => value,
                };
                parts.push(format!("{option} {value}"));
            }
        }
        format!(" ({})", parts.join(", "))
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
        // See the module's documentation. The page size applies to a new
        // database only: set before anything is written.
        conn.pragma_update(None, "page_size", PAGE_SIZE)
            .map_err(db)?;
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
        // Databases made before imports recorded their target.
        let has_target: bool = conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM pragma_table_info('snappack_imports') WHERE name = 'target')",
                [],
                |row| row.get(0),
            )
            .map_err(db)?;
        if !has_target {
            conn.execute_batch("ALTER TABLE snappack_imports ADD COLUMN target TEXT")
                .map_err(db)?;
        }
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
    const ADDED_ORDER: &'static str = "rowid";
    const DOCUMENTS_INDEXES: &'static str =
        "SELECT name FROM sqlite_master WHERE type = 'index' AND name LIKE 'snappack_docs_%'";

    /// Every one: SQLite locks the file, not each table.
    fn tables_per_transaction(&self) -> usize {
        usize::MAX
    }

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
