//! The kinds of field records: what each holds, its merge policy per column, who reads and
//! writes it, and its rules.

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::{RecordKind, list, ms, num, one_of, position, text};
use crate::auth::{Action, Principal};
use crate::error::FieldError;
use crate::sync::merge::Policy::{self, *};
use crate::sync::table::Column;
use crate::sync::table::Kind::{self, *};
use crate::sync::table::Writable::{self, *};

const fn col(name: &'static str, kind: Kind, policy: Policy, w: Writable) -> Column {
    Column::new(name, kind, policy, w)
}

/// The server's columns every record carries on the wire.
macro_rules! meta_columns {
    () => {
        [
            col("team_id", Text, ServerOwned, Never),
            col("created_by", Text, ImmutableAfterCreate, Never),
            col("created_at", Millis, ServerOwned, Never),
            col("updated_at", Millis, ServerOwned, Never),
        ]
    };
}

const fn concat<const A: usize, const B: usize, const C: usize>(
    a: [Column; A],
    b: [Column; B],
) -> [Column; C] {
    let mut out = [col("", Text, ServerOwned, Never); C];
    let mut i = 0;
    while i < A {
        out[i] = a[i];
        i += 1;
    }
    let mut j = 0;
    while j < B {
        out[A + j] = b[j];
        j += 1;
    }
    out
}

fn field_role(p: &Principal) -> bool {
    p.may(Action::DoFieldWork)
}

/// The team lead's right over the team's field records.
fn edits_team(p: &Principal) -> bool {
    p.may(Action::EditTeamFieldRecords)
}

fn is_officer(p: &Principal, created_by: Uuid, d: &Map<String, Value>) -> bool {
    created_by == p.user_id
        || list(d, "officer_ids")
            .iter()
            .any(|v| v.as_str() == Some(p.user_id.to_string().as_str()))
}

/// Youth data (groups, observations, persons) is for jeugdboa's and Wpg-authorised team leads
/// (the access rules say so; the write rules of youth records follow them).
pub fn youth_reader(p: &Principal) -> bool {
    crate::access::reads_kind(p, crate::access::Kind::YouthPerson)
}

fn uuid_list(d: &Map<String, Value>, k: &str, errs: &mut Vec<FieldError>) {
    for v in list(d, k) {
        if v.as_str().and_then(|s| s.parse::<Uuid>().ok()).is_none() {
            errs.push(FieldError::new(k, "a list of user ids (UUIDs)"));
            return;
        }
    }
}

fn uuid_field(d: &Map<String, Value>, k: &str, required: bool, errs: &mut Vec<FieldError>) {
    match text(d, k) {
        Some(s) if s.parse::<Uuid>().is_ok() => {}
        Some(_) => errs.push(FieldError::new(k, "a UUID")),
        None if required => errs.push(FieldError::new(k, "required")),
        None => {}
    }
}

fn range(d: &Map<String, Value>, k: &str, lo: f64, hi: f64, errs: &mut Vec<FieldError>) {
    if let Some(v) = num(d, k)
        && !(lo..=hi).contains(&v)
    {
        errs.push(FieldError::new(k, format!("between {lo} and {hi}")));
    }
}

fn required_time(d: &Map<String, Value>, k: &str, errs: &mut Vec<FieldError>) {
    if ms(d.get(k)).is_none() {
        errs.push(FieldError::new(
            k,
            "required: ms since 1970 (sync) or RFC 3339 (REST)",
        ));
    }
}

// ---------------------------------------------------------------------------------------------
// Patrol rounds (surveillancerondes)

/// Round states in workflow order: a later state wins a concurrent edit.
pub const ROUND_STATUS: &[(&str, u8)] = &[
    ("planned", 0),
    ("started", 1),
    ("paused", 1),
    ("completed", 2),
];
pub const SHIFTS: &[&str] = &["early", "late", "night"];

