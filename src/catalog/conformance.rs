//! Conformance suites for catalog backends: one per trait, written against `&dyn CatalogBackend` and
//! `&mut dyn CatalogConn` only, so every backend (SQLite today, Postgres later) runs the same functions. The
//! `#[test]`s at the end run them on SQLite in a temporary archive; a new backend adds its own `#[test]`s that
//! call the same suites.

use std::path::Path;

use super::*;

/// A hash of the form the store uses (64 hex digits), distinct per `n`.
fn hash(n: u8) -> String {
    format!("{n:02x}").repeat(32)
}

fn new_item(path: &str, size: u64, sidecar_of: Option<usize>) -> NewItem {
    NewItem {
        path: format!("/card/{path}").into_bytes(),
        rel_path: path.as_bytes().to_vec(),
        size,
        mtime_ns: 1_700_000_000_000_000_000,
        state: ItemState::Pending,
        sidecar_of,
        error: None,
    }
}

fn new_file<'a>(couple: i64, session: i64, blob: &'a str, name: &'a str, camera_id: Option<i64>) -> NewFile<'a> {
    NewFile {
        couple_id: couple,
        footage_type: FootageType::Modern,
        camera_id,
        blob_hash: blob,
        blob_size: 1000,
        display_name: name.as_bytes(),
        name_key: name,
        original_path: name.as_bytes(),
        source: "/card",
        source_mtime_ns: 1_700_000_000_000_000_000,
        session_id: Some(session),
        sidecar_of: None,
        captured_at: None,
        bad_ranges: None,
        sums: None,
    }
}

/// A modern camera `a7s`; returns its id.
fn a7s(c: &dyn CatalogConn) -> i64 {
    let cam = NewCamera {
        slug: "a7s",
        name: "A7S",
        footage_type: FootageType::Modern,
        make: None,
        model: None,
        serial: None,
        auto: false,
    };
    c.add_camera(&cam).expect("add camera")
}

/// A couple and a local session over `/card`; returns (couple, session).
fn couple_and_session(c: &mut dyn CatalogConn, folder: &str) -> (i64, i64) {
    let couple = c.add_couple(folder, "2025-06-14", folder).expect("add couple");
    let session = c
        .create_session(couple, None, None, DuplicateAction::Skip, "/card", &[b"/card".to_vec()], None, false)
        .expect("create session");
    (couple, session)
}

/// Scans `paths` into the session and takes each item through to `stored` with the hash `hash(i + 1)`, as an
/// import does before its finalize.
fn stored_items(c: &mut dyn CatalogConn, session: i64, paths: &[&str]) -> Vec<Item> {
    let items: Vec<NewItem> = paths.iter().map(|p| new_item(p, 1000, None)).collect();
    c.insert_items(session, &items).expect("insert items");
    let mut out = c.items(session).expect("items");
    for (i, it) in out.iter_mut().enumerate() {
        let h = hash(i as u8 + 1);
        c.set_item_state(it.id, ItemState::Stored, Some(&h)).expect("item stored");
        it.state = ItemState::Stored;
        it.hash = Some(h);
    }
    out
}

/// Catalogues stored items, one file each named after its relative path, in one finalize; returns the file ids.
fn finalize_all(c: &mut dyn CatalogConn, couple: i64, session: i64, items: &[Item]) -> Vec<i64> {
    let mut tx = c.begin_finalize().expect("begin finalize");
    let mut ids = Vec::new();
    for it in items {
        let name = String::from_utf8(it.rel_path.clone()).expect("utf-8 name");
        let h = it.hash.clone().expect("stored items have a hash");
        let id = tx.insert_file(&new_file(couple, session, &h, &name, None)).expect("insert file");
        tx.item_done(it, id).expect("item done");
        ids.push(id);
    }
    tx.commit_for(session).expect("commit finalize");
    ids
}

// ---- ReadCatalog ------------------------------------------------------------------------------------------

/// Files come back in id order after a given id; a directory finds its file by display name; a blob finds
/// every file that points at it.
pub fn read_suite(b: &dyn CatalogBackend) {
    let mut c = b.connect().expect("connect");
    let (couple, session) = couple_and_session(&mut *c, "read-suite");
    let items = stored_items(&mut *c, session, &["A001.MOV", "A002.MOV", "A003.MOV"]);
    let ids = finalize_all(&mut *c, couple, session, &items);
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "file ids grow: {ids:?}");

    let after = |a: i64| c.files_after(a).expect("files after").into_iter().map(|f| f.id).collect::<Vec<_>>();
    assert_eq!(after(0), ids);
    assert_eq!(after(ids[0]), ids[1..].to_vec());
    assert_eq!(after(ids[2]), Vec::<i64>::new());

    let f = c.file_in_dir(couple, FootageType::Modern, None, b"A002.MOV").expect("file in dir").expect("found");
    assert_eq!((f.id, f.blob_hash.as_str(), f.size), (ids[1], hash(2).as_str(), 1000));
    assert_eq!(f.couple_id, couple);
    assert!(c.file_in_dir(couple, FootageType::Dadcam, None, b"A002.MOV").expect("file in dir").is_none());
    assert!(c.file_in_dir(couple, FootageType::Modern, Some(99), b"A002.MOV").expect("file in dir").is_none());
    assert!(c.file_in_dir(couple, FootageType::Modern, None, b"nope.mov").expect("file in dir").is_none());

    // A second file of the same content (another couple) points at the same blob.
    let (other, s2) = couple_and_session(&mut *c, "read-suite-2");
    let mut tx = c.begin_finalize().expect("begin finalize");
    let h = hash(2);
    let dup = tx.insert_file(&new_file(other, s2, &h, "copy.mov", None)).expect("insert file");
    tx.commit_for(s2).expect("commit");
    let mut of_blob: Vec<i64> = c.files_of_blob(&hash(2)).expect("files of blob").iter().map(|f| f.id).collect();
    of_blob.sort();
    assert_eq!(of_blob, vec![ids[1], dup]);
    assert!(c.files_of_blob(&hash(9)).expect("files of blob").is_empty());
    let mut of_blobs: Vec<i64> =
        c.files_of_blobs(&[hash(2), hash(9), hash(1)]).expect("files of blobs").iter().map(|f| f.id).collect();
    of_blobs.sort();
    assert_eq!(of_blobs, vec![ids[0], ids[1], dup], "files of many blobs at once, unknown ones ignored");
    let many: Vec<String> = (0..1200).map(|i| format!("{i:064x}")).chain([hash(2)]).collect();
    assert_eq!(c.files_of_blobs(&many).expect("more hashes than one statement takes").len(), 2);
    assert_eq!(c.file_count().expect("file count"), 4);
    assert_eq!(c.file(dup).expect("file").map(|f| f.couple_id), Some(other));
    assert_eq!(c.blob(&hash(2)).expect("blob").map(|b| b.size), Some(1000));
    let folders: Vec<String> = c.couple_folders().expect("folders").into_iter().map(|(_, f)| f).collect();
    assert_eq!(folders.len(), 2);
    assert_eq!(c.couple_by_id(couple).expect("couple").file_count, 3);
    // The totals a couple listing shows follow every file added, in both couples.
    let listed: Vec<(i64, i64)> = c.couples().expect("couples").iter().map(|x| (x.file_count, x.total_bytes)).collect();
    assert_eq!(listed, vec![(3, 3000), (1, 1000)]);
    let (empty, _) = couple_and_session(&mut *c, "read-suite-3");
    let e = c.couple_by_id(empty).expect("couple");
    assert_eq!((e.file_count, e.total_bytes), (0, 0), "a couple without files");
}

/// What the mount reads lazily: the couple folders with their newest import, a couple's camera folders, one
/// folder's files by name, and `.by-hash` pages in blob id order (one entry per blob, its first file).
pub fn tree_suite(b: &dyn CatalogBackend) {
    let mut c = b.connect().expect("connect");
    assert_eq!(c.newest_ids().expect("newest"), (0, 0));
    assert!(c.tree_couples().expect("tree couples").is_empty());
    let cam = a7s(&*c);
    let (b_couple, b_session) = couple_and_session(&mut *c, "2025-b");
    let (a_couple, a_session) = couple_and_session(&mut *c, "2025-a");
    let (_empty, _) = couple_and_session(&mut *c, "2025-c-empty");
    let mut tx = c.begin_finalize().expect("begin");
    let (h1, h2, h3) = (hash(1), hash(2), hash(3));
    let f1 = tx.insert_file(&new_file(a_couple, a_session, &h1, "Z.MOV", Some(cam))).expect("file");
    let f2 = tx.insert_file(&new_file(a_couple, a_session, &h2, "A.MOV", Some(cam))).expect("file");
    let f3 = tx.insert_file(&new_file(a_couple, a_session, &h3, "unknown.mov", None)).expect("file");
    let mut dad = new_file(a_couple, a_session, &h1, "tape.avi", None);
    dad.footage_type = FootageType::Dadcam;
    let f4 = tx.insert_file(&dad).expect("file");
    tx.commit_for(a_session).expect("commit");
    let mut tx = c.begin_finalize().expect("begin");
    let f5 = tx.insert_file(&new_file(b_couple, b_session, &h2, "copy.mov", None)).expect("file");
    tx.commit_for(b_session).expect("commit");
    let newest_blob = c.hash_entries(0, 10).expect("by-hash").iter().map(|f| f.blob_id).max();
    assert_eq!(c.newest_ids().expect("newest"), (f5, newest_blob.expect("blobs")));

    let couples = c.tree_couples().expect("tree couples");
    let names: Vec<(&str, i64)> = couples.iter().map(|t| (t.folder_name.as_str(), t.files)).collect();
    assert_eq!(names, vec![("2025-a", 4), ("2025-b", 1)], "by folder name, couples without files left out");
    let newest_file = c.file(f4).expect("file").expect("there").imported_at;
    assert_eq!(couples[0].newest_import, newest_file);

    let cams = c.tree_cameras(a_couple).expect("tree cameras");
    let shape: Vec<(FootageType, Option<i64>, i64)> =
        cams.iter().map(|t| (t.footage_type, t.camera_id, t.files)).collect();
    assert_eq!(
        shape,
        vec![(FootageType::Dadcam, None, 1), (FootageType::Modern, None, 1), (FootageType::Modern, Some(cam), 2)]
    );
    assert!(cams.iter().all(|t| t.newest_import == newest_file));
    let listed = c.camera_listing().expect("camera listing");
    assert_eq!(listed.iter().find(|l| l.camera.id == cam).map(|l| l.file_count), Some(2), "the camera's files");
    assert!(c.tree_cameras(9999).expect("no couple").is_empty());

    let names = |v: Vec<TreeFile>| v.into_iter().map(|f| (f.id, f.display_name)).collect::<Vec<_>>();
    let dir = c.files_in_dir(a_couple, FootageType::Modern, Some(cam)).expect("folder");
    assert_eq!(names(dir), vec![(f2, b"A.MOV".to_vec()), (f1, b"Z.MOV".to_vec())], "by display name");
    let unknown = c.files_in_dir(a_couple, FootageType::Modern, None).expect("folder");
    assert_eq!(names(unknown), vec![(f3, b"unknown.mov".to_vec())]);
    assert!(c.files_in_dir(b_couple, FootageType::Super8, None).expect("folder").is_empty());

    // .by-hash: three blobs, each with its first file, in blob id order, paged.
    let all = c.hash_entries(0, 100).expect("by-hash");
    let firsts: Vec<(String, i64)> = all.iter().map(|f| (f.blob_hash.clone(), f.id)).collect();
    assert_eq!(firsts, vec![(h1.clone(), f1), (h2.clone(), f2), (h3.clone(), f3)]);
    assert!(all.windows(2).all(|w| w[0].blob_id < w[1].blob_id));
    let page = c.hash_entries(all[0].blob_id, 1).expect("page");
    assert_eq!(page.iter().map(|f| f.id).collect::<Vec<_>>(), vec![f2], "the page after the first blob");
    assert!(c.hash_entries(all[2].blob_id, 10).expect("past the end").is_empty());
}

