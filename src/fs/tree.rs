//! The read-only tree, free of any FUSE type: `/<couple>/source/<footage type>/<camera>/<display name>`,
//! `/.by-hash/<blake3><ext>`, a virtual `/.metadata_never_index` and the name `/ingest` (a placeholder node: its
//! attributes and everything below it are the ingest directory's, see `ArchiveFs`). It numbers its nodes by
//! `fs::ino` (derived from catalog ids, so they are the same across remounts, and decoded back to what they name)
//! and answers attributes, lookups, directory listings with attributes, and xattrs.
//!
//! The tree is read from the catalog when asked, never whole: at start only a row per couple (`Top`); a couple's
//! camera folders, a camera folder's files and single nodes are read on demand and kept in bounded caches (least
//! recently used dropped), so memory does not grow with the archive. `.by-hash` is looked up by hash and listed
//! in pages by blob id. The change feed reads only the files catalogued since the last look and reports each new
//! entry in the deepest directory a front end was shown.
//!
//! Old paths keep resolving (after a couple or camera rename, a file move, a camera merge): a name a directory
//! does not list is looked up among the catalog's aliases, and a folder that only an old path has is a ghost
//! (`K_GHOST`: listed empty, its entries resolving to the files where they are now, the same inodes). An archive
//! with no aliases never looks. A `lifecycle` archive event (a rename, move, removal, restore) drops the caches
//! and reports the entries it took away, so front ends forget them.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hashlink::LruCache;
use parking_lot::{Mutex, MutexGuard, RwLock};

use crate::archive::Archive;
use crate::catalog::{Catalog, FileRow, FootageType, Gone, Placement, TreeCamera, TreeCouple, TreeFile};
use crate::error::{Error, Result};

use super::ino::{
    camera_ino, couple_ino, decode, file_ino, ghost_ino, hash_ino, source_ino, type_ino, TreeIno, BY_HASH_INO,
    BY_HASH_NAME, INGEST_NAME, INGEST_ROOT_INO, NEVER_INDEX_INO, NEVER_INDEX_NAME, ROOT_INO,
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

/// Entries of camera-folder listings kept, over all folders (least recently used dropped first).
const LISTED_ENTRIES: usize = 131_072;
/// File and `.by-hash` nodes kept by inode.
const NODES: usize = 65_536;
/// Couples whose camera folders are kept.
const COUPLES_KEPT: usize = 1024;
/// Blob health answers kept while some blob is unhealthy.
const HEALTH_KEPT: usize = 16_384;
/// Directory entries as `(parent inode, name)`.
pub type Entries = Vec<(u64, Vec<u8>)>;

/// Ghost folders remembered (each one an old path someone looked up).
const GHOSTS_KEPT: usize = 4096;
/// Catalog connections answering requests (as many as the FUSE worker threads).
const READERS: usize = 4;
/// `.by-hash` entries read per catalog query.
pub const HASH_PAGE: usize = 256;

/// One node, as the catalog gives it.
#[derive(Clone, Debug)]
struct Node {
    parent: u64,
    kind: Kind,
    size: u64,
    mtime_ns: i64,
    ctime_ns: i64,
    subdirs: u32,
    file: Option<FileRef>,
}

impl Node {
    fn dir(parent: u64, t_ns: i64, subdirs: u32) -> Node {
        Node { parent, kind: Kind::Dir, size: 0, mtime_ns: t_ns, ctime_ns: t_ns, subdirs, file: None }
    }

    /// A clip's node, and its name.
    fn of_file(f: TreeFile) -> (Vec<u8>, Node) {
        let node = Node {
            parent: camera_ino(f.couple_id, f.footage_type, f.camera_id),
            kind: Kind::File,
            size: f.size,
            mtime_ns: f.source_mtime_ns,
            ctime_ns: f.imported_at * NS,
            subdirs: 0,
            file: Some(FileRef {
                file_id: Some(f.id),
                hash: f.blob_hash,
                captured_at: f.captured_at,
                damaged: f.damaged,
            }),
        };
        (f.display_name, node)
    }

    /// The `.by-hash` entry of a blob, given the first file that uses it (its size and times), and its name.
    fn of_blob(f: TreeFile) -> (Vec<u8>, Node) {
        let name = by_hash_name(&f.blob_hash, &f.display_name);
        let (_, mut n) = Node::of_file(f);
        n.parent = BY_HASH_INO;
        if let Some(fr) = n.file.as_mut() {
            fr.file_id = None;
            fr.captured_at = None;
            fr.damaged = false;
        }
        (name, n)
    }
}

/// A directory entry as listed.
#[derive(Clone, Debug)]
struct Entry {
    name: Vec<u8>,
    ino: u64,
    node: Node,
}

/// The top of the tree, small (a row per couple and per camera) and reloaded whenever files are added.
struct Top {
    /// Couple folders with files, by folder name.
    couples: BTreeMap<Vec<u8>, TreeCouple>,
    /// Couple id → folder name.
    names: HashMap<i64, Vec<u8>>,
    /// Camera id → slug (a camera folder's name).
    cameras: HashMap<i64, String>,
    files: u64,
    /// The newest import (ns), or the catalog's change time for an empty archive: the root's mtime.
    newest_ns: i64,
    /// Whether the catalog has old names (if not, a name not listed is not looked for among them).
    aliases: bool,
}

impl Top {
    fn load(cat: &Catalog, empty_ns: i64) -> Result<Top> {
        let list = cat.tree_couples()?;
        let cameras = cat.cameras()?.into_iter().map(|c| (c.id, c.slug)).collect();
        let files = list.iter().map(|c| c.files.max(0) as u64).sum();
        let newest_ns = list.iter().map(|c| c.newest_import * NS).max().unwrap_or(empty_ns);
        let names = list.iter().map(|c| (c.id, c.folder_name.as_bytes().to_vec())).collect();
        let couples = list.into_iter().map(|c| (c.folder_name.as_bytes().to_vec(), c)).collect();
        let aliases = cat.has_aliases()?;
        Ok(Top { couples, names, cameras, files, newest_ns, aliases })
    }

    /// The camera a folder name under a footage type names, if it is a camera's slug now (`Some(None)`: the
    /// `unknown` folder).
    fn camera_of_name(&self, name: &[u8]) -> Option<Option<i64>> {
        if name == b"unknown" {
            return Some(None);
        }
        self.cameras.iter().find(|(_, slug)| slug.as_bytes() == name).map(|(id, _)| Some(*id))
    }

    fn camera_name(&self, camera: Option<i64>) -> Vec<u8> {
        tree_name(camera.and_then(|id| self.cameras.get(&id)))
    }
}

/// What the tree keeps of the catalog, bounded: camera-folder listings (by entries), file and `.by-hash` nodes,
/// and each recently used couple's camera folders.
struct Caches {
    listings: LruCache<u64, Arc<Vec<Entry>>>,
    listed: usize,
    nodes: LruCache<u64, Node>,
    couples: LruCache<i64, Arc<Vec<TreeCamera>>>,
    /// Moves with every invalidation: an answer read from the catalog before one is not kept after it.
    generation: u64,
}

impl Caches {
    /// Keeps what was read while the caches were at `generation`, unless something was invalidated meanwhile
    /// (the read may predate the change that invalidated it).
    fn keep<T>(&mut self, generation: u64, f: impl FnOnce(&mut Caches) -> T) {
        if self.generation == generation {
            f(self);
        }
    }

    fn keep_listing(&mut self, ino: u64, l: Arc<Vec<Entry>>) {
        self.listed += l.len();
        if let Some(old) = self.listings.insert(ino, l) {
            self.listed -= old.len();
        }
        while self.listed > LISTED_ENTRIES && self.listings.len() > 1 {
            match self.listings.remove_lru() {
                Some((_, old)) => self.listed -= old.len(),
                None => break,
            }
        }
    }

    fn drop_listing(&mut self, ino: u64) {
        if let Some(old) = self.listings.remove(&ino) {
            self.listed -= old.len();
        }
    }
}

/// Where below a couple a ghost folder (a folder of an old path) leads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum GhostAt {
    Couple,
    Source,
    Type(FootageType),
    Camera(FootageType, Option<i64>),
}

