//! Database connections and migrations.
//!
//! SQLite (the embedded default) gets two pools: one connection that writes and a small pool
//! that reads. SQLite has one writer per database anyway; funnelling writes through one
//! connection in-process avoids `SQLITE_BUSY` retries and the deferred-transaction upgrade
//! deadlock, while WAL lets the readers go on beside it. PostgreSQL gets one pool for both.

pub mod migrations;
pub mod queue;

use std::time::Duration;

use anyhow::Context;
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbBackend};
pub use sea_orm_migration::MigratorTrait;

pub use migrations::Migrator;

/// The database handle every feature uses: `write` for transactions that change data, `read`
/// for queries. On PostgreSQL both are the same pool.
#[derive(Clone, Debug)]
pub struct Db {
    pub write: DatabaseConnection,
    pub read: DatabaseConnection,
    /// The SQLite database file (`None` on PostgreSQL and for in-memory databases): the
    /// background checkpoints open their own connection to it.
    pub sqlite_file: Option<std::path::PathBuf>,
}

impl Db {
    pub fn backend(&self) -> DbBackend {
        self.write.get_database_backend()
    }

    /// Connects to the URL (creating the SQLite file if needed) and runs all migrations.
    pub async fn connect(url: &str, read_pool: u32) -> anyhow::Result<Db> {
        let db = if url.starts_with("sqlite:") {
            let write = Database::connect(sqlite_options(url, 1, WRITER_CACHE_KIB))
                .await
                .context("opening the SQLite database")?;
            let read = Database::connect(sqlite_options(url, read_pool.max(1), READER_CACHE_KIB))
                .await
                .context("opening the SQLite database for reading")?;
            Db {
                write,
                read,
                sqlite_file: sqlite_file(url),
            }
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let mut opt = ConnectOptions::new(url.to_string());
            opt.max_connections(read_pool.max(2))
                .min_connections(1)
                .connect_timeout(Duration::from_secs(10))
                // A request may wait for a connection as long as it may run (the request
                // timeout): a burst of pushes queues instead of failing.
                .acquire_timeout(Duration::from_secs(30))
                // Ping only a connection idle long enough to have been dropped by the server
                // or a firewall; a ping on every checkout is one more round trip per query.
                .test_before_acquire_if_idle_for(Duration::from_secs(30))
                .sqlx_logging(false);
            let pool = Database::connect(opt)
                .await
                .context("connecting to PostgreSQL")?;
            Db {
                write: pool.clone(),
                read: pool,
                sqlite_file: None,
            }
        } else {
            anyhow::bail!("DATABASE_URL must start with sqlite: or postgres:, got {url:?}");
        };
        Ok(db)
    }

    /// SQLite: copies committed WAL frames into the database file in the background (a passive
    /// checkpoint every 200 ms), so that the writer's commits do not stop to do it. Left to the
    /// writer, a checkpoint came every 1,000 pages and took a tenth of a push's time. The writer
    /// still checkpoints by itself if the WAL ever passes `WAL_SAFETY_PAGES` (a stalled
    /// background task). `None` on PostgreSQL and for in-memory databases.
    ///
    /// The checkpoints run on a connection of their own, not on the read pool: a pooled reader
    /// used every 200 ms would never sit idle long enough to be closed (see `POOL_IDLE`).
    /// Aborting the returned task stops them.
    pub fn spawn_checkpointer(&self) -> Option<tokio::task::JoinHandle<()>> {
        let path = self.sqlite_file.clone()?;
        Some(tokio::spawn(checkpoint_in_background(path)))
    }

    pub async fn migrate(&self) -> anyhow::Result<()> {
        Migrator::up(&self.write, None)
            .await
            .context("applying migrations")
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> bool {
        self.read.ping().await.is_ok()
    }

    pub async fn close(self) {
        let _ = self.read.close().await;
        let _ = self.write.close().await;
    }
}

/// The file a `sqlite:` URL names; `None` for an in-memory database (private to its
/// connection) or a URL that does not parse.
fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    use std::str::FromStr;
    if url.contains("mode=memory") || url.contains(":memory:") {
        return None;
    }
    let opts = sea_orm::sqlx::sqlite::SqliteConnectOptions::from_str(url).ok()?;
    let path = opts.get_filename();
    (!path.as_os_str().is_empty() && path.to_str() != Some(":memory:")).then(|| path.to_path_buf())
}

