//! Field-work benchmarks (issue 5; bench/field.sh drives them):
//!
//! ```text
//! fieldbench derive [N]        derive a 2-hour round (7,200 fixes at 1 Hz, 10 checkpoints, a
//!                              planned wijk) against Velsen's real areas, N times: median ms
//! fieldbench shift URL [N]     push a full shift from one phone (40 violations, 10 youth
//!                              observations, one round with 2,000 fixes in 4 segments) in one
//!                              sync push to a server started with --demo, N times
//! ```

use std::time::Instant;

use serde_json::{Map, Value, json};

fn walk(n: usize, t0: i64) -> Vec<Value> {
    // A walk through IJmuiden at 1.4 m/s with a slow turn, one fix per second.
    let (mut lat, mut lon, mut heading) = (52.4599f64, 4.6218f64, 1.2f64);
    (0..n)
        .map(|i| {
            heading += 0.002 * ((i as f64) / 300.0).sin();
            lat += 1.4 * heading.cos() / 111_320.0;
            lon += 1.4 * heading.sin() / (111_320.0 * lat.to_radians().cos());
            json!([lat, lon, t0 + i as i64 * 1000, 6.0, 1.4])
        })
        .collect()
}

async fn derive(n: usize) {
    let dir = tempfile::tempdir().expect("temporary folder");
    let state = thor::app::AppState::open(thor::config::Config::for_data_dir(dir.path().join("d")))
        .await
        .expect("open state");
    let t0 = 1_795_000_000_000i64;
    let points = walk(7200, t0);
    let segments: Vec<Map<String, Value>> = points
        .chunks(2400)
        .rev()
        .map(|c| {
            let mut m = Map::new();
            m.insert("points".into(), Value::Array(c.to_vec()));
            m
        })
        .collect();
    let cps: Vec<Value> = (0..10)
        .map(|i| {
            let p = &points[i * 700];
            json!({ "id": format!("c{i}"), "name": format!("Punt {i}"), "lat": p[0], "lon": p[1], "radius_m": 25 })
        })
        .collect();
    let mut round = Map::new();
    round.insert("checkpoints".into(), Value::Array(cps));
    round.insert("area_codes".into(), json!(["WK045301"]));
    let refs: Vec<&Map<String, Value>> = segments.iter().collect();
    let params = thor::rounds::derive::Params::default();
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..n {
        let t = Instant::now();
        let s = thor::rounds::stats(&round, &refs, &state.reference, &params);
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        last = Some(s);
    }
    times.sort_by(f64::total_cmp);
    let s = last.expect("n >= 1");
    println!(
        "derive 7,200 fixes: n={n} median={:.2} ms min={:.2} max={:.2} (distance {:.0} m, {} wijken, {} buurten, {} of 10 checkpoints)",
        times[n / 2],
        times[0],
        times[n - 1],
        s.distance_m,
        s.per_wijk.len(),
        s.per_buurt.len(),
        s.checkpoints
            .iter()
            .filter(|c| c.reached_at_ms.is_some())
            .count()
    );
}

async fn shift(base: &str, n: usize) {
    let client = reqwest::Client::new();
    let login: Value = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"username": "jeugdboa", "password": "demo", "device_id": "fieldbench"}))
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("login json");
    let token = login["token"].as_str().expect("token").to_string();
    let mut times = Vec::new();
    for run in 0..n {
        let now = chrono::Utc::now().timestamp_millis();
        let t0 = now - 8 * 3600 * 1000 + run as i64 * 1000;
        let round = uuid::Uuid::new_v4();
        let violations: Vec<Value> = (0..40)
            .map(|i| {
                json!({
                    "id": uuid::Uuid::new_v4(), "category": "afval", "observed_at": t0 + i * 600_000,
                    "lat": 52.4599 + i as f64 * 1e-4, "lon": 4.6218, "accuracy_m": 5.0, "location_source": "gps",
                    "description": "Huisvuilzak naast container", "outcome": "warning", "officer_ids": "[]",
                    "status": "submitted", "round_id": round
                })
            })
            .collect();
        let observations: Vec<Value> = (0..10)
            .map(|i| {
                json!({
                    "id": uuid::Uuid::new_v4(), "new_group_name": "Onbekende groep", "observed_at": t0 + i * 1_800_000,
                    "lat": 52.4581, "lon": 4.6262, "size_estimate": 6, "age_min": 14, "age_max": 17,
                    "behaviours": "[\"noise\",\"litter\"]", "contact_made": true, "referral": "youth_work",
                    "round_id": round
                })
            })
            .collect();
        let points = walk(2000, t0);
        let segments: Vec<Value> = points
            .chunks(500)
            .map(|c| {
                json!({ "id": uuid::Uuid::new_v4(), "round_id": round, "started_at": c[0][2],
                        "points": Value::Array(c.to_vec()).to_string() })
            })
            .collect();
        let body = json!({ "changes": {
            "violations": { "created": violations, "updated": [], "deleted": [] },
            "youth_observations": { "created": observations, "updated": [], "deleted": [] },
            "rounds": { "created": [{ "id": round, "name": "Dienst", "status": "completed", "ad_hoc": true,
                "started_at": t0, "ended_at": t0 + 2_000_000 }], "updated": [], "deleted": [] },
            "track_segments": { "created": segments, "updated": [], "deleted": [] },
        }});
        let bytes = serde_json::to_vec(&body).expect("json");
        let t = Instant::now();
        let res = client
            .post(format!("{base}/api/v1/sync/push?last_pulled_at=0"))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(bytes.clone())
            .send()
            .await
            .expect("push");
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        let status = res.status();
        let answer: Value = res.json().await.unwrap_or(Value::Null);
        assert!(
            status.is_success() && answer["experimentalRejectedIds"] == json!({}),
            "push refused: {status} {answer}"
        );
        times.push(ms);
        println!("shift push {run}: {} bytes in {ms:.1} ms", bytes.len());
    }
    times.sort_by(f64::total_cmp);
    println!(
        "shift push (40 violations, 10 observations, 1 round, 2,000 fixes in 4 segments): n={n} median={:.1} ms min={:.1} max={:.1}",
        times[n / 2],
        times[0],
        times[n - 1]
    );
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("derive") => derive(args.get(2).and_then(|s| s.parse().ok()).unwrap_or(51)).await,
        Some("shift") => {
            shift(
                args.get(2)
                    .map(String::as_str)
                    .unwrap_or("http://127.0.0.1:8080"),
                args.get(3).and_then(|s| s.parse().ok()).unwrap_or(11),
            )
            .await
        }
        _ => eprintln!("usage: fieldbench derive [N] | shift URL [N]"),
    }
}
