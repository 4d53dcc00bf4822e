//! The one write path for violation reports, and the queries that read them.
//!
//! Every create and update validates the whole resulting report, writes the report, its officer
//! index and its audit line, and stamps the sync cursor, all in one transaction: nothing is
//! half-written, and no caller (REST, demo loader, sync push) can skip a step.

use base64::Engine;
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use chrono_tz::Europe::Amsterdam;
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseTransaction, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, Set, SqlErr, TransactionTrait,
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::entity::{violation, violation_officer};
use super::rules::{self, Draft, TransitionError};
use super::{
    Category, Location, LocationSource, NewViolation, Outcome, Sanction, Status, ViolationPatch,
    ViolationView,
};
use crate::audit::{self, Entry};
use crate::auth::entities::app_user;
use crate::auth::{Action, Principal, Scope};
use crate::db::Db;
use crate::error::{ApiError, ApiResult, FieldError};
use crate::reference::Reference;
use crate::reference::routes::AreaRef;
use crate::sync::{self, Change, Op};

/// The table name the sync engine and the audit log know reports by.
pub const TABLE: &str = "violations";

/// The synced columns, each with its own revision in `field_revs`.
pub const FIELDS: &[&str] = &[
    "category",
    "feitcode",
    "observed_at",
    "lat",
    "lon",
    "accuracy_m",
    "location_source",
    "fix_time",
    "description",
    "outcome",
    "plate",
    "driver_present",
    "sanction",
    "officer_ids",
    "status",
    "review_note",
    "reviewed_by",
    "reviewed_at",
];

pub enum Created {
    /// A new report.
    New(violation::Model),
    /// The same id and content were posted before: a retry, answered with the report as it is now.
    Existing(violation::Model),
}

fn trunc_ms(t: DateTime<Utc>) -> DateTime<Utc> {
    use chrono::DurationRound;
    t.duration_trunc(chrono::Duration::milliseconds(1))
        .unwrap_or(t)
}

fn normalise(mut v: NewViolation, author: Uuid) -> NewViolation {
    v.observed_at = trunc_ms(v.observed_at);
    v.location.fix_time = v.location.fix_time.map(trunc_ms);
    v.feitcode = v
        .feitcode
        .map(|f| f.trim().to_string())
        .filter(|f| !f.is_empty());
    v.plate = v
        .plate
        .map(|p| rules::normalise_plate(&p))
        .filter(|p| !p.is_empty());
    v.description = v.description.trim().to_string();
    let mut officers = vec![author];
    for o in v.officer_ids {
        if !officers.contains(&o) {
            officers.push(o);
        }
    }
    v.officer_ids = officers;
    v
}

fn create_hash(v: &NewViolation) -> String {
    let canonical = serde_json::to_vec(v).unwrap_or_default();
    hex::encode(Sha256::digest(&canonical))
}

/// What a report naming someone outside its team hears. One answer for an unknown id, an
/// inactive user and a user of another team: the write must not tell a phone whether an id it
/// made up belongs to someone in another team.
fn not_team_officers() -> ApiError {
    ApiError::field(
        "officer_ids",
        "names someone who is not an active user of this report's team",
    )
}

/// Which of `ids` are active users of `team` (none for a report without a team: it can name
/// only its author, who is added by the caller).
async fn team_officers<C: ConnectionTrait>(
    conn: &C,
    team: Option<Uuid>,
    ids: &[Uuid],
) -> ApiResult<std::collections::HashSet<Uuid>> {
    let mut found = std::collections::HashSet::new();
    let Some(team) = team else {
        return Ok(found);
    };
    for chunk in ids.chunks(500) {
        let rows: Vec<Uuid> = app_user::Entity::find()
            .select_only()
            .column(app_user::Column::Id)
            .filter(app_user::Column::Id.is_in(chunk.to_vec()))
            .filter(app_user::Column::Active.eq(true))
            .filter(app_user::Column::TeamId.eq(team))
            .into_tuple()
            .all(conn)
            .await?;
        found.extend(rows);
    }
    Ok(found)
}

/// The officers on a report are active users of the report's team (its author's team).
async fn check_officers<C: ConnectionTrait>(
    conn: &C,
    team: Option<Uuid>,
    ids: &[Uuid],
) -> ApiResult<()> {
    let found = team_officers(conn, team, ids).await?;
    if ids.iter().all(|u| found.contains(u)) {
        Ok(())
    } else {
        Err(not_team_officers())
    }
}

/// Replaces the officer index of a report.
async fn write_officers(txn: &DatabaseTransaction, id: Uuid, officers: &[Uuid]) -> ApiResult<()> {
    violation_officer::Entity::delete_many()
        .filter(violation_officer::Column::ViolationId.eq(id))
        .exec(txn)
        .await?;
    violation_officer::Entity::insert_many(officers.iter().map(|u| {
        violation_officer::ActiveModel {
            violation_id: Set(id),
            user_id: Set(*u),
        }
    }))
    .exec_without_returning(txn)
    .await?;
    Ok(())
}

