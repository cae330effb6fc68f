//! Blobs: where verified content lives, by BLAKE3 hash. [`BlobStore`] is the seam every backend implements; the
//! local store ([`local::LocalBlobs`], `objects/<2 hex>/<2 hex>/<64 hex>`, 0444 files) is the default and the only
//! one that can hand out a blob as a local file (passthrough, O_DIRECT, mmap hashing). Staging (`tmp/`,
//! [`staging`]) stays on local disk for every backend: the inline hash, the fsync, the cache drop and the re-hash
//! from disk happen there, before a store is asked to land anything. [`memory::MemoryBlobs`] is an in-memory store
//! with fault injection for tests; [`conformance`] is the suite every backend must pass.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, Result};

pub mod conformance;
pub mod direct;
pub mod hash;
pub mod local;
pub mod memory;
pub mod outboard;
#[cfg(feature = "s3")]
pub mod s3;
pub mod staging;
pub mod vault;

pub use hash::{digest_file, hash_file, hash_in_memory, is_hash, Digest, HashHex, Hashers, Sums};
pub use staging::{
    copy_hashing, digest_from_disk, drop_cache, free_bytes, fsync_dir, hash_from_disk, hash_prefix, hash_read_ahead,
    read_ahead, read_back, read_full, remove_if_exists, sync_fs, validate_from_disk, Checkpoints, Copied, CopyStart,
    Reopen, Staging, COPY_CHUNK, OUTBOARD_AT_IMPORT,
};
pub use staging::{digest_staged, resume_prefix, validate_staged};

/// When a landing must be durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// Durable when `land` returns.
    Now,
    /// Durable after the next [`BlobStore::sync`] (a batch of small landings made durable together).
    Deferred,
}

/// An open blob, read at any offset from any thread.
pub trait BlobReader: Send + Sync {
    /// The blob's length in bytes.
    fn len(&self) -> u64;
    /// True for an empty blob.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Reads up to `buf.len()` bytes at `offset`; fewer only at the end of the blob, 0 at or past it. Stateless:
    /// concurrent calls do not disturb each other.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<usize>;
    /// A hint that `len` bytes at `offset` are read soon (a sequential reader): a store may start reading them.
    fn will_need(&self, _offset: u64, _len: u64) {}
}

/// Where verified content lives, addressed by its BLAKE3 hash. Content never changes once landed, so every method
/// is idempotent and safe to retry; an error whose [`Error::is_transient`] is true may succeed when retried (a
/// network store's timeout), any other is final for that call. No method returns or logs a secret.
pub trait BlobStore: Send + Sync {
    /// Where the blobs are, for messages: `local:/srv/archive/objects`, `s3://bucket/prefix`. Never a secret.
    fn describe(&self) -> String;

    /// True when the blob is stored (whole: a store never shows a partial blob).
    fn contains(&self, hash: &str) -> Result<bool>;

    /// The stored blob's length, `None` when it is not stored.
    fn size(&self, hash: &str) -> Result<Option<u64>>;

    /// Lands a staged file whose content was verified to hash to `hash`. On `Ok` the staged file is gone (renamed
    /// into the store, or uploaded and removed) and the blob is visible whole; if the blob was stored already the
    /// staged file is just removed (identical content by definition). Idempotent. With [`Durability::Now`] the
    /// blob is durable on return; with `Deferred`, after the next [`BlobStore::sync`]. On `Err` the staged file
    /// is left for the caller (to retry or remove), and no partial blob is visible.
    fn land(&self, staged: &Path, hash: &str, durability: Durability) -> Result<()>;

    /// Lands a staged, verified copy in place of a stored blob found damaged or missing (rot healed): a reader
    /// sees the old bytes or the new, never a mix; durable on return. Idempotent.
    fn replace(&self, staged: &Path, hash: &str) -> Result<()>;

    /// Deletes a stored blob (and whatever the store derived from it) for good: `gc`, for content no file
    /// references, under the catalog's write lock. Idempotent: a blob that is not stored is `Ok`. A reader that
    /// has the blob open may go on reading it (local files: until closed).
    fn remove(&self, hash: &str) -> Result<()>;

    /// Makes every `Deferred` landing before it durable. A no-op for a store whose landings are always durable.
    fn sync(&self) -> Result<()>;

