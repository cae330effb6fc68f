//! [`RawRows`] on Postgres: the rows of a table as dynamic values by their column types (`catalog copy`), and
//! loading them into an empty catalog in one transaction (self-references deferred to the commit), then the
//! totals recounted and every identity sequence moved past the copied ids.

use postgres::types::{ToSql, Type};

use super::*;
use crate::catalog::copy::{RawRows, RawSink, Value, TABLES};

/// A table name from the copy's own list (never from input).
fn known(table: &str) -> Result<&str> {
    TABLES.iter().find(|t| **t == table).copied().ok_or_else(|| Error::Invalid(format!("no table {table}")))
}

/// The columns of a table with their types, in schema order.
fn typed_columns(c: &mut impl GenericClient, table: &str) -> Result<Vec<(String, String)>> {
    rows(
        c,
        "SELECT column_name::text, data_type::text FROM information_schema.columns
          WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
        &[&known(table)?],
        |r| Ok((r.try_get(0)?, r.try_get(1)?)),
        "list columns",
    )
}

fn value_at(r: &Row, i: usize, ty: &Type) -> std::result::Result<Value, postgres::Error> {
    Ok(match *ty {
        Type::INT8 => r.try_get::<_, Option<i64>>(i)?.map_or(Value::Null, Value::Int),
        Type::INT4 => r.try_get::<_, Option<i32>>(i)?.map_or(Value::Null, |v| Value::Int(v.into())),
        Type::BOOL => r.try_get::<_, Option<bool>>(i)?.map_or(Value::Null, Value::Bool),
        Type::BYTEA => r.try_get::<_, Option<Vec<u8>>>(i)?.map_or(Value::Null, Value::Bytes),
        _ => r.try_get::<_, Option<String>>(i)?.map_or(Value::Null, Value::Text),
    })
}

/// A value as the destination column's type wants it (SQLite keeps flags as integers).
fn for_column(v: &Value, ty: &str) -> Box<dyn ToSql + Sync> {
    match (v, ty) {
        (Value::Null, "boolean") => Box::new(None::<bool>),
        (Value::Null, "bytea") => Box::new(None::<Vec<u8>>),
        (Value::Null, "text") => Box::new(None::<String>),
        (Value::Null, _) => Box::new(None::<i64>),
        (Value::Int(i), "boolean") => Box::new(*i != 0),
        (Value::Int(i), _) => Box::new(*i),
        (Value::Bool(b), "boolean") => Box::new(*b),
        (Value::Bool(b), _) => Box::new(*b as i64),
        (Value::Text(t), "bytea") => Box::new(t.as_bytes().to_vec()),
        (Value::Text(t), _) => Box::new(t.clone()),
        (Value::Bytes(b), "text") => Box::new(String::from_utf8_lossy(b).into_owned()),
        (Value::Bytes(b), _) => Box::new(b.clone()),
    }
}

/// The totals recounted from the files, as the triggers would have kept them.
const RECOUNT: &str = "
    INSERT INTO couple_totals (couple_id) SELECT id FROM couples ON CONFLICT DO NOTHING;
    UPDATE couple_totals SET
        files = (SELECT COUNT(*) FROM files f WHERE f.couple_id = couple_totals.couple_id AND f.trash_id IS NULL),
        bytes = (SELECT COALESCE(SUM(b.size), 0)::BIGINT FROM files f JOIN blobs b ON b.hash = f.blob_hash
                  WHERE f.couple_id = couple_totals.couple_id AND f.trash_id IS NULL),
        newest_import = (SELECT COALESCE(MAX(f.imported_at), 0) FROM files f
                          WHERE f.couple_id = couple_totals.couple_id);
    DELETE FROM camera_totals;
    INSERT INTO camera_totals (camera_id, files)
        SELECT camera_id, COUNT(*) FROM files WHERE camera_id IS NOT NULL AND trash_id IS NULL GROUP BY camera_id;";

struct Sink<'a, 'b>(&'a mut postgres::Transaction<'b>);

impl RawSink for Sink<'_, '_> {
    fn columns(&mut self, table: &str) -> Result<Vec<String>> {
        Ok(typed_columns(self.0, table)?.into_iter().map(|(n, _)| n).collect())
    }

