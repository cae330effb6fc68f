//! The import pipeline and its sessions: scan, hash (only duplicate candidates), copy with the hash computed
//! inline, validate (fsync, drop the page cache, re-hash from disk, roll back a mismatch), land the blob and
//! finalize the catalog rows of each clip with its sidecars in one transaction. Every step and item is written to
//! the catalog as it happens, so a killed, cancelled or paused session resumes exactly where it stopped without
//! copying finished files again. One import per couple runs at a time (an advisory lock in `locks/`).

use std::collections::{HashMap, VecDeque};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde::Serialize;
use tracing::{debug, info, warn};

use crate::archive::Archive;
use crate::blobs::{self, remove_if_exists, Durability, HashHex};
use crate::catalog::prelude::*;
use crate::catalog::{
    DuplicateAction, FootageType, Item, ItemState, NewCamera, NewFile, NewItem, Session, SessionStatus,
};
use crate::error::{Error, Result};
use crate::media::{self, MediaInfo};
use crate::organize;
use crate::sources::{local::LocalSource, EntryKind, Source};

mod retry;
pub use retry::{Retry, RetryPolicy};

/// What the user asked to import.
#[derive(Clone, Debug)]
pub struct ImportRequest {
    pub couple: String,
    /// `None` when the user gave no `--type`: routing may use a matched camera's type, else `modern`.
    pub footage_type: Option<FootageType>,
    pub camera: Option<String>,
    pub duplicates: DuplicateAction,
    pub paths: Vec<PathBuf>,
    /// Copy what can be read of a damaged file (unreadable ranges as zeros, recorded) instead of failing it.
    pub salvage: bool,
}

/// Receives progress; the CLI draws bars with it, tests and scripts ignore it.
pub trait Observer: Sync {
    fn start(&self, _files: u64, _bytes: u64) {}
    fn advance(&self, _bytes: u64) {}
    fn finish(&self) {}
}

/// An observer that ignores everything.
pub struct Quiet;
impl Observer for Quiet {}

/// The outcome of a session run.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    pub session: i64,
    pub couple: String,
    pub status: SessionStatus,
    pub files_total: i64,
    pub files_imported: i64,
    pub files_duplicate: i64,
    pub files_failed: i64,
    pub files_skipped: i64,
    /// Salvaged (`--salvage`): stored with their unreadable ranges as zeros; never counted as imported.
    pub files_damaged: i64,
    /// Verified copies that replaced a damaged or missing blob (or a salvaged file).
    pub files_healed: i64,
    pub bytes_total: i64,
    pub bytes_imported: i64,
    pub failures: Vec<String>,
    /// `path: ranges` of each salvaged file.
    pub damaged: Vec<String>,
    pub error: Option<String>,
    /// The check of the card's own ASC MHL history, if it had one (see [`crate::mhl::onset`]).
    pub onset_manifest: Option<String>,
}

/// What committing a file from the ingest directory did.
#[derive(Clone, Debug)]
pub struct Committed {
    pub hash: String,
    pub size: u64,
    /// The new catalogued file; `None` when the content was already in the couple.
    pub file_id: Option<i64>,
    pub duplicate: bool,
}

/// Tunables; defaults suit local disks and cards.
#[derive(Clone, Debug)]
pub struct Tuning {
    /// Groups (a clip with its sidecars) processed at once.
    pub workers: usize,
}

impl Default for Tuning {
    fn default() -> Self {
        let workers = std::env::var("NIGHTFOX_IMPORT_WORKERS").ok().and_then(|v| v.parse().ok()).unwrap_or(2);
        Tuning { workers: workers.clamp(1, 16) }
    }
}

/// Runs imports and resumes against one archive.
pub struct Importer<'a> {
    archive: &'a Archive,
    observer: &'a dyn Observer,
    cancel: Arc<AtomicBool>,
    tuning: Tuning,
}

fn path_bytes(p: &Path) -> Vec<u8> {
    p.as_os_str().as_bytes().to_vec()
}

fn bytes_path(b: &[u8]) -> PathBuf {
    PathBuf::from(OsStr::from_bytes(b))
}

fn file_name_bytes(rel: &[u8]) -> &[u8] {
    match rel.iter().rposition(|&c| c == b'/') {
        Some(i) => &rel[i + 1..],
        None => rel,
    }
}

fn parent_bytes(rel: &[u8]) -> &[u8] {
    match rel.iter().rposition(|&c| c == b'/') {
        Some(i) => &rel[..i],
        None => b"",
    }
}

fn temp_name(session: i64, item: i64) -> String {
    format!("s{session}-i{item}.part")
}

/// Is the session marked cancelled for good while still open (see [`ImportLog::request_cancel`])?
fn marked_for_good(cat: &Catalog, id: i64) -> bool {
    match cat.session(id) {
        Ok(s) => s.cancel_requested(),
        Err(e) => {
            debug!(session = id, "cannot look for a cancel: {e}");
            false
        }
    }
}

/// How often a running session looks for a cancel made elsewhere.
const CANCEL_POLL: Duration = Duration::from_millis(500);

/// Why a session stops before its end.
enum Stop {
    DiskFull(PathBuf),
    Cancelled,
    /// The archive side failed, or a local source vanished: the session pauses.
    Fatal(Error),
    /// A network source failed too often in a row: the session pauses and the source says so.
    Paused(Error),
}

/// [`Importer::cancel_session`] of a session whose couple is held: marks it for the process that runs it (the one
/// the lease's note names, never a guess), or says why not (`busy`: another session or tool holds the couple).
fn request_cancel(cat: &Catalog, s: &Session, busy: Error) -> Result<Cancelled> {
    let id = s.id;
    let named = cat.couple_lock_holder(s.couple_id).and_then(|n| n.parse::<i64>().ok()) == Some(id);
    // An `/ingest` commit holds the couple under its session, but no run watches that session.
    if !named || s.source.starts_with("ingest:") {
        return Err(busy);
    }
    if cat.request_cancel(id)? {
        info!(session = id, "session {id} runs elsewhere: marked cancelled for good");
        return Ok(Cancelled::Requested(cat.session(id)?));
    }
    let now = cat.session(id)?;
    if now.cancel_requested() {
        // Marked before (a second cancel): it is still stopping.
        return Ok(Cancelled::Requested(now));
    }
    // It ended before the mark could be set.
    Err(now.not_resumable())
}

/// What [`Importer::cancel_session`] did.
#[derive(Debug)]
pub enum Cancelled {
    /// Nobody ran it: it is ended for good, its partial copies removed.
    Ended(Session),
    /// A process runs it: it is marked cancelled for good, and that process stops it at its next chunk.
    Requested(Session),
}

impl Cancelled {
    /// What was done, in one line for the user.
    pub fn message(&self) -> String {
        let (s, done) = match self {
            Cancelled::Ended(s) => (
                s,
                format!(
                    "session {} cancelled for good: {} of {} files were finished and stay in the archive",
                    s.id, s.files_processed, s.files_total
                ),
            ),
            Cancelled::Requested(s) => (
                s,
                format!(
                    "cancelling session {}: the process running it stops at its next chunk and ends it for good; \
                     the files it finished stay in the archive",
                    s.id
                ),
            ),
        };
        match s.source_id {
            Some(src) => format!(
                "{done} (source {src} stays enabled: its next pass brings what this session did not finish; \
                 `nightfox source disable {src}` stops that)"
            ),
            None => done,
        }
    }
}

/// What to do on the share with a file once it is safely catalogued.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PostImport {
    Leave,
    Delete,
    Move(String),
}

impl PostImport {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "leave" => Ok(PostImport::Leave),
            "delete" => Ok(PostImport::Delete),
            _ => match s.strip_prefix("move:") {
                Some(dir) if !dir.trim_matches('/').is_empty() => {
                    Ok(PostImport::Move(format!("/{}", dir.trim_matches('/'))))
                }
                _ => Err(Error::Invalid(format!(
                    "unknown post-import action {s:?} (expected leave, delete or move:REMOTE_DIR)"
                ))),
            },
        }
    }

    pub fn as_string(&self) -> String {
        match self {
            PostImport::Leave => "leave".into(),
            PostImport::Delete => "delete".into(),
            PostImport::Move(d) => format!("move:{d}"),
        }
    }
}

/// A network source behind a session.
struct Net {
    source_id: i64,
    post: PostImport,
}

/// Everything one run of a session needs.
struct Run<'r> {
    session: Session,
    source: &'r dyn Source,
    roots: Vec<PathBuf>,
    /// Roots are local paths (a vanished root pauses the session).
    local: bool,
    net: Option<Net>,
    retry: Retry,
    /// Blobs `verify` found damaged or missing: a verified copy of one replaces it.
    unhealthy: Unhealthy,
    /// The couple's lease, held for the whole run; taken again (or found lost) before a catalog step is retried
    /// (a Postgres lease goes with its connection when the server restarts).
    lease: Mutex<CoupleLease>,
}

/// Which blobs `verify` found damaged or missing, asked of the catalog per hash (one indexed lookup) the first time
/// a run meets the hash, and remembered for the run. Never the whole list: an archive whose blobs are all missing
/// (an external disk that was not mounted when `verify` ran) costs nothing more to import into.
struct Unhealthy {
    cat: Mutex<Catalog>,
    seen: Mutex<std::collections::HashMap<String, bool>>,
    /// The archive had no unhealthy blob when the run started (one indexed count): no hash is asked about. A
    /// blob `verify` finds bad during the run is healed by the next import of its content, or by `repair`.
    none: bool,
}

impl Unhealthy {
    fn new(cat: Catalog) -> Self {
        let none = matches!(cat.any_unhealthy_blob(), Ok(false));
        Unhealthy { cat: Mutex::new(cat), seen: Mutex::default(), none }
    }

    fn contains(&self, hash: &str) -> bool {
        if self.none {
            return false;
        }
        if let Some(&known) = self.seen.lock().get(hash) {
            return known;
        }
        // A catalog that cannot answer: treat the blob as unhealthy, so a verified copy replaces it (always safe).
        let bad = self.cat.lock().blob_health(hash).map_or(true, |h| h.is_some_and(|h| h != "ok"));
        self.seen.lock().insert(hash.to_string(), bad);
        bad
    }
}

impl<'a> Importer<'a> {
    pub fn new(archive: &'a Archive, observer: &'a dyn Observer, cancel: Arc<AtomicBool>) -> Self {
        Importer { archive, observer, cancel, tuning: Tuning::default() }
    }

