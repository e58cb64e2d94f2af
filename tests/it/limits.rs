//! Rate limits as a client meets them: per address on the OAuth endpoints (believing
//! `X-Forwarded-For` only from trusted proxies), per person on the MCP endpoints; a 429 with
//! `Retry-After` and the error shape of the endpoint, and nothing done for a refused request.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::app::{self, Options, TestApp};

async fn app_with_limits(limits: &str) -> TestApp {
    app::spawn(Options {
        extra_toml: format!("[rate_limits]\n{limits}\n"),
        ..Options::default()
    })
    .await
}

fn registration() -> Value {
    json!({
        "client_name": "Limited",
        "redirect_uris": ["http://127.0.0.1:33418/callback"],
        "token_endpoint_auth_method": "none",
    })
}

async fn register_from(app: &TestApp, forwarded_for: Option<&str>) -> reqwest::Response {
    let mut request = app.http.post(app.url("/register")).json(&registration());
    if let Some(address) = forwarded_for {
        request = request.header("x-forwarded-for", address);
    }
    request.send().await.unwrap()
}

/// The `Retry-After` of a 429, in seconds.
fn retry_after(response: &reqwest::Response) -> u64 {
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

async fn client_count(app: &TestApp) -> usize {
    app.state.store.list_clients().await.unwrap().len()
}

#[tokio::test]
async fn registration_is_limited_per_address_and_a_refusal_registers_nothing() {
    let app = app_with_limits("register_per_minute = 3").await;
    for _ in 0..3 {
        assert_eq!(
            register_from(&app, None).await.status(),
            StatusCode::CREATED
        );
    }
    let refused = register_from(&app, None).await;
    let wait = retry_after(&refused);
    assert!((1..=60).contains(&wait), "Retry-After: {wait}");
    assert_eq!(refused.headers()["cache-control"], "no-store");
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable", "{body}");
    assert!(body.get("client_id").is_none(), "{body}");
    assert_eq!(client_count(&app).await, 3);
    // Claiming another address does not help a client that is not behind a trusted proxy.
    let forged = register_from(&app, Some("203.0.113.5")).await;
    assert_eq!(forged.status(), StatusCode::TOO_MANY_REQUESTS);
    // The other endpoint classes keep their own counts.
    let metadata = app
        .http
        .get(app.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap();
    assert_eq!(metadata.status(), StatusCode::OK);
    let token = app
        .http
        .post(app.url("/token"))
        .form(&[("grant_type", "authorization_code")])
        .send()
        .await
        .unwrap();
    assert_eq!(token.status(), StatusCode::BAD_REQUEST);
    assert_eq!(client_count(&app).await, 3);
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_address_has_its_own_limit() {
    // The test client connects from 127.0.0.1: here, a trusted proxy.
    let app = app_with_limits("register_per_minute = 2\ntrusted_proxies = [\"127.0.0.0/8\"]").await;
    for _ in 0..2 {
        let response = register_from(&app, Some("203.0.113.5")).await;
        assert_eq!(response.status(), StatusCode::CREATED);
    }
    let refused = register_from(&app, Some("203.0.113.5")).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    // A client that put a forged address in front of its real one is limited by the real one
    // (the last hop the trusted proxy appended).
    let forged = register_from(&app, Some("198.51.100.1, 203.0.113.5")).await;
    assert_eq!(forged.status(), StatusCode::TOO_MANY_REQUESTS);
    // Another client behind the same proxy is not.
    let other = register_from(&app, Some("203.0.113.6")).await;
    assert_eq!(other.status(), StatusCode::CREATED);
    assert_eq!(client_count(&app).await, 3);
}

#[tokio::test]
async fn the_token_endpoint_is_limited_with_an_oauth_error() {
    let app = app_with_limits("token_per_minute = 2").await;
    let attempt = || {
        app.http
            .post(app.url("/token"))
            .form(&[("grant_type", "refresh_token"), ("refresh_token", "nope")])
            .send()
    };
    for _ in 0..2 {
        assert_eq!(attempt().await.unwrap().status(), StatusCode::BAD_REQUEST);
    }
    let refused = attempt().await.unwrap();
    retry_after(&refused);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable", "{body}");
}

#[tokio::test]
async fn mcp_requests_are_limited_per_person_with_a_json_rpc_error() {
    let app = app_with_limits("mcp_person_per_minute = 3").await;
    let (_, alice) = app.tokens_for("alice@example.com", None).await;
    let alice = alice["access_token"].as_str().unwrap();
    for _ in 0..3 {
        let answer = app.call_tool(alice, "whoami").await;
        assert!(answer.get("result").is_some(), "{answer}");
    }
    let whoami = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
                        "params": {"name": "whoami", "arguments": {}}});
    let refused = app.mcp(&app.mcp_url(), Some(alice), whoami.clone()).await;
    let wait = retry_after(&refused);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["jsonrpc"], "2.0", "{body}");
    assert_eq!(body["error"]["code"], -32029, "{body}");
    assert_eq!(body["error"]["data"]["retryAfter"], wait, "{body}");
    assert_eq!(body["error"]["data"]["limit"], "mcp_person", "{body}");
    // Another person, through another client, is not limited by alice's use.
    let (_, bob) = app.tokens_for("bob@example.com", None).await;
    let answer = app
        .call_tool(bob["access_token"].as_str().unwrap(), "whoami")
        .await;
    assert!(answer.get("result").is_some(), "{answer}");
}

#[tokio::test]
async fn with_limits_off_nothing_is_limited() {
    let app = app_with_limits("enabled = false\nregister_per_minute = 1").await;
    for _ in 0..5 {
        assert_eq!(
            register_from(&app, None).await.status(),
            StatusCode::CREATED
        );
    }
}
