//! Fetching a metadata document without becoming an SSRF proxy
//! (draft-ietf-oauth-client-id-metadata-document §8.6, §8.7).
//!
//! The host is resolved by a resolver that keeps only public unicast addresses, and the
//! connection goes to exactly those addresses (reqwest connects to what its resolver returns,
//! so there is no second lookup to rebind). IP-literal hosts, which skip the resolver, are
//! checked here before anything is sent. No proxy, no redirect, a timeout, and a size cap
//! enforced while the body streams in.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, SystemTime};

use http_cache_semantics::{CacheOptions, CachePolicy};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::Url;

use super::address::is_public;
use crate::config::CimdSettings;

/// Why a document could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The host is, or resolves only to, an address Portcullis does not fetch from.
    #[error("the client_id URL's host is not a public address")]
    Forbidden,
    #[error("{0}")]
    Failed(String),
}

/// A fetched document and how long its cache headers let it be used.
#[derive(Debug)]
pub struct Fetched {
    pub body: Vec<u8>,
    /// `None` when the response must not be stored (`no-store`).
    pub fresh_for: Option<Duration>,
}

/// The resolver's refusal, recognised again in reqwest's error chain.
#[derive(Debug, thiserror::Error)]
#[error("the name resolves to no public address")]
struct NoPublicAddress;

/// Resolves with the system resolver and keeps the public unicast addresses only.
struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let resolved = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let public: Vec<SocketAddr> = resolved.filter(|a| is_public(a.ip())).collect();
            if public.is_empty() {
                tracing::warn!(target: "security", event = "cimd.address_refused", %host);
                return Err(Box::new(NoPublicAddress) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(public.into_iter()) as Addrs)
        })
    }
}

/// Fetches metadata documents.
pub struct Fetcher {
    http: reqwest::Client,
    max_bytes: usize,
    /// Loopback servers a test may use (accepted only on a loopback Portcullis).
    loopback_hosts: Vec<SocketAddr>,
}

impl Fetcher {
    pub fn new(settings: &CimdSettings) -> anyhow::Result<Self> {
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .https_only(true)
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            .user_agent(concat!("Portcullis/", env!("CARGO_PKG_VERSION")))
            .dns_resolver(std::sync::Arc::new(PublicOnly));
        if let Some(path) = &settings.ca_file {
            let pem = std::fs::read(path)?;
            builder = builder.tls_certs_merge(reqwest::Certificate::from_pem_bundle(&pem)?);
        }
        Ok(Self {
            http: builder.build()?,
            max_bytes: settings.max_document_bytes,
            loopback_hosts: settings.loopback_hosts.clone(),
        })
    }

    /// True when the URL's host may be contacted before any resolution: a DNS name (the
    /// resolver checks it), a public IP literal, or a loopback server the operator listed.
    fn literal_allowed(&self, url: &Url) -> bool {
        let ip = match url.host() {
            Some(url::Host::Domain(_)) => return true,
            Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip),
            Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip),
            None => return false,
        };
        let port = url.port_or_known_default().unwrap_or(443);
        is_public(ip) || self.loopback_hosts.contains(&SocketAddr::new(ip, port))
    }

    /// GETs `url` and returns its body if it is a 200 within the size cap.
    pub async fn fetch(&self, url: &Url, now: SystemTime) -> Result<Fetched, FetchError> {
        if !self.literal_allowed(url) {
            tracing::warn!(target: "security", event = "cimd.address_refused", host = ?url.host_str());
            return Err(FetchError::Forbidden);
        }
        let request = self
            .http
            .get(url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .build()
            .map_err(|e| FetchError::Failed(describe(&e)))?;
        let policy_request = request
            .try_clone()
            .ok_or_else(|| FetchError::Failed("the request cannot be built".into()))?;
        let mut response = self.http.execute(request).await.map_err(|e| classify(&e))?;
        if response.status() != reqwest::StatusCode::OK {
            // Redirects included: the draft forbids following them.
            return Err(FetchError::Failed(format!(
                "the document URL answered {}",
                response.status().as_u16()
            )));
        }
        if response
            .content_length()
            .is_some_and(|length| length > self.max_bytes as u64)
        {
            return Err(FetchError::Failed("the document is too large".into()));
        }
        let policy = CachePolicy::new_options(
            &policy_request,
            &response,
            now,
            CacheOptions {
                shared: false,
                ..CacheOptions::default()
            },
        );
        let fresh_for = policy.is_storable().then(|| policy.time_to_live(now));
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| classify(&e))? {
            if body.len() + chunk.len() > self.max_bytes {
                return Err(FetchError::Failed("the document is too large".into()));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Fetched { body, fresh_for })
    }
}

/// A transport error: the resolver's refusal is `Forbidden`, the rest a short description.
fn classify(error: &reqwest::Error) -> FetchError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = source {
        if current.is::<NoPublicAddress>() {
            return FetchError::Forbidden;
        }
        source = current.source();
    }
    FetchError::Failed(describe(error))
}

fn describe(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        "fetching the document timed out".into()
    } else if error.is_connect() {
        "the document's host could not be reached".into()
    } else {
        "the document could not be fetched".into()
    }
}

/// No fetch reaches a private or loopback address unless listed.
#[cfg(test)]
mod tests {
    use super::*;

    fn fetcher(loopback: &[&str]) -> Fetcher {
        let mut settings = crate::config::Settings::from_toml("").unwrap().cimd;
        settings.loopback_hosts = loopback.iter().map(|a| a.parse().unwrap()).collect();
        Fetcher::new(&settings).unwrap()
    }

    #[tokio::test]
    async fn private_literals_and_names_that_resolve_to_loopback_are_never_contacted() {
        let fetcher = fetcher(&[]);
        for url in [
            "https://127.0.0.1/client",
            "https://[::1]/client",
            "https://169.254.169.254/latest/meta-data",
            "https://10.0.0.1/client",
            "https://[::ffff:192.168.0.1]/client",
            "https://localhost/client",
        ] {
            let result = fetcher
                .fetch(&Url::parse(url).unwrap(), SystemTime::now())
                .await;
            assert!(
                matches!(result, Err(FetchError::Forbidden)),
                "{url}: {result:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_listed_loopback_server_is_allowed_on_its_port_only() {
        let fetcher = fetcher(&["127.0.0.1:9"]);
        let other_port = fetcher
            .fetch(
                &Url::parse("https://127.0.0.1:10/client").unwrap(),
                SystemTime::now(),
            )
            .await;
        assert!(matches!(other_port, Err(FetchError::Forbidden)));
        // Port 9 (discard) has no TLS server: the attempt is made and fails as a transport
        // error, not as a refusal.
        let listed = fetcher
            .fetch(
                &Url::parse("https://127.0.0.1:9/client").unwrap(),
                SystemTime::now(),
            )
            .await;
        assert!(matches!(listed, Err(FetchError::Failed(_))), "{listed:?}");
    }
}
