use serde_json::{Value, json};
use thor_tests::{Backend, TestApp, assert_problem, both};
use uuid::Uuid;

/// A phone: its token, its sync cursor and its local copy of the reports.
struct Phone {
    token: String,
    cursor: i64,
    local: std::collections::HashMap<String, Value>,
}

impl Phone {
    async fn new(app: &TestApp, user: &str, device: &str) -> Phone {
        Phone {
            token: app.login(user, device).await,
            cursor: 0,
            local: Default::default(),
        }
    }

    fn get(&self, id: Uuid) -> Value {
        self.local
            .get(&id.to_string())
            .cloned()
            .unwrap_or_else(|| panic!("{id} is not on the phone"))
    }

    /// Pulls every page (continuing with `next_page`); returns the violations rows and deleted
    /// ids seen. A row in `created` is one the phone never had.
    async fn pull(&mut self, app: &TestApp) -> (Vec<Value>, Vec<String>, Value) {
        let mut rows = Vec::new();
        let mut deleted = Vec::new();
        let mut page: Option<String> = None;
        loop {
            let mut url = format!(
                "/api/v1/sync/pull?last_pulled_at={}&schema_version=1&limit=2",
                self.cursor
            );
            if let Some(t) = &page {
                url.push_str(&format!("&page_token={t}"));
            }
            let res = app.get(&self.token, &url).send().await.unwrap();
            assert_eq!(res.status(), 200);
            let body: Value = res.json().await.unwrap();
            let ts = body["timestamp"].as_i64().unwrap();
            assert!(ts > 0, "WatermelonDB needs a non-zero timestamp");
            assert!(ts >= self.cursor, "the cursor never goes back");
            let v = &body["changes"]["violations"];
            for r in v["created"].as_array().unwrap() {
                assert!(
                    !self.local.contains_key(r["id"].as_str().unwrap()),
                    "created is only for records the phone never had: {}",
                    r["id"]
                );
            }
            rows.extend(v["created"].as_array().unwrap().iter().cloned());
            rows.extend(v["updated"].as_array().unwrap().iter().cloned());
            deleted.extend(
                v["deleted"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|d| d.as_str().unwrap().to_string()),
            );
            if body["has_more"] != true {
                self.cursor = ts;
                for r in &rows {
                    self.local
                        .insert(r["id"].as_str().unwrap().to_string(), r.clone());
                }
                for d in &deleted {
                    self.local.remove(d);
                }
                return (rows, deleted, body);
            }
            page = Some(body["next_page"].as_str().expect("a next page").to_string());
        }
    }

    fn push(&self, app: &TestApp, changes: Value) -> reqwest::RequestBuilder {
        app.client
            .post(app.url(&format!("/api/v1/sync/push?last_pulled_at={}", self.cursor)))
            .bearer_auth(&self.token)
            .json(&json!({ "changes": changes }))
    }
}

fn raw(id: Uuid) -> Value {
    let now = chrono::Utc::now() - chrono::Duration::minutes(2);
    json!({
        "id": id.to_string(), "_status": "created", "_changed": "",
        "category": "afval", "feitcode": "H004", "observed_at": now.timestamp_millis(),
        "lat": 52.4599, "lon": 4.6218, "accuracy_m": 7, "location_source": "gps",
        "description": "zakken naast container", "outcome": "warning", "status": "concept",
        "officer_ids": "[]"
    })
}

