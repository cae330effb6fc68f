//! The catalog: what the archive knows about couples, cameras, blobs, files, import sessions and their items,
//! network sources and the ingest directory. This module owns the seam between Nightfox and the database that
//! stores it: the row types (`types.rs`), the traits a consumer uses (cut by consumer: [`ReadCatalog`] for the
//! tree, `verify`, `info` and `status`; [`ImportLog`] and [`Finalize`] for imports; [`Registry`] for couples,
//! cameras and sources; [`Health`] for `verify`'s findings; [`IngestEntries`] for the ingest directory) and the
//! factory that picks a backend from a catalog URL. The backends live below it (today `sqlite/`, private: the
//! only code that speaks SQL); nothing outside this module knows which one is in use.
//!
//! A consumer writes `use crate::catalog::prelude::*;` and holds a [`Catalog`] (one connection per thread, from
//! [`CatalogBackend::connect`], usually via `Archive::catalog`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::error::{Error, Result};

pub mod copy;
pub mod jobs;
#[cfg(feature = "postgres")]
pub(crate) mod postgres;
mod sqlite;
mod types;

#[cfg(test)]
mod conformance;

pub use types::*;

/// The traits of the catalog, for one `use crate::catalog::prelude::*;`.
pub mod prelude {
    pub use super::jobs::Jobs;
    pub use super::{
        Catalog, CatalogBackend, CatalogConn, CoupleLease, Finalize, Health, ImportLog, IngestEntries, Lease,
        Lifecycle, Trash,
    };
    pub use super::{ReadCatalog, Registry};
}

/// An open catalog connection, as consumers hold it.
pub type Catalog = Box<dyn CatalogConn>;

/// A catalog store: where connections come from. Shared by every thread of a process (`Send + Sync`).
pub trait CatalogBackend: Send + Sync {
    /// A one-line description for messages and `Debug` (SQLite: `sqlite://<path of catalog.db>`).
    fn describe(&self) -> String;

    /// Opens a new connection (one per thread; migrations run on the first open of an older catalog).
    fn connect(&self) -> Result<Box<dyn CatalogConn>>;
}

/// Everything one connection can do. Implemented for every type that implements all the traits.
pub trait CatalogConn:
    ReadCatalog + ImportLog + Registry + Health + IngestEntries + Lifecycle + Trash + jobs::Jobs + copy::RawRows + Send
{
}

impl<
        T: ReadCatalog
            + ImportLog
            + Registry
            + Health
            + IngestEntries
            + Lifecycle
            + Trash
            + jobs::Jobs
            + copy::RawRows
            + Send
            + ?Sized,
    > CatalogConn for T
{
}

/// A held couple lease, as consumers keep it.
pub type CoupleLease = Box<dyn Lease>;

/// A held couple lease (see [`ImportLog::try_lock_couple`]); released when dropped.
pub trait Lease: Send {
    /// Writes a note (the session id) for others to read through [`ImportLog::couple_lock_holder`].
    fn write_note(&mut self, note: &str) -> Result<()>;
}

/// The backend a catalog URL names: `sqlite` (the archive's own `catalog.db`) or `sqlite:///absolute/path.db`.
/// Nothing is opened yet.
pub fn open_backend(url: &str, archive_root: &Path) -> Result<Arc<dyn CatalogBackend>> {
    #[cfg(feature = "postgres")]
    if is_postgres(url) {
        return Ok(Arc::new(postgres::PgBackend::new(&runtime_dsn(url)?)?));
    }
    let path = sqlite_path(url, archive_root)?;
    Ok(Arc::new(sqlite::SqliteBackend::new(path, archive_root.join("locks"))))
}

/// Creates the catalog a URL names (for `init`): a new, empty catalog with the current schema. Fails when it
/// exists already.
pub fn create_backend(url: &str, archive_root: &Path) -> Result<Arc<dyn CatalogBackend>> {
    #[cfg(feature = "postgres")]
    if is_postgres(url) {
        // A shared catalog is joined, never created here: its schema is the migration role's (`nightfox
        // migrate`). Connecting checks that it is there and current.
        let backend = open_backend(url, archive_root)?;
        backend.connect()?;
        return Ok(backend);
    }
    let path = sqlite_path(url, archive_root)?;
    let backend = sqlite::SqliteBackend::new(path, archive_root.join("locks"));
    backend.create()?;
    Ok(Arc::new(backend))
}

/// Opens a SQLite catalog file read/write (a backup, or a catalog outside an archive); its couple leases are
/// taken in `locks/` beside the file.
pub fn open_sqlite(path: &Path) -> Result<Catalog> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    sqlite::SqliteBackend::new(path.to_path_buf(), dir.join("locks")).connect()
}

/// The `catalog_info` name of the encrypted vault's data key, wrapped by the secrets of the seat that wrote it (hex):
/// how a seat joining a shared catalog gets the archive's key (`blobs::vault`).
pub const VAULT_KEY_INFO: &str = "vault_key_wrapped";

/// True for a `postgres://` (or `postgresql://`) catalog URL.
pub fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// The environment variable with the runtime DSN, password included (from the env file, see `archive::env`).
pub const DATABASE_URL_VAR: &str = "NIGHTFOX_DATABASE_URL";

/// The environment variable with the migration DSN, password included.
pub const MIGRATE_URL_VAR: &str = "NIGHTFOX_DATABASE_MIGRATE_URL";

/// Whether a catalog URL carries a password.
pub fn url_has_password(url: &str) -> bool {
    url::Url::parse(url).is_ok_and(|u| u.password().is_some())
}

/// A catalog URL for messages: without its password.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(None);
            u.to_string()
        }
        _ => url.to_string(),
    }
}

