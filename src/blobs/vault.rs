//! The encrypted vault: a [`BlobStore`] that keeps every blob sealed inside any other store (local, `file://`,
//! S3), for archives made with `init --encrypt`. A blob's identity stays the BLAKE3 hash of its plaintext (dedup,
//! `verify`, MHL and export see plaintext through [`BlobStore::open`] and [`BlobStore::rehash`]); only the
//! bytes in the inner store are ciphertext.
//!
//! Format (`NFXV1`), a STREAM construction over AES-256-GCM:
//! - a 40-byte header: `NFXV1`, log2 of the chunk size (16: 64 KiB of plaintext per chunk), two zero bytes, and a
//!   random 32-byte salt drawn at each landing;
//! - then the chunks, each its ciphertext followed by its 16-byte tag. The last chunk is short (or empty: an empty
//!   blob is one empty chunk), so the plaintext length follows from the stored length alone ([`plain_len`]).
//!
//! Each blob has its own key, HKDF-SHA256(the archive's data key, salt, "nightfox vault v1 blob " + hash): a
//! blob's chunks cannot be moved into another blob, nonces never repeat across blobs. A chunk's nonce is its index
//! (big-endian) and a last-chunk flag, so chunks cannot be reordered and the blob cannot be truncated or extended
//! unnoticed; the header is every chunk's associated data. A read decrypts only the chunks it touches (the last
//! chunk it used only in part is kept for the next read of a sequential reader); a chunk that does not
//! authenticate (tampered, rotten, another key) fails the reads that touch it and no other, never with wrong bytes.
//!
//! The data key is 32 random bytes drawn at `init --encrypt` and kept only wrapped under the archive secret
//! (`$NIGHTFOX_SECRET` or the key file; [`crate::secrets::Secrets::wrap_key`]) in `keys/vault.wrapped`, which
//! `secrets rotate` re-wraps: never in the catalog, never in `archive.toml`. An encrypted blob is never a local file ([`BlobStore::local_path`] is `None`): the mount reads
//! it on the copy path, import and export through the store.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use aes_gcm::aead::Generate;
use aes_gcm::{Aes256Gcm, Key};
use hkdf::Hkdf;
use parking_lot::Mutex;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use sha2::Sha256;

use super::staging::{read_full, remove_if_exists};
use super::{direct, BlobReader, BlobStore, Durability, HashHex};
use crate::error::{Error, IoContext, Result};

/// The format's magic.
pub const MAGIC: &[u8; 5] = b"NFXV1";
const CHUNK_LOG2: u8 = 16;
/// Plaintext bytes per chunk.
pub const CHUNK: u64 = 1 << CHUNK_LOG2;
const TAG: u64 = 16;
/// A whole chunk as stored: its ciphertext and its tag.
const SEALED: u64 = CHUNK + TAG;
/// The header's length.
pub const HEADER: u64 = 40;
const SALT: usize = 32;
/// Where the wrapped data key lives, under the archive root.
pub const WRAPPED_KEY: &str = "keys/vault.wrapped";
const BLOB_INFO: &[u8] = b"nightfox vault v1 blob ";

/// The archive's data key. Its Debug never shows it.
#[derive(Clone)]
pub struct DataKey([u8; 32]);

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(<redacted>)")
    }
}

fn random32() -> [u8; 32] {
    let k = Key::<Aes256Gcm>::generate();
    let mut out = [0u8; 32];
    out.copy_from_slice(k.as_slice());
    out
}

impl DataKey {
    /// A fresh random key.
    pub fn generate() -> DataKey {
        DataKey(random32())
    }

    /// The key as given bytes (tests).
    pub fn from_bytes(bytes: [u8; 32]) -> DataKey {
        DataKey(bytes)
    }

