//! Tokens of a trusted external issuer on the MCP endpoints: the real OpenID provider issues a
//! JWT access token to a service by `client_credentials`, and Portcullis accepts it with its
//! scopes (within the roles its claims give), its issuer, audience and algorithm checked.

use reqwest::StatusCode;
use serde_json::Value;

use crate::gateway::{call, rec_url};
use crate::people::rec_config;
use crate::support::app::{Db, Options, TestApp, spawn};
use crate::support::idp::TestIdp;
use crate::support::recorder::{self, Recorder};

on_both!(
    a_trusted_issuers_token_calls_within_its_scopes_and_roles,
    roles_bound_a_trusted_issuers_scopes,
    another_audience_or_a_disallowed_algorithm_is_refused,
);

const AUDIENCE: &str = "urn:portcullis:test";

/// An app trusting the test provider for `AUDIENCE` (with `issuer_toml` added to the issuer's
/// table), the recorder as backend `rec`, and roles.
async fn trusting(db: Db, issuer_toml: &str) -> (TestApp, Recorder) {
    let idp = TestIdp::from_env();
    let backend = recorder::spawn().await;
    let extra = format!(
        r#"{rec}
[[trusted_issuers]]
id = "corp-services"
issuer = "{issuer}"
audience = "{AUDIENCE}"
{issuer_toml}
"#,
        rec = rec_config(&backend.url),
        issuer = idp.issuer,
    );
    let app = spawn(Options {
        db,
        top_toml: "default_role = \"reader\"\n".into(),
        grant_scopes: r#"["rec:*:call"]"#,
        extra_toml: extra,
        ..Options::default()
    })
    .await;
    (app, backend)
}

/// A JWT access token from the test provider for the service, by `client_credentials`.
async fn service_token(resource: &str, scope: &str) -> String {
    let idp = TestIdp::from_env();
    let response = reqwest::Client::new()
        .post(format!("{}/token", idp.issuer))
        .basic_auth("portcullis-service", Some("portcullis-service-secret"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("resource", resource),
            ("scope", scope),
        ])
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    let token = body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(token.split('.').count(), 3, "a JWT: {token}");
    token
}

async fn a_trusted_issuers_token_calls_within_its_scopes_and_roles(db: Db) {
    let (app, _backend) = trusting(
        db,
        "[trusted_issuers.claim_roles.client_id]\n\"portcullis-service\" = \"engineer\"\n",
    )
    .await;

    let narrow = service_token(AUDIENCE, "rec:tools:call").await;
    let ok = app
        .mcp(&rec_url(&app), Some(&narrow), call(1, "anything"))
        .await;
    assert_eq!(ok.status(), StatusCode::OK);
    let denied = app
        .mcp(&rec_url(&app), Some(&narrow), call(2, "echo"))
        .await;
    assert_eq!(
        denied.status(),
        StatusCode::FORBIDDEN,
        "the token lacks the scope"
    );

    let wide = service_token(AUDIENCE, "rec:tools:call rec:echo:call").await;
    let echo = app.mcp(&rec_url(&app), Some(&wide), call(3, "echo")).await;
    assert_eq!(echo.status(), StatusCode::OK, "the engineer role allows it");

    // Its claims are not trusted blindly: a forged signature is refused.
    let mut forged = wide.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    let refused = app
        .mcp(&rec_url(&app), Some(&forged), call(4, "echo"))
        .await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    app.stop().await;
}

async fn roles_bound_a_trusted_issuers_scopes(db: Db) {
    // No role mapping: only the default role (reader), whatever the token says.
    let (app, _backend) = trusting(db, "").await;
    let wide = service_token(AUDIENCE, "rec:tools:call rec:echo:call").await;
    let denied = app.mcp(&rec_url(&app), Some(&wide), call(1, "echo")).await;
    assert_eq!(denied.status(), StatusCode::FORBIDDEN);
    let header = denied.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(header.contains("the role engineer grants it"), "{header}");
    app.stop().await;
}

