//! Every attack and malformed request gets the RFC's error and changes nothing.

/// PKCE, codes, redirect URIs, unknown clients, consent forgery, callback state tampering.
mod flow;
/// Refresh reuse, foreign and forged tokens, malformed bodies, client secrets.
mod tokens;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::app::{AuthRequest, TestApp, TestClient, browser, pkce, query_param};

/// A signed-in client's code, verifier and browser, ready for `/token`.
pub(super) async fn code_for(app: &TestApp, client: &TestClient) -> (String, String) {
    let (verifier, challenge) = pkce();
    let url = app.authorize_url(&AuthRequest {
        client,
        challenge: &challenge,
        state: "s",
        scope: None,
        resource: None,
    });
    let back = app.sign_in(&browser(), &url, "mallory-target").await;
    (query_param(&back, "code").unwrap(), verifier)
}

pub(super) fn error_of(body: &Value) -> &str {
    body["error"].as_str().unwrap_or_default()
}

pub(super) async fn mcp_status(app: &TestApp, token: &str) -> (StatusCode, String) {
    let response = app
        .mcp(
            &app.mcp_url(),
            Some(token),
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
        )
        .await;
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (response.status(), challenge)
}

/// The claims of a token the app issued, decoded without verification (the test knows them).
pub(crate) fn claims_of(token: &str) -> portcullis::oauth::tokens::AccessClaims {
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}
