use serde_json::{Value, json};
use thor_tests::{Backend, TestApp, assert_problem, both};

async fn every_api_route_but_login_needs_a_token(b: Backend) {
    let app = TestApp::spawn(b).await;
    let doc: Value = serde_json::from_str(&thor::openapi::pretty_json().unwrap()).unwrap();
    let mut checked = 0;
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            if path == "/api/v1/auth/login" {
                continue;
            }
            let concrete = path
                .replace("{id}", &uuid::Uuid::new_v4().to_string())
                .replace("{user_id}", &uuid::Uuid::new_v4().to_string())
                .replace("{device_id}", "phone")
                .replace("{other}", &uuid::Uuid::new_v4().to_string());
            let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let res = app
                .client
                .request(m.clone(), app.url(&concrete))
                .json(&json!({}))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 401, "{method} {path} without a token");
            assert!(res.headers().contains_key("www-authenticate"));
            let head = m == reqwest::Method::HEAD;
            let res = app
                .client
                .request(m, app.url(&concrete))
                .bearer_auth("thor_not-a-real-token")
                .json(&json!({}))
                .send()
                .await
                .unwrap();
            if head {
                // HEAD answers carry no body: the status and the problem type's header say it.
                assert_eq!(res.status(), 401, "HEAD {path} with a bad token");
                assert_eq!(res.headers()["content-type"], "application/problem+json");
            } else {
                assert_problem(res, 401, None).await;
            }
            checked += 1;
        }
    }
    assert!(checked >= 10, "checked {checked} operations");
    app.stop().await;
}

async fn wrong_passwords_are_refused_and_throttled(b: Backend) {
    let app = TestApp::spawn(b).await;
    app.demo_accounts().await;
    let res = app.login_response("handhaver", "fout", "phone-1").await;
    assert_problem(res, 401, None).await;
    let res = app.login_response("niemand", "demo", "phone-1").await;
    assert_problem(res, 401, None).await;
    // 2 attempts above were on other accounts or counted; 9 more wrong ones for handhaver make 10.
    for i in 0..9 {
        let res = app.login_response("handhaver", "fout", "phone-1").await;
        assert_eq!(res.status(), 401, "attempt {}", i + 2);
    }
    let res = app.login_response("handhaver", "fout", "phone-1").await;
    assert!(res.headers().contains_key("retry-after"));
    let body = assert_problem(res, 429, None).await;
    assert!(body["detail"].as_str().unwrap().contains("account"));
    // Even the right password is refused until the minute has passed.
    let res = app.login_response("handhaver", "demo", "phone-1").await;
    assert_eq!(res.status(), 429);
    // Another account is unaffected.
    app.login("jeugdboa", "phone-2").await;
    // Failed logins are in the audit log.
    assert!(app.count("audit_log WHERE action = 'login_failed'").await >= 11);
    app.stop().await;
}

