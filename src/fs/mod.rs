//! The filesystem every front end serves, free of any FUSE or NFS type: [`ArchiveFs`] composes the read-only tree
//! of catalogued footage (`tree`: `/<couple>/source/<type>/<camera>/<clip>`, `/.by-hash`) with the writable
//! `/ingest` (`ingest_dir`) over one inode namespace (`ino`). It decides routing, the root listing (the tree's,
//! with `/ingest` answered by the ingest directory), the permission checks (there is no `default_permissions`:
//! `/ingest` is checked here, as a local filesystem would), EROFS for every change outside `/ingest`, how long
//! answers may be cached (`Cache`), stateless reads by inode (`read_at`, for front ends without open/close) and a
//! change feed (new imports, healed or replaced content, changed `/ingest` listings) a front end turns into cache
//! invalidations. Front ends (`crate::frontends`) only translate requests and replies.
//!
//! Errors are [`FsError`]; their errno (`FsError::errno`) is POSIX and the same for every front end.

pub mod ingest_dir;
pub mod ino;
pub mod node;
pub mod tree;

use std::collections::VecDeque;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::Mutex;
use tracing::{error, warn};

use crate::archive::Archive;
use crate::blobs::local::FileBlob;
use crate::blobs::{BlobReader, BlobStore, ReadAtCursor};
use crate::error::Result;

pub use ingest_dir::IngestDir;
pub use ino::{owner, owns_ingest, Owner, INGEST_NAME, INGEST_ROOT_INO, ROOT_INO};
pub use node::{
    Attr, Cache, Caller, DirEntry, FsError, FsResult, FsStats, Groups, Kind, RenameFlags, SetAttr, SetTime, MAY_EXEC,
    MAY_READ, MAY_WRITE,
};
pub use tree::{
    file_at_tree_path, is_probe_name, locate_in_mount, rfc3339, tree_path, tree_paths_of_blob,
    xattr_namespace_supported, Vfs,
};

/// The longest the refresher waits between two looks at the change token (Postgres wakes it sooner on a
/// notification; SQLite has none, so this is its polling period).
const REFRESH: Duration = Duration::from_millis(250);

/// Open blobs `read_at` keeps.
const READERS: usize = 64;
/// A `read_at` of at least this many bytes is taken for a streaming read, and the next `READ_AHEAD` bytes of the
/// blob are asked for ahead.
const STREAMING_READ: usize = 256 << 10;
const READ_AHEAD: u64 = 8 << 20;

/// Something a front end may have cached that changed (see [`ArchiveFs::subscribe`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// A new entry in a directory the front end may have seen (cached as absent, say). Entries inside directories
    /// that are themselves new are not reported.
    NewEntry { parent: u64, name: Vec<u8> },
    /// An entry that went away or now leads elsewhere (a renamed, moved or removed name): a cached lookup of it
    /// is stale.
    EntryGone { parent: u64, name: Vec<u8> },
    /// A directory's listing (and attributes) changed.
    DirChanged(u64),
    /// A file's content changed (healed, replaced, found damaged): cached pages and attributes are stale.
    ContentChanged(u64),
}

/// What an open gave.
pub enum Opened {
    /// The empty virtual file (`/.metadata_never_index`).
    Empty,
    /// A clip of the read-only tree whose blob is a local file: the file, opened, and where it lives (for
    /// another descriptor: passthrough, O_DIRECT).
    Blob { path: PathBuf, file: File },
    /// A clip whose blob is not a local file (a remote blob store): read at offsets through the store.
    Stored(Arc<dyn BlobReader>),
    /// A handle of `/ingest` (see [`ino::is_ingest_fh`]); reads, writes and release go through the `ArchiveFs`.
    Ingest(u64),
}

/// Options of the filesystem core.
#[derive(Clone, Copy, Debug, Default)]
pub struct FsOptions {
    /// Check every block served against the blob's hash (`blobs::outboard`): a damaged block answers EIO and
    /// marks the blob damaged, the blob's other blocks still read. Reads then take the copy path (passthrough
    /// would let the kernel read the blob itself, unchecked).
    pub verify_reads: bool,
}

/// What verified reads need: where outboards live and a catalog to record damage in.
struct Verify {
    dir: PathBuf,
    catalog: Arc<Mutex<crate::catalog::Catalog>>,
}

