//! [`RawRows`] on SQLite: the rows of a table as dynamic values (`catalog copy`), and loading them into an empty
//! catalog in one IMMEDIATE transaction with foreign keys checked at its commit.

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::ToSql;

use super::*;
use crate::catalog::copy::{RawRows, RawSink, Value, TABLES};

impl ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Value::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            Value::Int(i) => ToSqlOutput::Borrowed(ValueRef::Integer(*i)),
            Value::Bool(b) => ToSqlOutput::Borrowed(ValueRef::Integer(*b as i64)),
            Value::Text(t) => ToSqlOutput::Borrowed(ValueRef::Text(t.as_bytes())),
            Value::Bytes(b) => ToSqlOutput::Borrowed(ValueRef::Blob(b)),
        })
    }
}

fn value_of(v: ValueRef) -> Value {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Int(i),
        ValueRef::Real(f) => Value::Int(f as i64),
        ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::Bytes(b.to_vec()),
    }
}

/// A table name from the copy's own list (never from input).
fn known(table: &str) -> Result<&str> {
    TABLES.iter().find(|t| **t == table).copied().ok_or_else(|| Error::Invalid(format!("no table {table}")))
}

fn columns_on(conn: &Connection, table: &str) -> Result<Vec<String>> {
    rows(conn, &format!("SELECT name FROM pragma_table_info('{}')", known(table)?), [], |r| r.get(0), "list columns")
}

/// The totals recounted from the files (the copy inserts trashed files too, which the insert triggers count).
const RECOUNT: &str = "
    INSERT OR IGNORE INTO couple_totals (couple_id) SELECT id FROM couples;
    UPDATE couple_totals SET
        files = (SELECT COUNT(*) FROM files f WHERE f.couple_id = couple_totals.couple_id AND f.trash_id IS NULL),
        bytes = (SELECT IFNULL(SUM(b.size), 0) FROM files f JOIN blobs b ON b.hash = f.blob_hash
                  WHERE f.couple_id = couple_totals.couple_id AND f.trash_id IS NULL),
        newest_import = (SELECT IFNULL(MAX(f.imported_at), 0) FROM files f WHERE f.couple_id = couple_totals.couple_id);
    DELETE FROM camera_totals;
    INSERT INTO camera_totals (camera_id, files)
        SELECT camera_id, COUNT(*) FROM files WHERE camera_id IS NOT NULL AND trash_id IS NULL GROUP BY camera_id;";

struct Sink<'a>(&'a Connection);

impl RawSink for Sink<'_> {
    fn columns(&mut self, table: &str) -> Result<Vec<String>> {
        columns_on(self.0, table)
    }

    fn write(&mut self, table: &str, cols: &[String], rows: &[Vec<Value>]) -> Result<()> {
        let marks: Vec<String> = (1..=cols.len()).map(|i| format!("?{i}")).collect();
        let sql = format!("INSERT INTO {} ({}) VALUES ({})", known(table)?, cols.join(", "), marks.join(", "));
        let mut st = self.0.prepare_cached(&sql).ctx("copy rows")?;
        for r in rows {
            st.execute(rusqlite::params_from_iter(r.iter())).ctx(&format!("copy a row of {table}"))?;
        }
        Ok(())
    }
}

impl RawRows for SqliteConn {
    fn raw_columns(&self, table: &str) -> Result<Vec<String>> {
        columns_on(&self.conn, table)
    }

    fn raw_read(&self, table: &str, cols: &[String], after: i64, limit: u32) -> Result<Vec<(i64, Vec<Value>)>> {
        let table = known(table)?;
        let keyed = self.raw_columns(table)?.iter().any(|c| c == "id");
        let sql = if keyed {
            format!("SELECT id, {} FROM {table} WHERE id > ?1 ORDER BY id LIMIT ?2", cols.join(", "))
        } else {
            format!("SELECT 0, {} FROM {table} WHERE ?1 = ?1 AND ?2 = ?2", cols.join(", "))
        };
        let n = cols.len();
        rows(
            &self.conn,
            &sql,
            params![after, limit],
            |r| Ok((r.get(0)?, (1..=n).map(|i| r.get_ref(i).map(value_of)).collect::<rusqlite::Result<Vec<_>>>()?)),
            "read rows to copy",
        )
    }

    fn raw_count(&self, table: &str) -> Result<i64> {
        self.conn.query_row(&format!("SELECT COUNT(*) FROM {}", known(table)?), [], |r| r.get(0)).ctx("count rows")
    }

    fn raw_load(&mut self, fill: &mut dyn FnMut(&mut dyn RawSink) -> Result<()>) -> Result<()> {
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).ctx("begin copy")?;
        let used: bool = tx
            .query_row("SELECT EXISTS(SELECT 1 FROM couples) OR EXISTS(SELECT 1 FROM files)", [], |r| r.get(0))
            .ctx("check the copy's catalog is empty")?;
        if used {
            return Err(Error::Invalid(format!(
                "catalog copy: {} has couples or files already (the copy goes into an empty catalog)",
                self.path.display()
            )));
        }
        tx.pragma_update(None, "defer_foreign_keys", "ON").ctx("defer foreign keys")?;
        fill(&mut Sink(&tx))?;
        tx.execute_batch(RECOUNT).ctx("recount totals")?;
        tx.commit().ctx("commit copy")
    }
}
