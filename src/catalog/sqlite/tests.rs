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
