//! [`ImportLog`] on SQLite, with the couple leases (flock files, see `lease.rs`).

use rusqlite::{params, OptionalExtension, TransactionBehavior};

use super::finalize::SqliteFinalize;
use super::lease::{self, FlockLease};
use super::*;
use crate::catalog::{CoupleLease, Finalize, ImportLog};

impl SqliteConn {
    /// Ends a session for good (`only_open`: only one still open and not marked yet); true when it did.
    fn cancel(&self, id: i64, only_open: bool) -> Result<bool> {
        let n = self
            .conn
            .execute(
                "UPDATE import_sessions SET status = 'cancelled', can_resume = 0, error = 'cancelled for good by the user',
                    updated_at = ?2, finished_at = ?2
                  WHERE id = ?1 AND (?3 = 0 OR (can_resume = 1 AND status NOT IN ('completed','failed')))",
                params![id, now(), only_open],
            )
            .ctx("cancel session")?;
        Ok(n == 1)
    }
}

impl ImportLog for SqliteConn {
    #[allow(clippy::too_many_arguments)]
    fn create_session(
        &self,
        couple_id: i64,
        footage_type: Option<FootageType>,
        camera_id: Option<i64>,
        duplicates: DuplicateAction,
        source: &str,
        source_paths: &[Vec<u8>],
        source_id: Option<i64>,
        salvage: bool,
    ) -> Result<i64> {
        let t = now();
        let ft = footage_type.unwrap_or(FootageType::Modern);
        self.conn
            .execute(
                "INSERT INTO import_sessions (couple_id, status, footage_type, type_explicit, camera_id, duplicates,
                     source, source_paths, created_at, updated_at, source_id, salvage)
                 VALUES (?1, 'pending', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8, ?9, ?10)",
                params![
                    couple_id,
                    ft.as_str(),
                    footage_type.is_some(),
                    camera_id,
                    duplicates.as_str(),
                    source,
                    join_paths(source_paths),
                    t,
                    source_id,
                    salvage
                ],
            )
            .ctx("create import session")?;
        Ok(self.conn.last_insert_rowid())
    }

    fn unfinished_session_of(&self, couple_id: i64) -> Result<Option<i64>> {
        self.conn
            .query_row(
                "SELECT id FROM import_sessions WHERE couple_id = ?1
                   AND status NOT IN ('completed', 'failed') ORDER BY id DESC LIMIT 1",
                [couple_id],
                |r| r.get(0),
            )
            .optional()
            .ctx("find unfinished session")
    }

    fn set_session_status(&self, id: i64, status: SessionStatus, error: Option<&str>) -> Result<()> {
        let finished = if status.is_final() { Some(now()) } else { None };
        self.conn
            .execute(
                "UPDATE import_sessions SET status = ?2, last_step = CASE WHEN ?2 IN
                     ('scanning','hashing','copying','validating','finalizing') THEN ?2 ELSE last_step END,
                     error = ?3, updated_at = ?4, finished_at = ?5,
                     can_resume = CASE WHEN ?2 IN ('completed','failed') THEN 0
                         WHEN can_resume = 0 AND status NOT IN ('completed','failed') THEN 0 ELSE 1 END
                 WHERE id = ?1",
                params![id, status.as_str(), error, now(), finished],
            )
            .ctx("update session status")?;
        Ok(())
    }

    fn set_session_error(&self, id: i64, error: Option<&str>) -> Result<()> {
        self.conn
            .execute("UPDATE import_sessions SET error = ?2, updated_at = ?3 WHERE id = ?1", params![id, error, now()])
            .ctx("record session error")?;
        Ok(())
    }

    fn set_onset_manifest(&self, id: i64, summary: &str, problems_json: &str) -> Result<()> {
        self.conn
            .execute(
                "UPDATE import_sessions SET onset_manifest = ?2, onset_problems = ?3, updated_at = ?4 WHERE id = ?1",
                params![id, summary, problems_json, now()],
            )
            .ctx("record the on-set manifest check")?;
        Ok(())
    }

    fn start_run(&self, id: i64) -> Result<()> {
        self.conn
            .execute(
                "UPDATE import_sessions SET run_started_at = ?2, run_bytes_start = bytes_processed - bytes_duplicate
                     + (SELECT IFNULL(SUM(CASE WHEN state = 'copied' THEN size ELSE resume_offset END), 0)
                          FROM import_items WHERE session_id = ?1
                           AND (state = 'copied' OR (state = 'pending' AND resume_offset IS NOT NULL)))
                 WHERE id = ?1",
                params![id, now()],
            )
            .ctx("start session run")?;
        Ok(())
    }

    fn cancel_session(&self, id: i64) -> Result<()> {
        self.cancel(id, false).map(drop)
    }

    fn request_cancel(&self, id: i64) -> Result<bool> {
        self.cancel(id, true)
    }

    fn reset_failed_items(&self, id: i64) -> Result<usize> {
        let n = self
            .conn
            .execute(
                "UPDATE import_items SET state = 'pending', error = NULL, hash = NULL, updated_at = ?2
                 WHERE session_id = ?1 AND state = 'failed'",
                params![id, now()],
            )
            .ctx("retry failed items")?;
        if n > 0 {
            self.conn
                .execute(
                    "UPDATE import_sessions SET status = 'paused', can_resume = 1, finished_at = NULL WHERE id = ?1",
                    [id],
                )
                .ctx("reopen session")?;
            self.recount_session(id)?;
        }
        Ok(n)
    }

    fn set_durable_commits(&self, durable: bool) -> Result<()> {
        self.conn.pragma_update(None, "synchronous", if durable { "FULL" } else { "NORMAL" }).ctx("set synchronous")
    }

    fn recount_session(&self, id: i64) -> Result<()> {
        self.conn
            .execute(
                "UPDATE import_sessions SET
                    files_total = (SELECT COUNT(*) FROM import_items WHERE session_id = ?1),
                    bytes_total = (SELECT IFNULL(SUM(size), 0) FROM import_items WHERE session_id = ?1),
                    files_processed = (SELECT COUNT(*) FROM import_items WHERE session_id = ?1
                        AND state IN ('done','duplicate','failed','skipped')),
                    bytes_processed = (SELECT IFNULL(SUM(size), 0) FROM import_items WHERE session_id = ?1
                        AND state IN ('done','duplicate','failed','skipped')),
                    files_duplicate = (SELECT COUNT(*) FROM import_items WHERE session_id = ?1 AND state = 'duplicate'),
                    bytes_duplicate = (SELECT IFNULL(SUM(size), 0) FROM import_items WHERE session_id = ?1
                        AND state = 'duplicate'),
                    files_error = (SELECT COUNT(*) FROM import_items WHERE session_id = ?1 AND state = 'failed'),
                    bytes_error = (SELECT IFNULL(SUM(size), 0) FROM import_items WHERE session_id = ?1
                        AND state = 'failed'),
                    updated_at = ?2
                 WHERE id = ?1",
                params![id, now()],
            )
            .ctx("recount session")?;
        Ok(())
    }

    fn insert_items(&mut self, session_id: i64, items: &[NewItem]) -> Result<()> {
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).ctx("begin scan")?;
        tx.execute("DELETE FROM import_items WHERE session_id = ?1", [session_id]).ctx("clear partial scan")?;
        let mut ids = Vec::with_capacity(items.len());
        {
            let mut st = tx
                .prepare(
                    "INSERT INTO import_items (session_id, path, rel_path, size, mtime_ns, state, error, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )
                .ctx("record scan")?;
            let t = now();
            for it in items {
                st.execute(params![
                    session_id,
                    it.path,
                    it.rel_path,
                    it.size as i64,
                    it.mtime_ns,
                    it.state.as_str(),
                    it.error,
                    t
                ])
                .ctx("record scanned file")?;
                ids.push(tx.last_insert_rowid());
            }
            let mut link =
                tx.prepare("UPDATE import_items SET sidecar_of = ?2 WHERE id = ?1").ctx("link sidecar items")?;
            for (i, it) in items.iter().enumerate() {
                if let Some(clip) = it.sidecar_of {
                    link.execute(params![ids[i], ids[clip]]).ctx("link sidecar item")?;
                }
            }
        }
        tx.commit().ctx("commit scan")?;
        Ok(())
    }

    fn unfinished_item_at(&self, session_id: i64, path: &[u8]) -> Result<Option<Item>> {
        self.conn
            .query_row(
                "SELECT id, session_id, path, rel_path, size, mtime_ns, state, hash, sidecar_of, file_id, error,
                    bad_ranges, resume_offset, healed
                 FROM import_items WHERE session_id = ?1 AND path = ?2 AND state IN ('pending','copied','stored')
                 ORDER BY id DESC LIMIT 1",
                params![session_id, path],
                item_from_row,
            )
            .optional()
            .ctx("find unfinished item")
    }

    fn set_item_state(&self, id: i64, state: ItemState, hash: Option<&str>) -> Result<()> {
        self.conn
            .execute(
                "UPDATE import_items SET state = ?2, hash = IFNULL(?3, hash), updated_at = ?4 WHERE id = ?1",
                params![id, state.as_str(), hash, now()],
            )
            .ctx("update item")?;
        Ok(())
    }

    fn items_copied(&mut self, copies: &[(i64, &str, u64, i64)]) -> Result<()> {
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).ctx("begin record copies")?;
        {
            let mut st = tx
                .prepare_cached(
                    "UPDATE import_items SET state = 'copied', hash = ?2, size = ?3, mtime_ns = ?4, updated_at = ?5
                     WHERE id = ?1",
                )
                .ctx("record copy")?;
            let t = now();
            for (id, hash, size, mtime_ns) in copies {
                st.execute(params![id, hash, *size as i64, mtime_ns, t]).ctx("record copy")?;
            }
        }
        tx.commit().ctx("commit copies")
    }

    fn set_item_damage(&self, id: i64, bad_ranges: Option<&str>) -> Result<()> {
        self.conn
            .execute(
                "UPDATE import_items SET bad_ranges = ?2, updated_at = ?3 WHERE id = ?1",
                params![id, bad_ranges, now()],
            )
            .ctx("record damage")?;
        Ok(())
    }

    fn set_item_checkpoint(&self, id: i64, checkpoint: Option<(u64, u64, i64)>) -> Result<()> {
        let t = now();
        match checkpoint {
            Some((offset, size, mtime_ns)) => self.conn.execute(
                "UPDATE import_items SET resume_offset = ?2, size = ?3, mtime_ns = ?4, updated_at = ?5 WHERE id = ?1",
                params![id, offset as i64, size as i64, mtime_ns, t],
            ),
            None => self.conn.execute(
                "UPDATE import_items SET resume_offset = NULL, updated_at = ?2 WHERE id = ?1 AND resume_offset IS NOT NULL",
                params![id, t],
            ),
        }
        .ctx("record copy checkpoint")?;
        Ok(())
    }

    fn clear_item_hash(&self, id: i64) -> Result<()> {
        self.conn
            .execute("UPDATE import_items SET hash = NULL, updated_at = ?2 WHERE id = ?1", params![id, now()])
            .ctx("clear item hash")?;
        Ok(())
    }

    fn set_item_hash(&self, id: i64, hash: &str) -> Result<()> {
        self.conn
            .execute("UPDATE import_items SET hash = ?2, updated_at = ?3 WHERE id = ?1", params![id, hash, now()])
            .ctx("record item hash")?;
        Ok(())
    }

    fn fill_blob_sums(&self, hash: &str, sums: &Sums) -> Result<bool> {
        fill_sums_on(&self.conn, hash, sums)
    }

    fn end_item(&mut self, item: &Item, state: ItemState, error: Option<&str>) -> Result<()> {
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).ctx("begin item end")?;
        tx.execute(
            "UPDATE import_items SET state = ?2, error = ?3, updated_at = ?4 WHERE id = ?1",
            params![item.id, state.as_str(), error, now()],
        )
        .ctx("end item")?;
        add_progress(&tx, item.session_id, Progress::one(state, item.size))?;
        tx.commit().ctx("commit item end")
    }

    fn couple_sizes(&self, couple_id: i64) -> Result<std::collections::HashSet<u64>> {
        let mut st = self
            .conn
            .prepare(
                "SELECT DISTINCT b.size FROM files f JOIN blobs b ON b.id = f.blob_id
                   WHERE f.couple_id = ?1 AND f.trash_id IS NULL",
            )
            .ctx("couple sizes")?;
        let rows = st.query_map([couple_id], |r| r.get::<_, i64>(0)).ctx("couple sizes")?;
        let mut out = std::collections::HashSet::new();
        for r in rows {
            out.insert(r.ctx("couple sizes")? as u64);
        }
        Ok(out)
    }

    fn couple_has_blob(&self, couple_id: i64, hash: &str) -> Result<bool> {
        has_blob_in_couple(&self.conn, couple_id, hash)
    }

    fn already_imported(&self, couple_id: i64, source: &str, rel: &[u8], size: u64, mtime_ns: i64) -> Result<bool> {
        self.conn
            .prepare_cached(
                "SELECT EXISTS(SELECT 1 FROM files f JOIN blobs b ON b.id = f.blob_id
                   WHERE f.couple_id = ?1 AND f.original_path = ?3 AND f.source = ?2 AND f.source_mtime_ns = ?5
                     AND b.size = ?4 AND f.trash_id IS NULL)",
            )
            .ctx("quick check")?
            .query_row(params![couple_id, source, rel, size as i64, mtime_ns], |r| r.get(0))
            .ctx("quick check")
    }

    fn source_items_seen(&self, source_id: i64) -> Result<std::collections::HashSet<(Vec<u8>, u64, i64)>> {
        let mut st = self
            .conn
            .prepare(
                "SELECT DISTINCT i.rel_path, i.size, i.mtime_ns FROM import_items i
                   JOIN import_sessions s ON s.id = i.session_id
                  WHERE s.source_id = ?1 AND (i.state IN ('done','duplicate','failed')
                     OR (s.status NOT IN ('completed','failed') AND s.can_resume = 1))",
            )
            .ctx("items seen from source")?;
        let rows = st
            .query_map([source_id], |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)? as u64, r.get::<_, i64>(2)?)))
            .ctx("items seen from source")?;
        rows.collect::<rusqlite::Result<_>>().ctx("items seen from source")
    }

    fn begin_finalize(&mut self) -> Result<Box<dyn Finalize + '_>> {
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).ctx("begin finalize")?;
        Ok(Box::new(SqliteFinalize { tx, progress: Progress::default() }))
    }

    fn try_lock_couple(&self, couple_id: i64) -> Result<Option<CoupleLease>> {
        Ok(FlockLease::try_take(&self.couple_lock_path(couple_id))?.map(|l| Box::new(l) as CoupleLease))
    }

    fn couple_lock_holder(&self, couple_id: i64) -> Option<String> {
        lease::read_note(&self.couple_lock_path(couple_id))
    }

    fn couple_lock_held(&self, couple_id: i64) -> Option<bool> {
        lease::is_held(&self.couple_lock_path(couple_id))
    }
}
