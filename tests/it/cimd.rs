//! Clients identified by a Client ID Metadata Document, served over https by a test server on
//! 127.0.0.1; and dynamic registration as the clients that still use it register.

/// The cache: headers respected and capped, a stale or pinned copy when a refetch fails.
mod cache;
/// Remembered consent and grants per redirect URI.
mod consent;
/// `application_type`, `client_secret_post`, repeated registrations.
mod dcr;
/// The https server that serves the documents.
mod documents;
/// Every refusal: the RFC-shaped answer, and nothing fetched that should not be.
mod refusals;
/// The TypeScript SDK's client with a metadata document instead of a registration.
mod sdk;
/// A document client signing in, refreshing, and what the consent page shows.
mod sign_in;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::app::{
    AuthRequest, Options, TestApp, TestClient, browser, pkce, query_param, spawn,
};
use documents::{Answer, DocumentServer};

/// Where the document clients of these tests return: a loopback callback.
const CALLBACK: &str = "http://127.0.0.1:41234/callback";

/// A document whose client returns to `redirect_uris`.
fn document(client_id: &str, redirect_uris: &[&str]) -> Value {
    json!({
        "client_id": client_id,
        "client_name": "Document Client",
        "client_uri": "https://client.example",
        "redirect_uris": redirect_uris,
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
    })
}

/// An app that may fetch from `docs`, with `cimd` added to its `[cimd]` table and `extra` after.
async fn app_for(docs: &DocumentServer, cimd: &str, extra: &str) -> TestApp {
    spawn(Options {
        second_provider: false,
        grant_scopes: r#"["demo:*:read", "demo:*:write"]"#,
        extra_toml: format!("{}{extra}", docs.cimd_toml(cimd)),
        ..Options::default()
    })
    .await
}

/// Serves a good document at `path` and returns the client it describes.
fn serve_client(docs: &DocumentServer, path: &str, cache_control: &str) -> TestClient {
    let client_id = docs.url(path);
    docs.serve(
        path,
        Answer::json(&document(&client_id, &[CALLBACK]), cache_control),
    );
    public_client(&client_id, CALLBACK)
}

fn public_client(client_id: &str, redirect_uri: &str) -> TestClient {
    TestClient {
        client_id: client_id.to_owned(),
        client_secret: None,
        redirect_uri: redirect_uri.to_owned(),
    }
}

/// The authorization URL of `client` for `scope`.
fn authorize_url(
    app: &TestApp,
    client: &TestClient,
    challenge: &str,
    scope: Option<&str>,
) -> String {
    app.authorize_url(&AuthRequest {
        client,
        challenge,
        state: "st",
        scope,
        resource: None,
    })
}

/// `/authorize` for `client` in a fresh browser: the status and the page (or Location).
async fn authorize_answer(app: &TestApp, client: &TestClient) -> (StatusCode, String) {
    let (_, challenge) = pkce();
    let response = browser()
        .get(authorize_url(app, client, &challenge, None))
        .send()
        .await
        .unwrap();
    let status = response.status();
    let location = response
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = response.text().await.unwrap();
    (status, location.unwrap_or(body))
}

/// Signs `login` in through `client` up to tokens; returns the token response.
async fn tokens(app: &TestApp, client: &TestClient, login: &str, scope: Option<&str>) -> Value {
    let (verifier, challenge) = pkce();
    let url = authorize_url(app, client, &challenge, scope);
    let back = app.sign_in(&browser(), &url, login).await;
    assert!(back.starts_with(&client.redirect_uri), "{back}");
    let code = query_param(&back, "code").expect("a code");
    let (status, body) = app.exchange_code(client, &code, &verifier).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}
