//! Resumable photo uploads: tus 1.0 (core, creation, creation-with-upload, expiration,
//! checksum with sha1 and sha256, termination) at `/api/v1/uploads`, keyed by the photo record's
//! id: the upload URL of photo `id` is `/api/v1/uploads/{id}` from the moment its record exists,
//! so a phone can ask HEAD before (or instead of) POST.
//!
//! The photo record comes first (REST or sync push: it says which report, which SHA-256, how many
//! bytes); creating an upload for an id the server does not know yet answers 409, which tus
//! clients retry (the phone's data sync brings the record). A record the sync refused, or whose
//! bytes were refused, answers 422, which they do not retry. When the bytes are already stored
//! (this id, or the same SHA-256 under another photo of the same team that this user may read),
//! HEAD answers `Upload-Offset` = `Upload-Length`: tus-js-client and tuspy then send nothing
//! (after a POST both clients PATCH from 0 whatever the answer said; see SYNC.md, "Photos").
//! Concatenation is not offered: one photo is one file with one SHA-256. Bytes are appended to a staging file and flushed to disk before the answer,
//! and whatever arrived before a dropped connection stays: the next HEAD reports it and the
//! phone resumes from there. The finished file is verified against the declared SHA-256 and
//! size, sniffed (the bytes decide the type, not a header), checked for size in pixels, and moved
//! into the evidence store; the derivative worker takes it from there.

use std::collections::{HashMap, HashSet};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::sync::Mutex;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use futures_util::StreamExt;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set};
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::sync::Notify;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::blob::BlobStore;
use super::entity::photo;
use super::imaging::{self, ImageFormat};
use super::store::{self, ServerChange};
use super::{DerivativeState, ExifSummary, UploadState};
use crate::app::AppState;
use crate::audit::Actor;
use crate::auth::{Action, Principal};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::ApiPath;

pub const TUS_VERSION: &str = "1.0.0";
pub const TUS_EXTENSIONS: &[&str] = &[
    "creation",
    "creation-with-upload",
    "expiration",
    "checksum",
    "termination",
];
/// The `Upload-Checksum` algorithms accepted (tus 1.0: a server with the checksum extension
/// must support sha1; tuspy's `upload_checksum=True` sends sha1).
pub const TUS_CHECKSUM_ALGORITHMS: &[&str] = &["sha1", "sha256"];

/// An `Upload-Checksum` algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChecksumAlgorithm {
    Sha1,
    Sha256,
}

impl ChecksumAlgorithm {
    pub fn parse(name: &str) -> Option<ChecksumAlgorithm> {
        if name.eq_ignore_ascii_case("sha1") {
            Some(ChecksumAlgorithm::Sha1)
        } else if name.eq_ignore_ascii_case("sha256") {
            Some(ChecksumAlgorithm::Sha256)
        } else {
            None
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ChecksumAlgorithm::Sha1 => "sha1",
            ChecksumAlgorithm::Sha256 => "sha256",
        }
    }

    /// Length of the digest in bytes.
    pub fn digest_len(self) -> usize {
        match self {
            ChecksumAlgorithm::Sha1 => 20,
            ChecksumAlgorithm::Sha256 => 32,
        }
    }

    /// The digest of `bytes` (what a client puts, base64-encoded, in `Upload-Checksum`).
    pub fn digest(self, bytes: &[u8]) -> Vec<u8> {
        let mut h = ChunkHasher::new(self);
        h.update(bytes);
        h.finish()
    }
}

/// The running digest of one PATCH body.
enum ChunkHasher {
    Sha1(sha1::Sha1),
    Sha256(Sha256),
}

impl ChunkHasher {
    fn new(a: ChecksumAlgorithm) -> ChunkHasher {
        match a {
            ChecksumAlgorithm::Sha1 => ChunkHasher::Sha1(<sha1::Sha1 as sha1::Digest>::new()),
            ChecksumAlgorithm::Sha256 => ChunkHasher::Sha256(Sha256::new()),
        }
    }

    fn update(&mut self, bytes: &[u8]) {
        match self {
            ChunkHasher::Sha1(h) => sha1::Digest::update(h, bytes),
            ChunkHasher::Sha256(h) => h.update(bytes),
        }
    }

    fn finish(self) -> Vec<u8> {
        match self {
            ChunkHasher::Sha1(h) => sha1::Digest::finalize(h).to_vec(),
            ChunkHasher::Sha256(h) => h.finalize().to_vec(),
        }
    }
}
/// Bytes of a file read for EXIF (JPEG keeps it in the first 64 KiB; PNG may keep it anywhere,
/// so PNGs are read whole, within the size limit).
const EXIF_HEAD: u64 = 256 * 1024;
/// A PATCH that sends nothing for this long is ended; what arrived is kept.
const IDLE: std::time::Duration = std::time::Duration::from_secs(60);
/// Once shutdown begins, uploads still receiving get this long before they are ended (what
/// arrived is kept and resumable): a stalled phone must not hold a draining server for `IDLE`,
/// past an orchestrator's grace period (10–30 s) and its SIGKILL.
pub const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(3);

/// What the upload routes share: the evidence store, the limits, and the state of uploads in
/// progress on this instance (a running hash, so a resumed upload is not read twice).
pub struct Photos {
    pub blobs: BlobStore,
    pub max_bytes: u64,
    pub limits: imaging::Limits,
    pub expiry: Duration,
    hashers: Mutex<HashMap<Uuid, (u64, Sha256)>>,
    busy: Mutex<HashSet<Uuid>>,
    /// Wakes the derivative worker when an original arrives.
    pub wake: Notify,
    /// When uploads still receiving are ended: set once shutdown begins ([`Photos::end_uploads`]).
    ending: tokio::sync::watch::Sender<Option<tokio::time::Instant>>,
    /// A fault point for the tests: when set, [`finish`] fails right after this step and
    /// leaves what a crash there would leave (the tests then start a server on the same data
    /// and check that the upload is taken up). Nothing outside the tests sets it.
    pub stop_after: Mutex<Option<FinishStep>>,
}

impl Photos {
    pub fn new(blobs: BlobStore, config: &crate::config::Config) -> Photos {
        Photos {
            blobs,
            max_bytes: config.photo_max_bytes,
            limits: imaging::Limits {
                max_pixels: config.photo_max_pixels,
                ..imaging::Limits::default()
            },
            expiry: Duration::hours(i64::from(config.upload_expiry_hours)),
            hashers: Mutex::new(HashMap::new()),
            busy: Mutex::new(HashSet::new()),
            wake: Notify::new(),
            ending: tokio::sync::watch::Sender::new(None),
            stop_after: Mutex::new(None),
        }
    }

    /// Shutdown has begun: uploads still receiving are ended `grace` from now, keeping what
    /// arrived (see [`receive`]).
    pub fn end_uploads(&self, grace: std::time::Duration) {
        let at = tokio::time::Instant::now() + grace;
        self.ending.send_if_modified(|e| {
            let first = e.is_none();
            if first {
                *e = Some(at);
            }
            first
        });
    }

    /// Resolves when uploads still receiving are to be ended; never before shutdown.
    async fn uploads_end(&self) {
        let mut rx = self.ending.subscribe();
        let at = match rx.wait_for(Option::is_some).await {
            Ok(at) => *at,
            Err(_) => None,
        };
        match at {
            Some(at) => tokio::time::sleep_until(at).await,
            None => std::future::pending().await,
        }
    }

    /// Fails the finish of an upload after `step` when a test asked for it
    /// ([`Photos::stop_after`]).
    fn step_done(&self, step: FinishStep) -> ApiResult<()> {
        match self.stop_after.lock() {
            Ok(s) if *s == Some(step) => Err(ApiError::internal(anyhow::anyhow!(
                "the finish of an upload stopped after {step:?} (test fault point)"
            ))),
            _ => Ok(()),
        }
    }

    fn take_hasher(&self, id: Uuid, offset: u64) -> Option<Sha256> {
        let mut h = self.hashers.lock().ok()?;
        match h.remove(&id) {
            Some((o, s)) if o == offset => Some(s),
            _ => None,
        }
    }

    fn keep_hasher(&self, id: Uuid, offset: u64, s: Sha256) {
        if let Ok(mut h) = self.hashers.lock() {
            h.insert(id, (offset, s));
        }
    }

    fn forget(&self, id: Uuid) {
        if let Ok(mut h) = self.hashers.lock() {
            h.remove(&id);
        }
    }
}

/// Holds an upload for one request; a second request for the same photo meanwhile gets 423.
struct Busy<'a> {
    photos: &'a Photos,
    id: Uuid,
}