/// The answer to a create whose id is taken. A retry (same content) of a report the sender may
/// see is answered with the report as it is now. Any other taken id gets a 409 that says only
/// that the id is taken, in the same words and shape whether the report is the sender's own
/// team's (with other content) or one the sender may not see (another team's, or deleted in
/// another team): the id is the sender's own, so nothing is said that the sender did not
/// already know, and no field of the other team's report leaves the server. Refusing the write
/// is right either way: a UUID taken by chance does not happen, so the phone made a mistake or
/// is probing. `existing` is the path of that id, which answers 404 to whoever may not see it,
/// as for an id that does not exist at all.
fn existing_outcome(p: &Principal, existing: violation::Model, hash: &str) -> ApiResult<Created> {
    if existing.create_hash == hash && p.sees_team(existing.team_id) {
        return Ok(Created::Existing(existing));
    }
    Err(ApiError::Conflict {
        detail: format!(
            "report {} already exists with other content; a retry sends the same content, a \
             change goes through PATCH",
            existing.id
        ),
        existing: Some(format!("/api/v1/violations/{}", existing.id)),
    })
}

/// What the transport knows about a write beyond its content.
#[derive(Debug, Clone, Copy, Default)]
pub struct WriteMeta {
    /// Server time minus the device's clock (`X-Device-Time`), in milliseconds.
    pub clock_offset_ms: Option<i64>,
}

/// A device clock off by more than this gets the report flagged for reviewers.
pub const CLOCK_TOLERANCE_MS: i64 = 5 * 60 * 1000;

/// Creates a report, or recognises a retry of one, in its own transaction.
pub async fn create(
    db: &Db,
    reference: &Reference,
    p: &Principal,
    input: NewViolation,
    meta: WriteMeta,
    now: DateTime<Utc>,
) -> ApiResult<Created> {
    let txn = crate::sync::begin_write(db).await?;
    let created = create_in(&txn, reference, p, input, meta, now).await?;
    txn.commit().await?;
    Ok(created)
}

/// Creates a report inside the caller's transaction.
pub async fn create_in(
    txn: &DatabaseTransaction,
    reference: &Reference,
    p: &Principal,
    input: NewViolation,
    meta: WriteMeta,
    now: DateTime<Utc>,
) -> ApiResult<Created> {
    create_many_in(txn, reference, p, vec![(input, meta)], now)
        .await?
        .pop()
        .unwrap_or_else(|| {
            Err(ApiError::internal(anyhow::anyhow!(
                "no result for the create"
            )))
        })
}

/// A report that passed the rules and waits to be written.
struct Prepared {
    v: NewViolation,
    status: Status,
    hash: String,
    meta: WriteMeta,
}

/// Creates many reports inside the caller's transaction: the one create path (REST sends one,
/// a sync push a whole shift). Each report is judged on its own (its result says created,
/// already there, or why not); the valid ones are written with a few multi-row statements and
/// stamped with one sequence allocation at the end.
pub async fn create_many_in(
    txn: &DatabaseTransaction,
    reference: &Reference,
    p: &Principal,
    inputs: Vec<(NewViolation, WriteMeta)>,
    now: DateTime<Utc>,
) -> ApiResult<Vec<ApiResult<Created>>> {
    p.authorize(Action::CreateViolation)?;
    if txn.get_database_backend() == sea_orm::DbBackend::Sqlite {
        // One writer connection: no other transaction can insert the same id meanwhile.
        return match try_create_many(txn, reference, p, inputs, now).await {
            Ok(results) => Ok(results),
            Err(CreateErr::Api(e)) => Err(e),
            Err(CreateErr::Race) => Err(ApiError::internal(anyhow::anyhow!(
                "unique violation on SQLite's single writer"
            ))),
        };
    }
    for attempt in 0..2 {
        // A savepoint: if a concurrent create of the same id wins the race (PostgreSQL), undo
        // ours and judge again, now against the row that won.
        let sp = txn.begin().await?;
        match try_create_many(&sp, reference, p, inputs.clone(), now).await {
            Ok(results) => {
                sp.commit().await?;
                return Ok(results);
            }
            Err(CreateErr::Race) if attempt == 0 => sp.rollback().await?,
            Err(CreateErr::Race) => {
                return Err(ApiError::internal(anyhow::anyhow!("create raced twice")));
            }
            Err(CreateErr::Api(e)) => return Err(e),
        }
    }
    Err(ApiError::internal(anyhow::anyhow!(
        "unreachable create retry"
    )))
}

enum CreateErr {
    Race,
    Api(ApiError),
}

impl<E: Into<ApiError>> From<E> for CreateErr {
    fn from(e: E) -> Self {
        CreateErr::Api(e.into())
    }
}

/// Rows per multi-row INSERT. On PostgreSQL a statement stays under sqlx 0.9.0's 8 KiB write
/// buffer (larger ones stall ~40 ms on Nagle, sqlx#4335); SQLite has no network in between.
fn chunk_rows(db: &DatabaseTransaction) -> usize {
    if db.get_database_backend() == sea_orm::DbBackend::Postgres {
        8
    } else {
        200
    }
}

