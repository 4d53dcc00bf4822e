//! The team lead's web page: the briefing in Dutch, server-rendered (minijinja templates, SVG
//! drawn on the server, no external CDN or tile server), mobile-first and printable, with its
//! own login form and the review actions: approve or reject reports, write attention points,
//! sign the briefing off.
//!
//! The session is the same device token the API uses, in an HttpOnly, SameSite=Strict cookie;
//! a middleware hands it to the one `Principal` extractor, so roles and scope are decided in
//! the same place as for the API.
//!
//! Cross-site request forgery, in two checks of the same middleware, for every POST of the page
//! (a new form cannot forget them):
//! - **Origin**: a POST whose `Origin` (or, without one, `Referer`) names another site, or is
//!   `null`, is refused with 403 — before the body is read.
//! - **Token**: every form carries the session's CSRF token (`csrf`), an HMAC-SHA256 of a fixed
//!   label keyed with the session token ([`csrf_token`]); it is compared in constant time. A POST
//!   without it, or with another session's, is refused with 403, with or without an `Origin`.
//!   Keyed with the session itself, it needs no server secret (any instance checks it) and it
//!   changes with every login; knowing it tells nothing of the session token.
//!
//! The login form is the one POST without a token: there is no session to bind it to, and the
//! Origin check and the SameSite cookie stand in front of it. Refusals are problem+json, like
//! every other error the page answers.

use std::net::SocketAddr;
use std::sync::OnceLock;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Extension, Form, Path, Query, Request, State};
use axum::http::{HeaderValue, Method, Uri, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use chrono_tz::Europe::Amsterdam;
use minijinja::Environment;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::app::AppState;
use crate::auth::{Action, Principal, Role};
use crate::briefing::Shift;
use crate::briefing::svg::{self, MapArea, MapHotspot, MapInput, MapPoint};
use crate::error::ApiError;
use crate::labels;

mod report;

const COOKIE: &str = "thor_session";
/// The form field that carries the CSRF token on every POST form of the page.
const CSRF_FIELD: &str = "csrf";
/// What the CSRF token is the HMAC of (the key is the session token).
const CSRF_LABEL: &[u8] = b"thor web page csrf v1";
/// The largest form the page reads (the longest field is a note of a few lines).
const MAX_FORM_BYTES: usize = 64 * 1024;

fn templates() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        let add = |env: &mut Environment<'static>, name: &'static str, src: &'static str| {
            if let Err(e) = env.add_template(name, src) {
                tracing::error!(template = name, error = %e, "a page template does not compile");
            }
        };
        add(&mut env, "base.html", include_str!("templates/base.html"));
        add(&mut env, "login.html", include_str!("templates/login.html"));
        add(
            &mut env,
            "briefing.html",
            include_str!("templates/briefing.html"),
        );
        add(&mut env, "audit.html", include_str!("templates/audit.html"));
        add(
            &mut env,
            "report.html",
            include_str!("templates/report.html"),
        );
        add(&mut env, "error.html", include_str!("templates/error.html"));
        env
    })
}

/// The page's Content-Security-Policy: scripts only thor's own files (one: `app.js`, which
/// registers the offline service worker; no inline script), styles only from the `<style>`
/// elements this response carries (each with the response's nonce; no `style` attributes),
/// images only inline (`data:`) or from thor, forms only to thor, no framing.
pub fn page_csp(nonce: &str) -> String {
    format!(
        "default-src 'none'; script-src 'self'; worker-src 'self'; manifest-src 'self'; \
         style-src 'nonce-{nonce}'; img-src 'self' data:; \
         form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    )
}

/// One of the page's own files (the web app manifest, its icon, the script that registers the
/// service worker and the service worker itself: they keep the last signed briefing offline);
/// `no-cache`, so a new release's service worker is picked up.
fn page_file(mime: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, mime),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

async fn manifest() -> Response {
    page_file(
        "application/manifest+json",
        include_str!("static/manifest.webmanifest"),
    )
}

async fn icon() -> Response {
    page_file("image/svg+xml", include_str!("static/icon.svg"))
}

async fn app_js() -> Response {
    page_file(
        "text/javascript; charset=utf-8",
        include_str!("static/app.js"),
    )
}

async fn service_worker() -> Response {
    let mut res = page_file(
        "text/javascript; charset=utf-8",
        include_str!("static/sw.js"),
    );
    // The service worker fetches the briefing from thor: its own policy lets it connect there
    // and nowhere else (the server's default policy forbids every fetch).
    res.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; connect-src 'self'"),
    );
    res
}

/// A fresh nonce for one response's styles: 16 random bytes, base64.
fn style_nonce() -> String {
    use base64::Engine;
    use rand::RngCore;
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Renders a page with its security headers. The page's styles are `<style>` elements: the
/// stylesheet of `base.html` and the default style of each server-drawn SVG (`briefing::svg`).
/// Each gets this response's nonce here, on the rendered text: the templates escape every value
/// they insert, and the SVGs (the only text inserted raw) escape their labels, so a `<style>`
/// in the output is always one of ours. `Referrer-Policy: same-origin` (not `no-referrer`):
/// with `no-referrer` a browser sends `Origin: null` on the page's own form posts, which the
/// origin check refuses.
fn render(name: &str, ctx: impl Serialize) -> Response {
    match templates().get_template(name).and_then(|t| t.render(ctx)) {
        Ok(html) => {
            let nonce = style_nonce();
            let html = html.replace("<style>", &format!("<style nonce=\"{nonce}\">"));
            let mut res = Html(html).into_response();
            let h = res.headers_mut();
            if let Ok(v) = HeaderValue::from_str(&page_csp(&nonce)) {
                h.insert(header::CONTENT_SECURITY_POLICY, v);
            }
            h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
            h.insert(
                header::REFERRER_POLICY,
                HeaderValue::from_static("same-origin"),
            );
            res
        }
        Err(e) => ApiError::internal(anyhow::anyhow!("rendering {name}: {e}")).into_response(),
    }
}

/// Whether the session cookie gets `Secure`: when thor is told it is served over https
/// (`THOR_PUBLIC_URL=https://…`), or when the proxy in front says this request came over https
/// (`X-Forwarded-Proto: https` or `Forwarded: …proto=https`). Those headers need no trusted
/// proxy list: `Secure` only ever restricts a cookie, so a client that sends them itself only
/// keeps its own cookie off plain http.
fn cookie_secure(config: &crate::config::Config, headers: &axum::http::HeaderMap) -> bool {
    let forwarded_https = headers
        .get_all("x-forwarded-proto")
        .iter()
        .chain(headers.get_all(header::FORWARDED).iter())
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split([',', ';']))
        .map(|p| p.trim().to_ascii_lowercase())
        .any(|p| p == "https" || p == "proto=https" || p == "proto=\"https\"");
    config.served_over_https() || forwarded_https
}

