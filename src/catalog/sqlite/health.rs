//! [`Health`] on SQLite.

use rusqlite::params;

use super::*;
use crate::catalog::Health;

impl Health for SqliteConn {
    fn mark_verified(&self, hashes: &[String], t: i64) -> Result<()> {
        let tx = self.conn.unchecked_transaction().ctx("begin verify")?;
        {
            let mut st = tx.prepare("UPDATE blobs SET verified_at = ?2 WHERE hash = ?1").ctx("mark verified")?;
            for h in hashes {
                st.execute(params![h, t]).ctx("mark verified")?;
            }
        }
        tx.commit().ctx("commit verify")
    }

    fn start_scrub(&self, trigger: &str, at: i64) -> Result<i64> {
        self.conn
            .execute("INSERT INTO scrub_runs (started_at, trigger) VALUES (?1, ?2)", params![at, trigger])
            .ctx("record scrub start")?;
        Ok(self.conn.last_insert_rowid())
    }

    fn finish_scrub(&self, r: &ScrubRun) -> Result<()> {
        self.conn
            .execute(
                "UPDATE scrub_runs SET finished_at = ?2, blobs_checked = ?3, bytes_checked = ?4, damaged = ?5,
                    missing = ?6, orphans = ?7, complete = ?8, error = ?9 WHERE id = ?1",
                params![
                    r.id,
                    r.finished_at,
                    r.blobs_checked,
                    r.bytes_checked,
                    r.damaged,
                    r.missing,
                    r.orphans,
                    r.complete,
                    r.error
                ],
            )
            .ctx("record scrub end")?;
        Ok(())
    }

    fn set_blob_unhealthy(&self, hash: &str, health: &str, problem: &str) -> Result<bool> {
        let n = self
            .conn
            .execute(
                "UPDATE blobs SET health = ?2, problem = ?3 WHERE hash = ?1 AND health <> ?2",
                params![hash, health, problem],
            )
            .ctx("record blob health")?;
        if n > 0 {
            self.event(&format!("blob_{health}"), Some(hash), None, None, problem)?;
        }
        Ok(n > 0)
    }

    fn set_blobs_unhealthy(&self, found: &[(String, String, String)]) -> Result<usize> {
        let tx = self.conn.unchecked_transaction().ctx("begin blob health")?;
        let mut news = 0;
        {
            let mut st = tx
                .prepare("UPDATE blobs SET health = ?2, problem = ?3 WHERE hash = ?1 AND health <> ?2")
                .ctx("record blob health")?;
            for (hash, health, problem) in found {
                if st.execute(params![hash, health, problem]).ctx("record blob health")? > 0 {
                    add_archive_event(&tx, &format!("blob_{health}"), Some(hash), None, None, problem)?;
                    news += 1;
                }
            }
        }
        tx.commit().ctx("commit blob health")?;
        Ok(news)
    }

    fn heal_blob(&self, hash: &str, session_id: Option<i64>, how: &str) -> Result<()> {
        heal_blob_on(&self.conn, hash, session_id, how)
    }

    fn event(
        &self,
        kind: &str,
        hash: Option<&str>,
        file_id: Option<i64>,
        session_id: Option<i64>,
        message: &str,
    ) -> Result<()> {
        add_archive_event(&self.conn, kind, hash, file_id, session_id, message)
    }
}
