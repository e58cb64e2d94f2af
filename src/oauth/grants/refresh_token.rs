//! The refresh token grant (RFC 6749 §6, OAuth 2.1 §4.3.1): rotation on every use, a short grace
//! window in which a concurrent duplicate gets the same successor, and reuse after it revokes the
//! whole grant. An expired upstream token is refreshed upstream first.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{new_refresh_token, revoke_grant, token_response};
use crate::crypto::sha256_hex;
use crate::oauth::access::{Candidate, Entitlement, Refusal};
use crate::oauth::error::{ErrorCode, OAuthError};
use crate::oauth::params::Params;
use crate::oauth::scope::Scopes;
use crate::oauth::server::AuthorizationServer;
use crate::oauth::upstream_tokens::UpstreamRefreshError;
use crate::store::{AuditEvent, AuditKind, Decision};
use crate::store::{Client, Grant, RefreshToken};
use crate::telemetry::metrics::{self, TokenEvent};

pub(super) async fn exchange(
    server: &AuthorizationServer,
    client: &Client,
    params: &Params,
    now: DateTime<Utc>,
) -> Result<Value, OAuthError> {
    let presented = params.require("refresh_token")?;
    let token_hash = sha256_hex(presented);
    let invalid = || OAuthError::invalid_grant("the refresh token is invalid, expired or revoked");
    let record = server
        .store
        .get_refresh_token(&token_hash)
        .await?
        .ok_or_else(invalid)?;
    if record.client_id != client.client_id {
        tracing::warn!(target: "security", event = "refresh.wrong_client", client_id = %client.client_id);
        return Err(invalid());
    }
    let grant = server
        .store
        .get_grant(&record.grant_id)
        .await?
        .filter(|g| g.revoked_at.is_none())
        .ok_or_else(invalid)?;
    if record.expires_at <= now {
        return Err(invalid());
    }
    if grant.created_at + server.lifetimes.session <= now {
        return Err(OAuthError::invalid_grant(
            "the session has reached its maximum lifetime; sign in again",
        ));
    }
    let admitted = admitted_scope(server, &grant, params, now).await?;
    step_up(server, &grant, &admitted.entitlement, now).await?;
    if record.rotated_at.is_some() {
        return answer_rotated(server, &grant, &record, admitted, now).await;
    }

    let id_token_before = grant.upstream.id_token_enc.clone();
    let grant = match server.upstream.refresh_if_expired(grant, now).await {
        Ok(grant) => grant,
        Err(UpstreamRefreshError::Ended) => {
            return Err(OAuthError::invalid_grant(
                "the sign-in at the identity provider has ended; sign in again",
            ));
        }
        Err(UpstreamRefreshError::Unavailable) => {
            return Err(OAuthError::temporarily_unavailable(
                "the identity provider could not be reached; try again",
            ));
        }
        Err(UpstreamRefreshError::StorageUnavailable) => {
            return Err(OAuthError::temporarily_unavailable(
                "the service is briefly unavailable; try again",
            ));
        }
        Err(UpstreamRefreshError::Internal) => return Err(OAuthError::server_error()),
    };
    let admitted = if grant.upstream.id_token_enc == id_token_before {
        admitted
    } else {
        // The provider vouched for the person afresh: their groups and roles as it says now.
        renew_claims(server, &grant).await?;
        admitted_scope(server, &grant, params, now).await?
    };
    let successor = new_refresh_token(server, &grant, client, now).await?;
    if !server
        .store
        .rotate_refresh_token(&token_hash, &server.secrets.encrypt(&successor), now)
        .await?
    {
        // A concurrent request rotated it first: drop ours and answer as that one did.
        server
            .store
            .delete_refresh_token(&sha256_hex(&successor))
            .await?;
        let record = server
            .store
            .get_refresh_token(&token_hash)
            .await?
            .ok_or_else(invalid)?;
        return answer_rotated(server, &grant, &record, admitted, now).await;
    }
    metrics::token(TokenEvent::Refreshed);
    server.auditor.record(
        AuditEvent::new(AuditKind::TokenRefreshed, Decision::Allowed, now)
            .user(grant.user_id.clone(), None)
            .client(client.client_id.clone()),
    );
    token_response(
        server,
        &grant,
        admitted.email,
        &admitted.scope,
        Some(&successor),
        now,
    )
}

/// What the next token may carry, by today's rules, and the person's email for it.
struct Admitted {
    /// What the request asks of the grant, within what the person may do today.
    scope: String,
    /// What the person may do today.
    entitlement: Entitlement,
    email: Option<String>,
}

/// The scope of the next token, with what the person may do today and their email. A person
/// no longer admitted ends the grant. A removed role narrows the token; the grant keeps what
/// was consented to, so a role given back restores it.
async fn admitted_scope(
    server: &AuthorizationServer,
    grant: &Grant,
    params: &Params,
    now: DateTime<Utc>,
) -> Result<Admitted, OAuthError> {
    match still_admitted(server, grant).await? {
        Ok((entitlement, email)) => Ok(Admitted {
            scope: entitlement
                .restrict(&Scopes::parse(&narrowed_scope(grant, params)?)?)
                .to_string(),
            entitlement,
            email,
        }),
        Err(refusal) => {
            revoke_grant(server, &grant.id, "the person is no longer admitted", now).await?;
            tracing::warn!(target: "security", event = "refresh.refused", grant_id = %grant.id, %refusal);
            Err(OAuthError::invalid_grant(
                "the person is no longer admitted; sign in again",
            ))
        }
    }
}

