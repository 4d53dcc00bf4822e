//! The audit log made tamper-evident: a hash chain over its lines, and the check that walks it.
//!
//! An auditor (NOREA's controls over the whole period; Wpg art. 32a) must be able to tell that no
//! line was changed or removed after it was written. The database already refuses UPDATE and
//! DELETE on `audit_log`, but an administrator with the database's own rights can switch that
//! off. So every line is also *sealed*: the sealer appends, in one order, a row to `audit_seal`
//! with the line's id, the SHA-256 of the line's content, and a chain hash over the previous seal
//! and this line. [`verify`] recomputes both from the lines as they are now:
//! - a line whose content changed no longer matches its seal (`Altered`);
//! - a deleted line leaves a seal without its line (`Missing`);
//! - a removed or edited seal breaks the numbering (`Gap`) or the chain (`Chain`);
//! - cutting off the tail of both tables is found against an *anchor*: the head (seq and hash)
//!   that `serve` logs after each seal run and `thor audit verify` prints, kept outside thor
//!   (the log shipper, the auditor's report). `verify --anchor` checks that the anchor is still
//!   in the chain.
//!
//! Sealing is apart from the write paths on purpose: writers of lines (the read logger's group
//! commit, every write transaction) stay as parallel as they are, and the chain is built by one
//! sealer at a time (the single SQLite writer; an advisory lock on PostgreSQL with several
//! instances). On PostgreSQL a line's id is taken when it is inserted and it becomes visible when
//! its transaction commits, so a line can appear behind lines already sealed; the sealer looks
//! back [`LOOK_BACK`] ids for such late lines and seals them at the end of the chain (the chain's
//! order is the seal order, not the id order). A line further back than that which is still
//! unsealed can never be sealed: [`verify`] reports it (it was inserted afterwards, with an id
//! chosen to hide among old lines).
//!
//! The seal keeps the line's content hash apart from the chain hash so that a later destruction
//! of a line's payload (Wpg art. 14, after the retention terms) can keep the chain verifiable.

use chrono::{SecondsFormat, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, TransactionTrait,
};
use sha2::{Digest, Sha256};

use super::entity as line;

/// The chain's starting value, before the first seal.
const GENESIS: &[u8] = b"thor audit chain v1";
/// How many ids behind the last sealed line the sealer looks for lines that committed late.
pub const LOOK_BACK: i64 = 10_000;
/// Lines sealed per transaction.
const BATCH: u64 = 2_000;
/// The condition on `audit_log` of a line without a seal.
const UNSEALED: &str = "NOT EXISTS (SELECT 1 FROM audit_seal s WHERE s.line_id = audit_log.id)";
/// The advisory lock that lets one PostgreSQL session seal at a time.
const SEAL_LOCK: i64 = 0x7468_6f72_0001;

pub mod seal {
    use sea_orm::entity::prelude::*;

    /// One link of the audit chain: line `line_id` sealed as number `seq`.
    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "audit_seal")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub seq: i64,
        #[sea_orm(unique)]
        pub line_id: i64,
        /// SHA-256 of the line's content, hex.
        pub line_hash: String,
        /// SHA-256 of the previous seal's chain hash and this line's hash, hex.
        pub chain_hash: String,
        pub sealed_at: DateTimeUtc,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

/// The SHA-256 of a line's content: every column, in a fixed order, as JSON.
pub fn line_hash(l: &line::Model) -> [u8; 32] {
    let content = serde_json::json!([
        l.id,
        l.at.to_rfc3339_opts(SecondsFormat::AutoSi, true),
        l.actor_user_id,
        l.actor,
        l.device_id,
        l.action,
        l.record_type,
        l.record_id,
        l.reason,
        l.detail,
    ]);
    Sha256::digest(content.to_string().as_bytes()).into()
}

/// The next chain hash after `prev` for a line with hash `line`.
pub fn chain_hash(prev: &[u8; 32], line: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(line);
    h.finalize().into()
}

