//! [`Trash`] on Postgres (a port of `sqlite/trash.rs`): removed couples, files and imports (rows marked with
//! their trash entry), restores, purges, and garbage blobs.
//!
//! A removal inserts a `trash` row and sets `trash_id` on the rows it takes (the couple too for a couple); the
//! triggers take those files out of `couple_totals` and `camera_totals`, and every query of the tree, the
//! listings and the duplicate checks skips them. Names stay taken, so a restore always fits. A purge deletes the
//! rows for good; the blobs are `gc`'s, once no row references them.
//!
//! Several machines share the database (READ COMMITTED), so what SQLite serialised with `BEGIN IMMEDIATE` is
//! serialised here with locks: every transaction that writes `trash` takes `LOCK TABLE trash IN SHARE ROW
//! EXCLUSIVE MODE` first (one removal, restore or purge at a time; entry ids are numbered under it), and locks
//! the rows it decides on (`FOR UPDATE`: the file, the session, the couple with its sources and files). A couple's
//! removal holds the couple's lease while it runs, so no import or `/ingest` commit of it starts meanwhile.
//! [`Trash::forget_blobs`] locks the blob rows that look like garbage, then deletes those that still are in a
//! later statement (which sees whatever committed while it waited; a file that would reference one waits for
//! the lock). [`Trash::remove_unneeded`] holds `import_items` and `ingest_entries` in SHARE mode while it checks
//! and removes: every record of a need (an item's hash, an entry's blob) waits for it.

use std::collections::HashSet;

use super::lease::PgLease;
use super::*;
use crate::catalog::Trash;

/// Statuses of a session that has ended: nothing it named is still on its way into the archive.
const ENDED: &str = "('completed', 'cancelled', 'failed')";

/// The columns of a [`TrashEntry`], in [`entry_from_row`]'s order, over `trash t` and `couples c`.
const ENTRY_SELECT: &str = "SELECT t.id, t.kind, t.couple_id, c.folder_name, t.session_id, t.label, t.files, t.bytes,
        t.trashed_at, t.purge_after, t.uid
     FROM trash t JOIN couples c ON c.id = t.couple_id";

fn entry_from_row(r: &Row) -> PgResult<TrashEntry> {
    let kind: String = r.try_get(1)?;
    Ok(TrashEntry {
        id: r.try_get(0)?,
        kind: TrashKind::parse(&kind).unwrap_or(TrashKind::File),
        couple_id: r.try_get(2)?,
        couple: r.try_get(3)?,
        session_id: r.try_get(4)?,
        label: r.try_get(5)?,
        files: r.try_get(6)?,
        bytes: r.try_get(7)?,
        trashed_at: r.try_get(8)?,
        purge_after: r.try_get(9)?,
        uid: r.try_get::<_, i64>(10)? as u32,
    })
}

fn entry_on(c: &mut impl GenericClient, id: i64) -> Result<TrashEntry> {
    opt_row(c, &format!("{ENTRY_SELECT} WHERE t.id = $1"), &[&id], entry_from_row, "find trash entry")?
        .ok_or_else(|| Error::NotFound(format!("no trash entry {id} (`nightfox trash list` shows them)")))
}

/// One writer of `trash` at a time, across machines (readers are not held up): taken first by every
/// transaction that adds, restores or purges an entry.
fn lock_trash(c: &mut impl GenericClient) -> Result<()> {
    c.batch_execute("LOCK TABLE trash IN SHARE ROW EXCLUSIVE MODE").ctx("lock the trash")
}

fn audit_on(c: &mut impl GenericClient, by: &Actor, action: &str, couple_id: Option<i64>, summary: &str) -> Result<()> {
    c.execute(
        "INSERT INTO audit_log (at, uid, action, couple_id, summary) VALUES ($1, $2, $3, $4, $5)",
        &[&by.at, &(by.uid as i64), &action, &couple_id, &summary],
    )
    .ctx("record audit event")?;
    Ok(())
}

/// A live file about to be trashed: its id, where it is shown, and its size.
struct Taken {
    id: i64,
    at: Placement,
    size: i64,
}