async fn try_create_many(
    txn: &DatabaseTransaction,
    reference: &Reference,
    p: &Principal,
    inputs: Vec<(NewViolation, WriteMeta)>,
    now: DateTime<Utc>,
) -> Result<Vec<ApiResult<Created>>, CreateErr> {
    // The returned models are built here, not read back: keep the stored precision.
    let now = trunc_ms(now);
    let mut results: Vec<Option<ApiResult<Created>>> = Vec::with_capacity(inputs.len());
    let mut prepared: Vec<(usize, Prepared)> = Vec::new();
    for (i, (input, meta)) in inputs.into_iter().enumerate() {
        let v = normalise(input, p.user_id);
        let status = v.status.unwrap_or(Status::Concept);
        let judged = rules::check_initial_status(status)
            .map_err(|f| ApiError::Validation(vec![f]))
            .and_then(|()| {
                let draft = Draft {
                    category: v.category,
                    feitcode: v.feitcode.clone(),
                    observed_at: v.observed_at,
                    location: v.location.clone(),
                    description: v.description.clone(),
                    outcome: v.outcome,
                    plate: v.plate.clone(),
                    driver_present: v.driver_present,
                    sanction: v.sanction,
                    officer_ids: v.officer_ids.clone(),
                };
                rules::check(&draft, reference, now).map_err(ApiError::Validation)
            });
        match judged {
            Ok(_) => {
                let hash = create_hash(&v);
                prepared.push((
                    i,
                    Prepared {
                        v,
                        status,
                        hash,
                        meta,
                    },
                ));
                results.push(None);
            }
            Err(e) => results.push(Some(Err(e))),
        }
    }
    // Retries: ids that exist already.
    let ids: Vec<Uuid> = prepared.iter().map(|(_, x)| x.v.id).collect();
    let mut existing: std::collections::HashMap<Uuid, violation::Model> =
        std::collections::HashMap::new();
    for chunk in ids.chunks(500) {
        for m in violation::Entity::find()
            .filter(violation::Column::Id.is_in(chunk.to_vec()))
            .all(txn)
            .await?
        {
            existing.insert(m.id, m);
        }
    }
    // Co-officers must be active users of the report's team, which is its author's.
    let others: Vec<Uuid> = {
        let mut set: Vec<Uuid> = prepared
            .iter()
            .flat_map(|(_, x)| x.v.officer_ids.iter().copied())
            .filter(|u| *u != p.user_id)
            .collect();
        set.sort();
        set.dedup();
        set
    };
    let mut active = team_officers(txn, p.team_id, &others).await?;
    active.insert(p.user_id);
    let mut new: Vec<(usize, Prepared)> = Vec::new();
    let mut seen_in_batch = std::collections::HashSet::new();
    for (i, x) in prepared {
        if let Some(m) = existing.get(&x.v.id) {
            results[i] = Some(existing_outcome(p, m.clone(), &x.hash));
        } else if !seen_in_batch.insert(x.v.id) {
            results[i] = Some(Err(ApiError::field("id", "the same id twice in one batch")));
        } else if !x.v.officer_ids.iter().all(|u| active.contains(u)) {
            results[i] = Some(Err(not_team_officers()));
        } else {
            new.push((i, x));
        }
    }
    if !new.is_empty() {
        let changes: Vec<Change> = new
            .iter()
            .map(|(_, x)| Change {
                table: TABLE,
                record_id: x.v.id.to_string(),
                op: Op::Create,
                changed_fields: FIELDS.to_vec(),
            })
            .collect();
        let seqs = sync::stamp(txn, &changes, Some(&p.device_id), now).await?;
        let mut models = Vec::with_capacity(new.len());
        let mut officers = Vec::new();
        let mut audits = Vec::with_capacity(new.len());
        for ((_, x), seq) in new.iter().zip(&seqs) {
            let m = new_model(reference, p, x, *seq, now);
            officers.extend(
                x.v.officer_ids
                    .iter()
                    .map(|u| violation_officer::ActiveModel {
                        violation_id: Set(x.v.id),
                        user_id: Set(*u),
                    }),
            );
            audits.push(audit::row(
                &p.actor(),
                Entry::new("create", TABLE, x.v.id).detail(
                    json!({ "status": x.status.as_str(), "privacy_regime": m.privacy_regime }),
                ),
                now,
            ));
            models.push(m);
        }
        let chunk = chunk_rows(txn);
        for part in models.chunks(chunk) {
            let rows: Vec<violation::ActiveModel> = part.iter().cloned().map(Into::into).collect();
            match violation::Entity::insert_many(rows)
                .exec_without_returning(txn)
                .await
            {
                Ok(_) => {}
                Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                    return Err(CreateErr::Race);
                }
                Err(e) => return Err(e.into()),
            }
        }
        for part in officers.chunks(chunk * 4) {
            violation_officer::Entity::insert_many(part.to_vec())
                .exec_without_returning(txn)
                .await?;
        }
        audit::record_many(txn, audits).await?;
        for ((i, _), m) in new.into_iter().zip(models) {
            results[i] = Some(Ok(Created::New(m)));
        }
    }
    Ok(results
        .into_iter()
        .map(|r| {
            r.unwrap_or_else(|| {
                Err(ApiError::internal(anyhow::anyhow!(
                    "a create got no result"
                )))
            })
        })
        .collect())
}

