//! Couple leases on Postgres: a session-level advisory lock (`pg_try_advisory_lock(NIGHTFOX, couple_id)`) on a
//! connection of its own, so one import per couple runs across every machine of the studio. The lock goes with
//! that connection: released when the lease is dropped, its process dies or its connection is cut. The note
//! (the session id) sits in `couple_leases` for others to read while the lock is held.

use postgres::Client;

use super::{CatalogContext, PgConn};
use crate::catalog::Lease;
use crate::error::Result;

/// The first key of every Nightfox advisory lock (the second is the couple's id).
const LOCK_CLASS: i32 = 0x4e46_0001;

/// A held advisory lock, on its own connection.
pub(super) struct PgLease {
    client: Client,
    couple_id: i64,
}

impl PgLease {
    /// Takes the couple's lock without waiting; `None` when any session (of any machine) holds it.
    pub(super) fn try_take(conn: &PgConn, couple_id: i64) -> Result<Option<PgLease>> {
        let mut client = conn.connect_another()?;
        let got: bool = client
            .query_one("SELECT pg_try_advisory_lock($1, $2::int)", &[&LOCK_CLASS, &(couple_id as i32)])
            .and_then(|r| r.try_get(0))
            .ctx("lock couple")?;
        Ok(got.then_some(PgLease { client, couple_id }))
    }
}

impl Lease for PgLease {
    fn write_note(&mut self, note: &str) -> Result<()> {
        self.client
            .execute(
                "INSERT INTO couple_leases (couple_id, note, holder, at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (couple_id) DO UPDATE SET note = $2, holder = $3, at = $4",
                &[&self.couple_id, &note, &holder(), &crate::catalog::now()],
            )
            .ctx("write lease note")?;
        Ok(())
    }
}

/// Who holds a lease: this machine and process.
fn holder() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    format!("{} pid {}", host.trim(), std::process::id())
}

/// Whether any session holds the couple's lock (`pg_locks` of this database).
pub(super) fn is_held(conn: &PgConn, couple_id: i64) -> Result<bool> {
    let mut c = conn.c()?;
    c.query_one(
        "SELECT EXISTS(SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted
             AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
             AND classid = $1::int::oid AND objid = $2::int::oid AND objsubid = 2)",
        &[&LOCK_CLASS, &(couple_id as i32)],
    )
    .and_then(|r| r.try_get(0))
    .ctx("look up couple lock")
}

/// The note of the couple's lease while it is held.
pub(super) fn note(conn: &PgConn, couple_id: i64) -> Result<Option<String>> {
    if !is_held(conn, couple_id)? {
        return Ok(None);
    }
    let mut c = conn.c()?;
    c.query_opt("SELECT note FROM couple_leases WHERE couple_id = $1", &[&couple_id])
        .and_then(|r| r.map(|r| r.try_get(0)).transpose())
        .ctx("read lease note")
}
