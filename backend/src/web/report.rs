//! The lead's reports on the page: the list (filters, paging, review buttons, the undo banner)
//! and one report's own page (its photos, place on a small map, officers, flags and history).
//!
//! Reads go through the violations store (`store::page_of`, `store::get`) and its `view`, so
//! what a lead sees of a report is the read gate's answer, logged as on the API. The review
//! itself is the store's one write path; taking a review back is a status change back to
//! `submitted` that the store allows the reviewer within `rules::UNDO_WINDOW`.

use std::collections::HashMap;

use axum::extract::{Extension, Form, Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Europe::Amsterdam;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use super::{Csrf, dec, dutch_date, local_time, render, safe_back, to_login};
use crate::access::{self, Disclosure, Kind, Sight};
use crate::app::AppState;
use crate::auth::{Action, Principal};
use crate::briefing::Shift;
use crate::briefing::svg::{self, MapArea, MapInput, MapPoint};
use crate::error::ApiError;
use crate::labels;
use crate::violations::entity::violation;
use crate::violations::store::{self, Filter};
use crate::violations::{Category, Status, rules};

/// Reports shown per page of the list.
pub const PAGE: u64 = 25;

/// The list's filters as the page's query carries them (Dutch names: they show in the address
/// bar). Empty fields are no filter; `status` defaults to the reports waiting for review.
#[derive(Debug, Default, Clone, Deserialize, Serialize)]
pub struct ListQuery {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub status: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub categorie: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub wijk: String,
    /// An officer's account id: the reports they are named on (the per-officer view).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub handhaver: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kenteken: String,
}

/// The status choices of the list, the first the default.
const STATUSES: [(&str, &str); 5] = [
    ("submitted", "Te beoordelen"),
    ("approved", "Goedgekeurd"),
    ("rejected", "Afgewezen"),
    ("concept", "Concept"),
    ("alle", "Alle meldingen"),
];

/// The address of the list with these filters (and `van`, the first shown), for paging, the
/// forms' way back and the report page's link back.
pub fn list_href(date: NaiveDate, shift: Option<Shift>, lq: &ListQuery, van: u64) -> String {
    #[derive(Serialize)]
    struct Q<'a> {
        date: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        shift: Option<&'a str>,
        #[serde(flatten)]
        lq: &'a ListQuery,
        #[serde(skip_serializing_if = "is_zero")]
        van: u64,
    }
    fn is_zero(n: &u64) -> bool {
        *n == 0
    }
    let q = serde_urlencoded::to_string(Q {
        date: date.to_string(),
        shift: shift.map(Shift::as_str),
        lq,
        van,
    })
    .unwrap_or_default();
    format!("/briefing?{q}")
}

/// The officers of the scope by id (display name, or username without one).
async fn officer_names(state: &AppState, p: &Principal) -> Result<Vec<(Uuid, String)>, ApiError> {
    Ok(crate::auth::accounts::members_in_scope(&state.db.read, p)
        .await?
        .into_iter()
        .map(|u| (u.id, u.shown_name().to_string()))
        .collect())
}

