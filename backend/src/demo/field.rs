//! The demo day's other field work: patrol rounds with GPS tracks that stay on Velsen's ground
//! (a walk or a bike ride at a plausible speed, turning back at the municipal border), their
//! checkpoints, a planned round not yet walked, the youth groups of the register with the day's
//! observations, one named member (Wpg), and one incident. Pure and seeded like the rest.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use geo::InteriorPoint;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::{gaussian, local};
use crate::reference::Reference;

/// Stands for the id of `USERS[n]` in generated records (ids exist only once accounts do).
pub const USER_REF: &str = "@user:";

/// One field record to load: who records it, of which kind, and when it reaches the server.
#[derive(Debug, Clone)]
pub struct DemoRecord {
    /// Index into `USERS`.
    pub user: usize,
    pub kind: &'static str,
    pub id: Uuid,
    pub data: Map<String, Value>,
    pub received_at: DateTime<Utc>,
}

fn id(rng: &mut ChaCha8Rng) -> Uuid {
    uuid::Builder::from_random_bytes(rng.random()).into_uuid()
}

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// The interior point of a buurt, as (lat, lon).
fn centre(reference: &Reference, code: &str) -> Option<(f64, f64)> {
    let p = reference.areas.get(code)?.shape.interior_point()?;
    Some((p.y(), p.x()))
}

/// A track from `start`, one fix every `step_s` seconds for `minutes`, at `speed` m/s, that
/// wanders but never leaves Velsen: `[lat, lon, t_ms, accuracy_m, speed_mps]`.
fn track(
    rng: &mut ChaCha8Rng,
    reference: &Reference,
    start: (f64, f64),
    t0: DateTime<Utc>,
    minutes: i64,
    speed: f64,
    step_s: i64,
) -> Vec<Value> {
    let (mut lat, mut lon) = start;
    let mut heading: f64 = rng.random_range(0.0..std::f64::consts::TAU);
    let n = minutes * 60 / step_s;
    let mut out = Vec::with_capacity(n as usize + 1);
    for i in 0..=n {
        let t = t0 + Duration::seconds(i * step_s);
        let accuracy = (4.0 + rng.random_range(0.0..8.0f64)).round();
        out.push(json!([
            (lat * 1e6).round() / 1e6,
            (lon * 1e6).round() / 1e6,
            t.timestamp_millis(),
            accuracy,
            speed
        ]));
        heading += gaussian(rng) * 0.25;
        let v = speed * (0.8 + rng.random_range(0.0..0.4));
        let d = v * step_s as f64;
        for _ in 0..12 {
            let nlat = lat + d * heading.cos() / 111_320.0;
            let nlon = lon + d * heading.sin() / (111_320.0 * lat.to_radians().cos());
            if reference.areas.locate(nlat, nlon).buurt.is_some() {
                lat = nlat;
                lon = nlon;
                break;
            }
            // The border (or the North Sea canal): turn.
            heading += std::f64::consts::FRAC_PI_2 + rng.random_range(0.0..1.0);
        }
    }
    out
}

/// Three points the track passes (checkpoints that will be reached) and one it does not.
fn checkpoints(points: &[Value], away: (f64, f64)) -> Value {
    let mut cps = Vec::new();
    for (i, name) in ["Start", "Halverwege", "Eind"].iter().enumerate() {
        let idx = (points.len().saturating_sub(1)) * (i + 1) / 4;
        if let Some(p) = points.get(idx) {
            cps.push(json!({
                "id": format!("cp{}", i + 1), "name": name,
                "lat": p[0], "lon": p[1], "radius_m": 40,
            }));
        }
    }
    cps.push(json!({ "id": "cp4", "name": "Uitkijkpunt (niet bezocht)", "lat": away.0, "lon": away.1, "radius_m": 40 }));
    Value::Array(cps)
}

