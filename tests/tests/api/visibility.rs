//! The leaks of "Wpg by construction" (issue 14), one regression test each: every read path asks
//! the access rules (`backend/src/access/`), and every Wpg value that leaves is in the audit log.

use serde_json::{Value, json};
use thor_tests::{Backend, TestApp, assert_problem, avg_report, both, report};
use uuid::Uuid;

use super::photos::{create_upload, derived, jpeg, photo_record, report_with_photo, upload};

async fn pull_all(app: &TestApp, t: &str) -> Value {
    let res = app
        .get(t, "/api/v1/sync/pull?last_pulled_at=0")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

async fn signed_briefings_are_per_team(b: Backend) {
    let app = TestApp::spawn(b).await;
    app.demo_accounts().await;
    let admin = app.login("beheerder", "desk").await;
    let lead_a = app.login("teamleider", "lead-a").await;
    let lead_b = app
        .user("lead.ijmuiden", "teamleider", "Team IJmuiden", true)
        .await
        .1;
    let today = thor::demo::today().to_string();
    let sign = |t: &str| {
        app.post(t, "/api/v1/briefing/signoff", &json!({ "date": today }))
            .send()
    };
    let res = sign(&lead_a).await.unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());

    // Team B does not get team A's frozen briefing, and signs its own.
    let path = format!("/api/v1/briefing?date={today}");
    let b_view = app.get_json(&lead_b, &path).await;
    assert!(b_view["signed"].is_null(), "{}", b_view["signed"]);
    let res = sign(&lead_b).await.unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    assert_eq!(
        app.get_json(&lead_b, &path).await["signed"]["by_name"],
        "lead.ijmuiden"
    );
    assert_eq!(
        app.get_json(&lead_a, &path).await["signed"]["by_name"],
        "teamleider"
    );
    // A second sign-off of one team is refused; the other team's is not in the way.
    assert_eq!(sign(&lead_a).await.unwrap().status(), 409);
    // The beheerder (no team) reads the briefing as built, not a team's frozen copy.
    assert!(app.get_json(&admin, &path).await["signed"].is_null());
    app.stop().await;
}

