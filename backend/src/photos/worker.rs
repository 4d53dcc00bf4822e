//! The derivative worker: makes the thumbnail and preview of each new original, off the request
//! path, a bounded number at a time.
//!
//! Jobs live in the database (`derivative_state = pending` on the photo row), not in memory: a
//! worker takes a job by setting a lease in a conditional UPDATE, so two instances never take
//! the same job, and a job whose worker died is taken again when its lease runs out. Derivatives
//! are written to the store before the row says `done`, and each store write is atomic, so a
//! crash leaves either no derivative or a complete one — never a half-written file marked done.
//! The worker also expires unfinished uploads.
//!
//! Memory: besides the job count (`THOR_DERIVE_CONCURRENCY`), jobs share a budget in bytes
//! ([`DeriveBudget`], `THOR_DERIVE_MEMORY_MIB`). Each job first estimates its peak from the
//! header ([`imaging::plan`]); an image whose estimate is over the per-photo limit
//! (`THOR_PHOTO_DECODE_MAX_MIB`) is refused without being decoded, any other waits until its
//! estimate fits in what the running jobs leave of the budget.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{Duration, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set};
use tokio::sync::Semaphore;
use uuid::Uuid;

use super::blob::{BlobStore, Derivative};
use super::entity::photo;
use super::imaging;
use super::store;
use super::{DerivativeState, UploadState};
use crate::app::AppState;
use crate::audit::Actor;

/// How long a worker holds a job before another may take it.
const LEASE: i64 = 300;
/// The longest the worker sleeps between looks for due jobs. It is woken at once when an upload
/// finishes here and otherwise sleeps until the earliest lease or retry it knows of runs out
/// ([`next_look`]); this bound is for jobs it cannot know of, those of another instance on a
/// shared PostgreSQL that died holding them (taken here within two leases at worst). An idle
/// server with nothing pending looks every five minutes: each look takes a pooled reader, which
/// then stays open for `db::POOL_IDLE`.
const MAX_SLEEP: StdDuration = StdDuration::from_secs(LEASE as u64);
/// Attempts before a job that keeps failing for reasons outside the image is given up.
const MAX_ATTEMPTS: i32 = 5;

/// The memory that derivative jobs may hold together, in MiB permits, and the most one job
/// may need.
pub struct DeriveBudget {
    memory: Arc<Semaphore>,
    total_mib: u32,
    /// [`imaging::Limits::max_decode_bytes`] in force: never more than the whole budget, so a
    /// job that is let in can always get its permits.
    pub max_decode_bytes: u64,
}

impl DeriveBudget {
    pub fn new(config: &crate::config::Config) -> DeriveBudget {
        let total_mib = config.derive_memory_mib.max(1);
        let per_job = u64::from(config.photo_decode_max_mib.clamp(1, total_mib));
        DeriveBudget {
            memory: Arc::new(Semaphore::new(total_mib as usize)),
            total_mib,
            max_decode_bytes: per_job * imaging::MIB,
        }
    }

    /// The budget of all jobs together, in bytes.
    pub fn total_bytes(&self) -> u64 {
        u64::from(self.total_mib) * imaging::MIB
    }

    /// Waits until `bytes` fit in what the running jobs leave free, and holds them.
    async fn reserve(&self, bytes: u64) -> anyhow::Result<tokio::sync::OwnedSemaphorePermit> {
        let mib = u32::try_from(bytes.div_ceil(imaging::MIB))
            .unwrap_or(u32::MAX)
            .clamp(1, self.total_mib);
        Ok(self.memory.clone().acquire_many_owned(mib).await?)
    }

    /// MiB not held by a job now.
    pub fn free_mib(&self) -> usize {
        self.memory.available_permits()
    }
}

/// The imaging limits of the worker: the photo limits with the per-job memory limit.
pub fn limits(state: &AppState) -> imaging::Limits {
    imaging::Limits {
        max_decode_bytes: state.derive_budget.max_decode_bytes,
        ..state.photos.limits
    }
}