fn genesis() -> [u8; 32] {
    Sha256::digest(GENESIS).into()
}

fn parse_hash(hex_text: &str) -> Option<[u8; 32]> {
    hex::decode(hex_text).ok()?.try_into().ok()
}

/// The last link of the chain: what an anchor records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub seq: i64,
    pub hash: String,
}

impl std::fmt::Display for Head {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.seq, self.hash)
    }
}

impl std::str::FromStr for Head {
    type Err = String;
    fn from_str(s: &str) -> Result<Head, String> {
        let (seq, hash) = s
            .split_once(':')
            .ok_or_else(|| format!("an anchor is SEQ:HASH, not {s:?}"))?;
        let seq = seq
            .parse()
            .map_err(|_| format!("the anchor's seq {seq:?} is not a number"))?;
        if parse_hash(hash).is_none() {
            return Err(format!("the anchor's hash {hash:?} is not 64 hex digits"));
        }
        Ok(Head {
            seq,
            hash: hash.to_ascii_lowercase(),
        })
    }
}

async fn last_seal<C: ConnectionTrait>(conn: &C) -> Result<Option<seal::Model>, DbErr> {
    seal::Entity::find()
        .order_by_desc(seal::Column::Seq)
        .one(conn)
        .await
}

/// Seals every committed line not sealed yet. Returns how many lines it sealed and the chain's
/// head afterwards. Safe to run from several processes at once.
pub async fn seal(db: &sea_orm::DatabaseConnection) -> Result<(u64, Option<Head>), DbErr> {
    let mut sealed = 0u64;
    loop {
        let txn = db.begin().await?;
        if txn.get_database_backend() == DbBackend::Postgres {
            txn.execute_unprepared(&format!("SELECT pg_advisory_xact_lock({SEAL_LOCK})"))
                .await?;
        }
        let last = last_seal(&txn).await?;
        let (mut seq, mut prev, floor) = match &last {
            Some(s) => (
                s.seq,
                parse_hash(&s.chain_hash)
                    .ok_or_else(|| DbErr::Custom(format!("audit seal {} is corrupt", s.seq)))?,
                s.line_id - LOOK_BACK,
            ),
            None => (0, genesis(), i64::MIN),
        };
        let lines = line::Entity::find()
            .filter(line::Column::Id.gt(floor))
            .filter(Expr::cust(UNSEALED))
            .order_by_asc(line::Column::Id)
            .limit(BATCH)
            .all(&txn)
            .await?;
        let n = lines.len() as u64;
        let now = Utc::now();
        let rows: Vec<seal::ActiveModel> = lines
            .iter()
            .map(|l| {
                let lh = line_hash(l);
                prev = chain_hash(&prev, &lh);
                seq += 1;
                seal::ActiveModel {
                    seq: Set(seq),
                    line_id: Set(l.id),
                    line_hash: Set(hex::encode(lh)),
                    chain_hash: Set(hex::encode(prev)),
                    sealed_at: Set(now),
                }
            })
            .collect();
        let chunk = if txn.get_database_backend() == DbBackend::Postgres {
            100
        } else {
            150
        };
        for part in rows.chunks(chunk) {
            seal::Entity::insert_many(part.to_vec())
                .exec_without_returning(&txn)
                .await?;
        }
        txn.commit().await?;
        sealed += n;
        if n < BATCH {
            let head = (seq > 0).then(|| Head {
                seq,
                hash: hex::encode(prev),
            });
            return Ok((sealed, head));
        }
    }
}

/// One place where the chain does not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Break {
    /// Seals `after` and `next` are not consecutive: seals were removed.
    Gap { after: i64, next: i64 },
    /// Seal `seq` names line `line_id`, which is gone.
    Missing { seq: i64, line_id: i64 },
    /// Line `line_id` no longer has the content it was sealed with (or its seal was edited).
    Altered { seq: i64, line_id: i64 },
    /// Seal `seq`'s chain hash does not follow from the one before: a seal was edited.
    Chain { seq: i64 },
    /// The anchor given to [`verify`] is not in the chain.
    Anchor { anchor: Head, found: Option<String> },
}

