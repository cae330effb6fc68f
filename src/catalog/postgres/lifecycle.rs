//! [`Lifecycle`] on Postgres (a port of `sqlite/lifecycle.rs`): folder and slug renames, moves and camera
//! merges, and the aliases (old names) that keep resolving after them. Each change is one transaction with its
//! audit and lifecycle events. Where SQLite serializes writers with BEGIN IMMEDIATE, this takes locks (several
//! machines share the catalog): the couple or camera row renamed `FOR NO KEY UPDATE`, then its alias table in
//! SHARE ROW EXCLUSIVE mode (one name decision at a time); both cameras of a merge `FOR UPDATE` (in id order),
//! which also holds back imports into them (their foreign key checks); the files that move `FOR UPDATE`; and a
//! move's target camera `FOR SHARE` (a merge of it waits, or is seen as done). A file name another writer (an
//! import) takes between the check and the move fails as transient: a retry picks another name.

use std::collections::{HashMap, HashSet};

use postgres::error::SqlState;
use postgres::{GenericClient, Statement, Transaction};

use super::*;
use crate::catalog::Lifecycle;
use crate::organize;

/// Candidate suffixes tried when moved names collide (an import names its files the same way).
const MAX_SUFFIX: u32 = 10_000;

/// A file of a group that moves together (a clip first, then its sidecars).
struct Member {
    id: i64,
    at: Placement,
    /// The base name of the original path (what suffixed names are made from).
    original: Vec<u8>,
}

fn base_name(path: &[u8]) -> Vec<u8> {
    path.rsplit(|c| *c == b'/').next().unwrap_or(path).to_vec()
}

fn placement_of(couple_id: i64, ft: &str, camera_id: Option<i64>, name: Vec<u8>) -> Placement {
    Placement { couple_id, footage_type: FootageType::parse(ft).unwrap_or(FootageType::Modern), camera_id, name }
}

/// The statements of one transaction, each prepared once (a merge runs the same few for every file).
#[derive(Default)]
struct Prepared(HashMap<&'static str, Statement>);

impl Prepared {
    fn get(&mut self, tx: &mut Transaction<'_>, sql: &'static str, ctx: &str) -> Result<Statement> {
        if let Some(st) = self.0.get(sql) {
            return Ok(st.clone());
        }
        let st = tx.prepare(sql).ctx(ctx)?;
        self.0.insert(sql, st.clone());
        Ok(st)
    }
}

const GROUP: &str = "SELECT id, couple_id, footage_type, camera_id, display_name, original_path FROM files
      WHERE id = $1 OR sidecar_of = $1 ORDER BY sidecar_of IS NOT NULL, id FOR UPDATE";

/// A clip (by id) and its sidecars, as they are placed now; their rows locked until the commit.
fn group_of(tx: &mut Transaction<'_>, p: &mut Prepared, clip_id: i64) -> Result<Vec<Member>> {
    let st = p.get(tx, GROUP, "read clip")?;
    let rs = tx.query(&st, &[&clip_id]).ctx("read clip")?;
    rs.iter()
        .map(|r| {
            let ft: String = r.try_get(2)?;
            let original: Vec<u8> = r.try_get(5)?;
            Ok(Member {
                id: r.try_get(0)?,
                at: placement_of(r.try_get(1)?, &ft, r.try_get(3)?, r.try_get(4)?),
                original: base_name(&original),
            })
        })
        .collect::<std::result::Result<Vec<_>, postgres::Error>>()
        .ctx("read clip")
}

const HOLDERS: &str = "SELECT id FROM files WHERE couple_id = $1 AND footage_type = $2 AND COALESCE(camera_id, 0) = $3
       AND name_key = ANY($4)
     UNION ALL
     SELECT file_id FROM file_aliases WHERE couple_id = $1 AND footage_type = $2
       AND COALESCE(camera_id, 0) = $3 AND name_key = ANY($4)";

/// The files that hold any of these name keys in a directory: a file row there (live or in the trash), or an
/// old place.
fn holders(
    tx: &mut Transaction<'_>,
    p: &mut Prepared,
    couple: i64,
    ft: FootageType,
    camera: Option<i64>,
    keys: &[String],
) -> Result<Vec<i64>> {
    let st = p.get(tx, HOLDERS, "check name")?;
    let rs = tx.query(&st, &[&couple, &ft.as_str(), &camera.unwrap_or(0), &keys]).ctx("check name")?;
    rs.iter().map(|r| r.try_get(0)).collect::<std::result::Result<Vec<i64>, _>>().ctx("check name")
}

const DROP_ALIAS: &str = "DELETE FROM file_aliases WHERE file_id = $1 AND couple_id = $2 AND footage_type = $3
       AND COALESCE(camera_id, 0) = $4 AND name_key = $5";

const MOVE: &str = "UPDATE files SET footage_type = $2, camera_id = $3, display_name = $4, name_key = $5 WHERE id = $1";

/// As SQLite's INSERT OR REPLACE: a row holding the place is replaced (a new id: it is the newest old place).
const RECORD_ALIAS: &str = "INSERT INTO file_aliases (file_id, couple_id, footage_type, camera_id, display_name,
         name_key, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)
     ON CONFLICT (couple_id, footage_type, COALESCE(camera_id, 0), name_key) DO UPDATE SET id = DEFAULT,
         file_id = EXCLUDED.file_id, camera_id = EXCLUDED.camera_id, display_name = EXCLUDED.display_name,
         created_at = EXCLUDED.created_at";

