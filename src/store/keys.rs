//! The [`KeyStore`] part of the one SQL implementation: API keys by hash.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{Executor, FromRow};

use super::engine::{Bind, Engine, Ts};
use super::rows::{ApiKeyRow, api_key_columns, on_unique};
use super::sql::SqlStore;
use super::{ApiKey, KeyStore, StoreResult};

#[async_trait]
impl<DB: Engine> KeyStore for SqlStore<DB>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'a> &'a str: Bind<DB>,
    Option<String>: Bind<DB>,
    Ts: Bind<DB>,
    Option<Ts>: Bind<DB>,
    for<'r> ApiKeyRow: FromRow<'r, DB::Row>,
{
    async fn insert_api_key(&self, key: &ApiKey) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO api_keys (id, user_id, name, key_hash, prefix, scopes, created_at,
                 expires_at, revoked_at, last_used_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(key.id.as_str())
        .bind(key.user_id.as_str())
        .bind(key.name.as_str())
        .bind(key.key_hash.as_str())
        .bind(key.prefix.as_str())
        .bind(key.scopes.as_str())
        .bind(Ts(key.created_at))
        .bind(key.expires_at.map(Ts))
        .bind(key.revoked_at.map(Ts))
        .bind(key.last_used_at.map(Ts))
        .execute(&mut *self.db.take().await?)
        .await
        .map_err(on_unique("API key exists"))?;
        Ok(())
    }

    async fn api_key_by_hash(&self, key_hash: &str) -> StoreResult<Option<ApiKey>> {
        let row = sqlx::query_as::<_, ApiKeyRow>(concat!(
            "SELECT ",
            api_key_columns!(),
            " FROM api_keys WHERE key_hash = $1"
        ))
        .bind(key_hash)
        .fetch_optional(&mut *self.db.take().await?)
        .await?;
        Ok(row.map(ApiKey::from))
    }

    async fn list_api_keys(&self, user_id: Option<&str>) -> StoreResult<Vec<ApiKey>> {
        let rows = sqlx::query_as::<_, ApiKeyRow>(concat!(
            "SELECT ",
            api_key_columns!(),
            " FROM api_keys WHERE ($1 IS NULL OR user_id = $1) ORDER BY created_at DESC, id"
        ))
        .bind(user_id.map(str::to_owned))
        .fetch_all(&mut *self.db.take().await?)
        .await?;
        Ok(rows.into_iter().map(ApiKey::from).collect())
    }

    async fn revoke_api_key(&self, id: &str, now: DateTime<Utc>) -> StoreResult<bool> {
        let result =
            sqlx::query("UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2")
                .bind(Ts(now))
                .bind(id)
                .execute(&mut *self.db.take().await?)
                .await?;
        Ok(DB::rows_affected(&result) == 1)
    }

    async fn touch_api_key(&self, id: &str, now: DateTime<Utc>) -> StoreResult<()> {
        sqlx::query("UPDATE api_keys SET last_used_at = $1 WHERE id = $2")
            .bind(Ts(now))
            .bind(id)
            .execute(&mut *self.db.take().await?)
            .await?;
        Ok(())
    }
}
