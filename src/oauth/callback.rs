//! The upstream provider's redirect back: exchange its code, resolve the person, record the
//! grant with the upstream tokens encrypted, and send the client its own single-use code.

use chrono::{DateTime, Utc};
use url::Url;

use super::authorize::error_redirect;
use super::error::{ErrorCode, FlowError, OAuthError};
use super::params::Params;
use super::server::AuthorizationServer;
use crate::crypto::{constant_time_eq, random_token, sha256_hex};
use crate::paths;
use crate::store::{AuditEvent, AuditKind, Decision};
use crate::store::{AuthorizationCode, Flow, Grant, NewUser};
use crate::upstream::{Identity, UpstreamError};

/// Who the person is to Portcullis: the verified email when there is one, so the same person
/// signing in through two providers is one user; otherwise the provider's subject.
pub fn user_key(provider_id: &str, identity: &Identity) -> NewUser {
    let verified_email = identity
        .email
        .as_ref()
        .filter(|_| identity.email_verified)
        .map(|e| e.trim().to_lowercase());
    let key = match &verified_email {
        Some(email) => format!("email:{email}"),
        None => format!("sub:{provider_id}:{}", identity.subject),
    };
    NewUser {
        key,
        email: verified_email.or_else(|| identity.email.clone()),
        name: identity.name.clone(),
    }
}

fn back_to_client(
    server: &AuthorizationServer,
    flow: &Flow,
    error: OAuthError,
) -> Result<Url, FlowError> {
    error_redirect(
        &flow.data.redirect_uri,
        &error,
        flow.data.state.as_deref(),
        server.issuer(),
    )
    .ok_or(FlowError::Internal)
}

/// Handles `/callback/{provider}`; returns where to send the browser.
pub async fn finish(
    server: &AuthorizationServer,
    provider_id: &str,
    raw_query: &str,
    browser_secret: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Url, FlowError> {
    let params = Params::parse(raw_query).map_err(|_| FlowError::FlowGone)?;
    let upstream_state = params.get("state").ok_or(FlowError::FlowGone)?;
    let Some(flow) = server.store.take_flow(upstream_state, now).await? else {
        tracing::warn!(target: "security", event = "callback.unknown_state", provider = %provider_id);
        return Err(FlowError::FlowGone);
    };
    let (Some(leg), Some(flow_provider)) = (&flow.data.upstream, &flow.data.provider) else {
        return Err(FlowError::FlowGone);
    };
    if flow_provider != provider_id {
        tracing::warn!(target: "security", event = "callback.provider_mismatch", provider = %provider_id);
        return Err(FlowError::FlowGone);
    }
    if !browser_secret
        .is_some_and(|secret| constant_time_eq(&sha256_hex(secret), &flow.data.browser_hash))
    {
        tracing::warn!(target: "security", event = "callback.foreign_browser", provider = %provider_id);
        return Err(FlowError::ForeignBrowser);
    }
    if let Some(upstream_error) = params.get("error") {
        server.auditor.record(
            AuditEvent::new(AuditKind::SignIn, Decision::Denied, now)
                .client(flow.data.client_id.clone())
                .reason(match upstream_error {
                    // Only a well-formed RFC 6749 error code is worth recording; anything else
                    // came from whoever crafted the redirect.
                    code if code.len() <= 64
                        && code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') =>
                    {
                        format!("{provider_id} did not sign the person in: {code}")
                    }
                    _ => format!("{provider_id} did not sign the person in"),
                }),
        );
        return back_to_client(
            server,
            &flow,
            OAuthError::new(
                ErrorCode::AccessDenied,
                "the identity provider did not sign the person in",
            ),
        );
    }
    let Some(code) = params.get("code") else {
        return back_to_client(
            server,
            &flow,
            OAuthError::new(
                ErrorCode::AccessDenied,
                "the identity provider returned no code",
            ),
        );
    };
    let provider = server
        .providers
        .get(provider_id)
        .ok_or(FlowError::FlowGone)?;
    let verifier = server
        .secrets
        .decrypt(&leg.pkce_verifier_enc)
        .map_err(|_| FlowError::Internal)?;
    let redirect_uri = Url::parse(&server.public.url(&paths::callback(provider_id)))
        .map_err(|_| FlowError::Internal)?;
    let identity = match provider
        .exchange(code, &verifier, &leg.nonce, &redirect_uri, now)
        .await
    {
        Ok(identity) => identity,
        Err(error) => {
            tracing::warn!(target: "security", event = "signin.upstream_failed", provider = %provider_id, %error);
            let answer = match error {
                UpstreamError::Transport(_) | UpstreamError::Discovery(_) => {
                    OAuthError::temporarily_unavailable(
                        "the identity provider could not be reached",
                    )
                }
                UpstreamError::Refused(_) | UpstreamError::Invalid(_) => OAuthError::new(
                    ErrorCode::AccessDenied,
                    "the identity provider's answer was not accepted",
                ),
            };
            return back_to_client(server, &flow, answer);
        }
    };

    let user = server
        .store
        .upsert_user(&user_key(provider_id, &identity), now)
        .await?;
    let granted = super::consent::scopes_to_grant(server, &flow, provider_id);

    let grant = Grant {
        id: uuid::Uuid::new_v4().to_string(),
        user_id: user.id.clone(),
        client_id: flow.data.client_id.clone(),
        provider: provider_id.to_owned(),
        scope: granted.to_string(),
        resource: flow.data.resource.clone(),
        upstream: server.upstream.encrypt(&identity.tokens),
        created_at: now,
        revoked_at: None,
    };
    server.store.insert_grant(&grant).await?;
    let code = random_token(32);
    server
        .store
        .insert_code(&AuthorizationCode {
            code_hash: sha256_hex(&code),
            grant_id: grant.id.clone(),
            client_id: flow.data.client_id.clone(),
            redirect_uri: flow.data.redirect_uri.clone(),
            code_challenge: flow.data.code_challenge.clone(),
            expires_at: now + server.lifetimes.code,
            redeemed_at: None,
        })
        .await?;
    server.auditor.record(
        AuditEvent::new(AuditKind::SignIn, Decision::Allowed, now)
            .user(user.id.clone(), user.email.as_deref())
            .client(grant.client_id.clone())
            .reason(format!(
                "signed in with {provider_id}; granted: {}",
                grant.scope
            )),
    );
    let mut params = vec![("code", code.as_str())];
    if let Some(client_state) = flow.data.state.as_deref() {
        params.push(("state", client_state));
    }
    params.push(("iss", server.issuer()));
    super::redirect::with_params(&flow.data.redirect_uri, &params).ok_or(FlowError::Internal)
}