    pub fn with_tuning(mut self, tuning: Tuning) -> Self {
        self.tuning = tuning;
        self
    }

    fn lock_couple(&self, cat: &Catalog, couple_id: i64, folder: &str) -> Result<CoupleLease> {
        match cat.try_lock_couple(couple_id)? {
            Some(l) => Ok(l),
            None => {
                let note = cat.couple_lock_holder(couple_id);
                let session = note
                    .and_then(|n| n.parse().ok())
                    .or_else(|| cat.unfinished_session_of(couple_id).ok().flatten())
                    .unwrap_or(0);
                Err(Error::CoupleBusy { couple: folder.to_string(), session })
            }
        }
    }

    fn new_run<'r>(
        &self,
        session: Session,
        source: &'r dyn Source,
        roots: Vec<PathBuf>,
        local: bool,
        lease: CoupleLease,
    ) -> Result<Run<'r>> {
        let cat = self.archive.catalog()?;
        let net = match session.source_id {
            Some(sid) => {
                let row = cat.source(sid)?;
                Some(Net { source_id: sid, post: PostImport::parse(&row.post_import)? })
            }
            None => None,
        };
        let policy = if local { RetryPolicy::from_env().local() } else { RetryPolicy::from_env() };
        let retry = Retry::new(policy, Arc::clone(&self.cancel), session.id);
        let unhealthy = Unhealthy::new(self.archive.catalog()?);
        Ok(Run { session, source, roots, local, net, retry, unhealthy, lease: Mutex::new(lease) })
    }

    /// Starts a new import session of local paths and runs it to the end (or until it pauses).
    pub fn import(&self, req: &ImportRequest) -> Result<Summary> {
        let cat = self.archive.catalog()?;
        let couple = cat.couple_by_folder(&req.couple)?;
        let camera_id = match &req.camera {
            Some(slug) => Some(cat.camera_by_slug(slug)?.id),
            None => None,
        };
        if req.paths.is_empty() {
            return Err(Error::Invalid("nothing to import: give at least one PATH".into()));
        }
        for p in &req.paths {
            std::fs::metadata(p).map_err(|e| Error::io(p, e))?;
        }
        let roots: Vec<PathBuf> =
            req.paths.iter().map(|p| std::path::absolute(p).unwrap_or_else(|_| p.clone())).collect();
        let mut lock = self.lock_couple(&cat, couple.id, &couple.folder_name)?;
        let source = LocalSource::new(&roots);
        let raw: Vec<Vec<u8>> = roots.iter().map(|r| path_bytes(r)).collect();
        let id = cat.create_session(
            couple.id,
            req.footage_type,
            camera_id,
            req.duplicates,
            &source.describe(),
            &raw,
            None,
            req.salvage,
        )?;
        lock.write_note(&id.to_string())?;
        info!(session = id, couple = %couple.folder_name, "import session started");
        let run = self.new_run(cat.session(id)?, &source, roots, true, lock)?;
        drop(cat);
        self.run(&run, false)
    }

    /// One pass over a configured network source, as a new import session.
    pub fn import_source(&self, source_id: i64) -> Result<Summary> {
        let cat = self.archive.catalog()?;
        let row = cat.source(source_id)?;
        if !row.enabled {
            return Err(Error::Disabled(format!(
                "source {source_id} is disabled: `nightfox source test {source_id}` enables it once it connects"
            )));
        }
        // A couple in the trash takes no import (`NoSuchCouple`), from a source enabled again after its removal too.
        cat.couple_by_folder(&row.couple)?;
        let source = self.open_source(&row)?;
        let mut lock = self.lock_couple(&cat, row.couple_id, &row.couple)?;
        let root = PathBuf::from(&row.path);
        let id = cat.create_session(
            row.couple_id,
            row.footage_type,
            row.camera_id,
            row.duplicates,
            &row.url(),
            &[path_bytes(&root)],
            Some(source_id),
            false,
        )?;
        lock.write_note(&id.to_string())?;
        info!(session = id, source = source_id, "network import session started");
        let run = self.new_run(cat.session(id)?, source.as_ref(), vec![root], false, lock)?;
        drop(cat);
        self.run(&run, false)
    }

    fn open_source(&self, row: &crate::catalog::NetworkSource) -> Result<Box<dyn Source>> {
        let password = crate::secrets::password_of(&self.archive.root, row)?;
        crate::sources::open_network(row, password)
    }

    /// Continues a session that was interrupted, cancelled or paused.
    pub fn resume(&self, id: i64) -> Result<Summary> {
        let cat = self.archive.catalog()?;
        let s = cat.session(id)?;
        // A couple in the trash takes no import, not even a retry of failed files (`NoSuchCouple`).
        cat.couple_by_folder(&s.couple)?;
        let mut lock = self.lock_couple(&cat, s.couple_id, &s.couple)?;
        // Read again under the lock: another process may have finished it meanwhile. A completed session with
        // failed files is resumable: they are tried again.
        let mut s = cat.session(id)?;
        if s.has_failed_files() && cat.reset_failed_items(id)? > 0 {
            info!(session = id, "retrying the failed files");
            s = cat.session(id)?;
        }
        if !s.is_open() {
            return Err(s.not_resumable());
        }
        let roots: Vec<PathBuf> = s.source_paths.iter().map(|b| bytes_path(b)).collect();
        lock.write_note(&id.to_string())?;
        info!(session = id, "resuming import session");
        match s.source_id {
            Some(sid) => {
                let row = cat.source(sid)?;
                drop(cat);
                let source = self.open_source(&row)?;
                let run = self.new_run(s, source.as_ref(), roots, false, lock)?;
                self.run(&run, true)
            }
            None if s.source.starts_with("local:") => {
                for r in &roots {
                    if std::fs::metadata(r).is_err() {
                        return Err(Error::SourceUnavailable { path: r.clone(), session: id });
                    }
                }
                drop(cat);
                let source = LocalSource::new(&roots);
                let run = self.new_run(s, &source, roots, true, lock)?;
                self.run(&run, true)
            }
            None => Err(Error::NotResumable { id, status: "without its source (removed)".into() }),
        }
    }

    /// Ends a session for good (`nightfox session cancel`): never resumed, its partial copies removed, what it
    /// finished stays in the archive. A session that a process runs (this one or another, on any seat) is marked
    /// so in the catalog: that process stops it at its next chunk and ends it. Refused while the couple is busy
    /// with another session.
    pub fn cancel_session(&self, id: i64) -> Result<Cancelled> {
        let cat = self.archive.catalog()?;
        let s = cat.session(id)?;
        let _lock = match self.lock_couple(&cat, s.couple_id, &s.couple) {
            Ok(l) => l,
            Err(busy @ Error::CoupleBusy { .. }) => return request_cancel(&cat, &s, busy),
            Err(e) => return Err(e),
        };
        let s = cat.session(id)?;
        // A completed session with failed files is still resumable (they are retried): it can be ended too. So can
        // one marked cancelled whose run could not end it (the catalog failed then): it is not final.
        if s.status.is_final() && !s.has_failed_files() {
            return Err(s.not_resumable());
        }
        cat.cancel_session(id)?;
        self.clean_temp(id, &[])?;
        info!(session = id, "session cancelled for good");
        Ok(Cancelled::Ended(cat.session(id)?))
    }

    /// Commits one file written into the mount's ingest directory: fsynced and re-hashed from disk (and checked
    /// against the hash computed while it was written, when the writes came in order), landed as a blob, and
    /// catalogued in `session_id` like a local import of `rel_path`: same routing, naming and duplicate rules; a
    /// sidecar whose clip was committed before follows it.
    pub fn commit_file(
        &self,
        session_id: i64,
        rel_path: &[u8],
        label: &[u8],
        tmp: &Path,
        inline: Option<&blobs::Digest>,
        mtime_ns: i64,
    ) -> Result<Committed> {
        std::fs::File::open(tmp).and_then(|f| f.sync_all()).map_err(|e| Error::io(tmp, e))?;
        let size = std::fs::metadata(tmp).map_err(|e| Error::io(tmp, e))?.len();
        // The checksums come with the inline hash when the writes were hashed as they came; else from this read.
        let (hash, sums, tree) = match inline.and_then(|d| d.sums.clone()) {
            Some(s) => {
                let (hash, tree) = blobs::validate_from_disk(tmp, true)?;
                (hash, Some(s), tree)
            }
            None => {
                let d = blobs::digest_from_disk(tmp)?;
                (d.hash, d.sums, None)
            }
        };
        if let Some(d) = inline {
            if d.hash != hash {
                return Err(Error::Mismatch { path: bytes_path(label), expected: d.hash.clone(), actual: hash });
            }
        }
        let mut cat = self.archive.catalog()?;
        let session = cat.session(session_id)?;
        // Pair a sidecar with a clip of the same folder committed earlier in this session.
        let name = file_name_bytes(rel_path);
        let dir = parent_bytes(rel_path);
        let mut sidecar_of = None;
        if organize::is_sidecar_name(name) {
            let done: Vec<Item> = cat
                .items(session_id)?
                .into_iter()
                .filter(|i| i.state == ItemState::Done && parent_bytes(&i.rel_path) == dir)
                .collect();
            let mut names: Vec<&[u8]> = done.iter().map(|i| file_name_bytes(&i.rel_path)).collect();
            names.push(name);
            if let Some(Some(k)) = organize::pair_sidecars(&names).last() {
                sidecar_of = Some(done[*k].id);
            }
        }
        let new = NewItem {
            path: label.to_vec(),
            rel_path: rel_path.to_vec(),
            size,
            mtime_ns,
            state: ItemState::Pending,
            sidecar_of: None,
            error: None,
        };
        let item_id = cat.add_item(session_id, &new, sidecar_of)?;
        cat.items_copied(&[(item_id, &hash, size, mtime_ns)])?;
        let heals = cat.blob_health(&hash)?.is_some_and(|h| h != "ok");
        land_retrying(&*self.archive.blobs, tmp, &hash, Durability::Now, heals)?;
        if let Some(tree) = tree {
            self.keep_outboard(&hash, &tree);
        }
        cat.set_item_state(item_id, ItemState::Stored, Some(&hash))?;
        let mut item = cat.item(item_id)?.ok_or(Error::NoSuchSession(session_id))?;
        item.healed = heals;
        item.sums = sums;
        let cat = Mutex::new(cat);
        let ended = self.finalize_groups(&session, &[vec![item]], &cat, None)?;
        let cat = cat.into_inner();
        let file_id = cat.item(item_id)?.and_then(|i| i.file_id);
        let duplicate = ended.iter().any(|(_, s)| *s == ItemState::Duplicate);
        Ok(Committed { hash, size, file_id, duplicate })
    }

    // ---- events and source state (network sources only) ----------------------------------------------------

    fn event(&self, run: &Run, level: &str, msg: &str) {
        if let Some(net) = &run.net {
            let r = self.archive.catalog().and_then(|c| c.add_event(net.source_id, Some(run.session.id), level, msg));
            if let Err(e) = r {
                warn!("cannot record a source event: {e}");
            }
        }
    }

    fn source_state(&self, run: &Run, state: &str, failures: Option<i64>, error: Option<&str>) {
        if let Some(net) = &run.net {
            if let Err(e) =
                self.archive.catalog().and_then(|c| c.set_source_state(net.source_id, state, failures, error))
            {
                warn!("cannot record the source state: {e}");
            }
        }
    }

    fn note_retry(&self, run: &Run, r: &retry::Retrying) {
        let msg = format!("retry {} in {:.1}s after: {}", r.failures, r.delay.as_secs_f64(), r.error);
        warn!("{msg}");
        self.event(run, "warn", &msg);
        self.source_state(run, "retrying", Some(r.failures as i64), Some(&r.error.to_string()));
    }

    fn note_recovered(&self, run: &Run) {
        info!("source connected again");
        self.event(run, "info", "connected again");
        self.source_state(run, "connected", Some(0), None);
    }

    /// Runs a source call with retries; notes retries and recovery.
    fn retrying<T>(&self, run: &Run, f: impl FnMut() -> Result<T>) -> Result<T> {
        let retried = std::cell::Cell::new(false);
        let out = run.retry.call(f, &|| run.source.reconnect(), &|r| {
            retried.set(true);
            self.note_retry(run, r)
        });
        if out.is_ok() && retried.get() {
            self.note_recovered(run);
        }
        out
    }

    /// Ends a run that cannot go on: records why, pauses or fails the session.
    fn stop_run(&self, run: &Run, cat: &Catalog, stop: Stop) -> Error {
        let id = run.session.id;
        let (status, e) = match stop {
            Stop::DiskFull(path) => (SessionStatus::Paused, Error::DiskFull { path, session: id }),
            Stop::Cancelled => (SessionStatus::Cancelled, Error::Interrupted(id)),
            Stop::Fatal(e) => (SessionStatus::Paused, e),
            Stop::Paused(e) => {
                self.source_state(run, "paused", Some(run.retry.failures() as i64), Some(&e.to_string()));
                self.event(run, "error", &format!("paused: {e}"));
                (SessionStatus::Paused, e)
            }
        };
        let msg = if matches!(e, Error::Interrupted(_)) { "cancelled by the user".to_string() } else { e.to_string() };
        if let Err(db) = cat.set_session_status(id, status, Some(&msg)) {
            warn!("cannot record the session status: {db}");
        }
        e
    }

    /// Starts a thread that looks at the session in the catalog twice a second until `ended` hangs up: once it
    /// is marked cancelled for good (`session cancel` or the dashboard, from any process or seat; an open session
    /// keeps that mark whatever status the run writes), the run stops at its next chunk. The thread is not joined:
    /// a catalog call stuck on a dead server never holds the run (or its couple's lease) back.
    fn watch_for_cancel(&self, run: &Run, ended: std::sync::mpsc::Receiver<()>) {
        let id = run.session.id;
        let (cat, flag) = match self.archive.catalog() {
            Ok(c) => (c, run.retry.for_good_flag()),
            Err(e) => return warn!(session = id, "cannot watch the session for a cancel: {e}"),
        };
        let watch = move || {
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = ended.recv_timeout(CANCEL_POLL) {
                if marked_for_good(&cat, id) {
                    info!(session = id, "cancelled for good from elsewhere: stopping at the next chunk");
                    flag.store(true, Ordering::Relaxed);
                    return;
                }
            }
        };
        if let Err(e) = std::thread::Builder::new().name("nightfox-cancel?".into()).spawn(watch) {
            warn!(session = id, "cannot watch the session for a cancel: {e}");
        }
    }

    /// Runs a session to its end or its stop. A catalog failure that outlived its retries (or came where no step
    /// retries) is told as [`Error::CatalogPaused`]: the session stays open for `resume`. A run that stopped
    /// while its session was cancelled for good (whatever stopped it: the cancel, a full disk, a share gone, the
    /// daemon stopping) ends it for good, as `session cancel` would have (the run may have written its status over
    /// the mark), its partial copies removed: [`Error::CancelledForGood`].
    fn run(&self, run: &Run, resuming: bool) -> Result<Summary> {
        let (ended, watching) = std::sync::mpsc::channel::<()>();
        self.watch_for_cancel(run, watching);
        let r = self.run_steps(run, resuming);
        drop(ended);
        let id = run.session.id;
        let e = match r {
            Ok(summary) => return Ok(summary),
            Err(e) => e,
        };
        let cat = self.archive.catalog();
        if run.retry.cancelled_for_good() || cat.as_ref().is_ok_and(|c| marked_for_good(c, id)) {
            debug!(session = id, "stopped ({e}) while cancelled for good");
            if let Err(e) = cat.and_then(|c| c.cancel_session(id)).and_then(|()| self.clean_temp(id, &[])) {
                warn!(session = id, "the session was cancelled, but cannot be ended: {e}");
            }
            info!(session = id, "session cancelled for good while it ran");
            return Err(Error::CancelledForGood(id));
        }
        if e.is_catalog_transient() {
            return Err(Error::CatalogPaused { session: id, failures: 1, last: e.to_string() });
        }
        Err(e)
    }

    fn run_steps(&self, run: &Run, resuming: bool) -> Result<Summary> {
        let id = run.session.id;
        let session = &run.session;
        let mut cat = self.archive.catalog()?;
        cat.start_run(id)?;
        let mut items = cat.items(id)?;
        if items.is_empty() {
            cat.set_session_status(id, SessionStatus::Scanning, None)?;
            let exclude = run.net.as_ref().and_then(|n| match &n.post {
                PostImport::Move(dir) => Some(PathBuf::from(dir)),
                _ => None,
            });
            let new = match self.retrying(run, || scan(run.source, &run.roots, exclude.as_deref())) {
                Ok(n) => n,
                Err(e @ Error::SourcePaused { .. }) => return Err(self.stop_run(run, &cat, Stop::Paused(e))),
                Err(e) if e.is_transient() => return Err(self.stop_run(run, &cat, Stop::Fatal(e))),
                Err(e) => {
                    self.event(run, "error", &format!("scan failed: {e}"));
                    self.source_state(run, "failed", None, Some(&e.to_string()));
                    cat.set_session_status(id, SessionStatus::Failed, Some(&e.to_string()))?;
                    return Err(e);
                }
            };
            cat.insert_items(id, &new)?;
            cat.recount_session(id)?;
            items = cat.items(id)?;
            if let Some(net) = &run.net {
                cat.touch_source_scan(net.source_id)?;
                self.source_state(run, "connected", Some(0), None);
                self.event(run, "info", &format!("connected; {} files found", items.len()));
            }
        } else {
            cat.recount_session(id)?;
        }
        if resuming {
            self.clean_temp(id, &items)?;
        }
        let todo_bytes: u64 = items.iter().filter(|i| !i.state.is_terminal()).map(|i| i.size).sum();
        let todo_files = items.iter().filter(|i| !i.state.is_terminal()).count() as u64;
        self.observer.start(todo_files, todo_bytes);

        cat.set_session_status(id, SessionStatus::Hashing, None)?;
        if run.net.is_some() {
            // A network file is read once: what this source gave before (same path, size and mtime) is skipped
            // without reading it again; other duplicates are found by content after the copy.
            for it in items.iter_mut().filter(|i| i.state == ItemState::Pending) {
                if cat.already_imported(session.couple_id, &session.source, &it.rel_path, it.size, it.mtime_ns)? {
                    cat.end_item(it, ItemState::Duplicate, Some("already imported from this source"))?;
                    it.state = ItemState::Duplicate;
                    self.observer.advance(it.size);
                }
            }
        } else {
            // Only clips whose size matches content already in the couple can be duplicates: hash those in place.
            // A sidecar is a duplicate only with its clip, and empty files never are.
            let sizes = cat.couple_sizes(session.couple_id)?;
            for it in items.iter_mut() {
                if run.retry.cancelled() {
                    break;
                }
                if it.state != ItemState::Pending
                    || it.hash.is_some()
                    || it.sidecar_of.is_some()
                    || it.size == 0
                    || !sizes.contains(&it.size)
                {
                    continue;
                }
                let path = bytes_path(&it.path);
                match run.source.hash_in_place(&path) {
                    Some(Ok(blobs::Digest { hash: h, sums })) => {
                        cat.set_item_hash(it.id, &h)?;
                        // Read anyway: a stored blob of this content that has no checksums yet gets them.
                        if let Some(s) = &sums {
                            cat.fill_blob_sums(&h, s)?;
                        }
                        it.sums = sums;
                        if session.duplicates == DuplicateAction::Skip && cat.couple_has_blob(session.couple_id, &h)? {
                            debug!(path = ?path, "duplicate of content already in the couple");
                            cat.end_item(it, ItemState::Duplicate, None)?;
                            it.state = ItemState::Duplicate;
                            self.observer.advance(it.size);
                        }
                        it.hash = Some(h);
                    }
                    // Unreadable here: the copy retries it, fails it or salvages it.
                    Some(Err(e)) => debug!("duplicate check: {e}"),
                    None => {}
                }
            }
            // The sidecars of a clip that is a duplicate are duplicates with it.
            let dup_clips: std::collections::HashSet<i64> =
                items.iter().filter(|i| i.state == ItemState::Duplicate).map(|i| i.id).collect();
            for it in items.iter_mut() {
                if it.state == ItemState::Pending && it.sidecar_of.is_some_and(|c| dup_clips.contains(&c)) {
                    cat.end_item(it, ItemState::Duplicate, Some("sidecar of a clip already in the couple"))?;
                    it.state = ItemState::Duplicate;
                    self.observer.advance(it.size);
                }
            }
        }

        // Copy, validate, land and finalize, a clip with its sidecars at a time. A source whose files are deleted or
        // moved after the import gets finalize commits that wait for the disk.
        cat.set_session_status(id, SessionStatus::Copying, None)?;
        if run.net.as_ref().is_some_and(|n| n.post != PostImport::Leave) {
            cat.set_durable_commits(true)?;
        }
        let groups = group_items(&items);
        let stop = self.process_groups(run, groups, cat);
        let cat = self.archive.catalog()?;
        self.observer.finish();
        if let Some(stop) = stop {
            return Err(self.stop_run(run, &cat, stop));
        }
        let items = self.catalog_retrying(id, Some(&run.lease), || {
            cat.set_session_status(id, SessionStatus::Finalizing, None)?;
            cat.recount_session(id)?;
            cat.items(id)
        })?;
        let failures: Vec<String> = items
            .iter()
            .filter(|i| i.state == ItemState::Failed)
            .map(|i| format!("{:?}: {}", bytes_path(&i.path), i.error.as_deref().unwrap_or("failed")))
            .collect();
        let damaged: Vec<String> = items
            .iter()
            .filter(|i| i.state == ItemState::Done)
            .filter_map(|i| {
                i.bad_ranges
                    .as_ref()
                    .map(|r| format!("{:?}: unreadable ranges {r} stored as zeros", bytes_path(&i.path)))
            })
            .collect();
        let error = match (failures.len(), damaged.len()) {
            (0, 0) => None,
            (f, 0) => Some(format!("{f} file(s) could not be imported")),
            (0, d) => Some(format!("{d} file(s) salvaged with unreadable ranges")),
            (f, d) => Some(format!("{f} file(s) could not be imported, {d} salvaged with unreadable ranges")),
        };
        self.catalog_retrying(id, Some(&run.lease), || {
            cat.set_session_status(id, SessionStatus::Completed, error.as_deref())
        })?;
        // ASC MHL: the history of what came in, kept in the archive, and the check of a card's own (on-set)
        // history; failing either does not undo the import.
        let card = if run.local && run.roots.len() == 1 { run.roots.first() } else { None };
        if let Err(e) = crate::mhl::session::after_session(self.archive, id, card.map(PathBuf::as_path)) {
            warn!(session = id, error = %e, "ASC MHL after the session");
            self.event(run, "error", &format!("session {id}: ASC MHL: {e}"));
        }
        let s = cat.session(id)?;
        let by = crate::catalog::Actor::this_process(crate::verify::clock());
        let what = format!(
            "session {id} from {}: {} files ({} bytes), {} duplicate, {} failed",
            s.source, s.files_total, s.bytes_total, s.files_duplicate, s.files_error
        );
        // The import stands whether or not its line in the audit log could be written.
        if let Err(e) = cat.audit(&by, "session.import", Some(s.couple_id), &what) {
            warn!(session = id, error = %e, "audit log");
        }
        info!(session = id, files = s.files_total, "import session completed");
        self.event(run, "info", &format!("session {id} completed: {} files, {} failed", s.files_total, s.files_error));
        Ok(Summary {
            session: id,
            couple: s.couple.clone(),
            status: s.status,
            files_total: s.files_total,
            files_imported: items
                .iter()
                .filter(|i| i.state == ItemState::Done && i.bad_ranges.is_none() && !i.healed)
                .count() as i64,
            files_duplicate: s.files_duplicate,
            files_failed: s.files_error,
            files_skipped: items.iter().filter(|i| i.state == ItemState::Skipped).count() as i64,
            files_damaged: damaged.len() as i64,
            files_healed: items.iter().filter(|i| i.healed).count() as i64,
            bytes_total: s.bytes_total,
            bytes_imported: items.iter().filter(|i| i.state == ItemState::Done).map(|i| i.size as i64).sum(),
            failures,
            damaged,
            error,
            onset_manifest: s.onset_manifest.clone(),
        })
    }

    /// Removes temp files of this session that no item can reuse.
    fn clean_temp(&self, id: i64, items: &[Item]) -> Result<()> {
        let prefix = format!("s{id}-i");
        let reusable: std::collections::HashSet<String> = items
            .iter()
            .filter(|i| i.state == ItemState::Copied || (i.state == ItemState::Pending && i.resume_offset.is_some()))
            .map(|i| temp_name(id, i.id))
            .collect();
        let staging = self.archive.staging.dir();
        let rd = match std::fs::read_dir(staging) {
            Ok(rd) => rd,
            Err(e) => return Err(Error::io(staging, e)),
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(&prefix) && !reusable.contains(&name) {
                debug!(file = %name, "removing leftover temp file");
                remove_if_exists(&e.path())?;
            }
        }
        Ok(())
    }

    fn process_groups(&self, run: &Run, groups: Vec<Vec<Item>>, cat: Catalog) -> Option<Stop> {
        let queue = Mutex::new(groups.into_iter().collect::<VecDeque<_>>());
        let cat = Mutex::new(cat);
        let stop: Mutex<Option<Stop>> = Mutex::new(None);
        let halt = AtomicBool::new(false);
        // A network source is read sequentially (one file at a time); local disks take two, three when the blobs
        // go to a remote store (one file copying while others upload).
        let workers = match (run.local, self.archive.blobs.is_remote()) {
            (false, _) => 1,
            (true, false) => self.tuning.workers.max(1),
            (true, true) => self.tuning.workers.max(3),
        };
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(|| loop {
                    if halt.load(Ordering::Relaxed) {
                        return;
                    }
                    if run.retry.cancelled() {
                        halt.store(true, Ordering::Relaxed);
                        stop.lock().get_or_insert(Stop::Cancelled);
                        return;
                    }
                    let mut batch = pop_batch(&mut queue.lock(), run.local);
                    let result = match batch.len() {
                        0 => return,
                        1 => self.process_group(run, batch.remove(0), &cat, &halt),
                        _ => self.process_batch(run, batch, &cat, &halt),
                    };
                    if let Err(st) = result {
                        halt.store(true, Ordering::Relaxed);
                        let mut g = stop.lock();
                        // Disk full and fatal errors outrank a cancellation seen by another worker.
                        if g.is_none() || matches!(*g, Some(Stop::Cancelled)) {
                            *g = Some(st);
                        }
                        return;
                    }
                });
            }
        });
        stop.into_inner()
    }

    /// Copies, validates and lands every item of a group, catalogues them together, then runs the post-import
    /// action on the source for what is now safely in the catalog.
    fn process_group(
        &self,
        run: &Run,
        mut group: Vec<Item>,
        cat: &Mutex<Catalog>,
        halt: &AtomicBool,
    ) -> std::result::Result<(), Stop> {
        for i in 0..group.len() {
            let held_back = clip_failed(&group, &group[i]);
            let it = &mut group[i];
            if it.state.is_terminal() {
                continue;
            }
            if held_back {
                self.fail_item(run, it, Error::HeldBack, cat)?;
                continue;
            }
            if it.state == ItemState::Stored && self.blob_present(run, it) {
                self.observer.advance(it.size);
                continue;
            }
            match self.store_item(run, it, cat, halt, 0) {
                Ok(()) => {}
                Err(ItemError::Stop(s)) => return Err(s),
                Err(ItemError::Failed(e)) => self.fail_item(run, it, e, cat)?,
            }
        }
        self.catalogue(run, &[group], cat)
    }

    /// Small groups, a batch at a time: every copy is written first, one `syncfs` makes them all durable, one
    /// transaction records them as copied, each is re-hashed from disk and landed, one more `syncfs` makes the
    /// landings durable and one transaction catalogues the batch. The steps and their order are those of one file
    /// at a time (nothing is recorded before it is durable); the batch costs two journal commits instead of about
    /// three per file.
    fn process_batch(
        &self,
        run: &Run,
        mut groups: Vec<Vec<Item>>,
        cat: &Mutex<Catalog>,
        halt: &AtomicBool,
    ) -> std::result::Result<(), Stop> {
        let staging = &self.archive.staging;
        // (group, item, hash) of each copy written in this batch and not yet durable.
        let mut fresh: Vec<(usize, usize, HashHex)> = Vec::new();
        let temp = |it: &Item| staging.path(&temp_name(run.session.id, it.id));
        let discard = |groups: &[Vec<Item>], fresh: &[(usize, usize, HashHex)]| {
            for (g, i, _) in fresh {
                let _ = remove_if_exists(&temp(&groups[*g][*i]));
            }
        };
        let to_read: Vec<PathBuf> =
            groups.iter().flatten().filter(|i| !i.state.is_terminal()).map(|i| bytes_path(&i.path)).collect();
        run.source.prefetch(&to_read);
        for g in 0..groups.len() {
            for i in 0..groups[g].len() {
                let held_back = clip_failed(&groups[g], &groups[g][i]);
                let it = &mut groups[g][i];
                if it.state.is_terminal() {
                    continue;
                }
                if held_back {
                    self.fail_item(run, it, Error::HeldBack, cat)?;
                    continue;
                }
                if it.state == ItemState::Stored && self.blob_present(run, it) {
                    self.observer.advance(it.size);
                    continue;
                }
                match self.copy_item(run, it, cat, halt, false) {
                    Ok(Some(hash)) => fresh.push((g, i, hash)),
                    Ok(None) => {}
                    Err(ItemError::Stop(s)) => {
                        discard(&groups, &fresh);
                        return Err(s);
                    }
                    Err(ItemError::Failed(e)) => self.fail_item(run, it, e, cat)?,
                }
            }
        }
        if !fresh.is_empty() {
            let copies: Vec<(i64, &str, u64, i64)> = fresh
                .iter()
                .map(|(g, i, h)| {
                    let it = &groups[*g][*i];
                    (it.id, h.as_str(), it.size, it.mtime_ns)
                })
                .collect();
            let recorded = staging.sync().and_then(|()| self.cat_call(run, || cat.lock().items_copied(&copies)));
            if let Err(e) = recorded {
                discard(&groups, &fresh);
                return Err(archive_stop(e));
            }
            for (g, i, _) in &fresh {
                // Dropped from the cache and read back from the disk all at once; hashed one by one below.
                if let Err(e) = blobs::read_back(&temp(&groups[*g][*i])) {
                    return Err(archive_stop(e));
                }
            }
            for (g, i, hash) in &fresh {
                let it = &mut groups[*g][*i];
                let landed = match self.validate_and_land(run, it, hash, true) {
                    Ok(None) => Ok(()),
                    Ok(Some(_)) => {
                        warn!(path = ?bytes_path(&it.path), "copy did not verify; copying again");
                        self.store_item(run, it, cat, halt, 1)
                    }
                    Err(e) => Err(e),
                };
                match landed {
                    Ok(()) => {}
                    Err(ItemError::Stop(s)) => return Err(s),
                    Err(ItemError::Failed(e)) => self.fail_item(run, it, e, cat)?,
                }
            }
            self.archive.blobs.sync().map_err(archive_stop)?;
        }
        self.catalogue(run, &groups, cat)
    }

    /// Ends an item as failed, with its error logged, recorded and shown as an event.
    fn fail_item(&self, run: &Run, it: &mut Item, e: Error, cat: &Mutex<Catalog>) -> std::result::Result<(), Stop> {
        warn!("{e}");
        let msg = e.to_string();
        self.cat_call(run, || cat.lock().end_item(it, ItemState::Failed, Some(&msg))).map_err(archive_stop)?;
        self.event(run, "error", &format!("failed: {msg}"));
        it.state = ItemState::Failed;
        self.observer.advance(it.size);
        Ok(())
    }

    /// Catalogues stored groups in one transaction, then runs the post-import action on the source for what is now
    /// safely in the catalog.
    fn catalogue(&self, run: &Run, groups: &[Vec<Item>], cat: &Mutex<Catalog>) -> std::result::Result<(), Stop> {
        // A catalog that cannot grow (the archive's disk is full) pauses the session like a full disk under a copy.
        let ended = self.finalize_groups(&run.session, groups, cat, Some(&run.lease)).map_err(archive_stop)?;
        if let Some(net) = &run.net {
            for (it, state) in &ended {
                if *state == ItemState::Done {
                    self.event(run, "info", &format!("imported {}", String::from_utf8_lossy(&it.rel_path)));
                }
                self.post_import(run, net, it);
            }
        }
        Ok(())
    }

    /// Deletes or moves a catalogued file on the source. A failure is an event and a warning, never a lost file.
    fn post_import(&self, run: &Run, net: &Net, it: &Item) {
        let path = bytes_path(&it.path);
        let result = match &net.post {
            PostImport::Leave => return,
            PostImport::Delete => self.retrying(run, || run.source.remove(&path)).map(|_| "deleted".to_string()),
            PostImport::Move(dir) => {
                let dest = Path::new(dir).join(bytes_path(&it.rel_path));
                let parent = dest.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from(dir));
                self.retrying(run, || run.source.create_dir_all(&parent))
                    .and_then(|_| self.retrying(run, || run.source.rename(&path, &dest)))
                    .map(|_| format!("moved to {}", dest.display()))
            }
        };
        match result {
            Ok(what) => self.event(run, "info", &format!("{what}: {}", String::from_utf8_lossy(&it.rel_path))),
            Err(e) => {
                let msg = format!("post-import {} failed for {}: {e}", net.post.as_string(), path.display());
                warn!("{msg}");
                self.event(run, "warn", &msg);
            }
        }
    }

    /// What a group says about its camera: a Sony XML sidecar, then the clip's own metadata, then the card layout.
    /// Read from the stored blobs (the archive's disk), never from the card again. Damage is logged, not fatal.
    fn group_info(&self, group: &[Item]) -> MediaInfo {
        let blobs = &self.archive.blobs;
        let blob = |it: &Item| it.hash.clone().filter(|h| blobs.contains(h).unwrap_or(false));
        let mut info = MediaInfo::default();
        for it in group.iter().skip(1) {
            let name = file_name_bytes(&it.rel_path);
            if !organize::split_ext(name).1.eq_ignore_ascii_case(b".xml") || it.size > 1 << 20 {
                continue;
            }
            if let Some(x) =
                blob(it).and_then(|h| blobs::read_whole(&**blobs, &h).ok()).and_then(|b| media::parse_sony_xml(&b))
            {
                info = x;
                break;
            }
        }
        let Some(clip) = group.first() else { return info };
        if let Some(h) = blob(clip) {
            let read = match blobs.local_path(&h) {
                Some(p) => media::read_file(&p),
                None => blobs.open(&h).map_err(|e| e.to_string()).and_then(|r| media::read_blob(&*r)),
            };
            match read {
                Ok(m) => info = info.or(m),
                Err(why) => {
                    warn!(path = ?bytes_path(&clip.path), "metadata unreadable ({why}); routing on what could be read")
                }
            }
        }
        if info.is_empty() {
            if let Some(h) = media::layout_hint(&clip.rel_path) {
                info = info.or(h);
            }
        }
        info
    }

    fn blob_present(&self, run: &Run, it: &Item) -> bool {
        it.hash.as_deref().is_some_and(|h| self.stored_whole(run, h))
    }

    /// True when the blob is in `objects/` and `verify` has not found it damaged or missing.
    fn stored_whole(&self, run: &Run, hash: &str) -> bool {
        !run.unhealthy.contains(hash) && self.archive.blobs.contains(hash).unwrap_or(false)
    }

    /// Lands a validated copy as its blob; where `verify` found that blob damaged or missing, the copy replaces it
    /// (the item then heals it when it is catalogued).
    /// Keeps the outboard the validate pass built (verified reads then need no read of their own). It is derived
    /// data: one that cannot be written is built at the first verified open instead, so that is only a warning.
    fn keep_outboard(&self, hash: &str, tree: &blobs::outboard::Outboard) {
        let path = blobs::outboard::path_in(&self.archive.outboards_dir(), hash);
        if let Err(e) = tree.write(&path) {
            warn!(hash, "outboard not kept (built again at the first verified read): {e}");
        }
    }

    fn land(&self, run: &Run, it: &mut Item, tmp: &Path, hash: &str, durable: bool) -> Result<()> {
        let heals = run.unhealthy.contains(hash);
        let durability = if durable { Durability::Now } else { Durability::Deferred };
        land_retrying(&*self.archive.blobs, tmp, hash, durability, heals)?;
        if heals {
            it.healed = true;
            info!(hash, "a verified copy replaces the damaged or missing blob");
        }
        Ok(())
    }

    /// Does the source still answer (a file of it is bad), or is the share gone?
    fn source_answers(&self, run: &Run) -> bool {
        run.roots.iter().any(|r| run.source.stat(r).is_ok())
    }

    /// A source error fails its item, unless the session must stop: a local root has gone away (card pulled, disk
    /// unmounted), or a network source failed too often in a row and no longer answers at all (the share is gone;
    /// `resume` finishes once it is back). A local EIO, or a network file that fails while the share answers, is a
    /// property of that file: it fails with the reason and the rest of the source imports.
    fn source_error(&self, run: &Run, e: Error) -> ItemError {
        if run.retry.cancelled() {
            return ItemError::Stop(Stop::Cancelled);
        }
        if run.local {
            if let Some(r) = run.roots.iter().find(|r| std::fs::metadata(r).is_err()) {
                return ItemError::Stop(Stop::Fatal(Error::SourceUnavailable {
                    path: r.clone(),
                    session: run.session.id,
                }));
            }
            return ItemError::Failed(e);
        }
        match e {
            Error::SourcePaused { last, .. } if self.source_answers(run) => {
                run.retry.success();
                ItemError::Failed(Error::Unreadable { reason: last })
            }
            e @ Error::SourcePaused { .. } => ItemError::Stop(Stop::Paused(e)),
            e if e.is_transient() && !self.source_answers(run) => ItemError::Stop(Stop::Fatal(e)),
            e => ItemError::Failed(e),
        }
    }

    /// Brings one item to `Stored`: its content validated in `objects/`, each step durable before the next. A copy
    /// that does not verify is made again once (`mismatched` counts the ones before this call).
    fn store_item(
        &self,
        run: &Run,
        it: &mut Item,
        cat: &Mutex<Catalog>,
        halt: &AtomicBool,
        mut mismatched: u32,
    ) -> std::result::Result<(), ItemError> {
        loop {
            let Some(hash) = self.copy_item(run, it, cat, halt, true)? else { return Ok(()) };
            let Some(actual) = self.validate_and_land(run, it, &hash, false)? else { return Ok(()) };
            let path = bytes_path(&it.path);
            mismatched += 1;
            if mismatched >= 2 {
                return Err(ItemError::Failed(Error::Mismatch { path, expected: hash, actual }));
            }
            warn!(path = ?path, "copy did not verify; copying again");
        }
    }

    /// Copies an item's source into its temp file, hashed inline, and copies again while the source changes under
    /// it (three tries). Returns the hash of the copy to validate, or None when the item is stored already (a
    /// validated copy a crash left behind, or content found in `objects/`). When `durable` the copy is fsynced and
    /// recorded as copied here; otherwise the caller does both for a whole batch. A large file's copy is made
    /// durable and recorded every [`CHECKPOINT_EVERY`] bytes and kept when the copy stops (crash, cancel, pause),
    /// so a resume re-hashes that prefix from the local disk and reads only the rest from the source. With
    /// `--salvage`, ranges that stay unreadable after the retries are stored as zeros and recorded.
    fn copy_item(
        &self,
        run: &Run,
        it: &mut Item,
        cat: &Mutex<Catalog>,
        halt: &AtomicBool,
        durable: bool,
    ) -> std::result::Result<Option<HashHex>, ItemError> {
        let session = run.session.id;
        let source = run.source;
        let tmp = self.archive.staging.path(&temp_name(session, it.id));
        // A copy that a crash left validated-but-unlanded, or copied-but-unvalidated, is reused.
        if it.state == ItemState::Copied {
            if let Some(h) = it.hash.clone() {
                if self.stored_whole(run, &h) {
                    remove_if_exists(&tmp).map_err(ItemError::archive)?;
                    self.observer.advance(it.size);
                    return self.mark_stored(it, &h).map(|()| None);
                }
                if tmp.is_file() {
                    // The inline checksums died with the run that copied it: they come from this read instead.
                    match blobs::digest_staged(&tmp, self.archive.blobs.stage_seal().as_ref()) {
                        Ok(got) if got.hash == h => {
                            it.sums = got.sums;
                            self.land(run, it, &tmp, &h, true).map_err(ItemError::archive)?;
                            self.observer.advance(it.size);
                            return self.mark_stored(it, &h).map(|()| None);
                        }
                        _ => remove_if_exists(&tmp).map_err(ItemError::archive)?,
                    }
                }
            }
        }
        let path = bytes_path(&it.path);
        // Content already stored (found by the duplicate check): nothing to copy, if the source is unchanged since.
        if let Some(h) = it.hash.clone() {
            if it.state == ItemState::Pending && self.stored_whole(run, &h) {
                let now = self.retrying(run, || source.stat(&path)).map_err(|e| self.source_error(run, e))?;
                if now.size == it.size && now.mtime_ns == it.mtime_ns {
                    self.observer.advance(it.size);
                    return self.mark_stored(it, &h).map(|()| None);
                }
                self.cat_call(run, || cat.lock().clear_item_hash(it.id)).map_err(ItemError::archive)?;
                it.hash = None;
                it.sums = None;
            }
        }
        let mut changed = 0;
        loop {
            let before = self.retrying(run, || source.stat(&path)).map_err(|e| self.source_error(run, e))?;
            let checkpointed = durable && before.size >= CHECKPOINT_MIN;
            let (mut out, start) = self.open_copy(run, it, &tmp, &before, checkpointed, cat)?;
            let start_offset = start.offset;
            if start_offset > 0 {
                info!(path = ?path, offset = start_offset, "resuming the copy after its kept prefix");
                self.observer.advance(start_offset);
            }
            let reader = self
                .retrying(run, || self.open_reader(run, &path, start_offset))
                .map_err(|e| self.source_error(run, e))?;
            let mut on_progress = |n: u64| {
                self.observer.advance(n);
                if run.retry.success() {
                    self.note_recovered(run);
                }
                !halt.load(Ordering::Relaxed) && !run.retry.cancelled()
            };
            let bad: Mutex<Vec<(u64, u64)>> = Mutex::new(Vec::new());
            // A dropped connection resumes the file at the byte offset already copied; the hash continues. A range
            // that stays unreadable fails the file, or with --salvage is read around in small blocks.
            // Failed attempts at the same offset count together, across the readers handed out for it.
            let mut failing: (u64, u32) = (u64::MAX, 0);
            let mut reopen = |offset: u64, e: Error| -> Result<Box<dyn std::io::Read + Send>> {
                let mut e = e;
                if failing.0 != offset {
                    failing = (offset, 0);
                }
                loop {
                    failing.1 += 1;
                    let attempt = failing.1;
                    match run.retry.after_failure(e, attempt, &|r| self.note_retry(run, r)) {
                        Ok(()) => {}
                        Err(gave_up) if run.session.salvage && !run.retry.cancelled() && gave_up.is_transient() => {
                            return self.salvage_window(run, &path, offset, before.size, &bad);
                        }
                        Err(gave_up @ Error::SourcePaused { .. })
                            if run.session.salvage && self.source_answers(run) =>
                        {
                            debug!("{gave_up}");
                            run.retry.success();
                            return self.salvage_window(run, &path, offset, before.size, &bad);
                        }
                        Err(gave_up) => return Err(gave_up),
                    }
                    source.reconnect();
                    match self.open_reader(run, &path, offset) {
                        Ok(r) => return Ok(r),
                        Err(again) => e = again,
                    }
                }
            };
            // Whether this copy has a durable prefix a resume can continue from (a kept one, or a checkpoint now).
            let mut resumable = start_offset > 0;
            let mut record = |n: u64| {
                resumable = true;
                cat.lock().set_item_checkpoint(it.id, Some((n, before.size, before.mtime_ns)))
            };
            let checkpoints =
                checkpointed.then_some(blobs::Checkpoints { every: CHECKPOINT_EVERY, record: &mut record });
            let result = blobs::copy_hashing(
                reader,
                &path,
                &mut out,
                &tmp,
                start,
                &mut on_progress,
                &mut reopen,
                checkpoints,
                durable,
            );
            drop(out);
            let copied = match result {
                Ok(c) => c,
                Err(e) => {
                    // A checkpointed prefix is kept for the resume; anything else is thrown away.
                    if !resumable {
                        let _ = remove_if_exists(&tmp);
                    }
                    return Err(self.classify_copy_error(run, e));
                }
            };
            let after = match self.retrying(run, || source.stat(&path)) {
                Ok(a) => a,
                Err(e) => {
                    remove_if_exists(&tmp).map_err(ItemError::archive)?;
                    return Err(self.source_error(run, e));
                }
            };
            if after != before || copied.len != after.size {
                remove_if_exists(&tmp).map_err(ItemError::archive)?;
                if checkpointed {
                    self.cat_call(run, || cat.lock().set_item_checkpoint(it.id, None)).map_err(ItemError::archive)?;
                }
                changed += 1;
                if changed < 3 {
                    warn!(path = ?path, "source changed during copy; copying again");
                    continue;
                }
                return Err(ItemError::Failed(Error::SourceChanged { path }));
            }
            // The copy reflects the file as it is now (it may have changed since the scan).
            it.size = after.size;
            it.mtime_ns = after.mtime_ns;
            let bad = bad.into_inner();
            it.bad_ranges = if bad.is_empty() { None } else { Some(ranges_json(&bad)) };
            if let Some(r) = &it.bad_ranges {
                let lost: u64 = bad.iter().map(|(_, l)| l).sum();
                warn!(path = ?path, ranges = %r, "salvaged: {lost} unreadable bytes stored as zeros");
                self.cat_call(run, || cat.lock().set_item_damage(it.id, Some(r))).map_err(ItemError::archive)?;
            }
            if durable {
                self.cat_call(run, || cat.lock().items_copied(&[(it.id, &copied.hash, it.size, it.mtime_ns)]))
                    .map_err(ItemError::archive)?;
            }
            it.state = ItemState::Copied;
            it.hash = Some(copied.hash.clone());
            it.sums = copied.sums;
            return Ok(Some(copied.hash));
        }
    }

    /// Opens the temp file of a copy: the prefix a stopped copy of the same version of the file left durable (its
    /// hash taken from the local disk, the rest cut off), else an empty file.
    fn open_copy(
        &self,
        run: &Run,
        it: &mut Item,
        tmp: &Path,
        now: &crate::sources::FileMeta,
        checkpointed: bool,
        cat: &Mutex<Catalog>,
    ) -> std::result::Result<(std::fs::File, blobs::CopyStart), ItemError> {
        if let Some(offset) = it.resume_offset.take() {
            let same = now.size == it.size && now.mtime_ns == it.mtime_ns && checkpointed;
            let on_disk = std::fs::metadata(tmp).map(|m| m.len()).unwrap_or(0);
            if same && offset > 0 && on_disk >= offset {
                match blobs::resume_prefix(tmp, offset, self.archive.blobs.stage_seal().as_ref()) {
                    Ok((f, start)) => {
                        it.resume_offset = Some(offset);
                        return Ok((f, start));
                    }
                    Err(e) => warn!("{e}; copying {:?} from the start", bytes_path(&it.path)),
                }
            } else if !same {
                info!(path = ?bytes_path(&it.path), "the source changed since the kept partial copy; copying from the start");
            }
            self.cat_call(run, || cat.lock().set_item_checkpoint(it.id, None)).map_err(ItemError::archive)?;
        }
        let (f, _) = self.archive.staging.create(&temp_name(run.session.id, it.id)).map_err(ItemError::archive)?;
        Ok((f, blobs::CopyStart::fresh(self.archive.blobs.stage_seal().as_ref())))
    }

    /// Reads a window of a damaged file in small blocks from `offset` (one try each, the whole range was retried
    /// already), zeros for the blocks that fail, recorded in `bad`; returns a reader of the window followed by the
    /// rest of the file, read normally again.
    fn salvage_window(
        &self,
        run: &Run,
        path: &Path,
        offset: u64,
        size: u64,
        bad: &Mutex<Vec<(u64, u64)>>,
    ) -> Result<Box<dyn std::io::Read + Send>> {
        let end = (offset + SALVAGE_WINDOW).min(size);
        let mut window = Vec::with_capacity((end - offset) as usize);
        let mut pos = offset;
        while pos < end {
            let want = SALVAGE_BLOCK.min(end - pos) as usize;
            let mut block = vec![0u8; want];
            let got = run
                .source
                .open_at(path, pos)
                .and_then(|mut r| blobs::read_full(&mut r, &mut block).map_err(|e| Error::io(path, e)));
            match got {
                Ok(n) if n == want => {}
                Ok(_) => return Err(Error::SourceChanged { path: path.to_path_buf() }),
                Err(e) if e.is_transient() => {
                    block.fill(0);
                    let mut b = bad.lock();
                    match b.last_mut() {
                        Some((s, l)) if *s + *l == pos => *l += want as u64,
                        _ => b.push((pos, want as u64)),
                    }
                }
                Err(e) => return Err(e),
            }
            window.extend_from_slice(&block);
            pos += want as u64;
        }
        let head = std::io::Cursor::new(window);
        if end >= size {
            return Ok(Box::new(head));
        }
        Ok(Box::new(std::io::Read::chain(head, self.open_reader(run, path, end)?)))
    }

    /// Re-hashes an item's copy from the disk and lands it as its blob when it matches. `batched`: the copy was
    /// dropped from the cache and read back by the batch ([`blobs::read_back`]), and the directory fsyncs are left
    /// to the batch's `syncfs`. A copy that does not match is removed; what the disk held is returned.
    fn validate_and_land(
        &self,
        run: &Run,
        it: &mut Item,
        hash: &str,
        batched: bool,
    ) -> std::result::Result<Option<HashHex>, ItemError> {
        let tmp = self.archive.staging.path(&temp_name(run.session.id, it.id));
        let seal = self.archive.blobs.stage_seal();
        let (on_disk, tree) = blobs::validate_staged(&tmp, !batched, seal.as_ref()).map_err(ItemError::archive)?;
        if on_disk != hash {
            remove_if_exists(&tmp).map_err(ItemError::archive)?;
            return Ok(Some(on_disk));
        }
        self.land(run, it, &tmp, hash, !batched).map_err(ItemError::archive)?;
        if let Some(tree) = tree {
            self.keep_outboard(hash, &tree);
        }
        self.mark_stored(it, hash).map(|()| None)
    }

    /// Opens a source file for the copy; network reads are queued ahead (1 MiB chunks) so that the round trips
    /// overlap with hashing and writing.
    fn open_reader(&self, run: &Run, path: &Path, offset: u64) -> Result<Box<dyn std::io::Read + Send>> {
        let r = run.source.open_at(path, offset)?;
        Ok(if run.local { r } else { crate::sources::read_ahead(r, 1 << 20, 8) })
    }

    /// Errors while copying: a full disk or any failure on the archive side stops the session; an interruption
    /// is a cancel; a source that cannot be read fails only its item (or stops the session, see `source_error`).
    fn classify_copy_error(&self, run: &Run, e: Error) -> ItemError {
        match &e {
            Error::Io { source, .. } if source.kind() == std::io::ErrorKind::Interrupted => {
                ItemError::Stop(Stop::Cancelled)
            }
            Error::Io { path, .. } if path.starts_with(&self.archive.root) => ItemError::archive(e),
            _ => self.source_error(run, e),
        }
    }

    /// An item whose content is validated in `objects/` is stored. That is only noted in memory: the group's
    /// finalize transaction records the item as done right after, and until then the catalog says `copied` with
    /// the hash (or `pending` with a hash from the duplicate check), which `resume` turns into stored as soon as it
    /// sees the blob. One catalog write fewer per file.
    fn mark_stored(&self, it: &mut Item, hash: &str) -> std::result::Result<(), ItemError> {
        it.state = ItemState::Stored;
        it.hash = Some(hash.to_string());
        Ok(())
    }

    /// Catalogues the stored items of groups in one transaction. Returns the items that are now safely in the
    /// catalog (done, or duplicates of content already there). A transient catalog failure (a lost connection, a
    /// serialization failure) retries the whole transaction; when the failure hid whether the commit went through
    /// (the connection dropped during COMMIT), the items' states in the catalog tell, and a commit that landed is
    /// not made twice.
    fn finalize_groups(
        &self,
        session: &Session,
        groups: &[Vec<Item>],
        cat: &Mutex<Catalog>,
        lease: Option<&Mutex<CoupleLease>>,
    ) -> Result<Vec<(Item, ItemState)>> {
        let infos: Vec<MediaInfo> = groups
            .iter()
            .map(|g| if session.camera_id.is_some() { MediaInfo::default() } else { self.group_info(g) })
            .collect();
        let mut attempt = 0u32;
        self.catalog_retrying(session.id, lease, || {
            attempt += 1;
            let mut c = cat.lock();
            let mut tx = c.begin_finalize()?;
            if session.duplicates == DuplicateAction::Skip {
                let hashes: Vec<&str> = groups
                    .iter()
                    .flatten()
                    .filter(|i| i.state == ItemState::Stored && i.sidecar_of.is_none() && i.size > 0)
                    .filter_map(|i| i.hash.as_deref())
                    .collect();
                tx.prefetch_duplicates(session.couple_id, &hashes)?;
            }
            if attempt > 1 {
                if let Some(ended) = already_finalized(&*tx, groups)? {
                    info!(session = session.id, "the catalog had committed the finalize before its connection dropped");
                    return Ok(ended);
                }
            }
            let mut ended = Vec::new();
            for (group, info) in groups.iter().zip(&infos) {
                self.finalize_group(session, group, info, &mut *tx, &mut ended)?;
            }
            tx.commit_for(session.id)?;
            Ok(ended)
        })
    }

    /// A catalog step of a run, retried on the catalog's transient failures (see [`Importer::catalog_retrying`]).
    fn cat_call<T>(&self, run: &Run, f: impl FnMut() -> Result<T>) -> Result<T> {
        self.catalog_retrying(run.session.id, Some(&run.lease), f)
    }

    /// Runs a catalog step, retrying what the catalog says a retry may cure (a lost connection, a restarting
    /// server, a serialization failure or deadlock) with the retry policy's delays (`$NIGHTFOX_RETRY_DELAYS`) up
    /// to its failure count (`$NIGHTFOX_MAX_FAILURES`); then the session pauses ([`Error::CatalogPaused`]) and
    /// can be resumed once the catalog is back. Before each retry the couple's lease is taken again: a lease a
    /// Postgres restart cut, and another process took meanwhile, stops the session ([`Error::LeaseLost`]) instead
    /// of writing beside that process.
    fn catalog_retrying<T>(
        &self,
        session: i64,
        lease: Option<&Mutex<CoupleLease>>,
        mut f: impl FnMut() -> Result<T>,
    ) -> Result<T> {
        let policy = RetryPolicy::from_env();
        let mut failures = 0u32;
        loop {
            let r = match (failures, lease) {
                (0, _) | (_, None) => f(),
                (_, Some(l)) => l.lock().write_note(&session.to_string()).and_then(|()| f()),
            };
            match r {
                Err(e) if e.is_catalog_transient() => {
                    failures += 1;
                    if failures >= policy.max_failures || self.cancel.load(Ordering::Relaxed) {
                        return Err(Error::CatalogPaused { session, failures, last: e.to_string() });
                    }
                    let i = (failures as usize - 1).min(policy.delays.len().saturating_sub(1));
                    let delay = policy.delays.get(i).copied().unwrap_or(Duration::from_secs(1));
                    warn!(session, "the catalog failed ({e}); trying again in {delay:?}");
                    std::thread::sleep(delay);
                }
                r => return r,
            }
        }
    }

    /// Catalogues a group's stored items: clip first, then its sidecars named to match.
    fn finalize_group(
        &self,
        session: &Session,
        group: &[Item],
        info: &MediaInfo,
        tx: &mut dyn Finalize,
        ended: &mut Vec<(Item, ItemState)>,
    ) -> Result<()> {
        // A sidecar whose clip is already catalogued goes where the clip went.
        let clip_place = match group.first().and_then(|g| g.sidecar_of) {
            Some(clip_item) => match tx.item_file(clip_item)? {
                Some(fid) => tx.file_placement(fid)?,
                None => None,
            },
            None => None,
        };
        let (camera_id, footage_type) = match clip_place {
            Some(p) => p,
            None => route(tx, session, info)?,
        };
        let source = session.source.clone();
        // item id -> (file id, original name, display name)
        let mut placed: HashMap<i64, (i64, Vec<u8>, Vec<u8>)> = HashMap::new();
        // Clips of this group found to be duplicates: their sidecars are duplicates with them.
        let mut dup_clips: std::collections::HashSet<i64> = std::collections::HashSet::new();
        for it in group {
            if it.state == ItemState::Duplicate {
                dup_clips.insert(it.id);
            }
            if it.state != ItemState::Stored {
                continue;
            }
            let hash = it.hash.as_deref().unwrap_or_default();
            if it.healed {
                let how = format!("replaced by a verified copy of {}", String::from_utf8_lossy(&it.path));
                tx.heal_blob(hash, Some(session.id), &how)?;
            }
            // A clean copy of a file that was stored salvaged replaces the damaged content in place.
            if it.bad_ranges.is_none() {
                if let Some(fid) = tx.damaged_file_like(session.couple_id, &it.rel_path, it.size)? {
                    tx.replace_damaged(fid, hash, it.size, session.id, it.sums.as_ref())?;
                    let mut healed = it.clone();
                    healed.healed = true;
                    tx.item_done(&healed, fid)?;
                    ended.push((healed, ItemState::Done));
                    continue;
                }
            }
            let duplicate = match it.sidecar_of {
                // A sidecar is a duplicate only when its clip is.
                Some(clip) => dup_clips.contains(&clip) || tx.item_state(clip)? == Some(ItemState::Duplicate),
                None => {
                    session.duplicates == DuplicateAction::Skip
                        && it.size > 0
                        && tx.couple_has_blob(session.couple_id, hash)?
                }
            };
            if duplicate {
                if let Some(sums) = &it.sums {
                    tx.fill_sums(hash, sums)?;
                }
                tx.item_end(it, ItemState::Duplicate, None)?;
                ended.push((it.clone(), ItemState::Duplicate));
                dup_clips.insert(it.id);
                continue;
            }
            let original = file_name_bytes(&it.rel_path).to_vec();
            let (clip_file, desired) = match it.sidecar_of {
                Some(clip_item) => {
                    let clip = match placed.get(&clip_item) {
                        Some(p) => Some(p.clone()),
                        None => match tx.item_file(clip_item)? {
                            Some(fid) => {
                                let dn = tx.display_name(fid)?.unwrap_or_default();
                                let orig = group
                                    .iter()
                                    .find(|g| g.id == clip_item)
                                    .map(|g| file_name_bytes(&g.rel_path).to_vec())
                                    .unwrap_or_default();
                                Some((fid, orig, dn))
                            }
                            None => None,
                        },
                    };
                    match clip {
                        Some((fid, corig, cdisp)) => {
                            let name = match organize::suffix_of(&corig, &cdisp) {
                                Some(n) => organize::sidecar_name(&original, &corig, n),
                                None => original.clone(),
                            };
                            (Some(fid), name)
                        }
                        None => (None, original.clone()),
                    }
                }
                None => (None, original.clone()),
            };
            let (name, key) = assign_name(tx, session.couple_id, footage_type, camera_id, &desired)?;
            let fid = tx.insert_file(&NewFile {
                couple_id: session.couple_id,
                footage_type,
                camera_id,
                blob_hash: hash,
                blob_size: it.size,
                display_name: &name,
                name_key: &key,
                original_path: &it.rel_path,
                source: &source,
                source_mtime_ns: it.mtime_ns,
                session_id: Some(session.id),
                sidecar_of: clip_file,
                captured_at: info.captured_at,
                bad_ranges: it.bad_ranges.as_deref(),
                sums: it.sums.as_ref(),
            })?;
            tx.item_done(it, fid)?;
            placed.insert(it.id, (fid, original, name));
            ended.push((it.clone(), ItemState::Done));
        }
        Ok(())
    }
}

