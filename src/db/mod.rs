//! Database access for both backends from one codebase.
//!
//! One connection enum derives `diesel::MultiConnection`, so ordinary diesel queries compile once
//! and run on SQLite or PostgreSQL. The backend is chosen from the URL scheme and the concrete
//! connection is built by our own r2d2 manager (SQLite accepts any string as a path, so letting
//! the derive guess would turn a typo into an empty database). Backend-specific SQL (the outbox
//! claim with `FOR UPDATE SKIP LOCKED`, SQLite pragmas) lives in this module and its models only.
//!
//! Diesel is synchronous: every database call goes through [`Db::run`] or [`Db::write`], which move
//! the work onto tokio's blocking pool so the async executor never waits on disk or network.

pub mod migrations;
pub mod models;
pub mod schema;

use std::path::PathBuf;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::{self, ManageConnection};
use diesel::result::{DatabaseErrorKind, Error as DieselError};

/// The connection type every query runs on.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    /// PostgreSQL, for teams that run several replicas.
    Postgresql(diesel::PgConnection),
    /// Embedded SQLite, the zero-configuration default.
    Sqlite(diesel::SqliteConnection),
}

/// Which database engine a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite file.
    Sqlite,
    /// PostgreSQL server.
    Postgres,
}

impl Backend {
    /// A short name for logs and pages.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres => "PostgreSQL",
        }
    }
}

/// A parsed database location.
#[derive(Clone)]
pub struct DbUrl {
    /// The engine.
    pub backend: Backend,
    /// For PostgreSQL the full URL; for SQLite the file path.
    target: String,
}

impl std::fmt::Debug for DbUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DbUrl({}, {})", self.backend.name(), self.redacted())
    }
}

/// The default database: a SQLite file under `./data/`.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/redbutton.db";

impl DbUrl {
    /// Chooses the backend from the scheme: `postgres://` or `postgresql://`, `sqlite://PATH`,
    /// `sqlite:PATH`, or a bare path to a `.db`/`.sqlite`/`.sqlite3` file.
    pub fn parse(url: &str) -> Result<Self, String> {
        let url = url.trim();
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Self {
                backend: Backend::Postgres,
                target: url.to_string(),
            });
        }
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .or_else(|| {
                let lower = url.to_ascii_lowercase();
                [".db", ".sqlite", ".sqlite3"]
                    .iter()
                    .any(|ext| lower.ends_with(ext))
                    .then_some(url)
            });
        match path {
            Some(p) if !p.is_empty() => Ok(Self {
                backend: Backend::Sqlite,
                target: p.to_string(),
            }),
            _ => Err(format!(
                "database URL \u{201c}{}\u{201d} is not understood: use postgres://USER@HOST/DB or sqlite://PATH",
                redact_url(url)
            )),
        }
    }

    /// The URL with any password replaced, safe for logs and pages.
    pub fn redacted(&self) -> String {
        match self.backend {
            Backend::Sqlite => format!("sqlite://{}", self.target),
            Backend::Postgres => redact_url(&self.target),
        }
    }

    /// For SQLite, the file path.
    pub fn sqlite_path(&self) -> Option<PathBuf> {
        (self.backend == Backend::Sqlite).then(|| PathBuf::from(&self.target))
    }

    /// The raw target (URL or path) used to connect.
    pub(crate) fn target(&self) -> &str {
        &self.target
    }
}

/// Replaces passwords in `scheme://user:password@host` and in `password=`/`sslpassword=`
/// query parameters with `***`.
pub fn redact_url(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let mut out = base.to_string();
    if let Some((scheme, rest)) = base.split_once("://")
        && let Some((userinfo, host)) = rest.rsplit_once('@')
        && let Some((user, _password)) = userinfo.split_once(':')
    {
        out = format!("{scheme}://{user}:***@{host}");
    }
    if let Some(q) = query {
        let params: Vec<String> = q
            .split('&')
            .map(|p| match p.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") || k.eq_ignore_ascii_case("sslpassword") => {
                    format!("{k}=***")
                }
                _ => p.to_string(),
            })
            .collect();
        out.push('?');
        out.push_str(&params.join("&"));
    }
    out
}

