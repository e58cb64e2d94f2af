//! Rate limits: per client address on the OAuth endpoints, per person, client and API key on
//! the MCP endpoints. The algorithm is `trypema`'s sliding window: in process on one
//! instance; with Redis, its hybrid form (decided from local state, synchronised with Redis
//! every few milliseconds), so every instance counts against one shared limit without a Redis
//! round trip per request. When Redis cannot be reached, limits fail open: a warning, a
//! metric, and the request goes on. A limiter must never be why a request fails.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::HeaderMap;
use ipnet::IpNet;
use sha2::{Digest, Sha256};
use trypema::hybrid::{HybridRateLimiterProvider, SyncInterval};
use trypema::local::LocalRateLimiterProvider;
use trypema::redis::{RedisKey, RedisKeyRef};
use trypema::{BucketSize, RateLimit, RateLimitDecision, RateLimiterBuilder, WindowSize};

use crate::cluster::Redis;
use crate::config::RateLimitSettings;

/// What a limit is counted per.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Register,
    Authorize,
    Token,
    McpPerson,
    McpClient,
    McpApiKey,
}

impl Class {
    /// Every class, in declaration order: `class as usize` is its index here.
    const ALL: [Class; 6] = [
        Class::Register,
        Class::Authorize,
        Class::Token,
        Class::McpPerson,
        Class::McpClient,
        Class::McpApiKey,
    ];

    /// The label in metrics and logs, and the prefix of its keys.
    pub fn name(self) -> &'static str {
        match self {
            Class::Register => "register",
            Class::Authorize => "authorize",
            Class::Token => "token",
            Class::McpPerson => "mcp_person",
            Class::McpClient => "mcp_client",
            Class::McpApiKey => "mcp_api_key",
        }
    }

    fn per_minute(self, settings: &RateLimitSettings) -> Option<u32> {
        match self {
            Class::Register => settings.register,
            Class::Authorize => settings.authorize,
            Class::Token => settings.token,
            Class::McpPerson => settings.mcp_person,
            Class::McpClient => settings.mcp_client,
            Class::McpApiKey => settings.mcp_api_key,
        }
    }
}

/// A request over its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    pub class: Class,
    /// Whole seconds, at least one: what `Retry-After` says.
    pub retry_after_secs: u64,
}

enum Engine {
    Local(Arc<LocalRateLimiterProvider>),
    Shared(Arc<HybridRateLimiterProvider>),
}

/// The window every limit is counted over; the configured rates are per minute.
const WINDOW_SECS: u64 = 60;
/// How long a request waits for Redis before the limit fails open.
const SHARED_TIMEOUT: Duration = Duration::from_millis(250);
/// At most one warning about an unreachable Redis this often.
const WARN_EVERY_SECS: i64 = 30;

/// Every limit of this instance.
pub struct RateLimits {
    enabled: bool,
    trusted_proxies: Vec<IpNet>,
    /// Per class, indexed by the class (declared in [`Class::ALL`] order).
    rates: [Option<RateLimit>; 6],
    engine: Engine,
    last_warning: AtomicI64,
}

impl RateLimits {
    /// The limits of `settings`, shared through `redis` when it is given.
    pub fn new(settings: &RateLimitSettings, redis: Option<&Redis>) -> anyhow::Result<Self> {
        let window = WindowSize::seconds(WINDOW_SECS)?;
        let bucket = BucketSize::seconds(1)?;
        let engine = match redis {
            None => Engine::Local(
                LocalRateLimiterProvider::builder()
                    .window_size(window)
                    .bucket_size(bucket)
                    .build()?,
            ),
            Some(redis) => Engine::Shared(
                HybridRateLimiterProvider::builder(redis.manager())
                    .prefix(RedisKey::try_from(format!("{}_ratelimit", redis.prefix()))?)
                    .sync_interval(SyncInterval::milliseconds(20)?)
                    .window_size(window)
                    .bucket_size(bucket)
                    .build()?,
            ),
        };
        let mut rates = [None; 6];
        for (slot, class) in rates.iter_mut().zip(Class::ALL) {
            *slot = class
                .per_minute(settings)
                .map(|n| RateLimit::per_minute(f64::from(n)))
                .transpose()?;
        }
        Ok(Self {
            enabled: settings.enabled,
            trusted_proxies: settings.trusted_proxies.clone(),
            rates,
            engine,
            last_warning: AtomicI64::new(i64::MIN),
        })
    }

