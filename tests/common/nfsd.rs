//! NFSv3 servers for the tests, on 127.0.0.1 only.
//!
//! - [`MemServer`]: `nfs3_server`'s in-memory `MemFs` in a background thread with its own tokio runtime; stopped
//!   (runtime dropped, listener and every connection closed) when dropped. Its export is `/`, and a subfolder of it
//!   can be mounted as an export too (`/footage`).
//! - [`NfsProcess`]: a real `cargo-nfs3-server` process mirroring a directory (one port for MOUNT and NFS, no
//!   portmapper). Install it once with `cargo install --locked cargo-nfs3-server@0.2.3`. Its export path is `/`
//!   (the `--export-name` default), NOT the directory path: mounting `/` gives the directory's root, a subfolder is
//!   mounted as `/sub`, and mounting the host path (`/tmp/x`) fails with MNT3ERR_NOENT. Killed by pid on drop.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nfs3_server::memfs::{MemFs, MemFsConfig};
use nfs3_server::tcp::{NFSTcp, NFSTcpListener};

/// An in-process `MemFs` server on 127.0.0.1; stops when dropped.
pub struct MemServer {
    pub port: u16,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl MemServer {
    /// Serves `tree` (absolute paths such as `/footage/a/b.MP4` with their bytes; parent folders are made).
    pub fn start(tree: &[(&str, &[u8])]) -> MemServer {
        let mut cfg = MemFsConfig::default();
        // Parents sort before their children.
        let mut dirs = BTreeSet::new();
        for (path, _) in tree {
            let mut prefix = String::new();
            let comps: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
            for c in &comps[..comps.len().saturating_sub(1)] {
                prefix.push('/');
                prefix.push_str(c);
                dirs.insert(prefix.clone());
            }
        }
        for d in &dirs {
            cfg.add_dir(d);
        }
        for (path, bytes) in tree {
            cfg.add_file(path, bytes.to_vec());
        }
        let (port_tx, port_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("memfs runtime");
            rt.block_on(async move {
                let fs = MemFs::new(cfg).expect("memfs tree");
                let listener = NFSTcpListener::bind("127.0.0.1:0", fs).await.expect("bind memfs server");
                let _ = port_tx.send(listener.get_listen_port());
                let listener = Arc::new(listener);
                let serving = Arc::clone(&listener);
                tokio::spawn(async move {
                    let _ = serving.handle_forever().await;
                });
                let _ = stop_rx.await;
            });
            // Dropping the runtime drops the accept loop and every connection task.
        });
        let port = port_rx.recv_timeout(Duration::from_secs(10)).expect("memfs server did not start");
        MemServer { port, stop: Some(stop_tx), thread: Some(thread) }
    }
}

impl Drop for MemServer {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A free TCP port on 127.0.0.1 (bound and released; good enough for tests).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

/// The `cargo-nfs3-server` binary: `$CARGO_HOME/bin`, `~/.cargo/bin`, then `PATH`.
pub fn server_binary() -> PathBuf {
    let mut candidates = Vec::new();
    if let Some(h) = std::env::var_os("CARGO_HOME") {
        candidates.push(PathBuf::from(h).join("bin/cargo-nfs3-server"));
    }
    if let Some(h) = std::env::var_os("HOME") {
        candidates.push(PathBuf::from(h).join(".cargo/bin/cargo-nfs3-server"));
    }
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path).map(|d| d.join("cargo-nfs3-server")));
    }
    candidates.into_iter().find(|p| p.is_file()).unwrap_or_else(|| {
        panic!("cargo-nfs3-server not found: install it once with `cargo install --locked cargo-nfs3-server@0.2.3`")
    })
}

/// A `cargo-nfs3-server` process serving `dir` on 127.0.0.1:`port` (export `/`).
pub struct NfsProcess {
    pub port: u16,
    pub dir: PathBuf,
    pub readonly: bool,
    child: Option<Child>,
}

impl NfsProcess {
    /// Starts a server on a free port; `readonly` passes `-r`. Returns once it accepts TCP (bounded at 15 s).
    pub fn start(dir: &Path, readonly: bool) -> NfsProcess {
        let mut p = NfsProcess { port: free_port(), dir: dir.to_path_buf(), readonly, child: None };
        p.spawn();
        p
    }

    fn spawn(&mut self) {
        assert!(self.child.is_none(), "server already running");
        let mut cmd = Command::new(server_binary());
        cmd.arg("--path").arg(&self.dir).args(["-i", "127.0.0.1", "-p", &self.port.to_string()]);
        if self.readonly {
            cmd.arg("-r");
        }
        cmd.arg("--quiet").stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
        let child = cmd.spawn().expect("spawn cargo-nfs3-server");
        self.child = Some(child);
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let start = Instant::now();
        loop {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return;
            }
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(st)) = c.try_wait() {
                    let mut err = String::new();
                    if let Some(mut e) = c.stderr.take() {
                        let _ = e.read_to_string(&mut err);
                    }
                    self.child = None;
                    panic!("cargo-nfs3-server exited early ({st}): {err}");
                }
            }
            if start.elapsed() > Duration::from_secs(15) {
                self.kill();
                panic!("cargo-nfs3-server did not accept connections on port {} within 15 s", self.port);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().expect("server running").id() as i32
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    fn signal(&self, sig: i32) {
        if let Some(c) = &self.child {
            // SAFETY: signalling our own child by pid; it is not reaped before `kill` waits for it.
            unsafe { libc::kill(c.id() as i32, sig) };
        }
    }

    /// SIGKILL by pid, then wait for it (bounded).
    pub fn kill(&mut self) {
        let Some(mut c) = self.child.take() else { return };
        // SAFETY: as in `signal`.
        unsafe { libc::kill(c.id() as i32, libc::SIGKILL) };
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = c.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("cargo-nfs3-server (pid {}) did not die on SIGKILL within 10 s", c.id());
    }

    /// SIGSTOP: the server keeps its sockets but answers nothing.
    pub fn stop_signal(&self) {
        self.signal(libc::SIGSTOP);
        // SIGSTOP is delivered asynchronously: wait (bounded) until every thread is stopped, so that no request
        // sent after this returns can still be answered.
        let Some(c) = &self.child else { return };
        let tasks = format!("/proc/{}/task", c.id());
        let stopped = || {
            std::fs::read_dir(&tasks).map_or(true, |rd| {
                rd.flatten().all(|t| {
                    let stat = std::fs::read_to_string(t.path().join("stat")).unwrap_or_default();
                    // The state follows the parenthesised command name.
                    stat.rsplit(')')
                        .next()
                        .and_then(|r| r.trim_start().chars().next())
                        .is_none_or(|st| st == 'T' || st == 't')
                })
            })
        };
        let start = Instant::now();
        while !stopped() && start.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// SIGCONT after `stop_signal`.
    pub fn cont_signal(&self) {
        self.signal(libc::SIGCONT);
    }

    /// Kills the server if it runs and starts it again on the same port.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for NfsProcess {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: signalling our own child by pid (SIGKILL also ends a stopped process).
            unsafe { libc::kill(c.id() as i32, libc::SIGKILL) };
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(10) {
                if let Ok(Some(_)) = c.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}