/// A commit on another connection changes the token; nothing changes it when nothing commits.
pub fn change_token_suite(b: &dyn CatalogBackend) {
    let reader = b.connect().expect("connect");
    let writer = b.connect().expect("connect");
    let t0 = reader.change_token().expect("token");
    assert_eq!(reader.change_token().expect("token"), t0, "no commit, no change");
    let _ = reader.couples().expect("a read is not a commit");
    assert_eq!(reader.change_token().expect("token"), t0, "a read is not a change");
    writer.add_couple("Token", "2025-06-14", "token").expect("add couple");
    // A backend that hears of commits by notification (Postgres) may take a moment; bounded.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    let mut t1 = reader.change_token().expect("token");
    while t1 == t0 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
        t1 = reader.change_token().expect("token");
    }
    assert_ne!(t1, t0, "another connection's commit changes the token");
    assert_eq!(reader.change_token().expect("token"), t1, "stable again once nothing commits");
    let _ = reader.changed_at().expect("changed_at answers (None is allowed)");
}

// ---- ImportLog --------------------------------------------------------------------------------------------

/// Sessions move through their statuses; a scan is recorded in order with its sidecars linked; an item ended as
/// failed is counted.
pub fn import_log_suite(b: &dyn CatalogBackend) {
    let mut c = b.connect().expect("connect");
    let (couple, session) = couple_and_session(&mut *c, "import-log");
    let s = c.session(session).expect("session");
    assert_eq!((s.status, s.couple_id, s.couple.as_str()), (SessionStatus::Pending, couple, "import-log"));
    assert_eq!(s.source_paths, vec![b"/card".to_vec()]);
    assert!(s.is_open());
    assert!(!s.type_explicit);
    assert_eq!(c.unfinished_session_of(couple).expect("unfinished"), Some(session));

    c.set_session_status(session, SessionStatus::Copying, None).expect("status");
    let s = c.session(session).expect("session");
    assert_eq!((s.status, s.last_step.as_deref(), s.finished_at), (SessionStatus::Copying, Some("copying"), None));

    let scan = [new_item("A001.MOV", 1000, None), new_item("A001.XML", 10, Some(0)), new_item("B.MOV", 500, None)];
    c.insert_items(session, &scan).expect("insert items");
    let items = c.items(session).expect("items");
    let rels: Vec<&[u8]> = items.iter().map(|i| i.rel_path.as_slice()).collect();
    assert_eq!(rels, vec![&b"A001.MOV"[..], b"A001.XML", b"B.MOV"]);
    assert_eq!(items[1].sidecar_of, Some(items[0].id));
    assert!(items.iter().all(|i| i.state == ItemState::Pending));
    c.recount_session(session).expect("recount");
    let s = c.session(session).expect("session");
    assert_eq!((s.files_total, s.bytes_total, s.files_processed), (3, 1510, 0));

    c.end_item(&items[2], ItemState::Failed, Some("unreadable")).expect("end item");
    let b_item = c.items(session).expect("items").into_iter().find(|i| i.id == items[2].id).expect("item");
    assert_eq!((b_item.state, b_item.error.as_deref()), (ItemState::Failed, Some("unreadable")));
    assert_eq!(c.item_errors(session, 5).expect("item errors"), vec![(b"B.MOV".to_vec(), "unreadable".to_string())]);
    assert!(c.item_errors(session, 0).expect("item errors").is_empty());
    let s = c.session(session).expect("session");
    assert_eq!((s.files_processed, s.files_error, s.bytes_error), (1, 1, 500));

    c.set_session_status(session, SessionStatus::Completed, None).expect("status");
    let s = c.session(session).expect("session");
    assert!(s.finished_at.is_some() && !s.can_resume && !s.is_open());
    assert_eq!(c.unfinished_session_of(couple).expect("unfinished"), None);

    // Cancelled for good while a process runs it: the statuses that process still writes keep the session
    // cancelled for good (its run looks for exactly that, and ends it).
    let (_, running) = couple_and_session(&mut *c, "import-log-cancel");
    c.set_session_status(running, SessionStatus::Copying, None).expect("status");
    assert!(c.request_cancel(running).expect("cancel"));
    assert!(!c.request_cancel(running).expect("cancel"), "marked once");
    assert!(!c.request_cancel(session).expect("cancel"), "a completed session is not marked");
    assert_eq!(c.session(session).expect("session").status, SessionStatus::Completed);
    c.set_session_status(running, SessionStatus::Validating, None).expect("status");
    let s = c.session(running).expect("session");
    assert_eq!((s.status, s.can_resume), (SessionStatus::Validating, false));
    assert!(!s.is_open());
    c.set_session_status(running, SessionStatus::Cancelled, Some("cancelled by the user")).expect("status");
    assert!(!c.session(running).expect("session").can_resume);
}

/// Dropping a finalize without committing leaves no file rows, blobs or item states behind; committing makes
/// them all visible, to other connections too.
pub fn finalize_suite(b: &dyn CatalogBackend) {
    let mut c = b.connect().expect("connect");
    let other = b.connect().expect("connect");
    let (couple, session) = couple_and_session(&mut *c, "finalize");
    let items = stored_items(&mut *c, session, &["A001.MOV", "A002.MOV"]);

    {
        let mut tx = c.begin_finalize().expect("begin finalize");
        for it in &items {
            let name = String::from_utf8(it.rel_path.clone()).expect("name");
            let h = it.hash.clone().expect("hash");
            let id = tx.insert_file(&new_file(couple, session, &h, &name, None)).expect("insert file");
            tx.item_done(it, id).expect("item done");
            assert_eq!(tx.item_state(it.id).expect("state"), Some(ItemState::Done), "reads see own writes");
            assert_eq!(tx.item_file(it.id).expect("file"), Some(id));
        }
        assert_eq!(other.file_count().expect("count"), 0, "nothing visible before the commit");
        // Dropped here: rolled back.
    }
    assert_eq!(c.file_count().expect("count"), 0);
    assert!(c.blob(&hash(1)).expect("blob").is_none() && c.blob(&hash(2)).expect("blob").is_none());
    assert!(c.items(session).expect("items").iter().all(|i| i.state == ItemState::Stored && i.file_id.is_none()));
    assert_eq!(c.session(session).expect("session").files_processed, 0);

    let ids = finalize_all(&mut *c, couple, session, &items);
    for conn in [&c, &other] {
        assert_eq!(conn.file_count().expect("count"), 2);
        assert!(conn.blob(&hash(1)).expect("blob").is_some() && conn.blob(&hash(2)).expect("blob").is_some());
        let done: Vec<(ItemState, Option<i64>)> =
            conn.items(session).expect("items").iter().map(|i| (i.state, i.file_id)).collect();
        assert_eq!(done, vec![(ItemState::Done, Some(ids[0])), (ItemState::Done, Some(ids[1]))]);
        let s = conn.session(session).expect("session");
        assert_eq!((s.files_processed, s.bytes_processed), (2, 2000));
    }
    assert!(c.couple_has_blob(couple, &hash(1)).expect("has blob"));
    assert!(!c.couple_has_blob(couple, &hash(7)).expect("has blob"));
    assert_eq!(c.couple_sizes(couple).expect("sizes").into_iter().collect::<Vec<_>>(), vec![1000]);
    assert!(c.already_imported(couple, "/card", b"A001.MOV", 1000, 1_700_000_000_000_000_000).expect("quick"));
    assert!(!c.already_imported(couple, "/card", b"A001.MOV", 999, 1_700_000_000_000_000_000).expect("quick"));

    // What a transaction reads ahead (`prefetch_duplicates`, the names of a folder) answers as the database
    // would, its own writes counted: a hash inserted after the prefetch is a duplicate, a name taken is taken.
    let mut tx = c.begin_finalize().expect("begin finalize");
    let (h1, h7, h8) = (hash(1), hash(7), hash(8));
    tx.prefetch_duplicates(couple, &[&h1, &h7, &h8]).expect("prefetch");
    assert!(tx.couple_has_blob(couple, &h1).expect("has blob"), "catalogued before");
    assert!(!tx.couple_has_blob(couple, &h7).expect("has blob"));
    assert!(!tx.couple_has_blob(couple, &hash(9)).expect("has blob"), "a hash not prefetched is asked");
    assert!(tx.name_taken(couple, FootageType::Modern, None, "A001.MOV").expect("name"));
    assert!(!tx.name_taken(couple, FootageType::Modern, None, "A007.MOV").expect("name"));
    tx.insert_file(&new_file(couple, session, &h7, "A007.MOV", None)).expect("insert file");
    assert!(tx.couple_has_blob(couple, &h7).expect("has blob"), "its own insert counts");
    assert!(tx.name_taken(couple, FootageType::Modern, None, "A007.MOV").expect("name"), "its own name counts");
    assert!(!tx.couple_has_blob(couple, &h8).expect("has blob"));
    assert!(!tx.couple_has_blob(couple + 1000, &h1).expect("has blob"), "another couple is asked");
    drop(tx);
    assert!(!c.couple_has_blob(couple, &h7).expect("has blob"), "rolled back");
}

