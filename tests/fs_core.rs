//! The filesystem core (`nightfox::fs::ArchiveFs`) without any front end: routing, the root listing with
//! `/ingest`, EROFS outside `/ingest`, the permission rules inside it, stateless reads and inode numbers.

mod common;

use std::sync::Arc;

use common::*;
use nightfox::archive::Archive;
use nightfox::catalog::{FileRow, FootageType};
use nightfox::fs::{
    ArchiveFs, Caller, Change, FsError, Groups, Kind, Opened, RenameFlags, SetAttr, SetTime, INGEST_ROOT_INO, MAY_EXEC,
    MAY_READ, MAY_WRITE, ROOT_INO,
};

struct Fixture {
    env: Env,
    fs: Arc<ArchiveFs>,
    couple: String,
    couple_id: i64,
    /// The imported clip and its bytes.
    clip: FileRow,
    bytes: Vec<u8>,
}

fn root() -> Caller {
    Caller { uid: 0, gid: 0, groups: Groups::Known(vec![]) }
}

fn user(uid: u32, gid: u32, groups: &[u32]) -> Caller {
    Caller { uid, gid, groups: Groups::Known(groups.to_vec()) }
}

fn fixture() -> Fixture {
    let env = Env::new();
    let couple = env.couple("Ada & Bo", "2025-06-01");
    let card = env.path("card");
    let files = sony_card(&card, 1, 7);
    env.ok(&["import", "--couple", &couple, card.to_str().unwrap()]);
    let cat = env.catalog();
    let couple_id = cat.couple_by_folder(&couple).unwrap().id;
    let clip = cat.files(Some(couple_id)).unwrap().into_iter().find(|f| f.display_name.ends_with(b".MP4")).unwrap();
    let bytes = std::fs::read(&files[0]).unwrap();
    assert_eq!(bytes.len() as u64, clip.size);
    let archive = Archive::open(&env.archive).unwrap();
    let fs = Arc::new(ArchiveFs::new(&archive).unwrap());
    Fixture { env, fs, couple, couple_id, clip, bytes }
}

fn type_idx(ft: FootageType) -> u64 {
    match ft {
        FootageType::Modern => 0,
        FootageType::Dadcam => 1,
        FootageType::Super8 => 2,
    }
}

/// Walks names from the root.
fn walk(fs: &ArchiveFs, who: &Caller, names: &[&[u8]]) -> Result<u64, FsError> {
    let mut ino = ROOT_INO;
    for n in names {
        ino = fs.lookup(who, ino, n)?.0.ino;
    }
    Ok(ino)
}

fn camera_name(f: &Fixture) -> Vec<u8> {
    match f.clip.camera_id {
        None => b"unknown".to_vec(),
        Some(id) => f.env.catalog().cameras().unwrap().into_iter().find(|c| c.id == id).unwrap().slug.into_bytes(),
    }
}

