//! Verified reads: a blob's BLAKE3 tree kept beside it (an *outboard*), so any block served can be checked
//! against the blob's hash without reading the rest of the blob. Built from BLAKE3's own subtree hashing
//! (`blake3::hazmat`): the tree of a blob is cut into leaves of [`LEAF`] bytes (16 chunks, a power-of-two subtree,
//! as many as BLAKE3 hashes side by side with AVX-512) grouped in segments of [`SEGMENT_LEAVES`] leaves (16 MiB).
//! The outboard keeps every leaf's chaining value and every segment's (2 KiB per MiB); opening checks the
//! segments against the blob hash (200 KiB for a 100 GB clip), a read loads and checks its segment's leaves once
//! (32 KiB), then checks the leaves it reads: a 4 KiB read hashes 16 KiB.
//!
//! File format (little endian): magic `NFOB\x02\0\0\0` (2: 16 KiB leaves), blob size (u64), segment count (u64), the segment chaining
//! values, then the leaf chaining values (32 bytes each). Outboards are derived data: a missing or unreadable one
//! is built again from the blob.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use blake3::hazmat::{merge_subtrees_non_root, merge_subtrees_root, ChainingValue, HasherExt, Mode};
use parking_lot::Mutex;

use super::staging::{read_full, write_atomic};
use super::BlobReader;
use crate::error::{Error, IoContext, Result};

/// Bytes per leaf: 16 BLAKE3 chunks.
pub const LEAF: u64 = 16 * 1024;
/// Leaves per segment (16 MiB).
pub const SEGMENT_LEAVES: usize = 1024;
const SEGMENT: u64 = LEAF * SEGMENT_LEAVES as u64;
const MAGIC: &[u8; 8] = b"NFOB\x02\0\0\0";
const HEADER: u64 = 24;
const CV: u64 = 32;

/// A blob's tree, as computed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outboard {
    pub size: u64,
    pub leaves: Vec<ChainingValue>,
}

/// The chaining value of the subtree over `cvs` (equal power-of-two subtrees, the last one possibly short, in
/// order): BLAKE3's tree is left-balanced, so the left side holds the largest power of two of them below `n`.
fn merge(cvs: &[ChainingValue]) -> ChainingValue {
    match cvs {
        [] => [0; 32],
        [one] => *one,
        _ => {
            let split = cvs.len().next_power_of_two() / 2;
            merge_subtrees_non_root(&merge(&cvs[..split]), &merge(&cvs[split..]), Mode::Hash)
        }
    }
}

/// The root hash over `cvs` (at least two).
fn merge_root(cvs: &[ChainingValue]) -> blake3::Hash {
    let split = cvs.len().next_power_of_two() / 2;
    merge_subtrees_root(&merge(&cvs[..split]), &merge(&cvs[split..]), Mode::Hash)
}

/// Chaining values as stored, 32 bytes each.
fn cvs_of(raw: &[u8]) -> Vec<ChainingValue> {
    raw.chunks_exact(32).map(|c| c.try_into().unwrap_or([0; 32])).collect()
}

fn leaf_cv(index: u64, data: &[u8]) -> ChainingValue {
    blake3::Hasher::new().set_input_offset(index * LEAF).update(data).finalize_non_root()
}

/// Builds an outboard from a blob's bytes streamed in order (the same pass that hashes or copies it).
#[derive(Default)]
pub struct Builder {
    size: u64,
    partial: Vec<u8>,
    leaves: Vec<ChainingValue>,
}

impl Builder {
    pub fn new() -> Builder {
        Builder::default()
    }

    pub fn update(&mut self, mut data: &[u8]) {
        use rayon::prelude::*;
        self.size += data.len() as u64;
        while !data.is_empty() {
            if self.partial.is_empty() && data.len() as u64 >= LEAF {
                // Whole leaves straight from the buffer, side by side on every core for a large one.
                let whole = data.len() / LEAF as usize * LEAF as usize;
                let (leaves, rest) = data.split_at(whole);
                let first = self.leaves.len() as u64;
                if leaves.len() >= 8 * LEAF as usize {
                    let cvs: Vec<ChainingValue> = leaves
                        .par_chunks(LEAF as usize)
                        .enumerate()
                        .map(|(i, l)| leaf_cv(first + i as u64, l))
                        .collect();
                    self.leaves.extend(cvs);
                } else {
                    let cvs = leaves.chunks(LEAF as usize).enumerate().map(|(i, l)| leaf_cv(first + i as u64, l));
                    self.leaves.extend(cvs);
                }
                data = rest;
                continue;
            }
            let take = (LEAF as usize - self.partial.len()).min(data.len());
            self.partial.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.partial.len() as u64 == LEAF {
                self.leaves.push(leaf_cv(self.leaves.len() as u64, &self.partial));
                self.partial.clear();
            }
        }
    }

