//! A real NAS-like NFS server for the tests: nfs-ganesha (VFS FSAL) with rpcbind, in a private network and mount
//! namespace of its own (`unshare --net --mount`), so that nothing listens outside it: rpcbind (port 111) and
//! ganesha (2049, MOUNT on a port it picks and registers) see only their own loopback, `/run` is a private tmpfs
//! (one rpcbind per namespace, its socket and state files apart) and `/etc/hosts` can be replaced for name tests.
//!
//! The namespace is held by a `sleep` started with `unshare`; rpcbind, ganesha and every command run inside go in
//! with `nsenter -t PID -n -m`. Each instance has a fresh temp dir (config, log, recovery dir, the export).
//! Dropping it kills every process it started by pid (SIGTERM, then SIGKILL) and waits for them, bounded. A missing
//! `ganesha.nfsd`, `rpcbind` or `rpcinfo` fails the test loudly.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// How one export is configured (the server offers NFSv3 over TCP, AUTH_SYS only).
#[derive(Clone, Debug)]
pub struct Export {
    /// `root_squash`, `all_squash` or `no_root_squash`.
    pub squash: &'static str,
    /// What squashed users become (`Anonymous_Uid`, `Anonymous_Gid`).
    pub anon: (u32, u32),
    /// `PrivilegedPort = true`: requests from source ports >= 1024 are refused (the `secure` export option).
    pub secure: bool,
    /// `3`, or `4` for an NFSv4-only server.
    pub protocols: &'static str,
}

impl Default for Export {
    fn default() -> Export {
        Export { squash: "root_squash", anon: (65534, 65534), secure: true, protocols: "3" }
    }
}

pub struct Ganesha {
    pub dir: tempfile::TempDir,
    /// The exported directory (what clients mount: its full path).
    pub export: PathBuf,
    holder: Option<Child>,
    daemons: Vec<Child>,
}

fn need(bin: &str) {
    let found =
        std::env::var_os("PATH").map(|p| std::env::split_paths(&p).any(|d| d.join(bin).is_file())).unwrap_or(false)
            || Path::new("/usr/sbin").join(bin).is_file();
    assert!(
        found,
        "{bin} is not installed: the NAS tests need nfs-ganesha, nfs-ganesha-vfs, rpcbind (scripts/setup.sh)"
    );
}

impl Ganesha {
    /// Starts rpcbind and ganesha in a new namespace and waits (bounded) until MOUNT and NFS answer. The export
    /// directory exists (empty, 0755) before the server starts; fill it any time.
    pub fn start(opts: &Export) -> Ganesha {
        for bin in ["ganesha.nfsd", "rpcbind", "rpcinfo", "unshare", "nsenter"] {
            need(bin);
        }
        // About one start in fifty here never registers with rpcbind (the log silent after ganesha's D-Bus warning;
        // starting ganesha again in the same namespace hangs the same way), while a good start is up in under a
        // second: such a start is torn down by its pids and made again from a new namespace, three tries in all.
        for attempt in 1..=2 {
            match Ganesha::try_start(opts, Duration::from_secs(15)) {
                Ok(g) => return g,
                Err(log) => {
                    eprintln!("ganesha did not register within 15 s (try {attempt}), made again; its log:\n{log}")
                }
            }
        }
        Ganesha::try_start(opts, Duration::from_secs(20))
            .unwrap_or_else(|log| panic!("ganesha did not start within 20 s; its log:\n{log}"))
    }

