//! What a backend receives about the caller, chosen per backend by the operator. The client's
//! own bearer token is never among it.

use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use chrono::{DateTime, Utc};
use serde::Serialize;

use std::sync::Arc;

use super::caller::Caller;
use super::error::GatewayError;
use crate::config::{BackendSettings, ForwardMode};
use crate::oauth::tokens::{KeySet, new_jti};
use crate::oauth::upstream_tokens::{UpstreamRefreshError, UpstreamTokenKeeper};

pub const USER: HeaderName = HeaderName::from_static("x-portcullis-user");
pub const EMAIL: HeaderName = HeaderName::from_static("x-portcullis-email");
pub const CLIENT: HeaderName = HeaderName::from_static("x-portcullis-client");
pub const SCOPES: HeaderName = HeaderName::from_static("x-portcullis-scopes");
pub const ASSERTION: HeaderName = HeaderName::from_static("x-portcullis-assertion");
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The `typ` of assertions, distinct from access tokens (`at+jwt`) so neither passes for the other.
pub const ASSERTION_TYP: &str = "portcullis-assertion+jwt";

/// Claims of the assertion a backend receives.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct AssertionClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub client_id: String,
    pub scope: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// Why the caller's identity could not be prepared for the backend.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    #[error(transparent)]
    Upstream(#[from] UpstreamRefreshError),
    #[error("signing the assertion failed")]
    Signing,
}

impl From<ForwardError> for GatewayError {
    /// An ended upstream sign-in is the caller's to renew (401); Portcullis' own database out
    /// of reach is a retry (503); anything else leaves the backend unreachable for this call,
    /// and is logged.
    fn from(error: ForwardError) -> Self {
        match error {
            ForwardError::Upstream(UpstreamRefreshError::Ended) => Self::SignInEnded,
            ForwardError::Upstream(UpstreamRefreshError::StorageUnavailable) => {
                Self::TemporarilyUnavailable
            }
            error @ (ForwardError::Upstream(_) | ForwardError::Signing) => {
                tracing::warn!(%error, "preparing the caller's identity failed");
                Self::Unavailable("the caller's identity could not be prepared for this backend")
            }
        }
    }
}

fn insert(headers: &mut HeaderMap, name: HeaderName, value: &str) {
    // Values come from our own tokens; one that is not a valid header value is left out rather
    // than sent mangled.
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(name, value);
    }
}

/// Prepares what a backend learns about the caller: identity headers, a signed assertion, the
/// upstream access token. Handed to every backend connection at construction.
pub struct IdentityForwarder {
    issuer: String,
    keys: Arc<KeySet>,
    upstream: UpstreamTokenKeeper,
    assertion_ttl: chrono::Duration,
}

impl IdentityForwarder {
    pub fn new(
        issuer: String,
        keys: Arc<KeySet>,
        upstream: UpstreamTokenKeeper,
        assertion_ttl: chrono::Duration,
    ) -> Self {
        Self {
            issuer,
            keys,
            upstream,
            assertion_ttl,
        }
    }

    /// The headers that tell `backend` who is calling.
    pub async fn headers(
        &self,
        backend: &BackendSettings,
        caller: &Caller,
        request_id: &str,
        now: DateTime<Utc>,
    ) -> Result<HeaderMap, ForwardError> {
        let claims = &caller.claims;
        let mut headers = HeaderMap::new();
        insert(&mut headers, REQUEST_ID, request_id);
        // The backend's spans join the caller's trace, as children of Portcullis' own.
        crate::telemetry::trace::inject(&mut headers);
        if backend.forwards(ForwardMode::IdentityHeaders) {
            insert(&mut headers, USER, &claims.sub);
            if let Some(email) = &claims.email {
                insert(&mut headers, EMAIL, email);
            }
            insert(&mut headers, CLIENT, &claims.client_id);
            insert(&mut headers, SCOPES, &claims.scope);
        }
        if backend.forwards(ForwardMode::Assertion) {
            let assertion = AssertionClaims {
                iss: self.issuer.clone(),
                sub: claims.sub.clone(),
                aud: backend.assertion_audience.clone(),
                client_id: claims.client_id.clone(),
                scope: claims.scope.clone(),
                email: claims.email.clone(),
                iat: now.timestamp(),
                exp: (now + self.assertion_ttl).timestamp(),
                jti: new_jti(),
                request_id: Some(request_id.to_owned()),
            };
            let jwt = self
                .keys
                .sign(&assertion, ASSERTION_TYP)
                .map_err(|_| ForwardError::Signing)?;
            insert(&mut headers, ASSERTION, &jwt);
        }
        if backend.forwards(ForwardMode::UpstreamToken)
            && let Some(token) = self.upstream.access_token(&claims.sid, now).await?
        {
            insert(
                &mut headers,
                header::AUTHORIZATION,
                &format!("Bearer {token}"),
            );
        }
        Ok(headers)
    }
}

/// One error for an identity that cannot be prepared, on every endpoint.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_identity_that_cannot_be_prepared_is_one_error_on_every_endpoint() {
        let upstream = |error| GatewayError::from(ForwardError::Upstream(error));
        assert_eq!(
            upstream(UpstreamRefreshError::Ended),
            GatewayError::SignInEnded
        );
        assert_eq!(
            upstream(UpstreamRefreshError::StorageUnavailable),
            GatewayError::TemporarilyUnavailable
        );
        for unreachable in [
            upstream(UpstreamRefreshError::Unavailable),
            upstream(UpstreamRefreshError::Internal),
            GatewayError::from(ForwardError::Signing),
        ] {
            assert!(
                matches!(unreachable, GatewayError::Unavailable(_)),
                "{unreachable:?}"
            );
        }
    }
}
