//! Staging: `tmp/` under the archive root, on local disk for every blob store. This is where Nightfox's guarantee
//! is produced: a copy is written here hashed inline ([`copy_hashing`]), fsynced, dropped from the page cache and
//! re-hashed from the disk ([`hash_from_disk`]) before any blob store is asked to land it. Also the disk helpers
//! those steps need: directory fsyncs, `syncfs`, cache drops, read-ahead, free space.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use super::direct;
use super::hash::{hash_reader, hasher_of, Digest, HashHex, Hashers, Sums};
use super::outboard::Outboard;
use crate::error::{Error, IoContext, Result};

/// Size of the copy buffer: large enough for sequential throughput, small enough to interrupt quickly.
pub const COPY_CHUNK: usize = 4 << 20;

/// The staging directory of an archive (`tmp/`): in-flight copies, named by their work item.
#[derive(Clone, Debug)]
pub struct Staging {
    dir: PathBuf,
}

impl Staging {
    /// The staging directory of the archive at `archive_root`, created (0700) if it is not there.
    pub fn open(archive_root: &Path) -> Result<Staging> {
        let dir = archive_root.join("tmp");
        if !dir.is_dir() {
            fs::DirBuilder::new().mode(0o700).create(&dir).at(&dir)?;
        }
        Ok(Staging { dir })
    }

    /// The directory itself (listing leftovers, statfs).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The staged file for a piece of in-flight work.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Creates (truncating) a staged file for writing, 0600.
    pub fn create(&self, name: &str) -> Result<(File, PathBuf)> {
        let path = self.path(name);
        let f =
            OpenOptions::new().write(true).read(true).create(true).truncate(true).mode(0o600).open(&path).at(&path)?;
        Ok((f, path))
    }

    /// Makes every staged write durable at once (`syncfs` of the staging filesystem).
    pub fn sync(&self) -> Result<()> {
        sync_fs(&self.dir)
    }
}

/// fsyncs a directory so that renames and creations inside it are durable.
pub fn fsync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).at(dir)
}

/// Makes everything written to the filesystem holding `path` durable (`syncfs(2)`): one journal commit for a
/// batch of small copies and their landings instead of three fsyncs each.
pub fn sync_fs(path: &Path) -> Result<()> {
    let d = File::open(path).at(path)?;
    // SAFETY: valid descriptor.
    if unsafe { libc::syncfs(d.as_raw_fd()) } != 0 {
        return Err(Error::io(path, io::Error::last_os_error()));
    }
    Ok(())
}

pub fn remove_if_exists(p: &Path) -> Result<()> {
    match fs::remove_file(p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(p, e)),
    }
}

/// Drops a file's clean pages from the page cache so the next read comes from the medium.
pub fn drop_cache(f: &File) {
    // SAFETY: valid descriptor; advisory call with no memory effects.
    unsafe {
        libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED);
    }
}

/// Hashes a file as it is on disk (its data must already be fsynced): its cached pages dropped first, then read
/// back (with `O_DIRECT` from a chunk up, where the filesystem allows), each chunk hashed while the next is read.
pub fn hash_from_disk(path: &Path) -> Result<HashHex> {
    Ok(hash_on_disk(path, true, Hashers::blake3_only())?.hash)
}

/// [`hash_from_disk`] with the [`Sums`] of the same read (a staged copy whose inline sums are not known: one a
/// crash left behind, or one written out of order).
pub fn digest_from_disk(path: &Path) -> Result<Digest> {
    hash_on_disk(path, true, Hashers::new())
}

/// The smallest blob whose outboard (the tree of verified reads, [`Outboard`]) is built by the validate pass, from
/// the same read; a smaller one gets its own at its first verified open (one short read).
pub const OUTBOARD_AT_IMPORT: u64 = 4 << 20;

/// The validate pass: [`hash_from_disk`] (`drop_first`) or [`hash_read_ahead`], with the [`Outboard`] of the same
/// read for a file of [`OUTBOARD_AT_IMPORT`] bytes or more (its hash is then the tree's root).
pub fn validate_from_disk(path: &Path, drop_first: bool) -> Result<(HashHex, Option<Outboard>)> {
    let mut r = direct::open_read(path).at(path)?;
    if r.file().metadata().at(path)?.len() < OUTBOARD_AT_IMPORT {
        drop(r);
        return Ok((hash_on_disk(path, drop_first, Hashers::blake3_only())?.hash, None));
    }
    if drop_first {
        drop_cache(r.file());
    }
    let tree = Outboard::of_reader(&mut r, path)?;
    drop_cache(r.file());
    let root = tree.root().ok_or_else(|| Error::Invalid(format!("{}: shorter than it was", path.display())))?;
    Ok((root.to_hex().to_string(), Some(tree)))
}