/// A change subscriber.
type Subscriber = Box<dyn Fn(&Change) + Send + Sync>;

/// The filesystem of one archive, shared by every front end.
pub struct ArchiveFs {
    tree: Vfs,
    ingest: Arc<IngestDir>,
    root: PathBuf,
    blobs: Arc<dyn BlobStore>,
    /// Blobs opened by `read_at`, most recent last.
    readers: Mutex<VecDeque<(u64, Arc<dyn BlobReader>)>>,
    subscribers: Mutex<Vec<Subscriber>>,
    stop: Arc<AtomicBool>,
    refresher: Mutex<Option<JoinHandle<()>>>,
    verify: Option<Verify>,
}

/// What an open asks of the file: read, write or both by the access mode (O_TRUNC comes with a write mode).
pub fn open_mask(flags: i32) -> u16 {
    match flags & libc::O_ACCMODE {
        libc::O_RDONLY => MAY_READ,
        libc::O_WRONLY => MAY_WRITE,
        _ => MAY_READ | MAY_WRITE,
    }
}

fn system_now_ns() -> i64 {
    crate::catalog::system_time_ns(std::time::SystemTime::now())
}

/// A catalog read of the tree that failed: logged, and EIO (or ENOSPC...) to the caller, never "no such file".
fn catalog_error(ino: u64, e: &crate::error::Error) -> FsError {
    error!("reading the catalog for inode {ino:#x} failed: {e}");
    FsError::from(e)
}

/// Logs a blob found damaged and records it so (`verify`, `status` and `repair` see it).
fn record_damage(catalog: &Mutex<crate::catalog::Catalog>, hash: &str, problem: &str) {
    error!("blob {hash}: {problem}");
    if let Err(e) = catalog.lock().set_blob_unhealthy(hash, "damaged", problem) {
        error!("blob {hash}: the damage cannot be recorded: {e}");
    }
}

/// Reads `buf.len()` bytes at `offset`, fewer only at the end of the file.
pub use crate::blobs::staging::pread_full as read_full;

impl ArchiveFs {
    /// Builds the tree of an archive and loads the writers' view of `/ingest`; both belong to the calling user.
    pub fn new(archive: &Archive) -> Result<ArchiveFs> {
        ArchiveFs::with_options(archive, FsOptions::default())
    }

    /// [`new`](Self::new) with options (verified reads).
    pub fn with_options(archive: &Archive, options: FsOptions) -> Result<ArchiveFs> {
        let verify = match options.verify_reads {
            true => Some(Verify { dir: archive.outboards_dir(), catalog: Arc::new(Mutex::new(archive.catalog()?)) }),
            false => None,
        };
        let tree = Vfs::new(archive)?;
        let (uid, gid) = (rustix::process::getuid().as_raw(), rustix::process::getgid().as_raw());
        let ingest = Arc::new(IngestDir::load(archive, uid, gid)?);
        Ok(ArchiveFs {
            tree,
            ingest,
            root: archive.root.clone(),
            blobs: Arc::clone(&archive.blobs),
            readers: Mutex::new(VecDeque::new()),
            subscribers: Mutex::new(Vec::new()),
            stop: Arc::new(AtomicBool::new(false)),
            refresher: Mutex::new(None),
            verify,
        })
    }

    /// The archive's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Starts the background work: the commit threads of `/ingest` and the refresher that follows the catalog
    /// and hands every [`Change`] to the subscribers.
    pub fn start(self: &Arc<Self>) {
        self.ingest.start();
        let me = Arc::clone(self);
        let handle = std::thread::spawn(move || {
            while !me.stop.load(Ordering::Relaxed) {
                if let Err(e) = me.tree.wait_change(REFRESH) {
                    // A catalog that is down: the mount serves what it has and looks again after a pause.
                    warn!("waiting for catalog changes failed: {e}");
                    std::thread::sleep(REFRESH);
                }
                let changes = me.poll_changes();
                if changes.is_empty() {
                    continue;
                }
                let subs = me.subscribers.lock();
                for c in &changes {
                    for s in subs.iter() {
                        s(c);
                    }
                }
            }
        });
        *self.refresher.lock() = Some(handle);
    }