/// A patrol round: planned by a team lead (area, checkpoints, shift, officers) or started ad hoc
/// on a phone; planned → started ⇄ paused → completed.
pub struct Rounds;
pub static ROUNDS: Rounds = Rounds;

const ROUND_FIELDS: [Column; 13] = [
    col("name", Text, LastReceivedWins, Always),
    col("shift", Text, LastReceivedWins, Always),
    col("planned_start", Millis, LastReceivedWins, Always),
    col("planned_end", Millis, LastReceivedWins, Always),
    col("status", Text, StateOrder(ROUND_STATUS), Always),
    col("area_codes", JsonList, Union, Always),
    col("area_polygon", Text, LastReceivedWins, Always),
    col("checkpoints", JsonList, LastReceivedWins, Always),
    col("officer_ids", JsonList, Union, Always),
    col("ad_hoc", Bool, ImmutableAfterCreate, OnCreate),
    col("started_at", Millis, LastReceivedWins, Always),
    col("ended_at", Millis, LastReceivedWins, Always),
    col("notes", Text, LastReceivedWins, Always),
];
static ROUND_COLUMNS: [Column; 17] = concat(ROUND_FIELDS, meta_columns!());

impl RecordKind for Rounds {
    fn wire_name(&self) -> &'static str {
        "rounds"
    }
    fn access(&self) -> crate::access::Kind {
        crate::access::Kind::Round
    }
    fn db_table(&self) -> &'static str {
        "patrol_round"
    }
    fn columns(&self) -> &'static [Column] {
        &ROUND_COLUMNS
    }
    fn time_columns(&self) -> &'static [&'static str] {
        &["planned_start", "planned_end", "started_at", "ended_at"]
    }
    fn may_create(&self, p: &Principal, d: &Map<String, Value>) -> bool {
        // A planned round is the team lead's; an officer starts one ad hoc.
        p.may(Action::PlanRounds)
            || (field_role(p) && d.get("ad_hoc").and_then(Value::as_bool) == Some(true))
    }
    fn may_edit(&self, p: &Principal, created_by: Uuid, d: &Map<String, Value>) -> bool {
        edits_team(p) || (field_role(p) && is_officer(p, created_by, d))
    }
    fn occurred_at(&self, d: &Map<String, Value>, now: DateTime<Utc>) -> DateTime<Utc> {
        ms(d.get("planned_start"))
            .or(ms(d.get("started_at")))
            .unwrap_or(now)
    }
    fn check(
        &self,
        d: &Map<String, Value>,
        _before: Option<&Map<String, Value>>,
        _now: DateTime<Utc>,
    ) -> Vec<FieldError> {
        let mut e = Vec::new();
        if text(d, "name").is_none_or(|n| n.trim().is_empty()) {
            e.push(FieldError::new("name", "required"));
        }
        one_of(d, "shift", SHIFTS, false, &mut e);
        let states: Vec<&str> = ROUND_STATUS.iter().map(|(s, _)| *s).collect();
        one_of(d, "status", &states, true, &mut e);
        if ms(d.get("planned_start")).is_none() && ms(d.get("started_at")).is_none() {
            e.push(FieldError::new(
                "planned_start",
                "a planned round needs planned_start; an ad hoc round started_at",
            ));
        }
        if let (Some(a), Some(b)) = (ms(d.get("started_at")), ms(d.get("ended_at")))
            && b < a
        {
            e.push(FieldError::new("ended_at", "before started_at"));
        }
        for c in list(d, "area_codes") {
            if !c
                .as_str()
                .is_some_and(|s| s.starts_with("WK") || s.starts_with("BU"))
            {
                e.push(FieldError::new(
                    "area_codes",
                    "wijk (WK…) or buurt (BU…) codes",
                ));
                break;
            }
        }
        if let Some(g) = text(d, "area_polygon")
            && !g.is_empty()
            && crate::geo::parse_shape(g).is_err()
        {
            e.push(FieldError::new(
                "area_polygon",
                "a GeoJSON Polygon or MultiPolygon geometry",
            ));
        }
        for (i, c) in list(d, "checkpoints").iter().enumerate() {
            let ok = c.get("name").and_then(Value::as_str).is_some()
                && c.get("lat")
                    .and_then(Value::as_f64)
                    .is_some_and(|v| (-90.0..=90.0).contains(&v))
                && c.get("lon")
                    .and_then(Value::as_f64)
                    .is_some_and(|v| (-180.0..=180.0).contains(&v))
                && c.get("radius_m")
                    .and_then(Value::as_f64)
                    .is_some_and(|r| (1.0..=1000.0).contains(&r));
            if !ok {
                e.push(FieldError::new(
                    format!("checkpoints[{i}]"),
                    "{id, name, lat, lon, radius_m (1–1000)}",
                ));
            }
        }
        uuid_list(d, "officer_ids", &mut e);
        e
    }
}