fn session_cookie(value: &str, max_age: u32, secure: bool) -> Option<HeaderValue> {
    let cookie = cookie::Cookie::build((COOKIE, value))
        .http_only(true)
        .same_site(cookie::SameSite::Strict)
        .path("/")
        .max_age(cookie::time::Duration::seconds(max_age.into()))
        .secure(secure)
        .build();
    HeaderValue::from_str(&cookie.to_string()).ok()
}

pub fn router(state: &AppState) -> Router<AppState> {
    let files = Router::new()
        .route("/manifest.webmanifest", get(manifest))
        .route("/icon.svg", get(icon))
        .route("/app.js", get(app_js))
        .route("/sw.js", get(service_worker));
    Router::new()
        .route("/", get(|| async { Redirect::to("/briefing") }))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/briefing", get(briefing_page))
        .route("/audit", get(audit_page))
        .route("/briefing/review/{id}", post(review))
        .route("/briefing/review/{id}/undo", post(report::undo))
        .route("/briefing/melding/{id}", get(report::report_page))
        .route("/briefing/zaken/{id}/stap", post(report::take_step))
        .route("/briefing/notes", post(add_note))
        .route("/briefing/signoff", post(sign_off))
        .route("/briefing/conflicts/{id}", post(resolve_conflict))
        .layer(axum::middleware::from_fn_with_state(state.clone(), session))
        .layer(axum::middleware::from_fn(dutch_errors))
        .merge(files)
}

/// A browser that asks for a page gets a refusal as a page in Dutch (what happened, what to do,
/// the way back), with the problem's status; other clients keep the problem+json body. One
/// place for every page route and for the session's own refusals (origin, CSRF).
async fn dutch_errors(req: Request, next: Next) -> Response {
    let wants_html = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    let back = req
        .headers()
        .get(header::REFERER)
        .and_then(|v| v.to_str().ok())
        .and_then(|r| url::Url::parse(r).ok())
        .map(|u| {
            let mut path = u.path().to_string();
            if let Some(q) = u.query() {
                path.push('?');
                path.push_str(q);
            }
            safe_back(Some(&path))
        })
        .unwrap_or_else(|| "/briefing".into());
    let res = next.run(req).await;
    let problem = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"));
    if !wants_html || !problem {
        return res;
    }
    let status = res.status();
    let body = axum::body::to_bytes(res.into_body(), 64 * 1024)
        .await
        .unwrap_or_default();
    let p: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let (title, advice) = dutch_problem(status.as_u16());
    let fields: Vec<serde_json::Value> = p
        .get("errors")
        .and_then(|e| e.as_array())
        .into_iter()
        .flatten()
        .map(|e| serde_json::json!({ "field": e.get("field"), "message": e.get("message") }))
        .collect();
    let mut out = render(
        "error.html",
        minijinja::context! {
            title => title,
            advice => advice,
            fields => fields,
            status => status.as_u16(),
            detail => p.get("detail").and_then(|d| d.as_str()).unwrap_or_default(),
            back => back,
        },
    );
    *out.status_mut() = status;
    out
}

/// What a refusal means for the lead, and what to do.
fn dutch_problem(status: u16) -> (&'static str, &'static str) {
    match status {
        401 => ("Niet ingelogd", "Log opnieuw in om verder te gaan."),
        403 => (
            "Dit mag niet",
            "Uw account mag dit niet, of het formulier was verlopen: laad de pagina opnieuw en probeer het nog eens.",
        ),
        404 => (
            "Niet gevonden",
            "Dit bestaat niet (meer), of u mag het niet zien.",
        ),
        409 => (
            "Intussen veranderd",
            "Iemand anders was u voor, bijvoorbeeld een collega die deze melding al beoordeelde. Laad de lijst opnieuw en kijk wat er nu staat.",
        ),
        413 => ("Te groot", "Wat u verstuurde is te groot."),
        422 | 400 => (
            "Controleer wat u invulde",
            "Niet alles klopt; hieronder staat wat er mis is.",
        ),
        429 => (
            "Even wachten",
            "Te veel pogingen achter elkaar. Wacht een minuut en probeer het opnieuw.",
        ),
        503 => (
            "Even niet beschikbaar",
            "De server is druk of start opnieuw. Probeer het over een minuut opnieuw.",
        ),
        _ => (
            "Er ging iets mis",
            "Er ging iets mis op de server. Probeer het opnieuw; blijft het misgaan, meld het dan bij functioneel beheer.",
        ),
    }
}

/// The page's session on the API's reads: a GET or HEAD with the session cookie and no bearer
/// token is the cookie's session, so the page can show a report's photos and offer the exports.
/// Reads only: a write to the API needs the bearer token (the page's own forms carry CSRF
/// tokens; the API's requests have none to check). The cookie is `SameSite=Strict`, so no other
/// site can make a browser send it, and the API answers no cross-origin script.
pub async fn session_reads(mut req: Request, next: Next) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD)
        && !req.headers().contains_key(header::AUTHORIZATION)
        && let Some(t) = cookie_token(&req)
        && let Ok(v) = HeaderValue::from_str(&format!("Bearer {t}"))
    {
        req.headers_mut().insert(header::AUTHORIZATION, v);
    }
    next.run(req).await
}

