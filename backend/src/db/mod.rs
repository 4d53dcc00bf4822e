//! Database connections and migrations.
//!
//! SQLite (the embedded default) gets two pools: one connection that writes and a small pool
//! that reads. SQLite has one writer per database anyway; funnelling writes through one
//! connection in-process avoids `SQLITE_BUSY` retries and the deferred-transaction upgrade
//! deadlock, while WAL lets the readers go on beside it. PostgreSQL gets one pool for both.

pub mod migrations;
pub mod point;
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
    /// Short indexed reads on the calling thread (SQLite files only; see [`point`]).
    pub point: Option<point::PointReader>,
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
                point: point::PointReader::for_url(url),
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
                point: None,
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
    /// background thread). `None` on PostgreSQL and for in-memory databases.
    ///
    /// The checkpoints run on a connection and a thread of their own, not on the read pool: a
    /// pooled reader used every 200 ms would never sit idle long enough to be closed (see
    /// `POOL_IDLE`), and a checkpoint's file writes and fsync would otherwise hold a runtime
    /// thread. Dropping the returned handle stops the thread.
    pub fn spawn_checkpointer(&self) -> Option<Checkpointer> {
        let path = self.point.as_ref()?.path().to_path_buf();
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("thor-checkpoint".into())
            .spawn(move || {
                let conn = match point::open(&path, true, Duration::from_millis(100)) {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::error!(error = %e, "background WAL checkpoints: cannot open the database; the writer will checkpoint by itself");
                        return;
                    }
                };
                // Logged when checkpoints start failing and when they work again, not five
                // times a second.
                let mut failing = false;
                // Until the handle is dropped (the channel disconnects).
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(CHECKPOINT_EVERY)
                {
                    crate::perf::on_thread_wake();
                    match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                        Ok(()) if failing => {
                            failing = false;
                            tracing::info!("background WAL checkpoints work again");
                        }
                        Ok(()) => {}
                        Err(e) if !failing => {
                            failing = true;
                            tracing::warn!(error = %e, "background WAL checkpoint failed; retrying every 200 ms");
                        }
                        Err(_) => {}
                    }
                }
            });
        match thread {
            Ok(thread) => Some(Checkpointer {
                stop: Some(stop),
                thread: Some(thread),
            }),
            Err(e) => {
                tracing::error!(error = %e, "cannot start the background WAL checkpoint thread");
                None
            }
        }
    }

    pub async fn migrate(&self) -> anyhow::Result<()> {
        Migrator::up(&self.write, None)
            .await
            .context("applying migrations")
    }

    /// Whether the database answers. On a SQLite file the probe reads on the calling thread's
    /// own connection (see [`point`]), not a pooled one: readiness probes every few seconds
    /// (Docker, Kubernetes) would otherwise keep a pooled reader from ever going idle.
    pub async fn ping(&self) -> bool {
        let point = self.point.as_ref().and_then(|p| {
            p.read(|c| c.query_row("SELECT count(*) FROM sqlite_schema", [], |_| Ok(())))
        });
        point.is_some() || self.read.ping().await.is_ok()
    }

    pub async fn close(self) {
        let _ = self.read.close().await;
        let _ = self.write.close().await;
    }
}

/// The background checkpoint thread; dropping it stops the thread and waits for it.
pub struct Checkpointer {
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take()
            && t.join().is_err()
        {
            tracing::error!("the background WAL checkpoint thread panicked");
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

/// For a binary whose global allocator is mimalloc (the server's `main`, the benchmarks).
/// SQLite allocates through glibc's malloc behind a global mutex (its memory statistics) by
/// default. In `perf` of a first pull, glibc's malloc, `malloc_consolidate` and that mutex took
/// a fifth of the server's time (sqlx copies every column value of every row). Here SQLite
/// allocates from mimalloc like the rest of the server and keeps no statistics. Must run before
/// SQLite is first used; if it is too late, SQLite keeps its defaults (logged).
#[allow(unsafe_code)]
pub fn sqlite_on_mimalloc() {
    use libmimalloc_sys as mi;
    use rusqlite::ffi;
    use std::ffi::{c_int, c_void};

    unsafe extern "C" fn x_malloc(n: c_int) -> *mut c_void {
        // SAFETY: mimalloc's malloc takes any size; SQLite never asks for a negative one.
        unsafe { mi::mi_malloc(n.max(0) as usize) }
    }
    unsafe extern "C" fn x_free(p: *mut c_void) {
        // SAFETY: SQLite frees only what x_malloc/x_realloc returned.
        unsafe { mi::mi_free(p) }
    }
    unsafe extern "C" fn x_realloc(p: *mut c_void, n: c_int) -> *mut c_void {
        // SAFETY: as above; `p` came from this allocator.
        unsafe { mi::mi_realloc(p, n.max(0) as usize) }
    }
    unsafe extern "C" fn x_size(p: *mut c_void) -> c_int {
        // SAFETY: `p` came from this allocator.
        unsafe { mi::mi_usable_size(p) as c_int }
    }
    unsafe extern "C" fn x_roundup(n: c_int) -> c_int {
        // SAFETY: a pure function of the size.
        unsafe { mi::mi_good_size(n.max(0) as usize) as c_int }
    }
    unsafe extern "C" fn x_init(_: *mut c_void) -> c_int {
        ffi::SQLITE_OK
    }
    unsafe extern "C" fn x_shutdown(_: *mut c_void) {}
    let methods = ffi::sqlite3_mem_methods {
        xMalloc: Some(x_malloc),
        xFree: Some(x_free),
        xRealloc: Some(x_realloc),
        xSize: Some(x_size),
        xRoundup: Some(x_roundup),
        xInit: Some(x_init),
        xShutdown: Some(x_shutdown),
        pAppData: std::ptr::null_mut(),
    };
    // SAFETY: called from main before any connection exists (SQLite refuses the call, without
    // harm, once it is initialised); SQLite copies
    // the methods struct before sqlite3_config returns.
    let (stats, malloc) = unsafe {
        (
            ffi::sqlite3_config(ffi::SQLITE_CONFIG_MEMSTATUS, 0 as c_int),
            ffi::sqlite3_config(
                ffi::SQLITE_CONFIG_MALLOC,
                &methods as *const ffi::sqlite3_mem_methods,
            ),
        )
    };
    if stats != ffi::SQLITE_OK || malloc != ffi::SQLITE_OK {
        eprintln!(
            "thor: SQLite keeps its defaults (sqlite3_config: statistics {stats}, allocator {malloc})"
        );
    }
}
