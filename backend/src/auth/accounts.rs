//! The one write path for teams, users and device tokens: the REST handlers, the CLI
//! (`thor user …`, `thor team …`) and the demo loader all come through here.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set,
    TransactionTrait,
};
use uuid::Uuid;

use super::Role;
use super::entities::{app_user, device_token, team};
use super::{password, token};
use crate::audit::{self, Actor, Entry};
use crate::db::Db;
use crate::error::{ApiError, FieldError};

#[derive(Debug, Clone)]
pub struct NewUser {
    pub username: String,
    pub display_name: String,
    pub role: Role,
    /// Team name; what an unknown one means is `team_policy`'s.
    pub team: Option<String>,
    pub wpg_authorised: bool,
    /// The BOA's number, for the documents of a case.
    pub boa_number: Option<String>,
    pub password: String,
    pub demo: bool,
    pub team_policy: TeamPolicy,
}

/// How [`create_user`] treats the team it is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TeamPolicy {
    /// A new name creates the team, and an account may have none (the API, the demo).
    CreateWhenNew,
    /// The team must exist, and every role but the beheerder needs one (`thor user add`: a
    /// typo must not make a team, nor leave an officer without a team who sees nothing).
    MustExist,
}

/// Usernames are lowercase ASCII, 3–64 characters of letters, digits, dot, dash, underscore.
pub fn normalise_username(raw: &str) -> Result<String, FieldError> {
    let u = raw.trim().to_lowercase();
    let ok = (3..=64).contains(&u.len())
        && u.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || ".-_".contains(c));
    if ok {
        Ok(u)
    } else {
        Err(FieldError::new(
            "username",
            "3 to 64 characters: letters, digits, '.', '-' or '_'",
        ))
    }
}

/// The account a typed username means: its normalised form ([`normalise_username`]: trimmed,
/// lower case), or, for a text that cannot be a username, the same trimmed lower-case text
/// (which then matches no account). The lookup ([`find_by_username`]) and the login throttle
/// (`ratelimit`) both key on this, so no spelling of a name (`" Name "`, `"NAME"`, a tab) reaches
/// an account without counting against that account's budget.
pub fn login_key(raw: &str) -> String {
    normalise_username(raw).unwrap_or_else(|_| raw.trim().to_lowercase())
}

pub fn check_password_strength(pw: &str, demo: bool) -> Result<(), FieldError> {
    if demo || pw.chars().count() >= 12 {
        Ok(())
    } else {
        Err(FieldError::new(
            "password",
            "at least 12 characters (a passphrase is easiest to remember)",
        ))
    }
}

/// The team of this name, created (and audit-logged) when new.
pub async fn ensure_team<C: ConnectionTrait>(
    conn: &C,
    actor: &Actor,
    name: &str,
    now: DateTime<Utc>,
) -> Result<Uuid, ApiError> {
    let name = team_name(name)?;
    if let Some(t) = find_team(conn, name).await? {
        return Ok(t.id);
    }
    Ok(insert_team(conn, actor, name, now).await?.id)
}

fn team_name(raw: &str) -> Result<&str, ApiError> {
    match raw.trim() {
        "" => Err(ApiError::field("team", "must not be empty")),
        name => Ok(name),
    }
}

async fn find_team<C: ConnectionTrait>(
    conn: &C,
    name: &str,
) -> Result<Option<team::Model>, ApiError> {
    Ok(team::Entity::find()
        .filter(team::Column::Name.eq(name))
        .one(conn)
        .await?)
}

/// The one insert of a team, with its audit line.
async fn insert_team<C: ConnectionTrait>(
    conn: &C,
    actor: &Actor,
    name: &str,
    now: DateTime<Utc>,
) -> Result<team::Model, ApiError> {
    let t = team::ActiveModel {
        id: Set(Uuid::now_v7()),
        name: Set(name.to_string()),
        created_at: Set(now),
    }
    .insert(conn)
    .await?;
    audit::record(
        conn,
        actor,
        Entry::new("create", "team", t.id).detail(serde_json::json!({ "name": t.name })),
        now,
    )
    .await?;
    Ok(t)
}

