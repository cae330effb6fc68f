//! The command-line edge: argument parsing (clap), progress bars on a terminal (indicatif), one summary line
//! otherwise, `--json` for scripts, and the mapping of library errors to a one-line message and an exit code
//! (0 success, 1 failure, 2 wrong usage: clap's own errors and `Error::Usage`, the command line itself wrong).
//! Every command and argument explains itself in `--help`; `completions`, `man` and the hidden `help-markdown`
//! (docs/cli.md) are generated from the same clap definitions ([`command`]).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use clap::builder::PossibleValue;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::archive::{self, Archive};
use crate::catalog::{CameraListing, DuplicateAction, FootageType};
use crate::error::{Error, Result};
use crate::ingest::{ImportRequest, Importer, Observer, Summary};
use crate::organize;
use crate::serve::one_line;

/// The heading of the options every command takes.
const GLOBAL: &str = "Global options";

/// Shown under `--json` everywhere.
const JSON_HELP: &str = "Print JSON for scripts instead of text";

#[derive(Parser, Debug)]
#[command(
    name = "nightfox",
    version,
    about = "A verified footage archive, shown as a read-only filesystem",
    long_about = "A verified footage archive for wedding and event filmmakers, shown as a read-only filesystem: every \
                  file copied once, verified against the disk, stored by its BLAKE3 hash and catalogued, then \
                  mounted as /<couple>/source/<modern|dadcam|super8>/<camera>/<clip>.",
    after_help = "Start with `nightfox init`, `nightfox couple add`, `nightfox import`, then `nightfox mount` or \
                  `nightfox serve`. `nightfox COMMAND --help` explains each command; docs/cli.md lists them all.\n\
                  Exit status: 0 success, 1 failure, 2 wrong usage (the command line itself is wrong)."
)]
pub struct Cli {
    /// The archive directory (else $NIGHTFOX_ARCHIVE, else $XDG_DATA_HOME/nightfox, else ~/.local/share/nightfox).
    #[arg(long, global = true, value_name = "DIR", help_heading = GLOBAL)]
    archive: Option<PathBuf>,
    /// The operator's settings, nightfox.toml (else $NIGHTFOX_CONFIG, else nightfox.toml in the archive); flags
    /// and variables beat it. See contrib/nightfox.toml.example.
    #[arg(long, global = true, value_name = "FILE", help_heading = GLOBAL)]
    config: Option<PathBuf>,
    /// Where a remote blob store (s3://) keeps its local cache of blobs (default: cache/ in the archive).
    #[arg(long, global = true, value_name = "DIR", help_heading = GLOBAL)]
    cache_dir: Option<PathBuf>,
    /// How large that cache may grow (20GB, 500MB...; 0: no cache, every read from the store). Default 20GB.
    #[arg(long, global = true, value_name = "SIZE", value_parser = parse_cache_size, help_heading = GLOBAL)]
    cache_size: Option<u64>,
    /// Read secrets and settings from this env file first (NAME=value lines, mode 0600; see .env.example).
    /// `serve` reads /etc/nightfox/env when it exists and none is given.
    #[arg(long, global = true, value_name = "FILE", help_heading = GLOBAL)]
    env_file: Option<PathBuf>,
    /// The key file of stored source passwords (32 bytes, mode 0600; may live outside the archive). Default:
    /// $NIGHTFOX_KEY_FILE, else secret.key in the archive. Unused when $NIGHTFOX_SECRET is set.
    #[arg(long, global = true, value_name = "FILE", help_heading = GLOBAL)]
    key_file: Option<PathBuf>,
    /// Keep new source passwords in this process's memory only (tests, demos): nothing is written to the keyring
    /// or the catalog, and they are lost when the process exits.
    #[arg(long, global = true, help_heading = GLOBAL, overrides_with = "no_ephemeral_secrets")]
    ephemeral_secrets: bool,
    /// Store new source passwords as usual, even if nightfox.toml says `[secrets] ephemeral = true`.
    #[arg(long, global = true, help_heading = GLOBAL, overrides_with = "ephemeral_secrets")]
    no_ephemeral_secrets: bool,
    #[command(subcommand)]
    command: Command,
}