/// A blob's checksums: recorded with the blob, null for one catalogued without them, filled in (once, never
/// overwritten) by a later read of the same content, in a finalize or by a duplicate check.
pub fn sums_suite(b: &dyn CatalogBackend) {
    let mut c = b.connect().expect("connect");
    let (couple, session) = couple_and_session(&mut *c, "sums");
    let sums = |n: u64| Sums::from_digests(n, n.into());
    let sums_of = |c: &dyn CatalogConn, n: u8| {
        let b = c.blob(&hash(n)).expect("blob").expect("catalogued");
        (b.xxh64, b.xxh128)
    };
    let with = |s: &Sums| (Some(s.xxh64.clone()), Some(s.xxh128.clone()));
    let (one, two) = (sums(1), sums(2));
    let (h1, h2) = (hash(1), hash(2));
    {
        let mut tx = c.begin_finalize().expect("begin finalize");
        let f = NewFile { sums: Some(&one), ..new_file(couple, session, &h1, "A001.MOV", None) };
        tx.insert_file(&f).expect("insert file");
        tx.insert_file(&new_file(couple, session, &hash(2), "A002.MOV", None)).expect("insert file");
        tx.commit_for(session).expect("commit");
    }
    assert_eq!(sums_of(&*c, 1), with(&one));
    assert_eq!(sums_of(&*c, 2), (None, None), "no sums: null");
    // Another file of the blobs: the missing sums are filled in, the recorded ones stay.
    {
        let mut tx = c.begin_finalize().expect("begin finalize");
        let f = NewFile { sums: Some(&two), ..new_file(couple, session, &h2, "A002b.MOV", None) };
        tx.insert_file(&f).expect("insert file");
        let f = NewFile { sums: Some(&two), ..new_file(couple, session, &h1, "A001b.MOV", None) };
        tx.insert_file(&f).expect("insert file");
        tx.commit_for(session).expect("commit");
    }
    assert_eq!(sums_of(&*c, 1), with(&one), "recorded sums are never overwritten");
    assert_eq!(sums_of(&*c, 2), with(&two));
    // A duplicate check (outside a finalize) and a duplicate inside one fill in too.
    {
        let mut tx = c.begin_finalize().expect("begin finalize");
        tx.insert_file(&new_file(couple, session, &hash(3), "A003.MOV", None)).expect("insert file");
        tx.commit_for(session).expect("commit");
    }
    assert!(c.fill_blob_sums(&hash(3), &sums(3)).expect("fill"));
    assert!(!c.fill_blob_sums(&hash(3), &sums(4)).expect("fill"), "once only");
    assert!(!c.fill_blob_sums(&hash(9), &sums(9)).expect("fill"), "not catalogued: nothing");
    assert_eq!(sums_of(&*c, 3), with(&sums(3)));
    let tx = c.begin_finalize().expect("begin finalize");
    assert!(!tx.fill_sums(&hash(3), &sums(5)).expect("fill"));
    drop(tx);
    assert!(c.blobs(Some(couple)).expect("blobs").iter().all(|b| b.xxh64.is_some() && b.xxh128.is_some()));
}

/// A name key is taken once a file has it (inside the transaction that inserted it, and after), in its own
/// directory only.
pub fn name_clash_suite(b: &dyn CatalogBackend) {
    let mut c = b.connect().expect("connect");
    let (couple, session) = couple_and_session(&mut *c, "names");
    let cam = a7s(&*c);
    let h = hash(3);
    let mut tx = c.begin_finalize().expect("begin finalize");
    assert!(!tx.name_taken(couple, FootageType::Modern, None, "clip.mov").expect("name taken"));
    tx.insert_file(&new_file(couple, session, &h, "clip.mov", None)).expect("insert file");
    assert!(tx.name_taken(couple, FootageType::Modern, None, "clip.mov").expect("name taken"));
    assert!(!tx.name_taken(couple, FootageType::Modern, Some(cam), "clip.mov").expect("other camera"));
    assert!(!tx.name_taken(couple, FootageType::Dadcam, None, "clip.mov").expect("other type"));
    assert!(!tx.name_taken(couple, FootageType::Modern, None, "clip (2).mov").expect("other name"));
    assert!(tx.insert_file(&new_file(couple, session, &h, "clip.mov", None)).is_err(), "a taken key is refused");
    drop(tx);
    let mut tx = c.begin_finalize().expect("begin finalize");
    assert!(!tx.name_taken(couple, FootageType::Modern, None, "clip.mov").expect("rolled back"));
    let id = tx.insert_file(&new_file(couple, session, &h, "clip.mov", Some(cam))).expect("insert file");
    assert_eq!(tx.file_placement(id).expect("placement"), Some((Some(cam), FootageType::Modern)));
    assert_eq!(tx.display_name(id).expect("name"), Some(b"clip.mov".to_vec()));
    tx.commit_for(session).expect("commit");
    let tx = c.begin_finalize().expect("begin finalize");
    assert!(tx.name_taken(couple, FootageType::Modern, Some(cam), "clip.mov").expect("committed"));
    assert!(!tx.name_taken(couple, FootageType::Modern, None, "clip.mov").expect("not in the camera-less dir"));
}

/// A couple's lease excludes a second one until it is dropped; couples are independent; the note reads back.
pub fn lease_suite(b: &dyn CatalogBackend) {
    let one = b.connect().expect("connect");
    let two = b.connect().expect("connect");
    let (a, bb) = {
        let r = b.connect().expect("connect");
        (r.add_couple("A", "2025-06-14", "a").expect("couple"), r.add_couple("B", "2025-06-14", "b").expect("couple"))
    };
    let mut held = one.try_lock_couple(a).expect("lock").expect("free at first");
    held.write_note("42").expect("note");
    assert!(two.try_lock_couple(a).expect("lock").is_none(), "a second lease of the same couple is refused");
    assert!(one.try_lock_couple(a).expect("lock").is_none(), "also on the same connection");
    assert_eq!(two.couple_lock_holder(a).as_deref(), Some("42"));
    assert_ne!(two.couple_lock_held(a), Some(false));
    let other = two.try_lock_couple(bb).expect("lock").expect("another couple is independent");
    drop(held);
    assert_ne!(two.couple_lock_held(a), Some(true));
    let again = two.try_lock_couple(a).expect("lock");
    assert!(again.is_some(), "free again once dropped");
    drop(other);
    drop(again);
}

// ---- Registry, Health, IngestEntries -----------------------------------------------------------------------

/// Couples, cameras and network sources are added, found and removed.
pub fn registry_suite(b: &dyn CatalogBackend) {
    let c = b.connect().expect("connect");
    let couple = c.add_couple("Ann & Bo", "2025-06-14", "2025-06-14 Ann & Bo").expect("add couple");
    assert!(c.folder_name_taken("2025-06-14 Ann & Bo").expect("taken"));
    assert!(!c.folder_name_taken("other").expect("taken"));
    assert_eq!(c.couple_by_folder("2025-06-14 Ann & Bo").expect("couple").id, couple);
    assert!(matches!(c.couple_by_folder("nope"), Err(Error::NoSuchCouple(_))));
    assert_eq!(c.couples_on("2025-06-14").expect("couples").len(), 1);
    let cam = NewCamera {
        slug: "gh5",
        name: "GH5",
        footage_type: FootageType::Dadcam,
        make: Some("Panasonic"),
        model: None,
        serial: None,
        auto: true,
    };
    let cam_id = c.add_camera(&cam).expect("camera");
    assert!(c.camera_slug_taken("gh5").expect("slug"));
    let got = c.camera_by_slug("gh5").expect("camera");
    assert_eq!((got.id, got.footage_type, got.make.as_deref(), got.auto), (cam_id, cam.footage_type, cam.make, true));
    assert!(matches!(c.camera_by_slug("nope"), Err(Error::NoSuchCamera(_))));
    let src = c
        .add_source(&NewNetworkSource {
            protocol: "smb",
            host: "nas",
            port: 445,
            mount_port: None,
            share: "cards",
            settings: SourceSettings {
                path: "/a",
                username: "u",
                password_enc: b"",
                credential_key: None,
                couple_id: couple,
                footage_type: None,
                camera_id: None,
                post_import: "keep",
                duplicates: DuplicateAction::Skip,
            },
        })
        .expect("add source");
    assert_eq!(c.source(src).expect("source").url(), "smb://nas:445/cards/a");
    c.set_source_enabled(src, false).expect("disable");
    assert!(!c.source(src).expect("source").enabled);
    let edited = SourceSettings {
        path: "/b/c",
        username: "STUDIO;anna",
        password_enc: b"sealed",
        credential_key: None,
        couple_id: couple,
        footage_type: Some(FootageType::Super8),
        camera_id: Some(cam_id),
        post_import: "delete",
        duplicates: DuplicateAction::Import,
    };
    c.update_source(src, &edited).expect("update source");
    let got = c.source(src).expect("source");
    assert_eq!(got.url(), "smb://nas:445/cards/b/c", "the server and share stay");
    assert_eq!((got.username.as_str(), got.password_enc.as_slice()), ("STUDIO;anna", &b"sealed"[..]));
    assert_eq!((got.footage_type, got.camera_id), (Some(FootageType::Super8), Some(cam_id)));
    assert_eq!((got.post_import.as_str(), got.duplicates, got.enabled), ("delete", DuplicateAction::Import, false));
    assert!(matches!(c.update_source(9999, &edited), Err(Error::NotFound(_))));
    // Credential tiers: a reference instead of a ciphertext, replaced all-or-none and only if unchanged.
    assert_eq!(got.credential_key, None);
    let to_keyring = CredentialChange {
        id: src,
        old_password_enc: b"sealed".to_vec(),
        old_credential_key: None,
        password_enc: Vec::new(),
        credential_key: Some("keyring:host:cat/source/1".into()),
    };
    let stale = CredentialChange { id: 9999, ..to_keyring.clone() };
    assert!(matches!(c.replace_source_credentials(&[to_keyring.clone(), stale]), Err(Error::Secret(_))));
    assert_eq!(c.source(src).expect("source").password_enc, b"sealed", "all or none");
    c.replace_source_credentials(std::slice::from_ref(&to_keyring)).expect("to keyring");
    let got = c.source(src).expect("source");
    assert_eq!(
        (got.password_enc.as_slice(), got.credential_key.as_deref()),
        (&b""[..], Some("keyring:host:cat/source/1"))
    );
    assert!(got.has_password, "a reference is a password");
    assert!(matches!(c.replace_source_credentials(&[to_keyring]), Err(Error::Secret(_))), "no longer as read");
    let back = CredentialChange {
        id: src,
        old_password_enc: Vec::new(),
        old_credential_key: Some("keyring:host:cat/source/1".into()),
        password_enc: b"sealed2".to_vec(),
        credential_key: None,
    };
    c.replace_source_credentials(&[back]).expect("back to the catalog");
    assert_eq!(c.source(src).expect("source").credential_key, None);
    let id = c.catalog_id().expect("catalog id");
    assert!(id.len() >= 16 && id.chars().all(|ch| ch.is_ascii_alphanumeric()), "{id}");
    assert_eq!(c.catalog_id().expect("catalog id"), id, "stable");
    // catalog_info by name: set only when it is still what the writer read.
    assert_eq!(c.info("vault_key_wrapped").expect("info"), None);
    assert!(c.set_info("vault_key_wrapped", "aa01", None).expect("set"), "absent: written");
    assert!(!c.set_info("vault_key_wrapped", "bb02", None).expect("set"), "present: not replaced");
    assert!(!c.set_info("vault_key_wrapped", "bb02", Some("ffff")).expect("set"), "changed meanwhile");
    assert_eq!(c.info("vault_key_wrapped").expect("info").as_deref(), Some("aa01"));
    assert!(c.set_info("vault_key_wrapped", "bb02", Some("aa01")).expect("set"), "as read: replaced");
    assert_eq!(c.info("vault_key_wrapped").expect("info").as_deref(), Some("bb02"));
    assert_eq!(c.catalog_id().expect("catalog id"), id, "other names untouched");
    c.add_event(src, None, "warn", "share gone").expect("event");
    assert_eq!(c.events(src).expect("events").len(), 1);
    assert_eq!(c.recent_problems(10).expect("problems")[0].message, "share gone");
    c.remove_source(src).expect("remove");
    assert!(matches!(c.source(src), Err(Error::NotFound(_))));
    assert!(c.remove_source(src).is_err());

    // Corrections keep folder and slug, and each records who and when, oldest first.
    let by = Actor { uid: 1000, at: 1_750_000_000 };
    c.audit(&by, "couple.add", Some(couple), "added").expect("audit");
    c.rename_couple(couple, "Ann & Bob", "2025-06-15", &by).expect("rename couple");
    let renamed = c.couple_by_folder("2025-06-14 Ann & Bo").expect("the folder stays");
    assert_eq!((renamed.display_name.as_str(), renamed.event_date.as_str()), ("Ann & Bob", "2025-06-15"));
    c.rename_camera(cam_id, "A-cam", &by).expect("rename camera");
    assert_eq!(c.camera_by_slug("gh5").expect("the slug stays").name, "A-cam");
    assert!(matches!(c.rename_couple(9999, "X", "2025-01-01", &by), Err(Error::NotFound(_))));
    assert!(matches!(c.rename_camera(9999, "X", &by), Err(Error::NotFound(_))));
    let all = c.audit_log(None, 100).expect("audit log");
    let actions: Vec<&str> = all.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["couple.add", "couple.rename", "camera.rename"], "failed renames record nothing");
    assert_eq!((all[1].uid, all[1].at, all[1].couple.as_deref()), (1000, 1_750_000_000, Some("2025-06-14 Ann & Bo")));
    assert_eq!(c.audit_log(Some(couple), 100).expect("of the couple").len(), 2);
    assert_eq!(c.audit_log(None, 1).expect("newest").last().map(|e| e.action.as_str()), Some("camera.rename"));
}

