//! The caller's upstream tokens: kept encrypted on the grant, refreshed upstream when expired.
//! Used by the refresh grant and by backends that receive the upstream access token.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::revocation::RevocationView;
use crate::cluster::{Lock, Redis};
use crate::crypto::Secrets;
use crate::store::{DynStore, Grant, StoreError, UpstreamTokens};
use crate::upstream::{ProviderTokens, Providers, UpstreamError};

/// Why the upstream token could not be made fresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UpstreamRefreshError {
    /// The provider answered `invalid_grant` to the refresh: the person's upstream session is
    /// over, and the grant has been revoked.
    #[error("the sign-in at the identity provider has ended")]
    Ended,
    /// The provider could not be reached, or refused for another reason (`invalid_client`,
    /// `temporarily_unavailable`, …); the grant is left alone.
    #[error("the identity provider could not be reached")]
    Unavailable,
    /// Portcullis' own database could not be reached: nothing was decided, try again.
    #[error("the database is unavailable")]
    StorageUnavailable,
    #[error("the upstream tokens could not be used")]
    Internal,
}

impl From<StoreError> for UpstreamRefreshError {
    fn from(error: StoreError) -> Self {
        if error.is_unavailable() {
            tracing::warn!(%error, "the database is unavailable");
            return Self::StorageUnavailable;
        }
        tracing::error!(%error, "storage failed");
        Self::Internal
    }
}

/// Keeps grants' upstream tokens: encrypts what a provider issued, decrypts it for use, and
/// refreshes it upstream when it has expired.
#[derive(Clone)]
pub struct UpstreamTokenKeeper {
    store: DynStore,
    secrets: Secrets,
    providers: Providers,
    revocations: Arc<RevocationView>,
    /// Providers whose grants end with the upstream session (`require_upstream_session`).
    session_bound: Arc<HashSet<String>>,
    /// Upstream refreshes in flight, and just done, by grant and the upstream refresh token they
    /// spend: concurrent callers of one grant (parallel tool calls) share one refresh, so the
    /// provider never sees that refresh token twice from this instance.
    refreshes: moka::future::Cache<(String, String), UpstreamTokens>,
    /// With Redis, one refresh per grant across instances too (a lock per grant).
    redis: Option<Redis>,
}

/// How long a finished refresh answers callers that read the grant before it was stored.
const REFRESH_REUSE: Duration = Duration::from_secs(30);
/// How long one instance's cross-instance refresh lock lasts at most (the provider's answer
/// is long overdue by then).
const REFRESH_LOCK: Duration = Duration::from_secs(20);
/// How long an instance waits for another's refresh of the same grant before it refreshes
/// itself (the stored-token compare-and-swap still keeps the grant right then).
const REFRESH_WAIT: Duration = Duration::from_secs(15);
const REFRESH_POLL: Duration = Duration::from_millis(100);

/// Whose turn it is to refresh a grant upstream.
enum Turn {
    /// This instance's, holding the lock when Redis gave one.
    Ours(Option<Lock>),
    /// Another instance refreshed while this one waited: its tokens.
    Done(UpstreamTokens),
}

impl UpstreamTokenKeeper {
    pub fn new(
        store: DynStore,
        secrets: Secrets,
        providers: Providers,
        revocations: Arc<RevocationView>,
        session_bound: HashSet<String>,
    ) -> Self {
        Self {
            store,
            secrets,
            providers,
            revocations,
            session_bound: Arc::new(session_bound),
            refreshes: moka::future::Cache::builder()
                .time_to_live(REFRESH_REUSE)
                .max_capacity(100_000)
                .build(),
            redis: None,
        }
    }

    /// The same keeper, refreshing each grant once across every instance sharing `redis`.
    pub fn shared_through(mut self, redis: Option<Redis>) -> Self {
        self.redis = redis;
        self
    }

