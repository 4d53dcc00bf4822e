//! HTTP routes of photo records and their bytes (the upload itself is `tus.rs`).

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use chrono::Utc;
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::blob::{BlobStore, Derivative};
use super::store::{self, Created};
use super::tus::{TUS_CHECKSUM_ALGORITHMS, TUS_EXTENSIONS, TUS_VERSION};
use super::{ACCEPTED_TYPES, DerivativeState, NewPhoto, PhotoLimits, PhotoView, UploadState};
use crate::access::{Disclosure, Facts, Kind, Sight};
use crate::app::AppState;
use crate::audit::Entry;
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiJson, ApiPath};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(photo_limits))
        .routes(routes!(create_photo))
        .routes(routes!(get_photo, delete_photo))
        .routes(routes!(get_original))
        .routes(routes!(get_thumbnail))
        .routes(routes!(get_preview))
        .routes(routes!(violation_photos))
}

/// The photo limits with the memory limit of decoding.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct PhotoLimitsView {
    #[serde(flatten)]
    pub limits: PhotoLimits,
    /// The most memory the server spends on one photo's thumbnail and preview, in bytes,
    /// estimated from the image's header. Baseline JPEG and non-interlaced PNG are decoded at
    /// reduced size and fit up to `max_pixels`; a progressive JPEG (about 2 bytes per sample
    /// of every component: 6 per pixel at 4:4:4, 3 at 4:2:0), a WebP (4 to 10 bytes per pixel)
    /// or an interlaced PNG (4 per pixel) that would need more is refused (422 at upload, or
    /// `derivative_state: failed` naming the limit). Send baseline JPEG.
    pub max_decode_bytes: u64,
    /// The memory all derivative jobs of the server share, in bytes; a job waits for its
    /// share, so a burst of large photos is derived more slowly, never with more memory.
    pub derive_memory_bytes: u64,
}

pub fn limits(state: &AppState) -> PhotoLimits {
    PhotoLimits {
        max_bytes: state.photos.max_bytes,
        accepted_types: ACCEPTED_TYPES.iter().map(|s| s.to_string()).collect(),
        max_pixels: state.photos.limits.max_pixels,
        upload_expiry_hours: state.config.upload_expiry_hours,
        tus_version: TUS_VERSION.into(),
        tus_extensions: TUS_EXTENSIONS.iter().map(|s| s.to_string()).collect(),
        tus_checksum_algorithms: TUS_CHECKSUM_ALGORITHMS
            .iter()
            .map(|s| s.to_string())
            .collect(),
        thumbnail_px: state.photos.limits.thumb_px,
        preview_px: state.photos.limits.preview_px,
    }
}

/// What the server accepts, so the app checks a photo before it sends it: the largest size
/// (default 25 MiB), the accepted types (JPEG, PNG, WebP; HEIC is refused: send JPEG), the
/// largest image in pixels, the memory one photo may take to decode, and the tus protocol
/// details.
#[utoipa::path(
    get, path = "/api/v1/photos/limits", operation_id = "getPhotoLimits", tag = "photos",
    responses((status = 200, description = "The limits", body = PhotoLimitsView))
)]
pub async fn photo_limits(State(state): State<AppState>, _p: Principal) -> Json<PhotoLimitsView> {
    Json(PhotoLimitsView {
        limits: limits(&state),
        max_decode_bytes: state.derive_budget.max_decode_bytes,
        derive_memory_bytes: state.derive_budget.total_bytes(),
    })
}

