//! A client identified by its metadata document signs in like a registered one, with no
//! registration: discovery says so, the consent page says who it is, the token endpoint knows it.

use reqwest::StatusCode;

use super::documents::Answer;
use super::{
    CALLBACK, DocumentServer, app_for, authorize_url, document, public_client, serve_client, tokens,
};
use crate::support::app::{browser, pkce};

#[tokio::test]
async fn discovery_advertises_metadata_documents_and_the_none_method() {
    let docs = DocumentServer::start().await;
    let app = app_for(&docs, "", "").await;

    let metadata = app
        .get_json(&app.url("/.well-known/oauth-authorization-server"))
        .await;

    assert_eq!(metadata["client_id_metadata_document_supported"], true);
    let methods = metadata["token_endpoint_auth_methods_supported"]
        .as_array()
        .unwrap();
    for method in ["none", "client_secret_basic", "client_secret_post"] {
        assert!(methods.iter().any(|m| m == method), "{method}: {metadata}");
    }
    app.stop().await;
}

#[tokio::test]
async fn with_documents_switched_off_discovery_says_so_and_a_url_client_is_refused_unfetched() {
    let docs = DocumentServer::start().await;
    let app = app_for(&docs, "enabled = false", "").await;
    let client = serve_client(&docs, "/client.json", "max-age=600");

    let metadata = app
        .get_json(&app.url("/.well-known/oauth-authorization-server"))
        .await;
    let (status, page) = super::authorize_answer(&app, &client).await;

    assert_eq!(metadata["client_id_metadata_document_supported"], false);
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("not accepted here"), "{page}");
    assert_eq!(docs.hits("/client.json"), 0);
    app.stop().await;
}

#[tokio::test]
async fn a_document_client_signs_in_refreshes_and_its_grant_keeps_the_redirect_uri() {
    let docs = DocumentServer::start().await;
    let app = app_for(&docs, "", "").await;
    let client = serve_client(&docs, "/oauth/client.json", "max-age=600");

    let first = tokens(&app, &client, "alice", Some("demo:notes:read")).await;
    tokens(&app, &client, "bob", Some("demo:notes:read")).await;

    assert_eq!(first["scope"], "demo:notes:read");
    // Fetched once: the authorize, consent and token steps and the second sign-in used the
    // cached copy its max-age allowed.
    assert_eq!(docs.hits("/oauth/client.json"), 1);
    let claims = app
        .state
        .keys
        .verify_any_audience(first["access_token"].as_str().unwrap(), &app.base)
        .unwrap();
    assert_eq!(claims.client_id, client.client_id);
    let grant = app
        .state
        .store
        .get_grant(&claims.sid)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(grant.client_id, client.client_id);
    assert_eq!(grant.redirect_uri.as_deref(), Some(CALLBACK));

    let (status, refreshed) = app
        .refresh(&client, first["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(status, StatusCode::OK, "{refreshed}");

    // A document client is public: a secret is not accepted in its name.
    let secret_client = crate::support::app::TestClient {
        client_secret: Some("guess".into()),
        ..client.clone()
    };
    let (status, body) = app
        .refresh(&secret_client, refreshed["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"], "invalid_client");
    app.stop().await;
}

#[tokio::test]
async fn the_consent_page_shows_the_redirect_host_and_that_an_unknown_client_is_not_verified() {
    let docs = DocumentServer::start().await;
    let app = app_for(&docs, "", "").await;
    let client_id = docs.url("/web-client");
    docs.serve(
        "/web-client",
        Answer::json(
            &document(&client_id, &["https://app.client.example/oauth/cb"]),
            "max-age=60",
        ),
    );
    let client = public_client(&client_id, "https://app.client.example/oauth/cb");
    let (_, challenge) = pkce();

    let page = app
        .reach_consent(&browser(), &authorize_url(&app, &client, &challenge, None))
        .await;

    assert!(page.contains("Document Client"), "{page}");
    assert!(page.contains("<code>app.client.example</code>"), "{page}");
    assert!(page.contains(&client_id), "{page}");
    assert!(page.contains("is not verified"), "{page}");
    assert!(!page.contains("Verified application"), "{page}");
    assert!(!page.contains("program on this computer"), "{page}");
    app.stop().await;
}

#[tokio::test]
async fn a_trusted_host_is_verified_and_a_localhost_only_client_is_warned_about() {
    let docs = DocumentServer::start().await;
    let app = app_for(&docs, "trusted_hosts = [\"127.0.0.1\"]", "").await;
    let client = serve_client(&docs, "/native", "max-age=60");
    let (_, challenge) = pkce();

    let page = app
        .reach_consent(&browser(), &authorize_url(&app, &client, &challenge, None))
        .await;

    assert!(page.contains("Verified application"), "{page}");
    assert!(page.contains("program on this computer"), "{page}");
    assert!(page.contains("<code>127.0.0.1:41234</code>"), "{page}");
    app.stop().await;
}