impl<'a> Busy<'a> {
    fn take(photos: &'a Photos, id: Uuid) -> ApiResult<Busy<'a>> {
        let mut b = photos
            .busy
            .lock()
            .map_err(|_| ApiError::internal(anyhow::anyhow!("upload lock poisoned")))?;
        if !b.insert(id) {
            return Err(ApiError::Locked(format!(
                "another request is uploading photo {id}; retry when it ends"
            )));
        }
        Ok(Busy { photos, id })
    }
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        if let Ok(mut b) = self.photos.busy.lock() {
            b.remove(&self.id);
        }
    }
}

/// `Tus-Resumable`: the one tus version this server speaks.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub enum TusResumable {
    #[serde(rename = "1.0.0")]
    V1,
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(tus_options, tus_create))
        .routes(routes!(tus_head, tus_patch, tus_delete))
        .layer(axum::middleware::from_fn(tus_envelope))
}

/// Every tus answer carries `Tus-Resumable`. An answer given before the request's body was read
/// (an error, or "already complete") closes the connection, so the phone stops sending bytes
/// that nobody reads and does not reuse a connection the server is about to drop.
async fn tus_envelope(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let has_body = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v != "0")
        || req.headers().contains_key(header::TRANSFER_ENCODING);
    let finished = Arc::new(AtomicBool::new(false));
    let req = if has_body {
        let (parts, body) = req.into_parts();
        let flag = finished.clone();
        let tracked = futures_util::stream::unfold(
            (body.into_data_stream(), flag),
            |(mut s, flag)| async move {
                match s.next().await {
                    Some(item) => Some((item, (s, flag))),
                    None => {
                        flag.store(true, Ordering::SeqCst);
                        None
                    }
                }
            },
        );
        axum::extract::Request::from_parts(parts, Body::from_stream(tracked))
    } else {
        req
    };
    let mut res = next.run(req).await;
    res.headers_mut()
        .insert("tus-resumable", HeaderValue::from_static(TUS_VERSION));
    if has_body && !finished.load(Ordering::SeqCst) {
        res.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    res
}

fn header_str<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

fn require_tus(h: &HeaderMap) -> ApiResult<()> {
    match header_str(h, "tus-resumable") {
        Some(TUS_VERSION) => Ok(()),
        Some(other) => Err(ApiError::PreconditionFailed(format!(
            "this server speaks tus {TUS_VERSION}, not {other}"
        ))),
        None => Err(ApiError::PreconditionFailed(format!(
            "send Tus-Resumable: {TUS_VERSION}"
        ))),
    }
}

fn http_date(t: DateTime<Utc>) -> String {
    t.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

fn hv(s: impl ToString) -> HeaderValue {
    HeaderValue::from_str(&s.to_string()).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// `Upload-Metadata`: comma-separated `key base64(value)` pairs.
pub fn parse_metadata(raw: &str) -> ApiResult<HashMap<String, String>> {
    let mut out = HashMap::new();
    for pair in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let mut it = pair.splitn(2, ' ');
        let key = it.next().unwrap_or_default().to_string();
        let value = match it.next() {
            Some(v) => {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(v.trim())
                    .map_err(|_| {
                        ApiError::field(
                            format!("Upload-Metadata.{key}"),
                            "values are base64-encoded",
                        )
                    })?;
                String::from_utf8(bytes).map_err(|_| {
                    ApiError::field(format!("Upload-Metadata.{key}"), "values are UTF-8 text")
                })?
            }
            None => String::new(),
        };
        out.insert(key, value);
    }
    Ok(out)
}

/// Whether this principal may send the bytes of this photo: its author, or the team lead.
fn may_upload(p: &Principal, m: &photo::Model) -> ApiResult<()> {
    p.authorize(Action::CreateViolation)?;
    if m.created_by == p.user_id || p.may(Action::ReviewViolation) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "only the officer who took a photo, or the teamleider, uploads it".into(),
        ))
    }
}

async fn load_visible(state: &AppState, p: &Principal, id: Uuid) -> ApiResult<photo::Model> {
    photo::Entity::find_by_id(id)
        .one(&state.db.write)
        .await?
        .filter(|m| m.deleted_seq.is_none() && p.sees_team(m.team_id))
        .ok_or_else(|| ApiError::NotFound(format!("upload {id}")))
}

/// Bytes staged so far for this photo.
async fn staged_len(state: &AppState, id: Uuid) -> u64 {
    tokio::fs::metadata(state.photos.blobs.staging_path(id))
        .await
        .map(|m| m.len())
        .unwrap_or(0)
}

fn expired(m: &photo::Model, now: DateTime<Utc>) -> bool {
    m.upload_state == UploadState::Partial.as_str() && m.upload_expires_at.is_some_and(|t| t < now)
}

/// Drops an unfinished upload's bytes and puts the record back to pending.
pub(crate) async fn reset_upload(
    state: &AppState,
    actor: &Actor,
    id: Uuid,
    failure: Option<String>,
    now: DateTime<Utc>,
) -> ApiResult<photo::Model> {
    state.photos.forget(id);
    let path = state.photos.blobs.staging_path(id);
    if let Err(e) = tokio::fs::remove_file(&path).await
        && e.kind() != std::io::ErrorKind::NotFound
    {
        return Err(ApiError::internal(e));
    }
    let txn = crate::sync::begin_write(&state.db).await?;
    let next = if failure.is_some() {
        UploadState::Failed
    } else {
        UploadState::Pending
    };
    let m = store::server_update(&txn, actor, id, now, |cur, am| {
        am.upload_offset = Set(0);
        am.upload_expires_at = Set(None);
        let mut changed = vec![];
        if cur.upload_state != next.as_str() {
            am.upload_state = Set(next.as_str().into());
            changed.push("upload_state");
        }
        if cur.failure != failure {
            am.failure = Set(failure.clone());
            changed.push("failure");
        }
        let log = failure.clone().map(|f| ServerChange {
            action: "upload_refused",
            detail: json!({ "reason": f }),
        });
        (changed, log)
    })
    .await?;
    txn.commit().await?;
    Ok(m)
}

/// The tus capabilities of this server, and the photo limits.
#[utoipa::path(
    options, path = "/api/v1/uploads", operation_id = "describeUploads", tag = "photos",
    responses(
        (status = 204, description = "Tus-Version, Tus-Extension, Tus-Max-Size and Tus-Checksum-Algorithm headers; the same limits as JSON at GET /api/v1/photos/limits"),
    )
)]
pub async fn tus_options(State(state): State<AppState>, _p: Principal) -> Response {
    let mut res = StatusCode::NO_CONTENT.into_response();
    let h = res.headers_mut();
    h.insert("tus-version", HeaderValue::from_static(TUS_VERSION));
    h.insert("tus-extension", hv(TUS_EXTENSIONS.join(",")));
    h.insert("tus-max-size", hv(state.photos.max_bytes));
    h.insert(
        "tus-checksum-algorithm",
        hv(TUS_CHECKSUM_ALGORITHMS.join(",")),
    );
    res
}