/// The DSN to use for `given` (a URL from the command line or archive.toml, never with a password): the one in
/// the environment variable `var` when it names the same server, database and role (it has the password), else
/// `given` as it is; with no `given`, the variable's. Fails when they name different catalogs.
pub fn dsn_with_secret(given: Option<&str>, var: &str) -> Result<String> {
    let env = std::env::var(var).ok().filter(|v| !v.is_empty());
    let (given, env) = match (given, env) {
        (None, Some(e)) => return Ok(e),
        (None, None) => return Err(Error::Invalid(format!("no catalog DSN: give --dsn or set {var} in the env file"))),
        (Some(g), None) => return Ok(g.to_string()),
        (Some(g), Some(e)) => (g, e),
    };
    let same = |a: &url::Url, b: &url::Url| {
        a.host_str() == b.host_str()
            && a.port_or_known_default() == b.port_or_known_default()
            && a.path() == b.path()
            && (a.username().is_empty() || a.username() == b.username())
    };
    match (url::Url::parse(given), url::Url::parse(&env)) {
        (Ok(a), Ok(b)) if same(&a, &b) => Ok(env),
        (Ok(_), Ok(_)) => Err(Error::Invalid(format!(
            "{var} ({}) names another catalog than {}",
            redact_url(&env),
            redact_url(given)
        ))),
        _ => Err(Error::Invalid(format!("catalog URL {} is not a valid URL", redact_url(given)))),
    }
}

/// `nightfox migrate`: creates or upgrades a Postgres catalog's schema with the migration DSN (`dsn`, else
/// `$NIGHTFOX_DATABASE_MIGRATE_URL`) and grants the runtime role (`app_role`, else the role of
/// `$NIGHTFOX_DATABASE_URL`, else `nightfox_app`). Returns the DSN as shown and the (old, new) versions.
#[cfg(feature = "postgres")]
pub fn migrate(dsn: Option<&str>, app_role: Option<&str>) -> Result<(String, i64, i64)> {
    let dsn = dsn_with_secret(dsn, MIGRATE_URL_VAR)?;
    if !is_postgres(&dsn) {
        return Err(Error::Invalid(format!(
            "nightfox migrate is for Postgres catalogs ({} is not one; a SQLite catalog migrates when opened)",
            redact_url(&dsn)
        )));
    }
    let role = match app_role {
        Some(r) => r.to_string(),
        None => std::env::var(DATABASE_URL_VAR)
            .ok()
            .and_then(|u| url::Url::parse(&u).ok())
            .map(|u| u.username().to_string())
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| "nightfox_app".into()),
    };
    let (old, new) = postgres::migrate(&dsn, &role)?;
    Ok((redact_url(&dsn), old, new))
}

/// Without the `postgres` feature there is nothing to migrate.
#[cfg(not(feature = "postgres"))]
pub fn migrate(_dsn: Option<&str>, _app_role: Option<&str>) -> Result<(String, i64, i64)> {
    Err(Error::Invalid("this nightfox is built without Postgres support (feature postgres)".into()))
}

/// The DSN to connect with for a catalog URL of `archive.toml` (which never holds a password): the one in
/// `NIGHTFOX_DATABASE_URL` when it names the same server, database and role (with the password), else the URL
/// as it is (a server that trusts the role is the operator's choice).
#[cfg(feature = "postgres")]
fn runtime_dsn(url: &str) -> Result<String> {
    dsn_with_secret(Some(url), DATABASE_URL_VAR)
}

fn sqlite_path(url: &str, archive_root: &Path) -> Result<PathBuf> {
    if url == "sqlite" {
        return Ok(archive_root.join("catalog.db"));
    }
    match url.split_once("://") {
        Some(("sqlite", rest)) if rest.starts_with('/') => Ok(PathBuf::from(rest)),
        Some(("sqlite", _)) => {
            Err(Error::Invalid(format!("catalog URL {url:?}: give an absolute path, as in sqlite:///path/catalog.db")))
        }
        Some((scheme, _)) => {
            Err(Error::Invalid(format!("catalog URL scheme '{scheme}' is not built into this nightfox")))
        }
        None => {
            Err(Error::Invalid(format!("catalog URL {url:?} is not understood (expected sqlite or sqlite:///path)")))
        }
    }
}

/// What the tree (`vfs`), `verify`, `info` and `status` read: couples, cameras, sessions and their items, blobs,
/// files and the archive's event log.
///
/// Contract: every method is one consistent read (one statement or one snapshot) and never writes. A read sees
/// everything committed before it started, by any connection. Errors marked transient ([`Error::Catalog`] with
/// `transient`) mean the catalog was busy past the backend's wait; the read may simply be asked again.
pub trait ReadCatalog {
    /// The schema version of the open catalog.
    fn schema_version(&self) -> Result<i64>;

    /// Every couple with its file count and size, by folder name.
    fn couples(&self) -> Result<Vec<Couple>>;

    /// Every couple's id and folder name: what the tree and the ingest directory poll, without counting files.
    fn couple_folders(&self) -> Result<Vec<(i64, String)>>;

    /// The couple with this folder name (`Error::NoSuchCouple` when none).
    fn couple_by_folder(&self, folder_name: &str) -> Result<Couple>;

    /// The couples of one event date, by folder name (`couple add` refuses a second couple of the same name).
    fn couples_on(&self, event_date: &str) -> Result<Vec<Couple>>;

    /// The couple with this id (`Error::NoSuchCouple` when none).
    fn couple_by_id(&self, id: i64) -> Result<Couple>;

    /// Every camera, by slug.
    fn cameras(&self) -> Result<Vec<Camera>>;

