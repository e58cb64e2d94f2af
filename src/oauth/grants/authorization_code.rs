//! The authorization code grant (RFC 6749 §4.1.3, RFC 7636 §4.5, RFC 8707 §2.2).
//!
//! Every check runs before the code is spent, so a request that fails (wrong verifier, wrong
//! redirect URI, another client) changes nothing. A code presented after it was spent is a
//! replay: the grant it produced is revoked (RFC 6749 §4.1.2).

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{issues_refresh_tokens, refresh_token_for, revoke_grant, token_response};
use crate::crypto::sha256_hex;
use crate::oauth::error::{ErrorCode, OAuthError};
use crate::oauth::params::Params;
use crate::oauth::pkce;
use crate::oauth::server::AuthorizationServer;
use crate::store::{AuditEvent, AuditKind, Decision};
use crate::store::{Client, CodeExchange, CodeRedemption};
use crate::telemetry::metrics::{self, TokenEvent};

pub(super) async fn exchange(
    server: &AuthorizationServer,
    client: &Client,
    params: &Params,
    now: DateTime<Utc>,
) -> Result<Value, OAuthError> {
    let code = params.require("code")?;
    let code_hash = sha256_hex(code);
    let CodeExchange {
        code: record,
        grant,
        email,
    } = server
        .store
        .get_code_exchange(&code_hash)
        .await?
        .ok_or_else(|| OAuthError::invalid_grant("the code is unknown or expired"))?;
    if record.redeemed_at.is_some() {
        revoke_grant(server, &record.grant_id, "authorization code replayed", now).await?;
        return Err(OAuthError::invalid_grant("the code was already used"));
    }
    if record.expires_at <= now {
        return Err(OAuthError::invalid_grant("the code is unknown or expired"));
    }
    if record.client_id != client.client_id {
        tracing::warn!(target: "security", event = "code.wrong_client", client_id = %client.client_id);
        return Err(OAuthError::invalid_grant(
            "the code was issued to another client",
        ));
    }
    if params.get("redirect_uri") != Some(record.redirect_uri.as_str()) {
        return Err(OAuthError::invalid_grant(
            "redirect_uri does not match the authorization request",
        ));
    }
    pkce::verify(Some(&record.code_challenge), params.get("code_verifier"))?;
    if grant.revoked_at.is_some() {
        return Err(OAuthError::invalid_grant("the grant was revoked"));
    }
    if let Some(raw) = params.get("resource")
        && server.resources.find(raw).map(|r| r.uri.as_str()) != Some(grant.resource.as_str())
    {
        return Err(OAuthError::new(
            ErrorCode::InvalidTarget,
            "resource differs from the authorization request",
        ));
    }

    // The refresh token is stored in the same transaction that spends the code.
    let refresh =
        issues_refresh_tokens(client).then(|| refresh_token_for(server, &grant, client, now));
    let refresh_record = refresh.as_ref().map(|(_, record)| record);
    match server
        .store
        .redeem_code(&code_hash, now, refresh_record)
        .await?
    {
        CodeRedemption::Redeemed(_) => {}
        CodeRedemption::Replayed(_) => {
            // Lost a race with another request presenting the same code.
            revoke_grant(server, &record.grant_id, "authorization code replayed", now).await?;
            return Err(OAuthError::invalid_grant("the code was already used"));
        }
        CodeRedemption::Unknown => {
            return Err(OAuthError::invalid_grant("the code is unknown or expired"));
        }
    }

    let refresh = refresh.map(|(token, _)| token);
    metrics::token(TokenEvent::Issued);
    server.auditor.record(
        AuditEvent::new(AuditKind::TokenIssued, Decision::Allowed, now)
            .user(grant.user_id.clone(), None)
            .client(client.client_id.clone())
            .reason("authorization_code"),
    );
    token_response(server, &grant, email, &grant.scope, refresh.as_deref(), now)
}
