//! Nightfox: a verified footage archive for wedding and event filmmakers, shown as a read-only filesystem.
//!
//! Data flows: `sources` (where footage is read, the `Source` trait) → `ingest` (scan, hash, copy into
//! `blobs::Staging`, validate, finalize) → `blobs` (verified content by hash, the `BlobStore` trait; local
//! `objects/` by default) + `catalog` (rows behind role traits cut by consumer; SQLite by default), chosen by
//! `archive.toml`, named by `organize`; `fs` is the filesystem over them (`fs::ArchiveFs`: the read-only tree
//! built from the catalog plus the writable `/ingest`, free of FUSE types) and `frontends` serve it
//! (`frontends::fuse`, through the `FrontEnd` trait). `cli` is the command-line edge. See docs/architecture.md.

pub mod archive;
pub mod blobs;
pub mod catalog;
pub mod cli;
pub mod daemon;
pub mod error;
pub mod export;
pub mod frontends;
pub mod fs;
pub mod gc;
pub mod generate;
pub mod ingest;
pub mod jobs;
pub mod lockfile;
pub mod media;
pub mod mhl;
pub mod migrate;
pub mod organize;
pub mod orphans;
pub mod secrets;
pub mod serve;
pub mod sources;
pub mod verify;

pub use error::{Error, Result};

/// A byte count as people read it (`1.50 GiB`), for messages and summaries; negative counts read as 0.
pub fn human_bytes(bytes: impl Into<i128>) -> String {
    indicatif::HumanBytes(bytes.into().clamp(0, u64::MAX as i128) as u64).to_string()
}
