//! The statement layer under the one SQL implementation: a statement and its binds written once
//! for both engines, rows read by column name, and transactions.
//!
//! Postgres runs a statement through sqlx's pool (`postgres.rs`). SQLite runs it on the calling
//! thread under its one connection's lock (`sqlite.rs`): its statements take microseconds, and a
//! hop to a driver thread and back cost more than most of them. That is why this layer exists
//! rather than sqlx's generic executor, which runs every SQLite statement on a thread of its own.

use std::borrow::Cow;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::value::RawValue;
use sqlx::postgres::PgRow;
use sqlx::types::Json;

use super::sqlite::Lite;
use super::{StoreError, StoreResult};

/// Where statements run: a Postgres pool, or SQLite's one connection.
pub enum Db {
    Postgres(sqlx::PgPool),
    Sqlite(Lite),
}

/// A database driver's own error, whichever engine raised it.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error(transparent)]
    Postgres(sqlx::Error),
    #[error(transparent)]
    Sqlite(rusqlite::Error),
    /// A statement that must return a row returned none.
    #[error("the statement returned no row")]
    NoRow,
    /// The blocking task running a statement ended without an answer.
    #[error("the database task failed: {0}")]
    Panicked(String),
    /// SQLite's one connection stayed busy for longer than a statement waits for it.
    #[error("no database connection was free within {0:?}")]
    Busy(std::time::Duration),
}

/// A value bound to a statement. Each keeps its type even when NULL, as Postgres needs it.
#[derive(Debug, Clone)]
pub enum Value<'a> {
    Text(Option<Cow<'a, str>>),
    Int(Option<i64>),
    /// A timestamp: `TIMESTAMPTZ` on Postgres, fixed-width TEXT on SQLite (see `sqlite.rs`).
    Time(Option<DateTime<Utc>>),
    /// A JSON document, serialised once: `JSONB` on Postgres, TEXT on SQLite.
    Json(Box<RawValue>),
}

/// One SQL text with its binds, `$n` placeholders counted from 1 (both engines read them).
pub struct Statement<'a> {
    pub(super) sql: Cow<'static, str>,
    pub(super) binds: Vec<Value<'a>>,
    /// Run off the async workers on SQLite: it may touch many rows (purges, listings).
    pub(super) slow: bool,
    /// A bind that could not be serialised, reported when the statement runs.
    failed: Option<serde_json::Error>,
}

/// A statement of fixed text.
pub fn sql<'a>(text: &'static str) -> Statement<'a> {
    Statement {
        sql: Cow::Borrowed(text),
        binds: Vec::new(),
        slow: false,
        failed: None,
    }
}

impl<'a> Statement<'a> {
    /// A statement whose text is built at run time from fixed pieces and placeholders.
    pub fn built(text: String) -> Self {
        Statement {
            sql: Cow::Owned(text),
            ..sql("")
        }
    }

    /// Binds the next placeholder (`$1`, then `$2`, …).
    pub fn bind(mut self, value: impl Bind<'a>) -> Self {
        self.push_value(value);
        self
    }

    /// Appends fixed text to a built statement.
    pub fn push(&mut self, text: &str) -> &mut Self {
        self.sql.to_mut().push_str(text);
        self
    }

    /// Appends a placeholder for `value` to a built statement.
    pub fn push_bind(&mut self, value: impl Bind<'a>) -> &mut Self {
        self.push_value(value);
        let placeholder = format!("${}", self.binds.len());
        self.sql.to_mut().push_str(&placeholder);
        self
    }

    /// Marks the statement as one that may run long: one that may scan or change many rows must
    /// be marked, for on SQLite every other statement runs on the async worker that asks.
    pub fn slow(mut self) -> Self {
        self.slow = true;
        self
    }

    fn push_value(&mut self, value: impl Bind<'a>) {
        match value.into_value() {
            Ok(value) => self.binds.push(value),
            Err(error) => self.failed = Some(error),
        }
    }

    /// The statement, or the bind that failed.
    pub(super) fn checked(self) -> StoreResult<Self> {
        match self.failed {
            Some(error) => Err(StoreError::Corrupt(format!("a value to store: {error}"))),
            None => Ok(self),
        }
    }

