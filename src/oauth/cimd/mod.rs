//! Who a `client_id` is: a client registered here (RFC 7591), or a Client ID Metadata Document
//! fetched from the URL the `client_id` is (draft-ietf-oauth-client-id-metadata-document, the
//! MCP 2025-11-25 authorization spec's recommended registration).
//!
//! Only an https `client_id` is ever fetched; anything else is looked up as a registered client.
//! A fetched document is cached as its HTTP cache headers say, clamped by the operator's floor
//! and cap, and the last good copy (or a shipped copy for the well-known clients) is used when a
//! refetch fails.

/// Which addresses a document may be fetched from.
pub mod address;
/// The client identifier URL and the document's checks.
pub mod document;
/// The SSRF-guarded fetch.
pub mod fetch;
/// Shipped documents of the well-known clients.
pub mod pinned;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use url::Url;

use self::fetch::{FetchError, Fetcher};
use crate::cluster::Redis;
use crate::config::{CimdHosts, CimdSettings};
use crate::store::{Client, DynStore, StoreError};

/// How long a failed fetch of an unknown document is not retried.
const FAILURE_MEMORY: Duration = Duration::from_secs(30);
/// The most documents kept.
const MAX_DOCUMENTS: u64 = 10_000;
/// The most fetches at once: a flood of `/authorize` requests naming new URLs waits here rather
/// than opening connections without bound.
const MAX_CONCURRENT_FETCHES: usize = 16;

/// Where a client's metadata came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientKind {
    /// Registered here (RFC 7591).
    Registered,
    /// A metadata document; `verified` when its URL is a well-known client's or its host is
    /// one the operator trusts.
    Document { verified: bool },
}

/// A client and where its metadata came from.
#[derive(Debug, Clone)]
pub struct ResolvedClient {
    pub client: Client,
    pub kind: ClientKind,
}

/// Why a `client_id` names no usable client.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No registered client has this id.
    #[error("unknown client")]
    Unknown,
    /// A metadata document URL that is refused (policy, address, or a bad document).
    #[error("{0}")]
    Refused(String),
    /// The document could not be fetched and no copy is at hand.
    #[error("{0}")]
    Unavailable(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug)]
struct Cached {
    client: Client,
    fresh_until: DateTime<Utc>,
}

struct Documents {
    settings: CimdSettings,
    fetcher: Fetcher,
    /// Last good copies, fresh or not: a stale one answers when a refetch fails.
    cache: moka::future::Cache<String, Arc<Cached>>,
    /// URLs whose fetch failed lately, with the reason.
    failures: moka::future::Cache<String, Arc<ClientErrorKind>>,
    fetches: tokio::sync::Semaphore,
    /// With Redis, documents one instance fetched serve the others while they are fresh.
    redis: Option<Redis>,
}

/// A fetched document as the instances share it through Redis.
#[derive(serde::Serialize, serde::Deserialize)]
struct SharedDocument {
    body: String,
    fresh_until: DateTime<Utc>,
}

#[derive(Debug, Clone)]
enum ClientErrorKind {
    Refused(String),
    Unavailable(String),
}

impl From<&ClientErrorKind> for ClientError {
    fn from(kind: &ClientErrorKind) -> Self {
        match kind {
            ClientErrorKind::Refused(why) => Self::Refused(why.clone()),
            ClientErrorKind::Unavailable(why) => Self::Unavailable(why.clone()),
        }
    }
}

/// The Redis name of a document's shared copy: the URL's hash (bounded, no `:`).
fn shared_name(client_id: &str) -> String {
    crate::crypto::sha256_hex(client_id)
}

/// Resolves `client_id`s for the authorize, consent and token endpoints.
pub struct Clients {
    store: DynStore,
    documents: Option<Documents>,
}

