//! The pull side of sync: a device's scope after its cursor, read in one snapshot per page,
//! paged with continuation tokens, or streamed whole for WatermelonDB's turbo login.
//!
//! A page token is separate from the device's cursor: it carries the snapshot's upper bound
//! (`upto`, the cursor the device gets when the last page is read), the position reached and
//! the cursor the device held when the pull began. The checks of a pull's start (cursor older
//! than the purge, `migration`, the time window) apply to its first page only, so a paged pull
//! always ends, whatever is in the query.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use chrono::{DateTime, Duration, Utc};
use sea_orm::{
    AccessMode, ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, IsolationLevel,
    PaginatorTrait, QueryFilter, Set, TransactionTrait,
};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::engine::{tables, to_raw, upsert_device, wire_form};
use super::entities::{sync_conflict, sync_device};
use super::table::{Creation, PullSlice, Pulled, PulledRow, SyncTable};
use crate::access::Disclosure;
use crate::audit::AuditLog;
use crate::auth::{Principal, Role};
use crate::db::Db;
use crate::error::{ApiError, ApiResult};
use crate::reference::Reference;

/// WatermelonDB's change set of one table as a pull sends it: rows already in wire form.
#[derive(Debug, Default, Clone, Serialize, Deserialize, ToSchema)]
pub struct PulledChanges {
    /// Records this device has never had (created after its cursor by another device; on a
    /// first pull, everything).
    #[schema(value_type = Vec<Object>)]
    pub created: Vec<Box<RawValue>>,
    /// Records the device may already have.
    #[schema(value_type = Vec<Object>)]
    pub updated: Vec<Box<RawValue>>,
    pub deleted: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PullResponse {
    /// `{table: {created: [rows], updated: [rows], deleted: [ids]}}`. Reference tables come with
    /// a full pull.
    #[schema(value_type = Object)]
    pub changes: BTreeMap<String, PulledChanges>,
    /// On the last page (`has_more: false`): the cursor to send as `last_pulled_at` next time
    /// (WatermelonDB's `lastPulledAt`). On earlier pages: the position reached.
    pub timestamp: i64,
    /// More changes wait: pull again with `next_page` before pushing.
    pub has_more: bool,
    /// Continues this pull (set when `has_more`): send it as `page_token`.
    pub next_page: Option<String>,
    /// Open sync conflicts for this user (a team lead: for the team).
    pub conflicts_open: u64,
}

/// Options of a pull.
#[derive(Debug, Clone, Default)]
pub struct PullRequest {
    /// The device's cursor (`last_pulled_at`), 0 for a first pull.
    pub cursor: i64,
    /// `next_page` of the previous page of this pull.
    pub page: Option<String>,
    pub limit: u64,
    pub window_days: i64,
    pub schema_version: Option<i32>,
    /// A WatermelonDB migration sync: send everything (all our tables exist since version 1).
    pub migration: bool,
    /// Only these tables (`limit` then counts their rows alone); `None`: every table.
    pub tables: Option<Vec<String>>,
    /// Every live row in `updated` (WatermelonDB's `sendCreatedAsUpdated: true`).
    pub created_as_updated: bool,
}

/// Where a paged pull continues, and what it reads: a token alone continues the same pull.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct PageToken {
    /// The cursor the device held when the pull began (0: it has nothing).
    since: i64,
    /// Rows after this sequence number are still to be sent.
    after: i64,
    /// The snapshot's upper bound.
    upto: i64,
    /// The start of the time window, ms since 1970, the same for every page.
    window: i64,
    /// Deletions are left out (a first pull).
    live_only: bool,
    /// Reference tables and window exits follow the rules of a migration sync.
    migration: bool,
    /// The tables of the pull (`None`: all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tables: Option<Vec<String>>,
    /// Every live row in `updated`.
    #[serde(default)]
    created_as_updated: bool,
}

