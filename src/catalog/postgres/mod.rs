//! The Postgres catalog (feature `postgres`): one database shared by every seat of a studio. It implements the
//! same traits as the SQLite backend, one file per trait (`read.rs`, `import_log.rs`, `finalize.rs`,
//! `registry.rs`, `health.rs`, `ingest_entries.rs`, `lifecycle.rs`, `trash.rs`), over the sync `postgres`
//! client: the connection and its retries (this file), the schema and its migrations (`schema.rs`, run only by
//! the migration role, see [`migrate`]), couple leases as advisory locks (`lease.rs`), and the change token fed
//! by `LISTEN nightfox_change` (a trigger notifies on every commit that changes what a mount shows).
//!
//! Names and paths are BYTEA, flags BOOLEAN, ids and sizes BIGINT. Every table lives in the `nightfox` schema
//! (the connection's `search_path`). The password never appears in [`CatalogBackend::describe`], messages or
//! logs: it comes with the DSN from the environment (`NIGHTFOX_DATABASE_URL`, see `archive::env`).

use std::cell::{RefCell, RefMut};
use std::str::FromStr;

use postgres::fallible_iterator::FallibleIterator;
use postgres::{Client, Config, GenericClient, NoTls, Row};

use super::types::*;
#[allow(unused_imports)]
pub(super) use std::path::Path;
#[allow(unused_imports)]
pub(super) use std::time::SystemTime;

#[allow(unused_imports)]
pub(super) use super::{CatalogBackend, CatalogConn, CoupleLease, Finalize};
use crate::error::{Error, Result};

mod copy;
mod finalize;
mod health;
mod import_log;
mod ingest_entries;
mod jobs;
mod lease;
mod lifecycle;
mod read;
mod registry;
mod schema;
mod trash;

/// The real Postgres fixture, one file shared with the integration tests (`tests/common/pgd.rs`).
#[cfg(test)]
#[path = "../../../tests/common/pgd.rs"]
pub(crate) mod testdb;

use schema::SCHEMA_VERSION;

/// The schema every table lives in.
const SCHEMA: &str = "nightfox";

/// The channel the change trigger notifies (see `schema.rs`).
const CHANGE_CHANNEL: &str = "nightfox_change";

/// Extension to attach catalog context to postgres results.
pub(super) trait CatalogContext<T> {
    fn ctx(self, context: &str) -> Result<T>;
}

impl<T> CatalogContext<T> for std::result::Result<T, postgres::Error> {
    fn ctx(self, context: &str) -> Result<T> {
        self.map_err(|source| catalog_error(context, source))
    }
}

/// A postgres error as an [`Error::Catalog`]. Transient: a lost or refused connection, a serialization failure
/// (40001), a deadlock (40P01), a server shutting down or starting (57P01..57P03), too many connections (53300)
/// — a retry after a pause may succeed. `disk_full`: 53100.
pub(super) fn catalog_error(context: &str, source: postgres::Error) -> Error {
    let code = source.code().map(|c| c.code().to_string());
    let transient = source.is_closed()
        || match code.as_deref() {
            Some(c) => c.starts_with("08") || matches!(c, "40001" | "40P01" | "57P01" | "57P02" | "57P03" | "53300"),
            // No SQLSTATE: the client's own I/O (connection reset, refused, timed out).
            None => std::error::Error::source(&source).is_some_and(|s| s.is::<std::io::Error>()),
        };
    Error::Catalog {
        context: context.to_string(),
        transient,
        disk_full: code.as_deref() == Some("53100"),
        source: Box::new(source),
    }
}

/// A DSN without its password, for messages (`postgres://user@host:port/db`).
fn redact(dsn: &str) -> String {
    match url::Url::parse(dsn) {
        Ok(_) => super::redact_url(dsn),
        Err(_) => "postgres://(unparsable DSN)".into(),
    }
}

/// The connection settings of a DSN, with the catalog's schema as `search_path`.
fn config_of(dsn: &str) -> Result<Config> {
    let mut config = Config::from_str(dsn).map_err(|e| Error::Invalid(format!("catalog URL {}: {e}", redact(dsn))))?;
    config.options(&format!("-c search_path={SCHEMA}"));
    if config.get_application_name().is_none() {
        config.application_name("nightfox");
    }
    config.connect_timeout(std::time::Duration::from_secs(10));
    Ok(config)
}