/// A name taken by another writer between the check and the write (a unique index said no): transient, a
/// retry checks again and picks another name.
fn name_race(context: &str, e: postgres::Error) -> Error {
    let race = e.code() == Some(&SqlState::UNIQUE_VIOLATION);
    let mut err = catalog_error(context, e);
    if let Error::Catalog { transient, .. } = &mut err {
        *transient |= race;
    }
    err
}

/// Moves a group to another directory of its couple: the same names if they are free there, else the first
/// ` (n)` suffix free for all of them (sidecars keep pairing with their clip). Records each old place.
fn place_group(
    tx: &mut Transaction<'_>,
    p: &mut Prepared,
    group: &[Member],
    ft: FootageType,
    camera: Option<i64>,
    at: i64,
) -> Result<Vec<Moved>> {
    let Some(clip) = group.first() else { return Ok(Vec::new()) };
    if group.iter().all(|m| m.at.footage_type == ft && m.at.camera_id == camera) {
        return Ok(Vec::new());
    }
    let ids: Vec<i64> = group.iter().map(|m| m.id).collect();
    let mut chosen = None;
    for n in 1..=MAX_SUFFIX {
        let names: Vec<Vec<u8>> = group
            .iter()
            .enumerate()
            .map(|(i, m)| match (n, i) {
                (1, _) => m.at.name.clone(),
                (_, 0) => organize::with_suffix(&m.original, n),
                _ => organize::sidecar_name(&m.original, &clip.original, n),
            })
            .collect();
        let keys: Vec<String> = names.iter().map(|n| organize::name_key(n)).collect();
        let distinct = keys.iter().enumerate().all(|(i, k)| !keys[..i].contains(k));
        if distinct && holders(tx, p, clip.at.couple_id, ft, camera, &keys)?.iter().all(|h| ids.contains(h)) {
            chosen = Some((names, keys));
            break;
        }
    }
    let Some((names, keys)) = chosen else {
        return Err(Error::Invalid(format!(
            "no free name for {} in its new folder",
            String::from_utf8_lossy(&clip.at.name)
        )));
    };
    let drop_alias = p.get(tx, DROP_ALIAS, "drop alias")?;
    let move_file = p.get(tx, MOVE, "move file")?;
    let record = p.get(tx, RECORD_ALIAS, "record old place")?;
    let mut moved = Vec::new();
    for ((m, name), key) in group.iter().zip(names).zip(keys) {
        let to = Placement { couple_id: m.at.couple_id, footage_type: ft, camera_id: camera, name };
        // Moving back to where it was once: that old place is its place again.
        tx.execute(&drop_alias, &[&m.id, &to.couple_id, &ft.as_str(), &camera.unwrap_or(0), &key]).ctx("drop alias")?;
        tx.execute(&move_file, &[&m.id, &ft.as_str(), &camera, &to.name, &key])
            .map_err(|e| name_race("move file (its new name was just taken)", e))?;
        tx.execute(
            &record,
            &[
                &m.id,
                &m.at.couple_id,
                &m.at.footage_type.as_str(),
                &m.at.camera_id,
                &m.at.name,
                &organize::name_key(&m.at.name),
                &at,
            ],
        )
        .map_err(|e| name_race("record old place", e))?;
        moved.push(Moved { file_id: m.id, from: m.at.clone(), to });
    }
    Ok(moved)
}