impl PageToken {
    fn encode(&self) -> String {
        // Serialising plain numbers and booleans cannot fail.
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).unwrap_or_default())
    }

    fn decode(s: &str) -> ApiResult<PageToken> {
        let bytes = URL_SAFE_NO_PAD.decode(s).map_err(|_| bad_token())?;
        let t: PageToken = serde_json::from_slice(&bytes).map_err(|_| bad_token())?;
        if t.after < 0 || t.since < 0 || t.after > t.upto || t.since > t.upto {
            return Err(bad_token());
        }
        Ok(t)
    }
}

fn bad_token() -> ApiError {
    ApiError::field(
        "page_token",
        "not a page of a pull of this server; start the pull again without page_token",
    )
}

/// What the pages of one pull read, decided on its first page.
#[derive(Debug, Clone)]
struct Plan {
    token: PageToken,
    first_page: bool,
}

impl Plan {
    fn window_start(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(self.token.window).unwrap_or_default()
    }
}

fn gone(cursor: i64) -> ApiError {
    ApiError::Gone(format!(
        "the cursor {cursor} is older than the tombstone horizon or unknown to this server; \
         pull again with last_pulled_at=0 and replace the local data (WatermelonDB's replacement strategy)"
    ))
}

/// Decides the plan of a pull (first page) or checks it (later pages), against the snapshot.
fn plan(req: &PullRequest, now: DateTime<Utc>, last_seq: i64, purged_seq: i64) -> ApiResult<Plan> {
    if let Some(page) = &req.page {
        let token = PageToken::decode(page)?;
        if token.upto > last_seq {
            return Err(bad_token());
        }
        // Tombstones this pull still has to send were purged while it paged.
        if !token.live_only && purged_seq > token.after.max(token.since) {
            return Err(gone(token.since));
        }
        return Ok(Plan {
            token,
            first_page: false,
        });
    }
    let cursor = req.cursor;
    if cursor < 0 || (cursor > 0 && (cursor < purged_seq || cursor > last_seq)) {
        return Err(gone(cursor));
    }
    let window = (now - Duration::days(req.window_days)).timestamp_millis();
    Ok(Plan {
        token: PageToken {
            since: cursor,
            after: if req.migration { 0 } else { cursor },
            upto: last_seq,
            window,
            live_only: cursor == 0,
            migration: req.migration,
            tables: req.tables.clone(),
            created_as_updated: req.created_as_updated,
        },
        first_page: true,
    })
}

/// The tables a pull reads.
fn chosen(names: &Option<Vec<String>>) -> ApiResult<Vec<Box<dyn SyncTable>>> {
    let all = tables();
    let Some(names) = names else {
        return Ok(all);
    };
    for n in names {
        if !all.iter().any(|t| t.name() == n) && !REFERENCE_TABLES.contains(&n.as_str()) {
            return Err(ApiError::field(
                "tables",
                format!("unknown table {:?}", n.chars().take(64).collect::<String>()),
            ));
        }
    }
    Ok(all
        .into_iter()
        .filter(|t| names.iter().any(|n| n == t.name()))
        .collect())
}

async fn snapshot(db: &Db) -> ApiResult<DatabaseTransaction> {
    // One snapshot for the page: REPEATABLE READ on PostgreSQL; a SQLite read transaction sees
    // one WAL snapshot from its first read on.
    Ok(if db.backend() == sea_orm::DbBackend::Postgres {
        db.read
            .begin_with_config(
                Some(IsolationLevel::RepeatableRead),
                Some(AccessMode::ReadOnly),
            )
            .await?
    } else {
        db.read.begin().await?
    })
}

