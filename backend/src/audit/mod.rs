//! The append-only audit log: who did what to which record, when, from which device, and why.
//!
//! Two ways in, one table:
//! - [`record`] inside the write transaction of a change, so a change and its log line commit
//!   together or not at all;
//! - [`AuditLog::read`] for reads of Wpg data: the request waits until its line is committed
//!   (no Wpg data leaves the server unlogged), and concurrent reads share one commit (group
//!   commit), so logging every read does not serialise readers behind one fsync each.
//!
//! The database refuses UPDATE and DELETE on the table (triggers in the first migration).

pub mod chain;
pub mod entity;
pub mod inzage;
pub mod register;
pub mod report;
pub mod routes;

use chrono::{DateTime, Utc};
use sea_orm::{ActiveValue::NotSet, ConnectionTrait, DbErr, EntityTrait, Set, TransactionTrait};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::db::Db;
use crate::db::queue::{ask, next_batch};
use crate::error::ApiError;

/// Who acts: a user on a device, or the system itself (demo loader, CLI, background jobs).
#[derive(Debug, Clone)]
pub struct Actor {
    pub user_id: Option<Uuid>,
    pub name: String,
    pub device_id: Option<String>,
}

impl Actor {
    pub fn system(name: &str) -> Actor {
        Actor {
            user_id: None,
            name: name.to_string(),
            device_id: None,
        }
    }
}

/// What happened to which record.
#[derive(Debug, Clone)]
pub struct Entry {
    /// A verb: `create`, `update`, `read`, `list`, `login`, `revoke`, `export`, `delete` …
    pub action: &'static str,
    pub record_type: &'static str,
    pub record_id: Option<String>,
    /// Why, where a reason applies (a rejection, a revocation, a targeted query).
    pub reason: Option<String>,
    pub detail: Option<Value>,
}

impl Entry {
    pub fn new(action: &'static str, record_type: &'static str, record_id: impl ToString) -> Self {
        Entry {
            action,
            record_type,
            record_id: Some(record_id.to_string()),
            reason: None,
            detail: None,
        }
    }

    pub fn reason(mut self, reason: Option<String>) -> Self {
        self.reason = reason;
        self
    }

    pub fn detail(mut self, detail: Value) -> Self {
        self.detail = Some(detail);
        self
    }
}

/// A log line ready to insert (for writers that log many lines at once).
pub fn row(actor: &Actor, entry: Entry, at: DateTime<Utc>) -> entity::ActiveModel {
    entity::ActiveModel {
        id: NotSet,
        at: Set(at),
        actor_user_id: Set(actor.user_id),
        actor: Set(Some(actor.name.clone())),
        device_id: Set(actor.device_id.clone()),
        action: Set(entry.action.to_string()),
        record_type: Set(entry.record_type.to_string()),
        record_id: Set(entry.record_id),
        reason: Set(entry.reason),
        detail: Set(entry.detail),
    }
}

