//! Issue 15 item 3: every rejection the framework makes is problem+json with its status, and
//! JSON is read strictly (no trailing data, objects where objects are declared, one
//! Content-Type rule on every JSON route, the sync push included); and item 5, plausibility:
//! NUL refused per field, reports outside Velsen kept with a flag.

use serde_json::json;
use thor_tests::{Backend, TestApp, assert_problem, both, raw_request, report};

async fn the_framework_answers_problems(b: Backend) {
    let app = TestApp::spawn(b).await;
    app.demo_accounts().await;
    let t = app.login("handhaver", "phone-1").await;

    // 405 keeps its Allow header.
    let res = app
        .client
        .delete(app.url("/api/v1/photos/limits"))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert!(res.headers().contains_key("allow"), "405 keeps Allow");
    assert_problem(res, 405, None).await;

    // A path parameter that is not a UUID.
    let res = app
        .get(&t, "/api/v1/photos/not-a-uuid")
        .send()
        .await
        .unwrap();
    assert_problem(res, 400, Some("path")).await;

    // A 10 KB query string (hyper answers beyond 64 KiB itself, without a body).
    let q = "x".repeat(10_000);
    let res = app
        .get(&t, &format!("/api/v1/sync/pull?last_pulled_at=0&pad={q}"))
        .send()
        .await
        .unwrap();
    assert_problem(res, 414, None).await;
    // Up to hyper's own limit (65,534 bytes, a constant in hyper and in `http::Uri`) the answer
    // is ours, problem+json.
    let q = "x".repeat(60_000);
    let res = app
        .get(&t, &format!("/api/v1/sync/pull?last_pulled_at=0&pad={q}"))
        .send()
        .await
        .unwrap();
    assert_problem(res, 414, None).await;
    // Beyond it hyper answers 414 before any of our code runs, without a body: no setting of
    // hyper 1 or axum raises the limit (see app::MAX_URI_BYTES).
    let q = "x".repeat(100_000);
    let req = format!(
        "GET /api/v1/sync/pull?last_pulled_at=0&pad={q} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {t}\r\nConnection: close\r\n\r\n"
    );
    let (status, head, body) = raw_request(app.addr, &req).await;
    assert_eq!(status, 414, "{head}");
    assert!(body.is_empty(), "{body}");

    // A chunked push body over the limit (no Content-Length to refuse it by).
    let chunk = "a".repeat(2 * 1024 * 1024);
    let req = format!(
        "POST /api/v1/sync/push?last_pulled_at=0 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {t}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
        chunk.len()
    );
    let (status, head, body) = raw_request(app.addr, &req).await;
    assert_eq!(status, 413, "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/problem+json"),
        "{head}"
    );
    let p: serde_json::Value = serde_json::from_str(&body).expect("problem json");
    assert_eq!(p["status"], 413);
}

async fn json_is_read_strictly(b: Backend) {
    let app = TestApp::spawn(b).await;
    app.demo_accounts().await;
    let login = |body: &'static str, ct: &'static str| {
        app.client
            .post(app.url("/api/v1/auth/login"))
            .header("content-type", ct)
            .body(body)
            .send()
    };
    // An array is not the object a login is.
    let res = login(r#"["handhaver","demo","x"]"#, "application/json")
        .await
        .unwrap();
    assert_problem(res, 422, None).await;
    // Trailing data after the object.
    let res = login(
        r#"{"username":"handhaver","password":"demo","device_id":"x"} {}"#,
        "application/json",
    )
    .await
    .unwrap();
    assert_problem(res, 400, None).await;
    let res = login(
        r#"{"username":"handhaver","password":"demo","device_id":"x"}"#,
        "text/plain",
    )
    .await
    .unwrap();
    assert_problem(res, 415, None).await;
    let res = login(
        r#"{"username":"handhaver","password":"demo","device_id":"x"} "#,
        "application/json; charset=utf-8",
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 200);

    // The push: the same Content-Type rule and the same strictness.
    let t = app.login("handhaver", "phone-1").await;
    let push = |ct: &'static str, body: String| {
        app.client
            .post(app.url("/api/v1/sync/push?last_pulled_at=0"))
            .bearer_auth(&t)
            .header("content-type", ct)
            .body(body)
            .send()
    };
    let body = json!({ "changes": {} }).to_string();
    let res = push("text/plain", body.clone()).await.unwrap();
    assert_problem(res, 415, None).await;
    let res = push("application/json", format!("{body}x")).await.unwrap();
    assert_problem(res, 400, None).await;
}

async fn photo_limits_publish_the_memory_limit(b: Backend) {
    let app = TestApp::spawn(b).await;
    app.demo_accounts().await;
    let t = app.login("handhaver", "phone-1").await;
    let l = app.get_json(&t, "/api/v1/photos/limits").await;
    assert_eq!(l["max_decode_bytes"], 90 * 1024 * 1024, "{l}");
    assert_eq!(l["derive_memory_bytes"], 180 * 1024 * 1024, "{l}");
    assert_eq!(l["max_pixels"], 100_000_000, "{l}");
}