/// The officer and the (Wpg-authorised) lead edit a Wpg report's plate from the same base: a
/// conflict on a Wpg field.
async fn plate_conflict(app: &TestApp) -> Uuid {
    let a = app.login("handhaver", "phone-a").await;
    let b = app.login("teamleider", "phone-lead").await;
    let id = Uuid::new_v4();
    let res = app
        .post(&a, "/api/v1/violations", &report(id))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let mut pulls = Vec::new();
    for t in [&a, &b] {
        let body = pull_all(app, t).await;
        let row = thor_tests::pulled_rows(&body, "violations")
            .into_iter()
            .find(|r| r["id"] == id.to_string())
            .expect("both see the report");
        pulls.push((t.to_string(), body["timestamp"].as_i64().unwrap(), row));
    }
    for ((t, ts, row), plate) in pulls.into_iter().zip(["XX-111-X", "YY-222-Y"]) {
        let mut row = row;
        row["plate"] = json!(plate);
        let res = app
            .client
            .post(app.url(&format!("/api/v1/sync/push?last_pulled_at={ts}")))
            .bearer_auth(&t)
            .json(&json!({ "changes": { "violations": { "updated": [row] } } }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }
    id
}

async fn conflicts_show_values_as_their_field_allows(b: Backend) {
    let app = TestApp::spawn(b).await;
    app.demo_accounts().await;
    let admin = app.login("beheerder", "desk").await;
    let plain_lead = app
        .user("lead.zonder", "teamleider", thor::demo::TEAM, false)
        .await
        .1;
    let wpg_lead = app.login("teamleider", "lead").await;
    let id = plate_conflict(&app).await;
    let mine = |list: &Value| -> Value {
        list.as_array()
            .unwrap()
            .iter()
            .find(|c| c["record_id"] == id.to_string() && c["field"] == "plate")
            .cloned()
            .unwrap_or_else(|| panic!("the plate conflict is listed: {list}"))
    };
    for t in [&plain_lead, &admin] {
        let res = app.get(t, "/api/v1/conflicts").send().await.unwrap();
        assert_eq!(res.status(), 200);
        let text = res.text().await.unwrap();
        assert!(
            !text.contains("XX-111-X") && !text.contains("YY-222-Y"),
            "plates leak to a reader without the Wpg right: {text}"
        );
        let c = mine(&serde_json::from_str(&text).unwrap());
        assert_eq!(c["redacted"], true);
        assert!(c["client_value"].is_null() && c["applied_value"].is_null());
    }
    // The lead page's conflict table follows the same rule.
    let logged_before = app.count("audit_log WHERE action = 'read_conflicts'").await;
    let c = mine(&app.get_json(&wpg_lead, "/api/v1/conflicts").await);
    assert_eq!(c["redacted"], false);
    assert!(c["applied_value"].is_string());
    assert_eq!(
        app.count("audit_log WHERE action = 'read_conflicts'").await,
        logged_before + 1,
        "the Wpg read of the conflict is logged"
    );
    // Resolving answers with the values only for those who may see them.
    let res = app
        .post(
            &plain_lead,
            &format!("/api/v1/conflicts/{}/resolve", c["id"].as_str().unwrap()),
            &json!({ "resolution": "keep_applied" }),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let text = res.text().await.unwrap();
    assert!(
        !text.contains("XX-111-X") && !text.contains("YY-222-Y"),
        "{text}"
    );
    app.stop().await;
}

async fn photo_bytes_follow_their_report(b: Backend) {
    let app = TestApp::spawn(b).await;
    app.demo_accounts().await;
    let admin = app.login("beheerder", "desk").await;
    let boa = app.login("handhaver", "phone-1").await;
    let plain_lead = app
        .user("lead.zonder", "teamleider", thor::demo::TEAM, false)
        .await
        .1;
    let bytes = jpeg(640, 480, 7);
    // `report` is a fine: a Wpg report.
    let (_, pid) = report_with_photo(&app, &boa, &bytes, "image/jpeg").await;
    assert_eq!(upload(&app, &boa, pid, &bytes).await.status(), 204);
    assert_eq!(derived(&app, &boa, pid).await["derivative_state"], "done");
    for t in [&plain_lead, &admin] {
        for what in ["original", "thumbnail", "preview"] {
            let res = app
                .get(t, &format!("/api/v1/photos/{pid}/{what}"))
                .send()
                .await
                .unwrap();
            assert_problem(res, 403, None).await;
        }
    }
    let before = app.count("audit_log WHERE action = 'read_photo'").await;
    let res = app
        .get(&boa, &format!("/api/v1/photos/{pid}/thumbnail"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        app.count("audit_log WHERE action = 'read_photo'").await,
        before + 1
    );
    app.stop().await;
}

async fn a_known_hash_is_not_a_key_to_bytes(b: Backend) {
    let app = TestApp::spawn(b).await;
    app.demo_accounts().await;
    let boa = app.login("handhaver", "phone-1").await;
    let other = app
        .user("boa.ijmuiden", "handhaver", "Team IJmuiden", false)
        .await
        .1;
    let bytes = jpeg(320, 240, 3);
    let (_, pid) = report_with_photo(&app, &boa, &bytes, "image/jpeg").await;
    assert_eq!(upload(&app, &boa, pid, &bytes).await.status(), 204);

    // Team B knows the hash and size, not the bytes.
    let rid = Uuid::new_v4();
    let res = app
        .post(&other, "/api/v1/violations", &report(rid))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let stolen = Uuid::new_v4();
    let res = app
        .post(
            &other,
            "/api/v1/photos",
            &photo_record(stolen, rid, &bytes, "image/jpeg"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    assert_eq!(
        res.json::<Value>().await.unwrap()["upload_state"],
        "pending"
    );
    let res = create_upload(&app, &other, stolen, bytes.len()).await;
    assert_eq!(res.status(), 201);
    assert_eq!(
        res.headers()["upload-offset"],
        "0",
        "nothing is already there"
    );
    let res = app
        .get(&other, &format!("/api/v1/photos/{stolen}/original"))
        .send()
        .await
        .unwrap();
    assert_problem(res, 409, None).await;
    app.stop().await;
}

async fn the_pull_logs_every_wpg_report_it_sends(b: Backend) {
    let app = TestApp::spawn(b).await;
    app.demo_accounts().await;
    let boa = app.login("handhaver", "phone-1").await;
    let colleague = app
        .user("boa.collega", "handhaver", thor::demo::TEAM, false)
        .await
        .1;
    let wpg = Uuid::new_v4();
    let res = app
        .post(&boa, "/api/v1/violations", &report(wpg))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let body = pull_all(&app, &colleague).await;
    assert!(
        thor_tests::pulled_rows(&body, "violations")
            .iter()
            .any(|r| r["id"] == wpg.to_string() && r["plate"].is_string())
    );
    assert_eq!(
        app.count(&format!(
            "audit_log WHERE action = 'sync_pull' AND record_type = 'violations' \
             AND CAST(detail AS TEXT) LIKE '%{wpg}%'"
        ))
        .await,
        1,
        "the pull that carried the plate is in the audit log"
    );
    app.stop().await;
}

/// A lead without the Wpg flag gets of a report by sync what REST shows them: the observation
/// text of an AVG report, nothing Wpg of a Wpg report; and what the phone holds it writes back:
/// an edit of the AVG text lands, a push of Wpg fields onto the Wpg report is ignored.
async fn sync_shows_a_report_as_rest_does(b: Backend) {
    let app = TestApp::spawn(b).await;
    app.demo_accounts().await;
    let boa = app.login("handhaver", "phone-1").await;
    let lead = app
        .user("lead.zonderwpg", "teamleider", thor::demo::TEAM, false)
        .await
        .1;
    let (wpg, avg) = (Uuid::new_v4(), Uuid::new_v4());
    for body in [report(wpg), avg_report(avg, "matras naast de container")] {
        let res = app
            .post(&boa, "/api/v1/violations", &body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
    }
    let pulled = pull_all(&app, &lead).await;
    let rows = thor_tests::pulled_rows(&pulled, "violations");
    let row = |id: Uuid| {
        rows.iter()
            .find(|r| r["id"] == id.to_string())
            .cloned()
            .expect("the lead pulls the report")
    };
    for id in [wpg, avg] {
        let rest = app
            .get_json(&lead, &format!("/api/v1/violations/{id}"))
            .await;
        let synced = row(id);
        for field in ["description", "plate"] {
            assert_eq!(
                synced[field], rest[field],
                "{field} of {id}: sync and REST differ"
            );
        }
    }
    assert_eq!(row(avg)["description"], "matras naast de container");
    assert!(row(wpg)["description"].is_null() && row(wpg)["plate"].is_null());

    let mut avg_row = row(avg);
    avg_row["description"] = json!("matras en twee zakken");
    let mut wpg_row = row(wpg);
    wpg_row["description"] = json!("overschreven");
    wpg_row["plate"] = json!("99-ZZZ-9");
    let res = app
        .client
        .post(app.url("/api/v1/sync/push?last_pulled_at=0"))
        .bearer_auth(&lead)
        .json(&json!({ "changes": { "violations": { "updated": [avg_row, wpg_row] } } }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let answer: Value = res.json().await.unwrap();
    assert_eq!(answer["conflicts"], json!([]), "{answer}");
    let a = app
        .get_json(&boa, &format!("/api/v1/violations/{avg}"))
        .await;
    assert_eq!(a["description"], "matras en twee zakken");
    let w = app
        .get_json(&boa, &format!("/api/v1/violations/{wpg}"))
        .await;
    assert_eq!(w["description"], "Geparkeerd op de stoep");
    assert_eq!(
        w["plate"], "12ABC3",
        "the plate as stored, not the pushed one"
    );
    app.stop().await;
}

both!(
    sync_shows_a_report_as_rest_does,
    signed_briefings_are_per_team,
    conflicts_show_values_as_their_field_allows,
    photo_bytes_follow_their_report,
    a_known_hash_is_not_a_key_to_bytes,
    the_pull_logs_every_wpg_report_it_sends,
);
