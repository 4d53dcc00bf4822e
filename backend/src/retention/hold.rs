//! Legal holds: evidence under objection, appeal or in a criminal case is not destroyed.
//!
//! A teamleider (own team) or the beheerder places a hold on a record with a reason and lifts it
//! with one; both are audit-logged. While a hold is open the retention run leaves the record at
//! its stage: it neither moves on nor is destroyed.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Order, Query};
use sea_orm::{ConnectionTrait, QueryResult};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::access::Stage;
use crate::audit::{self, Entry};
use crate::auth::{Action, Principal};
use crate::db::Db;
use crate::error::{ApiError, ApiResult};

/// A hold as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HoldView {
    pub id: Uuid,
    /// The record's collection: `violations`, `incidents`, `youth_persons` ….
    pub record_type: String,
    pub record_id: Uuid,
    pub team_id: Option<Uuid>,
    pub reason: String,
    pub placed_by: String,
    pub placed_at: DateTime<Utc>,
    pub lifted_by: Option<String>,
    pub lifted_at: Option<DateTime<Utc>>,
    pub lift_reason: Option<String>,
}

/// A request to place a hold.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaceHold {
    /// The record's collection, e.g. `violations`.
    pub record_type: String,
    pub record_id: Uuid,
    /// Why: the objection, appeal or case (at least 5 characters).
    pub reason: String,
}

/// A request to lift a hold.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LiftHold {
    /// Why the hold ends (at least 5 characters).
    pub reason: String,
}

const COLS: [&str; 11] = [
    "id",
    "table_name",
    "record_id",
    "team_id",
    "reason",
    "placed_by_name",
    "placed_at",
    "lifted_by_name",
    "lifted_at",
    "lift_reason",
    "placed_by",
];

fn view(r: &QueryResult) -> Result<HoldView, sea_orm::DbErr> {
    Ok(HoldView {
        id: r.try_get("", "id")?,
        record_type: r.try_get("", "table_name")?,
        record_id: r.try_get("", "record_id")?,
        team_id: r.try_get("", "team_id")?,
        reason: r.try_get("", "reason")?,
        placed_by: r.try_get("", "placed_by_name")?,
        placed_at: r.try_get("", "placed_at")?,
        lifted_by: r.try_get("", "lifted_by_name")?,
        lifted_at: r.try_get("", "lifted_at")?,
        lift_reason: r.try_get("", "lift_reason")?,
    })
}

fn reason(field: &str, r: &str) -> ApiResult<String> {
    let r = r.trim();
    if r.chars().count() < 5 || r.chars().count() > 500 {
        return Err(ApiError::field(field, "a reason of 5 to 500 characters"));
    }
    Ok(r.to_string())
}

/// A record's team and stage, whatever its stage (`None`: no such record).
pub async fn locate<C: ConnectionTrait>(
    conn: &C,
    table: &str,
    id: Uuid,
) -> ApiResult<Option<(Option<Uuid>, Stage)>> {
    let mut q = Query::select();
    q.columns(["team_id", "retention_stage"])
        .from(Alias::new(table))
        .and_where(Expr::col("id").eq(id));
    Ok(match conn.query_one(&q).await? {
        Some(r) => Some((
            r.try_get("", "team_id")?,
            Stage::from_db(r.try_get("", "retention_stage")?),
        )),
        None => None,
    })
}

