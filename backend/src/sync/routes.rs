//! Sync over HTTP: pull, push, and the team lead's conflict list.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::http::header::CONTENT_TYPE;
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::engine::{self, PushBody, PushMeta, PushResponse};
use super::entities::sync_conflict;
use super::pull::{self, PullRequest, PullResponse};
use super::table::PushCtx;
use crate::access::Disclosure;
use crate::app::AppState;
use crate::audit::{self, Entry};
use crate::auth::{Principal, Role, Scope};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiJson, ApiPath, ApiQuery};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(pull))
        .routes(routes!(push))
        .routes(routes!(events))
        .routes(routes!(list_conflicts))
        .routes(routes!(resolve_conflict))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PullQuery {
    /// The `timestamp` of the previous pull's last page; 0 or absent for a full pull.
    pub last_pulled_at: Option<i64>,
    /// The previous page's `next_page`: continues a paged pull (every other parameter of its first
    /// page but `limit` is in the token).
    pub page_token: Option<String>,
    /// The app's schema version (recorded per device).
    pub schema_version: Option<i32>,
    /// WatermelonDB's migration sync (URL-encoded JSON); any value other than `null` gets a full pull.
    pub migration: Option<String>,
    /// Changes per page, 1–5000 (default 1000), counted over the tables pulled.
    pub limit: Option<u64>,
    /// Only these tables, comma-separated (e.g. `violations`): `limit` then counts their rows
    /// alone (RxDB pulls per collection). Window exits and the device's pull state are kept only
    /// by pulls of every table.
    pub tables: Option<String>,
    /// `true`: every live row in `updated` (WatermelonDB's `sendCreatedAsUpdated: true`).
    /// Default: rows the device has never had in `created`.
    pub send_created_as_updated: Option<bool>,
    /// `true` on a first pull (`last_pulled_at=0`): one streamed page in the shape of
    /// WatermelonDB's turbo login (every row in `created`, no `deleted`, no paging).
    pub turbo: Option<bool>,
}

