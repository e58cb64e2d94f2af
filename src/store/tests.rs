use std::borrow::Cow;

use super::*;

/// A driver error carrying only a SQLSTATE, as Postgres reports one.
#[derive(Debug, thiserror::Error)]
#[error("sqlstate {0}")]
struct Sqlstate(&'static str);

impl sqlx::error::DatabaseError for Sqlstate {
    fn message(&self) -> &str {
        self.0
    }
    fn code(&self) -> Option<Cow<'_, str>> {
        Some(Cow::Borrowed(self.0))
    }
    fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        self
    }
    fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
        self
    }
    fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        self
    }
    fn kind(&self) -> sqlx::error::ErrorKind {
        sqlx::error::ErrorKind::Other
    }
}

fn stored(error: sqlx::Error) -> StoreError {
    error.into()
}

fn sqlstate(code: &'static str) -> StoreError {
    stored(sqlx::Error::Database(Box::new(Sqlstate(code))))
}

#[test]
fn an_unreachable_database_is_unavailable() {
    let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
    assert!(stored(sqlx::Error::Io(refused)).is_unavailable());
    assert!(stored(sqlx::Error::PoolTimedOut).is_unavailable());
    assert!(stored(sqlx::Error::PoolClosed).is_unavailable());
    assert!(stored(sqlx::Error::WorkerCrashed).is_unavailable());
}

#[test]
fn postgres_shutting_down_starting_or_disconnected_is_unavailable() {
    for code in [
        "57P01", "57P02", "57P03", "08006", "08001", "08003", "53300",
    ] {
        assert!(sqlstate(code).is_unavailable(), "{code}");
    }
}

#[test]
fn a_wrong_statement_or_bad_data_is_a_failure_not_an_outage() {
    // 42P01 undefined table, 23502 not-null violation, 22P02 invalid text representation.
    for code in ["42P01", "23502", "22P02"] {
        assert!(!sqlstate(code).is_unavailable(), "{code}");
    }
    assert!(!stored(sqlx::Error::RowNotFound).is_unavailable());
    assert!(!stored(sqlx::Error::ColumnNotFound("x".into())).is_unavailable());
    assert!(!StoreError::Conflict("client").is_unavailable());
    assert!(!StoreError::Corrupt("flow f".into()).is_unavailable());
}
