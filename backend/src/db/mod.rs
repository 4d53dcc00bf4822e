//! Database connections and migrations.
//!
//! SQLite (the embedded default) gets two pools: one connection that writes and a small pool
//! that reads. SQLite has one writer per database anyway; funnelling writes through one
//! connection in-process avoids `SQLITE_BUSY` retries and the deferred-transaction upgrade
//! deadlock, while WAL lets the readers go on beside it. PostgreSQL gets one pool for both.

pub mod migrations;

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
}

impl Db {
    pub fn backend(&self) -> DbBackend {
        self.write.get_database_backend()
    }

    /// Connects to the URL (creating the SQLite file if needed) and runs all migrations.
    pub async fn connect(url: &str, read_pool: u32) -> anyhow::Result<Db> {
        let db = if url.starts_with("sqlite:") {
            let write = Database::connect(sqlite_options(url, 1))
                .await
                .context("opening the SQLite database")?;
            let read = Database::connect(sqlite_options(url, read_pool.max(1)))
                .await
                .context("opening the SQLite database for reading")?;
            Db { write, read }
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let mut opt = ConnectOptions::new(url.to_string());
            opt.max_connections(read_pool.max(2))
                .min_connections(1)
                .connect_timeout(Duration::from_secs(10))
                // A request may wait for a connection as long as it may run (the request
                // timeout): a burst of pushes queues instead of failing.
                .acquire_timeout(Duration::from_secs(30))
                .sqlx_logging(false);
            let pool = Database::connect(opt)
                .await
                .context("connecting to PostgreSQL")?;
            Db {
                write: pool.clone(),
                read: pool,
            }
        } else {
            anyhow::bail!("DATABASE_URL must start with sqlite: or postgres:, got {url:?}");
        };
        Ok(db)
    }

    pub async fn migrate(&self) -> anyhow::Result<()> {
        Migrator::up(&self.write, None)
            .await
            .context("applying migrations")
    }

    pub async fn ping(&self) -> bool {
        self.read.ping().await.is_ok()
    }

    pub async fn close(self) {
        let _ = self.read.close().await;
        let _ = self.write.close().await;
    }
}

fn sqlite_options(url: &str, pool: u32) -> ConnectOptions {
    let mut opt = ConnectOptions::new(url.to_string());
    opt.max_connections(pool)
        .min_connections(1)
        .acquire_timeout(Duration::from_secs(30))
        .sqlx_logging(false)
        .map_sqlx_sqlite_opts(|o| {
            o.journal_mode(SqliteJournalMode::Wal)
                // FULL: a commit is on disk before the client hears "ok" (durable commits).
                .synchronous(SqliteSynchronous::Full)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(10))
                .create_if_missing(true)
                // A smaller page cache per connection keeps an idle server small.
                .pragma("cache_size", "-2000")
        });
    opt
}
