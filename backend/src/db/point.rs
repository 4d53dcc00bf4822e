//! Point reads on the calling thread (SQLite only).
//!
//! sqlx runs every SQLite connection on a worker thread of its own and hands each query over
//! through a channel: two context switches per query, whatever the query costs. For the one
//! read every authenticated request makes (token, user and sync sequence in one indexed
//! lookup, a few microseconds inside SQLite) that hand-over was most of the request's cost:
//! under `bench/load.sh`, the sqlx worker threads and their futex wake-ups took over a third
//! of the server's CPU. A [`PointReader`] instead lends the calling thread a read-only
//! connection and runs the statement right there, the way a tokio task may run any short
//! computation.
//!
//! The connections wait in a small shared stack between reads, not in thread-locals: under
//! load there are about as many as threads reading at once, and once the server is idle
//! [`PointReader::close_idle`] closes them all (with their page caches and parsed schema, about
//! a megabyte each), which a thread-local on a sleeping runtime thread could not do.
//!
//! Only short, indexed reads belong here: the calling thread is a runtime worker. Every caller
//! has the sqlx path as its fallback, so a busy or failing connection never fails a request;
//! [`PointReader::read`] returns `None` when it cannot answer.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

/// Read-only connections to one database file, lent to the calling thread one read at a time;
/// `None` in [`crate::db::Db`] for PostgreSQL and in-memory SQLite.
#[derive(Clone, Debug)]
pub struct PointReader {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    path: PathBuf,
    /// Connections not lent out, the most recently returned last (its cache is the warmest).
    idle: Mutex<Vec<Connection>>,
}

/// Connections kept between reads, at most; more may be open at once under a burst.
const KEEP: usize = 8;

