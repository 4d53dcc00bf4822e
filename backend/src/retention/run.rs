//! One retention run: every record's stage set from its date and the terms, and what is due
//! destroyed.
//!
//! Safe to interrupt and to repeat: each step is its own short transaction and changes only
//! what is not yet where the terms put it, so a second run after a kill finishes the first and
//! a run after a finished one changes nothing. The photo bytes of a destroyed record are deleted
//! after the rows' transaction commits; a run killed between the two leaves bytes that no row
//! names, and the next run deletes them (it sweeps the photos of destruction records newer than
//! the last finished run). With several instances on one database, a lease row lets one run at
//! a time; the others report that they skipped.

use chrono::{DateTime, Duration, Utc};
use sea_orm::sea_query::{Alias, Cond, Expr, ExprTrait, Query, SelectStatement};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QuerySelect, TransactionTrait,
};
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{TARGETS, Target, Terms};
use crate::access::Stage;
use crate::audit::{self, Actor, Entry};
use crate::db::Db;
use crate::photos::blob::{BlobStore, Derivative};
use crate::photos::entity::photo;

/// Records destroyed per transaction.
const CHUNK: usize = 100;
/// How long a run's lease lasts without renewal (renewed after every step).
const LEASE: Duration = Duration::minutes(10);

/// What one class of record changes (or, in a dry run, would change).
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Change {
    pub key: &'static str,
    pub to_active: u64,
    pub to_restricted: u64,
    pub to_removed: u64,
    pub destroyed: u64,
    /// Photos destroyed with their records.
    pub photos: u64,
    /// Records under a legal hold, left at their stage.
    pub held: u64,
}

impl Change {
    pub fn total(&self) -> u64 {
        self.to_active + self.to_restricted + self.to_removed + self.destroyed
    }
}

/// The outcome of a run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The run's id (none for a dry run or a skipped run).
    pub run_id: Option<Uuid>,
    pub dry_run: bool,
    /// The moment the terms were counted from.
    pub as_of: DateTime<Utc>,
    pub terms: String,
    pub changes: Vec<Change>,
    /// Photo objects deleted from the store (including those left by an interrupted run).
    pub objects_deleted: u64,
    /// Set when another instance holds the lease and this run did nothing.
    pub skipped: Option<String>,
}

/// How a run shows its progress (the CLI draws a bar; `serve` logs at the end).
pub trait Progress: Send + Sync {
    fn start(&self, _total: u64) {}
    fn advance(&self, _n: u64) {}
}

/// No progress shown.
pub struct Quiet;
impl Progress for Quiet {}

/// What a run needs.
pub struct Run<'a> {
    pub db: &'a Db,
    pub blobs: &'a BlobStore,
    /// The wijken and buurten, for the statistics of a round whose fixes are destroyed.
    pub reference: &'a crate::reference::Reference,
    pub terms: &'a Terms,
    /// The moment stages are counted from (now, outside tests).
    pub as_of: DateTime<Utc>,
    pub dry_run: bool,
    /// Who runs it, for the audit log: `scheduler`, `cli` ….
    pub actor: &'a str,
}

