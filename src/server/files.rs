//! The content-addressed store of imported storage files: each file's bytes
//! live once under `<data dir>/files/<first two hex digits>/<SHA-256 hex>`,
//! whatever `_storage` rows point at them.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Lowercase hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The file store under one folder.
#[derive(Debug, Clone)]
pub struct FileStore {
    root: PathBuf,
}

impl FileStore {
    /// A store rooted at `root` (created when missing).
    pub fn open(root: impl Into<PathBuf>) -> io::Result<Self> {
        let root = root.into();
        fs::create_dir_all(&root)?;
        Ok(FileStore { root })
    }

    /// Where the file with this SHA-256 is (or would be) kept.
    pub fn path(&self, sha256: &[u8; 32]) -> PathBuf {
        let hex = hex(sha256);
        self.root.join(&hex[..2]).join(hex)
    }

    /// True when a file with this SHA-256 is kept.
    pub fn contains(&self, sha256: &[u8; 32]) -> bool {
        self.path(sha256).is_file()
    }
}

/// A storage file being received, written next to the import's log. It is
/// open only while it is written to, so imports left open hold no file
/// descriptor.
pub struct PartFile {
    path: PathBuf,
    sha: Sha256,
}

impl PartFile {
    /// Starts (or restarts) a file at `path`.
    pub fn create(path: &Path) -> io::Result<Self> {
        File::create(path)?;
        Ok(PartFile {
            path: path.to_owned(),
            sha: Sha256::new(),
        })
    }

    /// Appends bytes.
    pub fn write(&mut self, data: &[u8]) -> io::Result<()> {
        self.sha.update(data);
        OpenOptions::new()
            .append(true)
            .open(&self.path)?
            .write_all(data)
    }

    /// Completes the file: checks its digest, makes it durable and moves it
    /// into `store` (dropping it when the store has those bytes already).
    pub fn finish(self, store: &FileStore, sha256: &[u8; 32]) -> io::Result<()> {
        let actual: [u8; 32] = self.sha.finalize().into();
        if actual != *sha256 {
            let _ = fs::remove_file(&self.path);
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "storage file SHA-256 does not match its data",
            ));
        }
        let target = store.path(sha256);
        if target.is_file() {
            return fs::remove_file(&self.path);
        }
        File::open(&self.path)?.sync_all()?;
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::rename(&self.path, &target)
    }
}
