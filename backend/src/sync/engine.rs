//! The sync engine: WatermelonDB-compatible pull and push over any registered `SyncTable`.

use std::collections::{BTreeMap, HashSet};

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, Set, TransactionTrait,
};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use uuid::Uuid;

use super::entities::{sync_conflict, sync_device, sync_push};
use super::merge::merge_field;
use super::table::{PushCtx, SyncTable, Writable, canonical, wire};
use crate::auth::{Action, Principal};
use crate::db::Db;
use crate::error::{ApiError, ApiResult, FieldError};
use crate::reference::Reference;

/// Every record type that syncs, in one place.
pub fn tables() -> Vec<Box<dyn SyncTable>> {
    let mut t: Vec<Box<dyn SyncTable>> = vec![Box::new(crate::violations::sync::ViolationsTable)];
    for kind in crate::records::kinds::all() {
        t.push(Box::new(crate::records::sync::KindTable(kind)));
    }
    t.push(Box::new(crate::photos::sync::PhotosTable));
    t
}

/// WatermelonDB's change set of one table.
#[derive(Debug, Default, Clone, Serialize, Deserialize, ToSchema)]
pub struct TableChanges {
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub created: Vec<Map<String, Value>>,
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub updated: Vec<Map<String, Value>>,
    #[serde(default)]
    pub deleted: Vec<String>,
}

/// The body of a push. The envelope is read strictly; each record is then read on its own, and
/// one that cannot be read is refused alone (see SYNC.md, Push).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PushBody {
    /// `{table: {created, updated, deleted}}`; `created` and `updated` are handled alike.
    pub changes: BTreeMap<String, TableChanges>,
}

/// A push as read: the envelope strictly, each record on its own (see [`read_push`]).
#[derive(Debug, Default)]
pub struct Push {
    /// The tables the server syncs that the push names, in the order of the body.
    pub tables: Vec<TablePush>,
    /// Tables the server does not sync that came with changes (not read any further).
    pub ignored: Vec<String>,
}

impl Push {
    /// Entries pushed (records, deletions, refused ones).
    pub fn entries(&self) -> usize {
        self.tables
            .iter()
            .map(|t| t.records.len() + t.deleted.len() + t.refused.len())
            .sum()
    }
}

/// The records of one table that could be read, and those that could not.
#[derive(Debug, Default)]
pub struct TablePush {
    pub name: String,
    /// `created` then `updated`: each id once, canonical, none also deleted.
    pub records: Vec<(String, Map<String, Value>)>,
    /// Ids to delete: each once, canonical, none also created or updated.
    pub deleted: Vec<String>,
    /// Entries refused before anything is applied.
    pub refused: Vec<Refused>,
}

/// An entry of a push refused as unreadable.
#[derive(Debug, Clone, PartialEq)]
pub struct Refused {
    /// The id as sent; empty when it cannot be read (then it is not in `experimentalRejectedIds`:
    /// there is nothing the phone could match).
    pub id: String,
    pub field: String,
    pub message: String,
}

impl Refused {
    fn new(id: &str, field: &str, message: impl Into<String>) -> Refused {
        Refused {
            id: id.to_string(),
            field: field.to_string(),
            message: message.into(),
        }
    }
}

/// The only form of a record id the server takes: a lowercase hyphenated UUID, exactly as it is
/// stored and pulled. Other spellings (uppercase as iOS `NSUUID` writes them, braces, no hyphens)
/// are refused, never rewritten: the phone would keep its row and pull a second one.
pub fn canonical_id(id: &str) -> Option<Uuid> {
    Uuid::try_parse(id)
        .ok()
        .filter(|u| u.hyphenated().encode_lower(&mut Uuid::encode_buffer()) == id)
}

/// A JSON object as its entries in order, repeated keys kept (serde's maps keep only the last).
struct Entries<V>(Vec<(String, V)>);

impl<'de, V: Deserialize<'de>> Deserialize<'de> for Entries<V> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit<V>(std::marker::PhantomData<V>);
        impl<'de, V: Deserialize<'de>> serde::de::Visitor<'de> for Visit<V> {
            type Value = Entries<V>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(e) = map.next_entry::<String, V>()? {
                    out.push(e);
                }
                Ok(Entries(out))
            }
        }
        d.deserialize_map(Visit(std::marker::PhantomData))
    }
}

/// One table's changes as raw JSON values, each read later on its own.
#[derive(Deserialize)]
struct RawChanges {
    #[serde(default)]
    created: Vec<Box<RawValue>>,
    #[serde(default)]
    updated: Vec<Box<RawValue>>,
    #[serde(default)]
    deleted: Vec<Box<RawValue>>,
}

#[derive(Deserialize)]
struct RawPush {
    changes: Entries<RawChanges>,
}

/// Reads a push body. The envelope (`{"changes": {table: {created, updated, deleted}}}`) is read
/// strictly: a malformed one fails the whole push (400, or 422 naming the field). Each record is
/// read on its own afterwards: one that cannot be read is refused alone (see SYNC.md, Push).
/// serde_json skips over a string with a lone surrogate escape (`"\ud83d"`) when it only captures
/// raw JSON, so such a string sinks only its record. A table named twice is read as one: its
/// lists are joined in order.
pub fn read_push(bytes: &[u8]) -> ApiResult<Push> {
    let raw: RawPush = crate::extract::parse_json_envelope(bytes)?;
    let known = tables();
    let mut joined: Vec<(String, RawChanges)> = Vec::new();
    for (name, changes) in raw.changes.0 {
        match joined.iter_mut().find(|(n, _)| *n == name) {
            Some((_, c)) => {
                c.created.extend(changes.created);
                c.updated.extend(changes.updated);
                c.deleted.extend(changes.deleted);
            }
            None => joined.push((name, changes)),
        }
    }
    let mut push = Push::default();
    for (name, changes) in joined {
        if !known.iter().any(|t| t.name() == name) {
            if !changes.created.is_empty()
                || !changes.updated.is_empty()
                || !changes.deleted.is_empty()
            {
                push.ignored.push(name);
            }
            continue;
        }
        push.tables.push(read_table(name, &changes));
    }
    Ok(push)
}

