//! The fuser adapter: turns kernel requests into [`ArchiveFs`] calls and its answers into replies, and keeps what
//! only a kernel mount has: the open-file table (a descriptor per open, and one with O_DIRECT for streaming reads,
//! closed on release), kernel passthrough where the kernel and privileges allow it (probed at init, the copy path
//! with FOPEN_KEEP_CACHE otherwise; `/ingest` writes pass through to their staging files), listing snapshots (there
//! is no OPENDIR), TTLs from [`Cache`] and cached negative entries for the names file managers probe, kernel cache
//! invalidations from the core's change feed, the mount's read-ahead, stale-mount cleanup and the mount options.
//! Routing, permissions and EROFS are the core's; errors are answered with `FsError::errno`.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::File;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use fuser::{
    BackingId, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, InitFlags,
    KernelConfig, OpenFlags, ReplyAttr, ReplyData, ReplyDirectory, ReplyDirectoryPlus, ReplyEmpty, ReplyEntry,
    ReplyOpen, ReplyStatfs, ReplyXattr, Request,
};
use parking_lot::Mutex;
use tracing::{error, info, warn};

use crate::blobs::direct;
use crate::catalog::{ns_to_system_time, system_time_ns};
use crate::fs::ino::is_ingest_fh;
use crate::fs::{
    ArchiveFs, Attr, Cache, Caller, FsError, FsResult, Groups, Kind, Opened, RenameFlags, SetAttr, SetTime,
};

mod mount;
pub use mount::{clean_stale_mount, FuseMount};

/// Content never changes: the kernel may cache attributes and entries for a long time.
const TTL: Duration = Duration::from_secs(24 * 3600);
/// How long probe names (`._*`, `.DS_Store`...) are cached as absent.
const NEGATIVE_TTL: Duration = Duration::from_secs(3600);
/// Entries of the ingest directory change while writers work: short TTLs, none for files being written.
const INGEST_TTL: Duration = Duration::from_secs(1);

fn ttl(c: Cache) -> Duration {
    match c {
        Cache::Forever => TTL,
        Cache::Short => INGEST_TTL,
        Cache::None => Duration::ZERO,
    }
}

#[derive(Clone, Copy, Debug, Default)]
pub struct MountOptions {
    pub allow_other: bool,
    pub no_passthrough: bool,
}

/// An open file of the read-only tree; `None` for the empty virtual file.
struct OpenFile {
    blob: Option<Arc<OpenBlob>>,
    /// A blob that is not a local file (a remote blob store), read through the store.
    stored: Option<Arc<dyn crate::blobs::BlobReader>>,
}

/// Reads of this size or more are streaming reads (the kernel's read-ahead asks in requests up to its window, 1 MiB
/// once `raise_read_ahead` raised it); the copy path reads them from the blob with O_DIRECT. Smaller ones (single
/// pages, scrubbing, random reads, every read while the window is the kernel's 128 KiB) go through the page cache,
/// where the blob's own read-ahead and read-around help them.
const DIRECT_READ_MIN: u32 = 256 << 10;

/// A blob opened for a FUSE open: the descriptor kept for passthrough or read through the page cache, and one with
/// O_DIRECT opened at the first streaming read. A streaming read through the page cache would cache every byte
/// twice (the mount's own page cache keeps it, FOPEN_KEEP_CACHE) and copy it once more; direct, the device writes
/// straight into the reply buffer.
struct OpenBlob {
    path: PathBuf,
    file: File,
    /// `None` inside when the filesystem refuses O_DIRECT.
    direct: std::sync::OnceLock<Option<File>>,
}

impl OpenBlob {
    fn new(path: PathBuf, file: File) -> Arc<OpenBlob> {
        Arc::new(OpenBlob { path, file, direct: std::sync::OnceLock::new() })
    }

    /// The descriptor a read of `size` bytes uses.
    fn for_read(&self, size: u32) -> &File {
        if size < DIRECT_READ_MIN {
            return &self.file;
        }
        let direct = self.direct.get_or_init(|| {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new().read(true).custom_flags(libc::O_DIRECT).open(&self.path).ok()
        });
        direct.as_ref().unwrap_or(&self.file)
    }
}

struct Backing {
    id: BackingId,
    opens: u32,
}

