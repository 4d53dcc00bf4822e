//! Gathers the facts of a briefing from the database, in the reader's scope, and builds it.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect};
use serde_json::Value;
use uuid::Uuid;

use super::aggregate::{self, HistoryFact, Inputs, ObservationFact, RoundFact, ViolationFact};
use super::{
    Addendum, AttentionPoint, Briefing, IncidentLine, Shift, ShiftHours, SignOff, YouthPerson,
};
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::records::RecordKind;
use crate::records::kinds::{self, GROUPS, INCIDENTS, NOTES, OBSERVATIONS, PERSONS, ROUNDS};
use crate::records::{list as doc_list, ms, num, store as records, text};
use crate::reference::Reference;
use crate::violations::entity::violation;

/// What a briefing is built for, beside the database: the reader, the date and shift, the
/// moment, and the server's reference data, round cache and shift hours.
#[derive(Clone, Copy)]
pub struct Ask<'a> {
    pub reference: &'a Reference,
    pub cache: &'a RoundCache,
    pub hours: &'a ShiftHours,
    pub reader: &'a Principal,
    pub date: NaiveDate,
    pub shift: Option<Shift>,
    pub now: DateTime<Utc>,
}

/// The briefing of a date (and shift) as this principal may see it: built now, or as signed
/// with an addendum of what changed since.
pub async fn briefing<C: ConnectionTrait>(conn: &C, ask: &Ask<'_>) -> ApiResult<Briefing> {
    Ok(briefing_and_map(conn, ask).await?.0)
}

/// The briefing as [`briefing`] gives it, and what its map draws, from one build.
pub async fn briefing_and_map<C: ConnectionTrait>(
    conn: &C,
    ask: &Ask<'_>,
) -> ApiResult<(Briefing, MapFacts)> {
    let (p, date, shift, now) = (ask.reader, ask.date, ask.shift, ask.now);
    let (current, map) = build_full(conn, ask).await?;
    // A team's own sign-off only: a reader without a team (the beheerder) reads the briefing
    // as built now.
    let sign = match p.team_id {
        Some(team) => signed(conn, team, date, shift).await?,
        None => None,
    };
    let b = match sign {
        None => current,
        Some((sign, snapshot)) => {
            // The frozen copy, redacted by the same rules for this reader.
            let mut frozen: Briefing = serde_json::from_value(snapshot)
                .map_err(|e| ApiError::internal(anyhow::anyhow!("stored briefing: {e}")))?;
            redact(&mut frozen, p);
            let changes = aggregate::addendum(&frozen, &current);
            frozen.signed = Some(sign);
            frozen.addendum = if changes.is_empty() {
                None
            } else {
                Some(Addendum {
                    computed_at: now,
                    changes,
                })
            };
            frozen
        }
    };
    Ok((b, map))
}

fn shift_key(shift: Option<Shift>) -> &'static str {
    shift.map(Shift::as_str).unwrap_or("day")
}

/// Withholds from a briefing what the access rules withhold from this reader: the youth
/// sections (youth data) and the incidents' descriptions (Wpg). The briefing as built, a
/// frozen copy and the copy synced to every phone all pass through here.
pub fn redact(b: &mut Briefing, p: &Principal) {
    use crate::access::{Kind, reads_kind, reads_wpg_of};
    let mut redacted = Vec::new();
    if !reads_kind(p, Kind::YouthObservation) {
        b.youth = None;
        redacted.push("youth".to_string());
    }
    if !reads_kind(p, Kind::YouthPerson) {
        b.youth_persons = None;
        redacted.push("youth_persons".to_string());
    }
    if !reads_wpg_of(p, Kind::Incident) {
        for i in &mut b.incidents {
            i.description = None;
        }
        redacted.push("incidents.description".to_string());
    }
    b.redacted = redacted;
}

