//! The encrypted vault: a [`BlobStore`] that keeps every blob sealed inside any other store (local, `file://`,
//! S3), for archives made with `init --encrypt`. A blob's identity stays the BLAKE3 hash of its plaintext (dedup,
//! `verify`, MHL and export see plaintext through [`BlobStore::open`] and [`BlobStore::rehash`]); only the
//! bytes in the inner store are ciphertext. Also what the import needs to stage a copy already sealed
//! ([`StagedSeal`], [`Sealer`], [`Unseal`]), so that landing it is a rename as for a plain blob.
//!
//! Format `NFXV2` (written), a STREAM construction over AES-256-GCM:
//! - a 40-byte header: `NFXV2`, log2 of the chunk size (16: 64 KiB of plaintext per chunk), two zero bytes, and a
//!   random 32-byte salt drawn for each sealing;
//! - the chunks, each its ciphertext followed by its 16-byte tag; the last one is short (none for an empty blob);
//! - a sealed 56-byte trailer: the plaintext's length (u64, big-endian) and its BLAKE3 hash, then its tag.
//!
//! The blob's key is HKDF-SHA256(the archive's data key, salt, "nightfox vault v2 blob"): it does not depend on
//! the hash, so a copy can be sealed as it is written, before its hash is known. Chunk `i`'s nonce is `i`
//! (big-endian) and a zero flag, the trailer's the chunk count and flag 1; the header is the associated data of
//! all. So chunks cannot be reordered or moved between blobs, and the trailer binds the blob to its length and
//! its hash: [`VaultBlobs::open`] authenticates it before serving any byte, so a truncated or extended blob, or
//! a sealed object copied over another blob's name (in `objects/`, or an S3 key overwritten), is refused, never
//! served as that blob. A read decrypts only the chunks it touches (the last chunk it used only in part is kept
//! for the next read of a sequential reader); a chunk that does not authenticate (tampered, rotten, another key)
//! fails the reads that touch it and no other, never with wrong bytes.
//!
//! `NFXV1` objects (the first format) are read, never written: the same header but `NFXV1`, the key
//! HKDF(data key, salt, "nightfox vault v1 blob " + hash) (which binds the hash), no trailer, every blob at least
//! one chunk (an empty one is one empty chunk) and the last chunk's nonce flag 1.
//!
//! The data key is 32 random bytes drawn at `init --encrypt` and kept only wrapped under the archive secret
//! (`$NIGHTFOX_SECRET` or the key file; [`crate::secrets::Secrets::wrap_key`]) in `keys/vault.wrapped`, which
//! `secrets rotate` re-wraps: never in the catalog, never in `archive.toml`. An encrypted blob is never a local file ([`BlobStore::local_path`] is `None`): the mount reads
//! it on the copy path, import and export through the store.
//!
//! Staging: the import writes a vault archive's copies sealed as they are copied ([`BlobStore::stage_seal`],
//! [`Sealer`]), validates them by decrypting what the disk gives back ([`Unseal`]) and lands them by rename;
//! `land` and `replace` take either a staged NFXV2 file that authenticates as the blob (landed as it is) or the
//! plaintext (sealed into `tmp/<name>.sealed` first: `/ingest`, `migrate-blobs`, `verify --repair`).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use aes_gcm::aead::Generate;
use aes_gcm::{Aes256Gcm, Key};
use hkdf::Hkdf;
use parking_lot::Mutex;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use sha2::Sha256;

use super::staging::{read_full, remove_if_exists, COPY_CHUNK};
use super::{direct, BlobReader, BlobStore, Durability, HashHex};
use crate::error::{Error, IoContext, Result};

/// The magic of the format written ([`MAGIC_V1`] objects are still read).
pub const MAGIC: &[u8; 5] = b"NFXV2";
/// The magic of the first format.
pub const MAGIC_V1: &[u8; 5] = b"NFXV1";
const CHUNK_LOG2: u8 = 16;
/// Plaintext bytes per chunk.
pub const CHUNK: u64 = 1 << CHUNK_LOG2;
const TAG: u64 = 16;
/// A whole chunk as stored: its ciphertext and its tag.
const SEALED: u64 = CHUNK + TAG;
/// The header's length.
pub const HEADER: u64 = 40;
const SALT: usize = 32;
/// The trailer's plaintext: the blob's length and hash.
const TRAILER_PLAIN: usize = 8 + 32;
/// The sealed trailer's length (NFXV2).
pub const TRAILER: u64 = TRAILER_PLAIN as u64 + TAG;
/// Where the wrapped data key lives, under the archive root.
pub const WRAPPED_KEY: &str = "keys/vault.wrapped";
const BLOB_INFO_V1: &[u8] = b"nightfox vault v1 blob ";
const BLOB_INFO_V2: &[u8] = b"nightfox vault v2 blob";

