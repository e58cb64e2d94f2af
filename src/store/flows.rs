//! The [`FlowStore`] part of the one SQL implementation: authorization flows in progress.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::types::Json;

use super::db::sql;
use super::rows::{FlowRow, on_unique};
use super::sql::SqlStore;
use super::{Flow, FlowStore, StoreResult};

#[async_trait]
impl FlowStore for SqlStore {
    async fn insert_flow(&self, flow: &Flow) -> StoreResult<()> {
        self.db
            .execute(
                sql("INSERT INTO flows (id, data, expires_at) VALUES ($1, $2, $3)")
                    .bind(&flow.id)
                    .bind(Json(&flow.data))
                    .bind(flow.expires_at),
            )
            .await
            .map_err(on_unique("flow id exists"))?;
        Ok(())
    }

    async fn get_flow(&self, id: &str, now: DateTime<Utc>) -> StoreResult<Option<Flow>> {
        let row = self
            .db
            .fetch_optional::<FlowRow>(
                sql("SELECT id, data, expires_at FROM flows WHERE id = $1 AND expires_at > $2")
                    .bind(id)
                    .bind(now),
            )
            .await?;
        row.map(Flow::try_from).transpose()
    }

    async fn update_flow(&self, flow: &Flow, now: DateTime<Utc>) -> StoreResult<bool> {
        let result = self
            .db
            .execute(
                sql("UPDATE flows SET data = $1 WHERE id = $2 AND expires_at > $3")
                    .bind(Json(&flow.data))
                    .bind(&flow.id)
                    .bind(now),
            )
            .await?;
        Ok(result == 1)
    }

    async fn rekey_flow(&self, old_id: &str, flow: &Flow, now: DateTime<Utc>) -> StoreResult<bool> {
        let result = self.db.execute(sql(
            "UPDATE flows SET id = $1, data = $2, expires_at = $3 WHERE id = $4 AND expires_at > $5",
        )
        .bind(&flow.id)
        .bind(Json(&flow.data))
        .bind(flow.expires_at)
        .bind(old_id)
        .bind(now))
        .await
        .map_err(on_unique("flow id exists"))?;
        Ok(result == 1)
    }

    async fn take_flow(&self, id: &str, now: DateTime<Utc>) -> StoreResult<Option<Flow>> {
        let row = self
            .db
            .fetch_optional::<FlowRow>(
                sql("DELETE FROM flows WHERE id = $1 RETURNING id, data, expires_at").bind(id),
            )
            .await?;
        row.filter(|row| row.expires_at > now)
            .map(Flow::try_from)
            .transpose()
    }

    async fn take_upstream_flow(
        &self,
        id: &str,
        browser_hash: &str,
        provider: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<Flow>> {
        // `->>` reads a member of the JSON document as text in both engines (a JSON null, or a
        // missing member, as NULL).
        let row = self
            .db
            .fetch_optional::<FlowRow>(
                sql("DELETE FROM flows
                     WHERE id = $1 AND expires_at > $2 AND data ->> 'browser_hash' = $3
                         AND data ->> 'provider' = $4 AND data ->> 'upstream' IS NOT NULL
                     RETURNING id, data, expires_at")
                .bind(id)
                .bind(now)
                .bind(browser_hash)
                .bind(provider),
            )
            .await?;
        row.map(Flow::try_from).transpose()
    }
}
