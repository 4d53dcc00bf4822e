//! Operations: health, readiness, Prometheus metrics, the OpenAPI document, request spans.

use std::sync::OnceLock;
use std::sync::atomic::Ordering;
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing::Span;

use crate::app::AppState;

/// The process-wide Prometheus recorder (installed once; tests start many servers in one process).
pub fn metrics_handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full("http_request_duration_seconds".into()),
                &[
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                ],
            )
            .map(|b| b.build_recorder())
            .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder());
        let handle = recorder.handle();
        // Fails only if another recorder is installed, in which case ours stays empty.
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}

/// Requests begun since start, probes and scrapes (`/healthz`, `/readyz`, `/metrics`) not
/// counted; the idle check of `app::serve` compares it over time, and a Prometheus scrape or a
/// Kubernetes probe every 10 s is not work that keeps a server from being idle.
static REQUESTS_STARTED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// How many requests have begun since the process started.
pub fn requests_started() -> u64 {
    REQUESTS_STARTED.load(Ordering::Relaxed)
}

/// `doc` is the OpenAPI document, serialised once when the router is built: the document
/// itself (a tree of maps and strings) took 2.5 MB of an idle server's heap, the JSON takes a
/// tenth of that.
pub fn router(doc: &utoipa::openapi::OpenApi) -> Router<AppState> {
    let json: Option<axum::body::Bytes> = match serde_json::to_vec(doc) {
        Ok(j) => Some(j.into()),
        Err(e) => {
            // Not reachable with utoipa's types; the route then says so instead of panicking.
            tracing::error!(error = %e, "the OpenAPI document does not serialise");
            None
        }
    };
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(prometheus))
        .route(
            "/api/v1/openapi.json",
            get(move || {
                let json = json.clone();
                async move {
                    match json {
                        Some(json) => {
                            ([(header::CONTENT_TYPE, "application/json")], json).into_response()
                        }
                        None => {
                            crate::error::ApiError::internal(anyhow::anyhow!("no OpenAPI document"))
                                .into_response()
                        }
                    }
                }
            }),
        )
}

/// The process is alive.
async fn healthz() -> &'static str {
    "ok"
}

/// The process can serve: the database answers and shutdown has not begun.
async fn readyz(State(state): State<AppState>) -> Response {
    if !state.ready.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response();
    }
    if state.db.ping().await {
        "ready".into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "database unreachable").into_response()
    }
}

async fn prometheus() -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        metrics_handle().render(),
    )
        .into_response()
}

/// Counts requests and their latency per route template (never the raw path: no ids in labels).
pub async fn track_metrics(req: Request, next: Next) -> Response {
    let _ = metrics_handle();
    let start = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    if !is_probe(&route) {
        REQUESTS_STARTED.fetch_add(1, Ordering::Relaxed);
    }
    let method = req.method().to_string();
    let res = next.run(req).await;
    let status = res.status().as_u16().to_string();
    metrics::counter!("http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("http_request_duration_seconds", "method" => method, "route" => route)
        .record(start.elapsed().as_secs_f64());
    res
}

/// Health probes and metric scrapes: logged at debug, and not work that keeps a server from being
/// idle.
fn is_probe(route: &str) -> bool {
    matches!(route, "/healthz" | "/readyz" | "/metrics")
}

/// The span of one request: method, route template and request id; health probes at debug.
pub fn request_span(req: &axum::http::Request<axum::body::Body>) -> Span {
    // The raw path (of an unmatched route) and the request id come from the client: escaped
    // and cut, so that they cannot write lines of their own or fill the log.
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| loggable(req.uri().path(), 200));
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(|v| loggable(v, 64))
        .unwrap_or_else(|| "-".into());
    let route = route.as_str();
    let id = id.as_str();
    if is_probe(route) {
        tracing::debug_span!("request", method = %req.method(), route, request_id = id)
    } else {
        tracing::info_span!("request", method = %req.method(), route, request_id = id)
    }
}

/// A value from a request as it may go into a log line: control characters escaped (`\n`,
/// `\u{1b}`), cut to `max` characters with `…` marking the cut.
pub fn loggable(s: &str, max: usize) -> String {
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i == max {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::loggable;

    #[test]
    fn control_characters_are_escaped_and_long_values_cut() {
        assert_eq!(
            loggable("a\nERROR b\r\u{1b}[31m", 100),
            "a\\nERROR b\\r\\u{1b}[31m"
        );
        assert_eq!(loggable("abcdef", 3), "abc…");
        assert_eq!(loggable("abc", 3), "abc");
        assert_eq!(loggable("ééé", 2), "éé…");
    }
}
