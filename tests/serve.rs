//! `nightfox serve` end to end (issue 7): the real binary with a real FUSE mount, a real smbd and a real
//! `cargo-nfs3-server` on 127.0.0.1, polling every second with short retry delays and network timeouts.
//! Every wait is bounded; every process started here is stopped by its pid.

mod common;

use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use common::nfsd::NfsProcess;
use common::smbd::{SmbServer, SHARE, USER};
use common::*;
use nightfox::catalog::{ItemState, SessionStatus};

const PW: &str = "Serve-2025 s3cret!";

/// Short intervals for the daemon under test.
const DAEMON_ENV: &[(&str, &str)] = &[
    ("NIGHTFOX_RETRY_DELAYS", "0.2"),
    ("NIGHTFOX_NET_TIMEOUT", "2"),
    ("NIGHTFOX_BACKOFF_CAP", "4s"),
    ("RUST_LOG", "nightfox=info"),
];

/// smbd tests share the `smbtest` user, and big copies share two cores: one test at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A running `nightfox serve`, its stderr in a file; stopped (SIGTERM, bounded wait, SIGKILL, lazy unmount) when
/// dropped.
struct Serve {
    child: Option<Child>,
    mp: PathBuf,
    log: PathBuf,
}

fn spawn_serve(env: &Env, mp: &Path, log: &Path) -> Child {
    let _ = fs::create_dir_all(mp);
    let err = fs::File::create(log).expect("serve log");
    let mut c = env.cmd();
    c.arg("serve").arg(mp).args(["--poll-interval", "1s"]).stdout(Stdio::null()).stderr(Stdio::from(err));
    for (k, v) in DAEMON_ENV {
        c.env(k, v);
    }
    c.spawn().expect("spawn serve")
}

