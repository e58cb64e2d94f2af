//! The one [`Store`] implementation both engines run: every statement is written once.
//!
//! The SQL here is what SQLite and Postgres both accept: `$n` placeholders (both read `$1` as the
//! first bind), `RETURNING`, `ON CONFLICT`, `->>`. What truly differs between the engines is in
//! each engine's own file: connecting, running a statement, the migrations, and how a timestamp
//! or a JSON document is bound and read (`db.rs`, `columns.rs`).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::types::Json;

use super::db::{Db, sql};
use super::inserts;
use super::rows::{
    ClientRow, GrantRow, RefreshTokenRow, SigningKeyRow, after_failed_redemption, client_columns,
    grant_columns, on_unique,
};
use super::{
    AuthorizationCode, Client, CodeExchange, CodeRedemption, Grant, RefreshToken, Retention,
    SigningKeyRecord, Store, StoreResult, UpstreamTokens,
};
use crate::telemetry::metrics::PoolStats;

/// [`Store`] on either engine: [`SqlStore::sqlite`] or [`SqlStore::postgres`].
pub struct SqlStore {
    pub(super) db: Db,
}

#[async_trait]
impl Store for SqlStore {
    async fn migrate(&self) -> StoreResult<()> {
        match &self.db {
            Db::Postgres(pool) => super::postgres::migrate(pool).await,
            Db::Sqlite(lite) => lite.migrate().await,
        }
    }

    async fn ping(&self) -> StoreResult<()> {
        // A BIGINT on both engines (a bare 1 is an INT4 on Postgres).
        self.db
            .fetch_all::<(i64,)>(sql("SELECT CAST(1 AS BIGINT)"))
            .await?;
        Ok(())
    }

    fn pool_stats(&self) -> PoolStats {
        match &self.db {
            Db::Postgres(pool) => super::postgres::stats(pool),
            Db::Sqlite(lite) => lite.stats(),
        }
    }

    async fn insert_client(&self, client: &Client) -> StoreResult<()> {
        self.db.execute(sql(
            "INSERT INTO clients (client_id, secret_hash, token_endpoint_auth_method, client_name,
                 redirect_uris, grant_types, response_types, scope, metadata, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&client.client_id)
        .bind(&client.secret_hash)
        .bind(&client.token_endpoint_auth_method)
        .bind(&client.client_name)
        .bind(Json(&client.redirect_uris))
        .bind(Json(&client.grant_types))
        .bind(Json(&client.response_types))
        .bind(&client.scope)
        .bind(Json(&client.metadata))
        .bind(client.created_at))
        .await
        .map_err(on_unique("client_id exists"))?;
        Ok(())
    }

    async fn get_client(&self, client_id: &str) -> StoreResult<Option<Client>> {
        let row = self
            .db
            .fetch_optional::<ClientRow>(
                sql(concat!(
                    "SELECT ",
                    client_columns!(),
                    " FROM clients WHERE client_id = $1"
                ))
                .bind(client_id),
            )
            .await?;
        Ok(row.map(Client::from))
    }

    async fn insert_grant(&self, grant: &Grant) -> StoreResult<()> {
        self.db
            .execute(inserts::grant(grant))
            .await
            .map_err(on_unique("grant id exists"))?;
        Ok(())
    }

    async fn insert_grant_with_code(
        &self,
        grant: &Grant,
        code: &AuthorizationCode,
    ) -> StoreResult<()> {
        let mut tx = self.db.begin().await?;
        tx.execute(inserts::grant(grant))
            .await
            .map_err(on_unique("grant id exists"))?;
        tx.execute(inserts::code(code))
            .await
            .map_err(on_unique("code exists"))?;
        tx.commit().await?;
        Ok(())
    }

    async fn get_grant(&self, id: &str) -> StoreResult<Option<Grant>> {
        let row = self
            .db
            .fetch_optional::<GrantRow>(
                sql(concat!(
                    "SELECT ",
                    grant_columns!(),
                    " FROM grants WHERE id = $1"
                ))
                .bind(id),
            )
            .await?;
        Ok(row.map(Grant::from))
    }