/// Start (or find) the upload of a photo's bytes. The photo record must exist (push it first;
/// until it arrives this answers 409, which tus clients retry). `Upload-Metadata` carries
/// `photo_id` (required) and optionally `sha256` and `filetype`. `Upload-Length` must equal the
/// record's `size_bytes`. The upload's URL is always `/api/v1/uploads/{photo_id}`: a client that
/// knows it should HEAD it first, since after a POST tus-js-client and tuspy PATCH from 0
/// whatever this answer says. A photo whose bytes are already here (this id, or the same
/// SHA-256 under another photo of its team that this user may read) answers with
/// `Upload-Offset` equal to its length; a following PATCH is answered at once with that offset.
/// With `Content-Type: application/offset+octet-stream` the body is the first chunk
/// (creation-with-upload). A record the sync refused, or whose bytes were refused, answers 422
/// saying why (tus clients do not retry it). `Upload-Concat` (concatenation, tus-js-client's
/// `parallelUploads`) is refused with 400: a photo is one file with one SHA-256.
#[utoipa::path(
    post, path = "/api/v1/uploads", operation_id = "createUpload", tag = "photos",
    params(
        ("Tus-Resumable" = inline(TusResumable), Header, description = "The tus version: 1.0.0 (a missing or other version gets 412)"),
        ("Upload-Length" = u64, Header, description = "The file's size in bytes; at most Tus-Max-Size"),
        ("Upload-Metadata" = String, Header, description = "`photo_id <base64 uuid>[,sha256 <base64 hex>][,filetype <base64 mime>]`"),
        ("Upload-Checksum" = Option<String>, Header, description = "With a first chunk: `sha1 <base64 digest>` or `sha256 <base64 digest>` of it"),
    ),
    request_body(content = Vec<u8>, content_type = "application/offset+octet-stream", description = "Optional first chunk"),
    responses(
        (status = 201, description = "Location names the upload (`/api/v1/uploads/{photo_id}`); Upload-Offset says how much is stored (its length when the bytes are already here), Upload-Expires until when an unfinished upload is kept"),
        (status = 400, description = "Upload-Concat (concatenation is not offered), or a malformed Upload-Checksum", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The photo record has not arrived yet: retry", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "Tus-Resumable is missing or not 1.0.0", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Upload-Length over the limit", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The bytes are not an accepted image type", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Upload-Length or metadata disagree with the photo record; or the record was refused by the sync, or its bytes were refused (`detail` says why; not to be retried)", body = Problem, content_type = "application/problem+json"),
        (status = 423, description = "Another request is uploading this photo", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn tus_create(
    State(state): State<AppState>,
    p: Principal,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    require_tus(&headers)?;
    if headers.contains_key("upload-concat") {
        // Not retried by tus clients (a 4xx other than 409/423): parallelUploads stops here.
        return Err(ApiError::BadRequest {
            detail: "the concatenation extension is not offered: a photo is evidence as one \
                     file with one SHA-256, uploaded in order (resumable with HEAD); \
                     send it without parallelUploads"
                .into(),
            errors: vec![crate::error::FieldError::new(
                "Upload-Concat",
                "not supported (see Tus-Extension)",
            )],
        });
    }
    let length: u64 = header_str(&headers, "upload-length")
        .ok_or_else(|| {
            ApiError::field(
                "Upload-Length",
                "required (Upload-Defer-Length is not supported: the size is known)",
            )
        })?
        .trim()
        .parse()
        .map_err(|_| ApiError::field("Upload-Length", "a whole number of bytes"))?;
    if length > state.photos.max_bytes {
        return Err(ApiError::PayloadTooLarge(format!(
            "the photo is {length} bytes; the limit is {} bytes",
            state.photos.max_bytes
        )));
    }
    let meta = parse_metadata(header_str(&headers, "upload-metadata").unwrap_or_default())?;
    let raw_id = meta
        .get("photo_id")
        .ok_or_else(|| ApiError::field("Upload-Metadata.photo_id", "required: the photo's id"))?;
    let id: Uuid = raw_id
        .parse()
        .map_err(|_| ApiError::field("Upload-Metadata.photo_id", "a UUID"))?;
    // Another team's photo gets the answer of an unknown one: an id never tells that a record
    // exists where the caller cannot see it.
    let exists = photo::Entity::find_by_id(id)
        .one(&state.db.write)
        .await?
        .filter(|m| {
            crate::access::sees(
                &p,
                crate::access::Kind::Photo,
                &crate::access::Facts::of_team(m.team_id),
            )
        });
    if exists.is_none() {
        if let Some(why) = refused_record(&state, &p, id, raw_id).await? {
            return Err(ApiError::field(
                "Upload-Metadata.photo_id",
                format!(
                    "the photo record {id} was refused by the server ({why}); fix the record \
                     and sync it again, then upload (this answer is not retried)"
                ),
            ));
        }
        return Err(ApiError::Conflict {
            detail: format!(
                "photo {id} is not known yet: sync its record first (this answer is retried by tus clients)"
            ),
            existing: None,
        });
    }
    let m = load_visible(&state, &p, id).await?;
    may_upload(&p, &m)?;
    if m.upload_state == UploadState::Failed.as_str() {
        return Err(bytes_refused(&m));
    }
    if length as i64 != m.size_bytes {
        return Err(ApiError::field(
            "Upload-Length",
            format!(
                "is {length}; the photo record declares {} bytes",
                m.size_bytes
            ),
        ));
    }
    if let Some(sha) = meta.get("sha256")
        && !sha.eq_ignore_ascii_case(&m.sha256)
    {
        return Err(ApiError::field(
            "Upload-Metadata.sha256",
            "differs from the photo record's sha256",
        ));
    }
    let _busy = Busy::take(&state.photos, id)?;
    let now = Utc::now();
    let actor = p.actor();
    let mut m = resume_finish(&state, m, now).await?;
    if m.upload_state == UploadState::Failed.as_str() {
        return Err(bytes_refused(&m));
    }
    if expired(&m, now) {
        m = reset_upload(&state, &actor, id, None, now).await?;
    }
    if m.upload_state != UploadState::Complete.as_str()
        && let Some(done) = complete_from_twin(&state, &p, &m, now).await?
    {
        m = done;
    }
    let location = format!("/api/v1/uploads/{id}");
    if m.upload_state == UploadState::Complete.as_str() {
        let mut res = StatusCode::CREATED.into_response();
        res.headers_mut().insert(header::LOCATION, hv(&location));
        res.headers_mut().insert("upload-offset", hv(m.size_bytes));
        return Ok(res);
    }
    let offset = stored_offset(&state, &m, staged_len(&state, id).await).await?;
    let with_body = header_str(&headers, "content-type")
        .is_some_and(|c| c.starts_with("application/offset+octet-stream"));
    let (offset, expires) = if with_body && offset == 0 {
        let out = receive(&state, &actor, &m, 0, &headers, body).await?;
        (out.0, out.1)
    } else {
        let expires = now + state.photos.expiry;
        let txn = crate::sync::begin_write(&state.db).await?;
        store::server_update(&txn, &actor, id, now, |_, am| {
            am.upload_expires_at = Set(Some(expires));
            (vec![], None)
        })
        .await?;
        txn.commit().await?;
        (offset, Some(expires))
    };
    let mut res = StatusCode::CREATED.into_response();
    let h = res.headers_mut();
    h.insert(header::LOCATION, hv(&location));
    h.insert("upload-offset", hv(offset));
    if let Some(e) = expires {
        h.insert("upload-expires", hv(http_date(e)));
    }
    Ok(res)
}

/// The answer to creating the upload of a photo whose bytes were refused (422).
fn bytes_refused(m: &photo::Model) -> ApiError {
    let id = m.id;
    ApiError::field(
        "Upload-Metadata.photo_id",
        format!(
            "the bytes of photo {id} were refused ({}); the same file will be refused \
             again. To send other bytes for this record, DELETE /api/v1/uploads/{id} first \
             (this answer is not retried)",
            m.failure.as_deref().unwrap_or("no reason kept")
        ),
    )
}

/// How much of the photo is stored: `Upload-Offset` (resume from there) and `Upload-Length`.
/// Answers from the moment the photo record exists, before any POST. When the same bytes are
/// stored under another photo of its team that this user may read, the photo becomes complete
/// here and `Upload-Offset` equals `Upload-Length`: tus-js-client and tuspy then send nothing.
#[utoipa::path(
    head, path = "/api/v1/uploads/{id}", operation_id = "getUploadOffset", tag = "photos",
    params(
        ("id" = Uuid, Path, description = "The photo's id"),
        ("Tus-Resumable" = inline(TusResumable), Header, description = "The tus version: 1.0.0 (a missing or other version gets 412)"),
    ),
    responses(
        (status = 412, description = "Tus-Resumable is missing or not 1.0.0", body = Problem, content_type = "application/problem+json"),
        (status = 200, description = "Upload-Offset, Upload-Length, Upload-Expires; Upload-Offset = Upload-Length when the bytes are stored"),
        (status = 404, description = "No such photo in your scope (not synced yet: create the upload, which answers 409 until the record arrives)"),
        (status = 410, description = "The unfinished upload expired, or its bytes were refused (a POST then says why with 422)"),
    )
)]
pub async fn tus_head(
    State(state): State<AppState>,
    p: Principal,
    headers: HeaderMap,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Response> {
    require_tus(&headers)?;
    let m = load_visible(&state, &p, id).await?;
    let now = Utc::now();
    // A finish cut short is taken up here, so that a phone that resumes (HEAD first) sends
    // nothing again. Not while another request holds the upload (see `offset` below).
    let busy = Busy::take(&state.photos, id).ok();
    let m = match busy {
        Some(_) => resume_finish(&state, m, now).await?,
        None => m,
    };
    if m.upload_state == UploadState::Failed.as_str() {
        return Err(ApiError::Gone(format!(
            "the upload of photo {id} was refused ({}); create it again",
            m.failure.unwrap_or_default()
        )));
    }
    if expired(&m, now) {
        reset_upload(&state, &p.actor(), id, None, now).await?;
        return Err(ApiError::Gone(format!(
            "the unfinished upload of photo {id} expired; create it again"
        )));
    }
    let mut m = m;
    // Already stored under another photo this user may read: complete now, so a client that
    // resumes (HEAD first) sees Upload-Offset = Upload-Length and sends nothing. Only when no
    // other request is uploading this photo; otherwise the stored offset is the answer.
    if m.upload_state != UploadState::Complete.as_str()
        && may_upload(&p, &m).is_ok()
        && busy.is_some()
        && let Some(done) = complete_from_twin(&state, &p, &m, now).await?
    {
        m = done;
    }
    let staged = staged_len(&state, id).await;
    if busy.is_none() {
        // Another request holds the upload and may be finishing it now: the record as it is
        // after the staged file was looked at (see `stored_offset`).
        m = load_visible(&state, &p, id).await?;
    }
    let offset = stored_offset(&state, &m, staged).await?;
    drop(busy);
    let mut res = StatusCode::OK.into_response();
    let h = res.headers_mut();
    h.insert("upload-offset", hv(offset));
    h.insert("upload-length", hv(m.size_bytes));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(e) = m.upload_expires_at
        && m.upload_state != UploadState::Complete.as_str()
    {
        h.insert("upload-expires", hv(http_date(e)));
    }
    Ok(res)
}

/// Append bytes at `Upload-Offset` (which must equal the stored offset). Bytes that arrive
/// before a dropped connection are kept. With `Upload-Checksum: sha1 <base64>` or
/// `sha256 <base64>` the chunk is verified and dropped on mismatch (460). The last chunk completes the upload: the whole file
/// is verified against the record's SHA-256 and size, and checked as an image.
#[utoipa::path(
    patch, path = "/api/v1/uploads/{id}", operation_id = "appendUpload", tag = "photos",
    params(
        ("id" = Uuid, Path, description = "The photo's id"),
        ("Tus-Resumable" = inline(TusResumable), Header, description = "The tus version: 1.0.0 (a missing or other version gets 412)"),
        ("Upload-Offset" = u64, Header, description = "Where these bytes start"),
        ("Upload-Checksum" = Option<String>, Header, description = "`sha1 <base64 digest>` or `sha256 <base64 digest>` of this chunk (Tus-Checksum-Algorithm)"),
    ),
    request_body(content = Vec<u8>, content_type = "application/offset+octet-stream"),
    responses(
        (status = 412, description = "Tus-Resumable is missing or not 1.0.0", body = Problem, content_type = "application/problem+json"),
        (status = 204, description = "Stored; Upload-Offset is the new offset (the length at once when the photo is already complete)"),
        (status = 400, description = "Upload-Checksum names an algorithm other than sha1 or sha256, or its digest is malformed", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such upload", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Upload-Offset differs from the stored offset", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "The upload expired or was refused", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "More bytes than Upload-Length", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not application/offset+octet-stream, or the bytes are not an accepted image type", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The finished file does not match the record's SHA-256, or is not a usable image", body = Problem, content_type = "application/problem+json"),
        (status = 423, description = "Another request is uploading this photo", body = Problem, content_type = "application/problem+json"),
        (status = 460, description = "The chunk does not match Upload-Checksum", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn tus_patch(
    State(state): State<AppState>,
    p: Principal,
    headers: HeaderMap,
    ApiPath(id): ApiPath<Uuid>,
    body: Body,
) -> ApiResult<Response> {
    require_tus(&headers)?;
    if !header_str(&headers, "content-type")
        .is_some_and(|c| c.starts_with("application/offset+octet-stream"))
    {
        return Err(ApiError::UnsupportedMediaType(
            "send the bytes as application/offset+octet-stream".into(),
        ));
    }
    let offset: u64 = header_str(&headers, "upload-offset")
        .ok_or_else(|| ApiError::field("Upload-Offset", "required"))?
        .trim()
        .parse()
        .map_err(|_| ApiError::field("Upload-Offset", "a whole number of bytes"))?;
    let m = load_visible(&state, &p, id).await?;
    may_upload(&p, &m)?;
    let now = Utc::now();
    if m.upload_state == UploadState::Complete.as_str() {
        // Already stored (by this or an earlier request, or under the same hash): done.
        let mut res = StatusCode::NO_CONTENT.into_response();
        res.headers_mut().insert("upload-offset", hv(m.size_bytes));
        return Ok(res);
    }
    if m.upload_state == UploadState::Failed.as_str() {
        return Err(ApiError::Gone(format!(
            "the upload of photo {id} was refused ({}); create it again",
            m.failure.unwrap_or_default()
        )));
    }
    let _busy = Busy::take(&state.photos, id)?;
    // A finish cut short is taken up first: the bytes are here, none is sent again.
    let m = resume_finish(&state, m, now).await?;
    if m.upload_state == UploadState::Complete.as_str() {
        let mut res = StatusCode::NO_CONTENT.into_response();
        res.headers_mut().insert("upload-offset", hv(m.size_bytes));
        return Ok(res);
    }
    if m.upload_state == UploadState::Failed.as_str() {
        return Err(ApiError::Gone(format!(
            "the upload of photo {id} was refused ({}); create it again",
            m.failure.unwrap_or_default()
        )));
    }
    if expired(&m, now) {
        reset_upload(&state, &p.actor(), id, None, now).await?;
        return Err(ApiError::Gone(format!(
            "the unfinished upload of photo {id} expired; create it again"
        )));
    }
    let stored = staged_len(&state, id).await;
    if offset != stored {
        return Err(ApiError::Conflict {
            detail: format!(
                "Upload-Offset is {offset}, but {stored} bytes are stored; resume from {stored}"
            ),
            existing: None,
        });
    }
    let (new_offset, expires) = receive(&state, &p.actor(), &m, offset, &headers, body).await?;
    let mut res = StatusCode::NO_CONTENT.into_response();
    res.headers_mut().insert("upload-offset", hv(new_offset));
    if let Some(e) = expires {
        res.headers_mut().insert("upload-expires", hv(http_date(e)));
    }
    Ok(res)
}

/// Abandon an unfinished upload (its bytes are dropped; the record stays pending). A finished
/// original is evidence and is not removed here.
#[utoipa::path(
    delete, path = "/api/v1/uploads/{id}", operation_id = "deleteUpload", tag = "photos",
    params(
        ("id" = Uuid, Path, description = "The photo's id"),
        ("Tus-Resumable" = inline(TusResumable), Header, description = "The tus version: 1.0.0 (a missing or other version gets 412)"),
    ),
    responses(
        (status = 412, description = "Tus-Resumable is missing or not 1.0.0", body = Problem, content_type = "application/problem+json"),
        (status = 204, description = "The unfinished upload is gone"),
        (status = 404, description = "No such upload", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The upload is complete: the original is evidence", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn tus_delete(
    State(state): State<AppState>,
    p: Principal,
    headers: HeaderMap,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Response> {
    require_tus(&headers)?;
    let m = load_visible(&state, &p, id).await?;
    may_upload(&p, &m)?;
    if m.upload_state == UploadState::Complete.as_str() {
        return Err(ApiError::Conflict {
            detail: format!("photo {id} is stored as evidence; withdraw the photo record instead"),
            existing: None,
        });
    }
    let _busy = Busy::take(&state.photos, id)?;
    reset_upload(&state, &p.actor(), id, None, Utc::now()).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A chunk check from `Upload-Checksum`.
fn parse_checksum(h: &HeaderMap) -> ApiResult<Option<(ChecksumAlgorithm, Vec<u8>)>> {
    match h.get("upload-checksum") {
        None => Ok(None),
        Some(v) => {
            let v = v.to_str().map_err(|_| {
                ApiError::field("Upload-Checksum", "`<algorithm> <base64 digest>` in ASCII")
            })?;
            parse_checksum_value(v).map(Some)
        }
    }
}

/// `Upload-Checksum: <algorithm> <base64 digest>`: pure. An algorithm the server does not
/// support, or a digest that cannot be one, is a bad request (400), as tus 1.0 says; only a
/// well-formed digest that differs from the bytes is a mismatch (460).
pub fn parse_checksum_value(v: &str) -> ApiResult<(ChecksumAlgorithm, Vec<u8>)> {
    let mut it = v.trim().splitn(2, ' ');
    let name = it.next().unwrap_or_default();
    let bad = |detail: String, message: String| ApiError::BadRequest {
        detail,
        errors: vec![crate::error::FieldError::new("Upload-Checksum", message)],
    };
    let Some(algo) = ChecksumAlgorithm::parse(name) else {
        let supported = TUS_CHECKSUM_ALGORITHMS.join(", ");
        return Err(bad(
            format!(
                "checksum algorithm {:?} is not supported; use one of {supported}",
                name.chars().take(32).collect::<String>()
            ),
            format!("`<algorithm> <base64 digest>`, the algorithm one of {supported}"),
        ));
    };
    let digest = base64::engine::general_purpose::STANDARD
        .decode(it.next().unwrap_or_default().trim())
        .map_err(|_| {
            bad(
                "the Upload-Checksum digest is not base64".into(),
                "the digest is base64".into(),
            )
        })?;
    if digest.len() != algo.digest_len() {
        return Err(bad(
            format!(
                "a {} digest is {} bytes, this one is {}",
                algo.name(),
                algo.digest_len(),
                digest.len()
            ),
            format!(
                "the base64 of the {}-byte {} digest",
                algo.digest_len(),
                algo.name()
            ),
        ));
    }
    Ok((algo, digest))
}

/// What the writer thread reports.
struct Written {
    total: u64,
    hasher: Sha256,
    chunk_digest: Option<Vec<u8>>,
}

/// Receives one chunk into the staging file and, when it is the last, finishes the upload.
/// Returns the new offset and the expiry of the unfinished upload.
async fn receive(
    state: &AppState,
    actor: &Actor,
    m: &photo::Model,
    offset: u64,
    headers: &HeaderMap,
    body: Body,
) -> ApiResult<(u64, Option<DateTime<Utc>>)> {
    let id = m.id;
    let length = m.size_bytes as u64;
    let checksum = parse_checksum(headers)?;
    let remaining = length.saturating_sub(offset);
    if let Some(n) = header_str(headers, "content-length").and_then(|v| v.parse::<u64>().ok())
        && n > remaining
    {
        return Err(ApiError::PayloadTooLarge(format!(
            "{n} bytes sent at offset {offset}, but only {remaining} remain of Upload-Length {length}"
        )));
    }
    let path = state.photos.blobs.staging_path(id);
    let hasher = state.photos.take_hasher(id, offset);
    let (tx, rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(16);
    let writer_path = path.clone();
    let want_chunk = checksum.as_ref().map(|(a, _)| *a);
    let writer = tokio::task::spawn_blocking(move || {
        write_staged(writer_path, offset, hasher, want_chunk, rx)
    });

    // Read the body, at most `remaining` bytes, with an idle timeout, until shutdown's grace
    // ends (`Photos::end_uploads`); sniff the first bytes. A body cut off keeps what arrived.
    let mut stream = body.into_data_stream();
    let mut received: u64 = 0;
    let mut too_much = false;
    let mut cut_off = false;
    let mut head: Vec<u8> = Vec::new();
    let mut refused: Option<ApiError> = None;
    let ending = state.photos.uploads_end();
    tokio::pin!(ending);
    loop {
        let next = tokio::select! {
            n = tokio::time::timeout(IDLE, stream.next()) => n,
            () = &mut ending => {
                tracing::info!(photo = %id, received, "shutting down: an upload still receiving was ended; its bytes are kept");
                cut_off = true;
                break;
            }
        };
        let next = match next {
            Ok(n) => n,
            Err(_) => {
                cut_off = true;
                break;
            }
        };
        let chunk = match next {
            None => break,
            Some(Ok(c)) => c,
            Some(Err(_)) => {
                cut_off = true;
                break;
            }
        };
        let mut chunk = chunk;
        if received + chunk.len() as u64 > remaining {
            chunk.truncate((remaining - received) as usize);
            too_much = true;
        }
        if offset == 0 && head.len() < 32 {
            let take = (32 - head.len()).min(chunk.len());
            head.extend_from_slice(&chunk[..take]);
            if (head.len() >= 32 || received + chunk.len() as u64 == remaining)
                && let Err(e) = accepted_type(&head)
            {
                refused = Some(e);
                break;
            }
        }
        received += chunk.len() as u64;
        if !chunk.is_empty() && tx.send(chunk).await.is_err() {
            break;
        }
        if too_much {
            break;
        }
    }
    drop(tx);
    let written = writer
        .await
        .map_err(|e| ApiError::internal(anyhow::anyhow!("upload writer failed: {e}")))?
        .map_err(ApiError::internal)?;
    let now = Utc::now();

    if let Some(e) = refused {
        let reason = e.to_problem().detail;
        reset_upload(state, actor, id, Some(reason), now).await?;
        return Err(e);
    }
    if let (Some((algo, want)), Some(got)) = (&checksum, &written.chunk_digest)
        && want != got
    {
        // Drop the chunk: the phone sends it again.
        truncate(&path, offset).await?;
        return Err(ApiError::ChecksumMismatch(format!(
            "the chunk does not match its {} Upload-Checksum; it was dropped, send it again",
            algo.name()
        )));
    }
    if checksum.is_some() && cut_off {
        truncate(&path, offset).await?;
        return Err(ApiError::BadRequest {
            detail: "the connection dropped during a checksummed chunk; it was dropped".into(),
            errors: vec![],
        });
    }
    let total = written.total;
    if total < length {
        state.photos.keep_hasher(id, total, written.hasher);
        let expires = now + state.photos.expiry;
        let txn = crate::sync::begin_write(&state.db).await?;
        store::server_update(&txn, actor, id, now, |cur, am| {
            am.upload_offset = Set(total as i64);
            am.upload_expires_at = Set(Some(expires));
            let mut changed = vec![];
            if total > 0 && cur.upload_state == UploadState::Pending.as_str() {
                am.upload_state = Set(UploadState::Partial.as_str().into());
                changed.push("upload_state");
            }
            (changed, None)
        })
        .await?;
        txn.commit().await?;
        if too_much {
            return Err(ApiError::PayloadTooLarge(format!(
                "more bytes than Upload-Length {length}"
            )));
        }
        return Ok((total, Some(expires)));
    }
    finish(state, actor, m, hex::encode(written.hasher.finalize()), now).await?;
    if too_much {
        return Err(ApiError::PayloadTooLarge(format!(
            "more bytes than Upload-Length {length}; the first {length} were stored"
        )));
    }
    Ok((length, None))
}

async fn truncate(path: &std::path::Path, len: u64) -> ApiResult<()> {
    let f = tokio::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .await
        .map_err(ApiError::internal)?;
    f.set_len(len).await.map_err(ApiError::internal)?;
    f.sync_data().await.map_err(ApiError::internal)?;
    Ok(())
}

/// The writer thread: appends the chunks at `offset`, hashes them, and flushes to disk.
fn write_staged(
    path: PathBuf,
    offset: u64,
    hasher: Option<Sha256>,
    want_chunk: Option<ChecksumAlgorithm>,
    mut rx: tokio::sync::mpsc::Receiver<bytes::Bytes>,
) -> anyhow::Result<Written> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)?;
    // A resumed upload on an instance that did not see its start: hash what is stored.
    let mut hasher = match hasher {
        Some(h) => h,
        None => {
            let mut h = Sha256::new();
            let mut buf = vec![0u8; 1024 * 1024];
            let mut left = offset;
            file.seek(SeekFrom::Start(0))?;
            while left > 0 {
                let want = left.min(buf.len() as u64) as usize;
                let n = file.read(&mut buf[..want])?;
                if n == 0 {
                    break;
                }
                h.update(&buf[..n]);
                left -= n as u64;
            }
            h
        }
    };
    file.set_len(offset)?;
    file.seek(SeekFrom::Start(offset))?;
    let mut chunk_hasher = want_chunk.map(ChunkHasher::new);
    let mut total = offset;
    // Network reads arrive in small pieces; write in blocks of 1 MiB (fewer system calls).
    let mut block: Vec<u8> = Vec::with_capacity(1024 * 1024);
    while let Some(bytes) = rx.blocking_recv() {
        hasher.update(&bytes);
        if let Some(c) = chunk_hasher.as_mut() {
            c.update(&bytes);
        }
        total += bytes.len() as u64;
        if block.len() + bytes.len() > block.capacity() {
            file.write_all(&block)?;
            block.clear();
        }
        if bytes.len() >= block.capacity() {
            file.write_all(&bytes)?;
        } else {
            block.extend_from_slice(&bytes);
        }
    }
    file.write_all(&block)?;
    file.sync_data()?;
    Ok(Written {
        total,
        hasher,
        chunk_digest: chunk_hasher.map(ChunkHasher::finish),
    })
}

/// The bytes' own type decides; HEIC gets a message the app can act on.
fn accepted_type(head: &[u8]) -> ApiResult<ImageFormat> {
    match imaging::sniff(head) {
        Some(ImageFormat::Heif | ImageFormat::Avif) => Err(ApiError::UnsupportedMediaType(
            "HEIC/HEIF is not accepted: send the photo as JPEG (image/jpeg)".into(),
        )),
        Some(f) => Ok(f),
        None => Err(ApiError::UnsupportedMediaType(
            "the bytes are not a JPEG, PNG or WebP image".into(),
        )),
    }
}

fn format_name(f: ImageFormat) -> &'static str {
    match f {
        ImageFormat::Jpeg => "jpeg",
        ImageFormat::Png => "png",
        ImageFormat::Webp => "webp",
        ImageFormat::Heif => "heif",
        ImageFormat::Avif => "avif",
    }
}

/// The EXIF of an original as stored: capture time in UTC taken from the camera's offset, or
/// Europe/Amsterdam when the camera wrote none (the phones are in Velsen).
pub fn exif_summary(e: &imaging::ExifMeta) -> ExifSummary {
    use chrono::TimeZone;
    let taken_at_utc = e.taken_at.and_then(|naive| match e.offset {
        Some(off) => off
            .from_local_datetime(&naive)
            .single()
            .map(|t| t.with_timezone(&Utc)),
        None => chrono_tz::Europe::Amsterdam
            .from_local_datetime(&naive)
            .earliest()
            .map(|t| t.with_timezone(&Utc)),
    });
    ExifSummary {
        taken_at: e.taken_at.map(|t| match e.offset {
            Some(off) => format!("{}{}", t.format("%Y-%m-%dT%H:%M:%S"), off),
            None => t.format("%Y-%m-%dT%H:%M:%S").to_string(),
        }),
        taken_at_utc,
        lat: e.lat,
        lon: e.lon,
        orientation: e.orientation,
        make: e.make.clone(),
        model: e.model.clone(),
        error: e.error.clone(),
    }
}

/// The steps of [`finish`], named so that a test can stop it after one as a crash there would
/// ([`Photos::stop_after`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishStep {
    /// The staged file was verified as the photo's original.
    Verified,
    /// The record says that every byte arrived (`upload_offset = size_bytes`, still partial).
    Received,
    /// The original is in the evidence store; the staged file is gone.
    Stored,
    /// The record is complete.
    Completed,
}

/// Finishes an upload whose bytes have all arrived (`sha` is their SHA-256, hex). A crash may
/// cut it between any two steps without losing an acknowledged byte: every state it leaves
/// answers HEAD with the full length (see [`stored_offset`]), and [`resume_finish`] completes
/// it on the next HEAD, PATCH or POST of the upload, or when the server starts
/// ([`resume_finishes`]); nothing is sent again.
/// 1. Verified: the staged file is this photo's original (SHA-256, type, pixels, decoding
///    budget); a refusal resets the upload instead. A crash leaves the full staged file.
/// 2. Received: the record says that every byte arrived. This is what allows step 4 later
///    from the store alone: the record shows that this upload brought the bytes, which the
///    stored original alone does not (anyone who knows a hash may name it, see
///    [`may_take_twin`]).
/// 3. Stored: the staged file moves into the evidence store (or is dropped when the store has
///    these bytes already).
/// 4. Completed: the record is complete, with what its bytes told.
async fn finish(
    state: &AppState,
    actor: &Actor,
    m: &photo::Model,
    sha: String,
    now: DateTime<Utc>,
) -> ApiResult<()> {
    let id = m.id;
    state.photos.forget(id);
    if sha != m.sha256 {
        let reason = format!(
            "the bytes' SHA-256 is {sha}, the photo record declares {}; the bytes were dropped",
            m.sha256
        );
        reset_upload(state, actor, id, Some(reason.clone()), now).await?;
        return Err(ApiError::field("sha256", reason));
    }
    let path = state.photos.blobs.staging_path(id);
    let head_len = if m.mime == "image/png" || m.size_bytes as u64 <= EXIF_HEAD {
        m.size_bytes as u64
    } else {
        EXIF_HEAD
    };
    let head = {
        let p = path.clone();
        tokio::task::spawn_blocking(move || -> std::io::Result<Vec<u8>> {
            let mut f = std::fs::File::open(p)?;
            let mut buf = Vec::new();
            (&mut f).take(head_len).read_to_end(&mut buf)?;
            Ok(buf)
        })
        .await
        .map_err(|e| ApiError::internal(anyhow::anyhow!("{e}")))?
        .map_err(ApiError::internal)?
    };
    let facts = match inspect(state, m.size_bytes as u64, &head, Some(&path)).await? {
        Ok(f) => f,
        Err(r) => {
            reset_upload(state, actor, id, Some(r.reason), now).await?;
            return Err(r.error);
        }
    };
    state.photos.step_done(FinishStep::Verified)?;

    let txn = crate::sync::begin_write(&state.db).await?;
    store::server_update(&txn, actor, id, now, |_, am| {
        am.upload_offset = Set(m.size_bytes);
        // Received bytes do not expire: they are evidence on its way into the store.
        am.upload_expires_at = Set(None);
        (vec![], None)
    })
    .await?;
    txn.commit().await?;
    state.photos.step_done(FinishStep::Received)?;

    if state
        .photos
        .blobs
        .exists(&BlobStore::original_key(&sha))
        .await
        .map_err(ApiError::internal)?
    {
        tokio::fs::remove_file(&path).await.ok();
    } else {
        state
            .photos
            .blobs
            .commit_original(&path, &sha)
            .await
            .map_err(ApiError::internal)?;
    }
    state.photos.step_done(FinishStep::Stored)?;

    complete(state, actor, m, &facts, now).await?;
    state.photos.step_done(FinishStep::Completed)
}

/// Why bytes are refused as evidence: `reason` is kept as the record's `failure`, `error` is
/// the answer.
struct Refusal {
    reason: String,
    error: ApiError,
}

/// What an accepted original's bytes tell.
struct Inspected {
    format: ImageFormat,
    width: u32,
    height: u32,
    exif: ExifSummary,
}

/// Checks an original as evidence: the type its bytes sniff as, its size in pixels, and that
/// decoding it for the derivatives fits the memory budget. `head` is its first bytes (all of
/// them when `staged` is `None`); the staged file is read whole only when the head is not
/// enough. `Ok(Err(_))` is a refusal of the bytes; `Err(_)` a failure of the server.
async fn inspect(
    state: &AppState,
    size: u64,
    head: &[u8],
    staged: Option<&std::path::Path>,
) -> ApiResult<Result<Inspected, Refusal>> {
    let refuse = |reason: String| Refusal {
        error: ApiError::field("file", reason.clone()),
        reason,
    };
    let read_all = || async {
        match staged {
            Some(p) => tokio::fs::read(p).await.map_err(ApiError::internal),
            None => Ok(head.to_vec()),
        }
    };
    let partial_head = (head.len() as u64) < size && staged.is_some();
    let format = match accepted_type(head) {
        Ok(f) => f,
        Err(e) => {
            return Ok(Err(Refusal {
                reason: e.to_problem().detail,
                error: e,
            }));
        }
    };
    // A PNG's size sits in its header; a JPEG's in a frame header that may follow a large EXIF
    // block: read more if the head was not enough.
    let probe = match imaging::probe(head) {
        Ok(p) => Ok(p),
        Err(_) if partial_head => imaging::probe(&read_all().await?),
        Err(e) => Err(e),
    };
    let probe = match probe {
        Ok(p) => p,
        Err(e) => return Ok(Err(refuse(format!("not a readable image: {e}")))),
    };
    let pixels = u64::from(probe.width) * u64::from(probe.height);
    if pixels > state.photos.limits.max_pixels {
        return Ok(Err(refuse(format!(
            "the image claims {}×{} pixels; the limit is {} pixels",
            probe.width, probe.height, state.photos.limits.max_pixels
        ))));
    }
    // Decoding it for the derivatives must fit the memory budget (`imaging::plan`, as the
    // worker will): refused here, naming the limit, rather than failed later by the worker.
    // Formats the server stores but does not derive (HEIF, AVIF) pass.
    let limits = crate::photos::worker::limits(state);
    let planned = match imaging::plan(head, &limits) {
        Err(imaging::ImageError::Corrupt(_) | imaging::ImageError::NotAnImage) if partial_head => {
            imaging::plan(&read_all().await?, &limits).map(|_| ())
        }
        other => other.map(|_| ()),
    };
    if let Err(e @ imaging::ImageError::OverBudget { .. }) = planned {
        return Ok(Err(refuse(e.to_string())));
    }
    Ok(Ok(Inspected {
        format,
        width: probe.width,
        height: probe.height,
        exif: exif_summary(&imaging::read_exif(head)),
    }))
}

/// Step 4 of [`finish`]: the record is complete, with what its bytes told. A record that is
/// complete already (another instance took up the same finish) is left as it is.
async fn complete(
    state: &AppState,
    actor: &Actor,
    m: &photo::Model,
    facts: &Inspected,
    now: DateTime<Utc>,
) -> ApiResult<()> {
    let format = format_name(facts.format);
    let txn = crate::sync::begin_write(&state.db).await?;
    store::server_update(&txn, actor, m.id, now, |cur, am| {
        if cur.upload_state == UploadState::Complete.as_str() {
            return (vec![], None);
        }
        am.upload_state = Set(UploadState::Complete.as_str().into());
        am.upload_offset = Set(m.size_bytes);
        am.upload_expires_at = Set(None);
        am.uploaded_at = Set(Some(now));
        am.failure = Set(None);
        am.format = Set(Some(format.into()));
        am.width = Set(i32::try_from(facts.width).ok());
        am.height = Set(i32::try_from(facts.height).ok());
        am.exif = Set(serde_json::to_value(&facts.exif).ok());
        am.derivative_state = Set(DerivativeState::Pending.as_str().into());
        am.derive_attempts = Set(0);
        am.derive_lease_until = Set(None);
        (
            store::SERVER_ONLY.to_vec(),
            Some(ServerChange {
                action: "upload",
                detail: json!({ "sha256": m.sha256, "bytes": m.size_bytes, "format": format }),
            }),
        )
    })
    .await?;
    txn.commit().await?;
    state.photos.wake.notify_one();
    Ok(())
}

/// Whether [`finish`] recorded every byte of this unfinished upload received (step 2).
fn marked_received(m: &photo::Model) -> bool {
    m.upload_offset == m.size_bytes
        && matches!(
            UploadState::parse(&m.upload_state),
            Some(UploadState::Pending | UploadState::Partial)
        )
}

/// The offset HEAD and POST answer, from the record and from `staged`, the length of its
/// staged file looked at *before* the record was read: the length once every byte is here
/// (complete; fully staged; or received with the original in the store, which [`finish`] may
/// be completing right now), else what is staged. Whichever step of a finish running beside
/// it the two looks fall between, one of them shows every byte (step 2 is committed before
/// step 3 moves the file).
async fn stored_offset(state: &AppState, m: &photo::Model, staged: u64) -> ApiResult<u64> {
    let size = m.size_bytes as u64;
    if m.upload_state == UploadState::Complete.as_str() || staged >= size {
        return Ok(size);
    }
    if marked_received(m)
        && state
            .photos
            .blobs
            .exists(&BlobStore::original_key(&m.sha256))
            .await
            .map_err(ApiError::internal)?
    {
        return Ok(size);
    }
    Ok(staged)
}

/// The SHA-256 of a staged file, hex.
async fn hash_file(path: PathBuf) -> ApiResult<String> {
    tokio::task::spawn_blocking(move || -> std::io::Result<String> {
        let mut f = std::fs::File::open(path)?;
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 1024 * 1024];
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        Ok(hex::encode(h.finalize()))
    })
    .await
    .map_err(|e| ApiError::internal(anyhow::anyhow!("{e}")))?
    .map_err(ApiError::internal)
}

/// Takes up a [`finish`] that was cut short (a crash, a failed write to the store or the
/// database), so that the phone sends nothing again: a full staged file is verified and stored
/// again (steps 1–4); a record whose bytes were received and whose original is in the store
/// (its SHA-256 checked again) is completed (step 4). Anything else is left as it is. The
/// caller holds the upload ([`Busy`]). Returns the record as it is afterwards; bytes refused
/// on the way leave it failed, as [`finish`] would.
async fn resume_finish(
    state: &AppState,
    m: photo::Model,
    now: DateTime<Utc>,
) -> ApiResult<photo::Model> {
    // The server completes what an earlier request delivered: not the act of whoever asks.
    let actor = &Actor::system("upload-resume");
    if !matches!(
        UploadState::parse(&m.upload_state),
        Some(UploadState::Pending | UploadState::Partial)
    ) {
        return Ok(m);
    }
    let size = m.size_bytes as u64;
    let path = state.photos.blobs.staging_path(m.id);
    let result = if staged_len(state, m.id).await == size {
        tracing::info!(photo = %m.id, "taking up the finish of an upload whose bytes are staged");
        let sha = hash_file(path).await?;
        finish(state, actor, &m, sha, now).await
    } else if marked_received(&m) {
        let key = BlobStore::original_key(&m.sha256);
        if !state
            .photos
            .blobs
            .exists(&key)
            .await
            .map_err(ApiError::internal)?
        {
            // Staged on another instance that stopped before step 3, or lost: HEAD answers what
            // is staged here, and the phone sends the bytes again.
            tracing::warn!(photo = %m.id, "an upload's bytes were received, but neither its staged file nor its original is here");
            return Ok(m);
        }
        let bytes = state
            .photos
            .blobs
            .read(&key)
            .await
            .map_err(ApiError::internal)?;
        if hex::encode(Sha256::digest(&bytes)) != m.sha256 {
            tracing::error!(photo = %m.id, key = %key, "the stored original does not match its hash; the upload is left unfinished");
            return Ok(m);
        }
        tracing::info!(photo = %m.id, "completing an upload whose original was stored");
        match inspect(state, size, &bytes, None).await? {
            Ok(facts) => complete(state, actor, &m, &facts, now).await,
            Err(r) => reset_upload(state, actor, m.id, Some(r.reason), now)
                .await
                .map(|_| ()),
        }
    } else {
        return Ok(m);
    };
    match result {
        Ok(()) => {}
        // Refused bytes: the record says so (failed), which is the answer.
        Err(e) if e.status().is_client_error() => {}
        Err(e) => return Err(e),
    }
    photo::Entity::find_by_id(m.id)
        .one(&state.db.write)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("upload {}", m.id)))
}

