//! Nightfox: a verified footage archive for wedding and event filmmakers, shown as a read-only filesystem.
//!
//! Data flows: `sources` (where footage is read) → `ingest` (scan, hash, copy, validate, finalize) → `store`
//! (content-addressed blobs) + `catalog` (SQLite rows), named by `organize`; `fs` is the filesystem over them
//! (`fs::ArchiveFs`: the read-only tree built from the catalog plus the writable `/ingest`, free of FUSE types)
//! and `frontends` serve it (`frontends::fuse`, through the `FrontEnd` trait). `cli` is the command-line edge.
//! See docs/architecture.md.

pub mod archive;
pub mod catalog;
pub mod cli;
pub mod error;
pub mod frontends;
pub mod fs;
pub mod ingest;
pub mod media;
pub mod organize;
pub mod secrets;
pub mod serve;
pub mod sources;
pub mod store;
pub mod verify;

pub use error::{Error, Result};
