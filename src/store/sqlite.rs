//! The embedded default: one SQLite file in WAL mode, or `sqlite::memory:` for throwaway runs,
//! run on the calling thread.
//!
//! A statement runs on the task that asks for it, under the one connection's lock: SQLite answers
//! a primary-key read in about 2 µs and a write in about 14 µs of CPU, while handing each
//! statement to a driver thread and back (as sqlx does) cost 15–25 µs more, the most of a
//! sign-in's database time. What may take long runs on the blocking pool instead, holding the
//! lock meanwhile: statements marked [`slow`](super::db::Statement::slow) (purges, listings), the
//! migrations, and checkpoints, which SQLite would otherwise run inside whichever commit filled
//! the log; here a task of their own runs them on a connection of their own (`checkpoints.rs`).

use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::time::Duration;

use chrono::SecondsFormat;
use rusqlite::types::Null;
use rusqlite::{CachedStatement, Connection, OpenFlags};
use tokio::sync::{Mutex, OwnedMutexGuard};

use super::db::{Db, DbError, FromRow, Row, Statement, Value};
use super::sql::SqlStore;
use super::{StoreError, StoreResult};
use crate::telemetry::metrics::PoolStats;

/// How the checkpoints are taken off the request path.
mod checkpoints;
/// The migrations, kept in sqlx's bookkeeping table so existing databases open unchanged.
mod migrate;

/// How long a statement waits for the connection before the store reports the database
/// unavailable (sqlx's default acquire timeout, which the pool of one had).
const CONNECTION_WAIT: Duration = Duration::from_secs(30);

/// How long a statement waits on a lock another process holds (an operator's `sqlite3` shell, a
/// backup), off the async workers: on the calling thread it does not wait at all.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Prepared statements kept per connection: every statement the store runs, with room to spare.
const STATEMENT_CACHE: usize = 128;

/// Statements with more binds than this are prepared each time rather than kept: they are the
/// large audit batches, each of a size of its own, which would crowd out the rest.
const CACHED_BINDS_AT_MOST: usize = 64;

/// SQLite's one connection, taken in turn.
pub struct Lite {
    connection: Arc<Mutex<Connection>>,
    /// Stops the checkpoint task when the store goes (none for an in-memory database).
    _checkpoints: Option<checkpoints::Checkpoints>,
}

impl SqlStore {
    /// Opens (creating when missing) the SQLite database at `url`: `sqlite:portcullis.db`,
    /// `sqlite://portcullis.db`, or `sqlite::memory:`.
    pub async fn sqlite(url: &str) -> StoreResult<Self> {
        Ok(Self {
            db: Db::Sqlite(Lite::open(url)?),
        })
    }
}

/// Where a URL says the database is.
enum Place {
    Memory,
    File(String),
}

fn place(url: &str) -> StoreResult<Place> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    match rest {
        ":memory:" => Ok(Place::Memory),
        "" => Err(StoreError::Database(DbError::Sqlite(
            rusqlite::Error::InvalidPath(url.into()),
        ))),
        // Query parameters (`?mode=rwc`) go to SQLite as a URI.
        path if path.contains('?') => Ok(Place::File(format!("file:{path}"))),
        path => Ok(Place::File(path.to_owned())),
    }
}