#[test]
fn inode_numbers_and_routing_are_as_before() {
    let f = fixture();
    let who = root();
    let c = f.couple_id as u64;
    let ft = f.clip.footage_type;
    let cam = camera_name(&f);
    // kind tag << 56 | catalog id, as since the first release.
    let couple = walk(&f.fs, &who, &[f.couple.as_bytes()]).unwrap();
    assert_eq!(couple, 1 << 56 | c);
    let source = walk(&f.fs, &who, &[f.couple.as_bytes(), b"source"]).unwrap();
    assert_eq!(source, 2 << 56 | c);
    let ty = walk(&f.fs, &who, &[f.couple.as_bytes(), b"source", ft.as_str().as_bytes()]).unwrap();
    assert_eq!(ty, 3 << 56 | c << 2 | type_idx(ft));
    let camera = walk(&f.fs, &who, &[f.couple.as_bytes(), b"source", ft.as_str().as_bytes(), &cam]).unwrap();
    let cam_id = f.clip.camera_id.unwrap_or(0) as u64;
    assert_eq!(camera, 4 << 56 | c << 34 | type_idx(ft) << 32 | cam_id);
    let path: [&[u8]; 5] = [f.couple.as_bytes(), b"source", ft.as_str().as_bytes(), &cam, &f.clip.display_name];
    let clip = walk(&f.fs, &who, &path).unwrap();
    assert_eq!(clip, 5 << 56 | f.clip.id as u64);
    let (a, _) = f.fs.getattr(clip).unwrap();
    assert_eq!((a.kind, a.size, a.perm), (Kind::File, f.clip.size, 0o444));
    assert_eq!(f.fs.parent(clip), Some(camera));
    let by_hash = walk(&f.fs, &who, &[b".by-hash"]).unwrap();
    assert_eq!(by_hash, 2);
    let hashes = f.fs.readdir(&who, by_hash).unwrap();
    let h = hashes.iter().find(|e| e.name.starts_with(f.clip.blob_hash.as_bytes())).expect("the clip's blob");
    assert_eq!(h.attr.ino, 6 << 56 | f.clip.blob_id as u64);
    assert_eq!(walk(&f.fs, &who, &[b".metadata_never_index"]).unwrap(), 3);
    // `/ingest` and below it are the ingest directory's.
    let ingest = walk(&f.fs, &who, &[b"ingest"]).unwrap();
    assert_eq!(ingest, INGEST_ROOT_INO);
    assert_eq!(INGEST_ROOT_INO, 4);
    let ic = walk(&f.fs, &who, &[b"ingest", f.couple.as_bytes()]).unwrap();
    assert_eq!(ic, 7 << 56 | c);
    let (dir, _) = f.fs.mkdir(&who, ic, b"CARD", 0o755).unwrap();
    assert_eq!(dir.ino >> 56, 8, "an ingest entry: tag 8");
    assert_eq!(f.fs.lookup(&who, ic, b"CARD").unwrap().0.ino, dir.ino);
    assert_eq!(f.fs.lookup(&who, ROOT_INO, b"nope"), Err(FsError::NotFound));
    assert!(f.fs.absent_for_long(ROOT_INO, b".DS_Store") && !f.fs.absent_for_long(ic, b".DS_Store"));
}

#[test]
fn the_root_lists_ingest_with_its_own_attributes() {
    let f = fixture();
    let who = root();
    let list = f.fs.readdir(&who, ROOT_INO).unwrap();
    let names: Vec<&[u8]> = list.iter().map(|e| e.name.as_slice()).collect();
    for n in [b".by-hash".as_slice(), b".metadata_never_index", b"ingest", f.couple.as_bytes()] {
        assert!(names.contains(&n), "{:?} not in the root: {names:?}", String::from_utf8_lossy(n));
    }
    let ingest = list.iter().find(|e| e.name == b"ingest").unwrap();
    let (own, _) = f.fs.getattr(INGEST_ROOT_INO).unwrap();
    assert_eq!(ingest.attr, own, "the root's `ingest` entry is answered by the ingest directory");
    assert_eq!((own.kind, own.perm), (Kind::Dir, 0o755), "writable, unlike the 0555 tree");
    let couples = f.fs.readdir(&who, INGEST_ROOT_INO).unwrap();
    assert_eq!(couples.iter().map(|e| e.name.clone()).collect::<Vec<_>>(), vec![f.couple.as_bytes().to_vec()]);
}

