//! Accounts, roles, devices and tokens, and the one place that decides who may do what.
//!
//! Roles, in the words officers use:
//! - **handhaver**: a BOA (buitengewoon opsporingsambtenaar) of the street team; logs violations.
//! - **jeugdboa**: a BOA who follows the youth groups of Velsen.
//! - **teamleider**: the team lead; reviews and approves reports, signs off the briefing.
//! - **beheerder**: the functional administrator; manages accounts, devices and reference data.
//!
//! BOA's may see Wpg data (police data, Wet politiegegevens) by their role; anyone else needs
//! the explicit `wpg_authorised` flag.

pub mod accounts;
pub mod entities;
pub mod password;
pub mod ratelimit;
pub mod routes;
pub mod token;

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use sea_orm::sea_query::{Expr, ExprTrait, JoinType, Query};
use sea_orm::{ConnectionTrait, FromQueryResult};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::app::AppState;
use crate::error::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Handhaver,
    Jeugdboa,
    Teamleider,
    Beheerder,
    /// The functionaris gegevensbescherming (privacy officer): reads the audit log and the
    /// disclosure register, no record of the field.
    Fg,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Handhaver => "handhaver",
            Role::Jeugdboa => "jeugdboa",
            Role::Teamleider => "teamleider",
            Role::Beheerder => "beheerder",
            Role::Fg => "fg",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "handhaver" => Some(Role::Handhaver),
            "jeugdboa" => Some(Role::Jeugdboa),
            "teamleider" => Some(Role::Teamleider),
            "beheerder" => Some(Role::Beheerder),
            "fg" => Some(Role::Fg),
            _ => None,
        }
    }

    /// Everyone but the beheerder and the fg works in a team: what they read and write is their team's.
    pub fn works_in_a_team(self) -> bool {
        !matches!(self, Role::Beheerder | Role::Fg)
    }

    /// BOA's (handhaver, jeugdboa) work under the Wpg by their appointment.
    pub fn is_boa(self) -> bool {
        matches!(self, Role::Handhaver | Role::Jeugdboa)
    }
}

/// Who is calling: the user behind a valid, unrevoked, unexpired device token.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user_id: Uuid,
    pub username: String,
    pub role: Role,
    pub team_id: Option<Uuid>,
    pub wpg_authorised: bool,
    pub device_id: String,
    pub token_id: Uuid,
    /// The sync sequence when the request was authenticated (read in the same query): a
    /// snapshot marker for caches of derived data.
    pub seen_seq: i64,
}

/// Something a principal may want to do; `Principal::authorize` is the only place that answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Log a violation report in the street.
    CreateViolation,
    /// Edit a report (fields, officers, submitting it).
    EditViolation,
    /// Approve or reject a submitted report.
    ReviewViolation,
    /// Create and change accounts.
    ManageUsers,
    /// Revoke the tokens of another user (a lost phone).
    RevokeOthersDevices,
    /// Search the audit log and the disclosure register (Wpg art. 25, 32a).
    ReadAccountability,
    /// Place and lift legal holds (evidence under objection, appeal or in a criminal case).
    PlaceHold,
    /// Record field work: start a round ad hoc and walk it, log incidents and youth sightings
    /// (what each kind of record lets them write is its own rule, `records::kinds`).
    DoFieldWork,
    /// Plan the team's rounds.
    PlanRounds,
    /// Edit the team's field records (rounds, segments, incidents), whoever made them.
    EditTeamFieldRecords,
    /// Write the briefing's attention points and sign the briefing off.
    LeadBriefing,
}

/// Which records a principal may read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every team (the beheerder).
    All,
    /// One team's records.
    Team(Uuid),
    /// Nothing (a user without a team).
    Nothing,
}

impl Principal {
    /// The server itself reading on no one's behalf (the CLI, background jobs): a beheerder
    /// without a user or team, so it sees every team and no Wpg details.
    pub fn system(name: &str) -> Principal {
        Principal {
            user_id: Uuid::nil(),
            username: name.to_string(),
            role: Role::Beheerder,
            team_id: None,
            wpg_authorised: false,
            device_id: name.to_string(),
            token_id: Uuid::nil(),
            seen_seq: 0,
        }
    }

