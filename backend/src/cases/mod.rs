//! Finishing a case: from the report to its afdoening's last step.
//!
//! - The officer chooses the afdoening (`sanction`) on the report, offline in the street; the
//!   violations rules check it against the outcome and the feitcode's track.
//! - The track's steps ([`track`]) are taken here, in order, by whom the step names; a step of the
//!   teamleider needs the report approved first. Each step is a row of `case_step` and a line of
//!   the audit log.
//! - The documents ([`document`]) are rendered from the record on every issue. A render that
//!   differs from the last stored version of its kind (the record changed) is stored as the next
//!   version with its SHA-256; an unchanged one is the stored version again. Every issue is
//!   audit-logged, and one that leaves the team (a recipient is named) is registered as a
//!   provision in the disclosure register.
//! - Who may see a case is who may see its report, decided by the read gate (`access`): a
//!   document carries the report's Wpg data, so it is served in full or not at all.

pub mod document;
pub mod routes;
pub mod track;

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::access::{self, Kind, Sight};
use crate::app::AppState;
use crate::audit::{self, Entry};
use crate::auth::{Action, Principal};
use crate::error::{ApiError, ApiResult};
use crate::labels;
use crate::violations::entity::violation;
use crate::violations::{Sanction, Status, store as reports};
use track::{DocumentKind, Taken};

pub mod entity {
    pub mod case_step {
        use sea_orm::entity::prelude::*;

        /// A step taken on a case's track.
        #[sea_orm::model]
        #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
        #[sea_orm(table_name = "case_step")]
        pub struct Model {
            #[sea_orm(primary_key, auto_increment = false)]
            pub id: Uuid,
            pub violation_id: Uuid,
            pub team_id: Option<Uuid>,
            pub step: String,
            pub taken_at: DateTimeUtc,
            pub taken_by: Uuid,
            pub taken_by_name: String,
            pub note: Option<String>,
            /// The track's last step.
            pub closes: bool,
        }

        impl ActiveModelBehavior for ActiveModel {}
    }

    pub mod case_document {
        use sea_orm::entity::prelude::*;

        /// One version of a document of a case, with its hash.
        #[sea_orm::model]
        #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
        #[sea_orm(table_name = "case_document")]
        pub struct Model {
            #[sea_orm(primary_key, auto_increment = false)]
            pub id: Uuid,
            pub violation_id: Uuid,
            pub team_id: Option<Uuid>,
            pub kind: String,
            pub version: i32,
            pub sha256: String,
            pub content: Vec<u8>,
            pub made_at: DateTimeUtc,
            pub made_by: Uuid,
        }

        impl ActiveModelBehavior for ActiveModel {}
    }
}

use entity::{case_document, case_step};

/// A step of the track as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StepView {
    pub key: String,
    pub label: String,
    pub by: track::Actor,
    /// The document the step issues.
    pub document: Option<String>,
    pub taken_at: Option<DateTime<Utc>>,
    pub taken_by: Option<String>,
    pub note: Option<String>,
}

/// A stored version of a document.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DocumentVersion {
    pub kind: String,
    pub version: i32,
    pub sha256: String,
    pub made_at: DateTime<Utc>,
}

/// A case: a report's afdoening and where its track stands.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CaseView {
    /// The report's id (a case is its report's).
    pub id: Uuid,
    pub sanction: Sanction,
    pub sanction_label: String,
    pub report_status: Status,
    pub observed_at: DateTime<Utc>,
    pub steps: Vec<StepView>,
    /// The next step's key; null when the track is finished.
    pub next: Option<String>,
    pub due_at: Option<DateTime<Utc>>,
    pub overdue: bool,
    pub finished: bool,
    /// The documents this case can issue (the case overview always), as `kind` values.
    pub documents: Vec<String>,
    /// Versions issued so far.
    pub issued: Vec<DocumentVersion>,
}

fn sanction_of(m: &violation::Model) -> ApiResult<Sanction> {
    m.sanction
        .as_deref()
        .and_then(Sanction::parse)
        .ok_or_else(|| ApiError::NotFound(format!("report {} has no afdoening chosen", m.id)))
}

