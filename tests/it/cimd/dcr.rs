//! Dynamic registration as the clients that still use it register: `application_type`,
//! `client_secret_post` (Anthropic's backend), and a connection attempt that registers twice.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::app::{Options, TestClient, browser, pkce, query_param, spawn};

#[tokio::test]
async fn application_type_is_kept_and_a_web_client_cannot_return_to_loopback() {
    let app = spawn(Options::default()).await;

    let (status, native) = app
        .register(json!({
            "redirect_uris": ["http://127.0.0.1:5555/callback"],
            "application_type": "native",
            "token_endpoint_auth_method": "none",
        }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{native}");
    assert_eq!(native["application_type"], "native");

    for (metadata, error) in [
        (
            json!({"redirect_uris": ["http://localhost:8080/cb"], "application_type": "web"}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["https://app.example/cb"], "application_type": "service"}),
            "invalid_client_metadata",
        ),
    ] {
        let (status, body) = app.register(metadata.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{metadata}: {body}");
        assert_eq!(body["error"], error, "{metadata}");
    }
    assert!(app.state.store.list_clients().await.unwrap().len() == 1);
    app.stop().await;
}

#[tokio::test]
async fn a_client_secret_post_client_twice_registered_signs_in_with_the_secret_in_the_body() {
    let app = spawn(Options::default()).await;
    let metadata = json!({
        "client_name": "claude.ai",
        "redirect_uris": ["https://claude.ai/api/mcp/auth_callback"],
        "application_type": "web",
        "token_endpoint_auth_method": "client_secret_post",
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
    });

    // One connection attempt, two registrations: both answer, neither disturbs the other.
    let (first_status, first) = app.register(metadata.clone()).await;
    let (second_status, second) = app.register(metadata).await;
    assert_eq!(first_status, StatusCode::CREATED, "{first}");
    assert_eq!(second_status, StatusCode::CREATED, "{second}");
    assert_ne!(first["client_id"], second["client_id"]);

    let client = TestClient {
        client_id: first["client_id"].as_str().unwrap().to_owned(),
        client_secret: first["client_secret"].as_str().map(str::to_owned),
        redirect_uri: "https://claude.ai/api/mcp/auth_callback".to_owned(),
    };
    let (verifier, challenge) = pkce();
    let url = super::authorize_url(&app, &client, &challenge, None);
    let back = app.sign_in(&browser(), &url, "alice").await;
    let code = query_param(&back, "code").unwrap();
    let form = |secret: &str| {
        vec![
            ("grant_type".to_owned(), "authorization_code".to_owned()),
            ("code".to_owned(), code.clone()),
            ("redirect_uri".to_owned(), client.redirect_uri.clone()),
            ("code_verifier".to_owned(), verifier.clone()),
            ("resource".to_owned(), app.mcp_url()),
            ("client_id".to_owned(), client.client_id.clone()),
            ("client_secret".to_owned(), secret.to_owned()),
        ]
    };

    // Basic authentication is not the method it registered.
    let basic = app
        .http
        .post(app.url("/token"))
        .basic_auth(&client.client_id, client.client_secret.as_deref())
        .form(&form("")[..5])
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), StatusCode::UNAUTHORIZED);
    let wrong = app
        .http
        .post(app.url("/token"))
        .form(&form("wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let right = app
        .http
        .post(app.url("/token"))
        .form(&form(client.client_secret.as_deref().unwrap()))
        .send()
        .await
        .unwrap();
    let status = right.status();
    let body: serde_json::Value = right.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["access_token"].is_string());
    app.stop().await;
}
