//! HTTP routes of cases: the open cases with their deadlines, one case, the next step, and the
//! documents made from the record.

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::CaseView;
use super::track::DocumentKind;
use crate::app::AppState;
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiJson, ApiPath, ApiQuery};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_cases))
        .routes(routes!(get_case))
        .routes(routes!(take_step))
        .routes(routes!(get_document))
}

/// The open cases of the caller's team (every team for the beheerder): reports with an
/// afdoening whose track is not finished, overdue ones first, then by deadline.
#[utoipa::path(
    get, path = "/api/v1/cases", operation_id = "listCases", tag = "cases",
    responses(
        (status = 200, description = "The open cases", body = Vec<CaseView>),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list_cases(
    State(state): State<AppState>,
    p: Principal,
) -> ApiResult<Json<Vec<CaseView>>> {
    Ok(Json(super::open_cases(&state, &p, Utc::now()).await?))
}

/// A report's case: its afdoening, the steps taken and to take, the deadline, the documents.
#[utoipa::path(
    get, path = "/api/v1/cases/{id}", operation_id = "getCase", tag = "cases",
    params(("id" = Uuid, Path, description = "The report's id")),
    responses(
        (status = 200, description = "The case", body = CaseView),
        (status = 404, description = "No such report, not visible, or no afdoening chosen", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_case(
    State(state): State<AppState>,
    p: Principal,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<CaseView>> {
    Ok(Json(super::case_of(&state, &p, id).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StepRequest {
    /// The key of the next step (`next` of the case).
    pub step: String,
    /// What the office noted with it (a CJIB number, a payment), at most 2000 characters.
    #[serde(default)]
    pub note: Option<String>,
}

/// Takes the next step of a case's track: the officer's steps by an officer on the report, the
/// teamleider's once the report is approved. Audit-logged.
#[utoipa::path(
    post, path = "/api/v1/cases/{id}/steps", operation_id = "takeCaseStep", tag = "cases",
    params(("id" = Uuid, Path, description = "The report's id")),
    request_body = StepRequest,
    responses(
        (status = 200, description = "The case after the step", body = CaseView),
        (status = 403, description = "Not this caller's step", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such report, or no afdoening chosen", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The report is not approved yet, or was rejected", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not the next step (named in `step`)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn take_step(
    State(state): State<AppState>,
    p: Principal,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<StepRequest>,
) -> ApiResult<Json<CaseView>> {
    Ok(Json(
        super::take_step(&state, &p, id, req.step.trim(), req.note, Utc::now()).await?,
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DocumentQuery {
    /// Who the document leaves the team for ("CJIB", "OM, parket Noord-Holland", the
    /// offender): with `purpose` and `legal_basis` it is registered as a provision.
    pub recipient: Option<String>,
    pub purpose: Option<String>,
    pub legal_basis: Option<String>,
}

/// A document of a case, made from the record as PDF: `pv_bevindingen`, `kort_pv`,
/// `waarschuwingsbrief`, `sanctiebrief`, `kostenverhaalbrief` (as the afdoening has them) and
/// `zaakoverzicht`. The same record gives the same bytes; a changed record makes a new version
/// (`x-thor-document-version`, the SHA-256 in `x-thor-document-sha256`). Every issue is
/// audit-logged; one with a `recipient` also goes into the disclosure register.
#[utoipa::path(
    get, path = "/api/v1/cases/{id}/documents/{kind}", operation_id = "getCaseDocument", tag = "cases",
    params(("id" = Uuid, Path, description = "The report's id"), ("kind" = String, Path, description = "The document"), DocumentQuery),
    responses(
        (status = 200, description = "The document", content_type = "application/pdf"),
        (status = 403, description = "The case holds Wpg data this account may not read", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such case or document", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A recipient without purpose or legal basis", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_document(
    State(state): State<AppState>,
    p: Principal,
    ApiPath((id, kind)): ApiPath<(Uuid, String)>,
    ApiQuery(q): ApiQuery<DocumentQuery>,
) -> ApiResult<Response> {
    let kind = DocumentKind::parse(&kind)
        .ok_or_else(|| ApiError::NotFound(format!("no document {kind:?}")))?;
    let provision = if q.recipient.as_deref().is_some_and(|r| !r.trim().is_empty()) {
        Some(
            crate::audit::register::Provision {
                recipient: q.recipient,
                purpose: q.purpose,
                legal_basis: q.legal_basis,
            }
            .stated()?,
        )
    } else {
        None
    };
    let issued = super::issue(&state, &p, id, kind, provision, Utc::now()).await?;
    let name = format!("{}-{}-v{}.pdf", issued.kind.as_str(), id, issued.version);
    Ok((
        [
            (header::CONTENT_TYPE, "application/pdf".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("inline; filename=\"{name}\""),
            ),
            (header::CACHE_CONTROL, "private, no-store".to_string()),
            (
                header::HeaderName::from_static("x-thor-document-version"),
                issued.version.to_string(),
            ),
            (
                header::HeaderName::from_static("x-thor-document-sha256"),
                issued.sha256,
            ),
        ],
        issued.bytes,
    )
        .into_response())
}
