//! The sync engine: WatermelonDB-compatible pull and push over any registered `SyncTable`.

use std::collections::{BTreeMap, HashSet};

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, Set, TransactionTrait,
};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use uuid::Uuid;

use super::entities::{sync_conflict, sync_device, sync_push};
use super::merge::merge_field;
use super::table::{PushCtx, SyncTable, Writable, canonical, wire};
use crate::auth::{Action, Principal};
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
    /// The server's state of each pushed record whose writable fields the merge did not take as
    /// sent (a policy kept the server's value, or another device's edit was merged in), per
    /// table, in pull form: what a conflict handler (RxDB) shows as the master state. The next
    /// pull brings the same.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub merged: BTreeMap<String, Vec<Box<RawValue>>>,
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
    /// The phone's copy of this record differs from the server's after the merge.
    differs: bool,
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
    // A `base_rev` of null means the phone never pulled the record back: it created it. Its base
    // is then its own last write (the create, or a push whose answer it lost), so that only
    // writes by others since count as concurrent.
    let pinned = match raw.get("base_rev") {
        Some(b) => b.as_i64(),
        None => raw.get("server_rev").and_then(Value::as_i64),
    };
    let base_rev = match pinned {
        Some(r) => Some(r),
        None if cur.creation.by(&p.device_id, p.user_id) => {
            own_last_write(txn, table.name(), id, &p.device_id)
                .await?
                .max(cur.creation.seq)
        }
        None => None,
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
    pending.differs = phone_differs;
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

/// A deletion of a record that another device edited after the deleting phone's last pull: the
/// phone deletes what it never saw. The deletion stands (as when the edit arrives after the
/// deletion), and the lost edit is kept as an `edit_on_deleted` conflict for the team lead, so
/// the outcome is the same whichever order the two pushes arrive in.
async fn unseen_edit(
    txn: &DatabaseTransaction,
    ctx: &PushCtx<'_>,
    table: &dyn SyncTable,
    id: &str,
    cur: super::table::Current,
    pending: &mut Pending,
) -> ApiResult<()> {
    let Some(pulled) = ctx.last_pulled_at else {
        return Ok(());
    };
    if cur.deleted || cur.server_rev <= pulled {
        return Ok(());
    }
    let others = changed_by_others(txn, table.name(), id, pulled, &ctx.principal.device_id).await?;
    if others.is_empty() {
        return Ok(());
    }
    let mut fields: Vec<&String> = others.iter().collect();
    fields.sort();
    pending.conflicts.push(conflict_row(
        ctx,
        table.name(),
        id,
        None,
        "edit_on_deleted",
        "tombstone_kept",
        [None, Some(Value::Object(cur.raw)), None, None],
        Some(pulled),
        Some(cur.server_rev),
        cur.team_id,
        Some(format!(
            "deleted by a device that had not pulled the edit of {} by another device; the deletion stands",
            fields
                .iter()
                .map(|f| f.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    ));
    Ok(())
}

/// The newest revision of a record that `device` wrote after creating it (updates are in the
/// change log; the create is kept on the record).
async fn own_last_write(
    txn: &DatabaseTransaction,
    table: &str,
    id: &str,
    device: &str,
) -> ApiResult<Option<i64>> {
    use sea_orm::sea_query::{Expr, ExprTrait, Query};
    let stmt = Query::select()
        .expr_as(Expr::col("seq").max(), "last")
        .from("sync_change")
        .and_where(Expr::col("table_name").eq(table))
        .and_where(Expr::col("record_id").eq(id))
        .and_where(Expr::col("device_id").eq(device))
        .to_owned();
    Ok(match txn.query_one(&stmt).await? {
        Some(row) => row.try_get("", "last")?,
        None => None,
    })
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
        merged: BTreeMap::new(),
    };
    let mut pending = Pending {
        conflicts: vec![],
        differs: false,
    };
    for (name, changes) in &body.changes {
        if !tables.iter().any(|t| t.name() == name)
            && (!changes.created.is_empty()
                || !changes.updated.is_empty()
                || !changes.deleted.is_empty())
        {
            response.ignored_tables.push(name.clone());
        }
    }
    if !response.ignored_tables.is_empty() {
        // One line per push, with the names escaped and cut: table names come from the phone.
        let sample: Vec<String> = response
            .ignored_tables
            .iter()
            .take(5)
            .map(|n| format!("{:?}", n.chars().take(40).collect::<String>()))
            .collect();
        tracing::warn!(
            count = response.ignored_tables.len(),
            tables = %sample.join(", "),
            "push for tables the server does not sync; ignored"
        );
    }
    // Tables in their declared order, parents first: a photo pushed with its report finds it.
    for table in &tables {
        let name = table.name();
        let Some(changes) = body.changes.get(name) else {
            continue;
        };
        let mut seen = HashSet::new();
        let mut differs: Vec<String> = Vec::new();
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
            let mut local = Pending {
                conflicts: vec![],
                differs: false,
            };
            let conn: &DatabaseTransaction = sp.as_ref().unwrap_or(txn);
            match push_record(conn, table.as_ref(), &ctx, &id, raw, current, &mut local).await {
                Ok(outcome) => {
                    if let Some(sp) = sp {
                        sp.commit().await?;
                    }
                    if local.differs {
                        differs.push(id.clone());
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
        let doomed: Vec<String> = changes
            .deleted
            .iter()
            .filter(|id| !seen.contains(*id))
            .cloned()
            .collect();
        let mut doomed_now = table.load_many(txn, p, &doomed).await?;
        for id in &doomed {
            if let Some(cur) = doomed_now.remove(id) {
                unseen_edit(txn, &ctx, table.as_ref(), id, cur, &mut pending).await?;
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
        if !differs.is_empty() {
            let hidden = table.hidden_columns(p);
            let now_state = table.load_many(txn, p, &differs).await?;
            let rows = differs
                .iter()
                .filter_map(|id| now_state.get(id))
                .filter(|c| !c.deleted)
                .map(|c| {
                    to_raw(&wire_form(
                        table.as_ref(),
                        hidden,
                        c.raw.clone(),
                        c.server_rev,
                    ))
                })
                .collect::<ApiResult<Vec<_>>>()?;
            response.merged.insert(name.to_string(), rows);
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

pub(crate) async fn upsert_device<C: ConnectionTrait>(
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

/// Whether the principal may resolve conflicts (team leads).
pub fn may_resolve(p: &Principal) -> bool {
    p.may(Action::ReviewViolation)
}

fn to_raw<T: Serialize>(v: &T) -> ApiResult<Box<RawValue>> {
    serde_json::value::to_raw_value(v).map_err(ApiError::internal)
}