/// Runs until the process ends.
pub fn start(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let permits = Arc::new(Semaphore::new(state.config.derive_concurrency.max(1)));
        let mut last_expiry = std::time::Instant::now() - StdDuration::from_secs(3600);
        loop {
            if let Err(e) = run_once(&state, &permits).await {
                tracing::warn!(error = ?e, "derivative worker: a round failed");
            }
            if last_expiry.elapsed() > StdDuration::from_secs(600) {
                last_expiry = std::time::Instant::now();
                if let Err(e) = expire_uploads(&state).await {
                    tracing::warn!(error = ?e, "expiring unfinished uploads failed");
                }
            }
            let sleep = match next_look(&state).await {
                Ok(d) => d,
                Err(e) => {
                    tracing::warn!(error = ?e, "derivative worker: cannot read the next lease");
                    StdDuration::from_secs(60)
                }
            };
            tokio::select! {
                _ = state.photos.wake.notified() => {}
                _ = tokio::time::sleep(sleep) => {}
            }
        }
    })
}

/// How long until the worker must look again: until the earliest lease of a pending job runs
/// out (a job being derived, or one waiting for its retry), at most [`MAX_SLEEP`]. A job due
/// now that found no free permit needs no look: the job that frees one wakes the worker.
async fn next_look(state: &AppState) -> anyhow::Result<StdDuration> {
    let next: Option<chrono::DateTime<Utc>> = photo::Entity::find()
        .select_only()
        .column(photo::Column::DeriveLeaseUntil)
        .filter(photo::Column::DerivativeState.eq(DerivativeState::Pending.as_str()))
        .filter(photo::Column::UploadState.eq(UploadState::Complete.as_str()))
        .filter(photo::Column::DeletedSeq.is_null())
        .filter(photo::Column::DeriveLeaseUntil.is_not_null())
        .order_by_asc(photo::Column::DeriveLeaseUntil)
        .into_tuple()
        .one(&state.db.read)
        .await?;
    Ok(until(next, Utc::now()))
}

/// The wait until `next` (a second at least, [`MAX_SLEEP`] at most or when there is none).
fn until(next: Option<chrono::DateTime<Utc>>, now: chrono::DateTime<Utc>) -> StdDuration {
    next.map_or(MAX_SLEEP, |t| {
        (t - now)
            .to_std()
            .unwrap_or_default()
            .clamp(StdDuration::from_secs(1), MAX_SLEEP)
    })
}

/// Takes the jobs that are due, as many as there are free permits, and starts them.
pub async fn run_once(state: &AppState, permits: &Arc<Semaphore>) -> anyhow::Result<usize> {
    let free = permits.available_permits();
    if free == 0 {
        return Ok(0);
    }
    let now = Utc::now();
    let due = Condition::any()
        .add(photo::Column::DeriveLeaseUntil.is_null())
        .add(photo::Column::DeriveLeaseUntil.lt(now));
    let candidates: Vec<Uuid> = photo::Entity::find()
        .select_only()
        .column(photo::Column::Id)
        .filter(photo::Column::DerivativeState.eq(DerivativeState::Pending.as_str()))
        .filter(photo::Column::UploadState.eq(UploadState::Complete.as_str()))
        .filter(photo::Column::DeletedSeq.is_null())
        .filter(due.clone())
        .order_by_asc(photo::Column::UploadedAt)
        .limit(free as u64)
        .into_tuple()
        .all(&state.db.read)
        .await?;
    let mut started = 0;
    for id in candidates {
        let lease = now + Duration::seconds(LEASE);
        let taken = photo::Entity::update_many()
            .col_expr(photo::Column::DeriveLeaseUntil, Expr::value(lease))
            .filter(photo::Column::Id.eq(id))
            .filter(photo::Column::DerivativeState.eq(DerivativeState::Pending.as_str()))
            .filter(due.clone())
            .exec(&state.db.write)
            .await?;
        if taken.rows_affected != 1 {
            continue;
        }
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            break;
        };
        let st = state.clone();
        started += 1;
        tokio::spawn(async move {
            if let Err(e) = derive_one(&st, id).await {
                tracing::warn!(photo = %id, error = ?e, "derivative job failed; it will be retried");
            }
            drop(permit);
            st.photos.wake.notify_one();
        });
    }
    Ok(started)
}

enum Outcome {
    Done,
    /// The original cannot be decoded: kept as evidence, no derivatives.
    Undecodable(String),
}

