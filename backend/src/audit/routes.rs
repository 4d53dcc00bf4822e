//! The privacy officer's questions to thor: the disclosure register of a data subject, and the
//! audit log itself.

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
    OpenApiRouter::new()
        .routes(routes!(disclosures))
        .routes(routes!(search_log))
        .routes(routes!(inzage))
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
    let subject = register::asked_kenteken(&q.kenteken)?;
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

/// A search of the audit log.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct LogQuery {
    /// Lines from this day (YYYY-MM-DD, Europe/Amsterdam).
    pub from: Option<chrono::NaiveDate>,
    /// Lines before this day.
    pub to: Option<chrono::NaiveDate>,
    /// The actor's username.
    pub actor: Option<String>,
    /// The verb: `read`, `update`, `export`, `read_archived`, `destroy` ….
    pub action: Option<String>,
    /// The kind of record: `violations`, `youth_persons`, `user` ….
    pub record_type: Option<String>,
    /// One record's id: every line that names it.
    pub record_id: Option<String>,
    /// The page after this line id (the `next_after` of the page before).
    pub after: Option<i64>,
    /// Lines per page, 1 to 500 (default 100).
    pub limit: Option<u64>,
}

/// One line of the audit log.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct LogLine {
    pub id: i64,
    pub at: chrono::DateTime<chrono::Utc>,
    pub actor: Option<String>,
    pub device_id: Option<String>,
    pub action: String,
    pub record_type: String,
    pub record_id: Option<String>,
    pub reason: Option<String>,
    #[schema(value_type = Object)]
    pub detail: Option<serde_json::Value>,
}

/// A page of audit lines, oldest first.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct LogPage {
    pub items: Vec<LogLine>,
    /// The `after` of the next page; none when this is the last.
    pub next_after: Option<i64>,
}

/// Searches the audit log (Wpg art. 32a; NOREA: availability of the log files): who did what
/// to which record, when and why. For the functionaris gegevensbescherming; the search itself
/// is audit-logged.
#[utoipa::path(
    get, path = "/api/v1/audit", operation_id = "searchAuditLog", tag = "accountability",
    params(LogQuery),
    responses(
        (status = 200, description = "A page of lines", body = LogPage),
        (status = 403, description = "Not the functionaris gegevensbescherming", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A bad query", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn search_log(
    State(state): State<AppState>,
    p: Principal,
    ApiQuery(q): ApiQuery<LogQuery>,
) -> ApiResult<Json<LogPage>> {
    Ok(Json(search(&state, &p, &q).await?))
}

/// The one search of the audit log (the API and the fg's page): for the fg only, and logged.
pub async fn search(state: &AppState, p: &Principal, q: &LogQuery) -> ApiResult<LogPage> {
    use super::entity as line;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
    p.authorize(Action::ReadAccountability)?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(crate::error::ApiError::field("limit", "1 to 500"));
    }
    let mut f = line::Entity::find();
    if let Some(d) = q.from {
        f = f.filter(line::Column::At.gte(crate::violations::store::amsterdam_day(d).0));
    }
    if let Some(d) = q.to {
        f = f.filter(line::Column::At.lt(crate::violations::store::amsterdam_day(d).0));
    }
    if let Some(a) = &q.actor {
        f = f.filter(line::Column::Actor.eq(a.as_str()));
    }
    if let Some(a) = &q.action {
        f = f.filter(line::Column::Action.eq(a.as_str()));
    }
    if let Some(t) = &q.record_type {
        f = f.filter(line::Column::RecordType.eq(t.as_str()));
    }
    if let Some(id) = &q.record_id {
        f = f.filter(line::Column::RecordId.eq(id.as_str()));
    }
    if let Some(after) = q.after {
        f = f.filter(line::Column::Id.gt(after));
    }
    let mut rows = f
        .order_by_asc(line::Column::Id)
        .limit(limit + 1)
        .all(&state.db.read)
        .await?;
    let more = rows.len() as u64 > limit;
    rows.truncate(limit as usize);
    let next_after = if more {
        rows.last().map(|r| r.id)
    } else {
        None
    };
    let entry = Entry {
        action: "read_audit",
        record_type: "audit_log",
        record_id: None,
        reason: None,
        detail: Some(serde_json::json!({
            "from": q.from, "to": q.to, "actor": q.actor, "action": q.action,
            "record_type": q.record_type, "record_id": q.record_id, "lines": rows.len(),
        })),
    };
    state.audit.read(&p.actor(), entry).await?;
    Ok(LogPage {
        items: rows
            .into_iter()
            .map(|l| LogLine {
                id: l.id,
                at: l.at,
                actor: l.actor,
                device_id: l.device_id,
                action: l.action,
                record_type: l.record_type,
                record_id: l.record_id,
                reason: l.reason,
                detail: l.detail,
            })
            .collect(),
        next_after,
    })
}

/// Inzage for one data subject (AVG art. 15, Wpg art. 25): every record thor holds of a
/// kenteken or a youth person, whatever its retention stage, and the provisions of the past four
/// years; as JSON, or with `format=text` as a document in Dutch to hand over. For the
/// functionaris gegevensbescherming; audit-logged with the records shown.
#[utoipa::path(
    get, path = "/api/v1/inzage", operation_id = "inzage", tag = "accountability",
    params(super::inzage::InzageQuery),
    responses(
        (status = 200, description = "The subject's records and provisions", body = super::inzage::Inzage, content_type = "application/json"),
        (status = 403, description = "Not the functionaris gegevensbescherming", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "No subject, two, or a bad one", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn inzage(
    State(state): State<AppState>,
    p: Principal,
    ApiQuery(q): ApiQuery<super::inzage::InzageQuery>,
) -> ApiResult<axum::response::Response> {
    use axum::response::IntoResponse;
    let text = match q.format.as_deref() {
        None | Some("json") => false,
        Some("text") => true,
        Some(_) => return Err(crate::error::ApiError::field("format", "json or text")),
    };
    let i = super::inzage::gather(&state, &p, &q).await?;
    Ok(if text {
        (
            [(
                axum::http::header::CONTENT_TYPE,
                "text/plain; charset=utf-8",
            )],
            super::inzage::document(&i),
        )
            .into_response()
    } else {
        Json(i).into_response()
    })
}