    /// Every camera with its file count, by slug; the files are counted in one pass.
    fn camera_listing(&self) -> Result<Vec<CameraListing>>;

    /// The camera with this slug (`Error::NoSuchCamera` when none).
    fn camera_by_slug(&self, slug: &str) -> Result<Camera>;

    /// The camera with this id, if any.
    fn camera_by_id(&self, id: i64) -> Result<Option<Camera>>;

    /// The session with this id (`Error::NoSuchSession` when none).
    fn session(&self, id: i64) -> Result<Session>;

    /// Every session, oldest first.
    fn sessions(&self) -> Result<Vec<Session>>;

    /// The items of a session, in scan order.
    fn items(&self, session_id: i64) -> Result<Vec<Item>>;

    /// The first `limit` items of a session that carry an error, in scan order: (relative path, error). What a
    /// listing of a session's problems needs without loading all its items.
    fn item_errors(&self, session_id: i64, limit: u32) -> Result<Vec<(Vec<u8>, String)>>;

    /// What an ASC MHL history of a session lists: each item whose content is in the archive (imported or a
    /// duplicate), by its original relative path, with its blob's xxh64/xxh128 where recorded.
    fn session_sums(&self, session_id: i64) -> Result<Vec<SessionSum>>;

    /// The catalogued blob with this hash, if any.
    fn blob(&self, hash: &str) -> Result<Option<BlobRow>>;

    /// Every blob, or those referenced by one couple.
    fn blobs(&self, couple_id: Option<i64>) -> Result<Vec<BlobRow>>;

    /// One page of the blobs due for verification, oldest-verified first (never verified first, then by
    /// `verified_at`, then by row id): those (of one couple, if given) whose `verified_at` is NULL or before
    /// `before`, after `after`, at most `limit`. Returns the page and the cursor of its last row (keyset paging:
    /// a million blobs are read a page at a time, each page from the index).
    fn blobs_to_verify(
        &self,
        couple_id: Option<i64>,
        before: i64,
        after: VerifyCursor,
        limit: u32,
    ) -> Result<(Vec<BlobRow>, VerifyCursor)>;

    /// How many blobs [`ReadCatalog::blobs_to_verify`] would give with the same filter, and their bytes.
    fn blobs_to_verify_total(&self, couple_id: Option<i64>, before: i64) -> Result<(u64, u64)>;

    /// Which of `hashes` are catalogued blobs (the orphan check asks in batches).
    fn known_blobs(&self, hashes: &[String]) -> Result<std::collections::HashSet<String>>;

    /// The newest scrub runs, newest first, at most `limit`.
    fn scrub_runs(&self, limit: u32) -> Result<Vec<ScrubRun>>;

    /// The newest finished scrub run (of this trigger, if given; only complete ones when `complete`).
    fn last_scrub(&self, trigger: Option<&str>, complete: bool) -> Result<Option<ScrubRun>>;

    /// Blobs that `verify` found damaged or missing and that no verified copy has healed yet: `(hash, health)`.
    fn unhealthy_blobs(&self) -> Result<Vec<(String, String)>>;

    /// How many blobs are unhealthy, and the first `limit` of them by hash (what `status` shows without listing
    /// a million blobs when an external disk was not mounted for `verify`).
    fn unhealthy_blobs_first(&self, limit: u32) -> Result<(i64, Vec<(String, String)>)>;

    /// Whether any blob is unhealthy (one index probe, whatever their number).
    fn any_unhealthy_blob(&self) -> Result<bool>;

    /// `ok`, `damaged` or `missing` for a catalogued blob; `None` for content the catalog does not know.
    fn blob_health(&self, hash: &str) -> Result<Option<String>>;

    /// Archive events after `after` (oldest first): what changed about blobs and files already shown.
    fn events_after(&self, after: i64, limit: u32) -> Result<Vec<ArchiveEvent>>;

    /// The id of the newest archive event (0 when there is none).
    fn last_event_id(&self) -> Result<i64>;

    /// Files stored from salvaged (damaged) copies, of one couple or all.
    fn damaged_files(&self, couple_id: Option<i64>) -> Result<Vec<FileRow>>;

    /// Every file, or those of one couple, ordered by directory and name.
    fn files(&self, couple_id: Option<i64>) -> Result<Vec<FileRow>>;

    /// Files that point at one blob.
    fn files_of_blob(&self, hash: &str) -> Result<Vec<FileRow>>;

    /// Files that point at any of these blobs, in no particular order: the paths of many blobs in a few queries
    /// (what `verify` reports), never one per blob.
    fn files_of_blobs(&self, hashes: &[String]) -> Result<Vec<FileRow>>;

    /// The file with this id, if any.
    fn file(&self, id: i64) -> Result<Option<FileRow>>;

    /// The file with this display name in a directory of the tree.
    fn file_in_dir(
        &self,
        couple_id: i64,
        ft: FootageType,
        camera_id: Option<i64>,
        name: &[u8],
    ) -> Result<Option<FileRow>>;

    /// The sidecars linked to a clip.
    fn sidecars_of(&self, file_id: i64) -> Result<Vec<FileRow>>;

    /// Files with an id above `after`, in id order (files are only ever added).
    fn files_after(&self, after: i64) -> Result<Vec<FileRow>>;

    /// A token that changes whenever another connection commits: a cheap poll for front ends that cache the
    /// tree. Equal tokens mean nothing was committed meanwhile by anyone else; this connection's own commits need
    /// not change it (SQLite: `PRAGMA data_version`, which moves only for other connections' commits).
    fn change_token(&self) -> Result<i64>;