/// After a finalize whose commit may or may not have landed: the stored items' states as the catalog has them,
/// when it had committed them (all of them end in one transaction, so the first one tells); `None` when it had not.
fn already_finalized(tx: &dyn Finalize, groups: &[Vec<Item>]) -> Result<Option<Vec<(Item, ItemState)>>> {
    let stored: Vec<&Item> = groups.iter().flatten().filter(|i| i.state == ItemState::Stored).collect();
    let Some(first) = stored.first() else { return Ok(None) };
    if !tx.item_state(first.id)?.is_some_and(|s| s.is_terminal()) {
        return Ok(None);
    }
    let mut ended = Vec::with_capacity(stored.len());
    for it in stored {
        if let Some(state) = tx.item_state(it.id)? {
            ended.push(((*it).clone(), state));
        }
    }
    Ok(Some(ended))
}

/// Decides a group's camera and footage type: the import's `--camera`, else a camera whose rule fits the metadata,
/// else a new camera from the detected make and model, else `unknown`. An explicit `--type` always wins; otherwise
/// a matched camera brings its own type.
fn route(tx: &dyn Finalize, session: &Session, info: &MediaInfo) -> Result<(Option<i64>, FootageType)> {
    let typed = |cam_type: FootageType| if session.type_explicit { session.footage_type } else { cam_type };
    let cams = tx.cameras()?;
    // A camera merged into another (`camera merge`) stands for that one.
    let live = |id: i64| cams.iter().find(|c| c.id == id).and_then(|c| c.merged_into).unwrap_or(id);
    if let Some(id) = session.camera_id.map(live) {
        let t = cams.iter().find(|c| c.id == id).map(|c| c.footage_type).unwrap_or(session.footage_type);
        return Ok((Some(id), typed(t)));
    }
    if let Some(c) = organize::match_camera(&cams, info) {
        let id = live(c.id);
        let t = cams.iter().find(|k| k.id == id).map(|k| k.footage_type).unwrap_or(c.footage_type);
        return Ok((Some(id), typed(t)));
    }
    if let Some((name, base)) = organize::camera_name(info) {
        let slug = organize::first_free(&base, |s| tx.camera_slug_taken(s))?;
        let id = tx.add_camera(&NewCamera {
            slug: &slug,
            name: &name,
            footage_type: session.footage_type,
            make: info.make.as_deref(),
            model: info.model.as_deref(),
            serial: info.serial.as_deref(),
            auto: true,
        })?;
        info!(camera = %slug, "new camera from file metadata");
        return Ok((Some(id), session.footage_type));
    }
    Ok((None, session.footage_type))
}