fn new_model(
    reference: &Reference,
    p: &Principal,
    x: &Prepared,
    seq: i64,
    now: DateTime<Utc>,
) -> violation::Model {
    let v = &x.v;
    let located = reference.areas.locate(v.location.lat, v.location.lon);
    let mut flags = Vec::new();
    if x.meta
        .clock_offset_ms
        .is_some_and(|o| o.abs() > CLOCK_TOLERANCE_MS)
    {
        flags.push("clock_offset");
    }
    // Accepted (a phone's fix can be wrong, the report is still evidence) but visible: no
    // wijk means the point is outside Velsen (lat 0, lon 0 is a fix that never came).
    if located.wijk.is_none() {
        flags.push("outside_municipality");
    }
    // No per-field revisions yet: a field absent from `field_revs` was last written by the
    // create, which no edit a phone bases on a revision of this report can precede (the merge
    // reads an absent field as revision 0). Updates add the fields they change.
    let field_revs = serde_json::Map::new();
    violation::Model {
        id: v.id,
        category: v.category.as_str().into(),
        feitcode: v.feitcode.clone(),
        observed_at: v.observed_at,
        lat: v.location.lat,
        lon: v.location.lon,
        accuracy_m: v.location.accuracy_m,
        location_source: v.location.source.as_str().into(),
        fix_time: v.location.fix_time,
        wijk_code: located.wijk.map(|a| a.code.clone()),
        buurt_code: located.buurt.map(|a| a.code.clone()),
        description: v.description.clone(),
        outcome: v.outcome.as_str().into(),
        plate: v.plate.clone(),
        driver_present: v.driver_present,
        sanction: v.sanction.map(|s| s.as_str().to_string()),
        officer_ids: json!(v.officer_ids),
        status: x.status.as_str().into(),
        review_note: None,
        reviewed_by: None,
        reviewed_at: None,
        team_id: p.team_id,
        privacy_regime: rules::privacy_regime(v.outcome, v.plate.as_deref()).into(),
        created_by: p.user_id,
        created_at: now,
        updated_at: now,
        create_hash: x.hash.clone(),
        server_rev: seq,
        field_revs: Value::Object(field_revs),
        deleted_seq: None,
        last_device_id: Some(p.device_id.clone()),
        created_seq: Some(seq),
        created_device: Some(p.device_id.clone()),
        flags: json!(flags),
        device_clock_offset_ms: x.meta.clock_offset_ms,
        round_id: x.v.round_id,
        retention_stage: 0,
    }
}