fn cookie_token(req: &Request) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == COOKIE)
        .map(|c| c.value().to_string())
}

/// The CSRF token of the page for a session: HMAC-SHA256 of [`CSRF_LABEL`] keyed with the
/// session token, base64url.
pub fn csrf_token(session: &str) -> String {
    use base64::Engine;
    use hmac::Mac;
    csrf_mac(session)
        .map(|m| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(m.finalize().into_bytes()))
        .unwrap_or_default()
}

fn csrf_mac(session: &str) -> Option<hmac::Hmac<sha2_hmac::Sha256>> {
    use hmac::{KeyInit, Mac};
    // HMAC takes a key of any length; `None` is not reachable.
    let mut mac = hmac::Hmac::<sha2_hmac::Sha256>::new_from_slice(session.as_bytes()).ok()?;
    mac.update(CSRF_LABEL);
    Some(mac)
}

/// Whether `sent` is the CSRF token of `session`, compared in constant time (`verify_slice`).
fn csrf_matches(session: &str, sent: &str) -> bool {
    use base64::Engine;
    use hmac::Mac;
    let Ok(tag) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(sent.trim()) else {
        return false;
    };
    !session.is_empty() && csrf_mac(session).is_some_and(|m| m.verify_slice(&tag).is_ok())
}

/// The CSRF token of this request's session, for the templates' forms.
#[derive(Clone)]
struct Csrf(String);

fn bearer(req: &Request) -> Option<String> {
    let raw = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    raw.strip_prefix("Bearer ")
        .or_else(|| raw.strip_prefix("bearer "))
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
}

/// The scheme and authority (`https://host:port`) of an `Origin` or `Referer` value.
fn origin_of(value: &str) -> Option<(String, String)> {
    let uri: Uri = value.trim().parse().ok()?;
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return None;
    }
    Some((scheme, uri.authority()?.as_str().to_ascii_lowercase()))
}

/// Refuses a POST that says it comes from another site: its `Origin`, or without one its
/// `Referer`, must name this server: the `Host` it was sent to, or the origin of
/// `THOR_PUBLIC_URL` (a proxy may pass on another `Host`). `Origin: null` (a sandboxed or
/// privacy-stripped context) is refused. A POST with neither header passes on to the token check.
fn same_origin(req: &Request, config: &crate::config::Config) -> Result<(), ApiError> {
    let headers = req.headers();
    let claimed = match (headers.get(header::ORIGIN), headers.get(header::REFERER)) {
        (Some(v), _) | (None, Some(v)) => v.to_str().ok().and_then(origin_of),
        (None, None) => return Ok(()),
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_ascii_lowercase)
        .or_else(|| {
            req.uri()
                .authority()
                .map(|a| a.as_str().to_ascii_lowercase())
        });
    match (claimed, host) {
        (Some((_, authority)), Some(host)) if authority == host => Ok(()),
        (Some(origin), _) if config.public_origin().as_ref() == Some(&origin) => Ok(()),
        _ => Err(ApiError::Forbidden(
            "cross-origin form posts are refused".into(),
        )),
    }
}

/// Reads the form and lets the request on only when it carries the session's CSRF token.
async fn check_csrf(req: Request, session: Option<&str>) -> Result<Request, ApiError> {
    let refuse = || {
        ApiError::Forbidden(
            "the form does not carry this session's CSRF token; reload the page and try again"
                .into(),
        )
    };
    let Some(session) = session else {
        return Err(refuse());
    };
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_FORM_BYTES)
        .await
        .map_err(|_| {
            ApiError::PayloadTooLarge(format!("a form is at most {MAX_FORM_BYTES} bytes"))
        })?;
    let sent = form_urlencoded::parse(&bytes)
        .find(|(k, _)| k == CSRF_FIELD)
        .map(|(_, v)| v.into_owned());
    match sent {
        Some(t) if csrf_matches(session, &t) => Ok(Request::from_parts(parts, Body::from(bytes))),
        _ => Err(refuse()),
    }
}

/// Hands the session cookie to the `Principal` extractor and its CSRF token to the templates;
/// refuses cross-origin POSTs and POSTs without the session's token (see the module's doc).
async fn session(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    if !req.headers().contains_key(header::AUTHORIZATION)
        && let Some(t) = cookie_token(&req)
        && let Ok(v) = HeaderValue::from_str(&format!("Bearer {t}"))
    {
        req.headers_mut().insert(header::AUTHORIZATION, v);
    }
    // The token the request authenticates with is the one its forms must be bound to.
    let session = bearer(&req);
    if let Some(t) = &session {
        req.extensions_mut().insert(Csrf(csrf_token(t)));
    }
    if req.method() == Method::POST {
        if let Err(e) = same_origin(&req, &state.config) {
            return e.into_response();
        }
        if req.uri().path() != "/login" {
            req = match check_csrf(req, session.as_deref()).await {
                Ok(r) => r,
                Err(e) => return e.into_response(),
            };
        }
    }
    next.run(req).await
}

#[derive(Serialize)]
struct LoginCtx {
    error: Option<String>,
}

async fn login_page() -> Response {
    render("login.html", LoginCtx { error: None })
}

#[derive(Deserialize)]
struct LoginForm {
    username: String,
    password: String,
}