    /// Encrypts what the provider issued, for the grant row.
    pub fn encrypt(&self, tokens: &ProviderTokens) -> UpstreamTokens {
        let encrypt = |token: &Option<String>| token.as_deref().map(|t| self.secrets.encrypt(t));
        UpstreamTokens {
            access_token_enc: encrypt(&tokens.access_token),
            refresh_token_enc: encrypt(&tokens.refresh_token),
            id_token_enc: encrypt(&tokens.id_token),
            expires_at: tokens.expires_at,
        }
    }

    /// Returns the grant with a fresh upstream token: unchanged when it has not expired or
    /// cannot be refreshed (no refresh token), refreshed upstream and stored otherwise. A grant
    /// of a provider with `require_upstream_session` whose token has expired for good ends.
    pub async fn refresh_if_expired(
        &self,
        mut grant: Grant,
        now: DateTime<Utc>,
    ) -> Result<Grant, UpstreamRefreshError> {
        let expired = grant.upstream.expires_at.is_some_and(|at| at <= now);
        let Some(refresh_enc) = grant.upstream.refresh_token_enc.clone().filter(|_| expired) else {
            if expired && self.session_bound.contains(&grant.provider) {
                tracing::warn!(target: "security", event = "upstream.session_over", grant_id = %grant.id, provider = %grant.provider);
                return Err(self.end(&grant.id, now).await?);
            }
            return Ok(grant);
        };
        let key = (grant.id.clone(), refresh_enc.clone());
        let refreshed = self
            .refreshes
            .try_get_with(key, self.refresh(&grant, &refresh_enc, now))
            .await;
        match refreshed {
            Ok(upstream) => {
                grant.upstream = upstream;
                Ok(grant)
            }
            Err(error) => Err(*error),
        }
    }

    /// One upstream refresh of `grant`, by this instance or (with Redis) whichever instance
    /// took the grant's lock first.
    async fn refresh(
        &self,
        grant: &Grant,
        refresh_enc: &str,
        now: DateTime<Utc>,
    ) -> Result<UpstreamTokens, UpstreamRefreshError> {
        let lock = match self.turn(grant, refresh_enc).await? {
            Turn::Done(upstream) => return Ok(upstream),
            Turn::Ours(lock) => lock,
        };
        let refreshed = self.refresh_upstream(grant, refresh_enc, now).await;
        if let Some(lock) = lock {
            lock.release().await;
        }
        refreshed
    }

    /// Waits for this instance's turn to refresh `grant`: at once without Redis; with it,
    /// once no other instance holds the grant's lock (or one finished meanwhile). A Redis
    /// error, or a wait too long, means refreshing without the lock.
    async fn turn(&self, grant: &Grant, refresh_enc: &str) -> Result<Turn, UpstreamRefreshError> {
        let Some(redis) = &self.redis else {
            return Ok(Turn::Ours(None));
        };
        let name = format!("upstream-refresh:{}", grant.id);
        let deadline = tokio::time::Instant::now() + REFRESH_WAIT;
        loop {
            match redis.try_lock(&name, REFRESH_LOCK).await {
                Ok(Some(lock)) => {
                    // The holder before may have just finished: its tokens stand.
                    if let Some(upstream) = self.stored_since(grant, refresh_enc).await? {
                        lock.release().await;
                        return Ok(Turn::Done(upstream));
                    }
                    return Ok(Turn::Ours(Some(lock)));
                }
                Ok(None) => {
                    if let Some(upstream) = self.stored_since(grant, refresh_enc).await? {
                        return Ok(Turn::Done(upstream));
                    }
                    if tokio::time::Instant::now() >= deadline {
                        tracing::warn!(grant_id = %grant.id, "another instance's upstream refresh is taking long; refreshing here");
                        return Ok(Turn::Ours(None));
                    }
                    tokio::time::sleep(REFRESH_POLL).await;
                }
                Err(error) => {
                    tracing::debug!(%error, "no Redis lock for the upstream refresh; refreshing without it");
                    return Ok(Turn::Ours(None));
                }
            }
        }
    }

