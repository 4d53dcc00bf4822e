//! The one write path for photo records, and the queries that read them.
//!
//! A phone's create (REST or sync push), the upload handler's state changes and the derivative
//! worker's results all go through here: each write validates, writes the row, its audit line,
//! its history and its sync stamp in the caller's transaction.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set,
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::entity::photo;
use super::{
    ACCEPTED_TYPES, DerivativeState, ExifSummary, NewPhoto, PhotoView, UploadState, plausibility,
};
use crate::audit::{self, Actor, Entry};
use crate::auth::{Action, Principal};
use crate::db::Db;
use crate::error::{ApiError, ApiResult, FieldError};
use crate::sync::{self, Op};
use crate::violations::entity::violation;

/// The table name the sync engine and the audit log know photos by.
pub const TABLE: &str = "photos";

pub enum Created {
    New(photo::Model),
    /// The same id and content were sent before: a retry.
    Existing(photo::Model),
}

/// The rules of a new photo record: pure, every broken rule named.
pub fn check_new(p: &NewPhoto, max_bytes: u64) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if p.sha256.len() != 64 || !p.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
        errs.push(FieldError::new(
            "sha256",
            "the SHA-256 of the file as 64 hexadecimal characters",
        ));
    }
    if p.size_bytes <= 0 {
        errs.push(FieldError::new("size_bytes", "must be more than 0"));
    } else if p.size_bytes as u64 > max_bytes {
        errs.push(FieldError::new(
            "size_bytes",
            format!(
                "the photo is {} bytes; the limit is {max_bytes} bytes (GET /api/v1/photos/limits)",
                p.size_bytes
            ),
        ));
    }
    let mime = p.mime.to_ascii_lowercase();
    if mime.contains("heic") || mime.contains("heif") {
        errs.push(FieldError::new(
            "mime",
            "HEIC is not accepted: send the photo as JPEG (image/jpeg)",
        ));
    } else if !ACCEPTED_TYPES.contains(&mime.as_str()) {
        errs.push(FieldError::new(
            "mime",
            format!("one of {}", ACCEPTED_TYPES.join(", ")),
        ));
    }
    match (p.lat, p.lon) {
        (Some(lat), Some(lon)) => {
            if !(-90.0..=90.0).contains(&lat) {
                errs.push(FieldError::new("lat", "must be between -90 and 90"));
            }
            if !(-180.0..=180.0).contains(&lon) {
                errs.push(FieldError::new("lon", "must be between -180 and 180"));
            }
        }
        (None, None) => {}
        _ => errs.push(FieldError::new("lat", "lat and lon come together")),
    }
    if let Some(a) = p.accuracy_m
        && !(a.is_finite() && a >= 0.0)
    {
        errs.push(FieldError::new("accuracy_m", "must be 0 or more"));
    }
    errs
}

fn normalise(mut p: NewPhoto) -> NewPhoto {
    p.sha256 = p.sha256.to_ascii_lowercase();
    p.mime = p.mime.to_ascii_lowercase();
    p.captured_at = p.captured_at.map(|t| {
        use chrono::DurationRound;
        t.duration_trunc(chrono::Duration::milliseconds(1))
            .unwrap_or(t)
    });
    p
}

fn create_hash(p: &NewPhoto) -> String {
    let canonical = serde_json::to_vec(p).unwrap_or_default();
    hex::encode(Sha256::digest(&canonical))
}

/// Whether the principal may attach photos to (and read the photos of) this report.
pub(crate) fn may_edit_report(p: &Principal, r: &violation::Model) -> bool {
    if p.may(Action::ReviewViolation) || r.created_by == p.user_id {
        return true;
    }
    serde_json::from_value::<Vec<Uuid>>(r.officer_ids.clone())
        .unwrap_or_default()
        .contains(&p.user_id)
}

/// Creates a photo record in its own transaction.
pub async fn create(
    db: &Db,
    p: &Principal,
    input: NewPhoto,
    max_bytes: u64,
    now: DateTime<Utc>,
) -> ApiResult<Created> {
    let txn = crate::sync::begin_write(db).await?;
    let out = create_in(&txn, p, input, max_bytes, now).await?;
    txn.commit().await?;
    Ok(out)
}