/// Opens one connection (no TLS: the catalog is on loopback or a trusted studio network).
fn connect(config: &Config, shown: &str) -> Result<Client> {
    config.connect(NoTls).ctx(&format!("connect to {shown}"))
}

/// The Postgres backend: a DSN (with its password, never shown) and what `describe` shows instead.
pub(super) struct PgBackend {
    config: Config,
    shown: String,
}

impl std::fmt::Debug for PgBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

impl PgBackend {
    /// The backend of a runtime DSN; nothing is opened until [`CatalogBackend::connect`].
    pub(super) fn new(dsn: &str) -> Result<Self> {
        Ok(PgBackend { config: config_of(dsn)?, shown: redact(dsn) })
    }
}

impl CatalogBackend for PgBackend {
    fn describe(&self) -> String {
        self.shown.clone()
    }

    fn connect(&self) -> Result<Box<dyn CatalogConn>> {
        Ok(Box::new(PgConn::open(self.config.clone(), self.shown.clone())?))
    }
}

/// Applies the pending migrations with a migration DSN (the role that owns the schema), then grants the
/// runtime role `app_role` what it needs and nothing more. Returns the (old, new) schema versions.
pub(crate) fn migrate(dsn: &str, app_role: &str) -> Result<(i64, i64)> {
    let shown = redact(dsn);
    let mut client = connect(&config_of(dsn)?, &shown)?;
    let ident = quote_ident(app_role)?;
    let mut tx = client.transaction().ctx("begin migration")?;
    // One migrator at a time, across machines.
    tx.execute("SELECT pg_advisory_xact_lock(20200101)", &[]).ctx("lock the schema for migration")?;
    tx.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS {SCHEMA};
         CREATE TABLE IF NOT EXISTS {SCHEMA}.schema_version (version BIGINT NOT NULL);
         INSERT INTO {SCHEMA}.schema_version SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM {SCHEMA}.schema_version);"
    ))
    .ctx("create the nightfox schema")?;
    let old: i64 = tx
        .query_one("SELECT version FROM schema_version", &[])
        .and_then(|r| r.try_get(0))
        .ctx("read schema version")?;
    if old > SCHEMA_VERSION {
        return Err(Error::SchemaTooNew { found: old, supported: SCHEMA_VERSION });
    }
    for (i, sql) in schema::MIGRATIONS.iter().enumerate().skip(old as usize) {
        tx.batch_execute(sql).ctx(&format!("migrate to schema {}", i + 1))?;
    }
    tx.execute("UPDATE schema_version SET version = $1", &[&SCHEMA_VERSION]).ctx("record schema version")?;
    tx.batch_execute(&format!(
        "REVOKE ALL ON SCHEMA {SCHEMA} FROM PUBLIC;
         GRANT USAGE ON SCHEMA {SCHEMA} TO {ident};
         GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {SCHEMA} TO {ident};
         REVOKE INSERT, UPDATE, DELETE ON {SCHEMA}.schema_version FROM {ident};
         GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA {SCHEMA} TO {ident};"
    ))
    .ctx(&format!("grant the runtime role {app_role}"))?;
    tx.commit().ctx("commit migration")?;
    // Fresh statistics for the planner (an upgraded catalog may hold millions of rows; a new one costs nothing).
    let tables: Vec<String> = rows(
        &mut client,
        "SELECT quote_ident(tablename) FROM pg_tables WHERE schemaname = $1 ORDER BY tablename",
        &[&SCHEMA],
        |r| r.try_get(0),
        "list tables",
    )?;
    if !tables.is_empty() {
        client.batch_execute(&format!("ANALYZE {}", tables.join(", "))).ctx("analyze the catalog")?;
    }
    Ok((old, SCHEMA_VERSION))
}

/// A role name as a quoted SQL identifier; only plain names are accepted.
fn quote_ident(name: &str) -> Result<String> {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(Error::Invalid(format!("{name:?} is not a role name (letters, digits and _ only)")));
    }
    Ok(format!("\"{name}\""))
}

