//! `nightfox.toml`: the operator's settings (where the archive is, the mount, the daemon's intervals and schedules,
//! the cache, logging, import tuning, where the secrets are), as opposed to `archive.toml`, the archive's identity.
//!
//! - Found by `--config FILE`, else `$NIGHTFOX_CONFIG`, else `nightfox.toml` in the archive directory; a file named
//!   explicitly must exist (at start and at every reload), the archive's may be absent, and its `archive` key is
//!   ignored (the file was found there).
//! - The env file: `--env-file`, else `[secrets] env_file`, else (for `serve`) `/etc/nightfox/env` when it exists.
//! - Every global flag, every `serve`/`mount`/`export-nfs` flag and every non-secret `NIGHTFOX_*` variable has a key
//!   ([`KEYS`]). Precedence: flag > environment variable (the env file counts as the environment) > this file >
//!   default. Keys that stand for a variable are applied by setting the variable when the process does not have it
//!   (at start, before any thread); the others fill the flags the command line left out.
//! - Secrets (database URLs with passwords, `NIGHTFOX_SECRET`, S3 keys, any `password`/`token` key or URL with a
//!   password) are refused with a pointer to the env file.
//! - Errors are `FILE:LINE:COL: message`, one line each (`nightfox config check`).
//! - `serve` re-reads the file on SIGHUP ([`reload`]): the poll interval, backoff cap, scrub schedule, gc interval and
//!   log level change live (the log filter through `tracing_subscriber::reload`); the rest is logged as needing a
//!   restart.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use parking_lot::Mutex;
use serde::{Deserialize, Deserializer};

use crate::error::{Error, Result};
use crate::serve::{parse_duration, parse_rate, parse_size_or_zero, ScrubSchedule};

/// The file's name in the archive directory.
pub const FILE: &str = "nightfox.toml";
/// The variable naming the file when `--config` does not.
pub const CONFIG_VAR: &str = "NIGHTFOX_CONFIG";
/// The log filter when neither `$RUST_LOG` nor `[log] level` says.
pub const DEFAULT_LOG: &str = "nightfox=warn";
/// `serve`'s poll interval when neither `--poll-interval` nor `[serve] poll_interval` says.
pub const DEFAULT_POLL: Duration = Duration::from_secs(60);
/// Time between two garbage collections of `serve` when `[gc] every` does not say.
pub const DEFAULT_GC_EVERY: Duration = Duration::from_secs(24 * 3600);

// ---- value types: parsed while deserializing, so that a bad one is an error at its value's line -----------------

fn text<'de, D: Deserializer<'de>, T>(d: D, parse: fn(&str) -> Result<T>) -> std::result::Result<T, D::Error> {
    let s = String::deserialize(d)?;
    parse(&s).map_err(|e| serde::de::Error::custom(plain(&e)))
}

/// An error's message without the `invalid: ` prefix the CLI error carries.
fn plain(e: &Error) -> String {
    match e {
        Error::Invalid(m) => m.clone(),
        other => other.to_string(),
    }
}

/// A duration as the flags take it: `500ms`, `60s`, `5m`, `7d`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dur(pub Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        text(d, parse_duration).map(Dur)
    }
}

/// A byte count: `20GB`, `64MiB`, `4096`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Size(pub u64);

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        text(d, parse_size_or_zero).map(Size)
    }
}

/// Bytes per second: `100MB/s`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate(pub u64);

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        text(d, parse_rate).map(Rate)
    }
}

/// A log filter: a level (`info`, meaning `nightfox=info`) or a full `RUST_LOG` directive list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogLevel(pub String);

impl<'de> Deserialize<'de> for LogLevel {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        text(d, |s| {
            let f = log_filter(s);
            tracing_subscriber::EnvFilter::try_new(&f)
                .map(|_| LogLevel(f))
                .map_err(|e| Error::Invalid(format!("{s:?} is not a log level or filter ({e})")))
        })
    }
}

/// `info` → `nightfox=info`; anything else as written.
fn log_filter(s: &str) -> String {
    let t = s.trim();
    match t.to_ascii_lowercase().as_str() {
        "error" | "warn" | "info" | "debug" | "trace" | "off" => format!("nightfox={}", t.to_ascii_lowercase()),
        _ => t.to_string(),
    }
}

// ---- the schema ------------------------------------------------------------------------------------------------