/// At start: takes up the finishes that a stop cut short (see [`finish`]), of the uploads
/// staged on this instance and of the records whose bytes were received, so their derivatives
/// are made without waiting for the phone. Each is taken up as a HEAD would.
pub async fn resume_finishes(state: &AppState) -> anyhow::Result<usize> {
    use sea_orm::sea_query::{Expr, ExprTrait};
    let mut ids: Vec<Uuid> = photo::Entity::find()
        .select_only()
        .column(photo::Column::Id)
        .filter(
            photo::Column::UploadState
                .is_in([UploadState::Pending.as_str(), UploadState::Partial.as_str()]),
        )
        .filter(Expr::col(photo::Column::UploadOffset).equals(photo::Column::SizeBytes))
        .into_tuple()
        .all(&state.db.read)
        .await?;
    let mut dir = tokio::fs::read_dir(state.photos.blobs.staging_dir()).await?;
    while let Some(e) = dir.next_entry().await? {
        if let Some(id) = e.file_name().to_str().and_then(|n| n.parse::<Uuid>().ok())
            && !ids.contains(&id)
        {
            ids.push(id);
        }
    }
    let mut done = 0;
    for id in ids {
        let Ok(_busy) = Busy::take(&state.photos, id) else {
            continue;
        };
        let Some(m) = photo::Entity::find_by_id(id).one(&state.db.write).await? else {
            continue;
        };
        if m.upload_state == UploadState::Complete.as_str() {
            continue;
        }
        match resume_finish(state, m, Utc::now()).await {
            Ok(m) if m.upload_state == UploadState::Complete.as_str() => done += 1,
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(photo = %id, error = ?e, "taking up an unfinished upload failed")
            }
        }
    }
    Ok(done)
}

