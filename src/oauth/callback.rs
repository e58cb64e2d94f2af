//! The upstream provider's redirect back: exchange its code, resolve the person, record the
//! grant with the upstream tokens encrypted, and send the client its own single-use code.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use url::Url;

use super::access::{Candidate, Refusal};
use super::authorize::error_redirect;
use super::error::{ErrorCode, FlowError, OAuthError};
use super::params::Params;
use super::server::AuthorizationServer;
use crate::crypto::{random_token, sha256_hex};
use crate::paths;
use crate::store::{Attach, AuthorizationCode, Flow, Grant, SignedIn, User};
use crate::store::{AuditEvent, AuditKind, Decision};
use crate::telemetry::metrics::{self, SignIn};
use crate::upstream::{Identity, UpstreamError};

/// The person who signed in, admitted, with the roles they hold.
struct Admitted {
    user: User,
    roles: BTreeSet<String>,
}

/// Where a first sign-in goes: to the person the operator provisioned with this verified email
/// (who has no identity yet), to the person known by it through another provider when this
/// provider links by email, or to a new person.
async fn attach_for(
    server: &AuthorizationServer,
    provider_id: &str,
    verified_email: Option<&str>,
) -> Result<Attach, FlowError> {
    let Some(email) = verified_email else {
        return Ok(Attach::NewUser);
    };
    let links = server.access.links_by_email(provider_id);
    for user in server.store.users_by_email(email).await? {
        if links || server.store.identities_of(&user.id).await?.is_empty() {
            return Ok(Attach::To(user.id));
        }
    }
    Ok(Attach::NewUser)
}