/// One connection to the catalog. Not `Sync` (the client sits in a `RefCell`): one per thread, as with SQLite.
pub(super) struct PgConn {
    client: RefCell<Client>,
    config: Config,
    shown: String,
    /// Whether this connection LISTENs on the change channel yet (the first [`change_token`] starts it), and
    /// how many notifications it has seen: the change token.
    listening: std::cell::Cell<bool>,
    changes: std::cell::Cell<i64>,
    /// The hot reads' statements, prepared once on this connection (see [`PgConn::cached_rows`]); emptied when
    /// the connection is made again (statements die with their connection).
    stmts: RefCell<std::collections::HashMap<String, postgres::Statement>>,
}

impl PgConn {
    /// Opens a connection and checks the schema: a catalog that was never migrated, or is older than this build,
    /// names the command that fixes it.
    fn open(config: Config, shown: String) -> Result<Self> {
        let mut client = connect(&config, &shown)?;
        let version = match client.query_opt("SELECT version FROM schema_version", &[]) {
            Ok(row) => row.map(|r| r.try_get::<_, i64>(0)).transpose().ctx("read schema version")?.unwrap_or(0),
            Err(e) if e.code() == Some(&postgres::error::SqlState::UNDEFINED_TABLE) => 0,
            Err(e) => return Err(catalog_error("read schema version", e)),
        };
        if version > SCHEMA_VERSION {
            return Err(Error::SchemaTooNew { found: version, supported: SCHEMA_VERSION });
        }
        if version < SCHEMA_VERSION {
            return Err(Error::Invalid(format!(
                "the catalog at {shown} has schema version {version}, this nightfox needs {SCHEMA_VERSION}: \
                 run `nightfox migrate --dsn <migration DSN>` (the runtime role may not change the schema)"
            )));
        }
        Ok(PgConn {
            client: RefCell::new(client),
            config,
            shown,
            listening: std::cell::Cell::new(false),
            changes: std::cell::Cell::new(0),
            stmts: RefCell::new(std::collections::HashMap::new()),
        })
    }

    /// The client, reconnected first when the server dropped it (a restart, a network cut): the statement that
    /// saw the drop failed as transient; the next one gets a fresh connection.
    pub(super) fn c(&self) -> Result<RefMut<'_, Client>> {
        let mut c = self.client.borrow_mut();
        if c.is_closed() {
            *c = connect(&self.config, &self.shown)?;
            self.stmts.borrow_mut().clear();
            if self.listening.get() {
                c.batch_execute(&format!("LISTEN {CHANGE_CHANNEL}")).ctx("listen for changes")?;
                // What was missed while the connection was down: count it as a change.
                self.changes.set(self.changes.get() + 1);
            }
        }
        Ok(c)
    }

    /// A query by a statement prepared once on this connection: one round trip (a statement run by text is
    /// parsed in one and run in another) and no parse or fresh plan each time. For the reads a mount makes per
    /// folder and per name (a `find` of a large archive makes thousands).
    pub(super) fn cached_rows<T>(
        &self,
        sql: &str,
        params: &[&(dyn postgres::types::ToSql + Sync)],
        f: impl Fn(&Row) -> std::result::Result<T, postgres::Error>,
        ctx: &str,
    ) -> Result<Vec<T>> {
        let mut c = self.c()?;
        let known = self.stmts.borrow().get(sql).cloned();
        let st = match known {
            Some(st) => st,
            None => {
                let st = c.prepare(sql).ctx(ctx)?;
                self.stmts.borrow_mut().insert(sql.to_string(), st.clone());
                st
            }
        };
        let rs = c.query(&st, params).map_err(|e| {
            // A statement a schema change made stale fails once; the next call prepares it again.
            self.stmts.borrow_mut().remove(sql);
            catalog_error(ctx, e)
        })?;
        rs.iter().map(&f).collect::<std::result::Result<Vec<_>, _>>().ctx(ctx)
    }

    /// A fresh connection with the same settings (the couple leases hold one each).
    pub(super) fn connect_another(&self) -> Result<Client> {
        connect(&self.config, &self.shown)
    }

    /// The change token: the number of change notifications this connection has seen. LISTENs on first use;
    /// drains what arrived since the last call without waiting.
    pub(super) fn change_token_now(&self) -> Result<i64> {
        let mut c = self.c()?;
        if !self.listening.get() {
            c.batch_execute(&format!("LISTEN {CHANGE_CHANNEL}")).ctx("listen for changes")?;
            self.listening.set(true);
        }
        // A round trip makes the server hand over what committed before it; then count what arrived.
        c.batch_execute("").ctx("poll changes")?;
        let n = c.notifications().iter().count().ctx("read change notifications")?;
        if n > 0 {
            self.changes.set(self.changes.get() + n as i64);
        }
        Ok(self.changes.get())
    }

    /// Blocks up to `timeout` for a change notification (the mount's refresher waits here instead of polling).
    pub(super) fn wait_notification(&self, timeout: std::time::Duration) -> Result<bool> {
        let before = self.change_token_now()?;
        let mut c = self.c()?;
        let mut got = 0;
        {
            let mut n = c.notifications();
            if n.timeout_iter(timeout).next().ctx("wait for changes")?.is_some() {
                got = 1;
            }
        }
        drop(c);
        self.changes.set(self.changes.get() + got);
        Ok(self.change_token_now()? != before)
    }
}