/// Picks the display name: the desired one, else the first free ` (n)` variant.
fn assign_name(
    tx: &dyn Finalize,
    couple: i64,
    ft: FootageType,
    camera: Option<i64>,
    desired: &[u8],
) -> Result<(Vec<u8>, String)> {
    let key = organize::name_key(desired);
    if !tx.name_taken(couple, ft, camera, &key)? {
        return Ok((desired.to_vec(), key));
    }
    for n in 2u32.. {
        let cand = organize::with_suffix(desired, n);
        let key = organize::name_key(&cand);
        if !tx.name_taken(couple, ft, camera, &key)? {
            return Ok((cand, key));
        }
    }
    unreachable!("suffixes are unbounded")
}

enum ItemError {
    /// This item failed; the session goes on.
    Failed(Error),
    /// The session must stop.
    Stop(Stop),
}

/// Lands (or, `heals`, replaces) a verified staged copy, retrying a remote store's transient failures (timeouts,
/// 5xx, a restart: `Error::Store`; a local medium's errors stop at once) with the retry policy's delays (`$NIGHTFOX_RETRY_DELAYS`) up to its failure count;
/// then the error stops the session, which pauses and can be resumed. The staged copy stays until it lands.
fn land_retrying(
    store: &dyn blobs::BlobStore,
    tmp: &Path,
    hash: &str,
    durability: Durability,
    heals: bool,
) -> Result<()> {
    let policy = retry::RetryPolicy::from_env();
    let mut failures = 0u32;
    loop {
        let r = if heals { store.replace(tmp, hash) } else { store.land(tmp, hash, durability) };
        match r {
            Err(e @ Error::Store { transient: true, .. }) if failures + 1 < policy.max_failures && tmp.exists() => {
                let delay = policy.delays.get(failures as usize).or(policy.delays.last()).copied().unwrap_or_default();
                warn!(hash, "the blob store failed ({e}); trying again in {delay:?}");
                std::thread::sleep(delay);
                failures += 1;
            }
            r => return r,
        }
    }
}