/// Step-up for clients that refresh when a call is refused for want of a scope (the TypeScript
/// SDK 1.x, and with it mcp-remote, the Inspector and Claude Code, typescript-sdk#2255): a
/// refresh returns the grant's scopes again, and the call is refused again. So when the gateway
/// refused this grant's token a scope within the last moments, and the person may have that
/// scope but the grant was not consented to it, the refresh answers `invalid_grant` and ends the
/// grant: the client drops its tokens and authorizes again, asking for the scope the 403 named,
/// and the person consents to it. A scope the person may not have changes nothing here: asking
/// again would not help.
async fn step_up(
    server: &AuthorizationServer,
    grant: &Grant,
    entitlement: &Entitlement,
    now: DateTime<Utc>,
) -> Result<(), OAuthError> {
    let since = now - server.lifetimes.step_up();
    let Some(wanted) = server.store.take_step_up(&grant.id, since).await? else {
        return Ok(());
    };
    let consented = Scopes::parse(&grant.scope)?;
    if consented.covers(&wanted) || !entitlement.covers(&wanted) {
        return Ok(());
    }
    revoke_grant(
        server,
        &grant.id,
        "step-up: the client must authorize again for a wider scope",
        now,
    )
    .await?;
    Err(OAuthError::invalid_grant(format!(
        "this grant does not include the scope {wanted}; authorize again asking for it"
    )))
}

/// Keeps the claims of the grant's new id_token with the identity it came through. A claim the
/// new token leaves out keeps its last value (providers trim refreshed id_tokens); one it
/// carries replaces it (a group the person left is gone).
async fn renew_claims(server: &AuthorizationServer, grant: &Grant) -> Result<(), OAuthError> {
    let Some(id_token) = grant
        .upstream
        .id_token_enc
        .as_deref()
        .and_then(|enc| server.secrets.decrypt(enc).ok())
    else {
        return Ok(());
    };
    let identity = server
        .store
        .person(&grant.user_id, &grant.provider)
        .await?
        .and_then(|p| p.identity);
    if let Some(identity) = identity {
        let fresh = server.access.claims_kept(
            &grant.provider,
            &crate::upstream::verified_claims(&id_token),
        );
        let mut claims = identity.claims.clone();
        if let (Some(kept), Some(fresh)) = (claims.as_object_mut(), fresh.as_object()) {
            kept.extend(fresh.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        server
            .store
            .update_identity_claims(&identity.provider, &identity.subject, &claims)
            .await?;
    }
    Ok(())
}

/// The person behind `grant`, judged again by today's rules: switched off, no longer admitted
/// by the provider's rules, or their entitlement now (with their email).
async fn still_admitted(
    server: &AuthorizationServer,
    grant: &Grant,
) -> Result<Result<(Entitlement, Option<String>), Refusal>, OAuthError> {
    let Some(person) = server.store.person(&grant.user_id, &grant.provider).await? else {
        return Ok(Err(Refusal::Disabled));
    };
    if person.user.disabled_at.is_some() {
        return Ok(Err(Refusal::Disabled));
    }
    let no_claims = serde_json::Value::Object(serde_json::Map::new());
    let (email, claims) = match &person.identity {
        Some(identity) => (identity.email.as_deref(), &identity.claims),
        // A person carried over from before identities were kept: their email was verified.
        None => (person.user.email.as_deref(), &no_claims),
    };
    let candidate = Candidate {
        email,
        claims,
        known: true,
    };
    if let Err(refusal) = server.access.admit(&grant.provider, candidate) {
        return Ok(Err(refusal));
    }
    let entitlement = server
        .access
        .entitlement_of_person(&grant.provider, &person);
    Ok(Ok((entitlement, person.user.email)))
}

/// A refresh may ask for fewer scopes than the grant holds, never more (RFC 6749 §6).
fn narrowed_scope(grant: &Grant, params: &Params) -> Result<String, OAuthError> {
    match params.get("scope") {
        None => Ok(grant.scope.clone()),
        Some(raw) => {
            let asked = Scopes::parse(raw)?;
            let held = Scopes::parse(&grant.scope)?;
            if asked.is_subset(&held) {
                Ok(asked.to_string())
            } else {
                Err(OAuthError::new(
                    ErrorCode::InvalidScope,
                    "a refresh cannot add scopes",
                ))
            }
        }
    }
}

/// A token that was already rotated: inside the grace window the duplicate gets the same
/// successor; after it, the reuse means the token leaked, and the grant is revoked.
async fn answer_rotated(
    server: &AuthorizationServer,
    grant: &Grant,
    record: &RefreshToken,
    admitted: Admitted,
    now: DateTime<Utc>,
) -> Result<Value, OAuthError> {
    let grace = server.lifetimes.refresh_grace;
    let successor = match (record.rotated_at, record.successor_enc.as_deref()) {
        (Some(rotated_at), Some(successor_enc)) if now - rotated_at <= grace => {
            server.secrets.decrypt(successor_enc).ok()
        }
        _ => None,
    };
    let still_current = match &successor {
        Some(token) => server
            .store
            .get_refresh_token(&sha256_hex(token))
            .await?
            .is_some_and(|s| s.rotated_at.is_none()),
        None => false,
    };
    match successor {
        Some(token) if still_current => token_response(
            server,
            grant,
            admitted.email,
            &admitted.scope,
            Some(&token),
            now,
        ),
        _ => {
            metrics::refresh_reuse();
            revoke_grant(server, &grant.id, "refresh token reused", now).await?;
            Err(OAuthError::invalid_grant(
                "the refresh token is invalid, expired or revoked",
            ))
        }
    }
}
