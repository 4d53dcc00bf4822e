use std::collections::HashMap;

use chrono::Timelike;
use chrono_tz::Europe::Amsterdam;
use serde_json::Value;
use thor_tests::{Backend, TestApp, both};

async fn the_demo_lead_lists_today_with_wijk_and_buurt_names(b: Backend) {
    let app = TestApp::spawn(b).await;
    let scenario = app.load_demo().await;
    let t = app.login("teamleider", "laptop").await;
    let page: Value = app
        .get(
            &t,
            &format!("/api/v1/violations?date={}&limit=500", thor::demo::today()),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 150);
    assert!(items.iter().all(|v| {
        v["wijk"]["name"]
            .as_str()
            .is_some_and(|n| n.starts_with("Wijk "))
    }));
    assert!(items.iter().all(|v| v["buurt"]["name"].is_string()));

    // Spread over the wijken, with hotspots.
    let mut per_wijk: HashMap<String, usize> = HashMap::new();
    let mut per_buurt: HashMap<String, usize> = HashMap::new();
    for v in items {
        *per_wijk
            .entry(v["wijk"]["code"].as_str().unwrap().into())
            .or_default() += 1;
        *per_buurt
            .entry(v["buurt"]["code"].as_str().unwrap().into())
            .or_default() += 1;
    }
    assert!(per_wijk.len() >= 8, "spread over the wijken: {per_wijk:?}");
    let top = per_buurt.values().max().copied().unwrap_or(0);
    assert!(
        top >= 15,
        "a hotspot buurt has at least 10 % of the day: {per_buurt:?}"
    );

    // All three shifts (nacht 23–07, vroeg 07–15, laat 15–23) have reports.
    let mut shifts = [0; 3];
    for v in &scenario.violations {
        let h = v.report.observed_at.with_timezone(&Amsterdam).hour();
        shifts[match h {
            7..=14 => 1,
            15..=22 => 2,
            _ => 0,
        }] += 1;
    }
    assert!(shifts.iter().all(|n| *n >= 10), "{shifts:?}");

    // Deterministic, and loading it again writes nothing.
    let again = thor::demo::generate(&app.state.reference, scenario.date, 150, 0x7400);
    let ids =
        |s: &thor::demo::Scenario| s.violations.iter().map(|v| v.report.id).collect::<Vec<_>>();
    assert_eq!(ids(&scenario), ids(&again));
    let seq = app.last_seq().await;
    let loaded = thor::demo::load(&app.state, &again).await.unwrap();
    let field_creates = again.field.iter().filter(|r| !r.kind.contains(':')).count();
    assert_eq!(
        (loaded.created, loaded.already_there),
        (0, 150 + field_creates)
    );
    assert_eq!(app.last_seq().await, seq);
    app.stop().await;
}

both!(the_demo_lead_lists_today_with_wijk_and_buurt_names);

