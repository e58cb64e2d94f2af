//! Redis, when `REDIS_URL` is set: what makes several instances behind a load balancer one.
//!
//! - **Revocations** are published on a channel and applied by every instance at once (the
//!   database poll stays as the fallback, so a Redis outage only slows propagation down).
//! - **Single-flight locks** (`SET NX PX` with an owner token, released by compare-and-delete)
//!   keep instances from refreshing the same upstream token at the same time.
//! - **Shared caches** (client metadata documents, trusted issuers' keys) spare each instance
//!   its own fetch.
//! - Rate-limit state (see `ratelimit`) lives here too.
//!
//! Nothing here is needed for correctness: every caller treats a Redis error as "no help
//! from Redis this time" and carries on. Connections are made lazily and re-made on failure,
//! so an instance starts, and keeps serving, while Redis is down.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde::{Deserialize, Serialize};
use url::Url;

/// How long one Redis command may take before it counts as failed.
const RESPONSE_TIMEOUT: Duration = Duration::from_millis(500);
const CONNECTION_TIMEOUT: Duration = Duration::from_millis(500);
/// How long the subscriber waits before connecting again after losing Redis.
const RESUBSCRIBE_AFTER: Duration = Duration::from_secs(1);

/// Something every instance must learn at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    /// A grant (and every token issued from it) was revoked.
    GrantRevoked { id: String, at: DateTime<Utc> },
    /// One access token was revoked.
    TokenRevoked { jti: String, at: DateTime<Utc> },
    /// An API key was revoked or a person disabled: verdicts on keys must be made again.
    KeysChanged,
}

/// The connection to Redis shared by everything in this process.
#[derive(Clone)]
pub struct Redis {
    client: redis::Client,
    manager: ConnectionManager,
    /// Namespaces every key and channel, so several deployments can share one Redis.
    prefix: Arc<str>,
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redis")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl Redis {
    /// A client for `url`, its keys and channels under `prefix`; no connection is made until
    /// one is needed.
    pub fn new(url: &Url, prefix: &str) -> anyhow::Result<Self> {
        let client = redis::Client::open(url.as_str())
            .map_err(|e| anyhow::anyhow!("`redis_url` (REDIS_URL): {e}"))?;
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_connection_timeout(Some(CONNECTION_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let manager = client
            .get_connection_manager_lazy(config)
            .map_err(|e| anyhow::anyhow!("`redis_url` (REDIS_URL): {e}"))?;
        Ok(Self {
            client,
            manager,
            prefix: Arc::from(prefix),
        })
    }

    pub fn manager(&self) -> ConnectionManager {
        self.manager.clone()
    }

    /// The namespace of this deployment's keys (no `:`, which rate-limit keys may not hold).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn channel(&self) -> String {
        format!("{}:events", self.prefix)
    }

    fn key(&self, kind: &str, name: &str) -> String {
        format!("{}:{kind}:{name}", self.prefix)
    }

    /// True when Redis answers `PING`.
    pub async fn ping(&self) -> Result<(), redis::RedisError> {
        let mut connection = self.manager.clone();
        let _: String = redis::cmd("PING").query_async(&mut connection).await?;
        Ok(())
    }

    /// Tells every instance (this one included) about `event`.
    pub async fn publish(&self, event: &Event) -> Result<(), redis::RedisError> {
        let payload = serde_json::to_string(event).unwrap_or_default();
        let mut connection = self.manager.clone();
        let _: i64 = connection.publish(self.channel(), payload).await?;
        Ok(())
    }

    /// Publishes `event` in the background; a failure is logged, and the database poll
    /// carries the change instead.
    pub fn publish_later(&self, event: Event) {
        let redis = self.clone();
        tokio::spawn(async move {
            if let Err(error) = redis.publish(&event).await {
                tracing::warn!(%error, ?event, "publishing to Redis failed; other instances learn of it by polling");
            }
        });
    }

    /// Calls `apply` with every event published from now on, until the process ends;
    /// reconnects after losing Redis. What is published while this instance is not subscribed
    /// is missed: the database poll, which never stops, catches up with it.
    pub fn subscribe(
        &self,
        apply: impl Fn(Event) + Send + Sync + 'static,
    ) -> tokio::task::JoinHandle<()> {
        let redis = self.clone();
        tokio::spawn(async move {
            let mut lost = false;
            loop {
                match redis.listen(&apply, &mut lost).await {
                    Ok(()) => tracing::warn!("the Redis subscription ended; subscribing again"),
                    Err(error) if !lost => {
                        tracing::warn!(%error, "cannot subscribe to Redis: revocations reach this instance by polling until it answers again");
                    }
                    Err(_) => {}
                }
                lost = true;
                tokio::time::sleep(RESUBSCRIBE_AFTER).await;
            }
        })
    }

    async fn listen(
        &self,
        apply: &(impl Fn(Event) + Send + Sync),
        lost: &mut bool,
    ) -> Result<(), redis::RedisError> {
        let mut pubsub =
            tokio::time::timeout(CONNECTION_TIMEOUT * 4, self.client.get_async_pubsub())
                .await
                .map_err(|_| {
                    redis::RedisError::from((redis::ErrorKind::Io, "connecting timed out"))
                })??;
        pubsub.subscribe(self.channel()).await?;
        if std::mem::take(lost) {
            tracing::info!("subscribed to Redis again: revocations reach this instance at once");
        }
        let mut messages = pubsub.on_message();
        while let Some(message) = messages.next().await {
            let Ok(payload) = message.get_payload::<String>() else {
                continue;
            };
            match serde_json::from_str::<Event>(&payload) {
                Ok(event) => apply(event),
                Err(error) => tracing::debug!(%error, "ignoring an unreadable Redis event"),
            }
        }
        Ok(())
    }

    /// Takes the lock `name` for at most `ttl`, or `None` when another holder has it.
    pub async fn try_lock(
        &self,
        name: &str,
        ttl: Duration,
    ) -> Result<Option<Lock>, redis::RedisError> {
        let key = self.key("lock", name);
        let token = crate::crypto::random_token(16);
        let mut connection = self.manager.clone();
        let taken: Option<String> = redis::cmd("SET")
            .arg(&key)
            .arg(&token)
            .arg("NX")
            .arg("PX")
            .arg(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX))
            .query_async(&mut connection)
            .await?;
        Ok(taken.map(|_| Lock {
            redis: self.clone(),
            key,
            token,
        }))
    }

