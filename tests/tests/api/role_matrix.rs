//! The role matrix of issue 14 ("Wpg by construction"): every route × every kind of caller, on
//! one seeded server per backend.
//!
//! - The API routes come from the OpenAPI document the router generates (`thor::app::openapi`),
//!   so a new route is in the matrix by itself. What a route needs (a record id for a path
//!   parameter, a value for a required query or header parameter, a body) comes from small
//!   tables keyed by the route; a route the tables do not know is a failure, not a skip.
//! - The page routes (`web::router`) and the operations routes (`ops::router`) are plain axum: they
//!   are listed in `PAGE_ROUTES`, and that list is checked against the `.route(…)` calls in
//!   their source, so a new page route fails the matrix until it has an entry.
//! - Two teams are seeded with *sentinels*: unique texts in every kind of record a route can
//!   serve (Wpg plates and descriptions, youth names, incident texts, notes, conflict values), the
//!   bytes of a photo on a Wpg report, and the record ids themselves. One function,
//!   [`may_see`], says which sentinels a caller may see; every answer (status, headers, body) is
//!   searched for the others.
//! - Every answer that carries a Wpg sentinel of record R must have added an audit line by the
//!   caller that names R.
//! - Requests that name team A's records are repeated by outsiders with random ids: the answer
//!   must not tell an existing record of another team from a missing one.
//! - Mutations by callers who must not change team A (other team, no team, no token) and
//!   refused mutations of anyone are checked against a fingerprint of team A's data.
//!
//! All failures are collected and reported in one table at the end.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::time::Duration;

use base64::Engine;
use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Europe::Amsterdam;
use reqwest::Method;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use thor_tests::{Backend, TestApp, both, pulled_rows};
use uuid::Uuid;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
const PASSWORD: &str = "matrix-wachtwoord-12";
const TEAM_A: &str = thor::demo::TEAM;
const TEAM_B: &str = "Team IJmond";
/// Where the seeded records are: Stadhuisbuurt, IJmuiden.
const LAT: f64 = 52.4599;
const LON: f64 = 4.6218;

// ---------------------------------------------------------------------------------------------
// Who calls, and what they may see

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Team {
    A,
    B,
}

#[derive(Debug, Clone)]
struct Who {
    name: &'static str,
    /// None: no token at all.
    role: Option<&'static str>,
    team: Option<Team>,
    wpg: bool,
    token: Option<String>,
    /// The token was revoked (logged out) before the matrix ran.
    revoked: bool,
    user_id: Option<Uuid>,
    username: &'static str,
    password: &'static str,
}

impl Who {
    fn authenticated(&self) -> bool {
        self.token.is_some() && !self.revoked
    }
    fn is(&self, role: &str) -> bool {
        self.authenticated() && self.role == Some(role)
    }
    /// Team scope: one's own team; the beheerder every team.
    fn sees(&self, t: Team) -> bool {
        self.authenticated() && (self.is("beheerder") || self.team == Some(t))
    }
    /// BOA's by appointment, anyone else with the Wpg flag.
    fn reads_wpg(&self) -> bool {
        self.is("handhaver") || self.is("jeugdboa") || (self.authenticated() && self.wpg)
    }
    /// Youth data: jeugdboa's and Wpg-authorised team leads.
    fn youth_reader(&self) -> bool {
        self.is("jeugdboa") || (self.is("teamleider") && self.wpg)
    }
    fn field_role(&self) -> bool {
        self.is("handhaver") || self.is("jeugdboa") || self.is("teamleider")
    }
    /// Must not change (or see) anything of team A.
    fn outsider(&self) -> bool {
        !self.sees(Team::A)
    }
}

/// What a sentinel is, for the rule of who may see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Class {
    /// A record id (or user or team id) of the team.
    Id,
    /// Team data under the AVG: an AVG report's text, a note, a round.
    Avg,
    /// The plate of a Wpg report.
    WpgPlate,
    /// The description of a Wpg report (and conflict values of it).
    WpgDesc,
    /// The bytes of a photo of a Wpg report (original and derivatives).
    WpgPhoto,
    /// Youth-group data: a group's name, an observation's notes.
    Youth,
    /// A youth person's name (Wpg).
    YouthName,
    /// An incident's description: incidents describe persons (issue 14 item 3), Wpg.
    Incident,
}

impl Class {
    /// Wpg data: every read of it must be in the audit log.
    fn wpg(self) -> bool {
        matches!(
            self,
            Class::WpgPlate | Class::WpgDesc | Class::WpgPhoto | Class::YouthName | Class::Incident
        )
    }
}

/// THE rule, written once: which sentinels a caller may see.
fn may_see(who: &Who, team: Team, class: Class) -> bool {
    if !who.sees(team) {
        return false;
    }
    match class {
        Class::Id | Class::Avg => true,
        Class::WpgPlate | Class::WpgDesc | Class::WpgPhoto | Class::Incident => who.reads_wpg(),
        Class::Youth | Class::YouthName => who.youth_reader(),
    }
}

/// The audit log is the fg's to read: it names records by id and keeps the reasons given
/// (a hold's, a rejection's), never a record's values. So the fg's search of it may carry ids
/// and reasons of any team, and nothing else.
fn in_the_log(label: &str, who: &Who, s: &Sentinel) -> bool {
    (label.starts_with("GET /api/v1/audit") || label.starts_with("GET /audit"))
        && who.is("fg")
        && (s.class == Class::Id || s.what == "legal hold reason")
}

#[derive(Debug, Clone)]
enum Mark {
    Text(String),
    /// SHA-256 (hex) of a whole answer body.
    Blob(String),
}

#[derive(Debug, Clone)]
struct Sentinel {
    mark: Mark,
    team: Team,
    class: Class,
    /// For the report: what it is.
    what: String,
    /// Ids an audit line may name for this value to count as logged.
    records: Vec<String>,
}

impl Sentinel {
    fn text(
        team: Team,
        class: Class,
        what: &str,
        text: impl Into<String>,
        records: &[Uuid],
    ) -> Self {
        Sentinel {
            mark: Mark::Text(text.into()),
            team,
            class,
            what: what.to_string(),
            records: records.iter().map(Uuid::to_string).collect(),
        }
    }
    fn id(team: Team, what: &str, id: Uuid) -> Self {
        Sentinel::text(team, Class::Id, what, id.to_string(), &[id])
    }
    fn label(&self) -> String {
        format!("{:?}:{}", self.team, self.what)
    }
}

// ---------------------------------------------------------------------------------------------
// Seeding

/// The records of one team the matrix points its path parameters at.
#[derive(Debug, Clone)]
struct Ids {
    team: Uuid,
    wpg: Uuid,
    avg: Uuid,
    photo: Uuid,
    group: Uuid,
    person: Uuid,
    observation: Uuid,
    incident: Uuid,
    round: Uuid,
    segment: Uuid,
    note: Uuid,
    conflict: Uuid,
    youth_conflict: Uuid,
    /// A legal hold on the incident.
    hold: Uuid,
}

impl Ids {
    fn random() -> Ids {
        let r = Uuid::new_v4;
        Ids {
            team: r(),
            wpg: r(),
            avg: r(),
            photo: r(),
            group: r(),
            person: r(),
            observation: r(),
            incident: r(),
            round: r(),
            segment: r(),
            note: r(),
            conflict: r(),
            youth_conflict: r(),
            hold: r(),
        }
    }
    fn all(&self) -> Vec<(&'static str, Uuid)> {
        vec![
            ("team id", self.team),
            ("Wpg report id", self.wpg),
            ("AVG report id", self.avg),
            ("photo id", self.photo),
            ("youth group id", self.group),
            ("youth person id", self.person),
            ("observation id", self.observation),
            ("incident id", self.incident),
            ("round id", self.round),
            ("segment id", self.segment),
            ("note id", self.note),
            ("conflict id", self.conflict),
            ("youth conflict id", self.youth_conflict),
            ("legal hold id", self.hold),
        ]
    }
}

struct Seeded {
    ids: Ids,
    sentinels: Vec<Sentinel>,
    photo_bytes: Vec<u8>,
    /// The AVG report as a phone pulled it (for a push).
    avg_row: Value,
    push_cursor: i64,
}

fn sha_hex(b: &[u8]) -> String {
    Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

/// A photo-like JPEG, different per seed.
fn jpeg(w: u32, h: u32, seed: u8) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        let n = ((x * 7 + y * 13) as u8).wrapping_mul(seed | 1);
        image::Rgb([
            (x % 256) as u8 ^ n,
            (y % 256) as u8,
            seed.wrapping_add(n / 4),
        ])
    });
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85)
        .encode_image(&img)
        .expect("encode jpeg");
    out
}