async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: axum::http::HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    let device = format!("web-{}", &Uuid::new_v4().simple().to_string()[..12]);
    match crate::auth::routes::authenticate(
        &state,
        f.username.trim(),
        f.password,
        &device,
        peer.ip(),
    )
    .await
    {
        Ok((token, _, user)) => {
            // The privacy officer reads the log, not the briefing.
            let home = if user.role == Role::Fg.as_str() {
                "/audit"
            } else {
                "/briefing"
            };
            let mut res = Redirect::to(home).into_response();
            if let Some(v) = session_cookie(&token, 43200, cookie_secure(&state.config, &headers)) {
                res.headers_mut().insert(header::SET_COOKIE, v);
            }
            res
        }
        Err(e) => {
            let msg = match &e {
                ApiError::TooManyRequests { .. } => {
                    "Te veel pogingen; probeer het over een minuut opnieuw."
                }
                ApiError::Unauthorized(_) => "Onbekende gebruikersnaam of verkeerd wachtwoord.",
                _ => "Inloggen lukt nu niet; probeer het later opnieuw.",
            };
            let mut res = render(
                "login.html",
                LoginCtx {
                    error: Some(msg.into()),
                },
            );
            *res.status_mut() = e.status();
            res
        }
    }
}

async fn logout(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    p: Result<Principal, ApiError>,
) -> Response {
    if let Ok(p) = p
        && let Err(e) = crate::auth::accounts::revoke(
            &state.db,
            &p.actor(),
            p.user_id,
            Some(&p.device_id),
            "logout",
        )
        .await
    {
        // The cookie is cleared anyway; the token stays valid until it expires or is revoked.
        tracing::warn!(error = ?e, "logout could not revoke the session token");
    }
    let mut res = Redirect::to("/login").into_response();
    if let Some(v) = session_cookie("", 0, cookie_secure(&state.config, &headers)) {
        res.headers_mut().insert(header::SET_COOKIE, v);
    }
    // The offline copy of the briefing (the service worker's cache) leaves with the session.
    res.headers_mut().insert(
        "clear-site-data",
        HeaderValue::from_static("\"cache\", \"storage\""),
    );
    res
}

#[derive(Deserialize)]
struct PageQuery {
    date: Option<String>,
    shift: Option<String>,
    /// The first report of the list shown (paging, `report::PAGE` at a time).
    van: Option<u64>,
    /// The report just reviewed on the page: the list says so and offers to undo it.
    gedaan: Option<Uuid>,
    /// The list's filters.
    #[serde(flatten)]
    list: report::ListQuery,
}

fn parse_day_shift(
    date: Option<&str>,
    shift: Option<&str>,
) -> Result<(NaiveDate, Option<Shift>), ApiError> {
    let date = match date.filter(|d| !d.is_empty()) {
        Some(d) => NaiveDate::parse_from_str(d, "%Y-%m-%d")
            .map_err(|_| ApiError::field("date", "YYYY-MM-DD"))?,
        None => crate::demo::today(),
    };
    let shift = match shift.filter(|s| !s.is_empty()) {
        Some(s) => {
            Some(Shift::parse(s).ok_or_else(|| ApiError::field("shift", "early, late or night"))?)
        }
        None => None,
    };
    Ok((date, shift))
}

const DAYS: [&str; 7] = [
    "maandag",
    "dinsdag",
    "woensdag",
    "donderdag",
    "vrijdag",
    "zaterdag",
    "zondag",
];
const MONTHS: [&str; 12] = [
    "januari",
    "februari",
    "maart",
    "april",
    "mei",
    "juni",
    "juli",
    "augustus",
    "september",
    "oktober",
    "november",
    "december",
];

fn dutch_date(d: NaiveDate) -> String {
    format!(
        "{} {} {} {}",
        DAYS[d.weekday().num_days_from_monday() as usize],
        d.day(),
        MONTHS[d.month0() as usize],
        d.year()
    )
}

fn local_time(t: DateTime<Utc>) -> String {
    t.with_timezone(&Amsterdam).format("%H:%M").to_string()
}

fn dec(x: f64, digits: usize) -> String {
    format!("{x:.digits$}").replace('.', ",")
}

fn duration(secs: i64) -> String {
    format!("{}:{:02}", secs / 3600, (secs % 3600) / 60)
}

/// The name the header shows: the account's display name (its username when it has none).
async fn display_name(state: &AppState, p: &Principal) -> String {
    use crate::auth::entities::app_user;
    use sea_orm::EntityTrait;
    match app_user::Entity::find_by_id(p.user_id)
        .one(&state.db.read)
        .await
    {
        Ok(Some(u)) => u.shown_name().to_string(),
        _ => p.username.clone(),
    }
}

fn shift_nl(s: Option<&str>) -> String {
    s.and_then(Shift::parse)
        .map(|s| s.dutch().to_string())
        .unwrap_or_default()
}

fn to_login() -> Response {
    Redirect::to("/login").into_response()
}