/// Kernel registrations of `/ingest` staging files by token, each with its count of handles; and the token
/// each ingest handle uses.
type IngestBacking = (HashMap<u64, (Arc<BackingId>, u32)>, HashMap<u64, u64>);

/// The fuser `Filesystem` over an [`ArchiveFs`].
pub struct NightfoxFs {
    fs: Arc<ArchiveFs>,
    files: Mutex<HashMap<u64, OpenFile>>,
    /// Listings handed out in parts, by directory: a read that continues one gets the same snapshot (there are no
    /// directory handles to keep one on, see `opendir`); dropped once its end is handed out. One per directory: a
    /// concurrent read from the start replaces it, which matters only if the directory changed in between.
    partial: Mutex<HashMap<u64, Arc<Listing>>>,
    backing: Mutex<HashMap<u64, Backing>>,
    /// Staging files of `/ingest` registered with the kernel, by their token (see
    /// `IngestDir::direct_write_target`), and the token of each ingest handle that uses one.
    ingest_backing: Mutex<IngestBacking>,
    next_fh: AtomicU64,
    want_passthrough: bool,
    passthrough: Arc<AtomicBool>,
}

/// `.` and `..` followed by a directory's entries, each with its offset (index + 1).
type Listing = Vec<(u64, Vec<u8>, Attr)>;

/// Entries read from the core for one part of a directory listed in pages (a reply holds fewer; the rest is read
/// again by the next part).
const READDIR_PAGE: usize = 128;

/// At most this many directories' partial listings are kept (readers that stop halfway leave theirs behind).
const MAX_PARTIAL: usize = 1024;

thread_local! {
    /// The copy path's read buffer of each FUSE worker thread, aligned for direct reads of the blob (4 MiB; a READ
    /// asks at most `max_pages`, 1 MiB).
    static READ_BUF: std::cell::RefCell<Option<direct::AlignedBuf>> = const { std::cell::RefCell::new(None) };
}

fn to_file_attr(a: &Attr) -> FileAttr {
    let mtime = ns_to_system_time(a.mtime_ns);
    FileAttr {
        ino: INodeNo(a.ino),
        size: a.size,
        blocks: a.blocks,
        atime: mtime,
        mtime,
        ctime: ns_to_system_time(a.ctime_ns),
        crtime: mtime,
        kind: match a.kind {
            Kind::Dir => FileType::Directory,
            Kind::File => FileType::RegularFile,
        },
        perm: a.perm,
        nlink: a.nlink,
        uid: a.uid,
        gid: a.gid,
        rdev: 0,
        blksize: a.blksize,
        flags: 0,
    }
}

fn negative_attr() -> FileAttr {
    let t = SystemTime::UNIX_EPOCH;
    FileAttr {
        ino: INodeNo(0),
        size: 0,
        blocks: 0,
        atime: t,
        mtime: t,
        ctime: t,
        crtime: t,
        kind: FileType::RegularFile,
        perm: 0,
        nlink: 0,
        uid: 0,
        gid: 0,
        rdev: 0,
        blksize: 4096,
        flags: 0,
    }
}

fn errno(e: FsError) -> Errno {
    Errno::from_i32(e.errno())
}

fn done(reply: ReplyEmpty, r: FsResult<()>) {
    match r {
        Ok(()) => reply.ok(),
        Err(e) => reply.error(errno(e)),
    }
}

fn attr(reply: ReplyAttr, r: FsResult<(Attr, Cache)>) {
    match r {
        Ok((a, c)) => reply.attr(&ttl(c), &to_file_attr(&a)),
        Err(e) => reply.error(errno(e)),
    }
}

fn entry(reply: ReplyEntry, r: FsResult<(Attr, Cache)>) {
    match r {
        Ok((a, c)) => reply.entry(&ttl(c), &to_file_attr(&a), Generation(0)),
        Err(e) => reply.error(errno(e)),
    }
}

fn caller(req: &Request) -> Caller {
    Caller { uid: req.uid(), gid: req.gid(), groups: Groups::FromPid(req.pid()) }
}

fn set_time(t: fuser::TimeOrNow) -> SetTime {
    match t {
        fuser::TimeOrNow::SpecificTime(t) => SetTime::At(system_time_ns(t)),
        fuser::TimeOrNow::Now => SetTime::Now,
    }
}

