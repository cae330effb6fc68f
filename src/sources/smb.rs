//! SMB shares, read through libsmbclient (the `pavao` crate). This module owns the connection: one worker thread
//! holds the `SmbClient` and every open remote file (an `SmbFile` borrows its client and is not `Send`), and
//! serves requests sent over a channel. Callers wait at most the configured timeout plus a small margin; past
//! that they get ETIMEDOUT and the worker is abandoned (a fresh one, with a fresh client, starts on the next
//! call), so a hung server never blocks the import longer than the bound. A transient error or `reconnect()`
//! also retires the worker; files opened on a retired worker then fail with ESTALE and are reopened at the
//! offset already read. Errors carry the errno libsmbclient gave (a refused login is EACCES, a dead or hung
//! server a transient errno), and the password never appears in a URL, log, error or `Debug` output.

use std::collections::HashMap;
use std::fmt;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use pavao::{SmbClient, SmbCredentials, SmbDirentInfo, SmbError, SmbFile, SmbMode, SmbOpenOptions, SmbOptions};

use super::{EntryKind, FileMeta, Source, SourceEntry};
use crate::error::{io_is_transient, Error, Result};

/// Bytes asked of the server per read (the fastest size measured on loopback).
const CHUNK: usize = 1 << 20;
/// How much longer than libsmbclient's own timeout a caller waits for the worker.
const MARGIN: Duration = Duration::from_secs(1);

/// DOS attributes that mark something other than a plain file or folder.
const ATTR_DIRECTORY: u16 = 0x0010;
const ATTR_DEVICE: u16 = 0x0040;
const ATTR_REPARSE_POINT: u16 = 0x0400;

/// Where an SMB source lives and how to log in.
#[derive(Clone)]
pub struct SmbConfig {
    /// IP literal or host name.
    pub host: String,
    pub port: u16,
    pub share: String,
    /// Empty for a guest login.
    pub username: String,
    pub password: String,
    /// `WORKGROUP` if empty.
    pub workgroup: String,
    /// Bound on every single network call.
    pub timeout: Duration,
}

impl fmt::Debug for SmbConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmbConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("share", &self.share)
            .field("username", &self.username)
            .field("password", &if self.password.is_empty() { "" } else { "<redacted>" })
            .field("workgroup", &self.workgroup)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// A share as a [`Source`]. Paths are absolute inside the share: `/` is its root.
pub struct SmbSource {
    inner: Arc<Inner>,
}

struct Inner {
    cfg: SmbConfig,
    /// `smb://host:port` as libsmbclient wants it (no user, no password).
    server_url: String,
    /// `/share`, percent-encoded.
    share_url: String,
    /// `smb://host:port/share`, the prefix of paths in errors.
    err_prefix: String,
    label: String,
    /// How long a caller waits for one request.
    bound: Duration,
    worker: Mutex<Option<Worker>>,
    generation: AtomicU64,
}

struct Worker {
    tx: Sender<Job>,
    generation: u64,
}

/// What the worker thread owns: the client and the files opened with it.
struct Conn<'a> {
    client: &'a SmbClient,
    files: HashMap<u64, SmbFile<'a>>,
    next_id: u64,
}

type Job = Box<dyn for<'a> FnOnce(&mut Conn<'a>) + Send>;

/// One directory entry as the worker reports it.
struct Dirent {
    name: String,
    attrs: u16,
    size: u64,
    mtime_ns: i64,
}