/// One job: read the original, derive, store both, then mark the row.
pub async fn derive_one(state: &AppState, id: Uuid) -> anyhow::Result<()> {
    let Some(m) = photo::Entity::find_by_id(id).one(&state.db.write).await? else {
        return Ok(());
    };
    let blobs = &state.photos.blobs;
    let result: anyhow::Result<Outcome> = async {
        let original = blobs.read(&BlobStore::original_key(&m.sha256)).await?;
        let limits = limits(state);
        // Decided from the header: too large to decode within the limit is final.
        let plan = match imaging::plan(&original, &limits) {
            Ok(plan) => plan,
            Err(e) => return Ok(Outcome::Undecodable(e.to_string())),
        };
        let _memory = state.derive_budget.reserve(plan.peak_bytes).await?;
        let derived =
            tokio::task::spawn_blocking(move || imaging::derive_planned(&original, &plan, &limits))
                .await;
        match derived {
            Ok(Ok(d)) => {
                blobs
                    .put(
                        &BlobStore::derivative_key(&m.sha256, Derivative::Thumbnail),
                        d.thumbnail,
                    )
                    .await?;
                blobs
                    .put(
                        &BlobStore::derivative_key(&m.sha256, Derivative::Preview),
                        d.preview,
                    )
                    .await?;
                Ok(Outcome::Done)
            }
            Ok(Err(e)) => Ok(Outcome::Undecodable(e.to_string())),
            // A panic inside the decoder: the image is the cause, retrying will not help.
            Err(e) => Ok(Outcome::Undecodable(format!("the decoder failed: {e}"))),
        }
    }
    .await;
    let now = Utc::now();
    let actor = Actor::system("photo-worker");
    let txn = crate::sync::begin_write(&state.db).await?;
    let outcome = match result {
        Ok(o) => o,
        Err(e) => {
            let attempts = m.derive_attempts + 1;
            let give_up = attempts >= MAX_ATTEMPTS;
            let text = format!("{e:#}");
            store::server_update(&txn, &actor, id, now, |_, am| {
                am.derive_attempts = Set(attempts);
                am.derive_lease_until =
                    Set(Some(now + Duration::seconds(30 * i64::from(attempts))));
                if give_up {
                    am.derivative_state = Set(DerivativeState::Failed.as_str().into());
                    am.derivative_error = Set(Some(text.clone()));
                    (vec!["derivative_state"], None)
                } else {
                    (vec![], None)
                }
            })
            .await?;
            txn.commit().await?;
            return Err(e);
        }
    };
    store::server_update(&txn, &actor, id, now, |_, am| {
        am.derive_lease_until = Set(None);
        am.derive_attempts = Set(m.derive_attempts + 1);
        match &outcome {
            Outcome::Done => {
                am.derivative_state = Set(DerivativeState::Done.as_str().into());
                am.derivative_error = Set(None);
            }
            Outcome::Undecodable(why) => {
                am.derivative_state = Set(DerivativeState::Failed.as_str().into());
                am.derivative_error = Set(Some(why.clone()));
            }
        }
        (vec!["derivative_state"], None)
    })
    .await?;
    txn.commit().await?;
    Ok(())
}

/// Drops the bytes of unfinished uploads past their expiry; their records go back to pending.
pub async fn expire_uploads(state: &AppState) -> anyhow::Result<usize> {
    let now = Utc::now();
    let ids: Vec<Uuid> = photo::Entity::find()
        .select_only()
        .column(photo::Column::Id)
        .filter(photo::Column::UploadState.eq(UploadState::Partial.as_str()))
        .filter(photo::Column::UploadExpiresAt.lt(now))
        .into_tuple()
        .all(&state.db.read)
        .await?;
    let actor = Actor::system("upload-expiry");
    for id in &ids {
        super::tus::reset_upload(state, &actor, *id, None, now)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    Ok(ids.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sleeps_until_the_next_lease_runs_out_within_bounds() {
        let now = Utc::now();
        assert_eq!(until(None, now), MAX_SLEEP);
        assert_eq!(
            until(Some(now + Duration::seconds(90)), now),
            StdDuration::from_secs(90)
        );
        // A lease already past: look again soon, not in a busy loop.
        assert_eq!(
            until(Some(now - Duration::seconds(5)), now),
            StdDuration::from_secs(1)
        );
        assert_eq!(until(Some(now + Duration::days(2)), now), MAX_SLEEP);
    }
}
