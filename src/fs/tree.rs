//! The read-only tree, free of any FUSE type: `/<couple>/source/<footage type>/<camera>/<display name>`,
//! `/.by-hash/<blake3><ext>`, a virtual `/.metadata_never_index` and the name `/ingest` (a placeholder node: its
//! attributes and everything below it are the ingest directory's, see `ArchiveFs`). It numbers its nodes by
//! `fs::ino` (derived from catalog ids, so they are the same across remounts) and answers attributes, lookups,
//! directory listings with attributes, and xattrs. The tree is held in memory and refreshed
//! incrementally from the catalog (files are only ever added), reporting which entries are new so a front end can
//! tell the kernel.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;

use parking_lot::{Mutex, RwLock};

use crate::archive::Archive;
use crate::catalog::{Catalog, FileRow, FootageType};
use crate::error::{Error, Result};

use super::ino::{
    camera_ino, couple_ino, file_ino, hash_ino, source_ino, type_ino, BY_HASH_INO, BY_HASH_NAME, INGEST_NAME,
    INGEST_ROOT_INO, NEVER_INDEX_INO, NEVER_INDEX_NAME, ROOT_INO,
};
use super::node::{Attr, DirEntry, FsStats, Kind};

/// Names every file manager on macOS or Linux probes for; answered "no such file" with a cached negative entry.
pub fn is_probe_name(name: &[u8]) -> bool {
    name.starts_with(b"._")
        || matches!(
            name,
            b".DS_Store"
                | b".Spotlight-V100"
                | b".hidden"
                | b".Trashes"
                | b".fseventsd"
                | b".TemporaryItems"
                | b".localized"
        )
}

/// What a file node reads from.
#[derive(Clone, Debug)]
pub struct FileRef {
    pub file_id: Option<i64>,
    pub hash: String,
    pub captured_at: Option<i64>,
    /// Stored from a salvaged copy (`user.nightfox.damaged` lists the unreadable ranges).
    pub damaged: bool,
}

#[derive(Clone, Debug)]
struct Node {
    parent: u64,
    kind: Kind,
    size: u64,
    mtime_ns: i64,
    ctime_ns: i64,
    file: Option<FileRef>,
    /// Directory entries by name (sorted, so listings are stable).
    children: BTreeMap<Vec<u8>, u64>,
    subdirs: u32,
}

impl Node {
    fn dir(parent: u64, t_ns: i64) -> Node {
        Node {
            parent,
            kind: Kind::Dir,
            size: 0,
            mtime_ns: t_ns,
            ctime_ns: t_ns,
            file: None,
            children: BTreeMap::new(),
            subdirs: 0,
        }
    }
}

struct Tree {
    nodes: HashMap<u64, Node>,
    last_file_id: i64,
    couples: HashMap<i64, String>,
    cameras: HashMap<i64, String>,
    file_count: u64,
}

/// The tree over one archive's catalog.
pub struct Vfs {
    tree: RwLock<Tree>,
    catalog: Mutex<Catalog>,
    root: PathBuf,
    uid: u32,
    gid: u32,
    data_version: Mutex<i64>,
    /// Blobs `verify` found damaged or missing: opening or reading them answers EIO until a copy heals them.
    unhealthy: RwLock<HashSet<String>>,
    /// Those already logged (one line each).
    logged: Mutex<HashSet<String>>,
    /// The newest archive event followed (heals, damage, replaced files).
    last_event: Mutex<i64>,
    /// Inodes whose content changed (healed, replaced, found damaged): the front end drops what it cached.
    changed: Mutex<Vec<u64>>,
}

const NS: i64 = 1_000_000_000;

fn tree_name(camera: Option<&String>) -> Vec<u8> {
    camera.map(|s| s.as_bytes().to_vec()).unwrap_or_else(|| b"unknown".to_vec())
}

