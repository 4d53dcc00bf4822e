//! Builds the shared state and the router; nothing else starts the server.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;
use utoipa::openapi::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::audit::AuditLog;
use crate::auth::ratelimit::LoginLimiter;
use crate::config::Config;
use crate::db::Db;
use crate::error::ApiError;
use crate::reference::Reference;

/// What every handler can reach. Cheap to clone; nothing in it breaks with two instances
/// (the login throttle is per instance, see `auth::ratelimit`).
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub config: Arc<Config>,
    pub reference: Arc<Reference>,
    pub audit: AuditLog,
    pub login_limiter: Arc<LoginLimiter>,
    /// Group commit of REST report creates.
    pub violation_creates: crate::violations::batcher::CreateBatcher,
    /// Group commit of sync pushes.
    pub pushes: crate::sync::committer::PushCommitter,
    /// Rendered pages of the violation list, keyed by sync sequence.
    pub violation_pages: Arc<crate::violations::cache::PageCache>,
    /// The evidence store, upload limits and uploads in progress.
    pub photos: Arc<crate::photos::tus::Photos>,
    /// The memory derivative jobs share (`THOR_DERIVE_MEMORY_MIB`).
    pub derive_budget: Arc<crate::photos::worker::DeriveBudget>,
    /// Derived round statistics, kept while their data is unchanged.
    pub round_cache: Arc<crate::briefing::load::RoundCache>,
    /// The start hours of the shifts (`THOR_SHIFTS`).
    pub shifts: crate::briefing::ShiftHours,
    /// The retention terms (`THOR_RETENTION`).
    pub retention: Arc<crate::retention::Terms>,
    /// False once shutdown begins, so `/readyz` turns load balancers away during the drain.
    pub ready: Arc<AtomicBool>,
    /// "Something changed": the sync sequence for the change stream (`/api/v1/sync/events`).
    pub changes: crate::sync::events::ChangeFeed,
    /// Kenteken and address lookups (RDW, PDOK), cached.
    pub lookups: Arc<crate::lookup::Lookups>,
}

impl AppState {
    /// A briefing for this reader, date and shift at `now`, on this server's reference data,
    /// round cache and shift hours.
    pub fn ask<'a>(
        &'a self,
        reader: &'a crate::auth::Principal,
        date: chrono::NaiveDate,
        shift: Option<crate::briefing::Shift>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> crate::briefing::load::Ask<'a> {
        crate::briefing::load::Ask {
            reference: &self.reference,
            cache: &self.round_cache,
            hours: &self.shifts,
            reader,
            date,
            shift,
            now,
        }
    }

    /// Opens the database (creating the data folder and SQLite file on first start), applies
    /// migrations and loads the reference data.
    pub async fn open(config: Config) -> anyhow::Result<AppState> {
        config.validate()?;
        if config.database_url.is_none() {
            std::fs::create_dir_all(&config.data_dir).with_context(|| {
                format!("creating the data folder {}", config.data_dir.display())
            })?;
        }
        let url = config.effective_database_url();
        let db = Db::connect(&url, config.db_pool).await?;
        db.migrate().await?;
        crate::reference::load::load_fixtures(&db)
            .await
            .context("loading reference data")?;
        let mut reference = crate::reference::load::read(&db)
            .await
            .context("reading reference data")?;
        reference.four_eyes = config.four_eyes;
        let limiter = Arc::new(LoginLimiter::new(
            config.login_per_account_per_minute,
            config.login_per_address_per_minute,
        ));
        let weak = Arc::downgrade(&limiter);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tick.tick().await;
                match weak.upgrade() {
                    Some(l) => l.shrink(),
                    None => break,
                }
            }
        });
        let reference = Arc::new(reference);
        let blobs = crate::photos::blob::BlobStore::from_config(&config)?;
        tracing::info!(store = %blobs.describe, "photo store");
        let photos = Arc::new(crate::photos::tus::Photos::new(blobs, &config));
        let shifts = crate::briefing::ShiftHours::parse(&config.shifts)
            .map_err(|e| anyhow::anyhow!("THOR_SHIFTS: {e}"))?;
        let retention = Arc::new(crate::retention::Terms::parse(
            &config.retention,
            config.sync_window_days,
        )?);
        Ok(AppState {
            retention,
            changes: crate::sync::events::ChangeFeed::new(db.clone()),
            lookups: Arc::new(crate::lookup::Lookups::new(
                config.rdw_url.as_deref(),
                config.pdok_url.as_deref(),
            )?),
            derive_budget: Arc::new(crate::photos::worker::DeriveBudget::new(&config)),
            round_cache: Default::default(),
            shifts,
            photos,
            audit: AuditLog::start(db.clone()),
            violation_creates: crate::violations::batcher::CreateBatcher::start(
                db.clone(),
                reference.clone(),
            ),
            pushes: crate::sync::committer::PushCommitter::start(db.clone(), reference.clone()),
            db,
            config: Arc::new(config),
            reference,
            login_limiter: limiter,
            violation_pages: Default::default(),
            ready: Arc::new(AtomicBool::new(true)),
        })
    }
}