/// A ghost folder handed out: its parent, and what it stands for.
#[derive(Clone, Copy, Debug)]
struct Ghost {
    parent: u64,
    couple: i64,
    at: GhostAt,
}

/// Which blobs `verify` found damaged or missing: how many (none: nothing to look up), and the answers looked up
/// per blob since the last health change.
struct Health {
    unhealthy: i64,
    known: LruCache<String, bool>,
}

/// The tree over one archive's catalog.
pub struct Vfs {
    /// The change feed's connection (its change token is its own: never compared with another's).
    catalog: Mutex<Catalog>,
    /// The connection the refresher blocks on between two looks ([`Vfs::wait_change`]).
    waiter: Mutex<Catalog>,
    /// Connections for answers, so front-end threads read the catalog side by side.
    readers: Vec<Mutex<Catalog>>,
    top: RwLock<Top>,
    caches: Mutex<Caches>,
    /// Directories whose attributes were handed out: only these can be in a front end's cache, so the change
    /// feed reports a new entry in the deepest of them (at most a few per couple: never the files).
    shown: Mutex<HashSet<u64>>,
    root: PathBuf,
    uid: u32,
    gid: u32,
    /// The catalog's change time at the start (the mtime of an empty tree).
    empty_ns: i64,
    data_version: Mutex<i64>,
    /// The newest file and blob ids followed.
    newest: Mutex<(i64, i64)>,
    health: Mutex<Health>,
    /// Unhealthy blobs already logged (one line each).
    logged: Mutex<HashSet<String>>,
    /// The newest archive event followed (heals, damage, replaced files).
    last_event: Mutex<i64>,
    /// Inodes whose content changed (healed, replaced, found damaged): the front end drops what it cached.
    changed: Mutex<Vec<u64>>,
    /// Ghost folders handed out (bounded: the least recently used are forgotten, and answer ENOENT).
    ghosts: Mutex<LruCache<u64, Ghost>>,
    /// Entries a lifecycle change took away, and the directories it changed: the front end forgets them.
    gone: Mutex<(Entries, Vec<u64>)>,
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

/// A couple folder's node.
fn couple_dir(c: &TreeCouple) -> Node {
    Node::dir(ROOT_INO, c.newest_import * NS, 1)
}

/// The footage types a couple's camera folders are under, once each (they come ordered by type).
fn types_of(cams: &[TreeCamera]) -> Vec<FootageType> {
    let mut types: Vec<FootageType> = cams.iter().map(|t| t.footage_type).collect();
    types.dedup();
    types
}

fn find<'a>(list: &'a [Entry], name: &[u8]) -> Option<&'a Entry> {
    list.binary_search_by(|e| e.name.as_slice().cmp(name)).ok().map(|i| &list[i])
}

