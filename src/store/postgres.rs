//! Postgres, for production and for several instances sharing one database.

use std::time::Duration;

use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgArgumentBuffer, PgPoolOptions, PgQueryResult, PgTypeInfo, Postgres};
use sqlx::{Encode, Type};

use super::StoreResult;
use super::connections::Connections;
use super::engine::{Engine, Ts};
use super::sql::SqlStore;

/// [`Store`](super::Store) on a Postgres pool.
pub type PostgresStore = SqlStore<Postgres>;

impl PostgresStore {
    /// Connects a pool to `url` (`postgres://…`).
    pub async fn connect(url: &str) -> StoreResult<Self> {
        // A database that is down should fail readiness and requests within seconds, not after
        // the 30 s default.
        let pool = PgPoolOptions::new()
            .acquire_timeout(Duration::from_secs(5))
            .connect(url)
            .await?;
        Ok(Self {
            db: Connections::Pool(pool),
        })
    }
}

impl Engine for Postgres {
    // sqlx holds an advisory lock while migrating, so instances starting together are safe.
    const MIGRATOR: Migrator = sqlx::migrate!("migrations/postgres");

    fn rows_affected(result: &PgQueryResult) -> u64 {
        result.rows_affected()
    }
}

/// Timestamps are `TIMESTAMPTZ`, bound as sqlx binds a `DateTime<Utc>` (to the microsecond).
impl Type<Postgres> for Ts {
    fn type_info() -> PgTypeInfo {
        <chrono::DateTime<chrono::Utc> as Type<Postgres>>::type_info()
    }
}

impl Encode<'_, Postgres> for Ts {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        <chrono::DateTime<chrono::Utc> as Encode<Postgres>>::encode_by_ref(&self.0, buf)
    }
}
