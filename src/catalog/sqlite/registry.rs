//! [`Registry`] on SQLite, with the online backup.

use rusqlite::{params, OptionalExtension};

use super::*;
use crate::catalog::Registry;

impl Registry for SqliteConn {
    fn add_couple(&self, display_name: &str, event_date: &str, folder_name: &str) -> Result<i64> {
        self.conn
            .execute(
                "INSERT INTO couples (display_name, event_date, folder_name, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![display_name, event_date, folder_name, now()],
            )
            .ctx("add couple")?;
        Ok(self.conn.last_insert_rowid())
    }

    fn folder_name_taken(&self, folder_name: &str) -> Result<bool> {
        self.conn
            .query_row(
                "SELECT EXISTS(SELECT 1 FROM couples WHERE folder_name = ?1)
                     OR EXISTS(SELECT 1 FROM couple_aliases WHERE folder_name = ?1)",
                [folder_name],
                |r| r.get(0),
            )
            .ctx("check folder name")
    }

    fn add_camera(&self, c: &NewCamera) -> Result<i64> {
        insert_camera(&self.conn, c)
    }

    fn camera_slug_taken(&self, slug: &str) -> Result<bool> {
        slug_taken(&self.conn, slug)
    }

    fn rename_couple(&self, couple_id: i64, display_name: &str, event_date: &str, by: &Actor) -> Result<()> {
        let tx = immediate(&self.conn).ctx("begin couple rename")?;
        let (old_name, old_date): (String, String) = tx
            .query_row("SELECT display_name, event_date FROM couples WHERE id = ?1", [couple_id], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()
            .ctx("read couple")?
            .ok_or_else(|| Error::NotFound(format!("couple {couple_id}")))?;
        tx.execute(
            "UPDATE couples SET display_name = ?2, event_date = ?3 WHERE id = ?1",
            params![couple_id, display_name, event_date],
        )
        .ctx("rename couple")?;
        let summary = format!("{old_name:?} ({old_date}) -> {display_name:?} ({event_date})");
        audit_on(&tx, by, "couple.rename", Some(couple_id), &summary)?;
        tx.commit().ctx("commit couple rename")
    }

    fn rename_camera(&self, camera_id: i64, name: &str, by: &Actor) -> Result<()> {
        let tx = immediate(&self.conn).ctx("begin camera rename")?;
        let (slug, old): (String, String) = tx
            .query_row("SELECT slug, name FROM cameras WHERE id = ?1", [camera_id], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()
            .ctx("read camera")?
            .ok_or_else(|| Error::NotFound(format!("camera {camera_id}")))?;
        tx.execute("UPDATE cameras SET name = ?2 WHERE id = ?1", params![camera_id, name]).ctx("rename camera")?;
        audit_on(&tx, by, "camera.rename", None, &format!("{slug}: {old:?} -> {name:?}"))?;
        tx.commit().ctx("commit camera rename")
    }

    fn audit(&self, by: &Actor, action: &str, couple_id: Option<i64>, summary: &str) -> Result<()> {
        audit_on(&self.conn, by, action, couple_id, summary)
    }

    fn add_source(&self, n: &NewNetworkSource) -> Result<i64> {
        let t = now();
        self.conn
            .execute(
                "INSERT INTO network_sources (protocol, host, port, mount_port, share, path, username, password_enc,
                     couple_id, footage_type, camera_id, post_import, duplicates, created_at, updated_at,
                     credential_key)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?14, ?15)",
                params![
                    n.protocol,
                    n.host,
                    n.port,
                    n.mount_port,
                    n.share,
                    n.settings.path,
                    n.settings.username,
                    n.settings.password_enc,
                    n.settings.couple_id,
                    n.settings.footage_type.map(FootageType::as_str),
                    n.settings.camera_id,
                    n.settings.post_import,
                    n.settings.duplicates.as_str(),
                    t,
                    n.settings.credential_key
                ],
            )
            .ctx("add source")?;
        Ok(self.conn.last_insert_rowid())
    }

    fn sources(&self) -> Result<Vec<NetworkSource>> {
        rows(&self.conn, &format!("{} ORDER BY s.id", SOURCE_SELECT), [], source_from_row, "list sources")
    }