    /// The same statement owning its binds, to move to another thread.
    pub(super) fn into_owned(self) -> Statement<'static> {
        let binds = self.binds.into_iter().map(Value::into_owned).collect();
        Statement {
            sql: self.sql,
            binds,
            slow: self.slow,
            failed: self.failed,
        }
    }
}

impl Value<'_> {
    fn into_owned(self) -> Value<'static> {
        match self {
            Self::Text(text) => Value::Text(text.map(|t| Cow::Owned(t.into_owned()))),
            Self::Int(int) => Value::Int(int),
            Self::Time(time) => Value::Time(time),
            Self::Json(json) => Value::Json(json),
        }
    }
}

/// What can be bound to a placeholder.
pub trait Bind<'a> {
    fn into_value(self) -> Result<Value<'a>, serde_json::Error>;
}

macro_rules! bind_as {
    ($($type:ty => |$v:ident| $value:expr;)*) => {$(
        impl<'a> Bind<'a> for $type {
            fn into_value(self) -> Result<Value<'a>, serde_json::Error> {
                let $v = self;
                Ok($value)
            }
        }
    )*};
}

bind_as! {
    &'a str => |v| Value::Text(Some(Cow::Borrowed(v)));
    &'a String => |v| Value::Text(Some(Cow::Borrowed(v.as_str())));
    String => |v| Value::Text(Some(Cow::Owned(v)));
    Option<&'a str> => |v| Value::Text(v.map(Cow::Borrowed));
    &'a Option<String> => |v| Value::Text(v.as_deref().map(Cow::Borrowed));
    Option<String> => |v| Value::Text(v.map(Cow::Owned));
    i64 => |v| Value::Int(Some(v));
    Option<i64> => |v| Value::Int(v);
    DateTime<Utc> => |v| Value::Time(Some(v));
    Option<DateTime<Utc>> => |v| Value::Time(v);
}

/// A JSON document (`Json(&value)`), serialised as it is bound.
impl<'a, T: Serialize> Bind<'a> for Json<T> {
    fn into_value(self) -> Result<Value<'a>, serde_json::Error> {
        serde_json::value::to_raw_value(&self.0).map(Value::Json)
    }
}

/// One row of a result, from either engine.
pub enum Row<'r> {
    Postgres(&'r PgRow),
    Sqlite(&'r rusqlite::Row<'r>),
}

/// Where a column is: by name, or by position for tuples.
#[derive(Clone, Copy)]
pub enum At<'a> {
    Name(&'a str),
    Index(usize),
}

impl fmt::Display for At<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Name(name) => f.write_str(name),
            Self::Index(index) => write!(f, "#{index}"),
        }
    }
}

impl Row<'_> {
    /// The column named `name`.
    pub fn get<T: Column>(&self, name: &str) -> StoreResult<T> {
        T::read(self, At::Name(name))
    }

    /// The column at `index` (from 0).
    pub fn nth<T: Column>(&self, index: usize) -> StoreResult<T> {
        T::read(self, At::Index(index))
    }
}

/// A type a column decodes into, on both engines.
pub trait Column: Sized {
    fn read(row: &Row<'_>, at: At<'_>) -> StoreResult<Self>;
}

/// A row shape a statement's result decodes into.
pub trait FromRow: Sized + Send + 'static {
    fn from_row(row: &Row<'_>) -> StoreResult<Self>;
}

