//! [`Registry`] on Postgres (a port of `sqlite/registry.rs`).

use super::*;
use crate::catalog::Registry;

impl Registry for PgConn {
    #[allow(unused_variables)]
    fn add_couple(&self, display_name: &str, event_date: &str, folder_name: &str) -> Result<i64> {
        one(
            &mut *self.c()?,
            "INSERT INTO couples (display_name, event_date, folder_name, created_at) VALUES ($1, $2, $3, $4)
             RETURNING id",
            &[&display_name, &event_date, &folder_name, &now()],
            "add couple",
        )
    }

    #[allow(unused_variables)]
    fn folder_name_taken(&self, folder_name: &str) -> Result<bool> {
        unimplemented!("postgres: folder_name_taken")
    }

    #[allow(unused_variables)]
    fn add_camera(&self, c: &NewCamera) -> Result<i64> {
        unimplemented!("postgres: add_camera")
    }

    #[allow(unused_variables)]
    fn camera_slug_taken(&self, slug: &str) -> Result<bool> {
        unimplemented!("postgres: camera_slug_taken")
    }

    #[allow(unused_variables)]
    fn rename_couple(&self, couple_id: i64, display_name: &str, event_date: &str, by: &Actor) -> Result<()> {
        unimplemented!("postgres: rename_couple")
    }

    #[allow(unused_variables)]
    fn rename_camera(&self, camera_id: i64, name: &str, by: &Actor) -> Result<()> {
        unimplemented!("postgres: rename_camera")
    }

    #[allow(unused_variables)]
    fn audit(&self, by: &Actor, action: &str, couple_id: Option<i64>, summary: &str) -> Result<()> {
        unimplemented!("postgres: audit")
    }

    #[allow(unused_variables)]
    fn add_source(&self, n: &NewNetworkSource) -> Result<i64> {
        unimplemented!("postgres: add_source")
    }

    #[allow(unused_variables)]
    fn sources(&self) -> Result<Vec<NetworkSource>> {
        unimplemented!("postgres: sources")
    }

    #[allow(unused_variables)]
    fn source(&self, id: i64) -> Result<NetworkSource> {
        unimplemented!("postgres: source")
    }

    #[allow(unused_variables)]
    fn set_source_enabled(&self, id: i64, enabled: bool) -> Result<()> {
        unimplemented!("postgres: set_source_enabled")
    }

    #[allow(unused_variables)]
    fn set_source_state(&self, id: i64, state: &str, failures: Option<i64>, error: Option<&str>) -> Result<()> {
        unimplemented!("postgres: set_source_state")
    }

    #[allow(unused_variables)]
    fn touch_source_scan(&self, id: i64) -> Result<()> {
        unimplemented!("postgres: touch_source_scan")
    }

    #[allow(unused_variables)]
    fn remove_source(&self, id: i64) -> Result<()> {
        unimplemented!("postgres: remove_source")
    }

    #[allow(unused_variables)]
    fn add_event(&self, source_id: i64, session_id: Option<i64>, level: &str, message: &str) -> Result<()> {
        unimplemented!("postgres: add_event")
    }

    #[allow(unused_variables)]
    fn events(&self, source_id: i64) -> Result<Vec<SourceEvent>> {
        unimplemented!("postgres: events")
    }

    #[allow(unused_variables)]
    fn recent_problems(&self, limit: u32) -> Result<Vec<SourceEvent>> {
        unimplemented!("postgres: recent_problems")
    }

    #[allow(unused_variables)]
    fn backup_to(&self, dest: &Path) -> Result<()> {
        unimplemented!("postgres: backup_to")
    }

}
