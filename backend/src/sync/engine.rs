//! The sync engine: WatermelonDB-compatible pull and push over any registered `SyncTable`.

use std::collections::{BTreeMap, HashSet};

use chrono::{Duration, Utc};
use sea_orm::{
    AccessMode, ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait,
    IsolationLevel, PaginatorTrait, QueryFilter, Set, TransactionTrait,
};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use uuid::Uuid;

use super::entities::{sync_conflict, sync_device, sync_push};
use super::merge::merge_field;
use super::table::{Pulled, PushCtx, SyncTable, Writable, canonical, wire};
use crate::auth::{Action, Principal, Role};
use crate::db::Db;
use crate::error::{ApiError, ApiResult, FieldError};
use crate::reference::Reference;

/// Every record type that syncs, in one place.
pub fn tables() -> Vec<Box<dyn SyncTable>> {
    let mut t: Vec<Box<dyn SyncTable>> = vec![Box::new(crate::violations::sync::ViolationsTable)];
    for kind in crate::records::kinds::all() {
        t.push(Box::new(crate::records::sync::KindTable(kind)));
    }
    t.push(Box::new(crate::photos::sync::PhotosTable));
    t
}

/// WatermelonDB's change set of one table.
#[derive(Debug, Default, Clone, Serialize, Deserialize, ToSchema)]
pub struct TableChanges {
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub created: Vec<Map<String, Value>>,
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub updated: Vec<Map<String, Value>>,
    #[serde(default)]
    pub deleted: Vec<String>,
}

/// The body of a push.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PushBody {
    /// `{table: {created, updated, deleted}}`; `created` and `updated` are handled alike.
    pub changes: BTreeMap<String, TableChanges>,
}

/// A conflict as the push answer reports it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ConflictNote {
    pub id: Uuid,
    pub table: String,
    pub record_id: String,
    pub field: Option<String>,
    /// both_changed, not_writable, edit_on_deleted or rejected.
    pub kind: String,
    #[schema(value_type = Object)]
    pub applied: Value,
    #[schema(value_type = Object)]
    pub client: Value,
}

/// A record the server refused, with the reason.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Rejection {
    pub table: String,
    pub id: String,
    pub detail: String,
    pub errors: Vec<FieldError>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PushResponse {
    /// Records written.
    pub applied: usize,
    /// Records that changed nothing (retries, echoes, edits that lost every field to a policy).
    pub unchanged: usize,
    pub conflicts: Vec<ConflictNote>,
    /// WatermelonDB: ids per table that stay unsynced on the phone.
    #[serde(rename = "experimentalRejectedIds")]
    pub experimental_rejected_ids: BTreeMap<String, Vec<String>>,
    pub rejected: Vec<Rejection>,
    /// Tables the server does not sync; their changes were ignored.
    pub ignored_tables: Vec<String>,
}

/// What the transport adds to a push.
#[derive(Debug, Default, Clone)]
pub struct PushMeta {
    /// The cursor of the phone's last pull (`last_pulled_at`).
    pub last_pulled_at: Option<i64>,
    pub idempotency_key: Option<String>,
    pub clock_offset_ms: Option<i64>,
    pub app_version: Option<String>,
    pub schema_version: Option<i32>,
    /// The largest photo accepted, in bytes (photo records declare their size).
    pub photo_max_bytes: u64,
}

struct Pending {
    conflicts: Vec<sync_conflict::ActiveModel>,
}