async fn taken_of(state: &AppState, id: Uuid) -> ApiResult<Vec<case_step::Model>> {
    Ok(case_step::Entity::find()
        .filter(case_step::Column::ViolationId.eq(id))
        .order_by_asc(case_step::Column::TakenAt)
        .order_by_asc(case_step::Column::Id)
        .all(&state.db.read)
        .await?)
}

fn as_taken(rows: &[case_step::Model]) -> Vec<Taken> {
    rows.iter()
        .map(|r| Taken {
            key: r.step.clone(),
            at: r.taken_at,
        })
        .collect()
}

/// The documents a case of this afdoening issues: its steps' and the case overview.
fn documents_of(s: Sanction) -> Vec<DocumentKind> {
    let mut out: Vec<DocumentKind> = track::steps(s)
        .iter()
        .filter_map(|st| st.document)
        .collect();
    out.push(DocumentKind::Zaakoverzicht);
    out
}

/// The report of a case, as the read gate lets the principal see it; a document needs the full
/// record (Wpg data included), so anything less is a 403 for a case of the principal's scope.
async fn readable(state: &AppState, p: &Principal, id: Uuid) -> ApiResult<violation::Model> {
    let m = reports::get(&state.db, p, id).await?;
    if access::decide(p, Kind::Violation, &reports::facts(&m)) != Sight::Full {
        return Err(ApiError::Forbidden(
            "the case holds Wpg data this account may not read".into(),
        ));
    }
    Ok(m)
}

fn view(
    m: &violation::Model,
    s: Sanction,
    rows: &[case_step::Model],
    issued: Vec<DocumentVersion>,
    now: DateTime<Utc>,
) -> CaseView {
    let taken = as_taken(rows);
    let progress = track::progress(s, m.observed_at, &taken, now);
    let steps = track::steps(s)
        .iter()
        .map(|st| {
            let row = rows.iter().find(|r| r.step == st.key);
            StepView {
                key: st.key.into(),
                label: st.label.into(),
                by: st.by,
                document: st.document.map(|d| d.as_str().to_string()),
                taken_at: row.map(|r| r.taken_at),
                taken_by: row.map(|r| r.taken_by_name.clone()),
                note: row.and_then(|r| r.note.clone()),
            }
        })
        .collect();
    CaseView {
        id: m.id,
        sanction: s,
        sanction_label: labels::nl("sanction", s.as_str()).to_string(),
        report_status: Status::parse(&m.status).unwrap_or(Status::Concept),
        observed_at: m.observed_at,
        steps,
        next: progress.next.map(|n| n.key.to_string()),
        due_at: progress.due_at,
        overdue: progress.overdue,
        finished: progress.finished,
        documents: documents_of(s)
            .iter()
            .map(|d| d.as_str().to_string())
            .collect(),
        issued,
    }
}

async fn issued_of(state: &AppState, id: Uuid) -> ApiResult<Vec<DocumentVersion>> {
    use sea_orm::QuerySelect;
    let rows: Vec<(String, i32, String, DateTime<Utc>)> = case_document::Entity::find()
        .select_only()
        .column(case_document::Column::Kind)
        .column(case_document::Column::Version)
        .column(case_document::Column::Sha256)
        .column(case_document::Column::MadeAt)
        .filter(case_document::Column::ViolationId.eq(id))
        .order_by_asc(case_document::Column::Kind)
        .order_by_asc(case_document::Column::Version)
        .into_tuple()
        .all(&state.db.read)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(kind, version, sha256, made_at)| DocumentVersion {
            kind,
            version,
            sha256,
            made_at,
        })
        .collect())
}

/// The case of a report.
pub async fn case_of(state: &AppState, p: &Principal, id: Uuid) -> ApiResult<CaseView> {
    let m = reports::get(&state.db, p, id).await?;
    case_for(state, &m).await
}

/// The case of a report the caller has already read through the read gate (`reports::get`).
pub async fn case_for(state: &AppState, m: &violation::Model) -> ApiResult<CaseView> {
    let s = sanction_of(m)?;
    let rows = taken_of(state, m.id).await?;
    Ok(view(m, s, &rows, issued_of(state, m.id).await?, Utc::now()))
}