    pub fn finish(mut self) -> Outboard {
        if !self.partial.is_empty() {
            self.leaves.push(leaf_cv(self.leaves.len() as u64, &self.partial));
        }
        Outboard { size: self.size, leaves: self.leaves }
    }
}

impl Outboard {
    /// Reads a whole blob to build its outboard (the next chunk read while the last is hashed).
    pub fn of_reader(r: &mut dyn Read, path: &Path) -> Result<Outboard> {
        let mut b = Builder::new();
        super::direct::pipeline(
            |buf| read_full(r, buf).at(path),
            |chunk| {
                b.update(chunk);
                Ok(())
            },
        )?;
        Ok(b.finish())
    }

    fn segments(&self) -> Vec<ChainingValue> {
        self.leaves.chunks(SEGMENT_LEAVES).map(merge).collect()
    }

    /// The BLAKE3 hash the tree gives (equal to the blob's hash for the right bytes); `None` for a blob of one
    /// leaf or none, whose hash is that of its bytes alone.
    pub fn root(&self) -> Option<blake3::Hash> {
        (self.leaves.len() >= 2).then(|| merge_root(&self.leaves))
    }

    /// Writes the outboard to `path` (a temp file renamed into place: never half written).
    pub fn write(&self, path: &Path) -> Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).at(dir)?;
        }
        let segments = self.segments();
        let mut out = Vec::with_capacity((HEADER + CV * (segments.len() + self.leaves.len()) as u64) as usize);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.size.to_le_bytes());
        out.extend_from_slice(&(segments.len() as u64).to_le_bytes());
        for cv in segments.iter().chain(self.leaves.iter()) {
            out.extend_from_slice(cv);
        }
        write_atomic(path, &out)
    }
}

/// Where the outboard of a blob lives under a directory of outboards: `<2 hex>/<2 hex>/<64 hex>`.
pub fn path_in(dir: &Path, hash: &str) -> PathBuf {
    let (a, b) = (hash.get(..2).unwrap_or("00"), hash.get(2..4).unwrap_or("00"));
    dir.join(a).join(b).join(hash)
}

/// A damaged block found by a verified read: the blob and the byte range of the leaf.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Damage {
    pub hash: String,
    pub offset: u64,
    pub len: u64,
}

/// A blob reader that checks every leaf it returns against the blob's hash through its outboard: a leaf that
/// does not match is an error (EIO at the front end) and is reported once to `on_damage`; the other leaves read
/// fine.
pub struct VerifiedReader {
    inner: Box<dyn BlobReader>,
    hash: String,
    size: u64,
    file: File,
    path: PathBuf,
    segments: Vec<ChainingValue>,
    /// The leaves of the segments checked so far.
    loaded: Mutex<std::collections::HashMap<usize, Arc<[ChainingValue]>>>,
    on_damage: Box<dyn Fn(&Damage) + Send + Sync>,
    reported: Mutex<std::collections::HashSet<u64>>,
    /// Where a sequential reader reads next.
    next: AtomicU64,
}

/// How far ahead of a sequential reader the blob is asked for.
const AHEAD: u64 = 8 << 20;