    /// Calls `f` with every change the refresher finds from now on (a front end that keeps caches drops them).
    pub fn subscribe(&self, f: impl Fn(&Change) + Send + Sync + 'static) {
        self.subscribers.lock().push(Box::new(f));
    }

    /// Picks up what changed since the last call: new imports (from the catalog), content healed, replaced or
    /// found damaged, and the listings of `/ingest` that changed. Cheap when nothing did. The refresher of
    /// [`start`](Self::start) calls it; a front end that runs no refresher may poll it itself.
    pub fn poll_changes(&self) -> Vec<Change> {
        let mut out = Vec::new();
        match self.tree.refresh() {
            Ok(new) if !new.is_empty() => {
                // The tree reports each entry in a directory that was there before (see `Vfs::refresh`).
                let mut parents = Vec::new();
                for (parent, name) in new {
                    if !parents.contains(&parent) {
                        parents.push(parent);
                    }
                    out.push(Change::NewEntry { parent, name });
                }
                out.extend(parents.into_iter().map(Change::DirChanged));
            }
            Ok(_) => {}
            Err(e) => warn!("catalog refresh failed: {e}"),
        }
        let (gone, dirs) = self.tree.take_gone();
        out.extend(gone.into_iter().map(|(parent, name)| Change::EntryGone { parent, name }));
        out.extend(dirs.into_iter().map(Change::DirChanged));
        for ino in self.tree.take_changed() {
            self.readers.lock().retain(|(i, _)| *i != ino);
            out.push(Change::ContentChanged(ino));
        }
        for ino in self.ingest.take_changed_dirs() {
            out.push(Change::DirChanged(ino));
        }
        out
    }

    /// Finishes the commits of `/ingest` (at the end of serving; see `IngestDir::shutdown`).
    pub fn shutdown(&self) {
        self.ingest.shutdown();
    }

    /// Stops the refresher and waits for it.
    pub fn close(&self) {
        self.stop.store(true, Ordering::Relaxed);
        let handle = self.refresher.lock().take();
        if let Some(h) = handle {
            let _ = h.join();
        }
    }

    // ---- attributes, lookups, listings ---------------------------------------------------------------------

    /// How long an answer about a node may be kept.
    pub fn cache_of(&self, ino: u64) -> Cache {
        match owner(ino) {
            Owner::Tree => Cache::Forever,
            Owner::Ingest if self.ingest.is_volatile(ino) => Cache::None,
            Owner::Ingest => Cache::Short,
        }
    }

    /// Attributes of any inode, and how long they may be kept.
    pub fn getattr(&self, ino: u64) -> FsResult<(Attr, Cache)> {
        let a = match owner(ino) {
            Owner::Ingest => self.ingest.getattr(ino),
            Owner::Tree => self.tree.getattr(ino).map_err(|e| catalog_error(ino, &e))?,
        };
        a.map(|a| (a, self.cache_of(ino))).ok_or(FsError::NotFound)
    }

    /// The parent of a directory (the root is its own parent).
    pub fn parent(&self, ino: u64) -> Option<u64> {
        match owner(ino) {
            Owner::Ingest => self.ingest.parent(ino),
            Owner::Tree => self.tree.parent(ino),
        }
    }

    /// A name in a directory. Looking up in `/ingest` needs search permission on the directory.
    pub fn lookup(&self, who: &Caller, parent: u64, name: &[u8]) -> FsResult<(Attr, Cache)> {
        if owns_ingest(parent) {
            self.permit(parent, who, MAY_EXEC)?;
            let a = self.ingest.lookup(parent, name).ok_or(FsError::NotFound)?;
            return Ok((a, self.cache_of(a.ino)));
        }
        match self.tree.lookup(parent, name).map_err(|e| catalog_error(parent, &e))? {
            Some(a) if a.ino == INGEST_ROOT_INO => self.getattr(INGEST_ROOT_INO),
            Some(a) => Ok((a, Cache::Forever)),
            None => Err(FsError::NotFound),
        }
    }

    /// Whether a name found absent may be cached as absent for long: the names file managers probe for
    /// (`._*`, `.DS_Store`...) in the read-only tree, where they can never appear.
    pub fn absent_for_long(&self, parent: u64, name: &[u8]) -> bool {
        !owns_ingest(parent) && is_probe_name(name)
    }

