//! HTTP routes of the violations feature; thin: parse, call the store, log Wpg reads, render.

use std::sync::Arc;

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::IntoParams;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::cache::CachedPage;
use super::duplicates;
use super::entity::violation;
use super::store::{self, Created, Filter};
use super::{Category, NewViolation, Status, ViolationPage, ViolationPatch, ViolationView};
use crate::access::{Disclosure, Kind};
use crate::app::AppState;
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiJson, ApiPath, ApiQuery};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_violations, create_violation))
        .routes(routes!(get_violation, patch_violation))
        .routes(routes!(list_duplicates, mark_duplicate))
        .routes(routes!(unmark_duplicate))
}

/// The duplicate candidates of a report.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Duplicates {
    /// Reports of the same category within the category's radius (parkeren 30 m, others 50 m)
    /// and 12 hours, nearest first; `marked` when the reviewer linked them.
    pub candidates: Vec<duplicates::Candidate>,
}

/// Marks a report as a duplicate of this one.
#[derive(Debug, Deserialize, ToSchema)]
pub struct MarkDuplicate {
    /// The other report.
    pub of: Uuid,
}

/// Reports that may describe the same thing as this one, for the reviewer.
#[utoipa::path(
    get, path = "/api/v1/violations/{id}/duplicates", operation_id = "listDuplicates", tag = "violations",
    params(("id" = Uuid, Path, description = "The report's id")),
    responses(
        (status = 200, description = "The candidates", body = Duplicates),
        (status = 404, description = "No such report in your scope", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list_duplicates(
    State(state): State<AppState>,
    p: Principal,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<Duplicates>> {
    let m = store::get(&state.db, &p, id).await?;
    Ok(Json(Duplicates {
        candidates: duplicates::find(&state.db.read, &p, &m).await?,
    }))
}

/// Link two reports as duplicates of each other (team lead).
#[utoipa::path(
    post, path = "/api/v1/violations/{id}/duplicates", operation_id = "markDuplicate", tag = "violations",
    params(("id" = Uuid, Path, description = "The report's id")),
    request_body = MarkDuplicate,
    responses(
        (status = 204, description = "Linked, both ways"),
        (status = 403, description = "Only a teamleider decides", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such report in your scope", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`of` is unknown, itself, or of another category", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn mark_duplicate(
    State(state): State<AppState>,
    p: Principal,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<MarkDuplicate>,
) -> ApiResult<StatusCode> {
    let txn = crate::sync::begin_write(&state.db).await?;
    duplicates::set(&txn, &p, id, body.of, true, Utc::now()).await?;
    txn.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Undo a duplicate link (team lead).
#[utoipa::path(
    delete, path = "/api/v1/violations/{id}/duplicates/{other}", operation_id = "unmarkDuplicate", tag = "violations",
    params(
        ("id" = Uuid, Path, description = "The report's id"),
        ("other" = Uuid, Path, description = "The other report"),
    ),
    responses(
        (status = 204, description = "Unlinked, both ways"),
        (status = 403, description = "Only a teamleider decides", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such report in your scope", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`other` is the report itself", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn unmark_duplicate(
    State(state): State<AppState>,
    p: Principal,
    ApiPath((id, other)): ApiPath<(Uuid, Uuid)>,
) -> ApiResult<StatusCode> {
    let txn = crate::sync::begin_write(&state.db).await?;
    duplicates::set(&txn, &p, id, other, false, Utc::now()).await?;
    txn.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Adds the flags a report's photos raise (see `photos::store::report_flags`).
fn add_photo_flags(
    v: &mut ViolationView,
    flags: &mut std::collections::HashMap<Uuid, Vec<String>>,
) {
    if let Some(f) = flags.remove(&v.id) {
        v.flags.extend(f);
    }
}

/// Log a violation report. The id is generated on the phone: posting the same id and content
/// again returns the existing report (200), never a duplicate; the same id with other content is
/// a 409 naming the id. An id taken by a report you may not see (another team's) gets that same
/// 409, word for word, and nothing of that report.
#[utoipa::path(
    post, path = "/api/v1/violations", operation_id = "createViolation", tag = "violations",
    request_body = NewViolation,
    responses(
        (status = 201, description = "Created", body = ViolationView),
        (status = 200, description = "A retry: this report exists with this content", body = ViolationView),
        (status = 403, description = "This role does not log reports", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The id is taken: by a report with other content, or one you may not see", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field is missing or invalid; `errors` names it", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create_violation(
    State(state): State<AppState>,
    p: Principal,
    headers: HeaderMap,
    ApiJson(body): ApiJson<NewViolation>,
) -> ApiResult<(StatusCode, Json<ViolationView>)> {
    let now = Utc::now();
    let meta = store::WriteMeta {
        clock_offset_ms: crate::sync::clock_offset_ms(&headers, now),
    };
    let (status, m) = match state
        .violation_creates
        .create(p.clone(), body, meta, now)
        .await?
    {
        Created::New(m) => (StatusCode::CREATED, m),
        Created::Existing(m) => (StatusCode::OK, m),
    };
    // A new report echoes what the phone sent; a replay of a known id returns the stored report,
    // which is a read.
    let mut d = Disclosure::new(&p, &state.audit);
    let v = store::view(&m, &state.reference, &mut d);
    if status == StatusCode::CREATED {
        d.echoed();
    } else {
        d.log("read", Default::default()).await?;
    }
    Ok((status, Json(v)))
}

/// One report as this reader may see it, its Wpg read logged.
async fn one_view(
    state: &AppState,
    p: &Principal,
    m: &violation::Model,
) -> ApiResult<ViolationView> {
    let mut d = Disclosure::new(p, &state.audit);
    let v = store::view(m, &state.reference, &mut d);
    d.log("read", Default::default()).await?;
    Ok(v)
}

/// One report.
#[utoipa::path(
    get, path = "/api/v1/violations/{id}", operation_id = "getViolation", tag = "violations",
    params(("id" = Uuid, Path, description = "The report's id")),
    responses(
        (status = 200, description = "The report", body = ViolationView),
        (status = 404, description = "No such report in your scope", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_violation(
    State(state): State<AppState>,
    p: Principal,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<ViolationView>> {
    let m = store::get(&state.db, &p, id).await?;
    let mut photo_flags =
        crate::photos::store::report_flags(&state.db.read, std::slice::from_ref(&m)).await?;
    let mut v = one_view(&state, &p, &m).await?;
    add_photo_flags(&mut v, &mut photo_flags);
    Ok(Json(v))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// A day (YYYY-MM-DD) in Europe/Amsterdam.
    pub date: Option<NaiveDate>,
    pub category: Option<Category>,
    /// A wijk code, e.g. WK045301.
    pub wijk: Option<String>,
    /// A user id: reports this officer is on.
    pub officer: Option<Uuid>,
    pub status: Option<Status>,
    /// Page size, 1–500 (default 50).
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Reports in your team's scope, newest first, paged.
#[utoipa::path(
    get, path = "/api/v1/violations", operation_id = "listViolations", tag = "violations",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of reports", body = ViolationPage),
        (status = 422, description = "A query parameter is invalid", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list_violations(
    State(state): State<AppState>,
    p: Principal,
    ApiQuery(q): ApiQuery<ListQuery>,
    RawQuery(raw_query): RawQuery,
) -> ApiResult<Response> {
    let limit = q.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::field("limit", "1 to 500"));
    }
    if let Some(w) = &q.wijk
        && state
            .reference
            .areas
            .get(w)
            .is_none_or(|a| a.kind != crate::geo::AreaKind::Wijk)
    {
        return Err(ApiError::field("wijk", format!("unknown wijk code {w:?}")));
    }
    let cursor = match &q.cursor {
        Some(c) => Some(
            store::decode_cursor(c)
                .ok_or_else(|| ApiError::field("cursor", "not a cursor this server gave out"))?,
        ),
        None => None,
    };
    let key = format!(
        "{}|{}",
        crate::access::reader_class(&p),
        raw_query.as_deref().unwrap_or("")
    );
    let mut d = Disclosure::new(&p, &state.audit);
    let page = match state.violation_pages.get(p.seen_seq, &key) {
        Some(hit) => {
            d.again(Kind::Violation, &hit.wpg_ids);
            hit
        }
        None => {
            let filter = Filter {
                date: q.date,
                category: q.category,
                wijk: q.wijk.clone(),
                officer: q.officer,
                status: q.status,
                limit: u64::from(limit),
                cursor,
                ..Default::default()
            };
            let (rows, more) = store::list(&state.db, &p, &filter).await?;
            let mut photo_flags = crate::photos::store::report_flags(&state.db.read, &rows).await?;
            let items: Vec<ViolationView> = rows
                .iter()
                .map(|m| {
                    let mut v = store::view(m, &state.reference, &mut d);
                    add_photo_flags(&mut v, &mut photo_flags);
                    v
                })
                .collect();
            let next_cursor = if more {
                rows.last().map(store::encode_cursor)
            } else {
                None
            };
            let page = Arc::new(CachedPage {
                wpg_ids: d.released_ids(Kind::Violation),
                body: serde_json::to_vec(&ViolationPage { items, next_cursor })
                    .map_err(ApiError::internal)?
                    .into(),
            });
            state.violation_pages.put(p.seen_seq, key, page.clone());
            page
        }
    };
    let mut detail = serde_json::Map::new();
    detail.insert(
        "query".into(),
        json!({
            "date": q.date, "category": q.category, "wijk": q.wijk, "officer": q.officer, "status": q.status,
        }),
    );
    d.log("list", detail).await?;
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        page.body.clone(),
    )
        .into_response())
}

/// Change a report: its fields (officers on it, or the teamleider), its status (concept →
/// submitted by the officer; submitted → approved | rejected by the teamleider only, with a
/// `review_note` when rejecting). Time and place are immutable. Four-eyes (on unless the server
/// runs with `THOR_FOUR_EYES=false`): a teamleider does not approve or reject a report they
/// created or are named on (403 saying so).
#[utoipa::path(
    patch, path = "/api/v1/violations/{id}", operation_id = "patchViolation", tag = "violations",
    params(("id" = Uuid, Path, description = "The report's id")),
    request_body = ViolationPatch,
    responses(
        (status = 200, description = "The report as it is now", body = ViolationView),
        (status = 403, description = "Not allowed for this role or user (e.g. a handhaver approving, or a teamleider reviewing their own report)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such report in your scope", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The report was reviewed and is final", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field is invalid or immutable", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn patch_violation(
    State(state): State<AppState>,
    p: Principal,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(patch): ApiJson<ViolationPatch>,
) -> ApiResult<Json<ViolationView>> {
    let m = store::update(&state.db, &state.reference, &p, id, patch, Utc::now()).await?;
    Ok(Json(one_view(&state, &p, &m).await?))
}
