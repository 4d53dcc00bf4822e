//! REST for the office, one set of thin handlers per field-record kind, all through the one
//! generic store. Times are RFC 3339 here (ms since 1970 on sync); the fields of each kind are
//! its columns in `mobile-api-spec/SYNC.md`.

use axum::Json;
use axum::http::StatusCode;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;
use serde_json::{Map, Value};
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use uuid::Uuid;

use super::RecordKind;
use super::store::{self, Created};
use crate::access::Disclosure;
use crate::app::AppState;
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// A day (YYYY-MM-DD, Europe/Amsterdam); or use `from`/`to`.
    pub date: Option<NaiveDate>,
    /// From this time (RFC 3339), inclusive.
    pub from: Option<DateTime<Utc>>,
    /// Until this time (RFC 3339), exclusive.
    pub to: Option<DateTime<Utc>>,
    /// Only records under this parent (the round of a segment, the group of an observation or
    /// person).
    pub parent: Option<Uuid>,
    /// At most this many (1–5000, default 500).
    #[param(minimum = 1, maximum = 5000)]
    pub limit: Option<u32>,
}

/// The REST views of records, the Wpg reads among them logged before they leave the server.
async fn views(
    state: &AppState,
    kind: &dyn RecordKind,
    p: &Principal,
    rows: &[store::Row],
) -> ApiResult<Vec<Value>> {
    let mut d = Disclosure::new(p, &state.audit);
    let out = rows.iter().map(|r| store::view(kind, &mut d, r)).collect();
    d.log("read", Default::default()).await?;
    Ok(out)
}

async fn one(
    state: &AppState,
    kind: &dyn RecordKind,
    p: &Principal,
    r: &store::Row,
) -> ApiResult<Json<Value>> {
    let mut v = views(state, kind, p, std::slice::from_ref(r)).await?;
    Ok(Json(v.pop().unwrap_or(Value::Null)))
}

pub async fn list(
    state: &AppState,
    kind: &'static dyn RecordKind,
    p: &Principal,
    q: ListQuery,
) -> ApiResult<Json<Vec<Value>>> {
    let limit = q.limit.unwrap_or(500);
    if !(1..=5000).contains(&limit) {
        return Err(ApiError::field("limit", "1 to 5000"));
    }
    let (from, to) = match q.date {
        Some(d) => {
            let (a, b) = crate::violations::store::amsterdam_day(d);
            (Some(a), Some(b))
        }
        None => (q.from, q.to),
    };
    let rows = store::list(
        &state.db.read,
        kind,
        p,
        from,
        to,
        q.parent,
        u64::from(limit),
    )
    .await?;
    Ok(Json(views(state, kind, p, &rows).await?))
}

fn body_object(body: Value) -> ApiResult<Map<String, Value>> {
    match body {
        Value::Object(m) => Ok(m),
        _ => Err(ApiError::BadRequest {
            detail: "the body is a JSON object".into(),
            errors: vec![],
        }),
    }
}

pub async fn create(
    state: &AppState,
    kind: &'static dyn RecordKind,
    p: &Principal,
    body: Value,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let input = store::from_rest(kind, body_object(body)?)?;
    let id: Uuid = input
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::field("id", "required: a UUID made by the client"))?
        .parse()
        .map_err(|_| ApiError::field("id", "a UUID"))?;
    let txn = crate::sync::begin_write(&state.db).await?;
    let created = store::create_in(&txn, kind, p, id, &input, Utc::now()).await?;
    txn.commit().await?;
    Ok(match created {
        Created::New(r) => {
            // The answer echoes what the caller sent: not a read.
            let mut d = Disclosure::new(p, &state.audit);
            let v = store::view(kind, &mut d, &r);
            d.echoed();
            (StatusCode::CREATED, Json(v))
        }
        Created::Existing(r) => (StatusCode::OK, one(state, kind, p, &r).await?),
    })
}

pub async fn get(
    state: &AppState,
    kind: &'static dyn RecordKind,
    p: &Principal,
    id: Uuid,
) -> ApiResult<Json<Value>> {
    let r = store::get(&state.db.read, kind, p, id).await?;
    one(state, kind, p, &r).await
}