/// The open cases of the principal's scope (reports with an afdoening, not rejected, whose track
/// is not finished), the most urgent first.
pub async fn open_cases(
    state: &AppState,
    p: &Principal,
    now: DateTime<Utc>,
) -> ApiResult<Vec<CaseView>> {
    use sea_orm::sea_query::{Expr, ExprTrait, Query};
    let closed = Query::select()
        .column(case_step::Column::ViolationId)
        .from(case_step::Entity)
        .and_where(Expr::col(case_step::Column::Closes).eq(true))
        .to_owned();
    let q = violation::Entity::find()
        .filter(violation::Column::DeletedSeq.is_null())
        .filter(violation::Column::RetentionStage.eq(0))
        .filter(violation::Column::Sanction.is_not_null())
        .filter(
            violation::Column::Sanction.is_not_in(track::WITHOUT_STEPS.iter().map(|s| s.as_str())),
        )
        .filter(violation::Column::Status.is_in(["submitted", "approved"]))
        .filter(violation::Column::Id.not_in_subquery(closed));
    let Some(q) = p.scoped(q, violation::Column::TeamId) else {
        return Ok(vec![]);
    };
    let reports: Vec<violation::Model> = q
        .order_by_asc(violation::Column::ObservedAt)
        .all(&state.db.read)
        .await?
        .into_iter()
        .filter(|m| reports::in_use(p, m))
        .collect();
    let ids: Vec<Uuid> = reports.iter().map(|m| m.id).collect();
    let mut steps: HashMap<Uuid, Vec<case_step::Model>> = HashMap::new();
    for chunk in ids.chunks(500) {
        for r in case_step::Entity::find()
            .filter(case_step::Column::ViolationId.is_in(chunk.iter().copied()))
            .order_by_asc(case_step::Column::TakenAt)
            .all(&state.db.read)
            .await?
        {
            steps.entry(r.violation_id).or_default().push(r);
        }
    }
    let mut out: Vec<CaseView> = reports
        .iter()
        .filter_map(|m| {
            let s = sanction_of(m).ok()?;
            let v = view(
                m,
                s,
                steps.get(&m.id).map_or(&[][..], Vec::as_slice),
                vec![],
                now,
            );
            (!v.finished).then_some(v)
        })
        .collect();
    out.sort_by_key(|c| (!c.overdue, c.due_at));
    Ok(out)
}

/// Takes the next step of a case's track: in order, by whom the step names; the teamleider's
/// steps once the report is approved.
pub async fn take_step(
    state: &AppState,
    p: &Principal,
    id: Uuid,
    key: &str,
    note: Option<String>,
    now: DateTime<Utc>,
) -> ApiResult<CaseView> {
    let txn = crate::sync::begin_write(&state.db).await?;
    let (m, s) = take_step_in(&txn, p, id, key, note, now).await?;
    txn.commit().await?;
    let rows = taken_of(state, id).await?;
    Ok(view(&m, s, &rows, issued_of(state, id).await?, now))
}

