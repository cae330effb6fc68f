//! [`ReadCatalog`] on SQLite.

use std::time::SystemTime;

use rusqlite::{params, OptionalExtension};

use super::*;
use crate::catalog::ReadCatalog;

impl ReadCatalog for SqliteConn {
    fn schema_version(&self) -> Result<i64> {
        self.conn.pragma_query_value(None, "user_version", |r| r.get(0)).ctx("read schema version")
    }

    fn couples(&self) -> Result<Vec<Couple>> {
        rows(
            &self.conn,
            &format!("{} WHERE c.trash_id IS NULL ORDER BY c.folder_name", COUPLE_SELECT),
            [],
            couple_from_row,
            "list couples",
        )
    }

    fn couple_folders(&self) -> Result<Vec<(i64, String)>> {
        rows(
            &self.conn,
            "SELECT id, folder_name FROM couples WHERE trash_id IS NULL",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
            "list couples",
        )
    }

    fn couple_by_folder(&self, folder_name: &str) -> Result<Couple> {
        self.conn
            .query_row(
                &format!("{} WHERE c.folder_name = ?1 AND c.trash_id IS NULL", COUPLE_SELECT),
                [folder_name],
                couple_from_row,
            )
            .optional()
            .ctx("find couple")?
            .ok_or_else(|| Error::NoSuchCouple(folder_name.to_string()))
    }

    fn couples_on(&self, event_date: &str) -> Result<Vec<Couple>> {
        rows(
            &self.conn,
            &format!("{} WHERE c.event_date = ?1 AND c.trash_id IS NULL ORDER BY c.folder_name", COUPLE_SELECT),
            [event_date],
            couple_from_row,
            "list couples of a date",
        )
    }

    fn couple_by_id(&self, id: i64) -> Result<Couple> {
        self.conn
            .query_row(&format!("{} WHERE c.id = ?1", COUPLE_SELECT), [id], couple_from_row)
            .optional()
            .ctx("find couple")?
            .ok_or_else(|| Error::NoSuchCouple(format!("#{id}")))
    }

    fn cameras(&self) -> Result<Vec<Camera>> {
        cameras_on(&self.conn)
    }

    fn camera_listing(&self) -> Result<Vec<CameraListing>> {
        rows(
            &self.conn,
            concat!(
                "SELECT ",
                camera_columns!(),
                ", IFNULL(k.files, 0) FROM cameras c LEFT JOIN camera_totals k ON k.camera_id = c.id
                   WHERE c.merged_into IS NULL ORDER BY c.slug"
            ),
            [],
            |r| Ok(CameraListing { camera: camera_from_row(r)?, file_count: r.get(9)? }),
            "list cameras",
        )
    }

    fn camera_by_slug(&self, slug: &str) -> Result<Camera> {
        self.conn
            .query_row(&format!("{} WHERE c.slug = ?1", CAMERA_SELECT), [slug], camera_from_row)
            .optional()
            .ctx("find camera")?
            .ok_or_else(|| Error::NoSuchCamera(slug.to_string()))
    }

    fn camera_by_id(&self, id: i64) -> Result<Option<Camera>> {
        self.conn
            .query_row(&format!("{CAMERA_SELECT} WHERE c.id = ?1"), [id], camera_from_row)
            .optional()
            .ctx("find camera")
    }

    fn session(&self, id: i64) -> Result<Session> {
        self.conn
            .query_row(&format!("{} WHERE s.id = ?1", SESSION_SELECT), [id], session_from_row)
            .optional()
            .ctx("find session")?
            .ok_or(Error::NoSuchSession(id))
    }

    fn sessions(&self) -> Result<Vec<Session>> {
        rows(&self.conn, &format!("{} ORDER BY s.id", SESSION_SELECT), [], session_from_row, "list sessions")
    }

    fn items(&self, session_id: i64) -> Result<Vec<Item>> {
        rows(
            &self.conn,
            "SELECT id, session_id, path, rel_path, size, mtime_ns, state, hash, sidecar_of, file_id, error,
                    bad_ranges, resume_offset, healed
                 FROM import_items WHERE session_id = ?1 ORDER BY id",
            [session_id],
            item_from_row,
            "list items",
        )
    }

