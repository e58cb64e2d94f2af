//! Any OpenID Connect issuer, found through discovery and checked through `openidconnect`.
//!
//! Portcullis keeps its own `state`, `nonce` and PKCE verifier (they live in its flow record),
//! so the library is only asked to build the URL around them and to validate what comes back:
//! the id_token's issuer, audience, expiry, nonce and `at_hash`, and its signature against the
//! provider's JWKS (the arithmetic done with aws-lc: see `id_token`).

use std::borrow::Cow;
use std::sync::{Arc, PoisonError, RwLock};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreClientAuthMethod, CoreErrorResponseType, CoreIdToken,
    CoreJwsSigningAlgorithm, CoreProviderMetadata, CoreTokenResponse, CoreUserInfoClaims,
};
use openidconnect::{
    AccessToken, AuthType, AuthorizationCode, ClientId, ClientSecret, CsrfToken, DiscoveryError,
    EndpointMaybeSet, EndpointNotSet, EndpointSet, IssuerUrl, JsonWebKeySet, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RefreshToken,
    RequestTokenError, Scope, StandardErrorResponse, SubjectIdentifier, TokenResponse,
    UserInfoError,
};
use secrecy::ExposeSecret;
use url::Url;

use super::transport::{HttpClient, HttpError, error_chain};
use super::{AuthorizationRequest, Identity, Provider, ProviderTokens, UpstreamError};
use crate::config::{OidcSettings, Quirks, SubjectFrom};
use id_token::{VerifiedClaims, VerifyError, verify_id_token};

/// The client once discovery has found an authorization and a token endpoint; the userinfo
/// endpoint is optional in OIDC Discovery.
type OidcClient = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
    EndpointMaybeSet,
>;

/// A generic OpenID Connect provider (`kind = "oidc"`).
pub struct OidcProvider {
    id: String,
    display_name: String,
    /// Requested in addition to `openid`, which the client always adds.
    scopes: Vec<Scope>,
    client_id: ClientId,
    client_secret: ClientSecret,
    /// Kept to rebuild the client around a re-fetched JWKS.
    metadata: CoreProviderMetadata,
    /// Swapped whole when the provider rotates its signing keys.
    client: RwLock<Arc<OidcClient>>,
    http: HttpClient,
    /// What its preset knows about it.
    quirks: Quirks,
}

impl std::fmt::Debug for OidcProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcProvider")
            .field("id", &self.id)
            .field("issuer", &self.metadata.issuer().as_str())
            .finish_non_exhaustive()
    }
}

impl OidcProvider {
    /// Fetches the issuer's discovery document and JWKS and builds the client.
    ///
    /// `http` should come from [`super::http_client`] (no redirects, timeouts); a redirect is
    /// refused even when the client would follow it.
    pub async fn discover(
        id: &str,
        display_name: &str,
        settings: &OidcSettings,
        http: reqwest::Client,
    ) -> Result<OidcProvider, UpstreamError> {
        let http = HttpClient::new(http);
        let issuer = &settings.issuer;
        let metadata = discover_metadata(issuer, &http).await?;
        let mut scopes: Vec<Scope> = Vec::new();
        for scope in &settings.scopes {
            if scope != "openid" && !scopes.iter().any(|s| s.as_str() == scope) {
                scopes.push(Scope::new(scope.clone()));
            }
        }
        let client_id = ClientId::new(settings.client_id.clone());
        let client_secret = ClientSecret::new(settings.client_secret.expose_secret().to_owned());
        let client = build_client(&metadata, &client_id, &client_secret)?;
        Ok(OidcProvider {
            id: id.to_owned(),
            display_name: display_name.to_owned(),
            scopes,
            client_id,
            client_secret,
            metadata,
            client: RwLock::new(Arc::new(client)),
            http,
            quirks: settings.quirks.clone(),
        })
    }

    /// The algorithms an id_token may be signed with: what the provider advertises.
    fn allowed_algs(&self) -> &[CoreJwsSigningAlgorithm] {
        self.metadata.id_token_signing_alg_values_supported()
    }

