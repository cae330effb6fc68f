//! Couple leases on SQLite: an advisory `flock` on `<archive>/locks/couple-<id>.lock` ([`LockFile`]), the file every
//! nightfox has used, so processes old and new exclude each other. The lock goes with the descriptor: released
//! when the lease is dropped or its process dies.

use std::path::Path;

use crate::catalog::Lease;
use crate::error::Result;
use crate::lockfile::LockFile;

/// A held flock on a lease file.
pub(super) struct FlockLease(LockFile);

impl FlockLease {
    /// Takes the lock without waiting; `None` when another process (or another descriptor of this one) holds it.
    pub(super) fn try_take(path: &Path) -> Result<Option<FlockLease>> {
        Ok(LockFile::try_take(path)?.map(FlockLease))
    }
}

impl Lease for FlockLease {
    fn write_note(&mut self, note: &str) -> Result<()> {
        self.0.write_note(note)
    }
}

/// The note in a lease file, trimmed.
pub(super) fn read_note(path: &Path) -> Option<String> {
    LockFile::read_note(path)
}

/// Whether a process holds a flock on the file (see [`crate::lockfile::holder`]); `None` when `/proc/locks` cannot
/// be read.
pub(super) fn is_held(path: &Path) -> Option<bool> {
    crate::lockfile::holder(path).map(|h| h.is_some())
}
