//! What a record type declares to take part in sync: its columns with their wire type and merge
//! policy, and how to load, write and pull its rows through its own (the one) write path.
//! The engine (`engine.rs`) knows nothing else about a table.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sea_orm::DatabaseTransaction;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::merge::Policy;
use crate::auth::Principal;
use crate::error::ApiResult;
use crate::reference::Reference;

/// The wire type of a column. WatermelonDB knows strings, numbers and booleans; times travel
/// as milliseconds since the epoch and lists as JSON-encoded strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    Float,
    Bool,
    /// Milliseconds since 1970-01-01 UTC.
    Millis,
    /// A list, sent as a JSON string such as `["a","b"]`.
    JsonList,
}

/// Who may set a column from a phone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writable {
    /// On create and on update (subject to the merge policy).
    Always,
    /// Only when the record is created (then immutable: evidence).
    OnCreate,
    /// Never: derived or set by the server (ignored when pushed).
    Never,
}

#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub name: &'static str,
    pub kind: Kind,
    pub policy: Policy,
    pub writable: Writable,
}

impl Column {
    pub const fn new(name: &'static str, kind: Kind, policy: Policy, writable: Writable) -> Self {
        Column {
            name,
            kind,
            policy,
            writable,
        }
    }
}

/// A record as the engine sees it: canonical values (lists as JSON arrays, times as i64 ms).
#[derive(Debug, Clone)]
pub struct Current {
    pub raw: Map<String, Value>,
    pub server_rev: i64,
    /// The revision at which each field last changed.
    pub field_revs: HashMap<String, i64>,
    pub deleted: bool,
    pub team_id: Option<Uuid>,
    pub creation: Creation,
}

/// Who created a record, and when in the sequence: what the engine needs to tell a record a
/// device has never had (`created` in a pull) and a device's own creation (merged without a
/// known base). Both are null for rows from before they were kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Creation {
    pub seq: Option<i64>,
    pub device: Option<String>,
    pub user: Option<Uuid>,
}

impl Creation {
    /// Whether `device` (of `user`) made the record. Without a kept device, the creating user
    /// stands in: a record id is generated on one phone, so another phone of the same user can
    /// only have it from a pull (with a known base).
    pub fn by(&self, device: &str, user: Uuid) -> bool {
        match &self.device {
            Some(d) => d == device,
            None => self.user == Some(user),
        }
    }

    /// Whether a device whose cursor is `cursor` has never had the record: it was created after
    /// the cursor by someone else, or the device has nothing yet (a first pull).
    pub fn new_to(&self, cursor: i64, device: &str, user: Uuid) -> bool {
        if cursor == 0 {
            return true;
        }
        match self.seq {
            Some(s) => s > cursor && !self.by(device, user),
            None => false,
        }
    }
}

/// The context of one push.
pub struct PushCtx<'a> {
    pub principal: &'a Principal,
    pub reference: &'a Reference,
    pub now: DateTime<Utc>,
    /// Server time minus device time, when the device sent `X-Device-Time`.
    pub clock_offset_ms: Option<i64>,
    /// The cursor of the phone's last pull: revisions above it reach the phone anyway.
    pub last_pulled_at: Option<i64>,
    /// The largest photo accepted, in bytes.
    pub photo_max_bytes: u64,
}

/// What one page of a pull reads of a table: rows whose revision lies in `(after, upto]`, in
/// revision order, at most `limit`. Records observed before `window_start` are out of scope
/// (except as deletions); with `live_only` deletions are left out too (a first pull: the device
/// has nothing to delete).
#[derive(Debug, Clone)]
pub struct PullSlice {
    pub window_start: DateTime<Utc>,
    pub after: i64,
    pub upto: i64,
    pub limit: u64,
    pub live_only: bool,
}

/// One row of a pull, in sequence order.
#[derive(Debug, Clone)]
pub struct PulledRow {
    pub seq: i64,
    pub id: String,
    pub row: Pulled,
    pub creation: Creation,
    /// The row carries Wpg data in full, as the access rules let it out to this reader: its
    /// read is logged when it is sent (`access::released`).
    pub wpg: Option<crate::access::Kind>,
}

