//! `nightfox serve`: the long-running daemon of an archive. It mounts the archive (the `frontends::fuse` front end,
//! on the main thread) and keeps every enabled network source flowing in, one poller thread per source:
//!
//! - each pass lists the share; a share that answers is `connected` again, and any session of that source left
//!   paused, cancelled or interrupted is resumed first. A resume that fails while the share still lists (the
//!   session paused again on something of its own, or cannot be resumed) is an event and the pass goes on; only a
//!   share that is gone ends it. Then, if the listing shows files that earlier passes have not dealt with (not
//!   imported, duplicate or failed with the same path, size and mtime, nor held by an unfinished session), one
//!   import session runs (`Importer::import_source`, post-import actions included). A pass with nothing new
//!   creates no session, so a stuck session does not spawn one per pass.
//! - a pass that fails backs off (the interval doubled per failure in a row, up to a cap), keeping the source's
//!   `connection_state`, `consecutive_failures` and `last_error` current and an event per failure. Sources never
//!   wait for each other (two sources of one couple take turns through the couple lock) nor for the mount.
//! - every pass, scheduled scrub and daily gc is a job of the catalog's queue (`crate::jobs`): claimed first (a
//!   daemon whose claim fails, because another daemon of a shared catalog holds it or it is not due, skips that
//!   round), heartbeated while it runs, then queued again for its next time (a source's interval or backoff, the
//!   scrub's retry, the next day). The supervisor's rounds reap the jobs of daemons that died (no heartbeat for
//!   the stale limit, `$NIGHTFOX_JOB_STALE`, 60 s); on SQLite, which has one daemon, a start takes back at once
//!   whatever the previous daemon left running. Several `serve` processes on one Postgres catalog so share the
//!   sources, the scrub and the gc, and never run one twice at once.
//! - SIGHUP re-reads the source list (new or re-enabled sources start, removed or disabled ones stop).
//! - SIGTERM/SIGINT: no new work; a running copy stops at its next chunk through the importer's cancel flag (the
//!   session is `cancelled`, resumable, and the next start resumes it); the mount is unmounted; exit 0.
//!
//! One daemon per archive: `locks/daemon.lock` (flock, released by the kernel if the process dies, so a stale
//! lock is simply taken over) holds a JSON note with the pid, the command and the mount point. `nightfox mount`
//! takes the same lock. It is let go as soon as the mount is gone and `/ingest` has finished its commits (see
//! `frontends::serve`), while the pollers still stop: a new daemon may start at once. `nightfox status` reads the catalog, the notes and `/proc/locks` (who holds a lock,
//! without taking it): no IPC.

use std::collections::{HashMap, HashSet};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tracing::{debug, info, warn};

use crate::archive::{Archive, LockFile};
use crate::catalog::jobs::JobOutcome;
use crate::catalog::{Catalog, CatalogBackend, NetworkSource, Session, SessionStatus};
use crate::error::{Error, Result};
use crate::frontends::fuse::{FuseMount, MountOptions};
use crate::frontends::FrontEnd;
use crate::ingest::{Importer, Quiet, Summary};
use crate::jobs::{Claim, JobsConn, Reaper, Worker};
use crate::sources::{EntryKind, SourceEntry};

/// The lock name in `locks/` (so `locks/daemon.lock`).
pub const DAEMON_LOCK: &str = "daemon";

/// What `nightfox serve` was asked to do.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    pub mountpoint: PathBuf,
    pub mount: MountOptions,
    /// Time between two passes over a source that answers.
    pub poll_interval: Duration,
    /// The scheduled scrub, if any.
    pub scrub: Option<ScrubSchedule>,
    /// Time between two garbage collections (`[gc] every` in nightfox.toml; a day by default).
    pub gc_every: Duration,
    /// `--http ADDR`: the dashboard (web page and JSON API, `frontends::http`) on this address.
    pub http: Option<std::net::SocketAddr>,
    /// `--http-token-file FILE`: the 0600 file holding the dashboard's token (required off loopback).
    pub http_token_file: Option<PathBuf>,
}

/// The daemon's scheduled scrub: one every `every` (from the end of the last complete one), of at most `limit`
/// bytes (oldest-verified first), read at most at `rate` bytes per second.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScrubSchedule {
    pub every: Duration,
    pub limit: Option<u64>,
    pub rate: Option<u64>,
}

impl ScrubSchedule {
    /// The `serve --scrub-*` flags over the archive's `[scrub]` keys; None when neither sets `every` (a limit or
    /// rate without it is refused: it would do nothing).
    pub fn resolve(
        config: Option<&crate::archive::config::Scrub>,
        every: Option<Duration>,
        limit: Option<u64>,
        rate: Option<u64>,
    ) -> Result<Option<ScrubSchedule>> {
        let key = |v: Option<&String>, name: &str, parse: fn(&str) -> Result<u64>| -> Result<Option<u64>> {
            v.map(|t| parse(t).map_err(|e| Error::Invalid(format!("archive.toml [scrub] {name}: {e}")))).transpose()
        };
        let cfg_every = config
            .and_then(|c| c.every.as_ref())
            .map(|t| parse_duration(t).map_err(|e| Error::Invalid(format!("archive.toml [scrub] every: {e}"))))
            .transpose()?;
        let limit = match limit {
            Some(l) => Some(l),
            None => key(config.and_then(|c| c.limit.as_ref()), "limit", parse_size)?,
        };
        let rate = match rate {
            Some(r) => Some(r),
            None => key(config.and_then(|c| c.rate.as_ref()), "rate", parse_rate)?,
        };
        match every.or(cfg_every) {
            Some(every) => Ok(Some(ScrubSchedule { every, limit, rate })),
            None if limit.is_some() || rate.is_some() => Err(Error::Invalid(
                "a scrub limit or rate needs a schedule: --scrub-every (or every in archive.toml [scrub])".into(),
            )),
            None => Ok(None),
        }
    }
}

// ---- durations -------------------------------------------------------------------------------------------------

/// Parses `500ms`, `60s`, `5m`, `1h`, `30d`, `2w`, `1h30m`, `1.5s` (humantime), or a bare number of seconds
/// (decimals allowed). Less than 1ms (zero) and more than some 31 years are refused, and so are humantime's months
/// and years (`1M` would be a month where a minute was meant; a month is not a fixed span anyway).
pub fn parse_duration(s: &str) -> Result<Duration> {
    let bad = || Error::Invalid(format!("{s:?} is not a duration (like 500ms, 60s, 5m, 1h or 30d)"));
    let t = s.trim();
    let d = if !t.is_empty() && t.bytes().all(|c| c.is_ascii_digit() || c == b'.') {
        let n: f64 = t.parse().map_err(|_| bad())?;
        Duration::try_from_secs_f64(n).map_err(|_| bad())?
    } else {
        let mut units = t.split(|c: char| c.is_ascii_digit() || c == '.' || c.is_whitespace());
        if units.any(|u| matches!(u, "M" | "month" | "months" | "y" | "yr" | "yrs" | "year" | "years")) {
            return Err(Error::Invalid(format!(
                "{s:?}: months and years are not taken as durations (`M` is a month, `m` a minute): give days, like 30d"
            )));
        }
        humantime::parse_duration(t).map_err(|_| bad())?
    };
    if d > Duration::from_secs(1_000_000_000) {
        return Err(bad());
    }
    if d < Duration::from_millis(1) {
        return Err(Error::Invalid(format!("{s:?}: a duration must be at least 1ms")));
    }
    Ok(d)
}

/// [`parse_size`], where a bare `0` is taken (no cache, no minimum).
pub fn parse_size_or_zero(s: &str) -> Result<u64> {
    if s.trim() == "0" {
        return Ok(0);
    }
    parse_size(s)
}

/// Parses a byte count: `500GB`, `1.5TB`, `64MiB`, `4096` (bytes); decimal (kB, MB, GB, TB) and binary (KiB,
/// MiB, GiB, TiB) units, any case. Zero is refused.
pub fn parse_size(s: &str) -> Result<u64> {
    let bad = || Error::Invalid(format!("{s:?} is not a size (like 500GB, 64MiB or 4096)"));
    let t = s.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().map_err(|_| bad())?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "m" | "mb" => 1e6,
        "g" | "gb" => 1e9,
        "t" | "tb" => 1e12,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        "tib" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return Err(bad()),
    };
    let bytes = n * mult;
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return Err(bad());
    }
    if bytes < 1.0 {
        return Err(Error::Invalid(format!("{s:?}: a size must be at least 1 byte")));
    }
    Ok(bytes as u64)
}

/// Parses a rate in bytes per second: a size with an optional `/s` (`100MB/s`, `50MiB`).
pub fn parse_rate(s: &str) -> Result<u64> {
    let t = s.trim();
    parse_size(t.strip_suffix("/s").unwrap_or(t))
}

