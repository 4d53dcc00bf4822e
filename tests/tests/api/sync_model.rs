//! Model-based test of the sync engine: random sequences of offline edits on several simulated
//! phones, pushes whose answers are lost, duplicate pushes, pulls with random page sizes, lead
//! edits on the server and deletes. Each phone behaves as WatermelonDB does (per-column client
//! wins for local changes, base revision pinned, deletions win). Invariants:
//! - after quiescence every phone holds exactly the server's view of its scope;
//! - no duplicate ids in a pull; the cursor never goes back;
//! - re-pushing a converged phone's records is a no-op that takes no sequence number;
//! - the page size does not change what a fresh phone receives;
//! - every value a phone pushed and got acknowledged is on the server or in a conflict record,
//!   unless a later acknowledged edit of the same field replaced it.

use std::collections::{BTreeMap, HashMap, HashSet};

use proptest::prelude::*;
use serde_json::{Map, Value, json};
use thor::auth::{Principal, Role};
use thor::sync::engine::{PushMeta, TableChanges};
use thor::sync::pull::{PullRequest, pull};
use thor_tests::{Backend, TestApp};

const FIELDS: &[&str] = &["description", "outcome", "category"];
const OUTCOMES: &[&str] = &["warning", "removed", "none", "police_report"];
const CATEGORIES: &[&str] = &["afval", "overig"];

#[derive(Debug, Clone)]
enum Op {
    Create {
        phone: usize,
    },
    Edit {
        phone: usize,
        pick: usize,
        field: usize,
        value: usize,
    },
    Delete {
        phone: usize,
        pick: usize,
    },
    Sync {
        phone: usize,
        page: u64,
        lose_answer: bool,
    },
    LeadEdit {
        pick: usize,
        value: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (0..3usize).prop_map(|phone| Op::Create { phone }),
        4 => (0..3usize, any::<usize>(), 0..FIELDS.len(), 0..16usize)
            .prop_map(|(phone, pick, field, value)| Op::Edit { phone, pick, field, value }),
        1 => (0..3usize, any::<usize>()).prop_map(|(phone, pick)| Op::Delete { phone, pick }),
        4 => (0..3usize, 1..6u64, prop::bool::weighted(0.2))
            .prop_map(|(phone, page, lose_answer)| Op::Sync { phone, page, lose_answer }),
        1 => (any::<usize>(), 0..16usize).prop_map(|(pick, value)| Op::LeadEdit { pick, value }),
    ]
}

#[derive(Debug, Clone, PartialEq)]
enum Local {
    Synced,
    Created,
    /// Changed columns, with the record as it was before the first local change.
    Updated(HashSet<String>, Map<String, Value>),
    Deleted,
}

#[derive(Debug, Clone)]
struct Rec {
    raw: Map<String, Value>,
    state: Local,
}

struct Phone {
    p: Principal,
    cursor: i64,
    recs: BTreeMap<String, Rec>,
}

fn value_for(field: &str, v: usize) -> Value {
    match field {
        "description" => json!(format!("tekst {v}")),
        "outcome" => json!(OUTCOMES[v % OUTCOMES.len()]),
        _ => json!(CATEGORIES[v % CATEGORIES.len()]),
    }
}

fn new_raw(n: usize) -> Map<String, Value> {
    let now = chrono::Utc::now() - chrono::Duration::minutes(3);
    json!({
        "id": uuid::Uuid::new_v4().to_string(), "category": "afval", "feitcode": null,
        "observed_at": now.timestamp_millis(), "lat": 52.4599, "lon": 4.6218, "accuracy_m": 5.0,
        "location_source": "gps", "description": format!("nieuw {n}"), "outcome": "warning",
        "status": "concept", "officer_ids": "[]"
    })
    .as_object()
    .cloned()
    .unwrap_or_default()
}

struct World {
    app: TestApp,
    phones: Vec<Phone>,
    lead: Principal,
    created: usize,
    /// (record, field) → the last acknowledged value and the seq after which it was acknowledged.
    acked: HashMap<(String, String), Value>,
}

