//! [`ReadCatalog`] on Postgres (a port of `sqlite/read.rs`): the same statements, with index-friendly shapes
//! (`COALESCE(camera_id, 0)` as the directory indexes key it, a row-value range over `blobs_verified`, a
//! LATERAL first-file lookup per blob for `.by-hash`). Optional filters are separate statements rather than
//! `$1 IS NULL OR ...`, so each gets a plan that uses its index.

use super::*;
use crate::catalog::ReadCatalog;

impl ReadCatalog for PgConn {
    fn schema_version(&self) -> Result<i64> {
        one(&mut *self.c()?, "SELECT version FROM schema_version", &[], "read schema version")
    }

    fn couples(&self) -> Result<Vec<Couple>> {
        rows(
            &mut *self.c()?,
            &format!("{COUPLE_SELECT} WHERE c.trash_id IS NULL ORDER BY c.folder_name"),
            &[],
            couple_from_row,
            "list couples",
        )
    }

    fn couple_folders(&self) -> Result<Vec<(i64, String)>> {
        rows(
            &mut *self.c()?,
            "SELECT id, folder_name FROM couples WHERE trash_id IS NULL",
            &[],
            |r| Ok((r.try_get(0)?, r.try_get(1)?)),
            "list couples",
        )
    }

    fn couple_by_folder(&self, folder_name: &str) -> Result<Couple> {
        opt_row(
            &mut *self.c()?,
            &format!("{COUPLE_SELECT} WHERE c.folder_name = $1 AND c.trash_id IS NULL"),
            &[&folder_name],
            couple_from_row,
            "find couple",
        )?
        .ok_or_else(|| Error::NoSuchCouple(folder_name.to_string()))
    }

    fn couples_on(&self, event_date: &str) -> Result<Vec<Couple>> {
        rows(
            &mut *self.c()?,
            &format!("{COUPLE_SELECT} WHERE c.event_date = $1 AND c.trash_id IS NULL ORDER BY c.folder_name"),
            &[&event_date],
            couple_from_row,
            "list couples of a date",
        )
    }

    fn couple_by_id(&self, id: i64) -> Result<Couple> {
        opt_row(&mut *self.c()?, &format!("{COUPLE_SELECT} WHERE c.id = $1"), &[&id], couple_from_row, "find couple")?
            .ok_or_else(|| Error::NoSuchCouple(format!("#{id}")))
    }

    fn cameras(&self) -> Result<Vec<Camera>> {
        cameras_on(&mut *self.c()?)
    }

    fn camera_listing(&self) -> Result<Vec<CameraListing>> {
        rows(
            &mut *self.c()?,
            &format!(
                "SELECT {CAMERA_COLUMNS}, COALESCE(k.files, 0) FROM cameras c
                   LEFT JOIN camera_totals k ON k.camera_id = c.id
                  WHERE c.merged_into IS NULL ORDER BY c.slug"
            ),
            &[],
            |r| Ok(CameraListing { camera: camera_from_row(r)?, file_count: r.try_get(9)? }),
            "list cameras",
        )
    }

    fn camera_by_slug(&self, slug: &str) -> Result<Camera> {
        opt_row(
            &mut *self.c()?,
            &format!("{CAMERA_SELECT} WHERE c.slug = $1"),
            &[&slug],
            camera_from_row,
            "find camera",
        )?
        .ok_or_else(|| Error::NoSuchCamera(slug.to_string()))
    }

    fn camera_by_id(&self, id: i64) -> Result<Option<Camera>> {
        opt_row(&mut *self.c()?, &format!("{CAMERA_SELECT} WHERE c.id = $1"), &[&id], camera_from_row, "find camera")
    }

    fn session(&self, id: i64) -> Result<Session> {
        opt_row(
            &mut *self.c()?,
            &format!("{SESSION_SELECT} WHERE s.id = $1"),
            &[&id],
            session_from_row,
            "find session",
        )?
        .ok_or(Error::NoSuchSession(id))
    }

