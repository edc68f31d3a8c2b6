//! The import server (native only): receives the migration-item stream over
//! HTTP, re-checks every frame with the core, and imports the snapshot into
//! SQLite or PostgreSQL with Convex's import modes.
//!
//! * [`store`]: the database (hidden tables, activation in one transaction).
//! * [`ingest`]: re-validation of each decoded frame.
//! * [`log`]: the per-import staging log, fsynced before an acknowledgement.
//! * [`imports`]: the running imports (create, append, finish, cancel, reopen).
//! * [`files`]: the content-addressed stored files.
//! * `http`: the HTTP API of `docs/PROTOCOL.md`.
//!
//! This module serves them ([`serve`], [`Server`]): the data folder and its
//! token, the locks on the folder and the database, the connection loop,
//! the expiry of idle imports and the retried sweeps of stored files.

/// Writes a line to standard error, as `eprintln!` does, but never panics:
/// a server whose standard error is gone (a closed pipe, a logger that
/// ended) loses the line and goes on serving.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}

pub mod files;
mod http;
pub mod imports;
pub mod ingest;
pub mod log;
mod made;
pub mod store;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use self::imports::{Imports, ImportsError, Limits};
use self::made::{LockFile, Made};
use self::store::StoreError;

/// Environment variable holding the admin token.
pub const TOKEN_ENV: &str = "SNAPPACK_TOKEN";

/// `snappack serve`'s settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// `postgres://...` for PostgreSQL; otherwise an SQLite file path
    /// (`None`: `snappack.db` in the data folder).
    pub database: Option<String>,
    /// Staging logs, stored files and the token file.
    pub data_dir: PathBuf,
    /// Folder served at `/` (the web page), if any.
    pub www: Option<PathBuf>,
    /// Origins allowed to call the API from a browser (`*` for any).
    pub allow_origins: Vec<String>,
    /// The admin token; `None`: the one stored in the data folder, or a new one.
    pub token: Option<String>,
    /// The largest frame (uncompressed payload) a stream may use.
    pub max_frame_size: usize,
    /// The largest request body.
    pub max_request_bytes: usize,
    /// Open imports that receive nothing for longer than this are cancelled
    /// (checked at start and hourly); `None`: never.
    pub expire_after: Option<Duration>,
    /// How long a client has to send a request's headers, and how long a
    /// request body may go without a byte.
    pub header_timeout: Duration,
    /// Connections served at once; more wait in the listen queue until one
    /// closes, so clients cannot use up the server's file descriptors.
    pub max_connections: usize,
    /// How long [`serve`], once told to stop (Ctrl-C, SIGTERM), waits for
    /// the requests under way and the store writes they started: then the
    /// process exits anyway, with status 1. The database rolls back a
    /// write cut off, and the next start writes its frames again from the
    /// staging log.
    pub stop_timeout: Duration,
}

/// How long an open import may receive nothing before it is cancelled, by default.
pub const DEFAULT_EXPIRE_AFTER: Duration = Duration::from_secs(7 * 24 * 3600);

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            database: None,
            data_dir: PathBuf::from("data"),
            www: Some(PathBuf::from("www")),
            allow_origins: Vec::new(),
            token: None,
            max_frame_size: Limits::default().max_frame_size,
            max_request_bytes: 64 << 20,
            expire_after: Some(DEFAULT_EXPIRE_AFTER),
            header_timeout: Duration::from_secs(30),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            stop_timeout: DEFAULT_STOP_TIMEOUT,
        }
    }
}

/// How long `snappack serve` waits, once told to stop, for what is under way
/// ([`ServeConfig::stop_timeout`]), by default: as long as `docker stop` waits
/// before it kills.
pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections served at once, by default: well inside the 1,024 file
/// descriptors a process gets by default, with room for the database, the
/// staging logs and stored files.
pub const DEFAULT_MAX_CONNECTIONS: usize = 512;