    /// Creates the archive's data key and writes it wrapped under the archive secret to [`WRAPPED_KEY`] (0600,
    /// durable); an error if there is one already.
    pub fn create(archive_root: &Path) -> Result<DataKey> {
        let key = DataKey::generate();
        let wrapped = crate::secrets::Secrets::load(archive_root)?.wrap_key(&key.0)?;
        let path = archive_root.join(WRAPPED_KEY);
        let dir = path.parent().unwrap_or(archive_root);
        if !dir.is_dir() {
            fs::DirBuilder::new().mode(0o700).create(dir).at(dir)?;
        }
        let mut f = OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path).at(&path)?;
        f.write_all(&wrapped).at(&path)?;
        f.sync_all().at(&path)?;
        super::fsync_dir(dir)?;
        Ok(key)
    }

    /// Unwraps the archive's data key with the archive secret: a clear one-line error when it is missing or the
    /// secret is not the one it was wrapped with.
    pub fn load(archive_root: &Path) -> Result<DataKey> {
        let path = archive_root.join(WRAPPED_KEY);
        let wrapped = match fs::read(&path) {
            Ok(w) => w,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(Error::Secret(format!(
                    "this archive's blobs are encrypted but its vault key {} is missing: restore it from a backup",
                    path.display()
                )))
            }
            Err(e) => return Err(Error::io(path, e)),
        };
        let wrong = || {
            Error::Secret(format!(
                "the vault key {} cannot be unwrapped: wrong $NIGHTFOX_SECRET or key file for this encrypted \
                 archive (or a damaged keys/vault.wrapped)",
                path.display()
            ))
        };
        crate::secrets::Secrets::load(archive_root)?.unwrap_key(&wrapped).map(DataKey).map_err(|_| wrong())
    }

    fn blob_cipher(&self, salt: &[u8], hash: &str) -> LessSafeKey {
        let hk = Hkdf::<Sha256>::new(Some(salt), &self.0);
        let mut info = BLOB_INFO.to_vec();
        info.extend_from_slice(hash.as_bytes());
        let mut okm = [0u8; 32];
        // 32 bytes is always a valid HKDF-SHA256 output length.
        let _ = hk.expand(&info, &mut okm);
        // A 32-byte key is always a valid AES-256 key.
        LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &okm).unwrap_or_else(|_| unreachable!()))
    }
}

/// The stored length of a blob of `plain` bytes.
pub fn sealed_len(plain: u64) -> u64 {
    HEADER + plain + TAG * chunks(plain)
}

/// How many chunks a blob of `plain` bytes has (an empty one has one, empty).
fn chunks(plain: u64) -> u64 {
    plain.div_ceil(CHUNK).max(1)
}

/// The plaintext length of a blob stored in `sealed` bytes; `None` when no blob is stored in that many.
pub fn plain_len(sealed: u64) -> Option<u64> {
    let body = sealed.checked_sub(HEADER)?;
    let (full, rest) = (body / SEALED, body % SEALED);
    match rest {
        0 if full > 0 => Some(full * CHUNK),
        r if r >= TAG => Some(full * CHUNK + (r - TAG)),
        _ => None,
    }
}

/// Where chunk `i` starts in the stored blob.
fn sealed_at(i: u64) -> u64 {
    HEADER + i * SEALED
}

fn nonce(index: u64, last: bool) -> Nonce {
    let mut n = [0u8; 12];
    n[3..11].copy_from_slice(&index.to_be_bytes());
    n[11] = u8::from(last);
    Nonce::assume_unique_for_key(n)
}

/// One blob's cipher and header (the associated data of every chunk). AES-256-GCM by `ring` (its AES-NI/CLMUL
/// assembly seals about three times faster here than the `aes-gcm` crate; the bytes are the same).
struct Seal {
    cipher: LessSafeKey,
    header: [u8; HEADER as usize],
}

impl Seal {
    fn new(key: &DataKey, hash: &str) -> Seal {
        let mut header = [0u8; HEADER as usize];
        header[..5].copy_from_slice(MAGIC);
        header[5] = CHUNK_LOG2;
        header[8..].copy_from_slice(&random32()[..SALT]);
        Seal { cipher: key.blob_cipher(&header[8..], hash), header }
    }

    /// The seal of a stored header; `None` when it is not one of this format.
    fn of_header(key: &DataKey, hash: &str, header: &[u8]) -> Option<Seal> {
        if header.len() != HEADER as usize || &header[..5] != MAGIC || header[5] != CHUNK_LOG2 {
            return None;
        }
        let mut h = [0u8; HEADER as usize];
        h.copy_from_slice(header);
        Some(Seal { cipher: key.blob_cipher(&h[8..], hash), header: h })
    }

    fn seal(&self, index: u64, last: bool, buf: &mut [u8]) -> Result<[u8; TAG as usize]> {
        let tag = self
            .cipher
            .seal_in_place_separate_tag(nonce(index, last), Aad::from(&self.header), buf)
            .map_err(|_| Error::Invalid("vault: a chunk cannot be encrypted".into()))?;
        let mut out = [0u8; TAG as usize];
        out.copy_from_slice(tag.as_ref());
        Ok(out)
    }

