//! The token endpoint (RFC 6749 §3.2): authenticate the client, then one function per grant.

/// The authorization code grant.
mod authorization_code;
/// The refresh token grant, with rotation.
mod refresh_token;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::client_auth::{self, BasicCredentials};
use super::error::{ErrorCode, OAuthError};
use super::params::Params;
use super::tokens::{AccessClaims, new_jti};
use crate::crypto::{random_token, sha256_hex};
use crate::oauth::server::AuthorizationServer;
use crate::store::{AuditEvent, AuditKind, Decision};
use crate::store::{Client, Grant, RefreshToken};
use crate::telemetry::metrics::{self, TokenEvent};

/// The grants the token endpoint serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantType {
    /// RFC 6749 §4.1.3.
    AuthorizationCode,
    /// RFC 6749 §6.
    RefreshToken,
}

impl GrantType {
    pub const ALL: [GrantType; 2] = [Self::AuthorizationCode, Self::RefreshToken];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::AuthorizationCode => "authorization_code",
            Self::RefreshToken => "refresh_token",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|g| g.as_str() == raw)
    }
}

/// Answers a token request whose body is `body` (form-encoded).
pub async fn token(
    server: &AuthorizationServer,
    basic: Option<&BasicCredentials>,
    body: &str,
    now: DateTime<Utc>,
) -> Result<Value, OAuthError> {
    let params = Params::parse(body)?;
    let grant_type = params.require("grant_type")?;
    let client = client_auth::authenticate(&server.clients, basic, &params, now).await?;
    let grant_type = GrantType::parse(grant_type).ok_or_else(|| {
        OAuthError::new(
            ErrorCode::UnsupportedGrantType,
            "grant_type must be authorization_code or refresh_token",
        )
    })?;
    if !client.grant_types.iter().any(|g| g == grant_type.as_str()) {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "the client did not register this grant type",
        ));
    }
    match grant_type {
        GrantType::AuthorizationCode => {
            authorization_code::exchange(server, &client, &params, now).await
        }
        GrantType::RefreshToken => refresh_token::exchange(server, &client, &params, now).await,
    }
}

/// Signs an access token for `grant` with `scope`; returns it and its lifetime in seconds.
fn access_token(
    server: &AuthorizationServer,
    grant: &Grant,
    email: Option<String>,
    scope: &str,
    now: DateTime<Utc>,
) -> Result<(String, i64), OAuthError> {
    // Never past the end of the session it belongs to.
    let exp = (now + server.lifetimes.access).min(grant.created_at + server.lifetimes.session);
    let claims = AccessClaims {
        iss: server.issuer().to_owned(),
        sub: grant.user_id.clone(),
        aud: grant.resource.clone(),
        client_id: grant.client_id.clone(),
        scope: scope.to_owned(),
        exp: exp.timestamp(),
        iat: now.timestamp(),
        jti: new_jti(),
        sid: grant.id.clone(),
        email,
    };
    let token = server.keys.issue(&claims).map_err(|error| {
        tracing::error!(%error, "signing an access token failed");
        OAuthError::server_error()
    })?;
    Ok((token, (exp - now).num_seconds().max(0)))
}

/// The RFC 6749 §5.1 response.
///
/// `email` is the person's, for the access token's `email` claim: the caller has it from the
/// statement that read the grant or the person.
fn token_response(
    server: &AuthorizationServer,
    grant: &Grant,
    email: Option<String>,
    scope: &str,
    refresh_token: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Value, OAuthError> {
    let (access_token, expires_in) = access_token(server, grant, email, scope, now)?;
    let mut body = json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": expires_in,
        "scope": scope,
    });
    if let (Some(refresh), Some(object)) = (refresh_token, body.as_object_mut()) {
        object.insert("refresh_token".into(), refresh.into());
    }
    Ok(body)
}

/// A new refresh token for `grant`: the token itself, and its record (by hash) to store.
fn refresh_token_for(
    server: &AuthorizationServer,
    grant: &Grant,
    client: &Client,
    now: DateTime<Utc>,
) -> (String, RefreshToken) {
    let token = random_token(32);
    let record = RefreshToken {
        token_hash: sha256_hex(&token),
        grant_id: grant.id.clone(),
        client_id: client.client_id.clone(),
        created_at: now,
        expires_at: now + server.lifetimes.refresh,
        rotated_at: None,
        successor_enc: None,
    };
    (token, record)
}

/// A new refresh token for `grant`, stored by hash; returns the token itself.
async fn new_refresh_token(
    server: &AuthorizationServer,
    grant: &Grant,
    client: &Client,
    now: DateTime<Utc>,
) -> Result<String, OAuthError> {
    let (token, record) = refresh_token_for(server, grant, client, now);
    server.store.insert_refresh_token(&record).await?;
    Ok(token)
}

fn issues_refresh_tokens(client: &Client) -> bool {
    client
        .grant_types
        .iter()
        .any(|g| g == GrantType::RefreshToken.as_str())
}

/// Revokes a grant everywhere: in the store and in this instance's view at once.
async fn revoke_grant(
    server: &AuthorizationServer,
    grant_id: &str,
    why: &'static str,
    now: DateTime<Utc>,
) -> Result<(), OAuthError> {
    server.store.revoke_grant(grant_id, now).await?;
    server.revocations.note_grant(grant_id, now);
    tracing::warn!(target: "security", event = "grant.revoked", grant_id = %grant_id, reason = why);
    metrics::token(TokenEvent::Revoked);
    server
        .auditor
        .record(AuditEvent::new(AuditKind::TokenRevoked, Decision::Denied, now).reason(why));
    Ok(())
}
