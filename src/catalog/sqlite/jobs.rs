//! [`Jobs`] on SQLite (the single daemon of an embedded archive): the `jobs` table of schema 11. A claim is one
//! IMMEDIATE transaction (the write lock taken first, so two connections cannot both see a job queued and take
//! it); the reaper only writes when it finds a stale job, so an idle daemon's rounds take no write lock.

use rusqlite::{params, OptionalExtension, Row};

use super::*;
use crate::catalog::jobs::{Finish, Job, JobOutcome, JobState, Jobs, JOB_COLUMNS};

fn job_from_row(r: &Row) -> rusqlite::Result<Job> {
    let state: String = r.get(3)?;
    Ok(Job {
        id: r.get(0)?,
        kind: r.get(1)?,
        key: r.get(2)?,
        state: JobState::parse(&state),
        run_after: r.get(4)?,
        claimed_by: r.get(5)?,
        heartbeat_at: r.get(6)?,
        attempts: r.get(7)?,
        error: r.get(8)?,
        created_at: r.get(9)?,
        finished_at: r.get(10)?,
    })
}

fn live_on(conn: &Connection, kind: &str, key: &str) -> Result<Option<Job>> {
    conn.prepare_cached(&format!(
        "SELECT {JOB_COLUMNS} FROM jobs WHERE kind = ?1 AND key = ?2 AND state IN ('queued','running')"
    ))
    .ctx("read job")?
    .query_row(params![kind, key], job_from_row)
    .optional()
    .ctx("read job")
}

impl Jobs for SqliteConn {
    fn ensure_job(&self, kind: &str, key: &str, run_after: i64) -> Result<i64> {
        // Read first: a job that exists (every round but the first) costs no write lock.
        if let Some(j) = live_on(&self.conn, kind, key)? {
            return Ok(j.id);
        }
        let tx = immediate(&self.conn).ctx("begin ensure job")?;
        if let Some(j) = live_on(&tx, kind, key)? {
            return Ok(j.id);
        }
        tx.execute(
            "INSERT INTO jobs (kind, key, state, run_after, attempts, created_at) VALUES (?1, ?2, 'queued', ?3, 0, ?4)",
            params![kind, key, run_after, now()],
        )
        .ctx("queue job")?;
        let id = tx.last_insert_rowid();
        tx.commit().ctx("commit ensure job")?;
        Ok(id)
    }

    fn claim_job(&self, worker: &str, kind: &str, key: Option<&str>, now: i64) -> Result<Option<Job>> {
        let tx = immediate(&self.conn).ctx("begin claim")?;
        let job = tx
            .prepare_cached(&format!(
                "UPDATE jobs SET state = 'running', claimed_by = ?1, heartbeat_at = ?2, attempts = attempts + 1
                 WHERE id = (SELECT id FROM jobs WHERE state = 'queued' AND kind = ?3 AND (?4 IS NULL OR key = ?4)
                             AND run_after <= ?2 ORDER BY run_after, id LIMIT 1)
                 RETURNING {JOB_COLUMNS}"
            ))
            .ctx("claim job")?
            .query_row(params![worker, now, kind, key], job_from_row)
            .optional()
            .ctx("claim job")?;
        tx.commit().ctx("commit claim")?;
        Ok(job)
    }

    fn heartbeat_job(&self, id: i64, worker: &str, now: i64) -> Result<bool> {
        let n = self
            .conn
            .prepare_cached("UPDATE jobs SET heartbeat_at = ?3 WHERE id = ?1 AND claimed_by = ?2 AND state = 'running'")
            .ctx("job heartbeat")?
            .execute(params![id, worker, now])
            .ctx("job heartbeat")?;
        Ok(n == 1)
    }

    fn finish_job(&self, id: i64, worker: &str, now: i64, outcome: JobOutcome<'_>, next: Option<i64>) -> Result<bool> {
        let f = Finish::of(outcome, next, now);
        let n = self
            .conn
            .prepare_cached(
                "UPDATE jobs SET state = ?3, run_after = IFNULL(?4, run_after), claimed_by = NULL,
                     heartbeat_at = NULL, finished_at = ?5,
                     attempts = CASE ?6 WHEN 0 THEN 0 WHEN 1 THEN attempts ELSE MAX(attempts - 1, 0) END,
                     error = CASE WHEN ?7 THEN ?8 ELSE error END
                 WHERE id = ?1 AND claimed_by = ?2 AND state = 'running'",
            )
            .ctx("finish job")?
            .execute(params![
                id,
                worker,
                f.state.as_str(),
                f.run_after,
                now,
                f.attempts,
                f.error.is_some(),
                f.error.flatten()
            ])
            .ctx("finish job")?;
        Ok(n == 1)
    }

    fn reap_jobs(&self, stale_before: i64) -> Result<u64> {
        let stale: i64 = self
            .conn
            .prepare_cached("SELECT COUNT(*) FROM jobs WHERE state = 'running' AND IFNULL(heartbeat_at, 0) < ?1")
            .ctx("look for stale jobs")?
            .query_row([stale_before], |r| r.get(0))
            .ctx("look for stale jobs")?;
        if stale == 0 {
            return Ok(0);
        }
        let n = self
            .conn
            .execute(
                "UPDATE jobs SET state = 'queued', claimed_by = NULL, heartbeat_at = NULL,
                     error = 'taken back from ' || IFNULL(claimed_by, '?') || ' (no heartbeat since '
                             || IFNULL(heartbeat_at, 0) || ')'
                 WHERE state = 'running' AND IFNULL(heartbeat_at, 0) < ?1",
                [stale_before],
            )
            .ctx("reap stale jobs")?;
        Ok(n as u64)
    }

    fn live_job(&self, kind: &str, key: &str) -> Result<Option<Job>> {
        live_on(&self.conn, kind, key)
    }

    fn live_jobs(&self) -> Result<Vec<Job>> {
        rows(
            &self.conn,
            &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE state IN ('queued','running') ORDER BY kind, key, id"),
            [],
            job_from_row,
            "list jobs",
        )
    }
}
