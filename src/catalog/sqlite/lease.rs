//! Couple leases on SQLite: an advisory `flock` on `<archive>/locks/couple-<id>.lock`, the file every nightfox
//! has used, so processes old and new exclude each other. The lock goes with the descriptor: released when the
//! lease is dropped or its process dies.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use crate::catalog::Lease;
use crate::error::{Error, IoContext, Result};

/// A held flock on a lease file.
pub(super) struct FlockLease {
    file: File,
    path: PathBuf,
}

impl FlockLease {
    /// Takes the lock without waiting; `None` when another process (or another descriptor of this one) holds it.
    pub(super) fn try_take(path: &Path) -> Result<Option<FlockLease>> {
        let file =
            OpenOptions::new().read(true).write(true).create(true).truncate(false).mode(0o600).open(path).at(path)?;
        // SAFETY: flock on a valid, owned descriptor.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
                return Ok(None);
            }
            return Err(Error::io(path, e));
        }
        Ok(Some(FlockLease { file, path: path.to_path_buf() }))
    }
}

impl Lease for FlockLease {
    fn write_note(&mut self, note: &str) -> Result<()> {
        self.file.set_len(0).at(&self.path)?;
        self.file.rewind().at(&self.path)?;
        self.file.write_all(note.as_bytes()).at(&self.path)
    }
}

/// The note in a lease file, trimmed.
pub(super) fn read_note(path: &Path) -> Option<String> {
    let mut s = String::new();
    File::open(path).ok()?.read_to_string(&mut s).ok()?;
    Some(s.trim().to_string())
}

/// Whether a process holds a flock on the file, read from `/proc/locks` (taking the lock to find out would make
/// a concurrent import fail); `None` when `/proc/locks` cannot be read.
pub(super) fn is_held(path: &Path) -> Option<bool> {
    let locks = std::fs::read_to_string("/proc/locks").ok()?;
    let Ok(md) = std::fs::metadata(path) else { return Some(false) };
    Some(flock_holder(&locks, md.ino()).is_some())
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
