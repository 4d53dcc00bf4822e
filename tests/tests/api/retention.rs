//! Retention walked with an injected clock: records of each kind go active → restricted →
//! removed → destroyed as the terms say, on SQLite and PostgreSQL and with photos on disk and in
//! S3. At each stage the matrix of who still reads the report (list, detail, photo, archive) is
//! checked; after destruction the rows are gone from every table and the photo bytes from the
//! store; a legal hold stops the walk, and a changed term takes effect at the next run.

use chrono::{Duration, Utc};
use serde_json::{Value, json};
use thor::retention::Terms;
use thor::retention::run::{Change, Quiet, Report, Run};
use thor_tests::{Backend, TestApp, USER_PASSWORD, assert_problem, avg_report, both};
use uuid::Uuid;

use crate::photos::{derived, jpeg, report_with_photo, s3_app, s3_bucket, sha_hex, upload};

async fn run(app: &TestApp, terms: &Terms, days: i64, dry_run: bool) -> Report {
    Run {
        db: &app.state.db,
        blobs: &app.state.photos.blobs,
        reference: &app.state.reference,
        terms,
        as_of: Utc::now() + Duration::days(days),
        dry_run,
        actor: "test",
    }
    .execute(&Quiet)
    .await
    .expect("retention run")
}

/// A run `days` ahead, after a dry run that must have predicted exactly what it did.
async fn walk(app: &TestApp, terms: &Terms, days: i64) -> Report {
    let dry = run(app, terms, days, true).await;
    let wet = run(app, terms, days, false).await;
    assert!(wet.skipped.is_none(), "{wet:?}");
    let strip = |r: &Report| -> Vec<Change> {
        r.changes
            .iter()
            .map(|c| Change {
                photos: 0,
                ..c.clone()
            })
            .collect()
    };
    assert_eq!(strip(&dry), strip(&wet), "the dry run predicted the run");
    // Repeating the run changes nothing.
    let again = run(app, terms, days, false).await;
    assert!(
        again.changes.iter().all(|c| c.total() == 0),
        "a second run changed {:?}",
        again.changes
    );
    wet
}

/// Rows of `table` whose `col` is `value` (bound, so a UUID column compares as the backend
/// stores it).
async fn rows_where(
    app: &TestApp,
    table: &str,
    col: &str,
    value: impl Into<sea_orm::Value>,
) -> i64 {
    use sea_orm::ConnectionTrait;
    use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query};
    let q = Query::select()
        .expr_as(Expr::col(Alias::new(col)).count(), "n")
        .from(Alias::new(table))
        .and_where(Expr::col(Alias::new(col)).eq(value.into()))
        .to_owned();
    let row = app.state.db.read.query_one(&q).await.unwrap().unwrap();
    row.try_get::<i64>("", "n").unwrap()
}

fn change<'a>(r: &'a Report, key: &str) -> &'a Change {
    r.changes.iter().find(|c| c.key == key).expect(key)
}

async fn status(app: &TestApp, t: &str, path: &str) -> u16 {
    app.get(t, path).send().await.unwrap().status().as_u16()
}

/// Who reads the report `rid` (photo `pid`) how, for each caller: (list, detail, photo,
/// archive read with a purpose).
async fn matrix(app: &TestApp, callers: &[(&str, &str)], rid: Uuid, pid: Uuid) -> Vec<String> {
    let mut out = Vec::new();
    for (name, t) in callers {
        let list: Value = app
            .get(t, "/api/v1/violations?limit=500")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap_or(Value::Null);
        let listed = list["items"]
            .as_array()
            .is_some_and(|a| a.iter().any(|v| v["id"] == rid.to_string()));
        let detail = status(app, t, &format!("/api/v1/violations/{rid}")).await;
        let photo = status(app, t, &format!("/api/v1/photos/{pid}")).await;
        let archive = status(
            app,
            t,
            &format!("/api/v1/archief/violations/{rid}?doel=klacht%202026-114%20over%20boete"),
        )
        .await;
        out.push(format!(
            "{name}: list {} detail {detail} photo {photo} archive {archive}",
            if listed { "yes" } else { "no" }
        ));
    }
    out
}