// ---------------------------------------------------------------------------------------------
// Track segments

/// Most points in one segment (a phone sends its track in batches).
pub const MAX_SEGMENT_POINTS: usize = 5000;

/// How far before a round's start or after its end a fix is still the round's (a phone's clock
/// and GPS lag a little).
pub const FIX_MARGIN_MS: i64 = 2 * 60 * 1000;

/// A batch of a round's GPS track, immutable once recorded. Points are
/// `[lat, lon, t_ms, accuracy_m|null, speed_mps|null]`.
pub struct Segments;
pub static SEGMENTS: Segments = Segments;

const SEGMENT_FIELDS: [Column; 3] = [
    col("round_id", Text, ImmutableAfterCreate, OnCreate),
    col("started_at", Millis, ImmutableAfterCreate, OnCreate),
    col("points", JsonList, ImmutableAfterCreate, OnCreate),
];
static SEGMENT_COLUMNS: [Column; 7] = concat(SEGMENT_FIELDS, meta_columns!());

impl RecordKind for Segments {
    fn wire_name(&self) -> &'static str {
        "track_segments"
    }
    fn access(&self) -> crate::access::Kind {
        crate::access::Kind::TrackSegment
    }
    fn db_table(&self) -> &'static str {
        "track_segment"
    }
    fn columns(&self) -> &'static [Column] {
        &SEGMENT_COLUMNS
    }
    fn time_columns(&self) -> &'static [&'static str] {
        &["started_at"]
    }
    fn may_create(&self, p: &Principal, _d: &Map<String, Value>) -> bool {
        field_role(p)
    }
    fn may_edit(&self, p: &Principal, created_by: Uuid, _d: &Map<String, Value>) -> bool {
        created_by == p.user_id || edits_team(p)
    }
    fn parent(&self) -> Option<(&'static str, &'static dyn RecordKind)> {
        Some(("round_id", &ROUNDS))
    }
    fn occurred_at(&self, d: &Map<String, Value>, now: DateTime<Utc>) -> DateTime<Utc> {
        ms(d.get("started_at"))
            .or_else(|| {
                list(d, "points")
                    .first()
                    .and_then(|p| p.get(2))
                    .and_then(|t| ms(Some(t)))
            })
            .unwrap_or(now)
    }
    /// Purpose binding of employees' GPS (AVG; the AP lists GPS tracking of employees among
    /// the processings that need a DPIA): a fix is stored only while its officer is on the
    /// round, from its start to its end (with [`FIX_MARGIN_MS`] either side for the phone's
    /// clock); a fix before the round started or after it ended is dropped before the segment
    /// is stored. A round not started yet or still running bounds only the side it knows.
    fn bind_to_parent(&self, d: &mut Map<String, Value>, round: &Map<String, Value>) {
        let start = round.get("started_at").and_then(Value::as_i64);
        let end = round.get("ended_at").and_then(Value::as_i64);
        if let Some(Value::Array(points)) = d.get_mut("points") {
            points.retain(|p| {
                let Some(t) = p
                    .get(2)
                    .and_then(|t| t.as_i64().or_else(|| t.as_f64().map(|f| f as i64)))
                else {
                    return false;
                };
                start.is_none_or(|s| t >= s - FIX_MARGIN_MS)
                    && end.is_none_or(|e| t <= e + FIX_MARGIN_MS)
            });
        }
    }
    fn check(
        &self,
        d: &Map<String, Value>,
        _before: Option<&Map<String, Value>>,
        _now: DateTime<Utc>,
    ) -> Vec<FieldError> {
        let mut e = Vec::new();
        uuid_field(d, "round_id", true, &mut e);
        let points = list(d, "points");
        if points.is_empty() {
            e.push(FieldError::new("points", "at least one point"));
        }
        if points.len() > MAX_SEGMENT_POINTS {
            e.push(FieldError::new(
                "points",
                format!("at most {MAX_SEGMENT_POINTS} points per segment"),
            ));
        }
        for (i, p) in points.iter().enumerate() {
            if crate::rounds::point(p).is_none() {
                e.push(FieldError::new(
                    format!("points[{i}]"),
                    "[lat, lon, t_ms, accuracy_m|null, speed_mps|null]",
                ));
                break;
            }
        }
        e
    }
}

