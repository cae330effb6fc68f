//! The worker side of the jobs queue ([`crate::catalog::jobs`]): who a worker is (`host:pid:n`, one per thread
//! that claims), claiming a job ([`Worker::claim`]: ensured first, so a recurring job is one row), the heartbeat
//! thread that runs while a claim is held ([`Claim`]: it also turns the daemon's stop, or a claim lost to the
//! reaper, into the run's stop flag), finishing it (a recurring job queued again for its next run) and the reaper
//! ([`Reaper`]) that any daemon runs each round: a running job whose heartbeat is older than the stale limit
//! belongs to a worker that died (kill -9, a lost machine) or hung, and is queued again for whoever claims next.
//!
//! Times are the catalog's (seconds since the epoch, [`crate::catalog::now`]); the seats of a shared catalog must
//! keep their clocks in step (NTP) well within the stale limit.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tracing::{debug, info, warn};

use crate::catalog::jobs::{Job, JobOutcome, Jobs};
use crate::catalog::{Catalog, CatalogBackend};
use crate::error::{Error, Result};

/// The kind of a source's passes (key: the source's id).
pub const SOURCE: &str = "source";
/// The kind of the scheduled scrub (key: [`SCHEDULE`]).
pub const SCRUB: &str = "scrub";
/// The kind of the daily gc (key: [`DAILY`]).
pub const GC: &str = "gc";
/// The key of the scheduled scrub.
pub const SCHEDULE: &str = "schedule";
/// The key of the daily gc.
pub const DAILY: &str = "daily";

/// The environment variable that sets the stale limit (a duration: `60s`, `5m`); tests shorten it.
pub const STALE_VAR: &str = "NIGHTFOX_JOB_STALE";

/// How long a running job may go without a heartbeat before the reaper takes it back, unless `$NIGHTFOX_JOB_STALE`
/// says otherwise.
pub const DEFAULT_STALE: Duration = Duration::from_secs(60);

/// The shortest stale limit accepted (heartbeats are recorded to the second).
const MIN_STALE: Duration = Duration::from_secs(2);

/// The stale limit: `$NIGHTFOX_JOB_STALE`, else [`DEFAULT_STALE`]; never under 2 s.
pub fn stale_limit() -> Duration {
    std::env::var(STALE_VAR)
        .ok()
        .and_then(|v| crate::serve::parse_duration(&v).ok())
        .unwrap_or(DEFAULT_STALE)
        .max(MIN_STALE)
}

/// The time between two heartbeats of a claim: a quarter of the stale limit.
fn heartbeat_every(stale: Duration) -> Duration {
    (stale / 4).max(Duration::from_millis(250))
}

/// This machine's name (`uname`'s node name; `localhost` when it is empty).
pub fn hostname() -> String {
    let uname = rustix::system::uname();
    let h = uname.nodename().to_string_lossy();
    match h.trim() {
        "" => "localhost".to_string(),
        h => h.to_string(),
    }
}

/// A new worker id of this process: `host:pid:n`, `n` counting the workers made.
pub fn new_worker_id() -> String {
    static WORKERS: AtomicU64 = AtomicU64::new(1);
    format!("{}:{}:{}", hostname(), std::process::id(), WORKERS.fetch_add(1, Ordering::Relaxed))
}