async fn ok_push(p: &Phone, app: &TestApp, changes: Value) -> Value {
    let res = p.push(app, changes).send().await.unwrap();
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

async fn two_phones_create_edit_merge_and_conflict(b: Backend) {
    let app = TestApp::spawn(b).await;
    app.demo_accounts().await;
    let mut a = Phone::new(&app, "handhaver", "phone-a").await;
    let mut lead = Phone::new(&app, "teamleider", "phone-lead").await;
    let (_, _, first) = a.pull(&app).await;
    assert_eq!(
        first["changes"]["categories"]["created"]
            .as_array()
            .unwrap()
            .len(),
        4,
        "reference data on a full pull"
    );
    assert!(
        first["changes"]["team_members"]["created"]
            .as_array()
            .unwrap()
            .len()
            >= 3
    );
    // The areas carry their outlines, so the app draws the briefing's map offline.
    let areas = first["changes"]["areas"]["created"].as_array().unwrap();
    assert_eq!(areas.len(), 73, "Velsen's 10 wijken and 63 buurten");
    for a in areas {
        let shape = thor::geo::parse_shape(a["geometry"].as_str().unwrap()).unwrap();
        let full = app
            .state
            .reference
            .areas
            .get(a["id"].as_str().unwrap())
            .unwrap();
        use geo::Area;
        let (got, want) = (shape.unsigned_area(), full.shape.unsigned_area());
        assert!(
            (got - want).abs() / want < 0.02,
            "{}: the simplified outline keeps its area ({got} vs {want})",
            a["id"]
        );
    }
    let bytes: usize = areas
        .iter()
        .map(|a| a["geometry"].as_str().unwrap().len())
        .sum();
    assert!(bytes < 400_000, "the outlines weigh {bytes} bytes");

    // A creates two reports offline and pushes them.
    let (id1, id2) = (Uuid::new_v4(), Uuid::new_v4());
    let r = ok_push(
        &a,
        &app,
        json!({ "violations": { "created": [raw(id1), raw(id2)], "updated": [], "deleted": [] } }),
    )
    .await;
    assert_eq!(r["applied"], 2);
    // The lead pulls them.
    let (rows, _, _) = lead.pull(&app).await;
    let row1 = rows
        .iter()
        .find(|r| r["id"] == id1.to_string())
        .expect("lead sees the report")
        .clone();
    assert_eq!(row1["wijk_code"], "WK045301");
    assert!(
        row1["officer_ids"].is_string(),
        "lists travel as JSON strings"
    );
    let base = row1["server_rev"].as_i64().unwrap();
    a.pull(&app).await;

    // Different fields on both sides merge without conflict.
    let mut from_a = row1.clone();
    from_a["description"] = json!("zakken en een matras");
    let mut from_lead = row1.clone();
    from_lead["outcome"] = json!("removed");
    let r = ok_push(
        &lead,
        &app,
        json!({ "violations": { "updated": [from_lead] } }),
    )
    .await;
    assert_eq!(r["conflicts"], json!([]));
    let r = ok_push(&a, &app, json!({ "violations": { "updated": [from_a] } })).await;
    assert_eq!(r["conflicts"], json!([]), "{r}");
    let v: Value = app
        .get(&a.token, &format!("/api/v1/violations/{id1}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["description"], "zakken en een matras");
    assert_eq!(v["outcome"], "removed");

    // The same field on both sides: a conflict record, the last received value applied.
    let (rows, _, _) = a.pull(&app).await;
    let now1 = rows
        .iter()
        .find(|r| r["id"] == id1.to_string())
        .unwrap()
        .clone();
    let (rows_l, _, _) = lead.pull(&app).await;
    let now1_l = rows_l
        .iter()
        .find(|r| r["id"] == id1.to_string())
        .unwrap()
        .clone();
    assert_eq!(now1["server_rev"], now1_l["server_rev"]);
    let mut la = now1.clone();
    la["description"] = json!("versie A");
    let mut ll = now1_l.clone();
    ll["description"] = json!("versie teamleider");
    ok_push(&lead, &app, json!({ "violations": { "updated": [ll] } })).await;
    let r = ok_push(&a, &app, json!({ "violations": { "updated": [la] } })).await;
    let conflicts = r["conflicts"].as_array().unwrap();
    assert_eq!(conflicts.len(), 1, "{r}");
    assert_eq!(conflicts[0]["field"], "description");
    assert_eq!(conflicts[0]["applied"], "versie A");
    let open: Vec<Value> = app
        .get(&lead.token, "/api/v1/conflicts?status=open")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let c = open
        .iter()
        .find(|c| c["record_id"] == id1.to_string())
        .expect("the lead sees the conflict");
    assert_eq!(c["server_value"], "versie teamleider");
    assert_eq!(c["client_value"], "versie A");
    assert_eq!(c["base_value"], "zakken en een matras");
    // Pull reports open conflicts.
    let (_, _, body) = lead.pull(&app).await;
    assert!(body["conflicts_open"].as_u64().unwrap() >= 1);
    // A handhaver cannot resolve; the lead takes the other value, which syncs to phone A.
    let path = format!("/api/v1/conflicts/{}/resolve", c["id"].as_str().unwrap());
    assert_problem(
        app.post(&a.token, &path, &json!({"resolution": "take_other"}))
            .send()
            .await
            .unwrap(),
        403,
        None,
    )
    .await;
    let res = app
        .post(
            &lead.token,
            &path,
            &json!({"resolution": "take_other", "note": "teamleider heeft gelijk"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_problem(
        app.post(&lead.token, &path, &json!({"resolution": "take_other"}))
            .send()
            .await
            .unwrap(),
        409,
        None,
    )
    .await;
    let (rows, _, _) = a.pull(&app).await;
    let after = rows
        .iter()
        .find(|r| r["id"] == id1.to_string())
        .expect("the resolution syncs");
    assert_eq!(after["description"], "versie teamleider");
    assert!(after["server_rev"].as_i64().unwrap() > base);

    // Immutable evidence: a changed observed_at is kept as the server's and recorded.
    let mut moved = after.clone();
    moved["observed_at"] = json!(after["observed_at"].as_i64().unwrap() - 3_600_000);
    let r = ok_push(&a, &app, json!({ "violations": { "updated": [moved] } })).await;
    assert_eq!(r["conflicts"][0]["kind"], "not_writable");
    let v: Value = app
        .get(&a.token, &format!("/api/v1/violations/{id1}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        chrono::DateTime::parse_from_rfc3339(v["observed_at"].as_str().unwrap())
            .unwrap()
            .timestamp_millis(),
        after["observed_at"].as_i64().unwrap()
    );

    // Status follows the workflow's order: submitted by A, approved by the lead meanwhile → approved stays.
    a.pull(&app).await;
    let r2 = a.get(id2);
    let mut submit = r2.clone();
    submit["status"] = json!("submitted");
    ok_push(&a, &app, json!({ "violations": { "updated": [submit] } })).await;
    let res = app
        .patch(
            &lead.token,
            &format!("/api/v1/violations/{id2}"),
            &json!({"status": "approved"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let mut back = r2.clone();
    back["status"] = json!("concept");
    back["description"] = json!("nog even aanpassen");
    let r = ok_push(&a, &app, json!({ "violations": { "updated": [back] } })).await;
    // The report is final after review, so the edit is refused for this record alone.
    assert_eq!(
        r["experimentalRejectedIds"]["violations"],
        json!([id2.to_string()]),
        "{r}"
    );
    let v: Value = app
        .get(&a.token, &format!("/api/v1/violations/{id2}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["status"], "approved");
    app.stop().await;
}

async fn pushes_are_idempotent(b: Backend) {
    let app = TestApp::spawn(b).await;
    app.demo_accounts().await;
    let a = Phone::new(&app, "handhaver", "phone-a").await;
    let id = Uuid::new_v4();
    let changes = json!({ "violations": { "created": [raw(id)] } });
    let key = "push-1";
    let first: Value = a
        .push(&app, changes.clone())
        .header("idempotency-key", key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(first["applied"], 1);
    let seq = app.last_seq().await;
    // The answer was lost; the phone retries with the same key: the stored answer, nothing new.
    let again: Value = a
        .push(&app, changes.clone())
        .header("idempotency-key", key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(again, first);
    assert_eq!(app.last_seq().await, seq);
    // The same key with another body is a client bug.
    let other = json!({ "violations": { "created": [raw(Uuid::new_v4())] } });
    assert_problem(
        a.push(&app, other)
            .header("idempotency-key", key)
            .send()
            .await
            .unwrap(),
        422,
        Some("Idempotency-Key"),
    )
    .await;
    // Without a key, a re-push of the same records changes nothing and allocates no sequence.
    let r = ok_push(&a, &app, changes.clone()).await;
    assert_eq!(
        (r["applied"].as_u64(), r["unchanged"].as_u64()),
        (Some(0), Some(1))
    );
    assert_eq!(app.last_seq().await, seq, "no echo churn");
    assert_eq!(app.count("violation").await, 1);
    app.stop().await;
}

async fn deletes_propagate_and_old_cursors_reset(b: Backend) {
    let app = TestApp::spawn(b).await;
    app.demo_accounts().await;
    let mut a = Phone::new(&app, "handhaver", "phone-a").await;
    let mut c = Phone::new(&app, "handhaver", "phone-c").await;
    let id = Uuid::new_v4();
    ok_push(&a, &app, json!({ "violations": { "created": [raw(id)] } })).await;
    let (rows, _, _) = c.pull(&app).await;
    let row = rows
        .iter()
        .find(|r| r["id"] == id.to_string())
        .unwrap()
        .clone();
    a.pull(&app).await;
    let r = ok_push(
        &a,
        &app,
        json!({ "violations": { "deleted": [id.to_string()] } }),
    )
    .await;
    assert_eq!(r["applied"], 1);
    let (_, deleted, _) = c.pull(&app).await;
    assert_eq!(deleted, vec![id.to_string()]);
    // C had edited it offline: the tombstone stays and the edit is kept as a conflict.
    let mut edit = row.clone();
    edit["description"] = json!("te laat");
    let r = ok_push(&c, &app, json!({ "violations": { "updated": [edit] } })).await;
    assert_eq!(r["conflicts"][0]["kind"], "edit_on_deleted");
    assert_problem(
        app.get(&c.token, &format!("/api/v1/violations/{id}"))
            .send()
            .await
            .unwrap(),
        404,
        None,
    )
    .await;
    // Deleting a missing record is a no-op.
    let r = ok_push(
        &a,
        &app,
        json!({ "violations": { "deleted": [Uuid::new_v4().to_string()] } }),
    )
    .await;
    assert_eq!(r["unchanged"], 1);
    // Past the tombstone horizon, an old cursor gets 410 and a full pull works.
    let old = 1;
    thor::sync::purge(
        &app.state.db,
        chrono::Duration::zero(),
        chrono::Utc::now() + chrono::Duration::seconds(1),
    )
    .await
    .unwrap();
    let res = app
        .get(&c.token, &format!("/api/v1/sync/pull?last_pulled_at={old}"))
        .send()
        .await
        .unwrap();
    let body = assert_problem(res, 410, None).await;
    assert_eq!(body["reset"], true);
    let res = app
        .get(&c.token, "/api/v1/sync/pull?last_pulled_at=0")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    app.stop().await;
}

async fn bad_records_are_refused_alone_and_clocks_are_evidence(b: Backend) {
    let app = TestApp::spawn(b).await;
    app.demo_accounts().await;
    let a = Phone::new(&app, "handhaver", "phone-a").await;
    let good = Uuid::new_v4();
    let bad = Uuid::new_v4();
    let odd = Uuid::new_v4();
    let mut bad_raw = raw(bad);
    bad_raw["feitcode"] = json!("Z999");
    let mut odd_raw = raw(odd);
    odd_raw["observed_at"] = json!("yesterday");
    let device_time = chrono::Utc::now().timestamp_millis() - 20 * 60 * 1000;
    let res = a
        .push(&app, json!({ "violations": { "created": [raw(good), bad_raw, odd_raw] }, "photos_v9": { "created": [{"id": "x"}] } }))
        .header("x-device-time", device_time.to_string())
        .header("x-app-version", "1.4.2")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let r: Value = res.json().await.unwrap();
    assert_eq!(r["applied"], 1);
    let mut rejected: Vec<String> = r["experimentalRejectedIds"]["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    rejected.sort();
    let mut expected = vec![bad.to_string(), odd.to_string()];
    expected.sort();
    assert_eq!(rejected, expected);
    assert!(
        r["rejected"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["errors"][0]["field"] == "feitcode")
    );
    assert!(
        r["rejected"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["errors"][0]["field"] == "observed_at")
    );
    assert_eq!(r["ignored_tables"], json!(["photos_v9"]));
    // The phone's clock was 20 minutes behind: the report is flagged for the reviewer.
    let v: Value = app
        .get(&a.token, &format!("/api/v1/violations/{good}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["flags"], json!(["clock_offset"]));
    assert_eq!(
        app.count("sync_device WHERE app_version = '1.4.2'").await,
        1
    );
    app.stop().await;
}

async fn a_record_that_leaves_the_window_arrives_as_a_delete(b: Backend) {
    let app = TestApp::spawn(b).await;
    app.demo_accounts().await;
    let boa = app.login("handhaver", "desk").await;
    let mut a = Phone::new(&app, "handhaver", "phone-a").await;
    // A report observed 20 days ago is outside the 14-day window: not pulled.
    let old = Uuid::new_v4();
    let mut body = thor_tests::report(old);
    let t = (chrono::Utc::now() - chrono::Duration::days(20)).to_rfc3339();
    body["observed_at"] = json!(t);
    body["location"]["fix_time"] = json!(t);
    assert_eq!(
        app.post(&boa, "/api/v1/violations", &body)
            .send()
            .await
            .unwrap()
            .status(),
        201
    );
    let (rows, _, _) = a.pull(&app).await;
    assert!(!rows.iter().any(|r| r["id"] == old.to_string()));
    // Pretend the device's last pull was 30 days ago: the report has since left its window.
    let backend = app.state.db.backend();
    sea_orm::ConnectionTrait::execute_raw(
        &app.state.db.write,
        sea_orm::Statement::from_sql_and_values(
            backend,
            if backend == sea_orm::DbBackend::Postgres {
                "UPDATE sync_device SET window_start = $1 WHERE device_id = 'phone-a'"
            } else {
                "UPDATE sync_device SET window_start = ? WHERE device_id = 'phone-a'"
            },
            [(chrono::Utc::now() - chrono::Duration::days(30)).into()],
        ),
    )
    .await
    .unwrap();
    let (_, deleted, _) = a.pull(&app).await;
    assert_eq!(deleted, vec![old.to_string()]);
    app.stop().await;
}

both!(
    two_phones_create_edit_merge_and_conflict,
    pushes_are_idempotent,
    deletes_propagate_and_old_cursors_reset,
    bad_records_are_refused_alone_and_clocks_are_evidence,
    a_record_that_leaves_the_window_arrives_as_a_delete,
);