    /// Decrypts chunk `index` (`sealed`: its ciphertext then its tag) in place; false when it does not
    /// authenticate. The plaintext is `sealed[..len - 16]`.
    fn open(&self, index: u64, last: bool, sealed: &mut [u8]) -> bool {
        sealed.len() >= TAG as usize
            && self.cipher.open_in_place(nonce(index, last), Aad::from(&self.header), sealed).is_ok()
    }
}

/// Blobs sealed with the archive's data key inside another store.
pub struct VaultBlobs {
    inner: Arc<dyn BlobStore>,
    key: DataKey,
}

impl VaultBlobs {
    pub fn new(inner: Arc<dyn BlobStore>, key: DataKey) -> VaultBlobs {
        VaultBlobs { inner, key }
    }

    /// The store the sealed blobs live in.
    pub fn inner(&self) -> &Arc<dyn BlobStore> {
        &self.inner
    }

    /// Seals the verified staged plaintext into a new staged file beside it (durable when `durable`), which is
    /// returned; the plaintext is left.
    fn seal_file(&self, staged: &Path, hash: &str, durable: bool) -> Result<PathBuf> {
        let mut name = staged.file_name().unwrap_or_default().to_os_string();
        name.push(".sealed");
        let out_path = staged.with_file_name(name);
        remove_if_exists(&out_path)?;
        let r = self.seal_into(staged, &out_path, hash, durable);
        if r.is_err() {
            let _ = remove_if_exists(&out_path);
        }
        r.map(|()| out_path)
    }

    fn seal_into(&self, staged: &Path, out_path: &Path, hash: &str, durable: bool) -> Result<()> {
        let mut src = direct::open_read(staged).at(staged)?;
        let len = src.file().metadata().at(staged)?.len();
        let mut out = OpenOptions::new().write(true).create_new(true).mode(0o600).open(out_path).at(out_path)?;
        let seal = Seal::new(&self.key, hash);
        out.write_all(&seal.header).at(out_path)?;
        let (mut index, mut done) = (0u64, 0u64);
        let mut sealed = Vec::with_capacity(super::COPY_CHUNK + super::COPY_CHUNK / CHUNK as usize * TAG as usize);
        direct::pipeline(
            |b| read_full(&mut src, b).at(staged),
            |block| {
                sealed.clear();
                for piece in block.chunks(CHUNK as usize) {
                    done += piece.len() as u64;
                    let start = sealed.len();
                    sealed.extend_from_slice(piece);
                    let tag = seal.seal(index, done >= len, &mut sealed[start..])?;
                    sealed.extend_from_slice(&tag);
                    index += 1;
                }
                out.write_all(&sealed).at(out_path)
            },
        )?;
        if done != len {
            return Err(Error::Invalid(format!("{}: changed while it was being sealed", staged.display())));
        }
        if len == 0 {
            let tag = seal.seal(0, true, &mut [])?;
            out.write_all(&tag).at(out_path)?;
        }
        if durable {
            out.sync_all().at(out_path)?;
        }
        Ok(())
    }

    fn damaged(&self, hash: &str, why: String) -> Error {
        Error::io(format!("{} blob {hash}", self.describe()), io::Error::new(io::ErrorKind::InvalidData, why))
    }
}

impl BlobStore for VaultBlobs {
    fn describe(&self) -> String {
        format!("encrypted {}", self.inner.describe())
    }

    fn contains(&self, hash: &str) -> Result<bool> {
        self.inner.contains(hash)
    }

    fn size(&self, hash: &str) -> Result<Option<u64>> {
        match self.inner.size(hash)? {
            None => Ok(None),
            Some(n) => plain_len(n)
                .map(Some)
                .ok_or_else(|| self.damaged(hash, format!("{n} stored bytes are no sealed blob (truncated?)"))),
        }
    }

    fn land(&self, staged: &Path, hash: &str, durability: Durability) -> Result<()> {
        if self.inner.contains(hash)? {
            return remove_if_exists(staged);
        }
        let sealed = self.seal_file(staged, hash, durability == Durability::Now)?;
        match self.inner.land(&sealed, hash, durability) {
            Ok(()) => remove_if_exists(staged),
            Err(e) => {
                let _ = remove_if_exists(&sealed);
                Err(e)
            }
        }
    }