    fn sessions(&self) -> Result<Vec<Session>> {
        rows(&mut *self.c()?, &format!("{SESSION_SELECT} ORDER BY s.id"), &[], session_from_row, "list sessions")
    }

    fn items(&self, session_id: i64) -> Result<Vec<Item>> {
        rows(
            &mut *self.c()?,
            &format!("SELECT {ITEM_COLUMNS} FROM import_items WHERE session_id = $1 ORDER BY id"),
            &[&session_id],
            item_from_row,
            "list items",
        )
    }

    fn item_errors(&self, session_id: i64, limit: u32) -> Result<Vec<(Vec<u8>, String)>> {
        rows(
            &mut *self.c()?,
            "SELECT rel_path, error FROM import_items WHERE session_id = $1 AND error IS NOT NULL ORDER BY id LIMIT $2",
            &[&session_id, &i64::from(limit)],
            |r| Ok((r.try_get(0)?, r.try_get(1)?)),
            "list item errors",
        )
    }

    fn session_sums(&self, session_id: i64) -> Result<Vec<SessionSum>> {
        rows(
            &mut *self.c()?,
            "SELECT i.rel_path, i.size, i.mtime_ns, i.hash, b.xxh64, b.xxh128
                 FROM import_items i JOIN blobs b ON b.hash = i.hash
                 WHERE i.session_id = $1 AND i.state IN ('done', 'duplicate') ORDER BY i.rel_path",
            &[&session_id],
            |r| {
                Ok(SessionSum {
                    rel_path: r.try_get(0)?,
                    size: r.try_get::<_, i64>(1)? as u64,
                    mtime_ns: r.try_get(2)?,
                    hash: r.try_get(3)?,
                    xxh64: r.try_get(4)?,
                    xxh128: r.try_get(5)?,
                })
            },
            "list a session's checksums",
        )
    }

    fn blob(&self, hash: &str) -> Result<Option<BlobRow>> {
        opt_row(
            &mut *self.c()?,
            &format!("SELECT {BLOB_COLUMNS} FROM blobs WHERE hash = $1"),
            &[&hash],
            blob_from_row,
            "find blob",
        )
    }

    fn blobs(&self, couple_id: Option<i64>) -> Result<Vec<BlobRow>> {
        let mut c = self.c()?;
        match couple_id {
            None => rows(
                &mut *c,
                &format!("SELECT {BLOB_COLUMNS} FROM blobs ORDER BY hash"),
                &[],
                blob_from_row,
                "list blobs",
            ),
            Some(id) => rows(
                &mut *c,
                &format!(
                    "SELECT {BLOB_COLUMNS} FROM blobs WHERE id IN
                       (SELECT blob_id FROM files WHERE couple_id = $1 AND trash_id IS NULL) ORDER BY hash"
                ),
                &[&id],
                blob_from_row,
                "list blobs",
            ),
        }
    }

    fn blobs_to_verify(
        &self,
        couple_id: Option<i64>,
        before: i64,
        after: VerifyCursor,
        limit: u32,
    ) -> Result<(Vec<BlobRow>, VerifyCursor)> {
        // In the order of the `blobs_verified` index, one range of it: Postgres seeks a row-value comparison on
        // the index's (expression, id) key, so the two ranges SQLite needs are one here.
        let couple =
            if couple_id.is_some() { "AND id IN (SELECT blob_id FROM files WHERE couple_id = $5)" } else { "" };
        let sql = format!(
            "SELECT {BLOB_COLUMNS}, id FROM blobs
              WHERE (COALESCE(verified_at, 0), id) > ($2, $3) AND COALESCE(verified_at, 0) < $1 {couple}
              ORDER BY COALESCE(verified_at, 0), id LIMIT $4"
        );
        let limit = limit as i64;
        let row = |r: &postgres::Row| Ok((blob_from_row(r)?, r.try_get::<_, i64>(6)?));
        let mut c = self.c()?;
        let page = match &couple_id {
            Some(id) => {
                rows(&mut *c, &sql, &[&before, &after.verified, &after.id, &limit, id], row, "list blobs to verify")?
            }
            None => rows(&mut *c, &sql, &[&before, &after.verified, &after.id, &limit], row, "list blobs to verify")?,
        };
        let next = page.last().map(|(b, id)| VerifyCursor { verified: b.verified_at.unwrap_or(0), id: *id });
        Ok((page.into_iter().map(|(b, _)| b).collect(), next.unwrap_or(after)))
    }

