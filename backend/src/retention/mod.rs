//! Retention: how long thor keeps what it records, by law, and who may still read it.
//!
//! The Wet politiegegevens (Wpg) sets the stages of police data, counted from when it was
//! recorded (see `../shared/research/law-and-anchors.md` §6.1):
//!
//! - **active** for one year (art. 8 lid 1): the daily work, every list and the briefing;
//! - **restricted** ("beperkt", art. 8 lid 2–3) until five years: out of every list, the
//!   briefing, the pull and the exports; one record at a time for an account with the Wpg
//!   authorisation, for a stated purpose, logged;
//! - **removed** ("verwijderd", art. 8 lid 6 and art. 14 lid 1) for five more years: only for
//!   complaints and accountability, read by the privacy officer (fg) alone, logged;
//! - **destroyed** ("vernietigd", art. 14 lid 1) after ten years: the row, its history, its
//!   conflicts and its photos' bytes (on disk or in S3) are gone; a destruction record keeps
//!   the kind, id, team, date and the SHA-256 of the content and of each photo.
//!
//! Data that is not police data (the AVG side: a report without a suspect, rounds and GPS
//! tracks of employees, briefing notes) has one term, after which it is destroyed.
//!
//! A record's stage follows from its date and the terms in force ([`Terms`], `THOR_RETENTION`),
//! so a changed term takes effect at the next run ([`run`]), in either direction. A record
//! under a legal hold ([`hold`]) stays at its stage until the hold is lifted. The read gate
//! (`access::decide`) hides every record past its active stage; the archive read
//! (`access::archive_decide`, [`routes`]) is the only way to it.
//!
//! The term of a report, an incident and a sighting runs from when it happened; that of a youth
//! group or person, a standing record, from its last change: a group the jeugdboa's keep
//! current is daily work, one untouched for a year leaves it.

pub mod hold;
pub mod routes;
pub mod run;

use std::collections::BTreeMap;
use std::fmt;

use crate::access::{Kind, Stage};

/// A class of records that share a term: one kind (by its table) under one regime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    /// The name in `THOR_RETENTION` and in the run's report.
    pub key: &'static str,
    pub kind: Kind,
    /// The database table.
    pub table: &'static str,
    /// `Some("wpg")` / `Some("avg")` where the kind's rows say (reports), `None` otherwise.
    pub regime_filter: Option<&'static str>,
    /// Whether these records are police data (they walk the Wpg stages).
    pub wpg: bool,
    /// The column the term runs from.
    pub date_col: &'static str,
}

/// Every class of record the run walks, in the order of its report.
pub const TARGETS: [Target; 10] = [
    Target {
        key: "violation.wpg",
        kind: Kind::Violation,
        table: "violation",
        regime_filter: Some("wpg"),
        wpg: true,
        date_col: "observed_at",
    },
    Target {
        key: "violation.avg",
        kind: Kind::Violation,
        table: "violation",
        regime_filter: Some("avg"),
        wpg: false,
        date_col: "observed_at",
    },
    Target {
        key: "incident",
        kind: Kind::Incident,
        table: "incident",
        regime_filter: None,
        wpg: true,
        date_col: "occurred_at",
    },
    Target {
        key: "youth_observation",
        kind: Kind::YouthObservation,
        table: "youth_observation",
        regime_filter: None,
        wpg: true,
        date_col: "occurred_at",
    },
    Target {
        key: "youth_group",
        kind: Kind::YouthGroup,
        table: "youth_group",
        regime_filter: None,
        wpg: true,
        date_col: "updated_at",
    },
    Target {
        key: "youth_person",
        kind: Kind::YouthPerson,
        table: "youth_person",
        regime_filter: None,
        wpg: true,
        date_col: "updated_at",
    },
    Target {
        key: "briefing_doc",
        kind: Kind::Briefing,
        table: "briefing_doc",
        regime_filter: None,
        wpg: true,
        date_col: "occurred_at",
    },
    Target {
        key: "patrol_round",
        kind: Kind::Round,
        table: "patrol_round",
        regime_filter: None,
        wpg: false,
        date_col: "occurred_at",
    },
    Target {
        key: "track_segment",
        kind: Kind::TrackSegment,
        table: "track_segment",
        regime_filter: None,
        wpg: false,
        date_col: "occurred_at",
    },
    Target {
        key: "briefing_note",
        kind: Kind::BriefingNote,
        table: "briefing_note",
        regime_filter: None,
        wpg: false,
        date_col: "occurred_at",
    },
];

/// The terms of one class, in days from the record's date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Term {
    /// Days until restricted (Wpg only).
    pub restricted: Option<u32>,
    /// Days until removed (Wpg only).
    pub removed: Option<u32>,
    /// Days until destroyed.
    pub destroyed: u32,
}

