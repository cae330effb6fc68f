//! The local blob store: every blob one whole read-only (0444) file at `objects/<2 hex>/<2 hex>/<64 hex>`, never
//! modified after it lands. Landing is `chmod 0444` + an atomic rename out of staging (same filesystem) + the
//! directory fsyncs; a deferred landing leaves the fsyncs to one `syncfs` of the store.

use std::fs::{self, File};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::staging::{fsync_dir, hash_from_disk, remove_if_exists, sync_fs};
use super::{BlobReader, BlobStore, Durability, HashHex};
use crate::error::{Error, IoContext, Result};

/// Blobs as files under one directory (an archive's `objects/`).
#[derive(Clone, Debug)]
pub struct LocalBlobs {
    objects: PathBuf,
    /// Where the archive keeps the blobs' outboards (`Archive::outboards_dir`): a removed blob's goes with it.
    outboards: Option<PathBuf>,
}

impl LocalBlobs {
    /// The store in `objects`, created (0700) if it is not there.
    pub fn open(objects: &Path) -> Result<LocalBlobs> {
        if !objects.is_dir() {
            fs::DirBuilder::new().mode(0o700).create(objects).at(objects)?;
        }
        Ok(LocalBlobs { objects: objects.to_path_buf(), outboards: None })
    }

    /// The same store, removing a blob's outboard (`blobs::outboard`, under `dir`) with the blob.
    pub fn with_outboards(mut self, dir: &Path) -> LocalBlobs {
        self.outboards = Some(dir.to_path_buf());
        self
    }

    /// Where the blob with this hash lives (whether or not it is there).
    pub fn path(&self, hash: &str) -> PathBuf {
        object_path(&self.objects, hash)
    }

    fn land_file(&self, staged: &Path, hash: &str, durable: bool) -> Result<()> {
        let dest = self.path(hash);
        if dest.is_file() {
            return remove_if_exists(staged);
        }
        let dir = dest.parent().unwrap_or(&self.objects).to_path_buf();
        if !dir.is_dir() {
            let outer = dir.parent().unwrap_or(&self.objects).to_path_buf();
            let outer_new = !outer.is_dir();
            fs::DirBuilder::new().recursive(true).mode(0o700).create(&dir).at(&dir)?;
            if durable {
                if outer_new {
                    fsync_dir(&self.objects)?;
                }
                fsync_dir(&outer)?;
            }
        }
        fs::set_permissions(staged, fs::Permissions::from_mode(0o444)).at(staged)?;
        fs::rename(staged, &dest).at(&dest)?;
        if durable {
            fsync_dir(&dir)?;
        }
        Ok(())
    }
}

impl BlobStore for LocalBlobs {
    fn describe(&self) -> String {
        format!("local:{}", self.objects.display())
    }

    fn objects_dir(&self) -> Option<&Path> {
        Some(&self.objects)
    }

    fn contains(&self, hash: &str) -> Result<bool> {
        Ok(self.path(hash).is_file())
    }

    fn size(&self, hash: &str) -> Result<Option<u64>> {
        let p = self.path(hash);
        match fs::metadata(&p) {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(p, e)),
        }
    }

    fn land(&self, staged: &Path, hash: &str, durability: Durability) -> Result<()> {
        self.land_file(staged, hash, durability == Durability::Now)
    }

    fn replace(&self, staged: &Path, hash: &str) -> Result<()> {
        let dest = self.path(hash);
        let dir = dest.parent().unwrap_or(&self.objects).to_path_buf();
        if !dir.is_dir() {
            return self.land_file(staged, hash, true);
        }
        fs::set_permissions(staged, fs::Permissions::from_mode(0o444)).at(staged)?;
        fs::rename(staged, &dest).at(&dest)?;
        fsync_dir(&dir)
    }

    fn remove(&self, hash: &str) -> Result<()> {
        if !super::is_hash(hash) {
            return Err(Error::Invalid(format!("{hash:?} is not a blob hash")));
        }
        if let Some(dir) = &self.outboards {
            remove_if_exists(&super::outboard::path_in(dir, hash))?;
        }
        let p = self.path(hash);
        match fs::remove_file(&p) {
            Ok(()) => fsync_dir(p.parent().unwrap_or(&self.objects)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(p, e)),
        }
    }

    fn sync(&self) -> Result<()> {
        sync_fs(&self.objects)
    }

    fn open(&self, hash: &str) -> Result<Box<dyn BlobReader>> {
        let p = self.path(hash);
        let file = File::open(&p).at(&p)?;
        Ok(Box::new(FileBlob::new(p, file)?))
    }

    fn rehash(&self, hash: &str) -> Result<HashHex> {
        hash_from_disk(&self.path(hash))
    }

    fn local_path(&self, hash: &str) -> Option<PathBuf> {
        Some(self.path(hash))
    }
}

/// A blob that is a local file, read with `pread`.
pub struct FileBlob {
    file: File,
    len: u64,
    path: PathBuf,
}

impl FileBlob {
    /// The opened blob file `file` at `path` (the path names it in errors).
    pub fn new(path: PathBuf, file: File) -> Result<FileBlob> {
        let len = file.metadata().at(&path)?.len();
        Ok(FileBlob { file, len, path })
    }
}

impl BlobReader for FileBlob {
    fn len(&self) -> u64 {
        self.len
    }

    fn will_need(&self, offset: u64, len: u64) {
        // Advisory: a refusal changes nothing. A length of 0 (None) would mean "to the end of the file".
        if let Some(len) = std::num::NonZeroU64::new(len) {
            let _ = rustix::fs::fadvise(&self.file, offset, Some(len), rustix::fs::Advice::WillNeed);
        }
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<usize> {
        super::staging::pread_full(&self.file, buf, offset).at(&self.path)
    }
}

/// Where a blob with this hash is placed under an objects directory: `<2 hex>/<2 hex>/<64 hex>` (the local
/// store's layout, which stores wrapping it, such as the vault, keep).
pub fn object_path(objects: &Path, hash: &str) -> PathBuf {
    let (a, b) = (hash.get(0..2).unwrap_or("00"), hash.get(2..4).unwrap_or("00"));
    objects.join(a).join(b).join(hash)
}

/// Errs unless `dir` (or its nearest existing parent) is on the same filesystem as the archive root: a local
/// store elsewhere must still be reachable by rename from staging.
pub(crate) fn same_filesystem(dir: &Path, archive_root: &Path) -> Result<()> {
    let probe = dir.ancestors().find(|p| p.exists()).unwrap_or(dir);
    let a = fs::metadata(probe).at(probe)?.dev();
    let b = fs::metadata(archive_root).at(archive_root)?.dev();
    if a != b {
        return Err(Error::Invalid(format!(
            "blob store {dir:?} is on another filesystem than the archive {archive_root:?}: staged copies land by rename"
        )));
    }
    Ok(())
}
