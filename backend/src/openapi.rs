//! The OpenAPI 3.1 document's frame; the paths come from the `#[utoipa::path]` of each handler
//! as the router registers them (`app::api`). `thor openapi` writes it to
//! `mobile-api-spec/openapi.json`, and a test fails when the checked-in file drifts.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
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
    )
)]
struct ApiDoc;

struct BearerAuth;

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

/// The document as written to `mobile-api-spec/openapi.json`.
pub fn pretty_json() -> anyhow::Result<String> {
    Ok(crate::app::openapi().to_pretty_json()? + "\n")
}