/// Record a photo of a report (what the app will upload). The id is made on the phone and is
/// also the upload's key. Sending the same id and content again is a retry (200).
#[utoipa::path(
    post, path = "/api/v1/photos", operation_id = "createPhoto", tag = "photos",
    request_body = NewPhoto,
    responses(
        (status = 201, description = "Recorded; now upload the bytes at /api/v1/uploads", body = PhotoView),
        (status = 200, description = "A retry: this photo exists with this content", body = PhotoView),
        (status = 403, description = "Not an officer on the report", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The id exists with other content", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field is invalid (e.g. over the size limit, HEIC); `errors` names it", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create_photo(
    State(state): State<AppState>,
    p: Principal,
    ApiJson(body): ApiJson<NewPhoto>,
) -> ApiResult<(StatusCode, Json<PhotoView>)> {
    let (status, m) =
        match store::create(&state.db, &p, body, state.photos.max_bytes, Utc::now()).await? {
            Created::New(m) => (StatusCode::CREATED, m),
            Created::Existing(m) => (StatusCode::OK, m),
        };
    let (m, report) = store::get(&state.db.write, &p, m.id).await?;
    if matches!(status, StatusCode::CREATED) && m.upload_state == UploadState::Complete.as_str() {
        state.photos.wake.notify_one();
    }
    Ok((status, Json(store::view(&m, report.as_ref()))))
}

/// A photo record: upload state (what is still missing), EXIF, derivative state, and
/// plausibility flags against its report.
#[utoipa::path(
    get, path = "/api/v1/photos/{id}", operation_id = "getPhoto", tag = "photos",
    params(("id" = Uuid, Path, description = "The photo's id")),
    responses(
        (status = 200, description = "The photo", body = PhotoView),
        (status = 404, description = "No such photo in your scope", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_photo(
    State(state): State<AppState>,
    p: Principal,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<PhotoView>> {
    let (m, report) = store::get(&state.db.read, &p, id).await?;
    Ok(Json(store::view(&m, report.as_ref())))
}

/// Withdraw a photo (the wrong car, a bystander in view) while its report is not yet reviewed.
#[utoipa::path(
    delete, path = "/api/v1/photos/{id}", operation_id = "deletePhoto", tag = "photos",
    params(("id" = Uuid, Path, description = "The photo's id")),
    responses(
        (status = 204, description = "Withdrawn"),
        (status = 404, description = "No such photo in your scope", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Its report was reviewed: the photo is part of a final decision", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn delete_photo(
    State(state): State<AppState>,
    p: Principal,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    let txn = crate::sync::begin_write(&state.db).await?;
    let deleted = store::delete_in(&txn, &p, id, Utc::now()).await?;
    txn.commit().await?;
    if deleted {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!("photo {id}")))
    }
}

/// The photos of a report, with which are still missing and their plausibility flags.
#[utoipa::path(
    get, path = "/api/v1/violations/{id}/photos", operation_id = "listViolationPhotos", tag = "photos",
    params(("id" = Uuid, Path, description = "The report's id")),
    responses(
        (status = 200, description = "The report's photos, oldest first", body = Vec<PhotoView>),
        (status = 404, description = "No such report in your scope", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn violation_photos(
    State(state): State<AppState>,
    p: Principal,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<Vec<PhotoView>>> {
    let report = crate::violations::store::get(&state.db, &p, id).await?;
    let mut by = store::of_violations(&state.db.read, &[id]).await?;
    Ok(Json(
        by.remove(&id)
            .unwrap_or_default()
            .iter()
            .map(|m| store::view(m, Some(&report)))
            .collect(),
    ))
}

fn image_response(
    len: u64,
    content_type: &str,
    etag: &str,
    stream: impl futures_util::Stream<Item = std::io::Result<bytes::Bytes>> + Send + 'static,
) -> Response {
    let mut res = Response::new(Body::from_stream(stream));
    let h = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(content_type) {
        h.insert(header::CONTENT_TYPE, v);
    }
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    if let Ok(v) = HeaderValue::from_str(&format!("\"{etag}\"")) {
        h.insert(header::ETAG, v);
    }
    // Personal data: never in a shared cache.
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=86400, immutable"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    res
}

/// What the access rules let this principal read of a photo's bytes: its report's rule (a
/// photo whose report is gone counts as Wpg). Withheld bytes are a 403 that says why; a full
/// read of a Wpg photo is noted for the log.
fn bytes_disclosure(
    state: &AppState,
    p: &Principal,
    m: &super::entity::photo::Model,
    report: Option<&crate::violations::entity::violation::Model>,
) -> ApiResult<Disclosure> {
    let facts = match report {
        Some(r) => crate::violations::store::facts(r),
        None => Facts::new(m.team_id, true),
    };
    let mut d = Disclosure::new(p, &state.audit);
    match d.sight(Kind::Photo, &facts, m.id) {
        Sight::Full => Ok(d),
        Sight::Redacted => Err(ApiError::Forbidden(format!(
            "photo {} belongs to a report kept under the Wpg; its bytes are for those who may read Wpg data",
            m.id
        ))),
        Sight::Hidden => Err(ApiError::NotFound(format!("photo {}", m.id))),
    }
}

fn mime_of(format: Option<&str>) -> &'static str {
    match format {
        Some("png") => "image/png",
        Some("webp") => "image/webp",
        _ => "image/jpeg",
    }
}

/// The original, byte for byte as the phone sent it: the evidence. Every read is written to
/// the audit log before the first byte leaves.
#[utoipa::path(
    get, path = "/api/v1/photos/{id}/original", operation_id = "getPhotoOriginal", tag = "photos",
    params(("id" = Uuid, Path, description = "The photo's id")),
    responses(
        (status = 200, description = "The original bytes, in the format the phone sent (JPEG, PNG or WebP: `format` of the photo); ETag is the SHA-256",
            content(("image/jpeg"), ("image/png"), ("image/webp"))),
        (status = 403, description = "The photo's report is kept under the Wpg and this reader may not read Wpg data (VISIBILITY.md)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such photo in your scope", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The upload is not complete", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_original(
    State(state): State<AppState>,
    p: Principal,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Response> {
    let (m, report) = store::get(&state.db.read, &p, id).await?;
    if m.upload_state != UploadState::Complete.as_str() {
        return Err(ApiError::Conflict {
            detail: format!(
                "photo {id} is {}: its bytes have not all arrived",
                m.upload_state
            ),
            existing: None,
        });
    }
    let d = bytes_disclosure(&state, &p, &m, report.as_ref())?;
    // Every read of the evidence is logged, Wpg or not, with its hash.
    let detail = json!({ "sha256": m.sha256, "violation_id": m.violation_id });
    if d.released(Kind::Photo).is_empty() {
        state
            .audit
            .read(
                &p.actor(),
                Entry::new("read_original", store::TABLE, id).detail(detail),
            )
            .await?;
    } else if let serde_json::Value::Object(detail) = detail {
        d.log("read_original", detail).await?;
    }
    let (len, stream) = state
        .photos
        .blobs
        .stream(&BlobStore::original_key(&m.sha256))
        .await
        .map_err(ApiError::internal)?;
    Ok(image_response(
        len,
        mime_of(m.format.as_deref()),
        &m.sha256,
        stream,
    ))
}

async fn derivative(
    state: &AppState,
    p: &Principal,
    id: Uuid,
    d: Derivative,
) -> ApiResult<Response> {
    let (m, report) = store::get(&state.db.read, p, id).await?;
    match DerivativeState::parse(&m.derivative_state) {
        Some(DerivativeState::Done) => {}
        Some(DerivativeState::Failed) => {
            return Err(ApiError::NotFound(format!(
                "photo {id} has no {}: the original could not be decoded ({})",
                d.as_str(),
                m.derivative_error.unwrap_or_default()
            )));
        }
        _ => {
            return Err(ApiError::NotFound(format!(
                "the {} of photo {id} is not made yet",
                d.as_str()
            )));
        }
    }
    let disclosure = bytes_disclosure(state, p, &m, report.as_ref())?;
    let (len, stream) = state
        .photos
        .blobs
        .stream(&BlobStore::derivative_key(&m.sha256, d))
        .await
        .map_err(ApiError::internal)?;
    disclosure.log("read_photo", Default::default()).await?;
    Ok(image_response(
        len,
        "image/jpeg",
        &format!("{}-{}", m.sha256, d.as_str()),
        stream,
    ))
}

/// The thumbnail (320 px on the longest side, upright, no metadata) for lists.
#[utoipa::path(
    get, path = "/api/v1/photos/{id}/thumbnail", operation_id = "getPhotoThumbnail", tag = "photos",
    params(("id" = Uuid, Path, description = "The photo's id")),
    responses(
        (status = 200, description = "JPEG", content_type = "image/jpeg"),
        (status = 403, description = "The photo's report is kept under the Wpg and this reader may not read Wpg data (VISIBILITY.md)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such photo, or not made (yet)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_thumbnail(
    State(state): State<AppState>,
    p: Principal,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Response> {
    derivative(&state, &p, id, Derivative::Thumbnail).await
}

/// The preview (1280 px on the longest side, upright, no metadata) for review and the briefing.
#[utoipa::path(
    get, path = "/api/v1/photos/{id}/preview", operation_id = "getPhotoPreview", tag = "photos",
    params(("id" = Uuid, Path, description = "The photo's id")),
    responses(
        (status = 200, description = "JPEG", content_type = "image/jpeg"),
        (status = 403, description = "The photo's report is kept under the Wpg and this reader may not read Wpg data (VISIBILITY.md)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such photo, or not made (yet)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_preview(
    State(state): State<AppState>,
    p: Principal,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Response> {
    derivative(&state, &p, id, Derivative::Preview).await
}
