//! HTTP routes of the accounts feature: login, logout, who am I, users and their devices.

use std::net::SocketAddr;

use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::entities::{app_user, device_token};
use super::{Action, Principal, Role, Scope, accounts, password};
use crate::app::AppState;
use crate::audit::{self, Actor, Entry};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiJson, ApiPath, ApiQuery};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(logout))
        .routes(routes!(me))
        .routes(routes!(list_users, create_user))
        .routes(routes!(list_devices))
        .routes(routes!(revoke_device))
        .routes(routes!(revoke_all))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
    /// A stable identifier of the phone or browser, chosen by the app (e.g. a UUID kept in
    /// secure storage). The token is bound to it and can be revoked per device.
    pub device_id: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LoginResponse {
    /// Opaque bearer token; send it as `Authorization: Bearer <token>`.
    pub token: String,
    /// Always `Bearer`.
    pub token_type: String,
    pub expires_at: DateTime<Utc>,
    pub user: UserView,
}

#[derive(Debug, Serialize, Deserialize, ToSchema, Clone)]
pub struct UserView {
    pub id: Uuid,
    pub username: String,
    pub display_name: String,
    pub role: Role,
    pub team_id: Option<Uuid>,
    /// May read Wpg data without being a BOA.
    pub wpg_authorised: bool,
    pub active: bool,
}

impl UserView {
    pub fn from_model(u: &app_user::Model) -> ApiResult<UserView> {
        Ok(UserView {
            id: u.id,
            username: u.username.clone(),
            display_name: u.display_name.clone(),
            role: Role::parse(&u.role)
                .ok_or_else(|| ApiError::internal(anyhow::anyhow!("unknown role {}", u.role)))?,
            team_id: u.team_id,
            wpg_authorised: u.wpg_authorised,
            active: u.active,
        })
    }
}

fn check_device_id(d: &str) -> ApiResult<()> {
    if d.trim().is_empty() || d.len() > 128 {
        return Err(ApiError::field("device_id", "1 to 128 characters"));
    }
    Ok(())
}

/// Log in on a device and get a bearer token bound to it.
#[utoipa::path(
    post, path = "/api/v1/auth/login", operation_id = "login", tag = "auth", security(()),
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in", body = LoginResponse),
        (status = 401, description = "Wrong username or password", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field is missing or invalid", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many attempts for this account or address", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    ApiJson(req): ApiJson<LoginRequest>,
) -> ApiResult<Json<LoginResponse>> {
    let (token, expires_at, user) = authenticate(
        &state,
        &req.username,
        req.password,
        &req.device_id,
        peer.ip(),
    )
    .await?;
    Ok(Json(LoginResponse {
        token,
        token_type: "Bearer".into(),
        expires_at,
        user: UserView::from_model(&user)?,
    }))
}

/// The one login path (the API and the team lead's web page): throttled per account and
/// address, failures audited, a device token issued on success.
pub async fn authenticate(
    state: &AppState,
    username: &str,
    password: String,
    device_id: &str,
    ip: std::net::IpAddr,
) -> ApiResult<(
    String,
    chrono::DateTime<Utc>,
    crate::auth::entities::app_user::Model,
)> {
    check_device_id(device_id)?;
    state.login_limiter.check(username, ip)?;
    let user = accounts::find_by_username(&state.db.read, username).await?;
    let ok = password::verify(password, user.as_ref().map(|u| u.password_hash.clone())).await;
    let user = match user {
        Some(u) if ok && u.active => u,
        other => {
            let actor = Actor {
                user_id: other.as_ref().map(|u| u.id),
                name: username.chars().take(64).collect(),
                device_id: Some(device_id.to_string()),
            };
            let mut entry = Entry::new("login_failed", "user", "-");
            entry.record_id = other.as_ref().map(|u| u.id.to_string());
            entry.detail = Some(serde_json::json!({ "address": ip.to_string() }));
            audit::record(&state.db.write, &actor, entry, Utc::now()).await?;
            return Err(ApiError::Unauthorized("wrong username or password".into()));
        }
    };
    let (token, expires_at) =
        accounts::issue_token(&state.db, &user, device_id.trim(), state.config.token_ttl()).await?;
    Ok((token, expires_at, user))
}