/// Runs a query and converts its rows, with one context for every error.
pub(super) fn rows<T>(
    c: &mut impl GenericClient,
    sql: &str,
    params: &[&(dyn postgres::types::ToSql + Sync)],
    f: impl Fn(&Row) -> std::result::Result<T, postgres::Error>,
    ctx: &str,
) -> Result<Vec<T>> {
    let rs = c.query(sql, params).ctx(ctx)?;
    rs.iter().map(&f).collect::<std::result::Result<Vec<_>, _>>().ctx(ctx)
}

/// Runs a query that returns at most one row and converts it.
pub(super) fn opt_row<T>(
    c: &mut impl GenericClient,
    sql: &str,
    params: &[&(dyn postgres::types::ToSql + Sync)],
    f: impl Fn(&Row) -> std::result::Result<T, postgres::Error>,
    ctx: &str,
) -> Result<Option<T>> {
    c.query_opt(sql, params).ctx(ctx)?.as_ref().map(f).transpose().ctx(ctx)
}

/// Runs a query that returns exactly one row of one column.
pub(super) fn one<T: for<'a> postgres::types::FromSql<'a>>(
    c: &mut impl GenericClient,
    sql: &str,
    params: &[&(dyn postgres::types::ToSql + Sync)],
    ctx: &str,
) -> Result<T> {
    c.query_one(sql, params).and_then(|r| r.try_get(0)).ctx(ctx)
}

type PgResult<T> = std::result::Result<T, postgres::Error>;

/// A couple with its totals (kept by triggers in `couple_totals`).
pub(super) const COUPLE_SELECT: &str = "SELECT c.id, c.display_name, c.event_date, c.folder_name, c.created_at,
        COALESCE(t.files, 0), COALESCE(t.bytes, 0)
     FROM couples c LEFT JOIN couple_totals t ON t.couple_id = c.id";

pub(super) fn couple_from_row(r: &Row) -> PgResult<Couple> {
    Ok(Couple {
        id: r.try_get(0)?,
        display_name: r.try_get(1)?,
        event_date: r.try_get(2)?,
        folder_name: r.try_get(3)?,
        created_at: r.try_get(4)?,
        file_count: r.try_get(5)?,
        total_bytes: r.try_get(6)?,
    })
}

/// The columns `camera_from_row` reads, in its order.
pub(super) const CAMERA_COLUMNS: &str =
    "c.id, c.slug, c.name, c.footage_type, c.make, c.model, c.serial, c.auto, c.merged_into";

pub(super) const CAMERA_SELECT: &str =
    "SELECT c.id, c.slug, c.name, c.footage_type, c.make, c.model, c.serial, c.auto, c.merged_into FROM cameras c";

pub(super) fn camera_from_row(r: &Row) -> PgResult<Camera> {
    let t: String = r.try_get(3)?;
    Ok(Camera {
        id: r.try_get(0)?,
        slug: r.try_get(1)?,
        name: r.try_get(2)?,
        footage_type: FootageType::parse(&t).unwrap_or(FootageType::Modern),
        make: r.try_get(4)?,
        model: r.try_get(5)?,
        serial: r.try_get(6)?,
        auto: r.try_get(7)?,
        merged_into: r.try_get(8)?,
    })
}