impl SmbSource {
    /// No network I/O here; connects on first use.
    pub fn new(cfg: SmbConfig) -> Result<SmbSource> {
        if cfg.host.is_empty() || cfg.share.is_empty() {
            return Err(Error::Invalid("an SMB source needs a host and a share".into()));
        }
        if cfg.share.contains(['/', '\\']) {
            return Err(Error::Invalid(format!("SMB share name {:?} must not contain a slash", cfg.share)));
        }
        // The host goes into the URL as is: nothing that libsmbclient would read as a user, path or options.
        if cfg.host.contains(['/', '\\', '@', '?', '%', ';']) || cfg.host.contains(char::is_whitespace) {
            return Err(Error::Invalid(format!("{:?} is not a host name or IP address", cfg.host)));
        }
        if cfg.timeout.is_zero() || cfg.timeout > Duration::from_secs(24 * 3600) {
            return Err(Error::Invalid(format!("SMB timeout {:?} must be between 1 ms and a day", cfg.timeout)));
        }
        if cfg.port == 0 {
            return Err(Error::Invalid("SMB port 0".into()));
        }
        let host_url = if cfg.host.contains(':') && !cfg.host.starts_with('[') {
            format!("[{}]", cfg.host)
        } else {
            cfg.host.clone()
        };
        let mut cfg = cfg;
        if cfg.workgroup.is_empty() {
            cfg.workgroup = "WORKGROUP".into();
        }
        let user = if cfg.username.is_empty() { String::new() } else { format!("{}@", cfg.username) };
        let inner = Inner {
            server_url: format!("smb://{host_url}:{}", cfg.port),
            share_url: format!("/{}", encode(&cfg.share)),
            err_prefix: format!("smb://{}:{}/{}", cfg.host, cfg.port, cfg.share),
            label: format!("smb://{user}{}:{}/{}", cfg.host, cfg.port, cfg.share),
            bound: cfg.timeout + MARGIN,
            worker: Mutex::new(None),
            generation: AtomicU64::new(0),
            cfg,
        };
        Ok(SmbSource { inner: Arc::new(inner) })
    }
}

impl fmt::Debug for SmbSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmbSource").field("cfg", &self.inner.cfg).finish()
    }
}

fn errno(code: i32) -> io::Error {
    io::Error::from_raw_os_error(code)
}

/// Percent-encodes everything but unreserved characters and `/` (libsmbclient decodes `%XX` in paths, and would
/// otherwise read `?` as the start of options and `%` as an escape).
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// An error as libsmbclient reported it, rebuilt from its raw errno where there is one.
fn norm(e: io::Error) -> io::Error {
    match e.raw_os_error() {
        // libsmbclient failed without setting errno.
        Some(0) => errno(libc::EIO),
        Some(code) => errno(code),
        None => e,
    }
}

/// The errno of a pavao error, where there is one.
fn smb_io(e: SmbError) -> io::Error {
    match e {
        SmbError::Io(e) => norm(e),
        SmbError::BadFileDescriptor => errno(libc::EBADF),
        SmbError::NulInPath(_) => errno(libc::EINVAL),
        other => io::Error::other(other.to_string()),
    }
}

fn mtime_ns(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_nanos()).map(|n| -n).unwrap_or(i64::MIN),
    }
}

/// Runs in the worker thread: makes the client, then serves jobs until every sender is gone.
fn worker_main(
    creds: SmbCredentials,
    options: SmbOptions,
    timeout: Duration,
    ready: SyncSender<io::Result<()>>,
    rx: Receiver<Job>,
) {
    let client = match SmbClient::new(creds, options) {
        Ok(c) => c,
        Err(e) => {
            let _ = ready.send(Err(smb_io(e)));
            return;
        }
    };
    if let Err(e) = client.set_timeout(timeout) {
        let _ = ready.send(Err(smb_io(e)));
        return;
    }
    if ready.send(Ok(())).is_err() {
        return;
    }
    let mut conn = Conn { client: &client, files: HashMap::new(), next_id: 1 };
    while let Ok(job) = rx.recv() {
        job(&mut conn);
    }
    // Files close before the client goes (conn borrows it).
    drop(conn);
}

impl Inner {
    fn err(&self, path: &str, source: io::Error) -> Error {
        Error::Io { path: PathBuf::from(format!("{}{path}", self.err_prefix)), source }
    }

    /// The URL path of `path` inside the share, percent-encoded (pavao puts `smb://host:port/share` before it).
    fn url(&self, path: &str) -> String {
        encode(path)
    }

