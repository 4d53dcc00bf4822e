//! HTTP routes of the lookups at the spot.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{AddressCheck, VehicleCheck};
use crate::access::{self, Kind};
use crate::app::AppState;
use crate::auth::{Action, Principal};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiPath, ApiQuery};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(kenteken))
        .routes(routes!(adres))
        .routes(routes!(repeats))
}

/// The vehicle behind a kenteken (RDW open data): brand, model, colour, kind, so the officer
/// sees the plate belongs to the car in front of them. Any spelling ("12-abc-3"); a plate that
/// fits no Dutch sidecode, a switched-off or silent RDW answer `checked: not_checked` with the
/// reason, never an error. A kenteken is Wpg data: only a reader of Wpg reports asks, and each
/// lookup is audit-logged (with the plate's SHA-256, not the plate).
#[utoipa::path(
    get, path = "/api/v1/lookup/kenteken/{kenteken}", operation_id = "lookupKenteken", tag = "lookup",
    params(("kenteken" = String, Path, description = "The plate, any spelling")),
    responses(
        (status = 200, description = "What the RDW says, or why it was not checked", body = VehicleCheck),
        (status = 403, description = "This account may not read Wpg data", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "No plate", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn kenteken(
    State(state): State<AppState>,
    p: Principal,
    ApiPath(raw): ApiPath<String>,
) -> ApiResult<Json<VehicleCheck>> {
    p.authorize(Action::CreateViolation)?;
    if !access::reads_wpg_of(&p, Kind::Violation) {
        return Err(ApiError::Forbidden(
            "a kenteken is Wpg data: this account may not look one up".into(),
        ));
    }
    let key = crate::audit::register::asked_kenteken(&raw)?;
    let check = state.lookups.vehicle(&key).await;
    let entry = super::consultation(
        "lookup_kenteken",
        &key,
        serde_json::json!({ "checked": check.checked }),
    );
    state.audit.read(&p.actor(), entry).await?;
    Ok(Json(check))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PositionQuery {
    /// Latitude, WGS84.
    pub lat: f64,
    /// Longitude, WGS84.
    pub lon: f64,
}

/// The nearest address of a position (BAG, through PDOK's Locatieserver; cached), with the wijk
/// and buurt from thor's own geometry, which stand in when the Locatieserver is off or silent.
#[utoipa::path(
    get, path = "/api/v1/lookup/adres", operation_id = "lookupAdres", tag = "lookup",
    params(PositionQuery),
    responses(
        (status = 200, description = "The address, or why it was not looked up", body = AddressCheck),
        (status = 422, description = "A position that is not one", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn adres(
    State(state): State<AppState>,
    p: Principal,
    ApiQuery(q): ApiQuery<PositionQuery>,
) -> ApiResult<Json<AddressCheck>> {
    p.authorize(Action::CreateViolation)?;
    let errs = crate::reference::routes::check_coordinates(q.lat, q.lon, "");
    if !errs.is_empty() {
        return Err(ApiError::Validation(errs));
    }
    Ok(Json(
        state
            .lookups
            .address(&state.db.write, &state.reference, q.lat, q.lon)
            .await,
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RepeatQuery {
    /// Earlier reports of this plate (Wpg data: a logged consultation).
    pub kenteken: Option<String>,
    /// With `lon`: earlier reports within 25 m of this spot.
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    /// Earlier sightings of this youth group (for youth readers).
    pub group: Option<uuid::Uuid>,
    /// How far back, 1 to 60 months; default 12.
    pub months: Option<u32>,
}

/// One earlier report, as the reader may see it.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Earlier {
    pub id: uuid::Uuid,
    pub observed_at: chrono::DateTime<chrono::Utc>,
    pub category: String,
    pub feitcode: Option<String>,
    pub outcome: String,
    pub status: String,
    pub sanction: Option<String>,
    /// Metres from the asked spot.
    pub distance_m: Option<f64>,
}

/// What the repeat check found.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Repeats {
    pub months: u32,
    /// Earlier reports, newest first (at most 50).
    pub items: Vec<Earlier>,
    /// For `group`: the group's sightings in the window (ids and times), oldest first.
    pub sightings: Vec<Sighting>,
}

/// A youth group's earlier sighting.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Sighting {
    pub id: uuid::Uuid,
    pub observed_at: chrono::DateTime<chrono::Utc>,
}

/// Repeat offenders at the spot and for the lead: the earlier reports of the same kenteken, or
/// at the same spot (within 25 m), or the earlier sightings of a youth group (`group`, for youth
/// readers), in the window (default 12 months), as far as the reader may see them (their team,
/// live). Asking by kenteken is a consultation of Wpg data: only a reader
/// of Wpg reports asks, and it is audit-logged with the reports it showed.
#[utoipa::path(
    get, path = "/api/v1/lookup/repeats", operation_id = "lookupRepeats", tag = "lookup",
    params(RepeatQuery),
    responses(
        (status = 200, description = "The earlier reports", body = Repeats),
        (status = 403, description = "Asking by kenteken without the Wpg read", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Neither or both of kenteken and a spot, or a bad window", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn repeats(
    State(state): State<AppState>,
    p: Principal,
    ApiQuery(q): ApiQuery<RepeatQuery>,
) -> ApiResult<Json<Repeats>> {
    p.authorize(Action::CreateViolation)?;
    let months = q.months.unwrap_or(super::REPEAT_MONTHS);
    if !(1..=60).contains(&months) {
        return Err(ApiError::field("months", "1 to 60"));
    }
    if let Some(group) = q.group {
        if q.kenteken.is_some() || q.lat.is_some() || q.lon.is_some() {
            return Err(ApiError::field(
                "group",
                "ask by one of kenteken, a spot or a group",
            ));
        }
        let since = chrono::Utc::now() - chrono::Duration::days(i64::from(months) * 31);
        let rows = crate::records::store::list(
            &state.db.read,
            &crate::records::kinds::OBSERVATIONS,
            &p,
            Some(since),
            None,
            Some(group),
            500,
        )
        .await?;
        let mut disclosure = access::Disclosure::new(&p, &state.audit);
        for r in &rows {
            disclosure.sight(
                Kind::YouthObservation,
                &access::Facts::new(r.team_id, true),
                r.id,
            );
        }
        disclosure.log("lookup_repeats", Default::default()).await?;
        return Ok(Json(Repeats {
            months,
            items: vec![],
            sightings: rows
                .into_iter()
                .map(|r| Sighting {
                    id: r.id,
                    observed_at: r.occurred_at,
                })
                .collect(),
        }));
    }
    let by = match (&q.kenteken, q.lat, q.lon) {
        (Some(k), None, None) => super::By::Kenteken(k.clone()),
        (None, Some(lat), Some(lon)) => super::By::Spot(lat, lon),
        _ => {
            return Err(ApiError::field(
                "kenteken",
                "ask by kenteken, or by a spot (lat and lon), not both",
            ));
        }
    };
    let mut disclosure = access::Disclosure::new(&p, &state.audit);
    let found = super::earlier(&state, &p, &by, months, &mut disclosure).await?;
    disclosure.log("lookup_repeats", Default::default()).await?;
    let items = found
        .into_iter()
        .map(|(m, distance_m)| Earlier {
            id: m.id,
            observed_at: m.observed_at,
            category: m.category,
            feitcode: m.feitcode,
            outcome: m.outcome,
            status: m.status,
            sanction: m.sanction,
            distance_m,
        })
        .collect();
    Ok(Json(Repeats {
        months,
        items,
        sightings: vec![],
    }))
}
