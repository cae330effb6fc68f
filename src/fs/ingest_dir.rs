//! The writable ingest directory of the mount, free of any FUSE type (answers are `FsResult`s; `ArchiveFs` routes
//! `/ingest` here after its permission checks): `/ingest/<couple folder>/...` where `cp`,
//! `rsync` and file managers copy cards. It owns the writers' view (entries persisted in the catalog, so a second
//! `rsync -a` sees the sizes and mtimes it set and transfers nothing), staging files in the archive's `tmp/` hashed
//! inline while writes arrive in order, and the commit of a file once it is closed under its final name (rsync's
//! `.name.XXXXXX` temp names commit when renamed): verified from disk and catalogued through the import pipeline
//! (`Importer::commit_file`) in one import session per couple, under the couple's import lock (commits wait in
//! line for a running import of their couple). A commit that fails takes the file out of the view (to be copied
//! again) and is recorded in that session. A writer killed halfway commits nothing; staging left by a daemon that
//! died is discarded at the next start. Committed content is never removed from the archive.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use tracing::{info, warn};

use crate::archive::Archive;
use crate::catalog::{
    system_time_ns, Catalog, CoupleLease, DuplicateAction, IngestEntry, ItemState, NewItem, SessionStatus,
};
use crate::error::{Error, Result};
use crate::ingest::{Importer, Quiet};

use super::ino::{
    ingest_entry_ino, INGEST_FH_BASE, INGEST_ROOT_INO, KIND_MASK, K_INGEST_COUPLE as K_COUPLE,
    K_INGEST_ENTRY as K_ENTRY, ROOT_INO,
};
use super::node::{Attr, DirEntry, FsError, FsResult, Kind};

type R<T> = FsResult<T>;

fn entry_ino(id: i64) -> u64 {
    ingest_entry_ino(id)
}

/// The inode of a couple's ingest folder (no parent) or of a folder below it.
fn dir_ino(couple: i64, parent: Option<i64>) -> u64 {
    parent.map_or(K_COUPLE | couple as u64, entry_ino)
}

/// True for a file that never commits: operating-system litter, judged on its path below the couple's folder by
/// the one list of `organize::litter_reason` (`.DS_Store`, AppleDouble `._*`, `Thumbs.db`, anything in a
/// `.Spotlight-V100` or `.Trashes` folder...). It stays in the writers' view until the next start.
pub fn is_litter(rel_path: &[u8]) -> bool {
    crate::organize::litter_reason(rel_path).is_some()
}

/// Names that wait for a rename before they commit: rsync's `.<name>.XXXXXX` temp files (and litter names).
/// A temp-looking file that is still not renamed a while after its writer closed it commits anyway (a real
/// `.profile.backup` must not wait forever).
pub fn is_temp_name(name: &[u8]) -> bool {
    if is_litter(name) {
        return true;
    }
    if name.len() > 8 && name[0] == b'.' {
        let (head, tail) = name.split_at(name.len() - 7);
        return head.len() > 1 && tail[0] == b'.' && tail[1..].iter().all(|c| c.is_ascii_alphanumeric());
    }
    false
}

/// How long a closed temp-looking file waits for its rename, once its writer is gone, before it commits under its
/// own name.
const TEMP_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// How long it waits while its writer lives. rsync renames its temp file right after closing it, but on a busy
/// machine that rename can come many seconds later: the writer living says the rename may still come. A
/// long-lived program that writes a real file with a temp-like name commits after this.
const TEMP_WAIT_LIVING_WRITER: std::time::Duration = std::time::Duration::from_secs(600);

/// A file being written.
struct Staged {
    file: File,
    path: PathBuf,
    hasher: crate::blobs::Hashers,
    hashed: u64,
    sequential: bool,
    /// A write failed (disk full...): never commit what is there.
    failed: bool,
    /// Written since the last commit.
    dirty: bool,
    /// The writer died (killed): discard on release.
    abandoned: bool,
    /// Committed: the file now lives in `objects/` (or is gone). Nothing may touch it through this handle again.
    retired: bool,
    /// Waiting in the commit queue.
    queued: bool,
    /// When the last writer closed it (for the temp-name grace period).
    closed_at: Option<std::time::Instant>,
    /// The process that closed it last (0: unknown), which may still rename it.
    closer: u32,
    opens: u32,
    /// Identifies this staging file to a front end that registers it with the kernel.
    token: u64,
    /// Handed to the kernel (see [`IngestDir::direct_write_target`]): writes bypass this daemon, so the size and
    /// mtime are read from the file and the hash is computed at commit.
    direct: bool,
}

/// How a commit attempt ended (see [`IngestDir::commit`]).
enum Attempt {
    /// Committed, or nothing (left) to commit.
    Done,
    /// An import of the couple holds its lock: try again later.
    Busy,
}

/// A commit waiting for an import of its couple to end.
struct Waiting {
    id: i64,
    staged: Arc<Mutex<Staged>>,
    couple: i64,
}

/// One commit's share of a couple lock held by the ingest directory; the lock goes when the last share does.
struct CoupleHold<'a> {
    dir: &'a IngestDir,
    couple: i64,
}

impl Drop for CoupleHold<'_> {
    fn drop(&mut self) {
        let mut held = self.dir.couple_locks.lock();
        if let Some((_, n)) = held.get_mut(&self.couple) {
            *n -= 1;
            if *n == 0 {
                held.remove(&self.couple);
            }
        }
    }
}

/// The entry a commit is about, with its path below the couple's folder and its `/ingest/...` label.
struct Target {
    e: IngestEntry,
    rel: Vec<u8>,
    label: Vec<u8>,
}

enum Handle {
    /// Writes go to the staged file of this entry.
    Write(i64),
    /// Reads of a committed blob or a staged file, of this entry.
    Read(i64, Readable),
}

/// What a read handle reads: a local file (the staged file, or a committed blob that is a file), or a committed
/// blob through its store (a remote or encrypted store, whose blobs are not plain local files).
#[derive(Clone)]
enum Readable {
    File(Arc<File>),
    Blob(Arc<dyn crate::blobs::BlobReader>),
}

struct State {
    entries: HashMap<i64, IngestEntry>,
    /// (couple, parent entry or 0) -> name -> entry id
    children: HashMap<(i64, i64), BTreeMap<Vec<u8>, i64>>,
    couples: BTreeMap<Vec<u8>, i64>,
    handles: HashMap<u64, Handle>,
    /// Directories whose listing changed since the front end last asked (see [`IngestDir::take_changed_dirs`]);
    /// `/ingest` itself when the couples changed.
    changed: HashSet<u64>,
}

