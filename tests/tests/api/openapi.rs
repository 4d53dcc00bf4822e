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