    /// A directory's entries with their attributes, sorted by name; the root's `ingest` entry carries the
    /// attributes of `/ingest`. A directory of `/ingest` needs read permission.
    pub fn readdir(&self, who: &Caller, ino: u64) -> FsResult<Vec<DirEntry>> {
        if owns_ingest(ino) {
            self.permit(ino, who, MAY_READ)?;
            return self.ingest.readdir(ino).ok_or(FsError::NotFound);
        }
        let mut v = self.tree.readdir(ino).map_err(|e| catalog_error(ino, &e))?.ok_or(FsError::NotFound)?;
        if ino == ROOT_INO {
            for e in v.iter_mut().filter(|e| e.attr.ino == INGEST_ROOT_INO) {
                if let Some(a) = self.ingest.getattr(INGEST_ROOT_INO) {
                    e.attr = a;
                }
            }
        }
        Ok(v)
    }

    /// Whether a directory is listed in pages ([`readdir_page`](Self::readdir_page)) rather than whole: `.by-hash`,
    /// which holds an entry per blob of the archive.
    pub fn lists_in_pages(&self, ino: u64) -> bool {
        ino == ino::BY_HASH_INO
    }

    /// Up to `max` entries of a directory listed in pages, after the entry whose cookie is `after` (0: from the
    /// start), each with its cookie (above 0, growing, stable while the archive grows: where the next page
    /// starts).
    pub fn readdir_page(&self, ino: u64, after: u64, max: usize) -> FsResult<Vec<(u64, DirEntry)>> {
        if !self.lists_in_pages(ino) {
            return Err(FsError::Invalid);
        }
        let page = self.tree.hash_page(after as i64, max).map_err(|e| catalog_error(ino, &e))?;
        Ok(page.into_iter().map(|(blob, e)| (blob as u64, e)).collect())
    }

    // ---- permissions ---------------------------------------------------------------------------------------

    /// The permission check the kernel leaves to the daemon (no `default_permissions`): `Ok` when `who` may do
    /// `mask` on `ino`, else `Access` (`NotFound` for a node that is gone). `/ingest` and `access(2)` ask it; the
    /// read-only tree needs no other check (0444/0555, and EROFS to every change).
    pub fn permit(&self, ino: u64, who: &Caller, mask: u16) -> FsResult<()> {
        let (a, _) = self.getattr(ino)?;
        if who.may(&a, mask) {
            Ok(())
        } else {
            Err(FsError::Access)
        }
    }

    /// What chmod, chown, truncate and utimens need in `/ingest`, as a local filesystem asks it: the owner (or
    /// root) changes the mode and the times, root the owner, the owner the group to one of its own; a truncate by
    /// path needs write permission, and so does setting the times to now for anyone but the owner.
    pub fn permit_setattr(&self, ino: u64, who: &Caller, change: &SetAttr) -> FsResult<()> {
        let (a, _) = self.getattr(ino)?;
        let eperm = |ok: bool| if ok { Ok(()) } else { Err(FsError::Perm) };
        if change.mode.is_some() {
            eperm(who.owns(&a))?;
        }
        if change.uid.is_some_and(|u| u != a.uid) {
            eperm(who.uid == 0)?;
        }
        if let Some(g) = change.gid.filter(|g| *g != a.gid) {
            eperm(who.uid == 0 || (who.uid == a.uid && who.in_group(g)))?;
        }
        if change.size.is_some() && !change.by_handle && !who.may(&a, MAY_WRITE) {
            return Err(FsError::Access);
        }
        match change.mtime {
            Some(SetTime::At(_)) => eperm(who.owns(&a))?,
            Some(SetTime::Now) if !who.owns(&a) && !who.may(&a, MAY_WRITE) => return Err(FsError::Access),
            _ => {}
        }
        Ok(())
    }

    /// `access(2)`: write access outside `/ingest` is EROFS; anything else is [`permit`](Self::permit).
    pub fn access(&self, who: &Caller, ino: u64, mask: u16) -> FsResult<()> {
        if mask & MAY_WRITE != 0 && !owns_ingest(ino) && self.getattr(ino).is_ok() {
            return Err(FsError::ReadOnly);
        }
        self.permit(ino, who, mask)
    }

    // ---- reads ---------------------------------------------------------------------------------------------