/// A team's sign-off of a date and shift, with the briefing as signed.
pub async fn signed<C: ConnectionTrait>(
    conn: &C,
    team: Uuid,
    date: NaiveDate,
    shift: Option<Shift>,
) -> ApiResult<Option<(SignOff, Value)>> {
    let q = Query::select()
        .columns(["signed_by", "signed_by_name", "signed_at", "snapshot"])
        .from("briefing_signoff")
        .and_where(Expr::col("team_id").eq(team))
        .and_where(Expr::col("date").eq(date.to_string()))
        .and_where(Expr::col("shift").eq(shift_key(shift)))
        .to_owned();
    let Some(row) = conn.query_one(&q).await? else {
        return Ok(None);
    };
    Ok(Some((
        SignOff {
            by: row.try_get("", "signed_by")?,
            by_name: row.try_get("", "signed_by_name")?,
            at: row.try_get("", "signed_at")?,
        },
        row.try_get("", "snapshot")?,
    )))
}

/// Signs the briefing off: the complete (unredacted) briefing is frozen as signed. Only a team
/// lead signs, on or before the briefing's day; a signed briefing is not signed again. The API
/// and the web page both sign through here.
pub async fn sign(txn: &sea_orm::DatabaseTransaction, ask: &Ask<'_>) -> ApiResult<Briefing> {
    let (p, date, shift, now) = (ask.reader, ask.date, ask.shift, ask.now);
    // Signed on or before its day (a night shift's lead may sign the next day's early shift).
    let today = now
        .with_timezone(&chrono_tz::Europe::Amsterdam)
        .date_naive();
    if date > today + chrono::Duration::days(1) {
        return Err(ApiError::field(
            "date",
            "a briefing is signed on or before its day",
        ));
    }
    p.authorize(crate::auth::Action::LeadBriefing)?;
    let Some(team) = p.team_id else {
        return Err(ApiError::Forbidden(
            "a teamleider signs their team's briefing; this account has no team".into(),
        ));
    };
    if signed(txn, team, date, shift).await?.is_some() {
        return Err(ApiError::Conflict {
            detail: format!(
                "the briefing of {date} ({}) is already signed off",
                shift_key(shift)
            ),
            existing: None,
        });
    }
    // Frozen complete: the team's whole briefing, youth and Wpg sections included, whoever
    // signs; each reader gets it through `redact`.
    let mut complete = p.clone();
    complete.role = crate::auth::Role::Teamleider;
    complete.wpg_authorised = true;
    let b = build(
        txn,
        &Ask {
            reader: &complete,
            ..*ask
        },
    )
    .await?;
    let ins = Query::insert()
        .into_table("briefing_signoff")
        .columns([
            "date",
            "shift",
            "team_id",
            "signed_by",
            "signed_by_name",
            "signed_at",
            "snapshot",
        ])
        .values_panic([
            date.to_string().into(),
            shift_key(shift).into(),
            p.team_id.into(),
            p.user_id.into(),
            p.username.clone().into(),
            now.into(),
            serde_json::to_value(&b).map_err(ApiError::internal)?.into(),
        ])
        .to_owned();
    txn.execute(&ins).await?;
    // The signed briefing goes to every phone of the team (read offline): youth sections apart,
    // for those allowed to read them; the incidents without their descriptions (a phone reads
    // those from the incidents table, under that table's rule).
    let mut public = b.clone();
    redact(&mut public, &Principal::system("briefing-sync"));
    public.signed = Some(SignOff {
        by: p.user_id,
        by_name: p.username.clone(),
        at: now,
    });
    let youth = serde_json::json!({ "youth": b.youth, "youth_persons": b.youth_persons });
    let mut doc = serde_json::Map::new();
    doc.insert("date".into(), date.to_string().into());
    doc.insert("shift".into(), shift_key(shift).into());
    doc.insert("signed_by".into(), p.username.clone().into());
    doc.insert("signed_at".into(), now.timestamp_millis().into());
    doc.insert(
        "content".into(),
        serde_json::to_string(&public)
            .map_err(ApiError::internal)?
            .into(),
    );
    doc.insert("content_youth".into(), youth.to_string().into());
    records::create_server_in(txn, &kinds::BRIEFINGS, p, Uuid::new_v4(), doc, now).await?;
    let mut b = b;
    b.signed = public.signed.clone();
    redact(&mut b, p);
    crate::audit::record(
        txn,
        &p.actor(),
        crate::audit::Entry::new(
            "sign_off",
            "briefing",
            format!("{date}/{}", shift_key(shift)),
        )
        .detail(
            serde_json::json!({ "violations": b.violations.total, "rounds_done": b.rounds.done }),
        ),
        now,
    )
    .await?;
    Ok(b)
}