// ---------------------------------------------------------------------------------------------
// Youth groups

/// The municipality's own assessment of a group ("gemeentelijke duiding"), not the police's.
pub const DUIDING: &[&str] = &["none", "hinderlijk", "overlastgevend", "crimineel"];

/// A known youth group: name, usual hang-out spots, the municipal assessment with its history.
pub struct Groups;
pub static GROUPS: Groups = Groups;

const GROUP_FIELDS: [Column; 6] = [
    col("name", Text, LastReceivedWins, Always),
    col("spots", JsonList, LastReceivedWins, Always),
    col("duiding", Text, LastReceivedWins, Always),
    col("duiding_history", JsonList, ServerOwned, Never),
    col("notes", Text, LastReceivedWins, Always),
    col("active", Bool, LastReceivedWins, Always),
];
static GROUP_COLUMNS: [Column; 10] = concat(GROUP_FIELDS, meta_columns!());

impl RecordKind for Groups {
    fn wire_name(&self) -> &'static str {
        "youth_groups"
    }
    fn access(&self) -> crate::access::Kind {
        crate::access::Kind::YouthGroup
    }
    fn db_table(&self) -> &'static str {
        "youth_group"
    }
    fn columns(&self) -> &'static [Column] {
        &GROUP_COLUMNS
    }
    fn may_create(&self, p: &Principal, _d: &Map<String, Value>) -> bool {
        youth_reader(p)
    }
    fn may_edit(&self, p: &Principal, _c: Uuid, _d: &Map<String, Value>) -> bool {
        youth_reader(p)
    }
    fn occurred_at(&self, _d: &Map<String, Value>, now: DateTime<Utc>) -> DateTime<Utc> {
        // The register is always in scope: its records are "about" the day they were made,
        // and kept current by edits; see `Groups::check`.
        now
    }
    fn check(
        &self,
        d: &Map<String, Value>,
        _before: Option<&Map<String, Value>>,
        _now: DateTime<Utc>,
    ) -> Vec<FieldError> {
        let mut e = Vec::new();
        if text(d, "name").is_none_or(|n| n.trim().is_empty()) {
            e.push(FieldError::new("name", "required"));
        }
        one_of(d, "duiding", DUIDING, false, &mut e);
        for (i, s) in list(d, "spots").iter().enumerate() {
            let point = s.get("lat").and_then(Value::as_f64).is_some()
                && s.get("lon").and_then(Value::as_f64).is_some();
            let polygon = s
                .get("polygon")
                .map(|g| crate::geo::parse_shape(&g.to_string()).is_ok())
                .unwrap_or(false);
            if s.get("name").and_then(Value::as_str).is_none() || !(point || polygon) {
                e.push(FieldError::new(
                    format!("spots[{i}]"),
                    "{name, lat, lon} or {name, polygon: GeoJSON geometry}",
                ));
            }
        }
        e
    }
    fn on_change(
        &self,
        before: Option<&Map<String, Value>>,
        d: &mut Map<String, Value>,
        now: DateTime<Utc>,
        by: &Principal,
    ) -> Vec<&'static str> {
        let old = before.and_then(|b| text(b, "duiding")).unwrap_or("none");
        let new = text(d, "duiding").unwrap_or("none").to_string();
        if before.is_some() && old == new {
            return vec![];
        }
        if before.is_none() && new == "none" {
            return vec![];
        }
        let mut history = list(d, "duiding_history").to_vec();
        history.push(json!({
            "duiding": new,
            "at": now.timestamp_millis(),
            "by": by.user_id.to_string(),
        }));
        d.insert("duiding_history".into(), Value::Array(history));
        vec!["duiding_history"]
    }
}

