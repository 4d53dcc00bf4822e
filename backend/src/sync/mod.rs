//! The sync cursor: a per-organisation sequence that every write stamps.
//!
//! Each write transaction takes `n` sequence numbers with
//! `UPDATE sync_space SET last_seq = last_seq + n … RETURNING last_seq`. On PostgreSQL the row
//! lock (taken when the transaction began, see "Lock order") is held until commit, so sequence
//! order is commit order; SQLite has one writer. A pull that reads
//! `seq > cursor AND seq <= last_seq` in one snapshot therefore never skips a row that commits
//! late (the bug of bigserial and timestamp cursors). The pull/push engine builds on this (see
//! `mobile-api-spec/SYNC.md`).
//!
//! # Lock order
//! Every transaction that writes a synced record (report, photo, declared kind, conflict) or
//! `sync_space` begins with [`begin_write`], which takes the `sync_space` row lock first, before
//! any record is read for update. Records are then locked in whatever order the work needs:
//! only one such transaction at a time gets past its first statement, so two of them never
//! wait on each other in a cycle. Without it, two instances deadlocked on PostgreSQL (issue
//! 19): a group commit locked report A, stamped (taking `sync_space`), then asked for report B,
//! while the other instance's batch held B and waited for `sync_space`. Writes that change no
//! synced record (accounts and tokens, the audit log's own writer, a device's pull mark as one
//! statement) take no record lock while they wait for another, so they cannot close a cycle
//! either, and do not take `sync_space`. The price: the writes of all instances run one at a
//! time from their first statement (before, from their first stamp, which in a push came
//! early anyway).

pub mod committer;
pub mod engine;
pub mod entities;
pub mod events;
pub mod merge;
pub mod pull;
pub mod routes;
pub mod table;
pub mod typed;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{ConnectionTrait, DbErr};

/// Days a push's stored answer is replayed for a retry with the same Idempotency-Key.
pub const IDEMPOTENCY_DAYS: i64 = 30;

/// The single organisation an installation serves.
pub const SPACE_ID: i32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// A new record: it takes a sequence number but is not written to the change log, which
    /// only answers the merge's question "who changed this field after revision r", and no
    /// revision of a record precedes its creation.
    Create,
    Upsert,
    Delete,
}

impl Op {
    fn as_str(self) -> &'static str {
        match self {
            Op::Create => "C",
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

/// Begins a write transaction that may change synced records or `sync_space`, taking the
/// `sync_space` row lock as its first statement (see the module's "Lock order"). On PostgreSQL
/// that is `SELECT … FOR UPDATE`, held until commit or rollback; SQLite has one writer
/// connection (`db::Db`), whose transactions never interleave, and needs nothing.
pub async fn begin_write(db: &crate::db::Db) -> Result<sea_orm::DatabaseTransaction, DbErr> {
    use sea_orm::TransactionTrait;
    let txn = db.write.begin().await?;
    lock_space(&txn).await?;
    Ok(txn)
}

/// Takes the `sync_space` row lock in a transaction (PostgreSQL; a no-op on SQLite).
async fn lock_space<C: ConnectionTrait>(conn: &C) -> Result<(), DbErr> {
    if conn.get_database_backend() != sea_orm::DbBackend::Postgres {
        return Ok(());
    }
    let stmt = Query::select()
        .column("id")
        .from("sync_space")
        .and_where(Expr::col("id").eq(SPACE_ID))
        .lock(sea_orm::sea_query::LockType::Update)
        .to_owned();
    conn.query_one(&stmt)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound("sync_space row 1".into()))?;
    Ok(())
}

/// Allocates one sequence number per change and logs the changes in `sync_change`, in a
/// transaction begun with [`begin_write`] (which holds the row this updates); returns the
/// numbers in order.
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
    let last = advance(conn, n).await?;
    let seqs: Vec<i64> = ((last - n + 1)..=last).collect();

