use serde_json::{Value, json};
use thor_tests::{Backend, TestApp, assert_problem, both, report};
use uuid::Uuid;

async fn a_report_is_created_once_and_read_back(b: Backend) {
    let app = TestApp::spawn(b).await;
    app.demo_accounts().await;
    let t = app.login("handhaver", "phone-1").await;
    let id = Uuid::new_v4();
    let body = report(id);
    let res = app
        .post(&t, "/api/v1/violations", &body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let created: Value = res.json().await.unwrap();
    assert_eq!(created["id"], id.to_string());
    assert_eq!(created["wijk"]["code"], "WK045301");
    assert_eq!(created["buurt"]["name"], "Stadhuisbuurt");
    assert_eq!(created["plate"], "12ABC3");
    assert_eq!(created["track"], "wahv");
    assert_eq!(created["status"], "concept");
    assert_eq!(created["privacy_regime"], "wpg");
    assert!(created["server_rev"].as_i64().unwrap() > 0);

    // The same id and content again: the existing report, no duplicate, no new revision.
    let seq = app.last_seq().await;
    let res = app
        .post(&t, "/api/v1/violations", &body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let again: Value = res.json().await.unwrap();
    assert_eq!(again, created);
    assert_eq!(app.last_seq().await, seq);
    assert_eq!(app.count("violation").await, 1);

    // The same id with other content: 409 naming the existing report.
    let mut other = body.clone();
    other["description"] = json!("iets anders");
    let problem = assert_problem(
        app.post(&t, "/api/v1/violations", &other)
            .send()
            .await
            .unwrap(),
        409,
        None,
    )
    .await;
    assert_eq!(problem["existing"], format!("/api/v1/violations/{id}"));
    assert_eq!(app.count("violation").await, 1);

    let got: Value = app
        .get(&t, &format!("/api/v1/violations/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got, created);
    assert_problem(
        app.get(&t, &format!("/api/v1/violations/{}", Uuid::new_v4()))
            .send()
            .await
            .unwrap(),
        404,
        None,
    )
    .await;
    assert_problem(
        app.get(&t, "/api/v1/violations/not-a-uuid")
            .send()
            .await
            .unwrap(),
        400,
        None,
    )
    .await;
    // The write and the read are in the audit log.
    assert_eq!(
        app.count(&format!(
            "audit_log WHERE action = 'create' AND record_id = '{id}'"
        ))
        .await,
        1
    );
    assert!(
        app.count(&format!(
            "audit_log WHERE action = 'read' AND record_id = '{id}'"
        ))
        .await
            >= 1
    );
    app.stop().await;
}

async fn bad_reports_are_refused_and_nothing_is_written(b: Backend) {
    let app = TestApp::spawn(b).await;
    app.demo_accounts().await;
    let t = app.login("handhaver", "phone-1").await;
    let before = (
        app.count("violation").await,
        app.count("audit_log").await,
        app.count("sync_change").await,
        app.last_seq().await,
    );

    let mut unknown_feitcode = report(Uuid::new_v4());
    unknown_feitcode["feitcode"] = json!("R999z");
    assert_problem(
        app.post(&t, "/api/v1/violations", &unknown_feitcode)
            .send()
            .await
            .unwrap(),
        422,
        Some("feitcode"),
    )
    .await;

    let mut far_north = report(Uuid::new_v4());
    far_north["location"]["lat"] = json!(200.0);
    assert_problem(
        app.post(&t, "/api/v1/violations", &far_north)
            .send()
            .await
            .unwrap(),
        422,
        Some("location.lat"),
    )
    .await;

    let mut no_category = report(Uuid::new_v4());
    no_category.as_object_mut().unwrap().remove("category");
    assert_problem(
        app.post(&t, "/api/v1/violations", &no_category)
            .send()
            .await
            .unwrap(),
        422,
        Some("category"),
    )
    .await;

    let mut wrong_category = report(Uuid::new_v4());
    wrong_category["category"] = json!("graffiti");
    assert_problem(
        app.post(&t, "/api/v1/violations", &wrong_category)
            .send()
            .await
            .unwrap(),
        422,
        Some("category"),
    )
    .await;

    let mut approved = report(Uuid::new_v4());
    approved["status"] = json!("approved");
    assert_problem(
        app.post(&t, "/api/v1/violations", &approved)
            .send()
            .await
            .unwrap(),
        422,
        Some("status"),
    )
    .await;

    let mut inaccurate = report(Uuid::new_v4());
    inaccurate["location"]["accuracy_m"] = json!(2000.0);
    assert_problem(
        app.post(&t, "/api/v1/violations", &inaccurate)
            .send()
            .await
            .unwrap(),
        422,
        Some("location.accuracy_m"),
    )
    .await;

    let mut no_plate = report(Uuid::new_v4());
    no_plate.as_object_mut().unwrap().remove("plate");
    assert_problem(
        app.post(&t, "/api/v1/violations", &no_plate)
            .send()
            .await
            .unwrap(),
        422,
        Some("plate"),
    )
    .await;

    let mut dog_code_for_parking = report(Uuid::new_v4());
    dog_code_for_parking["feitcode"] = json!("F145a");
    assert_problem(
        app.post(&t, "/api/v1/violations", &dog_code_for_parking)
            .send()
            .await
            .unwrap(),
        422,
        Some("feitcode"),
    )
    .await;

    // Ten megabytes: refused from the declared length, before the body is read. (A raw socket,
    // because a client still writing a body the server has refused may see a broken pipe.)
    let (status, head, body) = thor_tests::raw_request(
        app.addr,
        &format!(
            "POST /api/v1/violations HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {t}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{{\"description\": \"xxxx",
            10 * 1024 * 1024
        ),
    )
    .await;
    assert_eq!(status, 413, "{head}");
    assert!(
        head.to_lowercase()
            .contains("content-type: application/problem+json"),
        "{head}"
    );
    assert!(body.contains("urn:thor:problem:too-large"), "{body}");

    let res = app
        .client
        .post(app.url("/api/v1/violations"))
        .bearer_auth(&t)
        .header("content-type", "application/json")
        .body("{\"id\": ")
        .send()
        .await
        .unwrap();
    assert_problem(res, 400, None).await;
    let res = app
        .client
        .post(app.url("/api/v1/violations"))
        .bearer_auth(&t)
        .body("category=afval")
        .send()
        .await
        .unwrap();
    assert_problem(res, 415, None).await;

    let after = (
        app.count("violation").await,
        app.count("audit_log").await,
        app.count("sync_change").await,
        app.last_seq().await,
    );
    assert_eq!(before, after, "nothing is written for refused input");
    app.stop().await;
}

async fn the_review_workflow_belongs_to_the_teamleider(b: Backend) {
    let app = TestApp::spawn(b).await;
    app.demo_accounts().await;
    let boa = app.login("handhaver", "phone-1").await;
    let lead = app.login("teamleider", "laptop").await;
    let id = Uuid::new_v4();
    assert_eq!(
        app.post(&boa, "/api/v1/violations", &report(id))
            .send()
            .await
            .unwrap()
            .status(),
        201
    );
    let path = format!("/api/v1/violations/{id}");

    // A handhaver cannot approve, not even by jumping from concept.
    assert_problem(
        app.patch(&boa, &path, &json!({"status": "approved"}))
            .send()
            .await
            .unwrap(),
        403,
        None,
    )
    .await;
    // Time and place are immutable.
    let res = app
        .patch(&boa, &path, &json!({"observed_at": "2026-01-01T10:00:00Z"}))
        .send()
        .await
        .unwrap();
    assert_problem(res, 422, Some("observed_at")).await;
    let res = app
        .patch(
            &boa,
            &path,
            &json!({"location": {"lat": 52.45, "lon": 4.6, "accuracy_m": 5, "source": "manual"}}),
        )
        .send()
        .await
        .unwrap();
    assert_problem(res, 422, Some("location")).await;
    // A lead cannot approve a concept: it must be submitted first.
    assert_problem(
        app.patch(&lead, &path, &json!({"status": "approved"}))
            .send()
            .await
            .unwrap(),
        422,
        Some("status"),
    )
    .await;

    let rev0 = app.last_seq().await;
    let res = app
        .patch(
            &boa,
            &path,
            &json!({"status": "submitted", "description": "Op de stoep voor nr. 12"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["status"], "submitted");
    assert_eq!(v["server_rev"].as_i64().unwrap(), rev0 + 1);
    // An empty change is a no-op: no new revision.
    let v2: Value = app
        .patch(
            &boa,
            &path,
            &json!({"description": "Op de stoep voor nr. 12"}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v2["server_rev"], v["server_rev"]);

    assert_problem(
        app.patch(&boa, &path, &json!({"status": "approved"}))
            .send()
            .await
            .unwrap(),
        403,
        None,
    )
    .await;
    assert_problem(
        app.patch(&lead, &path, &json!({"status": "rejected"}))
            .send()
            .await
            .unwrap(),
        422,
        Some("review_note"),
    )
    .await;
    let res = app
        .patch(&lead, &path, &json!({"status": "approved"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["status"], "approved");
    assert!(v["reviewed_by"].is_string() && v["reviewed_at"].is_string());
    // Final after review.
    assert_problem(
        app.patch(&boa, &path, &json!({"description": "later"}))
            .send()
            .await
            .unwrap(),
        409,
        None,
    )
    .await;
    assert_eq!(
        app.count(&format!(
            "audit_log WHERE action = 'review' AND record_id = '{id}'"
        ))
        .await,
        1
    );

    // Taking the review back ("Ongedaan maken"): only the reviewer, only the status, within
    // the window (the window itself: `rules::check_undo`'s unit test).
    let undo = json!({"status": "submitted"});
    assert_problem(
        app.patch(&boa, &path, &undo).send().await.unwrap(),
        409,
        None,
    )
    .await;
    assert_problem(
        app.patch(
            &lead,
            &path,
            &json!({"status": "submitted", "description": "en meteen iets anders"}),
        )
        .send()
        .await
        .unwrap(),
        422,
        Some("status"),
    )
    .await;
    let res = app.patch(&lead, &path, &undo).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["status"], "submitted");
    assert!(v["reviewed_by"].is_null() && v["reviewed_at"].is_null());
    assert_eq!(
        v["description"], "Op de stoep voor nr. 12",
        "nothing else changed"
    );
    assert_eq!(
        app.count(&format!(
            "audit_log WHERE action = 'review_undone' AND record_id = '{id}'"
        ))
        .await,
        1
    );
    // Undone, it waits again: reviewed anew, a rejection this time.
    let res = app
        .patch(
            &lead,
            &path,
            &json!({"status": "rejected", "review_note": "foto ontbreekt"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    app.stop().await;
}

async fn wpg_fields_are_redacted_for_the_unauthorised(b: Backend) {
    let app = TestApp::spawn(b).await;
    app.demo_accounts().await;
    let boa = app.login("handhaver", "phone-1").await;
    let admin = app.login("beheerder", "desk").await;
    let id = Uuid::new_v4();
    app.post(&boa, "/api/v1/violations", &report(id))
        .send()
        .await
        .unwrap();
    let v: Value = app
        .get(&admin, &format!("/api/v1/violations/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["redacted"], true);
    assert!(v["plate"].is_null() && v["description"].is_null());
    assert_eq!(v["category"], "parkeren");
    // Redacted reads are not Wpg reads; unredacted ones are logged.
    assert_eq!(
        app.count(&format!(
            "audit_log WHERE action = 'read' AND record_id = '{id}'"
        ))
        .await,
        0
    );
    let v: Value = app
        .get(&boa, &format!("/api/v1/violations/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["plate"], "12ABC3");
    assert_eq!(
        app.count(&format!(
            "audit_log WHERE action = 'read' AND record_id = '{id}'"
        ))
        .await,
        1
    );
    // The audit log cannot be rewritten.
    let backend = app.state.db.backend();
    let err = sea_orm::ConnectionTrait::execute_raw(
        &app.state.db.write,
        sea_orm::Statement::from_string(backend, "UPDATE audit_log SET action = 'x'".to_string()),
    )
    .await;
    assert!(err.is_err(), "audit_log must refuse updates");
    let err = sea_orm::ConnectionTrait::execute_raw(
        &app.state.db.write,
        sea_orm::Statement::from_string(backend, "DELETE FROM audit_log".to_string()),
    )
    .await;
    assert!(err.is_err(), "audit_log must refuse deletes");
    app.stop().await;
}

async fn lists_page_and_filter(b: Backend) {
    let app = TestApp::spawn(b).await;
    let scenario = app.load_demo().await;
    let t = app.login("teamleider", "laptop").await;
    let today = scenario.date;
    let mut seen = std::collections::HashSet::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut path = format!("/api/v1/violations?date={today}&limit=40");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let page: Value = app
            .get(&t, &path)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let items = page["items"].as_array().unwrap();
        let mut last: Option<String> = None;
        for v in items {
            assert!(
                seen.insert(v["id"].as_str().unwrap().to_string()),
                "duplicate across pages"
            );
            let at = v["observed_at"].as_str().unwrap().to_string();
            if let Some(l) = &last {
                assert!(at <= *l, "newest first");
            }
            last = Some(at);
        }
        pages += 1;
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 150);
    assert_eq!(pages, 4);

    let expected_afval = scenario
        .violations
        .iter()
        .filter(|v| v.report.category == thor::violations::Category::Afval)
        .count();
    let page: Value = app
        .get(
            &t,
            &format!("/api/v1/violations?date={today}&category=afval&limit=500"),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), expected_afval);

    let page: Value = app
        .get(
            &t,
            &format!("/api/v1/violations?date={today}&wijk=WK045301&limit=500"),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let items = page["items"].as_array().unwrap();
    assert!(!items.is_empty(), "the IJmuiden-Noord hotspot has reports");
    assert!(items.iter().all(|v| v["wijk"]["code"] == "WK045301"));

    let page: Value = app
        .get(
            &t,
            &format!("/api/v1/violations?date={today}&status=approved&limit=500"),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let approved = scenario
        .violations
        .iter()
        .filter(|v| matches!(v.review, Some((thor::violations::Status::Approved, _))))
        .count();
    assert_eq!(page["items"].as_array().unwrap().len(), approved);

    let me: Value = app
        .get(&t, "/api/v1/users")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let boa_id = me
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "handhaver")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let page: Value = app
        .get(
            &t,
            &format!("/api/v1/violations?date={today}&officer={boa_id}&limit=500"),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mine = page["items"].as_array().unwrap();
    assert!(!mine.is_empty());
    assert!(mine.iter().all(|v| {
        v["officer_ids"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o == &json!(boa_id))
    }));

    assert_problem(
        app.get(&t, "/api/v1/violations?limit=0")
            .send()
            .await
            .unwrap(),
        422,
        Some("limit"),
    )
    .await;
    assert_problem(
        app.get(&t, "/api/v1/violations?date=gisteren")
            .send()
            .await
            .unwrap(),
        422,
        Some("date"),
    )
    .await;
    assert_problem(
        app.get(&t, "/api/v1/violations?wijk=WK999999")
            .send()
            .await
            .unwrap(),
        422,
        Some("wijk"),
    )
    .await;
    assert_problem(
        app.get(&t, "/api/v1/violations?cursor=zzz")
            .send()
            .await
            .unwrap(),
        422,
        Some("cursor"),
    )
    .await;
    app.stop().await;
}

both!(
    a_report_is_created_once_and_read_back,
    bad_reports_are_refused_and_nothing_is_written,
    the_review_workflow_belongs_to_the_teamleider,
    wpg_fields_are_redacted_for_the_unauthorised,
    lists_page_and_filter,
);
