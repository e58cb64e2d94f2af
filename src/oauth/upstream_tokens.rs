//! The caller's upstream tokens: kept encrypted on the grant, refreshed upstream when expired.
//! Used by the refresh grant and by backends that receive the upstream access token.

use chrono::{DateTime, Utc};

use super::callback::encrypt_tokens;
use crate::state::AppState;
use crate::store::{Grant, StoreError};
use crate::upstream::UpstreamError;

/// Why the upstream token could not be made fresh.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamRefreshError {
    /// The provider refused the refresh: the person's upstream session is over, and the grant
    /// has been revoked.
    #[error("the sign-in at the identity provider has ended")]
    Ended,
    /// The provider could not be reached; nothing changed.
    #[error("the identity provider could not be reached")]
    Unavailable,
    #[error("the upstream tokens could not be used")]
    Internal,
}

impl From<StoreError> for UpstreamRefreshError {
    fn from(error: StoreError) -> Self {
        tracing::error!(%error, "storage failed");
        Self::Internal
    }
}

/// Returns the grant with a fresh upstream token: unchanged when it has not expired or cannot be
/// refreshed (no refresh token), refreshed upstream and stored otherwise.
pub async fn refresh_if_expired(
    state: &AppState,
    mut grant: Grant,
    now: DateTime<Utc>,
) -> Result<Grant, UpstreamRefreshError> {
    let expired = grant.upstream.expires_at.is_some_and(|at| at <= now);
    let Some(refresh_enc) = grant.upstream.refresh_token_enc.clone().filter(|_| expired) else {
        return Ok(grant);
    };
    let provider = state
        .providers
        .get(&grant.provider)
        .ok_or(UpstreamRefreshError::Internal)?;
    let upstream_refresh = state
        .secrets
        .decrypt(&refresh_enc)
        .map_err(|_| UpstreamRefreshError::Internal)?;
    match provider.refresh(&upstream_refresh, now).await {
        Ok(mut tokens) => {
            // A provider that does not rotate its refresh token keeps the old one valid.
            if tokens.refresh_token.is_none() {
                tokens.refresh_token = Some(upstream_refresh);
            }
            let mut upstream = encrypt_tokens(state, &tokens);
            if upstream.id_token_enc.is_none() {
                upstream.id_token_enc = grant.upstream.id_token_enc.clone();
            }
            state
                .store
                .update_grant_upstream(&grant.id, &upstream)
                .await?;
            tracing::info!(target: "audit", event = "upstream.refreshed", grant_id = %grant.id, provider = %grant.provider);
            grant.upstream = upstream;
            Ok(grant)
        }
        Err(UpstreamError::Refused(reason)) => {
            tracing::warn!(target: "security", event = "upstream.refresh_refused", grant_id = %grant.id, %reason);
            state.store.revoke_grant(&grant.id, now).await?;
            state.revocations.note_grant(&grant.id, now);
            Err(UpstreamRefreshError::Ended)
        }
        Err(error) => {
            tracing::warn!(event = "upstream.refresh_failed", grant_id = %grant.id, %error);
            Err(UpstreamRefreshError::Unavailable)
        }
    }
}

/// The caller's current upstream access token for grant `grant_id`, refreshed when expired.
pub async fn access_token(
    state: &AppState,
    grant_id: &str,
    now: DateTime<Utc>,
) -> Result<Option<String>, UpstreamRefreshError> {
    let grant = state
        .store
        .get_grant(grant_id)
        .await?
        .filter(|g| g.revoked_at.is_none())
        .ok_or(UpstreamRefreshError::Ended)?;
    let grant = refresh_if_expired(state, grant, now).await?;
    match grant.upstream.access_token_enc.as_deref() {
        Some(enc) => state
            .secrets
            .decrypt(enc)
            .map(Some)
            .map_err(|_| UpstreamRefreshError::Internal),
        None => Ok(None),
    }
}