    /// Blocks for at most `timeout`, returning early once another connection may have committed: the front
    /// ends' refresher waits here between two looks at [`change_token`](Self::change_token). The default sleeps
    /// the whole `timeout` (SQLite has no notification, so the refresher polls its cheap token); Postgres wakes on
    /// `LISTEN/NOTIFY`. A caller gives this its own connection, since it holds the connection while it waits.
    fn wait_change(&self, timeout: Duration) -> Result<()> {
        std::thread::sleep(timeout);
        Ok(())
    }

    /// When the catalog last changed on disk, if the backend can tell (SQLite: the mtime of the database file).
    /// The mount shows it as the mtime of its root.
    fn changed_at(&self) -> Result<Option<SystemTime>>;

    /// Total number of catalogued files.
    fn file_count(&self) -> Result<i64>;

    /// The ids of the newest file and the newest blob (0 when there is none): where a change feed of new files
    /// and new `.by-hash` entries starts.
    fn newest_ids(&self) -> Result<(i64, i64)>;

    /// The couples that have files, with their file count and newest import, by folder name: the root of the
    /// mount. Reads one row per couple (never the files).
    fn tree_couples(&self) -> Result<Vec<TreeCouple>>;

    /// One couple's camera folders (footage type, camera, file count, newest import), by type then camera id.
    /// Reads the couple's files through an index, not the whole catalog.
    fn tree_cameras(&self, couple_id: i64) -> Result<Vec<TreeCamera>>;

    /// The files of one camera folder of the tree, by display name.
    fn files_in_dir(&self, couple_id: i64, ft: FootageType, camera_id: Option<i64>) -> Result<Vec<TreeFile>>;

    /// The entries of `.by-hash`: for each blob with an id above `after` that some file uses, in blob id order,
    /// the first file (lowest id) that uses it; at most `limit`. Blob ids never change, so a listing can go on
    /// from the last id it handed out.
    fn hash_entries(&self, after: i64, limit: u32) -> Result<Vec<TreeFile>>;

    /// The audit log (of one couple, if given): its newest `limit` events, oldest first.
    fn audit_log(&self, couple_id: Option<i64>, limit: u32) -> Result<Vec<AuditEvent>>;
}

/// Changing where catalogued files are shown (`cli`): folder and slug renames, moves and camera merges, and
/// the old names that keep resolving after them.
///
/// Contract: each change is one transaction, all or nothing, committed on return (a crash at any point leaves
/// the catalog as before or as after). Each records its [`AuditEvent`] and a `lifecycle` archive event whose
/// detail lists what it took from the tree ([`Gone`]), in the same transaction. A path once shown keeps
/// resolving: a rename or move records the old name as an alias (couple folder, camera slug, file placement),
/// no alias is listed, and no new couple, camera or file takes a name an alias holds. Ids never change (the
/// mount's inodes are made from them).
pub trait Lifecycle {
    /// Renames a couple (display name, event date and folder); an old folder name becomes an alias.
    /// `Error::Invalid` when another couple (or another couple's alias) has the folder name.
    fn rename_couple_folder(
        &self,
        couple_id: i64,
        display_name: &str,
        event_date: &str,
        folder: &str,
        by: &Actor,
    ) -> Result<()>;

    /// Renames a camera (display name and slug, its folder in every couple); an old slug becomes an alias.
    /// `Error::Invalid` when another camera (or another camera's alias) has the slug.
    fn rename_camera_slug(&self, camera_id: i64, name: &str, slug: &str, by: &Actor) -> Result<()>;

    /// Moves every file of camera `from` to camera `into` (names that collide get a ` (n)` suffix, as an import
    /// names them), points sessions and sources at `into`, and retires `from` (`merged_into`: not listed, its
    /// slug kept as an old name; an import that would route to it routes to `into`). Every moved file's old place
    /// is recorded. Returns the files moved.
    fn merge_cameras(&self, from: i64, into: i64, by: &Actor) -> Result<Vec<Moved>>;

    /// Moves a clip (with its sidecars) to another camera folder and/or footage type of its couple, keeping
    /// names (a collision gets a ` (n)` suffix); its old places become aliases. Returns the files moved (none
    /// when it is already there). `Error::Invalid` for a sidecar (move its clip).
    fn move_file(&self, file_id: i64, camera_id: Option<i64>, ft: FootageType, by: &Actor) -> Result<Vec<Moved>>;

    /// The live couple an old folder name (before a folder rename) names.
    fn couple_alias(&self, folder_name: &str) -> Result<Option<i64>>;

    /// A couple's old folder names, oldest first.
    fn couple_aliases_of(&self, couple_id: i64) -> Result<Vec<String>>;

    /// The camera a slug that is not listed names: an old slug (renamed) or a merged camera's slug.
    fn camera_alias(&self, slug: &str) -> Result<Option<i64>>;

    /// The live file an old place names, if any (exact display name).
    fn file_at_alias(&self, at: &Placement) -> Result<Option<FileRow>>;

    /// Whether any old place of a live file is below a directory of the tree: `ft` None asks about the whole
    /// couple, `camera` None about the whole footage type, `Some(None)` about its `unknown` folder.
    fn aliases_under(&self, couple_id: i64, ft: Option<FootageType>, camera: Option<Option<i64>>) -> Result<bool>;

    /// A file's old places (what `info` lists), oldest first.
    fn aliases_of(&self, file_id: i64) -> Result<Vec<FileAlias>>;

    /// Whether any old name exists (none: the mount never looks for old names). Cheap: the tree asks at every
    /// reload.
    fn has_aliases(&self) -> Result<bool>;
}