/// Creates a team; a name that exists is a 409.
pub async fn create_team(db: &Db, actor: &Actor, name: &str) -> Result<team::Model, ApiError> {
    let name = team_name(name)?;
    let txn = db.write.begin().await?;
    if find_team(&txn, name).await?.is_some() {
        return Err(ApiError::Conflict {
            detail: format!("the team {name:?} exists already"),
            existing: None,
        });
    }
    let t = insert_team(&txn, actor, name, Utc::now()).await?;
    txn.commit().await?;
    Ok(t)
}

/// Every team, by name.
pub async fn list_teams<C: ConnectionTrait>(conn: &C) -> Result<Vec<team::Model>, ApiError> {
    Ok(team::Entity::find()
        .order_by_asc(team::Column::Name)
        .all(conn)
        .await?)
}

/// The existing team of this name, or an error that names the teams there are.
async fn existing_team<C: ConnectionTrait>(conn: &C, name: &str) -> Result<Uuid, ApiError> {
    let name = team_name(name)?;
    if let Some(t) = find_team(conn, name).await? {
        return Ok(t.id);
    }
    let names: Vec<String> = list_teams(conn)
        .await?
        .into_iter()
        .map(|t| format!("{:?}", t.name))
        .collect();
    let known = if names.is_empty() {
        "there are no teams yet".to_string()
    } else {
        format!("the teams are {}", names.join(", "))
    };
    Err(ApiError::field(
        "team",
        format!("no team {name:?}: {known} (`thor team add NAME` creates one)"),
    ))
}

/// Creates an account. A taken username is a 409.
pub async fn create_user(
    db: &Db,
    actor: &Actor,
    new: NewUser,
) -> Result<app_user::Model, ApiError> {
    let username = normalise_username(&new.username).map_err(|f| ApiError::Validation(vec![f]))?;
    check_password_strength(&new.password, new.demo).map_err(|f| ApiError::Validation(vec![f]))?;
    let display_name = match new.display_name.trim() {
        "" => username.clone(),
        d => d.to_string(),
    };
    let hash = password::hash(new.password.clone()).await?;
    let now = Utc::now();
    let txn = db.write.begin().await?;
    if app_user::Entity::find()
        .filter(app_user::Column::Username.eq(&username))
        .one(&txn)
        .await?
        .is_some()
    {
        return Err(ApiError::Conflict {
            detail: format!("the username {username:?} is taken"),
            existing: None,
        });
    }
    let team_id = match (&new.team, new.team_policy) {
        (Some(name), TeamPolicy::CreateWhenNew) => Some(ensure_team(&txn, actor, name, now).await?),
        (Some(name), TeamPolicy::MustExist) => Some(existing_team(&txn, name).await?),
        (None, TeamPolicy::MustExist) if new.role.works_in_a_team() => {
            return Err(ApiError::field(
                "team",
                format!(
                    "a {} works in a team: name an existing one (`thor team list` shows them)",
                    new.role.as_str()
                ),
            ));
        }
        (None, _) => None,
    };
    let user = app_user::ActiveModel {
        id: Set(Uuid::now_v7()),
        username: Set(username),
        display_name: Set(display_name),
        password_hash: Set(hash),
        role: Set(new.role.as_str().to_string()),
        team_id: Set(team_id),
        wpg_authorised: Set(new.wpg_authorised),
        active: Set(true),
        demo: Set(new.demo),
        created_at: Set(now),
        updated_at: Set(now),
        boa_number: Set(new
            .boa_number
            .map(|n| n.trim().to_string())
            .filter(|n| !n.is_empty())),
    }
    .insert(&txn)
    .await?;
    audit::record(
        &txn,
        actor,
        Entry::new("create", "user", user.id).detail(serde_json::json!({
            "username": user.username, "role": user.role, "team_id": user.team_id,
            "wpg_authorised": user.wpg_authorised,
        })),
        now,
    )
    .await?;
    txn.commit().await?;
    Ok(user)
}

pub async fn find_by_username<C: ConnectionTrait>(
    conn: &C,
    username: &str,
) -> Result<Option<app_user::Model>, ApiError> {
    Ok(app_user::Entity::find()
        .filter(app_user::Column::Username.eq(login_key(username)))
        .one(conn)
        .await?)
}

