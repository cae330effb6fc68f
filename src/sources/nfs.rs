//! NFSv3 exports, read with the pure-Rust `nfs3_client` over TCP. The host may be a name (resolved at each mount,
//! every address tried in turn) or an IP literal. The MOUNT and NFS ports are asked of the server's portmapper
//! (rpcbind, port 111) unless the URL gives them; a URL with one port but no `mount_port` also reaches servers
//! without a portmapper (MOUNT on that port too). Connections to MOUNT and NFS come from a privileged source port
//! (600-1023) when the process may bind one (root), as `secure` exports demand; otherwise from any port, and a
//! refusal at mount then says so. AUTH_SYS carries the configured uid/gid (default: the process's). A server
//! without NFSv3 (NFSv4 only) is a clear error. The source owns a small tokio runtime and one lazily mounted
//! connection for lookups, scans and changes; every opened file reads through an NFS connection (and runtime) of its
//! own to the address and port the mount found, so that several workers read in parallel; a reader's working
//! connection is kept in a small pool for the next file (so that a card of many small files does not use up the
//! few privileged ports with connections in TIME_WAIT). Every RPC, and every mount, is bounded by the configured
//! timeout; after a timeout or a transport failure the connection is dropped (its RPC framing can no longer be
//! trusted) and the next call mounts afresh (a pooled connection the server closed meanwhile is replaced at its
//! first read). NFS status codes become errnos, so that `Error::is_transient` can tell a dropped or hung server
//! (retry) from a missing file or a refused mount (fail). Paths are absolute inside the export (`/` is the export root) and are resolved with
//! LOOKUP per component, with a small cache of directory handles. The source must not be used (or dropped) from
//! inside an async runtime.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fmt;
use std::future::Future;
use std::io::{self, Read};
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use nfs3_client::io::{AsyncRead, AsyncWrite};
use nfs3_client::nfs3_types::mount::{self as mnt, dirpath, mountstat3};
use nfs3_client::nfs3_types::nfs3::{
    self as nfs, fattr3, filename3, ftype3, nfs_fh3, nfsstat3, Nfs3Option, Nfs3Result,
};
use nfs3_client::nfs3_types::portmap;
use nfs3_client::nfs3_types::rpc::{auth_unix, opaque_auth};
use nfs3_client::nfs3_types::xdr_codec::{Opaque, Pack, Unpack};
use nfs3_client::{MountClient, MountError, Nfs3Client, PortmapError, PortmapperClient, RpcError};
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
/// Idle reader connections kept for the next opened file.
const POOL_MAX: usize = 8;
/// The directory-handle cache is cleared when it grows past this.
const CACHE_MAX: usize = 4096;
/// Mode of directories made by `create_dir_all`.
const DIR_MODE: u32 = 0o755;

/// The NFS port servers use (and the one tried when a server has no portmapper and the URL gives no port).
pub const NFS_PORT: u16 = 2049;
/// How long the portmapper may take to answer when a port to fall back on is known.
const PORTMAP_PROBE: Duration = Duration::from_secs(5);
/// The privileged source ports tried (the range the Linux kernel client uses starts at 665; glibc's
/// `bindresvport` at 600).
const PRIVILEGED_PORTS: std::ops::RangeInclusive<u16> = 600..=1023;

/// Where an NFS export is and how long one RPC may take.
#[derive(Clone, Debug)]
pub struct NfsConfig {
    /// The server: a host name (resolved at each mount; every address is tried) or an IP literal (IPv6 without
    /// brackets).
    pub host: String,
    /// NFS port; 0 = ask the portmapper (2049 when there is none).
    pub port: u16,
    /// MOUNT port; `None` = ask the portmapper, or use `port` when the portmapper cannot tell (a server without
    /// one, or one that does not list NFSv3 at `port`).
    pub mount_port: Option<u16>,
    /// The export path as the server names it, e.g. `/footage`.
    pub export: String,
    /// Bound on every single RPC (and on each mount).
    pub timeout: Duration,
}

/// Everything needed to mount, shared by the source and its readers.
#[derive(Clone, Debug)]
struct Target {
    host: String,
    /// 0 = ask the portmapper.
    port: u16,
    mount_port: Option<u16>,
    export: String,
    timeout: Duration,
    uid: u32,
    gid: u32,
}

