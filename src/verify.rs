//! Verification of the stored archive: every catalogued blob re-hashed from the disk (page cache dropped first)
//! and compared with its name; missing, resized or altered blobs are reported with the tree paths that use them.

use rayon::prelude::*;
use serde::Serialize;

use crate::archive::Archive;
use crate::catalog::BlobRow;
use crate::error::Result;
use crate::store;

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
    let path = archive.store.blob_path(&b.hash);
    let meta = match std::fs::metadata(&path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Some(("missing".into(), format!("{path:?} is missing")))
        }
        Err(e) => return Some(("unreadable".into(), format!("{path:?}: {e}"))),
    };
    if meta.len() != b.size {
        return Some(("size".into(), format!("{path:?} has {} bytes, catalogued {}", meta.len(), b.size)));
    }
    match store::hash_from_disk(&path) {
        Ok(h) if h == b.hash => None,
        Ok(h) => Some(("hash".into(), format!("{path:?} now hashes to {h}"))),
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
                let files = crate::vfs::tree_paths_of_blob(&cat, &b.hash)?;
                problems.push(Problem { hash: b.hash.clone(), kind, detail, files });
            }
        }
    }
    cat.mark_verified(&good)?;
    Ok(Report { blobs_checked: blobs.len(), bytes_checked: blobs.iter().map(|b| b.size).sum(), problems })
}