async fn keep_history(
    txn: &DatabaseTransaction,
    m: &violation::Model,
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

async fn stamp_one(
    txn: &DatabaseTransaction,
    id: Uuid,
    op: Op,
    fields: Vec<&'static str>,
    p: &Principal,
    now: DateTime<Utc>,
) -> ApiResult<i64> {
    let device = Some(p.device_id.as_str());
    Ok(sync::stamp_one(txn, TABLE, id.to_string(), op, fields, device, now).await?)
}

fn officers_of(m: &violation::Model) -> Vec<Uuid> {
    serde_json::from_value(m.officer_ids.clone()).unwrap_or_default()
}

fn location_of(m: &violation::Model) -> Location {
    Location {
        lat: m.lat,
        lon: m.lon,
        accuracy_m: m.accuracy_m,
        source: LocationSource::parse(&m.location_source).unwrap_or(LocationSource::Manual),
        fix_time: m.fix_time,
    }
}

fn parse_stored<T>(v: Option<T>, what: &str, raw: &str) -> ApiResult<T> {
    v.ok_or_else(|| ApiError::internal(anyhow::anyhow!("stored {what} {raw:?} is not valid")))
}

/// Changes a report in its own transaction: field edits by its officers or the team lead, and
/// the lead's review.
pub async fn update(
    db: &Db,
    reference: &Reference,
    p: &Principal,
    id: Uuid,
    patch: ViolationPatch,
    now: DateTime<Utc>,
) -> ApiResult<violation::Model> {
    let txn = crate::sync::begin_write(db).await?;
    let m = update_in(&txn, reference, p, id, patch, now).await?;
    txn.commit().await?;
    Ok(m)
}

/// Changes a report inside the caller's transaction (the sync push uses this).
pub async fn update_in(
    txn: &DatabaseTransaction,
    reference: &Reference,
    p: &Principal,
    id: Uuid,
    patch: ViolationPatch,
    now: DateTime<Utc>,
) -> ApiResult<violation::Model> {
    p.authorize(Action::EditViolation)?;
    let cur = violation::Entity::find_by_id(id)
        .lock_exclusive()
        .one(txn)
        .await?
        .filter(|m| in_use(p, m))
        .ok_or_else(|| ApiError::NotFound(format!("violation {id}")))?;
    let cur_officers = officers_of(&cur);
    let may_review = p.may(Action::ReviewViolation);
    if !may_review && cur.created_by != p.user_id && !cur_officers.contains(&p.user_id) {
        return Err(ApiError::Forbidden(
            "only the officers on a report and their teamleider change it".into(),
        ));
    }
    let cur_status = parse_stored(Status::parse(&cur.status), "status", &cur.status)?;
    let cur_category = parse_stored(Category::parse(&cur.category), "category", &cur.category)?;
    let cur_outcome = parse_stored(Outcome::parse(&cur.outcome), "outcome", &cur.outcome)?;
    let cur_location = location_of(&cur);

    let mut errs = Vec::new();
    if let Some(t) = patch.observed_at
        && trunc_ms(t) != cur.observed_at
    {
        errs.push(FieldError::new(
            "observed_at",
            "is immutable after create: time and place are evidence",
        ));
    }
    if let Some(mut l) = patch.location.clone() {
        l.fix_time = l.fix_time.map(trunc_ms);
        if l != cur_location {
            errs.push(FieldError::new(
                "location",
                "is immutable after create: time and place are evidence",
            ));
        }
    }
    if !errs.is_empty() {
        return Err(ApiError::Validation(errs));
    }

    let mut officers = cur_officers.clone();
    if let Some(o) = &patch.officer_ids {
        officers = vec![];
        for u in o {
            if !officers.contains(u) {
                officers.push(*u);
            }
        }
    }
    let draft = Draft {
        category: patch.category.unwrap_or(cur_category),
        feitcode: match &patch.feitcode {
            Some(f) => f
                .as_ref()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty()),
            None => cur.feitcode.clone(),
        },
        observed_at: cur.observed_at,
        location: cur_location,
        description: patch
            .description
            .as_ref()
            .map(|d| d.trim().to_string())
            .unwrap_or_else(|| cur.description.clone()),
        outcome: patch.outcome.unwrap_or(cur_outcome),
        plate: match &patch.plate {
            Some(pl) => pl
                .as_ref()
                .map(|s| rules::normalise_plate(s))
                .filter(|s| !s.is_empty()),
            None => cur.plate.clone(),
        },
        driver_present: patch.driver_present.unwrap_or(cur.driver_present),
        sanction: match patch.sanction {
            Some(s) => s,
            None => cur.sanction.as_deref().and_then(Sanction::parse),
        },
        officer_ids: officers,
    };
    let new_status = patch.status.unwrap_or(cur_status);
    let review_note = patch
        .review_note
        .as_ref()
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty());

    let mut changed: Vec<&'static str> = Vec::new();
    if draft.category != cur_category {
        changed.push("category");
    }
    if draft.feitcode != cur.feitcode {
        changed.push("feitcode");
    }
    if draft.description != cur.description {
        changed.push("description");
    }
    if draft.outcome != cur_outcome {
        changed.push("outcome");
    }
    if draft.plate != cur.plate {
        changed.push("plate");
    }
    if draft.driver_present != cur.driver_present {
        changed.push("driver_present");
    }
    if draft.sanction.map(Sanction::as_str) != cur.sanction.as_deref() {
        changed.push("sanction");
    }
    if draft.officer_ids != cur_officers {
        changed.push("officer_ids");
    }
    if new_status != cur_status {
        changed.push("status");
    }
    if review_note.is_some() && review_note != cur.review_note {
        changed.push("review_note");
    }
    if changed.is_empty() {
        return Ok(cur);
    }
    // Taking a review back (the reviewer, within the undo window) returns the report to
    // submitted and clears the review; nothing else may change with it.
    let undo = matches!(cur_status, Status::Approved | Status::Rejected)
        && new_status == Status::Submitted;
    if undo {
        if changed != ["status"] {
            return Err(ApiError::field(
                "status",
                "taking a review back changes the status alone",
            ));
        }
        rules::check_undo(cur.reviewed_by, cur.reviewed_at, p.user_id, now).map_err(|m| {
            ApiError::Conflict {
                detail: m,
                existing: None,
            }
        })?;
    } else if matches!(cur_status, Status::Approved | Status::Rejected) {
        return Err(ApiError::Conflict {
            detail: format!(
                "report {id} was {} by the teamleider and is final",
                cur.status
            ),
            existing: None,
        });
    }
    if review_note.is_some() && !may_review {
        return Err(ApiError::Forbidden(
            "only a teamleider writes a review note".into(),
        ));
    }
    match rules::check_transition(cur_status, new_status, may_review) {
        _ if undo => {}
        Ok(()) => {}
        Err(TransitionError::Forbidden(m)) => return Err(ApiError::Forbidden(m)),
        Err(TransitionError::Invalid(m)) => return Err(ApiError::field("status", m)),
    }
    if reference.four_eyes
        && matches!(new_status, Status::Approved | Status::Rejected)
        && new_status != cur_status
    {
        let mut named_before = cur_officers.clone();
        if was_named(txn, id, p.user_id).await? {
            named_before.push(p.user_id);
        }
        rules::check_four_eyes(p.user_id, cur.created_by, &named_before, &draft.officer_ids)
            .map_err(ApiError::Forbidden)?;
    }
    if new_status == Status::Rejected && review_note.is_none() {
        return Err(ApiError::field(
            "review_note",
            "say why the report is rejected",
        ));
    }
    // The observation time and place cannot change after the create: their checks against the
    // clock ("in the future", "more than 31 days ago") were made when they were recorded and
    // are made against that moment again, not against the review. A lead may approve a report
    // of 40 days ago, and an edit of a report recorded a minute ago is not refused when the
    // server's clock stepped back.
    rules::check(&draft, reference, cur.created_at).map_err(ApiError::Validation)?;
    if changed.contains(&"officer_ids") {
        check_officers(txn, cur.team_id, &draft.officer_ids).await?;
        write_officers(txn, id, &draft.officer_ids).await?;
    }
    let reviewed =
        matches!(new_status, Status::Approved | Status::Rejected) && new_status != cur_status;
    if reviewed {
        changed.extend(["reviewed_by", "reviewed_at"]);
    }
    if undo {
        changed.extend(["reviewed_by", "reviewed_at", "review_note"]);
    }
    let action = match (reviewed, undo) {
        (true, _) => "review",
        (_, true) => "review_undone",
        _ => "update",
    };
    audit::record(
        txn,
        &p.actor(),
        Entry::new(action, TABLE, id)
            .reason(if reviewed { review_note.clone() } else { None })
            .detail(json!({ "fields": changed, "status": new_status.as_str() })),
        now,
    )
    .await?;
    let seq = stamp_one(txn, id, Op::Upsert, changed.clone(), p, now).await?;
    let mut field_revs = match cur.field_revs.clone() {
        Value::Object(m) => m,
        _ => serde_json::Map::new(),
    };
    for f in &changed {
        field_revs.insert(f.to_string(), json!(seq));
    }
    let mut am: violation::ActiveModel = cur.clone().into();
    am.category = Set(draft.category.as_str().into());
    am.feitcode = Set(draft.feitcode.clone());
    am.description = Set(draft.description.clone());
    am.outcome = Set(draft.outcome.as_str().into());
    am.plate = Set(draft.plate.clone());
    am.driver_present = Set(draft.driver_present);
    am.sanction = Set(draft.sanction.map(|s| s.as_str().to_string()));
    am.officer_ids = Set(json!(draft.officer_ids));
    am.status = Set(new_status.as_str().into());
    if review_note.is_some() {
        am.review_note = Set(review_note);
    }
    if reviewed {
        am.reviewed_by = Set(Some(p.user_id));
        am.reviewed_at = Set(Some(now));
    }
    if undo {
        am.reviewed_by = Set(None);
        am.reviewed_at = Set(None);
        am.review_note = Set(None);
    }
    am.privacy_regime = Set(rules::privacy_regime(draft.outcome, draft.plate.as_deref()).into());
    am.updated_at = Set(now);
    am.server_rev = Set(seq);
    am.field_revs = Set(Value::Object(field_revs));
    am.last_device_id = Set(Some(p.device_id.clone()));
    keep_history(txn, &cur, now).await?;
    am.update(txn).await.map_err(Into::into)
}