impl World {
    async fn pull_all(&mut self, i: usize, page: u64) {
        let mut token = None;
        loop {
            let ph = &self.phones[i];
            let req = PullRequest {
                cursor: ph.cursor,
                page: token.take(),
                limit: page,
                window_days: 14,
                schema_version: Some(1),
                ..Default::default()
            };
            let s = &self.app.state;
            let res = pull(&s.db, &s.reference, &s.audit, &ph.p, req)
                .await
                .expect("pull");
            let ph = &mut self.phones[i];
            assert!(res.timestamp >= ph.cursor, "the cursor never goes back");
            if !res.has_more {
                ph.cursor = res.timestamp;
            }
            token = res.next_page.clone();
            let ch = res.changes.get("violations").cloned().unwrap_or_default();
            let updated: Vec<serde_json::Map<String, Value>> = ch
                .created
                .iter()
                .chain(ch.updated.iter())
                .map(|r| serde_json::from_str(r.get()).expect("a pulled row is a JSON object"))
                .collect();
            let mut ids = HashSet::new();
            for r in updated.iter() {
                assert!(
                    ids.insert(r["id"].as_str().unwrap().to_string()),
                    "duplicate id in a pull"
                );
            }
            for d in &ch.deleted {
                assert!(
                    ids.insert(d.clone()),
                    "an id both updated and deleted in one pull"
                );
                ph.recs.remove(d);
            }
            for r in updated {
                let id = r["id"].as_str().unwrap().to_string();
                match ph.recs.get_mut(&id) {
                    None => {
                        ph.recs.insert(
                            id,
                            Rec {
                                raw: r,
                                state: Local::Synced,
                            },
                        );
                    }
                    Some(local) => match &local.state {
                        Local::Synced => local.raw = r,
                        Local::Deleted => {}
                        Local::Created => {
                            // The create reached the server but its answer was lost: keep the
                            // local values, adopt the server's revision and derived columns.
                            let mine = local.raw.clone();
                            let server_copy = r.clone();
                            local.raw = r;
                            for f in FIELDS {
                                local.raw.insert(f.to_string(), mine[*f].clone());
                            }
                            let rev = local.raw.get("server_rev").cloned().unwrap_or(Value::Null);
                            local.raw.insert("base_rev".into(), rev);
                            local.state = Local::Updated(
                                FIELDS.iter().map(|f| f.to_string()).collect(),
                                server_copy,
                            );
                        }
                        Local::Updated(changed, _) => {
                            // WatermelonDB: server wins except locally changed columns; the app's
                            // conflictResolver keeps the base revision pinned.
                            // As SYNC.md's resolver: keep `base_rev`, pinned when the record was
                            // first changed locally; `server_rev` follows the server.
                            let base = local.raw.get("base_rev").cloned();
                            let mine = local.raw.clone();
                            local.raw = r;
                            for f in changed {
                                local.raw.insert(f.clone(), mine[f].clone());
                            }
                            local
                                .raw
                                .insert("base_rev".into(), base.unwrap_or(Value::Null));
                        }
                    },
                }
            }
            if !res.has_more {
                return;
            }
        }
    }

    async fn push_local(&mut self, i: usize, lose_answer: bool) {
        let ph = &self.phones[i];
        let mut changes = TableChanges::default();
        for (id, rec) in &ph.recs {
            match &rec.state {
                Local::Synced => {}
                Local::Created => changes.created.push(rec.raw.clone()),
                Local::Updated(..) => changes.updated.push(rec.raw.clone()),
                Local::Deleted => changes.deleted.push(id.clone()),
            }
        }
        if changes.created.is_empty() && changes.updated.is_empty() && changes.deleted.is_empty() {
            return;
        }
        let mut all = BTreeMap::new();
        all.insert("violations".to_string(), changes);
        let bytes = serde_json::to_vec(&json!({ "changes": all })).unwrap();
        let body = thor::sync::engine::read_push(&bytes).unwrap();
        let meta = PushMeta {
            last_pulled_at: Some(ph.cursor),
            ..PushMeta::default()
        };
        // Through the group commit, as the push route does.
        let res = self
            .app
            .state
            .pushes
            .push(ph.p.clone(), &bytes, body, meta)
            .await
            .expect("push");
        if lose_answer {
            return;
        }
        let rejected: HashSet<String> = res
            .experimental_rejected_ids
            .get("violations")
            .map(|v| v.iter().cloned().collect())
            .unwrap_or_default();
        let ph = &mut self.phones[i];
        let mut gone = Vec::new();
        for (id, rec) in ph.recs.iter_mut() {
            if rejected.contains(id) {
                continue;
            }
            match &rec.state {
                Local::Synced => {}
                Local::Deleted => gone.push(id.clone()),
                Local::Created => {
                    for f in FIELDS {
                        self.acked
                            .insert((id.clone(), f.to_string()), rec.raw[*f].clone());
                    }
                    rec.state = Local::Synced;
                }
                Local::Updated(changed, before) => {
                    for f in changed {
                        // Setting a field to the value it had is no change to acknowledge.
                        if before.get(f) != rec.raw.get(f) {
                            self.acked
                                .insert((id.clone(), f.clone()), rec.raw[f].clone());
                        }
                    }
                    rec.state = Local::Synced;
                }
            }
        }
        for id in gone {
            ph.recs.remove(&id);
        }
    }

    async fn sync(&mut self, i: usize, page: u64, lose_answer: bool) {
        self.pull_all(i, page).await;
        self.push_local(i, lose_answer).await;
    }

