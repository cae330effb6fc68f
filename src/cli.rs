//! The command-line edge: argument parsing (clap), progress bars on a terminal (indicatif), one summary line
//! otherwise, `--json` for scripts, and the mapping of library errors to a one-line message and an exit code
//! (0 success, 1 failure, 2 wrong usage).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::archive::{self, Archive};
use crate::catalog::{CameraListing, DuplicateAction, FootageType};
use crate::error::{Error, Result};
use crate::ingest::{ImportRequest, Importer, Observer, Summary};
use crate::organize;

#[derive(Parser, Debug)]
#[command(name = "nightfox", version, about = "A verified footage archive, shown as a read-only filesystem")]
pub struct Cli {
    /// The archive directory (else $NIGHTFOX_ARCHIVE, else $XDG_DATA_HOME/nightfox).
    #[arg(long, global = true, value_name = "DIR")]
    archive: Option<PathBuf>,
    /// Where a remote blob store (s3://) keeps its local cache of blobs (default: cache/ in the archive).
    #[arg(long, global = true, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    /// How large that cache may grow (20GB, 500MB...; 0: no cache, every read from the store). Default 20GB.
    #[arg(long, global = true, value_parser = parse_cache_size)]
    cache_size: Option<u64>,
    /// Read secrets and settings from this env file first (NAME=value lines, mode 0600; see .env.example).
    /// `serve` reads /etc/nightfox/env when it exists and none is given.
    #[arg(long, global = true, value_name = "FILE")]
    env_file: Option<PathBuf>,
    /// The key file of stored source passwords (32 bytes, mode 0600; may live outside the archive). Default:
    /// $NIGHTFOX_KEY_FILE, else secret.key in the archive. Unused when $NIGHTFOX_SECRET is set.
    #[arg(long, global = true, value_name = "FILE")]
    key_file: Option<PathBuf>,
    /// Keep new source passwords in this process's memory only (tests, demos): nothing is written to the keyring
    /// or the catalog, and they are lost when the process exits.
    #[arg(long, global = true)]
    ephemeral_secrets: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create a new, empty archive.
    Init {
        /// Where blobs live: `local` (objects/ in the archive), `file:///DIR`, or
        /// `s3://BUCKET/PREFIX?endpoint=URL&region=R` (credentials from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY
        /// or s3.env in the archive, never in the URL).
        #[arg(long, default_value = "local")]
        blobs: String,
        /// Where the catalog lives: `sqlite` (catalog.db in the archive) or `postgres://ROLE@HOST:PORT/DB` (the
        /// runtime role; its password from NIGHTFOX_DATABASE_URL in the env file, never on the command line). A
        /// Postgres catalog that other seats use already is joined: this seat gets its own staging and caches.
        #[arg(long, default_value = "sqlite")]
        catalog: String,
        /// Store the blobs encrypted (AES-256-GCM in 64 KiB chunks; identity stays the hash of the plaintext)
        /// under a random data key kept only wrapped with the archive secret in keys/vault.wrapped: back up that
        /// file and the secret (NIGHTFOX_SECRET or the key file) together: the footage cannot be read without both.
        #[arg(long)]
        encrypt: bool,
    },
    /// Create or upgrade a Postgres catalog's schema with the migration role (the only role allowed DDL), and
    /// grant the runtime role its rows. The DSN's password comes from NIGHTFOX_DATABASE_MIGRATE_URL.
    Migrate {
        /// The migration DSN, `postgres://ROLE@HOST:PORT/DB` (default: NIGHTFOX_DATABASE_MIGRATE_URL).
        #[arg(long)]
        dsn: Option<String>,
        /// The runtime role to grant (default: the role of NIGHTFOX_DATABASE_URL, else nightfox_app).
        #[arg(long)]
        app_role: Option<String>,
    },
    /// The catalog itself: `catalog copy --to URL` copies it whole into another backend.
    #[command(subcommand)]
    Catalog(CatalogCmd),
    /// Couples (events) of the archive.
    #[command(subcommand)]
    Couple(CoupleCmd),
    /// Cameras footage is sorted by.
    #[command(subcommand)]
    Camera(CameraCmd),
    /// Catalogued files: move one (with its sidecars), or remove it to the trash.
    #[command(subcommand)]
    File(FileCmd),
    /// Import files and folders (cards) into a couple, verified.
    Import {
        /// The couple's folder name, e.g. 2025-12-31-julia-sven.
        #[arg(long)]
        couple: String,
        /// Footage type: modern, dadcam or super8 (default: the matched camera's, else modern).
        #[arg(long = "type", value_parser = parse_type)]
        footage_type: Option<FootageType>,
        /// Camera slug to put every file under (default: unknown).
        #[arg(long)]
        camera: Option<String>,
        /// What to do with a clip whose content is already in the couple: skip (its sidecars with it) or import.
        /// A sidecar is never skipped on its own bytes, and empty files are never duplicates.
        #[arg(long, default_value = "skip", value_parser = parse_dup)]
        duplicates: DuplicateAction,
        /// Copy what can be read of a damaged file (unreadable ranges stored as zeros and recorded; the file is
        /// catalogued as damaged) instead of failing it.
        #[arg(long)]
        salvage: bool,
        /// Print the summary as JSON.
        #[arg(long)]
        json: bool,
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
    },
    /// List import sessions.
    Sessions {
        #[arg(long)]
        json: bool,
    },
    /// Import sessions: `session cancel ID` ends one for good.
    #[command(subcommand)]
    Session(SessionCmd),
    /// Hash the given files and put each one that matches a damaged or missing blob (see `verify`) in its place.
    Repair {
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Continue an interrupted, cancelled or paused import session, or retry the failed files of a finished one.
    Resume {
        id: i64,
        #[arg(long)]
        json: bool,
    },
    /// Re-hash the stored blobs from disk, oldest-verified first, then look for files in objects/ the catalog does
    /// not know (and list tmp/ leftovers); exit 1 if any blob is missing or differs, or objects/ has an orphan.
    Verify {
        #[arg(long)]
        couple: Option<String>,
        /// Only blobs never verified or last verified longer ago than this: 12h, 30d, 2w...
        #[arg(long, value_parser = parse_duration)]
        older_than: Option<std::time::Duration>,
        /// Stop after this many bytes (500GB, 64MiB...), oldest-verified first; the next run continues with the
        /// rest. The first blob is checked whatever its size.
        #[arg(long, value_parser = parse_size)]
        limit: Option<u64>,
        #[arg(long)]
        json: bool,
    },
    /// Network sources (SMB shares, NFS exports) that import into a couple.
    #[command(subcommand)]
    Source(SourceCmd),
    /// Stored source passwords: move them between the OS keyring and the catalog, or re-encrypt them under a new
    /// key.
    #[command(subcommand)]
    Secrets(SecretsCmd),
    /// Catalogue a synthetic archive in bulk (couples x cameras x files), for scale tests and benchmarks.
    #[command(hide = true)]
    Generate {
        #[arg(long)]
        couples: u32,
        #[arg(long)]
        cameras: u32,
        #[arg(long)]
        files: u32,
        /// Store each file's (tiny) blob too; without it the blobs are absent.
        #[arg(long)]
        blobs: bool,
    },
    /// Show what the archive knows of one file: a path inside a mount, or `couple/source/type/camera/name`.
    Info {
        path: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Mount the archive read-only at MOUNTPOINT and serve it until SIGINT/SIGTERM or unmount.
    Mount {
        mountpoint: PathBuf,
        /// Let other users (and root) see the mount.
        #[arg(long)]
        allow_other: bool,
        /// Never use kernel passthrough reads, even where available.
        #[arg(long)]
        no_passthrough: bool,
        /// Check every block served against the blob's BLAKE3 hash (a damaged block answers EIO and marks the blob
        /// damaged; the rest of the blob still reads). Reads take the copy path, never passthrough.
        #[arg(long)]
        verify_reads: bool,
    },
    /// Serve the read-only tree (couples, `.by-hash`) over NFSv3 without a FUSE mount, until SIGINT/SIGTERM: for
    /// Macs without macFUSE and Windows seats. `/ingest` is not exported (NFSv3 has no close to commit on).
    #[cfg(feature = "nfs-export")]
    ExportNfs {
        /// Address to listen on (IPv4). Anything but loopback needs --allow-remote.
        #[arg(long, default_value = "127.0.0.1:2049")]
        listen: std::net::SocketAddr,
        /// Allow a listen address other machines can reach (every client that reaches it can read the archive).
        #[arg(long)]
        allow_remote: bool,
    },
    /// Mount the archive and keep the enabled network sources flowing in, until SIGINT/SIGTERM.
    Serve {
        mountpoint: PathBuf,
        /// Let other users (and root) see the mount.
        #[arg(long)]
        allow_other: bool,
        /// Also export the read-only tree over NFSv3 on this address (IPv4; loopback unless --allow-remote).
        #[cfg(feature = "nfs-export")]
        #[arg(long, value_name = "ADDR")]
        nfs: Option<std::net::SocketAddr>,
        /// Allow an NFS listen address other machines can reach.
        #[cfg(feature = "nfs-export")]
        #[arg(long, requires = "nfs")]
        allow_remote: bool,
        /// Time between two passes over each source: 500ms, 60s, 5m...
        #[arg(long, default_value = "60s", value_parser = parse_duration)]
        poll_interval: std::time::Duration,
        /// Scrub on a schedule: this long after the last complete scheduled scrub ended (7d, 24h...); also
        /// `every` in archive.toml [scrub]. Each run is recorded; `status` shows the last and the next.
        #[arg(long, value_parser = parse_duration)]
        scrub_every: Option<std::time::Duration>,
        /// Bytes one scheduled scrub checks at most, oldest-verified first (500GB...; [scrub] limit).
        #[arg(long, value_parser = parse_size)]
        scrub_limit: Option<u64>,
        /// Bytes per second a scheduled scrub reads at most (100MB/s...; [scrub] rate).
        #[arg(long, value_parser = parse_rate)]
        scrub_rate: Option<u64>,
    },
    /// The archive-wide audit log: who (uid) changed what, when; oldest first.
    Log {
        /// Only the events of this couple (its folder name).
        #[arg(long)]
        couple: Option<String>,
        /// The newest N events.
        #[arg(long, default_value_t = 1000)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
    /// The daemon, the sources, running and paused sessions, the last errors (works while `serve` runs).
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Copy the catalog to FILE with SQLite's online backup (safe while the daemon runs).
    BackupCatalog { file: PathBuf },
    /// Move every blob to another store (`local`, `file:///DIR`, `s3://...`), each verified there, and switch the
    /// archive to it; run again to resume. No mount, serve or import may run meanwhile. The old copies stay.
    MigrateBlobs {
        #[arg(long)]
        to: String,
        #[arg(long)]
        json: bool,
    },
    /// Removed couples, files and imports, restorable until gc purges them: `trash list`, `trash restore ID`.
    #[command(subcommand)]
    Trash(TrashCmd),
    /// Purge the trash entries whose retention ended, delete the blobs nothing references and tmp/ leftovers older
    /// than a day; prints what it frees. Asks on a terminal; needs --yes otherwise (or --dry-run).
    Gc {
        /// Delete nothing; show what would be purged and freed.
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        json: bool,
        /// Do not ask.
        #[arg(long)]
        yes: bool,
    },
    /// Deliver a couple (or `COUPLE/source/TYPE[/CAMERA]`) to a plain folder or drive, each file read back from
    /// DEST's disk and compared, with an ASC MHL history in DEST; run again to resume or to re-verify.
    Export {
        what: String,
        dest: PathBuf,
        /// tree: the mount's layout below the couple; original: the card's relative paths.
        #[arg(long, default_value = "tree", value_parser = parse_layout)]
        layout: crate::export::Layout,
        #[arg(long)]
        json: bool,
    },
    /// ASC MHL: `mhl check DIR` verifies a folder against its history; `mhl SESSION DIR` writes the history of an
    /// import session (the card as it was received) into DIR.
    Mhl {
        /// `check`, or an import session id.
        what: String,
        dir: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
enum FileCmd {
    /// Move a clip (with its sidecars) to another camera folder and/or footage type of its couple; the old path
    /// keeps resolving (not listed). PATH: a tree path or a path in a mount.
    Move {
        path: PathBuf,
        /// The camera's slug, or `unknown`.
        #[arg(long)]
        camera: Option<String>,
        #[arg(long = "type", value_parser = parse_type)]
        footage_type: Option<FootageType>,
    },
    /// Move a file (a clip with its sidecars) to the trash: a path inside a mount, or `couple/source/type/camera/name`.
    Remove {
        path: PathBuf,
        /// Do not ask.
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Subcommand, Debug)]
enum SessionCmd {
    /// End a session for good: it is never resumed; the files it finished stay in the archive.
    Cancel { id: i64 },
    /// Move what a finished session added (its files still in the archive) to the trash.
    Undo {
        id: i64,
        /// Do not ask.
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Subcommand, Debug)]
enum TrashCmd {
    /// The trash, oldest first: entry id, what, files, bytes, when it is purged.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Put a trash entry back exactly where it was (same paths, same inodes).
    Restore { id: i64 },
}

#[derive(Subcommand, Debug)]
enum SecretsCmd {
    /// Move every source's password to one tier: `keyring` (the OS keyring of this machine; the catalog keeps a
    /// reference) or `catalog` (encrypted in the catalog, readable by every seat).
    Migrate {
        #[arg(long, value_parser = ["keyring", "catalog"])]
        to: String,
    },
    /// Re-encrypt every password kept in the catalog (and re-wrap keys/*.wrapped) under a new key, in one catalog
    /// transaction: a new random key file, or, with $NIGHTFOX_SECRET, the passphrase's current key (put the old
    /// passphrase in $NIGHTFOX_SECRET_PREVIOUS to change it).
    Rotate,
}

#[derive(Subcommand, Debug)]
enum SourceCmd {
    /// Add a source (disabled until `source test` passes); prints its id.
    Add {
        /// smb://[[DOMAIN;]user@]host[:port]/share/path or
        /// nfs://host[:port]/export/path[?mount_port=N][&export=/long/export][&uid=N&gid=N]
        url: String,
        #[arg(long)]
        couple: String,
        #[arg(long = "type", value_parser = parse_type)]
        footage_type: Option<FootageType>,
        #[arg(long)]
        camera: Option<String>,
        #[arg(long)]
        user: Option<String>,
        /// The SMB user's domain (workgroup), as `DOMAIN;user@` in the URL does.
        #[arg(long)]
        domain: Option<String>,
        /// Read the password from the first line of standard input (it is stored encrypted).
        #[arg(long)]
        password_stdin: bool,
        /// leave, delete, or move:REMOTE_DIR (acts on the share after a file is catalogued).
        #[arg(long, default_value = "leave")]
        post_import: String,
        /// What to do with a clip whose content is already in the couple: skip (its sidecars with it) or import.
        /// A sidecar is never skipped on its own bytes, and empty files are never duplicates.
        #[arg(long, default_value = "skip", value_parser = parse_dup)]
        duplicates: DuplicateAction,
    },
    List {
        #[arg(long)]
        json: bool,
    },
    /// Change what a source imports and how: its path on the share, user, couple, camera, type, post-import
    /// action, duplicates. What it imported stays where it is; the next pass uses the new settings.
    Edit {
        id: i64,
        /// The folder on the share (or export) to import from.
        #[arg(long)]
        path: Option<String>,
        #[arg(long)]
        user: Option<String>,
        #[arg(long)]
        domain: Option<String>,
        #[arg(long)]
        couple: Option<String>,
        /// A camera slug, or `none` to route by metadata.
        #[arg(long)]
        camera: Option<String>,
        /// modern, dadcam, super8, or `auto` to route by metadata.
        #[arg(long = "type")]
        footage_type: Option<String>,
        #[arg(long)]
        post_import: Option<String>,
        #[arg(long, value_parser = parse_dup)]
        duplicates: Option<DuplicateAction>,
    },
    /// Replace the stored password of a source with the first line of standard input (stored encrypted).
    SetPassword {
        id: i64,
    },
    /// Connect and look at the path; enables the source when it works.
    Test {
        id: i64,
    },
    Enable {
        id: i64,
    },
    Disable {
        id: i64,
    },
    Remove {
        id: i64,
    },
    /// One import pass now, as an import session.
    Import {
        id: i64,
        #[arg(long)]
        json: bool,
    },
    /// What happened on a source: connections, imports, retries, pauses, failures.
    Events {
        id: i64,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
enum CatalogCmd {
    /// Copy every row of this archive's catalog into an empty catalog elsewhere (`postgres://ROLE@HOST/DB`, its
    /// schema made by `nightfox migrate`; or `sqlite:///path/catalog.db`, created), and check the counts.
    Copy {
        #[arg(long)]
        to: String,
        /// Then point this archive at the copy (archive.toml); the old catalog stays as it was.
        #[arg(long)]
        switch: bool,
    },
}

#[derive(Subcommand, Debug)]
enum CoupleCmd {
    /// Add a couple; prints its folder name. A couple of the same name (ignoring case and punctuation) and date
    /// is refused unless --allow-same-name.
    Add {
        #[arg(long)]
        name: String,
        /// The event date, YYYY-MM-DD.
        #[arg(long)]
        date: String,
        /// Add a second couple although one of this name and date exists (its folder gets -2, -3...).
        #[arg(long)]
        allow_same_name: bool,
    },
    /// Correct a couple's name and/or event date; its folder follows (the old folder name keeps resolving, not
    /// listed), unless --keep-folder. --folder names the folder outright.
    Rename {
        /// The couple's folder name.
        folder: String,
        #[arg(long)]
        name: Option<String>,
        /// The event date, YYYY-MM-DD.
        #[arg(long)]
        date: Option<String>,
        /// The new folder name (default: made from the name and date, as `couple add` makes it).
        #[arg(long, conflicts_with = "keep_folder")]
        to_folder: Option<String>,
        /// Change the display name and date only; every path stays.
        #[arg(long)]
        keep_folder: bool,
    },
    List {
        #[arg(long)]
        json: bool,
    },
    /// Move a couple (all its files) to the trash; gone from the tree at once, restorable until gc purges it.
    Remove {
        /// The couple's folder name.
        folder: String,
        /// Do not ask.
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Subcommand, Debug)]
enum CameraCmd {
    /// Add a camera; prints its slug.
    Add {
        #[arg(long)]
        name: String,
        #[arg(long = "type", value_parser = parse_type)]
        footage_type: FootageType,
        #[arg(long)]
        make: Option<String>,
        #[arg(long)]
        model: Option<String>,
        #[arg(long)]
        serial: Option<String>,
    },
    /// Correct a camera's display name and/or its slug (its folder in every couple; the old slug keeps
    /// resolving, not listed).
    Rename {
        slug: String,
        #[arg(long)]
        name: Option<String>,
        /// The new slug (lowercase letters, digits and dashes).
        #[arg(long = "slug")]
        new_slug: Option<String>,
    },
    /// Move every file of camera FROM into camera INTO (names that collide get a suffix) and retire FROM: its
    /// folders' old paths keep resolving, and what would route to FROM routes to INTO.
    Merge { from: String, into: String },
    List {
        #[arg(long)]
        json: bool,
    },
}

fn parse_type(s: &str) -> std::result::Result<FootageType, String> {
    FootageType::parse(s).map_err(|e| e.to_string())
}

fn parse_dup(s: &str) -> std::result::Result<DuplicateAction, String> {
    DuplicateAction::parse(s).map_err(|e| e.to_string())
}

fn parse_layout(s: &str) -> std::result::Result<crate::export::Layout, String> {
    crate::export::Layout::parse(s).map_err(|e| e.to_string())
}

fn parse_duration(s: &str) -> std::result::Result<std::time::Duration, String> {
    crate::serve::parse_duration(s).map_err(|e| e.to_string())
}

fn parse_size(s: &str) -> std::result::Result<u64, String> {
    crate::serve::parse_size(s).map_err(|e| e.to_string())
}

fn parse_cache_size(s: &str) -> std::result::Result<u64, String> {
    if s.trim() == "0" {
        return Ok(0);
    }
    parse_size(s)
}

fn parse_rate(s: &str) -> std::result::Result<u64, String> {
    crate::serve::parse_rate(s).map_err(|e| e.to_string())
}

/// Runs the CLI and returns the process exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("nightfox=warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    #[cfg(feature = "s3")]
    crate::blobs::s3::set_cache_options(crate::blobs::s3::CacheOptions {
        dir: cli.cache_dir.clone(),
        size: cli.cache_size,
    });
    #[cfg(not(feature = "s3"))]
    let _ = (&cli.cache_dir, cli.cache_size);
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("nightfox: {}", one_line(&e.to_string()));
            match e {
                Error::Invalid(_) => 2,
                _ => 1,
            }
        }
    }
}

/// Makes sure a message stays on one line whatever names it quotes.
fn one_line(s: &str) -> String {
    s.replace('\n', "\\n").replace('\r', "\\r")
}

/// Who runs this command, and when (the archive's clock: `$NIGHTFOX_NOW` in tests), for the audit log.
fn actor() -> crate::catalog::Actor {
    crate::catalog::Actor::this_process(crate::verify::clock())
}

fn print_json<T: Serialize>(v: &T) -> Result<()> {
    let s = serde_json::to_string_pretty(v).map_err(|e| Error::Invalid(format!("json: {e}")))?;
    println!("{s}");
    Ok(())
}

fn open(cli_archive: &Option<PathBuf>) -> Result<Archive> {
    let a = Archive::open(&archive::resolve_dir(cli_archive.clone())?)?;
    crate::secrets::check_key_file(&a.root)?;
    Ok(a)
}

fn cancel_flag() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        let _ = signal_hook::flag::register(sig, Arc::clone(&flag));
    }
    flag
}

/// Progress bars on a terminal; nothing otherwise (the summary line follows).
struct Bars {
    bar: Option<ProgressBar>,
}

impl Bars {
    fn new() -> Self {
        Bars { bar: None }
    }
}

impl Observer for Bars {
    fn start(&self, _files: u64, bytes: u64) {
        if let Some(b) = &self.bar {
            b.set_length(bytes);
        }
    }
    fn advance(&self, bytes: u64) {
        if let Some(b) = &self.bar {
            b.inc(bytes);
        }
    }
    fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

fn bars() -> Bars {
    let mut b = Bars::new();
    if std::io::stderr().is_terminal() {
        let pb = ProgressBar::new(0);
        if let Ok(style) = ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
        ) {
            pb.set_style(style);
        }
        b.bar = Some(pb);
    }
    b
}

/// Progress as a plain line on stderr every [`LINE_EVERY`] (bytes, speed, ETA): for logs and pipes, where a
/// bar would be noise.
struct Lines {
    what: &'static str,
    state: std::sync::Mutex<LineState>,
}

struct LineState {
    start: std::time::Instant,
    last: std::time::Instant,
    done: u64,
    total: u64,
}

const LINE_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

impl Lines {
    fn new(what: &'static str) -> Self {
        let now = std::time::Instant::now();
        Lines { what, state: std::sync::Mutex::new(LineState { start: now, last: now, done: 0, total: 0 }) }
    }
}

impl Observer for Lines {
    fn start(&self, files: u64, bytes: u64) {
        if let Ok(mut s) = self.state.lock() {
            s.total = bytes;
            s.start = std::time::Instant::now();
            s.last = s.start;
        }
        eprintln!("{}: {files} blob(s), {} to check", self.what, crate::human_bytes(bytes as i64));
    }
    fn advance(&self, bytes: u64) {
        let Ok(mut s) = self.state.lock() else { return };
        s.done += bytes;
        if s.last.elapsed() < LINE_EVERY {
            return;
        }
        s.last = std::time::Instant::now();
        let secs = s.start.elapsed().as_secs_f64().max(0.001);
        let rate = s.done as f64 / secs;
        let eta = if rate > 0.0 { s.total.saturating_sub(s.done) as f64 / rate } else { 0.0 };
        eprintln!(
            "{}: {} of {} ({}/s, ETA {})",
            self.what,
            crate::human_bytes(s.done as i64),
            crate::human_bytes(s.total as i64),
            crate::human_bytes(rate as i64),
            crate::serve::format_duration(std::time::Duration::from_secs(eta.ceil() as u64))
        );
    }
    fn finish(&self) {}
}

/// The progress of a long command: a bar on a terminal, plain periodic lines otherwise, nothing under `--json`.
fn progress(json: bool, what: &'static str) -> Box<dyn Observer> {
    if json {
        Box::new(Bars::new())
    } else if std::io::stderr().is_terminal() {
        Box::new(bars())
    } else {
        Box::new(Lines::new(what))
    }
}

fn print_summary(s: &Summary, json: bool) -> Result<i32> {
    if json {
        print_json(s)?;
    } else {
        let mut extra = String::new();
        if s.files_healed > 0 {
            extra.push_str(&format!(", {} healed", s.files_healed));
        }
        if s.files_damaged > 0 {
            extra.push_str(&format!(", {} damaged", s.files_damaged));
        }
        println!(
            "session {}: {} files ({}) in {}: {} imported, {} duplicate, {} skipped, {} failed{extra}",
            s.session,
            s.files_total,
            crate::human_bytes(s.bytes_total),
            s.couple,
            s.files_imported,
            s.files_duplicate,
            s.files_skipped,
            s.files_failed
        );
        if let Some(m) = &s.onset_manifest {
            println!("on-set ASC MHL: {}", one_line(m));
        }
        for f in &s.failures {
            eprintln!("failed: {}", one_line(f));
        }
        for d in &s.damaged {
            eprintln!("damaged: {}", one_line(d));
        }
        if s.files_failed > 0 {
            eprintln!("retry the failed files with `nightfox resume {}` (add --salvage to a new import to keep what can be read)", s.session);
        }
    }
    Ok(if s.files_failed > 0 || s.files_damaged > 0 { 1 } else { 0 })
}

/// A DSN with a password on the command line is refused: argv is visible to every user of the machine (`ps`).
fn refuse_password_in_argv(url: &str, var: &str) -> Result<()> {
    if crate::catalog::url_has_password(url) {
        return Err(Error::Invalid(format!(
            "a password on the command line is visible to every user (ps): give {} without it and put the \
             full DSN in {var} in the env file",
            crate::catalog::redact_url(url)
        )));
    }
    Ok(())
}

fn run(cli: Cli) -> Result<i32> {
    let serving = matches!(cli.command, Command::Serve { .. });
    if let Some(f) = archive::env::chosen(cli.env_file.as_deref(), serving) {
        archive::env::load(&f)?;
    }
    if let Some(k) = &cli.key_file {
        // Single-threaded: at start, before any thread is spawned (as the env file's variables).
        std::env::set_var(crate::secrets::KEY_FILE_VAR, k);
    }
    if cli.ephemeral_secrets {
        crate::secrets::set_ephemeral(true);
        eprintln!("--ephemeral-secrets: new source passwords are kept in memory only and lost when this process exits");
    }
    match cli.command {
        Command::Init { blobs, catalog, encrypt } => {
            refuse_password_in_argv(&catalog, crate::catalog::DATABASE_URL_VAR)?;
            let dir = archive::resolve_dir(cli.archive)?;
            let a = Archive::init_encrypted(&dir, &blobs, &catalog, encrypt)?;
            if crate::catalog::is_postgres(&catalog) {
                let couples = a.catalog()?.couples()?.len();
                println!(
                    "created archive at {} (joined {}: {couples} couples)",
                    dir.display(),
                    a.catalog_description()
                );
            } else {
                println!("created archive at {}", dir.display());
            }
            if encrypt {
                println!(
                    "blobs are encrypted: keep {} and the archive secret (NIGHTFOX_SECRET or the key file) backed \
                     up together",
                    dir.join(crate::blobs::vault::WRAPPED_KEY).display()
                );
            }
            Ok(0)
        }
        Command::Migrate { dsn, app_role } => {
            if let Some(d) = &dsn {
                refuse_password_in_argv(d, crate::catalog::MIGRATE_URL_VAR)?;
            }
            let (shown, old, new) = crate::catalog::migrate(dsn.as_deref(), app_role.as_deref())?;
            if old == new {
                println!("{shown}: schema {new}, up to date");
            } else {
                println!("{shown}: schema {old} -> {new}");
            }
            Ok(0)
        }
        Command::Catalog(CatalogCmd::Copy { to, switch }) => {
            refuse_password_in_argv(&to, crate::catalog::DATABASE_URL_VAR)?;
            let a = open(&cli.archive)?;
            let n = crate::catalog::copy::copy_archive_catalog(&a, &to, switch)?;
            println!(
                "copied {} rows from {} to {}{}",
                n,
                a.catalog_description(),
                crate::catalog::redact_url(&to),
                if switch { "; the archive now uses the copy" } else { "" }
            );
            Ok(0)
        }
        Command::Couple(CoupleCmd::Add { name, date, allow_same_name }) => {
            organize::validate_date(&date)?;
            if name.trim().is_empty() {
                return Err(Error::Invalid("a couple needs a name".into()));
            }
            let a = open(&cli.archive)?;
            let cat = a.catalog()?;
            if !allow_same_name {
                let same =
                    cat.couples_on(&date)?.into_iter().find(|c| organize::same_couple_name(&c.display_name, &name));
                if let Some(c) = same {
                    return Err(Error::CoupleExists { name: c.display_name, date, folder: c.folder_name });
                }
            }
            let base = organize::couple_folder_base(&date, &name);
            let folder = organize::first_free(&base, |c| cat.folder_name_taken(c))?;
            let id = cat.add_couple(name.trim(), &date, &folder)?;
            cat.audit(&actor(), "couple.add", Some(id), &format!("{folder}: {:?} ({date})", name.trim()))?;
            println!("{folder}");
            Ok(0)
        }
        Command::Couple(CoupleCmd::Rename { folder, name, date, to_folder, keep_folder }) => {
            if name.is_none() && date.is_none() && to_folder.is_none() {
                return Err(Error::Invalid("couple rename needs --name, --date or --to-folder".into()));
            }
            if let Some(d) = &date {
                organize::validate_date(d)?;
            }
            let name = name.map(|n| n.trim().to_string());
            if name.as_deref() == Some("") {
                return Err(Error::Invalid("a couple needs a name".into()));
            }
            let a = open(&cli.archive)?;
            let cat = a.catalog()?;
            let c = cat.couple_by_folder(&folder)?;
            let name = name.unwrap_or(c.display_name);
            let date = date.unwrap_or(c.event_date);
            let own = cat.couple_aliases_of(c.id)?;
            let new_folder = match to_folder {
                _ if keep_folder => c.folder_name.clone(),
                Some(f) => {
                    validate_folder_name(&f)?;
                    f
                }
                None => {
                    let base = organize::couple_folder_base(&date, &name);
                    organize::first_free(&base, |f| {
                        Ok(f != c.folder_name && !own.iter().any(|o| o == f) && cat.folder_name_taken(f)?)
                    })?
                }
            };
            if new_folder == c.folder_name {
                cat.rename_couple(c.id, &name, &date, &actor())?;
            } else {
                cat.rename_couple_folder(c.id, &name, &date, &new_folder, &actor())?;
            }
            println!("{new_folder}\t{date}\t{name}");
            Ok(0)
        }
        Command::Couple(CoupleCmd::List { json }) => {
            let a = open(&cli.archive)?;
            let couples = a.catalog()?.couples()?;
            if json {
                print_json(&couples)?;
            } else {
                for c in couples {
                    println!(
                        "{}\t{}\t{}\t{} files\t{}",
                        c.folder_name,
                        c.event_date,
                        c.display_name,
                        c.file_count,
                        crate::human_bytes(c.total_bytes)
                    );
                }
            }
            Ok(0)
        }
        Command::Camera(CameraCmd::Add { name, footage_type, make, model, serial }) => {
            let a = open(&cli.archive)?;
            let cat = a.catalog()?;
            let base = organize::slugify(&name);
            if base.is_empty() || base == "unknown" {
                return Err(Error::Invalid(format!("{name:?} cannot name a camera")));
            }
            let slug = organize::first_free(&base, |c| cat.camera_slug_taken(c))?;
            cat.add_camera(&crate::catalog::NewCamera {
                slug: &slug,
                name: name.trim(),
                footage_type,
                make: make.as_deref().map(str::trim).filter(|s| !s.is_empty()),
                model: model.as_deref().map(str::trim).filter(|s| !s.is_empty()),
                serial: serial.as_deref().map(str::trim).filter(|s| !s.is_empty()),
                auto: false,
            })?;
            cat.audit(&actor(), "camera.add", None, &format!("{slug}: {:?} ({footage_type})", name.trim()))?;
            println!("{slug}");
            Ok(0)
        }
        Command::Camera(CameraCmd::Rename { slug, name, new_slug }) => {
            if name.is_none() && new_slug.is_none() {
                return Err(Error::Invalid("camera rename needs --name or --slug".into()));
            }
            let name = name.map(|n| n.trim().to_string());
            if name.as_deref() == Some("") {
                return Err(Error::Invalid("a camera needs a name".into()));
            }
            if let Some(s) = &new_slug {
                if s.is_empty() || organize::slugify(s) != *s || s == "unknown" {
                    return Err(Error::Invalid(format!(
                        "{s:?} is not a camera slug (lowercase letters, digits and dashes; not `unknown`)"
                    )));
                }
            }
            let a = open(&cli.archive)?;
            let cat = a.catalog()?;
            let c = cat.camera_by_slug(&slug)?;
            if c.merged_into.is_some() {
                return Err(Error::Invalid(format!("camera {slug} was merged into another camera")));
            }
            let name = name.unwrap_or(c.name);
            match new_slug.filter(|s| *s != slug) {
                Some(s) => {
                    cat.rename_camera_slug(c.id, &name, &s, &actor())?;
                    println!("{s}\t{name}");
                }
                None => {
                    cat.rename_camera(c.id, &name, &actor())?;
                    println!("{slug}\t{name}");
                }
            }
            Ok(0)
        }
        Command::Camera(CameraCmd::Merge { from, into }) => {
            let a = open(&cli.archive)?;
            let cat = a.catalog()?;
            let (f, i) = (cat.camera_by_slug(&from)?, cat.camera_by_slug(&into)?);
            let moved = cat.merge_cameras(f.id, i.id, &actor())?;
            let renamed = moved.iter().filter(|m| m.from.name != m.to.name).count();
            println!("merged {from} into {into}: {} files moved, {renamed} renamed to avoid a clash", moved.len());
            Ok(0)
        }
        Command::File(FileCmd::Move { path, camera, footage_type }) => {
            file_move(cli.archive, &path, camera, footage_type)
        }
        Command::Log { couple, limit, json } => {
            let a = open(&cli.archive)?;
            let cat = a.catalog()?;
            let couple_id = couple.map(|f| cat.couple_by_folder(&f)).transpose()?.map(|c| c.id);
            let events = cat.audit_log(couple_id, limit)?;
            if json {
                print_json(&events)?;
            } else {
                for e in events {
                    println!(
                        "{}\tuid {}\t{}\t{}\t{}",
                        crate::fs::rfc3339(e.at),
                        e.uid,
                        e.action,
                        e.couple.as_deref().unwrap_or("-"),
                        e.summary
                    );
                }
            }
            Ok(0)
        }
        Command::Camera(CameraCmd::List { json }) => {
            let a = open(&cli.archive)?;
            let cams = a.catalog()?.camera_listing()?;
            if json {
                print_json(&cams)?;
            } else {
                for CameraListing { camera: c, file_count } in cams {
                    let mm = [c.make.as_deref(), c.model.as_deref(), c.serial.as_deref()]
                        .iter()
                        .flatten()
                        .copied()
                        .collect::<Vec<_>>()
                        .join(" ");
                    println!("{}\t{}\t{}\t{file_count} files\t{}", c.slug, c.footage_type, c.name, mm);
                }
            }
            Ok(0)
        }
        Command::Import { couple, footage_type, camera, duplicates, salvage, json, paths } => {
            let a = open(&cli.archive)?;
            let obs = bars();
            let imp = Importer::new(&a, &obs, cancel_flag());
            let s = imp.import(&ImportRequest { couple, footage_type, camera, duplicates, paths, salvage })?;
            print_summary(&s, json)
        }
        Command::Session(SessionCmd::Cancel { id }) => {
            let a = open(&cli.archive)?;
            let s = Importer::new(&a, &crate::ingest::Quiet, cancel_flag()).cancel_session(id)?;
            println!(
                "session {id} cancelled for good: {} of {} files were finished and stay in the archive",
                s.files_processed, s.files_total
            );
            Ok(0)
        }
        Command::Repair { paths, json } => {
            let a = open(&cli.archive)?;
            let done = crate::verify::repair(&a, &paths)?;
            if json {
                print_json(&done)?;
            } else {
                for r in &done {
                    let what = match r.outcome.as_str() {
                        "healed" => format!("healed blob {}", r.hash),
                        "ok" => format!("blob {} is whole: nothing to repair", r.hash),
                        "unknown" => "no such content in the archive".to_string(),
                        _ => format!("failed: {}", r.detail.as_deref().unwrap_or("")),
                    };
                    println!("{}: {}", one_line(&r.path), one_line(&what));
                }
                let healed = done.iter().filter(|r| r.outcome == "healed").count();
                println!("{healed} healed");
            }
            Ok(if done.iter().any(|r| r.outcome == "failed") { 1 } else { 0 })
        }
        Command::Resume { id, json } => {
            let a = open(&cli.archive)?;
            let obs = bars();
            let imp = Importer::new(&a, &obs, cancel_flag());
            let s = imp.resume(id)?;
            print_summary(&s, json)
        }
        Command::Sessions { json } => {
            let a = open(&cli.archive)?;
            let sessions = a.catalog()?.sessions()?;
            if json {
                print_json(&sessions)?;
            } else {
                for s in sessions {
                    println!(
                        "{}\t{}\t{}\t{}/{} files\t{}/{}\t{} duplicate\t{} failed{}{}",
                        s.id,
                        s.couple,
                        s.status.as_str(),
                        s.files_processed,
                        s.files_total,
                        crate::human_bytes(s.bytes_processed),
                        crate::human_bytes(s.bytes_total),
                        s.files_duplicate,
                        s.files_error,
                        s.error.map(|e| format!("\t{}", one_line(&e))).unwrap_or_default(),
                        s.onset_manifest.map(|m| format!("\ton-set ASC MHL: {}", one_line(&m))).unwrap_or_default()
                    );
                }
            }
            Ok(0)
        }
        Command::Generate { couples, cameras, files, blobs } => {
            let a = open(&cli.archive)?;
            let spec = crate::generate::Spec { couples, cameras, files, blobs };
            let made = crate::generate::generate(&a, spec, |_| {})?;
            println!("generated {made} files");
            Ok(0)
        }
        Command::Verify { couple, older_than, limit, json } => {
            let a = open(&cli.archive)?;
            let obs = progress(json, "verify");
            let stop = cancel_flag();
            let opts = crate::verify::Options {
                couple: couple.as_deref(),
                older_than,
                limit,
                stop: Some(&stop),
                ..Default::default()
            };
            let r = crate::verify::scrub(&a, &opts, &*obs)?;
            let orphans = r.orphans.as_ref().map_or(0, |o| o.objects.len());
            if json {
                print_json(&r)?;
            } else {
                for c in &r.couples {
                    let first: Vec<String> = c.first.iter().map(|f| one_line(f)).collect();
                    let more = c.files.saturating_sub(first.len());
                    println!(
                        "BAD {}: {} missing, {} damaged blob(s), {} file(s): {}{}",
                        c.couple,
                        c.missing,
                        c.damaged,
                        c.files,
                        first.join(", "),
                        if more > 0 { format!(" and {more} more (--json lists every one)") } else { String::new() }
                    );
                }
                if let Some(o) = &r.orphans {
                    print_orphans(o);
                }
                let mut tail = String::new();
                if orphans > 0 {
                    tail.push_str(&format!(", {orphans} orphan(s) in objects/"));
                }
                if r.stopped {
                    tail.push_str("; stopped: the next run continues with the rest");
                } else if !r.complete {
                    tail.push_str("; limit reached: the next run continues with the rest");
                }
                println!(
                    "verified {} blobs ({}): {} problem(s){tail}",
                    r.blobs_checked,
                    crate::human_bytes(r.bytes_checked as i64),
                    r.problems.len()
                );
            }
            Ok(if r.problems.is_empty() && orphans == 0 { 0 } else { 1 })
        }
        Command::Info { path, json } => info(cli.archive, &path, json),
        Command::Couple(CoupleCmd::Remove { folder, yes }) => couple_remove(&cli.archive, &folder, yes),
        Command::File(FileCmd::Remove { path, yes }) => file_remove(cli.archive, &path, yes),
        Command::Session(SessionCmd::Undo { id, yes }) => session_undo(&cli.archive, id, yes),
        Command::Trash(cmd) => trash_cmd(&cli.archive, cmd),
        Command::Gc { dry_run, json, yes } => gc_cmd(&cli.archive, dry_run, json, yes),
        Command::Source(cmd) => source_cmd(&cli.archive, cmd),
        Command::Secrets(cmd) => secrets_cmd(&cli.archive, cmd),
        Command::Mount { mountpoint, allow_other, no_passthrough, verify_reads } => {
            let a = open(&cli.archive)?;
            let lock =
                crate::serve::lock_daemon(&a, &crate::serve::absolute(&mountpoint).to_string_lossy(), "mount", None)?;
            let opts =
                crate::frontends::fuse::MountOptions { allow_other, no_passthrough: no_passthrough || verify_reads };
            let mount = crate::frontends::fuse::FuseMount::new(&mountpoint, opts);
            let fs_opts = crate::fs::FsOptions { verify_reads };
            crate::frontends::serve_with(a, fs_opts, vec![Box::new(mount)], move || drop(lock))?;
            Ok(0)
        }
        #[cfg(feature = "nfs-export")]
        Command::ExportNfs { listen, allow_remote } => {
            use crate::frontends::nfs::{ExportOptions, NfsExport};
            let opts = ExportOptions { listen, allow_remote };
            opts.check()?;
            let a = open(&cli.archive)?;
            let lock = crate::serve::lock_daemon(&a, &format!("nfs://{listen}/"), "export-nfs", None)?;
            crate::frontends::serve(a, vec![Box::new(NfsExport::new(opts))], move || drop(lock))?;
            Ok(0)
        }
        Command::Serve {
            mountpoint,
            allow_other,
            #[cfg(feature = "nfs-export")]
            nfs,
            #[cfg(feature = "nfs-export")]
            allow_remote,
            poll_interval,
            scrub_every,
            scrub_limit,
            scrub_rate,
        } => {
            let a = open(&cli.archive)?;
            let mount = crate::frontends::fuse::MountOptions { allow_other, ..Default::default() };
            let scrub =
                crate::serve::ScrubSchedule::resolve(a.config.scrub.as_ref(), scrub_every, scrub_limit, scrub_rate)?;
            let opts = crate::serve::ServeOptions { mountpoint, mount, poll_interval, scrub };
            #[allow(unused_mut)]
            let mut front_ends: Vec<Box<dyn crate::frontends::FrontEnd>> = vec![crate::serve::mount_of(&opts)];
            #[cfg(feature = "nfs-export")]
            if let Some(listen) = nfs {
                let export = crate::frontends::nfs::ExportOptions { listen, allow_remote };
                export.check()?;
                front_ends.push(Box::new(crate::frontends::nfs::NfsExport::new(export)));
            }
            crate::serve::serve_on(a, &opts, front_ends)?;
            Ok(0)
        }
        Command::Status { json } => {
            let a = open(&cli.archive)?;
            let s = crate::serve::status(&a)?;
            if json {
                print_json(&s)?;
            } else {
                print!("{}", s.render());
            }
            Ok(0)
        }
        Command::Export { what, dest, layout, json } => {
            let a = open(&cli.archive)?;
            let obs = if json { Bars::new() } else { bars() };
            let cancel = cancel_flag();
            let s = crate::export::export(&a, &what, &dest, layout, &obs, &cancel)?;
            if json {
                print_json(&s)?;
            } else {
                for f in &s.failed {
                    eprintln!("failed: {}", one_line(f));
                }
                println!(
                    "exported {} files ({}) to {}: {} copied, {} already there, {} failed{}",
                    s.files,
                    crate::human_bytes(s.bytes as i64),
                    s.dest.display(),
                    s.copied,
                    s.present,
                    s.failed.len(),
                    s.manifest
                        .as_ref()
                        .and_then(|m| m.file_name())
                        .map(|m| format!("; ASC MHL {}", m.to_string_lossy()))
                        .unwrap_or_default()
                );
            }
            Ok(if s.failed.is_empty() { 0 } else { 1 })
        }
        Command::Mhl { what, dir, json } => mhl_cmd(&cli.archive, &what, &dir, json),
        Command::BackupCatalog { file } => {
            let a = open(&cli.archive)?;
            a.catalog()?.backup_to(&file)?;
            println!("catalog backed up to {}", file.display());
            Ok(0)
        }
        Command::MigrateBlobs { to, json } => {
            let a = open(&cli.archive)?;
            let bar = progress(json, "migrating blobs");
            let r = crate::migrate::migrate_blobs(&a, &to, &*bar)?;
            if json {
                print_json(&r)?;
            } else {
                println!(
                    "{} blobs now in {}: {} copied ({}), {} there already; the copies in {} stay until you remove \
                     them",
                    r.blobs,
                    r.to,
                    r.copied,
                    crate::human_bytes(r.bytes_copied as i64),
                    r.already,
                    r.from
                );
            }
            Ok(0)
        }
    }
}

fn mhl_cmd(archive_flag: &Option<PathBuf>, what: &str, dir: &std::path::Path, json: bool) -> Result<i32> {
    if what == "check" {
        let r = crate::mhl::check::check(dir)?;
        if json {
            print_json(&r)?;
        } else {
            for p in &r.problems {
                println!("{}", one_line(&p.to_string()));
            }
            let verdict = if r.problems.is_empty() { "OK" } else { "FAILED" };
            println!("{verdict}: {} files verified, {} problem(s) in {}", r.files_ok, r.problems.len(), dir.display());
        }
        return Ok(if r.problems.is_empty() { 0 } else { 1 });
    }
    let session: i64 =
        what.parse().map_err(|_| Error::Invalid(format!("{what:?} is neither `check` nor an import session id")))?;
    let a = open(archive_flag)?;
    let path = crate::mhl::session::write_session_history(&a, session, dir)?;
    println!("wrote {}", path.display());
    Ok(0)
}

/// How many strays of each kind the text report names.
const FIRST_STRAYS: usize = 20;

/// The orphan check in text: each orphan of `objects/` (up to [`FIRST_STRAYS`]), then one line for `tmp/`.
fn print_orphans(o: &crate::orphans::Orphans) {
    for s in o.objects.iter().take(FIRST_STRAYS) {
        println!("ORPHAN {} ({}): not a catalogued blob", one_line(&s.path), crate::human_bytes(s.size as i64));
    }
    if o.objects.len() > FIRST_STRAYS {
        println!("ORPHAN and {} more (--json lists every one)", o.objects.len() - FIRST_STRAYS);
    }
    if !o.tmp.is_empty() {
        let names: Vec<String> = o
            .tmp
            .iter()
            .take(3)
            .map(|s| one_line(&std::path::Path::new(&s.path).file_name().unwrap_or_default().to_string_lossy()))
            .collect();
        let bytes: u64 = o.tmp.iter().map(|s| s.size).sum();
        println!(
            "tmp/ holds {} file(s) ({}): {}{} (copies kept for resuming a session, or left by a crash; not an error)",
            o.tmp.len(),
            crate::human_bytes(bytes as i64),
            names.join(", "),
            if o.tmp.len() > 3 { ", ..." } else { "" }
        );
    }
}

#[derive(Serialize)]
struct FileInfo {
    path: String,
    blake3: String,
    /// The blob's xxh64 and XXH3-128 as ASC MHL writes them (16 and 32 lowercase hex digits); null for a blob
    /// stored before they were kept.
    xxh64: Option<String>,
    xxh128: Option<String>,
    size: u64,
    original_path: String,
    source: String,
    session: Option<i64>,
    couple: String,
    footage_type: FootageType,
    camera: String,
    camera_name: Option<String>,
    camera_make: Option<String>,
    camera_model: Option<String>,
    camera_serial: Option<String>,
    captured_at: Option<String>,
    imported_at: String,
    source_mtime: String,
    sidecars: Vec<String>,
    sidecar_of: Option<String>,
    /// Salvaged: the ranges `[start, len]` of the original that could not be read, stored as zeros.
    damaged: Option<serde_json::Value>,
    /// `ok`, or `damaged`/`missing` when `verify` found the stored blob so (the mount answers EIO until healed).
    blob_health: String,
    /// Where the file was before a move or merge (still resolving there, not listed), oldest first.
    old_paths: Vec<String>,
    /// The couple's old folder names (still resolving, not listed).
    old_couple_folders: Vec<String>,
}

/// A folder name given outright (`couple rename --to-folder`): one path component a filesystem takes.
fn validate_folder_name(f: &str) -> Result<()> {
    if f.is_empty() || f == "." || f == ".." || f.starts_with('.') || f.contains('/') || f.contains('\0') {
        return Err(Error::Invalid(format!("{f:?} is not a folder name (one path component, not hidden)")));
    }
    if f.len() > 255 || f == "ingest" {
        return Err(Error::Invalid(format!("{f:?} cannot be a couple folder")));
    }
    Ok(())
}

/// The archive and the path inside its tree that a command's PATH names (a path in a mount, or a tree path).
fn archive_and_tree_path(archive_flag: Option<PathBuf>, path: &std::path::Path) -> Result<(Archive, Vec<u8>)> {
    use std::os::unix::ffi::OsStrExt;
    let (archive_dir, tree) = match crate::fs::locate_in_mount(path) {
        Some((a, t)) if archive_flag.is_none() => (a, t),
        Some((_, t)) => (archive::resolve_dir(archive_flag)?, t),
        None => (archive::resolve_dir(archive_flag)?, path.as_os_str().as_bytes().to_vec()),
    };
    let a = Archive::open(&archive_dir)?;
    crate::secrets::check_key_file(&a.root)?;
    Ok((a, tree))
}

fn file_move(
    archive_flag: Option<PathBuf>,
    path: &std::path::Path,
    camera: Option<String>,
    footage_type: Option<FootageType>,
) -> Result<i32> {
    if camera.is_none() && footage_type.is_none() {
        return Err(Error::Invalid("file move needs --camera or --type".into()));
    }
    let (a, tree) = archive_and_tree_path(archive_flag, path)?;
    let cat = a.catalog()?;
    let f = crate::fs::file_at_tree_path(&cat, &tree)?;
    let camera_id = match camera.as_deref() {
        None => f.camera_id,
        Some("unknown") => None,
        Some(slug) => {
            let c = cat.camera_by_slug(slug)?;
            if let Some(into) = c.merged_into {
                let into = cat.camera_by_id(into)?.map(|c| c.slug).unwrap_or_default();
                return Err(Error::Invalid(format!("camera {slug} was merged into {into}: move to {into}")));
            }
            Some(c.id)
        }
    };
    let ft = footage_type.unwrap_or(f.footage_type);
    let moved = cat.move_file(f.id, camera_id, ft, &actor())?;
    if moved.is_empty() {
        println!("already there");
        return Ok(0);
    }
    for m in &moved {
        let moved_row = cat.file(m.file_id)?.ok_or_else(|| Error::NotFound(format!("file {}", m.file_id)))?;
        println!("{}", tree_path_of(&cat, &moved_row)?);
    }
    Ok(0)
}

/// A catalogued file's path in the tree, under its couple's folder and camera's slug now.
fn tree_path_of(cat: &crate::catalog::Catalog, f: &crate::catalog::FileRow) -> Result<String> {
    let couple = cat.couple_by_id(f.couple_id)?.folder_name;
    let slug = match f.camera_id {
        Some(id) => cat.camera_by_id(id)?.map(|c| c.slug),
        None => None,
    };
    Ok(crate::fs::tree_path(&couple, slug.as_deref(), f))
}

fn info(archive_flag: Option<PathBuf>, path: &std::path::Path, json: bool) -> Result<i32> {
    let (a, tree) = archive_and_tree_path(archive_flag, path)?;
    let cat = a.catalog()?;
    let f = crate::fs::file_at_tree_path(&cat, &tree)?;
    let couple = cat.couple_by_id(f.couple_id)?.folder_name;
    let cam = match f.camera_id {
        Some(id) => cat.camera_by_id(id)?,
        None => None,
    };
    let slug = cam.as_ref().map(|c| c.slug.clone());
    let lossy = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let blob = cat.blob(&f.blob_hash)?;
    let fi = FileInfo {
        path: crate::fs::tree_path(&couple, slug.as_deref(), &f),
        blake3: f.blob_hash.clone(),
        xxh64: blob.as_ref().and_then(|b| b.xxh64.clone()),
        xxh128: blob.and_then(|b| b.xxh128),
        size: f.size,
        original_path: lossy(&f.original_path),
        source: f.source.clone(),
        session: f.session_id,
        couple,
        footage_type: f.footage_type,
        camera: slug.unwrap_or_else(|| "unknown".into()),
        camera_name: cam.as_ref().map(|c| c.name.clone()),
        camera_make: cam.as_ref().and_then(|c| c.make.clone()),
        camera_model: cam.as_ref().and_then(|c| c.model.clone()),
        camera_serial: cam.as_ref().and_then(|c| c.serial.clone()),
        captured_at: f.captured_at.map(crate::fs::rfc3339),
        imported_at: crate::fs::rfc3339(f.imported_at),
        source_mtime: crate::fs::rfc3339(f.source_mtime_ns.div_euclid(1_000_000_000)),
        sidecars: cat.sidecars_of(f.id)?.iter().map(|s| lossy(&s.display_name)).collect(),
        sidecar_of: match f.sidecar_of {
            Some(id) => cat.file(id)?.map(|c| lossy(&c.display_name)),
            None => None,
        },
        damaged: f.bad_ranges.as_deref().and_then(|r| serde_json::from_str(r).ok()),
        blob_health: cat.blob_health(&f.blob_hash)?.unwrap_or_else(|| "ok".into()),
        old_paths: crate::fs::tree::old_paths_of(&cat, f.id)?,
        old_couple_folders: cat.couple_aliases_of(f.couple_id)?,
    };
    if json {
        print_json(&fi)?;
        return Ok(0);
    }
    let row = |k: &str, v: &str| println!("{k:<14} {}", one_line(v));
    row("path", &fi.path);
    row("blake3", &fi.blake3);
    let not_kept = "not recorded (stored before checksums were kept)";
    row("xxh64", fi.xxh64.as_deref().unwrap_or(not_kept));
    row("xxh128", fi.xxh128.as_deref().unwrap_or(not_kept));
    row("size", &format!("{} ({})", fi.size, crate::human_bytes(fi.size as i64)));
    row("original path", &fi.original_path);
    row("source", &fi.source);
    row("session", &fi.session.map(|s| s.to_string()).unwrap_or_default());
    row("footage type", fi.footage_type.as_str());
    let detail = [fi.camera_make.as_deref(), fi.camera_model.as_deref()].iter().flatten().copied().collect::<Vec<_>>();
    let mut cam = fi.camera.clone();
    if !detail.is_empty() {
        cam.push_str(&format!(" ({})", detail.join(" ")));
    }
    if let Some(sn) = &fi.camera_serial {
        cam.push_str(&format!(", serial {sn}"));
    }
    row("camera", &cam);
    row("captured at", fi.captured_at.as_deref().unwrap_or("unknown"));
    row("imported at", &fi.imported_at);
    row("source mtime", &fi.source_mtime);
    row("sidecars", &fi.sidecars.join(", "));
    if let Some(c) = &fi.sidecar_of {
        row("sidecar of", c);
    }
    for p in &fi.old_paths {
        row("old path", p);
    }
    if !fi.old_couple_folders.is_empty() {
        row("old folders", &fi.old_couple_folders.join(", "));
    }
    if let Some(d) = &fi.damaged {
        row("damaged", &format!("salvaged; unreadable ranges [start, len] stored as zeros: {d}"));
    }
    if fi.blob_health != "ok" {
        row(
            "blob",
            &format!("{} (the mount answers EIO; re-import or `nightfox repair` the original)", fi.blob_health),
        );
    }
    Ok(0)
}

/// The first line of standard input as a password (never from argv, which `ps` shows).
fn password_from_stdin() -> Result<crate::secrets::Password> {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| Error::Invalid(format!("cannot read the password from stdin: {e}")))?;
    Ok(crate::secrets::Password::new(line.trim_end_matches(['\r', '\n'])))
}

/// A source's stored user: `DOMAIN;user` with a domain, `user`, or empty (guest). Only SMB has users.
fn smb_username(protocol: &str, user: Option<&str>, domain: Option<&str>) -> Result<String> {
    match (protocol, user, domain) {
        (_, None, None) => Ok(String::new()),
        ("smb", None, Some(_)) => {
            Err(Error::Invalid("--domain needs a user (--user or DOMAIN;user@ in the URL)".into()))
        }
        ("smb", Some(u), d) => {
            let (url_domain, name) = crate::sources::split_smb_user(u);
            if name.is_empty() || name.contains(';') {
                return Err(Error::Invalid(format!("{u:?} is not a user name")));
            }
            match (url_domain, d) {
                (a, Some(b)) if !a.is_empty() && a != b => {
                    Err(Error::Invalid(format!("the domain is given twice: {a:?} with the user, {b:?} with --domain")))
                }
                ("", None) => Ok(name.to_string()),
                ("", Some(d)) | (d, _) => Ok(format!("{d};{name}")),
            }
        }
        (p, _, _) => Err(Error::Invalid(format!("a {p} source has no user or domain"))),
    }
}

/// The post-import action of a source reading `path`; a move target inside the path is refused.
fn post_import_for(action: &str, path: &str) -> Result<crate::ingest::PostImport> {
    let post = crate::ingest::PostImport::parse(action)?;
    if let crate::ingest::PostImport::Move(dir) = &post {
        if std::path::Path::new(dir).starts_with(std::path::Path::new(path)) {
            return Err(Error::Invalid(format!(
                "the move target {dir} is inside the source path {path}: moved files would be imported again on \
                 every pass; choose a folder outside it"
            )));
        }
    }
    Ok(post)
}

/// Puts source `id`'s password in the first credential tier that works and records it; says on stderr where it
/// went when that is not the catalog's default (the keyring is the default on a SQLite catalog).
fn store_password(
    a: &Archive,
    cat: &dyn crate::catalog::CatalogConn,
    id: i64,
    pw: &crate::secrets::Password,
) -> Result<()> {
    let shared = crate::catalog::is_postgres(&a.catalog_description());
    let (tier, warning) = crate::secrets::store::set_password(&a.root, cat, shared, id, pw)?;
    if let Some(w) = warning {
        eprintln!("warning: {w}");
    }
    match tier {
        Some(crate::secrets::Tier::Memory) => eprintln!(
            "the password of source {id} is kept in this process's memory only (--ephemeral-secrets): it is lost when \
             the process exits"
        ),
        Some(t) => tracing::info!(source = id, tier = t.as_str(), "source password stored"),
        None => {}
    }
    Ok(())
}

fn secrets_cmd(archive_flag: &Option<PathBuf>, cmd: SecretsCmd) -> Result<i32> {
    let a = open(archive_flag)?;
    let cat = a.catalog()?;
    let report = match cmd {
        SecretsCmd::Migrate { to } => {
            let to = crate::secrets::Tier::parse(&to)?;
            if to == crate::secrets::Tier::Keyring && crate::catalog::is_postgres(&a.catalog_description()) {
                eprintln!(
                    "warning: this catalog is shared by seats; a keyring belongs to this machine ({}): other seats \
                     cannot read the passwords moved there",
                    crate::jobs::hostname()
                );
            }
            crate::secrets::migrate(&a.root, &*cat, to)?
        }
        SecretsCmd::Rotate => crate::secrets::rotate(&a.root, &*cat)?,
    };
    for l in &report.lines {
        println!("{l}");
    }
    Ok(if report.failed > 0 { 1 } else { 0 })
}

fn source_cmd(archive_flag: &Option<PathBuf>, cmd: SourceCmd) -> Result<i32> {
    let a = open(archive_flag)?;
    let cat = a.catalog()?;
    match cmd {
        SourceCmd::Add { url, couple, footage_type, camera, user, domain, password_stdin, post_import, duplicates } => {
            let u = crate::sources::SourceUrl::parse(&url)?;
            let username = if u.protocol == "nfs" {
                // The AUTH_SYS identity, `UID:GID` from `?uid=&gid=`.
                if user.is_some() || domain.is_some() {
                    return Err(Error::Invalid(
                        "an NFS source has no user or domain: give the identity as ?uid=N&gid=N in the URL".into(),
                    ));
                }
                u.user.clone().unwrap_or_default()
            } else {
                let user = match (u.user.clone(), user) {
                    (Some(a), Some(b)) if a != b => {
                        return Err(Error::Invalid(format!(
                            "the user is given twice: {a:?} in the URL, {b:?} with --user"
                        )))
                    }
                    (Some(a), _) => Some(a),
                    (None, b) => b,
                };
                smb_username(&u.protocol, user.as_deref(), domain.as_deref())?
            };
            let couple = cat.couple_by_folder(&couple)?;
            let camera_id = match camera {
                Some(slug) => Some(cat.camera_by_slug(&slug)?.id),
                None => None,
            };
            let post = post_import_for(&post_import, &u.path)?;
            let password = if password_stdin { password_from_stdin()? } else { crate::secrets::Password::default() };
            let id = cat.add_source(&crate::catalog::NewNetworkSource {
                protocol: &u.protocol,
                host: &u.host,
                port: u.port,
                mount_port: u.mount_port,
                share: &u.share,
                settings: crate::catalog::SourceSettings {
                    path: &u.path,
                    username: &username,
                    password_enc: &[],
                    credential_key: None,
                    couple_id: couple.id,
                    footage_type,
                    camera_id,
                    post_import: &post.as_string(),
                    duplicates,
                },
            })?;
            // The row first (the keyring entry is named by its id), then its password in the first tier that works.
            if let Err(e) = store_password(&a, &*cat, id, &password) {
                let _ = cat.remove_source(id);
                return Err(e);
            }
            println!("{id}");
            Ok(0)
        }
        SourceCmd::List { json } => {
            let sources = cat.sources()?;
            if json {
                print_json(&sources)?;
            } else {
                for s in sources {
                    println!(
                        "{}\t{}\t{}\t{}\t{}\t{} failures\t{}\tpassword: {}{}",
                        s.id,
                        s.url(),
                        s.couple,
                        if s.enabled { "enabled" } else { "disabled" },
                        s.connection_state,
                        s.consecutive_failures,
                        match (s.protocol.as_str(), s.username.is_empty()) {
                            ("nfs", true) => "uid:gid of nightfox".to_string(),
                            ("nfs", false) => format!("uid:gid {}", s.username),
                            (_, true) => "guest".to_string(),
                            (_, false) => format!("user {}", s.username),
                        },
                        crate::secrets::Tier::of(&s).map_or("none", |t| t.as_str()),
                        s.last_error.map(|e| format!("\t{}", one_line(&e))).unwrap_or_default()
                    );
                }
            }
            Ok(0)
        }
        SourceCmd::Test { id } => {
            let row = cat.source(id)?;
            let password = crate::secrets::password_of(&a.root, &row)?;
            let result = crate::sources::open_network(&row, password)
                .and_then(|src| src.stat(std::path::Path::new(&row.path)).map(|_| src));
            match result {
                Ok(_) => {
                    cat.set_source_enabled(id, true)?;
                    cat.set_source_state(id, "connected", Some(0), None)?;
                    cat.add_event(id, None, "info", "test passed; source enabled")?;
                    println!("source {id}: connected to {}; enabled", row.url());
                    Ok(0)
                }
                Err(e) => {
                    let msg = e.to_string();
                    cat.set_source_state(id, "failed", None, Some(&msg))?;
                    cat.add_event(id, None, "error", &format!("test failed: {msg}"))?;
                    Err(e)
                }
            }
        }
        SourceCmd::Enable { id } => {
            let row = cat.source(id)?;
            // Only a source that has connected (a test passed) may be enabled.
            if !matches!(row.connection_state.as_str(), "connected" | "retrying" | "paused") {
                return Err(Error::Disabled(format!(
                    "source {id} is {}: run `nightfox source test {id}` until it connects",
                    row.connection_state
                )));
            }
            cat.set_source_enabled(id, true)?;
            Ok(0)
        }
        SourceCmd::Disable { id } => {
            cat.source(id)?;
            cat.set_source_enabled(id, false)?;
            Ok(0)
        }
        SourceCmd::Remove { id } => {
            let row = cat.source(id)?;
            cat.remove_source(id)?;
            if let Some(w) = crate::secrets::store::delete(row.credential_key.as_deref()) {
                eprintln!("warning: {w}");
            }
            Ok(0)
        }
        SourceCmd::Edit { id, path, user, domain, couple, camera, footage_type, post_import, duplicates } => {
            let row = cat.source(id)?;
            let path = match path {
                Some(p) => format!("/{}", p.trim_matches('/')),
                None => row.path.clone(),
            };
            let username = match (user, domain) {
                (None, None) => row.username.clone(),
                (user, domain) => {
                    let (old_domain, old_user) = crate::sources::split_smb_user(&row.username);
                    let user = user.unwrap_or_else(|| old_user.to_string());
                    let domain = domain.or_else(|| (!old_domain.is_empty()).then(|| old_domain.to_string()));
                    smb_username(&row.protocol, Some(user.as_str()).filter(|u| !u.is_empty()), domain.as_deref())?
                }
            };
            let couple_id = match couple {
                Some(f) => cat.couple_by_folder(&f)?.id,
                None => row.couple_id,
            };
            let camera_id = match camera.as_deref() {
                None => row.camera_id,
                Some("none") => None,
                Some(slug) => Some(cat.camera_by_slug(slug)?.id),
            };
            let footage_type = match footage_type.as_deref() {
                None => row.footage_type,
                Some("auto") => None,
                Some(t) => Some(FootageType::parse(t)?),
            };
            let post = post_import_for(post_import.as_deref().unwrap_or(&row.post_import), &path)?.as_string();
            cat.update_source(
                id,
                &crate::catalog::SourceSettings {
                    path: &path,
                    username: &username,
                    couple_id,
                    footage_type,
                    camera_id,
                    post_import: &post,
                    duplicates: duplicates.unwrap_or(row.duplicates),
                    ..row.settings()
                },
            )?;
            println!("{}", cat.source(id)?.url());
            Ok(0)
        }
        SourceCmd::SetPassword { id } => {
            cat.source(id)?;
            let password = password_from_stdin()?;
            store_password(&a, &*cat, id, &password)?;
            eprintln!("the password of source {id} is replaced; `nightfox source test {id}` tries it");
            Ok(0)
        }
        SourceCmd::Import { id, json } => {
            drop(cat);
            let obs = bars();
            let imp = Importer::new(&a, &obs, cancel_flag());
            let s = imp.import_source(id)?;
            print_summary(&s, json)
        }
        SourceCmd::Events { id, json } => {
            cat.source(id)?;
            let events = cat.events(id)?;
            if json {
                print_json(&events)?;
            } else {
                for e in events {
                    let session = e.session_id.map(|s| format!("session {s}")).unwrap_or_default();
                    println!("{}\t{}\t{}\t{}", crate::fs::rfc3339(e.at), e.level, session, one_line(&e.message));
                }
            }
            Ok(0)
        }
    }
}

// ---- letting go: removal, the trash, gc ------------------------------------------------------------------------

/// Goes ahead with a destructive command: at once with `--yes`; after a yes typed on a terminal; otherwise (no
/// terminal on stdin) refused with one line (exit 2).
fn confirm(what: &str, yes: bool) -> Result<()> {
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(Error::Invalid(format!("{what}: not confirmed (no terminal to ask on); add --yes")));
    }
    eprint!("{what}? [y/N] ");
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer).map_err(|e| Error::io("stdin", e))?;
    match answer.trim().to_ascii_lowercase().as_str() {
        "y" | "yes" => Ok(()),
        _ => Err(Error::Invalid(format!("{what}: not confirmed; nothing changed"))),
    }
}

