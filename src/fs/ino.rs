//! The inode namespace of the whole filesystem, in one place: every kind tag, the fixed inodes and which part of
//! the filesystem answers for an inode. Inode numbers are derived from catalog ids (`kind tag << 56 | id`), so
//! they are the same across remounts and versions — what kernel caches and NFS file handles rely on. Never
//! renumber a tag.

use crate::catalog::FootageType;

/// The root of the tree.
pub const ROOT_INO: u64 = 1;
/// `/.by-hash`.
pub const BY_HASH_INO: u64 = 2;
/// `/.metadata_never_index` (an empty virtual file).
pub const NEVER_INDEX_INO: u64 = 3;
/// `/ingest` itself.
pub const INGEST_ROOT_INO: u64 = 4;

pub const BY_HASH_NAME: &[u8] = b".by-hash";
pub const NEVER_INDEX_NAME: &[u8] = b".metadata_never_index";
pub const INGEST_NAME: &[u8] = b"ingest";

pub const KIND_SHIFT: u32 = 56;
/// The kind tag bits of an inode.
pub const KIND_MASK: u64 = 0xff << KIND_SHIFT;

// The read-only tree (`tree.rs`).
/// `/<couple>`: tag 1 | couple id.
pub const K_COUPLE: u64 = 1 << KIND_SHIFT;
/// `/<couple>/source`: tag 2 | couple id.
pub const K_SOURCE: u64 = 2 << KIND_SHIFT;
/// `/<couple>/source/<type>`: tag 3 | couple id << 2 | type index.
pub const K_TYPE: u64 = 3 << KIND_SHIFT;
/// `/<couple>/source/<type>/<camera>`: tag 4 | couple id << 34 | type index << 32 | camera id (0: unknown).
pub const K_CAMERA: u64 = 4 << KIND_SHIFT;
/// A clip: tag 5 | file id.
pub const K_FILE: u64 = 5 << KIND_SHIFT;
/// `/.by-hash/<blake3><ext>`: tag 6 | blob id.
pub const K_HASH: u64 = 6 << KIND_SHIFT;
/// A folder of an old path (renamed, moved from or merged away: listed empty, its entries resolve to where things
/// are now): tag 9 | 56 bits of a hash of its parent inode and name (the same on every mount).
pub const K_GHOST: u64 = 9 << KIND_SHIFT;

// The writable `/ingest` (`ingest_dir.rs`).
/// `/ingest/<couple>`: tag 7 | couple id.
pub const K_INGEST_COUPLE: u64 = 7 << KIND_SHIFT;
/// A file or folder below a couple's ingest folder: tag 8 | ingest entry id.
pub const K_INGEST_ENTRY: u64 = 8 << KIND_SHIFT;

/// File handles of the ingest directory come from this range up; a front end numbers its own below it.
pub const INGEST_FH_BASE: u64 = 1 << 62;

/// Which part of the filesystem answers for an inode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owner {
    /// The read-only tree of catalogued footage.
    Tree,
    /// The writable `/ingest`.
    Ingest,
}

pub fn owner(ino: u64) -> Owner {
    if owns_ingest(ino) {
        Owner::Ingest
    } else {
        Owner::Tree
    }
}

/// True for inodes the ingest directory answers for (`/ingest` and everything below it).
pub fn owns_ingest(ino: u64) -> bool {
    ino == INGEST_ROOT_INO || matches!(ino & KIND_MASK, K_INGEST_COUPLE | K_INGEST_ENTRY)
}

/// True for file handles handed out by the ingest directory.
pub fn is_ingest_fh(fh: u64) -> bool {
    fh >= INGEST_FH_BASE
}

/// The id part of a tagged inode.
pub fn id_of(ino: u64) -> i64 {
    (ino & !KIND_MASK) as i64
}

fn type_idx(ft: FootageType) -> u64 {
    match ft {
        FootageType::Modern => 0,
        FootageType::Dadcam => 1,
        FootageType::Super8 => 2,
    }
}

fn type_of_idx(idx: u64) -> Option<FootageType> {
    match idx {
        0 => Some(FootageType::Modern),
        1 => Some(FootageType::Dadcam),
        2 => Some(FootageType::Super8),
        _ => None,
    }
}

/// What an inode of the read-only tree names, from its number alone (the inverse of the `*_ino` functions).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TreeIno {
    Root,
    ByHash,
    NeverIndex,
    /// The `/ingest` placeholder.
    IngestRoot,
    Couple(i64),
    Source(i64),
    Type(i64, FootageType),
    Camera(i64, FootageType, Option<i64>),
    File(i64),
    /// A `.by-hash` entry: the blob id.
    Hash(i64),
    /// A folder of an old path (what it stands for is kept by the tree while the inode is known).
    Ghost(u64),
    /// Not an inode of the tree.
    Unknown,
}

