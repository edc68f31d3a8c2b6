//! The content-addressed store of imported storage files: each file's bytes
//! live once under `<data dir>/files/<first two hex digits>/<SHA-256 hex>`,
//! whatever `_storage` rows point at them.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::hex;

/// The file store under one folder.
#[derive(Debug, Clone)]
pub struct FileStore {
    root: PathBuf,
}

impl FileStore {
    /// A store rooted at `root` (created when missing).
    pub fn open(root: impl Into<PathBuf>) -> io::Result<Self> {
        let root = root.into();
        if !root.is_dir() {
            fs::create_dir_all(&root)?;
            if let Some(parent) = root.parent() {
                super::sync_folder(parent)?;
            }
        }
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

    /// Every file kept: its SHA-256 and size. Anything else in the folder
    /// (a name that is not a digest) is left out.
    pub fn list(&self) -> io::Result<Vec<([u8; 32], u64)>> {
        let mut kept = Vec::new();
        for folder in fs::read_dir(&self.root)? {
            let folder = folder?;
            if !folder.file_type()?.is_dir() {
                continue;
            }
            for file in fs::read_dir(folder.path())? {
                let file = file?;
                let digest = file.file_name().to_str().and_then(parse_hex);
                if let (Some(digest), true) = (digest, file.file_type()?.is_file()) {
                    kept.push((digest, file.metadata()?.len()));
                }
            }
        }
        Ok(kept)
    }

    /// Removes the file with this SHA-256, and its two-digit folder with
    /// its last file. Only with no import open, so that no file is being
    /// moved into that folder meanwhile.
    pub fn remove(&self, sha256: &[u8; 32]) -> io::Result<()> {
        let path = self.path(sha256);
        fs::remove_file(&path)?;
        if let Some(folder) = path.parent() {
            // Refused while other files are in it, which is as it should be.
            let _ = fs::remove_dir(folder);
        }
        Ok(())
    }

    /// Notes that some files may have lost their last reference (an import
    /// that received files is ending without finishing, or one is replacing
    /// `_storage` rows): the next
    /// [`sweep_due`](Self::sweep_due) says so, after a restart too.
    pub fn mark_sweep_due(&self) -> io::Result<()> {
        File::create(self.root.join(SWEEP_DUE))?.sync_all()?;
        super::sync_folder(&self.root)
    }

    /// True when a sweep was marked due; the mark stays until
    /// [`sweep_done`](Self::sweep_done).
    pub fn sweep_due(&self) -> bool {
        self.root.join(SWEEP_DUE).exists()
    }

    /// Clears the mark of [`mark_sweep_due`](Self::mark_sweep_due).
    pub fn sweep_done(&self) -> io::Result<()> {
        match fs::remove_file(self.root.join(SWEEP_DUE)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

/// The file whose presence says a sweep of unreferenced files is due.
const SWEEP_DUE: &str = "sweep-due";

/// The 32 bytes 64 lowercase hex digits spell, as [`hex`] writes them.
fn parse_hex(text: &str) -> Option<[u8; 32]> {
    let digits = text.as_bytes();
    if digits.len() != 64 {
        return None;
    }
    let value = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        *byte = value(pair[0])? << 4 | value(pair[1])?;
    }
    Some(out)
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
        let folder = target.parent().unwrap_or(&store.root);
        if !folder.is_dir() {
            fs::create_dir_all(folder)?;
            super::sync_folder(&store.root)?;
        }
        fs::rename(&self.path, &target)?;
        // The move is durable once its folder is: an import's `_storage`
        // row must not outlive its file after a power loss.
        super::sync_folder(folder)
    }
}
