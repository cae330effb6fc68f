//! Verification of the stored archive: every catalogued blob re-hashed from the disk (page cache dropped first)
//! and compared with its name; missing, resized or altered blobs are reported with the tree paths that use them
//! and recorded in the catalog (`damaged` or `missing`), so the mount answers EIO for them instead of serving rot
//! and the next verified copy of the same content heals them. A run can be a partial scrub: only the blobs last
//! verified long enough ago (`--older-than`), oldest-verified first up to a byte limit (`--limit`), at a rate
//! (the daemon's schedule); each run is recorded in the catalog's scrub runs for `status`, and one over the whole
//! archive ends with the orphan check ([`crate::orphans`]). `repair` is that copy on demand: it hashes given
//! files and puts each one that matches a damaged or missing blob in its place.

use rayon::prelude::*;
use serde::Serialize;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::archive::Archive;
use crate::blobs;
use crate::catalog::{BlobRow, Catalog, ScrubRun, VerifyCursor};
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
    /// False when the byte limit (or a stop) left blobs due unchecked: the next run continues with them.
    pub complete: bool,
    /// True when the run was asked to stop before its end.
    pub stopped: bool,
    /// What the orphan check found (a run over the whole archive that was not stopped).
    pub orphans: Option<crate::orphans::Orphans>,
    /// The id of the run in the catalog's scrub runs.
    pub scrub_run: i64,
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

/// What one verify run checks, and how fast.
#[derive(Clone, Copy, Debug)]
pub struct Options<'a> {
    /// Only this couple's blobs (by folder name); the orphan check runs only without it.
    pub couple: Option<&'a str>,
    /// Only blobs never verified or last verified longer ago than this.
    pub older_than: Option<Duration>,
    /// Stop before the blob that would take the bytes checked past this (oldest-verified first); the first blob
    /// is checked whatever its size. A blob already recorded missing costs nothing (there is nothing to read).
    pub limit: Option<u64>,
    /// Read at most this many bytes per second (the daemon's scheduled scrub).
    pub rate: Option<u64>,
    /// What the scrub run is recorded as: `verify` or `schedule`.
    pub trigger: &'a str,
    /// Set to stop at the next blob (the blobs checked so far are recorded).
    pub stop: Option<&'a AtomicBool>,
}

impl Default for Options<'_> {
    fn default() -> Self {
        Options { couple: None, older_than: None, limit: None, rate: None, trigger: "verify", stop: None }
    }
}

/// The clock of verification and scrub scheduling, in seconds since the epoch: `$NIGHTFOX_NOW` when set (for
/// tests only: it lets a test age what it verified without waiting), else the system clock.
pub fn clock() -> i64 {
    std::env::var("NIGHTFOX_NOW").ok().and_then(|v| v.trim().parse().ok()).unwrap_or_else(crate::catalog::now)
}

/// How many blobs one catalog page of a run holds: checked in parallel, then recorded in one transaction each.
const PAGE: u32 = 4096;

/// Re-hashes every blob (of one couple, if given) and records the good ones as verified: [`scrub`] with the
/// defaults. `progress` is told the total first, then the bytes of each blob checked.
pub fn verify(archive: &Archive, couple: Option<&str>, progress: &dyn Observer) -> Result<Report> {
    scrub(archive, &Options { couple, ..Default::default() }, progress)
}

/// Reads the blobs due back from disk, oldest-verified first, a page at a time, within the options' age, byte
/// limit and rate. Each page is recorded as it ends: the good blobs' `verified_at` (healing those recorded
/// damaged or missing), the problems; so a run that stops keeps what it did, and the next one continues with the
/// rest. The run itself is recorded in the catalog's scrub runs (with its error, if it fails). Without a couple,
/// the orphan check follows.
pub fn scrub(archive: &Archive, opts: &Options, progress: &dyn Observer) -> Result<Report> {
    let cat = archive.catalog()?;
    let couple_id = match opts.couple {
        Some(f) => Some(cat.couple_by_folder(f)?.id),
        None => None,
    };
    let started = clock();
    let run = cat.start_scrub(opts.trigger, started)?;
    let result = scrub_blobs(archive, &cat, couple_id, started, opts, progress).and_then(|mut r| {
        if couple_id.is_none() && !r.stopped {
            let o = crate::orphans::check(archive, opts.stop)?;
            r.stopped = !o.walked && opts.stop.is_some_and(|s| s.load(Ordering::SeqCst));
            r.orphans = Some(o);
        }
        Ok(r)
    });
    let mut rec = ScrubRun {
        id: run,
        started_at: started,
        finished_at: Some(clock().max(started)),
        trigger: opts.trigger.to_string(),
        ..Default::default()
    };
    match &result {
        Ok(r) => {
            rec.blobs_checked = r.blobs_checked as i64;
            rec.bytes_checked = r.bytes_checked as i64;
            rec.missing = r.problems.iter().filter(|p| p.kind == "missing").count() as i64;
            rec.damaged = r.problems.len() as i64 - rec.missing;
            rec.orphans = r.orphans.as_ref().map_or(0, |o| o.objects.len() as i64);
            rec.complete = !r.stopped;
            rec.error = r.stopped.then(|| "stopped before the end".to_string());
        }
        Err(e) => rec.error = Some(e.to_string()),
    }
    cat.finish_scrub(&rec)?;
    let mut r = result?;
    r.scrub_run = run;
    Ok(r)
}

