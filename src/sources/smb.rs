//! Stub of the SMB source (replaced by the real module).
use std::io::Read;
use std::path::{Path, PathBuf};

use super::{FileMeta, Source, SourceEntry};
use crate::error::{Error, Result};

pub struct SmbConfig {
    pub host: String,
    pub port: u16,
    pub share: String,
    pub username: String,
    pub password: String,
    pub workgroup: String,
    pub timeout: std::time::Duration,
}
pub struct SmbSource;
impl SmbSource {
    pub fn new(_cfg: SmbConfig) -> Result<SmbSource> {
        Err(Error::Invalid("SMB is not built yet".into()))
    }
}
impl Source for SmbSource {
    fn describe(&self) -> String {
        String::new()
    }
    fn scan(&self, _roots: &[PathBuf]) -> Result<Vec<SourceEntry>> {
        unimplemented!()
    }
    fn stat(&self, _path: &Path) -> Result<FileMeta> {
        unimplemented!()
    }
    fn open_at(&self, _path: &Path, _offset: u64) -> Result<Box<dyn Read + Send>> {
        unimplemented!()
    }
    fn remove(&self, _path: &Path) -> Result<()> {
        unimplemented!()
    }
    fn rename(&self, _from: &Path, _to: &Path) -> Result<()> {
        unimplemented!()
    }
    fn create_dir_all(&self, _path: &Path) -> Result<()> {
        unimplemented!()
    }
}
