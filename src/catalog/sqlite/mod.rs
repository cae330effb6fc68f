//! The catalog: the SQLite database (`catalog.db`) that records couples, cameras, blobs, files, import sessions
//! and their items. This module owns the schema, its migrations (run at open, versioned by `PRAGMA user_version`)
//! and every query; no other module writes SQL. Names and paths are stored as raw bytes (BLOB) so that names that
//! are not valid UTF-8 survive unchanged.

use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};
use serde::Serialize;

use crate::error::{CatalogContext, Error, IoContext, Result};

/// Each entry upgrades the schema by one version; `user_version` is the number applied.
const MIGRATIONS: &[&str] = &[
    // 1: the foundation schema.
    r#"
    CREATE TABLE couples (
        id            INTEGER PRIMARY KEY,
        display_name  TEXT NOT NULL,
        event_date    TEXT NOT NULL,
        folder_name   TEXT NOT NULL UNIQUE,
        created_at    INTEGER NOT NULL
    );
    CREATE TABLE cameras (
        id            INTEGER PRIMARY KEY,
        slug          TEXT NOT NULL UNIQUE,
        name          TEXT NOT NULL,
        footage_type  TEXT NOT NULL CHECK (footage_type IN ('modern','dadcam','super8')),
        make          TEXT,
        model         TEXT,
        serial        TEXT,
        created_at    INTEGER NOT NULL
    );
    CREATE TABLE blobs (
        id            INTEGER PRIMARY KEY,
        hash          TEXT NOT NULL UNIQUE CHECK (length(hash) = 64),
        size          INTEGER NOT NULL,
        stored_at     INTEGER NOT NULL,
        verified_at   INTEGER
    );
    CREATE TABLE import_sessions (
        id               INTEGER PRIMARY KEY,
        couple_id        INTEGER NOT NULL REFERENCES couples(id),
        status           TEXT NOT NULL CHECK (status IN ('pending','scanning','hashing','copying','validating',
                                                         'finalizing','completed','cancelled','failed','paused')),
        last_step        TEXT,
        can_resume       INTEGER NOT NULL DEFAULT 1,
        footage_type     TEXT NOT NULL,
        camera_id        INTEGER REFERENCES cameras(id),
        duplicates       TEXT NOT NULL DEFAULT 'skip' CHECK (duplicates IN ('skip','import')),
        source           TEXT NOT NULL,
        source_paths     BLOB NOT NULL,
        files_total      INTEGER NOT NULL DEFAULT 0,
        files_processed  INTEGER NOT NULL DEFAULT 0,
        files_duplicate  INTEGER NOT NULL DEFAULT 0,
        files_error      INTEGER NOT NULL DEFAULT 0,
        bytes_total      INTEGER NOT NULL DEFAULT 0,
        bytes_processed  INTEGER NOT NULL DEFAULT 0,
        bytes_duplicate  INTEGER NOT NULL DEFAULT 0,
        bytes_error      INTEGER NOT NULL DEFAULT 0,
        error            TEXT,
        created_at       INTEGER NOT NULL,
        updated_at       INTEGER NOT NULL,
        finished_at      INTEGER
    );
    CREATE TABLE files (
        id               INTEGER PRIMARY KEY,
        couple_id        INTEGER NOT NULL REFERENCES couples(id),
        footage_type     TEXT NOT NULL CHECK (footage_type IN ('modern','dadcam','super8')),
        camera_id        INTEGER REFERENCES cameras(id),
        blob_hash        TEXT NOT NULL REFERENCES blobs(hash),
        display_name     BLOB NOT NULL,
        name_key         TEXT NOT NULL,
        original_path    BLOB NOT NULL,
        source           TEXT NOT NULL,
        source_mtime_ns  INTEGER NOT NULL,
        imported_at      INTEGER NOT NULL,
        session_id       INTEGER REFERENCES import_sessions(id),
        sidecar_of       INTEGER REFERENCES files(id)
    );
    CREATE UNIQUE INDEX files_dir_key ON files(couple_id, footage_type, IFNULL(camera_id, 0), name_key);
    CREATE INDEX files_dir_name ON files(couple_id, footage_type, IFNULL(camera_id, 0), display_name);
    CREATE INDEX files_blob ON files(blob_hash, couple_id);
    CREATE TABLE import_items (
        id            INTEGER PRIMARY KEY,
        session_id    INTEGER NOT NULL REFERENCES import_sessions(id),
        path          BLOB NOT NULL,
        rel_path      BLOB NOT NULL,
        size          INTEGER NOT NULL,
        mtime_ns      INTEGER NOT NULL,
        state         TEXT NOT NULL CHECK (state IN ('pending','copied','stored','done','duplicate','failed','skipped')),
        hash          TEXT,
        sidecar_of    INTEGER REFERENCES import_items(id),
        file_id       INTEGER REFERENCES files(id),
        error         TEXT,
        updated_at    INTEGER NOT NULL
    );
    CREATE INDEX import_items_session ON import_items(session_id, state);
    "#,
    // 2: routing: capture times, cameras created from metadata, whether an import named its footage type.
    r#"
    ALTER TABLE files ADD COLUMN captured_at INTEGER;
    ALTER TABLE cameras ADD COLUMN auto INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE import_sessions ADD COLUMN type_explicit INTEGER NOT NULL DEFAULT 1;
    "#,
    // 3: network sources (SMB, NFS) and their event log.
    r#"
    CREATE TABLE network_sources (
        id                    INTEGER PRIMARY KEY,
        protocol              TEXT NOT NULL CHECK (protocol IN ('smb','nfs')),
        host                  TEXT NOT NULL,
        port                  INTEGER NOT NULL,
        mount_port            INTEGER,
        share                 TEXT NOT NULL,
        path                  TEXT NOT NULL,
        username              TEXT NOT NULL DEFAULT '',
        password_enc          BLOB NOT NULL DEFAULT x'',
        couple_id             INTEGER NOT NULL REFERENCES couples(id),
        footage_type          TEXT CHECK (footage_type IN ('modern','dadcam','super8')),
        camera_id             INTEGER REFERENCES cameras(id),
        enabled               INTEGER NOT NULL DEFAULT 0,
        post_import           TEXT NOT NULL DEFAULT 'leave',
        duplicates            TEXT NOT NULL DEFAULT 'skip' CHECK (duplicates IN ('skip','import')),
        connection_state      TEXT NOT NULL DEFAULT 'untested',
        consecutive_failures  INTEGER NOT NULL DEFAULT 0,
        last_error            TEXT,
        last_scan_at          INTEGER,
        created_at            INTEGER NOT NULL,
        updated_at            INTEGER NOT NULL
    );
    CREATE TABLE network_source_events (
        id          INTEGER PRIMARY KEY,
        source_id   INTEGER NOT NULL REFERENCES network_sources(id) ON DELETE CASCADE,
        session_id  INTEGER REFERENCES import_sessions(id),
        at          INTEGER NOT NULL,
        level       TEXT NOT NULL,
        message     TEXT NOT NULL
    );
    CREATE INDEX network_source_events_source ON network_source_events(source_id, id);
    ALTER TABLE import_sessions ADD COLUMN source_id INTEGER REFERENCES network_sources(id) ON DELETE SET NULL;
    CREATE INDEX files_source_path ON files(couple_id, original_path);
    "#,
    // 4: the writable ingest directory of the mount: what writers created, as they see it.
    r#"
    CREATE TABLE ingest_entries (
        id          INTEGER PRIMARY KEY,
        couple_id   INTEGER NOT NULL REFERENCES couples(id),
        parent_id   INTEGER REFERENCES ingest_entries(id),
        name        BLOB NOT NULL,
        kind        TEXT NOT NULL CHECK (kind IN ('dir','file')),
        state       TEXT NOT NULL CHECK (state IN ('staging','committed')),
        size        INTEGER NOT NULL DEFAULT 0,
        mtime_ns    INTEGER NOT NULL,
        mode        INTEGER NOT NULL,
        uid         INTEGER NOT NULL,
        gid         INTEGER NOT NULL,
        blob_hash   TEXT,
        file_id     INTEGER REFERENCES files(id),
        updated_at  INTEGER NOT NULL
    );
    CREATE UNIQUE INDEX ingest_entries_name ON ingest_entries(couple_id, IFNULL(parent_id, 0), name);
    "#,
    // 5: real cards. Blob health as `verify` found it (rot, loss) until a verified copy heals it; salvaged files
    // with the ranges that could not be read; partial copies kept for a resume inside a file; the current run of
    // a session (speed and ETA); the archive's own event log (heals, damage), which the mount follows.
    r#"
    ALTER TABLE blobs ADD COLUMN health TEXT NOT NULL DEFAULT 'ok' CHECK (health IN ('ok','damaged','missing'));
    ALTER TABLE blobs ADD COLUMN problem TEXT;
    CREATE INDEX blobs_unhealthy ON blobs(health) WHERE health <> 'ok';
    ALTER TABLE files ADD COLUMN bad_ranges TEXT;
    CREATE INDEX files_damaged ON files(couple_id, original_path) WHERE bad_ranges IS NOT NULL;
    ALTER TABLE import_items ADD COLUMN bad_ranges TEXT;
    ALTER TABLE import_items ADD COLUMN resume_offset INTEGER;
    ALTER TABLE import_items ADD COLUMN healed INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE import_sessions ADD COLUMN salvage INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE import_sessions ADD COLUMN run_started_at INTEGER;
    ALTER TABLE import_sessions ADD COLUMN run_bytes_start INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE events (
        id          INTEGER PRIMARY KEY,
        at          INTEGER NOT NULL,
        kind        TEXT NOT NULL,
        blob_hash   TEXT,
        file_id     INTEGER,
        session_id  INTEGER,
        message     TEXT NOT NULL
    );
    "#,
];

