//! The briefing as JSON, and its sign-off.

use axum::Json;
use axum::extract::State;
use chrono::{NaiveDate, Utc};
use serde::Deserialize;
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{Briefing, Shift};
use crate::access::{Disclosure, Kind};
use crate::app::AppState;
use crate::audit::Entry;
use crate::auth::Principal;
use crate::error::{ApiResult, Problem};
use crate::extract::{ApiJson, ApiQuery};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_briefing))
        .routes(routes!(sign_off))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BriefingQuery {
    /// The day (YYYY-MM-DD, Europe/Amsterdam); default today.
    pub date: Option<NaiveDate>,
    /// `early` (07–15), `late` (15–23) or `night` (23–07); omitted: the whole day.
    pub shift: Option<Shift>,
}

/// Logs the Wpg data a briefing lets out before it leaves the server: the names of youth-group
/// members (one line for the briefing) and the incidents whose descriptions it carries (the
/// access rules decided those in `load::redact`).
pub async fn log_reads(state: &AppState, p: &Principal, b: &Briefing) -> ApiResult<()> {
    if b.youth_persons.as_ref().is_some_and(|v| !v.is_empty()) {
        state
            .audit
            .read(
                &p.actor(),
                Entry::new("read", "briefing", format!("{}/{:?}", b.date, b.shift))
                    .detail(json!({ "section": "youth_persons" })),
            )
            .await?;
    }
    let mut d = Disclosure::new(p, &state.audit);
    for id in b.youth_persons.iter().flatten().filter_map(|y| y.id) {
        d.sent(Kind::YouthPerson, &id.to_string());
    }
    for i in b.incidents.iter().filter(|i| i.description.is_some()) {
        d.sent(Kind::Incident, &i.id.to_string());
    }
    d.log("read_briefing", Default::default()).await
}

/// The briefing of a day or shift: violations per category, feitcode, wijk and outcome with
/// their trend against the previous 7 and 28 days; rounds planned against done with time and
/// distance per wijk; hotspots and whether rounds passed them; youth-group sightings; incidents;
/// open follow-ups; the team lead's attention points. Sections with youth or Wpg data are null
/// for readers without the right (listed in `redacted`), never an error. Once signed off, the
/// briefing as signed, with an `addendum` of what changed since.
#[utoipa::path(
    get, path = "/api/v1/briefing", operation_id = "getBriefing", tag = "briefing",
    params(BriefingQuery),
    responses(
        (status = 200, description = "The briefing", body = Briefing),
        (status = 422, description = "A bad date or shift", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_briefing(
    State(state): State<AppState>,
    p: Principal,
    ApiQuery(q): ApiQuery<BriefingQuery>,
) -> ApiResult<Json<Briefing>> {
    let date = q.date.unwrap_or_else(crate::demo::today);
    let b =
        super::load::briefing(&state.db.read, &state.ask(&p, date, q.shift, Utc::now())).await?;
    log_reads(&state, &p, &b).await?;
    Ok(Json(b))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct SignOffRequest {
    pub date: NaiveDate,
    /// Omitted: the whole day.
    pub shift: Option<Shift>,
}

/// Sign the briefing off (team lead): it is frozen as it is now; later changes show as an
/// addendum. The sign-off is in the audit log.
#[utoipa::path(
    post, path = "/api/v1/briefing/signoff", operation_id = "signOffBriefing", tag = "briefing",
    request_body = SignOffRequest,
    responses(
        (status = 200, description = "The briefing as signed", body = Briefing),
        (status = 403, description = "Only a teamleider signs", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already signed off", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn sign_off(
    State(state): State<AppState>,
    p: Principal,
    ApiJson(req): ApiJson<SignOffRequest>,
) -> ApiResult<Json<Briefing>> {
    let txn = crate::sync::begin_write(&state.db).await?;
    let b = super::load::sign(&txn, &state.ask(&p, req.date, req.shift, Utc::now())).await?;
    txn.commit().await?;
    log_reads(&state, &p, &b).await?;
    Ok(Json(b))
}