impl PointReader {
    /// For a `sqlite:` URL naming a file; `None` otherwise (in-memory databases are private
    /// to their connection).
    pub fn for_url(url: &str) -> Option<PointReader> {
        use std::str::FromStr;
        if !url.starts_with("sqlite:") || url.contains("mode=memory") || url.contains(":memory:") {
            return None;
        }
        let opts = sea_orm::sqlx::sqlite::SqliteConnectOptions::from_str(url).ok()?;
        let path = opts.get_filename();
        if path.as_os_str().is_empty() || path.to_str() == Some(":memory:") {
            return None;
        }
        Some(PointReader {
            shared: Arc::new(Shared {
                path: path.to_path_buf(),
                idle: Mutex::new(Vec::new()),
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &std::path::Path {
        &self.shared.path
    }

    /// Runs `f` on a connection to the database, on this thread. `None` when no connection
    /// can be opened or `f` fails (the caller then asks sqlx); the error is logged.
    pub fn read<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Option<T> {
        // Its own statement: the lock is let go before a connection is opened (as a `match`
        // scrutinee the guard would live through the whole match).
        let lent = self.idle().pop();
        let conn = match lent {
            Some(c) => c,
            None => match self.open() {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "point read: cannot open the database");
                    return None;
                }
            },
        };
        match f(&conn) {
            Ok(v) => {
                let mut idle = self.idle();
                if idle.len() < KEEP {
                    idle.push(conn);
                }
                Some(v)
            }
            Err(e) => {
                // Unexpected (a WAL read does not wait for the writer): visible, so that a
                // server quietly running every request on the slow path is noticed. The
                // connection, perhaps left in a bad state, is closed (dropped).
                tracing::warn!(error = %e, "point read failed; falling back to sqlx");
                None
            }
        }
    }

    /// Closes the connections not lent out; the next read opens one again (about a
    /// millisecond). For an idle server: see `app::release_memory_when_idle`.
    pub fn close_idle(&self) -> usize {
        // Closed after the lock is let go: a read on another thread need not wait for it.
        let closing = std::mem::take(&mut *self.idle());
        closing.len()
    }

    /// The stack of idle connections. A read that panicked while holding the lock (it never
    /// holds it while running a statement) is no reason to stop reading.
    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<Connection>> {
        self.shared
            .idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn open(&self) -> rusqlite::Result<Connection> {
        // Never hold a runtime thread waiting on a lock: give up quickly and let sqlx answer.
        let conn = open(&self.shared.path, false, Duration::from_millis(5))?;
        conn.pragma_update(None, "cache_size", -512)?;
        Ok(conn)
    }
}

/// A connection of the server's own to the database file, outside sqlx's pools (point reads,
/// the background checkpoint), for one thread.
pub fn open(
    path: &std::path::Path,
    writable: bool,
    busy_timeout: Duration,
) -> rusqlite::Result<Connection> {
    let access = if writable {
        OpenFlags::SQLITE_OPEN_READ_WRITE
    } else {
        OpenFlags::SQLITE_OPEN_READ_ONLY
    };
    let conn = Connection::open_with_flags(path, access | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
    conn.busy_timeout(busy_timeout)?;
    Ok(conn)
}

/// A UUID as sqlx stores it in SQLite (16 bytes), or as text from a hand-written row.
pub fn uuid(v: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<uuid::Uuid> {
    use rusqlite::types::{FromSqlError, ValueRef};
    match v {
        ValueRef::Blob(b) => uuid::Uuid::from_slice(b).map_err(|e| FromSqlError::Other(e.into())),
        ValueRef::Text(t) => std::str::from_utf8(t)
            .ok()
            .and_then(|s| uuid::Uuid::parse_str(s).ok())
            .ok_or(FromSqlError::InvalidType),
        _ => Err(FromSqlError::InvalidType),
    }
}

/// A time as sqlx stores chrono's `DateTime<Utc>` in SQLite (RFC 3339 text).
pub fn time(
    v: rusqlite::types::ValueRef<'_>,
) -> rusqlite::types::FromSqlResult<chrono::DateTime<chrono::Utc>> {
    use rusqlite::types::FromSqlError;
    let s = v.as_str()?;
    chrono::DateTime::parse_from_rfc3339(s)
        .or_else(|_| chrono::DateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f%:z"))
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|e| FromSqlError::Other(e.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_sqlite_files_get_point_reads() {
        let r = PointReader::for_url("sqlite:///tmp/x/thor.db?mode=rwc").unwrap();
        assert_eq!(r.path(), PathBuf::from("/tmp/x/thor.db"));
        assert!(PointReader::for_url("sqlite::memory:").is_none());
        assert!(PointReader::for_url("postgres://localhost/thor").is_none());
    }

    #[test]
    fn reads_on_this_thread_and_falls_back_on_error() {
        let dir = std::env::temp_dir().join(format!("thor-point-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("t.db");
        {
            let c = Connection::open(&file).unwrap();
            c.execute_batch(
                "PRAGMA journal_mode=WAL; CREATE TABLE t (id BLOB, at TEXT);
                 INSERT INTO t VALUES (x'0123456789abcdef0123456789abcdef', '2026-11-26T16:04:17.5+00:00');",
            )
            .unwrap();
        }
        let r = PointReader::for_url(&format!("sqlite://{}?mode=rwc", file.display())).unwrap();
        let (id, at) = r
            .read(|c| {
                c.query_row("SELECT id, at FROM t", [], |row| {
                    Ok((uuid(row.get_ref(0)?)?, time(row.get_ref(1)?)?))
                })
            })
            .unwrap();
        assert_eq!(id.to_string(), "01234567-89ab-cdef-0123-456789abcdef");
        assert_eq!(at.to_rfc3339(), "2026-11-26T16:04:17.500+00:00");
        // A failing statement answers None (the caller asks sqlx), it does not panic.
        assert!(
            r.read(|c| c.query_row("SELECT nope FROM t", [], |_| Ok(())))
                .is_none()
        );
        // Read-only: a write through a point reader fails instead of writing.
        assert!(r.read(|c| c.execute("DELETE FROM t", [])).is_none());
        // A failed read closed its connection; a good one leaves its connection for the next.
        assert_eq!(r.close_idle(), 0);
        // SAFETY: the handle is only compared, never dereferenced.
        #[allow(unsafe_code)]
        let conn_of = |r: &PointReader| r.read(|c| Ok(unsafe { c.handle() } as usize)).unwrap();
        let first = conn_of(&r);
        assert_eq!(conn_of(&r), first, "the idle connection is lent again");
        assert_eq!(r.close_idle(), 1);
        assert_eq!(r.close_idle(), 0);
        // After closing, the next read opens a connection again and answers.
        assert_eq!(
            r.read(|c| c.query_row("SELECT count(*) FROM t", [], |row| row.get::<_, i64>(0))),
            Some(1)
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