// Commands are listed by group (`display_order`): setting up (1-9), organizing (10-19), importing (20-29),
// checking and delivering (30-39), serving (40-49), letting go (50-59), the shell and configuration (60-69).
#[derive(Subcommand, Debug)]
enum Command {
    /// Create a new, empty archive (at --archive DIR).
    ///
    /// Writes archive.toml (which blob store and catalog, by URL), the catalog (0600), objects/, tmp/ and locks/.
    /// A blob store or catalog URL this build does not know is refused before anything is written.
    #[command(
        display_order = 1,
        after_help = "Examples:\n\n    \
            nightfox --archive /srv/footage init\n    \
            nightfox --archive /srv/footage init --encrypt\n    \
            nightfox init --blobs 's3://footage/archive?endpoint=http://127.0.0.1:8333&region=us-east-1'\n    \
            nightfox --env-file /etc/nightfox/env init --catalog postgres://nightfox_app@db:5432/nightfox"
    )]
    Init {
        /// Where blobs live: `local` (objects/ in the archive), `file:///DIR`, or
        /// `s3://BUCKET/PREFIX?endpoint=URL&region=R` (credentials from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY
        /// or s3.env in the archive, never in the URL).
        #[arg(long, default_value = "local", value_name = "URL")]
        blobs: String,
        /// Where the catalog lives: `sqlite` (catalog.db in the archive), `sqlite:///PATH.db`, or
        /// `postgres://ROLE@HOST:PORT/DB` (the runtime role; its password from NIGHTFOX_DATABASE_URL in the env
        /// file, never on the command line). A Postgres catalog that other seats use already is joined: this seat
        /// gets its own staging and caches.
        #[arg(long, default_value = "sqlite", value_name = "URL")]
        catalog: String,
        /// Store the blobs encrypted (AES-256-GCM in 64 KiB chunks; identity stays the hash of the plaintext)
        /// under a random data key kept only wrapped with the archive secret in keys/vault.wrapped: back up that
        /// file and the secret (NIGHTFOX_SECRET or the key file) together: the footage cannot be read without both.
        /// The catalog keeps the wrapped key too: a seat joining an encrypted shared catalog is encrypted with or
        /// without this flag (its secret must open the key).
        #[arg(long)]
        encrypt: bool,
    },
    /// Create or upgrade a Postgres catalog's schema, and grant the runtime role its rows.
    ///
    /// Runs with the migration role (the only role allowed DDL), under an advisory lock; the DSN's password comes
    /// from NIGHTFOX_DATABASE_MIGRATE_URL (in the env file), never from the command line.
    #[command(display_order = 2)]
    Migrate {
        /// The migration DSN, `postgres://ROLE@HOST:PORT/DB` (default: NIGHTFOX_DATABASE_MIGRATE_URL).
        #[arg(long, value_name = "URL")]
        dsn: Option<String>,
        /// The runtime role to grant (default: the role of NIGHTFOX_DATABASE_URL, else nightfox_app).
        #[arg(long, value_name = "ROLE")]
        app_role: Option<String>,
    },
    /// The catalog itself: `catalog copy --to URL` copies it whole into another backend.
    #[command(subcommand, display_order = 3)]
    Catalog(CatalogCmd),
    /// Couples (events) of the archive: add, rename, list, remove.
    #[command(subcommand, display_order = 10)]
    Couple(CoupleCmd),
    /// Cameras footage is sorted by: add (with a match rule), rename, merge, list.
    #[command(subcommand, display_order = 11)]
    Camera(CameraCmd),
    /// Catalogued files: move one (with its sidecars), or remove it to the trash.
    #[command(subcommand, display_order = 12)]
    File(FileCmd),
    /// Import files and folders (cards) into a couple, verified.
    ///
    /// Each file is read once: copied into tmp/ with its hash computed inline, fsynced, re-hashed from disk, then
    /// stored by its hash and catalogued, a clip together with its sidecars. Each clip is routed to a camera and a
    /// footage type (see --camera and --type). A file that cannot be read fails alone (exit 1; `nightfox resume
    /// ID` retries it); a full disk or a disconnected card pauses the session for `nightfox resume ID`. On a
    /// terminal a progress bar shows bytes, speed and ETA; otherwise one summary line is printed.
    #[command(
        display_order = 20,
        after_help = "Examples:\n\n    \
            nightfox import --couple 2025-12-31-julia-sven /media/card-a /media/card-b\n    \
            nightfox import --couple 2025-12-31-julia-sven --type super8 --camera super8-scan ~/scans\n    \
            nightfox import --couple 2025-12-31-julia-sven --salvage --json /media/damaged-card"
    )]
    Import {
        /// The couple's folder name, e.g. 2025-12-31-julia-sven (see `nightfox couple list`).
        #[arg(long, value_name = "FOLDER")]
        couple: String,
        /// Footage type of every file (default: the camera's type, else modern).
        #[arg(long = "type", value_enum, value_name = "TYPE")]
        footage_type: Option<FootageType>,
        /// Put every file under this camera (a slug from `nightfox camera list`). Default: routed by metadata: the
        /// camera whose match rule fits the clip, else one created from the detected make and model, else
        /// `unknown`.
        #[arg(long, value_name = "SLUG")]
        camera: Option<String>,
        /// What to do with a clip whose content is already in the couple. A sidecar is never skipped on its own
        /// bytes, and empty files are never duplicates.
        #[arg(long, default_value = "skip", value_enum, value_name = "ACTION")]
        duplicates: DuplicateAction,
        /// Copy what can be read of a damaged file (unreadable ranges stored as zeros and recorded; the file is
        /// catalogued as damaged) instead of failing it.
        #[arg(long)]
        salvage: bool,
        #[arg(long, help = JSON_HELP)]
        json: bool,
        /// Folders (cards) and single files to import.
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
    },
    /// List import sessions with their status and progress.
    #[command(display_order = 21)]
    Sessions {
        #[arg(long, help = JSON_HELP)]
        json: bool,
    },
    /// Import sessions: cancel one for good, or undo what a finished one added.
    #[command(subcommand, display_order = 22)]
    Session(SessionCmd),
    /// Put verified copies in place of damaged or missing blobs (found by `verify`).
    ///
    /// Hashes the given files and puts each one that matches a damaged or missing blob in its place, verified.
    #[command(display_order = 24)]
    Repair {
        /// Files (copies of the originals) to hash and compare with the damaged or missing blobs.
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
        #[arg(long, help = JSON_HELP)]
        json: bool,
    },
    /// Continue an interrupted or paused import session, or retry the failed files of a finished one.
    ///
    /// Continues an interrupted, cancelled or paused session, or retries the failed files of a finished one.
    /// Finished files are not copied again; a big file continues from its kept partial copy.
    #[command(display_order = 23)]
    Resume {
        /// The import session's id (see `nightfox sessions`).
        #[arg(value_name = "ID")]
        id: i64,
        #[arg(long, help = JSON_HELP)]
        json: bool,
    },
    /// Re-hash the stored blobs, oldest-verified first, and look for orphans in objects/.
    ///
    /// Re-hashes the stored blobs from disk (or the store), oldest-verified first, with progress; records
    /// `verified_at` and a scrub run (`status` shows the last). A blob that is missing or differs is recorded as
    /// missing or damaged (the mount answers EIO for it until a verified copy heals it) and its files are named.
    /// A whole-archive run then looks for files in objects/ the catalog does not know and lists tmp/ leftovers.
    /// Exit 1 if any blob is missing or differs, or objects/ has an orphan.
    #[command(
        display_order = 30,
        after_help = "Examples:\n\n    \
            nightfox verify\n    \
            nightfox verify --couple 2025-12-31-julia-sven\n    \
            nightfox verify --older-than 30d --limit 500GB --json"
    )]
    Verify {
        /// Only the blobs of this couple (its folder name); no orphan check then.
        #[arg(long, value_name = "FOLDER")]
        couple: Option<String>,
        /// Only blobs never verified or last verified longer ago than this: 12h, 30d, 2w... (default: all).
        #[arg(long, value_name = "AGE", value_parser = parse_duration)]
        older_than: Option<std::time::Duration>,
        /// Stop after this many bytes (500GB, 64MiB...), oldest-verified first; the next run continues with the
        /// rest. The first blob is checked whatever its size. Default: no limit.
        #[arg(long, value_name = "SIZE", value_parser = parse_size)]
        limit: Option<u64>,
        #[arg(long, help = JSON_HELP)]
        json: bool,
    },
    /// Network sources (SMB shares, NFS exports) that import into a couple.
    #[command(subcommand, display_order = 25)]
    Source(SourceCmd),
    /// Stored source passwords: move them between keyring and catalog, or re-encrypt them.
    #[command(subcommand, display_order = 26)]
    Secrets(SecretsCmd),
    /// Catalogue a synthetic archive in bulk (couples x cameras x files), for scale tests and benchmarks.
    #[command(hide = true)]
    Generate {
        /// How many couples.
        #[arg(long)]
        couples: u32,
        /// How many cameras per couple.
        #[arg(long)]
        cameras: u32,
        /// How many files per camera.
        #[arg(long)]
        files: u32,
        /// Store each file's (tiny) blob too; without it the blobs are absent.
        #[arg(long)]
        blobs: bool,
    },
    /// Show what the archive knows of one file: hashes, original path, camera, sidecars...
    ///
    /// BLAKE3, xxh64 and xxh128 (as ASC MHL and `xxhsum -H1`/`-H2` write them), size, original path, source,
    /// session, camera, capture time, sidecars, old paths and the blob's health.
    #[command(display_order = 31)]
    Info {
        /// A path inside a mount, or a tree path `COUPLE/source/TYPE/CAMERA/NAME`.
        #[arg(value_name = "PATH")]
        path: PathBuf,
        #[arg(long, help = JSON_HELP)]
        json: bool,
    },
    /// Mount the archive read-only at MOUNTPOINT and serve it until SIGINT/SIGTERM or unmount.
    ///
    /// The tree is read-only, plus the writable /ingest/<couple>/ that takes `cp -r` and `rsync -a`. One mount or
    /// serve per archive. Reads use kernel passthrough where available (root, Linux 6.9+).
    #[command(
        display_order = 40,
        after_help = "Examples:\n\n    \
            nightfox mount ~/footage\n    \
            nightfox mount --allow-other --verify-reads /mnt/nightfox\n    \
            fusermount3 -u ~/footage    # unmount (or Ctrl-C the mount)"
    )]
    Mount {
        /// An existing empty directory to mount on (default: [mount] point in nightfox.toml).
        #[arg(value_name = "MOUNTPOINT")]
        mountpoint: Option<PathBuf>,
        /// Let other users (and root) see the mount.
        #[arg(long, overrides_with = "no_allow_other")]
        allow_other: bool,
        /// Only this user sees the mount, whatever nightfox.toml says.
        #[arg(long, overrides_with = "allow_other")]
        no_allow_other: bool,
        /// Never use kernel passthrough reads, even where available.
        #[arg(long, overrides_with = "passthrough")]
        no_passthrough: bool,
        /// Use kernel passthrough reads where available (the default), whatever nightfox.toml says.
        #[arg(long, overrides_with = "no_passthrough")]
        passthrough: bool,
        /// Check every block served against the blob's BLAKE3 hash (a damaged block answers EIO and marks the blob
        /// damaged; the rest of the blob still reads). Reads take the copy path, never passthrough.
        #[arg(long, overrides_with = "no_verify_reads")]
        verify_reads: bool,
        /// Serve blocks without checking each against its hash (the default), whatever nightfox.toml says.
        #[arg(long, overrides_with = "verify_reads")]
        no_verify_reads: bool,
    },
    /// Serve the read-only tree over NFSv3 without a FUSE mount, until SIGINT/SIGTERM.
    ///
    /// The tree (couples, `.by-hash`) for Macs without macFUSE and Windows seats: TCP, one port for MOUNT and NFS,
    /// no portmapper, export path `/`. `/ingest` is not exported (NFSv3 has no close to commit on).
    #[cfg(feature = "nfs-export")]
    #[command(display_order = 42)]
    ExportNfs {
        /// Address to listen on (IPv4). Anything but loopback needs --allow-remote. Default: [nfs] listen in
        /// nightfox.toml, else 127.0.0.1:2049.
        #[arg(long, value_name = "ADDR")]
        listen: Option<std::net::SocketAddr>,
        /// Allow a listen address other machines can reach (every client that reaches it can read the archive).
        #[arg(long, overrides_with = "no_allow_remote")]
        allow_remote: bool,
        /// Refuse a listen address other machines can reach, whatever nightfox.toml says.
        #[arg(long, overrides_with = "allow_remote")]
        no_allow_remote: bool,
    },
    /// The operator's settings file, nightfox.toml: `config check [FILE]` validates it, `config show` prints what is
    /// in force and where each value came from.
    #[command(subcommand, display_order = 43)]
    Config(ConfigCmd),
    /// The daemon: mount the archive, import from the enabled sources, scrub on a schedule, until SIGINT/SIGTERM.
    ///
    /// Each enabled network source is imported every --poll-interval (backoff on failure, paused sessions resumed
    /// when the share is back); SIGHUP re-reads the sources; SIGTERM stops at a safe point. Reads
    /// /etc/nightfox/env when it exists and no --env-file is given. One serve or mount per archive. See
    /// docs/operations.md.
    #[command(
        display_order = 41,
        after_help = "Examples:\n\n    \
            nightfox serve /mnt/nightfox\n    \
            nightfox serve /mnt/nightfox --allow-other --poll-interval 5m\n    \
            nightfox serve /mnt/nightfox --scrub-every 7d --scrub-limit 500GB --scrub-rate 100MB/s\n    \
            nightfox serve /mnt/nightfox --nfs 127.0.0.1:2049\n    \
            nightfox serve /mnt/nightfox --http 127.0.0.1:8080"
    )]
    Serve {
        /// An existing empty directory to mount on (default: [mount] point in nightfox.toml).
        #[arg(value_name = "MOUNTPOINT")]
        mountpoint: Option<PathBuf>,
        /// Let other users (and root) see the mount.
        #[arg(long, overrides_with = "no_allow_other")]
        allow_other: bool,
        /// Only this user sees the mount, whatever nightfox.toml says.
        #[arg(long, overrides_with = "allow_other")]
        no_allow_other: bool,
        /// Also export the read-only tree over NFSv3 on this address (IPv4; loopback unless --allow-remote).
        #[cfg(feature = "nfs-export")]
        #[arg(long, value_name = "ADDR")]
        nfs: Option<std::net::SocketAddr>,
        /// Allow an NFS listen address other machines can reach.
        #[cfg(feature = "nfs-export")]
        #[arg(long, requires = "nfs", overrides_with = "no_allow_remote")]
        allow_remote: bool,
        /// Refuse an NFS listen address other machines can reach, whatever nightfox.toml says.
        #[cfg(feature = "nfs-export")]
        #[arg(long, overrides_with = "allow_remote")]
        no_allow_remote: bool,
        /// Time between two passes over each source: 500ms, 60s, 5m... (default: [serve] poll_interval in
        /// nightfox.toml, else 60s).
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        poll_interval: Option<std::time::Duration>,
        /// Scrub on a schedule: this long after the last complete scheduled scrub ended (7d, 24h...); also
        /// `every` in archive.toml [scrub]. Each run is recorded; `status` shows the last and the next. Default:
        /// no scheduled scrub.
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        scrub_every: Option<std::time::Duration>,
        /// Bytes one scheduled scrub checks at most, oldest-verified first (500GB...; [scrub] limit).
        #[arg(long, value_name = "SIZE", value_parser = parse_size)]
        scrub_limit: Option<u64>,
        /// Bytes per second a scheduled scrub reads at most (100MB/s...; [scrub] rate).
        #[arg(long, value_name = "RATE", value_parser = parse_rate)]
        scrub_rate: Option<u64>,
        /// Serve the dashboard (a web page and a JSON API: imports, sources, scrub; resume, cancel, test, import)
        /// on this address, e.g. 127.0.0.1:8080 (port 0: any free port, printed). Anything but loopback needs
        /// --http-token-file.
        #[arg(long, value_name = "ADDR")]
        http: Option<std::net::SocketAddr>,
        /// A 0600 file holding the dashboard's token: every API request must then send `Authorization: Bearer
        /// TOKEN` (the page asks for it once).
        #[arg(long, value_name = "FILE", requires = "http")]
        http_token_file: Option<PathBuf>,
    },
    /// The archive-wide audit log: who (uid) changed what, when; oldest first.
    ///
    /// Actions: couple.add, couple.rename, camera.add, camera.rename, camera.merge, file.move, session.import,
    /// couple.remove, file.remove, session.undo, trash.restore, trash.purge, gc.
    #[command(display_order = 34)]
    Log {
        /// Only the events of this couple (its folder name).
        #[arg(long, value_name = "FOLDER")]
        couple: Option<String>,
        /// The newest N events.
        #[arg(long, default_value_t = 1000, value_name = "N")]
        limit: u32,
        #[arg(long, help = JSON_HELP)]
        json: bool,
    },
    /// The daemon, sources, running and paused sessions, last errors (works while `serve` runs).
    #[command(display_order = 35)]
    Status {
        #[arg(long, help = JSON_HELP)]
        json: bool,
    },
    /// Copy the catalog to FILE, consistently (safe while the daemon runs).
    #[command(display_order = 5)]
    BackupCatalog {
        /// Where to write the copy; never overwritten when it exists.
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// Move every blob to another store, verified, and switch the archive to it.
    ///
    /// Each blob is staged, re-hashed and proven by the target, then archive.toml is switched; run again to resume
    /// (blobs there already are kept). No mount, serve or import may run meanwhile. The old copies stay until you
    /// remove them.
    #[command(display_order = 4)]
    MigrateBlobs {
        /// The blob store to move to: `local`, `file:///DIR` or `s3://BUCKET/PREFIX?endpoint=URL&region=R`.
        #[arg(long, value_name = "URL")]
        to: String,
        #[arg(long, help = JSON_HELP)]
        json: bool,
    },
    /// Removed couples, files and imports, restorable until gc purges them.
    #[command(subcommand, display_order = 50)]
    Trash(TrashCmd),
    /// Purge the expired trash and delete what nothing references (blobs, old tmp/ leftovers).
    ///
    /// Purges the trash entries whose retention ended ([trash] retention in archive.toml, default 30 days),
    /// deletes the blobs no file (live or in the trash) references, objects/ files the catalog never knew, and
    /// tmp/ leftovers older than a day (never a resumable session's partial copy); prints what it frees. Never
    /// deletes a blob an unfinished import or /ingest names, nor any blob while an export runs. Asks on a
    /// terminal; without one it needs --yes (or --dry-run), else exit 2. `serve` runs it daily.
    #[command(display_order = 51)]
    Gc {
        /// Delete nothing; show what would be purged and freed.
        #[arg(long)]
        dry_run: bool,
        #[arg(long, help = JSON_HELP)]
        json: bool,
        /// Do not ask.
        #[arg(long)]
        yes: bool,
    },
    /// Deliver a couple (or part of it) to a plain folder or drive, verified, with an ASC MHL history.
    ///
    /// Each file is written to a temp name, fsynced, renamed, read back from DEST's disk and compared with its
    /// hash; an ASC MHL generation is appended in DEST/ascmhl/ (`ascmhl verify` accepts it). Run again to resume
    /// after an interruption (files already right are kept) or to re-verify. Exit 1 if any file failed.
    #[command(
        display_order = 32,
        after_help = "Examples:\n\n    \
            nightfox export 2025-12-31-julia-sven /media/delivery\n    \
            nightfox export 2025-12-31-julia-sven/source/modern/sony-ilce-7sm3 /media/editor\n    \
            nightfox export 2025-12-31-julia-sven /media/delivery --layout original"
    )]
    Export {
        /// What to deliver: COUPLE, COUPLE/source/TYPE or COUPLE/source/TYPE/CAMERA (tree paths, as in the mount).
        #[arg(value_name = "WHAT")]
        what: String,
        /// The destination folder (created when missing).
        #[arg(value_name = "DEST")]
        dest: PathBuf,
        /// The layout of the files in DEST.
        #[arg(long, default_value = "tree", value_enum, value_name = "LAYOUT")]
        layout: crate::export::Layout,
        #[arg(long, help = JSON_HELP)]
        json: bool,
    },
    /// ASC MHL: verify a folder against its history, or write an import session's history.
    ///
    /// `mhl check DIR` verifies a folder against its ascmhl/ history as `ascmhl verify` does (exit 1 on any
    /// mismatch, missing or new file); `mhl SESSION DIR` writes the history of an import session (the card as it
    /// was received: original relative paths, sizes, mtimes, xxh64 and xxh128) into DIR/ascmhl/.
    #[command(
        display_order = 33,
        after_help = "Examples:\n\n    \
            nightfox mhl check /media/card-a\n    \
            nightfox mhl 12 /media/card-a    # the history of import session 12"
    )]
    Mhl {
        /// `check`, or an import session id (see `nightfox sessions`).
        #[arg(value_name = "check|SESSION")]
        what: String,
        /// The folder to check, or to write the history into.
        #[arg(value_name = "DIR")]
        dir: PathBuf,
        #[arg(long, help = JSON_HELP)]
        json: bool,
    },
    /// Print a shell completion script to stdout.
    #[command(
        display_order = 60,
        after_help = "Examples:\n\n    \
            nightfox completions bash > /etc/bash_completion.d/nightfox\n    \
            nightfox completions zsh > \"${fpath[1]}/_nightfox\"\n    \
            nightfox completions fish > ~/.config/fish/completions/nightfox.fish"
    )]
    Completions {
        /// The shell to complete for.
        #[arg(value_enum, value_name = "SHELL")]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff) to stdout, or write every page into a folder.
    #[command(
        display_order = 61,
        after_help = "Examples:\n\n    \
            nightfox man | man -l -\n    \
            nightfox man source add | man -l -\n    \
            nightfox man --out /usr/local/share/man/man1"
    )]
    Man {
        /// The command whose page to print (`source add`); default: the main page.
        #[arg(value_name = "COMMAND")]
        command: Vec<String>,
        /// Write nightfox.1 and a nightfox-COMMAND.1 for each command into this folder instead.
        #[arg(long, value_name = "DIR", conflicts_with = "command")]
        out: Option<PathBuf>,
    },
    /// Print the command-line reference as Markdown (docs/cli.md is made by it).
    #[command(hide = true)]
    HelpMarkdown {
        /// Write it to this file instead of stdout.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
enum FileCmd {
    /// Move a clip (with its sidecars) to another camera folder and/or footage type of its couple; the old path
    /// keeps resolving (not listed). PATH: a tree path or a path in a mount.
    Move {
        /// A path inside a mount, or a tree path `COUPLE/source/TYPE/CAMERA/NAME`.
        #[arg(value_name = "PATH")]
        path: PathBuf,
        /// The camera to move it to: a slug from `nightfox camera list`, or `unknown`. Default: where it is.
        #[arg(long, value_name = "SLUG")]
        camera: Option<String>,
        /// The footage type to move it to. Default: its type now.
        #[arg(long = "type", value_enum, value_name = "TYPE")]
        footage_type: Option<FootageType>,
    },
    /// Move a file (a clip with its sidecars) to the trash; restorable until gc purges it.
    ///
    /// Asks on a terminal; without one it needs --yes, else exit 2.
    Remove {
        /// A path inside a mount, or a tree path `COUPLE/source/TYPE/CAMERA/NAME`.
        #[arg(value_name = "PATH")]
        path: PathBuf,
        /// Do not ask.
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Subcommand, Debug)]
enum SessionCmd {
    /// End a session for good: it is never resumed, its partial copies are removed; the files it finished stay.
    ///
    /// A session that a process runs (another `import`, the daemon's source pollers or dashboard, another seat)
    /// stops at its next chunk; this waits for that, a minute at most. The source of a session stays enabled, so
    /// its next pass brings what the session did not finish (`source disable` stops that).
    Cancel {
        /// The import session's id (see `nightfox sessions`).
        #[arg(value_name = "ID")]
        id: i64,
    },
    /// Move what a finished session added (its files still in the archive) to the trash.
    ///
    /// Asks on a terminal; without one it needs --yes, else exit 2.
    Undo {
        /// The import session's id (see `nightfox sessions`).
        #[arg(value_name = "ID")]
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
        #[arg(long, help = JSON_HELP)]
        json: bool,
    },
    /// Put a trash entry back exactly where it was (same paths, same inodes).
    Restore {
        /// The trash entry's id (see `nightfox trash list`).
        #[arg(value_name = "ID")]
        id: i64,
    },
}

#[derive(Subcommand, Debug)]
enum SecretsCmd {
    /// Move every source's password to one tier: `keyring` (the OS keyring of this machine; the catalog keeps a
    /// reference) or `catalog` (encrypted in the catalog, readable by every seat).
    Migrate {
        /// The tier to move every password to.
        #[arg(long, value_name = "TIER", value_parser = [
            PossibleValue::new("keyring").help("the OS keyring of this machine (Secret Service)"),
            PossibleValue::new("catalog").help("encrypted in the catalog, readable by every seat"),
        ])]
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
    ///
    /// A password never goes in a URL or argv, only on stdin (--password-stdin); it is kept in the first
    /// credential tier that works (the OS keyring, else encrypted in the catalog).
    #[command(after_help = "Examples:\n\n    \
        nightfox source add smb://editor@nas/footage/incoming --couple 2025-12-31-julia-sven --password-stdin\n    \
        nightfox source add 'nfs://nas/volume1/cards?uid=1000&gid=1000' --couple 2025-12-31-julia-sven \
        --post-import move:/volume1/imported\n    \
        nightfox source test 1    # connects, and enables the source when it works")]
    Add {
        /// smb://[[DOMAIN;]user@]host[:port]/share/path or
        /// nfs://host[:port]/export/path[?mount_port=N][&export=/long/export][&uid=N&gid=N] (an NFS URL's uid and
        /// gid are the AUTH_SYS identity; default: the uid/gid nightfox runs as).
        #[arg(value_name = "URL")]
        url: String,
        /// The couple to import into (its folder name).
        #[arg(long, value_name = "FOLDER")]
        couple: String,
        /// Footage type of every file (default: the camera's type, else modern).
        #[arg(long = "type", value_enum, value_name = "TYPE")]
        footage_type: Option<FootageType>,
        /// Put every file under this camera (a slug). Default: routed by metadata, as `import` does.
        #[arg(long, value_name = "SLUG")]
        camera: Option<String>,
        /// The SMB user (default: the URL's, else guest). NFS sources have none.
        #[arg(long, value_name = "USER")]
        user: Option<String>,
        /// The SMB user's domain (workgroup), as `DOMAIN;user@` in the URL does.
        #[arg(long, value_name = "DOMAIN")]
        domain: Option<String>,
        /// Read the password from the first line of standard input (it is stored encrypted).
        #[arg(long)]
        password_stdin: bool,
        /// What to do on the share with a file once it is catalogued: `leave`, `delete`, or `move:REMOTE_DIR` (a
        /// folder outside the source's path).
        #[arg(long, default_value = "leave", value_name = "leave|delete|move:DIR")]
        post_import: String,
        /// What to do with a clip whose content is already in the couple. A sidecar is never skipped on its own
        /// bytes, and empty files are never duplicates.
        #[arg(long, default_value = "skip", value_enum, value_name = "ACTION")]
        duplicates: DuplicateAction,
    },
    /// List the sources: id, URL, couple, enabled, state, failures, user, where the password is, last error.
    List {
        #[arg(long, help = JSON_HELP)]
        json: bool,
    },
    /// Change what a source imports and how: its path on the share, user, couple, camera, type, post-import
    /// action, duplicates. What it imported stays where it is; the next pass uses the new settings.
    Edit {
        /// The source's id (see `nightfox source list`).
        #[arg(value_name = "ID")]
        id: i64,
        /// The folder on the share (or export) to import from.
        #[arg(long, value_name = "PATH")]
        path: Option<String>,
        /// The SMB user (empty: guest).
        #[arg(long, value_name = "USER")]
        user: Option<String>,
        /// The SMB user's domain (workgroup).
        #[arg(long, value_name = "DOMAIN")]
        domain: Option<String>,
        /// The couple to import into (its folder name).
        #[arg(long, value_name = "FOLDER")]
        couple: Option<String>,
        /// A camera slug, or `none` to route by metadata.
        #[arg(long, value_name = "SLUG|none")]
        camera: Option<String>,
        /// The footage type of every file, or `auto` (the camera's type, else modern).
        #[arg(long = "type", value_name = "TYPE", value_parser = ["modern", "dadcam", "super8", "auto"])]
        footage_type: Option<String>,
        /// `leave`, `delete`, or `move:REMOTE_DIR` (a folder outside the source's path).
        #[arg(long, value_name = "leave|delete|move:DIR")]
        post_import: Option<String>,
        /// What to do with a clip whose content is already in the couple.
        #[arg(long, value_enum, value_name = "ACTION")]
        duplicates: Option<DuplicateAction>,
    },
    /// Replace the stored password of a source with the first line of standard input (stored encrypted).
    SetPassword {
        /// The source's id (see `nightfox source list`).
        #[arg(value_name = "ID")]
        id: i64,
    },
    /// Connect and look at the path; enables the source when it works.
    Test {
        /// The source's id (see `nightfox source list`).
        #[arg(value_name = "ID")]
        id: i64,
    },
    /// Enable a source that has connected (`source test` passed): `serve` imports from it again.
    Enable {
        /// The source's id (see `nightfox source list`).
        #[arg(value_name = "ID")]
        id: i64,
    },
    /// Disable a source: `serve` stops importing from it; what it imported stays.
    Disable {
        /// The source's id (see `nightfox source list`).
        #[arg(value_name = "ID")]
        id: i64,
    },
    /// Forget a source and its stored password; what it imported stays in the archive.
    Remove {
        /// The source's id (see `nightfox source list`).
        #[arg(value_name = "ID")]
        id: i64,
    },
    /// One import pass now, as an import session.
    Import {
        /// The source's id (see `nightfox source list`).
        #[arg(value_name = "ID")]
        id: i64,
        #[arg(long, help = JSON_HELP)]
        json: bool,
    },
    /// What happened on a source: connections, imports, retries, pauses, failures.
    Events {
        /// The source's id (see `nightfox source list`).
        #[arg(value_name = "ID")]
        id: i64,
        #[arg(long, help = JSON_HELP)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
enum ConfigCmd {
    /// Validate nightfox.toml (FILE, else --config, $NIGHTFOX_CONFIG or the archive's): one `FILE:LINE:COL:
    /// message` line per error and exit 1, or a summary of the keys it sets and exit 0.
    Check {
        /// The file to check (default: the one the other commands would read).
        file: Option<PathBuf>,
    },
    /// Every setting of nightfox.toml with the value in force and where it came from (flag, variable, file,
    /// default).
    Show,
}

#[derive(Subcommand, Debug)]
enum CatalogCmd {
    /// Copy every row of this archive's catalog into an empty catalog elsewhere (`postgres://ROLE@HOST/DB`, its
    /// schema made by `nightfox migrate`; or `sqlite:///path/catalog.db`, created), and check the counts.
    Copy {
        /// The empty catalog to copy into: `postgres://ROLE@HOST:PORT/DB` or `sqlite:///PATH.db`.
        #[arg(long, value_name = "URL")]
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
        /// The couple's name as people write it: "Julia & Sven".
        #[arg(long, value_name = "NAME")]
        name: String,
        /// The event date, YYYY-MM-DD.
        #[arg(long, value_name = "DATE")]
        date: String,
        /// Add a second couple although one of this name and date exists (its folder gets -2, -3...).
        #[arg(long)]
        allow_same_name: bool,
    },
    /// Correct a couple's name and/or event date; its folder follows (the old folder name keeps resolving, not
    /// listed), unless --keep-folder. --folder names the folder outright.
    Rename {
        /// The couple's folder name.
        #[arg(value_name = "FOLDER")]
        folder: String,
        /// The new name.
        #[arg(long, value_name = "NAME")]
        name: Option<String>,
        /// The new event date, YYYY-MM-DD.
        #[arg(long, value_name = "DATE")]
        date: Option<String>,
        /// The new folder name (default: made from the name and date, as `couple add` makes it).
        #[arg(long, conflicts_with = "keep_folder", value_name = "FOLDER")]
        to_folder: Option<String>,
        /// Change the display name and date only; every path stays.
        #[arg(long)]
        keep_folder: bool,
    },
    /// List the couples: folder, date, name, files, bytes.
    List {
        #[arg(long, help = JSON_HELP)]
        json: bool,
    },
    /// Move a couple (all its files) to the trash; gone from the tree at once, restorable until gc purges it.
    ///
    /// A couple with an unfinished import or an enabled source is refused. Asks on a terminal; without one it
    /// needs --yes, else exit 2.
    Remove {
        /// The couple's folder name.
        #[arg(value_name = "FOLDER")]
        folder: String,
        /// Do not ask.
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Subcommand, Debug)]
enum CameraCmd {
    /// Add a camera; prints its slug. --make, --model and --serial make its match rule: a clip whose metadata
    /// fits it is routed to it.
    Add {
        /// Its display name: "A-cam", "Super 8 scans".
        #[arg(long, value_name = "NAME")]
        name: String,
        /// The footage type of its files.
        #[arg(long = "type", value_enum, value_name = "TYPE")]
        footage_type: FootageType,
        /// Match rule: the make in the clips' metadata (Sony, GoPro...).
        #[arg(long, value_name = "MAKE")]
        make: Option<String>,
        /// Match rule: the model in the clips' metadata (ILCE-7SM3...).
        #[arg(long, value_name = "MODEL")]
        model: Option<String>,
        /// Match rule: the body's serial number (tells two bodies of one model apart).
        #[arg(long, value_name = "SERIAL")]
        serial: Option<String>,
    },
    /// Correct a camera's display name and/or its slug (its folder in every couple; the old slug keeps
    /// resolving, not listed).
    Rename {
        /// The camera's slug (see `nightfox camera list`).
        #[arg(value_name = "SLUG")]
        slug: String,
        /// The new display name.
        #[arg(long, value_name = "NAME")]
        name: Option<String>,
        /// The new slug (lowercase letters, digits and dashes).
        #[arg(long = "slug", value_name = "NEW_SLUG")]
        new_slug: Option<String>,
    },
    /// Move every file of camera FROM into camera INTO (names that collide get a suffix) and retire FROM: its
    /// folders' old paths keep resolving, and what would route to FROM routes to INTO.
    Merge {
        /// The camera to retire (its slug).
        #[arg(value_name = "FROM")]
        from: String,
        /// The camera that takes its files (its slug).
        #[arg(value_name = "INTO")]
        into: String,
    },
    /// List the cameras: slug, type, name, files, match rule.
    List {
        #[arg(long, help = JSON_HELP)]
        json: bool,
    },
}

// The library's enums as clap value enums, so `--help` lists their values (and completions offer them).

impl ValueEnum for FootageType {
    fn value_variants<'a>() -> &'a [Self] {
        &FootageType::ALL
    }
    fn to_possible_value(&self) -> Option<PossibleValue> {
        let help = match self {
            FootageType::Modern => "digital cameras, phones, drones",
            FootageType::Dadcam => "camcorder tape transfers (DV, Hi8, VHS...)",
            FootageType::Super8 => "film scans",
        };
        Some(PossibleValue::new(self.as_str()).help(help))
    }
}

impl ValueEnum for DuplicateAction {
    fn value_variants<'a>() -> &'a [Self] {
        &[DuplicateAction::Skip, DuplicateAction::Import]
    }
    fn to_possible_value(&self) -> Option<PossibleValue> {
        let help = match self {
            DuplicateAction::Skip => "count it as a duplicate and leave it out (its sidecars with it)",
            DuplicateAction::Import => "catalogue it again (stored once)",
        };
        Some(PossibleValue::new(self.as_str()).help(help))
    }
}

impl ValueEnum for crate::export::Layout {
    fn value_variants<'a>() -> &'a [Self] {
        &[crate::export::Layout::Tree, crate::export::Layout::Original]
    }
    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(match self {
            crate::export::Layout::Tree => {
                PossibleValue::new("tree").help("the mount's layout below the couple: source/TYPE/CAMERA/NAME")
            }
            crate::export::Layout::Original => {
                PossibleValue::new("original").help("the card's relative paths (under session-ID/ for several)")
            }
        })
    }
}