impl Lite {
    fn open(url: &str) -> StoreResult<Self> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let (connection, checkpoints) = match place(url)? {
            // An in-memory database lives as long as this connection, which is what a
            // throwaway run wants; it has no log to checkpoint.
            Place::Memory => (Connection::open_in_memory()?, None),
            Place::File(path) => {
                let connection = Connection::open_with_flags(&path, flags)?;
                // With WAL, NORMAL syncs at checkpoints rather than at every commit: a crash of
                // Portcullis loses nothing; a power cut may lose the last commits (SQLite's WAL
                // docs).
                connection.pragma_update(None, "journal_mode", "WAL")?;
                connection.pragma_update(None, "synchronous", "NORMAL")?;
                let checkpoints = checkpoints::start(&connection, &path, flags)?;
                (connection, Some(checkpoints))
            }
        };
        connection.pragma_update(None, "foreign_keys", "ON")?;
        // A statement finding the database locked by another process fails at once here and is
        // run again where waiting blocks nobody (`off_thread`).
        connection.busy_timeout(Duration::ZERO)?;
        connection.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        // One connection, taken in turn. SQLite serialises writers anyway, and one connection
        // is what makes it cheap: its page cache never goes stale (no other connection of this
        // process writes), and no statement waits for another thread. Reads wait behind writes,
        // which take microseconds; Postgres is the database for heavy concurrent load.
        Ok(Self {
            connection: Arc::new(Mutex::new(connection)),
            _checkpoints: checkpoints,
        })
    }

    /// The connection, which a statement's work can take along to the blocking pool.
    async fn take(&self) -> StoreResult<OwnedMutexGuard<Connection>> {
        let connection =
            tokio::time::timeout(CONNECTION_WAIT, self.connection.clone().lock_owned())
                .await
                .map_err(|_| StoreError::Unavailable(DbError::Busy(CONNECTION_WAIT)))?;
        settle(&connection)?;
        Ok(connection)
    }

    /// Runs `work` here, or on the blocking pool when the statement is slow or the database is
    /// locked by another process.
    async fn run<T: Send + 'static>(
        &self,
        statement: Statement<'_>,
        work: Work<T>,
    ) -> StoreResult<T> {
        if !statement.slow {
            let result = work(&*self.take().await?, &statement);
            if !locked_elsewhere(&result) {
                return result;
            }
        }
        let connection = self.take().await?;
        let (_, result) = off_thread(connection, statement.into_owned(), work).await?;
        result
    }

    pub(super) async fn execute(&self, statement: Statement<'_>) -> StoreResult<u64> {
        self.run(statement, execute).await
    }

    pub(super) async fn fetch<R: FromRow>(&self, statement: Statement<'_>) -> StoreResult<Vec<R>> {
        self.run(statement, fetch).await
    }

    pub(super) async fn begin(&self) -> StoreResult<LiteTx> {
        let connection = self.take().await?;
        connection.execute_batch("BEGIN")?;
        Ok(LiteTx {
            connection: Some(connection),
        })
    }

    pub(super) async fn migrate(&self) -> StoreResult<()> {
        let mut connection = self.take().await?;
        tokio::task::spawn_blocking(move || {
            connection.busy_timeout(BUSY_TIMEOUT)?;
            let migrated = migrate::run(&mut connection);
            connection.busy_timeout(Duration::ZERO)?;
            migrated
        })
        .await
        .map_err(|e| StoreError::Database(DbError::Panicked(e.to_string())))?
    }

    pub(super) fn stats(&self) -> PoolStats {
        PoolStats {
            open: 1,
            idle: u32::from(self.connection.try_lock().is_ok()),
            max: 1,
        }
    }
}

/// Rolls back a transaction whose holder went away mid-way (a cancelled request whose slow
/// statement was still running), so that the next holder starts clean.
fn settle(connection: &Connection) -> StoreResult<()> {
    if !connection.is_autocommit() {
        connection.execute_batch("ROLLBACK")?;
    }
    Ok(())
}

/// A statement's work on the connection: [`execute`] or [`fetch`].
type Work<T> = fn(&Connection, &Statement<'_>) -> StoreResult<T>;

/// Whether `result` is SQLite's "another connection holds the lock", which left nothing done.
fn locked_elsewhere<T>(result: &StoreResult<T>) -> bool {
    matches!(
        result,
        Err(StoreError::Database(DbError::Sqlite(rusqlite::Error::SqliteFailure(e, _))))
            if e.code == rusqlite::ErrorCode::DatabaseBusy
    )
}

/// Runs `work` on the blocking pool with the connection, waiting there for a lock another
/// process holds; gives both back.
async fn off_thread<T: Send + 'static>(
    connection: OwnedMutexGuard<Connection>,
    statement: Statement<'static>,
    work: Work<T>,
) -> StoreResult<(OwnedMutexGuard<Connection>, StoreResult<T>)> {
    tokio::task::spawn_blocking(move || {
        let result = connection
            .busy_timeout(BUSY_TIMEOUT)
            .map_err(StoreError::from)
            .and_then(|()| work(&connection, &statement));
        let result = connection
            .busy_timeout(Duration::ZERO)
            .map_err(StoreError::from)
            .and(result);
        (connection, result)
    })
    .await
    .map_err(|e| StoreError::Database(DbError::Panicked(e.to_string())))
}

/// A transaction on SQLite's connection, which it holds until committed or dropped.
pub struct LiteTx {
    /// `None` only while a slow statement has it on the blocking pool.
    connection: Option<OwnedMutexGuard<Connection>>,
}

impl LiteTx {
    fn connection(&self) -> StoreResult<&Connection> {
        self.connection.as_deref().ok_or_else(lost)
    }