    fn blobs_to_verify_total(&self, couple_id: Option<i64>, before: i64) -> Result<(u64, u64)> {
        let f = |r: &postgres::Row| Ok((r.try_get::<_, i64>(0)? as u64, r.try_get::<_, i64>(1)? as u64));
        let mut c = self.c()?;
        let got = match couple_id {
            None => opt_row(
                &mut *c,
                "SELECT COUNT(*), COALESCE(SUM(size), 0)::BIGINT FROM blobs WHERE COALESCE(verified_at, 0) < $1",
                &[&before],
                f,
                "count blobs to verify",
            )?,
            Some(id) => opt_row(
                &mut *c,
                "SELECT COUNT(*), COALESCE(SUM(size), 0)::BIGINT FROM blobs WHERE COALESCE(verified_at, 0) < $1
                   AND id IN (SELECT blob_id FROM files WHERE couple_id = $2)",
                &[&before, &id],
                f,
                "count blobs to verify",
            )?,
        };
        Ok(got.unwrap_or((0, 0)))
    }

    fn known_blobs(&self, hashes: &[String]) -> Result<std::collections::HashSet<String>> {
        let mut out = std::collections::HashSet::new();
        if hashes.is_empty() {
            return Ok(out);
        }
        let mut c = self.c()?;
        for chunk in hashes.chunks(10_000) {
            out.extend(rows(
                &mut *c,
                "SELECT hash FROM blobs WHERE hash = ANY($1)",
                &[&chunk],
                |r| r.try_get::<_, String>(0),
                "find blobs",
            )?);
        }
        Ok(out)
    }

    fn scrub_runs(&self, limit: u32) -> Result<Vec<ScrubRun>> {
        rows(
            &mut *self.c()?,
            &format!("{SCRUB_SELECT} ORDER BY id DESC LIMIT $1"),
            &[&(limit as i64)],
            scrub_from_row,
            "list scrubs",
        )
    }

    fn last_scrub(&self, trigger: Option<&str>, complete: bool) -> Result<Option<ScrubRun>> {
        opt_row(
            &mut *self.c()?,
            &format!(
                "{SCRUB_SELECT} WHERE finished_at IS NOT NULL AND ($1::TEXT IS NULL OR trigger = $1)
                   AND (complete OR NOT $2) ORDER BY finished_at DESC, id DESC LIMIT 1"
            ),
            &[&trigger, &complete],
            scrub_from_row,
            "find last scrub",
        )
    }

    fn unhealthy_blobs(&self) -> Result<Vec<(String, String)>> {
        rows(
            &mut *self.c()?,
            "SELECT hash, health FROM blobs WHERE health <> 'ok' ORDER BY hash",
            &[],
            |r| Ok((r.try_get(0)?, r.try_get(1)?)),
            "list unhealthy blobs",
        )
    }

    fn any_unhealthy_blob(&self) -> Result<bool> {
        one(&mut *self.c()?, "SELECT EXISTS(SELECT 1 FROM blobs WHERE health <> 'ok')", &[], "look for unhealthy blobs")
    }

