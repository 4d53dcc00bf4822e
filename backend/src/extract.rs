//! Request extractors whose rejections are problem+json naming the field at fault.
//!
//! axum's own `Json`/`Query` reject with plain text; these read the same input but run serde
//! through `serde_path_to_error`, so `{"location": {"lat": "x"}}` answers `location.lat`.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, FieldError};

/// A JSON body. Missing or wrong content type is 415, oversized 413, malformed 400, and a value
/// of the wrong type or a missing field 422, each naming the field.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|ct| {
                let mime = ct.split(';').next().unwrap_or("").trim();
                mime == "application/json" || mime.ends_with("+json")
            })
            .unwrap_or(false);
        if !is_json {
            return Err(ApiError::UnsupportedMediaType(
                "send the body as JSON with Content-Type: application/json".into(),
            ));
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(bytes_rejection)?;
        parse_json(&bytes).map(ApiJson)
    }
}

fn bytes_rejection(r: BytesRejection) -> ApiError {
    if r.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge(format!(
            "the body is larger than this endpoint accepts ({})",
            r.body_text()
        ))
    } else {
        ApiError::BadRequest {
            detail: format!("could not read the request body: {}", r.body_text()),
            errors: vec![],
        }
    }
}

/// Parses JSON into `T`, turning serde errors into problems that name the field.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        use serde_json::error::Category;
        match inner.classify() {
            Category::Syntax | Category::Eof | Category::Io => ApiError::BadRequest {
                detail: format!("the body is not valid JSON: {inner}"),
                errors: vec![],
            },
            Category::Data => {
                let msg = strip_position(&inner.to_string());
                ApiError::Validation(vec![FieldError::new(field_of(&path, &msg), msg)])
            }
        }
    })
}

/// A query string. Wrong values are 422 naming the parameter.
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let q = parts.uri.query().unwrap_or("");
        parse_query(q).map(ApiQuery)
    }
}

pub fn parse_query<T: DeserializeOwned>(q: &str) -> Result<T, ApiError> {
    let de = serde_urlencoded::Deserializer::new(form_urlencoded_parse(q));
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let msg = e.into_inner().to_string();
        ApiError::Validation(vec![FieldError::new(field_of(&path, &msg), msg)])
    })
}

fn form_urlencoded_parse(q: &str) -> form_urlencoded::Parse<'_> {
    form_urlencoded::parse(q.as_bytes())
}

/// serde reports a missing field at its parent's path with the name in the message
/// ("missing field `category`"); join the two so the client gets the full path.
fn field_of(path: &str, msg: &str) -> String {
    let missing = msg
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next());
    match (path, missing) {
        (".", Some(name)) | ("", Some(name)) => name.to_string(),
        (p, Some(name)) => format!("{p}.{name}"),
        (".", None) | ("", None) => "body".to_string(),
        (p, None) => p.to_string(),
    }
}

fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize, Debug)]
    #[allow(dead_code)]
    struct Loc {
        lat: f64,
    }
    #[derive(Deserialize, Debug)]
    #[allow(dead_code)]
    struct Body {
        category: String,
        location: Loc,
    }

    fn field(e: ApiError) -> String {
        match e {
            ApiError::Validation(f) => f[0].field.clone(),
            other => panic!("expected validation, got {other:?}"),
        }
    }

    #[test]
    fn missing_field_is_named() {
        let e = parse_json::<Body>(br#"{"location":{"lat":1}}"#).unwrap_err();
        assert_eq!(field(e), "category");
        let e = parse_json::<Body>(br#"{"category":"x","location":{}}"#).unwrap_err();
        assert_eq!(field(e), "location.lat");
    }

    #[test]
    fn wrong_type_is_named() {
        let e = parse_json::<Body>(br#"{"category":"x","location":{"lat":"north"}}"#).unwrap_err();
        assert_eq!(field(e), "location.lat");
    }

    #[test]
    fn syntax_error_is_bad_request() {
        let e = parse_json::<Body>(br#"{"category":"#).unwrap_err();
        assert!(matches!(e, ApiError::BadRequest { .. }));
    }

    #[derive(Deserialize, Debug)]
    #[allow(dead_code)]
    struct Q {
        limit: Option<u32>,
    }

    #[test]
    fn query_errors_name_the_parameter() {
        let e = parse_query::<Q>("limit=many").unwrap_err();
        assert_eq!(field(e), "limit");
        assert_eq!(parse_query::<Q>("limit=5").unwrap().limit, Some(5));
    }
}

/// A path parameter; a malformed one (say, not a UUID) is 400 naming the parameter.
#[derive(axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

impl From<axum::extract::rejection::PathRejection> for ApiError {
    fn from(r: axum::extract::rejection::PathRejection) -> Self {
        ApiError::BadRequest {
            detail: r.body_text(),
            errors: vec![FieldError::new("path", r.body_text())],
        }
    }
}