    async fn run<T: Send + 'static>(
        &mut self,
        statement: Statement<'_>,
        work: Work<T>,
    ) -> StoreResult<T> {
        if !statement.slow {
            let result = work(self.connection()?, &statement);
            if !locked_elsewhere(&result) {
                return result;
            }
        }
        let connection = self.connection.take().ok_or_else(lost)?;
        let (connection, result) = off_thread(connection, statement.into_owned(), work).await?;
        self.connection = Some(connection);
        result
    }

    pub(super) async fn execute(&mut self, statement: Statement<'_>) -> StoreResult<u64> {
        self.run(statement, execute).await
    }

    pub(super) async fn fetch<R: FromRow>(
        &mut self,
        statement: Statement<'_>,
    ) -> StoreResult<Vec<R>> {
        self.run(statement, fetch).await
    }

    pub(super) fn commit(self) -> StoreResult<()> {
        // A failed COMMIT leaves the transaction open; dropping `self` rolls it back.
        Ok(self.connection()?.execute_batch("COMMIT")?)
    }

    pub(super) fn rollback(self) -> StoreResult<()> {
        Ok(self.connection()?.execute_batch("ROLLBACK")?)
    }
}

/// What a transaction reports once its connection was lost: a slow statement's task panicked.
fn lost() -> StoreError {
    StoreError::Database(DbError::Panicked(
        "the transaction lost its connection".to_owned(),
    ))
}

impl Drop for LiteTx {
    fn drop(&mut self) {
        if let Some(connection) = &self.connection {
            // Nothing to report to: the next holder would roll back anyway (`settle`).
            let _ = settle(connection);
        }
    }
}

/// Runs a statement that returns no rows; the rows it changed.
fn execute(connection: &Connection, statement: &Statement<'_>) -> StoreResult<u64> {
    let changed = prepare(connection, statement)?.raw_execute()?;
    Ok(changed as u64)
}

/// Runs a statement; every row it returned.
fn fetch<R: FromRow>(connection: &Connection, statement: &Statement<'_>) -> StoreResult<Vec<R>> {
    let mut prepared = prepare(connection, statement)?;
    let mut rows = prepared.raw_query();
    let mut read = Vec::new();
    while let Some(row) = rows.next()? {
        read.push(R::from_row(&Row::Sqlite(row))?);
    }
    Ok(read)
}

/// The statement, prepared once per connection and bound. SQLite numbers parameters in order of
/// first appearance, so `$n` is bound by its name: `$2` may come before `$1`.
fn prepare<'c>(
    connection: &'c Connection,
    statement: &Statement<'_>,
) -> rusqlite::Result<Prepared<'c>> {
    let mut prepared = if statement.binds.len() <= CACHED_BINDS_AT_MOST {
        Prepared::Kept(connection.prepare_cached(&statement.sql)?)
    } else {
        Prepared::Once(connection.prepare(&statement.sql)?)
    };
    for index in 1..=prepared.parameter_count() {
        let name = prepared.parameter_name(index).unwrap_or("?");
        let value = name
            .strip_prefix('$')
            .and_then(|n| n.parse::<usize>().ok())
            .and_then(|n| n.checked_sub(1))
            .and_then(|n| statement.binds.get(n));
        let Some(value) = value else {
            return Err(rusqlite::Error::InvalidParameterName(name.to_owned()));
        };
        match value {
            Value::Text(Some(text)) => prepared.raw_bind_parameter(index, text.as_ref())?,
            Value::Int(Some(int)) => prepared.raw_bind_parameter(index, int)?,
            Value::Time(Some(time)) => prepared.raw_bind_parameter(index, stored_time(time))?,
            Value::Json(json) => prepared.raw_bind_parameter(index, json.get())?,
            Value::Text(None) | Value::Int(None) | Value::Time(None) => {
                prepared.raw_bind_parameter(index, Null)?;
            }
        }
    }
    Ok(prepared)
}

/// A prepared statement, kept in the connection's cache or not.
enum Prepared<'c> {
    Kept(CachedStatement<'c>),
    Once(rusqlite::Statement<'c>),
}

impl<'c> Deref for Prepared<'c> {
    type Target = rusqlite::Statement<'c>;

    fn deref(&self) -> &Self::Target {
        match self {
            Self::Kept(statement) => statement,
            Self::Once(statement) => statement,
        }
    }
}

impl DerefMut for Prepared<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        match self {
            Self::Kept(statement) => statement,
            Self::Once(statement) => statement,
        }
    }
}

/// Every timestamp is written, and compared, in one fixed-width form (microseconds, `Z`), so
/// that comparing the TEXT columns compares the times.
fn stored_time(time: &chrono::DateTime<chrono::Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// The stored form of a timestamp; transactions given up half-way; checkpoints.
#[cfg(test)]
mod tests;