/// The extension (with its dot) a `.by-hash` entry shows, taken from the file's display name.
fn by_hash_name(hash: &str, display_name: &[u8]) -> Vec<u8> {
    let (_, ext) = crate::organize::split_ext(display_name);
    let mut n = hash.as_bytes().to_vec();
    if ext.len() > 1 && ext.len() <= 16 && ext[1..].iter().all(|c| c.is_ascii_alphanumeric()) {
        n.extend_from_slice(ext);
    }
    n
}

impl Tree {
    fn new(t_ns: i64) -> Tree {
        let mut nodes = HashMap::new();
        let mut root = Node::dir(ROOT_INO, t_ns);
        root.children.insert(BY_HASH_NAME.to_vec(), BY_HASH_INO);
        root.children.insert(NEVER_INDEX_NAME.to_vec(), NEVER_INDEX_INO);
        root.children.insert(INGEST_NAME.to_vec(), INGEST_ROOT_INO);
        root.subdirs = 2;
        nodes.insert(ROOT_INO, root);
        nodes.insert(BY_HASH_INO, Node::dir(ROOT_INO, t_ns));
        // A placeholder: the front end answers `/ingest` from the ingest directory.
        nodes.insert(INGEST_ROOT_INO, Node::dir(ROOT_INO, t_ns));
        let mut never = Node::dir(ROOT_INO, t_ns);
        never.kind = Kind::File;
        nodes.insert(NEVER_INDEX_INO, never);
        Tree { nodes, last_file_id: 0, couples: HashMap::new(), cameras: HashMap::new(), file_count: 0 }
    }

    /// Ensures a directory child exists; returns its inode and whether it was created.
    fn ensure_dir(&mut self, parent: u64, name: &[u8], ino: u64, t_ns: i64, new: &mut Vec<(u64, Vec<u8>)>) -> u64 {
        if self.nodes.contains_key(&ino) {
            return ino;
        }
        self.nodes.insert(ino, Node::dir(parent, t_ns));
        if let Some(p) = self.nodes.get_mut(&parent) {
            p.children.insert(name.to_vec(), ino);
            p.subdirs += 1;
        }
        new.push((parent, name.to_vec()));
        ino
    }

    /// Adds one catalogued file; records the entries a kernel may have cached as absent.
    fn add_file(&mut self, f: &FileRow, new: &mut Vec<(u64, Vec<u8>)>) {
        let t = f.imported_at * NS;
        let Some(couple) = self.couples.get(&f.couple_id).cloned() else {
            return;
        };
        let c = self.ensure_dir(ROOT_INO, couple.as_bytes(), couple_ino(f.couple_id), t, new);
        let s = self.ensure_dir(c, b"source", source_ino(f.couple_id), t, new);
        let ty = self.ensure_dir(s, f.footage_type.as_str().as_bytes(), type_ino(f.couple_id, f.footage_type), t, new);
        let cam_name = tree_name(f.camera_id.and_then(|id| self.cameras.get(&id)));
        let cam = self.ensure_dir(ty, &cam_name, camera_ino(f.couple_id, f.footage_type, f.camera_id), t, new);
        let ino = file_ino(f.id);
        let node = Node {
            parent: cam,
            kind: Kind::File,
            size: f.size,
            mtime_ns: f.source_mtime_ns,
            ctime_ns: t,
            file: Some(FileRef {
                file_id: Some(f.id),
                hash: f.blob_hash.clone(),
                captured_at: f.captured_at,
                damaged: f.bad_ranges.is_some(),
            }),
            children: BTreeMap::new(),
            subdirs: 0,
        };
        self.nodes.insert(ino, node);
        if let Some(p) = self.nodes.get_mut(&cam) {
            p.children.insert(f.display_name.clone(), ino);
        }
        new.push((cam, f.display_name.clone()));
        // Directory mtimes follow the newest import below them.
        let mut up = cam;
        while let Some(n) = self.nodes.get_mut(&up) {
            if n.mtime_ns < t {
                n.mtime_ns = t;
                n.ctime_ns = t;
            }
            if up == ROOT_INO {
                break;
            }
            up = n.parent;
        }
        let hino = hash_ino(f.blob_id);
        if !self.nodes.contains_key(&hino) {
            let name = by_hash_name(&f.blob_hash, &f.display_name);
            let mut n = self.nodes[&ino].clone();
            n.parent = BY_HASH_INO;
            n.file = Some(FileRef { file_id: None, hash: f.blob_hash.clone(), captured_at: None, damaged: false });
            self.nodes.insert(hino, n);
            if let Some(p) = self.nodes.get_mut(&BY_HASH_INO) {
                p.children.insert(name.clone(), hino);
                p.mtime_ns = p.mtime_ns.max(t);
            }
            new.push((BY_HASH_INO, name));
        }
        self.file_count += 1;
        self.last_file_id = f.id;
    }
}