/// Errors from the database layer.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// No connection could be had from the pool.
    #[error("database connection unavailable: {0}")]
    Pool(#[from] r2d2::PoolError),
    /// A query failed.
    #[error("database query failed: {0}")]
    Query(#[from] DieselError),
    /// The blocking task died.
    #[error("database task failed: {0}")]
    Task(String),
    /// SQLite stayed locked (by another process) past every retry.
    #[error("the database is busy (locked by another writer); try again in a moment")]
    Busy,
}

/// Opens concrete connections for the pool and applies per-connection settings.
#[derive(Debug, Clone)]
pub struct ConnectionManager {
    url: DbUrl,
    sqlite_busy_timeout_ms: u32,
}

impl ManageConnection for ConnectionManager {
    type Connection = DbConnection;
    type Error = r2d2::Error;

    fn connect(&self) -> Result<DbConnection, r2d2::Error> {
        match self.url.backend {
            Backend::Postgres => diesel::PgConnection::establish(self.url.target())
                .map(DbConnection::Postgresql)
                .map_err(r2d2::Error::ConnectionError),
            Backend::Sqlite => {
                let mut conn =
                    diesel::SqliteConnection::establish(self.url.target()).map_err(r2d2::Error::ConnectionError)?;
                // WAL is persistent and set by the migration step; these are per connection.
                conn.batch_execute(&format!(
                    "PRAGMA busy_timeout = {}; PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;",
                    self.sqlite_busy_timeout_ms
                ))
                .map_err(r2d2::Error::QueryError)?;
                Ok(DbConnection::Sqlite(conn))
            }
        }
    }

    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), r2d2::Error> {
        conn.batch_execute("SELECT 1").map_err(r2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut DbConnection) -> bool {
        // A connection whose transaction is still open (a panic inside a closure, a failed
        // rollback) must never go back to the pool: on SQLite it would hold the write lock.
        std::thread::panicking() || diesel::r2d2::R2D2Connection::is_broken(conn)
    }
}

/// The shared database handle: a pool plus the backend it talks to.
#[derive(Clone)]
pub struct Db {
    pool: r2d2::Pool<ConnectionManager>,
    backend: Backend,
    /// SQLite has one writer at a time. Writers of this process queue here, in order, instead of
    /// all racing for the file lock and sleeping in SQLite's busy handler (which made the slowest
    /// declarations under load wait tens of milliseconds for nothing).
    write_gate: std::sync::Arc<std::sync::Mutex<()>>,
}

/// How often a write that found SQLite locked is tried again after the busy timeout.
const SQLITE_BUSY_RETRIES: u32 = 3;

impl Db {
    /// Runs migrations for the backend, then builds the pool.
    pub fn connect(url: &DbUrl, max_connections: u32, sqlite_busy_timeout_ms: u32) -> anyhow::Result<Self> {
        if let Some(path) = url.sqlite_path()
            && let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir)
                .map_err(|e| anyhow::anyhow!("cannot create the database folder {}: {e}", dir.display()))?;
        }
        migrations::run(url)?;
        let manager = ConnectionManager {
            url: url.clone(),
            sqlite_busy_timeout_ms,
        };
        let pool = r2d2::Pool::builder()
            .max_size(max_connections.max(1))
            .connection_timeout(Duration::from_secs(10))
            .build(manager)
            .map_err(|e| anyhow::anyhow!("cannot open the database {}: {e}", url.redacted()))?;
        Ok(Self {
            pool,
            backend: url.backend,
            write_gate: Default::default(),
        })
    }

    /// Which engine this handle talks to.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Runs `f` with a pooled connection on the blocking pool.
    pub async fn run<R, F>(&self, f: F) -> Result<R, DbError>
    where
        R: Send + 'static,
        F: FnOnce(&mut DbConnection) -> Result<R, DieselError> + Send + 'static,
    {
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = pool.get()?;
            f(&mut conn).map_err(DbError::Query)
        })
        .await
        .map_err(|e| DbError::Task(e.to_string()))?
    }

    /// Runs `f` in a write transaction on the blocking pool.
    ///
    /// On SQLite the transaction first takes the write lock (a one-row update), so it never starts
    /// as a reader and fails to upgrade later; a lock held by another process is waited for (busy
    /// timeout) and the whole transaction is retried a few times before giving up with a clear
    /// [`DbError::Busy`]. On PostgreSQL it is an ordinary transaction.
    pub async fn write<R, E, F>(&self, f: F) -> Result<R, E>
    where
        R: Send + 'static,
        E: From<DbError> + From<DieselError> + Send + 'static,
        F: Fn(&mut DbConnection) -> Result<R, E> + Send + 'static,
    {
        let pool = self.pool.clone();
        let backend = self.backend;
        let gate = self.write_gate.clone();
        tokio::task::spawn_blocking(move || {
            let _turn = (backend == Backend::Sqlite).then(|| gate.lock().unwrap_or_else(|e| e.into_inner()));
            let mut conn = pool.get().map_err(DbError::from)?;
            let mut tries = 0;
            loop {
                let result = conn.transaction(|conn| {
                    if backend == Backend::Sqlite {
                        take_sqlite_write_lock(conn)?;
                    }
                    f(conn)
                });
                let busy = backend == Backend::Sqlite && result.is_err() && take_busy_marker();
                match result {
                    Err(_) if busy && tries < SQLITE_BUSY_RETRIES => {
                        tries += 1;
                        tracing::warn!(
                            attempt = tries,
                            "database locked by another writer; retrying the transaction"
                        );
                    }
                    Err(_) if busy => return Err(E::from(DbError::Busy)),
                    other => return other,
                }
            }
        })
        .await
        .map_err(|e| E::from(DbError::Task(e.to_string())))?
    }

    /// Checks that the database answers (for `/readyz`).
    pub async fn ping(&self) -> Result<(), DbError> {
        self.run(|conn| conn.batch_execute("SELECT 1")).await
    }
}