/// The live files that `filter` (a condition over `files f`, with `$1` bound to `key`) selects, locked.
fn live_files(c: &mut impl GenericClient, filter: &str, key: i64) -> Result<Vec<Taken>> {
    rows(
        c,
        &format!(
            "SELECT f.id, f.couple_id, f.footage_type, f.camera_id, f.display_name, b.size
               FROM files f JOIN blobs b ON b.id = f.blob_id WHERE f.trash_id IS NULL AND ({filter}) ORDER BY f.id
               FOR UPDATE OF f"
        ),
        &[&key],
        |r| {
            let ft: String = r.try_get(2)?;
            Ok(Taken {
                id: r.try_get(0)?,
                at: Placement {
                    couple_id: r.try_get(1)?,
                    footage_type: FootageType::parse(&ft).unwrap_or(FootageType::Modern),
                    camera_id: r.try_get(3)?,
                    name: r.try_get(4)?,
                },
                size: r.try_get(5)?,
            })
        },
        "list the files to remove",
    )
}

/// Inserts a trash entry and marks `files` with it; returns the entry's id. The caller holds [`lock_trash`].
#[allow(clippy::too_many_arguments)]
fn new_entry(
    c: &mut impl GenericClient,
    kind: TrashKind,
    couple_id: i64,
    session_id: Option<i64>,
    label: &str,
    files: &[Taken],
    purge_after: i64,
    by: &Actor,
) -> Result<i64> {
    let bytes: i64 = files.iter().map(|f| f.size).sum();
    // Entry ids are never reused (a restored or purged entry's row is gone): each removal logs one audit event in
    // its transaction, so their count is how many ids were ever handed out.
    let id: i64 = one(
        c,
        "SELECT GREATEST(COALESCE((SELECT MAX(id) FROM trash), 0),
                         (SELECT COUNT(*) FROM audit_log WHERE action IN ('file.remove', 'couple.remove', 'session.undo'))) + 1",
        &[],
        "number a trash entry",
    )?;
    c.execute(
        "INSERT INTO trash (id, kind, couple_id, session_id, label, files, bytes, trashed_at, purge_after, uid)
         VALUES ($10, $1, $2, $3, $4, $5, $6, $7, $8, $9)",
        &[
            &kind.as_str(),
            &couple_id,
            &session_id,
            &label,
            &(files.len() as i64),
            &bytes,
            &by.at,
            &purge_after,
            &(by.uid as i64),
            &id,
        ],
    )
    .ctx("add trash entry")?;
    let ids: Vec<i64> = files.iter().map(|f| f.id).collect();
    c.execute("UPDATE files SET trash_id = $1 WHERE id = ANY($2) AND trash_id IS NULL", &[&id, &ids])
        .ctx("move files to the trash")?;
    Ok(id)
}

fn gone_files(files: &[Taken]) -> Vec<Gone> {
    files.iter().map(|f| Gone::File { file_id: f.id, at: f.at.clone() }).collect()
}

/// The couple's folder and trash entry; `lock` takes its row `FOR UPDATE` (nothing new references it until the
/// caller commits).
fn folder_of(c: &mut impl GenericClient, couple_id: i64, lock: bool) -> Result<(String, Option<i64>)> {
    let sql = if lock {
        "SELECT folder_name, trash_id FROM couples WHERE id = $1 FOR UPDATE"
    } else {
        "SELECT folder_name, trash_id FROM couples WHERE id = $1"
    };
    opt_row(c, sql, &[&couple_id], |r| Ok((r.try_get(0)?, r.try_get(1)?)), "find couple")?
        .ok_or_else(|| Error::NoSuchCouple(format!("#{couple_id}")))
}

/// Which of `hashes` something may still need (see [`Trash::needed_hashes`]), read on `c` (inside the caller's
/// transaction when it holds one).
fn needed_on(c: &mut impl GenericClient, hashes: &[String]) -> Result<HashSet<String>> {
    let sql = format!(
        "SELECT hash FROM blobs WHERE hash = ANY($1)
         UNION SELECT i.hash FROM import_sessions s JOIN import_items i ON i.session_id = s.id
                WHERE s.status NOT IN {ENDED} AND i.hash = ANY($1)
         UNION SELECT blob_hash FROM ingest_entries WHERE blob_hash = ANY($1)"
    );
    let found = rows(c, &sql, &[&hashes], |r| r.try_get::<_, String>(0), "find needed blobs")?;
    Ok(found.into_iter().collect())
}