fn parse_duration(s: &str) -> std::result::Result<std::time::Duration, String> {
    crate::serve::parse_duration(s).map_err(|e| e.to_string())
}

fn parse_size(s: &str) -> std::result::Result<u64, String> {
    crate::serve::parse_size(s).map_err(|e| e.to_string())
}

fn parse_cache_size(s: &str) -> std::result::Result<u64, String> {
    crate::serve::parse_size_or_zero(s).map_err(|e| e.to_string())
}

fn parse_rate(s: &str) -> std::result::Result<u64, String> {
    crate::serve::parse_rate(s).map_err(|e| e.to_string())
}

/// The clap command the CLI parses with, as `completions`, `man`, `help-markdown` and the tests read it: every
/// command that has subcommands prints its help (on stderr, exit 2) when called without one.
pub fn command() -> clap::Command {
    fn help_when_bare(c: clap::Command) -> clap::Command {
        let c = c.mut_subcommands(help_when_bare);
        if c.has_subcommands() {
            c.arg_required_else_help(true)
        } else {
            c
        }
    }
    help_when_bare(Cli::command())
}

/// The command-line reference in Markdown (docs/cli.md), from the same clap definitions as `--help`.
pub fn help_markdown() -> String {
    let options =
        clap_markdown::MarkdownOptions::new().title("Command-line reference for `nightfox`".into()).show_footer(false);
    let body = clap_markdown::help_markdown_command_custom(&command(), &options);
    format!(
        "<!-- Generated by `nightfox help-markdown --out docs/cli.md` from the clap definitions in src/cli.rs; \
         do not edit by hand (tests/cli.rs fails when it is out of date). -->\n\n{body}"
    )
}

