//! Routes of derived round data.

use axum::Json;
use axum::extract::State;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::derive::{Params, RoundStats};
use crate::app::AppState;
use crate::auth::Principal;
use crate::error::{ApiResult, Problem};
use crate::extract::ApiPath;
use crate::records::kinds::{ROUNDS, SEGMENTS};
use crate::records::store;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(round_stats))
}

/// What the round's track says: distance (geodesic; points less accurate than 50 m and
/// physically impossible jumps ignored), time on patrol, time and distance per wijk and buurt,
/// checkpoints reached (first time within their radius), coverage of the planned area. Derived
/// from every segment that has arrived, whatever their order; once the raw fixes are past their
/// retention term, the statistics derived from them just before they were destroyed.
#[utoipa::path(
    get, path = "/api/v1/rounds/{id}/stats", operation_id = "getRoundStats", tag = "rounds",
    params(("id" = Uuid, Path, description = "The round's id")),
    responses(
        (status = 200, description = "The derived statistics", body = RoundStats),
        (status = 404, description = "No such round in your scope", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn round_stats(
    State(state): State<AppState>,
    p: Principal,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<RoundStats>> {
    let round = store::get(&state.db.read, &ROUNDS, &p, id).await?;
    let segments =
        store::list(&state.db.read, &SEGMENTS, &p, None, None, Some(id), 100_000).await?;
    if segments.is_empty()
        && let Some(kept) = crate::retention::run::kept_round_stats(&state.db.read, id).await?
    {
        // The raw fixes are past their term: what was derived from them before they went.
        return Ok(Json(kept));
    }
    let docs: Vec<_> = segments.iter().map(|s| &s.data).collect();
    let reference = state.reference.clone();
    let round_doc = round.data.clone();
    let owned: Vec<serde_json::Map<String, serde_json::Value>> =
        docs.into_iter().cloned().collect();
    let stats = tokio::task::spawn_blocking(move || {
        let refs: Vec<_> = owned.iter().collect();
        super::stats(&round_doc, &refs, &reference, &Params::default())
    })
    .await
    .map_err(|e| crate::error::ApiError::internal(anyhow::anyhow!("deriving the round: {e}")))?;
    Ok(Json(stats))
}