/// `nightfox.toml`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DaemonConfig {
    /// `--archive`, `$NIGHTFOX_ARCHIVE` (ignored in the archive's own file: it was found there).
    pub archive: Option<PathBuf>,
    #[serde(default)]
    pub mount: MountSection,
    #[serde(default)]
    pub serve: ServeSection,
    #[serde(default)]
    pub nfs: NfsSection,
    #[serde(default)]
    pub scrub: ScrubSection,
    #[serde(default)]
    pub gc: GcSection,
    #[serde(default)]
    pub cache: CacheSection,
    #[serde(default)]
    pub log: LogSection,
    #[serde(default)]
    pub import: ImportSection,
    #[serde(default)]
    pub secrets: SecretsSection,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MountSection {
    pub point: Option<PathBuf>,
    pub allow_other: Option<bool>,
    pub no_passthrough: Option<bool>,
    pub verify_reads: Option<bool>,
    pub threads: Option<u32>,
    pub read_ahead_kb: Option<u64>,
    pub ingest_direct_min_free: Option<Size>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeSection {
    pub poll_interval: Option<Dur>,
    pub backoff_cap: Option<Dur>,
    pub job_stale: Option<Dur>,
    pub http: Option<SocketAddr>,
    pub http_token_file: Option<PathBuf>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NfsSection {
    pub listen: Option<SocketAddr>,
    pub allow_remote: Option<bool>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScrubSection {
    pub every: Option<Dur>,
    pub limit: Option<Size>,
    pub rate: Option<Rate>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GcSection {
    pub every: Option<Dur>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheSection {
    pub dir: Option<PathBuf>,
    pub size: Option<Size>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSection {
    pub level: Option<LogLevel>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportSection {
    pub workers: Option<u32>,
    pub retry_delays: Option<Vec<Dur>>,
    pub max_failures: Option<u32>,
    pub net_timeout: Option<Dur>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretsSection {
    pub key_file: Option<PathBuf>,
    pub env_file: Option<PathBuf>,
    pub ephemeral: Option<bool>,
}

/// Every key: (key, its flag, its variable). The source of `config show`, the example file and the docs' table
/// (a unit test holds them to it).
pub const KEYS: &[(&str, &str, &str)] = &[
    ("archive", "--archive", "NIGHTFOX_ARCHIVE"),
    ("mount.point", "MOUNTPOINT (serve, mount)", ""),
    ("mount.allow_other", "--allow-other", ""),
    ("mount.no_passthrough", "mount --no-passthrough", ""),
    ("mount.verify_reads", "mount --verify-reads", ""),
    ("mount.threads", "", "NIGHTFOX_FUSE_THREADS"),
    ("mount.read_ahead_kb", "", "NIGHTFOX_READ_AHEAD_KB"),
    ("mount.ingest_direct_min_free", "", "NIGHTFOX_INGEST_DIRECT_MIN_FREE"),
    ("serve.poll_interval", "serve --poll-interval", ""),
    ("serve.backoff_cap", "", "NIGHTFOX_BACKOFF_CAP"),
    ("serve.job_stale", "", "NIGHTFOX_JOB_STALE"),
    ("serve.http", "serve --http", ""),
    ("serve.http_token_file", "serve --http-token-file", ""),
    ("nfs.listen", "serve --nfs, export-nfs --listen", ""),
    ("nfs.allow_remote", "--allow-remote", ""),
    ("scrub.every", "serve --scrub-every", ""),
    ("scrub.limit", "serve --scrub-limit", ""),
    ("scrub.rate", "serve --scrub-rate", ""),
    ("gc.every", "", ""),
    ("cache.dir", "--cache-dir", ""),
    ("cache.size", "--cache-size", ""),
    ("log.level", "", "RUST_LOG"),
    ("import.workers", "", "NIGHTFOX_IMPORT_WORKERS"),
    ("import.retry_delays", "", "NIGHTFOX_RETRY_DELAYS"),
    ("import.max_failures", "", "NIGHTFOX_MAX_FAILURES"),
    ("import.net_timeout", "", "NIGHTFOX_NET_TIMEOUT"),
    ("secrets.key_file", "--key-file", "NIGHTFOX_KEY_FILE"),
    ("secrets.env_file", "--env-file", ""),
    ("secrets.ephemeral", "--ephemeral-secrets", ""),
];

fn secs(d: Duration) -> String {
    format!("{}", d.as_secs_f64())
}

impl DaemonConfig {
    /// The variables this file stands for, with their values (as the code reads them).
    pub fn variables(&self) -> Vec<(&'static str, String)> {
        let mut v = Vec::new();
        let mut put = |name: &'static str, value: Option<String>| {
            if let Some(value) = value {
                v.push((name, value));
            }
        };
        put("NIGHTFOX_ARCHIVE", self.archive.as_ref().map(|p| p.to_string_lossy().into_owned()));
        put("NIGHTFOX_FUSE_THREADS", self.mount.threads.map(|n| n.to_string()));
        put("NIGHTFOX_READ_AHEAD_KB", self.mount.read_ahead_kb.map(|n| n.to_string()));
        put("NIGHTFOX_INGEST_DIRECT_MIN_FREE", self.mount.ingest_direct_min_free.map(|s| s.0.to_string()));
        put("NIGHTFOX_BACKOFF_CAP", self.serve.backoff_cap.map(|d| secs(d.0)));
        put("NIGHTFOX_JOB_STALE", self.serve.job_stale.map(|d| secs(d.0)));
        put("RUST_LOG", self.log.level.as_ref().map(|l| l.0.clone()));
        put("NIGHTFOX_IMPORT_WORKERS", self.import.workers.map(|n| n.to_string()));
        put(
            "NIGHTFOX_RETRY_DELAYS",
            self.import.retry_delays.as_ref().map(|d| d.iter().map(|d| secs(d.0)).collect::<Vec<_>>().join(",")),
        );
        put("NIGHTFOX_MAX_FAILURES", self.import.max_failures.map(|n| n.to_string()));
        put("NIGHTFOX_NET_TIMEOUT", self.import.net_timeout.map(|d| secs(d.0)));
        put("NIGHTFOX_KEY_FILE", self.secrets.key_file.as_ref().map(|p| p.to_string_lossy().into_owned()));
        v
    }
}

// ---- parsing, line-precise -------------------------------------------------------------------------------------

/// `LINE:COL` (1-based) of a byte offset.
fn line_col(text: &str, at: usize) -> (usize, usize) {
    let at = at.min(text.len());
    let before = text.get(..at).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

fn located(path: &Path, text: &str, span: Option<Range<usize>>, msg: &str) -> String {
    let msg = msg.trim().replace('\n', " ");
    match span {
        Some(s) => {
            let (l, c) = line_col(text, s.start);
            format!("{}:{l}:{c}: {msg}", path.display())
        }
        None => format!("{}: {msg}", path.display()),
    }
}

/// Every leaf of the file: (dotted key, the span of its key, the string value if it is one).
fn leaves(table: &toml::de::DeTable<'_>, prefix: &str, out: &mut Vec<(String, Range<usize>, Option<String>)>) {
    for (k, v) in table.iter() {
        let key = if prefix.is_empty() { k.get_ref().to_string() } else { format!("{prefix}.{}", k.get_ref()) };
        match v.get_ref() {
            toml::de::DeValue::Table(t) => leaves(t, &key, out),
            other => out.push((key, k.span(), other.as_str().map(str::to_string))),
        }
    }
}

/// The variable a secret-looking key stands for ("" when it is a secret of no known variable); None when the key
/// is no secret.
fn secret_key(key: &str) -> Option<&'static str> {
    let k = key.rsplit('.').next().unwrap_or(key).to_ascii_lowercase();
    if k.ends_with("_file") {
        return None;
    }
    let known = [
        ("migrate_url", "NIGHTFOX_DATABASE_MIGRATE_URL"),
        ("database_url", "NIGHTFOX_DATABASE_URL"),
        ("dsn", "NIGHTFOX_DATABASE_URL"),
        ("secret_previous", "NIGHTFOX_SECRET_PREVIOUS"),
        ("secret_access_key", "AWS_SECRET_ACCESS_KEY"),
        ("secret_key", "AWS_SECRET_ACCESS_KEY"),
        ("access_key", "AWS_ACCESS_KEY_ID"),
        ("session_token", "AWS_SESSION_TOKEN"),
        ("passphrase", "NIGHTFOX_SECRET"),
        ("secret", "NIGHTFOX_SECRET"),
    ];
    if let Some((_, var)) = known.iter().find(|(w, _)| k.contains(w)) {
        return Some(var);
    }
    ["password", "passwd", "token", "credential"].iter().any(|w| k.contains(w)).then_some("")
}

/// Parses the file's text; every error as `FILE:LINE:COL: message`.
pub fn parse(path: &Path, text: &str) -> std::result::Result<DaemonConfig, Vec<String>> {
    let table = toml::de::DeTable::parse(text).map_err(|e| vec![located(path, text, e.span(), e.message())])?;
    let mut all = Vec::new();
    leaves(table.get_ref(), "", &mut all);
    all.sort_by_key(|(_, span, _)| span.start);
    let mut errors = Vec::new();
    for (key, span, value) in &all {
        let var = secret_key(key).or_else(|| {
            value.as_deref().filter(|v| crate::catalog::url_has_password(v)).map(|v| {
                if crate::catalog::is_postgres(v) {
                    "NIGHTFOX_DATABASE_URL"
                } else {
                    ""
                }
            })
        });
        if let Some(var) = var {
            let name = if var.is_empty() { "the variable the code reads".to_string() } else { format!("{var}=...") };
            errors.push(located(
                path,
                text,
                Some(span.clone()),
                &format!(
                    "`{key}` holds a secret, which nightfox.toml may not (operators, backups and `config show` read \
                     it): put {name} in the env file instead ([secrets] env_file or --env-file, else \
                     /etc/nightfox/env; mode 0600)"
                ),
            ));
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    toml::from_str::<DaemonConfig>(text).map_err(|e| vec![located(path, text, e.span(), e.message())])
}

/// The dotted keys a file sets, in file order.
pub fn keys_set(text: &str) -> Vec<String> {
    let Ok(table) = toml::de::DeTable::parse(text) else { return Vec::new() };
    let mut all = Vec::new();
    leaves(table.get_ref(), "", &mut all);
    all.sort_by_key(|(_, span, _)| span.start);
    all.into_iter().map(|(k, _, _)| k).collect()
}

/// Reads and parses the file; its first error as a one-line [`Error::Invalid`]. `Ok(None)` when it does not exist
/// and `must_exist` is false.
pub fn load(path: &Path, must_exist: bool) -> Result<Option<DaemonConfig>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !must_exist => return Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::Invalid(format!("the config file {} does not exist", path.display())))
        }
        Err(e) => return Err(Error::io(path, e)),
    };
    parse(path, &text).map(Some).map_err(|errors| {
        let more = match errors.len() {
            0 | 1 => String::new(),
            n => format!(" (and {} more: nightfox config check {})", n - 1, path.display()),
        };
        Error::Invalid(format!("{}{more}", errors.first().map_or("invalid", |e| e.as_str())))
    })
}

// ---- discovery and application at start ------------------------------------------------------------------------

/// The file named explicitly: `--config`, else `$NIGHTFOX_CONFIG`.
pub fn explicit(flag: Option<&Path>) -> Option<PathBuf> {
    flag.map(Path::to_path_buf).or_else(|| std::env::var_os(CONFIG_VAR).filter(|v| !v.is_empty()).map(PathBuf::from))
}

/// Where the file is looked for: the explicit one, else `nightfox.toml` in the archive directory (when known).
pub fn discover(flag: Option<&Path>, archive: Option<PathBuf>) -> Option<(PathBuf, bool)> {
    match explicit(flag) {
        Some(p) => Some((p, true)),
        None => crate::archive::resolve_dir(archive).ok().map(|d| (d.join(FILE), false)),
    }
}

/// The global flags [`prepare`] reads and fills.
pub struct Globals<'a> {
    pub config: Option<&'a Path>,
    pub archive: &'a Option<PathBuf>,
    pub cache_dir: &'a mut Option<PathBuf>,
    pub cache_size: &'a mut Option<u64>,
    pub env_file: &'a mut Option<PathBuf>,
    pub ephemeral_secrets: &'a mut bool,
    /// `--no-ephemeral-secrets`: the file's `[secrets] ephemeral` is not applied.
    pub no_ephemeral_secrets: bool,
    /// The command is `serve` (which reads `/etc/nightfox/env` by default).
    pub serving: bool,
}

/// What `serve` was given on its command line, kept for reloads (flags still beat the file).
#[derive(Clone, Copy, Debug, Default)]
pub struct ServeFlags {
    pub poll_interval: Option<Duration>,
    pub scrub_every: Option<Duration>,
    pub scrub_limit: Option<u64>,
    pub scrub_rate: Option<u64>,
}

struct State {
    /// Where the file is (or would be).
    path: Option<PathBuf>,
    /// The file was named (`--config`, `$NIGHTFOX_CONFIG`): it must exist; else it is the archive's own.
    explicit: bool,
    config: Mutex<Arc<DaemonConfig>>,
    /// Variables the process had before the file applied (they beat it, on reload too).
    from_env: BTreeSet<&'static str>,
    /// Variables the file set.
    set_by_file: Vec<&'static str>,
    /// Flags the file filled.
    filled: Vec<&'static str>,
    serve_flags: Mutex<ServeFlags>,
}

static STATE: OnceLock<State> = OnceLock::new();

/// Finds and applies the file, once, at start (single-threaded: it sets variables): `--env-file` first (its
/// variables are the environment, which beats the file and may say where the archive is), then the file, then the
/// env file it names (else `serve`'s default one), then the file's variables where the process has none, then the
/// global flags the command line left out.
pub fn prepare(g: Globals<'_>) -> Result<()> {
    if let Some(f) = g.env_file.as_deref() {
        crate::archive::env::load(f)?;
    }
    let named = explicit(g.config);
    let explicit = named.is_some();
    let (path, found) = match named {
        Some(p) => {
            let c = load(&p, true)?;
            (Some(p), c)
        }
        None => {
            // `serve`'s default env file may be the one saying where the archive is, though the archive's own
            // file may name another env file, which then is read instead: only its NIGHTFOX_ARCHIVE is taken.
            let default_env = Path::new(crate::archive::env::DEFAULT_SERVE_ENV);
            if g.serving && g.env_file.is_none() && g.archive.is_none() && !var_set("NIGHTFOX_ARCHIVE") {
                if let Some(dir) = peek_archive(default_env) {
                    // Single-threaded: at start, before any thread is spawned (as the env file's variables).
                    std::env::set_var("NIGHTFOX_ARCHIVE", dir);
                }
            }
            match crate::archive::resolve_dir(g.archive.clone()) {
                Ok(dir) => {
                    let p = dir.join(FILE);
                    let c = load(&p, false)?.map(archive_own);
                    (Some(p), c)
                }
                Err(_) => (None, None),
            }
        }
    };
    if g.env_file.is_none() {
        let named = found.as_ref().and_then(|c| c.secrets.env_file.clone());
        if let Some(f) = crate::archive::env::chosen(named.as_deref(), g.serving) {
            crate::archive::env::load(&f)?;
        }
    }
    let config = found.unwrap_or_default();
    let vars = config.variables();
    let from_env: BTreeSet<&'static str> =
        KEYS.iter().map(|k| k.2).filter(|v| !v.is_empty() && std::env::var_os(v).is_some()).collect();
    let mut set_by_file = Vec::new();
    for (name, value) in vars {
        if !from_env.contains(name) {
            // Single-threaded: at start, before any thread is spawned (as the env file's variables).
            std::env::set_var(name, value);
            set_by_file.push(name);
        }
    }
    let mut filled = Vec::new();
    if g.cache_dir.is_none() && config.cache.dir.is_some() {
        *g.cache_dir = config.cache.dir.clone();
        filled.push("cache.dir");
    }
    if g.cache_size.is_none() && config.cache.size.is_some() {
        *g.cache_size = config.cache.size.map(|s| s.0);
        filled.push("cache.size");
    }
    if g.env_file.is_none() && config.secrets.env_file.is_some() {
        *g.env_file = config.secrets.env_file.clone();
        filled.push("secrets.env_file");
    }
    if !*g.ephemeral_secrets && !g.no_ephemeral_secrets && config.secrets.ephemeral == Some(true) {
        *g.ephemeral_secrets = true;
        filled.push("secrets.ephemeral");
    }
    let state = State {
        path,
        explicit,
        config: Mutex::new(Arc::new(config)),
        from_env,
        set_by_file,
        filled,
        serve_flags: Mutex::new(ServeFlags::default()),
    };
    let _ = STATE.set(state);
    Ok(())
}

/// The archive's own file: its `archive` key is ignored (the file was found there).
fn archive_own(mut c: DaemonConfig) -> DaemonConfig {
    c.archive = None;
    c
}

fn var_set(name: &str) -> bool {
    std::env::var_os(name).is_some_and(|v| !v.is_empty())
}

/// `NIGHTFOX_ARCHIVE` of an env file, read without applying anything (only from a file `env::load` would accept:
/// a private one).
fn peek_archive(env_file: &Path) -> Option<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(env_file)
        .ok()
        .filter(|m| m.is_file() && crate::secrets::readable_by_others(env_file, m.mode(), "env file").is_none())?;
    dotenvy::from_path_iter(env_file)
        .ok()?
        .filter_map(std::result::Result::ok)
        .find(|(k, v)| k == "NIGHTFOX_ARCHIVE" && !v.is_empty())
        .map(|(_, v)| PathBuf::from(v))
}

/// The settings in force (the defaults when no file was found, or before [`prepare`]).
pub fn current() -> Arc<DaemonConfig> {
    STATE.get().map(|s| Arc::clone(&s.config.lock())).unwrap_or_default()
}

/// The file in force (or where it was looked for), if any.
pub fn path() -> Option<PathBuf> {
    STATE.get().and_then(|s| s.path.clone())
}

/// The mount point: the argument, else `[mount] point`.
/// None is wrong usage (exit 2, as clap's missing argument was).
pub fn mount_point(arg: Option<PathBuf>) -> Result<PathBuf> {
    arg.or_else(|| current().mount.point.clone()).ok_or_else(|| {
        Error::Usage(
            "no mount point: give MOUNTPOINT on the command line, or set [mount] point in nightfox.toml".into(),
        )
    })
}

/// `serve`'s flags, kept for [`reload`].
pub fn remember_serve_flags(flags: ServeFlags) {
    if let Some(s) = STATE.get() {
        *s.serve_flags.lock() = flags;
    }
}

// ---- serve's settings, at start and on SIGHUP ------------------------------------------------------------------

/// What `serve` can change without a restart.
#[derive(Clone, Debug, PartialEq)]
pub struct ServeSettings {
    pub poll_interval: Duration,
    /// The cap set by `$NIGHTFOX_BACKOFF_CAP` or `[serve] backoff_cap` (else `serve` derives it).
    pub backoff_cap: Option<Duration>,
    pub scrub: Option<ScrubSchedule>,
    pub gc_every: Duration,
    /// The log filter (`$RUST_LOG` when the process had it, else `[log] level`, else the default).
    pub log: String,
}

/// The live settings from the flags, the file and `archive.toml`'s `[scrub]` (flag > file > archive.toml).
pub fn serve_settings(
    cfg: &DaemonConfig,
    flags: &ServeFlags,
    archive_scrub: Option<&crate::archive::config::Scrub>,
) -> Result<ServeSettings> {
    let from_env = |v: &str| STATE.get().is_some_and(|s| s.from_env.contains(v));
    let scrub = ScrubSchedule::resolve(
        archive_scrub,
        flags.scrub_every.or(cfg.scrub.every.map(|d| d.0)),
        flags.scrub_limit.or(cfg.scrub.limit.map(|s| s.0)),
        flags.scrub_rate.or(cfg.scrub.rate.map(|r| r.0)),
    )?;
    let backoff_cap = if from_env("NIGHTFOX_BACKOFF_CAP") {
        std::env::var("NIGHTFOX_BACKOFF_CAP").ok().and_then(|v| parse_duration(&v).ok())
    } else {
        cfg.serve.backoff_cap.map(|d| d.0)
    };
    let log = if from_env("RUST_LOG") {
        std::env::var("RUST_LOG").unwrap_or_else(|_| DEFAULT_LOG.into())
    } else {
        cfg.log.level.as_ref().map_or_else(|| DEFAULT_LOG.to_string(), |l| l.0.clone())
    };
    Ok(ServeSettings {
        poll_interval: flags.poll_interval.or(cfg.serve.poll_interval.map(|d| d.0)).unwrap_or(DEFAULT_POLL),
        backoff_cap,
        scrub,
        gc_every: cfg.gc.every.map_or(DEFAULT_GC_EVERY, |d| d.0),
        log,
    })
}

/// What a SIGHUP found.
#[derive(Debug)]
pub struct Reloaded {
    pub settings: ServeSettings,
    /// Sections or keys that changed but apply only at the next start.
    pub restart: Vec<&'static str>,
}

/// Reads the file again (the archive's may have appeared or gone; one named explicitly at start must still exist)
/// and gives the live settings; the settings in force stay when it is invalid or missing (the error says why).
pub fn reload(archive_scrub: Option<&crate::archive::config::Scrub>) -> Result<Reloaded> {
    let Some(state) = STATE.get() else {
        return Err(Error::Invalid("no configuration was loaded at start".into()));
    };
    let new = match &state.path {
        Some(p) if state.explicit => load(p, true)?.unwrap_or_default(),
        Some(p) => load(p, false)?.map(archive_own).unwrap_or_default(),
        None => DaemonConfig::default(),
    };
    let flags = *state.serve_flags.lock();
    let settings = serve_settings(&new, &flags, archive_scrub)?;
    let old = Arc::clone(&state.config.lock());
    let mut restart = Vec::new();
    let mut changed = |yes: bool, what: &'static str| {
        if yes {
            restart.push(what);
        }
    };
    changed(old.archive != new.archive, "archive");
    changed(old.mount != new.mount, "[mount]");
    changed(old.nfs != new.nfs, "[nfs]");
    changed(old.serve.job_stale != new.serve.job_stale, "[serve] job_stale");
    changed(old.serve.http != new.serve.http || old.serve.http_token_file != new.serve.http_token_file, "[serve] http");
    changed(old.cache != new.cache, "[cache]");
    changed(old.import != new.import, "[import]");
    changed(old.secrets != new.secrets, "[secrets]");
    *state.config.lock() = Arc::new(new);
    Ok(Reloaded { settings, restart })
}

// ---- logging ---------------------------------------------------------------------------------------------------

type LogHandle = tracing_subscriber::reload::Handle<tracing_subscriber::EnvFilter, tracing_subscriber::Registry>;

static LOG: OnceLock<LogHandle> = OnceLock::new();

/// Installs the logger on stderr: `$RUST_LOG` (set from `[log] level` when the process had none), else
/// [`DEFAULT_LOG`]; its filter can be swapped later ([`set_log_filter`]).
pub fn init_logging() {
    use std::io::IsTerminal;
    use tracing_subscriber::prelude::*;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG));
    let (filter, handle) = tracing_subscriber::reload::Layer::new(filter);
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(std::io::stderr().is_terminal());
    if tracing_subscriber::registry().with(filter).with(fmt).try_init().is_ok() {
        let _ = LOG.set(handle);
    }
}