    /// Opens a file. Outside `/ingest` only reading is allowed (EROFS otherwise) and a blob that `verify` found
    /// damaged or missing, or that cannot be opened, is EIO.
    pub fn open(&self, who: &Caller, ino: u64, flags: i32) -> FsResult<Opened> {
        if owns_ingest(ino) {
            self.permit(ino, who, open_mask(flags))?;
            return self.ingest.open(ino, flags).map(Opened::Ingest);
        }
        let acc = flags & libc::O_ACCMODE;
        if acc != libc::O_RDONLY || flags & (libc::O_TRUNC | libc::O_APPEND) != 0 {
            return Err(FsError::ReadOnly);
        }
        let (attr, _) = self.getattr(ino)?;
        if attr.kind == Kind::Dir {
            return Err(FsError::IsDir);
        }
        let Some(fr) = self.tree.file_ref(ino).map_err(|e| catalog_error(ino, &e))? else { return Ok(Opened::Empty) };
        if let Some(v) = &self.verify {
            // Every block is checked: a blob found damaged still serves its good blocks.
            return self.open_verified(v, &fr.hash).map(Opened::Stored);
        }
        if self.tree.refuses(&fr.hash) {
            return Err(FsError::Io);
        }
        let Some(path) = self.blobs.local_path(&fr.hash) else {
            return match self.blobs.open(&fr.hash) {
                Ok(r) => Ok(Opened::Stored(Arc::from(r))),
                Err(e) => {
                    error!("blob {} cannot be opened ({}): {e}", fr.hash, self.blobs.describe());
                    Err(FsError::Io)
                }
            };
        };
        match File::open(&path) {
            Ok(file) => Ok(Opened::Blob { path, file }),
            Err(e) => {
                error!("blob {} cannot be opened ({path:?}): {e}", fr.hash);
                Err(FsError::Io)
            }
        }
    }

    /// A blob opened for verified reads, its outboard built first if there is none yet (one read of the blob).
    fn open_verified(&self, v: &Verify, hash: &str) -> FsResult<Arc<dyn BlobReader>> {
        let io = |what: &str, e: &crate::error::Error| {
            error!("blob {hash}: {what}: {e}");
            FsError::Io
        };
        let open = || self.blobs.open(hash);
        let path = crate::blobs::outboard::path_in(&v.dir, hash);
        let on_damage = || {
            let catalog = Arc::clone(&v.catalog);
            Box::new(move |d: &crate::blobs::outboard::Damage| {
                let problem =
                    format!("bytes {}..{} do not match (found by a verified read)", d.offset, d.offset + d.len);
                record_damage(&catalog, &d.hash, &problem);
            })
        };
        if path.exists() {
            let blob = open().map_err(|e| io("cannot be opened", &e))?;
            match crate::blobs::outboard::VerifiedReader::open(blob, hash, &path, on_damage()) {
                Ok(r) => return Ok(Arc::new(r)),
                // Derived data: one that does not fit (older format, torn) is built again.
                Err(e) => warn!("blob {hash}: outboard {} is rebuilt: {e}", path.display()),
            }
        }
        {
            let blob = open().map_err(|e| io("cannot be opened", &e))?;
            let built = crate::blobs::outboard::Outboard::of_reader(&mut ReadAtCursor::new(&*blob), &path)
                .map_err(|e| io("cannot be read to build its outboard", &e))?;
            let whole = match built.root() {
                Some(root) => root.to_hex().as_str() == hash,
                None => true, // one leaf: each read checks it against the hash itself
            };
            if !whole {
                record_damage(&v.catalog, hash, "its content does not match its hash (found building its outboard)");
                return Err(FsError::Io);
            }
            built.write(&path).map_err(|e| io("outboard cannot be written", &e))?;
        }
        let blob = open().map_err(|e| io("cannot be opened", &e))?;
        let r = crate::blobs::outboard::VerifiedReader::open(blob, hash, &path, on_damage())
            .map_err(|e| io("outboard does not fit", &e))?;
        Ok(Arc::new(r))
    }

    /// `Io` while the blob an inode of the tree reads is known damaged or missing (checked on every read; with
    /// verified reads each block is checked instead).
    pub fn readable(&self, ino: u64) -> FsResult<()> {
        if self.verify.is_none() && self.tree.refuses_inode(ino) {
            Err(FsError::Io)
        } else {
            Ok(())
        }
    }

