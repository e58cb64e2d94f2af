//! Token introspection (RFC 7662) and revocation (RFC 7009).
//!
//! Both require client authentication, and a client only ever learns about, or revokes, tokens
//! that were issued to it: otherwise any registered client could probe any token.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::client_auth::{self, BasicCredentials};
use super::error::{ErrorCode, OAuthError};
use super::params::Params;
use super::server::AuthorizationServer;
use crate::crypto::sha256_hex;
use crate::store::{AuditEvent, AuditKind, Decision};
use crate::telemetry::metrics::{self, TokenEvent};

/// RFC 7662 §2.2. An inactive, unknown or foreign token is `{"active": false}` and nothing more.
pub async fn introspect(
    server: &AuthorizationServer,
    basic: Option<&BasicCredentials>,
    body: &str,
    now: DateTime<Utc>,
) -> Result<Value, OAuthError> {
    let params = Params::parse(body)?;
    let client = client_auth::authenticate(&server.clients, basic, &params, now).await?;
    let token = params.require("token")?;
    let inactive = json!({ "active": false });

    if let Ok(claims) = server.keys.verify_any_audience(token, server.issuer()) {
        let live = claims.exp > now.timestamp()
            && !server.revocations.is_revoked(&claims.jti, &claims.sid);
        let grant_live = server
            .store
            .get_grant(&claims.sid)
            .await?
            .is_some_and(|g| g.revoked_at.is_none());
        if !live || !grant_live || claims.client_id != client.client_id {
            return Ok(inactive);
        }
        return Ok(json!({
            "active": true,
            "token_type": "Bearer",
            "scope": claims.scope,
            "client_id": claims.client_id,
            "sub": claims.sub,
            "aud": claims.aud,
            "iss": claims.iss,
            "exp": claims.exp,
            "iat": claims.iat,
            "jti": claims.jti,
            "sid": claims.sid,
        }));
    }

    let Some(record) = server.store.get_refresh_token(&sha256_hex(token)).await? else {
        return Ok(inactive);
    };
    let Some(grant) = server.store.get_grant(&record.grant_id).await? else {
        return Ok(inactive);
    };
    if record.client_id != client.client_id
        || record.rotated_at.is_some()
        || record.expires_at <= now
        || grant.revoked_at.is_some()
    {
        return Ok(inactive);
    }
    Ok(json!({
        "active": true,
        "token_type": "refresh_token",
        "scope": grant.scope,
        "client_id": record.client_id,
        "sub": grant.user_id,
        "aud": grant.resource,
        "iss": server.issuer(),
        "exp": record.expires_at.timestamp(),
        "iat": record.created_at.timestamp(),
        "sid": grant.id,
    }))
}

/// RFC 7009 §2. Revoking a refresh token revokes its whole grant, and with it every access
/// token issued from it; revoking an access token revokes that token. Unknown tokens are
/// answered with success (§2.2), tokens of another client are refused.
pub async fn revoke(
    server: &AuthorizationServer,
    basic: Option<&BasicCredentials>,
    body: &str,
    now: DateTime<Utc>,
) -> Result<(), OAuthError> {
    let params = Params::parse(body)?;
    let client = client_auth::authenticate(&server.clients, basic, &params, now).await?;
    let token = params.require("token")?;
    if let Some(hint) = params.get("token_type_hint")
        && hint != "access_token"
        && hint != "refresh_token"
    {
        return Err(OAuthError::new(
            ErrorCode::UnsupportedTokenType,
            "token_type_hint must be access_token or refresh_token",
        ));
    }
    let foreign = || {
        OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "the token was not issued to this client",
        )
    };

    if let Ok(claims) = server.keys.verify_any_audience(token, server.issuer()) {
        if claims.client_id != client.client_id {
            return Err(foreign());
        }
        let expires_at = DateTime::from_timestamp(claims.exp, 0).unwrap_or(now);
        server
            .store
            .revoke_access_token(&claims.jti, expires_at, now)
            .await?;
        server.revocations.note_token(&claims.jti, now);
        metrics::token(TokenEvent::Revoked);
        server.auditor.record(
            AuditEvent::new(AuditKind::TokenRevoked, Decision::Allowed, now)
                .user(claims.sub.clone(), claims.email.as_deref())
                .client(client.client_id.clone())
                .reason("access_token revoked by the client"),
        );
        return Ok(());
    }
    if let Some(record) = server.store.get_refresh_token(&sha256_hex(token)).await? {
        if record.client_id != client.client_id {
            return Err(foreign());
        }
        server.store.revoke_grant(&record.grant_id, now).await?;
        server.revocations.note_grant(&record.grant_id, now);
        metrics::token(TokenEvent::Revoked);
        server.auditor.record(
            AuditEvent::new(AuditKind::TokenRevoked, Decision::Allowed, now)
                .client(client.client_id.clone())
                .reason("refresh_token revoked by the client: the grant ends"),
        );
    }
    Ok(())
}
