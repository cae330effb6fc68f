//! The plain values every front end speaks with the filesystem core: attributes, directory entries, totals, who
//! asks (`Caller`), how long an answer may be cached (`Cache`) and the errors (`FsError`). No FUSE or NFS type.

use crate::error::Error;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File,
}

/// Attributes of a node, in plain numbers; the front end turns them into its own type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attr {
    pub ino: u64,
    pub kind: Kind,
    pub size: u64,
    pub blocks: u64,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
    pub perm: u16,
    pub nlink: u32,
    pub uid: u32,
    pub gid: u32,
    pub blksize: u32,
}

/// A directory entry with its attributes (for readdirplus).
#[derive(Clone, Debug)]
pub struct DirEntry {
    pub name: Vec<u8>,
    pub attr: Attr,
}

/// Filesystem totals for `statfs`.
#[derive(Clone, Copy, Debug)]
pub struct FsStats {
    pub blocks: u64,
    pub bfree: u64,
    pub bavail: u64,
    pub files: u64,
    pub ffree: u64,
    pub bsize: u32,
    pub frsize: u32,
    pub namelen: u32,
}

/// How long a front end may keep an answer (attributes, an entry): the FUSE adapter turns it into a TTL, an NFS
/// export ignores it (its clients revalidate by mtime).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cache {
    /// The read-only tree: content never changes (new imports and changed content are announced, see `Change`).
    Forever,
    /// `/ingest`: entries change while writers work.
    Short,
    /// A file being written: its size and mtime change with every write.
    None,
}

/// Read, write and search/execute, as in a mode's `rwx` bits (and `access(2)`'s `R_OK`, `W_OK`, `X_OK`).
pub const MAY_READ: u16 = 4;
pub const MAY_WRITE: u16 = 2;
pub const MAY_EXEC: u16 = 1;

/// Where a caller's supplementary groups come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Groups {
    /// FUSE: the process asking; read from `/proc/<pid>/status` only when they can change an answer.
    FromPid(u32),
    /// Given with the request (NFS AUTH_UNIX).
    Known(Vec<u32>),
}

/// Who asks, for the permission checks the core makes itself: the FUSE adapter mounts without the kernel's
/// `default_permissions`, so that a write anywhere in the read-only tree reaches it and answers EROFS (the kernel
/// would answer EACCES from the 0444/0555 modes first), and so `/ingest` is checked here.
#[derive(Clone, Debug)]
pub struct Caller {
    pub uid: u32,
    pub gid: u32,
    pub groups: Groups,
}

impl Caller {
    /// Whether the caller may do `mask` (`MAY_*` bits) on a node, decided as the kernel's `generic_permission`
    /// decides for a mode and owner: root may do anything but execute a file that no one may execute; anyone else
    /// gets the owner's, the group's or the others' bits, in that order.
    pub fn may(&self, a: &Attr, mask: u16) -> bool {
        if self.uid == 0 {
            return mask & MAY_EXEC == 0 || a.kind == Kind::Dir || a.perm & 0o111 != 0;
        }
        let (user, group, other) = ((a.perm >> 6) & 7, (a.perm >> 3) & 7, a.perm & 7);
        let bits = if self.uid == a.uid {
            user
        } else if group != other && self.in_group(a.gid) {
            group
        } else {
            other
        };
        bits & mask == mask
    }

    /// Root or the node's owner: who may chmod it or set its times.
    pub fn owns(&self, a: &Attr) -> bool {
        self.uid == 0 || self.uid == a.uid
    }

    /// Whether the caller's primary or a supplementary group is `gid`.
    pub fn in_group(&self, gid: u32) -> bool {
        if self.gid == gid {
            return true;
        }
        match &self.groups {
            Groups::Known(v) => v.contains(&gid),
            Groups::FromPid(pid) => i32::try_from(*pid)
                .ok()
                .and_then(|pid| procfs::process::Process::new(pid).and_then(|p| p.status()).ok())
                .is_some_and(|s| s.groups.contains(&gid)),
        }
    }
}