    /// Opens a stored blob for [`BlobReader::read_at`]; an error naming the blob when it is not stored.
    fn open(&self, hash: &str) -> Result<Box<dyn BlobReader>>;

    /// Reads the whole blob back from its medium (never a cache of ours) and returns the hash of what came back:
    /// `verify`. Errs when the blob is missing or unreadable.
    fn rehash(&self, hash: &str) -> Result<HashHex>;

    /// The blob as a local file, where it is one (the local store): lets the mount hand the kernel a backing file
    /// (passthrough), read it with `O_DIRECT`, and hash it with mmap. `None` for remote stores; the path may name
    /// a file that is not (or no longer) there.
    fn local_path(&self, _hash: &str) -> Option<PathBuf> {
        None
    }

    /// True for a store across a network (S3): landing is bound by its round trips, so an import keeps more files
    /// in flight.
    fn is_remote(&self) -> bool {
        false
    }

    /// The directory that holds the blobs as files `<2 hex>/<2 hex>/<64 hex>` (the local store's `objects/`),
    /// for the orphan check to walk. `None` for stores that are not such a directory.
    fn objects_dir(&self) -> Option<&Path> {
        None
    }

    /// The seal a copy is staged under so that landing it is a rename (the vault's: [`vault::StagedSeal`],
    /// the import writes its copies sealed and validates them decrypted); `None` for every other store, whose
    /// staged files are the plaintext. `land` and `replace` take the plaintext from any caller either way.
    fn stage_seal(&self) -> Option<vault::StagedSeal> {
        None
    }
}

/// A [`BlobReader`] as a `Read + Seek` stream (the media parser over a blob that is not a local file).
pub struct ReadAtCursor<'a> {
    blob: &'a dyn BlobReader,
    pos: u64,
}

impl<'a> ReadAtCursor<'a> {
    pub fn new(blob: &'a dyn BlobReader) -> Self {
        ReadAtCursor { blob, pos: 0 }
    }
}

impl std::io::Read for ReadAtCursor<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.blob.read_at(buf, self.pos).map_err(std::io::Error::other)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl std::io::Seek for ReadAtCursor<'_> {
    fn seek(&mut self, to: std::io::SeekFrom) -> std::io::Result<u64> {
        let base = match to {
            std::io::SeekFrom::Start(n) => Some(n),
            std::io::SeekFrom::End(d) => self.blob.len().checked_add_signed(d),
            std::io::SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = base.ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "seek before start"))?;
        Ok(self.pos)
    }
}

/// A whole stored blob in memory (small ones: sidecars).
pub fn read_whole(store: &dyn BlobStore, hash: &str) -> Result<Vec<u8>> {
    let r = store.open(hash)?;
    let mut buf = vec![0u8; usize::try_from(r.len()).unwrap_or(usize::MAX)];
    let n = r.read_at(&mut buf, 0)?;
    buf.truncate(n);
    Ok(buf)
}

/// Opens the blob store an archive's configuration names. `local` is `objects/` under the archive root (today's
/// layout exactly); `file:///abs/dir` is a local store elsewhere on the same filesystem as the archive (landing
/// is a rename out of `tmp/`).
pub fn open_store(url: &str, archive_root: &Path) -> Result<Arc<dyn BlobStore>> {
    if url == "local" {
        let store = local::LocalBlobs::open(&archive_root.join("objects"))?;
        return Ok(Arc::new(store.with_outboards(&archive_root.join("outboards"))));
    }
    if let Some(path) = url.strip_prefix("file://") {
        let dir = Path::new(path);
        if !dir.is_absolute() {
            return Err(Error::Invalid(format!("blob store URL {url:?}: a file:// store needs an absolute path")));
        }
        local::same_filesystem(dir, archive_root)?;
        return Ok(Arc::new(local::LocalBlobs::open(dir)?.with_outboards(&archive_root.join("outboards"))));
    }
    #[cfg(feature = "s3")]
    if url.starts_with("s3://") {
        return Ok(Arc::new(s3::S3Blobs::open(url, archive_root)?));
    }
    let scheme = url.split_once("://").map_or(url, |(s, _)| s);
    Err(Error::Invalid(format!(
        "blob store URL {url:?}: the scheme {scheme:?} is not built into this nightfox (known: local, file://{})",
        if cfg!(feature = "s3") { ", s3://" } else { "; s3:// needs the s3 feature" }
    )))
}