/// Drops a file's cached pages (its data must already be durable) and starts reading it back from the disk in
/// the background, so that a batch of small files is read back at once; [`hash_read_ahead`] then hashes it.
pub fn read_back(path: &Path) -> Result<()> {
    let f = File::open(path).at(path)?;
    drop_cache(&f);
    read_ahead(&f);
    Ok(())
}

/// Hashes a file after [`read_back`]: what the disk gave back, without dropping the pages just read.
pub fn hash_read_ahead(path: &Path) -> Result<HashHex> {
    Ok(hash_on_disk(path, false, Hashers::blake3_only())?.hash)
}

/// Starts reading a whole file into the page cache in the background (`POSIX_FADV_WILLNEED`), unless it is
/// large enough to be read with `O_DIRECT` (see [`direct::open_read`]), which would not use those pages.
pub fn read_ahead(f: &File) {
    if f.metadata().is_ok_and(|m| direct::reads_direct(m.len())) {
        return;
    }
    // SAFETY: valid descriptor; advisory call with no memory effects.
    unsafe {
        libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_WILLNEED);
    }
}

fn hash_on_disk(path: &Path, drop_first: bool, h: Hashers) -> Result<Digest> {
    let mut r = direct::open_read(path).at(path)?;
    if drop_first {
        drop_cache(r.file());
    }
    let digest = hash_reader(&mut r, path, h)?;
    drop_cache(r.file());
    Ok(digest)
}

/// Writes a whole small file by a temp name in the same folder (`*.nightfox-tmp`), fsyncs it and renames it into
/// place: never seen half written.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("nightfox-tmp");
    let mut f = File::create(&tmp).at(&tmp)?;
    f.write_all(bytes).at(&tmp)?;
    f.sync_all().at(&tmp)?;
    fs::rename(&tmp, path).at(path)
}

/// Bytes free on the filesystem holding `path`, for root (`privileged`, the blocks reserved for root included)
/// or for anyone else; `None` when it cannot be asked.
pub fn free_bytes(path: &Path, privileged: bool) -> Option<u64> {
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: zeroed plain-data struct as an out pointer.
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: valid C string and out pointer.
    if unsafe { libc::statvfs(c.as_ptr(), &mut s) } != 0 {
        return None;
    }
    let blocks = if privileged { s.f_bfree } else { s.f_bavail };
    Some(blocks as u64 * s.f_frsize as u64)
}

/// What [`copy_hashing`] read and wrote.
pub struct Copied {
    pub hash: HashHex,
    /// The checksums of the same read (`None` only when the copy started from a BLAKE3-only state).
    pub sums: Option<Sums>,
    pub len: u64,
}

/// Hashes the first `len` bytes of a file as they are on disk (the kept prefix of a partial copy, continued by a
/// resume), BLAKE3 and the [`Sums`]: the hashers are returned to go on with the rest.
pub fn hash_prefix(path: &Path, len: u64) -> Result<Hashers> {
    let mut r = direct::open_read(path).at(path)?;
    drop_cache(r.file());
    let (h, got) = hasher_of(&mut (&mut r).take(len), path, Hashers::new())?;
    if got < len {
        return Err(Error::io(
            path,
            io::Error::new(io::ErrorKind::UnexpectedEof, "partial copy shorter than recorded"),
        ));
    }
    Ok(h)
}

/// Where a copy starts: at 0, or after a kept prefix already hashed (a resume inside a file).
#[derive(Default)]
pub struct CopyStart {
    pub hasher: Hashers,
    pub offset: u64,
}

/// Makes a long copy resumable: every `every` bytes the destination is made durable (`fdatasync`) and `record` is
/// told how many bytes now are (a resume after a crash continues from the last one recorded).
pub struct Checkpoints<'a> {
    pub every: u64,
    pub record: &'a mut (dyn FnMut(u64) -> Result<()> + Send),
}

/// Asked for a new reader when reading fails at `offset` (the bytes before it are copied and hashed); returns
/// the reader to continue from `offset`, or the error to stop with.
pub type Reopen<'a> = dyn FnMut(u64, Error) -> Result<Box<dyn Read + Send>> + 'a;

