use serde_json::Value;
use thor_tests::{Backend, TestApp, both};

/// A point well inside each wijk (at least 350 m from its border), from the CBS 2024 shapes.
const INSIDE: &[(&str, f64, f64)] = &[
    ("WK045300", 52.45467, 4.64419),
    ("WK045301", 52.46078, 4.61108),
    ("WK045302", 52.45286, 4.62001),
    ("WK045303", 52.45928, 4.58911),
    ("WK045304", 52.44412, 4.57896),
    ("WK045305", 52.47203, 4.63613),
    ("WK045306", 52.43504, 4.61695),
    ("WK045307", 52.42009, 4.63372),
    ("WK045308", 52.43257, 4.66286),
    ("WK045309", 52.43415, 4.69174),
];

async fn lookup_finds_every_wijk_and_refuses_amsterdam(b: Backend) {
    let app = TestApp::spawn(b).await;
    app.demo_accounts().await;
    let t = app.login("handhaver", "phone-1").await;
    for (code, lat, lon) in INSIDE {
        let body: Value = app
            .get(&t, &format!("/api/v1/areas/lookup?lat={lat}&lon={lon}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(body["inside_velsen"], true, "{code}");
        assert_eq!(body["wijk"]["code"], *code, "{code}: {body}");
        assert!(
            body["buurt"]["code"]
                .as_str()
                .is_some_and(|c| c.starts_with(&format!("BU{}", &code[2..]))),
            "{code}: {body}"
        );
    }
    // De Dam, Amsterdam.
    let body: Value = app
        .get(&t, "/api/v1/areas/lookup?lat=52.3731&lon=4.8926")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["inside_velsen"], false);
    assert!(body["wijk"].is_null() && body["buurt"].is_null());
    assert!(body["message"].as_str().unwrap().contains("Buiten Velsen"));
    // Out of range.
    let res = app
        .get(&t, "/api/v1/areas/lookup?lat=200&lon=4.6")
        .send()
        .await
        .unwrap();
    thor_tests::assert_problem(res, 422, Some("lat")).await;
    app.stop().await;
}

async fn reference_data_is_complete_and_attributed(b: Backend) {
    let app = TestApp::spawn(b).await;
    app.demo_accounts().await;
    let t = app.login("handhaver", "phone-1").await;
    let res = app.get(&t, "/api/v1/reference/areas").send().await.unwrap();
    assert_eq!(res.headers()["content-type"], "application/geo+json");
    let areas: Value = res.json().await.unwrap();
    assert_eq!(areas["type"], "FeatureCollection");
    assert_eq!(
        areas["attribution"],
        "Kadaster / Centraal Bureau voor de Statistiek, 2024"
    );
    let features = areas["features"].as_array().unwrap();
    let wijken = features
        .iter()
        .filter(|f| f["properties"]["kind"] == "wijk")
        .count();
    let buurten = features
        .iter()
        .filter(|f| f["properties"]["kind"] == "buurt")
        .count();
    assert_eq!((wijken, buurten), (10, 63));

    let fc: Vec<Value> = app
        .get(&t, "/api/v1/reference/feitcodes")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(fc.len(), 82);
    let r397a = fc.iter().find(|f| f["code"] == "R397a").expect("R397a");
    assert_eq!(r397a["track"], "wahv");
    assert_eq!(r397a["category"], "parkeren");
    assert_eq!(r397a["valid_from"], "2015-05-15");
    let h004 = fc.iter().find(|f| f["code"] == "H004").expect("H004");
    assert_eq!(h004["track"], "bsb");
    let honden: Vec<Value> = app
        .get(&t, "/api/v1/reference/feitcodes?category=honden")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(honden.len(), 11);
    let none: Vec<Value> = app
        .get(&t, "/api/v1/reference/feitcodes?on=2014-01-01")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(none.is_empty(), "no feitcode was in force before 2015");

    let cats: Vec<Value> = app
        .get(&t, "/api/v1/reference/categories")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let codes: Vec<&str> = cats.iter().map(|c| c["code"].as_str().unwrap()).collect();
    assert_eq!(codes, ["afval", "parkeren", "honden", "overig"]);

    // Loading the fixtures again (every start does) changes nothing.
    thor::reference::load::load_fixtures(&app.state.db)
        .await
        .unwrap();
    assert_eq!(app.count("area").await, 73);
    assert_eq!(app.count("feitcode").await, 82);
    assert_eq!(app.count("category").await, 4);
    app.stop().await;
}

both!(
    lookup_finds_every_wijk_and_refuses_amsterdam,
    reference_data_is_complete_and_attributed
);