fn read_table(name: String, changes: &RawChanges) -> TablePush {
    let mut out = TablePush {
        name,
        ..TablePush::default()
    };
    // Every readable id of created and updated, refused records' too: a duplicate of a refused
    // record is no more applied than the duplicate of an applied one.
    let mut seen: HashSet<String> = HashSet::new();
    for raw in changes.created.iter().chain(changes.updated.iter()) {
        let (id, read) = read_record(raw);
        if let Some(id) = &id
            && !seen.insert(id.clone())
        {
            out.refused.push(Refused::new(
                id,
                "id",
                "this id is already in this push (created and updated list each record once)",
            ));
            continue;
        }
        match read {
            Ok(record) => out.records.push((id.clone().unwrap_or_default(), record)),
            Err(r) => out.refused.push(r),
        }
    }
    let mut both: Vec<String> = Vec::new();
    let mut gone: HashSet<String> = HashSet::new();
    for raw in &changes.deleted {
        match read_deleted_id(raw) {
            Ok(id) if seen.contains(&id) => {
                if !both.contains(&id) {
                    both.push(id);
                }
            }
            Ok(id) => {
                // Deleting twice is deleting once.
                if gone.insert(id.clone()) {
                    out.deleted.push(id);
                }
            }
            Err(r) => out.refused.push(r),
        }
    }
    if !both.is_empty() {
        out.records.retain(|(id, _)| !both.contains(id));
        for id in both {
            if !out.refused.iter().any(|r| r.id == id) {
                out.refused.push(Refused::new(
                    &id,
                    "id",
                    "this id is both created or updated and deleted in this push",
                ));
            }
        }
    }
    out
}

fn read_deleted_id(raw: &RawValue) -> Result<String, Refused> {
    match serde_json::from_str::<Value>(raw.get()) {
        Ok(Value::String(id)) => check_id(&id).map(|()| id),
        Ok(_) => Err(Refused::new("", "id", "a deleted entry is an id string")),
        Err(e) => Err(Refused::new("", "id", unreadable_string(&e))),
    }
}

fn check_id(id: &str) -> Result<(), Refused> {
    if id.is_empty() {
        return Err(Refused::new(
            "",
            "id",
            "required: a lowercase hyphenated UUID",
        ));
    }
    if canonical_id(id).is_none() {
        return Err(Refused::new(
            id,
            "id",
            "a lowercase hyphenated UUID (like 0190f0e2-7c1a-7cc3-a1b2-3c4d5e6f7a8b), exactly as stored",
        ));
    }
    Ok(())
}

fn unreadable_string(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    let msg = msg.split(" at line ").next().unwrap_or(&msg).to_string();
    if msg.contains("surrogate") || msg.contains("hex escape") {
        format!(
            "not readable text: {msg}: a lone UTF-16 surrogate (a string cut inside a \
             character, e.g. half an emoji); fix the text and push again"
        )
    } else {
        format!("not readable: {msg}")
    }
}

/// Reads one pushed record: its id when that can be read, and the record or why it is refused.
fn read_record(raw: &RawValue) -> (Option<String>, Result<Map<String, Value>, Refused>) {
    let entries: Entries<Box<RawValue>> = match serde_json::from_str(raw.get()) {
        Ok(e) => e,
        Err(e) if e.is_data() => {
            return (None, Err(Refused::new("", "", "a record is a JSON object")));
        }
        // A key that is not readable text: nothing of the record can be trusted, not its id.
        Err(e) => return (None, Err(Refused::new("", "", unreadable_string(&e)))),
    };
    let id = match entries.0.iter().find(|(k, _)| k == "id") {
        None => return (None, Err(Refused::new("", "id", "required"))),
        Some((_, v)) => match serde_json::from_str::<Value>(v.get()) {
            Ok(Value::String(id)) => id,
            Ok(Value::Null) => return (None, Err(Refused::new("", "id", "required, not null"))),
            Ok(_) => return (None, Err(Refused::new("", "id", "a string"))),
            Err(e) => return (None, Err(Refused::new("", "id", unreadable_string(&e)))),
        },
    };
    if let Err(r) = check_id(&id) {
        let known = (!r.id.is_empty()).then(|| id.clone());
        return (known, Err(r));
    }
    let mut record = Map::new();
    for (k, v) in &entries.0 {
        if record.contains_key(k) {
            return (
                Some(id.clone()),
                Err(Refused::new(&id, k, "this field is in the record twice")),
            );
        }
        let value = match serde_json::from_str::<Value>(v.get()) {
            Ok(value) => value,
            Err(e) => {
                return (
                    Some(id.clone()),
                    Err(Refused::new(&id, k, unreadable_string(&e))),
                );
            }
        };
        if k.contains('\0') || crate::extract::nul_path(&value).is_some() {
            return (
                Some(id.clone()),
                Err(Refused::new(&id, k, crate::extract::NUL_REFUSED)),
            );
        }
        record.insert(k.clone(), value);
    }
    (Some(id), Ok(record))
}

