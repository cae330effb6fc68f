//! NFSv3 exports, read with the pure-Rust `nfs3_client` over TCP (MOUNT and NFS ports given, no portmapper). The
//! source owns a small tokio runtime and one lazily mounted connection for lookups, scans and changes; every opened
//! file reads through a connection (and runtime) of its own, so that several workers read in parallel. Every RPC,
//! and every mount, is bounded by the configured timeout; after a timeout or a transport failure the connection is
//! dropped (its RPC framing can no longer be trusted) and the next call mounts afresh. NFS status codes become
//! errnos, so that `Error::is_transient` can tell a dropped or hung server (retry) from a missing file (fail).
//! Paths are absolute inside the export (`/` is the export root) and are resolved with LOOKUP per component, with
//! a small cache of directory handles. The source must not be used (or dropped) from inside an async runtime.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fmt;
use std::future::Future;
use std::io::{self, Read};
use std::net::{IpAddr, SocketAddr};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use nfs3_client::io::{AsyncRead, AsyncWrite};
use nfs3_client::net::Connector;
use nfs3_client::nfs3_types::mount::mountstat3;
use nfs3_client::nfs3_types::nfs3::{
    self as nfs, fattr3, filename3, ftype3, nfs_fh3, nfsstat3, Nfs3Option, Nfs3Result,
};
use nfs3_client::nfs3_types::rpc::{auth_unix, opaque_auth};
use nfs3_client::nfs3_types::xdr_codec::{Opaque, Pack, Unpack};
use nfs3_client::{ConnectError, MountError, Nfs3Client, Nfs3ConnectionBuilder, PortmapError, RpcError};
use parking_lot::Mutex;
use tokio::net::{TcpSocket, TcpStream};
use tokio::runtime::Runtime;

use super::{EntryKind, FileMeta, Source, SourceEntry};
use crate::error::{io_is_transient, Error, Result};

/// READ size: one RPC in flight per connection, and 1 MiB was the fastest count on loopback.
const READ_SIZE: u32 = 1 << 20;
/// READDIRPLUS sizes: directory-entry bytes and whole-reply bytes per page.
const DIR_COUNT: u32 = 64 * 1024;
const DIR_MAXCOUNT: u32 = 256 * 1024;
/// The directory-handle cache is cleared when it grows past this.
const CACHE_MAX: usize = 4096;
/// Mode of directories made by `create_dir_all`.
const DIR_MODE: u32 = 0o755;

/// Where an NFS export is and how long one RPC may take.
#[derive(Clone, Debug)]
pub struct NfsConfig {
    /// The server as an IP literal (`127.0.0.1`); host names are refused.
    pub host: String,
    /// NFS port (2049 if the URL gives none).
    pub port: u16,
    /// MOUNT port; `None` = same as `port`.
    pub mount_port: Option<u16>,
    /// The export path as the server names it, e.g. `/footage`.
    pub export: String,
    /// Bound on every single RPC (and on each mount).
    pub timeout: Duration,
}

/// Everything needed to mount, shared by the source and its readers.
#[derive(Clone, Debug)]
struct Target {
    ip: IpAddr,
    port: u16,
    mount_port: u16,
    export: String,
    timeout: Duration,
    uid: u32,
    gid: u32,
}

/// An NFSv3 export as a footage source. `Send + Sync`; connects on first use.
pub struct NfsSource {
    target: Target,
    /// `nfs://host:port` (IPv6 in brackets).
    base: String,
    rt: Runtime,
    conn: Mutex<Option<Conn>>,
}

impl NfsSource {
    /// No network I/O here; connects on first use.
    pub fn new(cfg: NfsConfig) -> Result<NfsSource> {
        let ip: IpAddr = cfg.host.trim().parse().map_err(|_| {
            Error::Invalid(format!("NFS host must be an IP address such as 127.0.0.1, not {:?}", cfg.host))
        })?;
        if !cfg.export.starts_with('/') {
            return Err(Error::Invalid(format!(
                "NFS export must be an absolute path such as /footage, not {:?}",
                cfg.export
            )));
        }
        if cfg.port == 0 || cfg.mount_port == Some(0) {
            return Err(Error::Invalid("NFS port must not be 0".into()));
        }
        if cfg.timeout.is_zero() {
            return Err(Error::Invalid("NFS timeout must be more than zero".into()));
        }
        let base = format!("nfs://{}", SocketAddr::new(ip, cfg.port));
        let rt = runtime().map_err(|e| Error::io(format!("{base}{}", cfg.export), e))?;
        // SAFETY: trivial libc calls without arguments.
        let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
        let target = Target {
            ip,
            port: cfg.port,
            mount_port: cfg.mount_port.unwrap_or(cfg.port),
            export: cfg.export,
            timeout: cfg.timeout,
            uid,
            gid,
        };
        Ok(NfsSource { target, base, rt, conn: Mutex::new(None) })
    }