#[test]
fn every_change_outside_ingest_is_erofs() {
    let f = fixture();
    let who = root();
    let couple = walk(&f.fs, &who, &[f.couple.as_bytes()]).unwrap();
    let ic = walk(&f.fs, &who, &[b"ingest", f.couple.as_bytes()]).unwrap();
    let clip = f.fs.getattr(5 << 56 | f.clip.id as u64).unwrap().0.ino;
    for dir in [ROOT_INO, couple] {
        assert_eq!(f.fs.create(&who, dir, b"x", 0o644).err(), Some(FsError::ReadOnly));
        assert_eq!(f.fs.mkdir(&who, dir, b"x", 0o755).err(), Some(FsError::ReadOnly));
        assert_eq!(f.fs.unlink(&who, dir, b"x"), Err(FsError::ReadOnly));
        assert_eq!(f.fs.rmdir(&who, dir, b"x"), Err(FsError::ReadOnly));
        assert_eq!(f.fs.special_file(dir), FsError::ReadOnly);
    }
    assert_eq!(f.fs.unlink(&who, f.fs.parent(clip).unwrap(), &f.clip.display_name), Err(FsError::ReadOnly));
    let flags = RenameFlags::default();
    assert_eq!(f.fs.rename(&who, ROOT_INO, f.couple.as_bytes(), ROOT_INO, b"y", flags), Err(FsError::ReadOnly));
    assert_eq!(f.fs.rename(&who, ROOT_INO, f.couple.as_bytes(), ic, b"y", flags), Err(FsError::CrossDevice));
    for change in [
        SetAttr { mode: Some(0o644), ..Default::default() },
        SetAttr { size: Some(0), ..Default::default() },
        SetAttr { mtime: Some(SetTime::Now), ..Default::default() },
        SetAttr { uid: Some(0), ..Default::default() },
    ] {
        assert_eq!(f.fs.setattr(&who, clip, &change).err(), Some(FsError::ReadOnly), "{change:?}");
        assert_eq!(f.fs.setattr(&who, ROOT_INO, &change).err(), Some(FsError::ReadOnly), "{change:?}");
    }
    for flags in [libc::O_WRONLY, libc::O_RDWR, libc::O_RDONLY | libc::O_TRUNC, libc::O_RDONLY | libc::O_APPEND] {
        assert!(matches!(f.fs.open(&who, clip, flags), Err(FsError::ReadOnly)), "open flags {flags:#o}");
    }
    assert!(matches!(f.fs.open(&who, clip, libc::O_RDONLY), Ok(Opened::Blob { .. })));
    assert!(matches!(f.fs.open(&who, couple, libc::O_RDONLY), Err(FsError::IsDir)));
    let mut written = None;
    f.fs.write(1, 0, b"x", |r| written = Some(r));
    assert_eq!(written, Some(Err(FsError::ReadOnly)), "a handle of the tree takes no writes");
    assert_eq!(f.fs.setxattr(clip), Err(FsError::ReadOnly));
    assert_eq!(f.fs.removexattr(clip), Err(FsError::ReadOnly));
    assert_eq!(f.fs.access(&who, clip, MAY_WRITE), Err(FsError::ReadOnly));
    assert_eq!(f.fs.access(&who, clip, MAY_READ), Ok(()));
    // Inside `/ingest` the same calls are not refused as read-only.
    assert_eq!(f.fs.special_file(ic), FsError::Perm);
    assert_eq!(f.fs.setxattr(ic), Err(FsError::NotSupported));
    assert_eq!(f.fs.access(&who, ic, MAY_WRITE), Ok(()));
}

#[test]
fn ingest_checks_owner_group_and_other() {
    let f = fixture();
    let who = root();
    let ic = walk(&f.fs, &who, &[b"ingest", f.couple.as_bytes()]).unwrap();
    let member = user(2000, 3000, &[100]);
    let stranger = user(3000, 6000, &[5]);
    // The couple folder is the daemon's (root here, 0755): others may look, not write.
    assert_eq!(f.fs.mkdir(&stranger, ic, b"mine", 0o755).err(), Some(FsError::Access));
    assert_eq!(f.fs.create(&member, ic, b"a.mp4", 0o644).err(), Some(FsError::Access));
    assert!(f.fs.readdir(&stranger, ic).is_ok());
    // A folder of group 100, 0770.
    let (shared, _) = f.fs.mkdir(&user(0, 100, &[]), ic, b"shared", 0o770).unwrap();
    assert_eq!((shared.uid, shared.gid, shared.perm), (0, 100, 0o770));
    assert_eq!(f.fs.lookup(&stranger, shared.ino, b"x").err(), Some(FsError::Access), "no search permission");
    assert_eq!(f.fs.readdir(&stranger, shared.ino).err(), Some(FsError::Access));
    assert_eq!(f.fs.create(&stranger, shared.ino, b"x.mp4", 0o644).err(), Some(FsError::Access));
    // A supplementary group (NFS AUTH_UNIX style) is enough.
    let (file, fh) = f.fs.create(&member, shared.ino, b"C0001.MP4", 0o640).unwrap();
    assert_eq!((file.uid, file.gid, file.perm), (2000, 3000, 0o640));
    assert!(f.fs.readdir(&member, shared.ino).unwrap().iter().any(|e| e.name == b"C0001.MP4"));
    assert_eq!(f.fs.lookup(&member, shared.ino, b"C0001.MP4").unwrap().0.ino, file.ino);
    assert_eq!(f.fs.permit(file.ino, &member, MAY_READ | MAY_WRITE), Ok(()));
    assert_eq!(f.fs.permit(file.ino, &stranger, MAY_READ), Err(FsError::Access));
    assert_eq!(f.fs.permit(file.ino, &user(4000, 3000, &[]), MAY_READ), Ok(()), "the file's group may read");
    assert_eq!(f.fs.permit(file.ino, &user(4000, 3000, &[]), MAY_WRITE), Err(FsError::Access));
    assert_eq!(f.fs.permit(file.ino, &who, MAY_EXEC), Err(FsError::Access), "root executes only what someone may");
    assert!(matches!(f.fs.open(&stranger, file.ino, libc::O_RDONLY), Err(FsError::Access)));
    assert!(matches!(f.fs.open(&member, file.ino, libc::O_RDONLY), Ok(Opened::Ingest(_))));
    let mut written = None;
    f.fs.write(fh, 0, b"hello", |r| written = Some(r));
    assert_eq!(written, Some(Ok(5)));
    assert_eq!(f.fs.read(fh, 0, 100).unwrap(), b"hello");
    assert_eq!(f.fs.unlink(&stranger, shared.ino, b"C0001.MP4"), Err(FsError::Access));
    assert_eq!(f.fs.rmdir(&member, ic, b"shared"), Err(FsError::Access), "the couple folder is not the member's");
    assert_eq!(f.fs.readdir(&member, ic).map(|v| v.len()), Ok(1));
}