impl Vfs {
    /// Builds the tree of an archive; files belong to the calling user.
    pub fn new(archive: &Archive) -> Result<Vfs> {
        // SAFETY: getuid/getgid cannot fail.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        let cat = archive.catalog()?;
        let t = cat.changed_at().ok().flatten().map(crate::catalog::system_time_ns).unwrap_or(0);
        let vfs = Vfs {
            tree: RwLock::new(Tree::new(t)),
            data_version: Mutex::new(cat.change_token()?),
            unhealthy: RwLock::new(cat.unhealthy_blobs()?.into_iter().map(|(h, _)| h).collect()),
            logged: Mutex::new(HashSet::new()),
            last_event: Mutex::new(cat.last_event_id()?),
            changed: Mutex::new(Vec::new()),
            catalog: Mutex::new(cat),
            root: archive.root.clone(),
            uid,
            gid,
        };
        vfs.load_new()?;
        Ok(vfs)
    }

    /// Loads files catalogued since the last load; returns (parent inode, name) of every new entry.
    fn load_new(&self) -> Result<Vec<(u64, Vec<u8>)>> {
        let cat = self.catalog.lock();
        let after = self.tree.read().last_file_id;
        let rows = cat.files_after(after)?;
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let couples: HashMap<i64, String> = cat.couple_folders()?.into_iter().collect();
        let cameras: HashMap<i64, String> = cat.cameras()?.into_iter().map(|c| (c.id, c.slug)).collect();
        drop(cat);
        let mut tree = self.tree.write();
        tree.couples = couples;
        tree.cameras = cameras;
        let mut new = Vec::new();
        for f in &rows {
            tree.add_file(f, &mut new);
        }
        Ok(new)
    }

    /// Picks up catalog changes made by other processes (imports); cheap when nothing changed.
    /// Returns the new entries, for the front end to invalidate cached negative lookups and listings.
    pub fn refresh(&self) -> Result<Vec<(u64, Vec<u8>)>> {
        let v = self.catalog.lock().change_token()?;
        {
            let mut dv = self.data_version.lock();
            if *dv == v {
                return Ok(Vec::new());
            }
            *dv = v;
        }
        let new = self.load_new()?;
        self.follow_events()?;
        Ok(new)
    }

    /// Applies the archive events since the last look: blob health changes (the unhealthy set and the inodes that
    /// read those blobs) and salvaged files replaced by clean copies (their node reads the new blob).
    fn follow_events(&self) -> Result<()> {
        let mut last = self.last_event.lock();
        let cat = self.catalog.lock();
        let events = cat.events_after(*last, 10_000)?;
        let Some(newest) = events.last().map(|e| e.id) else { return Ok(()) };
        *last = newest;
        let mut hashes = HashSet::new();
        let mut replaced = Vec::new();
        for e in &events {
            match (e.kind.as_str(), &e.blob_hash, e.file_id) {
                ("file_replaced", _, Some(fid)) => replaced.extend(cat.file(fid)?),
                (_, Some(h), _) => {
                    hashes.insert(h.clone());
                }
                _ => {}
            }
        }
        if !hashes.is_empty() {
            *self.unhealthy.write() = cat.unhealthy_blobs()?.into_iter().map(|(h, _)| h).collect();
            self.logged.lock().retain(|h| !hashes.contains(h));
        }
        drop(cat);
        let mut changed = self.changed.lock();
        let mut tree = self.tree.write();
        for f in replaced {
            let ino = file_ino(f.id);
            if let Some(n) = tree.nodes.get_mut(&ino) {
                n.size = f.size;
                if let Some(fr) = n.file.as_mut() {
                    fr.hash = f.blob_hash.clone();
                    fr.damaged = f.bad_ranges.is_some();
                }
                changed.push(ino);
            }
        }
        if !hashes.is_empty() {
            for (ino, n) in &tree.nodes {
                if n.file.as_ref().is_some_and(|fr| hashes.contains(&fr.hash)) {
                    changed.push(*ino);
                }
            }
        }
        Ok(())
    }