/// Why the server cannot start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The database cannot be opened.
    #[error("database: {0}")]
    Store(#[from] StoreError),
    /// Unfinished imports cannot be reopened.
    #[error("reopening imports: {0}")]
    Imports(#[from] ImportsError),
    /// The address, the data folder or the token file.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The database cannot be opened.
    #[error("cannot open the database {database}: {message}")]
    OpenDatabase {
        /// The database, as the data folder names it (no password).
        database: String,
        /// Why.
        message: String,
    },
    /// The address cannot be listened on (in use, say).
    #[error("cannot listen on {addr}: {error}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        error: std::io::Error,
    },
    /// The data folder cannot be made or used.
    #[error("cannot use the data folder {dir}: {message}")]
    DataDir {
        /// The data folder.
        dir: String,
        /// Why.
        message: String,
    },
    /// Another server runs on the data folder.
    #[error(
        "the data folder {dir} is in use by another snappack serve: two servers on one folder \
         would both append to its imports' staging logs; stop the other one, or give this one \
         a --data-dir of its own"
    )]
    DataDirInUse {
        /// The data folder.
        dir: String,
    },
    /// Another server runs on the database.
    #[error(
        "the database {database} is in use by another snappack serve: {what}; two servers on \
         one database would both reopen its open imports, and expire and sweep what the other \
         one is using; stop the other one, or give this one a --database of its own"
    )]
    DatabaseInUse {
        /// The database, as the data folder names it (no password).
        database: String,
        /// What is held.
        what: String,
    },
    /// The data folder holds another database's stored files and staging logs.
    #[error(
        "the data folder {dir} belongs to database {owner}, not {database}: its stored files and \
         staging logs are that database's, and files a database does not refer to are deleted, \
         so give each database a --data-dir of its own (if it is the same database under \
         another name, write that name into {dir}/database)"
    )]
    DataDirTaken {
        /// The data folder.
        dir: String,
        /// The database named in it.
        owner: String,
        /// The database given now.
        database: String,
    },
    /// The data folder's `database` file is empty: the database it belongs
    /// to is not known.
    #[error(
        "the data folder {dir} names no database: its file {dir}/database, which names the \
         database whose stored files and staging logs the folder holds, is empty; if the folder \
         is {database}'s, write {database} into that file, else give this database a --data-dir \
         of its own"
    )]
    DataDirUnnamed {
        /// The data folder.
        dir: String,
        /// The database given now.
        database: String,
    },
    /// The database is served from another data folder, which has its open
    /// imports' staging logs and its stored files.
    #[error(
        "the database {database} is served from another data folder (the one whose {FOLDER_ID_FILE} \
         file says {owner}; {}): that folder has the staging logs of its open \
         imports, which a start from another one would cancel, and its stored files; start the \
         server with that --data-dir (if that folder is lost for good, write {owner} into \
         {dir}/{FOLDER_ID_FILE}, making the folder if it is missing, to serve the database from \
         this one: its open imports are then cancelled)",
        match .folder {
            Some(folder) => format!("{dir}'s says {folder}"),
            None => format!("{dir} has none yet"),
        }
    )]
    DatabaseTaken {
        /// The database, as the data folder names it (no password).
        database: String,
        /// The data folder given now.
        dir: String,
        /// Its id (`None` for a folder never served from, which is
        /// refused before it gets one).
        folder: Option<String>,
        /// The id of the data folder the database is served from.
        owner: String,
    },
    /// The server lost its database's lock (with its connection) and
    /// another server took it before this one could take it again: it
    /// stopped serving.
    #[error(
        "lost the database {database} to another snappack serve: its lock went with its \
         connection (PostgreSQL restarted, or the session was ended), and {what}; this server \
         stopped, refusing the import requests it had, so that two servers do not import into \
         one database: its open imports go on on the server that holds the database now, if it \
         has their staging logs, or here once that one is stopped and this one is started again"
    )]
    DatabaseLost {
        /// The database, as the data folder names it (no password).
        database: String,
        /// What is held, and by whom.
        what: String,
    },
}

/// The file in the data folder that names the database it belongs to.
const DATABASE_FILE: &str = "database";

/// The file in the data folder that holds its id, which the database records
/// at the first start (the folder's path may change, as when it is moved).
const FOLDER_ID_FILE: &str = "folder-id";

/// The data folder's id, as its [`FOLDER_ID_FILE`] says (`None` before its
/// first start).
fn recorded_folder_id(data_dir: &Path) -> std::io::Result<Option<String>> {
    let path = data_dir.join(FOLDER_ID_FILE);
    match std::fs::read_to_string(&path) {
        Ok(id) if !id.trim().is_empty() => Ok(Some(id.trim().to_owned())),
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(at(&path, e)),
        _ => Ok(None),
    }
}

/// A new id for the data folder, at its first start. It is on disk (with
/// the folder itself) before the database records it: lost in a crash
/// after that, the next start would make another, which the database
/// refuses.
fn new_folder_id(data_dir: &Path) -> std::io::Result<String> {
    let path = data_dir.join(FOLDER_ID_FILE);
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| std::io::Error::other(e.to_string()))?;
    let id = crate::hex(&bytes);
    write_durably(&path, &format!("{id}\n"))?;
    // The folder may be new too: its own entry.
    let absolute = std::fs::canonicalize(data_dir).map_err(|e| at(data_dir, e))?;
    if let Some(parent) = absolute.parent() {
        sync_folder(parent).map_err(|e| at(parent, e))?;
    }
    Ok(id)
}

