//! Duplicate candidates: two officers (or one, twice) reporting the same dumped mattress or the
//! same car. For a report, others of the same category within a radius (per category) and a
//! time window are offered to the reviewer; the reviewer marks a duplicate (both reports are
//! linked) or undoes it. The choice of candidates is pure and tested here.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use uuid::Uuid;

use super::Category;
use super::entity::violation;
use crate::audit::{self, Entry};
use crate::auth::{Action, Principal, Scope};
use crate::error::{ApiError, ApiResult};

/// How far apart two reports of a category may be and still be the same thing, in metres.
/// Parked cars stand close together, so parking uses a smaller radius.
pub fn radius_m(c: Category) -> f64 {
    match c {
        Category::Parkeren => 30.0,
        Category::Afval | Category::Honden | Category::Overig => 50.0,
    }
}

/// How far apart in time two reports may be and still be the same thing.
pub const WINDOW: Duration = Duration::hours(12);

/// A report as far as duplicate finding is concerned.
#[derive(Debug, Clone, Copy)]
pub struct Spot {
    pub id: Uuid,
    pub category: Category,
    pub observed_at: DateTime<Utc>,
    pub lat: f64,
    pub lon: f64,
}

/// A candidate with how far it lies from the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Candidate {
    pub id: Uuid,
    pub distance_m: f64,
    /// Minutes from the report to the candidate (negative: the candidate came first).
    pub minutes_apart: i64,
    /// Already marked as a duplicate of the report.
    pub marked: bool,
}

/// The candidates among `others` for `of`: same category, within the category's radius and
/// the time window, nearest first (pure).
pub fn candidates(of: &Spot, others: &[Spot]) -> Vec<Candidate> {
    let r = radius_m(of.category);
    let mut out: Vec<Candidate> = others
        .iter()
        .filter(|o| o.id != of.id && o.category == of.category)
        .filter(|o| (o.observed_at - of.observed_at).abs() <= WINDOW)
        .filter_map(|o| {
            let d = crate::geo::distance_m((of.lat, of.lon), (o.lat, o.lon));
            (d <= r).then(|| Candidate {
                id: o.id,
                distance_m: (d * 10.0).round() / 10.0,
                minutes_apart: (o.observed_at - of.observed_at).num_minutes(),
                marked: false,
            })
        })
        .collect();
    out.sort_by(|a, b| a.distance_m.total_cmp(&b.distance_m).then(a.id.cmp(&b.id)));
    out
}

fn spot(m: &violation::Model) -> Option<Spot> {
    Some(Spot {
        id: m.id,
        category: Category::parse(&m.category)?,
        observed_at: m.observed_at,
        lat: m.lat,
        lon: m.lon,
    })
}

/// The reports marked as duplicates of this one.
pub async fn marked<C: ConnectionTrait>(conn: &C, id: Uuid) -> ApiResult<Vec<Uuid>> {
    let q = Query::select()
        .column("duplicate_of")
        .from("violation_duplicate")
        .and_where(Expr::col("violation_id").eq(id))
        .to_owned();
    let rows = conn.query_all(&q).await?;
    Ok(rows
        .iter()
        .filter_map(|r| r.try_get::<Uuid>("", "duplicate_of").ok())
        .collect())
}

/// The candidates of a report in the principal's scope.
pub async fn find<C: ConnectionTrait>(
    conn: &C,
    p: &Principal,
    report: &violation::Model,
) -> ApiResult<Vec<Candidate>> {
    let Some(of) = spot(report) else {
        return Ok(vec![]);
    };
    // A box around the report first (the radius in degrees, generously), then exact distance.
    let dlat = radius_m(of.category) / 111_000.0 * 1.5;
    let dlon = dlat / of.lat.to_radians().cos().max(0.1);
    let mut q = violation::Entity::find()
        .filter(violation::Column::DeletedSeq.is_null())
        .filter(violation::Column::RetentionStage.eq(0))
        .filter(violation::Column::Category.eq(report.category.clone()))
        .filter(violation::Column::ObservedAt.gte(of.observed_at - WINDOW))
        .filter(violation::Column::ObservedAt.lte(of.observed_at + WINDOW))
        .filter(violation::Column::Lat.between(of.lat - dlat, of.lat + dlat))
        .filter(violation::Column::Lon.between(of.lon - dlon, of.lon + dlon));
    match p.scope() {
        Scope::All => {}
        Scope::Team(t) => q = q.filter(violation::Column::TeamId.eq(t)),
        Scope::Nothing => return Ok(vec![]),
    }
    let others: Vec<Spot> = q.all(conn).await?.iter().filter_map(spot).collect();
    let marked: HashMap<Uuid, ()> = marked(conn, report.id)
        .await?
        .into_iter()
        .map(|u| (u, ()))
        .collect();
    Ok(candidates(&of, &others)
        .into_iter()
        .map(|mut c| {
            c.marked = marked.contains_key(&c.id);
            c
        })
        .collect())
}

