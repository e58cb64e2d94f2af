//! The embedded default: one SQLite file in WAL mode, or `sqlite::memory:` for throwaway runs.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use sqlx::QueryBuilder;
use sqlx::sqlite::{
    Sqlite, SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
};
use sqlx::types::Json;

use super::rows::{
    AUDIT_COLUMNS, AUDIT_INSERT_CHUNK, AuditEventRow, ClientRow, CodeRow, FlowRow, GrantRow,
    RefreshTokenRow, SigningKeyRow, UserRow, after_failed_redemption, on_unique,
};
use super::{
    AuditEvent, AuditFilter, AuthorizationCode, Client, CodeRedemption, Flow, Grant, NewUser,
    RefreshToken, SigningKeyRecord, Store, StoreResult, UpstreamTokens, User,
};

/// Enough for concurrent readers; SQLite serialises the writers anyway.
const MAX_CONNECTIONS: u32 = 8;

/// [`Store`] on a SQLite pool.
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating when missing) the database at `url`, e.g. `sqlite://portcullis.db`.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let pool_options = if in_memory {
            // An in-memory database dies with its last connection: keep exactly one, for ever.
            SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
        } else {
            SqlitePoolOptions::new().max_connections(MAX_CONNECTIONS)
        };
        let pool = pool_options.connect_with(options).await?;
        Ok(Self { pool })
    }
}

/// Every timestamp is written in one fixed-width form (microseconds, `Z`), so that comparing the
/// TEXT columns compares the times; see the migration.
fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn ts_opt(t: Option<DateTime<Utc>>) -> Option<String> {
    t.map(ts)
}

#[async_trait]
impl Store for SqliteStore {
    async fn migrate(&self) -> StoreResult<()> {
        sqlx::migrate!("migrations/sqlite").run(&self.pool).await?;
        Ok(())
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn insert_client(&self, client: &Client) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO clients (client_id, secret_hash, token_endpoint_auth_method, client_name,
                 redirect_uris, grant_types, response_types, scope, metadata, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
        .bind(ts(client.created_at))
        .execute(&self.pool)
        .await
        .map_err(on_unique("client_id exists"))?;
        Ok(())
    }

    async fn get_client(&self, client_id: &str) -> StoreResult<Option<Client>> {
        let row = sqlx::query_as::<_, ClientRow>(
            "SELECT client_id, secret_hash, token_endpoint_auth_method, client_name, redirect_uris,
                 grant_types, response_types, scope, metadata, created_at
             FROM clients WHERE client_id = ?",
        )
        .bind(client_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(Client::from))
    }

    async fn upsert_user(&self, user: &NewUser, now: DateTime<Utc>) -> StoreResult<User> {
        let row = sqlx::query_as::<_, UserRow>(
            r#"INSERT INTO users (id, "key", email, name, created_at, last_login_at)
             VALUES (?, ?, ?, ?, ?, ?)
             ON CONFLICT ("key") DO UPDATE SET
                 email = excluded.email, name = excluded.name, last_login_at = excluded.last_login_at
             RETURNING id, "key", email, name, created_at, last_login_at"#,
        )
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(&user.key)
        .bind(&user.email)
        .bind(&user.name)
        .bind(ts(now))
        .bind(ts(now))
        .fetch_one(&self.pool)
        .await?;
        Ok(row.into())
    }

    async fn get_user(&self, id: &str) -> StoreResult<Option<User>> {
        let row = sqlx::query_as::<_, UserRow>(
            r#"SELECT id, "key", email, name, created_at, last_login_at FROM users WHERE id = ?"#,
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(User::from))
    }

    async fn insert_flow(&self, flow: &Flow) -> StoreResult<()> {
        sqlx::query("INSERT INTO flows (id, data, expires_at) VALUES (?, ?, ?)")
            .bind(&flow.id)
            .bind(Json(&flow.data))
            .bind(ts(flow.expires_at))
            .execute(&self.pool)
            .await
            .map_err(on_unique("flow id exists"))?;
        Ok(())
    }

    async fn get_flow(&self, id: &str, now: DateTime<Utc>) -> StoreResult<Option<Flow>> {
        let row = sqlx::query_as::<_, FlowRow>(
            "SELECT id, data, expires_at FROM flows WHERE id = ? AND expires_at > ?",
        )
        .bind(id)
        .bind(ts(now))
        .fetch_optional(&self.pool)
        .await?;
        row.map(Flow::try_from).transpose()
    }

    async fn update_flow(&self, flow: &Flow, now: DateTime<Utc>) -> StoreResult<bool> {
        let result = sqlx::query("UPDATE flows SET data = ? WHERE id = ? AND expires_at > ?")
            .bind(Json(&flow.data))
            .bind(&flow.id)
            .bind(ts(now))
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected() == 1)
    }