/// Reads one page of the changes in a device's scope after its cursor, in one snapshot. The
/// reads of Wpg records are in the audit log before the page is returned.
pub async fn pull(
    db: &Db,
    reference: &Reference,
    audit: &AuditLog,
    p: &Principal,
    req: PullRequest,
) -> ApiResult<PullResponse> {
    let now = Utc::now();
    let txn = snapshot(db).await?;
    let (last_seq, purged_seq) = space(&txn).await?;
    let plan = plan(&req, now, last_seq, purged_seq)?;
    let t = plan.token.clone();
    let tables = chosen(&t.tables)?;
    let slice = PullSlice {
        window_start: plan.window_start(),
        after: t.after,
        upto: t.upto,
        limit: req.limit + 1,
        live_only: t.live_only,
    };
    let mut all = Vec::new();
    for table in &tables {
        for row in table.pull(&txn, p, &slice).await? {
            all.push((table.as_ref(), row));
        }
    }
    all.sort_by_key(|(_, r)| r.seq);
    let has_more = all.len() as u64 > req.limit;
    all.truncate(req.limit as usize);
    let position = match all.last() {
        Some((_, r)) if has_more => r.seq,
        _ => t.upto,
    };

    let mut changes: BTreeMap<String, PulledChanges> = BTreeMap::new();
    for table in &tables {
        changes.insert(table.name().to_string(), PulledChanges::default());
    }
    let mut read = Disclosure::new(p, audit);
    for (table, row) in all {
        let entry = changes.entry(table.name().to_string()).or_default();
        place(
            entry,
            table,
            p,
            t.since,
            t.created_as_updated,
            row,
            &mut read,
        )?;
    }
    let device = sync_device::Entity::find_by_id((p.user_id, p.device_id.clone()))
        .one(&txn)
        .await?;
    let whole = t.tables.is_none();
    if !has_more
        && whole
        && t.since > 0
        && let Some(prev) = device.as_ref().and_then(|d| d.window_start)
        && prev < plan.window_start()
    {
        for table in &tables {
            let exits = table
                .window_exits(&txn, p, prev, plan.window_start())
                .await?;
            let entry = changes.entry(table.name().to_string()).or_default();
            entry.deleted.extend(exits);
        }
    }
    if plan.first_page && (t.since == 0 || t.migration) {
        let placement = if t.since == 0 && !t.created_as_updated {
            Placement::Created
        } else {
            Placement::Updated
        };
        for (name, rows) in reference_tables(reference, &txn, p).await? {
            if t.tables
                .as_ref()
                .is_none_or(|n| n.iter().any(|n| n == name))
            {
                changes.insert(name.to_string(), placement.changes(rows));
            }
        }
    }
    let conflicts_open = open_conflicts(&txn, p).await?;
    txn.commit().await?;
    read.log("sync_pull", Default::default()).await?;
    if !has_more && whole {
        upsert_device(&db.write, p, |d| {
            d.last_pull_at = Set(Some(now));
            d.last_pulled_seq = Set(Some(t.upto));
            d.window_start = Set(Some(plan.window_start()));
            if req.schema_version.is_some() {
                d.schema_version = Set(req.schema_version);
            }
        })
        .await?;
    }
    let next_page = has_more.then(|| {
        PageToken {
            after: position,
            ..t.clone()
        }
        .encode()
    });
    Ok(PullResponse {
        changes,
        timestamp: position,
        has_more,
        next_page,
        conflicts_open,
    })
}

/// Puts a pulled row where WatermelonDB expects it and notes the read of a live row.
fn place(
    entry: &mut PulledChanges,
    table: &dyn SyncTable,
    p: &Principal,
    since: i64,
    created_as_updated: bool,
    row: PulledRow,
    read: &mut Disclosure,
) -> ApiResult<()> {
    let PulledRow {
        seq,
        id,
        row,
        creation,
        wpg,
    } = row;
    let wire = match row {
        Pulled::Deleted => {
            entry.deleted.push(id);
            return Ok(());
        }
        Pulled::Canonical(r) => {
            let hidden = table.hidden_columns(p, Some(&r));
            to_raw(&wire_form(table, hidden, r, seq))?
        }
        Pulled::Wire(w) => w,
    };
    if let Some(kind) = wpg {
        read.sent(kind, &id);
    }
    if !created_as_updated && is_new(&creation, since, p) {
        entry.created.push(wire);
    } else {
        entry.updated.push(wire);
    }
    Ok(())
}