#[test]
fn setattr_rules_follow_a_local_filesystem() {
    let f = fixture();
    let ic = walk(&f.fs, &root(), &[b"ingest", f.couple.as_bytes()]).unwrap();
    let (dir, _) = f.fs.mkdir(&user(0, 100, &[]), ic, b"d", 0o777).unwrap();
    let owner = user(2000, 3000, &[100]);
    let (file, _) = f.fs.create(&owner, dir.ino, b"f.mov", 0o664).unwrap();
    let group_writer = user(4000, 3000, &[]);
    let stranger = user(5000, 5000, &[]);
    let check = |who: &Caller, change: SetAttr| f.fs.permit_setattr(file.ino, who, &change);
    // chmod: the owner or root.
    let chmod = SetAttr { mode: Some(0o600), ..Default::default() };
    assert_eq!(check(&owner, chmod), Ok(()));
    assert_eq!(check(&root(), chmod), Ok(()));
    assert_eq!(check(&group_writer, chmod), Err(FsError::Perm));
    // chown to another user: root only; to the same owner: a no-op anyone may ask.
    assert_eq!(check(&owner, SetAttr { uid: Some(4000), ..Default::default() }), Err(FsError::Perm));
    assert_eq!(check(&root(), SetAttr { uid: Some(4000), ..Default::default() }), Ok(()));
    assert_eq!(check(&owner, SetAttr { uid: Some(2000), ..Default::default() }), Ok(()));
    // chgrp: the owner, to one of its own groups.
    assert_eq!(check(&owner, SetAttr { gid: Some(100), ..Default::default() }), Ok(()));
    assert_eq!(check(&owner, SetAttr { gid: Some(5), ..Default::default() }), Err(FsError::Perm));
    assert_eq!(check(&group_writer, SetAttr { gid: Some(3000), ..Default::default() }), Ok(()), "unchanged");
    assert_eq!(check(&group_writer, SetAttr { gid: Some(100), ..Default::default() }), Err(FsError::Perm));
    // truncate by path: write permission; through a handle, what its open had.
    let truncate = SetAttr { size: Some(0), ..Default::default() };
    assert_eq!(check(&group_writer, truncate), Ok(()));
    assert_eq!(check(&stranger, truncate), Err(FsError::Access));
    assert_eq!(check(&stranger, SetAttr { by_handle: true, ..truncate }), Ok(()));
    // utimens: a given time needs the owner; "now" the owner or write permission.
    let at = SetAttr { mtime: Some(SetTime::At(1_000_000_000)), ..Default::default() };
    let now = SetAttr { mtime: Some(SetTime::Now), ..Default::default() };
    assert_eq!(check(&owner, at), Ok(()));
    assert_eq!(check(&group_writer, at), Err(FsError::Perm));
    assert_eq!(check(&group_writer, now), Ok(()));
    assert_eq!(check(&stranger, now), Err(FsError::Access));
    // And `setattr` applies the check before it changes anything.
    assert_eq!(f.fs.setattr(&stranger, file.ino, &chmod).err(), Some(FsError::Perm));
    assert_eq!(f.fs.getattr(file.ino).unwrap().0.perm, 0o664);
    let (a, _) = f.fs.setattr(&owner, file.ino, &chmod).unwrap();
    assert_eq!(a.perm, 0o600);
    let (a, _) = f.fs.setattr(&owner, file.ino, &at).unwrap();
    assert_eq!(a.mtime_ns, 1_000_000_000);
}

