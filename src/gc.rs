//! Garbage collection (`nightfox gc`, and daily under `serve`): purges the trash entries whose retention ended,
//! deletes the blobs nothing references any more (and objects/ files the catalog never knew), and clears `tmp/`
//! leftovers older than a day.
//!
//! Safety: a couple whose lease is held (an import or an `/ingest` commit) is not purged this run; a blob is
//! deleted only through [`Trash::remove_unneeded`], which checks under the catalog's write lock that no blob row,
//! no item of an unfinished session and no ingest entry names it (an import records an item's hash before it
//! lands or relies on a blob, and that record waits for the lock); while an export runs (it holds
//! `locks/export.lock` shared) no blob is deleted at all. A kill at any moment leaves the catalog consistent: a
//! blob row is forgotten before its object is deleted, so the worst left behind is an orphan object, which the next
//! run deletes.

use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use serde::Serialize;

use crate::archive::{Archive, LockFile};
use crate::catalog::prelude::*;
use crate::catalog::Actor;
use crate::error::{Error, Result};

/// Blobs looked at per catalog page.
const PAGE: u32 = 500;

/// What one run does.
#[derive(Clone, Copy, Debug)]
pub struct GcOptions {
    /// Delete nothing; report what a run would purge and free.
    pub dry_run: bool,
    /// `tmp/` files left alone for less than this are kept.
    pub tmp_age: Duration,
}

impl Default for GcOptions {
    fn default() -> Self {
        GcOptions { dry_run: false, tmp_age: Duration::from_secs(24 * 3600) }
    }
}

/// A trash entry a run purged (or would purge).
#[derive(Clone, Debug, Serialize)]
pub struct PurgedEntry {
    pub id: i64,
    pub couple: String,
    pub label: String,
    pub files: i64,
    pub bytes: i64,
}

/// What a run did (or, dry, would do).
#[derive(Clone, Debug, Default, Serialize)]
pub struct GcReport {
    pub dry_run: bool,
    /// Trash entries purged (their retention ended).
    pub purged: Vec<PurgedEntry>,
    /// Entries due but kept this run, with why (their couple is busy).
    pub kept: Vec<String>,
    /// Blobs deleted (catalogued ones nothing references, and orphan objects).
    pub blobs_freed: u64,
    pub bytes_freed: u64,
    /// Of those, objects/ files the catalog did not know.
    pub orphans_freed: u64,
    /// Why no blob was deleted this run, if none was looked at (an export is running).
    pub blobs_skipped: Option<String>,
    pub tmp_removed: u64,
    pub tmp_bytes: u64,
}

impl GcReport {
    /// One line: what was purged and freed.
    pub fn summary(&self) -> String {
        let verb = if self.dry_run { "would purge" } else { "purged" };
        let free = if self.dry_run { "would free" } else { "freed" };
        let files: i64 = self.purged.iter().map(|p| p.files).sum();
        let mut s = format!(
            "{verb} {} trash entr{} ({files} files), {free} {} blob(s) ({}), {} tmp/ file(s) ({})",
            self.purged.len(),
            if self.purged.len() == 1 { "y" } else { "ies" },
            self.blobs_freed,
            crate::human_bytes(self.bytes_freed),
            self.tmp_removed,
            crate::human_bytes(self.tmp_bytes)
        );
        if self.orphans_freed > 0 {
            s.push_str(&format!("; {} orphan object(s) among the blobs", self.orphans_freed));
        }
        if !self.kept.is_empty() {
            s.push_str(&format!(
                "; {} due entr{} kept (busy)",
                self.kept.len(),
                if self.kept.len() == 1 { "y" } else { "ies" }
            ));
        }
        if let Some(why) = &self.blobs_skipped {
            s.push_str(&format!("; no blob deleted: {why}"));
        }
        if self.dry_run && !self.purged.is_empty() {
            s.push_str("; the blobs only the purged entries use are freed by the real run");
        }
        s
    }
}

/// Runs one garbage collection of `archive` (see the module's doc).
pub fn run(archive: &Archive, opts: &GcOptions) -> Result<GcReport> {
    let cat = archive.catalog()?;
    let now = crate::verify::clock();
    let by = Actor::this_process(now);
    let mut report = GcReport { dry_run: opts.dry_run, ..Default::default() };

    // (a) The trash entries whose retention ended.
    for e in cat.trash()? {
        if e.purge_after > now {
            continue;
        }
        if cat.couple_lock_held(e.couple_id) == Some(true) {
            report.kept.push(format!("trash entry {} ({}): {} is busy", e.id, e.label, e.couple));
            continue;
        }
        if !opts.dry_run {
            match cat.purge(e.id, &by) {
                Ok(_) => {}
                // Purged with its couple's entry earlier in this run.
                Err(Error::NotFound(_)) => continue,
                Err(err) => return Err(err),
            }
        }
        report.purged.push(PurgedEntry { id: e.id, couple: e.couple, label: e.label, files: e.files, bytes: e.bytes });
    }

    // (b) Blobs nothing references, unless an export is reading blobs now.
    let export_lock = if opts.dry_run { None } else { LockFile::try_take(&archive.lock_path("export"))? };
    if !opts.dry_run && export_lock.is_none() {
        report.blobs_skipped = Some("an export is running (run gc again after it)".into());
    } else {
        free_garbage(archive, &cat, opts.dry_run, &mut report)?;
        free_orphans(archive, &cat, opts.dry_run, &mut report)?;
    }
    drop(export_lock);

    // (c) tmp/ leftovers.
    clear_tmp(archive, &cat, opts, &mut report)?;

    if !opts.dry_run {
        cat.audit(&by, "gc", None, &report.summary())?;
    }
    Ok(report)
}