    fn replace(&self, staged: &Path, hash: &str) -> Result<()> {
        let sealed = self.seal_file(staged, hash, true)?;
        match self.inner.replace(&sealed, hash) {
            Ok(()) => remove_if_exists(staged),
            Err(e) => {
                let _ = remove_if_exists(&sealed);
                Err(e)
            }
        }
    }

    fn remove(&self, hash: &str) -> Result<()> {
        self.inner.remove(hash)
    }

    fn sync(&self) -> Result<()> {
        self.inner.sync()
    }

    fn open(&self, hash: &str) -> Result<Box<dyn BlobReader>> {
        let inner = self.inner.open(hash)?;
        let stored = inner.len();
        let len = plain_len(stored)
            .ok_or_else(|| self.damaged(hash, format!("{stored} stored bytes are no sealed blob (truncated?)")))?;
        let mut header = [0u8; HEADER as usize];
        let n = inner.read_at(&mut header, 0)?;
        let seal = Seal::of_header(&self.key, hash, &header[..n])
            .ok_or_else(|| self.damaged(hash, "its header is not an NFXV1 vault header".into()))?;
        Ok(Box::new(VaultReader {
            inner,
            seal,
            len,
            what: format!("{} blob {hash}", self.describe()),
            ahead: std::sync::atomic::AtomicU64::new(0),
            cache: Mutex::new(None),
            tail: std::sync::OnceLock::new(),
        }))
    }

    fn rehash(&self, hash: &str) -> Result<HashHex> {
        let mut open = StreamOpen::new(&self.key, hash);
        match self.inner.local_path(hash).filter(|p| p.is_file()) {
            Some(p) => {
                let stored = fs::metadata(&p).at(&p)?.len();
                open.expect(stored);
                let mut r = direct::open_read(&p).at(&p)?;
                super::staging::drop_cache(r.file());
                direct::pipeline(|b| read_full(&mut r, b).at(&p), |block| open.push(block))?;
            }
            None => {
                let r = self.inner.open(hash)?;
                open.expect(r.len());
                let mut cur = super::ReadAtCursor::new(&*r);
                let what = PathBuf::from(format!("{} blob {hash}", self.describe()));
                direct::pipeline(|b| read_full(&mut cur, b).at(&what), |block| open.push(block))?;
            }
        }
        Ok(open.finish())
    }

    fn is_remote(&self) -> bool {
        self.inner.is_remote()
    }

    /// The inner store's: the orphan check walks the sealed files, named by the plaintext's hash.
    fn objects_dir(&self) -> Option<&Path> {
        self.inner.objects_dir()
    }
}

/// The re-hash of a stored blob as it streams past: each chunk decrypted and hashed. A chunk that does not
/// authenticate, a header that is not one, a length that is no sealed blob's: the stored bytes are hashed after a
/// marker instead (so the hash cannot match).
struct StreamOpen {
    key: DataKey,
    hash: String,
    seal: Option<Seal>,
    /// False once the blob is known unreadable: every byte is then hashed as stored.
    readable: bool,
    plain: u64,
    chunks: u64,
    index: u64,
    carry: Vec<u8>,
    hasher: blake3::Hasher,
}

const UNREADABLE: &[u8] = b"nightfox vault: does not authenticate";

impl StreamOpen {
    fn new(key: &DataKey, hash: &str) -> StreamOpen {
        StreamOpen {
            key: key.clone(),
            hash: hash.to_string(),
            seal: None,
            readable: true,
            plain: 0,
            chunks: 0,
            index: 0,
            carry: Vec::with_capacity(SEALED as usize),
            hasher: blake3::Hasher::new(),
        }
    }

    /// The stored length: how many chunks to expect.
    fn expect(&mut self, stored: u64) {
        match plain_len(stored) {
            Some(n) => (self.plain, self.chunks) = (n, chunks(n)),
            None => self.unreadable(),
        }
    }

    fn unreadable(&mut self) {
        if self.readable {
            self.readable = false;
            self.hasher.update(UNREADABLE);
            self.hasher.update(&self.carry);
        }
    }

    /// The stored length of chunk `i`.
    fn sealed_len(&self, i: u64) -> usize {
        ((self.plain - i * CHUNK).min(CHUNK) + TAG) as usize
    }

