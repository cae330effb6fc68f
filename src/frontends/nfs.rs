//! The NFSv3 export: the read-only tree of [`ArchiveFs`] served with the `nfs3_server` crate, for machines without
//! FUSE (Macs without macFUSE, Windows' NFS client, another Linux box). It only translates: NFS file handles are
//! the core's stable inode numbers (from catalog ids) under a generation fixed per archive, so a handle a client
//! holds stays valid across a restart of the daemon; `read` is the core's stateless `read_at`; `FsError`s become
//! NFS status codes here. Every change is refused by the crate's read-only adapter (NFS3ERR_ROFS).
//!
//! `/ingest` is not exported: its commits follow the close of each writer, and NFSv3 has no close. The root
//! listing leaves it out and a lookup of it is NFS3ERR_NOENT.
//!
//! NFS clients revalidate what they cached by a directory's mtime/ctime. Folders of the tree carry the time of
//! their newest import in whole seconds, so two imports within one second would look alike; and the core names
//! only the deepest folder *it* showed for a new file, while an NFS client may have cached any folder (across a
//! restart of the daemon too). So every change the core announces adds a nanosecond to the times of every folder
//! here: a client looks again at the folders it uses (a cheap READDIRPLUS) after each import. The count lives in
//! memory; after a restart the times fall back to whole seconds, which clients also see as a change.
//!
//! The sync core runs on tokio's blocking pool; the server has a small runtime of its own.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use nfs3_server::nfs3_types::nfs3::{fattr3, filename3, ftype3, nfspath3, nfsstat3, nfstime3, specdata3, FSINFO3resok};
use nfs3_server::tcp::{NFSTcp, NFSTcpListener};
use nfs3_server::vfs::adapters::ReadOnlyAdapter;
use nfs3_server::vfs::{DirEntryPlus, FileHandleU64, NextResult, NfsReadFileSystem, ReadDirPlusIterator};
use parking_lot::Mutex;
use tokio::runtime::Runtime;
use tracing::{info, warn};

use super::{FrontEnd, Stop};
use crate::error::{Error, Result};
use crate::fs::{ino, ArchiveFs, Attr, Caller, Change, DirEntry, FsError, Groups, Kind, INGEST_ROOT_INO, ROOT_INO};

/// The largest READ answered (the client's `rtmax`).
const READ_MAX: u32 = 1 << 20;
/// Listings kept for clients that page through them (cookie > 0).
const LISTINGS: usize = 64;
/// `.by-hash` entries read per page.
const HASH_PAGE: usize = 512;
/// The `fsid` of every node.
const FSID: u64 = 0x4e46_4f58;

/// Where and how the export listens.
#[derive(Clone, Debug)]
pub struct ExportOptions {
    pub listen: SocketAddr,
    /// Listening on a non-loopback address was asked for explicitly (`--allow-remote`).
    pub allow_remote: bool,
}

impl ExportOptions {
    /// Checks the listen address: loopback unless `allow_remote`; IPv4 (the server crate binds `ip:port` only).
    pub fn check(&self) -> Result<()> {
        if self.listen.is_ipv6() {
            return Err(Error::Invalid(format!(
                "the NFS export listens on IPv4 only, not {}: use 127.0.0.1:PORT (or an IPv4 address with --allow-remote)",
                self.listen
            )));
        }
        if !self.listen.ip().is_loopback() && !self.allow_remote {
            return Err(Error::Invalid(format!(
                "exporting on {} lets every machine that reaches it read the archive: pass --allow-remote to mean it",
                self.listen
            )));
        }
        Ok(())
    }
}

/// The NFS export as a front end of `serve`.
pub struct NfsExport {
    options: ExportOptions,
    running: Option<(Runtime, tokio::task::JoinHandle<std::io::Result<()>>, u16)>,
}

impl NfsExport {
    pub fn new(options: ExportOptions) -> NfsExport {
        NfsExport { options, running: None }
    }

