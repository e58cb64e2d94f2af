//! Bearer-token authentication of MCP requests (RFC 6750, MCP authorization spec).
//!
//! The hot path: signature and claims checked locally, revocation looked up in memory. Every
//! failure gets the same 401 (no oracle), with `resource_metadata` so a client can discover
//! where to sign in (RFC 9728 §5.1).

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::oauth::metadata::protected_resource_metadata_url;
use crate::oauth::resource::Resource;
use crate::oauth::tokens::AccessClaims;
use crate::state::AppState;
use crate::store::{AuditKind, Decision};

/// The authenticated caller of an MCP request, put in the request's extensions.
#[derive(Debug, Clone)]
pub struct Caller {
    pub claims: AccessClaims,
}

impl Caller {
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.claims.scope.split(' ').filter(|s| !s.is_empty())
    }
}

/// The 401 for `resource`: `error="invalid_token"` only when a token was sent (RFC 6750 §3.1).
pub fn unauthorized(state: &AppState, resource: &Resource, token_sent: bool) -> Response {
    let metadata = protected_resource_metadata_url(state, resource);
    // RFC 6750 §3: the scope a client should ask for (MCP clients use it when signing in).
    let scope = if resource.basic_scopes.is_empty() {
        String::new()
    } else {
        format!(r#", scope="{}""#, resource.basic_scopes.join(" "))
    };
    let challenge = if token_sent {
        format!(
            r#"Bearer error="invalid_token", error_description="the access token is invalid or expired", resource_metadata="{metadata}"{scope}"#
        )
    } else {
        format!(r#"Bearer resource_metadata="{metadata}"{scope}"#)
    };
    let mut response = (
        StatusCode::UNAUTHORIZED,
        axum::Json(serde_json::json!({
            "error": if token_sent { "invalid_token" } else { "unauthorized" },
            "error_description": "a valid Bearer access token for this resource is required",
        })),
    )
        .into_response();
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

/// The 403 for a call the token's scopes do not cover (RFC 6750 §3.1, MCP step-up). Its
/// `scope` is what the caller holds plus what the call requires: clients sign in again asking
/// for exactly that, and should not lose what they had. The message names the scope required.
pub fn insufficient_scope(
    state: &AppState,
    resource: &Resource,
    required: &str,
    caller: &Caller,
    id: &serde_json::Value,
) -> Response {
    let metadata = protected_resource_metadata_url(state, resource);
    let mut wanted: Vec<&str> = caller.scopes().chain(std::iter::once(required)).collect();
    wanted.sort_unstable();
    wanted.dedup();
    let wanted = wanted.join(" ");
    let challenge = format!(
        r#"Bearer error="insufficient_scope", scope="{wanted}", error_description="this call requires the scope {required}", resource_metadata="{metadata}""#
    );
    let body = super::jsonrpc::error(
        id,
        super::jsonrpc::FORBIDDEN,
        &format!("forbidden: this call requires the scope {required}"),
    );
    let mut response = (StatusCode::FORBIDDEN, axum::Json(body)).into_response();
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

fn bearer(request: &Request) -> Option<Result<&str, ()>> {
    let value = request.headers().get(header::AUTHORIZATION)?;
    let Ok(value) = value.to_str() else {
        return Some(Err(()));
    };
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Some(Err(()));
    }
    Some(Ok(token.trim()))
}

/// Middleware for one protected resource: verifies the token for its audience.
pub async fn require_token(
    State((state, resource)): State<(AppState, Resource)>,
    mut request: Request,
    next: Next,
) -> Response {
    let token = match bearer(&request) {
        None => return unauthorized(&state, &resource, false),
        Some(Err(())) => return unauthorized(&state, &resource, true),
        Some(Ok(token)) => token,
    };
    let now = state.now();
    let claims = match state.keys.verify(token, &state.issuer, &resource.uri, now) {
        Ok(claims) if !state.revocations.is_revoked(&claims.jti, &claims.sid) => claims,
        Ok(claims) => {
            state.auditor.record(
                state
                    .audit_event(AuditKind::RequestDenied, Decision::Denied)
                    .user(claims.sub.clone(), claims.email.as_deref())
                    .client(claims.client_id.clone())
                    .reason(format!("revoked token for {}", resource.uri)),
            );
            return unauthorized(&state, &resource, true);
        }
        Err(reason) => {
            // Who sent it is unknown: the token is not trusted, so nothing in it is recorded.
            state.auditor.record(
                state
                    .audit_event(AuditKind::RequestDenied, Decision::Denied)
                    .reason(format!("rejected token ({reason}) for {}", resource.uri)),
            );
            return unauthorized(&state, &resource, true);
        }
    };
    request.extensions_mut().insert(Caller { claims });
    next.run(request).await
}