/// The API routes with their OpenAPI documentation, registered together so neither can drift.
pub fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(crate::openapi::base())
        .merge(crate::auth::routes::router())
        .merge(crate::reference::routes::router())
        .merge(crate::violations::routes::router())
        .merge(crate::sync::routes::router())
        .merge(crate::photos::routes::router())
        .merge(crate::photos::tus::router())
        .merge(crate::records::routes::router())
        .merge(crate::rounds::routes::router())
        .merge(crate::briefing::routes::router())
        .merge(crate::exports::router())
        .merge(crate::cases::routes::router())
        .merge(crate::lookup::routes::router())
        .merge(crate::audit::routes::router())
        .merge(crate::retention::routes::router())
        .merge(crate::labels::router())
}

/// The OpenAPI document the code generates.
pub fn openapi() -> OpenApi {
    crate::openapi::finish(api().split_for_parts().1)
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no such route".into())
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked");
    ApiError::internal(anyhow::anyhow!("handler panicked")).into_response()
}

/// The Content-Security-Policy of every answer that does not set its own (JSON, photos, CSV,
/// problem documents): nothing in it may load or run anything, and no page may frame it. The lead
/// page sets a policy of its own (`web::page_csp`). With it on every answer: `X-Frame-Options:
/// DENY` (for browsers without `frame-ancestors`), `X-Content-Type-Options: nosniff` (a photo or
/// a CSV is never read as HTML or script) and `Referrer-Policy: no-referrer`.
pub const API_CSP: &str =
    "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

pub fn router(state: AppState) -> Router {
    let (api, doc) = api().split_for_parts();
    let doc = crate::openapi::finish(doc);
    let request_id = HeaderName::from_static("x-request-id");
    let timeout = state.config.request_timeout();
    let body_limit = state.config.max_body_bytes;
    api.layer(axum::middleware::from_fn(crate::web::session_reads))
        .merge(crate::ops::router(&doc))
        .merge(crate::web::router(&state))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn(require_json_bodies))
        .layer(axum::middleware::from_fn(move |req, next| {
            refuse_declared_oversize(body_limit, req, next)
        }))
        .layer(axum::middleware::from_fn(refuse_long_uri))
        .layer(axum::middleware::from_fn(problem_for_every_error))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(API_CSP),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .layer(CompressionLayer::new())
        .layer(axum::middleware::from_fn(move |req, next| {
            time_limit(timeout, req, next)
        }))
        .layer(axum::middleware::from_fn(crate::ops::track_metrics))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(TraceLayer::new_for_http().make_span_with(crate::ops::request_span))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .with_state(state)
}

/// Whether a request is a photo upload: uploads stream large bodies over slow mobile links and
/// enforce their own limits (size from the photo record, an idle timeout per chunk).
fn is_upload(req: &axum::extract::Request) -> bool {
    req.uri().path().starts_with("/api/v1/uploads")
}

/// Ends a request that takes longer than the limit with 408 (uploads excepted: see `is_upload`).
async fn time_limit(
    limit: Duration,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if is_upload(&req) {
        return next.run(req).await;
    }
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(res) => res,
        Err(_) => {
            let e = ApiError::Unavailable(format!(
                "the request took longer than {} s",
                limit.as_secs()
            ));
            let mut problem = e.to_problem();
            problem.status = StatusCode::REQUEST_TIMEOUT.as_u16();
            problem.title = "Request timeout".into();
            crate::error::problem_response(StatusCode::REQUEST_TIMEOUT, &problem)
        }
    }
}

/// The longest request target (path and query) answered: longer ones get 414 as problem+json.
/// Beyond 65,534 bytes hyper answers 414 itself, without a body, before any of this runs: that
/// limit is a constant of hyper 1 (`MAX_URI_LEN` in its HTTP/1 parser) and of `http::Uri`,
/// not a setting of hyper's or axum's builders, so it cannot be raised from here.
pub const MAX_URI_BYTES: usize = 8 * 1024;

async fn refuse_long_uri(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let len = req.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
    if len > MAX_URI_BYTES {
        let mut problem = ApiError::BadRequest {
            detail: format!(
                "the request target is {len} bytes; at most {MAX_URI_BYTES} are accepted"
            ),
            errors: vec![],
        }
        .to_problem();
        problem.status = StatusCode::URI_TOO_LONG.as_u16();
        problem.kind = "urn:thor:problem:uri-too-long".into();
        problem.title = "URI too long".into();
        return crate::error::problem_response(StatusCode::URI_TOO_LONG, &problem);
    }
    next.run(req).await
}