impl Run<'_> {
    pub async fn execute(&self, progress: &dyn Progress) -> anyhow::Result<Report> {
        let started = Utc::now();
        let mut report = Report {
            run_id: None,
            dry_run: self.dry_run,
            as_of: self.as_of,
            terms: self.terms.to_string(),
            changes: Vec::new(),
            objects_deleted: 0,
            skipped: None,
        };
        let conn = &self.db.write;
        let plan = self.plan().await?;
        if self.dry_run {
            report.changes = plan;
            return Ok(report);
        }
        let holder = Uuid::new_v4().to_string();
        if !take_lease(conn, &holder, LEASE).await? {
            report.skipped = Some("another instance is running retention".into());
            return Ok(report);
        }
        let run_id = Uuid::new_v4();
        report.run_id = Some(run_id);
        progress.start(plan.iter().map(Change::total).sum());
        let result = self
            .apply(run_id, &holder, plan, progress, &mut report)
            .await;
        // Answers cached by sequence (list pages, briefings) must not show what left use.
        let bumped = if report.changes.iter().any(|c| c.total() > 0) {
            bump(self.db).await
        } else {
            Ok(())
        };
        release_lease(conn, &holder).await?;
        result?;
        bumped?;
        let finished = Utc::now();
        let changes = serde_json::to_value(&report.changes)?;
        conn.execute(
            Query::insert()
                .into_table("retention_run")
                .columns([
                    "id",
                    "started_at",
                    "finished_at",
                    "as_of",
                    "actor",
                    "terms",
                    "changes",
                ])
                .values([
                    run_id.into(),
                    started.into(),
                    finished.into(),
                    self.as_of.into(),
                    self.actor.into(),
                    report.terms.clone().into(),
                    changes.clone().into(),
                ])
                .map_err(|e| anyhow::anyhow!("building the run record: {e}"))?,
        )
        .await?;
        audit::record(
            conn,
            &Actor::system(self.actor),
            Entry::new("retention_run", "retention_run", run_id).detail(json!({
                "as_of": self.as_of,
                "terms": report.terms,
                "changes": changes,
                "objects_deleted": report.objects_deleted,
            })),
            finished,
        )
        .await?;
        Ok(report)
    }

    /// What the terms would change now, per class.
    async fn plan(&self) -> anyhow::Result<Vec<Change>> {
        let conn = &self.db.write;
        let mut out = Vec::new();
        for t in &TARGETS {
            let mut c = Change {
                key: t.key,
                ..Change::default()
            };
            for stage in Stage::ALL {
                let Some(band) = self.band(t, Some(stage)) else {
                    continue;
                };
                let n = count(conn, t, band.add(stage_differs(stage)).add(not_held(t))).await?;
                match stage {
                    Stage::Active => c.to_active = n,
                    Stage::Restricted => c.to_restricted = n,
                    Stage::Removed => c.to_removed = n,
                }
            }
            if let Some(due) = self.band(t, None) {
                c.destroyed = count(conn, t, due.clone().add(not_held(t))).await?;
            }
            c.held = count(conn, t, Cond::all().add(held(t))).await?;
            out.push(c);
        }
        Ok(out)
    }

    /// The rows of a class whose date puts them at `stage` (`None`: due for destruction).
    fn band(&self, t: &Target, stage: Option<Stage>) -> Option<Cond> {
        let term = self.terms.of(t);
        let cut = |days: u32| self.as_of - Duration::days(i64::from(days));
        let date = || Expr::col(Alias::new(t.date_col));
        let mut c = Cond::all();
        if let Some(r) = t.regime_filter {
            c = c.add(Expr::col("privacy_regime").eq(r));
        }
        let destroyed = cut(term.destroyed);
        let band = match stage {
            None => c.add(date().lt(destroyed)),
            Some(Stage::Active) => match term.restricted {
                Some(r) => c.add(date().gte(cut(r))),
                None => c.add(date().gte(destroyed)),
            },
            Some(Stage::Restricted) => {
                let (r, v) = (term.restricted?, term.removed?);
                c.add(date().lt(cut(r))).add(date().gte(cut(v)))
            }
            Some(Stage::Removed) => {
                let v = term.removed?;
                c.add(date().lt(cut(v))).add(date().gte(destroyed))
            }
        };
        Some(band)
    }

    async fn apply(
        &self,
        run_id: Uuid,
        holder: &str,
        plan: Vec<Change>,
        progress: &dyn Progress,
        report: &mut Report,
    ) -> anyhow::Result<()> {
        let conn = &self.db.write;
        report.objects_deleted += sweep_interrupted(conn, self.blobs).await?;
        for (t, planned) in TARGETS.iter().zip(plan) {
            let mut c = Change {
                key: t.key,
                held: planned.held,
                ..Change::default()
            };
            for stage in Stage::ALL {
                let Some(band) = self.band(t, Some(stage)) else {
                    continue;
                };
                let mut stmt = Query::update();
                stmt.table(Alias::new(t.table))
                    .value(Alias::new("retention_stage"), stage as i16)
                    .cond_where(band.add(stage_differs(stage)).add(not_held(t)));
                let n = conn.execute(&stmt).await?.rows_affected();
                match stage {
                    Stage::Active => c.to_active = n,
                    Stage::Restricted => c.to_restricted = n,
                    Stage::Removed => c.to_removed = n,
                }
                progress.advance(n);
                renew_lease(conn, holder).await?;
            }
            if let Some(due) = self.band(t, None) {
                loop {
                    let mut q = Query::select();
                    q.column("id")
                        .from(Alias::new(t.table))
                        .cond_where(due.clone().add(not_held(t)))
                        .limit(CHUNK as u64);
                    let ids: Vec<Uuid> = conn
                        .query_all(&q)
                        .await?
                        .iter()
                        .map(|r| r.try_get::<Uuid>("", "id"))
                        .collect::<Result<_, _>>()?;
                    if ids.is_empty() {
                        break;
                    }
                    if t.kind == crate::access::Kind::TrackSegment {
                        keep_round_stats(conn, self.reference, &ids).await?;
                    }
                    let (photos, hashes) = destroy(self.db, t, &ids, run_id, self.actor).await?;
                    c.destroyed += ids.len() as u64;
                    c.photos += photos;
                    report.objects_deleted +=
                        delete_unreferenced(conn, self.blobs, &hashes).await?;
                    progress.advance(ids.len() as u64);
                    renew_lease(conn, holder).await?;
                }
            }
            report.changes.push(c);
        }
        Ok(())
    }
}

