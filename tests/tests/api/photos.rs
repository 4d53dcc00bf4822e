//! Photos as evidence: records, tus uploads (resumed after a dropped connection, verified),
//! the evidence store (local and S3), derivatives, EXIF, plausibility flags and bad input.

use std::time::Duration;

use super::bombs::progressive_jpeg_bomb;
use base64::Engine;
use reqwest::Method;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use thor_tests::{Backend, TestApp, assert_problem, both, report};
use uuid::Uuid;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

pub(crate) fn sha_hex(b: &[u8]) -> String {
    Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

/// A photo-like JPEG made here: a gradient with noise, `w`×`h`.
pub(crate) fn jpeg(w: u32, h: u32, seed: u8) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        let n = ((x * 7 + y * 13) as u8).wrapping_mul(seed | 1);
        image::Rgb([
            (x % 256) as u8 ^ n,
            (y % 256) as u8,
            seed.wrapping_add(n / 4),
        ])
    });
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85)
        .encode_image(&img)
        .expect("encode jpeg");
    out
}

pub(crate) fn tus(app: &TestApp, t: &str, method: &str, path: &str) -> reqwest::RequestBuilder {
    app.client
        .request(
            Method::from_bytes(method.as_bytes()).unwrap(),
            app.url(path),
        )
        .bearer_auth(t)
        .header("Tus-Resumable", "1.0.0")
}

pub(crate) fn photo_record(id: Uuid, violation: Uuid, bytes: &[u8], mime: &str) -> Value {
    json!({
        "id": id,
        "violation_id": violation,
        "sha256": sha_hex(bytes),
        "size_bytes": bytes.len(),
        "mime": mime,
        "captured_at": (chrono::Utc::now() - chrono::Duration::minutes(1)).to_rfc3339(),
        "lat": 52.4599, "lon": 4.6218, "accuracy_m": 5.0
    })
}

/// A report and a photo record for `bytes`; returns (report id, photo id).
pub(crate) async fn report_with_photo(
    app: &TestApp,
    t: &str,
    bytes: &[u8],
    mime: &str,
) -> (Uuid, Uuid) {
    let rid = Uuid::new_v4();
    let res = app
        .post(t, "/api/v1/violations", &report(rid))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let pid = Uuid::new_v4();
    let res = app
        .post(t, "/api/v1/photos", &photo_record(pid, rid, bytes, mime))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    (rid, pid)
}

/// A report of `t` with one JPEG photo whose bytes are in and whose derivatives are made.
pub(crate) async fn report_with_derived_photo(
    app: &TestApp,
    t: &str,
    bytes: &[u8],
) -> (Uuid, Uuid) {
    let (rid, pid) = report_with_photo(app, t, bytes, "image/jpeg").await;
    assert_eq!(upload(app, t, pid, bytes).await.status(), 204);
    assert_eq!(derived(app, t, pid).await["derivative_state"], "done");
    (rid, pid)
}

pub(crate) async fn create_upload(
    app: &TestApp,
    t: &str,
    pid: Uuid,
    len: usize,
) -> reqwest::Response {
    tus(app, t, "POST", "/api/v1/uploads")
        .header("Upload-Length", len.to_string())
        .header(
            "Upload-Metadata",
            format!(
                "photo_id {},filetype {}",
                B64.encode(pid.to_string()),
                B64.encode("image/jpeg")
            ),
        )
        .send()
        .await
        .unwrap()
}

pub(crate) async fn patch(
    app: &TestApp,
    t: &str,
    pid: Uuid,
    offset: usize,
    bytes: &[u8],
) -> reqwest::Response {
    tus(app, t, "PATCH", &format!("/api/v1/uploads/{pid}"))
        .header("Upload-Offset", offset.to_string())
        .header("Content-Type", "application/offset+octet-stream")
        .body(bytes.to_vec())
        .send()
        .await
        .unwrap()
}