/// A conflict as the push answer reports it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ConflictNote {
    pub id: Uuid,
    pub table: String,
    pub record_id: String,
    pub field: Option<String>,
    /// both_changed, not_writable, edit_on_deleted or rejected.
    pub kind: String,
    /// Any JSON value: the field's value, or the whole record in wire form.
    pub applied: Value,
    /// Any JSON value, as the client sent it.
    pub client: Value,
}

/// A record the server refused, with the reason.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Rejection {
    pub table: String,
    pub id: String,
    pub detail: String,
    pub errors: Vec<FieldError>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PushResponse {
    /// Records written.
    pub applied: usize,
    /// Records that changed nothing (retries, echoes, edits that lost every field to a policy).
    pub unchanged: usize,
    pub conflicts: Vec<ConflictNote>,
    /// WatermelonDB: ids per table that stay unsynced on the phone.
    #[serde(rename = "experimentalRejectedIds")]
    pub experimental_rejected_ids: BTreeMap<String, Vec<String>>,
    pub rejected: Vec<Rejection>,
    /// Tables the server does not sync; their changes were ignored.
    pub ignored_tables: Vec<String>,
    /// The server's state of each pushed record whose writable fields the merge did not take as
    /// sent (a policy kept the server's value, or another device's edit was merged in), per
    /// table, in pull form: what a conflict handler (RxDB) shows as the master state. The next
    /// pull brings the same.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub merged: BTreeMap<String, Vec<Box<RawValue>>>,
}

/// What the transport adds to a push.
#[derive(Debug, Default, Clone)]
pub struct PushMeta {
    /// The cursor of the phone's last pull (`last_pulled_at`).
    pub last_pulled_at: Option<i64>,
    pub idempotency_key: Option<String>,
    pub clock_offset_ms: Option<i64>,
    pub app_version: Option<String>,
    pub schema_version: Option<i32>,
    /// The largest photo accepted, in bytes (photo records declare their size).
    pub photo_max_bytes: u64,
}

struct Pending {
    conflicts: Vec<sync_conflict::ActiveModel>,
    /// The phone's copy of this record differs from the server's after the merge.
    differs: bool,
}

#[allow(clippy::too_many_arguments)]
fn conflict_row(
    ctx: &PushCtx<'_>,
    table: &str,
    id: &str,
    field: Option<&str>,
    kind: &str,
    policy: &str,
    values: [Option<Value>; 4],
    base_rev: Option<i64>,
    server_rev: Option<i64>,
    team_id: Option<Uuid>,
    detail: Option<String>,
) -> sync_conflict::ActiveModel {
    let [base, server, client, applied] = values;
    sync_conflict::ActiveModel {
        id: Set(Uuid::now_v7()),
        table_name: Set(table.to_string()),
        record_id: Set(id.to_string()),
        field: Set(field.map(str::to_string)),
        kind: Set(kind.to_string()),
        policy: Set(policy.to_string()),
        base_value: Set(base),
        server_value: Set(server),
        client_value: Set(client),
        applied_value: Set(applied),
        base_rev: Set(base_rev),
        server_rev: Set(server_rev),
        team_id: Set(team_id),
        user_id: Set(Some(ctx.principal.user_id)),
        device_id: Set(Some(ctx.principal.device_id.clone())),
        detail: Set(detail),
        created_at: Set(ctx.now),
        status: Set("open".into()),
        resolved_at: Set(None),
        resolved_by: Set(None),
        resolution: Set(None),
        resolved_value: Set(None),
    }
}

/// The conflict row that keeps a refused record as the phone sent it.
fn rejected_row(
    ctx: &PushCtx<'_>,
    table: &str,
    id: &str,
    raw: &Map<String, Value>,
    base_rev: Option<i64>,
    detail: &str,
) -> sync_conflict::ActiveModel {
    conflict_row(
        ctx,
        table,
        id,
        None,
        "rejected",
        "validation",
        [None, None, Some(Value::Object(raw.clone())), None],
        base_rev,
        None,
        ctx.principal.team_id,
        Some(detail.to_string()),
    )
}

impl PushResponse {
    /// Refuses one record: the phone keeps it unsynced (`experimentalRejectedIds`) and hears why.
    fn reject(&mut self, table: &str, id: &str, problem: crate::error::Problem) {
        let ids = self
            .experimental_rejected_ids
            .entry(table.to_string())
            .or_default();
        if !ids.iter().any(|i| i == id) {
            ids.push(id.to_string());
        }
        self.rejected.push(Rejection {
            table: table.to_string(),
            id: id.to_string(),
            detail: problem.detail,
            errors: problem.errors,
        });
    }

    /// Refuses an entry that could not be read. Its id, when it has one, stays unsynced on the
    /// phone; one that could not be read is reported with an empty id only.
    fn refuse(&mut self, table: &str, r: &Refused) {
        let problem = ApiError::field(r.field.clone(), r.message.clone()).to_problem();
        if r.id.is_empty() {
            self.rejected.push(Rejection {
                table: table.to_string(),
                id: String::new(),
                detail: problem.detail,
                errors: problem.errors,
            });
        } else {
            self.reject(table, &r.id, problem);
        }
    }
}

enum Outcome {
    Applied,
    Unchanged,
    /// A new record: its canonical values, created with the others of the push in one batch.
    Create(Map<String, Value>),
}