/// Writes `contents` into the file `path` so that a crash leaves either all
/// of it or what was there before: into a file beside it, made durable, then
/// moved into place, and the move made durable by syncing the folder.
fn write_durably(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let folder = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let mut name = std::ffi::OsString::from(".");
    name.push(path.file_name().unwrap_or_default());
    name.push(".new");
    let temporary = folder.join(name);
    let written = (|| {
        let mut file = std::fs::File::create(&temporary)?;
        file.write_all(contents.as_bytes())?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&temporary, path)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&temporary);
        return Err(at(path, e));
    }
    sync_folder(folder).map_err(|e| at(folder, e))
}

/// Makes the entries of `folder` (files made, moved or removed in it) durable.
pub(crate) fn sync_folder(folder: &Path) -> std::io::Result<()> {
    // The parent of a bare name is the empty path: the working folder.
    #[cfg(unix)]
    std::fs::File::open(match folder.as_os_str().is_empty() {
        true => Path::new("."),
        false => folder,
    })?
    .sync_all()?;
    // Elsewhere a folder cannot be opened so; NTFS journals its entries.
    #[cfg(not(unix))]
    let _ = folder;
    Ok(())
}

/// A data folder's tie to one database: stored files and staging logs
/// there are that database's, and the sweep after an unfinished or a
/// replacing import deletes every file the database does not refer to, which would be
/// another database's files. Checked before the database is opened (another
/// database is refused untouched), written at the first start once it opened.
struct DataDirClaim {
    /// The file in the data folder that names the database.
    path: PathBuf,
    /// How it names the database given now.
    identity: String,
    /// Whether the file already names it.
    recorded: bool,
}

impl DataDirClaim {
    /// The claim of `data_dir` for `database`; refused when the folder
    /// names another database.
    fn check(data_dir: &Path, database: &str) -> Result<Self, ServeError> {
        std::fs::create_dir_all(data_dir).map_err(|e| at(data_dir, e))?;
        let identity = database_identity(data_dir, database)?;
        if !store::is_postgres(database) {
            if let Some(why) = own_entry(&identity) {
                return Err(ServeError::OpenDatabase {
                    database: database.to_owned(),
                    message: format!(
                        "{why}: give another file, such as {} (the default)",
                        data_dir.join("snappack.db").display()
                    ),
                });
            }
        }
        let path = data_dir.join(DATABASE_FILE);
        let recorded = match std::fs::read_to_string(&path) {
            Ok(owner) if owner.trim() == identity => true,
            // Files the database does not refer to are deleted, so a folder
            // is never taken for a database it may not be.
            Ok(owner) if owner.trim().is_empty() => {
                return Err(ServeError::DataDirUnnamed {
                    dir: data_dir.display().to_string(),
                    database: identity,
                })
            }
            Ok(owner) => {
                return Err(ServeError::DataDirTaken {
                    dir: data_dir.display().to_string(),
                    owner: owner.trim().to_owned(),
                    database: identity,
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
            Err(e) => return Err(at(&path, e).into()),
        };
        Ok(DataDirClaim {
            path,
            identity,
            recorded,
        })
    }

    /// The refusal of a start that could not take or open the database.
    fn not_opened(&self, e: StoreError) -> ServeError {
        match e {
            StoreError::InUse(what) => ServeError::DatabaseInUse {
                database: self.identity.clone(),
                what,
            },
            StoreError::Database(message) | StoreError::Refused(message) => {
                ServeError::OpenDatabase {
                    database: self.identity.clone(),
                    message,
                }
            }
            other => ServeError::OpenDatabase {
                database: self.identity.clone(),
                message: other.to_string(),
            },
        }
    }

    /// Names the database in the data folder, at its first start (durably:
    /// a file left empty by a crash would name no database).
    fn record(&self) -> std::io::Result<()> {
        if self.recorded {
            return Ok(());
        }
        write_durably(&self.path, &format!("{}\n", self.identity))
    }
}

/// The entries the server keeps in the data folder itself (folders, and
/// files it writes whole, by a temporary `.<name>.new` moved into place).
const OWN_ENTRIES: [&str; 6] = [
    "lock",
    DATABASE_FILE,
    FOLDER_ID_FILE,
    "token",
    "imports",
    "files",
];

/// Why an SQLite database the data folder names `identity`
/// ([`database_identity`]) cannot be that folder's: when it is the folder
/// itself or one of its [`OWN_ENTRIES`] (or under one), which the server
/// would write over, lock or fill as its own (the database file replaced
/// by the token while the server has it open, say: every import lost).
fn own_entry(identity: &str) -> Option<String> {
    // A database outside the folder is named by its absolute path.
    let inside = Path::new(identity);
    if !inside.is_relative() {
        return None;
    }
    let first = match inside.components().next() {
        None => return Some("it is the data folder, not a file in it".to_owned()),
        Some(first) => first.as_os_str().to_string_lossy(),
    };
    let name = first
        .strip_prefix('.')
        .and_then(|n| n.strip_suffix(".new"))
        .unwrap_or(&first);
    OWN_ENTRIES.contains(&name).then(|| {
        format!("it is the data folder's own `{first}`, which the server keeps for itself")
    })
}

/// `error`, saying which path it is about.
pub(crate) fn at(path: &Path, error: std::io::Error) -> std::io::Error {
    std::io::Error::new(error.kind(), format!("{}: {error}", path.display()))
}

/// How the data folder names `database`: a PostgreSQL URL without its
/// password, or an SQLite file's path, relative to the data folder when the
/// file is inside it (so that the folder can move with it).
fn database_identity(data_dir: &Path, database: &str) -> std::io::Result<String> {
    if store::is_postgres(database) {
        let config: postgres::Config = database
            .parse()
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        let hosts: Vec<String> = config
            .get_hosts()
            .iter()
            .map(|host| match host {
                // Host names are not case sensitive.
                postgres::config::Host::Tcp(name) => name.to_lowercase(),
                postgres::config::Host::Unix(path) => path.display().to_string(),
            })
            .collect();
        let ports: Vec<String> = config.get_ports().iter().map(u16::to_string).collect();
        // The options may choose a schema (`-c search_path=...`).
        let options = config
            .get_options()
            .map(|o| format!("?options={o}"))
            .unwrap_or_default();
        return Ok(format!(
            "postgresql://{}@{}:{}/{}{options}",
            config.get_user().unwrap_or_default(),
            hosts.join(","),
            ports.join(","),
            config.get_dbname().unwrap_or_default()
        ));
    }
    let file = Path::new(database);
    let name = file.file_name().ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("database {database} names no file"),
        )
    })?;
    let folder = match file.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    // The file itself once it exists (it may be a link), else its folder's.
    let path = match std::fs::canonicalize(file) {
        Ok(path) => path,
        Err(_) => std::fs::canonicalize(folder)
            .map_err(|e| {
                let why = format!(
                    "cannot open the database {database}: its folder {} cannot be opened: {e}",
                    folder.display()
                );
                std::io::Error::new(e.kind(), why)
            })?
            .join(name),
    };
    let data_dir = std::fs::canonicalize(data_dir).map_err(|e| at(data_dir, e))?;
    let path = path.strip_prefix(&data_dir).unwrap_or(&path);
    Ok(path.display().to_string())
}