async fn ok_json(res: reqwest::Response, what: &str) -> Value {
    let status = res.status();
    let text = res.text().await.expect("body");
    assert!(status.is_success(), "seeding: {what}: {status} {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

async fn login_as(app: &TestApp, username: &str, password: &str, device: &str) -> (String, Uuid) {
    let body = ok_json(
        app.login_response(username, password, device).await,
        &format!("login {username}"),
    )
    .await;
    (
        body["token"].as_str().expect("token").to_string(),
        body["user"]["id"]
            .as_str()
            .expect("user id")
            .parse()
            .expect("uuid"),
    )
}

async fn pull(app: &TestApp, token: &str) -> Value {
    ok_json(
        app.get(
            token,
            "/api/v1/sync/pull?last_pulled_at=0&schema_version=1&limit=5000",
        )
        .send()
        .await
        .expect("pull"),
        "pull",
    )
    .await
}

async fn push(app: &TestApp, token: &str, cursor: i64, changes: Value) -> Value {
    ok_json(
        app.post(
            token,
            &format!("/api/v1/sync/push?last_pulled_at={cursor}"),
            &json!({ "changes": changes }),
        )
        .send()
        .await
        .expect("push"),
        "push",
    )
    .await
}

/// Two devices of `user` edit `field` of one record offline: an open conflict whose values are
/// `server` and `client`. Returns the conflict's id (read by `lead`).
#[allow(clippy::too_many_arguments)]
async fn make_conflict(
    app: &TestApp,
    user: &str,
    lead: &str,
    table: &str,
    id: Uuid,
    field: &str,
    server: &str,
    client: &str,
) -> Uuid {
    let (d1, _) = login_as(app, user, password_of(user), &format!("conflict-1-{id}")).await;
    let (d2, _) = login_as(app, user, password_of(user), &format!("conflict-2-{id}")).await;
    let p1 = pull(app, &d1).await;
    let p2 = pull(app, &d2).await;
    let row = |p: &Value| {
        pulled_rows(p, table)
            .into_iter()
            .find(|r| r["id"] == id.to_string())
            .unwrap_or_else(|| panic!("seeding: {table} {id} is not in the pull of {user}"))
    };
    let mut r1 = row(&p1);
    let mut r2 = row(&p2);
    r1[field] = json!(server);
    r2[field] = json!(client);
    let c1 = p1["timestamp"].as_i64().expect("timestamp");
    let c2 = p2["timestamp"].as_i64().expect("timestamp");
    push(
        app,
        &d1,
        c1,
        json!({ table: { "created": [], "updated": [r1], "deleted": [] } }),
    )
    .await;
    let r = push(
        app,
        &d2,
        c2,
        json!({ table: { "created": [], "updated": [r2], "deleted": [] } }),
    )
    .await;
    assert_eq!(
        r["conflicts"].as_array().map(Vec::len),
        Some(1),
        "seeding: a conflict on {table}.{field}: {r}"
    );
    let open = ok_json(
        app.get(lead, "/api/v1/conflicts?status=open")
            .send()
            .await
            .expect("conflicts"),
        "conflicts",
    )
    .await;
    open.as_array()
        .and_then(|cs| cs.iter().find(|c| c["record_id"] == id.to_string()))
        .and_then(|c| c["id"].as_str())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("seeding: the lead sees the conflict on {table} {id}: {open}"))
}

fn password_of(user: &str) -> &'static str {
    if matches!(user, "handhaver" | "jeugdboa" | "teamleider" | "beheerder") {
        thor::demo::DEMO_PASSWORD
    } else {
        PASSWORD
    }
}

/// Seeds one team with a sentinel in every kind of record; `hh`, `jb` and `tl` are the user
/// names of its handhaver, jeugdboa and (Wpg-authorised) teamleider.
async fn seed(
    app: &TestApp,
    team: Team,
    hh: &str,
    jb: &str,
    tl: &str,
    t0: DateTime<Utc>,
) -> Seeded {
    let tag = format!("{team:?}");
    let s = |what: &str| {
        format!(
            "ZQ{tag}-{what}-{}",
            &Uuid::new_v4().simple().to_string()[..8]
        )
    };
    let (h, _) = login_as(app, hh, password_of(hh), "seed-hh").await;
    let (j, _) = login_as(app, jb, password_of(jb), "seed-jb").await;
    let (l, _) = login_as(app, tl, password_of(tl), "seed-tl").await;
    let me = ok_json(
        app.get(&h, "/api/v1/auth/me").send().await.expect("me"),
        "me",
    )
    .await;
    let team_id: Uuid = me["team_id"].as_str().expect("team").parse().expect("uuid");
    let day = t0.with_timezone(&Amsterdam).date_naive();
    let at = t0.to_rfc3339();
    let mut out = Vec::new();

    // A Wpg report (a fine: regime wpg) with a sentinel plate and description.
    let wpg = Uuid::new_v4();
    let plate = format!("QX{tag}PL{}", &Uuid::new_v4().simple().to_string()[..2]).to_uppercase();
    let wpg_desc = s("WPGDESC");
    let mut r = thor_tests::report(wpg);
    r["plate"] = json!(plate);
    r["description"] = json!(wpg_desc);
    r["observed_at"] = json!(at);
    r["location"]["fix_time"] = json!(at);
    let v = ok_json(
        app.post(&h, "/api/v1/violations", &r)
            .send()
            .await
            .expect("create"),
        "Wpg report",
    )
    .await;
    assert_eq!(v["privacy_regime"], "wpg", "seeding: the fine is Wpg: {v}");
    let plate = v["plate"].as_str().expect("plate").to_string();
    out.push(Sentinel::text(
        team,
        Class::WpgPlate,
        "plate of the Wpg report",
        plate,
        &[wpg],
    ));
    out.push(Sentinel::text(
        team,
        Class::WpgDesc,
        "description of the Wpg report",
        &wpg_desc,
        &[wpg],
    ));

    // An AVG report (removed, no plate).
    let avg = Uuid::new_v4();
    let avg_desc = s("AVGDESC");
    let mut r = thor_tests::avg_report(avg, &avg_desc);
    r["observed_at"] = json!(at);
    r["location"]["fix_time"] = json!(at);
    let v = ok_json(
        app.post(&h, "/api/v1/violations", &r)
            .send()
            .await
            .expect("create"),
        "AVG report",
    )
    .await;
    assert_eq!(v["privacy_regime"], "avg", "seeding: an AVG report: {v}");
    out.push(Sentinel::text(
        team,
        Class::Avg,
        "description of the AVG report",
        &avg_desc,
        &[avg],
    ));

    // Youth: a group, a person by name, an observation.
    let group = Uuid::new_v4();
    let group_name = s("YOUTHGROUP");
    ok_json(
        app.post(
            &j,
            "/api/v1/youth/groups",
            &json!({
                "id": group, "name": group_name, "duiding": "hinderlijk",
                "spots": [{ "name": "Plein 1945", "lat": 52.4581, "lon": 4.6262 }]
            }),
        )
        .send()
        .await
        .expect("group"),
        "youth group",
    )
    .await;
    out.push(Sentinel::text(
        team,
        Class::Youth,
        "name of the youth group",
        &group_name,
        &[group],
    ));
    let person = Uuid::new_v4();
    let person_name = s("YOUTHNAME");
    ok_json(
        app.post(
            &j,
            "/api/v1/youth/persons",
            &json!({
                "id": person, "group_id": group, "name": person_name, "date_of_birth": "2010-04-01"
            }),
        )
        .send()
        .await
        .expect("person"),
        "youth person",
    )
    .await;
    out.push(Sentinel::text(
        team,
        Class::YouthName,
        "name of the youth person",
        &person_name,
        &[person],
    ));
    let observation = Uuid::new_v4();
    let obs_notes = s("YOUTHOBS");
    ok_json(
        app.post(&j, "/api/v1/youth/observations", &json!({
            "id": observation, "group_id": group, "observed_at": at, "lat": 52.4581, "lon": 4.6262,
            "size_estimate": 6, "behaviours": ["noise"], "notes": obs_notes
        }))
        .send()
        .await
        .expect("observation"),
        "observation",
    )
    .await;
    out.push(Sentinel::text(
        team,
        Class::Youth,
        "notes of the observation",
        &obs_notes,
        &[observation],
    ));

    // An incident describing a person.
    let incident = Uuid::new_v4();
    let incident_desc = s("INCIDENT");
    ok_json(
        app.post(
            &h,
            "/api/v1/incidents",
            &json!({
                "id": incident, "kind": "aggression", "occurred_at": at, "lat": LAT, "lon": LON,
                "description": incident_desc, "police_requested": false
            }),
        )
        .send()
        .await
        .expect("incident"),
        "incident",
    )
    .await;
    out.push(Sentinel::text(
        team,
        Class::Incident,
        "description of the incident",
        &incident_desc,
        &[incident],
    ));

    // A round (the lead's), a segment of it, an attention point.
    let round = Uuid::new_v4();
    let round_name = s("ROUND");
    ok_json(
        app.post(&l, "/api/v1/rounds", &json!({
            "id": round, "name": round_name, "status": "started", "ad_hoc": true, "started_at": at
        }))
        .send()
        .await
        .expect("round"),
        "round",
    )
    .await;
    out.push(Sentinel::text(
        team,
        Class::Avg,
        "name of the round",
        &round_name,
        &[round],
    ));
    let segment = Uuid::new_v4();
    ok_json(
        app.post(&h, "/api/v1/track-segments", &json!({
            "id": segment, "round_id": round, "started_at": at,
            "points": [[LAT, LON, t0.timestamp_millis(), 5, 1.2], [52.4602, 4.6225, t0.timestamp_millis() + 30_000, 5, 1.2]]
        }))
        .send()
        .await
        .expect("segment"),
        "segment",
    )
    .await;
    let note = Uuid::new_v4();
    let note_text = s("NOTE");
    ok_json(
        app.post(
            &l,
            "/api/v1/briefing/notes",
            &json!({ "id": note, "date": day.to_string(), "text": note_text }),
        )
        .send()
        .await
        .expect("note"),
        "note",
    )
    .await;
    out.push(Sentinel::text(
        team,
        Class::Avg,
        "text of the attention point",
        &note_text,
        &[note],
    ));

    // A photo of the Wpg report, uploaded over tus; its bytes and derivatives are sentinels.
    let photo = Uuid::new_v4();
    let bytes = jpeg(640, 480, if team == Team::A { 11 } else { 23 });
    ok_json(
        app.post(&h, "/api/v1/photos", &json!({
            "id": photo, "violation_id": wpg, "sha256": sha_hex(&bytes), "size_bytes": bytes.len(),
            "mime": "image/jpeg", "captured_at": at, "lat": LAT, "lon": LON, "accuracy_m": 5.0
        }))
        .send()
        .await
        .expect("photo"),
        "photo record",
    )
    .await;
    let res = app
        .client
        .post(app.url("/api/v1/uploads"))
        .bearer_auth(&h)
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Length", bytes.len().to_string())
        .header(
            "Upload-Metadata",
            format!(
                "photo_id {},filetype {}",
                B64.encode(photo.to_string()),
                B64.encode("image/jpeg")
            ),
        )
        .send()
        .await
        .expect("tus create");
    assert_eq!(
        res.status(),
        201,
        "seeding: tus create: {}",
        res.text().await.unwrap_or_default()
    );
    let res = app
        .client
        .patch(app.url(&format!("/api/v1/uploads/{photo}")))
        .bearer_auth(&h)
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Offset", "0")
        .header("Content-Type", "application/offset+octet-stream")
        .body(bytes.clone())
        .send()
        .await
        .expect("tus patch");
    assert_eq!(
        res.status(),
        204,
        "seeding: tus patch: {}",
        res.text().await.unwrap_or_default()
    );
    let mut state = Value::Null;
    for _ in 0..300 {
        state = ok_json(
            app.get(&h, &format!("/api/v1/photos/{photo}"))
                .send()
                .await
                .expect("photo"),
            "photo",
        )
        .await;
        if state["derivative_state"] == "done" || state["derivative_state"] == "failed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        state["derivative_state"], "done",
        "seeding: derivatives: {state}"
    );
    for part in ["original", "thumbnail", "preview"] {
        let res = app
            .get(&h, &format!("/api/v1/photos/{photo}/{part}"))
            .send()
            .await
            .expect("bytes");
        assert_eq!(res.status(), 200, "seeding: {part}");
        let got = res.bytes().await.expect("bytes");
        if part == "original" {
            assert_eq!(
                sha_hex(&got),
                sha_hex(&bytes),
                "seeding: the original is the upload"
            );
        }
        out.push(Sentinel {
            mark: Mark::Blob(sha_hex(&got)),
            team,
            class: Class::WpgPhoto,
            what: format!("{part} of the photo of the Wpg report"),
            records: vec![photo.to_string(), wpg.to_string()],
        });
    }

    // Conflicts whose values are Wpg: the Wpg report's description, the youth person's name.
    let srv = s("WPGDESC-SERVER");
    let cli = s("WPGDESC-CLIENT");
    let conflict = make_conflict(app, hh, &l, "violations", wpg, "description", &srv, &cli).await;
    for (what, v) in [("server value", &srv), ("client value", &cli)] {
        out.push(Sentinel::text(
            team,
            Class::WpgDesc,
            &format!("conflict {what} of the Wpg description"),
            v,
            &[wpg, conflict],
        ));
    }
    let srv = s("YOUTHNAME-SERVER");
    let cli = s("YOUTHNAME-CLIENT");
    let youth_conflict =
        make_conflict(app, jb, &l, "youth_persons", person, "name", &srv, &cli).await;
    for (what, v) in [("server value", &srv), ("client value", &cli)] {
        out.push(Sentinel::text(
            team,
            Class::YouthName,
            &format!("conflict {what} of the youth name"),
            v,
            &[person, youth_conflict],
        ));
    }

    // The lead holds the incident (an objection): the hold's reason is the team's.
    let hold_reason = s("HOLDREASON");
    let hold = ok_json(
        app.post(
            &l,
            "/api/v1/holds",
            &json!({ "record_type": "incidents", "record_id": incident, "reason": hold_reason }),
        )
        .send()
        .await
        .expect("hold"),
        "hold",
    )
    .await["id"]
        .as_str()
        .and_then(|i| i.parse::<Uuid>().ok())
        .expect("seeding: the hold's id");
    out.push(Sentinel::text(
        team,
        Class::Avg,
        "legal hold reason",
        &hold_reason,
        &[],
    ));

    let p = pull(app, &h).await;
    let avg_row = pulled_rows(&p, "violations")
        .into_iter()
        .find(|r| r["id"] == avg.to_string())
        .expect("seeding: the AVG report is pulled");
    let ids = Ids {
        team: team_id,
        wpg,
        avg,
        photo,
        group,
        person,
        observation,
        incident,
        round,
        segment,
        note,
        conflict,
        youth_conflict,
        hold,
    };
    for (what, id) in ids.all() {
        out.push(Sentinel::id(team, what, id));
    }
    Seeded {
        ids,
        sentinels: out,
        photo_bytes: bytes,
        avg_row,
        push_cursor: p["timestamp"].as_i64().expect("timestamp"),
    }
}

