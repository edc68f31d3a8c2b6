//! Output at paths the user gives (`pack -o`, `gen`, `unpack -o`): written
//! in full beside the target as `<name>.<pid>.partial` (a folder given empty
//! is filled through `.snappack-<pid>.partial` inside it), then renamed into
//! place, so a failed or interrupted command leaves the target as it was and
//! nothing behind.

use std::fs::{self, File};
use std::io::{self, BufWriter, IsTerminal, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};

/// A file being written (buffered) for a path the user gave.
pub(super) struct OutputFile {
    file: BufWriter<File>,
    /// Where the file ends up: the path given, its symbolic links resolved.
    target: PathBuf,
    /// The file being written, renamed to `target` by [`OutputFile::finish`];
    /// `None` when writing straight to `target` (a device or FIFO).
    partial: Option<PathBuf>,
}

impl OutputFile {
    /// Opens the output for `path`, refusing a folder or any of `inputs`
    /// (the files the command reads) before anything is written.
    ///
    /// An existing device, FIFO or other non-regular file is written in
    /// place, and so is standard output, as `-`, unless it is a terminal; a
    /// symbolic link stays a link to the file written.
    pub(super) fn create(path: &Path, inputs: &[&Path]) -> Result<Self> {
        if path == Path::new("-") {
            return Self::stdout();
        }
        if ends_with_separator(path) {
            bail!("{} names a folder: give a file path", path.display());
        }
        refuse_inputs(path, inputs)?;
        match fs::metadata(path) {
            Ok(meta) if meta.is_dir() => {
                bail!("{} is a folder: give a file path", path.display())
            }
            Ok(meta) if !meta.is_file() => {
                let file = File::options()
                    .write(true)
                    .open(path)
                    .with_context(|| format!("cannot open {}", path.display()))?;
                return Ok(OutputFile {
                    file: buffered(file),
                    target: path.to_owned(),
                    partial: None,
                });
            }
            _ => {}
        }
        let target = resolve(path)?;
        let partial = partial_path(&target)?;
        remove_on_interrupt(&partial);
        // Never another's: a file of that name, or another run's output.
        let file = File::options()
            .write(true)
            .create_new(true)
            .open(&partial)
            .map_err(|e| cannot_create(e, &partial, &target, path))?;
        Ok(OutputFile {
            file: buffered(file),
            target,
            partial: Some(partial),
        })
    }

    /// Standard output, written in place: binary output is refused on a terminal.
    fn stdout() -> Result<Self> {
        let stdout = io::stdout();
        if stdout.is_terminal() {
            bail!("standard output is a terminal: give a file path, or redirect it to a file or a pipe");
        }
        #[cfg(unix)]
        let file = File::from(std::os::fd::AsFd::as_fd(&stdout).try_clone_to_owned()?);
        #[cfg(not(unix))]
        let file =
            File::from(std::os::windows::io::AsHandle::as_handle(&stdout).try_clone_to_owned()?);
        Ok(OutputFile {
            file: buffered(file),
            target: PathBuf::from("standard output"),
            partial: None,
        })
    }

    /// True for a device, FIFO or standard output, which is written in place.
    pub(super) fn writes_in_place(&self) -> bool {
        self.partial.is_none()
    }

    /// Flushes the file to disk and moves it into place.
    pub(super) fn finish(mut self) -> Result<()> {
        self.file
            .flush()
            .with_context(|| format!("cannot write {}", self.target.display()))?;
        let Some(partial) = &self.partial else {
            return Ok(());
        };
        self.file
            .get_ref()
            .sync_all()
            .with_context(|| format!("cannot write {}", partial.display()))?;
        fs::rename(partial, &self.target).with_context(|| {
            format!(
                "cannot rename {} to {}",
                partial.display(),
                self.target.display()
            )
        })?;
        self.partial = None;
        Ok(())
    }
}

impl Write for OutputFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl Seek for OutputFile {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.file.seek(pos)
    }
}

impl Drop for OutputFile {
    /// An output not finished leaves no `.partial` behind.
    fn drop(&mut self) {
        if let Some(partial) = &self.partial {
            let _ = fs::remove_file(partial);
        }
    }
}

/// A folder being filled for a path the user gave: built at
/// `<name>.<pid>.partial` (or, for an empty folder given, at
/// `.snappack-<pid>.partial` inside it) and renamed into place by
/// [`OutputDir::finish`], removed if not finished.
pub(super) struct OutputDir {
    partial: PathBuf,
    target: PathBuf,
    /// The target is an empty folder given: `partial` is inside it.
    into_existing: bool,
    finished: bool,
}