/// Issues a token for a device, revoking the device's earlier tokens (one live token per
/// device), and logs the login.
pub async fn issue_token(
    db: &Db,
    user: &app_user::Model,
    device_id: &str,
    ttl: chrono::Duration,
) -> Result<(String, DateTime<Utc>), ApiError> {
    let now = Utc::now();
    let secret = token::generate();
    let expires_at = now + ttl;
    let txn = db.write.begin().await?;
    device_token::Entity::update_many()
        .col_expr(device_token::Column::RevokedAt, Expr::value(now))
        .col_expr(
            device_token::Column::RevokedReason,
            Expr::value("replaced by a new login on this device"),
        )
        .filter(device_token::Column::UserId.eq(user.id))
        .filter(device_token::Column::DeviceId.eq(device_id))
        .filter(device_token::Column::RevokedAt.is_null())
        .exec(&txn)
        .await?;
    device_token::ActiveModel {
        id: Set(Uuid::now_v7()),
        user_id: Set(user.id),
        device_id: Set(device_id.to_string()),
        token_hash: Set(token::hash(&secret)),
        created_at: Set(now),
        expires_at: Set(expires_at),
        revoked_at: Set(None),
        revoked_reason: Set(None),
    }
    .insert(&txn)
    .await?;
    let actor = Actor {
        user_id: Some(user.id),
        name: user.username.clone(),
        device_id: Some(device_id.to_string()),
    };
    audit::record(&txn, &actor, Entry::new("login", "user", user.id), now).await?;
    txn.commit().await?;
    Ok((secret, expires_at))
}

/// Revokes a user's tokens: those of one device (a lost phone) or all of them. Returns how many
/// live tokens were revoked.
pub async fn revoke(
    db: &Db,
    actor: &Actor,
    user_id: Uuid,
    device_id: Option<&str>,
    reason: &str,
) -> Result<u64, ApiError> {
    let now = Utc::now();
    let txn = db.write.begin().await?;
    let n = revoke_tokens(&txn, user_id, device_id, reason, now).await?;
    audit::record(
        &txn,
        actor,
        Entry::new("revoke", "user", user_id)
            .reason(Some(reason.to_string()))
            .detail(serde_json::json!({ "device_id": device_id, "tokens": n })),
        now,
    )
    .await?;
    txn.commit().await?;
    Ok(n)
}

/// The one update that revokes device tokens; the caller writes the audit line.
async fn revoke_tokens<C: ConnectionTrait>(
    conn: &C,
    user_id: Uuid,
    device_id: Option<&str>,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<u64, ApiError> {
    let mut q = device_token::Entity::update_many()
        .col_expr(device_token::Column::RevokedAt, Expr::value(now))
        .col_expr(device_token::Column::RevokedReason, Expr::value(reason))
        .filter(device_token::Column::UserId.eq(user_id))
        .filter(device_token::Column::RevokedAt.is_null());
    if let Some(d) = device_id {
        q = q.filter(device_token::Column::DeviceId.eq(d));
    }
    Ok(q.exec(conn).await?.rows_affected)
}

/// The active accounts of the principal's scope (its team; every team for a beheerder), by
/// username: the team's members as the phones and the lead page list them.
pub async fn members_in_scope<C: ConnectionTrait>(
    conn: &C,
    p: &crate::auth::Principal,
) -> Result<Vec<app_user::Model>, ApiError> {
    let active = app_user::Entity::find().filter(app_user::Column::Active.eq(true));
    Ok(match p.scoped(active, app_user::Column::TeamId) {
        Some(q) => q.order_by_asc(app_user::Column::Username).all(conn).await?,
        None => vec![],
    })
}

/// Every account with its team's name, by username.
pub async fn list_users<C: ConnectionTrait>(
    conn: &C,
) -> Result<Vec<(app_user::Model, Option<String>)>, ApiError> {
    let teams: std::collections::HashMap<Uuid, String> = list_teams(conn)
        .await?
        .into_iter()
        .map(|t| (t.id, t.name))
        .collect();
    Ok(app_user::Entity::find()
        .order_by_asc(app_user::Column::Username)
        .all(conn)
        .await?
        .into_iter()
        .map(|u| {
            let team = u.team_id.and_then(|t| teams.get(&t).cloned());
            (u, team)
        })
        .collect())
}

/// Sets a new password. The account's device tokens stay valid (revoke them to log its phones
/// out).
pub async fn set_password(
    db: &Db,
    actor: &Actor,
    user_id: Uuid,
    password: String,
) -> Result<(), ApiError> {
    check_password_strength(&password, false).map_err(|f| ApiError::Validation(vec![f]))?;
    let hash = password::hash(password).await?;
    let now = Utc::now();
    let txn = db.write.begin().await?;
    let n = app_user::Entity::update_many()
        .col_expr(app_user::Column::PasswordHash, Expr::value(hash))
        .col_expr(app_user::Column::UpdatedAt, Expr::value(now))
        .filter(app_user::Column::Id.eq(user_id))
        .exec(&txn)
        .await?
        .rows_affected;
    if n == 0 {
        return Err(ApiError::NotFound(format!("user {user_id}")));
    }
    audit::record(&txn, actor, Entry::new("password", "user", user_id), now).await?;
    txn.commit().await?;
    Ok(())
}

/// What [`deactivate`] did.
#[derive(Debug, Clone, Copy)]
pub struct Deactivated {
    /// The account was active before.
    pub was_active: bool,
    /// Live tokens revoked.
    pub tokens: u64,
}

/// Switches an account off: its login is refused and every token it holds is revoked, in one
/// transaction with its audit line. Its records stay.
pub async fn deactivate(
    db: &Db,
    actor: &Actor,
    user_id: Uuid,
    reason: &str,
) -> Result<Deactivated, ApiError> {
    let now = Utc::now();
    let txn = db.write.begin().await?;
    let user = app_user::Entity::find_by_id(user_id)
        .one(&txn)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("user {user_id}")))?;
    app_user::Entity::update_many()
        .col_expr(app_user::Column::Active, Expr::value(false))
        .col_expr(app_user::Column::UpdatedAt, Expr::value(now))
        .filter(app_user::Column::Id.eq(user_id))
        .exec(&txn)
        .await?;
    let tokens = revoke_tokens(&txn, user_id, None, reason, now).await?;
    audit::record(
        &txn,
        actor,
        Entry::new("disable", "user", user_id)
            .reason(Some(reason.to_string()))
            .detail(serde_json::json!({ "tokens": tokens, "was_active": user.active })),
        now,
    )
    .await?;
    txn.commit().await?;
    Ok(Deactivated {
        was_active: user.active,
        tokens,
    })
}