    // Small statements on PostgreSQL: sqlx 0.9.0 stalls ~40 ms on writes over 8 KiB (Nagle).
    let chunk = if conn.get_database_backend() == sea_orm::DbBackend::Postgres {
        16
    } else {
        500
    };
    let rows: Vec<(i64, &Change)> = seqs
        .iter()
        .copied()
        .zip(changes)
        .filter(|(_, c)| c.op != Op::Create)
        .collect();
    for part in rows.chunks(chunk) {
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
        for (seq, c) in part {
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
    }
    Ok(seqs)
}

/// Moves the sequence on by `n` and returns the new last number.
async fn advance<C: ConnectionTrait>(conn: &C, n: i64) -> Result<i64, DbErr> {
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
    row.try_get("", "last_seq")
}

/// Moves the sequence on by one without a change, in a transaction begun with
/// [`begin_write`]: every answer cached by sequence (list pages, briefings, round statistics, on
/// every instance) is made anew at the next request. For changes that phones need not pull: a
/// record's retention stage changes long after it left every phone's sync window; a legal hold
/// is not synced.
pub async fn bump<C: ConnectionTrait>(conn: &C) -> Result<i64, DbErr> {
    advance(conn, 1).await
}

/// Stamps one changed record and returns its sequence number (see [`stamp`]).
pub async fn stamp_one<C: ConnectionTrait>(
    conn: &C,
    table: &'static str,
    record_id: String,
    op: Op,
    changed_fields: Vec<&'static str>,
    device_id: Option<&str>,
    now: DateTime<Utc>,
) -> Result<i64, DbErr> {
    let seqs = stamp(
        conn,
        &[Change {
            table,
            record_id,
            op,
            changed_fields,
        }],
        device_id,
        now,
    )
    .await?;
    seqs.first()
        .copied()
        .ok_or_else(|| DbErr::Custom("no sequence number allocated".into()))
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

/// Keeps a record's state at a revision, for later three-way merges against it.
///
/// Copy-on-write: a write path keeps the state it replaces (the old revision), not the one it
/// writes, so the current revision lives only in the record itself and a create writes no
/// history at all. A state kept twice (databases from before this rule kept the new state) is
/// not an error.
pub async fn record_history<C: ConnectionTrait>(
    conn: &C,
    table: &str,
    record_id: &str,
    rev: i64,
    snapshot: serde_json::Value,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    let mut stmt = Query::insert();
    stmt.into_table("record_history")
        .columns(["table_name", "record_id", "rev", "snapshot", "at"])
        .values([
            table.into(),
            record_id.into(),
            rev.into(),
            snapshot.into(),
            now.into(),
        ])
        .map_err(|e| DbErr::Custom(format!("building record_history insert: {e}")))?
        .on_conflict(history_conflict());
    conn.execute(&stmt).await?;
    Ok(())
}

fn history_conflict() -> sea_orm::sea_query::OnConflict {
    sea_orm::sea_query::OnConflict::columns(["table_name", "record_id", "rev"])
        .do_nothing()
        .to_owned()
}

/// Keeps many records' states at their revisions, `chunk` rows per statement.
pub async fn record_history_many<C: ConnectionTrait>(
    conn: &C,
    table: &str,
    rows: &[(String, i64, serde_json::Value)],
    now: DateTime<Utc>,
    chunk: usize,
) -> Result<(), DbErr> {
    for part in rows.chunks(chunk.max(1)) {
        let mut stmt = Query::insert();
        stmt.into_table("record_history").columns([
            "table_name",
            "record_id",
            "rev",
            "snapshot",
            "at",
        ]);
        for (id, rev, snapshot) in part {
            stmt.values([
                table.into(),
                id.clone().into(),
                (*rev).into(),
                snapshot.clone().into(),
                now.into(),
            ])
            .map_err(|e| DbErr::Custom(format!("building record_history insert: {e}")))?;
        }
        stmt.on_conflict(history_conflict());
        conn.execute(&stmt).await?;
    }
    Ok(())
}

/// A record's state at a revision, if kept.
pub async fn history_at<C: ConnectionTrait>(
    conn: &C,
    table: &str,
    record_id: &str,
    rev: i64,
) -> Result<Option<serde_json::Value>, DbErr> {
    let stmt = Query::select()
        .column("snapshot")
        .from("record_history")
        .and_where(Expr::col("table_name").eq(table))
        .and_where(Expr::col("record_id").eq(record_id))
        .and_where(Expr::col("rev").eq(rev))
        .to_owned();
    match conn.query_one(&stmt).await? {
        Some(row) => Ok(Some(row.try_get::<serde_json::Value>("", "snapshot")?)),
        None => Ok(None),
    }
}

/// Server time minus the device's clock, from the `X-Device-Time` header (milliseconds since
/// 1970). Device clocks are evidence, never order: this is recorded, not used to sort.
pub fn clock_offset_ms(headers: &axum::http::HeaderMap, now: DateTime<Utc>) -> Option<i64> {
    let device: i64 = headers
        .get("x-device-time")?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    // A clock that far off is no evidence of anything (and would overflow).
    now.timestamp_millis().checked_sub(device)
}

/// Destroys what is past the tombstone horizon: deletions older than `horizon`, their records
/// and their change log. A device whose cursor is older than what was purged gets 410 and pulls
/// in full. Returns the new purge mark.
pub async fn purge(
    db: &crate::db::Db,
    horizon: chrono::Duration,
    now: DateTime<Utc>,
) -> Result<i64, DbErr> {
    let cutoff = now - horizon;
    // It deletes tombstoned records before it moves `purged_seq`: the lock order applies.
    let txn = begin_write(db).await?;
    // Stored push answers (Idempotency-Key) are kept 30 days.
    txn.execute(
        &Query::delete()
            .from_table("sync_push")
            .and_where(Expr::col("created_at").lt(now - chrono::Duration::days(IDEMPOTENCY_DAYS)))
            .to_owned(),
    )
    .await?;
    let stmt = Query::select()
        .expr_as(Expr::col("seq").max(), "mark")
        .from("sync_change")
        .and_where(Expr::col("changed_at").lt(cutoff))
        .to_owned();
    let mark: Option<i64> = match txn.query_one(&stmt).await? {
        Some(row) => row.try_get("", "mark")?,
        None => None,
    };
    let Some(mark) = mark else {
        txn.commit().await?;
        return Ok(0);
    };
    let deleted_ids = Query::select()
        .column("id")
        .from("violation")
        .and_where(Expr::col("deleted_seq").lte(mark))
        .to_owned();
    txn.execute(
        &Query::delete()
            .from_table("violation_officer")
            .and_where(Expr::col("violation_id").in_subquery(deleted_ids))
            .to_owned(),
    )
    .await?;
    let mut gone = 0;
    // Every table the engine syncs (`engine::tables`): reports, photos and the declared kinds.
    let tables = ["violation", "photo"].into_iter().chain(
        crate::records::kinds::all()
            .into_iter()
            .map(|k| k.db_table()),
    );
    for table in tables {
        gone += txn
            .execute(
                &Query::delete()
                    .from_table(table)
                    .and_where(Expr::col("deleted_seq").lte(mark))
                    .to_owned(),
            )
            .await?
            .rows_affected();
    }
    txn.execute(
        &Query::delete()
            .from_table("sync_change")
            .and_where(Expr::col("seq").lte(mark))
            .to_owned(),
    )
    .await?;
    txn.execute(
        &Query::update()
            .table("sync_space")
            .value("purged_seq", mark)
            .and_where(Expr::col("id").eq(SPACE_ID))
            .and_where(Expr::col("purged_seq").lt(mark))
            .to_owned(),
    )
    .await?;
    crate::audit::record(
        &txn,
        &crate::audit::Actor::system("purge"),
        crate::audit::Entry {
            action: "destroy",
            record_type: "tombstones",
            record_id: None,
            reason: Some(format!("tombstone horizon of {} days", horizon.num_days())),
            detail: Some(serde_json::json!({ "purged_seq": mark, "records": gone })),
        },
        now,
    )
    .await?;
    txn.commit().await?;
    Ok(mark)
}
