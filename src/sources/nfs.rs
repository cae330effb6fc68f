//! Stub of the NFS source (replaced by the real module).
use std::io::Read;
use std::path::{Path, PathBuf};

use super::{FileMeta, Source, SourceEntry};
use crate::error::{Error, Result};

pub struct NfsConfig {
    pub host: String,
    pub port: u16,
    pub mount_port: Option<u16>,
    pub export: String,
    pub timeout: std::time::Duration,
}
pub struct NfsSource;
impl NfsSource {
    pub fn new(_cfg: NfsConfig) -> Result<NfsSource> {
        Err(Error::Invalid("NFS is not built yet".into()))
    }
}
impl Source for NfsSource {
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