#[test]
fn read_at_reads_by_inode_without_an_open() {
    let f = fixture();
    let clip = 5 << 56 | f.clip.id as u64;
    let size = f.bytes.len();
    let mut buf = vec![0u8; 4096];
    assert_eq!(f.fs.read_at(clip, 0, &mut buf), Ok(4096));
    assert_eq!(buf, f.bytes[..4096]);
    let mid = size / 2 + 3;
    let mut buf = vec![0u8; 10_000];
    assert_eq!(f.fs.read_at(clip, mid as u64, &mut buf), Ok(10_000));
    assert_eq!(buf, f.bytes[mid..mid + 10_000]);
    // The end: short, then nothing at and past it.
    let mut buf = vec![0u8; 4096];
    assert_eq!(f.fs.read_at(clip, size as u64 - 100, &mut buf), Ok(100));
    assert_eq!(buf[..100], f.bytes[size - 100..]);
    assert_eq!(f.fs.read_at(clip, size as u64, &mut buf), Ok(0));
    assert_eq!(f.fs.read_at(clip, size as u64 + 12_345, &mut buf), Ok(0));
    // The same bytes through `.by-hash`, the empty virtual file, and what is not a readable file.
    let mut buf = vec![0u8; size + 10];
    assert_eq!(f.fs.read_at(6 << 56 | f.clip.blob_id as u64, 0, &mut buf), Ok(size));
    assert_eq!(buf[..size], f.bytes[..]);
    assert_eq!(f.fs.read_at(3, 0, &mut buf), Ok(0));
    let couple = 1 << 56 | f.couple_id as u64;
    assert_eq!(f.fs.read_at(couple, 0, &mut buf), Err(FsError::IsDir));
    assert_eq!(f.fs.read_at(5 << 56 | 999_999, 0, &mut buf), Err(FsError::NotFound));
    assert_eq!(f.fs.read_at(INGEST_ROOT_INO, 0, &mut buf), Err(FsError::NotSupported));
}

#[test]
fn new_imports_arrive_in_the_change_feed() {
    let f = fixture();
    let camera = f.fs.parent(5 << 56 | f.clip.id as u64).unwrap();
    assert!(f.fs.poll_changes().iter().all(|c| !matches!(c, Change::NewEntry { .. })), "nothing new yet");
    let card = f.env.path("card2");
    sony_card(&card, 2, 7);
    f.env.ok(&["import", "--couple", &f.couple, card.to_str().unwrap()]);
    let changes = f.fs.poll_changes();
    let new: Vec<(u64, Vec<u8>)> = changes
        .iter()
        .filter_map(|c| match c {
            Change::NewEntry { parent, name } => Some((*parent, name.clone())),
            _ => None,
        })
        .collect();
    assert!(new.iter().any(|(p, n)| *p == camera && n.ends_with(b".MP4")), "{changes:?}");
    assert!(changes.contains(&Change::DirChanged(camera)), "{changes:?}");
    let (p, n) = new.iter().find(|(p, _)| *p == camera).unwrap();
    assert!(f.fs.lookup(&root(), *p, n).is_ok(), "the new entry is in the tree");
}

#[test]
fn a_blob_store_without_local_files_is_served_through_its_reader() {
    let f = fixture();
    // The same blobs in a store that has no local files (as a remote store would be).
    let mem = nightfox::blobs::memory::MemoryBlobs::new();
    let archive = Archive::open(&f.env.archive).unwrap();
    for (i, (name, path)) in f.env.object_files().into_iter().enumerate() {
        let (_, staged) = archive.staging.create(&format!("fs-core-{i}")).unwrap();
        std::fs::copy(&path, &staged).unwrap();
        nightfox::blobs::BlobStore::land(&mem, &staged, &name, nightfox::blobs::Durability::Now).unwrap();
    }
    let archive = archive.with_blobs(Arc::new(mem));
    let fs = ArchiveFs::new(&archive).unwrap();
    let who = root();
    let ino = walk(
        &fs,
        &who,
        &[
            f.couple.as_bytes(),
            b"source",
            f.clip.footage_type.as_str().as_bytes(),
            &camera_name(&f),
            &f.clip.display_name,
        ],
    )
    .unwrap();
    match fs.open(&who, ino, libc::O_RDONLY) {
        Ok(Opened::Stored(r)) => assert_eq!(r.len(), f.bytes.len() as u64),
        Ok(_) => panic!("a blob that is no local file opens as Opened::Stored"),
        Err(e) => panic!("open: {e:?}"),
    }
    let mut buf = vec![0u8; f.bytes.len() + 10];
    assert_eq!(fs.read_at(ino, 0, &mut buf).unwrap(), f.bytes.len());
    assert_eq!(&buf[..f.bytes.len()], &f.bytes[..]);
    assert_eq!(fs.read_at(ino, f.bytes.len() as u64, &mut buf).unwrap(), 0);
}

