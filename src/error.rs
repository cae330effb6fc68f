//! The one error type of the library. Every variant carries its context (which file, which couple, which
//! session) so that the CLI can print one clear line and the FUSE adapter can map it to an errno.

use std::io;
use std::path::PathBuf;

/// Result alias used throughout the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path:?}: {source}")]
    Io { path: PathBuf, source: io::Error },

    /// A catalog backend failed. The backend sets the flags: `transient` when the catalog was busy (another
    /// connection held it past the wait; the same call may succeed later), `disk_full` when the catalog could not
    /// grow (a full disk, like ENOSPC under a copy).
    #[error("catalog: {context}: {source}")]
    Catalog { context: String, transient: bool, disk_full: bool, source: Box<dyn std::error::Error + Send + Sync> },

    #[error("no Nightfox archive at {0:?} (run `nightfox init` to create one)")]
    NoArchive(PathBuf),

    #[error("{0:?} exists and is not an empty directory or a Nightfox archive")]
    NotEmpty(PathBuf),

    #[error(
        "the catalog has schema version {found}, newer than this nightfox understands ({supported}); upgrade nightfox"
    )]
    SchemaTooNew { found: i64, supported: i64 },

    /// A value the operation cannot take, or a state it refuses (a runtime failure: exit 1).
    #[error("{0}")]
    Invalid(String),

    /// The command line itself is wrong: a value no run could take, flags that contradict, a missing `--yes` where
    /// nothing can ask. Raised only at the CLI edge (`cli::usage`), before anything is done: exit 2.
    #[error("{0}")]
    Usage(String),

    /// A remote blob store refused or failed a request (the message never holds a secret).
    #[error("object store: {context}: {message}")]
    Store { context: String, transient: bool, message: String },

    #[error("couple {name:?} on {date} exists already ({folder}); use --allow-same-name to add another")]
    CoupleExists { name: String, date: String, folder: String },

    #[error("no couple with folder name {0:?} (see `nightfox couple list`)")]
    NoSuchCouple(String),

    #[error("no camera with slug {0:?} (see `nightfox camera list`)")]
    NoSuchCamera(String),

    #[error("{0}")]
    NotFound(String),

    #[error("{0}")]
    Secret(String),

    #[error("{0}")]
    Disabled(String),

    #[error("no import session {0} (see `nightfox sessions`)")]
    NoSuchSession(i64),

    /// The couple's lease is held (`session` 0: by a process whose session is not known, another seat's).
    #[error("{}", couple_busy(couple, *session))]
    CoupleBusy { couple: String, session: i64 },

    /// A couple's lease went with its catalog connection (a server restart) and another process took the
    /// couple meanwhile: this one stops.
    #[error("the lease of couple {couple_id} was lost with the catalog connection and another process holds it now; the session is paused")]
    LeaseLost { couple_id: i64 },

    /// The catalog stayed unreachable (or kept failing transiently) through every retry: the session pauses.
    #[error("the catalog failed {failures} time(s) in a row (last: {last}); the session is paused: run `nightfox resume {session}` once the catalog is back")]
    CatalogPaused { session: i64, failures: u32, last: String },

    #[error("import session {id} is {status} and cannot be resumed")]
    NotResumable { id: i64, status: String },

    #[error(
        "disk full while writing {path:?}; the session is paused: free space, then run `nightfox resume {session}`"
    )]
    DiskFull { path: PathBuf, session: i64 },

    #[error(
        "source {path:?} is not available (card or disk disconnected?); reconnect it, then `nightfox resume {session}`"
    )]
    SourceUnavailable { path: PathBuf, session: i64 },

    #[error("the source failed {failures} times in a row (last: {last}); the session is paused: run `nightfox resume {session}` once the share is back")]
    SourcePaused { session: i64, failures: u32, last: String },

    #[error("unreadable after retries (the rest of the source imported; `nightfox resume` tries it again): {reason}")]
    Unreadable { reason: String },

    #[error("held back with its clip, which could not be read (`nightfox resume` brings them in together)")]
    HeldBack,

    #[error("{path:?} changed while it was being copied")]
    SourceChanged { path: PathBuf },

    #[error("{path:?}: copy did not verify (source hashed {expected}, copy on disk hashed {actual})")]
    Mismatch { path: PathBuf, expected: String, actual: String },

    #[error("import interrupted; session {0} can be resumed with `nightfox resume {0}`")]
    Interrupted(i64),

    #[error("session {0} was cancelled for good while it ran (`nightfox session cancel`); the files it finished stay in the archive")]
    CancelledForGood(i64),

    #[error("the archive {archive:?} is already in use by {holder}; stop it first (one serve or mount per archive)")]
    ArchiveBusy { archive: PathBuf, holder: String },

    #[error("catalog backup: {0}")]
    Backup(String),
}

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }

    /// True when the error is the filesystem running out of space (or quota), for a file or for the catalog.
    pub fn is_disk_full(&self) -> bool {
        match self {
            Error::DiskFull { .. } => true,
            Error::Io { source, .. } => is_enospc(source),
            // The catalog's own ENOSPC (SQLite: the database or its WAL could not grow).
            Error::Catalog { disk_full, .. } => *disk_full,
            _ => false,
        }
    }

    /// True for errors that a retry after a pause may cure: a dropped, refused, reset or timed-out connection,
    /// an unreachable host, a stale handle, EIO, EAGAIN, EBUSY, a server closing mid-reply. Permanent errors
    /// (access denied, no such file, bad credentials) are not transient.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Io { source, .. } => io_is_transient(source),
            Error::SourceUnavailable { .. } => true,
            Error::Store { transient, .. } => *transient,
            _ => false,
        }
    }

    /// True for a catalog failure a retry after a pause may cure (the backend says so: a lost connection, a
    /// serialization failure or deadlock on Postgres, a busy SQLite). Apart from [`Error::is_transient`], which is
    /// about sources.
    pub fn is_catalog_transient(&self) -> bool {
        matches!(self, Error::Catalog { transient: true, .. })
    }

    /// The errno a filesystem front end should answer for this error.
    pub fn errno(&self) -> i32 {
        match self {
            Error::Io { source, .. } => source.raw_os_error().unwrap_or(libc::EIO),
            Error::NoSuchCouple(_) | Error::NoSuchCamera(_) | Error::NoSuchSession(_) | Error::NotFound(_) => {
                libc::ENOENT
            }
            Error::DiskFull { .. } => libc::ENOSPC,
            Error::Invalid(_) | Error::Usage(_) => libc::EINVAL,
            _ => libc::EIO,
        }
    }
}