/// [`take_step`] inside the caller's write transaction (the demo's history uses it too).
pub async fn take_step_in(
    txn: &sea_orm::DatabaseTransaction,
    p: &Principal,
    id: Uuid,
    key: &str,
    note: Option<String>,
    now: DateTime<Utc>,
) -> ApiResult<(violation::Model, Sanction)> {
    p.authorize(Action::EditViolation)?;
    let m = violation::Entity::find_by_id(id)
        .one(txn)
        .await?
        .filter(|m| reports::in_use(p, m))
        .ok_or_else(|| ApiError::NotFound(format!("violation {id}")))?;
    let s = sanction_of(&m)?;
    let lead = p.may(Action::ReviewViolation);
    let officers: Vec<Uuid> = serde_json::from_value(m.officer_ids.clone()).unwrap_or_default();
    if !lead && m.created_by != p.user_id && !officers.contains(&p.user_id) {
        return Err(ApiError::Forbidden(
            "only the officers on a report and their teamleider work its case".into(),
        ));
    }
    let rows = case_step::Entity::find()
        .filter(case_step::Column::ViolationId.eq(id))
        .order_by_asc(case_step::Column::TakenAt)
        .order_by_asc(case_step::Column::Id)
        .all(txn)
        .await?;
    let step = track::next_allowed(s, &as_taken(&rows), key, lead).map_err(|r| match r {
        track::Refusal::NotYours(m) => ApiError::Forbidden(m),
        track::Refusal::NotNext(m) => ApiError::field("step", m),
    })?;
    if step.by == track::Actor::Teamleider && m.status != Status::Approved.as_str() {
        return Err(ApiError::Conflict {
            detail: format!(
                "report {id} is {}: approve it before the case goes on",
                m.status
            ),
            existing: None,
        });
    }
    if m.status == Status::Rejected.as_str() {
        return Err(ApiError::Conflict {
            detail: format!("report {id} was rejected: it has no case"),
            existing: None,
        });
    }
    let note = note.map(|n| n.trim().to_string()).filter(|n| !n.is_empty());
    if note.as_ref().is_some_and(|n| n.chars().count() > 2000) {
        return Err(ApiError::field("note", "at most 2000 characters"));
    }
    case_step::ActiveModel {
        id: Set(Uuid::now_v7()),
        violation_id: Set(id),
        team_id: Set(m.team_id),
        step: Set(step.key.to_string()),
        taken_at: Set(now),
        taken_by: Set(p.user_id),
        taken_by_name: Set(p.username.clone()),
        note: Set(note.clone()),
        closes: Set(track::steps(s)
            .last()
            .is_some_and(|last| last.key == step.key)),
    }
    .insert(txn)
    .await?;
    audit::record(
        txn,
        &p.actor(),
        Entry::new("case_step", reports::TABLE, id)
            .detail(serde_json::json!({ "step": step.key, "sanction": s.as_str() })),
        now,
    )
    .await?;
    Ok((m, s))
}

/// The record a document is rendered from.
async fn record_of(
    state: &AppState,
    m: &violation::Model,
    s: Sanction,
    rows: &[case_step::Model],
) -> ApiResult<document::Record> {
    use crate::auth::entities::app_user;
    let officer_ids: Vec<Uuid> = serde_json::from_value(m.officer_ids.clone()).unwrap_or_default();
    let mut ids = officer_ids.clone();
    if !ids.contains(&m.created_by) {
        ids.insert(0, m.created_by);
    }
    let users: HashMap<Uuid, app_user::Model> = app_user::Entity::find()
        .filter(app_user::Column::Id.is_in(ids.iter().copied()))
        .all(&state.db.read)
        .await?
        .into_iter()
        .map(|u| (u.id, u))
        .collect();
    let officers = ids
        .iter()
        .filter_map(|i| users.get(i))
        .map(|u| document::Officer {
            name: u.shown_name().to_string(),
            boa_number: u.boa_number.clone(),
        })
        .collect();
    let team = match m.team_id {
        Some(t) => crate::auth::accounts::list_teams(&state.db.read)
            .await?
            .into_iter()
            .find(|x| x.id == t)
            .map_or_else(|| "team".to_string(), |x| x.name),
        None => "zonder team".into(),
    };
    let area = |c: &Option<String>| {
        c.as_deref()
            .and_then(|c| state.reference.areas.get(c))
            .map(|a| a.name.clone())
    };
    let day = m
        .observed_at
        .with_timezone(&chrono_tz::Europe::Amsterdam)
        .date_naive();
    let feitcode = m
        .feitcode
        .as_deref()
        .and_then(|c| state.reference.feitcode_on(c, day))
        .map(|f| {
            // The tariff of road-user category 1 (motor vehicles on more than two wheels) for
            // Wahv codes; codes without amounts have none.
            let tariff = f.tariffs_eur.get("1").and_then(serde_json::Value::as_f64);
            (
                f.code.clone(),
                f.description.clone(),
                f.article.clone(),
                tariff,
            )
        });
    let photos = crate::photos::store::of_violations(&state.db.read, &[m.id]).await?;
    let mut out_photos = Vec::new();
    for ph in photos.get(&m.id).into_iter().flatten() {
        let thumbnail = if ph.derivative_state == crate::photos::DerivativeState::Done.as_str() {
            crate::photos::store::thumbnail(state, &ph.sha256).await
        } else {
            None
        };
        out_photos.push(document::Photo {
            sha256: ph.sha256.clone(),
            taken_at: ph.captured_at,
            thumbnail,
        });
    }
    let steps = rows
        .iter()
        .map(|r| document::StepTaken {
            label: track::steps(s)
                .iter()
                .find(|st| st.key == r.step)
                .map_or(r.step.clone(), |st| st.label.to_string()),
            at: r.taken_at,
            by: r.taken_by_name.clone(),
        })
        .collect();
    Ok(document::Record {
        report_id: m.id,
        team,
        officers,
        observed_at: m.observed_at,
        recorded_at: m.created_at,
        address: state
            .lookups
            .address(&state.db.write, &state.reference, m.lat, m.lon)
            .await
            .address,
        buurt: area(&m.buurt_code),
        wijk: area(&m.wijk_code),
        lat: m.lat,
        lon: m.lon,
        accuracy_m: m.accuracy_m,
        location_source: labels::nl("location_source", &m.location_source).to_string(),
        category: labels::nl("category", &m.category).to_string(),
        feitcode,
        outcome: labels::nl("outcome", &m.outcome).to_string(),
        sanction: labels::nl("sanction", s.as_str()).to_string(),
        plate: m.plate.clone(),
        driver_present: m.driver_present,
        description: m.description.clone(),
        photos: out_photos,
        steps,
    })
}