    fn write(&mut self, table: &str, cols: &[String], rows: &[Vec<Value>]) -> Result<()> {
        let types = typed_columns(self.0, table)?;
        let ty: Vec<&str> =
            cols.iter().map(|c| types.iter().find(|(n, _)| n == c).map_or("bigint", |(_, t)| t.as_str())).collect();
        let marks: Vec<String> = (1..=cols.len()).map(|i| format!("${i}")).collect();
        let sql = format!("INSERT INTO {} ({}) VALUES ({})", known(table)?, cols.join(", "), marks.join(", "));
        let st = self.0.prepare(&sql).ctx("copy rows")?;
        for r in rows {
            let vals: Vec<Box<dyn ToSql + Sync>> = r.iter().zip(&ty).map(|(v, t)| for_column(v, t)).collect();
            let refs: Vec<&(dyn ToSql + Sync)> = vals.iter().map(|b| &**b).collect();
            self.0.execute(&st, &refs).ctx(&format!("copy a row of {table}"))?;
        }
        Ok(())
    }
}

impl RawRows for PgConn {
    fn raw_columns(&self, table: &str) -> Result<Vec<String>> {
        Ok(typed_columns(&mut *self.c()?, table)?.into_iter().map(|(n, _)| n).collect())
    }

    fn raw_read(&self, table: &str, cols: &[String], after: i64, limit: u32) -> Result<Vec<(i64, Vec<Value>)>> {
        let table = known(table)?;
        let keyed = self.raw_columns(table)?.iter().any(|c| c == "id");
        let sql = if keyed {
            format!("SELECT id, {} FROM {table} WHERE id > $1 ORDER BY id LIMIT $2", cols.join(", "))
        } else {
            format!(
                "SELECT 0::BIGINT, {} FROM {table} WHERE $1::BIGINT IS NOT NULL AND $2::BIGINT IS NOT NULL",
                cols.join(", ")
            )
        };
        let rs = self.c()?.query(&sql, &[&after, &(limit as i64)]).ctx("read rows to copy")?;
        rs.iter()
            .map(|r| {
                let vals =
                    (1..=cols.len()).map(|i| value_at(r, i, r.columns()[i].type_())).collect::<PgResult<Vec<_>>>()?;
                Ok((r.try_get(0)?, vals))
            })
            .collect::<PgResult<Vec<_>>>()
            .ctx("read rows to copy")
    }

    fn raw_count(&self, table: &str) -> Result<i64> {
        one(&mut *self.c()?, &format!("SELECT COUNT(*) FROM {}", known(table)?), &[], "count rows")
    }

    fn raw_load(&mut self, fill: &mut dyn FnMut(&mut dyn RawSink) -> Result<()>) -> Result<()> {
        let shown = self.shown.clone();
        let client = self.client.get_mut();
        let mut tx = client.transaction().ctx("begin copy")?;
        // No second copy into the same database at once.
        tx.execute("LOCK TABLE couples IN SHARE ROW EXCLUSIVE MODE", &[]).ctx("lock the copy's catalog")?;
        let used: bool = one(
            &mut tx,
            "SELECT EXISTS(SELECT 1 FROM couples) OR EXISTS(SELECT 1 FROM files)",
            &[],
            "check the copy's catalog is empty",
        )?;
        if used {
            return Err(Error::Invalid(format!(
                "catalog copy: {shown} has couples or files already (the copy goes into an empty catalog)"
            )));
        }
        tx.batch_execute("SET CONSTRAINTS ALL DEFERRED").ctx("defer constraints")?;
        fill(&mut Sink(&mut tx))?;
        tx.batch_execute(RECOUNT).ctx("recount totals")?;
        for table in TABLES {
            if typed_columns(&mut tx, table)?.iter().any(|(n, _)| n == "id") {
                tx.execute(
                    &format!(
                        "SELECT setval(pg_get_serial_sequence('{table}', 'id'), COALESCE(MAX(id), 0) + 1, false) FROM {table}"
                    ),
                    &[],
                )
                .ctx("move the id sequence past the copied rows")?;
            }
        }
        tx.commit().ctx("commit copy")
    }
}