/// Creates a photo record inside the caller's transaction. It starts pending, whatever is
/// stored: knowing a hash is never a way to read bytes. Its upload completes it from stored
/// bytes only where the uploader may already read them (`tus::may_take_twin`).
pub async fn create_in(
    txn: &DatabaseTransaction,
    p: &Principal,
    input: NewPhoto,
    max_bytes: u64,
    now: DateTime<Utc>,
) -> ApiResult<Created> {
    p.authorize(Action::CreateViolation)?;
    let errs = check_new(&input, max_bytes);
    if !errs.is_empty() {
        return Err(ApiError::Validation(errs));
    }
    let input = normalise(input);
    let hash = create_hash(&input);
    if let Some(existing) = photo::Entity::find_by_id(input.id).one(txn).await? {
        if existing.create_hash == hash && p.sees_team(existing.team_id) {
            return Ok(Created::Existing(existing));
        }
        return Err(ApiError::Conflict {
            detail: format!("photo {} already exists with other content", input.id),
            existing: Some(format!("/api/v1/photos/{}", input.id)),
        });
    }
    let report = violation::Entity::find_by_id(input.violation_id)
        .one(txn)
        .await?
        .filter(|r| crate::violations::store::in_use(p, r))
        .ok_or_else(|| ApiError::field("violation_id", "no such report in your scope"))?;
    if !may_edit_report(p, &report) {
        return Err(ApiError::Forbidden(
            "only the officers on a report and their teamleider add photos to it".into(),
        ));
    }
    let mut fields: Vec<&'static str> = FIELDS.to_vec();
    fields.retain(|f| !SERVER_ONLY.contains(f));
    let seq = stamp_one(
        txn,
        input.id,
        Op::Create,
        fields.clone(),
        p.device_id.as_str(),
        now,
    )
    .await?;
    let mut field_revs = serde_json::Map::new();
    for f in FIELDS {
        field_revs.insert(f.to_string(), json!(seq));
    }
    let am = photo::ActiveModel {
        id: Set(input.id),
        violation_id: Set(Some(input.violation_id)),
        observation_id: Set(None),
        team_id: Set(report.team_id),
        sha256: Set(input.sha256.clone()),
        size_bytes: Set(input.size_bytes),
        mime: Set(input.mime.clone()),
        captured_at: Set(input.captured_at),
        lat: Set(input.lat),
        lon: Set(input.lon),
        accuracy_m: Set(input.accuracy_m),
        upload_state: Set(UploadState::Pending.as_str().into()),
        upload_offset: Set(0),
        upload_expires_at: Set(None),
        uploaded_at: Set(None),
        format: Set(None),
        width: Set(None),
        height: Set(None),
        exif: Set(None),
        derivative_state: Set(DerivativeState::None.as_str().into()),
        derivative_error: Set(None),
        derive_attempts: Set(0),
        derive_lease_until: Set(None),
        failure: Set(None),
        created_by: Set(p.user_id),
        created_at: Set(now),
        updated_at: Set(now),
        create_hash: Set(hash),
        server_rev: Set(seq),
        field_revs: Set(Value::Object(field_revs)),
        deleted_seq: Set(None),
        last_device_id: Set(Some(p.device_id.clone())),
        created_seq: Set(Some(seq)),
        created_device: Set(Some(p.device_id.clone())),
    };
    audit::record(
        txn,
        &p.actor(),
        Entry::new("create", TABLE, input.id).detail(json!({
            "violation_id": input.violation_id,
            "sha256": input.sha256,
        })),
        now,
    )
    .await?;
    let m = am.insert(txn).await?;
    Ok(Created::New(m))
}

/// Makes a photo complete with what its twin's bytes told (type, size, EXIF, derivatives, which
/// are stored under the same hash). Changes exactly the fields in [`SERVER_ONLY`].
pub fn take_from_twin(am: &mut photo::ActiveModel, twin: &photo::Model, now: DateTime<Utc>) {
    am.upload_state = Set(UploadState::Complete.as_str().into());
    am.upload_offset = Set(twin.size_bytes);
    am.upload_expires_at = Set(None);
    am.uploaded_at = Set(Some(now));
    am.failure = Set(None);
    am.format = Set(twin.format.clone());
    am.width = Set(twin.width);
    am.height = Set(twin.height);
    am.exif = Set(twin.exif.clone());
    am.derivative_state = Set(match DerivativeState::parse(&twin.derivative_state) {
        Some(DerivativeState::Done) => DerivativeState::Done.as_str().into(),
        Some(DerivativeState::Failed) => DerivativeState::Failed.as_str().into(),
        _ => DerivativeState::Pending.as_str().into(),
    });
    am.derivative_error = Set(twin.derivative_error.clone());
}