/// What a pull sends for a record.
#[derive(Debug, Clone)]
pub enum Pulled {
    /// The record is deleted: its id goes in `deleted`.
    Deleted,
    /// The record in canonical form; the engine nulls the hidden columns, converts to the wire
    /// form and adds `server_rev`.
    Canonical(Map<String, Value>),
    /// The record already in its wire form, hidden columns and `server_rev` included: the hot
    /// path of tables with many rows, which serialise straight from the database row. A table's
    /// test keeps it equal to the canonical route.
    Wire(Box<serde_json::value::RawValue>),
}

/// A record type that syncs. Domain errors (4xx) from `create`/`update`/`delete` refuse the one
/// record; other errors fail the push.
#[async_trait]
pub trait SyncTable: Send + Sync {
    /// The table name on the wire (WatermelonDB's table).
    fn name(&self) -> &'static str;
    fn columns(&self) -> &'static [Column];
    /// Columns withheld from this principal on pull of this record (its canonical row; `None`
    /// for a record the push creates); a push of them onto that record is ignored. What a phone
    /// holds it can write back, and it holds what REST would show the same reader.
    fn hidden_columns(
        &self,
        _p: &Principal,
        _row: Option<&Map<String, Value>>,
    ) -> &'static [&'static str] {
        &[]
    }
    /// The records of these ids with their revisions (tombstones included), in the principal's
    /// scope.
    async fn load_many(
        &self,
        txn: &DatabaseTransaction,
        p: &Principal,
        ids: &[String],
    ) -> ApiResult<HashMap<String, Current>>;
    /// The record with its revisions, if it exists (tombstones included) in the principal's scope.
    async fn load(
        &self,
        txn: &DatabaseTransaction,
        p: &Principal,
        id: &str,
    ) -> ApiResult<Option<Current>> {
        Ok(self.load_many(txn, p, &[id.to_string()]).await?.remove(id))
    }
    async fn create(
        &self,
        txn: &DatabaseTransaction,
        ctx: &PushCtx<'_>,
        id: &str,
        raw: &Map<String, Value>,
    ) -> ApiResult<()>;
    /// Creates many records, each judged on its own. Tables with a bulk write path override
    /// this; the default creates them one by one.
    async fn create_many(
        &self,
        txn: &DatabaseTransaction,
        ctx: &PushCtx<'_>,
        items: Vec<(String, Map<String, Value>)>,
    ) -> ApiResult<Vec<ApiResult<()>>> {
        let mut out = Vec::with_capacity(items.len());
        for (id, raw) in items {
            out.push(self.create(txn, ctx, &id, &raw).await);
        }
        Ok(out)
    }
    /// Applies changed columns (canonical values) to an existing record.
    async fn update(
        &self,
        txn: &DatabaseTransaction,
        ctx: &PushCtx<'_>,
        id: &str,
        changes: &Map<String, Value>,
    ) -> ApiResult<()>;
    /// Gives a record a new revision without changing it, so that a phone whose copy differs
    /// from the server's (it pushed values the merge did not take) receives the record again.
    async fn touch(&self, txn: &DatabaseTransaction, ctx: &PushCtx<'_>, id: &str) -> ApiResult<()>;
    /// Deletes (tombstones) a record; `false` when there was nothing to delete.
    async fn delete(
        &self,
        txn: &DatabaseTransaction,
        ctx: &PushCtx<'_>,
        id: &str,
    ) -> ApiResult<bool>;
    /// Rows in scope in the slice, in revision order.
    async fn pull(
        &self,
        txn: &DatabaseTransaction,
        p: &Principal,
        slice: &PullSlice,
    ) -> ApiResult<Vec<PulledRow>>;
    /// Ids of live records that left the time window between `from` and `to`.
    async fn window_exits(
        &self,
        txn: &DatabaseTransaction,
        p: &Principal,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> ApiResult<Vec<String>>;
}

/// Reads a pushed value into its canonical form; `Err` names what is wrong.
pub fn canonical(kind: Kind, v: &Value) -> Result<Value, String> {
    if v.is_null() {
        return Ok(Value::Null);
    }
    match kind {
        Kind::Text => v
            .as_str()
            .map(|s| Value::String(s.to_string()))
            .ok_or_else(|| "expected a string".into()),
        Kind::Float => v
            .as_f64()
            .map(Value::from)
            .ok_or_else(|| "expected a number".into()),
        Kind::Bool => v
            .as_bool()
            .map(Value::Bool)
            .ok_or_else(|| "expected true or false".into()),
        Kind::Millis => match v.as_f64() {
            Some(f) if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e15 => {
                Ok(Value::from(f as i64))
            }
            _ => Err("expected milliseconds since 1970 as a whole number".into()),
        },
        Kind::JsonList => match v {
            Value::String(s) if s.is_empty() => Ok(Value::Array(vec![])),
            Value::String(s) => match serde_json::from_str::<Value>(s) {
                Ok(Value::Array(a)) => Ok(Value::Array(a)),
                _ => Err("expected a JSON list in a string, e.g. [\"a\"]".into()),
            },
            Value::Array(a) => Ok(Value::Array(a.clone())),
            _ => Err("expected a JSON list in a string".into()),
        },
    }
}

/// Writes a canonical value in its wire form.
pub fn wire(kind: Kind, v: &Value) -> Value {
    match (kind, v) {
        (Kind::JsonList, Value::Array(_)) => Value::String(v.to_string()),
        _ => v.clone(),
    }
}

/// The per-field revisions a record keeps as a JSON object (`{"status": 12, …}`).
pub fn field_revs(v: &Value) -> HashMap<String, i64> {
    v.as_object()
        .map(|o| {
            o.iter()
                .filter_map(|(k, v)| v.as_i64().map(|r| (k.clone(), r)))
                .collect()
        })
        .unwrap_or_default()
}

pub fn millis(t: DateTime<Utc>) -> Value {
    Value::from(t.timestamp_millis())
}

pub fn from_millis(v: &Value) -> Option<DateTime<Utc>> {
    v.as_i64().and_then(DateTime::from_timestamp_millis)
}

/// The column table of a sync table as Markdown rows, for SYNC.md (a test keeps them equal).
pub fn markdown_columns(table: &dyn SyncTable) -> String {
    let mut out = String::new();
    for c in table.columns() {
        let kind = match c.kind {
            Kind::Text => "string",
            Kind::Float => "number",
            Kind::Bool => "boolean",
            Kind::Millis => "number (ms since 1970)",
            Kind::JsonList => "string (JSON list)",
        };
        let policy = c.policy.name();
        let writable = match c.writable {
            Writable::Always => "yes",
            Writable::OnCreate => "on create",
            Writable::Never => "no (server)",
        };
        out.push_str(&format!(
            "| `{}` | {kind} | {policy} | {writable} |\n",
            c.name
        ));
    }
    out.push_str(
        "| `server_rev` | number | the revision the phone's copy is based on | sent back |\n",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pushed_values_are_read_into_one_form() {
        assert_eq!(canonical(Kind::Float, &json!(6)), Ok(json!(6.0)));
        assert_eq!(
            canonical(Kind::Millis, &json!(1764150000000.0)),
            Ok(json!(1764150000000i64))
        );
        assert!(canonical(Kind::Millis, &json!(1.5)).is_err());
        assert!(canonical(Kind::Millis, &json!("gisteren")).is_err());
        assert_eq!(
            canonical(Kind::JsonList, &json!("[\"a\"]")),
            Ok(json!(["a"]))
        );
        assert_eq!(canonical(Kind::JsonList, &json!("")), Ok(json!([])));
        assert!(canonical(Kind::JsonList, &json!("{}")).is_err());
        assert!(canonical(Kind::Text, &json!(5)).is_err());
        assert_eq!(canonical(Kind::Bool, &Value::Null), Ok(Value::Null));
        assert_eq!(wire(Kind::JsonList, &json!(["a"])), json!("[\"a\"]"));
    }
}