/// The columns of a report the briefing reads.
type ViolationRow = (
    Uuid,
    String,
    Option<String>,
    String,
    String,
    DateTime<Utc>,
    f64,
    f64,
    Option<String>,
    Option<String>,
    Value,
);

/// Category, feitcode, outcome, wijk and time of an earlier report.
type HistoryRow = (
    String,
    Option<String>,
    String,
    Option<String>,
    DateTime<Utc>,
);

/// Which of the 28 previous days' same window a time falls in.
fn days_ago(t: DateTime<Utc>, from: DateTime<Utc>, to: DateTime<Utc>) -> Option<usize> {
    if t >= from {
        return None;
    }
    let k = ((from - t).num_seconds() + 86_399) / 86_400;
    let k = std::cmp::max(k, 1);
    let (a, b) = (from - Duration::days(k), to - Duration::days(k));
    (t >= a && t < b && k <= 28).then_some(k as usize)
}

/// A round's statistics and its accepted fixes.
type Derived = std::sync::Arc<(crate::rounds::derive::RoundStats, Vec<(f64, f64)>)>;

/// Derived round statistics by round, kept while the round and its segments are unchanged
/// (keyed by their revisions), so a briefing re-derives only the rounds whose data changed.
/// Per process; the key comes from the database, so it is right with several instances.
#[derive(Default)]
pub struct RoundCache {
    entries: std::sync::Mutex<HashMap<Uuid, (String, Derived)>>,
}

impl RoundCache {
    fn get(&self, id: Uuid, key: &str) -> Option<Derived> {
        let e = self.entries.lock().ok()?;
        e.get(&id).filter(|(k, _)| k == key).map(|(_, v)| v.clone())
    }
    fn put(&self, id: Uuid, key: String, v: Derived) {
        if let Ok(mut e) = self.entries.lock() {
            if e.len() > 20_000 {
                e.clear();
            }
            e.insert(id, (key, v));
        }
    }
}

/// What the map of a briefing draws, beside the briefing itself.
#[derive(Debug, Default, Clone)]
pub struct MapFacts {
    /// `(lat, lon, category)` of the window's reports.
    pub violations: Vec<(f64, f64, String)>,
    /// The rounds' accepted fixes.
    pub tracks: Vec<Vec<(f64, f64)>>,
    /// Youth-group sightings (empty for readers without youth access).
    pub sightings: Vec<(f64, f64)>,
    pub incidents: Vec<(f64, f64)>,
}

/// Builds the briefing now, in the reader's scope.
pub async fn build<C: ConnectionTrait>(conn: &C, ask: &Ask<'_>) -> ApiResult<Briefing> {
    Ok(build_full(conn, ask).await?.0)
}

/// Builds the briefing and what its map draws.
pub async fn build_full<C: ConnectionTrait>(
    conn: &C,
    ask: &Ask<'_>,
) -> ApiResult<(Briefing, MapFacts)> {
    let (p, date, shift, now) = (ask.reader, ask.date, ask.shift, ask.now);
    let mut map = MapFacts::default();
    let (from, to) = super::window(date, shift, ask.hours);
    let window = (from, to);
    let reports = report_facts(conn, p, window, &mut map).await?;
    let history = history_facts(conn, p, window).await?;
    let rounds = round_facts(conn, ask, window, &mut map).await?;
    let (observations, persons) = youth_facts(conn, p, window, &mut map).await?;
    let incidents = incident_lines(conn, ask, window, &mut map).await?;
    let reference = ask.reference;
    let area_name = |code: &str| reference.areas.get(code).map(|a| a.name.clone());
    let feitcode_label = |code: &str| {
        reference
            .feitcodes
            .iter()
            .find(|f| f.code == code)
            .map(|f| f.description.clone())
    };
    let briefing = aggregate::build(Inputs {
        date,
        shift,
        from,
        to,
        now,
        violations: reports.facts,
        history,
        rounds,
        observations,
        persons,
        incidents,
        photos_missing: reports.photos_missing,
        open_conflicts: open_conflicts(conn, p).await?,
        duplicates_marked: reports.duplicate_marks / 2,
        attention_points: attention_points(conn, p, date, shift).await?,
        area_name: &area_name,
        feitcode_label: &feitcode_label,
    });
    let mut briefing = briefing;
    if p.may(crate::auth::Action::PlaceHold) {
        briefing.holds = crate::retention::hold::list(conn, p, false)
            .await?
            .into_iter()
            .map(|h| super::HoldLine {
                id: h.id,
                record_type: h.record_type,
                record_id: h.record_id,
                reason: h.reason,
                placed_by: h.placed_by,
                placed_at: h.placed_at,
            })
            .collect();
    }
    // Repeat locations: what the reader may see at each hotspot in the year before the window.
    for h in &mut briefing.hotspots {
        let f = crate::violations::store::Filter {
            window: Some((from - chrono::Duration::days(365), from)),
            near: Some((h.lat, h.lon, h.radius_m.max(super::hotspots::EPS_M))),
            ..Default::default()
        };
        h.earlier_reports = crate::violations::store::count_matching(conn, p, &f).await?;
    }
    redact(&mut briefing, p);
    Ok((briefing, map))
}

