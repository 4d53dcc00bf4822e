//! The one write path for teams, users and device tokens: the REST handlers, the CLI
//! (`thor user add`) and the demo loader all come through here.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set, TransactionTrait,
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
    /// Team name; created if it does not exist yet.
    pub team: Option<String>,
    pub wpg_authorised: bool,
    pub password: String,
    pub demo: bool,
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

pub async fn ensure_team<C: ConnectionTrait>(
    conn: &C,
    name: &str,
    now: DateTime<Utc>,
) -> Result<Uuid, ApiError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(ApiError::field("team", "must not be empty"));
    }
    if let Some(t) = team::Entity::find()
        .filter(team::Column::Name.eq(name))
        .one(conn)
        .await?
    {
        return Ok(t.id);
    }
    let id = Uuid::now_v7();
    team::ActiveModel {
        id: Set(id),
        name: Set(name.to_string()),
        created_at: Set(now),
    }
    .insert(conn)
    .await?;
    Ok(id)
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
    let team_id = match &new.team {
        Some(name) => Some(ensure_team(&txn, name, now).await?),
        None => None,
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
    let mut q = device_token::Entity::update_many()
        .col_expr(device_token::Column::RevokedAt, Expr::value(now))
        .col_expr(device_token::Column::RevokedReason, Expr::value(reason))
        .filter(device_token::Column::UserId.eq(user_id))
        .filter(device_token::Column::RevokedAt.is_null());
    if let Some(d) = device_id {
        q = q.filter(device_token::Column::DeviceId.eq(d));
    }
    let n = q.exec(&txn).await?.rows_affected;
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
