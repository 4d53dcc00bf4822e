//! Finishing a case, black-box: a parkeer, an afval and a honden report from the observation to
//! the end of their track (Mulder, kostenverhaal, a written warning), the documents made from
//! the record read back as text and checked against it, the same record giving the same bytes,
//! a changed case making a new version, and who may see a case.

use serde_json::{Value, json};
use thor_tests::{Backend, TestApp, assert_problem, both};
use uuid::Uuid;

/// The text of a PDF, all pages.
fn pdf_text(bytes: &[u8]) -> String {
    let doc = lopdf::Document::load_mem(bytes).expect("a PDF lopdf reads");
    let pages: Vec<u32> = doc.get_pages().keys().copied().collect();
    let text = doc.extract_text(&pages).expect("its text");
    // Lines wrap where the layout wants: compare words, not line breaks.
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

async fn ok(res: reqwest::Response) -> Value {
    let status = res.status();
    let text = res.text().await.unwrap();
    assert!(status.is_success(), "{status}: {text}");
    serde_json::from_str(&text).unwrap()
}

struct Doc {
    bytes: Vec<u8>,
    version: String,
    sha: String,
}

async fn document(app: &TestApp, t: &str, id: &str, kind: &str) -> Doc {
    let res = app
        .get(t, &format!("/api/v1/cases/{id}/documents/{kind}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{kind}: {}", res.text().await.unwrap());
    assert_eq!(res.headers()["content-type"], "application/pdf");
    let version = res.headers()["x-thor-document-version"]
        .to_str()
        .unwrap()
        .to_string();
    let sha = res.headers()["x-thor-document-sha256"]
        .to_str()
        .unwrap()
        .to_string();
    let bytes = res.bytes().await.unwrap().to_vec();
    assert_eq!(
        crate::photos::sha_hex(&bytes),
        sha,
        "the header names the bytes' hash"
    );
    Doc {
        bytes,
        version,
        sha,
    }
}

async fn step(app: &TestApp, t: &str, id: &str, key: &str) -> reqwest::Response {
    app.post(
        t,
        &format!("/api/v1/cases/{id}/steps"),
        &json!({ "step": key, "note": "gedaan" }),
    )
    .send()
    .await
    .unwrap()
}

/// A submitted report without a plate: `(category, feitcode, outcome, sanction)`.
async fn submitted_case(
    app: &TestApp,
    t: &str,
    (category, feitcode, outcome, sanction): (&str, &str, &str, &str),
    description: &str,
) -> Uuid {
    let id = Uuid::new_v4();
    let mut r = thor_tests::report(id);
    r["category"] = json!(category);
    r["feitcode"] = json!(feitcode);
    r["outcome"] = json!(outcome);
    r["plate"] = Value::Null;
    r["driver_present"] = Value::Null;
    r["description"] = json!(description);
    r["sanction"] = json!(sanction);
    r["status"] = json!("submitted");
    ok(app.post(t, "/api/v1/violations", &r).send().await.unwrap()).await;
    id
}

async fn cases_from_observation_to_the_end_of_their_track(b: Backend) {
    let app = TestApp::spawn(b).await;
    app.demo_accounts().await;
    let hh = app.login("handhaver", "phone-hh").await;
    let lead = app.login("teamleider", "pc-lead").await;

    // The parkeer report with a photo, on the Mulder track.
    let bytes = crate::photos::jpeg(800, 600, 21);
    let (park, _) = crate::photos::report_with_derived_photo(&app, &hh, &bytes).await;
    let path = format!("/api/v1/violations/{park}");
    // The afdoening is checked against the outcome and the track: a fine on R397a is Mulder.
    let res = app
        .patch(&hh, &path, &json!({ "sanction": "kostenverhaal" }))
        .send()
        .await
        .unwrap();
    let p = assert_problem(res, 422, Some("sanction")).await;
    assert!(p.to_string().contains("mulder"), "{p}");
    ok(app
        .patch(
            &hh,
            &path,
            &json!({ "sanction": "mulder", "status": "submitted" }),
        )
        .send()
        .await
        .unwrap())
    .await;

    // The afval report, cleared away at the offender's cost; the honden report, a written warning.
    let afval = submitted_case(
        &app,
        &hh,
        ("afval", "H004", "removed", "kostenverhaal"),
        "Zes vuilniszakken naast de container aan de Kennemerlaan",
    )
    .await;
    let honden = submitted_case(
        &app,
        &hh,
        ("honden", "F145a", "warning", "waarschuwing_schriftelijk"),
        "Hond los op de Lange Nieuwstraat, eigenaar aangesproken",
    )
    .await;
    let (park, afval, honden) = (park.to_string(), afval.to_string(), honden.to_string());

    // The lead's open cases, with the next step and its deadline.
    let open = ok(app.get(&lead, "/api/v1/cases").send().await.unwrap()).await;
    let of = |id: &str| {
        open.as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .cloned()
    };
    assert_eq!(of(&park).unwrap()["next"], "naar_cjib");
    assert_eq!(of(&afval).unwrap()["next"], "verwijderd");
    assert_eq!(of(&honden).unwrap()["next"], "brief_verzonden");
    assert!(of(&park).unwrap()["due_at"].is_string());

    // The office's steps wait for the review; the officer's own step does not.
    assert_problem(step(&app, &lead, &park, "naar_cjib").await, 409, None).await;
    assert_problem(step(&app, &hh, &park, "naar_cjib").await, 403, None).await;
    assert_problem(
        step(&app, &lead, &afval, "kosten_gevorderd").await,
        422,
        Some("step"),
    )
    .await;
    ok(step(&app, &hh, &afval, "verwijderd").await).await;
    for id in [&park, &afval, &honden] {
        ok(app
            .patch(
                &lead,
                &format!("/api/v1/violations/{id}"),
                &json!({ "status": "approved" }),
            )
            .send()
            .await
            .unwrap())
        .await;
    }

    // Mulder: the kort pv goes to the CJIB; it says what the record says.
    let case = ok(step(&app, &lead, &park, "naar_cjib").await).await;
    assert_eq!(case["next"], "afgehandeld");
    let pv = document(&app, &lead, &park, "kort_pv").await;
    let text = pdf_text(&pv.bytes);
    let report = ok(app.get(&lead, &path).send().await.unwrap()).await;
    for must in [
        "Kort proces-verbaal",
        "Mehmet Yilmaz",
        "BOA-0453-0112",
        "12ABC3",
        "R397a",
        "als bestuurder een voertuig parkeren bij een kruispunt",
        "24 lid 1 sub a RVV 1990",
        "€ 90,00",
        "Geparkeerd op de stoep",
        "nauwkeurigheid 7 m",
        "52,459900, 4,621800",
        &crate::photos::sha_hex(&bytes),
        report["buurt"]["name"].as_str().unwrap(),
        "Ondertekening",
    ] {
        assert!(text.contains(must), "the kort pv says {must:?}:\n{text}");
    }
    let observed: chrono::DateTime<chrono::Utc> =
        report["observed_at"].as_str().unwrap().parse().unwrap();
    let local = observed
        .with_timezone(&chrono_tz::Europe::Amsterdam)
        .format("%d-%m-%Y om %H:%M")
        .to_string();
    assert!(
        text.contains(&local),
        "the time of the observation, {local}:\n{text}"
    );
    assert!(
        pv.bytes.windows(10).any(|w| w == b"/DCTDecode"),
        "the photo's thumbnail is in it"
    );
    // Re-rendering gives the same bytes: the same version, not a new one.
    let again = document(&app, &lead, &park, "kort_pv").await;
    assert_eq!(
        (again.sha.as_str(), again.version.as_str()),
        (pv.sha.as_str(), "1")
    );
    assert_eq!(again.bytes, pv.bytes);
    let finished = ok(step(&app, &lead, &park, "afgehandeld").await).await;
    assert_eq!(finished["finished"], true);
    assert_problem(
        step(&app, &lead, &park, "afgehandeld").await,
        422,
        Some("step"),
    )
    .await;

    // Kostenverhaal: the letter, then payment; the case overview follows the steps in versions.
    let overview1 = document(&app, &lead, &afval, "zaakoverzicht").await;
    ok(step(&app, &lead, &afval, "kosten_gevorderd").await).await;
    let letter = pdf_text(
        &document(&app, &lead, &afval, "kostenverhaalbrief")
            .await
            .bytes,
    );
    for must in [
        "Kostenverhaal",
        "H004",
        "Zes vuilniszakken naast de container",
        "Er zijn geen foto's gemaakt",
    ] {
        assert!(letter.contains(must), "the letter says {must:?}:\n{letter}");
    }
    let overview2 = document(&app, &lead, &afval, "zaakoverzicht").await;
    assert_ne!(overview1.sha, overview2.sha, "a step changes the overview");
    assert_eq!(
        (overview1.version.as_str(), overview2.version.as_str()),
        ("1", "2")
    );
    assert!(pdf_text(&overview2.bytes).contains("Kostenverhaalbrief verzonden"));
    assert_eq!(
        app.count("case_document WHERE kind = 'zaakoverzicht'")
            .await,
        2,
        "the earlier version is kept, not overwritten"
    );
    ok(step(&app, &lead, &afval, "betaald").await).await;
    // A document the afdoening does not have.
    assert_problem(
        app.get(&lead, &format!("/api/v1/cases/{afval}/documents/kort_pv"))
            .send()
            .await
            .unwrap(),
        404,
        None,
    )
    .await;

    // The written warning: one step, one letter.
    ok(step(&app, &lead, &honden, "brief_verzonden").await).await;
    let warning = pdf_text(
        &document(&app, &lead, &honden, "waarschuwingsbrief")
            .await
            .bytes,
    );
    assert!(
        warning.contains("Schriftelijke waarschuwing") && warning.contains("F145a"),
        "{warning}"
    );
    let open = ok(app.get(&lead, "/api/v1/cases").send().await.unwrap()).await;
    for id in [&park, &afval, &honden] {
        assert!(
            open.as_array()
                .unwrap()
                .iter()
                .all(|c| c["id"] != id.as_str()),
            "finished cases leave the list"
        );
    }

    // Every issue is logged; one that leaves the team is a provision of the kenteken.
    assert!(
        app.count(&format!(
            "audit_log WHERE action = 'issue_document' AND record_id = '{park}'"
        ))
        .await
            >= 2
    );
    assert_problem(
        app.get(
            &lead,
            &format!("/api/v1/cases/{park}/documents/kort_pv?recipient=CJIB"),
        )
        .send()
        .await
        .unwrap(),
        422,
        None,
    )
    .await;
    let before = app.count("disclosure_register").await;
    let res = app
        .get(
            &lead,
            &format!("/api/v1/cases/{park}/documents/kort_pv?recipient=CJIB&purpose=inning%20Wahv-beschikking&legal_basis=Wpg%20art.%2019"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(app.count("disclosure_register").await, before + 1);

    // Another team sees neither the case nor its documents.
    let (_, other) = app.user("tl.zuid", "teamleider", "Team Zuid", true).await;
    assert_problem(
        app.get(&other, &format!("/api/v1/cases/{park}"))
            .send()
            .await
            .unwrap(),
        404,
        None,
    )
    .await;
    assert_problem(
        app.get(
            &other,
            &format!("/api/v1/cases/{park}/documents/zaakoverzicht"),
        )
        .send()
        .await
        .unwrap(),
        404,
        None,
    )
    .await;
    app.stop().await;
}

both!(cases_from_observation_to_the_end_of_their_track);

async fn lookup(app: &TestApp, t: &str, path: &str) -> Value {
    ok(app.get(t, path).send().await.unwrap()).await
}

/// Kenteken and address at the spot, against the replay server (nothing reaches the internet):
/// found, not registered, not a Dutch plate, cached, logged without the plate; and when the
/// service is slow, broken, garbled or switched off the answer is "not checked" within the
/// timeout and a report and its documents go on.
async fn lookups_at_the_spot_answer_or_say_not_checked(b: Backend) {
    let replay = thor_tests::replay::start().await;
    let at = |mode: &str| Some(format!("{}/{mode}", replay.url));
    let app = TestApp::spawn_with(b.clone(), |c| {
        c.rdw_url = at("ok");
        c.pdok_url = at("ok");
    })
    .await;
    app.demo_accounts().await;
    let hh = app.login("handhaver", "phone-hh").await;
    let lead = app.login("teamleider", "pc-lead").await;

    let v = lookup(&app, &hh, "/api/v1/lookup/kenteken/12-abc-3").await;
    assert_eq!(v["checked"], "found", "{v}");
    assert_eq!(v["vehicle"]["merk"], "VOLKSWAGEN");
    assert_eq!(v["vehicle"]["eerste_kleur"], "GRIJS");
    assert_eq!(
        (v["written"].as_str(), v["sidecode"].as_u64()),
        (Some("12-ABC-3"), Some(7))
    );
    let asked = replay.requests();
    let again = lookup(&app, &hh, "/api/v1/lookup/kenteken/12ABC3").await;
    assert_eq!(again["checked"], "found");
    assert_eq!(
        replay.requests(),
        asked,
        "the second lookup comes from the cache"
    );
    assert_eq!(
        lookup(&app, &hh, "/api/v1/lookup/kenteken/AB-12-CD").await["checked"],
        "not_found"
    );
    let foreign = lookup(&app, &hh, "/api/v1/lookup/kenteken/B-XY 1234").await;
    assert_eq!(foreign["checked"], "not_checked");
    assert!(
        foreign["reason"].as_str().unwrap().contains("sidecode"),
        "{foreign}"
    );
    // Each lookup is a logged consultation, by the plate's hash: the plate is not in the log.
    assert!(
        app.count("audit_log WHERE action = 'lookup_kenteken'")
            .await
            >= 4
    );
    assert_eq!(
        app.count(
            "audit_log WHERE action = 'lookup_kenteken' AND CAST(detail AS TEXT) LIKE '%12ABC3%'"
        )
        .await,
        0,
        "the plate is not in the log"
    );
    // Who may not read Wpg data does not look a plate up.
    let beheer = app.login("beheerder", "pc-beheer").await;
    assert_problem(
        app.get(&beheer, "/api/v1/lookup/kenteken/12ABC3")
            .send()
            .await
            .unwrap(),
        403,
        None,
    )
    .await;

    // The address of a position, with the wijk and buurt of thor's own geometry.
    let a = lookup(&app, &hh, "/api/v1/lookup/adres?lat=52.4599&lon=4.6218").await;
    assert_eq!(a["checked"], "found", "{a}");
    assert_eq!(a["address"], "Dudokplein 1, 1971EN IJmuiden");
    assert!(a["buurt"].is_string() && a["wijk"].is_string());
    let asked = replay.requests();
    lookup(&app, &hh, "/api/v1/lookup/adres?lat=52.4599&lon=4.6218").await;
    assert_eq!(
        replay.requests(),
        asked,
        "addresses are kept in the database"
    );
    let sea = lookup(&app, &hh, "/api/v1/lookup/adres?lat=52.5&lon=4.5").await;
    assert_eq!(sea["checked"], "not_found", "{sea}");
    assert_problem(
        app.get(&hh, "/api/v1/lookup/adres?lat=95&lon=4.6")
            .send()
            .await
            .unwrap(),
        422,
        None,
    )
    .await;

    // The address goes on the documents.
    let id = Uuid::new_v4();
    let mut r = thor_tests::report(id);
    r["sanction"] = json!("mulder");
    r["status"] = json!("submitted");
    ok(app
        .post(&hh, "/api/v1/violations", &r)
        .send()
        .await
        .unwrap())
    .await;
    let id = id.to_string();
    ok(app
        .patch(
            &lead,
            &format!("/api/v1/violations/{id}"),
            &json!({ "status": "approved" }),
        )
        .send()
        .await
        .unwrap())
    .await;
    let pv = pdf_text(&document(&app, &lead, &id, "kort_pv").await.bytes);
    assert!(pv.contains("Dudokplein 1, 1971EN IJmuiden"), "{pv}");

    // Repeat offenders: the earlier reports of the plate and at the spot, for who may see them.
    let second = Uuid::new_v4();
    ok(app
        .post(&hh, "/api/v1/violations", &thor_tests::report(second))
        .send()
        .await
        .unwrap())
    .await;
    let by_plate = lookup(&app, &lead, "/api/v1/lookup/repeats?kenteken=12-abc-3").await;
    let ids: Vec<&str> = by_plate["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&id.as_str()) && ids.contains(&second.to_string().as_str()),
        "{by_plate}"
    );
    assert_eq!(by_plate["months"], 12);
    let at_spot = lookup(&app, &hh, "/api/v1/lookup/repeats?lat=52.4599&lon=4.6218").await;
    assert!(at_spot["items"].as_array().unwrap().len() >= 2, "{at_spot}");
    assert!(
        at_spot["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["distance_m"].as_f64().unwrap() <= 25.0)
    );
    let elsewhere = lookup(&app, &hh, "/api/v1/lookup/repeats?lat=52.47&lon=4.6").await;
    assert_eq!(
        elsewhere["items"].as_array().unwrap().len(),
        0,
        "{elsewhere}"
    );
    assert!(
        app.count("audit_log WHERE action = 'lookup_repeats' AND record_type = 'kenteken'")
            .await
            >= 1,
        "the check by kenteken is a logged consultation"
    );
    assert_problem(
        app.get(
            &lead,
            "/api/v1/lookup/repeats?kenteken=12ABC3&lat=52.4&lon=4.6",
        )
        .send()
        .await
        .unwrap(),
        422,
        Some("kenteken"),
    )
    .await;
    assert_problem(
        app.get(&beheer, "/api/v1/lookup/repeats?kenteken=12ABC3")
            .send()
            .await
            .unwrap(),
        403,
        None,
    )
    .await;
    let (_, zuid) = app.user("hh.zuid", "handhaver", "Team Zuid", true).await;
    let theirs = lookup(&app, &zuid, "/api/v1/lookup/repeats?kenteken=12ABC3").await;
    assert_eq!(
        theirs["items"].as_array().unwrap().len(),
        0,
        "another team's reports stay theirs"
    );
    app.stop().await;

    // Slow, broken, garbled: not checked, in time, and the work goes on.
    for mode in ["slow", "broken", "garbage"] {
        let app = TestApp::spawn_with(b.clone(), |c| {
            c.rdw_url = at(mode);
            c.pdok_url = at(mode);
        })
        .await;
        app.demo_accounts().await;
        let hh = app.login("handhaver", "phone-hh").await;
        let started = std::time::Instant::now();
        let v = lookup(&app, &hh, "/api/v1/lookup/kenteken/12ABC3").await;
        assert_eq!(v["checked"], "not_checked", "{mode}: {v}");
        assert!(v["reason"].is_string());
        let a = lookup(&app, &hh, "/api/v1/lookup/adres?lat=52.4599&lon=4.6218").await;
        assert_eq!(a["checked"], "not_checked", "{mode}: {a}");
        assert!(a["wijk"].is_string(), "the wijk stands in for the address");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(9),
            "{mode}: answered in {:?}",
            started.elapsed()
        );
        let id = Uuid::new_v4();
        let mut r = thor_tests::report(id);
        r["sanction"] = json!("mulder");
        ok(app
            .post(&hh, "/api/v1/violations", &r)
            .send()
            .await
            .unwrap())
        .await;
        let overview = document(&app, &hh, &id.to_string(), "zaakoverzicht").await;
        assert!(
            pdf_text(&overview.bytes).contains("Adres niet opgezocht"),
            "{mode}"
        );
        app.stop().await;
    }

    // Switched off (the suite's default): not checked, saying so.
    let app = TestApp::spawn(b).await;
    app.demo_accounts().await;
    let hh = app.login("handhaver", "phone-hh").await;
    let v = lookup(&app, &hh, "/api/v1/lookup/kenteken/12ABC3").await;
    assert!(
        v["reason"].as_str().unwrap().contains("switched off"),
        "{v}"
    );
    app.stop().await;
}

both!(lookups_at_the_spot_answer_or_say_not_checked);

/// A youth group's earlier sightings, for those who read youth work; not for anyone else.
async fn a_youth_groups_earlier_sightings_are_for_youth_readers(b: Backend) {
    let app = TestApp::spawn(b).await;
    app.load_demo().await;
    let jb = app.login("jeugdboa", "phone-jb").await;
    let hh = app.login("handhaver", "phone-hh").await;
    let groups = lookup(&app, &jb, "/api/v1/youth/groups").await;
    let list = groups["items"]
        .as_array()
        .or(groups.as_array())
        .unwrap()
        .clone();
    assert!(!list.is_empty(), "{groups}");
    let mut seen = 0;
    for g in &list {
        let id = g["id"].as_str().unwrap();
        let r = lookup(&app, &jb, &format!("/api/v1/lookup/repeats?group={id}")).await;
        seen += r["sightings"].as_array().unwrap().len();
    }
    assert!(seen >= 1, "the demo's groups were seen");
    let id = list[0]["id"].as_str().unwrap();
    assert_problem(
        app.get(&hh, &format!("/api/v1/lookup/repeats?group={id}"))
            .send()
            .await
            .unwrap(),
        403,
        None,
    )
    .await;
    assert_problem(
        app.get(
            &jb,
            &format!("/api/v1/lookup/repeats?group={id}&lat=52.4&lon=4.6"),
        )
        .send()
        .await
        .unwrap(),
        422,
        Some("group"),
    )
    .await;
}

both!(a_youth_groups_earlier_sightings_are_for_youth_readers);