    fn client(&self) -> Arc<OidcClient> {
        // A poisoned lock still holds a complete client: the writer only swaps an `Arc`.
        self.client
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Verifies an id_token, fetching the JWKS again once when it names a key we do not know:
    /// the provider may have rotated its keys since discovery
    /// ([OIDC Core §10.1.1](https://openid.net/specs/openid-connect-core-1_0.html#RotateSigKeys)).
    async fn verify(
        &self,
        id_token: &CoreIdToken,
        nonce: Option<&str>,
        access_token: &AccessToken,
        now: DateTime<Utc>,
    ) -> Result<VerifiedClaims, UpstreamError> {
        // Serialized once: the signature check reads it, and callers keep it.
        let compact = id_token.to_string();
        let verify = || {
            let client = self.client();
            verify_id_token(
                &client,
                self.allowed_algs(),
                id_token,
                &compact,
                nonce,
                access_token,
                now,
            )
        };
        match verify() {
            Err(VerifyError::UnknownKey) => {
                self.refresh_jwks().await?;
                verify().map_err(VerifyError::into_upstream)
            }
            other => other.map_err(VerifyError::into_upstream),
        }
    }

    async fn refresh_jwks(&self) -> Result<(), UpstreamError> {
        let jwks = JsonWebKeySet::fetch_async(self.metadata.jwks_uri(), &self.http)
            .await
            .map_err(|err| match err {
                DiscoveryError::Request(err) => UpstreamError::Transport(err.to_string()),
                other => discovery_error(&other),
            })?;
        let metadata = self.metadata.clone().set_jwks(jwks);
        let client = build_client(&metadata, &self.client_id, &self.client_secret)?;
        *self.client.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(client);
        Ok(())
    }

    /// The email from the userinfo endpoint, for providers that leave it out of the id_token.
    async fn userinfo_email(
        &self,
        access_token: &AccessToken,
        subject: &str,
    ) -> Result<Option<(String, bool)>, UpstreamError> {
        let client = self.client();
        // Asking for the subject makes openidconnect refuse another user's claims
        // (OIDC Core §5.3.2).
        let Ok(request) = client.user_info(
            access_token.clone(),
            Some(SubjectIdentifier::new(subject.to_owned())),
        ) else {
            return Ok(None);
        };
        let claims: CoreUserInfoClaims = request
            .request_async(&self.http)
            .await
            .map_err(userinfo_error)?;
        Ok(claims.email().map(|email| {
            (
                email.as_str().to_owned(),
                claims.email_verified().unwrap_or(false),
            )
        }))
    }
}

#[async_trait]
impl Provider for OidcProvider {
    fn id(&self) -> &str {
        &self.id
    }

    fn display_name(&self) -> &str {
        &self.display_name
    }

    fn authorization_url(&self, request: &AuthorizationRequest<'_>) -> Result<Url, UpstreamError> {
        let challenge = s256_challenge(request.pkce_challenge)?;
        let state = CsrfToken::new(request.state.to_owned());
        let nonce = Nonce::new(request.nonce.to_owned());
        let client = self.client();
        let mut authorize = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                move || state,
                move || nonce,
            )
            .add_scopes(self.scopes.iter().cloned());
        for (name, value) in &self.quirks.extra_params {
            authorize = authorize.add_extra_param(name.clone(), value.clone());
        }
        let (url, _, _) = authorize
            .set_pkce_challenge(challenge)
            .set_redirect_uri(Cow::Owned(RedirectUrl::from_url(
                request.redirect_uri.clone(),
            )))
            .url();
        Ok(url)
    }