impl OutputDir {
    /// Makes the folder to fill for `path`, which must be missing or an
    /// empty folder (a symbolic link to one stays a link).
    pub(super) fn create(path: &Path) -> Result<Self> {
        // Without a trailing `/`, so that a link is followed once, here.
        let target = resolve(&path.components().collect::<PathBuf>())?;
        if let Ok(meta) = fs::metadata(&target) {
            if !meta.is_dir() {
                bail!(
                    "{} is not a folder: give a new or empty folder",
                    path.display()
                );
            }
            let mut entries =
                fs::read_dir(&target).with_context(|| format!("cannot list {}", path.display()))?;
            if entries.next().is_some() {
                bail!(
                    "{} is not empty: give a new or empty folder",
                    path.display()
                );
            }
        }
        // An empty folder given is filled, not replaced (it keeps its
        // permissions, and may be a mount point): the output is made
        // inside it, then moved up.
        let into_existing = target.is_dir();
        let partial = match into_existing {
            true => target.join(format!(".snappack-{}.partial", std::process::id())),
            false => partial_path(&target)?,
        };
        if let Err(e) = fs::create_dir(&partial) {
            if e.kind() == io::ErrorKind::AlreadyExists {
                bail!(
                    "{} exists (left by an interrupted run?): remove it first",
                    partial.display()
                );
            }
            return Err(cannot_create(e, &partial, &target, path));
        }
        // Only once it is this run's: another run's is left alone.
        remove_on_interrupt(&partial);
        Ok(OutputDir {
            partial,
            target,
            into_existing,
            finished: false,
        })
    }

    /// The folder to write in until [`OutputDir::finish`].
    pub(super) fn path(&self) -> &Path {
        &self.partial
    }

    /// Moves the folder into place, or its contents into the empty folder given.
    pub(super) fn finish(mut self) -> Result<()> {
        let moves: Vec<(PathBuf, PathBuf)> = match self.into_existing {
            false => vec![(self.partial.clone(), self.target.clone())],
            true => fs::read_dir(&self.partial)
                .with_context(|| format!("cannot list {}", self.partial.display()))?
                .map(|entry| entry.map(|e| (e.path(), self.target.join(e.file_name()))))
                .collect::<io::Result<_>>()
                .with_context(|| format!("cannot list {}", self.partial.display()))?,
        };
        for (from, to) in moves {
            fs::rename(&from, &to)
                .with_context(|| format!("cannot rename {} to {}", from.display(), to.display()))?;
        }
        if self.into_existing {
            fs::remove_dir(&self.partial)
                .with_context(|| format!("cannot remove {}", self.partial.display()))?;
        }
        self.finished = true;
        Ok(())
    }
}

impl Drop for OutputDir {
    /// A folder not finished is removed with all it holds.
    fn drop(&mut self) {
        if !self.finished {
            let _ = fs::remove_dir_all(&self.partial);
        }
    }
}

/// SIGXFSZ's number on Linux and the BSDs.
#[cfg(unix)]
const XFSZ: i32 = 25;

/// On SIGINT, SIGTERM, SIGHUP or SIGQUIT, runs `then` and ends the process
/// with the status the signal gives (130, 143, 129, 131). SIGXFSZ is
/// caught too, and ignored: a file size limit (`ulimit -f`) then fails the
/// write, with a message and the usual cleanup, instead of killing. The
/// handlers are in place before this returns; without them (no runtime or
/// no handler could be made) the signals end the process as they would.
#[cfg(unix)]
pub(super) fn on_interrupt(then: impl FnOnce() + Send + 'static) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
    else {
        return;
    };
    let signals = {
        let _context = runtime.enter();
        (|| {
            Ok::<_, io::Error>((
                signal(SignalKind::interrupt())?,
                signal(SignalKind::terminate())?,
                signal(SignalKind::hangup())?,
                signal(SignalKind::quit())?,
                signal(SignalKind::from_raw(XFSZ))?,
            ))
        })()
    };
    let Ok((mut interrupt, mut terminate, mut hangup, mut quit, _file_size)) = signals else {
        return;
    };
    std::thread::spawn(move || {
        let status = runtime.block_on(async {
            tokio::select! {
                _ = interrupt.recv() => 128 + 2,
                _ = terminate.recv() => 128 + 15,
                _ = hangup.recv() => 128 + 1,
                _ = quit.recv() => 128 + 3,
            }
        });
        then();
        std::process::exit(status);
    });
}

