//! The thin fuser adapter: turns kernel requests into `vfs` calls and `vfs` answers into replies. It owns the
//! open-file table (a descriptor per open, and one with O_DIRECT for streaming reads, closed on release), kernel
//! passthrough where the kernel and privileges allow it (probed at init, copy path otherwise), EROFS for every
//! write, the permission checks of `/ingest`, cached negative entries for the names Finder and file managers probe,
//! errno mapping, stale-mount cleanup and unmounting on SIGINT/SIGTERM.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::File;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use fuser::{
    BackingId, Config, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, InitFlags,
    KernelConfig, MountOption, Notifier, OpenFlags, ReplyAttr, ReplyData, ReplyDirectory, ReplyDirectoryPlus,
    ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyXattr, Request, SessionACL,
};
use parking_lot::Mutex;
use tracing::{error, info, warn};

use crate::archive::Archive;
use crate::catalog::{ns_to_system_time, system_time_ns};
use crate::error::{Error, Result};
use crate::ingest_dir::{self, IngestDir, INGEST_ROOT_INO};
use crate::store::direct;
use crate::vfs::{self, Attr, Caller, Kind, Vfs, MAY_EXEC, MAY_READ, MAY_WRITE};

/// Content never changes: the kernel may cache attributes and entries for a long time.
const TTL: Duration = Duration::from_secs(24 * 3600);
/// How long probe names (`._*`, `.DS_Store`...) are cached as absent.
const NEGATIVE_TTL: Duration = Duration::from_secs(3600);
/// How often the catalog is polled for new imports.
const REFRESH: Duration = Duration::from_millis(250);

#[derive(Clone, Copy, Debug, Default)]
pub struct MountOptions {
    pub allow_other: bool,
    pub no_passthrough: bool,
}