/// Runs the CLI and returns the process exit code: 0 success, 1 failure, 2 wrong usage (clap's errors, and
/// [`Error::Usage`]); `--help` and `--version` exit 0.
pub fn main() -> i32 {
    let parsed =
        command().try_get_matches().and_then(|m| Cli::from_arg_matches(&m).map_err(|e| e.format(&mut command())));
    let mut cli = match parsed {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return e.exit_code();
        }
    };
    // systemd's variables out of the environment (children must not inherit them), before any thread.
    crate::daemon::notify::init();
    // The env file and nightfox.toml (its variables and the flags left out), before any thread or setting reader;
    // not for the commands that read no settings (they must work beside a broken file).
    let reads_no_settings = matches!(
        cli.command,
        Command::Config(ConfigCmd::Check { .. })
            | Command::Completions { .. }
            | Command::Man { .. }
            | Command::HelpMarkdown { .. }
    );
    if !reads_no_settings {
        let globals = crate::daemon::config::Globals {
            config: cli.config.as_deref(),
            archive: &cli.archive,
            cache_dir: &mut cli.cache_dir,
            cache_size: &mut cli.cache_size,
            env_file: &mut cli.env_file,
            ephemeral_secrets: &mut cli.ephemeral_secrets,
            no_ephemeral_secrets: cli.no_ephemeral_secrets,
            serving: matches!(cli.command, Command::Serve { .. }),
        };
        if let Err(e) = crate::daemon::config::prepare(globals) {
            eprintln!("nightfox: {}", one_line(&e.to_string()));
            return if matches!(e, Error::Usage(_)) { 2 } else { 1 };
        }
    }
    crate::daemon::config::init_logging();
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
                Error::Usage(_) => 2,
                _ => 1,
            }
        }
    }
}

