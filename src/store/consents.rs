//! The [`ConsentStore`] part of the one SQL implementation: remembered approvals.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::db::{row_struct, sql};
use super::sql::SqlStore;
use super::{Consent, ConsentStore, StoreResult};

row_struct! {
    pub(super) struct ConsentRow {
        browser_hash: String,
        client_id: String,
        redirect_uri: String,
        resource: String,
        user_id: String,
        scope: String,
        created_at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    }
}

impl From<ConsentRow> for Consent {
    fn from(row: ConsentRow) -> Self {
        Self {
            browser_hash: row.browser_hash,
            client_id: row.client_id,
            redirect_uri: row.redirect_uri,
            resource: row.resource,
            user_id: row.user_id,
            scope: row.scope,
            created_at: row.created_at,
            expires_at: row.expires_at,
        }
    }
}

#[async_trait]
impl ConsentStore for SqlStore {
    async fn remember_consent(&self, consent: &Consent) -> StoreResult<()> {
        self.db.execute(sql(
            "INSERT INTO consents (browser_hash, client_id, redirect_uri, resource, user_id, scope,
                 created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (browser_hash, client_id, redirect_uri, resource) DO UPDATE SET
                 user_id = excluded.user_id, scope = excluded.scope,
                 created_at = excluded.created_at, expires_at = excluded.expires_at",
        )
        .bind(consent.browser_hash.as_str())
        .bind(consent.client_id.as_str())
        .bind(consent.redirect_uri.as_str())
        .bind(consent.resource.as_str())
        .bind(consent.user_id.as_str())
        .bind(consent.scope.as_str())
        .bind(consent.created_at)
        .bind(consent.expires_at))
        .await?;
        Ok(())
    }

    async fn remembered_consent(
        &self,
        browser_hash: &str,
        client_id: &str,
        redirect_uri: &str,
        resource: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<Consent>> {
        let row = self.db.fetch_optional::<ConsentRow>(sql(
            "SELECT browser_hash, client_id, redirect_uri, resource, user_id, scope, created_at,
                 expires_at
             FROM consents
             WHERE browser_hash = $1 AND client_id = $2 AND redirect_uri = $3 AND resource = $4
               AND expires_at > $5",
        )
        .bind(browser_hash)
        .bind(client_id)
        .bind(redirect_uri)
        .bind(resource)
        .bind(now))
        .await?;
        Ok(row.map(Consent::from))
    }

    async fn forget_consent(
        &self,
        browser_hash: &str,
        client_id: &str,
        redirect_uri: &str,
        resource: &str,
    ) -> StoreResult<()> {
        self.db
            .execute(
                sql("DELETE FROM consents
                     WHERE browser_hash = $1 AND client_id = $2 AND redirect_uri = $3 AND resource = $4")
                .bind(browser_hash)
                .bind(client_id)
                .bind(redirect_uri)
                .bind(resource),
            )
            .await?;
        Ok(())
    }
}