/// Paces reads to a rate: before each blob, waits until the bytes read before it are due (in steps of at most
/// 100 ms, watching `stop`).
struct Throttle<'a> {
    rate: Option<u64>,
    start: Instant,
    done: AtomicU64,
    stop: Option<&'a AtomicBool>,
}

impl Throttle<'_> {
    fn stopped(&self) -> bool {
        self.stop.is_some_and(|s| s.load(Ordering::SeqCst))
    }

    /// Waits for a blob of `bytes` to be read; false when the run was stopped meanwhile.
    fn turn(&self, bytes: u64) -> bool {
        if let Some(rate) = self.rate.filter(|r| *r > 0) {
            let before = self.done.fetch_add(bytes, Ordering::SeqCst);
            let due = Duration::from_secs_f64(before as f64 / rate as f64);
            while !self.stopped() {
                let Some(left) = due.checked_sub(self.start.elapsed()) else { break };
                std::thread::sleep(left.min(Duration::from_millis(100)));
            }
        }
        !self.stopped()
    }
}

fn scrub_blobs(
    archive: &Archive,
    cat: &Catalog,
    couple_id: Option<i64>,
    started: i64,
    opts: &Options,
    progress: &dyn Observer,
) -> Result<Report> {
    // Due: verified before `before` (or never). Without an age, everything: the blobs verified before this second
    // first, then those verified since it began (by a run in the same second), listed now, before this run stamps
    // its own with the same second and so could meet them again.
    let before = match opts.older_than {
        Some(d) => started.saturating_sub(d.as_secs() as i64),
        None => started,
    };
    let mut late = Vec::new();
    if opts.older_than.is_none() {
        let mut cursor = VerifyCursor { verified: started - 1, id: i64::MAX };
        loop {
            let (page, next) = cat.blobs_to_verify(couple_id, i64::MAX, cursor, PAGE)?;
            if page.is_empty() {
                break;
            }
            late.extend(page);
            cursor = next;
        }
    }
    let (count, bytes) = cat.blobs_to_verify_total(couple_id, before)?;
    let all_bytes = bytes + late.iter().map(|b| b.size).sum::<u64>();
    progress.start(count + late.len() as u64, opts.limit.map_or(all_bytes, |l| l.min(all_bytes)));
    let unhealthy: HashMap<String, String> = cat.unhealthy_blobs()?.into_iter().collect();
    let throttle = Throttle { rate: opts.rate, start: Instant::now(), done: AtomicU64::new(0), stop: opts.stop };
    let mut report = Report {
        blobs_checked: 0,
        bytes_checked: 0,
        problems: Vec::new(),
        couples: Vec::new(),
        complete: true,
        stopped: false,
        orphans: None,
        scrub_run: 0,
    };
    let mut found = Vec::new();
    let mut budget = opts.limit;
    let mut cursor = VerifyCursor::default();
    let mut late = Some(late);
    loop {
        let mut page = if cursor.verified < before {
            let (page, next) = cat.blobs_to_verify(couple_id, before, cursor, PAGE)?;
            cursor = if page.is_empty() { VerifyCursor { verified: before, id: i64::MIN } } else { next };
            page
        } else {
            Vec::new()
        };
        if page.is_empty() {
            match late.take() {
                Some(l) if !l.is_empty() => page = l,
                Some(_) => continue,
                None => break,
            }
        }
        // Within the byte limit, in order.
        if let Some(left) = budget.as_mut() {
            let mut take = 0;
            for b in &page {
                let cost = if unhealthy.get(&b.hash).is_some_and(|h| h == "missing") { 0 } else { b.size };
                if cost > *left && (report.blobs_checked > 0 || take > 0) {
                    report.complete = false;
                    break;
                }
                *left = left.saturating_sub(cost);
                take += 1;
            }
            page.truncate(take);
        }
        let results: Vec<Option<Option<(String, String)>>> = page
            .par_iter()
            .map(|b| {
                if !throttle.turn(b.size) {
                    return None;
                }
                let r = check(archive, b);
                progress.advance(b.size.max(1));
                Some(r)
            })
            .collect();
        let mut good = Vec::new();
        let mut health = Vec::new();
        for (b, r) in page.iter().zip(results) {
            match r {
                None => {
                    report.stopped = true;
                    continue;
                }
                Some(None) => good.push(b.hash.clone()),
                Some(Some((kind, detail))) => {
                    let h = if kind == "missing" { "missing" } else { "damaged" };
                    health.push((b.hash.clone(), h.to_string(), detail.clone()));
                    found.push((b.hash.clone(), kind, detail));
                }
            }
            report.blobs_checked += 1;
            report.bytes_checked += b.size;
        }
        cat.set_blobs_unhealthy(&health)?;
        for h in good.iter().filter(|h| unhealthy.contains_key(*h)) {
            cat.heal_blob(h, None, "verify found it whole again")?;
        }
        cat.mark_verified(&good, started)?;
        if report.stopped {
            report.complete = false;
            break;
        }
        if !report.complete {
            break;
        }
    }
    progress.finish();
    let hashes: Vec<String> = found.iter().map(|(h, _, _)| h.clone()).collect();
    let mut paths = paths_of(cat, &hashes, couple_id)?;
    let mut problems: Vec<Problem> = found
        .into_iter()
        .map(|(hash, kind, detail)| {
            let files = paths.remove(&hash).unwrap_or_default();
            Problem { hash, kind, detail, files }
        })
        .collect();
    problems.sort_by(|a, b| a.files.cmp(&b.files));
    report.couples = by_couple(&problems);
    report.problems = problems;
    Ok(report)
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