/// Wrapped key bytes as the catalog keeps them: lower-case hex.
pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The bytes of [`to_hex`]'s text; `None` when it is not hex.
pub fn from_hex(s: &str) -> Option<Vec<u8>> {
    let s = s.trim().as_bytes();
    if s.len() % 2 != 0 {
        return None;
    }
    s.chunks(2).map(|p| std::str::from_utf8(p).ok().and_then(|p| u8::from_str_radix(p, 16).ok())).collect()
}

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

    /// Writes this key wrapped under the archive secret to [`WRAPPED_KEY`] (0600, durable; an error if there is
    /// one already) and returns the wrapped bytes (what a shared catalog keeps too, [`to_hex`]).
    pub fn store(&self, archive_root: &Path) -> Result<Vec<u8>> {
        let wrapped = crate::secrets::Secrets::load(archive_root)?.wrap_key(&self.0)?;
        let path = archive_root.join(WRAPPED_KEY);
        let dir = path.parent().unwrap_or(archive_root);
        if !dir.is_dir() {
            fs::DirBuilder::new().mode(0o700).create(dir).at(dir)?;
        }
        let mut f = OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path).at(&path)?;
        f.write_all(&wrapped).at(&path)?;
        f.sync_all().at(&path)?;
        super::fsync_dir(dir)?;
        Ok(wrapped)
    }

    /// Unwraps the key a shared catalog keeps ([`crate::catalog::VAULT_KEY_INFO`], hex) with the secrets this
    /// process has for `archive_root`, writing nothing: a seat joining checks it before creating anything. One
    /// clear line when this seat's secret does not open it.
    pub fn from_catalog(archive_root: &Path, hex: &str) -> Result<DataKey> {
        let wrapped = from_hex(hex)
            .ok_or_else(|| Error::Secret("the catalog's wrapped vault key is damaged (not hex)".into()))?;
        crate::secrets::Secrets::unwrap_key_unwritten(archive_root, &wrapped).map(DataKey).map_err(|_| {
            Error::Secret(
                "this seat's NIGHTFOX_SECRET or key file does not open the archive's vault key (kept in the shared \
                 catalog): give every seat the same passphrase, or a copy of the same key file"
                    .into(),
            )
        })
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

    /// The key of one blob: from the salt alone (NFXV2), or from the salt and the hash (NFXV1).
    fn blob_cipher(&self, salt: &[u8], v1_hash: Option<&str>) -> LessSafeKey {
        let hk = Hkdf::<Sha256>::new(Some(salt), &self.0);
        let info = match v1_hash {
            Some(hash) => [BLOB_INFO_V1, hash.as_bytes()].concat(),
            None => BLOB_INFO_V2.to_vec(),
        };
        let mut okm = [0u8; 32];
        // 32 bytes is always a valid HKDF-SHA256 output length.
        let _ = hk.expand(&info, &mut okm);
        // A 32-byte key is always a valid AES-256 key.
        LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &okm).unwrap_or_else(|_| unreachable!()))
    }
}

/// Which format a stored blob is in (from its header).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Version {
    V1,
    V2,
}

impl Version {
    fn of_header(h: &[u8]) -> Option<Version> {
        if h.len() < HEADER as usize || h[5] != CHUNK_LOG2 {
            return None;
        }
        match &h[..5] {
            m if m == MAGIC => Some(Version::V2),
            m if m == MAGIC_V1 => Some(Version::V1),
            _ => None,
        }
    }

    /// How many chunks a blob of `plain` bytes has (NFXV1: an empty one has one, empty).
    fn chunks(self, plain: u64) -> u64 {
        match self {
            Version::V1 => plain.div_ceil(CHUNK).max(1),
            Version::V2 => plain.div_ceil(CHUNK),
        }
    }

    fn trailer(self) -> u64 {
        match self {
            Version::V1 => 0,
            Version::V2 => TRAILER,
        }
    }

    fn sealed_len(self, plain: u64) -> u64 {
        HEADER + plain + TAG * self.chunks(plain) + self.trailer()
    }

    /// The plaintext length of a blob stored in `sealed` bytes; `None` when no blob is stored in that many.
    fn plain_len(self, sealed: u64) -> Option<u64> {
        let body = sealed.checked_sub(HEADER + self.trailer())?;
        let (full, rest) = (body / SEALED, body % SEALED);
        match (self, rest) {
            (Version::V1, 0) if full > 0 => Some(full * CHUNK),
            (Version::V1, r) if r >= TAG => Some(full * CHUNK + (r - TAG)),
            (Version::V2, 0) => Some(full * CHUNK),
            (Version::V2, r) if r > TAG => Some(full * CHUNK + (r - TAG)),
            _ => None,
        }
    }

    /// Whether chunk `index` of `chunks` is sealed with the last-chunk flag (NFXV1's end of blob; NFXV2 ends with
    /// its trailer instead).
    fn last_flag(self, index: u64, chunks: u64) -> bool {
        self == Version::V1 && index + 1 == chunks
    }
}

/// The stored length of a blob of `plain` bytes (as written now: NFXV2).
pub fn sealed_len(plain: u64) -> u64 {
    Version::V2.sealed_len(plain)
}

/// The plaintext length of an NFXV2 blob stored in `sealed` bytes; `None` when no blob is stored in that many.
pub fn plain_len(sealed: u64) -> Option<u64> {
    Version::V2.plain_len(sealed)
}