    /// The URL of a path inside the export, for messages and errors.
    fn url(&self, path: &Path) -> PathBuf {
        let export = self.target.export.trim_end_matches('/');
        let p = path.to_string_lossy();
        let sep = if p.starts_with('/') { "" } else { "/" };
        PathBuf::from(format!("{}{export}{sep}{p}", self.base))
    }

    fn error(&self, path: &Path, fail: Fail) -> Error {
        match fail {
            Fail::Invalid(msg) => Error::Invalid(format!("{}: {msg}", self.url(path).display())),
            Fail::Io { err, at, .. } => Error::io(self.url(at.as_deref().unwrap_or(path)), err),
        }
    }

    /// Runs one operation on the shared connection (mounting first if needed). The connection is dropped after a
    /// failure that leaves it unusable, so the next call mounts afresh.
    fn run<T>(&self, path: &Path, op: impl AsyncFnOnce(&mut Conn) -> Result<T, Fail>) -> Result<T> {
        let mut guard = self.conn.lock();
        let result = self.rt.block_on(async {
            let conn = match guard.as_mut() {
                Some(c) => c,
                None => guard.insert(Conn::mount(&self.target).await?),
            };
            op(conn).await
        });
        result.map_err(|fail| {
            if fail.drops_connection() {
                *guard = None;
            }
            self.error(path, fail)
        })
    }
}

fn runtime() -> io::Result<Runtime> {
    tokio::runtime::Builder::new_current_thread().enable_io().enable_time().build()
}

/// The path's components below the export root, as bytes.
fn components(path: &Path) -> Result<Vec<Vec<u8>>, Fail> {
    let mut out = Vec::new();
    for c in path.components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(n) => out.push(n.as_bytes().to_vec()),
            Component::ParentDir | Component::Prefix(_) => {
                return Err(Fail::Invalid("`..` is not allowed in a path inside an NFS export".into()))
            }
        }
    }
    Ok(out)
}

fn mtime_ns(a: &fattr3) -> i64 {
    i64::from(a.mtime.seconds) * 1_000_000_000 + i64::from(a.mtime.nseconds)
}

fn kind_name(t: ftype3) -> &'static str {
    match t {
        ftype3::NF3LNK => "symbolic link, not followed",
        ftype3::NF3FIFO => "named pipe",
        ftype3::NF3SOCK => "socket",
        ftype3::NF3BLK | ftype3::NF3CHR => "device",
        ftype3::NF3REG | ftype3::NF3DIR => "special file",
    }
}

fn some<T: Pack + Unpack>(o: Nfs3Option<T>) -> Option<T> {
    match o {
        Nfs3Option::Some(v) => Some(v),
        Nfs3Option::None => None,
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Errors

/// Why an operation failed, before it gets its path.
enum Fail {
    Io {
        err: io::Error,
        /// The connection is unusable (transport failure, timeout, garbled reply, stale root).
        drop_conn: bool,
        /// The NFS status, when the server answered with one.
        status: Option<nfsstat3>,
        /// A more precise path than the one the operation was called with (scans).
        at: Option<PathBuf>,
    },
    Invalid(String),
}

impl Fail {
    fn io(err: io::Error, drop_conn: bool) -> Fail {
        Fail::Io { err, drop_conn, status: None, at: None }
    }

    fn errno(code: i32, drop_conn: bool) -> Fail {
        Fail::io(io::Error::from_raw_os_error(code), drop_conn)
    }

    fn status(s: nfsstat3) -> Fail {
        let drop_conn = matches!(s, nfsstat3::NFS3ERR_STALE | nfsstat3::NFS3ERR_BADHANDLE);
        Fail::Io { err: io::Error::from_raw_os_error(status_errno(s)), drop_conn, status: Some(s), at: None }
    }

    fn timed_out() -> Fail {
        Fail::errno(libc::ETIMEDOUT, true)
    }

    fn at(self, path: &Path) -> Fail {
        match self {
            Fail::Io { err, drop_conn, status, .. } => {
                Fail::Io { err, drop_conn, status, at: Some(path.to_path_buf()) }
            }
            f => f,
        }
    }

    fn drops_connection(&self) -> bool {
        matches!(self, Fail::Io { drop_conn: true, .. })
    }

    fn has_status(&self, s: nfsstat3) -> bool {
        matches!(self, Fail::Io { status: Some(x), .. } if *x == s)
    }

    fn is_transient(&self) -> bool {
        matches!(self, Fail::Io { err, .. } if io_is_transient(err))
    }

    /// A lookup failure that a stale cached handle could explain.
    fn may_be_stale_path(&self) -> bool {
        matches!(
            self,
            Fail::Io {
                status: Some(
                    nfsstat3::NFS3ERR_NOENT
                        | nfsstat3::NFS3ERR_NOTDIR
                        | nfsstat3::NFS3ERR_STALE
                        | nfsstat3::NFS3ERR_BADHANDLE
                ),
                ..
            }
        )
    }

    fn into_io(self) -> io::Error {
        match self {
            Fail::Io { err, .. } => err,
            Fail::Invalid(msg) => io::Error::new(io::ErrorKind::InvalidInput, msg),
        }
    }
}

impl fmt::Display for Fail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fail::Io { err, status: Some(s), .. } => write!(f, "{err} ({s})"),
            Fail::Io { err, .. } => write!(f, "{err}"),
            Fail::Invalid(msg) => f.write_str(msg),
        }
    }
}

