//! The Dutch words for thor's values: one table for the lead page, the `thor briefing` text and
//! the app (`GET /api/v1/labels`), so a status or a behaviour reads the same everywhere.
//!
//! The API keeps its values in English snake case (they are identifiers the phone stores and
//! syncs); what officers and leads read is the label. A value without a label is shown as it
//! is, and a test checks that every value the server accepts has one.

use std::collections::BTreeMap;

use axum::Json;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::app::AppState;
use crate::auth::Principal;
use crate::error::{ApiResult, Problem};

/// The labels, per group of values.
pub const LABELS: &[(&str, &[(&str, &str)])] = &[
    (
        "category",
        &[
            ("afval", "Afval"),
            ("parkeren", "Parkeren"),
            ("honden", "Honden"),
            ("overig", "Overig"),
        ],
    ),
    (
        "outcome",
        &[
            ("warning", "Waarschuwing"),
            ("fine", "Boete"),
            ("police_report", "Aangifte/politie"),
            ("removed", "Opgeruimd/verwijderd"),
            ("none", "Geen"),
        ],
    ),
    (
        "report_status",
        &[
            ("concept", "concept"),
            ("submitted", "ingediend"),
            ("approved", "goedgekeurd"),
            ("rejected", "afgewezen"),
        ],
    ),
    (
        "sanction",
        &[
            ("waarschuwing_mondeling", "Mondelinge waarschuwing"),
            ("waarschuwing_schriftelijk", "Schriftelijke waarschuwing"),
            ("mulder", "Mulder (Wahv-beschikking via het CJIB)"),
            ("bsb", "Bestuurlijke strafbeschikking (CJIB)"),
            ("bestuurlijke_boete", "Bestuurlijke boete"),
            ("kostenverhaal", "Kostenverhaal"),
            ("pv_om", "Proces-verbaal voor het OM"),
        ],
    ),
    (
        "document",
        &[
            ("pv_bevindingen", "Proces-verbaal van bevindingen"),
            ("kort_pv", "Kort proces-verbaal"),
            ("waarschuwingsbrief", "Schriftelijke waarschuwing"),
            ("sanctiebrief", "Kennisgeving bestuurlijke boete"),
            ("kostenverhaalbrief", "Kostenverhaalbrief"),
            ("zaakoverzicht", "Zaakoverzicht"),
        ],
    ),
    (
        "location_source",
        &[
            ("gps", "gps"),
            ("network", "netwerk"),
            ("manual", "handmatig gezet"),
        ],
    ),
    (
        "flag",
        &[
            ("clock_offset", "klok van de telefoon week af"),
            ("photo_missing", "foto ontbreekt"),
            ("photo_gps_far", "foto verder dan 150 m van de melding"),
            ("photo_time_far", "foto meer dan 2 uur van het tijdstip"),
            ("outside_municipality", "locatie buiten de gemeente Velsen"),
        ],
    ),
    (
        "round_status",
        &[
            ("planned", "gepland"),
            ("started", "bezig"),
            ("paused", "gepauzeerd"),
            ("completed", "afgerond"),
        ],
    ),
    (
        "shift",
        &[
            ("early", "vroege dienst"),
            ("late", "late dienst"),
            ("night", "nachtdienst"),
        ],
    ),
    (
        "behaviour",
        &[
            ("noise", "geluidsoverlast"),
            ("intimidation", "intimidatie"),
            ("vandalism", "vernieling"),
            ("alcohol", "alcohol"),
            ("drugs", "drugs"),
            ("weapons", "wapens"),
            ("violence", "geweld"),
            ("litter", "afval op straat"),
            ("other", "anders"),
        ],
    ),
    (
        "duiding",
        &[
            ("none", "geen"),
            ("hinderlijk", "hinderlijk"),
            ("overlastgevend", "overlastgevend"),
            ("crimineel", "crimineel"),
        ],
    ),
    (
        "referral",
        &[
            ("youth_work", "jongerenwerk"),
            ("wijkagent", "wijkagent"),
            ("halt", "Halt"),
            ("none", "geen"),
        ],
    ),
    (
        "gender_mix",
        &[
            ("boys", "jongens"),
            ("girls", "meisjes"),
            ("mixed", "gemengd"),
            ("unknown", "onbekend"),
        ],
    ),
    (
        "incident_kind",
        &[
            ("aggression", "Agressie"),
            ("use_of_force", "Geweldsaanwending"),
            ("police_assistance", "Politie-assistentie"),
        ],
    ),
    (
        "role",
        &[
            ("handhaver", "handhaver"),
            ("jeugdboa", "jeugdboa"),
            ("teamleider", "teamleider"),
            ("beheerder", "functioneel beheerder"),
            ("fg", "functionaris gegevensbescherming"),
        ],
    ),
    (
        "record_type",
        &[
            ("violations", "Melding"),
            ("photos", "Foto"),
            ("incidents", "Incident"),
            ("youth_observations", "Waarneming jeugdgroep"),
            ("youth_groups", "Jeugdgroep"),
            ("youth_persons", "Jongere"),
            ("rounds", "Ronde"),
            ("track_segments", "GPS-spoor"),
            ("briefings", "Briefing"),
            ("briefing_notes", "Aandachtspunt"),
        ],
    ),
    (
        // Fields a sync conflict can name.
        "field",
        &[
            ("description", "omschrijving"),
            ("category", "categorie"),
            ("feitcode", "feitcode"),
            ("outcome", "afdoening"),
            ("plate", "kenteken"),
            ("driver_present", "bestuurder aanwezig"),
            ("officer_ids", "handhavers"),
            ("status", "status"),
            ("text", "tekst"),
            ("notes", "notities"),
            ("size", "groepsgrootte"),
            ("behaviours", "gedrag"),
            ("duiding", "duiding"),
            ("name", "naam"),
        ],
    ),
    (
        // What happened to a record, as its history on the lead page tells it.
        "change",
        &[
            ("create", "aangemaakt"),
            ("update", "gewijzigd"),
            ("review", "beoordeeld"),
            ("review_undone", "beoordeling teruggedraaid"),
            ("mark_duplicate", "als dubbel gemarkeerd"),
            ("unmark_duplicate", "niet meer als dubbel gemarkeerd"),
            ("delete", "verwijderd"),
            ("place_hold", "bewaarplicht opgelegd"),
            ("lift_hold", "bewaarplicht opgeheven"),
            ("case_step", "stap in de afdoening gezet"),
            ("issue_document", "document uitgegeven"),
        ],
    ),
];