impl Clients {
    pub fn new(store: DynStore, settings: &CimdSettings) -> anyhow::Result<Self> {
        let documents = if settings.enabled {
            let keep = settings.max_cache.max(Duration::from_secs(7 * 24 * 3600));
            Some(Documents {
                settings: settings.clone(),
                fetcher: Fetcher::new(settings)?,
                cache: moka::future::Cache::builder()
                    .max_capacity(MAX_DOCUMENTS)
                    .time_to_live(keep)
                    .build(),
                failures: moka::future::Cache::builder()
                    .max_capacity(MAX_DOCUMENTS)
                    .time_to_live(FAILURE_MEMORY)
                    .build(),
                fetches: tokio::sync::Semaphore::new(MAX_CONCURRENT_FETCHES),
                redis: None,
            })
        } else {
            None
        };
        Ok(Self { store, documents })
    }

    /// The same clients, sharing fetched documents with the other instances through `redis`.
    pub fn shared_through(mut self, redis: Option<Redis>) -> Self {
        if let Some(documents) = &mut self.documents {
            documents.redis = redis;
        }
        self
    }

    /// True when metadata document `client_id`s are accepted (and advertised).
    pub fn documents_supported(&self) -> bool {
        self.documents.is_some()
    }

    /// The client `client_id` names.
    pub async fn resolve(
        &self,
        client_id: &str,
        now: DateTime<Utc>,
    ) -> Result<ResolvedClient, ClientError> {
        if !document::is_document_url(client_id) {
            let client = self
                .store
                .get_client(client_id)
                .await?
                .ok_or(ClientError::Unknown)?;
            return Ok(ResolvedClient {
                client,
                kind: ClientKind::Registered,
            });
        }
        let Some(documents) = &self.documents else {
            return Err(ClientError::Refused(
                "this server does not accept client metadata documents".into(),
            ));
        };
        documents.resolve(client_id, now).await
    }
}

impl Documents {
    fn host_allowed(&self, url: &Url) -> bool {
        match (&self.settings.hosts, url.host_str()) {
            (CimdHosts::Any, Some(_)) => true,
            (CimdHosts::Only(hosts), Some(host)) => hosts.iter().any(|h| h == host),
            (_, None) => false,
        }
    }

    fn verified(&self, client_id: &str, url: &Url) -> bool {
        let host = url.host_str().unwrap_or_default();
        (self.settings.pinned && pinned::document(client_id).is_some())
            || self.settings.trusted_hosts.iter().any(|h| h == host)
            || matches!(&self.settings.hosts, CimdHosts::Only(hosts) if hosts.iter().any(|h| h == host))
    }

    async fn resolve(
        &self,
        client_id: &str,
        now: DateTime<Utc>,
    ) -> Result<ResolvedClient, ClientError> {
        let url = document::parse_url(client_id).map_err(|why| {
            tracing::warn!(target: "security", event = "cimd.refused", %client_id, reason = why);
            ClientError::Refused(why.into())
        })?;
        if !self.host_allowed(&url) {
            tracing::warn!(target: "security", event = "cimd.host_not_allowed", %client_id);
            return Err(ClientError::Refused(
                "clients from this host are not accepted here".into(),
            ));
        }
        let kind = ClientKind::Document {
            verified: self.verified(client_id, &url),
        };
        let cached = self.cache.get(client_id).await;
        if let Some(cached) = &cached
            && cached.fresh_until > now
        {
            return Ok(ResolvedClient {
                client: cached.client.clone(),
                kind,
            });
        }
        if let Some(client) = self.shared_copy(client_id, now).await {
            return Ok(ResolvedClient { client, kind });
        }
        let failure = match self.failures.get(client_id).await {
            Some(recent) => (*recent).clone(),
            None => match self.fetch(client_id, &url, now).await {
                Ok(client) => return Ok(ResolvedClient { client, kind }),
                Err(failure) => {
                    self.failures
                        .insert(client_id.to_owned(), Arc::new(failure.clone()))
                        .await;
                    failure
                }
            },
        };
        if let Some(stale) = cached {
            tracing::warn!(event = "cimd.stale_copy_used", %client_id, reason = ?failure);
            return Ok(ResolvedClient {
                client: stale.client.clone(),
                kind,
            });
        }
        if self.settings.pinned
            && let Some(shipped) = pinned::document(client_id)
        {
            tracing::warn!(event = "cimd.pinned_copy_used", %client_id, reason = ?failure);
            let body = shipped.to_string();
            let client = document::client_from_document(client_id, body.as_bytes(), now)
                .map_err(ClientError::Refused)?;
            return Ok(ResolvedClient { client, kind });
        }
        Err(ClientError::from(&failure))
    }

