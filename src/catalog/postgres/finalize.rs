//! [`Finalize`] on Postgres (a port of `sqlite/finalize.rs`): one transaction on the connection, rolled back
//! when dropped uncommitted. What SQLite's `BEGIN IMMEDIATE` gave is kept where it matters: the couple's lease
//! serializes the imports of a couple across machines, the camera list is read once per transaction (a stable
//! view, updated by its own `add_camera`), and new cameras are added under a transaction-level advisory lock
//! (two machines meeting the same new camera do not both take its slug).
//!
//! Round trips are what an import pays for here: a statement's first run in the transaction goes typed
//! (`query_typed`: parse, bind and execute in one message), its second prepares it (an import runs the same few
//! per file; prepared, they are not parsed again and soon not planned again); a file and its blob land in one
//! statement; whether a couple has damaged files at all is asked once; and the ends of items (`item_done`,
//! `item_end`) are kept until [`Finalize::commit_for`], which writes them all with the session's progress in one
//! statement before the commit. Until then `item_state`/`item_file` lay them over what they read, so reads
//! inside still see the transaction's own writes.

use std::collections::{HashMap, HashSet};

use postgres::types::{ToSql, Type};

use super::*;
use crate::catalog::Finalize;

/// A typed parameter: its value and its Postgres type.
pub(super) type P<'a> = (&'a (dyn ToSql + Sync), Type);

