//! The one write path of every field-record kind, and its reads.
//!
//! A create or update applies the change to the record's document, checks the whole result
//! against the kind's rules, and writes the row, its audit line, its history and its sync stamp
//! in the caller's transaction: nothing is half-written, and REST and sync push cannot differ.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, LockType, Order, Query, SelectStatement};
use sea_orm::{ConnectionTrait, DatabaseTransaction, QueryResult};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{RecordKind, parent_id};
use crate::access::{Disclosure, Facts, Sight};
use crate::audit::{self, Entry};
use crate::auth::{Principal, Scope};
use crate::error::{ApiError, ApiResult, FieldError};
use crate::sync::table::Writable;
use crate::sync::{self, Op};

/// The columns of a record row, as [`query`] reads them.
pub(crate) const COLS: &[&str] = &[
    "id",
    "team_id",
    "parent_id",
    "occurred_at",
    "data",
    "created_by",
    "created_at",
    "updated_at",
    "create_hash",
    "server_rev",
    "field_revs",
    "deleted_seq",
    "last_device_id",
    "created_seq",
    "created_device",
    "retention_stage",
];

/// A stored field record.
#[derive(Debug, Clone)]
pub struct Row {
    pub id: Uuid,
    pub team_id: Option<Uuid>,
    pub parent_id: Option<Uuid>,
    pub occurred_at: DateTime<Utc>,
    pub data: Map<String, Value>,
    pub created_by: Uuid,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub create_hash: String,
    pub server_rev: i64,
    pub field_revs: HashMap<String, i64>,
    pub deleted_seq: Option<i64>,
    pub last_device_id: Option<String>,
    /// The sequence number and device of the create (null for rows from before they were kept).
    pub created_seq: Option<i64>,
    pub created_device: Option<String>,
    /// The retention stage (`access::Stage`), set by the retention run.
    pub retention_stage: i16,
}

impl Row {
    /// What the read gate decides this record by: its team and its stage (the kind decides
    /// its regime).
    pub fn facts(&self) -> Facts {
        Facts::of_team(self.team_id).at(self.retention_stage)
    }
}

fn from_result(r: &QueryResult) -> Result<Row, sea_orm::DbErr> {
    let data: Value = r.try_get("", "data")?;
    let revs: Value = r.try_get("", "field_revs")?;
    Ok(Row {
        id: r.try_get("", "id")?,
        team_id: r.try_get("", "team_id")?,
        parent_id: r.try_get("", "parent_id")?,
        occurred_at: r.try_get("", "occurred_at")?,
        data: match data {
            Value::Object(m) => m,
            _ => Map::new(),
        },
        created_by: r.try_get("", "created_by")?,
        created_at: r.try_get("", "created_at")?,
        updated_at: r.try_get("", "updated_at")?,
        create_hash: r.try_get("", "create_hash")?,
        server_rev: r.try_get("", "server_rev")?,
        field_revs: crate::sync::table::field_revs(&revs),
        deleted_seq: r.try_get("", "deleted_seq")?,
        last_device_id: r.try_get("", "last_device_id")?,
        created_seq: r.try_get("", "created_seq")?,
        created_device: r.try_get("", "created_device")?,
        retention_stage: r.try_get("", "retention_stage")?,
    })
}

fn select(kind: &dyn RecordKind) -> SelectStatement {
    let mut q = Query::select();
    q.columns(COLS.iter().copied()).from(kind.db_table());
    q
}

pub async fn query<C: ConnectionTrait>(conn: &C, q: &SelectStatement) -> ApiResult<Vec<Row>> {
    let rows = conn.query_all(q).await?;
    rows.iter()
        .map(|r| from_result(r).map_err(ApiError::from))
        .collect()
}

/// Records by id (tombstones included), locked for update when `lock`.
pub async fn load_many<C: ConnectionTrait>(
    conn: &C,
    kind: &dyn RecordKind,
    ids: &[Uuid],
    lock: bool,
) -> ApiResult<Vec<Row>> {
    let mut out = Vec::new();
    for chunk in ids.chunks(200) {
        let mut q = select(kind);
        q.and_where(Expr::col("id").is_in(chunk.iter().copied()));
        if lock && conn.get_database_backend() == sea_orm::DbBackend::Postgres {
            q.lock(LockType::Update);
        }
        out.extend(query(conn, &q).await?);
    }
    Ok(out)
}