impl State {
    fn insert(&mut self, e: IngestEntry) {
        self.changed.insert(dir_ino(e.couple_id, e.parent_id));
        self.children.entry((e.couple_id, e.parent_id.unwrap_or(0))).or_default().insert(e.name.clone(), e.id);
        self.entries.insert(e.id, e);
    }
    fn remove(&mut self, id: i64) -> Option<IngestEntry> {
        let e = self.entries.remove(&id)?;
        self.changed.insert(dir_ino(e.couple_id, e.parent_id));
        if let Some(c) = self.children.get_mut(&(e.couple_id, e.parent_id.unwrap_or(0))) {
            c.remove(&e.name);
        }
        Some(e)
    }
    /// (couple, parent id or 0) of a directory inode.
    fn dir_key(&self, ino: u64) -> Option<(i64, i64)> {
        match ino & KIND_MASK {
            K_COUPLE => Some(((ino & !KIND_MASK) as i64, 0)),
            K_ENTRY => {
                let e = self.entries.get(&((ino & !KIND_MASK) as i64))?;
                e.is_dir.then_some((e.couple_id, e.id))
            }
            _ => None,
        }
    }
    fn child(&self, key: (i64, i64), name: &[u8]) -> Option<i64> {
        self.children.get(&key).and_then(|c| c.get(name)).copied()
    }
    /// The path of an entry below its couple's ingest folder: `PRIVATE/M4ROOT/CLIP/C0001.MP4`.
    fn rel_path(&self, id: i64) -> Vec<u8> {
        let mut parts = Vec::new();
        let mut cur = self.entries.get(&id);
        while let Some(e) = cur {
            parts.push(e.name.clone());
            cur = e.parent_id.and_then(|p| self.entries.get(&p));
        }
        parts.reverse();
        parts.join(&b'/')
    }
}

/// The ingest directory over one archive.
pub struct IngestDir {
    archive: Archive,
    cat: Mutex<Catalog>,
    state: Mutex<State>,
    staged: Mutex<HashMap<i64, Arc<Mutex<Staged>>>>,
    sessions: Mutex<HashMap<i64, i64>>,
    next_fh: AtomicU64,
    uid: u32,
    gid: u32,
    started_ns: i64,
    cancel: Arc<AtomicBool>,
    /// Files waiting to be committed, served by background threads so that FUSE threads keep taking writes.
    queue: Mutex<Option<CommitQueue>>,
    committers: Mutex<Vec<std::thread::JoinHandle<()>>>,
    /// Commits waiting for an import of their couple to end, oldest first.
    waiting: Mutex<VecDeque<Waiting>>,
    /// The couple locks held while commits run, with how many commits hold each.
    couple_locks: Mutex<HashMap<i64, (CoupleLease, usize)>>,
    direct_min_free: u64,
}

/// The I/O size the ingest directory advertises (`st_blksize`): `cp` and friends size their writes by it, and each
/// write is one round trip through the daemon.
const INGEST_BLKSIZE: u32 = 1 << 20;

/// Free space the archive's disk needs before a writer is handed the staging file directly (see
/// [`IngestDir::direct_write_target`]); `NIGHTFOX_INGEST_DIRECT_MIN_FREE` (bytes) overrides it.
const DIRECT_MIN_FREE: u64 = 8 << 30;

/// Free space (for the writer: root may use the blocks reserved for it) under which a file written directly is
/// taken to have hit a full disk when it is closed: the writer got ENOSPC from the kernel, which this daemon never
/// sees (a write that fills the disk returns short and the next one fails, so the space left then is next to
/// nothing), and what it left is not committed.
const DIRECT_FULL: u64 = 64 << 20;

/// Entries waiting for a commit thread.
type CommitQueue = std::sync::mpsc::Sender<(i64, Arc<Mutex<Staged>>)>;

/// Background commit threads: verification of one file overlaps the writing of the next.
const COMMITTERS: usize = 2;

/// How often an idle commit thread looks for temp-named files to commit, and how often commits waiting for an
/// import of their couple try again.
const IDLE_POLL: std::time::Duration = std::time::Duration::from_secs(1);
const BUSY_POLL: std::time::Duration = std::time::Duration::from_millis(250);

impl IngestDir {
    /// Loads the writers' view; discards staging that a previous daemon left behind.
    pub fn load(archive: &Archive, uid: u32, gid: u32) -> Result<IngestDir> {
        let cat = archive.catalog()?;
        let mut state = State {
            entries: HashMap::new(),
            children: HashMap::new(),
            couples: BTreeMap::new(),
            handles: HashMap::new(),
            changed: HashSet::new(),
        };
        for e in cat.ingest_entries()? {
            if !e.is_dir && !e.committed {
                warn!(entry = e.id, name = %String::from_utf8_lossy(&e.name), "discarding an uncommitted ingest file left by a stopped daemon");
                let _ = std::fs::remove_file(archive.staging.path(&format!("ingest-{}.part", e.id)));
                cat.remove_ingest_entry(e.id)?;
                continue;
            }
            state.insert(e);
        }
        // Ingest sessions left open by a stopped daemon hold only committed items: close them.
        for id in cat.unfinished_sessions_with_source_prefix("ingest:")? {
            close_session(&cat, id)?;
        }
        let dir = IngestDir {
            archive: archive.clone(),
            cat: Mutex::new(cat),
            state: Mutex::new(state),
            staged: Mutex::new(HashMap::new()),
            sessions: Mutex::new(HashMap::new()),
            next_fh: AtomicU64::new(INGEST_FH_BASE),
            uid,
            gid,
            // Stable across mounts: the archive's creation.
            started_ns: std::fs::metadata(archive.root.join("objects"))
                .and_then(|m| m.created().or_else(|_| m.modified()))
                .map(system_time_ns)
                .unwrap_or(0),
            cancel: Arc::new(AtomicBool::new(false)),
            queue: Mutex::new(None),
            committers: Mutex::new(Vec::new()),
            waiting: Mutex::new(VecDeque::new()),
            couple_locks: Mutex::new(HashMap::new()),
            direct_min_free: std::env::var("NIGHTFOX_INGEST_DIRECT_MIN_FREE")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(DIRECT_MIN_FREE),
        };
        dir.refresh_couples();
        Ok(dir)
    }

    /// Starts the commit threads (once the directory is shared).
    pub fn start(self: &Arc<Self>) {
        let (tx, rx) = std::sync::mpsc::channel::<(i64, Arc<Mutex<Staged>>)>();
        let rx = Arc::new(Mutex::new(rx));
        *self.queue.lock() = Some(tx);
        let mut handles = self.committers.lock();
        for _ in 0..COMMITTERS {
            let me = Arc::clone(self);
            let rx = Arc::clone(&rx);
            handles.push(std::thread::spawn(move || loop {
                me.commit_waiting();
                let idle = if me.waiting.lock().is_empty() { IDLE_POLL } else { BUSY_POLL };
                let job = rx.lock().recv_timeout(idle);
                match job {
                    Ok((id, s)) => me.commit_or_wait(id, s),
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => me.sweep_temp_names(),
                    Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
                }
            }));
        }
    }

    /// Commits temp-looking files that were closed a while ago and never renamed.
    fn sweep_temp_names(&self) {
        let candidates: Vec<(i64, Arc<Mutex<Staged>>)> =
            self.staged.lock().iter().map(|(k, v)| (*k, Arc::clone(v))).collect();
        for (id, s) in candidates {
            let due = {
                let g = s.lock();
                g.opens == 0
                    && g.dirty
                    && !g.queued
                    && !g.retired
                    && !g.failed
                    && !g.abandoned
                    && g.closed_at.is_some_and(|t| {
                        let waited = t.elapsed();
                        waited >= TEMP_WAIT_LIVING_WRITER
                            || (waited >= TEMP_GRACE && !crate::serve::pid_alive(g.closer))
                    })
            };
            let litter = {
                let st = self.state.lock();
                !st.entries.contains_key(&id) || is_litter(&st.rel_path(id))
            };
            if due && !litter {
                info!(entry = id, "a temp-looking file was not renamed: committing it under its own name");
                self.enqueue(id, &s);
            }
        }
    }