/// The window's reports (only the columns the briefing uses) with their photo flags; how many
/// photos are missing, and how many duplicate marks they carry.
struct Reports {
    facts: Vec<ViolationFact>,
    photos_missing: usize,
    duplicate_marks: usize,
}

async fn report_facts<C: ConnectionTrait>(
    conn: &C,
    p: &Principal,
    (from, to): (DateTime<Utc>, DateTime<Utc>),
    map: &mut MapFacts,
) -> ApiResult<Reports> {
    let mut violations: Vec<ViolationRow> = Vec::new();
    if let Some(q) = p.scoped(
        violation::Entity::find()
            .select_only()
            .columns([
                violation::Column::Id,
                violation::Column::Category,
                violation::Column::Feitcode,
                violation::Column::Outcome,
                violation::Column::Status,
                violation::Column::ObservedAt,
                violation::Column::Lat,
                violation::Column::Lon,
                violation::Column::WijkCode,
                violation::Column::BuurtCode,
                violation::Column::Flags,
            ])
            .filter(violation::Column::DeletedSeq.is_null())
            .filter(violation::Column::RetentionStage.eq(0))
            .filter(violation::Column::ObservedAt.gte(from))
            .filter(violation::Column::ObservedAt.lt(to)),
        violation::Column::TeamId,
    ) {
        violations = q.into_tuple().all(conn).await?;
    }
    let ids: Vec<Uuid> = violations.iter().map(|v| v.0).collect();
    let photos = crate::photos::store::of_violations(conn, &ids).await?;
    let photos_missing = photos
        .values()
        .flatten()
        .filter(|ph| ph.upload_state != "complete")
        .count();
    let mut duplicates = 0;
    for chunk in ids.chunks(500) {
        let q = Query::select()
            .expr_as(Expr::col("violation_id").count(), "n")
            .from("violation_duplicate")
            .and_where(Expr::col("violation_id").is_in(chunk.iter().copied()))
            .to_owned();
        if let Some(row) = conn.query_one(&q).await? {
            duplicates += row.try_get::<i64>("", "n").unwrap_or(0) as usize;
        }
    }
    map.violations = violations.iter().map(|v| (v.6, v.7, v.1.clone())).collect();
    let facts = violations
        .into_iter()
        .map(
            |(
                id,
                category,
                feitcode,
                outcome,
                status,
                observed_at,
                lat,
                lon,
                wijk,
                buurt,
                flags,
            )| {
                let mut flags: Vec<String> = serde_json::from_value(flags).unwrap_or_default();
                for ph in photos.get(&id).into_iter().flatten() {
                    if ph.upload_state != "complete" {
                        flags.push("photo_missing".into());
                    }
                    flags.extend(crate::photos::store::flags_against(
                        ph,
                        observed_at,
                        lat,
                        lon,
                    ));
                }
                flags.sort();
                flags.dedup();
                ViolationFact {
                    id,
                    category,
                    feitcode,
                    outcome,
                    status,
                    observed_at,
                    lat,
                    lon,
                    wijk,
                    buurt,
                    flags,
                }
            },
        )
        .collect();
    Ok(Reports {
        facts,
        photos_missing,
        duplicate_marks: duplicates,
    })
}