pub async fn load<C: ConnectionTrait>(
    conn: &C,
    kind: &dyn RecordKind,
    id: Uuid,
    lock: bool,
) -> ApiResult<Option<Row>> {
    Ok(load_many(conn, kind, &[id], lock).await?.into_iter().next())
}

/// Whether the principal may see this record (the read gate decides).
pub fn visible(kind: &dyn RecordKind, p: &Principal, r: &Row) -> bool {
    crate::access::sees(p, kind.access(), &r.facts())
}

/// A live record the principal may see.
pub async fn get<C: ConnectionTrait>(
    conn: &C,
    kind: &dyn RecordKind,
    p: &Principal,
    id: Uuid,
) -> ApiResult<Row> {
    if !kind.may_read(p) {
        return Err(forbidden_read(kind, p));
    }
    load(conn, kind, id, false)
        .await?
        .filter(|r| r.deleted_seq.is_none() && visible(kind, p, r))
        .ok_or_else(|| ApiError::NotFound(format!("{} {id}", kind.wire_name())))
}

fn forbidden_read(kind: &dyn RecordKind, p: &Principal) -> ApiError {
    ApiError::Forbidden(format!(
        "a {} may not read {}",
        p.role.as_str(),
        kind.wire_name()
    ))
}

/// Live records in the principal's scope whose time lies in `[from, to)`, optionally under a
/// parent, oldest first.
pub async fn list<C: ConnectionTrait>(
    conn: &C,
    kind: &dyn RecordKind,
    p: &Principal,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    parent: Option<Uuid>,
    limit: u64,
) -> ApiResult<Vec<Row>> {
    if !kind.may_read(p) {
        return Err(forbidden_read(kind, p));
    }
    let mut q = select(kind);
    q.and_where(Expr::col("deleted_seq").is_null())
        .and_where(Expr::col("retention_stage").eq(0));
    match p.scope() {
        Scope::All => {}
        Scope::Team(t) => {
            q.and_where(Expr::col("team_id").eq(t));
        }
        Scope::Nothing => return Ok(vec![]),
    }
    if let Some(f) = from {
        q.and_where(Expr::col("occurred_at").gte(f));
    }
    if let Some(t) = to {
        q.and_where(Expr::col("occurred_at").lt(t));
    }
    if let Some(pid) = parent {
        q.and_where(Expr::col("parent_id").eq(pid));
    }
    q.order_by("occurred_at", Order::Asc)
        .order_by("id", Order::Asc)
        .limit(limit);
    query(conn, &q).await
}

pub enum Created {
    New(Row),
    Existing(Row),
}

fn hash(data: &Map<String, Value>) -> String {
    let bytes = serde_json::to_vec(data).unwrap_or_default();
    hex::encode(Sha256::digest(&bytes))
}

/// Only the columns a device may set, in their canonical form; anything else is named.
fn writable(
    kind: &dyn RecordKind,
    input: &Map<String, Value>,
    creating: bool,
) -> ApiResult<Map<String, Value>> {
    let mut out = Map::new();
    let mut errs = Vec::new();
    for (k, v) in input {
        match kind.columns().iter().find(|c| c.name == k) {
            Some(c)
                if c.writable == Writable::Always
                    || (creating && c.writable == Writable::OnCreate) =>
            {
                match crate::sync::table::canonical(c.kind, v) {
                    Ok(v) => {
                        out.insert(k.clone(), v);
                    }
                    Err(e) => errs.push(FieldError::new(k.clone(), e)),
                }
            }
            Some(_) => errs.push(FieldError::new(
                k.clone(),
                if creating {
                    "is set by the server"
                } else {
                    "cannot be changed after create"
                },
            )),
            None if k == "id" || k == "server_rev" => {}
            None => errs.push(FieldError::new(k.clone(), "unknown field")),
        }
    }
    if errs.is_empty() {
        Ok(out)
    } else {
        Err(ApiError::Validation(errs))
    }
}

async fn stamp_one(
    txn: &DatabaseTransaction,
    kind: &dyn RecordKind,
    id: Uuid,
    op: Op,
    fields: Vec<&'static str>,
    p: &Principal,
    now: DateTime<Utc>,
) -> ApiResult<i64> {
    let device = Some(p.device_id.as_str());
    Ok(sync::stamp_one(
        txn,
        kind.wire_name(),
        id.to_string(),
        op,
        fields,
        device,
        now,
    )
    .await?)
}

