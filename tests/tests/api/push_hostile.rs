//! Issue 15 item 2: the push takes records one by one. A record that cannot be read (a lone
//! UTF-16 surrogate, not an object, no usable id, a non-canonical id, a duplicate in the batch,
//! created and deleted together, a NUL character) is refused alone and named in the answer; the
//! rest applies. After each push, a phone's incremental pull leaves it with what a fresh full
//! pull gives.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use thor_tests::{Backend, TestApp, assert_problem, both, pulled_rows};
use uuid::Uuid;

fn report(id: &str) -> Value {
    let at = chrono::Utc::now() - chrono::Duration::minutes(5);
    json!({
        "id": id, "_status": "created", "_changed": "",
        "category": "afval", "feitcode": "H004", "observed_at": at.timestamp_millis(),
        "lat": 52.4599, "lon": 4.6218, "accuracy_m": 7, "location_source": "gps",
        "description": "zakken naast container", "outcome": "warning", "status": "concept",
        "officer_ids": "[]", "server_rev": null, "base_rev": null
    })
}

fn new_id() -> String {
    Uuid::now_v7().to_string()
}

/// Pushes a body given as raw JSON text (what serde_json could not write: lone surrogates).
async fn push_raw(app: &TestApp, token: &str, body: &str) -> reqwest::Response {
    app.client
        .post(app.url("/api/v1/sync/push?last_pulled_at=0"))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap()
}

async fn push_ok(app: &TestApp, token: &str, body: &str) -> Value {
    let res = push_raw(app, token, body).await;
    assert_eq!(res.status(), 200, "{body}");
    res.json().await.unwrap()
}

/// The phone's state: every live row by id, and the cursor it pulled to.
type State = (BTreeMap<String, Value>, i64);

async fn pull_into(app: &TestApp, token: &str, state: &mut State) {
    let mut next: Option<String> = None;
    for _ in 0..1000 {
        let url = match &next {
            Some(t) => format!("/api/v1/sync/pull?page_token={t}&limit=50"),
            None => format!("/api/v1/sync/pull?last_pulled_at={}&limit=50", state.1),
        };
        let page = app.get_json(token, &url).await;
        for row in pulled_rows(&page, "violations") {
            state.0.insert(row["id"].as_str().unwrap().to_string(), row);
        }
        for id in page["changes"]["violations"]["deleted"]
            .as_array()
            .into_iter()
            .flatten()
        {
            state.0.remove(id.as_str().unwrap());
        }
        state.1 = page["timestamp"].as_i64().unwrap();
        next = page["next_page"].as_str().map(str::to_string);
        if page["has_more"] != true {
            return;
        }
    }
    panic!("a pull did not end");
}

/// A phone that pulled before the push, pulling again, has exactly what a fresh full pull gives.
/// Returns the ids now on the server.
async fn after_push_pull_is_full_pull(app: &TestApp, token: &str, before: &State) -> Vec<String> {
    let mut incremental = before.clone();
    pull_into(app, token, &mut incremental).await;
    let mut fresh: State = (BTreeMap::new(), 0);
    pull_into(app, token, &mut fresh).await;
    assert_eq!(
        incremental.0, fresh.0,
        "incremental pull differs from a full pull"
    );
    fresh.0.keys().cloned().collect()
}