    /// The port listened on once started (the one asked for, or the one given for port 0).
    pub fn port(&self) -> Option<u16> {
        self.running.as_ref().map(|(_, _, p)| *p)
    }
}

/// The file-handle generation of an archive: the same on every start (so handles survive restarts), different
/// between archives (a handle of another archive is stale, not a different file).
fn generation(fs: &ArchiveFs) -> u64 {
    let h = blake3::hash(fs.root().as_os_str().as_encoded_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&h.as_bytes()[..8]);
    u64::from_le_bytes(b)
}

impl FrontEnd for NfsExport {
    fn describe(&self) -> String {
        format!("nfs:{}", self.options.listen)
    }

    fn check(&self) -> Result<()> {
        self.options.check()
    }

    fn start(&mut self, fs: &Arc<ArchiveFs>) -> Result<()> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .max_blocking_threads(16)
            .thread_name("nfs-export")
            .enable_all()
            .build()
            .map_err(|e| Error::io("the NFS export's runtime", e))?;
        let adapter = NfsAdapter::new(Arc::clone(fs));
        let changes = Arc::clone(&adapter.changes);
        let listings = Arc::clone(&adapter.listings);
        fs.subscribe(move |c| {
            if !matches!(c, Change::ContentChanged(_)) {
                changes.fetch_add(1, Ordering::Relaxed);
                listings.lock().clear();
            }
        });
        let addr = self.options.listen.to_string();
        let gen = generation(fs);
        let listener = rt
            .block_on(NFSTcpListener::bind_with_generation(&addr, ReadOnlyAdapter::new(adapter), gen))
            .map_err(|e| Error::io(format!("cannot listen for NFS on {addr}"), e))?;
        let port = listener.get_listen_port();
        let task = rt.spawn(async move { listener.handle_forever().await });
        // The one line a user (or a script that asked for port 0) needs: where to mount from.
        eprintln!("nightfox: exporting the archive read-only over NFSv3 at nfs://{}:{port}/", self.options.listen.ip());
        info!(port, "NFS export listening");
        self.running = Some((rt, task, port));
        Ok(())
    }

    fn run(mut self: Box<Self>, _fs: Arc<ArchiveFs>, stop: Arc<Stop>) -> Result<()> {
        let Some((rt, task, _)) = self.running.take() else {
            return Err(Error::Invalid("the NFS export was not started".into()));
        };
        // The stop is a condition variable: a thread turns it into a message the runtime can wait on.
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let waiter = Arc::clone(&stop);
        std::thread::spawn(move || {
            waiter.wait();
            let _ = tx.send(());
        });
        let ended = rt.block_on(async move {
            tokio::select! {
                r = task => Some(r),
                _ = rx => None,
            }
        });
        rt.shutdown_timeout(std::time::Duration::from_secs(2));
        match ended {
            None => Ok(()),
            Some(Ok(Ok(()))) => Ok(()),
            Some(Ok(Err(e))) => Err(Error::io("the NFS export stopped", e)),
            Some(Err(e)) => Err(Error::Invalid(format!("the NFS export stopped: {e}"))),
        }
    }
}

/// Listings being paged through, most recent last: (directory, its entries).
type Listings = Mutex<Vec<(u64, Arc<Vec<DirEntry>>)>>;

/// `nfs3_server`'s view of the core.
struct NfsAdapter {
    fs: Arc<ArchiveFs>,
    /// Changes of the tree since the start (added to every folder's times in nanoseconds).
    changes: Arc<AtomicI64>,
    /// Listings being paged through.
    listings: Arc<Listings>,
}

/// The core's answers carry no per-request identity here: the exported tree is 0444/0555 for everyone.
fn caller() -> Caller {
    Caller { uid: 0, gid: 0, groups: Groups::Known(Vec::new()) }
}

