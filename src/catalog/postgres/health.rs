//! [`Health`] on Postgres (a port of `sqlite/health.rs`). Many blobs at once go in one statement each (arrays),
//! inside one transaction.

use std::collections::HashMap;

use super::*;
use crate::catalog::Health;

impl Health for PgConn {
    fn mark_verified(&self, hashes: &[String], at: i64) -> Result<()> {
        if hashes.is_empty() {
            return Ok(());
        }
        // One statement: atomic by itself.
        self.c()?
            .execute("UPDATE blobs SET verified_at = $2 WHERE hash = ANY($1)", &[&hashes, &at])
            .ctx("mark verified")?;
        Ok(())
    }

    fn start_scrub(&self, trigger: &str, at: i64) -> Result<i64> {
        one(
            &mut *self.c()?,
            "INSERT INTO scrub_runs (started_at, trigger) VALUES ($1, $2) RETURNING id",
            &[&at, &trigger],
            "record scrub start",
        )
    }

    fn finish_scrub(&self, r: &ScrubRun) -> Result<()> {
        self.c()?
            .execute(
                "UPDATE scrub_runs SET finished_at = $2, blobs_checked = $3, bytes_checked = $4, damaged = $5,
                    missing = $6, orphans = $7, complete = $8, error = $9 WHERE id = $1",
                &[
                    &r.id,
                    &r.finished_at,
                    &r.blobs_checked,
                    &r.bytes_checked,
                    &r.damaged,
                    &r.missing,
                    &r.orphans,
                    &r.complete,
                    &r.error,
                ],
            )
            .ctx("record scrub end")?;
        Ok(())
    }

    fn set_blob_unhealthy(&self, hash: &str, health: &str, problem: &str) -> Result<bool> {
        let mut c = self.c()?;
        // The change and its event land together.
        let mut tx = c.transaction().ctx("begin blob health")?;
        let n = tx
            .execute(
                "UPDATE blobs SET health = $2, problem = $3 WHERE hash = $1 AND health <> $2",
                &[&hash, &health, &problem],
            )
            .ctx("record blob health")?;
        if n > 0 {
            add_archive_event(&mut tx, &format!("blob_{health}"), Some(hash), None, None, problem)?;
        }
        tx.commit().ctx("commit blob health")?;
        Ok(n > 0)
    }

    fn set_blobs_unhealthy(&self, found: &[(String, String, String)]) -> Result<usize> {
        if found.is_empty() {
            return Ok(0);
        }
        let mut c = self.c()?;
        let mut tx = c.transaction().ctx("begin blob health")?;
        // The blobs' health now, locked (in hash order, so two writers cannot deadlock) until commit: what is news
        // is decided here, as SQLite's statement-per-blob loop would, in `found`'s order.
        let hashes: Vec<&str> = found.iter().map(|(h, _, _)| h.as_str()).collect();
        let mut health: HashMap<String, String> = rows(
            &mut tx,
            "SELECT hash, health FROM blobs WHERE hash = ANY($1) ORDER BY hash FOR UPDATE",
            &[&hashes],
            |r| Ok((r.try_get(0)?, r.try_get(1)?)),
            "read blob health",
        )?
        .into_iter()
        .collect();
        let mut last: HashMap<&str, (&str, &str)> = HashMap::new();
        let (mut kinds, mut ev_hashes, mut messages) = (Vec::new(), Vec::new(), Vec::new());
        for (hash, h, problem) in found {
            match health.get_mut(hash) {
                Some(cur) if cur != h => {
                    cur.clone_from(h);
                    last.insert(hash, (h, problem));
                    kinds.push(format!("blob_{h}"));
                    ev_hashes.push(hash.as_str());
                    messages.push(problem.as_str());
                }
                _ => {}
            }
        }
        if !last.is_empty() {
            let (mut hs, mut healths, mut problems) = (Vec::new(), Vec::new(), Vec::new());
            for (hash, (h, p)) in &last {
                hs.push(*hash);
                healths.push(*h);
                problems.push(*p);
            }
            tx.execute(
                "UPDATE blobs b SET health = u.health, problem = u.problem
                 FROM UNNEST($1::text[], $2::text[], $3::text[]) AS u(hash, health, problem)
                 WHERE b.hash = u.hash",
                &[&hs, &healths, &problems],
            )
            .ctx("record blob health")?;
            tx.execute(
                "INSERT INTO events (at, kind, blob_hash, message)
                 SELECT $1, e.kind, e.hash, e.message
                 FROM UNNEST($2::text[], $3::text[], $4::text[]) WITH ORDINALITY AS e(kind, hash, message, n)
                 ORDER BY e.n",
                &[&now(), &kinds, &ev_hashes, &messages],
            )
            .ctx("record event")?;
        }
        tx.commit().ctx("commit blob health")?;
        Ok(kinds.len())
    }

    fn heal_blob(&self, hash: &str, session_id: Option<i64>, how: &str) -> Result<()> {
        let mut c = self.c()?;
        let mut tx = c.transaction().ctx("begin heal")?;
        heal_blob_on(&mut tx, hash, session_id, how)?;
        tx.commit().ctx("commit heal")
    }

    fn event(
        &self,
        kind: &str,
        hash: Option<&str>,
        file_id: Option<i64>,
        session_id: Option<i64>,
        message: &str,
    ) -> Result<()> {
        add_archive_event(&mut *self.c()?, kind, hash, file_id, session_id, message)
    }
}
