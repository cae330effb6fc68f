//! Checking a folder against its ASC MHL history, as `ascmhl verify` does: every file listed must be there with
//! the hash first recorded for it (`original`), no file may be unlisted, and the chain must hold (no manifest edited
//! or missing). Also the comparison of a folder's files with one manifest in every format it records, for a card's
//! on-set history.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::Serialize;

use super::hashes::{self, HashFormat};
use super::{Action, FileEntry, History, Manifest, DEFAULT_IGNORE};
use crate::error::{Error, IoContext, Result};

/// One thing wrong with a folder against its history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "problem", rename_all = "snake_case")]
pub enum Problem {
    /// The file's bytes hash differently from what the history recorded.
    Mismatch { path: String, format: String, expected: String, actual: String },
    /// Listed in the history, not in the folder.
    Missing { path: String },
    /// In the folder, not listed in the history.
    New { path: String },
    /// The history itself: an edited, missing or unlisted manifest, or no chain.
    Chain { detail: String },
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::Mismatch { path, format, expected, actual } => {
                write!(f, "hash mismatch: {path}: {format} {actual}, the history has {expected}")
            }
            Problem::Missing { path } => write!(f, "missing: {path} is in the history, not in the folder"),
            Problem::New { path } => write!(f, "new file: {path} is not in the history"),
            Problem::Chain { detail } => write!(f, "history: {detail}"),
        }
    }
}

/// What a check found.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    /// Files whose hashes matched.
    pub files_ok: u64,
    pub problems: Vec<Problem>,
}

/// Checks `root` against its whole history (see the module doc). A folder without a history is an error.
pub fn check(root: &Path) -> Result<Report> {
    let history = History::load(root)?;
    if history.generations.is_empty() {
        return Err(Error::NotFound(format!(
            "{}: no ASC MHL history (no {}/ folder with manifests)",
            root.display(),
            super::FOLDER
        )));
    }
    let mut report = Report::default();
    report.problems.extend(history.chain_problems()?.into_iter().map(|detail| Problem::Chain { detail }));
    // The first `original` hash of each path, oldest generation first (as the reference tool).
    let mut expected: BTreeMap<String, FileEntry> = BTreeMap::new();
    let mut ignore: Vec<String> = DEFAULT_IGNORE.iter().map(|s| s.to_string()).collect();
    for (_, m) in history.all()? {
        for p in &m.ignore {
            if !ignore.contains(p) {
                ignore.push(p.clone());
            }
        }
        for f in m.files {
            if expected.contains_key(&f.path) {
                continue;
            }
            if let Some(h) = f.hashes.iter().find(|h| h.action == Some(Action::Original)) {
                let mut one = f.clone();
                one.hashes = vec![h.clone()];
                expected.insert(f.path.clone(), one);
            }
        }
    }
    let found = walk(root, &ignore)?;
    compare(root, &expected.into_values().collect::<Vec<_>>(), &found, &mut report, |p, formats| {
        hashes::hash_file(p, formats)
    })?;
    Ok(report)
}

/// Checks `root` against one manifest, in every format each entry records (an on-set history's newest
/// generation). `hash` computes the values of a file (by its path) in the formats asked.
pub fn check_manifest(
    root: &Path,
    m: &Manifest,
    hash: impl Fn(&Path, &[HashFormat]) -> Result<Vec<(HashFormat, String)>> + Sync,
) -> Result<Report> {
    let mut ignore: Vec<String> = DEFAULT_IGNORE.iter().map(|s| s.to_string()).collect();
    ignore.extend(m.ignore.iter().cloned());
    let found = walk(root, &ignore)?;
    let mut report = Report::default();
    compare(root, &m.files, &found, &mut report, hash)?;
    Ok(report)
}

fn compare(
    root: &Path,
    expected: &[FileEntry],
    found: &BTreeSet<String>,
    report: &mut Report,
    hash: impl Fn(&Path, &[HashFormat]) -> Result<Vec<(HashFormat, String)>> + Sync,
) -> Result<()> {
    let listed: BTreeSet<&str> = expected.iter().map(|f| f.path.as_str()).collect();
    let results: Vec<Result<Vec<Problem>>> = expected
        .par_iter()
        .filter(|f| found.contains(&f.path))
        .map(|f| {
            let formats: Vec<HashFormat> = f.hashes.iter().map(|h| h.format).collect();
            let actual = hash(&root.join(&f.path), &formats)?;
            Ok(f.hashes
                .iter()
                .filter_map(|h| {
                    let a = actual.iter().find(|(fmt, _)| *fmt == h.format).map(|(_, v)| v.as_str()).unwrap_or("");
                    (!a.eq_ignore_ascii_case(&h.value)).then(|| Problem::Mismatch {
                        path: f.path.clone(),
                        format: h.format.to_string(),
                        expected: h.value.clone(),
                        actual: a.to_string(),
                    })
                })
                .collect())
        })
        .collect();
    for r in results {
        let p = r?;
        if p.is_empty() {
            report.files_ok += 1;
        }
        report.problems.extend(p);
    }
    for f in expected {
        if !found.contains(&f.path) {
            report.problems.push(Problem::Missing { path: f.path.clone() });
        }
    }
    for p in found {
        if !listed.contains(p.as_str()) {
            report.problems.push(Problem::New { path: p.clone() });
        }
    }
    Ok(())
}

