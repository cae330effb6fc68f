//! systemd's notify protocol for `serve` (`Type=notify`); every call is a no-op without `$NOTIFY_SOCKET`. [`init`]
//! takes `$NOTIFY_SOCKET`, `$WATCHDOG_USEC` and `$WATCHDOG_PID` out of the environment at start (child processes
//! such as fusermount3 must not inherit them), so the datagrams are sent here (the `sd-notify` crate reads the
//! variable at every call) with the crate's message format. `READY=1` is sent once every front end started and the
//! FUSE mount answers (its `statfs` reports FUSE and its root lists: the session loop serves requests), never
//! before; `STATUS=` carries a short human line; `WATCHDOG=1`
//! is sent every half of `$WATCHDOG_USEC` while the daemon's supervisor loop beats ([`Heartbeat`]): a supervisor
//! that is stuck stops the pings and systemd restarts the service; a SIGHUP reload is framed by
//! `RELOADING=1` + `MONOTONIC_USEC` and `READY=1`; a stop sends `STOPPING=1`.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use sd_notify::NotifyState;

/// FUSE's `f_type` in `statfs`.
const FUSE_SUPER_MAGIC: i64 = 0x6573_5546;

static READY: AtomicBool = AtomicBool::new(false);

/// What the service manager gave this process: its socket and the watchdog period.
struct Manager {
    socket: Option<OsString>,
    watchdog: Option<Duration>,
}

static MANAGER: OnceLock<Manager> = OnceLock::new();

/// Takes `$NOTIFY_SOCKET`, `$WATCHDOG_USEC` and `$WATCHDOG_PID` out of the environment, keeping their values for
/// this process. Call once at start, before any thread is spawned (it changes the environment).
pub fn init() {
    let socket = std::env::var_os("NOTIFY_SOCKET").filter(|s| !s.is_empty());
    // SAFETY: called by `cli::main` at start, before any thread is spawned.
    let watchdog = unsafe { sd_notify::watchdog_enabled_and_unset_env() };
    std::env::remove_var("NOTIFY_SOCKET");
    let _ = MANAGER.set(Manager { socket, watchdog });
}

/// The manager's settings: those [`init`] took, else (a library caller) the environment's, left in place.
fn manager() -> &'static Manager {
    MANAGER.get_or_init(|| Manager {
        socket: std::env::var_os("NOTIFY_SOCKET").filter(|s| !s.is_empty()),
        watchdog: sd_notify::watchdog_enabled(),
    })
}

/// One datagram to the socket (a path, or `@name` in the abstract namespace).
fn send_to(socket: &OsStr, msg: &str) -> std::io::Result<()> {
    let sock = UnixDatagram::unbound()?;
    match socket.as_bytes().strip_prefix(b"@") {
        Some(name) => {
            use std::os::linux::net::SocketAddrExt;
            sock.connect_addr(&std::os::unix::net::SocketAddr::from_abstract_name(name)?)?;
        }
        None => sock.connect(socket)?,
    }
    if sock.send(msg.as_bytes())? != msg.len() {
        return Err(std::io::Error::new(std::io::ErrorKind::WriteZero, "incomplete write"));
    }
    Ok(())
}

fn send(states: &[NotifyState<'_>]) {
    let Some(socket) = &manager().socket else { return };
    let msg: String = states.iter().map(|s| format!("{s}\n")).collect();
    if let Err(e) = send_to(socket, &msg) {
        tracing::warn!("cannot notify the service manager ($NOTIFY_SOCKET): {e}");
    }
}

/// `STATUS=line`.
pub fn status(line: &str) {
    send(&[NotifyState::Status(line)]);
}

/// `READY=1` with a status line.
pub fn ready(line: &str) {
    READY.store(true, Ordering::SeqCst);
    send(&[NotifyState::Ready, NotifyState::Status(line)]);
}

/// `RELOADING=1` with the monotonic clock, as `Type=notify-reload` wants it (plain `notify` accepts it too).
pub fn reloading() {
    match NotifyState::monotonic_usec_now() {
        Ok(now) => send(&[NotifyState::Reloading, now, NotifyState::Status("reloading nightfox.toml")]),
        Err(_) => send(&[NotifyState::Reloading]),
    }
}

/// After a reload: `READY=1` again (only if the start's was sent: a reload before the mount answered stays
/// silent, the start sends it).
pub fn reloaded(line: &str) {
    if READY.load(Ordering::SeqCst) {
        ready(line);
    }
}

/// `STOPPING=1`.
pub fn stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
}

/// The supervisor loop's pulse: [`Heartbeat::beat`] once per round.
pub struct Heartbeat {
    start: Instant,
    last_ms: AtomicU64,
}

impl Default for Heartbeat {
    fn default() -> Self {
        Heartbeat { start: Instant::now(), last_ms: AtomicU64::new(0) }
    }
}

impl Heartbeat {
    pub fn beat(&self) {
        self.last_ms.store(self.start.elapsed().as_millis() as u64, Ordering::SeqCst);
    }

    fn age(&self) -> Duration {
        self.start.elapsed().saturating_sub(Duration::from_millis(self.last_ms.load(Ordering::SeqCst)))
    }
}

/// Whether the FUSE mount at `mp` answers: `statfs` says FUSE (it waits for the session's INIT) and the root lists.
pub fn mount_answers(mp: &Path) -> bool {
    #[allow(clippy::unnecessary_cast)]
    let fuse = rustix::fs::statfs(mp).is_ok_and(|st| st.f_type as i64 == FUSE_SUPER_MAGIC);
    fuse && std::fs::read_dir(mp).is_ok_and(|mut d| d.next().is_none_or(|e| e.is_ok()))
}

/// The notify thread of `serve`: waits (steps of 50 ms, until `stop`) for `up()` (every front end started and the
/// mount answers), sends `READY=1` with `line()`, then pings the watchdog every half of `$WATCHDOG_USEC` while
/// `beat` is fresh (younger than a ping period, at least a second), until `stop`. Without `$NOTIFY_SOCKET` it
/// returns at once.
pub fn run(up: impl Fn() -> bool, stop: &AtomicBool, beat: &Heartbeat, line: impl Fn() -> String) {
    if manager().socket.is_none() {
        return;
    }
    while !up() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    if stop.load(Ordering::SeqCst) {
        return;
    }
    ready(&line());
    let Some(timeout) = manager().watchdog else { return };
    let period = (timeout / 2).max(Duration::from_millis(10));
    let fresh = period.max(Duration::from_secs(1));
    let mut next = Instant::now();
    let mut silent = false;
    while !stop.load(Ordering::SeqCst) {
        if Instant::now() >= next {
            next = Instant::now() + period;
            if beat.age() < fresh {
                send(&[NotifyState::Watchdog]);
                silent = false;
            } else if !silent {
                tracing::error!(
                    "the supervisor loop has not run for {:?}: watchdog pings stop (systemd restarts the service)",
                    beat.age()
                );
                silent = true;
            }
        }
        std::thread::sleep((next.saturating_duration_since(Instant::now())).min(Duration::from_millis(50)));
    }
}
