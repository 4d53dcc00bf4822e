//! The shared daily briefing: what the team reads at the start of a shift, built from the
//! field data by pure functions (`aggregate.rs`, `hotspots.rs`), gathered from the database by
//! `load.rs`, served as JSON (`routes.rs`).
//!
//! Shifts (Europe/Amsterdam): vroeg (early) 07–15, laat (late) 15–23, nacht (night) 23–07; the
//! night shift of a date starts at 23:00 that date. The hours are configurable (`THOR_SHIFTS`).

pub mod aggregate;
pub mod hotspots;
pub mod load;
pub mod routes;
pub mod svg;
pub mod text;

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, TimeZone, Timelike, Utc};
use chrono_tz::Europe::Amsterdam;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

pub use hotspots::Hotspot;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Shift {
    Early,
    Late,
    Night,
}

impl Shift {
    pub fn as_str(self) -> &'static str {
        match self {
            Shift::Early => "early",
            Shift::Late => "late",
            Shift::Night => "night",
        }
    }
    pub fn parse(s: &str) -> Option<Shift> {
        match s {
            "early" | "vroeg" => Some(Shift::Early),
            "late" | "laat" => Some(Shift::Late),
            "night" | "nacht" => Some(Shift::Night),
            _ => None,
        }
    }
    /// The shift's name in Dutch (the `shift` labels).
    pub fn dutch(self) -> &'static str {
        crate::labels::nl("shift", self.as_str())
    }
}

/// The start hours of the three shifts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShiftHours {
    pub early: NaiveTime,
    pub late: NaiveTime,
    pub night: NaiveTime,
}

impl Default for ShiftHours {
    fn default() -> Self {
        ShiftHours {
            early: NaiveTime::from_hms_opt(7, 0, 0).unwrap_or(NaiveTime::MIN),
            late: NaiveTime::from_hms_opt(15, 0, 0).unwrap_or(NaiveTime::MIN),
            night: NaiveTime::from_hms_opt(23, 0, 0).unwrap_or(NaiveTime::MIN),
        }
    }
}

impl ShiftHours {
    /// Reads `07:00,15:00,23:00` (the starts of early, late and night).
    pub fn parse(s: &str) -> Result<ShiftHours, String> {
        let parts: Vec<&str> = s.split(',').map(str::trim).collect();
        let t = |i: usize| -> Result<NaiveTime, String> {
            parts
                .get(i)
                .and_then(|p| NaiveTime::parse_from_str(p, "%H:%M").ok())
                .ok_or_else(|| {
                    format!("expected three start times like 07:00,15:00,23:00, got {s:?}")
                })
        };
        let h = ShiftHours {
            early: t(0)?,
            late: t(1)?,
            night: t(2)?,
        };
        if !(h.early < h.late && h.late < h.night) {
            return Err("the shifts start in the order early < late < night".into());
        }
        Ok(h)
    }

    /// The shift's hours as officers write them: `07–15`, or `06:30–14:30` off the hour.
    pub fn span(&self, shift: Shift) -> String {
        let (from, to) = match shift {
            Shift::Early => (self.early, self.late),
            Shift::Late => (self.late, self.night),
            Shift::Night => (self.night, self.early),
        };
        let hm = |t: NaiveTime| {
            if t.minute() == 0 {
                t.format("%H").to_string()
            } else {
                t.format("%H:%M").to_string()
            }
        };
        format!("{}–{}", hm(from), hm(to))
    }
}

#[cfg(test)]
mod shift_hours_tests {
    use super::*;

    #[test]
    fn spans_follow_the_configured_hours() {
        let d = ShiftHours::default();
        assert_eq!(d.span(Shift::Early), "07–15");
        assert_eq!(d.span(Shift::Late), "15–23");
        assert_eq!(d.span(Shift::Night), "23–07");
        let h = ShiftHours::parse("06:30,14:30,22:00").unwrap();
        assert_eq!(h.span(Shift::Early), "06:30–14:30");
        assert_eq!(h.span(Shift::Night), "22–06:30");
    }
}

fn at(date: NaiveDate, t: NaiveTime) -> DateTime<Utc> {
    let naive = date.and_time(t);
    Amsterdam
        .from_local_datetime(&naive)
        .earliest()
        .map(|d| d.with_timezone(&Utc))
        .unwrap_or_else(|| Utc.from_utc_datetime(&naive))
}

/// The UTC window of a day (midnight to midnight) or of one shift of it.
pub fn window(
    date: NaiveDate,
    shift: Option<Shift>,
    h: &ShiftHours,
) -> (DateTime<Utc>, DateTime<Utc>) {
    let next = date + Duration::days(1);
    match shift {
        None => (at(date, NaiveTime::MIN), at(next, NaiveTime::MIN)),
        Some(Shift::Early) => (at(date, h.early), at(date, h.late)),
        Some(Shift::Late) => (at(date, h.late), at(date, h.night)),
        Some(Shift::Night) => (at(date, h.night), at(next, h.early)),
    }
}