/// A time a SETATTR sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetTime {
    Now,
    /// Nanoseconds since the Unix epoch.
    At(i64),
}

/// What a SETATTR asks to change.
#[derive(Clone, Copy, Debug, Default)]
pub struct SetAttr {
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub size: Option<u64>,
    pub mtime: Option<SetTime>,
    /// Through an open descriptor (ftruncate): it needs no more permission than its open had.
    pub by_handle: bool,
}

/// How a rename may treat an existing target (`renameat2` flags).
#[derive(Clone, Copy, Debug, Default)]
pub struct RenameFlags {
    /// RENAME_NOREPLACE: fail with `Exists` rather than replace.
    pub noreplace: bool,
    /// RENAME_EXCHANGE: swap the two (not supported: `Invalid`).
    pub exchange: bool,
}

/// Errors of the filesystem core. The mapping to errno is POSIX (`errno`), shared by every front end; an NFS
/// adapter maps the variants to its own status codes. `Other` carries any other errno (from the disk under the
/// archive) unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FsError {
    #[error("no such file or directory")]
    NotFound,
    #[error("permission denied")]
    Access,
    #[error("operation not permitted")]
    Perm,
    #[error("read-only file system")]
    ReadOnly,
    #[error("file exists")]
    Exists,
    #[error("directory not empty")]
    NotEmpty,
    #[error("not a directory")]
    NotDir,
    #[error("is a directory")]
    IsDir,
    #[error("no space left on device")]
    NoSpace,
    #[error("stale file handle")]
    Stale,
    #[error("bad file handle")]
    BadHandle,
    #[error("operation not supported")]
    NotSupported,
    #[error("invalid argument")]
    Invalid,
    #[error("input/output error")]
    Io,
    #[error("device or resource busy")]
    Busy,
    #[error("cross-device link")]
    CrossDevice,
    #[error("file name too long")]
    NameTooLong,
    /// No such extended attribute.
    #[error("no data available")]
    NoData,
    #[error("errno {0}")]
    Other(i32),
}

pub type FsResult<T> = std::result::Result<T, FsError>;

impl FsError {
    /// The errno a POSIX front end answers.
    pub fn errno(self) -> i32 {
        match self {
            FsError::NotFound => libc::ENOENT,
            FsError::Access => libc::EACCES,
            FsError::Perm => libc::EPERM,
            FsError::ReadOnly => libc::EROFS,
            FsError::Exists => libc::EEXIST,
            FsError::NotEmpty => libc::ENOTEMPTY,
            FsError::NotDir => libc::ENOTDIR,
            FsError::IsDir => libc::EISDIR,
            FsError::NoSpace => libc::ENOSPC,
            FsError::Stale => libc::ESTALE,
            FsError::BadHandle => libc::EBADF,
            FsError::NotSupported => libc::EOPNOTSUPP,
            FsError::Invalid => libc::EINVAL,
            FsError::Io => libc::EIO,
            FsError::Busy => libc::EBUSY,
            FsError::CrossDevice => libc::EXDEV,
            FsError::NameTooLong => libc::ENAMETOOLONG,
            FsError::NoData => libc::ENODATA,
            FsError::Other(e) => e,
        }
    }

    /// The variant of an errno (`Other` for those without one), so `from_errno(e).errno() == e`.
    pub fn from_errno(e: i32) -> FsError {
        match e {
            libc::ENOENT => FsError::NotFound,
            libc::EACCES => FsError::Access,
            libc::EPERM => FsError::Perm,
            libc::EROFS => FsError::ReadOnly,
            libc::EEXIST => FsError::Exists,
            libc::ENOTEMPTY => FsError::NotEmpty,
            libc::ENOTDIR => FsError::NotDir,
            libc::EISDIR => FsError::IsDir,
            libc::ENOSPC => FsError::NoSpace,
            libc::ESTALE => FsError::Stale,
            libc::EBADF => FsError::BadHandle,
            libc::EOPNOTSUPP => FsError::NotSupported,
            libc::EINVAL => FsError::Invalid,
            libc::EIO => FsError::Io,
            libc::EBUSY => FsError::Busy,
            libc::EXDEV => FsError::CrossDevice,
            libc::ENAMETOOLONG => FsError::NameTooLong,
            libc::ENODATA => FsError::NoData,
            e => FsError::Other(e),
        }
    }
}

