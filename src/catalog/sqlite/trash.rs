//! [`Trash`] on SQLite: removed couples, files and imports (rows marked with their trash entry), restores,
//! purges, and garbage blobs.
//!
//! A removal inserts a `trash` row and sets `trash_id` on the rows it takes (the couple too for a couple); the
//! triggers of schema 10 take those files out of `couple_totals` and `camera_totals`, and every query of the tree,
//! the listings and the duplicate checks skips them. Names stay taken (the unique index counts trashed rows), so a
//! restore always fits. A purge deletes the rows for good; the blobs are `gc`'s, once no row references them.

use std::collections::HashSet;

use rusqlite::{params, OptionalExtension};

use super::registry::audit_on;
use super::*;
use crate::catalog::Trash;

/// Statuses of a session that has ended: nothing it named is still on its way into the archive.
const ENDED: &str = "('completed', 'cancelled', 'failed')";

/// The columns of a [`TrashEntry`], in [`entry_from_row`]'s order, over `trash t` and `couples c`.
const ENTRY_SELECT: &str = "SELECT t.id, t.kind, t.couple_id, c.folder_name, t.session_id, t.label, t.files, t.bytes,
        t.trashed_at, t.purge_after, t.uid
     FROM trash t JOIN couples c ON c.id = t.couple_id";

fn entry_from_row(r: &Row) -> rusqlite::Result<TrashEntry> {
    let kind: String = r.get(1)?;
    Ok(TrashEntry {
        id: r.get(0)?,
        kind: TrashKind::parse(&kind).unwrap_or(TrashKind::File),
        couple_id: r.get(2)?,
        couple: r.get(3)?,
        session_id: r.get(4)?,
        label: r.get(5)?,
        files: r.get(6)?,
        bytes: r.get(7)?,
        trashed_at: r.get(8)?,
        purge_after: r.get(9)?,
        uid: r.get(10)?,
    })
}

fn entry_on(conn: &Connection, id: i64) -> Result<TrashEntry> {
    conn.query_row(&format!("{ENTRY_SELECT} WHERE t.id = ?1"), [id], entry_from_row)
        .optional()
        .ctx("find trash entry")?
        .ok_or_else(|| Error::NotFound(format!("no trash entry {id} (`nightfox trash list` shows them)")))
}

/// A live file about to be trashed: its id, where it is shown, and its size.
struct Taken {
    id: i64,
    at: Placement,
    size: i64,
}

/// The live files that `filter` (a condition over `files f`, with `?1` bound to `key`) selects.
fn live_files(conn: &Connection, filter: &str, key: i64) -> Result<Vec<Taken>> {
    rows(
        conn,
        &format!(
            "SELECT f.id, f.couple_id, f.footage_type, f.camera_id, f.display_name, b.size
               FROM files f JOIN blobs b ON b.id = f.blob_id WHERE f.trash_id IS NULL AND ({filter}) ORDER BY f.id"
        ),
        [key],
        |r| {
            let ft: String = r.get(2)?;
            Ok(Taken {
                id: r.get(0)?,
                at: Placement {
                    couple_id: r.get(1)?,
                    footage_type: FootageType::parse(&ft).unwrap_or(FootageType::Modern),
                    camera_id: r.get(3)?,
                    name: r.get(4)?,
                },
                size: r.get(5)?,
            })
        },
        "list the files to remove",
    )
}

/// Inserts a trash entry and marks `files` with it; returns the entry's id.
#[allow(clippy::too_many_arguments)]
fn new_entry(
    conn: &Connection,
    kind: TrashKind,
    couple_id: i64,
    session_id: Option<i64>,
    label: &str,
    files: &[Taken],
    purge_after: i64,
    by: &Actor,
) -> Result<i64> {
    let bytes: i64 = files.iter().map(|f| f.size).sum();
    // Entry ids are never reused (the table has no AUTOINCREMENT, and a restored or purged entry's row is gone):
    // each removal logs one audit event in its transaction, so their count is how many ids were ever handed out.
    let id: i64 = conn
        .query_row(
            "SELECT MAX(IFNULL((SELECT MAX(id) FROM trash), 0),
                        (SELECT COUNT(*) FROM audit_log WHERE action IN ('file.remove', 'couple.remove', 'session.undo'))) + 1",
            [],
            |r| r.get(0),
        )
        .ctx("number a trash entry")?;
    conn.execute(
        "INSERT INTO trash (id, kind, couple_id, session_id, label, files, bytes, trashed_at, purge_after, uid)
         VALUES (?10, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![kind.as_str(), couple_id, session_id, label, files.len() as i64, bytes, by.at, purge_after, by.uid, id],
    )
    .ctx("add trash entry")?;
    let mut st = conn
        .prepare_cached("UPDATE files SET trash_id = ?1 WHERE id = ?2 AND trash_id IS NULL")
        .ctx("move files to the trash")?;
    for f in files {
        st.execute(params![id, f.id]).ctx("move files to the trash")?;
    }
    Ok(id)
}

