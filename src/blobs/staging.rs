//! Staging: `tmp/` under the archive root, on local disk for every blob store. This is where Nightfox's guarantee
//! is produced: a copy is written here hashed inline ([`copy_hashing`]), fsynced, dropped from the page cache and
//! re-hashed from the disk ([`hash_from_disk`]) before any blob store is asked to land it. For a store that stages
//! its copies sealed (the vault, [`super::BlobStore::stage_seal`]) the copy is sealed as it is written and the
//! re-hash decrypts what the disk gives back ([`validate_staged`], [`digest_staged`], [`resume_prefix`]). Also the
//! disk helpers those steps need: directory fsyncs, `syncfs`, cache drops, read-ahead, free space.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use super::direct;
use super::hash::{hash_reader, hasher_of, Digest, HashHex, Hashers, Sums};
use super::outboard::Outboard;
use super::vault::{self, Sealer, StagedSeal};
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
    rustix::fs::syncfs(&d).map_err(|e| Error::io(path, io::Error::from(e)))
}

pub fn remove_if_exists(p: &Path) -> Result<()> {
    match fs::remove_file(p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(p, e)),
    }
}

/// [`drop_cache`] of a sealed staged copy of `len` bytes but its first and last pages: its header and trailer,
/// which landing it and the first open of the blob read again (two reads from the disk per small file else).
fn drop_cache_but_ends(f: &File, len: u64) {
    let page = direct::ALIGN as u64;
    let end = len.saturating_sub(vault::TRAILER) / page * page;
    if let Some(len) = std::num::NonZeroU64::new(end.saturating_sub(page)) {
        let _ = rustix::fs::fadvise(f, page, Some(len), rustix::fs::Advice::DontNeed);
    }
}