    fn push(&mut self, block: &[u8]) -> Result<()> {
        if !self.readable {
            self.hasher.update(block);
            return Ok(());
        }
        let mut rest = block;
        if self.seal.is_none() {
            let take = (HEADER as usize - self.carry.len()).min(rest.len());
            self.carry.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.carry.len() < HEADER as usize {
                return Ok(());
            }
            match Seal::of_header(&self.key, &self.hash, &self.carry) {
                Some(s) => self.seal = Some(s),
                None => {
                    self.unreadable();
                    self.hasher.update(rest);
                    return Ok(());
                }
            }
            self.carry.clear();
        }
        while !rest.is_empty() && self.index < self.chunks {
            let need = self.sealed_len(self.index);
            let take = (need - self.carry.len()).min(rest.len());
            self.carry.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.carry.len() == need {
                self.one_chunk();
            }
        }
        Ok(())
    }

    /// Opens the carried (whole) chunk and hashes it.
    fn one_chunk(&mut self) {
        let last = self.index + 1 == self.chunks;
        let ok = self.seal.as_ref().is_some_and(|s| s.open(self.index, last, &mut self.carry));
        let n = self.carry.len() - TAG as usize;
        if ok {
            self.hasher.update(&self.carry[..n]);
        } else {
            self.hasher.update(UNREADABLE);
            self.hasher.update(&self.carry);
        }
        self.index += 1;
        self.carry.clear();
    }

    fn finish(mut self) -> HashHex {
        if self.readable && (self.seal.is_none() || self.index < self.chunks) {
            self.unreadable();
        }
        self.hasher.finalize().to_hex().to_string()
    }
}

/// How far ahead of a streaming read (one of [`STREAMING`] bytes or more) the inner store is asked to read
/// ([`BlobReader::will_need`]): the sealed bytes are read through its page cache, whose own read-ahead window is
/// far smaller than the mount's requests (measured: a 1 GiB clip read cold at 0.38x of the copy path without it).
const READ_AHEAD: u64 = 16 << 20;
const STREAMING: u64 = 128 << 10;

thread_local! {
    /// The sealed bytes of a read, reused by this thread.
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// An open sealed blob: reads decrypt the chunks they touch.
pub struct VaultReader {
    inner: Box<dyn BlobReader>,
    seal: Seal,
    len: u64,
    what: String,
    /// Where in the stored blob the read-ahead asked of the inner store ends (see [`READ_AHEAD`]).
    ahead: std::sync::atomic::AtomicU64,
    /// The last chunk a read used only in part (a sequential reader's next read starts in it), decrypted.
    cache: Mutex<Option<(u64, Arc<Vec<u8>>)>>,
    /// Whether the last chunk authenticates as the last (checked at the first read at or past the end).
    tail: std::sync::OnceLock<bool>,
}

impl VaultReader {
    fn chunk_len(&self, i: u64) -> u64 {
        (self.len - i * CHUNK).min(CHUNK)
    }

    fn last_chunk(&self) -> u64 {
        chunks(self.len) - 1
    }

    /// Asks the inner store for the sealed bytes past `to` when a streaming read from `from` comes within half a
    /// window of where the last request ended (or away from it: a seek starts afresh).
    fn read_ahead(&self, from: u64, to: u64) {
        use std::sync::atomic::Ordering;
        let ahead = self.ahead.load(Ordering::Relaxed);
        if ahead > to + READ_AHEAD / 2 && ahead <= from + 2 * READ_AHEAD {
            return;
        }
        let start = if ahead < from || ahead > from + 2 * READ_AHEAD { to } else { ahead.max(to) };
        let end = to + READ_AHEAD;
        self.ahead.store(end, Ordering::Relaxed);
        self.inner.will_need(start, end - start);
    }

    /// True when the stored last chunk opens as the last one: only then is the length (taken from the stored
    /// size) believed at the end of the blob, so that a truncated blob is an error there, not a shorter file.
    fn tail_authentic(&self) -> bool {
        *self.tail.get_or_init(|| {
            let i = self.last_chunk();
            let mut sealed = vec![0u8; (self.chunk_len(i) + TAG) as usize];
            matches!(self.inner.read_at(&mut sealed, sealed_at(i)), Ok(n) if n == sealed.len())
                && self.seal.open(i, true, &mut sealed)
        })
    }

    fn bad(&self, i: u64) -> Error {
        let (a, b) = (i * CHUNK, i * CHUNK + self.chunk_len(i));
        Error::io(
            &self.what,
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("chunk {i} (bytes {a}..{b}) does not authenticate: tampered, rotten, or another key"),
            ),
        )
    }
}