pub fn decode(ino: u64) -> TreeIno {
    let low = ino & !KIND_MASK;
    match (ino, ino & KIND_MASK) {
        (ROOT_INO, _) => TreeIno::Root,
        (BY_HASH_INO, _) => TreeIno::ByHash,
        (NEVER_INDEX_INO, _) => TreeIno::NeverIndex,
        (INGEST_ROOT_INO, _) => TreeIno::IngestRoot,
        (_, K_COUPLE) => TreeIno::Couple(low as i64),
        (_, K_SOURCE) => TreeIno::Source(low as i64),
        (_, K_TYPE) => match type_of_idx(low & 3) {
            Some(ft) => TreeIno::Type((low >> 2) as i64, ft),
            None => TreeIno::Unknown,
        },
        (_, K_CAMERA) => match type_of_idx((low >> 32) & 3) {
            Some(ft) => {
                let cam = (low & 0xffff_ffff) as i64;
                TreeIno::Camera((low >> 34) as i64, ft, (cam != 0).then_some(cam))
            }
            None => TreeIno::Unknown,
        },
        (_, K_FILE) => TreeIno::File(low as i64),
        (_, K_HASH) => TreeIno::Hash(low as i64),
        (_, K_GHOST) => TreeIno::Ghost(ino),
        _ => TreeIno::Unknown,
    }
}

pub fn couple_ino(couple: i64) -> u64 {
    K_COUPLE | couple as u64
}
pub fn source_ino(couple: i64) -> u64 {
    K_SOURCE | couple as u64
}
pub fn type_ino(couple: i64, ft: FootageType) -> u64 {
    K_TYPE | ((couple as u64) << 2) | type_idx(ft)
}
pub fn camera_ino(couple: i64, ft: FootageType, camera: Option<i64>) -> u64 {
    K_CAMERA | ((couple as u64) << 34) | (type_idx(ft) << 32) | (camera.unwrap_or(0) as u64 & 0xffff_ffff)
}
pub fn file_ino(file_id: i64) -> u64 {
    K_FILE | file_id as u64
}
pub fn hash_ino(blob_id: i64) -> u64 {
    K_HASH | blob_id as u64
}
pub fn ghost_ino(parent: u64, name: &[u8]) -> u64 {
    let mut key = parent.to_le_bytes().to_vec();
    key.extend_from_slice(name);
    K_GHOST | (xxhash_rust::xxh3::xxh3_64(&key) & !KIND_MASK)
}
pub fn ingest_couple_ino(couple: i64) -> u64 {
    K_INGEST_COUPLE | couple as u64
}
pub fn ingest_entry_ino(entry: i64) -> u64 {
    K_INGEST_ENTRY | entry as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inode_kinds_do_not_overlap() {
        let a =
            [couple_ino(1), source_ino(1), type_ino(1, FootageType::Modern), camera_ino(1, FootageType::Modern, None)];
        let b = [file_ino(1), hash_ino(1), ROOT_INO, BY_HASH_INO, NEVER_INDEX_INO];
        let c = [INGEST_ROOT_INO, ingest_couple_ino(1), ingest_entry_ino(1)];
        let mut all: Vec<u64> = a.iter().chain(b.iter()).chain(c.iter()).copied().collect();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 12);
        assert_ne!(camera_ino(1, FootageType::Modern, Some(2)), camera_ino(1, FootageType::Dadcam, Some(2)));
        assert!(c.iter().all(|i| owner(*i) == Owner::Ingest));
        assert!(a.iter().chain(b.iter()).all(|i| owner(*i) == Owner::Tree));
    }

    #[test]
    fn tags_are_stable() {
        // Inode numbers are part of the interface (kernel caches, NFS handles): these values must never change.
        assert_eq!(couple_ino(7), 0x0100_0000_0000_0007);
        assert_eq!(source_ino(7), 0x0200_0000_0000_0007);
        assert_eq!(type_ino(7, FootageType::Dadcam), 0x0300_0000_0000_001d);
        assert_eq!(camera_ino(7, FootageType::Super8, Some(3)), 0x0400_001e_0000_0003);
        assert_eq!(file_ino(42), 0x0500_0000_0000_002a);
        assert_eq!(hash_ino(42), 0x0600_0000_0000_002a);
        assert_eq!(ingest_couple_ino(7), 0x0700_0000_0000_0007);
        assert_eq!(ingest_entry_ino(42), 0x0800_0000_0000_002a);
    }

    #[test]
    fn inodes_decode_to_what_they_name() {
        for ft in [FootageType::Modern, FootageType::Dadcam, FootageType::Super8] {
            assert_eq!(decode(type_ino(7, ft)), TreeIno::Type(7, ft));
            assert_eq!(decode(camera_ino(7, ft, Some(3))), TreeIno::Camera(7, ft, Some(3)));
            assert_eq!(decode(camera_ino(1 << 20, ft, None)), TreeIno::Camera(1 << 20, ft, None));
        }
        assert_eq!(decode(couple_ino(9)), TreeIno::Couple(9));
        assert_eq!(decode(source_ino(9)), TreeIno::Source(9));
        assert_eq!(decode(file_ino(42)), TreeIno::File(42));
        assert_eq!(decode(hash_ino(42)), TreeIno::Hash(42));
        assert_eq!(decode(ROOT_INO), TreeIno::Root);
        assert_eq!(decode(K_TYPE | 3), TreeIno::Unknown, "no fourth footage type");
        assert_eq!(decode(ingest_couple_ino(1)), TreeIno::Unknown);
        let g = ghost_ino(ROOT_INO, b"old-folder");
        assert_eq!(decode(g), TreeIno::Ghost(g));
        assert_eq!(g, ghost_ino(ROOT_INO, b"old-folder"), "the same on every mount");
        assert_ne!(g, ghost_ino(ROOT_INO, b"old-folder2"));
        assert_eq!(owner(g), Owner::Tree);
    }
}