/// The same hours of the 28 previous days, for trends.
async fn history_facts<C: ConnectionTrait>(
    conn: &C,
    p: &Principal,
    (from, to): (DateTime<Utc>, DateTime<Utc>),
) -> ApiResult<Vec<HistoryFact>> {
    let mut history = Vec::new();
    if let Some(q) = p.scoped(
        violation::Entity::find()
            .select_only()
            .columns([
                violation::Column::Category,
                violation::Column::Feitcode,
                violation::Column::Outcome,
                violation::Column::WijkCode,
                violation::Column::ObservedAt,
            ])
            .filter(violation::Column::DeletedSeq.is_null())
            .filter(violation::Column::RetentionStage.eq(0))
            .filter(violation::Column::ObservedAt.gte(from - Duration::days(28)))
            .filter(violation::Column::ObservedAt.lt(to - Duration::days(1))),
        violation::Column::TeamId,
    ) {
        let rows: Vec<HistoryRow> = q.into_tuple().all(conn).await?;
        for (category, feitcode, outcome, wijk, t) in rows {
            if let Some(k) = days_ago(t, from, to) {
                history.push(HistoryFact {
                    category,
                    feitcode,
                    outcome,
                    wijk,
                    days_ago: k,
                });
            }
        }
    }
    Ok(history)
}

/// The window's rounds with what their tracks say; unchanged rounds come from the cache.
async fn round_facts<C: ConnectionTrait>(
    conn: &C,
    ask: &Ask<'_>,
    (from, to): (DateTime<Utc>, DateTime<Utc>),
    map: &mut MapFacts,
) -> ApiResult<Vec<RoundFact>> {
    let p = ask.reader;
    let round_rows = records::list(conn, &ROUNDS, p, Some(from), Some(to), None, 10_000).await?;
    let round_ids: Vec<Uuid> = round_rows.iter().map(|r| r.id).collect();
    // The revision and count of each round's segments: unchanged rounds come from the cache.
    let mut seg_keys: HashMap<Uuid, (i64, i64)> = HashMap::new();
    for chunk in round_ids.chunks(200) {
        let q = Query::select()
            .column("parent_id")
            .expr_as(Expr::col("server_rev").max(), "rev")
            .expr_as(Expr::col("id").count(), "n")
            .from("track_segment")
            .and_where(Expr::col("deleted_seq").is_null())
            .and_where(Expr::col("retention_stage").eq(0))
            .and_where(Expr::col("parent_id").is_in(chunk.iter().copied()))
            .group_by_col("parent_id")
            .to_owned();
        for row in conn.query_all(&q).await? {
            let id: Uuid = row.try_get("", "parent_id")?;
            let rev: i64 = row.try_get("", "rev")?;
            let n: i64 = row.try_get("", "n")?;
            seg_keys.insert(id, (rev, n));
        }
    }
    let key_of = |r: &records::Row| {
        let (rev, n) = seg_keys.get(&r.id).copied().unwrap_or((0, 0));
        format!("{}:{rev}:{n}", r.server_rev)
    };
    // One cache lookup per round: what it finds is used below, so a round the lookup found is
    // never re-derived from segments that were not loaded (the cache may be cleared meanwhile).
    let cached: Vec<(String, Option<Derived>)> = round_rows
        .iter()
        .map(|r| {
            let key = key_of(r);
            let hit = ask.cache.get(r.id, &key);
            (key, hit)
        })
        .collect();
    let stale: Vec<Uuid> = round_rows
        .iter()
        .zip(&cached)
        .filter(|(_, (_, hit))| hit.is_none())
        .map(|(r, _)| r.id)
        .collect();
    let mut segs_by_round: HashMap<Uuid, Vec<records::Row>> = HashMap::new();
    for chunk in stale.chunks(200) {
        let mut q = Query::select();
        q.columns(records::COLS.iter().copied())
            .from("track_segment")
            .and_where(Expr::col("deleted_seq").is_null())
            .and_where(Expr::col("retention_stage").eq(0))
            .and_where(Expr::col("parent_id").is_in(chunk.iter().copied()));
        for s in records::query(conn, &q).await? {
            if let Some(r) = s.parent_id {
                segs_by_round.entry(r).or_default().push(s);
            }
        }
    }
    let params = crate::rounds::derive::Params::default();
    let mut rounds = Vec::new();
    for (r, (key, hit)) in round_rows.iter().zip(cached) {
        let derived = match hit {
            Some(d) => d,
            None => {
                let segs = segs_by_round.remove(&r.id).unwrap_or_default();
                let docs: Vec<&serde_json::Map<String, Value>> =
                    segs.iter().map(|s| &s.data).collect();
                let stats = crate::rounds::stats(&r.data, &docs, ask.reference, &params);
                let track: Vec<(f64, f64)> = docs
                    .iter()
                    .flat_map(|d| {
                        doc_list(d, "points")
                            .iter()
                            .filter_map(crate::rounds::point)
                    })
                    .filter(|pt| pt.accuracy_m.is_none_or(|a| a <= params.max_accuracy_m))
                    .map(|pt| (pt.lat, pt.lon))
                    .collect();
                let d = std::sync::Arc::new((stats, track));
                ask.cache.put(r.id, key, d.clone());
                d
            }
        };
        map.tracks.push(derived.1.clone());
        rounds.push(RoundFact {
            id: r.id,
            name: text(&r.data, "name").unwrap_or_default().to_string(),
            shift: text(&r.data, "shift").map(str::to_string),
            status: text(&r.data, "status").unwrap_or_default().to_string(),
            ad_hoc: r
                .data
                .get("ad_hoc")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            stats: derived.0.clone(),
            track: derived.1.clone(),
        });
    }
    Ok(rounds)
}

