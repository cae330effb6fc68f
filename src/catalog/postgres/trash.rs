//! [`Trash`] on Postgres (a port of `sqlite/trash.rs`).

use super::*;
use crate::catalog::Trash;

impl Trash for PgConn {
    #[allow(unused_variables)]
    fn trash_file(&self, file_id: i64, label: &str, purge_after: i64, by: &Actor) -> Result<TrashEntry> {
        unimplemented!("postgres: trash_file")
    }

    #[allow(unused_variables)]
    fn trash_couple(&self, couple_id: i64, purge_after: i64, by: &Actor) -> Result<TrashEntry> {
        unimplemented!("postgres: trash_couple")
    }

    #[allow(unused_variables)]
    fn trash_session(&self, session_id: i64, purge_after: i64, by: &Actor) -> Result<TrashEntry> {
        unimplemented!("postgres: trash_session")
    }

    #[allow(unused_variables)]
    fn trash(&self) -> Result<Vec<TrashEntry>> {
        unimplemented!("postgres: trash")
    }

    #[allow(unused_variables)]
    fn trash_entry(&self, id: i64) -> Result<TrashEntry> {
        unimplemented!("postgres: trash_entry")
    }

    #[allow(unused_variables)]
    fn restore(&self, trash_id: i64, by: &Actor) -> Result<TrashEntry> {
        unimplemented!("postgres: restore")
    }

    #[allow(unused_variables)]
    fn purge(&self, trash_id: i64, by: &Actor) -> Result<Purged> {
        unimplemented!("postgres: purge")
    }

    #[allow(unused_variables)]
    fn garbage(&self, after: i64, limit: u32) -> Result<Vec<Garbage>> {
        unimplemented!("postgres: garbage")
    }

    #[allow(unused_variables)]
    fn needed_hashes(&self, hashes: &[String]) -> Result<std::collections::HashSet<String>> {
        unimplemented!("postgres: needed_hashes")
    }

    #[allow(unused_variables)]
    fn forget_blobs(&self, hashes: &[String]) -> Result<Vec<String>> {
        unimplemented!("postgres: forget_blobs")
    }

    #[allow(unused_variables)]
    fn remove_unneeded(&self, hashes: &[String], remove: &mut dyn FnMut(&str) -> Result<()>) -> Result<Vec<String>> {
        unimplemented!("postgres: remove_unneeded")
    }

}
