//! A fault-injecting FUSE filesystem for the tests, like a card with bad sectors: [`FaultFs`] mounts a read-only
//! mirror of a directory in this process (fuser on a background thread) and answers EIO for chosen byte ranges of
//! chosen files, while the rest of the card reads fine. It owns the mount (unmounted and its thread joined, bounded,
//! on drop), the inode numbers it hands out (one per path, never reused), the open descriptors of the real files and
//! the fault and counter state that the test thread changes while mounted.
//!
//! Opens are answered with `FOPEN_DIRECT_IO`: the kernel keeps no pages of these files, so every read reaches the
//! fixture (an EIO is never masked by cached pages and the byte counters see every read), and the kernel has no
//! read-ahead here. It passes a read(2) on as requests of up to 256 pages of the reader's buffer (1 MiB when the
//! buffer is page-aligned, less for the first request when it is not); a request that would serve a byte of a bad
//! range fails whole (bad bytes past the end of the file never fail a read). A read(2) split into several requests
//! returns the bytes of those before the first failing one (a short read; the next read(2) gets EIO), and EIO when
//! the first one fails. `MAP_SHARED` mmap of a file is refused (ENODEV, direct I/O; `MAP_PRIVATE` works, through
//! the page cache, unseen by faults and counters); `O_DIRECT` reads work. Mounting takes a few milliseconds.
#![allow(dead_code)]

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::{self, File, Metadata};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use fuser::{
    Config, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, LockOwner, MountOption,
    OpenFlags, ReplyAttr, ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyXattr,
    Request, SessionACL, SessionUnmounter,
};

/// The source may change under the mount (a test rewriting a file): attributes and entries are not cached.
const TTL: Duration = Duration::ZERO;
/// How long mounting and unmounting may take.
const BOUND: Duration = Duration::from_secs(10);

#[derive(Default)]
struct Faults {
    whole: bool,
    /// `(start, end)`, end exclusive.
    ranges: Vec<(u64, u64)>,
}

#[derive(Default)]
struct State {
    faults: HashMap<String, Faults>,
    /// Bytes served and reads answered with EIO, by relative path.
    counters: HashMap<String, (u64, u64)>,
}

/// A read-only mirror of `source_dir` mounted at `mountpoint` (in this process, on a background thread), whose reads
/// answer EIO for chosen byte ranges of chosen files, like a card with bad sectors, and which counts bytes served.
pub struct FaultFs {
    mountpoint: PathBuf,
    state: Arc<Mutex<State>>,
    unmounter: SessionUnmounter,
    thread: Option<JoinHandle<()>>,
}