    /// The one table of role permissions.
    pub fn may(&self, action: Action) -> bool {
        use Role::*;
        match action {
            Action::CreateViolation => matches!(self.role, Handhaver | Jeugdboa | Teamleider),
            Action::EditViolation => matches!(self.role, Handhaver | Jeugdboa | Teamleider),
            Action::ReviewViolation => self.role == Teamleider,
            Action::ManageUsers => self.role == Beheerder,
            Action::RevokeOthersDevices => matches!(self.role, Beheerder | Teamleider),
            Action::ReadAccountability => self.role == Fg,
            Action::PlaceHold => matches!(self.role, Teamleider | Beheerder),
            Action::DoFieldWork => matches!(self.role, Handhaver | Jeugdboa | Teamleider),
            Action::PlanRounds => self.role == Teamleider,
            Action::EditTeamFieldRecords => self.role == Teamleider,
            Action::LeadBriefing => self.role == Teamleider,
        }
    }

    pub fn authorize(&self, action: Action) -> Result<(), ApiError> {
        if self.may(action) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(match action {
                Action::ReviewViolation => {
                    "only a teamleider approves or rejects reports".to_string()
                }
                Action::ReadAccountability => {
                    "only the functionaris gegevensbescherming (role fg) reads the audit log and the disclosure register".to_string()
                }
                Action::LeadBriefing => "only a teamleider signs the briefing off".to_string(),
                other => format!("a {} may not do this ({other:?})", self.role.as_str()),
            }))
        }
    }

    /// Whether this principal may see Wpg data unredacted.
    pub fn reads_wpg(&self) -> bool {
        self.role.is_boa() || self.wpg_authorised
    }

    /// Team scoping for reads: everyone sees their own team; the beheerder sees all teams.
    pub fn scope(&self) -> Scope {
        match (self.role, self.team_id) {
            (Role::Beheerder, _) => Scope::All,
            (_, Some(team)) => Scope::Team(team),
            (_, None) => Scope::Nothing,
        }
    }

    /// Restricts a query to the records in this principal's scope, `team_col` being the
    /// records' team column; `None` when the scope is empty (a user without a team), so a
    /// caller cannot mistake "no team" for "no filter".
    pub fn scoped<Q: sea_orm::QueryFilter, C: sea_orm::ColumnTrait>(
        &self,
        q: Q,
        team_col: C,
    ) -> Option<Q> {
        match self.scope() {
            Scope::All => Some(q),
            Scope::Team(t) => Some(q.filter(team_col.eq(t))),
            Scope::Nothing => None,
        }
    }

    /// Whether a record of `team` is inside this principal's scope.
    pub fn sees_team(&self, team: Option<Uuid>) -> bool {
        match self.scope() {
            Scope::All => true,
            Scope::Team(t) => team == Some(t),
            Scope::Nothing => false,
        }
    }

    pub fn actor(&self) -> crate::audit::Actor {
        crate::audit::Actor {
            user_id: Some(self.user_id),
            name: self.username.clone(),
            device_id: Some(self.device_id.clone()),
        }
    }
}

#[derive(Debug, PartialEq, FromQueryResult)]
struct PrincipalRow {
    token_id: Uuid,
    device_id: String,
    expires_at: chrono::DateTime<chrono::Utc>,
    revoked_at: Option<chrono::DateTime<chrono::Utc>>,
    user_id: Uuid,
    username: String,
    role: String,
    team_id: Option<Uuid>,
    wpg_authorised: bool,
    active: bool,
    seen_seq: i64,
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let raw = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                ApiError::Unauthorized(
                    "send the token from /api/v1/auth/login as Authorization: Bearer <token>"
                        .into(),
                )
            })?;
        let token = raw
            .strip_prefix("Bearer ")
            .or_else(|| raw.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| ApiError::Unauthorized("use the Bearer scheme".into()))?;
        let hash = token::hash(token);
        let row = match state
            .db
            .point
            .as_ref()
            .and_then(|r| r.read(|c| point_row(c, &hash)))
        {
            Some(row) => row,
            None => sqlx_row(state, &hash).await?,
        };
        let invalid = || {
            ApiError::Unauthorized("the token is unknown, expired or revoked; log in again".into())
        };
        let row = row.ok_or_else(invalid)?;
        if row.revoked_at.is_some() || row.expires_at <= chrono::Utc::now() || !row.active {
            return Err(invalid());
        }
        let role = Role::parse(&row.role).ok_or_else(|| {
            ApiError::internal(anyhow::anyhow!("unknown role {:?} in database", row.role))
        })?;
        Ok(Principal {
            user_id: row.user_id,
            username: row.username,
            role,
            team_id: row.team_id,
            wpg_authorised: row.wpg_authorised,
            device_id: row.device_id,
            token_id: row.token_id,
            seen_seq: row.seen_seq,
        })
    }
}