fn names_of(ids: &[Uuid], names: &HashMap<Uuid, String>) -> String {
    ids.iter()
        .map(|i| names.get(i).cloned().unwrap_or_else(|| "onbekend".into()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What the page says a report is: "Parkeren R315b, waarschuwing".
fn what(m: &violation::Model) -> String {
    format!(
        "{}{}, {}",
        labels::nl("category", &m.category),
        m.feitcode
            .as_deref()
            .map(|f| format!(" {f}"))
            .unwrap_or_default(),
        labels::nl("outcome", &m.outcome).to_lowercase()
    )
}

/// The photos of a report the reader may see, with their derivatives made.
fn visible_photos(
    p: &Principal,
    m: &violation::Model,
    photos: &HashMap<Uuid, Vec<crate::photos::entity::photo::Model>>,
) -> Vec<crate::photos::entity::photo::Model> {
    if access::decide(p, Kind::Photo, &store::facts(m)) != Sight::Full {
        return vec![];
    }
    photos
        .get(&m.id)
        .into_iter()
        .flatten()
        .filter(|ph| ph.derivative_state == crate::photos::DerivativeState::Done.as_str())
        .cloned()
        .collect()
}

/// Which part of the list the page shows: the filters, the first report shown (paging), the
/// report just reviewed (for the undo banner), and the day and shift of the briefing.
#[derive(Clone, Copy)]
pub struct ListView<'a> {
    pub filters: &'a ListQuery,
    pub van: u64,
    pub done: Option<Uuid>,
    pub date: NaiveDate,
    pub shift: Option<Shift>,
}

/// The list section's context: filters with their choices, the rows, paging, the undo banner.
pub async fn list_section(
    state: &AppState,
    p: &Principal,
    view: &ListView<'_>,
    disclosure: &mut Disclosure,
) -> Result<Value, ApiError> {
    let ListView {
        filters: lq,
        van,
        done,
        date,
        shift,
    } = *view;
    let may_plate = access::reads_wpg_of(p, Kind::Violation);
    let status_key = if lq.status.is_empty() {
        "submitted"
    } else {
        lq.status.as_str()
    };
    let mut notes: Vec<String> = Vec::new();
    let mut f = Filter {
        window: Some(crate::briefing::window(date, shift, &state.shifts)),
        limit: PAGE,
        ..Default::default()
    };
    match status_key {
        "alle" => {}
        s => match Status::parse(s) {
            Some(s) => f.status = Some(s),
            None => notes.push(format!("Onbekende status “{s}”: alle meldingen getoond.")),
        },
    }
    if !lq.categorie.is_empty() {
        match Category::parse(&lq.categorie) {
            Some(c) => f.category = Some(c),
            None => notes.push(format!("Onbekende categorie “{}”.", lq.categorie)),
        }
    }
    if !lq.wijk.is_empty() {
        f.wijk = Some(lq.wijk.clone());
    }
    if !lq.handhaver.is_empty() {
        match lq.handhaver.parse() {
            Ok(u) => f.officer = Some(u),
            Err(_) => notes.push("Onbekende handhaver.".into()),
        }
    }
    if !lq.kenteken.trim().is_empty() {
        if may_plate {
            f.plate = Some(lq.kenteken.clone());
        } else {
            notes.push("Zoeken op kenteken vraagt een Wpg-autorisatie.".into());
        }
    }
    let (rows, total) = store::page_of(&state.db, p, &f, van).await?;
    let officers = officer_names(state, p).await?;
    let names: HashMap<Uuid, String> = officers.iter().cloned().collect();
    let flags = crate::photos::store::report_flags(&state.db.read, &rows).await?;
    let ids: Vec<Uuid> = rows.iter().map(|m| m.id).collect();
    let photos = crate::photos::store::of_violations(&state.db.read, &ids).await?;
    let back = list_href(date, shift, lq, van);
    let items: Vec<Value> = rows
        .iter()
        .map(|m| {
            let v = store::view(m, &state.reference, disclosure);
            let mut fl: Vec<String> = v.flags.iter().map(|f| labels::nl("flag", f).to_string()).collect();
            fl.extend(flags.get(&m.id).into_iter().flatten().map(|f| labels::nl("flag", f).to_string()));
            json!({
                "id": m.id,
                "time": local_time(m.observed_at),
                "what": what(m),
                "status": labels::nl("report_status", &m.status),
                "reviewable": m.status == Status::Submitted.as_str(),
                "description": v.description.unwrap_or_default(),
                "plate": v.plate,
                "officers": names_of(&v.officer_ids, &names),
                "photos": visible_photos(p, m, &photos).iter().map(|ph| ph.id).collect::<Vec<_>>(),
                "place": v.buurt.or(v.wijk).map(|a| a.name).unwrap_or_else(|| "buiten Velsen".into()),
                "flags": fl,
                "href": format!("/briefing/melding/{}?terug={}", m.id, urlencode(&back)),
            })
        })
        .collect();
    let shown_to = van + items.len() as u64;
    let status_label = STATUSES
        .iter()
        .find(|(k, _)| *k == status_key)
        .map_or("Meldingen", |(_, l)| l);
    let banner = match done {
        Some(id) => undo_banner(state, p, id, Utc::now()).await?,
        None => None,
    };
    let wijken: Vec<Value> = state
        .reference
        .areas
        .areas()
        .iter()
        .filter(|a| a.kind == crate::geo::AreaKind::Wijk)
        .map(|a| json!({ "code": a.code, "name": a.name, "on": a.code == lq.wijk }))
        .collect();
    Ok(json!({
        "heading": format!("{status_label} ({}–{} van {})", (van + 1).min(total), shown_to, total),
        "items": items,
        "more": (shown_to < total).then(|| list_href(date, shift, lq, van + PAGE)),
        "prev": (van > 0).then(|| list_href(date, shift, lq, van.saturating_sub(PAGE))),
        "back": back,
        "banner": banner,
        "notes": notes,
        "filtered": !lq.categorie.is_empty() || !lq.wijk.is_empty() || !lq.handhaver.is_empty() || !lq.kenteken.is_empty() || status_key != "submitted",
        "filters": {
            "statuses": STATUSES.iter().map(|(k, l)| json!({ "key": k, "label": l, "on": *k == status_key })).collect::<Vec<_>>(),
            "categories": state.reference.categories.iter().map(|c| json!({ "key": c.code, "label": labels::nl("category", &c.code), "on": c.code == lq.categorie })).collect::<Vec<_>>(),
            "wijken": wijken,
            "officers": officers.iter().map(|(id, n)| json!({ "key": id, "label": n, "on": id.to_string() == lq.handhaver })).collect::<Vec<_>>(),
            "kenteken": lq.kenteken,
            "may_plate": may_plate,
        },
    }))
}

fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The banner after a review on the page: what was decided, and "Ongedaan maken" while the
/// reviewer may still take it back.
async fn undo_banner(
    state: &AppState,
    p: &Principal,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<Option<Value>, ApiError> {
    let m = match store::get(&state.db, p, id).await {
        Ok(m) => m,
        Err(ApiError::NotFound(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    if !matches!(m.status.as_str(), "approved" | "rejected") {
        return Ok(None);
    }
    let undoable = rules::check_undo(m.reviewed_by, m.reviewed_at, p.user_id, now).is_ok();
    if m.reviewed_by != Some(p.user_id) {
        return Ok(None);
    }
    Ok(Some(json!({
        "id": m.id,
        "text": format!("Melding van {} ({}) is {}.", local_time(m.observed_at), what(&m), labels::nl("report_status", &m.status)),
        "undoable": undoable,
        "until": m.reviewed_at.map(|t| local_time(t + rules::UNDO_WINDOW)),
    })))
}

#[derive(Deserialize)]
pub struct ReportQuery {
    terug: Option<String>,
}

/// `GET /briefing/melding/{id}`: one report with its evidence, for the lead to judge.
pub async fn report_page(
    State(state): State<AppState>,
    p: Result<Principal, ApiError>,
    csrf: Option<Extension<Csrf>>,
    Path(id): Path<Uuid>,
    Query(q): Query<ReportQuery>,
) -> Response {
    let Ok(p) = p else { return to_login() };
    let csrf = csrf.map(|Extension(Csrf(t))| t).unwrap_or_default();
    match report(&state, &p, id, q, &csrf).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn report(
    state: &AppState,
    p: &Principal,
    id: Uuid,
    q: ReportQuery,
    csrf: &str,
) -> Result<Response, ApiError> {
    let m = store::get(&state.db, p, id).await?;
    let mut disclosure = Disclosure::new(p, &state.audit);
    let v = store::view(&m, &state.reference, &mut disclosure);
    let names: HashMap<Uuid, String> = officer_names(state, p).await?.into_iter().collect();
    let flags =
        crate::photos::store::report_flags(&state.db.read, std::slice::from_ref(&m)).await?;
    let photos = crate::photos::store::of_violations(&state.db.read, &[m.id]).await?;
    let day = m.observed_at.with_timezone(&Amsterdam).date_naive();
    let feitcode = m
        .feitcode
        .as_deref()
        .and_then(|c| state.reference.feitcode_on(c, day));
    let history = crate::audit::history(&state.db.read, store::TABLE, &m.id.to_string()).await?;
    let here_back = format!(
        "/briefing/melding/{}?terug={}",
        m.id,
        urlencode(&safe_back(q.terug.as_deref()))
    );
    // Repeat offenders: earlier reports of this kenteken (for a Wpg reader) and at this spot.
    use crate::lookup::{By, REPEAT_MONTHS, earlier};
    let back_to_list = safe_back(q.terug.as_deref());
    let earlier_json = |found: Vec<(violation::Model, Option<f64>)>| -> Vec<Value> {
        found
            .into_iter()
            .filter(|(e, _)| e.id != m.id)
            .map(|(e, _)| {
                json!({
                    "when": format!("{} {}", day_nl(e.observed_at), local_time(e.observed_at)),
                    "what": what(&e),
                    "status": labels::nl("report_status", &e.status),
                    "href": format!("/briefing/melding/{}?terug={}", e.id, urlencode(&back_to_list)),
                })
            })
            .collect()
    };
    let by_plate = match &v.plate {
        Some(pl) if access::reads_wpg_of(p, Kind::Violation) => earlier_json(
            earlier(
                state,
                p,
                &By::Kenteken(pl.clone()),
                REPEAT_MONTHS,
                &mut disclosure,
            )
            .await?,
        ),
        _ => vec![],
    };
    let at_spot = earlier_json(
        earlier(
            state,
            p,
            &By::Spot(m.lat, m.lon),
            REPEAT_MONTHS,
            &mut disclosure,
        )
        .await?,
    );
    let case = match crate::cases::case_for(state, &m).await {
        Ok(c) => Some(case_json(&c, p, &here_back)),
        Err(ApiError::NotFound(_)) => None,
        Err(e) => return Err(e),
    };
    let back = safe_back(q.terug.as_deref());
    let mut fl: Vec<String> = v
        .flags
        .iter()
        .map(|f| labels::nl("flag", f).to_string())
        .collect();
    fl.extend(
        flags
            .get(&m.id)
            .into_iter()
            .flatten()
            .map(|f| labels::nl("flag", f).to_string()),
    );
    let shown_photos = visible_photos(p, &m, &photos);
    let photo_count = photos.get(&m.id).map_or(0, Vec::len);
    let when = |t: DateTime<Utc>| {
        format!(
            "{} {}",
            dutch_date(t.with_timezone(&Amsterdam).date_naive()),
            local_time(t)
        )
    };
    let place = [v.buurt.as_ref(), v.wijk.as_ref()]
        .into_iter()
        .flatten()
        .map(|a| a.name.clone())
        .collect::<Vec<_>>()
        .join(", ");
    let ctx = json!({
        "user_name": super::display_name(state, p).await,
        "user_role": labels::nl("role", p.role.as_str()),
        "csrf": csrf,
        "id": m.id,
        "title": what(&m),
        "status": labels::nl("report_status", &m.status),
        "observed": when(m.observed_at),
        "recorded": when(m.created_at),
        "officers": names_of(&v.officer_ids, &names),
        "place": place,
        "coordinates": format!("{}, {} (± {} m, {})", dec(v.location.lat, 5), dec(v.location.lon, 5), v.location.accuracy_m.round(), labels::nl("location_source", v.location.source.as_str())),
        "feitcode": feitcode.map(|f| json!({ "code": f.code, "description": f.description, "article": f.article })),
        "outcome": labels::nl("outcome", &m.outcome),
        "plate": v.plate,
        "redacted": v.redacted,
        "driver_present": v.driver_present.map(|d| if d { "ja" } else { "nee" }),
        "description": v.description,
        "flags": fl,
        "review_note": v.review_note,
        "photos": shown_photos.iter().map(|ph| json!({
            "id": ph.id,
            "taken": ph.captured_at.map(when),
            "sha256": ph.sha256,
        })).collect::<Vec<_>>(),
        "photos_withheld": photo_count > shown_photos.len(),
        "photo_count": photo_count,
        "map_svg": place_map(state, &m, &v.location),
        "history": history.iter().map(|h| json!({
            "at": when(h.at),
            "who": h.actor.clone().unwrap_or_else(|| "systeem".into()),
            "what": labels::nl("change", &h.action),
            "reason": h.reason,
        })).collect::<Vec<_>>(),
        "can_review": p.may(Action::ReviewViolation) && m.status == Status::Submitted.as_str(),
        "banner": undo_banner(state, p, m.id, Utc::now()).await?,
        "back": back,
        "here": here_back,
        "case": case,
        "repeats": { "months": REPEAT_MONTHS, "plate": by_plate, "spot": at_spot },
        "documents_readable": access::decide(p, Kind::Violation, &store::facts(&m)) == Sight::Full,
    });
    disclosure.log("read_page", Default::default()).await?;
    let mut res = render("report.html", ctx);
    res.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("private, no-store"),
    );
    Ok(res)
}

/// The place of a report on a small map: the buurten of its wijk (all wijken when it lies
/// outside them) with the report's point.
fn place_map(state: &AppState, m: &violation::Model, at: &crate::violations::Location) -> String {
    use crate::geo::AreaKind;
    let all = state.reference.areas.areas();
    let in_wijk = |a: &&crate::geo::Area| {
        a.kind == AreaKind::Buurt && m.wijk_code.is_some() && a.wijk_code == m.wijk_code
    };
    let shown: Vec<&crate::geo::Area> = if all.iter().any(|a| in_wijk(&a)) {
        all.iter().filter(in_wijk).collect()
    } else {
        all.iter().filter(|a| a.kind == AreaKind::Wijk).collect()
    };
    let areas: Vec<MapArea> = shown
        .into_iter()
        .map(|a| MapArea {
            code: a.code.clone(),
            name: a.name.clone(),
            shape: a.shape.clone(),
            count: 0,
        })
        .collect();
    let class = svg::category_class(&m.category);
    svg::map_svg(
        &MapInput {
            areas: &areas,
            points: &[MapPoint {
                lat: at.lat,
                lon: at.lon,
                class,
            }],
            hotspots: &[],
            tracks: &[],
            title: "Plaats van de melding",
        },
        360,
    )
}

#[derive(Deserialize)]
pub struct UndoForm {
    back: Option<String>,
}

/// `POST /briefing/review/{id}/undo`: the reviewer takes the review back (the store checks the
/// window and who reviewed).
pub async fn undo(
    State(state): State<AppState>,
    p: Result<Principal, ApiError>,
    Path(id): Path<Uuid>,
    Form(f): Form<UndoForm>,
) -> Response {
    let Ok(p) = p else { return to_login() };
    let patch = crate::violations::ViolationPatch {
        status: Some(Status::Submitted),
        ..Default::default()
    };
    match store::update(&state.db, &state.reference, &p, id, patch, Utc::now()).await {
        Ok(_) => {
            Redirect::to(&format!("{}#report-{id}", safe_back(f.back.as_deref()))).into_response()
        }
        Err(e) => e.into_response(),
    }
}

/// Cases shown on the briefing page, the most urgent first.
const CASES_SHOWN: usize = 25;

fn day_nl(t: DateTime<Utc>) -> String {
    t.with_timezone(&Amsterdam).format("%d-%m-%Y").to_string()
}

/// What the page shows of a case: its afdoening, the next step (with whether this reader may
/// take it now), the deadline, the steps taken and the documents.
fn case_json(c: &crate::cases::CaseView, p: &Principal, back: &str) -> Value {
    let lead = p.may(Action::ReviewViolation);
    let next = c.steps.iter().find(|s| Some(&s.key) == c.next.as_ref());
    let waits_for_review = next.is_some_and(|s| s.by == crate::cases::track::Actor::Teamleider)
        && c.report_status != Status::Approved;
    json!({
        "id": c.id,
        "sanction": c.sanction_label,
        "next": next.map(|s| json!({
            "key": s.key, "label": s.label,
            "may": !waits_for_review && (s.by == crate::cases::track::Actor::Officer || lead),
            "waits_for_review": waits_for_review,
        })),
        "due": c.due_at.map(day_nl),
        "overdue": c.overdue,
        "finished": c.finished,
        "steps": c.steps.iter().map(|s| json!({
            "label": s.label, "done": s.taken_at.map(|t| format!("{} {}", day_nl(t), local_time(t))),
            "by": s.taken_by, "note": s.note,
        })).collect::<Vec<_>>(),
        "documents": c.documents.iter().map(|d| json!({
            "href": format!("/api/v1/cases/{}/documents/{d}", c.id),
            "label": labels::nl("document", d),
        })).collect::<Vec<_>>(),
        "observed": format!("{} {}", day_nl(c.observed_at), local_time(c.observed_at)),
        "href": format!("/briefing/melding/{}?terug={}", c.id, urlencode(back)),
    })
}

/// The briefing's section of open cases: how many, and the most urgent.
pub async fn cases_section(state: &AppState, p: &Principal, back: &str) -> Result<Value, ApiError> {
    let open = crate::cases::open_cases(state, p, Utc::now()).await?;
    let overdue = open.iter().filter(|c| c.overdue).count();
    Ok(json!({
        "total": open.len(),
        "overdue": overdue,
        "items": open.iter().take(CASES_SHOWN).map(|c| case_json(c, p, back)).collect::<Vec<_>>(),
        "shown": open.len().min(CASES_SHOWN),
        "back": back,
    }))
}

#[derive(Deserialize)]
pub struct StepForm {
    step: String,
    back: Option<String>,
    note: Option<String>,
}

/// `POST /briefing/zaken/{id}/stap`: takes the next step of a case from the page.
pub async fn take_step(
    State(state): State<AppState>,
    p: Result<Principal, ApiError>,
    Path(id): Path<Uuid>,
    Form(f): Form<StepForm>,
) -> Response {
    let Ok(p) = p else { return to_login() };
    match crate::cases::take_step(&state, &p, id, f.step.trim(), f.note, Utc::now()).await {
        Ok(_) => {
            Redirect::to(&format!("{}#zaak-{id}", safe_back(f.back.as_deref()))).into_response()
        }
        Err(e) => e.into_response(),
    }
}