/// The token: given, or stored in the data folder, or new (then stored).
/// Returns it and whether it is new. A token a client could not send
/// (outside printable ASCII, or with spaces at its ends) is refused: no
/// request would ever match it.
pub fn resolve_token(given: Option<&str>, data_dir: &Path) -> std::io::Result<(String, bool)> {
    if let Some(token) = known_token(given, data_dir)? {
        return Ok((token, false));
    }
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes).map_err(|e| std::io::Error::other(e.to_string()))?;
    let token = crate::hex(&bytes);
    std::fs::create_dir_all(data_dir).map_err(|e| at(data_dir, e))?;
    let path = data_dir.join("token");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
        .open(&path)
        .and_then(|mut file| std::io::Write::write_all(&mut file, token.as_bytes()))
        .map_err(|e| at(&path, e))?;
    Ok((token, true))
}

/// The token given, or stored in the data folder, if either is, checked as
/// [`resolve_token`] checks it; writes nothing.
fn known_token(given: Option<&str>, data_dir: &Path) -> std::io::Result<Option<String>> {
    let sendable = |token: &str, from: &str| {
        let printable = token
            .bytes()
            .all(|b| (0x21..0x7F).contains(&b) || b == b' ');
        if printable && token.trim() == token {
            Ok(token.to_owned())
        } else {
            Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("the token {from} must be printable ASCII without spaces at its ends: no client could send it"),
            ))
        }
    };
    if let Some(token) = given.filter(|t| !t.is_empty()) {
        return Ok(Some(sendable(token, "given")?));
    }
    let path = data_dir.join("token");
    match std::fs::read_to_string(&path) {
        Ok(stored) if !stored.trim().is_empty() => {
            let from = format!("in {}", path.display());
            Ok(Some(sendable(stored.trim(), &from)?))
        }
        Ok(_) => Ok(None),
        // Missing: a new one is made. Anything else (a folder, a file that
        // cannot be read) is said now, naming it, before anything is opened.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(at(&path, e)),
    }
}