pub async fn patch(
    state: &AppState,
    kind: &'static dyn RecordKind,
    p: &Principal,
    id: Uuid,
    body: Value,
) -> ApiResult<Json<Value>> {
    let input = store::from_rest(kind, body_object(body)?)?;
    let txn = crate::sync::begin_write(&state.db).await?;
    let r = store::update_in(&txn, kind, p, id, &input, Utc::now()).await?;
    txn.commit().await?;
    one(state, kind, p, &r).await
}

pub async fn delete(
    state: &AppState,
    kind: &'static dyn RecordKind,
    p: &Principal,
    id: Uuid,
) -> ApiResult<StatusCode> {
    let txn = crate::sync::begin_write(&state.db).await?;
    let done = store::delete_in(&txn, kind, p, id, Utc::now()).await?;
    txn.commit().await?;
    if done {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!("{} {id}", kind.wire_name())))
    }
}

/// The five REST operations of one kind, documented in the OpenAPI spec.
macro_rules! kind_routes {
    ($modname:ident, $kind:expr, $tag:literal, $coll:literal, $item:literal, $one:literal, $many:literal, $what:literal) => {
        pub mod $modname {
            use axum::Json;
            use axum::extract::State;
            use axum::http::StatusCode;
            use serde_json::Value;
            use utoipa_axum::router::OpenApiRouter;
            use utoipa_axum::routes;
            use uuid::Uuid;

            use super::ListQuery;
            use crate::app::AppState;
            use crate::auth::Principal;
            use crate::error::{ApiResult, Problem};
            use crate::extract::{ApiJson, ApiPath, ApiQuery};

            pub fn router() -> OpenApiRouter<AppState> {
                OpenApiRouter::new()
                    .routes(routes!(list, create))
                    .routes(routes!(get, patch, delete))
            }

            #[doc = concat!("List ", $what, " in your scope, oldest first.")]
            #[utoipa::path(get, path = $coll, operation_id = concat!("list", $many), tag = $tag, params(ListQuery),
                responses(
                    (status = 200, description = "The records (fields: see SYNC.md)", body = Vec<Object>),
                    (status = 403, description = "This role may not read them", body = Problem, content_type = "application/problem+json"),
                    (status = 422, description = "A query parameter is invalid", body = Problem, content_type = "application/problem+json"),
                ))]
            pub async fn list(State(s): State<AppState>, p: Principal, ApiQuery(q): ApiQuery<ListQuery>) -> ApiResult<Json<Vec<Value>>> {
                super::list(&s, &$kind, &p, q).await
            }

            #[doc = concat!("Record ", $what, ". The id is made by the client; the same id and content again is a retry (200).")]
            #[utoipa::path(post, path = $coll, operation_id = concat!("create", $one), tag = $tag,
                request_body(content = Object, description = "`id` and the record's fields (SYNC.md); times RFC 3339"),
                responses(
                    (status = 201, description = "Created", body = Object),
                    (status = 200, description = "A retry: this record exists with this content", body = Object),
                    (status = 403, description = "This role may not record it", body = Problem, content_type = "application/problem+json"),
                    (status = 409, description = "The id exists with other content", body = Problem, content_type = "application/problem+json"),
                    (status = 422, description = "A field is missing or invalid; `errors` names it", body = Problem, content_type = "application/problem+json"),
                ))]
            pub async fn create(State(s): State<AppState>, p: Principal, ApiJson(body): ApiJson<Value>) -> ApiResult<(StatusCode, Json<Value>)> {
                super::create(&s, &$kind, &p, body).await
            }

            #[doc = concat!("One of ", $what, ".")]
            #[utoipa::path(get, path = $item, operation_id = concat!("get", $one), tag = $tag,
                params(("id" = Uuid, Path, description = "The record's id")),
                responses(
                    (status = 200, description = "The record", body = Object),
                    (status = 403, description = "This role may not read it", body = Problem, content_type = "application/problem+json"),
                    (status = 404, description = "No such record in your scope", body = Problem, content_type = "application/problem+json"),
                ))]
            pub async fn get(State(s): State<AppState>, p: Principal, ApiPath(id): ApiPath<Uuid>) -> ApiResult<Json<Value>> {
                super::get(&s, &$kind, &p, id).await
            }

            #[doc = concat!("Change one of ", $what, ": the given fields; the whole result is checked.")]
            #[utoipa::path(patch, path = $item, operation_id = concat!("patch", $one), tag = $tag,
                params(("id" = Uuid, Path, description = "The record's id")),
                request_body(content = Object, description = "The fields to change"),
                responses(
                    (status = 200, description = "The record as it is now", body = Object),
                    (status = 403, description = "Not allowed", body = Problem, content_type = "application/problem+json"),
                    (status = 404, description = "No such record in your scope", body = Problem, content_type = "application/problem+json"),
                    (status = 422, description = "A field is invalid or immutable", body = Problem, content_type = "application/problem+json"),
                ))]
            pub async fn patch(State(s): State<AppState>, p: Principal, ApiPath(id): ApiPath<Uuid>, ApiJson(body): ApiJson<Value>) -> ApiResult<Json<Value>> {
                super::patch(&s, &$kind, &p, id, body).await
            }

            #[doc = concat!("Delete one of ", $what, " (a tombstone that reaches every phone).")]
            #[utoipa::path(delete, path = $item, operation_id = concat!("delete", $one), tag = $tag,
                params(("id" = Uuid, Path, description = "The record's id")),
                responses(
                    (status = 204, description = "Deleted"),
                    (status = 403, description = "Not allowed", body = Problem, content_type = "application/problem+json"),
                    (status = 404, description = "No such record in your scope", body = Problem, content_type = "application/problem+json"),
                ))]
            pub async fn delete(State(s): State<AppState>, p: Principal, ApiPath(id): ApiPath<Uuid>) -> ApiResult<StatusCode> {
                super::delete(&s, &$kind, &p, id).await
            }
        }
    };
}