/// Whether `user` was named on the report in an earlier revision (`record_history`): for the
/// four-eyes rule, a teamleider who takes themselves off a report and then reviews it is still
/// one of its officers.
async fn was_named(txn: &DatabaseTransaction, id: Uuid, user: Uuid) -> ApiResult<bool> {
    let stmt = Query::select()
        .column("snapshot")
        .from("record_history")
        .and_where(Expr::col("table_name").eq(TABLE))
        .and_where(Expr::col("record_id").eq(id.to_string()))
        .to_owned();
    for row in txn.query_all(&stmt).await? {
        let snapshot: Value = row.try_get("", "snapshot")?;
        let officers: Vec<Uuid> = match snapshot.get("officer_ids") {
            Some(Value::String(s)) => serde_json::from_str(s).unwrap_or_default(),
            Some(v) => serde_json::from_value(v.clone()).unwrap_or_default(),
            None => vec![],
        };
        if officers.contains(&user) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Gives a report a new sync revision without changing its content (see `SyncTable::touch`).
pub async fn touch_in(
    txn: &DatabaseTransaction,
    p: &Principal,
    id: Uuid,
    now: DateTime<Utc>,
) -> ApiResult<()> {
    let Some(cur) = violation::Entity::find_by_id(id)
        .lock_exclusive()
        .one(txn)
        .await?
        .filter(|m| m.deleted_seq.is_none())
    else {
        return Ok(());
    };
    let seq = stamp_one(txn, id, Op::Upsert, vec![], p, now).await?;
    keep_history(txn, &cur, now).await?;
    let mut am: violation::ActiveModel = cur.into();
    am.server_rev = Set(seq);
    am.update(txn).await?;
    Ok(())
}

/// Deletes (tombstones) a report inside the caller's transaction. Reviewed reports are final and
/// cannot be deleted; a missing or already deleted report is a no-op (`false`).
pub async fn delete_in(
    txn: &DatabaseTransaction,
    p: &Principal,
    id: Uuid,
    now: DateTime<Utc>,
) -> ApiResult<bool> {
    p.authorize(Action::EditViolation)?;
    let Some(cur) = violation::Entity::find_by_id(id)
        .lock_exclusive()
        .one(txn)
        .await?
        .filter(|m| in_use(p, m))
    else {
        return Ok(false);
    };
    if !p.may(Action::ReviewViolation)
        && cur.created_by != p.user_id
        && !officers_of(&cur).contains(&p.user_id)
    {
        return Err(ApiError::Forbidden(
            "only the officers on a report and their teamleider delete it".into(),
        ));
    }
    if matches!(
        Status::parse(&cur.status),
        Some(Status::Approved | Status::Rejected)
    ) {
        return Err(ApiError::Conflict {
            detail: format!(
                "report {id} was {} by the teamleider and is final",
                cur.status
            ),
            existing: None,
        });
    }
    audit::record(txn, &p.actor(), Entry::new("delete", TABLE, id), now).await?;
    let seq = stamp_one(txn, id, Op::Delete, vec![], p, now).await?;
    let mut am: violation::ActiveModel = cur.into();
    am.deleted_seq = Set(Some(seq));
    am.server_rev = Set(seq);
    am.updated_at = Set(now);
    am.last_device_id = Set(Some(p.device_id.clone()));
    am.update(txn).await?;
    Ok(true)
}

/// A report the principal may see.
pub async fn get(db: &Db, p: &Principal, id: Uuid) -> ApiResult<violation::Model> {
    violation::Entity::find_by_id(id)
        .one(&db.read)
        .await?
        .filter(|m| in_use(p, m))
        .ok_or_else(|| ApiError::NotFound(format!("violation {id}")))
}

/// Filters of the report lists (the API's list and the lead page's).
#[derive(Debug, Default, Clone)]
pub struct Filter {
    /// A day in Europe/Amsterdam.
    pub date: Option<NaiveDate>,
    /// Observed in `[from, to)` (a shift of the day).
    pub window: Option<(DateTime<Utc>, DateTime<Utc>)>,
    pub category: Option<Category>,
    pub wijk: Option<String>,
    pub officer: Option<Uuid>,
    pub status: Option<Status>,
    /// A kenteken searched for (any spelling: normalised as stored). Wpg data: only a reader of
    /// the team's Wpg reports may search by it.
    pub plate: Option<String>,
    /// Within a box around a spot: `(lat, lon, metres)` (the caller keeps the circle).
    pub near: Option<(f64, f64, f64)>,
    pub limit: u64,
    pub cursor: Option<(DateTime<Utc>, Uuid)>,
}

/// The UTC bounds of a day in Europe/Amsterdam.
pub fn amsterdam_day(date: NaiveDate) -> (DateTime<Utc>, DateTime<Utc>) {
    let start = |d: NaiveDate| {
        Amsterdam
            .from_local_datetime(&d.and_time(chrono::NaiveTime::MIN))
            .earliest()
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_else(|| Utc.from_utc_datetime(&d.and_time(chrono::NaiveTime::MIN)))
    };
    (start(date), start(date.succ_opt().unwrap_or(date)))
}

pub fn encode_cursor(m: &violation::Model) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!(
        "{}:{}",
        m.observed_at.timestamp_millis(),
        m.id
    ))
}

