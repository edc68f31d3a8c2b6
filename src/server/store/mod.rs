//! The database side of an import: a [`Store`] with two backends, SQLite
//! (embedded, the default) and PostgreSQL, sharing one implementation of
//! every rule.
//!
//! Data model, per component a namespace of tables:
//! * `snappack_tables`: one row per table (component, name, number). Active
//!   tables have no import id; hidden tables belong to one import and are
//!   invisible until the import finishes.
//! * `snappack_docs_<table row id>`: one SQL table per table, holding its
//!   documents (16-byte internal id, the original JSON line). A document's
//!   `_id` text is its table's number and internal id, encoded; a line
//!   without `_id` got an internal id from the server. While hidden, a table
//!   is only appended to (SQLite: multi-row transactions of single-row
//!   inserts; PostgreSQL: binary `COPY`), with no index to maintain: the
//!   re-validation already refused duplicate ids. Once its last document
//!   is in (the table's end), it gets its unique index on the internal id
//!   (one sorted build, on the writes' thread rather than at finish, which
//!   only builds those missing, before its transaction).
//! * `snappack_retired`: the row ids of tables a finish replaced or
//!   deleted, whose documents tables are still to be dropped.
//! * `snappack_imports`: each import's mode, state, and the last frame whose
//!   writes are in the database (so a restarted server replays the rest).
//! * `snappack_meta`: the id of the data folder the database is served from
//!   (`data_folder`), so that another folder is refused.
//!
//! Imports write into hidden tables as frames arrive: the tables a request
//! declares are made a batch at a time (PostgreSQL holds a lock per table
//! until a transaction ends, and has room for only so many), then its
//! frames' documents go in one transaction, which records the last frame;
//! [`Store::finish_import`] activates them in one transaction with
//! Convex's mode semantics ([`plan`]), in which the active tables it
//! replaces or deletes are retired (their rows go, their documents tables
//! are listed in `snappack_retired`) rather than dropped, which would take
//! locks on each: they are dropped after its commit. A failed or cancelled import is
//! marked so in one transaction, then its hidden tables are dropped a batch
//! at a time; the active tables are exactly as they were.

pub mod plan;
mod postgres;
mod sql;
mod sqlite;

use serde::{Deserialize, Serialize};

pub use self::postgres::PostgresStore;
pub use self::sqlite::{DatabaseLock, SqliteStore};
pub use crate::client::ImportTarget;
pub use crate::validate::{ImportMode, TargetTable};

/// Where an import is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ImportState {
    /// Receiving frames.
    Open,
    /// Activated.
    Finished,
    /// Refused at finish (or, a table it declared changed since, when it
    /// was sent more frames); its hidden tables are gone.
    Failed,
    /// Cancelled; its hidden tables are gone.
    Cancelled,
}

impl ImportState {
    /// The state's wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ImportState::Open => "open",
            ImportState::Finished => "finished",
            ImportState::Failed => "failed",
            ImportState::Cancelled => "cancelled",
        }
    }

    /// The state of a wire name.
    pub fn parse(text: &str) -> Option<Self> {
        [
            ImportState::Open,
            ImportState::Finished,
            ImportState::Failed,
            ImportState::Cancelled,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// An import as the database knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportRecord {
    /// The import's id.
    pub id: String,
    /// Its mode.
    pub mode: ImportMode,
    /// Its state.
    pub state: ImportState,
    /// The last frame whose writes are committed, if any.
    pub applied_seq: Option<u64>,
    /// Why it failed, when it did.
    pub error: Option<String>,
    /// The client's label (for example a fingerprint of the file it sends).
    pub label: Option<String>,
    /// What the client said the import targets (`None` for imports made
    /// without saying it, or before it was recorded).
    pub target: Option<ImportTarget>,
}

/// Which imports to list ([`Store::imports_page`]): the newest `limit`
/// imports made before import `before` (every one when `None`), in state
/// `state` (any when `None`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImportsQuery<'a> {
    /// Only imports made before this one.
    pub before: Option<&'a str>,
    /// Only imports in this state.
    pub state: Option<ImportState>,
    /// At most this many.
    pub limit: usize,
}