    fn item_errors(&self, session_id: i64, limit: u32) -> Result<Vec<(Vec<u8>, String)>> {
        rows(
            &self.conn,
            "SELECT rel_path, error FROM import_items WHERE session_id = ?1 AND error IS NOT NULL ORDER BY id LIMIT ?2",
            params![session_id, limit],
            |r| Ok((r.get(0)?, r.get(1)?)),
            "list item errors",
        )
    }

    fn session_sums(&self, session_id: i64) -> Result<Vec<SessionSum>> {
        rows(
            &self.conn,
            "SELECT i.rel_path, i.size, i.mtime_ns, i.hash, b.xxh64, b.xxh128
                 FROM import_items i JOIN blobs b ON b.hash = i.hash
                 WHERE i.session_id = ?1 AND i.state IN ('done', 'duplicate') ORDER BY i.rel_path",
            [session_id],
            |r| {
                Ok(SessionSum {
                    rel_path: r.get(0)?,
                    size: r.get::<_, i64>(1)? as u64,
                    mtime_ns: r.get(2)?,
                    hash: r.get(3)?,
                    xxh64: r.get(4)?,
                    xxh128: r.get(5)?,
                })
            },
            "list a session's checksums",
        )
    }

    fn blob(&self, hash: &str) -> Result<Option<BlobRow>> {
        self.conn
            .query_row(&format!("SELECT {BLOB_COLUMNS} FROM blobs WHERE hash = ?1"), [hash], blob_from_row)
            .optional()
            .ctx("find blob")
    }

    fn blobs(&self, couple_id: Option<i64>) -> Result<Vec<BlobRow>> {
        let sql = match couple_id {
            None => format!("SELECT {BLOB_COLUMNS} FROM blobs WHERE ?1 IS NULL ORDER BY hash"),
            Some(_) => format!(
                "SELECT {BLOB_COLUMNS} FROM blobs WHERE id IN
                   (SELECT blob_id FROM files WHERE couple_id = ?1 AND trash_id IS NULL) ORDER BY hash"
            ),
        };
        rows(&self.conn, &sql, [couple_id], blob_from_row, "list blobs")
    }

    fn blobs_to_verify(
        &self,
        couple_id: Option<i64>,
        before: i64,
        after: VerifyCursor,
        limit: u32,
    ) -> Result<(Vec<BlobRow>, VerifyCursor)> {
        // In the order of the `blobs_verified` index, as two ranges of it that SQLite seeks (a row-value
        // comparison on an expression index it would scan from the start): the rest of the cursor's key, by id,
        // then the keys after it.
        let couple = if couple_id.is_some() {
            "AND id IN (SELECT blob_id FROM files WHERE couple_id = ?1)"
        } else {
            "AND ?1 IS NULL"
        };
        let cols = format!("SELECT {BLOB_COLUMNS}, id FROM blobs");
        let same = format!(
            "{cols} WHERE IFNULL(verified_at, 0) = ?3 AND id > ?4 AND IFNULL(verified_at, 0) < ?2 {couple}
              ORDER BY id LIMIT ?5"
        );
        let later = format!(
            "{cols} WHERE IFNULL(verified_at, 0) > ?3 AND IFNULL(verified_at, 0) < ?2 AND ?4 IS NOT NULL {couple}
              ORDER BY IFNULL(verified_at, 0), id LIMIT ?5"
        );
        let row = |r: &rusqlite::Row| Ok((blob_from_row(r)?, r.get::<_, i64>(6)?));
        let mut page = rows(
            &self.conn,
            &same,
            params![couple_id, before, after.verified, after.id, limit],
            row,
            "list blobs to verify",
        )?;
        let left = limit.saturating_sub(page.len() as u32);
        if left > 0 {
            page.extend(rows(
                &self.conn,
                &later,
                params![couple_id, before, after.verified, after.id, left],
                row,
                "list blobs to verify",
            )?);
        }
        let next = page.last().map(|(b, id)| VerifyCursor { verified: b.verified_at.unwrap_or(0), id: *id });
        Ok((page.into_iter().map(|(b, _)| b).collect(), next.unwrap_or(after)))
    }