/// The synced fields, each with its own revision in `field_revs`.
pub const FIELDS: &[&str] = &[
    "violation_id",
    "sha256",
    "size_bytes",
    "mime",
    "captured_at",
    "lat",
    "lon",
    "accuracy_m",
    "upload_state",
    "failure",
    "format",
    "width",
    "height",
    "exif_taken_at",
    "exif_lat",
    "exif_lon",
    "derivative_state",
];

/// Fields only the server sets: what the bytes tell.
pub const SERVER_ONLY: &[&str] = &[
    "upload_state",
    "failure",
    "format",
    "width",
    "height",
    "exif_taken_at",
    "exif_lat",
    "exif_lon",
    "derivative_state",
];

async fn stamp_one(
    txn: &DatabaseTransaction,
    id: Uuid,
    op: Op,
    fields: Vec<&'static str>,
    device_id: &str,
    now: DateTime<Utc>,
) -> ApiResult<i64> {
    let device = (!device_id.is_empty()).then_some(device_id);
    Ok(sync::stamp_one(txn, TABLE, id.to_string(), op, fields, device, now).await?)
}

async fn keep_history(
    txn: &DatabaseTransaction,
    m: &photo::Model,
    now: DateTime<Utc>,
) -> ApiResult<()> {
    sync::record_history(
        txn,
        TABLE,
        &m.id.to_string(),
        m.server_rev,
        Value::Object(super::sync::canonical_row(m)),
        now,
    )
    .await?;
    Ok(())
}

/// What a server-side change (upload handler, derivative worker) did.
pub struct ServerChange {
    pub action: &'static str,
    pub detail: Value,
}

/// Applies a change made by the server itself (upload progress, upload result, derivatives).
/// `change` edits the row and returns the synced fields it changed: when there are any, the
/// record gets a new revision (phones pull the new state) and an audit line; otherwise only
/// bookkeeping columns changed and nothing is stamped.
pub async fn server_update<F>(
    txn: &DatabaseTransaction,
    actor: &Actor,
    id: Uuid,
    now: DateTime<Utc>,
    change: F,
) -> ApiResult<photo::Model>
where
    F: FnOnce(&photo::Model, &mut photo::ActiveModel) -> (Vec<&'static str>, Option<ServerChange>),
{
    let cur = photo::Entity::find_by_id(id)
        .lock_exclusive()
        .one(txn)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("photo {id}")))?;
    let mut am: photo::ActiveModel = cur.clone().into();
    let (changed, log) = change(&cur, &mut am);
    am.updated_at = Set(now);
    if changed.is_empty() {
        return Ok(am.update(txn).await?);
    }
    if let Some(l) = log {
        audit::record(
            txn,
            actor,
            Entry::new(l.action, TABLE, id).detail(l.detail),
            now,
        )
        .await?;
    }
    let device = actor.device_id.clone().unwrap_or_default();
    let seq = stamp_one(txn, id, Op::Upsert, changed.clone(), &device, now).await?;
    let mut revs = match cur.field_revs.clone() {
        Value::Object(m) => m,
        _ => serde_json::Map::new(),
    };
    for f in &changed {
        revs.insert(f.to_string(), json!(seq));
    }
    am.server_rev = Set(seq);
    am.field_revs = Set(Value::Object(revs));
    keep_history(txn, &cur, now).await?;
    Ok(am.update(txn).await?)
}

/// Gives a photo a new revision without changing it (see `SyncTable::touch`).
pub async fn touch_in(
    txn: &DatabaseTransaction,
    p: &Principal,
    id: Uuid,
    now: DateTime<Utc>,
) -> ApiResult<()> {
    let Some(cur) = photo::Entity::find_by_id(id)
        .lock_exclusive()
        .one(txn)
        .await?
        .filter(|m| m.deleted_seq.is_none())
    else {
        return Ok(());
    };
    let seq = stamp_one(txn, id, Op::Upsert, vec![], &p.device_id, now).await?;
    keep_history(txn, &cur, now).await?;
    let mut am: photo::ActiveModel = cur.into();
    am.server_rev = Set(seq);
    am.update(txn).await?;
    Ok(())
}

