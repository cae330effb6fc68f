//! The catalog's row types and enums: what every backend stores and every consumer reads. Plain data, no
//! storage: the SQL that reads and writes them lives in `sqlite/`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

pub use crate::blobs::Sums;
use crate::error::{Error, Result};

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

/// The three kinds of footage a wedding film is cut from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, serde::Deserialize, PartialOrd, Ord)]
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
    /// The camera this one was merged into (`camera merge`): not listed; what would route here routes there.
    pub merged_into: Option<i64>,
}

/// A camera with the number of files catalogued under it (`camera list`). Routing and the tree use [`Camera`]
/// alone: counting is a scan of the files, which must not happen once per routed clip.
#[derive(Clone, Debug, Serialize)]
pub struct CameraListing {
    #[serde(flatten)]
    pub camera: Camera,
    pub file_count: i64,
}

/// A file as the mount's tree lists it: only what a listing shows (a lighter row than [`FileRow`], read a
/// million times by a walk of the tree).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TreeFile {
    pub id: i64,
    pub blob_id: i64,
    pub couple_id: i64,
    pub footage_type: FootageType,
    pub camera_id: Option<i64>,
    pub blob_hash: String,
    pub size: u64,
    pub display_name: Vec<u8>,
    pub source_mtime_ns: i64,
    /// Unix seconds.
    pub imported_at: i64,
    pub captured_at: Option<i64>,
    /// Stored from a salvaged copy (the file has bad ranges).
    pub damaged: bool,
}

impl From<&FileRow> for TreeFile {
    fn from(f: &FileRow) -> TreeFile {
        TreeFile {
            id: f.id,
            blob_id: f.blob_id,
            couple_id: f.couple_id,
            footage_type: f.footage_type,
            camera_id: f.camera_id,
            blob_hash: f.blob_hash.clone(),
            size: f.size,
            display_name: f.display_name.clone(),
            source_mtime_ns: f.source_mtime_ns,
            imported_at: f.imported_at,
            captured_at: f.captured_at,
            damaged: f.bad_ranges.is_some(),
        }
    }
}

/// A couple folder of the mount's tree: a couple with at least one file, and the newest import below it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TreeCouple {
    pub id: i64,
    pub folder_name: String,
    pub files: i64,
    /// Unix seconds.
    pub newest_import: i64,
}

/// A camera folder of the mount's tree (`/<couple>/source/<type>/<camera>`): how many files it holds and the
/// newest import among them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TreeCamera {
    pub footage_type: FootageType,
    pub camera_id: Option<i64>,
    pub files: i64,
    /// Unix seconds.
    pub newest_import: i64,
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
    pub(crate) fn parse(s: &str) -> Self {
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
    /// The check of the card's own ASC MHL history (written on set), if it had one: a one-line summary.
    pub onset_manifest: Option<String>,
    /// What that check found wrong, as JSON (a list of problems).
    pub onset_problems: Option<String>,
}

impl Session {
    /// True while the session can still be worked on: not completed or failed, and not cancelled for good.
    pub fn is_open(&self) -> bool {
        !self.status.is_final() && self.can_resume
    }

    /// Completed with failed files: `resume` tries them again.
    pub fn has_failed_files(&self) -> bool {
        self.status == SessionStatus::Completed && self.files_error > 0
    }

    /// Marked cancelled for good while still open (`session cancel` of a running session): the process running
    /// it stops and ends it.
    pub fn cancel_requested(&self) -> bool {
        !self.can_resume && !self.status.is_final()
    }