impl Term {
    /// The Wpg defaults: one year, five years, five more.
    pub const WPG: Term = Term {
        restricted: Some(365),
        removed: Some(5 * 365),
        destroyed: 10 * 365,
    };

    /// Where a record of this age (in whole days) stands: `None` when it is due for
    /// destruction.
    pub fn stage_at(&self, age_days: i64) -> Option<Stage> {
        let past = |d: Option<u32>| d.is_some_and(|d| age_days >= i64::from(d));
        if age_days >= i64::from(self.destroyed) {
            None
        } else if past(self.removed) {
            Some(Stage::Removed)
        } else if past(self.restricted) {
            Some(Stage::Restricted)
        } else {
            Some(Stage::Active)
        }
    }
}

impl fmt::Display for Term {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.restricted, self.removed) {
            (Some(r), Some(v)) => write!(f, "{r}/{v}/{}", self.destroyed),
            _ => write!(f, "{}", self.destroyed),
        }
    }
}

/// The default terms, as `THOR_RETENTION` writes them. AVG terms are thor's choice (the law sets
/// none; a municipality sets its own in its DPIA): a report without a suspect two years, for
/// the trends and a complaint about its handling; a round and a briefing note one year; the raw
/// GPS fixes of a round 90 days (like the 13 weeks after which parking data is anonymised), the
/// round's statistics derived from them kept with the round.
pub const DEFAULTS: &str = crate::config::defaults::RETENTION;

/// The terms in force for every [`Target`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Terms {
    by_key: BTreeMap<&'static str, Term>,
}

impl Terms {
    /// Reads `THOR_RETENTION`: comma-separated `key=days` (AVG: destroyed after) or
    /// `key=restricted/removed/destroyed` (Wpg), where a key is a [`Target`]'s or `wpg` for every
    /// Wpg class at once (a class's own key wins). Classes not named keep their default. Every
    /// term is longer than the phones' sync window, so a record leaves a phone's view before it
    /// leaves active use and no phone keeps what the server no longer shows.
    pub fn parse(spec: &str, sync_window_days: u32) -> anyhow::Result<Terms> {
        let mut by_key: BTreeMap<&'static str, Term> = BTreeMap::new();
        // The defaults first, then the configuration; within each, `wpg=` first, so a class's
        // own key wins over it.
        for source in [DEFAULTS, spec] {
            let (wpg_all, own) = parse_spec(source)?;
            if let Some(w) = wpg_all {
                for t in TARGETS.iter().filter(|t| t.wpg) {
                    by_key.insert(t.key, w);
                }
            }
            by_key.extend(own);
        }
        if let Some(t) = TARGETS.iter().find(|t| !by_key.contains_key(t.key)) {
            anyhow::bail!("THOR_RETENTION: no term for {}", t.key);
        }
        let terms = Terms { by_key };
        terms.check(sync_window_days)?;
        Ok(terms)
    }

    fn check(&self, sync_window_days: u32) -> anyhow::Result<()> {
        for t in &TARGETS {
            let term = self.of(t);
            match (t.wpg, term.restricted, term.removed) {
                (true, Some(r), Some(v)) if r < v && v < term.destroyed => {
                    if r <= sync_window_days {
                        anyhow::bail!(
                            "THOR_RETENTION: {}: {r} days until restricted must be more than the \
                             sync window ({sync_window_days} days)",
                            t.key
                        );
                    }
                }
                (true, _, _) => anyhow::bail!(
                    "THOR_RETENTION: {} is police data: give restricted/removed/destroyed days, \
                     each longer than the one before (the law: 365/1825/3650)",
                    t.key
                ),
                (false, None, None) => {
                    if term.destroyed <= sync_window_days {
                        anyhow::bail!(
                            "THOR_RETENTION: {}: {} days must be more than the sync window ({sync_window_days} days)",
                            t.key,
                            term.destroyed
                        );
                    }
                }
                (false, _, _) => anyhow::bail!(
                    "THOR_RETENTION: {} is not police data: give one term, the days until destroyed",
                    t.key
                ),
            }
        }
        Ok(())
    }

    pub fn of(&self, t: &Target) -> Term {
        // `parse` gives every target a term; the fallback is the strictest, never reached.
        self.by_key.get(t.key).copied().unwrap_or(Term::WPG)
    }
}

/// A record collection that retention walks (`violations`, `incidents` …): its kind and
/// database table.
pub fn collection(record_type: &str) -> Option<(Kind, &'static str)> {
    TARGETS
        .iter()
        .find(|t| t.kind.table() == record_type)
        .map(|t| (t.kind, t.table))
}