/// An NFSv3 export as a footage source. `Send + Sync`; connects on first use.
pub struct NfsSource {
    target: Target,
    /// `nfs://host[:port]` (IPv6 in brackets).
    base: String,
    rt: Runtime,
    conn: Mutex<Option<Conn>>,
    /// Reader connections whose file was read (or dropped), for the next `open_at`.
    pool: Pool,
}

/// An idle reader connection with its runtime (its socket belongs to that runtime's reactor).
struct Pooled {
    rt: Runtime,
    client: Client,
    addr: SocketAddr,
}

type Pool = std::sync::Arc<Mutex<Vec<Pooled>>>;

impl NfsSource {
    /// No network I/O here (not even name resolution); connects on first use. AUTH_SYS carries the process's
    /// effective uid and gid unless [`NfsSource::with_identity`] names others.
    pub fn new(cfg: NfsConfig) -> Result<NfsSource> {
        let host = cfg.host.trim().trim_start_matches('[').trim_end_matches(']').to_string();
        let bad_v6 = host.contains(':') && host.parse::<std::net::Ipv6Addr>().is_err();
        if bad_v6 || host.is_empty() || host.contains(|c: char| c.is_whitespace() || "/?#@".contains(c)) {
            return Err(Error::Invalid(format!("NFS host must be a host name or an IP address, not {:?}", cfg.host)));
        }
        if !cfg.export.starts_with('/') {
            return Err(Error::Invalid(format!(
                "NFS export must be an absolute path such as /footage, not {:?}",
                cfg.export
            )));
        }
        if cfg.mount_port == Some(0) {
            return Err(Error::Invalid("NFS mount_port must not be 0".into()));
        }
        if cfg.timeout.is_zero() {
            return Err(Error::Invalid("NFS timeout must be more than zero".into()));
        }
        let shown = if host.contains(':') { format!("[{host}]") } else { host.clone() };
        let base = match cfg.port {
            0 => format!("nfs://{shown}"),
            p => format!("nfs://{shown}:{p}"),
        };
        let rt = runtime().map_err(|e| Error::io(format!("{base}{}", cfg.export), e))?;
        let (uid, gid) = (rustix::process::geteuid().as_raw(), rustix::process::getegid().as_raw());
        let target = Target {
            host,
            port: cfg.port,
            mount_port: cfg.mount_port,
            export: cfg.export,
            timeout: cfg.timeout,
            uid,
            gid,
        };
        Ok(NfsSource { target, base, rt, conn: Mutex::new(None), pool: Pool::default() })
    }

