//! Row shapes shared by both databases, and their conversion into the models.
//!
//! Every column type here decodes from SQLite (TEXT) and Postgres (TIMESTAMPTZ, JSONB) alike, so
//! one implementation (`sql.rs`) reads both.

use chrono::{DateTime, Utc};
use sqlx::types::Json;

use super::db::{DbError, FromRow, Row, row_struct};

use super::{
    ApiKey, AuditEvent, AuthorizationCode, Client, CodeExchange, Flow, Grant, IdentityRecord,
    Person, RefreshToken, SigningKeyRecord, StoreError, StoreResult, UpstreamTokens, User,
};

/// Maps a unique-constraint violation to [`StoreError::Conflict`], anything else unchanged.
pub(super) fn on_unique(what: &'static str) -> impl FnOnce(StoreError) -> StoreError {
    move |error| match error {
        StoreError::Database(DbError::Postgres(sqlx::Error::Database(ref db)))
            if db.is_unique_violation() =>
        {
            StoreError::Conflict(what)
        }
        StoreError::Database(DbError::Sqlite(rusqlite::Error::SqliteFailure(ref e, _)))
            if matches!(
                e.extended_code,
                rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                    | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
            ) =>
        {
            StoreError::Conflict(what)
        }
        other => other,
    }
}

/// The columns of a [`ClientRow`], in its order.
macro_rules! client_columns {
    () => {
        "client_id, secret_hash, token_endpoint_auth_method, client_name, redirect_uris, \
         grant_types, response_types, scope, metadata, created_at"
    };
}
pub(super) use client_columns;

row_struct! {
    pub(super) struct ClientRow {
        client_id: String,
        secret_hash: Option<String>,
        token_endpoint_auth_method: String,
        client_name: Option<String>,
        redirect_uris: Json<Vec<String>>,
        grant_types: Json<Vec<String>>,
        response_types: Json<Vec<String>>,
        scope: Option<String>,
        metadata: Json<serde_json::Value>,
        created_at: DateTime<Utc>,
    }
}

impl From<ClientRow> for Client {
    fn from(row: ClientRow) -> Self {
        Self {
            client_id: row.client_id,
            secret_hash: row.secret_hash,
            token_endpoint_auth_method: row.token_endpoint_auth_method,
            client_name: row.client_name,
            redirect_uris: row.redirect_uris.0,
            grant_types: row.grant_types.0,
            response_types: row.response_types.0,
            scope: row.scope,
            metadata: row.metadata.0,
            created_at: row.created_at,
        }
    }
}

/// The columns of a [`UserRow`], in its order.
macro_rules! user_columns {
    () => {
        "id, email, name, disabled_at, created_at, last_login_at"
    };
}
pub(super) use user_columns;

row_struct! {
    pub(super) struct UserRow {
        id: String,
        email: Option<String>,
        name: Option<String>,
        disabled_at: Option<DateTime<Utc>>,
        created_at: DateTime<Utc>,
        last_login_at: DateTime<Utc>,
    }
}

impl From<UserRow> for User {
    fn from(row: UserRow) -> Self {
        Self {
            id: row.id,
            email: row.email,
            name: row.name,
            disabled_at: row.disabled_at,
            created_at: row.created_at,
            last_login_at: row.last_login_at,
        }
    }
}

/// The columns of an [`IdentityRow`], in its order.
macro_rules! identity_columns {
    () => {
        "provider, subject, user_id, email, claims, created_at, last_login_at"
    };
}
pub(super) use identity_columns;

row_struct! {
    pub(super) struct IdentityRow {
        provider: String,
        subject: String,
        user_id: String,
        email: Option<String>,
        claims: Json<serde_json::Value>,
        created_at: DateTime<Utc>,
        last_login_at: DateTime<Utc>,
    }
}

impl From<IdentityRow> for IdentityRecord {
    fn from(row: IdentityRow) -> Self {
        Self {
            provider: row.provider,
            subject: row.subject,
            user_id: row.user_id,
            email: row.email,
            claims: row.claims.0,
            created_at: row.created_at,
            last_login_at: row.last_login_at,
        }
    }
}

/// One row of [`person`](super::Directory::person)'s statement: the person, one of their roles
/// (none when they have none), and their most recent identity at the provider asked for, if any.
pub(super) struct PersonRow {
    user: UserRow,
    role: Option<String>,
    identity_subject: Option<String>,
    identity_email: Option<String>,
    identity_claims: Option<Json<serde_json::Value>>,
    identity_created_at: Option<DateTime<Utc>>,
    identity_last_login_at: Option<DateTime<Utc>>,
}

impl FromRow for PersonRow {
    fn from_row(row: &Row<'_>) -> StoreResult<Self> {
        Ok(Self {
            user: UserRow::from_row(row)?,
            role: row.get("role")?,
            identity_subject: row.get("identity_subject")?,
            identity_email: row.get("identity_email")?,
            identity_claims: row.get("identity_claims")?,
            identity_created_at: row.get("identity_created_at")?,
            identity_last_login_at: row.get("identity_last_login_at")?,
        })
    }
}

