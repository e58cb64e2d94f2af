//! Every way a metadata document client is refused: a page before the redirect URI is trusted,
//! `invalid_client` at the token endpoint, and no fetch that should not happen.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use super::documents::{Answer, DocumentServer};
use super::{CALLBACK, app_for, authorize_answer, document, public_client, serve_client};
use crate::support::app::TestClient;

#[tokio::test]
async fn a_client_id_that_is_not_an_https_url_with_a_path_is_never_fetched() {
    let docs = DocumentServer::start().await;
    let app = app_for(&docs, "", "").await;
    serve_client(&docs, "/client.json", "max-age=60");
    let https = docs.url("/client.json");

    for (client_id, shown) in [
        // Not https: looked up as a registered client, and there is none.
        (https.replacen("https", "http", 1), "not registered here"),
        // https, but refused before any request.
        (docs.url(""), "must contain a path"),
        (docs.url("/"), "must contain a path"),
        (docs.url("/a/../client.json"), "dot segments"),
        (format!("{https}#frag"), "fragment"),
        (
            https.replacen("https://", "https://user@", 1),
            "user information",
        ),
    ] {
        let (status, page) = authorize_answer(&app, &public_client(&client_id, CALLBACK)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{client_id}: {page}");
        assert!(page.contains(shown), "{client_id}: {page}");
    }
    assert_eq!(docs.hits("/client.json"), 0);
    assert_eq!(docs.hits("/a/../client.json"), 0);
    app.stop().await;
}

#[tokio::test]
async fn loopback_private_and_metadata_addresses_are_refused_before_any_connection() {
    let docs = DocumentServer::start().await;
    let app = app_for(&docs, "", "").await;
    // The same server on a name that resolves to loopback, and on an address not listed.
    let port = docs.addr.port();
    for client_id in [
        format!("https://localhost:{port}/client.json"),
        format!("https://[::1]:{port}/client.json"),
        "https://169.254.169.254/latest/meta-data/client".to_owned(),
        "https://10.1.2.3/client.json".to_owned(),
        "https://100.64.0.1/client.json".to_owned(),
    ] {
        let (status, page) = authorize_answer(&app, &public_client(&client_id, CALLBACK)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{client_id}: {page}");
        assert!(page.contains("not a public address"), "{client_id}: {page}");
    }
    assert_eq!(docs.hits("/client.json"), 0);
    app.stop().await;
}

#[tokio::test]
async fn a_host_outside_the_operators_list_is_refused_unfetched() {
    let docs = DocumentServer::start().await;
    let app = app_for(&docs, "hosts = [\"claude.ai\"]", "").await;
    let client = serve_client(&docs, "/client.json", "max-age=60");

    let (status, page) = authorize_answer(&app, &client).await;

    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("not accepted here"), "{page}");
    assert_eq!(docs.hits("/client.json"), 0);
    app.stop().await;
}

#[tokio::test]
async fn documents_that_do_not_describe_their_url_or_redirect_are_refused() {
    let docs = DocumentServer::start().await;
    let app = app_for(&docs, "", "").await;
    let url = |path: &str| docs.url(path);
    let cases = [
        (
            "/other-id",
            document(&url("/elsewhere"), &[CALLBACK]),
            "not the URL it was fetched from",
        ),
        (
            "/trailing",
            document(&format!("{}/", url("/trailing")), &[CALLBACK]),
            "not the URL",
        ),
        (
            "/nameless",
            {
                let mut d = document(&url("/nameless"), &[CALLBACK]);
                d.as_object_mut().unwrap().remove("client_name");
                d
            },
            "no client_name",
        ),
        (
            "/no-redirects",
            json!({"client_id": url("/no-redirects"), "client_name": "X"}),
            "no redirect_uris",
        ),
        (
            "/secret",
            {
                let mut d = document(&url("/secret"), &[CALLBACK]);
                d["client_secret"] = "s3cret".into();
                d
            },
            "client_secret",
        ),
        (
            "/basic",
            {
                let mut d = document(&url("/basic"), &[CALLBACK]);
                d["token_endpoint_auth_method"] = "client_secret_basic".into();
                d
            },
            "not supported",
        ),
    ];
    for (path, body, shown) in cases {
        docs.serve(path, Answer::json(&body, "max-age=60"));
        let (status, page) = authorize_answer(&app, &public_client(&url(path), CALLBACK)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {page}");
        assert!(page.contains(shown), "{path}: {page}");
    }

    // A good document, but the request's redirect_uri is not among its redirect_uris.
    let client = serve_client(&docs, "/good", "max-age=60");
    let elsewhere = TestClient {
        redirect_uri: "https://attacker.example/cb".into(),
        ..client
    };
    let (status, page) = authorize_answer(&app, &elsewhere).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("did not register"), "{page}");
    app.stop().await;
}

#[tokio::test]
async fn redirects_errors_oversized_and_slow_documents_are_not_followed_or_read() {
    let docs = DocumentServer::start().await;
    let app = app_for(&docs, "timeout_secs = 1\nmax_document_bytes = 2048", "").await;
    let target = serve_client(&docs, "/target", "max-age=60");
    docs.serve(
        "/moved",
        Answer::status(302, &[("Location", &target.client_id)]),
    );
    docs.serve("/broken", Answer::status(500, &[]));
    let mut big = document(&docs.url("/big"), &[CALLBACK]);
    big["padding"] = "x".repeat(4096).into();
    docs.serve("/big", Answer::json(&big, "max-age=60"));
    let mut slow = Answer::json(&document(&docs.url("/slow"), &[CALLBACK]), "max-age=60");
    slow.delay = Duration::from_secs(3);
    docs.serve("/slow", slow);

    for (path, shown) in [
        ("/moved", "answered 302"),
        ("/broken", "answered 500"),
        ("/big", "too large"),
        ("/slow", "timed out"),
    ] {
        let (status, page) =
            authorize_answer(&app, &public_client(&docs.url(path), CALLBACK)).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{path}: {page}");
        assert!(page.contains(shown), "{path}: {page}");
    }
    assert_eq!(docs.hits("/target"), 0, "the redirect was not followed");
    app.stop().await;
}

#[tokio::test]
async fn the_token_endpoint_refuses_a_document_client_it_cannot_resolve_with_invalid_client() {
    let docs = DocumentServer::start().await;
    let app = app_for(&docs, "", "").await;
    let gone = public_client(&docs.url("/gone"), CALLBACK);

    let (status, _, body) = app
        .post_form(
            "/token",
            &gone,
            &[("grant_type", "refresh_token"), ("refresh_token", "x")],
        )
        .await;

    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"], "invalid_client");
    app.stop().await;
}
