//! The evidence an auditor asks for, from thor's own data (`thor audit report --from --to`).
//!
//! NOREA's "Handreiking Privacy audit Wpg voor boa's" wants seven of its controls shown over the
//! whole four-year period; the ones thor's data can show are here, for the period asked:
//! - who had the Wpg authorisation when (every account with it or a BOA role, from its creation
//!   to its deactivation), and the account events of the period;
//! - that the log is complete: the hash chain walked (`audit::chain::verify`), the lines of the
//!   period per action;
//! - the retention runs and what they destroyed (control #4: destruction);
//! - legal holds placed, lifted and open;
//! - the disclosure register's totals per recipient, purpose and legal basis (Wpg art. 25);
//! - the reads of records past their active stage, with their stated purposes.
//!
//! Reads only; the report itself is audit-logged by its caller.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, SecondsFormat, Utc};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query};
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder};
use serde::Serialize;
use uuid::Uuid;

use super::entity as line;
use super::register::entity as register;
use crate::auth::entities::app_user;

#[derive(Debug, Serialize)]
pub struct AuditReport {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub generated_at: DateTime<Utc>,
    pub chain: Chain,
    /// Lines written in the period, per action.
    pub lines_by_action: BTreeMap<String, u64>,
    pub lines_in_period: u64,
    pub authorisations: Vec<Authorisation>,
    pub account_events: Vec<Event>,
    pub retention_runs: Vec<crate::retention::run::RunRecord>,
    /// Records destroyed in the period, per kind.
    pub destroyed: BTreeMap<String, u64>,
    pub holds_placed: u64,
    pub holds_lifted: u64,
    pub holds_open: u64,
    pub disclosures: Vec<DisclosureTotal>,
    pub archive_reads: Vec<Event>,
}

/// The state of the hash chain now.
#[derive(Debug, Serialize)]
pub struct Chain {
    pub holds: bool,
    pub sealed: u64,
    pub head: Option<String>,
    pub unsealed: u64,
    pub breaks: Vec<String>,
}

/// An account that could read Wpg data in full, and for how long.
#[derive(Debug, Serialize)]
pub struct Authorisation {
    pub username: String,
    pub display_name: String,
    pub role: String,
    /// `appointment` (a BOA: handhaver, jeugdboa) or `authorisation` (`wpg_authorised`).
    pub by: &'static str,
    pub since: DateTime<Utc>,
    /// When it was deactivated (still active: none).
    pub until: Option<DateTime<Utc>>,
}

/// One audit line, as the report shows it.
#[derive(Debug, Serialize)]
pub struct Event {
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub record_type: String,
    pub record_id: Option<String>,
    pub reason: Option<String>,
}

/// Provisions to one recipient for one purpose and legal basis.
#[derive(Debug, Serialize)]
pub struct DisclosureTotal {
    pub recipient: String,
    pub purpose: String,
    pub legal_basis: String,
    pub provisions: u64,
    pub subjects: u64,
}

fn event(l: &line::Model) -> Event {
    Event {
        at: l.at,
        actor: l.actor.clone().unwrap_or_default(),
        action: l.action.clone(),
        record_type: l.record_type.clone(),
        record_id: l.record_id.clone(),
        reason: l.reason.clone(),
    }
}

async fn lines<C: ConnectionTrait>(
    conn: &C,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    filter: impl FnOnce(sea_orm::Select<line::Entity>) -> sea_orm::Select<line::Entity>,
) -> Result<Vec<line::Model>, DbErr> {
    filter(
        line::Entity::find()
            .filter(line::Column::At.gte(from))
            .filter(line::Column::At.lt(to)),
    )
    .order_by_asc(line::Column::Id)
    .all(conn)
    .await
}

