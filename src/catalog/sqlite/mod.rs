//! The SQLite catalog: the database `catalog.db` in the archive, the default (and today the only) backend. This
//! is the only place in Nightfox that speaks SQL or knows rusqlite: the connection and its pragmas (WAL,
//! `synchronous`, foreign keys, a 30 s busy timeout), the schema and its migrations (`schema.rs`, run at open,
//! versioned by `PRAGMA user_version`), one file per trait of `catalog` (`read.rs`, `import_log.rs`,
//! `finalize.rs`, `registry.rs`, `health.rs`, `ingest_entries.rs`) and the couple leases (`lease.rs`, flock
//! files in the archive's `locks/`). Names and paths are stored as raw bytes (BLOB) so that names that are not
//! valid UTF-8 survive unchanged.

use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};

use super::types::*;
use super::{CatalogBackend, CatalogConn};
use crate::error::{Error, IoContext, Result};

/// The columns `camera_from_row` reads, in its order (a macro, so `concat!` can build queries from it).
macro_rules! camera_columns {
    () => {
        "c.id, c.slug, c.name, c.footage_type, c.make, c.model, c.serial, c.auto, c.merged_into"
    };
}

/// The columns `tree_file_from_row` reads, in its order, over `files f` and `blobs b`.
macro_rules! tree_file_columns {
    () => {
        "f.id, b.id, f.couple_id, f.footage_type, f.camera_id, f.blob_hash, b.size, f.display_name, \
         f.source_mtime_ns, f.imported_at, f.captured_at, f.bad_ranges IS NOT NULL"
    };
}

mod copy;
mod finalize;
mod health;
mod import_log;
mod ingest_entries;
mod jobs;
mod lease;
mod lifecycle;
mod read;
mod registry;
mod schema;
mod trash;

#[cfg(test)]
mod tests;

use schema::{MIGRATIONS, SCHEMA_VERSION};

/// Extension to attach catalog context to rusqlite results.
pub(super) trait CatalogContext<T> {
    fn ctx(self, context: &str) -> Result<T>;
}

impl<T> CatalogContext<T> for std::result::Result<T, rusqlite::Error> {
    fn ctx(self, context: &str) -> Result<T> {
        self.map_err(|source| catalog_error(context, source))
    }
}

/// A rusqlite error as an [`Error::Catalog`]: SQLITE_BUSY and SQLITE_LOCKED are transient (another connection
/// held the database past the busy timeout), SQLITE_FULL is a full disk (the catalog or its WAL could not grow).
pub(super) fn catalog_error(context: &str, source: rusqlite::Error) -> Error {
    let code = source.sqlite_error_code();
    Error::Catalog {
        context: context.to_string(),
        transient: matches!(code, Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)),
        disk_full: code == Some(rusqlite::ErrorCode::DiskFull),
        source: Box::new(source),
    }
}

/// The SQLite backend: a database file, and the directory of the couple leases (the archive's `locks/`).
#[derive(Debug)]
pub(super) struct SqliteBackend {
    path: PathBuf,
    locks: PathBuf,
}

impl SqliteBackend {
    /// The backend of the database at `path`; nothing is opened until [`CatalogBackend::connect`].
    pub(super) fn new(path: PathBuf, locks: PathBuf) -> Self {
        SqliteBackend { path, locks }
    }

    /// Creates a new catalog file with mode 0600 and the current schema.
    pub(super) fn create(&self) -> Result<()> {
        OpenOptions::new().write(true).create_new(true).mode(0o600).open(&self.path).at(&self.path)?;
        SqliteConn::open(&self.path, &self.locks).map(drop)
    }
}

impl CatalogBackend for SqliteBackend {
    fn describe(&self) -> String {
        format!("sqlite://{}", self.path.display())
    }

    fn connect(&self) -> Result<Box<dyn CatalogConn>> {
        Ok(Box::new(SqliteConn::open(&self.path, &self.locks)?))
    }
}

/// One connection to the catalog. Not `Sync`: share it behind a mutex or open one per thread.
pub(super) struct SqliteConn {
    conn: Connection,
    /// The database file (its mtime is [`super::ReadCatalog::changed_at`]).
    path: PathBuf,
    /// Where the couple leases live: `<archive>/locks/`.
    locks: PathBuf,
}