async fn briefing_page(
    State(state): State<AppState>,
    p: Result<Principal, ApiError>,
    csrf: Option<Extension<Csrf>>,
    Query(q): Query<PageQuery>,
) -> Response {
    let Ok(p) = p else { return to_login() };
    if p.role == Role::Fg {
        return Redirect::to("/audit").into_response();
    }
    let csrf = csrf.map(|Extension(Csrf(t))| t).unwrap_or_default();
    match page(&state, &p, q, &csrf).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

/// The fg's search form over the audit log, as `GET /api/v1/audit` (the same search, logged).
#[derive(Deserialize, Serialize, Default, Clone)]
struct AuditPageQuery {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    actor: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    record_type: String,
    #[serde(default)]
    record_id: String,
    #[serde(default)]
    after: String,
}

#[derive(Serialize)]
struct AuditLineView {
    at: String,
    actor: String,
    action: String,
    record_type: String,
    record_id: Option<String>,
    reason: String,
}

async fn audit_page(
    State(state): State<AppState>,
    p: Result<Principal, ApiError>,
    csrf: Option<Extension<Csrf>>,
    Query(q): Query<AuditPageQuery>,
) -> Response {
    let Ok(p) = p else { return to_login() };
    if let Err(e) = p.authorize(Action::ReadAccountability) {
        return e.into_response();
    }
    let csrf = csrf.map(|Extension(Csrf(t))| t).unwrap_or_default();
    let text = |s: &str| (!s.trim().is_empty()).then(|| s.trim().to_string());
    let day = |s: &str, what: &str| match text(s) {
        None => Ok(None),
        Some(d) => NaiveDate::parse_from_str(&d, "%Y-%m-%d")
            .map(Some)
            .map_err(|_| format!("{what}: een dag als 2026-12-01")),
    };
    let parsed = (|| {
        Ok::<_, String>(crate::audit::routes::LogQuery {
            from: day(&q.from, "Vanaf")?,
            to: day(&q.to, "Tot")?,
            actor: text(&q.actor),
            action: text(&q.action),
            record_type: text(&q.record_type),
            record_id: text(&q.record_id),
            after: match text(&q.after) {
                Some(a) => Some(
                    a.parse()
                        .map_err(|_| "after: een regelnummer".to_string())?,
                ),
                None => None,
            },
            limit: Some(100),
        })
    })();
    let (lines, next, error) = match parsed {
        Err(e) => (vec![], None, Some(e)),
        Ok(lq) => match crate::audit::routes::search(&state, &p, &lq).await {
            Err(e) => return e.into_response(),
            Ok(page) => {
                let next = page.next_after.map(|a| {
                    let mut next_q = serde_urlencoded::to_string(AuditPageQuery {
                        after: a.to_string(),
                        ..q.clone()
                    })
                    .unwrap_or_default();
                    next_q.insert_str(0, "/audit?");
                    next_q
                });
                let lines = page
                    .items
                    .into_iter()
                    .map(|l| AuditLineView {
                        at: format!(
                            "{} {}",
                            dutch_date(l.at.with_timezone(&Amsterdam).date_naive()),
                            local_time(l.at)
                        ),
                        actor: l.actor.unwrap_or_default(),
                        action: l.action,
                        record_type: l.record_type,
                        record_id: l.record_id,
                        reason: l.reason.unwrap_or_default(),
                    })
                    .collect();
                (lines, next, None)
            }
        },
    };
    render(
        "audit.html",
        minijinja::context! {
            user_name => display_name(&state, &p).await,
            csrf => csrf,
            q => q,
            lines => lines,
            next => next,
            error => error,
        },
    )
}

/// Hotspots on the map and in the table, numbered alike.
const HOTSPOTS_SHOWN: usize = 12;

/// The briefing's map: the wijken shaded by their count, the reports, sightings and incidents,
/// the numbered hotspots (as in the table) and the rounds' tracks.
fn briefing_map(
    state: &AppState,
    b: &crate::briefing::Briefing,
    facts: &crate::briefing::load::MapFacts,
    date: NaiveDate,
) -> String {
    let areas: Vec<MapArea> = state
        .reference
        .areas
        .areas()
        .iter()
        .filter(|a| a.kind == crate::geo::AreaKind::Wijk)
        .map(|a| MapArea {
            code: a.code.clone(),
            name: a.name.clone(),
            shape: a.shape.clone(),
            count: b
                .violations
                .by_wijk
                .iter()
                .find(|w| w.key == a.code)
                .map_or(0, |w| w.count as u32),
        })
        .collect();
    let mut points: Vec<MapPoint> = facts
        .violations
        .iter()
        .map(|(lat, lon, c)| MapPoint {
            lat: *lat,
            lon: *lon,
            class: svg::category_class(c),
        })
        .collect();
    points.extend(facts.sightings.iter().map(|(lat, lon)| MapPoint {
        lat: *lat,
        lon: *lon,
        class: "youth",
    }));
    points.extend(facts.incidents.iter().map(|(lat, lon)| MapPoint {
        lat: *lat,
        lon: *lon,
        class: "incident",
    }));
    // Numbered as in the hotspot table (two hotspots in one buurt are told apart).
    let hotspots: Vec<MapHotspot> = b
        .hotspots
        .iter()
        .take(HOTSPOTS_SHOWN)
        .enumerate()
        .map(|(i, h)| MapHotspot {
            lat: h.lat,
            lon: h.lon,
            radius_m: h.radius_m.max(40.0),
            label: (i + 1).to_string(),
            covered: h.covered_by_round,
        })
        .collect();
    let title = format!("Velsen, {}", dutch_date(date));
    svg::map_svg(
        &MapInput {
            areas: &areas,
            points: &points,
            hotspots: &hotspots,
            tracks: &facts.tracks,
            title: &title,
        },
        900,
    )
}

/// The team's open sync conflicts (the 20 newest), for the lead to settle; Wpg values withheld
/// as the read gate says, and what is shown noted in the page's disclosure.
async fn conflicts_section(
    state: &AppState,
    p: &Principal,
    disclosure: &mut crate::access::Disclosure,
) -> Result<Vec<serde_json::Value>, ApiError> {
    if !crate::sync::engine::may_resolve(p) {
        return Ok(vec![]);
    }
    use crate::sync::entities::sync_conflict;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
    let open = sync_conflict::Entity::find().filter(sync_conflict::Column::Status.eq("open"));
    let show = |v: &Option<serde_json::Value>| match v {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Null) | None => "—".to_string(),
        Some(other) => other.to_string(),
    };
    let rows = match p.scoped(open, sync_conflict::Column::TeamId) {
        Some(q) => {
            q.order_by_desc(sync_conflict::Column::CreatedAt)
                .limit(20)
                .all(&state.db.read)
                .await?
        }
        None => vec![],
    };
    Ok(rows.into_iter()
        .filter_map(|c| crate::sync::routes::view(c, disclosure))
        .map(|c| {
            let withheld = || "(afgeschermd: Wpg)".to_string();
            serde_json::json!({
                "id": c.id,
                "what": format!("{} {}{}", labels::nl("record_type", &c.table), &c.record_id.chars().take(8).collect::<String>(), c.field.as_deref().map(|f| format!(", veld {}", labels::nl("field", f))).unwrap_or_default()),
                "server": if c.redacted { withheld() } else { show(&c.server_value) },
                "phone": if c.redacted { withheld() } else { show(&c.client_value) },
                "applied": if c.redacted { withheld() } else { show(&c.applied_value) },
                "field": c.field.is_some(),
                "when": local_time(c.created_at),
            })
        })
        .collect::<Vec<_>>())
}