/// Gathers the report for `[from, to)`.
pub async fn build<C: ConnectionTrait>(
    conn: &C,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<AuditReport, DbErr> {
    let verdict = super::chain::verify(conn, None).await?;
    let chain = Chain {
        holds: verdict.holds(),
        sealed: verdict.sealed,
        head: verdict.head.as_ref().map(ToString::to_string),
        unsealed: verdict.unsealed,
        breaks: verdict.breaks.iter().map(ToString::to_string).collect(),
    };

    let mut by_action: BTreeMap<String, u64> = BTreeMap::new();
    let mut q = Query::select();
    q.column("action")
        .expr_as(Expr::col("id").count(), "n")
        .from("audit_log")
        .and_where(Expr::col("at").gte(from))
        .and_where(Expr::col("at").lt(to))
        .group_by_col(Alias::new("action"));
    for r in conn.query_all(&q).await? {
        let n: i64 = r.try_get("", "n")?;
        by_action.insert(r.try_get("", "action")?, u64::try_from(n).unwrap_or(0));
    }
    let lines_in_period = by_action.values().sum();

    // Deactivations by user, for the end of an authorisation.
    let disabled: BTreeMap<String, DateTime<Utc>> = line::Entity::find()
        .filter(line::Column::Action.eq("disable"))
        .filter(line::Column::RecordType.eq("user"))
        .all(conn)
        .await?
        .into_iter()
        .filter_map(|l| Some((l.record_id?, l.at)))
        .collect();
    let authorisations = app_user::Entity::find()
        .order_by_asc(app_user::Column::Username)
        .all(conn)
        .await?
        .into_iter()
        .filter_map(|u| {
            let by = match (u.role.as_str(), u.wpg_authorised) {
                ("handhaver" | "jeugdboa", _) => "appointment",
                (_, true) => "authorisation",
                _ => return None,
            };
            let until = disabled
                .get(&u.id.to_string())
                .copied()
                .or((!u.active).then_some(u.updated_at));
            // Only what overlaps the period.
            if u.created_at >= to || until.is_some_and(|t| t < from) {
                return None;
            }
            Some(Authorisation {
                username: u.username,
                display_name: u.display_name,
                role: u.role,
                by,
                since: u.created_at,
                until,
            })
        })
        .collect();
    let account_events = lines(conn, from, to, |q| {
        q.filter(line::Column::RecordType.eq("user"))
            .filter(line::Column::Action.is_in(["create", "disable", "password", "revoke"]))
    })
    .await?
    .iter()
    .map(event)
    .collect();

    let retention_runs = crate::retention::run::runs(conn, from, to).await?;
    let mut destroyed: BTreeMap<String, u64> = BTreeMap::new();
    let mut q = Query::select();
    q.column("table_name")
        .expr_as(Expr::col("id").count(), "n")
        .from("destruction_record")
        .and_where(Expr::col("destroyed_at").gte(from))
        .and_where(Expr::col("destroyed_at").lt(to))
        .group_by_col(Alias::new("table_name"));
    for r in conn.query_all(&q).await? {
        let n: i64 = r.try_get("", "n")?;
        destroyed.insert(r.try_get("", "table_name")?, u64::try_from(n).unwrap_or(0));
    }

    let count_holds = |col: &'static str| {
        let mut q = Query::select();
        q.expr_as(Expr::col("id").count(), "n")
            .from("legal_hold")
            .and_where(Expr::col(col).gte(from))
            .and_where(Expr::col(col).lt(to));
        q
    };
    let mut open = Query::select();
    open.expr_as(Expr::col("id").count(), "n")
        .from("legal_hold")
        .and_where(Expr::col("lifted_at").is_null());
    let mut holds = [0u64; 3];
    for (i, q) in [count_holds("placed_at"), count_holds("lifted_at"), open]
        .iter()
        .enumerate()
    {
        if let Some(r) = conn.query_one(q).await? {
            holds[i] = u64::try_from(r.try_get::<i64>("", "n")?).unwrap_or(0);
        }
    }

    // (recipient, purpose, legal basis) → (provisions, subjects)
    type Provisions = (Vec<Uuid>, Vec<String>);
    let mut totals: BTreeMap<(String, String, String), Provisions> = BTreeMap::new();
    for r in register::Entity::find()
        .filter(register::Column::At.gte(from))
        .filter(register::Column::At.lt(to))
        .all(conn)
        .await?
    {
        let t = totals
            .entry((r.recipient, r.purpose, r.legal_basis))
            .or_default();
        t.0.push(r.provision_id);
        t.1.push(format!("{}:{}", r.subject_kind, r.subject));
    }
    let disclosures = totals
        .into_iter()
        .map(|((recipient, purpose, legal_basis), (mut p, mut s))| {
            p.sort();
            p.dedup();
            s.sort();
            s.dedup();
            DisclosureTotal {
                recipient,
                purpose,
                legal_basis,
                provisions: p.len() as u64,
                subjects: s.len() as u64,
            }
        })
        .collect();
    let archive_reads = lines(conn, from, to, |q| {
        q.filter(line::Column::Action.eq("read_archived"))
    })
    .await?
    .iter()
    .map(event)
    .collect();

    Ok(AuditReport {
        from,
        to,
        generated_at: Utc::now(),
        chain,
        lines_by_action: by_action,
        lines_in_period,
        authorisations,
        account_events,
        retention_runs,
        destroyed,
        holds_placed: holds[0],
        holds_lifted: holds[1],
        holds_open: holds[2],
        disclosures,
        archive_reads,
    })
}

