//! How each column type decodes on both engines: through sqlx on Postgres, from SQLite's own
//! values on SQLite (TEXT timestamps and JSON, INTEGER numbers).

use chrono::{DateTime, NaiveDateTime, Utc};
use rusqlite::types::ValueRef;
use serde::de::DeserializeOwned;
use sqlx::Row as _;
use sqlx::postgres::Postgres;
use sqlx::types::Json;

use super::db::{At, Column, Row};
use super::{StoreError, StoreResult};

/// A type SQLite's value decodes into; the error says why not.
pub trait FromLite: Sized {
    fn from_lite(value: ValueRef<'_>) -> Result<Self, String>;
}

impl<T> Column for T
where
    T: FromLite + for<'r> sqlx::Decode<'r, Postgres> + sqlx::Type<Postgres>,
{
    fn read(row: &Row<'_>, at: At<'_>) -> StoreResult<Self> {
        match row {
            Row::Postgres(row) => Ok(match at {
                At::Name(name) => row.try_get(name)?,
                At::Index(index) => row.try_get(index)?,
            }),
            Row::Sqlite(row) => {
                let value = match at {
                    At::Name(name) => row.get_ref(name)?,
                    At::Index(index) => row.get_ref(index)?,
                };
                T::from_lite(value)
                    .map_err(|why| StoreError::Corrupt(format!("column {at}: {why}")))
            }
        }
    }
}

impl<T: FromLite> FromLite for Option<T> {
    fn from_lite(value: ValueRef<'_>) -> Result<Self, String> {
        match value {
            ValueRef::Null => Ok(None),
            value => T::from_lite(value).map(Some),
        }
    }
}

impl FromLite for String {
    fn from_lite(value: ValueRef<'_>) -> Result<Self, String> {
        Ok(text(value)?.to_owned())
    }
}

impl FromLite for i64 {
    fn from_lite(value: ValueRef<'_>) -> Result<Self, String> {
        match value {
            ValueRef::Integer(int) => Ok(int),
            other => Err(format!("an integer expected, found {}", other.data_type())),
        }
    }
}

/// Timestamps are written as fixed-width RFC 3339 text (`sqlite.rs`); SQLite's own forms
/// (`CURRENT_TIMESTAMP`'s `YYYY-MM-DD HH:MM:SS`, with or without a fraction) and Unix seconds are
/// read too, as sqlx read them.
impl FromLite for DateTime<Utc> {
    fn from_lite(value: ValueRef<'_>) -> Result<Self, String> {
        if let ValueRef::Integer(seconds) = value {
            return DateTime::from_timestamp(seconds, 0).ok_or_else(|| format!("{seconds} s"));
        }
        let text = text(value)?;
        if let Ok(time) = DateTime::parse_from_rfc3339(text) {
            return Ok(time.to_utc());
        }
        ["%F %T%.f", "%F %R", "%FT%T%.f", "%FT%R"]
            .iter()
            .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
            .map(|naive| naive.and_utc())
            .ok_or_else(|| format!("not a timestamp: {text:?}"))
    }
}

impl<T: DeserializeOwned> FromLite for Json<T> {
    fn from_lite(value: ValueRef<'_>) -> Result<Self, String> {
        let bytes = match value {
            ValueRef::Text(bytes) | ValueRef::Blob(bytes) => bytes,
            other => return Err(format!("JSON text expected, found {}", other.data_type())),
        };
        serde_json::from_slice(bytes)
            .map(Json)
            .map_err(|e| e.to_string())
    }
}

fn text(value: ValueRef<'_>) -> Result<&str, String> {
    match value {
        ValueRef::Text(bytes) => std::str::from_utf8(bytes).map_err(|e| e.to_string()),
        other => Err(format!("text expected, found {}", other.data_type())),
    }
}