/// Drops a file's clean pages from the page cache so the next read comes from the medium.
pub fn drop_cache(f: &File) {
    // Advisory: a refusal changes nothing (the re-read then may come from the cache, still the same bytes).
    let _ = rustix::fs::fadvise(f, 0, None, rustix::fs::Advice::DontNeed);
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

/// The validate pass of a staged copy, [`validate_from_disk`], where `seal` says how it was staged: sealed
/// ([`StagedSeal`]), it is read back and decrypted, and the hash is that of the plaintext only if every chunk and
/// the trailer authenticate and the trailer names that hash; else what is returned is no hash (so it matches
/// none: the copy is made again).
pub fn validate_staged(
    path: &Path,
    drop_first: bool,
    seal: Option<&StagedSeal>,
) -> Result<(HashHex, Option<Outboard>)> {
    let Some(seal) = seal else { return validate_from_disk(path, drop_first) };
    let r = direct::open_read(path).at(path)?;
    let stored = r.file().metadata().at(path)?.len();
    if drop_first {
        drop_cache(r.file());
    }
    let mut u = seal.unseal(r, stored);
    let result = if vault::plain_len(stored).is_some_and(|n| n >= OUTBOARD_AT_IMPORT) {
        Outboard::of_reader(&mut u, path).and_then(|tree| match tree.root() {
            Some(root) => Ok((root.to_hex().to_string(), Some(tree))),
            None => Err(Error::Invalid(format!("{}: shorter than it was", path.display()))),
        })
    } else {
        hash_reader(&mut u, path, Hashers::blake3_only()).map(|d| (d.hash, None))
    };
    drop_cache_but_ends(u.get_ref().file(), stored);
    unsealed(&u, result)
}

/// [`digest_from_disk`] of a staged copy, decrypted where `seal` says it was staged sealed (see
/// [`validate_staged`]; the sums are `None` when it does not authenticate).
pub fn digest_staged(path: &Path, seal: Option<&StagedSeal>) -> Result<Digest> {
    let Some(seal) = seal else { return digest_from_disk(path) };
    let r = direct::open_read(path).at(path)?;
    let stored = r.file().metadata().at(path)?.len();
    drop_cache(r.file());
    let mut u = seal.unseal(r, stored);
    let result = hash_reader(&mut u, path, Hashers::new()).map(|d| (d.hash, d.sums));
    drop_cache_but_ends(u.get_ref().file(), stored);
    unsealed(&u, result).map(|(hash, sums)| Digest { hash, sums })
}

/// The outcome of a read of a sealed staged copy: what was hashed, if it all authenticated and the trailer names
/// that hash; else (an error that is the seal's, not the disk's, included) a value that is no hash.
fn unsealed<R: Read, T>(u: &vault::Unseal<R>, result: Result<(HashHex, T)>) -> Result<(HashHex, T)>
where
    T: Default,
{
    if let Some(why) = u.failure() {
        return Ok((vault::unverified(why), T::default()));
    }
    let (hash, rest) = result?;
    match u.named_hash() {
        Some(named) if named == hash => Ok((hash, rest)),
        _ => Ok((vault::unverified("its trailer names another hash than its bytes have"), T::default())),
    }
}

/// Opens a kept partial copy to go on after its first `offset` bytes (a resume inside a file): cut there, those
/// bytes hashed from the disk, and the [`CopyStart`] to continue with. Staged sealed (`seal`), the prefix (whole
/// chunks) is decrypted and sealed again under a fresh salt into a new file that replaces the old one (so no
/// nonce of the blob's key is ever used for other bytes, whatever the rest of the copy reads this time). An error
/// when there is no such prefix (the caller copies from the start).
pub fn resume_prefix(path: &Path, offset: u64, seal: Option<&StagedSeal>) -> Result<(File, CopyStart)> {
    let Some(seal) = seal else {
        let f = OpenOptions::new().read(true).write(true).open(path).at(path)?;
        let mut head = [0u8; 5];
        if f.read_exact_at(&mut head, 0).is_ok() && &head == vault::MAGIC {
            // Staged sealed by a vault this archive no longer has (migrate-blobs since): not the plaintext.
            return Err(Error::Invalid(format!("{}: a sealed partial copy", path.display())));
        }
        f.set_len(offset).at(path)?;
        let hasher = hash_prefix(path, offset)?;
        return Ok((f, CopyStart { hasher, offset, sealer: None }));
    };
    if offset % vault::CHUNK != 0 {
        return Err(Error::Invalid(format!("{}: a sealed prefix ends inside a chunk", path.display())));
    }
    let r = direct::open_read(path).at(path)?;
    if r.file().metadata().at(path)?.len() < vault::sealed_prefix_len(offset) {
        return Err(Error::io(
            path,
            io::Error::new(io::ErrorKind::UnexpectedEof, "partial copy shorter than recorded"),
        ));
    }
    drop_cache(r.file());
    let mut u = seal.unseal_prefix(r, offset / vault::CHUNK);
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".reseal");
    let new_path = path.with_file_name(name);
    let mut out =
        OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&new_path).at(&new_path)?;
    let mut sealer = seal.sealer();
    let resealed = (|| -> Result<Hashers> {
        out.write_all(sealer.header()).at(&new_path)?;
        let mut hasher = Hashers::new();
        let mut sealed = Vec::new();
        direct::pipeline(
            |b| read_full(&mut u, b).at(path),
            |plain| {
                sealed.clear();
                hash_and_seal(&mut hasher, &mut sealer, plain, &mut sealed)?;
                out.write_all(&sealed).at(&new_path)
            },
        )?;
        if sealer.plain_len() != offset {
            return Err(Error::io(path, io::Error::new(io::ErrorKind::UnexpectedEof, "partial copy shorter")));
        }
        out.sync_all().at(&new_path)?;
        fs::rename(&new_path, path).at(path)?;
        Ok(hasher)
    })();
    drop(out);
    let hasher = match resealed {
        Ok(h) => h,
        Err(e) => {
            let _ = remove_if_exists(&new_path);
            return Err(e);
        }
    };
    if let Some(dir) = path.parent() {
        fsync_dir(dir)?;
    }
    let mut f = OpenOptions::new().read(true).write(true).open(path).at(path)?;
    f.seek(SeekFrom::End(0)).at(path)?;
    Ok((f, CopyStart { hasher, offset, sealer: Some(sealer) }))
}