impl VerifiedReader {
    /// Opens `inner` (the blob `hash`) with the outboard at `path`; checks the outboard's top against the hash.
    /// An outboard that does not match the blob's hash or size is an error (build it again).
    pub fn open(
        inner: Box<dyn BlobReader>,
        hash: &str,
        path: &Path,
        on_damage: Box<dyn Fn(&Damage) + Send + Sync>,
    ) -> Result<VerifiedReader> {
        let bad = |why: &str| Error::Invalid(format!("outboard {}: {why}", path.display()));
        let file = File::open(path).at(path)?;
        let mut head = [0u8; HEADER as usize];
        file.read_exact_at(&mut head, 0).at(path)?;
        if &head[..8] != MAGIC {
            return Err(bad("not an outboard"));
        }
        let size = u64::from_le_bytes(head[8..16].try_into().map_err(|_| bad("header"))?);
        let nseg = u64::from_le_bytes(head[16..24].try_into().map_err(|_| bad("header"))?);
        if size != inner.len() || nseg != size.div_ceil(SEGMENT) {
            return Err(bad("size does not match the blob"));
        }
        let mut raw = vec![0u8; (nseg * CV) as usize];
        file.read_exact_at(&mut raw, HEADER).at(path)?;
        let segments = cvs_of(&raw);
        let want = blake3::Hash::from_hex(hash).map_err(|_| bad("the blob hash is not hex"))?;
        if segments.len() >= 2 && merge_root(&segments) != want {
            return Err(bad("does not match the blob hash"));
        }
        Ok(VerifiedReader {
            inner,
            hash: hash.to_string(),
            size,
            file,
            path: path.to_path_buf(),
            segments,
            loaded: Mutex::new(Default::default()),
            on_damage,
            reported: Mutex::new(Default::default()),
            next: AtomicU64::new(u64::MAX),
        })
    }

    fn leaves_of(&self, seg: usize) -> Result<Arc<[ChainingValue]>> {
        if let Some(l) = self.loaded.lock().get(&seg) {
            return Ok(Arc::clone(l));
        }
        let nleaves = self.size.div_ceil(LEAF);
        let first = seg as u64 * SEGMENT_LEAVES as u64;
        let count = (nleaves - first).min(SEGMENT_LEAVES as u64);
        let mut raw = vec![0u8; (count * CV) as usize];
        let at = HEADER + CV * (self.segments.len() as u64 + first);
        self.file.read_exact_at(&mut raw, at).at(&self.path)?;
        let leaves: Arc<[ChainingValue]> = cvs_of(&raw).into();
        let ok = match self.segments.len() {
            1 if leaves.len() >= 2 => merge_root(&leaves).to_hex().as_str() == self.hash,
            1 => true, // one leaf: checked against the blob hash itself
            _ => merge(&leaves) == self.segments[seg],
        };
        if !ok {
            return Err(Error::Invalid(format!("outboard {}: segment {seg} does not match", self.path.display())));
        }
        let mut loaded = self.loaded.lock();
        if loaded.len() >= 64 {
            loaded.clear();
        }
        loaded.insert(seg, Arc::clone(&leaves));
        Ok(leaves)
    }

    /// Checks leaf `index` holding `data`.
    fn check(&self, index: u64, data: &[u8]) -> Result<()> {
        let good = if self.size <= LEAF {
            blake3::hash(data).to_hex().as_str() == self.hash
        } else {
            let seg = (index / SEGMENT_LEAVES as u64) as usize;
            let leaves = self.leaves_of(seg)?;
            leaves.get((index % SEGMENT_LEAVES as u64) as usize) == Some(&leaf_cv(index, data))
        };
        if good {
            return Ok(());
        }
        let damage = Damage { hash: self.hash.clone(), offset: index * LEAF, len: data.len() as u64 };
        if self.reported.lock().insert(index) {
            (self.on_damage)(&damage);
        }
        Err(Error::io(
            &self.path,
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "blob {} bytes {}..{} do not match their hash",
                    self.hash,
                    damage.offset,
                    damage.offset + damage.len
                ),
            ),
        ))
    }
}