impl std::fmt::Display for Break {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Break::Gap { after, next } => write!(
                f,
                "seals {} to {} are missing (seal {after} is followed by {next})",
                after + 1,
                next - 1
            ),
            Break::Missing { seq, line_id } => {
                write!(f, "line {line_id} (seal {seq}) was deleted")
            }
            Break::Altered { seq, line_id } => write!(
                f,
                "line {line_id} (seal {seq}) was altered after it was written"
            ),
            Break::Chain { seq } => write!(f, "seal {seq} was altered: the chain breaks there"),
            Break::Anchor { anchor, found } => match found {
                Some(h) => write!(
                    f,
                    "the anchor {anchor} does not hold: seal {} now has hash {h}",
                    anchor.seq
                ),
                None => write!(
                    f,
                    "the anchor {anchor} does not hold: seal {} is gone (the chain was cut)",
                    anchor.seq
                ),
            },
        }
    }
}

/// What [`verify`] found.
#[derive(Debug, Clone, Default)]
pub struct Verdict {
    /// Seals walked.
    pub sealed: u64,
    /// The last seal.
    pub head: Option<Head>,
    /// Where the chain does not hold (at most [`MAX_BREAKS`]).
    pub breaks: Vec<Break>,
    /// Lines without a seal further back than the sealer looks ([`LOOK_BACK`] ids behind the
    /// last sealed line): they were put in afterwards.
    pub unsealed_old: u64,
    /// Lines without a seal in all (the others wait for the next seal run).
    pub unsealed: u64,
}

/// Breaks reported before [`verify`] stops listing them.
pub const MAX_BREAKS: usize = 100;

impl Verdict {
    /// The chain holds: no break, and no old line outside it.
    pub fn holds(&self) -> bool {
        self.breaks.is_empty() && self.unsealed_old == 0
    }
}

