//! The cursor under concurrency on PostgreSQL: two server instances (separate connection pools)
//! on one database, 8 writers and 4 pullers, 20,000 changes. Every puller must end with exactly
//! the server's set. The same check run against a plain bigserial cursor must fail: that is the
//! bug this design avoids (a transaction that takes its number early and commits late is skipped).

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rand::Rng;
use sea_orm::{ConnectionTrait, Statement};
use thor::auth::{Principal, Role};
use thor::sync::pull::{PullRequest, pull};
use thor::violations::{Category, Location, LocationSource, NewViolation, Outcome};
use thor_tests::TestApp;

const WRITERS: usize = 8;
const PULLERS: usize = 4;
const CHANGES: usize = 20_000;

fn new_report() -> NewViolation {
    NewViolation {
        id: uuid::Uuid::new_v4(),
        category: Category::Afval,
        feitcode: Some("H004".into()),
        observed_at: chrono::Utc::now() - chrono::Duration::minutes(1),
        location: Location {
            lat: 52.4599,
            lon: 4.6218,
            accuracy_m: 5.0,
            source: LocationSource::Gps,
            fix_time: None,
        },
        description: String::new(),
        outcome: Outcome::Warning,
        plate: None,
        driver_present: None,
        sanction: None,
        officer_ids: vec![],
        status: None,
        round_id: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pullers_never_miss_a_commit_on_postgres() {
    let Some(backend) = thor_tests::postgres() else {
        return;
    };
    let first = TestApp::spawn(backend).await;
    first.demo_accounts().await;
    // A second instance on the same database.
    let url = first
        .state
        .config
        .database_url
        .clone()
        .expect("postgres url");
    let second = thor::app::AppState::open(thor::config::Config {
        database_url: Some(url),
        ..thor::config::Config::for_data_dir(std::env::temp_dir())
    })
    .await
    .unwrap();
    let user = thor::auth::accounts::find_by_username(&first.state.db.read, "handhaver")
        .await
        .unwrap()
        .unwrap();
    let p = Principal {
        user_id: user.id,
        username: user.username.clone(),
        role: Role::Handhaver,
        team_id: user.team_id,
        wpg_authorised: false,
        device_id: "race".into(),
        token_id: uuid::Uuid::nil(),
        seen_seq: 0,
    };
    let states = [first.state.clone(), second.clone()];
    let done = Arc::new(AtomicBool::new(false));

    let mut pullers = Vec::new();
    for i in 0..PULLERS {
        let state = states[i % 2].clone();
        let p = p.clone();
        let done = done.clone();
        pullers.push(tokio::spawn(async move {
            let mut seen = HashSet::new();
            let mut cursor = 0i64;
            loop {
                let finished = done.load(Ordering::SeqCst);
                let limit = rand::rng().random_range(1..200u64);
                let page = pull(
                    &state.db,
                    &state.reference,
                    &state.audit,
                    &p,
                    PullRequest {
                        cursor,
                        limit,
                        window_days: 14,
                        ..Default::default()
                    },
                )
                .await
                .unwrap();
                assert!(page.timestamp >= cursor, "the cursor never goes back");
                cursor = page.timestamp;
                let v = &page.changes["violations"];
                let rows: Vec<_> = v.created.iter().chain(v.updated.iter()).collect();
                for r in rows.iter() {
                    let r: serde_json::Value = serde_json::from_str(r.get()).unwrap();
                    seen.insert(r["id"].as_str().unwrap().to_string());
                }
                if finished && !page.has_more {
                    return seen;
                }
                if rows.is_empty() {
                    tokio::time::sleep(std::time::Duration::from_millis(2)).await;
                }
            }
        }));
    }
    let started = std::time::Instant::now();
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let state = states[w % 2].clone();
        let p = p.clone();
        writers.push(tokio::spawn(async move {
            for _ in 0..CHANGES / WRITERS {
                thor::violations::store::create(
                    &state.db,
                    &state.reference,
                    &p,
                    new_report(),
                    Default::default(),
                    chrono::Utc::now(),
                )
                .await
                .unwrap();
            }
        }));
    }
    for w in writers {
        w.await.unwrap();
    }
    done.store(true, Ordering::SeqCst);
    eprintln!(
        "cursor race: {CHANGES} changes by {WRITERS} writers on two instances in {:?}",
        started.elapsed()
    );
    let rows = first
        .state
        .db
        .read
        .query_all_raw(Statement::from_string(
            first.state.db.backend(),
            "SELECT CAST(id AS TEXT) AS id FROM violation".to_string(),
        ))
        .await
        .unwrap();
    let server: HashSet<String> = rows
        .iter()
        .map(|r| r.try_get::<String>("", "id").unwrap())
        .collect();
    assert_eq!(server.len(), CHANGES);
    for p in pullers {
        let seen = p.await.unwrap();
        assert_eq!(
            seen.len(),
            server.len(),
            "a puller missed {} reports",
            server.len() - seen.len()
        );
        assert_eq!(seen, server);
    }
    second.db.close().await;

    // The control: the same race against a plain bigserial cursor loses rows.
    // The race is timing: give it up to three rounds to show.
    let mut missed = 0;
    for round in 0..3 {
        missed = naive_bigserial_misses(&first, round).await;
        if missed > 0 {
            break;
        }
    }
    assert!(
        missed > 0,
        "a bigserial cursor should have skipped late commits; the race did not show"
    );
    first.stop().await;
}

/// Writers take a bigserial number at the start of their transaction and commit after a pause;
/// pullers page by `id > cursor`. Returns how many rows the pullers missed in total.
async fn naive_bigserial_misses(app: &TestApp, round: usize) -> usize {
    let db = app.state.db.write.clone();
    let backend = app.state.db.backend();
    let table = format!("naive_log_{round}");
    db.execute_unprepared(&format!(
        "CREATE TABLE {table} (id BIGSERIAL PRIMARY KEY, n INTEGER NOT NULL)"
    ))
    .await
    .unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let mut pullers = Vec::new();
    for _ in 0..PULLERS {
        let db = db.clone();
        let done = done.clone();
        let table = table.clone();
        pullers.push(tokio::spawn(async move {
            let mut seen = HashSet::new();
            let mut cursor = 0i64;
            loop {
                let finished = done.load(Ordering::SeqCst);
                let rows = db
                    .query_all_raw(Statement::from_string(
                        backend,
                        format!("SELECT id FROM {table} WHERE id > {cursor} ORDER BY id LIMIT 100"),
                    ))
                    .await
                    .unwrap();
                for r in &rows {
                    let id: i64 = r.try_get("", "id").unwrap();
                    seen.insert(id);
                    cursor = cursor.max(id);
                }
                if finished && rows.is_empty() {
                    return seen;
                }
                if rows.is_empty() {
                    tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                }
            }
        }));
    }
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let db = db.clone();
        let table = table.clone();
        writers.push(tokio::spawn(async move {
            use sea_orm::TransactionTrait;
            for i in 0..250 {
                let txn = db.begin().await.unwrap();
                txn.execute_unprepared(&format!(
                    "INSERT INTO {table} (n) VALUES ({})",
                    w * 1000 + i
                ))
                .await
                .unwrap();
                let pause = rand::rng().random_range(0..3u64);
                tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
                txn.commit().await.unwrap();
            }
        }));
    }
    for w in writers {
        w.await.unwrap();
    }
    done.store(true, Ordering::SeqCst);
    let total = WRITERS * 250;
    let mut missed = 0;
    for p in pullers {
        missed += total - p.await.unwrap().len();
    }
    missed
}
