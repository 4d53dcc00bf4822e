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

pub mod entity;

use chrono::{DateTime, Utc};
use sea_orm::{ActiveValue::NotSet, ConnectionTrait, DbErr, EntityTrait, Set, TransactionTrait};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::db::Db;
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

type Pending = (entity::ActiveModel, oneshot::Sender<Result<(), String>>);

/// Group-committing logger for reads; cheap to clone.
#[derive(Clone)]
pub struct AuditLog {
    tx: mpsc::Sender<Pending>,
}

impl AuditLog {
    /// Starts the writer task. It ends when the last `AuditLog` clone is dropped.
    pub fn start(db: Db) -> AuditLog {
        let (tx, mut rx) = mpsc::channel::<Pending>(4096);
        tokio::spawn(async move {
            let mut batch: Vec<Pending> = Vec::with_capacity(256);
            while let Some(first) = rx.recv().await {
                batch.push(first);
                while batch.len() < 256 {
                    match rx.try_recv() {
                        Ok(p) => batch.push(p),
                        Err(_) => break,
                    }
                }
                let (rows, waiters): (Vec<_>, Vec<_>) = batch.drain(..).unzip();
                let result = write_batch(&db, rows).await.map_err(|e| e.to_string());
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
        let (done, wait) = oneshot::channel();
        self.tx
            .send((row(actor, entry, Utc::now()), done))
            .await
            .map_err(|_| ApiError::Unavailable("the audit log is shutting down".into()))?;
        match wait.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(ApiError::internal(anyhow::anyhow!("audit log: {e}"))),
            Err(_) => Err(ApiError::Unavailable(
                "the audit log is shutting down".into(),
            )),
        }
    }
}

async fn write_batch(db: &Db, rows: Vec<entity::ActiveModel>) -> Result<(), DbErr> {
    let started = std::time::Instant::now();
    let n = rows.len();
    if db.backend() == sea_orm::DbBackend::Sqlite {
        // One multi-row INSERT is one atomic statement in autocommit mode: one round trip to
        // the writer's thread instead of three (BEGIN, INSERT, COMMIT).
        entity::Entity::insert_many(rows)
            .exec_without_returning(&db.write)
            .await?;
        tracing::debug!(
            rows = n,
            elapsed_us = started.elapsed().as_micros() as u64,
            "audit batch committed"
        );
        return Ok(());
    }
    let txn = db.write.begin().await?;
    if db.backend() == sea_orm::DbBackend::Postgres {
        // One statement per line: sqlx 0.9.0 leaves Nagle's algorithm on (sqlx#4335), and a
        // statement larger than its 8 KiB write buffer then waits ~40 ms for a delayed ACK.
        for row in rows {
            entity::Entity::insert(row)
                .exec_without_returning(&txn)
                .await?;
        }
    } else {
        entity::Entity::insert_many(rows)
            .exec_without_returning(&txn)
            .await?;
    }
    txn.commit().await?;
    tracing::debug!(
        rows = n,
        elapsed_us = started.elapsed().as_micros() as u64,
        "audit batch committed"
    );
    Ok(())
}