#[allow(clippy::too_many_arguments)]
fn conflict_row(
    ctx: &PushCtx<'_>,
    table: &str,
    id: &str,
    field: Option<&str>,
    kind: &str,
    policy: &str,
    values: [Option<Value>; 4],
    base_rev: Option<i64>,
    server_rev: Option<i64>,
    team_id: Option<Uuid>,
    detail: Option<String>,
) -> sync_conflict::ActiveModel {
    let [base, server, client, applied] = values;
    sync_conflict::ActiveModel {
        id: Set(Uuid::now_v7()),
        table_name: Set(table.to_string()),
        record_id: Set(id.to_string()),
        field: Set(field.map(str::to_string)),
        kind: Set(kind.to_string()),
        policy: Set(policy.to_string()),
        base_value: Set(base),
        server_value: Set(server),
        client_value: Set(client),
        applied_value: Set(applied),
        base_rev: Set(base_rev),
        server_rev: Set(server_rev),
        team_id: Set(team_id),
        user_id: Set(Some(ctx.principal.user_id)),
        device_id: Set(Some(ctx.principal.device_id.clone())),
        detail: Set(detail),
        created_at: Set(ctx.now),
        status: Set("open".into()),
        resolved_at: Set(None),
        resolved_by: Set(None),
        resolution: Set(None),
        resolved_value: Set(None),
    }
}

/// The conflict row that keeps a refused record as the phone sent it.
fn rejected_row(
    ctx: &PushCtx<'_>,
    table: &str,
    id: &str,
    raw: &Map<String, Value>,
    base_rev: Option<i64>,
    detail: &str,
) -> sync_conflict::ActiveModel {
    conflict_row(
        ctx,
        table,
        id,
        None,
        "rejected",
        "validation",
        [None, None, Some(Value::Object(raw.clone())), None],
        base_rev,
        None,
        ctx.principal.team_id,
        Some(detail.to_string()),
    )
}

impl PushResponse {
    /// Refuses one record: the phone keeps it unsynced (`experimentalRejectedIds`) and hears why.
    fn reject(&mut self, table: &str, id: &str, problem: crate::error::Problem) {
        self.experimental_rejected_ids
            .entry(table.to_string())
            .or_default()
            .push(id.to_string());
        self.rejected.push(Rejection {
            table: table.to_string(),
            id: id.to_string(),
            detail: problem.detail,
            errors: problem.errors,
        });
    }
}

enum Outcome {
    Applied,
    Unchanged,
    /// A new record: its canonical values, created with the others of the push in one batch.
    Create(Map<String, Value>),
}