/// Holds the data folder for one server (an exclusive lock on its `lock`
/// file, which the system releases when the process ends, however it ends):
/// a second server would reopen the same imports and append to their
/// staging logs too, and sweep or expire what the first one is using. What
/// it makes (the folder, folders above it, the lock file) is listed in
/// `made`, and removed again when it is refused here.
fn lock_data_dir(data_dir: &Path, made: &mut Made) -> Result<std::fs::File, ServeError> {
    let locked = lock_data_dir_making(data_dir, made);
    if locked.is_err() {
        made.remove();
    }
    locked
}

fn lock_data_dir_making(data_dir: &Path, made: &mut Made) -> Result<std::fs::File, ServeError> {
    made.create_dir_all(data_dir)
        .map_err(|e| ServeError::DataDir {
            dir: data_dir.display().to_string(),
            message: match data_dir.exists() && !data_dir.is_dir() {
                true => "it is a file, not a folder".to_owned(),
                false => format!("it cannot be created: {e}"),
            },
        })?;
    let path = data_dir.join("lock");
    match made::lock_file(&path).map_err(|e| at(&path, e))? {
        LockFile::Locked { file, made: new } => {
            if new {
                made.file(path);
            }
            // Nothing else writes into it now: a folder made by this start
            // holds only what it makes.
            made.hold(data_dir);
            Ok(file)
        }
        LockFile::Held(_) => Err(ServeError::DataDirInUse {
            dir: data_dir.display().to_string(),
        }),
    }
}

/// Refuses a `--database` that names no database snappack can serve: a
/// URL of another scheme than PostgreSQL's, or what SQLite reads as no
/// file: its in-memory database (every import lost when the server stops)
/// or a URI (whose file, options and name the data folder could not tell
/// apart).
fn check_database_name(database: &str) -> Result<(), ServeError> {
    if database.contains("://") && !store::is_postgres(database) {
        return Err(ServeError::OpenDatabase {
            database: database.split_once("://").map_or("", |(s, _)| s).to_owned() + "://…",
            message: "only postgres:// or postgresql:// URLs name a database server; \
                      anything else is an SQLite file path"
                .to_owned(),
        });
    }
    if store::is_postgres(database) {
        return Ok(());
    }
    let why = match database {
        ":memory:" => {
            "it names SQLite's in-memory database, which loses every import when the server stops"
        }
        _ if database.starts_with("file:") => "it is an SQLite URI, which snappack does not take",
        _ => return Ok(()),
    };
    Err(ServeError::OpenDatabase {
        database: database.to_owned(),
        message: format!(
            "{why}: give the path of the database file (./{database} for a file of that name)"
        ),
    })
}

/// The blocking part of [`Server::open`]: takes the database for serving,
/// opens it for `data_dir` ([`open_store`]) and reopens the unfinished
/// imports. Refused, it removes what taking and opening the database made.
fn open_imports(
    data_dir: &Path,
    database: &str,
    claim: &DataDirClaim,
    limits: Limits,
) -> Result<(Imports, store::ServingLock), ServeError> {
    // Before anything is read: another server may be changing it.
    let database_lock = store::lock_for_serving(database).map_err(|e| claim.not_opened(e))?;
    let mut made = Made::default();
    let new_database = database_lock.made_database();
    match open_store(data_dir, database, claim, new_database, limits, &mut made) {
        Ok(imports) => Ok((imports, database_lock)),
        // The store is closed: what was made can go.
        Err(e) => {
            made.remove();
            database_lock.remove_made();
            Err(e)
        }
    }
}

/// Opens `database` (`new_database` when taking it made the file) for
/// `data_dir`: refuses one that another data folder serves, records the
/// folder's id in it and the database's name in the folder, and reopens the
/// unfinished imports. What it makes on disk is listed in `made`.
fn open_store(
    data_dir: &Path,
    database: &str,
    claim: &DataDirClaim,
    new_database: bool,
    limits: Limits,
    made: &mut Made,
) -> Result<Imports, ServeError> {
    let store: Arc<dyn store::Store> = store::open(database)
        .map_err(|e| claim.not_opened(e))?
        .into();
    // Before any import is reopened: from another data folder, the
    // open imports' staging logs are missing, and they would be
    // cancelled (a server still running on that folder included).
    let taken = |folder, owner| ServeError::DatabaseTaken {
        database: claim.identity.clone(),
        dir: data_dir.display().to_string(),
        folder,
        owner,
    };
    let folder = match recorded_folder_id(data_dir)? {
        Some(folder) => folder,
        // The folder's first start: refused before it has an
        // id when the database is another folder's, so that a
        // refused start leaves the folder as it was.
        None => match store.data_folder()? {
            Some(owner) => return Err(taken(None, owner)),
            None => {
                let id = new_folder_id(data_dir)?;
                made.file(data_dir.join(FOLDER_ID_FILE));
                id
            }
        },
    };
    if let Some(owner) = store.claim_data_folder(&folder)? {
        return Err(taken(Some(folder), owner));
    }
    // The database records the id now: the folder keeps it,
    // and the name of the database, unless the database goes
    // too (one this start made).
    if !new_database {
        made.keep(&data_dir.join(FOLDER_ID_FILE));
    }
    if new_database && !claim.recorded {
        made.file(claim.path.clone());
    }
    claim.record()?;
    for folder in ["imports", "files"] {
        let path = data_dir.join(folder);
        if std::fs::symlink_metadata(&path).is_err() {
            made.create_dir_all(&path).map_err(|e| at(&path, e))?;
        }
    }
    Ok(Imports::open(store, data_dir, limits)?)
}