pub(super) const SESSION_SELECT: &str = "SELECT s.id, s.couple_id, c.folder_name, s.status, s.last_step, s.can_resume,
        s.footage_type, s.camera_id, s.duplicates, s.source, s.source_paths, s.files_total, s.files_processed,
        s.files_duplicate, s.files_error, s.bytes_total, s.bytes_processed, s.bytes_duplicate, s.bytes_error,
        s.error, s.created_at, s.updated_at, s.finished_at, s.type_explicit, s.source_id, s.salvage,
        s.run_started_at, s.run_bytes_start, s.onset_manifest, s.onset_problems
     FROM import_sessions s JOIN couples c ON c.id = s.couple_id";

pub(super) fn session_from_row(r: &Row) -> PgResult<Session> {
    let status: String = r.try_get(3)?;
    let ft: String = r.try_get(6)?;
    let dup: String = r.try_get(8)?;
    let paths: Vec<u8> = r.try_get(10)?;
    Ok(Session {
        id: r.try_get(0)?,
        couple_id: r.try_get(1)?,
        couple: r.try_get(2)?,
        status: SessionStatus::parse(&status),
        last_step: r.try_get(4)?,
        can_resume: r.try_get(5)?,
        footage_type: FootageType::parse(&ft).unwrap_or(FootageType::Modern),
        type_explicit: r.try_get(23)?,
        source_id: r.try_get(24)?,
        camera_id: r.try_get(7)?,
        duplicates: DuplicateAction::parse(&dup).unwrap_or(DuplicateAction::Skip),
        source: r.try_get(9)?,
        source_paths: split_paths(&paths),
        files_total: r.try_get(11)?,
        files_processed: r.try_get(12)?,
        files_duplicate: r.try_get(13)?,
        files_error: r.try_get(14)?,
        bytes_total: r.try_get(15)?,
        bytes_processed: r.try_get(16)?,
        bytes_duplicate: r.try_get(17)?,
        bytes_error: r.try_get(18)?,
        error: r.try_get(19)?,
        created_at: r.try_get(20)?,
        updated_at: r.try_get(21)?,
        finished_at: r.try_get(22)?,
        salvage: r.try_get(25)?,
        run_started_at: r.try_get(26)?,
        run_bytes_start: r.try_get(27)?,
        onset_manifest: r.try_get(28)?,
        onset_problems: r.try_get(29)?,
    })
}

/// The columns `item_from_row` reads, in its order, over `import_items`.
pub(super) const ITEM_COLUMNS: &str = "id, session_id, path, rel_path, size, mtime_ns, state, hash, sidecar_of, \
     file_id, error, bad_ranges, resume_offset, healed";

pub(super) fn item_from_row(r: &Row) -> PgResult<Item> {
    let state: String = r.try_get(6)?;
    Ok(Item {
        id: r.try_get(0)?,
        session_id: r.try_get(1)?,
        path: r.try_get(2)?,
        rel_path: r.try_get(3)?,
        size: r.try_get::<_, i64>(4)? as u64,
        mtime_ns: r.try_get(5)?,
        state: ItemState::parse(&state),
        hash: r.try_get(7)?,
        sidecar_of: r.try_get(8)?,
        file_id: r.try_get(9)?,
        error: r.try_get(10)?,
        bad_ranges: r.try_get(11)?,
        resume_offset: r.try_get::<_, Option<i64>>(12)?.map(|v| v as u64),
        healed: r.try_get(13)?,
        sums: None,
    })
}

/// A file with its blob, joined by the blob's row id (`files.blob_id`, kept by a trigger from `blob_hash`).
pub(super) const FILE_SELECT: &str = "SELECT f.id, f.couple_id, f.footage_type, f.camera_id, f.blob_hash, b.size,
        f.display_name, f.original_path, f.source, f.source_mtime_ns, f.imported_at, f.session_id, f.sidecar_of, b.id, f.captured_at,
        f.bad_ranges
     FROM files f JOIN blobs b ON b.id = f.blob_id";

pub(super) fn file_from_row(r: &Row) -> PgResult<FileRow> {
    let ft: String = r.try_get(2)?;
    Ok(FileRow {
        id: r.try_get(0)?,
        couple_id: r.try_get(1)?,
        footage_type: FootageType::parse(&ft).unwrap_or(FootageType::Modern),
        camera_id: r.try_get(3)?,
        blob_hash: r.try_get(4)?,
        size: r.try_get::<_, i64>(5)? as u64,
        display_name: r.try_get(6)?,
        original_path: r.try_get(7)?,
        source: r.try_get(8)?,
        source_mtime_ns: r.try_get(9)?,
        imported_at: r.try_get(10)?,
        session_id: r.try_get(11)?,
        sidecar_of: r.try_get(12)?,
        blob_id: r.try_get(13)?,
        captured_at: r.try_get(14)?,
        bad_ranges: r.try_get(15)?,
    })
}

