//! Violation reports in the sync engine: their columns on the wire, the merge policy of each,
//! and the bridge from merged values to the one write path in `store`.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sea_orm::DatabaseTransaction;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::entity::violation;
use super::store::{self, WriteMeta};
use super::{
    Category, Location, LocationSource, NewViolation, Outcome, Sanction, Status, ViolationPatch,
};
use crate::access;
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, FieldError};
use crate::sync::merge::Policy;
use crate::sync::table::{
    Column, Current, Kind, PullSlice, Pulled, PulledRow, PushCtx, SyncTable, Writable, from_millis,
    millis,
};
use crate::sync::typed;

/// The review workflow as a rank: a later state wins a concurrent edit.
pub const STATUS_ORDER: &[(&str, u8)] = &[
    ("concept", 0),
    ("submitted", 1),
    ("approved", 2),
    ("rejected", 2),
];

use Kind::*;
use Policy::*;
use Writable::*;

pub const COLUMNS: &[Column] = &[
    Column::new("category", Text, LastReceivedWins, Always),
    Column::new("feitcode", Text, LastReceivedWins, Always),
    Column::new("observed_at", Millis, ImmutableAfterCreate, OnCreate),
    Column::new("lat", Float, ImmutableAfterCreate, OnCreate),
    Column::new("lon", Float, ImmutableAfterCreate, OnCreate),
    Column::new("accuracy_m", Float, ImmutableAfterCreate, OnCreate),
    Column::new("location_source", Text, ImmutableAfterCreate, OnCreate),
    Column::new("fix_time", Millis, ImmutableAfterCreate, OnCreate),
    Column::new("description", Text, LastReceivedWins, Always),
    Column::new("outcome", Text, LastReceivedWins, Always),
    Column::new("plate", Text, LastReceivedWins, Always),
    Column::new("driver_present", Bool, LastReceivedWins, Always),
    Column::new("sanction", Text, LastReceivedWins, Always),
    Column::new("officer_ids", JsonList, Union, Always),
    Column::new("status", Text, StateOrder(STATUS_ORDER), Always),
    Column::new("review_note", Text, ServerOwned, Never),
    Column::new("reviewed_by", Text, ServerOwned, Never),
    Column::new("reviewed_at", Millis, ServerOwned, Never),
    Column::new("wijk_code", Text, ServerOwned, Never),
    Column::new("buurt_code", Text, ServerOwned, Never),
    Column::new("team_id", Text, ServerOwned, Never),
    Column::new("created_by", Text, ImmutableAfterCreate, Never),
    Column::new("created_at", Millis, ServerOwned, Never),
    Column::new("updated_at", Millis, ServerOwned, Never),
    Column::new("flags", JsonList, ServerOwned, Never),
    Column::new("round_id", Text, ImmutableAfterCreate, OnCreate),
];

/// A report in canonical sync form (lists as arrays, times as milliseconds).
pub fn canonical_row(m: &violation::Model) -> Map<String, Value> {
    let opt_ms = |t: Option<DateTime<Utc>>| t.map(millis).unwrap_or(Value::Null);
    let mut r = Map::new();
    r.insert("id".into(), json!(m.id.to_string()));
    r.insert("category".into(), json!(m.category));
    r.insert("feitcode".into(), json!(m.feitcode));
    r.insert("observed_at".into(), millis(m.observed_at));
    r.insert("lat".into(), json!(m.lat));
    r.insert("lon".into(), json!(m.lon));
    r.insert("accuracy_m".into(), json!(m.accuracy_m));
    r.insert("location_source".into(), json!(m.location_source));
    r.insert("fix_time".into(), opt_ms(m.fix_time));
    r.insert("description".into(), json!(m.description));
    r.insert("outcome".into(), json!(m.outcome));
    r.insert("plate".into(), json!(m.plate));
    r.insert("driver_present".into(), json!(m.driver_present));
    r.insert("sanction".into(), json!(m.sanction));
    r.insert("officer_ids".into(), m.officer_ids.clone());
    r.insert("status".into(), json!(m.status));
    r.insert("review_note".into(), json!(m.review_note));
    r.insert(
        "reviewed_by".into(),
        json!(m.reviewed_by.map(|u| u.to_string())),
    );
    r.insert("reviewed_at".into(), opt_ms(m.reviewed_at));
    r.insert("wijk_code".into(), json!(m.wijk_code));
    r.insert("buurt_code".into(), json!(m.buurt_code));
    r.insert("team_id".into(), json!(m.team_id.map(|u| u.to_string())));
    r.insert("created_by".into(), json!(m.created_by.to_string()));
    r.insert("created_at".into(), millis(m.created_at));
    r.insert("updated_at".into(), millis(m.updated_at));
    r.insert("flags".into(), m.flags.clone());
    r.insert("round_id".into(), json!(m.round_id.map(|u| u.to_string())));
    r
}

