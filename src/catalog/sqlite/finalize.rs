//! [`Finalize`] on SQLite: one `BEGIN IMMEDIATE` transaction, rolled back when dropped uncommitted.

use rusqlite::{params, OptionalExtension};

use super::*;
use crate::catalog::Finalize;

/// One finalize transaction: blobs, files and item states of a group of items land together or not at all.
pub(super) struct SqliteFinalize<'a> {
    pub(super) tx: rusqlite::Transaction<'a>,
    pub(super) progress: Progress,
}

impl Finalize for SqliteFinalize<'_> {
    fn blob_health(&self, hash: &str) -> Result<Option<String>> {
        blob_health_on(&self.tx, hash)
    }

    fn heal_blob(&self, hash: &str, session_id: Option<i64>, how: &str) -> Result<()> {
        heal_blob_on(&self.tx, hash, session_id, how)
    }

    fn damaged_file_like(&self, couple_id: i64, original_path: &[u8], size: u64) -> Result<Option<i64>> {
        self.tx
            .query_row(
                "SELECT f.id FROM files f JOIN blobs b ON b.id = f.blob_id
                   WHERE f.couple_id = ?1 AND f.original_path = ?2 AND f.bad_ranges IS NOT NULL AND b.size = ?3
                     AND f.trash_id IS NULL
                   ORDER BY f.id LIMIT 1",
                params![couple_id, original_path, size as i64],
                |r| r.get(0),
            )
            .optional()
            .ctx("find damaged file")
    }

    fn replace_damaged(
        &mut self,
        file_id: i64,
        hash: &str,
        size: u64,
        session_id: i64,
        sums: Option<&Sums>,
    ) -> Result<()> {
        insert_blob_on(&self.tx, hash, size, sums)?;
        let old: String = self
            .tx
            .query_row("SELECT blob_hash FROM files WHERE id = ?1", [file_id], |r| r.get(0))
            .ctx("find damaged file")?;
        self.tx
            .execute(
                "UPDATE files SET blob_hash = ?2, bad_ranges = NULL, session_id = ?3 WHERE id = ?1",
                params![file_id, hash, session_id],
            )
            .ctx("replace damaged file")?;
        add_archive_event(
            &self.tx,
            "file_replaced",
            Some(hash),
            Some(file_id),
            Some(session_id),
            &format!("salvaged copy {old} replaced by a clean verified copy"),
        )
    }

    fn couple_has_blob(&self, couple_id: i64, hash: &str) -> Result<bool> {
        has_blob_in_couple(&self.tx, couple_id, hash)
    }

    fn fill_sums(&self, hash: &str, sums: &Sums) -> Result<bool> {
        fill_sums_on(&self.tx, hash, sums)
    }

    fn name_taken(&self, couple_id: i64, ft: FootageType, camera_id: Option<i64>, key: &str) -> Result<bool> {
        self.tx
            .prepare_cached(
                "SELECT EXISTS(SELECT 1 FROM files WHERE couple_id = ?1 AND footage_type = ?2
                   AND IFNULL(camera_id, 0) = ?3 AND name_key = ?4)
                 OR EXISTS(SELECT 1 FROM file_aliases WHERE couple_id = ?1 AND footage_type = ?2
                   AND IFNULL(camera_id, 0) = ?3 AND name_key = ?4)",
            )
            .ctx("check name")?
            .query_row(params![couple_id, ft.as_str(), camera_id.unwrap_or(0), key], |r| r.get(0))
            .ctx("check name")
    }

    fn cameras(&self) -> Result<Vec<Camera>> {
        cameras_on(&self.tx)
    }

    fn add_camera(&self, c: &NewCamera) -> Result<i64> {
        insert_camera(&self.tx, c)
    }

    fn camera_slug_taken(&self, slug: &str) -> Result<bool> {
        slug_taken(&self.tx, slug)
    }

    fn file_placement(&self, file_id: i64) -> Result<Option<(Option<i64>, FootageType)>> {
        let row: Option<(Option<i64>, String)> = self
            .tx
            .query_row("SELECT camera_id, footage_type FROM files WHERE id = ?1", [file_id], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()
            .ctx("find file placement")?;
        match row {
            Some((cam, ft)) => Ok(Some((cam, FootageType::parse(&ft)?))),
            None => Ok(None),
        }
    }

    fn display_name(&self, file_id: i64) -> Result<Option<Vec<u8>>> {
        self.tx
            .query_row("SELECT display_name FROM files WHERE id = ?1", [file_id], |r| r.get(0))
            .optional()
            .ctx("find file name")
    }

    fn item_state(&self, item_id: i64) -> Result<Option<ItemState>> {
        let st: Option<String> = self
            .tx
            .query_row("SELECT state FROM import_items WHERE id = ?1", [item_id], |r| r.get(0))
            .optional()
            .ctx("find item state")?;
        Ok(st.map(|s| ItemState::parse(&s)))
    }

    fn item_file(&self, item_id: i64) -> Result<Option<i64>> {
        self.tx
            .query_row("SELECT file_id FROM import_items WHERE id = ?1", [item_id], |r| r.get::<_, Option<i64>>(0))
            .optional()
            .ctx("find item file")
            .map(Option::flatten)
    }

    fn insert_file(&mut self, f: &NewFile) -> Result<i64> {
        let t = now();
        insert_blob_on(&self.tx, f.blob_hash, f.blob_size, f.sums)?;
        self.tx
            .execute(
                "INSERT INTO files (couple_id, footage_type, camera_id, blob_hash, display_name, name_key,
                    original_path, source, source_mtime_ns, imported_at, session_id, sidecar_of, captured_at,
                    bad_ranges, blob_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14,
                    (SELECT id FROM blobs WHERE hash = ?4))",
                params![
                    f.couple_id,
                    f.footage_type.as_str(),
                    f.camera_id,
                    f.blob_hash,
                    f.display_name,
                    f.name_key,
                    f.original_path,
                    f.source,
                    f.source_mtime_ns,
                    t,
                    f.session_id,
                    f.sidecar_of,
                    f.captured_at,
                    f.bad_ranges
                ],
            )
            .ctx("insert file")?;
        Ok(self.tx.last_insert_rowid())
    }

    fn item_done(&mut self, item: &Item, file_id: i64) -> Result<()> {
        self.tx
            .execute(
                "UPDATE import_items SET state = 'done', file_id = ?2, error = NULL, updated_at = ?3, healed = ?4,
                    bad_ranges = ?5 WHERE id = ?1",
                params![item.id, file_id, now(), item.healed, item.bad_ranges],
            )
            .ctx("mark item done")?;
        self.progress.add(Progress::one(ItemState::Done, item.size));
        Ok(())
    }

    fn item_end(&mut self, item: &Item, state: ItemState, error: Option<&str>) -> Result<()> {
        self.tx
            .execute(
                "UPDATE import_items SET state = ?2, error = ?3, updated_at = ?4, healed = ?5 WHERE id = ?1",
                params![item.id, state.as_str(), error, now(), item.healed],
            )
            .ctx("end item")?;
        self.progress.add(Progress::one(state, item.size));
        Ok(())
    }

    fn commit_for(self: Box<Self>, session_id: i64) -> Result<()> {
        let SqliteFinalize { tx, progress } = *self;
        add_progress(&tx, session_id, progress)?;
        tx.commit().ctx("commit finalize")
    }
}