impl BlobReader for VaultReader {
    fn len(&self) -> u64 {
        self.len
    }

    fn will_need(&self, offset: u64, len: u64) {
        let (first, last) = (offset / CHUNK, offset.saturating_add(len) / CHUNK);
        self.inner.will_need(sealed_at(first), (last + 1 - first) * SEALED);
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if offset >= self.len {
            return match self.tail_authentic() {
                true => Ok(0),
                false => Err(self.bad(self.last_chunk())),
            };
        }
        let end = self.len.min(offset + buf.len() as u64);
        let want = (end - offset) as usize;
        let (mut i, last) = (offset / CHUNK, (end - 1) / CHUNK);
        let mut filled = 0usize;
        let cached = self.cache.lock().clone();
        if let Some((ci, plain)) = cached.filter(|(ci, _)| *ci == i) {
            let from = (offset - ci * CHUNK) as usize;
            let n = (plain.len() - from).min(want);
            buf[..n].copy_from_slice(&plain[from..from + n]);
            filled = n;
            i += 1;
        }
        if filled == want {
            return Ok(want);
        }
        let (from, to) = (sealed_at(i), sealed_at(last) + self.chunk_len(last) + TAG);
        if to - from >= STREAMING {
            self.read_ahead(from, to);
        }
        SCRATCH.with_borrow_mut(|scratch| -> Result<()> {
            scratch.resize((to - from) as usize, 0);
            let n = self.inner.read_at(scratch, from)?;
            if n < scratch.len() {
                return Err(Error::io(
                    &self.what,
                    io::Error::new(io::ErrorKind::UnexpectedEof, "shorter than its length says"),
                ));
            }
            let mut at = 0usize;
            while i <= last {
                let clen = self.chunk_len(i) as usize;
                let sealed = &mut scratch[at..at + clen + TAG as usize];
                if !self.seal.open(i, i == self.last_chunk(), sealed) {
                    return Err(self.bad(i));
                }
                let start = i * CHUNK;
                let skip = offset.saturating_sub(start) as usize;
                let n = (clen - skip).min(want - filled);
                buf[filled..filled + n].copy_from_slice(&sealed[skip..skip + n]);
                filled += n;
                if i == last && skip + n < clen {
                    *self.cache.lock() = Some((i, Arc::new(sealed[..clen].to_vec())));
                }
                at += clen + TAG as usize;
                i += 1;
            }
            Ok(())
        })?;
        Ok(filled)
    }
}

#[cfg(test)]
mod tests {
    use super::super::local::LocalBlobs;
    use super::super::Staging;
    use super::*;

    fn key() -> DataKey {
        DataKey::from_bytes([7u8; 32])
    }

    #[test]
    fn lengths_map_both_ways() {
        for n in [0, 1, 15, 16, 17, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 3 * CHUNK + 5, 1 << 30] {
            assert_eq!(plain_len(sealed_len(n)), Some(n), "{n}");
        }
        assert_eq!(plain_len(HEADER), None);
        assert_eq!(plain_len(HEADER + 15), None);
        assert_eq!(plain_len(HEADER + SEALED + 3), None);
    }

    fn store_with(bytes: &[u8]) -> (tempfile::TempDir, VaultBlobs, LocalBlobs, String) {
        let root = tempfile::tempdir().unwrap();
        let staging = Staging::open(root.path()).unwrap();
        let local = LocalBlobs::open(&root.path().join("objects")).unwrap();
        let vault = VaultBlobs::new(Arc::new(local.clone()), key());
        let (_, p) = staging.create("v").unwrap();
        fs::write(&p, bytes).unwrap();
        let h = blake3::hash(bytes).to_hex().to_string();
        vault.land(&p, &h, Durability::Now).unwrap();
        assert!(!p.exists());
        (root, vault, local, h)
    }