/// A camera's slug, merged_into and name (`lock`: a locking clause, or nothing), or the error naming it.
fn camera_row(c: &mut impl GenericClient, id: i64, lock: &str) -> Result<(String, Option<i64>, String)> {
    opt_row(
        c,
        &format!("SELECT slug, merged_into, name FROM cameras WHERE id = $1 {lock}"),
        &[&id],
        |r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)),
        "read camera",
    )?
    .ok_or_else(|| Error::NotFound(format!("camera {id}")))
}

/// A live camera (not merged into another): its slug and merged_into, or the error naming it.
fn live_camera(c: &mut impl GenericClient, id: i64) -> Result<(String, Option<i64>)> {
    camera_row(c, id, "").map(|(slug, merged, _)| (slug, merged))
}

fn slug_of(c: &mut impl GenericClient, camera: Option<i64>) -> Result<String> {
    match camera {
        None => Ok("unknown".into()),
        Some(id) => Ok(live_camera(c, id)?.0),
    }
}

fn folder_of(c: &mut impl GenericClient, couple: i64) -> Result<String> {
    opt_row(c, "SELECT folder_name FROM couples WHERE id = $1", &[&couple], |r| r.try_get(0), "read couple")?
        .ok_or_else(|| Error::NotFound(format!("couple {couple}")))
}

/// A placement as a tree path, for the audit log.
fn path_of(c: &mut impl GenericClient, p: &Placement) -> Result<String> {
    Ok(format!(
        "{}/source/{}/{}/{}",
        folder_of(c, p.couple_id)?,
        p.footage_type.as_str(),
        slug_of(c, p.camera_id)?,
        String::from_utf8_lossy(&p.name)
    ))
}

fn audit_on(c: &mut impl GenericClient, by: &Actor, action: &str, couple_id: Option<i64>, summary: &str) -> Result<()> {
    c.execute(
        "INSERT INTO audit_log (at, uid, action, couple_id, summary) VALUES ($1, $2, $3, $4, $5)",
        &[&by.at, &(by.uid as i64), &action, &couple_id, &summary],
    )
    .ctx("record audit event")?;
    Ok(())
}

/// A name that renames change (a couple's folder, a camera's slug) and the table of its old names.
struct Names {
    table: &'static str,
    column: &'static str,
    aliases: &'static str,
    owner: &'static str,
    what: &'static str,
    by: &'static str,
}

const FOLDERS: Names = Names {
    table: "couples",
    column: "folder_name",
    aliases: "couple_aliases",
    owner: "couple_id",
    what: "folder name",
    by: "couple",
};

const SLUGS: Names = Names {
    table: "cameras",
    column: "slug",
    aliases: "camera_aliases",
    owner: "camera_id",
    what: "camera slug",
    by: "camera",
};

impl Names {
    fn taken(&self, new: &str) -> Error {
        Error::Invalid(format!("the {} {new} is taken (by a {}, or a {}'s old name)", self.what, self.by, self.by))
    }
}

/// The name check and bookkeeping of a rename of `id` from `old` to `new`: `Error::Invalid` when another owner
/// has `new` as its name or an old one; otherwise, when the name changes, `old` becomes an old name of `id`
/// (and `new`, if it was one of `id`'s old names, a rename back, is one no more). Returns whether it changed.
/// Locks the table of old names until the commit: renames decide names one at a time, across machines.
fn retire_name(tx: &mut Transaction<'_>, n: &Names, id: i64, old: &str, new: &str, at: i64) -> Result<bool> {
    let (table, column, aliases, owner) = (n.table, n.column, n.aliases, n.owner);
    tx.batch_execute(&format!("LOCK TABLE {aliases} IN SHARE ROW EXCLUSIVE MODE")).ctx("lock the old names")?;
    let taken: bool = one(
        tx,
        &format!(
            "SELECT EXISTS(SELECT 1 FROM {table} WHERE {column} = $1 AND id <> $2)
                 OR EXISTS(SELECT 1 FROM {aliases} WHERE {column} = $1 AND {owner} <> $2)"
        ),
        &[&new, &id],
        "check a new name",
    )?;
    if taken {
        return Err(n.taken(new));
    }
    if new == old {
        return Ok(false);
    }
    tx.execute(&format!("DELETE FROM {aliases} WHERE {column} = $1"), &[&new]).ctx("drop an old name")?;
    tx.execute(
        &format!("INSERT INTO {aliases} ({column}, {owner}, created_at) VALUES ($1, $2, $3)"),
        &[&old, &id, &at],
    )
    .ctx("record an old name")?;
    Ok(true)
}

