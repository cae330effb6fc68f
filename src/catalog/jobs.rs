//! The `Jobs` role trait: the daemons' background work (source passes, resumes, scrubs, gc) as rows of a jobs
//! table, claimed so that several `serve` processes on one catalog never run the same job at once. This module
//! owns the contract and the row types; the backends implement it (`sqlite/jobs.rs`: one IMMEDIATE transaction
//! per claim; `postgres/jobs.rs`: `FOR UPDATE SKIP LOCKED`), and `crate::jobs` is the worker side (worker ids,
//! heartbeat threads, the reaper).
//!
//! A job is named by its `kind` (`source`, `scrub`, `gc`) and `key` (a source's id; a fixed word for the
//! archive-wide jobs). At most one row per (kind, key) is *live* (queued or running): a recurring job is that one
//! row, going from queued to running and back to queued with a new `run_after`, never a new row per run. Times
//! are seconds since the epoch, as everywhere in the catalog; the caller passes `now` (the backends never read
//! the clock for a decision, so tests can move it).

use crate::error::Result;

/// Where a job is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Waiting to be claimed once `run_after` has come.
    Queued,
    /// Claimed by `claimed_by`, who keeps `heartbeat_at` fresh while it works.
    Running,
    /// Finished for good (a one-off job, or a recurring one whose subject is gone).
    Done,
    /// Failed for good (a one-off job whose last attempt failed).
    Failed,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Done => "done",
            JobState::Failed => "failed",
        }
    }

    /// The state a row stores; an unknown word reads as `failed` (never as claimable).
    pub fn parse(s: &str) -> JobState {
        match s {
            "queued" => JobState::Queued,
            "running" => JobState::Running,
            "done" => JobState::Done,
            _ => JobState::Failed,
        }
    }
}

/// One row of the jobs table.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Job {
    pub id: i64,
    pub kind: String,
    pub key: String,
    pub state: JobState,
    /// Not claimed before this time.
    pub run_after: i64,
    /// The worker (`host:pid:n`) of the running claim, if any.
    pub claimed_by: Option<String>,
    /// The claimer's last sign of life while running.
    pub heartbeat_at: Option<i64>,
    /// Claims since the job last finished `Done` (the claim being run included): a failure streak for backoff.
    pub attempts: i64,
    /// The last failure (or why a claim was taken back), if any.
    pub error: Option<String>,
    pub created_at: i64,
    /// When the last run ended.
    pub finished_at: Option<i64>,
}

/// How a claimed run ended (see [`Jobs::finish_job`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobOutcome<'a> {
    /// It did its work: `attempts` goes back to 0 and `error` is cleared.
    Done,
    /// It failed with this message: `attempts` stays (the streak grows with the next claim).
    Failed(&'a str),
    /// It did not really run (the daemon is stopping, or something else held what it needed): the claim is given
    /// back as if it had not been taken (`attempts` one less, `error` kept), always queued again.
    Released,
}

/// The jobs queue. Every method is one transaction; claims are exclusive across every connection and process
/// of the catalog.
///
/// Contract:
/// - `ensure_job` is idempotent: when a live (queued or running) job of (kind, key) exists it is left as it is
///   (its `run_after` unchanged) and its id returned; else a queued one is created with `run_after`.
/// - `claim_job` takes the queued job of `kind` (and `key`, when given) that is due (`run_after <= now`; the
///   earliest first), atomically: it becomes `running`, `claimed_by = worker`, `heartbeat_at = now`,
///   `attempts + 1`, and is returned. `None` when there is none: nothing due, or the job is running (another
///   worker's live claim). Two connections claiming at once never both get the same job, and a claim never waits
///   for another one's transaction (Postgres: `SKIP LOCKED`).
/// - `heartbeat_job` sets `heartbeat_at = now` if the job is still running under `worker`'s claim; false when it
///   is not (reaped, finished): the worker has lost it and should stop.
/// - `finish_job` ends `worker`'s claim: with `next = Some(t)` (a recurring job, or any `Released` claim, which
///   is queued at `now` when `t` is not given) the job is queued again with `run_after = t`; otherwise it is
///   `done` or `failed` for good. `finished_at = now`; false (and nothing changed) when the claim is not
///   `worker`'s any more.
/// - `reap_jobs` requeues every running job whose heartbeat is older than `stale_before` (`heartbeat_at <
///   stale_before`): its worker died or hung. Its `attempts` are kept (the dead run counts as a failed one), its
///   `run_after` too (so it is due at once), and `error` says whose claim was taken back. Returns how many.
/// - `live_job` / `live_jobs` read the live job of (kind, key) / every live job (by kind, key).
pub trait Jobs {
    fn ensure_job(&self, kind: &str, key: &str, run_after: i64) -> Result<i64>;
    fn claim_job(&self, worker: &str, kind: &str, key: Option<&str>, now: i64) -> Result<Option<Job>>;
    fn heartbeat_job(&self, id: i64, worker: &str, now: i64) -> Result<bool>;
    fn finish_job(&self, id: i64, worker: &str, now: i64, outcome: JobOutcome<'_>, next: Option<i64>) -> Result<bool>;
    fn reap_jobs(&self, stale_before: i64) -> Result<u64>;
    fn live_job(&self, kind: &str, key: &str) -> Result<Option<Job>>;
    fn live_jobs(&self) -> Result<Vec<Job>>;
}

/// The columns every backend reads a [`Job`] from, in this order.
pub(super) const JOB_COLUMNS: &str =
    "id, kind, key, state, run_after, claimed_by, heartbeat_at, attempts, error, created_at, finished_at";

/// What a finished claim writes, for the backends' one UPDATE: the new state, the `run_after` (None: kept),
/// how `attempts` changes (0: reset, 1: kept, 2: one less) and the error (`Some(None)` clears it, `None` keeps it).
pub(super) struct Finish<'a> {
    pub state: JobState,
    pub run_after: Option<i64>,
    pub attempts: i64,
    pub error: Option<Option<&'a str>>,
}

impl<'a> Finish<'a> {
    pub fn of(outcome: JobOutcome<'a>, next: Option<i64>, now: i64) -> Finish<'a> {
        let (attempts, error) = match outcome {
            JobOutcome::Done => (0, Some(None)),
            JobOutcome::Failed(m) => (1, Some(Some(m))),
            JobOutcome::Released => (2, None),
        };
        let (state, run_after) = match (outcome, next) {
            (_, Some(t)) => (JobState::Queued, Some(t)),
            (JobOutcome::Released, None) => (JobState::Queued, Some(now)),
            (JobOutcome::Done, None) => (JobState::Done, None),
            (JobOutcome::Failed(_), None) => (JobState::Failed, None),
        };
        Finish { state, run_after, attempts, error }
    }
}