    fn source(&self, id: i64) -> Result<NetworkSource> {
        self.conn
            .query_row(&format!("{} WHERE s.id = ?1", SOURCE_SELECT), [id], source_from_row)
            .optional()
            .ctx("find source")?
            .ok_or_else(|| Error::NotFound(format!("no source {id} (see `nightfox source list`)")))
    }

    fn set_source_enabled(&self, id: i64, enabled: bool) -> Result<()> {
        self.conn
            .execute(
                "UPDATE network_sources SET enabled = ?2, updated_at = ?3 WHERE id = ?1",
                params![id, enabled, now()],
            )
            .ctx("enable source")?;
        Ok(())
    }

    fn set_source_state(&self, id: i64, state: &str, failures: Option<i64>, error: Option<&str>) -> Result<()> {
        self.conn
            .execute(
                "UPDATE network_sources SET connection_state = ?2,
                     consecutive_failures = IFNULL(?3, consecutive_failures),
                     last_error = CASE WHEN ?4 IS NULL THEN last_error ELSE ?4 END, updated_at = ?5
                 WHERE id = ?1",
                params![id, state, failures, error, now()],
            )
            .ctx("update source state")?;
        Ok(())
    }

    fn touch_source_scan(&self, id: i64) -> Result<()> {
        self.conn
            .execute("UPDATE network_sources SET last_scan_at = ?2 WHERE id = ?1", params![id, now()])
            .ctx("record scan")?;
        Ok(())
    }

    fn update_source(&self, id: i64, s: &SourceSettings) -> Result<()> {
        let n = self
            .conn
            .execute(
                "UPDATE network_sources SET path = ?2, username = ?3, password_enc = ?4, couple_id = ?5,
                     footage_type = ?6, camera_id = ?7, post_import = ?8, duplicates = ?9, updated_at = ?10,
                     credential_key = ?11
                 WHERE id = ?1",
                params![
                    id,
                    s.path,
                    s.username,
                    s.password_enc,
                    s.couple_id,
                    s.footage_type.map(FootageType::as_str),
                    s.camera_id,
                    s.post_import,
                    s.duplicates.as_str(),
                    now(),
                    s.credential_key
                ],
            )
            .ctx("update source")?;
        if n == 0 {
            return Err(Error::NotFound(format!("no source {id} (see `nightfox source list`)")));
        }
        Ok(())
    }

    fn replace_source_credentials(&self, changes: &[CredentialChange]) -> Result<()> {
        let tx = immediate(&self.conn).ctx("begin credential change")?;
        let t = now();
        for c in changes {
            let n = tx
                .execute(
                    "UPDATE network_sources SET password_enc = ?2, credential_key = ?3, updated_at = ?4
                     WHERE id = ?1 AND password_enc = ?5 AND credential_key IS ?6",
                    params![c.id, c.password_enc, c.credential_key, t, c.old_password_enc, c.old_credential_key],
                )
                .ctx("replace credential")?;
            if n == 0 {
                return Err(crate::catalog::credential_changed(c.id));
            }
        }
        tx.commit().ctx("commit credential change")
    }

    fn catalog_id(&self) -> Result<String> {
        self.conn
            .execute(
                "INSERT OR IGNORE INTO catalog_info (name, value) VALUES ('catalog_id', lower(hex(randomblob(16))))",
                [],
            )
            .ctx("make catalog id")?;
        self.conn
            .query_row("SELECT value FROM catalog_info WHERE name = 'catalog_id'", [], |r| r.get(0))
            .ctx("read catalog id")
    }

    fn info(&self, name: &str) -> Result<Option<String>> {
        self.conn
            .query_row("SELECT value FROM catalog_info WHERE name = ?1", [name], |r| r.get(0))
            .optional()
            .ctx("read catalog info")
    }

    fn set_info(&self, name: &str, value: &str, expected: Option<&str>) -> Result<bool> {
        let n = match expected {
            None => self
                .conn
                .execute("INSERT OR IGNORE INTO catalog_info (name, value) VALUES (?1, ?2)", [name, value])
                .ctx("write catalog info")?,
            Some(old) => self
                .conn
                .execute("UPDATE catalog_info SET value = ?2 WHERE name = ?1 AND value = ?3", [name, value, old])
                .ctx("write catalog info")?,
        };
        Ok(n == 1)
    }