/// What decides whether a stored twin's bytes may complete a photo without a byte sent.
#[derive(Debug, Clone, Copy)]
pub struct TwinFacts {
    /// The team of the photo being uploaded.
    pub photo_team: Option<Uuid>,
    /// The team of the complete photo with the same SHA-256 and size.
    pub twin_team: Option<Uuid>,
    pub twin_created_by: Uuid,
    /// The principal is on the twin's (live) report, or leads it.
    pub on_twin_report: bool,
    /// The twin's report is kept under the Wpg.
    pub twin_report_wpg: bool,
}

/// Whether "already stored" may be answered from a twin: pure. Storing one copy of identical
/// bytes is invisible; answering "complete" without receiving them tells the sender that these
/// bytes exist, so that is done only within the photo's own team and for a twin the same user
/// may already read (their own photo, or one of a report they are on or lead, Wpg only for
/// those who read Wpg). Otherwise the bytes are sent and stored once (issue 14, item 4).
pub fn may_take_twin(p: &Principal, f: &TwinFacts) -> bool {
    let same_team =
        f.twin_team.is_some() && f.twin_team == f.photo_team && p.sees_team(f.twin_team);
    // The bytes themselves: what the access rules let this principal read of the twin.
    let reads_bytes = crate::access::decide(
        p,
        crate::access::Kind::Photo,
        &crate::access::Facts::new(f.twin_team, f.twin_report_wpg),
    ) == crate::access::Sight::Full;
    same_team && reads_bytes && (f.twin_created_by == p.user_id || f.on_twin_report)
}

