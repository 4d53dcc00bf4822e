//! The daily briefing: its counts checked against the records, redaction, sign-off.

use std::collections::HashMap;

use chrono::Timelike;
use chrono_tz::Europe::Amsterdam;
use serde_json::{Value, json};
use thor_tests::{Backend, TestApp, assert_problem, both};

async fn get(app: &TestApp, t: &str, path: &str) -> Value {
    let res = app.get(t, path).send().await.unwrap();
    assert_eq!(res.status(), 200, "{path}");
    res.json().await.unwrap()
}

async fn the_demo_briefing_matches_the_records(b: Backend) {
    let app = TestApp::spawn(b).await;
    app.load_demo().await;
    let lead = app.login("teamleider", "pc-lead").await;
    let hh = app.login("handhaver", "phone-hh").await;
    let today = thor::demo::today();

    // Independently: the day's reports as the list endpoint gives them.
    let page = get(
        &app,
        &lead,
        &format!("/api/v1/violations?date={today}&limit=500"),
    )
    .await;
    let items = page["items"].as_array().unwrap();
    let mut per_cat: HashMap<String, usize> = HashMap::new();
    let mut per_wijk: HashMap<String, usize> = HashMap::new();
    for v in items {
        *per_cat
            .entry(v["category"].as_str().unwrap().into())
            .or_default() += 1;
        *per_wijk
            .entry(v["wijk"]["code"].as_str().unwrap_or("buiten Velsen").into())
            .or_default() += 1;
    }
    let count = |f: &dyn Fn(&Value) -> bool| items.iter().filter(|v| f(v)).count();

    let b = get(&app, &lead, &format!("/api/v1/briefing?date={today}")).await;
    let v = &b["violations"];
    assert_eq!(v["total"], items.len());
    assert_eq!(v["warnings"], count(&|v| v["outcome"] == "warning"));
    assert_eq!(v["fines"], count(&|v| v["outcome"] == "fine"));
    for c in v["by_category"].as_array().unwrap() {
        assert_eq!(c["count"], per_cat[c["key"].as_str().unwrap()], "{c}");
        assert_eq!(c["daily"].as_array().unwrap().len(), 29);
    }
    let wijk_sum: u64 = v["by_wijk"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["count"].as_u64().unwrap())
        .sum();
    assert_eq!(wijk_sum as usize, items.len());
    for w in v["by_wijk"].as_array().unwrap() {
        assert_eq!(w["count"], per_wijk[w["key"].as_str().unwrap()]);
        assert!(w["label"].as_str().unwrap().starts_with("Wijk"), "{w}");
    }
    assert_eq!(
        b["follow_ups"]["awaiting_review"],
        count(&|v| v["status"] == "submitted")
    );
    // Rounds: three planned and walked, one planned for tonight.
    let r = &b["rounds"];
    assert_eq!(
        (
            r["planned"].as_u64(),
            r["done"].as_u64(),
            r["not_started"].as_u64()
        ),
        (Some(4), Some(3), Some(1))
    );
    assert!(r["distance_m"].as_f64().unwrap() > 5000.0);
    assert!(!r["per_wijk"].as_array().unwrap().is_empty());
    assert!(
        !b["hotspots"].as_array().unwrap().is_empty(),
        "the demo day has hotspots"
    );
    assert!(b["hotspots"][0]["buurt_name"].is_string());
    assert_eq!(
        b["hotspots"][0]["earlier_reports"], 0,
        "the demo day has no history here"
    );
    assert_eq!(b["incidents"].as_array().unwrap().len(), 1);
    // The Wpg-authorised lead sees the youth sections, with the named member of a group seen.
    assert_eq!(b["youth"]["sightings"], 6);
    assert_eq!(b["youth_persons"].as_array().unwrap().len(), 1);
    assert_eq!(b["redacted"], json!([]));

    // A handhaver without Wpg authorisation: the same briefing without the youth sections.
    let hb = get(&app, &hh, &format!("/api/v1/briefing?date={today}")).await;
    assert!(hb["youth"].is_null());
    assert!(hb["youth_persons"].is_null());
    assert_eq!(hb["redacted"], json!(["youth", "youth_persons"]));
    assert_eq!(hb["violations"]["total"], items.len());

    // One shift: the late shift's reports only.
    let late = get(
        &app,
        &lead,
        &format!("/api/v1/briefing?date={today}&shift=late"),
    )
    .await;
    let in_late = count(&|v| {
        let t: chrono::DateTime<chrono::Utc> = v["observed_at"].as_str().unwrap().parse().unwrap();
        (15..23).contains(&t.with_timezone(&Amsterdam).hour())
    });
    assert_eq!(late["violations"]["total"], in_late);
}