/// What [`Server::open`] opened for a server.
struct Opened {
    listener: tokio::net::TcpListener,
    imports: Imports,
    database_lock: store::ServingLock,
    /// The database, as the data folder names it (no password).
    database: String,
    token: String,
    new_token: bool,
}

/// A bound server, not yet serving.
pub struct Server {
    listener: tokio::net::TcpListener,
    app: axum::Router,
    imports: Arc<Imports>,
    expire_after: Option<Duration>,
    header_timeout: Duration,
    max_connections: usize,
    token: String,
    new_token: bool,
    /// The database's lock, held as long as the server (and taken again
    /// when lost with its connection).
    database_lock: Arc<std::sync::Mutex<store::ServingLock>>,
    /// The database, as the data folder names it (no password).
    database: String,
    /// The data folder's lock, held as long as the server (and let go after
    /// the rest, the database's lock included: fields drop in order).
    _data_dir_lock: std::fs::File,
}

impl Server {
    /// Takes the data folder, binds the address, opens the database and
    /// reopens unfinished imports.
    pub async fn bind(config: ServeConfig) -> Result<Server, ServeError> {
        // Checked before the data folder is made: a typo leaves nothing behind.
        if let Some(database) = config.database.as_deref() {
            check_database_name(database)?;
        }
        let data_dir = config.data_dir.clone();
        // What this start makes on disk, removed again if it is refused, so
        // that it leaves the disk as it found it.
        let mut made = Made::default();
        let data_dir_lock = lock_data_dir(&data_dir, &mut made)?;
        let opened = Self::open(&config, &data_dir).await;
        let opened = match opened {
            Ok(opened) => opened,
            Err(e) => {
                // While the folder's lock is held (let go on return).
                made.remove();
                return Err(e);
            }
        };
        let imports = Arc::new(opened.imports);
        let state = Arc::new(http::AppState {
            imports: imports.clone(),
            token: opened.token.clone(),
            allow_origins: config.allow_origins,
            www: config.www,
        });
        Ok(Server {
            _data_dir_lock: data_dir_lock,
            database_lock: Arc::new(std::sync::Mutex::new(opened.database_lock)),
            database: opened.database,
            listener: opened.listener,
            app: http::router(state, config.max_request_bytes, config.header_timeout),
            imports,
            expire_after: config.expire_after,
            header_timeout: config.header_timeout,
            max_connections: config.max_connections,
            token: opened.token,
            new_token: opened.new_token,
        })
    }

