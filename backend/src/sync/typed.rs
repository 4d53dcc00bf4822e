//! The sync tables with an entity of their own (reports, photos) have the same sync columns
//! under the same names: loading records for a push, the rows of a pull page and the window
//! exits are written once here, over the entity. (The declared kinds share one table and one
//! implementation in `records::sync`.)

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, Condition, DatabaseTransaction, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::table::{Creation, Current, PullSlice, field_revs};
use crate::auth::{Principal, Scope};
use crate::error::ApiResult;

/// The sync columns of a record, borrowed from its model.
pub struct SyncFields<'a> {
    pub id: Uuid,
    pub server_rev: i64,
    pub field_revs: &'a Value,
    pub deleted: bool,
    pub team_id: Option<Uuid>,
    pub created_seq: Option<i64>,
    pub created_device: Option<&'a str>,
    pub created_by: Uuid,
}

/// An entity that syncs: where its sync columns are, and its canonical row.
pub trait Synced: EntityTrait<Model: Send + Sync> {
    fn id_column() -> Self::Column;
    fn server_rev_column() -> Self::Column;
    fn deleted_seq_column() -> Self::Column;
    fn team_column() -> Self::Column;
    /// The time that places a record in the sync window (a report's observation, a photo's
    /// recording).
    fn window_column() -> Self::Column;
    fn sync_fields(m: &Self::Model) -> SyncFields<'_>;
    /// The record in canonical sync form.
    fn canonical(m: &Self::Model) -> Map<String, Value>;
}

/// Who created the record, and when in the sequence.
pub fn creation<E: Synced>(m: &E::Model) -> Creation {
    let f = E::sync_fields(m);
    Creation {
        seq: f.created_seq,
        device: f.created_device.map(str::to_string),
        user: Some(f.created_by),
    }
}

/// The records of these ids in the principal's scope (tombstones included), locked for the
/// push that reads them.
pub async fn load_many<E: Synced>(
    txn: &DatabaseTransaction,
    p: &Principal,
    ids: &[String],
) -> ApiResult<HashMap<String, Current>> {
    let uuids: Vec<Uuid> = ids.iter().filter_map(|id| id.parse().ok()).collect();
    let mut out = HashMap::new();
    for chunk in uuids.chunks(500) {
        let rows = E::find()
            .filter(E::id_column().is_in(chunk.to_vec()))
            .lock_exclusive()
            .all(txn)
            .await?;
        for m in &rows {
            let f = E::sync_fields(m);
            if !p.sees_team(f.team_id) {
                continue;
            }
            out.insert(
                f.id.to_string(),
                Current {
                    raw: E::canonical(m),
                    server_rev: f.server_rev,
                    field_revs: field_revs(f.field_revs),
                    deleted: f.deleted,
                    team_id: f.team_id,
                    creation: creation::<E>(m),
                },
            );
        }
    }
    Ok(out)
}

/// The rows of a pull page in the principal's scope, in revision order.
pub async fn pull_rows<E: Synced>(
    txn: &DatabaseTransaction,
    p: &Principal,
    s: &PullSlice,
) -> ApiResult<Vec<E::Model>> {
    let mut q = E::find()
        .filter(E::server_rev_column().gt(s.after))
        .filter(E::server_rev_column().lte(s.upto));
    q = if s.live_only {
        q.filter(E::deleted_seq_column().is_null())
            .filter(E::window_column().gte(s.window_start))
    } else {
        q.filter(
            Condition::any()
                .add(E::deleted_seq_column().is_not_null())
                .add(E::window_column().gte(s.window_start)),
        )
    };
    match p.scope() {
        Scope::All => {}
        Scope::Team(t) => q = q.filter(E::team_column().eq(t)),
        Scope::Nothing => return Ok(vec![]),
    }
    Ok(q.order_by_asc(E::server_rev_column())
        .limit(s.limit)
        .all(txn)
        .await?)
}

/// Ids of live records in scope whose window time lies in `[from, to)`.
pub async fn window_exits<E: Synced>(
    txn: &DatabaseTransaction,
    p: &Principal,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> ApiResult<Vec<String>> {
    let mut q = E::find()
        .select_only()
        .column(E::id_column())
        .filter(E::deleted_seq_column().is_null())
        .filter(E::window_column().gte(from))
        .filter(E::window_column().lt(to));
    match p.scope() {
        Scope::All => {}
        Scope::Team(t) => q = q.filter(E::team_column().eq(t)),
        Scope::Nothing => return Ok(vec![]),
    }
    let ids: Vec<Uuid> = q.into_tuple().all(txn).await?;
    Ok(ids.into_iter().map(|u| u.to_string()).collect())
}

/// Implements [`Synced`] for an entity module (`photo`, `violation`) whose model carries the sync
/// columns under their usual names (`id`, `server_rev`, `field_revs`, `deleted_seq`, `team_id`,
/// `created_seq`, `created_device`, `created_by`), given its window column and its canonical row.
macro_rules! synced_entity {
    ($m:ident, $window:ident, $canonical:path) => {
        impl $crate::sync::typed::Synced for $m::Entity {
            fn id_column() -> $m::Column {
                $m::Column::Id
            }
            fn server_rev_column() -> $m::Column {
                $m::Column::ServerRev
            }
            fn deleted_seq_column() -> $m::Column {
                $m::Column::DeletedSeq
            }
            fn team_column() -> $m::Column {
                $m::Column::TeamId
            }
            fn window_column() -> $m::Column {
                $m::Column::$window
            }
            fn sync_fields(m: &$m::Model) -> $crate::sync::typed::SyncFields<'_> {
                $crate::sync::typed::SyncFields {
                    id: m.id,
                    server_rev: m.server_rev,
                    field_revs: &m.field_revs,
                    deleted: m.deleted_seq.is_some(),
                    team_id: m.team_id,
                    created_seq: m.created_seq,
                    created_device: m.created_device.as_deref(),
                    created_by: m.created_by,
                }
            }
            fn canonical(m: &$m::Model) -> serde_json::Map<String, serde_json::Value> {
                $canonical(m)
            }
        }
    };
}
pub(crate) use synced_entity;
