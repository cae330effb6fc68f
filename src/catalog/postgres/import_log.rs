//! [`ImportLog`] on Postgres (a port of `sqlite/import_log.rs`), with the couple leases (advisory locks, see
//! `lease.rs`). Every statement goes out typed, in one round trip; what SQLite did as a transaction of several
//! statements on the import's hot path is one statement here (a scan's items over arrays, a batch of copies, an
//! item's end with its progress), atomic by itself.

use postgres::types::Type;

use super::finalize::{exec, query, query_one, query_opt, PgFinalize};
use super::lease::{self, PgLease};
use super::*;
use crate::catalog::{CoupleLease, Finalize, ImportLog};

/// Recomputes a session's counters from its items.
fn recount_on(c: &mut impl GenericClient, id: i64) -> Result<()> {
    exec(
        c,
        "UPDATE import_sessions s SET files_total = a.files, bytes_total = a.bytes,
             files_processed = a.files_processed, bytes_processed = a.bytes_processed,
             files_duplicate = a.files_duplicate, bytes_duplicate = a.bytes_duplicate,
             files_error = a.files_error, bytes_error = a.bytes_error, updated_at = $2
         FROM (SELECT COUNT(*) AS files, COALESCE(SUM(size), 0)::BIGINT AS bytes,
                  COUNT(*) FILTER (WHERE state IN ('done','duplicate','failed','skipped')) AS files_processed,
                  COALESCE(SUM(size) FILTER (WHERE state IN ('done','duplicate','failed','skipped')), 0)::BIGINT
                      AS bytes_processed,
                  COUNT(*) FILTER (WHERE state = 'duplicate') AS files_duplicate,
                  COALESCE(SUM(size) FILTER (WHERE state = 'duplicate'), 0)::BIGINT AS bytes_duplicate,
                  COUNT(*) FILTER (WHERE state = 'failed') AS files_error,
                  COALESCE(SUM(size) FILTER (WHERE state = 'failed'), 0)::BIGINT AS bytes_error
               FROM import_items WHERE session_id = $1) a
         WHERE s.id = $1",
        &[(&id, Type::INT8), (&now(), Type::INT8)],
        "recount session",
    )?;
    Ok(())
}

impl PgConn {
    /// Ends a session for good (`only_open`: only one still open and not marked yet); true when it did.
    fn cancel(&self, id: i64, only_open: bool) -> Result<bool> {
        let n = exec(
            &mut *self.c()?,
            "UPDATE import_sessions SET status = 'cancelled', can_resume = false,
                 error = 'cancelled for good by the user', updated_at = $2, finished_at = $2
              WHERE id = $1 AND (NOT $3 OR (can_resume AND status NOT IN ('completed','failed')))",
            &[(&id, Type::INT8), (&now(), Type::INT8), (&only_open, Type::BOOL)],
            "cancel session",
        )?;
        Ok(n == 1)
    }
}