impl Vfs {
    /// Opens the tree of an archive (reads a row per couple, never the files); files belong to the calling user.
    pub fn new(archive: &Archive) -> Result<Vfs> {
        let (uid, gid) = (rustix::process::getuid().as_raw(), rustix::process::getgid().as_raw());
        let cat = archive.catalog()?;
        let empty_ns = cat.changed_at().ok().flatten().map(crate::catalog::system_time_ns).unwrap_or(0);
        let top = Top::load(&cat, empty_ns)?;
        let newest = cat.newest_ids()?;
        let (unhealthy, _) = cat.unhealthy_blobs_first(0)?;
        let readers = (0..READERS).map(|_| archive.catalog().map(Mutex::new)).collect::<Result<Vec<_>>>()?;
        Ok(Vfs {
            top: RwLock::new(top),
            caches: Mutex::new(Caches {
                listings: LruCache::new_unbounded(),
                listed: 0,
                nodes: LruCache::new(NODES),
                couples: LruCache::new(COUPLES_KEPT),
                generation: 0,
            }),
            readers,
            shown: Mutex::new(HashSet::from([ROOT_INO])),
            data_version: Mutex::new(cat.change_token()?),
            newest: Mutex::new(newest),
            health: Mutex::new(Health { unhealthy, known: LruCache::new(HEALTH_KEPT) }),
            logged: Mutex::new(HashSet::new()),
            last_event: Mutex::new(cat.last_event_id()?),
            changed: Mutex::new(Vec::new()),
            ghosts: Mutex::new(LruCache::new(GHOSTS_KEPT)),
            gone: Mutex::new((Vec::new(), Vec::new())),
            catalog: Mutex::new(cat),
            waiter: Mutex::new(archive.catalog()?),
            root: archive.root.clone(),
            empty_ns,
            uid,
            gid,
        })
    }

    // ---- reading the catalog, through the caches -----------------------------------------------------------