#[test]
fn by_hash_is_looked_up_by_name_and_listed_in_pages() {
    let f = fixture();
    let who = root();
    let by_hash = walk(&f.fs, &who, &[b".by-hash"]).unwrap();
    assert!(f.fs.lists_in_pages(by_hash) && !f.fs.lists_in_pages(ROOT_INO));
    let whole = f.fs.readdir(&who, by_hash).unwrap();
    assert!(whole.len() >= 2, "a clip and its sidecar at least: {}", whole.len());
    // Pages of one entry each give the same entries in the same order, with growing cookies.
    let mut paged = Vec::new();
    let mut after = 0;
    loop {
        let page = f.fs.readdir_page(by_hash, after, 1).unwrap();
        let Some((cookie, e)) = page.into_iter().next() else { break };
        assert!(cookie > after, "cookies grow");
        after = cookie;
        paged.push(e);
    }
    let names = |v: &[nightfox::fs::DirEntry]| v.iter().map(|e| (e.name.clone(), e.attr.ino)).collect::<Vec<_>>();
    let mut sorted = names(&paged);
    sorted.sort();
    assert_eq!(sorted, names(&whole), "the pages hold the whole listing");
    assert_eq!(f.fs.readdir_page(ROOT_INO, 0, 10).err(), Some(FsError::Invalid), "the root is listed whole");
    // A lookup by name reads the one blob, with the extension of its first file.
    let name = [f.clip.blob_hash.as_bytes(), b".MP4"].concat();
    let (a, _) = f.fs.lookup(&who, by_hash, &name).unwrap();
    assert_eq!((a.ino, a.size), (6 << 56 | f.clip.blob_id as u64, f.clip.size));
    assert_eq!(f.fs.getattr(a.ino).unwrap().0, a, "the same attributes by inode");
    let wrong_ext = [f.clip.blob_hash.as_bytes(), b".MOV"].concat();
    assert_eq!(f.fs.lookup(&who, by_hash, &wrong_ext).err(), Some(FsError::NotFound));
    assert_eq!(f.fs.lookup(&who, by_hash, &[b'0'; 64]).err(), Some(FsError::NotFound));
    assert_eq!(f.fs.lookup(&who, by_hash, b"short").err(), Some(FsError::NotFound));
}

#[test]
fn a_new_couple_is_one_new_entry_in_the_root_and_nothing_below_it() {
    let f = fixture();
    assert!(f.fs.readdir(&root(), ROOT_INO).is_ok());
    let _ = f.fs.poll_changes();
    let couple = f.env.couple("Late Couple", "2026-03-01");
    let card = f.env.path("card-late");
    sony_card(&card, 3, 11);
    f.env.ok(&["import", "--couple", &couple, card.to_str().unwrap()]);
    let changes = f.fs.poll_changes();
    let new: Vec<(u64, Vec<u8>)> = changes
        .iter()
        .filter_map(|c| match c {
            Change::NewEntry { parent, name } if *parent != 2 => Some((*parent, name.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(new, vec![(ROOT_INO, couple.as_bytes().to_vec())], "{changes:?}");
    assert!(changes.contains(&Change::DirChanged(ROOT_INO)), "{changes:?}");
    assert!(
        changes.iter().any(|c| matches!(c, Change::NewEntry { parent: 2, .. })),
        "new blobs are new .by-hash entries: {changes:?}"
    );
    // And the new couple's tree is there.
    let who = root();
    let ino = walk(&f.fs, &who, &[couple.as_bytes(), b"source"]).unwrap();
    assert_eq!(f.fs.readdir(&who, ino).unwrap().len(), 1);
    assert_eq!(f.fs.statfs().unwrap().files, f.env.catalog().file_count().unwrap() as u64);
}