    /// Commits a file from the queue, or puts it in line behind an import of its couple (a failure is logged and
    /// recorded by `commit`). Files of a couple that waits commit in the order they came.
    fn commit_or_wait(&self, id: i64, s: Arc<Mutex<Staged>>) {
        let Some(couple) = self.state.lock().entries.get(&id).map(|e| e.couple_id) else { return };
        let behind = self.waiting.lock().iter().any(|w| w.couple == couple);
        if !behind && !matches!(self.commit(id, &s), Ok(Attempt::Busy)) {
            return;
        }
        let mut waiting = self.waiting.lock();
        if !waiting.iter().any(|w| w.couple == couple) {
            info!(couple, "an import of the couple is running: commits from /ingest wait for it");
        }
        waiting.push_back(Waiting { id, staged: s, couple });
    }

    /// Tries the commits waiting for their couples again, oldest first; those whose couple is still busy stay in
    /// line (ahead of any queued meanwhile).
    fn commit_waiting(&self) {
        let jobs = std::mem::take(&mut *self.waiting.lock());
        if jobs.is_empty() {
            return;
        }
        let mut busy = HashSet::new();
        let mut still = VecDeque::new();
        for w in jobs {
            if busy.contains(&w.couple) || matches!(self.commit(w.id, &w.staged), Ok(Attempt::Busy)) {
                busy.insert(w.couple);
                still.push_back(w);
            }
        }
        let mut waiting = self.waiting.lock();
        for w in still.into_iter().rev() {
            waiting.push_front(w);
        }
    }

    /// Queues a commit (or commits here when no thread runs).
    fn enqueue(&self, id: i64, s: &Arc<Mutex<Staged>>) {
        s.lock().queued = true;
        let sent = match self.queue.lock().as_ref() {
            Some(tx) => tx.send((id, Arc::clone(s))).is_ok(),
            None => false,
        };
        if !sent {
            self.commit_or_wait(id, Arc::clone(s));
        }
    }

    /// Finishes the queued commits and closes this run's ingest sessions (at unmount). A commit still waiting for
    /// an import of its couple is not waited for: it fails (out of the view, recorded in the session) and the
    /// writer copies it again.
    pub fn shutdown(&self) {
        drop(self.queue.lock().take());
        let handles: Vec<_> = self.committers.lock().drain(..).collect();
        for h in handles {
            let _ = h.join();
        }
        self.commit_waiting();
        let left = std::mem::take(&mut *self.waiting.lock());
        for w in left {
            self.give_up(w.id, &w.staged, w.couple);
        }
        let sessions: Vec<i64> = self.sessions.lock().drain().map(|(_, s)| s).collect();
        let cat = self.cat.lock();
        for s in sessions {
            if let Err(e) = close_session(&cat, s) {
                warn!("cannot close ingest session {s}: {e}");
            }
        }
    }

    fn refresh_couples(&self) {
        let couples = match self.cat.lock().couple_folders() {
            Ok(c) => c,
            Err(e) => {
                warn!("cannot list couples: {e}");
                return;
            }
        };
        let couples: BTreeMap<Vec<u8>, i64> =
            couples.into_iter().map(|(id, folder)| (folder.into_bytes(), id)).collect();
        let mut st = self.state.lock();
        if st.couples != couples {
            st.couples = couples;
            st.changed.insert(INGEST_ROOT_INO);
        }
    }

    /// The directories whose listings changed since the last call, new couples included: a front end that keeps
    /// listings drops these (changes made through its own create, rename and unlink included, harmlessly).
    pub fn take_changed_dirs(&self) -> Vec<u64> {
        self.refresh_couples();
        self.state.lock().changed.drain().collect()
    }

    fn dir_attr(&self, ino: u64, mtime_ns: i64, perm: u16, uid: u32, gid: u32) -> Attr {
        Attr {
            ino,
            kind: Kind::Dir,
            size: 4096,
            blocks: 8,
            mtime_ns,
            ctime_ns: mtime_ns,
            perm,
            nlink: 2,
            uid,
            gid,
            blksize: INGEST_BLKSIZE,
        }
    }

    fn entry_attr(&self, e: &IngestEntry) -> Attr {
        let ino = entry_ino(e.id);
        if e.is_dir {
            return self.dir_attr(ino, e.mtime_ns, (e.mode & 0o7777) as u16, e.uid, e.gid);
        }
        Attr {
            ino,
            kind: Kind::File,
            size: e.size,
            blocks: e.size.div_ceil(512),
            mtime_ns: e.mtime_ns,
            ctime_ns: e.mtime_ns,
            perm: (e.mode & 0o7777) as u16,
            nlink: 1,
            uid: e.uid,
            gid: e.gid,
            blksize: INGEST_BLKSIZE,
        }
    }

    /// True when an inode's attributes may still change (a file being written).
    pub fn is_volatile(&self, ino: u64) -> bool {
        ino & KIND_MASK == K_ENTRY && self.staged.lock().contains_key(&((ino & !KIND_MASK) as i64))
    }

    pub fn getattr(&self, ino: u64) -> Option<Attr> {
        if ino == INGEST_ROOT_INO {
            return Some(self.dir_attr(ino, self.started_ns, 0o755, self.uid, self.gid));
        }
        match ino & KIND_MASK {
            K_COUPLE => {
                let id = (ino & !KIND_MASK) as i64;
                self.state
                    .lock()
                    .couples
                    .values()
                    .any(|c| *c == id)
                    .then(|| self.dir_attr(ino, self.started_ns, 0o755, self.uid, self.gid))
            }
            K_ENTRY => {
                let id = (ino & !KIND_MASK) as i64;
                self.refresh_direct(id);
                let st = self.state.lock();
                st.entries.get(&id).map(|e| self.entry_attr(e))
            }
            _ => None,
        }
    }

    pub fn lookup(&self, parent: u64, name: &[u8]) -> Option<Attr> {
        if parent == INGEST_ROOT_INO {
            let found = self.state.lock().couples.get(name).copied();
            let id = match found {
                Some(id) => Some(id),
                None => {
                    self.refresh_couples();
                    self.state.lock().couples.get(name).copied()
                }
            }?;
            return self.getattr(K_COUPLE | id as u64);
        }
        let id = {
            let st = self.state.lock();
            let key = st.dir_key(parent)?;
            st.child(key, name)?
        };
        self.getattr(entry_ino(id))
    }

    /// The parent directory of an ingest inode.
    pub fn parent(&self, ino: u64) -> Option<u64> {
        if ino == INGEST_ROOT_INO {
            return Some(ROOT_INO);
        }
        if ino & KIND_MASK == K_COUPLE {
            return Some(INGEST_ROOT_INO);
        }
        let st = self.state.lock();
        let e = st.entries.get(&((ino & !KIND_MASK) as i64))?;
        Some(match e.parent_id {
            Some(p) => entry_ino(p),
            None => K_COUPLE | e.couple_id as u64,
        })
    }

