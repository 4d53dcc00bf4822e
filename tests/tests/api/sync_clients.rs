//! What real sync clients need and once got stuck on: page tokens that always end (with
//! `migration`, after a purge), no conflict records for a phone's own edits, an edit and a delete
//! that meet in either order, `created` only for records the phone never had, per-table pulls,
//! the turbo first pull, merged state in push answers and the change stream.

use std::collections::HashSet;

use serde_json::{Value, json};
use thor_tests::{Backend, TestApp, both, pulled_rows};
use uuid::Uuid;

fn report(id: Uuid, minutes_ago: i64) -> Value {
    let at = chrono::Utc::now() - chrono::Duration::minutes(minutes_ago);
    json!({
        "id": id.to_string(), "_status": "created", "_changed": "",
        "category": "afval", "feitcode": "H004", "observed_at": at.timestamp_millis(),
        "lat": 52.4599, "lon": 4.6218, "accuracy_m": 7, "location_source": "gps",
        "description": "zakken naast container", "outcome": "warning", "status": "concept",
        "officer_ids": "[]", "server_rev": null, "base_rev": null
    })
}

async fn push(app: &TestApp, token: &str, cursor: i64, changes: Value) -> Value {
    let res = app
        .post(
            token,
            &format!("/api/v1/sync/push?last_pulled_at={cursor}"),
            &json!({ "changes": changes }),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

/// Every page of a pull, continued with `next_page`; `extra` is added to the first request.
/// Returns the pages; panics after 1,000 pages (a pull that never ends).
async fn pull_pages(app: &TestApp, token: &str, cursor: i64, extra: &str) -> Vec<Value> {
    pull_paged_by(app, token, cursor, extra, 3).await
}

async fn pull_paged_by(
    app: &TestApp,
    token: &str,
    cursor: i64,
    extra: &str,
    limit: u64,
) -> Vec<Value> {
    let mut pages = Vec::new();
    let mut next: Option<String> = None;
    for _ in 0..1000 {
        let url = match &next {
            Some(t) => format!("/api/v1/sync/pull?page_token={t}&limit={limit}"),
            None => format!("/api/v1/sync/pull?last_pulled_at={cursor}&limit={limit}{extra}"),
        };
        let res = app.get(token, &url).send().await.unwrap();
        assert_eq!(res.status(), 200, "{url}: {}", res.text().await.unwrap());
        let page: Value = res.json().await.unwrap();
        let more = page["has_more"] == true;
        next = page["next_page"].as_str().map(str::to_string);
        pages.push(page);
        if !more {
            return pages;
        }
        assert!(next.is_some(), "has_more without next_page");
    }
    panic!("a paged pull did not end after 1,000 pages");
}

fn ids(pages: &[Value], table: &str) -> Vec<String> {
    pages
        .iter()
        .flat_map(|p| pulled_rows(p, table))
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

async fn conflicts_of(app: &TestApp, lead: &str) -> Vec<Value> {
    let body = app.get_json(lead, "/api/v1/conflicts?status=all").await;
    body.as_array().cloned().expect("a list of conflicts")
}

async fn create_submit_sync_on_one_phone_makes_no_conflict(b: Backend) {
    let app = TestApp::spawn(b).await;
    app.demo_accounts().await;
    let hh = app.login("handhaver", "phone-a").await;
    let lead = app.login("teamleider", "lead-laptop").await;
    let first = pull_pages(&app, &hh, 0, "").await;
    let cursor = first.last().unwrap()["timestamp"].as_i64().unwrap();
    let id = Uuid::new_v4();
    let mut r = report(id, 5);
    // Create → sync.
    push(
        &app,
        &hh,
        cursor,
        json!({ "violations": { "created": [r.clone()] } }),
    )
    .await;
    // The app edits before it has pulled its record back (base_rev stays null) → sync.
    r["_status"] = json!("updated");
    r["description"] = json!("zakken en een matras naast de container");
    r["status"] = json!("submitted");
    let a = push(
        &app,
        &hh,
        cursor,
        json!({ "violations": { "updated": [r.clone()] } }),
    )
    .await;
    assert_eq!(a["applied"], 1);
    assert_eq!(a["conflicts"], json!([]), "{a}");
    // The answer of that push is lost; the officer edits again and the app pushes again.
    r["description"] = json!("zakken, een matras en een stoel");
    let a = push(
        &app,
        &hh,
        cursor,
        json!({ "violations": { "updated": [r.clone()] } }),
    )
    .await;
    assert_eq!(a["conflicts"], json!([]), "{a}");
    // A create retried after a lost answer, with a local edit made meanwhile.
    let id2 = Uuid::new_v4();
    let mut r2 = report(id2, 4);
    push(
        &app,
        &hh,
        cursor,
        json!({ "violations": { "created": [r2.clone()] } }),
    )
    .await;
    r2["description"] = json!("twee zakken");
    let a = push(
        &app,
        &hh,
        cursor,
        json!({ "violations": { "created": [r2.clone()] } }),
    )
    .await;
    assert_eq!(a["conflicts"], json!([]), "{a}");
    // Another device (the lead's laptop) changes the outcome meanwhile; the phone, still without
    // a pull, edits the description: the lead's outcome stays, the description is taken, and
    // that is no conflict either (the phone did not touch the outcome).
    let id3 = Uuid::new_v4();
    let mut r3 = report(id3, 3);
    push(
        &app,
        &hh,
        cursor,
        json!({ "violations": { "created": [r3.clone()] } }),
    )
    .await;
    let res = app
        .patch(
            &lead,
            &format!("/api/v1/violations/{id3}"),
            &json!({ "outcome": "fine" }),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    r3["description"] = json!("drie zakken");
    let a = push(
        &app,
        &hh,
        cursor,
        json!({ "violations": { "updated": [r3.clone()] } }),
    )
    .await;
    assert_eq!(a["conflicts"], json!([]), "{a}");
    // The phone pulls its reports back; nothing there makes a conflict either.
    pull_pages(&app, &hh, cursor, "").await;
    let all = conflicts_of(&app, &lead).await;
    assert_eq!(
        all.len(),
        0,
        "exactly zero conflict records after create → submit on one phone: {all:?}"
    );
    let server = app
        .get_json(&lead, &format!("/api/v1/violations/{id}"))
        .await;
    assert_eq!(server["description"], "zakken, een matras en een stoel");
    let server2 = app
        .get_json(&lead, &format!("/api/v1/violations/{id2}"))
        .await;
    assert_eq!(server2["description"], "twee zakken");
    let server3 = app
        .get_json(&lead, &format!("/api/v1/violations/{id3}"))
        .await;
    assert_eq!(server3["description"], "drie zakken");
    assert_eq!(server3["outcome"], "fine", "the lead's edit stays");
    app.stop().await;
}

async fn paged_pulls_end_with_migration_and_after_a_purge(b: Backend) {
    let app = TestApp::spawn(b).await;
    app.demo_accounts().await;
    let hh = app.login("handhaver", "phone-a").await;
    let made: Vec<Uuid> = (0..10).map(|_| Uuid::new_v4()).collect();
    let rows: Vec<Value> = made.iter().map(|id| report(*id, 3)).collect();
    push(&app, &hh, 0, json!({ "violations": { "created": rows } })).await;
    // Delete two, so the space has tombstones, then purge everything past a zero horizon.
    push(
        &app,
        &hh,
        0,
        json!({ "violations": { "deleted": [made[0].to_string(), made[1].to_string()] } }),
    )
    .await;
    let migration =
        "&migration=%7B%22from%22%3A1%2C%22tables%22%3A%5B%5D%2C%22columns%22%3A%5B%5D%7D";
    let full = pull_pages(&app, &hh, 0, "").await;
    let cursor = full.last().unwrap()["timestamp"].as_i64().unwrap();
    assert!(full.len() > 1, "paged");
    // A first pull carries no tombstones: the phone has nothing to delete.
    for p in &full {
        assert_eq!(p["changes"]["violations"]["deleted"], json!([]), "{p}");
    }
    let got: HashSet<String> = ids(&full, "violations").into_iter().collect();
    assert_eq!(got.len(), 8);
    // A migration sync with more than one page ends, and sends everything live.
    let mig = pull_pages(&app, &hh, cursor, migration).await;
    assert!(mig.len() > 1, "paged");
    assert_eq!(
        ids(&mig, "violations").into_iter().collect::<HashSet<_>>(),
        got
    );
    assert_eq!(mig.last().unwrap()["timestamp"], cursor);
    // After a purge, a paged first pull ends too (its pages never fall under the purge mark).
    thor::sync::purge(
        &app.state.db,
        chrono::Duration::zero(),
        chrono::Utc::now() + chrono::Duration::seconds(1),
    )
    .await
    .unwrap();
    let after = pull_pages(&app, &hh, 0, "").await;
    assert!(after.len() > 1, "paged");
    assert_eq!(
        ids(&after, "violations")
            .into_iter()
            .collect::<HashSet<_>>(),
        got
    );
    // A page token that was tampered with is refused by name.
    let res = app
        .get(&hh, "/api/v1/sync/pull?page_token=eyJzaW5jZSI6OX0")
        .send()
        .await
        .unwrap();
    let body = thor_tests::assert_problem(res, 422, None).await;
    assert!(body.to_string().contains("page_token"), "{body}");
    app.stop().await;
}

async fn an_edit_and_a_delete_meet_in_either_order(b: Backend) {
    let app = TestApp::spawn(b).await;
    app.demo_accounts().await;
    let a = app.login("handhaver", "phone-a").await;
    let lead = app.login("teamleider", "phone-lead").await;
    let (x, y) = (Uuid::new_v4(), Uuid::new_v4());
    push(
        &app,
        &a,
        0,
        json!({ "violations": { "created": [report(x, 3), report(y, 3)] } }),
    )
    .await;
    let pa = pull_pages(&app, &a, 0, "").await;
    let ca = pa.last().unwrap()["timestamp"].as_i64().unwrap();
    let pl = pull_pages(&app, &lead, 0, "").await;
    let cl = pl.last().unwrap()["timestamp"].as_i64().unwrap();
    let rows: Vec<Value> = pulled_rows(pl.last().unwrap(), "violations");
    let row = |id: Uuid| {
        rows.iter()
            .find(|r| r["id"] == id.to_string())
            .cloned()
            .unwrap()
    };
    // Order 1: the delete (phone A) lands first, the lead's offline edit after it.
    push(
        &app,
        &a,
        ca,
        json!({ "violations": { "deleted": [x.to_string()] } }),
    )
    .await;
    let mut ex = row(x);
    ex["description"] = json!("toch een matras");
    ex["base_rev"] = ex["server_rev"].clone();
    let r = push(
        &app,
        &lead,
        cl,
        json!({ "violations": { "updated": [ex] } }),
    )
    .await;
    assert_eq!(r["conflicts"][0]["kind"], "edit_on_deleted", "{r}");
    // Order 2: the lead's edit lands first, then phone A (which never pulled it) deletes.
    let mut ey = row(y);
    ey["description"] = json!("ook een stoel");
    ey["base_rev"] = ey["server_rev"].clone();
    push(
        &app,
        &lead,
        cl,
        json!({ "violations": { "updated": [ey] } }),
    )
    .await;
    let r = push(
        &app,
        &a,
        ca,
        json!({ "violations": { "deleted": [y.to_string()] } }),
    )
    .await;
    assert_eq!(r["applied"], 1, "the deletion stands: {r}");
    assert_eq!(r["conflicts"][0]["kind"], "edit_on_deleted", "{r}");
    assert_eq!(r["conflicts"][0]["record_id"], y.to_string());
    let open: Vec<Value> = conflicts_of(&app, &lead)
        .await
        .into_iter()
        .filter(|c| c["kind"] == "edit_on_deleted")
        .collect();
    assert_eq!(open.len(), 2, "one for the lead in each order: {open:?}");
    // A delete of a record nobody else touched since the phone's pull is no conflict.
    let z = Uuid::new_v4();
    push(
        &app,
        &a,
        ca,
        json!({ "violations": { "created": [report(z, 2)] } }),
    )
    .await;
    let r = push(
        &app,
        &a,
        ca,
        json!({ "violations": { "deleted": [z.to_string()] } }),
    )
    .await;
    assert_eq!(r["conflicts"], json!([]), "{r}");
    app.stop().await;
}

async fn created_is_for_records_the_phone_never_had(b: Backend) {
    let app = TestApp::spawn(b).await;
    app.demo_accounts().await;
    let a = app.login("handhaver", "phone-a").await;
    let lead = app.login("teamleider", "phone-lead").await;
    let first = pull_pages(&app, &lead, 0, "").await;
    // On a first pull everything is new to the phone, reference data included.
    assert_eq!(first[0]["changes"]["categories"]["updated"], json!([]));
    assert_eq!(
        first[0]["changes"]["categories"]["created"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
    let cursor = first.last().unwrap()["timestamp"].as_i64().unwrap();
    let (mine, theirs) = (Uuid::new_v4(), Uuid::new_v4());
    push(
        &app,
        &lead,
        cursor,
        json!({ "violations": { "created": [report(mine, 2)] } }),
    )
    .await;
    push(
        &app,
        &a,
        0,
        json!({ "violations": { "created": [report(theirs, 2)] } }),
    )
    .await;
    let pages = pull_pages(&app, &lead, cursor, "").await;
    let created: Vec<String> = pages
        .iter()
        .flat_map(|p| {
            p["changes"]["violations"]["created"]
                .as_array()
                .unwrap()
                .clone()
        })
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    let updated: Vec<String> = pages
        .iter()
        .flat_map(|p| {
            p["changes"]["violations"]["updated"]
                .as_array()
                .unwrap()
                .clone()
        })
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        created,
        vec![theirs.to_string()],
        "another phone's new report"
    );
    assert_eq!(updated, vec![mine.to_string()], "the phone's own report");
    // The old shape on request.
    let legacy = app
        .get_json(
            &lead,
            &format!("/api/v1/sync/pull?last_pulled_at={cursor}&send_created_as_updated=true"),
        )
        .await;
    assert_eq!(legacy["changes"]["violations"]["created"], json!([]));
    assert_eq!(
        legacy["changes"]["violations"]["updated"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    app.stop().await;
}

async fn per_table_pulls_count_their_own_rows(b: Backend) {
    let app = TestApp::spawn(b).await;
    app.demo_accounts().await;
    let a = app.login("handhaver", "phone-a").await;
    let made: Vec<Uuid> = (0..7).map(|_| Uuid::new_v4()).collect();
    let rows: Vec<Value> = made.iter().map(|id| report(*id, 3)).collect();
    push(&app, &a, 0, json!({ "violations": { "created": rows } })).await;
    // A batch of 3 per page, reports only: each full page holds 3 reports, none of another table.
    let pages = pull_pages(&app, &a, 0, "&tables=violations").await;
    assert_eq!(ids(&pages, "violations").len(), 7);
    for p in &pages {
        let tables: Vec<&String> = p["changes"].as_object().unwrap().keys().collect();
        assert_eq!(tables, vec!["violations"], "only the table asked for");
    }
    assert_eq!(
        pages[0]["changes"]["violations"]["created"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    let res = app
        .get(
            &a,
            "/api/v1/sync/pull?last_pulled_at=0&tables=violations,nope",
        )
        .send()
        .await
        .unwrap();
    thor_tests::assert_problem(res, 422, None).await;
    app.stop().await;
}

async fn a_turbo_first_pull_is_one_page_of_created_rows(b: Backend) {
    let app = TestApp::spawn(b).await;
    app.demo_accounts().await;
    let a = app.login("handhaver", "phone-a").await;
    let made: Vec<Uuid> = (0..2500).map(|_| Uuid::new_v4()).collect();
    for chunk in made.chunks(500) {
        let rows: Vec<Value> = chunk.iter().map(|id| report(*id, 3)).collect();
        push(&app, &a, 0, json!({ "violations": { "created": rows } })).await;
    }
    push(
        &app,
        &a,
        0,
        json!({ "violations": { "deleted": [made[0].to_string()] } }),
    )
    .await;
    let res = app
        .get(&a, "/api/v1/sync/pull?last_pulled_at=0&turbo=true")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let text = res.text().await.unwrap();
    let body: Value = serde_json::from_str(&text).expect("the streamed body is one JSON document");
    assert_eq!(body["has_more"], false);
    assert!(body["timestamp"].as_i64().unwrap() > 0);
    for (table, c) in body["changes"].as_object().unwrap() {
        assert_eq!(c["deleted"], json!([]), "turbo: no deletions in {table}");
        assert_eq!(
            c["updated"],
            json!([]),
            "turbo: every row in created ({table})"
        );
    }
    let got: HashSet<&str> = body["changes"]["violations"]["created"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        got.len(),
        2499,
        "every live report once, across the batches"
    );
    assert!(!got.contains(made[0].to_string().as_str()));
    assert_eq!(
        body["changes"]["categories"]["created"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
    // The same as a paged pull.
    let paged: HashSet<String> = pull_paged_by(&app, &a, 0, "", 1000)
        .await
        .iter()
        .flat_map(|p| pulled_rows(p, "violations"))
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(paged.len(), 2499);
    // Only for a first pull.
    let res = app
        .get(&a, "/api/v1/sync/pull?last_pulled_at=5&turbo=true")
        .send()
        .await
        .unwrap();
    thor_tests::assert_problem(res, 422, None).await;
    app.stop().await;
}

async fn a_push_answer_carries_the_merged_state(b: Backend) {
    let app = TestApp::spawn(b).await;
    app.demo_accounts().await;
    let a = app.login("handhaver", "phone-a").await;
    let id = Uuid::new_v4();
    let r = report(id, 3);
    push(
        &app,
        &a,
        0,
        json!({ "violations": { "created": [r.clone()] } }),
    )
    .await;
    let p = pull_pages(&app, &a, 0, "").await;
    let cursor = p.last().unwrap()["timestamp"].as_i64().unwrap();
    let row = pulled_rows(p.last().unwrap(), "violations")
        .into_iter()
        .find(|x| x["id"] == id.to_string())
        .unwrap();
    // The phone tries to move an immutable field: the server keeps its value and says so.
    let mut e = row.clone();
    e["base_rev"] = e["server_rev"].clone();
    e["lat"] = json!(52.0);
    e["description"] = json!("nieuw");
    let ans = push(
        &app,
        &a,
        cursor,
        json!({ "violations": { "updated": [e] } }),
    )
    .await;
    let merged = ans["merged"]["violations"].as_array().expect("merged rows");
    assert_eq!(merged.len(), 1, "{ans}");
    assert_eq!(merged[0]["lat"], 52.4599);
    assert_eq!(merged[0]["description"], "nieuw");
    // A push taken as sent has nothing merged.
    let mut e2 = merged[0].clone();
    e2["base_rev"] = e2["server_rev"].clone();
    e2["description"] = json!("nog nieuwer");
    let ans = push(
        &app,
        &a,
        cursor,
        json!({ "violations": { "updated": [e2] } }),
    )
    .await;
    assert!(
        ans["merged"].as_object().is_none_or(|m| m.is_empty()),
        "{ans}"
    );
    app.stop().await;
}

async fn the_change_stream_says_when_to_pull(b: Backend) {
    use futures_util::StreamExt;
    let app = TestApp::spawn(b).await;
    app.demo_accounts().await;
    let a = app.login("handhaver", "phone-a").await;
    let res = app.get(&a, "/api/v1/sync/events").send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let mut body = res.bytes_stream();
    let mut seen = String::new();
    let next_event = async |body: &mut (
                                     dyn futures_util::Stream<Item = reqwest::Result<bytes::Bytes>>
                                         + Unpin
                                 ),
                            seen: &mut String| {
        loop {
            if let Some(end) = seen.find("\n\n") {
                let ev = seen[..end].to_string();
                seen.drain(..end + 2);
                if ev.starts_with(':') {
                    continue;
                }
                return ev;
            }
            let chunk = tokio::time::timeout(std::time::Duration::from_secs(10), body.next())
                .await
                .expect("an event within 10 s")
                .expect("the stream goes on")
                .unwrap();
            seen.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    };
    let first = next_event(&mut body, &mut seen).await;
    assert!(first.contains("event: changed"), "{first}");
    push(
        &app,
        &a,
        0,
        json!({ "violations": { "created": [report(Uuid::new_v4(), 2)] } }),
    )
    .await;
    let second = next_event(&mut body, &mut seen).await;
    assert!(second.contains("event: changed"), "{second}");
    assert_ne!(first, second, "the sequence moved on");
    // Without a token: 401.
    let res = app
        .client
        .get(app.url("/api/v1/sync/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    // Shutdown ends the stream instead of waiting for it.
    app.stop().await;
}

both!(
    create_submit_sync_on_one_phone_makes_no_conflict,
    paged_pulls_end_with_migration_and_after_a_purge,
    an_edit_and_a_delete_meet_in_either_order,
    created_is_for_records_the_phone_never_had,
    per_table_pulls_count_their_own_rows,
    a_turbo_first_pull_is_one_page_of_created_rows,
    a_push_answer_carries_the_merged_state,
    the_change_stream_says_when_to_pull,
);