/// The demo day's rounds walk on Velsen's ground at walking or cycling speed and pass their
/// checkpoints; the youth register, its observations and the incident are there.
async fn the_demo_day_has_rounds_youth_groups_and_an_incident(b: Backend) {
    let app = TestApp::spawn(b).await;
    app.load_demo().await;
    let lead = app.login("teamleider", "laptop").await;
    let jb = app.login("jeugdboa", "phone").await;
    let get = |t: &str, path: &str| {
        let req = app.get(t, path);
        async move { req.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let today = thor::demo::today();
    let rounds = get(&lead, &format!("/api/v1/rounds?date={today}")).await;
    let rounds = rounds.as_array().unwrap();
    assert_eq!(rounds.len(), 4);
    let done: Vec<&Value> = rounds
        .iter()
        .filter(|r| r["status"] == "completed")
        .collect();
    assert_eq!(done.len(), 3);
    assert_eq!(
        rounds.iter().filter(|r| r["status"] == "planned").count(),
        1
    );
    for r in done {
        let s = get(
            &lead,
            &format!("/api/v1/rounds/{}/stats", r["id"].as_str().unwrap()),
        )
        .await;
        let d = s["distance_m"].as_f64().unwrap();
        let secs = s["duration_s"].as_f64().unwrap();
        assert!(d > 1000.0 && secs > 3000.0, "{s}");
        assert!(d / secs < 6.0, "walking or cycling speed: {} m/s", d / secs);
        assert_eq!(
            s["points_used"], s["points_received"],
            "no wild fixes in the demo"
        );
        let in_wijken: f64 = s["per_wijk"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["seconds"].as_f64().unwrap())
            .sum();
        assert!(
            (in_wijken - secs).abs() <= 60.0,
            "the whole walk is inside Velsen: {in_wijken} of {secs} s"
        );
        let reached = s["checkpoints"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| !c["reached_at_ms"].is_null())
            .count();
        assert_eq!(reached, 3, "{s}");
    }
    assert_eq!(
        get(&jb, "/api/v1/youth/groups")
            .await
            .as_array()
            .unwrap()
            .len(),
        3
    );
    assert_eq!(
        get(&jb, &format!("/api/v1/youth/observations?date={today}"))
            .await
            .as_array()
            .unwrap()
            .len(),
        6
    );
    assert_eq!(
        get(&lead, &format!("/api/v1/incidents?date={today}"))
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );
    app.stop().await;
}

both!(the_demo_day_has_rounds_youth_groups_and_an_incident);

/// `serve --demo` started again the next day on the same database loads that day beside the
/// previous one. It used to stop the server: the day's rounds got the same ids every day, with
/// other content ("rounds … already exists with other content").
async fn the_next_demo_day_loads_beside_the_previous_one(b: Backend) {
    let app = TestApp::spawn(b).await;
    let today = thor::demo::today();
    let yesterday = today.pred_opt().unwrap();
    let first = thor::demo::generate(&app.state.reference, yesterday, 40, 0x7400);
    thor::demo::load(&app.state, &first).await.unwrap();
    let next = thor::demo::generate(&app.state.reference, today, 40, 0x7400);
    let loaded = thor::demo::load(&app.state, &next).await.unwrap();
    // Only the youth register (its groups and named member) is the same every day.
    let creates = next.field.iter().filter(|r| !r.kind.contains(':')).count();
    let register = next
        .field
        .iter()
        .filter(|r| r.kind == "youth_groups" || r.kind == "youth_persons")
        .count();
    assert!(register > 0);
    assert_eq!(
        (loaded.created, loaded.already_there),
        (40 + creates - register, register)
    );
    let lead = app.login("teamleider", "laptop").await;
    for day in [yesterday, today] {
        let rounds = app
            .get_json(&lead, &format!("/api/v1/rounds?date={day}"))
            .await;
        assert_eq!(rounds.as_array().map(Vec::len), Some(4), "rounds of {day}");
    }
    app.stop().await;
}

both!(the_next_demo_day_loads_beside_the_previous_one);

/// A lead reviews a report whatever the hour: the time checks of a report's observation are made
/// against the moment it was recorded, not against the review. It used to fail after midnight:
/// the demo day's later reports (received later that day) could not be approved yet ("observed_at
/// lies in the future"), and a real report observed 32 days ago could never be.
async fn a_report_is_reviewed_against_the_time_it_was_recorded(b: Backend) {
    let app = TestApp::spawn(b).await;
    // Tomorrow's demo day: every report is received later than now.
    let tomorrow = thor::demo::today().succ_opt().unwrap();
    let scenario = thor::demo::generate(&app.state.reference, tomorrow, 40, 0x7400);
    thor::demo::load(&app.state, &scenario).await.unwrap();
    let lead = app.login("teamleider", "laptop").await;
    let page = app
        .get_json(
            &lead,
            &format!("/api/v1/violations?date={tomorrow}&status=submitted&limit=1"),
        )
        .await;
    let id = page["items"][0]["id"]
        .as_str()
        .expect("a submitted report")
        .to_string();
    let res = app
        .patch(
            &lead,
            &format!("/api/v1/violations/{id}"),
            &serde_json::json!({ "status": "approved" }),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    app.stop().await;
}

both!(a_report_is_reviewed_against_the_time_it_was_recorded);