    /// Inodes whose content changed since the last call (see `follow_events`).
    pub fn take_changed(&self) -> Vec<u64> {
        std::mem::take(&mut *self.changed.lock())
    }

    /// [`Vfs::refuses`] for the blob an inode reads; costs one check of an empty set while no blob is unhealthy
    /// (it runs on every read of the copy path).
    pub fn refuses_inode(&self, ino: u64) -> bool {
        if self.unhealthy.read().is_empty() {
            return false;
        }
        self.file_ref(ino).is_some_and(|fr| self.refuses(&fr.hash))
    }

    /// True when the blob must not be served (`verify` found it damaged or missing); logs that once per blob.
    pub fn refuses(&self, hash: &str) -> bool {
        let bad = {
            let u = self.unhealthy.read();
            !u.is_empty() && u.contains(hash)
        };
        if bad && self.logged.lock().insert(hash.to_string()) {
            tracing::error!(
                "blob {hash} is damaged or missing (found by verify): answering EIO until a verified copy heals it \
                 (re-import the original or `nightfox repair PATH`)"
            );
        }
        bad
    }

    fn attr_of(&self, ino: u64, n: &Node) -> Attr {
        match n.kind {
            Kind::Dir => Attr {
                ino,
                kind: Kind::Dir,
                size: 4096,
                blocks: 8,
                mtime_ns: n.mtime_ns,
                ctime_ns: n.ctime_ns,
                perm: 0o555,
                nlink: 2 + n.subdirs,
                uid: self.uid,
                gid: self.gid,
                blksize: 4096,
            },
            Kind::File => Attr {
                ino,
                kind: Kind::File,
                size: n.size,
                blocks: n.size.div_ceil(512),
                mtime_ns: n.mtime_ns,
                ctime_ns: n.ctime_ns,
                perm: 0o444,
                nlink: 1,
                uid: self.uid,
                gid: self.gid,
                blksize: 4096,
            },
        }
    }

    pub fn getattr(&self, ino: u64) -> Option<Attr> {
        let t = self.tree.read();
        t.nodes.get(&ino).map(|n| self.attr_of(ino, n))
    }

    pub fn lookup(&self, parent: u64, name: &[u8]) -> Option<Attr> {
        let t = self.tree.read();
        let ino = *t.nodes.get(&parent)?.children.get(name)?;
        t.nodes.get(&ino).map(|n| self.attr_of(ino, n))
    }

    /// The parent of a directory (the root is its own parent).
    pub fn parent(&self, ino: u64) -> Option<u64> {
        self.tree.read().nodes.get(&ino).map(|n| n.parent)
    }

    /// A directory's entries with their attributes, sorted by name; `None` if `ino` is not a directory.
    pub fn readdir(&self, ino: u64) -> Option<Vec<DirEntry>> {
        let t = self.tree.read();
        let n = t.nodes.get(&ino)?;
        if n.kind != Kind::Dir {
            return None;
        }
        Some(
            n.children
                .iter()
                .filter_map(|(name, c)| {
                    t.nodes.get(c).map(|cn| DirEntry { name: name.clone(), attr: self.attr_of(*c, cn) })
                })
                .collect(),
        )
    }

