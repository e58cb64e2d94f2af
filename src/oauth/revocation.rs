//! Revocation: RFC 7009 for clients, and the in-memory view that lets the hot path reject
//! revoked tokens without a database round trip.

use std::collections::HashMap;
use std::sync::RwLock;

use chrono::{DateTime, Duration, Utc};

use crate::store::{Store, StoreResult};

/// Grants and access tokens known to be revoked, refreshed from the store by polling so that
/// a revocation on one instance reaches the others within one poll interval.
#[derive(Debug, Default)]
pub struct RevocationView {
    inner: RwLock<Seen>,
}

#[derive(Debug, Default)]
struct Seen {
    grants: HashMap<String, DateTime<Utc>>,
    tokens: HashMap<String, DateTime<Utc>>,
    polled_until: Option<DateTime<Utc>>,
}

impl RevocationView {
    /// True when the token or its grant was revoked.
    pub fn is_revoked(&self, jti: &str, sid: &str) -> bool {
        match self.inner.read() {
            Ok(seen) => seen.tokens.contains_key(jti) || seen.grants.contains_key(sid),
            // A poisoned lock means a writer panicked mid-update: refuse rather than guess.
            Err(_) => true,
        }
    }

    pub fn note_grant(&self, sid: &str, at: DateTime<Utc>) {
        if let Ok(mut seen) = self.inner.write() {
            seen.grants.insert(sid.to_owned(), at);
        }
    }

    pub fn note_token(&self, jti: &str, at: DateTime<Utc>) {
        if let Ok(mut seen) = self.inner.write() {
            seen.tokens.insert(jti.to_owned(), at);
        }
    }

    /// Reads revocations since the last poll (with overlap, so clock skew between instances
    /// loses nothing) and forgets those older than any token that could still be valid.
    pub async fn poll(
        &self,
        store: &dyn Store,
        now: DateTime<Utc>,
        max_token_age: Duration,
    ) -> StoreResult<()> {
        let since = self
            .inner
            .read()
            .ok()
            .and_then(|seen| seen.polled_until)
            .map_or(now - max_token_age, |t| t - Duration::seconds(60));
        let grants = store.grants_revoked_since(since).await?;
        let tokens = store.access_tokens_revoked_since(since).await?;
        if let Ok(mut seen) = self.inner.write() {
            seen.grants.extend(grants);
            seen.tokens.extend(tokens);
            let horizon = now - max_token_age - Duration::seconds(120);
            seen.grants.retain(|_, at| *at >= horizon);
            seen.tokens.retain(|_, at| *at >= horizon);
            seen.polled_until = Some(now);
        }
        Ok(())
    }
}