    /// A fresh copy another instance fetched, checked again as if fetched here, and kept.
    async fn shared_copy(&self, client_id: &str, now: DateTime<Utc>) -> Option<Client> {
        let redis = self.redis.as_ref()?;
        let bytes = redis.cache_get("cimd", &shared_name(client_id)).await?;
        let shared: SharedDocument = serde_json::from_slice(&bytes).ok()?;
        if shared.fresh_until <= now {
            return None;
        }
        let client = document::client_from_document(client_id, shared.body.as_bytes(), now).ok()?;
        let cached = Cached {
            client: client.clone(),
            fresh_until: shared.fresh_until,
        };
        self.cache
            .insert(client_id.to_owned(), Arc::new(cached))
            .await;
        Some(client)
    }

    /// Fetches and checks the document; caches a good one as its headers allow.
    async fn fetch(
        &self,
        client_id: &str,
        url: &Url,
        now: DateTime<Utc>,
    ) -> Result<Client, ClientErrorKind> {
        let _permit = self
            .fetches
            .acquire()
            .await
            .map_err(|_| ClientErrorKind::Unavailable("shutting down".into()))?;
        let fetched = self
            .fetcher
            .fetch(url, now.into())
            .await
            .map_err(|error| match error {
                FetchError::Forbidden => ClientErrorKind::Refused(error.to_string()),
                FetchError::Failed(why) => {
                    tracing::warn!(event = "cimd.fetch_failed", %client_id, reason = %why);
                    ClientErrorKind::Unavailable(why)
                }
            })?;
        let client = document::client_from_document(client_id, &fetched.body, now).map_err(
            |why| {
                tracing::warn!(target: "security", event = "cimd.document_refused", %client_id, reason = %why);
                ClientErrorKind::Refused(format!("the client's metadata document is invalid: {why}"))
            },
        )?;
        match fetched.fresh_for {
            Some(fresh_for) => {
                let fresh_for = fresh_for.clamp(self.settings.min_cache, self.settings.max_cache);
                let cached = Cached {
                    client: client.clone(),
                    fresh_until: now + crate::config::chrono_duration(fresh_for),
                };
                self.cache
                    .insert(client_id.to_owned(), Arc::new(cached))
                    .await;
                if let (Some(redis), Ok(body)) = (&self.redis, std::str::from_utf8(&fetched.body)) {
                    let shared = SharedDocument {
                        body: body.to_owned(),
                        fresh_until: now + crate::config::chrono_duration(fresh_for),
                    };
                    if let Ok(bytes) = serde_json::to_vec(&shared) {
                        redis
                            .cache_put("cimd", &shared_name(client_id), &bytes, fresh_for)
                            .await;
                    }
                }
            }
            // `no-store`: not kept, not even as a fallback.
            None => self.cache.invalidate(client_id).await,
        }
        tracing::info!(event = "cimd.fetched", %client_id);
        Ok(client)
    }
}

impl From<ClientError> for crate::oauth::error::FlowError {
    fn from(error: ClientError) -> Self {
        match error {
            ClientError::Unknown => Self::UnknownClient,
            ClientError::Refused(why) => Self::ClientRefused(why),
            ClientError::Unavailable(why) => Self::ClientUnavailable(why),
            ClientError::Store(error) => error.into(),
        }
    }
}

/// At the token, revocation and introspection endpoints every failure to name a client is the
/// same `invalid_client` (RFC 6749 §5.2); a storage failure stays a `server_error`.
impl From<ClientError> for crate::oauth::error::OAuthError {
    fn from(error: ClientError) -> Self {
        match error {
            ClientError::Store(error) => error.into(),
            _ => Self::invalid_client(),
        }
    }
}