/// Deletes (tombstones) a photo record: an officer withdraws a photo (a bystander in view,
/// the wrong car). Not once its report is reviewed: then it is part of a final decision. The
/// stored bytes go with the retention purge, not here.
pub async fn delete_in(
    txn: &DatabaseTransaction,
    p: &Principal,
    id: Uuid,
    now: DateTime<Utc>,
) -> ApiResult<bool> {
    p.authorize(Action::EditViolation)?;
    let Some(cur) = photo::Entity::find_by_id(id)
        .lock_exclusive()
        .one(txn)
        .await?
        .filter(|m| m.deleted_seq.is_none() && p.sees_team(m.team_id))
    else {
        return Ok(false);
    };
    if let Some(vid) = cur.violation_id
        && let Some(r) = violation::Entity::find_by_id(vid).one(txn).await?
    {
        if !may_edit_report(p, &r) && cur.created_by != p.user_id {
            return Err(ApiError::Forbidden(
                "only the officers on a report and their teamleider remove its photos".into(),
            ));
        }
        if matches!(r.status.as_str(), "approved" | "rejected") {
            return Err(ApiError::Conflict {
                detail: format!(
                    "report {vid} was {} by the teamleider; its photos are final",
                    r.status
                ),
                existing: None,
            });
        }
    }
    audit::record(txn, &p.actor(), Entry::new("delete", TABLE, id), now).await?;
    let seq = stamp_one(txn, id, Op::Delete, vec![], &p.device_id, now).await?;
    let mut am: photo::ActiveModel = cur.into();
    am.deleted_seq = Set(Some(seq));
    am.server_rev = Set(seq);
    am.updated_at = Set(now);
    am.last_device_id = Set(Some(p.device_id.clone()));
    am.update(txn).await?;
    Ok(true)
}

/// A live photo the principal may see, with its report (when it still exists).
pub async fn get<C: ConnectionTrait>(
    conn: &C,
    p: &Principal,
    id: Uuid,
) -> ApiResult<(photo::Model, Option<violation::Model>)> {
    let m = photo::Entity::find_by_id(id)
        .one(conn)
        .await?
        .filter(|m| m.deleted_seq.is_none() && p.sees_team(m.team_id))
        .ok_or_else(|| ApiError::NotFound(format!("photo {id}")))?;
    let report = match m.violation_id {
        Some(v) => violation::Entity::find_by_id(v).one(conn).await?,
        None => None,
    };
    // The read gate decides by the report's facts (its team, regime and retention stage): a
    // photo past its report's active stage is hidden with it.
    let facts = match &report {
        Some(r) => crate::violations::store::facts(r),
        None => crate::access::Facts::new(m.team_id, true),
    };
    if !crate::access::sees(p, crate::access::Kind::Photo, &facts) {
        return Err(ApiError::NotFound(format!("photo {id}")));
    }
    Ok((m, report))
}

/// The live photos of these reports, oldest first.
pub async fn of_violations<C: ConnectionTrait>(
    conn: &C,
    ids: &[Uuid],
) -> ApiResult<HashMap<Uuid, Vec<photo::Model>>> {
    let mut out: HashMap<Uuid, Vec<photo::Model>> = HashMap::new();
    for chunk in ids.chunks(500) {
        let rows = photo::Entity::find()
            .filter(photo::Column::ViolationId.is_in(chunk.to_vec()))
            .filter(photo::Column::DeletedSeq.is_null())
            .order_by_asc(photo::Column::CreatedAt)
            .all(conn)
            .await?;
        for m in rows {
            if let Some(v) = m.violation_id {
                out.entry(v).or_default().push(m);
            }
        }
    }
    Ok(out)
}

/// Per report, the flags its photos raise for the reviewer: `photo_gps_far`, `photo_time_far`
/// (see [`plausibility`]) and `photo_missing` (a photo whose bytes have not all arrived).
pub async fn report_flags<C: ConnectionTrait>(
    conn: &C,
    reports: &[violation::Model],
) -> ApiResult<HashMap<Uuid, Vec<String>>> {
    let ids: Vec<Uuid> = reports.iter().map(|r| r.id).collect();
    let photos = of_violations(conn, &ids).await?;
    let mut out = HashMap::new();
    for r in reports {
        let Some(ps) = photos.get(&r.id) else {
            continue;
        };
        let mut flags: Vec<String> = Vec::new();
        for p in ps {
            if p.upload_state != UploadState::Complete.as_str() {
                flags.push("photo_missing".into());
            }
            flags.extend(flags_of(p, Some(r)));
        }
        flags.sort();
        flags.dedup();
        if !flags.is_empty() {
            out.insert(r.id, flags);
        }
    }
    Ok(out)
}