/// The collections retention walks, each once, for messages.
pub fn collections() -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for t in &TARGETS {
        if !out.contains(&t.kind.table()) {
            out.push(t.kind.table());
        }
    }
    out
}

impl fmt::Display for Terms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = TARGETS
            .iter()
            .map(|t| format!("{}={}", t.key, self.of(t)))
            .collect();
        write!(f, "{}", parts.join(","))
    }
}

/// One `THOR_RETENTION` text: its `wpg=` term, and the terms of the classes it names.
type Spec = (Option<Term>, Vec<(&'static str, Term)>);

fn parse_spec(source: &str) -> anyhow::Result<Spec> {
    let mut wpg_all = None;
    let mut own = Vec::new();
    for part in source.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, value) = part.split_once('=').ok_or_else(|| {
            anyhow::anyhow!("THOR_RETENTION: {part:?} is not key=days (e.g. wpg=365/1825/3650)")
        })?;
        let key = key.trim();
        let term =
            parse_term(value.trim()).map_err(|e| anyhow::anyhow!("THOR_RETENTION: {key}: {e}"))?;
        if key == "wpg" {
            wpg_all = Some(term);
            continue;
        }
        let target = TARGETS.iter().find(|t| t.key == key).ok_or_else(|| {
            let keys: Vec<&str> = TARGETS.iter().map(|t| t.key).collect();
            anyhow::anyhow!(
                "THOR_RETENTION: unknown key {key:?}; known: wpg, {}",
                keys.join(", ")
            )
        })?;
        own.push((target.key, term));
    }
    Ok((wpg_all, own))
}

fn parse_term(v: &str) -> Result<Term, String> {
    let days: Result<Vec<u32>, _> = v.split('/').map(|d| d.trim().parse::<u32>()).collect();
    match days.map_err(|_| format!("{v:?} is not a number of days"))?[..] {
        [d] => Ok(Term {
            restricted: None,
            removed: None,
            destroyed: d,
        }),
        [r, v, d] => Ok(Term {
            restricted: Some(r),
            removed: Some(v),
            destroyed: d,
        }),
        _ => Err(format!(
            "{v:?}: give days until destroyed, or restricted/removed/destroyed"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_the_law() {
        let t = Terms::parse("", 14).unwrap();
        let wpg = t.of(&TARGETS[0]);
        assert_eq!(wpg, Term::WPG);
        assert_eq!(wpg.stage_at(0), Some(Stage::Active));
        assert_eq!(wpg.stage_at(364), Some(Stage::Active));
        assert_eq!(wpg.stage_at(365), Some(Stage::Restricted));
        assert_eq!(wpg.stage_at(1824), Some(Stage::Restricted));
        assert_eq!(wpg.stage_at(1825), Some(Stage::Removed));
        assert_eq!(wpg.stage_at(3649), Some(Stage::Removed));
        assert_eq!(wpg.stage_at(3650), None);
        let avg = t.of(&TARGETS[1]);
        assert_eq!(avg.stage_at(729), Some(Stage::Active));
        assert_eq!(avg.stage_at(730), None);
        for target in TARGETS.iter().filter(|x| x.wpg) {
            assert_eq!(t.of(target), Term::WPG, "{}", target.key);
        }
        assert_eq!(Terms::parse(&t.to_string(), 14).unwrap(), t);
    }

    #[test]
    fn a_class_key_wins_over_wpg_and_bad_terms_are_refused() {
        let t = Terms::parse("youth_person=400/1000/2000, wpg=500/1900/3700", 14).unwrap();
        let person = TARGETS.iter().find(|x| x.key == "youth_person").unwrap();
        assert_eq!(t.of(person).restricted, Some(400));
        assert_eq!(t.of(&TARGETS[0]).restricted, Some(500));
        for bad in [
            "wpg=10/1825/3650",
            "wpg=365",
            "wpg=400/300/3650",
            "track_segment=10",
            "track_segment=30/60/90",
            "nonsense=3",
            "wpg",
            "wpg=a/b/c",
        ] {
            assert!(Terms::parse(bad, 14).is_err(), "{bad}");
        }
        assert_eq!(
            collection("violations"),
            Some((Kind::Violation, "violation"))
        );
        assert_eq!(collection("photos"), None);
        assert_eq!(collections().len(), TARGETS.len() - 1, "violations once");
        let short = Terms::parse("track_segment=30", 14).unwrap();
        let track = TARGETS.iter().find(|x| x.key == "track_segment").unwrap();
        assert_eq!(short.of(track).stage_at(30), None);
    }
}