// ---------------------------------------------------------------------------------------------
// Youth-group observations

pub const BEHAVIOURS: &[&str] = &[
    "noise",
    "intimidation",
    "vandalism",
    "alcohol",
    "drugs",
    "weapons",
    "violence",
    "litter",
    "other",
];
pub const REFERRALS: &[&str] = &["youth_work", "wijkagent", "halt", "none"];
pub const GENDER_MIX: &[&str] = &["boys", "girls", "mixed", "unknown"];

/// A jeugdboa's sighting of a group: where, when, how many, what they did, contact, referral.
pub struct Observations;
pub static OBSERVATIONS: Observations = Observations;

const OBSERVATION_FIELDS: [Column; 17] = [
    col("group_id", Text, ImmutableAfterCreate, OnCreate),
    col("new_group_name", Text, LastReceivedWins, Always),
    col("observed_at", Millis, ImmutableAfterCreate, OnCreate),
    col("duration_min", Float, LastReceivedWins, Always),
    col("lat", Float, ImmutableAfterCreate, OnCreate),
    col("lon", Float, ImmutableAfterCreate, OnCreate),
    col("spot", Text, LastReceivedWins, Always),
    col("size_estimate", Float, LastReceivedWins, Always),
    col("age_min", Float, LastReceivedWins, Always),
    col("age_max", Float, LastReceivedWins, Always),
    col("gender_mix", Text, LastReceivedWins, Always),
    col("behaviours", JsonList, Union, Always),
    col("contact_made", Bool, LastReceivedWins, Always),
    col("contact_outcome", Text, LastReceivedWins, Always),
    col("referral", Text, LastReceivedWins, Always),
    col("notes", Text, LastReceivedWins, Always),
    col("round_id", Text, ImmutableAfterCreate, OnCreate),
];
static OBSERVATION_COLUMNS: [Column; 21] = concat(OBSERVATION_FIELDS, meta_columns!());