/// Swaps the log filter of the running process.
pub fn set_log_filter(filter: &str) -> Result<()> {
    let f = tracing_subscriber::EnvFilter::try_new(filter)
        .map_err(|e| Error::Invalid(format!("log filter {filter:?}: {e}")))?;
    match LOG.get() {
        Some(h) => h.reload(f).map_err(|e| Error::Invalid(format!("cannot change the log filter: {e}"))),
        None => Ok(()),
    }
}

// ---- `nightfox config check` and `config show` ------------------------------------------------------------------

/// What `config check` found.
#[derive(Debug)]
pub struct Checked {
    /// The summary (valid) or the errors, one line each.
    pub lines: Vec<String>,
    /// Keys that are valid but have no effect there, one line each.
    pub warnings: Vec<String>,
    /// 0 valid, 1 invalid or missing.
    pub code: i32,
}

/// `config check [FILE]`.
pub fn check(file: Option<&Path>, config_flag: Option<&Path>, archive: Option<PathBuf>) -> Checked {
    let done = |lines: Vec<String>, code: i32| Checked { lines, warnings: Vec::new(), code };
    // The archive's own file (not named by --config or $NIGHTFOX_CONFIG): its `archive` key is ignored.
    let own = explicit(config_flag).is_none().then(|| crate::archive::resolve_dir(archive.clone()).ok()).flatten();
    let (path, must) = match file {
        Some(f) => (f.to_path_buf(), true),
        None => match discover(config_flag, archive) {
            Some(d) => d,
            None => return done(vec!["no config file: give FILE, --config or $NIGHTFOX_CONFIG".into()], 1),
        },
    };
    let is_own = own.is_some_and(|dir| {
        let a = dir.join(FILE);
        a == path || std::fs::canonicalize(&a).ok().is_some_and(|a| std::fs::canonicalize(&path).ok() == Some(a))
    });
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !must => {
            return done(vec![format!("{}: no such file; the defaults apply", path.display())], 0)
        }
        Err(e) => return done(vec![format!("{}: {e}", path.display())], 1),
    };
    match parse(&path, &text) {
        Ok(_) => {
            let keys = keys_set(&text);
            let what = if keys.is_empty() { "nothing (the defaults apply)".to_string() } else { keys.join(", ") };
            let mut warnings = Vec::new();
            if is_own {
                if let Ok(table) = toml::de::DeTable::parse(&text) {
                    if let Some((k, _)) = table.get_ref().iter().find(|(k, _)| k.get_ref() == "archive") {
                        warnings.push(located(
                            &path,
                            &text,
                            Some(k.span()),
                            "warning: `archive` is ignored in the archive's own nightfox.toml (it was found there); \
                             name the archive with --archive or $NIGHTFOX_ARCHIVE, or this file with --config",
                        ));
                    }
                }
            }
            Checked {
                lines: vec![format!("{}: valid; sets {} key(s): {what}", path.display(), keys.len())],
                warnings,
                code: 0,
            }
        }
        Err(errors) => done(errors, 1),
    }
}

