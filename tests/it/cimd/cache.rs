//! A fetched document is used as long as its cache headers say, within the operator's floor and
//! cap; when a refetch fails the last good copy answers, and for the well-known clients whose
//! URL cannot be fetched here the shipped copy does.

use chrono::Duration;
use reqwest::StatusCode;

use super::documents::{Answer, DocumentServer};
use super::{app_for, authorize_answer, public_client, serve_client, tokens};
use crate::support::app::{browser, pkce};

#[tokio::test]
async fn max_age_is_respected_and_a_stale_copy_answers_when_the_refetch_fails() {
    let docs = DocumentServer::start().await;
    let app = app_for(&docs, "min_cache_secs = 10", "").await;
    let client = serve_client(&docs, "/client.json", "public, max-age=120");

    authorize_answer(&app, &client).await;
    authorize_answer(&app, &client).await;
    assert_eq!(docs.hits("/client.json"), 1, "fresh for 120 s");

    app.clock.advance(Duration::seconds(121));
    authorize_answer(&app, &client).await;
    assert_eq!(docs.hits("/client.json"), 2, "refetched once stale");

    docs.serve("/client.json", Answer::status(503, &[]));
    app.clock.advance(Duration::seconds(121));
    let (status, location) = authorize_answer(&app, &client).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{location}");
    assert_eq!(docs.hits("/client.json"), 3);
    // The sign-in goes on with the last good copy.
    tokens(&app, &client, "alice", None).await;
    app.stop().await;
}

#[tokio::test]
async fn the_cap_bounds_a_long_max_age_and_no_store_is_never_kept() {
    let docs = DocumentServer::start().await;
    let app = app_for(&docs, "min_cache_secs = 0\nmax_cache_secs = 300", "").await;
    let long = serve_client(&docs, "/long", "max-age=31536000");
    let unstored = serve_client(&docs, "/unstored", "no-store");

    authorize_answer(&app, &long).await;
    app.clock.advance(Duration::seconds(299));
    authorize_answer(&app, &long).await;
    assert_eq!(docs.hits("/long"), 1);
    app.clock.advance(Duration::seconds(2));
    authorize_answer(&app, &long).await;
    assert_eq!(docs.hits("/long"), 2, "a year's max-age is capped at 300 s");

    authorize_answer(&app, &unstored).await;
    authorize_answer(&app, &unstored).await;
    assert_eq!(docs.hits("/unstored"), 2, "no-store: fetched every time");
    // With nothing kept, a failing refetch has no copy to fall back on.
    docs.serve("/unstored", Answer::status(500, &[]));
    let (status, page) = authorize_answer(&app, &unstored).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{page}");
    app.stop().await;
}

#[tokio::test]
async fn claude_ai_and_claude_code_use_their_shipped_documents_when_unreachable() {
    let docs = DocumentServer::start().await;
    // No internet here: the fetches of claude.ai fail, as a bot challenge makes them fail.
    let app = app_for(&docs, "timeout_secs = 2", "").await;
    let claude = public_client(
        "https://claude.ai/oauth/mcp-oauth-client-metadata",
        "https://claude.ai/api/mcp/auth_callback",
    );
    let (_, challenge) = pkce();

    let page = app
        .reach_consent(
            &browser(),
            &super::authorize_url(&app, &claude, &challenge, None),
        )
        .await;
    assert!(page.contains("Claude"), "{page}");
    assert!(page.contains("Verified application"), "{page}");
    assert!(page.contains("<code>claude.ai</code>"), "{page}");
    assert!(!page.contains("program on this computer"), "{page}");
    // The whole sign-in: the code goes to claude.ai's callback, the token endpoint knows it.
    let body = tokens(&app, &claude, "alice", None).await;
    assert!(body["refresh_token"].is_string(), "{body}");
    let twin = public_client(
        "https://claude.ai/oauth/mcp-oauth-client-metadata",
        "https://claude.com/api/mcp/auth_callback",
    );
    let (status, _) = authorize_answer(&app, &twin).await;
    assert_eq!(status, StatusCode::SEE_OTHER);

    // Claude Code returns to a loopback port of its choosing.
    let code = public_client(
        "https://claude.ai/oauth/claude-code-client-metadata",
        "http://localhost:53127/callback",
    );
    let page = app
        .reach_consent(
            &browser(),
            &super::authorize_url(&app, &code, &challenge, None),
        )
        .await;
    assert!(page.contains("Claude Code"), "{page}");
    assert!(page.contains("Verified application"), "{page}");
    assert!(page.contains("program on this computer"), "{page}");
    app.stop().await;
}

#[tokio::test]
async fn shipped_documents_can_be_switched_off() {
    let docs = DocumentServer::start().await;
    let app = app_for(&docs, "timeout_secs = 2\npinned = false", "").await;
    let claude = public_client(
        "https://claude.ai/oauth/mcp-oauth-client-metadata",
        "https://claude.ai/api/mcp/auth_callback",
    );

    let (status, page) = authorize_answer(&app, &claude).await;

    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{page}");
    app.stop().await;
}

/// With Redis, a document one instance fetched serves the others while it is fresh: the
/// document's server sees one fetch for both.
#[tokio::test]
async fn instances_sharing_redis_fetch_a_document_once() {
    let docs = DocumentServer::start().await;
    let (redis_url, _own) = crate::support::redis::shared().await;
    let prefix = crate::support::redis::fresh_prefix();
    let instance = || {
        crate::support::app::spawn(crate::support::app::Options {
            second_provider: false,
            grant_scopes: r#"["demo:*:read"]"#,
            top_toml: format!(
                "grant = \"requested\"\nredis_url = \"{redis_url}\"\nredis_prefix = \"{prefix}\"\n"
            ),
            extra_toml: docs.cimd_toml(""),
            ..crate::support::app::Options::default()
        })
    };
    let (a, b) = (instance().await, instance().await);
    let client = serve_client(&docs, "/shared.json", "public, max-age=600");

    let (status, _) = authorize_answer(&a, &client).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, _) = authorize_answer(&b, &client).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(
        docs.hits("/shared.json"),
        1,
        "the second instance used the first's copy"
    );
    a.stop().await;
    b.stop().await;
}
