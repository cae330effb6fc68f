//! Studio seats on one Postgres 15 catalog (issue 20), with real processes: two seats (archives of their own, one
//! shared blob directory) see each other's imports in their FUSE mounts; one import per couple across seats; a
//! Postgres crashed in the middle of a finalize (the transaction held on a table lock, then `pg_ctl -m
//! immediate`) leaves no half rows, a short outage is retried and a long one pauses the session for `resume`
//! while the mounts keep serving what they hold; the runtime role is refused DDL; passwords stay out of argv,
//! archive.toml, messages and logs; `catalog copy` moves an SQLite archive into Postgres and back. Every wait is
//! bounded, every process started here is stopped by its pid; without Postgres or FUSE a test fails, never skips.

mod common;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::pgd::{self, PgServer};
use common::seats::*;
use common::*;

fn root() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("nightfox-seats-").tempdir_in(test_root()).expect("temp dir")
}

/// A card of `n` small clips without metadata (they go to `source/modern/unknown`).
fn card(dir: &Path, n: u64, seed: u64) -> Vec<PathBuf> {
    (0..n)
        .map(|i| {
            let p = dir.join(format!("DCIM/C{:04}.MP4", seed * 100 + i));
            write(&p, &data(seed * 1000 + i, 30_000 + i as usize * 7_000));
            p
        })
        .collect()
}

/// The mount path of an imported clip without metadata.
fn in_mount(mp: &Path, couple: &str, clip: &Path) -> PathBuf {
    mp.join(couple).join("source/modern/unknown").join(clip.file_name().expect("a file name"))
}

/// `psql` as `role`, not asserting: its output (for statements that must fail).
fn psql_try(pg: &PgServer, role: &str, pw: &str, db: &str, query: &str) -> Output {
    Command::new(Path::new(pgd::PGBIN).join("psql"))
        .env("PGPASSWORD", pw)
        .args(["-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1"])
        .args(["-p", &pg.port.to_string(), "-U", role, "-d", db, "-c", query])
        .output()
        .expect("run psql")
}

/// Each clip is one file row of the right content, and one `done` item.
fn assert_once(pg: &PgServer, db: &str, clips: &[PathBuf]) {
    for c in clips {
        let name = c.file_name().unwrap().to_str().unwrap();
        let hex: String = name.bytes().map(|b| format!("{b:02x}")).collect();
        let hashes = sql(
            pg,
            db,
            &format!("SELECT string_agg(blob_hash, ',') FROM files WHERE display_name = '\\x{hex}'::bytea"),
        );
        assert_eq!(hashes, b3_file(c), "{name}: catalogued once with its content");
    }
}

/// No half rows: every file row has the `done` item that made it and every `done` item its file, and the
/// couples' totals (kept by triggers) count exactly their files.
fn assert_no_half_rows(pg: &PgServer, db: &str) {
    let orphan_files = count(
        pg,
        db,
        "SELECT COUNT(*) FROM files f WHERE NOT EXISTS
           (SELECT 1 FROM import_items i WHERE i.file_id = f.id AND i.state = 'done')",
    );
    assert_eq!(orphan_files, 0, "file rows without their done item");
    let done_without = count(pg, db, "SELECT COUNT(*) FROM import_items WHERE state = 'done' AND file_id IS NULL");
    assert_eq!(done_without, 0, "done items without their file row");
    let bad_totals = count(
        pg,
        db,
        "SELECT COUNT(*) FROM couples c LEFT JOIN couple_totals t ON t.couple_id = c.id
         WHERE COALESCE(t.files, 0) <> (SELECT COUNT(*) FROM files f WHERE f.couple_id = c.id AND f.trash_id IS NULL)",
    );
    assert_eq!(bad_totals, 0, "couple totals that do not count their files");
}

