//! The briefing of a busy day (issue 6; bench/briefing.sh drives it): 5,000 violations, 500
//! rounds with 300,000 track fixes, loaded through the write paths; then the JSON briefing and
//! the HTML page are timed, and the page's weight measured (raw and gzip, as served).
//!
//! ```text
//! briefingbench [DATABASE_URL]     SQLite in a temporary folder when no URL is given
//! ```

use std::time::Instant;

use rand::{Rng, SeedableRng};
use serde_json::{Map, Value, json};
use thor::app::AppState;
use thor::config::Config;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// On the server's runtime and allocator (`thor::perf`), so the figures are the server's.
fn main() -> anyhow::Result<()> {
    thor::db::sqlite_on_mimalloc();
    thor::perf::runtime()?.block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut config = Config::for_data_dir(dir.path().join("data"));
    config.database_url = std::env::args().nth(1);
    config.login_per_account_per_minute = 100_000;
    let state = AppState::open(config).await?;
    let today = thor::demo::today();

    // 5,000 violations (and the demo's own rounds and youth data) through the write paths.
    let t = Instant::now();
    let scenario = thor::demo::generate(&state.reference, today, 5000, 0xB051);
    thor::demo::load(&state, &scenario)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    eprintln!(
        "loaded 5,000 violations in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    // 500 rounds of 600 fixes each (300,000), walked inside Velsen.
    let t = Instant::now();
    let users = thor::demo::ensure_accounts(&state)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let officer = users
        .iter()
        .find(|u| u.username == "handhaver")
        .ok_or_else(|| anyhow::anyhow!("no handhaver"))?;
    let p = thor::auth::Principal {
        user_id: officer.id,
        username: officer.username.clone(),
        role: thor::auth::Role::Handhaver,
        team_id: officer.team_id,
        wpg_authorised: false,
        device_id: "bench".into(),
        token_id: uuid::Uuid::nil(),
        seen_seq: 0,
    };
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let (day_start, _) = thor::violations::store::amsterdam_day(today);
    for r in 0..500 {
        let t0 = day_start + chrono::Duration::minutes(420 + (r % 900) as i64);
        let (mut lat, mut lon) = loop {
            let lat = rng.random_range(52.42..52.49);
            let lon = rng.random_range(4.58..4.70);
            if state.reference.areas.locate(lat, lon).buurt.is_some() {
                break (lat, lon);
            }
        };
        let mut heading: f64 = rng.random_range(0.0..std::f64::consts::TAU);
        let points: Vec<Value> = (0..600)
            .map(|i| {
                heading += rng.random_range(-0.2..0.2);
                let nlat = lat + 7.0 * heading.cos() / 111_320.0;
                let nlon = lon + 7.0 * heading.sin() / (111_320.0 * lat.to_radians().cos());
                if state.reference.areas.locate(nlat, nlon).buurt.is_some() {
                    lat = nlat;
                    lon = nlon;
                } else {
                    heading += std::f64::consts::PI;
                }
                json!([
                    lat,
                    lon,
                    (t0 + chrono::Duration::seconds(i * 5)).timestamp_millis(),
                    6.0,
                    1.4
                ])
            })
            .collect();
        let rid = uuid::Uuid::new_v4();
        let mut round = Map::new();
        round.insert("name".into(), json!(format!("Ronde {r}")));
        round.insert("status".into(), json!("completed"));
        round.insert("ad_hoc".into(), json!(true));
        round.insert("started_at".into(), json!(t0.timestamp_millis()));
        let mut seg = Map::new();
        seg.insert("round_id".into(), json!(rid.to_string()));
        seg.insert("points".into(), Value::Array(points));
        use sea_orm::TransactionTrait;
        let txn = state.db.write.begin().await?;
        let now = chrono::Utc::now();
        thor::records::store::create_in(&txn, &thor::records::kinds::ROUNDS, &p, rid, &round, now)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        thor::records::store::create_in(
            &txn,
            &thor::records::kinds::SEGMENTS,
            &p,
            uuid::Uuid::new_v4(),
            &seg,
            now,
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        txn.commit().await?;
    }
    eprintln!(
        "loaded 500 rounds / 300,000 fixes in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    // The JSON briefing, as the lead reads it (built, serialised).
    let lead = users
        .iter()
        .find(|u| u.username == "teamleider")
        .ok_or_else(|| anyhow::anyhow!("no lead"))?;
    let lp = thor::auth::Principal {
        user_id: lead.id,
        username: lead.username.clone(),
        role: thor::auth::Role::Teamleider,
        team_id: lead.team_id,
        wpg_authorised: lead.wpg_authorised,
        device_id: "bench".into(),
        token_id: uuid::Uuid::nil(),
        seen_seq: 0,
    };
    let mut times = Vec::new();
    let mut size = 0;
    for _ in 0..7 {
        let t = Instant::now();
        let b = thor::briefing::load::briefing(
            &state.db.read,
            &state.ask(&lp, today, None, chrono::Utc::now()),
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        size = serde_json::to_vec(&b)?.len();
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    println!(
        "JSON briefing of the busy day: median {:.0} ms (min {:.0}), {} bytes",
        median(times.clone()),
        times.iter().cloned().fold(f64::MAX, f64::min),
        size
    );

    // The HTML page over HTTP, as the browser gets it (gzip).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let st = state.clone();
    tokio::spawn(async move {
        let _ = thor::app::serve(st, listener, std::future::pending()).await;
    });
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let res = client
        .post(format!("http://{addr}/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("username=teamleider&password=demo")
        .send()
        .await?;
    let cookie = res
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .ok_or_else(|| anyhow::anyhow!("no session cookie"))?
        .to_string();
    let mut times = Vec::new();
    let (mut raw, mut wire) = (0, 0);
    for _ in 0..7 {
        let t = Instant::now();
        let res = client
            .get(format!("http://{addr}/briefing?date={today}"))
            .header("cookie", &cookie)
            .header("accept-encoding", "gzip")
            .send()
            .await?;
        anyhow::ensure!(res.status() == 200, "page: {}", res.status());
        let body = res.bytes().await?;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        wire = body.len();
        use std::io::Read;
        let mut d = flate2_decode(&body)?;
        let mut s = Vec::new();
        d.read_to_end(&mut s)?;
        raw = s.len();
    }
    println!(
        "HTML page of the busy day: median {:.0} ms (min {:.0}), {} bytes over the wire (gzip), {} bytes unpacked",
        median(times.clone()),
        times.iter().cloned().fold(f64::MAX, f64::min),
        wire,
        raw
    );
    Ok(())
}

fn flate2_decode(b: &[u8]) -> anyhow::Result<Box<dyn std::io::Read + '_>> {
    if b.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(flate2::read::GzDecoder::new(b)))
    } else {
        Ok(Box::new(b))
    }
}