fn is_new(creation: &Creation, since: i64, p: &Principal) -> bool {
    creation.new_to(since, &p.device_id, p.user_id)
}

/// Rows per table and statement while a turbo pull streams.
const TURBO_BATCH: u64 = 1000;

/// A first pull in one streamed page, in the shape WatermelonDB's turbo login reads
/// (`unsafeTurbo`): every live row in `created`, no `deleted`, no paging. The body is written
/// while the rows are read, so the server holds one batch at a time whatever the size of the
/// team's data. A failure after the first bytes ends the body early (the app's JSON parse fails
/// and it pulls again).
pub async fn pull_turbo(
    db: Db,
    reference: std::sync::Arc<Reference>,
    audit: AuditLog,
    p: Principal,
    req: PullRequest,
) -> ApiResult<axum::body::Body> {
    if req.cursor != 0 || req.page.is_some() || req.migration {
        return Err(ApiError::field(
            "turbo",
            "turbo is for a first pull only: last_pulled_at=0, no page_token, no migration",
        ));
    }
    let tables = chosen(&req.tables)?;
    let txn = snapshot(&db).await?;
    let (last_seq, purged_seq) = space(&txn).await?;
    let plan = plan(&req, Utc::now(), last_seq, purged_seq)?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    tokio::spawn(async move {
        let upto = plan.token.upto;
        let window_start = plan.window_start();
        let result = stream_turbo(&txn, &tables, &reference, &audit, &p, &req, &plan, &tx).await;
        // A read-only snapshot: ending it cannot lose anything, but a failure is worth a line.
        if let Err(e) = txn.commit().await {
            tracing::warn!(error = %e, "turbo pull: ending the read snapshot failed");
        }
        match result {
            Ok(()) => {
                let stored = upsert_device(&db.write, &p, |d| {
                    d.last_pull_at = Set(Some(Utc::now()));
                    d.last_pulled_seq = Set(Some(upto));
                    d.window_start = Set(Some(window_start));
                })
                .await;
                if let Err(e) = stored {
                    tracing::warn!(error = %e, "turbo pull: recording the device's pull failed");
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "turbo pull ended early");
                // The client may be gone already; then there is nobody left to tell.
                let _ = tx
                    .send(Err(std::io::Error::other("turbo pull failed")))
                    .await;
            }
        }
    });
    // Fused: the body's layers may poll once more after the end.
    let stream =
        futures_util::StreamExt::fuse(futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        }));
    Ok(axum::body::Body::from_stream(stream))
}