    /// A record this phone may change: its own (or any, for the team lead). Edits the server
    /// refuses stay on the phone unsynced, as WatermelonDB keeps rejected records.
    fn pick(&self, phone: usize, pick: usize) -> Option<String> {
        let ph = &self.phones[phone];
        let me = ph.p.user_id.to_string();
        let ids: Vec<&String> = ph
            .recs
            .iter()
            .filter(|(_, r)| r.state != Local::Deleted)
            .filter(|(_, r)| {
                ph.p.role == Role::Teamleider
                    || r.raw
                        .get("created_by")
                        .and_then(Value::as_str)
                        .is_none_or(|c| c == me)
            })
            .map(|(k, _)| k)
            .collect();
        if ids.is_empty() {
            None
        } else {
            Some(ids[pick % ids.len()].clone())
        }
    }

    async fn apply(&mut self, op: Op) {
        match op {
            Op::Create { phone } => {
                self.created += 1;
                let raw = new_raw(self.created);
                let id = raw["id"].as_str().unwrap().to_string();
                self.phones[phone].recs.insert(
                    id,
                    Rec {
                        raw,
                        state: Local::Created,
                    },
                );
            }
            Op::Edit {
                phone,
                pick,
                field,
                value,
            } => {
                let Some(id) = self.pick(phone, pick) else {
                    return;
                };
                let f = FIELDS[field].to_string();
                let rec = self.phones[phone].recs.get_mut(&id).unwrap();
                let before = rec.raw.clone();
                if rec.state == Local::Synced {
                    // The app pins the base when a synced record is first changed.
                    let rev = rec.raw.get("server_rev").cloned().unwrap_or(Value::Null);
                    rec.raw.insert("base_rev".into(), rev);
                }
                rec.raw.insert(f.clone(), value_for(&f, value));
                match &mut rec.state {
                    Local::Synced => rec.state = Local::Updated(HashSet::from([f]), before),
                    Local::Updated(set, _) => {
                        set.insert(f);
                    }
                    _ => {}
                }
            }
            Op::Delete { phone, pick } => {
                let Some(id) = self.pick(phone, pick) else {
                    return;
                };
                let rec = self.phones[phone].recs.get_mut(&id).unwrap();
                if rec.state == Local::Created {
                    self.phones[phone].recs.remove(&id);
                } else {
                    rec.state = Local::Deleted;
                }
            }
            Op::Sync {
                phone,
                page,
                lose_answer,
            } => self.sync(phone, page, lose_answer).await,
            Op::LeadEdit { pick, value } => {
                let ids = thor_ids(&self.app).await;
                if ids.is_empty() {
                    return;
                }
                let id: uuid::Uuid = ids[pick % ids.len()].parse().unwrap();
                let patch = thor::violations::ViolationPatch {
                    description: Some(format!("teamleider {value}")),
                    ..Default::default()
                };
                let r = thor::violations::store::update(
                    &self.app.state.db,
                    &self.app.state.reference,
                    &self.lead,
                    id,
                    patch,
                    chrono::Utc::now(),
                )
                .await;
                if r.is_ok() {
                    self.acked.insert(
                        (id.to_string(), "description".into()),
                        json!(format!("teamleider {value}")),
                    );
                }
            }
        }
    }
}

async fn thor_ids(app: &TestApp) -> Vec<String> {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
    use thor::violations::entity::violation;
    violation::Entity::find()
        .filter(violation::Column::DeletedSeq.is_null())
        .order_by_asc(violation::Column::Id)
        .all(&app.state.db.read)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.id.to_string())
        .collect()
}

fn principal(u: &thor::auth::entities::app_user::Model, role: Role, device: &str) -> Principal {
    Principal {
        user_id: u.id,
        username: u.username.clone(),
        role,
        team_id: u.team_id,
        wpg_authorised: u.wpg_authorised,
        device_id: device.into(),
        token_id: uuid::Uuid::nil(),
        seen_seq: 0,
    }
}

/// What the server holds, as a fresh full pull gives it (page size `page`).
async fn server_view(w: &World, p: &Principal, page: u64) -> BTreeMap<String, Map<String, Value>> {
    let mut out = BTreeMap::new();
    let mut token = None;
    loop {
        let req = PullRequest {
            page: token.take(),
            limit: page,
            window_days: 14,
            ..Default::default()
        };
        let s = &w.app.state;
        let res = pull(&s.db, &s.reference, &s.audit, p, req).await.unwrap();
        token = res.next_page.clone();
        let ch = res.changes.get("violations").cloned().unwrap_or_default();
        for d in ch.deleted {
            out.remove(&d);
        }
        for r in ch.created.into_iter().chain(ch.updated) {
            let r: serde_json::Map<String, Value> = serde_json::from_str(r.get()).unwrap();
            out.insert(r["id"].as_str().unwrap().to_string(), r);
        }
        if !res.has_more {
            return out;
        }
    }
}