    /// One start: `Err` with ganesha's log when it is not registered within `bound` (everything stopped).
    fn try_start(opts: &Export, bound: Duration) -> Result<Ganesha, String> {
        let dir = tempfile::Builder::new().prefix("nightfox-ganesha-").tempdir_in(super::test_root()).expect("tempdir");
        let export = dir.path().join("export");
        fs::create_dir(&export).expect("export dir");
        fs::create_dir(dir.path().join("recovery")).expect("recovery dir");
        // Clients and ganesha (root) must reach the export; tests as another user traverse the temp dir.
        set_mode(dir.path(), 0o755);
        set_mode(&export, 0o755);
        let conf = dir.path().join("ganesha.conf");
        let (anon_uid, anon_gid) = opts.anon;
        fs::write(
            &conf,
            format!(
                "NFS_CORE_PARAM {{ Protocols = {p}; NFS_Port = 2049; }}\n\
                 NFSV4 {{ Graceless = true; RecoveryRoot = {rec}; }}\n\
                 EXPORT {{\n  Export_Id = 1; Path = {ex}; Pseudo = {ex}; Access_Type = RO;\n  \
                 Squash = {sq}; Anonymous_Uid = {anon_uid}; Anonymous_Gid = {anon_gid};\n  \
                 Protocols = {p}; Transports = TCP; SecType = sys; PrivilegedPort = {sec};\n  FSAL {{ Name = VFS; }}\n}}\n\
                 LOG {{ Default_Log_Level = WARN; }}\n",
                p = opts.protocols,
                rec = dir.path().join("recovery").display(),
                ex = export.display(),
                sq = opts.squash,
                sec = opts.secure,
            ),
        )
        .expect("write ganesha.conf");
        fs::write(dir.path().join("hosts"), "127.0.0.1 localhost\n").expect("hosts");
        let holder = Command::new("unshare")
            .args(["--net", "--mount", "--propagation", "private", "sleep", "600"])
            .stdin(Stdio::null())
            .spawn()
            .expect("unshare");
        let mut g = Ganesha { dir, export, holder: Some(holder), daemons: Vec::new() };
        // The holder must be inside its namespaces before anything enters them.
        let own = fs::read_link("/proc/self/ns/net").expect("own netns");
        let ns = format!("/proc/{}/ns/net", g.pid());
        wait("the namespace", Duration::from_secs(5), || fs::read_link(&ns).is_ok_and(|n| n != own));
        g.sh("ip link set lo up && mount -t tmpfs -o mode=755 nightfox-run /run && mkdir -p /run/rpcbind");
        g.sh(&format!("mount --bind {} /etc/hosts", g.dir.path().join("hosts").display()));
        let rpcbind = g.cmd("rpcbind").args(["-w", "-f"]).stdin(Stdio::null()).spawn().expect("rpcbind");
        g.daemons.push(rpcbind);
        wait("rpcbind", Duration::from_secs(10), || g.quiet(&["rpcinfo", "-p", "127.0.0.1"]));
        let log = g.dir.path().join("ganesha.log");
        let pidfile = g.dir.path().join("ganesha.pid");
        let ganesha = g
            .cmd("ganesha.nfsd")
            .arg("-F")
            .arg("-f")
            .arg(&conf)
            .arg("-L")
            .arg(&log)
            .arg("-p")
            .arg(&pidfile)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("ganesha.nfsd");
        g.daemons.push(ganesha);
        let v = opts.protocols;
        let ready = || {
            g.quiet(&["rpcinfo", "-n", "2049", "-t", "127.0.0.1", "nfs", v])
                && (v != "3" || g.quiet(&["rpcinfo", "-T", "tcp", "127.0.0.1", "mountd", "3"]))
        };
        let t0 = Instant::now();
        while !ready() {
            if t0.elapsed() > bound {
                return Err(fs::read_to_string(&log).unwrap_or_default());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(g)
    }

    /// The pid whose namespaces the servers live in.
    pub fn pid(&self) -> u32 {
        self.holder.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// A command run inside the namespaces (network and mounts).
    pub fn cmd(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("nsenter");
        c.arg("-t").arg(self.pid().to_string()).args(["-n", "-m", "--"]).arg(program);
        c
    }

    /// Runs a shell line inside; panics on failure.
    pub fn sh(&self, line: &str) -> Output {
        let out = self.cmd("sh").arg("-c").arg(line).stdin(Stdio::null()).output().expect("nsenter sh");
        assert!(out.status.success(), "{line}: {}", String::from_utf8_lossy(&out.stderr));
        out
    }

    /// Starts a command inside (`cmd` from [`Ganesha::cmd`]); it is stopped with the servers.
    pub fn spawn(&mut self, mut cmd: Command) {
        let child = cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("spawn inside");
        self.daemons.push(child);
    }

    /// Runs a command inside, quietly: whether it succeeded.
    pub fn quiet(&self, argv: &[&str]) -> bool {
        self.cmd(argv[0])
            .args(&argv[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Replaces `/etc/hosts` as the namespace sees it.
    pub fn set_hosts(&self, content: &str) {
        fs::write(self.dir.path().join("hosts"), content).expect("hosts");
    }

    /// Whether the namespace has a working IPv6 loopback (ganesha listening on it).
    pub fn has_ipv6(&self) -> bool {
        self.quiet(&["rpcinfo", "-n", "2049", "-t", "::1", "nfs", "3"])
    }
}

fn set_mode(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).expect("chmod");
}

fn wait(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !cond() {
        assert!(t0.elapsed() < timeout, "{what} not ready within {timeout:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// SIGTERM, then SIGKILL after a grace, and reap; bounded.
fn stop(child: &mut Child) {
    let pid = child.id() as i32;
    for (sig, grace) in [(libc::SIGTERM, Duration::from_secs(3)), (libc::SIGKILL, Duration::from_secs(5))] {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        // SAFETY: signalling our own child by pid; it is not reaped until try_wait sees it exit.
        unsafe { libc::kill(pid, sig) };
        let t0 = Instant::now();
        while t0.elapsed() < grace {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Ganesha {
    fn drop(&mut self) {
        // What a test started inside first, then ganesha, rpcbind after it (ganesha unregisters on the way out), the
        // namespace holder last.
        while let Some(mut c) = self.daemons.pop() {
            stop(&mut c);
        }
        if let Some(mut h) = self.holder.take() {
            stop(&mut h);
        }
    }
}

/// Output as one string, for assertions.
pub fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}
