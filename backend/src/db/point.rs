//! Point reads on the calling thread (SQLite only).
//!
//! sqlx runs every SQLite connection on a worker thread of its own and hands each query over
//! through a channel: two context switches per query, whatever the query costs. For the one
//! read every authenticated request makes (token, user and sync sequence in one indexed
//! lookup, a few microseconds inside SQLite) that hand-over was most of the request's cost:
//! under `bench/load.sh`, the sqlx worker threads and their futex wake-ups took over a third
//! of the server's CPU. A [`PointReader`] instead keeps one read-only connection per thread
//! and runs the statement right there, the way a tokio task may run any short computation.
//!
//! Only short, indexed reads belong here: the calling thread is a runtime worker. Every caller
//! has the sqlx path as its fallback, so a busy or failing connection never fails a request;
//! [`PointReader::read`] returns `None` when it cannot answer.

use std::cell::RefCell;
use std::path::PathBuf;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

/// The database file point reads open; `None` for PostgreSQL and in-memory SQLite.
#[derive(Clone, Debug)]
pub struct PointReader {
    path: PathBuf,
}

/// Connections kept per thread; tests run many servers in one process, each on its own file.
const PER_THREAD: usize = 8;

thread_local! {
    static CONNECTIONS: RefCell<Vec<(PathBuf, Connection)>> = const { RefCell::new(Vec::new()) };
}

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
            path: path.to_path_buf(),
        })
    }

    /// The database file.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Runs `f` on this thread's connection to the database. `None` when the connection
    /// cannot be opened or `f` fails (the caller then asks sqlx); the error is logged.
    pub fn read<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Option<T> {
        CONNECTIONS.with(|cell| {
            let mut conns = cell.try_borrow_mut().ok()?;
            let at = match conns.iter().position(|(p, _)| *p == self.path) {
                Some(i) => i,
                None => {
                    let conn = match self.open() {
                        Ok(c) => c,
                        Err(e) => {
                            tracing::warn!(error = %e, "point read: cannot open the database");
                            return None;
                        }
                    };
                    if conns.len() >= PER_THREAD {
                        conns.remove(0);
                    }
                    conns.push((self.path.clone(), conn));
                    conns.len() - 1
                }
            };
            match f(&conns[at].1) {
                Ok(v) => Some(v),
                Err(e) => {
                    // Unexpected (a WAL read does not wait for the writer): visible, so that a
                    // server quietly running every request on the slow path is noticed.
                    tracing::warn!(error = %e, "point read failed; falling back to sqlx");
                    // A connection left in a bad state is not reused.
                    conns.remove(at);
                    None
                }
            }
        })
    }

    fn open(&self) -> rusqlite::Result<Connection> {
        // Never hold a runtime thread waiting on a lock: give up quickly and let sqlx answer.
        let conn = open(&self.path, false, Duration::from_millis(5))?;
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
        assert_eq!(r.path, PathBuf::from("/tmp/x/thor.db"));
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
        let _ = std::fs::remove_dir_all(&dir);
    }
}