async fn run(backend: Backend, ops: Vec<Op>) {
    let app = TestApp::spawn(backend).await;
    let users = thor::demo::ensure_accounts(&app.state).await.unwrap();
    let by = |name: &str| users.iter().find(|u| u.username == name).unwrap().clone();
    let boa = by("handhaver");
    let lead_user = by("teamleider");
    let phones = vec![
        Phone {
            p: principal(&boa, Role::Handhaver, "phone-1"),
            cursor: 0,
            recs: BTreeMap::new(),
        },
        Phone {
            p: principal(&by("boa.devries"), Role::Handhaver, "phone-2"),
            cursor: 0,
            recs: BTreeMap::new(),
        },
        Phone {
            p: principal(&lead_user, Role::Teamleider, "phone-lead"),
            cursor: 0,
            recs: BTreeMap::new(),
        },
    ];
    let mut w = World {
        lead: principal(&lead_user, Role::Teamleider, "desk"),
        app,
        phones,
        created: 0,
        acked: HashMap::new(),
    };
    for op in ops {
        w.apply(op).await;
    }
    // Quiescence: everyone syncs until nothing is left to push, then pulls once more.
    for _ in 0..3 {
        for i in 0..w.phones.len() {
            w.sync(i, 7, false).await;
        }
    }
    for i in 0..w.phones.len() {
        w.pull_all(i, 7).await;
    }
    let view_1 = server_view(&w, &w.lead.clone(), 1).await;
    let view_big = server_view(&w, &w.lead.clone(), 1000).await;
    assert_eq!(view_1, view_big, "the page size does not change the result");
    for ph in &w.phones {
        let local: BTreeMap<String, Map<String, Value>> = ph
            .recs
            .iter()
            .filter(|(_, r)| r.state != Local::Deleted)
            .map(|(k, r)| (k.clone(), r.raw.clone()))
            .collect();
        let unsynced: Vec<_> = ph
            .recs
            .iter()
            .filter(|(_, r)| r.state != Local::Synced)
            .map(|(k, r)| (k, &r.state))
            .collect();
        assert!(
            unsynced.is_empty(),
            "{}: still unsynced after quiescence: {unsynced:?}",
            ph.p.device_id
        );
        assert_eq!(
            local.keys().collect::<Vec<_>>(),
            view_big.keys().collect::<Vec<_>>(),
            "{}: same records",
            ph.p.device_id
        );
        for (id, row) in &local {
            // `server_rev` may lag on a phone whose own push changed the record last: the phone
            // has those values; only a field another writer changes is sent to it again.
            for f in FIELDS.iter().chain(["status"].iter()) {
                assert_eq!(
                    row.get(*f),
                    view_big[id].get(*f),
                    "{}: {id}.{f}",
                    ph.p.device_id
                );
            }
        }
    }
    // Acknowledged values are on the server or in a conflict record (or replaced later by
    // another acknowledged edit, which is then the one remembered).
    let conflicts: Vec<thor::sync::entities::sync_conflict::Model> = {
        use sea_orm::EntityTrait;
        thor::sync::entities::sync_conflict::Entity::find()
            .all(&w.app.state.db.read)
            .await
            .unwrap()
    };
    for ((id, field), v) in &w.acked {
        let Some(row) = view_big.get(id) else {
            continue;
        };
        let current = row.get(field).cloned().unwrap_or(Value::Null);
        let in_conflict = conflicts.iter().any(|c| {
            &c.record_id == id
                && (c.field.as_deref() == Some(field.as_str())
                    && (c.client_value.as_ref() == Some(v) || c.server_value.as_ref() == Some(v)))
        });
        assert!(
            current == *v || in_conflict,
            "{id}.{field}: acknowledged {v} is neither current ({current}) nor in a conflict"
        );
    }
    // A re-push of a converged phone changes nothing and takes no sequence number.
    let seq = w.app.last_seq().await;
    for i in 0..w.phones.len() {
        for rec in w.phones[i].recs.values_mut() {
            let rev = rec.raw.get("server_rev").cloned().unwrap_or(Value::Null);
            rec.raw.insert("base_rev".into(), rev);
            rec.state = Local::Updated(
                FIELDS.iter().map(|f| f.to_string()).collect(),
                rec.raw.clone(),
            );
        }
        w.push_local(i, false).await;
    }
    assert_eq!(w.app.last_seq().await, seq, "a re-push is a no-op");
    w.app.stop().await;
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, max_shrink_iters: 50, ..ProptestConfig::default() })]
    #[test]
    fn sync_converges_and_loses_nothing(ops in prop::collection::vec(op(), 1..40)) {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(run(Backend::Sqlite, ops.clone()));
        if let Some(pg) = thor_tests::postgres() {
            rt.block_on(run(pg, ops));
        }
    }
}