    /// The blob a file node reads from; `None` for directories and the empty virtual file.
    pub fn file_ref(&self, ino: u64) -> Option<FileRef> {
        self.tree.read().nodes.get(&ino).and_then(|n| n.file.clone())
    }

    /// The extended attributes a node offers (all in the `user.` namespace, see [`xattr_namespace_supported`]).
    pub fn xattr_names(&self, ino: u64) -> Vec<&'static str> {
        match self.file_ref(ino) {
            Some(FileRef { file_id: Some(_), captured_at, damaged, .. }) => {
                let mut v = vec![
                    "user.nightfox.blake3",
                    "user.nightfox.original_path",
                    "user.nightfox.camera",
                    "user.nightfox.imported_at",
                ];
                if captured_at.is_some() {
                    v.push("user.nightfox.captured_at");
                }
                if damaged {
                    v.push("user.nightfox.damaged");
                }
                v
            }
            Some(_) => vec!["user.nightfox.blake3"],
            None => vec![],
        }
    }

    /// One extended attribute; `Ok(None)` when the node does not have it.
    pub fn xattr(&self, ino: u64, name: &[u8]) -> Result<Option<Vec<u8>>> {
        let Some(fr) = self.file_ref(ino) else {
            return Ok(None);
        };
        if name == b"user.nightfox.blake3" {
            return Ok(Some(fr.hash.into_bytes()));
        }
        // Names that are not ours (`ls -l` asks for security.selinux on every entry) never reach the catalog.
        const FROM_CATALOG: [&[u8]; 5] = [
            b"user.nightfox.original_path",
            b"user.nightfox.camera",
            b"user.nightfox.imported_at",
            b"user.nightfox.captured_at",
            b"user.nightfox.damaged",
        ];
        let Some(id) = fr.file_id.filter(|_| FROM_CATALOG.contains(&name)) else {
            return Ok(None);
        };
        let cat = self.catalog.lock();
        let Some(f) = cat.file(id)? else {
            return Ok(None);
        };
        Ok(match name {
            b"user.nightfox.original_path" => Some(f.original_path),
            b"user.nightfox.camera" => {
                let t = self.tree.read();
                Some(tree_name(f.camera_id.and_then(|c| t.cameras.get(&c))))
            }
            b"user.nightfox.imported_at" => Some(rfc3339(f.imported_at).into_bytes()),
            b"user.nightfox.captured_at" => f.captured_at.map(|t| rfc3339(t).into_bytes()),
            b"user.nightfox.damaged" => f.bad_ranges.map(String::into_bytes),
            _ => None,
        })
    }

    /// Size and free space of the archive's filesystem, and the number of files in the tree.
    pub fn statfs(&self) -> Result<FsStats> {
        let c = std::ffi::CString::new(std::os::unix::ffi::OsStrExt::as_bytes(self.root.as_os_str()))
            .map_err(|_| Error::Invalid("archive path contains NUL".into()))?;
        let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
        // SAFETY: valid C string and out pointer.
        if unsafe { libc::statvfs(c.as_ptr(), &mut s) } != 0 {
            return Err(Error::io(&self.root, std::io::Error::last_os_error()));
        }
        let files = self.tree.read().file_count;
        Ok(FsStats {
            blocks: s.f_blocks as u64,
            bfree: s.f_bfree as u64,
            bavail: s.f_bavail as u64,
            files: files.max(1),
            ffree: s.f_ffree as u64,
            bsize: s.f_bsize as u32,
            frsize: s.f_frsize as u32,
            namelen: crate::organize::NAME_MAX as u32,
        })
    }
}

/// `2025-12-31T14:03:00Z` from Unix seconds.
pub fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// The tree path (`couple/source/type/camera/name`) of a catalogued file, for messages.
pub fn tree_path(couple: &str, camera: Option<&str>, f: &FileRow) -> String {
    format!(
        "{}/source/{}/{}/{}",
        couple,
        f.footage_type,
        camera.unwrap_or("unknown"),
        String::from_utf8_lossy(&f.display_name)
    )
}