thread_local! {
    static LAST_WRITE_WAS_BUSY: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn take_sqlite_write_lock(conn: &mut DbConnection) -> Result<(), DieselError> {
    use schema::counters::dsl::*;
    LAST_WRITE_WAS_BUSY.with(|b| b.set(false));
    let r = diesel::update(counters.filter(name.eq("write_lock")))
        .set(value.eq(value + 1))
        .execute(conn);
    if let Err(e) = &r
        && is_busy(e)
    {
        LAST_WRITE_WAS_BUSY.with(|b| b.set(true));
    }
    r.map(|_| ())
}

/// The transaction error type is the caller's, so whether the write lock was busy is carried on
/// the side (per blocking thread) rather than by inspecting `E`. Reading it resets it.
fn take_busy_marker() -> bool {
    LAST_WRITE_WAS_BUSY.with(|b| b.replace(false))
}

/// Whether a diesel error is SQLite's "database is locked".
pub fn is_busy(e: &DieselError) -> bool {
    match e {
        DieselError::DatabaseError(DatabaseErrorKind::Unknown, info) => {
            let m = info.message();
            m.contains("database is locked") || m.contains("database is busy")
        }
        _ => false,
    }
}

/// Whether a diesel error is a unique-constraint violation.
pub fn is_unique_violation(e: &DieselError) -> bool {
    matches!(e, DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_from_url() {
        assert_eq!(DbUrl::parse("postgres://u:p@h/db").unwrap().backend, Backend::Postgres);
        assert_eq!(DbUrl::parse("postgresql://h/db").unwrap().backend, Backend::Postgres);
        assert_eq!(
            DbUrl::parse("sqlite://data/x.db").unwrap().sqlite_path().unwrap(),
            PathBuf::from("data/x.db")
        );
        assert_eq!(
            DbUrl::parse("sqlite:/tmp/x").unwrap().sqlite_path().unwrap(),
            PathBuf::from("/tmp/x")
        );
        assert_eq!(DbUrl::parse("./x.sqlite3").unwrap().backend, Backend::Sqlite);
        assert!(DbUrl::parse("mysql://h/db").is_err());
        assert!(DbUrl::parse("data/typo").is_err());
    }

    #[test]
    fn passwords_never_shown() {
        let u = DbUrl::parse("postgres://app:s3cret@db:5432/rb").unwrap();
        assert_eq!(u.redacted(), "postgres://app:***@db:5432/rb");
        assert!(!format!("{u:?}").contains("s3cret"));
        let e = DbUrl::parse("mysql://app:s3cret@db/rb").unwrap_err();
        assert!(!e.contains("s3cret"));
        let q = DbUrl::parse("postgres://app@db/rb?sslmode=require&password=s3cret").unwrap();
        assert_eq!(q.redacted(), "postgres://app@db/rb?sslmode=require&password=***");
    }
}