/// Current schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// Nanoseconds since the epoch of a SystemTime (negative before 1970).
pub fn system_time_ns(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_nanos().min(i64::MAX as u128) as i64,
        Err(e) => -(e.duration().as_nanos().min(i64::MAX as u128) as i64),
    }
}

/// The inverse of [`system_time_ns`].
pub fn ns_to_system_time(ns: i64) -> SystemTime {
    if ns >= 0 {
        UNIX_EPOCH + Duration::from_nanos(ns as u64)
    } else {
        UNIX_EPOCH - Duration::from_nanos(ns.unsigned_abs())
    }
}

/// The columns `Catalog::camera_from_row` reads, in its order (a macro, so `concat!` can build queries from it).
macro_rules! camera_columns {
    () => {
        "c.id, c.slug, c.name, c.footage_type, c.make, c.model, c.serial, c.auto"
    };
}

/// The three kinds of footage a wedding film is cut from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum FootageType {
    Modern,
    Dadcam,
    Super8,
}

impl FootageType {
    pub const ALL: [FootageType; 3] = [FootageType::Modern, FootageType::Dadcam, FootageType::Super8];

    pub fn as_str(self) -> &'static str {
        match self {
            FootageType::Modern => "modern",
            FootageType::Dadcam => "dadcam",
            FootageType::Super8 => "super8",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "modern" => Ok(FootageType::Modern),
            "dadcam" => Ok(FootageType::Dadcam),
            "super8" => Ok(FootageType::Super8),
            other => Err(Error::Invalid(format!("unknown footage type {other:?} (expected modern, dadcam or super8)"))),
        }
    }
}

impl std::fmt::Display for FootageType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What to do with content already present in the couple.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DuplicateAction {
    Skip,
    Import,
}

impl DuplicateAction {
    pub fn as_str(self) -> &'static str {
        match self {
            DuplicateAction::Skip => "skip",
            DuplicateAction::Import => "import",
        }
    }
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "skip" => Ok(DuplicateAction::Skip),
            "import" => Ok(DuplicateAction::Import),
            other => Err(Error::Invalid(format!("unknown duplicate action {other:?} (expected skip or import)"))),
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Couple {
    pub id: i64,
    pub display_name: String,
    pub event_date: String,
    pub folder_name: String,
    pub created_at: i64,
    pub file_count: i64,
    pub total_bytes: i64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Camera {
    pub id: i64,
    pub slug: String,
    pub name: String,
    pub footage_type: FootageType,
    pub make: Option<String>,
    pub model: Option<String>,
    pub serial: Option<String>,
    /// Created by routing from a file's metadata rather than by `camera add`.
    pub auto: bool,
}

/// A camera with the number of files catalogued under it (`camera list`). Routing and the tree use [`Camera`]
/// alone: counting is a scan of the files, which must not happen once per routed clip.
#[derive(Clone, Debug, Serialize)]
pub struct CameraListing {
    #[serde(flatten)]
    pub camera: Camera,
    pub file_count: i64,
}

/// The states of an import session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionStatus {
    Pending,
    Scanning,
    Hashing,
    Copying,
    Validating,
    Finalizing,
    Completed,
    Cancelled,
    Failed,
    Paused,
}

impl SessionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionStatus::Pending => "pending",
            SessionStatus::Scanning => "scanning",
            SessionStatus::Hashing => "hashing",
            SessionStatus::Copying => "copying",
            SessionStatus::Validating => "validating",
            SessionStatus::Finalizing => "finalizing",
            SessionStatus::Completed => "completed",
            SessionStatus::Cancelled => "cancelled",
            SessionStatus::Failed => "failed",
            SessionStatus::Paused => "paused",
        }
    }
    fn parse(s: &str) -> Self {
        match s {
            "scanning" => SessionStatus::Scanning,
            "hashing" => SessionStatus::Hashing,
            "copying" => SessionStatus::Copying,
            "validating" => SessionStatus::Validating,
            "finalizing" => SessionStatus::Finalizing,
            "completed" => SessionStatus::Completed,
            "cancelled" => SessionStatus::Cancelled,
            "failed" => SessionStatus::Failed,
            "paused" => SessionStatus::Paused,
            _ => SessionStatus::Pending,
        }
    }
    /// Statuses in which no process is working on the session any more.
    pub fn is_final(self) -> bool {
        matches!(self, SessionStatus::Completed | SessionStatus::Failed)
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Session {
    pub id: i64,
    pub couple_id: i64,
    pub couple: String,
    pub status: SessionStatus,
    pub last_step: Option<String>,
    pub can_resume: bool,
    pub footage_type: FootageType,
    /// False when the import gave no `--type` (routing may then take a camera's type).
    pub type_explicit: bool,
    /// The network source this session reads, if any.
    pub source_id: Option<i64>,
    pub camera_id: Option<i64>,
    pub duplicates: DuplicateAction,
    pub source: String,
    #[serde(skip)]
    pub source_paths: Vec<Vec<u8>>,
    pub files_total: i64,
    pub files_processed: i64,
    pub files_duplicate: i64,
    pub files_error: i64,
    pub bytes_total: i64,
    pub bytes_processed: i64,
    pub bytes_duplicate: i64,
    pub bytes_error: i64,
    pub error: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub finished_at: Option<i64>,
    /// `import --salvage`: unreadable ranges of a damaged file are zero-filled and recorded instead of failing it.
    pub salvage: bool,
    /// When the current (or last) run of this session started, and how many bytes were processed then: speed
    /// and ETA are measured over the run, not since the session was created.
    pub run_started_at: Option<i64>,
    pub run_bytes_start: i64,
}

impl Session {
    /// True while the session can still be worked on: not completed or failed, and not cancelled for good.
    pub fn is_open(&self) -> bool {
        !self.status.is_final() && self.can_resume
    }
}

/// The per-file states of an import item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ItemState {
    /// Scanned; nothing stored yet.
    Pending,
    /// Copied into `tmp/` with the hash read inline; not yet validated.
    Copied,
    /// Validated and renamed into `objects/`; not yet catalogued.
    Stored,
    /// Catalogued as a file.
    Done,
    /// Content already in the couple; skipped.
    Duplicate,
    /// Could not be imported; `error` says why.
    Failed,
    /// Not a regular file (symlink, device, socket...); recorded and left alone.
    Skipped,
}

impl ItemState {
    pub fn as_str(self) -> &'static str {
        match self {
            ItemState::Pending => "pending",
            ItemState::Copied => "copied",
            ItemState::Stored => "stored",
            ItemState::Done => "done",
            ItemState::Duplicate => "duplicate",
            ItemState::Failed => "failed",
            ItemState::Skipped => "skipped",
        }
    }
    fn parse(s: &str) -> Self {
        match s {
            "copied" => ItemState::Copied,
            "stored" => ItemState::Stored,
            "done" => ItemState::Done,
            "duplicate" => ItemState::Duplicate,
            "failed" => ItemState::Failed,
            "skipped" => ItemState::Skipped,
            _ => ItemState::Pending,
        }
    }
    /// True once nothing more will happen to the item.
    pub fn is_terminal(self) -> bool {
        matches!(self, ItemState::Done | ItemState::Duplicate | ItemState::Failed | ItemState::Skipped)
    }
}

#[derive(Clone, Debug)]
pub struct Item {
    pub id: i64,
    pub session_id: i64,
    pub path: Vec<u8>,
    pub rel_path: Vec<u8>,
    pub size: u64,
    pub mtime_ns: i64,
    pub state: ItemState,
    pub hash: Option<String>,
    pub sidecar_of: Option<i64>,
    pub file_id: Option<i64>,
    pub error: Option<String>,
    /// Salvaged: the ranges that could not be read and were stored as zeros (JSON `[[start, len], ...]`).
    pub bad_ranges: Option<String>,
    /// Bytes of a kept partial copy in `tmp/` known to be durable (a resume continues from there).
    pub resume_offset: Option<u64>,
    /// This item's verified copy replaced a damaged or missing blob.
    pub healed: bool,
}

/// A new item as the scanner records it. `sidecar_of` is an index into the same batch.
#[derive(Clone, Debug)]
pub struct NewItem {
    pub path: Vec<u8>,
    pub rel_path: Vec<u8>,
    pub size: u64,
    pub mtime_ns: i64,
    pub state: ItemState,
    pub sidecar_of: Option<usize>,
    pub error: Option<String>,
}

/// A catalogued file, joined with its blob's size.
#[derive(Clone, Debug)]
pub struct FileRow {
    pub id: i64,
    /// The blob's stable row id (used for inode numbers of `.by-hash` entries).
    pub blob_id: i64,
    pub couple_id: i64,
    pub footage_type: FootageType,
    pub camera_id: Option<i64>,
    pub blob_hash: String,
    pub size: u64,
    pub display_name: Vec<u8>,
    pub original_path: Vec<u8>,
    pub source: String,
    pub source_mtime_ns: i64,
    pub imported_at: i64,
    pub session_id: Option<i64>,
    pub sidecar_of: Option<i64>,
    /// Capture time from the file's metadata (Unix seconds), if it said.
    pub captured_at: Option<i64>,
    /// A salvaged copy: the ranges of the original that could not be read, stored as zeros (JSON).
    pub bad_ranges: Option<String>,
}

