//! [`ImportLog`] on Postgres (a port of `sqlite/import_log.rs`).

use super::*;
use crate::catalog::ImportLog;

impl ImportLog for PgConn {
    #[allow(unused_variables)]
    fn create_session(&self, couple_id: i64, footage_type: Option<FootageType>, camera_id: Option<i64>, duplicates: DuplicateAction, source: &str, source_paths: &[Vec<u8>], source_id: Option<i64>, salvage: bool,) -> Result<i64> {
        unimplemented!("postgres: create_session")
    }

    #[allow(unused_variables)]
    fn unfinished_session_of(&self, couple_id: i64) -> Result<Option<i64>> {
        unimplemented!("postgres: unfinished_session_of")
    }

    #[allow(unused_variables)]
    fn set_session_status(&self, id: i64, status: SessionStatus, error: Option<&str>) -> Result<()> {
        unimplemented!("postgres: set_session_status")
    }

    #[allow(unused_variables)]
    fn set_session_error(&self, id: i64, error: Option<&str>) -> Result<()> {
        unimplemented!("postgres: set_session_error")
    }

    #[allow(unused_variables)]
    fn set_onset_manifest(&self, id: i64, summary: &str, problems_json: &str) -> Result<()> {
        unimplemented!("postgres: set_onset_manifest")
    }

    #[allow(unused_variables)]
    fn start_run(&self, id: i64) -> Result<()> {
        unimplemented!("postgres: start_run")
    }

    #[allow(unused_variables)]
    fn cancel_session(&self, id: i64) -> Result<()> {
        unimplemented!("postgres: cancel_session")
    }

    #[allow(unused_variables)]
    fn reset_failed_items(&self, id: i64) -> Result<usize> {
        unimplemented!("postgres: reset_failed_items")
    }

    #[allow(unused_variables)]
    fn set_durable_commits(&self, durable: bool) -> Result<()> {
        unimplemented!("postgres: set_durable_commits")
    }

    #[allow(unused_variables)]
    fn recount_session(&self, id: i64) -> Result<()> {
        unimplemented!("postgres: recount_session")
    }

    #[allow(unused_variables)]
    fn insert_items(&mut self, session_id: i64, items: &[NewItem]) -> Result<()> {
        unimplemented!("postgres: insert_items")
    }

    #[allow(unused_variables)]
    fn unfinished_item_at(&self, session_id: i64, path: &[u8]) -> Result<Option<Item>> {
        unimplemented!("postgres: unfinished_item_at")
    }

    #[allow(unused_variables)]
    fn set_item_state(&self, id: i64, state: ItemState, hash: Option<&str>) -> Result<()> {
        unimplemented!("postgres: set_item_state")
    }

    #[allow(unused_variables)]
    fn items_copied(&mut self, copies: &[(i64, &str, u64, i64)]) -> Result<()> {
        unimplemented!("postgres: items_copied")
    }

    #[allow(unused_variables)]
    fn set_item_damage(&self, id: i64, bad_ranges: Option<&str>) -> Result<()> {
        unimplemented!("postgres: set_item_damage")
    }

    #[allow(unused_variables)]
    fn set_item_checkpoint(&self, id: i64, checkpoint: Option<(u64, u64, i64)>) -> Result<()> {
        unimplemented!("postgres: set_item_checkpoint")
    }

    #[allow(unused_variables)]
    fn clear_item_hash(&self, id: i64) -> Result<()> {
        unimplemented!("postgres: clear_item_hash")
    }

    #[allow(unused_variables)]
    fn set_item_hash(&self, id: i64, hash: &str) -> Result<()> {
        unimplemented!("postgres: set_item_hash")
    }

    #[allow(unused_variables)]
    fn fill_blob_sums(&self, hash: &str, sums: &Sums) -> Result<bool> {
        unimplemented!("postgres: fill_blob_sums")
    }

    #[allow(unused_variables)]
    fn end_item(&mut self, item: &Item, state: ItemState, error: Option<&str>) -> Result<()> {
        unimplemented!("postgres: end_item")
    }

    #[allow(unused_variables)]
    fn couple_sizes(&self, couple_id: i64) -> Result<std::collections::HashSet<u64>> {
        unimplemented!("postgres: couple_sizes")
    }

    #[allow(unused_variables)]
    fn couple_has_blob(&self, couple_id: i64, hash: &str) -> Result<bool> {
        unimplemented!("postgres: couple_has_blob")
    }

    #[allow(unused_variables)]
    fn already_imported(&self, couple_id: i64, source: &str, rel: &[u8], size: u64, mtime_ns: i64) -> Result<bool> {
        unimplemented!("postgres: already_imported")
    }

    #[allow(unused_variables)]
    fn source_items_seen(&self, source_id: i64) -> Result<std::collections::HashSet<(Vec<u8>, u64, i64)>> {
        unimplemented!("postgres: source_items_seen")
    }

    #[allow(unused_variables)]
    fn begin_finalize(&mut self) -> Result<Box<dyn Finalize + '_>> {
        unimplemented!("postgres: begin_finalize")
    }

    #[allow(unused_variables)]
    fn try_lock_couple(&self, couple_id: i64) -> Result<Option<CoupleLease>> {
        unimplemented!("postgres: try_lock_couple")
    }

    #[allow(unused_variables)]
    fn couple_lock_holder(&self, couple_id: i64) -> Option<String> {
        unimplemented!("postgres: couple_lock_holder")
    }

    #[allow(unused_variables)]
    fn couple_lock_held(&self, couple_id: i64) -> Option<bool> {
        unimplemented!("postgres: couple_lock_held")
    }

}
