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

use parking_lot::Mutex;
use serde::Serialize;
use tracing::{debug, info, warn};

use crate::archive::{Archive, LockFile};
use crate::catalog::{
    Catalog, DuplicateAction, Finalize, FootageType, Item, ItemState, NewCamera, NewFile, NewItem, Session,
    SessionStatus,
};
use crate::error::{Error, Result};
use crate::media::{self, MediaInfo};
use crate::organize;
use crate::sources::{local::LocalSource, EntryKind, Source};
use crate::store::{self, remove_if_exists};

/// What the user asked to import.
#[derive(Clone, Debug)]
pub struct ImportRequest {
    pub couple: String,
    /// `None` when the user gave no `--type`: routing may use a matched camera's type, else `modern`.
    pub footage_type: Option<FootageType>,
    pub camera: Option<String>,
    pub duplicates: DuplicateAction,
    pub paths: Vec<PathBuf>,
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
    pub bytes_total: i64,
    pub bytes_imported: i64,
    pub failures: Vec<String>,
    pub error: Option<String>,
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

/// A failure of one item that stops the whole session (the archive side is in trouble).
enum Stop {
    DiskFull(PathBuf),
    Cancelled,
    Fatal(Error),
}

impl<'a> Importer<'a> {
    pub fn new(archive: &'a Archive, observer: &'a dyn Observer, cancel: Arc<AtomicBool>) -> Self {
        Importer { archive, observer, cancel, tuning: Tuning::default() }
    }

    pub fn with_tuning(mut self, tuning: Tuning) -> Self {
        self.tuning = tuning;
        self
    }

    fn lock_couple(&self, cat: &Catalog, couple_id: i64, folder: &str) -> Result<LockFile> {
        let name = format!("couple-{couple_id}");
        match self.archive.try_lock(&name)? {
            Some(l) => Ok(l),
            None => {
                let note = LockFile::read_note(&self.archive.root.join("locks").join(format!("{name}.lock")));
                let session = note
                    .and_then(|n| n.parse().ok())
                    .or_else(|| cat.unfinished_session_of(couple_id).ok().flatten())
                    .unwrap_or(0);
                Err(Error::CoupleBusy { couple: folder.to_string(), session })
            }
        }
    }

    /// Starts a new import session and runs it to the end (or until it pauses).
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
        let id =
            cat.create_session(couple.id, req.footage_type, camera_id, req.duplicates, &source.describe(), &raw, None)?;
        lock.write_note(&id.to_string())?;
        info!(session = id, couple = %couple.folder_name, "import session started");
        drop(cat);
        self.run(id, &source, &roots, false)
    }

    /// Continues a session that was interrupted, cancelled or paused.
    pub fn resume(&self, id: i64) -> Result<Summary> {
        let cat = self.archive.catalog()?;
        let s = cat.session(id)?;
        let mut lock = self.lock_couple(&cat, s.couple_id, &s.couple)?;
        // Read again under the lock: another process may have finished it meanwhile.
        let s = cat.session(id)?;
        if s.status.is_final() || !s.can_resume {
            return Err(Error::NotResumable { id, status: s.status.as_str().to_string() });
        }
        let roots: Vec<PathBuf> = s.source_paths.iter().map(|b| bytes_path(b)).collect();
        for r in &roots {
            if std::fs::metadata(r).is_err() {
                return Err(Error::SourceUnavailable { path: r.clone(), session: id });
            }
        }
        lock.write_note(&id.to_string())?;
        info!(session = id, "resuming import session");
        drop(cat);
        let source = LocalSource::new(&roots);
        self.run(id, &source, &roots, true)
    }

