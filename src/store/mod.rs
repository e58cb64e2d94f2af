//! Storage behind one trait, implemented once for both databases.
//!
//! SQLite is the embedded default, Postgres is for production and for several instances. One
//! implementation of [`Store`] (`sql.rs`, each statement written once) runs on both, and the same
//! conformance suite (`tests/it/store.rs`) runs against both. Every secret arrives here already
//! hashed (codes, refresh tokens, client secrets) or Fernet-encrypted (upstream tokens, private
//! keys): the store never sees a usable credential.

/// The audit trail's statements built at run time (multi-row insert, filtered listing).
mod audit;
/// What each engine says for itself, and the timestamp each binds its own way.
mod engine;
/// The rows Portcullis keeps, as plain data.
mod models;
/// Postgres: connecting, its migrations, how it binds a timestamp.
mod postgres;
/// Row shapes both engines decode, and their conversion into the models.
mod rows;
/// The one implementation of [`Store`] both engines run.
mod sql;
/// SQLite: connecting, its migrations, how it binds a timestamp.
mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

pub use models::*;
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

/// What can go wrong in storage. Internals are logged by the caller, never shown to a client.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A row with the same unique key exists already.
    #[error("conflict: {0}")]
    Conflict(&'static str),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is malformed: {0}")]
    Corrupt(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// The outcome of presenting an authorization code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeRedemption {
    /// First use: the code is now spent.
    Redeemed(AuthorizationCode),
    /// The code was spent before: a replay (RFC 6749 §4.1.2 says revoke what it issued).
    Replayed(AuthorizationCode),
    /// No such code (or expired and purged).
    Unknown,
}

/// Persistence for every piece of Portcullis' state.
///
/// `now` is always passed in; implementations never read the clock.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Applies this database's pending migrations.
    async fn migrate(&self) -> StoreResult<()>;
    /// A cheap round trip, for `/health/ready`.
    async fn ping(&self) -> StoreResult<()>;

    // Clients (RFC 7591).
    /// Inserts a registered client; `Conflict` when the `client_id` exists.
    async fn insert_client(&self, client: &Client) -> StoreResult<()>;
    async fn get_client(&self, client_id: &str) -> StoreResult<Option<Client>>;

    // Users.
    /// Creates the user with this `key`, or updates email/name/last_login_at of the existing one.
    /// Returns the stored user (its `id` is stable across sign-ins).
    async fn upsert_user(&self, user: &NewUser, now: DateTime<Utc>) -> StoreResult<User>;
    async fn get_user(&self, id: &str) -> StoreResult<Option<User>>;

    // Authorization flows in progress (between /authorize and /callback).
    /// `Conflict` when the id exists.
    async fn insert_flow(&self, flow: &Flow) -> StoreResult<()>;
    /// Returns the flow unless it is missing or expired at `now`.
    async fn get_flow(&self, id: &str, now: DateTime<Utc>) -> StoreResult<Option<Flow>>;
    /// Replaces the data of an existing, unexpired flow. Returns false when it is gone.
    async fn update_flow(&self, flow: &Flow, now: DateTime<Utc>) -> StoreResult<bool>;
    /// Deletes the flow and returns it, atomically: of two concurrent callers only one gets it.
    /// An expired flow is deleted and `None` returned.
    async fn take_flow(&self, id: &str, now: DateTime<Utc>) -> StoreResult<Option<Flow>>;

    // Grants: one per successful sign-in of a user at a client (the token's `sid`).
    async fn insert_grant(&self, grant: &Grant) -> StoreResult<()>;
    async fn get_grant(&self, id: &str) -> StoreResult<Option<Grant>>;
    /// Replaces the encrypted upstream tokens (after an upstream refresh).
    async fn update_grant_upstream(&self, id: &str, upstream: &UpstreamTokens) -> StoreResult<()>;
    /// Marks the grant revoked (idempotent: the first `revoked_at` stays) and deletes its
    /// refresh tokens and unredeemed codes.
    async fn revoke_grant(&self, id: &str, now: DateTime<Utc>) -> StoreResult<()>;
    /// Grants revoked at or after `since`, for the in-memory revocation view.
    async fn grants_revoked_since(
        &self,
        since: DateTime<Utc>,
    ) -> StoreResult<Vec<(String, DateTime<Utc>)>>;

    // Authorization codes (stored by hash, single use).
    async fn insert_code(&self, code: &AuthorizationCode) -> StoreResult<()>;
    /// The code, spent or not, without changing it: the token endpoint checks everything before
    /// spending, so a failed attempt changes nothing.
    async fn get_code(&self, code_hash: &str) -> StoreResult<Option<AuthorizationCode>>;
    /// Spends the code atomically. An expired, unspent code is `Unknown`.
    async fn redeem_code(&self, code_hash: &str, now: DateTime<Utc>)
    -> StoreResult<CodeRedemption>;

    // Refresh tokens (stored by hash, rotated on every use).
    async fn insert_refresh_token(&self, token: &RefreshToken) -> StoreResult<()>;
    async fn get_refresh_token(&self, token_hash: &str) -> StoreResult<Option<RefreshToken>>;
    /// Marks the token rotated and remembers its (encrypted) successor, atomically: returns
    /// true only for the one caller that rotated it first.
    async fn rotate_refresh_token(
        &self,
        token_hash: &str,
        successor_enc: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<bool>;
    async fn delete_refresh_token(&self, token_hash: &str) -> StoreResult<()>;

    // Revoked access tokens (RFC 7009), kept until they would have expired anyway.
    async fn revoke_access_token(
        &self,
        jti: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// `(jti, revoked_at)` of access tokens revoked at or after `since`.
    async fn access_tokens_revoked_since(
        &self,
        since: DateTime<Utc>,
    ) -> StoreResult<Vec<(String, DateTime<Utc>)>>;

    // Signing keys (private half Fernet-encrypted).
    /// Inserts unless a key with that kid exists (then does nothing).
    async fn insert_signing_key(&self, key: &SigningKeyRecord) -> StoreResult<()>;
    /// All keys, newest first.
    async fn signing_keys(&self) -> StoreResult<Vec<SigningKeyRecord>>;

    // The audit trail.
    /// Inserts the events in one transaction: all of them or none.
    async fn insert_audit_events(&self, events: &[AuditEvent]) -> StoreResult<()>;
    /// The events matching `filter`, newest first (`time`, then `id`, descending), at most
    /// `filter.limit`.
    async fn audit_events(&self, filter: &AuditFilter) -> StoreResult<Vec<AuditEvent>>;

    /// Deletes expired flows, codes, refresh tokens and revoked-token rows. Returns rows deleted.
    ///
    /// Audit events are not touched: they do not expire, and retention of the audit trail is
    /// out of scope for now (an operator prunes `audit_events` by `time` if they must).
    async fn purge_expired(&self, now: DateTime<Utc>) -> StoreResult<u64>;
}

/// The store in use, shared by every handler.
pub type DynStore = Arc<dyn Store>;

/// Connects to `database_url` (`sqlite:…` or `postgres://…`), creating a SQLite file when it is
/// missing. Does not migrate: call [`Store::migrate`].
pub async fn connect(database_url: &str) -> StoreResult<DynStore> {
    if database_url.starts_with("postgres://") || database_url.starts_with("postgresql://") {
        Ok(Arc::new(PostgresStore::connect(database_url).await?))
    } else {
        Ok(Arc::new(SqliteStore::connect(database_url).await?))
    }
}
