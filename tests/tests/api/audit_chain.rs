//! The audit log as an auditor checks it: sealed into a hash chain, and `verify` finds a line that
//! was edited, one that was deleted, a seal that was removed, and a chain cut off behind an anchor.
//! The tamperer here is a database administrator: they switch the append-only triggers off first.

use sea_orm::{ConnectionTrait, DbBackend};
use thor::audit::chain::{self, Break, Head};
use thor_tests::{Backend, TestApp, both};

async fn exec(app: &TestApp, sql: &str) {
    app.state
        .db
        .write
        .execute_unprepared(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// Runs `sql` on `table` with its append-only trigger switched off, as an administrator could.
async fn tamper(app: &TestApp, table: &str, sql: &str) {
    match app.state.db.backend() {
        DbBackend::Postgres => {
            exec(app, &format!("ALTER TABLE {table} DISABLE TRIGGER USER")).await;
            exec(app, sql).await;
            exec(app, &format!("ALTER TABLE {table} ENABLE TRIGGER USER")).await;
        }
        _ => {
            // SQLite has no switch: drop the triggers and put them back as the migration made them.
            exec(app, &format!("DROP TRIGGER {table}_no_update")).await;
            exec(app, &format!("DROP TRIGGER {table}_no_delete")).await;
            exec(app, sql).await;
            for (op, name) in [("UPDATE", "no_update"), ("DELETE", "no_delete")] {
                exec(
                    app,
                    &format!(
                        "CREATE TRIGGER {table}_{name} BEFORE {op} ON {table} \
                         BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END;"
                    ),
                )
                .await;
            }
        }
    }
}

async fn seal(app: &TestApp) -> (u64, Option<Head>) {
    chain::seal(&app.state.db.write).await.expect("seal")
}

async fn verify(app: &TestApp, anchor: Option<&Head>) -> chain::Verdict {
    chain::verify(&app.state.db.read, anchor)
        .await
        .expect("verify")
}

/// Some audit lines of every kind: logins, Wpg reads (the violations list logs plates), writes.
async fn some_traffic(app: &TestApp) {
    let lead = app.login("teamleider", "lead-laptop").await;
    let today = thor::demo::today();
    for _ in 0..3 {
        let res = app
            .get(&lead, &format!("/api/v1/violations?date={today}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }
}

async fn audit_chain_finds_every_kind_of_tampering(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.load_demo().await;
    some_traffic(&app).await;

    let (n, head) = seal(&app).await;
    let lines = app.count("audit_log").await;
    assert!(n > 10, "the demo and the reads left lines to seal, got {n}");
    assert_eq!(n as i64, lines, "every line is sealed");
    let head = head.expect("a head");
    assert_eq!(head.seq, lines);
    let v = verify(&app, Some(&head)).await;
    assert!(v.holds(), "an untouched log holds:\n{v}");
    assert_eq!(v.sealed as i64, lines);
    assert_eq!(v.head.as_ref(), Some(&head));

    // Sealing again seals nothing new; new traffic extends the chain from the same head.
    assert_eq!(seal(&app).await.0, 0);
    some_traffic(&app).await;
    let (more, head2) = seal(&app).await;
    assert!(more > 0);
    let head2 = head2.expect("a head");
    assert_eq!(head2.seq, head.seq + more as i64);
    let v = verify(&app, Some(&head)).await;
    assert!(v.holds(), "the older anchor still holds:\n{v}");

    // An edited line: someone rewrites who read a plate.
    let victim: i64 = 5;
    tamper(
        &app,
        "audit_log",
        &format!("UPDATE audit_log SET actor = 'iemand anders' WHERE id = {victim}"),
    )
    .await;
    let v = verify(&app, None).await;
    assert!(!v.holds());
    let seq_of_victim = seq_of(&app, victim).await;
    assert_eq!(
        v.breaks,
        vec![Break::Altered {
            seq: seq_of_victim,
            line_id: victim
        }],
        "{v}"
    );

    // A deleted line.
    let gone: i64 = 9;
    tamper(
        &app,
        "audit_log",
        &format!("DELETE FROM audit_log WHERE id = {gone}"),
    )
    .await;
    let v = verify(&app, None).await;
    assert!(v.breaks.contains(&Break::Missing {
        seq: seq_of(&app, gone).await,
        line_id: gone
    }));

    // A removed seal (to hide the deleted line from the check): the numbering shows it.
    let gone_seq = seq_of(&app, gone).await;
    tamper(
        &app,
        "audit_seal",
        &format!("DELETE FROM audit_seal WHERE seq = {gone_seq}"),
    )
    .await;
    let v = verify(&app, None).await;
    assert!(
        v.breaks.contains(&Break::Gap {
            after: gone_seq - 1,
            next: gone_seq + 1
        }),
        "{v}"
    );

    // A line put in afterwards among the old ones (an id far behind the last sealed line): it
    // stays outside the chain and is reported. (The gap it fills stands for one a rolled-back
    // transaction left in PostgreSQL's id sequence.)
    let forged_id = -chain::LOOK_BACK;
    exec(
        &app,
        &format!(
            "INSERT INTO audit_log (id, at, actor, action, record_type) \
             SELECT {forged_id}, at, 'vervalst', 'read', 'violation' FROM audit_log WHERE id = 1"
        ),
    )
    .await;
    let v = verify(&app, None).await;
    assert_eq!(v.unsealed_old, 1, "{v}");

    // The tail cut off (both tables, past the anchor): the anchor no longer holds.
    let cut = head2.seq;
    let line_at_cut = line_of(&app, cut).await;
    tamper(
        &app,
        "audit_seal",
        &format!("DELETE FROM audit_seal WHERE seq >= {cut}"),
    )
    .await;
    tamper(
        &app,
        "audit_log",
        &format!("DELETE FROM audit_log WHERE id >= {line_at_cut} AND actor <> 'vervalst'"),
    )
    .await;
    let v = verify(&app, Some(&head2)).await;
    assert!(
        v.breaks.iter().any(|b| matches!(
            b,
            Break::Anchor { anchor, found: None } if anchor == &head2
        )),
        "{v}"
    );
    app.stop().await;
}

async fn seq_of(app: &TestApp, line_id: i64) -> i64 {
    app.scalar(&format!(
        "SELECT seq AS n FROM audit_seal WHERE line_id = {line_id}"
    ))
    .await
}

async fn line_of(app: &TestApp, seq: i64) -> i64 {
    app.scalar(&format!(
        "SELECT line_id AS n FROM audit_seal WHERE seq = {seq}"
    ))
    .await
}

/// Two sealers at once (two instances, or `serve` and the CLI) build one chain, not two.
async fn two_sealers_build_one_chain(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.load_demo().await;
    let (a, b) = tokio::join!(seal(&app), seal(&app));
    // A line a background task wrote meanwhile is sealed by the next run.
    let c = seal(&app).await;
    let lines = app.count("audit_log").await;
    assert_eq!((a.0 + b.0 + c.0) as i64, lines, "each line sealed once");
    let v = verify(&app, None).await;
    assert!(v.holds(), "{v}");
    assert_eq!(v.sealed as i64, lines);
    app.stop().await;
}

both!(
    audit_chain_finds_every_kind_of_tampering,
    two_sealers_build_one_chain
);