    /// A free connection for an answer (or the first, waited for, when all are busy).
    fn reader(&self) -> MutexGuard<'_, Catalog> {
        if let Some(free) = self.readers.iter().find_map(|r| r.try_lock()) {
            return free;
        }
        match self.readers.first() {
            Some(r) => r.lock(),
            None => self.catalog.lock(),
        }
    }

    /// A node from the cache, or the generation to keep one read now under.
    fn cached_node(&self, ino: u64) -> std::result::Result<Node, u64> {
        let mut caches = self.caches.lock();
        match caches.nodes.get(&ino) {
            Some(n) => Ok(n.clone()),
            None => Err(caches.generation),
        }
    }

    /// A couple's camera folders.
    fn cameras_of(&self, couple: i64) -> Result<Arc<Vec<TreeCamera>>> {
        let generation = {
            let mut caches = self.caches.lock();
            if let Some(c) = caches.couples.get(&couple) {
                return Ok(Arc::clone(c));
            }
            caches.generation
        };
        let c = Arc::new(self.reader().tree_cameras(couple)?);
        self.caches.lock().keep(generation, |k| k.couples.insert(couple, Arc::clone(&c)));
        Ok(c)
    }

    /// Makes sure every camera of `cams` has its slug in the top: a camera created by an import the change feed
    /// has not followed yet would otherwise be named like the folder of files without a camera.
    fn know_cameras(&self, cams: &[TreeCamera]) -> Result<()> {
        let known = {
            let top = self.top.read();
            cams.iter().filter_map(|t| t.camera_id).all(|id| top.cameras.contains_key(&id))
        };
        if !known {
            let cameras = self.reader().cameras()?.into_iter().map(|c| (c.id, c.slug)).collect();
            self.top.write().cameras = cameras;
        }
        Ok(())
    }

    fn couple_node(&self, couple: i64) -> Option<Node> {
        let top = self.top.read();
        let name = top.names.get(&couple)?;
        top.couples.get(name).map(couple_dir)
    }

    /// A file or `.by-hash` node: from the cache, else `read` from the catalog (and kept).
    fn cached_or(&self, ino: u64, read: impl FnOnce(&Catalog) -> Result<Option<Node>>) -> Result<Option<Node>> {
        let generation = match self.cached_node(ino) {
            Ok(n) => return Ok(Some(n)),
            Err(generation) => generation,
        };
        let Some(n) = read(&self.reader())? else { return Ok(None) };
        self.caches.lock().keep(generation, |k| k.nodes.insert(ino, n.clone()));
        Ok(Some(n))
    }

    /// The node an inode names, from the caches or the catalog; `None` for an inode that names nothing.
    fn node(&self, ino: u64) -> Result<Option<Node>> {
        let newest = self.top.read().newest_ns;
        Ok(match decode(ino) {
            TreeIno::Root => Some(Node::dir(ROOT_INO, newest, 2 + self.top.read().couples.len() as u32)),
            TreeIno::ByHash | TreeIno::IngestRoot => Some(Node::dir(ROOT_INO, newest, 0)),
            TreeIno::NeverIndex => Some(Node { kind: Kind::File, ..Node::dir(ROOT_INO, newest, 0) }),
            TreeIno::Couple(c) => self.couple_node(c),
            TreeIno::Source(c) => {
                if self.couple_node(c).is_none() {
                    return Ok(None);
                }
                let cams = self.cameras_of(c)?;
                let t = cams.iter().map(|t| t.newest_import).max().map(|t| t * NS);
                t.map(|t| Node::dir(couple_ino(c), t, types_of(&cams).len() as u32))
            }
            TreeIno::Type(c, ft) => {
                if self.couple_node(c).is_none() {
                    return Ok(None);
                }
                let cams = self.cameras_of(c)?;
                let of_type = cams.iter().filter(|t| t.footage_type == ft);
                let (n, t) = of_type.fold((0u32, None), |(n, t): (u32, Option<i64>), c| {
                    (n + 1, Some(t.unwrap_or(0).max(c.newest_import)))
                });
                t.map(|t| Node::dir(source_ino(c), t * NS, n))
            }
            TreeIno::Camera(c, ft, cam) => {
                if self.couple_node(c).is_none() {
                    return Ok(None);
                }
                let cams = self.cameras_of(c)?;
                let found = cams.iter().find(|t| t.footage_type == ft && t.camera_id == cam);
                found.map(|t| Node::dir(type_ino(c, ft), t.newest_import * NS, 0))
            }
            TreeIno::File(id) => {
                return self.cached_or(ino, |cat| Ok(cat.file(id)?.map(|f| Node::of_file(TreeFile::from(&f)).1)));
            }
            TreeIno::Hash(blob) => {
                return self.cached_or(ino, |cat| {
                    let first = cat.hash_entries(blob - 1, 1)?;
                    Ok(first.into_iter().find(|f| f.blob_id == blob).map(|f| Node::of_blob(f).1))
                });
            }
            TreeIno::Ghost(_) => {
                let g = self.ghosts.lock().get(&ino).copied();
                g.map(|g| Node::dir(g.parent, newest, 0))
            }
            TreeIno::Unknown => None,
        })
    }

    /// A directory's entries, sorted by name (`.by-hash` whole: see [`Vfs::hash_page`] for a streamed listing);
    /// `None` if `ino` is not a directory of the tree.
    fn listing(&self, ino: u64) -> Result<Option<Arc<Vec<Entry>>>> {
        let entry = |name: Vec<u8>, ino: u64, node: Option<Node>| node.map(|node| Entry { name, ino, node });
        let mut v: Vec<Entry> = match decode(ino) {
            TreeIno::Root => {
                let mut v = Vec::new();
                for (name, fixed) in
                    [(BY_HASH_NAME, BY_HASH_INO), (NEVER_INDEX_NAME, NEVER_INDEX_INO), (INGEST_NAME, INGEST_ROOT_INO)]
                {
                    v.extend(entry(name.to_vec(), fixed, self.node(fixed)?));
                }
                let top = self.top.read();
                v.extend(top.couples.iter().map(|(name, c)| Entry {
                    name: name.clone(),
                    ino: couple_ino(c.id),
                    node: couple_dir(c),
                }));
                v
            }
            TreeIno::Couple(c) => {
                if self.couple_node(c).is_none() {
                    return Ok(None);
                }
                entry(b"source".to_vec(), source_ino(c), self.node(source_ino(c))?).into_iter().collect()
            }
            TreeIno::Source(c) => {
                if self.couple_node(c).is_none() {
                    return Ok(None);
                }
                let mut v = Vec::new();
                for ft in types_of(&self.cameras_of(c)?) {
                    v.extend(entry(ft.as_str().as_bytes().to_vec(), type_ino(c, ft), self.node(type_ino(c, ft))?));
                }
                v
            }
            TreeIno::Type(c, ft) => {
                if self.node(ino)?.is_none() {
                    return Ok(None);
                }
                let cams = self.cameras_of(c)?;
                self.know_cameras(&cams)?;
                let top = self.top.read();
                cams.iter()
                    .filter(|t| t.footage_type == ft)
                    .map(|t| Entry {
                        name: top.camera_name(t.camera_id),
                        ino: camera_ino(c, ft, t.camera_id),
                        node: Node::dir(ino, t.newest_import * NS, 0),
                    })
                    .collect()
            }
            TreeIno::Camera(c, ft, cam) => {
                let generation = {
                    let mut caches = self.caches.lock();
                    if let Some(l) = caches.listings.get(&ino) {
                        return Ok(Some(Arc::clone(l)));
                    }
                    caches.generation
                };
                if self.node(ino)?.is_none() {
                    return Ok(None);
                }
                let files = self.reader().files_in_dir(c, ft, cam)?;
                // Already by name (byte order): kept as it comes.
                let l: Arc<Vec<Entry>> = Arc::new(
                    files
                        .into_iter()
                        .map(|f| {
                            let ino = file_ino(f.id);
                            let (name, node) = Node::of_file(f);
                            Entry { name, ino, node }
                        })
                        .collect(),
                );
                self.caches.lock().keep(generation, |k| k.keep_listing(ino, Arc::clone(&l)));
                return Ok(Some(l));
            }
            TreeIno::ByHash => {
                let mut v = Vec::new();
                let mut after = 0;
                loop {
                    let page = self.reader().hash_entries(after, HASH_PAGE as u32)?;
                    let Some(last) = page.last() else { break };
                    after = last.blob_id;
                    v.extend(page.into_iter().map(|f| {
                        let ino = hash_ino(f.blob_id);
                        let (name, node) = Node::of_blob(f);
                        Entry { name, ino, node }
                    }));
                }
                v
            }
            TreeIno::Ghost(_) => {
                if self.ghosts.lock().get(&ino).is_none() {
                    return Ok(None);
                }
                Vec::new()
            }
            _ => return Ok(None),
        };
        v.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Some(Arc::new(v)))
    }

    // ---- the change feed -----------------------------------------------------------------------------------

    /// Picks up catalog changes made by other processes (imports); cheap when nothing changed.
    /// Returns the new entries, for the front end to invalidate cached negative lookups and listings: for each
    /// new file, the entry in the deepest directory a front end was shown (the file in its camera folder, or the
    /// new camera, type or couple folder above it), and new `.by-hash` entries.
    /// Waits at most `timeout` for another process to commit (on a connection of its own, so lookups go on
    /// meanwhile): Postgres wakes on its change notification, SQLite sleeps the whole `timeout`.
    pub fn wait_change(&self, timeout: Duration) -> Result<()> {
        self.waiter.lock().wait_change(timeout)
    }

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

    /// Follows the files catalogued since the last look (only those are read).
    fn load_new(&self) -> Result<Vec<(u64, Vec<u8>)>> {
        let mut newest = self.newest.lock();
        let cat = self.catalog.lock();
        let rows = cat.files_after(newest.0)?;
        let Some(last) = rows.last() else { return Ok(Vec::new()) };
        let last_id = last.id;
        let top = Top::load(&cat, self.empty_ns)?;
        drop(cat);
        let mut out = Vec::new();
        let mut reported = HashSet::new();
        {
            let shown = self.shown.lock();
            let mut caches = self.caches.lock();
            for f in &rows {
                let Some(couple) = top.names.get(&f.couple_id) else { continue };
                let ty = type_ino(f.couple_id, f.footage_type);
                let cam = camera_ino(f.couple_id, f.footage_type, f.camera_id);
                let path = [
                    (ROOT_INO, couple.clone()),
                    (couple_ino(f.couple_id), b"source".to_vec()),
                    (source_ino(f.couple_id), f.footage_type.as_str().as_bytes().to_vec()),
                    (ty, top.camera_name(f.camera_id)),
                    (cam, f.display_name.clone()),
                ];
                let deepest = path.iter().rposition(|(dir, _)| shown.contains(dir)).unwrap_or(0);
                if reported.insert(path[deepest].clone()) {
                    out.push(path[deepest].clone());
                }
                if f.blob_id > newest.1 {
                    out.push((BY_HASH_INO, by_hash_name(&f.blob_hash, &f.display_name)));
                    newest.1 = f.blob_id;
                }
                caches.drop_listing(cam);
                caches.couples.remove(&f.couple_id);
            }
            caches.generation += 1;
        }
        *self.top.write() = top;
        newest.0 = last_id;
        Ok(out)
    }

    /// Applies the archive events since the last look: blob health changes (the unhealthy count and the inodes
    /// that read those blobs) and salvaged files replaced by clean copies (their node reads the new blob).
    fn follow_events(&self) -> Result<()> {
        let mut last = self.last_event.lock();
        let cat = self.catalog.lock();
        let events = cat.events_after(*last, 10_000)?;
        let Some(newest) = events.last().map(|e| e.id) else { return Ok(()) };
        *last = newest;
        let mut hashes = HashSet::new();
        let mut replaced = Vec::new();
        let mut lifecycle: Option<Vec<Gone>> = None;
        for e in &events {
            match (e.kind.as_str(), &e.blob_hash, e.file_id) {
                ("lifecycle", _, _) => lifecycle
                    .get_or_insert_with(Vec::new)
                    .extend(e.detail.as_deref().map(Gone::from_json).unwrap_or_default()),
                ("file_replaced", _, Some(fid)) => replaced.extend(cat.file(fid)?),
                (_, Some(h), _) => {
                    hashes.insert(h.clone());
                }
                _ => {}
            }
        }
        let mut touched = Vec::new();
        if !hashes.is_empty() {
            let (unhealthy, _) = cat.unhealthy_blobs_first(0)?;
            {
                let mut h = self.health.lock();
                h.unhealthy = unhealthy;
                h.known.clear();
            }
            self.logged.lock().retain(|h| !hashes.contains(h));
            touched = cat.files_of_blobs(&hashes.into_iter().collect::<Vec<_>>())?;
        }
        let top = match lifecycle {
            Some(_) => Some(Top::load(&cat, self.empty_ns)?),
            None => None,
        };
        drop(cat);
        if let (Some(gone), Some(top)) = (lifecycle, top) {
            self.forget(&gone, top);
        }
        let mut changed = self.changed.lock();
        let mut caches = self.caches.lock();
        caches.generation += 1;
        for f in replaced {
            let ino = file_ino(f.id);
            caches.nodes.remove(&ino);
            caches.drop_listing(camera_ino(f.couple_id, f.footage_type, f.camera_id));
            changed.push(ino);
        }
        for f in touched {
            changed.push(file_ino(f.id));
            changed.push(hash_ino(f.blob_id));
        }
        changed.sort_unstable();
        changed.dedup();
        Ok(())
    }

    /// Applies a lifecycle change (rename, move, merge, removal, restore, purge): drops every cache, takes the
    /// new top, and reports what the change took away (each path component of an old place, a renamed or
    /// removed couple folder, an old camera folder in every footage type shown) and every directory shown.
    fn forget(&self, gone: &[Gone], top: Top) {
        let old = std::mem::replace(&mut *self.top.write(), top);
        let shown: Vec<u64> = self.shown.lock().iter().copied().collect();
        let mut entries = Vec::new();
        let mut files = Vec::new();
        for g in gone {
            match g {
                Gone::Couple { folder, .. } => entries.push((ROOT_INO, folder.as_bytes().to_vec())),
                Gone::Camera { slug, .. } => {
                    for &dir in &shown {
                        if let TreeIno::Type(..) = decode(dir) {
                            entries.push((dir, slug.as_bytes().to_vec()));
                        }
                    }
                }
                Gone::File { file_id, at } => {
                    let (c, ft) = (at.couple_id, at.footage_type);
                    entries.push((camera_ino(c, ft, at.camera_id), at.name.clone()));
                    entries.push((type_ino(c, ft), old.camera_name(at.camera_id)));
                    entries.push((source_ino(c), ft.as_str().as_bytes().to_vec()));
                    if let Some(folder) = old.names.get(&c) {
                        if !self.top.read().names.contains_key(&c) {
                            entries.push((ROOT_INO, folder.clone()));
                        }
                    }
                    files.push(file_ino(*file_id));
                }
            }
        }
        entries.sort();
        entries.dedup();
        {
            let mut caches = self.caches.lock();
            caches.listings.clear();
            caches.listed = 0;
            caches.nodes.clear();
            caches.couples.clear();
            caches.generation += 1;
        }
        self.changed.lock().extend(files);
        let mut g = self.gone.lock();
        g.0.extend(entries);
        g.1.extend(shown);
    }

    /// What lifecycle changes took away since the last call: entries `(parent, name)` and directories whose
    /// listing changed (see `forget`).
    pub fn take_gone(&self) -> (Entries, Vec<u64>) {
        std::mem::take(&mut *self.gone.lock())
    }

    /// Inodes whose content changed since the last call (see `follow_events`).
    pub fn take_changed(&self) -> Vec<u64> {
        std::mem::take(&mut *self.changed.lock())
    }

    // ---- health --------------------------------------------------------------------------------------------

    /// [`Vfs::refuses`] for the blob an inode reads; costs one check of a count while no blob is unhealthy
    /// (it runs on every read of the copy path).
    pub fn refuses_inode(&self, ino: u64) -> bool {
        if self.health.lock().unhealthy == 0 {
            return false;
        }
        self.file_ref(ino).ok().flatten().is_some_and(|fr| self.refuses(&fr.hash))
    }

    /// True when the blob must not be served (`verify` found it damaged or missing, or its health cannot be
    /// read); logs that once per blob.
    pub fn refuses(&self, hash: &str) -> bool {
        let known = {
            let mut h = self.health.lock();
            if h.unhealthy == 0 {
                return false;
            }
            h.known.get(hash).copied()
        };
        let bad = match known {
            Some(b) => b,
            None => {
                let b = match self.reader().blob_health(hash) {
                    Ok(health) => health.is_some_and(|s| s != "ok"),
                    Err(e) => {
                        tracing::error!("health of blob {hash} cannot be read, refusing it: {e}");
                        return true;
                    }
                };
                self.health.lock().known.insert(hash.to_string(), b);
                b
            }
        };
        if bad && self.logged.lock().insert(hash.to_string()) {
            tracing::error!(
                "blob {hash} is damaged or missing (found by verify): answering EIO until a verified copy heals it \
                 (re-import the original or `nightfox repair PATH`)"
            );
        }
        bad
    }

    // ---- answers -------------------------------------------------------------------------------------------

    fn attr_of(&self, ino: u64, n: &Node) -> Attr {
        match n.kind {
            Kind::Dir => {
                self.shown.lock().insert(ino);
                Attr {
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
                }
            }
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

    pub fn getattr(&self, ino: u64) -> Result<Option<Attr>> {
        Ok(self.node(ino)?.map(|n| self.attr_of(ino, &n)))
    }

    pub fn lookup(&self, parent: u64, name: &[u8]) -> Result<Option<Attr>> {
        let (ino, node) = match decode(parent) {
            TreeIno::Camera(c, ft, cam) => {
                let cached = self.caches.lock().listings.get(&parent).map(Arc::clone);
                if let Some(l) = cached {
                    return match find(&l, name) {
                        Some(e) => Ok(Some(self.attr_of(e.ino, &e.node))),
                        None => self.lookup_old(parent, name),
                    };
                }
                let generation = self.caches.lock().generation;
                let Some(f) = self.reader().file_in_dir(c, ft, cam, name)? else {
                    return self.lookup_old(parent, name);
                };
                let (_, n) = Node::of_file(TreeFile::from(&f));
                self.caches.lock().keep(generation, |k| k.nodes.insert(file_ino(f.id), n.clone()));
                (file_ino(f.id), n)
            }
            TreeIno::ByHash => {
                let hash = name.get(..64).and_then(|h| std::str::from_utf8(h).ok());
                let Some(hash) = hash.filter(|h| crate::blobs::is_hash(h)) else { return Ok(None) };
                let generation = self.caches.lock().generation;
                let files = self.reader().files_of_blob(hash)?;
                let Some(f) = files.iter().min_by_key(|f| f.id) else { return Ok(None) };
                if by_hash_name(&f.blob_hash, &f.display_name) != name {
                    return Ok(None);
                }
                let ino = hash_ino(f.blob_id);
                let (_, n) = Node::of_blob(TreeFile::from(f));
                self.caches.lock().keep(generation, |k| k.nodes.insert(ino, n.clone()));
                (ino, n)
            }
            _ => {
                let Some(l) = self.listing(parent)? else { return Ok(None) };
                let Some(e) = find(&l, name) else { return self.lookup_old(parent, name) };
                (e.ino, e.node.clone())
            }
        };
        Ok(Some(self.attr_of(ino, &node)))
    }

    /// A name a directory does not list, looked up among the old names (see the module doc): a ghost folder, or
    /// the file an old place names. Costs nothing while the archive has no aliases.
    fn lookup_old(&self, parent: u64, name: &[u8]) -> Result<Option<Attr>> {
        if !self.top.read().aliases || is_probe_name(name) {
            return Ok(None);
        }
        let below = match decode(parent) {
            TreeIno::Root => None,
            TreeIno::Couple(c) => Some((c, GhostAt::Couple)),
            TreeIno::Source(c) => Some((c, GhostAt::Source)),
            TreeIno::Type(c, ft) => Some((c, GhostAt::Type(ft))),
            TreeIno::Camera(c, ft, cam) => Some((c, GhostAt::Camera(ft, cam))),
            TreeIno::Ghost(_) => match self.ghosts.lock().get(&parent) {
                Some(g) => Some((g.couple, g.at)),
                None => return Ok(None),
            },
            _ => return Ok(None),
        };
        let ghost = |couple: i64, at: GhostAt| {
            let ino = ghost_ino(parent, name);
            self.ghosts.lock().insert(ino, Ghost { parent, couple, at });
            Some(self.attr_of(ino, &Node::dir(parent, self.top.read().newest_ns, 0)))
        };
        let Some((couple, at)) = below else {
            let Ok(folder) = std::str::from_utf8(name) else { return Ok(None) };
            let Some(c) = self.reader().couple_alias(folder)? else { return Ok(None) };
            return Ok(if self.couple_node(c).is_some() { ghost(c, GhostAt::Couple) } else { None });
        };
        Ok(match at {
            GhostAt::Couple if name == b"source" => ghost(couple, GhostAt::Source),
            GhostAt::Couple => None,
            GhostAt::Source => {
                let Some(ft) = std::str::from_utf8(name).ok().and_then(|s| FootageType::parse(s).ok()) else {
                    return Ok(None);
                };
                let shown = self.cameras_of(couple)?.iter().any(|t| t.footage_type == ft);
                if shown || self.reader().aliases_under(couple, Some(ft), None)? {
                    ghost(couple, GhostAt::Type(ft))
                } else {
                    None
                }
            }
            GhostAt::Type(ft) => {
                let known = self.top.read().camera_of_name(name);
                let cam = match known {
                    Some(cam) => cam,
                    None => {
                        let Ok(slug) = std::str::from_utf8(name) else { return Ok(None) };
                        match self.reader().camera_alias(slug)? {
                            Some(id) => Some(id),
                            None => return Ok(None),
                        }
                    }
                };
                let shown = self.cameras_of(couple)?.iter().any(|t| t.footage_type == ft && t.camera_id == cam);
                if shown || self.reader().aliases_under(couple, Some(ft), Some(cam))? {
                    ghost(couple, GhostAt::Camera(ft, cam))
                } else {
                    None
                }
            }
            GhostAt::Camera(ft, cam) => {
                let here = Placement { couple_id: couple, footage_type: ft, camera_id: cam, name: name.to_vec() };
                let found = {
                    let r = self.reader();
                    match r.file_in_dir(couple, ft, cam, name)? {
                        Some(f) => Some(f),
                        None => r.file_at_alias(&here)?,
                    }
                };
                found.map(|f| {
                    let ino = file_ino(f.id);
                    let (_, n) = Node::of_file(TreeFile::from(&f));
                    self.attr_of(ino, &n)
                })
            }
        })
    }

    /// The parent of a directory or file (the root is its own parent). The inode handed out counts as shown.
    pub fn parent(&self, ino: u64) -> Option<u64> {
        let p = match decode(ino) {
            TreeIno::Root | TreeIno::ByHash | TreeIno::NeverIndex | TreeIno::IngestRoot | TreeIno::Couple(_) => {
                Some(ROOT_INO)
            }
            TreeIno::Source(c) => Some(couple_ino(c)),
            TreeIno::Type(c, _) => Some(source_ino(c)),
            TreeIno::Camera(c, ft, _) => Some(type_ino(c, ft)),
            TreeIno::Hash(_) => Some(BY_HASH_INO),
            TreeIno::File(_) => self.node(ino).ok().flatten().map(|n| n.parent),
            TreeIno::Ghost(_) => self.ghosts.lock().get(&ino).map(|g| g.parent),
            TreeIno::Unknown => None,
        };
        if let Some(p) = p {
            self.shown.lock().insert(p);
        }
        p
    }

    /// A directory's entries with their attributes, sorted by name; `None` if `ino` is not a directory.
    /// `.by-hash` is read whole here: a front end streams it with [`Vfs::hash_page`].
    pub fn readdir(&self, ino: u64) -> Result<Option<Vec<DirEntry>>> {
        Ok(self
            .listing(ino)?
            .map(|l| l.iter().map(|e| DirEntry { name: e.name.clone(), attr: self.attr_of(e.ino, &e.node) }).collect()))
    }

    /// Up to `max` entries of `.by-hash` after the blob id `after` (0: from the start), each with its blob id,
    /// in blob id order: a listing that streams, whatever the size of the archive.
    pub fn hash_page(&self, after: i64, max: usize) -> Result<Vec<(i64, DirEntry)>> {
        let page = self.reader().hash_entries(after, max.min(HASH_PAGE) as u32)?;
        Ok(page
            .into_iter()
            .map(|f| {
                let (blob, ino) = (f.blob_id, hash_ino(f.blob_id));
                let (name, node) = Node::of_blob(f);
                (blob, DirEntry { name, attr: self.attr_of(ino, &node) })
            })
            .collect())
    }

    /// The blob a file node reads from; `None` for directories and the empty virtual file.
    pub fn file_ref(&self, ino: u64) -> Result<Option<FileRef>> {
        Ok(self.node(ino)?.and_then(|n| n.file))
    }

    /// The extended attributes a node offers (all in the `user.` namespace, see [`xattr_namespace_supported`]).
    pub fn xattr_names(&self, ino: u64) -> Vec<&'static str> {
        match self.file_ref(ino).ok().flatten() {
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
        let Some(fr) = self.file_ref(ino)? else {
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
        let Some(f) = self.reader().file(id)? else {
            return Ok(None);
        };
        Ok(match name {
            b"user.nightfox.original_path" => Some(f.original_path),
            b"user.nightfox.camera" => Some(self.top.read().camera_name(f.camera_id)),
            b"user.nightfox.imported_at" => Some(rfc3339(f.imported_at).into_bytes()),
            b"user.nightfox.captured_at" => f.captured_at.map(|t| rfc3339(t).into_bytes()),
            b"user.nightfox.damaged" => f.bad_ranges.map(String::into_bytes),
            _ => None,
        })
    }

    /// Size and free space of the archive's filesystem, and the number of files in the tree.
    pub fn statfs(&self) -> Result<FsStats> {
        let s = rustix::fs::statvfs(&self.root).map_err(|e| Error::io(&self.root, e.into()))?;
        let files = self.top.read().files;
        Ok(FsStats {
            blocks: s.f_blocks,
            bfree: s.f_bfree,
            bavail: s.f_bavail,
            files: files.max(1),
            ffree: s.f_ffree,
            bsize: s.f_bsize as u32,
            frsize: s.f_frsize as u32,
            namelen: crate::organize::NAME_MAX as u32,
        })
    }
}

/// `2025-12-31T14:03:00Z` from Unix seconds (jiff; outside its years -9999 to 9999, the nearest end of them).
pub fn rfc3339(secs: i64) -> String {
    let t = jiff::Timestamp::from_second(secs).unwrap_or(if secs < 0 {
        jiff::Timestamp::MIN
    } else {
        jiff::Timestamp::MAX
    });
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
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
    // An old path (before a rename, move or merge) names the file where it is now.
    let folder = String::from_utf8_lossy(couple);
    let couple_id = match cat.couple_by_folder(&folder) {
        Ok(c) => c.id,
        Err(e @ Error::NoSuchCouple(_)) => cat.couple_alias(&folder)?.ok_or(e)?,
        Err(e) => return Err(e),
    };
    let ft = FootageType::parse(&String::from_utf8_lossy(ft))?;
    let camera_id = match *camera {
        b"unknown" => None,
        slug => {
            let slug = String::from_utf8_lossy(slug);
            match cat.camera_by_slug(&slug) {
                Ok(c) => Some(c.id),
                Err(e @ Error::NoSuchCamera(_)) => Some(cat.camera_alias(&slug)?.ok_or(e)?),
                Err(e) => return Err(e),
            }
        }
    };
    if let Some(f) = cat.file_in_dir(couple_id, ft, camera_id, name)? {
        return Ok(f);
    }
    let at = Placement { couple_id, footage_type: ft, camera_id, name: name.to_vec() };
    cat.file_at_alias(&at)?.ok_or_else(not_found)
}

/// A file's old paths (what `info` lists): each old place, under the names its couple and camera have now.
pub fn old_paths_of(cat: &Catalog, file_id: i64) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for a in cat.aliases_of(file_id)? {
        let couple = cat.couple_by_id(a.at.couple_id)?.folder_name;
        let camera = match a.at.camera_id {
            Some(id) => cat.camera_by_id(id)?.map(|c| c.slug).unwrap_or_else(|| "unknown".into()),
            None => "unknown".into(),
        };
        out.push(format!(
            "{couple}/source/{}/{camera}/{}",
            a.at.footage_type.as_str(),
            String::from_utf8_lossy(&a.at.name)
        ));
    }
    Ok(out)
}

/// If `path` lies inside a mounted Nightfox tree: the archive it serves and the path inside the tree.
pub fn locate_in_mount(path: &std::path::Path) -> Option<(PathBuf, Vec<u8>)> {
    use std::os::unix::ffi::OsStrExt;
    let abs = std::path::absolute(path).ok()?;
    let mounts = procfs::process::Process::myself().and_then(|p| p.mountinfo()).ok()?;
    // procfs leaves the kernel's octal escapes of spaces, tabs, newlines and backslashes in place.
    let unescape =
        |s: &str| s.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\");
    // The deepest mount point that holds the path wins; among mounts stacked on one point, the last (topmost).
    let mut best: Option<(usize, PathBuf, Vec<u8>)> = None;
    for m in mounts {
        if !matches!(m.fs_type.as_str(), "fuse" | "fuse.nightfox") {
            continue;
        }
        let Some(src) = m.mount_source else { continue };
        let mp = PathBuf::from(unescape(&m.mount_point.to_string_lossy()));
        let Some(archive) = unescape(&src).strip_prefix("nightfox:").map(PathBuf::from) else { continue };
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
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59Z");
        assert_eq!(rfc3339(-2_208_988_800), "1900-01-01T00:00:00Z");
        assert_eq!(rfc3339(i64::MAX), "9999-12-30T22:00:00Z", "clamped to jiff's last instant, never a panic");
    }
}