async fn bump(db: &Db) -> Result<(), DbErr> {
    let txn = crate::sync::begin_write(db).await?;
    crate::sync::bump(&txn).await?;
    txn.commit().await
}

fn stage_differs(stage: Stage) -> Expr {
    Expr::col("retention_stage").ne(stage as i16)
}

fn holds(t: &Target) -> SelectStatement {
    Query::select()
        .column("record_id")
        .from("legal_hold")
        .and_where(Expr::col("table_name").eq(t.kind.table()))
        .and_where(Expr::col("lifted_at").is_null())
        .to_owned()
}

fn not_held(t: &Target) -> Expr {
    Expr::col("id").not_in_subquery(holds(t))
}

fn held(t: &Target) -> Cond {
    let mut c = Cond::all().add(Expr::col("id").in_subquery(holds(t)));
    if let Some(r) = t.regime_filter {
        c = c.add(Expr::col("privacy_regime").eq(r));
    }
    c
}

async fn count<C: ConnectionTrait>(conn: &C, t: &Target, cond: Cond) -> Result<u64, DbErr> {
    let mut q = Query::select();
    q.expr_as(Expr::col("id").count(), "n")
        .from(Alias::new(t.table))
        .cond_where(cond);
    let n: i64 = match conn.query_one(&q).await? {
        Some(r) => r.try_get("", "n")?,
        None => 0,
    };
    Ok(u64::try_from(n).unwrap_or(0))
}