/// A complete photo with these bytes that this principal may take as already stored.
async fn readable_twin(
    state: &AppState,
    p: &Principal,
    m: &photo::Model,
) -> ApiResult<Option<photo::Model>> {
    let Some(team) = m.team_id else {
        return Ok(None);
    };
    let candidates = photo::Entity::find()
        .filter(photo::Column::Sha256.eq(m.sha256.as_str()))
        .filter(photo::Column::SizeBytes.eq(m.size_bytes))
        .filter(photo::Column::UploadState.eq(UploadState::Complete.as_str()))
        .filter(photo::Column::DeletedSeq.is_null())
        .filter(photo::Column::TeamId.eq(team))
        .filter(photo::Column::Id.ne(m.id))
        .order_by_asc(photo::Column::CreatedAt)
        .limit(16)
        .all(&state.db.write)
        .await?;
    for twin in candidates {
        let report = match twin.violation_id {
            Some(v) => crate::violations::entity::violation::Entity::find_by_id(v)
                .one(&state.db.write)
                .await?
                .filter(|r| r.deleted_seq.is_none()),
            None => None,
        };
        let facts = TwinFacts {
            photo_team: m.team_id,
            twin_team: twin.team_id,
            twin_created_by: twin.created_by,
            on_twin_report: report
                .as_ref()
                .is_some_and(|r| store::may_edit_report(p, r)),
            twin_report_wpg: report.as_ref().is_some_and(|r| r.privacy_regime == "wpg"),
        };
        if may_take_twin(p, &facts) {
            return Ok(Some(twin));
        }
    }
    Ok(None)
}