impl RecordKind for Observations {
    fn wire_name(&self) -> &'static str {
        "youth_observations"
    }
    fn access(&self) -> crate::access::Kind {
        crate::access::Kind::YouthObservation
    }
    fn db_table(&self) -> &'static str {
        "youth_observation"
    }
    fn columns(&self) -> &'static [Column] {
        &OBSERVATION_COLUMNS
    }
    fn time_columns(&self) -> &'static [&'static str] {
        &["observed_at"]
    }
    fn may_create(&self, p: &Principal, _d: &Map<String, Value>) -> bool {
        youth_reader(p)
    }
    fn may_edit(&self, p: &Principal, _c: Uuid, _d: &Map<String, Value>) -> bool {
        youth_reader(p)
    }
    fn parent(&self) -> Option<(&'static str, &'static dyn RecordKind)> {
        Some(("group_id", &GROUPS))
    }
    fn occurred_at(&self, d: &Map<String, Value>, now: DateTime<Utc>) -> DateTime<Utc> {
        ms(d.get("observed_at")).unwrap_or(now)
    }
    fn check(
        &self,
        d: &Map<String, Value>,
        _before: Option<&Map<String, Value>>,
        now: DateTime<Utc>,
    ) -> Vec<FieldError> {
        let mut e = Vec::new();
        uuid_field(d, "group_id", false, &mut e);
        uuid_field(d, "round_id", false, &mut e);
        if text(d, "group_id").is_none()
            && text(d, "new_group_name").is_none_or(|n| n.trim().is_empty())
        {
            e.push(FieldError::new(
                "group_id",
                "a known group, or new_group_name for a group not in the register",
            ));
        }
        required_time(d, "observed_at", &mut e);
        if ms(d.get("observed_at")).is_some_and(|t| t > now + chrono::Duration::minutes(5)) {
            e.push(FieldError::new("observed_at", "lies in the future"));
        }
        position(d, true, &mut e);
        range(d, "duration_min", 0.0, 24.0 * 60.0, &mut e);
        range(d, "size_estimate", 1.0, 500.0, &mut e);
        range(d, "age_min", 6.0, 30.0, &mut e);
        range(d, "age_max", 6.0, 30.0, &mut e);
        if let (Some(a), Some(b)) = (num(d, "age_min"), num(d, "age_max"))
            && a > b
        {
            e.push(FieldError::new("age_max", "below age_min"));
        }
        one_of(d, "gender_mix", GENDER_MIX, false, &mut e);
        one_of(d, "referral", REFERRALS, false, &mut e);
        for b in list(d, "behaviours") {
            if !b.as_str().is_some_and(|s| BEHAVIOURS.contains(&s)) {
                e.push(FieldError::new(
                    "behaviours",
                    format!("each one of {}", BEHAVIOURS.join(", ")),
                ));
                break;
            }
        }
        e
    }
}

// ---------------------------------------------------------------------------------------------
// Youth persons (Wpg)

/// A member of a group by name: the most sensitive data in the system (often minors). A table
/// of its own, readable only by jeugdboa's and Wpg-authorised team leads; every read is logged.
pub struct Persons;
pub static PERSONS: Persons = Persons;

const PERSON_FIELDS: [Column; 4] = [
    col("group_id", Text, ImmutableAfterCreate, OnCreate),
    col("name", Text, LastReceivedWins, Always),
    col("date_of_birth", Text, LastReceivedWins, Always),
    col("notes", Text, LastReceivedWins, Always),
];
static PERSON_COLUMNS: [Column; 8] = concat(PERSON_FIELDS, meta_columns!());

impl RecordKind for Persons {
    fn wire_name(&self) -> &'static str {
        "youth_persons"
    }
    fn access(&self) -> crate::access::Kind {
        crate::access::Kind::YouthPerson
    }
    fn db_table(&self) -> &'static str {
        "youth_person"
    }
    fn columns(&self) -> &'static [Column] {
        &PERSON_COLUMNS
    }
    fn may_create(&self, p: &Principal, _d: &Map<String, Value>) -> bool {
        youth_reader(p)
    }
    fn may_edit(&self, p: &Principal, _c: Uuid, _d: &Map<String, Value>) -> bool {
        youth_reader(p)
    }
    fn parent(&self) -> Option<(&'static str, &'static dyn RecordKind)> {
        Some(("group_id", &GROUPS))
    }
    fn occurred_at(&self, _d: &Map<String, Value>, now: DateTime<Utc>) -> DateTime<Utc> {
        now
    }
    fn check(
        &self,
        d: &Map<String, Value>,
        _before: Option<&Map<String, Value>>,
        now: DateTime<Utc>,
    ) -> Vec<FieldError> {
        let mut e = Vec::new();
        uuid_field(d, "group_id", true, &mut e);
        if text(d, "name").is_none_or(|n| n.trim().is_empty()) {
            e.push(FieldError::new("name", "required"));
        }
        if let Some(dob) = text(d, "date_of_birth") {
            match NaiveDate::parse_from_str(dob, "%Y-%m-%d") {
                Ok(day) if day <= now.date_naive() => {}
                _ => e.push(FieldError::new("date_of_birth", "a past date, YYYY-MM-DD")),
            }
        }
        e
    }
}