pub fn decode_cursor(s: &str) -> Option<(DateTime<Utc>, Uuid)> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .ok()?;
    let raw = String::from_utf8(raw).ok()?;
    let (ms, id) = raw.split_once(':')?;
    Some((
        DateTime::from_timestamp_millis(ms.parse().ok()?)?,
        id.parse().ok()?,
    ))
}

/// The live reports in the principal's scope that match `f` (its cursor and limit aside); none
/// when the scope is empty. Searching by kenteken needs the Wpg read of reports.
fn matching(p: &Principal, f: &Filter) -> ApiResult<Option<sea_orm::Select<violation::Entity>>> {
    let mut q = violation::Entity::find()
        .filter(violation::Column::DeletedSeq.is_null())
        .filter(violation::Column::RetentionStage.eq(0));
    match p.scope() {
        Scope::All => {}
        Scope::Team(t) => q = q.filter(violation::Column::TeamId.eq(t)),
        Scope::Nothing => return Ok(None),
    }
    if let Some(d) = f.date {
        let (from, to) = amsterdam_day(d);
        q = q
            .filter(violation::Column::ObservedAt.gte(from))
            .filter(violation::Column::ObservedAt.lt(to));
    }
    if let Some((from, to)) = f.window {
        q = q
            .filter(violation::Column::ObservedAt.gte(from))
            .filter(violation::Column::ObservedAt.lt(to));
    }
    if let Some(c) = f.category {
        q = q.filter(violation::Column::Category.eq(c.as_str()));
    }
    if let Some(w) = &f.wijk {
        q = q.filter(violation::Column::WijkCode.eq(w.as_str()));
    }
    if let Some(s) = f.status {
        q = q.filter(violation::Column::Status.eq(s.as_str()));
    }
    if let Some(plate) = &f.plate {
        if !crate::access::reads_wpg_of(p, crate::access::Kind::Violation) {
            return Err(ApiError::Forbidden(
                "searching by kenteken needs the Wpg authorisation".into(),
            ));
        }
        q = q.filter(violation::Column::Plate.eq(rules::normalise_plate(plate)));
    }
    if let Some((lat, lon, m)) = f.near {
        let dlat = m / 111_320.0;
        let dlon = m / (111_320.0 * lat.to_radians().cos().max(0.1));
        q = q
            .filter(violation::Column::Lat.between(lat - dlat, lat + dlat))
            .filter(violation::Column::Lon.between(lon - dlon, lon + dlon));
    }
    if let Some(o) = f.officer {
        q = q.filter(
            violation::Column::Id.in_subquery(
                Query::select()
                    .column("violation_id")
                    .from("violation_officer")
                    .and_where(Expr::col("user_id").eq(o))
                    .to_owned(),
            ),
        );
    }
    Ok(Some(q))
}

/// How many live reports in the principal's scope match `f` (its cursor and limit aside).
pub async fn count_matching<C: sea_orm::ConnectionTrait>(
    conn: &C,
    p: &Principal,
    f: &Filter,
) -> ApiResult<u64> {
    use sea_orm::PaginatorTrait;
    Ok(match matching(p, f)? {
        Some(q) => q.count(conn).await?,
        None => 0,
    })
}

/// A page of reports in the principal's scope, newest first; fetches one extra row to know
/// whether another page follows.
pub async fn list(db: &Db, p: &Principal, f: &Filter) -> ApiResult<(Vec<violation::Model>, bool)> {
    let Some(mut q) = matching(p, f)? else {
        return Ok((vec![], false));
    };
    if let Some((at, id)) = f.cursor {
        q = q.filter(
            Condition::any()
                .add(violation::Column::ObservedAt.lt(at))
                .add(
                    Condition::all()
                        .add(violation::Column::ObservedAt.eq(at))
                        .add(violation::Column::Id.lt(id)),
                ),
        );
    }
    let mut rows = q
        .order_by_desc(violation::Column::ObservedAt)
        .order_by_desc(violation::Column::Id)
        .limit(f.limit + 1)
        .all(&db.read)
        .await?;
    let more = rows.len() as u64 > f.limit;
    rows.truncate(f.limit as usize);
    Ok((rows, more))
}

