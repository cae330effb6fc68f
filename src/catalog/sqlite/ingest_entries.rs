//! [`IngestEntries`] on SQLite.

use rusqlite::{params, OptionalExtension};

use super::*;
use crate::catalog::IngestEntries;

impl IngestEntries for SqliteConn {
    fn ingest_entries(&self) -> Result<Vec<IngestEntry>> {
        rows(
            &self.conn,
            "SELECT id, couple_id, parent_id, name, kind, state, size, mtime_ns, mode, uid, gid, blob_hash, file_id
                 FROM ingest_entries ORDER BY id",
            [],
            |r| {
                let kind: String = r.get(4)?;
                let state: String = r.get(5)?;
                Ok(IngestEntry {
                    id: r.get(0)?,
                    couple_id: r.get(1)?,
                    parent_id: r.get(2)?,
                    name: r.get(3)?,
                    is_dir: kind == "dir",
                    committed: state == "committed",
                    size: r.get::<_, i64>(6)? as u64,
                    mtime_ns: r.get(7)?,
                    mode: r.get(8)?,
                    uid: r.get(9)?,
                    gid: r.get(10)?,
                    blob_hash: r.get(11)?,
                    file_id: r.get(12)?,
                })
            },
            "list ingest entries",
        )
    }

    fn add_ingest_entry(&self, e: &IngestEntry) -> Result<i64> {
        self.conn
            .execute(
                "INSERT INTO ingest_entries (couple_id, parent_id, name, kind, state, size, mtime_ns, mode, uid, gid,
                     blob_hash, file_id, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                params![
                    e.couple_id,
                    e.parent_id,
                    e.name,
                    if e.is_dir { "dir" } else { "file" },
                    if e.committed { "committed" } else { "staging" },
                    e.size as i64,
                    e.mtime_ns,
                    e.mode,
                    e.uid,
                    e.gid,
                    e.blob_hash,
                    e.file_id,
                    now()
                ],
            )
            .ctx("add ingest entry")?;
        Ok(self.conn.last_insert_rowid())
    }

    fn update_ingest_entry(&self, e: &IngestEntry) -> Result<()> {
        self.conn
            .execute(
                "UPDATE ingest_entries SET parent_id = ?2, name = ?3, state = ?4, size = ?5, mtime_ns = ?6, mode = ?7,
                     uid = ?8, gid = ?9, blob_hash = ?10, file_id = ?11, updated_at = ?12
                 WHERE id = ?1",
                params![
                    e.id,
                    e.parent_id,
                    e.name,
                    if e.committed { "committed" } else { "staging" },
                    e.size as i64,
                    e.mtime_ns,
                    e.mode,
                    e.uid,
                    e.gid,
                    e.blob_hash,
                    e.file_id,
                    now()
                ],
            )
            .ctx("update ingest entry")?;
        Ok(())
    }

    fn remove_ingest_entry(&self, id: i64) -> Result<()> {
        self.conn.execute("DELETE FROM ingest_entries WHERE id = ?1", [id]).ctx("remove ingest entry")?;
        Ok(())
    }

    fn add_item(&self, session_id: i64, it: &NewItem, sidecar_of: Option<i64>) -> Result<i64> {
        self.conn
            .execute(
                "INSERT INTO import_items (session_id, path, rel_path, size, mtime_ns, state, sidecar_of, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    session_id,
                    it.path,
                    it.rel_path,
                    it.size as i64,
                    it.mtime_ns,
                    it.state.as_str(),
                    sidecar_of,
                    now()
                ],
            )
            .ctx("add item")?;
        let id = self.conn.last_insert_rowid();
        self.conn
            .execute(
                "UPDATE import_sessions SET files_total = files_total + 1, bytes_total = bytes_total + ?2,
                     updated_at = ?3 WHERE id = ?1",
                params![session_id, it.size as i64, now()],
            )
            .ctx("count item")?;
        Ok(id)
    }

    fn item(&self, id: i64) -> Result<Option<Item>> {
        self.conn
            .query_row(
                "SELECT id, session_id, path, rel_path, size, mtime_ns, state, hash, sidecar_of, file_id, error,
                    bad_ranges, resume_offset, healed
                 FROM import_items WHERE id = ?1",
                [id],
                item_from_row,
            )
            .optional()
            .ctx("find item")
    }

    fn unfinished_sessions_with_source_prefix(&self, prefix: &str) -> Result<Vec<i64>> {
        rows(
            &self.conn,
            "SELECT id FROM import_sessions WHERE status NOT IN ('completed','failed') AND substr(source, 1, ?2) = ?1",
            params![prefix, prefix.len() as i64],
            |r| r.get(0),
            "find open sessions",
        )
    }
}