fn rejected_ids(res: &Value) -> Vec<String> {
    res["experimentalRejectedIds"]["violations"]
        .as_array()
        .map(|a| a.iter().map(|v| v.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

/// The `(id, field)` of every rejection.
fn rejections(res: &Value) -> Vec<(String, String)> {
    res["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let field = r["errors"][0]["field"].as_str().unwrap_or("").to_string();
            (r["id"].as_str().unwrap().to_string(), field)
        })
        .collect()
}

async fn setup(b: Backend) -> (TestApp, String, State) {
    let app = TestApp::spawn(b).await;
    app.demo_accounts().await;
    let t = app.login("handhaver", "phone-1").await;
    let mut state: State = (BTreeMap::new(), 0);
    pull_into(&app, &t, &mut state).await;
    (app, t, state)
}

fn body(created: &[String], updated: &[String], deleted: &[String]) -> String {
    format!(
        r#"{{"changes":{{"violations":{{"created":[{}],"updated":[{}],"deleted":[{}]}}}}}}"#,
        created.join(","),
        updated.join(","),
        deleted.join(",")
    )
}

async fn a_lone_surrogate_refuses_only_its_record(b: Backend) {
    let (app, t, before) = setup(b).await;
    let (a, c, good) = (new_id(), new_id(), new_id());
    // What JSON.stringify writes for a text cut inside an emoji, leading and trailing half.
    let cut = report(&a)
        .to_string()
        .replace("naast container", r"naast \ud83d");
    let trail = report(&c).to_string().replace("zakken", r"\ude00zakken");
    let res = push_ok(
        &app,
        &t,
        &body(&[cut, trail, report(&good).to_string()], &[], &[]),
    )
    .await;
    assert_eq!(res["applied"], 1, "{res}");
    assert_eq!(rejected_ids(&res), [a.clone(), c.clone()]);
    assert_eq!(
        rejections(&res),
        [
            (a.clone(), "description".to_string()),
            (c.clone(), "description".to_string())
        ]
    );
    assert!(
        res["rejected"][0]["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("surrogate"),
        "{res}"
    );
    let ids = after_push_pull_is_full_pull(&app, &t, &before).await;
    assert!(ids.contains(&good) && !ids.contains(&a) && !ids.contains(&c));
    // A surrogate pair (a whole emoji) is text like any other.
    let whole = new_id();
    let emoji = report(&whole)
        .to_string()
        .replace("naast container", r"\ud83d\ude00");
    let res = push_ok(&app, &t, &body(&[emoji], &[], &[])).await;
    assert_eq!(res["applied"], 1, "{res}");
    app.stop().await;
}

async fn unreadable_ids_are_reported_without_an_id(b: Backend) {
    let (app, t, before) = setup(b).await;
    let good = new_id();
    let mut no_id = report(&good);
    no_id.as_object_mut().unwrap().remove("id");
    let broken_key = report(&new_id())
        .to_string()
        .replace("\"lat\"", r#""\ud83d""#);
    let records = vec![
        no_id.to_string(),
        report(&good)
            .to_string()
            .replace(&format!("\"{good}\""), "null"),
        report(&good)
            .to_string()
            .replace(&format!("\"{good}\""), "42"),
        report(&good)
            .to_string()
            .replace(&format!("\"{good}\""), "\"\""),
        report(&good)
            .to_string()
            .replace(&format!("\"{good}\""), r#""\ud83d""#),
        broken_key,
        "[1,2,3]".to_string(),
        "\"a string\"".to_string(),
        report(&good).to_string(),
    ];
    let res = push_ok(&app, &t, &body(&records, &[], &["17".into()])).await;
    assert_eq!(res["applied"], 1, "{res}");
    let rejected = rejections(&res);
    assert_eq!(rejected.len(), 9, "{res}");
    assert!(rejected.iter().all(|(id, _)| id.is_empty()), "{res}");
    assert!(rejected_ids(&res).is_empty(), "{res}");
    let ids = after_push_pull_is_full_pull(&app, &t, &before).await;
    assert_eq!(ids, [good]);
    app.stop().await;
}

async fn non_canonical_ids_are_refused_never_rewritten(b: Backend) {
    let (app, t, before) = setup(b).await;
    let id = new_id();
    let upper = id.to_uppercase();
    let braced = format!("{{{id}}}");
    let bare = id.replace('-', "");
    let urn = format!("urn:uuid:{id}");
    for sent in [&upper, &braced, &bare, &urn] {
        let res = push_ok(&app, &t, &body(&[report(sent).to_string()], &[], &[])).await;
        assert_eq!(res["applied"], 0, "{res}");
        assert_eq!(rejected_ids(&res), std::slice::from_ref(sent), "{res}");
        assert_eq!(rejections(&res), [(sent.clone(), "id".to_string())]);
        let res = push_ok(&app, &t, &body(&[], &[], &[format!("\"{sent}\"")])).await;
        assert_eq!(rejected_ids(&res), std::slice::from_ref(sent), "{res}");
    }
    let ids = after_push_pull_is_full_pull(&app, &t, &before).await;
    assert!(
        ids.is_empty(),
        "nothing stored, not even lowercased: {ids:?}"
    );
    app.stop().await;
}

async fn duplicates_in_a_batch_are_reported(b: Backend) {
    let (app, t, before) = setup(b).await;
    let (a, b2) = (new_id(), new_id());
    let first = report(&a).to_string();
    let second = report(&a).to_string().replace("zakken", "tweede");
    let res = push_ok(
        &app,
        &t,
        &body(
            &[first, second, report(&b2).to_string()],
            &[report(&a).to_string().replace("zakken", "derde")],
            &[],
        ),
    )
    .await;
    assert_eq!(res["applied"], 2, "{res}");
    assert_eq!(rejected_ids(&res), std::slice::from_ref(&a), "{res}");
    assert_eq!(
        rejections(&res),
        [(a.clone(), "id".to_string()), (a.clone(), "id".to_string())]
    );
    let ids = after_push_pull_is_full_pull(&app, &t, &before).await;
    assert_eq!(ids.len(), 2);
    let mut now: State = (BTreeMap::new(), 0);
    pull_into(&app, &t, &mut now).await;
    assert_eq!(now.0[&a]["description"], "zakken naast container");
    app.stop().await;
}

async fn created_and_deleted_together_are_refused(b: Backend) {
    let (app, t, mut before) = setup(b).await;
    let (a, kept) = (new_id(), new_id());
    let res = push_ok(
        &app,
        &t,
        &body(
            &[report(&a).to_string(), report(&kept).to_string()],
            &[],
            &[format!("\"{a}\"")],
        ),
    )
    .await;
    assert_eq!(res["applied"], 1, "{res}");
    assert_eq!(rejected_ids(&res), std::slice::from_ref(&a));
    let ids = after_push_pull_is_full_pull(&app, &t, &before).await;
    assert_eq!(ids, std::slice::from_ref(&kept));
    // An update and a delete of a record the server has: neither applies, the record stays.
    pull_into(&app, &t, &mut before).await;
    let mut row = before.0[&kept].clone();
    row["description"] = json!("nieuw");
    let res = push_ok(
        &app,
        &t,
        &body(&[], &[row.to_string()], &[format!("\"{kept}\"")]),
    )
    .await;
    assert_eq!(res["applied"], 0, "{res}");
    assert_eq!(rejected_ids(&res), std::slice::from_ref(&kept));
    let ids = after_push_pull_is_full_pull(&app, &t, &before).await;
    assert_eq!(ids, [kept]);
    app.stop().await;
}

async fn a_table_named_twice_is_read_as_one(b: Backend) {
    let (app, t, before) = setup(b).await;
    let (a, c) = (new_id(), new_id());
    let text = format!(
        r#"{{"changes":{{"violations":{{"created":[{}]}},"violations":{{"created":[{}]}}}}}}"#,
        report(&a),
        report(&c)
    );
    let res = push_ok(&app, &t, &text).await;
    assert_eq!(res["applied"], 2, "{res}");
    let ids = after_push_pull_is_full_pull(&app, &t, &before).await;
    assert!(ids.contains(&a) && ids.contains(&c), "{ids:?}");
    app.stop().await;
}

async fn nul_is_refused_per_field_on_every_database(b: Backend) {
    let (app, t, before) = setup(b).await;
    let (a, c, good) = (new_id(), new_id(), new_id());
    let nul = report(&a)
        .to_string()
        .replace("naast container", r"naast\u0000container");
    let repeated = report(&c)
        .to_string()
        .replace("\"outcome\"", "\"plate\":\"AB\",\"plate\"");
    let res = push_ok(
        &app,
        &t,
        &body(&[nul, repeated, report(&good).to_string()], &[], &[]),
    )
    .await;
    assert_eq!(res["applied"], 1, "{res}");
    assert_eq!(
        rejections(&res),
        [
            (a.clone(), "description".to_string()),
            (c.clone(), "plate".to_string())
        ],
        "{res}"
    );
    let ids = after_push_pull_is_full_pull(&app, &t, &before).await;
    assert_eq!(ids, [good]);
    app.stop().await;
}

async fn a_malformed_envelope_is_a_problem(b: Backend) {
    let (app, t, before) = setup(b).await;
    for (text, status) in [
        (r#"{"changes":[]}"#, 422),
        (r#"{"changes":{"violations":{"created":{}}}}"#, 422),
        (r#"{"changes":{"violations":[]}}"#, 422),
        (r#"{}"#, 422),
        (r#"{"changes":{"violations":{"created":[{"id":"x"}"#, 400),
        (r#"{"changes":{}} trailing"#, 400),
    ] {
        let res = push_raw(&app, &t, text).await;
        assert_problem(res, status, None).await;
    }
    let ids = after_push_pull_is_full_pull(&app, &t, &before).await;
    assert!(ids.is_empty());
    app.stop().await;
}

both!(
    a_lone_surrogate_refuses_only_its_record,
    unreadable_ids_are_reported_without_an_id,
    non_canonical_ids_are_refused_never_rewritten,
    duplicates_in_a_batch_are_reported,
    created_and_deleted_together_are_refused,
    a_table_named_twice_is_read_as_one,
    nul_is_refused_per_field_on_every_database,
    a_malformed_envelope_is_a_problem,
);