/// `750ms`, `12s`, `4m30s`, `2h5m`, `1d2h`: the two largest units, no spaces (humantime's `format_duration` writes
/// every unit down to the nanosecond, `1day 2h 5s 120ms`, too long for `status` lines and ETAs).
pub fn format_duration(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        return format!("{}ms", d.as_millis());
    }
    let s = d.as_secs();
    if s >= 86400 {
        return match ((s / 86400), (s % 86400) / 3600) {
            (d, 0) => format!("{d}d"),
            (d, h) => format!("{d}d{h}h"),
        };
    }
    match (s / 3600, (s % 3600) / 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, 0) => format!("{m}m"),
        (0, m, s) => format!("{m}m{s}s"),
        (h, 0, _) => format!("{h}h"),
        (h, m, _) => format!("{h}h{m}m"),
    }
}

/// The longest wait between passes of a failing source: `$NIGHTFOX_BACKOFF_CAP`, else 16 intervals but at most
/// 15 minutes (and never less than one interval).
fn backoff_cap(interval: Duration) -> Duration {
    cap_of(interval, std::env::var("NIGHTFOX_BACKOFF_CAP").ok().and_then(|v| parse_duration(&v).ok()))
}

/// The cap: the one set (never under one interval), else 16 intervals but at most 15 minutes.
fn cap_of(interval: Duration, set: Option<Duration>) -> Duration {
    match set {
        Some(d) => d.max(interval),
        None => interval.saturating_mul(16).min(interval.max(Duration::from_secs(15 * 60))),
    }
}

/// The wait after `streak` failures in a row: the interval doubled per failure, capped.
fn backoff(interval: Duration, cap: Duration, streak: u32) -> Duration {
    interval.saturating_mul(2u32.saturating_pow(streak.min(24))).min(cap).max(interval)
}

// ---- the daemon lock -------------------------------------------------------------------------------------------

/// The note a daemon (serve or mount) leaves in `locks/daemon.lock`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DaemonNote {
    pub pid: u32,
    /// `serve` or `mount`.
    pub command: String,
    pub mountpoint: String,
    pub started_at: i64,
    /// Seconds between scheduled scrubs, when the daemon runs them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scrub_every: Option<u64>,
}

/// The held daemon lock; its note is cleared when dropped (the flock itself goes with the descriptor).
pub struct DaemonLock {
    lock: LockFile,
    note: DaemonNote,
}

impl DaemonLock {
    /// Rewrites the note with a new scrub schedule (a SIGHUP changed it).
    fn set_scrub_every(&mut self, every: Option<Duration>) -> Result<()> {
        self.note.scrub_every = every.map(|d| d.as_secs());
        self.write_note()
    }

    /// Writes the note for others to read (`status`, a second daemon's refusal).
    fn write_note(&mut self) -> Result<()> {
        let json = serde_json::to_string(&self.note).map_err(|e| Error::Invalid(format!("daemon lock note: {e}")))?;
        self.lock.write_note(&json)
    }
}

impl Drop for DaemonLock {
    fn drop(&mut self) {
        if let Err(e) = self.lock.write_note("") {
            warn!("cannot clear the daemon lock note: {e}");
        }
    }
}

fn lock_path(archive: &Archive) -> PathBuf {
    archive.lock_path(DAEMON_LOCK)
}

/// `p` made absolute against the working directory (as given when that fails).
pub fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// Takes the archive's daemon lock for `command` (serve or mount) serving at `serving` (a mount point, an
/// `nfs://` address, the archive for a maintenance command); fails at once, naming the holder's pid, when another
/// process serves or mounts the archive. A lock left by a dead process is free again.
pub fn lock_daemon(
    archive: &Archive,
    serving: &str,
    command: &str,
    scrub_every: Option<Duration>,
) -> Result<DaemonLock> {
    match archive.try_lock(DAEMON_LOCK)? {
        Some(lock) => {
            let note = DaemonNote {
                pid: std::process::id(),
                command: command.to_string(),
                mountpoint: serving.to_string(),
                started_at: crate::catalog::now(),
                scrub_every: scrub_every.map(|d| d.as_secs()),
            };
            let mut held = DaemonLock { lock, note };
            held.write_note()?;
            Ok(held)
        }
        None => Err(Error::ArchiveBusy { archive: archive.root.clone(), holder: describe_holder(archive) }),
    }
}

/// Reads the note of the daemon lock (None when there is none, or it is empty: no daemon, or a clean stop).
pub fn read_daemon_note(path: &Path) -> Option<DaemonNote> {
    LockFile::read_note(path).filter(|n| !n.is_empty()).and_then(|n| serde_json::from_str(&n).ok())
}

fn describe_holder(archive: &Archive) -> String {
    let path = lock_path(archive);
    // The holder writes its note right after taking the lock: give it a moment.
    let deadline = Instant::now() + Duration::from_millis(500);
    loop {
        if let Some(n) = read_daemon_note(&path) {
            return format!("`nightfox {}` (pid {}, mounted at {:?})", n.command, n.pid, n.mountpoint);
        }
        if Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    match crate::lockfile::holder(&path) {
        Some(Some(pid)) => format!("pid {pid}"),
        _ => "another process".to_string(),
    }
}

pub(crate) fn pid_alive(pid: u32) -> bool {
    let Some(pid) = i32::try_from(pid).ok().and_then(rustix::process::Pid::from_raw) else { return false };
    // Signal 0 only checks that the process exists; EPERM: it does, as another user's.
    matches!(rustix::process::test_kill_process(pid), Ok(()) | Err(rustix::io::Errno::PERM))
}

// ---- the daemon ------------------------------------------------------------------------------------------------

struct Ctx {
    root: PathBuf,
    /// The catalog's backend: where the jobs' heartbeats and the reaper get their connections.
    backend: Arc<dyn CatalogBackend>,
    /// The jobs' stale limit (see `crate::jobs`).
    stale: Duration,
    /// What a SIGHUP may change (nightfox.toml).
    live: parking_lot::Mutex<Live>,
    /// The supervisor loop's pulse: the systemd watchdog pings only while it beats.
    beat: crate::daemon::notify::Heartbeat,
    /// Sources polled, for the status line.
    sources: std::sync::atomic::AtomicUsize,
    /// The daemon lock (its note names the scrub schedule); taken when the mount is gone.
    lock: Arc<parking_lot::Mutex<Option<DaemonLock>>>,
    cancel: Arc<AtomicBool>,
    hup: Arc<AtomicBool>,
    /// True while the main thread is inside the mount.
    mounted: AtomicBool,
    mountpoint: PathBuf,
}

/// The settings of a running daemon that a SIGHUP reload may change.
#[derive(Clone, Copy, Debug)]
struct Live {
    interval: Duration,
    cap: Duration,
    scrub: Option<ScrubSchedule>,
    gc_every: Duration,
}

impl Ctx {
    fn interval(&self) -> Duration {
        self.live.lock().interval
    }

    fn cap(&self) -> Duration {
        self.live.lock().cap
    }

    /// `serving /mnt/footage, 3 sources`: systemd's STATUS line.
    fn status_line(&self) -> String {
        let n = self.sources.load(Ordering::SeqCst);
        format!("serving {}, {n} source{}", self.mountpoint.display(), if n == 1 { "" } else { "s" })
    }

    /// SIGHUP: nightfox.toml again; what changes live is applied, the rest logged as needing a restart, and an
    /// invalid file keeps every setting as it was.
    fn reload(&self) {
        // Only archive.toml's [scrub] is wanted: its file, not a whole archive (blob store, catalog) opened again.
        let scrub_cfg = crate::archive::config::Config::load(&self.root).ok().and_then(|c| c.scrub);
        let r = match crate::daemon::config::reload(scrub_cfg.as_ref()) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!("SIGHUP: nightfox.toml not applied, the settings stay as they were: {e}");
                return;
            }
        };
        let s = r.settings;
        if let Err(e) = crate::daemon::config::set_log_filter(&s.log) {
            warn!("SIGHUP: {e}");
        }
        let new = Live {
            interval: s.poll_interval,
            cap: cap_of(s.poll_interval, s.backoff_cap),
            scrub: s.scrub,
            gc_every: s.gc_every,
        };
        let old = std::mem::replace(&mut *self.live.lock(), new);
        if old.scrub.map(|s| s.every) != new.scrub.map(|s| s.every) {
            if let Some(l) = self.lock.lock().as_mut() {
                if let Err(e) = l.set_scrub_every(new.scrub.map(|s| s.every)) {
                    warn!("SIGHUP: cannot note the new scrub schedule: {e}");
                }
            }
        }
        let every = |s: Option<ScrubSchedule>| s.map_or("off".to_string(), |s| format_duration(s.every));
        info!(
            "SIGHUP: nightfox.toml applied: poll interval {} -> {}, backoff cap {} -> {}, scrub every {} -> {}, gc \
             every {} -> {}, log {:?}",
            format_duration(old.interval),
            format_duration(new.interval),
            format_duration(old.cap),
            format_duration(new.cap),
            every(old.scrub),
            every(new.scrub),
            format_duration(old.gc_every),
            format_duration(new.gc_every),
            s.log
        );
        if !r.restart.is_empty() {
            warn!("SIGHUP: changes to {} apply at the next start (systemctl restart nightfox)", r.restart.join(", "));
        }
    }
}

