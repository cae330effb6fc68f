//! The archive on disk: where it is (`--archive`, `$NIGHTFOX_ARCHIVE`, `$XDG_DATA_HOME/nightfox`), how it is
//! created (`init`) and opened, which blob store and catalog it uses (`archive.toml`, see [`config`]), and the
//! daemon's advisory lock in its `locks/` directory (couple leases are the catalog's). Default layout:
//! `catalog.db` (see `catalog`), `objects/` (see `blobs::local`), `tmp/` (staging, see `blobs::staging`),
//! `locks/`, `archive.toml`; an encrypted archive (`init --encrypt`) also `keys/vault.wrapped` (see
//! `blobs::vault`).

use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::blobs::{BlobStore, Staging};
use crate::catalog::{Catalog, CatalogBackend};
use crate::error::{Error, IoContext, Result};

pub mod config;
pub mod env;
pub use crate::lockfile::LockFile;
pub use config::Config;

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

/// Why an encrypted archive cannot have a shared catalog yet: the data key lives wrapped in one archive directory,
/// so every seat joining would draw a key of its own and read the others' sealed blobs as garbage.
pub const SEATS_UNENCRYPTED: &str = "an encrypted archive cannot share a Postgres catalog with other seats yet (each \
     seat would draw its own data key): keep an encrypted archive on its SQLite catalog, or leave a studio's seats \
     unencrypted";

/// The store `url` names, wrapped in the vault (its key unwrapped with the archive secret: a wrong secret fails
/// here, in one line) when the archive's blobs are encrypted.
fn open_blobs(config: &Config, url: &str, root: &Path) -> Result<Arc<dyn BlobStore>> {
    let store = crate::blobs::open_store(url, root)?;
    if !config.blobs.encrypt {
        return Ok(store);
    }
    let key = crate::blobs::vault::DataKey::load(root)?;
    Ok(Arc::new(crate::blobs::vault::VaultBlobs::new(store, key)))
}

/// An open archive: its root, its configuration, its staging directory, its blob store and its catalog backend
/// (connections are opened per thread by [`Archive::catalog`]).
#[derive(Clone)]
pub struct Archive {
    pub root: PathBuf,
    pub config: Config,
    /// `tmp/`: where copies are written, fsynced and re-hashed before they land (local for every blob store).
    pub staging: Staging,
    /// Where verified content lives.
    pub blobs: Arc<dyn BlobStore>,
    catalog: Arc<dyn CatalogBackend>,
}

impl std::fmt::Debug for Archive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Archive")
            .field("root", &self.root)
            .field("blobs", &self.blobs.describe())
            .field("catalog", &self.catalog.describe())
            .finish()
    }
}

impl Archive {
    /// Creates a new archive in `root` (which may exist if it is empty).
    pub fn init(root: &Path) -> Result<Archive> {
        Archive::init_with(root, config::DEFAULT_BLOBS)
    }

    /// Creates an archive whose blobs live where `blobs_url` says (see [`crate::blobs::open_store`]); the store
    /// is opened (and so checked) before anything is written.
    pub fn init_with(root: &Path, blobs_url: &str) -> Result<Archive> {
        Archive::init_full(root, blobs_url, config::DEFAULT_CATALOG)
    }

    /// Creates an archive with its blobs and its catalog where the URLs say. A shared (Postgres) catalog is
    /// joined, not created: it must exist and be migrated (`nightfox migrate`), and is checked before anything
    /// is written; this archive directory then holds only this seat's own parts (staging, locks, caches,
    /// archive.toml without any password).
    pub fn init_full(root: &Path, blobs_url: &str, catalog_url: &str) -> Result<Archive> {
        Archive::init_encrypted(root, blobs_url, catalog_url, false)
    }

