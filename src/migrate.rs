//! `migrate-blobs`: moves an archive's blobs to another store (local to S3, S3 to local, one S3 prefix to
//! another). Every catalogued blob is staged locally (a hard link of a local object, or a download), re-hashed,
//! and landed in the target, which proves it holds the bytes before the next one; a blob the target holds
//! already is kept, so a run cut short resumes where it stopped. Only when every blob is there does the archive's
//! `archive.toml` name the new store (written atomically). Runs with the daemon lock and every couple's lease
//! held (no mount, serve or import meanwhile). The old store's copies stay until removed by hand.

use std::fs::File;
use std::path::Path;

use serde::Serialize;

use crate::archive::Archive;
use crate::blobs::{self, BlobStore, Durability};
use crate::catalog::prelude::*;
use crate::error::{Error, IoContext, Result};
use crate::ingest::Observer;

/// What a migration did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Migrated {
    pub from: String,
    pub to: String,
    pub blobs: u64,
    /// Landed by this run.
    pub copied: u64,
    pub bytes_copied: u64,
    /// In the target already (an earlier run, or shared).
    pub already: u64,
}

/// Takes every couple's lease (no import runs while they are held); fails naming the first couple busy.
pub(crate) fn lease_every_couple(cat: &dyn CatalogConn) -> Result<Vec<CoupleLease>> {
    let mut leases = Vec::new();
    for c in cat.couples()? {
        match cat.try_lock_couple(c.id)? {
            Some(mut l) => {
                // Named, so that `session cancel` never takes this holder for a running session.
                l.write_note("migrate")?;
                leases.push(l);
            }
            None => {
                let session = cat.couple_lock_holder(c.id).and_then(|n| n.parse().ok()).unwrap_or(0);
                return Err(Error::CoupleBusy { couple: c.folder_name, session });
            }
        }
    }
    Ok(leases)
}

/// Moves every blob of `archive` to the store `to_url` names and switches the archive to it.
pub fn migrate_blobs(archive: &Archive, to_url: &str, progress: &dyn Observer) -> Result<Migrated> {
    let _daemon = crate::serve::lock_daemon(archive, &archive.root.to_string_lossy(), "migrate-blobs", None)?;
    let cat = archive.catalog()?;
    let leases = lease_every_couple(&*cat)?;
    let target = archive.open_blob_store(to_url)?;
    let mut report = Migrated { from: archive.blobs.describe(), to: target.describe(), ..Default::default() };
    let rows = cat.blobs(None)?;
    if report.from == report.to {
        // Done before (a run repeated): nothing moves.
        report.blobs = rows.len() as u64;
        report.already = report.blobs;
        return Ok(report);
    }
    progress.start(rows.len() as u64, rows.iter().map(|b| b.size).sum());
    for b in &rows {
        report.blobs += 1;
        if target.size(&b.hash)? == Some(b.size) {
            report.already += 1;
            progress.advance(b.size);
            continue;
        }
        let staged = archive.staging.path(&format!("migrate-{}", b.hash));
        blobs::remove_if_exists(&staged)?;
        stage(&*archive.blobs, &b.hash, &staged)?;
        let got = blobs::hash_file(&staged)?;
        if got != b.hash {
            blobs::remove_if_exists(&staged)?;
            return Err(Error::Mismatch { path: staged, expected: b.hash.clone(), actual: got });
        }
        target.land(&staged, &b.hash, Durability::Now)?;
        report.copied += 1;
        report.bytes_copied += b.size;
        progress.advance(b.size);
    }
    target.sync()?;
    let mut config = archive.config.clone();
    config.blobs.url = to_url.to_string();
    blobs::staging::write_atomic(&archive.root.join(crate::archive::config::FILE), config.to_text()?.as_bytes())?;
    progress.finish();
    drop(leases);
    Ok(report)
}

/// A local copy of a stored blob at `staged`: a hard link of a local object (same filesystem as `tmp/`), else
/// the bytes read from the store.
fn stage(store: &dyn BlobStore, hash: &str, staged: &Path) -> Result<()> {
    if let Some(src) = store.local_path(hash) {
        if std::fs::hard_link(&src, staged).is_ok() {
            return Ok(());
        }
    }
    let r = store.open(hash)?;
    let mut f = File::create(staged).at(staged)?;
    // 8 MiB reads, as a store serves them best (a remote one by ranges).
    let mut src = std::io::BufReader::with_capacity(8 << 20, blobs::ReadAtCursor::new(&*r));
    std::io::copy(&mut src, &mut f).at(staged)?;
    f.sync_all().at(staged)
}