    fn rate(&self, class: Class) -> Option<&RateLimit> {
        self.rates[class as usize].as_ref()
    }

    /// True when `class` has a limit at all (so its subject need not be worked out).
    pub fn limits(&self, class: Class) -> bool {
        self.enabled && self.rate(class).is_some()
    }

    /// Counts one request of `subject` (an address, a person, a client…) against `class`.
    pub async fn check(&self, class: Class, subject: &str) -> Result<(), Limited> {
        if !self.enabled {
            return Ok(());
        }
        let Some(rate) = self.rate(class) else {
            return Ok(());
        };
        let key = key(class, subject);
        let decision = match &self.engine {
            Engine::Local(local) => local.absolute().inc(&key, rate, 1),
            Engine::Shared(shared) => match self.shared(shared, &key, rate).await {
                Some(decision) => decision,
                None => return Ok(()),
            },
        };
        match decision {
            RateLimitDecision::Allowed => Ok(()),
            RateLimitDecision::Suppressed { is_allowed, .. } if is_allowed => Ok(()),
            RateLimitDecision::Rejected { retry_after, .. } => Err(limited(class, retry_after)),
            RateLimitDecision::Suppressed { .. } => Err(limited(class, Duration::from_secs(1))),
        }
    }

    /// The shared decision, or `None` (fail open) when Redis could not be asked.
    async fn shared(
        &self,
        shared: &HybridRateLimiterProvider,
        key: &str,
        rate: &RateLimit,
    ) -> Option<RateLimitDecision> {
        let limiter = shared.absolute();
        let result = match RedisKeyRef::try_from(key).map(|key| limiter.try_inc(key, 1)) {
            Ok(Ok(Some(decision))) => Ok(decision),
            Ok(Ok(None)) => match RedisKey::try_from(key) {
                Ok(owned) => tokio::time::timeout(SHARED_TIMEOUT, limiter.inc(&owned, rate, 1))
                    .await
                    .unwrap_or_else(|_| {
                        Err(trypema::TrypemaError::CustomError("timed out".into()))
                    }),
                Err(error) => Err(error),
            },
            Ok(Err(error)) | Err(error) => Err(error),
        };
        match result {
            Ok(decision) => Some(decision),
            Err(error) => {
                self.fail_open(&error);
                None
            }
        }
    }

    fn fail_open(&self, error: &dyn std::fmt::Display) {
        crate::telemetry::metrics::rate_limit_unavailable();
        let now = chrono::Utc::now().timestamp();
        let last = self.last_warning.load(Ordering::Relaxed);
        if now.saturating_sub(last) >= WARN_EVERY_SECS
            && self
                .last_warning
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(%error, "rate limits cannot reach Redis: requests are let through unlimited until it answers again");
        }
    }

    /// The address a request comes from: the peer's own, unless the peer is a trusted proxy,
    /// in which case `X-Forwarded-For` is read from the right, past every trusted proxy, to
    /// the first address that is not one (a client can prepend anything; only what trusted
    /// proxies appended is believed).
    pub fn client_address(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> Option<IpAddr> {
        let mut client = peer.map(|ip| ip.to_canonical())?;
        if !self.trusted(client) {
            return Some(client);
        }
        let forwarded = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .collect::<Vec<_>>();
        for hop in forwarded.into_iter().rev() {
            let Some(ip) = parse_hop(hop) else {
                break;
            };
            client = ip;
            if !self.trusted(ip) {
                break;
            }
        }
        Some(client)
    }

    fn trusted(&self, ip: IpAddr) -> bool {
        self.trusted_proxies.iter().any(|net| net.contains(&ip))
    }
}

/// One `X-Forwarded-For` entry: an address, possibly with a port (`1.2.3.4:5`, `[::1]:5`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<std::net::SocketAddr>().ok().map(|s| s.ip()))
        .map(|ip| ip.to_canonical())
}

/// The subject an address is limited as: IPv4 addresses one by one, IPv6 by /64 (one host's
/// usual allocation, which it can rotate through at will).
pub fn address_subject(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => IpNet::from(ipnet::Ipv6Net::new_assert(v6, 64).trunc()).to_string(),
    }
}

fn limited(class: Class, retry_after: Duration) -> Limited {
    crate::telemetry::metrics::rate_limited(class.name());
    Limited {
        class,
        retry_after_secs: retry_after.as_secs_f64().ceil().max(1.0) as u64,
    }
}