/// Letting go (`cli`, `gc`): the trash (removed couples, files and imports, restorable until purged), purges,
/// and the forgetting and removal of garbage blobs.
///
/// Contract: each change is one transaction, committed on return, with its [`AuditEvent`] and (when it changes
/// the tree) a `lifecycle` archive event listing what left the tree ([`Gone`]). Removal marks rows with the
/// trash entry: gone from the tree, the totals and duplicate checks at once, names and ids kept, so a restore
/// puts everything back exactly (same paths, same inodes). Blobs stay until `gc` finds them unreferenced.
pub trait Trash {
    /// Moves a file (a clip with its sidecars) to the trash, restorable until `purge_after`.
    fn trash_file(&self, file_id: i64, label: &str, purge_after: i64, by: &Actor) -> Result<TrashEntry>;

    /// Moves a couple (all its files; the couple leaves the tree) to the trash. `Error::Invalid` while an
    /// import or a network source uses it.
    fn trash_couple(&self, couple_id: i64, purge_after: i64, by: &Actor) -> Result<TrashEntry>;

    /// Moves what one finished session added (its live files and their sidecars) to the trash. `Error::Invalid`
    /// for a session that has not ended, or added nothing that is still live.
    fn trash_session(&self, session_id: i64, purge_after: i64, by: &Actor) -> Result<TrashEntry>;

    /// The trash, oldest first.
    fn trash(&self) -> Result<Vec<TrashEntry>>;

    /// The trash entry with this id (`Error::NotFound` when none).
    fn trash_entry(&self, id: i64) -> Result<TrashEntry>;

    /// Puts a trash entry back exactly where it was. `Error::NotFound` when none.
    fn restore(&self, trash_id: i64, by: &Actor) -> Result<TrashEntry>;

    /// Deletes a trash entry's rows for good (files, their aliases; a couple with its sessions).
    fn purge(&self, trash_id: i64, by: &Actor) -> Result<Purged>;

    /// One page of garbage: blobs with an id above `after` that no file row references (live or in the trash)
    /// and that no unfinished session's item nor any ingest entry names, by id, at most `limit`.
    fn garbage(&self, after: i64, limit: u32) -> Result<Vec<Garbage>>;

    /// Which of `hashes` something may still need: a blob row, an item of a session that is not completed,
    /// cancelled or failed, or an ingest entry. What `gc` must not delete from the store.
    fn needed_hashes(&self, hashes: &[String]) -> Result<std::collections::HashSet<String>>;

    /// Deletes the rows of these blobs that are still garbage in one transaction; returns the hashes deleted.
    fn forget_blobs(&self, hashes: &[String]) -> Result<Vec<String>>;

    /// Holds the catalog's write lock while `remove` is called for each of `hashes` that nothing needs (checked
    /// under the lock): an import records an item's hash before it lands or relies on a blob, and that record
    /// waits for the lock, so no blob an import is landing is removed. Returns the hashes removed.
    fn remove_unneeded(&self, hashes: &[String], remove: &mut dyn FnMut(&str) -> Result<()>) -> Result<Vec<String>>;
}

/// What an import writes as it goes (`ingest`): sessions and their status, the scanned items, copies and their
/// checkpoints, salvage damage, recounts, duplicate checks, and the couple leases that keep one import per
/// couple.
///
/// Contract: each method is atomic on its own (`insert_items`, `items_copied` and `end_item` are one
/// transaction each); none spans calls except [`Finalize`]. On return the change is committed and visible to
/// every other connection; it survives a crash of the process, and a power loss too once
/// [`ImportLog::set_durable_commits`] asked for it. A transient error left nothing changed and may be retried; a
/// `disk_full` one is the catalog failing to grow (the import pauses as for ENOSPC).
pub trait ImportLog {
    /// Creates a pending import session; returns its id.
    #[allow(clippy::too_many_arguments)]
    fn create_session(
        &self,
        couple_id: i64,
        footage_type: Option<FootageType>,
        camera_id: Option<i64>,
        duplicates: DuplicateAction,
        source: &str,
        source_paths: &[Vec<u8>],
        source_id: Option<i64>,
        salvage: bool,
    ) -> Result<i64>;

    /// The newest session of a couple that is neither completed nor failed.
    fn unfinished_session_of(&self, couple_id: i64) -> Result<Option<i64>>;

    /// Moves a session to `status` (with its error); a final status also ends it for resuming. An open session
    /// cancelled for good ([`ImportLog::cancel_session`]) stays so, whatever status a run still writes.
    fn set_session_status(&self, id: i64, status: SessionStatus, error: Option<&str>) -> Result<()>;

    /// Sets (or clears) the error of a session without touching its status: what went wrong in a session that
    /// goes on (a commit in the ingest directory that failed).
    fn set_session_error(&self, id: i64, error: Option<&str>) -> Result<()>;

    /// Records the check of the card's on-set ASC MHL history: a one-line summary and the problems as JSON.
    fn set_onset_manifest(&self, id: i64, summary: &str, problems_json: &str) -> Result<()>;

    /// Starts a run of a session (a first run or a resume): speed and ETA are measured from here. What is not this
    /// run's work is counted in `run_bytes_start`: the bytes processed so far (duplicates aside) and the copies
    /// earlier runs kept in `tmp/` (whole, or up to their checkpoint), which `status` sees as in flight.
    fn start_run(&self, id: i64) -> Result<()>;

    /// Ends a session for good (`session cancel`): it is never resumed; what it finished stays catalogued.
    fn cancel_session(&self, id: i64) -> Result<()>;

    /// Marks a session that a process runs as cancelled for good, as [`ImportLog::cancel_session`] would, but only
    /// while it is still open (not completed, failed or marked already): true when it was marked. The process
    /// running it watches for the mark, stops and ends it.
    fn request_cancel(&self, id: i64) -> Result<bool>;