/// Damage is news once, and healing logs an event; events come back in order.
pub fn health_suite(b: &dyn CatalogBackend) {
    let mut c = b.connect().expect("connect");
    let (couple, session) = couple_and_session(&mut *c, "health");
    let items = stored_items(&mut *c, session, &["A.MOV"]);
    finalize_all(&mut *c, couple, session, &items);
    let h = hash(1);
    let before = c.last_event_id().expect("last event");
    assert!(!c.any_unhealthy_blob().expect("any unhealthy"));
    assert!(c.set_blob_unhealthy(&h, "damaged", "bad read at 0").expect("unhealthy"));
    assert!(!c.set_blob_unhealthy(&h, "damaged", "again").expect("not news twice"));
    assert_eq!(c.unhealthy_blobs().expect("unhealthy"), vec![(h.clone(), "damaged".to_string())]);
    assert!(c.any_unhealthy_blob().expect("any unhealthy"));
    assert_eq!(c.blob_health(&h).expect("health").as_deref(), Some("damaged"));
    assert!(!c.couple_has_blob(couple, &h).expect("a damaged blob is not a duplicate"));
    c.heal_blob(&h, Some(session), "verified copy").expect("heal");
    assert_eq!(c.blob_health(&h).expect("health").as_deref(), Some("ok"));
    let kinds: Vec<String> = c.events_after(before, 10).expect("events").into_iter().map(|e| e.kind).collect();
    assert_eq!(kinds, vec!["blob_damaged", "blob_healed"]);
    c.mark_verified(std::slice::from_ref(&h), 1_000).expect("verified");
    assert!(c.blob(&h).expect("blob").expect("blob").verified_at.is_some());
    // Many at once, in one transaction: news once per blob, with one event each.
    let before = c.last_event_id().expect("last event");
    let found = vec![(h.clone(), "missing".to_string(), "gone".to_string())];
    assert_eq!(c.set_blobs_unhealthy(&found).expect("unhealthy in bulk"), 1);
    assert_eq!(c.set_blobs_unhealthy(&found).expect("again"), 0, "not news twice");
    assert_eq!(c.blob_health(&h).expect("health").as_deref(), Some("missing"));
    let kinds: Vec<String> = c.events_after(before, 10).expect("events").into_iter().map(|e| e.kind).collect();
    assert_eq!(kinds, vec!["blob_missing"]);
    assert_eq!(c.unhealthy_blobs_first(10).expect("first"), (1, vec![(h.clone(), "missing".to_string())]));
    assert_eq!(c.unhealthy_blobs_first(0).expect("none listed"), (1, vec![]), "counted even when none is listed");
}

/// Blobs due for verification come a page at a time, oldest-verified first (then by row id), each once;
/// `before` leaves out the recently verified; a couple's filter holds; scrub runs round-trip and the last finished
/// one (of a trigger, complete or not) is found.
pub fn scrub_suite(b: &dyn CatalogBackend) {
    let mut c = b.connect().expect("connect");
    let (couple, session) = couple_and_session(&mut *c, "scrub");
    let items = stored_items(&mut *c, session, &["A.MOV", "B.MOV", "C.MOV", "D.MOV", "E.MOV"]);
    finalize_all(&mut *c, couple, session, &items);
    let (other, other_session) = couple_and_session(&mut *c, "scrub-other");
    let more: Vec<NewItem> = vec![new_item("F.MOV", 1000, None)];
    c.insert_items(other_session, &more).expect("insert items");
    let mut f = c.items(other_session).expect("items");
    c.set_item_state(f[0].id, ItemState::Stored, Some(&hash(9))).expect("stored");
    f[0].state = ItemState::Stored;
    f[0].hash = Some(hash(9));
    finalize_all(&mut *c, other, other_session, &f);
    // Verified at 300 (C), 100 (A), 200 (E); B, D and F at their import (now).
    c.mark_verified(&[hash(3)], 300).expect("verified");
    c.mark_verified(&[hash(1)], 100).expect("verified");
    c.mark_verified(&[hash(5)], 200).expect("verified");
    let mut seen = Vec::new();
    let mut cursor = VerifyCursor::default();
    loop {
        let (page, next) = c.blobs_to_verify(None, i64::MAX, cursor, 2).expect("page");
        if page.is_empty() {
            assert_eq!(next, cursor, "an empty page keeps the cursor");
            break;
        }
        assert!(page.len() <= 2);
        seen.extend(page.into_iter().map(|b| b.hash));
        cursor = next;
    }
    // Imported blobs were verified at import (now): those come after the three verified long ago.
    assert_eq!(&seen[..3], &[hash(1), hash(5), hash(3)], "oldest verified first");
    let rest: std::collections::BTreeSet<String> = seen[3..].iter().cloned().collect();
    assert_eq!(rest, [hash(2), hash(4), hash(9)].into_iter().collect(), "each once: {seen:?}");
    assert_eq!(c.blobs_to_verify_total(None, i64::MAX).expect("total"), (6, 6000));
    // Verified at 250 or later is not due before 250.
    let (due, _) = c.blobs_to_verify(None, 250, VerifyCursor::default(), 100).expect("due");
    assert_eq!(due.into_iter().map(|b| b.hash).collect::<Vec<_>>(), vec![hash(1), hash(5)]);
    assert_eq!(c.blobs_to_verify_total(None, 250).expect("total"), (2, 2000));
    // A page that ends inside a run of equal times goes on by row id.
    let (one, next) = c.blobs_to_verify(None, i64::MAX, VerifyCursor::default(), 4).expect("page");
    let (two, _) = c.blobs_to_verify(None, i64::MAX, next, 4).expect("page");
    assert_eq!(one.len() + two.len(), 6);
    assert!(two.iter().all(|b| !one.iter().any(|o| o.hash == b.hash)));
    let (mine, _) = c.blobs_to_verify(Some(couple), i64::MAX, VerifyCursor::default(), 100).expect("couple");
    assert_eq!(mine.len(), 5);
    assert!(mine.iter().all(|b| b.hash != hash(9)));
    assert_eq!(c.blobs_to_verify_total(Some(other), i64::MAX).expect("total"), (1, 1000));
    // Which hashes are known.
    let asked = vec![hash(1), hash(77), hash(9)];
    assert_eq!(c.known_blobs(&asked).expect("known"), [hash(1), hash(9)].into_iter().collect());
    assert!(c.known_blobs(&[]).expect("none").is_empty());
    // Scrub runs.
    assert_eq!(c.last_scrub(None, false).expect("none yet"), None);
    let a = c.start_scrub("schedule", 1_000).expect("start");
    let run = ScrubRun {
        id: a,
        started_at: 1_000,
        finished_at: Some(1_010),
        trigger: "schedule".into(),
        blobs_checked: 3,
        bytes_checked: 3000,
        damaged: 1,
        missing: 1,
        orphans: 2,
        complete: true,
        error: None,
    };
    c.finish_scrub(&run).expect("finish");
    let bv = c.start_scrub("verify", 2_000).expect("start");
    assert_eq!(c.last_scrub(None, false).expect("last").as_ref(), Some(&run), "a running one is not finished");
    let stopped = ScrubRun {
        id: bv,
        started_at: 2_000,
        finished_at: Some(2_005),
        trigger: "verify".into(),
        error: Some("stopped".into()),
        ..Default::default()
    };
    c.finish_scrub(&stopped).expect("finish");
    assert_eq!(c.last_scrub(None, false).expect("last"), Some(stopped.clone()));
    assert_eq!(c.last_scrub(None, true).expect("last complete"), Some(run.clone()));
    assert_eq!(c.last_scrub(Some("schedule"), false).expect("last scheduled"), Some(run.clone()));
    assert_eq!(c.scrub_runs(10).expect("runs"), vec![stopped, run]);
}

/// Ingest entries round-trip; an item added to a session is counted; open ingest sessions are found by prefix.
pub fn ingest_entries_suite(b: &dyn CatalogBackend) {
    let c = b.connect().expect("connect");
    let couple = c.add_couple("I", "2025-06-14", "i").expect("couple");
    let session =
        c.create_session(couple, None, None, DuplicateAction::Skip, "ingest:i", &[], None, false).expect("session");
    let mut e = IngestEntry {
        id: 0,
        couple_id: couple,
        parent_id: None,
        name: b"card1".to_vec(),
        is_dir: true,
        committed: false,
        size: 0,
        mtime_ns: 5,
        mode: 0o755,
        uid: 1000,
        gid: 1000,
        blob_hash: None,
        file_id: None,
    };
    e.id = c.add_ingest_entry(&e).expect("add entry");
    e.mtime_ns = 6;
    c.update_ingest_entry(&e).expect("update entry");
    let got = c.ingest_entries().expect("entries");
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].id, got[0].is_dir, got[0].mtime_ns, got[0].name.as_slice()), (e.id, true, 6, &b"card1"[..]));
    let item = c.add_item(session, &new_item("card1/A.MOV", 77, None), None).expect("add item");
    assert_eq!(c.item(item).expect("item").map(|i| i.size), Some(77));
    assert_eq!(c.session(session).expect("session").files_total, 1);
    assert_eq!(c.unfinished_sessions_with_source_prefix("ingest:").expect("open"), vec![session]);
    assert!(c.unfinished_sessions_with_source_prefix("smb:").expect("open").is_empty());
    c.remove_ingest_entry(e.id).expect("remove entry");
    assert!(c.ingest_entries().expect("entries").is_empty());
}