impl NightfoxFs {
    pub fn new(fs: Arc<ArchiveFs>, opts: MountOptions) -> Self {
        NightfoxFs {
            fs,
            files: Mutex::new(HashMap::new()),
            partial: Mutex::new(HashMap::new()),
            backing: Mutex::new(HashMap::new()),
            ingest_backing: Mutex::new((HashMap::new(), HashMap::new())),
            next_fh: AtomicU64::new(1),
            want_passthrough: !opts.no_passthrough,
            passthrough: Arc::new(AtomicBool::new(false)),
        }
    }

    /// How an ingest handle is opened when passthrough is on: a write handle gets its staging file as the
    /// kernel's backing file (the writer's bytes go straight to disk, see `IngestDir::direct_write_target`),
    /// registered once per staging file however many handles share it; a read handle of a file that has writers
    /// with a backing file shares it (the kernel wants every open of such an inode to). Anything else is served
    /// by this daemon uncached (FOPEN_DIRECT_IO), which the kernel allows beside passthrough opens.
    /// `Ok`: answer with passthrough on this backing id; `Err`: answer a plain open with these flags.
    fn open_ingest(
        &self,
        fh: u64,
        write: bool,
        open_backing: impl FnOnce(&File) -> std::io::Result<BackingId>,
    ) -> std::result::Result<Arc<BackingId>, FopenFlags> {
        if !self.passthrough.load(Ordering::Relaxed) {
            return Err(FopenFlags::empty());
        }
        if write {
            let mut guard = self.ingest_backing.lock();
            let (by_token, tokens) = &mut *guard;
            if let Some((token, file)) = self.fs.direct_write_target(fh) {
                if let std::collections::hash_map::Entry::Vacant(slot) = by_token.entry(token) {
                    match open_backing(&file) {
                        Ok(id) => {
                            slot.insert((Arc::new(id), 0));
                        }
                        Err(e) => warn!("passthrough of an ingest file refused ({e}); writing through the daemon"),
                    }
                }
                if let Some((id, opens)) = by_token.get_mut(&token) {
                    *opens += 1;
                    tokens.insert(fh, token);
                    return Ok(Arc::clone(id));
                }
            }
        } else if let Some(token) = self.fs.direct_token(fh) {
            let mut guard = self.ingest_backing.lock();
            let (by_token, tokens) = &mut *guard;
            if let Some((id, opens)) = by_token.get_mut(&token) {
                *opens += 1;
                tokens.insert(fh, token);
                return Ok(Arc::clone(id));
            }
        }
        Err(FopenFlags::FOPEN_DIRECT_IO)
    }

    fn release_ingest(&self, fh: u64) {
        let mut guard = self.ingest_backing.lock();
        let (by_token, tokens) = &mut *guard;
        if let Some(token) = tokens.remove(&fh) {
            if let Some((_, opens)) = by_token.get_mut(&token) {
                *opens = opens.saturating_sub(1);
                if *opens == 0 {
                    by_token.remove(&token);
                }
            }
        }
    }

