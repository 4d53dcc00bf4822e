//! A local stand-in for the outside services thor looks things up in (RDW open data, PDOK's
//! Locatieserver), answering from the files in `fixtures/replay/` — nothing in the suite reaches
//! the internet. The first path segment says how it behaves, so one server plays every case:
//!
//! - `/ok/…`: the recorded answer (or "nothing found");
//! - `/slow/…`: answers after 10 s, longer than thor waits;
//! - `/broken/…`: 500;
//! - `/garbage/…`: 200 with a body that is not the service's JSON.
//!
//! Each request is counted, so a test sees whether thor asked or answered from its cache.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

pub struct Replay {
    pub url: String,
    pub requests: Arc<AtomicUsize>,
    _task: tokio::task::JoinHandle<()>,
}

impl Replay {
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/replay")
}

#[derive(Clone)]
struct St {
    requests: Arc<AtomicUsize>,
}

async fn behave(mode: &str, ok: impl FnOnce() -> Response) -> Response {
    match mode {
        "ok" => ok(),
        "slow" => {
            tokio::time::sleep(std::time::Duration::from_secs(10)).await;
            ok()
        }
        "broken" => (StatusCode::INTERNAL_SERVER_ERROR, "upstream error").into_response(),
        "garbage" => (StatusCode::OK, "<html>onderhoud</html>").into_response(),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

fn json(body: String) -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

async fn rdw(
    State(st): State<St>,
    Path(mode): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    st.requests.fetch_add(1, Ordering::SeqCst);
    let plate = q.get("kenteken").cloned().unwrap_or_default();
    behave(&mode, || {
        let safe = plate.chars().all(|c| c.is_ascii_alphanumeric());
        let file = fixtures().join("rdw").join(format!("{plate}.json"));
        json(
            safe.then(|| std::fs::read_to_string(file).ok())
                .flatten()
                .unwrap_or_else(|| "[]".into()),
        )
    })
    .await
}

async fn pdok(
    State(st): State<St>,
    Path(mode): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    st.requests.fetch_add(1, Ordering::SeqCst);
    let lat: f64 = q
        .get("lat")
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN);
    let lon: f64 = q
        .get("lon")
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN);
    behave(&mode, || {
        // The recorded position nearest to the asked one, within about 100 m.
        let mut best: Option<(f64, PathBuf)> = None;
        for e in std::fs::read_dir(fixtures().join("pdok"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = e
                .file_name()
                .to_string_lossy()
                .trim_end_matches(".json")
                .to_string();
            let Some((a, b)) = name.split_once('_') else {
                continue;
            };
            let (Ok(a), Ok(b)) = (a.parse::<f64>(), b.parse::<f64>()) else {
                continue;
            };
            let d = ((a - lat) * 111_000.0).hypot((b - lon) * 68_000.0);
            if d < 100.0 && best.as_ref().is_none_or(|(bd, _)| d < *bd) {
                best = Some((d, e.path()));
            }
        }
        json(match best {
            Some((_, p)) => std::fs::read_to_string(p).unwrap_or_default(),
            None => r#"{"response":{"numFound":0,"start":0,"maxScore":0.0,"docs":[]}}"#.into(),
        })
    })
    .await
}

/// Starts the replay server on a random port.
pub async fn start() -> Replay {
    let requests = Arc::new(AtomicUsize::new(0));
    let app = Router::new()
        .route("/{mode}/resource/m9d7-ebf2.json", get(rdw))
        .route("/{mode}/bzk/locatieserver/search/v3_1/reverse", get(pdok))
        .with_state(St {
            requests: requests.clone(),
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the replay server");
    let addr = listener.local_addr().expect("its address");
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Replay {
        url: format!("http://{addr}"),
        requests,
        _task: task,
    }
}
