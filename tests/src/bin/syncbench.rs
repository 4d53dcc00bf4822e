//! Sync load tool: D devices each push R reports in one push, concurrently, for N rounds; then a
//! fresh device pulls everything in its window, page by page, and once more as one turbo page. Prints records/s, latency
//! percentiles, and the pull's time and size. Talks to a running server (bench/sync.sh starts one).
//!
//!   syncbench <base-url> [devices=50] [records=100] [rounds=5] [page=1000]

use std::time::{Duration, Instant};

use serde_json::{Value, json};

fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn login(client: &reqwest::Client, base: &str, device: &str) -> anyhow::Result<String> {
    let res: Value = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({ "username": "handhaver", "password": "demo", "device_id": device }))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(res["token"].as_str().unwrap_or_default().to_string())
}

fn record(i: usize) -> Value {
    // Spread over the last 13 days, inside Velsen (IJmuiden, around the Stadhuisbuurt).
    let at = chrono::Utc::now() - chrono::Duration::minutes((i % (13 * 24 * 60)) as i64 + 5);
    let jitter = (i % 97) as f64 * 0.00002;
    json!({
        "id": uuid::Uuid::new_v4().to_string(), "_status": "created", "_changed": "",
        "category": "afval", "feitcode": "H004", "observed_at": at.timestamp_millis(),
        "lat": 52.4595 + jitter, "lon": 4.6210 + jitter, "accuracy_m": 8.0, "location_source": "gps",
        "description": "Huisvuilzakken naast de ondergrondse container", "outcome": "warning",
        "status": "submitted", "officer_ids": "[]"
    })
}

/// Reports in a pull answer (`created` and `updated`).
fn reports(v: &Value) -> usize {
    ["created", "updated"]
        .iter()
        .map(|k| {
            v["changes"]["violations"][k]
                .as_array()
                .map(Vec::len)
                .unwrap_or(0)
        })
        .sum()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let base = args
        .get(1)
        .cloned()
        .unwrap_or_else(|| "http://127.0.0.1:18383".into());
    let arg = |i: usize, d: usize| args.get(i).and_then(|s| s.parse().ok()).unwrap_or(d);
    let (devices, records, rounds, page) = (arg(2, 50), arg(3, 100), arg(4, 5), arg(5, 1000));
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(devices)
        .build()?;

    let mut tokens = Vec::new();
    for d in 0..devices {
        tokens.push(login(&client, &base, &format!("bench-device-{d}")).await?);
    }
    let mut latencies = Vec::new();
    let mut pushed = 0usize;
    let started = Instant::now();
    for round in 0..rounds {
        let mut tasks = Vec::new();
        for (d, token) in tokens.iter().enumerate() {
            let client = client.clone();
            let base = base.clone();
            let token = token.clone();
            let body = json!({ "changes": { "violations": {
                "created": (0..records).map(|i| record((round * devices + d) * records + i)).collect::<Vec<_>>(),
                "updated": [], "deleted": [] } } });
            tasks.push(tokio::spawn(async move {
                let t = Instant::now();
                let res = client
                    .post(format!("{base}/api/v1/sync/push?last_pulled_at=0"))
                    .bearer_auth(token)
                    .json(&body)
                    .send()
                    .await?;
                let status = res.status();
                let answer: Value = res.json().await?;
                anyhow::ensure!(status.is_success(), "push failed: {status} {answer}");
                anyhow::ensure!(
                    answer["applied"].as_u64() == Some(records as u64),
                    "not all applied: {answer}"
                );
                Ok::<_, anyhow::Error>(t.elapsed())
            }));
        }
        for t in tasks {
            latencies.push(t.await??);
            pushed += records;
        }
    }
    let push_time = started.elapsed();
    latencies.sort();
    println!(
        "push: {pushed} records in {} pushes of {records} by {devices} concurrent devices: {:.2} s, {:.0} records/s; push latency p50 {:?}, p99 {:?}, max {:?}",
        latencies.len(),
        push_time.as_secs_f64(),
        pushed as f64 / push_time.as_secs_f64(),
        pct(&latencies, 0.5),
        pct(&latencies, 0.99),
        latencies.last().copied().unwrap_or_default(),
    );

    let token = login(&client, &base, "fresh-device").await?;
    let started = Instant::now();
    let (mut rows, mut bytes, mut pages) = (0usize, 0usize, 0usize);
    let mut next: Option<String> = None;
    loop {
        let url = match &next {
            Some(t) => format!("{base}/api/v1/sync/pull?page_token={t}&limit={page}"),
            None => format!("{base}/api/v1/sync/pull?last_pulled_at=0&limit={page}"),
        };
        let body = client
            .get(url)
            .bearer_auth(&token)
            .send()
            .await?
            .error_for_status()?
            .bytes()
            .await?;
        bytes += body.len();
        pages += 1;
        let v: Value = serde_json::from_slice(&body)?;
        rows += reports(&v);
        next = v["next_page"].as_str().map(str::to_string);
        if v["has_more"] != true {
            break;
        }
    }
    let t = started.elapsed();
    println!(
        "first pull of a fresh device: {rows} reports in {pages} pages of {page}: {:.2} s, {:.0} records/s, {:.1} MB ({} bytes/report)",
        t.as_secs_f64(),
        rows as f64 / t.as_secs_f64(),
        bytes as f64 / 1e6,
        bytes / rows.max(1),
    );

    // The same as one streamed page (WatermelonDB's turbo login).
    let token = login(&client, &base, "fresh-turbo-device").await?;
    let started = Instant::now();
    let body = client
        .get(format!(
            "{base}/api/v1/sync/pull?last_pulled_at=0&turbo=true"
        ))
        .bearer_auth(&token)
        .send()
        .await?
        .error_for_status()?
        .bytes()
        .await?;
    let t = started.elapsed();
    let v: Value = serde_json::from_slice(&body)?;
    println!(
        "turbo first pull: {} reports in one streamed page: {:.2} s, {:.0} records/s, {:.1} MB",
        reports(&v),
        t.as_secs_f64(),
        reports(&v) as f64 / t.as_secs_f64(),
        body.len() as f64 / 1e6,
    );
    Ok(())
}