    /// What [`Server::bind`] does once it holds the data folder: checks the
    /// folder's claim, binds the address, takes and opens the database and
    /// reopens unfinished imports. Refused once it holds the database, it
    /// removes what taking and opening it made (the caller removes the rest).
    async fn open(config: &ServeConfig, data_dir: &Path) -> Result<Opened, ServeError> {
        let database = config
            .database
            .clone()
            .unwrap_or_else(|| data_dir.join("snappack.db").to_string_lossy().into_owned());
        // Before a token is made: a start refused here prints none.
        let claim = DataDirClaim::check(data_dir, &database)?;
        // Before any import is reopened: a server that cannot serve leaves them be.
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|error| ServeError::Listen {
                addr: config.listen,
                error,
            })?;
        // A token given or stored is checked now; a new one is made only once
        // the start can no longer be refused, since it is printed only then.
        let known = known_token(config.token.as_deref(), data_dir)?;
        let limits = Limits {
            max_frame_size: config.max_frame_size,
        };
        let folder = data_dir.to_owned();
        let identity = claim.identity.clone();
        let (imports, database_lock) =
            tokio::task::spawn_blocking(move || open_imports(&folder, &database, &claim, limits))
                .await
                .map_err(|e| std::io::Error::other(e.to_string()))??;
        let (token, new_token) = match known {
            Some(token) => (token, false),
            None => match resolve_token(None, data_dir) {
                Ok(made) => made,
                // Refused after all: what opening the database made goes.
                Err(e) => {
                    drop(imports);
                    database_lock.remove_made();
                    return Err(e.into());
                }
            },
        };
        Ok(Opened {
            listener,
            imports,
            database_lock,
            database: identity,
            token,
            new_token,
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The admin token.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// True when the token was generated by this start (print it once).
    pub fn token_is_new(&self) -> bool {
        self.new_token
    }

    /// Serves until `shutdown` completes, or until the database is lost to
    /// another server (`DatabaseLost`: the import requests still in
    /// progress are refused, and those that come meanwhile too).
    pub async fn run(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let sweeper = self
            .expire_after
            .map(|idle| tokio::spawn(expire_idle_imports(self.imports.clone(), idle)));
        let files = tokio::spawn(retry_sweeps(self.imports.clone(), SWEEP_RETRY));
        let changed = tokio::spawn(release_changed_imports(self.imports.clone(), RELEASE_CHECK));
        let (lost_tx, lost_rx) = tokio::sync::oneshot::channel();
        let lock = tokio::spawn(keep_database_lock(
            self.database_lock.clone(),
            self.imports.clone(),
            LOCK_CHECK,
            lost_tx,
        ));
        let limits = ConnectionLimits {
            header_timeout: self.header_timeout,
            max_connections: self.max_connections,
        };
        let lost = Arc::new(std::sync::Mutex::new(None));
        let stop = {
            let lost = lost.clone();
            async move {
                tokio::select! {
                    () = shutdown => {}
                    taken = lost_rx => if let Ok(what) = taken {
                        *lost.lock().unwrap_or_else(|e| e.into_inner()) = Some(what);
                    },
                }
            }
        };
        serve_connections(self.listener, self.app, limits, stop).await;
        if let Some(sweeper) = sweeper {
            sweeper.abort();
        }
        files.abort();
        changed.abort();
        lock.abort();
        let lost = lost.lock().unwrap_or_else(|e| e.into_inner()).take();
        match lost {
            Some(what) => Err(ServeError::DatabaseLost {
                database: self.database,
                what,
            }),
            None => Ok(()),
        }
    }
}

/// How many connections, and how long their requests' headers may take.
struct ConnectionLimits {
    header_timeout: Duration,
    max_connections: usize,
}

/// Serves each connection with HTTP/1 until `shutdown`, then lets those
/// open finish. A client gets `header_timeout` for a request's headers: a
/// connection that never sends them (or only trickles) is closed rather
/// than held for good, so idle sockets cannot use up the server's. At most
/// `max_connections` are served at once: the next is accepted when one
/// closes.
async fn serve_connections(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    limits: ConnectionLimits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use hyper_util::service::TowerToHyperService;
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                // Out of descriptors, say: wait for some to close.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let service = TowerToHyperService::new(app.clone());
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_timeout)
            .serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            let _ = connection.await;
            drop(slot);
        });
    }
    graceful.shutdown().await;
}

/// Cancels imports idle for longer than `idle`, now and then hourly (or
/// sooner, for a shorter `idle`), and says which on stderr.
async fn expire_idle_imports(imports: Arc<Imports>, idle: Duration) {
    let every = idle.clamp(Duration::from_secs(1), Duration::from_secs(3600));
    let mut ticks = tokio::time::interval(every);
    loop {
        ticks.tick().await;
        let imports = imports.clone();
        let swept = tokio::task::spawn_blocking(move || imports.expire(idle)).await;
        match swept
            .map_err(|e| e.to_string())
            .and_then(|expired| expired.map_err(|e| e.to_string()))
        {
            Ok(expired) => {
                for id in expired {
                    say!(
                        "snappack: cancelled import {id}: nothing was received for more than {}",
                        imports::describe_duration(idle)
                    );
                }
            }
            Err(e) => say!("snappack: expiring idle imports failed: {e}"),
        }
    }
}

/// How often open imports that can no longer finish are looked for.
const RELEASE_CHECK: Duration = Duration::from_secs(2);

/// Fails, every `every`, the open imports that can no longer finish
/// (another import changed a table they declared) and that no request
/// holds: most are failed as soon as that is found, but one found by its
/// own store write, after its request was answered, waits for this.
async fn release_changed_imports(imports: Arc<Imports>, every: Duration) {
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let imports = imports.clone();
        let _ = tokio::task::spawn_blocking(move || imports.release_changed()).await;
    }
}

/// How often the database lock is checked (a round trip on its connection).
const LOCK_CHECK: Duration = Duration::from_secs(2);

