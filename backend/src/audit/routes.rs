//! The privacy officer's questions to thor: the disclosure register of a data subject.

use axum::Json;
use axum::extract::State;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::Entry;
use super::register::{self, ProvisionView, SubjectQuery};
use crate::app::AppState;
use crate::auth::{Action, Principal};
use crate::error::{ApiResult, Problem};
use crate::extract::ApiQuery;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(disclosures))
}

/// To whom a kenteken was disclosed (Wpg art. 25): every provision that held it, newest first,
/// with recipient, purpose and legal basis. For the functionaris gegevensbescherming; the
/// question itself is audit-logged.
#[utoipa::path(
    get, path = "/api/v1/disclosures", operation_id = "listDisclosures", tag = "accountability",
    params(SubjectQuery),
    responses(
        (status = 200, description = "The subject's provisions", body = Vec<ProvisionView>),
        (status = 403, description = "Not the functionaris gegevensbescherming", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A bad query", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn disclosures(
    State(state): State<AppState>,
    p: Principal,
    ApiQuery(q): ApiQuery<SubjectQuery>,
) -> ApiResult<Json<Vec<ProvisionView>>> {
    p.authorize(Action::ReadAccountability)?;
    let subject = register::subject(&q.kenteken);
    if subject.is_empty() || subject.len() > 12 {
        return Err(crate::error::ApiError::field(
            "kenteken",
            "a kenteken: 1 to 12 letters and digits",
        ));
    }
    let since = match q.since {
        Some(d) => crate::violations::store::amsterdam_day(d).0,
        None => chrono::Utc::now() - chrono::Duration::days(365 * register::KEEP_YEARS as i64),
    };
    let found = register::search(&state.db.read, &subject, since).await?;
    // Asking about a person is itself a consultation of Wpg data.
    let provisions: Vec<String> = found.iter().map(|v| v.provision_id.to_string()).collect();
    let entry = Entry {
        action: "read_register",
        record_type: "disclosure_register",
        record_id: None,
        reason: None,
        detail: Some(serde_json::json!({ "kenteken": subject, "provisions": provisions })),
    };
    state.audit.read(&p.actor(), entry).await?;
    Ok(Json(found))
}