/// Feeds plaintext to the hashes and to the sealer, the sealed chunks appended to `sealed`: side by side
/// (`rayon::join`) from a MiB up; one after the other below (waking the pool costs more than it saves there).
fn hash_and_seal(hasher: &mut Hashers, sealer: &mut Sealer, plain: &[u8], sealed: &mut Vec<u8>) -> Result<()> {
    if plain.len() < 1 << 20 {
        hasher.update(plain);
        return sealer.push(plain, sealed);
    }
    rayon::join(|| hasher.update(plain), || sealer.push(plain, sealed)).1
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
    let _ = rustix::fs::fadvise(f, 0, None, rustix::fs::Advice::WillNeed);
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
    let s = rustix::fs::statvfs(path).ok()?;
    let blocks = if privileged { s.f_bfree } else { s.f_bavail };
    Some(blocks.saturating_mul(s.f_frsize))
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

/// Where a copy starts: at 0, or after a kept prefix already hashed (a resume inside a file, [`resume_prefix`]);
/// with a sealer, the copy is written sealed (its header already written when it goes on after a prefix).
#[derive(Default)]
pub struct CopyStart {
    pub hasher: Hashers,
    pub offset: u64,
    pub sealer: Option<Sealer>,
}

impl CopyStart {
    /// A copy from the start, staged as `seal` says (sealed with a fresh salt, or the plaintext).
    pub fn fresh(seal: Option<&StagedSeal>) -> CopyStart {
        CopyStart { sealer: seal.map(StagedSeal::sealer), ..CopyStart::default() }
    }
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
/// goes through the page cache). All-zero chunks are skipped with a seek so sparse inputs stay sparse. With a
/// sealer in `start` the copy is written sealed instead (buffered, its write-back started as it goes; no holes),
/// the trailer naming the hash last.
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
    let mut sealer = start.sealer;
    let mut sealed_out = match &sealer {
        // A sealed copy going on after its prefix ([`resume_prefix`]: its header and whole chunks).
        Some(_) if start.offset > 0 => {
            let at = vault::sealed_prefix_len(start.offset);
            dst.seek(SeekFrom::Start(at)).at(dst_path)?;
            Some(SealedOut::new(None, at))
        }
        Some(s) => Some(SealedOut::new(Some(s.header()), 0)),
        None => None,
    };
    if sealer.is_none() && start.offset > 0 {
        dst.seek(SeekFrom::Start(start.offset)).at(dst_path)?;
    }
    let mut direct = sealer.is_none() && direct::set_direct(dst, start.offset % direct::ALIGN as u64 == 0);
    let mut hasher = start.hasher;
    let mut len = start.offset;
    let mut next_checkpoint = checkpoints.as_ref().map_or(u64::MAX, |c| len + c.every);
    let mut pending_hole = false;
    let out = &mut *dst;
    direct::pipeline(fill, |chunk| {
        if let (Some(s), Some(o)) = (sealer.as_mut(), sealed_out.as_mut()) {
            hash_and_seal(&mut hasher, s, chunk, &mut o.buf)?;
            o.flush(out, dst_path, false)?;
        } else if is_zero(chunk) {
            hasher.update(chunk);
            out.seek(SeekFrom::Current(chunk.len() as i64)).at(dst_path)?;
            pending_hole = true;
        } else {
            hasher.update(chunk);
            if direct && chunk.len() % direct::ALIGN != 0 {
                direct = direct::set_direct(out, false);
            }
            write_direct(out, dst_path, chunk, &mut direct)?;
            pending_hole = false;
        }
        len += chunk.len() as u64;
        // A sealed copy is a prefix to go on from only at a chunk boundary (every chunk read but the last is one).
        if len >= next_checkpoint && sealer.as_ref().is_none_or(Sealer::at_chunk_boundary) {
            if let Some(c) = checkpoints.as_mut() {
                match sealed_out.as_mut() {
                    Some(o) => o.sync(out, dst_path)?,
                    None => {
                        if pending_hole {
                            out.set_len(len).at(dst_path)?;
                        }
                        out.sync_data().at(dst_path)?;
                    }
                }
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
    let Digest { hash, sums } = hasher.finalize();
    if let (Some(s), Some(mut o)) = (sealer, sealed_out) {
        s.finish(&hash, &mut o.buf)?;
        o.flush(dst, dst_path, true)?;
        if o.direct {
            direct::set_direct(dst, false);
        }
    }
    if durable {
        dst.sync_all().at(dst_path)?;
    }
    Ok(Copied { hash, sums, len })
}

/// Writes all of `bytes` at the file's position: with `O_DIRECT` while `direct` (turned off, and the rest
/// written buffered, where the filesystem refuses it).
fn write_direct(out: &mut File, path: &Path, bytes: &[u8], direct: &mut bool) -> Result<()> {
    let mut done = 0;
    while done < bytes.len() {
        match out.write(&bytes[done..]) {
            Ok(0) => return Err(Error::io(path, io::ErrorKind::WriteZero.into())),
            Ok(k) => done += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // Refused for this file after all (or after a short write left an unaligned rest): buffered.
            Err(e) if *direct && e.raw_os_error() == Some(libc::EINVAL) => {
                *direct = direct::set_direct(out, false);
            }
            Err(e) => return Err(Error::io(path, e)),
        }
    }
    Ok(())
}

/// A sealed copy's output: the sealer appends to `buf`, whose data (from `lead`) starts on a
/// [`direct::ALIGN`] boundary, and what is whole in aligned pieces is written with `O_DIRECT` (the rest waits for
/// more) once a whole [`COPY_CHUNK`] came (a small file is written buffered, made durable with its batch);
/// buffered, its write-back started as it goes, where direct I/O is refused or the copy goes on after a prefix
/// (which ends unaligned).
struct SealedOut {
    buf: Vec<u8>,
    lead: usize,
    /// Where in the file `buf[lead]` goes.
    pos: u64,
    direct: bool,
    /// Whether direct I/O is still to be tried (a new file, nothing written yet).
    may_direct: bool,
}

impl SealedOut {
    /// From the start of a new file (`header` first) at `pos` 0, or going on at `pos` (no header).
    fn new(header: Option<&[u8]>, pos: u64) -> SealedOut {
        // A chunk of plaintext sealed, what waits from the last one, the trailer: never reallocated.
        let mut buf: Vec<u8> = Vec::with_capacity(COPY_CHUNK + COPY_CHUNK / 32 + 4 * direct::ALIGN);
        let lead = buf.as_ptr().align_offset(direct::ALIGN);
        buf.resize(lead, 0);
        if let Some(h) = header {
            buf.extend_from_slice(h);
        }
        SealedOut { buf, lead, pos, direct: false, may_direct: header.is_some() }
    }

    /// Writes what is whole in aligned pieces (everything when `all`) and keeps the rest.
    fn flush(&mut self, f: &mut File, path: &Path, all: bool) -> Result<()> {
        let n = self.buf.len() - self.lead;
        if self.may_direct {
            // Decided at the first write, at offset 0: direct for a file of a chunk and more.
            self.may_direct = false;
            self.direct = !all && n >= COPY_CHUNK && direct::set_direct(f, true);
        }
        let mut k = if all || !self.direct { n } else { n / direct::ALIGN * direct::ALIGN };
        if k == 0 {
            return Ok(());
        }
        let at = &self.buf[self.lead..self.lead + k];
        if self.direct && (k % direct::ALIGN != 0 || at.as_ptr() as usize % direct::ALIGN != 0) {
            self.direct = direct::set_direct(f, false);
            k = n;
        }
        write_direct(f, path, &self.buf[self.lead..self.lead + k], &mut self.direct)?;
        if !self.direct && k >= COPY_CHUNK / 4 {
            start_write_back(f, self.pos, k as u64);
        }
        self.pos += k as u64;
        self.buf.copy_within(self.lead + k.., self.lead);
        self.buf.truncate(self.lead + n - k);
        Ok(())
    }

    /// Makes everything sealed so far durable (a checkpoint): what waits is written (buffered) in its place too,
    /// and written again, whole, with what follows it.
    fn sync(&mut self, f: &File, path: &Path) -> Result<()> {
        let tail = &self.buf[self.lead..];
        if !tail.is_empty() {
            if self.direct {
                direct::set_direct(f, false);
            }
            f.write_all_at(tail, self.pos).at(path)?;
            if self.direct {
                self.direct = direct::set_direct(f, true);
            }
        }
        f.sync_data().at(path)
    }
}

/// Starts writing a just-written range of a file back to the disk (`sync_file_range(SYNC_FILE_RANGE_WRITE)`: no
/// wait), so that buffered writes go out while the copy goes on instead of all at its fsync. Advisory. (libc:
/// rustix has no `sync_file_range`.)
fn start_write_back(f: &File, offset: u64, len: u64) {
    // SAFETY: valid descriptor; the call only schedules write-back of the file's own pages.
    unsafe {
        libc::sync_file_range(f.as_raw_fd(), offset as i64, len as i64, libc::SYNC_FILE_RANGE_WRITE);
    }
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

    fn copy_into(data: &[u8], dst_path: &Path, start: CopyStart, cps: Option<Checkpoints<'_>>) -> Copied {
        let mut dst = OpenOptions::new().write(true).read(true).create(true).truncate(false).open(dst_path).unwrap();
        let src = Box::new(io::Cursor::new(data.to_vec()));
        copy_hashing(src, Path::new("src"), &mut dst, dst_path, start, &mut |_| true, &mut |_, e| Err(e), cps, true)
            .unwrap()
    }

    #[test]
    fn a_copy_continues_after_a_kept_prefix_with_checkpoints() {
        let seal = vault::StagedSeal::new(vault::DataKey::from_bytes([5; 32]));
        for seal in [None, Some(&seal)] {
            let dir = tempfile::tempdir().unwrap();
            let data: Vec<u8> = (0..COPY_CHUNK * 5 + 999).map(|i| (i * 13 % 251) as u8 + 1).collect();
            let dst_path = dir.path().join("dst");
            let cut = COPY_CHUNK as u64 * 2;
            // A copy that went further than its last checkpoint (what is past it is cut off).
            copy_into(&data[..cut as usize + 777], &dst_path, CopyStart::fresh(seal), None);
            let first = fs::read(&dst_path).unwrap();
            let (f, start) = resume_prefix(&dst_path, cut, seal).unwrap();
            drop(f);
            let mut seen = Vec::new();
            let mut record = |n: u64| {
                seen.push(n);
                Ok(())
            };
            let cps = Checkpoints { every: COPY_CHUNK as u64 * 2, record: &mut record };
            let c = copy_into(&data[cut as usize..], &dst_path, start, Some(cps));
            assert_eq!(c.len, data.len() as u64);
            let hash = blake3::hash(&data).to_hex().to_string();
            assert_eq!(c.hash, hash);
            assert_eq!(c.sums, Some(sums_of(&data)), "the sums continue over the kept prefix");
            assert_eq!(seen, vec![COPY_CHUNK as u64 * 4]);
            let on_disk = fs::read(&dst_path).unwrap();
            match seal {
                None => {
                    assert!(on_disk == data);
                    assert!(hash_prefix(&dst_path, data.len() as u64 + 1).is_err());
                }
                Some(_) => {
                    assert_eq!(on_disk.len() as u64, vault::sealed_len(data.len() as u64));
                    assert!(!on_disk.windows(64).any(|w| w == &data[5000..5064]), "no plaintext staged");
                    assert_ne!(on_disk[8..40], first[8..40], "the prefix was sealed again under a new salt");
                }
            }
            let (h, tree) = validate_staged(&dst_path, true, seal).unwrap();
            assert_eq!(h, hash);
            assert_eq!(tree.and_then(|t| t.root()).map(|r| r.to_hex().to_string()), Some(hash.clone()));
            assert_eq!(digest_staged(&dst_path, seal).unwrap(), Digest { hash: hash.clone(), sums: c.sums });
            // Staged the other way (the archive's store changed since): no prefix to go on from.
            let x = seal_x();
            assert!(resume_prefix(&dst_path, cut, if seal.is_some() { None } else { Some(&x) }).is_err());
            assert_eq!(fs::read(&dst_path).unwrap(), on_disk, "left as it was");
        }
    }

    fn seal_x() -> vault::StagedSeal {
        vault::StagedSeal::new(vault::DataKey::from_bytes([6; 32]))
    }

    #[test]
    fn a_sealed_staged_copy_that_does_not_authenticate_validates_as_no_hash() {
        let dir = tempfile::tempdir().unwrap();
        let seal = seal_x();
        for n in [100usize, COPY_CHUNK + 70_000] {
            let data: Vec<u8> = (0..n).map(|i| (i * 7 % 253) as u8).collect();
            let p = dir.path().join(format!("s{n}"));
            let c = copy_into(&data, &p, CopyStart::fresh(Some(&seal)), None);
            assert_eq!(validate_staged(&p, true, Some(&seal)).unwrap().0, c.hash);
            let good = fs::read(&p).unwrap();
            for at in [50usize, good.len() - 5] {
                let mut bad = good.clone();
                bad[at] ^= 4;
                fs::write(&p, &bad).unwrap();
                let (h, tree) = validate_staged(&p, true, Some(&seal)).unwrap();
                assert!(h != c.hash && !super::super::is_hash(&h) && tree.is_none(), "{h}");
                assert!(!super::super::is_hash(&digest_staged(&p, Some(&seal)).unwrap().hash));
            }
            // Another key, or read as the plaintext: never the copy's hash.
            fs::write(&p, &good).unwrap();
            let other = vault::StagedSeal::new(vault::DataKey::from_bytes([1; 32]));
            assert_ne!(validate_staged(&p, true, Some(&other)).unwrap().0, c.hash);
            assert_ne!(validate_staged(&p, true, None).unwrap().0, c.hash);
        }
    }
}