/// The condition under which a blob `b` is garbage: no file row (live or trashed), no item of a session that has
/// not ended, no ingest entry names it.
fn garbage_condition() -> String {
    format!(
        "NOT EXISTS (SELECT 1 FROM files f WHERE f.blob_id = b.id)
         AND NOT EXISTS (SELECT 1 FROM import_sessions s JOIN import_items i ON i.session_id = s.id
                          WHERE s.status NOT IN {ENDED} AND i.hash = b.hash)
         AND NOT EXISTS (SELECT 1 FROM ingest_entries e WHERE e.blob_hash = b.hash)"
    )
}

/// Deletes the file rows `ids` (sidecars first), with what references them: items forget the file, committed
/// ingest entries of these files leave the `/ingest` view, sidecars outside the set forget their clip. Returns
/// how many were deleted.
fn delete_files(c: &mut impl GenericClient, ids: &[i64]) -> Result<i64> {
    let p: &[&(dyn postgres::types::ToSql + Sync)] = &[&ids];
    c.execute("UPDATE import_items SET file_id = NULL WHERE file_id = ANY($1)", p).ctx("forget purged files")?;
    c.execute("DELETE FROM ingest_entries WHERE kind = 'file' AND file_id = ANY($1)", p).ctx("forget purged files")?;
    c.execute("UPDATE ingest_entries SET file_id = NULL WHERE file_id = ANY($1)", p).ctx("forget purged files")?;
    c.execute("UPDATE files SET sidecar_of = NULL WHERE sidecar_of = ANY($1) AND id <> ALL($1)", p)
        .ctx("forget purged clips")?;
    let mut n = c.execute("DELETE FROM files WHERE id = ANY($1) AND sidecar_of IS NOT NULL", p).ctx("purge files")?;
    n += c.execute("DELETE FROM files WHERE id = ANY($1)", p).ctx("purge files")?;
    Ok(n as i64)
}

