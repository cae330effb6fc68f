//! [`IngestEntries`] on Postgres (a port of `sqlite/ingest_entries.rs`). `mode`, `uid` and `gid` are BIGINT
//! columns holding the u32 values.

use postgres::types::Type;

use super::finalize::{exec, query, query_one, query_opt};
use super::*;
use crate::catalog::IngestEntries;

fn entry_from_row(r: &Row) -> PgResult<IngestEntry> {
    let kind: &str = r.try_get(4)?;
    let state: &str = r.try_get(5)?;
    Ok(IngestEntry {
        id: r.try_get(0)?,
        couple_id: r.try_get(1)?,
        parent_id: r.try_get(2)?,
        name: r.try_get(3)?,
        is_dir: kind == "dir",
        committed: state == "committed",
        size: r.try_get::<_, i64>(6)? as u64,
        mtime_ns: r.try_get(7)?,
        mode: r.try_get::<_, i64>(8)? as u32,
        uid: r.try_get::<_, i64>(9)? as u32,
        gid: r.try_get::<_, i64>(10)? as u32,
        blob_hash: r.try_get(11)?,
        file_id: r.try_get(12)?,
    })
}

impl IngestEntries for PgConn {
    fn ingest_entries(&self) -> Result<Vec<IngestEntry>> {
        query(
            &mut *self.c()?,
            "SELECT id, couple_id, parent_id, name, kind, state, size, mtime_ns, mode, uid, gid, blob_hash, file_id
                 FROM ingest_entries ORDER BY id",
            &[],
            entry_from_row,
            "list ingest entries",
        )
    }

    fn add_ingest_entry(&self, e: &IngestEntry) -> Result<i64> {
        query_one(
            &mut *self.c()?,
            "INSERT INTO ingest_entries (couple_id, parent_id, name, kind, state, size, mtime_ns, mode, uid, gid,
                 blob_hash, file_id, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING id",
            &[
                (&e.couple_id, Type::INT8),
                (&e.parent_id, Type::INT8),
                (&e.name, Type::BYTEA),
                (&if e.is_dir { "dir" } else { "file" }, Type::TEXT),
                (&if e.committed { "committed" } else { "staging" }, Type::TEXT),
                (&(e.size as i64), Type::INT8),
                (&e.mtime_ns, Type::INT8),
                (&(e.mode as i64), Type::INT8),
                (&(e.uid as i64), Type::INT8),
                (&(e.gid as i64), Type::INT8),
                (&e.blob_hash, Type::TEXT),
                (&e.file_id, Type::INT8),
                (&now(), Type::INT8),
            ],
            "add ingest entry",
        )
    }

    fn update_ingest_entry(&self, e: &IngestEntry) -> Result<()> {
        exec(
            &mut *self.c()?,
            "UPDATE ingest_entries SET parent_id = $2, name = $3, state = $4, size = $5, mtime_ns = $6, mode = $7,
                 uid = $8, gid = $9, blob_hash = $10, file_id = $11, updated_at = $12
             WHERE id = $1",
            &[
                (&e.id, Type::INT8),
                (&e.parent_id, Type::INT8),
                (&e.name, Type::BYTEA),
                (&if e.committed { "committed" } else { "staging" }, Type::TEXT),
                (&(e.size as i64), Type::INT8),
                (&e.mtime_ns, Type::INT8),
                (&(e.mode as i64), Type::INT8),
                (&(e.uid as i64), Type::INT8),
                (&(e.gid as i64), Type::INT8),
                (&e.blob_hash, Type::TEXT),
                (&e.file_id, Type::INT8),
                (&now(), Type::INT8),
            ],
            "update ingest entry",
        )?;
        Ok(())
    }

    fn remove_ingest_entry(&self, id: i64) -> Result<()> {
        exec(&mut *self.c()?, "DELETE FROM ingest_entries WHERE id = $1", &[(&id, Type::INT8)], "remove ingest entry")?;
        Ok(())
    }

    fn add_item(&self, session_id: i64, it: &NewItem, sidecar_of: Option<i64>) -> Result<i64> {
        // The item and its count in one statement.
        query_one(
            &mut *self.c()?,
            "WITH item AS (
                 INSERT INTO import_items (session_id, path, rel_path, size, mtime_ns, state, sidecar_of, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id),
             counted AS (
                 UPDATE import_sessions SET files_total = files_total + 1, bytes_total = bytes_total + $4,
                     updated_at = $8 WHERE id = $1)
             SELECT id FROM item",
            &[
                (&session_id, Type::INT8),
                (&it.path, Type::BYTEA),
                (&it.rel_path, Type::BYTEA),
                (&(it.size as i64), Type::INT8),
                (&it.mtime_ns, Type::INT8),
                (&it.state.as_str(), Type::TEXT),
                (&sidecar_of, Type::INT8),
                (&now(), Type::INT8),
            ],
            "add item",
        )
    }

    fn item(&self, id: i64) -> Result<Option<Item>> {
        query_opt(
            &mut *self.c()?,
            &format!("SELECT {ITEM_COLUMNS} FROM import_items WHERE id = $1"),
            &[(&id, Type::INT8)],
            item_from_row,
            "find item",
        )
    }

    fn unfinished_sessions_with_source_prefix(&self, prefix: &str) -> Result<Vec<i64>> {
        query(
            &mut *self.c()?,
            "SELECT id FROM import_sessions WHERE status NOT IN ('completed','failed')
               AND substring(source from 1 for length($1)) = $1",
            &[(&prefix, Type::TEXT)],
            |r| r.try_get(0),
            "find open sessions",
        )
    }
}