/// When a removal made now may be purged: now + `[trash] retention`.
fn purge_after(a: &Archive) -> Result<i64> {
    Ok(crate::verify::clock().saturating_add(a.config.trash_retention()?.as_secs() as i64))
}

fn print_removed(e: &crate::catalog::TrashEntry) {
    println!(
        "removed {} ({} files, {}) to trash entry {}: restorable with `nightfox trash restore {}` until {}, then gc purges it",
        one_line(&e.label),
        e.files,
        crate::human_bytes(e.bytes),
        e.id,
        e.id,
        crate::fs::rfc3339(e.purge_after)
    );
}

fn couple_remove(archive_flag: &Option<PathBuf>, folder: &str, yes: bool) -> Result<i32> {
    let a = open(archive_flag)?;
    let cat = a.catalog()?;
    let c = cat.couple_by_folder(folder)?;
    let until = purge_after(&a)?;
    confirm(
        &format!("remove couple {folder} ({} files, {}) to the trash", c.file_count, crate::human_bytes(c.total_bytes)),
        yes,
    )?;
    print_removed(&cat.trash_couple(c.id, until, &actor())?);
    Ok(0)
}

fn file_remove(archive_flag: Option<PathBuf>, path: &std::path::Path, yes: bool) -> Result<i32> {
    let (a, tree) = archive_and_tree_path(archive_flag, path)?;
    let cat = a.catalog()?;
    let f = crate::fs::file_at_tree_path(&cat, &tree)?;
    let label = tree_path_of(&cat, &f)?;
    let sidecars = cat.sidecars_of(f.id)?.len();
    let until = purge_after(&a)?;
    let with = if sidecars > 0 { format!(" with its {sidecars} sidecar(s)") } else { String::new() };
    confirm(&format!("remove {}{with} to the trash", one_line(&label)), yes)?;
    print_removed(&cat.trash_file(f.id, &label, until, &actor())?);
    Ok(0)
}

