//! Violation reports: what a handhaver logs in the street (afval, parkeren, honden, overig).
//!
//! A report carries the offence (category and feitcode), where and when it was seen (captured
//! by the device and immutable afterwards: objections to fines contest exactly these), what the
//! officer did about it (outcome), for parking the plate and whether the driver was present, the
//! officers, and its review status: concept → submitted → approved | rejected, where only a
//! teamleider approves or rejects.
//!
//! `store` is the one write path; REST, the demo loader and the sync engine all call it.

pub mod batcher;
pub mod cache;
pub mod duplicates;
pub mod entity;
pub mod routes;
pub mod rules;
pub mod store;
pub mod sync;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::reference::routes::AreaRef;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    Afval,
    Parkeren,
    Honden,
    Overig,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A warning (officers give many more warnings than fines; both are counted).
    Warning,
    /// A fine on the feitcode's track.
    Fine,
    /// Reported to the police.
    PoliceReport,
    /// The nuisance was removed or cleaned up.
    Removed,
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Concept,
    Submitted,
    Approved,
    Rejected,
}

/// The afdoening: what follows the observation, chosen by the officer in the street and checked
/// against the outcome and the feitcode's track (`rules::allowed_sanctions`). Its steps after
/// that are the office's work (`cases::track`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Sanction {
    /// A spoken warning in the street: the report is the whole record.
    WaarschuwingMondeling,
    /// A written warning, sent by the office.
    WaarschuwingSchriftelijk,
    /// A Wahv-beschikking (the Mulder track for traffic and parking), through the CJIB.
    Mulder,
    /// A bestuurlijke strafbeschikking (afval, honden), through the CJIB.
    Bsb,
    /// A bestuurlijke boete of the municipality itself.
    BestuurlijkeBoete,
    /// Kostenverhaal: the municipality removes (dumped waste, say) at the offender's cost.
    Kostenverhaal,
    /// A proces-verbaal for the Openbaar Ministerie.
    PvOm,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LocationSource {
    Gps,
    Network,
    Manual,
}

macro_rules! str_enum {
    ($t:ty { $($v:ident => $s:literal),* $(,)? }) => {
        impl $t {
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$v => $s),* }
            }
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($s => Some(Self::$v),)* _ => None }
            }
        }
    };
}
str_enum!(Category { Afval => "afval", Parkeren => "parkeren", Honden => "honden", Overig => "overig" });
str_enum!(Outcome { Warning => "warning", Fine => "fine", PoliceReport => "police_report", Removed => "removed", None => "none" });
str_enum!(Status { Concept => "concept", Submitted => "submitted", Approved => "approved", Rejected => "rejected" });
str_enum!(LocationSource { Gps => "gps", Network => "network", Manual => "manual" });
str_enum!(Sanction {
    WaarschuwingMondeling => "waarschuwing_mondeling", WaarschuwingSchriftelijk => "waarschuwing_schriftelijk",
    Mulder => "mulder", Bsb => "bsb", BestuurlijkeBoete => "bestuurlijke_boete",
    Kostenverhaal => "kostenverhaal", PvOm => "pv_om",
});

impl Sanction {
    /// Every afdoening, in the order the page lists them.
    pub const ALL: [Sanction; 7] = [
        Sanction::WaarschuwingMondeling,
        Sanction::WaarschuwingSchriftelijk,
        Sanction::Mulder,
        Sanction::Bsb,
        Sanction::BestuurlijkeBoete,
        Sanction::Kostenverhaal,
        Sanction::PvOm,
    ];
}

/// Where the offence was seen, as the device fixed it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Location {
    /// Latitude, WGS84 degrees.
    pub lat: f64,
    /// Longitude, WGS84 degrees.
    pub lon: f64,
    /// Horizontal accuracy in metres (the radius the device reports).
    pub accuracy_m: f64,
    /// How the position was obtained.
    pub source: LocationSource,
    /// Time of the fix, when the device reports one.
    #[serde(default)]
    pub fix_time: Option<DateTime<Utc>>,
}