    /// [`init_full`](Self::init_full), with the blobs sealed (`blobs::vault`) when `encrypt`: a random data key
    /// is drawn and kept only wrapped under the archive secret (`keys/vault.wrapped`), and `archive.toml` says
    /// `[blobs] encrypt = true`.
    pub fn init_encrypted(root: &Path, blobs_url: &str, catalog_url: &str, encrypt: bool) -> Result<Archive> {
        if root.join(MARKER).exists() {
            return Err(Error::Invalid(format!("{root:?} is already a Nightfox archive")));
        }
        if encrypt && crate::catalog::is_postgres(catalog_url) {
            return Err(Error::Invalid(SEATS_UNENCRYPTED.into()));
        }
        if root.exists() {
            // Only the S3 credentials file may be there already (written first, mode 0600).
            let mut entries =
                fs::read_dir(root).at(root)?.filter(|e| e.as_ref().map_or(true, |e| e.file_name() != "s3.env"));
            if entries.next().is_some() {
                return Err(Error::NotEmpty(root.to_path_buf()));
            }
        }
        // Reachable, and the credentials work: a lookup of a blob that is not there (a remote store before
        // anything is written; a local one once its directory can be compared with the archive's).
        let check = |root: &Path| -> Result<()> {
            crate::blobs::open_store(blobs_url, root)?.contains(&"0".repeat(64)).map(|_| ())
        };
        let remote = blobs_url.starts_with("s3://");
        if remote {
            check(root)?;
        }
        let shared_catalog = crate::catalog::is_postgres(catalog_url);
        if shared_catalog {
            crate::catalog::open_backend(catalog_url, root)?.connect()?;
        }
        fs::DirBuilder::new().recursive(true).mode(0o700).create(root).at(root)?;
        for sub in ["objects", "tmp", "locks"] {
            let p = root.join(sub);
            fs::DirBuilder::new().mode(0o700).create(&p).at(&p)?;
        }
        let mut config = Config::default();
        config.blobs.url = blobs_url.to_string();
        if encrypt {
            crate::secrets::ensure_key_file(root)?;
            crate::blobs::vault::DataKey::create(root)?;
            config.blobs.encrypt = true;
        }
        config.catalog.url = crate::catalog::redact_url(catalog_url);
        if !remote && blobs_url != config::DEFAULT_BLOBS {
            check(root)?;
        }
        config.write_new(root)?;
        crate::catalog::create_backend(&config.catalog.url, root)?;
        crate::secrets::ensure_key_file(root)?;
        let marker = root.join(MARKER);
        fs::write(&marker, b"nightfox archive v1\n").at(&marker)?;
        crate::blobs::fsync_dir(root)?;
        Archive::open(root)
    }

    /// Opens an existing archive; fails clearly when `root` is not one.
    pub fn open(root: &Path) -> Result<Archive> {
        if !root.join(MARKER).is_file() {
            return Err(Error::NoArchive(root.to_path_buf()));
        }
        let config = Config::load(root)?;
        if config.catalog.url == config::DEFAULT_CATALOG && !root.join("catalog.db").is_file() {
            return Err(Error::NoArchive(root.to_path_buf()));
        }
        let locks = root.join("locks");
        if !locks.is_dir() {
            fs::DirBuilder::new().mode(0o700).create(&locks).at(&locks)?;
        }
        let staging = Staging::open(root)?;
        let blobs = open_blobs(&config, &config.blobs.url, root)?;
        let catalog = crate::catalog::open_backend(&config.catalog.url, root)?;
        Ok(Archive { root: root.to_path_buf(), config, staging, blobs, catalog })
    }

    /// Opens the blob store `url` names as this archive keeps blobs: sealed with its data key when it is an
    /// encrypted archive (`migrate-blobs` lands into it).
    pub fn open_blob_store(&self, url: &str) -> Result<Arc<dyn BlobStore>> {
        open_blobs(&self.config, url, &self.root)
    }

    /// The same archive with its blobs in `blobs` instead (tests: an in-memory store with injected faults).
    pub fn with_blobs(mut self, blobs: Arc<dyn BlobStore>) -> Archive {
        self.blobs = blobs;
        self
    }

    /// The catalog as messages show it (never with a password).
    pub fn catalog_description(&self) -> String {
        self.catalog.describe()
    }

    /// The catalog backend (to open connections of one's own, as the mount's change waiter does).
    pub fn catalog_backend(&self) -> Arc<dyn CatalogBackend> {
        self.catalog.clone()
    }

    /// Opens a new connection to the catalog (one per thread).
    pub fn catalog(&self) -> Result<Catalog> {
        self.catalog.connect()
    }

    /// Where the blobs' outboards (the BLAKE3 trees of verified reads, `blobs::outboard`) are kept: `outboards/`.
    /// Derived data: one that is missing or unfit is built again from its blob.
    pub fn outboards_dir(&self) -> PathBuf {
        self.root.join("outboards")
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
