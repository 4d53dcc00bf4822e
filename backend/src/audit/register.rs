//! The disclosure register (Wpg art. 25; AVG art. 15): every provision of Wpg data that leaves
//! thor as a file or to a recipient outside the team, one row per data subject, with recipient,
//! purpose and legal basis. A person asks "to whom was my kenteken disclosed in the past four
//! years?"; the functionaris gegevensbescherming (privacy officer, role `fg`) answers from here.
//!
//! Rows are written by the code that releases the data (today: the violation exports, page by
//! page, after the page's audit line and before its bytes leave), kept at least
//! [`KEEP_YEARS`] years, and append-only like the audit log.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};

/// How long a register row is kept: art. 25 gives a person the right to know the provisions of
/// the past four years.
pub const KEEP_YEARS: i32 = 4;

pub mod entity {
    use sea_orm::entity::prelude::*;

    /// One data subject in one provision of Wpg data.
    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "disclosure_register")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        /// The provision this row is part of (one export is one provision).
        pub provision_id: Uuid,
        pub at: DateTimeUtc,
        pub actor_user_id: Option<Uuid>,
        pub actor: String,
        pub recipient: String,
        pub purpose: String,
        pub legal_basis: String,
        /// How it left: `export violations.csv`, `export violations.geojson` …
        pub channel: String,
        /// `kenteken` (and, later, `jongere`, `adres`).
        pub subject_kind: String,
        /// The subject as [`subject`] normalises it (a kenteken without dashes or spaces, upper case).
        pub subject: String,
        pub record_type: String,
        pub record_id: String,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

/// To whom, why and on what legal ground Wpg data is provided. Required on an export for a
/// reader who gets the Wpg fields in full.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Provision {
    /// Who receives the data (an organisation and, where known, a person): "OM, parket
    /// Noord-Holland", "eigen team (maandrapportage)".
    pub recipient: Option<String>,
    /// What for: "bezwaar zaak 2026-114", "maandrapportage handhaving".
    pub purpose: Option<String>,
    /// The legal ground: "Wpg art. 8", "Wpg art. 16 lid 1 sub a" …
    pub legal_basis: Option<String>,
}

/// A [`Provision`] with every part given.
#[derive(Debug, Clone)]
pub struct Stated {
    pub recipient: String,
    pub purpose: String,
    pub legal_basis: String,
}

impl Provision {
    /// Every part present and sensible, or a 422 naming the first one missing.
    pub fn stated(&self) -> ApiResult<Stated> {
        let take = |name: &str, v: &Option<String>| -> ApiResult<String> {
            let v = v.as_deref().map(str::trim).unwrap_or("");
            if v.is_empty() {
                return Err(ApiError::field(
                    name,
                    "required when Wpg data is provided (Wpg art. 25: the disclosure register records recipient, purpose and legal basis)",
                ));
            }
            if v.chars().count() > 200 || v.chars().any(char::is_control) {
                return Err(ApiError::field(
                    name,
                    "at most 200 characters, without control characters",
                ));
            }
            Ok(v.to_string())
        };
        Ok(Stated {
            recipient: take("recipient", &self.recipient)?,
            purpose: take("purpose", &self.purpose)?,
            legal_basis: take("legal_basis", &self.legal_basis)?,
        })
    }
}

/// A kenteken as the register keeps it: letters and digits only, upper case ("12-ab-34" and
/// "12AB34" are one subject).
pub fn subject(plate: &str) -> String {
    plate
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// A kenteken asked about (the query field `kenteken`), as [`subject`] keeps it; 422 naming the
/// field when nothing of a kenteken is left.
pub fn asked_kenteken(raw: &str) -> ApiResult<String> {
    let s = subject(raw);
    if s.is_empty() || s.len() > 12 {
        return Err(ApiError::field(
            "kenteken",
            "a kenteken: 1 to 12 letters and digits",
        ));
    }
    Ok(s)
}

/// One record's subject in a provision.
pub struct Provided<'a> {
    pub record_type: &'static str,
    pub record_id: String,
    pub subject_kind: &'static str,
    pub subject: &'a str,
}