#[allow(clippy::too_many_arguments)]
async fn stream_turbo(
    txn: &DatabaseTransaction,
    tables: &[Box<dyn SyncTable>],
    reference: &Reference,
    audit: &AuditLog,
    p: &Principal,
    req: &PullRequest,
    plan: &Plan,
    tx: &tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
) -> ApiResult<()> {
    let send = |buf: Vec<u8>| async move {
        tx.send(Ok(Bytes::from(buf)))
            .await
            .map_err(|_| ApiError::internal(anyhow::anyhow!("the client went away")))
    };
    // A batch leaves only after the audit line naming its Wpg rows is committed; that commit
    // runs while the next batch is read (one batch is held back at a time).
    let mut held: Option<(tokio::task::JoinHandle<ApiResult<()>>, Vec<u8>)> = None;
    let release = |held: Option<(tokio::task::JoinHandle<ApiResult<()>>, Vec<u8>)>| async move {
        if let Some((log, bytes)) = held {
            log.await.map_err(ApiError::internal)??;
            send(bytes).await?;
        }
        Ok::<(), ApiError>(())
    };
    let t = &plan.token;
    let mut buf = br#"{"changes":{"#.to_vec();
    let mut first_table = true;
    for table in tables {
        if !first_table {
            buf.push(b',');
        }
        first_table = false;
        buf.extend_from_slice(&serde_json::to_vec(table.name()).map_err(ApiError::internal)?);
        buf.extend_from_slice(br#":{"created":["#);
        let mut after = t.after;
        let mut first_row = true;
        loop {
            let slice = PullSlice {
                window_start: plan.window_start(),
                after,
                upto: t.upto,
                limit: TURBO_BATCH,
                live_only: true,
            };
            let rows = table.pull(txn, p, &slice).await?;
            let Some(last) = rows.last() else { break };
            after = last.seq;
            let n = rows.len() as u64;
            let mut page = PulledChanges::default();
            let mut read = Disclosure::new(p, audit);
            for row in rows {
                place(&mut page, table.as_ref(), p, 0, false, row, &mut read)?;
            }
            for row in page.created.iter().chain(page.updated.iter()) {
                if !first_row {
                    buf.push(b',');
                }
                first_row = false;
                buf.extend_from_slice(row.get().as_bytes());
            }
            let log = tokio::spawn(read.log("sync_pull", Default::default()));
            release(held.take()).await?;
            held = Some((log, std::mem::take(&mut buf)));
            if n < TURBO_BATCH {
                break;
            }
        }
        buf.extend_from_slice(br#"],"updated":[],"deleted":[]}"#);
    }
    for (name, rows) in reference_tables(reference, txn, p).await? {
        if req
            .tables
            .as_ref()
            .is_some_and(|n| !n.iter().any(|n| n == name))
        {
            continue;
        }
        if !first_table {
            buf.push(b',');
        }
        first_table = false;
        let changes = Placement::Created.changes(rows);
        buf.extend_from_slice(&serde_json::to_vec(name).map_err(ApiError::internal)?);
        buf.push(b':');
        buf.extend_from_slice(&serde_json::to_vec(&changes).map_err(ApiError::internal)?);
    }
    let conflicts_open = open_conflicts(txn, p).await?;
    buf.extend_from_slice(
        format!(
            r#"}},"timestamp":{},"has_more":false,"next_page":null,"conflicts_open":{conflicts_open}}}"#,
            t.upto
        )
        .as_bytes(),
    );
    release(held.take()).await?;
    send(buf).await
}

async fn space<C: ConnectionTrait>(conn: &C) -> ApiResult<(i64, i64)> {
    use sea_orm::sea_query::{Expr, ExprTrait, Query};
    let stmt = Query::select()
        .columns(["last_seq", "purged_seq"])
        .from("sync_space")
        .and_where(Expr::col("id").eq(super::SPACE_ID))
        .to_owned();
    let row = conn
        .query_one(&stmt)
        .await?
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("sync_space row missing")))?;
    Ok((row.try_get("", "last_seq")?, row.try_get("", "purged_seq")?))
}

async fn open_conflicts<C: ConnectionTrait>(conn: &C, p: &Principal) -> ApiResult<u64> {
    let mut q = sync_conflict::Entity::find().filter(sync_conflict::Column::Status.eq("open"));
    q = match (p.role, p.scope()) {
        (Role::Teamleider, crate::auth::Scope::Team(t)) => {
            q.filter(sync_conflict::Column::TeamId.eq(t))
        }
        (Role::Beheerder, _) => q,
        _ => q.filter(sync_conflict::Column::UserId.eq(p.user_id)),
    };
    Ok(q.count(conn).await?)
}

/// Read-only reference tables, sent whole with a full pull.
pub const REFERENCE_TABLES: &[&str] = &["categories", "feitcodes", "areas", "team_members"];

#[derive(Clone, Copy)]
enum Placement {
    Created,
    Updated,
}

impl Placement {
    fn changes(self, items: Vec<Value>) -> PulledChanges {
        let rows: Vec<Box<RawValue>> = items
            .iter()
            .filter_map(|v| serde_json::value::to_raw_value(v).ok())
            .collect();
        match self {
            Placement::Created => PulledChanges {
                created: rows,
                ..Default::default()
            },
            Placement::Updated => PulledChanges {
                updated: rows,
                ..Default::default()
            },
        }
    }
}