/// A catalog error the backend marked transient (busy): what a caller may retry.
pub fn assert_transient(e: &Error) {
    match e {
        Error::Catalog { transient: true, disk_full: false, .. } => {}
        other => panic!("expected a transient catalog error, got {other:?}"),
    }
}

// ---- Trash -----------------------------------------------------------------------------------------------

/// The totals of a couple (files, bytes) and the file count of a camera, as the listings show them.
fn totals(c: &dyn CatalogConn, couple: i64, cam: i64) -> (i64, i64, i64) {
    let k = c.couple_by_id(couple).expect("couple");
    let cams = c.camera_listing().expect("cameras");
    (k.file_count, k.total_bytes, cams.iter().find(|l| l.camera.id == cam).map_or(0, |l| l.file_count))
}

/// Removal takes a clip with its sidecars (or a couple, or an import) out of the tree, the totals and the
/// duplicate checks at once; a restore puts back exactly the same rows; a purge deletes them; garbage is exactly
/// the blobs nothing references, and a blob an unfinished session names is never removed.
pub fn trash_suite(b: &dyn CatalogBackend) {
    let mut c = b.connect().expect("connect");
    let by = Actor { uid: 1000, at: 1_800_000_000 };
    let cam = a7s(&*c);
    let (a, a_session) = couple_and_session(&mut *c, "2026-a");
    let (other, o_session) = couple_and_session(&mut *c, "2026-b");
    let (h1, h2, h3, h4) = (hash(1), hash(2), hash(3), hash(4));
    let mut tx = c.begin_finalize().expect("begin");
    let clip = tx.insert_file(&new_file(a, a_session, &h1, "C0001.MP4", Some(cam))).expect("clip");
    let mut side = new_file(a, a_session, &h2, "C0001M01.XML", Some(cam));
    side.sidecar_of = Some(clip);
    let sidecar = tx.insert_file(&side).expect("sidecar");
    let shared = tx.insert_file(&new_file(a, a_session, &h3, "C0002.MP4", Some(cam))).expect("file");
    tx.commit_for(a_session).expect("commit");
    let mut tx = c.begin_finalize().expect("begin");
    let o1 = tx.insert_file(&new_file(other, o_session, &h3, "copy.mp4", None)).expect("file");
    let o2 = tx.insert_file(&new_file(other, o_session, &h4, "own.mp4", Some(cam))).expect("file");
    tx.commit_for(o_session).expect("commit");
    for s in [a_session, o_session] {
        c.set_session_status(s, SessionStatus::Completed, None).expect("complete");
    }
    assert_eq!(totals(&*c, a, cam), (3, 3000, 4));
    let before = c.file(clip).expect("file").expect("live");

    // A sidecar on its own is refused; nothing changes.
    assert!(matches!(c.trash_file(sidecar, "x", 0, &by), Err(Error::Invalid(_))), "a sidecar goes with its clip");
    assert!(c.trash().expect("trash").is_empty());

    let e = c.trash_file(clip, "2026-a/source/modern/a7s/C0001.MP4", by.at + 100, &by).expect("remove the clip");
    assert_eq!(
        (e.kind, e.files, e.bytes, e.couple.as_str(), e.purge_after),
        (TrashKind::File, 2, 2000, "2026-a", by.at + 100)
    );
    assert_eq!(totals(&*c, a, cam), (1, 1000, 2), "out of the couple's and the camera's totals");
    assert!(c.file(clip).expect("file").is_none() && c.file(sidecar).expect("file").is_none(), "no inode");
    let dir = c.files_in_dir(a, FootageType::Modern, Some(cam)).expect("folder");
    assert_eq!(dir.iter().map(|f| f.id).collect::<Vec<_>>(), vec![shared], "out of the folder");
    assert!(c.file_in_dir(a, FootageType::Modern, Some(cam), b"C0001.MP4").expect("lookup").is_none());
    assert!(c.files_of_blob(&h1).expect("by hash").is_empty());
    assert!(!c.hash_entries(0, 100).expect("by-hash").iter().any(|f| f.blob_hash == h1), "out of .by-hash");
    assert!(!c.couple_has_blob(a, &h1).expect("duplicate check"), "no longer a duplicate");
    assert!(!c.couple_sizes(a).expect("sizes").is_empty(), "the live file stays a candidate");
    assert_eq!(c.files(Some(a)).expect("files").len(), 1);
    assert!(c.garbage(0, 100).expect("garbage").is_empty(), "trashed files keep their blobs");
    let ev = c.events_after(0, 100).expect("events").into_iter().rev().find(|e| e.kind == "lifecycle").expect("event");
    let gone = Gone::from_json(ev.detail.as_deref().unwrap_or(""));
    assert_eq!(gone.len(), 2, "the clip and its sidecar leave the tree: {gone:?}");
    assert_eq!(c.trash().expect("trash"), vec![e.clone()]);
    assert_eq!(c.trash_entry(e.id).expect("entry"), e);
    assert!(c.trash_file(clip, "again", 0, &by).is_err(), "a file is removed once");

    // Restore: the same rows, ids, names and sidecars, totals back.
    let back = c.restore(e.id, &by).expect("restore");
    assert_eq!(back.id, e.id);
    assert_eq!(format!("{:?}", c.file(clip).expect("file")), format!("{:?}", Some(before)), "exactly as it was");
    assert_eq!(c.sidecars_of(clip).expect("sidecars").iter().map(|f| f.id).collect::<Vec<_>>(), vec![sidecar]);
    assert_eq!(totals(&*c, a, cam), (3, 3000, 4));
    assert!(c.trash().expect("trash").is_empty());
    assert!(matches!(c.restore(e.id, &by), Err(Error::NotFound(_))));

    // A couple: refused while an import of it is unfinished.
    let pending = c
        .create_session(a, None, None, DuplicateAction::Skip, "/card2", &[b"/card2".to_vec()], None, false)
        .expect("session");
    assert!(matches!(c.trash_couple(a, 0, &by), Err(Error::Invalid(_))), "an import is open");
    c.set_session_status(pending, SessionStatus::Cancelled, None).expect("cancel");
    let ce = c.trash_couple(a, by.at, &by).expect("remove the couple");
    assert_eq!((ce.kind, ce.files, ce.bytes), (TrashKind::Couple, 3, 3000));
    assert!(ce.id > e.id, "entry ids are not reused after a restore");
    assert!(c.couples().expect("couples").iter().all(|k| k.id != a), "not listed");
    assert!(matches!(c.couple_by_folder("2026-a"), Err(Error::NoSuchCouple(_))));
    assert!(c.couple_folders().expect("folders").iter().all(|(id, _)| *id != a));
    assert_eq!(c.tree_couples().expect("tree").iter().map(|t| t.id).collect::<Vec<_>>(), vec![other]);
    assert!(c.tree_cameras(a).expect("cameras").is_empty());
    assert_eq!(totals(&*c, a, cam), (0, 0, 1));
    assert_eq!(totals(&*c, other, cam), (2, 2000, 1), "the other couple is untouched");
    assert_eq!(c.files_of_blob(&h3).expect("by hash").iter().map(|f| f.id).collect::<Vec<_>>(), vec![o1]);
    assert!(c.folder_name_taken("2026-a").expect("taken"), "the folder stays taken: a restore always fits");
    c.restore(ce.id, &by).expect("restore the couple");
    assert_eq!(totals(&*c, a, cam), (3, 3000, 4));
    assert_eq!(c.couple_by_folder("2026-a").expect("back").id, a);

    // Undo an import: what it added (live), then purge it.
    assert!(matches!(c.trash_session(pending, 0, &by), Err(Error::Invalid(_))), "added nothing");
    let se = c.trash_session(o_session, by.at, &by).expect("undo");
    assert_eq!((se.kind, se.session_id, se.files), (TrashKind::Session, Some(o_session), 2));
    assert!(c.file(o1).expect("file").is_none() && c.file(o2).expect("file").is_none());
    assert_eq!(totals(&*c, other, cam), (0, 0, 3));
    let p = c.purge(se.id, &by).expect("purge");
    assert_eq!((p.entries, p.files, p.couples), (1, 2, 0));
    assert_eq!(totals(&*c, other, cam), (0, 0, 3), "a purge does not subtract twice");
    assert!(c.sidecars_of(clip).expect("sidecars").len() == 1);
    let garbage: Vec<String> = c.garbage(0, 100).expect("garbage").into_iter().map(|g| g.hash).collect();
    assert_eq!(garbage, vec![h4.clone()], "only the blob nothing else uses (h3 stays with the clip of 2026-a)");

    // Purge the couple (with a file entry inside it): everything of it goes.
    let fe = c.trash_file(shared, "2026-a/source/modern/a7s/C0002.MP4", by.at, &by).expect("remove");
    let ce = c.trash_couple(a, by.at, &by).expect("remove the couple");
    assert_eq!(ce.files, 2, "what the file entry took is its own");
    let p = c.purge(ce.id, &by).expect("purge the couple");
    assert_eq!((p.entries, p.files, p.couples), (2, 3, 1));
    assert!(c.trash_entry(fe.id).is_err(), "the couple's other entries went with it");
    assert!(c.couple_by_id(a).is_err());
    assert!(c.sessions().expect("sessions").iter().all(|s| s.couple_id != a), "its sessions went too");
    let mut garbage: Vec<String> = c.garbage(0, 100).expect("garbage").into_iter().map(|g| g.hash).collect();
    garbage.sort();
    assert_eq!(garbage, vec![h1.clone(), h2.clone(), h3.clone(), h4.clone()]);
    let page = c.garbage(0, 2).expect("page");
    assert_eq!(page.len(), 2);
    assert_eq!(c.garbage(page[1].id, 10).expect("next page").len(), 2);
    let audit: Vec<String> = c.audit_log(None, 100).expect("audit").into_iter().map(|e| e.action).collect();
    for action in ["file.remove", "couple.remove", "session.undo", "trash.restore", "trash.purge"] {
        assert!(audit.iter().any(|a| a == action), "{action} is logged: {audit:?}");
    }

    // Forgetting and removing: an unfinished session's item keeps its hash needed, and removal runs under the lock.
    let (k, s) = couple_and_session(&mut *c, "2026-c");
    let items = stored_items(&mut *c, s, &["x.mov", "y.mov"]);
    assert_eq!(items[1].hash.as_deref(), Some(h2.as_str()));
    let forgotten = c.forget_blobs(&[h1.clone(), h2.clone(), h3.clone(), h4.clone()]).expect("forget");
    assert_eq!(forgotten.len(), 2, "h1 and h2 are named by the open session: {forgotten:?}");
    assert!(c.blob(&h3).expect("blob").is_none() && c.blob(&h1).expect("blob").is_some());
    let nine = hash(9);
    let needed = c.needed_hashes(&[h1.clone(), h3.clone(), nine.clone()]).expect("needed");
    assert_eq!(needed, [h1.clone()].into_iter().collect());
    let mut seen = Vec::new();
    let removed = c
        .remove_unneeded(&[h1.clone(), h3.clone(), h4.clone()], &mut |h| {
            seen.push(h.to_string());
            Ok(())
        })
        .expect("remove");
    assert_eq!(removed, vec![h3.clone(), h4.clone()]);
    assert_eq!(seen, removed);
    let _ = k;
    // The write lock is released after: another connection writes at once.
    let other_conn = b.connect().expect("connect");
    other_conn.audit(&by, "test", None, "after").expect("write after remove_unneeded");
}