/// A core error as an NFS status.
fn status(e: FsError) -> nfsstat3 {
    match e {
        FsError::NotFound => nfsstat3::NFS3ERR_NOENT,
        FsError::Access => nfsstat3::NFS3ERR_ACCES,
        FsError::Perm => nfsstat3::NFS3ERR_PERM,
        FsError::ReadOnly => nfsstat3::NFS3ERR_ROFS,
        FsError::Exists => nfsstat3::NFS3ERR_EXIST,
        FsError::NotEmpty => nfsstat3::NFS3ERR_NOTEMPTY,
        FsError::NotDir => nfsstat3::NFS3ERR_NOTDIR,
        FsError::IsDir => nfsstat3::NFS3ERR_ISDIR,
        FsError::NoSpace => nfsstat3::NFS3ERR_NOSPC,
        FsError::Stale => nfsstat3::NFS3ERR_STALE,
        FsError::BadHandle => nfsstat3::NFS3ERR_BADHANDLE,
        FsError::NotSupported | FsError::NoData => nfsstat3::NFS3ERR_NOTSUPP,
        FsError::Invalid => nfsstat3::NFS3ERR_INVAL,
        FsError::NameTooLong => nfsstat3::NFS3ERR_NAMETOOLONG,
        FsError::CrossDevice => nfsstat3::NFS3ERR_XDEV,
        FsError::Busy | FsError::Io | FsError::Other(_) => nfsstat3::NFS3ERR_IO,
    }
}

fn time(ns: i64) -> nfstime3 {
    let ns = ns.max(0);
    nfstime3 { seconds: u32::try_from(ns / 1_000_000_000).unwrap_or(u32::MAX), nseconds: (ns % 1_000_000_000) as u32 }
}

/// Runs a call of the sync core on the blocking pool.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, nfsstat3> + Send + 'static) -> Result<T, nfsstat3> {
    tokio::task::spawn_blocking(f).await.unwrap_or(Err(nfsstat3::NFS3ERR_SERVERFAULT))
}

/// Whether a name of a directory is served: everything but the root's `ingest`.
fn exported(a: &Attr) -> bool {
    a.ino != INGEST_ROOT_INO
}

impl NfsAdapter {
    fn new(fs: Arc<ArchiveFs>) -> NfsAdapter {
        NfsAdapter { fs, changes: Arc::default(), listings: Arc::default() }
    }

    fn fattr(changes: &AtomicI64, a: &Attr) -> fattr3 {
        let bump = match a.kind {
            Kind::Dir => changes.load(Ordering::Relaxed),
            Kind::File => 0,
        };
        fattr3 {
            type_: match a.kind {
                Kind::Dir => ftype3::NF3DIR,
                Kind::File => ftype3::NF3REG,
            },
            mode: u32::from(a.perm),
            nlink: a.nlink,
            uid: a.uid,
            gid: a.gid,
            size: a.size,
            used: a.blocks.saturating_mul(512),
            rdev: specdata3::default(),
            fsid: FSID,
            fileid: a.ino,
            atime: time(a.mtime_ns + bump),
            mtime: time(a.mtime_ns + bump),
            ctime: time(a.ctime_ns + bump),
        }
    }

    /// A directory's entries as served, whole: from the listing being paged through when `fresh` is false and
    /// one is kept, else read anew (and kept).
    fn listing(fs: &ArchiveFs, listings: &Listings, dir: u64, fresh: bool) -> Result<Arc<Vec<DirEntry>>, nfsstat3> {
        if !fresh {
            if let Some((_, l)) = listings.lock().iter().find(|(d, _)| *d == dir) {
                return Ok(Arc::clone(l));
            }
        }
        let mut v = fs.readdir(&caller(), dir).map_err(status)?;
        if dir == ROOT_INO {
            v.retain(|e| exported(&e.attr));
        }
        let v = Arc::new(v);
        let mut l = listings.lock();
        l.retain(|(d, _)| *d != dir);
        if l.len() >= LISTINGS {
            l.remove(0);
        }
        l.push((dir, Arc::clone(&v)));
        Ok(v)
    }
}