/// The rename's own UPDATE: a name added meanwhile by another writer (its unique index says so) is taken.
fn renamed(r: std::result::Result<u64, postgres::Error>, n: &Names, new: &str, context: &str) -> Result<()> {
    match r {
        Ok(_) => Ok(()),
        Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => Err(n.taken(new)),
        Err(e) => Err(catalog_error(context, e)),
    }
}

fn gone_of(moved: &[Moved]) -> Vec<Gone> {
    moved.iter().map(|m| Gone::File { file_id: m.file_id, at: m.from.clone() }).collect()
}

impl Lifecycle for PgConn {
    fn rename_couple_folder(
        &self,
        couple_id: i64,
        display_name: &str,
        event_date: &str,
        folder: &str,
        by: &Actor,
    ) -> Result<()> {
        let mut c = self.c()?;
        let mut tx = c.transaction().ctx("begin couple rename")?;
        let (old_name, old_date, old): (String, String, String) = opt_row(
            &mut tx,
            "SELECT display_name, event_date, folder_name FROM couples WHERE id = $1 AND trash_id IS NULL
             FOR NO KEY UPDATE",
            &[&couple_id],
            |r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)),
            "read couple",
        )?
        .ok_or_else(|| Error::NotFound(format!("couple {couple_id}")))?;
        let mut gone = Vec::new();
        if retire_name(&mut tx, &FOLDERS, couple_id, &old, folder, by.at)? {
            gone.push(Gone::Couple { couple_id, folder: old.clone() });
        }
        renamed(
            tx.execute(
                "UPDATE couples SET display_name = $2, event_date = $3, folder_name = $4 WHERE id = $1",
                &[&couple_id, &display_name, &event_date, &folder],
            ),
            &FOLDERS,
            folder,
            "rename couple",
        )?;
        let mut summary = format!("{old} -> {folder}");
        if old_name != display_name {
            summary += &format!("; name {old_name:?} -> {display_name:?}");
        }
        if old_date != event_date {
            summary += &format!("; date {old_date} -> {event_date}");
        }
        audit_on(&mut tx, by, "couple.rename", Some(couple_id), &summary)?;
        lifecycle_event(&mut tx, &format!("couple renamed: {summary}"), &gone)?;
        tx.commit().ctx("commit couple rename")
    }

    fn rename_camera_slug(&self, camera_id: i64, name: &str, slug: &str, by: &Actor) -> Result<()> {
        let mut c = self.c()?;
        let mut tx = c.transaction().ctx("begin camera rename")?;
        let (old, merged, old_name) = camera_row(&mut tx, camera_id, "FOR NO KEY UPDATE")?;
        if merged.is_some() {
            return Err(Error::Invalid(format!("camera {old} was merged into another camera")));
        }
        let mut gone = Vec::new();
        if retire_name(&mut tx, &SLUGS, camera_id, &old, slug, by.at)? {
            gone.push(Gone::Camera { camera_id, slug: old.clone() });
        }
        renamed(
            tx.execute("UPDATE cameras SET name = $2, slug = $3 WHERE id = $1", &[&camera_id, &name, &slug]),
            &SLUGS,
            slug,
            "rename camera",
        )?;
        let summary = format!("{old} -> {slug}; name {old_name:?} -> {name:?}");
        audit_on(&mut tx, by, "camera.rename", None, &summary)?;
        lifecycle_event(&mut tx, &format!("camera renamed: {summary}"), &gone)?;
        tx.commit().ctx("commit camera rename")
    }

    fn merge_cameras(&self, from: i64, into: i64, by: &Actor) -> Result<Vec<Moved>> {
        if from == into {
            return Err(Error::Invalid("a camera cannot be merged into itself".into()));
        }
        let mut c = self.c()?;
        let mut tx = c.transaction().ctx("begin camera merge")?;
        // Both cameras, in id order (two merges of the same pair wait for each other instead of deadlocking).
        tx.execute("SELECT id FROM cameras WHERE id = ANY($1) ORDER BY id FOR UPDATE", &[&vec![from, into]])
            .ctx("lock cameras")?;
        let (from_slug, from_merged) = live_camera(&mut tx, from)?;
        let (into_slug, into_merged) = live_camera(&mut tx, into)?;
        for (slug, merged) in [(&from_slug, from_merged), (&into_slug, into_merged)] {
            if merged.is_some() {
                return Err(Error::Invalid(format!("camera {slug} was already merged into another camera")));
            }
        }
        // Clips first (each with its sidecars), then any file of the camera whose clip is elsewhere.
        let ids: Vec<(i64, Option<i64>)> = rows(
            &mut tx,
            "SELECT id, sidecar_of FROM files WHERE camera_id = $1 ORDER BY sidecar_of IS NOT NULL, id FOR UPDATE",
            &[&from],
            |r| Ok((r.try_get(0)?, r.try_get(1)?)),
            "list camera files",
        )?;
        let mut p = Prepared::default();
        let mut moved = Vec::new();
        let mut done = HashSet::new();
        for (id, sidecar_of) in ids {
            if done.contains(&id) {
                continue;
            }
            let group = match sidecar_of {
                None => group_of(&mut tx, &mut p, id)?,
                Some(_) => group_of(&mut tx, &mut p, id)?.into_iter().filter(|m| m.id == id).collect(),
            };
            let group: Vec<Member> = group.into_iter().filter(|m| m.at.camera_id == Some(from)).collect();
            done.extend(group.iter().map(|m| m.id));
            let ft = group.first().map(|m| m.at.footage_type).unwrap_or(FootageType::Modern);
            moved.extend(place_group(&mut tx, &mut p, &group, ft, Some(into), by.at)?);
        }
        tx.execute("UPDATE import_sessions SET camera_id = $2 WHERE camera_id = $1", &[&from, &into])
            .ctx("re-point sessions")?;
        tx.execute("UPDATE network_sources SET camera_id = $2 WHERE camera_id = $1", &[&from, &into])
            .ctx("re-point sources")?;
        tx.execute("UPDATE cameras SET merged_into = $2 WHERE id = $1 OR merged_into = $1", &[&from, &into])
            .ctx("retire camera")?;
        let summary = format!("{from_slug} -> {into_slug}: {} files moved", moved.len());
        audit_on(&mut tx, by, "camera.merge", None, &summary)?;
        let mut gone = vec![Gone::Camera { camera_id: from, slug: from_slug }];
        gone.extend(gone_of(&moved));
        lifecycle_event(&mut tx, &format!("cameras merged: {summary}"), &gone)?;
        tx.commit().ctx("commit camera merge")?;
        Ok(moved)
    }

    fn move_file(&self, file_id: i64, camera_id: Option<i64>, ft: FootageType, by: &Actor) -> Result<Vec<Moved>> {
        let mut c = self.c()?;
        let mut tx = c.transaction().ctx("begin file move")?;
        // The target camera first (held: a merge of it waits for this move, or this move sees it merged), then
        // the file: the order a merge takes them in.
        let target = match camera_id.map(|id| camera_row(&mut tx, id, "FOR SHARE")) {
            // A missing camera is told after the file's own errors (SQLite's order); a database error at once.
            Some(Err(e @ Error::Catalog { .. })) => return Err(e),
            t => t,
        };
        let row: Option<(Option<i64>, Option<i64>)> = opt_row(
            &mut tx,
            "SELECT sidecar_of, trash_id FROM files WHERE id = $1 FOR UPDATE",
            &[&file_id],
            |r| Ok((r.try_get(0)?, r.try_get(1)?)),
            "read file",
        )?;
        match row {
            None | Some((_, Some(_))) => return Err(Error::NotFound(format!("file {file_id}"))),
            Some((Some(_), _)) => {
                return Err(Error::Invalid("this is a sidecar: move its clip (sidecars move with it)".into()));
            }
            Some((None, None)) => {}
        }
        if let Some(target) = target {
            let (slug, merged, _) = target?;
            if merged.is_some() {
                return Err(Error::Invalid(format!("camera {slug} was merged into another camera")));
            }
        }
        let mut p = Prepared::default();
        let group = group_of(&mut tx, &mut p, file_id)?;
        let moved = place_group(&mut tx, &mut p, &group, ft, camera_id, by.at)?;
        if let (Some(first), Some(couple)) = (moved.first(), group.first().map(|m| m.at.couple_id)) {
            let summary = format!(
                "{} -> {}{}",
                path_of(&mut tx, &first.from)?,
                path_of(&mut tx, &first.to)?,
                match moved.len() {
                    1 => String::new(),
                    n => format!(" (with {} sidecars)", n - 1),
                }
            );
            audit_on(&mut tx, by, "file.move", Some(couple), &summary)?;
            lifecycle_event(&mut tx, &format!("file moved: {summary}"), &gone_of(&moved))?;
        }
        tx.commit().ctx("commit file move")?;
        Ok(moved)
    }

    fn couple_alias(&self, folder_name: &str) -> Result<Option<i64>> {
        opt_row(
            &mut *self.c()?,
            "SELECT a.couple_id FROM couple_aliases a JOIN couples c ON c.id = a.couple_id
              WHERE a.folder_name = $1 AND c.trash_id IS NULL",
            &[&folder_name],
            |r| r.try_get(0),
            "find old folder name",
        )
    }

    fn couple_aliases_of(&self, couple_id: i64) -> Result<Vec<String>> {
        rows(
            &mut *self.c()?,
            "SELECT folder_name FROM couple_aliases WHERE couple_id = $1 ORDER BY id",
            &[&couple_id],
            |r| r.try_get(0),
            "list old folder names",
        )
    }

    fn camera_alias(&self, slug: &str) -> Result<Option<i64>> {
        opt_row(
            &mut *self.c()?,
            "SELECT camera_id FROM camera_aliases WHERE slug = $1
             UNION ALL SELECT id FROM cameras WHERE slug = $1 AND merged_into IS NOT NULL LIMIT 1",
            &[&slug],
            |r| r.try_get(0),
            "find old camera slug",
        )
    }

    fn file_at_alias(&self, at: &Placement) -> Result<Option<FileRow>> {
        let sql = format!(
            "{FILE_SELECT} JOIN file_aliases a ON a.file_id = f.id
              WHERE a.couple_id = $1 AND a.footage_type = $2 AND COALESCE(a.camera_id, 0) = $3
                AND a.display_name = $4 AND f.trash_id IS NULL
              LIMIT 1"
        );
        opt_row(
            &mut *self.c()?,
            &sql,
            &[&at.couple_id, &at.footage_type.as_str(), &at.camera_id.unwrap_or(0), &at.name],
            file_from_row,
            "find old place",
        )
    }

    fn aliases_under(&self, couple_id: i64, ft: Option<FootageType>, camera: Option<Option<i64>>) -> Result<bool> {
        one(
            &mut *self.c()?,
            "SELECT EXISTS(SELECT 1 FROM file_aliases a JOIN files f ON f.id = a.file_id
              WHERE a.couple_id = $1 AND ($2::text IS NULL OR a.footage_type = $2::text)
                AND ($3::bigint IS NULL OR COALESCE(a.camera_id, 0) = $3::bigint) AND f.trash_id IS NULL)",
            &[&couple_id, &ft.map(|t| t.as_str()), &camera.map(|c| c.unwrap_or(0))],
            "find old places",
        )
    }

    fn aliases_of(&self, file_id: i64) -> Result<Vec<FileAlias>> {
        rows(
            &mut *self.c()?,
            "SELECT couple_id, footage_type, camera_id, display_name, created_at FROM file_aliases
              WHERE file_id = $1 ORDER BY id",
            &[&file_id],
            |r| {
                let ft: String = r.try_get(1)?;
                Ok(FileAlias {
                    file_id,
                    at: placement_of(r.try_get(0)?, &ft, r.try_get(2)?, r.try_get(3)?),
                    created_at: r.try_get(4)?,
                })
            },
            "list old places",
        )
    }

    fn has_aliases(&self) -> Result<bool> {
        one(
            &mut *self.c()?,
            "SELECT EXISTS(SELECT 1 FROM couple_aliases) OR EXISTS(SELECT 1 FROM camera_aliases)
                 OR EXISTS(SELECT 1 FROM file_aliases)
                 OR EXISTS(SELECT 1 FROM cameras WHERE merged_into IS NOT NULL)",
            &[],
            "look for old names",
        )
    }
}