/// A struct whose fields are read from the columns of the same names.
macro_rules! row_struct {
    ($(#[$meta:meta])* $vis:vis struct $name:ident { $($field_vis:vis $field:ident: $type:ty,)* }) => {
        $(#[$meta])*
        $vis struct $name { $($field_vis $field: $type,)* }

        impl $crate::store::db::FromRow for $name {
            fn from_row(row: &$crate::store::db::Row<'_>) -> $crate::store::StoreResult<Self> {
                Ok(Self { $($field: row.get(stringify!($field))?,)* })
            }
        }
    };
}
pub(super) use row_struct;

impl<A: Column + Send + 'static> FromRow for (A,) {
    fn from_row(row: &Row<'_>) -> StoreResult<Self> {
        Ok((row.nth(0)?,))
    }
}

impl<A: Column + Send + 'static, B: Column + Send + 'static> FromRow for (A, B) {
    fn from_row(row: &Row<'_>) -> StoreResult<Self> {
        Ok((row.nth(0)?, row.nth(1)?))
    }
}

impl Db {
    /// Runs `statement`; the rows it changed.
    pub async fn execute(&self, statement: Statement<'_>) -> StoreResult<u64> {
        let statement = statement.checked()?;
        match self {
            Self::Postgres(pool) => super::postgres::execute(pool, &statement).await,
            Self::Sqlite(lite) => lite.execute(statement).await,
        }
    }

    /// Runs `statement`; every row it returned.
    pub async fn fetch_all<R: FromRow>(&self, statement: Statement<'_>) -> StoreResult<Vec<R>> {
        let statement = statement.checked()?;
        match self {
            Self::Postgres(pool) => super::postgres::fetch(pool, &statement).await,
            Self::Sqlite(lite) => lite.fetch(statement).await,
        }
    }

    /// Runs `statement`; its first row, if any.
    pub async fn fetch_optional<R: FromRow>(
        &self,
        statement: Statement<'_>,
    ) -> StoreResult<Option<R>> {
        Ok(self.fetch_all(statement).await?.into_iter().next())
    }

    /// Runs `statement`; its one row.
    pub async fn fetch_one<R: FromRow>(&self, statement: Statement<'_>) -> StoreResult<R> {
        self.fetch_optional(statement)
            .await?
            .ok_or(StoreError::Database(DbError::NoRow))
    }

    /// Starts a transaction, which holds its connection until committed or dropped (then
    /// rolled back).
    pub async fn begin(&self) -> StoreResult<Tx> {
        Ok(match self {
            Self::Postgres(pool) => Tx::Postgres(pool.begin().await?),
            Self::Sqlite(lite) => Tx::Sqlite(lite.begin().await?),
        })
    }
}

/// A transaction on either engine.
pub enum Tx {
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
    Sqlite(super::sqlite::LiteTx),
}

impl Tx {
    /// Runs `statement` in the transaction; the rows it changed.
    pub async fn execute(&mut self, statement: Statement<'_>) -> StoreResult<u64> {
        let statement = statement.checked()?;
        match self {
            Self::Postgres(tx) => super::postgres::execute(&mut **tx, &statement).await,
            Self::Sqlite(tx) => tx.execute(statement).await,
        }
    }

    /// Runs `statement` in the transaction; every row it returned.
    pub async fn fetch_all<R: FromRow>(&mut self, statement: Statement<'_>) -> StoreResult<Vec<R>> {
        let statement = statement.checked()?;
        match self {
            Self::Postgres(tx) => super::postgres::fetch(&mut **tx, &statement).await,
            Self::Sqlite(tx) => tx.fetch(statement).await,
        }
    }

    /// Runs `statement` in the transaction; its first row, if any.
    pub async fn fetch_optional<R: FromRow>(
        &mut self,
        statement: Statement<'_>,
    ) -> StoreResult<Option<R>> {
        Ok(self.fetch_all(statement).await?.into_iter().next())
    }

    /// Runs `statement` in the transaction; its one row.
    pub async fn fetch_one<R: FromRow>(&mut self, statement: Statement<'_>) -> StoreResult<R> {
        self.fetch_optional(statement)
            .await?
            .ok_or(StoreError::Database(DbError::NoRow))
    }

    pub async fn commit(self) -> StoreResult<()> {
        match self {
            Self::Postgres(tx) => Ok(tx.commit().await?),
            Self::Sqlite(tx) => tx.commit(),
        }
    }

    pub async fn rollback(self) -> StoreResult<()> {
        match self {
            Self::Postgres(tx) => Ok(tx.rollback().await?),
            Self::Sqlite(tx) => tx.rollback(),
        }
    }
}
