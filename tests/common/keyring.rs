//! A real Secret Service for the keyring tests: gnome-keyring (secrets component) on a private session bus
//! (`dbus-run-session`), with a temp HOME so the user's keyrings are never touched, unlocked with a non-empty
//! password (a locked or passwordless login keyring has no usable collection). Fails loudly, never skips, when
//! dbus-run-session or gnome-keyring-daemon is missing (`scripts/setup.sh test` installs them).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct SecretService {
    pub dir: tempfile::TempDir,
    child: Child,
    /// The session bus address (`unix:path=...`).
    pub address: String,
}

impl SecretService {
    pub fn start() -> SecretService {
        for tool in ["dbus-run-session", "gnome-keyring-daemon", "secret-tool"] {
            let found = std::env::var_os("PATH")
                .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
                .unwrap_or(false);
            assert!(found, "{tool} is missing: run scripts/setup.sh test (gnome-keyring libsecret-tools dbus-daemon)");
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let (home, run) = (dir.path().join("home"), dir.path().join("run"));
        std::fs::create_dir_all(&home).expect("home");
        std::fs::create_dir_all(&run).expect("run");
        std::fs::set_permissions(&run, std::os::unix::fs::PermissionsExt::from_mode(0o700)).expect("chmod run");
        let addr_file = dir.path().join("addr");
        let script = format!(
            "eval \"$(printf keyring-test-pw | gnome-keyring-daemon --unlock --components=secrets)\"; \
             echo \"$DBUS_SESSION_BUS_ADDRESS\" > {0}.tmp && mv {0}.tmp {0}; exec sleep 3600",
            addr_file.display()
        );
        let child = {
            use std::os::unix::process::CommandExt;
            Command::new("dbus-run-session")
                .args(["--", "sh", "-c", &script])
                .env_clear()
                .env("PATH", "/usr/bin:/bin:/usr/sbin:/sbin")
                .env("HOME", &home)
                .env("XDG_RUNTIME_DIR", &run)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0)
                .spawn()
                .expect("start dbus-run-session")
        };
        let start = Instant::now();
        let address = loop {
            if let Ok(a) = std::fs::read_to_string(&addr_file) {
                if !a.trim().is_empty() {
                    break a.trim().to_string();
                }
            }
            assert!(start.elapsed() < Duration::from_secs(20), "the session bus did not start");
            std::thread::sleep(Duration::from_millis(50));
        };
        SecretService { dir, child, address }
    }

    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    /// Points a command at this Secret Service (and nothing else of the caller's session).
    pub fn apply(&self, c: &mut Command) {
        c.env("DBUS_SESSION_BUS_ADDRESS", &self.address)
            .env("HOME", self.home())
            .env("XDG_RUNTIME_DIR", self.dir.path().join("run"))
            .env_remove("DISPLAY");
    }

    /// `secret-tool lookup service S username U` (the keyring crate's attributes): the stored secret, or None.
    pub fn lookup(&self, service: &str, user: &str) -> Option<String> {
        let mut c = Command::new("secret-tool");
        c.args(["lookup", "service", service, "username", user]);
        self.apply(&mut c);
        let out = c.output().expect("secret-tool");
        let s = String::from_utf8_lossy(&out.stdout).to_string();
        (out.status.success() && !s.is_empty()).then_some(s)
    }
}

impl Drop for SecretService {
    fn drop(&mut self) {
        // The whole process group: dbus-run-session, its bus, the shell's sleep and gnome-keyring-daemon.
        unsafe {
            libc::kill(-(self.child.id() as i32), libc::SIGKILL);
        }
        let _ = self.child.wait();
    }
}