/// NFS status → errno. The POSIX-valued codes keep their errno; the NFS-specific ones become EIO, except stale or
/// bad handles (ESTALE) and JUKEBOX (EAGAIN: the file is being fetched from slow storage).
fn status_errno(s: nfsstat3) -> i32 {
    use nfsstat3 as S;
    match s {
        S::NFS3ERR_PERM => libc::EPERM,
        S::NFS3ERR_NOENT => libc::ENOENT,
        S::NFS3ERR_NXIO => libc::ENXIO,
        S::NFS3ERR_ACCES => libc::EACCES,
        S::NFS3ERR_EXIST => libc::EEXIST,
        S::NFS3ERR_XDEV => libc::EXDEV,
        S::NFS3ERR_NODEV => libc::ENODEV,
        S::NFS3ERR_NOTDIR => libc::ENOTDIR,
        S::NFS3ERR_ISDIR => libc::EISDIR,
        S::NFS3ERR_INVAL => libc::EINVAL,
        S::NFS3ERR_FBIG => libc::EFBIG,
        S::NFS3ERR_NOSPC => libc::ENOSPC,
        S::NFS3ERR_ROFS => libc::EROFS,
        S::NFS3ERR_MLINK => libc::EMLINK,
        S::NFS3ERR_NAMETOOLONG => libc::ENAMETOOLONG,
        S::NFS3ERR_NOTEMPTY => libc::ENOTEMPTY,
        S::NFS3ERR_DQUOT => libc::EDQUOT,
        S::NFS3ERR_STALE | S::NFS3ERR_BADHANDLE => libc::ESTALE,
        S::NFS3ERR_JUKEBOX => libc::EAGAIN,
        S::NFS3_OK
        | S::NFS3ERR_IO
        | S::NFS3ERR_REMOTE
        | S::NFS3ERR_NOT_SYNC
        | S::NFS3ERR_BAD_COOKIE
        | S::NFS3ERR_NOTSUPP
        | S::NFS3ERR_TOOSMALL
        | S::NFS3ERR_SERVERFAULT
        | S::NFS3ERR_BADTYPE => libc::EIO,
    }
}

fn mount_errno(s: mountstat3) -> i32 {
    use mountstat3 as M;
    match s {
        M::MNT3ERR_PERM => libc::EPERM,
        M::MNT3ERR_NOENT => libc::ENOENT,
        M::MNT3ERR_ACCES => libc::EACCES,
        M::MNT3ERR_NOTDIR => libc::ENOTDIR,
        M::MNT3ERR_INVAL => libc::EINVAL,
        M::MNT3ERR_NAMETOOLONG => libc::ENAMETOOLONG,
        M::MNT3ERR_NOTSUPP => libc::EOPNOTSUPP,
        M::MNT3_OK | M::MNT3ERR_IO | M::MNT3ERR_SERVERFAULT => libc::EIO,
    }
}

