//! Answers of read-only operations kept for a while, per person: the key covers the backend,
//! the tool, the caller's issuer and subject and the arguments, so one person's data never
//! answers another. Shared through Redis when it is configured (every instance sees an answer
//! once), in this process's memory otherwise.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::cluster::Redis;

/// The most memory cached answers take in one process.
const MAX_MEMORY_BYTES: u64 = 64 * 1024 * 1024;
/// The Redis key kind (`{prefix}:openapi:{key}`).
const KIND: &str = "openapi";

/// One cached answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    result: Value,
    expires: DateTime<Utc>,
}

/// The response cache of every OpenAPI backend.
#[derive(Clone)]
pub struct ResponseCache {
    memory: moka::future::Cache<String, Arc<Entry>>,
    redis: Option<Redis>,
}

impl std::fmt::Debug for ResponseCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseCache")
            .field("entries", &self.memory.entry_count())
            .field("shared", &self.redis.is_some())
            .finish()
    }
}

/// Who asked what: the cache key, as the hex SHA-256 of its parts.
pub fn key(backend: &str, tool: &str, issuer: &str, subject: &str, arguments: &Value) -> String {
    let mut hash = Sha256::new();
    for part in [backend, tool, issuer, subject] {
        // Lengths first, so no two different tuples hash the same bytes.
        hash.update(part.len().to_be_bytes());
        hash.update(part.as_bytes());
    }
    hash.update(canonical(arguments).to_string().as_bytes());
    hex::encode(hash.finalize())
}

/// The arguments with every object's keys in order, so `{"a":1,"b":2}` and `{"b":2,"a":1}`
/// are one question.
fn canonical(value: &Value) -> Value {
    match value {
        Value::Object(object) => {
            let mut keys: Vec<&String> = object.keys().collect();
            keys.sort();
            let mut sorted = Map::new();
            for key in keys {
                sorted.insert(key.clone(), canonical(&object[key]));
            }
            Value::Object(sorted)
        }
        Value::Array(items) => Value::Array(items.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

impl ResponseCache {
    pub fn new(redis: Option<Redis>) -> Self {
        let memory = moka::future::Cache::builder()
            .max_capacity(MAX_MEMORY_BYTES)
            .weigher(|key: &String, entry: &Arc<Entry>| {
                let size = key.len() + entry.result.to_string().len();
                u32::try_from(size).unwrap_or(u32::MAX)
            })
            // No answer is kept longer than configuration allows (a day).
            .time_to_live(Duration::from_secs(86_400))
            .build();
        Self { memory, redis }
    }

    /// The answer stored under `key` and how long it stays fresh, if it still is.
    pub async fn get(&self, key: &str, now: DateTime<Utc>) -> Option<(Value, Duration)> {
        let entry = match &self.redis {
            Some(redis) => {
                let bytes = redis.cache_get(KIND, key).await?;
                Arc::new(serde_json::from_slice::<Entry>(&bytes).ok()?)
            }
            None => self.memory.get(key).await?,
        };
        let left = (entry.expires - now).to_std().ok()?;
        (!left.is_zero()).then(|| (entry.result.clone(), left))
    }

    /// Keeps `result` under `key` for `ttl`.
    pub async fn put(&self, key: String, result: Value, ttl: Duration, now: DateTime<Utc>) {
        let Ok(lifetime) = chrono::Duration::from_std(ttl) else {
            return;
        };
        let entry = Entry {
            result,
            expires: now + lifetime,
        };
        match &self.redis {
            Some(redis) => {
                if let Ok(bytes) = serde_json::to_vec(&entry) {
                    redis.cache_put(KIND, &key, &bytes, ttl).await;
                }
            }
            None => self.memory.insert(key, Arc::new(entry)).await,
        }
    }
}

/// Cache keys per person, tool and arguments, and expiry.
#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_separate_people_tools_and_arguments_but_not_key_order() {
        let args = json!({"a": 1, "b": {"y": 2, "x": [1, {"q": 1, "p": 2}]}});
        let same = json!({"b": {"x": [1, {"p": 2, "q": 1}], "y": 2}, "a": 1});
        let base = key("inv", "list", "https://as", "alice", &args);
        assert_eq!(base, key("inv", "list", "https://as", "alice", &same));
        for other in [
            key("inv", "list", "https://as", "bob", &args),
            key("inv", "list", "https://other", "alice", &args),
            key("inv", "get", "https://as", "alice", &args),
            key("inv2", "list", "https://as", "alice", &args),
            key("inv", "list", "https://as", "alice", &json!({"a": 2})),
            // The parts' boundaries are part of the key.
            key("in", "vlist", "https://as", "alice", &args),
        ] {
            assert_ne!(base, other);
        }
    }

    #[tokio::test]
    async fn answers_expire_on_the_clock() {
        let cache = ResponseCache::new(None);
        let now = Utc::now();
        cache
            .put("k".into(), json!({"n": 1}), Duration::from_secs(30), now)
            .await;
        let (result, left) = cache.get("k", now).await.unwrap();
        assert_eq!((result, left), (json!({"n": 1}), Duration::from_secs(30)));
        let later = now + chrono::Duration::seconds(20);
        assert_eq!(
            cache.get("k", later).await.unwrap().1,
            Duration::from_secs(10)
        );
        assert!(
            cache
                .get("k", now + chrono::Duration::seconds(30))
                .await
                .is_none()
        );
        assert!(cache.get("other", now).await.is_none());
    }
}
