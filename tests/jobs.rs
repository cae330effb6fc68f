//! The jobs queue end to end (issue 20): two real `nightfox serve` daemons, on two seats (archives) that share one
//! Postgres 15 catalog and one blob directory, poll the same NFS source (a real `cargo-nfs3-server`). Each pass
//! is a claimed job, so the source is never passed by both at once: every file is catalogued exactly once, by one
//! session. A daemon killed with SIGKILL in the middle of a copy leaves its job running with a heartbeat that goes
//! stale; the other daemon's reaper takes it back, resumes the session and finishes it, again with no file twice.
//! The catalog is read back through `psql` as the runtime role. Every wait is bounded; every process started here
//! is stopped by its pid. Nothing here is skipped: without Postgres or FUSE the test fails with the reason.

mod common;

use std::fs;
use std::path::Path;
use std::time::Duration;

use common::nfsd::NfsProcess;
use common::pgd::{self, PgServer};
use common::seats::*;
use common::*;

/// Short intervals for the daemons under test; the stale limit 3 s (a heartbeat every 750 ms).
const DAEMON_ENV: &[(&str, &str)] = &[
    ("NIGHTFOX_RETRY_DELAYS", "0.2"),
    ("NIGHTFOX_NET_TIMEOUT", "2"),
    ("NIGHTFOX_BACKOFF_CAP", "4s"),
    ("NIGHTFOX_JOB_STALE", "3s"),
    ("RUST_LOG", "nightfox=debug"),
];

/// Every file under `dir` is a file row exactly once and a `done` import item exactly once; no item was skipped
/// as a duplicate of what the other daemon imported, and nothing else is catalogued.
fn assert_each_once(pg: &PgServer, db: &str, dir: &Path, logs: &str) {
    let mut files = Vec::new();
    walk_files(dir, &mut files);
    assert!(!files.is_empty());
    for f in &files {
        let rel = f.strip_prefix(dir).unwrap().to_str().unwrap();
        let hex: String = rel.bytes().map(|b| format!("{b:02x}")).collect();
        let rows = count(pg, db, &format!("SELECT COUNT(*) FROM files WHERE original_path = '\\x{hex}'::bytea"));
        assert_eq!(rows, 1, "{rel} catalogued {rows} times\n{logs}");
        let hash = sql(pg, db, &format!("SELECT blob_hash FROM files WHERE original_path = '\\x{hex}'::bytea"));
        assert_eq!(hash, b3_file(f), "{rel}");
        let done = count(
            pg,
            db,
            &format!("SELECT COUNT(*) FROM import_items WHERE rel_path = '\\x{hex}'::bytea AND state = 'done'"),
        );
        assert_eq!(done, 1, "{rel} imported by {done} items\n{logs}");
    }
    assert_eq!(count(pg, db, "SELECT COUNT(*) FROM files"), files.len() as i64, "nothing else catalogued\n{logs}");
    let twice = count(
        pg,
        db,
        "SELECT COUNT(*) FROM (SELECT session_id, rel_path FROM import_items GROUP BY 1, 2 HAVING COUNT(*) > 1) t",
    );
    assert_eq!(twice, 0, "a file listed twice in one session\n{logs}");
}

/// The states of the import items that are not `done`, by session.
fn not_done(pg: &PgServer, db: &str) -> String {
    sql(
        pg,
        db,
        "SELECT string_agg(session_id || ':' || state, ',' ORDER BY id) FROM import_items WHERE state <> 'done'",
    )
}

