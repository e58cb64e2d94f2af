//! Storage behind one trait, implemented once for both databases.
//!
//! SQLite is the embedded default, Postgres is for production and for several instances. One
//! implementation of [`Store`] (`sql.rs`, each statement written once) runs on both, and the same
//! conformance suite (`tests/it/store.rs`) runs against both. Every secret arrives here already
//! hashed (codes, refresh tokens, client secrets) or Fernet-encrypted (upstream tokens, private
//! keys): the store never sees a usable credential.

/// The audit trail: the [`AuditStore`] part, and its statements built at run time.
mod audit;
/// How each column type decodes on both engines.
mod columns;
/// Remembered consent: the [`ConsentStore`] part.
mod consents;
/// The statement layer: statements, binds, rows and transactions on either engine.
mod db;
/// Flows in progress: the [`FlowStore`] part.
mod flows;
/// The inserts that run alone or in a transaction with others, each written once.
mod inserts;
/// API keys: the [`KeyStore`] part.
mod keys;
/// The rows Portcullis keeps, as plain data.
mod models;
/// People, identities and roles, and the operator's listings: the [`Directory`] half.
mod people;
/// Postgres: connecting, its migrations, statements through sqlx's pool.
mod postgres;
/// Row shapes both engines decode, and their conversion into the models.
mod rows;
/// The one implementation of [`Store`] both engines run.
mod sql;
/// SQLite: connecting, its migrations, statements on the calling thread.
mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

pub use db::DbError;
pub use models::*;
pub use sql::SqlStore;

/// What can go wrong in storage. Internals are logged by the caller, never shown to a client.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A row with the same unique key exists already.
    #[error("conflict: {0}")]
    Conflict(&'static str),
    /// The database cannot be reached now (stopped, restarting, refusing connections, or no
    /// connection free in time): the request may succeed if tried again shortly.
    #[error("the database is unavailable: {0}")]
    Unavailable(#[source] DbError),
    #[error(transparent)]
    Database(DbError),
    #[error(transparent)]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is malformed: {0}")]
    Corrupt(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        if unavailable(&error) {
            Self::Unavailable(DbError::Postgres(error))
        } else {
            Self::Database(DbError::Postgres(error))
        }
    }
}

/// SQLite's driver errors are never "unavailable": its file is local. Only waiting too long for
/// its one connection is ([`DbError::Busy`]).
impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> Self {
        Self::Database(DbError::Sqlite(error))
    }
}

impl StoreError {
    /// True when the database is out of reach for now, not when a statement or the data is
    /// wrong: the client is told to retry (503), not that Portcullis failed (500).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

/// Whether `error` says the database cannot be reached, rather than that something is wrong.
fn unavailable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_) => true,
        // Postgres SQLSTATEs (Appendix A): class 08 connection exceptions, 57P01 admin
        // shutdown, 57P02 crash shutdown, 57P03 cannot connect now (starting or stopping),
        // 53300 too many connections.
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            code.starts_with("08") || matches!(&*code, "57P01" | "57P02" | "57P03" | "53300")
        }),
        _ => false,
    }
}

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

/// Which grants `portcullis grants list` shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GrantFilter {
    pub user_id: Option<String>,
    pub client_id: Option<String>,
    /// Revoked grants too.
    pub include_revoked: bool,
}