/// Destroys records of one class in one transaction: their rows, history, conflicts, officers,
/// duplicate marks and photos' rows, leaving a destruction record each. Returns the number of
/// photos and their hashes (whose bytes the caller deletes once nothing else names them).
async fn destroy(
    db: &Db,
    t: &Target,
    ids: &[Uuid],
    run_id: Uuid,
    actor: &str,
) -> anyhow::Result<(u64, Vec<String>)> {
    let now = Utc::now();
    let txn = db.write.begin().await?;
    let wire = t.kind.table();
    let rows = contents(&txn, t, ids).await?;
    // Photos hang under a report or a youth sighting; no other kind has any.
    let photo_of = match t.kind {
        crate::access::Kind::Violation => Some(photo::Column::ViolationId),
        crate::access::Kind::YouthObservation => Some(photo::Column::ObservationId),
        _ => None,
    };
    let photos = match photo_of {
        Some(col) => {
            photo::Entity::find()
                .filter(col.is_in(ids.iter().copied()))
                .all(&txn)
                .await?
        }
        None => Vec::new(),
    };
    let photo_ids: Vec<String> = photos.iter().map(|p| p.id.to_string()).collect();
    let record_ids: Vec<String> = ids.iter().map(Uuid::to_string).collect();
    for (table, of) in [
        (crate::photos::store::TABLE, &photo_ids),
        (wire, &record_ids),
    ] {
        if of.is_empty() {
            continue;
        }
        for name in ["record_history", "sync_conflict"] {
            txn.execute(
                Query::delete()
                    .from_table(Alias::new(name))
                    .and_where(Expr::col("table_name").eq(table))
                    .and_where(Expr::col("record_id").is_in(of.iter().cloned())),
            )
            .await?;
        }
    }
    if !photos.is_empty() {
        photo::Entity::delete_many()
            .filter(photo::Column::Id.is_in(photos.iter().map(|p| p.id)))
            .exec(&txn)
            .await?;
    }
    if t.kind == crate::access::Kind::Round {
        txn.execute(
            Query::delete()
                .from_table("round_stats")
                .and_where(Expr::col("round_id").is_in(ids.iter().copied())),
        )
        .await?;
    }
    if t.table == "violation" {
        for (table, cols) in [
            ("violation_officer", &["violation_id"][..]),
            ("violation_duplicate", &["violation_id", "duplicate_of"][..]),
            // The case goes with its report: its steps and every version of its documents.
            ("case_step", &["violation_id"][..]),
            ("case_document", &["violation_id"][..]),
        ] {
            let mut any = Cond::any();
            for col in cols {
                any = any.add(Expr::col(Alias::new(*col)).is_in(ids.iter().copied()));
            }
            txn.execute(
                Query::delete()
                    .from_table(Alias::new(table))
                    .cond_where(any),
            )
            .await?;
        }
    }
    txn.execute(
        Query::delete()
            .from_table(Alias::new(t.table))
            .and_where(Expr::col("id").is_in(ids.iter().copied())),
    )
    .await?;
    let mut ins = Query::insert();
    ins.into_table("destruction_record").columns([
        "id",
        "run_id",
        "destroyed_at",
        "table_name",
        "record_id",
        "team_id",
        "occurred_at",
        "regime",
        "content_sha256",
        "photos",
    ]);
    for r in &rows {
        let of_this: Vec<Value> = photos
            .iter()
            .filter(|p| p.violation_id == Some(r.id) || p.observation_id == Some(r.id))
            .map(|p| json!({ "id": p.id, "sha256": p.sha256 }))
            .collect();
        ins.values([
            Uuid::new_v4().into(),
            run_id.into(),
            now.into(),
            wire.into(),
            r.id.into(),
            r.team_id.into(),
            r.occurred_at.into(),
            r.regime.clone().into(),
            r.sha256.clone().into(),
            Value::Array(of_this).into(),
        ])
        .map_err(|e| anyhow::anyhow!("building the destruction records: {e}"))?;
    }
    if !rows.is_empty() {
        txn.execute(&ins).await?;
    }
    audit::record(
        &txn,
        &Actor::system(actor),
        Entry {
            action: "destroy",
            record_type: wire,
            record_id: None,
            reason: Some("retention term ended".into()),
            detail: Some(json!({ "run": run_id, "ids": record_ids, "photos": photo_ids })),
        },
        now,
    )
    .await?;
    txn.commit().await?;
    let hashes = photos.into_iter().map(|p| p.sha256).collect();
    Ok((photo_ids.len() as u64, hashes))
}

/// Before the raw fixes of these segments go, the statistics of their rounds (distance, time,
/// checkpoints, wijken) are derived from all the rounds' fixes and kept with the round, once:
/// the round outlives its track (AVG: the fixes are the intrusive part).
async fn keep_round_stats<C: ConnectionTrait>(
    conn: &C,
    reference: &crate::reference::Reference,
    segment_ids: &[Uuid],
) -> anyhow::Result<()> {
    use crate::records::kinds::{ROUNDS, SEGMENTS};
    use crate::records::store;
    let detail = |e: crate::error::ApiError| anyhow::anyhow!("{}", e.to_problem().detail);
    let segments = store::load_many(conn, &SEGMENTS, segment_ids, false)
        .await
        .map_err(detail)?;
    let mut rounds: Vec<Uuid> = segments.iter().filter_map(|s| s.parent_id).collect();
    rounds.sort();
    rounds.dedup();
    for round_id in rounds {
        let mut kept = Query::select();
        kept.column("round_id")
            .from("round_stats")
            .and_where(Expr::col("round_id").eq(round_id));
        if conn.query_one(&kept).await?.is_some() {
            continue;
        }
        let Some(round) = store::load(conn, &ROUNDS, round_id, false)
            .await
            .map_err(detail)?
        else {
            continue;
        };
        let mut q = Query::select();
        q.columns(store::COLS.iter().copied())
            .from("track_segment")
            .and_where(Expr::col("parent_id").eq(round_id))
            .and_where(Expr::col("deleted_seq").is_null());
        let all = store::query(conn, &q).await.map_err(detail)?;
        let docs: Vec<_> = all.iter().map(|s| &s.data).collect();
        let stats = crate::rounds::stats(
            &round.data,
            &docs,
            reference,
            &crate::rounds::derive::Params::default(),
        );
        conn.execute(
            Query::insert()
                .into_table("round_stats")
                .columns(["round_id", "stats", "kept_at"])
                .values([
                    round_id.into(),
                    serde_json::to_value(&stats)?.into(),
                    Utc::now().into(),
                ])
                .map_err(|e| anyhow::anyhow!("building the round's statistics: {e}"))?,
        )
        .await?;
    }
    Ok(())
}

