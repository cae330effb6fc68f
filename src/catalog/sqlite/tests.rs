//! Unit tests of the SQLite backend's own parts: how its errors map (the conformance suites in
//! `catalog/conformance.rs` run it through the traits).

use super::*;

fn failure(code: std::ffi::c_int) -> rusqlite::Error {
    rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None)
}

#[test]
fn a_catalog_that_cannot_grow_is_a_full_disk() {
    assert!(catalog_error("commit finalize", failure(rusqlite::ffi::SQLITE_FULL)).is_disk_full());
    assert!(!catalog_error("commit finalize", failure(rusqlite::ffi::SQLITE_BUSY)).is_disk_full());
    assert!(Error::io("/x", std::io::Error::from_raw_os_error(libc::ENOSPC)).is_disk_full());
}

#[test]
fn busy_and_locked_are_transient_and_nothing_else_is() {
    let flags = |code| match catalog_error("x", failure(code)) {
        Error::Catalog { transient, disk_full, .. } => (transient, disk_full),
        other => panic!("not a catalog error: {other}"),
    };
    assert_eq!(flags(rusqlite::ffi::SQLITE_BUSY), (true, false));
    assert_eq!(flags(rusqlite::ffi::SQLITE_LOCKED), (true, false));
    assert_eq!(flags(rusqlite::ffi::SQLITE_FULL), (false, true));
    assert_eq!(flags(rusqlite::ffi::SQLITE_CONSTRAINT), (false, false));
    assert_eq!(flags(rusqlite::ffi::SQLITE_CORRUPT), (false, false));
    // `Error::is_transient` is about sources, as before: a busy catalog is not a flaky share.
    assert!(!catalog_error("x", failure(rusqlite::ffi::SQLITE_BUSY)).is_transient());
}

#[test]
fn the_message_reads_as_before() {
    let e = catalog_error("commit finalize", failure(rusqlite::ffi::SQLITE_FULL));
    assert_eq!(e.to_string(), format!("catalog: commit finalize: {}", failure(rusqlite::ffi::SQLITE_FULL)));
}

/// The statements a test ran (the SQLite trace hook is a plain `fn`).
static TRACED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

fn traced(e: rusqlite::trace::TraceEvent<'_>) {
    if let rusqlite::trace::TraceEvent::Stmt(st, _) = e {
        if let (Ok(mut v), Some(sql)) = (TRACED.lock(), st.expanded_sql()) {
            v.push(sql);
        }
    }
}

#[test]
fn what_the_mount_status_and_info_read_never_scans_the_files_or_blobs() {
    use crate::catalog::{ImportLog, ReadCatalog, Registry};
    let d = tempfile::tempdir().expect("tempdir");
    let mut c = SqliteConn::open(&d.path().join("catalog.db"), &d.path().join("locks")).expect("open");
    let couple = c.add_couple("A", "2025-01-01", "2025-01-01-a").expect("couple");
    let hash = "ab".repeat(32);
    let mut tx = c.begin_finalize().expect("begin");
    let file = tx
        .insert_file(&NewFile {
            couple_id: couple,
            footage_type: FootageType::Modern,
            camera_id: None,
            blob_hash: &hash,
            blob_size: 10,
            display_name: b"A.MOV",
            name_key: "a.mov",
            original_path: b"/card/A.MOV",
            source: "/card",
            source_mtime_ns: 0,
            session_id: None,
            sidecar_of: None,
            captured_at: None,
            bad_ranges: None,
            sums: None,
        })
        .expect("file");
    tx.commit_for(0).expect("commit");
    c.conn.trace_v2(rusqlite::trace::TraceEventCodes::SQLITE_TRACE_STMT, Some(traced));
    let ft = FootageType::Modern;
    c.tree_couples().expect("tree couples");
    c.tree_cameras(couple).expect("tree cameras");
    c.files_in_dir(couple, ft, None).expect("folder");
    c.file_in_dir(couple, ft, None, b"A.MOV").expect("file in dir");
    c.hash_entries(0, 10).expect("by-hash");
    c.file(file).expect("file");
    c.files_of_blob(&hash).expect("files of blob");
    c.sidecars_of(file).expect("sidecars");
    c.damaged_files(None).expect("damaged");
    c.damaged_files(Some(couple)).expect("damaged of a couple");
    c.camera_listing().expect("cameras");
    c.couples().expect("couples");
    c.couple_by_folder("2025-01-01-a").expect("couple");
    c.newest_ids().expect("newest");
    c.file_count().expect("count");
    c.files_after(file).expect("after");
    c.blob_health(&hash).expect("health");
    c.files_of_blobs(std::slice::from_ref(&hash)).expect("files of blobs");
    c.blobs(Some(couple)).expect("blobs of a couple");
    c.couple_has_blob(couple, &hash).expect("duplicate check");
    c.couple_sizes(couple).expect("sizes");
    c.already_imported(couple, "/card", b"/card/A.MOV", 10, 0).expect("quick check");
    c.conn.trace_v2(rusqlite::trace::TraceEventCodes::empty(), None);
    let mut seen = std::mem::take(&mut *TRACED.lock().expect("traced"));
    seen.dedup();
    assert!(seen.len() >= 22, "every call traced: {seen:?}");
    for sql in seen {
        let plan: Vec<String> = c
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .and_then(|mut st| st.query_map([], |r| r.get::<_, String>(3))?.collect())
            .expect("plan");
        let scans = plan.iter().any(|p| {
            ["SCAN f", "SCAN files", "SCAN b", "SCAN blobs"].iter().any(|s| p == s || p.starts_with(&format!("{s} ")))
                && !p.contains(" USING ")
        });
        assert!(!scans, "a full scan in {sql}: {plan:?}");
    }
}
