//! [`Trash`] on SQLite: removed couples, files and imports (rows marked with their trash entry), restores,
//! purges, and garbage blobs.

use std::collections::HashSet;

use super::*;
use crate::catalog::Trash;

fn todo<T>() -> Result<T> {
    Err(Error::Invalid("not built yet".into()))
}

impl Trash for SqliteConn {
    fn trash_file(&self, _file_id: i64, _label: &str, _purge_after: i64, _by: &Actor) -> Result<TrashEntry> {
        todo()
    }

    fn trash_couple(&self, _couple_id: i64, _purge_after: i64, _by: &Actor) -> Result<TrashEntry> {
        todo()
    }

    fn trash_session(&self, _session_id: i64, _purge_after: i64, _by: &Actor) -> Result<TrashEntry> {
        todo()
    }

    fn trash(&self) -> Result<Vec<TrashEntry>> {
        Ok(Vec::new())
    }

    fn trash_entry(&self, _id: i64) -> Result<TrashEntry> {
        todo()
    }

    fn restore(&self, _trash_id: i64, _by: &Actor) -> Result<TrashEntry> {
        todo()
    }

    fn purge(&self, _trash_id: i64, _by: &Actor) -> Result<Purged> {
        todo()
    }

    fn garbage(&self, _after: i64, _limit: u32) -> Result<Vec<Garbage>> {
        Ok(Vec::new())
    }

    fn needed_hashes(&self, hashes: &[String]) -> Result<HashSet<String>> {
        Ok(hashes.iter().cloned().collect())
    }

    fn forget_blobs(&self, _hashes: &[String]) -> Result<Vec<String>> {
        Ok(Vec::new())
    }

    fn remove_unneeded(&self, _hashes: &[String], _remove: &mut dyn FnMut(&str) -> Result<()>) -> Result<Vec<String>> {
        Ok(Vec::new())
    }
}