/// Relative paths as the test names them: "a/b.MP4", without leading or trailing slashes.
fn key(rel: &str) -> String {
    rel.trim_matches('/').to_string()
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

impl FaultFs {
    /// Mounts; waits (bounded) until the mount answers. Panics with the reason when it cannot mount.
    pub fn mount(source_dir: &Path, mountpoint: &Path) -> FaultFs {
        fs::create_dir_all(mountpoint).unwrap_or_else(|e| panic!("faultfs: mountpoint {mountpoint:?}: {e}"));
        let root = fs::canonicalize(source_dir).unwrap_or_else(|e| panic!("faultfs: source {source_dir:?}: {e}"));
        let state = Arc::new(Mutex::new(State::default()));
        let mirror = Mirror {
            root,
            state: Arc::clone(&state),
            paths: Mutex::new((vec![PathBuf::new()], HashMap::from([(PathBuf::new(), 1)]))),
            files: Mutex::new(HashMap::new()),
            next_fh: AtomicU64::new(1),
        };
        let mut config = Config::default();
        config.mount_options = vec![
            MountOption::RO,
            MountOption::FSName("faultfs".into()),
            MountOption::Subtype("faultfs".into()),
            MountOption::NoDev,
            MountOption::NoSuid,
            // The kernel checks the real files' modes and owners, as it would on the card.
            MountOption::DefaultPermissions,
        ];
        // Other users may read too (a reader run through setpriv); without root that needs user_allow_other.
        config.acl = if super::is_root() { SessionACL::All } else { SessionACL::Owner };
        config.n_threads = Some(2);
        config.clone_fd = true;
        // The session is made on its thread: the handshake with the kernel is then bounded like the rest.
        let (tx, rx) = mpsc::channel();
        let mp = mountpoint.to_path_buf();
        let thread = std::thread::Builder::new()
            .name("faultfs".into())
            .spawn(move || match fuser::Session::new(mirror, &mp, &config) {
                Ok(mut session) => {
                    let _ = tx.send(Ok(session.unmount_callable()));
                    if let Err(e) = session.run() {
                        eprintln!("faultfs: session at {mp:?} ended: {e}");
                    }
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                }
            })
            .expect("spawn faultfs thread");
        let unmounter = match rx.recv_timeout(BOUND) {
            Ok(Ok(u)) => u,
            Ok(Err(e)) => panic!("faultfs: mounting at {mountpoint:?} failed: {e}"),
            Err(e) => panic!("faultfs: no mount at {mountpoint:?} within {BOUND:?}: {e}"),
        };
        super::wait_until("the faultfs mount to answer", BOUND, || super::serving(mountpoint));
        FaultFs { mountpoint: mountpoint.to_path_buf(), state, unmounter, thread: Some(thread) }
    }

    pub fn mountpoint(&self) -> &Path {
        &self.mountpoint
    }

    /// Reads of `rel` (path relative to the source dir, e.g. "PRIVATE/M4ROOT/CLIP/C0002.MP4") overlapping
    /// [start, start+len) answer EIO.
    pub fn fail_range(&self, rel: &str, start: u64, len: u64) {
        lock(&self.state).faults.entry(key(rel)).or_default().ranges.push((start, start.saturating_add(len)));
    }

    /// Every read of `rel` answers EIO (a file that cannot be read at all); open and stat still work.
    pub fn fail_file(&self, rel: &str) {
        lock(&self.state).faults.entry(key(rel)).or_default().whole = true;
    }

    /// Removes every fault of `rel` (the card reads cleanly again).
    pub fn heal(&self, rel: &str) {
        lock(&self.state).faults.remove(&key(rel));
    }

    /// Bytes served to readers of `rel` so far (successful reads only).
    pub fn bytes_read(&self, rel: &str) -> u64 {
        lock(&self.state).counters.get(&key(rel)).map_or(0, |c| c.0)
    }

    /// Reads of `rel` that answered EIO (kernel requests, see the module doc, not read(2) calls).
    pub fn eio_count(&self, rel: &str) -> u64 {
        lock(&self.state).counters.get(&key(rel)).map_or(0, |c| c.1)
    }

    pub fn reset_counters(&self) {
        lock(&self.state).counters.clear();
    }

    /// Unmounts and joins the session thread (bounded); the same happens on drop.
    pub fn unmount(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let Some(thread) = self.thread.take() else { return };
        if let Err(e) = self.unmounter.unmount() {
            // Busy: a file is still open on it. A forced unmount aborts the connection (its readers get ENOTCONN
            // and the session ends), then the lazy one detaches it.
            eprintln!("faultfs: unmount of {:?} failed ({e}); forcing it", self.mountpoint);
            let _ = Command::new("umount").arg("-f").arg(&self.mountpoint).stderr(Stdio::null()).status();
            if super::is_mounted(&self.mountpoint) {
                let _ = Command::new("fusermount3").arg("-u").arg("-z").arg(&self.mountpoint).status();
            }
        }
        let start = Instant::now();
        while !thread.is_finished() && start.elapsed() < BOUND {
            std::thread::sleep(Duration::from_millis(10));
        }
        if thread.is_finished() {
            let _ = thread.join();
        } else {
            eprintln!("faultfs: session thread of {:?} still running after {BOUND:?}; left behind", self.mountpoint);
        }
    }
}

impl Drop for FaultFs {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The fuser `Filesystem`: paths by inode (index + 1) and inodes by path, the open real files by handle.
struct Mirror {
    root: PathBuf,
    state: Arc<Mutex<State>>,
    paths: Mutex<(Vec<PathBuf>, HashMap<PathBuf, u64>)>,
    files: Mutex<HashMap<u64, (String, Arc<File>)>>,
    next_fh: AtomicU64,
}

fn errno(e: &std::io::Error) -> Errno {
    Errno::from_i32(e.raw_os_error().unwrap_or(libc::EIO))
}

/// The ctime of a file (std has none); mtime and atime come from std.
fn ctime(md: &Metadata) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::new(md.ctime().max(0) as u64, md.ctime_nsec() as u32)
}

fn kind(md: &Metadata) -> FileType {
    let ft = md.file_type();
    if ft.is_dir() {
        FileType::Directory
    } else if ft.is_symlink() {
        FileType::Symlink
    } else {
        FileType::RegularFile
    }
}

fn attr(ino: u64, md: &Metadata) -> FileAttr {
    let mtime = md.modified().unwrap_or(SystemTime::UNIX_EPOCH);
    FileAttr {
        ino: INodeNo(ino),
        size: md.size(),
        blocks: md.blocks(),
        atime: md.accessed().unwrap_or(mtime),
        mtime,
        ctime: ctime(md),
        crtime: mtime,
        kind: kind(md),
        perm: (md.mode() & 0o7777) as u16,
        nlink: md.nlink() as u32,
        uid: md.uid(),
        gid: md.gid(),
        rdev: md.rdev() as u32,
        blksize: md.blksize() as u32,
        flags: 0,
    }
}

impl Mirror {
    fn rel(&self, ino: INodeNo) -> Option<PathBuf> {
        let paths = self.paths.lock().unwrap_or_else(|e| e.into_inner());
        paths.0.get((ino.0 as usize).checked_sub(1)?).cloned()
    }

    fn ino(&self, rel: &Path) -> u64 {
        let mut paths = self.paths.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(&ino) = paths.1.get(rel) {
            return ino;
        }
        paths.0.push(rel.to_path_buf());
        let ino = paths.0.len() as u64;
        paths.1.insert(rel.to_path_buf(), ino);
        ino
    }
}

impl Filesystem for Mirror {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let Some(rel) = self.rel(parent).map(|p| p.join(name)) else { return reply.error(Errno::ENOENT) };
        match fs::symlink_metadata(self.root.join(&rel)) {
            Ok(md) => reply.entry(&TTL, &attr(self.ino(&rel), &md), Generation(0)),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        let Some(rel) = self.rel(ino) else { return reply.error(Errno::ENOENT) };
        match fs::symlink_metadata(self.root.join(rel)) {
            Ok(md) => reply.attr(&TTL, &attr(ino.0, &md)),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        let Some(rel) = self.rel(ino) else { return reply.error(Errno::ENOENT) };
        match fs::read_link(self.root.join(rel)) {
            Ok(target) => reply.data(target.as_os_str().as_encoded_bytes()),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn readdir(&self, _req: &Request, ino: INodeNo, _fh: FileHandle, offset: u64, mut reply: ReplyDirectory) {
        let Some(rel) = self.rel(ino) else { return reply.error(Errno::ENOENT) };
        let rd = match fs::read_dir(self.root.join(&rel)) {
            Ok(rd) => rd,
            Err(e) => return reply.error(errno(&e)),
        };
        let parent = rel.parent().map_or(1, |p| self.ino(p));
        let mut entries = vec![(ino.0, FileType::Directory, ".".into()), (parent, FileType::Directory, "..".into())];
        let mut names: Vec<_> = rd.flatten().collect();
        names.sort_by_key(|e| e.file_name());
        for e in names {
            let Ok(md) = fs::symlink_metadata(e.path()) else { continue };
            entries.push((self.ino(&rel.join(e.file_name())), kind(&md), e.file_name()));
        }
        for (i, (ino, kind, name)) in entries.iter().enumerate().skip(offset as usize) {
            if reply.add(INodeNo(*ino), i as u64 + 1, *kind, name) {
                break;
            }
        }
        reply.ok();
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        if flags.0 & libc::O_ACCMODE != libc::O_RDONLY || flags.0 & (libc::O_TRUNC | libc::O_APPEND) != 0 {
            return reply.error(Errno::EROFS);
        }
        let Some(rel) = self.rel(ino) else { return reply.error(Errno::ENOENT) };
        match File::open(self.root.join(&rel)) {
            Ok(file) => {
                let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
                let key = rel.to_string_lossy().into_owned();
                self.files.lock().unwrap_or_else(|e| e.into_inner()).insert(fh, (key, Arc::new(file)));
                reply.opened(FileHandle(fh), FopenFlags::FOPEN_DIRECT_IO);
            }
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let open = self.files.lock().unwrap_or_else(|e| e.into_inner()).get(&fh.0).cloned();
        let Some((rel, file)) = open else { return reply.error(Errno::EBADF) };
        let mut buf = vec![0u8; size as usize];
        let mut n = 0;
        while n < buf.len() {
            match file.read_at(&mut buf[n..], offset + n as u64) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return reply.error(errno(&e)),
            }
        }
        let mut state = lock(&self.state);
        // A range fails the reads that would serve some of its bytes; a failed file fails every read.
        let end = offset + n as u64;
        let bad =
            state.faults.get(&rel).is_some_and(|f| f.whole || f.ranges.iter().any(|&(s, e)| s < end && offset < e));
        let counters = state.counters.entry(rel).or_default();
        if bad {
            counters.1 += 1;
            reply.error(Errno::EIO);
        } else {
            counters.0 += n as u64;
            reply.data(&buf[..n]);
        }
    }

    fn flush(&self, _req: &Request, _ino: INodeNo, _fh: FileHandle, _lock_owner: LockOwner, reply: ReplyEmpty) {
        reply.ok();
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.files.lock().unwrap_or_else(|e| e.into_inner()).remove(&fh.0);
        reply.ok();
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        let Ok(c) = std::ffi::CString::new(self.root.as_os_str().as_encoded_bytes()) else {
            return reply.error(Errno::EINVAL);
        };
        // SAFETY: statvfs writes into the zeroed struct we own, given a NUL-terminated path.
        let (rc, s) = unsafe {
            let mut s: libc::statvfs = std::mem::zeroed();
            (libc::statvfs(c.as_ptr(), &mut s), s)
        };
        if rc != 0 {
            return reply.error(errno(&std::io::Error::last_os_error()));
        }
        let (bsize, namelen, frsize) = (s.f_bsize as u32, s.f_namemax as u32, s.f_frsize as u32);
        reply.statfs(s.f_blocks, s.f_bfree, s.f_bavail, s.f_files, s.f_ffree, bsize, namelen, frsize);
    }

    fn getxattr(&self, _req: &Request, _ino: INodeNo, _name: &OsStr, _size: u32, reply: ReplyXattr) {
        reply.error(Errno::NO_XATTR);
    }

    fn listxattr(&self, _req: &Request, _ino: INodeNo, size: u32, reply: ReplyXattr) {
        if size == 0 {
            reply.size(0)
        } else {
            reply.data(&[])
        }
    }
}