/// Walks the whole chain against the lines as they are now. Reads only.
pub async fn verify<C: ConnectionTrait>(conn: &C, anchor: Option<&Head>) -> Result<Verdict, DbErr> {
    const PAGE: u64 = 5_000;
    let mut v = Verdict::default();
    let mut prev_seq = 0i64;
    let mut prev_hash = genesis();
    let mut anchor_seen = None;
    loop {
        let seals = seal::Entity::find()
            .filter(seal::Column::Seq.gt(prev_seq))
            .order_by_asc(seal::Column::Seq)
            .limit(PAGE)
            .all(conn)
            .await?;
        if seals.is_empty() {
            break;
        }
        let ids: Vec<i64> = seals.iter().map(|s| s.line_id).collect();
        let lines: std::collections::HashMap<i64, line::Model> = line::Entity::find()
            .filter(line::Column::Id.is_in(ids))
            .all(conn)
            .await?
            .into_iter()
            .map(|l| (l.id, l))
            .collect();
        for s in &seals {
            let mut note = |b: Break| {
                if v.breaks.len() < MAX_BREAKS {
                    v.breaks.push(b);
                }
            };
            if s.seq != prev_seq + 1 {
                note(Break::Gap {
                    after: prev_seq,
                    next: s.seq,
                });
            }
            match lines.get(&s.line_id) {
                None => note(Break::Missing {
                    seq: s.seq,
                    line_id: s.line_id,
                }),
                Some(l) if hex::encode(line_hash(l)) != s.line_hash => note(Break::Altered {
                    seq: s.seq,
                    line_id: s.line_id,
                }),
                Some(_) => {}
            }
            let expected = parse_hash(&s.line_hash).map(|lh| chain_hash(&prev_hash, &lh));
            let stored = parse_hash(&s.chain_hash);
            // A gap already explains a chain that does not follow; report it once.
            if s.seq == prev_seq + 1 && (expected.is_none() || expected != stored) {
                note(Break::Chain { seq: s.seq });
            }
            if let Some(a) = anchor
                && a.seq == s.seq
            {
                anchor_seen = Some(s.chain_hash.clone());
            }
            // Go on from what is stored, so that one edit is one break, not every seal after it.
            prev_hash = stored.unwrap_or(prev_hash);
            prev_seq = s.seq;
            v.sealed += 1;
            v.head = Some(Head {
                seq: s.seq,
                hash: s.chain_hash.clone(),
            });
        }
    }
    if let Some(a) = anchor
        && anchor_seen.as_deref() != Some(a.hash.as_str())
    {
        v.breaks.push(Break::Anchor {
            anchor: a.clone(),
            found: anchor_seen,
        });
    }
    let unsealed = |below: Option<i64>| {
        let mut q = line::Entity::find().filter(Expr::cust(UNSEALED));
        if let Some(id) = below {
            q = q.filter(line::Column::Id.lte(id));
        }
        sea_orm::PaginatorTrait::count(q, conn)
    };
    v.unsealed = unsealed(None).await?;
    // The sealer's look-back starts behind the highest sealed line, wherever in the chain it is.
    let highest = seal::Entity::find()
        .order_by_desc(seal::Column::LineId)
        .one(conn)
        .await?
        .map(|s| s.line_id);
    v.unsealed_old = match highest {
        Some(h) => unsealed(Some(h - LOOK_BACK)).await?,
        None => 0,
    };
    Ok(v)
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.head {
            Some(h) => writeln!(f, "{} seals walked; head {h}", self.sealed)?,
            None => writeln!(f, "no seals yet")?,
        }
        for b in &self.breaks {
            writeln!(f, "BROKEN: {b}")?;
        }
        if self.breaks.len() >= MAX_BREAKS {
            writeln!(f, "(listing stopped after {MAX_BREAKS} breaks)")?;
        }
        if self.unsealed_old > 0 {
            writeln!(
                f,
                "BROKEN: {} lines are not sealed and lie behind sealed ones: they were inserted later",
                self.unsealed_old
            )?;
        }
        if self.unsealed > self.unsealed_old {
            writeln!(
                f,
                "{} recent lines wait for the next seal run",
                self.unsealed - self.unsealed_old
            )?;
        }
        write!(
            f,
            "{}",
            if self.holds() {
                "the audit chain holds"
            } else {
                "the audit chain does NOT hold"
            }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;

    #[test]
    fn one_changed_byte_changes_the_line_hash_and_every_chain_hash_after_it() {
        let at = DateTime::parse_from_rfc3339("2026-12-03T07:00:00.123456Z")
            .unwrap()
            .with_timezone(&Utc);
        let a = line::Model {
            id: 1,
            at,
            actor_user_id: None,
            actor: Some("teamleider".into()),
            device_id: Some("d".into()),
            action: "read".into(),
            record_type: "violation".into(),
            record_id: Some("x".into()),
            reason: None,
            detail: Some(serde_json::json!({"ids": ["x"]})),
        };
        let mut b = a.clone();
        b.actor = Some("teamleiderr".into());
        assert_ne!(line_hash(&a), line_hash(&b));
        let mut c = a.clone();
        c.at = at + chrono::Duration::microseconds(1);
        assert_ne!(line_hash(&a), line_hash(&c));
        let g = genesis();
        assert_ne!(
            chain_hash(&g, &line_hash(&a)),
            chain_hash(&g, &line_hash(&b))
        );
        assert_eq!(line_hash(&a), line_hash(&a.clone()));
    }

    #[test]
    fn an_anchor_reads_as_seq_and_hash() {
        let h = "ab".repeat(32);
        let a: Head = format!("12:{h}").parse().unwrap();
        assert_eq!(a, Head { seq: 12, hash: h });
        assert!("12".parse::<Head>().is_err());
        assert!("x:ab".parse::<Head>().is_err());
        assert!("3:abc".parse::<Head>().is_err());
    }
}