// ---------------------------------------------------------------------------------------------
// What requests are built from

/// Everything a request builder needs: team A's records (or random stand-ins), the day.
#[derive(Debug, Clone)]
struct Ctx {
    a: Ids,
    /// The Wpg report of each team (a photo's parent for callers of that team).
    own_wpg: HashMap<Team, Uuid>,
    /// A team A user no caller is: the target of the revocations.
    victim: Uuid,
    victim_device: String,
    /// The day of the seeded records; the briefing shift that team A signed off.
    day: NaiveDate,
    signed_date: NaiveDate,
    signed_shift: &'static str,
    t0: DateTime<Utc>,
    photo_sha: String,
    photo_size: usize,
    /// Team A's AVG report as pulled, for a push that edits it.
    push_row: Value,
    push_cursor: i64,
}

impl Ctx {
    /// The same context with every team A id replaced by a random one: for the existence check.
    fn randomized(&self) -> Ctx {
        let mut c = self.clone();
        c.a = Ids::random();
        c.victim = Uuid::new_v4();
        c.victim_device = format!("nope-{}", Uuid::new_v4().simple());
        c.push_row["id"] = json!(c.a.avg.to_string());
        c
    }
}

#[derive(Debug, Clone)]
enum Body {
    None,
    Json(Value),
    Form(Vec<(&'static str, String)>),
    Bytes(Vec<u8>, &'static str),
}

#[derive(Debug, Clone)]
struct Req {
    method: Method,
    /// Path and query.
    path: String,
    headers: Vec<(String, String)>,
    body: Body,
    /// For a page: the session as a cookie instead of a bearer token.
    cookie: bool,
    /// Log in anew and use that token (logout would end the caller's session).
    fresh_token: bool,
}

impl Req {
    fn new(method: &str, path: String) -> Req {
        Req {
            method: Method::from_bytes(method.as_bytes()).expect("method"),
            path,
            headers: vec![],
            body: Body::None,
            cookie: false,
            fresh_token: false,
        }
    }
    /// What the request says, to know which ids the caller named (and may see echoed).
    fn named(&self) -> String {
        let mut s = self.path.clone();
        for (k, v) in &self.headers {
            let _ = write!(s, " {k}: {v}");
            if k.eq_ignore_ascii_case("upload-metadata") {
                for pair in v.split(',') {
                    if let Some((_, b)) = pair.trim().split_once(' ')
                        && let Ok(d) = B64.decode(b)
                    {
                        s.push(' ');
                        s.push_str(&String::from_utf8_lossy(&d));
                    }
                }
            }
        }
        match &self.body {
            Body::Json(v) => s.push_str(&v.to_string()),
            Body::Form(f) => f.iter().for_each(|(k, v)| {
                let _ = write!(s, " {k}={v}");
            }),
            Body::Bytes(..) | Body::None => {}
        }
        s
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn with_query(path: &str, q: &[(&str, String)]) -> String {
    if q.is_empty() {
        return path.to_string();
    }
    let qs: Vec<String> = q
        .iter()
        .map(|(k, v)| format!("{k}={}", urlencode(v)))
        .collect();
    format!("{path}?{}", qs.join("&"))
}

/// The record a path parameter names: by the path up to the parameter. A path parameter not
/// listed here fails the matrix (a random id would make the route pass without being tried).
fn path_value(template: &str, name: &str, c: &Ctx) -> Option<String> {
    let collection = template.split(&format!("/{{{name}}}")).next()?;
    let id = match collection {
        "/api/v1/violations" | "/briefing/review" | "/briefing/melding" => c.a.wpg,
        "/api/v1/violations/{id}/duplicates" => c.a.avg,
        "/api/v1/photos" | "/api/v1/uploads" => c.a.photo,
        "/api/v1/youth/groups" => c.a.group,
        "/api/v1/youth/persons" => c.a.person,
        "/api/v1/youth/observations" => c.a.observation,
        "/api/v1/incidents" => c.a.incident,
        "/api/v1/rounds" => c.a.round,
        "/api/v1/track-segments" => c.a.segment,
        "/api/v1/briefing/notes" => c.a.note,
        "/api/v1/conflicts" | "/briefing/conflicts" => c.a.conflict,
        "/api/v1/users" => c.victim,
        "/api/v1/users/{user_id}/devices" => return Some(c.victim_device.clone()),
        "/api/v1/holds" => c.a.hold,
        "/api/v1/archief" => return Some("violations".into()),
        "/api/v1/archief/{record_type}" => c.a.wpg,
        "/api/v1/cases" => c.a.wpg,
        "/api/v1/lookup/kenteken" => return Some("12ABC3".into()),
        "/api/v1/cases/{id}/documents" => return Some("zaakoverzicht".into()),
        _ => return None,
    };
    Some(id.to_string())
}

/// A required query parameter's value, from its name and schema.
fn query_value(name: &str, schema: &Value, c: &Ctx) -> Option<String> {
    match (name, schema["format"].as_str()) {
        ("lat", _) => Some(LAT.to_string()),
        ("lon", _) => Some(LON.to_string()),
        ("kenteken", _) => Some("12-ABC-3".to_string()),
        ("doel", _) => Some("matrix: klacht 2026-1 over een boete".to_string()),
        (_, Some("date")) => Some(c.day.to_string()),
        _ => None,
    }
}

/// Query variants worth trying beyond the required parameters.
fn query_variants(key: &str, c: &Ctx) -> Option<Vec<Vec<(&'static str, String)>>> {
    Some(match key {
        "GET /api/v1/briefing" => vec![
            vec![("date", c.day.to_string())],
            vec![
                ("date", c.signed_date.to_string()),
                ("shift", c.signed_shift.to_string()),
            ],
        ],
        "GET /api/v1/sync/pull" => vec![
            vec![
                ("last_pulled_at", "0".into()),
                ("schema_version", "1".into()),
            ],
            vec![
                ("last_pulled_at", "0".into()),
                ("schema_version", "1".into()),
                ("turbo", "true".into()),
            ],
        ],
        "GET /api/v1/conflicts" => vec![vec![("status", "all".into())]],
        "GET /api/v1/inzage" => vec![vec![("kenteken", "12-ABC-3".into())]],
        "POST /api/v1/sync/push" => vec![vec![("last_pulled_at", c.push_cursor.to_string())]],
        _ => return None,
    })
}

/// A required header parameter's value.
fn header_value(name: &str, c: &Ctx) -> Option<String> {
    Some(match name {
        "Tus-Resumable" => "1.0.0".into(),
        "Upload-Length" => c.photo_size.to_string(),
        "Upload-Metadata" => format!(
            "photo_id {},filetype {}",
            B64.encode(c.a.photo.to_string()),
            B64.encode("image/jpeg")
        ),
        "Upload-Offset" => "0".into(),
        _ => return None,
    })
}

/// The body of every API operation that takes one, keyed by method and path. An operation with
/// a request body that is not here fails the matrix. Edits leave the sentinel fields alone, so
/// the answer still carries them.
fn body_for(key: &str, c: &Ctx, who: &Who) -> Option<Body> {
    let at = c.t0.to_rfc3339();
    let fresh = Uuid::new_v4();
    Some(Body::Json(match key {
        "POST /api/v1/auth/login" => {
            if who.authenticated() {
                json!({ "username": who.username, "password": who.password, "device_id": "matrix-relogin" })
            } else {
                json!({ "username": "niemand", "password": "verkeerd-wachtwoord", "device_id": "matrix" })
            }
        }
        "POST /api/v1/users" => json!({
            "username": format!("matrix.{}", &fresh.simple().to_string()[..12]),
            "role": "handhaver", "team": TEAM_A, "password": PASSWORD
        }),
        "POST /api/v1/violations" => {
            let mut r = thor_tests::report(fresh);
            r["description"] = json!("matrix: nieuwe melding");
            r
        }
        "PATCH /api/v1/violations/{id}" => json!({ "driver_present": true }),
        "POST /api/v1/violations/{id}/duplicates" => json!({ "of": c.a.avg }),
        // Team A's report has no afdoening: every caller is refused, none may get further.
        "POST /api/v1/cases/{id}/steps" => json!({ "step": "naar_cjib" }),
        "POST /api/v1/photos" => json!({
            // Team A's bytes by hash and size, on the caller's own team's report: knowing a hash
            // must not be a way to read bytes.
            "id": fresh,
            "violation_id": who.team.and_then(|t| c.own_wpg.get(&t)).copied().unwrap_or(c.a.wpg),
            "sha256": c.photo_sha, "size_bytes": c.photo_size, "mime": "image/jpeg",
            "captured_at": at, "lat": LAT, "lon": LON, "accuracy_m": 5.0
        }),
        "POST /api/v1/uploads" => return Some(Body::None),
        "PATCH /api/v1/uploads/{id}" => {
            return Some(Body::Bytes(
                b"\xff\xd8matrix".to_vec(),
                "application/offset+octet-stream",
            ));
        }
        "POST /api/v1/sync/push" => {
            let mut row = c.push_row.clone();
            row["driver_present"] = json!(true);
            json!({ "changes": { "violations": { "created": [], "updated": [row], "deleted": [] } } })
        }
        "POST /api/v1/conflicts/{id}/resolve" => {
            json!({ "resolution": "keep_applied", "note": "matrix" })
        }
        "POST /api/v1/briefing/signoff" => {
            json!({ "date": c.signed_date, "shift": c.signed_shift })
        }
        "POST /api/v1/briefing/notes" => {
            json!({ "id": fresh, "date": c.day.to_string(), "text": "matrix: aandachtspunt" })
        }
        "PATCH /api/v1/briefing/notes/{id}" => json!({ "shift": "late" }),
        "POST /api/v1/rounds" => {
            json!({ "id": fresh, "name": "matrix: ronde", "status": "started", "ad_hoc": true, "started_at": at })
        }
        "PATCH /api/v1/rounds/{id}" => json!({ "notes": "matrix" }),
        "POST /api/v1/track-segments" => json!({
            "id": fresh, "round_id": c.a.round, "started_at": at,
            "points": [[LAT, LON, c.t0.timestamp_millis(), 5, 1.0]]
        }),
        "PATCH /api/v1/track-segments/{id}" => {
            json!({ "points": [[LAT, LON, c.t0.timestamp_millis(), 5, 1.0]] })
        }
        "POST /api/v1/incidents" => {
            json!({ "id": fresh, "kind": "police_assistance", "occurred_at": at, "description": "matrix: incident" })
        }
        "PATCH /api/v1/incidents/{id}" => json!({ "police_requested": true }),
        "POST /api/v1/youth/groups" => json!({ "id": fresh, "name": "matrix: groep" }),
        "PATCH /api/v1/youth/groups/{id}" => json!({ "duiding": "overlastgevend" }),
        "POST /api/v1/youth/persons" => {
            json!({ "id": fresh, "group_id": c.a.group, "name": "matrix: persoon" })
        }
        "PATCH /api/v1/youth/persons/{id}" => json!({ "date_of_birth": "2010-05-01" }),
        "POST /api/v1/youth/observations" => json!({
            "id": fresh, "group_id": c.a.group, "observed_at": at, "lat": LAT, "lon": LON
        }),
        "PATCH /api/v1/youth/observations/{id}" => json!({ "size_estimate": 7 }),
        "POST /api/v1/holds" => json!({
            "record_type": "incidents", "record_id": c.a.incident, "reason": "matrix: bezwaar loopt"
        }),
        "POST /api/v1/holds/{id}/lift" => json!({ "reason": "matrix: bezwaar afgehandeld" }),
        _ => return None,
    }))
}

/// One route of the matrix.
#[derive(Debug, Clone)]
struct Op {
    /// `METHOD /path/{param}` as the document (or the page router) writes it.
    key: String,
    method: String,
    template: String,
    /// Needs no credentials.
    public: bool,
    source: Source,
}

#[derive(Debug, Clone)]
enum Source {
    Api { params: Vec<Value>, has_body: bool },
    Page(fn(&Ctx, &Who) -> Vec<Req>),
}

impl Op {
    fn reads(&self) -> bool {
        matches!(self.method.as_str(), "GET" | "HEAD" | "OPTIONS")
    }
    /// Builds the requests of this route for this caller; Err names what a table lacks.
    fn build(&self, c: &Ctx, who: &Who) -> Result<Vec<Req>, String> {
        let (params, has_body) = match &self.source {
            Source::Page(f) => return Ok(f(c, who)),
            Source::Api { params, has_body } => (params, *has_body),
        };
        let mut path = self.template.clone();
        let mut query = vec![];
        let mut headers = vec![];
        for p in params {
            let name = p["name"].as_str().unwrap_or_default();
            let required = p["required"].as_bool().unwrap_or(false);
            match p["in"].as_str() {
                Some("path") => {
                    let v = path_value(&self.template, name, c).ok_or_else(|| {
                        format!("no record for path parameter {{{name}}} (add it to path_value)")
                    })?;
                    path = path.replace(&format!("{{{name}}}"), &v);
                }
                Some("query") if required => {
                    let v = query_value(name, &p["schema"], c).ok_or_else(|| {
                        format!(
                            "no value for required query parameter {name} (add it to query_value)"
                        )
                    })?;
                    query.push((name.to_string(), v));
                }
                Some("header") if required => {
                    let v = header_value(name, c).ok_or_else(|| {
                        format!("no value for required header {name} (add it to header_value)")
                    })?;
                    headers.push((name.to_string(), v));
                }
                _ => {}
            }
        }
        let body = if has_body {
            body_for(&self.key, c, who).ok_or_else(|| {
                "no request body for this operation (add it to body_for)".to_string()
            })?
        } else {
            Body::None
        };
        let variants = query_variants(&self.key, c).unwrap_or_else(|| vec![vec![]]);
        Ok(variants
            .into_iter()
            .map(|extra| {
                let mut q: Vec<(&str, String)> =
                    query.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
                q.extend(
                    extra
                        .into_iter()
                        .filter(|(k, _)| !query.iter().any(|(n, _)| n == k)),
                );
                let mut r = Req::new(&self.method, with_query(&path, &q));
                r.headers = headers.clone();
                if let Body::Bytes(_, ct) = &body {
                    r.headers.push(("Content-Type".into(), ct.to_string()));
                }
                r.body = body.clone();
                r.fresh_token = self.key == "POST /api/v1/auth/logout";
                r
            })
            .collect())
    }
}

/// The API operations of the document the router generates.
fn api_ops() -> Vec<Op> {
    let doc = serde_json::to_value(thor::app::openapi()).expect("the document serialises");
    let global_security = doc["security"].as_array().is_some_and(|s| !s.is_empty());
    let mut ops = vec![];
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            if !matches!(
                method.as_str(),
                "get" | "put" | "post" | "delete" | "options" | "head" | "patch" | "trace"
            ) {
                continue;
            }
            let method = method.to_uppercase();
            // `security: [{}]` (or none declared anywhere) is a route for anyone.
            let public = match op["security"].as_array() {
                Some(reqs) => {
                    reqs.is_empty()
                        || reqs
                            .iter()
                            .any(|r| r.as_object().is_some_and(|o| o.is_empty()))
                }
                None => !global_security,
            };
            ops.push(Op {
                key: format!("{method} {path}"),
                method,
                template: path.clone(),
                public,
                source: Source::Api {
                    params: op["parameters"].as_array().cloned().unwrap_or_default(),
                    has_body: op.get("requestBody").is_some(),
                },
            });
        }
    }
    ops
}

fn form(path: &str, fields: Vec<(&'static str, String)>) -> Req {
    let mut r = Req::new("POST", path.to_string());
    r.body = Body::Form(fields);
    r.cookie = true;
    r
}

fn page_get(path: String) -> Req {
    let mut r = Req::new("GET", path);
    r.cookie = true;
    r
}

/// The routes outside the OpenAPI document: the team lead's pages (`web::router`) and the
/// operations routes (`ops::router`). Checked against their source by `page_routes_are_listed`.
#[allow(clippy::type_complexity)]
const PAGE_ROUTES: &[(&str, &str, bool, fn(&Ctx, &Who) -> Vec<Req>)] = &[
    ("GET", "/", true, |_, _| vec![page_get("/".into())]),
    ("GET", "/login", true, |_, _| {
        vec![page_get("/login".into())]
    }),
    ("POST", "/login", true, |_, who| {
        let (u, p) = if who.authenticated() {
            (who.username, who.password)
        } else {
            ("niemand", "verkeerd-wachtwoord")
        };
        vec![form(
            "/login",
            vec![("username", u.into()), ("password", p.into())],
        )]
    }),
    ("POST", "/logout", false, |_, _| {
        let mut r = form("/logout", vec![]);
        r.fresh_token = true;
        vec![r]
    }),
    ("GET", "/briefing", false, |c, _| {
        vec![
            page_get(format!("/briefing?date={}", c.day)),
            page_get(format!(
                "/briefing?date={}&shift={}",
                c.signed_date, c.signed_shift
            )),
        ]
    }),
    ("GET", "/audit", false, |c, _| {
        vec![
            page_get("/audit".into()),
            page_get(format!("/audit?record_id={}&from={}", c.a.wpg, c.day)),
        ]
    }),
    ("POST", "/briefing/review/{id}", false, |c, _| {
        vec![form(
            &format!("/briefing/review/{}", c.a.wpg),
            vec![
                ("decision", "approved".into()),
                ("back", "/briefing".into()),
            ],
        )]
    }),
    ("POST", "/briefing/review/{id}/undo", false, |c, _| {
        vec![form(
            &format!("/briefing/review/{}/undo", c.a.wpg),
            vec![("back", "/briefing".into())],
        )]
    }),
    ("GET", "/briefing/melding/{id}", false, |c, _| {
        vec![page_get(format!("/briefing/melding/{}", c.a.wpg))]
    }),
    ("POST", "/briefing/zaken/{id}/stap", false, |c, _| {
        vec![form(
            &format!("/briefing/zaken/{}/stap", c.a.wpg),
            vec![("step", "naar_cjib".into()), ("back", "/briefing".into())],
        )]
    }),
    ("GET", "/manifest.webmanifest", true, |_, _| {
        vec![page_get("/manifest.webmanifest".into())]
    }),
    ("GET", "/icon.svg", true, |_, _| {
        vec![page_get("/icon.svg".into())]
    }),
    ("GET", "/app.js", true, |_, _| {
        vec![page_get("/app.js".into())]
    }),
    ("GET", "/sw.js", true, |_, _| {
        vec![page_get("/sw.js".into())]
    }),
    ("POST", "/briefing/notes", false, |c, _| {
        vec![form(
            "/briefing/notes",
            vec![
                ("date", c.day.to_string()),
                ("text", "matrix: pagina".into()),
            ],
        )]
    }),
    ("POST", "/briefing/signoff", false, |c, _| {
        vec![form(
            "/briefing/signoff",
            vec![
                ("date", c.signed_date.to_string()),
                ("shift", c.signed_shift.into()),
                ("confirm", "1".into()),
            ],
        )]
    }),
    ("POST", "/briefing/conflicts/{id}", false, |c, _| {
        vec![form(
            &format!("/briefing/conflicts/{}", c.a.conflict),
            vec![("resolution", "keep_applied".into())],
        )]
    }),
    ("GET", "/healthz", true, |_, _| {
        vec![Req::new("GET", "/healthz".into())]
    }),
    ("GET", "/readyz", true, |_, _| {
        vec![Req::new("GET", "/readyz".into())]
    }),
    ("GET", "/metrics", true, |_, _| {
        vec![Req::new("GET", "/metrics".into())]
    }),
    ("GET", "/api/v1/openapi.json", true, |_, _| {
        vec![Req::new("GET", "/api/v1/openapi.json".into())]
    }),
];

/// `(METHOD, path)` of every `.route(…)` call in a router's source.
fn routes_in(src: &str) -> Vec<(String, String)> {
    let mut out = vec![];
    let mut rest = src;
    while let Some(i) = rest.find(".route(") {
        rest = &rest[i + ".route(".len()..];
        // The call's extent: up to its closing parenthesis.
        let mut depth = 1usize;
        let mut end = rest.len();
        for (j, ch) in rest.char_indices() {
            match ch {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        end = j;
                        break;
                    }
                }
                _ => {}
            }
        }
        let call = &rest[..end];
        let Some(path) = call
            .trim_start()
            .strip_prefix('"')
            .and_then(|s| s.split('"').next())
        else {
            continue;
        };
        for m in ["get", "post", "put", "patch", "delete", "head", "options"] {
            let needle = format!("{m}(");
            let mut from = 0;
            while let Some(k) = call[from..].find(&needle) {
                let at = from + k;
                let before = call[..at].chars().next_back();
                if before.is_none_or(|b| !(b.is_alphanumeric() || b == '_')) {
                    out.push((m.to_uppercase(), path.to_string()));
                }
                from = at + needle.len();
            }
        }
    }
    out
}

/// Every page and operations route, after checking the list against the routers' source.
fn page_ops(failures: &mut Failures) -> Vec<Op> {
    let mut in_source: BTreeSet<(String, String)> = BTreeSet::new();
    in_source.extend(routes_in(include_str!("../../../backend/src/web/mod.rs")));
    in_source.extend(routes_in(include_str!("../../../backend/src/ops/mod.rs")));
    assert!(
        in_source.len() >= 10,
        "the route scan found the routers: {in_source:?}"
    );
    let listed: BTreeSet<(String, String)> = PAGE_ROUTES
        .iter()
        .map(|(m, p, _, _)| (m.to_string(), p.to_string()))
        .collect();
    for (m, p) in in_source.difference(&listed) {
        failures.add(
            &format!("{m} {p}"),
            "-",
            "route in web/ops source but not in PAGE_ROUTES: add it",
        );
    }
    for (m, p) in listed.difference(&in_source) {
        failures.add(
            &format!("{m} {p}"),
            "-",
            "PAGE_ROUTES lists a route the source no longer has",
        );
    }
    PAGE_ROUTES
        .iter()
        .map(|(m, p, public, f)| Op {
            key: format!("{m} {p}"),
            method: m.to_string(),
            template: p.to_string(),
            public: *public,
            source: Source::Page(*f),
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Sending and checking

#[derive(Default)]
struct Failures {
    /// (operation, caller) → what went wrong.
    rows: BTreeMap<(String, String), BTreeSet<String>>,
}

impl Failures {
    fn add(&mut self, op: &str, who: &str, what: &str) {
        self.rows
            .entry((op.to_string(), who.to_string()))
            .or_default()
            .insert(what.to_string());
    }
    fn table(&self) -> String {
        let mut s = String::new();
        let w = self.rows.keys().map(|(o, _)| o.len()).max().unwrap_or(0);
        for ((op, who), whats) in &self.rows {
            for what in whats {
                let _ = writeln!(s, "{op:<w$}  {who:<16}  {what}");
            }
        }
        s
    }
}

struct Answer {
    status: u16,
    location: Option<String>,
    /// Headers and body as text, for the sentinel search.
    text: String,
    /// The body alone.
    body: String,
    body_sha: String,
}

struct Matrix<'a> {
    app: &'a TestApp,
    /// Follows no redirects: a page's redirect to /login is the answer.
    client: reqwest::Client,
    sentinels: Vec<Sentinel>,
    /// Ids of team A: outsiders' requests that name one are repeated with random ids.
    a_ids: Vec<String>,
    failures: Failures,
    /// Which sentinels an allowed reader was served (a sentinel no one is served cannot leak
    /// in this matrix: that is a failure of the matrix).
    served: BTreeSet<String>,
    requests: usize,
    /// How often each check found its case: a check that never fires proves nothing.
    logged_reads: usize,
    comparisons: usize,
    /// Tokens for the fingerprint of team A (a Wpg lead and a jeugdboa of team A).
    fp_lead: String,
    fp_youth: String,
    victim: Uuid,
    photo_a: Uuid,
}

impl Matrix<'_> {
    async fn send(&mut self, who: &Who, req: &Req) -> Answer {
        self.requests += 1;
        let mut token = who.token.clone();
        if req.fresh_token && who.authenticated() {
            let (t, _) = login_as(
                self.app,
                who.username,
                who.password,
                &format!("matrix-fresh-{}", Uuid::new_v4().simple()),
            )
            .await;
            token = Some(t);
        }
        let mut b = self
            .client
            .request(req.method.clone(), self.app.url(&req.path));
        if let Some(t) = &token {
            b = if req.cookie {
                b.header("Cookie", format!("thor_session={t}"))
            } else {
                b.bearer_auth(t)
            };
        }
        for (k, v) in &req.headers {
            b = b.header(k, v);
        }
        b = match &req.body {
            Body::None => b,
            Body::Json(v) => b
                .header("Content-Type", "application/json")
                .body(v.to_string()),
            Body::Form(f) => {
                let enc: Vec<String> = f
                    .iter()
                    .map(|(k, v)| format!("{k}={}", urlencode(v)))
                    .collect();
                b.header("Content-Type", "application/x-www-form-urlencoded")
                    .body(enc.join("&"))
            }
            Body::Bytes(bytes, _) => b.body(bytes.clone()),
        };
        let mut res = b
            .send()
            .await
            .unwrap_or_else(|e| panic!("{} {}: {e}", req.method, req.path));
        let status = res.status().as_u16();
        let mut text = String::new();
        for (k, v) in res.headers() {
            let _ = writeln!(text, "{k}: {}", String::from_utf8_lossy(v.as_bytes()));
        }
        let location = res
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let stream = res
            .headers()
            .get("content-type")
            .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
        // An event stream never ends: what it sends in a moment is its answer.
        let deadline = tokio::time::Instant::now()
            + if stream {
                Duration::from_millis(300)
            } else {
                Duration::from_secs(60)
            };
        let mut body = Vec::new();
        while let Ok(Ok(Some(chunk))) = tokio::time::timeout_at(deadline, res.chunk()).await {
            body.extend_from_slice(&chunk);
        }
        let body_text = String::from_utf8_lossy(&body).to_string();
        text.push_str(&body_text);
        Answer {
            status,
            location,
            text,
            body: body_text,
            body_sha: sha_hex(&body),
        }
    }

    /// The audit log's last line.
    async fn audit_mark(&self) -> i64 {
        use thor::audit::entity::{Column, Entity};
        Entity::find()
            .order_by_desc(Column::Id)
            .one(&self.app.state.db.read)
            .await
            .expect("audit log")
            .map_or(0, |l| l.id)
    }

    /// Lines the caller added since `mark`: (action, record type, record id, detail).
    async fn audit_since(&self, mark: i64, who: &Who) -> Vec<(String, String, String)> {
        use thor::audit::entity::{Column, Entity};
        let Some(user) = who.user_id else {
            return vec![];
        };
        Entity::find()
            .filter(Column::Id.gt(mark))
            .filter(Column::ActorUserId.eq(user))
            .all(&self.app.state.db.read)
            .await
            .expect("audit log")
            .into_iter()
            .map(|l| {
                (
                    format!("{}/{}", l.action, l.record_type),
                    l.record_id.unwrap_or_default(),
                    l.detail.map(|d| d.to_string()).unwrap_or_default(),
                )
            })
            .collect()
    }

    /// Sends one request and checks its answer; returns it for the caller's own checks.
    async fn run(&mut self, op: &Op, who: &Who, req: &Req, probe: bool) -> Answer {
        let mark = self.audit_mark().await;
        let ans = self.send(who, req).await;
        let label = match req.path.split_once('?') {
            Some((_, q)) => format!("{} ?{q}", op.key),
            None => op.key.clone(),
        };
        let label = if probe {
            format!("{label} (random ids)")
        } else {
            label
        };
        if ans.status >= 500 {
            self.failures.add(
                &label,
                who.name,
                &format!("status {} (a server error)", ans.status),
            );
        }
        let page = matches!(op.source, Source::Page(_));
        if !who.authenticated() && !op.public {
            // A page POST without a session carries no CSRF token either: the page's CSRF check
            // refuses it (403) before the login redirect would.
            let csrf_refusal = page && op.method == "POST" && ans.status == 403;
            let ok = if page {
                csrf_refusal
                    || (300..400).contains(&ans.status)
                        && ans
                            .location
                            .as_deref()
                            .is_some_and(|l| l.starts_with("/login"))
            } else {
                ans.status == 401
            };
            if !ok {
                let want = if page {
                    "a redirect to /login (or 403 for a POST)"
                } else {
                    "401"
                };
                self.failures.add(
                    &label,
                    who.name,
                    &format!(
                        "status {} without valid credentials, want {want}",
                        ans.status
                    ),
                );
            }
        }
        if let Some((want, ok)) = expected_status(&op.key, who)
            && !ok(ans.status)
            && !probe
        {
            self.failures.add(
                &label,
                who.name,
                &format!("status {}, want {want}", ans.status),
            );
        }
        // What the caller sent, they may see echoed (a 404 naming the id asked for, a push
        // answer naming the rows pushed): whether the answer tells more is the existence check.
        let named = req.named();
        let audit = self.audit_since(mark, who).await;
        for s in &self.sentinels {
            let found = match &s.mark {
                Mark::Text(t) => ans.text.contains(t.as_str()) && !named.contains(t.as_str()),
                Mark::Blob(h) => &ans.body_sha == h,
            };
            if !found {
                continue;
            }
            if !may_see(who, s.team, s.class) && !in_the_log(&label, who, s) {
                self.failures.add(
                    &label,
                    who.name,
                    &format!("LEAK {:?} {}", s.class, s.label()),
                );
            } else if !probe {
                self.served.insert(s.label());
            }
            if s.class.wpg() && !probe {
                let logged = audit.iter().any(|(_, id, detail)| {
                    s.records
                        .iter()
                        .any(|r| id == r || detail.contains(r.as_str()))
                });
                self.logged_reads += usize::from(logged);
                if !logged {
                    let lines: BTreeSet<&str> = audit.iter().map(|(a, _, _)| a.as_str()).collect();
                    let what = if audit.is_empty() {
                        format!("AUDIT no line for {} (served, nothing logged)", s.label())
                    } else {
                        format!(
                            "AUDIT no line names the record of {} (logged: {})",
                            s.label(),
                            lines.into_iter().collect::<Vec<_>>().join(", ")
                        )
                    };
                    self.failures.add(&label, who.name, &what);
                }
            }
        }
        ans
    }

    /// Runs a request and, for an outsider whose request names a team A record, the same
    /// request with random ids: the answers must not tell the two apart.
    async fn run_checked(
        &mut self,
        op: &Op,
        who: &Who,
        c: &Ctx,
        random: &Ctx,
        i: usize,
    ) -> Option<Answer> {
        let reqs = match op.build(c, who) {
            Ok(r) => r,
            Err(e) => {
                self.failures.add(
                    &op.key,
                    "-",
                    &format!("MATRIX cannot build the request: {e}"),
                );
                return None;
            }
        };
        let req = reqs.get(i)?.clone();
        let ans = self.run(op, who, &req, false).await;
        let names_a = {
            let named = req.named();
            self.a_ids.iter().any(|id| named.contains(id.as_str()))
        };
        if names_a && who.authenticated() && who.outsider() {
            let rreqs = op.build(random, who).unwrap_or_default();
            if let Some(rreq) = rreqs.get(i) {
                let other = self.run(op, who, rreq, true).await;
                self.comparisons += 1;
                if other.status != ans.status {
                    self.failures.add(
                        &op.key,
                        who.name,
                        &format!(
                            "EXISTENCE team A's record answers {} where a random id answers {}",
                            ans.status, other.status
                        ),
                    );
                }
            }
        }
        Some(ans)
    }

    /// Team A's data as its own Wpg lead and jeugdboa read it: changes when anything of team A does.
    async fn fingerprint(&mut self) -> BTreeMap<&'static str, String> {
        let mut out = BTreeMap::new();
        let pulls = [
            ("pull (lead A)", self.fp_lead.clone()),
            ("pull (jeugdboa A)", self.fp_youth.clone()),
        ];
        for (what, t) in pulls {
            let mut p = pull(self.app, &t).await;
            p.as_object_mut().map(|o| o.remove("timestamp"));
            out.insert(what, p.to_string());
        }
        let conflicts = self
            .app
            .get(&self.fp_lead, "/api/v1/conflicts?status=all")
            .send()
            .await
            .expect("conflicts");
        out.insert("conflicts", conflicts.text().await.expect("text"));
        let devices = self
            .app
            .get(
                &self.fp_lead,
                &format!("/api/v1/users/{}/devices", self.victim),
            )
            .send()
            .await
            .expect("devices");
        out.insert(
            "devices of a team A user",
            devices.text().await.expect("text"),
        );
        let photo = self
            .app
            .get(
                &self.fp_lead,
                &format!("/api/v1/photos/{}/original", self.photo_a),
            )
            .send()
            .await
            .expect("photo");
        out.insert(
            "the photo's bytes",
            format!(
                "{} {}",
                photo.status(),
                sha_hex(&photo.bytes().await.expect("bytes"))
            ),
        );
        out
    }
}

fn changed(
    before: &BTreeMap<&'static str, String>,
    after: &BTreeMap<&'static str, String>,
) -> Vec<&'static str> {
    before
        .iter()
        .filter(|(k, v)| after.get(*k) != Some(v))
        .map(|(k, _)| *k)
        .collect()
}

type StatusRule = (&'static str, fn(u16) -> bool);

/// The statuses the matrix insists on beyond "no 5xx" and "401 without credentials".
fn expected_status(key: &str, who: &Who) -> Option<StatusRule> {
    if !who.authenticated() {
        return None;
    }
    let ok: StatusRule = ("2xx", |s| (200..300).contains(&s));
    let refused: StatusRule = ("403 or 404", |s| s == 403 || s == 404);
    let forbidden: StatusRule = ("403", |s| s == 403);
    // Reads of one of team A's records: refused to outsiders, served to those of team A whose
    // role reads the kind.
    let readable = match key {
        "GET /api/v1/violations/{id}"
        | "GET /briefing/melding/{id}"
        | "GET /api/v1/violations/{id}/photos"
        | "GET /api/v1/violations/{id}/duplicates"
        | "GET /api/v1/photos/{id}" => Some(true),
        "GET /api/v1/youth/groups/{id}"
        | "GET /api/v1/youth/persons/{id}"
        | "GET /api/v1/youth/observations/{id}" => Some(who.youth_reader()),
        "GET /api/v1/incidents/{id}" => Some(who.field_role()),
        "GET /api/v1/rounds/{id}"
        | "GET /api/v1/rounds/{id}/stats"
        | "GET /api/v1/track-segments/{id}"
        | "GET /api/v1/briefing/notes/{id}" => Some(who.field_role() || who.is("beheerder")),
        "GET /api/v1/photos/{id}/original"
        | "GET /api/v1/photos/{id}/thumbnail"
        | "GET /api/v1/photos/{id}/preview" => {
            // The photo of a Wpg report: as its report (the sentinel check sees the bytes).
            Some(who.reads_wpg())
        }
        _ => None,
    };
    if let Some(readable) = readable {
        return if who.outsider() {
            Some(refused)
        } else if readable {
            Some(ok)
        } else {
            Some(refused)
        };
    }
    match key {
        // Each team signs its own briefing: team B's lead is not stopped by team A's sign-off.
        "POST /api/v1/briefing/signoff" if who.is("teamleider") && who.team == Some(Team::B) => {
            Some(ok)
        }
        "POST /api/v1/briefing/signoff" if !who.is("teamleider") => Some(forbidden),
        "GET /api/v1/disclosures" if who.is("fg") => Some(ok),
        "GET /api/v1/disclosures" => Some(forbidden),
        "GET /api/v1/inzage" | "GET /api/v1/audit" if who.is("fg") => Some(ok),
        "GET /api/v1/inzage" | "GET /api/v1/audit" => Some(forbidden),
        "POST /api/v1/holds" | "POST /api/v1/holds/{id}/lift"
            if !(who.is("teamleider") || who.is("beheerder")) =>
        {
            Some(forbidden)
        }
        "POST /api/v1/holds" if who.outsider() => Some(("422", |s| s == 422)),
        "GET /api/v1/holds" if !(who.is("teamleider") || who.is("beheerder")) => Some(forbidden),
        // Team A's Wpg report is in daily use: the archive read refuses it to everyone.
        "GET /api/v1/archief/{record_type}/{id}" => Some(("404", |s| s == 404)),
        "POST /api/v1/users" if who.is("beheerder") => Some(ok),
        "POST /api/v1/users" => Some(forbidden),
        "POST /api/v1/conflicts/{id}/resolve" if !who.is("teamleider") => Some(refused),
        "POST /api/v1/conflicts/{id}/resolve" if who.outsider() => Some(refused),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// The matrix

#[allow(clippy::too_many_arguments)]
fn who(
    name: &'static str,
    role: &'static str,
    team: Option<Team>,
    wpg: bool,
    login: Option<(String, Uuid)>,
    username: &'static str,
) -> Who {
    Who {
        name,
        role: Some(role),
        team,
        wpg,
        user_id: login.as_ref().map(|l| l.1),
        token: login.map(|l| l.0),
        revoked: false,
        username,
        password: password_of(username),
    }
}

async fn role_matrix(backend: Backend) {
    let started = std::time::Instant::now();
    let app = TestApp::spawn_with(backend.clone(), |c| {
        c.login_per_account_per_minute = 100_000;
        c.login_per_address_per_minute = 100_000;
    })
    .await;
    app.demo_accounts().await;
    let (admin, _) = login_as(&app, "beheerder", thor::demo::DEMO_PASSWORD, "matrix-admin").await;
    for (u, role, team, wpg) in [
        ("tl.zonder", "teamleider", Some(TEAM_A), false),
        ("beheer.wpg", "beheerder", None, true),
        ("hh.ijmond", "handhaver", Some(TEAM_B), false),
        ("jb.ijmond", "jeugdboa", Some(TEAM_B), false),
        ("tl.ijmond", "teamleider", Some(TEAM_B), true),
        ("zonder.team", "handhaver", None, false),
        ("fg.privacy", "fg", None, true),
        ("slachtoffer", "handhaver", Some(TEAM_A), false),
    ] {
        ok_json(
            app.post(&admin, "/api/v1/users", &json!({
                "username": u, "display_name": u, "role": role, "team": team, "wpg_authorised": wpg, "password": PASSWORD
            }))
            .send()
            .await
            .expect("create user"),
            &format!("create user {u}"),
        )
        .await;
    }

    let t0 = Utc::now() - chrono::Duration::minutes(2);
    let a = seed(&app, Team::A, "handhaver", "jeugdboa", "teamleider", t0).await;
    let b = seed(&app, Team::B, "hh.ijmond", "jb.ijmond", "tl.ijmond", t0).await;

    // Team A's lead signs off the shift of the seeded records.
    let local = t0.with_timezone(&Amsterdam);
    let hours = &app.state.shifts;
    let (signed_date, signed_shift) = match local.time() {
        t if t >= hours.night => (local.date_naive(), "night"),
        t if t >= hours.late => (local.date_naive(), "late"),
        t if t >= hours.early => (local.date_naive(), "early"),
        _ => (local.date_naive() - chrono::Duration::days(1), "night"),
    };
    let (lead_a, _) = login_as(&app, "teamleider", thor::demo::DEMO_PASSWORD, "matrix-sign").await;
    ok_json(
        app.post(
            &lead_a,
            "/api/v1/briefing/signoff",
            &json!({ "date": signed_date, "shift": signed_shift }),
        )
        .send()
        .await
        .expect("sign off"),
        "team A's sign-off",
    )
    .await;

    // The callers.
    let l = |u: &'static str| {
        let app = &app;
        async move { login_as(app, u, password_of(u), "matrix").await }
    };
    let revoked = {
        let (t, id) = login_as(
            &app,
            "handhaver",
            thor::demo::DEMO_PASSWORD,
            "matrix-revoked",
        )
        .await;
        let res = app
            .client
            .post(app.url("/api/v1/auth/logout"))
            .bearer_auth(&t)
            .send()
            .await
            .expect("logout");
        assert_eq!(res.status(), 204, "seeding: logout");
        Who {
            revoked: true,
            ..who(
                "revoked token",
                "handhaver",
                Some(Team::A),
                false,
                Some((t, id)),
                "handhaver",
            )
        }
    };
    let anonymous = Who {
        role: None,
        token: None,
        user_id: None,
        ..who("anonymous", "-", None, false, None, "-")
    };
    let hh_a = who(
        "handhaver A",
        "handhaver",
        Some(Team::A),
        false,
        Some(l("handhaver").await),
        "handhaver",
    );
    let jb_a = who(
        "jeugdboa A",
        "jeugdboa",
        Some(Team::A),
        false,
        Some(l("jeugdboa").await),
        "jeugdboa",
    );
    let tl_a = who(
        "teamleider A+wpg",
        "teamleider",
        Some(Team::A),
        true,
        Some(l("teamleider").await),
        "teamleider",
    );
    let tl_a0 = who(
        "teamleider A",
        "teamleider",
        Some(Team::A),
        false,
        Some(l("tl.zonder").await),
        "tl.zonder",
    );
    let bh = who(
        "beheerder",
        "beheerder",
        None,
        false,
        Some(l("beheerder").await),
        "beheerder",
    );
    let bh_wpg = who(
        "beheerder+wpg",
        "beheerder",
        None,
        true,
        Some(l("beheer.wpg").await),
        "beheer.wpg",
    );
    let hh_b = who(
        "handhaver B",
        "handhaver",
        Some(Team::B),
        false,
        Some(l("hh.ijmond").await),
        "hh.ijmond",
    );
    let jb_b = who(
        "jeugdboa B",
        "jeugdboa",
        Some(Team::B),
        false,
        Some(l("jb.ijmond").await),
        "jb.ijmond",
    );
    let tl_b = who(
        "teamleider B+wpg",
        "teamleider",
        Some(Team::B),
        true,
        Some(l("tl.ijmond").await),
        "tl.ijmond",
    );
    let no_team = who(
        "no team",
        "handhaver",
        None,
        false,
        Some(l("zonder.team").await),
        "zonder.team",
    );
    // The functionaris gegevensbescherming, with the Wpg flag: reads the register, no record.
    let fg = who(
        "fg+wpg",
        "fg",
        None,
        true,
        Some(l("fg.privacy").await),
        "fg.privacy",
    );
    let (_, victim) = login_as(&app, "slachtoffer", PASSWORD, "victim-phone").await;
    let all = [
        &anonymous, &revoked, &hh_a, &jb_a, &tl_a, &tl_a0, &bh, &bh_wpg, &hh_b, &jb_b, &tl_b,
        &no_team, &fg,
    ];
    let outsiders = [&anonymous, &revoked, &no_team, &hh_b, &jb_b, &tl_b, &fg];
    // Least entitled first: the first resolve of a conflict is the one that can leak its values.
    let insiders = [&tl_a0, &bh, &bh_wpg, &hh_a, &jb_a, &tl_a];
    assert_eq!(outsiders.len() + insiders.len(), all.len());

    let mut sentinels: Vec<Sentinel> = a.sentinels.iter().chain(&b.sentinels).cloned().collect();
    for (w, team) in [
        (&hh_a, Team::A),
        (&jb_a, Team::A),
        (&tl_a, Team::A),
        (&tl_a0, Team::A),
        (&hh_b, Team::B),
        (&jb_b, Team::B),
        (&tl_b, Team::B),
    ] {
        sentinels.push(Sentinel::id(
            team,
            &format!("user id of {}", w.name),
            w.user_id.expect("user"),
        ));
    }
    sentinels.push(Sentinel::id(
        Team::A,
        "user id of a team A handhaver",
        victim,
    ));

    let ctx = Ctx {
        a: a.ids.clone(),
        own_wpg: HashMap::from([(Team::A, a.ids.wpg), (Team::B, b.ids.wpg)]),
        victim,
        victim_device: "victim-phone".into(),
        day: local.date_naive(),
        signed_date,
        signed_shift,
        t0,
        photo_sha: sha_hex(&a.photo_bytes),
        photo_size: a.photo_bytes.len(),
        push_row: a.avg_row.clone(),
        push_cursor: a.push_cursor,
    };
    let random = ctx.randomized();
    let mut a_ids: Vec<String> = ctx
        .a
        .all()
        .into_iter()
        .map(|(_, id)| id.to_string())
        .collect();
    a_ids.push(victim.to_string());

    let mut failures = Failures::default();
    let mut ops = api_ops();
    assert!(
        ops.len() >= 60,
        "the OpenAPI document lists the API: {} operations",
        ops.len()
    );
    ops.extend(page_ops(&mut failures));
    let (fp_lead, _) = login_as(
        &app,
        "teamleider",
        thor::demo::DEMO_PASSWORD,
        "matrix-fingerprint",
    )
    .await;
    let (fp_youth, _) = login_as(
        &app,
        "jeugdboa",
        thor::demo::DEMO_PASSWORD,
        "matrix-fingerprint",
    )
    .await;
    let mut m = Matrix {
        app: &app,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client"),
        sentinels,
        a_ids,
        failures,
        served: BTreeSet::new(),
        requests: 0,
        logged_reads: 0,
        comparisons: 0,
        fp_lead,
        fp_youth,
        victim,
        photo_a: a.ids.photo,
    };
    let variants = |op: &Op| op.build(&ctx, &hh_a).map_or(1, |r| r.len());

    // 1. Reads: every caller, every variant.
    for op in ops.iter().filter(|o| o.reads()) {
        for i in 0..variants(op) {
            for w in all {
                m.run_checked(op, w, &ctx, &random, i).await;
            }
        }
    }
    for s in m.sentinels.clone().iter().filter(|s| s.team == Team::A) {
        if !m.served.contains(&s.label()) {
            m.failures.add(
                "-",
                "-",
                &format!("MATRIX {} was served to no caller allowed to see it: its leaks would go unseen", s.label()),
            );
        }
    }

    // 2. Mutations, deletions last. Outsiders first: nothing of team A may change.
    let mut mutations: Vec<&Op> = ops.iter().filter(|o| !o.reads()).collect();
    mutations.sort_by_key(|o| o.method == "DELETE");
    let original = ops
        .iter()
        .find(|o| o.key == "GET /api/v1/photos/{id}/original")
        .cloned()
        .map(|o| Op {
            key: "GET /api/v1/photos/{new}/original (after POST /api/v1/photos with team A's hash)"
                .into(),
            ..o
        })
        .expect("the original's route");
    let mut fp = m.fingerprint().await;
    for w in outsiders {
        for op in &mutations {
            for i in 0..variants(op) {
                let ans = m.run_checked(op, w, &ctx, &random, i).await;
                dedupe_follow_up(&mut m, op, w, &original, ans.as_ref()).await;
                let now = m.fingerprint().await;
                let ch = changed(&fp, &now);
                if !ch.is_empty() {
                    m.failures.add(
                        &op.key,
                        w.name,
                        &format!("CHANGED team A's data: {}", ch.join(", ")),
                    );
                    fp = now;
                }
            }
        }
    }
    // Then team A and the beheerders: a refused change changes nothing.
    let mut changes_seen = 0;
    for op in &mutations {
        for i in 0..variants(op) {
            for w in insiders {
                let ans = m.run_checked(op, w, &ctx, &random, i).await;
                dedupe_follow_up(&mut m, op, w, &original, ans.as_ref()).await;
                let now = m.fingerprint().await;
                let ch = changed(&fp, &now);
                if let Some(ans) = &ans
                    && !(200..400).contains(&ans.status)
                    && !ch.is_empty()
                {
                    m.failures.add(
                        &op.key,
                        w.name,
                        &format!(
                            "refused ({}) yet changed team A's data: {}",
                            ans.status,
                            ch.join(", ")
                        ),
                    );
                }
                changes_seen += usize::from(!ch.is_empty());
                fp = now;
            }
        }
    }

    for (count, what) in [
        (
            changes_seen,
            "no mutation of team A changed its fingerprint: the fingerprint sees nothing",
        ),
        (
            m.logged_reads,
            "no Wpg value served was found in the audit log: the audit check sees nothing",
        ),
        (
            m.comparisons,
            "no outsider request named a team A record: the existence check ran nowhere",
        ),
    ] {
        if count == 0 {
            m.failures.add("-", "-", &format!("MATRIX {what}"));
        }
    }
    let n = m.failures.rows.len();
    eprintln!(
        "role matrix on {backend:?}: {} operations × {} callers, {} requests ({} existence comparisons, {} Wpg values found logged, {} changes of team A seen), {} failing pairs, {:.1} s",
        ops.len(),
        all.len(),
        m.requests,
        m.comparisons,
        m.logged_reads,
        changes_seen,
        n,
        started.elapsed().as_secs_f64()
    );
    let table = m.failures.table();
    app.stop().await;
    assert!(
        n == 0,
        "role matrix: {n} (operation, caller) pairs fail:\n{table}"
    );
}

/// After a photo record made with team A's hash and size: the caller must not get team A's
/// bytes by asking for the original of their own new record.
async fn dedupe_follow_up(
    m: &mut Matrix<'_>,
    op: &Op,
    who: &Who,
    original: &Op,
    ans: Option<&Answer>,
) {
    if op.key != "POST /api/v1/photos" || !ans.is_some_and(|a| (200..300).contains(&a.status)) {
        return;
    }
    // The id of the record just made is in the answer.
    let id = ans
        .and_then(|a| serde_json::from_str::<Value>(&a.body).ok())
        .and_then(|v| v["id"].as_str().map(str::to_string));
    let Some(id) = id else {
        m.failures
            .add(&op.key, who.name, "MATRIX no id in the answer");
        return;
    };
    let req = Req::new("GET", format!("/api/v1/photos/{id}/original"));
    m.run(original, who, &req, false).await;
}

both!(role_matrix);