/// A file to insert; the display name is chosen by the caller (see `organize`).
#[derive(Clone, Debug)]
pub struct NewFile<'a> {
    pub couple_id: i64,
    pub footage_type: FootageType,
    pub camera_id: Option<i64>,
    pub blob_hash: &'a str,
    pub blob_size: u64,
    pub display_name: &'a [u8],
    pub name_key: &'a str,
    pub original_path: &'a [u8],
    pub source: &'a str,
    pub source_mtime_ns: i64,
    pub session_id: Option<i64>,
    pub sidecar_of: Option<i64>,
    pub captured_at: Option<i64>,
    pub bad_ranges: Option<&'a str>,
}

/// A configured SMB or NFS source. The password is only ever held encrypted here.
#[derive(Clone, Debug, Serialize)]
pub struct NetworkSource {
    pub id: i64,
    pub protocol: String,
    pub host: String,
    pub port: u16,
    pub mount_port: Option<u16>,
    pub share: String,
    pub path: String,
    pub username: String,
    #[serde(skip)]
    pub password_enc: Vec<u8>,
    pub has_password: bool,
    pub couple_id: i64,
    pub couple: String,
    pub footage_type: Option<FootageType>,
    pub camera_id: Option<i64>,
    pub enabled: bool,
    pub post_import: String,
    pub duplicates: DuplicateAction,
    pub connection_state: String,
    pub consecutive_failures: i64,
    pub last_error: Option<String>,
    pub last_scan_at: Option<i64>,
    pub created_at: i64,
}

impl NetworkSource {
    /// The source as a URL, without credentials: `smb://host:port/share/path`.
    pub fn url(&self) -> String {
        let path = self.path.trim_start_matches('/');
        let mut u = format!("{}://{}:{}/{}", self.protocol, self.host, self.port, self.share.trim_matches('/'));
        if !path.is_empty() {
            u.push('/');
            u.push_str(path);
        }
        if let Some(mp) = self.mount_port {
            u.push_str(&format!("?mount_port={mp}"));
        }
        u
    }
}

/// A source to insert.
#[derive(Clone, Debug)]
pub struct NewNetworkSource<'a> {
    pub protocol: &'a str,
    pub host: &'a str,
    pub port: u16,
    pub mount_port: Option<u16>,
    pub share: &'a str,
    pub path: &'a str,
    pub username: &'a str,
    pub password_enc: &'a [u8],
    pub couple_id: i64,
    pub footage_type: Option<FootageType>,
    pub camera_id: Option<i64>,
    pub post_import: &'a str,
    pub duplicates: DuplicateAction,
}

#[derive(Clone, Debug, Serialize)]
pub struct SourceEvent {
    pub id: i64,
    pub source_id: i64,
    pub session_id: Option<i64>,
    pub at: i64,
    pub level: String,
    pub message: String,
}

/// An entry of the writable ingest directory, as its writer sees it.
#[derive(Clone, Debug)]
pub struct IngestEntry {
    pub id: i64,
    pub couple_id: i64,
    pub parent_id: Option<i64>,
    pub name: Vec<u8>,
    pub is_dir: bool,
    pub committed: bool,
    pub size: u64,
    pub mtime_ns: i64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub blob_hash: Option<String>,
    pub file_id: Option<i64>,
}

/// A camera to insert.
#[derive(Clone, Debug)]
pub struct NewCamera<'a> {
    pub slug: &'a str,
    pub name: &'a str,
    pub footage_type: FootageType,
    pub make: Option<&'a str>,
    pub model: Option<&'a str>,
    pub serial: Option<&'a str>,
    pub auto: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct BlobRow {
    pub hash: String,
    pub size: u64,
    pub stored_at: i64,
    pub verified_at: Option<i64>,
}

/// An entry of the archive's event log.
#[derive(Clone, Debug, Serialize)]
pub struct ArchiveEvent {
    pub id: i64,
    pub at: i64,
    /// `blob_damaged`, `blob_missing`, `blob_healed` or `file_replaced`.
    pub kind: String,
    pub blob_hash: Option<String>,
    pub file_id: Option<i64>,
    pub session_id: Option<i64>,
    pub message: String,
}

/// Counters added to a session in one step.
#[derive(Clone, Copy, Debug, Default)]
pub struct Progress {
    pub files_processed: i64,
    pub files_duplicate: i64,
    pub files_error: i64,
    pub bytes_processed: i64,
    pub bytes_duplicate: i64,
    pub bytes_error: i64,
}

impl Progress {
    pub fn one(state: ItemState, size: u64) -> Self {
        let size = size as i64;
        let mut p = Progress { files_processed: 1, bytes_processed: size, ..Default::default() };
        match state {
            ItemState::Duplicate => {
                p.files_duplicate = 1;
                p.bytes_duplicate = size;
            }
            ItemState::Failed => {
                p.files_error = 1;
                p.bytes_error = size;
            }
            _ => {}
        }
        p
    }
    pub fn add(&mut self, o: Progress) {
        self.files_processed += o.files_processed;
        self.files_duplicate += o.files_duplicate;
        self.files_error += o.files_error;
        self.bytes_processed += o.bytes_processed;
        self.bytes_duplicate += o.bytes_duplicate;
        self.bytes_error += o.bytes_error;
    }
}

/// An open catalog. Not `Sync`: share it behind a mutex or open one per thread.
pub struct Catalog {
    conn: Connection,
}

/// Joins several paths into one BLOB (NUL cannot occur inside a path).
pub fn join_paths(paths: &[Vec<u8>]) -> Vec<u8> {
    paths.join(&0u8)
}

fn split_paths(b: &[u8]) -> Vec<Vec<u8>> {
    if b.is_empty() {
        return Vec::new();
    }
    b.split(|c| *c == 0).map(|s| s.to_vec()).collect()
}

