//! Verified delivery: `nightfox export COUPLE[/source/type/camera] DEST` copies a couple (or part of its tree) to a
//! plain folder or drive. Each file goes to a temp name, is fsynced, renamed into place (the folder fsynced), then
//! read back from DEST's disk (cache dropped, `O_DIRECT` where allowed) and its BLAKE3 compared with the blob's. A
//! file already in DEST with the right size and hash is not copied again (resume after an interruption; temp
//! leftovers are removed first). DEST gets an ASC MHL history (xxh64 + xxh128, `transfer`): a generation per
//! export, `original` for what it copied first, `verified` for what an earlier generation already listed.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, UNIX_EPOCH};

use rayon::prelude::*;
use serde::Serialize;

use crate::archive::Archive;
use crate::blobs::{direct, staging, Hashers, ReadAtCursor, Sums};
use crate::catalog::FileRow;
use crate::error::{Error, IoContext, Result};
use crate::ingest::Observer;
use crate::mhl::hashes::HashFormat;
use crate::mhl::{Action, FileEntry, History, Manifest, Process};

/// The suffix of a file being copied into DEST (removed by the next export if it was interrupted).
const PART: &str = ".nightfox-part";
/// Files copied at once: more than the cores, as the copies wait on the disk and one file's read-back overlaps
/// the others' writes.
const WORKERS: usize = 8;

/// How files are laid out in DEST.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// The mount's layout below the couple: `source/<type>/<camera>/<name>`.
    Tree,
    /// The original relative paths on the card; under `session-<id>/` when the files come from several sessions.
    Original,
}

/// What an export did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ExportSummary {
    pub dest: PathBuf,
    pub files: u64,
    pub bytes: u64,
    /// Files copied (and verified from DEST's disk).
    pub copied: u64,
    /// Files that were already in DEST with the right content.
    pub present: u64,
    pub failed: Vec<String>,
    /// The ASC MHL generation written.
    pub manifest: Option<PathBuf>,
}

/// A delivered file: whether it was copied (else it was already right), and its xxh64 and xxh128.
type Delivered = (bool, Vec<(HashFormat, String)>);

struct Job {
    rel: String,
    hash: String,
    size: u64,
    mtime_ns: i64,
}

/// Exports `what` (`COUPLE` or `COUPLE/source/<type>[/<camera>]`) to `dest`.
pub fn export(
    a: &Archive,
    what: &str,
    dest: &Path,
    layout: Layout,
    obs: &dyn Observer,
    cancel: &AtomicBool,
) -> Result<ExportSummary> {
    // Held shared until the export ends: `gc` deletes no blob meanwhile (it tries the lock exclusively).
    let _reading = crate::lockfile::LockFile::take_shared(&a.lock_path("export"))?;
    let jobs = plan(a, what, layout)?;
    fs::create_dir_all(dest).at(dest)?;
    remove_parts(dest)?;
    let mut history = History::load(dest)?;
    let earlier: HashMap<String, FileEntry> = match history.newest()? {
        Some(_) => history.all()?.into_iter().flat_map(|(_, m)| m.files).map(|f| (f.path.clone(), f)).collect(),
        None => HashMap::new(),
    };
    let total: u64 = jobs.iter().map(|j| j.size).sum();
    obs.start(jobs.len() as u64, total);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(WORKERS)
        .build()
        .map_err(|e| Error::Invalid(format!("export workers: {e}")))?;
    let results: Vec<(usize, Result<Delivered>)> = pool.install(|| {
        jobs.par_iter()
            .enumerate()
            .map(|(i, j)| {
                if cancel.load(Ordering::Relaxed) {
                    return (i, Err(Error::Invalid("export interrupted; run it again to resume".into())));
                }
                (i, deliver(a, j, dest, obs))
            })
            .collect()
    });
    obs.finish();
    let mut s =
        ExportSummary { dest: dest.to_path_buf(), files: jobs.len() as u64, bytes: total, ..Default::default() };
    let mut entries = Vec::new();
    for (i, r) in results {
        let j = &jobs[i];
        match r {
            Ok((copied, sums)) => {
                if copied {
                    s.copied += 1;
                } else {
                    s.present += 1;
                }
                let action = match earlier.get(&j.rel) {
                    Some(e) if sums.iter().all(|(f, v)| e.hash(*f).is_none_or(|old| old == v)) => Action::Verified,
                    Some(_) => Action::Failed,
                    None => Action::Original,
                };
                if action == Action::Failed {
                    s.failed.push(format!("{}: differs from the hash an earlier generation recorded", j.rel));
                }
                let mtime = j.mtime_ns.div_euclid(1_000_000_000);
                entries.push(FileEntry::new(&j.rel, j.size, Some(mtime), sums, action));
            }
            Err(e) => s.failed.push(format!("{}: {e}", j.rel)),
        }
    }
    if cancel.load(Ordering::Relaxed) {
        return Err(Error::Invalid("export interrupted; run it again to resume".into()));
    }
    if !entries.is_empty() {
        s.manifest = Some(history.append(&Manifest::new(Process::Transfer, entries))?);
    }
    Ok(s)
}