    async fn exchange(
        &self,
        code: &str,
        pkce_verifier: &str,
        nonce: &str,
        redirect_uri: &Url,
        now: DateTime<Utc>,
    ) -> Result<Identity, UpstreamError> {
        let client = self.client();
        let response = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_owned()))
            .set_redirect_uri(Cow::Owned(RedirectUrl::from_url(redirect_uri.clone())))
            .request_async(&self.http)
            .await
            .map_err(token_error)?;
        let id_token = response.id_token().ok_or_else(|| {
            UpstreamError::Invalid("the token response carries no id_token".into())
        })?;
        let claims = self
            .verify(id_token, Some(nonce), response.access_token(), now)
            .await?;
        let (email, email_verified) = match claims.email {
            Some(email) => (Some(email), claims.email_verified),
            None => match self
                .userinfo_email(response.access_token(), &claims.subject)
                .await?
            {
                Some((email, verified)) => (Some(email), verified),
                None => (None, false),
            },
        };
        let all_claims = super::verified_claims(&claims.token);
        let subject = match self.quirks.subject {
            SubjectFrom::Sub => claims.subject,
            SubjectFrom::TenantObject => {
                let part = |name: &str| all_claims.get(name).and_then(serde_json::Value::as_str);
                match (part("tid"), part("oid")) {
                    (Some(tid), Some(oid)) => format!("{tid}:{oid}"),
                    _ => {
                        return Err(UpstreamError::Invalid(
                            "the id_token carries no tid and oid".into(),
                        ));
                    }
                }
            }
        };
        Ok(Identity {
            subject,
            email,
            email_verified: email_verified && self.quirks.trust_email_verified,
            name: claims.name,
            claims: all_claims,
            tokens: provider_tokens(&response, Some(claims.token), now),
        })
    }

    async fn refresh(
        &self,
        refresh_token: &str,
        now: DateTime<Utc>,
    ) -> Result<ProviderTokens, UpstreamError> {
        let client = self.client();
        let refresh_token = RefreshToken::new(refresh_token.to_owned());
        let response = client
            .exchange_refresh_token(&refresh_token)
            .request_async(&self.http)
            .await
            .map_err(token_error)?;
        // A refreshed id_token need not carry the nonce (OIDC Core §12.2), but is otherwise
        // checked like the first one before it is handed on.
        let id_token = match response.id_token() {
            Some(id_token) => Some(
                self.verify(id_token, None, response.access_token(), now)
                    .await?
                    .token,
            ),
            None => None,
        };
        Ok(provider_tokens(&response, id_token, now))
    }
}

/// Discovery against the configured issuer. A URL with an empty path always prints with a
/// trailing `/`, yet issuers differ (`https://accounts.google.com` vs `https://x.auth0.com/`)
/// and the discovery document must match byte for byte, so both spellings are tried.
async fn discover_metadata(
    issuer: &Url,
    http: &HttpClient,
) -> Result<CoreProviderMetadata, UpstreamError> {
    let mut candidates = vec![issuer.as_str().to_owned()];
    if issuer.path() == "/" {
        candidates.insert(0, issuer.as_str().trim_end_matches('/').to_owned());
    }
    let mut last = None;
    for candidate in candidates {
        let issuer_url = IssuerUrl::new(candidate)
            .map_err(|err| UpstreamError::Discovery(format!("issuer is not a valid URL: {err}")))?;
        match CoreProviderMetadata::discover_async(issuer_url, http).await {
            Ok(metadata) => return Ok(metadata),
            Err(err @ DiscoveryError::Validation(_)) => last = Some(discovery_error(&err)),
            Err(err) => return Err(discovery_error(&err)),
        }
    }
    Err(last.unwrap_or_else(|| UpstreamError::Discovery("no issuer to discover".into())))
}