/// A count with its trend: the same window on the previous 7 and 28 days.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Counted {
    /// A category, feitcode, wijk code or outcome.
    pub key: String,
    /// A readable name, where there is one (the wijk's name, the feitcode's description).
    pub label: Option<String>,
    pub count: usize,
    /// Average per day over the previous 7 days (same hours of the day).
    pub avg7: f64,
    /// Average per day over the previous 28 days.
    pub avg28: f64,
    /// Per day over the previous 28 days, oldest first, then this window: for a sparkline.
    pub daily: Vec<usize>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ViolationSection {
    pub total: usize,
    pub avg7: f64,
    pub avg28: f64,
    pub daily: Vec<usize>,
    /// Warnings and fines apart: officers give many more warnings than fines.
    pub warnings: usize,
    pub fines: usize,
    pub by_category: Vec<Counted>,
    pub by_feitcode: Vec<Counted>,
    pub by_wijk: Vec<Counted>,
    pub by_outcome: Vec<Counted>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RoundLine {
    pub id: Uuid,
    pub name: String,
    pub shift: Option<String>,
    pub status: String,
    pub ad_hoc: bool,
    pub distance_m: f64,
    pub duration_s: i64,
    pub checkpoints_reached: usize,
    pub checkpoints_total: usize,
    /// Fraction of the planned area covered, when one was planned.
    pub coverage: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AreaTime {
    pub code: String,
    pub name: Option<String>,
    pub seconds: i64,
    pub distance_m: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RoundSection {
    /// Planned by the lead (not ad hoc).
    pub planned: usize,
    /// Completed, of all rounds.
    pub done: usize,
    pub in_progress: usize,
    /// Planned rounds not started.
    pub not_started: usize,
    pub ad_hoc: usize,
    pub distance_m: f64,
    pub duration_s: i64,
    /// Time and distance on patrol per wijk.
    pub per_wijk: Vec<AreaTime>,
    pub rounds: Vec<RoundLine>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct GroupSightings {
    pub group_id: Option<Uuid>,
    pub group: String,
    /// The municipal assessment ("gemeentelijke duiding").
    pub duiding: Option<String>,
    pub sightings: usize,
    pub largest_size: Option<f64>,
    pub behaviours: Vec<String>,
    pub spots: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct YouthSection {
    pub sightings: usize,
    pub by_group: Vec<GroupSightings>,
    pub referrals: Vec<Counted>,
}

/// A known member of a group sighted in the window (Wpg).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct YouthPerson {
    /// The person's record (null in briefings signed before it was kept).
    #[serde(default)]
    pub id: Option<Uuid>,
    pub group: String,
    pub name: String,
    pub date_of_birth: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct IncidentLine {
    pub id: Uuid,
    pub kind: String,
    pub occurred_at: Option<DateTime<Utc>>,
    pub wijk: Option<String>,
    pub police_requested: bool,
    /// For use of force: both the hulpofficier van justitie and the supervisor were notified.
    pub notifications_complete: bool,
    pub description: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FollowUps {
    /// Reports submitted and waiting for the lead.
    pub awaiting_review: usize,
    /// Reports still in concept.
    pub concepts: usize,
    /// Photos whose bytes have not all arrived.
    pub photos_missing: usize,
    pub open_conflicts: usize,
    /// Plausibility flags on the window's reports, per flag.
    pub flags: Vec<Counted>,
    /// Reports linked as duplicates.
    pub duplicates_marked: usize,
}

/// The team lead's attention point for the next shift (a synced note).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AttentionPoint {
    pub id: Uuid,
    pub text: String,
    pub shift: Option<String>,
    pub author: Uuid,
    pub updated_at: DateTime<Utc>,
}

/// Who signed the briefing off; from then on it is frozen and later changes are an addendum.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SignOff {
    pub by: Uuid,
    pub by_name: String,
    pub at: DateTime<Utc>,
}

/// What changed after the sign-off.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Addendum {
    pub computed_at: DateTime<Utc>,
    /// Lines such as "violations: 12 → 15".
    pub changes: Vec<String>,
}

/// The briefing of a day, or of one shift of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Briefing {
    pub date: NaiveDate,
    pub shift: Option<Shift>,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub generated_at: DateTime<Utc>,
    /// Sections withheld from this reader (Wpg or youth data): `youth`, `youth_persons`.
    pub redacted: Vec<String>,
    pub violations: ViolationSection,
    pub rounds: RoundSection,
    pub hotspots: Vec<Hotspot>,
    /// Null when redacted.
    pub youth: Option<YouthSection>,
    /// Null when redacted.
    pub youth_persons: Option<Vec<YouthPerson>>,
    pub incidents: Vec<IncidentLine>,
    pub follow_ups: FollowUps,
    pub attention_points: Vec<AttentionPoint>,
    pub signed: Option<SignOff>,
    pub addendum: Option<Addendum>,
    /// The team's open legal holds (for the teamleider and the beheerder; empty for others).
    #[serde(default)]
    pub holds: Vec<HoldLine>,
}

/// An open legal hold, as the briefing lists it: the record stays at its retention stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HoldLine {
    pub id: Uuid,
    pub record_type: String,
    pub record_id: Uuid,
    pub reason: String,
    pub placed_by: String,
    pub placed_at: DateTime<Utc>,
}