/// Marks `other` as a duplicate of `id` (and so `id` of `other`), or undoes it. The team lead
/// decides; both reports must be visible, of the same category.
pub async fn set(
    txn: &DatabaseTransaction,
    p: &Principal,
    id: Uuid,
    other: Uuid,
    on: bool,
    now: DateTime<Utc>,
) -> ApiResult<()> {
    p.authorize(Action::ReviewViolation)?;
    if id == other {
        return Err(ApiError::field("of", "a report is not its own duplicate"));
    }
    let both = violation::Entity::find()
        .filter(violation::Column::Id.is_in([id, other]))
        .all(txn)
        .await?;
    let seen: Vec<&violation::Model> = both
        .iter()
        .filter(|m| crate::violations::store::in_use(p, m))
        .collect();
    if !seen.iter().any(|m| m.id == id) {
        return Err(ApiError::NotFound(format!("violation {id}")));
    }
    let Some(o) = seen.iter().find(|m| m.id == other) else {
        return Err(ApiError::field("of", "no such report in your scope"));
    };
    if seen.iter().any(|m| m.category != o.category) {
        return Err(ApiError::field("of", "a report of another category"));
    }
    for (a, b) in [(id, other), (other, id)] {
        let del = Query::delete()
            .from_table("violation_duplicate")
            .and_where(Expr::col("violation_id").eq(a))
            .and_where(Expr::col("duplicate_of").eq(b))
            .to_owned();
        txn.execute(&del).await?;
        if on {
            let ins = Query::insert()
                .into_table("violation_duplicate")
                .columns(["violation_id", "duplicate_of", "marked_by", "marked_at"])
                .values_panic([a.into(), b.into(), p.user_id.into(), now.into()])
                .to_owned();
            txn.execute(&ins).await?;
        }
    }
    audit::record(
        txn,
        &p.actor(),
        Entry::new(
            if on {
                "mark_duplicate"
            } else {
                "unmark_duplicate"
            },
            super::store::TABLE,
            id,
        )
        .detail(json!({ "other": other })),
        now,
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(id: u128, category: Category, minutes: i64, north_m: f64, east_m: f64) -> Spot {
        let base = DateTime::from_timestamp(1_795_000_000, 0).unwrap();
        Spot {
            id: Uuid::from_u128(id),
            category,
            observed_at: base + Duration::minutes(minutes),
            lat: 52.46 + north_m / 111_195.0,
            lon: 4.62 + east_m / (111_195.0 * 52.46f64.to_radians().cos()),
        }
    }

    #[test]
    fn same_category_near_in_place_and_time_nearest_first() {
        let of = at(1, Category::Afval, 0, 0.0, 0.0);
        let others = [
            at(2, Category::Afval, 60, 30.0, 0.0),       // yes
            at(3, Category::Afval, 0, 80.0, 0.0),        // too far
            at(4, Category::Parkeren, 0, 10.0, 0.0),     // other category
            at(5, Category::Afval, -13 * 60, 20.0, 0.0), // too long ago
            at(6, Category::Afval, -11 * 60, 0.0, 45.0), // yes
            at(1, Category::Afval, 0, 0.0, 0.0),         // itself
        ];
        let ids: Vec<u128> = candidates(&of, &others)
            .iter()
            .map(|c| c.id.as_u128())
            .collect();
        assert_eq!(ids, vec![2, 6]);
        let c = &candidates(&of, &others)[1];
        assert_eq!(c.minutes_apart, -660);
        assert!((c.distance_m - 45.0).abs() < 0.5);
    }

    #[test]
    fn parked_cars_need_to_be_closer() {
        let of = at(1, Category::Parkeren, 0, 0.0, 0.0);
        let others = [
            at(2, Category::Parkeren, 5, 25.0, 0.0),
            at(3, Category::Parkeren, 5, 40.0, 0.0),
        ];
        let ids: Vec<u128> = candidates(&of, &others)
            .iter()
            .map(|c| c.id.as_u128())
            .collect();
        assert_eq!(ids, vec![2]);
    }
}
