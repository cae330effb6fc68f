//! Studio seats for the Postgres tests: a fresh database migrated by the migration role (its DSN in the
//! environment, never argv) and seats joined to it, each an archive of its own (staging, daemon lock) over one
//! shared blob directory; SQL read back through `psql` as the runtime role.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::pgd::{self, PgServer};
use super::{serving, stop_daemon, test_root, Env, BIN};

/// One seat: an archive of its own (its staging, its daemon lock) joined to the shared catalog and blobs.
pub struct Seat {
    pub env: Env,
    /// The runtime DSN with its password: given through the environment, never argv.
    pub app_dsn: String,
}

impl Seat {
    pub fn cmd(&self) -> Command {
        let mut c = self.env.cmd();
        c.env(nightfox_var(), &self.app_dsn).env_remove("NIGHTFOX_DATABASE_MIGRATE_URL");
        c
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.cmd().args(args).output().expect("run nightfox");
        assert!(
            out.status.success(),
            "nightfox {args:?} failed ({:?}):\nstdout: {}\nstderr: {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

pub fn nightfox_var() -> &'static str {
    "NIGHTFOX_DATABASE_URL"
}

/// A DSN without its password (what argv and archive.toml may hold).
pub fn without_password(dsn: &str) -> String {
    let (scheme, rest) = dsn.split_once("://").expect("a DSN");
    let (userinfo, host) = rest.split_once('@').expect("a DSN with a user");
    let user = userinfo.split(':').next().expect("a user");
    format!("{scheme}://{user}@{host}")
}

/// A fresh database with the schema made by `nightfox migrate` (the migration role, its DSN in the
/// environment); its name.
pub fn migrated_db(pg: &PgServer) -> String {
    let db = pg.create_db();
    let migrate = pg.migrate_dsn(&db);
    let out = Command::new(BIN)
        .args(["migrate", "--dsn", &without_password(&migrate), "--app-role", pgd::APP_ROLE])
        .env("NIGHTFOX_DATABASE_MIGRATE_URL", &migrate)
        .env_remove("NIGHTFOX_DATABASE_URL")
        .stdin(Stdio::null())
        .output()
        .expect("run nightfox migrate");
    assert!(out.status.success(), "migrate failed: {}", String::from_utf8_lossy(&out.stderr));
    db
}

/// Migrates a fresh database and joins two seats to it, their blobs in one shared directory.
pub fn two_seats(pg: &PgServer, root: &Path) -> (Seat, Seat, String) {
    let db = migrated_db(pg);
    let app = pg.app_dsn(&db);
    let blobs = root.join("shared-blobs");
    fs::create_dir_all(&blobs).unwrap();
    let blobs_url = format!("file://{}", blobs.display());
    let mut seats = Vec::new();
    for name in ["seat-a", "seat-b"] {
        let dir = tempfile::Builder::new().prefix(&format!("nightfox-{name}-")).tempdir_in(test_root()).unwrap();
        let archive = dir.path().join("archive");
        let seat = Seat { env: Env { dir, archive }, app_dsn: app.clone() };
        seat.ok(&["init", "--catalog", &without_password(&app), "--blobs", &blobs_url]);
        seats.push(seat);
    }
    let b = seats.pop().unwrap();
    let a = seats.pop().unwrap();
    (a, b, db)
}

/// One value (or several lines) from the shared catalog, as the runtime role.
pub fn sql(pg: &PgServer, db: &str, query: &str) -> String {
    pg.psql(pgd::APP_ROLE, db, &format!("SET search_path = nightfox; {query}")).trim().to_string()
}

pub fn count(pg: &PgServer, db: &str, query: &str) -> i64 {
    let v = sql(pg, db, query);
    v.lines().last().unwrap_or_default().trim().parse().unwrap_or_else(|_| panic!("{query}: not a count: {v:?}"))
}

pub fn wait_for(what: &str, limit: Duration, logs: impl Fn() -> String, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "timed out after {limit:?} waiting for {what}\n{}", logs());
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A running `nightfox serve` of a seat, its stderr in a file; stopped (SIGTERM, bounded wait, SIGKILL, lazy
/// unmount) when dropped.
pub struct Daemon {
    pub child: Option<Child>,
    pub mp: PathBuf,
    pub log: PathBuf,
}

impl Daemon {
    pub fn start(seat: &Seat, name: &str, vars: &[(&str, &str)]) -> Daemon {
        let mp = seat.env.path("mnt");
        fs::create_dir_all(&mp).unwrap();
        let log = seat.env.path(&format!("serve-{name}.log"));
        let err = fs::File::create(&log).expect("serve log");
        let mut c = seat.cmd();
        c.arg("serve").arg(&mp).args(["--poll-interval", "1s"]).stdout(Stdio::null()).stderr(Stdio::from(err));
        for (k, v) in vars {
            c.env(k, v);
        }
        let child = c.spawn().expect("spawn serve");
        let mut d = Daemon { child: Some(child), mp, log };
        let start = Instant::now();
        while !serving(&d.mp) {
            if let Some(Ok(Some(st))) = d.child.as_mut().map(|c| c.try_wait()) {
                d.child = None;
                panic!("serve {name} exited early ({st}): {}", d.log());
            }
            assert!(start.elapsed() < Duration::from_secs(20), "the mount of {name} did not appear: {}", d.log());
            std::thread::sleep(Duration::from_millis(20));
        }
        d
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL (a crash): the job it runs is left running, its heartbeat going stale.
    pub fn crash(&mut self) {
        let mut c = self.child.take().expect("running");
        // SAFETY: signalling our own child by pid.
        unsafe { libc::kill(c.id() as i32, libc::SIGKILL) };
        let start = Instant::now();
        while c.try_wait().expect("try_wait").is_none() {
            assert!(start.elapsed() < Duration::from_secs(10), "serve survived SIGKILL");
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = Command::new("fusermount3").arg("-u").arg("-z").arg(&self.mp).status();
    }

    /// SIGTERM and a bounded wait for a clean exit.
    pub fn stop(&mut self) {
        let mut c = self.child.take().expect("running");
        // SAFETY: signalling our own child by pid.
        unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
        let start = Instant::now();
        loop {
            if let Some(st) = c.try_wait().expect("try_wait") {
                assert!(st.success(), "serve exited with {st}: {}", self.log());
                return;
            }
            if start.elapsed() > Duration::from_secs(60) {
                let _ = c.kill();
                let _ = c.wait();
                panic!("serve did not exit within 60 s of SIGTERM: {}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        stop_daemon(self.child.take(), &self.mp, Duration::from_secs(20));
    }
}
