//! [`Lifecycle`] on SQLite: renames, moves, merges, the trash and its purge, garbage blobs, the audit log, and
//! the alias reads the tree resolves old paths with. Every change is one IMMEDIATE transaction with its audit
//! event and its `lifecycle` archive event.

use super::*;
use crate::catalog::Lifecycle;

fn pending() -> Error {
    Error::Invalid("not built yet".into())
}

impl SqliteConn {
    pub(super) fn couple_alias_impl(&self, _folder: &str) -> Result<Option<(i64, i64)>> {
        Err(pending())
    }
}

#[allow(unused_variables)]
impl Lifecycle for SqliteConn {
    fn audit(&self, by: &Actor, action: &str, couple_id: Option<i64>, summary: &str) -> Result<()> {
        Err(pending())
    }
    fn rename_couple(
        &self,
        couple_id: i64,
        display_name: &str,
        event_date: &str,
        folder: &str,
        by: &Actor,
    ) -> Result<()> {
        Err(pending())
    }
    fn rename_camera(&self, camera_id: i64, name: &str, slug: &str, by: &Actor) -> Result<()> {
        Err(pending())
    }
    fn merge_cameras(&self, from: i64, into: i64, by: &Actor) -> Result<Vec<Moved>> {
        Err(pending())
    }
    fn move_file(&self, file_id: i64, camera_id: Option<i64>, ft: FootageType, by: &Actor) -> Result<Vec<Moved>> {
        Err(pending())
    }
    fn trash_file(&self, file_id: i64, label: &str, purge_after: i64, by: &Actor) -> Result<TrashEntry> {
        Err(pending())
    }
    fn trash_couple(&self, couple_id: i64, purge_after: i64, by: &Actor) -> Result<TrashEntry> {
        Err(pending())
    }
    fn trash_session(&self, session_id: i64, purge_after: i64, by: &Actor) -> Result<TrashEntry> {
        Err(pending())
    }
    fn restore(&self, trash_id: i64, by: &Actor) -> Result<TrashEntry> {
        Err(pending())
    }
    fn purge(&self, trash_id: i64, by: &Actor) -> Result<Purged> {
        Err(pending())
    }
    fn forget_blobs(&self, hashes: &[String]) -> Result<Vec<String>> {
        Err(pending())
    }
    fn remove_unneeded(&self, hashes: &[String], remove: &mut dyn FnMut(&str) -> Result<()>) -> Result<Vec<String>> {
        Err(pending())
    }
}

#[allow(unused_variables, dead_code)]
pub(super) fn reads(c: &SqliteConn) {}
