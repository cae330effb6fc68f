//! Sources: where footage is read from. One trait (`Source`) covers local folders and cards, SMB shares and NFS
//! exports; the import pipeline only talks to the trait. Errors carry a raw errno where there is one, so that
//! `Error::is_transient` can tell a dropped connection (retry) from a missing file or a refused login (fail). A scan yields every regular file under the given roots
//! with its size and mtime, and records what it will not import (symlinks, devices, unreadable folders).

pub mod local;
pub mod nfs;
pub mod smb;

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::error::Result;

/// What a scan found at one path.
#[derive(Clone, Debug)]
pub enum EntryKind {
    /// A regular file to import.
    File { size: u64, mtime_ns: i64 },
    /// Something recorded and left alone, with the reason.
    Skipped(String),
    /// Something that should have been importable but could not be read.
    Unreadable(String),
}

#[derive(Clone, Debug)]
pub struct SourceEntry {
    /// The path as the source understands it.
    pub path: PathBuf,
    /// The path relative to its scan root (the original relative path kept in the catalog).
    pub rel: PathBuf,
    pub kind: EntryKind,
}

/// Size and modification time of a source file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileMeta {
    pub size: u64,
    pub mtime_ns: i64,
}

/// A place footage comes from.
pub trait Source: Send + Sync {
    /// A short description for the catalog and messages (`local:/media/card`); never contains secrets.
    fn describe(&self) -> String;
    /// Every entry under the roots, in a stable order (sorted by path within each directory).
    fn scan(&self, roots: &[PathBuf]) -> Result<Vec<SourceEntry>>;
    fn stat(&self, path: &Path) -> Result<FileMeta>;
    /// Opens a file for sequential reading from `offset`.
    fn open_at(&self, path: &Path, offset: u64) -> Result<Box<dyn Read + Send>>;
    /// Hashes a file where it lies, if the source can do that faster than streaming it (local disks).
    fn hash_in_place(&self, _path: &Path) -> Option<Result<String>> {
        None
    }
    fn remove(&self, path: &Path) -> Result<()>;
    /// Renames within the source (post-import `move:`); the target's parent must exist.
    fn rename(&self, from: &Path, to: &Path) -> Result<()>;
    /// Creates a directory and its missing parents.
    fn create_dir_all(&self, path: &Path) -> Result<()>;
    /// Drops any connection so the next call connects afresh (after a transient error).
    fn reconnect(&self) {}
}