    /// The error of a `resume` (or cancel) this session refuses.
    pub fn not_resumable(&self) -> Error {
        let status = if self.status == SessionStatus::Cancelled { "cancelled for good" } else { self.status.as_str() };
        Error::NotResumable { id: self.id, status: status.to_string() }
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
    pub(crate) fn parse(s: &str) -> Self {
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
    /// The content's xxHash checksums, read with its hash in this run (the copy, or the duplicate check); not kept
    /// in the import log (an item read back from it has none), they go to its blob's row at finalize.
    pub sums: Option<Sums>,
}

/// One item of a session with its blob's checksums, for the session's ASC MHL history
/// ([`ReadCatalog::session_sums`](super::ReadCatalog::session_sums)).
#[derive(Clone, Debug)]
pub struct SessionSum {
    pub rel_path: Vec<u8>,
    pub size: u64,
    pub mtime_ns: i64,
    /// The BLAKE3 blob hash.
    pub hash: String,
    /// The blob's xxh64 (hex), when computed at import.
    pub xxh64: Option<String>,
    /// The blob's XXH3-128 (hex), when computed at import.
    pub xxh128: Option<String>,
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
    /// The blob's checksums, recorded with a new blob and filling in those of a stored blob that has none.
    pub sums: Option<&'a Sums>,
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
    /// Where the password lives when not in `password_enc`: a reference such as
    /// `keyring:HOST:CATALOG-ID/source/ID` (the OS keyring of seat HOST) or `memory:HOST:PID/source/ID` (the
    /// memory of one process, `--ephemeral-secrets`); None: in `password_enc` (or no password). `secrets::Tier`
    /// reads it.
    pub credential_key: Option<String>,
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
    /// What `update_source` may change of this source, as it is now (edits start from it).
    pub fn settings(&self) -> SourceSettings<'_> {
        SourceSettings {
            path: &self.path,
            username: &self.username,
            password_enc: &self.password_enc,
            credential_key: self.credential_key.as_deref(),
            couple_id: self.couple_id,
            footage_type: self.footage_type,
            camera_id: self.camera_id,
            post_import: &self.post_import,
            duplicates: self.duplicates,
        }
    }

    /// The source as a URL, without credentials: `smb://host:port/share/path`, `nfs://host[:port]/export/path`
    /// with `mount_port=`, `export=` (an export of other than one component) and `uid=&gid=` (an NFS identity,
    /// stored as `UID:GID` in `username`) as `SourceUrl::parse` reads them. Port 0 (NFS: ask the portmapper) is
    /// left out.
    pub fn url(&self) -> String {
        use crate::sources::url_escape;
        let path = self.path.trim_start_matches('/');
        let host = if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        let share = self.share.trim_matches('/');
        let mut u = format!("{}://{host}", self.protocol);
        if self.port != 0 {
            u.push_str(&format!(":{}", self.port));
        }
        // Each component escaped (`%23`, `%25`, ...) so that `SourceUrl::parse` reads this row back.
        let comps: Vec<String> = [share, path]
            .iter()
            .flat_map(|p| p.split('/'))
            .filter(|c| !c.is_empty())
            .map(|c| url_escape(c, false))
            .collect();
        u.push('/');
        u.push_str(&comps.join("/"));
        let mut query = Vec::new();
        if let Some(mp) = self.mount_port {
            query.push(format!("mount_port={mp}"));
        }
        if self.protocol == "nfs" {
            // The export is the first path component unless named (`/`, `/srv/nfs`).
            if share.is_empty() || share.contains('/') {
                query.push(format!("export={}", url_escape(&format!("/{share}"), true)));
            }
            if let Some((uid, gid)) = self.username.split_once(':') {
                query.push(format!("uid={uid}&gid={gid}"));
            }
        }
        if !query.is_empty() {
            u.push('?');
            u.push_str(&query.join("&"));
        }
        // The url crate trims spaces at the end of what it parses.
        let kept = u.trim_end_matches(' ').len();
        let trailing = "%20".repeat(u.len() - kept);
        u.truncate(kept);
        u + &trailing
    }
}

/// What `source edit` and `source set-password` may change of a source (its protocol, host, port and share
/// stay: another server is another source).
#[derive(Clone, Debug)]
pub struct SourceSettings<'a> {
    pub path: &'a str,
    /// `DOMAIN;user` for an SMB user of a domain; empty for a guest login.
    pub username: &'a str,
    pub password_enc: &'a [u8],
    /// See [`NetworkSource::credential_key`].
    pub credential_key: Option<&'a str>,
    pub couple_id: i64,
    pub footage_type: Option<FootageType>,
    pub camera_id: Option<i64>,
    pub post_import: &'a str,
    pub duplicates: DuplicateAction,
}

/// A source to insert: its server and share, which never change, and what `source edit` may change later.
#[derive(Clone, Debug)]
pub struct NewNetworkSource<'a> {
    pub protocol: &'a str,
    pub host: &'a str,
    pub port: u16,
    pub mount_port: Option<u16>,
    pub share: &'a str,
    pub settings: SourceSettings<'a>,
}

/// One source's stored credential replaced by `Registry::replace_source_credentials`, only if it is still what
/// was read (`old_*`): a change made meanwhile by another process is not overwritten.
#[derive(Clone, Debug)]
pub struct CredentialChange {
    pub id: i64,
    pub old_password_enc: Vec<u8>,
    pub old_credential_key: Option<String>,
    pub password_enc: Vec<u8>,
    pub credential_key: Option<String>,
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
    /// xxh64 as [`Sums`] writes it; `None` for a blob stored before the checksums were kept (and not read since).
    pub xxh64: Option<String>,
    /// XXH3-128 as [`Sums`] writes it; `None` as for `xxh64`.
    pub xxh128: Option<String>,
}

/// Where a page of [`ReadCatalog::blobs_to_verify`](crate::catalog::ReadCatalog::blobs_to_verify) starts: after
/// the blob with this key (its `verified_at`, 0 for never) and row id. The default starts before every blob.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VerifyCursor {
    pub verified: i64,
    pub id: i64,
}

impl Default for VerifyCursor {
    fn default() -> Self {
        VerifyCursor { verified: i64::MIN, id: i64::MIN }
    }
}

/// One scrub: a `verify` run (`trigger` `verify`) or one of the daemon's scheduled ones (`schedule`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ScrubRun {
    pub id: i64,
    pub started_at: i64,
    /// None while it runs (or when its process died during it).
    pub finished_at: Option<i64>,
    pub trigger: String,
    pub blobs_checked: i64,
    pub bytes_checked: i64,
    pub damaged: i64,
    pub missing: i64,
    /// Files in `objects/` the catalog does not know.
    pub orphans: i64,
    /// True when it went through everything it was asked to check (its limit, or every blob due), not stopped.
    pub complete: bool,
    pub error: Option<String>,
}