/// Runs the daemon until SIGINT/SIGTERM or an external unmount. Returns once the mount is gone and every source
/// poller has stopped at a safe point.
pub fn serve(archive: Archive, opts: &ServeOptions) -> Result<()> {
    serve_on(archive, opts, vec![mount_of(opts)])
}

/// The FUSE mount of `opts` as a front end (the first of [`serve_on`]'s).
pub fn mount_of(opts: &ServeOptions) -> Box<dyn FrontEnd> {
    Box::new(FuseMount::new(&absolute(&opts.mountpoint), opts.mount))
}

/// [`serve`] through the given front ends (the mount first; an export may run beside it).
pub fn serve_on(archive: Archive, opts: &ServeOptions, mut front_ends: Vec<Box<dyn FrontEnd>>) -> Result<()> {
    // The dashboard's address and token are checked before anything starts (a one-line error, exit 2).
    if let Some(listen) = opts.http {
        let token_file = opts.http_token_file.as_deref();
        front_ends.push(Box::new(crate::frontends::http::Dashboard::new(listen, token_file, &archive.root)?));
    }
    let started = Arc::new(AtomicBool::new(false));
    // SIGHUP first, so that its default action (exit) can never apply.
    let hup = Arc::new(AtomicBool::new(false));
    let cancel = Arc::new(AtomicBool::new(false));
    let signals = [
        (signal_hook::consts::SIGHUP, &hup),
        (signal_hook::consts::SIGINT, &cancel),
        (signal_hook::consts::SIGTERM, &cancel),
    ];
    for (sig, flag) in signals {
        signal_hook::flag::register(sig, Arc::clone(flag))
            .map_err(|e| Error::Invalid(format!("cannot install the handler of signal {sig}: {e}")))?;
    }
    let mp = absolute(&opts.mountpoint);
    let lock = Arc::new(parking_lot::Mutex::new(Some(lock_daemon(
        &archive,
        &mp.to_string_lossy(),
        "serve",
        opts.scrub.map(|s| s.every),
    )?)));
    for f in &front_ends {
        f.check()?;
    }
    // A SQLite catalog has this one daemon (under the lock just taken): any job still running was left by a
    // daemon that died, and is taken back at once. A shared catalog's are left to the reaper's stale limit.
    if !crate::catalog::is_postgres(&archive.config.catalog.url) {
        match archive.catalog().and_then(|c| crate::jobs::reap_all(&*c)) {
            Ok(0) => {}
            Ok(n) => info!("took back {n} job(s) left running by a daemon that stopped"),
            Err(e) => warn!("cannot take back the jobs of a daemon that stopped: {e}"),
        }
    }
    let ctx = Arc::new(Ctx {
        root: archive.root.clone(),
        backend: archive.catalog_backend(),
        stale: crate::jobs::stale_limit(),
        live: parking_lot::Mutex::new(Live {
            interval: opts.poll_interval,
            cap: backoff_cap(opts.poll_interval),
            scrub: opts.scrub,
            gc_every: opts.gc_every,
        }),
        beat: Default::default(),
        sources: Default::default(),
        lock: Arc::clone(&lock),
        cancel: Arc::clone(&cancel),
        hup,
        mounted: AtomicBool::new(true),
        mountpoint: mp.clone(),
    });
    info!(archive = ?archive.root, mountpoint = ?mp, pid = std::process::id(), interval = %format_duration(ctx.interval()),
        "serving");
    let sup_ctx = Arc::clone(&ctx);
    let supervisor = std::thread::Builder::new()
        .name("nightfox-sources".into())
        .spawn(move || supervise(&sup_ctx))
        .map_err(|e| Error::Invalid(format!("cannot start the source supervisor: {e}")))?;
    // The archive is let go as soon as the mount is gone (the pollers stop at their next safe point meanwhile,
    // under their couple locks), so a new daemon can start at once.
    // The scrub thread runs with or without a schedule: a SIGHUP may set one.
    let c = Arc::clone(&ctx);
    let scrubber = std::thread::Builder::new()
        .name("nightfox-scrub".into())
        .spawn(move || scrub_schedule(&c))
        .map_err(|e| Error::Invalid(format!("cannot start the scheduled scrub: {e}")))?;
    // systemd (Type=notify): READY=1 once every front end started and the mount answers, then the watchdog; detached (it may wait on the
    // mount), it ends with the stop.
    let n = Arc::clone(&ctx);
    let all_started = Arc::clone(&started);
    std::thread::Builder::new()
        .name("nightfox-notify".into())
        .spawn(move || {
            // Every front end started (a dashboard or export that cannot bind never lets READY=1 out).
            let up = || all_started.load(Ordering::SeqCst) && crate::daemon::notify::mount_answers(&n.mountpoint);
            crate::daemon::notify::run(up, &n.cancel, &n.beat, || n.status_line())
        })
        .map_err(|e| Error::Invalid(format!("cannot start the systemd notifier: {e}")))?;
    let gc_ctx = Arc::clone(&ctx);
    let collector = std::thread::Builder::new()
        .name("nightfox-gc".into())
        .spawn(move || gc_daily(&gc_ctx))
        .map_err(|e| Error::Invalid(format!("cannot start the daily gc: {e}")))?;
    let result = crate::frontends::serve(
        archive,
        front_ends,
        move || started.store(true, Ordering::SeqCst),
        move || drop(lock.lock().take()),
    );
    ctx.mounted.store(false, Ordering::SeqCst);
    if !cancel.load(Ordering::SeqCst) {
        match &result {
            Ok(()) => info!("unmounted from outside; stopping"),
            Err(e) => warn!("the mount failed: {e}; stopping"),
        }
    }
    cancel.store(true, Ordering::SeqCst);
    if supervisor.join().is_err() {
        warn!("the source supervisor panicked");
    }
    if scrubber.join().is_err() {
        warn!("the scheduled scrub panicked");
    }
    if collector.join().is_err() {
        warn!("the daily gc panicked");
    }
    info!("stopped");
    result
}

struct Poller {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<()>,
}