impl PersonRow {
    /// The person in `rows` (one per role, all carrying the same identity), with the identity
    /// at `provider` the statement chose.
    pub(super) fn fold(rows: Vec<Self>, provider: &str) -> Option<Person> {
        let mut rows = rows.into_iter();
        let first = rows.next()?;
        let identity = first.identity(provider);
        let roles = first
            .role
            .into_iter()
            .chain(rows.filter_map(|row| row.role));
        Some(Person {
            user: first.user.into(),
            roles: roles.collect(),
            identity,
        })
    }

    fn identity(&self, provider: &str) -> Option<IdentityRecord> {
        Some(IdentityRecord {
            provider: provider.to_owned(),
            subject: self.identity_subject.clone()?,
            user_id: self.user.id.clone(),
            email: self.identity_email.clone(),
            claims: self.identity_claims.as_ref()?.0.clone(),
            created_at: self.identity_created_at?,
            last_login_at: self.identity_last_login_at?,
        })
    }
}

/// The columns of [`PersonRow`], for `FROM users u`, `user_roles r` and `identities i`.
macro_rules! person_columns {
    () => {
        "u.id, u.email, u.name, u.disabled_at, u.created_at, u.last_login_at, r.role,
         i.subject AS identity_subject, i.email AS identity_email,
         i.claims AS identity_claims, i.created_at AS identity_created_at,
         i.last_login_at AS identity_last_login_at"
    };
}
pub(super) use person_columns;

row_struct! {
    /// The flow document is read as plain JSON first, so that a document an older or newer version
    /// wrote surfaces as [`StoreError::Corrupt`] naming the flow rather than as a driver error.
    pub(super) struct FlowRow {
        id: String,
        data: Json<serde_json::Value>,
        pub(super) expires_at: DateTime<Utc>,
    }
}

impl TryFrom<FlowRow> for Flow {
    type Error = StoreError;

    fn try_from(row: FlowRow) -> Result<Self, StoreError> {
        let data = serde_json::from_value(row.data.0)
            .map_err(|e| StoreError::Corrupt(format!("flow {}: {e}", row.id)))?;
        Ok(Self {
            id: row.id,
            expires_at: row.expires_at,
            data,
        })
    }
}

/// The columns of a [`GrantRow`], in its order.
macro_rules! grant_columns {
    () => {
        "id, user_id, client_id, provider, scope, resource, upstream_access_token_enc, \
         upstream_refresh_token_enc, upstream_id_token_enc, upstream_expires_at, created_at, \
         revoked_at, redirect_uri"
    };
}
pub(super) use grant_columns;

row_struct! {
    pub(super) struct GrantRow {
        id: String,
        user_id: String,
        client_id: String,
        provider: String,
        scope: String,
        resource: String,
        upstream_access_token_enc: Option<String>,
        upstream_refresh_token_enc: Option<String>,
        upstream_id_token_enc: Option<String>,
        upstream_expires_at: Option<DateTime<Utc>>,
        created_at: DateTime<Utc>,
        revoked_at: Option<DateTime<Utc>>,
        redirect_uri: Option<String>,
    }
}

impl From<GrantRow> for Grant {
    fn from(row: GrantRow) -> Self {
        Self {
            id: row.id,
            user_id: row.user_id,
            client_id: row.client_id,
            provider: row.provider,
            scope: row.scope,
            resource: row.resource,
            redirect_uri: row.redirect_uri,
            upstream: UpstreamTokens {
                access_token_enc: row.upstream_access_token_enc,
                refresh_token_enc: row.upstream_refresh_token_enc,
                id_token_enc: row.upstream_id_token_enc,
                expires_at: row.upstream_expires_at,
            },
            created_at: row.created_at,
            revoked_at: row.revoked_at,
        }
    }
}

/// A code read with its own column names.
impl FromRow for AuthorizationCode {
    fn from_row(row: &Row<'_>) -> StoreResult<Self> {
        code_named(row, "client_id", "redirect_uri")
    }
}

/// A code from `row`, its client and redirect URI in the columns named `client_id` and
/// `redirect_uri` (a join with grants renames the two, which grants have too).
fn code_named(
    row: &Row<'_>,
    client_id: &str,
    redirect_uri: &str,
) -> StoreResult<AuthorizationCode> {
    Ok(AuthorizationCode {
        code_hash: row.get("code_hash")?,
        grant_id: row.get("grant_id")?,
        client_id: row.get(client_id)?,
        redirect_uri: row.get(redirect_uri)?,
        code_challenge: row.get("code_challenge")?,
        expires_at: row.get("expires_at")?,
        redeemed_at: row.get("redeemed_at")?,
    })
}

