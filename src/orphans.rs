//! The orphan check of a scrub: files in the blob store's `objects/` that the catalog does not know (a blob landed
//! by a process that died before cataloguing it, a stray copy, another tool's file: an error, `verify` exits 1),
//! and leftovers in `tmp/` (copies kept for resuming a session, or dropped by a crash: reported, never an
//! error). `objects/` is walked shard by shard in name order and its names are looked up in the catalog in
//! batches, so a million-blob archive is never held in memory at once. Nothing is removed: what to do with an
//! orphan is for a person to decide.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use serde::Serialize;

use crate::archive::Archive;
use crate::blobs;
use crate::catalog::Catalog;
use crate::error::{Error, Result};

/// How many names of `objects/` one catalog look-up asks about.
const BATCH: usize = 2000;

/// What the orphan check found.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Orphans {
    /// False when the blob store is not a local directory (nothing to walk) or the walk was stopped.
    pub walked: bool,
    /// Files (and unexpected directories) in `objects/` that are not catalogued blobs.
    pub objects: Vec<Stray>,
    /// Everything in `tmp/`.
    pub tmp: Vec<Stray>,
}

/// One file the catalog does not account for.
#[derive(Clone, Debug, Serialize)]
pub struct Stray {
    pub path: String,
    pub size: u64,
    /// For a `tmp/` file named after an import session's item (`s<session>-i<item>...`): that session.
    pub session: Option<i64>,
}

fn stray(path: &Path) -> Stray {
    let size = std::fs::symlink_metadata(path).map(|m| m.len()).unwrap_or(0);
    Stray { path: path.to_string_lossy().into_owned(), size, session: None }
}

/// The entries of a directory, sorted by name.
fn sorted(dir: &Path) -> Result<Vec<(String, PathBuf, bool)>> {
    let rd = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    let mut out = Vec::new();
    for e in rd {
        let e = e.map_err(|e| Error::io(dir, e))?;
        let is_dir = e.file_type().map_err(|err| Error::io(e.path(), err))?.is_dir();
        out.push((String::from_utf8_lossy(e.file_name().as_bytes()).into_owned(), e.path(), is_dir));
    }
    out.sort();
    Ok(out)
}

fn is_shard(name: &str) -> bool {
    name.len() == 2 && name.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Looks up a batch of `(hash, path)` in the catalog and moves the unknown ones to `out`.
fn flush(cat: &Catalog, batch: &mut Vec<(String, PathBuf)>, out: &mut Vec<PathBuf>) -> Result<()> {
    let hashes: Vec<String> = batch.iter().map(|(h, _)| h.clone()).collect();
    let known = cat.known_blobs(&hashes)?;
    out.extend(batch.drain(..).filter(|(h, _)| !known.contains(h)).map(|(_, p)| p));
    Ok(())
}

/// Walks `objects/` (when the store is a local directory) and lists `tmp/`. `stop` ends the walk early (then
/// `walked` is false). A blob landed just before its catalogue row commits would look orphaned: the orphans
/// found are looked up once more at the end, and only those still unknown and still there are reported.
pub fn check(archive: &Archive, stop: Option<&AtomicBool>) -> Result<Orphans> {
    let cat = archive.catalog()?;
    let mut found = Orphans { tmp: tmp_leftovers(archive.staging.dir())?, ..Default::default() };
    let Some(objects) = archive.blobs.objects_dir() else { return Ok(found) };
    let stopped = || stop.is_some_and(|s| s.load(Ordering::SeqCst));
    let mut unknown: Vec<PathBuf> = Vec::new();
    let mut batch: Vec<(String, PathBuf)> = Vec::with_capacity(BATCH);
    for (a, outer, is_dir) in sorted(objects)? {
        if !is_dir || !is_shard(&a) {
            found.objects.push(stray(&outer));
            continue;
        }
        if stopped() {
            return Ok(found);
        }
        for (b, inner, is_dir) in sorted(&outer)? {
            if !is_dir || !is_shard(&b) {
                found.objects.push(stray(&inner));
                continue;
            }
            for (name, path, is_dir) in sorted(&inner)? {
                if is_dir || !blobs::is_hash(&name) || name.get(0..2) != Some(&a) || name.get(2..4) != Some(&b) {
                    found.objects.push(stray(&path));
                    continue;
                }
                batch.push((name, path));
                if batch.len() >= BATCH {
                    flush(&cat, &mut batch, &mut unknown)?;
                }
            }
        }
    }
    flush(&cat, &mut batch, &mut unknown)?;
    // Once more, for blobs whose row committed while the walk went on.
    let again: Vec<(String, PathBuf)> = unknown
        .into_iter()
        .filter(|p| p.exists())
        .map(|p| (p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(), p))
        .collect();
    let mut still = Vec::new();
    for chunk in again.chunks(BATCH) {
        flush(&cat, &mut chunk.to_vec(), &mut still)?;
    }
    found.objects.extend(still.iter().map(|p| stray(p)));
    found.objects.sort_by(|x, y| x.path.cmp(&y.path));
    found.walked = true;
    Ok(found)
}

/// Everything in `tmp/`, by name, with the session a copy belongs to when its name tells.
fn tmp_leftovers(dir: &Path) -> Result<Vec<Stray>> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    Ok(sorted(dir)?
        .into_iter()
        .map(|(name, path, _)| {
            let mut s = stray(&path);
            s.session = name.strip_prefix('s').and_then(|r| r.split_once("-i")).and_then(|(n, _)| n.parse().ok());
            s
        })
        .collect())
}
