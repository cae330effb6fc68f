//! Verification of the stored archive: every catalogued blob re-hashed from the disk (page cache dropped first)
//! and compared with its name; missing, resized or altered blobs are reported with the tree paths that use them
//! and recorded in the catalog (`damaged` or `missing`), so the mount answers EIO for them instead of serving rot
//! and the next verified copy of the same content heals them. `repair` is that copy on demand: it hashes given
//! files and puts each one that matches a damaged or missing blob in its place.

use rayon::prelude::*;
use serde::Serialize;

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::archive::Archive;
use crate::blobs;
use crate::catalog::{BlobRow, Catalog};
use crate::error::Result;
use crate::ingest::Observer;

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
    /// Each problem blob with the tree paths that use it.
    pub problems: Vec<Problem>,
    /// The problems counted per couple (what the one-line-per-couple report says), by folder name.
    pub couples: Vec<CoupleProblems>,
}

/// How many of a couple's blobs are missing or damaged, and the first of its files they affect.
#[derive(Clone, Debug, Serialize)]
pub struct CoupleProblems {
    pub couple: String,
    pub missing: usize,
    pub damaged: usize,
    /// Up to [`FIRST_PATHS`] tree paths of affected files (all of them are in `problems`).
    pub first: Vec<String>,
    pub files: usize,
}

/// How many paths a couple's summary names.
pub const FIRST_PATHS: usize = 3;

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

/// Re-hashes every blob (of one couple, if given) and records the good ones as verified. `progress` is told the
/// total first, then the bytes of each blob checked. The catalog is asked in bulk: the blobs once, the paths of
/// the problem blobs in a few queries, their health in one transaction.
pub fn verify(archive: &Archive, couple: Option<&str>, progress: &dyn Observer) -> Result<Report> {
    let cat = archive.catalog()?;
    let couple_id = match couple {
        Some(f) => Some(cat.couple_by_folder(f)?.id),
        None => None,
    };
    let blobs = cat.blobs(couple_id)?;
    progress.start(blobs.len() as u64, blobs.iter().map(|b| b.size).sum());
    let results: Vec<Option<(String, String)>> = blobs
        .par_iter()
        .map(|b| {
            let r = check(archive, b);
            progress.advance(b.size.max(1));
            r
        })
        .collect();
    progress.finish();
    let mut good = Vec::new();
    let mut found = Vec::new();
    for (b, r) in blobs.iter().zip(results) {
        match r {
            None => good.push(b.hash.clone()),
            Some((kind, detail)) => found.push((b.hash.clone(), kind, detail)),
        }
    }
    let hashes: Vec<String> = found.iter().map(|(h, _, _)| h.clone()).collect();
    let mut paths = paths_of(&cat, &hashes, couple_id)?;
    let mut problems: Vec<Problem> = found
        .into_iter()
        .map(|(hash, kind, detail)| {
            let files = paths.remove(&hash).unwrap_or_default();
            Problem { hash, kind, detail, files }
        })
        .collect();
    problems.sort_by(|a, b| a.files.cmp(&b.files));
    let health: Vec<(String, String, String)> = problems
        .iter()
        .map(|p| {
            (p.hash.clone(), if p.kind == "missing" { "missing" } else { "damaged" }.to_string(), p.detail.clone())
        })
        .collect();
    cat.set_blobs_unhealthy(&health)?;
    let unhealthy: HashSet<String> = cat.unhealthy_blobs()?.into_iter().map(|(h, _)| h).collect();
    for h in good.iter().filter(|h| unhealthy.contains(*h)) {
        cat.heal_blob(h, None, "verify found it whole again")?;
    }
    cat.mark_verified(&good)?;
    let couples = by_couple(&problems);
    Ok(Report { blobs_checked: blobs.len(), bytes_checked: blobs.iter().map(|b| b.size).sum(), problems, couples })
}

/// The tree paths of the files using each of `hashes` (of one couple, if given), from a few bulk queries.
fn paths_of(cat: &Catalog, hashes: &[String], couple_id: Option<i64>) -> Result<HashMap<String, Vec<String>>> {
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    if hashes.is_empty() {
        return Ok(out);
    }
    let couples: HashMap<i64, String> = cat.couple_folders()?.into_iter().collect();
    let cams: HashMap<i64, String> = cat.cameras()?.into_iter().map(|c| (c.id, c.slug)).collect();
    for f in cat.files_of_blobs(hashes)? {
        if couple_id.is_some_and(|c| c != f.couple_id) {
            continue;
        }
        let Some(folder) = couples.get(&f.couple_id) else { continue };
        let path = crate::fs::tree_path(folder, f.camera_id.and_then(|c| cams.get(&c)).map(String::as_str), &f);
        out.entry(f.blob_hash.clone()).or_default().push(path);
    }
    for v in out.values_mut() {
        v.sort();
    }
    Ok(out)
}

/// Counts the problems per couple (the first path segment of each affected file).
fn by_couple(problems: &[Problem]) -> Vec<CoupleProblems> {
    let mut map: BTreeMap<String, CoupleProblems> = BTreeMap::new();
    for p in problems {
        let mut seen = HashSet::new();
        for f in &p.files {
            let couple = f.split('/').next().unwrap_or_default().to_string();
            let e = map.entry(couple.clone()).or_insert_with(|| CoupleProblems {
                couple: couple.clone(),
                missing: 0,
                damaged: 0,
                first: Vec::new(),
                files: 0,
            });
            if seen.insert(couple) {
                if p.kind == "missing" {
                    e.missing += 1;
                } else {
                    e.damaged += 1;
                }
            }
            e.files += 1;
            if e.first.len() < FIRST_PATHS {
                e.first.push(f.clone());
            }
        }
    }
    map.into_values().collect()
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
                Ok(sums) => {
                    cat.heal_blob(&hash, None, &format!("replaced by a verified copy of {shown} (repair)"))?;
                    if let Some(s) = &sums {
                        cat.fill_blob_sums(&hash, s)?;
                    }
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
/// Returns the checksums of the copy's read (for a blob stored before they were kept).
fn copy_in(archive: &Archive, path: &std::path::Path, hash: &str, n: usize) -> Result<Option<blobs::Sums>> {
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
        archive.blobs.replace(&tmp, hash).map(|()| c.sums)
    });
    if checked.is_err() {
        let _ = blobs::remove_if_exists(&tmp);
    }
    checked
}