    /// A cached value of `kind` (e.g. `cimd`) named `name`, if another instance stored one.
    pub async fn cache_get(&self, kind: &str, name: &str) -> Option<Vec<u8>> {
        let mut connection = self.manager.clone();
        match connection
            .get::<_, Option<Vec<u8>>>(self.key(kind, name))
            .await
        {
            Ok(value) => value,
            Err(error) => {
                tracing::debug!(%error, kind, "reading a shared cache from Redis failed");
                None
            }
        }
    }

    /// Stores `value` for the other instances, for `ttl`.
    pub async fn cache_put(&self, kind: &str, name: &str, value: &[u8], ttl: Duration) {
        let mut connection = self.manager.clone();
        let millis = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        if let Err(error) = connection
            .pset_ex::<_, _, ()>(self.key(kind, name), value, millis)
            .await
        {
            tracing::debug!(%error, kind, "writing a shared cache to Redis failed");
        }
    }
}

/// A held lock; [`Lock::release`] gives it up (it also lapses by itself after its time).
pub struct Lock {
    redis: Redis,
    key: String,
    token: String,
}

/// Deletes the lock only if it is still this holder's: one that lapsed and was taken by
/// another holder is left alone.
const RELEASE: &str = r#"
if redis.call("GET", KEYS[1]) == ARGV[1] then
    return redis.call("DEL", KEYS[1])
end
return 0
"#;

impl Lock {
    pub async fn release(self) {
        let mut connection = self.redis.manager.clone();
        let released: Result<i64, _> = redis::Script::new(RELEASE)
            .key(&self.key)
            .arg(&self.token)
            .invoke_async(&mut connection)
            .await;
        if let Err(error) = released {
            tracing::debug!(%error, "releasing a Redis lock failed; it lapses by itself");
        }
    }
}