impl Catalog {
    /// Creates a new catalog file with mode 0600 and the current schema.
    pub fn create(path: &Path) -> Result<Self> {
        OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).at(path)?;
        Self::open(path)
    }

    /// Opens an existing catalog and runs any pending migrations.
    pub fn open(path: &Path) -> Result<Self> {
        let conn = Connection::open(path).ctx("open catalog.db")?;
        conn.busy_timeout(Duration::from_secs(30)).ctx("set busy timeout")?;
        conn.pragma_update(None, "journal_mode", "WAL").ctx("enable WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL").ctx("set synchronous")?;
        conn.pragma_update(None, "foreign_keys", "ON").ctx("enable foreign keys")?;
        let mut cat = Catalog { conn };
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

    /// The schema version of the open catalog.
    pub fn schema_version(&self) -> Result<i64> {
        self.conn.pragma_query_value(None, "user_version", |r| r.get(0)).ctx("read schema version")
    }

    // ---- couples -------------------------------------------------------------------------------------------

    pub fn add_couple(&self, display_name: &str, event_date: &str, folder_name: &str) -> Result<i64> {
        self.conn
            .execute(
                "INSERT INTO couples (display_name, event_date, folder_name, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![display_name, event_date, folder_name, now()],
            )
            .ctx("add couple")?;
        Ok(self.conn.last_insert_rowid())
    }

    pub fn folder_name_taken(&self, folder_name: &str) -> Result<bool> {
        self.conn
            .query_row("SELECT EXISTS(SELECT 1 FROM couples WHERE folder_name = ?1)", [folder_name], |r| r.get(0))
            .ctx("check folder name")
    }

    const COUPLE_SELECT: &'static str = "SELECT c.id, c.display_name, c.event_date, c.folder_name, c.created_at,
            (SELECT COUNT(*) FROM files f WHERE f.couple_id = c.id),
            (SELECT IFNULL(SUM(b.size), 0) FROM files f JOIN blobs b ON b.hash = f.blob_hash WHERE f.couple_id = c.id)
         FROM couples c";

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

    pub fn couples(&self) -> Result<Vec<Couple>> {
        rows(
            &self.conn,
            &format!("{} ORDER BY c.folder_name", Self::COUPLE_SELECT),
            [],
            Self::couple_from_row,
            "list couples",
        )
    }

    /// Every couple's id and folder name: what the tree and the ingest directory poll, without counting files.
    pub fn couple_folders(&self) -> Result<Vec<(i64, String)>> {
        rows(&self.conn, "SELECT id, folder_name FROM couples", [], |r| Ok((r.get(0)?, r.get(1)?)), "list couples")
    }

    pub fn couple_by_folder(&self, folder_name: &str) -> Result<Couple> {
        self.conn
            .query_row(
                &format!("{} WHERE c.folder_name = ?1", Self::COUPLE_SELECT),
                [folder_name],
                Self::couple_from_row,
            )
            .optional()
            .ctx("find couple")?
            .ok_or_else(|| Error::NoSuchCouple(folder_name.to_string()))
    }

    /// The couples of one event date, by folder name (`couple add` refuses a second couple of the same name).
    pub fn couples_on(&self, event_date: &str) -> Result<Vec<Couple>> {
        rows(
            &self.conn,
            &format!("{} WHERE c.event_date = ?1 ORDER BY c.folder_name", Self::COUPLE_SELECT),
            [event_date],
            Self::couple_from_row,
            "list couples of a date",
        )
    }

    pub fn couple_by_id(&self, id: i64) -> Result<Couple> {
        self.conn
            .query_row(&format!("{} WHERE c.id = ?1", Self::COUPLE_SELECT), [id], Self::couple_from_row)
            .optional()
            .ctx("find couple")?
            .ok_or_else(|| Error::NoSuchCouple(format!("#{id}")))
    }

    // ---- cameras -------------------------------------------------------------------------------------------

    pub fn add_camera(&self, c: &NewCamera) -> Result<i64> {
        insert_camera(&self.conn, c)
    }

    pub fn camera_slug_taken(&self, slug: &str) -> Result<bool> {
        slug_taken(&self.conn, slug)
    }

    const CAMERA_SELECT: &'static str = CAMERA_SELECT;

    pub(crate) fn camera_from_row(r: &Row) -> rusqlite::Result<Camera> {
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
        })
    }

    pub fn cameras(&self) -> Result<Vec<Camera>> {
        cameras_on(&self.conn)
    }

    /// Every camera with its file count, by slug; the files are counted in one pass.
    pub fn camera_listing(&self) -> Result<Vec<CameraListing>> {
        rows(
            &self.conn,
            concat!(
                "SELECT ",
                camera_columns!(),
                ", IFNULL(k.n, 0) FROM cameras c
                 LEFT JOIN (SELECT camera_id, COUNT(*) AS n FROM files GROUP BY camera_id) k ON k.camera_id = c.id
                 ORDER BY c.slug"
            ),
            [],
            |r| Ok(CameraListing { camera: Catalog::camera_from_row(r)?, file_count: r.get(8)? }),
            "list cameras",
        )
    }

    pub fn camera_by_slug(&self, slug: &str) -> Result<Camera> {
        self.conn
            .query_row(&format!("{} WHERE c.slug = ?1", Self::CAMERA_SELECT), [slug], Self::camera_from_row)
            .optional()
            .ctx("find camera")?
            .ok_or_else(|| Error::NoSuchCamera(slug.to_string()))
    }

    // ---- sessions ------------------------------------------------------------------------------------------

    #[allow(clippy::too_many_arguments)]
    pub fn create_session(
        &self,
        couple_id: i64,
        footage_type: Option<FootageType>,
        camera_id: Option<i64>,
        duplicates: DuplicateAction,
        source: &str,
        source_paths: &[Vec<u8>],
        source_id: Option<i64>,
        salvage: bool,
    ) -> Result<i64> {
        let t = now();
        let ft = footage_type.unwrap_or(FootageType::Modern);
        self.conn
            .execute(
                "INSERT INTO import_sessions (couple_id, status, footage_type, type_explicit, camera_id, duplicates,
                     source, source_paths, created_at, updated_at, source_id, salvage)
                 VALUES (?1, 'pending', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8, ?9, ?10)",
                params![
                    couple_id,
                    ft.as_str(),
                    footage_type.is_some(),
                    camera_id,
                    duplicates.as_str(),
                    source,
                    join_paths(source_paths),
                    t,
                    source_id,
                    salvage
                ],
            )
            .ctx("create import session")?;
        Ok(self.conn.last_insert_rowid())
    }

    const SESSION_SELECT: &'static str = "SELECT s.id, s.couple_id, c.folder_name, s.status, s.last_step, s.can_resume,
            s.footage_type, s.camera_id, s.duplicates, s.source, s.source_paths, s.files_total, s.files_processed,
            s.files_duplicate, s.files_error, s.bytes_total, s.bytes_processed, s.bytes_duplicate, s.bytes_error,
            s.error, s.created_at, s.updated_at, s.finished_at, s.type_explicit, s.source_id, s.salvage,
            s.run_started_at, s.run_bytes_start
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
        })
    }

    pub fn session(&self, id: i64) -> Result<Session> {
        self.conn
            .query_row(&format!("{} WHERE s.id = ?1", Self::SESSION_SELECT), [id], Self::session_from_row)
            .optional()
            .ctx("find session")?
            .ok_or(Error::NoSuchSession(id))
    }

    pub fn sessions(&self) -> Result<Vec<Session>> {
        rows(
            &self.conn,
            &format!("{} ORDER BY s.id", Self::SESSION_SELECT),
            [],
            Self::session_from_row,
            "list sessions",
        )
    }

    /// The newest session of a couple that is neither completed nor failed.
    pub fn unfinished_session_of(&self, couple_id: i64) -> Result<Option<i64>> {
        self.conn
            .query_row(
                "SELECT id FROM import_sessions WHERE couple_id = ?1
                   AND status NOT IN ('completed', 'failed') ORDER BY id DESC LIMIT 1",
                [couple_id],
                |r| r.get(0),
            )
            .optional()
            .ctx("find unfinished session")
    }

    pub fn set_session_status(&self, id: i64, status: SessionStatus, error: Option<&str>) -> Result<()> {
        let finished = if status.is_final() { Some(now()) } else { None };
        self.conn
            .execute(
                "UPDATE import_sessions SET status = ?2, last_step = CASE WHEN ?2 IN
                     ('scanning','hashing','copying','validating','finalizing') THEN ?2 ELSE last_step END,
                     error = ?3, updated_at = ?4, finished_at = ?5,
                     can_resume = CASE WHEN ?2 IN ('completed','failed') THEN 0 ELSE 1 END
                 WHERE id = ?1",
                params![id, status.as_str(), error, now(), finished],
            )
            .ctx("update session status")?;
        Ok(())
    }

    /// Sets (or clears) the error of a session without touching its status: what went wrong in a session that
    /// goes on (a commit in the ingest directory that failed).
    pub fn set_session_error(&self, id: i64, error: Option<&str>) -> Result<()> {
        self.conn
            .execute("UPDATE import_sessions SET error = ?2, updated_at = ?3 WHERE id = ?1", params![id, error, now()])
            .ctx("record session error")?;
        Ok(())
    }

    /// Starts a run of a session (a first run or a resume): speed and ETA are measured from here. What is not this
    /// run's work is counted in `run_bytes_start`: the bytes processed so far (duplicates aside) and the copies
    /// earlier runs kept in `tmp/` (whole, or up to their checkpoint), which `status` sees as in flight.
    pub fn start_run(&self, id: i64) -> Result<()> {
        self.conn
            .execute(
                "UPDATE import_sessions SET run_started_at = ?2, run_bytes_start = bytes_processed - bytes_duplicate
                     + (SELECT IFNULL(SUM(CASE WHEN state = 'copied' THEN size ELSE resume_offset END), 0)
                          FROM import_items WHERE session_id = ?1
                           AND (state = 'copied' OR (state = 'pending' AND resume_offset IS NOT NULL)))
                 WHERE id = ?1",
                params![id, now()],
            )
            .ctx("start session run")?;
        Ok(())
    }

    /// Ends a session for good (`session cancel`): it is never resumed; what it finished stays catalogued.
    pub fn cancel_session(&self, id: i64) -> Result<()> {
        self.conn
            .execute(
                "UPDATE import_sessions SET status = 'cancelled', can_resume = 0, error = 'cancelled for good by the user',
                    updated_at = ?2, finished_at = ?2 WHERE id = ?1",
                params![id, now()],
            )
            .ctx("cancel session")?;
        Ok(())
    }

    /// Makes a finished session's failed files pending again, for `resume` to retry them; returns how many.
    pub fn reset_failed_items(&self, id: i64) -> Result<usize> {
        let n = self
            .conn
            .execute(
                "UPDATE import_items SET state = 'pending', error = NULL, hash = NULL, updated_at = ?2
                 WHERE session_id = ?1 AND state = 'failed'",
                params![id, now()],
            )
            .ctx("retry failed items")?;
        if n > 0 {
            self.conn
                .execute(
                    "UPDATE import_sessions SET status = 'paused', can_resume = 1, finished_at = NULL WHERE id = ?1",
                    [id],
                )
                .ctx("reopen session")?;
            self.recount_session(id)?;
        }
        Ok(n)
    }

    /// Commits of this connection wait for the disk (`synchronous=FULL`) when `durable`: a post-import delete or
    /// move of the source acts only on what a power loss cannot take back.
    pub fn set_durable_commits(&self, durable: bool) -> Result<()> {
        self.conn.pragma_update(None, "synchronous", if durable { "FULL" } else { "NORMAL" }).ctx("set synchronous")
    }

    /// Recomputes a session's counters from its items (the items are the truth).
    pub fn recount_session(&self, id: i64) -> Result<()> {
        self.conn
            .execute(
                "UPDATE import_sessions SET
                    files_total = (SELECT COUNT(*) FROM import_items WHERE session_id = ?1),
                    bytes_total = (SELECT IFNULL(SUM(size), 0) FROM import_items WHERE session_id = ?1),
                    files_processed = (SELECT COUNT(*) FROM import_items WHERE session_id = ?1
                        AND state IN ('done','duplicate','failed','skipped')),
                    bytes_processed = (SELECT IFNULL(SUM(size), 0) FROM import_items WHERE session_id = ?1
                        AND state IN ('done','duplicate','failed','skipped')),
                    files_duplicate = (SELECT COUNT(*) FROM import_items WHERE session_id = ?1 AND state = 'duplicate'),
                    bytes_duplicate = (SELECT IFNULL(SUM(size), 0) FROM import_items WHERE session_id = ?1
                        AND state = 'duplicate'),
                    files_error = (SELECT COUNT(*) FROM import_items WHERE session_id = ?1 AND state = 'failed'),
                    bytes_error = (SELECT IFNULL(SUM(size), 0) FROM import_items WHERE session_id = ?1
                        AND state = 'failed'),
                    updated_at = ?2
                 WHERE id = ?1",
                params![id, now()],
            )
            .ctx("recount session")?;
        Ok(())
    }

    // ---- items ---------------------------------------------------------------------------------------------

    /// Records a scan: all items of a session in one transaction, replacing any earlier partial scan.
    pub fn insert_items(&mut self, session_id: i64, items: &[NewItem]) -> Result<()> {
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).ctx("begin scan")?;
        tx.execute("DELETE FROM import_items WHERE session_id = ?1", [session_id]).ctx("clear partial scan")?;
        let mut ids = Vec::with_capacity(items.len());
        {
            let mut st = tx
                .prepare(
                    "INSERT INTO import_items (session_id, path, rel_path, size, mtime_ns, state, error, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )
                .ctx("record scan")?;
            let t = now();
            for it in items {
                st.execute(params![
                    session_id,
                    it.path,
                    it.rel_path,
                    it.size as i64,
                    it.mtime_ns,
                    it.state.as_str(),
                    it.error,
                    t
                ])
                .ctx("record scanned file")?;
                ids.push(tx.last_insert_rowid());
            }
            let mut link =
                tx.prepare("UPDATE import_items SET sidecar_of = ?2 WHERE id = ?1").ctx("link sidecar items")?;
            for (i, it) in items.iter().enumerate() {
                if let Some(clip) = it.sidecar_of {
                    link.execute(params![ids[i], ids[clip]]).ctx("link sidecar item")?;
                }
            }
        }
        tx.commit().ctx("commit scan")?;
        Ok(())
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
        })
    }

    pub fn items(&self, session_id: i64) -> Result<Vec<Item>> {
        rows(
            &self.conn,
            "SELECT id, session_id, path, rel_path, size, mtime_ns, state, hash, sidecar_of, file_id, error,
                    bad_ranges, resume_offset, healed
                 FROM import_items WHERE session_id = ?1 ORDER BY id",
            [session_id],
            Self::item_from_row,
            "list items",
        )
    }

    /// The newest item of a session at `path` that has not ended (pending, copied or stored), if any: the
    /// ingest directory fails the item of a commit that did not go through.
    pub fn unfinished_item_at(&self, session_id: i64, path: &[u8]) -> Result<Option<Item>> {
        self.conn
            .query_row(
                "SELECT id, session_id, path, rel_path, size, mtime_ns, state, hash, sidecar_of, file_id, error,
                    bad_ranges, resume_offset, healed
                 FROM import_items WHERE session_id = ?1 AND path = ?2 AND state IN ('pending','copied','stored')
                 ORDER BY id DESC LIMIT 1",
                params![session_id, path],
                Self::item_from_row,
            )
            .optional()
            .ctx("find unfinished item")
    }

    /// Moves an item to a non-terminal state (hash known, or validated into objects/).
    pub fn set_item_state(&self, id: i64, state: ItemState, hash: Option<&str>) -> Result<()> {
        self.conn
            .execute(
                "UPDATE import_items SET state = ?2, hash = IFNULL(?3, hash), updated_at = ?4 WHERE id = ?1",
                params![id, state.as_str(), hash, now()],
            )
            .ctx("update item")?;
        Ok(())
    }

    /// Records copies in `tmp/`, in one transaction: `(item id, hash, size, mtime_ns)` each, the size and mtime
    /// the source had while it was copied.
    pub fn items_copied(&mut self, copies: &[(i64, &str, u64, i64)]) -> Result<()> {
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).ctx("begin record copies")?;
        {
            let mut st = tx
                .prepare_cached(
                    "UPDATE import_items SET state = 'copied', hash = ?2, size = ?3, mtime_ns = ?4, updated_at = ?5
                     WHERE id = ?1",
                )
                .ctx("record copy")?;
            let t = now();
            for (id, hash, size, mtime_ns) in copies {
                st.execute(params![id, hash, *size as i64, mtime_ns, t]).ctx("record copy")?;
            }
        }
        tx.commit().ctx("commit copies")
    }

    /// Records the ranges of a salvaged copy that could not be read (JSON), with the copy.
    pub fn set_item_damage(&self, id: i64, bad_ranges: Option<&str>) -> Result<()> {
        self.conn
            .execute(
                "UPDATE import_items SET bad_ranges = ?2, updated_at = ?3 WHERE id = ?1",
                params![id, bad_ranges, now()],
            )
            .ctx("record damage")?;
        Ok(())
    }

    /// Records that the first `offset` bytes of an item's partial copy are durable in `tmp/`, with the size and
    /// mtime the source had (a resume continues only from the same version of the file); `None` forgets it.
    pub fn set_item_checkpoint(&self, id: i64, checkpoint: Option<(u64, u64, i64)>) -> Result<()> {
        let t = now();
        match checkpoint {
            Some((offset, size, mtime_ns)) => self.conn.execute(
                "UPDATE import_items SET resume_offset = ?2, size = ?3, mtime_ns = ?4, updated_at = ?5 WHERE id = ?1",
                params![id, offset as i64, size as i64, mtime_ns, t],
            ),
            None => self.conn.execute(
                "UPDATE import_items SET resume_offset = NULL, updated_at = ?2 WHERE id = ?1 AND resume_offset IS NOT NULL",
                params![id, t],
            ),
        }
        .ctx("record copy checkpoint")?;
        Ok(())
    }

    /// Forgets a hash computed from an older version of the source.
    pub fn clear_item_hash(&self, id: i64) -> Result<()> {
        self.conn
            .execute("UPDATE import_items SET hash = NULL, updated_at = ?2 WHERE id = ?1", params![id, now()])
            .ctx("clear item hash")?;
        Ok(())
    }

    /// Sets the hash of an item without changing its state (a source hashed to find duplicates).
    pub fn set_item_hash(&self, id: i64, hash: &str) -> Result<()> {
        self.conn
            .execute("UPDATE import_items SET hash = ?2, updated_at = ?3 WHERE id = ?1", params![id, hash, now()])
            .ctx("record item hash")?;
        Ok(())
    }

    /// Ends an item as failed or duplicate and counts it, in one transaction.
    pub fn end_item(&mut self, item: &Item, state: ItemState, error: Option<&str>) -> Result<()> {
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).ctx("begin item end")?;
        tx.execute(
            "UPDATE import_items SET state = ?2, error = ?3, updated_at = ?4 WHERE id = ?1",
            params![item.id, state.as_str(), error, now()],
        )
        .ctx("end item")?;
        add_progress(&tx, item.session_id, Progress::one(state, item.size))?;
        tx.commit().ctx("commit item end")
    }

    // ---- blobs and files -----------------------------------------------------------------------------------

    pub fn blob(&self, hash: &str) -> Result<Option<BlobRow>> {
        self.conn
            .query_row("SELECT hash, size, stored_at, verified_at FROM blobs WHERE hash = ?1", [hash], |r| {
                Ok(BlobRow {
                    hash: r.get(0)?,
                    size: r.get::<_, i64>(1)? as u64,
                    stored_at: r.get(2)?,
                    verified_at: r.get(3)?,
                })
            })
            .optional()
            .ctx("find blob")
    }

    /// Every blob, or those referenced by one couple.
    pub fn blobs(&self, couple_id: Option<i64>) -> Result<Vec<BlobRow>> {
        let sql = match couple_id {
            None => "SELECT hash, size, stored_at, verified_at FROM blobs WHERE ?1 IS NULL ORDER BY hash",
            Some(_) => {
                "SELECT hash, size, stored_at, verified_at FROM blobs WHERE hash IN
                   (SELECT blob_hash FROM files WHERE couple_id = ?1) ORDER BY hash"
            }
        };
        rows(
            &self.conn,
            sql,
            [couple_id],
            |r| {
                Ok(BlobRow {
                    hash: r.get(0)?,
                    size: r.get::<_, i64>(1)? as u64,
                    stored_at: r.get(2)?,
                    verified_at: r.get(3)?,
                })
            },
            "list blobs",
        )
    }

    pub fn mark_verified(&self, hashes: &[String]) -> Result<()> {
        let t = now();
        let tx = self.conn.unchecked_transaction().ctx("begin verify")?;
        {
            let mut st = tx.prepare("UPDATE blobs SET verified_at = ?2 WHERE hash = ?1").ctx("mark verified")?;
            for h in hashes {
                st.execute(params![h, t]).ctx("mark verified")?;
            }
        }
        tx.commit().ctx("commit verify")
    }

    /// Records what `verify` found wrong with a blob (`damaged` or `missing`), with an event when that is news.
    pub fn set_blob_unhealthy(&self, hash: &str, health: &str, problem: &str) -> Result<bool> {
        let n = self
            .conn
            .execute(
                "UPDATE blobs SET health = ?2, problem = ?3 WHERE hash = ?1 AND health <> ?2",
                params![hash, health, problem],
            )
            .ctx("record blob health")?;
        if n > 0 {
            self.event(&format!("blob_{health}"), Some(hash), None, None, problem)?;
        }
        Ok(n > 0)
    }

    /// Blobs that `verify` found damaged or missing and that no verified copy has healed yet: `(hash, health)`.
    pub fn unhealthy_blobs(&self) -> Result<Vec<(String, String)>> {
        rows(
            &self.conn,
            "SELECT hash, health FROM blobs WHERE health <> 'ok' ORDER BY hash",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
            "list unhealthy blobs",
        )
    }

    /// `ok`, `damaged` or `missing` for a catalogued blob; `None` for content the catalog does not know.
    pub fn blob_health(&self, hash: &str) -> Result<Option<String>> {
        blob_health_on(&self.conn, hash)
    }

    /// Marks a blob whole again (its file was replaced by a verified copy, or found whole by `verify`), with an
    /// event naming how.
    pub fn heal_blob(&self, hash: &str, session_id: Option<i64>, how: &str) -> Result<()> {
        heal_blob_on(&self.conn, hash, session_id, how)
    }

    /// Appends to the archive's event log.
    pub fn event(
        &self,
        kind: &str,
        hash: Option<&str>,
        file_id: Option<i64>,
        session_id: Option<i64>,
        message: &str,
    ) -> Result<()> {
        add_archive_event(&self.conn, kind, hash, file_id, session_id, message)
    }

    /// Archive events after `after` (oldest first): what changed about blobs and files already shown.
    pub fn events_after(&self, after: i64, limit: u32) -> Result<Vec<ArchiveEvent>> {
        rows(
            &self.conn,
            "SELECT id, at, kind, blob_hash, file_id, session_id, message FROM events WHERE id > ?1
               ORDER BY id LIMIT ?2",
            params![after, limit],
            |r| {
                Ok(ArchiveEvent {
                    id: r.get(0)?,
                    at: r.get(1)?,
                    kind: r.get(2)?,
                    blob_hash: r.get(3)?,
                    file_id: r.get(4)?,
                    session_id: r.get(5)?,
                    message: r.get(6)?,
                })
            },
            "list events",
        )
    }

    /// The id of the newest archive event (0 when there is none).
    pub fn last_event_id(&self) -> Result<i64> {
        self.conn.query_row("SELECT IFNULL(MAX(id), 0) FROM events", [], |r| r.get(0)).ctx("last event")
    }

    /// Files stored from salvaged (damaged) copies, of one couple or all.
    pub fn damaged_files(&self, couple_id: Option<i64>) -> Result<Vec<FileRow>> {
        let sql = format!(
            "{} WHERE f.bad_ranges IS NOT NULL AND (?1 IS NULL OR f.couple_id = ?1) ORDER BY f.id",
            Self::FILE_SELECT
        );
        rows(&self.conn, &sql, [couple_id], Self::file_from_row, "list damaged files")
    }

    /// Sizes of every file already in a couple: the candidates for duplicate detection.
    pub fn couple_sizes(&self, couple_id: i64) -> Result<std::collections::HashSet<u64>> {
        let mut st = self
            .conn
            .prepare("SELECT DISTINCT b.size FROM files f JOIN blobs b ON b.hash = f.blob_hash WHERE f.couple_id = ?1")
            .ctx("couple sizes")?;
        let rows = st.query_map([couple_id], |r| r.get::<_, i64>(0)).ctx("couple sizes")?;
        let mut out = std::collections::HashSet::new();
        for r in rows {
            out.insert(r.ctx("couple sizes")? as u64);
        }
        Ok(out)
    }

    pub fn couple_has_blob(&self, couple_id: i64, hash: &str) -> Result<bool> {
        has_blob_in_couple(&self.conn, couple_id, hash)
    }

    /// Starts a transaction for finalizing a group of items.
    pub fn finalize_tx(&mut self) -> Result<Finalize<'_>> {
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).ctx("begin finalize")?;
        Ok(Finalize { tx, progress: Progress::default() })
    }

    const FILE_SELECT: &'static str = "SELECT f.id, f.couple_id, f.footage_type, f.camera_id, f.blob_hash, b.size,
            f.display_name, f.original_path, f.source, f.source_mtime_ns, f.imported_at, f.session_id, f.sidecar_of, b.id, f.captured_at,
            f.bad_ranges
         FROM files f JOIN blobs b ON b.hash = f.blob_hash";

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

    /// Every file, or those of one couple, ordered by directory and name.
    pub fn files(&self, couple_id: Option<i64>) -> Result<Vec<FileRow>> {
        let sql = format!(
            "{} WHERE (?1 IS NULL OR f.couple_id = ?1)
             ORDER BY f.couple_id, f.footage_type, IFNULL(f.camera_id, 0), f.display_name",
            Self::FILE_SELECT
        );
        rows(&self.conn, &sql, [couple_id], Self::file_from_row, "list files")
    }

    /// Files that point at one blob.
    pub fn files_of_blob(&self, hash: &str) -> Result<Vec<FileRow>> {
        rows(
            &self.conn,
            &format!("{} WHERE f.blob_hash = ?1", Self::FILE_SELECT),
            [hash],
            Self::file_from_row,
            "files of blob",
        )
    }

    pub fn file(&self, id: i64) -> Result<Option<FileRow>> {
        self.conn
            .query_row(&format!("{} WHERE f.id = ?1", Self::FILE_SELECT), [id], Self::file_from_row)
            .optional()
            .ctx("find file")
    }

    /// The file with this display name in a directory of the tree.
    pub fn file_in_dir(
        &self,
        couple_id: i64,
        ft: FootageType,
        camera_id: Option<i64>,
        name: &[u8],
    ) -> Result<Option<FileRow>> {
        let sql = format!(
            "{} WHERE f.couple_id = ?1 AND f.footage_type = ?2 AND IFNULL(f.camera_id, 0) = ?3 AND f.display_name = ?4",
            Self::FILE_SELECT
        );
        self.conn
            .query_row(&sql, params![couple_id, ft.as_str(), camera_id.unwrap_or(0), name], Self::file_from_row)
            .optional()
            .ctx("find file")
    }

    /// The sidecars linked to a clip.
    pub fn sidecars_of(&self, file_id: i64) -> Result<Vec<FileRow>> {
        rows(
            &self.conn,
            &format!("{} WHERE f.sidecar_of = ?1 ORDER BY f.display_name", Self::FILE_SELECT),
            [file_id],
            Self::file_from_row,
            "list sidecars",
        )
    }

    pub fn camera_by_id(&self, id: i64) -> Result<Option<Camera>> {
        self.conn
            .query_row(&format!("{CAMERA_SELECT} WHERE c.id = ?1"), [id], Self::camera_from_row)
            .optional()
            .ctx("find camera")
    }

    // ---- network sources ------------------------------------------------------------------------------------

    pub fn add_source(&self, n: &NewNetworkSource) -> Result<i64> {
        let t = now();
        self.conn
            .execute(
                "INSERT INTO network_sources (protocol, host, port, mount_port, share, path, username, password_enc,
                     couple_id, footage_type, camera_id, post_import, duplicates, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?14)",
                params![
                    n.protocol,
                    n.host,
                    n.port,
                    n.mount_port,
                    n.share,
                    n.path,
                    n.username,
                    n.password_enc,
                    n.couple_id,
                    n.footage_type.map(FootageType::as_str),
                    n.camera_id,
                    n.post_import,
                    n.duplicates.as_str(),
                    t
                ],
            )
            .ctx("add source")?;
        Ok(self.conn.last_insert_rowid())
    }

    const SOURCE_SELECT: &'static str = "SELECT s.id, s.protocol, s.host, s.port, s.mount_port, s.share, s.path,
            s.username, s.password_enc, s.couple_id, c.folder_name, s.footage_type, s.camera_id, s.enabled,
            s.post_import, s.duplicates, s.connection_state, s.consecutive_failures, s.last_error, s.last_scan_at,
            s.created_at
         FROM network_sources s JOIN couples c ON c.id = s.couple_id";

    fn source_from_row(r: &Row) -> rusqlite::Result<NetworkSource> {
        let pw: Vec<u8> = r.get(8)?;
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
            has_password: !pw.is_empty(),
            password_enc: pw,
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

    pub fn sources(&self) -> Result<Vec<NetworkSource>> {
        rows(&self.conn, &format!("{} ORDER BY s.id", Self::SOURCE_SELECT), [], Self::source_from_row, "list sources")
    }

    pub fn source(&self, id: i64) -> Result<NetworkSource> {
        self.conn
            .query_row(&format!("{} WHERE s.id = ?1", Self::SOURCE_SELECT), [id], Self::source_from_row)
            .optional()
            .ctx("find source")?
            .ok_or_else(|| Error::NotFound(format!("no source {id} (see `nightfox source list`)")))
    }

    pub fn set_source_enabled(&self, id: i64, enabled: bool) -> Result<()> {
        self.conn
            .execute(
                "UPDATE network_sources SET enabled = ?2, updated_at = ?3 WHERE id = ?1",
                params![id, enabled, now()],
            )
            .ctx("enable source")?;
        Ok(())
    }

    /// Records the connection state; `failures` None leaves the counter, Some(0) resets it.
    pub fn set_source_state(&self, id: i64, state: &str, failures: Option<i64>, error: Option<&str>) -> Result<()> {
        self.conn
            .execute(
                "UPDATE network_sources SET connection_state = ?2,
                     consecutive_failures = IFNULL(?3, consecutive_failures),
                     last_error = CASE WHEN ?4 IS NULL THEN last_error ELSE ?4 END, updated_at = ?5
                 WHERE id = ?1",
                params![id, state, failures, error, now()],
            )
            .ctx("update source state")?;
        Ok(())
    }

    pub fn touch_source_scan(&self, id: i64) -> Result<()> {
        self.conn
            .execute("UPDATE network_sources SET last_scan_at = ?2 WHERE id = ?1", params![id, now()])
            .ctx("record scan")?;
        Ok(())
    }

    pub fn remove_source(&self, id: i64) -> Result<()> {
        let n = self.conn.execute("DELETE FROM network_sources WHERE id = ?1", [id]).ctx("remove source")?;
        if n == 0 {
            return Err(Error::NotFound(format!("no source {id} (see `nightfox source list`)")));
        }
        Ok(())
    }

    pub fn add_event(&self, source_id: i64, session_id: Option<i64>, level: &str, message: &str) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO network_source_events (source_id, session_id, at, level, message)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![source_id, session_id, now(), level, message],
            )
            .ctx("record event")?;
        Ok(())
    }

    pub fn events(&self, source_id: i64) -> Result<Vec<SourceEvent>> {
        rows(
            &self.conn,
            "SELECT id, source_id, session_id, at, level, message FROM network_source_events
                 WHERE source_id = ?1 ORDER BY id",
            [source_id],
            |r| {
                Ok(SourceEvent {
                    id: r.get(0)?,
                    source_id: r.get(1)?,
                    session_id: r.get(2)?,
                    at: r.get(3)?,
                    level: r.get(4)?,
                    message: r.get(5)?,
                })
            },
            "list events",
        )
    }

    /// True when this source's file (same relative path, size and mtime) is already catalogued in the couple:
    /// the quick check that lets a network pass skip what it imported before without reading it again.
    pub fn already_imported(&self, couple_id: i64, source: &str, rel: &[u8], size: u64, mtime_ns: i64) -> Result<bool> {
        self.conn
            .prepare_cached(
                "SELECT EXISTS(SELECT 1 FROM files f JOIN blobs b ON b.hash = f.blob_hash
                   WHERE f.couple_id = ?1 AND f.original_path = ?3 AND f.source = ?2 AND f.source_mtime_ns = ?5
                     AND b.size = ?4)",
            )
            .ctx("quick check")?
            .query_row(params![couple_id, source, rel, size as i64, mtime_ns], |r| r.get(0))
            .ctx("quick check")
    }

    // ---- the ingest directory -----------------------------------------------------------------------------

    pub fn ingest_entries(&self) -> Result<Vec<IngestEntry>> {
        rows(
            &self.conn,
            "SELECT id, couple_id, parent_id, name, kind, state, size, mtime_ns, mode, uid, gid, blob_hash, file_id
                 FROM ingest_entries ORDER BY id",
            [],
            |r| {
                let kind: String = r.get(4)?;
                let state: String = r.get(5)?;
                Ok(IngestEntry {
                    id: r.get(0)?,
                    couple_id: r.get(1)?,
                    parent_id: r.get(2)?,
                    name: r.get(3)?,
                    is_dir: kind == "dir",
                    committed: state == "committed",
                    size: r.get::<_, i64>(6)? as u64,
                    mtime_ns: r.get(7)?,
                    mode: r.get(8)?,
                    uid: r.get(9)?,
                    gid: r.get(10)?,
                    blob_hash: r.get(11)?,
                    file_id: r.get(12)?,
                })
            },
            "list ingest entries",
        )
    }

    /// Adds an entry (a directory, or a file being staged); returns its id.
    pub fn add_ingest_entry(&self, e: &IngestEntry) -> Result<i64> {
        self.conn
            .execute(
                "INSERT INTO ingest_entries (couple_id, parent_id, name, kind, state, size, mtime_ns, mode, uid, gid,
                     blob_hash, file_id, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                params![
                    e.couple_id,
                    e.parent_id,
                    e.name,
                    if e.is_dir { "dir" } else { "file" },
                    if e.committed { "committed" } else { "staging" },
                    e.size as i64,
                    e.mtime_ns,
                    e.mode,
                    e.uid,
                    e.gid,
                    e.blob_hash,
                    e.file_id,
                    now()
                ],
            )
            .ctx("add ingest entry")?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Writes an entry's mutable fields back.
    pub fn update_ingest_entry(&self, e: &IngestEntry) -> Result<()> {
        self.conn
            .execute(
                "UPDATE ingest_entries SET parent_id = ?2, name = ?3, state = ?4, size = ?5, mtime_ns = ?6, mode = ?7,
                     uid = ?8, gid = ?9, blob_hash = ?10, file_id = ?11, updated_at = ?12
                 WHERE id = ?1",
                params![
                    e.id,
                    e.parent_id,
                    e.name,
                    if e.committed { "committed" } else { "staging" },
                    e.size as i64,
                    e.mtime_ns,
                    e.mode,
                    e.uid,
                    e.gid,
                    e.blob_hash,
                    e.file_id,
                    now()
                ],
            )
            .ctx("update ingest entry")?;
        Ok(())
    }

    pub fn remove_ingest_entry(&self, id: i64) -> Result<()> {
        self.conn.execute("DELETE FROM ingest_entries WHERE id = ?1", [id]).ctx("remove ingest entry")?;
        Ok(())
    }

    /// Adds one item to an existing session (the ingest directory commits files one at a time).
    pub fn add_item(&self, session_id: i64, it: &NewItem, sidecar_of: Option<i64>) -> Result<i64> {
        self.conn
            .execute(
                "INSERT INTO import_items (session_id, path, rel_path, size, mtime_ns, state, sidecar_of, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    session_id,
                    it.path,
                    it.rel_path,
                    it.size as i64,
                    it.mtime_ns,
                    it.state.as_str(),
                    sidecar_of,
                    now()
                ],
            )
            .ctx("add item")?;
        let id = self.conn.last_insert_rowid();
        self.conn
            .execute(
                "UPDATE import_sessions SET files_total = files_total + 1, bytes_total = bytes_total + ?2,
                     updated_at = ?3 WHERE id = ?1",
                params![session_id, it.size as i64, now()],
            )
            .ctx("count item")?;
        Ok(id)
    }

    pub fn item(&self, id: i64) -> Result<Option<Item>> {
        self.conn
            .query_row(
                "SELECT id, session_id, path, rel_path, size, mtime_ns, state, hash, sidecar_of, file_id, error,
                    bad_ranges, resume_offset, healed
                 FROM import_items WHERE id = ?1",
                [id],
                Self::item_from_row,
            )
            .optional()
            .ctx("find item")
    }

    /// Sessions that were left open (the ingest directory's, after a crash).
    pub fn unfinished_sessions_with_source_prefix(&self, prefix: &str) -> Result<Vec<i64>> {
        rows(
            &self.conn,
            "SELECT id FROM import_sessions WHERE status NOT IN ('completed','failed') AND substr(source, 1, ?2) = ?1",
            params![prefix, prefix.len() as i64],
            |r| r.get(0),
            "find open sessions",
        )
    }

    /// Files with an id above `after`, in id order (files are only ever added).
    pub fn files_after(&self, after: i64) -> Result<Vec<FileRow>> {
        rows(
            &self.conn,
            &format!("{} WHERE f.id > ?1 ORDER BY f.id", Self::FILE_SELECT),
            [after],
            Self::file_from_row,
            "new files",
        )
    }

    /// Changes whenever another connection commits: a cheap poll for front ends that cache the tree.
    pub fn data_version(&self) -> Result<i64> {
        self.conn.pragma_query_value(None, "data_version", |r| r.get(0)).ctx("data version")
    }

    /// Total number of catalogued files.
    pub fn file_count(&self) -> Result<i64> {
        self.conn.query_row("SELECT COUNT(*) FROM files", [], |r| r.get(0)).ctx("count files")
    }

    // ---- daemon (serve, status, backup) ---------------------------------------------------------------------

    /// Copies the catalog to `dest` with SQLite's online backup: a consistent snapshot taken while other
    /// connections keep reading and writing (WAL readers do not block writers). The copy is written next to
    /// `dest` (0600), checked (`PRAGMA quick_check`), switched to a self-contained rollback journal, fsynced and
    /// renamed into place. An existing `dest` is never overwritten.
    pub fn backup_to(&self, dest: &Path) -> Result<()> {
        if dest.symlink_metadata().is_ok() {
            return Err(Error::Backup(format!("{dest:?} exists; give a new file name")));
        }
        let name = dest.file_name().ok_or_else(|| Error::Invalid(format!("{dest:?} is not a file name")))?;
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(format!(".{}.partial", std::process::id()));
        let tmp = dest.with_file_name(tmp_name);
        OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp).at(&tmp)?;
        let result = (|| -> Result<()> {
            let mut dst = Connection::open(&tmp).ctx("open the backup file")?;
            {
                let backup = rusqlite::backup::Backup::new(&self.conn, &mut dst).ctx("start the backup")?;
                let start = std::time::Instant::now();
                loop {
                    // All pages in one step: one read snapshot, so concurrent commits cannot restart the copy.
                    match backup.step(-1).ctx("copy the catalog")? {
                        rusqlite::backup::StepResult::Done => break,
                        rusqlite::backup::StepResult::More => {}
                        _ if start.elapsed() > Duration::from_secs(60) => {
                            return Err(Error::Backup("the catalog stayed locked for 60 s; abandoned".into()))
                        }
                        _ => std::thread::sleep(Duration::from_millis(100)),
                    }
                }
            }
            let check: String = dst.query_row("PRAGMA quick_check", [], |r| r.get(0)).ctx("check the backup")?;
            if check != "ok" {
                return Err(Error::Backup(format!("the copy does not check out: {check}")));
            }
            let _: String =
                dst.query_row("PRAGMA journal_mode = DELETE", [], |r| r.get(0)).ctx("set the backup's journal")?;
            dst.close().map_err(|(_, e)| e).ctx("close the backup")?;
            std::fs::File::open(&tmp).and_then(|f| f.sync_all()).at(&tmp)?;
            if dest.symlink_metadata().is_ok() {
                return Err(Error::Backup(format!("{dest:?} appeared meanwhile; not overwritten")));
            }
            std::fs::rename(&tmp, dest).at(dest)?;
            let dir = dest.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
            std::fs::File::open(dir).and_then(|d| d.sync_all()).at(dir)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }

    /// What earlier sessions of a network source already dealt with: (relative path, size, mtime) of items that
    /// ended done, duplicate or failed, and of every item of a session still open (a resume deals with those). A
    /// pass that finds nothing outside this set (and nothing already imported) has no new work.
    pub fn source_items_seen(&self, source_id: i64) -> Result<std::collections::HashSet<(Vec<u8>, u64, i64)>> {
        let mut st = self
            .conn
            .prepare(
                "SELECT DISTINCT i.rel_path, i.size, i.mtime_ns FROM import_items i
                   JOIN import_sessions s ON s.id = i.session_id
                  WHERE s.source_id = ?1 AND (i.state IN ('done','duplicate','failed')
                     OR (s.status NOT IN ('completed','failed') AND s.can_resume = 1))",
            )
            .ctx("items seen from source")?;
        let rows = st
            .query_map([source_id], |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)? as u64, r.get::<_, i64>(2)?)))
            .ctx("items seen from source")?;
        rows.collect::<rusqlite::Result<_>>().ctx("items seen from source")
    }

    /// The newest warnings and errors of every source, newest first.
    pub fn recent_problems(&self, limit: u32) -> Result<Vec<SourceEvent>> {
        rows(
            &self.conn,
            "SELECT id, source_id, session_id, at, level, message FROM network_source_events
                  WHERE level IN ('warn','error') ORDER BY id DESC LIMIT ?1",
            [limit],
            |r| {
                Ok(SourceEvent {
                    id: r.get(0)?,
                    source_id: r.get(1)?,
                    session_id: r.get(2)?,
                    at: r.get(3)?,
                    level: r.get(4)?,
                    message: r.get(5)?,
                })
            },
            "recent problems",
        )
    }
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
    rows(conn, &format!("{CAMERA_SELECT} ORDER BY c.slug"), [], Catalog::camera_from_row, "list cameras")
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
    conn.query_row("SELECT EXISTS(SELECT 1 FROM cameras WHERE slug = ?1)", [slug], |r| r.get(0))
        .ctx("check camera slug")
}