fn supervise(ctx: &Arc<Ctx>) {
    let mut pollers: HashMap<i64, Poller> = HashMap::new();
    // Each round also takes back the jobs of workers (of any daemon of the catalog) that stopped heartbeating.
    let mut reaper = Reaper::new(Arc::clone(&ctx.backend), ctx.stale);
    reconcile(ctx, &mut pollers);
    ctx.sources.store(pollers.len(), Ordering::SeqCst);
    while !ctx.cancel.load(Ordering::SeqCst) {
        ctx.beat.beat();
        reaper.tick();
        if ctx.hup.swap(false, Ordering::SeqCst) {
            crate::daemon::notify::reloading();
            ctx.reload();
            info!("SIGHUP: reading the source list again");
            reconcile(ctx, &mut pollers);
            ctx.sources.store(pollers.values().filter(|p| !p.stop.load(Ordering::SeqCst)).count(), Ordering::SeqCst);
            crate::daemon::notify::reloaded(&ctx.status_line());
        }
        let finished: Vec<i64> = pollers.iter().filter(|(_, p)| p.handle.is_finished()).map(|(id, _)| *id).collect();
        for id in finished {
            if let Some(p) = pollers.remove(&id) {
                if p.handle.join().is_err() {
                    warn!(source = id, "the poller of source {id} panicked; SIGHUP starts it again");
                }
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    crate::daemon::notify::stopping();
    info!("stopping: no new work; running copies stop at a safe point");
    for p in pollers.values() {
        p.stop.store(true, Ordering::SeqCst);
    }
    for (id, p) in pollers {
        if p.handle.join().is_err() {
            warn!(source = id, "the poller of source {id} panicked");
        }
    }
    // The mount unmounts itself on SIGINT/SIGTERM; a signal that came before its handler was installed would leave
    // it up, so make sure.
    let start = Instant::now();
    while ctx.mounted.load(Ordering::SeqCst) && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(50));
    }
    if ctx.mounted.load(Ordering::SeqCst) {
        warn!("the mount is still up after the stop; unmounting {:?}", ctx.mountpoint);
        let _ = std::process::Command::new("fusermount3").arg("-u").arg("-z").arg(&ctx.mountpoint).status();
    }
}

// ---- the scheduled scrub ---------------------------------------------------------------------------------------

/// When the next scheduled scrub is due (seconds since the epoch, by [`crate::verify::clock`]): `every` after the
/// end of the last complete one; now when there is none (a first start, or the last one was stopped or failed).
pub fn next_scrub(cat: &Catalog, every: Duration) -> Result<i64> {
    Ok(match cat.last_scrub(Some("schedule"), true)? {
        Some(r) => r.finished_at.unwrap_or(r.started_at).saturating_add(every.as_secs() as i64),
        None => crate::verify::clock(),
    })
}

/// The scrub thread of `serve`: waits (in steps of at most 100 ms, watching the stop) until a scrub is due, claims
/// the `scrub` job (so the daemons of a shared catalog never scrub at once: one whose claim fails skips the
/// round), runs it throttled and recorded as `schedule` with the job's heartbeat beside it, and goes on until the
/// daemon stops; a running scrub stops at its next blob. A failed one is tried again after `every`, at most an
/// hour later (the job's next `run_after`, so every daemon waits for it).
fn scrub_schedule(ctx: &Ctx) {
    let archive = match Archive::open(&ctx.root) {
        Ok(a) => a,
        Err(e) => {
            warn!("scheduled scrub: cannot open the archive: {e}");
            return;
        }
    };
    let worker = Worker::new(Arc::clone(&ctx.backend), ctx.stale);
    if let Some(sched) = ctx.live.lock().scrub {
        info!(every = %format_duration(sched.every), worker = worker.id(), "scheduled scrubs");
    }
    while !ctx.cancel.load(Ordering::SeqCst) {
        // The schedule in force (a SIGHUP may change it, or set or remove it).
        let Some(sched) = ctx.live.lock().scrub else {
            std::thread::sleep(Duration::from_millis(100));
            continue;
        };
        let due = archive.catalog().and_then(|c| next_scrub(&c, sched.every));
        match due {
            Ok(t) if t <= crate::verify::clock() => match claim_scrub(&archive, &worker, sched, &ctx.cancel) {
                Ok(Some(claim)) => {
                    run_scrub(&archive, sched, claim);
                    continue;
                }
                Ok(None) => debug!("scheduled scrub: another daemon runs it, or its retry is not due"),
                Err(e) => warn!("scheduled scrub: cannot claim its job: {e}"),
            },
            Ok(_) => {}
            Err(e) => warn!("scheduled scrub: cannot read the last run: {e}"),
        }
        // Look again within a minute (a clock change, a run recorded by another process, a new schedule).
        let until = Instant::now() + Duration::from_secs(60);
        while !ctx.cancel.load(Ordering::SeqCst) && Instant::now() < until && ctx.live.lock().scrub == Some(sched) {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Claims the scrub job, and keeps the claim only if the scrub is still due once it is held (another daemon may
/// have finished one between the look and the claim).
fn claim_scrub(
    archive: &Archive,
    worker: &Worker,
    sched: ScrubSchedule,
    stop: &Arc<AtomicBool>,
) -> Result<Option<Claim>> {
    let cat = archive.catalog()?;
    let Some(claim) = worker.claim(&*cat, crate::jobs::SCRUB, crate::jobs::SCHEDULE, crate::catalog::now(), stop)?
    else {
        return Ok(None);
    };
    if next_scrub(&cat, sched.every)? > crate::verify::clock() {
        claim.finish(&*cat, JobOutcome::Released, None)?;
        return Ok(None);
    }
    Ok(Some(claim))
}

/// Runs one claimed scheduled scrub and finishes its job: done (the schedule itself is the last complete run in
/// `scrub_runs`), or failed with the retry as its next run.
fn run_scrub(archive: &Archive, sched: ScrubSchedule, claim: Claim) {
    let opts = crate::verify::Options {
        limit: sched.limit,
        rate: sched.rate,
        trigger: "schedule",
        stop: Some(claim.stop_flag()),
        ..Default::default()
    };
    let result = crate::verify::scrub(archive, &opts, &Quiet);
    let failure = match &result {
        Ok(r) => {
            let orphans = r.orphans.as_ref().map_or(0, |o| o.objects.len());
            let msg = format!(
                "scheduled scrub: {} blobs ({}) checked, {} problem(s), {orphans} orphan(s){}",
                r.blobs_checked,
                crate::human_bytes(r.bytes_checked as i64),
                r.problems.len(),
                if r.stopped { ", stopped" } else { "" }
            );
            if r.problems.is_empty() && orphans == 0 {
                info!("{msg}");
            } else {
                warn!("{msg}");
            }
            None
        }
        Err(e) => {
            warn!("scheduled scrub failed: {e}");
            Some(e.to_string())
        }
    };
    let now = crate::catalog::now();
    let (outcome, next) = match failure.as_deref() {
        Some(m) => (JobOutcome::Failed(m), crate::jobs::after(now, sched.every.min(Duration::from_secs(3600)))),
        // Stopped with the daemon (or its claim lost): not a run; the next daemon takes it at once.
        None if result.as_ref().is_ok_and(|r| r.stopped) => (JobOutcome::Released, now),
        None => (JobOutcome::Done, now),
    };
    if let Err(e) = archive.catalog().and_then(|c| claim.finish(&*c, outcome, Some(next))) {
        warn!("scheduled scrub: cannot finish its job: {e}");
    }
}

// ---- the daily gc ----------------------------------------------------------------------------------------------

/// How often the gc thread looks whether the `gc` job is due.
const GC_LOOK: Duration = Duration::from_secs(60);

/// The gc thread of `serve`: the `gc` job, queued a day after the first daemon of the catalog started and every
/// day after, purges the trash entries whose retention ended and frees what nothing references
/// ([`crate::gc::run`]). The thread looks every minute whether the job is due and claims it (one daemon of a shared
/// catalog runs it; the others skip that round); it waits in steps of 100 ms, so the daemon stops at once. A gc
/// that fails is logged and tried again the next day.
fn gc_daily(ctx: &Ctx) {
    let worker = Worker::new(Arc::clone(&ctx.backend), ctx.stale);
    let mut next = Instant::now();
    while !ctx.cancel.load(Ordering::SeqCst) {
        if Instant::now() < next {
            std::thread::sleep(Duration::from_millis(100));
            continue;
        }
        next = Instant::now() + GC_LOOK;
        if let Err(e) = gc_round(ctx, &worker) {
            warn!("daily gc: {e}");
        }
    }
}

/// One look at the `gc` job: when it is due and claimed, one gc run (on the archive opened afresh, so that a
/// changed `[trash]` retention applies), and the job queued for the next day.
fn gc_round(ctx: &Ctx, worker: &Worker) -> Result<()> {
    let cat = ctx.backend.connect()?;
    let every = ctx.live.lock().gc_every;
    let first = crate::jobs::after(crate::catalog::now(), every);
    let Some(claim) = worker.claim(&*cat, crate::jobs::GC, crate::jobs::DAILY, first, &ctx.cancel)? else {
        return Ok(());
    };
    let result = Archive::open(&ctx.root).and_then(|a| crate::gc::run(&a, &crate::gc::GcOptions::default()));
    let msg = match &result {
        Ok(r) => {
            info!("daily gc: {}", r.summary());
            None
        }
        Err(e) => {
            warn!("daily gc failed: {e}");
            Some(e.to_string())
        }
    };
    let outcome = msg.as_deref().map_or(JobOutcome::Done, JobOutcome::Failed);
    claim.finish(&*cat, outcome, Some(crate::jobs::after(crate::catalog::now(), every)))?;
    Ok(())
}

/// Starts a poller for each enabled source that has none; stops those of sources removed or disabled.
fn reconcile(ctx: &Arc<Ctx>, pollers: &mut HashMap<i64, Poller>) {
    let sources = match Archive::open(&ctx.root).and_then(|a| a.catalog()).and_then(|c| c.sources()) {
        Ok(s) => s,
        Err(e) => {
            warn!("cannot read the source list: {e}");
            return;
        }
    };
    let wanted: HashSet<i64> = sources.iter().filter(|s| s.enabled).map(|s| s.id).collect();
    for (id, p) in pollers.iter() {
        if !wanted.contains(id) && !p.stop.swap(true, Ordering::SeqCst) {
            info!(source = id, "source {id} was removed or disabled: stopping its poller");
        }
    }
    for s in sources.iter().filter(|s| s.enabled) {
        if pollers.contains_key(&s.id) {
            continue;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let (c, st, id) = (Arc::clone(ctx), Arc::clone(&stop), s.id);
        match std::thread::Builder::new().name(format!("source-{id}")).spawn(move || poll_source(&c, id, &st)) {
            Ok(handle) => {
                info!(source = id, "watching {}", s.url());
                pollers.insert(id, Poller { stop, handle });
            }
            Err(e) => warn!(source = id, "cannot start the poller of source {id}: {e}"),
        }
    }
}

/// How one pass ended.
enum Pass {
    /// The share answered; what there was to do is done.
    Done,
    /// Another import holds the couple: try again at the next interval, without counting a failure.
    Busy(String),
    /// The source was removed or disabled.
    Gone,
    /// The daemon is stopping.
    Stopped,
    Failed(Error),
}

/// The poller of one source: each round claims the source's job (kind `source`, keyed by its id) and, when it
/// gets it, runs one pass with the job's heartbeat beside it, then queues the job again for the next interval (the
/// backoff after a failure, the streak being the job's attempts since its last good pass). A round whose claim
/// fails (another daemon of the catalog passes the source now, or its next pass is not due) is skipped.
fn poll_source(ctx: &Ctx, id: i64, stop: &Arc<AtomicBool>) {
    let archive = match Archive::open(&ctx.root) {
        Ok(a) => a,
        Err(e) => {
            warn!(source = id, "cannot open the archive: {e}");
            return;
        }
    };
    let worker = Worker::new(Arc::clone(&ctx.backend), ctx.stale);
    let mut jobs = JobsConn::new(Arc::clone(&ctx.backend));
    let key = id.to_string();
    loop {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let claimed = jobs.with(|cat| worker.claim(&**cat, crate::jobs::SOURCE, &key, crate::catalog::now(), stop));
        let claim = match claimed {
            Ok(Some(c)) => c,
            Ok(None) => {
                debug!(source = id, "pass over source {id} skipped: another daemon runs it, or it is not due");
                if !pause(stop, ctx.interval()) {
                    return;
                }
                continue;
            }
            Err(e) => {
                warn!(source = id, "cannot claim the pass over source {id}: {e}");
                if !pause(stop, ctx.interval()) {
                    return;
                }
                continue;
            }
        };
        let outcome = match pass(&archive, id, claim.stop_flag()) {
            Ok(p) => p,
            Err(e) => classify(e),
        };
        if stop.load(Ordering::SeqCst) {
            finish_pass(&mut jobs, id, claim, JobOutcome::Released, None);
            return;
        }
        let now = crate::catalog::now();
        let delay = match outcome {
            Pass::Done => {
                let interval = ctx.interval();
                finish_pass(&mut jobs, id, claim, JobOutcome::Done, Some(crate::jobs::after(now, interval)));
                interval
            }
            Pass::Busy(why) => {
                debug!(source = id, "busy: {why}");
                let interval = ctx.interval();
                finish_pass(&mut jobs, id, claim, JobOutcome::Released, Some(crate::jobs::after(now, interval)));
                interval
            }
            Pass::Gone => {
                info!(source = id, "source {id} is disabled or removed: no longer polled");
                finish_pass(&mut jobs, id, claim, JobOutcome::Done, None);
                return;
            }
            // Not the daemon's stop (seen above): the claim was lost to the reaper, and whoever claims it now
            // resumes what this pass left.
            Pass::Stopped => {
                drop(claim);
                ctx.interval()
            }
            Pass::Failed(e) => {
                let streak = claim.failures_before().saturating_add(1);
                let delay = backoff(ctx.interval(), ctx.cap(), streak);
                record_failure(&archive, id, streak, &e, delay);
                let msg = e.to_string();
                finish_pass(&mut jobs, id, claim, JobOutcome::Failed(&msg), Some(crate::jobs::after(now, delay)));
                delay
            }
        };
        if !pause(stop, delay) {
            return;
        }
    }
}

/// Ends a pass's claim (logged when it cannot be: the reaper takes the job back after the stale limit).
fn finish_pass(jobs: &mut JobsConn, id: i64, claim: Claim, outcome: JobOutcome<'_>, next: Option<i64>) {
    if let Err(e) = jobs.with(|cat| claim.finish(&**cat, outcome, next)) {
        warn!(source = id, "cannot finish the job of source {id}'s pass: {e}");
    }
}

/// Waits `d` in steps of at most 100 ms; false when `stop` rose meanwhile.
fn pause(stop: &AtomicBool, d: Duration) -> bool {
    let until = Instant::now() + d;
    while Instant::now() < until {
        if stop.load(Ordering::SeqCst) {
            return false;
        }
        std::thread::sleep((until - Instant::now()).min(Duration::from_millis(100)));
    }
    !stop.load(Ordering::SeqCst)
}

fn classify(e: Error) -> Pass {
    match e {
        Error::Interrupted(_) => Pass::Stopped,
        Error::CoupleBusy { .. } => Pass::Busy(e.to_string()),
        Error::Disabled(_) => Pass::Gone,
        e => Pass::Failed(e),
    }
}

/// One pass over a source: does it answer; resume what it left unfinished; import what is new.
fn pass(archive: &Archive, id: i64, stop: &Arc<AtomicBool>) -> Result<Pass> {
    let cat = archive.catalog()?;
    let row = match cat.source(id) {
        Ok(r) => r,
        Err(Error::NotFound(_)) => return Ok(Pass::Gone),
        Err(e) => return Err(e),
    };
    if !row.enabled {
        return Ok(Pass::Gone);
    }
    let entries = list(archive, &row)?;
    if row.connection_state != "connected" || row.consecutive_failures != 0 {
        cat.set_source_state(id, "connected", Some(0), None)?;
        if row.connection_state != "connected" {
            info!(source = id, "source {id} answers again");
            cat.add_event(id, None, "info", "answers again")?;
        }
    }
    let unfinished: Vec<Session> = cat
        .sessions()?
        .into_iter()
        .filter(|s| s.source_id == Some(id) && !s.status.is_final() && s.can_resume)
        .collect();
    for s in unfinished {
        if stop.load(Ordering::SeqCst) {
            return Ok(Pass::Stopped);
        }
        info!(source = id, session = s.id, "resuming {} session {}", s.status.as_str(), s.id);
        cat.add_event(id, Some(s.id), "info", &format!("resuming {} session {}", s.status.as_str(), s.id))?;
        match Importer::new(archive, &Quiet, Arc::clone(stop)).resume(s.id) {
            Ok(summary) => log_summary(id, &summary),
            Err(Error::CancelledForGood(sid)) => return cancelled(archive, id, sid),
            // The daemon is stopping, or another import holds the couple: the pass ends as any would.
            Err(e @ (Error::Interrupted(_) | Error::CoupleBusy { .. })) => return Err(e),
            // Only a share that is gone ends the pass: the resume gave up on the source and it lists no more.
            Err(e) if (matches!(e, Error::SourcePaused { .. }) || e.is_transient()) && list(archive, &row).is_err() => {
                return Err(e)
            }
            // Stuck (it paused again on something of its own, or cannot be resumed): new files still come in.
            Err(e) => {
                let msg = format!("session {} could not be resumed ({e}); going on with new files", s.id);
                warn!(source = id, session = s.id, "{msg}");
                cat.add_event(id, Some(s.id), "error", &msg)?;
                cat.set_source_state(id, "connected", Some(0), None)?;
            }
        }
    }
    if stop.load(Ordering::SeqCst) {
        return Ok(Pass::Stopped);
    }
    if !has_new_work(&cat, &row, &entries)? {
        cat.touch_source_scan(id)?;
        return Ok(Pass::Done);
    }
    drop(cat);
    match Importer::new(archive, &Quiet, Arc::clone(stop)).import_source(id) {
        Ok(summary) => log_summary(id, &summary),
        Err(Error::CancelledForGood(sid)) => return cancelled(archive, id, sid),
        Err(e) => return Err(e),
    }
    Ok(Pass::Done)
}

/// A session of the source was cancelled for good while this pass ran it (`session cancel`, the dashboard): the
/// pass ends there, as one that did its work; the next one brings what the session did not finish.
fn cancelled(archive: &Archive, id: i64, session: i64) -> Result<Pass> {
    let msg =
        format!("session {session} was cancelled for good by the user; the next pass brings what it did not finish");
    info!(source = id, session, "{msg}");
    archive.catalog()?.add_event(id, Some(session), "info", &msg)?;
    Ok(Pass::Done)
}

/// `nightfox source test ID` (and the dashboard's Test button): connects to the source and looks at its folder;
/// on success the source is enabled and `connected`, on failure it is `failed` with the error; an event either way.
pub fn test_source(archive: &Archive, id: i64) -> Result<NetworkSource> {
    let cat = archive.catalog()?;
    let row = cat.source(id)?;
    let password = crate::secrets::password_of(&archive.root, &row)?;
    let result =
        crate::sources::open_network(&row, password).and_then(|src| src.stat(Path::new(&row.path)).map(|_| ()));
    match result {
        Ok(()) => {
            cat.set_source_enabled(id, true)?;
            cat.set_source_state(id, "connected", Some(0), None)?;
            cat.add_event(id, None, "info", "test passed; source enabled")?;
            Ok(row)
        }
        Err(e) => {
            let msg = e.to_string();
            cat.set_source_state(id, "failed", None, Some(&msg))?;
            cat.add_event(id, None, "error", &format!("test failed: {msg}"))?;
            Err(e)
        }
    }
}

/// Lists the source's folder (every network call bounded by the source's timeout).
fn list(archive: &Archive, row: &NetworkSource) -> Result<Vec<SourceEntry>> {
    let password = crate::secrets::password_of(&archive.root, row)?;
    let source = crate::sources::open_network(row, password)?;
    source.scan(&[PathBuf::from(&row.path)])
}

/// True when the listing holds a file that no earlier session of this source dealt with and that is not
/// catalogued from this source with the same path, size and mtime.
fn has_new_work(cat: &Catalog, row: &NetworkSource, entries: &[SourceEntry]) -> Result<bool> {
    let seen = cat.source_items_seen(row.id)?;
    let url = row.url();
    for e in entries {
        if let EntryKind::File { size, mtime_ns } = e.kind {
            let rel = e.rel.as_os_str().as_bytes();
            if seen.contains(&(rel.to_vec(), size, mtime_ns)) {
                continue;
            }
            if cat.already_imported(row.couple_id, &url, rel, size, mtime_ns)? {
                continue;
            }
            return Ok(true);
        }
    }
    Ok(false)
}

fn log_summary(id: i64, s: &Summary) {
    info!(
        source = id,
        session = s.session,
        "session {} {}: {} imported, {} duplicate, {} failed",
        s.session,
        s.status.as_str(),
        s.files_imported,
        s.files_duplicate,
        s.files_failed
    );
    for f in &s.failures {
        warn!(source = id, session = s.session, "failed: {f}");
    }
}

/// Keeps the source's state current after a failed pass, with an event saying when the next try comes.
fn record_failure(archive: &Archive, id: i64, streak: u32, e: &Error, delay: Duration) {
    let msg = e.to_string();
    let next = format_duration(delay);
    warn!(source = id, "pass over source {id} failed ({streak} in a row; next try in {next}): {msg}");
    let r = archive.catalog().and_then(|cat| {
        let row = cat.source(id)?;
        let failures = Some(row.consecutive_failures + 1);
        let (state, failures) = match e {
            // The importer recorded the pause and its count.
            Error::SourcePaused { .. } => ("paused", None),
            _ if row.connection_state == "paused" => ("paused", failures),
            _ if e.is_transient() => ("retrying", failures),
            _ => ("failed", failures),
        };
        cat.set_source_state(id, state, failures, Some(&msg))?;
        let level = if e.is_transient() || matches!(e, Error::SourcePaused { .. }) { "warn" } else { "error" };
        cat.add_event(id, None, level, &format!("pass failed ({streak} in a row; next try in {next}): {msg}"))
    });
    if let Err(e) = r {
        warn!(source = id, "cannot record the failure: {e}");
    }
}

// ---- status ----------------------------------------------------------------------------------------------------

/// What `nightfox status` shows.
#[derive(Clone, Debug, Serialize)]
pub struct Status {
    pub archive: String,
    pub daemon: DaemonStatus,
    pub sources: Vec<SourceState>,
    /// Open sessions (not completed, failed or cancelled for good): running, the live `/ingest` session,
    /// interrupted (nobody works on them) and paused (stopped with Ctrl-C included).
    pub sessions: Vec<SessionProgress>,
    /// The newest warnings and errors of the sources, newest first.
    pub last_errors: Vec<Problem>,
    /// Files stored from salvaged copies, with the ranges that could not be read.
    pub damaged_files: Vec<DamagedFile>,
    /// Blobs `verify` found damaged or missing (the mount answers EIO) and the files that use them: the first
    /// [`STATUS_BLOBS`] by hash (`nightfox verify --json` lists every one).
    pub unhealthy_blobs: Vec<UnhealthyBlob>,
    /// How many blobs are damaged or missing in all.
    pub unhealthy_total: i64,
    /// The newest finished scrub (`verify` or scheduled).
    pub last_scrub: Option<LastScrub>,
    /// When the next scheduled scrub is due: by the running daemon's schedule, else by archive.toml's `[scrub]`.
    pub next_scrub: Option<String>,
    /// The schedule `next_scrub` follows, as `7d`.
    pub scrub_every: Option<String>,
    /// The live jobs of the catalog's queue (every daemon's, on a shared catalog): source passes, the scheduled
    /// scrub, the daily gc.
    pub jobs: Vec<JobView>,
}

/// A live job, as `status` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct JobView {
    pub id: i64,
    /// `source` (key: the source's id), `scrub` or `gc`.
    pub kind: String,
    pub key: String,
    /// `queued` or `running`.
    pub state: String,
    /// When it may run next (a queued job).
    pub run_after: String,
    /// The worker (`host:pid:n`) running it.
    pub claimed_by: Option<String>,
    pub heartbeat_at: Option<String>,
    /// Claims since its last good run.
    pub attempts: i64,
    pub error: Option<String>,
}

/// How many unhealthy blobs `status` names.
pub const STATUS_BLOBS: u32 = 20;

#[derive(Clone, Debug, Serialize)]
pub struct DamagedFile {
    pub path: String,
    /// `[[start, len], ...]` stored as zeros.
    pub bad_ranges: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct UnhealthyBlob {
    pub hash: String,
    pub health: String,
    pub files: Vec<String>,
}

/// A finished scrub run, as `status` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct LastScrub {
    pub started_at: String,
    pub finished_at: String,
    /// `verify` or `schedule`.
    pub trigger: String,
    pub blobs_checked: i64,
    pub bytes_checked: i64,
    pub damaged: i64,
    pub missing: i64,
    pub orphans: i64,
    pub complete: bool,
    pub error: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct DaemonStatus {
    pub running: bool,
    pub pid: Option<u32>,
    /// `serve` or `mount`.
    pub command: Option<String>,
    pub mountpoint: Option<String>,
    pub started_at: Option<String>,
    /// A daemon that died without cleaning up (its lock is free again; the next start takes over).
    pub stale_pid: Option<u32>,
}

#[derive(Clone, Debug, Serialize)]
pub struct SourceState {
    pub id: i64,
    pub url: String,
    pub couple: String,
    pub enabled: bool,
    pub connection_state: String,
    pub consecutive_failures: i64,
    pub last_error: Option<String>,
    pub last_scan_at: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct SessionProgress {
    pub id: i64,
    pub couple: String,
    pub source_id: Option<i64>,
    pub source: String,
    pub status: SessionStatus,
    /// `running`, `ingest (live)` (the `/ingest` session of the running daemon), `interrupted` (its process is
    /// gone; `resume` or the daemon continues it) or `paused`.
    pub state: String,
    pub files_processed: i64,
    pub files_total: i64,
    pub bytes_processed: i64,
    /// Bytes of files being copied right now (their temp files).
    pub bytes_in_flight: u64,
    pub bytes_total: i64,
    /// When the current run (the first or a resume) started; speed and ETA are measured over it.
    pub run_started_at: Option<String>,
    /// Bytes copied in the current run (files skipped as duplicates excluded), copies in flight included.
    pub bytes_this_run: u64,
    /// `bytes_this_run` per second of the current run.
    pub bytes_per_sec: Option<u64>,
    /// The rest at that speed (none for `/ingest`, whose writers decide what comes).
    pub eta_seconds: Option<u64>,
    pub started_at: String,
    pub updated_at: String,
    pub error: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Problem {
    pub at: String,
    pub source_id: i64,
    pub session_id: Option<i64>,
    pub level: String,
    pub message: String,
}

/// The daemon's status, with the note of the running daemon (if it left one).
fn daemon_status(archive: &Archive) -> (DaemonStatus, Option<DaemonNote>) {
    let path = lock_path(archive);
    let note = read_daemon_note(&path);
    let holder = match crate::lockfile::holder(&path) {
        Some(h) => h.and_then(|p| u32::try_from(p).ok()),
        // No /proc/locks: trust the note if its process lives.
        None => note.as_ref().filter(|n| pid_alive(n.pid)).map(|n| n.pid),
    };
    let status = match holder {
        Some(pid) => {
            let note = note.filter(|n| n.pid == pid);
            let status = DaemonStatus {
                running: true,
                pid: Some(pid),
                command: note.as_ref().map(|n| n.command.clone()),
                mountpoint: note.as_ref().map(|n| n.mountpoint.clone()),
                started_at: note.as_ref().map(|n| crate::fs::rfc3339(n.started_at)),
                stale_pid: None,
            };
            return (status, note);
        }
        None => DaemonStatus {
            running: false,
            pid: None,
            command: None,
            mountpoint: None,
            started_at: None,
            stale_pid: note.map(|n| n.pid),
        },
    };
    (status, None)
}

/// Is this the `/ingest` session of the running daemon? Such a session stays open while its mount runs (only
/// the next start closes one left by a daemon that died, so an open one from before this daemon started is not
/// its own).
fn live_ingest(s: &Session, daemon: &DaemonStatus, note: Option<&DaemonNote>) -> bool {
    s.source.starts_with("ingest:") && daemon.running && note.is_none_or(|n| s.created_at >= n.started_at)
}

/// Is a process working on this session? Its couple lock is held and names it.
pub(crate) fn session_running(cat: &Catalog, s: &Session) -> bool {
    match cat.couple_lock_held(s.couple_id) {
        Some(true) => cat.couple_lock_holder(s.couple_id).and_then(|n| n.parse::<i64>().ok()) == Some(s.id),
        Some(false) => false,
        // Cannot tell: believe the catalog.
        None => true,
    }
}

/// Sizes of the temp files of a session's copies in progress.
fn in_flight(archive: &Archive, session: i64) -> u64 {
    let prefix = format!("s{session}-i");
    let Ok(rd) = std::fs::read_dir(archive.staging.dir()) else { return 0 };
    rd.flatten()
        .filter(|e| e.file_name().as_bytes().starts_with(prefix.as_bytes()))
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum()
}

/// Gathers the status from the catalog and the lock notes (works while the daemon runs, from any shell).
pub fn status(archive: &Archive) -> Result<Status> {
    Ok(status_with(archive, &archive.catalog()?)?.0)
}

/// [`status`] on a catalog the caller holds, with every session it read (the dashboard shows some that `status`
/// does not list).
pub(crate) fn status_with(archive: &Archive, cat: &Catalog) -> Result<(Status, Vec<Session>)> {
    let now = crate::catalog::now();
    let sources = cat
        .sources()?
        .into_iter()
        .map(|s| SourceState {
            id: s.id,
            url: s.url(),
            couple: s.couple.clone(),
            enabled: s.enabled,
            connection_state: s.connection_state.clone(),
            consecutive_failures: s.consecutive_failures,
            last_error: s.last_error.clone(),
            last_scan_at: s.last_scan_at.map(crate::fs::rfc3339),
        })
        .collect();
    let (daemon, note) = daemon_status(archive);
    let mut sessions = Vec::new();
    // Open sessions only: one cancelled for good (`session cancel`) is over, though not final.
    let all = cat.sessions()?;
    for s in all.iter().filter(|s| s.is_open()) {
        // Paused, or stopped with Ctrl-C (cancelled, resumable).
        let paused = matches!(s.status, SessionStatus::Paused | SessionStatus::Cancelled);
        let ingest = !paused && live_ingest(s, &daemon, note.as_ref());
        let running = !paused && !ingest && session_running(cat, s);
        let state = if paused {
            "paused"
        } else if ingest {
            "ingest (live)"
        } else if running {
            "running"
        } else {
            "interrupted"
        };
        let flying = if running { in_flight(archive, s.id) } else { 0 };
        // The current run: from its start, with what was processed or kept in `tmp/` before it left out (see
        // `Catalog::start_run`; sessions of an older catalog have no run recorded: their creation stands in).
        let (run_start, run_base) = match s.run_started_at {
            Some(t) => (t, s.run_bytes_start),
            None => (s.created_at, 0),
        };
        let this_run = (s.bytes_processed - s.bytes_duplicate - run_base + flying as i64).max(0) as u64;
        let (mut speed, mut eta) = (None, None);
        if (running || ingest) && this_run > 0 {
            let rate = this_run as f64 / (now - run_start).max(1) as f64;
            speed = Some(rate as u64);
            if running {
                let left = (s.bytes_total - s.bytes_processed).max(0) as f64 - flying as f64;
                eta = Some((left.max(0.0) / rate).ceil() as u64);
            }
        }
        sessions.push(SessionProgress {
            id: s.id,
            couple: s.couple.clone(),
            source_id: s.source_id,
            source: s.source.clone(),
            status: s.status,
            state: state.to_string(),
            files_processed: s.files_processed,
            files_total: s.files_total,
            bytes_processed: s.bytes_processed,
            bytes_in_flight: flying,
            bytes_total: s.bytes_total,
            run_started_at: s.run_started_at.map(crate::fs::rfc3339),
            bytes_this_run: this_run,
            bytes_per_sec: speed,
            eta_seconds: eta,
            started_at: crate::fs::rfc3339(s.created_at),
            updated_at: crate::fs::rfc3339(s.updated_at),
            error: s.error.clone(),
        });
    }
    let last_errors = cat
        .recent_problems(10)?
        .into_iter()
        .map(|e| Problem {
            at: crate::fs::rfc3339(e.at),
            source_id: e.source_id,
            session_id: e.session_id,
            level: e.level,
            message: e.message,
        })
        .collect();
    let mut damaged_files = Vec::new();
    for f in cat.damaged_files(None)? {
        let paths = crate::fs::tree_paths_of_blob(cat, &f.blob_hash)?;
        let path = paths.into_iter().next().unwrap_or_else(|| String::from_utf8_lossy(&f.original_path).into_owned());
        damaged_files.push(DamagedFile { path, bad_ranges: f.bad_ranges.unwrap_or_default() });
    }
    let mut unhealthy_blobs = Vec::new();
    let (unhealthy_total, first) = cat.unhealthy_blobs_first(STATUS_BLOBS)?;
    for (hash, health) in first {
        let files = crate::fs::tree_paths_of_blob(cat, &hash)?;
        unhealthy_blobs.push(UnhealthyBlob { hash, health, files });
    }
    let last_scrub = cat.last_scrub(None, false)?.map(|r| LastScrub {
        started_at: crate::fs::rfc3339(r.started_at),
        finished_at: crate::fs::rfc3339(r.finished_at.unwrap_or(r.started_at)),
        trigger: r.trigger,
        blobs_checked: r.blobs_checked,
        bytes_checked: r.bytes_checked,
        damaged: r.damaged,
        missing: r.missing,
        orphans: r.orphans,
        complete: r.complete,
        error: r.error,
    });
    let every = match note.as_ref().filter(|_| daemon.running) {
        Some(n) => n.scrub_every.map(Duration::from_secs),
        None => match archive.config.scrub.as_ref().and_then(|c| c.every.as_deref()) {
            Some(t) => parse_duration(t).ok(),
            None => None,
        },
    };
    let next_scrub = match every {
        Some(e) => Some(crate::fs::rfc3339(next_scrub(cat, e)?)),
        None => None,
    };
    let jobs = cat
        .live_jobs()?
        .into_iter()
        .map(|j| JobView {
            id: j.id,
            kind: j.kind,
            key: j.key,
            state: j.state.as_str().to_string(),
            run_after: crate::fs::rfc3339(j.run_after),
            claimed_by: j.claimed_by,
            heartbeat_at: j.heartbeat_at.map(crate::fs::rfc3339),
            attempts: j.attempts,
            error: j.error,
        })
        .collect();
    let status = Status {
        jobs,
        last_scrub,
        next_scrub,
        scrub_every: every.map(format_duration),
        archive: archive.root.to_string_lossy().into_owned(),
        daemon,
        sources,
        sessions,
        last_errors,
        damaged_files,
        unhealthy_blobs,
        unhealthy_total,
    };
    Ok((status, all))
}

/// A text on one line: newlines shown as `\n`.
pub(crate) fn one_line(s: &str) -> String {
    s.replace('\n', "\\n").replace('\r', "\\r")
}

impl Status {
    /// The text form of `nightfox status`.
    pub fn render(&self) -> String {
        let mut o = String::new();
        let d = &self.daemon;
        if d.running {
            o.push_str(&format!(
                "daemon: running, pid {}{}{}{}\n",
                d.pid.map(|p| p.to_string()).unwrap_or_default(),
                d.command.as_ref().map(|c| format!(", nightfox {c}")).unwrap_or_default(),
                d.mountpoint.as_ref().map(|m| format!(", mounted at {}", one_line(m))).unwrap_or_default(),
                d.started_at.as_ref().map(|t| format!(", since {t}")).unwrap_or_default(),
            ));
        } else {
            o.push_str("daemon: not running");
            if let Some(p) = d.stale_pid {
                o.push_str(&format!(" (pid {p} stopped without cleaning up; the next start takes over)"));
            }
            o.push('\n');
        }
        o.push_str("sources:\n");
        if self.sources.is_empty() {
            o.push_str("  none\n");
        }
        for s in &self.sources {
            o.push_str(&format!(
                "  {}\t{}\t{}\t{}\t{}\t{} failures\tlast scan {}{}\n",
                s.id,
                s.url,
                s.couple,
                if s.enabled { "enabled" } else { "disabled" },
                s.connection_state,
                s.consecutive_failures,
                s.last_scan_at.as_deref().unwrap_or("never"),
                s.last_error.as_ref().map(|e| format!("\tlast error: {}", one_line(e))).unwrap_or_default()
            ));
        }
        o.push_str("sessions:\n");
        if self.sessions.is_empty() {
            o.push_str("  none running or paused\n");
        }
        for s in &self.sessions {
            let done = s.bytes_processed + s.bytes_in_flight as i64;
            let mut line = format!(
                "  {}\t{}\t{}\t{}\t{}/{} files\t{}/{}",
                s.id,
                s.state,
                s.status.as_str(),
                s.couple,
                s.files_processed,
                s.files_total,
                crate::human_bytes(done),
                crate::human_bytes(s.bytes_total)
            );
            if let Some(v) = s.bytes_per_sec {
                line.push_str(&format!("\t{}/s", crate::human_bytes(v as i64)));
            }
            if let Some(eta) = s.eta_seconds {
                line.push_str(&format!("\tETA {}", format_duration(Duration::from_secs(eta))));
            }
            line.push_str(&format!("\t{}", s.source));
            if let Some(e) = &s.error {
                line.push_str(&format!("\t{}", one_line(e)));
            }
            o.push_str(&line);
            o.push('\n');
        }
        o.push_str("last errors:\n");
        if self.last_errors.is_empty() {
            o.push_str("  none\n");
        }
        for e in &self.last_errors {
            o.push_str(&format!(
                "  {}\tsource {}{}\t{}\t{}\n",
                e.at,
                e.source_id,
                e.session_id.map(|s| format!(" session {s}")).unwrap_or_default(),
                e.level,
                one_line(&e.message)
            ));
        }
        match &self.last_scrub {
            Some(r) => {
                let mut result = if r.damaged + r.missing + r.orphans == 0 {
                    "clean".to_string()
                } else {
                    format!("{} damaged, {} missing, {} orphan(s)", r.damaged, r.missing, r.orphans)
                };
                if let Some(e) = &r.error {
                    result.push_str(&format!(" ({})", one_line(e)));
                } else if !r.complete {
                    result.push_str(" (partial)");
                }
                o.push_str(&format!(
                    "last scrub: {} ({}), {} blobs ({}) checked: {result}\n",
                    r.finished_at,
                    r.trigger,
                    r.blobs_checked,
                    crate::human_bytes(r.bytes_checked)
                ));
            }
            None => o.push_str("last scrub: never\n"),
        }
        match (&self.next_scrub, &self.scrub_every) {
            (Some(t), Some(e)) => o.push_str(&format!("next scrub: {t} (every {e})\n")),
            _ => o.push_str("next scrub: not scheduled (serve --scrub-every, or [scrub] every in archive.toml)\n"),
        }
        if !self.jobs.is_empty() {
            o.push_str("jobs:\n");
        }
        for j in &self.jobs {
            let what = match (&j.claimed_by, &j.heartbeat_at) {
                (Some(w), Some(h)) => format!("running on {w}, heartbeat {h}"),
                (Some(w), None) => format!("running on {w}"),
                _ => format!("queued, due {}", j.run_after),
            };
            o.push_str(&format!(
                "  {} {}\t{what}\t{} attempt(s){}\n",
                j.kind,
                j.key,
                j.attempts,
                j.error.as_ref().map(|e| format!("\tlast error: {}", one_line(e))).unwrap_or_default()
            ));
        }
        if !self.damaged_files.is_empty() {
            o.push_str("damaged files (salvaged; unreadable ranges stored as zeros):\n");
            for d in &self.damaged_files {
                o.push_str(&format!("  {}\t{}\n", one_line(&d.path), d.bad_ranges));
            }
        }
        if !self.unhealthy_blobs.is_empty() {
            o.push_str("damaged or missing blobs (EIO until healed by a verified copy or `nightfox repair`):\n");
            for b in &self.unhealthy_blobs {
                let files: Vec<String> = b.files.iter().map(|f| one_line(f)).collect();
                o.push_str(&format!("  {}\t{}\t{}\n", b.hash, b.health, files.join(", ")));
            }
            let more = self.unhealthy_total - self.unhealthy_blobs.len() as i64;
            if more > 0 {
                o.push_str(&format!("  and {more} more (`nightfox verify --json` lists every one)\n"));
            }
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("60s").unwrap(), Duration::from_secs(60));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration(" 2 ").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("0.25").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("2h 5m").unwrap(), Duration::from_secs(7500));
        assert_eq!(parse_duration("1d12h").unwrap(), Duration::from_secs(36 * 3600));
        assert_eq!(parse_duration("1w2d").unwrap(), Duration::from_secs(9 * 86400));
        assert_eq!(parse_duration("1m").unwrap(), Duration::from_secs(60));
        // humantime's months and years: `1M` is a month, not a minute.
        for bad in ["1M", "1y", "2months", "1month", "1 year", "3years", "1yr", "2yrs", "1h1M", "1M 5m"] {
            let e = parse_duration(bad).unwrap_err().to_string();
            assert!(e.contains("30d") && !e.contains('\n'), "{bad:?}: {e}");
        }
        for bad in ["", "s", "0s", "0", "-1s", "5 parsecs", "1.2.3s", "1.2.3", "1e3s", "ms500", "500us", "100y"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(format_duration(Duration::from_millis(200)), "200ms");
        assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(format_duration(Duration::from_secs(3600 * 2 + 300)), "2h5m");
    }

    #[test]
    fn sizes_rates_and_days() {
        assert_eq!(parse_size("500GB").unwrap(), 500_000_000_000);
        assert_eq!(parse_size("64MiB").unwrap(), 64 << 20);
        assert_eq!(parse_size("1.5 kb").unwrap(), 1500);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert_eq!(parse_rate("100MB/s").unwrap(), 100_000_000);
        for bad in ["", "0", "GB", "5 parsecs", "-1GB", "1e30TB"] {
            let e = parse_size(bad).unwrap_err();
            assert!(matches!(e, Error::Invalid(_)), "{bad}: {e}");
        }
        assert_eq!(parse_duration("30d").unwrap(), Duration::from_secs(30 * 86400));
        assert_eq!(parse_duration("1w").unwrap(), Duration::from_secs(7 * 86400));
        assert_eq!(format_duration(Duration::from_secs(7 * 86400)), "7d");
        assert_eq!(format_duration(Duration::from_secs(86400 + 7200 + 5)), "1d2h");
    }

    #[test]
    fn a_scrub_schedule_takes_the_flags_over_the_config() {
        use crate::archive::config::Scrub;
        let cfg = Scrub { every: Some("7d".into()), limit: Some("500GB".into()), rate: Some("100MB/s".into()) };
        let s = ScrubSchedule::resolve(Some(&cfg), None, None, None).unwrap().unwrap();
        assert_eq!(
            s,
            ScrubSchedule {
                every: Duration::from_secs(7 * 86400),
                limit: Some(500_000_000_000),
                rate: Some(100_000_000)
            }
        );
        let s = ScrubSchedule::resolve(Some(&cfg), Some(Duration::from_secs(60)), Some(5), None).unwrap().unwrap();
        assert_eq!((s.every, s.limit, s.rate), (Duration::from_secs(60), Some(5), Some(100_000_000)));
        assert_eq!(ScrubSchedule::resolve(None, None, None, None).unwrap(), None);
        assert!(matches!(ScrubSchedule::resolve(None, None, Some(5), None), Err(Error::Invalid(_))));
        let bad = Scrub { every: Some("weekly".into()), ..Default::default() };
        let e = ScrubSchedule::resolve(Some(&bad), None, None, None).unwrap_err().to_string();
        assert!(e.contains("[scrub] every"), "{e}");
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let i = Duration::from_secs(60);
        let cap = backoff_cap(i);
        assert_eq!(cap, Duration::from_secs(15 * 60));
        let waits: Vec<u64> = (1..=6).map(|n| backoff(i, cap, n).as_secs()).collect();
        assert_eq!(waits, [120, 240, 480, 900, 900, 900]);
        assert_eq!(backoff(i, cap, u32::MAX), cap);
        assert_eq!(backoff_cap(Duration::from_secs(1)), Duration::from_secs(16));
        assert_eq!(backoff_cap(Duration::from_secs(7200)), Duration::from_secs(7200));
    }
}
