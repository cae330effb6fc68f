//! [`IngestEntries`] on Postgres (a port of `sqlite/ingest_entries.rs`).

use super::*;
use crate::catalog::IngestEntries;

impl IngestEntries for PgConn {
    #[allow(unused_variables)]
    fn ingest_entries(&self) -> Result<Vec<IngestEntry>> {
        unimplemented!("postgres: ingest_entries")
    }

    #[allow(unused_variables)]
    fn add_ingest_entry(&self, e: &IngestEntry) -> Result<i64> {
        unimplemented!("postgres: add_ingest_entry")
    }

    #[allow(unused_variables)]
    fn update_ingest_entry(&self, e: &IngestEntry) -> Result<()> {
        unimplemented!("postgres: update_ingest_entry")
    }

    #[allow(unused_variables)]
    fn remove_ingest_entry(&self, id: i64) -> Result<()> {
        unimplemented!("postgres: remove_ingest_entry")
    }

    #[allow(unused_variables)]
    fn add_item(&self, session_id: i64, it: &NewItem, sidecar_of: Option<i64>) -> Result<i64> {
        unimplemented!("postgres: add_item")
    }

    #[allow(unused_variables)]
    fn item(&self, id: i64) -> Result<Option<Item>> {
        unimplemented!("postgres: item")
    }

    #[allow(unused_variables)]
    fn unfinished_sessions_with_source_prefix(&self, prefix: &str) -> Result<Vec<i64>> {
        unimplemented!("postgres: unfinished_sessions_with_source_prefix")
    }

}
