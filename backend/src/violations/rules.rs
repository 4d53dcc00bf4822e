//! The rules a report must satisfy, as pure functions: validation against the reference data,
//! status transitions, and the privacy regime.

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Europe::Amsterdam;
use uuid::Uuid;

use super::{Category, Location, Outcome, Sanction, Status};
use crate::error::FieldError;
use crate::reference::{Reference, track_allows_fine};

/// A position worse than this cannot place an offence in a street; the officer sets it by hand.
pub const MAX_ACCURACY_M: f64 = 500.0;
/// Device clocks drift; a report from further in the future than this is refused.
pub const MAX_FUTURE: Duration = Duration::minutes(10);
/// A report observed longer ago than this is refused (it belongs in the office, not the app).
pub const MAX_AGE: Duration = Duration::days(31);
pub const MAX_DESCRIPTION_CHARS: usize = 4000;
pub const MAX_OFFICERS: usize = 6;
/// How long the teamleider who approved or rejected a report may take that back (the page's
/// "Ongedaan maken"): a slip of the thumb is put right at once; after that the review is final.
pub const UNDO_WINDOW: Duration = Duration::minutes(5);

/// The full state of a report that the rules judge, after a create or a patch.
#[derive(Debug, Clone, PartialEq)]
pub struct Draft {
    pub category: Category,
    pub feitcode: Option<String>,
    pub observed_at: DateTime<Utc>,
    pub location: Location,
    pub description: String,
    pub outcome: Outcome,
    pub plate: Option<String>,
    pub driver_present: Option<bool>,
    pub sanction: Option<Sanction>,
    pub officer_ids: Vec<Uuid>,
}

/// The afdoeningen an outcome allows on a feitcode's track (`None`: a report without feitcode).
pub fn allowed_sanctions(outcome: Outcome, track: Option<&str>) -> &'static [Sanction] {
    use Sanction::*;
    match (outcome, track) {
        (Outcome::None, _) => &[],
        (Outcome::Warning, _) => &[WaarschuwingMondeling, WaarschuwingSchriftelijk],
        (Outcome::Fine, Some("wahv" | "naheffing")) => &[Mulder],
        (Outcome::Fine, Some("bsb")) => &[Bsb],
        (Outcome::Fine, Some("bboor")) => &[BestuurlijkeBoete],
        (Outcome::Fine, _) => &[],
        (Outcome::PoliceReport, Some("warning_only")) => &[],
        (Outcome::PoliceReport, _) => &[PvOm],
        (Outcome::Removed, _) => &[Kostenverhaal],
    }
}

/// Upper case, without spaces and dashes: `12-abc-3` → `12ABC3`.
pub fn normalise_plate(raw: &str) -> String {
    raw.chars()
        .filter(|c| !matches!(c, '-' | ' ' | '.'))
        .flat_map(char::to_uppercase)
        .collect()
}