#[test]
fn an_import_on_one_seat_shows_in_the_other_seats_mount_within_two_seconds() {
    let pg = pgd::shared();
    let root = root();
    let (a, b, db) = two_seats(pg, root.path());
    let mp = b.env.path("mnt");
    let _m = Mount::start_with(&b.env, &mp, &[], &[(nightfox_var(), b.app_dsn.as_str())]);
    let couple = a.ok(&["couple", "add", "--name", "Seen Elsewhere", "--date", "2025-06-01"]).trim().to_string();
    // What seat b's kernel may keep before the import: the root's listing and the couple's name found absent
    // (a couple shows once it has files). The import must get past both.
    let _ = fs::read_dir(&mp).map(Iterator::count);
    assert!(!mp.join(&couple).exists());
    let clips = card(&root.path().join("card"), 4, 1);
    a.ok(&["import", "--couple", &couple, root.path().join("card").to_str().unwrap()]);
    wait_until("seat a's import in seat b's mount", Duration::from_secs(2), || {
        clips.iter().all(|c| in_mount(&mp, &couple, c).is_file())
    });
    for c in &clips {
        assert_eq!(b3_file(&in_mount(&mp, &couple, c)), b3_file(c), "seat b reads the bytes seat a imported");
    }
    let listed: Vec<String> = fs::read_dir(mp.join(&couple).join("source/modern/unknown"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(listed.len(), clips.len(), "{listed:?}");
    assert_once(pg, &db, &clips);
    // A third seat joins later: its init finds the catalog in use and re-creates nothing; it sees the archive
    // as it is and verifies the shared blobs.
    let dir = tempfile::Builder::new().prefix("nightfox-seat-c-").tempdir_in(test_root()).unwrap();
    let c = Seat { env: Env { archive: dir.path().join("archive"), dir }, app_dsn: a.app_dsn.clone() };
    let blobs = format!("file://{}", root.path().join("shared-blobs").display());
    c.ok(&["init", "--catalog", &without_password(&c.app_dsn), "--blobs", &blobs]);
    assert!(c.env.archive.join("tmp").is_dir(), "the seat's own staging");
    assert_eq!(c.ok(&["couple", "list", "--json"]), a.ok(&["couple", "list", "--json"]));
    assert_eq!(count(pg, &db, "SELECT COUNT(*) FROM files"), clips.len() as i64, "nothing re-created");
    c.ok(&["verify"]);
}

#[test]
fn two_seats_importing_one_couple_at_once_one_is_refused_with_a_clear_message() {
    let pg = pgd::shared();
    let root = root();
    let (a, b, db) = two_seats(pg, root.path());
    let couple = a.ok(&["couple", "add", "--name", "One At A Time", "--date", "2025-06-02"]).trim().to_string();
    let other = b.ok(&["couple", "add", "--name", "Someone Else", "--date", "2025-06-02"]).trim().to_string();
    let big = root.path().join("big");
    write_big(&big.join("A001.MOV"), 200 << 20, 5);
    let small = root.path().join("small");
    card(&small, 3, 2);
    let first = spawn_import(&a, &couple, &big, &[]);
    a.env.wait_for_temp_over(8 << 20);
    let out = b.cmd().args(["import", "--couple", &couple]).arg(&small).output().expect("import on seat b");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "the second import of the couple is refused: {err}");
    assert!(err.contains("already being imported"), "{err}");
    assert!(err.contains(&couple), "the message names the couple: {err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    // Another couple imports on seat b meanwhile.
    b.ok(&["import", "--couple", &other, small.to_str().unwrap()]);
    let (status, err) = finish(first, Duration::from_secs(180));
    assert!(status.success(), "seat a's import: {err}");
    // Once it is done, seat b may import into the couple.
    b.ok(&["import", "--couple", &couple, small.to_str().unwrap()]);
    assert_eq!(
        count(
            pg,
            &db,
            &format!(
                "SELECT COUNT(*) FROM files f JOIN couples c ON c.id = f.couple_id WHERE c.folder_name = '{couple}'"
            )
        ),
        4
    );
    assert_no_half_rows(pg, &db);
}

/// Takes a lock on the files table in an open transaction (as the migration role, the tables' owner), so the
/// next finalize blocks on its first INSERT into files; the psql that holds it.
fn hold_files_lock(pg: &PgServer, db: &str) -> Child {
    let mut c = Command::new(Path::new(pgd::PGBIN).join("psql"))
        .env("PGPASSWORD", pgd::MIGRATE_PW)
        .args(["-X", "-q", "-h", "127.0.0.1", "-p", &pg.port.to_string(), "-U", pgd::MIGRATE_ROLE, "-d", db])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn psql");
    c.stdin
        .as_mut()
        .unwrap()
        .write_all(b"BEGIN;\nLOCK TABLE nightfox.files IN SHARE ROW EXCLUSIVE MODE;\n")
        .expect("send the lock");
    wait_until("the files table locked", Duration::from_secs(20), || {
        count(
            pg,
            db,
            "SELECT COUNT(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
             WHERE c.relname = 'files' AND l.mode = 'ShareRowExclusiveLock' AND l.granted",
        ) == 1
    });
    c
}

/// Waits until an import's finalize waits on that lock (its INSERT into files).
fn wait_for_blocked_finalize(pg: &PgServer, db: &str, import: &mut Child) {
    let start = Instant::now();
    loop {
        let n = count(
            pg,
            db,
            "SELECT COUNT(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%INSERT INTO files%'",
        );
        if n > 0 {
            return;
        }
        if let Ok(Some(st)) = import.try_wait() {
            panic!("the import ended ({st}) before its finalize blocked");
        }
        assert!(start.elapsed() < Duration::from_secs(60), "no finalize blocked on the files table");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// An import on a seat in the background, its stderr piped, with extra environment (a retry policy).
fn spawn_import(seat: &Seat, couple: &str, dir: &Path, vars: &[(&str, &str)]) -> Child {
    seat.cmd()
        .args(["import", "--couple", couple])
        .arg(dir)
        .envs(vars.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn import")
}

fn stop(mut c: Child) {
    let _ = c.kill();
    let _ = c.wait();
}

/// Waits (bounded) for a child to exit; its status and stderr.
fn finish(mut c: Child, limit: Duration) -> (std::process::ExitStatus, String) {
    let start = Instant::now();
    let st = loop {
        if let Some(st) = c.try_wait().expect("try_wait") {
            break st;
        }
        if start.elapsed() > limit {
            let _ = c.kill();
            let _ = c.wait();
            panic!("the process did not end within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    if let Some(mut e) = c.stderr.take() {
        std::io::Read::read_to_string(&mut e, &mut err).unwrap();
    }
    (st, err)
}

#[test]
fn postgres_killed_during_a_finalize_leaves_no_half_rows_and_the_import_retries_or_pauses_for_resume() {
    // A server of its own: this test crashes it.
    let pg = PgServer::start();
    let root = root();
    let (a, b, db) = two_seats(&pg, root.path());
    let couple = a.ok(&["couple", "add", "--name", "Crash Test", "--date", "2025-06-03"]).trim().to_string();
    let mp = b.env.path("mnt");
    let _m = Mount::start_with(&b.env, &mp, &[], &[(nightfox_var(), b.app_dsn.as_str())]);

    // 1. A short outage: the server is back within the retry window, the import finishes by itself.
    let first = card(&root.path().join("first"), 6, 3);
    let lock = hold_files_lock(&pg, &db);
    let mut import = spawn_import(
        &a,
        &couple,
        &root.path().join("first"),
        &[("NIGHTFOX_RETRY_DELAYS", "1"), ("NIGHTFOX_MAX_FAILURES", "40")],
    );
    wait_for_blocked_finalize(&pg, &db, &mut import);
    pg.crash();
    stop(lock);
    pg.restart();
    let (st, err) = finish(import, Duration::from_secs(120));
    assert!(st.success(), "the import outlives a short catalog outage: {err}");
    assert!(err.contains("trying again"), "the catalog failure was retried: {err}");
    assert_no_half_rows(&pg, &db);
    assert_once(&pg, &db, &first);
    wait_until("the first card in seat b's mount", Duration::from_secs(10), || {
        first.iter().all(|c| in_mount(&mp, &couple, c).is_file())
    });
    let shown = in_mount(&mp, &couple, &first[0]);
    let shown_hash = b3_file(&shown);
    let listing = |dir: &Path| -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .expect("list a folder of the mount")
            .map(|e| e.expect("an entry").file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    let folder = shown.parent().unwrap().to_path_buf();
    let listed = listing(&folder);
    assert_eq!(listed.len(), first.len(), "{listed:?}");

    // 2. A long outage: the import pauses with one clear line; the mount serves what it has meanwhile.
    let second = card(&root.path().join("second"), 5, 4);
    let lock = hold_files_lock(&pg, &db);
    let mut import = spawn_import(
        &a,
        &couple,
        &root.path().join("second"),
        &[("NIGHTFOX_RETRY_DELAYS", "0.2"), ("NIGHTFOX_MAX_FAILURES", "3")],
    );
    wait_for_blocked_finalize(&pg, &db, &mut import);
    let session: i64 = sql(&pg, &db, "SELECT MAX(id) FROM import_sessions").parse().expect("a session id");
    pg.crash();
    stop(lock);
    let (st, err) = finish(import, Duration::from_secs(60));
    assert_eq!(st.code(), Some(1), "the import stops while the catalog is down: {err}");
    let last = err.trim().lines().last().unwrap_or_default();
    assert!(
        last.contains("the session is paused") && last.contains(&format!("nightfox resume {session}")),
        "one line naming the resume: {err}"
    );
    assert!(!err.contains(pgd::APP_PW), "no password in the messages: {err}");
    // The catalog is down: seat b's mount still lists and reads what it had.
    assert_eq!(b3_file(&shown), shown_hash, "a file the mount had shown reads while the catalog is down");
    assert_eq!(listing(&folder), listed, "a folder the mount had listed lists while the catalog is down");
    pg.restart();
    assert_no_half_rows(&pg, &db);
    assert_eq!(
        count(&pg, &db, &format!("SELECT COUNT(*) FROM files WHERE session_id = {session}")),
        0,
        "nothing of the interrupted finalize was kept"
    );
    a.ok(&["resume", &session.to_string()]);
    assert_no_half_rows(&pg, &db);
    assert_once(&pg, &db, &second);
    assert_eq!(sql(&pg, &db, &format!("SELECT status FROM import_sessions WHERE id = {session}")), "completed");
    a.ok(&["verify"]);
    // The mount picks the change up once the catalog is back (its LISTEN connection is made again).
    wait_until("the resumed import in seat b's mount", Duration::from_secs(10), || {
        second.iter().all(|c| in_mount(&mp, &couple, c).is_file())
    });
}

#[test]
fn the_runtime_role_is_refused_ddl_and_passwords_stay_out_of_argv_files_and_logs() {
    let pg = pgd::shared();
    let root = root();
    let (a, _b, db) = two_seats(pg, root.path());
    for ddl in [
        "CREATE TABLE nightfox.intruder (i int)",
        "DROP TABLE nightfox.files",
        "ALTER TABLE nightfox.files ADD COLUMN x int",
        "CREATE TABLE public.intruder (i int)",
        "UPDATE nightfox.schema_version SET version = 0",
    ] {
        let out = psql_try(pg, pgd::APP_ROLE, pgd::APP_PW, &db, ddl);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "the runtime role ran {ddl:?}");
        assert!(err.contains("permission denied") || err.contains("must be owner"), "{ddl}: {err}");
    }
    // `migrate` with the runtime role's DSN fails the same way, with one line and no password.
    let out = Command::new(BIN)
        .args(["migrate", "--dsn", &without_password(&pg.app_dsn(&db)), "--app-role", pgd::APP_ROLE])
        .env("NIGHTFOX_DATABASE_MIGRATE_URL", pg.app_dsn(&db))
        .stdin(Stdio::null())
        .output()
        .expect("run migrate");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the runtime role migrated: {err}");
    assert!(!err.contains(pgd::APP_PW), "{err}");

    // A password in argv is refused before anything is written.
    let fresh = root.path().join("fresh");
    let out = Command::new(BIN)
        .arg("--archive")
        .arg(&fresh)
        .args(["init", "--catalog", &pg.app_dsn(&db)])
        .env_remove(nightfox_var())
        .stdin(Stdio::null())
        .output()
        .expect("run init");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("visible to every user"), "{err}");
    assert!(!err.contains(pgd::APP_PW), "{err}");
    assert!(!fresh.exists(), "nothing created");

    // The env file: refused while group or others can read it; read once it is 0600.
    let envf = root.path().join("nightfox.env");
    fs::write(&envf, format!("NIGHTFOX_DATABASE_URL={}\n", pg.app_dsn(&db))).unwrap();
    let set_mode = |m: u32| {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&envf, fs::Permissions::from_mode(m)).unwrap();
    };
    set_mode(0o644);
    let out =
        a.env.cmd().arg("--env-file").arg(&envf).args(["couple", "list"]).env_remove(nightfox_var()).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "a 0644 env file was read");
    assert!(err.contains("chmod 600"), "{err}");
    assert!(!err.contains(pgd::APP_PW), "{err}");
    set_mode(0o600);
    let out =
        a.env.cmd().arg("--env-file").arg(&envf).args(["couple", "list"]).env_remove(nightfox_var()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // Nothing the seat writes or logs holds the password: archive.toml, an import's debug log, a mount's argv,
    // the message of a catalog that cannot be reached.
    let toml = fs::read_to_string(a.env.archive.join("archive.toml")).unwrap();
    assert!(toml.contains("postgres://") && !toml.contains(pgd::APP_PW), "{toml}");
    let couple = a.ok(&["couple", "add", "--name", "Quiet", "--date", "2025-06-04"]).trim().to_string();
    card(&root.path().join("card"), 2, 5);
    let out = a
        .cmd()
        .args(["import", "--couple", &couple])
        .arg(root.path().join("card"))
        .env("RUST_LOG", "nightfox=trace")
        .output()
        .unwrap();
    assert!(out.status.success());
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(!log.is_empty() && !log.contains(pgd::APP_PW), "the trace log holds the password");
    let mp = a.env.path("mnt");
    let m =
        Mount::start_with(&a.env, &mp, &[], &[(nightfox_var(), a.app_dsn.as_str()), ("RUST_LOG", "nightfox=debug")]);
    let cmdline = fs::read(format!("/proc/{}/cmdline", m.pid())).unwrap();
    assert!(!String::from_utf8_lossy(&cmdline).contains(pgd::APP_PW), "the mount's argv holds the password");
    drop(m);
    let unreachable = pg.app_dsn(&db).replace(&format!(":{}/", pg.port), ":1/");
    let out = a.env.cmd().args(["couple", "list"]).env(nightfox_var(), &unreachable).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a catalog on port 1 answered");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(!err.contains(pgd::APP_PW), "{err}");
}

#[test]
fn catalog_copy_moves_an_sqlite_archive_into_postgres_and_back() {
    let pg = pgd::shared();
    let db = migrated_db(pg);
    let env = Env::new();
    let couple = env.couple("Moving House", "2025-06-05");
    let cardp = env.path("card");
    let clips = card(&cardp, 4, 6);
    write(&cardp.join("DCIM/C0600.XML"), b"<sidecar/>");
    env.ok(&["import", "--couple", &couple, cardp.to_str().unwrap()]);
    let info_before = env.ok(&["info", &format!("{couple}/source/modern/unknown/C0600.MP4")]);
    let list_before = env.ok(&["couple", "list", "--json"]);

    // Into Postgres: the password from the environment, never argv.
    let out = env
        .cmd()
        .args(["catalog", "copy", "--to", &without_password(&pg.app_dsn(&db)), "--switch"])
        .env(nightfox_var(), pg.app_dsn(&db))
        .output()
        .unwrap();
    assert!(out.status.success(), "copy to postgres: {}", String::from_utf8_lossy(&out.stderr));
    let toml = fs::read_to_string(env.archive.join("archive.toml")).unwrap();
    assert!(toml.contains("postgres://") && !toml.contains(pgd::APP_PW), "{toml}");
    assert_eq!(count(pg, &db, "SELECT COUNT(*) FROM files"), 5);
    assert_once(pg, &db, &clips);
    let on_pg = |args: &[&str]| {
        let out = env.cmd().args(args).env(nightfox_var(), pg.app_dsn(&db)).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(on_pg(&["couple", "list", "--json"]), list_before, "the same couples and totals on Postgres");
    assert_eq!(
        on_pg(&["info", &format!("{couple}/source/modern/unknown/C0600.MP4")]),
        info_before,
        "the same file, sidecar and history on Postgres"
    );
    on_pg(&["verify"]);
    // A copy into a catalog that is not empty is refused and changes nothing.
    let out = env
        .cmd()
        .args(["catalog", "copy", "--to", &without_password(&pg.app_dsn(&db))])
        .env(nightfox_var(), pg.app_dsn(&db))
        .output()
        .unwrap();
    assert!(!out.status.success(), "a copy into a catalog that has rows");
    assert_eq!(count(pg, &db, "SELECT COUNT(*) FROM files"), 5);

    // And back into a new SQLite file.
    let back = env.path("back.db");
    on_pg(&["catalog", "copy", "--to", &format!("sqlite://{}", back.display()), "--switch"]);
    assert!(back.is_file());
    let out = env.cmd().args(["couple", "list", "--json"]).env_remove(nightfox_var()).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), list_before, "the same couples back on SQLite");
    assert_eq!(env.ok(&["info", &format!("{couple}/source/modern/unknown/C0600.MP4")]), info_before);
    env.ok(&["verify"]);
}

#[test]
fn a_file_written_into_one_seats_ingest_waits_for_the_other_seats_import_of_the_couple() {
    let pg = pgd::shared();
    let root = root();
    let (a, b, db) = two_seats(pg, root.path());
    let couple = a.ok(&["couple", "add", "--name", "Ingest Queue", "--date", "2025-06-06"]).trim().to_string();
    let mp = a.env.path("mnt");
    let _m = Mount::start_with(&a.env, &mp, &[], &[(nightfox_var(), a.app_dsn.as_str())]);
    let big = root.path().join("big");
    write_big(&big.join("BIG.MP4"), 300 << 20, 9);
    let mut import = spawn_import(&b, &couple, &big, &[]);
    b.env.wait_for_temp_over(8 << 20);
    fs::write(mp.join("ingest").join(&couple).join("SMALL.MOV"), data(11, 100_000)).unwrap();
    assert!(
        import.try_wait().unwrap().is_none(),
        "seat b's import ended before the write: too fast a disk for this test"
    );
    let (st, err) = finish(import, Duration::from_secs(300));
    assert!(st.success(), "seat b's import: {err}");
    let small = in_mount(&mp, &couple, Path::new("SMALL.MOV"));
    wait_until("the ingest commit in the tree", Duration::from_secs(60), || small.is_file());
    assert_eq!(fs::read(&small).unwrap(), data(11, 100_000));
    let id_of = |name: &str| -> i64 {
        let hex: String = name.bytes().map(|b| format!("{b:02x}")).collect();
        sql(pg, &db, &format!("SELECT id FROM files WHERE display_name = '\\x{hex}'::bytea")).parse().expect("an id")
    };
    assert!(id_of("SMALL.MOV") > id_of("BIG.MP4"), "the commit on seat a waited for seat b's import of the couple");
    assert_no_half_rows(pg, &db);
}
