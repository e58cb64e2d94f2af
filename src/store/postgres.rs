//! Postgres, for production and for several instances sharing one database: statements run
//! through sqlx's pool.

use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgArguments, PgPoolOptions, Postgres};
use sqlx::query::Query;
use sqlx::types::Json;
use sqlx::{AssertSqlSafe, Executor, PgPool};

use super::StoreResult;
use super::db::{Db, FromRow, Row, Statement, Value};
use super::sql::SqlStore;
use crate::telemetry::metrics::PoolStats;

/// This engine's migrations, `migrations/postgres`. sqlx holds an advisory lock while
/// migrating, so instances starting together are safe.
static MIGRATOR: Migrator = sqlx::migrate!("migrations/postgres");

impl SqlStore {
    /// Connects a pool to `url` (`postgres://…`).
    pub async fn postgres(url: &str) -> StoreResult<Self> {
        // A database that is down should fail readiness and requests within seconds, not after
        // the 30 s default.
        let pool = PgPoolOptions::new()
            .acquire_timeout(Duration::from_secs(5))
            .connect(url)
            .await?;
        Ok(Self {
            db: Db::Postgres(pool),
        })
    }
}

pub(super) async fn migrate(pool: &PgPool) -> StoreResult<()> {
    Ok(MIGRATOR.run(pool).await?)
}

pub(super) fn stats(pool: &PgPool) -> PoolStats {
    PoolStats {
        open: pool.size(),
        idle: u32::try_from(pool.num_idle()).unwrap_or(u32::MAX),
        max: pool.options().get_max_connections(),
    }
}

/// The statement as sqlx runs it. Timestamps bind as `TIMESTAMPTZ` (to the microsecond) and
/// JSON documents as `JSONB`.
fn query<'q>(statement: &'q Statement<'_>) -> Query<'q, Postgres, PgArguments> {
    let mut query = sqlx::query(AssertSqlSafe(statement.sql.clone()));
    for value in &statement.binds {
        query = match value {
            Value::Text(text) => query.bind(text.as_deref()),
            Value::Int(int) => query.bind(*int),
            Value::Time(time) => query.bind(*time),
            Value::Json(json) => query.bind(Json(&**json)),
        };
    }
    query
}

pub(super) async fn execute<'e>(
    executor: impl Executor<'e, Database = Postgres>,
    statement: &Statement<'_>,
) -> StoreResult<u64> {
    Ok(query(statement).execute(executor).await?.rows_affected())
}

pub(super) async fn fetch<'e, R: FromRow>(
    executor: impl Executor<'e, Database = Postgres>,
    statement: &Statement<'_>,
) -> StoreResult<Vec<R>> {
    let rows = query(statement).fetch_all(executor).await?;
    rows.iter()
        .map(|row| R::from_row(&Row::Postgres(row)))
        .collect()
}