fn free_garbage(archive: &Archive, cat: &Catalog, dry_run: bool, report: &mut GcReport) -> Result<()> {
    let mut after = 0;
    loop {
        let page = cat.garbage(after, PAGE)?;
        let Some(last) = page.last() else { return Ok(()) };
        after = last.id;
        if dry_run {
            report.blobs_freed += page.len() as u64;
            report.bytes_freed += page.iter().map(|g| g.size).sum::<u64>();
            continue;
        }
        let hashes: Vec<String> = page.iter().map(|g| g.hash.clone()).collect();
        let forgotten = cat.forget_blobs(&hashes)?;
        let removed = cat.remove_unneeded(&forgotten, &mut |h| archive.blobs.remove(h))?;
        report.blobs_freed += removed.len() as u64;
        report.bytes_freed += page.iter().filter(|g| removed.contains(&g.hash)).map(|g| g.size).sum::<u64>();
    }
}

/// Objects in the store that no blob row names (a blob forgotten by a run that was killed before deleting it,
/// one landed by a process that died before cataloguing it), deleted the same way.
fn free_orphans(archive: &Archive, cat: &Catalog, dry_run: bool, report: &mut GcReport) -> Result<()> {
    let Some(objects) = archive.blobs.objects_dir().map(Path::to_path_buf) else {
        return Ok(());
    };
    let found = crate::orphans::check(archive, None)?;
    let mut sizes = std::collections::HashMap::new();
    for s in &found.objects {
        let path = Path::new(&s.path);
        let Some(name) = path.file_name().map(|n| String::from_utf8_lossy(n.as_bytes()).into_owned()) else {
            continue;
        };
        // Only files named and placed as blobs; anything else in objects/ is for a person to look at.
        if crate::blobs::is_hash(&name) && crate::blobs::local::object_path(&objects, &name) == path {
            sizes.insert(name, s.size);
        }
    }
    let hashes: Vec<String> = sizes.keys().cloned().collect();
    for chunk in hashes.chunks(PAGE as usize) {
        let removed = if dry_run {
            let needed = cat.needed_hashes(chunk)?;
            chunk.iter().filter(|h| !needed.contains(*h)).cloned().collect()
        } else {
            cat.remove_unneeded(chunk, &mut |h| archive.blobs.remove(h))?
        };
        report.orphans_freed += removed.len() as u64;
        report.blobs_freed += removed.len() as u64;
        report.bytes_freed += removed.iter().map(|h| sizes.get(h).copied().unwrap_or(0)).sum::<u64>();
    }
    Ok(())
}

/// Files in `tmp/` untouched for longer than `opts.tmp_age` (by the system's clock, as their mtimes), except the partial copies
/// of a session that has not ended (a resume continues from them) and the staging of a live `/ingest` entry.
fn clear_tmp(archive: &Archive, cat: &Catalog, opts: &GcOptions, report: &mut GcReport) -> Result<()> {
    let now = crate::catalog::now();
    let dir = archive.staging.dir();
    let Ok(rd) = std::fs::read_dir(dir) else { return Ok(()) };
    let sessions: std::collections::HashMap<i64, bool> =
        cat.sessions()?.into_iter().map(|s| (s.id, is_ended(s.status))).collect();
    let entries: std::collections::HashSet<i64> = cat.ingest_entries()?.into_iter().map(|e| e.id).collect();
    for e in rd {
        let e = e.map_err(|err| Error::io(dir, err))?;
        let Ok(md) = e.metadata() else { continue };
        if !md.is_file() {
            continue;
        }
        let mtime =
            md.modified().ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map_or(0, |d| d.as_secs() as i64);
        if now.saturating_sub(mtime) < opts.tmp_age.as_secs() as i64 {
            continue;
        }
        let name = e.file_name().to_string_lossy().into_owned();
        let session = name.strip_prefix('s').and_then(|r| r.split_once("-i")).and_then(|(n, _)| n.parse::<i64>().ok());
        if session.is_some_and(|s| sessions.get(&s) == Some(&false)) {
            continue;
        }
        let ingest = name.strip_prefix("ingest-").and_then(|r| r.strip_suffix(".part")).and_then(|n| n.parse().ok());
        if ingest.is_some_and(|id: i64| entries.contains(&id)) {
            continue;
        }
        report.tmp_removed += 1;
        report.tmp_bytes += md.len();
        if !opts.dry_run {
            crate::blobs::remove_if_exists(&e.path())?;
        }
    }
    Ok(())
}

fn is_ended(s: crate::catalog::SessionStatus) -> bool {
    use crate::catalog::SessionStatus as S;
    matches!(s, S::Completed | S::Cancelled | S::Failed)
}