/// A page of imports ([`Store::imports_page`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportsPage {
    /// The imports, oldest first.
    pub imports: Vec<ImportRecord>,
    /// Whether older imports the query matches were left out.
    pub older: bool,
}

/// A table an import declares: it becomes a hidden table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableDeclaration {
    /// Component path.
    pub component: String,
    /// Table name.
    pub name: String,
    /// The number the stream declares (`_tables` or the first `_id`), if any.
    pub number: Option<u32>,
    /// What of the table the import saw when the declaration was
    /// acknowledged ([`Store::observe_tables`]), which its finish compares
    /// with the table then (`TableChanged`); `None`: what the write sees.
    pub observed: Option<Observed>,
}

/// What an import saw of a table it declares: the active table's row id and
/// generation (which every finish on it changes), or `None` when there was
/// no such table.
pub type Observed = Option<(i64, i64)>;

/// One document to write into a hidden table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DocumentWrite<'a> {
    /// Component path of its table.
    pub component: &'a str,
    /// Its table's name.
    pub table: &'a str,
    /// The internal id (from `_id`, or generated by the server).
    pub internal: [u8; 16],
    /// The original JSON line.
    pub json: &'a str,
}

/// For a table declared without a number: the first `_id` in it, whose table
/// number must become the table's number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TablePin {
    /// Component path.
    pub component: String,
    /// Table name.
    pub table: String,
    /// The table number in the `_id`.
    pub number: u32,
    /// The `_id` text.
    pub id: String,
}

/// Everything one frame writes ([`Store::write_frames`]): the tables it
/// declares, a batch per transaction; then its documents and pins, in one
/// transaction with those of the frames written with it; then the indexes
/// of the tables it ends, a batch per transaction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FrameWrite<'a> {
    /// The frame's sequence number; frames at or below the import's applied
    /// sequence are skipped (a replay after a restart).
    pub seq: u64,
    /// Tables declared in this frame.
    pub tables: Vec<TableDeclaration>,
    /// Documents, in order.
    pub documents: Vec<DocumentWrite<'a>>,
    /// Pins found in this frame.
    pub pins: Vec<TablePin>,
    /// Tables that end in this frame, by component and name: they get their
    /// index now rather than at finish.
    pub ended: Vec<(String, String)>,
}

/// A [`FrameWrite`] that owns its text, so that it can be written later, on
/// another thread: its documents' lines one after another in one string.
#[derive(Debug, Clone, Default)]
pub struct OwnedFrameWrite {
    seq: u64,
    tables: Vec<TableDeclaration>,
    pins: Vec<TablePin>,
    ended: Vec<(String, String)>,
    /// Component path and name of the documents' tables.
    names: Vec<(String, String)>,
    /// The documents' lines, one after another.
    text: String,
    /// Per document: its table (an index into `names`), its internal id,
    /// and where its line ends in `text`.
    documents: Vec<(usize, [u8; 16], usize)>,
}

impl OwnedFrameWrite {
    /// A copy of `write`.
    pub fn new(write: &FrameWrite<'_>) -> Self {
        let mut owned = OwnedFrameWrite {
            seq: write.seq,
            tables: write.tables.clone(),
            pins: write.pins.clone(),
            ended: write.ended.clone(),
            names: Vec::new(),
            text: String::with_capacity(write.documents.iter().map(|d| d.json.len()).sum()),
            documents: Vec::with_capacity(write.documents.len()),
        };
        for doc in &write.documents {
            // A frame's documents come in runs of one table.
            let same_table = owned.names.last().is_some_and(|(component, table)| {
                (&**component, &**table) == (doc.component, doc.table)
            });
            if !same_table {
                owned
                    .names
                    .push((doc.component.to_owned(), doc.table.to_owned()));
            }
            owned.text.push_str(doc.json);
            owned
                .documents
                .push((owned.names.len() - 1, doc.internal, owned.text.len()));
        }
        owned
    }