/// What READDIRPLUS pages through: a listing taken whole (cookie = the entry's inode) or `.by-hash` read in
/// pages (cookie = the blob's id).
enum Listing {
    Whole { entries: Arc<Vec<DirEntry>>, at: usize, changes: Arc<AtomicI64> },
    Paged { fs: Arc<ArchiveFs>, dir: u64, page: std::vec::IntoIter<(u64, DirEntry)>, after: u64, done: bool },
}

impl ReadDirPlusIterator<FileHandleU64> for Listing {
    async fn next(&mut self) -> NextResult<DirEntryPlus<FileHandleU64>> {
        match self {
            Listing::Whole { entries, at, changes } => {
                let Some(e) = entries.get(*at) else { return NextResult::Eof };
                *at += 1;
                NextResult::Ok(entry(changes, e, e.attr.ino))
            }
            Listing::Paged { fs, dir, page, after, done } => {
                if let Some((cookie, e)) = page.next() {
                    *after = cookie;
                    return NextResult::Ok(entry(&AtomicI64::new(0), &e, cookie));
                }
                if *done {
                    return NextResult::Eof;
                }
                let (fs, dir, from) = (Arc::clone(fs), *dir, *after);
                match blocking(move || fs.readdir_page(dir, from, HASH_PAGE).map_err(status)).await {
                    Ok(next) => {
                        *done = next.len() < HASH_PAGE;
                        *page = next.into_iter();
                        match page.next() {
                            Some((cookie, e)) => {
                                *after = cookie;
                                NextResult::Ok(entry(&AtomicI64::new(0), &e, cookie))
                            }
                            None => NextResult::Eof,
                        }
                    }
                    Err(s) => NextResult::Err(s),
                }
            }
        }
    }
}

fn entry(changes: &AtomicI64, e: &DirEntry, cookie: u64) -> DirEntryPlus<FileHandleU64> {
    DirEntryPlus {
        fileid: e.attr.ino,
        name: filename3::from(e.name.clone()),
        cookie,
        name_attributes: Some(NfsAdapter::fattr(changes, &e.attr)),
        name_handle: Some(FileHandleU64::new(e.attr.ino)),
    }
}

impl NfsReadFileSystem for NfsAdapter {
    type Handle = FileHandleU64;

    fn root_dir(&self) -> FileHandleU64 {
        FileHandleU64::new(ROOT_INO)
    }

    async fn lookup(&self, dir: &FileHandleU64, name: &filename3<'_>) -> Result<FileHandleU64, nfsstat3> {
        let (fs, dir, name) = (Arc::clone(&self.fs), u64::from(*dir), name.as_ref().to_vec());
        blocking(move || match name.as_slice() {
            b"." => Ok(FileHandleU64::new(dir)),
            b".." => fs.parent(dir).map(FileHandleU64::new).ok_or(nfsstat3::NFS3ERR_STALE),
            _ => {
                let (a, _) = fs.lookup(&caller(), dir, &name).map_err(status)?;
                if !exported(&a) || ino::owns_ingest(a.ino) {
                    return Err(nfsstat3::NFS3ERR_NOENT);
                }
                Ok(FileHandleU64::new(a.ino))
            }
        })
        .await
    }

    async fn getattr(&self, id: &FileHandleU64) -> Result<fattr3, nfsstat3> {
        let (fs, changes, ino) = (Arc::clone(&self.fs), Arc::clone(&self.changes), u64::from(*id));
        blocking(move || {
            if ino::owns_ingest(ino) {
                return Err(nfsstat3::NFS3ERR_STALE);
            }
            match fs.getattr(ino) {
                Ok((a, _)) => Ok(NfsAdapter::fattr(&changes, &a)),
                // A handle of a node the archive no longer has (or a folder of an old path after a restart).
                Err(FsError::NotFound) => Err(nfsstat3::NFS3ERR_STALE),
                Err(e) => Err(status(e)),
            }
        })
        .await
    }