/// Merges one pushed record into the server's and writes the result through the table.
async fn push_record(
    txn: &DatabaseTransaction,
    table: &dyn SyncTable,
    ctx: &PushCtx<'_>,
    id: &str,
    raw: &Map<String, Value>,
    current: Option<super::table::Current>,
    pending: &mut Pending,
) -> ApiResult<Outcome> {
    let p = ctx.principal;
    let hidden = table.hidden_columns(p, current.as_ref().map(|c| &c.raw));
    let mut invalid = Vec::new();
    let mut read = |col: &super::table::Column, v: &Value| match canonical(col.kind, v) {
        Ok(c) => Some(c),
        Err(e) => {
            invalid.push(FieldError::new(col.name, e));
            None
        }
    };
    let Some(cur) = current else {
        let mut values = Map::new();
        for col in table.columns() {
            if col.writable == Writable::Never || hidden.contains(&col.name) {
                continue;
            }
            if let Some(v) = raw.get(col.name)
                && let Some(c) = read(col, v)
            {
                values.insert(col.name.to_string(), c);
            }
        }
        if !invalid.is_empty() {
            return Err(ApiError::Validation(invalid));
        }
        return Ok(Outcome::Create(values));
    };
    if cur.deleted {
        pending.conflicts.push(conflict_row(
            ctx,
            table.name(),
            id,
            None,
            "edit_on_deleted",
            "tombstone_kept",
            [None, None, Some(Value::Object(raw.clone())), None],
            raw.get("server_rev").and_then(Value::as_i64),
            Some(cur.server_rev),
            cur.team_id,
            Some("the record was deleted on the server; the deletion stands".into()),
        ));
        return Ok(Outcome::Unchanged);
    }
    // The revision the phone's edit started from: `base_rev` (pinned by the app when the record
    // was first changed locally), else `server_rev`.
    // A `base_rev` of null means the phone never pulled the record back: it created it. Its base
    // is then its own last write (the create, or a push whose answer it lost), so that only
    // writes by others since count as concurrent.
    let pinned = match raw.get("base_rev") {
        Some(b) => b.as_i64(),
        None => raw.get("server_rev").and_then(Value::as_i64),
    };
    let base_rev = match pinned {
        Some(r) => Some(r),
        None if cur.creation.by(&p.device_id, p.user_id) => {
            own_last_write(txn, table.name(), id, &p.device_id)
                .await?
                .max(cur.creation.seq)
        }
        None => None,
    };
    let base: Option<Map<String, Value>> = match base_rev {
        Some(r) if r == cur.server_rev => Some(cur.raw.clone()),
        Some(r) => super::history_at(txn, table.name(), id, r)
            .await?
            .and_then(|v| v.as_object().cloned()),
        None => None,
    };
    // Changes after the base that this same device made itself are not concurrent with its edit
    // (say, its own earlier push whose answer it never got): only other writers count.
    let others_changed: Option<HashSet<String>> = match base_rev {
        Some(r) if r < cur.server_rev => {
            Some(changed_by_others(txn, table.name(), id, r, &p.device_id).await?)
        }
        _ => None,
    };
    let mut changes = Map::new();
    let mut conflicts = Vec::new();
    // Whether the phone's copy will differ from the server's after this push.
    let mut phone_differs = false;
    for col in table.columns() {
        if col.writable == Writable::Never || hidden.contains(&col.name) {
            continue;
        }
        let Some(v) = raw.get(col.name) else { continue };
        let Some(client) = read(col, v) else { continue };
        let server = cur.raw.get(col.name).cloned().unwrap_or(Value::Null);
        let mut base_v = base
            .as_ref()
            .map(|b| b.get(col.name).cloned().unwrap_or(Value::Null));
        // If only this device changed the field after its base, its own last write is what it
        // started this edit from.
        if let (Some(r), Some(others)) = (base_rev, others_changed.as_ref())
            && cur.field_revs.get(col.name).copied().unwrap_or(0) > r
            && !others.contains(col.name)
        {
            base_v = Some(server.clone());
        }
        let server_changed = match base_rev {
            Some(r) => {
                cur.field_revs.get(col.name).copied().unwrap_or(0) > r
                    && others_changed.as_ref().is_none_or(|o| o.contains(col.name))
            }
            None => true,
        };
        let m = merge_field(
            col.policy,
            base_v.as_ref(),
            &server,
            &client,
            server_changed,
        );
        phone_differs |= m.applied != client;
        if let Some(kind) = m.conflict {
            conflicts.push((col, kind, base_v, server.clone(), client, m.applied.clone()));
        }
        if m.changes(&server) {
            changes.insert(col.name.to_string(), m.applied);
        }
    }
    if !invalid.is_empty() {
        return Err(ApiError::Validation(invalid));
    }
    for (col, kind, base_v, server, client, applied) in conflicts {
        pending.conflicts.push(conflict_row(
            ctx,
            table.name(),
            id,
            Some(col.name),
            kind.as_str(),
            col.policy.name(),
            [base_v, Some(server), Some(client), Some(applied)],
            base_rev,
            Some(cur.server_rev),
            cur.team_id,
            None,
        ));
    }
    pending.differs = phone_differs;
    if changes.is_empty() {
        // A phone that already pulled past the current revision will not get the record again;
        // if its copy differs from the server's, give the record a new revision.
        let will_pull_anyway = ctx.last_pulled_at.is_some_and(|c| cur.server_rev > c);
        if phone_differs && !will_pull_anyway {
            // The phone will mark its copy synced; a new revision sends it the server's values.
            table.touch(txn, ctx, id).await?;
        }
        return Ok(Outcome::Unchanged);
    }
    table.update(txn, ctx, id, &changes).await?;
    Ok(Outcome::Applied)
}