    fn unhealthy_blobs_first(&self, limit: u32) -> Result<(i64, Vec<(String, String)>)> {
        let mut c = self.c()?;
        let total = one(&mut *c, "SELECT COUNT(*) FROM blobs WHERE health <> 'ok'", &[], "count unhealthy blobs")?;
        if total == 0 || limit == 0 {
            return Ok((total, Vec::new()));
        }
        let first = rows(
            &mut *c,
            "SELECT hash, health FROM blobs WHERE health <> 'ok' ORDER BY hash LIMIT $1",
            &[&(limit as i64)],
            |r| Ok((r.try_get(0)?, r.try_get(1)?)),
            "list unhealthy blobs",
        )?;
        Ok((total, first))
    }

    fn blob_health(&self, hash: &str) -> Result<Option<String>> {
        blob_health_on(&mut *self.c()?, hash)
    }

    fn events_after(&self, after: i64, limit: u32) -> Result<Vec<ArchiveEvent>> {
        rows(
            &mut *self.c()?,
            "SELECT id, at, kind, blob_hash, file_id, session_id, message, detail FROM events WHERE id > $1
               ORDER BY id LIMIT $2",
            &[&after, &(limit as i64)],
            |r| {
                Ok(ArchiveEvent {
                    id: r.try_get(0)?,
                    at: r.try_get(1)?,
                    kind: r.try_get(2)?,
                    blob_hash: r.try_get(3)?,
                    file_id: r.try_get(4)?,
                    session_id: r.try_get(5)?,
                    message: r.try_get(6)?,
                    detail: r.try_get(7)?,
                })
            },
            "list events",
        )
    }

    fn last_event_id(&self) -> Result<i64> {
        one(&mut *self.c()?, "SELECT COALESCE(MAX(id), 0) FROM events", &[], "last event")
    }

    fn damaged_files(&self, couple_id: Option<i64>) -> Result<Vec<FileRow>> {
        // Through the partial index of salvaged files (a handful), never a scan of every file.
        let mut c = self.c()?;
        match couple_id {
            Some(id) => rows(
                &mut *c,
                &format!(
                    "{FILE_SELECT} WHERE f.bad_ranges IS NOT NULL AND f.trash_id IS NULL AND f.couple_id = $1
                      ORDER BY f.id"
                ),
                &[&id],
                file_from_row,
                "list damaged files",
            ),
            None => rows(
                &mut *c,
                &format!("{FILE_SELECT} WHERE f.bad_ranges IS NOT NULL AND f.trash_id IS NULL ORDER BY f.id"),
                &[],
                file_from_row,
                "list damaged files",
            ),
        }
    }

    fn files(&self, couple_id: Option<i64>) -> Result<Vec<FileRow>> {
        let order = "ORDER BY f.couple_id, f.footage_type, COALESCE(f.camera_id, 0), f.display_name";
        let mut c = self.c()?;
        match couple_id {
            Some(id) => rows(
                &mut *c,
                &format!("{FILE_SELECT} WHERE f.couple_id = $1 AND f.trash_id IS NULL {order}"),
                &[&id],
                file_from_row,
                "list files",
            ),
            None => rows(
                &mut *c,
                &format!("{FILE_SELECT} WHERE f.trash_id IS NULL {order}"),
                &[],
                file_from_row,
                "list files",
            ),
        }
    }

    fn files_of_blob(&self, hash: &str) -> Result<Vec<FileRow>> {
        rows(
            &mut *self.c()?,
            &format!("{FILE_SELECT} WHERE b.hash = $1 AND f.trash_id IS NULL"),
            &[&hash],
            file_from_row,
            "files of blob",
        )
    }

    fn files_of_blobs(&self, hashes: &[String]) -> Result<Vec<FileRow>> {
        let mut out = Vec::new();
        if hashes.is_empty() {
            return Ok(out);
        }
        let mut c = self.c()?;
        for chunk in hashes.chunks(10_000) {
            out.extend(rows(
                &mut *c,
                &format!("{FILE_SELECT} WHERE b.hash = ANY($1) AND f.trash_id IS NULL"),
                &[&chunk],
                file_from_row,
                "files of blobs",
            )?);
        }
        Ok(out)
    }