impl SqliteConn {
    /// Opens an existing catalog and runs any pending migrations.
    pub(super) fn open(path: &Path, locks: &Path) -> Result<Self> {
        let conn = Connection::open(path).ctx("open catalog.db")?;
        conn.busy_timeout(Duration::from_secs(30)).ctx("set busy timeout")?;
        conn.pragma_update(None, "journal_mode", "WAL").ctx("enable WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL").ctx("set synchronous")?;
        conn.pragma_update(None, "foreign_keys", "ON").ctx("enable foreign keys")?;
        let mut cat = SqliteConn { conn, path: path.to_path_buf(), locks: locks.to_path_buf() };
        cat.migrate()?;
        Ok(cat)
    }

    fn migrate(&mut self) -> Result<()> {
        let version: i64 =
            self.conn.pragma_query_value(None, "user_version", |r| r.get(0)).ctx("read schema version")?;
        if version > SCHEMA_VERSION {
            return Err(Error::SchemaTooNew { found: version, supported: SCHEMA_VERSION });
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).ctx("begin migration")?;
            tx.execute_batch(sql).ctx(&format!("migrate to schema {}", i + 1))?;
            tx.pragma_update(None, "user_version", (i + 1) as i64).ctx("record schema version")?;
            tx.commit().ctx("commit migration")?;
        }
        Ok(())
    }

    /// Sets how long a statement waits for a busy database (tests force SQLITE_BUSY with zero).
    #[cfg(test)]
    pub(super) fn set_busy_timeout(&self, d: Duration) -> Result<()> {
        self.conn.busy_timeout(d).ctx("set busy timeout")
    }

    /// The file of a couple's lease: `locks/couple-<id>.lock`, the same file every nightfox since the first uses.
    fn couple_lock_path(&self, couple_id: i64) -> PathBuf {
        self.locks.join(format!("couple-{couple_id}.lock"))
    }
}

/// A couple with its totals (kept by triggers in `couple_totals`, see schema 6).
const COUPLE_SELECT: &str = "SELECT c.id, c.display_name, c.event_date, c.folder_name, c.created_at,
        IFNULL(t.files, 0), IFNULL(t.bytes, 0)
     FROM couples c LEFT JOIN couple_totals t ON t.couple_id = c.id";

fn couple_from_row(r: &Row) -> rusqlite::Result<Couple> {
    Ok(Couple {
        id: r.get(0)?,
        display_name: r.get(1)?,
        event_date: r.get(2)?,
        folder_name: r.get(3)?,
        created_at: r.get(4)?,
        file_count: r.get(5)?,
        total_bytes: r.get(6)?,
    })
}

fn camera_from_row(r: &Row) -> rusqlite::Result<Camera> {
    let t: String = r.get(3)?;
    Ok(Camera {
        id: r.get(0)?,
        slug: r.get(1)?,
        name: r.get(2)?,
        footage_type: FootageType::parse(&t).unwrap_or(FootageType::Modern),
        make: r.get(4)?,
        model: r.get(5)?,
        serial: r.get(6)?,
        auto: r.get(7)?,
        merged_into: r.get(8)?,
    })
}

const SESSION_SELECT: &str = "SELECT s.id, s.couple_id, c.folder_name, s.status, s.last_step, s.can_resume,
        s.footage_type, s.camera_id, s.duplicates, s.source, s.source_paths, s.files_total, s.files_processed,
        s.files_duplicate, s.files_error, s.bytes_total, s.bytes_processed, s.bytes_duplicate, s.bytes_error,
        s.error, s.created_at, s.updated_at, s.finished_at, s.type_explicit, s.source_id, s.salvage,
        s.run_started_at, s.run_bytes_start, s.onset_manifest, s.onset_problems
     FROM import_sessions s JOIN couples c ON c.id = s.couple_id";