/// Takes the database lock again whenever it was lost (a PostgreSQL
/// session ends with its connection: PostgreSQL restarted, say), and says
/// so. If another server took it meanwhile, this one no longer knows what
/// that one does to the database: the imports are halted (every request
/// that would change the database is refused, naming the holder) and what
/// is held is sent on `lost`, for the server to stop.
async fn keep_database_lock(
    lock: Arc<std::sync::Mutex<store::ServingLock>>,
    imports: Arc<Imports>,
    every: Duration,
    lost: tokio::sync::oneshot::Sender<String>,
) {
    let mut ticks = tokio::time::interval(every);
    // A check that took long (PostgreSQL not answering) is not made up for
    // by a burst of checks.
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut said = None;
    loop {
        ticks.tick().await;
        let lock = lock.clone();
        let kept = tokio::task::spawn_blocking(move || {
            lock.lock().unwrap_or_else(|e| e.into_inner()).keep()
        })
        .await;
        let told = match kept {
            Ok(Ok(false)) => continue,
            Ok(Ok(true)) => "the database lock, lost with its connection, is held again".to_owned(),
            Ok(Err(StoreError::InUse(what))) => {
                let what = format!("another snappack serve holds it now: {what}");
                imports.halt(&format!(
                    "this server lost its database to another snappack serve and is stopping: \
                     {what}; the import goes on there, if that server has its staging log, or \
                     here once that one is stopped and this one is started again"
                ));
                let _ = lost.send(what);
                return;
            }
            // PostgreSQL down: tried again at the next check, said once.
            Ok(Err(e)) => format!(
                "the database lock was lost with its connection and cannot be taken again yet: {e}"
            ),
            Err(e) => format!("the database lock cannot be checked: {e}"),
        };
        if said.as_ref() != Some(&told) {
            say!("snappack: {told}");
            said = Some(told);
        }
        if matches!(said.as_deref(), Some(text) if text.ends_with("is held again")) {
            said = None;
        }
    }
}

/// How often a sweep of the stored files that failed is tried again.
const SWEEP_RETRY: Duration = Duration::from_secs(3600);

/// Tries a sweep of the stored files every `every`, if one is due (one that
/// failed, at the start or when an import ended, is said then and kept due).
async fn retry_sweeps(imports: Arc<Imports>, every: Duration) {
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    loop {
        ticks.tick().await;
        let imports = imports.clone();
        let _ = tokio::task::spawn_blocking(move || imports.retry_sweep()).await;
    }
}

/// `snappack serve`: binds, prints where it listens (and a new token once),
/// and serves until Ctrl-C or SIGTERM (what `kill`, systemd and container
/// runtimes send), then lets the requests under way finish, for at most
/// [`ServeConfig::stop_timeout`]: then the process exits (status 1).
pub async fn serve(config: ServeConfig) -> Result<(), ServeError> {
    let data_dir = config.data_dir.clone();
    let stop_timeout = config.stop_timeout;
    let server = Server::bind(config).await?;
    say!("snappack: listening on http://{}", server.local_addr()?);
    if server.token_is_new() {
        say!(
            "snappack: new admin token (stored in {}): {}",
            data_dir.join("token").display(),
            server.token()
        );
    }
    server
        .run(async move {
            stop_signal().await;
            exit_unless_stopped_within(stop_timeout);
        })
        .await
}

/// Ends the process with status 1, saying so, unless it ends by itself
/// within `timeout`. Waiting for the requests under way to finish, and for
/// the store writes they started (which the imports' end and the runtime's
/// wait for), could otherwise take as long as the database makes them: a
/// lock held by another session, say. Cut off, a write is rolled back by
/// the database (PostgreSQL when the connection goes, SQLite from its
/// journal at the next open), and the next start writes the frames its
/// database lacks again from the staging log, where every acknowledged
/// frame is.
fn exit_unless_stopped_within(timeout: Duration) {
    let spawned = std::thread::Builder::new()
        .name("snappack-stop".into())
        .spawn(move || {
            std::thread::sleep(timeout);
            eprintln!(
                "snappack: still stopping after {} s (--stop-timeout): exiting without the \
                 requests and database writes under way; the database rolls back a write cut \
                 off, and the next start writes its frames again from the staging log",
                timeout.as_secs()
            );
            std::process::exit(1);
        });
    if spawned.is_err() {
        eprintln!("snappack: stopping, with no time limit (no thread could be made for one)");
    }
}

/// Ctrl-C, or SIGTERM on Unix.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A durable write puts the whole text in place, over what was there,
    /// and leaves nothing beside it; one that cannot be made names the file.
    #[test]
    fn a_durable_write_replaces_the_file_whole_and_leaves_nothing_beside_it() {
        let dir = std::env::temp_dir().join(format!("snappack-durable-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("folder-id");
        write_durably(&path, "first\n").unwrap();
        write_durably(&path, "second\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "second\n");
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(names, ["folder-id"]);
        let missing = dir.join("gone").join("database");
        let error = write_durably(&missing, "x").unwrap_err().to_string();
        assert!(error.starts_with(&missing.display().to_string()), "{error}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
