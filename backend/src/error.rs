//! One error type for the whole API, rendered as RFC 9457 `application/problem+json`.
//!
//! Every 4xx names what is wrong and, where a field is at fault, which field (`errors[].field`,
//! a dotted path such as `location.lat`). Internal errors are logged once, here, with their whole
//! source chain, and the client gets a generic 500 without internals.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// A field that failed validation, with a human-readable reason.
#[derive(Debug, Clone, Serialize, serde::Deserialize, ToSchema, PartialEq)]
pub struct FieldError {
    /// Dotted path of the offending field in the request, e.g. `location.lat` or `feitcode`.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// The RFC 9457 problem document every error response carries.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URN naming the kind of problem, stable for clients to switch on, e.g. `urn:thor:problem:validation`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary of the problem kind.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong in this occurrence.
    pub detail: String,
    /// The fields at fault, for validation problems.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub errors: Vec<FieldError>,
    /// For a conflict on create: the path of the record that already exists under that id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub existing: Option<String>,
    /// For 410 on sync: the client must drop its cursor and pull in full.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reset: Option<bool>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request could not be read (malformed JSON, wrong types, bad query string).
    #[error("bad request: {detail}")]
    BadRequest {
        detail: String,
        errors: Vec<FieldError>,
    },
    /// The request was well-formed but its values break a rule.
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    #[error("authentication required: {0}")]
    Unauthorized(String),
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("conflict: {detail}")]
    Conflict {
        detail: String,
        existing: Option<String>,
    },
    #[error("gone: {0}")]
    Gone(String),
    #[error("payload too large: {0}")]
    PayloadTooLarge(String),
    #[error("unsupported media type: {0}")]
    UnsupportedMediaType(String),
    /// Another request holds the resource (tus: an upload in progress); retry later.
    #[error("locked: {0}")]
    Locked(String),
    /// A precondition of the protocol is not met (tus: an unsupported `Tus-Resumable` version).
    #[error("precondition failed: {0}")]
    PreconditionFailed(String),
    /// tus checksum extension: the bytes of a PATCH do not match its `Upload-Checksum`
    /// (status 460, defined by tus 1.0).
    #[error("checksum mismatch: {0}")]
    ChecksumMismatch(String),
    #[error("too many requests: {detail}")]
    TooManyRequests { detail: String, retry_after_s: u64 },
    #[error("service unavailable: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    /// What each request of a failed group commit hears (the cause is logged once by the
    /// writer): a 503 stays a 503, anything else becomes a 500 naming `what` failed.
    pub fn for_each_of_batch(&self, what: &str) -> ApiError {
        match self.status().as_u16() {
            503 => ApiError::Unavailable(self.to_problem().detail),
            _ => ApiError::internal(anyhow::anyhow!("{what} failed")),
        }
    }

    /// A validation problem with a single field at fault.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::Validation(vec![FieldError::new(field, message)])
    }

    pub fn internal(e: impl Into<anyhow::Error>) -> Self {
        ApiError::Internal(e.into())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::Gone(_) => StatusCode::GONE,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            ApiError::Locked(_) => StatusCode::LOCKED,
            ApiError::ChecksumMismatch(_) => {
                StatusCode::from_u16(460).unwrap_or(StatusCode::BAD_REQUEST)
            }
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn kind(&self) -> (&'static str, &'static str) {
        match self {
            ApiError::BadRequest { .. } => ("urn:thor:problem:bad-request", "Malformed request"),
            ApiError::Validation(_) => ("urn:thor:problem:validation", "Invalid input"),
            ApiError::Unauthorized(_) => {
                ("urn:thor:problem:unauthorized", "Authentication required")
            }
            ApiError::Forbidden(_) => ("urn:thor:problem:forbidden", "Not allowed"),
            ApiError::NotFound(_) => ("urn:thor:problem:not-found", "Not found"),
            ApiError::Conflict { .. } => ("urn:thor:problem:conflict", "Conflict"),
            ApiError::Gone(_) => ("urn:thor:problem:gone", "Gone"),
            ApiError::PayloadTooLarge(_) => ("urn:thor:problem:too-large", "Payload too large"),
            ApiError::UnsupportedMediaType(_) => (
                "urn:thor:problem:unsupported-media-type",
                "Unsupported media type",
            ),
            ApiError::PreconditionFailed(_) => (
                "urn:thor:problem:precondition-failed",
                "Precondition failed",
            ),
            ApiError::Locked(_) => ("urn:thor:problem:locked", "Locked"),
            ApiError::ChecksumMismatch(_) => {
                ("urn:thor:problem:checksum-mismatch", "Checksum mismatch")
            }
            ApiError::TooManyRequests { .. } => {
                ("urn:thor:problem:rate-limited", "Too many requests")
            }
            ApiError::Unavailable(_) => ("urn:thor:problem:unavailable", "Service unavailable"),
            ApiError::Internal(_) => ("urn:thor:problem:internal", "Internal server error"),
        }
    }

    pub fn to_problem(&self) -> Problem {
        let (kind, title) = self.kind();
        let mut errors = Vec::new();
        let mut existing = None;
        let mut reset = None;
        let detail = match self {
            ApiError::BadRequest { detail, errors: e } => {
                errors = e.clone();
                detail.clone()
            }
            ApiError::Validation(e) => {
                errors = e.clone();
                e.iter()
                    .map(|f| format!("{}: {}", f.field, f.message))
                    .collect::<Vec<_>>()
                    .join("; ")
            }
            ApiError::Conflict {
                detail,
                existing: ex,
            } => {
                existing = ex.clone();
                detail.clone()
            }
            ApiError::Gone(d) => {
                reset = Some(true);
                d.clone()
            }
            ApiError::TooManyRequests { detail, .. } => detail.clone(),
            ApiError::Unauthorized(d)
            | ApiError::Forbidden(d)
            | ApiError::NotFound(d)
            | ApiError::PayloadTooLarge(d)
            | ApiError::UnsupportedMediaType(d)
            | ApiError::PreconditionFailed(d)
            | ApiError::Locked(d)
            | ApiError::ChecksumMismatch(d)
            | ApiError::Unavailable(d) => d.clone(),
            ApiError::Internal(_) => "an internal error occurred; it has been logged".to_string(),
        };
        Problem {
            kind: kind.to_string(),
            title: title.to_string(),
            status: self.status().as_u16(),
            detail,
            errors,
            existing,
            reset,
        }
    }
}