    async fn take_flow(&self, id: &str, now: DateTime<Utc>) -> StoreResult<Option<Flow>> {
        let row = sqlx::query_as::<_, FlowRow>(
            "DELETE FROM flows WHERE id = ? RETURNING id, data, expires_at",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.filter(|row| row.expires_at > now)
            .map(Flow::try_from)
            .transpose()
    }

    async fn insert_grant(&self, grant: &Grant) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO grants (id, user_id, client_id, provider, scope, resource,
                 upstream_access_token_enc, upstream_refresh_token_enc, upstream_id_token_enc,
                 upstream_expires_at, created_at, revoked_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&grant.id)
        .bind(&grant.user_id)
        .bind(&grant.client_id)
        .bind(&grant.provider)
        .bind(&grant.scope)
        .bind(&grant.resource)
        .bind(&grant.upstream.access_token_enc)
        .bind(&grant.upstream.refresh_token_enc)
        .bind(&grant.upstream.id_token_enc)
        .bind(ts_opt(grant.upstream.expires_at))
        .bind(ts(grant.created_at))
        .bind(ts_opt(grant.revoked_at))
        .execute(&self.pool)
        .await
        .map_err(on_unique("grant id exists"))?;
        Ok(())
    }

    async fn get_grant(&self, id: &str) -> StoreResult<Option<Grant>> {
        let row = sqlx::query_as::<_, GrantRow>(
            "SELECT id, user_id, client_id, provider, scope, resource, upstream_access_token_enc,
                 upstream_refresh_token_enc, upstream_id_token_enc, upstream_expires_at, created_at,
                 revoked_at
             FROM grants WHERE id = ?",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(Grant::from))
    }

    async fn update_grant_upstream(&self, id: &str, upstream: &UpstreamTokens) -> StoreResult<()> {
        sqlx::query(
            "UPDATE grants SET upstream_access_token_enc = ?, upstream_refresh_token_enc = ?,
                 upstream_id_token_enc = ?, upstream_expires_at = ?
             WHERE id = ?",
        )
        .bind(&upstream.access_token_enc)
        .bind(&upstream.refresh_token_enc)
        .bind(&upstream.id_token_enc)
        .bind(ts_opt(upstream.expires_at))
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn revoke_grant(&self, id: &str, now: DateTime<Utc>) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE grants SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?")
            .bind(ts(now))
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM refresh_tokens WHERE grant_id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        // Spent codes stay, so that replaying one is still recognised as a replay.
        sqlx::query("DELETE FROM authorization_codes WHERE grant_id = ? AND redeemed_at IS NULL")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn grants_revoked_since(
        &self,
        since: DateTime<Utc>,
    ) -> StoreResult<Vec<(String, DateTime<Utc>)>> {
        let rows = sqlx::query_as::<_, (String, DateTime<Utc>)>(
            "SELECT id, revoked_at FROM grants WHERE revoked_at >= ? ORDER BY revoked_at, id",
        )
        .bind(ts(since))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows)
    }

    async fn insert_code(&self, code: &AuthorizationCode) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO authorization_codes (code_hash, grant_id, client_id, redirect_uri,
                 code_challenge, expires_at, redeemed_at)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&code.code_hash)
        .bind(&code.grant_id)
        .bind(&code.client_id)
        .bind(&code.redirect_uri)
        .bind(&code.code_challenge)
        .bind(ts(code.expires_at))
        .bind(ts_opt(code.redeemed_at))
        .execute(&self.pool)
        .await
        .map_err(on_unique("code exists"))?;
        Ok(())
    }

    async fn get_code(&self, code_hash: &str) -> StoreResult<Option<AuthorizationCode>> {
        let row = sqlx::query_as::<_, CodeRow>(
            "SELECT code_hash, grant_id, client_id, redirect_uri, code_challenge, expires_at, redeemed_at
             FROM authorization_codes WHERE code_hash = ?",
        )
        .bind(code_hash)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(Into::into))
    }

    async fn redeem_code(
        &self,
        code_hash: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<CodeRedemption> {
        let redeemed = sqlx::query_as::<_, CodeRow>(
            "UPDATE authorization_codes SET redeemed_at = ?1
             WHERE code_hash = ?2 AND redeemed_at IS NULL AND expires_at > ?1
             RETURNING code_hash, grant_id, client_id, redirect_uri, code_challenge, expires_at,
                 redeemed_at",
        )
        .bind(ts(now))
        .bind(code_hash)
        .fetch_optional(&self.pool)
        .await?;
        if let Some(row) = redeemed {
            return Ok(CodeRedemption::Redeemed(row.into()));
        }
        let existing = sqlx::query_as::<_, CodeRow>(
            "SELECT code_hash, grant_id, client_id, redirect_uri, code_challenge, expires_at, redeemed_at
             FROM authorization_codes WHERE code_hash = ?",
        )
        .bind(code_hash)
        .fetch_optional(&self.pool)
        .await?;
        Ok(after_failed_redemption(existing))
    }

    async fn insert_refresh_token(&self, token: &RefreshToken) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO refresh_tokens (token_hash, grant_id, client_id, created_at, expires_at,
                 rotated_at, successor_enc)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&token.token_hash)
        .bind(&token.grant_id)
        .bind(&token.client_id)
        .bind(ts(token.created_at))
        .bind(ts(token.expires_at))
        .bind(ts_opt(token.rotated_at))
        .bind(&token.successor_enc)
        .execute(&self.pool)
        .await
        .map_err(on_unique("refresh token exists"))?;
        Ok(())
    }

    async fn get_refresh_token(&self, token_hash: &str) -> StoreResult<Option<RefreshToken>> {
        let row = sqlx::query_as::<_, RefreshTokenRow>(
            "SELECT token_hash, grant_id, client_id, created_at, expires_at, rotated_at, successor_enc
             FROM refresh_tokens WHERE token_hash = ?",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(RefreshToken::from))
    }

    async fn rotate_refresh_token(
        &self,
        token_hash: &str,
        successor_enc: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let result = sqlx::query(
            "UPDATE refresh_tokens SET rotated_at = ?, successor_enc = ?
             WHERE token_hash = ? AND rotated_at IS NULL",
        )
        .bind(ts(now))
        .bind(successor_enc)
        .bind(token_hash)
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    async fn delete_refresh_token(&self, token_hash: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM refresh_tokens WHERE token_hash = ?")
            .bind(token_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn revoke_access_token(
        &self,
        jti: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        // Revoking twice keeps the first time, as for grants.
        sqlx::query(
            "INSERT INTO revoked_access_tokens (jti, expires_at, revoked_at) VALUES (?, ?, ?)
             ON CONFLICT (jti) DO NOTHING",
        )
        .bind(jti)
        .bind(ts(expires_at))
        .bind(ts(now))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn access_tokens_revoked_since(
        &self,
        since: DateTime<Utc>,
    ) -> StoreResult<Vec<(String, DateTime<Utc>)>> {
        let rows = sqlx::query_as::<_, (String, DateTime<Utc>)>(
            "SELECT jti, revoked_at FROM revoked_access_tokens WHERE revoked_at >= ?
             ORDER BY revoked_at, jti",
        )
        .bind(ts(since))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows)
    }

    async fn insert_signing_key(&self, key: &SigningKeyRecord) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO signing_keys (kid, alg, private_key_enc, public_jwk, created_at)
             VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (kid) DO NOTHING",
        )
        .bind(&key.kid)
        .bind(&key.alg)
        .bind(&key.private_key_enc)
        .bind(&key.public_jwk)
        .bind(ts(key.created_at))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn signing_keys(&self) -> StoreResult<Vec<SigningKeyRecord>> {
        let rows = sqlx::query_as::<_, SigningKeyRow>(
            "SELECT kid, alg, private_key_enc, public_jwk, created_at
             FROM signing_keys ORDER BY created_at DESC, kid DESC",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(SigningKeyRecord::from).collect())
    }

    async fn insert_audit_events(&self, events: &[AuditEvent]) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        for chunk in events.chunks(AUDIT_INSERT_CHUNK) {
            let mut insert =
                QueryBuilder::<Sqlite>::new(format!("INSERT INTO audit_events ({AUDIT_COLUMNS}) "));
            insert.push_values(chunk, |mut row, event| {
                row.push_bind(&event.id)
                    .push_bind(ts(event.time))
                    .push_bind(event.kind.as_str())
                    .push_bind(&event.request_id)
                    .push_bind(&event.user_id)
                    .push_bind(&event.user_email)
                    .push_bind(&event.client_id)
                    .push_bind(&event.backend)
                    .push_bind(&event.tool)
                    .push_bind(event.decision.as_str())
                    .push_bind(&event.reason)
                    .push_bind(&event.outcome)
                    .push_bind(event.latency_ms)
                    .push_bind(event.response_bytes);
            });
            insert
                .build()
                .execute(&mut *tx)
                .await
                .map_err(on_unique("audit event id exists"))?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn audit_events(&self, filter: &AuditFilter) -> StoreResult<Vec<AuditEvent>> {
        let mut select = QueryBuilder::<Sqlite>::new(format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_events WHERE 1 = 1"
        ));
        if let Some(user) = &filter.user {
            select
                .push(" AND (user_id = ")
                .push_bind(user)
                .push(" OR user_email = ")
                .push_bind(user)
                .push(")");
        }
        if let Some(tool) = &filter.tool {
            select.push(" AND tool = ").push_bind(tool);
        }
        if let Some(backend) = &filter.backend {
            select.push(" AND backend = ").push_bind(backend);
        }
        if let Some(kind) = filter.kind {
            select.push(" AND kind = ").push_bind(kind.as_str());
        }
        if let Some(since) = filter.since {
            select.push(" AND time >= ").push_bind(ts(since));
        }
        select
            .push(" ORDER BY time DESC, id DESC LIMIT ")
            .push_bind(i64::from(filter.limit));
        let rows = select
            .build_query_as::<AuditEventRow>()
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter().map(AuditEvent::try_from).collect()
    }

    async fn purge_expired(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        let now = ts(now);
        let mut tx = self.pool.begin().await?;
        let mut deleted = 0;
        for sql in [
            "DELETE FROM flows WHERE expires_at <= ?",
            "DELETE FROM authorization_codes WHERE expires_at <= ?",
            "DELETE FROM refresh_tokens WHERE expires_at <= ?",
            "DELETE FROM revoked_access_tokens WHERE expires_at <= ?",
        ] {
            deleted += sqlx::query(sql)
                .bind(&now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        tx.commit().await?;
        Ok(deleted)
    }
}