/// The day's shift links: the whole day and each shift with its hours.
fn shift_links(
    hours: &crate::briefing::ShiftHours,
    date: NaiveDate,
    shift_key: &str,
) -> Vec<serde_json::Value> {
    [
        ("", "Hele dag".to_string()),
        ("early", format!("Vroeg {}", hours.span(Shift::Early))),
        ("late", format!("Laat {}", hours.span(Shift::Late))),
        ("night", format!("Nacht {}", hours.span(Shift::Night))),
    ]
    .iter()
    .map(|(k, l)| {
            serde_json::json!({
                "label": l, "on": *k == shift_key,
                "href": if k.is_empty() { format!("/briefing?date={date}") } else { format!("/briefing?date={date}&shift={k}") },
            })
        })
        .collect::<Vec<_>>()
}

/// The summary cards at the top of the briefing.
fn summary_cards(b: &crate::briefing::Briefing) -> Vec<serde_json::Value> {
    let v = &b.violations;
    vec![
        serde_json::json!({ "key": "violations", "n": v.total, "l": format!("overtredingen (gem. {})", dec(v.avg7, 1)) }),
        serde_json::json!({ "key": "warnings", "n": v.warnings, "l": "waarschuwingen" }),
        serde_json::json!({ "key": "fines", "n": v.fines, "l": "boetes" }),
        serde_json::json!({ "key": "rounds", "n": format!("{}/{}", b.rounds.done, b.rounds.planned), "l": "rondes gelopen/gepland" }),
        serde_json::json!({ "key": "km", "n": dec(b.rounds.distance_m / 1000.0, 1), "l": "km op straat" }),
        serde_json::json!({ "key": "hours", "n": duration(b.rounds.duration_s), "l": "uur op straat" }),
        serde_json::json!({ "key": "incidents", "n": b.incidents.len(), "l": "incidenten" }),
        serde_json::json!({ "key": "awaiting", "n": b.follow_ups.awaiting_review, "l": "te beoordelen" }),
    ]
}