/// Log out: revoke the token of this device.
#[utoipa::path(
    post, path = "/api/v1/auth/logout", operation_id = "logout", tag = "auth",
    responses(
        (status = 204, description = "The token no longer works"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn logout(State(state): State<AppState>, p: Principal) -> ApiResult<StatusCode> {
    accounts::revoke(
        &state.db,
        &p.actor(),
        p.user_id,
        Some(&p.device_id),
        "logout",
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The account behind the token.
#[utoipa::path(
    get, path = "/api/v1/auth/me", operation_id = "getMe", tag = "auth",
    responses(
        (status = 200, description = "The logged-in user", body = UserView),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn me(State(state): State<AppState>, p: Principal) -> ApiResult<Json<UserView>> {
    let u = app_user::Entity::find_by_id(p.user_id)
        .one(&state.db.read)
        .await?
        .ok_or_else(|| ApiError::NotFound("user".into()))?;
    Ok(Json(UserView::from_model(&u)?))
}

/// Users visible to the caller: their own team, or everyone for the beheerder.
#[utoipa::path(
    get, path = "/api/v1/users", operation_id = "listUsers", tag = "auth",
    responses(
        (status = 200, description = "Users in scope", body = Vec<UserView>),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list_users(
    State(state): State<AppState>,
    p: Principal,
) -> ApiResult<Json<Vec<UserView>>> {
    let mut q = app_user::Entity::find().order_by_asc(app_user::Column::Username);
    match p.scope() {
        Scope::All => {}
        Scope::Team(t) => q = q.filter(app_user::Column::TeamId.eq(t)),
        Scope::Nothing => q = q.filter(app_user::Column::Id.eq(p.user_id)),
    }
    let users = q.all(&state.db.read).await?;
    users
        .iter()
        .map(UserView::from_model)
        .collect::<ApiResult<Vec<_>>>()
        .map(Json)
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateUserRequest {
    pub username: String,
    #[serde(default)]
    pub display_name: String,
    pub role: Role,
    /// Team name; created when new.
    pub team: Option<String>,
    #[serde(default)]
    pub wpg_authorised: bool,
    /// The BOA's number (aanstelling), printed on the documents of a case.
    #[serde(default)]
    pub boa_number: Option<String>,
    /// At least 12 characters.
    pub password: String,
}

/// Create an account (beheerder only).
#[utoipa::path(
    post, path = "/api/v1/users", operation_id = "createUser", tag = "auth",
    request_body = CreateUserRequest,
    responses(
        (status = 201, description = "Created", body = UserView),
        (status = 403, description = "Not a beheerder", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Username taken", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid field", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create_user(
    State(state): State<AppState>,
    p: Principal,
    ApiJson(req): ApiJson<CreateUserRequest>,
) -> ApiResult<(StatusCode, Json<UserView>)> {
    p.authorize(Action::ManageUsers)?;
    let user = accounts::create_user(
        &state.db,
        &p.actor(),
        accounts::NewUser {
            username: req.username,
            display_name: req.display_name,
            role: req.role,
            team: req.team,
            wpg_authorised: req.wpg_authorised,
            boa_number: req.boa_number,
            password: req.password,
            demo: false,
            team_policy: accounts::TeamPolicy::CreateWhenNew,
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(UserView::from_model(&user)?)))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceView {
    pub device_id: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub revoked_reason: Option<String>,
}

/// Load a user the caller may manage: themselves, a member of their team (teamleider), anyone
/// (beheerder).
async fn managed_user(
    state: &AppState,
    p: &Principal,
    user_id: Uuid,
) -> ApiResult<app_user::Model> {
    // A user of another team answers as an unknown one: an id never tells who exists elsewhere.
    let u = app_user::Entity::find_by_id(user_id)
        .one(&state.db.read)
        .await?
        .filter(|u| u.id == p.user_id || p.sees_team(u.team_id))
        .ok_or_else(|| ApiError::NotFound(format!("user {user_id}")))?;
    if u.id == p.user_id {
        return Ok(u);
    }
    p.authorize(Action::RevokeOthersDevices)?;
    Ok(u)
}

/// The device tokens of a user.
#[utoipa::path(
    get, path = "/api/v1/users/{user_id}/devices", operation_id = "listUserDevices", tag = "auth",
    params(("user_id" = Uuid, Path, description = "The user")),
    responses(
        (status = 200, description = "Tokens, newest first", body = Vec<DeviceView>),
        (status = 403, description = "Not yours to see", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list_devices(
    State(state): State<AppState>,
    p: Principal,
    ApiPath(user_id): ApiPath<Uuid>,
) -> ApiResult<Json<Vec<DeviceView>>> {
    let u = managed_user(&state, &p, user_id).await?;
    let rows = device_token::Entity::find()
        .filter(device_token::Column::UserId.eq(u.id))
        .order_by_desc(device_token::Column::CreatedAt)
        .all(&state.db.read)
        .await?;
    Ok(Json(
        rows.into_iter()
            .map(|t| DeviceView {
                device_id: t.device_id,
                created_at: t.created_at,
                expires_at: t.expires_at,
                revoked_at: t.revoked_at,
                revoked_reason: t.revoked_reason,
            })
            .collect(),
    ))
}

#[derive(Debug, Deserialize, ToSchema, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RevokeRequest {
    /// Why, for the audit log (e.g. "telefoon verloren").
    pub reason: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RevokeResponse {
    /// Live tokens that were revoked.
    pub revoked: u64,
}

/// Revoke the tokens of one device of a user (a lost phone).
#[utoipa::path(
    post, path = "/api/v1/users/{user_id}/devices/{device_id}/revoke", operation_id = "revokeDevice", tag = "auth",
    params(("user_id" = Uuid, Path, description = "The user"), ("device_id" = String, Path, description = "The device"), RevokeRequest),
    responses(
        (status = 200, description = "Revoked", body = RevokeResponse),
        (status = 403, description = "Not yours to revoke", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn revoke_device(
    State(state): State<AppState>,
    p: Principal,
    ApiPath((user_id, device_id)): ApiPath<(Uuid, String)>,
    ApiQuery(q): ApiQuery<RevokeRequest>,
) -> ApiResult<Json<RevokeResponse>> {
    let u = managed_user(&state, &p, user_id).await?;
    let reason = q.reason.unwrap_or_else(|| "device revoked".into());
    let n = accounts::revoke(&state.db, &p.actor(), u.id, Some(&device_id), &reason).await?;
    Ok(Json(RevokeResponse { revoked: n }))
}

/// Revoke every token of a user (all devices).
#[utoipa::path(
    post, path = "/api/v1/users/{user_id}/revoke", operation_id = "revokeUserDevices", tag = "auth",
    params(("user_id" = Uuid, Path, description = "The user"), RevokeRequest),
    responses(
        (status = 200, description = "Revoked", body = RevokeResponse),
        (status = 403, description = "Not yours to revoke", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn revoke_all(
    State(state): State<AppState>,
    p: Principal,
    ApiPath(user_id): ApiPath<Uuid>,
    ApiQuery(q): ApiQuery<RevokeRequest>,
) -> ApiResult<Json<RevokeResponse>> {
    let u = managed_user(&state, &p, user_id).await?;
    let reason = q.reason.unwrap_or_else(|| "all devices revoked".into());
    let n = accounts::revoke(&state.db, &p.actor(), u.id, None, &reason).await?;
    Ok(Json(RevokeResponse { revoked: n }))
}