/// Checks a draft; returns the feitcode's track when there is a feitcode.
pub fn check(
    d: &Draft,
    reference: &Reference,
    now: DateTime<Utc>,
) -> Result<Option<String>, Vec<FieldError>> {
    let mut errs =
        crate::reference::routes::check_coordinates(d.location.lat, d.location.lon, "location.");
    let acc = d.location.accuracy_m;
    if !acc.is_finite() || acc < 0.0 {
        errs.push(FieldError::new(
            "location.accuracy_m",
            "must be a number of metres, 0 or more",
        ));
    } else if acc > MAX_ACCURACY_M {
        errs.push(FieldError::new(
            "location.accuracy_m",
            format!("{acc:.0} m is too inaccurate to place an offence (at most {MAX_ACCURACY_M:.0} m); set the location by hand"),
        ));
    }
    if let Some(fix) = d.location.fix_time
        && fix > now + MAX_FUTURE
    {
        errs.push(FieldError::new("location.fix_time", "lies in the future"));
    }
    if d.observed_at > now + MAX_FUTURE {
        errs.push(FieldError::new(
            "observed_at",
            "lies in the future (check the phone's clock)",
        ));
    } else if d.observed_at < now - MAX_AGE {
        errs.push(FieldError::new("observed_at", "is more than 31 days ago"));
    }
    if d.description.chars().count() > MAX_DESCRIPTION_CHARS {
        errs.push(FieldError::new(
            "description",
            format!("at most {MAX_DESCRIPTION_CHARS} characters"),
        ));
    }
    if d.officer_ids.is_empty() || d.officer_ids.len() > MAX_OFFICERS {
        errs.push(FieldError::new(
            "officer_ids",
            format!("1 to {MAX_OFFICERS} officers"),
        ));
    }

    let mut track = None;
    match &d.feitcode {
        Some(code) => {
            let day = d.observed_at.with_timezone(&Amsterdam).date_naive();
            match reference.feitcode_on(code, day) {
                None if reference.feitcode_known(code) => errs.push(FieldError::new(
                    "feitcode",
                    format!("{code} is not in force on {day}"),
                )),
                None => errs.push(FieldError::new(
                    "feitcode",
                    format!("unknown feitcode {code:?}"),
                )),
                Some(f) => {
                    let category_ok = reference
                        .category(d.category.as_str())
                        .map(|c| c.feitcode_domains.split(';').any(|dom| dom == f.domain))
                        .unwrap_or(false);
                    if !category_ok {
                        errs.push(FieldError::new(
                            "feitcode",
                            format!(
                                "{code} is a {} offence, not {}",
                                f.domain,
                                d.category.as_str()
                            ),
                        ));
                    }
                    if d.outcome == Outcome::Fine && !track_allows_fine(&f.track) {
                        errs.push(FieldError::new(
                            "outcome",
                            format!(
                                "{code} is handled on the {} track, which has no fine on the spot",
                                f.track
                            ),
                        ));
                    }
                    track = Some(f.track.clone());
                }
            }
        }
        None if d.outcome == Outcome::Fine => {
            errs.push(FieldError::new("feitcode", "a fine needs a feitcode"));
        }
        None => {}
    }

    match &d.plate {
        Some(p) if !(1..=8).contains(&p.len()) || !p.chars().all(|c| c.is_ascii_alphanumeric()) => {
            errs.push(FieldError::new("plate", "1 to 8 letters and digits"));
        }
        _ => {}
    }
    if d.category == Category::Parkeren && d.outcome == Outcome::Fine {
        if d.plate.is_none() {
            errs.push(FieldError::new(
                "plate",
                "a parking fine needs the licence plate",
            ));
        }
        if d.driver_present.is_none() {
            errs.push(FieldError::new(
                "driver_present",
                "record whether the driver was present (Wahv: driver or plate holder)",
            ));
        }
    }

    if let Some(s) = d.sanction {
        let allowed = allowed_sanctions(d.outcome, track.as_deref());
        if !allowed.contains(&s) {
            let names: Vec<&str> = allowed.iter().map(|a| a.as_str()).collect();
            errs.push(FieldError::new(
                "sanction",
                if names.is_empty() {
                    format!(
                        "outcome {} on this track has no afdoening; leave sanction empty",
                        d.outcome.as_str()
                    )
                } else {
                    format!(
                        "outcome {} on this track allows {}",
                        d.outcome.as_str(),
                        names.join(" or ")
                    )
                },
            ));
        }
    }

    if errs.is_empty() {
        Ok(track)
    } else {
        Err(errs)
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum TransitionError {
    /// The role may not make this transition.
    Forbidden(String),
    /// No one may make this transition.
    Invalid(String),
}

/// The review workflow: concept → submitted → approved | rejected. Approved and rejected are
/// final; only a teamleider (`may_review`) approves or rejects.
pub fn check_transition(from: Status, to: Status, may_review: bool) -> Result<(), TransitionError> {
    use Status::*;
    match (from, to) {
        (a, b) if a == b => Ok(()),
        (Concept, Submitted) => Ok(()),
        (Submitted, Approved | Rejected) if may_review => Ok(()),
        (Submitted, Approved | Rejected) => Err(TransitionError::Forbidden(
            "only a teamleider approves or rejects reports".into(),
        )),
        (Concept, Approved | Rejected) if !may_review => Err(TransitionError::Forbidden(
            "only a teamleider approves or rejects reports".into(),
        )),
        (a, b) => Err(TransitionError::Invalid(format!(
            "a report cannot go from {} to {}",
            a.as_str(),
            b.as_str()
        ))),
    }
}

/// Whether `who` may take back the review of a report (back to submitted, the review's fields
/// cleared): only the teamleider who reviewed it, within [`UNDO_WINDOW`] of the review.
pub fn check_undo(
    reviewed_by: Option<Uuid>,
    reviewed_at: Option<DateTime<Utc>>,
    who: Uuid,
    now: DateTime<Utc>,
) -> Result<(), String> {
    if reviewed_by != Some(who) {
        return Err("only the teamleider who reviewed the report takes the review back".into());
    }
    match reviewed_at {
        Some(at) if now - at <= UNDO_WINDOW => Ok(()),
        _ => Err(format!(
            "a review is taken back within {} minutes; after that it is final",
            UNDO_WINDOW.num_minutes()
        )),
    }
}

/// The four-eyes rule of the review (`THOR_FOUR_EYES`, on by default): the teamleider who
/// approves or rejects a report is not one who created it or is named on it, before or after
/// the change (naming oneself off a report in the same patch does not count). Returns why not.
pub fn check_four_eyes(
    reviewer: Uuid,
    created_by: Uuid,
    officers_before: &[Uuid],
    officers_after: &[Uuid],
) -> Result<(), String> {
    if reviewer == created_by {
        return Err(
            "four-eyes rule: you created this report, so another teamleider approves or rejects it"
                .into(),
        );
    }
    if officers_before.contains(&reviewer) || officers_after.contains(&reviewer) {
        return Err(
            "four-eyes rule: you are named on this report (officer_ids), so another \
                    teamleider approves or rejects it"
                .into(),
        );
    }
    Ok(())
}

/// The status a new report may start in.
pub fn check_initial_status(s: Status) -> Result<(), FieldError> {
    match s {
        Status::Concept | Status::Submitted => Ok(()),
        _ => Err(FieldError::new(
            "status",
            "a new report starts as concept or submitted; a teamleider reviews it afterwards",
        )),
    }
}

/// Which privacy law governs the record: an offence acted upon against someone (a warning, a
/// fine, a police report) or a recorded plate is investigative work under the Wpg; cleaning up
/// and plain signalling fall under the AVG.
pub fn privacy_regime(outcome: Outcome, plate: Option<&str>) -> &'static str {
    match outcome {
        Outcome::Warning | Outcome::Fine | Outcome::PoliceReport => "wpg",
        _ if plate.is_some() => "wpg",
        _ => "avg",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geo::AreaIndex;
    use crate::reference::entities::{category, feitcode};
    use chrono::{NaiveDate, TimeZone};

    fn reference() -> Reference {
        let cat = |code: &str, domains: &str| category::Model {
            code: code.into(),
            name: code.into(),
            description: String::new(),
            feitcode_domains: domains.into(),
            sort_order: 0,
        };
        let fc =
            |code: &str, domain: &str, track: &str, from: NaiveDate, until: Option<NaiveDate>| {
                feitcode::Model {
                    code: code.into(),
                    valid_from: from,
                    valid_until: until,
                    category: String::new(),
                    domain: domain.into(),
                    description: String::new(),
                    article: String::new(),
                    track: track.into(),
                    tariffs_eur: serde_json::json!({}),
                    source: String::new(),
                }
            };
        let d = |y, m, dd| NaiveDate::from_ymd_opt(y, m, dd).unwrap();
        Reference::new(
            AreaIndex::new(vec![]),
            vec![
                cat("afval", "afval"),
                cat("parkeren", "parkeren;stilstaan"),
                cat("honden", "honden"),
                cat("overig", ""),
            ],
            vec![
                fc("R397a", "parkeren", "wahv", d(2015, 5, 15), None),
                fc("H004", "afval", "bsb", d(2015, 1, 15), None),
                fc("X001", "afval", "warning_only", d(2015, 1, 15), None),
                fc("OLD1", "afval", "bsb", d(2010, 1, 1), Some(d(2012, 1, 1))),
            ],
            Default::default(),
        )
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0).unwrap()
    }

    fn draft() -> Draft {
        Draft {
            category: Category::Parkeren,
            feitcode: Some("R397a".into()),
            observed_at: now() - Duration::minutes(5),
            location: Location {
                lat: 52.46,
                lon: 4.62,
                accuracy_m: 8.0,
                source: super::super::LocationSource::Gps,
                fix_time: None,
            },
            description: String::new(),
            outcome: Outcome::Fine,
            plate: Some("12ABC3".into()),
            driver_present: Some(false),
            sanction: None,
            officer_ids: vec![Uuid::nil()],
        }
    }

    fn fields(r: Result<Option<String>, Vec<FieldError>>) -> Vec<String> {
        r.err()
            .unwrap_or_default()
            .into_iter()
            .map(|f| f.field)
            .collect()
    }

    #[test]
    fn a_good_parking_fine_passes_and_gives_its_track() {
        assert_eq!(
            check(&draft(), &reference(), now()),
            Ok(Some("wahv".into()))
        );
    }

    #[test]
    fn each_broken_rule_names_its_field() {
        let r = reference();
        type Breaker = Box<dyn Fn(&mut Draft)>;
        let cases: Vec<(Breaker, &str)> = vec![
            (Box::new(|d| d.location.lat = 200.0), "location.lat"),
            (Box::new(|d| d.location.lon = f64::NAN), "location.lon"),
            (
                Box::new(|d| d.location.accuracy_m = 2000.0),
                "location.accuracy_m",
            ),
            (
                Box::new(|d| d.location.accuracy_m = -1.0),
                "location.accuracy_m",
            ),
            (
                Box::new(|d| d.observed_at = now() + Duration::hours(1)),
                "observed_at",
            ),
            (
                Box::new(|d| d.observed_at = now() - Duration::days(40)),
                "observed_at",
            ),
            (Box::new(|d| d.feitcode = Some("Z999".into())), "feitcode"),
            (Box::new(|d| d.feitcode = Some("OLD1".into())), "feitcode"),
            (Box::new(|d| d.feitcode = Some("H004".into())), "feitcode"),
            (Box::new(|d| d.feitcode = None), "feitcode"),
            (Box::new(|d| d.plate = None), "plate"),
            (Box::new(|d| d.plate = Some("12-AB".into())), "plate"),
            (Box::new(|d| d.driver_present = None), "driver_present"),
            (Box::new(|d| d.officer_ids.clear()), "officer_ids"),
            (
                Box::new(|d| d.description = "x".repeat(5000)),
                "description",
            ),
            (
                Box::new(|d| {
                    d.category = Category::Afval;
                    d.feitcode = Some("X001".into());
                }),
                "outcome",
            ),
        ];
        for (i, (break_it, field)) in cases.iter().enumerate() {
            let mut d = draft();
            break_it(&mut d);
            assert_eq!(
                fields(check(&d, &r, now())),
                vec![field.to_string()],
                "case {i}"
            );
        }
    }

    #[test]
    fn a_warning_needs_no_feitcode_and_no_plate() {
        let mut d = draft();
        d.outcome = Outcome::Warning;
        d.feitcode = None;
        d.plate = None;
        d.driver_present = None;
        assert_eq!(check(&d, &reference(), now()), Ok(None));
    }

    #[test]
    fn the_review_workflow() {
        use Status::*;
        assert!(check_transition(Concept, Submitted, false).is_ok());
        assert!(check_transition(Submitted, Approved, true).is_ok());
        assert!(check_transition(Submitted, Rejected, true).is_ok());
        assert!(matches!(
            check_transition(Submitted, Approved, false),
            Err(TransitionError::Forbidden(_))
        ));
        assert!(matches!(
            check_transition(Concept, Approved, false),
            Err(TransitionError::Forbidden(_))
        ));
        assert!(matches!(
            check_transition(Concept, Approved, true),
            Err(TransitionError::Invalid(_))
        ));
        assert!(matches!(
            check_transition(Approved, Concept, true),
            Err(TransitionError::Invalid(_))
        ));
        assert!(matches!(
            check_transition(Rejected, Submitted, false),
            Err(TransitionError::Invalid(_))
        ));
        assert!(check_transition(Approved, Approved, false).is_ok());
        assert!(check_initial_status(Concept).is_ok());
        assert!(check_initial_status(Submitted).is_ok());
        assert!(check_initial_status(Approved).is_err());
    }

    #[test]
    fn a_review_is_taken_back_by_its_reviewer_within_the_window() {
        let lead = Uuid::new_v4();
        let at = now();
        assert!(check_undo(Some(lead), Some(at), lead, at + Duration::minutes(4)).is_ok());
        assert!(check_undo(Some(lead), Some(at), lead, at + UNDO_WINDOW).is_ok());
        let late = check_undo(
            Some(lead),
            Some(at),
            lead,
            at + UNDO_WINDOW + Duration::seconds(1),
        );
        assert!(late.unwrap_err().contains("final"));
        let other = check_undo(Some(lead), Some(at), Uuid::new_v4(), at);
        assert!(other.unwrap_err().contains("who reviewed"));
        assert!(check_undo(None, None, lead, at).is_err());
    }

    #[test]
    fn the_outcome_and_the_track_decide_the_afdoening() {
        use Sanction::*;
        assert_eq!(allowed_sanctions(Outcome::Fine, Some("wahv")), &[Mulder]);
        assert_eq!(allowed_sanctions(Outcome::Fine, Some("bsb")), &[Bsb]);
        assert_eq!(
            allowed_sanctions(Outcome::Fine, Some("bboor")),
            &[BestuurlijkeBoete]
        );
        assert!(allowed_sanctions(Outcome::Fine, Some("warning_only")).is_empty());
        assert!(
            allowed_sanctions(Outcome::Fine, None).is_empty(),
            "no fine without a feitcode"
        );
        assert_eq!(
            allowed_sanctions(Outcome::Warning, Some("wahv")),
            &[WaarschuwingMondeling, WaarschuwingSchriftelijk]
        );
        assert_eq!(
            allowed_sanctions(Outcome::Removed, Some("bsb")),
            &[Kostenverhaal]
        );
        assert_eq!(
            allowed_sanctions(Outcome::PoliceReport, Some("bsb")),
            &[PvOm]
        );
        assert!(allowed_sanctions(Outcome::None, Some("wahv")).is_empty());
        for s in Sanction::ALL {
            assert_eq!(Sanction::parse(s.as_str()), Some(s));
        }
        // The check names the field and what is allowed.
        let mut d = draft();
        d.sanction = Some(Kostenverhaal);
        let errs = check(&d, &reference(), now()).unwrap_err();
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].field, "sanction");
        assert!(errs[0].message.contains("mulder"), "{}", errs[0].message);
        d.sanction = Some(Mulder);
        assert!(check(&d, &reference(), now()).is_ok());
    }

    #[test]
    fn four_eyes_keeps_a_lead_off_their_own_reports() {
        let (lead, boa, other) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        assert!(check_four_eyes(lead, boa, &[boa], &[boa]).is_ok());
        assert!(check_four_eyes(lead, lead, &[lead], &[lead]).is_err());
        assert!(check_four_eyes(lead, boa, &[boa, lead], &[boa, lead]).is_err());
        // Named off in the same patch, or named on in it: still not the reviewer.
        assert!(check_four_eyes(lead, boa, &[boa, lead], &[boa]).is_err());
        assert!(check_four_eyes(lead, boa, &[boa], &[boa, lead]).is_err());
        assert!(check_four_eyes(lead, boa, &[boa, other], &[boa, other]).is_ok());
    }

    #[test]
    fn plates_are_normalised() {
        assert_eq!(normalise_plate("12-abc-3"), "12ABC3");
        assert_eq!(normalise_plate(" xx 99 yy "), "XX99YY");
    }

    #[test]
    fn privacy_regime_follows_the_outcome() {
        assert_eq!(privacy_regime(Outcome::Fine, None), "wpg");
        assert_eq!(privacy_regime(Outcome::Warning, None), "wpg");
        assert_eq!(privacy_regime(Outcome::Removed, None), "avg");
        assert_eq!(privacy_regime(Outcome::None, Some("12ABC3")), "wpg");
    }
}