    /// Makes a finished session's failed files pending again, for `resume` to retry them; returns how many.
    fn reset_failed_items(&self, id: i64) -> Result<usize>;

    /// Commits of this connection wait for the disk (`synchronous=FULL`) when `durable`: a post-import delete or
    /// move of the source acts only on what a power loss cannot take back.
    fn set_durable_commits(&self, durable: bool) -> Result<()>;

    /// Recomputes a session's counters from its items (the items are the truth).
    fn recount_session(&self, id: i64) -> Result<()>;

    /// Records a scan: all items of a session in one transaction, replacing any earlier partial scan.
    fn insert_items(&mut self, session_id: i64, items: &[NewItem]) -> Result<()>;

    /// The newest item of a session at `path` that has not ended (pending, copied or stored), if any: the
    /// ingest directory fails the item of a commit that did not go through.
    fn unfinished_item_at(&self, session_id: i64, path: &[u8]) -> Result<Option<Item>>;

    /// Moves an item to a non-terminal state (hash known, or validated into objects/).
    fn set_item_state(&self, id: i64, state: ItemState, hash: Option<&str>) -> Result<()>;

    /// Records copies in `tmp/`, in one transaction: `(item id, hash, size, mtime_ns)` each, the size and mtime
    /// the source had while it was copied.
    fn items_copied(&mut self, copies: &[(i64, &str, u64, i64)]) -> Result<()>;

    /// Records the ranges of a salvaged copy that could not be read (JSON), with the copy.
    fn set_item_damage(&self, id: i64, bad_ranges: Option<&str>) -> Result<()>;

    /// Records that the first `offset` bytes of an item's partial copy are durable in `tmp/`, with the size and
    /// mtime the source had (a resume continues only from the same version of the file); `None` forgets it.
    fn set_item_checkpoint(&self, id: i64, checkpoint: Option<(u64, u64, i64)>) -> Result<()>;

    /// Forgets a hash computed from an older version of the source.
    fn clear_item_hash(&self, id: i64) -> Result<()>;

    /// Sets the hash of an item without changing its state (a source hashed to find duplicates).
    fn set_item_hash(&self, id: i64, hash: &str) -> Result<()>;

    /// Gives a catalogued blob that has no checksums (stored before they were kept) these, read with its hash
    /// just now (a duplicate found by content). True when it had none; false too for a blob not catalogued.
    fn fill_blob_sums(&self, hash: &str, sums: &Sums) -> Result<bool>;

    /// Ends an item as failed or duplicate and counts it, in one transaction.
    fn end_item(&mut self, item: &Item, state: ItemState, error: Option<&str>) -> Result<()>;

    /// Sizes of every file already in a couple: the candidates for duplicate detection.
    fn couple_sizes(&self, couple_id: i64) -> Result<std::collections::HashSet<u64>>;

    /// True when the couple has a file of this (healthy) content: it would be a duplicate.
    fn couple_has_blob(&self, couple_id: i64, hash: &str) -> Result<bool>;

    /// True when this source's file (same relative path, size and mtime) is already catalogued in the couple:
    /// the quick check that lets a network pass skip what it imported before without reading it again.
    fn already_imported(&self, couple_id: i64, source: &str, rel: &[u8], size: u64, mtime_ns: i64) -> Result<bool>;

    /// What earlier sessions of a network source already dealt with: (relative path, size, mtime) of items that
    /// ended done, duplicate or failed, and of every item of a session still open (a resume deals with those). A
    /// pass that finds nothing outside this set (and nothing already imported) has no new work.
    fn source_items_seen(&self, source_id: i64) -> Result<std::collections::HashSet<(Vec<u8>, u64, i64)>>;

    /// Starts a transaction for finalizing a group of items (see [`Finalize`]). It takes the catalog's write
    /// lock at once (SQLite: `BEGIN IMMEDIATE`), so nothing it reads can change under it before it commits.
    fn begin_finalize(&mut self) -> Result<Box<dyn Finalize + '_>>;

    /// Tries to take the couple's lease (one import per couple; commits of the ingest directory take it too);
    /// `None` while another process, or another lease of this one, holds it. Released when the lease is
    /// dropped or its process dies. SQLite: a `flock` on `<archive>/locks/couple-<id>.lock`.
    fn try_lock_couple(&self, couple_id: i64) -> Result<Option<CoupleLease>>;

    /// The note the holder of the couple's lease wrote (its session id), if one can be read. Also answers for
    /// a lease no longer held (the last note written); ask [`ImportLog::couple_lock_held`] to tell.
    fn couple_lock_holder(&self, couple_id: i64) -> Option<String>;

    /// Whether someone holds the couple's lease now: `None` when the backend cannot tell.
    fn couple_lock_held(&self, couple_id: i64) -> Option<bool>;
}

/// The archive's registry: couples, cameras, network sources and their event logs (`cli`, `serve`), and the
/// catalog backup.
///
/// Contract: each method is atomic and committed on return; errors as in [`ImportLog`].
pub trait Registry {
    /// Adds a couple; returns its id.
    fn add_couple(&self, display_name: &str, event_date: &str, folder_name: &str) -> Result<i64>;

    /// True when a couple already has this folder name.
    fn folder_name_taken(&self, folder_name: &str) -> Result<bool>;

    /// Adds a camera; returns its id.
    fn add_camera(&self, c: &NewCamera) -> Result<i64>;

    /// True when a camera already has this slug.
    fn camera_slug_taken(&self, slug: &str) -> Result<bool>;