/// A transport error keeps its errno (ECONNREFUSED, ECONNRESET, ...) or its UnexpectedEof kind; anything else
/// without an errno becomes ECONNABORTED so that it reads as a dropped connection.
fn net_io(e: io::Error) -> io::Error {
    if e.raw_os_error().is_some() || e.kind() == io::ErrorKind::UnexpectedEof {
        return e;
    }
    let code = match e.kind() {
        io::ErrorKind::ConnectionRefused => libc::ECONNREFUSED,
        io::ErrorKind::ConnectionReset => libc::ECONNRESET,
        io::ErrorKind::BrokenPipe | io::ErrorKind::WriteZero => libc::EPIPE,
        io::ErrorKind::NotConnected => libc::ENOTCONN,
        io::ErrorKind::TimedOut => libc::ETIMEDOUT,
        io::ErrorKind::InvalidInput => return e,
        _ => libc::ECONNABORTED,
    };
    io::Error::from_raw_os_error(code)
}

fn rpc_fail(e: RpcError) -> Fail {
    match e {
        RpcError::Io(e) => Fail::io(net_io(e), true),
        // Rejected credentials: permanent.
        RpcError::Auth(_) => Fail::errno(libc::EACCES, false),
        // The port does not serve NFSv3 / MOUNTv3: a configuration error, not a transient one.
        RpcError::RpcMismatch { .. }
        | RpcError::ProgUnavail
        | RpcError::ProgMismatch { .. }
        | RpcError::ProcUnavail => Fail::errno(libc::EPROTONOSUPPORT, true),
        RpcError::GarbageArgs => Fail::errno(libc::EINVAL, false),
        RpcError::SystemErr => Fail::errno(libc::EIO, false),
        // A reply that does not parse or does not belong to the call: the stream cannot be trusted any more.
        RpcError::Xdr(_)
        | RpcError::WrongLength
        | RpcError::UnexpectedXid
        | RpcError::NotFullyParsed { .. }
        | RpcError::UnexpectedCall
        | RpcError::FragmentedReply => Fail::errno(libc::EPROTO, true),
    }
}

fn connect_fail(e: ConnectError) -> Fail {
    match e {
        ConnectError::Io(e) => Fail::io(net_io(e), true),
        ConnectError::Mount(MountError::Rpc(e)) | ConnectError::Portmap(PortmapError::Rpc(e)) => rpc_fail(e),
        ConnectError::Mount(MountError::Denied(s)) => Fail::errno(mount_errno(s), true),
        ConnectError::Portmap(_) => Fail::errno(libc::ECONNREFUSED, true),
    }
}

/// One RPC under the timeout, with its NFS status turned into a `Fail`.
async fn rpc<T, E>(
    timeout: Duration,
    fut: impl Future<Output = Result<Nfs3Result<T, E>, RpcError>>,
) -> Result<T, Fail> {
    match tokio::time::timeout(timeout, fut).await {
        Err(_) => Err(Fail::timed_out()),
        Ok(Err(e)) => Err(rpc_fail(e)),
        Ok(Ok(Nfs3Result::Ok(v))) => Ok(v),
        Ok(Ok(Nfs3Result::Err((s, _)))) => Err(Fail::status(s)),
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Transport

/// A TCP stream whose 0-byte read is an error: the stock connector loops forever on a closed socket.
struct Stream(TcpStream);

impl AsyncRead for Stream {
    async fn async_read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = tokio::io::AsyncReadExt::read(&mut self.0, buf).await?;
        if n == 0 && !buf.is_empty() {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the NFS server closed the connection"));
        }
        Ok(n)
    }
}

impl AsyncWrite for Stream {
    async fn async_write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = tokio::io::AsyncWriteExt::write(&mut self.0, buf).await?;
        if n == 0 && !buf.is_empty() {
            return Err(io::Error::from_raw_os_error(libc::EPIPE));
        }
        Ok(n)
    }
}

struct EofConnector;

impl Connector for EofConnector {
    type Connection = Stream;

    async fn connect(&self, addr: SocketAddr) -> io::Result<Stream> {
        let s = TcpStream::connect(addr).await?;
        s.set_nodelay(true)?;
        Ok(Stream(s))
    }

    async fn connect_with_port(&self, addr: SocketAddr, local_port: u16) -> io::Result<Stream> {
        let (socket, local) = match addr {
            SocketAddr::V4(_) => (TcpSocket::new_v4()?, SocketAddr::new(IpAddr::from([0u8; 4]), local_port)),
            SocketAddr::V6(_) => (TcpSocket::new_v6()?, SocketAddr::new(IpAddr::from([0u16; 8]), local_port)),
        };
        socket.bind(local)?;
        let s = socket.connect(addr).await?;
        s.set_nodelay(true)?;
        Ok(Stream(s))
    }
}