    /// True once the kernel accepted passthrough at init.
    pub fn passthrough_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.passthrough)
    }

    fn fh(&self) -> u64 {
        self.next_fh.fetch_add(1, Ordering::Relaxed)
    }

    fn listing(&self, req: &Request, ino: u64) -> std::result::Result<Listing, FsError> {
        let entries = self.fs.readdir(&caller(req), ino)?;
        let (me, parent) = self.dots(ino)?;
        let mut out = Vec::with_capacity(entries.len() + 2);
        out.push((1, b".".to_vec(), me));
        out.push((2, b"..".to_vec(), parent));
        for (i, e) in entries.into_iter().enumerate() {
            out.push((i as u64 + 3, e.name, e.attr));
        }
        Ok(out)
    }

    /// The attributes of a directory and of its parent (`.` and `..`).
    fn dots(&self, ino: u64) -> std::result::Result<(Attr, Attr), FsError> {
        let (me, _) = self.fs.getattr(ino)?;
        let parent = self.fs.parent(ino).and_then(|p| self.fs.getattr(p).ok()).map(|(a, _)| a).unwrap_or(me);
        Ok((me, parent))
    }

    /// A part of a directory listed in pages (`.by-hash`) from `offset` on: `.` and `..` at 1 and 2, then one
    /// page of entries whose offsets are their cookies shifted past those two. Nothing is kept between reads.
    fn page_at(&self, ino: u64, offset: u64) -> std::result::Result<Listing, Errno> {
        let mut out = Vec::new();
        if offset < 2 {
            let (me, parent) = self.dots(ino).map_err(errno)?;
            if offset == 0 {
                out.push((1, b".".to_vec(), me));
            }
            out.push((2, b"..".to_vec(), parent));
        }
        let page = self.fs.readdir_page(ino, offset.saturating_sub(2), READDIR_PAGE).map_err(errno)?;
        out.extend(page.into_iter().map(|(cookie, e)| (cookie + 2, e.name, e.attr)));
        Ok(out)
    }

    /// The listing a read at `offset` comes from: a fresh one at the start of the directory, else the one the
    /// earlier parts of this read came from. A directory of `/ingest` needs read permission (see `permit`).
    fn listing_at(&self, req: &Request, ino: u64, offset: u64) -> std::result::Result<Arc<Listing>, Errno> {
        if crate::fs::owns_ingest(ino) {
            self.fs.permit(ino, &caller(req), crate::fs::MAY_READ).map_err(errno)?;
        }
        if offset > 0 {
            if let Some(l) = self.partial.lock().get(&ino) {
                return Ok(Arc::clone(l));
            }
        }
        self.listing(req, ino).map(Arc::new).map_err(errno)
    }

    /// What a read at `offset` serves: a listing, how many of its entries the earlier parts handed out, and
    /// whether it is kept between parts (a whole listing, see [`listing_read`](Self::listing_read)) or read again
    /// for each (a directory listed in pages).
    fn part_at(&self, req: &Request, ino: u64, offset: u64) -> std::result::Result<(Arc<Listing>, usize, bool), Errno> {
        if self.fs.lists_in_pages(ino) {
            return self.page_at(ino, offset).map(|p| (Arc::new(p), 0, false));
        }
        self.listing_at(req, ino, offset).map(|l| (l, offset as usize, true))
    }

    /// Keeps a listing whose end was not handed out yet for the next part of the read; forgets it once it was.
    fn listing_read(&self, ino: u64, list: &Arc<Listing>, to_end: bool) {
        let mut p = self.partial.lock();
        if to_end {
            if p.get(&ino).is_some_and(|cur| Arc::ptr_eq(cur, list)) {
                p.remove(&ino);
            }
        } else {
            if p.len() >= MAX_PARTIAL {
                p.clear();
            }
            p.insert(ino, Arc::clone(list));
        }
    }

    fn entry_ttl(&self, a: &Attr) -> Duration {
        ttl(self.fs.cache_of(a.ino))
    }
}

impl Filesystem for NightfoxFs {
    fn init(&mut self, req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        let _ = config.add_capabilities(InitFlags::FUSE_DO_READDIRPLUS | InitFlags::FUSE_READDIRPLUS_AUTO);
        let _ = config.add_capabilities(InitFlags::FUSE_PARALLEL_DIROPS);
        // O_TRUNC arrives with open() instead of as a separate truncate (the ingest directory needs it).
        let _ = config.add_capabilities(InitFlags::FUSE_ATOMIC_O_TRUNC);
        // No FUSE_POSIX_ACL: the tree has no ACLs and says so (EOPNOTSUPP, see `getxattr`). With the flag the kernel
        // caches "no ACL" per inode, but asks again for every inode it instantiates: one round trip per entry of a
        // cold `ls -l`, where EOPNOTSUPP makes `ls` stop asking after the first.
        let _ = config.set_max_background(64);
        let _ = config.set_max_write(1 << 20);
        let root = req.uid() == 0 || rustix::process::geteuid().is_root();
        if self.want_passthrough
            && root
            && config.add_capabilities(InitFlags::FUSE_PASSTHROUGH).is_ok()
            && config.set_max_stack_depth(1).is_ok()
        {
            self.passthrough.store(true, Ordering::Relaxed);
        }
        info!(passthrough = self.passthrough.load(Ordering::Relaxed), "mounted");
        Ok(())
    }