/// Why a session stops when the archive side fails (a full disk pauses it).
fn archive_stop(e: Error) -> Stop {
    match ItemError::archive(e) {
        ItemError::Stop(s) => s,
        ItemError::Failed(e) => Stop::Fatal(e),
    }
}

/// Files from this size up keep their partial copy when the copy stops (see `copy_item`).
const CHECKPOINT_MIN: u64 = 256 << 20;
/// A kept partial copy is made durable and recorded this often.
const CHECKPOINT_EVERY: u64 = 64 << 20;
/// After a range stays unreadable, `--salvage` reads this much in small blocks before reading normally again.
const SALVAGE_WINDOW: u64 = 4 << 20;
/// The unit a salvaged range is found in (a sector of a modern card).
const SALVAGE_BLOCK: u64 = 4096;

/// Bad ranges as stored: `[[start,len],...]`.
fn ranges_json(r: &[(u64, u64)]) -> String {
    serde_json::to_string(&r.iter().map(|(s, l)| [*s, *l]).collect::<Vec<_>>()).unwrap_or_default()
}

/// True for a sidecar whose clip (in the same group, and processed before it) could not be read: it is held back
/// with the clip, and `resume` brings them in together.
fn clip_failed(group: &[Item], it: &Item) -> bool {
    it.sidecar_of.is_some_and(|c| group.iter().any(|g| g.id == c && g.state == ItemState::Failed))
}