pub fn exif_of(m: &photo::Model) -> Option<ExifSummary> {
    m.exif
        .as_ref()
        .and_then(|e| serde_json::from_value(e.clone()).ok())
}

/// Plausibility flags of a photo against its report.
pub fn flags_of(m: &photo::Model, report: Option<&violation::Model>) -> Vec<String> {
    match report {
        Some(r) => flags_against(m, r.observed_at, r.lat, r.lon),
        None => vec![],
    }
}

/// Plausibility flags of a photo against a report's time and place.
pub fn flags_against(
    m: &photo::Model,
    observed_at: DateTime<Utc>,
    lat: f64,
    lon: f64,
) -> Vec<String> {
    let exif = exif_of(m);
    let at = exif.as_ref().and_then(|e| e.taken_at_utc).or(m.captured_at);
    let pos = exif
        .as_ref()
        .and_then(|e| e.lat.zip(e.lon))
        .or(m.lat.zip(m.lon));
    plausibility(observed_at, lat, lon, at, pos)
}

pub fn view(m: &photo::Model, report: Option<&violation::Model>) -> PhotoView {
    PhotoView {
        id: m.id,
        violation_id: m.violation_id,
        sha256: m.sha256.clone(),
        size_bytes: m.size_bytes,
        mime: m.mime.clone(),
        captured_at: m.captured_at,
        lat: m.lat,
        lon: m.lon,
        accuracy_m: m.accuracy_m,
        upload_state: UploadState::parse(&m.upload_state).unwrap_or(UploadState::Pending),
        upload_offset: m.upload_offset,
        uploaded_at: m.uploaded_at,
        failure: m.failure.clone(),
        format: m.format.clone(),
        width: m.width,
        height: m.height,
        exif: exif_of(m),
        derivative_state: DerivativeState::parse(&m.derivative_state)
            .unwrap_or(DerivativeState::None),
        derivative_error: m.derivative_error.clone(),
        flags: flags_of(m, report),
        created_by: m.created_by,
        created_at: m.created_at,
        server_rev: m.server_rev,
    }
}

/// A photo's thumbnail (JPEG bytes) with its pixel size, for a case's documents; `None` when it
/// cannot be read (the document then says the picture is missing, and still has the hash).
pub async fn thumbnail(state: &crate::app::AppState, sha256: &str) -> Option<(Vec<u8>, u32, u32)> {
    use super::blob::{BlobStore, Derivative};
    let key = BlobStore::derivative_key(sha256, Derivative::Thumbnail);
    let bytes = state.photos.blobs.read(&key).await.ok()?;
    let mut dec = jpeg_decoder::Decoder::new(std::io::Cursor::new(&bytes[..]));
    dec.read_info().ok()?;
    let info = dec.info()?;
    (info.pixel_format == jpeg_decoder::PixelFormat::RGB24).then(|| {
        (
            bytes.to_vec(),
            u32::from(info.width),
            u32::from(info.height),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn photo() -> NewPhoto {
        NewPhoto {
            id: Uuid::nil(),
            violation_id: Uuid::nil(),
            sha256: "ab".repeat(32),
            size_bytes: 1000,
            mime: "image/jpeg".into(),
            captured_at: None,
            lat: Some(52.46),
            lon: Some(4.62),
            accuracy_m: Some(5.0),
        }
    }

    #[test]
    fn a_good_photo_passes() {
        assert!(check_new(&photo(), 10_000).is_empty());
    }

    #[test]
    fn each_broken_rule_names_its_field() {
        let mut p = photo();
        p.sha256 = "xyz".into();
        p.size_bytes = 20_000;
        p.mime = "image/heic".into();
        p.lon = None;
        let fields: Vec<String> = check_new(&p, 10_000).into_iter().map(|e| e.field).collect();
        assert_eq!(fields, vec!["sha256", "size_bytes", "mime", "lat"]);
        let heic = check_new(&p, 10_000)
            .into_iter()
            .find(|e| e.field == "mime")
            .unwrap();
        assert!(heic.message.contains("JPEG"));
    }
}
