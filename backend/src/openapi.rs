//! The OpenAPI 3.1 document's frame; the paths come from the `#[utoipa::path]` of each handler
//! as the router registers them (`app::api`). `thor openapi` writes it to
//! `mobile-api-spec/openapi.json`, and a test fails when the checked-in file drifts.

use utoipa::openapi::path::{Operation, Parameter, ParameterIn, PathItem};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Response, ResponseBuilder};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "THOR API",
        description = "Backend of the field app of Velsen's municipal enforcement team (THOR: Toezicht en Handhaving Openbare Ruimte). Errors are RFC 9457 application/problem+json documents that name the field at fault. Times are RFC 3339 in UTC.",
        license(name = "EUPL-1.2"),
    ),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    tags(
        (name = "auth", description = "Login, devices and accounts"),
        (name = "reference", description = "Wijken, buurten, categories and feitcodes"),
        (name = "violations", description = "Violation reports: afval, parkeren, honden, overig"),
        (name = "sync", description = "Offline sync (WatermelonDB protocol) and sync conflicts; see SYNC.md"),
        (name = "accountability", description = "For the functionaris gegevensbescherming: the disclosure register (Wpg art. 25)"),
        (name = "retention", description = "Legal holds and the archive read of records past their active stage (Wpg art. 8 and 14)"),
        (name = "lookup", description = "At the spot: the vehicle behind a kenteken (RDW open data) and the address of a position (PDOK Locatieserver)"),
        (name = "cases", description = "Finishing a case: the afdoening's track, its steps and deadlines, and the documents made from the record"),
    )
)]
struct ApiDoc;

struct BearerAuth;

/// One event of `GET /api/v1/sync/events` as an `EventSource` reads it.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct SyncEvent {
    /// `changed`: there is something new to pull.
    event: String,
    /// The sync sequence (as a string): `Last-Event-ID` on reconnect.
    id: String,
    /// JSON `{"timestamp": <sync sequence>}`.
    data: String,
}

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("Opaque device token from POST /api/v1/auth/login"))
                    .build(),
            ),
        );
    }
}

pub fn base() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    doc
}

/// What the whole router does to every operation, declared once here rather than in each
/// `#[utoipa::path]`: the answers of the middleware and extractors every route goes through
/// (`app::router`), and the links from each create operation to the operations on what it
/// created. Called on the document the routes produced (`app::openapi`, `app::router`).
pub fn finish(mut doc: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    let components = doc.components.get_or_insert_with(Default::default);
    for (name, description) in COMMON {
        components
            .responses
            .insert((*name).to_string(), RefOr::T(problem(description)));
    }
    let ops: Vec<(String, &'static str, OpInfo)> = doc
        .paths
        .paths
        .iter()
        .flat_map(|(path, item)| {
            operations(item)
                .into_iter()
                .map(move |(method, op)| (path.clone(), method, OpInfo::of(op)))
        })
        .collect();
    for (path, item) in doc.paths.paths.iter_mut() {
        let upload = path.starts_with("/api/v1/uploads");
        for (method, op) in operations_mut(item) {
            let info = OpInfo::of(op);
            let mut add = |status: &str, name: &str| {
                op.responses
                    .responses
                    .entry(status.to_string())
                    .or_insert_with(|| RefOr::Ref(Ref::from_response_name(name)));
            };
            if info.secured {
                add("401", "Unauthorized");
            }
            if info.json_body || info.uuid_path {
                add("400", "BadRequest");
            }
            if info.json_body {
                add("415", "UnsupportedMediaType");
            }
            if info.json_body || info.query {
                add("422", "Invalid");
            }
            if !upload {
                // `refuse_declared_oversize` reads only the declared length, whatever the
                // method; `time_limit` bounds every request but the uploads'.
                add("413", "TooLarge");
                add("408", "Timeout");
            }
            add("414", "UriTooLong");
            if method == "post" {
                add_links(path, op, &ops);
            }
        }
    }
    doc
}

/// The shared answers (`components.responses`): name and description.
const COMMON: &[(&str, &str)] = &[
    (
        "Unauthorized",
        "No token, or a token that is unknown, expired or revoked (`WWW-Authenticate: Bearer`): log in again",
    ),
    (
        "BadRequest",
        "The request cannot be read: the body is not JSON, not an object where one is declared, or has data after its value; or a path parameter is not a UUID (`errors[].field` is `path`)",
    ),
    (
        "UnsupportedMediaType",
        "The body is not sent as `Content-Type: application/json`",
    ),
    (
        "Invalid",
        "A field of the body or a query parameter is missing or invalid; `errors[].field` names it",
    ),
    (
        "TooLarge",
        "The body is larger than the server accepts (`THOR_MAX_BODY_BYTES`)",
    ),
    (
        "Timeout",
        "The request took longer than the server's limit (`THOR_REQUEST_TIMEOUT_S`)",
    ),
    (
        "UriTooLong",
        "The request target (path and query) is longer than the server accepts",
    ),
];

fn problem(description: &str) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/problem+json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build(),
        )
        .build()
}