    /// The AUTH_SYS identity sent with every call (`?uid=N&gid=N` in a source URL): what the server checks file
    /// permissions against (unless it squashes it).
    pub fn with_identity(mut self, uid: u32, gid: u32) -> NfsSource {
        self.target.uid = uid;
        self.target.gid = gid;
        *self.conn.get_mut() = None;
        self.pool.lock().clear();
        self
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

    /// An error of its own words (refusals explained, names that do not resolve), transient or not by its kind.
    fn message(kind: io::ErrorKind, msg: String) -> Fail {
        Fail::io(io::Error::new(kind, msg), true)
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

    fn is_timeout(&self) -> bool {
        matches!(self, Fail::Io { err, .. } if err.raw_os_error() == Some(libc::ETIMEDOUT))
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
        // Rejected credentials (a `secure` export refuses unprivileged ports this way too): permanent.
        RpcError::Auth(stat) => Fail::Io {
            err: io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("the server refused the credentials ({stat})"),
            ),
            drop_conn: false,
            status: None,
            at: None,
        },
        // The port does not serve NFSv3 / MOUNTv3: a configuration error, not a transient one.
        RpcError::RpcMismatch { .. }
        | RpcError::ProgUnavail
        | RpcError::ProgMismatch { .. }
        | RpcError::ProcUnavail => Fail::message(io::ErrorKind::Unsupported, format!("the server answered: {e}")),
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

type Client = Nfs3Client<Stream>;

/// Set once binding a privileged port was refused (not root, no CAP_NET_BIND_SERVICE): not tried again.
static UNPRIVILEGED: AtomicBool = AtomicBool::new(false);
/// Where the next privileged-port search starts, so that connections made one after the other do not all try
/// the ports just used.
static NEXT_PORT: AtomicU32 = AtomicU32::new(0);

fn socket_for(addr: SocketAddr) -> io::Result<(TcpSocket, IpAddr)> {
    Ok(match addr {
        SocketAddr::V4(_) => (TcpSocket::new_v4()?, IpAddr::from([0u8; 4])),
        SocketAddr::V6(_) => (TcpSocket::new_v6()?, IpAddr::from([0u16; 8])),
    })
}

fn stream(s: TcpStream) -> io::Result<Stream> {
    s.set_nodelay(true)?;
    Ok(Stream(s))
}

/// A TCP connection from any source port (the portmapper, and servers when no privileged port can be bound).
async fn connect_any(addr: SocketAddr) -> io::Result<Stream> {
    stream(TcpStream::connect(addr).await?)
}

/// A TCP connection from a privileged source port, trying the ports of [`PRIVILEGED_PORTS`] in turn from a
/// varying start (there are only a few hundred: readers' connections are pooled, so that files opened one after
/// the other do not leave a port each in TIME_WAIT). EACCES/EPERM when this process may not bind one.
async fn connect_privileged(addr: SocketAddr) -> io::Result<Stream> {
    let (lo, hi) = (u32::from(*PRIVILEGED_PORTS.start()), u32::from(*PRIVILEGED_PORTS.end()));
    let n = hi - lo + 1;
    let start = NEXT_PORT.fetch_add(1, Ordering::Relaxed).wrapping_add(std::process::id().wrapping_mul(7919));
    for i in 0..n {
        let port = u16::try_from(lo + (start.wrapping_add(i) % n)).unwrap_or(*PRIVILEGED_PORTS.end());
        let (socket, any) = socket_for(addr)?;
        // A port in TIME_WAIT (towards this or another server) may be bound again: connect() refuses only the
        // very same connection (EADDRNOTAVAIL), and the next port is tried.
        socket.set_reuseaddr(true)?;
        match socket.bind(SocketAddr::new(any, port)) {
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => continue,
            Err(e) => return Err(e),
            Ok(()) => {}
        }
        match socket.connect(addr).await {
            Err(e) if e.kind() == io::ErrorKind::AddrInUse || e.raw_os_error() == Some(libc::EADDRNOTAVAIL) => {}
            Err(e) => return Err(e),
            Ok(s) => {
                NEXT_PORT.fetch_add(i, Ordering::Relaxed);
                return stream(s);
            }
        }
    }
    Err(io::Error::new(
        io::ErrorKind::ResourceBusy,
        format!("every privileged source port ({lo}-{hi}) is in use; try again later"),
    ))
}

/// A connection to a MOUNT or NFS port: from a privileged port where this process may bind one. Also says
/// whether it is.
async fn connect(addr: SocketAddr) -> io::Result<(Stream, bool)> {
    if !UNPRIVILEGED.load(Ordering::Relaxed) {
        match connect_privileged(addr).await {
            Ok(s) => return Ok((s, true)),
            Err(e) if matches!(e.raw_os_error(), Some(libc::EACCES | libc::EPERM)) => {
                UNPRIVILEGED.store(true, Ordering::Relaxed)
            }
            Err(e) => return Err(e),
        }
    }
    Ok((connect_any(addr).await?, false))
}

/// Runs a future under the timeout.
async fn bounded<T>(timeout: Duration, fut: impl Future<Output = Result<T, Fail>>) -> Result<T, Fail> {
    tokio::time::timeout(timeout, fut).await.unwrap_or_else(|_| Err(Fail::timed_out()))
}

/// The server's addresses: an IP literal as it is, a name resolved (blocking, on a thread of its own so that a
/// slow resolver is bounded by the timeout too). A name that does not resolve is EHOSTUNREACH-like (transient: a
/// NAS announced by mDNS disappears while it is off), with the resolver's reason.
async fn resolve(host: &str, timeout: Duration) -> Result<Vec<IpAddr>, Fail> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![ip]);
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    let name = host.to_string();
    std::thread::Builder::new()
        .name("nfs-resolve".into())
        .spawn(move || {
            let _ = tx.send((name.as_str(), 0).to_socket_addrs().map(|a| a.map(|a| a.ip()).collect::<Vec<_>>()));
        })
        .map_err(|e| Fail::io(e, true))?;
    let found = match tokio::time::timeout(timeout, rx).await {
        Err(_) => return Err(Fail::message(io::ErrorKind::TimedOut, format!("resolving {host:?} timed out"))),
        Ok(Err(_)) => Err(io::Error::other("the resolver thread ended")),
        Ok(Ok(r)) => r,
    };
    let mut ips = Vec::new();
    for ip in
        found.map_err(|e| Fail::message(io::ErrorKind::HostUnreachable, format!("cannot resolve {host:?}: {e}")))?
    {
        if !ips.contains(&ip) {
            ips.push(ip);
        }
    }
    if ips.is_empty() {
        return Err(Fail::message(io::ErrorKind::HostUnreachable, format!("{host:?} resolves to no address")));
    }
    Ok(ips)
}

/// What the server's portmapper lists: the TCP ports of MOUNT v3 and NFS v3 (`None`: not registered).
async fn portmap(ip: IpAddr) -> Result<(Option<u16>, Option<u16>), Fail> {
    let io = connect_any(SocketAddr::new(ip, portmap::PMAP_PORT)).await.map_err(|e| Fail::io(net_io(e), true))?;
    let mut pm = PortmapperClient::new(io);
    let mut get = async |prog, vers| match pm.getport(prog, vers, portmap::IPPROTO_TCP).await {
        Ok(port) => Ok(Some(port)),
        Err(PortmapError::ProgramUnavailable | PortmapError::InvalidPortValue(_)) => Ok(None),
        Err(PortmapError::Rpc(e)) => Err(rpc_fail(e)),
    };
    let nfs = get(nfs::PROGRAM, nfs::VERSION).await?;
    let mount = get(mnt::PROGRAM, mnt::VERSION).await?;
    Ok((mount, nfs))
}

/// The MOUNT and NFS ports to use at one address: the URL's where it gives both, else the portmapper's. With a
/// port given and no `mount_port`, MOUNT is on that port too unless the portmapper lists NFSv3 at it (then its
/// MOUNT is the same server's); with no port, a server without a portmapper is tried at 2049.
async fn ports(t: &Target, ip: IpAddr) -> Result<(u16, u16), Fail> {
    let given = (t.port != 0).then_some(t.port);
    if let (Some(port), Some(mount)) = (given, t.mount_port) {
        return Ok((mount, port));
    }
    let fallback = given.or(t.mount_port).is_some();
    let probe = if fallback { t.timeout.min(PORTMAP_PROBE) } else { t.timeout };
    match (given, bounded(probe, portmap(ip)).await) {
        (Some(p), Ok((Some(m), Some(nfs)))) if nfs == p => Ok((m, p)),
        (Some(p), _) => Ok((p, p)),
        (None, Ok((m, Some(nfs)))) => match t.mount_port.or(m) {
            Some(m) => Ok((m, nfs)),
            None => Err(no_v3(t, "its portmapper lists no MOUNT service")),
        },
        (None, Ok((_, None))) => Err(no_v3(t, "its portmapper lists no NFS service")),
        (None, Err(_)) => Ok((t.mount_port.unwrap_or(NFS_PORT), NFS_PORT)),
    }
}

fn no_v3(t: &Target, why: &str) -> Fail {
    Fail::message(
        io::ErrorKind::Unsupported,
        format!(
            "{} offers no NFSv3 ({why}); it looks NFSv4-only: enable NFSv3 on the server (Nightfox reads NFSv3)",
            t.host
        ),
    )
}

fn credential(t: &Target) -> opaque_auth<'static> {
    opaque_auth::auth_unix(&auth_unix {
        stamp: 0,
        machinename: Opaque::owned(b"nightfox".to_vec()),
        uid: t.uid,
        gid: t.gid,
        gids: vec![],
    })
}