    /// The current worker, started (and its client made) if there is none; waits no later than `deadline`.
    /// The lock is not held while a client is made (that waits for libsmbclient's process-wide lock).
    fn worker(&self, deadline: Instant) -> io::Result<(Sender<Job>, u64)> {
        if let Some(w) = self.worker.lock().as_ref() {
            return Ok((w.tx.clone(), w.generation));
        }
        let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
        let cfg = &self.cfg;
        let creds = SmbCredentials::default()
            .server(&self.server_url)
            .share(&self.share_url)
            .username(&cfg.username)
            .password(&cfg.password)
            .workgroup(&cfg.workgroup);
        // With a user name, a refused login must stay refused (no silent fallback to an anonymous session).
        let options = SmbOptions::default().no_auto_anonymous_login(!cfg.username.is_empty());
        let (tx, rx) = mpsc::channel::<Job>();
        let (ready_tx, ready_rx) = mpsc::sync_channel(1);
        let timeout = cfg.timeout;
        std::thread::Builder::new()
            .name(format!("smb-{generation}"))
            .spawn(move || worker_main(creds, options, timeout, ready_tx, rx))?;
        match ready_rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e),
            Err(RecvTimeoutError::Timeout) => return Err(errno(libc::ETIMEDOUT)),
            Err(RecvTimeoutError::Disconnected) => return Err(errno(libc::EIO)),
        }
        let mut slot = self.worker.lock();
        if let Some(w) = slot.as_ref() {
            // Another caller started one meanwhile: use it, and let this one end.
            return Ok((w.tx.clone(), w.generation));
        }
        *slot = Some(Worker { tx: tx.clone(), generation });
        Ok((tx, generation))
    }

    /// Retires the worker of `generation` if it is still the current one (its thread ends after its current job).
    fn retire(&self, generation: u64) {
        let mut slot = self.worker.lock();
        if slot.as_ref().is_some_and(|w| w.generation == generation) {
            *slot = None;
        }
    }

    /// Sends a job to a worker and waits for its answer, no later than `deadline`.
    fn send<T: Send + 'static>(
        &self,
        tx: &Sender<Job>,
        generation: u64,
        deadline: Instant,
        f: impl for<'a> FnOnce(&mut Conn<'a>) -> io::Result<T> + Send + 'static,
    ) -> io::Result<T> {
        let (rtx, rrx) = mpsc::sync_channel(1);
        let job: Job = Box::new(move |c| {
            let _ = rtx.send(f(c));
        });
        if tx.send(job).is_err() {
            self.retire(generation);
            return Err(errno(libc::ECONNABORTED));
        }
        let r = match rrx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(r) => r,
            Err(RecvTimeoutError::Timeout) => Err(errno(libc::ETIMEDOUT)),
            // The worker died (a panic in libsmbclient's wrapper).
            Err(RecvTimeoutError::Disconnected) => Err(errno(libc::ECONNABORTED)),
        };
        if let Err(e) = &r {
            if io_is_transient(e) {
                self.retire(generation);
            }
        }
        r
    }

    /// Runs `f` on the current worker (starting one if needed) within the bound.
    fn call<T: Send + 'static>(
        &self,
        f: impl for<'a> FnOnce(&mut Conn<'a>) -> io::Result<T> + Send + 'static,
    ) -> io::Result<T> {
        let deadline = Instant::now() + self.bound;
        let (tx, generation) = self.worker(deadline)?;
        self.send(&tx, generation, deadline, f)
    }

    /// The sender of the worker of `generation`, if that worker is still current.
    fn worker_of(&self, generation: u64) -> Option<Sender<Job>> {
        self.worker.lock().as_ref().filter(|w| w.generation == generation).map(|w| w.tx.clone())
    }

    fn stat_url(&self, path: &str) -> Result<pavao::SmbStat> {
        let url = self.url(path);
        self.call(move |c| c.client.stat(&url).map_err(smb_io)).map_err(|e| self.err(path, e))
    }

    /// Lists a directory. libsmbclient loses the errno of a failed listing: the directory is then stat'ed (the
    /// errno of that, or ENOTDIR), and a directory that stats but will not list is tried once more, then EACCES.
    fn list(&self, path: &str) -> io::Result<Vec<Dirent>> {
        let url = self.url(path);
        self.call(move |c| {
            let convert = |v: Vec<SmbDirentInfo>| {
                v.into_iter()
                    .map(|d| Dirent { name: d.name, attrs: d.attrs, size: d.size, mtime_ns: mtime_ns(d.mtime) })
                    .collect::<Vec<_>>()
            };
            match c.client.list_dirplus(&url) {
                Ok(v) => return Ok(convert(v)),
                Err(e @ SmbError::Io(_)) => return Err(smb_io(e)),
                Err(_) => {}
            }
            let st = c.client.stat(&url).map_err(smb_io)?;
            if !st.mode.is_dir() {
                return Err(errno(libc::ENOTDIR));
            }
            c.client.list_dirplus(&url).map(convert).map_err(|e| match e {
                e @ SmbError::Io(_) => smb_io(e),
                _ => errno(libc::EACCES),
            })
        })
    }

    fn walk(&self, dir: &str, rel: &Path, out: &mut Vec<SourceEntry>) -> Result<()> {
        let mut entries = match self.list(dir) {
            Ok(v) => v,
            Err(e) if io_is_transient(&e) => return Err(self.err(dir, e)),
            Err(e) => {
                out.push(SourceEntry {
                    path: PathBuf::from(dir),
                    rel: rel.to_path_buf(),
                    kind: EntryKind::Unreadable(format!("cannot read folder: {e}")),
                });
                return Ok(());
            }
        };
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        for e in entries {
            let path = if dir == "/" { format!("/{}", e.name) } else { format!("{dir}/{}", e.name) };
            let rel = rel.join(&e.name);
            if e.attrs & (ATTR_REPARSE_POINT | ATTR_DEVICE) != 0 {
                let why = if e.attrs & ATTR_DEVICE != 0 { "device" } else { "link or special file (reparse point)" };
                out.push(SourceEntry { path: PathBuf::from(path), rel, kind: EntryKind::Skipped(why.into()) });
            } else if e.attrs & ATTR_DIRECTORY != 0 {
                self.walk(&path, &rel, out)?;
            } else {
                out.push(SourceEntry {
                    path: PathBuf::from(path),
                    rel,
                    kind: EntryKind::File { size: e.size, mtime_ns: e.mtime_ns },
                });
            }
        }
        Ok(())
    }
}