/// A new report as the phone sends it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct NewViolation {
    /// Generated on the phone (UUID), so a retried post cannot make a duplicate.
    pub id: Uuid,
    pub category: Category,
    /// The feitcode, e.g. `R397a`; required for a fine.
    #[serde(default)]
    pub feitcode: Option<String>,
    pub observed_at: DateTime<Utc>,
    pub location: Location,
    #[serde(default)]
    pub description: String,
    pub outcome: Outcome,
    /// Licence plate (parking); normalised to upper case without dashes.
    #[serde(default)]
    pub plate: Option<String>,
    /// Whether the driver was present (Wahv: the fine goes to the driver, else to the holder).
    #[serde(default)]
    pub driver_present: Option<bool>,
    /// The afdoening the officer chose (optional; checked against the outcome and the
    /// feitcode's track, 422 naming `sanction` with the ones allowed). Left out of the create
    /// hash when absent, so a retry of a create from before this field answers as before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sanction: Option<Sanction>,
    /// Officers on the report; the sender is always one of them. Defaults to the sender. Only
    /// active users of the sender's team: any other id (unknown, inactive, another team's) is
    /// refused with 422 naming `officer_ids`, the same answer for each.
    #[serde(default)]
    pub officer_ids: Vec<Uuid>,
    /// `concept` (default) or `submitted`.
    #[serde(default)]
    pub status: Option<Status>,
    /// The patrol round the report was made on, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub round_id: Option<Uuid>,
}

fn double_option<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// A change to a report. Absent fields stay as they are; `null` clears a clearable field.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, ToSchema)]
pub struct ViolationPatch {
    pub category: Option<Category>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub feitcode: Option<Option<String>>,
    /// Immutable after create; sending the stored value is accepted, another value is refused.
    pub observed_at: Option<DateTime<Utc>>,
    /// Immutable after create; sending the stored value is accepted, another value is refused.
    pub location: Option<Location>,
    pub description: Option<String>,
    pub outcome: Option<Outcome>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub plate: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<bool>)]
    pub driver_present: Option<Option<bool>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<Sanction>)]
    pub sanction: Option<Option<Sanction>>,
    pub officer_ids: Option<Vec<Uuid>>,
    pub status: Option<Status>,
    /// The team lead's note with a review; required when rejecting.
    pub review_note: Option<String>,
}

/// A report as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ViolationView {
    pub id: Uuid,
    pub category: Category,
    pub feitcode: Option<String>,
    /// The legal track of the feitcode on the day of the offence.
    pub track: Option<String>,
    pub observed_at: DateTime<Utc>,
    pub location: Location,
    /// Derived on the server from the location; null outside Velsen.
    pub wijk: Option<AreaRef>,
    pub buurt: Option<AreaRef>,
    /// Null when redacted.
    pub description: Option<String>,
    pub outcome: Outcome,
    /// Null when redacted.
    pub plate: Option<String>,
    pub driver_present: Option<bool>,
    /// The afdoening the officer chose.
    pub sanction: Option<Sanction>,
    pub officer_ids: Vec<Uuid>,
    pub status: Status,
    pub review_note: Option<String>,
    pub reviewed_by: Option<Uuid>,
    pub reviewed_at: Option<DateTime<Utc>>,
    pub team_id: Option<Uuid>,
    /// The patrol round the report was made on.
    pub round_id: Option<Uuid>,
    /// `wpg` (investigative: an offence acted upon) or `avg` (supervision and signalling).
    pub privacy_regime: String,
    /// True when Wpg fields were withheld because the reader is not authorised for them.
    pub redacted: bool,
    /// Plausibility flags for the reviewer, never blocking: `outside_municipality` (the location
    /// is in no wijk of Velsen; `wijk` is null), `clock_offset` (the phone's clock was
    /// more than 5 minutes off when it sent the report), `photo_missing` (a photo's bytes have
    /// not all arrived), `photo_gps_far` (a photo was taken more than 150 m away),
    /// `photo_time_far` (a photo was taken more than 2 hours from `observed_at`).
    pub flags: Vec<String>,
    pub created_by: Uuid,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The sync revision of this state; send it back as the base of an offline edit.
    pub server_rev: i64,
}

/// A page of reports.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ViolationPage {
    pub items: Vec<ViolationView>,
    /// Pass as `cursor` to get the next page; null on the last page.
    pub next_cursor: Option<String>,
}
