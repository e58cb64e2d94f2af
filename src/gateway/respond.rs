//! The HTTP answers every MCP endpoint shares: the 401 challenge, the step-up 403, and
//! JSON-RPC errors with the status the error vocabulary gives them.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::caller::{Caller, Unauthenticated};
use super::error::GatewayError;
use crate::oauth::resource::{GrantMode, Resource};
use crate::ratelimit::Limited;

/// The 401 for `resource`: `error="invalid_token"` only when a token was sent (RFC 6750 §3.1),
/// `resource_metadata` so a client can discover where to sign in (RFC 9728 §5.1), and, when the
/// resource grants what was requested, its basic scopes, so clients start with least privilege.
/// A resource that grants the person's entitlement names no scope: clients echo it, and would
/// then ask for less than the person may have.
pub fn unauthorized(resource: &Resource, why: Unauthenticated) -> Response {
    if why == Unauthenticated::Unavailable {
        // The credential could not be checked at all: not a refusal, so no challenge.
        return error(
            &GatewayError::TemporarilyUnavailable,
            &Value::Null,
            false,
            resource,
            None,
        );
    }
    let metadata = &resource.metadata_url;
    let scope = if resource.basic_scopes.is_empty() || resource.grant == GrantMode::Entitlement {
        String::new()
    } else {
        format!(r#", scope="{}""#, resource.basic_scopes.join(" "))
    };
    let token_sent = why == Unauthenticated::InvalidToken;
    let challenge = if token_sent {
        format!(
            r#"Bearer error="invalid_token", error_description="the access token is invalid or expired", resource_metadata="{metadata}"{scope}"#
        )
    } else {
        format!(r#"Bearer resource_metadata="{metadata}"{scope}"#)
    };
    let body = serde_json::json!({
        "error": if token_sent { "invalid_token" } else { "unauthorized" },
        "error_description": "a valid Bearer access token for this resource is required",
    });
    with_challenge(
        (StatusCode::UNAUTHORIZED, axum::Json(body)).into_response(),
        &challenge,
    )
}

/// The 429 for a caller over one of its limits, with `Retry-After`. The body was not read, so
/// the JSON-RPC error answers no request in particular (`id` null).
pub fn rate_limited(limited: Limited) -> Response {
    let body = serde_json::json!({ "jsonrpc": "2.0", "id": null, "error": {
        "code": super::error::code::RATE_LIMITED,
        "message": format!(
            "Too many requests ({} limit); retry after {} s",
            limited.class.name(),
            limited.retry_after_secs
        ),
        "data": { "retryAfter": limited.retry_after_secs, "limit": limited.class.name() },
    }});
    let mut response = (StatusCode::TOO_MANY_REQUESTS, axum::Json(body)).into_response();
    response.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from(limited.retry_after_secs),
    );
    response
}

/// The 403 for a call the token's scopes do not cover (RFC 6750 §3.1, MCP step-up). Its `scope`
/// is what the caller holds plus what the call requires: clients sign in again asking for
/// exactly that, and should not lose what they had.
fn insufficient_scope(
    resource: &Resource,
    caller: &Caller,
    error: &GatewayError,
    required: &str,
    roles: &[String],
    id: &Value,
) -> Response {
    let mut wanted: Vec<&str> = caller.scopes().chain(std::iter::once(required)).collect();
    wanted.sort_unstable();
    wanted.dedup();
    let challenge = format!(
        r#"Bearer error="insufficient_scope", scope="{}", error_description="this call requires the scope {required}{}", resource_metadata="{}""#,
        wanted.join(" "),
        super::error::granted_by(roles),
        resource.metadata_url,
    );
    with_challenge(
        (StatusCode::FORBIDDEN, axum::Json(error.to_message(id))).into_response(),
        &challenge,
    )
}

fn with_challenge(mut response: Response, challenge: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(challenge) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

/// The answer to request `id` that failed with `error`. `relayed`: the endpoint relays a
/// backend's HTTP exchange (see [`GatewayError::status`]).
pub fn error(
    error: &GatewayError,
    id: &Value,
    relayed: bool,
    resource: &Resource,
    caller: Option<&Caller>,
) -> Response {
    match (error, caller) {
        (GatewayError::Forbidden { required, roles }, Some(caller)) => {
            insufficient_scope(resource, caller, error, required, roles, id)
        }
        (GatewayError::SignInEnded, _) => unauthorized(resource, Unauthenticated::InvalidToken),
        _ => {
            let status = error.status(relayed);
            let mut response = (status, axum::Json(error.to_message(id))).into_response();
            if status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::TOO_MANY_REQUESTS
            {
                // RFC 9110 §10.2.3: when to try again.
                response.headers_mut().insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(crate::oauth::error::RETRY_AFTER_SECS),
                );
            }
            response
        }
    }
}