    fn lookup(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let name = name.as_bytes();
        match self.fs.lookup(&caller(req), parent.0, name) {
            Ok((a, c)) => reply.entry(&ttl(c), &to_file_attr(&a), Generation(0)),
            Err(FsError::NotFound) if self.fs.absent_for_long(parent.0, name) => {
                reply.entry(&NEGATIVE_TTL, &negative_attr(), Generation(0))
            }
            Err(e) => reply.error(errno(e)),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        attr(reply, self.fs.getattr(ino.0));
    }

    fn open(&self, req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let blob = match self.fs.open(&caller(req), ino.0, flags.0) {
            Ok(Opened::Ingest(fh)) => {
                let write = flags.0 & libc::O_ACCMODE != libc::O_RDONLY;
                return match self.open_ingest(fh, write, |f| reply.open_backing(f)) {
                    Ok(id) => reply.opened_passthrough(FileHandle(fh), FopenFlags::empty(), &id),
                    Err(flags) => reply.opened(FileHandle(fh), flags),
                };
            }
            Ok(Opened::Empty) => {
                let fh = self.fh();
                self.files.lock().insert(fh, OpenFile { blob: None, stored: None });
                return reply.opened(FileHandle(fh), FopenFlags::FOPEN_KEEP_CACHE);
            }
            Ok(Opened::Stored(r)) => {
                let fh = self.fh();
                self.files.lock().insert(fh, OpenFile { blob: None, stored: Some(r) });
                return reply.opened(FileHandle(fh), FopenFlags::FOPEN_KEEP_CACHE);
            }
            Ok(Opened::Blob { path, file }) => OpenBlob::new(path, file),
            Err(e) => return reply.error(errno(e)),
        };
        let fh = self.fh();
        if self.passthrough.load(Ordering::Relaxed) {
            let mut backing = self.backing.lock();
            if let Some(b) = backing.get_mut(&ino.0) {
                b.opens += 1;
                reply.opened_passthrough(FileHandle(fh), FopenFlags::empty(), &b.id);
                self.files.lock().insert(fh, OpenFile { blob: Some(blob), stored: None });
                return;
            }
            match reply.open_backing(&blob.file) {
                Ok(id) => {
                    reply.opened_passthrough(FileHandle(fh), FopenFlags::empty(), &id);
                    backing.insert(ino.0, Backing { id, opens: 1 });
                    self.files.lock().insert(fh, OpenFile { blob: Some(blob), stored: None });
                    return;
                }
                Err(e) => {
                    warn!("passthrough unavailable ({e}); using the copy path");
                    self.passthrough.store(false, Ordering::Relaxed);
                }
            }
        }
        self.files.lock().insert(fh, OpenFile { blob: Some(blob), stored: None });
        reply.opened(FileHandle(fh), FopenFlags::FOPEN_KEEP_CACHE);
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<fuser::LockOwner>,
        reply: ReplyData,
    ) {
        if is_ingest_fh(fh.0) {
            return match self.fs.read(fh.0, offset, size) {
                Ok(d) => reply.data(&d),
                Err(e) => reply.error(errno(e)),
            };
        }
        let (blob, stored) = match self.files.lock().get(&fh.0) {
            Some(OpenFile { blob, stored }) => (blob.clone(), stored.clone()),
            None => return reply.error(Errno::EBADF),
        };
        if let Err(e) = self.fs.readable(ino.0) {
            return reply.error(errno(e));
        }
        let blob = match (blob, stored) {
            (Some(b), _) => b,
            (None, Some(r)) => {
                let mut buf = vec![0u8; size as usize];
                return match r.read_at(&mut buf, offset) {
                    Ok(n) => reply.data(&buf[..n]),
                    Err(e) => {
                        error!("read of inode {} failed: {e}", ino.0);
                        reply.error(Errno::EIO)
                    }
                };
            }
            (None, None) => return reply.data(&[]),
        };
        READ_BUF.with_borrow_mut(|slot| {
            let aligned = slot.get_or_insert_with(direct::take_buf);
            let mut big = Vec::new();
            let buf = match aligned.get_mut(..size as usize) {
                Some(b) => b,
                None => {
                    big.resize(size as usize, 0);
                    &mut big[..]
                }
            };
            // The kernel's reads of a cached file are page-aligned; what a direct read refuses (EINVAL: an unaligned
            // offset or length, say from a client's own O_DIRECT read) is read again through the page cache.
            let file = blob.for_read(size);
            let r = match crate::fs::read_full(file, buf, offset) {
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) && !std::ptr::eq(file, &blob.file) => {
                    crate::fs::read_full(&blob.file, buf, offset)
                }
                r => r,
            };
            match r {
                Ok(n) => reply.data(&buf[..n]),
                Err(e) => {
                    error!("read of inode {} failed: {e}", ino.0);
                    reply.error(Errno::EIO)
                }
            }
        })
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: fuser::WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<fuser::LockOwner>,
        reply: fuser::ReplyWrite,
    ) {
        self.fs.write(fh.0, offset, data, |r| match r {
            Ok(n) => reply.written(n),
            Err(e) => reply.error(errno(e)),
        });
    }