async fn a_signed_briefing_is_frozen_with_an_addendum(b: Backend) {
    let app = TestApp::spawn(b).await;
    app.load_demo().await;
    let lead = app.login("teamleider", "pc-lead").await;
    let hh = app.login("handhaver", "phone-hh").await;
    let today = thor::demo::today();
    // An attention point for the next shift, then the sign-off.
    let res = app
        .post(&lead, "/api/v1/briefing/notes", &json!({
            "id": uuid::Uuid::new_v4(), "date": today.to_string(), "text": "Extra aandacht Stadhuisplein na 22:00"
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    assert_problem(
        app.post(&hh, "/api/v1/briefing/signoff", &json!({ "date": today }))
            .send()
            .await
            .unwrap(),
        403,
        None,
    )
    .await;
    let res = app
        .post(&lead, "/api/v1/briefing/signoff", &json!({ "date": today }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let signed: Value = res.json().await.unwrap();
    assert_eq!(signed["signed"]["by_name"], "teamleider");
    assert_eq!(
        signed["attention_points"][0]["text"],
        "Extra aandacht Stadhuisplein na 22:00"
    );
    assert!(signed["addendum"].is_null());
    assert_problem(
        app.post(&lead, "/api/v1/briefing/signoff", &json!({ "date": today }))
            .send()
            .await
            .unwrap(),
        409,
        None,
    )
    .await;
    // The signed briefing reaches the phones through sync, to read offline; the youth
    // sections only to those allowed.
    let pulled: Value = get(&app, &hh, "/api/v1/sync/pull?last_pulled_at=0").await;
    let docs = thor_tests::pulled_rows(&pulled, "briefings");
    assert_eq!(docs.len(), 1);
    let content: Value = serde_json::from_str(docs[0]["content"].as_str().unwrap()).unwrap();
    assert_eq!(
        content["violations"]["total"],
        signed["violations"]["total"]
    );
    assert!(content["youth"].is_null());
    assert!(
        docs[0]["content_youth"].is_null(),
        "no youth sections on a handhaver's phone"
    );
    let jb = app.login("jeugdboa", "phone-jb").await;
    let pulled: Value = get(&app, &jb, "/api/v1/sync/pull?last_pulled_at=0").await;
    let youth: Value = serde_json::from_str(
        thor_tests::pulled_rows(&pulled, "briefings")[0]["content_youth"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(youth["youth"]["sightings"], 6);

    // A report arrives after the sign-off: the briefing stays as signed, with an addendum.
    let total = signed["violations"]["total"].as_u64().unwrap();
    let res = app
        .post(
            &hh,
            "/api/v1/violations",
            &thor_tests::report(uuid::Uuid::new_v4()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let after = get(&app, &lead, &format!("/api/v1/briefing?date={today}")).await;
    assert_eq!(after["violations"]["total"], total);
    let lines = after["addendum"]["changes"].as_array().unwrap();
    assert!(
        lines.iter().any(|l| l
            .as_str()
            .unwrap()
            .starts_with(&format!("overtredingen: {total} → {}", total + 1))),
        "{lines:?}"
    );
}

/// A hotspot says how often its place had reports in the year before: a repeat location.
async fn a_hotspot_counts_the_reports_at_its_place_the_year_before(b: Backend) {
    let app = TestApp::spawn(b).await;
    app.load_demo().await;
    let lead = app.login("teamleider", "pc-lead").await;
    let hh = app.login("handhaver", "phone-hh").await;
    let today = thor::demo::today();
    let b = get(&app, &lead, &format!("/api/v1/briefing?date={today}")).await;
    let h = &b["hotspots"][0];
    let (lat, lon) = (h["lat"].as_f64().unwrap(), h["lon"].as_f64().unwrap());
    // Two reports at the spot on earlier days, one far away.
    for (days, dlat) in [(3, 0.0), (20, 0.0001), (5, 0.02)] {
        let mut r = thor_tests::report(uuid::Uuid::new_v4());
        let at = chrono::Utc::now() - chrono::Duration::days(days);
        r["observed_at"] = json!(at.to_rfc3339());
        r["location"] = json!({ "lat": lat + dlat, "lon": lon, "accuracy_m": 5, "source": "gps" });
        let res = app
            .post(&hh, "/api/v1/violations", &r)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    }
    let b = get(&app, &lead, &format!("/api/v1/briefing?date={today}")).await;
    let again = b["hotspots"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["lat"] == h["lat"] && x["lon"] == h["lon"])
        .expect("the same hotspot");
    assert_eq!(again["earlier_reports"], 2, "{again}");
}

both!(a_hotspot_counts_the_reports_at_its_place_the_year_before);

both!(
    the_demo_briefing_matches_the_records,
    a_signed_briefing_is_frozen_with_an_addendum
);

async fn exports_open_in_excel_and_qgis(b: Backend) {
    let app = TestApp::spawn(b).await;
    let scenario = app.load_demo().await;
    // The demo's plates: every report with a plate is Wpg data.
    let plates: Vec<String> = scenario
        .violations
        .iter()
        .filter_map(|v| v.report.plate.clone())
        .collect();
    assert!(
        !plates.is_empty(),
        "the demo day has parking reports with plates"
    );
    let lead = app.login("teamleider", "pc-lead").await;
    let admin = app.login("beheerder", "pc-admin").await;
    let today = thor::demo::today();

    let res = app
        .get(
            &lead,
            &format!(
                "/api/v1/exports/violations.csv?from={today}{}",
                crate::PROVISION
            ),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains(".csv")
    );
    let bytes = res.bytes().await.unwrap();
    assert_eq!(
        &bytes[..3],
        b"\xEF\xBB\xBF",
        "a byte-order mark, so Excel reads UTF-8"
    );
    let text = std::str::from_utf8(&bytes[3..]).unwrap();
    assert!(
        plates.iter().all(|pl| text.contains(pl.as_str())),
        "the team lead's export carries the plates"
    );
    let lines: Vec<&str> = text.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert!(lines[0].starts_with("id;datum;tijd;categorie;"));
    assert_eq!(lines.len(), 151, "a header and the day's 150 reports");
    let first: Vec<&str> = lines[1].split(';').collect();
    // Values in Dutch, from the one label table (the CSV is read by people).
    let labels_of = |group: &str| -> Vec<&str> {
        thor::labels::LABELS
            .iter()
            .find(|(g, _)| *g == group)
            .map(|(_, vs)| vs.iter().map(|(_, l)| *l).collect())
            .unwrap()
    };
    for l in &lines[1..] {
        let cells: Vec<&str> = l.split(';').collect();
        assert!(
            labels_of("category").contains(&cells[3]),
            "categorie in Dutch: {l}"
        );
        assert!(
            labels_of("outcome").contains(&cells[5]),
            "afdoening in Dutch: {l}"
        );
        assert!(
            labels_of("report_status").contains(&cells[6]),
            "status in Dutch: {l}"
        );
    }
    assert!(
        first[9].starts_with("52,"),
        "decimal comma for Dutch Excel: {}",
        first[9]
    );

    // Without Wpg access the Wpg fields are withheld.
    let text = app
        .get(
            &admin,
            &format!("/api/v1/exports/violations.csv?from={today}"),
        )
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("[afgeschermd]"));
    assert!(
        plates.iter().all(|pl| !text.contains(pl.as_str())),
        "no plate in an export without Wpg access"
    );

    let g: Value = app
        .get(
            &lead,
            &format!(
                "/api/v1/exports/violations.geojson?from={today}&to={today}{}",
                crate::PROVISION
            ),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(g["type"], "FeatureCollection");
    assert_eq!(g["features"].as_array().unwrap().len(), 150);
    assert_eq!(g["features"][0]["geometry"]["type"], "Point");
    let t: Value = app
        .get(
            &lead,
            &format!("/api/v1/exports/tracks.geojson?from={today}"),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let lines: Vec<&Value> = t["features"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["properties"]["fixes"].as_u64().unwrap() > 100)
        .collect();
    assert_eq!(lines.len(), 3, "three rounds walked today");
    assert_eq!(lines[0]["geometry"]["type"], "LineString");

    assert_problem(
        app.get(
            &lead,
            "/api/v1/exports/violations.csv?from=2026-01-10&to=2026-01-01",
        )
        .send()
        .await
        .unwrap(),
        422,
        Some("to"),
    )
    .await;
}

both!(exports_open_in_excel_and_qgis);

/// The lead's page shows an open sync conflict and settles it.
async fn the_page_settles_a_sync_conflict(b: Backend) {
    let app = TestApp::spawn(b).await;
    app.demo_accounts().await;
    let a = app.login("handhaver", "phone-a").await;
    let bb = app.login("handhaver", "phone-b").await;
    // A report both phones edit offline: the description changes on both sides.
    let id = uuid::Uuid::new_v4();
    assert_eq!(
        app.post(&a, "/api/v1/violations", &thor_tests::report(id))
            .send()
            .await
            .unwrap()
            .status(),
        201
    );
    let pull: Value = get(&app, &a, "/api/v1/sync/pull?last_pulled_at=0").await;
    let row = thor_tests::pulled_rows(&pull, "violations")[0].clone();
    let cursor = pull["timestamp"].as_i64().unwrap();
    for (t, text) in [(&a, "Auto op de stoep"), (&bb, "Auto half op de stoep")] {
        let mut r = row.clone();
        r["description"] = json!(text);
        let res = app
            .post(t, &format!("/api/v1/sync/push?last_pulled_at={cursor}"), &json!({ "changes": { "violations": { "created": [], "updated": [r], "deleted": [] } } }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }
    let lead = app.login("teamleider", "pc-lead").await;
    let open: Value = get(&app, &lead, "/api/v1/conflicts?status=open").await;
    let cid = open.as_array().unwrap()[0]["id"]
        .as_str()
        .unwrap()
        .to_string();

    // The page, with the session cookie of a form login.
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let res = client
        .post(app.url("/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("username=teamleider&password=demo")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let cookie = res.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let page = client
        .get(app.url("/briefing"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(&format!("conflict-{cid}")),
        "the open conflict is on the page"
    );
    // The page's forms carry the session's CSRF token (see api/holes.rs).
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_string();
    // A post from another site is refused; from the page itself it settles the conflict.
    let res = client
        .post(app.url(&format!("/briefing/conflicts/{cid}")))
        .header("cookie", &cookie)
        .header("origin", "https://evil.example")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("resolution=keep_applied&csrf={csrf}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let res = client
        .post(app.url(&format!("/briefing/conflicts/{cid}")))
        .header("cookie", &cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "resolution=keep_applied&back=/briefing&csrf={csrf}"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let open: Value = get(&app, &lead, "/api/v1/conflicts?status=open").await;
    assert!(open.as_array().unwrap().is_empty());
    // Without a session the page sends the browser to the login form.
    let res = client.get(app.url("/briefing")).send().await.unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/login");
}

both!(the_page_settles_a_sync_conflict);