async fn keep_history(
    txn: &DatabaseTransaction,
    kind: &dyn RecordKind,
    r: &Row,
    now: DateTime<Utc>,
) -> ApiResult<()> {
    sync::record_history(
        txn,
        kind.wire_name(),
        &r.id.to_string(),
        r.server_rev,
        Value::Object(canonical_row(r)),
        now,
    )
    .await?;
    Ok(())
}

/// Creates a record in the caller's transaction. `input` holds wire or canonical values; the
/// same id with the same content is a retry (the record as it is), with other content a 409.
pub async fn create_in(
    txn: &DatabaseTransaction,
    kind: &dyn RecordKind,
    p: &Principal,
    id: Uuid,
    input: &Map<String, Value>,
    now: DateTime<Utc>,
) -> ApiResult<Created> {
    let mut data = writable(kind, input, true)?;
    if !kind.may_create(p, &data) {
        return Err(ApiError::Forbidden(format!(
            "a {} may not record this in {}",
            p.role.as_str(),
            kind.wire_name()
        )));
    }
    let create_hash = hash(&data);
    if let Some(existing) = load(txn, kind, id, true).await? {
        if existing.create_hash == create_hash && visible(kind, p, &existing) {
            return Ok(Created::Existing(existing));
        }
        return Err(ApiError::Conflict {
            detail: format!(
                "{} {id} already exists with other content",
                kind.wire_name()
            ),
            existing: None,
        });
    }
    let errs = kind.check(&data, None, now);
    if !errs.is_empty() {
        return Err(ApiError::Validation(errs));
    }
    let mut team_id = p.team_id;
    let parent = parent_id(kind, &data);
    if let Some((col, parent_kind)) = kind.parent()
        && let Some(pid) = parent
    {
        let up = load(txn, parent_kind, pid, false)
            .await?
            .filter(|r| r.deleted_seq.is_none() && visible(parent_kind, p, r))
            .ok_or_else(|| {
                ApiError::field(
                    col,
                    format!("no such {} in your scope", parent_kind.wire_name()),
                )
            })?;
        team_id = up.team_id;
        kind.bind_to_parent(&mut data, &up.data);
    }
    kind.on_change(None, &mut data, now, p);
    let row = insert_new(txn, kind, p, id, team_id, parent, data, create_hash, now).await?;
    Ok(Created::New(row))
}

/// Creates a record the server writes itself (a signed briefing): no device rules apply; the
/// document is stored as given. Audit and sync stamp as for any record.
pub async fn create_server_in(
    txn: &DatabaseTransaction,
    kind: &dyn RecordKind,
    p: &Principal,
    id: Uuid,
    data: Map<String, Value>,
    now: DateTime<Utc>,
) -> ApiResult<Row> {
    let create_hash = hash(&data);
    insert_new(txn, kind, p, id, p.team_id, None, data, create_hash, now).await
}

/// Stamps, inserts and audits a new record whose document has passed its checks.
#[allow(clippy::too_many_arguments)]
async fn insert_new(
    txn: &DatabaseTransaction,
    kind: &dyn RecordKind,
    p: &Principal,
    id: Uuid,
    team_id: Option<Uuid>,
    parent_id: Option<Uuid>,
    data: Map<String, Value>,
    create_hash: String,
    now: DateTime<Utc>,
) -> ApiResult<Row> {
    let fields: Vec<&'static str> = kind
        .columns()
        .iter()
        .filter(|c| data.contains_key(c.name))
        .map(|c| c.name)
        .collect();
    let seq = stamp_one(txn, kind, id, Op::Create, fields.clone(), p, now).await?;
    let row = Row {
        id,
        team_id,
        parent_id,
        occurred_at: kind.occurred_at(&data, now),
        data,
        created_by: p.user_id,
        created_at: now,
        updated_at: now,
        create_hash,
        server_rev: seq,
        field_revs: fields.iter().map(|f| (f.to_string(), seq)).collect(),
        deleted_seq: None,
        last_device_id: Some(p.device_id.clone()),
        created_seq: Some(seq),
        created_device: Some(p.device_id.clone()),
        retention_stage: 0,
    };
    insert_row(txn, kind, &row).await?;
    audit::record(
        txn,
        &p.actor(),
        Entry::new("create", kind.wire_name(), id),
        now,
    )
    .await?;
    Ok(row)
}

