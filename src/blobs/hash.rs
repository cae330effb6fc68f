//! Content hashes: BLAKE3, what a blob is named by, and the ways to compute one (from a reader, a source file in
//! place, a staged file in the page cache); with it, in the same read of the bytes, the xxHash checksums that
//! manifests (ASC MHL) and other tools speak ([`Sums`]: xxh64 and XXH3-128).

use std::fs::File;
use std::io::Read;
use std::path::Path;

use serde::Serialize;
use xxhash_rust::xxh3::Xxh3Default;
use xxhash_rust::xxh64::Xxh64;

use super::direct;
use super::staging::read_full;
use crate::error::{IoContext, Result};

/// A BLAKE3 hash as 64 lowercase hex characters.
pub type HashHex = String;

/// True when `s` looks like a blob name (64 lowercase hex digits).
pub fn is_hash(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A blob's xxHash checksums, as ASC MHL and `xxhsum` write them: lowercase hex of the canonical (big-endian)
/// form, xxh64 (seed 0) in 16 digits, XXH3-128 (`<xxh128>` in a manifest, `xxhsum -H2`) in 32.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Sums {
    pub xxh64: String,
    pub xxh128: String,
}

impl Sums {
    /// The hex forms of the two digests.
    pub fn from_digests(xxh64: u64, xxh128: u128) -> Sums {
        Sums { xxh64: format!("{xxh64:016x}"), xxh128: format!("{xxh128:032x}") }
    }
}

/// What one read of some bytes gave: their BLAKE3 and, when they were asked for, their [`Sums`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Digest {
    pub hash: HashHex,
    pub sums: Option<Sums>,
}

/// The xxHash states kept beside a BLAKE3 state.
#[derive(Clone)]
struct XxhState {
    xxh64: Xxh64,
    xxh128: Xxh3Default,
}

/// Chunks at least this long have BLAKE3 and the xxHashes computed on two cores at once (see [`Hashers::update`]).
const PARALLEL_MIN: usize = 1 << 20;

/// BLAKE3 and, unless made with [`Hashers::blake3_only`], xxh64 and XXH3-128, fed the same bytes in one pass.
#[derive(Clone)]
pub struct Hashers {
    blake3: blake3::Hasher,
    xxh: Option<Box<XxhState>>,
}

impl Default for Hashers {
    fn default() -> Self {
        Hashers::new()
    }
}

impl Hashers {
    /// All three hashes.
    pub fn new() -> Hashers {
        Hashers {
            blake3: blake3::Hasher::new(),
            xxh: Some(Box::new(XxhState { xxh64: Xxh64::new(0), xxh128: Xxh3Default::new() })),
        }
    }

    /// BLAKE3 alone (a re-hash that only checks a blob against its name).
    pub fn blake3_only() -> Hashers {
        Hashers { blake3: blake3::Hasher::new(), xxh: None }
    }

    /// Feeds the next bytes to every hash. A large chunk is hashed by BLAKE3 and by the xxHashes side by side
    /// (`rayon::join`), so the checksums add no time to a pipeline whose hashing stage is the slow one.
    pub fn update(&mut self, data: &[u8]) {
        let Hashers { blake3, xxh } = self;
        match xxh {
            None => {
                blake3.update(data);
            }
            Some(x) if data.len() >= PARALLEL_MIN => {
                rayon::join(
                    || {
                        blake3.update(data);
                    },
                    || x.update(data),
                );
            }
            Some(x) => {
                blake3.update(data);
                x.update(data);
            }
        }
    }

    /// The hashes of everything fed so far (the state is kept: more may follow).
    pub fn finalize(&self) -> Digest {
        Digest {
            hash: self.blake3.finalize().to_hex().to_string(),
            sums: self.xxh.as_ref().map(|x| Sums::from_digests(x.xxh64.digest(), x.xxh128.digest128())),
        }
    }
}

impl XxhState {
    fn update(&mut self, data: &[u8]) {
        self.xxh64.update(data);
        self.xxh128.update(data);
    }
}