/// NUL (U+0000) in any text over REST is refused with 422 naming the field, in bodies at any
/// depth and in query strings, before anything is written: the same answer on SQLite (which
/// would store it) and PostgreSQL (whose text cannot hold it).
async fn nul_is_refused_per_field_over_rest(b: Backend) {
    let app = TestApp::spawn(b).await;
    app.demo_accounts().await;
    let t = app.login("handhaver", "phone-1").await;
    let id = uuid::Uuid::new_v4();
    let with = |pointer: &str| {
        let mut r = report(id);
        *r.pointer_mut(pointer).unwrap() = json!("a\u{0}b");
        r
    };
    for (pointer, field) in [("/description", "description"), ("/plate", "plate")] {
        let res = app
            .post(&t, "/api/v1/violations", &with(pointer))
            .send()
            .await
            .unwrap();
        let p = assert_problem(res, 422, Some(field)).await;
        assert!(p["detail"].as_str().unwrap().contains("NUL"), "{p}");
    }
    let res = app
        .get(&t, &format!("/api/v1/violations/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404, "nothing was written");
    // A field of a record kind (REST of the field records), and a change to a report.
    let res = app
        .post(
            &t,
            "/api/v1/rounds",
            &json!({ "id": uuid::Uuid::new_v4(), "name": "ronde\u{0}" }),
        )
        .send()
        .await
        .unwrap();
    assert_problem(res, 422, Some("name")).await;
    let res = app
        .post(&t, "/api/v1/violations", &report(id))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let res = app
        .patch(
            &t,
            &format!("/api/v1/violations/{id}"),
            &json!({ "description": "x\u{0}" }),
        )
        .send()
        .await
        .unwrap();
    assert_problem(res, 422, Some("description")).await;
    // The login reads the username before any lookup.
    let res = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({ "username": "hand\u{0}haver", "password": "demo", "device_id": "p" }))
        .send()
        .await
        .unwrap();
    assert_problem(res, 422, Some("username")).await;
    // Query strings.
    for path in [
        "/api/v1/violations?status=%00",
        "/api/v1/conflicts?status=open%00",
        "/api/v1/violations?wijk=WK%0001",
    ] {
        let res = app.get(&t, path).send().await.unwrap();
        let p = assert_problem(res, 422, None).await;
        assert!(p["detail"].as_str().unwrap().contains("NUL"), "{path}: {p}");
    }
}

/// A report whose location is in no wijk of Velsen (lat 0, lon 0: a fix that never came) is
/// accepted, with `wijk: null` and the flag `outside_municipality` that the team lead sees in
/// the REST view, the sync pull and the CSV export.
async fn a_report_outside_velsen_is_kept_and_flagged(b: Backend) {
    let app = TestApp::spawn(b).await;
    app.demo_accounts().await;
    let t = app.login("handhaver", "phone-1").await;
    let (out, inside) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    let mut r = report(out);
    r["location"]["lat"] = json!(0.0);
    r["location"]["lon"] = json!(0.0);
    let res = app.post(&t, "/api/v1/violations", &r).send().await.unwrap();
    assert_eq!(res.status(), 201);
    let v: serde_json::Value = res.json().await.unwrap();
    assert_eq!(v["wijk"], serde_json::Value::Null, "{v}");
    assert_eq!(v["flags"], json!(["outside_municipality"]), "{v}");
    let res = app
        .post(&t, "/api/v1/violations", &report(inside))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let v: serde_json::Value = res.json().await.unwrap();
    assert!(v["wijk"].is_object(), "{v}");
    assert_eq!(v["flags"], json!([]), "{v}");

    let lead = app.login("teamleider", "pc-lead").await;
    let v = app
        .get_json(&lead, &format!("/api/v1/violations/{out}"))
        .await;
    assert_eq!(v["flags"], json!(["outside_municipality"]), "{v}");
    // The sync pull carries the flags column (a JSON list as a string, SYNC.md).
    let pull = app
        .get_json(
            &lead,
            "/api/v1/sync/pull?last_pulled_at=0&tables=violations",
        )
        .await;
    let rows = thor_tests::pulled_rows(&pull, "violations");
    let row = rows
        .iter()
        .find(|r| r["id"] == json!(out.to_string()))
        .unwrap_or_else(|| panic!("{pull}"));
    let flags: serde_json::Value = match &row["flags"] {
        serde_json::Value::String(s) => serde_json::from_str(s).unwrap(),
        other => other.clone(),
    };
    assert_eq!(flags, json!(["outside_municipality"]), "{row}");
    // The CSV export: a last column `signalen`.
    let today = chrono::Utc::now()
        .with_timezone(&chrono_tz::Europe::Amsterdam)
        .date_naive();
    let csv = app
        .get(
            &lead,
            &format!(
                "/api/v1/exports/violations.csv?from={}&to={today}{}",
                today - chrono::Days::new(1),
                crate::PROVISION
            ),
        )
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let lines: Vec<&str> = csv.split("\r\n").collect();
    assert!(lines[0].ends_with(";ronde;signalen"), "{}", lines[0]);
    let line = |id: uuid::Uuid| {
        *lines
            .iter()
            .find(|l| l.starts_with(&id.to_string()))
            .unwrap_or_else(|| panic!("{csv}"))
    };
    assert!(
        // The flag as people read it (the CSV is for a spreadsheet: Dutch labels).
        line(out).ends_with(";locatie buiten de gemeente Velsen"),
        "{}",
        line(out)
    );
    assert!(line(inside).ends_with(';'), "{}", line(inside));
}

both!(
    the_framework_answers_problems,
    json_is_read_strictly,
    photo_limits_publish_the_memory_limit,
    nul_is_refused_per_field_over_rest,
    a_report_outside_velsen_is_kept_and_flagged,
);