/// Places a hold on a record of the principal's team (any team for the beheerder).
pub async fn place(db: &Db, p: &Principal, req: &PlaceHold) -> ApiResult<HoldView> {
    p.authorize(Action::PlaceHold)?;
    let why = reason("reason", &req.reason)?;
    let (_, table) = super::collection(&req.record_type).ok_or_else(|| {
        ApiError::field(
            "record_type",
            format!(
                "a collection whose records are kept by retention: {}",
                super::collections().join(", ")
            ),
        )
    })?;
    // A sync write transaction: the sequence moves on with the hold (below).
    let txn = crate::sync::begin_write(db).await?;
    let team = match locate(&txn, table, req.record_id).await? {
        Some((team, _)) if p.sees_team(team) => team,
        _ => return Err(ApiError::field("record_id", "no such record in your team")),
    };
    let id = Uuid::new_v4();
    let now = Utc::now();
    let mut ins = Query::insert();
    ins.into_table("legal_hold")
        .columns([
            "id",
            "table_name",
            "record_id",
            "team_id",
            "reason",
            "placed_by",
            "placed_by_name",
            "placed_at",
        ])
        .values([
            id.into(),
            req.record_type.clone().into(),
            req.record_id.into(),
            team.into(),
            why.clone().into(),
            Some(p.user_id).into(),
            p.username.clone().into(),
            now.into(),
        ])
        .map_err(|e| ApiError::internal(anyhow::anyhow!("building the hold: {e}")))?;
    txn.execute(&ins).await?;
    audit::record(
        &txn,
        &p.actor(),
        Entry::new("place_hold", "legal_hold", id)
            .reason(Some(why))
            .detail(
                serde_json::json!({ "record_type": req.record_type, "record_id": req.record_id }),
            ),
        now,
    )
    .await?;
    let hold = get(&txn, id).await?;
    // The briefing lists open holds: answers cached by sequence are made anew.
    crate::sync::bump(&txn).await?;
    txn.commit().await?;
    Ok(hold)
}

async fn get<C: ConnectionTrait>(conn: &C, id: Uuid) -> ApiResult<HoldView> {
    let mut q = Query::select();
    q.columns(COLS)
        .from("legal_hold")
        .and_where(Expr::col("id").eq(id));
    let row = conn
        .query_one(&q)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("hold {id}")))?;
    Ok(view(&row)?)
}

/// Lifts an open hold of the principal's team.
pub async fn lift(db: &Db, p: &Principal, id: Uuid, req: &LiftHold) -> ApiResult<HoldView> {
    p.authorize(Action::PlaceHold)?;
    let why = reason("reason", &req.reason)?;
    // A sync write transaction: the sequence moves on with the hold (below).
    let txn = crate::sync::begin_write(db).await?;
    let hold = get(&txn, id).await?;
    if !p.sees_team(hold.team_id) {
        return Err(ApiError::NotFound(format!("hold {id}")));
    }
    if hold.lifted_at.is_some() {
        return Err(ApiError::Conflict {
            detail: format!("hold {id} was lifted already"),
            existing: None,
        });
    }
    let now = Utc::now();
    txn.execute(
        Query::update()
            .table("legal_hold")
            .value(Alias::new("lifted_by"), Some(p.user_id))
            .value(Alias::new("lifted_by_name"), p.username.clone())
            .value(Alias::new("lifted_at"), now)
            .value(Alias::new("lift_reason"), why.clone())
            .and_where(Expr::col("id").eq(id))
            .and_where(Expr::col("lifted_at").is_null()),
    )
    .await?;
    audit::record(
        &txn,
        &p.actor(),
        Entry::new("lift_hold", "legal_hold", id).reason(Some(why)),
        now,
    )
    .await?;
    let hold = get(&txn, id).await?;
    // The briefing lists open holds: answers cached by sequence are made anew.
    crate::sync::bump(&txn).await?;
    txn.commit().await?;
    Ok(hold)
}

/// The holds in the principal's scope (open ones only unless `all`), newest first.
pub async fn list<C: ConnectionTrait>(
    conn: &C,
    p: &Principal,
    all: bool,
) -> ApiResult<Vec<HoldView>> {
    let mut q = Query::select();
    q.columns(COLS)
        .from("legal_hold")
        .order_by("placed_at", Order::Desc)
        .limit(1000);
    if !all {
        q.and_where(Expr::col("lifted_at").is_null());
    }
    match p.scope() {
        crate::auth::Scope::All => {}
        crate::auth::Scope::Team(t) => {
            q.and_where(Expr::col("team_id").eq(t));
        }
        crate::auth::Scope::Nothing => return Ok(vec![]),
    }
    let rows = conn.query_all(&q).await?;
    Ok(rows.iter().map(view).collect::<Result<_, _>>()?)
}

/// Whether a record has an open hold.
pub async fn is_held<C: ConnectionTrait>(conn: &C, record_type: &str, id: Uuid) -> ApiResult<bool> {
    let mut q = Query::select();
    q.column("id")
        .from("legal_hold")
        .and_where(Expr::col("table_name").eq(record_type))
        .and_where(Expr::col("record_id").eq(id))
        .and_where(Expr::col("lifted_at").is_null());
    Ok(conn.query_one(&q).await?.is_some())
}