fn session_from_row(r: &Row) -> rusqlite::Result<Session> {
    let status: String = r.get(3)?;
    let ft: String = r.get(6)?;
    let dup: String = r.get(8)?;
    let paths: Vec<u8> = r.get(10)?;
    Ok(Session {
        id: r.get(0)?,
        couple_id: r.get(1)?,
        couple: r.get(2)?,
        status: SessionStatus::parse(&status),
        last_step: r.get(4)?,
        can_resume: r.get(5)?,
        footage_type: FootageType::parse(&ft).unwrap_or(FootageType::Modern),
        type_explicit: r.get(23)?,
        source_id: r.get(24)?,
        camera_id: r.get(7)?,
        duplicates: DuplicateAction::parse(&dup).unwrap_or(DuplicateAction::Skip),
        source: r.get(9)?,
        source_paths: split_paths(&paths),
        files_total: r.get(11)?,
        files_processed: r.get(12)?,
        files_duplicate: r.get(13)?,
        files_error: r.get(14)?,
        bytes_total: r.get(15)?,
        bytes_processed: r.get(16)?,
        bytes_duplicate: r.get(17)?,
        bytes_error: r.get(18)?,
        error: r.get(19)?,
        created_at: r.get(20)?,
        updated_at: r.get(21)?,
        finished_at: r.get(22)?,
        salvage: r.get(25)?,
        run_started_at: r.get(26)?,
        run_bytes_start: r.get(27)?,
        onset_manifest: r.get(28)?,
        onset_problems: r.get(29)?,
    })
}

fn item_from_row(r: &Row) -> rusqlite::Result<Item> {
    let state: String = r.get(6)?;
    Ok(Item {
        id: r.get(0)?,
        session_id: r.get(1)?,
        path: r.get(2)?,
        rel_path: r.get(3)?,
        size: r.get::<_, i64>(4)? as u64,
        mtime_ns: r.get(5)?,
        state: ItemState::parse(&state),
        hash: r.get(7)?,
        sidecar_of: r.get(8)?,
        file_id: r.get(9)?,
        error: r.get(10)?,
        bad_ranges: r.get(11)?,
        resume_offset: r.get::<_, Option<i64>>(12)?.map(|v| v as u64),
        healed: r.get(13)?,
        sums: None,
    })
}

/// A file with its blob, joined by the blob's row id (`files.blob_id`, kept by triggers from `blob_hash`).
const FILE_SELECT: &str = "SELECT f.id, f.couple_id, f.footage_type, f.camera_id, f.blob_hash, b.size,
        f.display_name, f.original_path, f.source, f.source_mtime_ns, f.imported_at, f.session_id, f.sidecar_of, b.id, f.captured_at,
        f.bad_ranges
     FROM files f JOIN blobs b ON b.id = f.blob_id";

fn file_from_row(r: &Row) -> rusqlite::Result<FileRow> {
    let ft: String = r.get(2)?;
    Ok(FileRow {
        id: r.get(0)?,
        couple_id: r.get(1)?,
        footage_type: FootageType::parse(&ft).unwrap_or(FootageType::Modern),
        camera_id: r.get(3)?,
        blob_hash: r.get(4)?,
        size: r.get::<_, i64>(5)? as u64,
        display_name: r.get(6)?,
        original_path: r.get(7)?,
        source: r.get(8)?,
        source_mtime_ns: r.get(9)?,
        imported_at: r.get(10)?,
        session_id: r.get(11)?,
        sidecar_of: r.get(12)?,
        blob_id: r.get(13)?,
        captured_at: r.get(14)?,
        bad_ranges: r.get(15)?,
    })
}

/// A file as the tree lists it (`TreeFile`): no paths, no source.
const TREE_FILE_SELECT: &str =
    concat!("SELECT ", tree_file_columns!(), " FROM files f JOIN blobs b ON b.id = f.blob_id");

fn tree_file_from_row(r: &Row) -> rusqlite::Result<TreeFile> {
    let ft = r.get_ref(3)?.as_str().unwrap_or("modern");
    Ok(TreeFile {
        id: r.get(0)?,
        blob_id: r.get(1)?,
        couple_id: r.get(2)?,
        footage_type: FootageType::parse(ft).unwrap_or(FootageType::Modern),
        camera_id: r.get(4)?,
        blob_hash: r.get(5)?,
        size: r.get::<_, i64>(6)? as u64,
        display_name: r.get(7)?,
        source_mtime_ns: r.get(8)?,
        imported_at: r.get(9)?,
        captured_at: r.get(10)?,
        damaged: r.get(11)?,
    })
}