/// The columns `tree_file_from_row` reads, in its order, over `files f` and `blobs b`.
pub(super) const TREE_FILE_COLUMNS: &str =
    "f.id, b.id, f.couple_id, f.footage_type, f.camera_id, f.blob_hash, b.size, \
     f.display_name, f.source_mtime_ns, f.imported_at, f.captured_at, f.bad_ranges IS NOT NULL";

/// A file as the tree lists it (`TreeFile`): no paths, no source.
pub(super) const TREE_FILE_SELECT: &str = "SELECT f.id, b.id, f.couple_id, f.footage_type, f.camera_id, f.blob_hash, \
     b.size, f.display_name, f.source_mtime_ns, f.imported_at, f.captured_at, f.bad_ranges IS NOT NULL \
     FROM files f JOIN blobs b ON b.id = f.blob_id";

pub(super) fn tree_file_from_row(r: &Row) -> PgResult<TreeFile> {
    let ft: &str = r.try_get(3)?;
    Ok(TreeFile {
        id: r.try_get(0)?,
        blob_id: r.try_get(1)?,
        couple_id: r.try_get(2)?,
        footage_type: FootageType::parse(ft).unwrap_or(FootageType::Modern),
        camera_id: r.try_get(4)?,
        blob_hash: r.try_get(5)?,
        size: r.try_get::<_, i64>(6)? as u64,
        display_name: r.try_get(7)?,
        source_mtime_ns: r.try_get(8)?,
        imported_at: r.try_get(9)?,
        captured_at: r.try_get(10)?,
        damaged: r.try_get(11)?,
    })
}

pub(super) const SOURCE_SELECT: &str = "SELECT s.id, s.protocol, s.host, s.port, s.mount_port, s.share, s.path,
        s.username, s.password_enc, s.couple_id, c.folder_name, s.footage_type, s.camera_id, s.enabled,
        s.post_import, s.duplicates, s.connection_state, s.consecutive_failures, s.last_error, s.last_scan_at,
        s.created_at, s.credential_key
     FROM network_sources s JOIN couples c ON c.id = s.couple_id";

pub(super) fn source_from_row(r: &Row) -> PgResult<NetworkSource> {
    let pw: Vec<u8> = r.try_get(8)?;
    let key: Option<String> = r.try_get(21)?;
    let ft: Option<String> = r.try_get(11)?;
    let dup: String = r.try_get(15)?;
    Ok(NetworkSource {
        id: r.try_get(0)?,
        protocol: r.try_get(1)?,
        host: r.try_get(2)?,
        port: u16::try_from(r.try_get::<_, i64>(3)?).unwrap_or(0),
        mount_port: r.try_get::<_, Option<i64>>(4)?.and_then(|p| u16::try_from(p).ok()),
        share: r.try_get(5)?,
        path: r.try_get(6)?,
        username: r.try_get(7)?,
        has_password: !pw.is_empty() || key.is_some(),
        password_enc: pw,
        credential_key: key,
        couple_id: r.try_get(9)?,
        couple: r.try_get(10)?,
        footage_type: ft.and_then(|t| FootageType::parse(&t).ok()),
        camera_id: r.try_get(12)?,
        enabled: r.try_get(13)?,
        post_import: r.try_get(14)?,
        duplicates: DuplicateAction::parse(&dup).unwrap_or(DuplicateAction::Skip),
        connection_state: r.try_get(16)?,
        consecutive_failures: r.try_get(17)?,
        last_error: r.try_get(18)?,
        last_scan_at: r.try_get(19)?,
        created_at: r.try_get(20)?,
    })
}

/// The columns of a [`BlobRow`], in [`blob_from_row`]'s order.
pub(super) const BLOB_COLUMNS: &str = "hash, size, stored_at, verified_at, xxh64, xxh128";

pub(super) fn blob_from_row(r: &Row) -> PgResult<BlobRow> {
    Ok(BlobRow {
        hash: r.try_get(0)?,
        size: r.try_get::<_, i64>(1)? as u64,
        stored_at: r.try_get(2)?,
        verified_at: r.try_get(3)?,
        xxh64: r.try_get(4)?,
        xxh128: r.try_get(5)?,
    })
}

