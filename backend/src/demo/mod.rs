//! A deterministic demo day in Velsen: a team with its lead, a few officers, and violations
//! over the three shifts of a day (nacht 23–07, vroeg 07–15, laat 15–23, Europe/Amsterdam),
//! spread over the wijken with hotspots where one would expect them (the IJmuiden shopping
//! streets, the harbour and beach, Velserbroek's centre, Santpoort's dog-walking park).
//!
//! `generate` is pure (seeded), so tests and benchmarks get the same day for the same seed and
//! size; `load` writes it through the ordinary write paths, audit and sync stamps included.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Europe::Amsterdam;
use geo::{BoundingRect, InteriorPoint};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use uuid::Uuid;

pub mod field;

use crate::app::AppState;
use crate::auth::entities::app_user;
use crate::auth::{Principal, Role, accounts};
use crate::error::ApiError;
use crate::geo::{AreaIndex, AreaKind};
use crate::reference::{Reference, track_allows_fine};
use crate::violations::store::{self, Created};
use crate::violations::{
    Category, Location, LocationSource, NewViolation, Outcome, Status, ViolationPatch,
};

pub const DEMO_PASSWORD: &str = "demo";
pub const TEAM: &str = "THOR Velsen";

/// A demo account.
#[derive(Debug, Clone)]
pub struct DemoUser {
    pub username: &'static str,
    pub display_name: &'static str,
    pub role: Role,
    pub team: bool,
    pub wpg_authorised: bool,
    /// Whether it logs in with the demo password; the other officers only appear on reports.
    pub login: bool,
    /// The BOA number on the documents (made up).
    pub boa_number: Option<&'static str>,
}

pub const USERS: &[DemoUser] = &[
    DemoUser {
        username: "teamleider",
        display_name: "Sandra Visser",
        role: Role::Teamleider,
        team: true,
        wpg_authorised: true,
        login: true,
        boa_number: None,
    },
    DemoUser {
        username: "handhaver",
        display_name: "Mehmet Yilmaz",
        role: Role::Handhaver,
        team: true,
        wpg_authorised: false,
        login: true,
        boa_number: Some("BOA-0453-0112"),
    },
    DemoUser {
        username: "jeugdboa",
        display_name: "Lotte de Boer",
        role: Role::Jeugdboa,
        team: true,
        wpg_authorised: false,
        login: true,
        boa_number: Some("BOA-0453-0131"),
    },
    DemoUser {
        username: "beheerder",
        display_name: "Functioneel beheer",
        role: Role::Beheerder,
        team: false,
        wpg_authorised: false,
        login: true,
        boa_number: None,
    },
    DemoUser {
        username: "boa.devries",
        display_name: "Kees de Vries",
        role: Role::Handhaver,
        team: true,
        wpg_authorised: false,
        login: false,
        boa_number: Some("BOA-0453-0087"),
    },
    DemoUser {
        username: "boa.elamrani",
        display_name: "Yasmina El Amrani",
        role: Role::Handhaver,
        team: true,
        wpg_authorised: false,
        login: false,
        boa_number: Some("BOA-0453-0140"),
    },
];

/// Officers who log violations, as indexes into `USERS`.
const OFFICERS: &[usize] = &[1, 4, 5];
const LEAD: usize = 0;

/// Where violations cluster: a buurt, how strongly, the spread in metres, and what happens there.
const HOTSPOTS: &[(&str, f64, f64, &[Category])] = &[
    (
        "BU04530106",
        3.0,
        180.0,
        &[Category::Parkeren, Category::Afval],
    ), // Stadhuisbuurt: IJmuiden centre
    (
        "BU04530302",
        2.0,
        220.0,
        &[Category::Parkeren, Category::Afval],
    ), // Oud-IJmuiden: harbour, beach
    (
        "BU04530801",
        1.5,
        200.0,
        &[Category::Afval, Category::Parkeren],
    ), // Maadbuurt: Velserbroek centre
    ("BU04530603", 1.2, 250.0, &[Category::Honden]), // Santpoort-Dorp: park
    ("BU04530504", 1.0, 200.0, &[Category::Afval]),  // Watervlietbuurt: Velsen-Noord
];