// ---- Lifecycle -------------------------------------------------------------------------------------------

/// The `lifecycle` events recorded after event `after`, each with what it took from where it was shown.
fn lifecycle_events(c: &dyn CatalogConn, after: i64) -> Vec<Vec<Gone>> {
    let events = c.events_after(after, 100).expect("events");
    events
        .into_iter()
        .filter(|e| e.kind == "lifecycle")
        .map(|e| Gone::from_json(e.detail.as_deref().unwrap_or("")))
        .collect()
}

fn at(couple: i64, ft: FootageType, camera: Option<i64>, name: &str) -> Placement {
    Placement { couple_id: couple, footage_type: ft, camera_id: camera, name: name.as_bytes().to_vec() }
}

/// Renames keep the old folder and slug resolving (and held: nobody else may take them); a rename back makes
/// the name current again. A merge moves every file of a camera (a clash gets a ` (n)` suffix, its sidecar the
/// same one), re-points its sessions and retires it. A move takes a clip with its sidecars and keeps the old
/// places resolving. Totals follow every change; each records its audit and `lifecycle` events. (Files here get
/// real name keys, lowercase, as an import gives them: moves compare keys.)
pub fn lifecycle_suite(b: &dyn CatalogBackend) {
    use FootageType::{Dadcam, Modern, Super8};
    let mut c = b.connect().expect("connect");
    let by = Actor { uid: 1000, at: 1_800_000_000 };
    assert!(!c.has_aliases().expect("aliases"), "no old names at first");
    let a_cam = a7s(&*c);
    let b_new = NewCamera {
        slug: "b-cam",
        name: "B",
        footage_type: Modern,
        make: None,
        model: None,
        serial: None,
        auto: false,
    };
    let b_cam = c.add_camera(&b_new).expect("camera");
    let (couple, session) = couple_and_session(&mut *c, "2026-life");
    let a_session = c
        .create_session(couple, None, Some(a_cam), DuplicateAction::Skip, "/a", &[b"/a".to_vec()], None, false)
        .expect("session");
    let other = c.add_couple("Other", "2026-01-01", "2026-other").expect("couple");
    let (h1, h2, h3, h4) = (hash(1), hash(2), hash(3), hash(4));
    let mut tx = c.begin_finalize().expect("begin");
    let clip = tx
        .insert_file(&NewFile { name_key: "c0001.mp4", ..new_file(couple, session, &h1, "C0001.MP4", Some(a_cam)) })
        .expect("clip");
    let mut side = NewFile { name_key: "c0001m01.xml", ..new_file(couple, session, &h2, "C0001M01.XML", Some(a_cam)) };
    side.sidecar_of = Some(clip);
    let sidecar = tx.insert_file(&side).expect("sidecar");
    let second = tx
        .insert_file(&NewFile { name_key: "c0002.mp4", ..new_file(couple, session, &h3, "C0002.MP4", Some(a_cam)) })
        .expect("file");
    // The same name on camera b (other bytes): a clash when a is merged into b.
    let clash = tx
        .insert_file(&NewFile { name_key: "c0001.mp4", ..new_file(couple, session, &h4, "C0001.MP4", Some(b_cam)) })
        .expect("file");
    tx.commit_for(session).expect("commit");
    assert_eq!(totals(&*c, couple, a_cam), (4, 4000, 3));
    assert_eq!(totals(&*c, couple, b_cam), (4, 4000, 1));

    // A couple's folder: the old name resolves to it, and is held.
    let start = c.last_event_id().expect("last event");
    c.rename_couple_folder(couple, "Life & Co", "2026-06-15", "2026-life-renamed", &by).expect("rename couple");
    let k = c.couple_by_id(couple).expect("couple");
    assert_eq!(
        (k.display_name.as_str(), k.event_date.as_str(), k.folder_name.as_str()),
        ("Life & Co", "2026-06-15", "2026-life-renamed")
    );
    assert_eq!((k.file_count, k.total_bytes), (4, 4000), "its files stay with it");
    assert_eq!(c.couple_by_folder("2026-life-renamed").expect("by its new folder").id, couple);
    assert_eq!(c.couple_alias("2026-life").expect("alias"), Some(couple));
    assert_eq!(c.couple_alias("2026-life-renamed").expect("alias"), None, "the current name is not an old one");
    assert_eq!(c.couple_alias("nope").expect("alias"), None);
    assert_eq!(c.couple_aliases_of(couple).expect("aliases"), vec!["2026-life".to_string()]);
    assert!(c.couple_aliases_of(other).expect("aliases").is_empty());
    assert!(c.has_aliases().expect("aliases"));
    let gone = lifecycle_events(&*c, start);
    assert_eq!(gone, vec![vec![Gone::Couple { couple_id: couple, folder: "2026-life".into() }]]);
    for taken in ["2026-life", "2026-life-renamed"] {
        let r = c.rename_couple_folder(other, "Other", "2026-01-01", taken, &by);
        assert!(matches!(r, Err(Error::Invalid(_))), "{taken} is another couple's (old) name: {r:?}");
    }
    assert_eq!(c.couple_by_id(other).expect("couple").folder_name, "2026-other", "a refused rename changes nothing");
    let r = c.rename_couple_folder(9999, "X", "2026-01-01", "x", &by);
    assert!(matches!(r, Err(Error::NotFound(_))), "{r:?}");
    // Back to the first name: current again, and the name it leaves is an old one.
    c.rename_couple_folder(couple, "Life & Co", "2026-06-15", "2026-life", &by).expect("rename back");
    assert_eq!(c.couple_by_folder("2026-life").expect("couple").id, couple);
    assert_eq!(c.couple_alias("2026-life").expect("alias"), None);
    assert_eq!(c.couple_alias("2026-life-renamed").expect("alias"), Some(couple));
    assert_eq!(c.couple_aliases_of(couple).expect("aliases"), vec!["2026-life-renamed".to_string()]);

    // A camera's slug.
    let start = c.last_event_id().expect("last event");
    c.rename_camera_slug(a_cam, "A-cam", "a-cam", &by).expect("rename camera");
    let cam = c.camera_by_slug("a-cam").expect("by its new slug");
    assert_eq!((cam.id, cam.name.as_str()), (a_cam, "A-cam"));
    assert!(matches!(c.camera_by_slug("a7s"), Err(Error::NoSuchCamera(_))));
    assert_eq!(c.camera_alias("a7s").expect("alias"), Some(a_cam));
    assert_eq!(c.camera_alias("a-cam").expect("alias"), None, "a listed slug is not an old one");
    assert_eq!(lifecycle_events(&*c, start), vec![vec![Gone::Camera { camera_id: a_cam, slug: "a7s".into() }]]);
    for taken in ["a7s", "a-cam"] {
        let r = c.rename_camera_slug(b_cam, "B", taken, &by);
        assert!(matches!(r, Err(Error::Invalid(_))), "{taken} is another camera's (old) slug: {r:?}");
    }
    assert!(matches!(c.rename_camera_slug(9999, "X", "x", &by), Err(Error::NotFound(_))));
    assert_eq!(totals(&*c, couple, a_cam), (4, 4000, 3), "a rename moves no file");

    // Merge a into b: every file moves, the clash (and its sidecar) suffixed, the rest keeps its name.
    assert!(matches!(c.merge_cameras(b_cam, b_cam, &by), Err(Error::Invalid(_))), "not into itself");
    assert!(matches!(c.merge_cameras(a_cam, 9999, &by), Err(Error::NotFound(_))));
    let start = c.last_event_id().expect("last event");
    let moved = c.merge_cameras(a_cam, b_cam, &by).expect("merge");
    let mut to: Vec<(i64, String)> =
        moved.iter().map(|m| (m.file_id, String::from_utf8_lossy(&m.to.name).into_owned())).collect();
    to.sort();
    let mut want = vec![
        (clip, "C0001 (2).MP4".to_string()),
        (sidecar, "C0001 (2)M01.XML".to_string()),
        (second, "C0002.MP4".to_string()),
    ];
    want.sort();
    assert_eq!(to, want);
    assert!(moved.iter().all(|m| m.from.camera_id == Some(a_cam) && m.to.camera_id == Some(b_cam)));
    assert!(moved.iter().all(|m| m.from.footage_type == Modern && m.to.footage_type == Modern));
    let in_b = c.files_in_dir(couple, Modern, Some(b_cam)).expect("folder");
    assert_eq!(in_b.len(), 4);
    assert!(c.files_in_dir(couple, Modern, Some(a_cam)).expect("folder").is_empty());
    let f = c.file_in_dir(couple, Modern, Some(b_cam), b"C0001 (2).MP4").expect("lookup").expect("the clip");
    assert_eq!((f.id, f.blob_hash.as_str()), (clip, h1.as_str()));
    assert_eq!(c.file_in_dir(couple, Modern, Some(b_cam), b"C0001.MP4").expect("lookup").map(|f| f.id), Some(clash));
    assert_eq!(c.sidecars_of(clip).expect("sidecars").iter().map(|f| f.id).collect::<Vec<_>>(), vec![sidecar]);
    let old = c.file_at_alias(&at(couple, Modern, Some(a_cam), "C0001.MP4")).expect("old place");
    assert_eq!(old.map(|f| f.id), Some(clip), "the old place names the moved file");
    assert!(c.file_at_alias(&at(couple, Modern, Some(a_cam), "NOPE.MP4")).expect("old place").is_none());
    let merged = c.cameras().expect("cameras").into_iter().find(|k| k.id == a_cam).expect("kept");
    assert_eq!(merged.merged_into, Some(b_cam));
    assert!(c.camera_listing().expect("listing").iter().all(|l| l.camera.id != a_cam), "not listed");
    assert_eq!(c.camera_alias("a-cam").expect("alias"), Some(a_cam), "a merged camera's slug");
    assert_eq!(c.camera_alias("a7s").expect("alias"), Some(a_cam));
    assert_eq!(c.session(a_session).expect("session").camera_id, Some(b_cam), "its sessions re-pointed");
    assert_eq!(totals(&*c, couple, b_cam), (4, 4000, 4), "camera totals follow the merge");
    assert_eq!(totals(&*c, couple, a_cam).2, 0);
    let gone = lifecycle_events(&*c, start);
    assert_eq!(gone.len(), 1);
    assert_eq!(gone[0][0], Gone::Camera { camera_id: a_cam, slug: "a-cam".into() });
    assert_eq!(gone[0].len(), 4, "the camera and the three old places: {gone:?}");
    assert!(matches!(c.merge_cameras(a_cam, b_cam, &by), Err(Error::Invalid(_))), "merged once");
    assert!(matches!(c.rename_camera_slug(a_cam, "A", "a-again", &by), Err(Error::Invalid(_))));
    assert!(matches!(c.rename_camera_slug(b_cam, "B", "a-cam", &by), Err(Error::Invalid(_))), "its slug is held");

    // Move the clip (with its sidecar) to another footage type: the names are free there.
    assert!(matches!(c.move_file(sidecar, None, Dadcam, &by), Err(Error::Invalid(_))), "a sidecar goes with its clip");
    assert!(matches!(c.move_file(9999, None, Dadcam, &by), Err(Error::NotFound(_))));
    assert!(matches!(c.move_file(clip, Some(a_cam), Modern, &by), Err(Error::Invalid(_))), "not to a merged camera");
    assert!(c.move_file(clip, Some(b_cam), Modern, &by).expect("no move").is_empty(), "already there");
    let start = c.last_event_id().expect("last event");
    let moved = c.move_file(clip, Some(b_cam), Dadcam, &by).expect("move");
    assert_eq!(moved.iter().map(|m| m.file_id).collect::<Vec<_>>(), vec![clip, sidecar], "the clip, then its sidecar");
    assert_eq!(moved[0].to, at(couple, Dadcam, Some(b_cam), "C0001 (2).MP4"));
    assert_eq!(moved[0].from, at(couple, Modern, Some(b_cam), "C0001 (2).MP4"));
    let f = c.file_in_dir(couple, Dadcam, Some(b_cam), b"C0001 (2).MP4").expect("lookup").expect("moved");
    assert_eq!(f.id, clip);
    assert_eq!(c.file(sidecar).expect("file").map(|f| f.footage_type), Some(Dadcam));
    let old = c.file_at_alias(&at(couple, Modern, Some(b_cam), "C0001 (2).MP4")).expect("old place");
    assert_eq!(old.map(|f| f.id), Some(clip));
    let old = c.file_at_alias(&at(couple, Modern, Some(a_cam), "C0001M01.XML")).expect("old place");
    assert_eq!(old.map(|f| f.id), Some(sidecar), "the first old place too");
    let places: Vec<Placement> = c.aliases_of(clip).expect("aliases").into_iter().map(|a| a.at).collect();
    assert_eq!(
        places,
        vec![at(couple, Modern, Some(a_cam), "C0001.MP4"), at(couple, Modern, Some(b_cam), "C0001 (2).MP4")],
        "oldest first"
    );
    assert!(c.aliases_of(clip).expect("aliases").iter().all(|a| a.file_id == clip && a.created_at == by.at));
    assert!(c.aliases_of(clash).expect("aliases").is_empty());
    assert!(c.aliases_under(couple, None, None).expect("under"));
    assert!(c.aliases_under(couple, Some(Modern), None).expect("under"));
    assert!(c.aliases_under(couple, Some(Modern), Some(Some(a_cam))).expect("under"));
    assert!(c.aliases_under(couple, Some(Modern), Some(Some(b_cam))).expect("under"));
    assert!(!c.aliases_under(couple, Some(Modern), Some(None)).expect("under"), "nothing was in unknown");
    assert!(!c.aliases_under(couple, Some(Dadcam), None).expect("under"), "nothing was in dadcam");
    assert!(!c.aliases_under(couple, Some(Super8), None).expect("under"));
    assert!(!c.aliases_under(other, None, None).expect("under"));
    assert_eq!(totals(&*c, couple, b_cam), (4, 4000, 4), "a move keeps the totals");
    let gone = lifecycle_events(&*c, start);
    assert_eq!(gone.len(), 1, "one event for the clip and its sidecar");
    assert_eq!(
        gone[0],
        vec![
            Gone::File { file_id: clip, at: at(couple, Modern, Some(b_cam), "C0001 (2).MP4") },
            Gone::File { file_id: sidecar, at: at(couple, Modern, Some(b_cam), "C0001 (2)M01.XML") },
        ]
    );

    // Back where it was: that old place is its place again (no longer an alias), the one it leaves is.
    c.move_file(clip, Some(b_cam), Modern, &by).expect("move back");
    assert_eq!(
        c.file(clip).expect("file").map(|f| (f.footage_type, f.display_name)),
        Some((Modern, b"C0001 (2).MP4".to_vec()))
    );
    let places: Vec<Placement> = c.aliases_of(clip).expect("aliases").into_iter().map(|a| a.at).collect();
    assert_eq!(
        places,
        vec![at(couple, Modern, Some(a_cam), "C0001.MP4"), at(couple, Dadcam, Some(b_cam), "C0001 (2).MP4")]
    );
    // A move onto a taken name gets a suffix: the clash moves next to nothing, then the second next to it.
    let moved = c.move_file(second, None, Modern, &by).expect("move");
    assert_eq!(moved[0].to.name, b"C0002.MP4".to_vec());
    let moved = c.move_file(clash, None, Modern, &by).expect("move");
    assert_eq!(moved[0].to.name, b"C0001.MP4".to_vec());
    let mut tx = c.begin_finalize().expect("begin");
    let h5 = hash(5);
    let late = tx
        .insert_file(&NewFile {
            footage_type: Dadcam,
            name_key: "c0001.mp4",
            ..new_file(couple, session, &h5, "C0001.MP4", Some(b_cam))
        })
        .expect("file");
    tx.commit_for(session).expect("commit");
    let moved = c.move_file(late, None, Modern, &by).expect("move");
    assert_eq!(moved[0].to.name, b"C0001 (2).MP4".to_vec(), "the name is taken in unknown: suffixed");
    assert_eq!(totals(&*c, couple, b_cam), (5, 5000, 2));

    let audit: Vec<String> = c.audit_log(None, 100).expect("audit").into_iter().map(|e| e.action).collect();
    for action in ["couple.rename", "camera.rename", "camera.merge", "file.move"] {
        assert!(audit.iter().any(|a| a == action), "{action} is logged: {audit:?}");
    }
    let failed = c.audit_log(Some(other), 100).expect("audit");
    assert!(failed.is_empty(), "refused renames record nothing: {failed:?}");
}