type Client = Nfs3Client<Stream>;

/// Mounts the export (MOUNT then a second TCP connection for NFS) under the timeout.
async fn mount(t: &Target) -> Result<(Client, nfs_fh3), Fail> {
    let cred = opaque_auth::auth_unix(&auth_unix {
        stamp: 0,
        machinename: Opaque::owned(b"nightfox".to_vec()),
        uid: t.uid,
        gid: t.gid,
        gids: vec![],
    });
    let builder = Nfs3ConnectionBuilder::new(EofConnector, t.ip.to_string(), &t.export)
        .mount_port(t.mount_port)
        .nfs3_port(t.port)
        .connect_from_privileged_port(false)
        .credential(cred);
    match tokio::time::timeout(t.timeout, builder.mount()).await {
        Err(_) => Err(Fail::timed_out()),
        Ok(Err(e)) => Err(connect_fail(e)),
        Ok(Ok(c)) => {
            let root = c.root_nfs_fh3();
            // The MOUNT connection is not needed after MNT (UMNT is advisory).
            Ok((c.into_nfs3_client(), root))
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// The shared connection

/// A directory entry as listed, before its attributes are completed.
struct Child {
    name: Vec<u8>,
    fh: Option<nfs_fh3>,
    attr: Option<fattr3>,
}

struct Conn {
    client: Client,
    root: nfs_fh3,
    timeout: Duration,
    /// Directory handles by path below the root (components joined with `/`).
    dirs: HashMap<Vec<u8>, nfs_fh3>,
}

impl Conn {
    async fn mount(t: &Target) -> Result<Conn, Fail> {
        let (client, root) = mount(t).await?;
        Ok(Conn { client, root, timeout: t.timeout, dirs: HashMap::new() })
    }

    async fn lookup(&mut self, dir: &nfs_fh3, name: &[u8]) -> Result<(nfs_fh3, Option<fattr3>), Fail> {
        let args =
            nfs::LOOKUP3args { what: nfs::diropargs3 { dir: dir.clone(), name: filename3(Opaque::borrowed(name)) } };
        let ok = rpc(self.timeout, self.client.lookup(&args)).await?;
        Ok((ok.object, some(ok.obj_attributes)))
    }

    async fn getattr(&mut self, fh: &nfs_fh3) -> Result<fattr3, Fail> {
        let args = nfs::GETATTR3args { object: fh.clone() };
        Ok(rpc(self.timeout, self.client.getattr(&args)).await?.obj_attributes)
    }

    /// The handle of a path, walking from the longest cached directory prefix.
    async fn walk_path(&mut self, comps: &[Vec<u8>], use_cache: bool) -> Result<nfs_fh3, Fail> {
        let mut fh = self.root.clone();
        let mut start = 0;
        if use_cache {
            for i in (1..=comps.len()).rev() {
                if let Some(h) = self.dirs.get(&comps[..i].join(&b'/')) {
                    fh = h.clone();
                    start = i;
                    break;
                }
            }
        }
        for i in start..comps.len() {
            let (h, attr) = self.lookup(&fh, &comps[i]).await?;
            fh = h;
            if attr.is_some_and(|a| a.type_ == ftype3::NF3DIR) {
                if self.dirs.len() >= CACHE_MAX {
                    self.dirs.clear();
                }
                self.dirs.insert(comps[..=i].join(&b'/'), fh.clone());
            }
        }
        Ok(fh)
    }

    /// The handle of a path; a failure that a stale cached handle could explain is retried without the cache.
    async fn resolve(&mut self, comps: &[Vec<u8>]) -> Result<nfs_fh3, Fail> {
        let cached = !self.dirs.is_empty();
        match self.walk_path(comps, true).await {
            Err(f) if cached && f.may_be_stale_path() => {
                self.dirs.clear();
                self.walk_path(comps, false).await
            }
            r => r,
        }
    }

    /// Forgets cached handles at or below a path (after a remove or rename).
    fn forget(&mut self, comps: &[Vec<u8>]) {
        let key = comps.join(&b'/');
        self.dirs.retain(|k, _| !(k == &key || (k.starts_with(&key) && k.get(key.len()) == Some(&b'/'))));
    }

    /// Every entry of a directory except `.` and `..`, sorted by name (READDIRPLUS, or READDIR where the server
    /// does not support it).
    async fn list(&mut self, dir: &nfs_fh3) -> Result<Vec<Child>, Fail> {
        let mut out = match self.list_plus(dir).await {
            Err(f) if f.has_status(nfsstat3::NFS3ERR_NOTSUPP) => self.list_plain(dir).await?,
            r => r?,
        };
        out.retain(|c| c.name != b"." && c.name != b"..");
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    async fn list_plus(&mut self, dir: &nfs_fh3) -> Result<Vec<Child>, Fail> {
        let mut out = Vec::new();
        let mut cookie = 0;
        let mut cookieverf = nfs::cookieverf3::default();
        loop {
            let args = nfs::READDIRPLUS3args {
                dir: dir.clone(),
                cookie,
                cookieverf,
                dircount: DIR_COUNT,
                maxcount: DIR_MAXCOUNT,
            };
            let ok = rpc(self.timeout, self.client.readdirplus(&args)).await?;
            let entries = ok.reply.entries.into_inner();
            let eof = ok.reply.eof;
            let last = entries.last().map(|e| e.cookie);
            for e in entries {
                out.push(Child { name: e.name.0.into_owned(), fh: some(e.name_handle), attr: some(e.name_attributes) });
            }
            match (eof, last) {
                (true, _) => return Ok(out),
                (false, Some(c)) => cookie = c,
                (false, None) => return Err(Fail::errno(libc::EIO, false)),
            }
            cookieverf = ok.cookieverf;
        }
    }

    async fn list_plain(&mut self, dir: &nfs_fh3) -> Result<Vec<Child>, Fail> {
        let mut out = Vec::new();
        let mut cookie = 0;
        let mut cookieverf = nfs::cookieverf3::default();
        loop {
            let args = nfs::READDIR3args { dir: dir.clone(), cookie, cookieverf, count: DIR_MAXCOUNT };
            let ok = rpc(self.timeout, self.client.readdir(&args)).await?;
            let entries = ok.reply.entries.into_inner();
            let eof = ok.reply.eof;
            let last = entries.last().map(|e| e.cookie);
            for e in entries {
                out.push(Child { name: e.name.0.into_owned(), fh: None, attr: None });
            }
            match (eof, last) {
                (true, _) => return Ok(out),
                (false, Some(c)) => cookie = c,
                (false, None) => return Err(Fail::errno(libc::EIO, false)),
            }
            cookieverf = ok.cookieverf;
        }
    }

    /// Attributes of a listed child (and its handle, needed for folders), looked up where the listing did not
    /// carry them.
    async fn complete(&mut self, dir: &nfs_fh3, child: Child) -> Result<(Option<nfs_fh3>, fattr3), Fail> {
        match (child.fh, child.attr) {
            (fh, Some(attr)) if fh.is_some() || attr.type_ != ftype3::NF3DIR => Ok((fh, attr)),
            _ => {
                let (fh, attr) = self.lookup(dir, &child.name).await?;
                let attr = match attr {
                    Some(a) => a,
                    None => self.getattr(&fh).await?,
                };
                Ok((Some(fh), attr))
            }
        }
    }

    /// Lists a directory onto the walk stack, or records it as unreadable (transient failures end the scan).
    async fn descend(
        &mut self,
        fh: nfs_fh3,
        path: PathBuf,
        rel: PathBuf,
        stack: &mut Vec<Frame>,
        out: &mut Vec<SourceEntry>,
    ) -> Result<(), Fail> {
        match self.list(&fh).await {
            Ok(children) => stack.push(Frame { fh, path, rel, children: children.into_iter() }),
            Err(f) if f.is_transient() => return Err(f.at(&path)),
            Err(f) => {
                out.push(SourceEntry { path, rel, kind: EntryKind::Unreadable(format!("cannot read folder: {f}")) })
            }
        }
        Ok(())
    }

    /// Depth-first walk in sorted order, like the local source.
    async fn walk(&mut self, fh: nfs_fh3, root: &Path, out: &mut Vec<SourceEntry>) -> Result<(), Fail> {
        let mut stack = Vec::new();
        self.descend(fh, root.to_path_buf(), PathBuf::new(), &mut stack, out).await?;
        while let Some(top) = stack.last_mut() {
            let Some(child) = top.children.next() else {
                stack.pop();
                continue;
            };
            let name = OsStr::from_bytes(&child.name);
            let path = top.path.join(name);
            let rel = top.rel.join(name);
            let dir = top.fh.clone();
            let (fh, attr) = match self.complete(&dir, child).await {
                Ok(v) => v,
                Err(f) if f.is_transient() => return Err(f.at(&path)),
                Err(f) => {
                    out.push(SourceEntry { path, rel, kind: EntryKind::Unreadable(f.to_string()) });
                    continue;
                }
            };
            let kind = match (attr.type_, fh) {
                (ftype3::NF3DIR, Some(fh)) => {
                    self.descend(fh, path, rel, &mut stack, out).await?;
                    continue;
                }
                (ftype3::NF3DIR, None) => EntryKind::Unreadable("the server gave no handle for this folder".into()),
                (ftype3::NF3REG, _) => EntryKind::File { size: attr.size, mtime_ns: mtime_ns(&attr) },
                (t, _) => EntryKind::Skipped(kind_name(t).to_string()),
            };
            out.push(SourceEntry { path, rel, kind });
        }
        Ok(())
    }

    async fn scan_root(&mut self, root: &Path, comps: &[Vec<u8>], out: &mut Vec<SourceEntry>) -> Result<(), Fail> {
        let fh = self.resolve(comps).await?;
        let attr = self.getattr(&fh).await?;
        match attr.type_ {
            ftype3::NF3DIR => self.walk(fh, root, out).await,
            ftype3::NF3REG => {
                let name = root.file_name().map(PathBuf::from).unwrap_or_else(|| root.to_path_buf());
                out.push(SourceEntry {
                    path: root.to_path_buf(),
                    rel: name,
                    kind: EntryKind::File { size: attr.size, mtime_ns: mtime_ns(&attr) },
                });
                Ok(())
            }
            t => Err(Fail::Invalid(format!("not a file or folder ({})", kind_name(t)))),
        }
    }

    /// Makes one directory (or finds it made by someone else meanwhile).
    async fn mkdir(&mut self, dir: &nfs_fh3, name: &[u8]) -> Result<nfs_fh3, Fail> {
        let args = nfs::MKDIR3args {
            where_: nfs::diropargs3 { dir: dir.clone(), name: filename3(Opaque::borrowed(name)) },
            attributes: nfs::sattr3 { mode: Nfs3Option::Some(DIR_MODE), ..Default::default() },
        };
        match rpc(self.timeout, self.client.mkdir(&args)).await {
            Ok(ok) => match some(ok.obj) {
                Some(fh) => Ok(fh),
                None => Ok(self.lookup(dir, name).await?.0),
            },
            Err(f) if f.has_status(nfsstat3::NFS3ERR_EXIST) => {
                let (fh, attr) = self.lookup(dir, name).await?;
                match attr {
                    Some(a) if a.type_ != ftype3::NF3DIR => Err(f),
                    _ => Ok(fh),
                }
            }
            Err(f) => Err(f),
        }
    }
}

struct Frame {
    fh: nfs_fh3,
    path: PathBuf,
    rel: PathBuf,
    children: std::vec::IntoIter<Child>,
}

/// Splits off the last component (the name inside its parent); the export root has none.
fn split_last(comps: &[Vec<u8>]) -> Result<(&[Vec<u8>], &[u8]), Fail> {
    match comps.split_last() {
        Some((name, parent)) => Ok((parent, name)),
        None => Err(Fail::Invalid("the export root cannot be removed or renamed".into())),
    }
}

impl Source for NfsSource {
    fn describe(&self) -> String {
        format!("{}{}", self.base, self.target.export)
    }

    fn scan(&self, roots: &[PathBuf]) -> Result<Vec<SourceEntry>> {
        let mut out = Vec::new();
        for root in roots {
            let comps = components(root).map_err(|f| self.error(root, f))?;
            self.run(root, async |c: &mut Conn| c.scan_root(root, &comps, &mut out).await)?;
        }
        Ok(out)
    }

    fn stat(&self, path: &Path) -> Result<FileMeta> {
        let comps = components(path).map_err(|f| self.error(path, f))?;
        self.run(path, async |c: &mut Conn| {
            let fh = c.resolve(&comps).await?;
            let a = c.getattr(&fh).await?;
            Ok(FileMeta { size: a.size, mtime_ns: mtime_ns(&a) })
        })
    }

    fn open_at(&self, path: &Path, offset: u64) -> Result<Box<dyn Read + Send>> {
        let comps = components(path).map_err(|f| self.error(path, f))?;
        let fh = self.run(path, async |c: &mut Conn| {
            let fh = c.resolve(&comps).await?;
            match c.getattr(&fh).await?.type_ {
                ftype3::NF3REG => Ok(fh),
                ftype3::NF3DIR => Err(Fail::errno(libc::EISDIR, false)),
                t => Err(Fail::Invalid(format!("not a regular file ({})", kind_name(t)))),
            }
        })?;
        // A connection of its own, so that readers on several threads do not queue behind one another.
        let rt = runtime().map_err(|e| Error::io(self.url(path), e))?;
        let client = rt.block_on(mount(&self.target)).map_err(|f| self.error(path, f))?.0;
        Ok(Box::new(NfsReader {
            rt,
            target: self.target.clone(),
            client: Some(client),
            fh,
            offset,
            buf: Vec::new(),
            pos: 0,
            eof: false,
        }))
    }

    fn remove(&self, path: &Path) -> Result<()> {
        let comps = components(path).map_err(|f| self.error(path, f))?;
        let (parent, name) = split_last(&comps).map_err(|f| self.error(path, f))?;
        self.run(path, async |c: &mut Conn| {
            let dir = c.resolve(parent).await?;
            let args = nfs::REMOVE3args { object: nfs::diropargs3 { dir, name: filename3(Opaque::borrowed(name)) } };
            let r = rpc(c.timeout, c.client.remove(&args)).await;
            c.forget(&comps);
            r.map(|_| ())
        })
    }

    fn rename(&self, from: &Path, to: &Path) -> Result<()> {
        let from_comps = components(from).map_err(|f| self.error(from, f))?;
        let to_comps = components(to).map_err(|f| self.error(to, f))?;
        let (from_parent, from_name) = split_last(&from_comps).map_err(|f| self.error(from, f))?;
        let (to_parent, to_name) = split_last(&to_comps).map_err(|f| self.error(to, f))?;
        self.run(to, async |c: &mut Conn| {
            let from_dir = c.resolve(from_parent).await.map_err(|f| f.at(from))?;
            let to_dir = c.resolve(to_parent).await?;
            let args = nfs::RENAME3args {
                from: nfs::diropargs3 { dir: from_dir, name: filename3(Opaque::borrowed(from_name)) },
                to: nfs::diropargs3 { dir: to_dir, name: filename3(Opaque::borrowed(to_name)) },
            };
            let r = rpc(c.timeout, c.client.rename(&args)).await;
            c.forget(&from_comps);
            c.forget(&to_comps);
            r.map(|_| ())
        })
    }

    fn create_dir_all(&self, path: &Path) -> Result<()> {
        let comps = components(path).map_err(|f| self.error(path, f))?;
        self.run(path, async |c: &mut Conn| {
            let mut fh = c.root.clone();
            for name in &comps {
                fh = match c.lookup(&fh, name).await {
                    Ok((_, Some(a))) if a.type_ != ftype3::NF3DIR => {
                        return Err(Fail::status(nfsstat3::NFS3ERR_NOTDIR))
                    }
                    Ok((h, _)) => h,
                    Err(f) if f.has_status(nfsstat3::NFS3ERR_NOENT) => c.mkdir(&fh, name).await?,
                    Err(f) => return Err(f),
                };
            }
            Ok(())
        })
    }

    fn reconnect(&self) {
        *self.conn.lock() = None;
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Reading

/// Sequential reader of one file: 1 MiB READs from an offset until the server says EOF. Owns its connection; after
/// a failure that breaks it, the next `read` mounts again (a caller that prefers can reopen with `open_at` instead).
struct NfsReader {
    rt: Runtime,
    target: Target,
    client: Option<Client>,
    fh: nfs_fh3,
    offset: u64,
    buf: Vec<u8>,
    pos: usize,
    eof: bool,
}

impl NfsReader {
    fn fill(&mut self) -> io::Result<()> {
        let NfsReader { rt, target, client, fh, offset, .. } = self;
        let result = rt.block_on(async {
            let c = match client.as_mut() {
                Some(c) => c,
                None => client.insert(mount(target).await?.0),
            };
            let args = nfs::READ3args { file: fh.clone(), offset: *offset, count: READ_SIZE };
            rpc(target.timeout, c.read(&args)).await
        });
        match result {
            Ok(ok) => {
                let data = ok.data.into_owned();
                // An empty reply without EOF would loop forever: treat it as the end (callers compare sizes).
                self.eof = ok.eof || data.is_empty();
                self.offset += data.len() as u64;
                self.buf = data;
                self.pos = 0;
                Ok(())
            }
            Err(f) => {
                if f.drops_connection() {
                    self.client = None;
                }
                Err(f.into_io())
            }
        }
    }
}

impl Read for NfsReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        if self.pos >= self.buf.len() {
            if self.eof {
                return Ok(0);
            }
            self.fill()?;
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}