impl ImportLog for PgConn {
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
        query_one(
            &mut *self.c()?,
            "INSERT INTO import_sessions (couple_id, status, footage_type, type_explicit, camera_id, duplicates,
                 source, source_paths, created_at, updated_at, source_id, salvage)
             VALUES ($1, 'pending', $2, $3, $4, $5, $6, $7, $8, $8, $9, $10) RETURNING id",
            &[
                (&couple_id, Type::INT8),
                (&ft.as_str(), Type::TEXT),
                (&footage_type.is_some(), Type::BOOL),
                (&camera_id, Type::INT8),
                (&duplicates.as_str(), Type::TEXT),
                (&source, Type::TEXT),
                (&join_paths(source_paths), Type::BYTEA),
                (&t, Type::INT8),
                (&source_id, Type::INT8),
                (&salvage, Type::BOOL),
            ],
            "create import session",
        )
    }

    fn unfinished_session_of(&self, couple_id: i64) -> Result<Option<i64>> {
        query_opt(
            &mut *self.c()?,
            "SELECT id FROM import_sessions WHERE couple_id = $1
               AND status NOT IN ('completed', 'failed') ORDER BY id DESC LIMIT 1",
            &[(&couple_id, Type::INT8)],
            |r| r.try_get(0),
            "find unfinished session",
        )
    }

    fn set_session_status(&self, id: i64, status: SessionStatus, error: Option<&str>) -> Result<()> {
        let finished = if status.is_final() { Some(now()) } else { None };
        exec(
            &mut *self.c()?,
            "UPDATE import_sessions SET status = $2, last_step = CASE WHEN $2 IN
                 ('scanning','hashing','copying','validating','finalizing') THEN $2 ELSE last_step END,
                 error = $3, updated_at = $4, finished_at = $5,
                 can_resume = $2 NOT IN ('completed','failed') AND (can_resume OR status IN ('completed','failed'))
             WHERE id = $1",
            &[
                (&id, Type::INT8),
                (&status.as_str(), Type::TEXT),
                (&error, Type::TEXT),
                (&now(), Type::INT8),
                (&finished, Type::INT8),
            ],
            "update session status",
        )?;
        Ok(())
    }

    fn set_session_error(&self, id: i64, error: Option<&str>) -> Result<()> {
        exec(
            &mut *self.c()?,
            "UPDATE import_sessions SET error = $2, updated_at = $3 WHERE id = $1",
            &[(&id, Type::INT8), (&error, Type::TEXT), (&now(), Type::INT8)],
            "record session error",
        )?;
        Ok(())
    }

    fn set_onset_manifest(&self, id: i64, summary: &str, problems_json: &str) -> Result<()> {
        exec(
            &mut *self.c()?,
            "UPDATE import_sessions SET onset_manifest = $2, onset_problems = $3, updated_at = $4 WHERE id = $1",
            &[(&id, Type::INT8), (&summary, Type::TEXT), (&problems_json, Type::TEXT), (&now(), Type::INT8)],
            "record the on-set manifest check",
        )?;
        Ok(())
    }

    fn start_run(&self, id: i64) -> Result<()> {
        exec(
            &mut *self.c()?,
            "UPDATE import_sessions SET run_started_at = $2, run_bytes_start = bytes_processed - bytes_duplicate
                 + (SELECT COALESCE(SUM(CASE WHEN state = 'copied' THEN size ELSE resume_offset END), 0)::BIGINT
                      FROM import_items WHERE session_id = $1
                       AND (state = 'copied' OR (state = 'pending' AND resume_offset IS NOT NULL)))
             WHERE id = $1",
            &[(&id, Type::INT8), (&now(), Type::INT8)],
            "start session run",
        )?;
        Ok(())
    }

    fn cancel_session(&self, id: i64) -> Result<()> {
        self.cancel(id, false).map(drop)
    }

    fn request_cancel(&self, id: i64) -> Result<bool> {
        self.cancel(id, true)
    }

    fn reset_failed_items(&self, id: i64) -> Result<usize> {
        let mut c = self.c()?;
        let mut tx = c.transaction().ctx("begin retry of failed items")?;
        let n = exec(
            &mut tx,
            "UPDATE import_items SET state = 'pending', error = NULL, hash = NULL, updated_at = $2
             WHERE session_id = $1 AND state = 'failed'",
            &[(&id, Type::INT8), (&now(), Type::INT8)],
            "retry failed items",
        )?;
        if n > 0 {
            exec(
                &mut tx,
                "UPDATE import_sessions SET status = 'paused', can_resume = true, finished_at = NULL WHERE id = $1",
                &[(&id, Type::INT8)],
                "reopen session",
            )?;
            recount_on(&mut tx, id)?;
        }
        tx.commit().ctx("commit retry of failed items")?;
        Ok(n as usize)
    }

    fn set_durable_commits(&self, durable: bool) -> Result<()> {
        self.c()?
            .batch_execute(if durable { "SET synchronous_commit = on" } else { "SET synchronous_commit = off" })
            .ctx("set synchronous_commit")
    }

    fn recount_session(&self, id: i64) -> Result<()> {
        recount_on(&mut *self.c()?, id)
    }

    fn insert_items(&mut self, session_id: i64, items: &[NewItem]) -> Result<()> {
        // One statement: the earlier partial scan goes, the items come in scan order with ids taken from the
        // identity's sequence first, so a sidecar's row can name its clip's.
        let n = items.len();
        let (mut paths, mut rels, mut sizes, mut mtimes, mut states, mut errors, mut clips) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for it in items {
            paths.push(it.path.as_slice());
            rels.push(it.rel_path.as_slice());
            sizes.push(it.size as i64);
            mtimes.push(it.mtime_ns);
            states.push(it.state.as_str());
            errors.push(it.error.as_deref());
            clips.push(it.sidecar_of.map(|i| i as i64 + 1));
        }
        exec(
            &mut *self.c()?,
            "WITH gone AS (DELETE FROM import_items WHERE session_id = $1),
             u AS (SELECT x.*, nextval((SELECT pg_get_serial_sequence('import_items', 'id'))::regclass) AS id
                   FROM UNNEST($2::bytea[], $3::bytea[], $4::bigint[], $5::bigint[], $6::text[], $7::text[],
                               $8::bigint[]) WITH ORDINALITY AS x(path, rel_path, size, mtime_ns, state, error, clip, ord))
             INSERT INTO import_items (id, session_id, path, rel_path, size, mtime_ns, state, error, sidecar_of,
                 updated_at)
             SELECT u.id, $1, u.path, u.rel_path, u.size, u.mtime_ns, u.state, u.error, s.id, $9
             FROM u LEFT JOIN u s ON s.ord = u.clip ORDER BY u.ord",
            &[
                (&session_id, Type::INT8),
                (&paths, Type::BYTEA_ARRAY),
                (&rels, Type::BYTEA_ARRAY),
                (&sizes, Type::INT8_ARRAY),
                (&mtimes, Type::INT8_ARRAY),
                (&states, Type::TEXT_ARRAY),
                (&errors, Type::TEXT_ARRAY),
                (&clips, Type::INT8_ARRAY),
                (&now(), Type::INT8),
            ],
            "record scan",
        )?;
        Ok(())
    }

    fn unfinished_item_at(&self, session_id: i64, path: &[u8]) -> Result<Option<Item>> {
        query_opt(
            &mut *self.c()?,
            &format!(
                "SELECT {ITEM_COLUMNS} FROM import_items
                 WHERE session_id = $1 AND path = $2 AND state IN ('pending','copied','stored')
                 ORDER BY id DESC LIMIT 1"
            ),
            &[(&session_id, Type::INT8), (&path, Type::BYTEA)],
            item_from_row,
            "find unfinished item",
        )
    }

    fn set_item_state(&self, id: i64, state: ItemState, hash: Option<&str>) -> Result<()> {
        exec(
            &mut *self.c()?,
            "UPDATE import_items SET state = $2, hash = COALESCE($3, hash), updated_at = $4 WHERE id = $1",
            &[(&id, Type::INT8), (&state.as_str(), Type::TEXT), (&hash, Type::TEXT), (&now(), Type::INT8)],
            "update item",
        )?;
        Ok(())
    }

    fn items_copied(&mut self, copies: &[(i64, &str, u64, i64)]) -> Result<()> {
        // One statement over arrays; an item named twice keeps its last copy, as SQLite's updates in order do.
        let mut last = std::collections::HashMap::with_capacity(copies.len());
        for (i, (id, ..)) in copies.iter().enumerate() {
            last.insert(*id, i);
        }
        let n = last.len();
        let (mut ids, mut hashes, mut sizes, mut mtimes) =
            (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
        for (i, (id, hash, size, mtime_ns)) in copies.iter().enumerate() {
            if last.get(id) == Some(&i) {
                ids.push(*id);
                hashes.push(*hash);
                sizes.push(*size as i64);
                mtimes.push(*mtime_ns);
            }
        }
        exec(
            &mut *self.c()?,
            "UPDATE import_items i SET state = 'copied', hash = u.hash, size = u.size, mtime_ns = u.mtime_ns,
                 updated_at = $5
             FROM UNNEST($1::bigint[], $2::text[], $3::bigint[], $4::bigint[]) AS u(id, hash, size, mtime_ns)
             WHERE i.id = u.id",
            &[
                (&ids, Type::INT8_ARRAY),
                (&hashes, Type::TEXT_ARRAY),
                (&sizes, Type::INT8_ARRAY),
                (&mtimes, Type::INT8_ARRAY),
                (&now(), Type::INT8),
            ],
            "record copies",
        )?;
        Ok(())
    }

    fn set_item_damage(&self, id: i64, bad_ranges: Option<&str>) -> Result<()> {
        exec(
            &mut *self.c()?,
            "UPDATE import_items SET bad_ranges = $2, updated_at = $3 WHERE id = $1",
            &[(&id, Type::INT8), (&bad_ranges, Type::TEXT), (&now(), Type::INT8)],
            "record damage",
        )?;
        Ok(())
    }

    fn set_item_checkpoint(&self, id: i64, checkpoint: Option<(u64, u64, i64)>) -> Result<()> {
        let t = now();
        let mut c = self.c()?;
        match checkpoint {
            Some((offset, size, mtime_ns)) => exec(
                &mut *c,
                "UPDATE import_items SET resume_offset = $2, size = $3, mtime_ns = $4, updated_at = $5 WHERE id = $1",
                &[
                    (&id, Type::INT8),
                    (&(offset as i64), Type::INT8),
                    (&(size as i64), Type::INT8),
                    (&mtime_ns, Type::INT8),
                    (&t, Type::INT8),
                ],
                "record copy checkpoint",
            ),
            None => exec(
                &mut *c,
                "UPDATE import_items SET resume_offset = NULL, updated_at = $2
                 WHERE id = $1 AND resume_offset IS NOT NULL",
                &[(&id, Type::INT8), (&t, Type::INT8)],
                "record copy checkpoint",
            ),
        }?;
        Ok(())
    }

    fn clear_item_hash(&self, id: i64) -> Result<()> {
        exec(
            &mut *self.c()?,
            "UPDATE import_items SET hash = NULL, updated_at = $2 WHERE id = $1",
            &[(&id, Type::INT8), (&now(), Type::INT8)],
            "clear item hash",
        )?;
        Ok(())
    }

    fn set_item_hash(&self, id: i64, hash: &str) -> Result<()> {
        exec(
            &mut *self.c()?,
            "UPDATE import_items SET hash = $2, updated_at = $3 WHERE id = $1",
            &[(&id, Type::INT8), (&hash, Type::TEXT), (&now(), Type::INT8)],
            "record item hash",
        )?;
        Ok(())
    }

    fn fill_blob_sums(&self, hash: &str, sums: &Sums) -> Result<bool> {
        let n = exec(
            &mut *self.c()?,
            "UPDATE blobs SET xxh64 = $2, xxh128 = $3 WHERE hash = $1 AND xxh64 IS NULL",
            &[(&hash, Type::TEXT), (&sums.xxh64, Type::TEXT), (&sums.xxh128, Type::TEXT)],
            "record blob checksums",
        )?;
        Ok(n > 0)
    }

    fn end_item(&mut self, item: &Item, state: ItemState, error: Option<&str>) -> Result<()> {
        // The item's end and its count in one statement.
        let p = Progress::one(state, item.size);
        exec(
            &mut *self.c()?,
            "WITH ended AS (UPDATE import_items SET state = $2, error = $3, updated_at = $4 WHERE id = $1)
             UPDATE import_sessions SET files_processed = files_processed + $6, files_duplicate = files_duplicate + $7,
                 files_error = files_error + $8, bytes_processed = bytes_processed + $9,
                 bytes_duplicate = bytes_duplicate + $10, bytes_error = bytes_error + $11, updated_at = $4
             WHERE id = $5",
            &[
                (&item.id, Type::INT8),
                (&state.as_str(), Type::TEXT),
                (&error, Type::TEXT),
                (&now(), Type::INT8),
                (&item.session_id, Type::INT8),
                (&p.files_processed, Type::INT8),
                (&p.files_duplicate, Type::INT8),
                (&p.files_error, Type::INT8),
                (&p.bytes_processed, Type::INT8),
                (&p.bytes_duplicate, Type::INT8),
                (&p.bytes_error, Type::INT8),
            ],
            "end item",
        )?;
        Ok(())
    }

    fn couple_sizes(&self, couple_id: i64) -> Result<std::collections::HashSet<u64>> {
        let sizes = query(
            &mut *self.c()?,
            "SELECT DISTINCT b.size FROM files f JOIN blobs b ON b.id = f.blob_id
               WHERE f.couple_id = $1 AND f.trash_id IS NULL",
            &[(&couple_id, Type::INT8)],
            |r| r.try_get::<_, i64>(0),
            "couple sizes",
        )?;
        Ok(sizes.into_iter().map(|s| s as u64).collect())
    }

    fn couple_has_blob(&self, couple_id: i64, hash: &str) -> Result<bool> {
        query_one(
            &mut *self.c()?,
            "SELECT EXISTS(SELECT 1 FROM blobs b JOIN files f ON f.blob_id = b.id
               WHERE b.hash = $2 AND f.couple_id = $1 AND b.health = 'ok' AND f.trash_id IS NULL)",
            &[(&couple_id, Type::INT8), (&hash, Type::TEXT)],
            "check duplicate",
        )
    }

    fn already_imported(&self, couple_id: i64, source: &str, rel: &[u8], size: u64, mtime_ns: i64) -> Result<bool> {
        query_one(
            &mut *self.c()?,
            "SELECT EXISTS(SELECT 1 FROM files f JOIN blobs b ON b.id = f.blob_id
               WHERE f.couple_id = $1 AND f.original_path = $3 AND f.source = $2 AND f.source_mtime_ns = $5
                 AND b.size = $4 AND f.trash_id IS NULL)",
            &[
                (&couple_id, Type::INT8),
                (&source, Type::TEXT),
                (&rel, Type::BYTEA),
                (&(size as i64), Type::INT8),
                (&mtime_ns, Type::INT8),
            ],
            "quick check",
        )
    }

    fn source_items_seen(&self, source_id: i64) -> Result<std::collections::HashSet<(Vec<u8>, u64, i64)>> {
        let seen = query(
            &mut *self.c()?,
            "SELECT DISTINCT i.rel_path, i.size, i.mtime_ns FROM import_items i
               JOIN import_sessions s ON s.id = i.session_id
              WHERE s.source_id = $1 AND (i.state IN ('done','duplicate','failed')
                 OR (s.status NOT IN ('completed','failed') AND s.can_resume))",
            &[(&source_id, Type::INT8)],
            |r| Ok((r.try_get::<_, Vec<u8>>(0)?, r.try_get::<_, i64>(1)? as u64, r.try_get::<_, i64>(2)?)),
            "items seen from source",
        )?;
        Ok(seen.into_iter().collect())
    }

    fn begin_finalize(&mut self) -> Result<Box<dyn Finalize + '_>> {
        // Reconnect first when the server dropped the connection.
        drop(self.c()?);
        let tx = self.client.get_mut().transaction().ctx("begin finalize")?;
        Ok(Box::new(PgFinalize::new(tx)))
    }

    fn try_lock_couple(&self, couple_id: i64) -> Result<Option<CoupleLease>> {
        Ok(PgLease::try_take(self, couple_id)?.map(|l| Box::new(l) as CoupleLease))
    }

    fn couple_lock_holder(&self, couple_id: i64) -> Option<String> {
        lease::note(self, couple_id).ok().flatten()
    }

    fn couple_lock_held(&self, couple_id: i64) -> Option<bool> {
        lease::is_held(self, couple_id).ok()
    }
}