/// The token's row, its user and the sync sequence, in one statement; its columns in the
/// order of [`PrincipalRow`] (the point read reads them by position).
fn principal_query(hash: &str) -> sea_orm::sea_query::SelectStatement {
    Query::select()
        .expr_as(Expr::col(("t", "id")), "token_id")
        .expr_as(Expr::col(("t", "device_id")), "device_id")
        .expr_as(Expr::col(("t", "expires_at")), "expires_at")
        .expr_as(Expr::col(("t", "revoked_at")), "revoked_at")
        .expr_as(Expr::col(("u", "id")), "user_id")
        .expr_as(Expr::col(("u", "username")), "username")
        .expr_as(Expr::col(("u", "role")), "role")
        .expr_as(Expr::col(("u", "team_id")), "team_id")
        .expr_as(Expr::col(("u", "wpg_authorised")), "wpg_authorised")
        .expr_as(Expr::col(("u", "active")), "active")
        .expr_as(
            Expr::cust("(SELECT last_seq FROM sync_space WHERE id = 1)"),
            "seen_seq",
        )
        .from_as("device_token", "t")
        .join_as(
            JoinType::InnerJoin,
            "app_user",
            "u",
            Expr::col(("u", "id")).equals(("t", "user_id")),
        )
        .and_where(Expr::col(("t", "token_hash")).eq(hash))
        .to_owned()
}

/// The lookup on this thread's SQLite connection (see `db::point`): [`principal_query`] as
/// SQLite SQL, built once, with the hash as its one parameter.
fn point_row(c: &rusqlite::Connection, hash: &str) -> rusqlite::Result<Option<PrincipalRow>> {
    use crate::db::point::{time, uuid};
    use rusqlite::OptionalExtension;
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let sql = SQL.get_or_init(|| {
        principal_query("")
            .build(sea_orm::sea_query::SqliteQueryBuilder)
            .0
    });
    let mut stmt = c.prepare_cached(sql)?;
    stmt.query_row([hash], |r| {
        Ok(PrincipalRow {
            token_id: uuid(r.get_ref(0)?)?,
            device_id: r.get(1)?,
            expires_at: time(r.get_ref(2)?)?,
            revoked_at: match r.get_ref(3)? {
                rusqlite::types::ValueRef::Null => None,
                v => Some(time(v)?),
            },
            user_id: uuid(r.get_ref(4)?)?,
            username: r.get(5)?,
            role: r.get(6)?,
            team_id: match r.get_ref(7)? {
                rusqlite::types::ValueRef::Null => None,
                v => Some(uuid(v)?),
            },
            wpg_authorised: r.get(8)?,
            active: r.get(9)?,
            seen_seq: r.get(10)?,
        })
    })
    .optional()
}

async fn sqlx_row(state: &AppState, hash: &str) -> Result<Option<PrincipalRow>, ApiError> {
    let stmt = principal_query(hash);
    Ok(state
        .db
        .read
        .query_one(&stmt)
        .await?
        .map(|r| PrincipalRow::from_query_result(&r, ""))
        .transpose()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(role: Role, team: Option<Uuid>, wpg: bool) -> Principal {
        Principal {
            user_id: Uuid::nil(),
            username: "x".into(),
            role,
            team_id: team,
            wpg_authorised: wpg,
            device_id: "d".into(),
            token_id: Uuid::nil(),
            seen_seq: 0,
        }
    }

    #[test]
    fn only_a_teamleider_reviews() {
        let t = Some(Uuid::new_v4());
        assert!(p(Role::Teamleider, t, true).may(Action::ReviewViolation));
        for r in [Role::Handhaver, Role::Jeugdboa, Role::Beheerder] {
            assert!(!p(r, t, true).may(Action::ReviewViolation), "{r:?}");
        }
    }

    #[test]
    fn wpg_needs_a_boa_or_the_flag() {
        assert!(p(Role::Handhaver, None, false).reads_wpg());
        assert!(p(Role::Jeugdboa, None, false).reads_wpg());
        assert!(!p(Role::Teamleider, None, false).reads_wpg());
        assert!(p(Role::Teamleider, None, true).reads_wpg());
        assert!(!p(Role::Beheerder, None, false).reads_wpg());
    }

    #[test]
    fn scope_follows_the_team() {
        let a = Uuid::new_v4();
        let b = Uuid::new_v4();
        assert!(p(Role::Handhaver, Some(a), false).sees_team(Some(a)));
        assert!(!p(Role::Handhaver, Some(a), false).sees_team(Some(b)));
        assert!(!p(Role::Handhaver, None, false).sees_team(Some(a)));
        assert!(p(Role::Beheerder, None, false).sees_team(Some(b)));
    }

    #[test]
    fn roles_round_trip() {
        for r in [
            Role::Handhaver,
            Role::Jeugdboa,
            Role::Teamleider,
            Role::Beheerder,
            Role::Fg,
        ] {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert_eq!(Role::parse("admin"), None);
    }
}