/// `config show`: every key, its effective value and where it came from.
pub fn show(
    archive: Option<&Path>,
    cache_dir: Option<&Path>,
    cache_size: Option<u64>,
    env_file: Option<&Path>,
    ephemeral: bool,
) -> Vec<String> {
    let Some(state) = STATE.get() else { return vec!["no configuration loaded".into()] };
    let cfg = current();
    // The keys the file sets, read once.
    let set = state.path.as_ref().and_then(|p| std::fs::read_to_string(p).ok()).map(|t| keys_set(&t));
    let file_has = |key: &str| set.as_ref().is_some_and(|keys| keys.iter().any(|k| k == key));
    let mut out = vec![match &state.path {
        Some(p) if p.is_file() => format!("# config file: {}", p.display()),
        Some(p) => format!("# config file: none ({} does not exist)", p.display()),
        None => "# config file: none".to_string(),
    }];
    for (key, flag, var) in KEYS {
        let (value, origin) = if !var.is_empty() {
            match std::env::var(var) {
                _ if *key == "archive" && archive.is_some() => {
                    (archive.map(|p| p.display().to_string()).unwrap_or_default(), (*flag).into())
                }
                Ok(v) if state.from_env.contains(var) => (v, format!("${var}")),
                Ok(v) if state.set_by_file.contains(var) => (v, "nightfox.toml".into()),
                Ok(v) => (v, (*flag).into()),
                Err(_) => ("-".into(), "default".into()),
            }
        } else {
            let global = match *key {
                "cache.dir" => Some(cache_dir.map(|p| p.display().to_string())),
                "cache.size" => Some(cache_size.map(|n| n.to_string())),
                "secrets.env_file" => Some(env_file.map(|p| p.display().to_string())),
                "secrets.ephemeral" => Some(ephemeral.then(|| "true".to_string())),
                _ => None,
            };
            match global {
                Some(Some(v)) if state.filled.contains(key) => (v, "nightfox.toml".into()),
                Some(Some(v)) => (v, (*flag).into()),
                Some(None) if *key == "secrets.env_file" => (
                    "-".into(),
                    format!("default: serve reads {} if it exists", crate::archive::env::DEFAULT_SERVE_ENV),
                ),
                Some(None) => ("-".into(), "default".into()),
                None if file_has(key) => (file_value(&cfg, key), "nightfox.toml".into()),
                None => ("-".into(), format!("default, unless {flag}")),
            }
        };
        let origin = if *key == "archive" && !state.explicit && file_has(key) {
            format!("{origin}; ignored in the archive's own nightfox.toml")
        } else {
            origin
        };
        out.push(format!("{key} = {value}\t({origin})"));
    }
    out
}

