//! Every field-record kind in the sync engine, through one `SyncTable`.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sea_orm::DatabaseTransaction;
use sea_orm::sea_query::{Cond, Expr, ExprTrait, Order};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::RecordKind;
use super::store::{self, Row};
use crate::auth::{Principal, Scope};
use crate::error::{ApiError, ApiResult};
use crate::sync::table::{
    Column, Creation, Current, PullSlice, Pulled, PulledRow, PushCtx, SyncTable,
};

pub struct KindTable(pub &'static dyn RecordKind);

fn parse_id(kind: &dyn RecordKind, id: &str) -> ApiResult<Uuid> {
    crate::sync::engine::canonical_id(id).ok_or_else(|| {
        ApiError::field(
            "id",
            format!("a {} id is a lowercase hyphenated UUID", kind.wire_name()),
        )
    })
}

fn current(r: &Row) -> Current {
    Current {
        raw: store::canonical_row(r),
        server_rev: r.server_rev,
        field_revs: r.field_revs.clone(),
        deleted: r.deleted_seq.is_some(),
        team_id: r.team_id,
        creation: creation(r),
    }
}

fn creation(r: &Row) -> Creation {
    Creation {
        seq: r.created_seq,
        device: r.created_device.clone(),
        user: Some(r.created_by),
    }
}

#[async_trait]
impl SyncTable for KindTable {
    fn name(&self) -> &'static str {
        self.0.wire_name()
    }

    fn columns(&self) -> &'static [Column] {
        self.0.columns()
    }

    fn hidden_columns(
        &self,
        p: &Principal,
        _row: Option<&Map<String, Value>>,
    ) -> &'static [&'static str] {
        self.0.hidden_columns(p)
    }

    async fn load_many(
        &self,
        txn: &DatabaseTransaction,
        p: &Principal,
        ids: &[String],
    ) -> ApiResult<HashMap<String, Current>> {
        let uuids: Vec<Uuid> = ids.iter().filter_map(|i| i.parse().ok()).collect();
        let rows = store::load_many(txn, self.0, &uuids, true).await?;
        Ok(rows
            .iter()
            .filter(|r| store::visible(self.0, p, r))
            .map(|r| (r.id.to_string(), current(r)))
            .collect())
    }

    async fn create(
        &self,
        txn: &DatabaseTransaction,
        ctx: &PushCtx<'_>,
        id: &str,
        raw: &Map<String, Value>,
    ) -> ApiResult<()> {
        let id = parse_id(self.0, id)?;
        store::create_in(txn, self.0, ctx.principal, id, raw, ctx.now)
            .await
            .map(|_| ())
    }

    async fn update(
        &self,
        txn: &DatabaseTransaction,
        ctx: &PushCtx<'_>,
        id: &str,
        changes: &Map<String, Value>,
    ) -> ApiResult<()> {
        let id = parse_id(self.0, id)?;
        store::update_in(txn, self.0, ctx.principal, id, changes, ctx.now)
            .await
            .map(|_| ())
    }

    async fn touch(&self, txn: &DatabaseTransaction, ctx: &PushCtx<'_>, id: &str) -> ApiResult<()> {
        store::touch_in(txn, self.0, ctx.principal, parse_id(self.0, id)?, ctx.now).await
    }

    async fn delete(
        &self,
        txn: &DatabaseTransaction,
        ctx: &PushCtx<'_>,
        id: &str,
    ) -> ApiResult<bool> {
        let Ok(id) = id.parse::<Uuid>() else {
            return Ok(false);
        };
        store::delete_in(txn, self.0, ctx.principal, id, ctx.now).await
    }

    async fn pull(
        &self,
        txn: &DatabaseTransaction,
        p: &Principal,
        s: &PullSlice,
    ) -> ApiResult<Vec<PulledRow>> {
        if !self.0.may_read(p) {
            return Ok(vec![]);
        }
        let mut q = sea_orm::sea_query::Query::select();
        q.columns(store::COLS.iter().copied())
            .from(self.0.db_table())
            .and_where(Expr::col("server_rev").gt(s.after))
            .and_where(Expr::col("server_rev").lte(s.upto));
        if s.live_only {
            q.and_where(Expr::col("deleted_seq").is_null())
                .and_where(Expr::col("occurred_at").gte(s.window_start));
        } else {
            q.cond_where(
                Cond::any()
                    .add(Expr::col("deleted_seq").is_not_null())
                    .add(Expr::col("occurred_at").gte(s.window_start)),
            );
        }
        match p.scope() {
            Scope::All => {}
            Scope::Team(t) => {
                q.and_where(Expr::col("team_id").eq(t));
            }
            Scope::Nothing => return Ok(vec![]),
        }
        q.order_by("server_rev", Order::Asc).limit(s.limit);
        let rows = store::query(txn, &q).await?;
        Ok(rows
            .iter()
            .map(|r| PulledRow {
                seq: r.server_rev,
                id: r.id.to_string(),
                creation: creation(r),
                row: if r.deleted_seq.is_some() {
                    Pulled::Deleted
                } else {
                    Pulled::Canonical(store::canonical_row(r))
                },
                wpg: crate::access::released(p, self.0.access(), &r.facts())
                    .filter(|_| r.deleted_seq.is_none()),
            })
            .collect())
    }

    async fn window_exits(
        &self,
        txn: &DatabaseTransaction,
        p: &Principal,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> ApiResult<Vec<String>> {
        if !self.0.may_read(p) {
            return Ok(vec![]);
        }
        let rows = store::list(txn, self.0, p, Some(from), Some(to), None, 100_000).await?;
        Ok(rows.into_iter().map(|r| r.id.to_string()).collect())
    }
}
