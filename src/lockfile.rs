//! Advisory `flock` files: the daemon's lock in an archive's `locks/` and the SQLite catalog's couple leases. A
//! lock goes with its descriptor (released when dropped or when the process dies) and carries a note (a session
//! id, a pid) for others to read; who holds one is read from `/proc/locks`, without touching the lock.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use rustix::fs::FlockOperation;
use rustix::io::Errno;

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
        Self::flock(path, FlockOperation::NonBlockingLockExclusive)
    }

    /// Takes a shared lock on `path` (created 0600), waiting while someone holds it exclusively: many holders
    /// of the shared lock at once (exports) keep out the one that wants it exclusively (`gc`'s deletions).
    pub fn take_shared(path: &Path) -> Result<LockFile> {
        loop {
            match Self::flock(path, FlockOperation::LockShared) {
                Ok(Some(l)) => return Ok(l),
                Ok(None) => continue,
                Err(e) => return Err(e),
            }
        }
    }

    fn flock(path: &Path, how: FlockOperation) -> Result<Option<LockFile>> {
        let file =
            OpenOptions::new().read(true).write(true).create(true).truncate(false).mode(0o600).open(path).at(path)?;
        loop {
            match rustix::fs::flock(&file, how) {
                Ok(()) => return Ok(Some(LockFile { file, path: path.to_path_buf() })),
                Err(Errno::WOULDBLOCK) => return Ok(None),
                Err(Errno::INTR) => continue,
                Err(e) => return Err(Error::io(path, e.into())),
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
/// `Some(None)` free, `None` when it cannot be told (no or unreadable `/proc/locks`).
pub fn holder(path: &Path) -> Option<Option<i32>> {
    let locks = std::fs::read_to_string("/proc/locks").ok()?;
    let Ok(md) = std::fs::metadata(path) else { return Some(None) };
    Some(flock_holder(&locks, md.dev(), md.ino()))
}

/// One `FLOCK` line of `/proc/locks`, such as `1: FLOCK  ADVISORY  WRITE 1234 fe:00:10010782 0 EOF`; a waiter is
/// shown as `1: -> FLOCK ...`.
struct FlockLine {
    waiter: bool,
    pid: i32,
    dev: (u32, u32),
    ino: u64,
}

/// Parses one line; `None` for a line that is not a `FLOCK` or does not parse (an unknown shape in a newer kernel
/// costs that line, not the whole file).
fn flock_line(line: &str) -> Option<FlockLine> {
    let mut f = line.split_whitespace().skip(1).peekable();
    let waiter = f.next_if_eq(&"->").is_some();
    if f.next()? != "FLOCK" {
        return None;
    }
    let pid = f.nth(2)?.parse().ok()?;
    let mut id = f.next()?.split(':');
    let maj = u32::from_str_radix(id.next()?, 16).ok()?;
    let min = u32::from_str_radix(id.next()?, 16).ok()?;
    let ino = id.next()?.parse().ok()?;
    Some(FlockLine { waiter, pid, dev: (maj, min), ino })
}

/// The holder of the flock on the file (device and inode). The kernel lists a lock's waiters right after it, so the
/// first entry on a file is a holder (waiters, marked `->`, are skipped as well). The file is found by its inode: on
/// btrfs `stat` gives each subvolume its own device while `/proc/locks` prints the filesystem's, so the device only
/// chooses among several files with that inode (on different filesystems), never rules the only one out.
fn flock_holder(locks: &str, dev: u64, ino: u64) -> Option<i32> {
    let dev = (rustix::fs::major(dev), rustix::fs::minor(dev));
    let mut on_ino = locks.lines().filter_map(flock_line).filter(|l| !l.waiter && l.ino == ino).peekable();
    let first = on_ino.peek()?.pid;
    Some(on_ino.find(|l| l.dev == dev).map_or(first, |l| l.pid))
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
                     2: POSIX  ADVISORY  WRITE 1883 fe:00:77 0 EOF\n\
                     3: FLOCK  ADVISORY  WRITE 1884 fe:00:77 0 EOF\n\
                     3: -> FLOCK  ADVISORY  WRITE 3999 fe:00:77 0 EOF\n\
                     4: FLOCK  ADVISORY  WRITE 4000 fe:01:77 0 EOF\n";
        let fe00 = rustix::fs::makedev(0xfe, 0);
        assert_eq!(flock_holder(locks, fe00, 10010782), Some(3413));
        assert_eq!(flock_holder(locks, fe00, 77), Some(1884), "the holder, not the POSIX lock or the waiter");
        assert_eq!(flock_holder(locks, rustix::fs::makedev(0xfe, 1), 77), Some(4000), "the same inode elsewhere");
        assert_eq!(flock_holder(locks, fe00, 5), None);
    }

    #[test]
    fn a_waiter_listed_alone_is_not_a_holder() {
        let locks = "1: -> FLOCK  ADVISORY  WRITE 3999 fe:00:77 0 EOF\n";
        assert_eq!(flock_holder(locks, rustix::fs::makedev(0xfe, 0), 77), None);
    }

    #[test]
    fn btrfs_subvolume_device_differs_from_the_one_in_proc_locks() {
        // btrfs: stat says 0:45 (the subvolume's anonymous device), /proc/locks says 00:2c (the filesystem's).
        let locks = "1: FLOCK  ADVISORY  WRITE 3413 00:2c:262 0 EOF\n";
        assert_eq!(flock_holder(locks, rustix::fs::makedev(0, 45), 262), Some(3413));
    }

    #[test]
    fn a_line_that_does_not_parse_costs_only_itself() {
        let locks = "1: FLOCK  ADVISORY  WRITE 3413 fe:00:262 0 EOF\n\
                     2: OFDLCK ADVISORY  READ  -1 fe:00:9 0 EOF\n\
                     3: FLOCK  ADVISORY  WRITE 77 zz:00 0 EOF\n\
                     something new\n\
                     4: FLOCK  ADVISORY  WRITE 1884 fe:00:77 0 EOF\n";
        let fe00 = rustix::fs::makedev(0xfe, 0);
        assert_eq!(flock_holder(locks, fe00, 262), Some(3413));
        assert_eq!(flock_holder(locks, fe00, 77), Some(1884));
    }

    #[test]
    fn holder_of_a_held_lock_is_this_process() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("daemon.lock");
        assert_eq!(holder(&p), Some(None), "no file: free");
        let held = LockFile::try_take(&p).unwrap().unwrap();
        assert_eq!(holder(&p), Some(Some(std::process::id() as i32)));
        drop(held);
        assert_eq!(holder(&p), Some(None));
    }
}
