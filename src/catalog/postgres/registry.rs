//! [`Registry`] on Postgres (a port of `sqlite/registry.rs`). There is no online backup into a file here: a
//! Postgres catalog is backed up with `pg_dump` (or copied into SQLite with `nightfox catalog copy`).

use super::*;
use crate::catalog::Registry;

/// The columns `source_event_from_row` reads, over `network_source_events`.
const SOURCE_EVENT_SELECT: &str = "SELECT id, source_id, session_id, at, level, message FROM network_source_events";

fn source_event_from_row(r: &Row) -> PgResult<SourceEvent> {
    Ok(SourceEvent {
        id: r.try_get(0)?,
        source_id: r.try_get(1)?,
        session_id: r.try_get(2)?,
        at: r.try_get(3)?,
        level: r.try_get(4)?,
        message: r.try_get(5)?,
    })
}

impl Registry for PgConn {
    fn add_couple(&self, display_name: &str, event_date: &str, folder_name: &str) -> Result<i64> {
        one(
            &mut *self.c()?,
            "INSERT INTO couples (display_name, event_date, folder_name, created_at) VALUES ($1, $2, $3, $4)
             RETURNING id",
            &[&display_name, &event_date, &folder_name, &now()],
            "add couple",
        )
    }

    fn folder_name_taken(&self, folder_name: &str) -> Result<bool> {
        one(
            &mut *self.c()?,
            "SELECT EXISTS(SELECT 1 FROM couples WHERE folder_name = $1)
                 OR EXISTS(SELECT 1 FROM couple_aliases WHERE folder_name = $1)",
            &[&folder_name],
            "check folder name",
        )
    }

    fn add_camera(&self, c: &NewCamera) -> Result<i64> {
        insert_camera(&mut *self.c()?, c)
    }

    fn camera_slug_taken(&self, slug: &str) -> Result<bool> {
        slug_taken(&mut *self.c()?, slug)
    }

    fn rename_couple(&self, couple_id: i64, display_name: &str, event_date: &str, by: &Actor) -> Result<()> {
        let mut c = self.c()?;
        let mut tx = c.transaction().ctx("begin couple rename")?;
        let (old_name, old_date): (String, String) = opt_row(
            &mut tx,
            "SELECT display_name, event_date FROM couples WHERE id = $1 FOR UPDATE",
            &[&couple_id],
            |r| Ok((r.try_get(0)?, r.try_get(1)?)),
            "read couple",
        )?
        .ok_or_else(|| Error::NotFound(format!("couple {couple_id}")))?;
        tx.execute(
            "UPDATE couples SET display_name = $2, event_date = $3 WHERE id = $1",
            &[&couple_id, &display_name, &event_date],
        )
        .ctx("rename couple")?;
        let summary = format!("{old_name:?} ({old_date}) -> {display_name:?} ({event_date})");
        audit_on(&mut tx, by, "couple.rename", Some(couple_id), &summary)?;
        tx.commit().ctx("commit couple rename")
    }

    fn rename_camera(&self, camera_id: i64, name: &str, by: &Actor) -> Result<()> {
        let mut c = self.c()?;
        let mut tx = c.transaction().ctx("begin camera rename")?;
        let (slug, old): (String, String) = opt_row(
            &mut tx,
            "SELECT slug, name FROM cameras WHERE id = $1 FOR UPDATE",
            &[&camera_id],
            |r| Ok((r.try_get(0)?, r.try_get(1)?)),
            "read camera",
        )?
        .ok_or_else(|| Error::NotFound(format!("camera {camera_id}")))?;
        tx.execute("UPDATE cameras SET name = $2 WHERE id = $1", &[&camera_id, &name]).ctx("rename camera")?;
        audit_on(&mut tx, by, "camera.rename", None, &format!("{slug}: {old:?} -> {name:?}"))?;
        tx.commit().ctx("commit camera rename")
    }