/// Groups whose files to copy add up to less than this are copied in batches (see `process_batch`).
const BATCH_GROUP_BYTES: u64 = 8 << 20;
/// At most this many files in a batch.
const BATCH_FILES: usize = 32;
/// At most this many bytes in a batch.
const BATCH_BYTES: u64 = 32 << 20;

/// The next groups for a worker: one group, or a batch of consecutive small ones (local sources only).
fn pop_batch(queue: &mut VecDeque<Vec<Item>>, batching: bool) -> Vec<Vec<Item>> {
    let mut out = Vec::new();
    let (mut files, mut bytes) = (0usize, 0u64);
    while let Some(front) = queue.front() {
        let todo = front.iter().filter(|i| !i.state.is_terminal());
        let (f, b) = todo.fold((0usize, 0u64), |(f, b), i| (f + 1, b + i.size));
        let small = batching && b < BATCH_GROUP_BYTES;
        if !out.is_empty() && (!small || files + f > BATCH_FILES || bytes + b > BATCH_BYTES) {
            break;
        }
        out.extend(queue.pop_front());
        files += f;
        bytes += b;
        if !small {
            break;
        }
    }
    out
}

impl ItemError {
    fn archive(e: Error) -> Self {
        if e.is_disk_full() {
            let path = match &e {
                Error::Io { path, .. } => path.clone(),
                Error::Catalog { .. } => PathBuf::from("catalog.db"),
                _ => PathBuf::new(),
            };
            ItemError::Stop(Stop::DiskFull(path))
        } else {
            ItemError::Stop(Stop::Fatal(e))
        }
    }
}