/// Demo accounts exist only while the server runs with `--demo`: on any other start they are
/// switched off and their tokens revoked, so a demo password never lingers into production.
pub async fn set_demo_accounts_active(db: &Db, active: bool) -> Result<u64, ApiError> {
    let now = Utc::now();
    let txn = db.write.begin().await?;
    let n = app_user::Entity::update_many()
        .col_expr(app_user::Column::Active, Expr::value(active))
        .col_expr(app_user::Column::UpdatedAt, Expr::value(now))
        .filter(app_user::Column::Demo.eq(true))
        .filter(app_user::Column::Active.eq(!active))
        .exec(&txn)
        .await?
        .rows_affected;
    if !active && n > 0 {
        let demo_ids: Vec<Uuid> = app_user::Entity::find()
            .filter(app_user::Column::Demo.eq(true))
            .all(&txn)
            .await?
            .into_iter()
            .map(|u| u.id)
            .collect();
        device_token::Entity::update_many()
            .col_expr(device_token::Column::RevokedAt, Expr::value(now))
            .col_expr(
                device_token::Column::RevokedReason,
                Expr::value("demo accounts switched off"),
            )
            .filter(device_token::Column::UserId.is_in(demo_ids))
            .filter(device_token::Column::RevokedAt.is_null())
            .exec(&txn)
            .await?;
    }
    if n > 0 {
        audit::record(
            &txn,
            &Actor::system("thor serve"),
            Entry {
                action: if active { "enable" } else { "disable" },
                record_type: "user",
                record_id: None,
                reason: Some("demo accounts follow --demo".into()),
                detail: Some(serde_json::json!({ "accounts": n })),
            },
            now,
        )
        .await?;
    }
    txn.commit().await?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_normalised_and_checked() {
        assert_eq!(normalise_username(" Handhaver ").unwrap(), "handhaver");
        assert_eq!(
            normalise_username("boa.de-vries_2").unwrap(),
            "boa.de-vries_2"
        );
        assert!(normalise_username("ab").is_err());
        assert!(normalise_username("with space").is_err());
        assert!(normalise_username("robert'); drop").is_err());
    }

    #[test]
    fn real_accounts_need_a_real_password() {
        assert!(check_password_strength("demo", false).is_err());
        assert!(check_password_strength("demo", true).is_ok());
        assert!(check_password_strength("correct horse battery", false).is_ok());
    }
}
