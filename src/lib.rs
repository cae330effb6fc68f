//! Nightfox: a verified footage archive for wedding and event filmmakers, shown as a read-only filesystem.
//!
//! Data flows: `sources` (where footage is read) → `ingest` (scan, hash, copy, validate, finalize) → `store`
//! (content-addressed blobs) + `catalog` (rows behind traits cut by consumer; SQLite today), named by
//! `organize`; `vfs` builds the virtual tree from the catalog and `fuse` serves it. `cli` is the command-line
//! edge. See docs/architecture.md.

pub mod archive;
pub mod blobs;
pub mod catalog;
pub mod cli;
pub mod error;
pub mod fuse;
pub mod ingest;
pub mod ingest_dir;
pub mod media;
pub mod organize;
pub mod secrets;
pub mod serve;
pub mod sources;
pub mod verify;
pub mod vfs;

pub use error::{Error, Result};