/// The stored length of a staged copy's first `plain` bytes (whole chunks: a checkpoint of the copy).
pub fn sealed_prefix_len(plain: u64) -> u64 {
    HEADER + plain / CHUNK * SEALED
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

fn hash_bytes(hash: &str) -> Option<[u8; 32]> {
    blake3::Hash::from_hex(hash).ok().map(|h| *h.as_bytes())
}

/// One blob's cipher and header (the associated data of every chunk). AES-256-GCM by `ring` (its AES-NI/CLMUL
/// assembly seals about three times faster here than the `aes-gcm` crate; the bytes are the same).
struct Seal {
    cipher: LessSafeKey,
    header: [u8; HEADER as usize],
    version: Version,
}

impl Seal {
    /// A new NFXV2 seal, with a fresh salt.
    fn new(key: &DataKey) -> Seal {
        let mut header = [0u8; HEADER as usize];
        header[..5].copy_from_slice(MAGIC);
        header[5] = CHUNK_LOG2;
        header[8..].copy_from_slice(&random32()[..SALT]);
        Seal { cipher: key.blob_cipher(&header[8..], None), header, version: Version::V2 }
    }

    /// The seal of a stored header; `None` when it is not one of a known format (or is NFXV1 and `hash`, which
    /// its key needs, is not given).
    fn of_header(key: &DataKey, hash: Option<&str>, header: &[u8]) -> Option<Seal> {
        let version = Version::of_header(header)?;
        let mut h = [0u8; HEADER as usize];
        h.copy_from_slice(header.get(..HEADER as usize)?);
        let v1_hash = match version {
            Version::V1 => Some(hash?),
            Version::V2 => None,
        };
        Some(Seal { cipher: key.blob_cipher(&h[8..], v1_hash), header: h, version })
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

    /// The sealed trailer of an NFXV2 blob of `plain` bytes hashing to `hash`.
    fn trailer(&self, plain: u64, hash: &str) -> Result<[u8; TRAILER as usize]> {
        let raw = hash_bytes(hash).ok_or_else(|| Error::Invalid(format!("vault: {hash:?} is no BLAKE3 hash")))?;
        let mut out = [0u8; TRAILER as usize];
        out[..8].copy_from_slice(&plain.to_be_bytes());
        out[8..TRAILER_PLAIN].copy_from_slice(&raw);
        let tag = self.seal(Version::V2.chunks(plain), true, &mut out[..TRAILER_PLAIN])?;
        out[TRAILER_PLAIN..].copy_from_slice(&tag);
        Ok(out)
    }

    /// Opens the trailer of an NFXV2 blob of `chunks` chunks: the length and the hash it names; `None` when it
    /// does not authenticate.
    fn open_trailer(&self, chunks: u64, sealed: &[u8]) -> Option<(u64, [u8; 32])> {
        let mut t: [u8; TRAILER as usize] = sealed.try_into().ok()?;
        if !self.open(chunks, true, &mut t) {
            return None;
        }
        let mut len = [0u8; 8];
        len.copy_from_slice(&t[..8]);
        let mut hash = [0u8; 32];
        hash.copy_from_slice(&t[8..TRAILER_PLAIN]);
        Some((u64::from_be_bytes(len), hash))
    }
}

/// What staging a copy sealed needs (a vault archive's data key; [`BlobStore::stage_seal`]). Its Debug never
/// shows the key.
#[derive(Clone, Debug)]
pub struct StagedSeal(DataKey);

impl StagedSeal {
    pub fn new(key: DataKey) -> StagedSeal {
        StagedSeal(key)
    }

    /// A new sealer (a fresh salt) for one staged copy.
    pub fn sealer(&self) -> Sealer {
        Sealer { seal: Seal::new(&self.0), index: 0, len: 0, carry: Vec::new() }
    }

    /// A reader of the plaintext of a staged NFXV2 file of `stored` bytes read from `inner` (see [`Unseal`]).
    pub fn unseal<R: Read>(&self, inner: R, stored: u64) -> Unseal<R> {
        Unseal::new(inner, self.0.clone(), None, stored)
    }

    /// A reader of the first `chunks` chunks of a staged NFXV2 file (a copy's kept prefix: no trailer yet).
    pub fn unseal_prefix<R: Read>(&self, inner: R, chunks: u64) -> Unseal<R> {
        let mut u = Unseal::new(inner, self.0.clone(), None, 0);
        u.prefix = Some(chunks);
        u
    }
}

/// Seals a blob as its plaintext streams past (NFXV2): the header, then each chunk as it fills
/// ([`Sealer::push`]), then the last one and the trailer once the hash is known ([`Sealer::finish`]).
pub struct Sealer {
    seal: Seal,
    /// The next chunk's index.
    index: u64,
    /// Plaintext bytes pushed.
    len: u64,
    /// The plaintext of a chunk not yet whole.
    carry: Vec<u8>,
}

impl Sealer {
    /// The header, to write first.
    pub fn header(&self) -> &[u8] {
        &self.seal.header
    }

    /// Plaintext bytes pushed so far.
    pub fn plain_len(&self) -> u64 {
        self.len
    }

    /// True when everything pushed is sealed in whole chunks (nothing carried): the sealed bytes written so far
    /// are a prefix a copy can go on from.
    pub fn at_chunk_boundary(&self) -> bool {
        self.carry.is_empty()
    }

    /// Seals the next plaintext bytes, appending the sealed chunks to `out` (a chunk not yet whole is carried).
    pub fn push(&mut self, mut plain: &[u8], out: &mut Vec<u8>) -> Result<()> {
        self.len += plain.len() as u64;
        if !self.carry.is_empty() {
            let take = (CHUNK as usize - self.carry.len()).min(plain.len());
            self.carry.extend_from_slice(&plain[..take]);
            plain = &plain[take..];
            if self.carry.len() < CHUNK as usize {
                return Ok(());
            }
            let carry = std::mem::take(&mut self.carry);
            self.seal_chunk(&carry, out)?;
        }
        out.reserve(plain.len() + plain.len() / CHUNK as usize * TAG as usize);
        let mut pieces = plain.chunks_exact(CHUNK as usize);
        for piece in &mut pieces {
            self.seal_chunk(piece, out)?;
        }
        self.carry.extend_from_slice(pieces.remainder());
        Ok(())
    }

    fn seal_chunk(&mut self, piece: &[u8], out: &mut Vec<u8>) -> Result<()> {
        let start = out.len();
        out.extend_from_slice(piece);
        let tag = self.seal.seal(self.index, false, &mut out[start..])?;
        out.extend_from_slice(&tag);
        self.index += 1;
        Ok(())
    }

    /// Seals the short last chunk and the trailer naming `hash` (that of everything pushed), appended to `out`.
    pub fn finish(mut self, hash: &str, out: &mut Vec<u8>) -> Result<()> {
        if !self.carry.is_empty() {
            let carry = std::mem::take(&mut self.carry);
            self.seal_chunk(&carry, out)?;
        }
        out.extend_from_slice(&self.seal.trailer(self.len, hash)?);
        Ok(())
    }
}

/// Room before the read area of an [`Unseal`] buffer for the partial chunk carried over (a sealed chunk, rounded
/// up to the direct-I/O alignment).
const CARRY_ROOM: usize = (SEALED as usize).div_ceil(direct::ALIGN) * direct::ALIGN;

/// The plaintext of a sealed stream (a staged copy, a stored blob) as a [`Read`]: each chunk decrypted as it
/// comes (in big aligned reads, so a [`direct::DirectReader`] stays direct), then the trailer checked. A chunk or
/// a trailer that does not authenticate, a header that is not one, a stream shorter than its length says: the
/// read fails with `InvalidData` and [`Unseal::failure`] says why (an I/O error of `inner` is not one).
pub struct Unseal<R> {
    inner: R,
    key: DataKey,
    /// The blob's hash where known: NFXV1's key needs it, and an NFXV2 trailer must name it.
    hash: Option<String>,
    /// The stream's length (the header and length decide the chunks).
    stored: u64,
    /// Read only this many chunks and no trailer (a staged copy's kept prefix).
    prefix: Option<u64>,
    seal: Option<Seal>,
    plain: u64,
    chunks: u64,
    index: u64,
    /// `room` bytes, then a read area of `area` bytes (a [`COPY_CHUNK`], or less for a shorter stream),
    /// starting at `base` (aligned).
    raw: Vec<u8>,
    base: usize,
    room: usize,
    area: usize,
    /// The sealed bytes read and not yet used: `raw[base + start..base + end]`.
    start: usize,
    end: usize,
    /// Plaintext decrypted and not yet handed out: `raw[base + ready.0..base + ready.1]`.
    ready: (usize, usize),
    eof: bool,
    failed: Option<String>,
    named: Option<[u8; 32]>,
}

impl<R: Read> Unseal<R> {
    fn new(inner: R, key: DataKey, hash: Option<String>, stored: u64) -> Unseal<R> {
        // Sized to the stream (1,000 small files must not allocate and zero 4 MiB each).
        let fit = |n: usize| match stored {
            0 => n,
            s => usize::try_from(s).unwrap_or(usize::MAX).min(n).next_multiple_of(direct::ALIGN),
        };
        let (room, area) = (fit(CARRY_ROOM), fit(COPY_CHUNK));
        let raw = vec![0u8; room + area + direct::ALIGN];
        let base = raw.as_ptr().align_offset(direct::ALIGN);
        Unseal {
            inner,
            key,
            hash,
            stored,
            prefix: None,
            seal: None,
            plain: 0,
            chunks: 0,
            index: 0,
            raw,
            base,
            room,
            area,
            start: room,
            end: room,
            ready: (0, 0),
            eof: false,
            failed: None,
            named: None,
        }
    }

    /// The stream read from.
    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    /// Why the stream did not authenticate, once a read failed for it.
    pub fn failure(&self) -> Option<&str> {
        self.failed.as_deref()
    }

    /// The hash the trailer names, once the whole stream was read and authenticated.
    pub fn named_hash(&self) -> Option<HashHex> {
        self.named.map(|h| blake3::Hash::from_bytes(h).to_hex().to_string())
    }

    fn fail(&mut self, why: String) -> io::Error {
        let e = io::Error::new(io::ErrorKind::InvalidData, why.clone());
        self.failed = Some(why);
        e
    }

    /// Makes `n` sealed bytes available at `start` (reading more, the rest moved before the read area); false
    /// when the stream ends first.
    fn want(&mut self, n: usize) -> io::Result<bool> {
        while self.end - self.start < n {
            if self.eof {
                return Ok(false);
            }
            let (room, area) = (self.room, self.area);
            let rest = self.end - self.start;
            if rest > room {
                // Only a stream longer than its stated length gets here: it does not authenticate.
                return Err(self.fail("longer than its length says".into()));
            }
            let (b, s, e) = (self.base, self.start, self.end);
            self.raw.copy_within(b + s..b + e, b + room - rest);
            let got = read_full(&mut self.inner, &mut self.raw[b + room..b + room + area])?;
            self.eof = got < area;
            (self.start, self.end) = (room - rest, room + got);
        }
        Ok(true)
    }

    fn read_header(&mut self) -> io::Result<()> {
        if !self.want(HEADER as usize)? {
            return Err(self.fail("shorter than a vault header".into()));
        }
        let at = self.base + self.start;
        let header = &self.raw[at..at + HEADER as usize];
        let Some(seal) = Seal::of_header(&self.key, self.hash.as_deref(), header) else {
            return Err(self.fail("its header is not a vault header".into()));
        };
        match self.prefix {
            Some(chunks) => (self.plain, self.chunks) = (chunks * CHUNK, chunks),
            None => match seal.version.plain_len(self.stored) {
                Some(n) => (self.plain, self.chunks) = (n, seal.version.chunks(n)),
                None => return Err(self.fail(format!("{} bytes are no sealed blob (truncated?)", self.stored))),
            },
        }
        self.seal = Some(seal);
        self.start += HEADER as usize;
        Ok(())
    }

    /// Decrypts the next chunk into `ready`, or checks the trailer at the end; false at the end.
    fn next_chunk(&mut self) -> io::Result<bool> {
        let Some(version) = self.seal.as_ref().map(|s| s.version) else { return Ok(false) };
        if self.index == self.chunks {
            if self.prefix.is_none() && version == Version::V2 && self.named.is_none() {
                self.check_trailer()?;
            }
            return Ok(false);
        }
        let clen = (self.plain - self.index * CHUNK).min(CHUNK) as usize;
        let need = clen + TAG as usize;
        if !self.want(need)? {
            return Err(self.fail(format!("ends inside chunk {}", self.index)));
        }
        let at = self.base + self.start;
        let last = version.last_flag(self.index, self.chunks);
        let ok = match &self.seal {
            Some(s) => s.open(self.index, last, &mut self.raw[at..at + need]),
            None => false,
        };
        if !ok {
            let (a, b) = (self.index * CHUNK, self.index * CHUNK + clen as u64);
            return Err(self.fail(format!(
                "chunk {} (bytes {a}..{b}) does not authenticate: tampered, rotten, or another key",
                self.index
            )));
        }
        self.ready = (self.start, self.start + clen);
        self.start += need;
        self.index += 1;
        Ok(true)
    }

    fn check_trailer(&mut self) -> io::Result<()> {
        if !self.want(TRAILER as usize)? {
            return Err(self.fail("its trailer is missing (truncated?)".into()));
        }
        let at = self.base + self.start;
        let named = match &self.seal {
            Some(s) => s.open_trailer(self.chunks, &self.raw[at..at + TRAILER as usize]),
            None => None,
        };
        match named {
            Some((len, hash)) if len == self.plain => {
                if let Some(want) = self.hash.as_deref() {
                    if hash_bytes(want) != Some(hash) {
                        return Err(self.fail("its trailer names another blob (an object copied over it?)".into()));
                    }
                }
                self.named = Some(hash);
                self.start += TRAILER as usize;
                Ok(())
            }
            Some((len, _)) => Err(self.fail(format!("its trailer says {len} bytes, it holds {}", self.plain))),
            None => Err(self.fail("its trailer does not authenticate: tampered, truncated, or another key".into())),
        }
    }
}

impl<R: Read> Read for Unseal<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(why) = &self.failed {
            return Err(io::Error::new(io::ErrorKind::InvalidData, why.clone()));
        }
        if self.seal.is_none() {
            self.read_header()?;
        }
        let mut filled = 0;
        while filled < buf.len() {
            if self.ready.0 == self.ready.1 && !self.next_chunk()? {
                break;
            }
            let (a, b) = self.ready;
            let n = (b - a).min(buf.len() - filled);
            buf[filled..filled + n].copy_from_slice(&self.raw[self.base + a..self.base + a + n]);
            self.ready.0 += n;
            filled += n;
        }
        Ok(filled)
    }
}