async fn another_audience_or_a_disallowed_algorithm_is_refused(db: Db) {
    let (app, _backend) = trusting(db, "").await;
    // The provider signs for another audience: not for Portcullis.
    let (other, _backend2) = {
        let idp = TestIdp::from_env();
        let backend = recorder::spawn().await;
        let extra = format!(
            "[[backends]]\nid = \"rec\"\nurl = \"{}\"\nscope = \"rec:tools:call\"\n[[trusted_issuers]]\nid = \"corp-services\"\nissuer = \"{}\"\naudience = \"urn:someone-else\"\n",
            backend.url, idp.issuer
        );
        let app = spawn(Options {
            db,
            grant_scopes: r#"["rec:*:call"]"#,
            extra_toml: extra,
            ..Options::default()
        })
        .await;
        (app, backend)
    };
    let token = service_token(AUDIENCE, "rec:tools:call").await;
    let refused = other
        .mcp(&rec_url(&other), Some(&token), call(1, "x"))
        .await;
    assert_eq!(
        refused.status(),
        StatusCode::UNAUTHORIZED,
        "another audience"
    );
    other.stop().await;
    app.stop().await;

    // Keys are RS256; an issuer configured for ES256 only refuses them.
    let (app, _backend) = trusting(db, "algorithms = [\"ES256\"]\n").await;
    let refused = app.mcp(&rec_url(&app), Some(&token), call(2, "x")).await;
    assert_eq!(
        refused.status(),
        StatusCode::UNAUTHORIZED,
        "RS256 not allowed"
    );
    app.stop().await;
}

/// With Redis, the issuer's keys one instance fetched serve the others: the JWKS is fetched
/// once for two instances.
#[tokio::test]
async fn instances_sharing_redis_fetch_the_issuers_keys_once() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    // The provider's JWKS, served through a counter.
    let idp = TestIdp::from_env();
    let discovery: Value = reqwest::get(format!("{}/.well-known/openid-configuration", idp.issuer))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let upstream = discovery["jwks_uri"].as_str().unwrap().to_owned();
    let fetches = Arc::new(AtomicUsize::new(0));
    let counted = fetches.clone();
    let router = axum::Router::new().route(
        "/jwks",
        axum::routing::get(move || {
            let (upstream, counted) = (upstream.clone(), counted.clone());
            async move {
                counted.fetch_add(1, Ordering::SeqCst);
                let set: Value = reqwest::get(&upstream).await.unwrap().json().await.unwrap();
                axum::Json(set)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let jwks = format!("http://{}/jwks", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });

    let (redis_url, _own) = crate::support::redis::shared().await;
    let prefix = crate::support::redis::fresh_prefix();
    let backend = recorder::spawn().await;
    let instance = || {
        spawn(Options {
            top_toml: format!(
                "default_role = \"reader\"\nredis_url = \"{redis_url}\"\nredis_prefix = \"{prefix}\"\n"
            ),
            grant_scopes: r#"["rec:*:call"]"#,
            extra_toml: format!(
                "{rec}\n[[trusted_issuers]]\nid = \"corp-services\"\nissuer = \"{issuer}\"\n\
                 audience = \"{AUDIENCE}\"\njwks_uri = \"{jwks}\"\n",
                rec = rec_config(&backend.url),
                issuer = idp.issuer,
            ),
            ..Options::default()
        })
    };
    let (a, b) = (instance().await, instance().await);
    let token = service_token(AUDIENCE, "rec:tools:call").await;
    for app in [&a, &b] {
        let answer = app
            .mcp(&rec_url(app), Some(&token), call(1, "anything"))
            .await;
        assert_eq!(answer.status(), StatusCode::OK);
    }
    assert_eq!(
        fetches.load(Ordering::SeqCst),
        1,
        "the second instance used the first's keys"
    );
    a.stop().await;
    b.stop().await;
}
