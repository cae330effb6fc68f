//! [`Lifecycle`] on SQLite: folder and slug renames, moves and camera merges, and the aliases (old names) that
//! keep resolving after them. Each change is one IMMEDIATE transaction with its audit and lifecycle events.

use rusqlite::{params, OptionalExtension, Transaction};

use super::registry::audit_on;
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

/// A clip (by id) and its sidecars, as they are placed now.
fn group_of(tx: &Transaction, clip_id: i64) -> Result<Vec<Member>> {
    let mut st = tx
        .prepare_cached(
            "SELECT id, couple_id, footage_type, camera_id, display_name, original_path FROM files
              WHERE id = ?1 OR sidecar_of = ?1 ORDER BY sidecar_of IS NOT NULL, id",
        )
        .ctx("read clip")?;
    let members = st
        .query_map([clip_id], |r| {
            let ft: String = r.get(2)?;
            let original: Vec<u8> = r.get(5)?;
            Ok(Member {
                id: r.get(0)?,
                at: placement_of(r.get(1)?, &ft, r.get(3)?, r.get(4)?),
                original: base_name(&original),
            })
        })
        .ctx("read clip")?
        .collect::<rusqlite::Result<Vec<_>>>()
        .ctx("read clip")?;
    Ok(members)
}

/// The files that hold a name key in a directory: a file row there (live or in the trash), or an old place.
fn holders(tx: &Transaction, couple: i64, ft: FootageType, camera: Option<i64>, key: &str) -> Result<Vec<i64>> {
    let mut st = tx
        .prepare_cached(
            "SELECT id FROM files WHERE couple_id = ?1 AND footage_type = ?2 AND IFNULL(camera_id, 0) = ?3
               AND name_key = ?4
             UNION ALL
             SELECT file_id FROM file_aliases WHERE couple_id = ?1 AND footage_type = ?2
               AND IFNULL(camera_id, 0) = ?3 AND name_key = ?4",
        )
        .ctx("check name")?;
    let ids = st
        .query_map(params![couple, ft.as_str(), camera.unwrap_or(0), key], |r| r.get(0))
        .ctx("check name")?
        .collect::<rusqlite::Result<Vec<i64>>>()
        .ctx("check name")?;
    Ok(ids)
}

/// Moves a group to another directory of its couple: the same names if they are free there, else the first
/// ` (n)` suffix free for all of them (sidecars keep pairing with their clip). Records each old place.
fn place_group(
    tx: &Transaction,
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
        let mut free = keys.iter().enumerate().all(|(i, k)| !keys[..i].contains(k));
        for k in &keys {
            if !free {
                break;
            }
            free = holders(tx, clip.at.couple_id, ft, camera, k)?.iter().all(|h| ids.contains(h));
        }
        if free {
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
    let mut moved = Vec::new();
    for ((m, name), key) in group.iter().zip(names).zip(keys) {
        let to = Placement { couple_id: m.at.couple_id, footage_type: ft, camera_id: camera, name };
        // Moving back to where it was once: that old place is its place again.
        tx.execute(
            "DELETE FROM file_aliases WHERE file_id = ?1 AND couple_id = ?2 AND footage_type = ?3
               AND IFNULL(camera_id, 0) = ?4 AND name_key = ?5",
            params![m.id, to.couple_id, ft.as_str(), camera.unwrap_or(0), key],
        )
        .ctx("drop alias")?;
        tx.execute(
            "UPDATE files SET footage_type = ?2, camera_id = ?3, display_name = ?4, name_key = ?5 WHERE id = ?1",
            params![m.id, ft.as_str(), camera, to.name, key],
        )
        .ctx("move file")?;
        tx.execute(
            "INSERT OR REPLACE INTO file_aliases (file_id, couple_id, footage_type, camera_id, display_name, name_key,
                 created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                m.id,
                m.at.couple_id,
                m.at.footage_type.as_str(),
                m.at.camera_id,
                m.at.name,
                organize::name_key(&m.at.name),
                at
            ],
        )
        .ctx("record old place")?;
        moved.push(Moved { file_id: m.id, from: m.at.clone(), to });
    }
    Ok(moved)
}