/// An argument the library checks (a date, a URL, a post-import action, a listen address...): its refusal means
/// the command line is wrong (exit 2), not that the run failed.
fn usage<T>(r: Result<T>) -> Result<T> {
    r.map_err(|e| match e {
        Error::Invalid(m) => Error::Usage(m),
        e => e,
    })
}

/// The archive directory (`--archive`, else the environment, else XDG); none to be found is wrong usage.
fn archive_dir(flag: Option<PathBuf>) -> Result<PathBuf> {
    usage(archive::resolve_dir(flag))
}

/// A blob store URL given on the command line must name a store this build knows (nothing is opened here).
fn blobs_url_arg(url: &str) -> Result<()> {
    let s3 = cfg!(feature = "s3");
    if url == "local"
        || url.strip_prefix("file://").is_some_and(|p| p.starts_with('/'))
        || (s3 && url.starts_with("s3://"))
    {
        return Ok(());
    }
    Err(Error::Usage(format!(
        "blob store URL {url:?} is not understood: use local, file:///DIR{}",
        if s3 { " or s3://BUCKET/PREFIX?endpoint=URL&region=R" } else { " (s3:// needs the s3 feature)" }
    )))
}

/// A catalog URL given on the command line must name a catalog this build knows (nothing is opened here).
fn catalog_url_arg(url: &str) -> Result<()> {
    let pg = cfg!(feature = "postgres");
    if url == "sqlite"
        || url.strip_prefix("sqlite://").is_some_and(|p| p.starts_with('/'))
        || (pg && crate::catalog::is_postgres(url))
    {
        return Ok(());
    }
    Err(Error::Usage(format!(
        "catalog URL {} is not understood: use sqlite, sqlite:///PATH.db{}",
        crate::catalog::redact_url(url),
        if pg { " or postgres://ROLE@HOST:PORT/DB" } else { " (postgres:// needs the postgres feature)" }
    )))
}