/// An NFS connection (no MOUNT) to where a mount found the server: readers, which have the file handle already.
async fn connect_nfs(t: &Target, addr: SocketAddr) -> Result<Client, Fail> {
    bounded(t.timeout, async {
        let (io, _) = connect(addr).await.map_err(|e| Fail::io(net_io(e), true))?;
        Ok(Nfs3Client::new_with_auth(io, credential(t), opaque_auth::default()))
    })
    .await
}

/// A refusal at mount time (MNT, or the first NFS call, to `what`) explained: from an unprivileged port it is most
/// likely a `secure` export; a server without NFSv3 says so. (The portmapper is no proof of NFSv3: rpcbind
/// answers GETPORT for a program registered in another version only.)
fn mount_refusal(t: &Target, privileged: bool, what: &str, fail: Fail) -> Fail {
    let refused = match &fail {
        Fail::Io { err, .. } => err.kind() == io::ErrorKind::PermissionDenied,
        Fail::Invalid(_) => false,
    };
    let wrong_program = matches!(&fail, Fail::Io { err, .. } if err.kind() == io::ErrorKind::Unsupported);
    if refused && !privileged {
        Fail::message(
            io::ErrorKind::PermissionDenied,
            format!(
                "the server refused the mount from an unprivileged source port ({fail}): the export probably \
                 requires a privileged port (`secure`, the default of Linux servers and Synology); run Nightfox as \
                 root, or mark the export `insecure`"
            ),
        )
    } else if wrong_program {
        no_v3(t, &format!("{fail} for {what}"))
    } else {
        fail
    }
}