/// Resolves the person by (provider, subject), applies the provider's admission rules, and
/// records the sign-in. A refusal is audited with its reason and records nothing.
async fn admit(
    server: &AuthorizationServer,
    flow: &Flow,
    provider_id: &str,
    identity: &Identity,
    now: DateTime<Utc>,
) -> Result<Admitted, FlowError> {
    let email = identity.verified_email();
    let known = server
        .store
        .person_by_identity(provider_id, &identity.subject)
        .await?;
    let (attach, existing) = match known {
        Some(person) => (Attach::To(person.user.id.clone()), Some(person)),
        None => match attach_for(server, provider_id, email.as_deref()).await? {
            Attach::To(user_id) => {
                let person = server.store.person(&user_id, provider_id).await?;
                (Attach::To(user_id), person)
            }
            Attach::NewUser => (Attach::NewUser, None),
        },
    };
    let verdict = match &existing {
        Some(person) if person.user.disabled_at.is_some() => Err(Refusal::Disabled),
        _ => server.access.admit(
            provider_id,
            Candidate {
                email: email.as_deref(),
                claims: &identity.claims,
                known: existing.is_some(),
            },
        ),
    };
    if let Err(refusal) = verdict {
        tracing::warn!(target: "security", event = "signin.refused", provider = %provider_id, %refusal);
        metrics::sign_in(provider_id, SignIn::NotAdmitted);
        let mut event = AuditEvent::new(AuditKind::SignIn, Decision::Denied, now)
            .client(flow.data.client_id.clone())
            .reason(format!("not admitted: {refusal}"));
        if let Some(person) = &existing {
            event = event.user(person.user.id.clone(), person.user.email.as_deref());
        }
        server.auditor.record(event);
        let provider_name = server
            .providers
            .get(provider_id)
            .map_or_else(|| provider_id.to_owned(), |p| p.display_name().to_owned());
        return Err(FlowError::NotAdmitted { provider_name });
    }
    let claims = server.access.claims_kept(provider_id, &identity.claims);
    let signed_in = SignedIn {
        provider: provider_id.to_owned(),
        subject: identity.subject.clone(),
        email,
        name: identity.name.clone(),
        claims,
    };
    let user = server
        .store
        .record_sign_in(&signed_in, &attach, now)
        .await?;
    let assigned = existing.map(|p| p.roles).unwrap_or_default();
    let roles = server
        .access
        .roles(provider_id, &assigned, &signed_in.claims);
    Ok(Admitted { user, roles })
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

/// Why a callback took no flow, read without changing it (and logged: each is a security
/// event).
async fn why_not_taken(
    server: &AuthorizationServer,
    provider_id: &str,
    upstream_state: &str,
    now: DateTime<Utc>,
) -> FlowError {
    let flow = match server.store.get_flow(upstream_state, now).await {
        Ok(Some(flow)) => flow,
        Ok(None) => {
            tracing::warn!(target: "security", event = "callback.unknown_state", provider = %provider_id);
            return FlowError::FlowGone;
        }
        Err(error) => return error.into(),
    };
    if flow.data.upstream.is_none() {
        FlowError::FlowGone
    } else if flow.data.provider.as_deref() != Some(provider_id) {
        tracing::warn!(target: "security", event = "callback.provider_mismatch", provider = %provider_id);
        FlowError::FlowGone
    } else {
        tracing::warn!(target: "security", event = "callback.foreign_browser", provider = %provider_id);
        FlowError::ForeignBrowser
    }
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
    // The flow is spent, once, and only by the browser that started it, coming back from the
    // provider it was sent to: a request from any other (a forged or leaked callback URL) must
    // not end the person's sign-in, and a second request with the same state (a reload, a race)
    // finds nothing.
    let taken = match browser_secret {
        Some(secret) => {
            server
                .store
                .take_upstream_flow(upstream_state, &sha256_hex(secret), provider_id, now)
                .await?
        }
        None => None,
    };
    let Some(flow) = taken else {
        return Err(why_not_taken(server, provider_id, upstream_state, now).await);
    };
    let Some(leg) = &flow.data.upstream else {
        return Err(FlowError::FlowGone);
    };
    if let Some(upstream_error) = params.get("error") {
        metrics::sign_in(provider_id, SignIn::UpstreamDenied);
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
            metrics::sign_in(provider_id, SignIn::UpstreamFailed);
            let answer = match error {
                UpstreamError::Transport(_) | UpstreamError::Discovery(_) => {
                    OAuthError::temporarily_unavailable(
                        "the identity provider could not be reached",
                    )
                }
                UpstreamError::InvalidGrant
                | UpstreamError::Refused(_)
                | UpstreamError::Invalid(_) => OAuthError::new(
                    ErrorCode::AccessDenied,
                    "the identity provider's answer was not accepted",
                ),
            };
            return back_to_client(server, &flow, answer);
        }
    };

    let Admitted { user, roles } = admit(server, &flow, provider_id, &identity, now).await?;
    if let Err(error) = super::consent::after_sign_in(server, &flow, &user.id, now).await {
        return back_to_client(server, &flow, error);
    }
    let granted = super::consent::scopes_for(
        server,
        &flow,
        &server.access.entitlement(provider_id, &roles),
    );

    let grant = Grant {
        id: uuid::Uuid::new_v4().to_string(),
        user_id: user.id.clone(),
        client_id: flow.data.client_id.clone(),
        provider: provider_id.to_owned(),
        scope: granted.to_string(),
        resource: flow.data.resource.clone(),
        redirect_uri: Some(flow.data.redirect_uri.clone()),
        upstream: server.upstream.encrypt(&identity.tokens),
        created_at: now,
        revoked_at: None,
    };
    let code = random_token(32);
    let authorization_code = AuthorizationCode {
        code_hash: sha256_hex(&code),
        grant_id: grant.id.clone(),
        client_id: flow.data.client_id.clone(),
        redirect_uri: flow.data.redirect_uri.clone(),
        code_challenge: flow.data.code_challenge.clone(),
        expires_at: now + server.lifetimes.code,
        redeemed_at: None,
    };
    server
        .store
        .insert_grant_with_code(&grant, &authorization_code)
        .await?;
    metrics::sign_in(provider_id, SignIn::Ok);
    server.auditor.record(
        AuditEvent::new(AuditKind::SignIn, Decision::Allowed, now)
            .user(user.id.clone(), user.email.as_deref())
            .client(grant.client_id.clone())
            .reason(format!(
                "signed in with {provider_id}; roles: {}; granted: {}",
                if roles.is_empty() {
                    "none".to_owned()
                } else {
                    roles.into_iter().collect::<Vec<_>>().join(" ")
                },
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