// ---- Jobs ------------------------------------------------------------------------------------------------

/// The jobs queue: one live row per (kind, key), exclusive claims across connections, heartbeats only by the
/// holder, the reaper taking back a stale claim (the old holder then finds it gone), recurring jobs queued again
/// with their next `run_after`, attempts counted, and no job claimed twice by racing connections.
pub fn jobs_suite(b: &dyn CatalogBackend) {
    use super::jobs::{JobOutcome, JobState};
    let one = b.connect().expect("connect");
    let two = b.connect().expect("connect");
    let t = 1_700_000_000;
    // Ensuring is idempotent for a live job, whichever connection asks, and keeps its run_after.
    let id = one.ensure_job("source", "7", t).expect("ensure");
    assert_eq!(two.ensure_job("source", "7", t + 50).expect("ensure"), id);
    let q = two.live_job("source", "7").expect("live job").expect("queued");
    assert_eq!((q.id, q.state, q.run_after, q.attempts, q.claimed_by.clone()), (id, JobState::Queued, t, 0, None));
    // Not claimed before it is due; then one connection claims and the other gets nothing.
    assert!(one.claim_job("w1", "source", Some("7"), t - 1).expect("claim").is_none(), "not due yet");
    let j = one.claim_job("w1", "source", Some("7"), t).expect("claim").expect("due");
    assert_eq!(
        (j.id, j.state, j.claimed_by.as_deref(), j.heartbeat_at, j.attempts),
        (id, JobState::Running, Some("w1"), Some(t), 1)
    );
    assert!(two.claim_job("w2", "source", Some("7"), t + 10).expect("claim").is_none(), "held by w1");
    assert!(two.claim_job("w2", "source", None, t + 10).expect("claim").is_none(), "held by w1, any key");
    assert_eq!(two.ensure_job("source", "7", t).expect("ensure"), id, "a running job is the live one");
    // Heartbeats: the holder's only.
    assert!(one.heartbeat_job(id, "w1", t + 5).expect("heartbeat"));
    assert!(!two.heartbeat_job(id, "w2", t + 5).expect("heartbeat"), "not w2's claim");
    // The reaper keeps a fresh claim and takes back a stale one; then the other connection claims it.
    assert_eq!(two.reap_jobs(t + 5).expect("reap"), 0, "heartbeat at t+5 is not older than t+5");
    assert_eq!(two.reap_jobs(t + 6).expect("reap"), 1);
    let r = two.live_job("source", "7").expect("live job").expect("requeued");
    assert_eq!(
        (r.id, r.state, r.claimed_by.clone(), r.heartbeat_at, r.attempts),
        (id, JobState::Queued, None, None, 1)
    );
    assert!(r.error.as_deref().is_some_and(|e| e.contains("w1")), "{r:?}");
    let j = two.claim_job("w2", "source", Some("7"), t + 20).expect("claim").expect("requeued and due");
    assert_eq!((j.id, j.claimed_by.as_deref(), j.attempts), (id, Some("w2"), 2), "the dead run counts");
    // The old holder finds its claim gone and cannot finish it.
    assert!(!one.heartbeat_job(id, "w1", t + 21).expect("heartbeat"));
    assert!(!one.finish_job(id, "w1", t + 21, JobOutcome::Done, Some(t + 100)).expect("finish"));
    assert_eq!(two.live_job("source", "7").expect("live").map(|j| j.claimed_by), Some(Some("w2".into())));
    // A failed recurring run is queued again for its next time, its streak kept.
    assert!(two.finish_job(id, "w2", t + 30, JobOutcome::Failed("share gone"), Some(t + 60)).expect("finish"));
    let q = one.live_job("source", "7").expect("live").expect("queued again");
    assert_eq!(
        (q.id, q.state, q.run_after, q.attempts, q.error.as_deref(), q.finished_at, q.claimed_by.clone()),
        (id, JobState::Queued, t + 60, 2, Some("share gone"), Some(t + 30), None)
    );
    assert!(one.claim_job("w1", "source", Some("7"), t + 59).expect("claim").is_none(), "its next run is not due");
    let j = one.claim_job("w1", "source", None, t + 60).expect("claim").expect("due again");
    assert_eq!((j.id, j.attempts), (id, 3));
    // A released claim does not count and is queued at once, its error kept.
    assert!(one.finish_job(id, "w1", t + 61, JobOutcome::Released, None).expect("release"));
    let q = two.live_job("source", "7").expect("live").expect("queued");
    assert_eq!(
        (q.state, q.run_after, q.attempts, q.error.as_deref()),
        (JobState::Queued, t + 61, 2, Some("share gone"))
    );
    // A run done resets the streak and clears the error.
    let j = two.claim_job("w2", "source", Some("7"), t + 61).expect("claim").expect("released, due");
    assert_eq!(j.attempts, 3);
    assert!(two.finish_job(id, "w2", t + 62, JobOutcome::Done, Some(t + 120)).expect("finish"));
    let q = one.live_job("source", "7").expect("live").expect("queued");
    assert_eq!((q.run_after, q.attempts, q.error.clone()), (t + 120, 0, None));
    assert_eq!(one.live_jobs().expect("jobs").len(), 1, "a recurring job stays one row");
    // Jobs of other keys and kinds are independent; a claim of any key takes the earliest due.
    let eight = one.ensure_job("source", "8", t).expect("ensure");
    let scrub = one.ensure_job("scrub", "schedule", t + 500).expect("ensure");
    assert_ne!(eight, scrub);
    let j = two.claim_job("w2", "source", None, t + 200).expect("claim").expect("source 8 is the earliest");
    assert_eq!(j.id, eight);
    assert!(two.claim_job("w2", "scrub", None, t + 200).expect("claim").is_none(), "the scrub is not due");
    // Finished for good: no live job, and ensuring again makes a new row.
    assert!(two.finish_job(eight, "w2", t + 201, JobOutcome::Done, None).expect("finish"));
    assert!(one.live_job("source", "8").expect("live").is_none());
    let again = one.ensure_job("source", "8", t + 300).expect("ensure");
    assert_ne!(again, eight);
    let j = one.claim_job("w1", "source", Some("8"), t + 300).expect("claim").expect("due");
    assert!(one.finish_job(j.id, "w1", t + 301, JobOutcome::Failed("gone"), None).expect("finish"));
    assert!(two.live_job("source", "8").expect("live").is_none(), "failed for good");
    let live: Vec<(String, String)> = two.live_jobs().expect("jobs").into_iter().map(|j| (j.kind, j.key)).collect();
    assert_eq!(live, [("scrub".to_string(), "schedule".to_string()), ("source".into(), "7".into())]);
    // Racing connections: every job claimed exactly once.
    let ids: Vec<i64> = (0..12).map(|i| one.ensure_job("race", &i.to_string(), t).expect("ensure")).collect();
    let claimed: Vec<i64> = std::thread::scope(|s| {
        let hands: Vec<_> = (0..4)
            .map(|w| {
                s.spawn(move || {
                    let c = b.connect().expect("connect");
                    let mut got = Vec::new();
                    while let Some(j) = c.claim_job(&format!("r{w}"), "race", None, t).expect("claim") {
                        got.push(j.id);
                    }
                    got
                })
            })
            .collect();
        hands.into_iter().flat_map(|h| h.join().expect("claimer")).collect()
    });
    let mut sorted = claimed.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), claimed.len(), "no job claimed twice: {claimed:?}");
    assert_eq!(sorted, ids);
}

