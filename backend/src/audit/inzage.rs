//! Inzage (AVG art. 15, Wpg art. 25): what thor holds of one data subject, and to whom it was
//! provided in the past four years, as JSON and as a document to hand over.
//!
//! For the functionaris gegevensbescherming, who answers the request (within six weeks, art.
//! 25). A subject is a kenteken (every report that names it, whatever its retention stage) or a
//! youth person (their record and their group). Addresses are not recorded yet. The answer is
//! itself a consultation of Wpg data and is audit-logged with the records it showed.

use std::fmt::Write as _;

use chrono::{DateTime, SecondsFormat, Utc};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::register::{self, ProvisionView};
use crate::access::Stage;
use crate::app::AppState;
use crate::auth::{Action, Principal};
use crate::error::{ApiError, ApiResult};

/// Whose data.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct InzageQuery {
    /// A kenteken (dashes and case do not matter).
    pub kenteken: Option<String>,
    /// A youth person's id.
    pub jongere: Option<Uuid>,
    /// `json` (default) or `text`: a document in Dutch to hand over.
    pub format: Option<String>,
}

/// One record of the subject.
#[derive(Debug, Serialize, ToSchema)]
pub struct SubjectRecord {
    pub record_type: String,
    pub id: Uuid,
    /// When it happened or was last changed.
    pub at: DateTime<Utc>,
    /// `active`, `restricted` or `removed`.
    pub stage: String,
    /// The record's fields as stored.
    #[schema(value_type = Object)]
    pub fields: Value,
}

/// What thor holds of a subject and to whom it went.
#[derive(Debug, Serialize, ToSchema)]
pub struct Inzage {
    /// `kenteken` or `jongere`.
    pub subject_kind: String,
    pub subject: String,
    pub asked_at: DateTime<Utc>,
    pub records: Vec<SubjectRecord>,
    /// Provisions of the past four years (Wpg art. 25).
    pub disclosures: Vec<ProvisionView>,
}

/// Gathers the subject's records and provisions; logs the consultation.
pub async fn gather(state: &AppState, p: &Principal, q: &InzageQuery) -> ApiResult<Inzage> {
    p.authorize(Action::ReadAccountability)?;
    let now = Utc::now();
    let since = now - chrono::Duration::days(365 * i64::from(register::KEEP_YEARS));
    let conn = &state.db.read;
    let (kind, subject, records, disclosures) = match (&q.kenteken, q.jongere) {
        (Some(k), None) => {
            let subject = register::asked_kenteken(k)?;
            use crate::violations::entity::violation;
            let rows = violation::Entity::find()
                .filter(violation::Column::Plate.eq(subject.as_str()))
                .order_by_asc(violation::Column::ObservedAt)
                .all(conn)
                .await?;
            let records: Vec<SubjectRecord> = rows
                .iter()
                .map(|m| SubjectRecord {
                    record_type: "violations".into(),
                    id: m.id,
                    at: m.observed_at,
                    stage: Stage::from_db(m.retention_stage).as_str().into(),
                    fields: Value::Object(crate::violations::sync::canonical_row(m)),
                })
                .collect();
            let disclosures = register::search(conn, &subject, since).await?;
            ("kenteken", subject, records, disclosures)
        }
        (None, Some(id)) => {
            use crate::records::kinds::{GROUPS, PERSONS};
            use crate::records::store;
            let person = store::load(conn, &PERSONS, id, false)
                .await?
                .ok_or_else(|| ApiError::field("jongere", "no such youth person"))?;
            let mut rows = vec![("youth_persons", person.clone())];
            if let Some(g) = person.parent_id
                && let Some(group) = store::load(conn, &GROUPS, g, false).await?
            {
                rows.push(("youth_groups", group));
            }
            let records: Vec<SubjectRecord> = rows
                .into_iter()
                .map(|(t, r)| SubjectRecord {
                    record_type: t.into(),
                    id: r.id,
                    at: r.updated_at,
                    stage: Stage::from_db(r.retention_stage).as_str().into(),
                    fields: Value::Object(store::canonical_row(&r)),
                })
                .collect();
            // No path provides youth data outside the team yet: the register holds none.
            ("jongere", id.to_string(), records, Vec::new())
        }
        _ => {
            return Err(ApiError::field(
                "kenteken",
                "give exactly one subject: kenteken or jongere",
            ));
        }
    };
    let ids: Vec<String> = records
        .iter()
        .map(|r: &SubjectRecord| r.id.to_string())
        .collect();
    let entry = super::Entry {
        action: "inzage",
        record_type: if kind == "kenteken" {
            "violations"
        } else {
            "youth_persons"
        },
        record_id: None,
        reason: None,
        detail: Some(json!({ "subject_kind": kind, "subject": subject, "records": ids })),
    };
    state.audit.read(&p.actor(), entry).await?;
    Ok(Inzage {
        subject_kind: kind.into(),
        subject,
        asked_at: now,
        records,
        disclosures,
    })
}

fn ts(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The answer as a document in Dutch.
pub fn document(i: &Inzage) -> String {
    let mut o = String::new();
    let who = match i.subject_kind.as_str() {
        "kenteken" => format!("kenteken {}", i.subject),
        _ => format!("jongere {}", i.subject),
    };
    let _ = writeln!(o, "INZAGE — {who}");
    let _ = writeln!(
        o,
        "Gemeente Velsen, team THOR (Toezicht en Handhaving Openbare Ruimte)\n\
         Op grond van art. 15 AVG en art. 25 Wet politiegegevens; opgesteld {}.\n",
        ts(&i.asked_at)
    );
    let _ = writeln!(o, "1. Gegevens die THOR verwerkt ({})", i.records.len());
    if i.records.is_empty() {
        let _ = writeln!(o, "   Geen.");
    }
    for r in &i.records {
        let _ = writeln!(
            o,
            "   - {} {} van {} (bewaarfase: {})",
            r.record_type,
            r.id,
            ts(&r.at),
            match r.stage.as_str() {
                "active" => "in gebruik",
                "restricted" => "beperkt",
                _ => "verwijderd, bewaard voor verantwoording",
            }
        );
        if let Value::Object(m) = &r.fields {
            for (k, v) in m {
                if v.is_null() {
                    continue;
                }
                let _ = writeln!(o, "       {k}: {v}");
            }
        }
    }
    let _ = writeln!(
        o,
        "\n2. Verstrekkingen aan anderen in de afgelopen vier jaar ({})",
        i.disclosures.len()
    );
    if i.disclosures.is_empty() {
        let _ = writeln!(o, "   Geen.");
    }
    for d in &i.disclosures {
        let _ = writeln!(
            o,
            "   - {} aan {} — doel: {}; grondslag: {}; door {} ({}, {} gegeven(s))",
            ts(&d.at),
            d.recipient,
            d.purpose,
            d.legal_basis,
            d.actor,
            d.channel,
            d.records.len()
        );
    }
    o
}