/// The field records of the demo day.
///
/// The day's records (rounds, tracks, observations, the incident) get ids from a generator
/// seeded with the date as well, so that `serve --demo` on the next day, on the same database,
/// loads a new day beside the old one. The youth register (its groups and the named member) is
/// the same every day: the next day's observations are of the groups already registered.
pub fn generate(reference: &Reference, date: NaiveDate, seed: u64) -> Vec<DemoRecord> {
    let mut rng = ChaCha8Rng::seed_from_u64(super::day_seed(seed ^ 0xF1E1_D000, date));
    let mut register = ChaCha8Rng::seed_from_u64(seed ^ 0x7E61_57E4);
    let fallback = (52.4600, 4.6200);
    let ijmuiden = centre(reference, "BU04530106").unwrap_or(fallback);
    let haven = centre(reference, "BU04530302").unwrap_or(fallback);
    let velserbroek = centre(reference, "BU04530801").unwrap_or(fallback);
    let santpoort = centre(reference, "BU04530603").unwrap_or(fallback);
    let wijk_of = |p: (f64, f64)| {
        reference
            .areas
            .locate(p.0, p.1)
            .wijk
            .map(|w| w.code.clone())
    };
    let mut out = Vec::new();

    // Rounds the lead plans and an officer walks (or cycles).
    struct Plan {
        name: &'static str,
        shift: &'static str,
        start_min: i64,
        minutes: i64,
        speed: f64,
        start: (f64, f64),
        officer: usize,
    }
    let plan = |name, shift, start_min, minutes, speed, start, officer| Plan {
        name,
        shift,
        start_min,
        minutes,
        speed,
        start,
        officer,
    };
    let plans = [
        plan(
            "Ochtendronde IJmuiden-centrum",
            "early",
            7 * 60 + 30,
            110,
            1.3,
            ijmuiden,
            1,
        ),
        plan(
            "Fietsronde Velserbroek",
            "early",
            10 * 60,
            100,
            4.2,
            velserbroek,
            4,
        ),
        plan(
            "Middagronde haven en strand",
            "late",
            15 * 60 + 30,
            120,
            1.4,
            haven,
            5,
        ),
    ];
    for Plan {
        name,
        shift,
        start_min,
        minutes,
        speed,
        start,
        officer,
    } in plans
    {
        let rid = id(&mut rng);
        let t0 = local(date, start_min);
        let points = track(&mut rng, reference, start, t0, minutes, speed, 5);
        let area: Vec<String> = wijk_of(start).into_iter().collect();
        out.push(DemoRecord {
            user: super::LEAD,
            kind: "rounds",
            id: rid,
            data: obj(json!({
                "name": name, "shift": shift, "status": "planned",
                "planned_start": t0.timestamp_millis(),
                "planned_end": (t0 + Duration::minutes(minutes)).timestamp_millis(),
                "area_codes": area,
                "checkpoints": checkpoints(&points, santpoort),
                "officer_ids": [format!("{USER_REF}{officer}")],
                "ad_hoc": false,
            })),
            received_at: t0 - Duration::hours(12),
        });
        // The officer's phone: started, the track in segments of 300 fixes, completed.
        for (i, chunk) in points.chunks(300).enumerate() {
            let first = chunk
                .first()
                .and_then(|p| p.get(2))
                .cloned()
                .unwrap_or(Value::Null);
            out.push(DemoRecord {
                user: officer,
                kind: "track_segments",
                id: id(&mut rng),
                data: obj(
                    json!({ "round_id": rid.to_string(), "started_at": first, "points": chunk }),
                ),
                received_at: t0 + Duration::minutes(minutes) + Duration::minutes(5 + i as i64),
            });
        }
        out.push(DemoRecord {
            user: officer,
            kind: "rounds:update",
            id: rid,
            data: obj(json!({
                "status": "completed",
                "started_at": t0.timestamp_millis(),
                "ended_at": (t0 + Duration::minutes(minutes)).timestamp_millis(),
            })),
            received_at: t0 + Duration::minutes(minutes + 4),
        });
    }
    // A round planned for tonight, not walked yet: planned against done in the briefing.
    let tonight = local(date, 23 * 60);
    out.push(DemoRecord {
        user: super::LEAD,
        kind: "rounds",
        id: id(&mut rng),
        data: obj(json!({
            "name": "Avondronde Santpoort", "shift": "night", "status": "planned",
            "planned_start": tonight.timestamp_millis(),
            "planned_end": (tonight + Duration::minutes(90)).timestamp_millis(),
            "area_codes": wijk_of(santpoort).into_iter().collect::<Vec<_>>(),
            "ad_hoc": false,
        })),
        received_at: local(date, 8 * 60),
    });

    // The youth-group register (the jeugdboa keeps it) and the day's observations.
    let groups = [
        (
            "Groep Stadhuisplein",
            "hinderlijk",
            ijmuiden,
            "Stadhuisplein",
        ),
        (
            "Groep Maadpad",
            "overlastgevend",
            velserbroek,
            "Winkelcentrum Velserbroek",
        ),
        ("Skatebaan-jongeren", "none", santpoort, "Skatebaan"),
    ];
    let mut group_ids = Vec::new();
    for (name, duiding, spot, spot_name) in groups {
        let gid = id(&mut register);
        group_ids.push((gid, spot, spot_name));
        out.push(DemoRecord {
            user: 2,
            kind: "youth_groups",
            id: gid,
            data: obj(json!({
                "name": name, "duiding": duiding, "active": true,
                "spots": [{ "name": spot_name, "lat": spot.0, "lon": spot.1 }],
                "notes": "Demo: fictieve groep",
            })),
            received_at: local(date, 9 * 60),
        });
    }
    const BEHAVIOURS: &[&str] = &["noise", "alcohol", "litter", "intimidation", "vandalism"];
    for i in 0..6 {
        let (gid, spot, spot_name) = group_ids[i % group_ids.len()];
        let at = local(date, 16 * 60 + 60 * i as i64 + rng.random_range(0..40));
        let mut beh: Vec<&str> = BEHAVIOURS
            .iter()
            .filter(|_| rng.random_bool(0.35))
            .copied()
            .collect();
        if beh.is_empty() {
            beh.push("noise");
        }
        let gender = ["boys", "mixed"][i % 2];
        let referral = ["youth_work", "none", "wijkagent"][i % 3];
        out.push(DemoRecord {
            user: 2,
            kind: "youth_observations",
            id: id(&mut rng),
            data: obj(json!({
                "group_id": gid.to_string(), "observed_at": at.timestamp_millis(),
                "duration_min": rng.random_range(10..45), "spot": spot_name,
                "lat": spot.0 + gaussian(&mut rng) * 0.0002, "lon": spot.1 + gaussian(&mut rng) * 0.0003,
                "size_estimate": rng.random_range(4..14), "age_min": 14, "age_max": 18,
                "gender_mix": gender, "behaviours": beh,
                "contact_made": i % 3 != 2,
                "contact_outcome": if i % 3 != 2 { "Aangesproken, groep verplaatst zich" } else { "" },
                "referral": referral,
            })),
            received_at: at + Duration::minutes(20),
        });
    }
    out.push(DemoRecord {
        user: 2,
        kind: "youth_persons",
        id: id(&mut register),
        data: obj(json!({
            "group_id": group_ids[0].0.to_string(), "name": "Demo Persoon (fictief)",
            "date_of_birth": "2009-03-14", "notes": "Fictief: alleen voor de demo",
        })),
        received_at: local(date, 17 * 60),
    });

    // One incident: verbal aggression on the harbour round.
    let at = local(date, 16 * 60 + 40);
    out.push(DemoRecord {
        user: 5,
        kind: "incidents",
        id: id(&mut rng),
        data: obj(json!({
            "kind": "aggression", "occurred_at": at.timestamp_millis(),
            "lat": haven.0, "lon": haven.1,
            "description": "Verbale agressie na aanspreken op afval naast container",
            "police_requested": false,
        })),
        received_at: at + Duration::minutes(15),
    });
    out
}
