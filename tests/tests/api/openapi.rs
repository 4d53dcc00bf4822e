use serde_json::Value;

const SPEC: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../mobile-api-spec/openapi.json"
);

/// The checked-in spec is what the code generates. Regenerate with
/// `UPDATE_OPENAPI=1 cargo test -p thor-tests openapi` (or `thor openapi > mobile-api-spec/openapi.json`).
#[test]
fn checked_in_spec_matches_the_code() {
    let generated = thor::openapi::pretty_json().unwrap();
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(SPEC, &generated).unwrap();
    }
    let on_disk = std::fs::read_to_string(SPEC).unwrap_or_default();
    assert!(
        on_disk == generated,
        "mobile-api-spec/openapi.json differs from what the code generates; run: UPDATE_OPENAPI=1 cargo test -p thor-tests openapi"
    );
}

/// Every operation is documented well enough for a client generator: an operationId, a tag, and
/// a description on every response (utoipa drops empty ones, which makes a 3.1 spec invalid).
#[test]
fn every_operation_is_fully_described() {
    let doc: Value = serde_json::from_str(&thor::openapi::pretty_json().unwrap()).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            assert!(
                op["operationId"].is_string(),
                "{method} {path}: operationId"
            );
            assert!(
                op["tags"].as_array().is_some_and(|t| !t.is_empty()),
                "{method} {path}: tags"
            );
            for (status, res) in op["responses"].as_object().unwrap() {
                // A shared answer is a reference into components.responses.
                let res = match res["$ref"].as_str() {
                    Some(r) => {
                        let name = r.strip_prefix("#/components/responses/").unwrap();
                        &doc["components"]["responses"][name]
                    }
                    None => res,
                };
                assert!(
                    res["description"].as_str().is_some_and(|d| !d.is_empty()),
                    "{method} {path} {status}: description"
                );
            }
            if path != "/api/v1/auth/login" {
                assert!(
                    op.get("security").is_none(),
                    "{method} {path} inherits the bearer requirement"
                );
            }
        }
    }
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
}

/// Issue 15 item 7: the document tells the truth in the ways a client generator and a
/// fuzzer rely on. operationIds are unique and camelCase verb+resource; every operation that
/// needs the bearer token declares 401; every JSON body declares 400, 415 and 422; every UUID
/// path parameter declares 400; create operations link to reading what they created.
#[test]
fn operation_ids_are_unique_and_every_secured_operation_declares_401() {
    let doc: Value = serde_json::from_str(&thor::openapi::pretty_json().unwrap()).unwrap();
    let mut seen = std::collections::BTreeMap::new();
    let mut ids = std::collections::BTreeSet::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            let id = op["operationId"].as_str().unwrap();
            ids.insert(id.to_string());
            if let Some(before) = seen.insert(id.to_string(), format!("{method} {path}")) {
                panic!("operationId {id} of {method} {path} is also {before}");
            }
            assert!(
                id.chars().next().is_some_and(|c| c.is_ascii_lowercase())
                    && id.chars().all(|c| c.is_ascii_alphanumeric()),
                "{method} {path}: operationId {id} is not camelCase"
            );
            let responses = op["responses"].as_object().unwrap();
            let secured = op.get("security").is_none();
            if secured {
                assert!(responses.contains_key("401"), "{method} {path}: 401");
            }
            if op["requestBody"]["content"]
                .get("application/json")
                .is_some()
            {
                for s in ["400", "415", "422"] {
                    assert!(responses.contains_key(s), "{method} {path}: {s}");
                }
            }
            let uuid_path = op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|p| p["in"] == "path" && p["schema"]["format"] == "uuid");
            if uuid_path {
                assert!(responses.contains_key("400"), "{method} {path}: 400");
            }
            assert!(responses.contains_key("414"), "{method} {path}: 414");
            if path.starts_with("/api/v1/uploads") && method != "options" {
                assert!(responses.contains_key("412"), "{method} {path}: 412");
            }
        }
    }
    assert!(seen.len() > 70, "{} operations", seen.len());
    // Shared answers are references that resolve.
    for (name, res) in doc["components"]["responses"].as_object().unwrap() {
        assert_eq!(
            res["content"]["application/problem+json"]["schema"]["$ref"],
            "#/components/schemas/Problem",
            "{name}"
        );
    }
    // Links: every create with a read below it links there, to operations that exist.
    let create = &doc["paths"]["/api/v1/violations"]["post"]["responses"]["201"]["links"];
    assert_eq!(
        create["getViolation"]["operationId"], "getViolation",
        "{create}"
    );
    assert_eq!(
        create["getViolation"]["parameters"]["id"], "$response.body#/id",
        "{create}"
    );
    let mut links = 0;
    for ops in doc["paths"].as_object().unwrap().values() {
        for op in ops.as_object().unwrap().values() {
            for res in op["responses"].as_object().unwrap().values() {
                for link in res["links"]
                    .as_object()
                    .into_iter()
                    .flat_map(|l| l.values())
                {
                    links += 1;
                    let target = link["operationId"].as_str().unwrap();
                    assert!(ids.contains(target), "a link to {target}");
                }
            }
        }
    }
    assert!(links >= 20, "{links} links");
    // Originals are served in the format they were sent in.
    let original =
        &doc["paths"]["/api/v1/photos/{id}/original"]["get"]["responses"]["200"]["content"];
    for ct in ["image/jpeg", "image/png", "image/webp"] {
        assert!(original.get(ct).is_some(), "{original}");
    }
}
