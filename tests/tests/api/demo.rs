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
    assert_eq!((loaded.created, loaded.already_there), (0, 150));
    assert_eq!(app.last_seq().await, seq);
    app.stop().await;
}

both!(the_demo_lead_lists_today_with_wijk_and_buurt_names);