    async fn update_grant_upstream(&self, id: &str, upstream: &UpstreamTokens) -> StoreResult<()> {
        self.db
            .execute(inserts::grant_upstream(id, None, upstream))
            .await?;
        Ok(())
    }

    async fn replace_grant_upstream(
        &self,
        id: &str,
        replacing: &str,
        upstream: &UpstreamTokens,
    ) -> StoreResult<bool> {
        let result = self
            .db
            .execute(inserts::grant_upstream(id, Some(replacing), upstream))
            .await?;
        Ok(result == 1)
    }

    async fn revoke_grant(&self, id: &str, now: DateTime<Utc>) -> StoreResult<()> {
        let mut tx = self.db.begin().await?;
        tx.execute(
            sql("UPDATE grants SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2")
                .bind(now)
                .bind(id),
        )
        .await?;
        tx.execute(sql("DELETE FROM refresh_tokens WHERE grant_id = $1").bind(id))
            .await?;
        // Spent codes stay, so that replaying one is still recognised as a replay.
        tx.execute(
            sql("DELETE FROM authorization_codes WHERE grant_id = $1 AND redeemed_at IS NULL")
                .bind(id),
        )
        .await?;
        // The approval that would skip the consent page for this person, client and redirect
        // URI goes with the grant (a grant from before redirect URIs were kept ends them all).
        tx.execute(
            sql(
                "DELETE FROM consents WHERE EXISTS (SELECT 1 FROM grants g WHERE g.id = $1
                 AND g.user_id = consents.user_id AND g.client_id = consents.client_id
                 AND (g.redirect_uri IS NULL OR g.redirect_uri = consents.redirect_uri))",
            )
            .bind(id),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn grants_revoked_since(
        &self,
        since: DateTime<Utc>,
    ) -> StoreResult<Vec<(String, DateTime<Utc>)>> {
        let rows = self.db.fetch_all::<(String, DateTime<Utc>)>(sql(
            "SELECT id, revoked_at FROM grants WHERE revoked_at >= $1 ORDER BY revoked_at, id",
        )
        .bind(since)
        // At start-up `since` reaches back a token's lifetime, which may span many revocations.
        .slow())
        .await?;
        Ok(rows)
    }

    async fn insert_code(&self, code: &AuthorizationCode) -> StoreResult<()> {
        self.db
            .execute(inserts::code(code))
            .await
            .map_err(on_unique("code exists"))?;
        Ok(())
    }

    async fn get_code(&self, code_hash: &str) -> StoreResult<Option<AuthorizationCode>> {
        let row = self.db.fetch_optional::<AuthorizationCode>(sql(
            "SELECT code_hash, grant_id, client_id, redirect_uri, code_challenge, expires_at,
                 redeemed_at
             FROM authorization_codes WHERE code_hash = $1",
        )
        .bind(code_hash))
        .await?;
        Ok(row)
    }

    async fn get_code_exchange(&self, code_hash: &str) -> StoreResult<Option<CodeExchange>> {
        // A code's grant and the grant's person always exist: deleting either deletes the code.
        let row = self
            .db
            .fetch_optional::<CodeExchange>(
                sql(
                    "SELECT c.code_hash, c.grant_id, c.client_id AS code_client_id,
                         c.redirect_uri AS code_redirect_uri, c.code_challenge, c.expires_at,
                         c.redeemed_at, g.id, g.user_id, g.client_id, g.provider, g.scope, g.resource,
                         g.upstream_access_token_enc, g.upstream_refresh_token_enc,
                         g.upstream_id_token_enc, g.upstream_expires_at, g.created_at, g.revoked_at,
                         g.redirect_uri, u.email AS user_email
                     FROM authorization_codes c
                     JOIN grants g ON g.id = c.grant_id
                     JOIN users u ON u.id = g.user_id
                     WHERE c.code_hash = $1",
                )
                .bind(code_hash),
            )
            .await?;
        Ok(row)
    }

    async fn redeem_code(
        &self,
        code_hash: &str,
        now: DateTime<Utc>,
        refresh: Option<&RefreshToken>,
    ) -> StoreResult<CodeRedemption> {
        let mut tx = self.db.begin().await?;
        let redeemed = tx
            .fetch_optional::<AuthorizationCode>(
                sql("UPDATE authorization_codes SET redeemed_at = $1
                     WHERE code_hash = $2 AND redeemed_at IS NULL AND expires_at > $1
                     RETURNING code_hash, grant_id, client_id, redirect_uri, code_challenge, expires_at,
                         redeemed_at")
                .bind(now)
                .bind(code_hash),
            )
            .await?;
        let Some(row) = redeemed else {
            // Given back before reading again: SQLite has one connection.
            tx.rollback().await?;
            return Ok(after_failed_redemption(self.get_code(code_hash).await?));
        };
        if let Some(token) = refresh {
            tx.execute(inserts::refresh_token(token))
                .await
                .map_err(on_unique("refresh token exists"))?;
        }
        tx.commit().await?;
        Ok(CodeRedemption::Redeemed(row))
    }

    async fn insert_refresh_token(&self, token: &RefreshToken) -> StoreResult<()> {
        self.db
            .execute(inserts::refresh_token(token))
            .await
            .map_err(on_unique("refresh token exists"))?;
        Ok(())
    }

    async fn get_refresh_token(&self, token_hash: &str) -> StoreResult<Option<RefreshToken>> {
        let row = self
            .db
            .fetch_optional::<RefreshTokenRow>(
                sql(
                    "SELECT token_hash, grant_id, client_id, created_at, expires_at, rotated_at,
                         successor_enc
                     FROM refresh_tokens WHERE token_hash = $1",
                )
                .bind(token_hash),
            )
            .await?;
        Ok(row.map(RefreshToken::from))
    }

    async fn rotate_refresh_token(
        &self,
        token_hash: &str,
        successor_enc: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let result = self
            .db
            .execute(
                sql(
                    "UPDATE refresh_tokens SET rotated_at = $1, successor_enc = $2
                     WHERE token_hash = $3 AND rotated_at IS NULL",
                )
                .bind(now)
                .bind(successor_enc)
                .bind(token_hash),
            )
            .await?;
        Ok(result == 1)
    }

    async fn delete_refresh_token(&self, token_hash: &str) -> StoreResult<()> {
        self.db
            .execute(sql("DELETE FROM refresh_tokens WHERE token_hash = $1").bind(token_hash))
            .await?;
        Ok(())
    }

    async fn request_step_up(
        &self,
        grant_id: &str,
        scope: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        self.db
            .execute(
                sql("INSERT INTO step_ups (grant_id, scope, requested_at)
                     SELECT id, $2, $3 FROM grants WHERE id = $1
                     ON CONFLICT (grant_id) DO UPDATE
                         SET scope = excluded.scope, requested_at = excluded.requested_at")
                .bind(grant_id)
                .bind(scope)
                .bind(now),
            )
            .await?;
        Ok(())
    }

    async fn take_step_up(
        &self,
        grant_id: &str,
        since: DateTime<Utc>,
    ) -> StoreResult<Option<String>> {
        // Every refresh asks; almost none has a request. A read answers those without taking
        // the database's write lock, and only a pending request is deleted (once, whoever asks
        // at the same time).
        let pending: Option<(String, DateTime<Utc>)> = self
            .db
            .fetch_optional(
                sql("SELECT scope, requested_at FROM step_ups WHERE grant_id = $1").bind(grant_id),
            )
            .await?;
        if pending.is_none() {
            return Ok(None);
        }
        let taken: Option<(String, DateTime<Utc>)> = self
            .db
            .fetch_optional(
                sql("DELETE FROM step_ups WHERE grant_id = $1 RETURNING scope, requested_at")
                    .bind(grant_id),
            )
            .await?;
        Ok(taken.filter(|(_, at)| *at >= since).map(|(scope, _)| scope))
    }

    async fn revoke_access_token(
        &self,
        jti: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        // Revoking twice keeps the first time, as for grants.
        self.db.execute(sql(
            "INSERT INTO revoked_access_tokens (jti, expires_at, revoked_at) VALUES ($1, $2, $3)
             ON CONFLICT (jti) DO NOTHING",
        )
        .bind(jti)
        .bind(expires_at)
        .bind(now))
        .await?;
        Ok(())
    }

    async fn access_tokens_revoked_since(
        &self,
        since: DateTime<Utc>,
    ) -> StoreResult<Vec<(String, DateTime<Utc>)>> {
        let rows = self
            .db
            .fetch_all::<(String, DateTime<Utc>)>(
                sql(
                    "SELECT jti, revoked_at FROM revoked_access_tokens WHERE revoked_at >= $1
                     ORDER BY revoked_at, jti",
                )
                .bind(since)
                .slow(),
            )
            .await?;
        Ok(rows)
    }

    async fn insert_signing_key(&self, key: &SigningKeyRecord) -> StoreResult<()> {
        self.db
            .execute(
                sql(
                    "INSERT INTO signing_keys (kid, alg, private_key_enc, public_jwk, created_at)
                     VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (kid) DO NOTHING",
                )
                .bind(&key.kid)
                .bind(&key.alg)
                .bind(&key.private_key_enc)
                .bind(&key.public_jwk)
                .bind(key.created_at),
            )
            .await?;
        Ok(())
    }

    async fn signing_keys(&self) -> StoreResult<Vec<SigningKeyRecord>> {
        let rows = self
            .db
            .fetch_all::<SigningKeyRow>(sql(
                "SELECT kid, alg, private_key_enc, public_jwk, created_at
                 FROM signing_keys ORDER BY created_at DESC, kid DESC",
            ))
            .await?;
        Ok(rows.into_iter().map(SigningKeyRecord::from).collect())
    }

    async fn purge_expired(&self, now: DateTime<Utc>, keep: &Retention) -> StoreResult<u64> {
        let mut tx = self.db.begin().await?;
        let mut deleted = 0;
        // Each statement may touch many rows: on SQLite they run off the async workers.
        for (text, cutoff) in [
            ("DELETE FROM flows WHERE expires_at <= $1", now),
            (
                "DELETE FROM authorization_codes WHERE expires_at <= $1 AND redeemed_at IS NULL",
                now,
            ),
            (
                "DELETE FROM authorization_codes WHERE redeemed_at <= $1",
                now - keep.redeemed_codes,
            ),
            ("DELETE FROM refresh_tokens WHERE expires_at <= $1", now),
            (
                "UPDATE refresh_tokens SET successor_enc = NULL
                 WHERE successor_enc IS NOT NULL AND rotated_at <= $1",
                now - keep.refresh_grace,
            ),
            (
                "DELETE FROM revoked_access_tokens WHERE expires_at <= $1",
                now,
            ),
            (
                "DELETE FROM step_ups WHERE requested_at <= $1",
                now - keep.step_up,
            ),
            ("DELETE FROM consents WHERE expires_at <= $1", now),
        ] {
            deleted += tx.execute(sql(text).bind(cutoff).slow()).await?;
        }
        if let Some(dead) = keep.dead_grants {
            // Revoked, or with nothing left to refresh with and nothing to redeem: no token
            // issued from it is still good. Its codes, refresh tokens and step-ups go with it.
            deleted += tx.execute(sql(
                "DELETE FROM grants
                 WHERE (revoked_at IS NOT NULL AND revoked_at <= $1)
                    OR (revoked_at IS NULL AND created_at <= $1
                        AND NOT EXISTS (SELECT 1 FROM refresh_tokens r WHERE r.grant_id = grants.id)
                        AND NOT EXISTS (SELECT 1 FROM authorization_codes c WHERE c.grant_id = grants.id))",
            )
            .bind(now - dead)
            .slow())
            .await?;
        }
        if let Some(unused) = keep.unused_clients {
            deleted += tx
                .execute(
                    sql("DELETE FROM clients WHERE created_at <= $1
                         AND NOT EXISTS (SELECT 1 FROM grants g WHERE g.client_id = clients.client_id)")
                    .bind(now - unused)
                    .slow(),
                )
                .await?;
        }
        if let Some(audit) = keep.audit {
            deleted += tx
                .execute(
                    sql("DELETE FROM audit_events WHERE time <= $1")
                        .bind(now - audit)
                        .slow(),
                )
                .await?;
        }
        tx.commit().await?;
        Ok(deleted)
    }
}
