//! The [`KeyStore`] part of the one SQL implementation: API keys by hash.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::db::sql;
use super::rows::{ApiKeyRow, api_key_columns, on_unique};
use super::sql::SqlStore;
use super::{ApiKey, KeyStore, StoreResult};

#[async_trait]
impl KeyStore for SqlStore {
    async fn insert_api_key(&self, key: &ApiKey) -> StoreResult<()> {
        self.db
            .execute(
                sql(
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
                .bind(key.created_at)
                .bind(key.expires_at)
                .bind(key.revoked_at)
                .bind(key.last_used_at),
            )
            .await
            .map_err(on_unique("API key exists"))?;
        Ok(())
    }

    async fn api_key_by_hash(&self, key_hash: &str) -> StoreResult<Option<ApiKey>> {
        let row = self
            .db
            .fetch_optional::<ApiKeyRow>(
                sql(concat!(
                    "SELECT ",
                    api_key_columns!(),
                    " FROM api_keys WHERE key_hash = $1"
                ))
                .bind(key_hash),
            )
            .await?;
        Ok(row.map(ApiKey::from))
    }

    async fn list_api_keys(&self, user_id: Option<&str>) -> StoreResult<Vec<ApiKey>> {
        let rows = self
            .db
            .fetch_all::<ApiKeyRow>(
                sql(concat!(
                    "SELECT ",
                    api_key_columns!(),
                    " FROM api_keys WHERE ($1 IS NULL OR user_id = $1) ORDER BY created_at DESC, id"
                ))
                .bind(user_id)
                .slow(),
            )
            .await?;
        Ok(rows.into_iter().map(ApiKey::from).collect())
    }

    async fn revoke_api_key(&self, id: &str, now: DateTime<Utc>) -> StoreResult<bool> {
        let result = self
            .db
            .execute(
                sql("UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2")
                    .bind(now)
                    .bind(id),
            )
            .await?;
        Ok(result == 1)
    }

    async fn touch_api_key(&self, id: &str, now: DateTime<Utc>) -> StoreResult<()> {
        self.db
            .execute(
                sql("UPDATE api_keys SET last_used_at = $1 WHERE id = $2")
                    .bind(now)
                    .bind(id),
            )
            .await?;
        Ok(())
    }
}