/// A live camera (not merged into another), or the error naming it.
fn live_camera(tx: &Transaction, id: i64) -> Result<(String, Option<i64>)> {
    tx.query_row("SELECT slug, merged_into FROM cameras WHERE id = ?1", [id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
        .ctx("read camera")?
        .ok_or_else(|| Error::NotFound(format!("camera {id}")))
}

fn slug_of(tx: &Transaction, camera: Option<i64>) -> Result<String> {
    match camera {
        None => Ok("unknown".into()),
        Some(id) => Ok(live_camera(tx, id)?.0),
    }
}

fn folder_of(tx: &Transaction, couple: i64) -> Result<String> {
    tx.query_row("SELECT folder_name FROM couples WHERE id = ?1", [couple], |r| r.get(0))
        .optional()
        .ctx("read couple")?
        .ok_or_else(|| Error::NotFound(format!("couple {couple}")))
}

/// A placement as a tree path, for the audit log.
fn path_of(tx: &Transaction, p: &Placement) -> Result<String> {
    Ok(format!(
        "{}/source/{}/{}/{}",
        folder_of(tx, p.couple_id)?,
        p.footage_type.as_str(),
        slug_of(tx, p.camera_id)?,
        String::from_utf8_lossy(&p.name)
    ))
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

/// The name check and bookkeeping of a rename of `id` from `old` to `new`: `Error::Invalid` when another owner
/// has `new` as its name or an old one; otherwise, when the name changes, `old` becomes an old name of `id`
/// (and `new`, if it was one of `id`'s old names, a rename back, is one no more). Returns whether it changed.
fn retire_name(tx: &Transaction, n: &Names, id: i64, old: &str, new: &str, at: i64) -> Result<bool> {
    let (table, column, aliases, owner) = (n.table, n.column, n.aliases, n.owner);
    let taken: bool = tx
        .query_row(
            &format!(
                "SELECT EXISTS(SELECT 1 FROM {table} WHERE {column} = ?1 AND id <> ?2)
                     OR EXISTS(SELECT 1 FROM {aliases} WHERE {column} = ?1 AND {owner} <> ?2)"
            ),
            params![new, id],
            |r| r.get(0),
        )
        .ctx("check a new name")?;
    if taken {
        return Err(Error::Invalid(format!("the {} {new} is taken (by a {}, or a {}'s old name)", n.what, n.by, n.by)));
    }
    if new == old {
        return Ok(false);
    }
    tx.execute(&format!("DELETE FROM {aliases} WHERE {column} = ?1"), [new]).ctx("drop an old name")?;
    tx.execute(
        &format!("INSERT INTO {aliases} ({column}, {owner}, created_at) VALUES (?1, ?2, ?3)"),
        params![old, id, at],
    )
    .ctx("record an old name")?;
    Ok(true)
}

fn gone_of(moved: &[Moved]) -> Vec<Gone> {
    moved.iter().map(|m| Gone::File { file_id: m.file_id, at: m.from.clone() }).collect()
}

impl Lifecycle for SqliteConn {
    fn rename_couple_folder(
        &self,
        couple_id: i64,
        display_name: &str,
        event_date: &str,
        folder: &str,
        by: &Actor,
    ) -> Result<()> {
        let tx = immediate(&self.conn).ctx("begin couple rename")?;
        let (old_name, old_date, old): (String, String, String) = tx
            .query_row(
                "SELECT display_name, event_date, folder_name FROM couples WHERE id = ?1 AND trash_id IS NULL",
                [couple_id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .ctx("read couple")?
            .ok_or_else(|| Error::NotFound(format!("couple {couple_id}")))?;
        let mut gone = Vec::new();
        if retire_name(&tx, &FOLDERS, couple_id, &old, folder, by.at)? {
            gone.push(Gone::Couple { couple_id, folder: old.clone() });
        }
        tx.execute(
            "UPDATE couples SET display_name = ?2, event_date = ?3, folder_name = ?4 WHERE id = ?1",
            params![couple_id, display_name, event_date, folder],
        )
        .ctx("rename couple")?;
        let mut summary = format!("{old} -> {folder}");
        if old_name != display_name {
            summary += &format!("; name {old_name:?} -> {display_name:?}");
        }
        if old_date != event_date {
            summary += &format!("; date {old_date} -> {event_date}");
        }
        audit_on(&tx, by, "couple.rename", Some(couple_id), &summary)?;
        lifecycle_event(&tx, &format!("couple renamed: {summary}"), &gone)?;
        tx.commit().ctx("commit couple rename")
    }

    fn rename_camera_slug(&self, camera_id: i64, name: &str, slug: &str, by: &Actor) -> Result<()> {
        let tx = immediate(&self.conn).ctx("begin camera rename")?;
        let (old, merged) = live_camera(&tx, camera_id)?;
        if merged.is_some() {
            return Err(Error::Invalid(format!("camera {old} was merged into another camera")));
        }
        let old_name: String =
            tx.query_row("SELECT name FROM cameras WHERE id = ?1", [camera_id], |r| r.get(0)).ctx("read camera")?;
        let mut gone = Vec::new();
        if retire_name(&tx, &SLUGS, camera_id, &old, slug, by.at)? {
            gone.push(Gone::Camera { camera_id, slug: old.clone() });
        }
        tx.execute("UPDATE cameras SET name = ?2, slug = ?3 WHERE id = ?1", params![camera_id, name, slug])
            .ctx("rename camera")?;
        let summary = format!("{old} -> {slug}; name {old_name:?} -> {name:?}");
        audit_on(&tx, by, "camera.rename", None, &summary)?;
        lifecycle_event(&tx, &format!("camera renamed: {summary}"), &gone)?;
        tx.commit().ctx("commit camera rename")
    }

    fn merge_cameras(&self, from: i64, into: i64, by: &Actor) -> Result<Vec<Moved>> {
        if from == into {
            return Err(Error::Invalid("a camera cannot be merged into itself".into()));
        }
        let tx = immediate(&self.conn).ctx("begin camera merge")?;
        let (from_slug, from_merged) = live_camera(&tx, from)?;
        let (into_slug, into_merged) = live_camera(&tx, into)?;
        for (slug, merged) in [(&from_slug, from_merged), (&into_slug, into_merged)] {
            if merged.is_some() {
                return Err(Error::Invalid(format!("camera {slug} was already merged into another camera")));
            }
        }
        // Clips first (each with its sidecars), then any file of the camera whose clip is elsewhere.
        let ids: Vec<(i64, Option<i64>)> = {
            let mut st = tx
                .prepare("SELECT id, sidecar_of FROM files WHERE camera_id = ?1 ORDER BY sidecar_of IS NOT NULL, id")
                .ctx("list camera files")?;
            let v = st
                .query_map([from], |r| Ok((r.get(0)?, r.get(1)?)))
                .ctx("list camera files")?
                .collect::<rusqlite::Result<Vec<_>>>()
                .ctx("list camera files")?;
            v
        };
        let mut moved = Vec::new();
        let mut done = std::collections::HashSet::new();
        for (id, sidecar_of) in ids {
            if done.contains(&id) {
                continue;
            }
            let group = match sidecar_of {
                None => group_of(&tx, id)?,
                Some(_) => group_of(&tx, id)?.into_iter().filter(|m| m.id == id).collect(),
            };
            let group: Vec<Member> = group.into_iter().filter(|m| m.at.camera_id == Some(from)).collect();
            done.extend(group.iter().map(|m| m.id));
            let ft = group.first().map(|m| m.at.footage_type).unwrap_or(FootageType::Modern);
            moved.extend(place_group(&tx, &group, ft, Some(into), by.at)?);
        }
        tx.execute("UPDATE import_sessions SET camera_id = ?2 WHERE camera_id = ?1", params![from, into])
            .ctx("re-point sessions")?;
        tx.execute("UPDATE network_sources SET camera_id = ?2 WHERE camera_id = ?1", params![from, into])
            .ctx("re-point sources")?;
        tx.execute("UPDATE cameras SET merged_into = ?2 WHERE id = ?1 OR merged_into = ?1", params![from, into])
            .ctx("retire camera")?;
        let summary = format!("{from_slug} -> {into_slug}: {} files moved", moved.len());
        audit_on(&tx, by, "camera.merge", None, &summary)?;
        let mut gone = vec![Gone::Camera { camera_id: from, slug: from_slug }];
        gone.extend(gone_of(&moved));
        lifecycle_event(&tx, &format!("cameras merged: {summary}"), &gone)?;
        tx.commit().ctx("commit camera merge")?;
        Ok(moved)
    }

    fn move_file(&self, file_id: i64, camera_id: Option<i64>, ft: FootageType, by: &Actor) -> Result<Vec<Moved>> {
        let tx = immediate(&self.conn).ctx("begin file move")?;
        let row: Option<(Option<i64>, Option<i64>)> = tx
            .query_row("SELECT sidecar_of, trash_id FROM files WHERE id = ?1", [file_id], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()
            .ctx("read file")?;
        match row {
            None | Some((_, Some(_))) => return Err(Error::NotFound(format!("file {file_id}"))),
            Some((Some(_), _)) => {
                return Err(Error::Invalid("this is a sidecar: move its clip (sidecars move with it)".into()));
            }
            Some((None, None)) => {}
        }
        if let Some(id) = camera_id {
            let (slug, merged) = live_camera(&tx, id)?;
            if merged.is_some() {
                return Err(Error::Invalid(format!("camera {slug} was merged into another camera")));
            }
        }
        let group = group_of(&tx, file_id)?;
        let moved = place_group(&tx, &group, ft, camera_id, by.at)?;
        if let (Some(first), Some(couple)) = (moved.first(), group.first().map(|m| m.at.couple_id)) {
            let summary = format!(
                "{} -> {}{}",
                path_of(&tx, &first.from)?,
                path_of(&tx, &first.to)?,
                match moved.len() {
                    1 => String::new(),
                    n => format!(" (with {} sidecars)", n - 1),
                }
            );
            audit_on(&tx, by, "file.move", Some(couple), &summary)?;
            lifecycle_event(&tx, &format!("file moved: {summary}"), &gone_of(&moved))?;
        }
        tx.commit().ctx("commit file move")?;
        Ok(moved)
    }

    fn couple_alias(&self, folder_name: &str) -> Result<Option<i64>> {
        self.conn
            .prepare_cached(
                "SELECT a.couple_id FROM couple_aliases a JOIN couples c ON c.id = a.couple_id
                  WHERE a.folder_name = ?1 AND c.trash_id IS NULL",
            )
            .ctx("find old folder name")?
            .query_row([folder_name], |r| r.get(0))
            .optional()
            .ctx("find old folder name")
    }

    fn couple_aliases_of(&self, couple_id: i64) -> Result<Vec<String>> {
        rows(
            &self.conn,
            "SELECT folder_name FROM couple_aliases WHERE couple_id = ?1 ORDER BY id",
            [couple_id],
            |r| r.get(0),
            "list old folder names",
        )
    }

    fn camera_alias(&self, slug: &str) -> Result<Option<i64>> {
        self.conn
            .prepare_cached(
                "SELECT camera_id FROM camera_aliases WHERE slug = ?1
                 UNION ALL SELECT id FROM cameras WHERE slug = ?1 AND merged_into IS NOT NULL LIMIT 1",
            )
            .ctx("find old camera slug")?
            .query_row([slug], |r| r.get(0))
            .optional()
            .ctx("find old camera slug")
    }

    fn file_at_alias(&self, at: &Placement) -> Result<Option<FileRow>> {
        let sql = format!(
            "{FILE_SELECT} JOIN file_aliases a ON a.file_id = f.id
              WHERE a.couple_id = ?1 AND a.footage_type = ?2 AND IFNULL(a.camera_id, 0) = ?3 AND a.display_name = ?4
                AND f.trash_id IS NULL"
        );
        self.conn
            .prepare_cached(&sql)
            .ctx("find old place")?
            .query_row(
                params![at.couple_id, at.footage_type.as_str(), at.camera_id.unwrap_or(0), at.name],
                file_from_row,
            )
            .optional()
            .ctx("find old place")
    }

    fn aliases_under(&self, couple_id: i64, ft: Option<FootageType>, camera: Option<Option<i64>>) -> Result<bool> {
        self.conn
            .prepare_cached(
                "SELECT EXISTS(SELECT 1 FROM file_aliases a JOIN files f ON f.id = a.file_id
                  WHERE a.couple_id = ?1 AND (?2 IS NULL OR a.footage_type = ?2)
                    AND (?3 IS NULL OR IFNULL(a.camera_id, 0) = ?3) AND f.trash_id IS NULL)",
            )
            .ctx("find old places")?
            .query_row(params![couple_id, ft.map(|t| t.as_str()), camera.map(|c| c.unwrap_or(0))], |r| r.get(0))
            .ctx("find old places")
    }

    fn aliases_of(&self, file_id: i64) -> Result<Vec<FileAlias>> {
        rows(
            &self.conn,
            "SELECT couple_id, footage_type, camera_id, display_name, created_at FROM file_aliases
              WHERE file_id = ?1 ORDER BY id",
            [file_id],
            |r| {
                let ft: String = r.get(1)?;
                Ok(FileAlias { file_id, at: placement_of(r.get(0)?, &ft, r.get(2)?, r.get(3)?), created_at: r.get(4)? })
            },
            "list old places",
        )
    }

    fn has_aliases(&self) -> Result<bool> {
        self.conn
            .query_row(
                "SELECT EXISTS(SELECT 1 FROM couple_aliases) OR EXISTS(SELECT 1 FROM camera_aliases)
                     OR EXISTS(SELECT 1 FROM file_aliases)
                     OR EXISTS(SELECT 1 FROM cameras WHERE merged_into IS NOT NULL)",
                [],
                |r| r.get(0),
            )
            .ctx("look for old names")
    }
}