/// Writes one provision's rows (in statements small enough for every backend).
pub async fn record<C: ConnectionTrait>(
    conn: &C,
    p: &Principal,
    provision_id: Uuid,
    stated: &Stated,
    channel: &str,
    provided: Vec<Provided<'_>>,
    at: DateTime<Utc>,
) -> Result<(), DbErr> {
    let rows: Vec<entity::ActiveModel> = provided
        .into_iter()
        .map(|r| entity::ActiveModel {
            id: Set(Uuid::now_v7()),
            provision_id: Set(provision_id),
            at: Set(at),
            actor_user_id: Set(Some(p.user_id)),
            actor: Set(p.username.clone()),
            recipient: Set(stated.recipient.clone()),
            purpose: Set(stated.purpose.clone()),
            legal_basis: Set(stated.legal_basis.clone()),
            channel: Set(channel.to_string()),
            subject_kind: Set(r.subject_kind.to_string()),
            subject: Set(subject(r.subject)),
            record_type: Set(r.record_type.to_string()),
            record_id: Set(r.record_id),
        })
        .collect();
    for part in rows.chunks(50) {
        entity::Entity::insert_many(part.to_vec())
            .exec_without_returning(conn)
            .await?;
    }
    Ok(())
}

/// What a register query asks.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SubjectQuery {
    /// The kenteken whose provisions are asked for (dashes and case do not matter).
    pub kenteken: String,
    /// Provisions since this day (YYYY-MM-DD); default: four years back.
    pub since: Option<chrono::NaiveDate>,
}

/// One provision of a subject's data, as the register answers.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProvisionView {
    pub provision_id: Uuid,
    pub at: DateTime<Utc>,
    /// Who provided it (username).
    pub actor: String,
    pub recipient: String,
    pub purpose: String,
    pub legal_basis: String,
    pub channel: String,
    /// The records of this subject in the provision.
    pub records: Vec<String>,
}

/// A subject's provisions, newest first.
pub async fn search<C: ConnectionTrait>(
    conn: &C,
    kenteken: &str,
    since: DateTime<Utc>,
) -> Result<Vec<ProvisionView>, DbErr> {
    let rows = entity::Entity::find()
        .filter(entity::Column::SubjectKind.eq("kenteken"))
        .filter(entity::Column::Subject.eq(subject(kenteken)))
        .filter(entity::Column::At.gte(since))
        .order_by_desc(entity::Column::At)
        .order_by_asc(entity::Column::ProvisionId)
        .limit(10_000)
        .all(conn)
        .await?;
    let mut out: Vec<ProvisionView> = Vec::new();
    for r in rows {
        match out.last_mut() {
            Some(v) if v.provision_id == r.provision_id => v.records.push(r.record_id),
            _ => out.push(ProvisionView {
                provision_id: r.provision_id,
                at: r.at,
                actor: r.actor,
                recipient: r.recipient,
                purpose: r.purpose,
                legal_basis: r.legal_basis,
                channel: r.channel,
                records: vec![r.record_id],
            }),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_kenteken_however_it_is_written() {
        assert_eq!(subject("12-ab-34"), "12AB34");
        assert_eq!(subject(" 12 AB 34 "), "12AB34");
    }

    #[test]
    fn a_provision_names_what_is_missing() {
        let full = Provision {
            recipient: Some("OM".into()),
            purpose: Some("bezwaar".into()),
            legal_basis: Some("Wpg art. 16".into()),
        };
        assert!(full.stated().is_ok());
        let mut no_purpose = full.clone();
        no_purpose.purpose = Some("  ".into());
        let e = no_purpose.stated().unwrap_err();
        assert!(format!("{e:?}").contains("purpose"), "{e:?}");
        let mut control = full;
        control.recipient = Some("OM\u{7}".into());
        assert!(control.stated().is_err());
    }
}