// ---------------------------------------------------------------------------------------------
// Incidents

pub const INCIDENT_KINDS: &[&str] = &["aggression", "use_of_force", "police_assistance"];

/// Aggression against officers, use of force (with when the hulpofficier van justitie and the
/// direct supervisor were notified), police assistance requested.
pub struct Incidents;
pub static INCIDENTS: Incidents = Incidents;

const INCIDENT_FIELDS: [Column; 10] = [
    col("kind", Text, LastReceivedWins, Always),
    col("occurred_at", Millis, ImmutableAfterCreate, OnCreate),
    col("lat", Float, ImmutableAfterCreate, OnCreate),
    col("lon", Float, ImmutableAfterCreate, OnCreate),
    col("description", Text, LastReceivedWins, Always),
    col("officer_ids", JsonList, Union, Always),
    col("hovj_notified_at", Millis, LastReceivedWins, Always),
    col("supervisor_notified_at", Millis, LastReceivedWins, Always),
    col("police_requested", Bool, LastReceivedWins, Always),
    col("round_id", Text, ImmutableAfterCreate, OnCreate),
];
static INCIDENT_COLUMNS: [Column; 14] = concat(INCIDENT_FIELDS, meta_columns!());

impl RecordKind for Incidents {
    fn wire_name(&self) -> &'static str {
        "incidents"
    }
    fn access(&self) -> crate::access::Kind {
        crate::access::Kind::Incident
    }
    fn db_table(&self) -> &'static str {
        "incident"
    }
    fn columns(&self) -> &'static [Column] {
        &INCIDENT_COLUMNS
    }
    fn time_columns(&self) -> &'static [&'static str] {
        &["occurred_at", "hovj_notified_at", "supervisor_notified_at"]
    }
    fn may_create(&self, p: &Principal, _d: &Map<String, Value>) -> bool {
        field_role(p)
    }
    fn may_edit(&self, p: &Principal, created_by: Uuid, d: &Map<String, Value>) -> bool {
        edits_team(p) || is_officer(p, created_by, d)
    }
    fn occurred_at(&self, d: &Map<String, Value>, now: DateTime<Utc>) -> DateTime<Utc> {
        ms(d.get("occurred_at")).unwrap_or(now)
    }
    fn check(
        &self,
        d: &Map<String, Value>,
        _before: Option<&Map<String, Value>>,
        now: DateTime<Utc>,
    ) -> Vec<FieldError> {
        let mut e = Vec::new();
        one_of(d, "kind", INCIDENT_KINDS, true, &mut e);
        required_time(d, "occurred_at", &mut e);
        position(d, false, &mut e);
        uuid_list(d, "officer_ids", &mut e);
        uuid_field(d, "round_id", false, &mut e);
        let at = ms(d.get("occurred_at"));
        for k in ["hovj_notified_at", "supervisor_notified_at"] {
            if let (Some(n), Some(a)) = (ms(d.get(k)), at)
                && (n < a || n > now + chrono::Duration::minutes(5))
            {
                e.push(FieldError::new(k, "between the incident and now"));
            }
        }
        e
    }
}

// ---------------------------------------------------------------------------------------------
// Attention points (the team lead's notes for the briefing)

/// The team lead's attention point for a day (and shift) of the briefing; leads write and edit
/// them, offline too; every phone reads them.
pub struct Notes;
pub static NOTES: Notes = Notes;

const NOTE_FIELDS: [Column; 3] = [
    col("date", Text, ImmutableAfterCreate, OnCreate),
    col("shift", Text, LastReceivedWins, Always),
    col("text", Text, LastReceivedWins, Always),
];
static NOTE_COLUMNS: [Column; 7] = concat(NOTE_FIELDS, meta_columns!());