/// Dedupe by hash: when a photo with the same SHA-256 and size is complete and this principal
/// may take it (see [`may_take_twin`]), this one is complete too, with no byte sent. The caller
/// holds the upload ([`Busy`]).
async fn complete_from_twin(
    state: &AppState,
    p: &Principal,
    m: &photo::Model,
    now: DateTime<Utc>,
) -> ApiResult<Option<photo::Model>> {
    let Some(twin) = readable_twin(state, p, m).await? else {
        return Ok(None);
    };
    if !state
        .photos
        .blobs
        .exists(&BlobStore::original_key(&twin.sha256))
        .await
        .map_err(ApiError::internal)?
    {
        return Ok(None);
    }
    state.photos.forget(m.id);
    tokio::fs::remove_file(state.photos.blobs.staging_path(m.id))
        .await
        .ok();
    let txn = crate::sync::begin_write(&state.db).await?;
    let done = store::server_update(&txn, &p.actor(), m.id, now, |_, am| {
        store::take_from_twin(am, &twin, now);
        (
            store::SERVER_ONLY.to_vec(),
            Some(ServerChange {
                action: "upload",
                detail: json!({ "sha256": twin.sha256, "deduplicated_from": twin.id }),
            }),
        )
    })
    .await?;
    txn.commit().await?;
    state.photos.wake.notify_one();
    Ok(Some(done))
}