/// Mounts the export at one address: the ports, MNT, an NFS connection and a GETATTR of the root (a server that
/// refuses NFS calls from this client says so here, not at some later call). Returns the client, the root handle
/// and the NFS address.
async fn mount_at(t: &Target, ip: IpAddr) -> Result<(Client, nfs_fh3, SocketAddr), Fail> {
    let (mount_port, nfs_port) = ports(t, ip).await?;
    let (io, privileged) = connect(SocketAddr::new(ip, mount_port)).await.map_err(|e| Fail::io(net_io(e), true))?;
    let mount_at = format!("MOUNT v3 at port {mount_port}");
    let mut mc = MountClient::new_with_auth(io, credential(t), opaque_auth::default());
    let ok = match mc.mnt(dirpath(Opaque::borrowed(t.export.as_bytes()))).await {
        Ok(ok) => ok,
        Err(MountError::Rpc(e)) => return Err(mount_refusal(t, privileged, &mount_at, rpc_fail(e))),
        Err(MountError::Denied(s)) => {
            return Err(mount_refusal(t, privileged, &mount_at, Fail::errno(mount_errno(s), true)))
        }
    };
    // The MOUNT connection is not needed after MNT (UMNT is advisory).
    drop(mc);
    let root = nfs_fh3 { data: ok.fhandle.0 };
    let addr = SocketAddr::new(ip, nfs_port);
    let (io, privileged) = connect(addr).await.map_err(|e| Fail::io(net_io(e), true))?;
    let mut client = Nfs3Client::new_with_auth(io, credential(t), opaque_auth::default());
    let args = nfs::GETATTR3args { object: root.clone() };
    let nfs_at = format!("NFS v3 at port {nfs_port}");
    match client.getattr(&args).await.map_err(rpc_fail) {
        Ok(Nfs3Result::Ok(_)) => Ok((client, root, addr)),
        Ok(Nfs3Result::Err((s, _))) => Err(mount_refusal(t, privileged, &nfs_at, Fail::status(s))),
        Err(f) => Err(mount_refusal(t, privileged, &nfs_at, f)),
    }
}

/// Mounts the export (name resolved, every address tried until one answers) under the timeout per address.
/// Only a transport failure (refused, unreachable, timed out) moves on to the next address.
async fn mount(t: &Target) -> Result<(Client, nfs_fh3, SocketAddr), Fail> {
    let ips = resolve(&t.host, t.timeout).await?;
    let mut last = None;
    for ip in ips {
        match bounded(t.timeout, mount_at(t, ip)).await {
            Ok(m) => return Ok(m),
            Err(f) if f.drops_connection() && f.is_transient() => last = Some(f),
            Err(f) => return Err(f),
        }
    }
    Err(last.unwrap_or_else(|| Fail::errno(libc::EHOSTUNREACH, true)))
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
    /// The NFS address and port the mount found (readers connect there).
    addr: SocketAddr,
    timeout: Duration,
    /// Directory handles by path below the root (components joined with `/`).
    dirs: HashMap<Vec<u8>, nfs_fh3>,
}