impl RecordKind for Notes {
    fn wire_name(&self) -> &'static str {
        "briefing_notes"
    }
    fn access(&self) -> crate::access::Kind {
        crate::access::Kind::BriefingNote
    }
    fn db_table(&self) -> &'static str {
        "briefing_note"
    }
    fn columns(&self) -> &'static [Column] {
        &NOTE_COLUMNS
    }
    fn may_create(&self, p: &Principal, _d: &Map<String, Value>) -> bool {
        p.may(Action::LeadBriefing)
    }
    fn may_edit(&self, p: &Principal, _c: Uuid, _d: &Map<String, Value>) -> bool {
        p.may(Action::LeadBriefing)
    }
    fn occurred_at(&self, d: &Map<String, Value>, now: DateTime<Utc>) -> DateTime<Utc> {
        text(d, "date")
            .and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
            .map(|day| crate::violations::store::amsterdam_day(day).0)
            .unwrap_or(now)
    }
    fn check(
        &self,
        d: &Map<String, Value>,
        _before: Option<&Map<String, Value>>,
        _now: DateTime<Utc>,
    ) -> Vec<FieldError> {
        let mut e = Vec::new();
        if text(d, "date")
            .and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
            .is_none()
        {
            e.push(FieldError::new("date", "required: YYYY-MM-DD"));
        }
        one_of(d, "shift", SHIFTS, false, &mut e);
        if text(d, "text").is_none_or(|t| t.trim().is_empty()) {
            e.push(FieldError::new("text", "required"));
        }
        if text(d, "text").is_some_and(|t| t.len() > 4000) {
            e.push(FieldError::new("text", "at most 4000 characters"));
        }
        e
    }
}

// ---------------------------------------------------------------------------------------------
// Signed briefings (read-only on phones)

/// A signed briefing as a document phones pull and read offline. Written by the server at
/// sign-off; `content` is the briefing without youth sections, `content_youth` the youth
/// sections (names of group members included), withheld from readers without youth access.
pub struct Briefings;
pub static BRIEFINGS: Briefings = Briefings;

const BRIEFING_FIELDS: [Column; 6] = [
    col("date", Text, ServerOwned, Never),
    col("shift", Text, ServerOwned, Never),
    col("signed_by", Text, ServerOwned, Never),
    col("signed_at", Millis, ServerOwned, Never),
    col("content", Text, ServerOwned, Never),
    col("content_youth", Text, ServerOwned, Never),
];
static BRIEFING_COLUMNS: [Column; 10] = concat(BRIEFING_FIELDS, meta_columns!());

impl RecordKind for Briefings {
    fn wire_name(&self) -> &'static str {
        "briefings"
    }
    fn access(&self) -> crate::access::Kind {
        crate::access::Kind::Briefing
    }
    fn db_table(&self) -> &'static str {
        "briefing_doc"
    }
    fn columns(&self) -> &'static [Column] {
        &BRIEFING_COLUMNS
    }
    fn time_columns(&self) -> &'static [&'static str] {
        &["signed_at"]
    }
    fn may_create(&self, _p: &Principal, _d: &Map<String, Value>) -> bool {
        false
    }
    fn may_edit(&self, _p: &Principal, _c: Uuid, _d: &Map<String, Value>) -> bool {
        false
    }
    fn occurred_at(&self, d: &Map<String, Value>, now: DateTime<Utc>) -> DateTime<Utc> {
        text(d, "date")
            .and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
            .map(|day| crate::violations::store::amsterdam_day(day).0)
            .unwrap_or(now)
    }
    fn check(
        &self,
        _d: &Map<String, Value>,
        _before: Option<&Map<String, Value>>,
        _now: DateTime<Utc>,
    ) -> Vec<FieldError> {
        vec![]
    }
}

/// Every kind, parents before children (a push applies them in this order).
pub fn all() -> [&'static dyn RecordKind; 8] {
    [
        &ROUNDS,
        &SEGMENTS,
        &GROUPS,
        &OBSERVATIONS,
        &PERSONS,
        &INCIDENTS,
        &NOTES,
        &BRIEFINGS,
    ]
}