/// A document as issued: its bytes and which stored version they are.
pub struct Issued {
    pub bytes: Vec<u8>,
    pub version: i32,
    pub sha256: String,
    pub kind: DocumentKind,
}

/// Issues a document of a case: rendered from the record; stored as a new version when it differs
/// from the last one of its kind; audit-logged, and registered as a provision when `provision`
/// names who it leaves the team for.
pub async fn issue(
    state: &AppState,
    p: &Principal,
    id: Uuid,
    kind: DocumentKind,
    provision: Option<crate::audit::register::Stated>,
    now: DateTime<Utc>,
) -> ApiResult<Issued> {
    use sha2::Digest;
    let m = readable(state, p, id).await?;
    let s = sanction_of(&m)?;
    if !documents_of(s).contains(&kind) {
        let names: Vec<&str> = documents_of(s).iter().map(|d| d.as_str()).collect();
        return Err(ApiError::NotFound(format!(
            "a case of {} issues {}, not {}",
            s.as_str(),
            names.join(", "),
            kind.as_str()
        )));
    }
    let rows = taken_of(state, id).await?;
    let record = record_of(state, &m, s, &rows).await?;
    let bytes = document::render(kind, &record);
    let sha256 = hex::encode(sha2::Sha256::digest(&bytes));
    let txn = crate::sync::begin_write(&state.db).await?;
    let last = case_document::Entity::find()
        .filter(case_document::Column::ViolationId.eq(id))
        .filter(case_document::Column::Kind.eq(kind.as_str()))
        .order_by_desc(case_document::Column::Version)
        .one(&txn)
        .await?;
    let version = match &last {
        Some(l) if l.sha256 == sha256 => l.version,
        other => {
            let version = other.as_ref().map_or(1, |l| l.version + 1);
            case_document::ActiveModel {
                id: Set(Uuid::now_v7()),
                violation_id: Set(id),
                team_id: Set(m.team_id),
                kind: Set(kind.as_str().into()),
                version: Set(version),
                sha256: Set(sha256.clone()),
                content: Set(bytes.clone()),
                made_at: Set(now),
                made_by: Set(p.user_id),
            }
            .insert(&txn)
            .await?;
            version
        }
    };
    audit::record(
        &txn,
        &p.actor(),
        Entry::new("issue_document", reports::TABLE, id).detail(serde_json::json!({
            "kind": kind.as_str(), "version": version, "sha256": sha256,
            "provided": provision.is_some(),
        })),
        now,
    )
    .await?;
    if let Some(stated) = &provision
        && let Some(plate) = m.plate.as_deref().filter(|s| !s.trim().is_empty())
    {
        crate::audit::register::record(
            &txn,
            p,
            Uuid::now_v7(),
            stated,
            &format!("document {}", kind.as_str()),
            vec![crate::audit::register::Provided {
                record_type: "violation",
                record_id: id.to_string(),
                subject_kind: "kenteken",
                subject: plate,
            }],
            now,
        )
        .await?;
    }
    txn.commit().await?;
    Ok(Issued {
        bytes,
        version,
        sha256,
        kind,
    })
}