    /// Corrects a couple's display name and event date (its folder, and so every path, stays), with its
    /// [`AuditEvent`], in one transaction. `Error::NotFound` when no couple has this id.
    fn rename_couple(&self, couple_id: i64, display_name: &str, event_date: &str, by: &Actor) -> Result<()>;

    /// Corrects a camera's display name (its slug, and so every path, stays), with its [`AuditEvent`], in one
    /// transaction. `Error::NotFound` when no camera has this id.
    fn rename_camera(&self, camera_id: i64, name: &str, by: &Actor) -> Result<()>;

    /// Appends to the archive-wide audit log (changes made outside this trait: couples and cameras added).
    fn audit(&self, by: &Actor, action: &str, couple_id: Option<i64>, summary: &str) -> Result<()>;

    /// Adds a network source; returns its id.
    fn add_source(&self, n: &NewNetworkSource) -> Result<i64>;

    /// Every network source, by id.
    fn sources(&self) -> Result<Vec<NetworkSource>>;

    /// The network source with this id (`Error::NotFound` when none).
    fn source(&self, id: i64) -> Result<NetworkSource>;

    /// Enables or disables a network source.
    fn set_source_enabled(&self, id: i64, enabled: bool) -> Result<()>;

    /// Records the connection state; `failures` None leaves the counter, Some(0) resets it.
    fn set_source_state(&self, id: i64, state: &str, failures: Option<i64>, error: Option<&str>) -> Result<()>;

    /// Records that a source was scanned now.
    fn touch_source_scan(&self, id: i64) -> Result<()>;

    /// Replaces what may change of a network source (path, credentials, couple, routing, post-import action,
    /// duplicates) in one statement; its connection state, history and enabled flag stay. `Error::NotFound`
    /// when there is no such source.
    fn update_source(&self, id: i64, s: &SourceSettings) -> Result<()>;

    /// Removes a network source (`Error::NotFound` when none).
    fn remove_source(&self, id: i64) -> Result<()>;

    /// Replaces the stored credentials (`password_enc`, `credential_key`) of these sources in one transaction:
    /// all or none. `Error::Secret` (nothing written) when a source is gone or its credential is no longer what
    /// the change expects (another process changed it meanwhile: read again and retry).
    fn replace_source_credentials(&self, changes: &[CredentialChange]) -> Result<()>;

    /// This catalog's identity: a random id made on first use and kept with the catalog (`catalog copy` copies
    /// it), the same for every seat of a shared catalog. Names the catalog's entries in an OS keyring and salts
    /// the key derived from a passphrase.
    fn catalog_id(&self) -> Result<String>;

    /// The value kept under `name` in the catalog's small name/value table (`catalog_info`, copied by `catalog
    /// copy`), or `None`. Holds only what may be read by every seat: ids, and wrapped keys (never a key in clear),
    /// such as the encrypted vault's data key ([`VAULT_KEY_INFO`]).
    fn info(&self, name: &str) -> Result<Option<String>>;

    /// Sets `name` to `value` only when its value is still `expected` (`None`: when it has none), in one
    /// statement; returns whether it wrote (false: another process changed it meanwhile, read again).
    fn set_info(&self, name: &str, value: &str, expected: Option<&str>) -> Result<bool>;

    /// Appends to a network source's event log.
    fn add_event(&self, source_id: i64, session_id: Option<i64>, level: &str, message: &str) -> Result<()>;

    /// A network source's event log, oldest first.
    fn events(&self, source_id: i64) -> Result<Vec<SourceEvent>>;

    /// The newest warnings and errors of every source, newest first.
    fn recent_problems(&self, limit: u32) -> Result<Vec<SourceEvent>>;

    /// Copies the catalog to `dest` with SQLite's online backup: a consistent snapshot taken while other
    /// connections keep reading and writing (WAL readers do not block writers). The copy is written next to
    /// `dest` (0600), checked (`PRAGMA quick_check`), switched to a self-contained rollback journal, fsynced and
    /// renamed into place. An existing `dest` is never overwritten. Backends that cannot copy themselves into
    /// a file answer `Error::Invalid`.
    fn backup_to(&self, dest: &Path) -> Result<()>;
}

/// What `verify` (and a healing import) records about blob health: verified times, damage or loss, healing,
/// and the archive's event log that tells the mount what changed.
///
/// Contract: each method is atomic and committed on return; a health change and its event land together.
pub trait Health {
    /// Records that these blobs were read back whole at `at` (seconds since the epoch), in one transaction.
    fn mark_verified(&self, hashes: &[String], at: i64) -> Result<()>;

    /// Records the start of a scrub run (`verify` or `schedule`) at `at`; returns its id.
    fn start_scrub(&self, trigger: &str, at: i64) -> Result<i64>;

    /// Records how a scrub run ended: its counters, `finished_at`, `complete` and `error` (by `run.id`).
    fn finish_scrub(&self, run: &ScrubRun) -> Result<()>;

    /// Records what `verify` found wrong with a blob (`damaged` or `missing`), with an event when that is news.
    fn set_blob_unhealthy(&self, hash: &str, health: &str, problem: &str) -> Result<bool>;

    /// [`Health::set_blob_unhealthy`] for many blobs `(hash, health, problem)` in one transaction; returns how
    /// many were news.
    fn set_blobs_unhealthy(&self, found: &[(String, String, String)]) -> Result<usize>;

    /// Marks a blob whole again (its file was replaced by a verified copy, or found whole by `verify`), with an
    /// event naming how.
    fn heal_blob(&self, hash: &str, session_id: Option<i64>, how: &str) -> Result<()>;

    /// Appends to the archive's event log.
    fn event(
        &self,
        kind: &str,
        hash: Option<&str>,
        file_id: Option<i64>,
        session_id: Option<i64>,
        message: &str,
    ) -> Result<()>;
}

