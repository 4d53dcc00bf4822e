//! Group commit for reports created over REST.
//!
//! Concurrent `POST /api/v1/violations` requests are handed to one task that writes whatever
//! has queued up in one transaction, through the one create path (`store::create_many_in`,
//! grouped per principal), commits once, and only then answers every request. Each request still
//! gets its own verdict (created, already there, refused); a database failure fails the batch,
//! and the phones retry safely because creates are idempotent by id. On SQLite's single writer
//! this turns one fsync and ~10 statements per report into one fsync and ~10 statements per
//! batch.

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, oneshot};

use super::NewViolation;
use super::store::{self, Created, WriteMeta};
use crate::auth::Principal;
use crate::db::Db;
use crate::db::queue::{ask, next_batch};
use crate::error::{ApiError, ApiResult};
use crate::reference::Reference;

struct Job {
    principal: Principal,
    input: NewViolation,
    meta: WriteMeta,
    now: DateTime<Utc>,
    reply: oneshot::Sender<ApiResult<Created>>,
}

#[derive(Clone)]
pub struct CreateBatcher {
    tx: mpsc::Sender<Job>,
}

const MAX_BATCH: usize = 256;

impl CreateBatcher {
    /// Starts the writer task; it ends when the last clone is dropped.
    pub fn start(db: Db, reference: std::sync::Arc<Reference>) -> CreateBatcher {
        let (tx, mut rx) = mpsc::channel::<Job>(4096);
        tokio::spawn(async move {
            while let Some(jobs) = next_batch(&mut rx, |b| b.len() >= MAX_BATCH).await {
                write_batch(&db, &reference, jobs).await;
            }
        });
        CreateBatcher { tx }
    }

    /// Creates a report (or recognises a retry) and returns once it is committed.
    pub async fn create(
        &self,
        principal: Principal,
        input: NewViolation,
        meta: WriteMeta,
        now: DateTime<Utc>,
    ) -> ApiResult<Created> {
        ask(&self.tx, |reply| Job {
            principal,
            input,
            meta,
            now,
            reply,
        })
        .await?
    }
}

async fn write_batch(db: &Db, reference: &Reference, jobs: Vec<Job>) {
    // Group per principal and device, keeping arrival order within a group.
    let mut groups: Vec<Vec<Job>> = Vec::new();
    for job in jobs {
        match groups.iter_mut().find(|g| {
            g[0].principal.user_id == job.principal.user_id
                && g[0].principal.device_id == job.principal.device_id
        }) {
            Some(g) => g.push(job),
            None => groups.push(vec![job]),
        }
    }
    let mut replies = Vec::new();
    let mut work = Vec::new();
    for group in groups {
        let p = group[0].principal.clone();
        let now = group.iter().map(|j| j.now).max().unwrap_or_else(Utc::now);
        let mut inputs = Vec::with_capacity(group.len());
        for j in group {
            inputs.push((j.input, j.meta));
            replies.push(j.reply);
        }
        work.push((p, inputs, now));
    }
    let result: ApiResult<Vec<ApiResult<Created>>> = async {
        let txn = crate::sync::begin_write(db).await?;
        let mut out = Vec::with_capacity(replies.len());
        for (p, inputs, now) in work {
            let n = inputs.len();
            match store::create_many_in(&txn, reference, &p, inputs, now).await {
                Ok(results) => out.extend(results),
                Err(e) if e.status().is_client_error() => {
                    let detail = e.to_problem().detail;
                    out.extend((0..n).map(|_| Err(ApiError::Forbidden(detail.clone()))));
                }
                Err(e) => return Err(e),
            }
        }
        txn.commit().await?;
        Ok(out)
    }
    .await;
    match result {
        Ok(out) => {
            for (reply, r) in replies.into_iter().zip(out) {
                let _ = reply.send(r);
            }
        }
        Err(e) => {
            tracing::error!(error = ?e, "a batch of report creates failed");
            for reply in replies {
                let _ = reply.send(Err(
                    e.for_each_of_batch("the batch this report was written in")
                ));
            }
        }
    }
}
