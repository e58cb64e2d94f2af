//! Revocation: RFC 7009 for clients, and the in-memory view that lets the hot path reject
//! revoked tokens without a database round trip.

use std::collections::HashMap;
use std::sync::RwLock;

use chrono::{DateTime, Duration, Utc};

use crate::cluster::{Event, Redis};
use crate::store::{Store, StoreResult};

/// Grants and access tokens known to be revoked. A revocation made here is published through
/// Redis, when there is one, and reaches the other instances at once; every instance also
/// polls the store, so that without Redis (or while it is down) a revocation reaches the
/// others within one poll interval.
#[derive(Debug, Default)]
pub struct RevocationView {
    inner: RwLock<Seen>,
    redis: Option<Redis>,
}

#[derive(Debug, Default)]
struct Seen {
    grants: HashMap<String, DateTime<Utc>>,
    tokens: HashMap<String, DateTime<Utc>>,
    polled_until: Option<DateTime<Utc>>,
}

impl RevocationView {
    /// A view that publishes the revocations made here to the other instances through `redis`.
    pub fn shared(redis: Redis) -> Self {
        Self {
            inner: RwLock::default(),
            redis: Some(redis),
        }
    }

    /// True when the token or its grant was revoked.
    pub fn is_revoked(&self, jti: &str, sid: &str) -> bool {
        match self.inner.read() {
            Ok(seen) => seen.tokens.contains_key(jti) || seen.grants.contains_key(sid),
            // A poisoned lock means a writer panicked mid-update: refuse rather than guess.
            Err(_) => true,
        }
    }

    /// Records a grant revoked here (already in the store), and tells the other instances.
    pub fn note_grant(&self, sid: &str, at: DateTime<Utc>) {
        self.remember_grant(sid, at);
        if let Some(redis) = &self.redis {
            redis.publish_later(Event::GrantRevoked {
                id: sid.to_owned(),
                at,
            });
        }
    }

    /// Records an access token revoked here (already in the store), and tells the others.
    pub fn note_token(&self, jti: &str, at: DateTime<Utc>) {
        self.remember_token(jti, at);
        if let Some(redis) = &self.redis {
            redis.publish_later(Event::TokenRevoked {
                jti: jti.to_owned(),
                at,
            });
        }
    }

    /// Applies a revocation another instance (or the operator's command) published.
    pub fn apply(&self, event: &Event) {
        match event {
            Event::GrantRevoked { id, at } => self.remember_grant(id, *at),
            Event::TokenRevoked { jti, at } => self.remember_token(jti, *at),
            Event::KeysChanged => {}
        }
    }

    fn remember_grant(&self, sid: &str, at: DateTime<Utc>) {
        if let Ok(mut seen) = self.inner.write() {
            seen.grants.insert(sid.to_owned(), at);
        }
    }

    fn remember_token(&self, jti: &str, at: DateTime<Utc>) {
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