    /// Reads a file of the read-only tree by inode, without an open (for stateless front ends such as NFS):
    /// up to `buf.len()` bytes at `offset`, fewer only at the end of the file (0 at or past it). The blobs opened
    /// are kept in a small cache. `/ingest` is not served this way (`NotSupported`): its commits follow the
    /// closes of its writers.
    pub fn read_at(&self, ino: u64, offset: u64, buf: &mut [u8]) -> FsResult<usize> {
        if owns_ingest(ino) {
            return Err(FsError::NotSupported);
        }
        self.readable(ino)?;
        let cached = self.readers.lock().iter().find(|(i, _)| *i == ino).map(|(_, f)| Arc::clone(f));
        let file = match cached {
            Some(f) => f,
            None => {
                let caller = Caller { uid: 0, gid: 0, groups: Groups::Known(Vec::new()) };
                let file: Arc<dyn BlobReader> = match self.open(&caller, ino, libc::O_RDONLY)? {
                    Opened::Blob { path, file } => Arc::new(FileBlob::new(path, file).map_err(|e| FsError::from(&e))?),
                    Opened::Stored(r) => r,
                    _ => return Ok(0),
                };
                let mut readers = self.readers.lock();
                if readers.len() >= READERS {
                    readers.pop_front();
                }
                readers.push_back((ino, Arc::clone(&file)));
                file
            }
        };
        let n = file.read_at(buf, offset).map_err(|e| {
            error!("read of inode {ino} failed: {e}");
            FsError::Io
        })?;
        // A client without open/close reads a clip as a run of large reads, one at a time: ask for the next
        // stretch now, so the disk works while this one crosses the network.
        if buf.len() >= STREAMING_READ && n == buf.len() {
            file.will_need(offset + n as u64, READ_AHEAD);
        }
        Ok(n)
    }

    /// Reads through a handle of `/ingest`.
    pub fn read(&self, fh: u64, offset: u64, size: u32) -> FsResult<Vec<u8>> {
        self.ingest.read(fh, offset, size)
    }

    // ---- writes: `/ingest` only ----------------------------------------------------------------------------

    /// Writes through a handle of `/ingest` (EROFS for any other handle). `reply` is called as soon as the bytes
    /// are in the staging file (see `IngestDir::write`).
    pub fn write(&self, fh: u64, offset: u64, data: &[u8], reply: impl FnOnce(FsResult<u32>)) {
        if !ino::is_ingest_fh(fh) {
            return reply(Err(FsError::ReadOnly));
        }
        self.ingest.write(fh, offset, data, reply)
    }

    /// A close of a descriptor (`pid`: the closing process, to notice a writer killed by a signal).
    pub fn flush(&self, fh: u64, pid: u32) -> FsResult<()> {
        if ino::is_ingest_fh(fh) {
            return self.ingest.flush(fh, pid);
        }
        Ok(())
    }

    pub fn fsync(&self, fh: u64) -> FsResult<()> {
        if ino::is_ingest_fh(fh) {
            return self.ingest.fsync(fh);
        }
        Ok(())
    }

    /// The last reference to an `/ingest` handle went away (a file written under its final name commits).
    pub fn release(&self, fh: u64) {
        if ino::is_ingest_fh(fh) {
            self.ingest.release(fh);
        }
    }

    /// See `IngestDir::direct_write_target` (FUSE passthrough of writes).
    pub fn direct_write_target(&self, fh: u64) -> Option<(u64, File)> {
        self.ingest.direct_write_target(fh)
    }

    /// See `IngestDir::direct_token`.
    pub fn direct_token(&self, fh: u64) -> Option<u64> {
        self.ingest.direct_token(fh)
    }

    /// A change of a directory: EROFS outside `/ingest`, else write and search permission on it.
    fn permit_change(&self, dir: u64, who: &Caller) -> FsResult<()> {
        if !owns_ingest(dir) {
            return Err(FsError::ReadOnly);
        }
        self.permit(dir, who, MAY_WRITE | MAY_EXEC)
    }

    /// Creates a file (`mode` with the umask applied) owned by the caller and opens it for writing.
    pub fn create(&self, who: &Caller, parent: u64, name: &[u8], mode: u32) -> FsResult<(Attr, u64)> {
        self.permit_change(parent, who)?;
        self.ingest.create(parent, name, mode, who.uid, who.gid)
    }

