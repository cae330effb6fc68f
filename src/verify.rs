//! Verification of the stored archive: every catalogued blob re-hashed from the disk (page cache dropped first)
//! and compared with its name; missing, resized or altered blobs are reported with the tree paths that use them
//! and recorded in the catalog (`damaged` or `missing`), so the mount answers EIO for them instead of serving rot
//! and the next verified copy of the same content heals them. `repair` is that copy on demand: it hashes given
//! files and puts each one that matches a damaged or missing blob in its place.

use rayon::prelude::*;
use serde::Serialize;

use crate::archive::Archive;
use crate::blobs;
use crate::catalog::BlobRow;
use crate::error::Result;

#[derive(Clone, Debug, Serialize)]
pub struct Problem {
    pub hash: String,
    /// `missing`, `size` (wrong size), `hash` (content differs) or `unreadable`.
    pub kind: String,
    pub detail: String,
    /// Tree paths (`couple/source/type/camera/name`) of the files that use this blob.
    pub files: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub blobs_checked: usize,
    pub bytes_checked: u64,
    pub problems: Vec<Problem>,
}

fn check(archive: &Archive, b: &BlobRow) -> Option<(String, String)> {
    let blobs = &archive.blobs;
    // Named as the store names it: the file's path for the local store.
    let path = match blobs.local_path(&b.hash) {
        Some(p) => format!("{p:?}"),
        None => format!("{} blob {}", blobs.describe(), b.hash),
    };
    let size = match blobs.size(&b.hash) {
        Ok(Some(n)) => n,
        Ok(None) => return Some(("missing".into(), format!("{path} is missing"))),
        Err(e) => return Some(("unreadable".into(), e.to_string())),
    };
    if size != b.size {
        return Some(("size".into(), format!("{path} has {size} bytes, catalogued {}", b.size)));
    }
    match blobs.rehash(&b.hash) {
        Ok(h) if h == b.hash => None,
        Ok(h) => Some(("hash".into(), format!("{path} now hashes to {h}"))),
        Err(e) => Some(("unreadable".into(), e.to_string())),
    }
}

/// Re-hashes every blob (of one couple, if given) and records the good ones as verified.
pub fn verify(archive: &Archive, couple: Option<&str>) -> Result<Report> {
    let cat = archive.catalog()?;
    let couple_id = match couple {
        Some(f) => Some(cat.couple_by_folder(f)?.id),
        None => None,
    };
    let blobs = cat.blobs(couple_id)?;
    let results: Vec<(usize, Option<(String, String)>)> =
        blobs.par_iter().enumerate().map(|(i, b)| (i, check(archive, b))).collect();
    let mut good = Vec::new();
    let mut problems = Vec::new();
    for (i, r) in results {
        let b = &blobs[i];
        match r {
            None => good.push(b.hash.clone()),
            Some((kind, detail)) => {
                let files = crate::fs::tree_paths_of_blob(&cat, &b.hash)?;
                problems.push(Problem { hash: b.hash.clone(), kind, detail, files });
            }
        }
    }
    for p in &problems {
        let health = if p.kind == "missing" { "missing" } else { "damaged" };
        cat.set_blob_unhealthy(&p.hash, health, &p.detail)?;
    }
    let unhealthy: std::collections::HashSet<String> = cat.unhealthy_blobs()?.into_iter().map(|(h, _)| h).collect();
    for h in good.iter().filter(|h| unhealthy.contains(*h)) {
        cat.heal_blob(h, None, "verify found it whole again")?;
    }
    cat.mark_verified(&good)?;
    Ok(Report { blobs_checked: blobs.len(), bytes_checked: blobs.iter().map(|b| b.size).sum(), problems })
}

/// What `repair` did with one given file.
#[derive(Clone, Debug, Serialize)]
pub struct Repaired {
    pub path: String,
    pub hash: String,
    /// `healed`, `ok` (the blob is whole: nothing to do), `unknown` (no such content in the archive) or `failed`.
    pub outcome: String,
    pub detail: Option<String>,
}

/// Hashes each file and, where it matches a blob that `verify` found damaged or missing, copies it into `tmp/`,
/// verifies the copy from disk and puts it in the blob's place atomically, with an event.
pub fn repair(archive: &Archive, paths: &[std::path::PathBuf]) -> Result<Vec<Repaired>> {
    let cat = archive.catalog()?;
    let mut out = Vec::new();
    for (i, path) in paths.iter().enumerate() {
        let shown = path.to_string_lossy().into_owned();
        let hash = match blobs::hash_file(path) {
            Ok(h) => h,
            Err(e) => {
                out.push(Repaired {
                    path: shown,
                    hash: String::new(),
                    outcome: "failed".into(),
                    detail: Some(e.to_string()),
                });
                continue;
            }
        };
        let outcome = match cat.blob_health(&hash)?.as_deref() {
            None => ("unknown", None),
            Some("ok") => ("ok", None),
            Some(_) => match copy_in(archive, path, &hash, i) {
                Ok(()) => {
                    cat.heal_blob(&hash, None, &format!("replaced by a verified copy of {shown} (repair)"))?;
                    ("healed", None)
                }
                Err(e) => ("failed", Some(e.to_string())),
            },
        };
        out.push(Repaired { path: shown, hash, outcome: outcome.0.into(), detail: outcome.1 });
    }
    Ok(out)
}

/// Copies a file into `tmp/` hashed inline, fsynced and re-hashed from disk, and lands it in place of its blob.
fn copy_in(archive: &Archive, path: &std::path::Path, hash: &str, n: usize) -> Result<()> {
    let name = format!("repair-{}-{n}.part", std::process::id());
    let (mut out, tmp) = archive.staging.create(&name)?;
    let src = std::fs::File::open(path).map_err(|e| crate::error::Error::io(path, e))?;
    let copied = blobs::copy_hashing(
        Box::new(src),
        path,
        &mut out,
        &tmp,
        blobs::CopyStart::default(),
        &mut |_| true,
        &mut |_, e| Err(e),
        None,
        true,
    );
    drop(out);
    let checked = copied.and_then(|c| {
        let on_disk = blobs::hash_from_disk(&tmp)?;
        if c.hash != hash || on_disk != hash {
            return Err(crate::error::Error::Mismatch {
                path: path.to_path_buf(),
                expected: hash.to_string(),
                actual: on_disk,
            });
        }
        archive.blobs.replace(&tmp, hash)
    });
    if checked.is_err() {
        let _ = blobs::remove_if_exists(&tmp);
    }
    checked
}