fn gone_files(files: &[Taken]) -> Vec<Gone> {
    files.iter().map(|f| Gone::File { file_id: f.id, at: f.at.clone() }).collect()
}

fn folder_of(conn: &Connection, couple_id: i64) -> Result<(String, Option<i64>)> {
    conn.query_row("SELECT folder_name, trash_id FROM couples WHERE id = ?1", [couple_id], |r| {
        Ok((r.get(0)?, r.get(1)?))
    })
    .optional()
    .ctx("find couple")?
    .ok_or_else(|| Error::NoSuchCouple(format!("#{couple_id}")))
}

/// Which of `hashes` something may still need (see [`Trash::needed_hashes`]), read on `conn` (inside the
/// caller's transaction when it holds one).
fn needed_on(conn: &Connection, hashes: &[String]) -> Result<HashSet<String>> {
    let mut out = HashSet::new();
    for chunk in hashes.chunks(300) {
        let marks = vec!["?"; chunk.len()].join(",");
        let sql = format!(
            "SELECT hash FROM blobs WHERE hash IN ({marks})
             UNION SELECT i.hash FROM import_sessions s JOIN import_items i ON i.session_id = s.id
                    WHERE s.status NOT IN {ENDED} AND i.hash IN ({marks})
             UNION SELECT blob_hash FROM ingest_entries WHERE blob_hash IN ({marks})"
        );
        let p: Vec<&String> = chunk.iter().chain(chunk).chain(chunk).collect();
        out.extend(rows(conn, &sql, rusqlite::params_from_iter(p), |r| r.get::<_, String>(0), "find needed blobs")?);
    }
    Ok(out)
}

/// The condition under which a blob `b` is garbage: no file row (live or trashed), no item of a session that has
/// not ended, no ingest entry names it.
fn garbage_condition() -> String {
    format!(
        "NOT EXISTS (SELECT 1 FROM files f WHERE f.blob_id = b.id)
         AND b.hash NOT IN (SELECT i.hash FROM import_sessions s JOIN import_items i ON i.session_id = s.id
                             WHERE s.status NOT IN {ENDED} AND i.hash IS NOT NULL)
         AND b.hash NOT IN (SELECT blob_hash FROM ingest_entries WHERE blob_hash IS NOT NULL)"
    )
}

/// Deletes the file rows `ids` (sidecars first), with what references them: items forget the file, committed
/// ingest entries of these files leave the `/ingest` view, sidecars outside the set forget their clip. Returns
/// how many were deleted.
fn delete_files(conn: &Connection, ids: &[i64]) -> Result<i64> {
    let mut n = 0;
    for chunk in ids.chunks(300) {
        let marks = vec!["?"; chunk.len()].join(",");
        let p = || rusqlite::params_from_iter(chunk);
        let run = |sql: String, ctx: &str| conn.execute(&sql, p()).ctx(ctx);
        run(format!("UPDATE import_items SET file_id = NULL WHERE file_id IN ({marks})"), "forget purged files")?;
        run(format!("DELETE FROM ingest_entries WHERE kind = 'file' AND file_id IN ({marks})"), "forget purged files")?;
        run(format!("UPDATE ingest_entries SET file_id = NULL WHERE file_id IN ({marks})"), "forget purged files")?;
        let q = format!("UPDATE files SET sidecar_of = NULL WHERE sidecar_of IN ({marks}) AND id NOT IN ({marks})");
        conn.execute(&q, rusqlite::params_from_iter(chunk.iter().chain(chunk))).ctx("forget purged clips")?;
        n += run(format!("DELETE FROM files WHERE id IN ({marks}) AND sidecar_of IS NOT NULL"), "purge files")?;
        n += run(format!("DELETE FROM files WHERE id IN ({marks})"), "purge files")?;
    }
    Ok(n as i64)
}