/// Waits for a child (bounded); None if it is still running.
fn wait_exit(c: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let start = Instant::now();
    loop {
        if let Some(st) = c.try_wait().expect("try_wait") {
            return Some(st);
        }
        if start.elapsed() > limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Serve {
    fn start(env: &Env, mp: &Path) -> Serve {
        static STARTS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = STARTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let log = env.path(&format!("serve-{n}.log"));
        let child = spawn_serve(env, mp, &log);
        let mut s = Serve { child: Some(child), mp: mp.to_path_buf(), log };
        let start = Instant::now();
        while !serving(mp) {
            if let Some(c) = s.child.as_mut() {
                if let Ok(Some(st)) = c.try_wait() {
                    s.child = None;
                    panic!("serve exited early ({st}): {}", s.log());
                }
            }
            assert!(start.elapsed() < Duration::from_secs(15), "the serve mount did not appear: {}", s.log());
            std::thread::sleep(Duration::from_millis(20));
        }
        s
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn signal(&self, sig: i32) {
        if let Some(c) = &self.child {
            // SAFETY: signalling our own child by pid.
            unsafe { libc::kill(c.id() as i32, sig) };
        }
    }

    /// SIGTERM and a bounded wait for the exit (a copy in progress stops at its next chunk).
    fn stop(&mut self) -> ExitStatus {
        self.signal(libc::SIGTERM);
        let mut c = self.child.take().expect("running");
        match wait_exit(&mut c, Duration::from_secs(60)) {
            Some(st) => st,
            None => {
                let _ = c.kill();
                let _ = c.wait();
                let _ = std::process::Command::new("fusermount3").arg("-u").arg("-z").arg(&self.mp).status();
                panic!("serve did not exit within 60 s of SIGTERM: {}", self.log());
            }
        }
    }

    /// SIGKILL (a crash): the mount is left behind, stale.
    fn crash(&mut self) {
        let mut c = self.child.take().expect("running");
        // SAFETY: signalling our own child by pid.
        unsafe { libc::kill(c.id() as i32, libc::SIGKILL) };
        assert!(wait_exit(&mut c, Duration::from_secs(10)).is_some(), "serve survived SIGKILL");
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: signalling our own child by pid.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            if wait_exit(&mut c, Duration::from_secs(20)).is_none() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        if is_mounted(&self.mp) {
            let _ = std::process::Command::new("fusermount3").arg("-u").arg("-z").arg(&self.mp).status();
        }
    }
}

/// Runs nightfox and waits (bounded) for it to exit on its own.
fn run_bounded(env: &Env, args: &[&str], limit: Duration) -> Output {
    let mut c = env.cmd().args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn nightfox");
    if wait_exit(&mut c, limit).is_none() {
        let _ = c.kill();
        let out = c.wait_with_output().expect("output");
        panic!("nightfox {args:?} did not exit within {limit:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    c.wait_with_output().expect("output")
}

fn status_json(env: &Env) -> serde_json::Value {
    let out = run_bounded(env, &["status", "--json"], Duration::from_secs(20));
    assert!(out.status.success(), "status failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("status --json is JSON")
}

/// Runs nightfox with the password on stdin.
fn with_stdin(env: &Env, args: &[&str], stdin: &str) -> Output {
    let mut c =
        env.cmd().args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    c.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    if wait_exit(&mut c, Duration::from_secs(30)).is_none() {
        let _ = c.kill();
    }
    c.wait_with_output().unwrap()
}

fn add_smb(env: &Env, srv: &SmbServer, couple: &str, sub: &str) -> String {
    let url = format!("smb://127.0.0.1:{}/{SHARE}{sub}", srv.port());
    let out = with_stdin(env, &["source", "add", &url, "--couple", couple, "--user", USER, "--password-stdin"], PW);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn add_nfs(env: &Env, srv: &NfsProcess, couple: &str, sub: &str) -> String {
    let url = format!("nfs://127.0.0.1:{}{sub}?export=/", srv.port);
    env.ok(&["source", "add", &url, "--couple", couple]).trim().to_string()
}

/// Puts a file into a share folder atomically (written beside, then renamed), so no pass sees it half written.
fn drop_in(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    fs::create_dir_all(dir).unwrap();
    let staging = dir.parent().unwrap().join(format!(".staging-{name}"));
    fs::write(&staging, bytes).unwrap();
    let dest = dir.join(name);
    fs::rename(&staging, &dest).unwrap();
    dest
}

fn in_mount(mp: &Path, couple: &str, name: &str) -> PathBuf {
    mp.join(couple).join("source/modern/unknown").join(name)
}

/// Waits (bounded) until the file shows in the mount with these bytes.
fn wait_in_mount(serve: &Serve, path: &Path, bytes: &[u8], limit: Duration) {
    let start = Instant::now();
    loop {
        if fs::read(path).map(|b| b == bytes).unwrap_or(false) {
            return;
        }
        assert!(start.elapsed() < limit, "{path:?} did not appear in the mount within {limit:?}: {}", serve.log());
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn wait_for_big_temp(env: &Env, serve: &Serve) {
    let tmp = env.archive.join("tmp");
    let start = Instant::now();
    while !fs::read_dir(&tmp).unwrap().flatten().any(|e| e.metadata().map(|m| m.len() > 16 << 20).unwrap_or(false)) {
        assert!(start.elapsed() < Duration::from_secs(120), "no large copy started: {}", serve.log());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A daemon copying a large file (512 MiB) from an NFS share, caught mid-copy; the share also has a small file
/// when `small` gives its seed.
struct BigCopy {
    dir: PathBuf,
    env: Env,
    couple: String,
    id: String,
    mp: PathBuf,
    serve: Serve,
    nfs: NfsProcess,
    _root: tempfile::TempDir,
}

fn big_nfs_copy(couple: &str, seed: u64, small: Option<u64>) -> BigCopy {
    let root = tempfile::Builder::new().prefix("nfs-serve-").tempdir_in(test_root()).unwrap();
    let dir = root.path().join("card");
    write_big(&dir.join("C001.MOV"), 512 << 20, seed);
    if let Some(seed) = small {
        write(&dir.join("C002.MOV"), &data(seed, 64_000));
    }
    let nfs = NfsProcess::start(root.path(), true);
    let env = Env::new();
    let couple = env.couple(couple, "2025-12-31");
    let id = add_nfs(&env, &nfs, &couple, "/card");
    env.ok(&["source", "test", &id]);
    let mp = env.path("mnt");
    let serve = Serve::start(&env, &mp);
    wait_for_big_temp(&env, &serve);
    BigCopy { dir, env, couple, id, mp, serve, nfs, _root: root }
}

/// Every file under `dir` is catalogued exactly once in `couple`, with its bytes' hash.
fn assert_all_imported(env: &Env, couple: &str, dir: &Path) {
    let cat = env.catalog();
    let cid = cat.couple_by_folder(couple).unwrap().id;
    let rows: Vec<_> = cat.files(Some(cid)).unwrap();
    let mut files = Vec::new();
    walk_files(dir, &mut files);
    assert!(!files.is_empty());
    for f in &files {
        let rel = f.strip_prefix(dir).unwrap();
        let hits: Vec<_> = rows.iter().filter(|r| r.original_path == rel.as_os_str().as_bytes()).collect();
        assert_eq!(hits.len(), 1, "{rel:?} catalogued {} times", hits.len());
        assert_eq!(hits[0].blob_hash, b3_file(f), "{rel:?}");
    }
    assert_eq!(rows.len(), files.len(), "nothing else is catalogued in {couple}");
    env.assert_consistent();
}

fn sessions_of(env: &Env, source: &str) -> Vec<nightfox::catalog::Session> {
    let id: i64 = source.parse().unwrap();
    env.catalog().sessions().unwrap().into_iter().filter(|s| s.source_id == Some(id)).collect()
}

fn source_json<'a>(v: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    v["sources"].as_array().unwrap().iter().find(|s| s["id"].as_i64() == id.parse().ok()).expect("source in status")
}

#[test]
fn new_files_on_smb_and_nfs_appear_in_the_mount_one_daemon_per_archive_status_and_backup() {
    let _g = serial();
    let srv = SmbServer::start(PW);
    let smb_dir = srv.share_dir().join("in");
    let a1 = data(1, 300_000);
    drop_in(&smb_dir, "A001.MOV", &a1);
    srv.chown_share();
    let nfs_root = tempfile::Builder::new().prefix("nfs-serve-").tempdir_in(test_root()).unwrap();
    let nfs_dir = nfs_root.path().join("cards");
    let b1 = data(2, 200_000);
    drop_in(&nfs_dir, "B001.MOV", &b1);
    let nfs = NfsProcess::start(nfs_root.path(), true);

    let env = Env::new();
    let c1 = env.couple("Smb Couple", "2025-12-30");
    let c2 = env.couple("Nfs Couple", "2025-12-31");
    let smb_id = add_smb(&env, &srv, &c1, "/in");
    env.ok(&["source", "test", &smb_id]);
    // The NFS source is added but enabled only later: SIGHUP makes the daemon pick it up.
    let nfs_id = add_nfs(&env, &nfs, &c2, "/cards");

    let mp = env.path("mnt");
    let mut serve = Serve::start(&env, &mp);
    wait_in_mount(&serve, &in_mount(&mp, &c1, "A001.MOV"), &a1, Duration::from_secs(60));
    // A file added to the share appears after a poll.
    let a2 = data(3, 150_000);
    drop_in(&smb_dir, "A002.MOV", &a2);
    srv.chown_share();
    wait_in_mount(&serve, &in_mount(&mp, &c1, "A002.MOV"), &a2, Duration::from_secs(60));

    // One daemon per archive: a second serve and a mount are refused at once, naming the pid.
    let pid = serve.pid();
    let mp2 = env.path("mnt2");
    fs::create_dir_all(&mp2).unwrap();
    for cmd in ["serve", "mount"] {
        let started = Instant::now();
        let out = run_bounded(&env, &[cmd, mp2.to_str().unwrap()], Duration::from_secs(10));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{cmd}: {err}");
        assert!(started.elapsed() < Duration::from_secs(5), "{cmd} was not refused at once");
        assert!(err.contains(&format!("pid {pid}")) && err.contains("already in use"), "{cmd}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{cmd}: one line: {err}");
        assert!(!is_mounted(&mp2));
    }

    // status, from another process while the daemon runs.
    let v = status_json(&env);
    assert_eq!(v["daemon"]["running"], true, "{v}");
    assert_eq!(v["daemon"]["pid"], pid, "{v}");
    assert_eq!(v["daemon"]["command"], "serve", "{v}");
    assert_eq!(v["daemon"]["mountpoint"], mp.to_str().unwrap(), "{v}");
    let s = source_json(&v, &smb_id);
    assert_eq!((s["enabled"].as_bool(), s["connection_state"].as_str()), (Some(true), Some("connected")), "{v}");
    assert_eq!(s["consecutive_failures"], 0, "{v}");
    assert!(s["last_scan_at"].is_string(), "{v}");
    assert_eq!(source_json(&v, &nfs_id)["enabled"], false, "{v}");
    assert!(v["sessions"].is_array() && v["last_errors"].is_array(), "{v}");
    let text = String::from_utf8_lossy(&run_bounded(&env, &["status"], Duration::from_secs(20)).stdout).into_owned();
    assert!(text.contains(&format!("daemon: running, pid {pid}")) && text.contains("sources:"), "{text}");

    // SIGHUP re-reads the source list: the NFS source, enabled now, flows in too.
    env.ok(&["source", "test", &nfs_id]);
    serve.signal(libc::SIGHUP);
    wait_in_mount(&serve, &in_mount(&mp, &c2, "B001.MOV"), &b1, Duration::from_secs(60));
    let b2 = data(4, 250_000);
    drop_in(&nfs_dir, "B002.MOV", &b2);
    wait_in_mount(&serve, &in_mount(&mp, &c2, "B002.MOV"), &b2, Duration::from_secs(60));

    // Passes that find nothing new leave no session behind; nothing is imported twice.
    std::thread::sleep(Duration::from_millis(2500));
    assert_all_imported(&env, &c1, &smb_dir);
    assert_all_imported(&env, &c2, &nfs_dir);
    for id in [&smb_id, &nfs_id] {
        let ss = sessions_of(&env, id);
        assert_eq!(ss.len(), 2, "one session per pass with new files: {ss:?}");
        assert!(ss.iter().all(|s| s.status == SessionStatus::Completed), "{ss:?}");
    }

    // An online backup while the daemon runs: a valid catalog with the same rows.
    let backup = env.path("backup/catalog-copy.db");
    fs::create_dir_all(backup.parent().unwrap()).unwrap();
    let out = run_bounded(&env, &["backup-catalog", backup.to_str().unwrap()], Duration::from_secs(30));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let copy = nightfox::catalog::open_sqlite(&backup).expect("the backup opens as a catalog");
    let live = env.catalog();
    let files = |c: &nightfox::catalog::Catalog| {
        c.files(None).unwrap().into_iter().map(|f| (f.id, f.blob_hash, f.original_path)).collect::<Vec<_>>()
    };
    assert_eq!(files(&copy), files(&live));
    assert_eq!(files(&copy).len(), 4);
    let sessions = |c: &nightfox::catalog::Catalog| {
        c.sessions().unwrap().into_iter().map(|s| (s.id, s.status, s.files_total)).collect::<Vec<_>>()
    };
    assert_eq!(sessions(&copy), sessions(&live));
    let sources = |c: &nightfox::catalog::Catalog| {
        c.sources().unwrap().into_iter().map(|s| (s.id, s.url(), s.enabled, s.password_enc)).collect::<Vec<_>>()
    };
    assert_eq!(sources(&copy), sources(&live));
    let couples = |c: &nightfox::catalog::Catalog| {
        c.couples().unwrap().into_iter().map(|c| (c.folder_name, c.file_count)).collect::<Vec<_>>()
    };
    assert_eq!(couples(&copy), couples(&live));
    let blobs = |c: &nightfox::catalog::Catalog| c.blobs(None).unwrap().len();
    assert_eq!(blobs(&copy), blobs(&live));
    assert_eq!(copy.schema_version().unwrap(), live.schema_version().unwrap());
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(fs::metadata(&backup).unwrap().permissions().mode() & 0o777, 0o600);
    // An existing file is never overwritten.
    let out = run_bounded(&env, &["backup-catalog", backup.to_str().unwrap()], Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("exists"));
    let partial = fs::read_dir(backup.parent().unwrap()).unwrap().flatten().any(|e| {
        let n = e.file_name().to_string_lossy().into_owned();
        n.starts_with('.') && n.ends_with(".partial")
    });
    assert!(!partial, "no partial file left");

    assert!(serve.stop().success(), "{}", serve.log());
    assert!(!is_mounted(&mp));
    let v = status_json(&env);
    assert_eq!(v["daemon"]["running"], false, "{v}");
    assert!(v["daemon"]["stale_pid"].is_null(), "a clean stop leaves no stale note: {v}");
    drop(nfs);
}

/// Files for the stop/restart tests: one large file (so the stop comes mid-copy) and three small ones.
fn flaky_share_files(dir: &Path) {
    write_big(&dir.join("A001.MOV"), 256 << 20, 11);
    for i in 2..=4u64 {
        write(&dir.join(format!("A00{i}.MOV")), &data(10 + i, 100_000 + i as usize));
    }
}

/// The server is stopped mid-copy (`server(false)`) and started again (`server(true)`): the session pauses, the
/// daemon backs off, keeps the source's state current and the mount up, then resumes that same session once the
/// share answers; every file ends up catalogued once with its hash.
fn stopped_and_restarted(env: &Env, couple: &str, id: &str, dir: &Path, server: &mut dyn FnMut(bool)) {
    let mp = env.path("mnt");
    let serve = Serve::start(env, &mp);
    wait_for_big_temp(env, &serve);
    server(false);
    let start = Instant::now();
    loop {
        let src = &env.catalog().sources().unwrap()[0];
        if src.connection_state != "connected" && src.consecutive_failures > 0 {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "the source never showed the failure: {}", serve.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    let start = Instant::now();
    loop {
        let v = status_json(env);
        let paused = v["sessions"].as_array().unwrap().iter().any(|s| s["state"] == "paused" && s["id"] == 1);
        if paused && !v["last_errors"].as_array().unwrap().is_empty() {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "no paused session in status: {v}");
        std::thread::sleep(Duration::from_millis(200));
    }
    // The mount stays up meanwhile.
    assert!(serving(&mp));
    server(true);
    let start = Instant::now();
    while !sessions_of(env, id).iter().all(|s| s.status == SessionStatus::Completed)
        || env.catalog().files(None).unwrap().len() < 4
    {
        assert!(start.elapsed() < Duration::from_secs(180), "the import did not finish: {}", serve.log());
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_all_imported(env, couple, dir);
    let ss = sessions_of(env, id);
    assert_eq!(ss.len(), 1, "the paused session itself was resumed: {ss:?}");
    assert_eq!((ss[0].id, ss[0].status), (1, SessionStatus::Completed));
    let ev = env.ok(&["source", "events", id]);
    assert!(ev.contains("pass failed") && ev.contains("answers again") && ev.contains("resuming"), "{ev}");
    let src = &env.catalog().sources().unwrap()[0];
    assert_eq!((src.connection_state.as_str(), src.consecutive_failures), ("connected", 0));
    // The mount picks new catalogue rows up within a moment.
    for i in 2..=4u64 {
        let name = format!("A00{i}.MOV");
        wait_in_mount(
            &serve,
            &in_mount(&mp, couple, &name),
            &data(10 + i, 100_000 + i as usize),
            Duration::from_secs(10),
        );
    }
    assert_eq!(fs::metadata(in_mount(&mp, couple, "A001.MOV")).unwrap().len(), 256 << 20);
    assert!(env.tmp_entries().is_empty(), "{:?}", env.tmp_entries());
}

#[test]
fn an_smb_share_stopped_and_restarted_resumes_without_duplicates() {
    let _g = serial();
    let mut srv = SmbServer::start(PW);
    let dir = srv.share_dir().join("dump");
    flaky_share_files(&dir);
    srv.chown_share();
    let env = Env::new();
    let c = env.couple("Flaky Share", "2025-12-31");
    let id = add_smb(&env, &srv, &c, "/dump");
    env.ok(&["source", "test", &id]);
    stopped_and_restarted(&env, &c, &id, &dir, &mut |up| if up { srv.restart() } else { srv.kill() });
}

#[test]
fn an_nfs_server_stopped_and_restarted_resumes_without_duplicates() {
    let _g = serial();
    let root = tempfile::Builder::new().prefix("nfs-serve-").tempdir_in(test_root()).unwrap();
    let dir = root.path().join("dump");
    flaky_share_files(&dir);
    let mut srv = NfsProcess::start(root.path(), true);
    let env = Env::new();
    let c = env.couple("Flaky Export", "2025-12-31");
    let id = add_nfs(&env, &srv, &c, "/dump");
    env.ok(&["source", "test", &id]);
    stopped_and_restarted(&env, &c, &id, &dir, &mut |up| if up { srv.restart() } else { srv.kill() });
}

#[test]
fn sigterm_during_a_large_nfs_copy_exits_cleanly_and_a_new_serve_resumes_it() {
    let _g = serial();
    let BigCopy { dir, env, couple: c, id, mp, mut serve, nfs, _root } = big_nfs_copy("Long Copy", 21, Some(22));
    // status sees the running session and its progress.
    let v = status_json(&env);
    let s = v["sessions"].as_array().unwrap().iter().find(|s| s["source_id"].as_i64() == id.parse().ok()).cloned();
    let s = s.unwrap_or_else(|| panic!("no session of source {id} in {v}"));
    assert_eq!(s["state"], "running", "{v}");
    assert!(s["bytes_total"].as_i64().unwrap() > 512 << 20, "{v}");
    assert!(s["bytes_in_flight"].as_u64().unwrap() > 0, "{v}");
    assert_eq!(v["daemon"]["running"], true, "{v}");
    // SIGTERM mid-copy: exit 0, no mount left, the session resumable.
    let st = serve.stop();
    assert!(st.success(), "{st}: {}", serve.log());
    assert!(!is_mounted(&mp), "the mount is gone");
    let session = env.catalog().session(1).unwrap();
    assert!(matches!(session.status, SessionStatus::Cancelled) && session.can_resume, "{session:?}");
    let v = status_json(&env);
    assert_eq!(v["daemon"]["running"], false, "{v}");
    assert_eq!(v["sessions"][0]["state"], "paused", "{v}");
    // A new serve resumes the same session and finishes it.
    let mut serve = Serve::start(&env, &mp);
    let start = Instant::now();
    while env.catalog().session(1).unwrap().status != SessionStatus::Completed {
        assert!(start.elapsed() < Duration::from_secs(180), "session 1 did not finish: {}", serve.log());
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_all_imported(&env, &c, &dir);
    assert_eq!(sessions_of(&env, &id).len(), 1, "resumed, not started again");
    wait_in_mount(&serve, &in_mount(&mp, &c, "C002.MOV"), &data(22, 64_000), Duration::from_secs(10));
    assert!(env.tmp_entries().is_empty(), "{:?}", env.tmp_entries());
    // A crash leaves a stale mount and a stale note; the next start takes the lock over and cleans the mount.
    let crashed_pid = serve.pid();
    serve.crash();
    assert!(is_mounted(&mp), "a crash leaves the mount behind");
    let v = status_json(&env);
    assert_eq!(
        (v["daemon"]["running"].as_bool(), v["daemon"]["stale_pid"].as_u64()),
        (Some(false), Some(crashed_pid as u64))
    );
    let mut serve = Serve::start(&env, &mp);
    assert!(fs::read_dir(mp.join(&c)).is_ok());
    assert_eq!(status_json(&env)["daemon"]["pid"], serve.pid());
    assert!(serve.stop().success(), "{}", serve.log());
    assert!(!is_mounted(&mp), "neither the stale nor the new mount is left");
    drop(nfs);
}

/// `session cancel` reaches a session the daemon's poller is copying from a share: it stops at its next chunk and
/// is ended for good (its partial copy removed), the command waits for that and says so, and the daemon goes on:
/// the pass ends without counting a failure and the source stays enabled.
#[test]
fn session_cancel_stops_a_copy_of_the_daemons_source_poller() {
    let _g = serial();
    let BigCopy { env, id, mut serve, nfs, _root, .. } = big_nfs_copy("Cancelled Copy", 51, None);
    let out = run_bounded(&env, &["session", "cancel", "1"], Duration::from_secs(90));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{said}{}", String::from_utf8_lossy(&out.stderr));
    assert!(said.contains("cancelling session 1") && said.contains(&format!("source {id} stays enabled")), "{said}");
    assert!(said.contains("session 1 cancelled for good"), "it waited for the end: {said}");
    let s = env.catalog().session(1).unwrap();
    assert_eq!((s.status, s.can_resume), (SessionStatus::Cancelled, false), "{s:?}");
    let left: Vec<_> = env.tmp_entries().into_iter().filter(|p| p.to_string_lossy().contains("/s1-")).collect();
    assert!(left.is_empty(), "the partial copy of session 1 is removed: {left:?}");
    let v = status_json(&env);
    let src = source_json(&v, &id);
    assert_eq!((src["enabled"].as_bool(), src["consecutive_failures"].as_i64()), (Some(true), Some(0)), "{v}");
    assert_eq!(v["daemon"]["running"], true, "{v}");
    assert!(serve.stop().success(), "{}", serve.log());
    drop(nfs);
}

fn ingest_session_json(v: &serde_json::Value) -> Option<serde_json::Value> {
    v["sessions"].as_array().unwrap().iter().find(|s| s["source"].as_str().unwrap().starts_with("ingest:")).cloned()
}

/// The `/ingest` session of a running mount is `ingest (live)` (not `interrupted`: no import lock names it between
/// commits); once its daemon is gone without closing it (a crash), it is `interrupted` until the next start.
#[test]
fn status_shows_the_ingest_session_of_a_running_daemon_as_live() {
    let env = Env::new();
    let c = env.couple("Live", "2025-12-31");
    let mp = env.path("mnt");
    let mut m = Mount::start(&env, &mp, &[]);
    fs::write(mp.join("ingest").join(&c).join("A001.MOV"), data(1, 300_000)).unwrap();
    wait_until("the commit", Duration::from_secs(90), || env.catalog().files(None).unwrap().len() == 1);
    let v = status_json(&env);
    let s = ingest_session_json(&v).unwrap_or_else(|| panic!("no ingest session in {v}"));
    assert_eq!(s["state"], "ingest (live)", "{v}");
    assert_eq!((s["files_processed"].as_i64(), s["bytes_processed"].as_i64()), (Some(1), Some(300_000)), "{v}");
    assert!(s["eta_seconds"].is_null(), "no ETA for what writers have not written yet: {v}");
    let text = String::from_utf8_lossy(&run_bounded(&env, &["status"], Duration::from_secs(20)).stdout).into_owned();
    assert!(text.contains("\tingest (live)\t"), "{text}");
    // A clean stop closes the session; a crash leaves it open, and nobody works on it any more.
    assert!(m.stop().success());
    assert!(ingest_session_json(&status_json(&env)).is_none());
    let mut m = Mount::start(&env, &mp, &[]);
    fs::write(mp.join("ingest").join(&c).join("A002.MOV"), data(2, 300_000)).unwrap();
    wait_until("the commit", Duration::from_secs(90), || env.catalog().files(None).unwrap().len() == 2);
    let mut child = m.child.take().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    let v = status_json(&env);
    assert_eq!(ingest_session_json(&v).map(|s| s["state"].clone()), Some("interrupted".into()), "{v}");
    drop(m);
}

/// Speed and ETA of a running session are measured over its current run (a resume), not since the session was
/// created: the bytes of earlier runs and the time between runs do not count.
#[test]
fn status_measures_speed_and_eta_over_the_current_run() {
    let _g = serial();
    let env = Env::new();
    let c = env.couple("Resumed", "2025-12-31");
    let card = env.path("card");
    write_big(&card.join("A.MOV"), 256 << 20, 1);
    write_big(&card.join("B.MOV"), 1 << 30, 2);
    // Killed while it copies B (only B's copy can pass 300 MiB): A is done, in the first run.
    env.import_killed_mid_copy(&c, &card, 300 << 20);
    let first = env.catalog().session(1).unwrap();
    assert!(first.bytes_processed >= 256 << 20, "A was done in the first run: {first:?}");
    // The copies the first run kept (B's prefix, up to its last checkpoint) are not the next run's work.
    let kept: i64 = env
        .catalog()
        .items(1)
        .unwrap()
        .iter()
        .map(|i| match (i.state, i.resume_offset) {
            (ItemState::Copied, _) => i.size as i64,
            (ItemState::Pending, Some(offset)) => offset as i64,
            _ => 0,
        })
        .sum();
    // The resume starts a new run at least two seconds after the session was created.
    wait_until("the clock to move on", Duration::from_secs(10), || nightfox::catalog::now() >= first.created_at + 2);
    let resume =
        env.cmd().args(["resume", "1"]).env("NIGHTFOX_IMPORT_WORKERS", "1").stdout(Stdio::null()).spawn().unwrap();
    let mut resume = KillOnDrop(resume);
    // A status taken while the rest of B is being copied, once the resume has started its run.
    let start = Instant::now();
    let (t0, v, t1, s) = loop {
        let run_started = env.catalog().session(1).unwrap().run_started_at.unwrap_or(0);
        if run_started < first.created_at + 2 {
            assert!(start.elapsed() < Duration::from_secs(60), "the resume did not start a run");
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        let t0 = nightfox::catalog::now();
        let v = status_json(&env);
        let t1 = nightfox::catalog::now();
        let s = v["sessions"].as_array().unwrap().iter().find(|s| s["id"] == 1).cloned().expect("session 1 in status");
        if s["state"] == "running" && s["bytes_this_run"].as_u64() > Some(0) {
            break (t0, v, t1, s);
        }
        assert!(start.elapsed() < Duration::from_secs(60), "the resume never showed a copy in flight: {v}");
        std::thread::sleep(Duration::from_millis(50));
    };
    let run = env.catalog().session(1).unwrap();
    let start = run.run_started_at.expect("a run start");
    assert!(start >= first.created_at + 2);
    assert_eq!(run.run_bytes_start, first.bytes_processed - first.bytes_duplicate + kept, "{run:?}");
    assert_eq!(s["run_started_at"].as_str(), Some(nightfox::fs::rfc3339(start).as_str()), "{v}");
    let (processed, flying) = (s["bytes_processed"].as_i64().unwrap(), s["bytes_in_flight"].as_i64().unwrap());
    let this_run = s["bytes_this_run"].as_i64().unwrap();
    assert_eq!(this_run, processed - run.bytes_duplicate - run.run_bytes_start + flying, "{v}");
    assert!(this_run < processed + flying, "A's bytes, of the first run, are not counted: {v}");
    // bytes/s over the run: this run's bytes over the seconds since the run started (t in [t0, t1]).
    let speed = s["bytes_per_sec"].as_i64().unwrap();
    let (slowest, fastest) = (this_run / (t1 - start).max(1), this_run / (t0 - start).max(1));
    assert!((slowest..=fastest).contains(&speed), "{speed} not in {slowest}..={fastest}: {v}");
    let left = s["bytes_total"].as_i64().unwrap() - processed - flying;
    let eta = s["eta_seconds"].as_i64().unwrap();
    assert!((left / (speed + 1)..=left / speed.max(1) + 1).contains(&eta), "ETA {eta} for {left} bytes left: {v}");
    wait_until("the resume", Duration::from_secs(300), || resume.0.try_wait().unwrap().is_some());
    assert!(resume.0.wait().unwrap().success());
    env.assert_consistent();
}

/// A child process killed (by its pid) if the test ends first.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// A session that cannot be resumed while its share answers (here the partial copy it left in `tmp/` cannot be
/// touched, as when the archive's disk turns bad under that one file) does not block its source: each pass
/// records that as an event and goes on, and the new files of the share come in (the new session copies the stuck
/// session's files too); nor does the stuck session start a session of its own on every pass.
#[test]
fn a_session_that_cannot_be_resumed_does_not_block_new_files_of_its_source() {
    let _g = serial();
    let BigCopy { dir, env, couple: c, id, mp, mut serve, nfs: _nfs, _root } = big_nfs_copy("Stuck", 41, Some(42));
    serve.crash();
    let leftovers = env.tmp_entries();
    let frozen: Vec<Immutable> = leftovers.iter().filter_map(|p| Immutable::set(p)).collect();
    assert!(
        !frozen.is_empty(),
        "chattr +i failed on {leftovers:?}: this test needs root and a filesystem with the flag"
    );
    let new = data(43, 80_000);
    drop_in(&dir, "C003.MOV", &new);
    let serve = Serve::start(&env, &mp);
    wait_in_mount(&serve, &in_mount(&mp, &c, "C003.MOV"), &new, Duration::from_secs(120));
    let start = Instant::now();
    while env.catalog().files(None).unwrap().len() < 3 {
        assert!(start.elapsed() < Duration::from_secs(180), "the new session did not finish: {}", serve.log());
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_all_imported(&env, &c, &dir);
    let ev = env.ok(&["source", "events", &id]);
    assert!(ev.contains("session 1 could not be resumed") && ev.contains("going on with new files"), "{ev}");
    let ss = sessions_of(&env, &id);
    assert_eq!(ss.len(), 2, "one new session for the new file, not one per pass: {ss:?}");
    assert!(ss[0].id == 1 && !ss[0].status.is_final(), "session 1 is still stuck: {ss:?}");
    assert_eq!(ss[1].status, SessionStatus::Completed, "{ss:?}");
    drop(serve);
    drop(frozen);
}