fn build_client(
    metadata: &CoreProviderMetadata,
    client_id: &ClientId,
    client_secret: &ClientSecret,
) -> Result<OidcClient, UpstreamError> {
    let token_url = metadata.token_endpoint().cloned().ok_or_else(|| {
        UpstreamError::Discovery("the provider advertises no token_endpoint".into())
    })?;
    // `client_secret_basic` is the default (OIDC Discovery §3); use the form body only for a
    // provider that says it accepts nothing else.
    let methods = metadata.token_endpoint_auth_methods_supported();
    let auth_type = match methods {
        Some(methods)
            if !methods.contains(&CoreClientAuthMethod::ClientSecretBasic)
                && methods.contains(&CoreClientAuthMethod::ClientSecretPost) =>
        {
            AuthType::RequestBody
        }
        _ => AuthType::BasicAuth,
    };
    Ok(CoreClient::from_provider_metadata(
        metadata.clone(),
        client_id.clone(),
        Some(client_secret.clone()),
    )
    .set_token_uri(token_url)
    .set_auth_type(auth_type))
}

/// oauth2 builds a challenge only from a verifier it generated itself; Portcullis owns the
/// verifier, so the challenge is rebuilt through the type's serde form, S256 only.
fn s256_challenge(challenge: &str) -> Result<PkceCodeChallenge, UpstreamError> {
    // RFC 7636 §4.2: BASE64URL(SHA256(verifier)) is always 43 characters.
    let well_formed = challenge.len() == 43
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !well_formed {
        return Err(UpstreamError::Invalid(
            "the PKCE challenge is not an S256 challenge".into(),
        ));
    }
    serde_json::from_value(
        serde_json::json!({ "code_challenge": challenge, "code_challenge_method": "S256" }),
    )
    .map_err(|err| UpstreamError::Invalid(format!("the PKCE challenge cannot be used: {err}")))
}

fn provider_tokens(
    response: &CoreTokenResponse,
    id_token: Option<String>,
    now: DateTime<Utc>,
) -> ProviderTokens {
    ProviderTokens {
        access_token: Some(response.access_token().secret().clone()),
        refresh_token: response.refresh_token().map(|token| token.secret().clone()),
        id_token,
        expires_at: response
            .expires_in()
            .and_then(|ttl| chrono::Duration::from_std(ttl).ok())
            .and_then(|ttl| now.checked_add_signed(ttl)),
    }
}

type TokenError = RequestTokenError<HttpError, StandardErrorResponse<CoreErrorResponseType>>;

/// Only the RFC 6749 §5.2 error code and the JSON path of a parse failure are kept: the body
/// and `error_description` are the provider's words and may echo what was sent.
fn token_error(err: TokenError) -> UpstreamError {
    match err {
        RequestTokenError::ServerResponse(response) => match response.error() {
            CoreErrorResponseType::InvalidGrant => UpstreamError::InvalidGrant,
            other => UpstreamError::Refused(other.as_ref().to_owned()),
        },
        RequestTokenError::Request(err) => UpstreamError::Transport(err.to_string()),
        RequestTokenError::Parse(err, _body) => UpstreamError::Invalid(format!(
            "the token response does not parse at `{}`",
            err.path()
        )),
        RequestTokenError::Other(message) => UpstreamError::Invalid(message),
    }
}

fn userinfo_error(err: UserInfoError<HttpError>) -> UpstreamError {
    match err {
        UserInfoError::Request(err) => UpstreamError::Transport(err.to_string()),
        UserInfoError::Response(status, _body, message) if status.is_client_error() => {
            UpstreamError::Refused(format!("userinfo: {message} ({status})"))
        }
        UserInfoError::Response(status, _body, message) => {
            UpstreamError::Invalid(format!("userinfo: {message} ({status})"))
        }
        UserInfoError::Parse(err) => {
            UpstreamError::Invalid(format!("userinfo does not parse at `{}`", err.path()))
        }
        other => UpstreamError::Invalid(format!("userinfo: {}", error_chain(&other))),
    }
}

/// Discovery documents and JWKS are public, so their errors are reported in full.
fn discovery_error(err: &DiscoveryError<HttpError>) -> UpstreamError {
    UpstreamError::Discovery(error_chain(err))
}

/// What an id_token must be: signature (checked with aws-lc), claims, nonce and `at_hash`.
mod id_token;
/// The OpenID Connect provider against an in-process fake IdP.
#[cfg(test)]
mod tests;