async fn page(
    state: &AppState,
    p: &Principal,
    q: PageQuery,
    csrf: &str,
) -> Result<Response, ApiError> {
    let (date, shift) = parse_day_shift(q.date.as_deref(), q.shift.as_deref())?;
    let now = Utc::now();
    let (b, facts) =
        crate::briefing::load::briefing_and_map(&state.db.read, &state.ask(p, date, shift, now))
            .await?;
    crate::briefing::routes::log_reads(state, p, &b).await?;

    let map_svg = briefing_map(state, &b, &facts, date);

    // What this page lets out of Wpg data, logged before it is sent.
    let mut disclosure = crate::access::Disclosure::new(p, &state.audit);
    let reports = if p.may(Action::ReviewViolation) {
        Some(
            report::list_section(
                state,
                p,
                &report::ListView {
                    filters: &q.list,
                    van: q.van.unwrap_or(0),
                    done: q.gedaan,
                    date,
                    shift,
                },
                &mut disclosure,
            )
            .await?,
        )
    } else {
        None
    };

    let conflicts = conflicts_section(state, p, &mut disclosure).await?;
    let lead = p.may(Action::LeadBriefing);
    let cases = if lead {
        Some(
            report::cases_section(
                state,
                p,
                &format!(
                    "/briefing?date={date}{}",
                    shift
                        .map(|s| format!("&shift={}", s.as_str()))
                        .unwrap_or_default()
                ),
            )
            .await?,
        )
    } else {
        None
    };
    let shift_key = shift.map(Shift::as_str).unwrap_or("");
    let shifts = shift_links(&state.shifts, date, shift_key);
    let v = &b.violations;
    let cards = summary_cards(&b);
    let back = format!(
        "/briefing?date={date}{}",
        if shift_key.is_empty() {
            String::new()
        } else {
            format!("&shift={shift_key}")
        }
    );
    let signed = b.signed.is_some();
    let ctx = serde_json::json!({
        "user_name": display_name(state, p).await, "user_role": labels::nl("role", p.role.as_str()), "csrf": csrf,
        "date": date.to_string(), "date_label": dutch_date(date),
        "shift": shift_key, "shift_label": shift.map(Shift::dutch).unwrap_or(""),
        "prev_date": (date - chrono::Duration::days(1)).to_string(),
        "next_date": (date + chrono::Duration::days(1)).to_string(),
        "shifts": shifts,
        "signed": b.signed.is_some(),
        "signed_by": b.signed.as_ref().map(|s| s.by_name.clone()),
        "signed_at": b.signed.as_ref().map(|s| s.at.with_timezone(&Amsterdam).format("%d-%m-%Y %H:%M").to_string()),
        "addendum": b.addendum.as_ref().map(|a| a.changes.clone()).unwrap_or_default(),
        "can_sign": lead && b.signed.is_none(),
        "can_review": p.may(Action::ReviewViolation),
        "can_write_notes": lead,
        "cards": cards,
        "map_svg": map_svg,
        "total_trend": svg::trend_svg(&v.daily.iter().map(|n| *n as f64).collect::<Vec<_>>(), date, 420, 130, "Overtredingen per dag, 28 dagen en vandaag"),
        "avg7": dec(v.avg7, 1), "avg28": dec(v.avg28, 1),
        "category_bars": svg::bars_svg(&v.by_category.iter().map(|c| (labels::nl("category", &c.key).to_string(), c.count as f64)).collect::<Vec<_>>(), 420, "Overtredingen per categorie"),
        "by_outcome": v.by_outcome.iter().map(|o| serde_json::json!({ "label": labels::nl("outcome", &o.key), "count": o.count })).collect::<Vec<_>>(),
        "by_wijk": v.by_wijk.iter().map(|w| serde_json::json!({
            "name": w.label.clone().unwrap_or_else(|| w.key.clone()), "count": w.count,
            "avg7": dec(w.avg7, 1), "avg28": dec(w.avg28, 1),
            "spark": svg::sparkline_svg(&w.daily.iter().map(|n| *n as f64).collect::<Vec<_>>(), 110, 24, &format!("Trend {}", w.label.clone().unwrap_or_default())),
        })).collect::<Vec<_>>(),
        "by_feitcode": v.by_feitcode.iter().take(10).map(|f| serde_json::json!({ "code": f.key, "label": f.label, "count": f.count })).collect::<Vec<_>>(),
        "hotspots": b.hotspots.iter().take(HOTSPOTS_SHOWN).enumerate().map(|(i, h)| serde_json::json!({
            "n": i + 1, "name": h.buurt_name.clone().unwrap_or_else(|| "buiten Velsen".into()), "count": h.count,
            "category": labels::nl("category", &h.top_category), "covered": h.covered_by_round,
            "earlier": h.earlier_reports,
        })).collect::<Vec<_>>(),
        "rounds_done": b.rounds.done, "rounds_planned": b.rounds.planned,
        "rounds": b.rounds.rounds.iter().map(|r| serde_json::json!({
            "name": r.name, "shift": shift_nl(r.shift.as_deref()), "status": labels::nl("round_status", &r.status),
            "km": dec(r.distance_m / 1000.0, 1), "time": duration(r.duration_s),
            "checkpoints": format!("{}/{}", r.checkpoints_reached, r.checkpoints_total),
            "coverage": r.coverage.map(|c| format!("{} %", (c * 100.0).round())).unwrap_or_default(),
        })).collect::<Vec<_>>(),
        "rounds_per_wijk": b.rounds.per_wijk.iter().map(|w| serde_json::json!({ "name": w.name.clone().unwrap_or_else(|| w.code.clone()), "time": duration(w.seconds) })).collect::<Vec<_>>(),
        "youth": b.youth.as_ref().map(|y| serde_json::json!({
            "sightings": y.sightings,
            "groups": y.by_group.iter().map(|g| serde_json::json!({
                "group": g.group, "duiding": labels::nl("duiding", g.duiding.as_deref().unwrap_or("none")), "sightings": g.sightings,
                "size": g.largest_size.map(|s| s.round() as i64), "behaviours": labels::nl_list("behaviour", &g.behaviours), "spots": g.spots.join(", "),
            })).collect::<Vec<_>>(),
        })),
        "persons": b.youth_persons.as_ref().map(|ps| ps.iter().map(|p| serde_json::json!({ "name": p.name, "group": p.group, "dob": p.date_of_birth })).collect::<Vec<_>>()),
        "incidents": b.incidents.iter().map(|i| serde_json::json!({
            "kind": labels::nl("incident_kind", &i.kind),
            "time": i.occurred_at.map(local_time).unwrap_or_default(), "wijk": i.wijk, "police": i.police_requested,
            "notified": i.notifications_complete, "description": i.description,
        })).collect::<Vec<_>>(),
        "follow": {
            "awaiting": b.follow_ups.awaiting_review, "concepts": b.follow_ups.concepts,
            "photos_missing": b.follow_ups.photos_missing, "conflicts": b.follow_ups.open_conflicts,
            "duplicates": b.follow_ups.duplicates_marked,
            "flags": b.follow_ups.flags.iter().map(|f| serde_json::json!({ "label": labels::nl("flag", &f.key), "count": f.count })).collect::<Vec<_>>(),
        },
        "open_at_signoff": b.follow_ups.awaiting_review + b.follow_ups.open_conflicts,
        "reports": reports,
        "cases": cases,
        "conflicts": conflicts,
        "back": back,
        "notes": b.attention_points.iter().map(|n| serde_json::json!({ "text": n.text, "shift": shift_nl(n.shift.as_deref()) })).collect::<Vec<_>>(),
        "holds": b.holds.iter().map(|h| serde_json::json!({
            "what": labels::nl("record_type", &h.record_type), "id": h.record_id, "reason": h.reason, "by": h.placed_by,
            "at": h.placed_at.with_timezone(&Amsterdam).format("%d-%m-%Y").to_string(),
        })).collect::<Vec<_>>(),
        "generated_at": b.generated_at.with_timezone(&Amsterdam).format("%d-%m-%Y %H:%M").to_string(),
    });
    disclosure.log("read_page", Default::default()).await?;
    let mut res = render("briefing.html", ctx);
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    if signed {
        // The service worker keeps this page for offline use (static/sw.js).
        res.headers_mut()
            .insert("x-thor-briefing", HeaderValue::from_static("signed"));
    }
    Ok(res)
}

#[derive(Deserialize)]
struct ReviewForm {
    decision: String,
    note: Option<String>,
    back: Option<String>,
}

fn safe_back(back: Option<&str>) -> String {
    match back {
        Some(b) if b.starts_with("/briefing") && !b.starts_with("//") => b.to_string(),
        _ => "/briefing".to_string(),
    }
}

async fn review(
    State(state): State<AppState>,
    p: Result<Principal, ApiError>,
    Path(id): Path<Uuid>,
    Form(f): Form<ReviewForm>,
) -> Response {
    let Ok(p) = p else { return to_login() };
    let status = match f.decision.as_str() {
        "approved" => crate::violations::Status::Approved,
        "rejected" => crate::violations::Status::Rejected,
        _ => return ApiError::field("decision", "approved or rejected").into_response(),
    };
    let patch = crate::violations::ViolationPatch {
        status: Some(status),
        review_note: f.note.filter(|n| !n.trim().is_empty()),
        ..Default::default()
    };
    match crate::violations::store::update(&state.db, &state.reference, &p, id, patch, Utc::now())
        .await
    {
        // Back to the list the review was made from, which says what was decided and offers
        // to take it back.
        Ok(_) => {
            let back = safe_back(f.back.as_deref());
            let sep = if back.contains('?') { '&' } else { '?' };
            Redirect::to(&format!("{back}{sep}gedaan={id}#beoordelen")).into_response()
        }
        Err(e) => e.into_response(),
    }
}

