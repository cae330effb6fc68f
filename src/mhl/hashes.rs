//! The hash formats ASC MHL allows (c4, md5, sha1, xxh128, xxh3, xxh64) and computing any set of them in one read,
//! through the project's read pipeline ([`crate::blobs::direct::pipeline`]).

use std::fs::File;
use std::io::Read;
use std::path::Path;

use md5::Digest as _;

use crate::blobs::direct;
use crate::blobs::staging::read_full;
use crate::error::{Error, IoContext, Result};

/// A hash format of ASC MHL, in the order the XSD wants them inside a `<hash>` element.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HashFormat {
    C4,
    Md5,
    Sha1,
    Xxh128,
    Xxh3,
    Xxh64,
}

impl HashFormat {
    /// Every format, in XSD order.
    pub const ALL: [HashFormat; 6] =
        [HashFormat::C4, HashFormat::Md5, HashFormat::Sha1, HashFormat::Xxh128, HashFormat::Xxh3, HashFormat::Xxh64];

    /// The element name (`xxh64`, ...).
    pub fn name(self) -> &'static str {
        match self {
            HashFormat::C4 => "c4",
            HashFormat::Md5 => "md5",
            HashFormat::Sha1 => "sha1",
            HashFormat::Xxh128 => "xxh128",
            HashFormat::Xxh3 => "xxh3",
            HashFormat::Xxh64 => "xxh64",
        }
    }

    /// The format of an element name, if ASC MHL allows it.
    pub fn from_name(s: &str) -> Option<HashFormat> {
        HashFormat::ALL.into_iter().find(|f| f.name() == s)
    }

    /// Parses a user's format name (`-h xxh64`), with a clear error.
    pub fn parse(s: &str) -> Result<HashFormat> {
        HashFormat::from_name(&s.to_ascii_lowercase()).ok_or_else(|| {
            Error::Invalid(format!("{s:?} is not an ASC MHL hash format (c4, md5, sha1, xxh128, xxh3, xxh64)"))
        })
    }
}

impl std::fmt::Display for HashFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The C4 ID alphabet (base58 without 0, O, I, l).
const C4_ALPHABET: &[u8; 58] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

/// A C4 ID: `c4` and the SHA-512 digest in base58, left-padded with `1` to 90 characters.
pub fn c4_id(sha512: &[u8]) -> String {
    // Repeated division of the big-endian number by 58.
    let mut num: Vec<u8> = sha512.to_vec();
    let mut digits = Vec::with_capacity(88);
    while num.iter().any(|&b| b != 0) {
        let mut rem = 0u32;
        for b in num.iter_mut() {
            let cur = (rem << 8) | *b as u32;
            *b = (cur / 58) as u8;
            rem = cur % 58;
        }
        digits.push(C4_ALPHABET[rem as usize]);
    }
    while digits.len() < 88 {
        digits.push(b'1');
    }
    digits.reverse();
    let mut s = String::from("c4");
    s.push_str(&String::from_utf8_lossy(&digits));
    s
}

/// Any set of formats over one stream of bytes.
pub struct MultiHasher {
    c4: Option<sha2::Sha512>,
    md5: Option<md5::Md5>,
    sha1: Option<sha1::Sha1>,
    xxh128: Option<xxhash_rust::xxh3::Xxh3>,
    xxh3: Option<xxhash_rust::xxh3::Xxh3>,
    xxh64: Option<xxhash_rust::xxh64::Xxh64>,
}