/// Copies `src` into `dst` while hashing what was read (BLAKE3 and the [`Sums`]), in one pass: the next chunk is read while the last one
/// is hashed and written, and `dst` is written with `O_DIRECT` where its filesystem allows (the short last chunk
/// goes through the page cache). All-zero chunks are skipped with a seek so sparse inputs stay sparse.
/// `on_progress` gets the bytes of each chunk read; returning false stops the copy with
/// `io::ErrorKind::Interrupted`. A read error goes to `reopen`, which may resume the source at the offset already
/// copied (the inline hash simply continues). The destination is fsynced before returning when `durable` (else
/// the caller syncs a batch at once).
#[allow(clippy::too_many_arguments)]
pub fn copy_hashing(
    mut src: Box<dyn Read + Send>,
    src_path: &Path,
    dst: &mut File,
    dst_path: &Path,
    start: CopyStart,
    on_progress: &mut dyn FnMut(u64) -> bool,
    reopen: &mut Reopen<'_>,
    mut checkpoints: Option<Checkpoints<'_>>,
    durable: bool,
) -> Result<Copied> {
    let mut read = start.offset;
    let fill = |buf: &mut [u8]| -> Result<usize> {
        let n = loop {
            match read_full(&mut *src, buf) {
                Ok(n) => break n,
                // What was read of this chunk is dropped; the source resumes where the copy stands.
                Err(e) => src = reopen(read, Error::io(src_path, e))?,
            }
        };
        read += n as u64;
        if n > 0 && !on_progress(n as u64) {
            return Err(Error::io(src_path, io::Error::new(io::ErrorKind::Interrupted, "import interrupted")));
        }
        Ok(n)
    };
    if start.offset > 0 {
        dst.seek(SeekFrom::Start(start.offset)).at(dst_path)?;
    }
    let mut direct = direct::set_direct(dst, start.offset % direct::ALIGN as u64 == 0);
    let mut hasher = start.hasher;
    let mut len = start.offset;
    let mut next_checkpoint = checkpoints.as_ref().map_or(u64::MAX, |c| len + c.every);
    let mut pending_hole = false;
    let out = &mut *dst;
    direct::pipeline(fill, |chunk| {
        hasher.update(chunk);
        if is_zero(chunk) {
            out.seek(SeekFrom::Current(chunk.len() as i64)).at(dst_path)?;
            pending_hole = true;
        } else {
            if direct && chunk.len() % direct::ALIGN != 0 {
                direct = direct::set_direct(out, false);
            }
            let mut done = 0;
            while done < chunk.len() {
                match out.write(&chunk[done..]) {
                    Ok(0) => return Err(Error::io(dst_path, io::ErrorKind::WriteZero.into())),
                    Ok(k) => done += k,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    // Refused for this file after all (or after a short write left an unaligned rest): buffered.
                    Err(e) if direct && e.raw_os_error() == Some(libc::EINVAL) => {
                        direct = direct::set_direct(out, false);
                    }
                    Err(e) => return Err(Error::io(dst_path, e)),
                }
            }
            pending_hole = false;
        }
        len += chunk.len() as u64;
        if len >= next_checkpoint {
            if let Some(c) = checkpoints.as_mut() {
                if pending_hole {
                    out.set_len(len).at(dst_path)?;
                }
                out.sync_data().at(dst_path)?;
                (c.record)(len)?;
                next_checkpoint = len + c.every;
            }
        }
        Ok(())
    })?;
    if direct {
        direct::set_direct(dst, false);
    }
    if pending_hole {
        dst.set_len(len).at(dst_path)?;
    }
    if durable {
        dst.sync_all().at(dst_path)?;
    }
    let Digest { hash, sums } = hasher.finalize();
    Ok(Copied { hash, sums, len })
}

