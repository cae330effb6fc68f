//! nightfox.toml and systemd (issue 23): `config check` with line-precise errors and exit codes, the precedence
//! flag > variable > file through a real command, `serve` speaking the notify protocol to a datagram socket the test
//! binds (READY once the mount answers, WATCHDOG, RELOADING/READY around a SIGHUP that changes live settings,
//! STOPPING and exit 0 at SIGTERM), and `systemd-analyze verify` on the shipped unit. Every wait is bounded; every
//! process started here is stopped by its pid.

mod common;

use std::fs;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;

#[test]
fn config_check_reports_each_error_at_its_line_and_exits_1() {
    let env = Env::new();
    let f = env.path("nightfox.toml");
    let check = |body: &str| {
        fs::write(&f, body).expect("write config");
        env.run(&["config", "check", f.to_str().expect("utf-8")])
    };
    let at = |line: u32, col: u32| format!("{}:{line}:{col}: ", f.display());

    let out = check("archive = \"/srv/nightfox\"\n\n[serve]\npoll_interval = \"30s\"\npoll_intervall = \"60s\"\n");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.starts_with(&at(5, 1)) && err.contains("poll_intervall"), "unknown key: {err}");
    assert_eq!(err.lines().count(), 1, "{err}");

    let out = check("[mount]\npoint = \"/mnt/footage\"\n\n[scrub]\nevery   = \"weekly\"\n");
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.starts_with(&at(5, 11)) && err.contains("\"weekly\" is not a duration"), "bad duration: {err}");

    let out = check("[import]\nworkers = 2\nsecret = \"hunter2-passphrase\"\n");
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.starts_with(&at(3, 1)) && err.contains("env file") && err.contains("NIGHTFOX_SECRET="), "{err}");
    assert!(!err.contains("hunter2"), "a secret's value is never echoed: {err}");

    let out = check("[nfs]\nlisten = \"127.0.0.1:2049\"\n[log]\nlevel = \"info\"\n[gc]\nevery = \"12h\"\n");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let summary = text(&out.stdout);
    assert!(summary.contains("valid") && summary.contains("nfs.listen, log.level, gc.every"), "{summary}");

    // A command that reads an invalid nightfox.toml (the archive's own) fails with the same line.
    fs::write(env.archive.join("nightfox.toml"), "[serve]\njob_stale = \"soon\"\n").expect("write");
    let out = env.run(&["couple", "list"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    let want = format!("{}:2:13: ", env.archive.join("nightfox.toml").display());
    assert!(err.contains(&want) && err.contains("\"soon\""), "{err}");
    // `config check` without FILE finds the archive's.
    let out = env.run(&["config", "check"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).starts_with(&want), "{}", text(&out.stderr));
    // A file named explicitly must exist.
    let missing = env.path("nope.toml");
    let out = bare(&["--config", missing.to_str().expect("utf-8"), "couple", "list"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("does not exist"), "{}", text(&out.stderr));
}

#[test]
fn a_flag_beats_the_variable_which_beats_the_file() {
    let env = Env::new();
    let (by_env, by_flag) = (env.path("by-env"), env.path("by-flag"));
    for (dir, name) in [(&env.archive, "File Couple"), (&by_env, "Env Couple"), (&by_flag, "Flag Couple")] {
        let out = bare(&["--archive", dir.to_str().expect("utf-8"), "init"], &[]);
        assert!(out.status.success() || dir == &env.archive, "{}", text(&out.stderr));
        let out = bare(
            &["--archive", dir.to_str().expect("utf-8"), "couple", "add", "--name", name, "--date", "2025-06-01"],
            &[],
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    let cfg = env.path("nightfox.toml");
    fs::write(&cfg, format!("archive = {:?}\n", env.archive.to_str().expect("utf-8"))).expect("write");
    let couples = |args: &[&str], vars: &[(&str, &str)]| {
        let out = bare(&[args, &["couple", "list"]].concat(), vars);
        assert!(out.status.success(), "{args:?} {vars:?}: {}", text(&out.stderr));
        text(&out.stdout)
    };
    let c = cfg.to_str().expect("utf-8");
    let e = by_env.to_str().expect("utf-8");
    let f = by_flag.to_str().expect("utf-8");
    assert!(couples(&["--config", c], &[]).contains("file-couple"), "the file names the archive");
    assert!(couples(&[], &[("NIGHTFOX_CONFIG", c)]).contains("file-couple"), "$NIGHTFOX_CONFIG finds the file");
    let out = couples(&["--config", c], &[("NIGHTFOX_ARCHIVE", e)]);
    assert!(out.contains("env-couple") && !out.contains("file-couple"), "the variable beats the file: {out}");
    let out = couples(&["--config", c, "--archive", f], &[("NIGHTFOX_ARCHIVE", e)]);
    assert!(out.contains("flag-couple") && !out.contains("env-couple"), "the flag beats the variable: {out}");
}

/// The test's end of `$NOTIFY_SOCKET`: every datagram the daemon sent, in order.
struct Notify {
    sock: UnixDatagram,
    got: Vec<String>,
}

impl Notify {
    fn bind(path: &Path) -> Notify {
        let sock = UnixDatagram::bind(path).expect("bind the notify socket");
        sock.set_read_timeout(Some(Duration::from_millis(200))).expect("timeout");
        Notify { sock, got: Vec::new() }
    }

    /// Waits (bounded) for a datagram with this line; returns the index of the datagram.
    fn wait_for(&mut self, line: &str, limit: Duration, log: &Path) -> usize {
        let start = Instant::now();
        let mut from = 0;
        loop {
            if let Some(i) = self.got[from..].iter().position(|m| m.lines().any(|l| l == line)) {
                return from + i;
            }
            from = self.got.len();
            assert!(
                start.elapsed() < limit,
                "no {line} within {limit:?}; got {:?}; log: {}",
                self.got,
                fs::read_to_string(log).unwrap_or_default()
            );
            let mut buf = [0u8; 4096];
            if let Ok(n) = self.sock.recv(&mut buf) {
                self.got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
            }
        }
    }

    /// Forgets what arrived so far (so the next wait sees only what comes after).
    fn clear(&mut self) {
        let mut buf = [0u8; 4096];
        self.sock.set_nonblocking(true).expect("nonblocking");
        while self.sock.recv(&mut buf).is_ok() {}
        self.sock.set_nonblocking(false).expect("blocking");
        self.got.clear();
    }
}

fn signal(child: &Child, sig: i32) {
    // SAFETY: signalling our own child by pid.
    unsafe { libc::kill(child.id() as i32, sig) };
}

/// `status --json`'s scrub schedule (read with an empty nightfox.toml of its own: the archive's may be invalid).
fn scrub_every(env: &Env) -> Option<String> {
    let empty = env.path("empty.toml");
    fs::write(&empty, "").expect("write");
    let out = env.cmd().arg("--config").arg(&empty).args(["status", "--json"]).output().expect("status");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    v["scrub_every"].as_str().map(str::to_string)
}

#[test]
fn serve_speaks_systemd_notify_ready_watchdog_reload_and_stopping() {
    let env = Env::new();
    let mp = env.path("mnt");
    fs::create_dir_all(&mp).expect("mount point");
    let cfg = env.archive.join("nightfox.toml");
    let write_cfg = |poll: &str, level: &str, scrub: &str| {
        let body = format!(
            "[mount]\npoint = {:?}\n\n[serve]\npoll_interval = \"{poll}\"\n\n[scrub]\nevery = \"{scrub}\"\n\n[log]\nlevel = \"{level}\"\n",
            mp.to_str().expect("utf-8")
        );
        fs::write(&cfg, body).expect("write nightfox.toml");
    };
    write_cfg("1s", "warn", "7d");
    let sock = env.path("notify.sock");
    let mut notify = Notify::bind(&sock);
    let log = env.path("serve.log");
    // No MOUNTPOINT: [mount] point says where.
    let child = env
        .cmd()
        .arg("serve")
        .env_remove("RUST_LOG")
        .env_remove("WATCHDOG_PID")
        .env("NOTIFY_SOCKET", &sock)
        .env("WATCHDOG_USEC", "1000000")
        .stdout(Stdio::null())
        .stderr(Stdio::from(fs::File::create(&log).expect("log")))
        .spawn()
        .expect("spawn serve");
    let mut d = Mount { child: Some(child), mp: mp.clone() };

    let i = notify.wait_for("READY=1", Duration::from_secs(30), &log);
    assert!(serving(&mp), "READY=1 came before the mount answers");
    let ready = &notify.got[i];
    assert!(ready.lines().any(|l| l.starts_with("STATUS=serving ") && l.contains("0 sources")), "{ready}");
    notify.wait_for("WATCHDOG=1", Duration::from_secs(10), &log);
    assert_eq!(scrub_every(&env).as_deref(), Some("7d"));

    // A changed file and SIGHUP: RELOADING=1 (with the monotonic clock), then READY=1; the new log level, poll
    // interval and scrub schedule are in force.
    write_cfg("2s", "info", "3d");
    notify.clear();
    signal(d.child.as_ref().expect("running"), libc::SIGHUP);
    let r = notify.wait_for("RELOADING=1", Duration::from_secs(10), &log);
    assert!(notify.got[r].lines().any(|l| l.starts_with("MONOTONIC_USEC=")), "{:?}", notify.got[r]);
    let again = notify.wait_for("READY=1", Duration::from_secs(10), &log);
    assert!(again > r, "READY=1 after RELOADING=1: {:?}", notify.got);
    assert_eq!(scrub_every(&env).as_deref(), Some("3d"), "the scrub schedule changed live");
    let logged = fs::read_to_string(&log).expect("log");
    // An info line: written only because the level went from warn to info.
    assert!(logged.contains("poll interval 1s -> 2s"), "{logged}");
    assert!(logged.contains("scrub every 7d -> 3d"), "{logged}");

    // An invalid file: the settings stay, the error names its line.
    fs::write(&cfg, "[scrub]\nevery = \"fortnightly\"\n").expect("write");
    notify.clear();
    signal(d.child.as_ref().expect("running"), libc::SIGHUP);
    notify.wait_for("RELOADING=1", Duration::from_secs(10), &log);
    notify.wait_for("READY=1", Duration::from_secs(10), &log);
    let want = format!("{}:2:9: ", cfg.display());
    wait_until("the reload error in the log", Duration::from_secs(10), || {
        fs::read_to_string(&log).unwrap_or_default().contains(&want)
    });
    assert_eq!(scrub_every(&env).as_deref(), Some("3d"), "an invalid file changes nothing");

    // SIGTERM: STOPPING=1 and exit 0.
    notify.clear();
    let mut child = d.child.take().expect("running");
    signal(&child, libc::SIGTERM);
    notify.wait_for("STOPPING=1", Duration::from_secs(20), &log);
    let start = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().expect("try_wait") {
            break st;
        }
        if start.elapsed() > Duration::from_secs(30) {
            d.child = Some(child);
            panic!("serve did not exit after SIGTERM: {}", fs::read_to_string(&log).unwrap_or_default());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0), "{}", fs::read_to_string(&log).unwrap_or_default());
    assert!(!is_mounted(&mp));
}

#[test]
fn the_unit_file_verifies() {
    let unit = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/nightfox.service"))
        .expect("contrib/nightfox.service");
    for line in ["Type=notify", "ExecReload=/bin/kill -HUP $MAINPID", "DeviceAllow=/dev/fuse rw", "WatchdogSec="] {
        assert!(unit.contains(line), "the unit lacks {line}");
    }
    assert!(unit.contains("--config /etc/nightfox/nightfox.toml serve"), "{unit}");
    // The binary under test where the unit expects the installed one (verify checks that it is executable).
    let dir = tempfile::tempdir_in(test_root()).expect("tempdir");
    let path = dir.path().join("nightfox.service");
    fs::write(&path, unit.replace("/usr/local/bin/nightfox", BIN)).expect("write unit");
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze (scripts/setup.sh test installs systemd)");
    let err = text(&out.stderr);
    assert!(out.status.success(), "systemd-analyze verify failed: {err}");
    assert!(!err.contains("nightfox.service"), "systemd-analyze warns about the unit: {err}");
}

/// Waits (bounded) for a child to exit and returns its output; kills it by pid if it does not.
fn output_within(mut cmd: Command, limit: Duration) -> Output {
    let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
    let start = Instant::now();
    while child.try_wait().expect("try_wait").is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().expect("wait");
            panic!("still running after {limit:?}: {}", text(&out.stderr));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

/// The archive's own nightfox.toml cannot send the commands to another archive: its `archive` key is ignored (and
/// `config check` says so); a file named with --config still may.
#[test]
fn the_archive_key_of_the_archives_own_file_is_ignored() {
    let env = Env::new();
    let data = env.path("data");
    let home = data.join("nightfox");
    let other = env.path("other");
    for (dir, name) in [(&home, "Home Couple"), (&other, "Other Couple")] {
        let d = dir.to_str().expect("utf-8");
        assert!(bare(&["--archive", d, "init"], &[]).status.success());
        let out = bare(&["--archive", d, "couple", "add", "--name", name, "--date", "2025-06-01"], &[]);
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    let own = home.join("nightfox.toml");
    fs::write(&own, format!("# the archive's own\narchive = {:?}\n", other.to_str().expect("utf-8"))).expect("write");
    let d = data.to_str().expect("utf-8");
    let vars = [("XDG_DATA_HOME", d), ("HOME", d)];
    let out = bare(&["couple", "list"], &vars);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let listed = text(&out.stdout);
    assert!(listed.contains("home-couple") && !listed.contains("other-couple"), "{listed}");
    let out = bare(&["config", "check"], &vars);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.starts_with(&format!("{}:2:1: warning: `archive` is ignored", own.display())), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    let out = bare(&["config", "check", own.to_str().expect("utf-8")], &vars);
    assert!(text(&out.stderr).contains("`archive` is ignored"), "the same file named as FILE: {}", text(&out.stderr));
    let out = bare(&["config", "show"], &vars);
    let shown = text(&out.stdout);
    let line = shown.lines().find(|l| l.starts_with("archive = ")).unwrap_or_default();
    assert!(line.contains("ignored in the archive's own nightfox.toml") && !line.contains("/other"), "{shown}");
    // Named explicitly, the same file's key applies.
    let out = bare(&["--config", own.to_str().expect("utf-8"), "couple", "list"], &vars);
    assert!(text(&out.stdout).contains("other-couple"), "{}", text(&out.stderr));
}

/// No MOUNTPOINT and no `[mount] point`: wrong usage (exit 2, as clap's missing argument was), one line naming both.
#[test]
fn a_missing_mount_point_is_wrong_usage() {
    let env = Env::new();
    for cmd in ["mount", "serve"] {
        let out = output_within(
            {
                let mut c = env.cmd();
                c.arg(cmd).env_remove("NIGHTFOX_CONFIG");
                c
            },
            Duration::from_secs(30),
        );
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{cmd}: {err}");
        assert!(err.contains("MOUNTPOINT") && err.contains("[mount] point") && err.lines().count() == 1, "{err}");
    }
}

/// `config show | head -1`: a reader that stops early is no failure (no panic, exit 0).
#[test]
fn config_show_into_a_closed_pipe_exits_0() {
    use std::os::fd::{FromRawFd, OwnedFd};
    let env = Env::new();
    let valid = env.path("valid.toml");
    fs::write(&valid, "[gc]\nevery = \"1d\"\n").expect("write");
    for args in [vec!["config", "show"], vec!["config", "check", valid.to_str().expect("utf-8")]] {
        let mut fds = [0; 2];
        // SAFETY: a new pipe; both ends are owned here (the read end closed at once).
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0, "pipe");
        drop(unsafe { OwnedFd::from_raw_fd(fds[0]) });
        let write_end = unsafe { OwnedFd::from_raw_fd(fds[1]) };
        let mut c = env.cmd();
        c.args(&args).env_remove("NIGHTFOX_CONFIG");
        let out = c.stdout(Stdio::from(write_end)).stderr(Stdio::piped()).output().expect("run");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", text(&out.stderr));
        assert!(!text(&out.stderr).contains("panicked"), "{}", text(&out.stderr));
    }
}

/// Commands that read no settings work beside a broken nightfox.toml (the archive's, or one named by
/// `$NIGHTFOX_CONFIG`); the others report it.
#[test]
fn help_commands_ignore_a_broken_config() {
    let env = Env::new();
    let data = env.path("data");
    fs::create_dir_all(data.join("nightfox")).expect("mkdir");
    let broken = data.join("nightfox/nightfox.toml");
    fs::write(&broken, "[serve\n").expect("write");
    let valid = env.path("valid.toml");
    fs::write(&valid, "[gc]\nevery = \"1d\"\n").expect("write");
    let d = data.to_str().expect("utf-8");
    let b = broken.to_str().expect("utf-8");
    for vars in [vec![("XDG_DATA_HOME", d), ("HOME", d)], vec![("XDG_DATA_HOME", d), ("NIGHTFOX_CONFIG", b)]] {
        for args in [
            vec!["completions", "bash"],
            vec!["man"],
            vec!["help-markdown"],
            vec!["config", "check", valid.to_str().expect("utf-8")],
        ] {
            let out = bare(&args, &vars);
            assert_eq!(out.status.code(), Some(0), "{args:?} {vars:?}: {}", text(&out.stderr));
        }
        let out = bare(&["couple", "list"], &vars);
        assert_eq!(out.status.code(), Some(1), "the broken file stops a command that reads it");
        assert!(text(&out.stderr).contains(&format!("{b}:1:")), "{}", text(&out.stderr));
    }
}

/// `serve`'s env file: `--env-file`, else nightfox.toml's `[secrets] env_file`, else `/etc/nightfox/env`. Run in a
/// mount namespace of its own whose /etc is an overlay holding nightfox/env (the machine's /etc is not touched).
/// Every candidate is readable by others, so the one read is the one whose refusal is reported.
#[test]
fn serve_reads_the_env_file_of_the_flag_else_the_config_else_the_default() {
    let env = Env::new();
    let mode = |p: &Path, m: u32| {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(p, fs::Permissions::from_mode(m)).expect("chmod");
    };
    let (from_cfg, from_flag, default) = (env.path("cfg.env"), env.path("flag.env"), env.path("default.env"));
    for f in [&from_cfg, &from_flag, &default] {
        fs::write(f, "NIGHTFOX_TEST_ENV_FILE=1\n").expect("write");
        mode(f, 0o644);
    }
    let own = env.archive.join("nightfox.toml");
    let names_cfg = format!("[secrets]\nenv_file = {:?}\n", from_cfg.to_str().expect("utf-8"));
    let overlay = env.path("etc-overlay");
    fs::create_dir_all(&overlay).expect("mkdir");
    let home = env.path("home");
    fs::create_dir_all(&home).expect("mkdir");
    let serve = |args: &[&str], default_mode: &str| {
        let script = "set -e; d=$1; src=$2; m=$3; shift 3; mount -t tmpfs nightfox-etc \"$d\"; \
                      mkdir -p \"$d/upper/nightfox\" \"$d/work\"; cp \"$src\" \"$d/upper/nightfox/env\"; \
                      chmod \"$m\" \"$d/upper/nightfox/env\"; \
                      mount -t overlay nightfox-etc -o lowerdir=/etc,upperdir=\"$d/upper\",workdir=\"$d/work\" /etc; \
                      exec \"$@\"";
        let mut c = Command::new("unshare");
        c.args(["--mount", "--propagation", "private", "sh", "-c", script, "sh"])
            .arg(&overlay)
            .arg(&default)
            .arg(default_mode)
            .arg(BIN)
            .args(args)
            .arg("serve")
            .env("HOME", &home)
            .env("XDG_DATA_HOME", &home)
            .env_remove("NIGHTFOX_ARCHIVE")
            .env_remove("NIGHTFOX_CONFIG")
            .env_remove("NIGHTFOX_TEST_ENV_FILE");
        let out = output_within(c, Duration::from_secs(30));
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", text(&out.stderr));
        text(&out.stderr)
    };
    let refused = |p: &Path| format!("the env file {} has mode 644", p.display());
    let a = env.archive.to_str().expect("utf-8");
    fs::write(&own, &names_cfg).expect("write");
    let err = serve(&["--archive", a], "644");
    assert!(err.contains(&refused(&from_cfg)) && !err.contains("/etc/nightfox/env"), "config beats default: {err}");
    let err = serve(&["--archive", a, "--env-file", from_flag.to_str().expect("utf-8")], "644");
    assert!(err.contains(&refused(&from_flag)), "the flag beats the config: {err}");
    let named = env.path("named.toml");
    fs::write(&named, &names_cfg).expect("write");
    let err = serve(&["--config", named.to_str().expect("utf-8")], "644");
    assert!(err.contains(&refused(&from_cfg)), "a named config's env file: {err}");
    // /etc/nightfox/env saying where the archive is: that archive's nightfox.toml still names the env file read.
    fs::write(&default, format!("NIGHTFOX_ARCHIVE={a}\n")).expect("write");
    let err = serve(&[], "600");
    assert!(err.contains(&refused(&from_cfg)), "the archive found through the default env file: {err}");
    // No env file in the config: the default.
    fs::write(&own, "").expect("write");
    mode(&default, 0o644);
    let err = serve(&["--archive", a], "644");
    assert!(err.contains("the env file /etc/nightfox/env has mode 644"), "the default: {err}");
}

/// `serve` started by systemd: a named nightfox.toml deleted before a SIGHUP keeps the settings in force (one error
/// line); children (fusermount3 cleaning a stale mount) do not inherit $NOTIFY_SOCKET or $WATCHDOG_USEC, which
/// this process still uses.
#[test]
fn serve_keeps_a_deleted_named_config_and_hides_the_notify_socket_from_children() {
    let env = Env::new();
    let mp = env.path("mnt");
    // A stale mount at the mount point (a daemon killed): serve's start runs fusermount3 to clean it.
    let mut crashed = common::Mount::start(&env, &mp, &[]);
    let mut dead = crashed.child.take().expect("running");
    dead.kill().expect("kill");
    dead.wait().expect("wait");
    // fusermount3, as found on PATH: a script that records its environment and runs the real one.
    let bin = env.path("bin");
    fs::create_dir_all(&bin).expect("mkdir");
    let record = env.path("fusermount3.env");
    let shim = bin.join("fusermount3");
    fs::write(&shim, format!("#!/bin/sh\nenv > '{}'\nPATH=${{PATH#*:}} exec fusermount3 \"$@\"\n", record.display()))
        .expect("write");
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&shim, fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    // The shipped unit's way: --config naming a file called nightfox.toml, outside the archive.
    let etc = env.path("etc");
    fs::create_dir_all(&etc).expect("mkdir");
    let cfg = etc.join("nightfox.toml");
    fs::write(&cfg, format!("[mount]\npoint = {:?}\n[scrub]\nevery = \"7d\"\n", mp.to_str().expect("utf-8")))
        .expect("write");
    let sock = env.path("notify.sock");
    let mut notify = Notify::bind(&sock);
    let log = env.path("serve.log");
    let child = env
        .cmd()
        .arg("--config")
        .arg(&cfg)
        .arg("serve")
        .env_remove("RUST_LOG")
        .env_remove("WATCHDOG_PID")
        .env("NOTIFY_SOCKET", &sock)
        .env("WATCHDOG_USEC", "1000000")
        .env("PATH", &path)
        .stdout(Stdio::null())
        .stderr(Stdio::from(fs::File::create(&log).expect("log")))
        .spawn()
        .expect("spawn serve");
    let mut d = Mount { child: Some(child), mp: mp.clone() };
    notify.wait_for("READY=1", Duration::from_secs(30), &log);
    notify.wait_for("WATCHDOG=1", Duration::from_secs(10), &log);
    let seen = fs::read_to_string(&record).expect("fusermount3 ran (the stale mount was cleaned)");
    assert!(seen.lines().any(|l| l.starts_with("PATH=")), "{seen}");
    for var in ["NOTIFY_SOCKET=", "WATCHDOG_USEC=", "WATCHDOG_PID="] {
        assert!(!seen.lines().any(|l| l.starts_with(var)), "a child inherited {var}: {seen}");
    }
    assert_eq!(scrub_every(&env).as_deref(), Some("7d"));

    fs::remove_file(&cfg).expect("delete the config");
    notify.clear();
    signal(d.child.as_ref().expect("running"), libc::SIGHUP);
    notify.wait_for("RELOADING=1", Duration::from_secs(10), &log);
    notify.wait_for("READY=1", Duration::from_secs(10), &log);
    let missing = format!("the config file {} does not exist", cfg.display());
    wait_until("the reload error in the log", Duration::from_secs(10), || {
        fs::read_to_string(&log).unwrap_or_default().contains(&missing)
    });
    let logged = fs::read_to_string(&log).expect("log");
    let lines: Vec<&str> = logged.lines().filter(|l| l.contains(&missing)).collect();
    assert!(lines.len() == 1 && lines[0].contains("ERROR"), "{logged}");
    assert_eq!(scrub_every(&env).as_deref(), Some("7d"), "the settings in force stay");
    stop_daemon(d.child.take(), &mp, Duration::from_secs(20));
    drop(crashed);
}

/// READY=1 only once every front end started: a dashboard that cannot bind (the test holds its port) stops `serve`
/// before READY=1 is ever sent.
#[test]
fn no_ready_when_the_dashboard_cannot_bind() {
    let env = Env::new();
    let mp = env.path("mnt");
    fs::create_dir_all(&mp).expect("mkdir");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let sock = env.path("notify.sock");
    let mut notify = Notify::bind(&sock);
    let mut c = env.cmd();
    c.arg("serve")
        .arg(&mp)
        .args(["--http", &format!("127.0.0.1:{port}")])
        .env_remove("NIGHTFOX_CONFIG")
        .env("NOTIFY_SOCKET", &sock);
    let out = output_within(c, Duration::from_secs(60));
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("cannot listen"), "{err}");
    let mut buf = [0u8; 4096];
    notify.sock.set_nonblocking(true).expect("nonblocking");
    while let Ok(n) = notify.sock.recv(&mut buf) {
        notify.got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    assert!(!notify.got.iter().any(|m| m.lines().any(|l| l == "READY=1")), "{:?}", notify.got);
    assert!(!is_mounted(&mp));
    drop(taken);
}

/// A switch nightfox.toml turns on is turned off for one run by its `--no-` flag, and of the two flags the last
/// given wins: `[mount] allow_other` (seen in the mount's options) and `[secrets] ephemeral` (it says so at start).
#[test]
fn a_no_flag_turns_off_a_switch_the_file_turns_on() {
    let env = Env::new();
    fs::write(env.archive.join("nightfox.toml"), "[mount]\nallow_other = true\n\n[secrets]\nephemeral = true\n")
        .expect("write");
    let mp = env.path("mnt");
    let allowed = |mp: &Path| {
        let info = fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
        let line = info.lines().find(|l| l.split(' ').nth(4) == mp.to_str()).expect("the mount in mountinfo");
        line.split(' ').any(|field| field.split(',').any(|o| o == "allow_other"))
    };
    for (flags, want) in [
        (&[][..], true),
        (&["--no-allow-other"][..], false),
        (&["--no-allow-other", "--allow-other"][..], true),
        (&["--allow-other", "--no-allow-other"][..], false),
    ] {
        let mut m = Mount::start(&env, &mp, flags);
        assert_eq!(allowed(&mp), want, "{flags:?}");
        assert!(m.stop().success());
    }
    let said = |args: &[&str]| text(&env.run(args).stderr).contains("new source passwords are kept in memory only");
    assert!(said(&["couple", "list"]), "the file turns ephemeral secrets on");
    assert!(!said(&["--no-ephemeral-secrets", "couple", "list"]));
    assert!(said(&["--no-ephemeral-secrets", "--ephemeral-secrets", "couple", "list"]));
}