async fn insert_row(txn: &DatabaseTransaction, kind: &dyn RecordKind, row: &Row) -> ApiResult<()> {
    let mut ins = Query::insert();
    ins.into_table(kind.db_table())
        .columns(COLS.iter().copied())
        .values([
            row.id.into(),
            row.team_id.into(),
            row.parent_id.into(),
            row.occurred_at.into(),
            Value::Object(row.data.clone()).into(),
            row.created_by.into(),
            row.created_at.into(),
            row.updated_at.into(),
            row.create_hash.clone().into(),
            row.server_rev.into(),
            json!(row.field_revs).into(),
            row.deleted_seq.into(),
            row.last_device_id.clone().into(),
            row.created_seq.into(),
            row.created_device.clone().into(),
            row.retention_stage.into(),
        ])
        .map_err(|e| ApiError::internal(anyhow::anyhow!("building the insert: {e}")))?;
    txn.execute(&ins).await?;
    Ok(())
}

/// Changes a record in the caller's transaction: `changes` are applied to its document and the
/// whole result is checked. No change, no new revision.
pub async fn update_in(
    txn: &DatabaseTransaction,
    kind: &dyn RecordKind,
    p: &Principal,
    id: Uuid,
    changes: &Map<String, Value>,
    now: DateTime<Utc>,
) -> ApiResult<Row> {
    let changes = writable(kind, changes, false)?;
    let cur = load(txn, kind, id, true)
        .await?
        .filter(|r| r.deleted_seq.is_none() && visible(kind, p, r))
        .ok_or_else(|| ApiError::NotFound(format!("{} {id}", kind.wire_name())))?;
    if !kind.may_edit(p, cur.created_by, &cur.data) {
        return Err(ApiError::Forbidden(format!(
            "a {} may not change this {} record",
            p.role.as_str(),
            kind.wire_name()
        )));
    }
    let mut data = cur.data.clone();
    let mut changed: Vec<&'static str> = Vec::new();
    for c in kind.columns() {
        if let Some(v) = changes.get(c.name)
            && data.get(c.name).unwrap_or(&Value::Null) != v
        {
            data.insert(c.name.to_string(), v.clone());
            changed.push(c.name);
        }
    }
    if changed.is_empty() {
        return Ok(cur);
    }
    let errs = kind.check(&data, Some(&cur.data), now);
    if !errs.is_empty() {
        return Err(ApiError::Validation(errs));
    }
    for extra in kind.on_change(Some(&cur.data), &mut data, now, p) {
        if !changed.contains(&extra) {
            changed.push(extra);
        }
    }
    audit::record(
        txn,
        &p.actor(),
        Entry::new("update", kind.wire_name(), id).detail(json!({ "fields": changed })),
        now,
    )
    .await?;
    let seq = stamp_one(txn, kind, id, Op::Upsert, changed.clone(), p, now).await?;
    keep_history(txn, kind, &cur, now).await?;
    let mut row = cur;
    for f in &changed {
        row.field_revs.insert(f.to_string(), seq);
    }
    row.occurred_at = kind.occurred_at(&data, row.created_at);
    row.data = data;
    row.server_rev = seq;
    row.updated_at = now;
    row.last_device_id = Some(p.device_id.clone());
    write_back(txn, kind, &row).await?;
    Ok(row)
}

async fn write_back(txn: &DatabaseTransaction, kind: &dyn RecordKind, r: &Row) -> ApiResult<()> {
    let stmt = Query::update()
        .table(kind.db_table())
        .value("data", Value::Object(r.data.clone()))
        .value("occurred_at", r.occurred_at)
        .value("updated_at", r.updated_at)
        .value("server_rev", r.server_rev)
        .value("field_revs", json!(r.field_revs))
        .value("deleted_seq", r.deleted_seq)
        .value("last_device_id", r.last_device_id.clone())
        .and_where(Expr::col("id").eq(r.id))
        .to_owned();
    txn.execute(&stmt).await?;
    Ok(())
}