/// The message of [`Error::CoupleBusy`].
fn couple_busy(couple: &str, session: i64) -> String {
    if session > 0 {
        format!("couple {couple:?} is already being imported by session {session} (wait for it, or stop it first)")
    } else {
        format!(
            "couple {couple:?} is already being imported by another process or seat (wait for it, or stop it first)"
        )
    }
}

/// See [`Error::is_transient`].
pub fn io_is_transient(e: &io::Error) -> bool {
    if let Some(code) = e.raw_os_error() {
        return matches!(
            code,
            libc::ECONNRESET
                | libc::ECONNABORTED
                | libc::ECONNREFUSED
                | libc::ETIMEDOUT
                | libc::EPIPE
                | libc::ENOTCONN
                | libc::EHOSTDOWN
                | libc::EHOSTUNREACH
                | libc::ENETDOWN
                | libc::ENETUNREACH
                | libc::ENETRESET
                | libc::ESTALE
                | libc::EIO
                | libc::EAGAIN
                | libc::EBUSY
                | libc::ENOLINK
                | libc::ECOMM
                | libc::EPROTO
        );
    }
    use io::ErrorKind as K;
    matches!(
        e.kind(),
        K::ConnectionReset
            | K::ConnectionAborted
            | K::ConnectionRefused
            | K::TimedOut
            | K::BrokenPipe
            | K::NotConnected
            | K::UnexpectedEof
            | K::WouldBlock
            | K::HostUnreachable
            | K::NetworkUnreachable
            | K::NetworkDown
            | K::StaleNetworkFileHandle
            | K::ResourceBusy
    )
}

/// True for ENOSPC and EDQUOT.
pub fn is_enospc(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
}

/// Extension to attach a path to io results.
pub trait IoContext<T> {
    fn at(self, path: &std::path::Path) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn at(self, path: &std::path::Path) -> Result<T> {
        self.map_err(|e| Error::io(path, e))
    }
}