/// The regular files under `root`, as `/`-separated relative paths, leaving out what the patterns ignore.
pub fn walk(root: &Path, ignore: &[String]) -> Result<BTreeSet<String>> {
    let mut out = BTreeSet::new();
    let mut stack: Vec<(PathBuf, String)> = vec![(root.to_path_buf(), String::new())];
    while let Some((dir, rel)) = stack.pop() {
        for e in fs::read_dir(&dir).at(&dir)? {
            let e = e.at(&dir)?;
            let name = e.file_name().to_string_lossy().into_owned();
            let path = e.path();
            let md = fs::metadata(&path).at(&path)?;
            let r = if rel.is_empty() { name.clone() } else { format!("{rel}/{name}") };
            if ignored(&r, &name, md.is_dir(), ignore) {
                continue;
            }
            if md.is_dir() {
                stack.push((path, r));
            } else if md.is_file() {
                out.insert(r);
            }
        }
    }
    Ok(out)
}

/// Whether a path is ignored by gitignore-like patterns: a pattern without `/` matches a name at any depth, one
/// with `/` inside matches the path from the root, a trailing `/` matches folders only; `*` and `?` are wildcards.
fn ignored(rel: &str, name: &str, is_dir: bool, patterns: &[String]) -> bool {
    patterns.iter().any(|p| {
        let (p, dir_only) = match p.strip_suffix('/') {
            Some(p) => (p, true),
            None => (p.as_str(), false),
        };
        if dir_only && !is_dir {
            return false;
        }
        match p.trim_start_matches('/') {
            q if p.contains('/') => glob(q.as_bytes(), rel.as_bytes()),
            q => glob(q.as_bytes(), name.as_bytes()),
        }
    })
}

fn glob(p: &[u8], s: &[u8]) -> bool {
    match (p.first(), s.first()) {
        (None, None) => true,
        (Some(b'*'), _) => glob(&p[1..], s) || (!s.is_empty() && s[0] != b'/' && glob(p, &s[1..])),
        (Some(b'?'), Some(&c)) if c != b'/' => glob(&p[1..], &s[1..]),
        (Some(a), Some(b)) if a == b => glob(&p[1..], &s[1..]),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mhl::{Manifest, Process};

    #[test]
    fn patterns() {
        let pats: Vec<String> = [".DS_Store", "ascmhl/", "*.tmp", "A/skip"].iter().map(|s| s.to_string()).collect();
        assert!(ignored("x/.DS_Store", ".DS_Store", false, &pats));
        assert!(ignored("ascmhl", "ascmhl", true, &pats));
        assert!(!ignored("ascmhl", "ascmhl", false, &pats[1..2]));
        assert!(ignored("B/c.tmp", "c.tmp", false, &pats));
        assert!(ignored("A/skip", "skip", false, &pats));
        assert!(!ignored("B/skip", "skip", false, &pats));
    }

    #[test]
    fn flipped_byte_missing_and_new() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        fs::create_dir_all(root.join("A")).unwrap();
        fs::write(root.join("A/x.bin"), b"hello\n").unwrap();
        fs::write(root.join("y.bin"), b"world\n").unwrap();
        let mut files = Vec::new();
        for p in ["A/x.bin", "y.bin"] {
            let v = hashes::hash_file(&root.join(p), &[HashFormat::Xxh64, HashFormat::Xxh128]).unwrap();
            files.push(FileEntry::new(p, 6, None, v, Action::Original));
        }
        let mut h = History::load(root).unwrap();
        h.append(&Manifest::new(Process::InPlace, files)).unwrap();
        let r = check(root).unwrap();
        assert_eq!((r.files_ok, r.problems.len()), (2, 0), "{:?}", r.problems);
        fs::write(root.join("y.bin"), b"worle\n").unwrap();
        fs::write(root.join("z.bin"), b"new\n").unwrap();
        fs::remove_file(root.join("A/x.bin")).unwrap();
        let r = check(root).unwrap();
        assert_eq!(r.files_ok, 0);
        assert!(matches!(&r.problems[0], Problem::Mismatch { path, .. } if path == "y.bin"), "{:?}", r.problems);
        assert!(r.problems.contains(&Problem::Missing { path: "A/x.bin".into() }));
        assert!(r.problems.contains(&Problem::New { path: "z.bin".into() }));
    }
}