/// The lead page's list: `f.limit` reports from the `from`-th, oldest first (the order they
/// wait in), and how many match in all.
pub async fn page_of(
    db: &Db,
    p: &Principal,
    f: &Filter,
    from: u64,
) -> ApiResult<(Vec<violation::Model>, u64)> {
    use sea_orm::PaginatorTrait;
    let Some(q) = matching(p, f)? else {
        return Ok((vec![], 0));
    };
    let total = q.clone().count(&db.read).await?;
    let rows = q
        .order_by_asc(violation::Column::ObservedAt)
        .order_by_asc(violation::Column::Id)
        .offset(from)
        .limit(f.limit)
        .all(&db.read)
        .await?;
    Ok((rows, total))
}

/// What the access rules read of a report: its team and whether it is Wpg data.
/// Whether a report is live and the read gate lets the principal know of it (a report past its
/// active retention stage is out of use: only the archive read serves it).
pub fn in_use(p: &Principal, m: &violation::Model) -> bool {
    m.deleted_seq.is_none() && crate::access::sees(p, crate::access::Kind::Violation, &facts(m))
}

pub fn facts(m: &violation::Model) -> crate::access::Facts {
    crate::access::Facts::new(m.team_id, m.privacy_regime == "wpg").at(m.retention_stage)
}

/// The API view of a report as the access rules let it out to this reader (Wpg fields withheld
/// when redacted; a full read of a Wpg report noted in `d` for the audit log).
pub fn view(
    m: &violation::Model,
    reference: &Reference,
    d: &mut crate::access::Disclosure,
) -> ViolationView {
    let redact =
        d.sight(crate::access::Kind::Violation, &facts(m), m.id) != crate::access::Sight::Full;
    let area = |code: &Option<String>| {
        code.as_deref()
            .and_then(|c| reference.areas.get(c))
            .map(|a| AreaRef {
                code: a.code.clone(),
                name: a.name.clone(),
            })
    };
    let day = m.observed_at.with_timezone(&Amsterdam).date_naive();
    ViolationView {
        id: m.id,
        category: Category::parse(&m.category).unwrap_or(Category::Overig),
        track: m
            .feitcode
            .as_deref()
            .and_then(|c| reference.feitcode_on(c, day))
            .map(|f| f.track.clone()),
        feitcode: m.feitcode.clone(),
        observed_at: m.observed_at,
        location: location_of(m),
        wijk: area(&m.wijk_code),
        buurt: area(&m.buurt_code),
        description: if redact {
            None
        } else {
            Some(m.description.clone())
        },
        outcome: Outcome::parse(&m.outcome).unwrap_or(Outcome::None),
        plate: if redact { None } else { m.plate.clone() },
        driver_present: m.driver_present,
        sanction: m.sanction.as_deref().and_then(Sanction::parse),
        officer_ids: officers_of(m),
        status: Status::parse(&m.status).unwrap_or(Status::Concept),
        review_note: m.review_note.clone(),
        reviewed_by: m.reviewed_by,
        reviewed_at: m.reviewed_at,
        team_id: m.team_id,
        round_id: m.round_id,
        privacy_regime: m.privacy_regime.clone(),
        redacted: redact,
        flags: serde_json::from_value(m.flags.clone()).unwrap_or_default(),
        created_by: m.created_by,
        created_at: m.created_at,
        updated_at: m.updated_at,
        server_rev: m.server_rev,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let at = DateTime::from_timestamp_millis(1_764_150_000_123).unwrap();
        let id = Uuid::new_v4();
        let enc = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!(
            "{}:{}",
            at.timestamp_millis(),
            id
        ));
        assert_eq!(decode_cursor(&enc), Some((at, id)));
        assert_eq!(decode_cursor("not a cursor"), None);
    }

    #[test]
    fn an_amsterdam_day_in_utc() {
        let (from, to) = amsterdam_day(NaiveDate::from_ymd_opt(2026, 11, 26).unwrap());
        assert_eq!(from.to_rfc3339(), "2026-11-25T23:00:00+00:00");
        assert_eq!(to.to_rfc3339(), "2026-11-26T23:00:00+00:00");
        // Summer time: UTC+2.
        let (from, _) = amsterdam_day(NaiveDate::from_ymd_opt(2026, 7, 1).unwrap());
        assert_eq!(from.to_rfc3339(), "2026-06-30T22:00:00+00:00");
    }

    #[test]
    fn the_author_is_always_an_officer_and_hashes_are_stable() {
        let me = Uuid::new_v4();
        let other = Uuid::new_v4();
        let v = NewViolation {
            id: Uuid::nil(),
            category: Category::Afval,
            feitcode: Some(" H004 ".into()),
            observed_at: Utc::now(),
            location: Location {
                lat: 52.46,
                lon: 4.6,
                accuracy_m: 5.0,
                source: LocationSource::Gps,
                fix_time: None,
            },
            description: " zak bij container ".into(),
            outcome: Outcome::Warning,
            plate: Some("".into()),
            driver_present: None,
            sanction: None,
            officer_ids: vec![other, me, other],
            status: None,
            round_id: None,
        };
        let n = normalise(v.clone(), me);
        assert_eq!(n.officer_ids, vec![me, other]);
        assert_eq!(n.feitcode.as_deref(), Some("H004"));
        assert_eq!(n.plate, None);
        assert_eq!(n.description, "zak bij container");
        assert_eq!(create_hash(&n), create_hash(&normalise(v, me)));
    }
}