impl Trash for SqliteConn {
    fn trash_file(&self, file_id: i64, label: &str, purge_after: i64, by: &Actor) -> Result<TrashEntry> {
        let tx = immediate(&self.conn).ctx("begin removal")?;
        let row: Option<(i64, Option<i64>, Option<i64>)> = tx
            .query_row("SELECT couple_id, sidecar_of, trash_id FROM files WHERE id = ?1", [file_id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()
            .ctx("find file")?;
        let Some((couple_id, sidecar_of, None)) = row else {
            return Err(Error::NotFound(format!("no file #{file_id} in the archive (removed already?)")));
        };
        if let Some(clip) = sidecar_of {
            let name: Vec<u8> = tx
                .query_row("SELECT display_name FROM files WHERE id = ?1", [clip], |r| r.get(0))
                .optional()
                .ctx("find clip")?
                .unwrap_or_default();
            return Err(Error::Invalid(format!(
                "{label} is a sidecar of {:?}: remove its clip (sidecars go with it)",
                String::from_utf8_lossy(&name)
            )));
        }
        let (folder, couple_trash) = folder_of(&tx, couple_id)?;
        if couple_trash.is_some() {
            return Err(Error::NotFound(format!("no file #{file_id} in the archive (its couple is in the trash)")));
        }
        let files = live_files(&tx, "f.id = ?1 OR f.sidecar_of = ?1", file_id)?;
        let id = new_entry(&tx, TrashKind::File, couple_id, None, label, &files, purge_after, by)?;
        let bytes: i64 = files.iter().map(|f| f.size).sum();
        let summary = format!("trash entry {id}: {label} ({} files, {})", files.len(), crate::human_bytes(bytes));
        audit_on(&tx, by, "file.remove", Some(couple_id), &summary)?;
        lifecycle_event(&tx, &format!("removed {label} from {folder}"), &gone_files(&files))?;
        tx.commit().ctx("commit removal")?;
        entry_on(&self.conn, id)
    }

    fn trash_couple(&self, couple_id: i64, purge_after: i64, by: &Actor) -> Result<TrashEntry> {
        let tx = immediate(&self.conn).ctx("begin removal")?;
        let (folder, trashed) = folder_of(&tx, couple_id)?;
        if trashed.is_some() {
            return Err(Error::NoSuchCouple(folder));
        }
        let open: Option<i64> = tx
            .query_row(
                &format!(
                    "SELECT id FROM import_sessions WHERE couple_id = ?1 AND status NOT IN {ENDED} ORDER BY id LIMIT 1"
                ),
                [couple_id],
                |r| r.get(0),
            )
            .optional()
            .ctx("find unfinished session")?;
        if let Some(s) = open {
            return Err(Error::Invalid(format!(
                "{folder} has an unfinished import (session {s}): let it finish (`nightfox resume {s}`) or end it \
                 (`nightfox session cancel {s}`) first"
            )));
        }
        let source: Option<i64> = tx
            .query_row(
                "SELECT id FROM network_sources WHERE couple_id = ?1 AND enabled = 1 LIMIT 1",
                [couple_id],
                |r| r.get(0),
            )
            .optional()
            .ctx("find sources")?;
        if let Some(s) = source {
            return Err(Error::Invalid(format!(
                "network source {s} imports into {folder}: `nightfox source disable {s}` first"
            )));
        }
        if self.couple_lock_held_here(couple_id) {
            return Err(Error::Invalid(format!("{folder} is busy (an import or an /ingest commit): try again later")));
        }
        let files = live_files(&tx, "f.couple_id = ?1", couple_id)?;
        let id = new_entry(&tx, TrashKind::Couple, couple_id, None, &folder, &files, purge_after, by)?;
        tx.execute("UPDATE couples SET trash_id = ?1 WHERE id = ?2", params![id, couple_id]).ctx("remove couple")?;
        let bytes: i64 = files.iter().map(|f| f.size).sum();
        let summary = format!("trash entry {id}: {folder} ({} files, {})", files.len(), crate::human_bytes(bytes));
        audit_on(&tx, by, "couple.remove", Some(couple_id), &summary)?;
        lifecycle_event(&tx, &format!("removed {folder}"), &[Gone::Couple { couple_id, folder: folder.clone() }])?;
        tx.commit().ctx("commit removal")?;
        entry_on(&self.conn, id)
    }

    fn trash_session(&self, session_id: i64, purge_after: i64, by: &Actor) -> Result<TrashEntry> {
        let tx = immediate(&self.conn).ctx("begin removal")?;
        let (couple_id, status): (i64, String) = tx
            .query_row("SELECT couple_id, status FROM import_sessions WHERE id = ?1", [session_id], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()
            .ctx("find session")?
            .ok_or(Error::NoSuchSession(session_id))?;
        if !matches!(status.as_str(), "completed" | "cancelled" | "failed") {
            return Err(Error::Invalid(format!(
                "session {session_id} is {status}, not finished: let it finish or cancel it first"
            )));
        }
        let (folder, _) = folder_of(&tx, couple_id)?;
        let files = live_files(
            &tx,
            "f.session_id = ?1 OR f.sidecar_of IN (SELECT id FROM files WHERE session_id = ?1 AND trash_id IS NULL)",
            session_id,
        )?;
        if files.is_empty() {
            return Err(Error::Invalid(format!("session {session_id} added nothing that is still in the archive")));
        }
        let label = format!("session {session_id}");
        let id = new_entry(&tx, TrashKind::Session, couple_id, Some(session_id), &label, &files, purge_after, by)?;
        let bytes: i64 = files.iter().map(|f| f.size).sum();
        let summary = format!("trash entry {id}: {label} ({} files, {})", files.len(), crate::human_bytes(bytes));
        audit_on(&tx, by, "session.undo", Some(couple_id), &summary)?;
        lifecycle_event(&tx, &format!("undid {label} in {folder}"), &gone_files(&files))?;
        tx.commit().ctx("commit removal")?;
        entry_on(&self.conn, id)
    }

    fn trash(&self) -> Result<Vec<TrashEntry>> {
        rows(&self.conn, &format!("{ENTRY_SELECT} ORDER BY t.id"), [], entry_from_row, "list the trash")
    }

    fn trash_entry(&self, id: i64) -> Result<TrashEntry> {
        entry_on(&self.conn, id)
    }

    fn restore(&self, trash_id: i64, by: &Actor) -> Result<TrashEntry> {
        let tx = immediate(&self.conn).ctx("begin restore")?;
        let e = entry_on(&tx, trash_id)?;
        let (_, couple_trash) = folder_of(&tx, e.couple_id)?;
        if e.kind != TrashKind::Couple {
            if let Some(t) = couple_trash {
                return Err(Error::Invalid(format!(
                    "its couple {} is in the trash: `nightfox trash restore {t}` first",
                    e.couple
                )));
            }
        }
        tx.execute("UPDATE files SET trash_id = NULL WHERE trash_id = ?1", [trash_id]).ctx("restore files")?;
        if e.kind == TrashKind::Couple {
            tx.execute("UPDATE couples SET trash_id = NULL WHERE id = ?1 AND trash_id = ?2", [e.couple_id, trash_id])
                .ctx("restore couple")?;
        }
        tx.execute("DELETE FROM trash WHERE id = ?1", [trash_id]).ctx("restore")?;
        let summary =
            format!("trash entry {trash_id}: {} ({} files, {})", e.label, e.files, crate::human_bytes(e.bytes));
        audit_on(&tx, by, "trash.restore", Some(e.couple_id), &summary)?;
        lifecycle_event(&tx, &format!("restored {} in {}", e.label, e.couple), &[])?;
        tx.commit().ctx("commit restore")?;
        Ok(e)
    }

    fn purge(&self, trash_id: i64, by: &Actor) -> Result<Purged> {
        let tx = immediate(&self.conn).ctx("begin purge")?;
        let e = entry_on(&tx, trash_id)?;
        // Rows go in whatever order; their references are checked at commit.
        tx.pragma_update(None, "defer_foreign_keys", "ON").ctx("defer foreign keys")?;
        let mut purged = Purged::default();
        if e.kind == TrashKind::Couple {
            let c = e.couple_id;
            let ids = rows(&tx, "SELECT id FROM files WHERE couple_id = ?1", [c], |r| r.get(0), "list files")?;
            purged.files = delete_files(&tx, &ids)?;
            let sessions = "(SELECT id FROM import_sessions WHERE couple_id = ?1)";
            for sql in [
                format!("DELETE FROM import_items WHERE session_id IN {sessions}"),
                format!("UPDATE network_source_events SET session_id = NULL WHERE session_id IN {sessions}"),
                "DELETE FROM ingest_entries WHERE couple_id = ?1".to_string(),
                "DELETE FROM import_sessions WHERE couple_id = ?1".to_string(),
                "DELETE FROM network_sources WHERE couple_id = ?1".to_string(),
                "DELETE FROM couple_totals WHERE couple_id = ?1".to_string(),
                "DELETE FROM couple_aliases WHERE couple_id = ?1".to_string(),
            ] {
                tx.execute(&sql, [c]).ctx("purge couple")?;
            }
            purged.entries = tx.execute("DELETE FROM trash WHERE couple_id = ?1", [c]).ctx("purge couple")? as i64;
            purged.couples = tx.execute("DELETE FROM couples WHERE id = ?1", [c]).ctx("purge couple")? as i64;
        } else {
            let ids = rows(&tx, "SELECT id FROM files WHERE trash_id = ?1", [trash_id], |r| r.get(0), "list files")?;
            purged.files = delete_files(&tx, &ids)?;
            purged.entries = tx.execute("DELETE FROM trash WHERE id = ?1", [trash_id]).ctx("purge")? as i64;
        }
        let summary = format!(
            "trash entry {trash_id}: {} in {} ({} files, {}) purged",
            e.label,
            e.couple,
            purged.files,
            crate::human_bytes(e.bytes)
        );
        audit_on(&tx, by, "trash.purge", Some(e.couple_id), &summary)?;
        lifecycle_event(&tx, &format!("purged {} in {}", e.label, e.couple), &[])?;
        tx.commit().ctx("commit purge")?;
        Ok(purged)
    }

    fn garbage(&self, after: i64, limit: u32) -> Result<Vec<Garbage>> {
        rows(
            &self.conn,
            &format!(
                "SELECT b.id, b.hash, b.size FROM blobs b WHERE b.id > ?1 AND {} ORDER BY b.id LIMIT ?2",
                garbage_condition()
            ),
            params![after, limit],
            |r| Ok(Garbage { id: r.get(0)?, hash: r.get(1)?, size: r.get::<_, i64>(2)? as u64 }),
            "list garbage blobs",
        )
    }

    fn needed_hashes(&self, hashes: &[String]) -> Result<HashSet<String>> {
        needed_on(&self.conn, hashes)
    }

    fn forget_blobs(&self, hashes: &[String]) -> Result<Vec<String>> {
        let tx = immediate(&self.conn).ctx("begin forgetting blobs")?;
        let mut gone = Vec::new();
        {
            let sql = format!("DELETE FROM blobs AS b WHERE b.hash = ?1 AND {}", garbage_condition());
            let mut st = tx.prepare(&sql).ctx("forget blobs")?;
            for h in hashes {
                if st.execute([h]).ctx("forget blobs")? > 0 {
                    gone.push(h.clone());
                }
            }
        }
        tx.commit().ctx("commit forgetting blobs")?;
        Ok(gone)
    }

    fn remove_unneeded(&self, hashes: &[String], remove: &mut dyn FnMut(&str) -> Result<()>) -> Result<Vec<String>> {
        // The write lock, held while the check and the removals run: whatever would record a need for one of these
        // hashes waits for it. Nothing is written; the transaction rolls back when dropped.
        let tx = immediate(&self.conn).ctx("take the catalog's write lock")?;
        let needed = needed_on(&tx, hashes)?;
        let mut removed = Vec::new();
        for h in hashes.iter().filter(|h| !needed.contains(*h)) {
            remove(h)?;
            removed.push(h.clone());
        }
        drop(tx);
        Ok(removed)
    }
}

impl SqliteConn {
    fn couple_lock_held_here(&self, couple_id: i64) -> bool {
        lease::is_held(&self.couple_lock_path(couple_id)) == Some(true)
    }
}