const SOURCE_SELECT: &str = "SELECT s.id, s.protocol, s.host, s.port, s.mount_port, s.share, s.path,
        s.username, s.password_enc, s.couple_id, c.folder_name, s.footage_type, s.camera_id, s.enabled,
        s.post_import, s.duplicates, s.connection_state, s.consecutive_failures, s.last_error, s.last_scan_at,
        s.created_at, s.credential_key
     FROM network_sources s JOIN couples c ON c.id = s.couple_id";

fn source_from_row(r: &Row) -> rusqlite::Result<NetworkSource> {
    let pw: Vec<u8> = r.get(8)?;
    let key: Option<String> = r.get(21)?;
    let ft: Option<String> = r.get(11)?;
    let dup: String = r.get(15)?;
    Ok(NetworkSource {
        id: r.get(0)?,
        protocol: r.get(1)?,
        host: r.get(2)?,
        port: r.get(3)?,
        mount_port: r.get(4)?,
        share: r.get(5)?,
        path: r.get(6)?,
        username: r.get(7)?,
        has_password: !pw.is_empty() || key.is_some(),
        password_enc: pw,
        credential_key: key,
        couple_id: r.get(9)?,
        couple: r.get(10)?,
        footage_type: ft.and_then(|t| FootageType::parse(&t).ok()),
        camera_id: r.get(12)?,
        enabled: r.get(13)?,
        post_import: r.get(14)?,
        duplicates: DuplicateAction::parse(&dup).unwrap_or(DuplicateAction::Skip),
        connection_state: r.get(16)?,
        consecutive_failures: r.get(17)?,
        last_error: r.get(18)?,
        last_scan_at: r.get(19)?,
        created_at: r.get(20)?,
    })
}
/// Runs a query and collects its rows, with one context for every error.
fn rows<T, P: rusqlite::Params>(
    conn: &Connection,
    sql: &str,
    params: P,
    f: impl FnMut(&Row) -> rusqlite::Result<T>,
    ctx: &str,
) -> Result<Vec<T>> {
    let mut st = conn.prepare_cached(sql).ctx(ctx)?;
    let rows = st.query_map(params, f).ctx(ctx)?;
    rows.collect::<rusqlite::Result<Vec<_>>>().ctx(ctx)
}

const CAMERA_SELECT: &str = concat!("SELECT ", camera_columns!(), " FROM cameras c");

fn cameras_on(conn: &Connection) -> Result<Vec<Camera>> {
    rows(conn, &format!("{CAMERA_SELECT} ORDER BY c.slug"), [], camera_from_row, "list cameras")
}

fn insert_camera(conn: &Connection, c: &NewCamera) -> Result<i64> {
    conn.execute(
        "INSERT INTO cameras (slug, name, footage_type, make, model, serial, created_at, auto)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![c.slug, c.name, c.footage_type.as_str(), c.make, c.model, c.serial, now(), c.auto],
    )
    .ctx("add camera")?;
    Ok(conn.last_insert_rowid())
}

fn slug_taken(conn: &Connection, slug: &str) -> Result<bool> {
    conn.query_row(
        "SELECT EXISTS(SELECT 1 FROM cameras WHERE slug = ?1) OR EXISTS(SELECT 1 FROM camera_aliases WHERE slug = ?1)",
        [slug],
        |r| r.get(0),
    )
    .ctx("check camera slug")
}

fn has_blob_in_couple(conn: &Connection, couple_id: i64, hash: &str) -> Result<bool> {
    conn.query_row(
        "SELECT EXISTS(SELECT 1 FROM blobs b JOIN files f ON f.blob_id = b.id
           WHERE b.hash = ?2 AND f.couple_id = ?1 AND b.health = 'ok' AND f.trash_id IS NULL)",
        params![couple_id, hash],
        |r| r.get(0),
    )
    .ctx("check duplicate")
}

/// The columns of a [`BlobRow`], in [`blob_from_row`]'s order.
const BLOB_COLUMNS: &str = "hash, size, stored_at, verified_at, xxh64, xxh128";

fn blob_from_row(r: &Row) -> rusqlite::Result<BlobRow> {
    Ok(BlobRow {
        hash: r.get(0)?,
        size: r.get::<_, i64>(1)? as u64,
        stored_at: r.get(2)?,
        verified_at: r.get(3)?,
        xxh64: r.get(4)?,
        xxh128: r.get(5)?,
    })
}

