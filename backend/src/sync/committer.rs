//! Group commit for sync pushes.
//!
//! Phones push when they find a network, and at shift change a whole team does so at once. On
//! SQLite's single writer each push used to be one transaction: its statements, then one fsync,
//! with the next push waiting for both. Here concurrent pushes are handed to one task that runs
//! whatever has queued up in one transaction, commits once, and only then answers every phone
//! (a database failure of one push reruns the others on their own, see `write_batch`).
//! Each push keeps its own answer (applied, conflicts, rejections); nothing is acknowledged
//! before it is durable. A failed commit fails every push of the batch, and the phones retry
//! safely: re-pushing is a no-op by design.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::engine::{Push, PushMeta, PushResponse, push_alone, push_in, request_sha256};
use crate::auth::Principal;
use crate::db::Db;
use crate::db::queue::{ask, next_batch};
use crate::error::ApiResult;
use crate::reference::Reference;

struct Job {
    principal: Principal,
    request_sha: String,
    body: Push,
    meta: PushMeta,
    records: usize,
    reply: oneshot::Sender<ApiResult<PushResponse>>,
}

/// Pushes per transaction, at most.
const MAX_PUSHES: usize = 32;
/// Records per transaction, at most (a batch stops growing once it has this many): bounds the
/// time the first phone of a batch waits for the last.
const MAX_RECORDS: usize = 4_000;

#[derive(Clone)]
pub struct PushCommitter {
    tx: mpsc::Sender<Job>,
}

impl PushCommitter {
    /// Starts the writer task; it ends when the last clone is dropped.
    pub fn start(db: Db, reference: Arc<Reference>) -> PushCommitter {
        let (tx, mut rx) = mpsc::channel::<Job>(1024);
        tokio::spawn(async move {
            let full = |b: &[Job]| {
                b.len() >= MAX_PUSHES || b.iter().map(|j| j.records).sum::<usize>() >= MAX_RECORDS
            };
            while let Some(jobs) = next_batch(&mut rx, full).await {
                write_batch(&db, &reference, jobs).await;
            }
        });
        PushCommitter { tx }
    }

    /// Applies a push and returns its answer once it is committed.
    pub async fn push(
        &self,
        principal: Principal,
        body_bytes: &[u8],
        body: Push,
        meta: PushMeta,
    ) -> ApiResult<PushResponse> {
        let records = body.entries();
        let request_sha = request_sha256(body_bytes);
        ask(&self.tx, |reply| Job {
            principal,
            request_sha,
            body,
            meta,
            records,
            reply,
        })
        .await?
    }
}

async fn write_batch(db: &Db, reference: &Reference, jobs: Vec<Job>) {
    // Optimistic: the batch runs without a savepoint per push (on SQLite a savepoint journals
    // every page it touches). A push refused by the client's fault (a reused Idempotency-Key)
    // is refused before it writes anything, so it needs no undo. Should a push fail on the
    // database, the whole batch is rolled back and every push is run again on its own.
    let (replies, work): (Vec<_>, Vec<_>) = jobs
        .into_iter()
        .map(|j| (j.reply, (j.principal, j.request_sha, j.body, j.meta)))
        .unzip();
    let result: ApiResult<Vec<ApiResult<PushResponse>>> = async {
        let txn = crate::sync::begin_write(db).await?;
        let mut out = Vec::with_capacity(work.len());
        for (p, sha, body, meta) in &work {
            match push_in(&txn, reference, p, sha, body, meta).await {
                Ok(r) => out.push(Ok(r)),
                Err(e) if e.status().is_client_error() => out.push(Err(e)),
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
        Err(e) if work.len() == 1 => {
            tracing::error!(error = ?e, "a push failed");
            for reply in replies {
                let _ = reply.send(Err(
                    e.for_each_of_batch("the group commit this push was written in")
                ));
            }
        }
        Err(e) => {
            tracing::warn!(error = ?e, pushes = work.len(), "a group commit of pushes failed; running each push on its own");
            for (reply, (p, sha, body, meta)) in replies.into_iter().zip(work) {
                let r = push_alone(db, reference, &p, &sha, &body, &meta).await;
                if let Err(e) = &r {
                    tracing::error!(error = ?e, "a push failed on its own");
                }
                let _ = reply.send(r);
            }
        }
    }
}