/// Every API request that carries a body must declare it as JSON (415 otherwise), the same
/// rule as `extract::ApiJson`, also for handlers that read their body as bytes (the sync
/// push). Uploads (tus) and the web pages' forms are not JSON and are left alone.
async fn require_json_bodies(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let path = req.uri().path();
    let has_body = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .map_or_else(
            || {
                req.headers()
                    .contains_key(axum::http::header::TRANSFER_ENCODING)
            },
            |v| v.trim() != "0",
        );
    let writes = matches!(
        *req.method(),
        axum::http::Method::POST | axum::http::Method::PUT | axum::http::Method::PATCH
    );
    if writes
        && has_body
        && path.starts_with("/api/")
        && !is_upload(&req)
        && let Err(e) = crate::extract::require_json(req.headers())
    {
        return e.into_response();
    }
    next.run(req).await
}

/// Turns the error answers the framework makes itself (axum's 405 and its extractors' plain
/// text rejections, such as the 413 of a chunked body over the limit) into problem+json with
/// the same status and headers (`Allow` stays). HTML pages are left alone.
async fn problem_for_every_error(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let res = next.run(req).await;
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return res;
    }
    let content_type = res
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if content_type.starts_with("application/problem+json") || content_type.starts_with("text/html")
    {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    let text = axum::body::to_bytes(body, 4096)
        .await
        .ok()
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .filter(|t| !t.is_empty() && content_type.starts_with("text/plain"));
    let problem = framework_problem(status, text);
    let mut fresh = crate::error::problem_response(status, &problem);
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    parts.headers.remove(axum::http::header::CONTENT_TYPE);
    for (k, v) in fresh.headers().iter() {
        parts.headers.insert(k.clone(), v.clone());
    }
    std::mem::swap(fresh.headers_mut(), &mut parts.headers);
    fresh
}

/// The problem document of a status the framework answered, with its text as the detail.
fn framework_problem(status: StatusCode, text: Option<String>) -> crate::error::Problem {
    let e = match status.as_u16() {
        400 => ApiError::BadRequest {
            detail: String::new(),
            errors: vec![],
        },
        404 => ApiError::NotFound(String::new()),
        413 => ApiError::PayloadTooLarge(String::new()),
        415 => ApiError::UnsupportedMediaType(String::new()),
        422 => ApiError::Validation(vec![]),
        _ => ApiError::BadRequest {
            detail: String::new(),
            errors: vec![],
        },
    };
    let mut p = e.to_problem();
    let reason = status.canonical_reason().unwrap_or("Error");
    if !matches!(status.as_u16(), 400 | 404 | 413 | 415 | 422) {
        let slug: String = reason
            .to_ascii_lowercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        p.kind = format!("urn:thor:problem:{slug}");
        p.title = reason.to_string();
    }
    p.status = status.as_u16();
    p.detail = text.unwrap_or_else(|| match status.as_u16() {
        405 => "this method is not allowed on this path; see the Allow header".to_string(),
        413 => "the body is larger than this endpoint accepts".to_string(),
        _ => reason.to_string(),
    });
    p
}

/// Answers 413 from the declared `Content-Length` alone, before a byte of an oversized body is
/// read; bodies without a declared length are cut off at the same limit while they are read.
async fn refuse_declared_oversize(
    limit: usize,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if is_upload(&req) {
        return next.run(req).await;
    }
    let declared = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(n) if n > limit as u64 => ApiError::PayloadTooLarge(format!(
            "the body is {n} bytes; this endpoint accepts at most {limit}"
        ))
        .into_response(),
        _ => next.run(req).await,
    }
}

/// Serves until `shutdown` resolves, then stops accepting, finishes in-flight requests (pushes
/// are answered; uploads still receiving are ended after `tus::SHUTDOWN_GRACE`, keeping their
/// bytes), and closes the database (which checkpoints SQLite's WAL). Every periodic task of a
/// running server starts and stops here (the demo's history load is `thor serve --demo`'s).
pub async fn serve(
    state: AppState,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let ready = state.ready.clone();
    let changes = state.changes.clone();
    let photos = state.photos.clone();
    let db = state.db.clone();
    let resume = tokio::spawn(resume_uploads(state.clone()));
    let worker = crate::photos::worker::start(state.clone());
    let checkpointer = db.spawn_checkpointer();
    let warm_up = tokio::spawn(warm_briefing(state.clone()));
    let trim = tokio::spawn(release_memory_when_idle(db.clone()));
    let sealer = tokio::spawn(seal_audit_chain(db.clone()));
    let purge = tokio::spawn(purge_tombstones(state.clone()));
    let retention = tokio::spawn(run_retention(state.clone()));
    let app = router(state);
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        shutdown.await;
        ready.store(false, Ordering::SeqCst);
        changes.close();
        photos.end_uploads(crate::photos::tus::SHUTDOWN_GRACE);
        tracing::info!("shutting down: finishing in-flight requests");
    })
    .await
    .context("serving HTTP")?;
    resume.abort();
    worker.abort();
    warm_up.abort();
    trim.abort();
    sealer.abort();
    purge.abort();
    retention.abort();
    // Every request has ended: whatever was logged is committed and can be sealed now.
    if let Err(e) = crate::audit::chain::seal(&db.write).await {
        tracing::warn!(error = %e, "sealing the audit log at shutdown failed");
    }
    drop(checkpointer);
    db.close().await;
    Ok(())
}

