//! [`ReadCatalog`] on Postgres (a port of `sqlite/read.rs`).

use super::*;
use crate::catalog::ReadCatalog;

impl ReadCatalog for PgConn {
    #[allow(unused_variables)]
    fn schema_version(&self) -> Result<i64> {
        unimplemented!("postgres: schema_version")
    }

    #[allow(unused_variables)]
    fn couples(&self) -> Result<Vec<Couple>> {
        unimplemented!("postgres: couples")
    }

    #[allow(unused_variables)]
    fn couple_folders(&self) -> Result<Vec<(i64, String)>> {
        unimplemented!("postgres: couple_folders")
    }

    #[allow(unused_variables)]
    fn couple_by_folder(&self, folder_name: &str) -> Result<Couple> {
        unimplemented!("postgres: couple_by_folder")
    }

    #[allow(unused_variables)]
    fn couples_on(&self, event_date: &str) -> Result<Vec<Couple>> {
        unimplemented!("postgres: couples_on")
    }

    #[allow(unused_variables)]
    fn couple_by_id(&self, id: i64) -> Result<Couple> {
        unimplemented!("postgres: couple_by_id")
    }

    #[allow(unused_variables)]
    fn cameras(&self) -> Result<Vec<Camera>> {
        unimplemented!("postgres: cameras")
    }

    #[allow(unused_variables)]
    fn camera_listing(&self) -> Result<Vec<CameraListing>> {
        unimplemented!("postgres: camera_listing")
    }

    #[allow(unused_variables)]
    fn camera_by_slug(&self, slug: &str) -> Result<Camera> {
        unimplemented!("postgres: camera_by_slug")
    }

    #[allow(unused_variables)]
    fn camera_by_id(&self, id: i64) -> Result<Option<Camera>> {
        unimplemented!("postgres: camera_by_id")
    }

    #[allow(unused_variables)]
    fn session(&self, id: i64) -> Result<Session> {
        unimplemented!("postgres: session")
    }

    #[allow(unused_variables)]
    fn sessions(&self) -> Result<Vec<Session>> {
        unimplemented!("postgres: sessions")
    }

    #[allow(unused_variables)]
    fn items(&self, session_id: i64) -> Result<Vec<Item>> {
        unimplemented!("postgres: items")
    }

    #[allow(unused_variables)]
    fn session_sums(&self, session_id: i64) -> Result<Vec<SessionSum>> {
        unimplemented!("postgres: session_sums")
    }

    #[allow(unused_variables)]
    fn blob(&self, hash: &str) -> Result<Option<BlobRow>> {
        unimplemented!("postgres: blob")
    }

    #[allow(unused_variables)]
    fn blobs(&self, couple_id: Option<i64>) -> Result<Vec<BlobRow>> {
        unimplemented!("postgres: blobs")
    }

    #[allow(unused_variables)]
    fn blobs_to_verify(&self, couple_id: Option<i64>, before: i64, after: VerifyCursor, limit: u32,) -> Result<(Vec<BlobRow>, VerifyCursor)> {
        unimplemented!("postgres: blobs_to_verify")
    }

    #[allow(unused_variables)]
    fn blobs_to_verify_total(&self, couple_id: Option<i64>, before: i64) -> Result<(u64, u64)> {
        unimplemented!("postgres: blobs_to_verify_total")
    }

    #[allow(unused_variables)]
    fn known_blobs(&self, hashes: &[String]) -> Result<std::collections::HashSet<String>> {
        unimplemented!("postgres: known_blobs")
    }

    #[allow(unused_variables)]
    fn scrub_runs(&self, limit: u32) -> Result<Vec<ScrubRun>> {
        unimplemented!("postgres: scrub_runs")
    }

    #[allow(unused_variables)]
    fn last_scrub(&self, trigger: Option<&str>, complete: bool) -> Result<Option<ScrubRun>> {
        unimplemented!("postgres: last_scrub")
    }

