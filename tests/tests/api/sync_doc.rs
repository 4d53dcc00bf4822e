//! SYNC.md is part of the contract: its column tables are what the code declares, and its
//! example requests are replayed against the running server, their answers matched.

use serde_json::Value;
use thor_tests::{Backend, TestApp, both};

const DOC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../mobile-api-spec/SYNC.md");

#[test]
fn column_tables_match_the_code() {
    let mut doc = std::fs::read_to_string(DOC).expect("SYNC.md");
    let mut changed = false;
    for table in thor::sync::engine::tables() {
        let marker = format!("<!-- columns:{} -->\n", table.name());
        let rows = thor::sync::table::markdown_columns(table.as_ref());
        let at = doc
            .find(&marker)
            .unwrap_or_else(|| panic!("SYNC.md lacks {marker}"));
        let start = at + marker.len();
        // An empty table (a new one) ends right at the marker's line.
        let end = if doc[start..].starts_with('\n') {
            start
        } else {
            doc[start..]
                .find("\n\n")
                .map(|i| start + i + 1)
                .unwrap_or(doc.len())
        };
        if doc[start..end] != rows {
            if std::env::var_os("UPDATE_OPENAPI").is_some() {
                doc.replace_range(start..end, &rows);
                changed = true;
            } else {
                panic!(
                    "SYNC.md's column table of {} differs from the code; run UPDATE_OPENAPI=1 cargo test -p thor-tests sync_doc",
                    table.name()
                );
            }
        }
    }
    if changed {
        std::fs::write(DOC, doc).unwrap();
    }
}

/// The adapter in SYNC.md is the file the conformance suite runs, verbatim.
#[test]
fn the_adapter_in_sync_md_is_the_one_the_tests_run() {
    let doc = std::fs::read_to_string(DOC).expect("SYNC.md");
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/conformance/thor-sync.js");
    let code = std::fs::read_to_string(file).expect("thor-sync.js");
    let marker = "<!-- adapter: tests/conformance/thor-sync.js -->\n```js\n";
    let start = doc.find(marker).expect("SYNC.md names its adapter") + marker.len();
    let end = start + doc[start..].find("```\n").expect("the code block ends");
    assert!(
        doc[start..end] == code,
        "SYNC.md's adapter differs from tests/conformance/thor-sync.js: copy the file into SYNC.md"
    );
}

struct Example {
    name: String,
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Option<String>,
    expected: Value,
}

fn examples(doc: &str) -> Vec<Example> {
    let mut out = Vec::new();
    for part in doc.split("<!-- example: ").skip(1) {
        let name = part.split(" -->").next().unwrap().to_string();
        let http = part
            .split("```http\n")
            .nth(1)
            .unwrap()
            .split("\n```")
            .next()
            .unwrap();
        let json = part
            .split("```json\n")
            .nth(1)
            .unwrap()
            .split("\n```")
            .next()
            .unwrap();
        let (head, body) = match http.split_once("\n\n") {
            Some((h, b)) => (h, Some(b.to_string())),
            None => (http, None),
        };
        let mut lines = head.lines();
        let (method, path) = lines.next().unwrap().split_once(' ').unwrap();
        let headers = lines
            .filter_map(|l| l.split_once(": "))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        out.push(Example {
            name,
            method: method.to_string(),
            path: path.to_string(),
            headers,
            body,
            expected: serde_json::from_str(json).unwrap_or_else(|e| panic!("example {json}: {e}")),
        });
    }
    out
}

/// `"*"` matches any value; objects match when every expected key matches; arrays element-wise.
fn matches(expected: &Value, actual: &Value, at: &str) -> Result<(), String> {
    match (expected, actual) {
        (Value::String(s), _) if s == "*" => Ok(()),
        (Value::Object(e), Value::Object(a)) => {
            for (k, v) in e {
                let av = a.get(k).ok_or_else(|| format!("{at}.{k} missing"))?;
                matches(v, av, &format!("{at}.{k}"))?;
            }
            Ok(())
        }
        (Value::Array(e), Value::Array(a)) if e.len() == a.len() => e
            .iter()
            .zip(a)
            .enumerate()
            .try_for_each(|(i, (ev, av))| matches(ev, av, &format!("{at}[{i}]"))),
        (e, a) if e == a => Ok(()),
        (e, a) => Err(format!("{at}: expected {e}, got {a}")),
    }
}

async fn the_examples_in_sync_md_hold(b: Backend) {
    let app = TestApp::spawn(b).await;
    app.demo_accounts().await;
    let token = app.login("handhaver", "example-phone").await;
    let doc = std::fs::read_to_string(DOC).expect("SYNC.md");
    let exs = examples(&doc);
    assert!(exs.len() >= 6, "found {} examples", exs.len());
    let id = uuid::Uuid::new_v4().to_string();
    let now_ms = (chrono::Utc::now() - chrono::Duration::minutes(3))
        .timestamp_millis()
        .to_string();
    let mut cursor = "0".to_string();
    let mut rev = "0".to_string();
    for ex in exs {
        let fill = |s: &str| {
            s.replace("{{id}}", &id)
                .replace("{{now_ms}}", &now_ms)
                .replace("{{cursor}}", &cursor)
                .replace("{{rev}}", &rev)
        };
        let method = reqwest::Method::from_bytes(ex.method.as_bytes()).unwrap();
        let mut req = app
            .client
            .request(method, app.url(&fill(&ex.path)))
            .bearer_auth(&token);
        for (k, v) in &ex.headers {
            req = req.header(k, fill(v));
        }
        if let Some(body) = &ex.body {
            req = req
                .header("content-type", "application/json")
                .body(fill(body));
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        let actual: Value = res.json().await.unwrap();
        let expected: Value = serde_json::from_str(&fill(&ex.expected.to_string())).unwrap();
        if let Err(e) = matches(&expected, &actual, "$") {
            panic!("example {} ({status}): {e}\nactual: {actual}", ex.name);
        }
        if let Some(ts) = actual["timestamp"].as_i64() {
            cursor = ts.to_string();
        }
        if let Some(r) = thor_tests::pulled_rows(&actual, "violations")
            .iter()
            .find(|r| r["id"] == id.as_str())
        {
            rev = r["server_rev"].to_string();
        }
    }
    app.stop().await;
}

both!(the_examples_in_sync_md_hold);
