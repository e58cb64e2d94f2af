//! The authorization request (RFC 6749 §4.1.1 with OAuth 2.1's PKCE and RFC 8707 `resource`).
//!
//! Until `client_id` and `redirect_uri` are known to belong together, an error is shown as a
//! page and never redirected (RFC 6749 §4.1.2.1): otherwise Portcullis would be an open
//! redirector. After that, errors go back to the client with `state` and `iss` (RFC 9207).

use chrono::{DateTime, Utc};
use url::Url;

use super::error::{ErrorCode, FlowError, OAuthError};
use super::params::Params;
use super::pkce;
use super::redirect;
use super::scope::Scopes;
use super::server::AuthorizationServer;
use crate::crypto::{random_token, sha256_hex};
use crate::store::{Flow, FlowData};

const MAX_STATE_LEN: usize = 2048;

/// An authorization error for the client, or a page for the person.
#[derive(Debug)]
pub enum AuthorizeError {
    /// Redirecting is not safe or not possible: the person sees a page.
    Page(FlowError),
    /// Where to send the browser: the client's redirect URI with `error`, `state` and `iss`.
    Redirect(Url),
}

impl From<crate::store::StoreError> for AuthorizeError {
    fn from(error: crate::store::StoreError) -> Self {
        Self::Page(error.into())
    }
}

impl From<FlowError> for AuthorizeError {
    fn from(error: FlowError) -> Self {
        Self::Page(error)
    }
}

/// Where the browser goes next once the request is accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorizeOutcome {
    /// More than one provider: the person picks one.
    ChooseProvider { flow_id: String },
    /// The provider is known: ask for consent.
    Consent { flow_id: String },
}

/// The client's redirect URI with an error, its `state` and our `iss`.
pub fn error_redirect(
    redirect_uri: &str,
    error: &OAuthError,
    client_state: Option<&str>,
    issuer: &str,
) -> Option<Url> {
    let mut params = vec![
        ("error", error.code.as_str()),
        ("error_description", error.description.as_ref()),
    ];
    if let Some(s) = client_state {
        params.push(("state", s));
    }
    params.push(("iss", issuer));
    redirect::with_params(redirect_uri, &params)
}

/// Validates an authorization request and records it as a flow bound to this browser.
pub async fn start(
    server: &AuthorizationServer,
    raw_query: &str,
    browser_secret: &str,
    now: DateTime<Utc>,
) -> Result<AuthorizeOutcome, AuthorizeError> {
    let params = Params::parse(raw_query).map_err(|e| FlowError::InvalidRequest(e.description))?;
    let client_id = params.get("client_id").ok_or(FlowError::MissingClientId)?;
    let client = server
        .clients
        .resolve(client_id, now)
        .await
        .map_err(FlowError::from)?
        .client;
    let redirect_uri = match params.get("redirect_uri") {
        Some(uri) if redirect::matches_registered(&client.redirect_uris, uri) => uri.to_owned(),
        Some(_) => return Err(FlowError::UnregisteredRedirectUri.into()),
        // Required even when only one is registered, so the token request can always be
        // checked against it (OAuth 2.1 §4.1.3).
        None => return Err(FlowError::MissingRedirectUri.into()),
    };

    // From here on the client is known and the redirect URI is its own: errors go back to it.
    let client_state = params.get("state");
    let fail = |error: OAuthError| -> AuthorizeError {
        let state_param = client_state.filter(|s| s.len() <= MAX_STATE_LEN);
        match error_redirect(&redirect_uri, &error, state_param, server.issuer()) {
            Some(url) => AuthorizeError::Redirect(url),
            None => AuthorizeError::Page(FlowError::MalformedRedirectUri),
        }
    };
    if client_state.is_some_and(|s| s.len() > MAX_STATE_LEN) {
        return Err(fail(OAuthError::invalid_request("state is too long")));
    }
    match params.get("response_type") {
        Some("code") => {}
        Some(_) => {
            return Err(fail(OAuthError::new(
                ErrorCode::UnsupportedResponseType,
                "only response_type=code is supported",
            )));
        }
        None => {
            return Err(fail(OAuthError::invalid_request(
                "response_type is required",
            )));
        }
    }
    if params.get("request").is_some() || params.get("request_uri").is_some() {
        return Err(fail(OAuthError::new(
            ErrorCode::InvalidRequest,
            "request objects are not supported",
        )));
    }
    let code_challenge = pkce::validate_challenge(
        params.get("code_challenge"),
        params.get("code_challenge_method"),
    )
    .map_err(&fail)?;
    let scope = match params.get("scope") {
        Some(raw) => Some(Scopes::parse(raw).map_err(&fail)?),
        None => None,
    };
    let resource = match params.get("resource") {
        Some(raw) => server.resources.find(raw),
        None => server.resources.default_resource(),
    }
    .ok_or_else(|| {
        fail(OAuthError::new(
            ErrorCode::InvalidTarget,
            "resource is not a protected resource of this server",
        ))
    })?;

    let provider = (server.providers.len() == 1).then(|| server.providers.all()[0].id().to_owned());
    let flow = Flow {
        id: random_token(32),
        expires_at: now + server.lifetimes.flow,
        data: FlowData {
            client_id: client.client_id,
            redirect_uri,
            state: client_state.map(str::to_owned),
            code_challenge,
            scope: scope.map(|s| s.to_string()).filter(|s| !s.is_empty()),
            resource: resource.uri.clone(),
            browser_hash: sha256_hex(browser_secret),
            csrf: random_token(32),
            provider: provider.clone(),
            upstream: None,
            remembered_user: None,
        },
    };
    server.store.insert_flow(&flow).await?;
    Ok(match provider {
        Some(_) => AuthorizeOutcome::Consent { flow_id: flow.id },
        None => AuthorizeOutcome::ChooseProvider { flow_id: flow.id },
    })
}