/// A deletion of a record that another device edited after the deleting phone's last pull: the
/// phone deletes what it never saw. The deletion stands (as when the edit arrives after the
/// deletion), and the lost edit is kept as an `edit_on_deleted` conflict for the team lead, so
/// the outcome is the same whichever order the two pushes arrive in.
async fn unseen_edit(
    txn: &DatabaseTransaction,
    ctx: &PushCtx<'_>,
    table: &dyn SyncTable,
    id: &str,
    cur: super::table::Current,
    pending: &mut Pending,
) -> ApiResult<()> {
    let Some(pulled) = ctx.last_pulled_at else {
        return Ok(());
    };
    if cur.deleted || cur.server_rev <= pulled {
        return Ok(());
    }
    let others = changed_by_others(txn, table.name(), id, pulled, &ctx.principal.device_id).await?;
    if others.is_empty() {
        return Ok(());
    }
    let mut fields: Vec<&String> = others.iter().collect();
    fields.sort();
    pending.conflicts.push(conflict_row(
        ctx,
        table.name(),
        id,
        None,
        "edit_on_deleted",
        "tombstone_kept",
        [None, Some(Value::Object(cur.raw)), None, None],
        Some(pulled),
        Some(cur.server_rev),
        cur.team_id,
        Some(format!(
            "deleted by a device that had not pulled the edit of {} by another device; the deletion stands",
            fields
                .iter()
                .map(|f| f.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    ));
    Ok(())
}

/// The newest revision of a record that `device` wrote after creating it (updates are in the
/// change log; the create is kept on the record).
async fn own_last_write(
    txn: &DatabaseTransaction,
    table: &str,
    id: &str,
    device: &str,
) -> ApiResult<Option<i64>> {
    use sea_orm::sea_query::{Expr, ExprTrait, Query};
    let stmt = Query::select()
        .expr_as(Expr::col("seq").max(), "last")
        .from("sync_change")
        .and_where(Expr::col("table_name").eq(table))
        .and_where(Expr::col("record_id").eq(id))
        .and_where(Expr::col("device_id").eq(device))
        .to_owned();
    Ok(match txn.query_one(&stmt).await? {
        Some(row) => row.try_get("", "last")?,
        None => None,
    })
}

/// The fields of a record that writers other than `device` changed after revision `after`.
async fn changed_by_others(
    txn: &DatabaseTransaction,
    table: &str,
    id: &str,
    after: i64,
    device: &str,
) -> ApiResult<HashSet<String>> {
    use sea_orm::sea_query::{Expr, ExprTrait, Query};
    let stmt = Query::select()
        .columns(["device_id", "changed_fields"])
        .from("sync_change")
        .and_where(Expr::col("table_name").eq(table))
        .and_where(Expr::col("record_id").eq(id))
        .and_where(Expr::col("seq").gt(after))
        .to_owned();
    let mut out = HashSet::new();
    for row in txn.query_all(&stmt).await? {
        let by: Option<String> = row.try_get("", "device_id")?;
        if by.as_deref() == Some(device) {
            continue;
        }
        let fields: Option<Value> = row.try_get("", "changed_fields")?;
        for f in fields
            .as_ref()
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(f) = f.as_str() {
                out.insert(f.to_string());
            }
        }
    }
    Ok(out)
}

/// The SHA-256 of a push body, hex: what an Idempotency-Key is bound to.
pub fn request_sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// [`push_in`] in a transaction of its own, for a body whose hash is known.
pub async fn push_alone(
    db: &Db,
    reference: &Reference,
    p: &Principal,
    request_sha: &str,
    body: &Push,
    meta: &PushMeta,
) -> ApiResult<PushResponse> {
    let txn = crate::sync::begin_write(db).await?;
    let response = push_in(&txn, reference, p, request_sha, body, meta).await?;
    txn.commit().await?;
    Ok(response)
}

/// Applies a push inside the caller's transaction. A record the rules refuse is rejected on its
/// own (its id is reported in `experimentalRejectedIds`) and never fails the push; a database
/// failure fails all of it (the caller rolls back).
pub async fn push_in(
    txn: &DatabaseTransaction,
    reference: &Reference,
    p: &Principal,
    request_sha: &str,
    body: &Push,
    meta: &PushMeta,
) -> ApiResult<PushResponse> {
    let now = Utc::now();
    let request_sha = request_sha.to_string();
    if let Some(key) = &meta.idempotency_key {
        if key.is_empty() || key.len() > 200 {
            return Err(ApiError::field("Idempotency-Key", "1 to 200 characters"));
        }
        // Read inside the transaction: a retry committed in the same group commit is seen.
        if let Some(stored) = sync_push::Entity::find_by_id((p.user_id, key.clone()))
            .one(txn)
            .await?
        {
            if stored.request_sha256 == request_sha {
                return serde_json::from_value(stored.response).map_err(ApiError::internal);
            }
            return Err(ApiError::field(
                "Idempotency-Key",
                "this key was used for a different push; use a new key for new changes",
            ));
        }
    }
    let ctx = PushCtx {
        principal: p,
        reference,
        now,
        clock_offset_ms: meta.clock_offset_ms,
        last_pulled_at: meta.last_pulled_at,
        photo_max_bytes: meta.photo_max_bytes,
    };
    let tables = tables();
    let mut response = PushResponse {
        applied: 0,
        unchanged: 0,
        conflicts: vec![],
        experimental_rejected_ids: BTreeMap::new(),
        rejected: vec![],
        ignored_tables: vec![],
        merged: BTreeMap::new(),
    };
    let mut pending = Pending {
        conflicts: vec![],
        differs: false,
    };
    response.ignored_tables = body.ignored.clone();
    if !response.ignored_tables.is_empty() {
        // One line per push, with the names escaped and cut: table names come from the phone.
        let sample: Vec<String> = response
            .ignored_tables
            .iter()
            .take(5)
            .map(|n| format!("{:?}", crate::ops::loggable(n, 40)))
            .collect();
        tracing::warn!(
            count = response.ignored_tables.len(),
            tables = %sample.join(", "),
            "push for tables the server does not sync; ignored"
        );
    }
    // Tables in their declared order, parents first: a photo pushed with its report finds it.
    for table in &tables {
        let name = table.name();
        let Some(changes) = body.tables.iter().find(|t| t.name == name) else {
            continue;
        };
        for r in &changes.refused {
            response.refuse(name, r);
        }
        let mut differs: Vec<String> = Vec::new();
        // New records of this table: id, canonical values, the raw row as pushed.
        type NewItem = (String, Map<String, Value>, Map<String, Value>);
        let mut new_items: Vec<NewItem> = Vec::new();
        let ids: Vec<String> = changes.records.iter().map(|(id, _)| id.clone()).collect();
        let mut currents = table.load_many(txn, p, &ids).await?;
        for (id, raw) in &changes.records {
            let id = id.clone();
            let current = currents.remove(&id);
            let is_new = current.is_none();
            // A new record writes nothing here (it joins the batch below): no savepoint needed.
            let sp = if is_new {
                None
            } else {
                Some(txn.begin().await?)
            };
            let mut local = Pending {
                conflicts: vec![],
                differs: false,
            };
            let conn: &DatabaseTransaction = sp.as_ref().unwrap_or(txn);
            match push_record(conn, table.as_ref(), &ctx, &id, raw, current, &mut local).await {
                Ok(outcome) => {
                    if let Some(sp) = sp {
                        sp.commit().await?;
                    }
                    if local.differs {
                        differs.push(id.clone());
                    }
                    match outcome {
                        Outcome::Applied => response.applied += 1,
                        Outcome::Unchanged => response.unchanged += 1,
                        Outcome::Create(values) => {
                            new_items.push((id.clone(), values, raw.clone()))
                        }
                    }
                    pending.conflicts.extend(local.conflicts);
                }
                Err(e) if e.status().is_client_error() => {
                    if let Some(sp) = sp {
                        sp.rollback().await?;
                    }
                    let base_rev = raw.get("server_rev").and_then(Value::as_i64);
                    let problem = e.to_problem();
                    pending.conflicts.push(rejected_row(
                        &ctx,
                        name,
                        &id,
                        raw,
                        base_rev,
                        &problem.detail,
                    ));
                    response.reject(name, &id, problem);
                }
                Err(e) => return Err(e),
            }
        }
        if !new_items.is_empty() {
            // No savepoint: a create path judges every record before it writes any, and takes
            // its own savepoint where it must retry (a create race on PostgreSQL). On SQLite a
            // savepoint costs a statement journal of every page the batch touches.
            let items = new_items
                .iter()
                .map(|(id, values, _)| (id.clone(), values.clone()))
                .collect();
            let results = match table.create_many(txn, &ctx, items).await {
                Ok(r) => r,
                Err(e) if e.status().is_client_error() => {
                    let problem = e.to_problem();
                    new_items
                        .iter()
                        .map(|_| Err(ApiError::Forbidden(problem.detail.clone())))
                        .collect()
                }
                Err(e) => return Err(e),
            };
            for ((id, _, raw), result) in new_items.iter().zip(results) {
                match result {
                    Ok(()) => response.applied += 1,
                    Err(e) if e.status().is_client_error() => {
                        let problem = e.to_problem();
                        pending.conflicts.push(rejected_row(
                            &ctx,
                            name,
                            id,
                            raw,
                            None,
                            &problem.detail,
                        ));
                        response.reject(name, id, problem);
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        let doomed = &changes.deleted;
        let mut doomed_now = table.load_many(txn, p, doomed).await?;
        for id in doomed {
            if let Some(cur) = doomed_now.remove(id) {
                unseen_edit(txn, &ctx, table.as_ref(), id, cur, &mut pending).await?;
            }
            let sp = txn.begin().await?;
            match table.delete(&sp, &ctx, id).await {
                Ok(deleted) => {
                    sp.commit().await?;
                    if deleted {
                        response.applied += 1;
                    } else {
                        response.unchanged += 1;
                    }
                }
                Err(e) if e.status().is_client_error() => {
                    sp.rollback().await?;
                    response.reject(name, id, e.to_problem());
                }
                Err(e) => return Err(e),
            }
        }
        if !differs.is_empty() {
            let now_state = table.load_many(txn, p, &differs).await?;
            let rows = differs
                .iter()
                .filter_map(|id| now_state.get(id))
                .filter(|c| !c.deleted)
                .map(|c| {
                    to_raw(&wire_form(
                        table.as_ref(),
                        table.hidden_columns(p, Some(&c.raw)),
                        c.raw.clone(),
                        c.server_rev,
                    ))
                })
                .collect::<ApiResult<Vec<_>>>()?;
            // The merged state may hold other devices' Wpg data: its read is logged with the
            // push (a report's regime is not in its sync row, so every report counts as Wpg).
            if let Some(kind) = crate::access::Kind::from_table(name) {
                let released: Vec<&String> = differs
                    .iter()
                    .filter(|id| {
                        now_state.get(*id).is_some_and(|c| {
                            !c.deleted
                                && crate::access::released(
                                    p,
                                    kind,
                                    &crate::access::Facts::of_team(c.team_id),
                                )
                                .is_some()
                        })
                    })
                    .collect();
                if !released.is_empty() {
                    crate::audit::record(
                        txn,
                        &p.actor(),
                        crate::audit::Entry {
                            action: "sync_push_merged",
                            record_type: kind.table(),
                            record_id: None,
                            reason: None,
                            detail: Some(json!({ "ids": released })),
                        },
                        ctx.now,
                    )
                    .await?;
                }
            }
            response.merged.insert(name.to_string(), rows);
        }
    }
    for c in &pending.conflicts {
        response.conflicts.push(ConflictNote {
            id: *c.id.as_ref(),
            table: c.table_name.as_ref().clone(),
            record_id: c.record_id.as_ref().clone(),
            field: c.field.as_ref().clone(),
            kind: c.kind.as_ref().clone(),
            applied: c.applied_value.as_ref().clone().unwrap_or(Value::Null),
            client: c.client_value.as_ref().clone().unwrap_or(Value::Null),
        });
    }
    if !pending.conflicts.is_empty() {
        sync_conflict::Entity::insert_many(pending.conflicts)
            .exec_without_returning(txn)
            .await?;
    }
    upsert_device(txn, p, |d| {
        d.last_push_at = Set(Some(now));
        if meta.clock_offset_ms.is_some() {
            d.clock_offset_ms = Set(meta.clock_offset_ms);
        }
        if meta.app_version.is_some() {
            d.app_version = Set(meta.app_version.clone());
        }
        if meta.schema_version.is_some() {
            d.schema_version = Set(meta.schema_version);
        }
    })
    .await?;
    if let Some(key) = &meta.idempotency_key {
        sync_push::ActiveModel {
            user_id: Set(p.user_id),
            idempotency_key: Set(key.clone()),
            device_id: Set(p.device_id.clone()),
            request_sha256: Set(request_sha),
            response: Set(serde_json::to_value(&response).map_err(ApiError::internal)?),
            created_at: Set(now),
        }
        .insert(txn)
        .await?;
    }
    Ok(response)
}

pub(crate) async fn upsert_device<C: ConnectionTrait>(
    conn: &C,
    p: &Principal,
    set: impl FnOnce(&mut sync_device::ActiveModel),
) -> ApiResult<()> {
    // Make sure the row exists (two requests of one device may race here), then update it.
    sync_device::Entity::insert(sync_device::ActiveModel {
        user_id: Set(p.user_id),
        device_id: Set(p.device_id.clone()),
        app_version: Set(None),
        schema_version: Set(None),
        clock_offset_ms: Set(None),
        last_push_at: Set(None),
        last_pull_at: Set(None),
        last_pulled_seq: Set(None),
        window_start: Set(None),
    })
    .on_conflict(
        sea_orm::sea_query::OnConflict::columns([
            sync_device::Column::UserId,
            sync_device::Column::DeviceId,
        ])
        .do_nothing()
        .to_owned(),
    )
    .exec_without_returning(conn)
    .await?;
    let mut am = sync_device::ActiveModel {
        user_id: sea_orm::ActiveValue::Unchanged(p.user_id),
        device_id: sea_orm::ActiveValue::Unchanged(p.device_id.clone()),
        ..Default::default()
    };
    set(&mut am);
    if am.is_changed() {
        am.update(conn).await?;
    }
    Ok(())
}

/// A canonical row as it goes on the wire: hidden columns nulled, lists as JSON strings,
/// `server_rev` added.
pub fn wire_form(
    t: &dyn SyncTable,
    hidden: &[&str],
    mut r: Map<String, Value>,
    seq: i64,
) -> Map<String, Value> {
    for col in t.columns() {
        if hidden.contains(&col.name) {
            r.insert(col.name.to_string(), Value::Null);
        } else if let Some(v) = r.get(col.name) {
            let w = wire(col.kind, v);
            r.insert(col.name.to_string(), w);
        }
    }
    r.insert("server_rev".into(), json!(seq));
    r
}

/// Whether the principal may resolve conflicts (team leads).
pub fn may_resolve(p: &Principal) -> bool {
    p.may(Action::ReviewViolation)
}

pub(crate) fn to_raw<T: Serialize>(v: &T) -> ApiResult<Box<RawValue>> {
    serde_json::value::to_raw_value(v).map_err(ApiError::internal)
}

#[cfg(test)]
mod read_tests {
    use super::*;

    const A: &str = "0190f0e2-7c1a-7cc3-a1b2-3c4d5e6f7a8b";
    const B: &str = "0190f0e2-7c1a-7cc3-a1b2-3c4d5e6f7a8c";

    fn read(body: &str) -> TablePush {
        let mut push = read_push(body.as_bytes()).expect("the envelope reads");
        assert_eq!(push.tables.len(), 1, "{push:?}");
        push.tables.remove(0)
    }

    fn ids(t: &TablePush) -> Vec<&str> {
        t.records.iter().map(|(id, _)| id.as_str()).collect()
    }

    #[test]
    fn serde_json_skips_a_lone_surrogate_when_it_only_captures_raw_json() {
        // The premise of reading records one by one: the envelope parse does not fail on it.
        let raw: Vec<Box<RawValue>> =
            serde_json::from_str(r#"[{"description":"x\ud83d"},{"d":"\udc00y"}]"#).unwrap();
        assert_eq!(raw.len(), 2);
        assert!(serde_json::from_str::<Value>(raw[0].get()).is_err());
        assert!(serde_json::from_str::<Value>(r#""\ud83d\ude00""#).is_ok());
    }

    #[test]
    fn a_lone_surrogate_refuses_its_record_alone_naming_the_field() {
        let t = read(&format!(
            r#"{{"changes":{{"violations":{{"created":[{{"id":"{A}","description":"cut \ud83d"}},{{"id":"{B}","description":"ok"}}]}}}}}}"#
        ));
        assert_eq!(ids(&t), [B]);
        assert_eq!(t.refused.len(), 1);
        assert_eq!(
            (t.refused[0].id.as_str(), t.refused[0].field.as_str()),
            (A, "description")
        );
        assert!(
            t.refused[0].message.contains("surrogate"),
            "{:?}",
            t.refused
        );
    }

    #[test]
    fn unreadable_ids_are_refused_with_an_empty_id() {
        for rec in [
            r#"{"description":"no id"}"#.to_string(),
            r#"{"id":null}"#.into(),
            r#"{"id":42}"#.into(),
            r#"{"id":""}"#.into(),
            r#"{"id":"\ud83d"}"#.into(),
            r#"{"\ud83d":1}"#.into(),
            "[1,2]".into(),
            r#""x""#.into(),
        ] {
            let t = read(&format!(
                r#"{{"changes":{{"violations":{{"created":[{rec},{{"id":"{B}"}}]}}}}}}"#
            ));
            assert_eq!(ids(&t), [B], "{rec}");
            assert_eq!(t.refused.len(), 1, "{rec}");
            assert_eq!(t.refused[0].id, "", "{rec}");
        }
    }

    #[test]
    fn non_canonical_ids_are_refused_as_sent_never_rewritten() {
        let upper = A.to_uppercase();
        let braced = format!("{{{A}}}");
        let bare = A.replace('-', "");
        for id in [upper.as_str(), braced.as_str(), bare.as_str(), "not-a-uuid"] {
            let t = read(&format!(
                r#"{{"changes":{{"violations":{{"updated":[{{"id":"{id}"}}],"deleted":["{id}"]}}}}}}"#
            ));
            assert!(t.records.is_empty() && t.deleted.is_empty(), "{id}");
            assert!(
                t.refused.iter().all(|r| r.id == id && r.field == "id"),
                "{t:?}"
            );
        }
        assert_eq!(canonical_id(A), Some(Uuid::parse_str(A).unwrap()));
        assert_eq!(canonical_id(&upper), None);
    }

    #[test]
    fn duplicates_and_created_with_deleted_are_refused() {
        let t = read(&format!(
            r#"{{"changes":{{"violations":{{"created":[{{"id":"{A}","n":1}},{{"id":"{A}","n":2}}],"updated":[{{"id":"{A}"}},{{"id":"{B}"}}],"deleted":["{B}","{B}"]}}}}}}"#
        ));
        assert_eq!(ids(&t), [A]);
        assert_eq!(t.records[0].1.get("n"), Some(&json!(1)));
        assert!(t.deleted.is_empty());
        let refused: Vec<&str> = t.refused.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(refused, [A, A, B]);
    }

    #[test]
    fn deleting_twice_is_deleting_once() {
        let t = read(&format!(
            r#"{{"changes":{{"violations":{{"deleted":["{A}","{A}",7]}}}}}}"#
        ));
        assert_eq!(t.deleted, [A]);
        assert_eq!(t.refused.len(), 1);
        assert_eq!(t.refused[0].id, "");
    }

    #[test]
    fn a_table_named_twice_is_read_as_one() {
        let t = read(&format!(
            r#"{{"changes":{{"violations":{{"created":[{{"id":"{A}"}}]}},"violations":{{"created":[{{"id":"{B}"}}]}}}}}}"#
        ));
        assert_eq!(ids(&t), [A, B]);
    }

    #[test]
    fn nul_and_repeated_fields_are_refused_per_field() {
        let t = read(&format!(
            r#"{{"changes":{{"violations":{{"created":[{{"id":"{A}","description":"a\u0000b"}},{{"id":"{B}","x":1,"x":2}}]}}}}}}"#
        ));
        assert!(t.records.is_empty());
        let fields: Vec<(&str, &str)> = t
            .refused
            .iter()
            .map(|r| (r.id.as_str(), r.field.as_str()))
            .collect();
        assert_eq!(fields, [(A, "description"), (B, "x")]);
    }

    #[test]
    fn unknown_tables_are_not_read_and_a_bad_envelope_fails() {
        let push =
            read_push(br#"{"changes":{"nope":{"created":[{"id":"\ud83d"}]},"empty":{}}}"#).unwrap();
        assert!(push.tables.is_empty());
        assert_eq!(push.ignored, ["nope"]);
        for bad in [
            r#"{"changes":[]}"#,
            r#"{"changes":{"violations":{"created":{}}}}"#,
            r#"{"changes":{"violations":{"created":[1}}}"#,
            r#"{}"#,
            r#"{"changes":{}} x"#,
            r#"{"changes":{"violations":{"deleted":["\ud83d"]}}}"#,
        ] {
            let r = read_push(bad.as_bytes());
            if bad.contains("deleted") {
                // A broken deleted id refuses that entry only.
                assert_eq!(r.unwrap().tables[0].refused.len(), 1);
            } else {
                assert!(r.unwrap_err().status().is_client_error(), "{bad}");
            }
        }
    }
}