#[cfg(test)]
mod tests {
    //! What the conformance suite cannot show: two machines changing names at once.
    use super::super::testdb;
    use super::*;

    /// A fresh migrated catalog: its runtime DSN.
    fn catalog() -> String {
        let s = testdb::shared();
        let db = s.create_db();
        super::super::migrate(&s.migrate_dsn(&db), testdb::APP_ROLE).expect("migrate");
        s.app_dsn(&db)
    }

    fn open(dsn: &str) -> PgConn {
        PgConn::open(config_of(dsn).expect("dsn"), "test".into()).expect("open")
    }

    fn exec(c: &PgConn, sql: &str, params: &[&(dyn postgres::types::ToSql + Sync)]) {
        c.c().expect("client").execute(sql, params).expect(sql);
    }

    fn count(c: &PgConn, sql: &str) -> i64 {
        c.c().expect("client").query_one(sql, &[]).and_then(|r| r.try_get(0)).expect(sql)
    }

    /// Couple 1 `life` with files on cameras `x` and `y` (`n` of each, `same.mov` in each folder).
    fn setup(c: &PgConn, x: i64, y: i64) {
        exec(
            c,
            "INSERT INTO couples (id, display_name, event_date, folder_name, created_at)
                 VALUES (1, 'L', '2026-01-01', 'life', 0) ON CONFLICT DO NOTHING",
            &[],
        );
        for cam in [x, y] {
            exec(
                c,
                "INSERT INTO cameras (id, slug, name, footage_type, created_at) VALUES ($1, $2, 'C', 'modern', 0)",
                &[&cam, &format!("cam{cam}")],
            );
            let h = format!("{:02x}", cam % 256).repeat(32);
            exec(c, "INSERT INTO blobs (hash, size, stored_at) VALUES ($1, 1000, 0)", &[&h]);
            for n in 0..3i64 {
                let name = if n == 0 { "same.mov".to_string() } else { format!("c{cam}-{n}.mov") };
                exec(
                    c,
                    "INSERT INTO files (couple_id, footage_type, camera_id, blob_hash, display_name, name_key,
                         original_path, source, source_mtime_ns, imported_at)
                     VALUES (1, 'modern', $1, $2, $3, $4, $3, '/card', 0, 0)",
                    &[&cam, &h, &name.as_bytes(), &name],
                );
            }
        }
    }

    #[test]
    fn a_rename_waits_for_another_of_the_same_couple_and_retires_the_name_that_one_left() {
        let dsn = catalog();
        let c = open(&dsn);
        setup(&c, 1, 2);
        let (ready_tx, ready) = std::sync::mpsc::channel();
        let other = open(&dsn);
        let first = std::thread::spawn(move || {
            let mut c2 = other.c().expect("client");
            let mut t = c2.transaction().expect("begin");
            t.execute("SELECT 1 FROM couples WHERE id = 1 FOR NO KEY UPDATE", &[]).expect("lock");
            ready_tx.send(()).expect("ready");
            std::thread::sleep(std::time::Duration::from_millis(300));
            t.execute("UPDATE couples SET folder_name = 'life2' WHERE id = 1", &[]).expect("rename");
            t.execute("INSERT INTO couple_aliases (folder_name, couple_id, created_at) VALUES ('life', 1, 0)", &[])
                .expect("old name");
            t.commit().expect("commit");
        });
        ready.recv().expect("ready");
        c.rename_couple_folder(1, "L", "2026-01-01", "life3", &Actor { uid: 1, at: 1 }).expect("rename");
        first.join().expect("first rename");
        let mut old = c.couple_aliases_of(1).expect("old names");
        old.sort();
        assert_eq!(old, ["life", "life2"], "renamed from what the first one left");
        // Two couples renamed to the same folder at once: one gets it, the other is told it is taken.
        exec(
            &c,
            "INSERT INTO couples (id, display_name, event_date, folder_name, created_at)
                  VALUES (2, 'M', '2026-01-01', 'm', 0)",
            &[],
        );
        let go = |couple: i64| {
            let dsn = dsn.clone();
            std::thread::spawn(move || {
                open(&dsn).rename_couple_folder(couple, "X", "2026-01-01", "x", &Actor { uid: 1, at: 1 })
            })
        };
        let (a, b) = (go(1), go(2));
        let rs = [a.join().expect("thread"), b.join().expect("thread")];
        assert_eq!(rs.iter().filter(|r| r.is_ok()).count(), 1, "{rs:?}");
        assert!(rs.iter().all(|r| r.is_ok() || matches!(r, Err(Error::Invalid(_)))), "{rs:?}");
    }

    #[test]
    fn crossed_merges_and_moves_at_once_leave_one_merge_and_right_totals() {
        let dsn = catalog();
        let c = open(&dsn);
        for round in 0..6i64 {
            let (x, y) = (10 + 2 * round, 11 + 2 * round);
            setup(&c, x, y);
            let go = |from: i64, into: i64| {
                let dsn = dsn.clone();
                std::thread::spawn(move || {
                    let c = open(&dsn);
                    let by = Actor { uid: 1, at: 1 };
                    let clip = count(&c, &format!("SELECT MIN(id) FROM files WHERE camera_id = {from}"));
                    let moved = c.move_file(clip, Some(into), FootageType::Dadcam, &by).map(|_| ());
                    (moved, c.merge_cameras(from, into, &by).map(|_| ()))
                })
            };
            let (a, b) = (go(x, y), go(y, x));
            let (a, b) = (a.join().expect("thread"), b.join().expect("thread"));
            assert_eq!([&a.1, &b.1].iter().filter(|r| r.is_ok()).count(), 1, "one merge wins: {a:?} {b:?}");
            for r in [&a.0, &a.1, &b.0, &b.1] {
                assert!(r.is_ok() || matches!(r, Err(Error::Invalid(_))), "no deadlock, no clash: {r:?}");
            }
            let stray =
                "SELECT COUNT(*) FROM files f JOIN cameras c ON c.id = f.camera_id WHERE c.merged_into IS NOT NULL";
            assert_eq!(count(&c, stray), 0, "no file left on a merged camera");
            let dup = "SELECT COUNT(*) FROM (SELECT 1 FROM files GROUP BY couple_id, footage_type, camera_id, name_key
                        HAVING COUNT(*) > 1) d";
            assert_eq!(count(&c, dup), 0);
        }
        let off = "SELECT COUNT(*) FROM camera_totals t
                    WHERE files <> (SELECT COUNT(*) FROM files f WHERE f.camera_id = t.camera_id)";
        assert_eq!(count(&c, off), 0, "camera totals");
        assert_eq!(count(&c, "SELECT files FROM couple_totals WHERE couple_id = 1"), 36);
        assert_eq!(count(&c, "SELECT COUNT(*) FROM files"), 36);
    }

    #[test]
    fn an_old_place_recorded_again_replaces_the_row_with_a_newer_one() {
        let c = open(&catalog());
        setup(&c, 1, 2);
        let ids = || count(&c, "SELECT MAX(id) FROM file_aliases");
        let mut client = c.c().expect("client");
        let mut tx = client.transaction().expect("begin");
        let mut p = Prepared::default();
        let st = p.get(&mut tx, RECORD_ALIAS, "record").expect("prepare");
        let none = None::<i64>;
        for (file, at) in [(1i64, 5i64), (2, 9)] {
            tx.execute(&st, &[&file, &1i64, &"dadcam", &none, &&b"A.MOV"[..], &"a.mov", &at]).expect("record");
        }
        tx.commit().expect("commit");
        drop(client);
        assert_eq!(count(&c, "SELECT COUNT(*) FROM file_aliases"), 1);
        assert_eq!(count(&c, "SELECT file_id * 100 + created_at FROM file_aliases"), 209, "the later one");
        assert!(ids() > 1, "a new id, as INSERT OR REPLACE gives");
    }
}
