//! `nightfox catalog copy --to URL`: every row of one catalog into another, empty one, whichever the backends
//! (SQLite → Postgres when a studio outgrows one machine, Postgres → SQLite for a backup or a seat that leaves).
//! Table by table in foreign-key order, paged by id, into one destination transaction; the totals are recounted
//! there (the destination's triggers keep them from then on) and its id sequences moved past the copied ids;
//! then the row counts of both sides are compared. Work in flight is not copied: the jobs queue and the couple
//! leases are the seats' own. The backends provide the raw rows through [`RawRows`] (the only SQL is theirs).

use crate::archive::Archive;
use crate::error::{Error, Result};

use super::CatalogBackend;

/// A column's value, as both backends can read and write it.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Bool(bool),
    Text(String),
    Bytes(Vec<u8>),
}

/// The tables copied, parents before children. Each has an `id` except `camera_aliases` (keyed by slug)
/// and `catalog_info` (by name: the catalog's identity goes with its rows, so its secrets still open).
pub const TABLES: &[&str] = &[
    "couples",
    "cameras",
    "blobs",
    "network_sources",
    "import_sessions",
    "files",
    "import_items",
    "network_source_events",
    "ingest_entries",
    "events",
    "scrub_runs",
    "audit_log",
    "couple_aliases",
    "camera_aliases",
    "file_aliases",
    "trash",
    "catalog_info",
];

/// Columns the destination fills by itself (a trigger), never copied.
const DERIVED: &[&str] = &["blob_id"];

/// Rows read per page.
const PAGE: u32 = 5000;

/// Where copied rows go: one open transaction of the destination.
pub trait RawSink {
    /// The columns of `table` in the destination's schema.
    fn columns(&mut self, table: &str) -> Result<Vec<String>>;
    /// Inserts rows (values in `cols` order) into `table`.
    fn write(&mut self, table: &str, cols: &[String], rows: &[Vec<Value>]) -> Result<()>;
}

/// Raw, schema-level access to a catalog's rows, for the copy only. Implemented by every backend.
#[doc(hidden)]
pub trait RawRows {
    /// The columns of `table`, in schema order.
    fn raw_columns(&self, table: &str) -> Result<Vec<String>>;
    /// Up to `limit` rows of `table` whose `id` is greater than `after`, by id (all rows, once, for a table
    /// without an `id`), values in `cols` order; with each row its id (0 without one).
    fn raw_read(&self, table: &str, cols: &[String], after: i64, limit: u32) -> Result<Vec<(i64, Vec<Value>)>>;
    /// The number of rows of `table`.
    fn raw_count(&self, table: &str) -> Result<i64>;
    /// Runs `fill` inside one transaction of this (empty) catalog, then recounts the totals, moves the id
    /// sequences past the copied rows and commits. Fails, writing nothing, when the catalog has couples or
    /// files already.
    fn raw_load(&mut self, fill: &mut dyn FnMut(&mut dyn RawSink) -> Result<()>) -> Result<()>;
}

/// Copies every row of `from` into `to` (empty); returns the number of rows copied.
pub fn copy_rows(from: &dyn super::CatalogConn, to: &mut dyn super::CatalogConn) -> Result<u64> {
    let mut total = 0u64;
    to.raw_load(&mut |sink| {
        for table in TABLES {
            let theirs = sink.columns(table)?;
            let cols: Vec<String> = from
                .raw_columns(table)?
                .into_iter()
                .filter(|c| theirs.contains(c) && !DERIVED.contains(&c.as_str()))
                .collect();
            let mut after = i64::MIN;
            loop {
                let page = from.raw_read(table, &cols, after, PAGE)?;
                let Some(&(last, _)) = page.last() else { break };
                let rows: Vec<Vec<Value>> = page.into_iter().map(|(_, r)| r).collect();
                sink.write(table, &cols, &rows)?;
                total += rows.len() as u64;
                if last == 0 || rows.len() < PAGE as usize {
                    break;
                }
                after = last;
            }
        }
        Ok(())
    })?;
    for table in TABLES {
        let (a, b) = (from.raw_count(table)?, to.raw_count(table)?);
        if a != b {
            return Err(Error::Invalid(format!("catalog copy: {table} has {a} rows here and {b} in the copy")));
        }
    }
    Ok(total)
}

/// `nightfox catalog copy`: the archive's catalog into the catalog `to_url` names (a new SQLite file, or a
/// migrated, empty Postgres database), under the daemon lock and every couple's lease so nothing changes
/// meanwhile; with `switch`, archive.toml then names the copy (written atomically).
pub fn copy_archive_catalog(archive: &Archive, to_url: &str, switch: bool) -> Result<u64> {
    let _daemon = crate::serve::lock_daemon(archive, &archive.root.to_string_lossy(), "catalog copy", None)?;
    let from = archive.catalog()?;
    let _leases = crate::migrate::lease_every_couple(&*from)?;
    let target: std::sync::Arc<dyn CatalogBackend> = if super::is_postgres(to_url) {
        super::open_backend(to_url, &archive.root)?
    } else {
        super::create_backend(to_url, &archive.root)?
    };
    if target.describe() == archive.catalog_description() {
        return Err(Error::Invalid("catalog copy: the destination is this archive's own catalog".into()));
    }
    let mut to = target.connect()?;
    let n = copy_rows(&*from, &mut *to)?;
    if archive.config.blobs.encrypt && to.info(super::VAULT_KEY_INFO)?.is_none() {
        // An encrypted archive made before its catalog kept the wrapped vault key: the copy gets it from
        // keys/vault.wrapped, so seats joining the copy can open the blobs.
        let path = archive.root.join(crate::blobs::vault::WRAPPED_KEY);
        let wrapped = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
        to.set_info(super::VAULT_KEY_INFO, &crate::blobs::vault::to_hex(&wrapped), None)?;
    }
    if switch {
        let mut config = archive.config.clone();
        config.catalog.url = super::redact_url(to_url);
        crate::blobs::staging::write_atomic(
            &archive.root.join(crate::archive::config::FILE),
            config.to_text()?.as_bytes(),
        )?;
    }
    Ok(n)
}