fn has_blob_in_couple(conn: &Connection, couple_id: i64, hash: &str) -> Result<bool> {
    conn.query_row(
        "SELECT EXISTS(SELECT 1 FROM files f JOIN blobs b ON b.hash = f.blob_hash
           WHERE f.blob_hash = ?2 AND f.couple_id = ?1 AND b.health = 'ok')",
        params![couple_id, hash],
        |r| r.get(0),
    )
    .ctx("check duplicate")
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

/// One finalize transaction: blobs, files and item states of a group of items land together or not at all.
pub struct Finalize<'a> {
    tx: rusqlite::Transaction<'a>,
    progress: Progress,
}

impl Finalize<'_> {
    /// See [`Catalog::blob_health`].
    pub fn blob_health(&self, hash: &str) -> Result<Option<String>> {
        blob_health_on(&self.tx, hash)
    }

    /// See [`Catalog::heal_blob`].
    pub fn heal_blob(&self, hash: &str, session_id: Option<i64>, how: &str) -> Result<()> {
        heal_blob_on(&self.tx, hash, session_id, how)
    }

    /// A salvaged (damaged) file of the couple that came from the same original path with the same size: what a
    /// later clean read of that file replaces.
    pub fn damaged_file_like(&self, couple_id: i64, original_path: &[u8], size: u64) -> Result<Option<i64>> {
        self.tx
            .query_row(
                "SELECT f.id FROM files f JOIN blobs b ON b.hash = f.blob_hash
                   WHERE f.couple_id = ?1 AND f.original_path = ?2 AND f.bad_ranges IS NOT NULL AND b.size = ?3
                   ORDER BY f.id LIMIT 1",
                params![couple_id, original_path, size as i64],
                |r| r.get(0),
            )
            .optional()
            .ctx("find damaged file")
    }

    /// Replaces a salvaged file's content with a clean verified copy: same file, path and inode, new blob; an event
    /// tells the mount to drop what it cached.
    pub fn replace_damaged(&mut self, file_id: i64, hash: &str, size: u64, session_id: i64) -> Result<()> {
        let t = now();
        self.tx
            .execute(
                "INSERT OR IGNORE INTO blobs (hash, size, stored_at, verified_at) VALUES (?1, ?2, ?3, ?3)",
                params![hash, size as i64, t],
            )
            .ctx("insert blob")?;
        let old: String = self
            .tx
            .query_row("SELECT blob_hash FROM files WHERE id = ?1", [file_id], |r| r.get(0))
            .ctx("find damaged file")?;
        self.tx
            .execute(
                "UPDATE files SET blob_hash = ?2, bad_ranges = NULL, session_id = ?3 WHERE id = ?1",
                params![file_id, hash, session_id],
            )
            .ctx("replace damaged file")?;
        add_archive_event(
            &self.tx,
            "file_replaced",
            Some(hash),
            Some(file_id),
            Some(session_id),
            &format!("salvaged copy {old} replaced by a clean verified copy"),
        )
    }

    pub fn couple_has_blob(&self, couple_id: i64, hash: &str) -> Result<bool> {
        has_blob_in_couple(&self.tx, couple_id, hash)
    }

    /// True when a name key is taken in the directory.
    pub fn name_taken(&self, couple_id: i64, ft: FootageType, camera_id: Option<i64>, key: &str) -> Result<bool> {
        self.tx
            .prepare_cached(
                "SELECT EXISTS(SELECT 1 FROM files WHERE couple_id = ?1 AND footage_type = ?2
                   AND IFNULL(camera_id, 0) = ?3 AND name_key = ?4)",
            )
            .ctx("check name")?
            .query_row(params![couple_id, ft.as_str(), camera_id.unwrap_or(0), key], |r| r.get(0))
            .ctx("check name")
    }

    pub fn cameras(&self) -> Result<Vec<Camera>> {
        cameras_on(&self.tx)
    }

    pub fn add_camera(&self, c: &NewCamera) -> Result<i64> {
        insert_camera(&self.tx, c)
    }

    pub fn camera_slug_taken(&self, slug: &str) -> Result<bool> {
        slug_taken(&self.tx, slug)
    }

    /// Where a catalogued file sits: its camera and footage type.
    pub fn file_placement(&self, file_id: i64) -> Result<Option<(Option<i64>, FootageType)>> {
        let row: Option<(Option<i64>, String)> = self
            .tx
            .query_row("SELECT camera_id, footage_type FROM files WHERE id = ?1", [file_id], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()
            .ctx("find file placement")?;
        match row {
            Some((cam, ft)) => Ok(Some((cam, FootageType::parse(&ft)?))),
            None => Ok(None),
        }
    }

    /// The display name of an already catalogued file.
    pub fn display_name(&self, file_id: i64) -> Result<Option<Vec<u8>>> {
        self.tx
            .query_row("SELECT display_name FROM files WHERE id = ?1", [file_id], |r| r.get(0))
            .optional()
            .ctx("find file name")
    }

    /// The state of an item (a sidecar's clip, which may have ended in an earlier transaction).
    pub fn item_state(&self, item_id: i64) -> Result<Option<ItemState>> {
        let st: Option<String> = self
            .tx
            .query_row("SELECT state FROM import_items WHERE id = ?1", [item_id], |r| r.get(0))
            .optional()
            .ctx("find item state")?;
        Ok(st.map(|s| ItemState::parse(&s)))
    }

    /// The file an item was catalogued as, if it is done.
    pub fn item_file(&self, item_id: i64) -> Result<Option<i64>> {
        self.tx
            .query_row("SELECT file_id FROM import_items WHERE id = ?1", [item_id], |r| r.get::<_, Option<i64>>(0))
            .optional()
            .ctx("find item file")
            .map(Option::flatten)
    }

    pub fn insert_file(&mut self, f: &NewFile) -> Result<i64> {
        let t = now();
        self.tx
            .execute(
                "INSERT OR IGNORE INTO blobs (hash, size, stored_at, verified_at) VALUES (?1, ?2, ?3, ?3)",
                params![f.blob_hash, f.blob_size as i64, t],
            )
            .ctx("insert blob")?;
        self.tx
            .execute(
                "INSERT INTO files (couple_id, footage_type, camera_id, blob_hash, display_name, name_key,
                    original_path, source, source_mtime_ns, imported_at, session_id, sidecar_of, captured_at,
                    bad_ranges)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
                params![
                    f.couple_id,
                    f.footage_type.as_str(),
                    f.camera_id,
                    f.blob_hash,
                    f.display_name,
                    f.name_key,
                    f.original_path,
                    f.source,
                    f.source_mtime_ns,
                    t,
                    f.session_id,
                    f.sidecar_of,
                    f.captured_at,
                    f.bad_ranges
                ],
            )
            .ctx("insert file")?;
        Ok(self.tx.last_insert_rowid())
    }

    /// Marks an item done (catalogued as `file_id`) and counts it.
    pub fn item_done(&mut self, item: &Item, file_id: i64) -> Result<()> {
        self.tx
            .execute(
                "UPDATE import_items SET state = 'done', file_id = ?2, error = NULL, updated_at = ?3, healed = ?4,
                    bad_ranges = ?5 WHERE id = ?1",
                params![item.id, file_id, now(), item.healed, item.bad_ranges],
            )
            .ctx("mark item done")?;
        self.progress.add(Progress::one(ItemState::Done, item.size));
        Ok(())
    }

    /// Ends an item as duplicate or failed inside the transaction.
    pub fn item_end(&mut self, item: &Item, state: ItemState, error: Option<&str>) -> Result<()> {
        self.tx
            .execute(
                "UPDATE import_items SET state = ?2, error = ?3, updated_at = ?4, healed = ?5 WHERE id = ?1",
                params![item.id, state.as_str(), error, now(), item.healed],
            )
            .ctx("end item")?;
        self.progress.add(Progress::one(state, item.size));
        Ok(())
    }

    /// Commits and adds the counted progress to the session.
    pub fn commit_for(self, session_id: i64) -> Result<()> {
        add_progress(&self.tx, session_id, self.progress)?;
        self.tx.commit().ctx("commit finalize")
    }
}