    fn file(&self, id: i64) -> Result<Option<FileRow>> {
        opt_row(
            &mut *self.c()?,
            &format!("{FILE_SELECT} WHERE f.id = $1 AND f.trash_id IS NULL"),
            &[&id],
            file_from_row,
            "find file",
        )
    }

    fn file_in_dir(
        &self,
        couple_id: i64,
        ft: FootageType,
        camera_id: Option<i64>,
        name: &[u8],
    ) -> Result<Option<FileRow>> {
        let sql = format!(
            "{FILE_SELECT} WHERE f.couple_id = $1 AND f.footage_type = $2 AND COALESCE(f.camera_id, 0) = $3
               AND f.display_name = $4 AND f.trash_id IS NULL"
        );
        Ok(self
            .cached_rows(&sql, &[&couple_id, &ft.as_str(), &camera_id.unwrap_or(0), &name], file_from_row, "find file")?
            .into_iter()
            .next())
    }

    fn sidecars_of(&self, file_id: i64) -> Result<Vec<FileRow>> {
        rows(
            &mut *self.c()?,
            &format!("{FILE_SELECT} WHERE f.sidecar_of = $1 AND f.trash_id IS NULL ORDER BY f.display_name"),
            &[&file_id],
            file_from_row,
            "list sidecars",
        )
    }

    fn files_after(&self, after: i64) -> Result<Vec<FileRow>> {
        rows(
            &mut *self.c()?,
            &format!("{FILE_SELECT} WHERE f.id > $1 AND f.trash_id IS NULL ORDER BY f.id"),
            &[&after],
            file_from_row,
            "new files",
        )
    }

    fn change_token(&self) -> Result<i64> {
        self.change_token_now()
    }

    fn wait_change(&self, timeout: std::time::Duration) -> Result<()> {
        self.wait_notification(timeout).map(|_| ())
    }

    fn changed_at(&self) -> Result<Option<SystemTime>> {
        Ok(None)
    }

    fn file_count(&self) -> Result<i64> {
        one(&mut *self.c()?, "SELECT COALESCE(SUM(files), 0)::BIGINT FROM couple_totals", &[], "count files")
    }

    fn newest_ids(&self) -> Result<(i64, i64)> {
        let got = opt_row(
            &mut *self.c()?,
            "SELECT (SELECT COALESCE(MAX(id), 0) FROM files), (SELECT COALESCE(MAX(id), 0) FROM blobs)",
            &[],
            |r| Ok((r.try_get(0)?, r.try_get(1)?)),
            "newest ids",
        )?;
        Ok(got.unwrap_or((0, 0)))
    }

    fn tree_couples(&self) -> Result<Vec<TreeCouple>> {
        rows(
            &mut *self.c()?,
            "SELECT c.id, c.folder_name, t.files, t.newest_import FROM couples c
               JOIN couple_totals t ON t.couple_id = c.id WHERE t.files > 0 AND c.trash_id IS NULL
              ORDER BY c.folder_name",
            &[],
            |r| {
                Ok(TreeCouple {
                    id: r.try_get(0)?,
                    folder_name: r.try_get(1)?,
                    files: r.try_get(2)?,
                    newest_import: r.try_get(3)?,
                })
            },
            "list the couple folders",
        )
    }