/// The Dutch label of `value` in `group`; the value itself when there is none.
pub fn nl<'a>(group: &str, value: &'a str) -> &'a str {
    LABELS
        .iter()
        .find(|(g, _)| *g == group)
        .and_then(|(_, vs)| vs.iter().find(|(k, _)| *k == value))
        .map_or(value, |(_, l)| l)
}

/// Several values of one group, labelled and joined with ", ".
pub fn nl_list<S: AsRef<str>>(group: &str, values: &[S]) -> String {
    values
        .iter()
        .map(|v| nl(group, v.as_ref()))
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(labels))
}

/// The Dutch label of every value the API uses, per group (`category`, `outcome`,
/// `report_status`, `flag`, `round_status`, `shift`, `behaviour`, `duiding`, `referral`,
/// `gender_mix`, `incident_kind`, `role`, `record_type`): what the app shows, the same words as
/// the lead page.
#[utoipa::path(
    get, path = "/api/v1/labels", operation_id = "getLabels", tag = "reference",
    responses(
        (status = 200, description = "group → value → label", body = BTreeMap<String, BTreeMap<String, String>>),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn labels(
    _p: Principal,
) -> ApiResult<Json<BTreeMap<&'static str, BTreeMap<&'static str, &'static str>>>> {
    Ok(Json(
        LABELS
            .iter()
            .map(|(g, vs)| (*g, vs.iter().copied().collect()))
            .collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::kinds;

    fn keys(group: &str) -> Vec<&'static str> {
        LABELS
            .iter()
            .find(|(g, _)| *g == group)
            .map(|(_, vs)| vs.iter().map(|(k, _)| *k).collect())
            .unwrap_or_default()
    }

    #[test]
    fn every_value_the_server_accepts_has_a_label() {
        let of = |group: &str, values: &[&str]| {
            for v in values {
                assert!(keys(group).contains(v), "{group}: no label for {v}");
            }
        };
        of("behaviour", kinds::BEHAVIOURS);
        of("duiding", kinds::DUIDING);
        of("referral", kinds::REFERRALS);
        of("gender_mix", kinds::GENDER_MIX);
        of("incident_kind", kinds::INCIDENT_KINDS);
        of("shift", kinds::SHIFTS);
        of("change", crate::audit::CHANGES);
        let sanctions: Vec<&str> = crate::violations::Sanction::ALL
            .iter()
            .map(|s| s.as_str())
            .collect();
        of("sanction", &sanctions);
        let documents: Vec<&str> = crate::cases::track::DOCUMENT_KINDS
            .iter()
            .map(|d| d.as_str())
            .collect();
        of("document", &documents);
        let statuses: Vec<&str> = kinds::ROUND_STATUS.iter().map(|(s, _)| *s).collect();
        of("round_status", &statuses);
        let wire = |v: serde_json::Value| v.as_str().unwrap_or_default().to_string();
        use crate::violations::{Category, Outcome, Status};
        for c in [
            Category::Afval,
            Category::Parkeren,
            Category::Honden,
            Category::Overig,
        ] {
            assert!(keys("category").contains(&wire(serde_json::json!(c)).as_str()));
        }
        for o in [
            Outcome::Warning,
            Outcome::Fine,
            Outcome::PoliceReport,
            Outcome::Removed,
            Outcome::None,
        ] {
            assert!(keys("outcome").contains(&wire(serde_json::json!(o)).as_str()));
        }
        for s in [
            Status::Concept,
            Status::Submitted,
            Status::Approved,
            Status::Rejected,
        ] {
            assert!(keys("report_status").contains(&wire(serde_json::json!(s)).as_str()));
        }
        for r in ["handhaver", "jeugdboa", "teamleider", "beheerder", "fg"] {
            let role = crate::auth::Role::parse(r).expect("a role");
            assert!(keys("role").contains(&role.as_str()), "{r}");
        }
        for k in crate::access::Kind::ALL {
            assert!(keys("record_type").contains(&k.table()), "{}", k.table());
        }
    }

    #[test]
    fn a_value_without_a_label_shows_as_it_is() {
        assert_eq!(nl("behaviour", "noise"), "geluidsoverlast");
        assert_eq!(nl("behaviour", "iets-nieuws"), "iets-nieuws");
        assert_eq!(nl("nope", "x"), "x");
        assert_eq!(
            nl_list("behaviour", &["noise", "litter"]),
            "geluidsoverlast, afval op straat"
        );
    }
}