    /// Bytes of its documents' lines.
    pub fn text_len(&self) -> usize {
        self.text.len()
    }

    /// The write, borrowing from this copy.
    pub fn write(&self) -> FrameWrite<'_> {
        let mut start = 0;
        FrameWrite {
            seq: self.seq,
            tables: self.tables.clone(),
            documents: self
                .documents
                .iter()
                .map(|&(table, internal, end)| {
                    let (component, name) = &self.names[table];
                    let json = &self.text[start..end];
                    start = end;
                    DocumentWrite {
                        component,
                        table: name,
                        internal,
                        json,
                    }
                })
                .collect(),
            pins: self.pins.clone(),
            ended: self.ended.clone(),
        }
    }
}

/// A table made active by a finished import.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivatedTable {
    /// Component path.
    pub component: String,
    /// Table name.
    pub name: String,
    /// Its number.
    pub number: u32,
    /// Documents the import wrote into it.
    pub documents: u64,
    /// True when the documents were added to an existing table (Append).
    pub appended: bool,
}

/// A stored document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDocument {
    /// Its `_id` text.
    pub id: String,
    /// Its JSON line as received.
    pub json: String,
}

/// Convex's refusal of an import: a stable code (Convex's where Convex has
/// one) and Convex's message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ImportError {
    /// Stable code, e.g. `TableConflict`.
    pub code: &'static str,
    /// The message, as Convex words it.
    pub message: String,
    /// Component path of the table concerned.
    pub component: String,
    /// The table concerned, when one is.
    pub table: Option<String>,
    /// The document concerned, when one is: its 1-based line (document
    /// number) in the import's table, as the import's frames gave it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
}

impl ImportError {
    /// The refusal as a failed import's status keeps it (its `error`): code
    /// and message, then the table concerned with its component's path,
    /// since Convex's message names the table alone.
    pub fn recorded(&self) -> String {
        let line = self
            .line
            .map(|line| format!(", line {line}"))
            .unwrap_or_default();
        match &self.table {
            Some(table) if self.component.is_empty() => format!("{self} (table {table}{line})"),
            Some(table) => format!("{self} (table {}/{table}{line})", self.component),
            None => self.to_string(),
        }
    }
}

/// Where an import's document came from, as the import's frames tell it:
/// given the component, the table and the document's id, its 1-based line
/// (document number) in that table, when known.
pub type DocumentLines<'a> =
    dyn Fn(&str, &str, crate::convex::DocumentId) -> Option<u64> + Sync + 'a;

/// The code of an import failed because the database refused its work
/// twice the same way ([`StoreError::Refused`]): writing its frames into
/// its hidden tables, or finishing it (a limit of the database's
/// configuration, such as PostgreSQL's `max_locks_per_transaction`).
pub const DATABASE_REFUSED: &str = "DatabaseRefused";

/// Why a store operation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The import is refused (Convex's rules); nothing changed.
    #[error(transparent)]
    Import(#[from] ImportError),
    /// No import with this id.
    #[error("unknown import {0}")]
    UnknownImport(String),
    /// The import is no longer open.
    #[error("import {id} is {}", state.as_str())]
    NotOpen {
        /// The import.
        id: String,
        /// Its state.
        state: ImportState,
    },
    /// An import with this id exists already.
    #[error("import {0} exists already")]
    DuplicateImport(String),
    /// A frame writes into a table it did not declare.
    #[error("table {table:?} (component {component:?}) is not declared in import {import}")]
    UndeclaredTable {
        /// The import.
        import: String,
        /// Component path.
        component: String,
        /// Table name.
        table: String,
    },
    /// The database failed.
    #[error("database error: {0}")]
    Database(String),
    /// The database refused the work with an error of its own that doing
    /// the same again meets again (a limit of its configuration, a missing
    /// right), unlike a lost connection, a deadlock or a cancelled
    /// statement, which are [`Database`](Self::Database): its words, code
    /// and hint, and what that means for the import.
    #[error("the database refused it: {0}")]
    Refused(String),
    /// Another server holds the database ([`lock_for_serving`]): what is
    /// held.
    #[error("in use by another snappack serve: {0}")]
    InUse(String),
}