    pub fn readdir(&self, ino: u64) -> Option<Vec<DirEntry>> {
        if ino == INGEST_ROOT_INO {
            self.refresh_couples();
            let st = self.state.lock();
            let v = st
                .couples
                .iter()
                .map(|(name, id)| DirEntry {
                    name: name.clone(),
                    attr: self.dir_attr(K_COUPLE | *id as u64, self.started_ns, 0o755, self.uid, self.gid),
                })
                .collect();
            return Some(v);
        }
        let key = self.state.lock().dir_key(ino)?;
        // Files being written directly: their sizes come from their staging files.
        let live: Vec<i64> = self.staged.lock().keys().copied().collect();
        for id in live {
            self.refresh_direct(id);
        }
        let st = self.state.lock();
        Some(
            st.children
                .get(&key)
                .map(|c| {
                    c.iter()
                        .filter_map(|(n, id)| {
                            st.entries.get(id).map(|e| DirEntry { name: n.clone(), attr: self.entry_attr(e) })
                        })
                        .collect()
                })
                .unwrap_or_default(),
        )
    }

    fn fh(&self) -> u64 {
        self.next_fh.fetch_add(1, Ordering::Relaxed)
    }

    /// Validates a new name in a directory of the ingest tree; returns the (couple, parent) key.
    fn parent_key(&self, parent: u64) -> R<(i64, i64)> {
        if parent == INGEST_ROOT_INO {
            // New couples are made with `nightfox couple add`, not here.
            return Err(FsError::NotFound);
        }
        self.state.lock().dir_key(parent).ok_or(FsError::NotFound)
    }

    fn check_name(name: &[u8]) -> R<()> {
        if name.is_empty() || name == b"." || name == b".." || name.contains(&b'/') || name.contains(&0) {
            return Err(FsError::Invalid);
        }
        if name.len() > crate::organize::NAME_MAX {
            return Err(FsError::NameTooLong);
        }
        Ok(())
    }

    fn staging_path(&self, id: i64) -> PathBuf {
        self.archive.staging.path(&format!("ingest-{id}.part"))
    }

