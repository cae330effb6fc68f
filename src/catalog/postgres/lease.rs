//! Couple leases on Postgres: a session-level advisory lock (`pg_try_advisory_lock(key1, key2)`, the two-int
//! form) on a connection of its own, so one import per couple runs across every machine of the studio. The
//! couple's id is split losslessly into the two keys (see [`keys`]): no two couples share a lock whatever their
//! ids. The lock goes with that connection: released when the lease is dropped, its process dies or its
//! connection is cut. The note (the session id) sits in `couple_leases` for others to read while the lock is
//! held, with the holder's backend pid, so a note left by an earlier holder is never taken for the current one's.
//! A lease whose connection was cut (a server restart) is taken again at its next note, when nobody else took
//! the couple meanwhile.

use postgres::{Client, Config};

use super::{CatalogContext, PgConn};
use crate::catalog::Lease;
use crate::error::{Error, Result};

/// The advisory lock keys of a couple: the high 32 bits of its id with the top bit set (so the namespace never
/// meets the other Nightfox locks, whose first key is positive: the camera lock `0x4e46_0002`) and the low 32
/// bits. Lossless for every id a sequence gives (0 and up); a negative id is refused.
fn keys(couple_id: i64) -> Result<(i32, i32)> {
    if couple_id < 0 {
        return Err(Error::Invalid(format!("couple id {couple_id} cannot have a lease (negative)")));
    }
    let hi = ((couple_id >> 32) as u32 | 0x8000_0000) as i32;
    let lo = couple_id as u32 as i32;
    Ok((hi, lo))
}

/// A held advisory lock, on its own connection.
pub(super) struct PgLease {
    client: Client,
    couple_id: i64,
    config: Config,
    shown: String,
}

/// Takes the lock on `client`; whether it was free.
fn take_on(client: &mut Client, couple_id: i64) -> Result<bool> {
    let (k1, k2) = keys(couple_id)?;
    client
        .query_one("SELECT pg_try_advisory_lock($1::int, $2::int)", &[&k1, &k2])
        .and_then(|r| r.try_get(0))
        .ctx("lock couple")
}

impl PgLease {
    /// Takes the couple's lock without waiting; `None` when any session (of any machine) holds it.
    pub(super) fn try_take(conn: &PgConn, couple_id: i64) -> Result<Option<PgLease>> {
        keys(couple_id)?;
        let mut client = conn.connect_another()?;
        let got = take_on(&mut client, couple_id)?;
        Ok(got.then(|| PgLease { client, couple_id, config: conn.config.clone(), shown: conn.shown.clone() }))
    }

    /// After the lease's connection was cut: a new connection takes the lock again, unless another process
    /// took the couple meanwhile (then the lease is lost: an error that is not transient).
    fn retake(&mut self) -> Result<()> {
        let mut client = super::connect(&self.config, &self.shown)?;
        if !take_on(&mut client, self.couple_id)? {
            return Err(Error::LeaseLost { couple_id: self.couple_id });
        }
        tracing::warn!(couple = self.couple_id, "the couple's lease was taken again after its connection was cut");
        self.client = client;
        Ok(())
    }

    fn note_on(&mut self, note: &str) -> std::result::Result<u64, postgres::Error> {
        self.client.execute(
            "INSERT INTO couple_leases (couple_id, note, holder, at)
             VALUES ($1, $2, $3 || ' backend ' || pg_backend_pid(), $4)
             ON CONFLICT (couple_id) DO UPDATE SET note = EXCLUDED.note, holder = EXCLUDED.holder, at = EXCLUDED.at",
            &[&self.couple_id, &note, &holder(), &crate::catalog::now()],
        )
    }
}

impl Drop for PgLease {
    /// Unlocks before the connection goes: closing it alone frees the lock only once the server has noticed the
    /// closed socket, so a check right after the drop (another seat's `status`, gc, the next import) could still
    /// find the couple held.
    fn drop(&mut self) {
        if let (Ok((k1, k2)), false) = (keys(self.couple_id), self.client.is_closed()) {
            let _ = self.client.execute("SELECT pg_advisory_unlock($1::int, $2::int)", &[&k1, &k2]);
        }
    }
}

impl Lease for PgLease {
    fn write_note(&mut self, note: &str) -> Result<()> {
        if self.client.is_closed() {
            self.retake()?;
        }
        match self.note_on(note) {
            Ok(_) => Ok(()),
            // The connection (and with it the lock) went away since the last use: take it again, then write.
            Err(_) if self.client.is_closed() => {
                self.retake()?;
                self.note_on(note).ctx("write lease note").map(|_| ())
            }
            Err(e) => Err(super::catalog_error("write lease note", e)),
        }
    }
}

/// Who holds a lease: this machine and process.
fn holder() -> String {
    format!("{} pid {}", crate::jobs::hostname(), std::process::id())
}

/// The backend pid of the session that holds the couple's lock (`pg_locks` of this database), if any.
fn holder_pid(conn: &PgConn, couple_id: i64) -> Result<Option<i32>> {
    let (k1, k2) = keys(couple_id)?;
    // pg_locks shows the keys as oids (unsigned 32 bits).
    let (c1, c2) = (k1 as u32 as i64, k2 as u32 as i64);
    let mut c = conn.c()?;
    c.query_opt(
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted
             AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
             AND classid = $1::int8::oid AND objid = $2::int8::oid AND objsubid = 2
         LIMIT 1",
        &[&c1, &c2],
    )
    .and_then(|r| r.map(|r| r.try_get(0)).transpose())
    .ctx("look up couple lock")
}

/// Whether any session holds the couple's lock.
pub(super) fn is_held(conn: &PgConn, couple_id: i64) -> Result<bool> {
    Ok(holder_pid(conn, couple_id)?.is_some())
}

/// The note of the couple's lease while it is held, written by the session that holds it (a note an earlier
/// holder left is not this one's).
pub(super) fn note(conn: &PgConn, couple_id: i64) -> Result<Option<String>> {
    let Some(pid) = holder_pid(conn, couple_id)? else { return Ok(None) };
    let mut c = conn.c()?;
    let row: Option<(String, String)> = c
        .query_opt("SELECT note, holder FROM couple_leases WHERE couple_id = $1", &[&couple_id])
        .and_then(|r| r.map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).transpose())
        .ctx("read lease note")?;
    Ok(row.filter(|(_, h)| h.ends_with(&format!(" backend {pid}"))).map(|(n, _)| n))
}