/// `/a/b` for a path inside the share (absolute or not); `..` and non-UTF-8 names are refused.
fn share_path(p: &Path) -> Result<String> {
    let mut out = String::new();
    for c in p.components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(s) => {
                let s = s.to_str().ok_or_else(|| Error::Invalid(format!("SMB path {p:?} is not valid UTF-8")))?;
                out.push('/');
                out.push_str(s);
            }
            Component::ParentDir | Component::Prefix(_) => {
                return Err(Error::Invalid(format!("SMB path {p:?} must not contain `..`")))
            }
        }
    }
    if out.is_empty() {
        out.push('/');
    }
    Ok(out)
}

/// Sequential reads of one remote file, served by the worker that opened it. One chunk is read ahead while the
/// caller consumes the previous one.
struct SmbReader {
    inner: Arc<Inner>,
    generation: u64,
    id: u64,
    buf: Vec<u8>,
    pos: usize,
    len: usize,
    spare: Option<Vec<u8>>,
    pending: Option<Receiver<(Vec<u8>, io::Result<usize>)>>,
    eof: bool,
    failed: Option<i32>,
}

impl SmbReader {
    /// Asks the worker for the next chunk, into the spare buffer.
    fn request(&mut self) -> io::Result<()> {
        let Some(tx) = self.inner.worker_of(self.generation) else {
            return Err(errno(libc::ESTALE));
        };
        let mut buf = self.spare.take().unwrap_or_else(|| vec![0; CHUNK]);
        let id = self.id;
        let (rtx, rrx) = mpsc::sync_channel(1);
        let job: Job = Box::new(move |c| {
            let r = match c.files.get_mut(&id) {
                Some(f) => f.read(&mut buf[..]),
                None => Err(errno(libc::EBADF)),
            };
            let _ = rtx.send((buf, r));
        });
        if tx.send(job).is_err() {
            self.inner.retire(self.generation);
            return Err(errno(libc::ECONNABORTED));
        }
        self.pending = Some(rrx);
        Ok(())
    }