/// Scans the roots into items: regular files, sidecars linked to their clip, the rest recorded as skipped or failed.
/// Operating-system litter (see [`organize::litter_reason`]) is skipped with its reason, and so is everything under
/// `exclude` (a post-import `move:` folder inside the source).
pub fn scan(source: &dyn Source, roots: &[PathBuf], exclude: Option<&Path>) -> Result<Vec<NewItem>> {
    let entries = source.scan(roots)?;
    let mut items: Vec<NewItem> = entries
        .iter()
        .map(|e| {
            let litter = organize::litter_reason(e.rel.as_os_str().as_bytes());
            let excluded = exclude.is_some_and(|x| e.path.starts_with(x));
            let (state, size, mtime_ns, error) = match &e.kind {
                EntryKind::File { .. } if excluded => {
                    (ItemState::Skipped, 0, 0, Some("inside the post-import move folder".to_string()))
                }
                EntryKind::File { .. } if litter.is_some() => {
                    (ItemState::Skipped, 0, 0, litter.map(|w| format!("operating-system litter: {w}")))
                }
                EntryKind::File { size, mtime_ns } => (ItemState::Pending, *size, *mtime_ns, None),
                EntryKind::Skipped(why) => (ItemState::Skipped, 0, 0, Some(why.clone())),
                EntryKind::Unreadable(why) => (ItemState::Failed, 0, 0, Some(why.clone())),
            };
            NewItem {
                path: path_bytes(&e.path),
                rel_path: path_bytes(&e.rel),
                size,
                mtime_ns,
                state,
                sidecar_of: None,
                error,
            }
        })
        .collect();
    // Pair sidecars with clips within each source directory.
    let mut dirs: HashMap<Vec<u8>, Vec<usize>> = HashMap::new();
    for (i, it) in items.iter().enumerate() {
        if it.state == ItemState::Pending {
            let full_parent = parent_bytes(&it.path).to_vec();
            dirs.entry(full_parent).or_default().push(i);
        }
    }
    for idxs in dirs.values() {
        let names: Vec<&[u8]> = idxs.iter().map(|&i| file_name_bytes(&items[i].rel_path)).collect();
        let pairs = organize::pair_sidecars(&names);
        let links: Vec<(usize, usize)> =
            pairs.iter().enumerate().filter_map(|(k, p)| p.map(|c| (idxs[k], idxs[c]))).collect();
        for (s, c) in links {
            items[s].sidecar_of = Some(c);
        }
    }
    card_history_as_sidecars(&mut items);
    Ok(items)
}

