//! BLAKE3 content hashes: what a blob is named by, and the ways to compute one (from a reader, a source file in
//! place, a staged file in the page cache).

use std::fs::File;
use std::io::Read;
use std::path::Path;

use super::direct;
use super::staging::read_full;
use crate::error::{IoContext, Result};

/// A BLAKE3 hash as 64 lowercase hex characters.
pub type HashHex = String;

/// True when `s` looks like a blob name (64 lowercase hex digits).
pub fn is_hash(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Hashes what `r` reads, the next chunk read while the last is hashed.
pub(crate) fn hash_reader(r: &mut dyn Read, path: &Path) -> Result<HashHex> {
    Ok(hasher_of(r, path)?.0.finalize().to_hex().to_string())
}

/// The hasher over everything `r` reads (pipelined as in [`hash_reader`]), and how many bytes that was.
pub(crate) fn hasher_of(r: &mut dyn Read, path: &Path) -> Result<(blake3::Hasher, u64)> {
    let mut h = blake3::Hasher::new();
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
/// all cores. The file must not change meanwhile.
pub fn hash_in_memory(path: &Path) -> Result<HashHex> {
    let mut h = blake3::Hasher::new();
    h.update_mmap_rayon(path).at(path)?;
    Ok(h.finalize().to_hex().to_string())
}

/// Hashes a source file in place (used to check duplicate candidates before copying). Reads with a buffer, not a
/// memory map, so a card pulled or a file truncated mid-read is an error rather than a SIGBUS; a chunk is hashed
/// while the next is read.
pub fn hash_file(path: &Path) -> Result<HashHex> {
    hash_reader(&mut File::open(path).at(path)?, path)
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
}