/// What decides which shared answers an operation can give.
struct OpInfo {
    id: Option<String>,
    secured: bool,
    json_body: bool,
    uuid_path: bool,
    query: bool,
    path_params: Vec<String>,
}

impl OpInfo {
    fn of(op: &Operation) -> OpInfo {
        let params: Vec<&Parameter> = op
            .parameters
            .iter()
            .flatten()
            .filter_map(|p| match p {
                RefOr::T(p) => Some(p),
                RefOr::Ref(_) => None,
            })
            .collect();
        let is_uuid = |p: &Parameter| {
            serde_json::to_value(&p.schema)
                .is_ok_and(|s| s.get("format").and_then(|f| f.as_str()) == Some("uuid"))
        };
        OpInfo {
            id: op.operation_id.clone(),
            // No `security` of its own: the document's bearer requirement applies. The login
            // declares `security: [{}]` (none).
            secured: op.security.is_none(),
            json_body: match &op.request_body {
                Some(RefOr::T(b)) => b.content.contains_key("application/json"),
                _ => false,
            },
            uuid_path: params
                .iter()
                .any(|p| p.parameter_in == ParameterIn::Path && is_uuid(p)),
            query: params.iter().any(|p| p.parameter_in == ParameterIn::Query),
            path_params: params
                .iter()
                .filter(|p| p.parameter_in == ParameterIn::Path)
                .map(|p| p.name.clone())
                .collect(),
        }
    }
}

/// Links from a create operation (a POST whose success answer carries the created resource) to
/// every operation on a path below it with one more path parameter, filled from the answer's
/// `id`: `POST /api/v1/violations` → `GET /api/v1/violations/{id}`, `…/{id}/photos`, …
fn add_links(path: &str, op: &mut Operation, ops: &[(String, &'static str, OpInfo)]) {
    let own: Vec<String> = path_params_of(path);
    let prefix = format!("{path}/{{");
    let mut links = std::collections::BTreeMap::new();
    for (target_path, _method, target) in ops {
        let Some(rest) = target_path.strip_prefix(&prefix) else {
            continue;
        };
        let Some((param, _)) = rest.split_once('}') else {
            continue;
        };
        let wanted = path_params_of(target_path);
        if wanted.len() != own.len() + 1 || !target.path_params.iter().any(|p| p == param) {
            continue;
        }
        let Some(id) = &target.id else { continue };
        let mut link = utoipa::openapi::link::LinkBuilder::new()
            .operation_id(id.clone())
            .description(format!("`{param}` is the `id` of the created record"))
            .parameter(param, "$response.body#/id");
        for p in &own {
            link = link.parameter(p.clone(), format!("$request.path.{p}"));
        }
        links.insert(id.clone(), RefOr::T(link.build()));
    }
    if links.is_empty() {
        return;
    }
    for (status, res) in op.responses.responses.iter_mut() {
        if let (true, RefOr::T(res)) = (status == "200" || status == "201", res)
            && !res.content.is_empty()
        {
            res.links = links.clone();
        }
    }
}

fn path_params_of(path: &str) -> Vec<String> {
    path.split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(str::to_string)
        .collect()
}

fn operations(item: &PathItem) -> Vec<(&'static str, &Operation)> {
    [
        ("get", &item.get),
        ("put", &item.put),
        ("post", &item.post),
        ("delete", &item.delete),
        ("options", &item.options),
        ("head", &item.head),
        ("patch", &item.patch),
    ]
    .into_iter()
    .filter_map(|(m, op)| op.as_ref().map(|op| (m, op)))
    .collect()
}

fn operations_mut(item: &mut PathItem) -> Vec<(&'static str, &mut Operation)> {
    [
        ("get", &mut item.get),
        ("put", &mut item.put),
        ("post", &mut item.post),
        ("delete", &mut item.delete),
        ("options", &mut item.options),
        ("head", &mut item.head),
        ("patch", &mut item.patch),
    ]
    .into_iter()
    .filter_map(|(m, op)| op.as_mut().map(|op| (m, op)))
    .collect()
}

/// The document as written to `mobile-api-spec/openapi.json`.
pub fn pretty_json() -> anyhow::Result<String> {
    Ok(crate::app::openapi().to_pretty_json()? + "\n")
}