impl MultiHasher {
    pub fn new(formats: &[HashFormat]) -> MultiHasher {
        let has = |f| formats.contains(&f);
        MultiHasher {
            c4: has(HashFormat::C4).then(sha2::Sha512::new),
            md5: has(HashFormat::Md5).then(md5::Md5::new),
            sha1: has(HashFormat::Sha1).then(sha1::Sha1::new),
            xxh128: has(HashFormat::Xxh128).then(xxhash_rust::xxh3::Xxh3::new),
            xxh3: has(HashFormat::Xxh3).then(xxhash_rust::xxh3::Xxh3::new),
            xxh64: has(HashFormat::Xxh64).then(|| xxhash_rust::xxh64::Xxh64::new(0)),
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        if let Some(h) = &mut self.c4 {
            h.update(data);
        }
        if let Some(h) = &mut self.md5 {
            h.update(data);
        }
        if let Some(h) = &mut self.sha1 {
            h.update(data);
        }
        if let Some(h) = &mut self.xxh128 {
            h.update(data);
        }
        if let Some(h) = &mut self.xxh3 {
            h.update(data);
        }
        if let Some(h) = &mut self.xxh64 {
            h.update(data);
        }
    }

    /// The values as ASC MHL writes them (lowercase hex, big-endian for the xxHashes; C4 IDs for c4), in XSD order.
    pub fn finish(self) -> Vec<(HashFormat, String)> {
        let mut out = Vec::new();
        if let Some(h) = self.c4 {
            out.push((HashFormat::C4, c4_id(&h.finalize())));
        }
        if let Some(h) = self.md5 {
            out.push((HashFormat::Md5, crate::blobs::vault::to_hex(&h.finalize())));
        }
        if let Some(h) = self.sha1 {
            out.push((HashFormat::Sha1, crate::blobs::vault::to_hex(&h.finalize())));
        }
        if let Some(h) = self.xxh128 {
            out.push((HashFormat::Xxh128, format!("{:032x}", h.digest128())));
        }
        if let Some(h) = self.xxh3 {
            out.push((HashFormat::Xxh3, format!("{:016x}", h.digest())));
        }
        if let Some(h) = self.xxh64 {
            out.push((HashFormat::Xxh64, format!("{:016x}", h.digest())));
        }
        out
    }
}

/// Hashes what `r` reads in the given formats (a chunk read while the last is hashed).
pub fn hash_reader(r: &mut dyn Read, path: &Path, formats: &[HashFormat]) -> Result<Vec<(HashFormat, String)>> {
    let mut h = MultiHasher::new(formats);
    direct::pipeline(
        |b| read_full(r, b).at(path),
        |chunk| {
            h.update(chunk);
            Ok(())
        },
    )?;
    Ok(h.finish())
}

/// Hashes a file in the given formats.
pub fn hash_file(path: &Path, formats: &[HashFormat]) -> Result<Vec<(HashFormat, String)>> {
    hash_reader(&mut File::open(path).at(path)?, path, formats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        // Values of `ascmhl` 1.2 (Python xxhash, hashlib) for b"hello\n".
        let mut h = MultiHasher::new(&HashFormat::ALL);
        h.update(b"hello\n");
        let v: std::collections::HashMap<_, _> = h.finish().into_iter().collect();
        assert_eq!(v[&HashFormat::Md5], "b1946ac92492d2347c6235b4d2611184");
        assert_eq!(v[&HashFormat::Sha1], "f572d396fae9206628714fb2ce00f72e94f2258f");
        assert_eq!(v[&HashFormat::Xxh64], "e4c191d091bd8853");
        assert_eq!(v[&HashFormat::Xxh128], "6bba86c7e069f56d5a10b435f1c8e49c");
        assert_eq!(v[&HashFormat::Xxh3], "99fc819aaba2462a");
        assert_eq!(
            v[&HashFormat::C4],
            "c45dkQrAqUiR8WzPGgn6fAGji3VAVeAE7cKVG4G53ou9dTk4Nzb9vFYEwzy9jq5ZKQKM64DMpPpVbYe2bMsZP2yYKi"
        );
    }

    #[test]
    fn c4_of_empty() {
        // The C4 ID of the empty input, from the C4 specification.
        let d = sha2::Sha512::digest(b"");
        assert_eq!(
            c4_id(&d),
            "c459dsjfscH38cYeXXYogktxf4Cd9ibshE3BHUo6a58hBXmRQdZrAkZzsWcbWtDg5oQstpDuni4Hirj75GEmTc1sFT"
        );
    }
}