impl From<sea_orm::DbErr> for ApiError {
    fn from(e: sea_orm::DbErr) -> Self {
        ApiError::Internal(anyhow::Error::new(e).context("database error"))
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<sea_orm::TransactionError<E>> for ApiError
where
    ApiError: From<E>,
{
    fn from(e: sea_orm::TransactionError<E>) -> Self {
        match e {
            sea_orm::TransactionError::Connection(db) => db.into(),
            sea_orm::TransactionError::Transaction(inner) => inner.into(),
        }
    }
}

/// Renders a problem document with the right content type.
pub fn problem_response(status: StatusCode, problem: &Problem) -> Response {
    let body = serde_json::to_vec(problem).unwrap_or_else(|_| b"{}".to_vec());
    let mut res = (status, body).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    res
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(e) = &self {
            tracing::error!(error = ?e, "request failed");
        }
        let status = self.status();
        let problem = self.to_problem();
        let mut res = problem_response(status, &problem);
        match &self {
            ApiError::Unauthorized(_) => {
                res.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"thor\""),
                );
            }
            ApiError::TooManyRequests { retry_after_s, .. } => {
                if let Ok(v) = HeaderValue::from_str(&retry_after_s.to_string()) {
                    res.headers_mut().insert(header::RETRY_AFTER, v);
                }
            }
            _ => {}
        }
        res
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_problem_names_every_field() {
        let e = ApiError::Validation(vec![
            FieldError::new("location.lat", "must be between -90 and 90"),
            FieldError::new("feitcode", "unknown feitcode X1"),
        ]);
        let p = e.to_problem();
        assert_eq!(p.status, 422);
        assert_eq!(p.errors.len(), 2);
        assert!(p.detail.contains("location.lat"));
        assert!(p.detail.contains("feitcode"));
    }

    #[test]
    fn internal_errors_hide_their_cause() {
        let e = ApiError::internal(anyhow::anyhow!("secret connection string"));
        let p = e.to_problem();
        assert_eq!(p.status, 500);
        assert!(!p.detail.contains("secret"));
    }
}