/// Writes one line in the caller's transaction: every write path calls this.
pub async fn record<C: ConnectionTrait>(
    conn: &C,
    actor: &Actor,
    entry: Entry,
    at: DateTime<Utc>,
) -> Result<(), DbErr> {
    entity::Entity::insert(row(actor, entry, at))
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// The actions that change a record (as opposed to reads): a record's history is these lines.
pub const CHANGES: &[&str] = &[
    "create",
    "update",
    "review",
    "review_undone",
    "mark_duplicate",
    "unmark_duplicate",
    "delete",
    "place_hold",
    "lift_hold",
    "case_step",
    "issue_document",
];

/// One change of a record, as its history shows it.
#[derive(Debug, Clone)]
pub struct Changed {
    pub at: DateTime<Utc>,
    pub actor: Option<String>,
    pub action: String,
    pub reason: Option<String>,
}

/// The changes of one record, oldest first (the reads stay in the fg's log).
pub async fn history<C: ConnectionTrait>(
    conn: &C,
    record_type: &str,
    record_id: &str,
) -> Result<Vec<Changed>, DbErr> {
    use sea_orm::{ColumnTrait, QueryFilter, QueryOrder};
    Ok(entity::Entity::find()
        .filter(entity::Column::RecordType.eq(record_type))
        .filter(entity::Column::RecordId.eq(record_id))
        .filter(entity::Column::Action.is_in(CHANGES.iter().copied()))
        .order_by_asc(entity::Column::Id)
        .all(conn)
        .await?
        .into_iter()
        .map(|l| Changed {
            at: l.at,
            actor: l.actor,
            action: l.action,
            reason: l.reason,
        })
        .collect())
}

/// Writes many lines in the caller's transaction, in statements small enough for every backend.
pub async fn record_many<C: ConnectionTrait>(
    conn: &C,
    rows: Vec<entity::ActiveModel>,
) -> Result<(), DbErr> {
    let chunk = if conn.get_database_backend() == sea_orm::DbBackend::Postgres {
        8
    } else {
        200
    };
    for part in rows.chunks(chunk) {
        entity::Entity::insert_many(part.to_vec())
            .exec_without_returning(conn)
            .await?;
    }
    Ok(())
}

/// The ids a read hands out, serialised once: a cached page is logged on every request, and
/// formatting its ids anew each time was a tenth of a listing's cost.
#[derive(Debug, Clone, Default)]
pub struct ReadIds {
    json: String,
    len: usize,
    only: Option<String>,
}

impl ReadIds {
    pub fn new<T: ToString>(ids: &[T]) -> ReadIds {
        let list = ids.iter().map(|id| Value::String(id.to_string())).collect();
        ReadIds {
            // Display of a JSON value cannot fail: no id is ever logged as missing.
            json: Value::Array(list).to_string(),
            len: ids.len(),
            only: match ids {
                [one] => Some(one.to_string()),
                _ => None,
            },
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// A read's log line as the writer stores it, its detail already serialised.
#[derive(Debug)]
struct Line {
    at: DateTime<Utc>,
    actor_user_id: Option<Uuid>,
    actor: String,
    device_id: Option<String>,
    action: &'static str,
    record_type: &'static str,
    record_id: Option<String>,
    reason: Option<String>,
    detail: Option<String>,
}

/// `detail` with `"ids": <ids>` added, as JSON text.
fn detail_with_ids(detail: serde_json::Map<String, Value>, ids: &ReadIds) -> String {
    let mut out = if detail.is_empty() {
        String::from("{")
    } else {
        let mut s = Value::Object(detail).to_string();
        s.pop(); // the closing brace
        s.push(',');
        s
    };
    out.push_str("\"ids\":");
    out.push_str(&ids.json);
    out.push('}');
    out
}

type Pending = (Line, oneshot::Sender<Result<(), String>>);

/// Group-committing logger for reads; cheap to clone.
#[derive(Clone)]
pub struct AuditLog {
    tx: mpsc::Sender<Pending>,
}

impl AuditLog {
    /// A log whose writer is gone (unit tests of code that only collects what it would log).
    #[cfg(test)]
    pub(crate) fn detached() -> AuditLog {
        AuditLog {
            tx: mpsc::channel(1).0,
        }
    }

    /// Starts the writer task. It ends when the last `AuditLog` clone is dropped.
    pub fn start(db: Db) -> AuditLog {
        let (tx, mut rx) = mpsc::channel::<Pending>(4096);
        tokio::spawn(async move {
            while let Some(batch) = next_batch(&mut rx, |b| b.len() >= 256).await {
                let (lines, waiters): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
                let result = write_batch(&db, lines).await.map_err(|e| e.to_string());
                if let Err(e) = &result {
                    tracing::error!(error = %e, "audit log write failed");
                }
                for w in waiters {
                    let _ = w.send(result.clone());
                }
            }
        });
        AuditLog { tx }
    }

    /// Logs a read and returns once the line is durable. If logging fails, the read fails:
    /// Wpg data is not handed out unlogged.
    pub async fn read(&self, actor: &Actor, entry: Entry) -> Result<(), ApiError> {
        self.send(Line {
            at: Utc::now(),
            actor_user_id: actor.user_id,
            actor: actor.name.clone(),
            device_id: actor.device_id.clone(),
            action: entry.action,
            record_type: entry.record_type,
            record_id: entry.record_id,
            reason: entry.reason,
            detail: entry.detail.map(|d| d.to_string()),
        })
        .await
    }

    /// [`read`](Self::read) of the records `ids` (with `detail`, e.g. the query); nothing is
    /// logged for an empty `ids`.
    pub async fn read_ids(
        &self,
        actor: &Actor,
        action: &'static str,
        record_type: &'static str,
        ids: &ReadIds,
        detail: serde_json::Map<String, Value>,
    ) -> Result<(), ApiError> {
        if ids.is_empty() {
            return Ok(());
        }
        self.send(Line {
            at: Utc::now(),
            actor_user_id: actor.user_id,
            actor: actor.name.clone(),
            device_id: actor.device_id.clone(),
            action,
            record_type,
            record_id: ids.only.clone(),
            reason: None,
            detail: Some(detail_with_ids(detail, ids)),
        })
        .await
    }

    async fn send(&self, line: Line) -> Result<(), ApiError> {
        ask(&self.tx, |done| (line, done))
            .await?
            .map_err(|e| ApiError::internal(anyhow::anyhow!("audit log: {e}")))
    }
}

async fn write_batch(db: &Db, lines: Vec<Line>) -> Result<(), DbErr> {
    let started = std::time::Instant::now();
    let n = lines.len();
    if db.backend() == sea_orm::DbBackend::Sqlite {
        // One multi-row INSERT is one atomic statement in autocommit mode: one round trip to the
        // writer's thread instead of three (BEGIN, INSERT, COMMIT). Bound as sea-orm binds the
        // same columns (times as RFC 3339 text, UUIDs as 16 bytes, the detail as JSON text).
        let mut q = sea_orm::sqlx::QueryBuilder::<sea_orm::sqlx::Sqlite>::new(
            "INSERT INTO audit_log (at, actor_user_id, actor, device_id, action, record_type, record_id, reason, detail) ",
        );
        q.push_values(lines, |mut b, l| {
            b.push_bind(l.at)
                .push_bind(l.actor_user_id)
                .push_bind(l.actor)
                .push_bind(l.device_id)
                .push_bind(l.action)
                .push_bind(l.record_type)
                .push_bind(l.record_id)
                .push_bind(l.reason)
                .push_bind(l.detail);
        });
        q.build()
            .execute(db.write.get_sqlite_connection_pool())
            .await
            .map_err(|e| DbErr::Exec(sea_orm::RuntimeErr::SqlxError(e.into())))?;
    } else {
        let txn = db.write.begin().await?;
        // One statement per line: sqlx 0.9.0 leaves Nagle's algorithm on (sqlx#4335), and a
        // statement larger than its 8 KiB write buffer then waits ~40 ms for a delayed ACK.
        for l in lines {
            let detail = match &l.detail {
                Some(d) => Some(
                    serde_json::from_str(d)
                        .map_err(|e| DbErr::Custom(format!("audit detail: {e}")))?,
                ),
                None => None,
            };
            let row = entity::ActiveModel {
                id: NotSet,
                at: Set(l.at),
                actor_user_id: Set(l.actor_user_id),
                actor: Set(Some(l.actor)),
                device_id: Set(l.device_id),
                action: Set(l.action.to_string()),
                record_type: Set(l.record_type.to_string()),
                record_id: Set(l.record_id),
                reason: Set(l.reason),
                detail: Set(detail),
            };
            entity::Entity::insert(row)
                .exec_without_returning(&txn)
                .await?;
        }
        txn.commit().await?;
    }
    tracing::debug!(
        rows = n,
        elapsed_us = started.elapsed().as_micros() as u64,
        "audit batch committed"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_join_the_detail_as_json() {
        let a = Uuid::from_u128(1);
        let b = Uuid::from_u128(2);
        let ids = ReadIds::new(&[a, b]);
        assert_eq!(ids.only, None);
        let mut detail = serde_json::Map::new();
        let v: Value = serde_json::from_str(&detail_with_ids(detail.clone(), &ids)).unwrap();
        assert_eq!(v, serde_json::json!({ "ids": [a, b] }));
        detail.insert("query".into(), serde_json::json!({ "date": "2026-11-26" }));
        let v: Value = serde_json::from_str(&detail_with_ids(detail.clone(), &ids)).unwrap();
        assert_eq!(
            v,
            serde_json::json!({ "query": { "date": "2026-11-26" }, "ids": [a, b] })
        );
        assert_eq!(ReadIds::new(&[a]).only, Some(a.to_string()));
        assert!(ReadIds::new::<Uuid>(&[]).is_empty());
    }
}
