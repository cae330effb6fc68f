//! The check of a card's own ASC MHL history (written on set by another tool) at import: every file its newest
//! generation lists must have come in with the recorded hashes (all formats it records), and files it does not
//! list are reported. xxh64 and xxh128 come from the import's same-pass sums where the catalog has them; every
//! other format is computed from the verified stored copy, never from the card again.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use rayon::prelude::*;

use super::check::Problem;
use super::hashes::{self, HashFormat};
use super::{History, FOLDER};
use crate::archive::Archive;
use crate::blobs::ReadAtCursor;
use crate::catalog::SessionSum;
use crate::error::Result;

/// Checks session `session` (which read the card folder `root`) against the newest generation of `root`'s
/// history: `None` when there is none; else a one-line summary and the problems.
pub fn check_session(a: &Archive, session: i64, root: &Path) -> Result<Option<(String, Vec<Problem>)>> {
    let history = History::load(root)?;
    let Some((generation, manifest)) = history.newest()? else { return Ok(None) };
    let sums: BTreeMap<String, SessionSum> = a
        .catalog()?
        .session_sums(session)?
        .into_iter()
        .map(|s| (String::from_utf8_lossy(&s.rel_path).into_owned(), s))
        .collect();
    let checked: Vec<Result<Vec<Problem>>> = manifest
        .files
        .par_iter()
        .filter_map(|f| sums.get(&f.path).map(|s| (f, s)))
        .map(|(f, s)| {
            let mut known: HashMap<HashFormat, String> = HashMap::new();
            if let Some(v) = &s.xxh64 {
                known.insert(HashFormat::Xxh64, v.clone());
            }
            if let Some(v) = &s.xxh128 {
                known.insert(HashFormat::Xxh128, v.clone());
            }
            let need: Vec<HashFormat> =
                f.hashes.iter().map(|h| h.format).filter(|fmt| !known.contains_key(fmt)).collect();
            if !need.is_empty() {
                let blob = a.blobs.open(&s.hash)?;
                known.extend(hashes::hash_reader(&mut ReadAtCursor::new(&*blob), Path::new(&s.hash), &need)?);
            }
            Ok(f.hashes
                .iter()
                .filter_map(|h| {
                    let actual = known.get(&h.format).cloned().unwrap_or_default();
                    (!actual.eq_ignore_ascii_case(&h.value)).then(|| Problem::Mismatch {
                        path: f.path.clone(),
                        format: h.format.to_string(),
                        expected: h.value.clone(),
                        actual,
                    })
                })
                .collect())
        })
        .collect();
    let mut problems = Vec::new();
    let (mut ok, mut bad) = (0usize, 0usize);
    for r in checked {
        let p = r?;
        ok += usize::from(p.is_empty());
        bad += usize::from(!p.is_empty());
        problems.extend(p);
    }
    let mismatched = problems.len();
    for f in &manifest.files {
        if !sums.contains_key(&f.path) {
            problems.push(Problem::Missing { path: f.path.clone() });
        }
    }
    let missing = problems.len() - mismatched;
    let prefix = format!("{FOLDER}/");
    for p in sums.keys() {
        if !p.starts_with(&prefix) && manifest.file(p).is_none() {
            problems.push(Problem::New { path: p.clone() });
        }
    }
    let extra = problems.len() - mismatched - missing;
    let summary = if problems.is_empty() {
        format!("verified against the on-set manifest ({ok} files, generation {:04})", generation.number)
    } else {
        format!(
            "{} problem(s) against the on-set manifest (generation {:04}): {bad} file(s) with a hash mismatch, \
             {missing} missing, {extra} not listed; {ok} files verified",
            bad + missing + extra,
            generation.number
        )
    };
    Ok(Some((summary, problems)))
}
