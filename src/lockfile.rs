//! Advisory `flock` files: the daemon's lock in an archive's `locks/` and the SQLite catalog's couple leases. A
//! lock goes with its descriptor (released when dropped or when the process dies) and carries a note (a session
//! id, a pid) for others to read; who holds one is read from `/proc/locks`, without touching the lock.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};

/// An advisory `flock` on a file in `locks/`, released when dropped or when the process dies.
pub struct LockFile {
    file: File,
    path: PathBuf,
}

impl LockFile {
    /// Takes the lock on `path` (created 0600) without waiting; `None` when another process (or another
    /// descriptor of this one) holds it.
    pub fn try_take(path: &Path) -> Result<Option<LockFile>> {
        Self::flock(path, libc::LOCK_EX | libc::LOCK_NB)
    }

    /// Takes a shared lock on `path` (created 0600), waiting while someone holds it exclusively: many holders
    /// of the shared lock at once (exports) keep out the one that wants it exclusively (`gc`'s deletions).
    pub fn take_shared(path: &Path) -> Result<LockFile> {
        loop {
            match Self::flock(path, libc::LOCK_SH) {
                Ok(Some(l)) => return Ok(l),
                Ok(None) => continue,
                Err(e) => return Err(e),
            }
        }
    }

    fn flock(path: &Path, how: libc::c_int) -> Result<Option<LockFile>> {
        let file =
            OpenOptions::new().read(true).write(true).create(true).truncate(false).mode(0o600).open(path).at(path)?;
        loop {
            // SAFETY: flock on a valid, owned descriptor.
            let rc = unsafe { libc::flock(file.as_raw_fd(), how) };
            if rc == 0 {
                return Ok(Some(LockFile { file, path: path.to_path_buf() }));
            }
            let e = std::io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EWOULDBLOCK) => return Ok(None),
                Some(libc::EINTR) => continue,
                _ => return Err(Error::io(path, e)),
            }
        }
    }

    /// Writes a note (such as the session id or pid) into the lock file for others to read.
    pub fn write_note(&mut self, note: &str) -> Result<()> {
        self.file.set_len(0).at(&self.path)?;
        self.file.rewind().at(&self.path)?;
        self.file.write_all(note.as_bytes()).at(&self.path)
    }

    /// Reads the note of a lock file held by someone else.
    pub fn read_note(path: &Path) -> Option<String> {
        let mut s = String::new();
        File::open(path).ok()?.read_to_string(&mut s).ok()?;
        Some(s.trim().to_string())
    }
}

/// Who holds the flock on `path`, read from `/proc/locks` without touching the lock: `Some(Some(pid))` held,
/// `Some(None)` free, `None` when it cannot be told (no `/proc/locks`).
pub fn holder(path: &Path) -> Option<Option<i32>> {
    let locks = std::fs::read_to_string("/proc/locks").ok()?;
    let Ok(md) = std::fs::metadata(path) else { return Some(None) };
    Some(flock_holder(&locks, md.ino()))
}

/// Parses `/proc/locks` lines such as `1: FLOCK  ADVISORY  WRITE 1234 fe:00:10010782 0 EOF` (waiters, shown as
/// `1: -> FLOCK ...`, are not holders).
fn flock_holder(locks: &str, ino: u64) -> Option<i32> {
    locks.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() < 6 || f[1] != "FLOCK" {
            return None;
        }
        let i: u64 = f[5].rsplit(':').next()?.parse().ok()?;
        if i != ino {
            return None;
        }
        f[4].parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_holders_keep_the_exclusive_one_out() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("export.lock");
        let one = LockFile::take_shared(&p).unwrap();
        let two = LockFile::take_shared(&p).unwrap();
        assert!(LockFile::try_take(&p).unwrap().is_none(), "busy while a shared holder is there");
        drop(one);
        assert!(LockFile::try_take(&p).unwrap().is_none(), "busy while any shared holder is there");
        drop(two);
        assert!(LockFile::try_take(&p).unwrap().is_some(), "free once the last one let go");
    }

    #[test]
    fn proc_locks_lines() {
        let locks = "1: FLOCK  ADVISORY  WRITE 3413 fe:00:10010782 0 EOF\n\
                     2: -> FLOCK  ADVISORY  WRITE 3999 fe:00:77 0 EOF\n\
                     3: POSIX  ADVISORY  WRITE 1883 fe:00:77 0 EOF\n\
                     4: FLOCK  ADVISORY  WRITE 1884 fe:00:77 0 EOF\n";
        assert_eq!(flock_holder(locks, 10010782), Some(3413));
        assert_eq!(flock_holder(locks, 77), Some(1884));
        assert_eq!(flock_holder(locks, 5), None);
    }
}
