//! The ASC MHL history of an import session: the card as it was received (original relative paths, sizes,
//! modification times, xxh64 and xxh128 as `original`), written into any folder (`nightfox mhl SESSION DIR`) and
//! into the archive at the end of each successful session (`manifests/<session>/ascmhl/`).

use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::hashes::{self, HashFormat};
use super::{Action, FileEntry, History, Manifest, Process};
use crate::archive::Archive;
use crate::blobs::ReadAtCursor;
use crate::error::Result;

/// Where the archive keeps a session's history: `<archive>/manifests/<session>` (its `ascmhl/` inside).
pub fn archive_dir(a: &Archive, session: i64) -> PathBuf {
    a.root.join("manifests").join(session.to_string())
}

/// The manifest of a session: every item in the archive with xxh64 and xxh128, from the catalog where the import
/// recorded them, else hashed from the stored blob.
pub fn session_manifest(a: &Archive, session: i64) -> Result<Manifest> {
    let cat = a.catalog()?;
    cat.session(session)?;
    // A card's own history (kept as sidecars) is not part of what the session's history lists.
    let prefix = format!("{}/", super::FOLDER);
    let sums: Vec<_> =
        cat.session_sums(session)?.into_iter().filter(|s| !s.rel_path.starts_with(prefix.as_bytes())).collect();
    drop(cat);
    let files: Vec<Result<FileEntry>> = sums
        .par_iter()
        .map(|s| {
            let values = match (&s.xxh64, &s.xxh128) {
                (Some(x64), Some(x128)) => vec![(HashFormat::Xxh64, x64.clone()), (HashFormat::Xxh128, x128.clone())],
                _ => {
                    let blob = a.blobs.open(&s.hash)?;
                    let what = Path::new(&s.hash);
                    hashes::hash_reader(&mut ReadAtCursor::new(&*blob), what, &[HashFormat::Xxh64, HashFormat::Xxh128])?
                }
            };
            let path = String::from_utf8_lossy(&s.rel_path).into_owned();
            Ok(FileEntry::new(&path, s.size, Some(s.mtime_ns.div_euclid(1_000_000_000)), values, Action::Original))
        })
        .collect();
    let files = files.into_iter().collect::<Result<Vec<_>>>()?;
    Ok(Manifest::new(Process::Transfer, files))
}

/// Appends the session's manifest as a new generation of `dir`'s history; returns the manifest's path.
pub fn write_session_history(a: &Archive, session: i64, dir: &Path) -> Result<PathBuf> {
    let m = session_manifest(a, session)?;
    std::fs::create_dir_all(dir).map_err(|e| crate::Error::io(dir, e))?;
    History::load(dir)?.append(&m)
}

/// Writes the session's history into the archive ([`archive_dir`]) when the session brought anything in; returns
/// the manifest's path.
pub fn write_archive_history(a: &Archive, session: i64) -> Result<Option<PathBuf>> {
    let m = session_manifest(a, session)?;
    if m.files.is_empty() {
        return Ok(None);
    }
    let dir = archive_dir(a, session);
    std::fs::create_dir_all(&dir).map_err(|e| crate::Error::io(&dir, e))?;
    History::load(&dir)?.append(&m).map(Some)
}

/// What follows a completed session: its history written into the archive, and when the session read one card
/// folder (`card`) that holds an `ascmhl/` history, the check against that history recorded on the session.
pub fn after_session(a: &Archive, session: i64, card: Option<&Path>) -> Result<()> {
    write_archive_history(a, session)?;
    if let Some(root) = card.filter(|r| History::exists(r)) {
        if let Some((summary, problems)) = super::onset::check_session(a, session, root)? {
            let json = serde_json::to_string(&problems)
                .map_err(|e| crate::Error::Invalid(format!("on-set manifest problems as JSON: {e}")))?;
            a.catalog()?.set_onset_manifest(session, &summary, &json)?;
        }
    }
    Ok(())
}
