//! Upstream identity providers behind one small trait: where to send the browser, how to turn
//! the returned code into an identity, and how to refresh the upstream token.
//!
//! `oidc` is the generic OpenID Connect implementation (discovery, id_token validation through
//! `openidconnect`); `dev` is the loopback-only development sign-in form.

/// The development sign-in (loopback only).
pub mod dev;
/// A small in-process OpenID provider for the upstream tests.
#[cfg(test)]
mod fake_idp;
/// GitHub and GitHub Enterprise Server (OAuth 2, not OpenID Connect).
pub mod github;
/// Any OpenID Connect issuer, through discovery.
pub mod oidc;
/// The configured providers, built once.
mod registry;
/// reqwest as openidconnect's HTTP client, without redirects.
mod transport;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use url::Url;

pub use registry::Providers;
pub use transport::http_client;

/// What went wrong upstream. Shown to nobody: the handler logs it and answers generically.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// The provider's discovery document or JWKS could not be fetched or used.
    #[error("provider discovery failed: {0}")]
    Discovery(String),
    /// The provider answered `invalid_grant` (RFC 6749 §5.2): the code or refresh token is not
    /// (or no longer) good. For a refresh, the person's upstream session is over.
    #[error("provider refused the grant (invalid_grant)")]
    InvalidGrant,
    /// The provider refused the request for another reason (`invalid_client` after a secret
    /// rotation, `temporarily_unavailable`, …): nothing is known about the person's session.
    #[error("provider refused the request: {0}")]
    Refused(String),
    /// The provider's answer failed validation (id_token signature, nonce, issuer, audience…).
    #[error("provider response is invalid: {0}")]
    Invalid(String),
    /// Network or protocol failure talking to the provider.
    #[error("provider unreachable: {0}")]
    Transport(String),
}

/// What Portcullis asks the provider to do in the browser.
#[derive(Debug, Clone)]
pub struct AuthorizationRequest<'a> {
    /// Portcullis' own `state` for the upstream leg.
    pub state: &'a str,
    pub nonce: &'a str,
    /// PKCE S256 challenge of Portcullis' own verifier.
    pub pkce_challenge: &'a str,
    /// `{public_base_url}/callback/{provider id}`.
    pub redirect_uri: &'a Url,
}

/// Tokens the provider issued, in the clear (the caller encrypts them before storing).
#[derive(Debug, Clone, Default)]
pub struct ProviderTokens {
    pub access_token: Option<String>,
    pub refresh_token: Option<String>,
    pub id_token: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// Who signed in, as the provider vouches.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The provider's stable subject identifier.
    pub subject: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
    /// Every claim the provider asserted (the id_token's payload for OpenID Connect), for the
    /// admission and role rules.
    pub claims: serde_json::Value,
    pub tokens: ProviderTokens,
}

impl Identity {
    /// The email, lower-cased, when the provider verified it; never an unverified one.
    pub fn verified_email(&self) -> Option<String> {
        self.email
            .as_deref()
            .filter(|_| self.email_verified)
            .map(|email| email.trim().to_lowercase())
    }
}

/// The claims of a JWT whose signature was verified (an id_token): its payload, read as JSON
/// (an empty object if it is not, which verification would not have let through).
pub fn verified_claims(jwt: &str) -> serde_json::Value {
    use base64::Engine as _;
    jwt.split('.')
        .nth(1)
        .and_then(|payload| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .ok()
        })
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .filter(serde_json::Value::is_object)
        .unwrap_or_else(|| serde_json::Value::Object(serde_json::Map::new()))
}

/// One upstream identity provider.
#[async_trait]
pub trait Provider: Send + Sync {
    /// The configured id, used in `/callback/{id}`.
    fn id(&self) -> &str;
    /// What the provider-choice page shows.
    fn display_name(&self) -> &str;
    /// Where to send the browser to sign in.
    fn authorization_url(&self, request: &AuthorizationRequest<'_>) -> Result<Url, UpstreamError>;
    /// Exchanges the returned code (with Portcullis' PKCE verifier) and validates the answer,
    /// including the id_token's nonce when there is one.
    async fn exchange(
        &self,
        code: &str,
        pkce_verifier: &str,
        nonce: &str,
        redirect_uri: &Url,
        now: DateTime<Utc>,
    ) -> Result<Identity, UpstreamError>;
    /// Uses an upstream refresh token. A provider that returns no new refresh token keeps the
    /// old one valid: the caller keeps it.
    async fn refresh(
        &self,
        refresh_token: &str,
        now: DateTime<Utc>,
    ) -> Result<ProviderTokens, UpstreamError>;
}