async fn reference_tables(
    reference: &Reference,
    txn: &DatabaseTransaction,
    p: &Principal,
) -> ApiResult<Vec<(&'static str, Vec<Value>)>> {
    let categories = reference.categories.iter().map(|c| json!({
        "id": c.code, "name": c.name, "description": c.description, "feitcode_domains": c.feitcode_domains,
    })).collect();
    let feitcodes = reference.feitcodes.iter().map(|f| json!({
        "id": format!("{}@{}", f.code, f.valid_from), "code": f.code, "category": f.category,
        "domain": f.domain, "description": f.description, "track": f.track,
        "valid_from": f.valid_from.to_string(), "valid_until": f.valid_until.map(|d| d.to_string()),
    })).collect();
    let areas = reference
        .areas
        .areas()
        .iter()
        .map(|a| {
            json!({
                "id": a.code, "kind": a.kind.as_str(), "name": a.name, "wijk_code": a.wijk_code,
                // The outline, so an app draws the briefing's map offline (GeoJSON, simplified).
                "geometry": crate::geo::outline_geojson(&a.shape),
            })
        })
        .collect();
    let users = crate::auth::accounts::members_in_scope(txn, p).await?;
    let members = users.iter().map(|u| json!({
        "id": u.id.to_string(), "username": u.username, "display_name": u.display_name, "role": u.role,
    })).collect();
    Ok(vec![
        ("categories", categories),
        ("feitcodes", feitcodes),
        ("areas", areas),
        ("team_members", members),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(cursor: i64) -> PullRequest {
        PullRequest {
            cursor,
            limit: 10,
            window_days: 14,
            ..Default::default()
        }
    }

    #[test]
    fn a_page_token_round_trips_and_rejects_garbage() {
        let t = PageToken {
            since: 3,
            after: 7,
            upto: 9,
            window: 1_764_000_000_000,
            live_only: false,
            migration: true,
            tables: Some(vec!["violations".into()]),
            created_as_updated: false,
        };
        assert_eq!(PageToken::decode(&t.encode()).ok(), Some(t.clone()));
        assert!(PageToken::decode("bm90IGpzb24").is_err());
        let bad = PageToken { after: 10, ..t };
        assert!(PageToken::decode(&bad.encode()).is_err());
    }

    #[test]
    fn later_pages_skip_the_start_checks() {
        let now = Utc::now();
        // A migration sync starts from 0 on its first page only.
        let first = plan(
            &PullRequest {
                migration: true,
                ..req(5)
            },
            now,
            100,
            0,
        )
        .expect("first page");
        assert_eq!((first.token.since, first.token.after), (5, 0));
        let next = PageToken {
            after: 40,
            ..first.token.clone()
        };
        let second = plan(
            &PullRequest {
                migration: true,
                page: Some(next.encode()),
                ..req(5)
            },
            now,
            120,
            0,
        )
        .expect("second page");
        assert_eq!(
            second.token.after, 40,
            "the position is kept, not reset to 0"
        );
        assert_eq!(second.token.upto, 100, "the snapshot bound is kept");

        // A first pull after a purge pages past the purge mark without a 410.
        let first = plan(&req(0), now, 100, 50).expect("first pull");
        assert!(first.token.live_only);
        let page2 = PageToken {
            after: 20,
            ..first.token.clone()
        };
        assert!(
            plan(
                &PullRequest {
                    page: Some(page2.encode()),
                    ..req(0)
                },
                now,
                100,
                50
            )
            .is_ok()
        );
        // A cursor below the purge is gone; so is an incremental pull whose tombstones were
        // purged while it paged.
        assert!(matches!(
            plan(&req(10), now, 100, 50),
            Err(ApiError::Gone(_))
        ));
        let inc = PageToken {
            since: 60,
            after: 70,
            upto: 100,
            window: 0,
            live_only: false,
            migration: false,
            tables: None,
            created_as_updated: false,
        };
        assert!(matches!(
            plan(
                &PullRequest {
                    page: Some(inc.encode()),
                    ..req(60)
                },
                now,
                100,
                80
            ),
            Err(ApiError::Gone(_))
        ));
    }
}