    #[allow(unused_variables)]
    fn unhealthy_blobs(&self) -> Result<Vec<(String, String)>> {
        unimplemented!("postgres: unhealthy_blobs")
    }

    #[allow(unused_variables)]
    fn unhealthy_blobs_first(&self, limit: u32) -> Result<(i64, Vec<(String, String)>)> {
        unimplemented!("postgres: unhealthy_blobs_first")
    }

    #[allow(unused_variables)]
    fn blob_health(&self, hash: &str) -> Result<Option<String>> {
        unimplemented!("postgres: blob_health")
    }

    #[allow(unused_variables)]
    fn events_after(&self, after: i64, limit: u32) -> Result<Vec<ArchiveEvent>> {
        unimplemented!("postgres: events_after")
    }

    #[allow(unused_variables)]
    fn last_event_id(&self) -> Result<i64> {
        unimplemented!("postgres: last_event_id")
    }

    #[allow(unused_variables)]
    fn damaged_files(&self, couple_id: Option<i64>) -> Result<Vec<FileRow>> {
        unimplemented!("postgres: damaged_files")
    }

    #[allow(unused_variables)]
    fn files(&self, couple_id: Option<i64>) -> Result<Vec<FileRow>> {
        unimplemented!("postgres: files")
    }

    #[allow(unused_variables)]
    fn files_of_blob(&self, hash: &str) -> Result<Vec<FileRow>> {
        unimplemented!("postgres: files_of_blob")
    }

    #[allow(unused_variables)]
    fn files_of_blobs(&self, hashes: &[String]) -> Result<Vec<FileRow>> {
        unimplemented!("postgres: files_of_blobs")
    }

    #[allow(unused_variables)]
    fn file(&self, id: i64) -> Result<Option<FileRow>> {
        unimplemented!("postgres: file")
    }

    #[allow(unused_variables)]
    fn file_in_dir(&self, couple_id: i64, ft: FootageType, camera_id: Option<i64>, name: &[u8],) -> Result<Option<FileRow>> {
        unimplemented!("postgres: file_in_dir")
    }

    #[allow(unused_variables)]
    fn sidecars_of(&self, file_id: i64) -> Result<Vec<FileRow>> {
        unimplemented!("postgres: sidecars_of")
    }

    #[allow(unused_variables)]
    fn files_after(&self, after: i64) -> Result<Vec<FileRow>> {
        unimplemented!("postgres: files_after")
    }

    #[allow(unused_variables)]
    fn change_token(&self) -> Result<i64> {
        self.change_token_now()
    }

    #[allow(unused_variables)]
    fn changed_at(&self) -> Result<Option<SystemTime>> {
        Ok(None)
    }

    #[allow(unused_variables)]
    fn file_count(&self) -> Result<i64> {
        unimplemented!("postgres: file_count")
    }

    #[allow(unused_variables)]
    fn newest_ids(&self) -> Result<(i64, i64)> {
        unimplemented!("postgres: newest_ids")
    }

    #[allow(unused_variables)]
    fn tree_couples(&self) -> Result<Vec<TreeCouple>> {
        unimplemented!("postgres: tree_couples")
    }

    #[allow(unused_variables)]
    fn tree_cameras(&self, couple_id: i64) -> Result<Vec<TreeCamera>> {
        unimplemented!("postgres: tree_cameras")
    }

    #[allow(unused_variables)]
    fn files_in_dir(&self, couple_id: i64, ft: FootageType, camera_id: Option<i64>) -> Result<Vec<TreeFile>> {
        unimplemented!("postgres: files_in_dir")
    }

    #[allow(unused_variables)]
    fn hash_entries(&self, after: i64, limit: u32) -> Result<Vec<TreeFile>> {
        unimplemented!("postgres: hash_entries")
    }

    #[allow(unused_variables)]
    fn audit_log(&self, couple_id: Option<i64>, limit: u32) -> Result<Vec<AuditEvent>> {
        unimplemented!("postgres: audit_log")
    }

}
