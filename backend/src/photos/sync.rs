//! Photo records in the sync engine. A phone creates the record (what it will upload); the
//! server owns everything the bytes tell (upload state, type, size in pixels, EXIF,
//! derivatives), so a report on every phone shows which photos are still missing.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sea_orm::DatabaseTransaction;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::NewPhoto;
use super::entity::photo;
use super::store::{self, TABLE};
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, FieldError};
use crate::sync::merge::Policy;
use crate::sync::table::{
    Column, Current, Kind, PullSlice, Pulled, PulledRow, PushCtx, SyncTable, Writable, from_millis,
    millis,
};
use crate::sync::typed;

use Kind::*;
use Policy::*;
use Writable::*;

pub const COLUMNS: &[Column] = &[
    Column::new("violation_id", Text, ImmutableAfterCreate, OnCreate),
    Column::new("sha256", Text, ImmutableAfterCreate, OnCreate),
    Column::new("size_bytes", Float, ImmutableAfterCreate, OnCreate),
    Column::new("mime", Text, ImmutableAfterCreate, OnCreate),
    Column::new("captured_at", Millis, ImmutableAfterCreate, OnCreate),
    Column::new("lat", Float, ImmutableAfterCreate, OnCreate),
    Column::new("lon", Float, ImmutableAfterCreate, OnCreate),
    Column::new("accuracy_m", Float, ImmutableAfterCreate, OnCreate),
    Column::new("upload_state", Text, ServerOwned, Never),
    Column::new("failure", Text, ServerOwned, Never),
    Column::new("format", Text, ServerOwned, Never),
    Column::new("width", Float, ServerOwned, Never),
    Column::new("height", Float, ServerOwned, Never),
    Column::new("exif_taken_at", Millis, ServerOwned, Never),
    Column::new("exif_lat", Float, ServerOwned, Never),
    Column::new("exif_lon", Float, ServerOwned, Never),
    Column::new("derivative_state", Text, ServerOwned, Never),
    Column::new("team_id", Text, ServerOwned, Never),
    Column::new("created_by", Text, ImmutableAfterCreate, Never),
    Column::new("created_at", Millis, ServerOwned, Never),
];

/// A photo in canonical sync form.
pub fn canonical_row(m: &photo::Model) -> Map<String, Value> {
    let opt_ms = |t: Option<DateTime<Utc>>| t.map(millis).unwrap_or(Value::Null);
    let exif = store::exif_of(m).unwrap_or_default();
    let mut r = Map::new();
    r.insert("id".into(), json!(m.id.to_string()));
    r.insert(
        "violation_id".into(),
        json!(m.violation_id.map(|u| u.to_string())),
    );
    r.insert("sha256".into(), json!(m.sha256));
    r.insert("size_bytes".into(), json!(m.size_bytes as f64));
    r.insert("mime".into(), json!(m.mime));
    r.insert("captured_at".into(), opt_ms(m.captured_at));
    r.insert("lat".into(), json!(m.lat));
    r.insert("lon".into(), json!(m.lon));
    r.insert("accuracy_m".into(), json!(m.accuracy_m));
    r.insert("upload_state".into(), json!(m.upload_state));
    r.insert("failure".into(), json!(m.failure));
    r.insert("format".into(), json!(m.format));
    r.insert("width".into(), json!(m.width.map(f64::from)));
    r.insert("height".into(), json!(m.height.map(f64::from)));
    r.insert("exif_taken_at".into(), opt_ms(exif.taken_at_utc));
    r.insert("exif_lat".into(), json!(exif.lat));
    r.insert("exif_lon".into(), json!(exif.lon));
    r.insert("derivative_state".into(), json!(m.derivative_state));
    r.insert("team_id".into(), json!(m.team_id.map(|u| u.to_string())));
    r.insert("created_by".into(), json!(m.created_by.to_string()));
    r.insert("created_at".into(), millis(m.created_at));
    r
}

pub struct PhotosTable;

fn parse_id(id: &str) -> ApiResult<Uuid> {
    crate::sync::engine::canonical_id(id)
        .ok_or_else(|| ApiError::field("id", "a photo id is a lowercase hyphenated UUID"))
}