/// Why the sync refused the record of this photo, when it did and the principal may hear it
/// (the refusal is kept as a `rejected` conflict of the phone's team).
async fn refused_record(
    state: &AppState,
    p: &Principal,
    id: Uuid,
    raw_id: &str,
) -> ApiResult<Option<String>> {
    use crate::sync::entities::sync_conflict;
    let canonical = id.to_string();
    let rows = sync_conflict::Entity::find()
        .filter(sync_conflict::Column::TableName.eq(store::TABLE))
        .filter(sync_conflict::Column::Kind.eq("rejected"))
        .filter(sync_conflict::Column::RecordId.is_in([canonical.as_str(), raw_id]))
        .order_by_desc(sync_conflict::Column::CreatedAt)
        .limit(8)
        .all(&state.db.write)
        .await?;
    Ok(rows
        .into_iter()
        .find(|c| {
            p.sees_team(c.team_id)
                && (c.user_id == Some(p.user_id) || p.may(Action::ReviewViolation))
        })
        .map(|c| {
            let why = c.detail.unwrap_or_else(|| "no reason kept".into());
            why.chars().take(300).collect()
        }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_pairs_are_base64() {
        let m = parse_metadata("photo_id NTVhYg==,filename Zm9vLmpwZw==,empty").unwrap();
        assert_eq!(m["photo_id"], "55ab");
        assert_eq!(m["filename"], "foo.jpg");
        assert_eq!(m["empty"], "");
        assert!(parse_metadata("photo_id !!!").is_err());
    }

    #[test]
    fn checksums_are_sha1_or_sha256_with_a_digest_of_the_right_length() {
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        // The FIPS 180 test vectors for "abc".
        let sha1_abc = ChecksumAlgorithm::Sha1.digest(b"abc");
        assert_eq!(
            hex::encode(&sha1_abc),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        let sha256_abc = ChecksumAlgorithm::Sha256.digest(b"abc");
        assert_eq!(
            hex::encode(&sha256_abc),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            parse_checksum_value(&format!("sha1 {}", b64(&sha1_abc))).unwrap(),
            (ChecksumAlgorithm::Sha1, sha1_abc.clone())
        );
        assert_eq!(
            parse_checksum_value(&format!("SHA256 {}", b64(&sha256_abc))).unwrap(),
            (ChecksumAlgorithm::Sha256, sha256_abc.clone())
        );
        // Unknown algorithm, not base64, a digest of the other algorithm's length: 400 naming
        // the header, never a mismatch.
        for bad in [
            format!("md5 {}", b64(&[0; 16])),
            "sha1 !!!".to_string(),
            format!("sha1 {}", b64(&sha256_abc)),
            format!("sha256 {}", b64(&sha1_abc)),
            "sha256".to_string(),
            String::new(),
        ] {
            let e = parse_checksum_value(&bad).unwrap_err();
            assert_eq!(e.status().as_u16(), 400, "{bad}");
            assert_eq!(e.to_problem().errors[0].field, "Upload-Checksum", "{bad}");
        }
        assert_eq!(TUS_CHECKSUM_ALGORITHMS, ["sha1", "sha256"]);
    }

    #[test]
    fn a_twin_completes_a_photo_only_within_the_team_and_what_the_user_reads() {
        use crate::auth::Role;
        let team_a = Uuid::new_v4();
        let team_b = Uuid::new_v4();
        let me = Uuid::new_v4();
        let someone = Uuid::new_v4();
        let who = |role: Role, team: Option<Uuid>, wpg: bool| Principal {
            user_id: me,
            username: "x".into(),
            role,
            team_id: team,
            wpg_authorised: wpg,
            device_id: "d".into(),
            token_id: Uuid::nil(),
            seen_seq: 0,
        };
        let facts = |twin_team, creator, on_report, wpg| TwinFacts {
            photo_team: Some(team_a),
            twin_team,
            twin_created_by: creator,
            on_twin_report: on_report,
            twin_report_wpg: wpg,
        };
        let officer = who(Role::Handhaver, Some(team_a), false);
        // My own photo, or one of a report I am on: yes.
        assert!(may_take_twin(
            &officer,
            &facts(Some(team_a), me, false, false)
        ));
        assert!(may_take_twin(
            &officer,
            &facts(Some(team_a), someone, true, true)
        ));
        // Someone else's photo of a report I am not on: no, though it is my team.
        assert!(!may_take_twin(
            &officer,
            &facts(Some(team_a), someone, false, false)
        ));
        // Another team's, even my "own" (moved teams) or a report I am on: never.
        assert!(!may_take_twin(
            &officer,
            &facts(Some(team_b), me, true, false)
        ));
        assert!(!may_take_twin(&officer, &facts(None, me, true, false)));
        let other_team = who(Role::Handhaver, Some(team_b), false);
        assert!(!may_take_twin(
            &other_team,
            &facts(Some(team_a), me, true, false)
        ));
        // A lead without the Wpg flag does not get a Wpg report's photo this way.
        let lead = who(Role::Teamleider, Some(team_a), false);
        assert!(may_take_twin(
            &lead,
            &facts(Some(team_a), someone, true, false)
        ));
        assert!(!may_take_twin(
            &lead,
            &facts(Some(team_a), someone, true, true)
        ));
        let wpg_lead = who(Role::Teamleider, Some(team_a), true);
        assert!(may_take_twin(
            &wpg_lead,
            &facts(Some(team_a), someone, true, true)
        ));
        // The beheerder sees every team but the twin must still be of the photo's team.
        let admin = who(Role::Beheerder, None, false);
        assert!(!may_take_twin(
            &admin,
            &facts(Some(team_b), someone, true, false)
        ));
    }

    #[test]
    fn http_dates_are_imf_fixdate() {
        use chrono::TimeZone;
        let t = Utc.with_ymd_and_hms(2026, 11, 26, 9, 5, 0).unwrap();
        assert_eq!(http_date(t), "Thu, 26 Nov 2026 09:05:00 GMT");
    }
}