/// Finds the catalogued file at a tree path (`couple/source/type/camera/name`, or `.by-hash/<hash>[.ext]`).
pub fn file_at_tree_path(cat: &Catalog, tree: &[u8]) -> Result<FileRow> {
    let not_found = || Error::NotFound(format!("no file at {:?} in the archive", String::from_utf8_lossy(tree)));
    let parts: Vec<&[u8]> = tree.split(|&c| c == b'/').filter(|p| !p.is_empty() && *p != b".").collect();
    if let [BY_HASH_NAME, name] = parts.as_slice() {
        let hash = String::from_utf8_lossy(name.get(..64).ok_or_else(not_found)?).into_owned();
        return cat.files_of_blob(&hash)?.into_iter().next().ok_or_else(not_found);
    }
    let [couple, b"source", ft, camera, name] = parts.as_slice() else { return Err(not_found()) };
    let couple = cat.couple_by_folder(&String::from_utf8_lossy(couple))?;
    let ft = FootageType::parse(&String::from_utf8_lossy(ft))?;
    let camera_id = match *camera {
        b"unknown" => None,
        slug => Some(cat.camera_by_slug(&String::from_utf8_lossy(slug))?.id),
    };
    cat.file_in_dir(couple.id, ft, camera_id, name)?.ok_or_else(not_found)
}

/// If `path` lies inside a mounted Nightfox tree: the archive it serves and the path inside the tree.
pub fn locate_in_mount(path: &std::path::Path) -> Option<(PathBuf, Vec<u8>)> {
    use std::os::unix::ffi::OsStrExt;
    let abs = std::path::absolute(path).ok()?;
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let unescape =
        |s: &str| s.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\");
    // The deepest mount point that holds the path wins; among mounts stacked on one point, the last (topmost).
    let mut best: Option<(usize, PathBuf, Vec<u8>)> = None;
    for line in info.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let Some(dash) = fields.iter().position(|f| *f == "-") else { continue };
        if !matches!(fields.get(dash + 1), Some(&"fuse") | Some(&"fuse.nightfox")) {
            continue;
        }
        let (Some(mp), Some(src)) = (fields.get(4), fields.get(dash + 2)) else { continue };
        let mp = PathBuf::from(unescape(mp));
        let Some(archive) = unescape(src).strip_prefix("nightfox:").map(PathBuf::from) else { continue };
        if let Ok(rest) = abs.strip_prefix(&mp) {
            let depth = mp.components().count();
            if best.as_ref().is_none_or(|(d, _, _)| depth >= *d) {
                best = Some((depth, archive, rest.as_os_str().as_bytes().to_vec()));
            }
        }
    }
    best.map(|(_, a, t)| (a, t))
}

/// Tree paths of every file that uses a blob.
pub fn tree_paths_of_blob(cat: &Catalog, hash: &str) -> Result<Vec<String>> {
    let cams: HashMap<i64, String> = cat.cameras()?.into_iter().map(|c| (c.id, c.slug)).collect();
    let mut out = Vec::new();
    for f in cat.files_of_blob(hash)? {
        let couple = cat.couple_by_id(f.couple_id)?.folder_name;
        out.push(tree_path(&couple, f.camera_id.and_then(|c| cams.get(&c)).map(String::as_str), &f));
    }
    Ok(out)
}

/// Whether an extended attribute name is in a namespace the tree has at all: only `user.` (its own attributes).
/// Security labels (`security.`), `trusted.` and POSIX ACLs (`system.posix_acl_*`) are not kept: a front end
/// answers those as a filesystem without the namespace does (EOPNOTSUPP), so `ls -l` asks once per device instead
/// of once per entry.
pub fn xattr_namespace_supported(name: &[u8]) -> bool {
    name.starts_with(b"user.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_767_225_599), "2025-12-31T23:59:59Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }
}