#[derive(Deserialize)]
struct ConflictForm {
    resolution: String,
    back: Option<String>,
}

async fn resolve_conflict(
    State(state): State<AppState>,
    p: Result<Principal, ApiError>,
    Path(id): Path<Uuid>,
    Form(f): Form<ConflictForm>,
) -> Response {
    use crate::sync::routes::{Resolution, ResolveRequest};
    let Ok(p) = p else { return to_login() };
    let resolution = match f.resolution.as_str() {
        "keep_applied" => Resolution::KeepApplied,
        "take_other" => Resolution::TakeOther,
        _ => return ApiError::field("resolution", "keep_applied or take_other").into_response(),
    };
    let req = ResolveRequest {
        resolution,
        value: None,
        note: Some("opgelost op de briefingpagina".into()),
    };
    match crate::sync::routes::resolve(&state, p, id, req).await {
        Ok(_) => {
            Redirect::to(&format!("{}#conflicten", safe_back(f.back.as_deref()))).into_response()
        }
        Err(e) => e.into_response(),
    }
}

#[derive(Deserialize)]
struct NoteForm {
    date: String,
    shift: Option<String>,
    text: String,
}

async fn add_note(
    State(state): State<AppState>,
    p: Result<Principal, ApiError>,
    Form(f): Form<NoteForm>,
) -> Response {
    let Ok(p) = p else { return to_login() };
    let mut data = serde_json::Map::new();
    data.insert("date".into(), f.date.clone().into());
    if let Some(s) = f.shift.as_deref().filter(|s| !s.is_empty()) {
        data.insert("shift".into(), s.into());
    }
    data.insert("text".into(), f.text.trim().into());
    let result: Result<(), ApiError> = async {
        let txn = crate::sync::begin_write(&state.db).await?;
        crate::records::store::create_in(
            &txn,
            &crate::records::kinds::NOTES,
            &p,
            Uuid::new_v4(),
            &data,
            Utc::now(),
        )
        .await?;
        txn.commit().await?;
        Ok(())
    }
    .await;
    match result {
        Ok(()) => Redirect::to(&format!(
            "/briefing?date={}{}#aandachtspunten",
            f.date,
            f.shift
                .filter(|s| !s.is_empty())
                .map(|s| format!("&shift={s}"))
                .unwrap_or_default()
        ))
        .into_response(),
        Err(e) => e.into_response(),
    }
}

#[derive(Deserialize)]
struct SignForm {
    date: String,
    shift: Option<String>,
    /// Ticked when the lead signs off although reports wait for review or conflicts are open.
    confirm: Option<String>,
}

async fn sign_off(
    State(state): State<AppState>,
    p: Result<Principal, ApiError>,
    Form(f): Form<SignForm>,
) -> Response {
    let Ok(p) = p else { return to_login() };
    let result: Result<String, ApiError> = async {
        let (date, shift) = parse_day_shift(Some(&f.date), f.shift.as_deref())?;
        let txn = crate::sync::begin_write(&state.db).await?;
        let b = crate::briefing::load::sign(
            &txn,
            &state.ask(&p, date, shift, Utc::now()),
        )
        .await?;
        // Signing off with work still open is asked once (the form's tick box). Without the
        // tick the sign-off just built is not committed: the transaction rolls back.
        let f_up = &b.follow_ups;
        if f.confirm.is_none() && f_up.awaiting_review + f_up.open_conflicts > 0 {
            return Err(ApiError::field(
                "confirm",
                format!(
                    "{} meldingen wachten op beoordeling en {} conflicten staan open: vink aan dat u toch aftekent",
                    f_up.awaiting_review, f_up.open_conflicts
                ),
            ));
        }
        txn.commit().await?;
        Ok(format!(
            "/briefing?date={date}{}#signoff",
            shift
                .map(|s| format!("&shift={}", s.as_str()))
                .unwrap_or_default()
        ))
    }
    .await;
    match result {
        Ok(to) => Redirect::to(&to).into_response(),
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_compiles_and_escapes() {
        for name in ["base.html", "login.html", "briefing.html"] {
            assert!(templates().get_template(name).is_ok(), "{name}");
        }
        let html = templates()
            .get_template("login.html")
            .and_then(|t| {
                t.render(LoginCtx {
                    error: Some("<script>".into()),
                })
            })
            .unwrap();
        assert!(html.contains("&lt;script&gt;"));
        assert!(html.contains("<form method=\"post\" action=\"/login\">"));
    }

    #[test]
    fn csrf_tokens_belong_to_one_session() {
        let a = csrf_token("thor_session_a");
        assert!(csrf_matches("thor_session_a", &a));
        assert!(!csrf_matches("thor_session_b", &a));
        assert!(!csrf_matches("thor_session_a", ""));
        assert!(!csrf_matches("thor_session_a", "not base64 !"));
        assert!(!csrf_matches("", &csrf_token("")));
        assert_ne!(a, csrf_token("thor_session_b"));
        assert_eq!(
            origin_of("https://Thor.Velsen.nl:8443/briefing?date=x"),
            Some(("https".into(), "thor.velsen.nl:8443".into()))
        );
        assert_eq!(origin_of("null"), None);
        assert_eq!(origin_of("javascript://thor"), None);
    }

    #[test]
    fn dates_and_numbers_in_dutch() {
        let d = NaiveDate::from_ymd_opt(2026, 11, 26).unwrap();
        assert_eq!(dutch_date(d), "donderdag 26 november 2026");
        assert_eq!(dec(12.345, 1), "12,3");
        assert_eq!(duration(3 * 3600 + 5 * 60), "3:05");
        assert_eq!(safe_back(Some("//evil.example")), "/briefing");
        assert_eq!(
            safe_back(Some("/briefing?date=2026-11-26")),
            "/briefing?date=2026-11-26"
        );
    }
}