    fn run(&self, id: i64, source: &dyn Source, roots: &[PathBuf], resuming: bool) -> Result<Summary> {
        let mut cat = self.archive.catalog()?;
        let session = cat.session(id)?;
        let mut items = cat.items(id)?;
        if items.is_empty() {
            cat.set_session_status(id, SessionStatus::Scanning, None)?;
            let new = scan(source, roots)?;
            cat.insert_items(id, &new)?;
            cat.recount_session(id)?;
            items = cat.items(id)?;
        } else {
            cat.recount_session(id)?;
        }
        if resuming {
            self.clean_temp(id, &items)?;
        }
        let todo_bytes: u64 = items.iter().filter(|i| !i.state.is_terminal()).map(|i| i.size).sum();
        let todo_files = items.iter().filter(|i| !i.state.is_terminal()).count() as u64;
        self.observer.start(todo_files, todo_bytes);

        // Hash: only files whose size matches content already in the couple can be duplicates.
        cat.set_session_status(id, SessionStatus::Hashing, None)?;
        let sizes = cat.couple_sizes(session.couple_id)?;
        for it in items.iter_mut() {
            if self.cancel.load(Ordering::Relaxed) {
                break;
            }
            if it.state != ItemState::Pending || it.hash.is_some() || !sizes.contains(&it.size) {
                continue;
            }
            let path = bytes_path(&it.path);
            match source.hash_in_place(&path) {
                Some(Ok(h)) => {
                    cat.set_item_hash(it.id, &h)?;
                    if session.duplicates == DuplicateAction::Skip && cat.couple_has_blob(session.couple_id, &h)? {
                        debug!(path = ?path, "duplicate of content already in the couple");
                        cat.end_item(it, ItemState::Duplicate, None)?;
                        it.state = ItemState::Duplicate;
                        self.observer.advance(it.size);
                    }
                    it.hash = Some(h);
                }
                Some(Err(e)) => {
                    warn!("{e}");
                    cat.end_item(it, ItemState::Failed, Some(&e.to_string()))?;
                    it.state = ItemState::Failed;
                    self.observer.advance(it.size);
                }
                None => {}
            }
        }

        // Copy, validate, land and finalize, a clip with its sidecars at a time.
        cat.set_session_status(id, SessionStatus::Copying, None)?;
        let groups = group_items(&items);
        let stop = self.process_groups(&session, source, roots, groups, cat)?;
        let cat = self.archive.catalog()?;
        self.observer.finish();
        match stop {
            Some(Stop::DiskFull(path)) => {
                let e = Error::DiskFull { path, session: id };
                cat.set_session_status(id, SessionStatus::Paused, Some(&e.to_string()))?;
                return Err(e);
            }
            Some(Stop::Cancelled) => {
                cat.set_session_status(id, SessionStatus::Cancelled, Some("cancelled by the user"))?;
                return Err(Error::Interrupted(id));
            }
            Some(Stop::Fatal(e)) => {
                cat.set_session_status(id, SessionStatus::Paused, Some(&e.to_string()))?;
                return Err(e);
            }
            None => {}
        }
        cat.set_session_status(id, SessionStatus::Finalizing, None)?;
        cat.recount_session(id)?;
        let items = cat.items(id)?;
        let failures: Vec<String> = items
            .iter()
            .filter(|i| i.state == ItemState::Failed)
            .map(|i| format!("{:?}: {}", bytes_path(&i.path), i.error.as_deref().unwrap_or("failed")))
            .collect();
        let error =
            if failures.is_empty() { None } else { Some(format!("{} file(s) could not be imported", failures.len())) };
        cat.set_session_status(id, SessionStatus::Completed, error.as_deref())?;
        let s = cat.session(id)?;
        info!(session = id, files = s.files_total, "import session completed");
        Ok(Summary {
            session: id,
            couple: s.couple.clone(),
            status: s.status,
            files_total: s.files_total,
            files_imported: items.iter().filter(|i| i.state == ItemState::Done).count() as i64,
            files_duplicate: s.files_duplicate,
            files_failed: s.files_error,
            files_skipped: items.iter().filter(|i| i.state == ItemState::Skipped).count() as i64,
            bytes_total: s.bytes_total,
            bytes_imported: items.iter().filter(|i| i.state == ItemState::Done).map(|i| i.size as i64).sum(),
            failures,
            error,
        })
    }

