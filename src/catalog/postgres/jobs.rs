//! [`Jobs`] on Postgres, shared by every seat's daemon: a claim is one `UPDATE ... WHERE id = (SELECT id ... FOR
//! UPDATE SKIP LOCKED LIMIT 1) RETURNING ...`, so two daemons claiming at once take different jobs (or one gets
//! none) without waiting for each other; the reaper and the heartbeat are single conditional UPDATEs, so a
//! heartbeat racing a reap sees the claim gone (false) once the reap commits.

use postgres::Row;

use super::*;
use crate::catalog::jobs::{Finish, Job, JobOutcome, JobState, Jobs, JOB_COLUMNS};

fn job_from_row(r: &Row) -> PgResult<Job> {
    let state: String = r.try_get(3)?;
    Ok(Job {
        id: r.try_get(0)?,
        kind: r.try_get(1)?,
        key: r.try_get(2)?,
        state: JobState::parse(&state),
        run_after: r.try_get(4)?,
        claimed_by: r.try_get(5)?,
        heartbeat_at: r.try_get(6)?,
        attempts: r.try_get(7)?,
        error: r.try_get(8)?,
        created_at: r.try_get(9)?,
        finished_at: r.try_get(10)?,
    })
}

impl Jobs for PgConn {
    fn ensure_job(&self, kind: &str, key: &str, run_after: i64) -> Result<i64> {
        let mut c = self.c()?;
        // The insert yields to a live job (the partial unique index); that job may finish for good between the
        // insert and the read, so try again a few times.
        for _ in 0..5 {
            let made: Option<i64> = opt_row(
                &mut *c,
                "INSERT INTO jobs (kind, key, state, run_after, attempts, created_at)
                 VALUES ($1, $2, 'queued', $3, 0, $4)
                 ON CONFLICT (kind, key) WHERE state IN ('queued','running') DO NOTHING
                 RETURNING id",
                &[&kind, &key, &run_after, &now()],
                |r| r.try_get(0),
                "queue job",
            )?;
            if let Some(id) = made {
                return Ok(id);
            }
            let live: Option<i64> = opt_row(
                &mut *c,
                "SELECT id FROM jobs WHERE kind = $1 AND key = $2 AND state IN ('queued','running')",
                &[&kind, &key],
                |r| r.try_get(0),
                "read job",
            )?;
            if let Some(id) = live {
                return Ok(id);
            }
        }
        Err(Error::Invalid(format!("the job {kind} {key} keeps finishing while it is queued again")))
    }

    fn claim_job(&self, worker: &str, kind: &str, key: Option<&str>, now: i64) -> Result<Option<Job>> {
        opt_row(
            &mut *self.c()?,
            &format!(
                "UPDATE jobs SET state = 'running', claimed_by = $1, heartbeat_at = $2, attempts = attempts + 1
                 WHERE state = 'queued' AND id = (
                     SELECT id FROM jobs WHERE state = 'queued' AND kind = $3 AND ($4::text IS NULL OR key = $4)
                         AND run_after <= $2
                     ORDER BY run_after, id FOR UPDATE SKIP LOCKED LIMIT 1)
                 RETURNING {JOB_COLUMNS}"
            ),
            &[&worker, &now, &kind, &key],
            job_from_row,
            "claim job",
        )
    }

    fn heartbeat_job(&self, id: i64, worker: &str, now: i64) -> Result<bool> {
        let n = self
            .c()?
            .execute(
                "UPDATE jobs SET heartbeat_at = $3 WHERE id = $1 AND claimed_by = $2 AND state = 'running'",
                &[&id, &worker, &now],
            )
            .ctx("job heartbeat")?;
        Ok(n == 1)
    }

    fn finish_job(&self, id: i64, worker: &str, now: i64, outcome: JobOutcome<'_>, next: Option<i64>) -> Result<bool> {
        let f = Finish::of(outcome, next, now);
        let n = self
            .c()?
            .execute(
                "UPDATE jobs SET state = $3, run_after = COALESCE($4, run_after), claimed_by = NULL,
                     heartbeat_at = NULL, finished_at = $5,
                     attempts = CASE $6::bigint WHEN 0 THEN 0 WHEN 1 THEN attempts ELSE GREATEST(attempts - 1, 0) END,
                     error = CASE WHEN $7 THEN $8 ELSE error END
                 WHERE id = $1 AND claimed_by = $2 AND state = 'running'",
                &[
                    &id,
                    &worker,
                    &f.state.as_str(),
                    &f.run_after,
                    &now,
                    &f.attempts,
                    &f.error.is_some(),
                    &f.error.flatten(),
                ],
            )
            .ctx("finish job")?;
        Ok(n == 1)
    }

    fn reap_jobs(&self, stale_before: i64) -> Result<u64> {
        self.c()?
            .execute(
                "UPDATE jobs SET state = 'queued', claimed_by = NULL, heartbeat_at = NULL,
                     error = 'taken back from ' || COALESCE(claimed_by, '?') || ' (no heartbeat since '
                             || COALESCE(heartbeat_at, 0) || ')'
                 WHERE state = 'running' AND COALESCE(heartbeat_at, 0) < $1",
                &[&stale_before],
            )
            .ctx("reap stale jobs")
    }

    fn live_job(&self, kind: &str, key: &str) -> Result<Option<Job>> {
        opt_row(
            &mut *self.c()?,
            &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE kind = $1 AND key = $2 AND state IN ('queued','running')"),
            &[&kind, &key],
            job_from_row,
            "read job",
        )
    }

    fn live_jobs(&self) -> Result<Vec<Job>> {
        rows(
            &mut *self.c()?,
            &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE state IN ('queued','running') ORDER BY kind, key, id"),
            &[],
            job_from_row,
            "list jobs",
        )
    }
}