/// A command-flag key's value in the file, for `config show`.
fn file_value(c: &DaemonConfig, key: &str) -> String {
    let d = |d: Option<Dur>| d.map(|d| crate::serve::format_duration(d.0));
    let b = |b: Option<bool>| b.map(|b| b.to_string());
    let v = match key {
        "mount.point" => c.mount.point.as_ref().map(|p| p.display().to_string()),
        "mount.allow_other" => b(c.mount.allow_other),
        "mount.no_passthrough" => b(c.mount.no_passthrough),
        "mount.verify_reads" => b(c.mount.verify_reads),
        "serve.poll_interval" => d(c.serve.poll_interval),
        "serve.http" => c.serve.http.map(|a| a.to_string()),
        "serve.http_token_file" => c.serve.http_token_file.as_ref().map(|p| p.display().to_string()),
        "nfs.listen" => c.nfs.listen.map(|a| a.to_string()),
        "nfs.allow_remote" => b(c.nfs.allow_remote),
        "scrub.every" => d(c.scrub.every),
        "scrub.limit" => c.scrub.limit.map(|s| crate::human_bytes(s.0 as i64)),
        "scrub.rate" => c.scrub.rate.map(|s| format!("{}/s", crate::human_bytes(s.0 as i64))),
        "gc.every" => d(c.gc.every),
        _ => None,
    };
    v.unwrap_or_else(|| "-".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(text: &str) -> Vec<String> {
        parse(Path::new("n.toml"), text).expect_err("invalid")
    }

    #[test]
    fn every_key_parses_and_maps_to_its_variable() {
        let text = include_str!("../../contrib/nightfox.toml.example")
            .lines()
            .map(|l| l.strip_prefix("# ").filter(|r| r.contains(" = ") || r.starts_with('[')).unwrap_or(l))
            .collect::<Vec<_>>()
            .join("\n");
        let c = parse(Path::new("example"), &text).expect("the example, uncommented, is valid");
        let vars: Vec<&str> = c.variables().iter().map(|v| v.0).collect();
        for (key, _, var) in KEYS {
            assert!(keys_set(&text).iter().any(|k| k == key), "the example lacks {key}");
            if !var.is_empty() {
                assert!(vars.contains(var), "{key} does not set {var}");
            }
        }
    }

    #[test]
    fn errors_name_the_line_and_column() {
        let e = errors("[serve]\npoll_interval = \"60s\"\nbogus = 1\n");
        assert_eq!(e.len(), 1);
        assert!(e[0].starts_with("n.toml:3:1: ") && e[0].contains("bogus"), "{e:?}");
        let e = errors("[scrub]\n  every = \"weekly\"\n");
        assert!(e[0].starts_with("n.toml:2:11: ") && e[0].contains("weekly"), "{e:?}");
        let e = errors("archive = \"/srv\"\n[log]\nlevel = \"nightfox=[\"\n");
        assert!(e[0].starts_with("n.toml:3:9: "), "{e:?}");
        let e =
            errors("[secrets]\nkey_file = \"/k\"\nsecret = \"hunter2\"\n[x]\ndatabase_url = \"postgres://a:b@h/d\"\n");
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(e[0].starts_with("n.toml:3:1: ") && e[0].contains("NIGHTFOX_SECRET="), "{e:?}");
        assert!(e[1].starts_with("n.toml:5:1: ") && e[1].contains("NIGHTFOX_DATABASE_URL="), "{e:?}");
        assert!(e.iter().all(|l| !l.contains("hunter2") && !l.contains('\n')), "{e:?}");
        let e = errors("[mount]\npoint = \"postgres://u:pw@db/x\"\n");
        assert!(e[0].starts_with("n.toml:2:1: ") && e[0].contains("env file"), "{e:?}");
        let e = errors("[serve\n");
        assert!(e[0].starts_with("n.toml:1:"), "{e:?}");
    }

    #[test]
    fn levels_expand_and_the_flags_beat_the_file() {
        let c = parse(
            Path::new("n"),
            "[log]\nlevel = \"INFO\"\n[serve]\npoll_interval = \"5m\"\n[scrub]\nevery = \"7d\"\n",
        )
        .expect("valid");
        assert_eq!(c.log.level, Some(LogLevel("nightfox=info".into())));
        let s = serve_settings(&c, &ServeFlags::default(), None).expect("settings");
        assert_eq!(s.poll_interval, Duration::from_secs(300));
        assert_eq!(s.scrub.map(|s| s.every), Some(Duration::from_secs(7 * 86400)));
        let flags = ServeFlags { poll_interval: Some(Duration::from_secs(1)), ..Default::default() };
        assert_eq!(serve_settings(&c, &flags, None).expect("settings").poll_interval, Duration::from_secs(1));
        assert_eq!(serve_settings(&DaemonConfig::default(), &flags, None).expect("s").gc_every, DEFAULT_GC_EVERY);
    }
}