/// The loop of [`Db::spawn_checkpointer`]: logged when checkpoints start failing and when they
/// work again, not five times a second.
async fn checkpoint_in_background(path: std::path::PathBuf) {
    use sea_orm::sqlx::{Connection, sqlite::SqliteConnectOptions};
    let opts = SqliteConnectOptions::new()
        .filename(&path)
        .busy_timeout(Duration::from_millis(100));
    let mut conn = match sea_orm::sqlx::SqliteConnection::connect_with(&opts).await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "background WAL checkpoints: cannot open the database; the writer will checkpoint by itself");
            return;
        }
    };
    let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tick.tick().await;
        match sea_orm::sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&mut conn)
            .await
        {
            Ok(_) if failing => {
                failing = false;
                tracing::info!("background WAL checkpoints work again");
            }
            Ok(_) => {}
            Err(e) if !failing => {
                failing = true;
                tracing::warn!(error = %e, "background WAL checkpoint failed; retrying every 200 ms");
            }
            Err(_) => {}
        }
    }
}

const CHECKPOINT_EVERY: Duration = Duration::from_millis(200);

/// How long a pooled SQLite connection may sit unused before it is closed. A connection's page
/// cache (the writer's grows to 64 MB under a push burst), its prepared statements, and the
/// memory its sqlx worker thread allocated all go with it: an idle server shrinks back to its
/// code and its own data. sqlx looks for such connections once per this period, so one closes
/// 20 to 40 s after its last query. Reopening costs about a millisecond on the next query
/// after a quiet spell.
const POOL_IDLE: Duration = Duration::from_secs(20);

/// Page cache of the one writer connection, in KiB. Inserts into the indexes of large tables (random
/// UUID keys) touch pages all over the file; with SQLite's default 2 MB each touch became a
/// `pread` (a third of the push time in `perf`). The cache grows only as pages are used.
const WRITER_CACHE_KIB: u32 = 64 * 1024;
/// Page cache of each reader connection, in KiB.
const READER_CACHE_KIB: u32 = 2000;
// No memory-mapped reads (SQLite's default): tried, they did not make pulls or exports faster
// here, and the mapped file pages counted in the server's RSS, growing with every page read (a
// year's export showed 230 MB RSS with mapping, 90 MB without).
/// WAL pages after which the writer checkpoints by itself (about 160 MB).
const WAL_SAFETY_PAGES: u32 = 40_000;

fn sqlite_options(url: &str, pool: u32, cache_kib: u32) -> ConnectOptions {
    let mut opt = ConnectOptions::new(url.to_string());
    opt.max_connections(pool)
        // None kept open for its own sake: after `POOL_IDLE` unused, a pool holds no connection
        // and the next query opens one.
        .min_connections(0)
        .acquire_timeout(Duration::from_secs(30))
        // sqlx pings a connection on every checkout by default: for SQLite that is a round trip
        // to the connection's worker thread (two context switches) before every query, for a
        // file that cannot go away. Measured: a third of the reads' cost under load.
        .test_before_acquire(false)
        .idle_timeout(POOL_IDLE)
        .sqlx_logging(false)
        .map_sqlx_sqlite_opts(move |o| {
            o.journal_mode(SqliteJournalMode::Wal)
                // FULL: a commit is on disk before the client hears "ok" (durable commits).
                .synchronous(SqliteSynchronous::Full)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(10))
                .create_if_missing(true)
                .pragma("cache_size", format!("-{cache_kib}"))
                // Statement journals of savepoints (one per pushed edit) in memory, not in
                // temporary files.
                .pragma("temp_store", "memory")
                // Checkpoints run in the background (`Db::spawn_checkpointer`); this is the
                // writer's fallback.
                .pragma("wal_autocheckpoint", WAL_SAFETY_PAGES.to_string())
                // Rows a query may hand back before the connection's thread waits for the
                // reader (sqlx's default is 50): a pull or export page of 1,000 rows used to
                // switch threads every 50 rows.
                .row_buffer_size(1024)
        });
    opt
}