/// One generated report with its author and what the lead later does with it.
#[derive(Debug, Clone)]
pub struct DemoViolation {
    pub officer: usize,
    pub report: NewViolation,
    pub received_at: DateTime<Utc>,
    pub review: Option<(Status, Option<String>)>,
}

#[derive(Debug, Clone)]
pub struct Scenario {
    pub date: NaiveDate,
    pub violations: Vec<DemoViolation>,
    /// Rounds with their tracks, youth groups and observations, an incident.
    pub field: Vec<field::DemoRecord>,
}

pub(crate) fn local(date: NaiveDate, minutes: i64) -> DateTime<Utc> {
    let t = date.and_time(NaiveTime::MIN);
    let start = Amsterdam
        .from_local_datetime(&t)
        .earliest()
        .map(|d| d.with_timezone(&Utc))
        .unwrap_or_else(|| Utc.from_utc_datetime(&t));
    start + Duration::minutes(minutes)
}

pub(crate) fn gaussian(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = rng.random_range(f64::EPSILON..1.0);
    let u2: f64 = rng.random_range(0.0..1.0);
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// A point inside Velsen: near a hotspot, or anywhere in a random wijk.
fn point(rng: &mut ChaCha8Rng, areas: &AreaIndex, near: Option<(f64, f64, f64)>) -> (f64, f64) {
    let wijken: Vec<_> = areas
        .areas()
        .iter()
        .filter(|a| a.kind == AreaKind::Wijk)
        .collect();
    for _ in 0..1000 {
        let (lat, lon) = match near {
            Some((lat0, lon0, spread_m)) => {
                let dlat = gaussian(rng) * spread_m / 111_320.0;
                let dlon = gaussian(rng) * spread_m / (111_320.0 * lat0.to_radians().cos());
                (lat0 + dlat, lon0 + dlon)
            }
            None => {
                let w = wijken[rng.random_range(0..wijken.len())];
                let Some(r) = w.shape.bounding_rect() else {
                    continue;
                };
                (
                    rng.random_range(r.min().y..r.max().y),
                    rng.random_range(r.min().x..r.max().x),
                )
            }
        };
        if areas.locate(lat, lon).buurt.is_some() {
            return (lat, lon);
        }
    }
    // Unreachable with real boundaries; fall back to the centre of Velsen.
    (52.4600, 4.6200)
}

fn plate(rng: &mut ChaCha8Rng) -> String {
    const L: &[u8] = b"BDFGHJKLNPRSTVXZ";
    let l = |rng: &mut ChaCha8Rng| L[rng.random_range(0..L.len())] as char;
    let (a, b) = (l(rng), l(rng));
    let n: u32 = rng.random_range(100..999);
    format!("{a}{b}{n}{}", l(rng))
}

const DESCRIPTIONS: &[(Category, &[&str])] = &[
    (
        Category::Afval,
        &[
            "Huisvuilzakken naast de ondergrondse container geplaatst",
            "Grofvuil op de stoep zonder afspraak",
            "Afvalzak te vroeg aangeboden",
            "Kartonnen dozen bijgeplaatst bij papiercontainer",
            "Gedumpt afval in de groenstrook",
        ],
    ),
    (
        Category::Parkeren,
        &[
            "Geparkeerd op invalidenparkeerplaats zonder kaart",
            "Auto op de stoep geparkeerd",
            "Parkeren buiten de vakken",
            "Stilstaan op de busbaan",
            "Parkeren in blauwe zone zonder schijf",
        ],
    ),
    (
        Category::Honden,
        &[
            "Hond los in aanlijngebied",
            "Hondenpoep niet opgeruimd",
            "Hond in kinderspeelplaats",
            "Hond los op het strand buiten toegestane tijden",
        ],
    ),
    (
        Category::Overig,
        &[
            "Fiets vastgezet aan lantaarnpaal bij station",
            "Wildplakken van posters",
            "Hinderlijk gedrag bij winkelcentrum",
        ],
    ),
];

/// Generates the demo day. `size` is the number of violations (the demo uses 150).
pub fn generate(reference: &Reference, date: NaiveDate, size: usize, seed: u64) -> Scenario {
    Scenario {
        date,
        violations: violations(reference, date, size, seed),
        field: field::generate(reference, date, seed),
    }
}

/// A generator seed for one day: the same seed gives other records on another date.
fn day_seed(seed: u64, date: NaiveDate) -> u64 {
    seed ^ (date.num_days_from_ce() as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// The violations of a demo day, sorted by time (pure, seeded).
fn violations(
    reference: &Reference,
    date: NaiveDate,
    size: usize,
    seed: u64,
) -> Vec<DemoViolation> {
    let mut rng = ChaCha8Rng::seed_from_u64(day_seed(seed, date));
    let hotspots: Vec<(f64, f64, f64, f64, &[Category])> = HOTSPOTS
        .iter()
        .filter_map(|(code, w, spread, cats)| {
            let a = reference.areas.get(code)?;
            let p = a.shape.interior_point()?;
            Some((p.y(), p.x(), *w, *spread, *cats))
        })
        .collect();
    let total_weight: f64 = hotspots.iter().map(|h| h.2).sum::<f64>() + 3.0;
    let mut out = Vec::with_capacity(size);
    for _ in 0..size {
        // Shift: nacht 15 %, vroeg 45 %, laat 40 % of the day's reports.
        let r: f64 = rng.random();
        let minute = if r < 0.15 {
            if rng.random_bool(0.8) {
                rng.random_range(0..7 * 60)
            } else {
                rng.random_range(23 * 60..24 * 60)
            }
        } else if r < 0.60 {
            rng.random_range(7 * 60..15 * 60)
        } else {
            rng.random_range(15 * 60..23 * 60)
        };
        let observed_at = local(date, minute) + Duration::seconds(rng.random_range(0..60));
        // Place and category: 3 parts of the weight spread over all of Velsen.
        let mut pick = rng.random_range(0.0..total_weight);
        let mut spot = None;
        for h in &hotspots {
            if pick < h.2 {
                spot = Some(h);
                break;
            }
            pick -= h.2;
        }
        let category = match spot {
            Some(h) => h.4[rng.random_range(0..h.4.len())],
            None => [
                Category::Afval,
                Category::Parkeren,
                Category::Honden,
                Category::Overig,
                Category::Parkeren,
                Category::Afval,
            ][rng.random_range(0..6)],
        };
        let (lat, lon) = point(&mut rng, &reference.areas, spot.map(|h| (h.0, h.1, h.3)));
        let day = date;
        let codes: Vec<_> = reference
            .feitcodes
            .iter()
            .filter(|f| {
                f.category == category.as_str() && reference.feitcode_on(&f.code, day).is_some()
            })
            .collect();
        let feitcode = if codes.is_empty() {
            None
        } else {
            Some(codes[rng.random_range(0..codes.len())])
        };
        let outcome = {
            let o: f64 = rng.random();
            let can_fine = feitcode.is_some_and(|f| track_allows_fine(&f.track));
            if o < 0.55 {
                Outcome::Warning
            } else if o < 0.80 && can_fine {
                Outcome::Fine
            } else if o < 0.90 && category == Category::Afval {
                Outcome::Removed
            } else if o < 0.93 {
                Outcome::PoliceReport
            } else {
                Outcome::None
            }
        };
        let (plate, driver_present) = if category == Category::Parkeren
            && matches!(outcome, Outcome::Fine | Outcome::Warning)
        {
            (Some(plate(&mut rng)), Some(rng.random_bool(0.3)))
        } else {
            (None, None)
        };
        let texts = DESCRIPTIONS
            .iter()
            .find(|(c, _)| *c == category)
            .map(|(_, t)| *t)
            .unwrap_or(&[]);
        let description = texts
            .get(rng.random_range(0..texts.len().max(1)))
            .copied()
            .unwrap_or("")
            .to_string();
        let officer = OFFICERS[rng.random_range(0..OFFICERS.len())];
        let accuracy_m = (3.0 + gaussian(&mut rng).abs() * 12.0).min(80.0);
        let mut id_bytes = [0u8; 16];
        rng.fill(&mut id_bytes);
        let id = uuid::Builder::from_random_bytes(id_bytes).into_uuid();
        let submitted = rng.random_bool(0.8);
        let review = if submitted {
            let r: f64 = rng.random();
            if r < 0.35 {
                Some((Status::Approved, None))
            } else if r < 0.42 {
                Some((
                    Status::Rejected,
                    Some("Feitcode past niet bij de omschrijving; graag aanvullen".to_string()),
                ))
            } else {
                None
            }
        } else {
            None
        };
        out.push(DemoViolation {
            officer,
            received_at: observed_at + Duration::minutes(rng.random_range(1..45)),
            report: NewViolation {
                id,
                category,
                feitcode: if category == Category::Overig {
                    None
                } else {
                    feitcode.map(|f| f.code.clone())
                },
                observed_at,
                location: Location {
                    lat: (lat * 1e6).round() / 1e6,
                    lon: (lon * 1e6).round() / 1e6,
                    accuracy_m: (accuracy_m * 10.0).round() / 10.0,
                    source: LocationSource::Gps,
                    fix_time: Some(observed_at - Duration::seconds(rng.random_range(0..20))),
                },
                description,
                outcome,
                plate,
                driver_present,
                // The officer's afdoening, one the outcome allows on the code's track, picked
                // from the id so the demo's random sequence stays as it was.
                sanction: {
                    let track = feitcode
                        .filter(|_| category != Category::Overig)
                        .map(|f| f.track.as_str());
                    let allowed = crate::violations::rules::allowed_sanctions(outcome, track);
                    (submitted && !allowed.is_empty())
                        .then(|| allowed[usize::from(id.as_bytes()[0]) % allowed.len()])
                },
                officer_ids: vec![],
                status: Some(if submitted {
                    Status::Submitted
                } else {
                    Status::Concept
                }),
                round_id: None,
            },
            review,
        });
    }
    out.sort_by_key(|v| v.report.observed_at);
    out
}

/// Creates (or re-activates) the demo accounts; returns their user rows in `USERS` order.
pub async fn ensure_accounts(state: &AppState) -> Result<Vec<app_user::Model>, ApiError> {
    let system = crate::audit::Actor::system("thor serve --demo");
    let mut users = Vec::new();
    for u in USERS {
        let existing = accounts::find_by_username(&state.db.write, u.username).await?;
        let model = match existing {
            Some(m) => m,
            None => {
                let password = if u.login {
                    DEMO_PASSWORD.to_string()
                } else {
                    // Officers who only appear on reports get a password no one knows.
                    crate::auth::token::generate()
                };
                accounts::create_user(
                    &state.db,
                    &system,
                    accounts::NewUser {
                        username: u.username.into(),
                        display_name: u.display_name.into(),
                        role: u.role,
                        team: u.team.then(|| TEAM.to_string()),
                        wpg_authorised: u.wpg_authorised,
                        boa_number: u.boa_number.map(str::to_string),
                        password,
                        demo: true,
                        team_policy: accounts::TeamPolicy::CreateWhenNew,
                    },
                )
                .await?
            }
        };
        users.push(model);
    }
    accounts::set_demo_accounts_active(&state.db, true).await?;
    Ok(users)
}

fn principal_of(u: &app_user::Model, role: Role) -> Principal {
    Principal {
        user_id: u.id,
        username: u.username.clone(),
        role,
        team_id: u.team_id,
        wpg_authorised: u.wpg_authorised,
        device_id: "demo-loader".into(),
        token_id: Uuid::nil(),
        seen_seq: 0,
    }
}

/// What `load` did.
#[derive(Debug, Default, Clone, Copy)]
pub struct Loaded {
    pub created: usize,
    pub already_there: usize,
}

/// Writes a scenario through the ordinary write paths. Loading the same scenario twice changes
/// nothing: ids are deterministic and a repeated create is recognised as a retry.
pub async fn load(state: &AppState, scenario: &Scenario) -> Result<Loaded, ApiError> {
    let users = ensure_accounts(state).await?;
    let lead = principal_of(&users[LEAD], USERS[LEAD].role);
    let mut loaded = Loaded::default();
    for v in &scenario.violations {
        let officer = principal_of(&users[v.officer], USERS[v.officer].role);
        match store::create(
            &state.db,
            &state.reference,
            &officer,
            v.report.clone(),
            store::WriteMeta::default(),
            v.received_at,
        )
        .await?
        {
            Created::New(_) => loaded.created += 1,
            Created::Existing(_) => {
                loaded.already_there += 1;
                continue;
            }
        }
        if let Some((status, note)) = &v.review {
            let patch = ViolationPatch {
                status: Some(*status),
                review_note: note.clone(),
                ..Default::default()
            };
            store::update(
                &state.db,
                &state.reference,
                &lead,
                v.report.id,
                patch,
                v.received_at + Duration::minutes(50),
            )
            .await?;
        }
    }
    load_field(state, &users, &scenario.field, &mut loaded).await?;
    Ok(loaded)
}

/// Days of history `thor serve --demo` loads before the demo day, so that the briefing's trends
/// (the same hours of the previous 7 and 28 days) read something.
pub const HISTORY_DAYS: i64 = 28;

/// Generates and loads the `days` days before `date`: each an ordinary day of the same generator
/// (busier on Fridays and Saturdays), every report submitted and reviewed, so the past adds to the
/// trends and not to today's follow-ups. One transaction per day, reports created in batches per
/// officer through the same write path as a phone's push; days already there are skipped.
pub async fn load_history(
    state: &AppState,
    date: NaiveDate,
    days: i64,
    seed: u64,
) -> Result<Loaded, ApiError> {
    use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
    // Days are written newest first, one transaction each: if the oldest has reports, the
    // history is complete (an interrupted load is finished by the next start).
    use crate::violations::entity::violation;
    let (day_start, day_end) = store::amsterdam_day(date - Duration::days(days));
    let there = violation::Entity::find()
        .filter(violation::Column::ObservedAt.gte(day_start))
        .filter(violation::Column::ObservedAt.lt(day_end))
        .count(&state.db.read)
        .await?;
    if there > 0 {
        return Ok(Loaded::default());
    }
    let users = ensure_accounts(state).await?;
    let lead = principal_of(&users[LEAD], USERS[LEAD].role);
    let mut loaded = Loaded::default();
    let now = Utc::now();
    for back in 1..=days {
        let day = date - Duration::days(back);
        let busy = matches!(day.weekday(), chrono::Weekday::Fri | chrono::Weekday::Sat);
        let size =
            110 + (day.num_days_from_ce().rem_euclid(7) as usize) * 6 + if busy { 40 } else { 0 };
        let mut reports = violations(&state.reference, day, size, seed);
        // Received by the end of the day (reports are received within 45 minutes of observing).
        let received = store::amsterdam_day(day).1 + Duration::hours(1);
        let txn = crate::sync::begin_write(&state.db).await?;
        let mut by_officer: std::collections::BTreeMap<
            usize,
            Vec<(NewViolation, store::WriteMeta)>,
        > = std::collections::BTreeMap::new();
        for v in &mut reports {
            v.report.status = Some(Status::Submitted);
            by_officer
                .entry(v.officer)
                .or_default()
                .push((v.report.clone(), store::WriteMeta::default()));
        }
        let mut new_ids = std::collections::HashSet::new();
        for (officer, inputs) in by_officer {
            let p = principal_of(&users[officer], USERS[officer].role);
            for r in store::create_many_in(&txn, &state.reference, &p, inputs, received).await? {
                match r? {
                    Created::New(m) => {
                        loaded.created += 1;
                        new_ids.insert(m.id);
                    }
                    Created::Existing(_) => loaded.already_there += 1,
                }
            }
        }
        for v in reports.iter().filter(|v| new_ids.contains(&v.report.id)) {
            let (status, note) = v.review.clone().unwrap_or((Status::Approved, None));
            let patch = ViolationPatch {
                status: Some(status),
                review_note: note,
                ..Default::default()
            };
            store::update_in(&txn, &state.reference, &lead, v.report.id, patch, received).await?;
            if status == Status::Approved {
                take_case_steps(&txn, &lead, &v.report, now).await?;
            }
        }
        txn.commit().await?;
    }
    Ok(loaded)
}

/// The office's work on an earlier day's case: every step due by now is taken, halfway to its
/// deadline; about one case in twelve (picked by its id) was left, so the lead sees what is
/// overdue.
async fn take_case_steps(
    txn: &sea_orm::DatabaseTransaction,
    lead: &Principal,
    report: &NewViolation,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    let Some(s) = report.sanction else {
        return Ok(());
    };
    if report.id.as_bytes()[1].is_multiple_of(12) {
        return Ok(());
    }
    let mut at = report.observed_at;
    for step in crate::cases::track::steps(s) {
        let taken = at + Duration::hours(step.due_days * 12);
        if at + Duration::days(step.due_days) > now {
            break;
        }
        crate::cases::take_step_in(txn, lead, report.id, step.key, None, taken).await?;
        at = taken;
    }
    Ok(())
}

/// Replaces `@user:N` references by the accounts' ids.
fn resolve_users(v: &mut serde_json::Value, users: &[app_user::Model]) {
    match v {
        serde_json::Value::String(s) => {
            if let Some(n) = s
                .strip_prefix(field::USER_REF)
                .and_then(|n| n.parse::<usize>().ok())
                && let Some(u) = users.get(n)
            {
                *s = u.id.to_string();
            }
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(|x| resolve_users(x, users)),
        serde_json::Value::Object(o) => o.values_mut().for_each(|x| resolve_users(x, users)),
        _ => {}
    }
}

async fn load_field(
    state: &AppState,
    users: &[app_user::Model],
    records: &[field::DemoRecord],
    loaded: &mut Loaded,
) -> Result<(), ApiError> {
    use crate::records::{kinds, store as rstore};

    let mut ordered: Vec<&field::DemoRecord> = records.iter().collect();
    ordered.sort_by_key(|r| r.received_at);
    for r in ordered {
        let p = principal_of(&users[r.user], USERS[r.user].role);
        let (name, update) = match r.kind.split_once(':') {
            Some((n, _)) => (n, true),
            None => (r.kind, false),
        };
        let Some(kind) = kinds::all().into_iter().find(|k| k.wire_name() == name) else {
            continue;
        };
        let mut data = serde_json::Value::Object(r.data.clone());
        resolve_users(&mut data, users);
        let serde_json::Value::Object(data) = data else {
            continue;
        };
        let txn = crate::sync::begin_write(&state.db).await?;
        if update {
            rstore::update_in(&txn, kind, &p, r.id, &data, r.received_at).await?;
        } else {
            match rstore::create_in(&txn, kind, &p, r.id, &data, r.received_at).await? {
                rstore::Created::New(_) => loaded.created += 1,
                rstore::Created::Existing(_) => loaded.already_there += 1,
            }
        }
        txn.commit().await?;
    }
    Ok(())
}

/// Today in Europe/Amsterdam.
pub fn today() -> NaiveDate {
    Utc::now().with_timezone(&Amsterdam).date_naive()
}
