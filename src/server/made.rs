//! What a start of the server makes on disk, so that a refused start can
//! remove it again (a new data folder, the lock files, a new database
//! file), and the lock files themselves, which such a removal must not let
//! two servers share.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

/// The paths a start made, in the order it made them: removed again,
/// newest first, when the start is refused, so that it leaves the disk as
/// it found it. Nothing that was there before is ever listed.
#[derive(Debug, Default)]
pub(crate) struct Made(Vec<(PathBuf, Kind)>);

/// How a [`Made`] path is removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A file (a link is removed, not what it points to).
    File,
    /// A folder made on the way to another path: removed only if empty.
    Folder,
    /// A folder the start made and held alone (the data folder, under its
    /// lock): removed with everything in it, all of which the start made.
    Tree,
}

impl Made {
    /// `path`, a file this start made.
    pub(crate) fn file(&mut self, path: PathBuf) {
        self.0.push((path, Kind::File));
    }

    /// Makes the folder `path` and those missing above it, listing those it
    /// made as folders, removed only if empty (another start may be filling
    /// them meanwhile).
    pub(crate) fn create_dir_all(&mut self, path: &Path) -> std::io::Result<()> {
        // A path ending in `..` names a folder above the one made (`new/..`
        // is the folder `new` is made in, which was there): only those
        // ending in a name are folders this call can make.
        let missing: Vec<PathBuf> = path
            .ancestors()
            .filter(|p| !p.as_os_str().is_empty())
            .take_while(|p| std::fs::symlink_metadata(p).is_err())
            .filter(|p| p.file_name().is_some())
            .map(Path::to_path_buf)
            .collect();
        let made = std::fs::create_dir_all(path);
        // Listed even on failure: some of them may have been made.
        self.0.extend(
            missing
                .into_iter()
                .rev()
                .map(|folder| (folder, Kind::Folder)),
        );
        made
    }

    /// The folder `path`, if this start made it, is held by it alone from
    /// now on (its lock is taken): whatever is in it is then the start's,
    /// removed with it.
    pub(crate) fn hold(&mut self, path: &Path) {
        for (made, kind) in &mut self.0 {
            if made == path && *kind == Kind::Folder {
                *kind = Kind::Tree;
            }
        }
    }

    /// Whether `path` is listed as made.
    pub(crate) fn contains(&self, path: &Path) -> bool {
        self.0.iter().any(|(made, _)| made == path)
    }

    /// Forgets `path`: the start keeps it, even if refused later.
    pub(crate) fn keep(&mut self, path: &Path) {
        self.0.retain(|(made, _)| made != path);
    }

    /// Removes what was made, newest first; what cannot be removed (or is
    /// gone already) is left.
    pub(crate) fn remove(&mut self) {
        for (path, kind) in self.0.drain(..).rev() {
            let _ = match kind {
                Kind::File => std::fs::remove_file(&path),
                Kind::Folder => std::fs::remove_dir(&path),
                // Never through a link put in its place meanwhile.
                Kind::Tree => match std::fs::symlink_metadata(&path) {
                    Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(&path),
                    _ => Ok(()),
                },
            };
        }
    }
}

/// A lock file, as [`lock_file`] found it.
pub(crate) enum LockFile {
    /// Locked by this process; `made` when this call made the file.
    Locked {
        /// The open file, which holds the lock until closed.
        file: std::fs::File,
        /// Whether the file was made by this call.
        made: bool,
    },
    /// Another holder has it locked.
    Held(std::fs::File),
}

/// Opens the lock file `path` (making it if it is missing) and takes an
/// exclusive lock on it. A refused start removes a lock file it made, and
/// a lock taken on a file after its removal would be no one's: so the lock
/// counts only once `path` still names the file locked, and is taken again
/// on the file `path` names otherwise.
pub(crate) fn lock_file(path: &Path) -> std::io::Result<LockFile> {
    for _ in 0..100 {
        let (file, made) = match open_or_make(path, false)? {
            Some(opened) => opened,
            // Removed between the two opens: again.
            None => continue,
        };
        match file.try_lock() {
            Ok(()) if names_file(path, &file) => return Ok(LockFile::Locked { file, made }),
            Ok(()) => continue,
            Err(std::fs::TryLockError::WouldBlock) => return Ok(LockFile::Held(file)),
            Err(std::fs::TryLockError::Error(e)) => return Err(e),
        }
    }
    Err(std::io::Error::other(
        "it was removed and made again at every try to lock it",
    ))
}

/// Opens the file `path`, for writing (and reading when `read`), making it
/// if it is missing; whether this call made it. `None` when it was removed
/// between a make that found it and the open that followed.
pub(crate) fn open_or_make(
    path: &Path,
    read: bool,
) -> std::io::Result<Option<(std::fs::File, bool)>> {
    let mut options = std::fs::OpenOptions::new();
    options.read(read).write(true);
    match options.clone().create_new(true).open(path) {
        Ok(file) => Ok(Some((file, true))),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => match options.open(path) {
            Ok(file) => Ok(Some((file, false))),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    }
}

/// Whether `path` names the open `file` (its device and inode, on Unix;
/// elsewhere taken as so).
pub(crate) fn names_file(path: &Path, file: &std::fs::File) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        match (std::fs::metadata(path), file.metadata()) {
            (Ok(named), Ok(open)) => (named.dev(), named.ino()) == (open.dev(), open.ino()),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (path, file);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A refused start removes what it made, newest first, a tree whole,
    /// and leaves what was there before, and a folder another filled.
    #[test]
    fn what_was_made_is_removed_and_nothing_else() {
        let dir = std::env::temp_dir().join(format!("snappack-made-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("old"), b"kept").unwrap();
        let mut made = Made::default();
        let data = dir.join("a").join("data");
        made.create_dir_all(&data).unwrap();
        made.hold(&data);
        std::fs::write(data.join("inside"), b"").unwrap();
        let shared = dir.join("shared");
        made.create_dir_all(&shared.join("deeper")).unwrap();
        std::fs::write(shared.join("other's"), b"").unwrap();
        let lock = dir.join("db.lock");
        let LockFile::Locked { file, made: true } = lock_file(&lock).unwrap() else {
            panic!("not made and locked")
        };
        made.file(lock.clone());
        made.remove();
        drop(file);
        let mut left: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, ["old", "shared"]);
        assert_eq!(
            std::fs::read_dir(&shared).unwrap().count(),
            1,
            "only the other's file is left"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A folder named through `..` is not taken for one made: `new/..` is
    /// the folder `new` was made in, whose other entries stay.
    #[test]
    fn a_folder_named_through_dot_dot_is_not_removed_whole() {
        let dir = std::env::temp_dir().join(format!("snappack-dotdot-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("old"), b"kept").unwrap();
        let mut made = Made::default();
        let odd = dir.join("new").join("..");
        made.create_dir_all(&odd).unwrap();
        made.hold(&odd);
        made.remove();
        let left: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(left, ["old"]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A lock file removed after it was opened is locked again where its
    /// path now leads, and one found locked is said held.
    #[test]
    fn a_lock_is_taken_on_the_file_the_path_names() {
        let dir = std::env::temp_dir().join(format!("snappack-lockfile-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("lock");
        let LockFile::Locked { file, made: true } = lock_file(&path).unwrap() else {
            panic!("not made and locked")
        };
        assert!(matches!(lock_file(&path).unwrap(), LockFile::Held(_)));
        std::fs::remove_file(&path).unwrap();
        drop(file);
        let LockFile::Locked { file, made: true } = lock_file(&path).unwrap() else {
            panic!("not made again")
        };
        assert!(names_file(&path, &file));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