/// A report as a pull sends it, serialised straight from the row: what the engine makes of
/// [`canonical_row`] (Wpg columns nulled for readers without Wpg authorisation, lists as JSON
/// strings, `server_rev` added), without building a map per report. The pull's hot path; a test
/// keeps the two equal.
#[derive(serde::Serialize)]
struct WireRow<'a> {
    id: Uuid,
    category: &'a str,
    feitcode: Option<&'a str>,
    observed_at: i64,
    lat: f64,
    lon: f64,
    accuracy_m: f64,
    location_source: &'a str,
    fix_time: Option<i64>,
    description: Option<&'a str>,
    outcome: &'a str,
    plate: Option<&'a str>,
    driver_present: Option<bool>,
    sanction: Option<&'a str>,
    officer_ids: Value,
    status: &'a str,
    review_note: Option<&'a str>,
    reviewed_by: Option<Uuid>,
    reviewed_at: Option<i64>,
    wijk_code: Option<&'a str>,
    buurt_code: Option<&'a str>,
    team_id: Option<Uuid>,
    created_by: Uuid,
    created_at: i64,
    updated_at: i64,
    flags: Value,
    round_id: Option<Uuid>,
    server_rev: i64,
}

fn wire_row(m: &violation::Model, hide_wpg: bool) -> ApiResult<Box<serde_json::value::RawValue>> {
    use crate::sync::table::wire;
    let row = WireRow {
        id: m.id,
        category: &m.category,
        feitcode: m.feitcode.as_deref(),
        observed_at: m.observed_at.timestamp_millis(),
        lat: m.lat,
        lon: m.lon,
        accuracy_m: m.accuracy_m,
        location_source: &m.location_source,
        fix_time: m.fix_time.map(|t| t.timestamp_millis()),
        description: (!hide_wpg).then_some(m.description.as_str()),
        outcome: &m.outcome,
        plate: if hide_wpg { None } else { m.plate.as_deref() },
        driver_present: m.driver_present,
        sanction: m.sanction.as_deref(),
        officer_ids: wire(JsonList, &m.officer_ids),
        status: &m.status,
        review_note: m.review_note.as_deref(),
        reviewed_by: m.reviewed_by,
        reviewed_at: m.reviewed_at.map(|t| t.timestamp_millis()),
        wijk_code: m.wijk_code.as_deref(),
        buurt_code: m.buurt_code.as_deref(),
        team_id: m.team_id,
        created_by: m.created_by,
        created_at: m.created_at.timestamp_millis(),
        updated_at: m.updated_at.timestamp_millis(),
        flags: wire(JsonList, &m.flags),
        round_id: m.round_id,
        server_rev: m.server_rev,
    };
    serde_json::value::to_raw_value(&row).map_err(ApiError::internal)
}

pub struct ViolationsTable;

/// The access facts of a report in canonical form: its team, and its regime as the store
/// derives it from outcome and plate (Wpg when the outcome cannot be read).
fn row_facts(r: &Map<String, Value>) -> access::Facts {
    let team = r
        .get("team_id")
        .and_then(Value::as_str)
        .and_then(|t| t.parse().ok());
    let plate = r.get("plate").and_then(Value::as_str);
    let wpg = r
        .get("outcome")
        .and_then(Value::as_str)
        .and_then(Outcome::parse)
        .is_none_or(|o| super::rules::privacy_regime(o, plate) == "wpg");
    access::Facts::new(team, wpg)
}

fn parse_id(id: &str) -> ApiResult<Uuid> {
    crate::sync::engine::canonical_id(id)
        .ok_or_else(|| ApiError::field("id", "a report id is a lowercase hyphenated UUID"))
}

fn text(raw: &Map<String, Value>, k: &str) -> Option<String> {
    raw.get(k).and_then(Value::as_str).map(str::to_string)
}

fn enum_field<T>(
    raw: &Map<String, Value>,
    k: &str,
    parse: fn(&str) -> Option<T>,
) -> ApiResult<Option<T>> {
    match text(raw, k) {
        None => Ok(None),
        Some(s) => parse(&s)
            .map(Some)
            .ok_or_else(|| ApiError::field(k, format!("unknown value {s:?}"))),
    }
}

fn required<T>(v: Option<T>, k: &str) -> ApiResult<T> {
    v.ok_or_else(|| ApiError::Validation(vec![FieldError::new(k, "required")]))
}

fn uuids(v: Option<&Value>) -> ApiResult<Vec<Uuid>> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(|s| {
                    s.parse()
                        .map_err(|_| ApiError::field("officer_ids", "user ids are UUIDs"))
                })
                .collect()
        })
        .unwrap_or(Ok(vec![]))
}

