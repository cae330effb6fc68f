//! A real PostgreSQL 15 (from the image, `/usr/lib/postgresql/15/bin`) for tests: `initdb` into a temporary
//! directory owned by the `postgres` user, a free port on 127.0.0.1 only, its socket in that directory, two
//! login roles (`nightfox_migrate`, which owns each test database, and `nightfox_app`, the runtime role) and one
//! fresh database per test. Started with `pg_ctl -w` (bounded), stopped by the postmaster's pid when dropped.
//! When Postgres cannot start, the test panics with the reason: a test of the Postgres catalog never passes
//! without one. Lives with the integration tests and is included into the crate's unit tests by `#[path]`.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub const PGBIN: &str = "/usr/lib/postgresql/15/bin";
pub const MIGRATE_ROLE: &str = "nightfox_migrate";
pub const APP_ROLE: &str = "nightfox_app";
pub const MIGRATE_PW: &str = "migrate-8c1f0a7e";
pub const APP_PW: &str = "app-3d9b6e25";
const SUPER_PW: &str = "super-51e0c7d2";

pub struct PgServer {
    dir: PathBuf,
    pub port: u16,
}

static DBS: AtomicU32 = AtomicU32::new(0);

fn run(cmd: &mut Command, what: &str) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn as_postgres(bin: &str) -> Command {
    let mut c = Command::new("runuser");
    c.args(["-u", "postgres", "--"]).arg(Path::new(PGBIN).join(bin));
    c
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("a free port on 127.0.0.1");
    l.local_addr().expect("port").port()
}

impl PgServer {
    /// Initialises and starts a server; panics with the reason when it cannot.
    pub fn start() -> PgServer {
        assert!(
            Path::new(PGBIN).join("postgres").is_file(),
            "PostgreSQL 15 is not installed at {PGBIN}: run scripts/setup.sh test (the Postgres tests need it)"
        );
        let dir = tempfile::Builder::new().prefix("nightfox-pg-").tempdir().expect("temp dir").keep();
        run(Command::new("chown").arg("postgres:").arg(&dir), "chown the server directory");
        let pwfile = dir.join("pw");
        std::fs::write(&pwfile, SUPER_PW).expect("password file");
        run(Command::new("chown").arg("postgres:").arg(&pwfile), "chown the password file");
        run(Command::new("chmod").arg("600").arg(&pwfile), "chmod the password file");
        run(
            as_postgres("initdb")
                .arg("-D")
                .arg(dir.join("data"))
                .args(["-A", "scram-sha-256", "-U", "postgres", "--no-sync", "-E", "UTF8"])
                .arg(format!("--pwfile={}", pwfile.display())),
            "initdb",
        );
        let _ = std::fs::remove_file(&pwfile);
        let mut s = PgServer { dir, port: 0 };
        let mut last = String::new();
        for _ in 0..5 {
            s.port = free_port();
            match s.try_start() {
                Ok(()) => break,
                Err(e) => last = e,
            }
            s.port = 0;
        }
        assert!(s.port != 0, "PostgreSQL did not start: {last}");
        s.psql_super(&format!(
            "CREATE ROLE {MIGRATE_ROLE} LOGIN PASSWORD '{MIGRATE_PW}';
             CREATE ROLE {APP_ROLE} LOGIN PASSWORD '{APP_PW}';"
        ));
        s
    }

    fn try_start(&self) -> Result<(), String> {
        let out = as_postgres("pg_ctl")
            .arg("-D")
            .arg(self.dir.join("data"))
            .arg("-l")
            .arg(self.dir.join("log"))
            .arg("-o")
            .arg(format!(
                "-c listen_addresses=127.0.0.1 -p {} -k {} -c fsync=off -c max_connections=200",
                self.port,
                self.dir.display()
            ))
            .args(["-w", "-t", "60", "start"])
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{}{}",
                String::from_utf8_lossy(&out.stderr),
                std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
            ))
        }
    }

    /// Runs SQL as the superuser (over the server's own socket).
    pub fn psql_super(&self, sql: &str) -> String {
        self.psql("postgres", "postgres", sql)
    }

    /// Runs SQL as `role` on `db` through the socket (the superuser's password file is gone: peer-less
    /// scram over the socket needs PGPASSWORD, which only this test process sees).
    pub fn psql(&self, role: &str, db: &str, sql: &str) -> String {
        let pw = match role {
            MIGRATE_ROLE => MIGRATE_PW,
            APP_ROLE => APP_PW,
            _ => SUPER_PW,
        };
        run(
            Command::new(Path::new(PGBIN).join("psql"))
                .env("PGPASSWORD", pw)
                .args(["-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1"])
                .args(["-p", &self.port.to_string(), "-U", role, "-d", db, "-c", sql]),
            "psql",
        )
    }

    /// A new empty database owned by the migration role; its name.
    pub fn create_db(&self) -> String {
        let name = format!("nf_{}_{}", std::process::id(), DBS.fetch_add(1, Ordering::Relaxed));
        self.psql_super(&format!("CREATE DATABASE {name} OWNER {MIGRATE_ROLE}"));
        self.psql_super(&format!(
            "REVOKE ALL ON DATABASE {name} FROM PUBLIC; GRANT CONNECT ON DATABASE {name} TO {APP_ROLE}"
        ));
        self.psql(MIGRATE_ROLE, &name, "REVOKE ALL ON SCHEMA public FROM PUBLIC");
        name
    }

    /// The DSN of `role` (with its password) on `db`.
    pub fn dsn(&self, role: &str, db: &str) -> String {
        let pw = if role == MIGRATE_ROLE { MIGRATE_PW } else { APP_PW };
        format!("postgres://{role}:{pw}@127.0.0.1:{}/{db}", self.port)
    }

    pub fn migrate_dsn(&self, db: &str) -> String {
        self.dsn(MIGRATE_ROLE, db)
    }

    pub fn app_dsn(&self, db: &str) -> String {
        self.dsn(APP_ROLE, db)
    }

    /// The postmaster's pid (first line of postmaster.pid), while it runs.
    pub fn pid(&self) -> Option<i32> {
        std::fs::read_to_string(self.dir.join("data/postmaster.pid")).ok()?.lines().next()?.trim().parse().ok()
    }

    /// Stops the server the hard way (`-m immediate`: no checkpoint, crash recovery at the next start).
    pub fn crash(&self) {
        self.stop_with("immediate");
    }

    /// Starts it again on the same port and data.
    pub fn restart(&self) {
        if let Err(e) = self.try_start() {
            panic!("PostgreSQL did not restart: {e}");
        }
    }

    fn stop_with(&self, mode: &str) {
        let _ = as_postgres("pg_ctl")
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", mode, "-w", "-t", "30", "stop"])
            .output();
        // Bounded: pg_ctl waited; a postmaster still there is killed by its pid.
        if let Some(pid) = self.pid() {
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline && unsafe { libc::kill(pid, 0) } == 0 {
                std::thread::sleep(Duration::from_millis(50));
            }
            if unsafe { libc::kill(pid, 0) } == 0 {
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        self.stop_with("fast");
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One server for every test of this process, started on first use and stopped when the process exits.
pub fn shared() -> &'static PgServer {
    static SERVER: std::sync::OnceLock<PgServer> = std::sync::OnceLock::new();
    SERVER.get_or_init(|| {
        extern "C" fn stop_shared() {
            if let Some(s) = SERVER.get() {
                s.stop_with("fast");
                let _ = std::fs::remove_dir_all(&s.dir);
            }
        }
        let s = PgServer::start();
        unsafe { libc::atexit(stop_shared) };
        s
    })
}