/// Elsewhere the system ends a program as it ends any.
#[cfg(not(unix))]
pub(super) fn on_interrupt(_then: impl FnOnce() + Send + 'static) {}

/// Removes `partial` (a file or a folder, whatever it is by then) when the
/// process is interrupted ([`on_interrupt`]): Ctrl-C or a closed terminal
/// leaves nothing behind.
fn remove_on_interrupt(partial: &Path) {
    let partial = partial.to_owned();
    on_interrupt(move || {
        // Moved out of the writer's way first: it may still be adding files
        // to a folder, and can add none under the new name.
        let mut doomed = partial.into_os_string();
        let moved_from = PathBuf::from(doomed.clone());
        doomed.push(format!(".removing-{}", std::process::id()));
        let doomed = PathBuf::from(doomed);
        if fs::rename(&moved_from, &doomed).is_ok() && fs::remove_file(&doomed).is_err() {
            let _ = fs::remove_dir_all(&doomed);
        }
    });
}

/// Commands write in small pieces; the disk gets large ones.
fn buffered(file: File) -> BufWriter<File> {
    BufWriter::with_capacity(1 << 20, file)
}

/// True when `path` ends with `/` (a folder's name, whichever exists).
fn ends_with_separator(path: &Path) -> bool {
    path.as_os_str()
        .to_string_lossy()
        .ends_with(std::path::is_separator)
}

/// Refuses an output that is one of the command's inputs: writing it would
/// destroy what is being read.
fn refuse_inputs(path: &Path, inputs: &[&Path]) -> Result<()> {
    for &input in inputs {
        // `-` reads standard input, which may be redirected from the output.
        let (input, named) = match input == Path::new("-") {
            true => (Path::new("/dev/stdin"), "standard input".to_owned()),
            false => (input, input.display().to_string()),
        };
        if same_file(path, input) {
            bail!(
                "the output {} is the input {named}: give another output path",
                path.display(),
            );
        }
    }
    Ok(())
}

/// Whether two paths name one existing file (one device and inode; the
/// same canonical path elsewhere).
fn same_file(a: &Path, b: &Path) -> bool {
    let (Ok(meta_a), Ok(meta_b)) = (fs::metadata(a), fs::metadata(b)) else {
        return false;
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        meta_a.dev() == meta_b.dev() && meta_a.ino() == meta_b.ino()
    }
    #[cfg(not(unix))]
    {
        let _ = (meta_a, meta_b);
        matches!(
            (fs::canonicalize(a), fs::canonicalize(b)),
            (Ok(a), Ok(b)) if a == b
        )
    }
}

/// The path a rename must go to for `path`: an existing path canonical, and
/// a symbolic link to a missing file followed to where that file goes.
fn resolve(path: &Path) -> Result<PathBuf> {
    if let Ok(target) = fs::canonicalize(path) {
        return Ok(target);
    }
    let mut path = path.to_owned();
    // Linux's own bound on links followed.
    for _ in 0..40 {
        match fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let link = fs::read_link(&path)
                    .with_context(|| format!("cannot read the link {}", path.display()))?;
                path = path.parent().unwrap_or(Path::new("")).join(link);
            }
            _ => return Ok(path),
        }
    }
    bail!("{}: too many levels of symbolic links", path.display())
}

/// Why `partial`, written for `target` (the `path` given), cannot be
/// created: a folder on the way that does not exist is named as such, not
/// as the partial file missing.
fn cannot_create(e: io::Error, partial: &Path, target: &Path, path: &Path) -> anyhow::Error {
    let folder = target.parent().filter(|f| !f.as_os_str().is_empty());
    if let Some(folder) = folder.filter(|f| e.kind() == io::ErrorKind::NotFound && !f.exists()) {
        return anyhow::anyhow!(
            "cannot write {}: the folder {} does not exist (create it first)",
            path.display(),
            folder.display()
        );
    }
    anyhow::Error::new(e).context(format!(
        "cannot create {} (to write {})",
        partial.display(),
        path.display()
    ))
}

/// `<target>.partial`, beside the target (a rename does not cross file systems).
fn partial_path(target: &Path) -> Result<PathBuf> {
    let Some(name) = target.file_name() else {
        bail!("{} is not a file name", target.display());
    };
    let mut name = name.to_owned();
    // This run's own: two runs writing one output do not share it.
    name.push(format!(".{}.partial", std::process::id()));
    Ok(target.with_file_name(name))
}