    async fn read(&self, id: &FileHandleU64, offset: u64, count: u32) -> Result<(Vec<u8>, bool), nfsstat3> {
        let (fs, ino) = (Arc::clone(&self.fs), u64::from(*id));
        blocking(move || {
            let (a, _) =
                fs.getattr(ino)
                    .map_err(|e| if e == FsError::NotFound { nfsstat3::NFS3ERR_STALE } else { status(e) })?;
            if a.kind == Kind::Dir {
                return Err(nfsstat3::NFS3ERR_ISDIR);
            }
            if ino::owns_ingest(ino) {
                return Err(nfsstat3::NFS3ERR_ACCES);
            }
            let want = u64::from(count.min(READ_MAX)).min(a.size.saturating_sub(offset)) as usize;
            let mut buf = vec![0u8; want];
            let n = if want == 0 { 0 } else { fs.read_at(ino, offset, &mut buf).map_err(status)? };
            buf.truncate(n);
            Ok((buf, offset + n as u64 >= a.size))
        })
        .await
    }

    async fn readdirplus(
        &self,
        dir: &FileHandleU64,
        cookie: u64,
    ) -> Result<impl ReadDirPlusIterator<FileHandleU64>, nfsstat3> {
        let (fs, listings, changes, dir) =
            (Arc::clone(&self.fs), Arc::clone(&self.listings), Arc::clone(&self.changes), u64::from(*dir));
        blocking(move || {
            if ino::owns_ingest(dir) {
                return Err(nfsstat3::NFS3ERR_STALE);
            }
            if fs.lists_in_pages(dir) {
                return Ok(Listing::Paged { fs, dir, page: Vec::new().into_iter(), after: cookie, done: false });
            }
            let (a, _) =
                fs.getattr(dir)
                    .map_err(|e| if e == FsError::NotFound { nfsstat3::NFS3ERR_STALE } else { status(e) })?;
            if a.kind != Kind::Dir {
                return Err(nfsstat3::NFS3ERR_NOTDIR);
            }
            let mut entries = NfsAdapter::listing(&fs, &listings, dir, cookie == 0)?;
            let mut at = 0;
            if cookie != 0 {
                let mut pos = entries.iter().position(|e| e.attr.ino == cookie);
                if pos.is_none() {
                    // The kept listing is gone or older than the cookie: read the directory again.
                    entries = NfsAdapter::listing(&fs, &listings, dir, true)?;
                    pos = entries.iter().position(|e| e.attr.ino == cookie);
                }
                at = pos.ok_or(nfsstat3::NFS3ERR_BAD_COOKIE)? + 1;
            }
            Ok(Listing::Whole { entries, at, changes })
        })
        .await
    }

    async fn readlink(&self, _id: &FileHandleU64) -> Result<nfspath3<'_>, nfsstat3> {
        Err(nfsstat3::NFS3ERR_INVAL)
    }

    async fn fsinfo(&self, root: &FileHandleU64) -> Result<FSINFO3resok, nfsstat3> {
        use nfs3_server::nfs3_types::nfs3::{post_op_attr, FSF3_HOMOGENEOUS};
        let attr = self.getattr(root).await.map_or(post_op_attr::None, post_op_attr::Some);
        Ok(FSINFO3resok {
            obj_attributes: attr,
            rtmax: READ_MAX,
            rtpref: READ_MAX,
            rtmult: 4096,
            wtmax: READ_MAX,
            wtpref: READ_MAX,
            wtmult: 4096,
            dtpref: 64 * 1024,
            maxfilesize: u64::MAX >> 1,
            time_delta: nfstime3 { seconds: 0, nseconds: 1 },
            properties: FSF3_HOMOGENEOUS,
        })
    }
}

impl Drop for NfsExport {
    fn drop(&mut self) {
        if let Some((rt, task, _)) = self.running.take() {
            task.abort();
            rt.shutdown_background();
            warn!("the NFS export was dropped without running");
        }
    }
}