    /// One upstream refresh of `grant` with its refresh token `refresh_enc`. The new tokens
    /// are stored only while that token is still the grant's (another instance may have
    /// refreshed first: then its tokens are the grant's). The grant ends only on the provider's
    /// `invalid_grant`, and not even then when the grant meanwhile holds another refresh token.
    async fn refresh_upstream(
        &self,
        grant: &Grant,
        refresh_enc: &str,
        now: DateTime<Utc>,
    ) -> Result<UpstreamTokens, UpstreamRefreshError> {
        let provider = self
            .providers
            .get(&grant.provider)
            .ok_or(UpstreamRefreshError::Internal)?;
        let upstream_refresh = self
            .secrets
            .decrypt(refresh_enc)
            .map_err(|_| UpstreamRefreshError::Internal)?;
        match provider.refresh(&upstream_refresh, now).await {
            Ok(mut tokens) => {
                // A provider that does not rotate its refresh token keeps the old one valid.
                if tokens.refresh_token.is_none() {
                    tokens.refresh_token = Some(upstream_refresh);
                }
                let mut upstream = self.encrypt(&tokens);
                if upstream.id_token_enc.is_none() {
                    upstream.id_token_enc = grant.upstream.id_token_enc.clone();
                }
                if self
                    .store
                    .replace_grant_upstream(&grant.id, refresh_enc, &upstream)
                    .await?
                {
                    tracing::info!(target: "audit", event = "upstream.refreshed", grant_id = %grant.id, provider = %grant.provider);
                    return Ok(upstream);
                }
                tracing::info!(event = "upstream.refreshed_elsewhere", grant_id = %grant.id);
                self.stored_since(grant, refresh_enc)
                    .await?
                    .ok_or(UpstreamRefreshError::Ended)
            }
            Err(UpstreamError::InvalidGrant) => {
                if let Some(upstream) = self.stored_since(grant, refresh_enc).await? {
                    // Refused because another instance spent that token first: its tokens
                    // stand.
                    return Ok(upstream);
                }
                tracing::warn!(target: "security", event = "upstream.refresh_refused", grant_id = %grant.id, provider = %grant.provider);
                Err(self.end(&grant.id, now).await?)
            }
            Err(error) => {
                tracing::warn!(event = "upstream.refresh_failed", grant_id = %grant.id, provider = %grant.provider, %error);
                Err(UpstreamRefreshError::Unavailable)
            }
        }
    }

    /// The grant's upstream tokens as stored now, when a refresh other than the one that spent
    /// `refresh_enc` replaced them (and the grant still stands).
    async fn stored_since(
        &self,
        grant: &Grant,
        refresh_enc: &str,
    ) -> Result<Option<UpstreamTokens>, UpstreamRefreshError> {
        Ok(self
            .store
            .get_grant(&grant.id)
            .await?
            .filter(|g| g.revoked_at.is_none())
            .map(|g| g.upstream)
            .filter(|u| u.refresh_token_enc.as_deref() != Some(refresh_enc)))
    }

    /// Revokes the grant whose upstream session is over, here and in the store.
    async fn end(
        &self,
        grant_id: &str,
        now: DateTime<Utc>,
    ) -> Result<UpstreamRefreshError, UpstreamRefreshError> {
        self.store.revoke_grant(grant_id, now).await?;
        self.revocations.note_grant(grant_id, now);
        Ok(UpstreamRefreshError::Ended)
    }

    /// The caller's current upstream access token for grant `grant_id`, refreshed when expired.
    pub async fn access_token(
        &self,
        grant_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<String>, UpstreamRefreshError> {
        let grant = self
            .store
            .get_grant(grant_id)
            .await?
            .filter(|g| g.revoked_at.is_none())
            .ok_or(UpstreamRefreshError::Ended)?;
        let grant = self.refresh_if_expired(grant, now).await?;
        match grant.upstream.access_token_enc.as_deref() {
            Some(enc) => self
                .secrets
                .decrypt(enc)
                .map(Some)
                .map_err(|_| UpstreamRefreshError::Internal),
            None => Ok(None),
        }
    }
}