// ---- SQLite -----------------------------------------------------------------------------------------------

fn sqlite_backend(dir: &Path) -> Arc<dyn CatalogBackend> {
    std::fs::create_dir(dir.join("locks")).expect("locks dir");
    create_backend("sqlite", dir).expect("create the catalog")
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

#[test]
fn sqlite_read() {
    let d = tempdir();
    read_suite(&*sqlite_backend(d.path()));
}

#[test]
fn sqlite_tree() {
    let d = tempdir();
    tree_suite(&*sqlite_backend(d.path()));
}

#[test]
fn sqlite_change_token() {
    let d = tempdir();
    change_token_suite(&*sqlite_backend(d.path()));
}

#[test]
fn sqlite_import_log() {
    let d = tempdir();
    import_log_suite(&*sqlite_backend(d.path()));
}

#[test]
fn sqlite_finalize() {
    let d = tempdir();
    finalize_suite(&*sqlite_backend(d.path()));
}

#[test]
fn sqlite_sums() {
    let d = tempdir();
    sums_suite(&*sqlite_backend(d.path()));
}

#[test]
fn sqlite_name_clash() {
    let d = tempdir();
    name_clash_suite(&*sqlite_backend(d.path()));
}

#[test]
fn sqlite_leases() {
    let d = tempdir();
    lease_suite(&*sqlite_backend(d.path()));
    // The lease is today's lock file, so an older nightfox and this one exclude each other.
    assert!(d.path().join("locks/couple-1.lock").is_file());
}

#[test]
fn sqlite_registry() {
    let d = tempdir();
    registry_suite(&*sqlite_backend(d.path()));
}

#[test]
fn sqlite_health() {
    let d = tempdir();
    health_suite(&*sqlite_backend(d.path()));
}

#[test]
fn sqlite_scrub() {
    let d = tempdir();
    scrub_suite(&*sqlite_backend(d.path()));
}

#[test]
fn sqlite_ingest_entries() {
    let d = tempdir();
    ingest_entries_suite(&*sqlite_backend(d.path()));
}

#[test]
fn sqlite_busy_is_transient() {
    let d = tempdir();
    let b = sqlite_backend(d.path());
    let mut holder = b.connect().expect("connect");
    let couple = holder.add_couple("Busy", "2025-06-14", "busy").expect("couple");
    let waiter = super::sqlite::SqliteConn::open(&d.path().join("catalog.db"), &d.path().join("locks")).expect("open");
    waiter.set_busy_timeout(std::time::Duration::ZERO).expect("no wait");
    let tx = holder.begin_finalize().expect("hold the write lock");
    let e = waiter.set_session_error(1, Some("x")).expect_err("the catalog is busy");
    assert_transient(&e);
    assert!(!e.is_disk_full());
    drop(tx);
    assert!(waiter.couple_by_id(couple).is_ok());
    waiter.set_session_error(1, Some("x")).expect("free again");
}

#[test]
fn sqlite_urls() {
    let d = tempdir();
    let root = d.path();
    assert_eq!(
        open_backend("sqlite", root).expect("sqlite").describe(),
        format!("sqlite://{}", root.join("catalog.db").display())
    );
    assert_eq!(open_backend("sqlite:///x/y.db", root).expect("path").describe(), "sqlite:///x/y.db");
    let msg = |url: &str| open_backend(url, root).err().map(|e| e.to_string()).unwrap_or_default();
    assert_eq!(msg("mysql://db/nightfox"), "catalog URL scheme 'mysql' is not built into this nightfox");
    assert!(matches!(open_backend("sqlite://relative.db", root), Err(Error::Invalid(_))));
    assert!(matches!(open_backend("catalog.db", root), Err(Error::Invalid(_))));
    // `create_backend` refuses an existing catalog; `open_sqlite` opens one by path.
    let _ = sqlite_backend(root);
    assert!(create_backend("sqlite", root).is_err());
    let version = open_backend("sqlite", root).and_then(|b| b.connect()).and_then(|c| c.schema_version());
    assert_eq!(open_sqlite(&root.join("catalog.db")).and_then(|c| c.schema_version()).ok(), version.ok());
}

#[test]
fn sqlite_an_archive_from_before_couple_totals_gets_them_filled_at_open() {
    let d = tempdir();
    let b = sqlite_backend(d.path());
    {
        let mut c = b.connect().expect("connect");
        let (couple, session) = couple_and_session(&mut *c, "old-archive");
        let items = stored_items(&mut *c, session, &["A.MOV", "B.MOV"]);
        finalize_all(&mut *c, couple, session, &items);
    }
    // As schema 5 left it: no totals table, no triggers.
    {
        let raw = rusqlite::Connection::open(d.path().join("catalog.db")).expect("raw open");
        raw.execute_batch(
            "DROP TRIGGER files_trashed; DROP TRIGGER files_restored; DROP TABLE file_aliases;
             DROP TABLE couple_aliases; DROP TABLE camera_aliases; DROP INDEX files_trash;
             DROP TABLE audit_log;
             DROP TABLE scrub_runs; DROP INDEX blobs_verified; ALTER TABLE blobs DROP COLUMN xxh64;
             ALTER TABLE blobs DROP COLUMN xxh128; ALTER TABLE import_sessions DROP COLUMN onset_manifest;
             ALTER TABLE import_sessions DROP COLUMN onset_problems;
             DROP TRIGGER couple_totals_new_couple; DROP TRIGGER couple_totals_file_added;
             DROP TRIGGER couple_totals_file_removed; DROP TRIGGER couple_totals_file_changed;
             DROP TRIGGER couple_totals_newest_added; DROP TRIGGER couple_totals_newest_moved;
             DROP TRIGGER files_blob_id_added; DROP TRIGGER files_blob_id_changed;
             DROP TRIGGER camera_totals_file_added; DROP TRIGGER camera_totals_file_removed;
             DROP TRIGGER camera_totals_file_moved; DROP TABLE camera_totals; DROP INDEX files_blob_id;
             CREATE INDEX files_blob ON files(blob_hash, couple_id); ALTER TABLE files DROP COLUMN blob_id;
             DROP INDEX files_sidecar; DROP TABLE couple_totals; DROP TABLE jobs;
             ALTER TABLE files DROP COLUMN trash_id; ALTER TABLE couples DROP COLUMN trash_id; DROP TABLE trash;
             ALTER TABLE cameras DROP COLUMN merged_into; ALTER TABLE events DROP COLUMN detail;
             ALTER TABLE network_sources DROP COLUMN credential_key; DROP TABLE catalog_info;
             PRAGMA user_version = 5;",
        )
        .expect("back to schema 5");
    }
    let c = b.connect().expect("reopen migrates");
    let old = c.couple_by_folder("old-archive").expect("couple");
    assert_eq!((old.file_count, old.total_bytes), (2, 2000), "filled from the files already there");
    let tree = c.tree_couples().expect("tree couples");
    assert_eq!(tree.len(), 1);
    assert!(tree[0].newest_import > 0, "the newest import filled at migration: {tree:?}");
    assert_eq!(c.files_in_dir(old.id, FootageType::Modern, None).expect("folder").len(), 2, "blob ids filled");
}

#[test]
fn sqlite_jobs() {
    let d = tempdir();
    jobs_suite(&*sqlite_backend(d.path()));
}

#[test]
fn sqlite_trash() {
    let d = tempdir();
    trash_suite(&*sqlite_backend(d.path()));
}

#[test]
fn sqlite_lifecycle() {
    let d = tempdir();
    lifecycle_suite(&*sqlite_backend(d.path()));
}

// ---- Postgres ---------------------------------------------------------------------------------------------

/// The same suites on a real Postgres 15 (one server per test process, one fresh database per test, migrated by
/// the migration role, used by the runtime role).
#[cfg(feature = "postgres")]
mod on_postgres {
    use super::*;
    use crate::catalog::postgres::testdb;

    pub(crate) fn pg_backend() -> Arc<dyn CatalogBackend> {
        let s = testdb::shared();
        let db = s.create_db();
        super::super::postgres::migrate(&s.migrate_dsn(&db), testdb::APP_ROLE).expect("migrate");
        open_backend(&s.app_dsn(&db), Path::new("/nonexistent")).expect("backend")
    }

    macro_rules! on_postgres {
        ($($name:ident => $suite:ident),* $(,)?) => {
            $(#[test]
            fn $name() {
                $suite(&*pg_backend());
            })*
        };
    }

    on_postgres!(
        postgres_read => read_suite,
        postgres_tree => tree_suite,
        postgres_change_token => change_token_suite,
        postgres_import_log => import_log_suite,
        postgres_finalize => finalize_suite,
        postgres_sums => sums_suite,
        postgres_name_clash => name_clash_suite,
        postgres_leases => lease_suite,
        postgres_registry => registry_suite,
        postgres_health => health_suite,
        postgres_scrub => scrub_suite,
        postgres_ingest_entries => ingest_entries_suite,
        postgres_trash => trash_suite,
        postgres_lifecycle => lifecycle_suite,
        postgres_jobs => jobs_suite,
    );
}