impl From<&Error> for FsError {
    /// A full disk (or catalog) is ENOSPC; a content mismatch EIO; anything else `Error::errno`.
    fn from(e: &Error) -> FsError {
        if e.is_disk_full() {
            FsError::NoSpace
        } else {
            match e {
                Error::Mismatch { .. } => FsError::Io,
                _ => FsError::from_errno(e.errno()),
            }
        }
    }
}

impl From<&std::io::Error> for FsError {
    fn from(e: &std::io::Error) -> FsError {
        FsError::from_errno(e.raw_os_error().unwrap_or(libc::EIO))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn supplementary_groups_are_read_from_the_callers_proc_status() {
        // A process with known supplementary groups: setpriv (util-linux; setting groups needs root, as the tests
        // run) sets them, then execs sleep.
        let mut child = std::process::Command::new("setpriv")
            .args(["--groups", "4242,4343", "sleep", "30"])
            .spawn()
            .expect("setpriv (util-linux)");
        let caller = Caller { uid: 2000, gid: 1, groups: Groups::FromPid(child.id()) };
        let mut seen = false;
        for _ in 0..500 {
            if caller.in_group(4343) {
                seen = true;
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let (other, primary) = (caller.in_group(4242), caller.in_group(1));
        let stranger = caller.in_group(5);
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(seen && other && primary, "groups of pid {} not read", child.id());
        assert!(!stranger);
        assert!(!caller.in_group(4343), "a process that is gone is in no group");
    }

    #[test]
    fn permissions_follow_owner_group_and_other_bits() {
        let attr = |perm: u16, kind: Kind| Attr {
            ino: 9,
            kind,
            size: 0,
            blocks: 0,
            mtime_ns: 0,
            ctime_ns: 0,
            perm,
            nlink: 1,
            uid: 1000,
            gid: 100,
            blksize: 4096,
        };
        // pid 0 has no /proc entry: no supplementary groups.
        let owner = Caller { uid: 1000, gid: 1000, groups: Groups::FromPid(0) };
        let member = Caller { uid: 2000, gid: 100, groups: Groups::FromPid(0) };
        let supplementary = Caller { uid: 2001, gid: 2001, groups: Groups::Known(vec![5, 100]) };
        let stranger = Caller { uid: 3000, gid: 3000, groups: Groups::Known(vec![5]) };
        let root = Caller { uid: 0, gid: 0, groups: Groups::FromPid(0) };
        let f = attr(0o640, Kind::File);
        assert!(owner.may(&f, MAY_READ | MAY_WRITE));
        assert!(member.may(&f, MAY_READ) && !member.may(&f, MAY_WRITE));
        assert!(supplementary.may(&f, MAY_READ) && !supplementary.may(&f, MAY_WRITE));
        assert!(!stranger.may(&f, MAY_READ));
        assert!(root.may(&f, MAY_READ | MAY_WRITE) && !root.may(&f, MAY_EXEC), "root executes only what someone may");
        // The owner's class is the owner's bits, even when the others have more.
        assert!(!owner.may(&attr(0o077, Kind::File), MAY_READ));
        assert!(root.may(&attr(0o000, Kind::Dir), MAY_EXEC | MAY_WRITE));
        assert!(owner.owns(&f) && root.owns(&f) && !member.owns(&f));
    }

    #[test]
    fn errnos_round_trip() {
        for e in [libc::ENOENT, libc::EROFS, libc::ENOSPC, libc::EBUSY, libc::ENODATA, libc::EMFILE, libc::EFBIG] {
            assert_eq!(FsError::from_errno(e).errno(), e);
        }
        assert_eq!(FsError::from_errno(libc::EMFILE), FsError::Other(libc::EMFILE));
        assert_eq!(FsError::from(&Error::Invalid("x".into())), FsError::Invalid);
    }
}
