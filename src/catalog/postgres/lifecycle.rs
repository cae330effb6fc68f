//! [`Lifecycle`] on Postgres (a port of `sqlite/lifecycle.rs`).

use super::*;
use crate::catalog::Lifecycle;

impl Lifecycle for PgConn {
    #[allow(unused_variables)]
    fn rename_couple_folder(&self, couple_id: i64, display_name: &str, event_date: &str, folder: &str, by: &Actor,) -> Result<()> {
        unimplemented!("postgres: rename_couple_folder")
    }

    #[allow(unused_variables)]
    fn rename_camera_slug(&self, camera_id: i64, name: &str, slug: &str, by: &Actor) -> Result<()> {
        unimplemented!("postgres: rename_camera_slug")
    }

    #[allow(unused_variables)]
    fn merge_cameras(&self, from: i64, into: i64, by: &Actor) -> Result<Vec<Moved>> {
        unimplemented!("postgres: merge_cameras")
    }

    #[allow(unused_variables)]
    fn move_file(&self, file_id: i64, camera_id: Option<i64>, ft: FootageType, by: &Actor) -> Result<Vec<Moved>> {
        unimplemented!("postgres: move_file")
    }

    #[allow(unused_variables)]
    fn couple_alias(&self, folder_name: &str) -> Result<Option<i64>> {
        unimplemented!("postgres: couple_alias")
    }

    #[allow(unused_variables)]
    fn couple_aliases_of(&self, couple_id: i64) -> Result<Vec<String>> {
        unimplemented!("postgres: couple_aliases_of")
    }

    #[allow(unused_variables)]
    fn camera_alias(&self, slug: &str) -> Result<Option<i64>> {
        unimplemented!("postgres: camera_alias")
    }

    #[allow(unused_variables)]
    fn file_at_alias(&self, at: &Placement) -> Result<Option<FileRow>> {
        unimplemented!("postgres: file_at_alias")
    }

    #[allow(unused_variables)]
    fn aliases_under(&self, couple_id: i64, ft: Option<FootageType>, camera: Option<Option<i64>>) -> Result<bool> {
        unimplemented!("postgres: aliases_under")
    }

    #[allow(unused_variables)]
    fn aliases_of(&self, file_id: i64) -> Result<Vec<FileAlias>> {
        unimplemented!("postgres: aliases_of")
    }

    #[allow(unused_variables)]
    fn has_aliases(&self) -> Result<bool> {
        unimplemented!("postgres: has_aliases")
    }

}
