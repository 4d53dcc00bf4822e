//! Field records of the other kinds of field work, beside violation reports: patrol rounds and
//! their GPS track segments, the youth-group register, youth-group observations, youth persons
//! (Wpg) and incidents.
//!
//! Each kind declares what it is (`RecordKind`): its synced columns with their merge policies,
//! who may read and write it, its rules, and which record it hangs under. One generic store
//! (`store.rs`) is the one write path of every kind; one generic `SyncTable` (`sync.rs`) puts
//! every kind into the sync engine. A kind's fields live as one JSON document in its own table
//! (`migrations/m20261126_000004_field_records.rs`), with the columns the server filters on
//! (team, parent, time) beside it.

pub mod kinds;
pub mod routes;
pub mod store;
pub mod sync;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::auth::Principal;
use crate::error::FieldError;
use crate::sync::table::Column;

/// What a kind of field record declares.
pub trait RecordKind: Send + Sync + 'static {
    /// The table on the wire (WatermelonDB) and in the database.
    fn wire_name(&self) -> &'static str;
    fn db_table(&self) -> &'static str;
    /// The synced columns; a record's JSON document holds exactly these (canonical values:
    /// times as ms since 1970, lists as arrays).
    fn columns(&self) -> &'static [Column];
    /// Columns given as RFC 3339 on REST (ms since 1970 on sync).
    fn time_columns(&self) -> &'static [&'static str] {
        &[]
    }
    /// The kind in the visibility rules (`crate::access`), which decide who reads it.
    fn access(&self) -> crate::access::Kind;
    /// Whether the principal may see records of this kind at all (the access rules decide).
    fn may_read(&self, p: &Principal) -> bool {
        crate::access::reads_kind(p, self.access())
    }
    /// Whether the principal may create this record.
    fn may_create(&self, p: &Principal, data: &Map<String, Value>) -> bool;
    /// Whether the principal may change or delete this record.
    fn may_edit(&self, p: &Principal, created_by: Uuid, data: &Map<String, Value>) -> bool;
    /// Columns withheld from this reader (on pull and REST; the access rules decide).
    fn hidden_columns(&self, p: &Principal) -> &'static [&'static str] {
        crate::access::withheld_columns(p, self.access())
    }
    /// Wpg data: every full read goes to the audit log (the access rules decide).
    fn wpg(&self) -> bool {
        self.access().always_wpg()
    }
    /// The time the record is about (the sync window and list filters use it).
    fn occurred_at(&self, data: &Map<String, Value>, now: DateTime<Utc>) -> DateTime<Utc>;
    /// The column naming the record this one hangs under, and that record's kind (which must
    /// exist and be visible).
    fn parent(&self) -> Option<(&'static str, &'static dyn RecordKind)> {
        None
    }
    /// The rules of a whole record (after a create or an update is applied); `before` is the
    /// record as it was for an update.
    fn check(
        &self,
        data: &Map<String, Value>,
        before: Option<&Map<String, Value>>,
        now: DateTime<Utc>,
    ) -> Vec<FieldError>;
    /// Server-side consequences of a change (e.g. history of a municipal assessment), applied
    /// before the record is written; returns the extra fields it changed.
    fn on_change(
        &self,
        _before: Option<&Map<String, Value>>,
        _data: &mut Map<String, Value>,
        _now: DateTime<Utc>,
        _by: &Principal,
    ) -> Vec<&'static str> {
        vec![]
    }
    /// What a new record keeps of itself given the record it hangs under (its parent's
    /// document), before it is stored: a GPS track keeps only the fixes of its round's time.
    fn bind_to_parent(&self, _data: &mut Map<String, Value>, _parent: &Map<String, Value>) {}
}

/// Milliseconds since 1970 from a canonical value.
pub fn ms(v: Option<&Value>) -> Option<DateTime<Utc>> {
    v.and_then(Value::as_i64)
        .and_then(DateTime::from_timestamp_millis)
}

pub fn text<'a>(d: &'a Map<String, Value>, k: &str) -> Option<&'a str> {
    d.get(k).and_then(Value::as_str)
}

pub fn num(d: &Map<String, Value>, k: &str) -> Option<f64> {
    d.get(k).and_then(Value::as_f64)
}

pub fn list<'a>(d: &'a Map<String, Value>, k: &str) -> &'a [Value] {
    d.get(k)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// A required text field, one of `allowed` when given.
pub fn one_of(
    d: &Map<String, Value>,
    k: &str,
    allowed: &[&str],
    required: bool,
    errs: &mut Vec<FieldError>,
) {
    match text(d, k) {
        Some(v) if allowed.contains(&v) => {}
        Some(v) => errs.push(FieldError::new(
            k,
            format!("unknown value {v:?}; one of {}", allowed.join(", ")),
        )),
        None if required => errs.push(FieldError::new(k, "required")),
        None => {}
    }
}

/// A position: both or neither, in range.
pub fn position(d: &Map<String, Value>, required: bool, errs: &mut Vec<FieldError>) {
    match (num(d, "lat"), num(d, "lon")) {
        (Some(lat), Some(lon)) => {
            if !(-90.0..=90.0).contains(&lat) {
                errs.push(FieldError::new("lat", "must be between -90 and 90"));
            }
            if !(-180.0..=180.0).contains(&lon) {
                errs.push(FieldError::new("lon", "must be between -180 and 180"));
            }
        }
        (None, None) if !required => {}
        (None, None) => errs.push(FieldError::new("lat", "required (with lon)")),
        _ => errs.push(FieldError::new("lat", "lat and lon come together")),
    }
}

/// The record's parent id, when its kind has one and it is set.
pub fn parent_id(kind: &dyn RecordKind, d: &Map<String, Value>) -> Option<Uuid> {
    kind.parent()
        .and_then(|(col, _)| text(d, col))
        .and_then(|s| s.parse().ok())
}