impl Conn {
    async fn mount(t: &Target) -> Result<Conn, Fail> {
        let (client, root, addr) = mount(t).await?;
        Ok(Conn { client, root, addr, timeout: t.timeout, dirs: HashMap::new() })
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
        let (fh, addr) = self.run(path, async |c: &mut Conn| {
            let fh = c.resolve(&comps).await?;
            match c.getattr(&fh).await?.type_ {
                ftype3::NF3REG => Ok((fh, c.addr)),
                ftype3::NF3DIR => Err(Fail::errno(libc::EISDIR, false)),
                t => Err(Fail::Invalid(format!("not a regular file ({})", kind_name(t)))),
            }
        })?;
        // A connection of its own, so that readers on several threads do not queue behind one another: an idle
        // one to the same address from the pool, else a new one.
        let pooled = {
            let mut pool = self.pool.lock();
            pool.iter().position(|p| p.addr == addr).map(|i| pool.swap_remove(i))
        };
        let (rt, client, reused) = match pooled {
            Some(p) => (p.rt, p.client, true),
            None => {
                let rt = runtime().map_err(|e| Error::io(self.url(path), e))?;
                let client = rt.block_on(connect_nfs(&self.target, addr)).map_err(|f| self.error(path, f))?;
                (rt, client, false)
            }
        };
        Ok(Box::new(NfsReader {
            rt: Some(rt),
            target: self.target.clone(),
            addr,
            client: Some(client),
            reused,
            pool: self.pool.clone(),
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
        self.pool.lock().clear();
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Reading

/// Sequential reader of one file: 1 MiB READs from an offset until the server says EOF. Owns its connection; after
/// a failure that breaks it, the next `read` connects again (a caller that prefers can reopen with `open_at`
/// instead, which mounts afresh after `reconnect`).
struct NfsReader {
    /// `Some` until the reader is dropped (then it goes back to the pool with the connection).
    rt: Option<Runtime>,
    target: Target,
    /// The server's NFS address and port, as the mount found them.
    addr: SocketAddr,
    client: Option<Client>,
    /// The connection came from the pool and has not answered yet: if the server closed it meanwhile, the read
    /// is retried once on a new one.
    reused: bool,
    pool: Pool,
    fh: nfs_fh3,
    offset: u64,
    buf: Vec<u8>,
    pos: usize,
    eof: bool,
}

impl NfsReader {
    /// One READ at the offset: the data and whether it ends the file.
    fn read_once(&mut self) -> Result<(Vec<u8>, bool), Fail> {
        let NfsReader { rt, target, addr, client, fh, offset, .. } = self;
        let Some(rt) = rt.as_ref() else { return Err(Fail::errno(libc::EIO, true)) };
        let result = rt.block_on(async {
            let c = match client.as_mut() {
                Some(c) => c,
                None => client.insert(connect_nfs(target, *addr).await?),
            };
            let args = nfs::READ3args { file: fh.clone(), offset: *offset, count: READ_SIZE };
            rpc(target.timeout, c.read(&args)).await
        });
        match result {
            Ok(ok) => Ok((ok.data.into_owned(), ok.eof)),
            Err(f) => {
                if f.drops_connection() {
                    *client = None;
                }
                Err(f)
            }
        }
    }

    fn fill(&mut self) -> io::Result<()> {
        let result = match self.read_once() {
            // Not after a timeout: a hung server would be waited for twice.
            Err(f) if self.reused && f.drops_connection() && !f.is_timeout() => self.read_once(),
            r => r,
        };
        self.reused = false;
        let (data, eof) = result.map_err(Fail::into_io)?;
        // An empty reply without EOF would loop forever: treat it as the end (callers compare sizes).
        self.eof = eof || data.is_empty();
        self.offset += data.len() as u64;
        self.buf = data;
        self.pos = 0;
        Ok(())
    }
}

impl Drop for NfsReader {
    /// No RPC is in flight between reads: a working connection goes back to the pool.
    fn drop(&mut self) {
        if let (Some(client), Some(rt)) = (self.client.take(), self.rt.take()) {
            let mut pool = self.pool.lock();
            if pool.len() < POOL_MAX {
                pool.push(Pooled { rt, client, addr: self.addr });
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