/// Merges one pushed record into the server's and writes the result through the table.
async fn push_record(
    txn: &DatabaseTransaction,
    table: &dyn SyncTable,
    ctx: &PushCtx<'_>,
    id: &str,
    raw: &Map<String, Value>,
    current: Option<super::table::Current>,
    pending: &mut Pending,
) -> ApiResult<Outcome> {
    let p = ctx.principal;
    let hidden = table.hidden_columns(p);
    let mut invalid = Vec::new();
    let mut read = |col: &super::table::Column, v: &Value| match canonical(col.kind, v) {
        Ok(c) => Some(c),
        Err(e) => {
            invalid.push(FieldError::new(col.name, e));
            None
        }
    };
    let Some(cur) = current else {
        let mut values = Map::new();
        for col in table.columns() {
            if col.writable == Writable::Never || hidden.contains(&col.name) {
                continue;
            }
            if let Some(v) = raw.get(col.name)
                && let Some(c) = read(col, v)
            {
                values.insert(col.name.to_string(), c);
            }
        }
        if !invalid.is_empty() {
            return Err(ApiError::Validation(invalid));
        }
        return Ok(Outcome::Create(values));
    };
    if cur.deleted {
        pending.conflicts.push(conflict_row(
            ctx,
            table.name(),
            id,
            None,
            "edit_on_deleted",
            "tombstone_kept",
            [None, None, Some(Value::Object(raw.clone())), None],
            raw.get("server_rev").and_then(Value::as_i64),
            Some(cur.server_rev),
            cur.team_id,
            Some("the record was deleted on the server; the deletion stands".into()),
        ));
        return Ok(Outcome::Unchanged);
    }
    // The revision the phone's edit started from: `base_rev` (pinned by the app when the record
    // was first changed locally), else `server_rev`.
    // A `base_rev` of null means the phone's copy has no known base (it created the record).
    let base_rev = match raw.get("base_rev") {
        Some(b) => b.as_i64(),
        None => raw.get("server_rev").and_then(Value::as_i64),
    };
    let base: Option<Map<String, Value>> = match base_rev {
        Some(r) if r == cur.server_rev => Some(cur.raw.clone()),
        Some(r) => super::history_at(txn, table.name(), id, r)
            .await?
            .and_then(|v| v.as_object().cloned()),
        None => None,
    };
    // Changes after the base that this same device made itself are not concurrent with its edit
    // (say, its own earlier push whose answer it never got): only other writers count.
    let others_changed: Option<HashSet<String>> = match base_rev {
        Some(r) if r < cur.server_rev => {
            Some(changed_by_others(txn, table.name(), id, r, &p.device_id).await?)
        }
        _ => None,
    };
    let mut changes = Map::new();
    let mut conflicts = Vec::new();
    // Whether the phone's copy will differ from the server's after this push.
    let mut phone_differs = false;
    for col in table.columns() {
        if col.writable == Writable::Never || hidden.contains(&col.name) {
            continue;
        }
        let Some(v) = raw.get(col.name) else { continue };
        let Some(client) = read(col, v) else { continue };
        let server = cur.raw.get(col.name).cloned().unwrap_or(Value::Null);
        let mut base_v = base
            .as_ref()
            .map(|b| b.get(col.name).cloned().unwrap_or(Value::Null));
        // If only this device changed the field after its base, its own last write is what it
        // started this edit from.
        if let (Some(r), Some(others)) = (base_rev, others_changed.as_ref())
            && cur.field_revs.get(col.name).copied().unwrap_or(0) > r
            && !others.contains(col.name)
        {
            base_v = Some(server.clone());
        }
        let server_changed = match base_rev {
            Some(r) => {
                cur.field_revs.get(col.name).copied().unwrap_or(0) > r
                    && others_changed.as_ref().is_none_or(|o| o.contains(col.name))
            }
            None => true,
        };
        let m = merge_field(
            col.policy,
            base_v.as_ref(),
            &server,
            &client,
            server_changed,
        );
        phone_differs |= m.applied != client;
        if let Some(kind) = m.conflict {
            conflicts.push((col, kind, base_v, server.clone(), client, m.applied.clone()));
        }
        if m.changes(&server) {
            changes.insert(col.name.to_string(), m.applied);
        }
    }
    if !invalid.is_empty() {
        return Err(ApiError::Validation(invalid));
    }
    for (col, kind, base_v, server, client, applied) in conflicts {
        pending.conflicts.push(conflict_row(
            ctx,
            table.name(),
            id,
            Some(col.name),
            kind.as_str(),
            col.policy.name(),
            [base_v, Some(server), Some(client), Some(applied)],
            base_rev,
            Some(cur.server_rev),
            cur.team_id,
            None,
        ));
    }
    if changes.is_empty() {
        // A phone that already pulled past the current revision will not get the record again;
        // if its copy differs from the server's, give the record a new revision.
        let will_pull_anyway = ctx.last_pulled_at.is_some_and(|c| cur.server_rev > c);
        if phone_differs && !will_pull_anyway {
            // The phone will mark its copy synced; a new revision sends it the server's values.
            table.touch(txn, ctx, id).await?;
        }
        return Ok(Outcome::Unchanged);
    }
    table.update(txn, ctx, id, &changes).await?;
    Ok(Outcome::Applied)
}