    fn flush(&self, req: &Request, _ino: INodeNo, fh: FileHandle, _lock_owner: fuser::LockOwner, reply: ReplyEmpty) {
        done(reply, self.fs.flush(fh.0, req.pid()));
    }

    fn fsync(&self, _req: &Request, _ino: INodeNo, fh: FileHandle, _datasync: bool, reply: ReplyEmpty) {
        done(reply, self.fs.fsync(fh.0));
    }

    fn release(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<fuser::LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        if is_ingest_fh(fh.0) {
            self.fs.release(fh.0);
            self.release_ingest(fh.0);
            return reply.ok();
        }
        if self.files.lock().remove(&fh.0).is_some() {
            let mut backing = self.backing.lock();
            if let Some(b) = backing.get_mut(&ino.0) {
                b.opens -= 1;
                if b.opens == 0 {
                    backing.remove(&ino.0);
                }
            }
        }
        reply.ok();
    }

    /// Not implemented, on purpose: the kernel then stops sending OPENDIR and RELEASEDIR (two round trips per
    /// directory of a walk) and keeps every directory's listing in its cache (`FOPEN_CACHE_DIR |
    /// FOPEN_KEEP_CACHE`). A listing changes only by new imports (the change feed invalidates the parent), by
    /// operations on `/ingest` made through this mount (the kernel drops the cached listing itself) and by the
    /// ingest directory's own removals and new couples (also in the change feed).
    fn opendir(&self, _req: &Request, _ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        reply.error(Errno::ENOSYS);
    }

    fn readdir(&self, req: &Request, ino: INodeNo, _fh: FileHandle, offset: u64, mut reply: ReplyDirectory) {
        let (list, skip, kept) = match self.part_at(req, ino.0, offset) {
            Ok(p) => p,
            Err(e) => return reply.error(e),
        };
        let mut to_end = true;
        for (off, name, attr) in list.iter().skip(skip) {
            let kind = if attr.kind == Kind::Dir { FileType::Directory } else { FileType::RegularFile };
            if reply.add(INodeNo(attr.ino), *off, kind, OsStr::from_bytes(name)) {
                to_end = false;
                break;
            }
        }
        if kept {
            self.listing_read(ino.0, &list, to_end);
        }
        reply.ok();
    }

    fn readdirplus(&self, req: &Request, ino: INodeNo, _fh: FileHandle, offset: u64, mut reply: ReplyDirectoryPlus) {
        let (list, skip, kept) = match self.part_at(req, ino.0, offset) {
            Ok(p) => p,
            Err(e) => return reply.error(e),
        };
        let mut to_end = true;
        for (off, name, attr) in list.iter().skip(skip) {
            let ttl = self.entry_ttl(attr);
            if reply.add(INodeNo(attr.ino), *off, OsStr::from_bytes(name), &ttl, &to_file_attr(attr), Generation(0)) {
                to_end = false;
                break;
            }
        }
        if kept {
            self.listing_read(ino.0, &list, to_end);
        }
        reply.ok();
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        match self.fs.statfs() {
            Ok(s) => reply.statfs(s.blocks, s.bfree, s.bavail, s.files, s.ffree, s.bsize, s.namelen, s.frsize),
            Err(e) => reply.error(errno(e)),
        }
    }