kind_routes!(
    rounds,
    crate::records::kinds::ROUNDS,
    "rounds",
    "/api/v1/rounds",
    "/api/v1/rounds/{id}",
    "Round",
    "Rounds",
    "patrol rounds"
);
kind_routes!(
    segments,
    crate::records::kinds::SEGMENTS,
    "rounds",
    "/api/v1/track-segments",
    "/api/v1/track-segments/{id}",
    "TrackSegment",
    "TrackSegments",
    "GPS track segments of rounds"
);
kind_routes!(
    groups,
    crate::records::kinds::GROUPS,
    "youth",
    "/api/v1/youth/groups",
    "/api/v1/youth/groups/{id}",
    "YouthGroup",
    "YouthGroups",
    "youth groups (jeugdboa's and Wpg-authorised leads)"
);
kind_routes!(
    observations,
    crate::records::kinds::OBSERVATIONS,
    "youth",
    "/api/v1/youth/observations",
    "/api/v1/youth/observations/{id}",
    "YouthObservation",
    "YouthObservations",
    "youth-group observations"
);
kind_routes!(
    persons,
    crate::records::kinds::PERSONS,
    "youth",
    "/api/v1/youth/persons",
    "/api/v1/youth/persons/{id}",
    "YouthPerson",
    "YouthPersons",
    "members of youth groups by name (Wpg: every read is logged)"
);
kind_routes!(
    incidents,
    crate::records::kinds::INCIDENTS,
    "incidents",
    "/api/v1/incidents",
    "/api/v1/incidents/{id}",
    "Incident",
    "Incidents",
    "incidents (aggression, use of force, police assistance)"
);

kind_routes!(
    notes,
    crate::records::kinds::NOTES,
    "briefing",
    "/api/v1/briefing/notes",
    "/api/v1/briefing/notes/{id}",
    "BriefingNote",
    "BriefingNotes",
    "the team lead's attention points for the briefing"
);

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(rounds::router())
        .merge(segments::router())
        .merge(groups::router())
        .merge(observations::router())
        .merge(persons::router())
        .merge(incidents::router())
        .merge(notes::router())
}