/// Pull the changes since `last_pulled_at`, one snapshot per page, paged with `next_page`.
#[utoipa::path(
    get, path = "/api/v1/sync/pull", operation_id = "pullChanges", tag = "sync",
    params(PullQuery),
    responses(
        (status = 200, description = "Changes after the cursor, in the device's scope", body = PullResponse),
        (status = 410, description = "The cursor is older than the tombstone horizon: pull from 0 and replace local data", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad query parameter", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn pull(
    State(state): State<AppState>,
    p: Principal,
    ApiQuery(q): ApiQuery<PullQuery>,
) -> ApiResult<axum::response::Response> {
    use axum::response::IntoResponse;
    let limit = q.limit.unwrap_or(1000);
    if !(1..=5000).contains(&limit) {
        return Err(ApiError::field("limit", "1 to 5000"));
    }
    let migration = q
        .migration
        .as_deref()
        .is_some_and(|m| !m.is_empty() && m != "null");
    let tables = q.tables.as_deref().map(|t| {
        t.split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .collect()
    });
    let req = PullRequest {
        cursor: q.last_pulled_at.unwrap_or(0),
        page: q.page_token,
        limit,
        window_days: i64::from(state.config.sync_window_days),
        schema_version: q.schema_version,
        migration,
        tables,
        created_as_updated: q.send_created_as_updated.unwrap_or(false),
    };
    if q.turbo.unwrap_or(false) {
        let body = pull::pull_turbo(
            state.db.clone(),
            state.reference.clone(),
            state.audit.clone(),
            p,
            req,
        )
        .await?;
        return Ok(([(CONTENT_TYPE, "application/json")], body).into_response());
    }
    let res = pull::pull(&state.db, &state.reference, &state.audit, &p, req).await?;
    Ok(Json(res).into_response())
}

/// The change stream (Server-Sent Events): an event `changed` with `{"timestamp": N}` at once and
/// whenever the sync sequence moves on, so phones and the lead page pull when there is something
/// to pull instead of polling. The event says only that something changed: the pull decides what
/// this device may see. A comment line every 15 s keeps proxies from closing the connection; the
/// stream ends when the server shuts down (reconnect, as `EventSource` does by itself).
#[utoipa::path(
    get, path = "/api/v1/sync/events", operation_id = "streamSyncEvents", tag = "sync",
    responses(
        (status = 200, description = "An endless text/event-stream of `changed` events", content_type = "text/event-stream", body = crate::openapi::SyncEvent),
    )
)]
pub async fn events(
    State(state): State<AppState>,
    _p: Principal,
) -> ApiResult<axum::response::Response> {
    use axum::response::IntoResponse;
    Ok(state.changes.stream().await?.into_response())
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PushQuery {
    /// The `timestamp` of the pull this push follows. Merging uses each record's `server_rev`;
    /// this tells the server which revisions the phone will still receive.
    pub last_pulled_at: Option<i64>,
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// Push local changes. Never fails on a conflict: each field is merged three-way against the
/// record's `server_rev`, conflicts are recorded for the team lead, and records the rules refuse
/// come back in `experimentalRejectedIds`.
#[utoipa::path(
    post, path = "/api/v1/sync/push", operation_id = "pushChanges", tag = "sync",
    params(
        PushQuery,
        ("Idempotency-Key" = Option<String>, Header, description = "Replays the stored answer for a retried push (kept 30 days)"),
        ("X-Device-Time" = Option<i64>, Header, description = "The device clock, ms since 1970: recorded as evidence, never used for ordering"),
        ("X-App-Version" = Option<String>, Header, description = "App version, recorded per device"),
        ("X-Schema-Version" = Option<i32>, Header, description = "Local schema version, recorded per device"),
    ),
    request_body = PushBody,
    responses(
        (status = 200, description = "Applied; conflicts and refused records listed", body = PushResponse),
        (status = 400, description = "Malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Idempotency-Key reused with another body", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn push(
    State(state): State<AppState>,
    p: Principal,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<PushQuery>,
    body: Bytes,
) -> ApiResult<Json<PushResponse>> {
    let parsed = engine::read_push(&body)?;
    let meta = PushMeta {
        last_pulled_at: q.last_pulled_at,
        idempotency_key: header(&headers, "idempotency-key"),
        clock_offset_ms: super::clock_offset_ms(&headers, Utc::now()),
        app_version: header(&headers, "x-app-version"),
        schema_version: header(&headers, "x-schema-version").and_then(|v| v.parse().ok()),
        photo_max_bytes: state.config.photo_max_bytes,
    };
    Ok(Json(state.pushes.push(p, &body, parsed, meta).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ConflictQuery {
    /// open (default), resolved or all.
    pub status: Option<String>,
    /// At most this many, newest first (1–1000, default 200).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ConflictView {
    pub id: Uuid,
    pub table: String,
    pub record_id: String,
    pub field: Option<String>,
    pub kind: String,
    pub policy: String,
    /// Any JSON value (a field's value, or a whole record in wire form); null when absent.
    #[schema(required = true)]
    pub base_value: Option<Value>,
    /// Any JSON value (a field's value, or a whole record in wire form); null when absent.
    #[schema(required = true)]
    pub server_value: Option<Value>,
    /// Any JSON value (a field's value, or a whole record in wire form); null when absent.
    #[schema(required = true)]
    pub client_value: Option<Value>,
    /// Any JSON value (a field's value, or a whole record in wire form); null when absent.
    #[schema(required = true)]
    pub applied_value: Option<Value>,
    pub user_id: Option<Uuid>,
    pub device_id: Option<String>,
    pub detail: Option<String>,
    pub created_at: DateTime<Utc>,
    pub status: String,
    pub resolved_at: Option<DateTime<Utc>>,
    pub resolved_by: Option<Uuid>,
    pub resolution: Option<String>,
    /// The values are withheld from this reader (Wpg data they may not read; see VISIBILITY.md).
    pub redacted: bool,
}

/// A conflict as this reader may see it (`None`: its record is hidden from them), a full read
/// of Wpg values noted in `d`.
pub fn view(mut c: sync_conflict::Model, d: &mut Disclosure) -> Option<ConflictView> {
    let redacted = d.conflict(
        &c.table_name,
        c.team_id,
        &c.record_id,
        c.field.as_deref(),
        [
            &mut c.base_value,
            &mut c.server_value,
            &mut c.client_value,
            &mut c.applied_value,
        ],
    )?;
    Some(ConflictView {
        id: c.id,
        table: c.table_name,
        record_id: c.record_id,
        field: c.field,
        kind: c.kind,
        policy: c.policy,
        base_value: c.base_value,
        server_value: c.server_value,
        client_value: c.client_value,
        applied_value: c.applied_value,
        user_id: c.user_id,
        device_id: c.device_id,
        detail: c.detail,
        created_at: c.created_at,
        status: c.status,
        resolved_at: c.resolved_at,
        resolved_by: c.resolved_by,
        resolution: c.resolution,
        redacted,
    })
}

/// Sync conflicts: a team lead sees the team's, others their own.
#[utoipa::path(
    get, path = "/api/v1/conflicts", operation_id = "listConflicts", tag = "sync",
    params(ConflictQuery),
    responses(
        (status = 200, description = "Conflicts, newest first", body = Vec<ConflictView>),
        (status = 422, description = "Bad query parameter", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list_conflicts(
    State(state): State<AppState>,
    p: Principal,
    ApiQuery(q): ApiQuery<ConflictQuery>,
) -> ApiResult<Json<Vec<ConflictView>>> {
    let limit = q.limit.unwrap_or(200);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::field("limit", "1 to 1000"));
    }
    let mut query = sync_conflict::Entity::find();
    match q.status.as_deref().unwrap_or("open") {
        "open" => query = query.filter(sync_conflict::Column::Status.eq("open")),
        "resolved" => query = query.filter(sync_conflict::Column::Status.eq("resolved")),
        "all" => {}
        other => {
            return Err(ApiError::field(
                "status",
                format!("open, resolved or all, not {other:?}"),
            ));
        }
    }
    query = match (p.role, p.scope()) {
        (Role::Teamleider, Scope::Team(t)) => query.filter(sync_conflict::Column::TeamId.eq(t)),
        (Role::Beheerder, _) => query,
        _ => query.filter(sync_conflict::Column::UserId.eq(p.user_id)),
    };
    let rows = query
        .order_by_desc(sync_conflict::Column::CreatedAt)
        .limit(u64::from(limit))
        .all(&state.db.read)
        .await?;
    let mut d = Disclosure::new(&p, &state.audit);
    let out = rows.into_iter().filter_map(|c| view(c, &mut d)).collect();
    d.log("read_conflicts", Default::default()).await?;
    Ok(Json(out))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Resolution {
    /// The applied value stands.
    KeepApplied,
    /// Take the value that lost (the server's if the phone's was applied, and vice versa).
    TakeOther,
    /// Set `value`.
    Custom,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ResolveRequest {
    pub resolution: Resolution,
    /// The value for `custom`, in wire form (as a phone would push it).
    pub value: Option<Value>,
    /// Why, for the audit log.
    pub note: Option<String>,
}

/// Resolve a conflict (team lead). Taking another value is an ordinary server edit through the
/// record's write path, so it syncs to every phone.
#[utoipa::path(
    post, path = "/api/v1/conflicts/{id}/resolve", operation_id = "resolveConflict", tag = "sync",
    params(("id" = Uuid, Path, description = "The conflict")),
    request_body = ResolveRequest,
    responses(
        (status = 200, description = "Resolved", body = ConflictView),
        (status = 403, description = "Not a team lead of this team", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such conflict", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already resolved", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The value is refused by the record's rules", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn resolve_conflict(
    State(state): State<AppState>,
    p: Principal,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<ResolveRequest>,
) -> ApiResult<Json<ConflictView>> {
    resolve(&state, p, id, req).await.map(Json)
}

/// Resolves a conflict (the API and the team lead's page).
pub async fn resolve(
    state: &AppState,
    p: Principal,
    id: Uuid,
    req: ResolveRequest,
) -> ApiResult<ConflictView> {
    if !engine::may_resolve(&p) {
        return Err(ApiError::Forbidden(
            "only a teamleider resolves sync conflicts".into(),
        ));
    }
    let now = Utc::now();
    let txn = super::begin_write(&state.db).await?;
    let mut d = Disclosure::new(&p, &state.audit);
    let c = sync_conflict::Entity::find_by_id(id)
        .one(&txn)
        .await?
        .filter(|c| crate::access::sees_conflict(&p, &c.table_name, c.team_id))
        .ok_or_else(|| ApiError::NotFound(format!("conflict {id}")))?;
    if c.status != "open" {
        return Err(ApiError::Conflict {
            detail: format!("conflict {id} is already resolved"),
            existing: None,
        });
    }
    let value = match (&req.resolution, &c.field) {
        (Resolution::KeepApplied, _) => None,
        (_, None) => {
            return Err(ApiError::field(
                "resolution",
                "this conflict concerns a whole record: only keep_applied",
            ));
        }
        (Resolution::TakeOther, Some(_)) => {
            let applied = c.applied_value.clone().unwrap_or(Value::Null);
            let other = if Some(&applied) == c.client_value.as_ref() {
                c.server_value.clone()
            } else {
                c.client_value.clone()
            };
            Some(other.unwrap_or(Value::Null))
        }
        (Resolution::Custom, Some(_)) => Some(
            req.value
                .clone()
                .ok_or_else(|| ApiError::field("value", "required for custom"))?,
        ),
    };
    if let (Some(v), Some(field)) = (value.clone(), c.field.clone()) {
        let tables = engine::tables();
        let table = tables
            .iter()
            .find(|t| t.name() == c.table_name)
            .ok_or_else(|| {
                ApiError::internal(anyhow::anyhow!(
                    "conflict on unknown table {}",
                    c.table_name
                ))
            })?;
        let col = table
            .columns()
            .iter()
            .find(|col| col.name == field)
            .ok_or_else(|| {
                ApiError::internal(anyhow::anyhow!("conflict on unknown column {field}"))
            })?;
        let canonical =
            super::table::canonical(col.kind, &v).map_err(|e| ApiError::field("value", e))?;
        let mut changes = Map::new();
        changes.insert(field, canonical);
        let ctx = PushCtx {
            principal: &p,
            reference: &state.reference,
            now,
            clock_offset_ms: None,
            last_pulled_at: None,
            photo_max_bytes: state.config.photo_max_bytes,
        };
        table.update(&txn, &ctx, &c.record_id, &changes).await?;
    }
    audit::record(
        &txn,
        &p.actor(),
        Entry::new("resolve_conflict", "sync_conflict", id)
            .reason(req.note.clone())
            // Which field, not its value: the audit log is append-only and hash-chained, so it
            // holds no record values that retention would have to destroy (the value is on the
            // conflict row, which goes with its record).
            .detail(json!({ "record": c.record_id, "field": c.field, "set": value.is_some() })),
        now,
    )
    .await?;
    let mut am: sync_conflict::ActiveModel = c.into();
    am.status = Set("resolved".into());
    am.resolved_at = Set(Some(now));
    am.resolved_by = Set(Some(p.user_id));
    am.resolution = Set(Some(
        match req.resolution {
            Resolution::KeepApplied => "keep_applied",
            Resolution::TakeOther => "take_other",
            Resolution::Custom => "custom",
        }
        .into(),
    ));
    am.resolved_value = Set(value);
    let m = am.update(&txn).await?;
    txn.commit().await?;
    let v = view(m, &mut d).ok_or_else(|| ApiError::NotFound(format!("conflict {id}")))?;
    d.log("read_conflicts", Default::default()).await?;
    Ok(v)
}