/// What [`VaultBlobs::rehash`] and the validate pass return for sealed bytes that do not authenticate: never a
/// hash, so it can never match one.
pub fn unverified(why: &str) -> HashHex {
    format!("nothing (the sealed bytes do not authenticate: {why})")
}

/// Whether a staged file is a sealed copy of blob `hash` ready to land as it is: an NFXV2 file whose trailer
/// authenticates under `key` and names `hash` with the length the file's size gives. (A plaintext file cannot
/// pass by chance: its own hash would have to be the one its "trailer" names.)
fn staged_is_sealed(key: &DataKey, staged: &Path, hash: &str) -> Result<bool> {
    let f = File::open(staged).at(staged)?;
    let stored = f.metadata().at(staged)?.len();
    let mut header = [0u8; HEADER as usize];
    if stored < HEADER + TRAILER || f.read_exact_at(&mut header, 0).is_err() {
        return Ok(false);
    }
    let Some(seal) = Seal::of_header(key, None, &header).filter(|s| s.version == Version::V2) else {
        return Ok(false);
    };
    let Some(plain) = Version::V2.plain_len(stored) else { return Ok(false) };
    let mut trailer = [0u8; TRAILER as usize];
    f.read_exact_at(&mut trailer, stored - TRAILER).at(staged)?;
    Ok(matches!(seal.open_trailer(Version::V2.chunks(plain), &trailer),
        Some((len, named)) if len == plain && hash_bytes(hash) == Some(named)))
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

    /// The staged file to hand the inner store: `staged` itself when it is sealed already (the import's copies),
    /// else a sealed copy of the verified plaintext beside it (durable when `durable`), `<name>.sealed`.
    fn sealed_form(&self, staged: &Path, hash: &str, durable: bool) -> Result<PathBuf> {
        if staged_is_sealed(&self.key, staged, hash)? {
            return Ok(staged.to_path_buf());
        }
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

    /// Hands the sealed form of `staged` to the inner store through `give` (its `land` or `replace`); a sealed
    /// copy made for it goes with the plaintext once given, or alone if giving failed.
    fn hand_over(
        &self,
        staged: &Path,
        hash: &str,
        durable: bool,
        give: impl FnOnce(&Path) -> Result<()>,
    ) -> Result<()> {
        let sealed = self.sealed_form(staged, hash, durable)?;
        let made = sealed != staged;
        match give(&sealed) {
            Ok(()) if made => remove_if_exists(staged),
            Ok(()) => Ok(()),
            Err(e) => {
                if made {
                    let _ = remove_if_exists(&sealed);
                }
                Err(e)
            }
        }
    }

    fn seal_into(&self, staged: &Path, out_path: &Path, hash: &str, durable: bool) -> Result<()> {
        let mut src = direct::open_read(staged).at(staged)?;
        let len = src.file().metadata().at(staged)?.len();
        let mut out = OpenOptions::new().write(true).create_new(true).mode(0o600).open(out_path).at(out_path)?;
        let mut sealer = StagedSeal(self.key.clone()).sealer();
        out.write_all(sealer.header()).at(out_path)?;
        let mut sealed = Vec::with_capacity(COPY_CHUNK + COPY_CHUNK / CHUNK as usize * TAG as usize);
        direct::pipeline(
            |b| read_full(&mut src, b).at(staged),
            |block| {
                sealed.clear();
                sealer.push(block, &mut sealed)?;
                out.write_all(&sealed).at(out_path)
            },
        )?;
        if sealer.plain_len() != len {
            return Err(Error::Invalid(format!("{}: changed while it was being sealed", staged.display())));
        }
        sealed.clear();
        sealer.finish(hash, &mut sealed)?;
        out.write_all(&sealed).at(out_path)?;
        if durable {
            out.sync_all().at(out_path)?;
        }
        Ok(())
    }

    fn damaged(&self, hash: &str, why: String) -> Error {
        Error::io(format!("{} blob {hash}", self.describe()), io::Error::new(io::ErrorKind::InvalidData, why))
    }

    /// The format of a stored blob, from its header.
    fn version_of(&self, hash: &str, inner: &dyn BlobReader) -> Result<Version> {
        let mut header = [0u8; HEADER as usize];
        let n = inner.read_at(&mut header, 0)?;
        Version::of_header(&header[..n]).ok_or_else(|| self.damaged(hash, "its header is not a vault header".into()))
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
        if self.inner.size(hash)?.is_none() {
            return Ok(None);
        }
        let inner = self.inner.open(hash)?;
        let stored = inner.len();
        let version = self.version_of(hash, &*inner)?;
        version
            .plain_len(stored)
            .map(Some)
            .ok_or_else(|| self.damaged(hash, format!("{stored} stored bytes are no sealed blob (truncated?)")))
    }

    fn land(&self, staged: &Path, hash: &str, durability: Durability) -> Result<()> {
        if self.inner.contains(hash)? {
            return remove_if_exists(staged);
        }
        self.hand_over(staged, hash, durability == Durability::Now, |sealed| self.inner.land(sealed, hash, durability))
    }

    fn replace(&self, staged: &Path, hash: &str) -> Result<()> {
        self.hand_over(staged, hash, true, |sealed| self.inner.replace(sealed, hash))
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
        let mut header = [0u8; HEADER as usize];
        let n = inner.read_at(&mut header, 0)?;
        let seal = Seal::of_header(&self.key, Some(hash), &header[..n])
            .ok_or_else(|| self.damaged(hash, "its header is not a vault header".into()))?;
        let version = seal.version;
        let len = version
            .plain_len(stored)
            .ok_or_else(|| self.damaged(hash, format!("{stored} stored bytes are no sealed blob (truncated?)")))?;
        let chunks = version.chunks(len);
        let tail = std::sync::OnceLock::new();
        if version == Version::V2 {
            // The trailer first: it names the blob, so bytes of another (an object copied over this one's name)
            // or a cut or grown blob are refused before any byte is served.
            let mut t = [0u8; TRAILER as usize];
            let n = inner.read_at(&mut t, stored - TRAILER)?;
            match seal.open_trailer(chunks, &t[..n]) {
                Some((l, named)) if l == len && hash_bytes(hash) == Some(named) => {}
                Some((l, _)) if l == len => {
                    return Err(self.damaged(hash, "its trailer names another blob (an object copied over it?)".into()))
                }
                _ => {
                    return Err(self.damaged(
                        hash,
                        "its trailer does not authenticate: tampered, truncated, or another key".into(),
                    ))
                }
            }
            let _ = tail.set(true);
        }
        Ok(Box::new(VaultReader {
            inner,
            seal,
            len,
            chunks,
            what: format!("{} blob {hash}", self.describe()),
            ahead: std::sync::atomic::AtomicU64::new(0),
            cache: Mutex::new(None),
            tail,
        }))
    }

    fn rehash(&self, hash: &str) -> Result<HashHex> {
        let what = PathBuf::from(format!("{} blob {hash}", self.describe()));
        let hashed = match self.inner.local_path(hash).filter(|p| p.is_file()) {
            Some(p) => {
                let stored = fs::metadata(&p).at(&p)?.len();
                let r = direct::open_read(&p).at(&p)?;
                super::staging::drop_cache(r.file());
                let mut u = Unseal::new(r, self.key.clone(), Some(hash.to_string()), stored);
                let h = super::hash::hash_reader(&mut u, &p, super::Hashers::blake3_only());
                (h, u.failed)
            }
            None => {
                let r = self.inner.open(hash)?;
                let stored = r.len();
                let mut u = Unseal::new(super::ReadAtCursor::new(&*r), self.key.clone(), Some(hash.into()), stored);
                let h = super::hash::hash_reader(&mut u, &what, super::Hashers::blake3_only());
                (h, u.failed)
            }
        };
        match hashed {
            (_, Some(why)) => Ok(unverified(&why)),
            (h, None) => Ok(h?.hash),
        }
    }

    fn is_remote(&self) -> bool {
        self.inner.is_remote()
    }

    /// The inner store's: the orphan check walks the sealed files, named by the plaintext's hash.
    fn objects_dir(&self) -> Option<&Path> {
        self.inner.objects_dir()
    }

    fn stage_seal(&self) -> Option<StagedSeal> {
        Some(StagedSeal(self.key.clone()))
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
    chunks: u64,
    what: String,
    /// Where in the stored blob the read-ahead asked of the inner store ends (see [`READ_AHEAD`]).
    ahead: std::sync::atomic::AtomicU64,
    /// The last chunk a read used only in part (a sequential reader's next read starts in it), decrypted.
    cache: Mutex<Option<(u64, Arc<Vec<u8>>)>>,
    /// Whether the blob's end authenticates: NFXV2's trailer, checked at the open; NFXV1's last chunk as the
    /// last, checked at the first read at or past the end.
    tail: std::sync::OnceLock<bool>,
}

impl VaultReader {
    fn chunk_len(&self, i: u64) -> u64 {
        (self.len - i * CHUNK).min(CHUNK)
    }

    /// The last chunk (NFXV2's empty blob has none: 0, never read).
    fn last_chunk(&self) -> u64 {
        self.chunks.saturating_sub(1)
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

    /// True when the stored last chunk opens as the last one (NFXV1): only then is the length (taken from the
    /// stored size) believed at the end of the blob, so that a truncated blob is an error there, not a shorter
    /// file.
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
                if !self.seal.open(i, self.seal.version.last_flag(i, self.chunks), sealed) {
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
            assert_eq!(Version::V1.plain_len(Version::V1.sealed_len(n)), Some(n), "{n}");
        }
        assert_eq!(sealed_len(0), HEADER + TRAILER);
        assert_eq!(plain_len(HEADER), None);
        assert_eq!(plain_len(HEADER + TRAILER + 16), None, "a chunk of no bytes is never written");
        assert_eq!(plain_len(HEADER + TRAILER + SEALED + 3), None);
        assert_eq!(Version::V1.plain_len(HEADER + 15), None);
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
        assert_eq!(fs::read_dir(staging.dir()).unwrap().count(), 0, "no .sealed file left");
        (root, vault, local, h)
    }

    fn pattern(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[1]).collect()
    }

    fn writable(p: &Path) {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(p, fs::Permissions::from_mode(0o644)).unwrap();
    }

    #[test]
    fn reads_anywhere_match_and_the_store_holds_no_plaintext() {
        let bytes = pattern(5 * CHUNK as usize + 1234);
        let (_root, vault, local, h) = store_with(&bytes);
        let stored = fs::read(local.path(&h)).unwrap();
        assert_eq!(stored.len() as u64, sealed_len(bytes.len() as u64));
        assert_eq!(&stored[..5], MAGIC);
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
        writable(&p);
        fs::write(&p, &stored).unwrap();
        let r = vault.open(&h).unwrap();
        let mut buf = vec![0u8; 1000];
        assert!(r.read_at(&mut buf, 2 * CHUNK + 5).is_err());
        assert!(r.read_at(&mut buf, 2 * CHUNK - 10).is_err(), "a read across into the chunk fails");
        assert_eq!(r.read_at(&mut buf, CHUNK).unwrap(), 1000);
        assert_eq!(&buf[..], &bytes[CHUNK as usize..CHUNK as usize + 1000]);
        assert_eq!(r.read_at(&mut buf, 3 * CHUNK).unwrap(), 1000);
        assert_ne!(vault.rehash(&h).unwrap(), h);
        // Truncated to a chunk boundary, or the trailer cut: the open refuses it (its trailer is not where the
        // length says), as it refuses a grown one.
        let mut good = stored.clone();
        good[(sealed_at(2) + 100) as usize] ^= 0x20;
        for cut in [&good[..sealed_at(3) as usize], &good[..good.len() - TRAILER as usize], &good[..good.len() - 1]] {
            fs::write(&p, cut).unwrap();
            assert!(vault.open(&h).is_err(), "{} bytes", cut.len());
            assert_ne!(vault.rehash(&h).unwrap(), h);
        }
        fs::write(&p, [&good[..], &[0u8; 100]].concat()).unwrap();
        assert!(vault.open(&h).is_err(), "grown");
        // Another key reads nothing.
        fs::write(&p, &good).unwrap();
        let other = VaultBlobs::new(Arc::new(local.clone()), DataKey::from_bytes([8u8; 32]));
        assert!(other.open(&h).is_err());
        assert_ne!(other.rehash(&h).unwrap(), h);
        assert_eq!(vault.rehash(&h).unwrap(), h);
        assert_eq!(super::super::read_whole(&vault, &h).unwrap(), bytes);
    }

    #[test]
    fn an_object_copied_over_another_blobs_name_is_refused_never_served() {
        let root = tempfile::tempdir().unwrap();
        let staging = Staging::open(root.path()).unwrap();
        let local = LocalBlobs::open(&root.path().join("objects")).unwrap();
        let vault = VaultBlobs::new(Arc::new(local.clone()), key());
        // Same length, so only the binding can tell them apart.
        let (a, b) = (pattern(3 * CHUNK as usize + 7), pattern(3 * CHUNK as usize + 8)[1..].to_vec());
        let (ha, hb) = (blake3::hash(&a).to_hex().to_string(), blake3::hash(&b).to_hex().to_string());
        for (bytes, h) in [(&a, &ha), (&b, &hb)] {
            let (_, p) = staging.create("x").unwrap();
            fs::write(&p, bytes).unwrap();
            vault.land(&p, h, Durability::Now).unwrap();
        }
        writable(&local.path(&hb));
        fs::copy(local.path(&ha), local.path(&hb)).unwrap();
        let e = vault.open(&hb).err().expect("the open refuses it").to_string();
        assert!(e.contains("names another blob"), "{e}");
        assert!(super::super::read_whole(&vault, &hb).is_err());
        assert_ne!(vault.rehash(&hb).unwrap(), hb);
        assert_eq!(vault.size(&hb).unwrap(), Some(b.len() as u64), "the length alone cannot tell");
        assert_eq!(super::super::read_whole(&vault, &ha).unwrap(), a);
    }

    #[test]
    fn an_empty_blob_and_a_chunk_exactly() {
        for bytes in [Vec::new(), pattern(CHUNK as usize), pattern(2 * CHUNK as usize)] {
            let (_root, vault, _local, h) = store_with(&bytes);
            assert_eq!(vault.size(&h).unwrap(), Some(bytes.len() as u64));
            assert_eq!(super::super::read_whole(&vault, &h).unwrap(), bytes);
            let r = vault.open(&h).unwrap();
            assert_eq!(r.read_at(&mut [0u8; 10], bytes.len() as u64).unwrap(), 0);
            assert_eq!(vault.rehash(&h).unwrap(), h);
        }
    }

    /// Two NFXV1 objects as the first format wrote them (made with Python's `cryptography` from the format's
    /// description, key [7; 32]): 200 bytes `(i * 37 + 11) % 256`, and an empty blob.
    const V1_SMALL: &str = "4e465856311000006465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f80818283b5536d29b993f537b56a990cde14c98bddef049447e843f3924828170ac0db6d138ca3d24a8b956c2830fcc07fbdebb6736d68e0c4a9e2ee72a424cd0a906df81f71044af711d22094a6500979d7ce75628f0a8ed5d5b3128e9b1f84953a2cc7989fc09b68066aab36adcbc59b9753b17b17b4b48887ad9f6926efb5910269e70f79ee7a633be74b5c18b8a09e19b94556fd999c906c7a465062673d01fe918d04e5a6b8ea3607abf44edd99f7fb809dc4136b1fb6b3a2500f55c378cc467c8eb05ce1a2a946c23905e4d8131dedfe7ecbfea6274c50d5ce";
    const V1_EMPTY: &str = "4e465856311000006465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f8081828359a56f49a0cf0cbcf36ea25664e99419";

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    /// Writes `bytes` as an NFXV1 object (the first format's writer, kept here to make multi-chunk ones).
    fn put_v1(local: &LocalBlobs, bytes: &[u8]) -> String {
        let h = blake3::hash(bytes).to_hex().to_string();
        let mut header = [0u8; HEADER as usize];
        header[..5].copy_from_slice(MAGIC_V1);
        header[5] = CHUNK_LOG2;
        header[8..].copy_from_slice(&[9u8; 32]);
        let seal = Seal::of_header(&key(), Some(&h), &header).unwrap();
        let chunks = Version::V1.chunks(bytes.len() as u64);
        let mut out = header.to_vec();
        let pieces: Vec<&[u8]> = if bytes.is_empty() { vec![&[]] } else { bytes.chunks(CHUNK as usize).collect() };
        for (i, piece) in pieces.into_iter().enumerate() {
            let start = out.len();
            out.extend_from_slice(piece);
            let tag = seal.seal(i as u64, i as u64 + 1 == chunks, &mut out[start..]).unwrap();
            out.extend_from_slice(&tag);
        }
        let p = local.path(&h);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, &out).unwrap();
        h
    }

    #[test]
    fn nfxv1_objects_still_read_verify_and_refuse_tampering() {
        let root = tempfile::tempdir().unwrap();
        let local = LocalBlobs::open(&root.path().join("objects")).unwrap();
        let vault = VaultBlobs::new(Arc::new(local.clone()), key());
        let small: Vec<u8> = (0..200u32).map(|i| ((i * 37 + 11) % 256) as u8).collect();
        for (fixture, bytes) in [(V1_SMALL, small), (V1_EMPTY, Vec::new())] {
            let h = blake3::hash(&bytes).to_hex().to_string();
            let p = local.path(&h);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(&p, unhex(fixture)).unwrap();
            assert_eq!(vault.size(&h).unwrap(), Some(bytes.len() as u64));
            assert_eq!(super::super::read_whole(&vault, &h).unwrap(), bytes);
            assert_eq!(vault.rehash(&h).unwrap(), h);
        }
        let big = pattern(3 * CHUNK as usize + 999);
        let h = put_v1(&local, &big);
        assert_eq!(vault.size(&h).unwrap(), Some(big.len() as u64));
        assert_eq!(super::super::read_whole(&vault, &h).unwrap(), big);
        assert_eq!(vault.rehash(&h).unwrap(), h);
        let r = vault.open(&h).unwrap();
        let mut buf = vec![0u8; 5000];
        assert_eq!(r.read_at(&mut buf, CHUNK - 100).unwrap(), 5000);
        assert_eq!(&buf[..], &big[CHUNK as usize - 100..CHUNK as usize + 4900]);
        // Truncated to a chunk boundary: the new last chunk was not sealed as the last.
        let stored = fs::read(local.path(&h)).unwrap();
        fs::write(local.path(&h), &stored[..sealed_at(3) as usize]).unwrap();
        let r = vault.open(&h).unwrap();
        assert!(r.read_at(&mut buf, 0).is_ok());
        assert!(r.read_at(&mut buf, 3 * CHUNK).is_err(), "the (false) end of a truncated blob is not an EOF");
        assert_ne!(vault.rehash(&h).unwrap(), h);
    }

    #[test]
    fn a_copy_sealed_as_it_is_staged_lands_as_it_is() {
        let root = tempfile::tempdir().unwrap();
        let staging = Staging::open(root.path()).unwrap();
        let local = LocalBlobs::open(&root.path().join("objects")).unwrap();
        let vault = VaultBlobs::new(Arc::new(local.clone()), key());
        let seal = vault.stage_seal().unwrap();
        let bytes = pattern(7 * CHUNK as usize + 321);
        let h = blake3::hash(&bytes).to_hex().to_string();
        // Pushed in uneven pieces, as a copy might.
        let mut sealer = seal.sealer();
        let mut out = sealer.header().to_vec();
        for piece in bytes.chunks(50_000) {
            sealer.push(piece, &mut out).unwrap();
        }
        sealer.finish(&h, &mut out).unwrap();
        assert_eq!(out.len() as u64, sealed_len(bytes.len() as u64));
        // What the validate pass reads back: the plaintext, and the hash the trailer names.
        let mut u = seal.unseal(&out[..], out.len() as u64);
        let mut plain = Vec::new();
        u.read_to_end(&mut plain).unwrap();
        assert!(plain == bytes);
        assert_eq!(u.named_hash().as_deref(), Some(h.as_str()));
        // A flipped byte: the read fails, and says why.
        let mut bad = out.clone();
        bad[sealed_at(5) as usize + 9] ^= 1;
        let mut u = seal.unseal(&bad[..], bad.len() as u64);
        assert!(u.read_to_end(&mut Vec::new()).is_err());
        assert!(u.failure().unwrap().contains("chunk 5"), "{:?}", u.failure());
        // Landed by rename: the object is the staged file's bytes.
        let (_, p) = staging.create("sealed").unwrap();
        fs::write(&p, &out).unwrap();
        assert!(staged_is_sealed(&key(), &p, &h).unwrap());
        assert!(!staged_is_sealed(&key(), &p, blake3::hash(b"other").to_hex().as_ref()).unwrap());
        assert!(!staged_is_sealed(&DataKey::from_bytes([1; 32]), &p, &h).unwrap());
        vault.land(&p, &h, Durability::Now).unwrap();
        assert!(!p.exists());
        assert!(fs::read(local.path(&h)).unwrap() == out, "landed as it was staged, not sealed twice");
        assert_eq!(super::super::read_whole(&vault, &h).unwrap(), bytes);
        assert_eq!(vault.rehash(&h).unwrap(), h);
        // A kept prefix of 2 chunks reads back, and a sealer goes on after it.
        let prefix = &out[..sealed_prefix_len(2 * CHUNK) as usize];
        let mut plain = Vec::new();
        seal.unseal_prefix(prefix, 2).read_to_end(&mut plain).unwrap();
        assert!(plain == bytes[..2 * CHUNK as usize]);
        // The plaintext staged (the /ingest path, migrate): sealed at landing.
        let (_, p) = staging.create("plain").unwrap();
        fs::write(&p, &out).unwrap();
        let ho = blake3::hash(&out).to_hex().to_string();
        vault.land(&p, &ho, Durability::Now).unwrap();
        assert!(
            super::super::read_whole(&vault, &ho).unwrap() == out,
            "sealed bytes imported as a file stay that file"
        );
    }

    #[test]
    fn the_key_is_wrapped_under_the_archive_secret() {
        let d = tempfile::tempdir().unwrap();
        let k = DataKey::generate();
        k.store(d.path()).unwrap();
        let wrapped = fs::read(d.path().join(WRAPPED_KEY)).unwrap();
        assert!(!wrapped.windows(32).any(|w| w == k.0));
        assert_eq!(DataKey::load(d.path()).unwrap().0, k.0);
        assert!(DataKey::generate().store(d.path()).is_err(), "never overwritten");
        assert_eq!(format!("{k:?}"), "DataKey(<redacted>)");
        assert_eq!(format!("{:?}", StagedSeal(k)), "StagedSeal(DataKey(<redacted>))");
    }
}
