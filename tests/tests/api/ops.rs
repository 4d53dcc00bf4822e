use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;
use thor_tests::{Backend, TestApp, assert_problem, both, report};

async fn health_readiness_metrics_and_request_ids(b: Backend) {
    let app = TestApp::spawn(b).await;
    let res = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let res = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers().contains_key("x-request-id"));
    let res = app
        .client
        .get(app.url("/readyz"))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "abc-123");
    app.demo_accounts().await;
    app.login("handhaver", "phone").await;
    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("http_requests_total"), "{metrics}");
    assert!(
        metrics.contains("route=\"/api/v1/auth/login\""),
        "per route"
    );
    assert!(
        metrics.contains("http_request_duration_seconds_bucket"),
        "latency histogram"
    );
    assert_problem(
        app.client.get(app.url("/nope")).send().await.unwrap(),
        404,
        None,
    )
    .await;
    let spec: Value = app
        .client
        .get(app.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(spec["openapi"], "3.1.0");
    // Compression for clients that ask.
    let res = app
        .client
        .get(app.url("/api/v1/openapi.json"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["content-encoding"], "gzip");
    app.stop().await;
}

/// A push that is in flight when SIGTERM arrives is finished, not cut off.
async fn shutdown_finishes_in_flight_requests(b: Backend) {
    let mut app = TestApp::spawn(b).await;
    app.demo_accounts().await;
    let t = app.login("handhaver", "phone").await;
    let id = uuid::Uuid::new_v4();
    let body = serde_json::to_vec(&report(id)).unwrap();
    let (first, rest) = body.split_at(body.len() / 2);
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(2);
    tx.send(Ok(Bytes::copy_from_slice(first))).await.unwrap();
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let req = app
        .client
        .post(app.url("/api/v1/violations"))
        .bearer_auth(&t)
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(stream))
        .send();
    let pending = tokio::spawn(req);
    tokio::time::sleep(Duration::from_millis(300)).await;
    app.begin_shutdown();
    tokio::time::sleep(Duration::from_millis(300)).await;
    tx.send(Ok(Bytes::copy_from_slice(rest))).await.unwrap();
    drop(tx);
    let res = pending.await.unwrap().unwrap();
    assert_eq!(
        res.status(),
        201,
        "the in-flight create completes during shutdown"
    );
    app.wait_stopped().await;
}

async fn migrations_go_down_and_up_again(b: Backend) {
    use thor::db::{Migrator, MigratorTrait};
    let app = TestApp::spawn(b).await;
    Migrator::down(&app.state.db.write, None)
        .await
        .expect("down");
    Migrator::up(&app.state.db.write, None)
        .await
        .expect("up again");
    thor::reference::load::load_fixtures(&app.state.db)
        .await
        .expect("fixtures again");
    assert_eq!(app.count("area").await, 73);
    app.stop().await;
}

both!(
    health_readiness_metrics_and_request_ids,
    shutdown_finishes_in_flight_requests,
    migrations_go_down_and_up_again
);