    fn audit(&self, by: &Actor, action: &str, couple_id: Option<i64>, summary: &str) -> Result<()> {
        audit_on(&mut *self.c()?, by, action, couple_id, summary)
    }

    fn add_source(&self, n: &NewNetworkSource) -> Result<i64> {
        one(
            &mut *self.c()?,
            "INSERT INTO network_sources (protocol, host, port, mount_port, share, path, username, password_enc,
                 couple_id, footage_type, camera_id, post_import, duplicates, created_at, updated_at, credential_key)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14, $15)
             RETURNING id",
            &[
                &n.protocol,
                &n.host,
                &(n.port as i64),
                &n.mount_port.map(i64::from),
                &n.share,
                &n.settings.path,
                &n.settings.username,
                &n.settings.password_enc,
                &n.settings.couple_id,
                &n.settings.footage_type.map(FootageType::as_str),
                &n.settings.camera_id,
                &n.settings.post_import,
                &n.settings.duplicates.as_str(),
                &now(),
                &n.settings.credential_key,
            ],
            "add source",
        )
    }

    fn update_source(&self, id: i64, s: &SourceSettings) -> Result<()> {
        let n = self
            .c()?
            .execute(
                "UPDATE network_sources SET path = $2, username = $3, password_enc = $4, couple_id = $5,
                     footage_type = $6, camera_id = $7, post_import = $8, duplicates = $9, updated_at = $10,
                     credential_key = $11
                 WHERE id = $1",
                &[
                    &id,
                    &s.path,
                    &s.username,
                    &s.password_enc,
                    &s.couple_id,
                    &s.footage_type.map(FootageType::as_str),
                    &s.camera_id,
                    &s.post_import,
                    &s.duplicates.as_str(),
                    &now(),
                    &s.credential_key,
                ],
            )
            .ctx("update source")?;
        if n == 0 {
            return Err(Error::NotFound(format!("no source {id} (see `nightfox source list`)")));
        }
        Ok(())
    }

    fn sources(&self) -> Result<Vec<NetworkSource>> {
        rows(&mut *self.c()?, &format!("{SOURCE_SELECT} ORDER BY s.id"), &[], source_from_row, "list sources")
    }

    fn source(&self, id: i64) -> Result<NetworkSource> {
        opt_row(&mut *self.c()?, &format!("{SOURCE_SELECT} WHERE s.id = $1"), &[&id], source_from_row, "find source")?
            .ok_or_else(|| Error::NotFound(format!("no source {id} (see `nightfox source list`)")))
    }

    fn set_source_enabled(&self, id: i64, enabled: bool) -> Result<()> {
        self.c()?
            .execute("UPDATE network_sources SET enabled = $2, updated_at = $3 WHERE id = $1", &[&id, &enabled, &now()])
            .ctx("enable source")?;
        Ok(())
    }

    fn set_source_state(&self, id: i64, state: &str, failures: Option<i64>, error: Option<&str>) -> Result<()> {
        self.c()?
            .execute(
                "UPDATE network_sources SET connection_state = $2,
                     consecutive_failures = COALESCE($3, consecutive_failures),
                     last_error = COALESCE($4, last_error), updated_at = $5
                 WHERE id = $1",
                &[&id, &state, &failures, &error, &now()],
            )
            .ctx("update source state")?;
        Ok(())
    }

    fn touch_source_scan(&self, id: i64) -> Result<()> {
        self.c()?
            .execute("UPDATE network_sources SET last_scan_at = $2 WHERE id = $1", &[&id, &now()])
            .ctx("record scan")?;
        Ok(())
    }

    fn replace_source_credentials(&self, changes: &[CredentialChange]) -> Result<()> {
        let mut c = self.c()?;
        let mut tx = c.transaction().ctx("begin credential change")?;
        let t = now();
        for ch in changes {
            let n = tx
                .execute(
                    "UPDATE network_sources SET password_enc = $2, credential_key = $3, updated_at = $4
                     WHERE id = $1 AND password_enc = $5 AND credential_key IS NOT DISTINCT FROM $6",
                    &[&ch.id, &ch.password_enc, &ch.credential_key, &t, &ch.old_password_enc, &ch.old_credential_key],
                )
                .ctx("replace credential")?;
            if n == 0 {
                return Err(crate::catalog::credential_changed(ch.id));
            }
        }
        tx.commit().ctx("commit credential change")
    }

    fn catalog_id(&self) -> Result<String> {
        let mut c = self.c()?;
        c.execute(
            "INSERT INTO catalog_info (name, value) VALUES ('catalog_id', replace(gen_random_uuid()::text, '-', ''))
             ON CONFLICT (name) DO NOTHING",
            &[],
        )
        .ctx("make catalog id")?;
        let row =
            c.query_one("SELECT value FROM catalog_info WHERE name = 'catalog_id'", &[]).ctx("read catalog id")?;
        row.try_get(0).ctx("read catalog id")
    }

    fn info(&self, name: &str) -> Result<Option<String>> {
        let row =
            self.c()?.query_opt("SELECT value FROM catalog_info WHERE name = $1", &[&name]).ctx("read catalog info")?;
        row.map(|r| r.try_get(0)).transpose().ctx("read catalog info")
    }

    fn set_info(&self, name: &str, value: &str, expected: Option<&str>) -> Result<bool> {
        let mut c = self.c()?;
        let n = match expected {
            None => c
                .execute(
                    "INSERT INTO catalog_info (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
                    &[&name, &value],
                )
                .ctx("write catalog info")?,
            Some(old) => c
                .execute("UPDATE catalog_info SET value = $2 WHERE name = $1 AND value = $3", &[&name, &value, &old])
                .ctx("write catalog info")?,
        };
        Ok(n == 1)
    }

    fn remove_source(&self, id: i64) -> Result<()> {
        let n = self.c()?.execute("DELETE FROM network_sources WHERE id = $1", &[&id]).ctx("remove source")?;
        if n == 0 {
            return Err(Error::NotFound(format!("no source {id} (see `nightfox source list`)")));
        }
        Ok(())
    }

    fn add_event(&self, source_id: i64, session_id: Option<i64>, level: &str, message: &str) -> Result<()> {
        self.c()?
            .execute(
                "INSERT INTO network_source_events (source_id, session_id, at, level, message)
                 VALUES ($1, $2, $3, $4, $5)",
                &[&source_id, &session_id, &now(), &level, &message],
            )
            .ctx("record event")?;
        Ok(())
    }

    fn events(&self, source_id: i64) -> Result<Vec<SourceEvent>> {
        rows(
            &mut *self.c()?,
            &format!("{SOURCE_EVENT_SELECT} WHERE source_id = $1 ORDER BY id"),
            &[&source_id],
            source_event_from_row,
            "list events",
        )
    }

    fn recent_problems(&self, limit: u32) -> Result<Vec<SourceEvent>> {
        rows(
            &mut *self.c()?,
            &format!("{SOURCE_EVENT_SELECT} WHERE level IN ('warn','error') ORDER BY id DESC LIMIT $1"),
            &[&(limit as i64)],
            source_event_from_row,
            "recent problems",
        )
    }

    fn backup_to(&self, _dest: &Path) -> Result<()> {
        Err(Error::Invalid(
            "a Postgres catalog is backed up with pg_dump, or copied into a SQLite file with \
             `nightfox catalog copy --to sqlite:///path`"
                .into(),
        ))
    }
}

/// Appends one audit event on `c` (a client, or the caller's transaction).
pub(super) fn audit_on(
    c: &mut impl GenericClient,
    by: &Actor,
    action: &str,
    couple_id: Option<i64>,
    summary: &str,
) -> Result<()> {
    c.execute(
        "INSERT INTO audit_log (at, uid, action, couple_id, summary) VALUES ($1, $2, $3, $4, $5)",
        &[&by.at, &(by.uid as i64), &action, &couple_id, &summary],
    )
    .ctx("record audit event")?;
    Ok(())
}