impl Trash for PgConn {
    fn trash_file(&self, file_id: i64, label: &str, purge_after: i64, by: &Actor) -> Result<TrashEntry> {
        let mut c = self.c()?;
        let mut tx = c.transaction().ctx("begin removal")?;
        lock_trash(&mut tx)?;
        let row: Option<(i64, Option<i64>, Option<i64>)> = opt_row(
            &mut tx,
            "SELECT couple_id, sidecar_of, trash_id FROM files WHERE id = $1 FOR UPDATE",
            &[&file_id],
            |r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)),
            "find file",
        )?;
        let Some((couple_id, sidecar_of, None)) = row else {
            return Err(Error::NotFound(format!("no file #{file_id} in the archive (removed already?)")));
        };
        if let Some(clip) = sidecar_of {
            let name: Vec<u8> = opt_row(
                &mut tx,
                "SELECT display_name FROM files WHERE id = $1",
                &[&clip],
                |r| r.try_get(0),
                "find clip",
            )?
            .unwrap_or_default();
            return Err(Error::Invalid(format!(
                "{label} is a sidecar of {:?}: remove its clip (sidecars go with it)",
                String::from_utf8_lossy(&name)
            )));
        }
        let (folder, couple_trash) = folder_of(&mut tx, couple_id, false)?;
        if couple_trash.is_some() {
            return Err(Error::NotFound(format!("no file #{file_id} in the archive (its couple is in the trash)")));
        }
        let files = live_files(&mut tx, "f.id = $1 OR f.sidecar_of = $1", file_id)?;
        let id = new_entry(&mut tx, TrashKind::File, couple_id, None, label, &files, purge_after, by)?;
        let bytes: i64 = files.iter().map(|f| f.size).sum();
        let summary = format!("trash entry {id}: {label} ({} files, {})", files.len(), crate::human_bytes(bytes));
        audit_on(&mut tx, by, "file.remove", Some(couple_id), &summary)?;
        lifecycle_event(&mut tx, &format!("removed {label} from {folder}"), &gone_files(&files))?;
        tx.commit().ctx("commit removal")?;
        entry_on(&mut *c, id)
    }

    fn trash_couple(&self, couple_id: i64, purge_after: i64, by: &Actor) -> Result<TrashEntry> {
        // The couple's lease, taken before any row lock (an import holding it may be inside a finalize that
        // waits for the couple's row) and held until the removal commits; refused below, after the checks that
        // come first, when someone holds it.
        let lease = PgLease::try_take(self, couple_id)?;
        let mut c = self.c()?;
        let mut tx = c.transaction().ctx("begin removal")?;
        lock_trash(&mut tx)?;
        let (folder, trashed) = folder_of(&mut tx, couple_id, true)?;
        if trashed.is_some() {
            return Err(Error::NoSuchCouple(folder));
        }
        let open: Option<i64> = opt_row(
            &mut tx,
            &format!(
                "SELECT id FROM import_sessions WHERE couple_id = $1 AND status NOT IN {ENDED} ORDER BY id LIMIT 1"
            ),
            &[&couple_id],
            |r| r.try_get(0),
            "find unfinished session",
        )?;
        if let Some(s) = open {
            return Err(Error::Invalid(format!(
                "{folder} has an unfinished import (session {s}): let it finish (`nightfox resume {s}`) or end it \
                 (`nightfox session cancel {s}`) first"
            )));
        }
        // Every source of the couple, locked: none is enabled meanwhile.
        let sources: Vec<(i64, bool)> = rows(
            &mut tx,
            "SELECT id, enabled FROM network_sources WHERE couple_id = $1 ORDER BY id FOR UPDATE",
            &[&couple_id],
            |r| Ok((r.try_get(0)?, r.try_get(1)?)),
            "find sources",
        )?;
        if let Some((s, _)) = sources.iter().find(|(_, enabled)| *enabled) {
            return Err(Error::Invalid(format!(
                "network source {s} imports into {folder}: `nightfox source disable {s}` first"
            )));
        }
        if lease.is_none() {
            return Err(Error::Invalid(format!("{folder} is busy (an import or an /ingest commit): try again later")));
        }
        let files = live_files(&mut tx, "f.couple_id = $1", couple_id)?;
        let id = new_entry(&mut tx, TrashKind::Couple, couple_id, None, &folder, &files, purge_after, by)?;
        tx.execute("UPDATE couples SET trash_id = $1 WHERE id = $2", &[&id, &couple_id]).ctx("remove couple")?;
        let bytes: i64 = files.iter().map(|f| f.size).sum();
        let summary = format!("trash entry {id}: {folder} ({} files, {})", files.len(), crate::human_bytes(bytes));
        audit_on(&mut tx, by, "couple.remove", Some(couple_id), &summary)?;
        lifecycle_event(&mut tx, &format!("removed {folder}"), &[Gone::Couple { couple_id, folder: folder.clone() }])?;
        tx.commit().ctx("commit removal")?;
        drop(lease);
        entry_on(&mut *c, id)
    }

    fn trash_session(&self, session_id: i64, purge_after: i64, by: &Actor) -> Result<TrashEntry> {
        let mut c = self.c()?;
        let mut tx = c.transaction().ctx("begin removal")?;
        lock_trash(&mut tx)?;
        let (couple_id, status): (i64, String) = opt_row(
            &mut tx,
            "SELECT couple_id, status FROM import_sessions WHERE id = $1 FOR UPDATE",
            &[&session_id],
            |r| Ok((r.try_get(0)?, r.try_get(1)?)),
            "find session",
        )?
        .ok_or(Error::NoSuchSession(session_id))?;
        if !matches!(status.as_str(), "completed" | "cancelled" | "failed") {
            return Err(Error::Invalid(format!(
                "session {session_id} is {status}, not finished: let it finish or cancel it first"
            )));
        }
        let (folder, _) = folder_of(&mut tx, couple_id, false)?;
        let files = live_files(
            &mut tx,
            "f.session_id = $1 OR f.sidecar_of IN (SELECT id FROM files WHERE session_id = $1 AND trash_id IS NULL)",
            session_id,
        )?;
        if files.is_empty() {
            return Err(Error::Invalid(format!("session {session_id} added nothing that is still in the archive")));
        }
        let label = format!("session {session_id}");
        let id = new_entry(&mut tx, TrashKind::Session, couple_id, Some(session_id), &label, &files, purge_after, by)?;
        let bytes: i64 = files.iter().map(|f| f.size).sum();
        let summary = format!("trash entry {id}: {label} ({} files, {})", files.len(), crate::human_bytes(bytes));
        audit_on(&mut tx, by, "session.undo", Some(couple_id), &summary)?;
        lifecycle_event(&mut tx, &format!("undid {label} in {folder}"), &gone_files(&files))?;
        tx.commit().ctx("commit removal")?;
        entry_on(&mut *c, id)
    }

    fn trash(&self) -> Result<Vec<TrashEntry>> {
        rows(&mut *self.c()?, &format!("{ENTRY_SELECT} ORDER BY t.id"), &[], entry_from_row, "list the trash")
    }

    fn trash_entry(&self, id: i64) -> Result<TrashEntry> {
        entry_on(&mut *self.c()?, id)
    }

    fn restore(&self, trash_id: i64, by: &Actor) -> Result<TrashEntry> {
        let mut c = self.c()?;
        let mut tx = c.transaction().ctx("begin restore")?;
        lock_trash(&mut tx)?;
        let e = entry_on(&mut tx, trash_id)?;
        let (_, couple_trash) = folder_of(&mut tx, e.couple_id, false)?;
        if e.kind != TrashKind::Couple {
            if let Some(t) = couple_trash {
                return Err(Error::Invalid(format!(
                    "its couple {} is in the trash: `nightfox trash restore {t}` first",
                    e.couple
                )));
            }
        }
        tx.execute("UPDATE files SET trash_id = NULL WHERE trash_id = $1", &[&trash_id]).ctx("restore files")?;
        if e.kind == TrashKind::Couple {
            tx.execute(
                "UPDATE couples SET trash_id = NULL WHERE id = $1 AND trash_id = $2",
                &[&e.couple_id, &trash_id],
            )
            .ctx("restore couple")?;
        }
        tx.execute("DELETE FROM trash WHERE id = $1", &[&trash_id]).ctx("restore")?;
        let summary =
            format!("trash entry {trash_id}: {} ({} files, {})", e.label, e.files, crate::human_bytes(e.bytes));
        audit_on(&mut tx, by, "trash.restore", Some(e.couple_id), &summary)?;
        lifecycle_event(&mut tx, &format!("restored {} in {}", e.label, e.couple), &[])?;
        tx.commit().ctx("commit restore")?;
        Ok(e)
    }

    fn purge(&self, trash_id: i64, by: &Actor) -> Result<Purged> {
        let mut c = self.c()?;
        let mut tx = c.transaction().ctx("begin purge")?;
        lock_trash(&mut tx)?;
        let e = entry_on(&mut tx, trash_id)?;
        // Postgres checks the (not deferrable) foreign keys at each statement: rows go referencing ones first.
        let mut purged = Purged::default();
        if e.kind == TrashKind::Couple {
            let cid = e.couple_id;
            let ids: Vec<i64> =
                rows(&mut tx, "SELECT id FROM files WHERE couple_id = $1", &[&cid], |r| r.try_get(0), "list files")?;
            purged.files = delete_files(&mut tx, &ids)?;
            let sessions = "(SELECT id FROM import_sessions WHERE couple_id = $1)";
            for sql in [
                format!("DELETE FROM import_items WHERE session_id IN {sessions}"),
                format!("UPDATE network_source_events SET session_id = NULL WHERE session_id IN {sessions}"),
                "DELETE FROM ingest_entries WHERE couple_id = $1".to_string(),
            ] {
                tx.execute(&sql, &[&cid]).ctx("purge couple")?;
            }
            // Before the sessions: an entry names the session it undid.
            purged.entries = tx.execute("DELETE FROM trash WHERE couple_id = $1", &[&cid]).ctx("purge couple")? as i64;
            for sql in [
                "DELETE FROM import_sessions WHERE couple_id = $1",
                "DELETE FROM network_sources WHERE couple_id = $1",
                "DELETE FROM couple_totals WHERE couple_id = $1",
                "DELETE FROM couple_aliases WHERE couple_id = $1",
            ] {
                tx.execute(sql, &[&cid]).ctx("purge couple")?;
            }
            purged.couples = tx.execute("DELETE FROM couples WHERE id = $1", &[&cid]).ctx("purge couple")? as i64;
        } else {
            let ids: Vec<i64> = rows(
                &mut tx,
                "SELECT id FROM files WHERE trash_id = $1",
                &[&trash_id],
                |r| r.try_get(0),
                "list files",
            )?;
            purged.files = delete_files(&mut tx, &ids)?;
            purged.entries = tx.execute("DELETE FROM trash WHERE id = $1", &[&trash_id]).ctx("purge")? as i64;
        }
        let summary = format!(
            "trash entry {trash_id}: {} in {} ({} files, {}) purged",
            e.label,
            e.couple,
            purged.files,
            crate::human_bytes(e.bytes)
        );
        audit_on(&mut tx, by, "trash.purge", Some(e.couple_id), &summary)?;
        lifecycle_event(&mut tx, &format!("purged {} in {}", e.label, e.couple), &[])?;
        tx.commit().ctx("commit purge")?;
        Ok(purged)
    }

    fn garbage(&self, after: i64, limit: u32) -> Result<Vec<Garbage>> {
        rows(
            &mut *self.c()?,
            &format!(
                "SELECT b.id, b.hash, b.size FROM blobs b WHERE b.id > $1 AND {} ORDER BY b.id LIMIT $2",
                garbage_condition()
            ),
            &[&after, &(limit as i64)],
            |r| Ok(Garbage { id: r.try_get(0)?, hash: r.try_get(1)?, size: r.try_get::<_, i64>(2)? as u64 }),
            "list garbage blobs",
        )
    }

    fn needed_hashes(&self, hashes: &[String]) -> Result<HashSet<String>> {
        needed_on(&mut *self.c()?, hashes)
    }

    fn forget_blobs(&self, hashes: &[String]) -> Result<Vec<String>> {
        let mut c = self.c()?;
        let mut tx = c.transaction().ctx("begin forgetting blobs")?;
        // Lock the rows that look like garbage now: a file that would reference one waits for this transaction
        // (and one that was about to commit is waited for). Then delete those still garbage, in a statement that
        // sees whatever committed while the locks were taken.
        tx.execute(
            &format!(
                "SELECT b.id FROM blobs b WHERE b.hash = ANY($1) AND {} ORDER BY b.id FOR UPDATE",
                garbage_condition()
            ),
            &[&hashes],
        )
        .ctx("lock garbage blobs")?;
        let deleted = rows(
            &mut tx,
            &format!("DELETE FROM blobs AS b WHERE b.hash = ANY($1) AND {} RETURNING b.hash", garbage_condition()),
            &[&hashes],
            |r| r.try_get::<_, String>(0),
            "forget blobs",
        )?;
        tx.commit().ctx("commit forgetting blobs")?;
        // In the order asked, each once.
        let mut deleted: HashSet<String> = deleted.into_iter().collect();
        Ok(hashes.iter().filter(|h| deleted.remove(*h)).cloned().collect())
    }

    fn remove_unneeded(&self, hashes: &[String], remove: &mut dyn FnMut(&str) -> Result<()>) -> Result<Vec<String>> {
        // The tables where a need is recorded, held in SHARE mode while the check and the removals run: an item's
        // hash or an entry's blob being recorded (an import records it before it lands or relies on a blob, and a
        // blob row is only added after) waits for this transaction, or committed before the check and is seen.
        // Nothing is written; the transaction rolls back when dropped.
        let mut c = self.c()?;
        let mut tx = c.transaction().ctx("take the catalog's write lock")?;
        tx.batch_execute("LOCK TABLE ingest_entries, import_items IN SHARE MODE")
            .ctx("take the catalog's write lock")?;
        let needed = needed_on(&mut tx, hashes)?;
        let mut removed = Vec::new();
        for h in hashes.iter().filter(|h| !needed.contains(*h)) {
            remove(h)?;
            removed.push(h.clone());
        }
        drop(tx);
        Ok(removed)
    }
}
