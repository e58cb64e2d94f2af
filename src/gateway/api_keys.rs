//! API keys as bearer tokens on the MCP endpoints. A key is looked up by its hash and judged
//! with its owner's entitlement; the verdict is remembered for a few seconds, so a revoked key
//! or a disabled owner is refused within that time on every instance, and a busy key costs one
//! lookup per interval, not one per call.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::oauth::access::{AccessPolicy, Entitlement};
use crate::oauth::api_keys::{KeyRefusal, hash, owner_entitlement};
use crate::store::{ApiKey, DynStore, StoreError, User};

/// The `client_id` (and session) of a caller using an API key is this and the key's id.
pub const KEY_CLIENT_PREFIX: &str = "api-key:";

/// How long a verdict on a key is remembered: the revocation propagation time.
pub const VERDICT_TTL: Duration = Duration::from_secs(5);
/// A key's last use is written at most this often.
const TOUCH_INTERVAL: Duration = Duration::from_secs(60);

/// A valid key, its owner, and what the owner may do now.
#[derive(Debug, Clone)]
pub struct KeyHolder {
    pub key: ApiKey,
    pub owner: User,
    pub entitlement: Entitlement,
}

type Verdict = Result<Arc<KeyHolder>, KeyRefusal>;

/// Finds and judges API keys.
#[derive(Clone)]
pub struct ApiKeyVerifier {
    store: DynStore,
    access: Arc<AccessPolicy>,
    verdicts: moka::future::Cache<String, Verdict>,
    touched: moka::sync::Cache<String, ()>,
}

impl ApiKeyVerifier {
    pub fn new(store: DynStore, access: Arc<AccessPolicy>) -> Self {
        Self {
            store,
            access,
            verdicts: moka::future::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(VERDICT_TTL)
                .build(),
            touched: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(TOUCH_INTERVAL)
                .build(),
        }
    }

    /// Forgets every remembered verdict: a key was revoked or a person disabled (published by
    /// another instance or the operator's command), so each key is judged again at its next use.
    pub fn forget_verdicts(&self) {
        self.verdicts.invalidate_all();
    }

    /// The holder of `key`, or why it is refused.
    pub async fn verify(&self, key: &str, now: DateTime<Utc>) -> Verdict {
        let key_hash = hash(key);
        let verdict = match self
            .verdicts
            .try_get_with(key_hash.clone(), self.judge(&key_hash, now))
            .await
        {
            Ok(verdict) => verdict?,
            Err(error) if error.is_unavailable() => {
                // Not remembered: the next call looks again.
                tracing::warn!(%error, "looking up an API key: storage unavailable");
                return Err(KeyRefusal::Unavailable);
            }
            Err(error) => {
                // Refused, and not remembered: the next call looks again.
                tracing::error!(%error, "looking up an API key failed");
                return Err(KeyRefusal::Unknown);
            }
        };
        if verdict.key.expires_at.is_some_and(|at| at <= now) {
            return Err(KeyRefusal::Expired);
        }
        if !self.touched.contains_key(&verdict.key.id) {
            self.touched.insert(verdict.key.id.clone(), ());
            if let Err(error) = self.store.touch_api_key(&verdict.key.id, now).await {
                tracing::warn!(%error, "recording an API key's use failed");
            }
        }
        Ok(verdict)
    }

    async fn judge(&self, key_hash: &str, now: DateTime<Utc>) -> Result<Verdict, StoreError> {
        let Some(key) = self.store.api_key_by_hash(key_hash).await? else {
            return Ok(Err(KeyRefusal::Unknown));
        };
        if key.revoked_at.is_some() {
            return Ok(Err(KeyRefusal::Revoked));
        }
        if key.expires_at.is_some_and(|at| at <= now) {
            return Ok(Err(KeyRefusal::Expired));
        }
        let owner = owner_entitlement(self.store.as_ref(), &self.access, &key.user_id).await?;
        Ok(match owner {
            Some((person, entitlement)) if person.user.disabled_at.is_none() => {
                Ok(Arc::new(KeyHolder {
                    key,
                    owner: person.user,
                    entitlement,
                }))
            }
            _ => Err(KeyRefusal::OwnerDisabled),
        })
    }
}
