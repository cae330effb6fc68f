//! A real Samba `smbd` on loopback for the SMB source tests: one fresh temp BASE (config, passdb, state, logs,
//! and the share directory), a free TCP port on 127.0.0.1 and the local user `smbtest` with the password the
//! test chooses. The server can be killed, frozen (SIGSTOP), thawed and restarted on the same port and share.
//! Every wait is bounded and every process is signalled by its pid (smbd leads its own process group, and its
//! per-connection children are in that group).
#![allow(dead_code)]

use std::fs;
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The Unix and Samba user the tests log in as.
pub const USER: &str = "smbtest";
/// The share name in the generated config.
pub const SHARE: &str = "footage";

const READY_LIMIT: Duration = Duration::from_secs(15);
const STOP_LIMIT: Duration = Duration::from_secs(10);

static USERADD: Mutex<()> = Mutex::new(());

pub struct SmbServer {
    base: Option<tempfile::TempDir>,
    port: u16,
    password: String,
    child: Option<Child>,
}

/// Runs a command with a time limit; kills it (by pid) if it overruns. None when it did not finish in time.
fn run_bounded(cmd: &mut Command, limit: Duration, stdin: Option<&[u8]>) -> Option<ExitStatus> {
    cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() }).stdout(Stdio::null()).stderr(Stdio::null());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        let _ = pipe.write_all(input);
    }
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(st)) => return Some(st),
            Ok(None) => {}
            Err(e) => panic!("waiting for {cmd:?}: {e}"),
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn installed(bin: &str) -> bool {
    ["/usr/sbin", "/usr/bin", "/sbin", "/bin", "/usr/local/sbin", "/usr/local/bin"]
        .iter()
        .any(|d| Path::new(d).join(bin).exists())
}