/// A new revision without a change (see `SyncTable::touch`).
pub async fn touch_in(
    txn: &DatabaseTransaction,
    kind: &dyn RecordKind,
    p: &Principal,
    id: Uuid,
    now: DateTime<Utc>,
) -> ApiResult<()> {
    let Some(mut row) = load(txn, kind, id, true)
        .await?
        .filter(|r| r.deleted_seq.is_none())
    else {
        return Ok(());
    };
    keep_history(txn, kind, &row, now).await?;
    row.server_rev = stamp_one(txn, kind, id, Op::Upsert, vec![], p, now).await?;
    write_back(txn, kind, &row).await
}

/// Tombstones a record; `false` when there was nothing to delete.
pub async fn delete_in(
    txn: &DatabaseTransaction,
    kind: &dyn RecordKind,
    p: &Principal,
    id: Uuid,
    now: DateTime<Utc>,
) -> ApiResult<bool> {
    let Some(mut row) = load(txn, kind, id, true)
        .await?
        .filter(|r| r.deleted_seq.is_none() && visible(kind, p, r))
    else {
        return Ok(false);
    };
    if !kind.may_edit(p, row.created_by, &row.data) {
        return Err(ApiError::Forbidden(format!(
            "a {} may not delete this {} record",
            p.role.as_str(),
            kind.wire_name()
        )));
    }
    audit::record(
        txn,
        &p.actor(),
        Entry::new("delete", kind.wire_name(), id),
        now,
    )
    .await?;
    let seq = stamp_one(txn, kind, id, Op::Delete, vec![], p, now).await?;
    row.deleted_seq = Some(seq);
    row.server_rev = seq;
    row.updated_at = now;
    row.last_device_id = Some(p.device_id.clone());
    write_back(txn, kind, &row).await?;
    Ok(true)
}

/// A record in canonical sync form: its document plus the server's columns.
pub fn canonical_row(r: &Row) -> Map<String, Value> {
    let mut m = r.data.clone();
    m.insert("id".into(), json!(r.id.to_string()));
    m.insert("team_id".into(), json!(r.team_id.map(|u| u.to_string())));
    m.insert("created_by".into(), json!(r.created_by.to_string()));
    m.insert("created_at".into(), json!(r.created_at.timestamp_millis()));
    m.insert("updated_at".into(), json!(r.updated_at.timestamp_millis()));
    m
}

/// A record as REST shows it: its fields (times as RFC 3339) and the server's columns; the
/// access rules decide which fields this reader gets (`redacted: true` when some are withheld),
/// and a full read of Wpg data is noted in `d` for the audit log.
pub fn view(kind: &dyn RecordKind, d: &mut Disclosure, r: &Row) -> Value {
    let sight = d.sight(kind.access(), &r.facts(), r.id);
    let hidden: &[&str] = match sight {
        Sight::Full => &[],
        Sight::Redacted | Sight::Hidden => kind.access().rule().wpg_fields,
    };
    let mut m = Map::new();
    m.insert("id".into(), json!(r.id));
    for c in kind.columns() {
        if hidden.contains(&c.name) {
            continue;
        }
        let v = r.data.get(c.name).cloned().unwrap_or(Value::Null);
        let v = if kind.time_columns().contains(&c.name) {
            super::ms(Some(&v))
                .map(|t| json!(t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)))
                .unwrap_or(Value::Null)
        } else {
            v
        };
        m.insert(c.name.to_string(), v);
    }
    m.insert("team_id".into(), json!(r.team_id));
    m.insert("created_by".into(), json!(r.created_by));
    m.insert("created_at".into(), json!(r.created_at));
    m.insert("updated_at".into(), json!(r.updated_at));
    m.insert("server_rev".into(), json!(r.server_rev));
    if !hidden.is_empty() {
        m.insert("redacted".into(), json!(true));
    }
    Value::Object(m)
}

/// REST input: RFC 3339 times become ms since 1970, the form every record keeps.
pub fn from_rest(
    kind: &dyn RecordKind,
    mut input: Map<String, Value>,
) -> ApiResult<Map<String, Value>> {
    for c in kind.time_columns() {
        if let Some(Value::String(s)) = input.get(*c) {
            let t = DateTime::parse_from_rfc3339(s).map_err(|_| {
                ApiError::field(*c, "an RFC 3339 time, e.g. 2026-11-26T09:30:00+01:00")
            })?;
            input.insert(c.to_string(), json!(t.timestamp_millis()));
        }
    }
    Ok(input)
}
