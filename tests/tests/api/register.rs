//! The disclosure register (Wpg art. 25) as a privacy officer uses it: after a team lead exports
//! the day's reports to a recipient, "to whom was kenteken X disclosed?" names that export, with
//! its recipient, purpose and legal basis; an export of Wpg data without them is refused.

use serde_json::{Value, json};
use thor_tests::{Backend, TestApp, USER_PASSWORD, assert_problem, both};

async fn register_answers_to_whom_a_plate_was_disclosed(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.load_demo().await;
    let lead = app.login("teamleider", "lead-laptop").await;
    let today = thor::demo::today();
    let csv = format!("/api/v1/exports/violations.csv?from={today}");

    // Wpg data does not leave without recipient, purpose and legal basis.
    let res = app.get(&lead, &csv).send().await.unwrap();
    assert_problem(res, 422, Some("recipient")).await;
    let res = app
        .get(&lead, &format!("{csv}&recipient=OM&purpose=%20"))
        .send()
        .await
        .unwrap();
    assert_problem(res, 422, Some("purpose")).await;
    assert_eq!(app.count("disclosure_register").await, 0);

    let res = app
        .get(
            &lead,
            &format!(
                "{csv}&recipient=OM%20parket%20Noord-Holland&purpose=bezwaar%20zaak%20114&legal_basis=Wpg%20art.%2016"
            ),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let text = res.text().await.unwrap();
    // A kenteken that went out, and the report it went out in.
    let violations: Value = app
        .get_json(&lead, &format!("/api/v1/violations?date={today}&limit=500"))
        .await;
    let (plate, report) = violations["items"]
        .as_array()
        .expect("items")
        .iter()
        .find_map(|v| {
            Some((
                v["plate"].as_str()?.to_string(),
                v["id"].as_str()?.to_string(),
            ))
        })
        .expect("the demo day has a report with a kenteken");
    assert!(text.contains(&plate), "the export carried {plate}");
    let plates_out = violations["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["plate"].is_string())
        .count() as i64;
    assert_eq!(
        app.count("disclosure_register").await,
        plates_out,
        "one register row per kenteken that left"
    );

    // The privacy officer asks, spelling the kenteken otherwise.
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
    let fg = {
        let res = app
            .login_response("privacy.fg", USER_PASSWORD, "fg-laptop")
            .await;
        assert_eq!(res.status(), 200);
        res.json::<Value>().await.unwrap()["token"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let asked = plate.to_lowercase().replace('-', " ");
    let found = app
        .get_json(
            &fg,
            &format!("/api/v1/disclosures?kenteken={}", urlencode(&asked)),
        )
        .await;
    let found = found.as_array().expect("a list");
    assert_eq!(found.len(), 1, "one export held {plate}: {found:?}");
    assert_eq!(found[0]["recipient"], "OM parket Noord-Holland");
    assert_eq!(found[0]["purpose"], "bezwaar zaak 114");
    assert_eq!(found[0]["legal_basis"], "Wpg art. 16");
    assert_eq!(found[0]["actor"], "teamleider");
    assert_eq!(found[0]["channel"], "export violations.csv");
    assert!(
        found[0]["records"]
            .as_array()
            .unwrap()
            .contains(&json!(report)),
        "{found:?}"
    );
    // An unknown kenteken: nothing; a bad one: 422 naming the field.
    let none = app
        .get_json(&fg, "/api/v1/disclosures?kenteken=ZZ-999-Z")
        .await;
    assert_eq!(none, json!([]));
    let res = app
        .get(&fg, "/api/v1/disclosures?kenteken=--")
        .send()
        .await
        .unwrap();
    assert_problem(res, 422, Some("kenteken")).await;
    // The question is itself logged.
    let asked_lines = app.count("audit_log WHERE action = 'read_register'").await;
    assert_eq!(asked_lines, 2, "each answered question is one audit line");

    // Inzage for the kenteken (AVG art. 15, Wpg art. 25): its reports and the export.
    let inzage = app
        .get_json(
            &fg,
            &format!("/api/v1/inzage?kenteken={}", urlencode(&asked)),
        )
        .await;
    assert_eq!(
        inzage["subject"],
        plate.to_uppercase().replace(['-', ' '], ""),
        "{inzage}"
    );
    let records = inzage["records"].as_array().expect("records");
    assert!(
        records
            .iter()
            .any(|r| r["id"] == json!(report) && r["stage"] == "active"),
        "{inzage}"
    );
    assert!(
        records
            .iter()
            .all(|r| r["fields"]["plate"] == inzage["subject"])
    );
    assert_eq!(
        inzage["disclosures"][0]["recipient"],
        "OM parket Noord-Holland"
    );
    let res = app
        .get(
            &fg,
            &format!("/api/v1/inzage?kenteken={}&format=text", urlencode(&asked)),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let doc = res.text().await.unwrap();
    assert!(doc.starts_with("INZAGE — kenteken"), "{doc}");
    assert!(
        doc.contains("aan OM parket Noord-Holland — doel: bezwaar zaak 114"),
        "{doc}"
    );
    assert_problem(
        app.get(&fg, "/api/v1/inzage").send().await.unwrap(),
        422,
        Some("kenteken"),
    )
    .await;
    assert_problem(
        app.get(
            &lead,
            &format!("/api/v1/inzage?kenteken={}", urlencode(&asked)),
        )
        .send()
        .await
        .unwrap(),
        403,
        None,
    )
    .await;
    assert_eq!(app.count("audit_log WHERE action = 'inzage'").await, 2);

    // Nobody else reads the register, and the privacy officer reads no reports.
    let res = app
        .get(&lead, "/api/v1/disclosures?kenteken=12AB34")
        .send()
        .await
        .unwrap();
    assert_problem(res, 403, None).await;
    let res = app
        .get(&fg, &format!("/api/v1/violations/{report}"))
        .send()
        .await
        .unwrap();
    assert!(
        matches!(res.status().as_u16(), 403 | 404),
        "the fg reads no report"
    );

    // A reader who gets no kenteken states nothing and registers nothing.
    let before = app.count("disclosure_register").await;
    let res = app.get(&admin, &csv).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let _ = res.text().await.unwrap();
    assert_eq!(app.count("disclosure_register").await, before);
    app.stop().await;
}

fn urlencode(s: &str) -> String {
    s.replace(' ', "%20")
}

both!(register_answers_to_whom_a_plate_was_disclosed);