    fn tree_cameras(&self, couple_id: i64) -> Result<Vec<TreeCamera>> {
        // Grouped on the `files_dir_name` key; a group's camera_id is all NULL or one id, so MIN gives it.
        self.cached_rows(
            "SELECT footage_type, MIN(camera_id), COUNT(*), MAX(imported_at) FROM files
              WHERE couple_id = $1 AND trash_id IS NULL
              GROUP BY footage_type, COALESCE(camera_id, 0) ORDER BY footage_type, COALESCE(camera_id, 0)",
            &[&couple_id],
            |r| {
                let ft: &str = r.try_get(0)?;
                Ok(TreeCamera {
                    footage_type: FootageType::parse(ft).unwrap_or(FootageType::Modern),
                    camera_id: r.try_get(1)?,
                    files: r.try_get(2)?,
                    newest_import: r.try_get(3)?,
                })
            },
            "list the camera folders of a couple",
        )
    }

    fn files_in_dir(&self, couple_id: i64, ft: FootageType, camera_id: Option<i64>) -> Result<Vec<TreeFile>> {
        let sql = format!(
            "{TREE_FILE_SELECT} WHERE f.couple_id = $1 AND f.footage_type = $2 AND COALESCE(f.camera_id, 0) = $3
               AND f.trash_id IS NULL ORDER BY f.display_name"
        );
        self.cached_rows(
            &sql,
            &[&couple_id, &ft.as_str(), &camera_id.unwrap_or(0)],
            tree_file_from_row,
            "list a folder",
        )
    }

    fn hash_entries(&self, after: i64, limit: u32) -> Result<Vec<TreeFile>> {
        // Blobs first: a page walks blob ids, each finding its first live file through the files_blob_id index.
        let sql = format!(
            "SELECT {TREE_FILE_COLUMNS} FROM blobs b
               CROSS JOIN LATERAL (SELECT * FROM files f2 WHERE f2.blob_id = b.id AND f2.trash_id IS NULL
                                    ORDER BY f2.id LIMIT 1) f
              WHERE b.id > $1 ORDER BY b.id LIMIT $2"
        );
        self.cached_rows(&sql, &[&after, &(limit as i64)], tree_file_from_row, "list .by-hash")
    }

    fn audit_log(&self, couple_id: Option<i64>, limit: u32) -> Result<Vec<AuditEvent>> {
        let cols = "SELECT a.id, a.at, a.uid, a.action, a.couple_id, c.folder_name, a.summary
               FROM audit_log a LEFT JOIN couples c ON c.id = a.couple_id";
        let f = |r: &postgres::Row| {
            Ok(AuditEvent {
                id: r.try_get(0)?,
                at: r.try_get(1)?,
                uid: r.try_get::<_, i64>(2)? as u32,
                action: r.try_get(3)?,
                couple_id: r.try_get(4)?,
                couple: r.try_get(5)?,
                summary: r.try_get(6)?,
            })
        };
        let limit = limit as i64;
        let mut c = self.c()?;
        let mut events = match couple_id {
            Some(id) => rows(
                &mut *c,
                &format!("{cols} WHERE a.couple_id = $1 ORDER BY a.id DESC LIMIT $2"),
                &[&id, &limit],
                f,
                "read audit log",
            )?,
            None => rows(&mut *c, &format!("{cols} ORDER BY a.id DESC LIMIT $1"), &[&limit], f, "read audit log")?,
        };
        events.reverse();
        Ok(events)
    }
}

const SCRUB_SELECT: &str =
    "SELECT id, started_at, finished_at, trigger, blobs_checked, bytes_checked, damaged, missing,
    orphans, complete, error FROM scrub_runs";

fn scrub_from_row(r: &postgres::Row) -> std::result::Result<ScrubRun, postgres::Error> {
    Ok(ScrubRun {
        id: r.try_get(0)?,
        started_at: r.try_get(1)?,
        finished_at: r.try_get(2)?,
        trigger: r.try_get(3)?,
        blobs_checked: r.try_get(4)?,
        bytes_checked: r.try_get(5)?,
        damaged: r.try_get(6)?,
        missing: r.try_get(7)?,
        orphans: r.try_get(8)?,
        complete: r.try_get(9)?,
        error: r.try_get(10)?,
    })
}