/// A pushed raw row as a new report.
fn new_violation(id: &str, raw: &Map<String, Value>) -> ApiResult<NewViolation> {
    Ok(NewViolation {
        id: parse_id(id)?,
        category: required(enum_field(raw, "category", Category::parse)?, "category")?,
        feitcode: text(raw, "feitcode"),
        observed_at: required(raw.get("observed_at").and_then(from_millis), "observed_at")?,
        location: Location {
            lat: required(raw.get("lat").and_then(Value::as_f64), "lat")?,
            lon: required(raw.get("lon").and_then(Value::as_f64), "lon")?,
            accuracy_m: required(raw.get("accuracy_m").and_then(Value::as_f64), "accuracy_m")?,
            source: enum_field(raw, "location_source", LocationSource::parse)?
                .unwrap_or(LocationSource::Gps),
            fix_time: raw.get("fix_time").and_then(from_millis),
        },
        description: text(raw, "description").unwrap_or_default(),
        outcome: required(enum_field(raw, "outcome", Outcome::parse)?, "outcome")?,
        plate: text(raw, "plate"),
        driver_present: raw.get("driver_present").and_then(Value::as_bool),
        sanction: enum_field(raw, "sanction", Sanction::parse)?,
        officer_ids: uuids(raw.get("officer_ids"))?,
        status: enum_field(raw, "status", Status::parse)?,
        round_id: match text(raw, "round_id") {
            Some(s) => Some(
                s.parse()
                    .map_err(|_| ApiError::field("round_id", "a round id is a UUID"))?,
            ),
            None => None,
        },
    })
}

typed::synced_entity!(violation, ObservedAt, canonical_row);