    fn pattern(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[1]).collect()
    }

    #[test]
    fn reads_anywhere_match_and_the_store_holds_no_plaintext() {
        let bytes = pattern(5 * CHUNK as usize + 1234);
        let (_root, vault, local, h) = store_with(&bytes);
        let stored = fs::read(local.path(&h)).unwrap();
        assert_eq!(stored.len() as u64, sealed_len(bytes.len() as u64));
        assert!(!stored.windows(64).any(|w| w == &bytes[1000..1064]), "no plaintext in the stored blob");
        assert_eq!(vault.size(&h).unwrap(), Some(bytes.len() as u64));
        assert_eq!(vault.local_path(&h), None);
        let r = vault.open(&h).unwrap();
        for (off, len) in [(0, 10), (CHUNK - 3, 7), (100, 3 * CHUNK as usize), (4 * CHUNK + 1000, 1 << 20), (7, 1)] {
            let mut buf = vec![0u8; len];
            let n = r.read_at(&mut buf, off).unwrap();
            let end = (off as usize + len).min(bytes.len());
            assert_eq!(&buf[..n], &bytes[off as usize..end], "{off}+{len}");
        }
        // Sequential page reads through the chunk cache.
        let mut all = Vec::new();
        let mut page = [0u8; 4096];
        loop {
            let n = r.read_at(&mut page, all.len() as u64).unwrap();
            if n == 0 {
                break;
            }
            all.extend_from_slice(&page[..n]);
        }
        assert_eq!(all, bytes);
        assert_eq!(vault.rehash(&h).unwrap(), h);
    }

    #[test]
    fn a_tampered_chunk_fails_only_its_reads_and_the_rehash() {
        let bytes = pattern(4 * CHUNK as usize);
        let (_root, vault, local, h) = store_with(&bytes);
        let p = local.path(&h);
        let mut stored = fs::read(&p).unwrap();
        stored[(sealed_at(2) + 100) as usize] ^= 0x20;
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
        fs::write(&p, &stored).unwrap();
        let r = vault.open(&h).unwrap();
        let mut buf = vec![0u8; 1000];
        assert!(r.read_at(&mut buf, 2 * CHUNK + 5).is_err());
        assert!(r.read_at(&mut buf, 2 * CHUNK - 10).is_err(), "a read across into the chunk fails");
        assert_eq!(r.read_at(&mut buf, CHUNK).unwrap(), 1000);
        assert_eq!(&buf[..], &bytes[CHUNK as usize..CHUNK as usize + 1000]);
        assert_eq!(r.read_at(&mut buf, 3 * CHUNK).unwrap(), 1000);
        assert_ne!(vault.rehash(&h).unwrap(), h);
        // Truncated to a chunk boundary: the new last chunk was not sealed as the last.
        let mut good = stored.clone();
        good[(sealed_at(2) + 100) as usize] ^= 0x20;
        fs::write(&p, &good[..sealed_at(3) as usize]).unwrap();
        let r = vault.open(&h).unwrap();
        assert!(r.read_at(&mut buf, 2 * CHUNK).is_err());
        assert!(r.read_at(&mut buf, 0).is_ok());
        assert!(r.read_at(&mut buf, 3 * CHUNK).is_err(), "the (false) end of a truncated blob is not an EOF");
        // Another key reads nothing.
        fs::write(&p, &good).unwrap();
        let other = VaultBlobs::new(Arc::new(local.clone()), DataKey::from_bytes([8u8; 32]));
        assert!(other.open(&h).unwrap().read_at(&mut buf, 0).is_err());
        assert_ne!(other.rehash(&h).unwrap(), h);
        assert_eq!(vault.rehash(&h).unwrap(), h);
    }

    #[test]
    fn an_empty_blob_and_a_chunk_exactly() {
        for bytes in [Vec::new(), pattern(CHUNK as usize), pattern(2 * CHUNK as usize)] {
            let (_root, vault, _local, h) = store_with(&bytes);
            assert_eq!(vault.size(&h).unwrap(), Some(bytes.len() as u64));
            assert_eq!(super::super::read_whole(&vault, &h).unwrap(), bytes);
            assert_eq!(vault.rehash(&h).unwrap(), h);
        }
    }

    #[test]
    fn the_key_is_wrapped_under_the_archive_secret() {
        let d = tempfile::tempdir().unwrap();
        let k = DataKey::create(d.path()).unwrap();
        let wrapped = fs::read(d.path().join(WRAPPED_KEY)).unwrap();
        assert!(!wrapped.windows(32).any(|w| w == k.0));
        assert_eq!(DataKey::load(d.path()).unwrap().0, k.0);
        assert!(DataKey::create(d.path()).is_err(), "never overwritten");
        assert_eq!(format!("{k:?}"), "DataKey(<redacted>)");
    }
}