    fn blobs_to_verify_total(&self, couple_id: Option<i64>, before: i64) -> Result<(u64, u64)> {
        let sql = match couple_id {
            None => "SELECT COUNT(*), IFNULL(SUM(size), 0) FROM blobs WHERE IFNULL(verified_at, 0) < ?2 AND ?1 IS NULL",
            Some(_) => {
                "SELECT COUNT(*), IFNULL(SUM(size), 0) FROM blobs WHERE IFNULL(verified_at, 0) < ?2
                   AND id IN (SELECT blob_id FROM files WHERE couple_id = ?1)"
            }
        };
        self.conn
            .query_row(sql, params![couple_id, before], |r| {
                Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64))
            })
            .ctx("count blobs to verify")
    }

    fn known_blobs(&self, hashes: &[String]) -> Result<std::collections::HashSet<String>> {
        let mut out = std::collections::HashSet::new();
        for chunk in hashes.chunks(500) {
            let marks = vec!["?"; chunk.len()].join(",");
            let sql = format!("SELECT hash FROM blobs WHERE hash IN ({marks})");
            out.extend(rows(&self.conn, &sql, rusqlite::params_from_iter(chunk), |r| r.get(0), "find blobs")?);
        }
        Ok(out)
    }

    fn scrub_runs(&self, limit: u32) -> Result<Vec<ScrubRun>> {
        rows(&self.conn, &format!("{SCRUB_SELECT} ORDER BY id DESC LIMIT ?1"), [limit], scrub_from_row, "list scrubs")
    }

    fn last_scrub(&self, trigger: Option<&str>, complete: bool) -> Result<Option<ScrubRun>> {
        self.conn
            .query_row(
                &format!(
                    "{SCRUB_SELECT} WHERE finished_at IS NOT NULL AND (?1 IS NULL OR trigger = ?1)
                       AND (complete = 1 OR NOT ?2) ORDER BY finished_at DESC, id DESC LIMIT 1"
                ),
                params![trigger, complete],
                scrub_from_row,
            )
            .optional()
            .ctx("find last scrub")
    }

    fn unhealthy_blobs(&self) -> Result<Vec<(String, String)>> {
        rows(
            &self.conn,
            "SELECT hash, health FROM blobs WHERE health <> 'ok' ORDER BY hash",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
            "list unhealthy blobs",
        )
    }

    fn any_unhealthy_blob(&self) -> Result<bool> {
        self.conn
            .query_row("SELECT EXISTS(SELECT 1 FROM blobs WHERE health <> 'ok')", [], |r| r.get(0))
            .ctx("look for unhealthy blobs")
    }

    fn unhealthy_blobs_first(&self, limit: u32) -> Result<(i64, Vec<(String, String)>)> {
        let total = self
            .conn
            .query_row("SELECT COUNT(*) FROM blobs WHERE health <> 'ok'", [], |r| r.get(0))
            .ctx("count unhealthy blobs")?;
        if total == 0 || limit == 0 {
            return Ok((total, Vec::new()));
        }
        // Few unhealthy blobs: found through their partial index and sorted (`+hash`), not by a walk of every
        // blob in hash order (seconds on a cold catalog of a million). Many: the walk finds the first ones at
        // once, where the partial index would fetch and sort them all (seconds again).
        let sql = if total <= 1000 {
            "SELECT hash, health FROM blobs WHERE health <> 'ok' ORDER BY +hash LIMIT ?1"
        } else {
            "SELECT hash, health FROM blobs WHERE health <> 'ok' ORDER BY hash LIMIT ?1"
        };
        let first = rows(&self.conn, sql, [limit], |r| Ok((r.get(0)?, r.get(1)?)), "list unhealthy blobs")?;
        Ok((total, first))
    }

    fn blob_health(&self, hash: &str) -> Result<Option<String>> {
        blob_health_on(&self.conn, hash)
    }

    fn events_after(&self, after: i64, limit: u32) -> Result<Vec<ArchiveEvent>> {
        rows(
            &self.conn,
            "SELECT id, at, kind, blob_hash, file_id, session_id, message, detail FROM events WHERE id > ?1
               ORDER BY id LIMIT ?2",
            params![after, limit],
            |r| {
                Ok(ArchiveEvent {
                    id: r.get(0)?,
                    at: r.get(1)?,
                    kind: r.get(2)?,
                    blob_hash: r.get(3)?,
                    file_id: r.get(4)?,
                    session_id: r.get(5)?,
                    message: r.get(6)?,
                    detail: r.get(7)?,
                })
            },
            "list events",
        )
    }

    fn last_event_id(&self) -> Result<i64> {
        self.conn.query_row("SELECT IFNULL(MAX(id), 0) FROM events", [], |r| r.get(0)).ctx("last event")
    }

    fn damaged_files(&self, couple_id: Option<i64>) -> Result<Vec<FileRow>> {
        // Through the partial index of salvaged files (a handful), never a scan of every file.
        let sql = format!(
            "{} WHERE f.bad_ranges IS NOT NULL AND f.trash_id IS NULL AND f.couple_id {} ORDER BY f.id",
            FILE_SELECT.replace("FROM files f", "FROM files f INDEXED BY files_damaged"),
            if couple_id.is_some() { "= ?1" } else { "IS NOT ?1" }
        );
        rows(&self.conn, &sql, [couple_id], file_from_row, "list damaged files")
    }

    fn files(&self, couple_id: Option<i64>) -> Result<Vec<FileRow>> {
        let sql = format!(
            "{} WHERE (?1 IS NULL OR f.couple_id = ?1) AND f.trash_id IS NULL
             ORDER BY f.couple_id, f.footage_type, IFNULL(f.camera_id, 0), f.display_name",
            FILE_SELECT
        );
        rows(&self.conn, &sql, [couple_id], file_from_row, "list files")
    }

    fn files_of_blob(&self, hash: &str) -> Result<Vec<FileRow>> {
        rows(
            &self.conn,
            &format!("{} WHERE b.hash = ?1 AND f.trash_id IS NULL", FILE_SELECT),
            [hash],
            file_from_row,
            "files of blob",
        )
    }

    fn files_of_blobs(&self, hashes: &[String]) -> Result<Vec<FileRow>> {
        let mut out = Vec::new();
        for chunk in hashes.chunks(500) {
            let marks = vec!["?"; chunk.len()].join(",");
            let sql = format!("{} WHERE b.hash IN ({marks}) AND f.trash_id IS NULL", FILE_SELECT);
            out.extend(rows(&self.conn, &sql, rusqlite::params_from_iter(chunk), file_from_row, "files of blobs")?);
        }
        Ok(out)
    }

    fn file(&self, id: i64) -> Result<Option<FileRow>> {
        self.conn
            .query_row(&format!("{} WHERE f.id = ?1 AND f.trash_id IS NULL", FILE_SELECT), [id], file_from_row)
            .optional()
            .ctx("find file")
    }

    fn file_in_dir(
        &self,
        couple_id: i64,
        ft: FootageType,
        camera_id: Option<i64>,
        name: &[u8],
    ) -> Result<Option<FileRow>> {
        let sql = format!(
            "{} WHERE f.couple_id = ?1 AND f.footage_type = ?2 AND IFNULL(f.camera_id, 0) = ?3 AND f.display_name = ?4
               AND f.trash_id IS NULL",
            FILE_SELECT
        );
        self.conn
            .query_row(&sql, params![couple_id, ft.as_str(), camera_id.unwrap_or(0), name], file_from_row)
            .optional()
            .ctx("find file")
    }

    fn sidecars_of(&self, file_id: i64) -> Result<Vec<FileRow>> {
        rows(
            &self.conn,
            &format!("{} WHERE f.sidecar_of = ?1 AND f.trash_id IS NULL ORDER BY f.display_name", FILE_SELECT),
            [file_id],
            file_from_row,
            "list sidecars",
        )
    }

    fn files_after(&self, after: i64) -> Result<Vec<FileRow>> {
        rows(
            &self.conn,
            &format!("{} WHERE f.id > ?1 AND f.trash_id IS NULL ORDER BY f.id", FILE_SELECT),
            [after],
            file_from_row,
            "new files",
        )
    }

    fn change_token(&self) -> Result<i64> {
        self.conn.pragma_query_value(None, "data_version", |r| r.get(0)).ctx("data version")
    }

    fn changed_at(&self) -> Result<Option<SystemTime>> {
        Ok(std::fs::metadata(&self.path).ok().and_then(|m| m.modified().ok()))
    }

    fn file_count(&self) -> Result<i64> {
        self.conn.query_row("SELECT IFNULL(SUM(files), 0) FROM couple_totals", [], |r| r.get(0)).ctx("count files")
    }

    fn newest_ids(&self) -> Result<(i64, i64)> {
        self.conn
            .query_row(
                "SELECT (SELECT IFNULL(MAX(id), 0) FROM files), (SELECT IFNULL(MAX(id), 0) FROM blobs)",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .ctx("newest ids")
    }

    fn tree_couples(&self) -> Result<Vec<TreeCouple>> {
        rows(
            &self.conn,
            "SELECT c.id, c.folder_name, t.files, t.newest_import FROM couples c
               JOIN couple_totals t ON t.couple_id = c.id WHERE t.files > 0 AND c.trash_id IS NULL
              ORDER BY c.folder_name",
            [],
            |r| Ok(TreeCouple { id: r.get(0)?, folder_name: r.get(1)?, files: r.get(2)?, newest_import: r.get(3)? }),
            "list the couple folders",
        )
    }

    fn tree_cameras(&self, couple_id: i64) -> Result<Vec<TreeCamera>> {
        rows(
            &self.conn,
            "SELECT footage_type, camera_id, COUNT(*), MAX(imported_at) FROM files WHERE couple_id = ?1 AND trash_id IS NULL
               GROUP BY footage_type, IFNULL(camera_id, 0) ORDER BY footage_type, IFNULL(camera_id, 0)",
            [couple_id],
            |r| {
                let ft: String = r.get(0)?;
                Ok(TreeCamera {
                    footage_type: FootageType::parse(&ft).unwrap_or(FootageType::Modern),
                    camera_id: r.get(1)?,
                    files: r.get(2)?,
                    newest_import: r.get(3)?,
                })
            },
            "list the camera folders of a couple",
        )
    }

    fn files_in_dir(&self, couple_id: i64, ft: FootageType, camera_id: Option<i64>) -> Result<Vec<TreeFile>> {
        let sql = format!(
            "{} WHERE f.couple_id = ?1 AND f.footage_type = ?2 AND IFNULL(f.camera_id, 0) = ?3 AND f.trash_id IS NULL
             ORDER BY f.display_name",
            TREE_FILE_SELECT
        );
        let p = params![couple_id, ft.as_str(), camera_id.unwrap_or(0)];
        rows(&self.conn, &sql, p, tree_file_from_row, "list a folder")
    }

    fn hash_entries(&self, after: i64, limit: u32) -> Result<Vec<TreeFile>> {
        // Blobs first (CROSS JOIN keeps SQLite's loop order): a page walks blob ids, each finding its first file
        // through the files_blob_id index.
        let sql = concat!(
            "SELECT ",
            tree_file_columns!(),
            " FROM blobs b CROSS JOIN files f
             WHERE b.id > ?1 AND f.id = (SELECT MIN(f2.id) FROM files f2 WHERE f2.blob_id = b.id AND f2.trash_id IS NULL)
             ORDER BY b.id LIMIT ?2"
        );
        rows(&self.conn, sql, params![after, limit], tree_file_from_row, "list .by-hash")
    }

    fn audit_log(&self, couple_id: Option<i64>, limit: u32) -> Result<Vec<AuditEvent>> {
        let mut events = rows(
            &self.conn,
            "SELECT a.id, a.at, a.uid, a.action, a.couple_id, c.folder_name, a.summary
               FROM audit_log a LEFT JOIN couples c ON c.id = a.couple_id
              WHERE ?1 IS NULL OR a.couple_id = ?1 ORDER BY a.id DESC LIMIT ?2",
            params![couple_id, limit],
            |r| {
                Ok(AuditEvent {
                    id: r.get(0)?,
                    at: r.get(1)?,
                    uid: r.get(2)?,
                    action: r.get(3)?,
                    couple_id: r.get(4)?,
                    couple: r.get(5)?,
                    summary: r.get(6)?,
                })
            },
            "read audit log",
        )?;
        events.reverse();
        Ok(events)
    }
}

const SCRUB_SELECT: &str =
    "SELECT id, started_at, finished_at, trigger, blobs_checked, bytes_checked, damaged, missing,
    orphans, complete, error FROM scrub_runs";

fn scrub_from_row(r: &rusqlite::Row) -> rusqlite::Result<ScrubRun> {
    Ok(ScrubRun {
        id: r.get(0)?,
        started_at: r.get(1)?,
        finished_at: r.get(2)?,
        trigger: r.get(3)?,
        blobs_checked: r.get(4)?,
        bytes_checked: r.get(5)?,
        damaged: r.get(6)?,
        missing: r.get(7)?,
        orphans: r.get(8)?,
        complete: r.get(9)?,
        error: r.get(10)?,
    })
}