/// The files to export and where each goes in DEST.
fn plan(a: &Archive, what: &str, layout: Layout) -> Result<Vec<Job>> {
    let what = what.trim_end_matches('/');
    let (couple, filter) = match what.split_once('/') {
        Some((c, rest)) => (c, Some(rest)),
        None => (what, None),
    };
    let cat = a.catalog()?;
    let couple = cat.couple_by_folder(couple)?;
    let slugs: HashMap<i64, String> = cat.cameras()?.into_iter().map(|c| (c.id, c.slug)).collect();
    let files: Vec<FileRow> = cat.files(Some(couple.id))?;
    let tree = |f: &FileRow| {
        let slug = f.camera_id.and_then(|id| slugs.get(&id)).map(String::as_str);
        let full = crate::fs::tree_path(&couple.folder_name, slug, f);
        full[couple.folder_name.len() + 1..].to_string()
    };
    let files: Vec<&FileRow> = files
        .iter()
        .filter(|f| match filter {
            None => true,
            Some(p) => {
                let t = tree(f);
                t == p || t.starts_with(&format!("{p}/"))
            }
        })
        .collect();
    if files.is_empty() {
        return Err(Error::NotFound(format!(
            "nothing to export at {what:?} (see `nightfox couple list` or the mount)"
        )));
    }
    let sessions: std::collections::HashSet<Option<i64>> = files.iter().map(|f| f.session_id).collect();
    let mut seen = std::collections::HashSet::new();
    let mut jobs = Vec::new();
    for f in files {
        let rel = match layout {
            Layout::Tree => tree(f),
            Layout::Original => {
                let orig = String::from_utf8_lossy(&f.original_path).trim_start_matches('/').to_string();
                if sessions.len() > 1 {
                    format!("session-{}/{orig}", f.session_id.map_or("none".into(), |s| s.to_string()))
                } else {
                    orig
                }
            }
        };
        if rel.split('/').any(|c| c.is_empty() || c == "." || c == "..") {
            return Err(Error::Invalid(format!("{rel:?} cannot be a path inside DEST")));
        }
        if !seen.insert(rel.clone()) {
            return Err(Error::Invalid(format!("two files would be exported to {rel:?}; use --layout tree")));
        }
        jobs.push(Job { rel, hash: f.blob_hash.clone(), size: f.size, mtime_ns: f.source_mtime_ns });
    }
    Ok(jobs)
}

/// Makes one file right in DEST: kept when it is already there with the blob's content, else copied and read
/// back. Returns whether it was copied, and its xxh64 and xxh128.
fn deliver(a: &Archive, j: &Job, dest: &Path, obs: &dyn Observer) -> Result<Delivered> {
    let target = dest.join(&j.rel);
    if fs::metadata(&target).is_ok_and(|m| m.is_file() && m.len() == j.size) {
        let (b3, sums) = hash_on_disk(&target)?;
        if b3 == j.hash {
            obs.advance(j.size);
            return Ok((false, sums));
        }
    }
    let dir = target.parent().unwrap_or(dest);
    fs::create_dir_all(dir).at(dir)?;
    let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}{PART}"));
    let sums = copy_blob(a, j, &tmp, obs)?;
    fs::rename(&tmp, &target).at(&target)?;
    staging::fsync_dir(dir)?;
    let back = staging::hash_from_disk(&target)?;
    if back != j.hash {
        return Err(Error::Mismatch { path: target, expected: j.hash.clone(), actual: back });
    }
    Ok((true, sums))
}

/// Copies a blob to `tmp` (fsynced, with the source's mtime), hashing what it read: BLAKE3 (checked against the
/// blob's name), xxh64 and xxh128.
fn copy_blob(a: &Archive, j: &Job, tmp: &Path, obs: &dyn Observer) -> Result<Vec<(HashFormat, String)>> {
    let mut out = File::create(tmp).at(tmp)?;
    let mut h = Hashers::new();
    let mut drain = |chunk: &[u8]| -> Result<()> {
        h.update(chunk);
        out.write_all(chunk).at(tmp)?;
        obs.advance(chunk.len() as u64);
        Ok(())
    };
    match a.blobs.local_path(&j.hash).filter(|p| p.is_file()) {
        Some(p) => {
            let mut r = direct::open_read(&p).at(&p)?;
            direct::pipeline(|b| staging::read_full(&mut r, b).at(&p), &mut drain)?;
        }
        None => {
            let blob = a.blobs.open(&j.hash)?;
            let mut r = ReadAtCursor::new(&*blob);
            let what = Path::new(&j.hash);
            direct::pipeline(|b| staging::read_full(&mut r, b).at(what), &mut drain)?;
        }
    }
    let read = h.finalize();
    if read.hash != j.hash {
        return Err(Error::Mismatch { path: tmp.to_path_buf(), expected: j.hash.clone(), actual: read.hash });
    }
    if let Some(t) = u64::try_from(j.mtime_ns).ok().map(|ns| UNIX_EPOCH + Duration::from_nanos(ns)) {
        let _ = out.set_modified(t);
    }
    out.sync_all().at(tmp)?;
    Ok(mhl_sums(read.sums))
}

/// The same-pass checksums as the history lists them.
fn mhl_sums(sums: Option<Sums>) -> Vec<(HashFormat, String)> {
    sums.map(|s| vec![(HashFormat::Xxh64, s.xxh64), (HashFormat::Xxh128, s.xxh128)]).unwrap_or_default()
}

/// BLAKE3, xxh64 and xxh128 of a file as DEST's disk holds it (cached pages dropped first, `O_DIRECT` where
/// allowed), in one read.
fn hash_on_disk(p: &Path) -> Result<(String, Vec<(HashFormat, String)>)> {
    let d = staging::digest_from_disk(p)?;
    Ok((d.hash, mhl_sums(d.sums)))
}

/// Removes what an interrupted export left: `*.nightfox-part` files anywhere under DEST.
fn remove_parts(dest: &Path) -> Result<()> {
    let mut stack = vec![dest.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir).at(&dir)? {
            let e = e.at(&dir)?;
            let ft = e.file_type().at(&e.path())?;
            if ft.is_dir() {
                stack.push(e.path());
            } else if e.file_name().to_string_lossy().ends_with(PART) {
                staging::remove_if_exists(&e.path())?;
            }
        }
    }
    Ok(())
}