/// The statistics kept for a round whose fixes were destroyed.
pub async fn kept_round_stats<C: ConnectionTrait>(
    conn: &C,
    round_id: Uuid,
) -> Result<Option<crate::rounds::derive::RoundStats>, DbErr> {
    let mut q = Query::select();
    q.column("stats")
        .from("round_stats")
        .and_where(Expr::col("round_id").eq(round_id));
    let Some(row) = conn.query_one(&q).await? else {
        return Ok(None);
    };
    let v: Value = row.try_get("", "stats")?;
    Ok(serde_json::from_value(v).ok())
}

/// What a destruction record keeps of one record.
struct Content {
    id: Uuid,
    team_id: Option<Uuid>,
    occurred_at: DateTime<Utc>,
    regime: String,
    sha256: String,
}

fn sha256_of(doc: &serde_json::Map<String, Value>) -> String {
    hex::encode(Sha256::digest(
        serde_json::to_vec(doc).unwrap_or_default().as_slice(),
    ))
}

async fn contents<C: ConnectionTrait>(
    conn: &C,
    t: &Target,
    ids: &[Uuid],
) -> anyhow::Result<Vec<Content>> {
    use crate::violations::entity::violation;
    if t.table == "violation" {
        let rows = violation::Entity::find()
            .filter(violation::Column::Id.is_in(ids.iter().copied()))
            .all(conn)
            .await?;
        return Ok(rows
            .iter()
            .map(|m| Content {
                id: m.id,
                team_id: m.team_id,
                occurred_at: m.observed_at,
                regime: m.privacy_regime.clone(),
                sha256: sha256_of(&crate::violations::sync::canonical_row(m)),
            })
            .collect());
    }
    let mut q = Query::select();
    q.columns(crate::records::store::COLS.iter().copied())
        .from(Alias::new(t.table))
        .and_where(Expr::col("id").is_in(ids.iter().copied()));
    let rows = crate::records::store::query(conn, &q)
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.to_problem().detail))?;
    Ok(rows
        .iter()
        .map(|r| Content {
            id: r.id,
            team_id: r.team_id,
            occurred_at: r.occurred_at,
            regime: if t.wpg { "wpg" } else { "avg" }.into(),
            sha256: sha256_of(&crate::records::store::canonical_row(r)),
        })
        .collect())
}

/// Deletes the original and derivatives of each hash that no photo row names any more (the same
/// bytes may belong to another report's photo). Returns the objects deleted.
async fn delete_unreferenced<C: ConnectionTrait>(
    conn: &C,
    blobs: &BlobStore,
    hashes: &[String],
) -> anyhow::Result<u64> {
    let mut n = 0;
    for h in hashes {
        let still = photo::Entity::find()
            .filter(photo::Column::Sha256.eq(h.as_str()))
            .select_only()
            .column(photo::Column::Id)
            .into_tuple::<Uuid>()
            .one(conn)
            .await?;
        if still.is_some() {
            continue;
        }
        for key in [
            BlobStore::original_key(h),
            BlobStore::derivative_key(h, Derivative::Thumbnail),
            BlobStore::derivative_key(h, Derivative::Preview),
        ] {
            if blobs.exists(&key).await? {
                blobs.delete(&key).await?;
                n += 1;
            }
        }
    }
    Ok(n)
}

