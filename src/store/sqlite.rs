//! The embedded default: one SQLite file in WAL mode, or `sqlite::memory:` for throwaway runs.

use std::str::FromStr;
use std::time::Duration;

use chrono::SecondsFormat;
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    Sqlite, SqliteArgumentsBuffer, SqliteConnectOptions, SqliteJournalMode, SqliteQueryResult,
    SqliteSynchronous, SqliteTypeInfo,
};
use sqlx::{ConnectOptions, Encode, Type};
use tokio::sync::Mutex;

use super::StoreResult;
use super::connections::Connections;
use super::engine::{Engine, Ts};
use super::sql::SqlStore;

/// [`Store`](super::Store) on one SQLite connection.
pub type SqliteStore = SqlStore<Sqlite>;

impl SqliteStore {
    /// Opens (creating when missing) the database at `url`, e.g. `sqlite://portcullis.db`.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // With WAL, NORMAL syncs at checkpoints rather than at every commit: a crash of
            // Portcullis loses nothing; a power cut may lose the last commits (SQLite's WAL docs).
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        // One connection, taken in turn. SQLite serialises writers anyway, and one connection
        // is what makes it cheap here: its page cache never goes stale (no other connection of
        // this process writes, so pages are not read back from the WAL after every commit
        // elsewhere), and every statement goes to one worker thread rather than to one of several
        // competing for the cores; `Connections` says what taking it costs. The bench measured a
        // sign-in at 0.6x the server CPU of a pool of eight. Reads wait behind writes, which take
        // microseconds; Postgres is the database for heavy concurrent load. An in-memory database
        // lives as long as this connection, which is what a throwaway run wants.
        let connection = options.connect().await?;
        Ok(Self {
            db: Connections::One(Mutex::new(connection)),
        })
    }
}

impl Engine for Sqlite {
    const MIGRATOR: Migrator = sqlx::migrate!("migrations/sqlite");

    fn rows_affected(result: &SqliteQueryResult) -> u64 {
        result.rows_affected()
    }
}

/// Timestamps are TEXT (see the migration), bound as TEXT.
impl Type<Sqlite> for Ts {
    fn type_info() -> SqliteTypeInfo {
        <String as Type<Sqlite>>::type_info()
    }
}

/// Every timestamp is written, and compared, in one fixed-width form (microseconds, `Z`), so
/// that comparing the TEXT columns compares the times. sqlx's own encoding of a `DateTime` is
/// not fixed-width (it drops a zero fraction), hence this one.
impl Encode<'_, Sqlite> for Ts {
    fn encode_by_ref(&self, buf: &mut SqliteArgumentsBuffer) -> Result<IsNull, BoxDynError> {
        let text = self.0.to_rfc3339_opts(SecondsFormat::Micros, true);
        <String as Encode<Sqlite>>::encode(text, buf)
    }
}

/// The stored form of a timestamp, which the `Store` methods do not show.
#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone, Utc};

    use super::*;
    use crate::store::Store;

    /// The stored form is what earlier versions wrote and what existing databases hold: it must
    /// not change, or comparing new binds with old rows would stop comparing times.
    #[tokio::test]
    async fn timestamps_are_stored_as_fixed_width_utc_text() {
        let store = SqliteStore::connect("sqlite::memory:").await.unwrap();
        store.migrate().await.unwrap();
        let whole_second = Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap();
        let with_nanos = whole_second + Duration::nanoseconds(1_234_567);
        store
            .revoke_access_token("jti-1", with_nanos, whole_second)
            .await
            .unwrap();

        let stored: (String, String) =
            sqlx::query_as("SELECT expires_at, revoked_at FROM revoked_access_tokens")
                .fetch_one(&mut *store.db.take().await.unwrap())
                .await
                .unwrap();
        assert_eq!(
            stored,
            (
                "2026-11-22T10:00:00.001234Z".to_owned(),
                "2026-11-22T10:00:00.000000Z".to_owned()
            )
        );
    }
}