/// The fields of a record that writers other than `device` changed after revision `after`.
async fn changed_by_others(
    txn: &DatabaseTransaction,
    table: &str,
    id: &str,
    after: i64,
    device: &str,
) -> ApiResult<HashSet<String>> {
    use sea_orm::sea_query::{Expr, ExprTrait, Query};
    let stmt = Query::select()
        .columns(["device_id", "changed_fields"])
        .from("sync_change")
        .and_where(Expr::col("table_name").eq(table))
        .and_where(Expr::col("record_id").eq(id))
        .and_where(Expr::col("seq").gt(after))
        .to_owned();
    let mut out = HashSet::new();
    for row in txn.query_all(&stmt).await? {
        let by: Option<String> = row.try_get("", "device_id")?;
        if by.as_deref() == Some(device) {
            continue;
        }
        let fields: Option<Value> = row.try_get("", "changed_fields")?;
        for f in fields
            .as_ref()
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(f) = f.as_str() {
                out.insert(f.to_string());
            }
        }
    }
    Ok(out)
}

/// The SHA-256 of a push body, hex: what an Idempotency-Key is bound to.
pub fn request_sha256(bytes: &[u8]) -> String {
    crate::auth::token::hex(&Sha256::digest(bytes))
}

/// [`push_in`] in a transaction of its own, for a body whose hash is known.
pub async fn push_alone(
    db: &Db,
    reference: &Reference,
    p: &Principal,
    request_sha: &str,
    body: &PushBody,
    meta: &PushMeta,
) -> ApiResult<PushResponse> {
    let txn = db.write.begin().await?;
    let response = push_in(&txn, reference, p, request_sha, body, meta).await?;
    txn.commit().await?;
    Ok(response)
}

