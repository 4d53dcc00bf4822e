//! Legal holds and the archive read: a record past its active stage, one at a time, for a
//! stated purpose.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::hold::{self, HoldView, LiftHold, PlaceHold};
use crate::access::{self, Kind, Sight, Stage};
use crate::app::AppState;
use crate::audit::Entry;
use crate::auth::{Action, Principal};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiJson, ApiPath, ApiQuery};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_holds, place_hold))
        .routes(routes!(lift_hold))
        .routes(routes!(archive_read))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct HoldQuery {
    /// Lifted holds too (default: open ones only).
    pub all: Option<bool>,
}

/// The legal holds of the caller's team (every team for the beheerder), newest first.
#[utoipa::path(
    get, path = "/api/v1/holds", operation_id = "listHolds", tag = "retention",
    params(HoldQuery),
    responses(
        (status = 200, description = "The holds", body = Vec<HoldView>),
        (status = 403, description = "Not a teamleider or beheerder", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list_holds(
    State(state): State<AppState>,
    p: Principal,
    ApiQuery(q): ApiQuery<HoldQuery>,
) -> ApiResult<Json<Vec<HoldView>>> {
    p.authorize(Action::PlaceHold)?;
    Ok(Json(
        hold::list(&state.db.read, &p, q.all.unwrap_or(false)).await?,
    ))
}

/// Places a legal hold on a record (objection, appeal, criminal case): retention leaves it at
/// its stage until the hold is lifted. Audit-logged with its reason.
#[utoipa::path(
    post, path = "/api/v1/holds", operation_id = "placeHold", tag = "retention",
    request_body = PlaceHold,
    responses(
        (status = 201, description = "The hold", body = HoldView),
        (status = 403, description = "Not a teamleider or beheerder", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A bad request, or no such record in the caller's team", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn place_hold(
    State(state): State<AppState>,
    p: Principal,
    ApiJson(req): ApiJson<PlaceHold>,
) -> ApiResult<(StatusCode, Json<HoldView>)> {
    Ok((
        StatusCode::CREATED,
        Json(hold::place(&state.db, &p, &req).await?),
    ))
}

/// Lifts a legal hold, with a reason; the record's stage follows its date again at the next
/// retention run.
#[utoipa::path(
    post, path = "/api/v1/holds/{id}/lift", operation_id = "liftHold", tag = "retention",
    params(("id" = Uuid, Path, description = "The hold")),
    request_body = LiftHold,
    responses(
        (status = 200, description = "The lifted hold", body = HoldView),
        (status = 403, description = "Not a teamleider or beheerder", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such hold in the caller's team", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Lifted already", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A bad request", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn lift_hold(
    State(state): State<AppState>,
    p: Principal,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<LiftHold>,
) -> ApiResult<Json<HoldView>> {
    Ok(Json(hold::lift(&state.db, &p, id, &req).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ArchiveQuery {
    /// The purpose of this read (doel), e.g. a complaint's or a case's number and subject: at
    /// least 10 characters. It is written to the audit log with the read.
    pub doel: String,
}

/// A record read from the archive.
#[derive(Debug, Serialize, ToSchema)]
pub struct ArchiveRecord {
    pub record_type: String,
    pub id: Uuid,
    /// `active`, `restricted` or `removed`.
    pub stage: String,
    /// Whether a legal hold is open on it.
    pub held: bool,
    /// The record as phones sync it, every field.
    pub record: Value,
    /// Its photos: id and SHA-256 of the original (the bytes through `/api/v1/photos/{id}` are
    /// not served past the active stage).
    pub photos: Vec<Value>,
}

/// One record past its active retention stage, for a stated purpose (Wpg art. 8 lid 2–3 and
/// art. 14): a restricted record for an account with the Wpg authorisation in its team and for
/// the fg, a removed one for the fg alone. Every read is audit-logged with its purpose. An
/// active record is served as its regular read would (the rules of `VISIBILITY.md`).
#[utoipa::path(
    get, path = "/api/v1/archief/{record_type}/{id}", operation_id = "readArchived", tag = "retention",
    params(
        ("record_type" = String, Path, description = "The collection: violations, incidents, youth_persons …"),
        ("id" = Uuid, Path, description = "The record"),
        ArchiveQuery,
    ),
    responses(
        (status = 200, description = "The record", body = ArchiveRecord),
        (status = 404, description = "No such record, or not for this reader", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "No purpose given", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn archive_read(
    State(state): State<AppState>,
    p: Principal,
    ApiPath((record_type, id)): ApiPath<(String, Uuid)>,
    ApiQuery(q): ApiQuery<ArchiveQuery>,
) -> ApiResult<Json<ArchiveRecord>> {
    let doel = q.doel.trim().to_string();
    if doel.chars().count() < 10 || doel.chars().count() > 500 {
        return Err(ApiError::field(
            "doel",
            "the purpose of this read, 10 to 500 characters (a complaint's or case's number and subject)",
        ));
    }
    let not_found = || ApiError::NotFound(format!("{record_type} {id}"));
    let (kind, _) = super::collection(&record_type).ok_or_else(not_found)?;
    let conn = &state.db.read;
    let (facts, record, photos) = if kind == Kind::Violation {
        use crate::photos::entity::photo;
        use crate::violations::entity::violation;
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
        let m = violation::Entity::find_by_id(id)
            .one(conn)
            .await?
            .ok_or_else(not_found)?;
        let photos = photo::Entity::find()
            .filter(photo::Column::ViolationId.eq(id))
            .all(conn)
            .await?
            .iter()
            .map(|ph| json!({ "id": ph.id, "sha256": ph.sha256 }))
            .collect();
        (
            crate::violations::store::facts(&m),
            Value::Object(crate::violations::sync::canonical_row(&m)),
            photos,
        )
    } else {
        let rk = crate::records::kinds::all()
            .into_iter()
            .find(|k| k.access() == kind)
            .ok_or_else(not_found)?;
        let r = crate::records::store::load(conn, rk, id, false)
            .await?
            .ok_or_else(not_found)?;
        (
            r.facts(),
            Value::Object(crate::records::store::canonical_row(&r)),
            Vec::new(),
        )
    };
    if facts.stage == Stage::Active {
        // Not archived: the regular read and its rules apply (and say nothing to whoever may
        // not know of the record).
        if !access::sees(&p, kind, &facts) {
            return Err(not_found());
        }
        return Err(ApiError::NotFound(format!(
            "{record_type} {id} is in active use: read it where its team reads it"
        )));
    }
    if access::archive_decide(&p, kind, &facts) != Sight::Full {
        return Err(not_found());
    }
    let held = hold::is_held(conn, &record_type, id).await?;
    let entry = Entry::new("read_archived", kind.table(), id)
        .reason(Some(doel))
        .detail(json!({ "stage": facts.stage.as_str() }));
    state.audit.read(&p.actor(), entry).await?;
    Ok(Json(ArchiveRecord {
        record_type,
        id,
        stage: facts.stage.as_str().into(),
        held,
        record,
        photos,
    }))
}