    fn fill(&mut self) -> io::Result<()> {
        if self.pending.is_none() {
            self.request()?;
        }
        let Some(rx) = self.pending.take() else { return Err(errno(libc::EIO)) };
        let (buf, r) = match rx.recv_timeout(self.inner.bound) {
            Ok(x) => x,
            Err(RecvTimeoutError::Timeout) => {
                self.inner.retire(self.generation);
                return Err(errno(libc::ETIMEDOUT));
            }
            Err(RecvTimeoutError::Disconnected) => {
                self.inner.retire(self.generation);
                return Err(errno(libc::ECONNABORTED));
            }
        };
        let n = match r {
            Ok(n) => n,
            Err(e) => {
                self.spare = Some(buf);
                let e = norm(e);
                if io_is_transient(&e) {
                    self.inner.retire(self.generation);
                }
                return Err(e);
            }
        };
        let old = std::mem::replace(&mut self.buf, buf);
        self.spare = Some(old);
        self.pos = 0;
        self.len = n.min(self.buf.len());
        if n == 0 {
            self.eof = true;
        } else {
            // Read ahead while the caller works on this chunk; a failure shows on the next fill.
            let _ = self.request();
        }
        Ok(())
    }
}

impl Read for SmbReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        if let Some(code) = self.failed {
            return Err(errno(code));
        }
        if self.pos == self.len {
            if self.eof {
                return Ok(0);
            }
            if let Err(e) = self.fill() {
                // After a failure this reader is done: the position on the server is unknown.
                self.failed = Some(e.raw_os_error().unwrap_or(libc::EIO));
                return Err(e);
            }
            if self.eof {
                return Ok(0);
            }
        }
        let n = out.len().min(self.len - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl Drop for SmbReader {
    fn drop(&mut self) {
        // Closing is fire and forget; a read-ahead still queued runs first, then the file is closed.
        if let Some(tx) = self.inner.worker_of(self.generation) {
            let id = self.id;
            let job: Job = Box::new(move |c| {
                c.files.remove(&id);
            });
            let _ = tx.send(job);
        }
    }
}

impl Source for SmbSource {
    fn describe(&self) -> String {
        self.inner.label.clone()
    }

    fn scan(&self, roots: &[PathBuf]) -> Result<Vec<SourceEntry>> {
        let inner = &self.inner;
        let mut out = Vec::new();
        for root in roots {
            let p = share_path(root)?;
            let st = inner.stat_url(&p)?;
            if st.mode.is_dir() {
                inner.walk(&p, Path::new(""), &mut out)?;
            } else if st.mode.is_file() {
                let name = root.file_name().map(PathBuf::from).unwrap_or_else(|| root.clone());
                out.push(SourceEntry {
                    path: PathBuf::from(&p),
                    rel: name,
                    kind: EntryKind::File { size: st.size, mtime_ns: mtime_ns(st.modified) },
                });
            } else {
                return Err(Error::Invalid(format!("{}{p} is not a file or folder", inner.err_prefix)));
            }
        }
        Ok(out)
    }

    fn stat(&self, path: &Path) -> Result<FileMeta> {
        let p = share_path(path)?;
        let st = self.inner.stat_url(&p)?;
        Ok(FileMeta { size: st.size, mtime_ns: mtime_ns(st.modified) })
    }

    fn open_at(&self, path: &Path, offset: u64) -> Result<Box<dyn Read + Send>> {
        let p = share_path(path)?;
        let url = self.inner.url(&p);
        let deadline = Instant::now() + self.inner.bound;
        let (tx, generation) = self.inner.worker(deadline).map_err(|e| self.inner.err(&p, e))?;
        let id = self
            .inner
            .send(&tx, generation, deadline, move |c| {
                let mut f = c.client.open_with(&url, SmbOpenOptions::default().read(true)).map_err(smb_io)?;
                if offset > 0 {
                    f.seek(SeekFrom::Start(offset)).map_err(norm)?;
                }
                let id = c.next_id;
                c.next_id += 1;
                c.files.insert(id, f);
                Ok(id)
            })
            .map_err(|e| self.inner.err(&p, e))?;
        let mut r = SmbReader {
            inner: Arc::clone(&self.inner),
            generation,
            id,
            buf: vec![0; CHUNK],
            pos: 0,
            len: 0,
            spare: None,
            pending: None,
            eof: false,
            failed: None,
        };
        // Start the first read now; its result is collected by the first `read`.
        let _ = r.request();
        Ok(Box::new(r))
    }

    fn remove(&self, path: &Path) -> Result<()> {
        let p = share_path(path)?;
        let url = self.inner.url(&p);
        self.inner.call(move |c| c.client.unlink(&url).map_err(smb_io)).map_err(|e| self.inner.err(&p, e))
    }

    fn rename(&self, from: &Path, to: &Path) -> Result<()> {
        let (f, t) = (share_path(from)?, share_path(to)?);
        let (fu, tu) = (self.inner.url(&f), self.inner.url(&t));
        self.inner.call(move |c| c.client.rename(&fu, &tu).map_err(smb_io)).map_err(|e| self.inner.err(&t, e))
    }

    fn create_dir_all(&self, path: &Path) -> Result<()> {
        let p = share_path(path)?;
        let mut prefix = String::new();
        for part in p.split('/').filter(|s| !s.is_empty()) {
            prefix.push('/');
            prefix.push_str(part);
            let url = self.inner.url(&prefix);
            self.inner
                .call(move |c| match c.client.mkdir(&url, SmbMode::from(0o755)) {
                    Ok(()) => Ok(()),
                    Err(e) => {
                        let e = smb_io(e);
                        // Already there (or a race): fine if it is a folder.
                        match c.client.stat(&url) {
                            Ok(st) if st.mode.is_dir() => Ok(()),
                            Ok(_) => Err(errno(libc::ENOTDIR)),
                            Err(_) => Err(e),
                        }
                    }
                })
                .map_err(|e| self.inner.err(&prefix, e))?;
        }
        Ok(())
    }

    fn reconnect(&self) {
        // The worker thread drops its files and client when its current job (if any) ends.
        *self.inner.worker.lock() = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> SmbConfig {
        SmbConfig {
            host: "127.0.0.1".into(),
            port: 4450,
            share: "footage".into(),
            username: "ana".into(),
            password: "s3cret-pw".into(),
            workgroup: String::new(),
            timeout: Duration::from_secs(5),
        }
    }

    #[test]
    fn describe_and_debug_never_show_the_password() {
        let c = cfg();
        assert!(!format!("{c:?}").contains("s3cret-pw"));
        let s = SmbSource::new(c).expect("config");
        assert_eq!(s.describe(), "smb://ana@127.0.0.1:4450/footage");
        assert!(!format!("{s:?}").contains("s3cret-pw"));
    }

    #[test]
    fn paths_are_encoded_for_libsmbclient() {
        assert_eq!(encode("/a b/100%?#.MP4"), "/a%20b/100%25%3F%23.MP4");
        assert_eq!(encode("/Café"), "/Caf%C3%A9");
        assert_eq!(share_path(Path::new("/")).expect("root"), "/");
        assert_eq!(share_path(Path::new("/a/./b/")).expect("path"), "/a/b");
        assert!(share_path(Path::new("/a/../b")).is_err());
    }

    #[test]
    fn source_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<SmbSource>();
    }
}