fn session_undo(archive_flag: &Option<PathBuf>, id: i64, yes: bool) -> Result<i32> {
    let a = open(archive_flag)?;
    let cat = a.catalog()?;
    let s = cat.session(id)?;
    let until = purge_after(&a)?;
    confirm(&format!("undo session {id} of {} (move the files it added to the trash)", s.couple), yes)?;
    print_removed(&cat.trash_session(id, until, &actor())?);
    Ok(0)
}

fn trash_cmd(archive_flag: &Option<PathBuf>, cmd: TrashCmd) -> Result<i32> {
    let a = open(archive_flag)?;
    let cat = a.catalog()?;
    match cmd {
        TrashCmd::List { json } => {
            let entries = cat.trash()?;
            if json {
                print_json(&entries)?;
            } else {
                for e in entries {
                    println!(
                        "{}\t{}\t{}\t{}\t{} files\t{}\tremoved {}\tpurged after {}",
                        e.id,
                        e.kind.as_str(),
                        e.couple,
                        one_line(&e.label),
                        e.files,
                        crate::human_bytes(e.bytes),
                        crate::fs::rfc3339(e.trashed_at),
                        crate::fs::rfc3339(e.purge_after)
                    );
                }
            }
        }
        TrashCmd::Restore { id } => {
            let e = cat.restore(id, &actor())?;
            println!(
                "restored trash entry {id}: {} ({} files, {}) in {}",
                one_line(&e.label),
                e.files,
                crate::human_bytes(e.bytes),
                e.couple
            );
        }
    }
    Ok(0)
}

fn gc_cmd(archive_flag: &Option<PathBuf>, dry_run: bool, json: bool, yes: bool) -> Result<i32> {
    let a = open(archive_flag)?;
    if !dry_run {
        confirm("gc: purge the expired trash and delete unreferenced blobs for good", yes)?;
    }
    let r = crate::gc::run(&a, &crate::gc::GcOptions { dry_run, ..Default::default() })?;
    if json {
        print_json(&r)?;
    } else {
        for p in &r.purged {
            println!(
                "{} trash entry {}: {} in {} ({} files, {})",
                if dry_run { "would purge" } else { "purged" },
                p.id,
                one_line(&p.label),
                p.couple,
                p.files,
                crate::human_bytes(p.bytes)
            );
        }
        for k in &r.kept {
            println!("kept {}", one_line(k));
        }
        println!("gc: {}", r.summary());
    }
    Ok(0)
}