/// A key of a bounded length and alphabet (Redis keys may not hold `:`), whatever the subject.
fn key(class: Class, subject: &str) -> String {
    let digest = Sha256::digest(subject.as_bytes());
    format!("{}_{}", class.name(), URL_SAFE_NO_PAD.encode(&digest[..18]))
}

/// Limits refuse with a retry time, per subject, and only when enabled.
#[cfg(test)]
mod tests {
    use super::*;

    fn settings(register: u32) -> RateLimitSettings {
        RateLimitSettings {
            enabled: true,
            trusted_proxies: vec!["10.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()],
            register: Some(register),
            authorize: None,
            token: Some(1000),
            mcp_person: None,
            mcp_client: None,
            mcp_api_key: None,
        }
    }

    #[tokio::test]
    async fn a_subject_over_its_limit_is_refused_with_a_retry_time_and_others_are_not() {
        let limits = RateLimits::new(&settings(3), None).unwrap();
        for _ in 0..3 {
            limits.check(Class::Register, "192.0.2.1").await.unwrap();
        }
        let refused = limits
            .check(Class::Register, "192.0.2.1")
            .await
            .unwrap_err();
        assert_eq!(refused.class, Class::Register);
        assert!((1..=60).contains(&refused.retry_after_secs), "{refused:?}");
        // Another address, and the same address in another class, have their own counts.
        limits.check(Class::Register, "192.0.2.2").await.unwrap();
        limits.check(Class::Token, "192.0.2.1").await.unwrap();
        // A class without a limit never refuses.
        for _ in 0..100 {
            limits.check(Class::Authorize, "192.0.2.1").await.unwrap();
        }
    }

    #[tokio::test]
    async fn disabled_limits_refuse_nothing() {
        let mut off = settings(1);
        off.enabled = false;
        let limits = RateLimits::new(&off, None).unwrap();
        for _ in 0..10 {
            limits.check(Class::Register, "192.0.2.1").await.unwrap();
        }
        assert!(!limits.limits(Class::Register));
    }

    fn forwarded(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", value.parse().unwrap());
        headers
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let limits = RateLimits::new(&settings(3), None).unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        // From a stranger: its own address, whatever it claims.
        assert_eq!(
            limits.client_address(Some(ip("198.51.100.7")), &forwarded("203.0.113.9")),
            Some(ip("198.51.100.7"))
        );
        // From a trusted proxy: the last hop it appended.
        assert_eq!(
            limits.client_address(Some(ip("10.1.2.3")), &forwarded("203.0.113.9")),
            Some(ip("203.0.113.9"))
        );
        // A client's forged entry before the real one is not believed; trusted hops are
        // skipped, from the right.
        assert_eq!(
            limits.client_address(
                Some(ip("10.1.2.3")),
                &forwarded("1.1.1.1, 203.0.113.9, 10.9.9.9")
            ),
            Some(ip("203.0.113.9"))
        );
        // Garbage stops the walk at the last good hop; IPv4-mapped and bracketed forms read.
        assert_eq!(
            limits.client_address(Some(ip("::1")), &forwarded("203.0.113.9, junk")),
            Some(ip("::1"))
        );
        assert_eq!(
            limits.client_address(Some(ip("::ffff:10.0.0.1")), &forwarded("[2001:db8::1]:443")),
            Some(ip("2001:db8::1"))
        );
        // No peer known (not served over TCP): nothing to limit by.
        assert_eq!(limits.client_address(None, &HeaderMap::new()), None);
    }

    #[test]
    fn every_class_is_at_its_own_index() {
        for (index, class) in Class::ALL.into_iter().enumerate() {
            assert_eq!(class as usize, index, "{}", class.name());
        }
    }

    #[test]
    fn ipv6_addresses_are_limited_by_their_64_prefix() {
        let a = address_subject("2001:db8:1:2:aaaa::1".parse().unwrap());
        let b = address_subject("2001:db8:1:2:bbbb::2".parse().unwrap());
        let c = address_subject("2001:db8:1:3::1".parse().unwrap());
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(address_subject("192.0.2.1".parse().unwrap()), "192.0.2.1");
    }

    #[test]
    fn keys_are_bounded_and_free_of_colons() {
        let long = "x:".repeat(1000);
        let key = key(Class::McpClient, &long);
        assert!(key.len() < 64 && !key.contains(':'), "{key}");
        assert_ne!(key, super::key(Class::McpClient, "x"));
        assert_ne!(
            super::key(Class::McpClient, "x"),
            super::key(Class::McpPerson, "x")
        );
    }
}
