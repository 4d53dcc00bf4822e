//! The sync cursor: a per-organisation sequence that every write stamps.
//!
//! Each write transaction ends by taking `n` sequence numbers with
//! `UPDATE sync_space SET last_seq = last_seq + n … RETURNING last_seq`. On PostgreSQL the row
//! lock is held until commit, so sequence order is commit order; SQLite has one writer. A pull
//! that reads `seq > cursor AND seq <= last_seq` in one snapshot therefore never skips a row
//! that commits late (the bug of bigserial and timestamp cursors). The pull/push engine builds
//! on this (see `mobile-api-spec/SYNC.md`).

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{ConnectionTrait, DbErr};

/// The single organisation an installation serves.
pub const SPACE_ID: i32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Upsert,
    Delete,
}

impl Op {
    fn as_str(self) -> &'static str {
        match self {
            Op::Upsert => "U",
            Op::Delete => "D",
        }
    }
}

/// One changed record, to be stamped.
#[derive(Debug, Clone)]
pub struct Change {
    pub table: &'static str,
    pub record_id: String,
    pub op: Op,
    pub changed_fields: Vec<&'static str>,
}

/// Allocates one sequence number per change and logs the changes in `sync_change`. Call it at
/// the end of the write transaction, after the domain checks; returns the numbers in order.
pub async fn stamp<C: ConnectionTrait>(
    conn: &C,
    changes: &[Change],
    device_id: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Vec<i64>, DbErr> {
    if changes.is_empty() {
        return Ok(vec![]);
    }
    let n = changes.len() as i64;
    let stmt = Query::update()
        .table("sync_space")
        .value("last_seq", Expr::col("last_seq").add(n))
        .and_where(Expr::col("id").eq(SPACE_ID))
        .returning_col("last_seq")
        .to_owned();
    let row = conn
        .query_one(&stmt)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound("sync_space row 1".into()))?;
    let last: i64 = row.try_get("", "last_seq")?;
    let seqs: Vec<i64> = ((last - n + 1)..=last).collect();

    let mut insert = Query::insert();
    insert.into_table("sync_change").columns([
        "seq",
        "table_name",
        "record_id",
        "op",
        "device_id",
        "changed_fields",
        "changed_at",
    ]);
    for (seq, c) in seqs.iter().zip(changes) {
        insert
            .values([
                (*seq).into(),
                c.table.into(),
                c.record_id.clone().into(),
                c.op.as_str().into(),
                device_id.map(str::to_string).into(),
                serde_json::json!(c.changed_fields).into(),
                now.into(),
            ])
            .map_err(|e| DbErr::Custom(format!("building sync_change insert: {e}")))?;
    }
    conn.execute(&insert).await?;
    Ok(seqs)
}

/// The newest sequence number.
pub async fn last_seq<C: ConnectionTrait>(conn: &C) -> Result<i64, DbErr> {
    let stmt = Query::select()
        .column("last_seq")
        .from("sync_space")
        .and_where(Expr::col("id").eq(SPACE_ID))
        .to_owned();
    let row = conn
        .query_one(&stmt)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound("sync_space row 1".into()))?;
    row.try_get("", "last_seq")
}
