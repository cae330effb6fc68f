//! Local folders, mounted cards and single files. Symlinks inside a tree are recorded and not followed (so an
//! import never leaves the tree it was given); a root given by the user is followed if it is a link.

use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::{EntryKind, FileMeta, Source, SourceEntry};
use crate::error::{Error, IoContext, Result};

pub struct LocalSource {
    label: String,
}

impl LocalSource {
    pub fn new(roots: &[PathBuf]) -> Self {
        let label = roots.iter().map(|r| r.to_string_lossy().into_owned()).collect::<Vec<_>>().join(", ");
        LocalSource { label: format!("local:{label}") }
    }
}

fn mtime_ns(m: &fs::Metadata) -> i64 {
    m.mtime().saturating_mul(1_000_000_000).saturating_add(m.mtime_nsec())
}

fn kind_name(ft: &fs::FileType) -> &'static str {
    if ft.is_symlink() {
        "symbolic link, not followed"
    } else if ft.is_fifo() {
        "named pipe"
    } else if ft.is_socket() {
        "socket"
    } else if ft.is_block_device() || ft.is_char_device() {
        "device"
    } else {
        "special file"
    }
}

fn walk(dir: &Path, rel: &Path, out: &mut Vec<SourceEntry>) {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) => {
            out.push(SourceEntry {
                path: dir.to_path_buf(),
                rel: rel.to_path_buf(),
                kind: EntryKind::Unreadable(format!("cannot read folder: {e}")),
            });
            return;
        }
    };
    let mut entries: Vec<_> = Vec::new();
    for e in rd {
        match e {
            Ok(e) => entries.push(e),
            Err(e) => out.push(SourceEntry {
                path: dir.to_path_buf(),
                rel: rel.to_path_buf(),
                kind: EntryKind::Unreadable(format!("cannot list folder: {e}")),
            }),
        }
    }
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        let rel = rel.join(e.file_name());
        let meta = match fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(err) => {
                out.push(SourceEntry { path, rel, kind: EntryKind::Unreadable(err.to_string()) });
                continue;
            }
        };
        let ft = meta.file_type();
        if ft.is_dir() {
            walk(&path, &rel, out);
        } else if ft.is_file() {
            out.push(SourceEntry { path, rel, kind: EntryKind::File { size: meta.len(), mtime_ns: mtime_ns(&meta) } });
        } else {
            out.push(SourceEntry { path, rel, kind: EntryKind::Skipped(kind_name(&ft).to_string()) });
        }
    }
}

impl Source for LocalSource {
    fn describe(&self) -> String {
        self.label.clone()
    }

    fn scan(&self, roots: &[PathBuf]) -> Result<Vec<SourceEntry>> {
        let mut out = Vec::new();
        for root in roots {
            let meta = fs::metadata(root).at(root)?;
            if meta.is_dir() {
                walk(root, Path::new(""), &mut out);
            } else if meta.is_file() {
                let name = root.file_name().map(PathBuf::from).unwrap_or_else(|| root.clone());
                out.push(SourceEntry {
                    path: root.clone(),
                    rel: name,
                    kind: EntryKind::File { size: meta.len(), mtime_ns: mtime_ns(&meta) },
                });
            } else {
                return Err(Error::Invalid(format!("{root:?} is not a file or folder")));
            }
        }
        Ok(out)
    }

    fn stat(&self, path: &Path) -> Result<FileMeta> {
        let m = fs::metadata(path).at(path)?;
        Ok(FileMeta { size: m.len(), mtime_ns: mtime_ns(&m) })
    }

    fn open_at(&self, path: &Path, offset: u64) -> Result<Box<dyn Read + Send>> {
        // Large files are read direct: the device fills the copy buffers without a page-cache copy on the CPU (and
        // a card read once does not push the archive's hot pages out). Falls back to buffered reads where refused.
        let mut r = crate::blobs::direct::open_read(path).at(path)?;
        if offset > 0 {
            r.seek(SeekFrom::Start(offset)).at(path)?;
        }
        // Sequential hint for the buffered fallback: larger readahead on cards and disks.
        let _ = rustix::fs::fadvise(r.file(), 0, None, rustix::fs::Advice::Sequential);
        Ok(Box::new(r))
    }

    fn hash_in_place(&self, path: &Path) -> Option<Result<crate::blobs::Digest>> {
        Some(crate::blobs::digest_file(path))
    }

    fn prefetch(&self, paths: &[PathBuf]) {
        for p in paths {
            if let Ok(f) = fs::File::open(p) {
                crate::blobs::read_ahead(&f);
            }
        }
    }

    fn remove(&self, path: &Path) -> Result<()> {
        fs::remove_file(path).at(path)
    }

    fn rename(&self, from: &Path, to: &Path) -> Result<()> {
        fs::rename(from, to).at(to)
    }

    fn create_dir_all(&self, path: &Path) -> Result<()> {
        fs::create_dir_all(path).at(path)
    }
}