/// People and what the operator manages of them: identities, roles, and the listing of grants
/// and clients. Half of the [`Store`]; `people.rs` implements it.
///
/// `now` is always passed in; implementations never read the clock.
#[async_trait]
pub trait Directory: Send + Sync + 'static {
    /// The identity (provider, subject), if it was seen before.
    async fn find_identity(
        &self,
        provider: &str,
        subject: &str,
    ) -> StoreResult<Option<IdentityRecord>>;
    /// Records a sign-in: a known identity takes the new email (when verified), claims and
    /// time; an unknown one is attached as `attach` says, atomically with the person it may
    /// create. The person takes the new name, the verified email and the time. Returns the
    /// person.
    async fn record_sign_in(
        &self,
        signed_in: &SignedIn,
        attach: &Attach,
        now: DateTime<Utc>,
    ) -> StoreResult<User>;
    /// Replaces the claims of an identity (after an upstream refresh brought new ones).
    async fn update_identity_claims(
        &self,
        provider: &str,
        subject: &str,
        claims: &serde_json::Value,
    ) -> StoreResult<()>;
    /// Creates a person no provider vouched for yet (`portcullis users add`).
    async fn create_user(&self, user: &NewUser, now: DateTime<Utc>) -> StoreResult<User>;
    async fn get_user(&self, id: &str) -> StoreResult<Option<User>>;
    /// People whose email is `email` (compared lower-cased), oldest first.
    async fn users_by_email(&self, email: &str) -> StoreResult<Vec<User>>;
    /// Everyone, oldest first.
    async fn list_users(&self) -> StoreResult<Vec<User>>;
    /// A person's identities, oldest first.
    async fn identities_of(&self, user_id: &str) -> StoreResult<Vec<IdentityRecord>>;
    /// A person with their roles and their most recently used identity at `provider`.
    async fn person(&self, user_id: &str, provider: &str) -> StoreResult<Option<Person>>;
    /// The person the identity (`provider`, `subject`) belongs to, with their roles and that
    /// identity; `None` when the identity was never seen.
    async fn person_by_identity(
        &self,
        provider: &str,
        subject: &str,
    ) -> StoreResult<Option<Person>>;
    /// Switches a person off (`Some(now)`) or on (`None`). False when there is no such person.
    async fn set_user_disabled(
        &self,
        user_id: &str,
        disabled_at: Option<DateTime<Utc>>,
    ) -> StoreResult<bool>;
    /// Deletes a person with their identities, roles and grants. False when there is none.
    async fn delete_user(&self, user_id: &str) -> StoreResult<bool>;
    /// Assigns a role; false when the person already had it.
    async fn add_user_role(
        &self,
        user_id: &str,
        role: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<bool>;
    /// Removes a role; false when the person did not have it.
    async fn remove_user_role(&self, user_id: &str, role: &str) -> StoreResult<bool>;
    /// The ids of the person's grants not yet revoked.
    async fn active_grants_of(&self, user_id: &str) -> StoreResult<Vec<String>>;
    /// Grants matching `filter`, newest first.
    async fn list_grants(&self, filter: &GrantFilter) -> StoreResult<Vec<Grant>>;
    /// Registered clients, newest first.
    async fn list_clients(&self) -> StoreResult<Vec<Client>>;
    /// Deletes a client registration. False when there is none.
    async fn delete_client(&self, client_id: &str) -> StoreResult<bool>;
}

/// API keys: stored by hash, found by hash, listed, revoked. `keys.rs` implements it.
#[async_trait]
pub trait KeyStore: Send + Sync + 'static {
    /// `Conflict` when the id or the hash exists.
    async fn insert_api_key(&self, key: &ApiKey) -> StoreResult<()>;
    /// The key whose hash is `key_hash`, revoked or not.
    async fn api_key_by_hash(&self, key_hash: &str) -> StoreResult<Option<ApiKey>>;
    /// Keys, of one person or everyone's, newest first.
    async fn list_api_keys(&self, user_id: Option<&str>) -> StoreResult<Vec<ApiKey>>;
    /// Revokes a key (the first time stays). False when there is no such key.
    async fn revoke_api_key(&self, id: &str, now: DateTime<Utc>) -> StoreResult<bool>;
    /// Records a use.
    async fn touch_api_key(&self, id: &str, now: DateTime<Utc>) -> StoreResult<()>;
}

