//! The sanction track of a case as data (pure): which afdoening follows which outcome on which
//! feitcode track (`spoor`), the steps of each, who takes them, which document each produces and
//! by when.
//!
//! The officer chooses the afdoening in the street (the report's `sanction`, offline on the
//! phone); `violations::rules::allowed_sanctions` is what the server checks it against. The steps are the office's work
//! after that: [`progress`] says, from the steps taken, what is next and whether it is overdue.
//! The deadlines are working defaults of this team, not law: a municipality changes them here.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::violations::Sanction;

/// The steps of an afdoening, in order.
pub fn steps(s: Sanction) -> &'static [Step] {
    match s {
        Sanction::WaarschuwingMondeling => &MONDELING,
        Sanction::WaarschuwingSchriftelijk => &SCHRIFTELIJK,
        Sanction::Mulder => &MULDER,
        Sanction::Bsb => &BSB,
        Sanction::BestuurlijkeBoete => &BOETE,
        Sanction::Kostenverhaal => &KOSTENVERHAAL,
        Sanction::PvOm => &PV_OM,
    }
}

/// Who takes a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Actor {
    /// An officer on the report (or the teamleider).
    Officer,
    /// The teamleider (the office).
    Teamleider,
}

/// A document made from the record. One source: every kind renders the same record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DocumentKind {
    /// Proces-verbaal van bevindingen (BSB, OM).
    PvBevindingen,
    /// Kort proces-verbaal (the Wahv's "aankondiging van beschikking" basis).
    KortPv,
    /// The written warning.
    Waarschuwingsbrief,
    /// The notice of a bestuurlijke boete.
    Sanctiebrief,
    /// The letter that recovers the cost of removal.
    Kostenverhaalbrief,
    /// The case overview: the record, its track and its steps.
    Zaakoverzicht,
}

pub const DOCUMENT_KINDS: &[DocumentKind] = &[
    DocumentKind::PvBevindingen,
    DocumentKind::KortPv,
    DocumentKind::Waarschuwingsbrief,
    DocumentKind::Sanctiebrief,
    DocumentKind::Kostenverhaalbrief,
    DocumentKind::Zaakoverzicht,
];

impl DocumentKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DocumentKind::PvBevindingen => "pv_bevindingen",
            DocumentKind::KortPv => "kort_pv",
            DocumentKind::Waarschuwingsbrief => "waarschuwingsbrief",
            DocumentKind::Sanctiebrief => "sanctiebrief",
            DocumentKind::Kostenverhaalbrief => "kostenverhaalbrief",
            DocumentKind::Zaakoverzicht => "zaakoverzicht",
        }
    }

    pub fn parse(s: &str) -> Option<DocumentKind> {
        DOCUMENT_KINDS.iter().copied().find(|x| x.as_str() == s)
    }

    /// The document's title as printed.
    pub fn title(self) -> &'static str {
        match self {
            DocumentKind::PvBevindingen => "Proces-verbaal van bevindingen",
            DocumentKind::KortPv => "Kort proces-verbaal",
            DocumentKind::Waarschuwingsbrief => "Schriftelijke waarschuwing",
            DocumentKind::Sanctiebrief => "Kennisgeving bestuurlijke boete",
            DocumentKind::Kostenverhaalbrief => "Kostenverhaal",
            DocumentKind::Zaakoverzicht => "Zaakoverzicht",
        }
    }
}

/// One step of a track.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Step {
    /// Its key (`POST /api/v1/cases/{id}/steps` names it).
    pub key: &'static str,
    /// What it says on the page.
    pub label: &'static str,
    pub by: Actor,
    /// The document this step issues, if any.
    pub document: Option<DocumentKind>,
    /// Days after the previous step (or the observation, for the first) by which it is due.
    pub due_days: i64,
}

const fn step(
    key: &'static str,
    label: &'static str,
    by: Actor,
    document: Option<DocumentKind>,
    due_days: i64,
) -> Step {
    Step {
        key,
        label,
        by,
        document,
        due_days,
    }
}

use Actor::{Officer, Teamleider};
use DocumentKind as D;

/// A spoken warning is given in the street: the report is the whole case, finished at once.
static MONDELING: [Step; 0] = [];

/// The afdoeningen whose track has no steps.
pub const WITHOUT_STEPS: &[Sanction] = &[Sanction::WaarschuwingMondeling];
static SCHRIFTELIJK: [Step; 1] = [step(
    "brief_verzonden",
    "Waarschuwingsbrief verzonden",
    Teamleider,
    Some(D::Waarschuwingsbrief),
    7,
)];
static MULDER: [Step; 2] = [
    step(
        "naar_cjib",
        "Beschikking (kort pv) aan het CJIB aangeboden",
        Teamleider,
        Some(D::KortPv),
        14,
    ),
    step(
        "afgehandeld",
        "Betaald of afgehandeld (CJIB)",
        Teamleider,
        None,
        56,
    ),
];
static BSB: [Step; 2] = [
    step(
        "naar_cjib",
        "Strafbeschikking (pv van bevindingen) aan het CJIB aangeboden",
        Teamleider,
        Some(D::PvBevindingen),
        14,
    ),
    step(
        "afgehandeld",
        "Betaald of afgehandeld (CJIB)",
        Teamleider,
        None,
        56,
    ),
];
static BOETE: [Step; 2] = [
    step(
        "beschikking_verzonden",
        "Boetebeschikking verzonden",
        Teamleider,
        Some(D::Sanctiebrief),
        14,
    ),
    step("betaald", "Betaald of afgehandeld", Teamleider, None, 56),
];
static KOSTENVERHAAL: [Step; 3] = [
    step("verwijderd", "Opgeruimd of verwijderd", Officer, None, 2),
    step(
        "kosten_gevorderd",
        "Kostenverhaalbrief verzonden",
        Teamleider,
        Some(D::Kostenverhaalbrief),
        28,
    ),
    step(
        "betaald",
        "Kosten betaald of afgehandeld",
        Teamleider,
        None,
        56,
    ),
];
static PV_OM: [Step; 2] = [
    step(
        "pv_ingezonden",
        "Proces-verbaal naar het OM",
        Teamleider,
        Some(D::PvBevindingen),
        14,
    ),
    step(
        "beslissing_om",
        "Beslissing van het OM ontvangen",
        Teamleider,
        None,
        182,
    ),
];

