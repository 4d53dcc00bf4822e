//! Field work beside violations: patrol rounds and their tracks, youth groups, observations,
//! persons (Wpg) and incidents, over REST and sync.

use serde_json::{Value, json};
use thor_tests::{Backend, TestApp, assert_problem, both};
use uuid::Uuid;

fn ms(t: chrono::DateTime<chrono::Utc>) -> i64 {
    t.timestamp_millis()
}

async fn pull(app: &TestApp, t: &str, cursor: i64) -> Value {
    let res = app
        .get(t, &format!("/api/v1/sync/pull?last_pulled_at={cursor}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

async fn push(app: &TestApp, t: &str, cursor: i64, changes: Value) -> Value {
    let res = app
        .post(
            t,
            &format!("/api/v1/sync/push?last_pulled_at={cursor}"),
            &json!({ "changes": changes }),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

fn rows(pulled: &Value, table: &str) -> Vec<Value> {
    thor_tests::pulled_rows(pulled, table)
}

async fn youth_data_is_for_jeugdboas_and_names_are_logged(b: Backend) {
    let app = TestApp::spawn(b).await;
    app.demo_accounts().await;
    let jb = app.login("jeugdboa", "phone-jb").await;
    let hh = app.login("handhaver", "phone-hh").await;
    let lead = app.login("teamleider", "pc-lead").await;

    let group = Uuid::new_v4();
    let res = app
        .post(
            &jb,
            "/api/v1/youth/groups",
            &json!({
                "id": group, "name": "Groep Plein 1945", "duiding": "hinderlijk",
                "spots": [{ "name": "Plein 1945", "lat": 52.4581, "lon": 4.6262 }]
            }),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    let g: Value = res.json().await.unwrap();
    assert_eq!(g["duiding_history"].as_array().unwrap().len(), 1);

    let person = Uuid::new_v4();
    let res = app
        .post(
            &jb,
            "/api/v1/youth/persons",
            &json!({
                "id": person, "group_id": group, "name": "J. Jansen", "date_of_birth": "2010-04-01"
            }),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());

    // A handhaver (a BOA, but no youth officer) asking for a member's name: 403.
    assert_problem(
        app.get(&hh, &format!("/api/v1/youth/persons/{person}"))
            .send()
            .await
            .unwrap(),
        403,
        None,
    )
    .await;
    assert_problem(
        app.get(&hh, "/api/v1/youth/persons").send().await.unwrap(),
        403,
        None,
    )
    .await;
    assert_problem(
        app.post(
            &hh,
            "/api/v1/youth/groups",
            &json!({ "id": Uuid::new_v4(), "name": "x" }),
        )
        .send()
        .await
        .unwrap(),
        403,
        None,
    )
    .await;
    // Nor does it reach the handhaver's phone.
    let hp = pull(&app, &hh, 0).await;
    assert!(rows(&hp, "youth_persons").is_empty());
    assert!(rows(&hp, "youth_groups").is_empty());

    // The jeugdboa reads it, and the read is in the audit log.
    let before = app.count("audit_log").await;
    let res = app
        .get(&jb, &format!("/api/v1/youth/persons/{person}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let got: Value = res.json().await.unwrap();
    assert_eq!(got["name"], "J. Jansen");
    assert_eq!(app.count("audit_log").await, before + 1);
    // Through sync too: the pull that carries names is logged, one line per Wpg table it
    // carries (the groups and the persons).
    let persons_read = "audit_log WHERE action = 'sync_pull' AND record_type = 'youth_persons'";
    let before = app.count(persons_read).await;
    let all_before = app.count("audit_log").await;
    let jp = pull(&app, &jb, 0).await;
    assert_eq!(rows(&jp, "youth_persons").len(), 1);
    assert_eq!(app.count(persons_read).await, before + 1);
    assert_eq!(app.count("audit_log").await, all_before + 2);
    // The Wpg-authorised lead reads it too.
    assert_eq!(
        app.get(&lead, &format!("/api/v1/youth/persons/{person}"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    // A change of the municipal assessment keeps its history.
    let res = app
        .patch(
            &lead,
            &format!("/api/v1/youth/groups/{group}"),
            &json!({ "duiding": "overlastgevend" }),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let g: Value = res.json().await.unwrap();
    let h = g["duiding_history"].as_array().unwrap();
    assert_eq!(h.len(), 2);
    assert_eq!(h[1]["duiding"], "overlastgevend");
    assert_problem(
        app.patch(
            &lead,
            &format!("/api/v1/youth/groups/{group}"),
            &json!({ "duiding": "gevaarlijk" }),
        )
        .send()
        .await
        .unwrap(),
        422,
        Some("duiding"),
    )
    .await;
}

async fn observation_behaviours_from_two_devices_merge_as_a_union(b: Backend) {
    let app = TestApp::spawn(b).await;
    app.demo_accounts().await;
    let a = app.login("jeugdboa", "phone-a").await;
    let bb = app.login("jeugdboa", "phone-b").await;
    let obs = Uuid::new_v4();
    let now = ms(chrono::Utc::now()) - 600_000;
    let p0 = pull(&app, &a, 0).await;
    let c0 = p0["timestamp"].as_i64().unwrap();
    let res = push(&app, &a, c0, json!({ "youth_observations": { "created": [{
        "id": obs, "new_group_name": "onbekend groepje", "observed_at": now, "lat": 52.4581, "lon": 4.6262,
        "size_estimate": 6, "age_min": 14, "age_max": 17, "gender_mix": "boys",
        "behaviours": "[\"noise\"]", "contact_made": true, "referral": "youth_work"
    }], "updated": [], "deleted": [] }})).await;
    assert_eq!(res["experimentalRejectedIds"], json!({}), "{res}");

    // Both phones have the observation at the same revision, then edit offline.
    let pa = pull(&app, &a, c0).await;
    let pb = pull(&app, &bb, 0).await;
    let row_a = rows(&pa, "youth_observations")[0].clone();
    let row_b = rows(&pb, "youth_observations")[0].clone();
    assert_eq!(row_a["server_rev"], row_b["server_rev"]);
    let mut ea = row_a.clone();
    ea["behaviours"] = json!("[\"noise\",\"alcohol\"]");
    let mut eb = row_b.clone();
    eb["behaviours"] = json!("[\"noise\",\"litter\"]");
    eb["notes"] = json!("fietsen op de stoep");
    push(
        &app,
        &a,
        pa["timestamp"].as_i64().unwrap(),
        json!({ "youth_observations": { "created": [], "updated": [ea], "deleted": [] }}),
    )
    .await;
    push(
        &app,
        &bb,
        pb["timestamp"].as_i64().unwrap(),
        json!({ "youth_observations": { "created": [], "updated": [eb], "deleted": [] }}),
    )
    .await;

    let got: Value = app
        .get(&a, &format!("/api/v1/youth/observations/{obs}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut beh: Vec<String> = serde_json::from_value(got["behaviours"].clone()).unwrap();
    beh.sort();
    assert_eq!(beh, vec!["alcohol", "litter", "noise"]);
    assert_eq!(got["notes"], "fietsen op de stoep");

    // An unknown behaviour is refused per record, naming the field.
    let bad = Uuid::new_v4();
    let res = push(&app, &a, 0, json!({ "youth_observations": { "created": [{
        "id": bad, "new_group_name": "x", "observed_at": now, "lat": 52.4581, "lon": 4.6262, "behaviours": "[\"skateboarding\"]"
    }], "updated": [], "deleted": [] }})).await;
    assert_eq!(
        res["experimentalRejectedIds"]["youth_observations"],
        json!([bad.to_string()])
    );
    assert!(
        res["rejected"][0]["errors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["field"] == "behaviours"),
        "{res}"
    );
}

async fn rounds_incidents_and_their_rules(b: Backend) {
    let app = TestApp::spawn(b).await;
    app.demo_accounts().await;
    let hh = app.login("handhaver", "phone-hh").await;
    let lead = app.login("teamleider", "pc-lead").await;
    let start = chrono::Utc::now() - chrono::Duration::hours(1);

    // Planning a round is the lead's; an officer starts one ad hoc.
    let planned = json!({
        "id": Uuid::new_v4(), "name": "Avondronde IJmuiden", "shift": "late", "status": "planned",
        "planned_start": start.to_rfc3339(), "area_codes": ["WK045301"],
        "checkpoints": [{ "id": "c1", "name": "Plein 1945", "lat": 52.4581, "lon": 4.6262, "radius_m": 40 }]
    });
    assert_problem(
        app.post(&hh, "/api/v1/rounds", &planned)
            .send()
            .await
            .unwrap(),
        403,
        None,
    )
    .await;
    let res = app
        .post(&lead, "/api/v1/rounds", &planned)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    let adhoc = Uuid::new_v4();
    let res = app
        .post(&hh, "/api/v1/rounds", &json!({
            "id": adhoc, "name": "Rondje haven", "status": "started", "ad_hoc": true, "started_at": start.to_rfc3339()
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());

    // The state only moves forward: the lead completes the round; a phone that meanwhile paused
    // it offline does not undo "completed".
    let p = pull(&app, &hh, 0).await;
    let r = rows(&p, "rounds")
        .into_iter()
        .find(|r| r["id"] == adhoc.to_string())
        .unwrap()
        .clone();
    let res = app
        .patch(
            &lead,
            &format!("/api/v1/rounds/{adhoc}"),
            &json!({ "status": "completed", "ended_at": chrono::Utc::now().to_rfc3339() }),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let mut stale = r.clone();
    stale["status"] = json!("paused");
    let pushed = push(
        &app,
        &hh,
        p["timestamp"].as_i64().unwrap(),
        json!({ "rounds": { "created": [], "updated": [stale.clone()], "deleted": [] }}),
    )
    .await;
    assert_eq!(pushed["conflicts"].as_array().unwrap().len(), 1, "{pushed}");
    let got: Value = app
        .get(&hh, &format!("/api/v1/rounds/{adhoc}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got["status"], "completed");

    // A segment needs its round; a bad point is named.
    let res = app
        .post(&hh, "/api/v1/track-segments", &json!({ "id": Uuid::new_v4(), "round_id": Uuid::new_v4(), "points": [[52.46, 4.62, 1764150000000i64, 5, 1.2]] }))
        .send()
        .await
        .unwrap();
    assert_problem(res, 422, Some("round_id")).await;
    let res = app
        .post(
            &hh,
            "/api/v1/track-segments",
            &json!({ "id": Uuid::new_v4(), "round_id": adhoc, "points": [[152.46, 4.62, 1]] }),
        )
        .send()
        .await
        .unwrap();
    assert_problem(res, 422, Some("points[0]")).await;

    // A report made on the round links to it.
    let mut v = thor_tests::report(Uuid::new_v4());
    v["round_id"] = json!(adhoc);
    let res = app
        .post(&hh, "/api/v1/violations", &v)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let got: Value = res.json().await.unwrap();
    assert_eq!(got["round_id"], adhoc.to_string());

    // Incidents.
    let res = app
        .post(&hh, "/api/v1/incidents", &json!({
            "id": Uuid::new_v4(), "kind": "use_of_force", "occurred_at": start.to_rfc3339(), "lat": 52.4599, "lon": 4.6218,
            "description": "Handboeien bij aanhouding", "hovj_notified_at": (start + chrono::Duration::minutes(10)).to_rfc3339(),
            "supervisor_notified_at": (start + chrono::Duration::minutes(12)).to_rfc3339(), "police_requested": true
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    let inc: Value = res.json().await.unwrap();
    assert!(inc["hovj_notified_at"].as_str().unwrap().ends_with('Z'));
    let res = app
        .post(
            &hh,
            "/api/v1/incidents",
            &json!({ "id": Uuid::new_v4(), "kind": "ruzie", "occurred_at": "gisteren" }),
        )
        .send()
        .await
        .unwrap();
    assert_problem(res, 422, Some("occurred_at")).await;
    let res = app
        .post(
            &hh,
            "/api/v1/incidents",
            &json!({ "id": Uuid::new_v4(), "kind": "ruzie", "occurred_at": start.to_rfc3339() }),
        )
        .send()
        .await
        .unwrap();
    assert_problem(res, 422, Some("kind")).await;
    let list: Value = app
        .get(&lead, "/api/v1/incidents")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
}

both!(
    youth_data_is_for_jeugdboas_and_names_are_logged,
    observation_behaviours_from_two_devices_merge_as_a_union,
    rounds_incidents_and_their_rules,
);

/// A round walked offline for 40 minutes eastward through IJmuiden, its track pushed as three
/// segments out of order, with a wild fix among them.
async fn a_round_pushed_in_pieces_out_of_order_derives_right(b: Backend) {
    let app = TestApp::spawn(b).await;
    app.demo_accounts().await;
    let hh = app.login("handhaver", "phone-hh").await;
    let t0 = chrono::Utc::now() - chrono::Duration::hours(2);
    let t0ms = ms(t0);
    // 241 fixes, 10 s apart, 14 m east each (1.4 m/s), with a little north-south wobble.
    let mut pts: Vec<(f64, f64, i64)> = Vec::new();
    for i in 0..=240i64 {
        let lat = 52.4599 + 0.0002 * ((i as f64) / 15.0).sin();
        let lon = 4.6218 + (i as f64) * 14.0 / (111_320.0 * 52.46f64.to_radians().cos());
        pts.push((lat, lon, t0ms + i * 10_000));
    }
    let length: f64 = pts
        .windows(2)
        .map(|w| thor::geo::distance_m((w[0].0, w[0].1), (w[1].0, w[1].1)))
        .sum();
    let wire = |p: &(f64, f64, i64)| json!([p.0, p.1, p.2, 6.0, 1.4]);
    let mut seg_points: Vec<Vec<Value>> = pts
        .chunks(81)
        .map(|c| c.iter().map(wire).collect())
        .collect();
    // A fix 5 km off with 2,000 m accuracy, in the middle segment.
    seg_points[1].push(json!([52.5049, 4.6218, t0ms + 805_000, 2000.0, null]));
    let cp_at = pts[60];
    let round = Uuid::new_v4();
    let push_one = |table: &str, row: Value| json!({ table: { "created": [row], "updated": [], "deleted": [] } });
    let res = push(&app, &hh, 0, push_one("rounds", json!({
        "id": round, "name": "Rondje IJmuiden", "status": "completed", "ad_hoc": true,
        "started_at": t0ms, "ended_at": t0ms + 2_400_000,
        "checkpoints": json!([
            { "id": "a", "name": "Halverwege", "lat": cp_at.0, "lon": cp_at.1, "radius_m": 20 },
            { "id": "b", "name": "Strand", "lat": 52.4640, "lon": 4.5600, "radius_m": 50 }
        ]).to_string(),
        "area_codes": "[\"WK045301\"]"
    }))).await;
    assert_eq!(res["experimentalRejectedIds"], json!({}), "{res}");
    for i in [2usize, 0, 1] {
        let res = push(&app, &hh, 0, push_one("track_segments", json!({
            "id": Uuid::new_v4(), "round_id": round,
            "started_at": seg_points[i][0][2], "points": Value::Array(seg_points[i].clone()).to_string()
        }))).await;
        assert_eq!(res["experimentalRejectedIds"], json!({}), "{res}");
    }

    let s: Value = app
        .get(&hh, &format!("/api/v1/rounds/{round}/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let d = s["distance_m"].as_f64().unwrap();
    assert!(
        (d - length).abs() / length < 0.02,
        "distance {d} against {length}"
    );
    assert_eq!(s["points_used"], 241, "{s}");
    assert_eq!(s["rejected_inaccurate"], 1);
    assert_eq!(s["duration_s"], 2400);
    assert_eq!(s["started_at_ms"], t0ms);
    // The checkpoint on the way is reached when the walk passes it; the one on the beach is not.
    let cps = s["checkpoints"].as_array().unwrap();
    let reached = cps[0]["reached_at_ms"].as_i64().unwrap();
    assert!(
        (reached - cp_at.2).abs() <= 20_000,
        "reached at {reached}, passed at {}",
        cp_at.2
    );
    assert!(cps[1]["reached_at_ms"].is_null());

    // Time per wijk, computed here from the server's own area lookup of every fix.
    let mut expect: std::collections::HashMap<String, f64> = Default::default();
    let mut wijk_of = Vec::new();
    for p in &pts {
        let l: Value = app
            .get(
                &hh,
                &format!("/api/v1/areas/lookup?lat={}&lon={}", p.0, p.1),
            )
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        wijk_of.push(l["wijk"]["code"].as_str().map(str::to_string));
    }
    for w in wijk_of.windows(2) {
        for code in w.iter().flatten() {
            *expect.entry(code.clone()).or_default() += 5.0;
        }
    }
    assert!(
        expect.len() >= 2,
        "the walk crosses into another wijk: {expect:?}"
    );
    for a in s["per_wijk"].as_array().unwrap() {
        let code = a["code"].as_str().unwrap();
        let got = a["seconds"].as_f64().unwrap();
        let want = expect.get(code).copied().unwrap_or(0.0);
        assert!(
            (got - want).abs() <= 5.0,
            "{code}: {got} s against {want} s"
        );
    }
    let total: f64 = s["per_wijk"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["seconds"].as_f64().unwrap())
        .sum();
    assert!((total - expect.values().sum::<f64>()).abs() <= 10.0);
    // The planned wijk is covered.
    assert_eq!(s["coverage"]["unit"], "area");
    assert_eq!(s["coverage"]["covered"], 1);
}

both!(a_round_pushed_in_pieces_out_of_order_derives_right);

/// A prepared set around one dumped mattress: the candidates are exactly the expected ones, and
/// marking one links both ways and can be undone.
async fn duplicate_candidates_are_exactly_the_expected_ones(b: Backend) {
    let app = TestApp::spawn(b).await;
    app.demo_accounts().await;
    let hh = app.login("handhaver", "phone-hh").await;
    let lead = app.login("teamleider", "pc-lead").await;
    let base = chrono::Utc::now() - chrono::Duration::hours(14);
    let (lat0, lon0): (f64, f64) = (52.4599, 4.6218);
    let deg_n = |m: f64| m / 111_195.0;
    let deg_e = |m: f64| m / (111_195.0 * lat0.to_radians().cos());
    let mk = |category: &str, minutes: i64, north: f64, east: f64| {
        let at = base + chrono::Duration::minutes(minutes);
        json!({
            "id": Uuid::new_v4(), "category": category, "observed_at": at.to_rfc3339(),
            "location": { "lat": lat0 + deg_n(north), "lon": lon0 + deg_e(east), "accuracy_m": 5.0, "source": "gps" },
            "description": "Matras naast de container", "outcome": "warning"
        })
    };
    let target = mk("afval", 13 * 60, 0.0, 0.0);
    let set = [
        (mk("afval", 14 * 60, 30.0, 0.0), true), // 30 m, an hour later
        (mk("afval", 13 * 60, 80.0, 0.0), false), // 80 m: too far
        (mk("parkeren", 13 * 60, 10.0, 0.0), false), // another category
        (mk("afval", 0, 20.0, 0.0), false),      // 13 hours earlier
        (mk("afval", 2 * 60, 0.0, 45.0), true),  // 45 m, 11 hours earlier
    ];
    for v in std::iter::once(&target).chain(set.iter().map(|(v, _)| v)) {
        let res = app.post(&hh, "/api/v1/violations", v).send().await.unwrap();
        assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    }
    let tid = target["id"].as_str().unwrap();
    let got: Value = app
        .get(&lead, &format!("/api/v1/violations/{tid}/duplicates"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = got["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    let want: Vec<&str> = vec![
        set[0].0["id"].as_str().unwrap(),
        set[4].0["id"].as_str().unwrap(),
    ];
    assert_eq!(ids, want, "nearest first: 30 m, then 45 m");

    // Marking is the lead's; it links both ways; undoing unlinks both.
    let other = set[0].0["id"].as_str().unwrap();
    assert_problem(
        app.post(
            &hh,
            &format!("/api/v1/violations/{tid}/duplicates"),
            &json!({ "of": other }),
        )
        .send()
        .await
        .unwrap(),
        403,
        None,
    )
    .await;
    let res = app
        .post(
            &lead,
            &format!("/api/v1/violations/{tid}/duplicates"),
            &json!({ "of": other }),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let back: Value = app
        .get(&lead, &format!("/api/v1/violations/{other}/duplicates"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let link = back["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == tid)
        .unwrap()
        .clone();
    assert_eq!(link["marked"], true);
    let res = app
        .client
        .delete(app.url(&format!("/api/v1/violations/{tid}/duplicates/{other}")))
        .bearer_auth(&lead)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let back: Value = app
        .get(&lead, &format!("/api/v1/violations/{other}/duplicates"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        back["candidates"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["marked"] == false)
    );
    assert_problem(
        app.post(
            &lead,
            &format!("/api/v1/violations/{tid}/duplicates"),
            &json!({ "of": set[2].0["id"] }),
        )
        .send()
        .await
        .unwrap(),
        422,
        Some("of"),
    )
    .await;
}

both!(duplicate_candidates_are_exactly_the_expected_ones);