/// Remembered approvals (`[consent] remember_for_secs`). `consents.rs` implements it.
///
/// Revoking a grant ([`Store::revoke_grant`]) also forgets the approvals of its person, client
/// and redirect URI, so `portcullis grants revoke` ends a remembered consent.
#[async_trait]
pub trait ConsentStore: Send + Sync + 'static {
    /// Records (or replaces) the approval for its browser, client, redirect URI and resource.
    async fn remember_consent(&self, consent: &Consent) -> StoreResult<()>;
    /// The unexpired approval for this browser, client, redirect URI and resource.
    async fn remembered_consent(
        &self,
        browser_hash: &str,
        client_id: &str,
        redirect_uri: &str,
        resource: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<Consent>>;
    /// Deletes the approval for this browser, client, redirect URI and resource.
    async fn forget_consent(
        &self,
        browser_hash: &str,
        client_id: &str,
        redirect_uri: &str,
        resource: &str,
    ) -> StoreResult<()>;
}

/// Authorization flows in progress, between `/authorize` and `/callback`. `flows.rs` implements
/// it.
#[async_trait]
pub trait FlowStore: Send + Sync + 'static {
    /// `Conflict` when the id exists.
    async fn insert_flow(&self, flow: &Flow) -> StoreResult<()>;
    /// Returns the flow unless it is missing or expired at `now`.
    async fn get_flow(&self, id: &str, now: DateTime<Utc>) -> StoreResult<Option<Flow>>;
    /// Replaces the data of an existing, unexpired flow. Returns false when it is gone.
    async fn update_flow(&self, flow: &Flow, now: DateTime<Utc>) -> StoreResult<bool>;
    /// Moves an unexpired flow from `old_id` to `flow.id` with `flow`'s data, atomically: of two
    /// concurrent callers only one moves it. Returns false when it is gone (or `Conflict` when
    /// `flow.id` exists).
    async fn rekey_flow(&self, old_id: &str, flow: &Flow, now: DateTime<Utc>) -> StoreResult<bool>;
    /// Deletes the flow and returns it, atomically: of two concurrent callers only one gets it.
    /// An expired flow is deleted and `None` returned.
    async fn take_flow(&self, id: &str, now: DateTime<Utc>) -> StoreResult<Option<Flow>>;
    /// Like [`take_flow`](Self::take_flow), but only a flow that was sent upstream to
    /// `provider` by the browser whose secret hashes to `browser_hash`: any other is left as
    /// it is and `None` returned. What a callback does, in one statement.
    async fn take_upstream_flow(
        &self,
        id: &str,
        browser_hash: &str,
        provider: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<Flow>>;
}

/// The audit trail's rows. `audit.rs` implements it.
#[async_trait]
pub trait AuditStore: Send + Sync + 'static {
    /// Inserts the events in one transaction: all of them or none.
    async fn insert_audit_events(&self, events: &[AuditEvent]) -> StoreResult<()>;
    /// The events matching `filter`, newest first (`time`, then `id`, descending), at most
    /// `filter.limit`.
    async fn audit_events(&self, filter: &AuditFilter) -> StoreResult<Vec<AuditEvent>>;
}

/// Persistence for every piece of Portcullis' state.
///
/// `now` is always passed in; implementations never read the clock.
#[async_trait]
pub trait Store: Directory + KeyStore + ConsentStore + FlowStore + AuditStore {
    /// Applies this database's pending migrations.
    async fn migrate(&self) -> StoreResult<()>;
    /// A cheap round trip, for `/health/ready`.
    async fn ping(&self) -> StoreResult<()>;
    /// The connection pool as it is now, for `/metrics` (no round trip).
    fn pool_stats(&self) -> crate::telemetry::metrics::PoolStats;

    // Clients (RFC 7591).
    /// Inserts a registered client; `Conflict` when the `client_id` exists.
    async fn insert_client(&self, client: &Client) -> StoreResult<()>;
    async fn get_client(&self, client_id: &str) -> StoreResult<Option<Client>>;

