//! Issue 15 item 3: every rejection the framework makes is problem+json with its status, and
//! JSON is read strictly (no trailing data, objects where objects are declared, one
//! Content-Type rule on every JSON route, the sync push included).

use serde_json::json;
use thor_tests::{Backend, TestApp, assert_problem, both, raw_request};

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

both!(
    the_framework_answers_problems,
    json_is_read_strictly,
    photo_limits_publish_the_memory_limit,
);
