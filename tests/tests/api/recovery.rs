//! What a stop at the wrong moment, a second instance and a shutdown must not break (the faults
//! of issue 19): an upload's finish cut short between any two steps is completed without a byte
//! sent again; two instances pushing the same records in batches never deadlock; a stalled upload
//! does not hold a draining server, and keeps the bytes it delivered.

use std::time::{Duration, Instant};

use rand::seq::SliceRandom;
use sea_orm::{ConnectionTrait, Database, Statement};
use serde_json::{Value, json};
use thor::photos::tus::{FinishStep, SHUTDOWN_GRACE};
use thor_tests::{Backend, TestApp, both};
use uuid::Uuid;

use super::photos::{create_upload, jpeg, patch, photo, report_with_photo, s3_app, s3_bucket, tus};

const STEPS: [FinishStep; 4] = [
    FinishStep::Verified,
    FinishStep::Received,
    FinishStep::Stored,
    FinishStep::Completed,
];

async fn head_offset(app: &TestApp, t: &str, pid: Uuid) -> u64 {
    let res = tus(app, t, "HEAD", &format!("/api/v1/uploads/{pid}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "HEAD of {pid}");
    res.headers()["upload-offset"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// A photo whose first half was acknowledged and whose last PATCH failed right after `step` of
/// the finish (the test fault point leaves what a crash there leaves): (photo id, its bytes).
async fn cut_short(app: &TestApp, t: &str, step: FinishStep, seed: u8) -> (Uuid, Vec<u8>) {
    let bytes = jpeg(640, 480, seed);
    let (_, pid) = report_with_photo(app, t, &bytes, "image/jpeg").await;
    assert_eq!(create_upload(app, t, pid, bytes.len()).await.status(), 201);
    let half = bytes.len() / 2;
    let res = patch(app, t, pid, 0, &bytes[..half]).await;
    assert_eq!(res.status(), 204);
    assert_eq!(res.headers()["upload-offset"], half.to_string().as_str());
    *app.state.photos.stop_after.lock().unwrap() = Some(step);
    let res = patch(app, t, pid, half, &bytes[half..]).await;
    *app.state.photos.stop_after.lock().unwrap() = None;
    assert_eq!(res.status(), 500, "the finish stopped after {step:?}");
    (pid, bytes)
}

/// What the phone does next (HEAD, then a PATCH at the offset it heard, which sends nothing
/// once that is the length) completes the photo with the bytes it sent before.
async fn completes_without_resending(
    app: &TestApp,
    t: &str,
    pid: Uuid,
    bytes: &[u8],
    step: FinishStep,
) {
    let len = bytes.len() as u64;
    assert_eq!(
        head_offset(app, t, pid).await,
        len,
        "after a stop after {step:?}, HEAD answers the full length (never less than the acknowledged half)"
    );
    // 423 while the server's own pick-up at start holds the upload (it can start late on a busy
    // machine): tus clients retry a 423, and so does this phone.
    let mut res = patch(app, t, pid, len as usize, &[]).await;
    for _ in 0..100 {
        if res.status() != 423 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        res = patch(app, t, pid, len as usize, &[]).await;
    }
    assert_eq!(res.status(), 204, "after {step:?}");
    assert_eq!(res.headers()["upload-offset"], len.to_string().as_str());
    let p = photo(app, t, pid).await;
    assert_eq!(p["upload_state"], "complete", "after {step:?}: {p}");
    assert_eq!(p["format"], "jpeg", "{p}");
    assert_eq!(p["width"], 640, "{p}");
    let got = app
        .get(t, &format!("/api/v1/photos/{pid}/original"))
        .send()
        .await
        .unwrap();
    assert_eq!(got.status(), 200);
    assert_eq!(got.bytes().await.unwrap().as_ref(), bytes, "after {step:?}");
}

/// The finish of an upload stopped after each of its steps: on the same server (HEAD takes it
/// up) and after a restart on the same database and data folder (the start or HEAD does).
async fn an_upload_stopped_in_its_finish_completes_without_resending(b: Backend) {
    stopped_finishes_complete(TestApp::spawn(b).await).await;
}

/// The same with the photo store on S3, where step 3 is a multipart upload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_stopped_in_its_finish_completes_without_resending_on_s3() {
    let Some((endpoint, bucket)) = s3_bucket().await else {
        return;
    };
    stopped_finishes_complete(s3_app(&endpoint, &bucket).await).await;
}

async fn stopped_finishes_complete(app: TestApp) {
    app.demo_accounts().await;
    let t = app.login("handhaver", "phone").await;
    for (i, step) in STEPS.into_iter().enumerate() {
        let (pid, bytes) = cut_short(&app, &t, step, 10 + i as u8).await;
        completes_without_resending(&app, &t, pid, &bytes, step).await;
    }
    let mut stopped = Vec::new();
    for (i, step) in STEPS.into_iter().enumerate() {
        stopped.push((step, cut_short(&app, &t, step, 20 + i as u8).await));
    }
    let app = app.restart().await;
    for (step, (pid, bytes)) in &stopped {
        completes_without_resending(&app, &t, *pid, bytes, *step).await;
    }
    // Knowing a stored photo's hash is still not a way to complete one: another team's record
    // of the same bytes stays pending, after the restart as before.
    let (_, other) = app
        .user("boa.ijmuiden", "handhaver", "Team IJmuiden", false)
        .await;
    let (_, (_, bytes)) = &stopped[0];
    let (_, theirs) = report_with_photo(&app, &other, bytes, "image/jpeg").await;
    assert_eq!(head_offset(&app, &other, theirs).await, 0);
    assert_eq!(photo(&app, &other, theirs).await["upload_state"], "pending");
    app.stop().await;
}

/// The deadlocks this database has seen (PostgreSQL counts them per database).
async fn deadlocks(url: &str) -> i64 {
    let db = Database::connect(url).await.unwrap();
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()",
        ))
        .await
        .unwrap()
        .unwrap();
    let n: i64 = row.try_get("", "deadlocks").unwrap();
    db.close().await.ok();
    n
}

fn new_report(id: Uuid) -> Value {
    let now = chrono::Utc::now() - chrono::Duration::minutes(2);
    json!({
        "id": id.to_string(), "_status": "created", "_changed": "",
        "category": "afval", "feitcode": "H004", "observed_at": now.timestamp_millis(),
        "lat": 52.4599, "lon": 4.6218, "accuracy_m": 7, "location_source": "gps",
        "description": "zakken naast container", "outcome": "warning", "status": "concept",
        "officer_ids": "[]"
    })
}

/// Two instances on one PostgreSQL database, four phones on each, pushing edits of the same
/// reports in shuffled order (and new reports) at once, so that each instance's group commits
/// hold several pushes: no push fails, PostgreSQL saw no deadlock, every acknowledged report is
/// there.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_pushing_the_same_records_never_deadlock() {
    let Some(backend) = thor_tests::postgres() else {
        return;
    };
    const PHONES: usize = 8;
    const ROUNDS: usize = 10;
    let mut first = TestApp::spawn(backend).await;
    first.demo_accounts().await;
    let second = first.another_instance().await;
    let url = first.state.config.database_url.clone().unwrap();
    let setup = first.login("handhaver", "setup").await;
    let shared: Vec<Uuid> = (0..24).map(|_| Uuid::new_v4()).collect();
    let res = first
        .client
        .post(first.url("/api/v1/sync/push?last_pulled_at=0"))
        .bearer_auth(&setup)
        .json(&json!({ "changes": { "violations": {
            "created": shared.iter().map(|id| new_report(*id)).collect::<Vec<_>>() } } }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let before = deadlocks(&url).await;

    let mut phones = Vec::new();
    for i in 0..PHONES {
        let app = if i % 2 == 0 { &first } else { &second };
        let token = app.login("handhaver", &format!("phone-{i}")).await;
        let (client, base, shared) = (app.client.clone(), app.base.clone(), shared.clone());
        phones.push(tokio::spawn(async move {
            let mut created = Vec::new();
            let mut statuses = Vec::new();
            for round in 0..ROUNDS {
                let mut ids = shared.clone();
                ids.shuffle(&mut rand::rng());
                let updated: Vec<Value> = ids[..12]
                    .iter()
                    .map(|id| json!({ "id": id.to_string(), "description": format!("phone {i} round {round}") }))
                    .collect();
                let fresh = [Uuid::new_v4(), Uuid::new_v4()];
                let res = client
                    .post(format!("{base}/api/v1/sync/push?last_pulled_at=0"))
                    .bearer_auth(&token)
                    .json(&json!({ "changes": { "violations": {
                        "created": fresh.iter().map(|id| new_report(*id)).collect::<Vec<_>>(),
                        "updated": updated } } }))
                    .send()
                    .await
                    .unwrap();
                statuses.push(res.status().as_u16());
                if res.status() == 200 {
                    let body: Value = res.json().await.unwrap();
                    assert_eq!(body["rejected"], json!([]), "{body}");
                    created.extend(fresh);
                }
            }
            (statuses, created)
        }));
    }
    let mut acknowledged = Vec::new();
    for p in phones {
        let (statuses, created) = p.await.unwrap();
        assert!(
            statuses.iter().all(|s| *s == 200),
            "every push answered 200: {statuses:?}"
        );
        acknowledged.extend(created);
    }
    assert_eq!(acknowledged.len(), PHONES * ROUNDS * 2);
    let ids: Vec<String> = acknowledged
        .iter()
        .chain(&shared)
        .map(|id| format!("'{id}'"))
        .collect();
    let row = first
        .state
        .db
        .read
        .query_one_raw(Statement::from_string(
            first.state.db.backend(),
            format!(
                "SELECT COUNT(*) AS n FROM violation WHERE id::text IN ({})",
                ids.join(",")
            ),
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        row.try_get::<i64>("", "n").unwrap() as usize,
        ids.len(),
        "every acknowledged report is there"
    );
    // A server process reports its counters when it ends: stop both instances' pools first.
    second.stop().await;
    first.begin_shutdown();
    first.wait_server().await;
    let mut seen = before;
    for _ in 0..20 {
        seen = deadlocks(&url).await;
        if seen > before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        seen, before,
        "PostgreSQL detected deadlocks between the instances"
    );
}

/// A phone's upload that sent part of its body and then stalls, and a push whose body is
/// arriving, when shutdown begins: the push is answered, the upload ended after the grace with
/// what arrived kept, and the server is gone well before the upload's idle limit (60 s). After a
/// restart on the same data, HEAD reports the bytes received and the phone finishes from there.
async fn shutdown_ends_a_stalled_upload_keeping_its_bytes(b: Backend) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut app = TestApp::spawn(b).await;
    app.demo_accounts().await;
    let t = app.login("handhaver", "phone").await;
    let bytes = jpeg(1200, 900, 5);
    let (_, pid) = report_with_photo(&app, &t, &bytes, "image/jpeg").await;
    assert_eq!(
        create_upload(&app, &t, pid, bytes.len()).await.status(),
        201
    );
    let sent = bytes.len() / 3;
    let mut upload = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let head = format!(
        "PATCH /api/v1/uploads/{pid} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {t}\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\nContent-Type: application/offset+octet-stream\r\nContent-Length: {}\r\n\r\n",
        app.addr,
        bytes.len()
    );
    upload.write_all(head.as_bytes()).await.unwrap();
    upload.write_all(&bytes[..sent]).await.unwrap();
    upload.flush().await.unwrap();

    // A push whose body is half sent.
    let body = serde_json::to_vec(&json!({ "changes": { "violations": {
        "created": [new_report(Uuid::new_v4())] } } }))
    .unwrap();
    let (first, rest) = body.split_at(body.len() / 2);
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(2);
    tx.send(Ok(bytes::Bytes::copy_from_slice(first)))
        .await
        .unwrap();
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let push = tokio::spawn(
        app.client
            .post(app.url("/api/v1/sync/push?last_pulled_at=0"))
            .bearer_auth(&t)
            .header("content-type", "application/json")
            .body(reqwest::Body::wrap_stream(stream))
            .send(),
    );
    tokio::time::sleep(Duration::from_millis(500)).await;

    let started = Instant::now();
    app.begin_shutdown();
    tokio::time::sleep(Duration::from_millis(300)).await;
    tx.send(Ok(bytes::Bytes::copy_from_slice(rest)))
        .await
        .unwrap();
    drop(tx);
    let res = push.await.unwrap().unwrap();
    assert_eq!(
        res.status(),
        200,
        "the in-flight push is answered during shutdown"
    );
    let limit = SHUTDOWN_GRACE + Duration::from_secs(10);
    tokio::time::timeout(limit, app.wait_server())
        .await
        .unwrap_or_else(|_| panic!("the server still runs {limit:?} after shutdown began"));
    let took = started.elapsed();
    assert!(took >= SHUTDOWN_GRACE, "the upload had its grace: {took:?}");
    // The phone heard how much was kept (or lost the connection): never more than it sent.
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(2), upload.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer).to_lowercase();
    if !answer.is_empty() {
        assert!(answer.starts_with("http/1.1 204"), "{answer}");
        assert!(
            answer.contains(&format!("upload-offset: {sent}")),
            "{answer}"
        );
    }

    let app = app.restart().await;
    assert_eq!(
        head_offset(&app, &t, pid).await,
        sent as u64,
        "the bytes received survive the stop"
    );
    let res = patch(&app, &t, pid, sent, &bytes[sent..]).await;
    assert_eq!(res.status(), 204);
    assert_eq!(photo(&app, &t, pid).await["upload_state"], "complete");
    app.stop().await;
}

both!(
    an_upload_stopped_in_its_finish_completes_without_resending,
    shutdown_ends_a_stalled_upload_keeping_its_bytes
);