/// The photos of records destroyed since the last finished run: a run killed after its rows'
/// transaction and before deleting the bytes left them.
async fn sweep_interrupted<C: ConnectionTrait>(conn: &C, blobs: &BlobStore) -> anyhow::Result<u64> {
    let mut last = Query::select();
    last.expr_as(Expr::col("finished_at").max(), "at")
        .from("retention_run");
    let since: Option<DateTime<Utc>> = match conn.query_one(&last).await? {
        Some(r) => r.try_get("", "at")?,
        None => None,
    };
    let mut q = Query::select();
    q.column("photos").from("destruction_record");
    if let Some(s) = since {
        q.and_where(Expr::col("destroyed_at").gt(s));
    }
    let mut hashes = Vec::new();
    for row in conn.query_all(&q).await? {
        let photos: Value = row.try_get("", "photos")?;
        for p in photos.as_array().into_iter().flatten() {
            if let Some(h) = p.get("sha256").and_then(Value::as_str) {
                hashes.push(h.to_string());
            }
        }
    }
    delete_unreferenced(conn, blobs, &hashes).await
}

/// Takes (or renews) the run's lease for `term`: true when no other holder has an unexpired one.
pub async fn take_lease<C: ConnectionTrait>(
    conn: &C,
    holder: &str,
    term: Duration,
) -> Result<bool, DbErr> {
    let now = Utc::now();
    let mut ins = Query::insert();
    ins.into_table("retention_lease")
        .columns(["id", "holder", "until"])
        .values([1.into(), "".into(), (now - Duration::seconds(1)).into()])
        .map_err(|e| DbErr::Custom(format!("building the lease: {e}")))?
        .on_conflict(
            sea_orm::sea_query::OnConflict::column("id")
                .do_nothing()
                .to_owned(),
        );
    conn.execute(&ins).await?;
    let taken = conn
        .execute(
            Query::update()
                .table("retention_lease")
                .value(Alias::new("holder"), holder)
                .value(Alias::new("until"), now + term)
                .and_where(Expr::col("id").eq(1))
                .cond_where(
                    Cond::any()
                        .add(Expr::col("until").lt(now))
                        .add(Expr::col("holder").eq(holder)),
                ),
        )
        .await?;
    Ok(taken.rows_affected() == 1)
}

async fn renew_lease<C: ConnectionTrait>(conn: &C, holder: &str) -> Result<(), DbErr> {
    conn.execute(
        Query::update()
            .table("retention_lease")
            .value(Alias::new("until"), Utc::now() + LEASE)
            .and_where(Expr::col("id").eq(1))
            .and_where(Expr::col("holder").eq(holder)),
    )
    .await?;
    Ok(())
}

async fn release_lease<C: ConnectionTrait>(conn: &C, holder: &str) -> Result<(), DbErr> {
    conn.execute(
        Query::update()
            .table("retention_lease")
            .value(Alias::new("until"), Utc::now() - Duration::seconds(1))
            .and_where(Expr::col("id").eq(1))
            .and_where(Expr::col("holder").eq(holder)),
    )
    .await?;
    Ok(())
}

/// One finished run, as `retention_run` keeps it.
#[derive(Debug, Clone, Serialize)]
pub struct RunRecord {
    pub id: Uuid,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub as_of: DateTime<Utc>,
    pub actor: String,
    pub terms: String,
    /// The run's [`Change`]s, as stored.
    pub changes: Value,
}

/// The runs started in `[from, to)`, oldest first (for the audit report).
pub async fn runs<C: ConnectionTrait>(
    conn: &C,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<RunRecord>, DbErr> {
    let mut q = Query::select();
    q.columns([
        "id",
        "started_at",
        "finished_at",
        "as_of",
        "actor",
        "terms",
        "changes",
    ])
    .from("retention_run")
    .and_where(Expr::col("started_at").gte(from))
    .and_where(Expr::col("started_at").lt(to))
    .order_by("started_at", sea_orm::sea_query::Order::Asc);
    conn.query_all(&q)
        .await?
        .iter()
        .map(|r| {
            Ok(RunRecord {
                id: r.try_get("", "id")?,
                started_at: r.try_get("", "started_at")?,
                finished_at: r.try_get("", "finished_at")?,
                as_of: r.try_get("", "as_of")?,
                actor: r.try_get("", "actor")?,
                terms: r.try_get("", "terms")?,
                changes: r.try_get("", "changes")?,
            })
        })
        .collect()
}