/// A card's ASC MHL history (`ascmhl/` at the top of the card) is kept as sidecars of the card's first clip, not
/// as footage of its own (see [`crate::mhl::onset`] for its check).
fn card_history_as_sidecars(items: &mut [NewItem]) {
    let prefix = format!("{}/", crate::mhl::FOLDER);
    let is_history = |it: &NewItem| it.rel_path.starts_with(prefix.as_bytes());
    let Some(clip) =
        items.iter().position(|it| it.state == ItemState::Pending && it.sidecar_of.is_none() && !is_history(it))
    else {
        return;
    };
    for it in items.iter_mut() {
        if it.state == ItemState::Pending && is_history(it) {
            it.sidecar_of = Some(clip);
        }
    }
}

/// Groups items so that each clip is processed with its sidecars (clip first); order follows the scan.
fn group_items(items: &[Item]) -> Vec<Vec<Item>> {
    let mut index: HashMap<i64, usize> = HashMap::new();
    let mut groups: Vec<Vec<Item>> = Vec::new();
    for it in items.iter().filter(|i| i.sidecar_of.is_none()) {
        index.insert(it.id, groups.len());
        groups.push(vec![it.clone()]);
    }
    for it in items.iter().filter(|i| i.sidecar_of.is_some()) {
        match it.sidecar_of.and_then(|c| index.get(&c)) {
            Some(&g) => groups[g].push(it.clone()),
            None => groups.push(vec![it.clone()]),
        }
    }
    groups.retain(|g| g.iter().any(|i| !i.state.is_terminal()));
    groups
}