async fn a_revoked_device_is_locked_out_at_once(b: Backend) {
    let app = TestApp::spawn(b).await;
    app.demo_accounts().await;
    let phone = app.login("handhaver", "lost-phone").await;
    let other = app.login("handhaver", "other-phone").await;
    let lead = app.login("teamleider", "lead-laptop").await;
    let me: Value = app
        .get(&phone, "/api/v1/auth/me")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["username"], "handhaver");
    assert_eq!(me["role"], "handhaver");
    let user_id = me["id"].as_str().unwrap().to_string();

    // The lead revokes the lost phone.
    let res = app
        .client
        .post(app.url(&format!(
            "/api/v1/users/{user_id}/devices/lost-phone/revoke?reason=telefoon%20verloren"
        )))
        .bearer_auth(&lead)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["revoked"], 1);
    assert_problem(
        app.get(&phone, "/api/v1/auth/me").send().await.unwrap(),
        401,
        None,
    )
    .await;
    // The other device still works.
    assert_eq!(
        app.get(&other, "/api/v1/auth/me")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let devices: Vec<Value> = app
        .get(&lead, &format!("/api/v1/users/{user_id}/devices"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        devices
            .iter()
            .any(|d| d["device_id"] == "lost-phone" && d["revoked_reason"] == "telefoon verloren")
    );

    // A handhaver cannot revoke someone else.
    let lead_me: Value = app
        .get(&lead, "/api/v1/auth/me")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let res = app
        .client
        .post(app.url(&format!(
            "/api/v1/users/{}/revoke",
            lead_me["id"].as_str().unwrap()
        )))
        .bearer_auth(&other)
        .send()
        .await
        .unwrap();
    assert_problem(res, 403, None).await;

    // Revoke all: every device of the user is out.
    let res = app
        .client
        .post(app.url(&format!("/api/v1/users/{user_id}/revoke")))
        .bearer_auth(&lead)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        app.get(&other, "/api/v1/auth/me")
            .send()
            .await
            .unwrap()
            .status(),
        401
    );

    // Logging in again on a device gives a fresh token; logout ends it.
    let again = app.login("handhaver", "lost-phone").await;
    assert_eq!(
        app.get(&again, "/api/v1/auth/me")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        app.client
            .post(app.url("/api/v1/auth/logout"))
            .bearer_auth(&again)
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    assert_eq!(
        app.get(&again, "/api/v1/auth/me")
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    // Tokens are stored hashed, never in the clear.
    assert_eq!(
        app.count(&format!("device_token WHERE token_hash = '{again}'"))
            .await,
        0
    );
    app.stop().await;
}

async fn demo_accounts_exist_only_with_demo(b: Backend) {
    let app = TestApp::spawn(b).await;
    app.demo_accounts().await;
    let t = app.login("teamleider", "phone").await;
    // A start without --demo switches them off and revokes their tokens.
    thor::auth::accounts::set_demo_accounts_active(&app.state.db, false)
        .await
        .unwrap();
    assert_eq!(
        app.get(&t, "/api/v1/auth/me")
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        app.login_response("teamleider", "demo", "phone")
            .await
            .status(),
        401
    );
    app.stop().await;
}

async fn only_the_beheerder_creates_accounts(b: Backend) {
    let app = TestApp::spawn(b).await;
    app.demo_accounts().await;
    let admin = app.login("beheerder", "desk").await;
    let boa = app.login("handhaver", "phone").await;
    let new = json!({ "username": "boa.nieuw", "role": "handhaver", "team": "THOR Velsen", "password": "lange wachtzin voor test" });
    assert_problem(
        app.post(&boa, "/api/v1/users", &new).send().await.unwrap(),
        403,
        None,
    )
    .await;
    let res = app
        .post(&admin, "/api/v1/users", &new)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let created: Value = res.json().await.unwrap();
    assert_eq!(created["role"], "handhaver");
    assert_problem(
        app.post(&admin, "/api/v1/users", &new)
            .send()
            .await
            .unwrap(),
        409,
        None,
    )
    .await;
    let weak = json!({ "username": "boa.zwak", "role": "handhaver", "password": "kort" });
    assert_problem(
        app.post(&admin, "/api/v1/users", &weak)
            .send()
            .await
            .unwrap(),
        422,
        Some("password"),
    )
    .await;
    let bad_role =
        json!({ "username": "boa.x", "role": "admin", "password": "lange wachtzin voor test" });
    assert_problem(
        app.post(&admin, "/api/v1/users", &bad_role)
            .send()
            .await
            .unwrap(),
        422,
        Some("role"),
    )
    .await;
    let res = app
        .login_response("boa.nieuw", "lange wachtzin voor test", "phone")
        .await;
    assert_eq!(res.status(), 200);
    // The handhaver's team list now holds the new colleague; the beheerder sees everyone.
    let team: Vec<Value> = app
        .get(&boa, "/api/v1/users")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(team.iter().any(|u| u["username"] == "boa.nieuw"));
    assert!(!team.iter().any(|u| u["username"] == "beheerder"));
    app.stop().await;
}

both!(
    every_api_route_but_login_needs_a_token,
    wrong_passwords_are_refused_and_throttled,
    a_revoked_device_is_locked_out_at_once,
    demo_accounts_exist_only_with_demo,
    only_the_beheerder_creates_accounts,
);