    fn remove_source(&self, id: i64) -> Result<()> {
        let n = self.conn.execute("DELETE FROM network_sources WHERE id = ?1", [id]).ctx("remove source")?;
        if n == 0 {
            return Err(Error::NotFound(format!("no source {id} (see `nightfox source list`)")));
        }
        Ok(())
    }

    fn add_event(&self, source_id: i64, session_id: Option<i64>, level: &str, message: &str) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO network_source_events (source_id, session_id, at, level, message)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![source_id, session_id, now(), level, message],
            )
            .ctx("record event")?;
        Ok(())
    }

    fn events(&self, source_id: i64) -> Result<Vec<SourceEvent>> {
        rows(
            &self.conn,
            "SELECT id, source_id, session_id, at, level, message FROM network_source_events
                 WHERE source_id = ?1 ORDER BY id",
            [source_id],
            |r| {
                Ok(SourceEvent {
                    id: r.get(0)?,
                    source_id: r.get(1)?,
                    session_id: r.get(2)?,
                    at: r.get(3)?,
                    level: r.get(4)?,
                    message: r.get(5)?,
                })
            },
            "list events",
        )
    }

    fn recent_problems(&self, limit: u32) -> Result<Vec<SourceEvent>> {
        rows(
            &self.conn,
            "SELECT id, source_id, session_id, at, level, message FROM network_source_events
                  WHERE level IN ('warn','error') ORDER BY id DESC LIMIT ?1",
            [limit],
            |r| {
                Ok(SourceEvent {
                    id: r.get(0)?,
                    source_id: r.get(1)?,
                    session_id: r.get(2)?,
                    at: r.get(3)?,
                    level: r.get(4)?,
                    message: r.get(5)?,
                })
            },
            "recent problems",
        )
    }

    fn backup_to(&self, dest: &Path) -> Result<()> {
        if dest.symlink_metadata().is_ok() {
            return Err(Error::Backup(format!("{dest:?} exists; give a new file name")));
        }
        let name = dest.file_name().ok_or_else(|| Error::Invalid(format!("{dest:?} is not a file name")))?;
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(format!(".{}.partial", std::process::id()));
        let tmp = dest.with_file_name(tmp_name);
        OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp).at(&tmp)?;
        let result = (|| -> Result<()> {
            let mut dst = Connection::open(&tmp).ctx("open the backup file")?;
            {
                let backup = rusqlite::backup::Backup::new(&self.conn, &mut dst).ctx("start the backup")?;
                let start = std::time::Instant::now();
                loop {
                    // All pages in one step: one read snapshot, so concurrent commits cannot restart the copy.
                    match backup.step(-1).ctx("copy the catalog")? {
                        rusqlite::backup::StepResult::Done => break,
                        rusqlite::backup::StepResult::More => {}
                        _ if start.elapsed() > Duration::from_secs(60) => {
                            return Err(Error::Backup("the catalog stayed locked for 60 s; abandoned".into()))
                        }
                        _ => std::thread::sleep(Duration::from_millis(100)),
                    }
                }
            }
            let check: String = dst.query_row("PRAGMA quick_check", [], |r| r.get(0)).ctx("check the backup")?;
            if check != "ok" {
                return Err(Error::Backup(format!("the copy does not check out: {check}")));
            }
            let _: String =
                dst.query_row("PRAGMA journal_mode = DELETE", [], |r| r.get(0)).ctx("set the backup's journal")?;
            dst.close().map_err(|(_, e)| e).ctx("close the backup")?;
            std::fs::File::open(&tmp).and_then(|f| f.sync_all()).at(&tmp)?;
            if dest.symlink_metadata().is_ok() {
                return Err(Error::Backup(format!("{dest:?} appeared meanwhile; not overwritten")));
            }
            std::fs::rename(&tmp, dest).at(dest)?;
            let dir = dest.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
            std::fs::File::open(dir).and_then(|d| d.sync_all()).at(dir)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }
}

/// Appends one audit event on `conn` (inside the caller's transaction, when it has one).
pub(super) fn audit_on(
    conn: &Connection,
    by: &Actor,
    action: &str,
    couple_id: Option<i64>,
    summary: &str,
) -> Result<()> {
    conn.execute(
        "INSERT INTO audit_log (at, uid, action, couple_id, summary) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![by.at, by.uid, action, couple_id, summary],
    )
    .ctx("record audit event")?;
    Ok(())
}
