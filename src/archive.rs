//! The archive on disk: where it is (`--archive`, `$NIGHTFOX_ARCHIVE`, `$XDG_DATA_HOME/nightfox`), how it is
//! created (`init`) and opened, and the advisory locks (the daemon's; couple leases are the catalog's) kept in its
//! `locks/` directory. Layout: `catalog.db` (see `catalog`), `objects/` and `tmp/` (see `store`), `locks/`.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::catalog::{Catalog, CatalogBackend};
use crate::error::{Error, IoContext, Result};
use crate::store::Store;

const MARKER: &str = "NIGHTFOX_ARCHIVE";

/// Resolves the archive directory from the flag, the environment, or the XDG default.
pub fn resolve_dir(flag: Option<PathBuf>) -> Result<PathBuf> {
    if let Some(p) = flag {
        return Ok(p);
    }
    if let Some(p) = std::env::var_os("NIGHTFOX_ARCHIVE").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    if let Some(p) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(p).join("nightfox"));
    }
    match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        Some(h) => Ok(PathBuf::from(h).join(".local/share/nightfox")),
        None => Err(Error::Invalid("no archive given: use --archive DIR or set NIGHTFOX_ARCHIVE".into())),
    }
}

/// An open archive: its paths, its catalog and its blob store.
#[derive(Clone)]
pub struct Archive {
    pub root: PathBuf,
    pub store: Store,
    catalog: Arc<dyn CatalogBackend>,
}

impl std::fmt::Debug for Archive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Archive")
            .field("root", &self.root)
            .field("store", &self.store)
            .field("catalog", &self.catalog.describe())
            .finish()
    }
}

impl Archive {
    /// Creates a new archive in `root` (which may exist if it is empty).
    pub fn init(root: &Path) -> Result<Archive> {
        if root.join(MARKER).exists() {
            return Err(Error::Invalid(format!("{root:?} is already a Nightfox archive")));
        }
        if root.exists() {
            let mut entries = fs::read_dir(root).at(root)?;
            if entries.next().is_some() {
                return Err(Error::NotEmpty(root.to_path_buf()));
            }
        }
        fs::DirBuilder::new().recursive(true).mode(0o700).create(root).at(root)?;
        for sub in ["objects", "tmp", "locks"] {
            let p = root.join(sub);
            fs::DirBuilder::new().mode(0o700).create(&p).at(&p)?;
        }
        crate::catalog::create_backend("sqlite", root)?;
        crate::secrets::ensure_key_file(root)?;
        let marker = root.join(MARKER);
        fs::write(&marker, b"nightfox archive v1\n").at(&marker)?;
        crate::store::fsync_dir(root)?;
        Archive::open(root)
    }

    /// Opens an existing archive; fails clearly when `root` is not one.
    pub fn open(root: &Path) -> Result<Archive> {
        if !root.join(MARKER).is_file() || !root.join("catalog.db").is_file() {
            return Err(Error::NoArchive(root.to_path_buf()));
        }
        let store = Store::new(root);
        for d in [&store.objects, &store.tmp, &root.join("locks")] {
            if !d.is_dir() {
                fs::DirBuilder::new().mode(0o700).create(d).at(d)?;
            }
        }
        let catalog = crate::catalog::open_backend("sqlite", root)?;
        Ok(Archive { root: root.to_path_buf(), store, catalog })
    }

    /// Opens a new connection to the catalog (one per thread).
    pub fn catalog(&self) -> Result<Catalog> {
        self.catalog.connect()
    }

    /// The file of the lock named `name`: `locks/<name>.lock`.
    pub fn lock_path(&self, name: &str) -> PathBuf {
        self.root.join("locks").join(format!("{name}.lock"))
    }

    /// Tries to take an exclusive lock named `name`; `None` when another process (or another descriptor of this
    /// one) holds it.
    pub fn try_lock(&self, name: &str) -> Result<Option<LockFile>> {
        LockFile::try_take(&self.lock_path(name))
    }
}

/// An advisory `flock` on a file in `locks/`, released when dropped or when the process dies.
pub struct LockFile {
    file: File,
    path: PathBuf,
}

impl LockFile {
    fn try_take(path: &Path) -> Result<Option<LockFile>> {
        let file =
            OpenOptions::new().read(true).write(true).create(true).truncate(false).mode(0o600).open(path).at(path)?;
        // SAFETY: flock on a valid, owned descriptor.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
                return Ok(None);
            }
            return Err(Error::io(path, e));
        }
        Ok(Some(LockFile { file, path: path.to_path_buf() }))
    }

    /// Writes a note (such as the session id or pid) into the lock file for others to read.
    pub fn write_note(&mut self, note: &str) -> Result<()> {
        self.file.set_len(0).at(&self.path)?;
        self.file.rewind().at(&self.path)?;
        self.file.write_all(note.as_bytes()).at(&self.path)
    }

    /// Reads the note of a lock file held by someone else.
    pub fn read_note(path: &Path) -> Option<String> {
        let mut s = String::new();
        File::open(path).ok()?.read_to_string(&mut s).ok()?;
        Some(s.trim().to_string())
    }
}