/// Hashes what `r` reads, the next chunk read while the last is hashed.
pub(crate) fn hash_reader(r: &mut dyn Read, path: &Path, h: Hashers) -> Result<Digest> {
    Ok(hasher_of(r, path, h)?.0.finalize())
}

/// `h` fed everything `r` reads (pipelined as in [`hash_reader`]), and how many bytes that was.
pub(crate) fn hasher_of(r: &mut dyn Read, path: &Path, mut h: Hashers) -> Result<(Hashers, u64)> {
    let mut len = 0u64;
    direct::pipeline(
        |b| read_full(r, b).at(path),
        |chunk| {
            h.update(chunk);
            len += chunk.len() as u64;
            Ok(())
        },
    )?;
    Ok((h, len))
}

/// Hashes a file from the page cache where its pages are (a staged file just written), with memory mapping and
/// all cores. The file must not change meanwhile. BLAKE3 only.
pub fn hash_in_memory(path: &Path) -> Result<HashHex> {
    let mut h = blake3::Hasher::new();
    h.update_mmap_rayon(path).at(path)?;
    Ok(h.finalize().to_hex().to_string())
}

/// Hashes a source file in place (used to check duplicate candidates before copying), its [`Sums`] with it. Reads
/// with a buffer, not a memory map, so a card pulled or a file truncated mid-read is an error rather than a
/// SIGBUS; a chunk is hashed while the next is read.
pub fn digest_file(path: &Path) -> Result<Digest> {
    hash_reader(&mut File::open(path).at(path)?, path, Hashers::new())
}

/// [`digest_file`] without the [`Sums`].
pub fn hash_file(path: &Path) -> Result<HashHex> {
    Ok(hash_reader(&mut File::open(path).at(path)?, path, Hashers::blake3_only())?.hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_names() {
        assert!(is_hash(&"a".repeat(64)));
        assert!(!is_hash(&"A".repeat(64)));
        assert!(!is_hash("abc"));
    }

    fn digest(data: &[u8], pieces: usize) -> Digest {
        let mut h = Hashers::new();
        let step = data.len().div_ceil(pieces.max(1)).max(1);
        for c in data.chunks(step) {
            h.update(c);
        }
        h.finalize()
    }

    /// Known vectors, as `xxhsum -H1` and `xxhsum -H2` (and ASC MHL's `xxh64` and `xxh128`) print them.
    #[test]
    fn sums_are_the_canonical_hex_of_known_vectors() {
        let empty = digest(b"", 1).sums.expect("sums");
        assert_eq!(empty.xxh64, "ef46db3751d8e999");
        assert_eq!(empty.xxh128, "99aa06d3014798d86001c324468d497f");
        let abc = digest(b"abc", 1).sums.expect("sums");
        assert_eq!(abc.xxh64, "44bc2cf5ad770999");
        assert_eq!(abc.xxh128, "06b05ab6733a618578af5f94892f3950");
        // Leading zeros are kept: always 16 and 32 digits.
        assert_eq!(Sums::from_digests(1, 2), Sums { xxh64: format!("{:016}", 1), xxh128: format!("{:032}", 2) });
    }

    /// Chunks large enough to be hashed side by side give what one pass over the whole gives.
    #[test]
    fn chunked_and_parallel_updates_match_one_shot_hashes() {
        let data: Vec<u8> = (0..3 * PARALLEL_MIN + 4321).map(|i| (i * 31 % 251) as u8).collect();
        let want = Digest {
            hash: blake3::hash(&data).to_hex().to_string(),
            sums: Some(Sums::from_digests(xxhash_rust::xxh64::xxh64(&data, 0), xxhash_rust::xxh3::xxh3_128(&data))),
        };
        for pieces in [1, 2, 7, 1000] {
            assert_eq!(digest(&data, pieces), want, "{pieces} pieces");
        }
        let mut b3 = Hashers::blake3_only();
        b3.update(&data);
        assert_eq!(b3.finalize(), Digest { hash: want.hash.clone(), sums: None });
    }
}