    /// Outside the `user.` namespace: EOPNOTSUPP, what a filesystem without that namespace answers; `ls -l` then
    /// stops asking for security labels on this device (it remembers EOPNOTSUPP per device), instead of one round
    /// trip per entry.
    fn getxattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        match self.fs.getxattr(ino.0, name.as_bytes()) {
            Ok(v) if size == 0 => reply.size(v.len() as u32),
            Ok(v) if v.len() > size as usize => reply.error(Errno::ERANGE),
            Ok(v) => reply.data(&v),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn listxattr(&self, _req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        let mut buf = Vec::new();
        for n in self.fs.listxattr(ino.0) {
            buf.extend_from_slice(n.as_bytes());
            buf.push(0);
        }
        if size == 0 {
            reply.size(buf.len() as u32)
        } else if buf.len() > size as usize {
            reply.error(Errno::ERANGE)
        } else {
            reply.data(&buf)
        }
    }

    fn access(&self, req: &Request, ino: INodeNo, mask: fuser::AccessFlags, reply: ReplyEmpty) {
        done(reply, self.fs.access(&caller(req), ino.0, (mask.bits() & 0o7) as u16));
    }

    fn setattr(
        &self,
        req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<fuser::TimeOrNow>,
        mtime: Option<fuser::TimeOrNow>,
        _ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let change = SetAttr { mode, uid, gid, size, mtime: mtime.map(set_time), by_handle: fh.is_some() };
        attr(reply, self.fs.setattr(&caller(req), ino.0, &change));
    }
    fn mknod(&self, _r: &Request, p: INodeNo, _n: &OsStr, _m: u32, _u: u32, _d: u32, reply: ReplyEntry) {
        reply.error(errno(self.fs.special_file(p.0)));
    }
    fn mkdir(&self, req: &Request, p: INodeNo, n: &OsStr, mode: u32, umask: u32, reply: ReplyEntry) {
        entry(reply, self.fs.mkdir(&caller(req), p.0, n.as_bytes(), mode & !umask));
    }
    fn unlink(&self, r: &Request, p: INodeNo, n: &OsStr, reply: ReplyEmpty) {
        done(reply, self.fs.unlink(&caller(r), p.0, n.as_bytes()));
    }
    fn rmdir(&self, r: &Request, p: INodeNo, n: &OsStr, reply: ReplyEmpty) {
        done(reply, self.fs.rmdir(&caller(r), p.0, n.as_bytes()));
    }
    fn symlink(&self, _r: &Request, p: INodeNo, _n: &OsStr, _t: &Path, reply: ReplyEntry) {
        reply.error(errno(self.fs.special_file(p.0)));
    }
    fn rename(
        &self,
        r: &Request,
        p: INodeNo,
        n: &OsStr,
        np: INodeNo,
        nn: &OsStr,
        flags: fuser::RenameFlags,
        reply: ReplyEmpty,
    ) {
        let flags = RenameFlags {
            noreplace: flags.bits() & libc::RENAME_NOREPLACE != 0,
            exchange: flags.bits() & libc::RENAME_EXCHANGE != 0,
        };
        done(reply, self.fs.rename(&caller(r), p.0, n.as_bytes(), np.0, nn.as_bytes(), flags));
    }
    fn link(&self, _r: &Request, _i: INodeNo, np: INodeNo, _nn: &OsStr, reply: ReplyEntry) {
        reply.error(errno(self.fs.special_file(np.0)));
    }
    fn create(&self, req: &Request, p: INodeNo, n: &OsStr, mode: u32, umask: u32, _f: i32, reply: fuser::ReplyCreate) {
        match self.fs.create(&caller(req), p.0, n.as_bytes(), mode & !umask) {
            Ok((a, fh)) => match self.open_ingest(fh, true, |f| reply.open_backing(f)) {
                Ok(id) => reply.created_passthrough(
                    &Duration::ZERO,
                    &to_file_attr(&a),
                    Generation(0),
                    FileHandle(fh),
                    FopenFlags::empty(),
                    &id,
                ),
                Err(flags) => reply.created(&Duration::ZERO, &to_file_attr(&a), Generation(0), FileHandle(fh), flags),
            },
            Err(e) => reply.error(errno(e)),
        }
    }
    fn setxattr(&self, _r: &Request, i: INodeNo, _n: &OsStr, _v: &[u8], _f: i32, _p: u32, reply: ReplyEmpty) {
        done(reply, self.fs.setxattr(i.0));
    }
    fn removexattr(&self, _r: &Request, i: INodeNo, _n: &OsStr, reply: ReplyEmpty) {
        done(reply, self.fs.removexattr(i.0));
    }
}