    /// Removes temp files of this session that no item can reuse.
    fn clean_temp(&self, id: i64, items: &[Item]) -> Result<()> {
        let prefix = format!("s{id}-i");
        let reusable: std::collections::HashSet<String> =
            items.iter().filter(|i| i.state == ItemState::Copied).map(|i| temp_name(id, i.id)).collect();
        let rd = match std::fs::read_dir(&self.archive.store.tmp) {
            Ok(rd) => rd,
            Err(e) => return Err(Error::io(&self.archive.store.tmp, e)),
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

    fn process_groups(
        &self,
        session: &crate::catalog::Session,
        source: &dyn Source,
        roots: &[PathBuf],
        groups: Vec<Vec<Item>>,
        cat: Catalog,
    ) -> Result<Option<Stop>> {
        let queue = Mutex::new(groups.into_iter().collect::<VecDeque<_>>());
        let cat = Mutex::new(cat);
        let stop: Mutex<Option<Stop>> = Mutex::new(None);
        let halt = AtomicBool::new(false);
        let workers = self.tuning.workers.max(1);
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(|| loop {
                    if halt.load(Ordering::Relaxed) {
                        return;
                    }
                    if self.cancel.load(Ordering::Relaxed) {
                        halt.store(true, Ordering::Relaxed);
                        stop.lock().get_or_insert(Stop::Cancelled);
                        return;
                    }
                    let Some(group) = queue.lock().pop_front() else {
                        return;
                    };
                    if let Err(st) = self.process_group(session, source, roots, group, &cat, &halt) {
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
        Ok(stop.into_inner())
    }

    /// Copies, validates and lands every item of a group, then catalogues them together.
    fn process_group(
        &self,
        session: &crate::catalog::Session,
        source: &dyn Source,
        roots: &[PathBuf],
        mut group: Vec<Item>,
        cat: &Mutex<Catalog>,
        halt: &AtomicBool,
    ) -> std::result::Result<(), Stop> {
        for it in group.iter_mut() {
            if it.state.is_terminal() {
                continue;
            }
            if it.state == ItemState::Stored && self.blob_present(it) {
                self.observer.advance(it.size);
                continue;
            }
            match self.store_item(session.id, source, roots, it, cat, halt) {
                Ok(()) => {}
                Err(ItemError::Stop(s)) => return Err(s),
                Err(ItemError::Failed(e)) => {
                    warn!("{e}");
                    let msg = e.to_string();
                    cat.lock().end_item(it, ItemState::Failed, Some(&msg)).map_err(Stop::Fatal)?;
                    it.state = ItemState::Failed;
                    self.observer.advance(it.size);
                }
            }
        }
        self.finalize_group(session, &group, cat).map_err(Stop::Fatal)
    }

    /// What a group says about its camera: a Sony XML sidecar, then the clip's own metadata, then the card layout.
    /// Read from the stored blobs (the archive's disk), never from the card again. Damage is logged, not fatal.
    fn group_info(&self, group: &[Item]) -> MediaInfo {
        let st = &self.archive.store;
        let blob = |it: &Item| it.hash.as_deref().filter(|h| st.has_blob(h)).map(|h| st.blob_path(h));
        let mut info = MediaInfo::default();
        for it in group.iter().skip(1) {
            let name = file_name_bytes(&it.rel_path);
            if !organize::split_ext(name).1.eq_ignore_ascii_case(b".xml") || it.size > 1 << 20 {
                continue;
            }
            if let Some(x) = blob(it).and_then(|p| std::fs::read(p).ok()).and_then(|b| media::parse_sony_xml(&b)) {
                info = x;
                break;
            }
        }
        let Some(clip) = group.first() else { return info };
        if let Some(p) = blob(clip) {
            match media::read_file(&p) {
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

    fn blob_present(&self, it: &Item) -> bool {
        it.hash.as_deref().is_some_and(|h| self.archive.store.has_blob(h))
    }

    /// A source error fails its item, unless a root of the import has gone away (card pulled, disk unmounted):
    /// then the session pauses so that `resume` can finish once the source is back.
    fn source_error(&self, e: Error, roots: &[PathBuf], session: i64) -> ItemError {
        match roots.iter().find(|r| std::fs::metadata(r).is_err()) {
            Some(r) => ItemError::Stop(Stop::Fatal(Error::SourceUnavailable { path: r.clone(), session })),
            None => ItemError::Failed(e),
        }
    }

    /// Brings one item to `Stored`: its content validated in `objects/`.
    fn store_item(
        &self,
        session: i64,
        source: &dyn Source,
        roots: &[PathBuf],
        it: &mut Item,
        cat: &Mutex<Catalog>,
        halt: &AtomicBool,
    ) -> std::result::Result<(), ItemError> {
        let st = &self.archive.store;
        let tmp = st.temp_path(&temp_name(session, it.id));
        // A copy that a crash left validated-but-unlanded, or copied-but-unvalidated, is reused.
        if it.state == ItemState::Copied {
            if let Some(h) = it.hash.clone() {
                if st.has_blob(&h) {
                    remove_if_exists(&tmp).map_err(ItemError::archive)?;
                    self.observer.advance(it.size);
                    return self.mark_stored(it, &h, cat);
                }
                if tmp.is_file() {
                    match store::hash_from_disk(&tmp) {
                        Ok(got) if got == h => {
                            st.land(&tmp, &h).map_err(ItemError::archive)?;
                            self.observer.advance(it.size);
                            return self.mark_stored(it, &h, cat);
                        }
                        _ => remove_if_exists(&tmp).map_err(ItemError::archive)?,
                    }
                }
            }
        }
        let path = bytes_path(&it.path);
        // Content already stored (found by the duplicate check): nothing to copy, if the source is unchanged since.
        if let Some(h) = it.hash.clone() {
            if it.state == ItemState::Pending && st.has_blob(&h) {
                let now = source.stat(&path).map_err(|e| self.source_error(e, roots, session))?;
                if now.size == it.size && now.mtime_ns == it.mtime_ns {
                    self.observer.advance(it.size);
                    return self.mark_stored(it, &h, cat);
                }
                cat.lock().clear_item_hash(it.id).map_err(ItemError::archive)?;
                it.hash = None;
            }
        }
        let (mut changed, mut mismatched) = (0, 0);
        loop {
            let before = source.stat(&path).map_err(|e| self.source_error(e, roots, session))?;
            let mut reader = source.open_at(&path, 0).map_err(|e| self.source_error(e, roots, session))?;
            let (mut out, _) = st.create_temp(&temp_name(session, it.id)).map_err(ItemError::archive)?;
            let mut on_progress = |n: u64| {
                self.observer.advance(n);
                !halt.load(Ordering::Relaxed) && !self.cancel.load(Ordering::Relaxed)
            };
            let result = store::copy_hashing(&mut reader, &path, &mut out, &tmp, &mut on_progress);
            drop(out);
            let copied = match result {
                Ok(c) => c,
                Err(e) => {
                    let _ = remove_if_exists(&tmp);
                    return Err(self.classify_copy_error(e, roots, session));
                }
            };
            let after = match source.stat(&path) {
                Ok(a) => a,
                Err(e) => {
                    remove_if_exists(&tmp).map_err(ItemError::archive)?;
                    return Err(self.source_error(e, roots, session));
                }
            };
            if after != before || copied.len != after.size {
                remove_if_exists(&tmp).map_err(ItemError::archive)?;
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
            cat.lock().item_copied(it.id, &copied.hash, it.size, it.mtime_ns).map_err(ItemError::archive)?;
            it.state = ItemState::Copied;
            it.hash = Some(copied.hash.clone());
            let on_disk = store::hash_from_disk(&tmp).map_err(ItemError::archive)?;
            if on_disk != copied.hash {
                remove_if_exists(&tmp).map_err(ItemError::archive)?;
                mismatched += 1;
                if mismatched < 2 {
                    warn!(path = ?path, "copy did not verify; copying again");
                    continue;
                }
                return Err(ItemError::Failed(Error::Mismatch { path, expected: copied.hash, actual: on_disk }));
            }
            st.land(&tmp, &copied.hash).map_err(ItemError::archive)?;
            return self.mark_stored(it, &copied.hash, cat);
        }
    }

    /// Errors while copying: a full disk or any failure on the archive side stops the session; an interruption
    /// is a cancel; a source that cannot be read fails only its item (or pauses, if the source is gone).
    fn classify_copy_error(&self, e: Error, roots: &[PathBuf], session: i64) -> ItemError {
        match &e {
            Error::Io { source, .. } if source.kind() == std::io::ErrorKind::Interrupted => {
                ItemError::Stop(Stop::Cancelled)
            }
            Error::Io { path, .. } if path.starts_with(&self.archive.root) => ItemError::archive(e),
            _ => self.source_error(e, roots, session),
        }
    }

    fn mark_stored(&self, it: &mut Item, hash: &str, cat: &Mutex<Catalog>) -> std::result::Result<(), ItemError> {
        cat.lock().set_item_state(it.id, ItemState::Stored, Some(hash)).map_err(ItemError::archive)?;
        it.state = ItemState::Stored;
        it.hash = Some(hash.to_string());
        Ok(())
    }

    /// Catalogues a group's stored items in one transaction: clip first, then its sidecars named to match.
    fn finalize_group(&self, session: &crate::catalog::Session, group: &[Item], cat: &Mutex<Catalog>) -> Result<()> {
        let info = if session.camera_id.is_some() { MediaInfo::default() } else { self.group_info(group) };
        let mut c = cat.lock();
        let mut tx = c.finalize_tx()?;
        let (camera_id, footage_type) = route(&tx, session, &info)?;
        let source = session.source.clone();
        // item id -> (file id, original name, display name)
        let mut placed: HashMap<i64, (i64, Vec<u8>, Vec<u8>)> = HashMap::new();
        for it in group {
            if it.state != ItemState::Stored {
                continue;
            }
            let hash = it.hash.as_deref().unwrap_or_default();
            if session.duplicates == DuplicateAction::Skip && tx.couple_has_blob(session.couple_id, hash)? {
                tx.item_end(it, ItemState::Duplicate, None)?;
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
            let (name, key) = assign_name(&tx, session.couple_id, footage_type, camera_id, &desired)?;
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
            })?;
            tx.item_done(it, fid)?;
            placed.insert(it.id, (fid, original, name));
        }
        tx.commit_for(session.id)
    }
}

/// Decides a group's camera and footage type: the import's `--camera`, else a camera whose rule fits the metadata,
/// else a new camera from the detected make and model, else `unknown`. An explicit `--type` always wins; otherwise
/// a matched camera brings its own type.
fn route(tx: &Finalize<'_>, session: &Session, info: &MediaInfo) -> Result<(Option<i64>, FootageType)> {
    let typed = |cam_type: FootageType| if session.type_explicit { session.footage_type } else { cam_type };
    let cams = tx.cameras()?;
    if let Some(id) = session.camera_id {
        let t = cams.iter().find(|c| c.id == id).map(|c| c.footage_type).unwrap_or(session.footage_type);
        return Ok((Some(id), typed(t)));
    }
    if let Some(c) = organize::match_camera(&cams, info) {
        return Ok((Some(c.id), typed(c.footage_type)));
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
    tx: &Finalize<'_>,
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

impl ItemError {
    fn archive(e: Error) -> Self {
        if e.is_disk_full() {
            let path = match &e {
                Error::Io { path, .. } => path.clone(),
                _ => PathBuf::new(),
            };
            ItemError::Stop(Stop::DiskFull(path))
        } else {
            ItemError::Stop(Stop::Fatal(e))
        }
    }
}

/// Scans the roots into items: regular files, sidecars linked to their clip, the rest recorded as skipped or failed.
pub fn scan(source: &dyn Source, roots: &[PathBuf]) -> Result<Vec<NewItem>> {
    let entries = source.scan(roots)?;
    let mut items: Vec<NewItem> = entries
        .iter()
        .map(|e| {
            let (state, size, mtime_ns, error) = match &e.kind {
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
    Ok(items)
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