    pub fn mkdir(&self, who: &Caller, parent: u64, name: &[u8], mode: u32) -> FsResult<(Attr, Cache)> {
        self.permit_change(parent, who)?;
        self.ingest.mkdir(parent, name, mode, who.uid, who.gid).map(|a| (a, Cache::Short))
    }

    pub fn unlink(&self, who: &Caller, parent: u64, name: &[u8]) -> FsResult<()> {
        self.permit_change(parent, who)?;
        self.ingest.unlink(parent, name)
    }

    pub fn rmdir(&self, who: &Caller, parent: u64, name: &[u8]) -> FsResult<()> {
        self.permit_change(parent, who)?;
        self.ingest.rmdir(parent, name)
    }

    /// Renames within `/ingest` (EROFS within the tree, EXDEV between them; RENAME_EXCHANGE is not supported).
    pub fn rename(
        &self,
        who: &Caller,
        parent: u64,
        name: &[u8],
        newparent: u64,
        newname: &[u8],
        flags: RenameFlags,
    ) -> FsResult<()> {
        match (owns_ingest(parent), owns_ingest(newparent)) {
            (true, true) => {
                if flags.exchange {
                    return Err(FsError::Invalid);
                }
                self.permit_change(parent, who)?;
                self.permit_change(newparent, who)?;
                self.ingest.rename(parent, name, newparent, newname, flags.noreplace)
            }
            (false, false) => Err(FsError::ReadOnly),
            _ => Err(FsError::CrossDevice),
        }
    }

    /// chmod, chown, truncate, utimens: in `/ingest` after [`permit_setattr`](Self::permit_setattr); EROFS elsewhere.
    pub fn setattr(&self, who: &Caller, ino: u64, change: &SetAttr) -> FsResult<(Attr, Cache)> {
        if !owns_ingest(ino) {
            return Err(FsError::ReadOnly);
        }
        self.permit_setattr(ino, who, change)?;
        let mtime = change.mtime.map(|t| match t {
            SetTime::At(ns) => ns,
            SetTime::Now => system_now_ns(),
        });
        let a = self.ingest.setattr(ino, change.mode, change.uid, change.gid, change.size, mtime)?;
        Ok((a, self.cache_of(a.ino)))
    }

    /// mknod, symlink and hard links: not in `/ingest` (EPERM), EROFS elsewhere.
    pub fn special_file(&self, parent: u64) -> FsError {
        if owns_ingest(parent) {
            FsError::Perm
        } else {
            FsError::ReadOnly
        }
    }

    // ---- extended attributes and totals --------------------------------------------------------------------

    /// One extended attribute: `NotSupported` outside the `user.` namespace (see [`xattr_namespace_supported`]),
    /// `NoData` when the node does not have it (no node of `/ingest` has any).
    pub fn getxattr(&self, ino: u64, name: &[u8]) -> FsResult<Vec<u8>> {
        if !xattr_namespace_supported(name) {
            return Err(FsError::NotSupported);
        }
        if owns_ingest(ino) {
            return Err(FsError::NoData);
        }
        match self.tree.xattr(ino, name) {
            Ok(Some(v)) => Ok(v),
            Ok(None) => Err(FsError::NoData),
            Err(e) => Err(FsError::from(&e)),
        }
    }

    /// The extended attributes a node offers.
    pub fn listxattr(&self, ino: u64) -> Vec<&'static str> {
        if owns_ingest(ino) {
            return Vec::new();
        }
        self.tree.xattr_names(ino)
    }

    /// Setting an attribute: not supported in `/ingest`, EROFS elsewhere.
    pub fn setxattr(&self, ino: u64) -> FsResult<()> {
        Err(if owns_ingest(ino) { FsError::NotSupported } else { FsError::ReadOnly })
    }

    /// Removing an attribute: there is none in `/ingest`, EROFS elsewhere.
    pub fn removexattr(&self, ino: u64) -> FsResult<()> {
        Err(if owns_ingest(ino) { FsError::NoData } else { FsError::ReadOnly })
    }

    pub fn statfs(&self) -> FsResult<FsStats> {
        self.tree.statfs().map_err(|e| FsError::from(&e))
    }
}