#[async_trait]
impl SyncTable for ViolationsTable {
    fn name(&self) -> &'static str {
        store::TABLE
    }

    fn columns(&self) -> &'static [Column] {
        COLUMNS
    }

    /// Per report, as REST decides: the Wpg columns of a Wpg report are withheld from a reader
    /// who may not read Wpg data, and a push of them onto such a report is ignored. An AVG
    /// report is whole for every reader, and a new report takes what its creator sends (as a
    /// REST create does). When a report turns Wpg, the next pull sends it without them.
    fn hidden_columns(
        &self,
        p: &Principal,
        row: Option<&Map<String, Value>>,
    ) -> &'static [&'static str] {
        match row {
            None => &[],
            Some(r) => access::withheld(p, access::Kind::Violation, &row_facts(r)),
        }
    }

    async fn load_many(
        &self,
        txn: &DatabaseTransaction,
        p: &Principal,
        ids: &[String],
    ) -> ApiResult<HashMap<String, Current>> {
        typed::load_many::<violation::Entity>(txn, p, ids).await
    }

    async fn create(
        &self,
        txn: &DatabaseTransaction,
        ctx: &PushCtx<'_>,
        id: &str,
        raw: &Map<String, Value>,
    ) -> ApiResult<()> {
        let input = new_violation(id, raw)?;
        let meta = WriteMeta {
            clock_offset_ms: ctx.clock_offset_ms,
        };
        store::create_in(txn, ctx.reference, ctx.principal, input, meta, ctx.now)
            .await
            .map(|_| ())
    }

    async fn create_many(
        &self,
        txn: &DatabaseTransaction,
        ctx: &PushCtx<'_>,
        items: Vec<(String, Map<String, Value>)>,
    ) -> ApiResult<Vec<ApiResult<()>>> {
        let meta = WriteMeta {
            clock_offset_ms: ctx.clock_offset_ms,
        };
        let mut results: Vec<Option<ApiResult<()>>> = Vec::with_capacity(items.len());
        let mut inputs = Vec::new();
        let mut slots = Vec::new();
        for (id, raw) in &items {
            match new_violation(id, raw) {
                Ok(v) => {
                    slots.push(results.len());
                    results.push(None);
                    inputs.push((v, meta));
                }
                Err(e) => results.push(Some(Err(e))),
            }
        }
        let created =
            store::create_many_in(txn, ctx.reference, ctx.principal, inputs, ctx.now).await?;
        for (slot, r) in slots.into_iter().zip(created) {
            results[slot] = Some(r.map(|_| ()));
        }
        Ok(results.into_iter().map(|r| r.unwrap_or(Ok(()))).collect())
    }

    async fn update(
        &self,
        txn: &DatabaseTransaction,
        ctx: &PushCtx<'_>,
        id: &str,
        changes: &Map<String, Value>,
    ) -> ApiResult<()> {
        let mut patch = ViolationPatch::default();
        for (k, v) in changes {
            match k.as_str() {
                "category" => patch.category = enum_field(changes, k, Category::parse)?,
                "feitcode" => patch.feitcode = Some(v.as_str().map(str::to_string)),
                "description" => {
                    patch.description = Some(v.as_str().unwrap_or_default().to_string())
                }
                "outcome" => patch.outcome = enum_field(changes, k, Outcome::parse)?,
                "plate" => patch.plate = Some(v.as_str().map(str::to_string)),
                "driver_present" => patch.driver_present = Some(v.as_bool()),
                "sanction" => patch.sanction = Some(enum_field(changes, k, Sanction::parse)?),
                "officer_ids" => patch.officer_ids = Some(uuids(Some(v))?),
                "status" => patch.status = enum_field(changes, k, Status::parse)?,
                other => return Err(ApiError::field(other, "cannot be changed from a device")),
            }
        }
        store::update_in(
            txn,
            ctx.reference,
            ctx.principal,
            parse_id(id)?,
            patch,
            ctx.now,
        )
        .await?;
        Ok(())
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
        let rows = typed::pull_rows::<violation::Entity>(txn, p, s).await?;
        rows.iter()
            .map(|m| {
                let live = m.deleted_seq.is_none();
                // As `hidden_columns` decides for the canonical row (a test keeps them equal).
                let facts = store::facts(m);
                let hide = !access::withheld(p, access::Kind::Violation, &facts).is_empty();
                Ok(PulledRow {
                    seq: m.server_rev,
                    id: m.id.to_string(),
                    creation: typed::creation::<violation::Entity>(m),
                    row: if live {
                        Pulled::Wire(wire_row(m, hide)?)
                    } else {
                        Pulled::Deleted
                    },
                    wpg: access::released(p, access::Kind::Violation, &facts).filter(|_| live),
                })
            })
            .collect()
    }

    async fn window_exits(
        &self,
        txn: &DatabaseTransaction,
        p: &Principal,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> ApiResult<Vec<String>> {
        typed::window_exits::<violation::Entity>(txn, p, from, to).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::engine::wire_form;

    fn report(plate: Option<&str>, reviewed: bool) -> violation::Model {
        let t = DateTime::from_timestamp_millis(1_795_000_123_456).unwrap_or_default();
        let u = Uuid::from_u128(0x1234);
        violation::Model {
            id: Uuid::from_u128(0xabcdef),
            category: "parkeren".into(),
            feitcode: Some("R315a".into()),
            observed_at: t,
            lat: 52.4595,
            lon: 4.621,
            accuracy_m: 7.5,
            location_source: "gps".into(),
            fix_time: Some(t),
            wijk_code: Some("WK045301".into()),
            buurt_code: None,
            description: "Auto op de stoep \"bij\" de school".into(),
            outcome: "fine".into(),
            plate: plate.map(str::to_string),
            driver_present: plate.map(|_| false),
            sanction: None,
            officer_ids: json!([u.to_string()]),
            status: if reviewed { "approved" } else { "submitted" }.into(),
            review_note: reviewed.then(|| "akkoord".to_string()),
            reviewed_by: reviewed.then_some(u),
            reviewed_at: reviewed.then_some(t),
            team_id: Some(u),
            privacy_regime: "wpg".into(),
            created_by: u,
            created_at: t,
            updated_at: t,
            create_hash: "h".into(),
            server_rev: 42,
            field_revs: json!({}),
            deleted_seq: None,
            last_device_id: None,
            created_seq: None,
            created_device: None,
            flags: json!(["clock_offset"]),
            device_clock_offset_ms: None,
            round_id: None,
            retention_stage: 0,
        }
    }

    /// The regime read from a canonical row (push, generic pull) is the stored one (REST, the
    /// direct pull): one decision on every path.
    #[test]
    fn a_rows_facts_are_the_stored_facts() {
        let avg = violation::Model {
            outcome: "removed".into(),
            privacy_regime: "avg".into(),
            ..report(None, false)
        };
        for m in [report(Some("12-ABC-3"), true), report(None, false), avg] {
            let (row, stored) = (row_facts(&canonical_row(&m)), store::facts(&m));
            assert_eq!(
                (row.team, row.wpg),
                (stored.team, stored.wpg),
                "{}",
                m.outcome
            );
        }
    }

    /// The pull's direct serialisation sends exactly what the generic route would.
    #[test]
    fn the_wire_row_equals_the_canonical_route() {
        for m in [report(Some("12-ABC-3"), true), report(None, false)] {
            for hide in [false, true] {
                let hidden: &[&str] = if hide {
                    access::Kind::Violation.rule().wpg_fields
                } else {
                    &[]
                };
                let expected =
                    Value::Object(wire_form(&ViolationsTable, hidden, canonical_row(&m), 42));
                let fast: Value =
                    serde_json::from_str(wire_row(&m, hide).expect("serialises").get())
                        .expect("valid JSON");
                assert_eq!(fast, expected, "hide_wpg = {hide}");
            }
        }
    }
}