/// Applies a push inside the caller's transaction. A record the rules refuse is rejected on its
/// own (its id is reported in `experimentalRejectedIds`) and never fails the push; a database
/// failure fails all of it (the caller rolls back).
pub async fn push_in(
    txn: &DatabaseTransaction,
    reference: &Reference,
    p: &Principal,
    request_sha: &str,
    body: &PushBody,
    meta: &PushMeta,
) -> ApiResult<PushResponse> {
    let now = Utc::now();
    let request_sha = request_sha.to_string();
    if let Some(key) = &meta.idempotency_key {
        if key.is_empty() || key.len() > 200 {
            return Err(ApiError::field("Idempotency-Key", "1 to 200 characters"));
        }
        // Read inside the transaction: a retry committed in the same group commit is seen.
        if let Some(stored) = sync_push::Entity::find_by_id((p.user_id, key.clone()))
            .one(txn)
            .await?
        {
            if stored.request_sha256 == request_sha {
                return serde_json::from_value(stored.response).map_err(ApiError::internal);
            }
            return Err(ApiError::field(
                "Idempotency-Key",
                "this key was used for a different push; use a new key for new changes",
            ));
        }
    }
    let ctx = PushCtx {
        principal: p,
        reference,
        now,
        clock_offset_ms: meta.clock_offset_ms,
        last_pulled_at: meta.last_pulled_at,
        photo_max_bytes: meta.photo_max_bytes,
    };
    let tables = tables();
    let mut response = PushResponse {
        applied: 0,
        unchanged: 0,
        conflicts: vec![],
        experimental_rejected_ids: BTreeMap::new(),
        rejected: vec![],
        ignored_tables: vec![],
    };
    let mut pending = Pending { conflicts: vec![] };
    for (name, changes) in &body.changes {
        if !tables.iter().any(|t| t.name() == name)
            && (!changes.created.is_empty()
                || !changes.updated.is_empty()
                || !changes.deleted.is_empty())
        {
            tracing::warn!(table = %name, "push for a table the server does not sync; ignored");
            response.ignored_tables.push(name.clone());
        }
    }
    // Tables in their declared order, parents first: a photo pushed with its report finds it.
    for table in &tables {
        let name = table.name();
        let Some(changes) = body.changes.get(name) else {
            continue;
        };
        let mut seen = HashSet::new();
        // New records of this table: id, canonical values, the raw row as pushed.
        type NewItem = (String, Map<String, Value>, Map<String, Value>);
        let mut new_items: Vec<NewItem> = Vec::new();
        let ids: Vec<String> = changes
            .created
            .iter()
            .chain(changes.updated.iter())
            .filter_map(|r| r.get("id").and_then(Value::as_str).map(str::to_string))
            .collect();
        let mut currents = table.load_many(txn, p, &ids).await?;
        for raw in changes.created.iter().chain(changes.updated.iter()) {
            let id = raw
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            if id.is_empty() || !seen.insert(id.clone()) {
                continue;
            }
            let current = currents.remove(&id);
            let is_new = current.is_none();
            // A new record writes nothing here (it joins the batch below): no savepoint needed.
            let sp = if is_new {
                None
            } else {
                Some(txn.begin().await?)
            };
            let mut local = Pending { conflicts: vec![] };
            let conn: &DatabaseTransaction = sp.as_ref().unwrap_or(txn);
            match push_record(conn, table.as_ref(), &ctx, &id, raw, current, &mut local).await {
                Ok(outcome) => {
                    if let Some(sp) = sp {
                        sp.commit().await?;
                    }
                    match outcome {
                        Outcome::Applied => response.applied += 1,
                        Outcome::Unchanged => response.unchanged += 1,
                        Outcome::Create(values) => {
                            new_items.push((id.clone(), values, raw.clone()))
                        }
                    }
                    pending.conflicts.extend(local.conflicts);
                }
                Err(e) if e.status().is_client_error() => {
                    if let Some(sp) = sp {
                        sp.rollback().await?;
                    }
                    let base_rev = raw.get("server_rev").and_then(Value::as_i64);
                    let problem = e.to_problem();
                    pending.conflicts.push(rejected_row(
                        &ctx,
                        name,
                        &id,
                        raw,
                        base_rev,
                        &problem.detail,
                    ));
                    response.reject(name, &id, problem);
                }
                Err(e) => return Err(e),
            }
        }
        if !new_items.is_empty() {
            // No savepoint: a create path judges every record before it writes any, and takes
            // its own savepoint where it must retry (a create race on PostgreSQL). On SQLite a
            // savepoint costs a statement journal of every page the batch touches.
            let items = new_items
                .iter()
                .map(|(id, values, _)| (id.clone(), values.clone()))
                .collect();
            let results = match table.create_many(txn, &ctx, items).await {
                Ok(r) => r,
                Err(e) if e.status().is_client_error() => {
                    let problem = e.to_problem();
                    new_items
                        .iter()
                        .map(|_| Err(ApiError::Forbidden(problem.detail.clone())))
                        .collect()
                }
                Err(e) => return Err(e),
            };
            for ((id, _, raw), result) in new_items.iter().zip(results) {
                match result {
                    Ok(()) => response.applied += 1,
                    Err(e) if e.status().is_client_error() => {
                        let problem = e.to_problem();
                        pending.conflicts.push(rejected_row(
                            &ctx,
                            name,
                            id,
                            raw,
                            None,
                            &problem.detail,
                        ));
                        response.reject(name, id, problem);
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        for id in &changes.deleted {
            if seen.contains(id) {
                continue;
            }
            let sp = txn.begin().await?;
            match table.delete(&sp, &ctx, id).await {
                Ok(deleted) => {
                    sp.commit().await?;
                    if deleted {
                        response.applied += 1;
                    } else {
                        response.unchanged += 1;
                    }
                }
                Err(e) if e.status().is_client_error() => {
                    sp.rollback().await?;
                    response.reject(name, id, e.to_problem());
                }
                Err(e) => return Err(e),
            }
        }
    }
    for c in &pending.conflicts {
        response.conflicts.push(ConflictNote {
            id: *c.id.as_ref(),
            table: c.table_name.as_ref().clone(),
            record_id: c.record_id.as_ref().clone(),
            field: c.field.as_ref().clone(),
            kind: c.kind.as_ref().clone(),
            applied: c.applied_value.as_ref().clone().unwrap_or(Value::Null),
            client: c.client_value.as_ref().clone().unwrap_or(Value::Null),
        });
    }
    if !pending.conflicts.is_empty() {
        sync_conflict::Entity::insert_many(pending.conflicts)
            .exec_without_returning(txn)
            .await?;
    }
    upsert_device(txn, p, |d| {
        d.last_push_at = Set(Some(now));
        if meta.clock_offset_ms.is_some() {
            d.clock_offset_ms = Set(meta.clock_offset_ms);
        }
        if meta.app_version.is_some() {
            d.app_version = Set(meta.app_version.clone());
        }
        if meta.schema_version.is_some() {
            d.schema_version = Set(meta.schema_version);
        }
    })
    .await?;
    if let Some(key) = &meta.idempotency_key {
        sync_push::ActiveModel {
            user_id: Set(p.user_id),
            idempotency_key: Set(key.clone()),
            device_id: Set(p.device_id.clone()),
            request_sha256: Set(request_sha),
            response: Set(serde_json::to_value(&response).map_err(ApiError::internal)?),
            created_at: Set(now),
        }
        .insert(txn)
        .await?;
    }
    Ok(response)
}

async fn upsert_device<C: ConnectionTrait>(
    conn: &C,
    p: &Principal,
    set: impl FnOnce(&mut sync_device::ActiveModel),
) -> ApiResult<()> {
    // Make sure the row exists (two requests of one device may race here), then update it.
    sync_device::Entity::insert(sync_device::ActiveModel {
        user_id: Set(p.user_id),
        device_id: Set(p.device_id.clone()),
        app_version: Set(None),
        schema_version: Set(None),
        clock_offset_ms: Set(None),
        last_push_at: Set(None),
        last_pull_at: Set(None),
        last_pulled_seq: Set(None),
        window_start: Set(None),
    })
    .on_conflict(
        sea_orm::sea_query::OnConflict::columns([
            sync_device::Column::UserId,
            sync_device::Column::DeviceId,
        ])
        .do_nothing()
        .to_owned(),
    )
    .exec_without_returning(conn)
    .await?;
    let mut am = sync_device::ActiveModel {
        user_id: sea_orm::ActiveValue::Unchanged(p.user_id),
        device_id: sea_orm::ActiveValue::Unchanged(p.device_id.clone()),
        ..Default::default()
    };
    set(&mut am);
    if am.is_changed() {
        am.update(conn).await?;
    }
    Ok(())
}

/// WatermelonDB's change set of one table as a pull sends it: rows already in wire form.
#[derive(Debug, Default, Clone, Serialize, Deserialize, ToSchema)]
pub struct PulledChanges {
    #[schema(value_type = Vec<Object>)]
    pub created: Vec<Box<RawValue>>,
    #[schema(value_type = Vec<Object>)]
    pub updated: Vec<Box<RawValue>>,
    pub deleted: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PullResponse {
    /// `{table: {created: [], updated: [rows], deleted: [ids]}}`; every live row is in `updated`
    /// (clients use `sendCreatedAsUpdated`). Reference tables come with a full pull.
    #[schema(value_type = Object)]
    pub changes: BTreeMap<String, PulledChanges>,
    /// The cursor to send as `last_pulled_at` next time (WatermelonDB's `lastPulledAt`).
    pub timestamp: i64,
    /// More changes wait: pull again with this `timestamp` before pushing.
    pub has_more: bool,
    /// Open sync conflicts for this user (a team lead: for the team).
    pub conflicts_open: u64,
    /// The ids of the rows in `updated`, per table: what the route logs for Wpg tables before
    /// the answer leaves (not sent).
    #[serde(skip)]
    pub pulled_ids: BTreeMap<String, Vec<String>>,
}

/// Options of a pull.
#[derive(Debug, Clone)]
pub struct PullRequest {
    pub cursor: i64,
    pub limit: u64,
    pub window_days: i64,
    pub schema_version: Option<i32>,
    /// A WatermelonDB migration sync: send everything (all our tables exist since version 1).
    pub migration: bool,
}

/// Reads the changes in a device's scope after its cursor, in one snapshot.
pub async fn pull(
    db: &Db,
    reference: &Reference,
    p: &Principal,
    req: PullRequest,
) -> ApiResult<PullResponse> {
    let now = Utc::now();
    let window_start = now - Duration::days(req.window_days);
    // One snapshot for the whole pull: REPEATABLE READ on PostgreSQL; a SQLite read
    // transaction sees one WAL snapshot from its first read on.
    let txn = if db.backend() == sea_orm::DbBackend::Postgres {
        db.read
            .begin_with_config(
                Some(IsolationLevel::RepeatableRead),
                Some(AccessMode::ReadOnly),
            )
            .await?
    } else {
        db.read.begin().await?
    };
    let (last_seq, purged_seq) = space(&txn).await?;
    let cursor = if req.migration { 0 } else { req.cursor };
    if cursor < 0 || (cursor > 0 && (cursor < purged_seq || cursor > last_seq)) {
        return Err(ApiError::Gone(format!(
            "the cursor {cursor} is older than the tombstone horizon or unknown to this server; \
             pull again with last_pulled_at=0 and replace the local data (WatermelonDB's replacement strategy)"
        )));
    }
    let tables = tables();
    let mut all = Vec::new();
    for t in &tables {
        for row in t
            .pull(&txn, p, window_start, cursor, last_seq, req.limit + 1)
            .await?
        {
            all.push((t.as_ref(), row));
        }
    }
    all.sort_by_key(|(_, r)| r.seq);
    let has_more = all.len() as u64 > req.limit;
    all.truncate(req.limit as usize);
    let timestamp = if has_more {
        all.last().map(|(_, r)| r.seq).unwrap_or(last_seq)
    } else {
        last_seq
    };

    let mut changes: BTreeMap<String, PulledChanges> = BTreeMap::new();
    for t in &tables {
        changes.insert(t.name().to_string(), PulledChanges::default());
    }
    let mut pulled_ids: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (t, row) in all {
        let entry = changes.entry(t.name().to_string()).or_default();
        if !matches!(row.row, Pulled::Deleted) {
            pulled_ids
                .entry(t.name().to_string())
                .or_default()
                .push(row.id.clone());
        }
        match row.row {
            Pulled::Canonical(r) => {
                entry
                    .updated
                    .push(to_raw(&wire_form(t, t.hidden_columns(p), r, row.seq))?);
            }
            Pulled::Wire(w) => entry.updated.push(w),
            Pulled::Deleted => entry.deleted.push(row.id),
        }
    }
    let device = sync_device::Entity::find_by_id((p.user_id, p.device_id.clone()))
        .one(&txn)
        .await?;
    if !has_more
        && cursor > 0
        && let Some(prev) = device.as_ref().and_then(|d| d.window_start)
        && prev < window_start
    {
        for t in &tables {
            let exits = t.window_exits(&txn, p, prev, window_start).await?;
            let entry = changes.entry(t.name().to_string()).or_default();
            entry.deleted.extend(exits);
        }
    }
    if cursor == 0 {
        add_reference(&mut changes, reference, &txn, p).await?;
    }
    let conflicts_open = open_conflicts(&txn, p).await?;
    txn.commit().await?;
    if !has_more {
        upsert_device(&db.write, p, |d| {
            d.last_pull_at = Set(Some(now));
            d.last_pulled_seq = Set(Some(timestamp));
            d.window_start = Set(Some(window_start));
            if req.schema_version.is_some() {
                d.schema_version = Set(req.schema_version);
            }
        })
        .await?;
    }
    Ok(PullResponse {
        changes,
        timestamp,
        has_more,
        conflicts_open,
        pulled_ids,
    })
}

/// A canonical row as it goes on the wire: hidden columns nulled, lists as JSON strings,
/// `server_rev` added.
pub fn wire_form(
    t: &dyn SyncTable,
    hidden: &[&str],
    mut r: Map<String, Value>,
    seq: i64,
) -> Map<String, Value> {
    for col in t.columns() {
        if hidden.contains(&col.name) {
            r.insert(col.name.to_string(), Value::Null);
        } else if let Some(v) = r.get(col.name) {
            let w = wire(col.kind, v);
            r.insert(col.name.to_string(), w);
        }
    }
    r.insert("server_rev".into(), json!(seq));
    r
}

fn to_raw<T: Serialize>(v: &T) -> ApiResult<Box<RawValue>> {
    serde_json::value::to_raw_value(v).map_err(ApiError::internal)
}

async fn space<C: ConnectionTrait>(conn: &C) -> ApiResult<(i64, i64)> {
    use sea_orm::sea_query::{Expr, ExprTrait, Query};
    let stmt = Query::select()
        .columns(["last_seq", "purged_seq"])
        .from("sync_space")
        .and_where(Expr::col("id").eq(super::SPACE_ID))
        .to_owned();
    let row = conn
        .query_one(&stmt)
        .await?
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("sync_space row missing")))?;
    Ok((row.try_get("", "last_seq")?, row.try_get("", "purged_seq")?))
}

async fn open_conflicts<C: ConnectionTrait>(conn: &C, p: &Principal) -> ApiResult<u64> {
    let mut q = sync_conflict::Entity::find().filter(sync_conflict::Column::Status.eq("open"));
    q = match (p.role, p.scope()) {
        (Role::Teamleider, crate::auth::Scope::Team(t)) => {
            q.filter(sync_conflict::Column::TeamId.eq(t))
        }
        (Role::Beheerder, _) => q,
        _ => q.filter(sync_conflict::Column::UserId.eq(p.user_id)),
    };
    Ok(q.count(conn).await?)
}

/// Read-only reference tables, sent whole with a full pull.
async fn add_reference(
    changes: &mut BTreeMap<String, PulledChanges>,
    reference: &Reference,
    txn: &DatabaseTransaction,
    p: &Principal,
) -> ApiResult<()> {
    let rows = |items: Vec<Value>| PulledChanges {
        created: vec![],
        updated: items
            .iter()
            .filter_map(|v| serde_json::value::to_raw_value(v).ok())
            .collect(),
        deleted: vec![],
    };
    changes.insert(
        "categories".into(),
        rows(reference.categories.iter().map(|c| json!({
            "id": c.code, "name": c.name, "description": c.description, "feitcode_domains": c.feitcode_domains,
        })).collect()),
    );
    changes.insert(
        "feitcodes".into(),
        rows(reference.feitcodes.iter().map(|f| json!({
            "id": format!("{}@{}", f.code, f.valid_from), "code": f.code, "category": f.category,
            "domain": f.domain, "description": f.description, "track": f.track,
            "valid_from": f.valid_from.to_string(), "valid_until": f.valid_until.map(|d| d.to_string()),
        })).collect()),
    );
    changes.insert(
        "areas".into(),
        rows(reference.areas.areas().iter().map(|a| json!({
            "id": a.code, "kind": a.kind.as_str(), "name": a.name, "wijk_code": a.wijk_code,
        })).collect()),
    );
    use crate::auth::entities::app_user;
    let active = app_user::Entity::find().filter(app_user::Column::Active.eq(true));
    let users = match p.scoped(active, app_user::Column::TeamId) {
        Some(q) => q.all(txn).await?,
        None => vec![],
    };
    changes.insert(
        "team_members".into(),
        rows(users.iter().map(|u| json!({
            "id": u.id.to_string(), "username": u.username, "display_name": u.display_name, "role": u.role,
        })).collect()),
    );
    Ok(())
}

/// Whether the principal may resolve conflicts (team leads).
pub fn may_resolve(p: &Principal) -> bool {
    p.may(Action::ReviewViolation)
}
