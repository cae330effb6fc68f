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
    /// is drawn and kept only wrapped under the archive secret (`keys/vault.wrapped`, and the catalog's
    /// [`crate::catalog::VAULT_KEY_INFO`]), and `archive.toml` says `[blobs] encrypt = true`. A seat joining a
    /// shared catalog that keeps a vault key is encrypted with that key, `encrypt` or not (refused, writing
    /// nothing, when its secrets do not open it); `encrypt` on a shared catalog without one that holds blobs
    /// already (plaintext) is refused.
    pub fn init_encrypted(root: &Path, blobs_url: &str, catalog_url: &str, encrypt: bool) -> Result<Archive> {
        if root.join(MARKER).exists() {
            return Err(Error::Invalid(format!("{root:?} is already a Nightfox archive")));
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
        // A shared catalog that keeps a wrapped vault key makes this seat encrypted too, with that key (checked to
        // open with this seat's secrets before anything is written).
        let mut joined_key = None;
        if shared_catalog {
            let cat = crate::catalog::open_backend(catalog_url, root)?.connect()?;
            match cat.info(crate::catalog::VAULT_KEY_INFO)? {
                Some(hex) => joined_key = Some(crate::blobs::vault::DataKey::from_catalog(root, &hex)?),
                None if encrypt => {
                    let (blobs, _) = cat.blobs_to_verify_total(None, i64::MAX)?;
                    if blobs > 0 {
                        return Err(Error::Invalid(format!(
                            "this shared catalog is not encrypted and holds {blobs} plaintext blob(s): a seat cannot \
                             join it with --encrypt (init without it)"
                        )));
                    }
                }
                None => {}
            }
        }
        let encrypt = encrypt || joined_key.is_some();
        let existed = root.exists();
        let made = Archive::lay_out(root, blobs_url, catalog_url, encrypt, joined_key, remote, &check);
        if let Err(e) = made {
            if !existed {
                // Nothing of a half-made archive is left behind.
                let _ = fs::remove_dir_all(root);
            }
            return Err(e);
        }
        Archive::open(root)
    }

    /// The files of a new archive (after [`Archive::init_encrypted`]'s checks): directories, the vault key (a new
    /// one, kept in the catalog too; or the one a shared catalog keeps), archive.toml, the catalog, the marker.
    fn lay_out(
        root: &Path,
        blobs_url: &str,
        catalog_url: &str,
        encrypt: bool,
        joined_key: Option<crate::blobs::vault::DataKey>,
        remote: bool,
        check: &dyn Fn(&Path) -> Result<()>,
    ) -> Result<()> {
        fs::DirBuilder::new().recursive(true).mode(0o700).create(root).at(root)?;
        for sub in ["objects", "tmp", "locks"] {
            let p = root.join(sub);
            fs::DirBuilder::new().mode(0o700).create(&p).at(&p)?;
        }
        let mut config = Config::default();
        config.blobs.url = blobs_url.to_string();
        let mut new_vault = None;
        if encrypt {
            crate::secrets::ensure_key_file(root)?;
            match joined_key {
                Some(key) => {
                    key.store(root)?;
                }
                None => new_vault = Some(crate::blobs::vault::DataKey::generate().store(root)?),
            }
            config.blobs.encrypt = true;
        }
        config.catalog.url = crate::catalog::redact_url(catalog_url);
        if !remote && blobs_url != config::DEFAULT_BLOBS {
            check(root)?;
        }
        config.write_new(root)?;
        let backend = crate::catalog::create_backend(&config.catalog.url, root)?;
        if let Some(wrapped) = new_vault {
            // The catalog keeps the wrapped key too: how a seat joining it later gets the archive's key.
            let hex = crate::blobs::vault::to_hex(&wrapped);
            if !backend.connect()?.set_info(crate::catalog::VAULT_KEY_INFO, &hex, None)? {
                return Err(Error::Invalid(
                    "another seat made this shared catalog's vault key meanwhile: run init again to join it".into(),
                ));
            }
        }
        crate::secrets::ensure_key_file(root)?;
        let marker = root.join(MARKER);
        fs::write(&marker, b"nightfox archive v1\n").at(&marker)?;
        crate::blobs::fsync_dir(root)
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
        if !config.blobs.encrypt && crate::catalog::is_postgres(&config.catalog.url) {
            // A seat made before another seat's `init --encrypt` of the same empty catalog would land plaintext
            // among sealed blobs. (A catalog that cannot be reached now is left to fail where it is used.)
            let sealed = catalog.connect().ok().and_then(|c| c.info(crate::catalog::VAULT_KEY_INFO).ok().flatten());
            if sealed.is_some() {
                return Err(Error::Invalid(format!(
                    "{}: this seat keeps blobs in clear, but the shared catalog's archive is encrypted (another \
                     seat ran `init --encrypt`): make this seat again with `nightfox init --catalog URL` in a new \
                     directory, which joins it encrypted",
                    root.display()
                )));
            }
        }
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