#[test]
fn two_daemons_on_one_postgres_catalog_share_a_source_and_take_over_a_killed_one() {
    let pg = pgd::shared();
    let share = tempfile::Builder::new().prefix("nfs-jobs-").tempdir_in(test_root()).unwrap();
    let dir = share.path().join("card");
    for i in 0..12u64 {
        write(&dir.join(format!("C{i:03}.MOV")), &data(100 + i, 200_000 + i as usize * 40_000));
    }
    write(&dir.join("C100.MOV"), &data(200, 6 << 20));
    let nfs = NfsProcess::start(share.path(), true);
    let (a, b, db) = two_seats(pg, share.path());
    let couple = a.ok(&["couple", "add", "--name", "Shared Source", "--date", "2025-12-31"]).trim().to_string();
    let url = format!("nfs://127.0.0.1:{}/card?export=/", nfs.port);
    let id = a.ok(&["source", "add", &url, "--couple", &couple]).trim().to_string();
    // The other seat sees the same source (one catalog); testing it enables it.
    let listed: serde_json::Value = serde_json::from_str(&b.ok(&["source", "list", "--json"])).expect("json");
    assert_eq!(listed[0]["port"].as_u64(), Some(u64::from(nfs.port)), "seat b sees the source: {listed}");
    a.ok(&["source", "test", &id]);

    let mut da = Daemon::start(&a, "a", DAEMON_ENV);
    let mut dbd = Daemon::start(&b, "b", DAEMON_ENV);
    let logs = |da: &Daemon, dbd: &Daemon| format!("--- serve a:\n{}\n--- serve b:\n{}", da.log(), dbd.log());
    let claim_line = format!("claimed source {id}");
    wait_for(
        "every file catalogued",
        Duration::from_secs(120),
        || logs(&da, &dbd),
        || count(pg, &db, "SELECT COUNT(*) FROM files") >= 13,
    );
    // Both daemons take the source's passes in turn, never at once: more passes, still each file once.
    wait_for(
        "both daemons to have claimed a pass",
        Duration::from_secs(60),
        || logs(&da, &dbd),
        || da.log().contains(&claim_line) && dbd.log().contains(&claim_line),
    );
    std::thread::sleep(Duration::from_secs(3));
    assert_each_once(pg, &db, &dir, &logs(&da, &dbd));
    assert_eq!(count(pg, &db, "SELECT COUNT(*) FROM import_sessions"), 1, "one session: {}", logs(&da, &dbd));
    assert_eq!(not_done(pg, &db), "", "nothing skipped as a duplicate of the other daemon's import");
    assert_eq!(
        count(pg, &db, "SELECT COUNT(*) FROM jobs WHERE kind = 'source' AND state IN ('queued','running')"),
        1,
        "one live job for the source"
    );
    // `status` on either seat shows the shared queue.
    let st: serde_json::Value = serde_json::from_str(&b.ok(&["status", "--json"])).expect("status json");
    let jobs = st["jobs"].as_array().expect("jobs in status");
    assert!(jobs.iter().any(|j| j["kind"] == "source" && j["key"] == id.as_str()), "{st}");

    // A large file: whichever daemon claims the pass is killed in the middle of its copy.
    write_big(&dir.join("D001.MOV"), 256 << 20, 7);
    let running = || sql(pg, &db, "SELECT claimed_by FROM jobs WHERE kind = 'source' AND state = 'running'");
    let mut victim = None;
    wait_for(
        "a daemon copying the large file",
        Duration::from_secs(120),
        || logs(&da, &dbd),
        || {
            let holder = running();
            let Some(pid) = holder.split(':').nth(1).and_then(|p| p.parse::<u32>().ok()) else { return false };
            let seat = if pid == da.pid() {
                &a
            } else if pid == dbd.pid() {
                &b
            } else {
                return false;
            };
            let copying = fs::read_dir(seat.env.archive.join("tmp"))
                .map(|rd| rd.flatten().any(|e| e.metadata().map(|m| m.len() > 16 << 20).unwrap_or(false)))
                .unwrap_or(false);
            if copying {
                victim = Some(pid);
            }
            copying
        },
    );
    let killed_a = victim == Some(da.pid());
    let stuck = running();
    if killed_a {
        da.crash();
    } else {
        dbd.crash();
    }
    let survivor = if killed_a { &dbd } else { &da };
    // Its job stays running under the dead worker until the survivor's reaper takes it back (3 s stale).
    assert_eq!(running(), stuck, "the dead daemon's claim is still there right after the kill");
    wait_for(
        "the large file catalogued by the surviving daemon",
        Duration::from_secs(180),
        || survivor.log(),
        || count(pg, &db, "SELECT COUNT(*) FROM files") >= 14,
    );
    let log = survivor.log();
    assert!(log.contains("requeued 1 job(s) whose worker stopped heartbeating"), "the reaper took it back: {log}");
    std::thread::sleep(Duration::from_secs(3));
    assert_each_once(pg, &db, &dir, &log);
    // The second session lists the folder again: what the first one imported is a duplicate in it, once each.
    let second: Vec<String> = not_done(pg, &db).split(',').map(str::to_string).collect();
    assert_eq!(second, vec!["2:duplicate".to_string(); 13], "{log}");
    let sessions = sql(pg, &db, "SELECT string_agg(status, ',' ORDER BY id) FROM import_sessions");
    assert_eq!(sessions, "completed,completed", "the killed session resumed, not started again: {log}");
    // The survivor stops cleanly and gives its claim back.
    if killed_a {
        dbd.stop();
    } else {
        da.stop();
    }
    assert_eq!(count(pg, &db, "SELECT COUNT(*) FROM jobs WHERE state = 'running'"), 0);
    drop(nfs);
}