/// The catalog time `d` after `t` (whole seconds: never later than a wait of `d` from `t`).
pub fn after(t: i64, d: Duration) -> i64 {
    t.saturating_add(i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// One claimer (a poller, the scrub thread, the gc thread): its id and where its heartbeats go.
pub struct Worker {
    id: String,
    backend: Arc<dyn CatalogBackend>,
    stale: Duration,
}

impl Worker {
    /// A worker with a new id, heartbeating through connections of `backend`, with the given stale limit.
    pub fn new(backend: Arc<dyn CatalogBackend>, stale: Duration) -> Worker {
        Worker { id: new_worker_id(), backend, stale: stale.max(MIN_STALE) }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Claims the job (kind, key) if it is due, creating it first (queued, due at `first_run`) when it has no
    /// live row. `None`: not due yet, or another worker holds a live claim; the caller skips this round. While
    /// the [`Claim`] lives, a thread heartbeats it; its [`Claim::stop_flag`] rises when `stop` does or the claim
    /// is lost.
    pub fn claim<C: Jobs + ?Sized>(
        &self,
        cat: &C,
        kind: &str,
        key: &str,
        first_run: i64,
        stop: &Arc<AtomicBool>,
    ) -> Result<Option<Claim>> {
        cat.ensure_job(kind, key, first_run)?;
        let Some(job) = cat.claim_job(&self.id, kind, Some(key), crate::catalog::now())? else {
            return Ok(None);
        };
        debug!(job = job.id, worker = %self.id, "claimed {kind} {key} (attempt {})", job.attempts);
        Claim::start(job, self.id.clone(), Arc::clone(&self.backend), self.stale, Arc::clone(stop)).map(Some)
    }
}

/// A held claim. Its heartbeat thread runs until it is finished or dropped; dropped unfinished, the job is given
/// back (queued at once, the attempt not counted).
pub struct Claim {
    job: Job,
    worker: String,
    backend: Arc<dyn CatalogBackend>,
    /// Raised when the work should stop: the daemon stops, or the claim was lost.
    flag: Arc<AtomicBool>,
    lost: Arc<AtomicBool>,
    end: Arc<AtomicBool>,
    beat: Option<JoinHandle<()>>,
    open: bool,
}

impl Claim {
    fn start(
        job: Job,
        worker: String,
        backend: Arc<dyn CatalogBackend>,
        stale: Duration,
        outer: Arc<AtomicBool>,
    ) -> Result<Claim> {
        let flag = Arc::new(AtomicBool::new(outer.load(Ordering::SeqCst)));
        let lost = Arc::new(AtomicBool::new(false));
        let end = Arc::new(AtomicBool::new(false));
        let beat = {
            let (backend, worker, id) = (Arc::clone(&backend), worker.clone(), job.id);
            let (flag, lost, end) = (Arc::clone(&flag), Arc::clone(&lost), Arc::clone(&end));
            std::thread::Builder::new()
                .name(format!("job-{id}"))
                .spawn(move || heartbeat(&*backend, id, &worker, heartbeat_every(stale), &outer, &flag, &lost, &end))
                .map_err(|e| Error::Invalid(format!("cannot start the heartbeat of job {id}: {e}")))
        };
        let mut claim = Claim { job, worker, backend, flag, lost, end, beat: None, open: true };
        // Without its heartbeat the claim is dropped here, which gives the job back.
        claim.beat = Some(beat?);
        Ok(claim)
    }

    /// The job as claimed (`attempts` counts this claim).
    pub fn job(&self) -> &Job {
        &self.job
    }

    /// The failures in a row before this claim (the claims since the last `Done`, this one excluded).
    pub fn failures_before(&self) -> u32 {
        u32::try_from(self.job.attempts.saturating_sub(1).max(0)).unwrap_or(u32::MAX)
    }

    /// The run's stop flag: raised when the daemon stops or the claim is lost (hand it to the work).
    pub fn stop_flag(&self) -> &Arc<AtomicBool> {
        &self.flag
    }

    /// Whether the claim was lost (a heartbeat found the job no longer this worker's: reaped as stale).
    pub fn lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }

    fn end_heartbeat(&mut self) {
        self.end.store(true, Ordering::SeqCst);
        if let Some(h) = self.beat.take() {
            if h.join().is_err() {
                warn!(job = self.job.id, "the heartbeat of job {} panicked", self.job.id);
            }
        }
    }

    /// Ends the claim: the heartbeat stops, the job is finished as `outcome` and, with `next`, queued again for
    /// then. False when the claim was not this worker's any more (reaped): someone else may be running it.
    pub fn finish<C: Jobs + ?Sized>(mut self, cat: &C, outcome: JobOutcome<'_>, next: Option<i64>) -> Result<bool> {
        self.end_heartbeat();
        self.open = false;
        let mine = cat.finish_job(self.job.id, &self.worker, crate::catalog::now(), outcome, next)?;
        if !mine {
            warn!(
                job = self.job.id,
                "job {} {} {} was taken back before it finished", self.job.id, self.job.kind, self.job.key
            );
        }
        Ok(mine)
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.end_heartbeat();
        if self.open {
            let r = self.backend.connect().and_then(|c| {
                c.finish_job(self.job.id, &self.worker, crate::catalog::now(), JobOutcome::Released, None)
            });
            if let Err(e) = r {
                warn!(job = self.job.id, "cannot give back job {}: {e} (the reaper will)", self.job.id);
            }
        }
    }
}

/// The heartbeat thread of a claim: forwards the daemon's stop to the run's flag at once, heartbeats every
/// `every` (on a connection of its own, opened at the first beat, so a short run never opens one) and, when a
/// beat finds the claim gone, marks it lost and stops the run. A failed beat (the catalog unreachable) is retried
/// at the next one; the reaper takes the job back only after the stale limit.
#[allow(clippy::too_many_arguments)]
fn heartbeat(
    backend: &dyn CatalogBackend,
    id: i64,
    worker: &str,
    every: Duration,
    outer: &AtomicBool,
    flag: &AtomicBool,
    lost: &AtomicBool,
    end: &AtomicBool,
) {
    let mut conn: Option<Catalog> = None;
    let mut next = Instant::now() + every;
    while !end.load(Ordering::SeqCst) {
        if outer.load(Ordering::SeqCst) {
            flag.store(true, Ordering::SeqCst);
        }
        if Instant::now() >= next {
            next = Instant::now() + every;
            let beat = match conn.as_ref() {
                Some(c) => c.heartbeat_job(id, worker, crate::catalog::now()),
                None => backend.connect().and_then(|c| {
                    let r = c.heartbeat_job(id, worker, crate::catalog::now());
                    conn = Some(c);
                    r
                }),
            };
            match beat {
                Ok(true) => {}
                Ok(false) => {
                    warn!(job = id, "job {id} is no longer {worker}'s (taken back as stale): stopping its run");
                    lost.store(true, Ordering::SeqCst);
                    flag.store(true, Ordering::SeqCst);
                    return;
                }
                Err(e) => warn!(job = id, "heartbeat of job {id} failed: {e}"),
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Requeues the running jobs whose heartbeat is older than `stale`; how many.
pub fn reap<C: Jobs + ?Sized>(cat: &C, stale: Duration) -> Result<u64> {
    let stale_before = crate::catalog::now().saturating_sub(i64::try_from(stale.as_secs()).unwrap_or(i64::MAX));
    cat.reap_jobs(stale_before)
}

/// Requeues every running job, whatever its heartbeat: for the one daemon of a catalog nobody else claims from
/// (SQLite, under the daemon lock), whose every running job is a dead daemon's.
pub fn reap_all<C: Jobs + ?Sized>(cat: &C) -> Result<u64> {
    cat.reap_jobs(i64::MAX)
}

/// A catalog connection a thread keeps for its job calls (claims, finishes, reaps): opened at first use, and
/// again after a call through it failed.
pub struct JobsConn {
    backend: Arc<dyn CatalogBackend>,
    conn: Option<Catalog>,
}

impl JobsConn {
    pub fn new(backend: Arc<dyn CatalogBackend>) -> JobsConn {
        JobsConn { backend, conn: None }
    }

    /// Runs `f` on the connection (opened first if need be); an error drops it, so the next call reconnects.
    pub fn with<T>(&mut self, f: impl FnOnce(&Catalog) -> Result<T>) -> Result<T> {
        if self.conn.is_none() {
            self.conn = Some(self.backend.connect()?);
        }
        let r = match self.conn.as_ref() {
            Some(c) => f(c),
            None => Err(Error::Invalid("no catalog connection".into())),
        };
        if r.is_err() {
            self.conn = None;
        }
        r
    }
}

/// The reaper of a daemon: [`Reaper::tick`] each round of its loop reaps at most once per `every`, on a
/// connection of its own (opened again after an error).
pub struct Reaper {
    conn: JobsConn,
    stale: Duration,
    every: Duration,
    next: Instant,
}

impl Reaper {
    pub fn new(backend: Arc<dyn CatalogBackend>, stale: Duration) -> Reaper {
        let stale = stale.max(MIN_STALE);
        let every = (stale / 4).clamp(Duration::from_millis(500), Duration::from_secs(5));
        Reaper { conn: JobsConn::new(backend), stale, every, next: Instant::now() }
    }

    /// Reaps if a round is due; how many jobs were requeued.
    pub fn tick(&mut self) -> u64 {
        if Instant::now() < self.next {
            return 0;
        }
        self.next = Instant::now() + self.every;
        let stale = self.stale;
        match self.conn.with(|c| reap(&**c, stale)) {
            Ok(0) => 0,
            Ok(n) => {
                info!(
                    "requeued {n} job(s) whose worker stopped heartbeating for {}",
                    crate::serve::format_duration(self.stale)
                );
                n
            }
            Err(e) => {
                warn!("cannot reap stale jobs: {e}");
                0
            }
        }
    }
}