    fn new_staged(&self, id: i64) -> R<Arc<Mutex<Staged>>> {
        let path = self.staging_path(id);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| FsError::from(&e))?;
        let s = Arc::new(Mutex::new(Staged {
            file,
            path,
            hasher: crate::blobs::Hashers::new(),
            hashed: 0,
            sequential: true,
            failed: false,
            dirty: true,
            abandoned: false,
            retired: false,
            queued: false,
            closed_at: None,
            closer: 0,
            opens: 0,
            token: self.fh(),
            direct: false,
        }));
        self.staged.lock().insert(id, Arc::clone(&s));
        Ok(s)
    }

    /// Records a new entry (a directory, committed at once, or a file about to be staged) in the catalog.
    fn add_entry(&self, key: (i64, i64), name: &[u8], is_dir: bool, mode: u32, uid: u32, gid: u32) -> R<IngestEntry> {
        let mut e = IngestEntry {
            id: 0,
            couple_id: key.0,
            parent_id: (key.1 != 0).then_some(key.1),
            name: name.to_vec(),
            is_dir,
            committed: is_dir,
            size: 0,
            mtime_ns: system_time_ns(std::time::SystemTime::now()),
            mode: mode & 0o7777,
            uid,
            gid,
            blob_hash: None,
            file_id: None,
        };
        e.id = self.cat.lock().add_ingest_entry(&e).map_err(|e| FsError::from(&e))?;
        Ok(e)
    }

    /// Creates a file and opens it for writing; returns its attributes and a handle.
    pub fn create(&self, parent: u64, name: &[u8], mode: u32, uid: u32, gid: u32) -> R<(Attr, u64)> {
        Self::check_name(name)?;
        let (couple, pid) = self.parent_key(parent)?;
        let existing = self.state.lock().child((couple, pid), name);
        if let Some(id) = existing {
            // O_CREAT on an existing file: open it for writing from scratch.
            let fh = self.open(entry_ino(id), libc::O_WRONLY | libc::O_TRUNC)?;
            let attr = self.getattr(entry_ino(id)).ok_or(FsError::NotFound)?;
            return Ok((attr, fh));
        }
        let e = self.add_entry((couple, pid), name, false, mode, uid, gid)?;
        let staged = self.new_staged(e.id)?;
        staged.lock().opens += 1;
        let attr = self.entry_attr(&e);
        let fh = self.fh();
        let mut st = self.state.lock();
        st.handles.insert(fh, Handle::Write(e.id));
        st.insert(e);
        Ok((attr, fh))
    }

    pub fn mkdir(&self, parent: u64, name: &[u8], mode: u32, uid: u32, gid: u32) -> R<Attr> {
        Self::check_name(name)?;
        let (couple, pid) = self.parent_key(parent)?;
        if self.state.lock().child((couple, pid), name).is_some() {
            return Err(FsError::Exists);
        }
        let e = self.add_entry((couple, pid), name, true, mode, uid, gid)?;
        let attr = self.entry_attr(&e);
        self.state.lock().insert(e);
        Ok(attr)
    }

    /// Opens a file. Writing needs O_TRUNC on a committed file (committed content is immutable); a file still
    /// being written can be opened again to continue.
    pub fn open(&self, ino: u64, flags: i32) -> R<u64> {
        if ino & KIND_MASK != K_ENTRY {
            return Err(FsError::IsDir);
        }
        let id = (ino & !KIND_MASK) as i64;
        let e = self.state.lock().entries.get(&id).cloned().ok_or(FsError::NotFound)?;
        if e.is_dir {
            return Err(FsError::IsDir);
        }
        let write = flags & libc::O_ACCMODE != libc::O_RDONLY;
        let fh = self.fh();
        if !write {
            // A file being written is read through its own descriptor (still valid if it commits meanwhile);
            // a committed one from its blob.
            let staged = self.staged.lock().get(&id).cloned();
            let live = match staged {
                Some(s) => {
                    let g = s.lock();
                    if g.retired {
                        None
                    } else {
                        Some(g.file.try_clone().map_err(|e| FsError::from(&e))?)
                    }
                }
                None => None,
            };
            let readable = match live {
                Some(f) => Readable::File(Arc::new(f)),
                None => {
                    let hash =
                        self.state.lock().entries.get(&id).and_then(|e| e.blob_hash.clone()).ok_or(FsError::Io)?;
                    match self.archive.blobs.local_path(&hash) {
                        Some(path) => Readable::File(Arc::new(File::open(path).map_err(|e| FsError::from(&e))?)),
                        None => {
                            Readable::Blob(Arc::from(self.archive.blobs.open(&hash).map_err(|e| FsError::from(&e))?))
                        }
                    }
                }
            };
            self.state.lock().handles.insert(fh, Handle::Read(id, readable));
            return Ok(fh);
        }
        // A staged file waiting for its commit is committed first (what was written is kept); one committed
        // meanwhile (its release raced with this open) is not reused.
        let pending = self.staged.lock().get(&id).cloned();
        if let Some(p) = pending {
            let queued = p.lock().queued;
            // Busy: an import of the couple runs and the commit waits for it; this writer cannot go on meanwhile.
            if queued && matches!(self.commit(id, &p)?, Attempt::Busy) {
                return Err(FsError::Busy);
            }
            // A commit that failed (here or on a commit thread) took the file out of the view.
            if !self.state.lock().entries.contains_key(&id) {
                return Err(FsError::NotFound);
            }
        }
        let existing = self.staged.lock().get(&id).cloned().filter(|s| !s.lock().retired);
        let staged = match existing {
            Some(s) => {
                if flags & libc::O_TRUNC != 0 {
                    let mut g = s.lock();
                    g.file.set_len(0).map_err(|e| FsError::from(&e))?;
                    g.hasher = crate::blobs::Hashers::new();
                    g.hashed = 0;
                    g.sequential = true;
                    g.dirty = true;
                    drop(g);
                    self.set_size(id, 0);
                }
                s
            }
            None if flags & libc::O_TRUNC != 0 => {
                let s = self.new_staged(id)?;
                let mut st = self.state.lock();
                if let Some(e) = st.entries.get_mut(&id) {
                    e.size = 0;
                    e.committed = false;
                }
                s
            }
            None => return Err(FsError::Perm),
        };
        {
            let mut g = staged.lock();
            g.opens += 1;
            g.closed_at = None;
        }
        self.state.lock().handles.insert(fh, Handle::Write(id));
        Ok(fh)
    }

    /// The staging file behind a write handle, for a front end that hands it to the kernel (FUSE passthrough) so
    /// the writer's bytes go straight to it, at the speed of a plain copy. Returns a token naming that staging
    /// file (every open of it must share one kernel registration) and a descriptor of it. From then on this
    /// daemon sees no write: the size and mtime are read from the file, the hash is computed from memory at commit
    /// and compared with the hash from disk as for any write. Only offered while the disk has room to spare: a
    /// writer that runs into a full disk gets ENOSPC from the kernel, which this daemon can only infer (see
    /// `release`). `None`: keep writing through the daemon.
    pub fn direct_write_target(&self, fh: u64) -> Option<(u64, File)> {
        let id = match self.state.lock().handles.get(&fh) {
            Some(Handle::Write(id)) => *id,
            _ => return None,
        };
        let uid = self.state.lock().entries.get(&id).map(|e| e.uid)?;
        let s = self.staged.lock().get(&id).cloned()?;
        let mut g = s.lock();
        if g.retired {
            return None;
        }
        if !g.direct && self.free_for(uid).is_none_or(|f| f < self.direct_min_free) {
            return None;
        }
        let file = g.file.try_clone().ok()?;
        g.direct = true;
        g.sequential = false;
        g.dirty = true;
        Some((g.token, file))
    }

    /// The token of the staging file a read handle's entry is being written to directly, if it is: the kernel
    /// wants every open of an inode that has a backing file to use that backing file.
    pub fn direct_token(&self, fh: u64) -> Option<u64> {
        let id = match self.state.lock().handles.get(&fh) {
            Some(Handle::Read(id, _)) => *id,
            _ => return None,
        };
        let s = self.staged.lock().get(&id).cloned()?;
        let g = s.lock();
        (g.direct && !g.retired).then_some(g.token)
    }

    /// Free space on the archive's disk for a writer of this uid.
    fn free_for(&self, uid: u32) -> Option<u64> {
        crate::blobs::free_bytes(&self.archive.root, uid == 0)
    }

    /// Brings a directly written file's size and mtime into the writers' view (the kernel wrote it, not us).
    fn refresh_direct(&self, id: i64) {
        let Some(s) = self.staged.lock().get(&id).cloned() else { return };
        let meta = {
            let g = s.lock();
            if !g.direct || g.retired {
                return;
            }
            g.file.metadata()
        };
        let Ok(m) = meta else { return };
        if let Some(e) = self.state.lock().entries.get_mut(&id) {
            e.size = m.len();
            if let Ok(t) = m.modified() {
                e.mtime_ns = system_time_ns(t);
            }
        }
    }

    fn set_size(&self, id: i64, size: u64) {
        if let Some(e) = self.state.lock().entries.get_mut(&id) {
            e.size = size;
        }
    }

    pub fn read(&self, fh: u64, offset: u64, size: u32) -> R<Vec<u8>> {
        // Guards are taken one at a time (never a lock held across another).
        let handle = match self.state.lock().handles.get(&fh) {
            Some(Handle::Read(_, r)) => Ok(r.clone()),
            Some(Handle::Write(id)) => Err(Some(*id)),
            None => Err(None),
        };
        let file = match handle {
            Ok(f) => f,
            Err(Some(id)) => {
                let s = self.staged.lock().get(&id).cloned().ok_or(FsError::BadHandle)?;
                let g = s.lock();
                if g.retired {
                    return Err(FsError::BadHandle);
                }
                let f = g.file.try_clone().map_err(|e| FsError::from(&e))?;
                Readable::File(Arc::new(f))
            }
            Err(None) => return Err(FsError::BadHandle),
        };
        let file = match file {
            Readable::File(f) => f,
            Readable::Blob(b) => {
                // A store's reader gives fewer bytes only at the end of the blob.
                let mut buf = vec![0u8; size as usize];
                let n = b.read_at(&mut buf, offset).map_err(|e| {
                    warn!("read of a committed /ingest file failed: {e}");
                    FsError::from(&e)
                })?;
                buf.truncate(n);
                return Ok(buf);
            }
        };
        let mut buf = vec![0u8; size as usize];
        let mut n = 0;
        while n < buf.len() {
            match file.read_at(&mut buf[n..], offset + n as u64) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(FsError::from(&e)),
            }
        }
        buf.truncate(n);
        Ok(buf)
    }

    /// Writes into the staging file, hashing inline while the writes come in order. `reply` is called as soon as
    /// the bytes are in the staging file, before they are hashed (still under the file's lock, so the hash sees
    /// writes in order): the writer reads its next chunk while this one is hashed.
    pub fn write(&self, fh: u64, offset: u64, data: &[u8], reply: impl FnOnce(R<u32>)) {
        let id = match self.state.lock().handles.get(&fh) {
            Some(Handle::Write(id)) => *id,
            _ => return reply(Err(FsError::BadHandle)),
        };
        let Some(s) = self.staged.lock().get(&id).cloned() else { return reply(Err(FsError::BadHandle)) };
        let mut g = s.lock();
        if g.retired {
            return reply(Err(FsError::BadHandle));
        }
        if let Err(e) = g.file.write_all_at(data, offset) {
            g.failed = true;
            return reply(Err(FsError::from(&e)));
        }
        g.dirty = true;
        let end = offset + data.len() as u64;
        {
            let mut st = self.state.lock();
            if let Some(e) = st.entries.get_mut(&id) {
                e.size = e.size.max(end);
                e.mtime_ns = system_time_ns(std::time::SystemTime::now());
            }
        }
        reply(Ok(data.len() as u32));
        if g.sequential && offset == g.hashed {
            g.hasher.update(data);
            g.hashed += data.len() as u64;
        } else {
            // Out of order: the hash is computed from disk at commit.
            g.sequential = false;
        }
    }

    pub fn fsync(&self, fh: u64) -> R<()> {
        let id = match self.state.lock().handles.get(&fh) {
            Some(Handle::Write(id)) => *id,
            _ => return Ok(()),
        };
        let staged = self.staged.lock().get(&id).cloned();
        if let Some(s) = staged {
            s.lock().file.sync_data().map_err(|e| FsError::from(&e))?;
        }
        Ok(())
    }

    /// Called on every close of a descriptor (`dup`s included, so it is not the end of the write). It only notes
    /// a writer that is dying from a signal: what it wrote is not committed.
    pub fn flush(&self, fh: u64, pid: u32) -> R<()> {
        let id = match self.state.lock().handles.get(&fh) {
            Some(Handle::Write(id)) => *id,
            _ => return Ok(()),
        };
        let staged = self.staged.lock().get(&id).cloned();
        if let Some(s) = staged {
            if killed_soon(pid) {
                info!(entry = id, "the writer was killed: its file is not committed");
                s.lock().abandoned = true;
            }
            s.lock().closer = pid;
        }
        Ok(())
    }

    /// The last reference to an open file went away. A file written under its final name commits now (a temp
    /// name waits for its rename); one whose writer failed or was killed is discarded.
    pub fn release(&self, fh: u64) {
        let Some(Handle::Write(id)) = self.state.lock().handles.remove(&fh) else { return };
        let Some(s) = self.staged.lock().get(&id).cloned() else { return };
        let uid = self.state.lock().entries.get(&id).map_or(0, |e| e.uid);
        let (abandon, ready) = {
            let mut g = s.lock();
            g.opens = g.opens.saturating_sub(1);
            if g.opens > 0 {
                return;
            }
            g.closed_at = Some(std::time::Instant::now());
            if g.direct && !g.abandoned && self.free_for(uid).is_some_and(|f| f < DIRECT_FULL) {
                warn!(
                    entry = id,
                    "the archive's disk is full: the file written there is taken as cut short and not committed"
                );
                g.failed = true;
            }
            (g.abandoned || g.failed, g.dirty)
        };
        if abandon {
            self.discard(id, &s);
            return;
        }
        let name_final = {
            let st = self.state.lock();
            st.entries.get(&id).is_some_and(|e| !is_temp_name(&e.name)) && !is_litter(&st.rel_path(id))
        };
        if ready && name_final {
            self.enqueue(id, &s);
        } else if !ready {
            self.unstage(id, &s);
        }
    }

    /// Forgets a staged file, unless a newer one for the same entry has taken its place.
    fn unstage(&self, id: i64, s: &Arc<Mutex<Staged>>) {
        let mut map = self.staged.lock();
        if map.get(&id).is_some_and(|cur| Arc::ptr_eq(cur, s)) {
            map.remove(&id);
        }
    }

    fn discard(&self, id: i64, s: &Arc<Mutex<Staged>>) {
        self.unstage(id, s);
        {
            let mut g = s.lock();
            g.retired = true;
            let _ = std::fs::remove_file(&g.path);
        }
        if self.staged.lock().contains_key(&id) {
            // A newer write of this entry is under way: it owns the entry now.
            return;
        }
        let removed = self.state.lock().remove(id);
        if let Some(e) = removed {
            if e.blob_hash.is_some() {
                // It was committed before this write started: the writers' view falls back to that version.
                let mut e = e;
                e.committed = true;
                if let Ok(Some(n)) = self.archive.blobs.size(e.blob_hash.as_deref().unwrap_or_default()) {
                    e.size = n;
                }
                let _ = self.cat.lock().update_ingest_entry(&e);
                self.state.lock().insert(e);
                return;
            }
        }
        if let Err(e) = self.cat.lock().remove_ingest_entry(id) {
            warn!("cannot remove an ingest entry: {e}");
        }
    }

    /// Takes the couple's import lock (`locks/couple-<id>.lock`, the lock of `Importer`) for a commit: shared by
    /// this daemon's commits of the couple, with the ingest session in its note, so an import started meanwhile is
    /// told which session holds the couple. `None` while an import of the couple (another process, or a source
    /// poller of this daemon) holds it.
    fn hold_couple(&self, couple: i64, session: i64) -> Result<Option<CoupleHold<'_>>> {
        let mut held = self.couple_locks.lock();
        if let Some((_, n)) = held.get_mut(&couple) {
            *n += 1;
            return Ok(Some(CoupleHold { dir: self, couple }));
        }
        let Some(mut lock) = self.cat.lock().try_lock_couple(couple)? else {
            return Ok(None);
        };
        lock.write_note(&session.to_string())?;
        held.insert(couple, (lock, 1));
        Ok(Some(CoupleHold { dir: self, couple }))
    }

    /// A commit that waited for its couple until the daemon stopped: it fails, naming the import that held it.
    fn give_up(&self, id: i64, s: &Arc<Mutex<Staged>>, couple: i64) {
        let Some(e) = self.state.lock().entries.get(&id).cloned() else { return };
        if s.lock().retired {
            return;
        }
        let rel = self.state.lock().rel_path(id);
        let label = self.label(couple, &rel);
        let holder = self.cat.lock().couple_lock_holder(couple).and_then(|n| n.parse().ok()).unwrap_or(0);
        let folder = self.cat.lock().couple_by_id(couple).map(|c| c.folder_name).unwrap_or_default();
        let err = Error::CoupleBusy { couple: folder, session: holder };
        let session = self.sessions.lock().get(&couple).copied();
        self.commit_failed(id, s, session, &Target { e, rel, label }, &err);
    }

    fn session_for(&self, couple: i64) -> Result<i64> {
        let mut sessions = self.sessions.lock();
        if let Some(s) = sessions.get(&couple) {
            return Ok(*s);
        }
        let cat = self.cat.lock();
        let folder = cat.couple_by_id(couple)?.folder_name;
        let label = format!("/ingest/{folder}");
        let id = cat.create_session(
            couple,
            None,
            None,
            DuplicateAction::Skip,
            &format!("ingest:{label}"),
            &[label.into_bytes()],
            None,
            false,
        )?;
        cat.set_session_status(id, SessionStatus::Copying, None)?;
        cat.start_run(id)?;
        sessions.insert(couple, id);
        Ok(id)
    }

    /// The path of an entry as sessions and logs name it: `/ingest/<couple folder>/<path below it>`.
    fn label(&self, couple: i64, rel: &[u8]) -> Vec<u8> {
        let folder = self.state.lock().couples.iter().find(|(_, c)| **c == couple).map(|(n, _)| n.clone());
        let mut label = b"/ingest/".to_vec();
        label.extend_from_slice(&folder.unwrap_or_default());
        label.push(b'/');
        label.extend_from_slice(rel);
        label
    }

    /// Verifies and catalogues a staged file (see `Importer::commit_file`); the same content written again over
    /// a committed path is a no-op. A commit that fails leaves nothing behind that looks committed: the file
    /// leaves the writers' view (so the next `rsync -a` or `cp` sends it again) and its staging file is removed,
    /// and the ingest session records it (a failed item, and the session's error, which `nightfox sessions` and
    /// `nightfox status` show).
    ///
    /// The commit holds the couple's import lock (see `hold_couple`); while an import of the couple runs it does
    /// nothing and answers [`Attempt::Busy`].
    fn commit(&self, id: i64, s: &Arc<Mutex<Staged>>) -> R<Attempt> {
        if s.lock().direct {
            self.refresh_direct(id);
        }
        let mut g = s.lock();
        if g.retired {
            return Ok(Attempt::Done);
        }
        let t = {
            let st = self.state.lock();
            let Some(e) = st.entries.get(&id).cloned() else { return Ok(Attempt::Done) };
            let rel = st.rel_path(id);
            drop(st);
            let label = self.label(e.couple_id, &rel);
            Target { e, rel, label }
        };
        let session = match self.session_for(t.e.couple_id) {
            Ok(sid) => sid,
            Err(err) => {
                drop(g);
                self.commit_failed(id, s, None, &t, &err);
                return Err(FsError::from(&err));
            }
        };
        let _hold = match self.hold_couple(t.e.couple_id, session) {
            Ok(Some(hold)) => hold,
            Ok(None) => return Ok(Attempt::Busy),
            Err(err) => {
                drop(g);
                self.commit_failed(id, s, Some(session), &t, &err);
                return Err(FsError::from(&err));
            }
        };
        let (hash, file_id, size) = match self.land(&mut g, session, &t) {
            Ok(landed) => landed,
            Err(err) => {
                drop(g);
                self.commit_failed(id, s, Some(session), &t, &err);
                return Err(FsError::from(&err));
            }
        };
        g.dirty = false;
        g.retired = true;
        let updated = {
            let mut st = self.state.lock();
            let Some(cur) = st.entries.get_mut(&id) else { return Ok(Attempt::Done) };
            cur.committed = true;
            cur.blob_hash = Some(hash);
            cur.file_id = file_id;
            cur.size = size;
            cur.clone()
        };
        if let Err(err) = self.cat.lock().update_ingest_entry(&updated) {
            // The file is catalogued; only the writers' view could not be saved (the next start drops the entry).
            warn!("committed {}, but cannot save the ingest entry: {err}", String::from_utf8_lossy(&t.label));
        }
        // Reads now come from the blob; the staging file is gone (landed or removed).
        drop(g);
        self.unstage(id, s);
        Ok(Attempt::Done)
    }

    /// The verification and cataloguing of [`IngestDir::commit`]: returns the hash, the catalogued file (none for
    /// content already there) and the size.
    fn land(&self, g: &mut Staged, session: i64, t: &Target) -> Result<(String, Option<i64>, u64)> {
        let size = g.file.metadata().map_err(|err| Error::io(&g.path, err))?.len();
        // The hash of what the writer gave: computed inline as the writes came in order, else from the staged
        // pages still in memory (before they reach the disk, so the hash from disk below checks the medium).
        // The checksums come with the inline hash; for writes out of order, from the commit's read from disk.
        let inline = if g.sequential && g.hashed == size {
            g.hasher.finalize()
        } else {
            crate::blobs::Digest { hash: crate::blobs::hash_in_memory(&g.path)?, sums: None }
        };
        g.file.sync_all().map_err(|err| Error::io(&g.path, err))?;
        // The same bytes as the version already committed here: nothing to catalogue.
        if t.e
            .blob_hash
            .as_deref()
            .is_some_and(|old| old == inline.hash && self.archive.blobs.contains(old).unwrap_or(false))
        {
            let _ = std::fs::remove_file(&g.path);
            return Ok((inline.hash, t.e.file_id, size));
        }
        let importer = Importer::new(&self.archive, &Quiet, Arc::clone(&self.cancel));
        let c = importer.commit_file(session, &t.rel, &t.label, &g.path, Some(&inline), t.e.mtime_ns)?;
        Ok((c.hash, c.file_id.or(t.e.file_id), size))
    }

    /// A commit did not go through: the file leaves the writers' view (unless a newer write of it is under way)
    /// and its staging file goes; the session gets a failed item and an error saying so.
    fn commit_failed(&self, id: i64, s: &Arc<Mutex<Staged>>, session: Option<i64>, t: &Target, err: &Error) {
        let label = String::from_utf8_lossy(&t.label).into_owned();
        warn!("commit of {label} failed: {err}; it is removed from the ingest folder, to be copied again");
        self.unstage(id, s);
        {
            let mut g = s.lock();
            g.retired = true;
            let _ = std::fs::remove_file(&g.path);
        }
        if !self.staged.lock().contains_key(&id) {
            self.state.lock().remove(id);
            if let Err(e) = self.cat.lock().remove_ingest_entry(id) {
                warn!("cannot remove an ingest entry: {e}");
            }
        }
        if let Some(session) = session {
            if let Err(db) = self.record_failure(session, t, err) {
                warn!("cannot record the failed commit of {label} in session {session}: {db}");
            }
        }
    }

    /// Fails the session's item of a commit that did not go through (adding one if the commit failed before it
    /// had one) and sets the session's error.
    fn record_failure(&self, session: i64, t: &Target, err: &Error) -> Result<()> {
        let mut cat = self.cat.lock();
        let item = match cat.unfinished_item_at(session, &t.label)? {
            Some(item) => item,
            None => {
                let new = NewItem {
                    path: t.label.clone(),
                    rel_path: t.rel.clone(),
                    size: t.e.size,
                    mtime_ns: t.e.mtime_ns,
                    state: ItemState::Pending,
                    sidecar_of: None,
                    error: None,
                };
                let iid = cat.add_item(session, &new, None)?;
                cat.item(iid)?.ok_or(Error::NoSuchSession(session))?
            }
        };
        cat.end_item(&item, ItemState::Failed, Some(&err.to_string()))?;
        let failed = cat.session(session)?.files_error;
        let msg = format!(
            "{failed} file(s) could not be committed and left /ingest (copy them again); last: {}: {err}",
            String::from_utf8_lossy(&t.label)
        );
        cat.set_session_error(session, Some(&msg))
    }

    /// chmod, chown, truncate, utimens.
    #[allow(clippy::too_many_arguments)]
    pub fn setattr(
        &self,
        ino: u64,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        mtime_ns: Option<i64>,
    ) -> R<Attr> {
        if ino == INGEST_ROOT_INO || ino & KIND_MASK == K_COUPLE {
            // The couple folders themselves: accept what `cp -a`/`rsync -a` set on them, keep nothing.
            return self.getattr(ino).ok_or(FsError::NotFound);
        }
        let id = (ino & !KIND_MASK) as i64;
        if let Some(sz) = size {
            let staged = self.staged.lock().get(&id).cloned();
            match staged {
                Some(s) => {
                    let mut g = s.lock();
                    if g.retired {
                        return Err(FsError::Busy);
                    }
                    g.file.set_len(sz).map_err(|e| FsError::from(&e))?;
                    if sz != g.hashed {
                        g.sequential = false;
                    }
                    g.dirty = true;
                }
                None => {
                    let cur = self.state.lock().entries.get(&id).map(|e| (e.is_dir, e.size));
                    match cur {
                        Some((false, cur_size)) if cur_size == sz => {}
                        Some((true, _)) => return Err(FsError::IsDir),
                        Some(_) => return Err(FsError::Perm),
                        None => return Err(FsError::NotFound),
                    }
                }
            }
        }
        if let Some(t) = mtime_ns {
            // A directly written file takes its mtime from its staging file (see `refresh_direct`).
            let staged = self.staged.lock().get(&id).cloned();
            if let Some(s) = staged {
                let g = s.lock();
                if g.direct && !g.retired {
                    let when = std::time::UNIX_EPOCH + std::time::Duration::from_nanos(t.max(0) as u64);
                    g.file.set_modified(when).map_err(|e| FsError::from(&e))?;
                }
            }
        }
        let updated = {
            let mut st = self.state.lock();
            let e = st.entries.get_mut(&id).ok_or(FsError::NotFound)?;
            if let Some(m) = mode {
                e.mode = m & 0o7777;
            }
            if let Some(u) = uid {
                e.uid = u;
            }
            if let Some(g) = gid {
                e.gid = g;
            }
            if let Some(sz) = size {
                e.size = sz;
            }
            if let Some(t) = mtime_ns {
                e.mtime_ns = t;
            }
            e.clone()
        };
        self.cat.lock().update_ingest_entry(&updated).map_err(|e| FsError::from(&e))?;
        Ok(self.entry_attr(&updated))
    }

    /// Removes a name. A file still being written is discarded; a committed one only leaves the writers' view
    /// (its content stays in the archive).
    pub fn unlink(&self, parent: u64, name: &[u8]) -> R<()> {
        let key = self.state.lock().dir_key(parent).ok_or(FsError::NotFound)?;
        let id = self.state.lock().child(key, name).ok_or(FsError::NotFound)?;
        let e = self.state.lock().entries.get(&id).cloned().ok_or(FsError::NotFound)?;
        if e.is_dir {
            return Err(FsError::IsDir);
        }
        self.drop_entry(id);
        Ok(())
    }

    fn drop_entry(&self, id: i64) {
        let staged = self.staged.lock().remove(&id);
        if let Some(s) = staged {
            let _ = std::fs::remove_file(&s.lock().path);
        }
        self.state.lock().remove(id);
        if let Err(e) = self.cat.lock().remove_ingest_entry(id) {
            warn!("cannot remove an ingest entry: {e}");
        }
    }

    pub fn rmdir(&self, parent: u64, name: &[u8]) -> R<()> {
        let key = self.state.lock().dir_key(parent).ok_or(FsError::NotFound)?;
        let st = self.state.lock();
        let id = st.child(key, name).ok_or(FsError::NotFound)?;
        let e = st.entries.get(&id).ok_or(FsError::NotFound)?;
        if !e.is_dir {
            return Err(FsError::NotDir);
        }
        if st.children.get(&(e.couple_id, id)).is_some_and(|c| !c.is_empty()) {
            return Err(FsError::NotEmpty);
        }
        drop(st);
        self.state.lock().remove(id);
        self.cat.lock().remove_ingest_entry(id).map_err(|e| FsError::from(&e))
    }

    /// Renames within one couple's ingest folder. A closed file renamed from a temp name to a final one commits.
    pub fn rename(&self, parent: u64, name: &[u8], newparent: u64, newname: &[u8], noreplace: bool) -> R<()> {
        Self::check_name(newname)?;
        let (from_key, to_key) = {
            let st = self.state.lock();
            (st.dir_key(parent).ok_or(FsError::NotFound)?, st.dir_key(newparent).ok_or(FsError::NotFound)?)
        };
        if from_key.0 != to_key.0 {
            return Err(FsError::CrossDevice);
        }
        let id = self.state.lock().child(from_key, name).ok_or(FsError::NotFound)?;
        let existing = self.state.lock().child(to_key, newname);
        if let Some(target) = existing {
            if target == id {
                return Ok(());
            }
            if noreplace {
                return Err(FsError::Exists);
            }
            let st = self.state.lock();
            let t = st.entries.get(&target).ok_or(FsError::NotFound)?;
            let src_dir = st.entries.get(&id).is_some_and(|e| e.is_dir);
            if t.is_dir && st.children.get(&(t.couple_id, target)).is_some_and(|c| !c.is_empty()) {
                return Err(FsError::NotEmpty);
            }
            if t.is_dir != src_dir {
                return Err(if t.is_dir { FsError::IsDir } else { FsError::NotDir });
            }
            drop(st);
            self.drop_entry(target);
        }
        // A directory cannot move below itself.
        if to_key.1 != 0 {
            let st = self.state.lock();
            let mut cur = Some(to_key.1);
            while let Some(c) = cur {
                if c == id {
                    return Err(FsError::Invalid);
                }
                cur = st.entries.get(&c).and_then(|e| e.parent_id);
            }
        }
        let updated = {
            let mut st = self.state.lock();
            let mut e = st.remove(id).ok_or(FsError::NotFound)?;
            e.parent_id = (to_key.1 != 0).then_some(to_key.1);
            e.name = newname.to_vec();
            st.insert(e.clone());
            e
        };
        self.cat.lock().update_ingest_entry(&updated).map_err(|e| FsError::from(&e))?;
        if !updated.is_dir && !is_temp_name(newname) && !is_litter(&self.state.lock().rel_path(id)) {
            let staged = self.staged.lock().get(&id).cloned();
            if let Some(s) = staged {
                let ready = {
                    let g = s.lock();
                    g.opens == 0 && g.dirty && !g.failed && !g.abandoned && !g.queued
                };
                if ready {
                    self.enqueue(id, &s);
                }
            }
        }
        Ok(())
    }
}