fn required<T>(v: Option<T>, k: &str) -> ApiResult<T> {
    v.ok_or_else(|| ApiError::Validation(vec![FieldError::new(k, "required")]))
}

fn text(raw: &Map<String, Value>, k: &str) -> Option<String> {
    raw.get(k).and_then(Value::as_str).map(str::to_string)
}

fn new_photo(id: &str, raw: &Map<String, Value>) -> ApiResult<NewPhoto> {
    let size = required(raw.get("size_bytes").and_then(Value::as_f64), "size_bytes")?;
    if size.fract() != 0.0 {
        return Err(ApiError::field("size_bytes", "a whole number of bytes"));
    }
    Ok(NewPhoto {
        id: parse_id(id)?,
        violation_id: required(text(raw, "violation_id"), "violation_id")?
            .parse()
            .map_err(|_| ApiError::field("violation_id", "a report id is a UUID"))?,
        sha256: required(text(raw, "sha256"), "sha256")?,
        size_bytes: size as i64,
        mime: required(text(raw, "mime"), "mime")?,
        captured_at: raw.get("captured_at").and_then(from_millis),
        lat: raw.get("lat").and_then(Value::as_f64),
        lon: raw.get("lon").and_then(Value::as_f64),
        accuracy_m: raw.get("accuracy_m").and_then(Value::as_f64),
    })
}

typed::synced_entity!(photo, CreatedAt, canonical_row);

#[async_trait]
impl SyncTable for PhotosTable {
    fn name(&self) -> &'static str {
        TABLE
    }

    fn columns(&self) -> &'static [Column] {
        COLUMNS
    }

    async fn load_many(
        &self,
        txn: &DatabaseTransaction,
        p: &Principal,
        ids: &[String],
    ) -> ApiResult<HashMap<String, Current>> {
        typed::load_many::<photo::Entity>(txn, p, ids).await
    }

    async fn create(
        &self,
        txn: &DatabaseTransaction,
        ctx: &PushCtx<'_>,
        id: &str,
        raw: &Map<String, Value>,
    ) -> ApiResult<()> {
        let input = new_photo(id, raw)?;
        store::create_in(txn, ctx.principal, input, ctx.photo_max_bytes, ctx.now)
            .await
            .map(|_| ())
    }

    async fn update(
        &self,
        _txn: &DatabaseTransaction,
        _ctx: &PushCtx<'_>,
        _id: &str,
        changes: &Map<String, Value>,
    ) -> ApiResult<()> {
        // Every column a phone writes is fixed at create; the merge never gets here with one.
        match changes.keys().next() {
            Some(k) => Err(ApiError::field(
                k.clone(),
                "cannot be changed after the photo was recorded",
            )),
            None => Ok(()),
        }
    }

    async fn touch(&self, txn: &DatabaseTransaction, ctx: &PushCtx<'_>, id: &str) -> ApiResult<()> {
        store::touch_in(txn, ctx.principal, parse_id(id)?, ctx.now).await
    }

    async fn delete(
        &self,
        txn: &DatabaseTransaction,
        ctx: &PushCtx<'_>,
        id: &str,
    ) -> ApiResult<bool> {
        let Ok(uuid) = id.parse::<Uuid>() else {
            return Ok(false);
        };
        store::delete_in(txn, ctx.principal, uuid, ctx.now).await
    }

    async fn pull(
        &self,
        txn: &DatabaseTransaction,
        p: &Principal,
        s: &PullSlice,
    ) -> ApiResult<Vec<PulledRow>> {
        let rows = typed::pull_rows::<photo::Entity>(txn, p, s).await?;
        Ok(rows
            .iter()
            .map(|m| PulledRow {
                seq: m.server_rev,
                id: m.id.to_string(),
                creation: typed::creation::<photo::Entity>(m),
                row: if m.deleted_seq.is_some() {
                    Pulled::Deleted
                } else {
                    Pulled::Canonical(canonical_row(m))
                },
                wpg: None,
            })
            .collect())
    }

    async fn window_exits(
        &self,
        txn: &DatabaseTransaction,
        p: &Principal,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> ApiResult<Vec<String>> {
        typed::window_exits::<photo::Entity>(txn, p, from, to).await
    }
}