/// An open file of the read-only tree; `None` for the empty virtual file.
struct OpenFile {
    blob: Option<Arc<OpenBlob>>,
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

/// The fuser `Filesystem` over a [`Vfs`] (the read-only tree) and an [`IngestDir`] (the writable `/ingest`).
pub struct NightfoxFs {
    vfs: Arc<Vfs>,
    ingest: Arc<IngestDir>,
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

/// At most this many directories' partial listings are kept (readers that stop halfway leave theirs behind).
const MAX_PARTIAL: usize = 1024;

thread_local! {
    /// The copy path's read buffer of each FUSE worker thread, aligned for direct reads of the blob (4 MiB; a READ
    /// asks at most `max_pages`, 1 MiB).
    static READ_BUF: std::cell::RefCell<Option<direct::AlignedBuf>> = const { std::cell::RefCell::new(None) };
}

/// Reads `buf.len()` bytes at `offset`, fewer only at the end of the file.
fn read_full(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    let mut n = 0usize;
    while n < buf.len() {
        match file.read_at(&mut buf[n..], offset + n as u64) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// File handles of the ingest directory come from its own range (see `IngestDir`).
fn ingest_fh(fh: u64) -> bool {
    fh >= 1 << 62
}

/// Entries of the ingest directory change while writers work: short TTLs, none for files being written.
const INGEST_TTL: Duration = Duration::from_secs(1);

fn ns(t: fuser::TimeOrNow) -> i64 {
    match t {
        fuser::TimeOrNow::SpecificTime(t) => system_time_ns(t),
        fuser::TimeOrNow::Now => system_time_ns(SystemTime::now()),
    }
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

fn errno(e: &Error) -> Errno {
    Errno::from_i32(e.errno())
}

/// What a SETATTR in `/ingest` asks to change, for its permission check (`NightfoxFs::permit_setattr`).
struct AttrChange {
    mode: bool,
    uid: Option<u32>,
    gid: Option<u32>,
    /// A truncate by path (one through a descriptor was checked when it was opened).
    size: bool,
    mtime: Option<fuser::TimeOrNow>,
}

fn caller(req: &Request) -> Caller {
    Caller { uid: req.uid(), gid: req.gid(), pid: req.pid() }
}

/// What an open asks of the file: read, write or both by the access mode (O_TRUNC comes with a write mode).
fn open_mask(flags: i32) -> u16 {
    match flags & libc::O_ACCMODE {
        libc::O_RDONLY => MAY_READ,
        libc::O_WRONLY => MAY_WRITE,
        _ => MAY_READ | MAY_WRITE,
    }
}

impl NightfoxFs {
    pub fn new(vfs: Arc<Vfs>, ingest: Arc<IngestDir>, opts: MountOptions) -> Self {
        NightfoxFs {
            vfs,
            ingest,
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
            if let Some((token, file)) = self.ingest.direct_write_target(fh) {
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
        } else if let Some(token) = self.ingest.direct_token(fh) {
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

    fn open_blob(&self, hash: &str) -> std::io::Result<Arc<OpenBlob>> {
        let path = self.vfs.blob_path(hash);
        match File::open(&path) {
            Ok(f) => Ok(OpenBlob::new(path, f)),
            Err(e) => {
                error!("blob {hash} cannot be opened ({path:?}): {e}");
                Err(e)
            }
        }
    }

    /// Attributes of any inode, and how long the kernel may keep them.
    fn attr(&self, ino: u64) -> Option<(Attr, Duration)> {
        if ingest_dir::owns(ino) {
            let ttl = if self.ingest.is_volatile(ino) { Duration::ZERO } else { INGEST_TTL };
            return self.ingest.getattr(ino).map(|a| (a, ttl));
        }
        self.vfs.getattr(ino).map(|a| (a, TTL))
    }

    fn parent_of(&self, ino: u64) -> Option<u64> {
        if ingest_dir::owns(ino) {
            self.ingest.parent(ino)
        } else {
            self.vfs.parent(ino)
        }
    }

    fn read_dir(&self, ino: u64) -> Option<Vec<vfs::DirEntry>> {
        if ingest_dir::owns(ino) {
            return self.ingest.readdir(ino);
        }
        let mut v = self.vfs.readdir(ino)?;
        if ino == vfs::ROOT_INO {
            // `/ingest` is answered by the ingest directory.
            for e in v.iter_mut().filter(|e| e.attr.ino == INGEST_ROOT_INO) {
                if let Some(a) = self.ingest.getattr(INGEST_ROOT_INO) {
                    e.attr = a;
                }
            }
        }
        Some(v)
    }

    fn listing(&self, ino: u64) -> Option<Listing> {
        let entries = self.read_dir(ino)?;
        let (me, _) = self.attr(ino)?;
        let parent = self.parent_of(ino).and_then(|p| self.attr(p)).map(|(a, _)| a).unwrap_or(me);
        let mut out = Vec::with_capacity(entries.len() + 2);
        out.push((1, b".".to_vec(), me));
        out.push((2, b"..".to_vec(), parent));
        for (i, e) in entries.into_iter().enumerate() {
            out.push((i as u64 + 3, e.name, e.attr));
        }
        Some(out)
    }

    /// The listing a read at `offset` comes from: a fresh one at the start of the directory, else the one the
    /// earlier parts of this read came from. A directory of `/ingest` needs read permission (see `permit`).
    fn listing_at(&self, req: &Request, ino: u64, offset: u64) -> std::result::Result<Arc<Listing>, Errno> {
        if ingest_dir::owns(ino) {
            self.permit(ino, &caller(req), MAY_READ)?;
        }
        if offset > 0 {
            if let Some(l) = self.partial.lock().get(&ino) {
                return Ok(Arc::clone(l));
            }
        }
        self.listing(ino).map(Arc::new).ok_or(Errno::ENOENT)
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

    /// The permission check the kernel leaves to the daemon (no `default_permissions`, see `mount_foreground`):
    /// `Ok` when `who` may do `mask` on `ino`, else EACCES (ENOENT for a node that is gone). `/ingest` and
    /// `access(2)` ask it; the read-only tree needs no other check (0444/0555, and EROFS to every write).
    fn permit(&self, ino: u64, who: &Caller, mask: u16) -> std::result::Result<(), Errno> {
        match self.attr(ino) {
            None => Err(Errno::ENOENT),
            Some((a, _)) if who.may(&a, mask) => Ok(()),
            Some(_) => Err(Errno::EACCES),
        }
    }

    /// What chmod, chown, truncate and utimens need in `/ingest`, as a local filesystem asks it: the owner (or root)
    /// changes the mode and the times, root the owner, the owner the group to one of its own; a truncate needs
    /// write permission, and so does setting the times to now for anyone but the owner.
    fn permit_setattr(&self, ino: u64, who: &Caller, change: AttrChange) -> std::result::Result<(), Errno> {
        let Some((a, _)) = self.attr(ino) else { return Err(Errno::ENOENT) };
        let eperm = |ok: bool| if ok { Ok(()) } else { Err(Errno::EPERM) };
        if change.mode {
            eperm(who.owns(&a))?;
        }
        if change.uid.is_some_and(|u| u != a.uid) {
            eperm(who.uid == 0)?;
        }
        if let Some(g) = change.gid.filter(|g| *g != a.gid) {
            eperm(who.uid == 0 || (who.uid == a.uid && who.in_group(g)))?;
        }
        if change.size && !who.may(&a, MAY_WRITE) {
            return Err(Errno::EACCES);
        }
        match change.mtime {
            Some(fuser::TimeOrNow::SpecificTime(_)) => eperm(who.owns(&a))?,
            Some(fuser::TimeOrNow::Now) if !who.owns(&a) && !who.may(&a, MAY_WRITE) => return Err(Errno::EACCES),
            _ => {}
        }
        Ok(())
    }

    fn entry_ttl(&self, a: &Attr) -> Duration {
        if ingest_dir::owns(a.ino) {
            if self.ingest.is_volatile(a.ino) {
                Duration::ZERO
            } else {
                INGEST_TTL
            }
        } else {
            TTL
        }
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
        // SAFETY: geteuid cannot fail.
        let root = req.uid() == 0 || unsafe { libc::geteuid() } == 0;
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
        if ingest_dir::owns(parent.0) {
            if let Err(e) = self.permit(parent.0, &caller(req), MAY_EXEC) {
                return reply.error(e);
            }
            return match self.ingest.lookup(parent.0, name) {
                Some(a) => reply.entry(&self.entry_ttl(&a), &to_file_attr(&a), Generation(0)),
                None => reply.error(Errno::ENOENT),
            };
        }
        match self.vfs.lookup(parent.0, name) {
            Some(a) if a.ino == INGEST_ROOT_INO => match self.ingest.getattr(INGEST_ROOT_INO) {
                Some(a) => reply.entry(&INGEST_TTL, &to_file_attr(&a), Generation(0)),
                None => reply.error(Errno::ENOENT),
            },
            Some(a) => reply.entry(&TTL, &to_file_attr(&a), Generation(0)),
            None if vfs::is_probe_name(name) => reply.entry(&NEGATIVE_TTL, &negative_attr(), Generation(0)),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.attr(ino.0) {
            Some((a, ttl)) => reply.attr(&ttl, &to_file_attr(&a)),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn open(&self, req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        if ingest_dir::owns(ino.0) {
            if let Err(e) = self.permit(ino.0, &caller(req), open_mask(flags.0)) {
                return reply.error(e);
            }
            let fh = match self.ingest.open(ino.0, flags.0) {
                Ok(fh) => fh,
                Err(e) => return reply.error(Errno::from_i32(e)),
            };
            let write = flags.0 & libc::O_ACCMODE != libc::O_RDONLY;
            return match self.open_ingest(fh, write, |f| reply.open_backing(f)) {
                Ok(id) => reply.opened_passthrough(FileHandle(fh), FopenFlags::empty(), &id),
                Err(flags) => reply.opened(FileHandle(fh), flags),
            };
        }
        let acc = flags.0 & libc::O_ACCMODE;
        if acc != libc::O_RDONLY || flags.0 & (libc::O_TRUNC | libc::O_APPEND) != 0 {
            return reply.error(Errno::EROFS);
        }
        let Some(attr) = self.vfs.getattr(ino.0) else { return reply.error(Errno::ENOENT) };
        if attr.kind == Kind::Dir {
            return reply.error(Errno::EISDIR);
        }
        let fh = self.fh();
        let Some(fr) = self.vfs.file_ref(ino.0) else {
            // The empty virtual file.
            self.files.lock().insert(fh, OpenFile { blob: None });
            return reply.opened(FileHandle(fh), FopenFlags::FOPEN_KEEP_CACHE);
        };
        if self.vfs.refuses(&fr.hash) {
            return reply.error(Errno::EIO);
        }
        let blob = match self.open_blob(&fr.hash) {
            Ok(b) => b,
            Err(_) => return reply.error(Errno::EIO),
        };
        if self.passthrough.load(Ordering::Relaxed) {
            let mut backing = self.backing.lock();
            if let Some(b) = backing.get_mut(&ino.0) {
                b.opens += 1;
                reply.opened_passthrough(FileHandle(fh), FopenFlags::empty(), &b.id);
                self.files.lock().insert(fh, OpenFile { blob: Some(blob) });
                return;
            }
            match reply.open_backing(&blob.file) {
                Ok(id) => {
                    reply.opened_passthrough(FileHandle(fh), FopenFlags::empty(), &id);
                    backing.insert(ino.0, Backing { id, opens: 1 });
                    self.files.lock().insert(fh, OpenFile { blob: Some(blob) });
                    return;
                }
                Err(e) => {
                    warn!("passthrough unavailable ({e}); using the copy path");
                    self.passthrough.store(false, Ordering::Relaxed);
                }
            }
        }
        self.files.lock().insert(fh, OpenFile { blob: Some(blob) });
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
        if ingest_fh(fh.0) {
            return match self.ingest.read(fh.0, offset, size) {
                Ok(d) => reply.data(&d),
                Err(e) => reply.error(Errno::from_i32(e)),
            };
        }
        let blob = match self.files.lock().get(&fh.0) {
            Some(OpenFile { blob: Some(b) }) => Arc::clone(b),
            Some(OpenFile { blob: None }) => return reply.data(&[]),
            None => return reply.error(Errno::EBADF),
        };
        if self.vfs.refuses_inode(ino.0) {
            return reply.error(Errno::EIO);
        }
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
            let r = match read_full(file, buf, offset) {
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) && !std::ptr::eq(file, &blob.file) => {
                    read_full(&blob.file, buf, offset)
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
        if !ingest_fh(fh.0) {
            return reply.error(Errno::EROFS);
        }
        self.ingest.write(fh.0, offset, data, |r| match r {
            Ok(n) => reply.written(n),
            Err(e) => reply.error(Errno::from_i32(e)),
        });
    }

    fn flush(&self, req: &Request, _ino: INodeNo, fh: FileHandle, _lock_owner: fuser::LockOwner, reply: ReplyEmpty) {
        if ingest_fh(fh.0) {
            return match self.ingest.flush(fh.0, req.pid()) {
                Ok(()) => reply.ok(),
                Err(e) => reply.error(Errno::from_i32(e)),
            };
        }
        reply.ok();
    }

    fn fsync(&self, _req: &Request, _ino: INodeNo, fh: FileHandle, _datasync: bool, reply: ReplyEmpty) {
        if ingest_fh(fh.0) {
            return match self.ingest.fsync(fh.0) {
                Ok(()) => reply.ok(),
                Err(e) => reply.error(Errno::from_i32(e)),
            };
        }
        reply.ok();
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
        if ingest_fh(fh.0) {
            self.ingest.release(fh.0);
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
    /// FOPEN_KEEP_CACHE`). A listing changes only by new imports (`announce` invalidates the parent), by
    /// operations on `/ingest` made through this mount (the kernel drops the cached listing itself) and by the
    /// ingest directory's own removals and new couples (`invalidate_ingest`).
    fn opendir(&self, _req: &Request, _ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        reply.error(Errno::ENOSYS);
    }

    fn readdir(&self, req: &Request, ino: INodeNo, _fh: FileHandle, offset: u64, mut reply: ReplyDirectory) {
        let list = match self.listing_at(req, ino.0, offset) {
            Ok(l) => l,
            Err(e) => return reply.error(e),
        };
        let mut to_end = true;
        for (off, name, attr) in list.iter().skip(offset as usize) {
            let kind = if attr.kind == Kind::Dir { FileType::Directory } else { FileType::RegularFile };
            if reply.add(INodeNo(attr.ino), *off, kind, OsStr::from_bytes(name)) {
                to_end = false;
                break;
            }
        }
        self.listing_read(ino.0, &list, to_end);
        reply.ok();
    }

    fn readdirplus(&self, req: &Request, ino: INodeNo, _fh: FileHandle, offset: u64, mut reply: ReplyDirectoryPlus) {
        let list = match self.listing_at(req, ino.0, offset) {
            Ok(l) => l,
            Err(e) => return reply.error(e),
        };
        let mut to_end = true;
        for (off, name, attr) in list.iter().skip(offset as usize) {
            let ttl = self.entry_ttl(attr);
            if reply.add(INodeNo(attr.ino), *off, OsStr::from_bytes(name), &ttl, &to_file_attr(attr), Generation(0)) {
                to_end = false;
                break;
            }
        }
        self.listing_read(ino.0, &list, to_end);
        reply.ok();
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        match self.vfs.statfs() {
            Ok(s) => reply.statfs(s.blocks, s.bfree, s.bavail, s.files, s.ffree, s.bsize, s.namelen, s.frsize),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn getxattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        if !vfs::xattr_namespace_supported(name.as_bytes()) {
            // What a filesystem without that namespace answers; `ls -l` then stops asking for security labels on
            // this device (it remembers EOPNOTSUPP per device), instead of one round trip per entry.
            return reply.error(Errno::from_i32(libc::EOPNOTSUPP));
        }
        if ingest_dir::owns(ino.0) {
            return reply.error(Errno::NO_XATTR);
        }
        match self.vfs.xattr(ino.0, name.as_bytes()) {
            Ok(Some(v)) if size == 0 => reply.size(v.len() as u32),
            Ok(Some(v)) if v.len() > size as usize => reply.error(Errno::ERANGE),
            Ok(Some(v)) => reply.data(&v),
            Ok(None) => reply.error(Errno::NO_XATTR),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn listxattr(&self, _req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        let mut buf = Vec::new();
        for n in self.vfs.xattr_names(ino.0) {
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
        if mask.bits() & libc::W_OK != 0 && !ingest_dir::owns(ino.0) && self.attr(ino.0).is_some() {
            return reply.error(Errno::EROFS);
        }
        match self.permit(ino.0, &caller(req), (mask.bits() & 0o7) as u16) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    // Outside `/ingest`, everything that would change the tree answers EROFS at once.
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
        if !ingest_dir::owns(ino.0) {
            return reply.error(Errno::EROFS);
        }
        // ftruncate on a descriptor open for writing needs no more permission than its open had.
        let change = AttrChange { mode: mode.is_some(), uid, gid, size: size.is_some() && fh.is_none(), mtime };
        if let Err(e) = self.permit_setattr(ino.0, &caller(req), change) {
            return reply.error(e);
        }
        match self.ingest.setattr(ino.0, mode, uid, gid, size, mtime.map(ns)) {
            Ok(a) => reply.attr(&self.entry_ttl(&a), &to_file_attr(&a)),
            Err(e) => reply.error(Errno::from_i32(e)),
        }
    }
    fn mknod(&self, _r: &Request, p: INodeNo, _n: &OsStr, _m: u32, _u: u32, _d: u32, reply: ReplyEntry) {
        reply.error(if ingest_dir::owns(p.0) { Errno::EPERM } else { Errno::EROFS });
    }
    fn mkdir(&self, req: &Request, p: INodeNo, n: &OsStr, mode: u32, umask: u32, reply: ReplyEntry) {
        if !ingest_dir::owns(p.0) {
            return reply.error(Errno::EROFS);
        }
        if let Err(e) = self.permit(p.0, &caller(req), MAY_WRITE | MAY_EXEC) {
            return reply.error(e);
        }
        match self.ingest.mkdir(p.0, n.as_bytes(), mode & !umask, req.uid(), req.gid()) {
            Ok(a) => reply.entry(&INGEST_TTL, &to_file_attr(&a), Generation(0)),
            Err(e) => reply.error(Errno::from_i32(e)),
        }
    }
    fn unlink(&self, r: &Request, p: INodeNo, n: &OsStr, reply: ReplyEmpty) {
        if !ingest_dir::owns(p.0) {
            return reply.error(Errno::EROFS);
        }
        if let Err(e) = self.permit(p.0, &caller(r), MAY_WRITE | MAY_EXEC) {
            return reply.error(e);
        }
        match self.ingest.unlink(p.0, n.as_bytes()) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(Errno::from_i32(e)),
        }
    }
    fn rmdir(&self, r: &Request, p: INodeNo, n: &OsStr, reply: ReplyEmpty) {
        if !ingest_dir::owns(p.0) {
            return reply.error(Errno::EROFS);
        }
        if let Err(e) = self.permit(p.0, &caller(r), MAY_WRITE | MAY_EXEC) {
            return reply.error(e);
        }
        match self.ingest.rmdir(p.0, n.as_bytes()) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(Errno::from_i32(e)),
        }
    }
    fn symlink(&self, _r: &Request, p: INodeNo, _n: &OsStr, _t: &Path, reply: ReplyEntry) {
        reply.error(if ingest_dir::owns(p.0) { Errno::EPERM } else { Errno::EROFS });
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
        match (ingest_dir::owns(p.0), ingest_dir::owns(np.0)) {
            (true, true) => {
                if flags.bits() & libc::RENAME_EXCHANGE != 0 {
                    return reply.error(Errno::EINVAL);
                }
                let who = caller(r);
                if let Err(e) = self
                    .permit(p.0, &who, MAY_WRITE | MAY_EXEC)
                    .and_then(|()| self.permit(np.0, &who, MAY_WRITE | MAY_EXEC))
                {
                    return reply.error(e);
                }
                let noreplace = flags.bits() & libc::RENAME_NOREPLACE != 0;
                match self.ingest.rename(p.0, n.as_bytes(), np.0, nn.as_bytes(), noreplace) {
                    Ok(()) => reply.ok(),
                    Err(e) => reply.error(Errno::from_i32(e)),
                }
            }
            (false, false) => reply.error(Errno::EROFS),
            _ => reply.error(Errno::EXDEV),
        }
    }
    fn link(&self, _r: &Request, _i: INodeNo, np: INodeNo, _nn: &OsStr, reply: ReplyEntry) {
        reply.error(if ingest_dir::owns(np.0) { Errno::EPERM } else { Errno::EROFS });
    }
    fn create(&self, req: &Request, p: INodeNo, n: &OsStr, mode: u32, umask: u32, _f: i32, reply: fuser::ReplyCreate) {
        if !ingest_dir::owns(p.0) {
            return reply.error(Errno::EROFS);
        }
        if let Err(e) = self.permit(p.0, &caller(req), MAY_WRITE | MAY_EXEC) {
            return reply.error(e);
        }
        match self.ingest.create(p.0, n.as_bytes(), mode & !umask, req.uid(), req.gid()) {
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
            Err(e) => reply.error(Errno::from_i32(e)),
        }
    }
    fn setxattr(&self, _r: &Request, i: INodeNo, _n: &OsStr, _v: &[u8], _f: i32, _p: u32, reply: ReplyEmpty) {
        reply.error(if ingest_dir::owns(i.0) { Errno::from_i32(libc::EOPNOTSUPP) } else { Errno::EROFS });
    }
    fn removexattr(&self, _r: &Request, i: INodeNo, _n: &OsStr, reply: ReplyEmpty) {
        reply.error(if ingest_dir::owns(i.0) { Errno::NO_XATTR } else { Errno::EROFS });
    }
}

/// Unmounts a mount left behind by a crashed daemon ("Transport endpoint is not connected").
pub fn clean_stale_mount(mountpoint: &Path) {
    // `stat` may still succeed from the kernel's attribute cache; listing the directory asks the dead daemon.
    let stale = |r: std::io::Result<()>| matches!(r, Err(e) if e.raw_os_error() == Some(libc::ENOTCONN));
    if stale(std::fs::metadata(mountpoint).map(|_| ())) || stale(std::fs::read_dir(mountpoint).map(|_| ())) {
        warn!("cleaning a stale mount at {mountpoint:?}");
        match std::process::Command::new("fusermount3").arg("-u").arg("-z").arg(mountpoint).status() {
            Ok(st) if st.success() => {}
            Ok(st) => warn!("fusermount3 -u -z {mountpoint:?} failed ({st})"),
            Err(e) => warn!("cannot run fusermount3: {e}"),
        }
    }
}

/// Tells the kernel about new entries so cached negative lookups, listings and directory attributes are dropped.
/// Entries inside directories that are themselves new were never seen by the kernel and are skipped.
fn announce(notifier: &Notifier, vfs: &Vfs, new: &[(u64, Vec<u8>)]) {
    let new_inos: std::collections::HashSet<u64> =
        new.iter().filter_map(|(p, n)| vfs.lookup(*p, n)).map(|a| a.ino).collect();
    let mut parents = std::collections::HashSet::new();
    for (parent, name) in new {
        if !new_inos.contains(parent) {
            let _ = notifier.inval_entry(INodeNo(*parent), OsStr::from_bytes(name));
            parents.insert(*parent);
        }
    }
    for p in parents {
        let _ = notifier.inval_inode(INodeNo(p), 0, 0);
    }
}

/// Mounts the archive at `mountpoint` and serves it until SIGINT/SIGTERM or an external unmount.
///
/// `unmounted` runs once the mount is gone and the ingest directory has finished its commits, before the rest is
/// torn down (threads joined, catalogs closed, which can wait on the disk): the caller releases the archive's
/// daemon lock there, so that `fusermount3 -u M && nightfox mount M` finds the archive free. It is dropped unrun
/// when the mount fails to start.
pub fn mount_foreground(
    archive: Archive,
    mountpoint: &Path,
    opts: MountOptions,
    unmounted: impl FnOnce(),
) -> Result<()> {
    clean_stale_mount(mountpoint);
    let md = std::fs::metadata(mountpoint).map_err(|e| Error::io(mountpoint, e))?;
    if !md.is_dir() {
        return Err(Error::Invalid(format!("mount point {mountpoint:?} is not a directory")));
    }
    let vfs = Arc::new(Vfs::new(&archive)?);
    // SAFETY: getuid/getgid cannot fail.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    let ingest = Arc::new(IngestDir::load(&archive, uid, gid)?);
    ingest.start();
    let fs = NightfoxFs::new(Arc::clone(&vfs), Arc::clone(&ingest), opts);
    let mut config = Config::default();
    config.mount_options = vec![
        MountOption::FSName(format!("nightfox:{}", archive.root.display())),
        MountOption::Subtype("nightfox".into()),
        MountOption::NoDev,
        MountOption::NoSuid,
        // No DefaultPermissions: with it the kernel answers a write to the 0444/0555 tree with EACCES before asking
        // this daemon, where every write outside `/ingest` answers EROFS; `/ingest` is checked here instead (see
        // `NightfoxFs::permit`). Everyone may read the read-only tree (with --allow-other, any user).
    ];
    if opts.allow_other {
        config.acl = SessionACL::All;
    }
    config.n_threads = Some(fuse_threads());
    config.clone_fd = true;
    let mut session = fuser::Session::new(fs, mountpoint, &config).map_err(|e| Error::io(mountpoint, e))?;
    let notifier = session.notifier();
    let mut unmounter = session.unmount_callable();
    let stop = Arc::new(AtomicBool::new(false));

    let mut signals = signal_hook::iterator::Signals::new([signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM])
        .map_err(|e| Error::io(mountpoint, e))?;
    let sig_handle = signals.handle();
    let mp: PathBuf = mountpoint.to_path_buf();
    let sig_thread = std::thread::spawn(move || {
        if let Some(sig) = signals.forever().next() {
            info!(signal = sig, "unmounting");
            if let Err(e) = unmounter.unmount() {
                warn!("unmount of {mp:?} failed: {e}; trying fusermount3 -u -z");
                let _ = std::process::Command::new("fusermount3").arg("-u").arg("-z").arg(&mp).status();
            }
        }
    });
    let refresh_stop = Arc::clone(&stop);
    let refresh_vfs = Arc::clone(&vfs);
    let refresh_ingest = Arc::clone(&ingest);
    let ra_mountpoint = mountpoint.to_path_buf();
    let ra_archive = archive.root.clone();
    let refresher = std::thread::spawn(move || {
        raise_read_ahead(&ra_mountpoint, &ra_archive);
        while !refresh_stop.load(Ordering::Relaxed) {
            std::thread::sleep(REFRESH);
            match refresh_vfs.refresh() {
                Ok(new) if !new.is_empty() => announce(&notifier, &refresh_vfs, &new),
                Ok(_) => {}
                Err(e) => warn!("catalog refresh failed: {e}"),
            }
            // Healed, replaced or damaged content: the kernel drops the pages and attributes it kept.
            for ino in refresh_vfs.take_changed() {
                let _ = notifier.inval_inode(INodeNo(ino), 0, 0);
            }
            // The kernel keeps directory listings (see `opendir`): drop those the ingest directory changed.
            for ino in refresh_ingest.take_changed_dirs() {
                let _ = notifier.inval_inode(INodeNo(ino), 0, 0);
            }
        }
    });
    let result = session.run();
    // The mount is gone. Commits in flight finish first (the next daemon discards staging it finds), then the
    // archive is free for the next daemon while this one winds down.
    ingest.shutdown();
    unmounted();
    stop.store(true, Ordering::Relaxed);
    sig_handle.close();
    let _ = sig_thread.join();
    let _ = refresher.join();
    result.map_err(|e| Error::io(mountpoint, e))
}

/// The read-ahead of a FUSE mount starts at the kernel's default of 128 KiB, whatever the disk under the archive
/// does (this VM's virtio disk reads ahead 8 MiB): on the copy path a sequential read then reaches the daemon as
/// 128 KiB requests, one or two in flight. This gives the mount the read-ahead of the archive's disk, at least
/// 1 MiB (`$NIGHTFOX_READ_AHEAD_KB` overrides; 0 leaves the kernel's value). Measured on a cold 1 GiB `dd`
/// through the copy path: median 1.4 GB/s against 0.87 GB/s at 128 KiB, over 10 paired runs. Passthrough reads
/// use the blob file's own read-ahead and are unaffected.
///
/// Needs root (sysfs); otherwise it logs why and leaves the default. It must run after the kernel has processed
/// the INIT reply, which lowers the value to the `max_readahead` negotiated there: `metadata` of the mount's root
/// is that point, since the kernel holds every request until INIT is done. Files opened before keep the old
/// window. Returns at once when the mount goes away.
fn raise_read_ahead(mountpoint: &Path, archive_root: &Path) {
    use std::os::unix::fs::MetadataExt;
    let want = match std::env::var("NIGHTFOX_READ_AHEAD_KB").ok().and_then(|v| v.trim().parse::<u64>().ok()) {
        Some(0) => return,
        Some(kb) => kb,
        None => std::fs::metadata(archive_root)
            .ok()
            .and_then(|m| device_read_ahead_kb(m.dev()))
            .unwrap_or(0)
            .clamp(1024, 16 * 1024),
    };
    let dev = match std::fs::metadata(mountpoint) {
        Ok(m) => m.dev(),
        Err(e) => return tracing::debug!("read-ahead left alone: {mountpoint:?}: {e}"),
    };
    let path = PathBuf::from(format!("/sys/class/bdi/{}:{}/read_ahead_kb", libc::major(dev), libc::minor(dev)));
    let was = read_kb(&path);
    if was == Some(want) {
        return;
    }
    match std::fs::write(&path, format!("{want}\n")) {
        Ok(()) => info!("read-ahead of the mount: {want} KiB (was {} KiB)", was.unwrap_or(0)),
        Err(e) => tracing::debug!("read-ahead left at {} KiB: {path:?}: {e}", was.unwrap_or(0)),
    }
}

/// The read-ahead of the block device holding `dev` (a whole disk, or the disk of a partition), in KiB.
fn device_read_ahead_kb(dev: u64) -> Option<u64> {
    let (major, minor) = (libc::major(dev), libc::minor(dev));
    read_kb(Path::new(&format!("/sys/class/bdi/{major}:{minor}/read_ahead_kb")))
        .or_else(|| read_kb(Path::new(&format!("/sys/dev/block/{major}:{minor}/../queue/read_ahead_kb"))))
}

fn read_kb(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Worker threads of the FUSE session: `$NIGHTFOX_FUSE_THREADS`, else 4 (measured: metadata walks gain up to 4
/// threads even on 2 cores, since requests wait on the kernel round trip more than on the CPU).
fn fuse_threads() -> usize {
    std::env::var("NIGHTFOX_FUSE_THREADS").ok().and_then(|v| v.parse().ok()).unwrap_or(4).clamp(1, 16)
}