/// Youth-group sightings and, for those allowed, the names of members of the groups seen;
/// `None` for a reader without youth access.
async fn youth_facts<C: ConnectionTrait>(
    conn: &C,
    p: &Principal,
    (from, to): (DateTime<Utc>, DateTime<Utc>),
    map: &mut MapFacts,
) -> ApiResult<(Option<Vec<ObservationFact>>, Option<Vec<YouthPerson>>)> {
    let youth_ok = kinds::youth_reader(p);
    Ok(if youth_ok {
        let obs = records::list(conn, &OBSERVATIONS, p, Some(from), Some(to), None, 10_000).await?;
        let group_ids: Vec<Uuid> = obs
            .iter()
            .filter_map(|o| o.parent_id)
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let groups = records::load_many(conn, &GROUPS, &group_ids, false).await?;
        let group_of: HashMap<Uuid, &records::Row> = groups.iter().map(|g| (g.id, g)).collect();
        map.sightings = obs
            .iter()
            .filter_map(|o| num(&o.data, "lat").zip(num(&o.data, "lon")))
            .collect();
        let facts: Vec<ObservationFact> = obs
            .iter()
            .map(|o| {
                let g = o.parent_id.and_then(|id| group_of.get(&id));
                ObservationFact {
                    group_id: o.parent_id,
                    group: g
                        .and_then(|g| text(&g.data, "name"))
                        .or_else(|| text(&o.data, "new_group_name"))
                        .unwrap_or("onbekende groep")
                        .to_string(),
                    duiding: g.and_then(|g| text(&g.data, "duiding")).map(str::to_string),
                    spot: text(&o.data, "spot").map(str::to_string),
                    size: num(&o.data, "size_estimate"),
                    behaviours: doc_list(&o.data, "behaviours")
                        .iter()
                        .filter_map(|b| b.as_str().map(str::to_string))
                        .collect(),
                    referral: text(&o.data, "referral").map(str::to_string),
                }
            })
            .collect();
        let mut people = Vec::new();
        for gid in &group_ids {
            for person in records::list(conn, &PERSONS, p, None, None, Some(*gid), 1000).await? {
                people.push(YouthPerson {
                    id: Some(person.id),
                    group: group_of
                        .get(gid)
                        .and_then(|g| text(&g.data, "name"))
                        .unwrap_or_default()
                        .to_string(),
                    name: text(&person.data, "name").unwrap_or_default().to_string(),
                    date_of_birth: text(&person.data, "date_of_birth").map(str::to_string),
                });
            }
        }
        (Some(facts), Some(people))
    } else {
        (None, None)
    })
}