    // Grants: one per successful sign-in of a user at a client (the token's `sid`).
    async fn insert_grant(&self, grant: &Grant) -> StoreResult<()>;
    /// A grant and the authorization code that hands it to the client, in one transaction.
    async fn insert_grant_with_code(
        &self,
        grant: &Grant,
        code: &AuthorizationCode,
    ) -> StoreResult<()>;
    async fn get_grant(&self, id: &str) -> StoreResult<Option<Grant>>;
    /// Replaces the encrypted upstream tokens (after an upstream refresh).
    async fn update_grant_upstream(&self, id: &str, upstream: &UpstreamTokens) -> StoreResult<()>;
    /// Replaces the encrypted upstream tokens only while the stored upstream refresh token is
    /// still `replacing` (compare-and-swap): false when another refresh stored its tokens first.
    async fn replace_grant_upstream(
        &self,
        id: &str,
        replacing: &str,
        upstream: &UpstreamTokens,
    ) -> StoreResult<bool>;
    /// Marks the grant revoked (idempotent: the first `revoked_at` stays) and deletes its
    /// refresh tokens and unredeemed codes, and the remembered approvals of its person, client
    /// and redirect URI.
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
    /// The code, spent or not, with its grant and the grant's person's email, in one statement
    /// and without changing anything.
    async fn get_code_exchange(&self, code_hash: &str) -> StoreResult<Option<CodeExchange>>;
    /// Spends the code atomically, storing `refresh` with it in the same transaction when the
    /// code is spent (and not otherwise). An expired, unspent code is `Unknown`.
    async fn redeem_code(
        &self,
        code_hash: &str,
        now: DateTime<Utc>,
        refresh: Option<&RefreshToken>,
    ) -> StoreResult<CodeRedemption>;

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

    // Step-up requests: a grant's token was refused `scope` at the gateway.
    /// Records (or replaces) the grant's step-up request. Nothing is recorded for a grant that
    /// does not exist.
    async fn request_step_up(
        &self,
        grant_id: &str,
        scope: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// Removes the grant's step-up request and returns its scope when it was made at or after
    /// `since`.
    async fn take_step_up(
        &self,
        grant_id: &str,
        since: DateTime<Utc>,
    ) -> StoreResult<Option<String>>;

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

    /// Deletes expired flows, codes, refresh tokens, revoked-token rows, step-up requests and
    /// remembered approvals, and clears the successors of tokens rotated before the grace
    /// window. Redeemed codes are kept for `keep.redeemed_codes` after redemption, so that a
    /// late replay is still recognised (and revokes its grant), and audit events for
    /// `keep.audit`. Returns rows deleted or cleared.
    async fn purge_expired(&self, now: DateTime<Utc>, keep: &Retention) -> StoreResult<u64>;
}

/// How long [`Store::purge_expired`] keeps what is spent but still worth recognising.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// A redeemed code is kept this long after redemption: at least an access token's life,
    /// so a replay while the first code's tokens live still revokes them.
    pub redeemed_codes: chrono::Duration,
    /// A rotated refresh token's successor is kept (encrypted) this long, to answer concurrent
    /// duplicates the same; then it is cleared.
    pub refresh_grace: chrono::Duration,
    /// A step-up request is answered by a refresh within this window.
    pub step_up: chrono::Duration,
    /// Audit events older than this are deleted; `None` keeps them all.
    pub audit: Option<chrono::Duration>,
    /// A grant is deleted once no token issued from it can still be presented: this long
    /// (an access token's life, with a margin) after it was revoked, or after it was issued
    /// when none of its refresh tokens is left. `None` keeps grants.
    pub dead_grants: Option<chrono::Duration>,
    /// A registered client with no grant left is deleted this long after its registration;
    /// `None` keeps clients.
    pub unused_clients: Option<chrono::Duration>,
}

/// The store in use, shared by every handler.
pub type DynStore = Arc<dyn Store>;

/// Connects to `database_url` (`sqlite:…` or `postgres://…`), creating a SQLite file when it is
/// missing. Does not migrate: call [`Store::migrate`].
pub async fn connect(database_url: &str) -> StoreResult<DynStore> {
    if database_url.starts_with("postgres://") || database_url.starts_with("postgresql://") {
        Ok(Arc::new(SqlStore::postgres(database_url).await?))
    } else {
        Ok(Arc::new(SqlStore::sqlite(database_url).await?))
    }
}

/// How a database error is classified: unavailable for now, or wrong.
#[cfg(test)]
mod tests;