fn ts(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The report as a document an auditor reads (Markdown).
pub fn markdown(r: &AuditReport) -> String {
    let mut o = String::new();
    let day = |t: DateTime<Utc>| t.with_timezone(&chrono_tz::Europe::Amsterdam).date_naive();
    let _ = writeln!(
        o,
        "# THOR — auditrapport {} tot en met {}\n",
        day(r.from),
        day(r.to - chrono::Duration::seconds(1))
    );
    let _ = writeln!(
        o,
        "Opgesteld {} uit de eigen gegevens van THOR.\n",
        ts(&r.generated_at)
    );
    let _ = writeln!(o, "## Volledigheid van de logging\n");
    let _ = writeln!(
        o,
        "- Hashketen: {} ({} regels verzegeld{}; {} nog niet verzegeld)",
        if r.chain.holds { "intact" } else { "GEBROKEN" },
        r.chain.sealed,
        r.chain
            .head
            .as_ref()
            .map(|h| format!(", kop {h}"))
            .unwrap_or_default(),
        r.chain.unsealed
    );
    for b in &r.chain.breaks {
        let _ = writeln!(o, "  - breuk: {b}");
    }
    let _ = writeln!(o, "- Regels in de periode: {}", r.lines_in_period);
    for (a, n) in &r.lines_by_action {
        let _ = writeln!(o, "  - {a}: {n}");
    }
    let _ = writeln!(o, "\n## Wie mocht Wpg-gegevens inzien\n");
    let _ = writeln!(
        o,
        "| gebruiker | naam | rol | grond | vanaf | tot |\n|---|---|---|---|---|---|"
    );
    for a in &r.authorisations {
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {} | {} |",
            a.username,
            a.display_name,
            a.role,
            if a.by == "appointment" {
                "aanstelling (boa)"
            } else {
                "autorisatie"
            },
            ts(&a.since),
            a.until.as_ref().map(ts).unwrap_or_else(|| "—".into())
        );
    }
    let _ = writeln!(
        o,
        "\nAccountwijzigingen in de periode: {}",
        r.account_events.len()
    );
    for e in &r.account_events {
        let _ = writeln!(
            o,
            "- {} {} {} door {}",
            ts(&e.at),
            e.action,
            e.record_id.as_deref().unwrap_or(""),
            e.actor
        );
    }
    let _ = writeln!(o, "\n## Bewaartermijnen en vernietiging\n");
    let _ = writeln!(o, "Retentieruns in de periode: {}", r.retention_runs.len());
    for run in &r.retention_runs {
        let _ = writeln!(
            o,
            "- {} door {} (termijnen {})",
            ts(&run.started_at),
            run.actor,
            run.terms
        );
    }
    let _ = writeln!(o, "\nVernietigd in de periode:");
    if r.destroyed.is_empty() {
        let _ = writeln!(o, "- niets");
    }
    for (k, n) in &r.destroyed {
        let _ = writeln!(o, "- {k}: {n}");
    }
    let _ = writeln!(
        o,
        "\nBewaarplichten (legal hold): {} geplaatst, {} opgeheven in de periode; {} nu open.",
        r.holds_placed, r.holds_lifted, r.holds_open
    );
    let _ = writeln!(o, "\n## Verstrekkingen (Wpg art. 25)\n");
    if r.disclosures.is_empty() {
        let _ = writeln!(o, "Geen verstrekkingen in de periode.");
    } else {
        let _ = writeln!(
            o,
            "| ontvanger | doel | grondslag | verstrekkingen | betrokkenen |\n|---|---|---|---|---|"
        );
        for d in &r.disclosures {
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} | {} |",
                d.recipient, d.purpose, d.legal_basis, d.provisions, d.subjects
            );
        }
    }
    let _ = writeln!(
        o,
        "\n## Raadplegingen van beperkte en verwijderde gegevens\n"
    );
    if r.archive_reads.is_empty() {
        let _ = writeln!(o, "Geen in de periode.");
    }
    for e in &r.archive_reads {
        let _ = writeln!(
            o,
            "- {} {} {} {} — doel: {}",
            ts(&e.at),
            e.actor,
            e.record_type,
            e.record_id.as_deref().unwrap_or(""),
            e.reason.as_deref().unwrap_or("")
        );
    }
    o
}