/// The database of imported snapshots. Blocking; the server calls it from
/// blocking tasks. Implementations serialize finishing imports.
pub trait Store: Send + Sync {
    /// Active tables of every component, by component and name.
    fn tables(&self) -> Result<Vec<TargetTable>, StoreError>;
    /// Registers a new open import.
    fn create_import(
        &self,
        id: &str,
        mode: ImportMode,
        label: Option<&str>,
        target: Option<&ImportTarget>,
    ) -> Result<(), StoreError>;
    /// Every import the database knows, oldest first.
    fn imports(&self) -> Result<Vec<ImportRecord>, StoreError>;
    /// The newest imports `query` asks for, oldest first; `UnknownImport`
    /// when its `before` names no import.
    fn imports_page(&self, query: ImportsQuery<'_>) -> Result<ImportsPage, StoreError>;
    /// One import.
    fn import(&self, id: &str) -> Result<ImportRecord, StoreError>;
    /// Writes frames' tables and documents into the import's hidden tables:
    /// the tables they declare a batch per transaction (those a failed try
    /// made are kept), then the documents in one transaction, which records
    /// the last frame; frames the import already has are skipped.
    fn write_frames(&self, import: &str, frames: &[FrameWrite<'_>]) -> Result<(), StoreError>;
    /// Writes one frame's tables and documents into the import's hidden tables.
    fn write_frame(&self, import: &str, frame: &FrameWrite<'_>) -> Result<(), StoreError> {
        self.write_frames(import, std::slice::from_ref(frame))
    }
    /// Activates the import's tables in one transaction, or refuses it (and
    /// drops its hidden tables, leaving the database as it was).
    fn finish_import(&self, import: &str) -> Result<Vec<ActivatedTable>, StoreError> {
        self.finish_import_locating(import, &|_, _, _| None)
    }
    /// [`finish_import`](Self::finish_import), a refusal about one document
    /// (`DocumentExists`) naming its line as `lines` tells it.
    fn finish_import_locating(
        &self,
        import: &str,
        lines: &DocumentLines<'_>,
    ) -> Result<Vec<ActivatedTable>, StoreError>;
    /// Drops the import's hidden tables; the database is as it was before it.
    /// `reason`, when the server cancelled it, is the status's `error`.
    fn cancel_import(&self, import: &str, reason: Option<&str>) -> Result<(), StoreError>;
    /// Fails an open import with `error`, which its finish would meet (a
    /// table another import changed since it declared it): its hidden
    /// tables are dropped, and `error` is the status's `error`, as when a
    /// finish is refused.
    fn fail_import(&self, import: &str, error: &ImportError) -> Result<(), StoreError>;
    /// What each of these tables (component, name) is now, as a declaration
    /// records it ([`TableDeclaration::observed`]).
    fn observe_tables(&self, tables: &[(&str, &str)]) -> Result<Vec<Observed>, StoreError>;
    /// A table open import `import` declared that another import changed
    /// since (finishing it would be refused with this error), if any.
    fn changed_table(&self, import: &str) -> Result<Option<ImportError>, StoreError>;
    /// Records that the data folder with id `folder` serves this database,
    /// unless another one does: then that folder's id, and nothing changes.
    fn claim_data_folder(&self, folder: &str) -> Result<Option<String>, StoreError>;
    /// The id of the data folder that serves this database, if one does
    /// ([`Store::claim_data_folder`]); nothing changes.
    fn data_folder(&self) -> Result<Option<String>, StoreError>;
    /// Tables the database holds that nothing sees: the hidden tables of
    /// every open import, and those an ended import, or a finish's retired
    /// tables, left to drop (0 when no import is running and every drop
    /// after an end went through).
    fn hidden_tables(&self) -> Result<u64, StoreError>;
    /// Drops the tables imports that ended left behind (their hidden
    /// tables, and the tables a finish replaced or deleted), and returns
    /// how many. An import's end drops them after the commit that ends it,
    /// in batches (nothing sees them), so a crash or a failure may leave
    /// some; a server drops them as it starts.
    fn drop_ended_tables(&self) -> Result<u64, StoreError>;
    /// The documents of an active table, by internal id (`None` when no such table).
    fn documents(
        &self,
        component: &str,
        table: &str,
    ) -> Result<Option<Vec<StoredDocument>>, StoreError>;
}

/// Whether a `--database` value names PostgreSQL (else an SQLite file).
pub fn is_postgres(database: &str) -> bool {
    database.starts_with("postgres://") || database.starts_with("postgresql://")
}

/// How long [`lock_for_serving`] asks again for a PostgreSQL lock held by
/// another session before it refuses.
const LOCK_GRACE: std::time::Duration = std::time::Duration::from_secs(3);

/// A database held by one server ([`lock_for_serving`]) until dropped.
pub enum ServingLock {
    /// SQLite: an exclusive lock on the database file.
    Sqlite(DatabaseLock),
    /// PostgreSQL: a session advisory lock.
    Postgres(Box<postgres::ServingLock>),
}

impl ServingLock {
    /// Takes the lock again if it was lost: a PostgreSQL session ends with
    /// its connection (PostgreSQL restarted, say), and the lock with it.
    /// `Ok(true)` when it was taken again; `InUse` when another server took
    /// it meanwhile. An SQLite file's lock is never lost.
    pub fn keep(&mut self) -> Result<bool, StoreError> {
        match self {
            ServingLock::Sqlite(_) => Ok(false),
            ServingLock::Postgres(lock) => lock.keep(),
        }
    }

    /// Whether taking the lock made the database (an SQLite file that was
    /// not there): a refused start removes it again.
    pub fn made_database(&self) -> bool {
        match self {
            ServingLock::Sqlite(lock) => lock.made_database(),
            ServingLock::Postgres(_) => false,
        }
    }

    /// Lets go of the database, removing first what taking it made on disk
    /// (an SQLite file's lock file, the file itself if it was made), for a
    /// start refused once it held the database.
    pub fn remove_made(self) {
        match self {
            ServingLock::Sqlite(lock) => lock.remove_made(),
            ServingLock::Postgres(_) => {}
        }
    }
}

/// Takes the database a `--database` value names for one server, for as
/// long as the lock is held (the system releases it when the process ends,
/// however it ends): a second server on it (from another data folder, a
/// copy of this one, or another machine) would reopen the same imports,
/// and expire and sweep what the first one is using. `InUse`, naming what
/// is held, when another server holds it. An SQLite database is held by an
/// exclusive `flock` on its file, which every name of the file meets
/// (`<file>.lock` beside it off Linux and on network file systems, where
/// the two kinds of lock may meet); a PostgreSQL database by a session
/// advisory lock on a connection of its own, per schema.
///
/// A PostgreSQL lock found held is asked for again for up to 3 s
/// (`LOCK_GRACE`): a server that has just ended (a crash, then an
/// immediate restart) holds it until PostgreSQL has seen its connection
/// close, which takes a moment. (An SQLite lock goes with its process.)
pub fn lock_for_serving(database: &str) -> Result<ServingLock, StoreError> {
    if is_postgres(database) {
        let started = std::time::Instant::now();
        loop {
            match postgres::lock_for_serving(database) {
                Err(StoreError::InUse(_)) if started.elapsed() < LOCK_GRACE => {
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                taken => return taken.map(|lock| ServingLock::Postgres(Box::new(lock))),
            }
        }
    }
    sqlite::lock_for_serving(std::path::Path::new(database)).map(ServingLock::Sqlite)
}

/// Opens the store a `--database` value names: `postgres://` or
/// `postgresql://` URLs open PostgreSQL, anything else is an SQLite file path.
pub fn open(database: &str) -> Result<Box<dyn Store>, StoreError> {
    if is_postgres(database) {
        Ok(Box::new(PostgresStore::connect(database)?))
    } else {
        Ok(Box::new(SqliteStore::open(database)?))
    }
}