/// Runs a statement in one round trip; returns the rows it changed.
pub(super) fn exec(c: &mut impl GenericClient, sql: &str, params: &[P<'_>], ctx: &str) -> Result<u64> {
    c.execute_typed(sql, params).ctx(ctx)
}

/// Runs a query in one round trip and converts its rows.
pub(super) fn query<T>(
    c: &mut impl GenericClient,
    sql: &str,
    params: &[P<'_>],
    f: impl Fn(&Row) -> std::result::Result<T, postgres::Error>,
    ctx: &str,
) -> Result<Vec<T>> {
    let rs = c.query_typed(sql, params).ctx(ctx)?;
    rs.iter().map(&f).collect::<std::result::Result<Vec<_>, _>>().ctx(ctx)
}

/// Runs a query that returns at most one row, in one round trip, and converts it.
pub(super) fn query_opt<T>(
    c: &mut impl GenericClient,
    sql: &str,
    params: &[P<'_>],
    f: impl Fn(&Row) -> std::result::Result<T, postgres::Error>,
    ctx: &str,
) -> Result<Option<T>> {
    c.query_typed_opt(sql, params).ctx(ctx)?.as_ref().map(f).transpose().ctx(ctx)
}

/// Runs a query that returns exactly one row of one column, in one round trip.
pub(super) fn query_one<T: for<'b> postgres::types::FromSql<'b>>(
    c: &mut impl GenericClient,
    sql: &str,
    params: &[P<'_>],
    ctx: &str,
) -> Result<T> {
    c.query_typed_one(sql, params).and_then(|r| r.try_get(0)).ctx(ctx)
}

/// The first key of the advisory lock new cameras are added under (the lease's class is `0x4e46_0001`).
const CAMERA_LOCK: (i32, i32) = (0x4e46_0002, 0);

/// How an item ended inside the transaction, written at commit.
struct Ended {
    state: ItemState,
    error: Option<String>,
    healed: bool,
    /// `item_done`'s file and bad ranges (an `item_end` leaves what the row has).
    done: Option<(i64, Option<String>)>,
}

/// One finalize transaction: blobs, files and item states of a group of items land together or not at all.
pub(super) struct PgFinalize<'a> {
    tx: RefCell<postgres::Transaction<'a>>,
    progress: Progress,
    /// The items ended so far, in order, with an index by item id (the last end of an item wins).
    ended: Vec<(i64, Ended)>,
    ended_at: HashMap<i64, usize>,
    /// The cameras as this transaction sees them (read once; `add_camera` adds to it).
    cameras: RefCell<Option<Vec<Camera>>>,
    /// Whether this transaction holds the camera lock.
    camera_lock: std::cell::Cell<bool>,
    /// Per couple asked about: whether it may have damaged files (false: it had none when first asked, and
    /// this transaction added none), so that `damaged_file_like` costs one query per couple, not per file.
    damaged: RefCell<HashMap<i64, bool>>,
    /// The statements this transaction ran: once (`None`), or prepared at their second run.
    stmts: RefCell<HashMap<&'static str, Option<postgres::Statement>>>,
    /// What [`Finalize::prefetch_duplicates`] read: the couple, and per hash asked whether the couple has a
    /// healthy file of it. A write that may change an answer (a file inserted, a blob healed, a damaged file
    /// replaced) drops that hash, so the next question about it goes to the database.
    dups: RefCell<Option<(i64, HashMap<String, bool>)>>,
    /// Per directory (couple, type, camera or 0) asked about: every name key taken there (its files' and old
    /// paths'), read at the first question when there are at most [`NAMES_AT_ONCE`] (`None`: more; asked per
    /// name). `insert_file` adds its own.
    names: RefCell<HashMap<Folder, Option<HashSet<String>>>>,
}

/// A folder of the tree as the name checks key it: couple, footage type, camera (0: none).
type Folder = (i64, &'static str, i64);

/// A directory with at most this many names taken has them all read at its first name check in a
/// transaction (one round trip instead of one per file of a batch).
const NAMES_AT_ONCE: i64 = 2048;

impl<'a> PgFinalize<'a> {
    pub(super) fn new(tx: postgres::Transaction<'a>) -> Self {
        PgFinalize {
            tx: RefCell::new(tx),
            progress: Progress::default(),
            ended: Vec::new(),
            ended_at: HashMap::new(),
            cameras: RefCell::new(None),
            camera_lock: std::cell::Cell::new(false),
            damaged: RefCell::new(HashMap::new()),
            stmts: RefCell::new(HashMap::new()),
            dups: RefCell::new(None),
            names: RefCell::new(HashMap::new()),
        }
    }

    /// The prepared form of a statement run before in this transaction (prepared now at its second run); `None`
    /// at its first run, which goes typed in one round trip.
    fn prepared(
        &self,
        tx: &mut postgres::Transaction<'_>,
        sql: &'static str,
        params: &[P<'_>],
        ctx: &str,
    ) -> Result<Option<postgres::Statement>> {
        let mut stmts = self.stmts.borrow_mut();
        match stmts.get(sql) {
            None => {
                stmts.insert(sql, None);
                Ok(None)
            }
            Some(Some(st)) => Ok(Some(st.clone())),
            Some(None) => {
                let types: Vec<Type> = params.iter().map(|p| p.1.clone()).collect();
                let st = tx.prepare_typed(sql, &types).ctx(ctx)?;
                stmts.insert(sql, Some(st.clone()));
                Ok(Some(st))
            }
        }
    }

    /// Runs a query of this transaction (see [`PgFinalize::prepared`]).
    fn q(&self, sql: &'static str, params: &[P<'_>], ctx: &str) -> Result<Vec<Row>> {
        let mut tx = self.tx.borrow_mut();
        match self.prepared(&mut tx, sql, params, ctx)? {
            Some(st) => {
                let values: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.0).collect();
                tx.query(&st, &values).ctx(ctx)
            }
            None => tx.query_typed(sql, params).ctx(ctx),
        }
    }

    /// Runs a statement of this transaction; returns the rows it changed.
    fn x(&self, sql: &'static str, params: &[P<'_>], ctx: &str) -> Result<u64> {
        let mut tx = self.tx.borrow_mut();
        match self.prepared(&mut tx, sql, params, ctx)? {
            Some(st) => {
                let values: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.0).collect();
                tx.execute(&st, &values).ctx(ctx)
            }
            None => tx.execute_typed(sql, params).ctx(ctx),
        }
    }

    /// A query of this transaction whose rows are one column.
    fn q_column<T: for<'b> postgres::types::FromSql<'b>>(
        &self,
        sql: &'static str,
        params: &[P<'_>],
        ctx: &str,
    ) -> Result<Vec<T>> {
        self.q(sql, params, ctx)?.iter().map(|r| r.try_get(0)).collect::<PgResult<_>>().ctx(ctx)
    }

    /// A query of this transaction that returns at most one row.
    fn q_opt<T>(
        &self,
        sql: &'static str,
        params: &[P<'_>],
        f: impl Fn(&Row) -> PgResult<T>,
        ctx: &str,
    ) -> Result<Option<T>> {
        self.q(sql, params, ctx)?.first().map(f).transpose().ctx(ctx)
    }

    /// A query of this transaction that returns exactly one row of one column.
    fn q_one<T: for<'b> postgres::types::FromSql<'b>>(
        &self,
        sql: &'static str,
        params: &[P<'_>],
        ctx: &str,
    ) -> Result<T> {
        match self.q_opt(sql, params, |r| r.try_get(0), ctx)? {
            Some(v) => Ok(v),
            None => Err(Error::NotFound(format!("{ctx}: no row"))),
        }
    }

    fn end(
        &mut self,
        id: i64,
        state: ItemState,
        error: Option<&str>,
        healed: bool,
        done: Option<(i64, Option<String>)>,
    ) {
        let error = error.map(str::to_string);
        match self.ended_at.get(&id) {
            Some(&i) => {
                let e = &mut self.ended[i].1;
                e.state = state;
                e.error = error;
                e.healed = healed;
                if done.is_some() {
                    e.done = done;
                }
            }
            None => {
                self.ended_at.insert(id, self.ended.len());
                self.ended.push((id, Ended { state, error, healed, done }));
            }
        }
    }

    fn ended(&self, id: i64) -> Option<&Ended> {
        self.ended_at.get(&id).map(|&i| &self.ended[i].1)
    }

    /// Drops what [`Finalize::prefetch_duplicates`] read of a hash (a write changed what the answer may be).
    fn forget_dup(&self, hash: &str) {
        if let Some((_, known)) = &mut *self.dups.borrow_mut() {
            known.remove(hash);
        }
    }

    /// Takes the camera lock for the rest of the transaction (once), then forgets the cameras read before it:
    /// another machine may have added one while this waited.
    fn lock_cameras(&self) -> Result<()> {
        if !self.camera_lock.get() {
            self.x(
                "SELECT pg_advisory_xact_lock($1, $2)",
                &[(&CAMERA_LOCK.0, Type::INT4), (&CAMERA_LOCK.1, Type::INT4)],
                "lock cameras",
            )?;
            self.camera_lock.set(true);
            *self.cameras.borrow_mut() = None;
        }
        Ok(())
    }
}

impl Finalize for PgFinalize<'_> {
    fn blob_health(&self, hash: &str) -> Result<Option<String>> {
        self.q_opt("SELECT health FROM blobs WHERE hash = $1", &[(&hash, Type::TEXT)], |r| r.try_get(0), "blob health")
    }

    fn heal_blob(&self, hash: &str, session_id: Option<i64>, how: &str) -> Result<()> {
        self.forget_dup(hash);
        heal_blob_on(&mut *self.tx.borrow_mut(), hash, session_id, how)
    }

    fn damaged_file_like(&self, couple_id: i64, original_path: &[u8], size: u64) -> Result<Option<i64>> {
        let known = self.damaged.borrow().get(&couple_id).copied();
        let may = match known {
            Some(may) => may,
            None => {
                let may = self.q_one(
                    "SELECT EXISTS(SELECT 1 FROM files WHERE couple_id = $1 AND bad_ranges IS NOT NULL
                       AND trash_id IS NULL)",
                    &[(&couple_id, Type::INT8)],
                    "find damaged files",
                )?;
                self.damaged.borrow_mut().insert(couple_id, may);
                may
            }
        };
        if !may {
            return Ok(None);
        }
        self.q_opt(
            "SELECT f.id FROM files f JOIN blobs b ON b.id = f.blob_id
               WHERE f.couple_id = $1 AND f.original_path = $2 AND f.bad_ranges IS NOT NULL AND b.size = $3
                 AND f.trash_id IS NULL
               ORDER BY f.id LIMIT 1",
            &[(&couple_id, Type::INT8), (&original_path, Type::BYTEA), (&(size as i64), Type::INT8)],
            |r| r.try_get(0),
            "find damaged file",
        )
    }

    fn replace_damaged(
        &mut self,
        file_id: i64,
        hash: &str,
        size: u64,
        session_id: i64,
        sums: Option<&Sums>,
    ) -> Result<()> {
        self.forget_dup(hash);
        let tx = self.tx.get_mut();
        insert_blob_on(tx, hash, size, sums)?;
        let old: String =
            query_one(tx, "SELECT blob_hash FROM files WHERE id = $1", &[(&file_id, Type::INT8)], "find damaged file")?;
        exec(
            tx,
            "UPDATE files SET blob_hash = $2, bad_ranges = NULL, session_id = $3 WHERE id = $1",
            &[(&file_id, Type::INT8), (&hash, Type::TEXT), (&session_id, Type::INT8)],
            "replace damaged file",
        )?;
        add_archive_event(
            tx,
            "file_replaced",
            Some(hash),
            Some(file_id),
            Some(session_id),
            &format!("salvaged copy {old} replaced by a clean verified copy"),
        )
    }

    fn prefetch_duplicates(&self, couple_id: i64, hashes: &[&str]) -> Result<()> {
        if hashes.is_empty() {
            return Ok(());
        }
        let present: Vec<String> = self.q_column(
            "SELECT DISTINCT b.hash FROM blobs b JOIN files f ON f.blob_id = b.id
               WHERE b.hash = ANY($2) AND f.couple_id = $1 AND b.health = 'ok' AND f.trash_id IS NULL",
            &[(&couple_id, Type::INT8), (&hashes, Type::TEXT_ARRAY)],
            "check duplicates",
        )?;
        let mut known: HashMap<String, bool> = hashes.iter().map(|h| (h.to_string(), false)).collect();
        for h in present {
            known.insert(h, true);
        }
        *self.dups.borrow_mut() = Some((couple_id, known));
        Ok(())
    }

    fn couple_has_blob(&self, couple_id: i64, hash: &str) -> Result<bool> {
        if let Some((c, known)) = &*self.dups.borrow() {
            if let (true, Some(&has)) = (*c == couple_id, known.get(hash)) {
                return Ok(has);
            }
        }
        self.q_one(
            "SELECT EXISTS(SELECT 1 FROM blobs b JOIN files f ON f.blob_id = b.id
               WHERE b.hash = $2 AND f.couple_id = $1 AND b.health = 'ok' AND f.trash_id IS NULL)",
            &[(&couple_id, Type::INT8), (&hash, Type::TEXT)],
            "check duplicate",
        )
    }

    fn fill_sums(&self, hash: &str, sums: &Sums) -> Result<bool> {
        let n = self.x(
            "UPDATE blobs SET xxh64 = $2, xxh128 = $3 WHERE hash = $1 AND xxh64 IS NULL",
            &[(&hash, Type::TEXT), (&sums.xxh64, Type::TEXT), (&sums.xxh128, Type::TEXT)],
            "record blob checksums",
        )?;
        Ok(n > 0)
    }

    fn name_taken(&self, couple_id: i64, ft: FootageType, camera_id: Option<i64>, key: &str) -> Result<bool> {
        let dir = (couple_id, ft.as_str(), camera_id.unwrap_or(0));
        if !self.names.borrow().contains_key(&dir) {
            let keys: Vec<String> = self.q_column(
                "SELECT name_key FROM files WHERE couple_id = $1 AND footage_type = $2
                   AND COALESCE(camera_id, 0) = $3
                 UNION ALL SELECT name_key FROM file_aliases WHERE couple_id = $1 AND footage_type = $2
                   AND COALESCE(camera_id, 0) = $3
                 LIMIT $4",
                &[(&dir.0, Type::INT8), (&dir.1, Type::TEXT), (&dir.2, Type::INT8), (&(NAMES_AT_ONCE + 1), Type::INT8)],
                "read the names of a folder",
            )?;
            let all = (keys.len() as i64 <= NAMES_AT_ONCE).then(|| keys.into_iter().collect());
            self.names.borrow_mut().insert(dir, all);
        }
        if let Some(Some(taken)) = self.names.borrow().get(&dir) {
            return Ok(taken.contains(key));
        }
        self.q_one(
            "SELECT EXISTS(SELECT 1 FROM files WHERE couple_id = $1 AND footage_type = $2
               AND COALESCE(camera_id, 0) = $3 AND name_key = $4)
             OR EXISTS(SELECT 1 FROM file_aliases WHERE couple_id = $1 AND footage_type = $2
               AND COALESCE(camera_id, 0) = $3 AND name_key = $4)",
            &[
                (&couple_id, Type::INT8),
                (&ft.as_str(), Type::TEXT),
                (&camera_id.unwrap_or(0), Type::INT8),
                (&key, Type::TEXT),
            ],
            "check name",
        )
    }

    fn cameras(&self) -> Result<Vec<Camera>> {
        if let Some(cams) = &*self.cameras.borrow() {
            return Ok(cams.clone());
        }
        let cams = query(
            &mut *self.tx.borrow_mut(),
            &format!("{CAMERA_SELECT} ORDER BY c.slug"),
            &[],
            camera_from_row,
            "list cameras",
        )?;
        *self.cameras.borrow_mut() = Some(cams.clone());
        Ok(cams)
    }

    fn add_camera(&self, c: &NewCamera) -> Result<i64> {
        self.lock_cameras()?;
        let id = insert_camera(&mut *self.tx.borrow_mut(), c)?;
        // Read again when next asked, with the new one.
        *self.cameras.borrow_mut() = None;
        Ok(id)
    }

    fn camera_slug_taken(&self, slug: &str) -> Result<bool> {
        self.lock_cameras()?;
        self.q_one(
            "SELECT EXISTS(SELECT 1 FROM cameras WHERE slug = $1) OR EXISTS(SELECT 1 FROM camera_aliases WHERE slug = $1)",
            &[(&slug, Type::TEXT)],
            "check camera slug",
        )
    }

    fn file_placement(&self, file_id: i64) -> Result<Option<(Option<i64>, FootageType)>> {
        let row: Option<(Option<i64>, String)> = self.q_opt(
            "SELECT camera_id, footage_type FROM files WHERE id = $1",
            &[(&file_id, Type::INT8)],
            |r| Ok((r.try_get(0)?, r.try_get(1)?)),
            "find file placement",
        )?;
        match row {
            Some((cam, ft)) => Ok(Some((cam, FootageType::parse(&ft)?))),
            None => Ok(None),
        }
    }

    fn display_name(&self, file_id: i64) -> Result<Option<Vec<u8>>> {
        self.q_opt(
            "SELECT display_name FROM files WHERE id = $1",
            &[(&file_id, Type::INT8)],
            |r| r.try_get(0),
            "find file name",
        )
    }

    fn item_state(&self, item_id: i64) -> Result<Option<ItemState>> {
        let st: Option<String> = self.q_opt(
            "SELECT state FROM import_items WHERE id = $1",
            &[(&item_id, Type::INT8)],
            |r| r.try_get(0),
            "find item state",
        )?;
        // An item ended in this transaction has that state (written at commit).
        Ok(st.map(|s| self.ended(item_id).map_or_else(|| ItemState::parse(&s), |e| e.state)))
    }

    fn item_file(&self, item_id: i64) -> Result<Option<i64>> {
        let file: Option<Option<i64>> = self.q_opt(
            "SELECT file_id FROM import_items WHERE id = $1",
            &[(&item_id, Type::INT8)],
            |r| r.try_get(0),
            "find item file",
        )?;
        Ok(file.and_then(|f| match self.ended(item_id) {
            Some(Ended { done: Some((file_id, _)), .. }) => Some(*file_id),
            _ => f,
        }))
    }

    fn insert_file(&mut self, f: &NewFile) -> Result<i64> {
        // The blob (nothing when catalogued; its checksums when it has none, as `insert_blob_on`) and the file,
        // in one statement: the file's row reads the blob's id from the blob's row.
        if f.bad_ranges.is_some() {
            self.damaged.get_mut().insert(f.couple_id, true);
        }
        self.forget_dup(f.blob_hash);
        let dir = (f.couple_id, f.footage_type.as_str(), f.camera_id.unwrap_or(0));
        if let Some(Some(taken)) = self.names.get_mut().get_mut(&dir) {
            taken.insert(f.name_key.to_string());
        }
        let t = now();
        let size = f.blob_size as i64;
        let (xxh64, xxh128) = (f.sums.map(|s| s.xxh64.as_str()), f.sums.map(|s| s.xxh128.as_str()));
        self.q_one(
            "WITH b AS (
                 INSERT INTO blobs (hash, size, stored_at, verified_at, xxh64, xxh128)
                 VALUES ($4, $15, $10, $10, $16, $17)
                 ON CONFLICT (hash) DO UPDATE SET
                     xxh64 = CASE WHEN blobs.xxh64 IS NULL AND EXCLUDED.xxh64 IS NOT NULL
                                  THEN EXCLUDED.xxh64 ELSE blobs.xxh64 END,
                     xxh128 = CASE WHEN blobs.xxh64 IS NULL AND EXCLUDED.xxh64 IS NOT NULL
                                   THEN EXCLUDED.xxh128 ELSE blobs.xxh128 END
                 RETURNING id)
             INSERT INTO files (couple_id, footage_type, camera_id, blob_hash, display_name, name_key,
                 original_path, source, source_mtime_ns, imported_at, session_id, sidecar_of, captured_at,
                 bad_ranges, blob_id)
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, b.id FROM b
             RETURNING id",
            &[
                (&f.couple_id, Type::INT8),
                (&f.footage_type.as_str(), Type::TEXT),
                (&f.camera_id, Type::INT8),
                (&f.blob_hash, Type::TEXT),
                (&f.display_name, Type::BYTEA),
                (&f.name_key, Type::TEXT),
                (&f.original_path, Type::BYTEA),
                (&f.source, Type::TEXT),
                (&f.source_mtime_ns, Type::INT8),
                (&t, Type::INT8),
                (&f.session_id, Type::INT8),
                (&f.sidecar_of, Type::INT8),
                (&f.captured_at, Type::INT8),
                (&f.bad_ranges, Type::TEXT),
                (&size, Type::INT8),
                (&xxh64, Type::TEXT),
                (&xxh128, Type::TEXT),
            ],
            "insert file",
        )
    }

    fn item_done(&mut self, item: &Item, file_id: i64) -> Result<()> {
        self.end(item.id, ItemState::Done, None, item.healed, Some((file_id, item.bad_ranges.clone())));
        self.progress.add(Progress::one(ItemState::Done, item.size));
        Ok(())
    }

    fn item_end(&mut self, item: &Item, state: ItemState, error: Option<&str>) -> Result<()> {
        self.end(item.id, state, error, item.healed, None);
        self.progress.add(Progress::one(state, item.size));
        Ok(())
    }

    fn commit_for(self: Box<Self>, session_id: i64) -> Result<()> {
        let PgFinalize { tx, progress: p, ended, .. } = *self;
        let mut tx = tx.into_inner();
        let n = ended.len();
        let (mut ids, mut states, mut errors, mut healed, mut done, mut files, mut ranges) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for (id, e) in ended {
            ids.push(id);
            states.push(e.state.as_str());
            errors.push(e.error);
            healed.push(e.healed);
            done.push(e.done.is_some());
            let (file, r) = e.done.unzip();
            files.push(file);
            ranges.push(r.flatten());
        }
        // The items' ends and the session's progress in one statement.
        exec(
            &mut tx,
            "WITH ended AS (
                 UPDATE import_items i SET state = u.state, error = u.error, updated_at = $8, healed = u.healed,
                     file_id = CASE WHEN u.done THEN u.file_id ELSE i.file_id END,
                     bad_ranges = CASE WHEN u.done THEN u.bad_ranges ELSE i.bad_ranges END
                 FROM UNNEST($9::bigint[], $10::text[], $11::text[], $12::boolean[], $13::boolean[],
                             $14::bigint[], $15::text[]) AS u(id, state, error, healed, done, file_id, bad_ranges)
                 WHERE i.id = u.id)
             UPDATE import_sessions SET files_processed = files_processed + $2, files_duplicate = files_duplicate + $3,
                 files_error = files_error + $4, bytes_processed = bytes_processed + $5,
                 bytes_duplicate = bytes_duplicate + $6, bytes_error = bytes_error + $7, updated_at = $8
             WHERE id = $1",
            &[
                (&session_id, Type::INT8),
                (&p.files_processed, Type::INT8),
                (&p.files_duplicate, Type::INT8),
                (&p.files_error, Type::INT8),
                (&p.bytes_processed, Type::INT8),
                (&p.bytes_duplicate, Type::INT8),
                (&p.bytes_error, Type::INT8),
                (&now(), Type::INT8),
                (&ids, Type::INT8_ARRAY),
                (&states, Type::TEXT_ARRAY),
                (&errors, Type::TEXT_ARRAY),
                (&healed, Type::BOOL_ARRAY),
                (&done, Type::BOOL_ARRAY),
                (&files, Type::INT8_ARRAY),
                (&ranges, Type::TEXT_ARRAY),
            ],
            "record ended items",
        )?;
        tx.commit().ctx("commit finalize")
    }
}