/// Every six hours (the first six hours after start), destroys the tombstones past the horizon
/// and expired push answers (`thor purge` does it by hand).
async fn purge_tombstones(state: AppState) {
    let horizon = chrono::Duration::days(i64::from(state.config.tombstone_days));
    let every = Duration::from_secs(6 * 3600);
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    loop {
        tick.tick().await;
        match crate::sync::purge(&state.db, horizon, chrono::Utc::now()).await {
            Ok(mark) => tracing::info!(purged_seq = mark, "tombstone purge done"),
            Err(e) => tracing::error!(error = %e, "tombstone purge failed"),
        }
    }
}

/// Retention every six hours, the first ten minutes after start; with several instances the
/// run's lease lets one of them do it (`thor retention run` does it by hand).
async fn run_retention(state: AppState) {
    let every = Duration::from_secs(6 * 3600);
    let first = tokio::time::Instant::now() + Duration::from_secs(600);
    let mut tick = tokio::time::interval_at(first, every);
    loop {
        tick.tick().await;
        let run = crate::retention::run::Run {
            db: &state.db,
            blobs: &state.photos.blobs,
            reference: &state.reference,
            terms: &state.retention,
            as_of: chrono::Utc::now(),
            dry_run: false,
            actor: "scheduler",
        };
        match run.execute(&crate::retention::run::Quiet).await {
            Ok(r) if r.skipped.is_some() => {
                tracing::info!("retention run skipped: another instance runs it")
            }
            Ok(r) => tracing::info!(
                run = ?r.run_id,
                changed = r.changes.iter().map(|c| c.total()).sum::<u64>(),
                destroyed = r.changes.iter().map(|c| c.destroyed).sum::<u64>(),
                objects_deleted = r.objects_deleted,
                "retention run done"
            ),
            Err(e) => tracing::error!(error = %e, "retention run failed"),
        }
    }
}

/// Every minute, seals the audit lines written since the last run (see
/// [`crate::audit::chain`]) and logs the chain's head: the anchor an auditor can later hold
/// `thor audit verify --anchor` to.
async fn seal_audit_chain(db: crate::db::Db) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match crate::audit::chain::seal(&db.write).await {
            Ok((n, Some(head))) if n > 0 => {
                tracing::info!(sealed = n, anchor = %head, "audit chain sealed")
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "sealing the audit log failed"),
        }
    }
}

/// Takes up the upload finishes a stop cut short (`tus::resume_finishes`), once after start.
async fn resume_uploads(state: AppState) {
    match crate::photos::tus::resume_finishes(&state).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(photos = n, "unfinished uploads completed after a restart"),
        Err(e) => tracing::warn!(error = ?e, "taking up unfinished uploads failed"),
    }
}

/// Every 10 s in which no request began, closes the idle point-read connections and has every
/// runtime thread return the memory it holds free to the system (see [`crate::perf`]). Not
/// under load: a forced purge there only makes the next allocations fault their pages in again.
/// Pooled sqlx connections close by themselves (`db::POOL_IDLE`).
async fn release_memory_when_idle(db: crate::db::Db) {
    let mut tick = tokio::time::interval(Duration::from_secs(10));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seen = crate::ops::requests_started();
    loop {
        tick.tick().await;
        let now = crate::ops::requests_started();
        if now == seen {
            // Again on every quiet tick: closing idle connections frees more as time goes on.
            if let Some(point) = &db.point {
                point.close_idle();
            }
            crate::perf::release_everywhere();
        }
        seen = now;
    }
}

/// Builds today's briefing once in the background after start, for every team, and throws it
/// away: what stays is the round cache, so the first team lead to open a busy day's briefing
/// does not wait for every round's track to be derived (about +190 ms on 500 rounds).
async fn warm_briefing(state: AppState) {
    let system = crate::auth::Principal::system("warm-up");
    let now = chrono::Utc::now();
    let today = crate::demo::today();
    let started = std::time::Instant::now();
    match crate::briefing::load::build(&state.db.read, &state.ask(&system, today, None, now)).await
    {
        Ok(_) => tracing::debug!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            "round cache warmed with today's briefing"
        ),
        Err(e) => tracing::warn!(error = ?e, "warming the round cache failed"),
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