/// Ends an ingest session (at unmount, or at the next start after a crash): its counters from its items, the
/// error of any failed commit kept.
fn close_session(cat: &Catalog, id: i64) -> Result<()> {
    cat.recount_session(id)?;
    let error = cat.session(id)?.error;
    cat.set_session_status(id, SessionStatus::Completed, error.as_deref())
}

/// [`killed`], asked on a helper thread and waited for a short while. Reading `/proc/<pid>/stat` blocks while that
/// process is in the middle of an `execve`, and an exec closes the descriptors it inherited with O_CLOEXEC (a
/// process that forks while writing here, a file manager starting a helper), which flushes them here: waiting on
/// the read would deadlock the exec and this FUSE thread. No answer in time means alive (it is exec'ing).
fn killed_soon(pid: u32) -> bool {
    let (tx, rx) = std::sync::mpsc::channel();
    let asked = std::thread::Builder::new().name("nightfox-killed?".into()).spawn(move || {
        let _ = tx.send(killed(pid));
    });
    asked.is_ok() && rx.recv_timeout(std::time::Duration::from_millis(250)).unwrap_or(false)
}

/// True when the process closing a file is dying from a signal (`kill -9` of a writer, a crash): its flags carry
/// PF_EXITING and its exit code a signal. A process that exits normally and leaves its files to the kernel is not.
fn killed(pid: u32) -> bool {
    if pid == 0 {
        return false;
    }
    // The kernel closes a dying task's files synchronously, while the task is still there to look at.
    let Ok(pid) = i32::try_from(pid) else { return false };
    let Ok(stat) = procfs::process::Process::new(pid).and_then(|p| p.stat()) else { return false };
    // The exit code is set before the files are closed (Linux 3.5 and later; procfs reads it as None before).
    const PF_EXITING: u32 = 0x4;
    let exiting = matches!(stat.state, 'Z' | 'X' | 'x') || stat.flags & PF_EXITING != 0;
    exiting && stat.exit_code.unwrap_or(0) & 0x7f != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names() {
        assert!(is_temp_name(b".C0001.MP4.a1B2c3"));
        assert!(is_temp_name(b".C0001.MP4.abcdef"));
        assert!(is_temp_name(b"._C0001.MP4"));
        assert!(is_temp_name(b".DS_Store"));
        assert!(!is_temp_name(b"C0001.MP4"));
        assert!(!is_temp_name(b".hidden"));
        // Looks like a temp name: waits for a rename, and commits after TEMP_GRACE if none comes.
        assert!(is_temp_name(b".profile.backup"));
        assert!(is_litter(b"._x") && !is_litter(b".profile.backup"));
        assert!(is_litter(b"DCIM/Thumbs.db") && is_litter(b".Spotlight-V100/Store-V2/store.db"));
        assert!(!is_litter(b"PRIVATE/M4ROOT/CLIP/C0001.MP4"));
    }

    #[test]
    fn a_live_process_is_not_killed() {
        assert!(!killed(std::process::id()));
        assert!(!killed(0));
    }
}