impl BlobReader for VerifiedReader {
    fn len(&self) -> u64 {
        self.size
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<usize> {
        if offset >= self.size || buf.is_empty() {
            return Ok(0);
        }
        let end = (offset + buf.len() as u64).min(self.size);
        let first = offset / LEAF;
        let last = (end - 1) / LEAF;
        let start = first * LEAF;
        let stop = ((last + 1) * LEAF).min(self.size);
        // A sequential reader: have the next stretch read from the disk while this one is checked.
        if self.next.swap(end, Ordering::Relaxed) == offset && end < self.size {
            self.inner.will_need(end, AHEAD.min(self.size - end));
        }
        let len = (end - offset) as usize;
        // Whole leaves (what read-ahead asks): read and checked in place; otherwise through a buffer of whole leaves.
        let aligned = start == offset && stop == end;
        let mut spare = Vec::new();
        let whole: &mut [u8] = if aligned {
            &mut buf[..len]
        } else {
            spare.resize((stop - start) as usize, 0);
            &mut spare
        };
        let n = self.inner.read_at(whole, start)?;
        if (n as u64) < stop - start {
            return Err(Error::io(
                &self.path,
                std::io::Error::new(std::io::ErrorKind::UnexpectedEof, format!("blob {} is short", self.hash)),
            ));
        }
        if whole.len() >= 8 * LEAF as usize {
            use rayon::prelude::*;
            whole.par_chunks(LEAF as usize).enumerate().try_for_each(|(i, leaf)| self.check(first + i as u64, leaf))?;
        } else {
            for (i, leaf) in whole.chunks(LEAF as usize).enumerate() {
                self.check(first + i as u64, leaf)?;
            }
        }
        if !aligned {
            let from = (offset - start) as usize;
            buf[..len].copy_from_slice(&spare[from..from + len]);
        }
        Ok(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 + i / 251) as u8).collect()
    }

    struct Mem(Vec<u8>);
    impl BlobReader for Mem {
        fn len(&self) -> u64 {
            self.0.len() as u64
        }
        fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<usize> {
            let o = (offset as usize).min(self.0.len());
            let n = buf.len().min(self.0.len() - o);
            buf[..n].copy_from_slice(&self.0[o..o + n]);
            Ok(n)
        }
    }

    #[test]
    fn the_tree_gives_the_blake3_hash_for_every_shape() {
        let l = LEAF as usize;
        let s = SEGMENT as usize;
        for n in [2 * l, 2 * l + 1, 3 * l - 1, 33 * l + 5, s, s + 1, 2 * s, 3 * s + l / 2, 5 * s - 1] {
            let data = bytes(n);
            let mut b = Builder::new();
            // Fed in uneven pieces, as reads come.
            for piece in data.chunks(77_777) {
                b.update(piece);
            }
            let ob = b.finish();
            assert_eq!(ob.root(), Some(blake3::hash(&data)), "size {n}");
            let segs = ob.segments();
            if segs.len() >= 2 {
                assert_eq!(merge_root(&segs), blake3::hash(&data), "segments of size {n}");
            }
        }
        assert_eq!(Builder::new().finish().root(), None);
    }

    #[test]
    fn verified_reads_serve_good_leaves_and_refuse_a_damaged_one() {
        let d = tempfile::tempdir().expect("tempdir");
        for n in [10, LEAF as usize, 3 * SEGMENT as usize + 12_345] {
            let mut data = bytes(n);
            let hash = blake3::hash(&data).to_hex().to_string();
            let ob = Outboard::of_reader(&mut data.as_slice(), Path::new("mem")).expect("outboard");
            let path = path_in(d.path(), &hash);
            ob.write(&path).expect("write");
            let flip = n / 2;
            data[flip] ^= 1;
            let seen = std::sync::Arc::new(Mutex::new(Vec::new()));
            let s2 = std::sync::Arc::clone(&seen);
            let r = VerifiedReader::open(
                Box::new(Mem(data.clone())),
                &hash,
                &path,
                Box::new(move |d| s2.lock().push(d.clone())),
            )
            .expect("open");
            let bad = flip as u64 / LEAF * LEAF;
            let mut buf = vec![0u8; 4096];
            assert!(r.read_at(&mut buf, bad + (flip as u64 % LEAF)).is_err(), "the damaged leaf, size {n}");
            assert!(r.read_at(&mut buf, bad).is_err(), "reported once, refused always");
            assert_eq!(seen.lock().len(), 1);
            assert_eq!(seen.lock()[0].offset, bad);
            if n > 2 * LEAF as usize {
                let k = r.read_at(&mut buf, 0).expect("the first leaf is fine");
                assert_eq!(&buf[..k], &data[..k]);
                let far = (n - 100) as u64;
                let k = r.read_at(&mut buf, far).expect("the last leaf is fine");
                assert_eq!((k, &buf[..k]), (100, &data[n - 100..]));
            }
            // An outboard of other content is refused at open (when it has segments to check).
            if n > 2 * SEGMENT as usize {
                let other = blake3::hash(b"other").to_hex().to_string();
                assert!(VerifiedReader::open(Box::new(Mem(data.clone())), &other, &path, Box::new(|_| {})).is_err());
            }
        }
    }
}