/// The window's incidents, for readers of incidents.
async fn incident_lines<C: ConnectionTrait>(
    conn: &C,
    ask: &Ask<'_>,
    (from, to): (DateTime<Utc>, DateTime<Utc>),
    map: &mut MapFacts,
) -> ApiResult<Vec<IncidentLine>> {
    let p = ask.reader;
    let incident_rows = if INCIDENTS.may_read(p) {
        records::list(conn, &INCIDENTS, p, Some(from), Some(to), None, 10_000).await?
    } else {
        vec![]
    };
    map.incidents = incident_rows
        .iter()
        .filter_map(|r| num(&r.data, "lat").zip(num(&r.data, "lon")))
        .collect();
    Ok(incident_rows
        .iter()
        .map(|r| {
            let kind = text(&r.data, "kind").unwrap_or_default().to_string();
            let notified = ms(r.data.get("hovj_notified_at")).is_some()
                && ms(r.data.get("supervisor_notified_at")).is_some();
            IncidentLine {
                id: r.id,
                notifications_complete: kind != "use_of_force" || notified,
                kind,
                occurred_at: ms(r.data.get("occurred_at")),
                wijk: match (num(&r.data, "lat"), num(&r.data, "lon")) {
                    (Some(lat), Some(lon)) => ask
                        .reference
                        .areas
                        .locate(lat, lon)
                        .wijk
                        .map(|w| w.name.clone()),
                    _ => None,
                },
                police_requested: r
                    .data
                    .get("police_requested")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
                description: text(&r.data, "description").map(str::to_string),
                // (withheld by `redact` from readers without the Wpg right)
            }
        })
        .collect())
}

/// The team's open sync conflicts.
async fn open_conflicts<C: ConnectionTrait>(conn: &C, p: &Principal) -> ApiResult<usize> {
    use crate::sync::entities::sync_conflict;
    use sea_orm::PaginatorTrait;
    let open = sync_conflict::Entity::find().filter(sync_conflict::Column::Status.eq("open"));
    match p.scoped(open, sync_conflict::Column::TeamId) {
        Some(q) => Ok(q.count(conn).await? as usize),
        None => Ok(0),
    }
}

/// The lead's attention points for this date (and shift).
async fn attention_points<C: ConnectionTrait>(
    conn: &C,
    p: &Principal,
    date: NaiveDate,
    shift: Option<Shift>,
) -> ApiResult<Vec<AttentionPoint>> {
    let notes = if NOTES.may_read(p) {
        let (day_from, day_to) = crate::violations::store::amsterdam_day(date);
        records::list(conn, &NOTES, p, Some(day_from), Some(day_to), None, 1000).await?
    } else {
        vec![]
    };
    Ok(notes
        .iter()
        .filter(|n| {
            let s = text(&n.data, "shift");
            shift.is_none() || s.is_none() || s == shift.map(Shift::as_str)
        })
        .map(|n| AttentionPoint {
            id: n.id,
            text: text(&n.data, "text").unwrap_or_default().to_string(),
            shift: text(&n.data, "shift").map(str::to_string),
            author: n.created_by,
            updated_at: n.updated_at,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn the_same_hours_of_earlier_days() {
        let from = Utc.with_ymd_and_hms(2026, 11, 26, 6, 0, 0).unwrap();
        let to = Utc.with_ymd_and_hms(2026, 11, 26, 14, 0, 0).unwrap();
        let t = |d: i64, h: u32| {
            Utc.with_ymd_and_hms(2026, 11, 26, h, 30, 0).unwrap() - Duration::days(d)
        };
        assert_eq!(days_ago(t(1, 7), from, to), Some(1));
        assert_eq!(days_ago(t(1, 15), from, to), None);
        assert_eq!(days_ago(t(28, 13), from, to), Some(28));
        assert_eq!(days_ago(t(29, 13), from, to), None);
        assert_eq!(days_ago(t(0, 7), from, to), None);
    }
}