async fn stages_walk(app: TestApp, photo_on_disk: bool) {
    app.demo_accounts().await;
    let hh = app.login("handhaver", "phone-hh").await;
    let jb = app.login("jeugdboa", "phone-jb").await;
    let lead = app.login("teamleider", "pc-lead").await;
    let admin = app.login("beheerder", "admin").await;
    let res = app
        .post(
            &admin,
            "/api/v1/users",
            &json!({ "username": "privacy.fg", "role": "fg", "password": USER_PASSWORD }),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    let fg = app
        .login_with("privacy.fg", USER_PASSWORD, "fg-laptop")
        .await;
    let callers = [
        ("handhaver", hh.as_str()),
        ("teamleider+Wpg", lead.as_str()),
        ("beheerder", admin.as_str()),
        ("fg", fg.as_str()),
    ];

    // A Wpg report with a photo, an AVG report, an incident, a youth group, person and
    // sighting, and a round with its GPS track.
    let bytes = jpeg(800, 600, 31);
    let sha = sha_hex(&bytes);
    let (rid, pid) = report_with_photo(&app, &hh, &bytes, "image/jpeg").await;
    assert_eq!(upload(&app, &hh, pid, &bytes).await.status(), 204);
    assert_eq!(derived(&app, &hh, pid).await["derivative_state"], "done");
    let avg = Uuid::new_v4();
    let res = app
        .post(
            &hh,
            "/api/v1/violations",
            &avg_report(avg, "Zakken bij de container"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let start = Utc::now() - Duration::hours(1);
    let incident = Uuid::new_v4();
    let res = app
        .post(&hh, "/api/v1/incidents", &json!({
            "id": incident, "kind": "aggression", "occurred_at": start.to_rfc3339(), "lat": 52.4599, "lon": 4.6218,
            "description": "Bestuurder scheldt en duwt"
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    let group = Uuid::new_v4();
    let res = app
        .post(
            &jb,
            "/api/v1/youth/groups",
            &json!({
                "id": group, "name": "Groep Plein 1945", "duiding": "hinderlijk",
                "spots": [{ "name": "Plein 1945", "lat": 52.4581, "lon": 4.6262 }]
            }),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    let person = Uuid::new_v4();
    let res = app
        .post(
            &jb,
            "/api/v1/youth/persons",
            &json!({
                "id": person, "group_id": group, "name": "J. Jansen", "date_of_birth": "2010-04-01"
            }),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    let observation = Uuid::new_v4();
    let res = app
        .post(
            &jb,
            "/api/v1/youth/observations",
            &json!({
                "id": observation, "group_id": group, "observed_at": start.to_rfc3339(),
                "lat": 52.4581, "lon": 4.6262, "size_estimate": 6
            }),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    let round = Uuid::new_v4();
    let res = app
        .post(&hh, "/api/v1/rounds", &json!({
            "id": round, "name": "Rondje haven", "status": "started", "ad_hoc": true, "started_at": start.to_rfc3339()
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    let t0 = start.timestamp_millis();
    // Three fixes from before the round began (the officer on the way to work), then twenty
    // of the round: only the round's are stored.
    let points: Vec<Value> = (-3..20)
        .map(|i| {
            let t = if i < 0 {
                t0 - 30 * 60_000 + i64::from(i) * 1000
            } else {
                t0 + i64::from(i) * 10_000
            };
            json!([52.4599 + f64::from(i) * 0.0001, 4.6218, t, 5.0, null])
        })
        .collect();
    let segment = Uuid::new_v4();
    let res = app
        .post(
            &hh,
            "/api/v1/sync/push?last_pulled_at=0",
            &json!({ "changes": { "track_segments": { "created": [{
                "id": segment, "round_id": round, "started_at": t0,
                "points": Value::Array(points).to_string()
            }], "updated": [], "deleted": [] } } }),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let pushed: Value = res.json().await.unwrap();
    assert_eq!(pushed["experimentalRejectedIds"], json!({}), "{pushed}");
    let stored = app
        .get_json(&hh, &format!("/api/v1/track-segments/{segment}"))
        .await;
    assert_eq!(
        stored["points"].as_array().map(Vec::len),
        Some(20),
        "{stored}"
    );
    let stats = app
        .get_json(&hh, &format!("/api/v1/rounds/{round}/stats"))
        .await;
    assert_eq!(stats["points_used"], 20, "{stats}");
    let original = thor::photos::blob::BlobStore::original_key(&sha);
    assert!(app.state.photos.blobs.exists(&original).await.unwrap());
    if photo_on_disk {
        let file = app
            .state
            .config
            .data_dir
            .join("photos")
            .join(original.to_string());
        assert!(file.exists(), "{file:?}");
    }

    let terms = Terms::parse("", 14).unwrap();
    // Today everything is in daily use and a run changes nothing.
    let now = walk(&app, &terms, 0).await;
    assert!(
        now.changes.iter().all(|c| c.total() == 0),
        "{:?}",
        now.changes
    );
    assert_eq!(
        matrix(&app, &callers, rid, pid).await,
        [
            "handhaver: list yes detail 200 photo 200 archive 404",
            "teamleider+Wpg: list yes detail 200 photo 200 archive 404",
            "beheerder: list yes detail 200 photo 200 archive 404",
            "fg: list no detail 404 photo 404 archive 404",
        ]
    );

    // After 100 days the raw fixes are gone; the round and its statistics stay.
    let r = walk(&app, &terms, 100).await;
    assert_eq!(change(&r, "track_segment").destroyed, 1, "{r:?}");
    assert_eq!(change(&r, "patrol_round").destroyed, 0);
    assert_eq!(app.count("track_segment").await, 0);
    let kept = app
        .get_json(&hh, &format!("/api/v1/rounds/{round}/stats"))
        .await;
    assert_eq!(kept, stats, "the statistics outlive the fixes");

    // A lead holds the incident (an objection is pending).
    let res = app
        .post(&lead, "/api/v1/holds", &json!({
            "record_type": "incidents", "record_id": incident, "reason": "bezwaar 2026-114 loopt"
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    let held: Value = res.json().await.unwrap();
    // The lead's briefing lists it; an officer's does not.
    let today = thor::demo::today();
    let b = app
        .get_json(&lead, &format!("/api/v1/briefing?date={today}"))
        .await;
    assert_eq!(
        b["holds"][0]["reason"], "bezwaar 2026-114 loopt",
        "{}",
        b["holds"]
    );
    assert_eq!(b["holds"][0]["record_type"], "incidents");
    let b = app
        .get_json(&hh, &format!("/api/v1/briefing?date={today}"))
        .await;
    assert_eq!(b["holds"], json!([]));
    let res = app
        .post(
            &hh,
            "/api/v1/holds",
            &json!({
                "record_type": "incidents", "record_id": incident, "reason": "ik wil dit houden"
            }),
        )
        .send()
        .await
        .unwrap();
    assert_problem(res, 403, None).await;
    let res = app
        .post(
            &lead,
            "/api/v1/holds",
            &json!({
                "record_type": "incidents", "record_id": incident, "reason": "x"
            }),
        )
        .send()
        .await
        .unwrap();
    assert_problem(res, 422, Some("reason")).await;

    // After a year and a month: the Wpg records are restricted; the round (AVG, one year) is
    // destroyed; the AVG report (two years) is still in use.
    let r = walk(&app, &terms, 400).await;
    assert_eq!(change(&r, "violation.wpg").to_restricted, 1, "{r:?}");
    assert_eq!(change(&r, "violation.avg").total(), 0);
    assert_eq!(change(&r, "incident").to_restricted, 0, "held");
    assert_eq!(change(&r, "incident").held, 1);
    assert_eq!(change(&r, "youth_person").to_restricted, 1);
    assert_eq!(change(&r, "youth_group").to_restricted, 1);
    assert_eq!(change(&r, "youth_observation").to_restricted, 1);
    assert_eq!(
        status(
            &app,
            &jb,
            &format!("/api/v1/youth/observations/{observation}")
        )
        .await,
        404
    );
    assert_eq!(change(&r, "patrol_round").destroyed, 1);
    assert_eq!(app.count("patrol_round").await, 0);
    assert_eq!(
        app.count("round_stats").await,
        0,
        "kept statistics go with their round"
    );
    assert_eq!(
        matrix(&app, &callers, rid, pid).await,
        [
            "handhaver: list no detail 404 photo 404 archive 404",
            "teamleider+Wpg: list no detail 404 photo 404 archive 200",
            "beheerder: list no detail 404 photo 404 archive 404",
            "fg: list no detail 404 photo 404 archive 200",
        ]
    );
    // The AVG report is still listed; the restricted one is out of the briefing too.
    let list = app.get_json(&hh, "/api/v1/violations?limit=500").await;
    assert!(
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["id"] == avg.to_string())
    );
    let person_status = status(&app, &jb, &format!("/api/v1/youth/persons/{person}")).await;
    assert_eq!(person_status, 404);
    // The archive read needs a purpose, and is logged with it.
    let res = app
        .get(
            &lead,
            &format!("/api/v1/archief/violations/{rid}?doel=kort"),
        )
        .send()
        .await
        .unwrap();
    assert_problem(res, 422, Some("doel")).await;
    let a = app
        .get_json(
            &lead,
            &format!("/api/v1/archief/violations/{rid}?doel=klacht%202026-114%20over%20boete"),
        )
        .await;
    assert_eq!(a["stage"], "restricted");
    assert_eq!(a["record"]["plate"], "12ABC3", "{a}");
    assert_eq!(a["photos"][0]["sha256"], sha);
    assert!(
        app.scalar(
            "SELECT COUNT(*) AS n FROM audit_log WHERE action = 'read_archived' \
             AND reason = 'klacht 2026-114 over boete'"
        )
        .await
            >= 2
    );
    assert!(rows_where(&app, "audit_log", "record_id", rid.to_string()).await > 0);

    // A longer term takes effect at the next run: back in daily use, and restricted again.
    let longer = Terms::parse("wpg=500/1825/3650", 14).unwrap();
    let r = walk(&app, &longer, 400).await;
    assert_eq!(change(&r, "violation.wpg").to_active, 1, "{r:?}");
    assert_eq!(
        status(&app, &hh, &format!("/api/v1/violations/{rid}")).await,
        200
    );
    walk(&app, &terms, 400).await;

    // After five years: removed, for the fg alone.
    let r = walk(&app, &terms, 1900).await;
    assert_eq!(change(&r, "violation.wpg").to_removed, 1, "{r:?}");
    assert_eq!(change(&r, "violation.avg").destroyed, 1);
    assert_eq!(change(&r, "incident").held, 1);
    assert_eq!(
        matrix(&app, &callers, rid, pid).await,
        [
            "handhaver: list no detail 404 photo 404 archive 404",
            "teamleider+Wpg: list no detail 404 photo 404 archive 404",
            "beheerder: list no detail 404 photo 404 archive 404",
            "fg: list no detail 404 photo 404 archive 200",
        ]
    );
    // Held, the incident stayed where it was: in daily use, read where its team reads it.
    assert_eq!(
        status(&app, &lead, &format!("/api/v1/incidents/{incident}")).await,
        200
    );

    // What destruction must remove is there before it (so the checks after it can fail).
    assert_eq!(
        rows_where(&app, "violation_officer", "violation_id", rid).await,
        1
    );
    assert!(rows_where(&app, "record_history", "record_id", pid.to_string()).await > 0);
    assert_eq!(rows_where(&app, "youth_person", "id", person).await, 1);

    // After ten years: destroyed, photo bytes and all; the held incident stays.
    let r = walk(&app, &terms, 3700).await;
    assert_eq!(change(&r, "violation.wpg").destroyed, 1, "{r:?}");
    assert_eq!(change(&r, "violation.wpg").photos, 1);
    assert_eq!(change(&r, "youth_person").destroyed, 1);
    assert_eq!(change(&r, "youth_observation").destroyed, 1);
    assert_eq!(change(&r, "youth_group").destroyed, 1);
    assert_eq!(change(&r, "incident").destroyed, 0);
    for (table, col) in [
        ("violation", "id"),
        ("photo", "violation_id"),
        ("photo", "id"),
        ("violation_officer", "violation_id"),
    ] {
        let id = if table == "photo" && col == "id" {
            pid
        } else {
            rid
        };
        assert_eq!(rows_where(&app, table, col, id).await, 0, "{table}");
    }
    assert_eq!(rows_where(&app, "youth_person", "id", person).await, 0);
    assert_eq!(
        rows_where(&app, "youth_observation", "id", observation).await,
        0
    );
    assert_eq!(rows_where(&app, "youth_group", "id", group).await, 0);
    for id in [rid, pid, person] {
        for table in ["record_history", "sync_conflict"] {
            assert_eq!(
                rows_where(&app, table, "record_id", id.to_string()).await,
                0,
                "{table} {id}"
            );
        }
    }
    assert!(
        !app.state.photos.blobs.exists(&original).await.unwrap(),
        "the original is gone"
    );
    for d in [
        thor::photos::blob::Derivative::Thumbnail,
        thor::photos::blob::Derivative::Preview,
    ] {
        let key = thor::photos::blob::BlobStore::derivative_key(&sha, d);
        assert!(!app.state.photos.blobs.exists(&key).await.unwrap(), "{key}");
    }
    if photo_on_disk {
        let file = app
            .state
            .config
            .data_dir
            .join("photos")
            .join(original.to_string());
        assert!(!file.exists(), "{file:?}");
    }
    let kept = rows_where(&app, "destruction_record", "record_id", rid).await;
    assert_eq!(kept, 1, "a destruction record is what remains");
    assert_eq!(
        matrix(&app, &callers, rid, pid).await,
        [
            "handhaver: list no detail 404 photo 404 archive 404",
            "teamleider+Wpg: list no detail 404 photo 404 archive 404",
            "beheerder: list no detail 404 photo 404 archive 404",
            "fg: list no detail 404 photo 404 archive 404",
        ]
    );
    assert_eq!(app.count("incident").await, 1, "the hold stopped the walk");

    // The hold is lifted: the next run destroys the incident.
    let res = app
        .post(
            &lead,
            &format!("/api/v1/holds/{}/lift", held["id"].as_str().unwrap()),
            &json!({ "reason": "bezwaar afgehandeld" }),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let r = walk(&app, &terms, 3700).await;
    assert_eq!(change(&r, "incident").destroyed, 1, "{r:?}");
    assert_eq!(app.count("incident").await, 0);
    let holds = app.get_json(&lead, "/api/v1/holds?all=true").await;
    assert_eq!(holds[0]["lift_reason"], "bezwaar afgehandeld");
    // The privacy officer searches the log for the record; others may not.
    let page = app
        .get_json(
            &fg,
            &format!("/api/v1/audit?action=read_archived&record_id={rid}"),
        )
        .await;
    let items = page["items"].as_array().expect("items");
    assert!(items.len() >= 2, "{page}");
    assert_eq!(items[0]["reason"], "klacht 2026-114 over boete");
    assert_eq!(items[0]["record_type"], "violations");
    let page = app.get_json(&fg, "/api/v1/audit?limit=1").await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert!(page["next_after"].is_i64(), "{page}");
    assert_problem(
        app.get(&lead, "/api/v1/audit").send().await.unwrap(),
        403,
        None,
    )
    .await;
    assert_problem(
        app.get(&fg, "/api/v1/audit?limit=0").send().await.unwrap(),
        422,
        Some("limit"),
    )
    .await;
    // The same search on the fg's page, after a form login that lands there.
    let (browser, cookie, landed) = app.page_login("privacy.fg", USER_PASSWORD).await;
    assert_eq!(landed, "/audit");
    let res = browser
        .get(app.url(&format!(
            "/audit?action=read_archived&record_id={rid}&from=&to="
        )))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(html.contains("klacht 2026-114 over boete"), "{html}");
    let res = browser
        .get(app.url("/audit?from=gisteren"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert!(res.text().await.unwrap().contains("Vanaf: een dag als"));
    assert_eq!(status(&app, &hh, "/audit").await, 403);

    // The auditor's report over the period says what happened.
    let report = thor::audit::report::build(
        &app.state.db.read,
        Utc::now() - Duration::days(1),
        Utc::now() + Duration::days(1),
    )
    .await
    .unwrap();
    assert_eq!(
        report.destroyed.get("violations"),
        Some(&2),
        "{:?}",
        report.destroyed
    );
    assert_eq!(report.destroyed.get("incidents"), Some(&1));
    assert_eq!(
        (report.holds_placed, report.holds_lifted, report.holds_open),
        (1, 1, 0)
    );
    assert!(report.archive_reads.len() >= 3);
    assert!(report.retention_runs.len() >= 7);
    let by = |u: &str| {
        report
            .authorisations
            .iter()
            .find(|a| a.username == u)
            .map(|a| a.by)
    };
    assert_eq!(by("teamleider"), Some("authorisation"));
    assert_eq!(by("handhaver"), Some("appointment"));
    assert_eq!(by("beheerder"), None);
    let md = thor::audit::report::markdown(&report);
    assert!(md.contains("- violations: 2"), "{md}");
    assert!(md.contains("klacht 2026-114 over boete"), "{md}");

    // Each run is on record, and the audit chain still holds.
    assert!(app.count("retention_run").await >= 7);
    thor::audit::chain::seal(&app.state.db.write).await.unwrap();
    let verdict = thor::audit::chain::verify(&app.state.db.read, None)
        .await
        .unwrap();
    assert!(verdict.holds(), "{verdict}");
}

async fn records_walk_every_stage(b: Backend) {
    stages_walk(TestApp::spawn(b).await, true).await;
}

both!(records_walk_every_stage);

/// The same walk with the photos in S3 (moto): the object is deleted from the bucket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_walk_every_stage_with_photos_in_s3() {
    let Some((endpoint, bucket)) = s3_bucket().await else {
        return;
    };
    stages_walk(s3_app(&endpoint, &bucket).await, false).await;
}

/// One run at a time across instances: while another holder's lease is unexpired a run skips
/// and changes nothing; once it expires (a killed instance) the next run takes over.
async fn one_run_at_a_time(b: Backend) {
    let app = TestApp::spawn(b).await;
    let terms = Terms::parse("", 14).unwrap();
    let db = &app.state.db.write;
    assert!(
        thor::retention::run::take_lease(db, "other instance", Duration::minutes(10))
            .await
            .unwrap()
    );
    assert!(
        !thor::retention::run::take_lease(db, "a third", Duration::minutes(10))
            .await
            .unwrap()
    );
    let r = run(&app, &terms, 0, false).await;
    assert!(r.skipped.is_some(), "{r:?}");
    assert_eq!(app.count("retention_run").await, 0);
    // The other instance dies; its lease runs out.
    assert!(
        thor::retention::run::take_lease(db, "other instance", Duration::seconds(-1))
            .await
            .unwrap()
    );
    let r = run(&app, &terms, 0, false).await;
    assert!(r.skipped.is_none(), "{r:?}");
    assert_eq!(app.count("retention_run").await, 1);
}

both!(one_run_at_a_time);
