//! [`Lifecycle`] on SQLite: folder and slug renames, moves and camera merges, and the aliases (old names) that
//! keep resolving after them.

use super::*;
use crate::catalog::Lifecycle;

fn todo<T>() -> Result<T> {
    Err(Error::Invalid("not built yet".into()))
}

impl Lifecycle for SqliteConn {
    fn rename_couple_folder(&self, _couple_id: i64, _folder: &str, _by: &Actor) -> Result<()> {
        todo()
    }

    fn rename_camera_slug(&self, _camera_id: i64, _slug: &str, _by: &Actor) -> Result<()> {
        todo()
    }

    fn merge_cameras(&self, _from: i64, _into: i64, _by: &Actor) -> Result<Vec<Moved>> {
        todo()
    }

    fn move_file(&self, _file_id: i64, _camera_id: Option<i64>, _ft: FootageType, _by: &Actor) -> Result<Vec<Moved>> {
        todo()
    }

    fn couple_alias(&self, _folder_name: &str) -> Result<Option<i64>> {
        Ok(None)
    }

    fn couple_aliases_of(&self, _couple_id: i64) -> Result<Vec<String>> {
        Ok(Vec::new())
    }

    fn camera_alias(&self, _slug: &str) -> Result<Option<i64>> {
        Ok(None)
    }

    fn file_at_alias(&self, _at: &Placement) -> Result<Option<FileRow>> {
        Ok(None)
    }

    fn aliases_under(&self, _couple_id: i64, _ft: Option<FootageType>, _camera: Option<Option<i64>>) -> Result<bool> {
        Ok(false)
    }

    fn aliases_of(&self, _file_id: i64) -> Result<Vec<FileAlias>> {
        Ok(Vec::new())
    }

    fn alias_count(&self) -> Result<i64> {
        Ok(0)
    }
}
