//! A real SeaweedFS (`weed mini`, installed into target/venv-s3 by scripts/setup.sh) for the S3 blob store's tests:
//! its own data directory, free ports on 127.0.0.1 only (both `-ip` flags), one bucket, credentials of the test's
//! own. It can be killed (SIGKILL) and restarted on the same ports and data. Every wait is bounded; the server is
//! stopped by its pid when dropped.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const ACCESS_KEY: &str = "nightfox-test";
pub const SECRET_KEY: &str = "s3cr3t-7f1e9b2c4d-nightfox";
pub const BUCKET: &str = "footage";

const READY_LIMIT: Duration = Duration::from_secs(60);
const STOP_LIMIT: Duration = Duration::from_secs(15);

pub struct Seaweed {
    dir: PathBuf,
    ports: Vec<u16>,
    child: Option<Child>,
}

/// The `weed` binary; a loud failure when it is not installed (the tests never pass without the server).
pub fn weed() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/venv-s3/bin/weed");
    assert!(p.is_file(), "SeaweedFS is not installed at {p:?}: run scripts/setup.sh test (the S3 tests need it)");
    p
}

/// `n` ports free on 127.0.0.1, each with its gRPC twin (port + 10000, SeaweedFS's rule) free too.
fn free_ports(n: usize) -> Vec<u16> {
    let mut held = Vec::new();
    let mut ports = Vec::new();
    let mut tries = 0;
    while ports.len() < n {
        tries += 1;
        assert!(tries < 10_000, "no free port pairs");
        let Ok(l) = TcpListener::bind("127.0.0.1:0") else { continue };
        let p = l.local_addr().expect("port").port();
        if p > 55_000 {
            continue;
        }
        let Ok(twin) = TcpListener::bind(("127.0.0.1", p + 10_000)) else { continue };
        ports.push(p);
        held.push((l, twin));
    }
    ports
}

impl Seaweed {
    /// Starts a server with its data under `dir` and creates the bucket.
    pub fn start(dir: &Path) -> Seaweed {
        std::fs::create_dir_all(dir.join("data")).expect("data dir");
        let config = format!(
            r#"{{"identities":[{{"name":"nightfox","credentials":[{{"accessKey":"{ACCESS_KEY}","secretKey":"{SECRET_KEY}"}}],"actions":["Admin","Read","Write","List","Tagging"]}}]}}"#
        );
        std::fs::write(dir.join("s3.json"), config).expect("s3 config");
        let mut s = Seaweed { dir: dir.to_path_buf(), ports: free_ports(5), child: None };
        s.spawn();
        s.create_bucket();
        s
    }

    fn spawn(&mut self) {
        let p = &self.ports;
        let log = std::fs::File::create(self.dir.join("weed.log")).expect("log");
        let child = Command::new(weed())
            .arg("mini")
            .arg(format!("-dir={}", self.dir.join("data").display()))
            .args(["-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-admin.ui=false", "-webdav=false"])
            .arg(format!("-s3.config={}", self.dir.join("s3.json").display()))
            .arg(format!("-master.port={}", p[0]))
            .arg(format!("-volume.port={}", p[1]))
            .arg(format!("-filer.port={}", p[2]))
            .arg(format!("-s3.port={}", p[3]))
            .arg(format!("-admin.port={}", p[4]))
            .args(["-s3.port.iceberg=0", "-s3.port.lance=0", "-master.telemetry=false"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start weed mini");
        self.child = Some(child);
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.ports[3])).is_err() {
            self.assert_running();
            assert!(start.elapsed() < READY_LIMIT, "SeaweedFS did not listen: {}", self.log());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn assert_running(&mut self) {
        if let Some(c) = self.child.as_mut() {
            if let Ok(Some(st)) = c.try_wait() {
                panic!("weed mini exited ({st}): {}", self.log());
            }
        }
    }

    pub fn log(&self) -> String {
        let l = std::fs::read_to_string(self.dir.join("weed.log")).unwrap_or_default();
        l.lines().rev().take(30).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n")
    }

    fn create_bucket(&mut self) {
        let start = Instant::now();
        loop {
            self.assert_running();
            let mut shell = Command::new(weed())
                .arg("shell")
                .arg(format!("-master=127.0.0.1:{}", self.ports[0]))
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("weed shell");
            {
                use std::io::Write;
                let mut stdin = shell.stdin.take().expect("stdin");
                let _ = writeln!(stdin, "s3.bucket.create -name {BUCKET}");
            }
            let t = Instant::now();
            let done = loop {
                if let Ok(Some(_)) = shell.try_wait() {
                    break true;
                }
                if t.elapsed() > Duration::from_secs(20) {
                    let _ = shell.kill();
                    let _ = shell.wait();
                    break false;
                }
                std::thread::sleep(Duration::from_millis(50));
            };
            if done {
                let out = shell.wait_with_output().expect("shell output");
                let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
                if text.contains("created bucket") || text.contains("already exist") {
                    return;
                }
            }
            assert!(start.elapsed() < READY_LIMIT, "bucket not created: {}", self.log());
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.ports[3])
    }

    /// The blob store URL of a prefix of the bucket.
    pub fn url(&self, prefix: &str) -> String {
        format!("s3://{BUCKET}/{prefix}?endpoint={}", self.endpoint())
    }

    /// The credentials, as the environment gives them.
    pub fn envs() -> [(&'static str, &'static str); 2] {
        [("AWS_ACCESS_KEY_ID", ACCESS_KEY), ("AWS_SECRET_ACCESS_KEY", SECRET_KEY)]
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// SIGKILL (a crashed store); bounded wait for the exit.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts again on the same ports and data.
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    /// SIGTERM, bounded wait, then SIGKILL.
    pub fn stop(&mut self) {
        let Some(mut c) = self.child.take() else { return };
        // SAFETY: signalling our own child by pid.
        unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
        let start = Instant::now();
        while start.elapsed() < STOP_LIMIT {
            if let Ok(Some(_)) = c.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = c.kill();
        let _ = c.wait();
    }
}

impl Drop for Seaweed {
    fn drop(&mut self) {
        self.stop();
    }
}