pub(super) fn cameras_on(c: &mut impl GenericClient) -> Result<Vec<Camera>> {
    rows(c, &format!("{CAMERA_SELECT} ORDER BY c.slug"), &[], camera_from_row, "list cameras")
}

pub(super) fn insert_camera(c: &mut impl GenericClient, cam: &NewCamera) -> Result<i64> {
    one(
        c,
        "INSERT INTO cameras (slug, name, footage_type, make, model, serial, created_at, auto)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        &[&cam.slug, &cam.name, &cam.footage_type.as_str(), &cam.make, &cam.model, &cam.serial, &now(), &cam.auto],
        "add camera",
    )
}

pub(super) fn slug_taken(c: &mut impl GenericClient, slug: &str) -> Result<bool> {
    one(
        c,
        "SELECT EXISTS(SELECT 1 FROM cameras WHERE slug = $1) OR EXISTS(SELECT 1 FROM camera_aliases WHERE slug = $1)",
        &[&slug],
        "check camera slug",
    )
}

/// Records a blob just landed and verified (nothing when it is catalogued already), with its checksums; a
/// blob already there that has none gets these (see [`fill_sums_on`]).
pub(super) fn insert_blob_on(c: &mut impl GenericClient, hash: &str, size: u64, sums: Option<&Sums>) -> Result<()> {
    c.execute(
        "INSERT INTO blobs (hash, size, stored_at, verified_at, xxh64, xxh128)
         VALUES ($1, $2, $3, $3, $4, $5) ON CONFLICT (hash) DO NOTHING",
        &[&hash, &(size as i64), &now(), &sums.map(|s| &s.xxh64), &sums.map(|s| &s.xxh128)],
    )
    .ctx("insert blob")?;
    match sums {
        Some(s) => fill_sums_on(c, hash, s).map(|_| ()),
        None => Ok(()),
    }
}

/// Gives a catalogued blob that has no checksums these, read with its hash just now. True when it had none.
pub(super) fn fill_sums_on(c: &mut impl GenericClient, hash: &str, sums: &Sums) -> Result<bool> {
    let n = c
        .execute(
            "UPDATE blobs SET xxh64 = $2, xxh128 = $3 WHERE hash = $1 AND xxh64 IS NULL",
            &[&hash, &sums.xxh64, &sums.xxh128],
        )
        .ctx("record blob checksums")?;
    Ok(n > 0)
}

pub(super) fn blob_health_on(c: &mut impl GenericClient, hash: &str) -> Result<Option<String>> {
    opt_row(c, "SELECT health FROM blobs WHERE hash = $1", &[&hash], |r| r.try_get(0), "blob health")
}

pub(super) fn heal_blob_on(c: &mut impl GenericClient, hash: &str, session_id: Option<i64>, how: &str) -> Result<()> {
    let n = c
        .execute(
            "UPDATE blobs SET health = 'ok', problem = NULL, verified_at = $2 WHERE hash = $1 AND health <> 'ok'",
            &[&hash, &now()],
        )
        .ctx("heal blob")?;
    if n > 0 {
        add_archive_event(c, "blob_healed", Some(hash), None, session_id, how)?;
    }
    Ok(())
}

pub(super) fn add_archive_event(
    c: &mut impl GenericClient,
    kind: &str,
    hash: Option<&str>,
    file_id: Option<i64>,
    session_id: Option<i64>,
    message: &str,
) -> Result<()> {
    c.execute(
        "INSERT INTO events (at, kind, blob_hash, file_id, session_id, message) VALUES ($1, $2, $3, $4, $5, $6)",
        &[&now(), &kind, &hash, &file_id, &session_id, &message],
    )
    .ctx("record event")?;
    Ok(())
}

/// Records a `lifecycle` archive event (the mount reloads what it cached and forgets `gone`), inside the
/// caller's transaction.
pub(super) fn lifecycle_event(c: &mut impl GenericClient, message: &str, gone: &[Gone]) -> Result<()> {
    c.execute(
        "INSERT INTO events (at, kind, message, detail) VALUES ($1, 'lifecycle', $2, $3)",
        &[&now(), &message, &Gone::to_json(gone)],
    )
    .ctx("record lifecycle event")?;
    Ok(())
}
