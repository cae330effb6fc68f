//! [`Health`] on Postgres (a port of `sqlite/health.rs`).

use super::*;
use crate::catalog::Health;

impl Health for PgConn {
    #[allow(unused_variables)]
    fn mark_verified(&self, hashes: &[String], at: i64) -> Result<()> {
        unimplemented!("postgres: mark_verified")
    }

    #[allow(unused_variables)]
    fn start_scrub(&self, trigger: &str, at: i64) -> Result<i64> {
        unimplemented!("postgres: start_scrub")
    }

    #[allow(unused_variables)]
    fn finish_scrub(&self, run: &ScrubRun) -> Result<()> {
        unimplemented!("postgres: finish_scrub")
    }

    #[allow(unused_variables)]
    fn set_blob_unhealthy(&self, hash: &str, health: &str, problem: &str) -> Result<bool> {
        unimplemented!("postgres: set_blob_unhealthy")
    }

    #[allow(unused_variables)]
    fn set_blobs_unhealthy(&self, found: &[(String, String, String)]) -> Result<usize> {
        unimplemented!("postgres: set_blobs_unhealthy")
    }

    #[allow(unused_variables)]
    fn heal_blob(&self, hash: &str, session_id: Option<i64>, how: &str) -> Result<()> {
        unimplemented!("postgres: heal_blob")
    }

    #[allow(unused_variables)]
    fn event(&self, kind: &str, hash: Option<&str>, file_id: Option<i64>, session_id: Option<i64>, message: &str,) -> Result<()> {
        unimplemented!("postgres: event")
    }

}