/// A step taken.
#[derive(Debug, Clone, PartialEq)]
pub struct Taken {
    pub key: String,
    pub at: DateTime<Utc>,
}

/// Where a case stands.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    /// The next step, `None` when the track is finished.
    pub next: Option<Step>,
    /// When the next step is due.
    pub due_at: Option<DateTime<Utc>>,
    pub overdue: bool,
    pub finished: bool,
}

/// Where a case of `sanction`, observed at `observed_at`, stands after the steps `taken` (in the
/// order they were taken; they are the track's first steps, [`next_allowed`] saw to that).
pub fn progress(
    sanction: Sanction,
    observed_at: DateTime<Utc>,
    taken: &[Taken],
    now: DateTime<Utc>,
) -> Progress {
    let steps = steps(sanction);
    let done = taken.len().min(steps.len());
    match steps.get(done) {
        None => Progress {
            next: None,
            due_at: None,
            overdue: false,
            finished: true,
        },
        Some(s) => {
            let from = taken.last().map_or(observed_at, |t| t.at);
            let due = from + Duration::days(s.due_days);
            Progress {
                next: Some(*s),
                due_at: Some(due),
                overdue: now > due,
                finished: false,
            }
        }
    }
}

/// Why `key` cannot be the next step of the track (taken so far: `taken`), or the step.
pub fn next_allowed(
    sanction: Sanction,
    taken: &[Taken],
    key: &str,
    is_lead: bool,
) -> Result<Step, Refusal> {
    let steps = steps(sanction);
    let Some(next) = steps.get(taken.len()) else {
        return Err(Refusal::NotNext("the track is finished".into()));
    };
    if next.key != key {
        let known: Vec<&str> = steps.iter().map(|s| s.key).collect();
        return Err(Refusal::NotNext(if known.contains(&key) {
            format!("the next step is {}, not {key}", next.key)
        } else {
            format!("one of {}", known.join(", "))
        }));
    }
    if next.by == Actor::Teamleider && !is_lead {
        return Err(Refusal::NotYours(format!(
            "the teamleider takes the step {key}"
        )));
    }
    Ok(*next)
}

/// Why a step cannot be taken now.
#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    /// Not the next step: the track is finished, the step comes later, or there is no such step.
    NotNext(String),
    /// The step is someone else's to take (the teamleider's).
    NotYours(String),
}

impl Refusal {
    pub fn message(&self) -> &str {
        match self {
            Refusal::NotNext(m) | Refusal::NotYours(m) => m,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(h: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_796_000_000, 0).unwrap() + Duration::hours(h)
    }

    #[test]
    fn every_afdoening_has_steps_and_every_document_kind_a_name() {
        for s in Sanction::ALL {
            assert_eq!(steps(s).is_empty(), WITHOUT_STEPS.contains(&s), "{s:?}");
        }
        let spoken = progress(Sanction::WaarschuwingMondeling, t(0), &[], t(1));
        assert!(
            spoken.finished,
            "a spoken warning is finished in the street"
        );
        for d in DOCUMENT_KINDS {
            assert_eq!(DocumentKind::parse(d.as_str()), Some(*d));
        }
    }

    #[test]
    fn a_track_runs_step_by_step_with_its_deadlines() {
        let s = Sanction::Kostenverhaal;
        let p = progress(s, t(0), &[], t(1));
        assert_eq!(p.next.unwrap().key, "verwijderd");
        assert_eq!(p.due_at, Some(t(48)));
        assert!(!p.overdue);
        assert!(
            progress(s, t(0), &[], t(49)).overdue,
            "a lead sees what is overdue"
        );

        // In order, by whom the step says.
        assert!(
            next_allowed(s, &[], "kosten_gevorderd", true)
                .unwrap_err()
                .message()
                .contains("next step is verwijderd")
        );
        assert!(
            next_allowed(s, &[], "iets", true)
                .unwrap_err()
                .message()
                .contains("one of verwijderd")
        );
        assert_eq!(
            next_allowed(s, &[], "verwijderd", false).unwrap().by,
            Actor::Officer
        );
        let taken = vec![Taken {
            key: "verwijderd".into(),
            at: t(10),
        }];
        assert!(matches!(
            next_allowed(s, &taken, "kosten_gevorderd", false),
            Err(Refusal::NotYours(m)) if m.contains("teamleider")
        ));
        let step = next_allowed(s, &taken, "kosten_gevorderd", true).unwrap();
        assert_eq!(step.document, Some(DocumentKind::Kostenverhaalbrief));
        let p = progress(s, t(0), &taken, t(11));
        assert_eq!(
            p.due_at,
            Some(t(10) + Duration::days(28)),
            "due from the previous step"
        );

        let all: Vec<Taken> = steps(s)
            .iter()
            .map(|st| Taken {
                key: st.key.into(),
                at: t(20),
            })
            .collect();
        let p = progress(s, t(0), &all, t(9999));
        assert!(p.finished && p.next.is_none() && !p.overdue);
        assert_eq!(
            next_allowed(s, &all, "betaald", true).unwrap_err(),
            Refusal::NotNext("the track is finished".into())
        );
    }
}