/// [`get_code_exchange`](super::Store::get_code_exchange)'s row: the code's columns (the two
/// that grants have too renamed `code_client_id` and `code_redirect_uri`), the grant's, and the
/// person's email.
impl FromRow for CodeExchange {
    fn from_row(row: &Row<'_>) -> StoreResult<Self> {
        Ok(Self {
            code: code_named(row, "code_client_id", "code_redirect_uri")?,
            grant: GrantRow::from_row(row)?.into(),
            email: row.get("user_email")?,
        })
    }
}

row_struct! {
    pub(super) struct RefreshTokenRow {
        token_hash: String,
        grant_id: String,
        client_id: String,
        created_at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
        rotated_at: Option<DateTime<Utc>>,
        successor_enc: Option<String>,
    }
}

impl From<RefreshTokenRow> for RefreshToken {
    fn from(row: RefreshTokenRow) -> Self {
        Self {
            token_hash: row.token_hash,
            grant_id: row.grant_id,
            client_id: row.client_id,
            created_at: row.created_at,
            expires_at: row.expires_at,
            rotated_at: row.rotated_at,
            successor_enc: row.successor_enc,
        }
    }
}

row_struct! {
    pub(super) struct SigningKeyRow {
        kid: String,
        alg: String,
        private_key_enc: String,
        public_jwk: String,
        created_at: DateTime<Utc>,
    }
}

impl From<SigningKeyRow> for SigningKeyRecord {
    fn from(row: SigningKeyRow) -> Self {
        Self {
            kid: row.kid,
            alg: row.alg,
            private_key_enc: row.private_key_enc,
            public_jwk: row.public_jwk,
            created_at: row.created_at,
        }
    }
}

row_struct! {
    /// Columns in the order of [`super::audit::COLUMNS`].
    pub(super) struct AuditEventRow {
        id: String,
        time: DateTime<Utc>,
        kind: String,
        request_id: Option<String>,
        user_id: Option<String>,
        user_email: Option<String>,
        client_id: Option<String>,
        backend: Option<String>,
        tool: Option<String>,
        decision: String,
        reason: Option<String>,
        outcome: Option<String>,
        latency_ms: Option<i64>,
        response_bytes: Option<i64>,
        trace_id: Option<String>,
    }
}

/// A kind or decision this version does not know (written by a newer one) surfaces as
/// [`StoreError::Corrupt`] naming the event, like a flow document it cannot read.
impl TryFrom<AuditEventRow> for AuditEvent {
    type Error = StoreError;

    fn try_from(row: AuditEventRow) -> Result<Self, StoreError> {
        let corrupt = |e| StoreError::Corrupt(format!("audit event {}: {e}", row.id));
        let kind = row.kind.parse().map_err(corrupt)?;
        let decision = row.decision.parse().map_err(corrupt)?;
        Ok(Self {
            id: row.id,
            time: row.time,
            kind,
            request_id: row.request_id,
            trace_id: row.trace_id,
            user_id: row.user_id,
            user_email: row.user_email,
            client_id: row.client_id,
            backend: row.backend,
            tool: row.tool,
            decision,
            reason: row.reason,
            outcome: row.outcome,
            latency_ms: row.latency_ms,
            response_bytes: row.response_bytes,
        })
    }
}

/// How [`super::Store::redeem_code`] reads the code after an update that matched nothing.
pub(super) fn after_failed_redemption(
    existing: Option<AuthorizationCode>,
) -> super::CodeRedemption {
    match existing {
        Some(code) if code.redeemed_at.is_some() => super::CodeRedemption::Replayed(code),
        // Unspent but expired: to the caller that is no code at all.
        _ => super::CodeRedemption::Unknown,
    }
}

/// The columns of an [`ApiKeyRow`], in its order.
macro_rules! api_key_columns {
    () => {
        "id, user_id, name, key_hash, prefix, scopes, created_at, expires_at, revoked_at, \
         last_used_at"
    };
}
pub(super) use api_key_columns;

row_struct! {
    pub(super) struct ApiKeyRow {
        id: String,
        user_id: String,
        name: String,
        key_hash: String,
        prefix: String,
        scopes: String,
        created_at: DateTime<Utc>,
        expires_at: Option<DateTime<Utc>>,
        revoked_at: Option<DateTime<Utc>>,
        last_used_at: Option<DateTime<Utc>>,
    }
}

impl From<ApiKeyRow> for ApiKey {
    fn from(row: ApiKeyRow) -> Self {
        Self {
            id: row.id,
            user_id: row.user_id,
            name: row.name,
            key_hash: row.key_hash,
            prefix: row.prefix,
            scopes: row.scopes,
            created_at: row.created_at,
            expires_at: row.expires_at,
            revoked_at: row.revoked_at,
            last_used_at: row.last_used_at,
        }
    }
}