/// The rows of the writable ingest directory (`ingest_dir`): its entries, the items its commits add one at a
/// time, and the sessions a crash left open.
///
/// Contract: each method is atomic and committed on return; errors as in [`ImportLog`].
pub trait IngestEntries {
    /// Every entry of the ingest directory, by id.
    fn ingest_entries(&self) -> Result<Vec<IngestEntry>>;

    /// Adds an entry (a directory, or a file being staged); returns its id.
    fn add_ingest_entry(&self, e: &IngestEntry) -> Result<i64>;

    /// Writes an entry's mutable fields back.
    fn update_ingest_entry(&self, e: &IngestEntry) -> Result<()>;

    /// Removes an entry of the ingest directory.
    fn remove_ingest_entry(&self, id: i64) -> Result<()>;

    /// Adds one item to an existing session (the ingest directory commits files one at a time).
    fn add_item(&self, session_id: i64, it: &NewItem, sidecar_of: Option<i64>) -> Result<i64>;

    /// The item with this id, if any.
    fn item(&self, id: i64) -> Result<Option<Item>>;

    /// Sessions that were left open (the ingest directory's, after a crash).
    fn unfinished_sessions_with_source_prefix(&self, prefix: &str) -> Result<Vec<i64>>;
}

/// One finalize transaction (from [`ImportLog::begin_finalize`]): the blobs, files and item states of one group
/// of items (a clip and its sidecars) land together or not at all.
///
/// Contract: reads inside see the transaction's own writes; nothing is visible to other connections until
/// [`Finalize::commit_for`] returns Ok, after which all of it is (and durable as the connection's commits are).
/// Dropping it without committing, or a failed commit, rolls everything back. While it is open it holds the
/// catalog's write lock: keep it short.
pub trait Finalize {
    /// See [`ReadCatalog::blob_health`].
    fn blob_health(&self, hash: &str) -> Result<Option<String>>;

    /// See [`Health::heal_blob`].
    fn heal_blob(&self, hash: &str, session_id: Option<i64>, how: &str) -> Result<()>;

    /// A salvaged (damaged) file of the couple that came from the same original path with the same size: what a
    /// later clean read of that file replaces.
    fn damaged_file_like(&self, couple_id: i64, original_path: &[u8], size: u64) -> Result<Option<i64>>;

    /// Replaces a salvaged file's content with a clean verified copy: same file, path and inode, new blob; an event
    /// tells the mount to drop what it cached. `sums` go to the blob's row as in [`Finalize::insert_file`].
    fn replace_damaged(
        &mut self,
        file_id: i64,
        hash: &str,
        size: u64,
        session_id: i64,
        sums: Option<&Sums>,
    ) -> Result<()>;

    /// A hint before the stored items of a transaction are catalogued: the content hashes that may be asked
    /// of [`couple_has_blob`](Finalize::couple_has_blob) for this couple. A backend whose questions cost a
    /// round trip may read the answers at once; later answers must still count this transaction's own writes
    /// (a file inserted, a blob healed, a damaged file replaced). The default does nothing.
    fn prefetch_duplicates(&self, _couple_id: i64, _hashes: &[&str]) -> Result<()> {
        Ok(())
    }

    /// True when the couple has a file of this (healthy) content: it would be a duplicate.
    fn couple_has_blob(&self, couple_id: i64, hash: &str) -> Result<bool>;

    /// See [`ImportLog::fill_blob_sums`].
    fn fill_sums(&self, hash: &str, sums: &Sums) -> Result<bool>;

    /// True when a name key is taken in the directory.
    fn name_taken(&self, couple_id: i64, ft: FootageType, camera_id: Option<i64>, key: &str) -> Result<bool>;

    /// Every camera, by slug.
    fn cameras(&self) -> Result<Vec<Camera>>;

    /// Adds a camera; returns its id.
    fn add_camera(&self, c: &NewCamera) -> Result<i64>;

    /// True when a camera already has this slug.
    fn camera_slug_taken(&self, slug: &str) -> Result<bool>;

    /// Where a catalogued file sits: its camera and footage type.
    fn file_placement(&self, file_id: i64) -> Result<Option<(Option<i64>, FootageType)>>;

    /// The display name of an already catalogued file.
    fn display_name(&self, file_id: i64) -> Result<Option<Vec<u8>>>;

    /// The state of an item (a sidecar's clip, which may have ended in an earlier transaction).
    fn item_state(&self, item_id: i64) -> Result<Option<ItemState>>;

    /// The file an item was catalogued as, if it is done.
    fn item_file(&self, item_id: i64) -> Result<Option<i64>>;

    /// Catalogues a file (and its blob, if new); returns the file's id.
    fn insert_file(&mut self, f: &NewFile) -> Result<i64>;

    /// Marks an item done (catalogued as `file_id`) and counts it.
    fn item_done(&mut self, item: &Item, file_id: i64) -> Result<()>;

    /// Ends an item as duplicate or failed inside the transaction.
    fn item_end(&mut self, item: &Item, state: ItemState, error: Option<&str>) -> Result<()>;

    /// Adds the counted progress to the session and commits everything, durably once it returns (as durable as
    /// [`ImportLog::set_durable_commits`] asked).
    fn commit_for(self: Box<Self>, session_id: i64) -> Result<()>;
}

/// The error of a credential change that found the source changed (or gone) meanwhile.
pub(crate) fn credential_changed(id: i64) -> Error {
    Error::Secret(format!(
        "the credential of source {id} changed (or the source went) while it was being replaced; nothing was \
         written: run the command again"
    ))
}