/// An entry of the archive's event log.
#[derive(Clone, Debug, Serialize)]
pub struct ArchiveEvent {
    pub id: i64,
    pub at: i64,
    /// `blob_damaged`, `blob_missing`, `blob_healed`, `file_replaced` or `lifecycle` (a rename, move, merge,
    /// removal, restore or purge: the tree reloads what it cached).
    pub kind: String,
    pub blob_hash: Option<String>,
    pub file_id: Option<i64>,
    pub session_id: Option<i64>,
    pub message: String,
    /// What a `lifecycle` event took from where it was shown ([`Gone`] list as JSON).
    pub detail: Option<String>,
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

/// Joins several paths into one BLOB (NUL cannot occur inside a path).
pub fn join_paths(paths: &[Vec<u8>]) -> Vec<u8> {
    paths.join(&0u8)
}

pub(crate) fn split_paths(b: &[u8]) -> Vec<Vec<u8>> {
    if b.is_empty() {
        return Vec::new();
    }
    b.split(|c| *c == 0).map(|s| s.to_vec()).collect()
}

/// Who made a change and when: what the audit log records (the uid of the process; the time from the archive's
/// clock, `$NIGHTFOX_NOW` in tests).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Actor {
    pub uid: u32,
    pub at: i64,
}

impl Actor {
    /// This process's user, at `at`.
    pub fn this_process(at: i64) -> Actor {
        Actor { uid: rustix::process::getuid().as_raw(), at }
    }
}

/// One entry of the archive-wide audit log (`nightfox log`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AuditEvent {
    pub id: i64,
    pub at: i64,
    pub uid: u32,
    /// `couple.add`, `couple.rename`, `camera.add`, `camera.rename`, ...
    pub action: String,
    pub couple_id: Option<i64>,
    /// The couple's folder name now (None for archive-wide events).
    pub couple: Option<String>,
    /// One line: what changed.
    pub summary: String,
}

/// Where a file is shown in the tree: couple, footage type, camera (None: `unknown`) and display name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
pub struct Placement {
    pub couple_id: i64,
    pub footage_type: FootageType,
    pub camera_id: Option<i64>,
    /// Raw bytes (display names need not be UTF-8).
    pub name: Vec<u8>,
}

/// A file moved (by `file move` or a camera merge): where it was shown and where it is now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Moved {
    pub file_id: i64,
    pub from: Placement,
    pub to: Placement,
}

/// An old place of a file that still resolves to it (not listed): recorded when it moved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileAlias {
    pub file_id: i64,
    pub at: Placement,
    pub created_at: i64,
}

/// What a lifecycle change took away from where a front end may have seen it (old names, removed entries), as
/// an archive event carries it (JSON in `ArchiveEvent::detail`), so the mount forgets exactly those entries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(tag = "gone", rename_all = "snake_case")]
pub enum Gone {
    /// A couple folder's old name (renamed) or the folder itself (removed).
    Couple { couple_id: i64, folder: String },
    /// A camera folder's old name (renamed, or merged into another camera), in every couple.
    Camera { camera_id: i64, slug: String },
    /// A file's old place (moved) or the file itself (removed).
    File { file_id: i64, at: Placement },
}

impl Gone {
    /// The JSON an archive event carries.
    pub fn to_json(list: &[Gone]) -> String {
        serde_json::to_string(list).unwrap_or_else(|_| "[]".into())
    }

    /// The entries of an event's detail; nothing for a detail that is not such a list.
    pub fn from_json(detail: &str) -> Vec<Gone> {
        serde_json::from_str(detail).unwrap_or_default()
    }
}

/// What a trash entry holds: a whole couple, one file (a clip with its sidecars), or what one import added.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TrashKind {
    Couple,
    File,
    Session,
}

impl TrashKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TrashKind::Couple => "couple",
            TrashKind::File => "file",
            TrashKind::Session => "session",
        }
    }

    pub fn parse(s: &str) -> Option<TrashKind> {
        match s {
            "couple" => Some(TrashKind::Couple),
            "file" => Some(TrashKind::File),
            "session" => Some(TrashKind::Session),
            _ => None,
        }
    }
}

/// One entry of the trash: gone from the tree, restorable until `purge_after`, then purged by `gc`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TrashEntry {
    pub id: i64,
    pub kind: TrashKind,
    pub couple_id: i64,
    /// The couple's folder name.
    pub couple: String,
    /// The session `session undo` removed.
    pub session_id: Option<i64>,
    /// What was removed, as the user named it (a tree path, a couple folder, `session N`).
    pub label: String,
    pub files: i64,
    pub bytes: i64,
    pub trashed_at: i64,
    /// When `gc` may purge it (seconds since the epoch).
    pub purge_after: i64,
    pub uid: u32,
}

/// What purging a trash entry deleted from the catalog.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Purged {
    pub entries: i64,
    pub files: i64,
    pub couples: i64,
}

/// A blob no file references (live or in the trash): garbage for `gc`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Garbage {
    pub id: i64,
    pub hash: String,
    pub size: u64,
}
