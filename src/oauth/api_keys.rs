//! API keys for machines (agents in CI, scripts): their format, how one is issued, and what a
//! key may do when it is used. A key is accepted as a bearer token on the MCP endpoints only.

use chrono::{DateTime, Utc};

use super::access::{AccessPolicy, Entitlement};
use crate::crypto::{random_token, sha256_hex};
use crate::store::{ApiKey, Person, Store, StoreResult};

/// Every key starts with this: recognisable in logs, configuration and secret scanners.
pub const PREFIX: &str = "pcs_sk_";
/// How much of a key listings show.
const SHOWN: usize = PREFIX.len() + 6;

/// True when `token` has the shape of an API key (rather than an access token).
pub fn looks_like_key(token: &str) -> bool {
    token.starts_with(PREFIX)
}

/// The stored hash of a key.
pub fn hash(key: &str) -> String {
    sha256_hex(key)
}

/// A new key for `user_id`: the record to store, and the key itself, shown once.
pub fn issue(
    user_id: &str,
    name: &str,
    scopes: &str,
    expires_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> (ApiKey, String) {
    let key = format!("{PREFIX}{}", random_token(32));
    let record = ApiKey {
        id: uuid::Uuid::new_v4().to_string(),
        user_id: user_id.to_owned(),
        name: name.to_owned(),
        key_hash: hash(&key),
        prefix: key[..SHOWN].to_owned(),
        scopes: scopes.to_owned(),
        created_at: now,
        expires_at,
        revoked_at: None,
        last_used_at: None,
    };
    (record, key)
}

/// Why a key is refused. Callers answer all of them the same way (no oracle).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyRefusal {
    #[error("unknown API key")]
    Unknown,
    #[error("revoked API key")]
    Revoked,
    #[error("expired API key")]
    Expired,
    #[error("the API key's owner is disabled or gone")]
    OwnerDisabled,
    /// Not a refusal: the key could not be looked up (the database is out of reach).
    #[error("the API key could not be checked")]
    Unavailable,
}

/// What the owner of a key may do now: their roles (assigned, default, and those their most
/// recent identity's claims give), within that provider's cap.
pub async fn owner_entitlement(
    store: &dyn Store,
    access: &AccessPolicy,
    user_id: &str,
) -> StoreResult<Option<(Person, Entitlement)>> {
    let identities = store.identities_of(user_id).await?;
    let latest = identities.iter().max_by_key(|i| i.last_login_at);
    let provider = latest.map(|i| i.provider.as_str()).unwrap_or_default();
    let Some(person) = store.person(user_id, provider).await? else {
        return Ok(None);
    };
    let entitlement = access.entitlement_of_person(provider, &person);
    Ok(Some((person, entitlement)))
}