/// Records a blob just landed and verified (nothing when it is catalogued already), with its checksums; a
/// blob already there that has none gets these (see [`fill_sums_on`]).
fn insert_blob_on(conn: &Connection, hash: &str, size: u64, sums: Option<&Sums>) -> Result<()> {
    conn.prepare_cached(
        "INSERT OR IGNORE INTO blobs (hash, size, stored_at, verified_at, xxh64, xxh128)
         VALUES (?1, ?2, ?3, ?3, ?4, ?5)",
    )
    .ctx("insert blob")?
    .execute(params![hash, size as i64, now(), sums.map(|s| &s.xxh64), sums.map(|s| &s.xxh128)])
    .ctx("insert blob")?;
    match sums {
        Some(s) => fill_sums_on(conn, hash, s).map(|_| ()),
        None => Ok(()),
    }
}

/// Gives a catalogued blob that has no checksums (stored before they were kept) these, read with its hash just
/// now. True when it had none.
fn fill_sums_on(conn: &Connection, hash: &str, sums: &Sums) -> Result<bool> {
    let n = conn
        .prepare_cached("UPDATE blobs SET xxh64 = ?2, xxh128 = ?3 WHERE hash = ?1 AND xxh64 IS NULL")
        .ctx("record blob checksums")?
        .execute(params![hash, sums.xxh64, sums.xxh128])
        .ctx("record blob checksums")?;
    Ok(n > 0)
}

fn blob_health_on(conn: &Connection, hash: &str) -> Result<Option<String>> {
    conn.prepare_cached("SELECT health FROM blobs WHERE hash = ?1")
        .ctx("blob health")?
        .query_row([hash], |r| r.get(0))
        .optional()
        .ctx("blob health")
}

fn heal_blob_on(conn: &Connection, hash: &str, session_id: Option<i64>, how: &str) -> Result<()> {
    let n = conn
        .execute(
            "UPDATE blobs SET health = 'ok', problem = NULL, verified_at = ?2 WHERE hash = ?1 AND health <> 'ok'",
            params![hash, now()],
        )
        .ctx("heal blob")?;
    if n > 0 {
        add_archive_event(conn, "blob_healed", Some(hash), None, session_id, how)?;
    }
    Ok(())
}

fn add_archive_event(
    conn: &Connection,
    kind: &str,
    hash: Option<&str>,
    file_id: Option<i64>,
    session_id: Option<i64>,
    message: &str,
) -> Result<()> {
    conn.execute(
        "INSERT INTO events (at, kind, blob_hash, file_id, session_id, message) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![now(), kind, hash, file_id, session_id, message],
    )
    .ctx("record event")?;
    Ok(())
}

/// An IMMEDIATE transaction on a shared connection: a change that reads the rows it changes first, where a
/// deferred transaction would fail at once (busy snapshot) instead of waiting when another writer commits.
pub(super) fn immediate(conn: &Connection) -> rusqlite::Result<rusqlite::Transaction<'_>> {
    rusqlite::Transaction::new_unchecked(conn, TransactionBehavior::Immediate)
}

/// Records a `lifecycle` archive event (the mount reloads what it cached and forgets `gone`), inside the
/// caller's transaction.
pub(super) fn lifecycle_event(conn: &Connection, message: &str, gone: &[Gone]) -> Result<()> {
    conn.execute(
        "INSERT INTO events (at, kind, message, detail) VALUES (?1, 'lifecycle', ?2, ?3)",
        params![now(), message, Gone::to_json(gone)],
    )
    .ctx("record lifecycle event")?;
    Ok(())
}

fn add_progress(conn: &Connection, session_id: i64, p: Progress) -> Result<()> {
    conn.execute(
        "UPDATE import_sessions SET files_processed = files_processed + ?2, files_duplicate = files_duplicate + ?3,
             files_error = files_error + ?4, bytes_processed = bytes_processed + ?5,
             bytes_duplicate = bytes_duplicate + ?6, bytes_error = bytes_error + ?7, updated_at = ?8
         WHERE id = ?1",
        params![
            session_id,
            p.files_processed,
            p.files_duplicate,
            p.files_error,
            p.bytes_processed,
            p.bytes_duplicate,
            p.bytes_error,
            now()
        ],
    )
    .ctx("count progress")?;
    Ok(())
}