async fn offset_of(app: &TestApp, t: &str, pid: Uuid) -> u64 {
    let res = tus(app, t, "HEAD", &format!("/api/v1/uploads/{pid}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.headers()["upload-offset"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

pub(crate) async fn photo(app: &TestApp, t: &str, pid: Uuid) -> Value {
    app.get(t, &format!("/api/v1/photos/{pid}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Waits until the worker has made (or given up on) the derivatives.
pub(crate) async fn derived(app: &TestApp, t: &str, pid: Uuid) -> Value {
    for _ in 0..300 {
        let p = photo(app, t, pid).await;
        if p["derivative_state"] == "done" || p["derivative_state"] == "failed" {
            return p;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the derivatives of {pid} were not made within 30 s");
}

/// Uploads all bytes in one PATCH after creating the upload.
pub(crate) async fn upload(app: &TestApp, t: &str, pid: Uuid, bytes: &[u8]) -> reqwest::Response {
    let res = create_upload(app, t, pid, bytes.len()).await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    patch(app, t, pid, 0, bytes).await
}

/// Sends a PATCH that declares all remaining bytes, sends `send` of them and drops the
/// connection, as a phone losing its network mid-upload.
async fn patch_and_drop(
    app: &TestApp,
    t: &str,
    pid: Uuid,
    offset: usize,
    rest: &[u8],
    send: usize,
) {
    use tokio::io::AsyncWriteExt;
    let mut s = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let head = format!(
        "PATCH /api/v1/uploads/{pid} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {t}\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: {offset}\r\nContent-Type: application/offset+octet-stream\r\nContent-Length: {}\r\n\r\n",
        app.addr,
        rest.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(&rest[..send]).await.unwrap();
    s.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop(s);
}

async fn an_interrupted_upload_resumes_and_is_stored_as_evidence(b: Backend) {
    let app = TestApp::spawn(b).await;
    app.demo_accounts().await;
    let t = app.login("handhaver", "phone-1").await;
    let bytes = jpeg(1600, 1200, 3);
    let rid = Uuid::new_v4();
    let pid = Uuid::new_v4();

    // The report and its photo record arrive in one push; the photo table sorts before the
    // report's, but the engine applies parents first.
    let mut r = report(rid);
    let now = chrono::Utc::now().timestamp_millis() - 60_000;
    let push = json!({ "changes": {
        "photos": { "created": [{
            "id": pid, "violation_id": rid, "sha256": sha_hex(&bytes), "size_bytes": bytes.len(),
            "mime": "image/jpeg", "captured_at": now, "lat": 52.4599, "lon": 4.6218, "accuracy_m": 5.0
        }], "updated": [], "deleted": [] },
        "violations": { "created": [{
            "id": rid, "category": "parkeren", "feitcode": "R397a", "observed_at": now,
            "lat": 52.4599, "lon": 4.6218, "accuracy_m": 6.5, "location_source": "gps",
            "description": "Op de stoep", "outcome": "fine", "plate": "12ABC3", "driver_present": false,
            "officer_ids": "[]", "status": "concept"
        }], "updated": [], "deleted": [] }
    }});
    r["id"] = json!(rid);
    let res = app
        .post(&t, "/api/v1/sync/push", &push)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let pushed: Value = res.json().await.unwrap();
    assert_eq!(pushed["experimentalRejectedIds"], json!({}), "{pushed}");
    assert_eq!(photo(&app, &t, pid).await["upload_state"], "pending");

    // The server says what it speaks.
    let res = tus(&app, &t, "OPTIONS", "/api/v1/uploads")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(res.headers()["tus-version"], "1.0.0");
    assert!(
        res.headers()["tus-extension"]
            .to_str()
            .unwrap()
            .contains("creation-with-upload")
    );
    assert_eq!(
        res.headers()["tus-max-size"],
        (25 * 1024 * 1024).to_string()
    );
    let limits: Value = app
        .get(&t, "/api/v1/photos/limits")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(limits["max_bytes"], 25 * 1024 * 1024);
    assert!(
        limits["accepted_types"]
            .as_array()
            .unwrap()
            .contains(&json!("image/jpeg"))
    );

    let res = create_upload(&app, &t, pid, bytes.len()).await;
    assert_eq!(res.status(), 201);
    assert_eq!(res.headers()["tus-resumable"], "1.0.0");
    assert_eq!(res.headers()["location"], format!("/api/v1/uploads/{pid}"));
    assert!(res.headers().contains_key("upload-expires"));

    // A third arrives, then the network drops mid-PATCH: the bytes that arrived are kept.
    let third = bytes.len() / 3;
    let res = patch(&app, &t, pid, 0, &bytes[..third]).await;
    assert_eq!(res.status(), 204);
    assert_eq!(res.headers()["upload-offset"], third.to_string());
    assert_eq!(photo(&app, &t, pid).await["upload_state"], "partial");
    // The report tells its reviewer a photo is still missing.
    let flags = |v: Value| v["flags"].as_array().unwrap().clone();
    let rep: Value = app
        .get(&t, &format!("/api/v1/violations/{rid}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(flags(rep).contains(&json!("photo_missing")));
    patch_and_drop(&app, &t, pid, third, &bytes[third..], third).await;
    // The server notices the drop, flushes what arrived and records it.
    let mut recorded = json!(null);
    for _ in 0..50 {
        recorded = photo(&app, &t, pid).await["upload_offset"].clone();
        if recorded == json!(2 * third) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        recorded,
        json!(2 * third),
        "every byte received before the drop is kept"
    );
    assert_eq!(offset_of(&app, &t, pid).await as usize, 2 * third);

    // Resuming at a wrong offset is refused; at the right one it completes.
    assert_problem(
        patch(&app, &t, pid, third, &bytes[third..]).await,
        409,
        None,
    )
    .await;
    let res = patch(&app, &t, pid, 2 * third, &bytes[2 * third..]).await;
    assert_eq!(res.status(), 204);
    assert_eq!(res.headers()["upload-offset"], bytes.len().to_string());

    let p = photo(&app, &t, pid).await;
    assert_eq!(p["upload_state"], "complete");
    assert_eq!(p["format"], "jpeg");
    assert_eq!(p["width"], 1600);
    assert_eq!(p["height"], 1200);
    assert_eq!(p["flags"], json!([]));
    let rep: Value = app
        .get(&t, &format!("/api/v1/violations/{rid}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(!flags(rep).contains(&json!("photo_missing")));

    // The original, byte for byte, and its read in the audit log.
    let audit_before = app.count("audit_log").await;
    let res = app
        .get(&t, &format!("/api/v1/photos/{pid}/original"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "image/jpeg");
    let got = res.bytes().await.unwrap();
    assert_eq!(sha_hex(&got), sha_hex(&bytes));
    assert_eq!(app.count("audit_log").await, audit_before + 1);

    // Derivatives: made by the worker, upright, small, without metadata.
    let p = derived(&app, &t, pid).await;
    assert_eq!(p["derivative_state"], "done", "{p}");
    for (kind, px) in [("thumbnail", 320), ("preview", 1280)] {
        let res = app
            .get(&t, &format!("/api/v1/photos/{pid}/{kind}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{kind}");
        let body = res.bytes().await.unwrap();
        let img = image::load_from_memory(&body).unwrap();
        assert_eq!(img.width().max(img.height()), px, "{kind}");
        assert!(
            !body.windows(6).any(|w| w == b"Exif\0\0"),
            "{kind} carries no EXIF"
        );
    }

    // The phone learns the new state through sync; a second photo with the same bytes starts
    // pending (a record alone never completes from a hash) and its upload answers "all there"
    // at once (dedupe by hash, for an uploader who may read the stored bytes).
    let pulled: Value = app
        .get(&t, "/api/v1/sync/pull?last_pulled_at=0")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let rows = thor_tests::pulled_rows(&pulled, "photos");
    let row = rows.iter().find(|r| r["id"] == pid.to_string()).unwrap();
    assert_eq!(row["upload_state"], "complete");
    assert_eq!(row["derivative_state"], "done");

    let twin = Uuid::new_v4();
    let res = app
        .post(
            &t,
            "/api/v1/photos",
            &photo_record(twin, rid, &bytes, "image/jpeg"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let tw: Value = res.json().await.unwrap();
    assert_eq!(tw["upload_state"], "pending");
    let res = create_upload(&app, &t, twin, bytes.len()).await;
    assert_eq!(res.status(), 201);
    assert_eq!(res.headers()["upload-offset"], bytes.len().to_string());
    let res = patch(&app, &t, twin, 0, &bytes).await;
    assert_eq!(res.status(), 204);
    assert_eq!(res.headers()["upload-offset"], bytes.len().to_string());

    // The report lists its photos.
    let res = app
        .get(&t, &format!("/api/v1/violations/{rid}/photos"))
        .send()
        .await
        .unwrap();
    let text = res.text().await.unwrap();
    let list: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert_eq!(list.as_array().unwrap().len(), 2);

    // A finished original is evidence: termination is refused.
    assert_problem(
        tus(&app, &t, "DELETE", &format!("/api/v1/uploads/{pid}"))
            .send()
            .await
            .unwrap(),
        409,
        None,
    )
    .await;
}

async fn bad_uploads_get_clear_answers_and_nothing_half_written(b: Backend) {
    let app = TestApp::spawn(b).await;
    app.demo_accounts().await;
    let t = app.login("handhaver", "phone-1").await;
    let rid = Uuid::new_v4();
    app.post(&t, "/api/v1/violations", &report(rid))
        .send()
        .await
        .unwrap();
    let good = jpeg(64, 48, 9);

    // Records: HEIC, over the limit, a bad hash, an unknown report.
    let mut heic = photo_record(Uuid::new_v4(), rid, &good, "image/heic");
    let p = assert_problem(
        app.post(&t, "/api/v1/photos", &heic).send().await.unwrap(),
        422,
        Some("mime"),
    )
    .await;
    assert!(p["detail"].as_str().unwrap().contains("JPEG"));
    heic["mime"] = json!("image/jpeg");
    heic["size_bytes"] = json!(26 * 1024 * 1024);
    assert_problem(
        app.post(&t, "/api/v1/photos", &heic).send().await.unwrap(),
        422,
        Some("size_bytes"),
    )
    .await;
    heic["size_bytes"] = json!(good.len());
    heic["sha256"] = json!("nope");
    assert_problem(
        app.post(&t, "/api/v1/photos", &heic).send().await.unwrap(),
        422,
        Some("sha256"),
    )
    .await;
    let orphan = photo_record(Uuid::new_v4(), Uuid::new_v4(), &good, "image/jpeg");
    assert_problem(
        app.post(&t, "/api/v1/photos", &orphan)
            .send()
            .await
            .unwrap(),
        422,
        Some("violation_id"),
    )
    .await;
    assert_eq!(app.count("photo").await, 0);

    // Uploads: protocol errors.
    let unknown = Uuid::new_v4();
    assert_problem(
        create_upload(&app, &t, unknown, good.len()).await,
        409,
        None,
    )
    .await;
    let res = app
        .client
        .post(app.url("/api/v1/uploads"))
        .bearer_auth(&t)
        .header("Upload-Length", "10")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 412);
    assert_problem(
        create_upload(&app, &t, unknown, 30 * 1024 * 1024).await,
        413,
        None,
    )
    .await;

    let pid = Uuid::new_v4();
    app.post(
        &t,
        "/api/v1/photos",
        &photo_record(pid, rid, &good, "image/jpeg"),
    )
    .send()
    .await
    .unwrap();
    assert_problem(
        create_upload(&app, &t, pid, good.len() + 1).await,
        422,
        Some("Upload-Length"),
    )
    .await;
    assert_eq!(create_upload(&app, &t, pid, good.len()).await.status(), 201);
    let res = tus(&app, &t, "PATCH", &format!("/api/v1/uploads/{pid}"))
        .header("Upload-Offset", "0")
        .header("Content-Type", "image/jpeg")
        .body(good.clone())
        .send()
        .await
        .unwrap();
    assert_problem(res, 415, None).await;
    // A chunk that does not match its checksum is dropped.
    let res = tus(&app, &t, "PATCH", &format!("/api/v1/uploads/{pid}"))
        .header("Upload-Offset", "0")
        .header("Content-Type", "application/offset+octet-stream")
        .header(
            "Upload-Checksum",
            format!("sha256 {}", B64.encode(Sha256::digest(b"other"))),
        )
        .body(good[..100].to_vec())
        .send()
        .await
        .unwrap();
    assert_problem(res, 460, None).await;
    assert_eq!(offset_of(&app, &t, pid).await, 0);
    // With the right checksum it is kept; termination drops it again.
    let res = tus(&app, &t, "PATCH", &format!("/api/v1/uploads/{pid}"))
        .header("Upload-Offset", "0")
        .header("Content-Type", "application/offset+octet-stream")
        .header(
            "Upload-Checksum",
            format!("sha256 {}", B64.encode(Sha256::digest(&good[..100]))),
        )
        .body(good[..100].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(offset_of(&app, &t, pid).await, 100);
    let res = tus(&app, &t, "DELETE", &format!("/api/v1/uploads/{pid}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(offset_of(&app, &t, pid).await, 0);
    // Creation-with-upload: the whole file in the POST.
    let res = tus(&app, &t, "POST", "/api/v1/uploads")
        .header("Upload-Length", good.len().to_string())
        .header(
            "Upload-Metadata",
            format!("photo_id {}", B64.encode(pid.to_string())),
        )
        .header("Content-Type", "application/offset+octet-stream")
        .body(good.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    assert_eq!(res.headers()["upload-offset"], good.len().to_string());
    assert_eq!(photo(&app, &t, pid).await["upload_state"], "complete");

    // Bytes that are not an image, though the record says JPEG: refused on the first bytes.
    let text =
        b"<html>dit is geen foto, maar een webpagina van dertig bytes of meer</html>".to_vec();
    let (_, not_image) = report_with_photo(&app, &t, &text, "image/jpeg").await;
    let p = assert_problem(upload(&app, &t, not_image, &text).await, 415, None).await;
    assert!(p["detail"].as_str().unwrap().contains("JPEG"));
    let rec = photo(&app, &t, not_image).await;
    assert_eq!(rec["upload_state"], "failed");
    assert!(rec["failure"].as_str().is_some());
    let res = tus(&app, &t, "HEAD", &format!("/api/v1/uploads/{not_image}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 410);

    // HEIC bytes sent as "image/jpeg": 415 telling the app to send JPEG.
    let mut heic_bytes = vec![0, 0, 0, 0x18];
    heic_bytes.extend_from_slice(b"ftypheic\0\0\0\0mif1heic");
    heic_bytes.resize(200, 0);
    let (_, hp) = report_with_photo(&app, &t, &heic_bytes, "image/jpeg").await;
    let p = assert_problem(upload(&app, &t, hp, &heic_bytes).await, 415, None).await;
    assert!(p["detail"].as_str().unwrap().contains("JPEG"), "{p}");

    // The bytes do not match the record's SHA-256: refused, dropped, record failed.
    let fresh = jpeg(64, 48, 77);
    let (_, wp) = report_with_photo(&app, &t, &fresh, "image/jpeg").await;
    let mut bad = fresh.clone();
    let n = bad.len() - 3;
    bad[n] ^= 0xff;
    assert_problem(upload(&app, &t, wp, &bad).await, 422, Some("sha256")).await;
    assert_eq!(photo(&app, &t, wp).await["upload_state"], "failed");

    // A decompression bomb: a valid JPEG whose frame header claims 50,000 × 50,000 pixels.
    let mut bomb = jpeg(16, 16, 5);
    let sof = bomb
        .windows(2)
        .position(|w| w == [0xff, 0xc0])
        .expect("SOF0");
    bomb[sof + 5..sof + 7].copy_from_slice(&50_000u16.to_be_bytes());
    bomb[sof + 7..sof + 9].copy_from_slice(&50_000u16.to_be_bytes());
    let (_, bp) = report_with_photo(&app, &t, &bomb, "image/jpeg").await;
    let p = assert_problem(upload(&app, &t, bp, &bomb).await, 422, Some("file")).await;
    assert!(p["detail"].as_str().unwrap().contains("50000"), "{p}");
    assert_eq!(photo(&app, &t, bp).await["upload_state"], "failed");

    // Only the photo's officer (or the teamleider) sends its bytes.
    let other = app.login("jeugdboa", "phone-2").await;
    let (_, mine) = report_with_photo(&app, &t, &jpeg(32, 32, 1), "image/jpeg").await;
    assert_problem(create_upload(&app, &other, mine, 10).await, 403, None).await;
    // Nothing of the refused uploads was left in staging.
    let staging = app.state.config.data_dir.join("photos").join("staging");
    let left: Vec<_> = std::fs::read_dir(&staging)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "staging holds {left:?}");
}

async fn a_crashed_derivative_job_is_taken_again(b: Backend) {
    use sea_orm::{ConnectionTrait, Statement};
    let app = TestApp::spawn(b).await;
    app.demo_accounts().await;
    let t = app.login("handhaver", "phone-1").await;
    let bytes = jpeg(800, 600, 11);
    let (_, pid) = report_with_photo(&app, &t, &bytes, "image/jpeg").await;
    assert_eq!(upload(&app, &t, pid, &bytes).await.status(), 204);
    assert_eq!(derived(&app, &t, pid).await["derivative_state"], "done");

    // A worker took the job and died: its lease is live, so no one else takes it now ...
    let db = &app.state.db.write;
    let live = chrono::Utc::now() + chrono::Duration::minutes(5);
    let sql = |lease: chrono::DateTime<chrono::Utc>| {
        Statement::from_sql_and_values(
            db.get_database_backend(),
            match db.get_database_backend() {
                sea_orm::DbBackend::Postgres => {
                    "UPDATE photo SET derivative_state = 'pending', derive_lease_until = $1 WHERE id = $2"
                }
                _ => {
                    "UPDATE photo SET derivative_state = 'pending', derive_lease_until = ? WHERE id = ?"
                }
            },
            [lease.into(), pid.into()],
        )
    };
    db.execute_raw(sql(live)).await.unwrap();
    let permits = std::sync::Arc::new(tokio::sync::Semaphore::new(2));
    assert_eq!(
        thor::photos::worker::run_once(&app.state, &permits)
            .await
            .unwrap(),
        0
    );
    // ... and once the lease has run out, it is taken again and finished.
    db.execute_raw(sql(chrono::Utc::now() - chrono::Duration::seconds(1)))
        .await
        .unwrap();
    app.state.photos.wake.notify_one();
    assert_eq!(derived(&app, &t, pid).await["derivative_state"], "done");
}

/// A PATCH of `bytes` at `offset` with `Upload-Checksum: <checksum>`.
async fn patch_checked(
    app: &TestApp,
    t: &str,
    pid: Uuid,
    offset: usize,
    bytes: &[u8],
    checksum: &str,
) -> reqwest::Response {
    tus(app, t, "PATCH", &format!("/api/v1/uploads/{pid}"))
        .header("Upload-Offset", offset.to_string())
        .header("Content-Type", "application/offset+octet-stream")
        .header("Upload-Checksum", checksum)
        .body(bytes.to_vec())
        .send()
        .await
        .unwrap()
}

fn checksum(algo: thor::photos::tus::ChecksumAlgorithm, bytes: &[u8]) -> String {
    format!("{} {}", algo.name(), B64.encode(algo.digest(bytes)))
}

/// The HEAD answer as (Upload-Offset, Upload-Length).
async fn head(app: &TestApp, t: &str, pid: Uuid) -> (u64, u64) {
    let res = tus(app, t, "HEAD", &format!("/api/v1/uploads/{pid}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let n = |h: &str| res.headers()[h].to_str().unwrap().parse::<u64>().unwrap();
    (n("upload-offset"), n("upload-length"))
}

async fn tus_checksums_are_sha1_and_sha256(b: Backend) {
    use thor::photos::tus::ChecksumAlgorithm::{Sha1, Sha256 as S256};
    let app = TestApp::spawn(b).await;
    app.demo_accounts().await;
    let t = app.login("handhaver", "phone-1").await;

    // Both are advertised, in OPTIONS and in the limits.
    let res = tus(&app, &t, "OPTIONS", "/api/v1/uploads")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(res.headers()["tus-checksum-algorithm"], "sha1,sha256");
    assert!(
        res.headers()["tus-extension"]
            .to_str()
            .unwrap()
            .split(',')
            .any(|e| e == "checksum")
    );
    let limits = app.get_json(&t, "/api/v1/photos/limits").await;
    assert_eq!(limits["tus_checksum_algorithms"], json!(["sha1", "sha256"]));

    let bytes = jpeg(640, 480, 21);
    let (_, pid) = report_with_photo(&app, &t, &bytes, "image/jpeg").await;
    let (a, b2) = (bytes.len() / 3, 2 * bytes.len() / 3);

    // A sha1 chunk that does not match: 460, dropped. The right sha1: kept.
    let res = patch_checked(&app, &t, pid, 0, &bytes[..a], &checksum(Sha1, b"other")).await;
    assert_problem(res, 460, None).await;
    assert_eq!(head(&app, &t, pid).await.0, 0);
    let res = patch_checked(&app, &t, pid, 0, &bytes[..a], &checksum(Sha1, &bytes[..a])).await;
    assert_eq!(res.status(), 204, "{}", res.text().await.unwrap());
    assert_eq!(head(&app, &t, pid).await.0, a as u64);

    // Not an algorithm offered, or a digest that cannot be one: 400 naming the header, and
    // nothing of the chunk is kept.
    let rest = &bytes[a..b2];
    for bad in [
        format!("md5 {}", B64.encode([0u8; 16])),
        format!("sha1 {}", B64.encode(S256.digest(rest))),
        "sha1 not-base64!".to_string(),
    ] {
        let res = patch_checked(&app, &t, pid, a, rest, &bad).await;
        let p = assert_problem(res, 400, Some("Upload-Checksum")).await;
        assert!(p["detail"].as_str().unwrap().len() > 10, "{p}");
        assert_eq!(head(&app, &t, pid).await.0, a as u64, "{bad}");
    }

    // sha256 goes on: a mismatch is dropped, the right digest kept.
    let res = patch_checked(&app, &t, pid, a, rest, &checksum(S256, b"other")).await;
    assert_problem(res, 460, None).await;
    let res = patch_checked(&app, &t, pid, a, rest, &checksum(S256, rest)).await;
    assert_eq!(res.status(), 204);
    // The last chunk with sha1 (upper case, as some clients write it) completes the photo.
    let last = &bytes[b2..];
    let upper = format!("SHA1 {}", B64.encode(Sha1.digest(last)));
    let res = patch_checked(&app, &t, pid, b2, last, &upper).await;
    assert_eq!(res.status(), 204);
    assert_eq!(res.headers()["upload-offset"], bytes.len().to_string());
    assert_eq!(photo(&app, &t, pid).await["upload_state"], "complete");
    let got = app
        .get(&t, &format!("/api/v1/photos/{pid}/original"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(sha_hex(&got), sha_hex(&bytes));

    // Creation-with-upload takes a checksum too.
    let small = jpeg(48, 32, 22);
    let (_, sp) = report_with_photo(&app, &t, &small, "image/jpeg").await;
    let res = tus(&app, &t, "POST", "/api/v1/uploads")
        .header("Upload-Length", small.len().to_string())
        .header(
            "Upload-Metadata",
            format!("photo_id {}", B64.encode(sp.to_string())),
        )
        .header("Content-Type", "application/offset+octet-stream")
        .header("Upload-Checksum", checksum(Sha1, b"not these bytes"))
        .body(small.clone())
        .send()
        .await
        .unwrap();
    assert_problem(res, 460, None).await;
    assert_eq!(head(&app, &t, sp).await.0, 0);
}

async fn already_stored_bytes_are_announced_on_head(b: Backend) {
    let app = TestApp::spawn(b).await;
    app.demo_accounts().await;
    let t = app.login("handhaver", "phone-1").await;
    let boa = app.login("jeugdboa", "phone-2").await;
    let admin = app.login("beheerder", "pc-1").await;
    // An officer of another team.
    let res = app
        .post(
            &admin,
            "/api/v1/users",
            &json!({ "username": "boa.ijmuiden", "role": "handhaver", "team": "Team IJmuiden",
                     "password": "lange wachtzin voor test" }),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    let res = app
        .login_response("boa.ijmuiden", "lange wachtzin voor test", "phone-3")
        .await;
    assert_eq!(res.status(), 200);
    let other: String = res.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .into();

    let bytes = jpeg(800, 600, 31);
    // The same photo on two reports of one officer, the same file on a colleague's report and
    // on another team's, all recorded before any byte is sent.
    let (_, first) = report_with_photo(&app, &t, &bytes, "image/jpeg").await;
    let (_, second) = report_with_photo(&app, &t, &bytes, "image/jpeg").await;
    let (_, colleague) = report_with_photo(&app, &boa, &bytes, "image/jpeg").await;
    let (_, foreign) = report_with_photo(&app, &other, &bytes, "image/jpeg").await;

    // The upload URL answers HEAD from the moment the record exists, before any POST.
    assert_eq!(head(&app, &t, first).await, (0, bytes.len() as u64));
    assert_eq!(upload(&app, &t, first, &bytes).await.status(), 204);

    // The same id again: HEAD says everything is there.
    let len = bytes.len() as u64;
    assert_eq!(head(&app, &t, first).await, (len, len));
    // The same bytes under another id of this officer: HEAD completes it, nothing sent.
    let audit_before = app.count("audit_log").await;
    assert_eq!(photo(&app, &t, second).await["upload_state"], "pending");
    assert_eq!(head(&app, &t, second).await, (len, len));
    let p = photo(&app, &t, second).await;
    assert_eq!(p["upload_state"], "complete", "{p}");
    assert_eq!(p["format"], "jpeg");
    assert!(app.count("audit_log").await > audit_before);
    assert_eq!(head(&app, &t, second).await, (len, len), "and stays so");
    // A PATCH that comes anyway is answered at once with the full offset.
    let res = patch(&app, &t, second, 0, &bytes).await;
    assert_eq!(res.status(), 204);
    assert_eq!(res.headers()["upload-offset"], bytes.len().to_string());
    // The teamleider may read the officer's photo, and sees it complete.
    let lead = app.login("teamleider", "pc-2").await;
    assert_eq!(head(&app, &lead, second).await, (len, len));

    // A colleague of the same team who is not on that report, and an officer of another team,
    // learn nothing from the hash: they send the bytes (stored once), then it is complete.
    for (tok, pid) in [(&boa, colleague), (&other, foreign)] {
        assert_eq!(head(&app, tok, pid).await, (0, len));
        assert_eq!(photo(&app, tok, pid).await["upload_state"], "pending");
        let res = create_upload(&app, tok, pid, bytes.len()).await;
        assert_eq!(res.status(), 201);
        assert_eq!(res.headers()["upload-offset"], "0");
        assert_eq!(upload(&app, tok, pid, &bytes).await.status(), 204);
        assert_eq!(head(&app, tok, pid).await, (len, len));
    }
}

async fn refused_photos_get_an_answer_tus_clients_do_not_retry(b: Backend) {
    let app = TestApp::spawn(b).await;
    app.demo_accounts().await;
    let t = app.login("handhaver", "phone-1").await;
    let good = jpeg(64, 48, 41);

    // A photo record the sync refuses (its report is unknown): rejected, kept as a conflict.
    let refused = Uuid::new_v4();
    let now = chrono::Utc::now().timestamp_millis() - 60_000;
    let push = json!({ "changes": { "photos": { "created": [{
        "id": refused, "violation_id": Uuid::new_v4(), "sha256": sha_hex(&good),
        "size_bytes": good.len(), "mime": "image/jpeg", "captured_at": now,
        "lat": 52.4599, "lon": 4.6218, "accuracy_m": 5.0
    }], "updated": [], "deleted": [] } } });
    let res = app
        .post(&t, "/api/v1/sync/push", &push)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let pushed: Value = res.json().await.unwrap();
    assert_eq!(
        pushed["experimentalRejectedIds"]["photos"],
        json!([refused.to_string()]),
        "{pushed}"
    );
    // tus-js-client retries 409, 423 and anything not 4xx; tuspy never retries a creation.
    let res = create_upload(&app, &t, refused, good.len()).await;
    let p = assert_problem(res, 422, Some("Upload-Metadata.photo_id")).await;
    let detail = p["detail"].as_str().unwrap();
    assert!(detail.contains("refused"), "{p}");
    assert!(detail.contains("violation_id"), "says why: {p}");
    // Another team's user hears only "not known yet".
    let admin = app.login("beheerder", "pc-1").await;
    let res = app
        .post(
            &admin,
            "/api/v1/users",
            &json!({ "username": "boa.ijmuiden", "role": "handhaver", "team": "Team IJmuiden",
                     "password": "lange wachtzin voor test" }),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let res = app
        .login_response("boa.ijmuiden", "lange wachtzin voor test", "phone-3")
        .await;
    let other: String = res.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .into();
    assert_problem(
        create_upload(&app, &other, refused, good.len()).await,
        409,
        None,
    )
    .await;

    // A record that has not arrived yet stays retryable: the phone's sync brings it.
    assert_problem(
        create_upload(&app, &t, Uuid::new_v4(), good.len()).await,
        409,
        None,
    )
    .await;

    // Bytes that were refused: creating the upload again is refused, saying why ...
    let text =
        b"<html>dit is geen foto, maar een webpagina van dertig bytes of meer</html>".to_vec();
    let (_, failed) = report_with_photo(&app, &t, &text, "image/jpeg").await;
    assert_problem(upload(&app, &t, failed, &text).await, 415, None).await;
    assert_eq!(photo(&app, &t, failed).await["upload_state"], "failed");
    let p = assert_problem(
        create_upload(&app, &t, failed, text.len()).await,
        422,
        Some("Upload-Metadata.photo_id"),
    )
    .await;
    assert!(p["detail"].as_str().unwrap().contains("JPEG"), "{p}");
    assert_eq!(photo(&app, &t, failed).await["upload_state"], "failed");
    // ... until the app terminates it on purpose (other bytes for this record).
    let res = tus(&app, &t, "DELETE", &format!("/api/v1/uploads/{failed}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(photo(&app, &t, failed).await["upload_state"], "pending");
    assert_eq!(
        create_upload(&app, &t, failed, text.len()).await.status(),
        201
    );

    // Concatenation (tus-js-client's parallelUploads) is refused, not retried.
    for concat in ["partial", "final;/api/v1/uploads/a /api/v1/uploads/b"] {
        let res = tus(&app, &t, "POST", "/api/v1/uploads")
            .header("Upload-Length", good.len().to_string())
            .header("Upload-Concat", concat)
            .send()
            .await
            .unwrap();
        let p = assert_problem(res, 400, Some("Upload-Concat")).await;
        assert!(p["detail"].as_str().unwrap().contains("SHA-256"), "{p}");
    }
    let res = tus(&app, &t, "OPTIONS", "/api/v1/uploads")
        .send()
        .await
        .unwrap();
    assert!(
        !res.headers()["tus-extension"]
            .to_str()
            .unwrap()
            .contains("concatenation")
    );
}

/// An image whose decoding would take more memory than the budget of one derivative job
/// (`max_decode_bytes` at GET /api/v1/photos/limits) is refused when its upload ends, with a
/// 422 that names the limit, not accepted and failed later by the worker. A progressive
/// 4:4:4 JPEG of 4000×4000 is 94 KB but its decoder holds 96 MB of coefficients.
async fn an_image_over_the_decode_budget_is_refused_at_upload(b: Backend) {
    let app = TestApp::spawn(b).await;
    app.demo_accounts().await;
    let t = app.login("handhaver", "phone-1").await;
    let limits = app.get_json(&t, "/api/v1/photos/limits").await;
    let limit_mib = limits["max_decode_bytes"].as_u64().unwrap() / (1024 * 1024);
    let bomb = progressive_jpeg_bomb(4000, 4000, 1);
    assert!(bomb.len() < 200_000, "{} bytes", bomb.len());
    let (_, pid) = report_with_photo(&app, &t, &bomb, "image/jpeg").await;
    let p = assert_problem(upload(&app, &t, pid, &bomb).await, 422, Some("file")).await;
    let detail = p["detail"].as_str().unwrap();
    assert!(
        detail.contains("progressive JPEG")
            && detail.contains(&format!("the limit is {limit_mib} MiB")),
        "{p}"
    );
    assert_eq!(photo(&app, &t, pid).await["upload_state"], "failed");
    // The same kind of file within the budget is taken and derived.
    let small = progressive_jpeg_bomb(640, 480, 2);
    let (_, ok) = report_with_photo(&app, &t, &small, "image/jpeg").await;
    assert_eq!(upload(&app, &t, ok, &small).await.status(), 204);
    assert_eq!(derived(&app, &t, ok).await["derivative_state"], "done");
}

/// `jpeg` with an EXIF block whose Make is `make` (ASCII, as the file says it).
fn jpeg_with_make(make: &[u8]) -> Vec<u8> {
    let mut tiff = b"II*\0".to_vec();
    tiff.extend(8u32.to_le_bytes());
    tiff.extend(1u16.to_le_bytes());
    let count = make.len() as u32 + 1;
    tiff.extend(0x010Fu16.to_le_bytes());
    tiff.extend(2u16.to_le_bytes());
    tiff.extend(count.to_le_bytes());
    tiff.extend(26u32.to_le_bytes());
    tiff.extend(0u32.to_le_bytes());
    tiff.extend(make);
    tiff.push(0);
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend(tiff);
    let plain = jpeg(64, 48, 9);
    let mut out = plain[..2].to_vec();
    out.extend([0xFF, 0xE1]);
    out.extend(((app1.len() + 2) as u16).to_be_bytes());
    out.extend(app1);
    out.extend(&plain[2..]);
    out
}

/// EXIF text is the file's to choose: it is stored capped at 200 characters, without control
/// characters (a NUL inside would not fit PostgreSQL text), and the same on both databases.
async fn exif_text_is_capped_and_cleaned(b: Backend) {
    let app = TestApp::spawn(b).await;
    app.demo_accounts().await;
    let t = app.login("handhaver", "phone-1").await;
    let mut make = b"Ca\x01non\x07 ".to_vec();
    make.extend("é".repeat(2_500).as_bytes());
    let bytes = jpeg_with_make(&make);
    let (_, pid) = report_with_photo(&app, &t, &bytes, "image/jpeg").await;
    assert_eq!(upload(&app, &t, pid, &bytes).await.status(), 204);
    let p = photo(&app, &t, pid).await;
    let stored = p["exif"]["make"].as_str().unwrap_or_else(|| panic!("{p}"));
    assert_eq!(stored.chars().count(), 200, "{stored}");
    assert!(stored.starts_with("Canon é"), "{stored}");
    assert!(!stored.chars().any(char::is_control), "{stored}");
}

both!(
    an_interrupted_upload_resumes_and_is_stored_as_evidence,
    tus_checksums_are_sha1_and_sha256,
    already_stored_bytes_are_announced_on_head,
    refused_photos_get_an_answer_tus_clients_do_not_retry,
    bad_uploads_get_clear_answers_and_nothing_half_written,
    a_crashed_derivative_job_is_taken_again,
    an_image_over_the_decode_budget_is_refused_at_upload,
    exif_text_is_capped_and_cleaned,
);

fn corpus() -> Option<std::path::PathBuf> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/photos");
    if p.join("EXIF_SUMMARY.json").exists() {
        return Some(p);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("CI=true but the photo corpus ../shared/data/photos is missing");
    }
    thor_tests::skipped("need the photo corpus ../shared/data/photos");
    None
}

/// Every file of the real-world corpus, uploaded as a phone would: what the server stores and
/// derives matches what EXIF_SUMMARY.json says about the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_world_corpus_is_handled_as_its_summary_says() {
    let Some(dir) = corpus() else { return };
    let summary: Vec<Value> =
        serde_json::from_slice(&std::fs::read(dir.join("EXIF_SUMMARY.json")).unwrap()).unwrap();
    let app = TestApp::spawn(Backend::Sqlite).await;
    app.demo_accounts().await;
    let t = app.login("handhaver", "phone-1").await;
    for f in &summary {
        let name = f["file"].as_str().unwrap();
        let bytes = std::fs::read(dir.join(name)).unwrap();
        assert_eq!(sha_hex(&bytes), f["sha256"], "{name}");
        let mime = match f["format"].as_str().unwrap() {
            "PNG" => "image/png",
            _ => "image/jpeg",
        };
        let (_, pid) = report_with_photo(&app, &t, &bytes, mime).await;
        let res = upload(&app, &t, pid, &bytes).await;
        if f["format"] == "HEIF" {
            let p = assert_problem(res, 415, None).await;
            assert!(p["detail"].as_str().unwrap().contains("JPEG"), "{name}");
            continue;
        }
        assert_eq!(res.status(), 204, "{name}: {}", res.text().await.unwrap());
        let p = derived(&app, &t, pid).await;
        assert_eq!(p["upload_state"], "complete", "{name}");
        assert_eq!(p["width"], f["pixel_size"][0], "{name}");
        assert_eq!(p["height"], f["pixel_size"][1], "{name}");
        let exif = &p["exif"];
        if let Some(o) = f["orientation_tag"].as_u64() {
            assert_eq!(exif["orientation"], if o == 0 { 1 } else { o }, "{name}");
        }
        for k in ["make", "model"] {
            if let Some(v) = f[k].as_str() {
                assert_eq!(exif[k], v.trim(), "{name} {k}");
            }
        }
        if let (Some(lat), Some(lon)) = (f["gps_lat"].as_f64(), f["gps_lon"].as_f64()) {
            assert!(
                (exif["lat"].as_f64().unwrap() - lat).abs() < 1e-4,
                "{name}: {exif}"
            );
            assert!(
                (exif["lon"].as_f64().unwrap() - lon).abs() < 1e-4,
                "{name}: {exif}"
            );
            // Far from the report in Velsen: flagged for the reviewer, never refused.
            assert!(
                p["flags"]
                    .as_array()
                    .unwrap()
                    .contains(&json!("photo_gps_far")),
                "{name}"
            );
        }
        if f["pillow_decodes"] == true {
            assert_eq!(p["derivative_state"], "done", "{name}: {p}");
            let thumb = app
                .get(&t, &format!("/api/v1/photos/{pid}/thumbnail"))
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            let img = image::load_from_memory(&thumb).unwrap();
            let (w, h) = (
                f["pixel_size"][0].as_u64().unwrap(),
                f["pixel_size"][1].as_u64().unwrap(),
            );
            let turned = matches!(exif["orientation"].as_u64(), Some(5..=8));
            let (w, h) = if turned { (h, w) } else { (w, h) };
            if w != h {
                assert_eq!(img.width() > img.height(), w > h, "{name}: upright by EXIF");
            }
        } else {
            // Valid evidence that cannot be decoded whole: kept, with the reason.
            assert_eq!(p["upload_state"], "complete", "{name}");
            assert!(
                p["derivative_state"] == "failed" || p["derivative_state"] == "done",
                "{name}"
            );
        }
    }
}

/// A fresh bucket on the S3-compatible server of `THOR_TEST_S3` (moto in server mode, started
/// by .ci/run): (endpoint, bucket). `None` (said loudly) when it is not set; under CI a failure.
pub(crate) async fn s3_bucket() -> Option<(String, String)> {
    let endpoint = match std::env::var("THOR_TEST_S3") {
        Ok(e) if !e.is_empty() => e,
        _ => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!(
                    "CI=true but THOR_TEST_S3 is not set: the S3 photo store would not be tested"
                );
            }
            thor_tests::skipped(
                "need S3: set THOR_TEST_S3 (e.g. http://127.0.0.1:5005 with moto_server)",
            );
            return None;
        }
    };
    let bucket = format!("thor-test-{}", Uuid::new_v4().simple());
    // SAFETY of the test: the AWS variables are the same for every S3 test in this process.
    unsafe {
        std::env::set_var("AWS_ACCESS_KEY_ID", "test");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "test");
    }
    let res = reqwest::Client::new()
        .put(format!("{endpoint}/{bucket}"))
        .send()
        .await
        .expect("the S3 server answers");
    assert!(res.status().is_success(), "create bucket: {}", res.status());
    Some((endpoint, bucket))
}

/// A server on SQLite whose photo store is this S3 bucket.
pub(crate) async fn s3_app(endpoint: &str, bucket: &str) -> TestApp {
    let (ep, b2) = (endpoint.to_string(), bucket.to_string());
    TestApp::spawn_with(Backend::Sqlite, move |c| {
        c.s3_bucket = Some(b2);
        c.s3_endpoint = Some(ep);
        c.s3_region = "us-east-1".into();
    })
    .await
}

/// The S3 path against a real S3-compatible server (moto in server mode, started by .ci/run).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn photos_are_stored_in_s3_compatible_storage() {
    let Some((endpoint, bucket)) = s3_bucket().await else {
        return;
    };
    let app = s3_app(&endpoint, &bucket).await;
    app.demo_accounts().await;
    let t = app.login("handhaver", "phone-1").await;
    let bytes = jpeg(2000, 1500, 21);
    let (_, pid) = report_with_photo(&app, &t, &bytes, "image/jpeg").await;
    let half = bytes.len() / 2;
    assert_eq!(
        create_upload(&app, &t, pid, bytes.len()).await.status(),
        201
    );
    assert_eq!(patch(&app, &t, pid, 0, &bytes[..half]).await.status(), 204);
    assert_eq!(
        patch(&app, &t, pid, half, &bytes[half..]).await.status(),
        204
    );
    let p = derived(&app, &t, pid).await;
    assert_eq!(p["derivative_state"], "done", "{p}");
    // The object is in the bucket under its hash, straight from the S3 server.
    let key = format!("originals/{}/{}", &sha_hex(&bytes)[..2], sha_hex(&bytes));
    let direct = reqwest::Client::new()
        .get(format!("{endpoint}/{bucket}/{key}"))
        .send()
        .await
        .unwrap();
    assert_eq!(direct.status(), 200);
    assert_eq!(sha_hex(&direct.bytes().await.unwrap()), sha_hex(&bytes));
    let got = app
        .get(&t, &format!("/api/v1/photos/{pid}/original"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(got.len(), bytes.len());
    let thumb = app
        .get(&t, &format!("/api/v1/photos/{pid}/thumbnail"))
        .send()
        .await
        .unwrap();
    assert_eq!(thumb.status(), 200);
}