/// Reads `buf.len()` bytes at `offset` of a file (`pread`, stateless), fewer only at the end of the file.
pub fn pread_full(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    use std::os::unix::fs::FileExt;
    let mut n = 0usize;
    while n < buf.len() {
        match file.read_at(&mut buf[n..], offset + n as u64) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

pub fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

fn is_zero(b: &[u8]) -> bool {
    let (pre, mid, post) = unsafe { b.align_to::<u128>() };
    pre.iter().all(|x| *x == 0) && mid.iter().all(|x| *x == 0) && post.iter().all(|x| *x == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sums_of(data: &[u8]) -> Sums {
        Sums::from_digests(xxhash_rust::xxh64::xxh64(data, 0), xxhash_rust::xxh3::xxh3_128(data))
    }

    #[test]
    fn copy_keeps_holes_and_hash() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        let mut data = vec![0u8; COPY_CHUNK * 3 + 17];
        data[COPY_CHUNK + 5] = 7;
        fs::write(&src, &data).unwrap();
        let dst_path = dir.path().join("dst");
        let mut dst = File::create(&dst_path).unwrap();
        let r = Box::new(File::open(&src).unwrap());
        let c = copy_hashing(
            r,
            &src,
            &mut dst,
            &dst_path,
            CopyStart::default(),
            &mut |_| true,
            &mut |_, e| Err(e),
            None,
            true,
        )
        .unwrap();
        assert_eq!(c.len, data.len() as u64);
        assert_eq!(c.hash, blake3::hash(&data).to_hex().to_string());
        assert_eq!(c.sums, Some(sums_of(&data)));
        assert_eq!(fs::read(&dst_path).unwrap(), data);
        assert_eq!(hash_from_disk(&dst_path).unwrap(), c.hash);
        assert_eq!(digest_from_disk(&dst_path).unwrap(), Digest { hash: c.hash, sums: c.sums });
    }

    /// A reader that fails once after `fail_at` bytes, like a dropped connection.
    struct Flaky {
        data: Vec<u8>,
        pos: usize,
        fail_at: Option<usize>,
    }
    impl Read for Flaky {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if let Some(f) = self.fail_at {
                if self.pos >= f {
                    self.fail_at = None;
                    return Err(io::Error::from_raw_os_error(libc::ECONNRESET));
                }
            }
            let end = (self.pos + buf.len().min(65536)).min(self.data.len());
            let n = end - self.pos;
            buf[..n].copy_from_slice(&self.data[self.pos..end]);
            self.pos = end;
            Ok(n)
        }
    }

    #[test]
    fn a_dropped_source_resumes_at_the_offset_and_the_hash_continues() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..COPY_CHUNK * 2 + 12345).map(|i| (i * 7 % 251) as u8 + 1).collect();
        let dst_path = dir.path().join("dst");
        let mut dst = File::create(&dst_path).unwrap();
        let src = Box::new(Flaky { data: data.clone(), pos: 0, fail_at: Some(COPY_CHUNK + 70_000) });
        let mut offsets = Vec::new();
        let d2 = data.clone();
        let c = copy_hashing(
            src,
            Path::new("src"),
            &mut dst,
            &dst_path,
            CopyStart::default(),
            &mut |_| true,
            &mut |off, _e| {
                offsets.push(off);
                Ok(Box::new(Flaky { data: d2.clone(), pos: off as usize, fail_at: None }))
            },
            None,
            true,
        )
        .unwrap();
        assert_eq!(offsets, vec![COPY_CHUNK as u64]);
        assert_eq!(c.hash, blake3::hash(&data).to_hex().to_string());
        assert_eq!(fs::read(&dst_path).unwrap(), data);
    }

    #[test]
    fn a_copy_continues_after_a_kept_prefix_with_checkpoints() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..COPY_CHUNK * 5 + 999).map(|i| (i * 13 % 251) as u8 + 1).collect();
        let dst_path = dir.path().join("dst");
        let cut = COPY_CHUNK as u64 * 2;
        fs::write(&dst_path, &data[..cut as usize + 777]).unwrap();
        let start = CopyStart { hasher: hash_prefix(&dst_path, cut).unwrap(), offset: cut };
        let mut dst = OpenOptions::new().write(true).read(true).open(&dst_path).unwrap();
        dst.set_len(cut).unwrap();
        let src = Box::new(io::Cursor::new(data[cut as usize..].to_vec()));
        let mut seen = Vec::new();
        let mut record = |n: u64| {
            seen.push(n);
            Ok(())
        };
        let cps = Checkpoints { every: COPY_CHUNK as u64 * 2, record: &mut record };
        let c = copy_hashing(
            src,
            Path::new("src"),
            &mut dst,
            &dst_path,
            start,
            &mut |_| true,
            &mut |_, e| Err(e),
            Some(cps),
            true,
        )
        .unwrap();
        assert_eq!(c.len, data.len() as u64);
        assert_eq!(c.hash, blake3::hash(&data).to_hex().to_string());
        assert_eq!(c.sums, Some(sums_of(&data)), "the sums continue over the kept prefix");
        assert_eq!(fs::read(&dst_path).unwrap(), data);
        assert_eq!(seen, vec![COPY_CHUNK as u64 * 4]);
        assert!(hash_prefix(&dst_path, data.len() as u64 + 1).is_err());
    }
}