/// Creates the Unix user once (idempotent, also across runs).
fn ensure_user() {
    let _g = USERADD.lock().unwrap_or_else(|e| e.into_inner());
    let exists = run_bounded(Command::new("id").arg("-u").arg(USER), Duration::from_secs(10), None)
        .is_some_and(|st| st.success());
    if exists {
        return;
    }
    let st = run_bounded(
        Command::new("useradd").args(["-M", "-s", "/usr/sbin/nologin", USER]),
        Duration::from_secs(20),
        None,
    )
    .expect("useradd did not finish");
    // 9: the name is already taken (created meanwhile by another process).
    assert!(st.success() || st.code() == Some(9), "useradd {USER} failed ({st}); the SMB tests need root");
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

fn config(base: &Path, share: &Path, port: u16) -> String {
    let b = base.display();
    format!(
        "[global]
    workgroup = WORKGROUP
    server role = standalone server
    security = user
    map to guest = Bad User
    smb ports = {port}
    interfaces = lo
    bind interfaces only = yes
    disable netbios = yes
    server min protocol = SMB2_02
    private dir = {b}/private
    lock directory = {b}/lock
    pid directory = {b}/pid
    state directory = {b}/state
    cache directory = {b}/cache
    ncalrpc dir = {b}/ncalrpc
    log file = {b}/log/log.%m
    passdb backend = tdbsam:{b}/private/passdb.tdb
    load printers = no
    printing = bsd
    printcap name = /dev/null
    disable spoolss = yes
    usershare path =

[{SHARE}]
    path = {share}
    read only = no
    guest ok = no
",
        share = share.display()
    )
}

impl SmbServer {
    /// Starts smbd with a fresh BASE, a free port and the user `smbtest` with `password`; returns once
    /// `smbclient` can list the share (at most 15 s).
    pub fn start(password: &str) -> SmbServer {
        if !installed("smbd") || !installed("smbclient") || !installed("smbpasswd") {
            panic!("smbd, smbclient and smbpasswd are needed for the SMB tests: run `scripts/setup.sh test`");
        }
        ensure_user();
        let base = tempfile::Builder::new().prefix("nightfox-smbd-").tempdir().expect("tempdir");
        let b = base.path();
        for d in ["private", "lock", "pid", "state", "cache", "log", "ncalrpc", "share"] {
            fs::create_dir_all(b.join(d)).expect("mkdir");
        }
        // smbd serves the share as `smbtest`, who must be able to reach and change it.
        set_mode(b, 0o755);
        set_mode(&b.join("share"), 0o777);
        let port = free_port();
        fs::write(b.join("smb.conf"), config(b, &b.join("share"), port)).expect("write smb.conf");
        let input = format!("{password}\n{password}\n");
        let st = run_bounded(
            Command::new("smbpasswd").arg("-c").arg(b.join("smb.conf")).args(["-a", "-s", USER]),
            Duration::from_secs(20),
            Some(input.as_bytes()),
        )
        .expect("smbpasswd did not finish");
        assert!(st.success(), "smbpasswd -a {USER} failed ({st})");
        let mut s = SmbServer { base: Some(base), port, password: password.to_string(), child: None };
        s.spawn();
        s
    }

    fn base(&self) -> &Path {
        self.base.as_ref().map(|b| b.path()).expect("base dir")
    }

    pub fn share_dir(&self) -> PathBuf {
        self.base().join("share")
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().map(|c| c.id() as i32).expect("smbd is not running")
    }

    /// Gives the whole share tree to `smbtest` (files the test wrote as root), so the client may change it.
    pub fn chown_share(&self) {
        let st = run_bounded(
            Command::new("chown").arg("-R").arg(format!("{USER}:")).arg(self.share_dir()),
            Duration::from_secs(20),
            None,
        )
        .expect("chown did not finish");
        assert!(st.success(), "chown -R {USER} failed ({st})");
    }

    fn spawn(&mut self) {
        let log = fs::File::create(self.base().join("log/smbd.stderr")).expect("log file");
        let child = Command::new("smbd")
            .arg("--foreground")
            .arg("-s")
            .arg(self.base().join("smb.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn smbd");
        self.child = Some(child);
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let start = Instant::now();
        let target = format!("//127.0.0.1/{SHARE}");
        let auth = format!("{USER}%{}", self.password);
        loop {
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(st)) = c.try_wait() {
                    self.child = None;
                    let log = fs::read_to_string(self.base().join("log/smbd.stderr")).unwrap_or_default();
                    panic!("smbd exited early ({st}): {log}");
                }
            }
            let st = run_bounded(
                Command::new("smbclient").args(["-p", &self.port.to_string(), &target, "-U", &auth, "-c", "ls"]),
                Duration::from_secs(5),
                None,
            );
            if st.is_some_and(|s| s.success()) {
                return;
            }
            assert!(start.elapsed() < READY_LIMIT, "smbd on port {} not ready after {READY_LIMIT:?}", self.port);
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Signals the whole process group of smbd (the listener and its per-connection children).
    fn signal_group(&self, sig: i32) {
        if let Some(c) = self.child.as_ref() {
            // SAFETY: signalling the process group our own child leads, by its pid.
            unsafe { libc::kill(-(c.id() as i32), sig) };
        }
    }

    /// SIGKILL (the server and its connections die at once), then reaps it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: as in signal_group.
            unsafe { libc::kill(-(c.id() as i32), libc::SIGKILL) };
            let _ = c.wait();
        }
    }

    /// Freezes the server (SIGSTOP): connections stay open and nothing answers.
    pub fn stop_signal(&self) {
        self.signal_group(libc::SIGSTOP);
    }

    /// Thaws the server after `stop_signal`.
    pub fn cont_signal(&self) {
        self.signal_group(libc::SIGCONT);
    }

    /// Stops the server if it runs, then starts it again on the same port, config and share.
    pub fn restart(&mut self) {
        self.terminate();
        self.spawn();
    }

    /// SIGTERM, a bounded wait, then SIGKILL; always reaps.
    fn terminate(&mut self) {
        let Some(mut c) = self.child.take() else { return };
        let pgid = -(c.id() as i32);
        // SAFETY: as in signal_group. SIGCONT so a frozen server can act on the SIGTERM.
        unsafe {
            libc::kill(pgid, libc::SIGTERM);
            libc::kill(pgid, libc::SIGCONT);
        }
        let start = Instant::now();
        while start.elapsed() < STOP_LIMIT {
            if let Ok(Some(_)) = c.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // Leftover connection processes of the group, or the listener itself if it lingered.
        // SAFETY: as above.
        unsafe { libc::kill(pgid, libc::SIGKILL) };
        let _ = c.kill();
        let _ = c.wait();
    }
}

fn set_mode(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).expect("chmod");
}

impl Drop for SmbServer {
    fn drop(&mut self) {
        self.terminate();
        if let Some(b) = self.base.take() {
            let _ = b.close();
        }
    }
}