/// `nightfox man`: the main page or one command's page on stdout, or every page into `out`.
fn man_cmd(path: &[String], out: Option<PathBuf>) -> Result<i32> {
    if let Some(dir) = out {
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        clap_mangen::generate_to(command(), &dir).map_err(|e| Error::io(&dir, e))?;
        println!("wrote the manual pages (nightfox.1, nightfox-COMMAND.1) into {}", dir.display());
        return Ok(0);
    }
    let mut cmd = command();
    cmd.build();
    for name in path {
        cmd = match cmd.find_subcommand(name) {
            Some(sub) => sub.clone(),
            None => return Err(Error::Usage(format!("no command {:?} (see `nightfox --help`)", path.join(" ")))),
        };
    }
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd).render(&mut page).map_err(|e| Error::io("stdout", e))?;
    write_stdout(&page)
}

fn write_stdout(bytes: &[u8]) -> Result<i32> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|_| out.flush()) {
        // A reader that stopped early (`| head`) is not a failure.
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(Error::io("stdout", e)),
        _ => Ok(0),
    }
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
    let a = Archive::open(&archive_dir(cli_archive.clone())?)?;
    crate::secrets::check_key_file(&a.root)?;
    Ok(a)
}

/// After `session cancel` of a running session: waits (a minute at most, or until Ctrl-C) for the process running
/// it to let go of it, and says how the session ended.
fn wait_for_cancel(a: &Archive, s: &crate::catalog::Session, stop: &AtomicBool) -> Result<String> {
    use std::sync::atomic::Ordering;
    let cat = a.catalog()?;
    let start = std::time::Instant::now();
    while crate::serve::session_running(&cat, s) {
        if stop.load(Ordering::SeqCst) || start.elapsed() > std::time::Duration::from_secs(60) {
            return Ok(format!("session {} is still stopping; `nightfox sessions` shows when it is done", s.id));
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let s = cat.session(s.id)?;
    let how = match (s.status, s.can_resume) {
        (crate::catalog::SessionStatus::Cancelled, false) => "cancelled for good",
        // It ended before the cancel reached it.
        (status, _) => status.as_str(),
    };
    Ok(format!(
        "session {} {how}: {} of {} files were finished and stay in the archive",
        s.id, s.files_processed, s.files_total
    ))
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

/// `nightfox config check|show` (see `crate::daemon::config`).
fn config_cmd(
    config: &Option<PathBuf>,
    archive: &Option<PathBuf>,
    cmd: ConfigCmd,
    cache_dir: &Option<PathBuf>,
    cache_size: Option<u64>,
    env_file: &Option<PathBuf>,
    ephemeral: bool,
) -> Result<i32> {
    match cmd {
        ConfigCmd::Check { file } => {
            let c = crate::daemon::config::check(file.as_deref(), config.as_deref(), archive.clone());
            for w in &c.warnings {
                eprintln!("{}", one_line(w));
            }
            if c.code != 0 {
                for l in &c.lines {
                    eprintln!("{}", one_line(l));
                }
                return Ok(c.code);
            }
            write_lines(&c.lines)
        }
        ConfigCmd::Show => write_lines(&crate::daemon::config::show(
            archive.as_deref(),
            cache_dir.as_deref(),
            cache_size,
            env_file.as_deref(),
            ephemeral,
        )),
    }
}

/// Lines on stdout; a reader that stopped early (`| head -1`) is no failure.
fn write_lines(lines: &[String]) -> Result<i32> {
    write_stdout(lines.iter().map(|l| format!("{l}\n")).collect::<String>().as_bytes())
}

/// A DSN with a password on the command line is refused: argv is visible to every user of the machine (`ps`).
fn refuse_password_in_argv(url: &str, var: &str) -> Result<()> {
    if crate::catalog::url_has_password(url) {
        return Err(Error::Usage(format!(
            "a password on the command line is visible to every user (ps): give {} without it and put the \
             full DSN in {var} in the env file",
            crate::catalog::redact_url(url)
        )));
    }
    Ok(())
}

/// A switch's value: the last of its two flags given (`--X` on, `--no-X` off; clap keeps only the last), else
/// nightfox.toml's key, else off.
fn switch(on: bool, off: bool, file: Option<bool>) -> bool {
    if on || off {
        on
    } else {
        file == Some(true)
    }
}

fn run(cli: Cli) -> Result<i32> {
    // The env file was read with nightfox.toml, in `main` (crate::daemon::config::prepare).
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
            blobs_url_arg(&blobs)?;
            catalog_url_arg(&catalog)?;
            let dir = archive_dir(cli.archive)?;
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
            if a.config.blobs.encrypt {
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
            catalog_url_arg(&to)?;
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
            usage(organize::validate_date(&date))?;
            if name.trim().is_empty() {
                return Err(Error::Usage("a couple needs a name".into()));
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
                return Err(Error::Usage("couple rename needs --name, --date or --to-folder".into()));
            }
            if let Some(d) = &date {
                usage(organize::validate_date(d))?;
            }
            let name = name.map(|n| n.trim().to_string());
            if name.as_deref() == Some("") {
                return Err(Error::Usage("a couple needs a name".into()));
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
                return Err(Error::Usage(format!("{name:?} cannot name a camera")));
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
                return Err(Error::Usage("camera rename needs --name or --slug".into()));
            }
            let name = name.map(|n| n.trim().to_string());
            if name.as_deref() == Some("") {
                return Err(Error::Usage("a camera needs a name".into()));
            }
            if let Some(s) = &new_slug {
                if s.is_empty() || organize::slugify(s) != *s || s == "unknown" {
                    return Err(Error::Usage(format!(
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
            let stop = cancel_flag();
            let done = Importer::new(&a, &crate::ingest::Quiet, Arc::clone(&stop)).cancel_session(id)?;
            println!("{}", done.message());
            if let crate::ingest::Cancelled::Requested(s) = done {
                println!("{}", wait_for_cancel(&a, &s, &stop)?);
            }
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
        Command::Config(cmd) => config_cmd(
            &cli.config,
            &cli.archive,
            cmd,
            &cli.cache_dir,
            cli.cache_size,
            &cli.env_file,
            cli.ephemeral_secrets,
        ),
        Command::Mount {
            mountpoint,
            allow_other,
            no_allow_other,
            no_passthrough,
            passthrough,
            verify_reads,
            no_verify_reads,
        } => {
            // nightfox.toml's [mount] fills what the command line left out.
            let f = crate::daemon::config::current();
            let mountpoint = crate::daemon::config::mount_point(mountpoint)?;
            let allow_other = switch(allow_other, no_allow_other, f.mount.allow_other);
            let no_passthrough = switch(no_passthrough, passthrough, f.mount.no_passthrough);
            let verify_reads = switch(verify_reads, no_verify_reads, f.mount.verify_reads);
            let a = open(&cli.archive)?;
            let lock =
                crate::serve::lock_daemon(&a, &crate::serve::absolute(&mountpoint).to_string_lossy(), "mount", None)?;
            let opts =
                crate::frontends::fuse::MountOptions { allow_other, no_passthrough: no_passthrough || verify_reads };
            let mount = crate::frontends::fuse::FuseMount::new(&mountpoint, opts);
            let fs_opts = crate::fs::FsOptions { verify_reads };
            crate::frontends::serve_with(a, fs_opts, vec![Box::new(mount)], || (), move || drop(lock))?;
            Ok(0)
        }
        #[cfg(feature = "nfs-export")]
        Command::ExportNfs { listen, allow_remote, no_allow_remote } => {
            use crate::frontends::nfs::{ExportOptions, NfsExport};
            let f = crate::daemon::config::current();
            let listen = listen.or(f.nfs.listen).unwrap_or(std::net::SocketAddr::from(([127, 0, 0, 1], 2049)));
            let allow_remote = switch(allow_remote, no_allow_remote, f.nfs.allow_remote);
            let opts = ExportOptions { listen, allow_remote };
            usage(opts.check())?;
            let a = open(&cli.archive)?;
            let lock = crate::serve::lock_daemon(&a, &format!("nfs://{listen}/"), "export-nfs", None)?;
            crate::frontends::serve(a, vec![Box::new(NfsExport::new(opts))], || (), move || drop(lock))?;
            Ok(0)
        }
        Command::Serve {
            mountpoint,
            allow_other,
            no_allow_other,
            #[cfg(feature = "nfs-export")]
            nfs,
            #[cfg(feature = "nfs-export")]
            allow_remote,
            #[cfg(feature = "nfs-export")]
            no_allow_remote,
            poll_interval,
            scrub_every,
            scrub_limit,
            scrub_rate,
            http,
            http_token_file,
        } => {
            // Flag > variable > nightfox.toml > default; the flags are kept so a SIGHUP reload never overrides them.
            let f = crate::daemon::config::current();
            let mountpoint = crate::daemon::config::mount_point(mountpoint)?;
            let allow_other = switch(allow_other, no_allow_other, f.mount.allow_other);
            #[cfg(feature = "nfs-export")]
            let (nfs, allow_remote) = (nfs.or(f.nfs.listen), switch(allow_remote, no_allow_remote, f.nfs.allow_remote));
            let http = http.or(f.serve.http);
            let http_token_file = http_token_file.or_else(|| f.serve.http_token_file.clone());
            let flags = crate::daemon::config::ServeFlags { poll_interval, scrub_every, scrub_limit, scrub_rate };
            crate::daemon::config::remember_serve_flags(flags);
            let a = open(&cli.archive)?;
            let mount = crate::frontends::fuse::MountOptions { allow_other, ..Default::default() };
            let live = crate::daemon::config::serve_settings(&f, &flags, a.config.scrub.as_ref())?;
            let (poll_interval, scrub, gc_every) = (live.poll_interval, live.scrub, live.gc_every);
            let opts =
                crate::serve::ServeOptions { mountpoint, mount, poll_interval, scrub, gc_every, http, http_token_file };
            if let Some(listen) = opts.http {
                usage(crate::frontends::http::check(listen, opts.http_token_file.as_deref()))?;
            }
            #[allow(unused_mut)]
            let mut front_ends: Vec<Box<dyn crate::frontends::FrontEnd>> = vec![crate::serve::mount_of(&opts)];
            #[cfg(feature = "nfs-export")]
            if let Some(listen) = nfs {
                let export = crate::frontends::nfs::ExportOptions { listen, allow_remote };
                usage(export.check())?;
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
            blobs_url_arg(&to)?;
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
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut command(), "nightfox", &mut script);
            write_stdout(&script)
        }
        Command::Man { command, out } => man_cmd(&command, out),
        Command::HelpMarkdown { out: None } => write_stdout(help_markdown().as_bytes()),
        Command::HelpMarkdown { out: Some(file) } => {
            std::fs::write(&file, help_markdown()).map_err(|e| Error::io(&file, e))?;
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
        what.parse().map_err(|_| Error::Usage(format!("{what:?} is neither `check` nor an import session id")))?;
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
        return Err(Error::Usage(format!("{f:?} is not a folder name (one path component, not hidden)")));
    }
    if f.len() > 255 || f == "ingest" {
        return Err(Error::Usage(format!("{f:?} cannot be a couple folder")));
    }
    Ok(())
}

/// The archive and the path inside its tree that a command's PATH names (a path in a mount, or a tree path).
fn archive_and_tree_path(archive_flag: Option<PathBuf>, path: &std::path::Path) -> Result<(Archive, Vec<u8>)> {
    use std::os::unix::ffi::OsStrExt;
    let (archive_dir, tree) = match crate::fs::locate_in_mount(path) {
        Some((a, t)) if archive_flag.is_none() => (a, t),
        Some((_, t)) => (archive_dir(archive_flag)?, t),
        None => (archive_dir(archive_flag)?, path.as_os_str().as_bytes().to_vec()),
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
        return Err(Error::Usage("file move needs --camera or --type".into()));
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
        ("smb", None, Some(_)) => Err(Error::Usage("--domain needs a user (--user or DOMAIN;user@ in the URL)".into())),
        ("smb", Some(u), d) => {
            let (url_domain, name) = crate::sources::split_smb_user(u);
            if name.is_empty() || name.contains(';') {
                return Err(Error::Usage(format!("{u:?} is not a user name")));
            }
            match (url_domain, d) {
                (a, Some(b)) if !a.is_empty() && a != b => {
                    Err(Error::Usage(format!("the domain is given twice: {a:?} with the user, {b:?} with --domain")))
                }
                ("", None) => Ok(name.to_string()),
                ("", Some(d)) | (d, _) => Ok(format!("{d};{name}")),
            }
        }
        (p, _, _) => Err(Error::Usage(format!("a {p} source has no user or domain"))),
    }
}

/// The post-import action of a source reading `path`; a move target inside the path is refused.
fn post_import_for(action: &str, path: &str) -> Result<crate::ingest::PostImport> {
    let post = usage(crate::ingest::PostImport::parse(action))?;
    if let crate::ingest::PostImport::Move(dir) = &post {
        if std::path::Path::new(dir).starts_with(std::path::Path::new(path)) {
            return Err(Error::Usage(format!(
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
            let u = usage(crate::sources::SourceUrl::parse(&url))?;
            let username = if u.protocol == "nfs" {
                // The AUTH_SYS identity, `UID:GID` from `?uid=&gid=`.
                if user.is_some() || domain.is_some() {
                    return Err(Error::Usage(
                        "an NFS source has no user or domain: give the identity as ?uid=N&gid=N in the URL".into(),
                    ));
                }
                u.user.clone().unwrap_or_default()
            } else {
                let user = match (u.user.clone(), user) {
                    (Some(a), Some(b)) if a != b => {
                        return Err(Error::Usage(format!(
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
            drop(cat);
            let row = crate::serve::test_source(&a, id)?;
            println!("source {id}: connected to {}; enabled", row.url());
            Ok(0)
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
        return Err(Error::Usage(format!("{what}: not confirmed (no terminal to ask on); add --yes")));
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
