//! Reference data over HTTP: areas (GeoJSON), categories, feitcodes, and the area lookup.

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::AppState;
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::ApiQuery;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(areas))
        .routes(routes!(categories))
        .routes(routes!(feitcodes))
        .routes(routes!(lookup))
}

/// Velsen's 10 wijken and 63 buurten as a GeoJSON FeatureCollection (WGS84), with the
/// attribution CBS requires ("Kadaster / Centraal Bureau voor de Statistiek, 2024").
#[utoipa::path(
    get, path = "/api/v1/reference/areas", operation_id = "listAreas", tag = "reference",
    responses(
        (status = 200, description = "FeatureCollection; each feature has properties code, kind (wijk|buurt), name, wijk_code", content_type = "application/geo+json", body = Object),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn areas(State(state): State<AppState>, _p: Principal) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "application/geo+json"),
            (header::CACHE_CONTROL, "private, max-age=3600"),
        ],
        state.reference.areas_geojson.clone(),
    )
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CategoryView {
    /// `afval`, `parkeren`, `honden` or `overig`.
    pub code: String,
    pub name: String,
    pub description: String,
    /// Feitcode domains a report of this category may use.
    pub feitcode_domains: Vec<String>,
}

/// The violation categories.
#[utoipa::path(
    get, path = "/api/v1/reference/categories", operation_id = "listCategories", tag = "reference",
    responses(
        (status = 200, description = "Categories in display order", body = Vec<CategoryView>),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn categories(State(state): State<AppState>, _p: Principal) -> Json<Vec<CategoryView>> {
    Json(
        state
            .reference
            .categories
            .iter()
            .map(|c| CategoryView {
                code: c.code.clone(),
                name: c.name.clone(),
                description: c.description.clone(),
                feitcode_domains: c
                    .feitcode_domains
                    .split(';')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect(),
            })
            .collect(),
    )
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FeitcodeQuery {
    /// Only feitcodes of this category.
    pub category: Option<String>,
    /// Only versions in force on this date (YYYY-MM-DD).
    pub on: Option<NaiveDate>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FeitcodeView {
    pub code: String,
    pub valid_from: NaiveDate,
    pub valid_until: Option<NaiveDate>,
    pub category: String,
    /// parkeren, stilstaan, afval or honden.
    pub domain: String,
    pub description: String,
    pub article: String,
    /// Legal track: wahv, bsb, bboor, naheffing, bestuursdwang or warning_only.
    pub track: String,
    /// Tariff in euro per Wahv road-user category ("1" = motor vehicles on more than two wheels …).
    #[schema(value_type = Object)]
    pub tariffs_eur: serde_json::Value,
    pub source: String,
}

/// The feitcodes for afval, honden, parkeren and stilstaan, with track and valid-from date.
#[utoipa::path(
    get, path = "/api/v1/reference/feitcodes", operation_id = "listFeitcodes", tag = "reference",
    params(FeitcodeQuery),
    responses(
        (status = 200, description = "Feitcodes", body = Vec<FeitcodeView>),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad query parameter", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn feitcodes(
    State(state): State<AppState>,
    _p: Principal,
    ApiQuery(q): ApiQuery<FeitcodeQuery>,
) -> ApiResult<Json<Vec<FeitcodeView>>> {
    if let Some(c) = &q.category
        && state.reference.category(c).is_none()
    {
        return Err(ApiError::field(
            "category",
            format!("unknown category {c:?}"),
        ));
    }
    let items = state
        .reference
        .feitcodes
        .iter()
        .filter(|f| q.category.as_ref().is_none_or(|c| &f.category == c))
        .filter(|f| match q.on {
            Some(d) => f.valid_from <= d && f.valid_until.is_none_or(|u| d < u),
            None => true,
        })
        .map(|f| FeitcodeView {
            code: f.code.clone(),
            valid_from: f.valid_from,
            valid_until: f.valid_until,
            category: f.category.clone(),
            domain: f.domain.clone(),
            description: f.description.clone(),
            article: f.article.clone(),
            track: f.track.clone(),
            tariffs_eur: f.tariffs_eur.clone(),
            source: f.source.clone(),
        })
        .collect();
    Ok(Json(items))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LookupQuery {
    /// Latitude, WGS84 degrees.
    pub lat: f64,
    /// Longitude, WGS84 degrees.
    pub lon: f64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema, Clone, PartialEq)]
pub struct AreaRef {
    pub code: String,
    pub name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LookupResponse {
    /// False when the point lies outside Velsen.
    pub inside_velsen: bool,
    pub wijk: Option<AreaRef>,
    pub buurt: Option<AreaRef>,
    /// A sentence for the app to show.
    pub message: String,
}

pub fn check_coordinates(lat: f64, lon: f64, prefix: &str) -> Vec<crate::error::FieldError> {
    let mut errs = Vec::new();
    if !lat.is_finite() || !(-90.0..=90.0).contains(&lat) {
        errs.push(crate::error::FieldError::new(
            format!("{prefix}lat"),
            "must be between -90 and 90",
        ));
    }
    if !lon.is_finite() || !(-180.0..=180.0).contains(&lon) {
        errs.push(crate::error::FieldError::new(
            format!("{prefix}lon"),
            "must be between -180 and 180",
        ));
    }
    errs
}

/// Which wijk and buurt a point lies in, or "outside Velsen".
#[utoipa::path(
    get, path = "/api/v1/areas/lookup", operation_id = "lookupArea", tag = "reference",
    params(LookupQuery),
    responses(
        (status = 200, description = "The wijk and buurt, or inside_velsen=false", body = LookupResponse),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Coordinates out of range", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn lookup(
    State(state): State<AppState>,
    _p: Principal,
    ApiQuery(q): ApiQuery<LookupQuery>,
) -> ApiResult<Json<LookupResponse>> {
    let errs = check_coordinates(q.lat, q.lon, "");
    if !errs.is_empty() {
        return Err(ApiError::Validation(errs));
    }
    let l = state.reference.areas.locate(q.lat, q.lon);
    let r = |a: Option<&crate::geo::Area>| {
        a.map(|a| AreaRef {
            code: a.code.clone(),
            name: a.name.clone(),
        })
    };
    let message = match (l.wijk, l.buurt) {
        (Some(w), Some(b)) => format!("{} ({})", b.name, w.name),
        (Some(w), None) => w.name.clone(),
        _ => {
            "Buiten Velsen: dit punt ligt in geen enkele wijk of buurt van de gemeente".to_string()
        }
    };
    Ok(Json(LookupResponse {
        inside_velsen: l.inside(),
        wijk: r(l.wijk),
        buurt: r(l.buurt),
        message,
    }))
}
