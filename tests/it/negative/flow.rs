//! The browser leg and the code: PKCE, redirect URIs, clients, consent, callback state.

use reqwest::StatusCode;

use super::{code_for, error_of, mcp_status};
use crate::support::app::{
    AuthRequest, Options, TestClient, browser, form_fields, location, pkce, query_param, spawn,
};

#[tokio::test]
async fn a_wrong_pkce_verifier_is_invalid_grant_and_leaves_the_code_usable() {
    let app = spawn(Options::default()).await;
    let client = app.register_public_client().await;
    let (code, verifier) = code_for(&app, &client).await;
    let (other_verifier, _) = pkce();
    let (status, body) = app.exchange_code(&client, &code, &other_verifier).await;
    assert_eq!(
        (status, error_of(&body)),
        (StatusCode::BAD_REQUEST, "invalid_grant")
    );
    let (status, body) = app.exchange_code(&client, &code, &verifier).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the failed attempt changed nothing: {body}"
    );
}

#[tokio::test]
async fn a_missing_pkce_verifier_is_refused() {
    let app = spawn(Options::default()).await;
    let client = app.register_public_client().await;
    let (code, _) = code_for(&app, &client).await;
    let (status, _, body) = app
        .post_form(
            "/token",
            &client,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", &client.redirect_uri),
            ],
        )
        .await;
    assert_eq!(
        (status, error_of(&body)),
        (StatusCode::BAD_REQUEST, "invalid_grant")
    );
}

#[tokio::test]
async fn a_downgraded_or_missing_pkce_challenge_is_refused_at_authorize() {
    let app = spawn(Options::default()).await;
    let client = app.register_public_client().await;
    let (verifier, challenge) = pkce();
    let base = app.authorize_url(&AuthRequest {
        client: &client,
        challenge: &challenge,
        state: "s",
        scope: None,
        resource: None,
    });
    let plain = base
        .replace(&challenge, &verifier)
        .replace("code_challenge_method=S256", "code_challenge_method=plain");
    let without = base.replace(&format!("code_challenge={challenge}&"), "");
    for url in [plain, without] {
        let response = browser().get(&url).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        let back = location(&response);
        assert!(back.starts_with(&client.redirect_uri), "{back}");
        assert_eq!(
            query_param(&back, "error").as_deref(),
            Some("invalid_request")
        );
        assert_eq!(query_param(&back, "state").as_deref(), Some("s"));
    }
}

#[tokio::test]
async fn a_replayed_code_is_refused_and_revokes_what_it_issued() {
    let app = spawn(Options::default()).await;
    let client = app.register_public_client().await;
    let (code, verifier) = code_for(&app, &client).await;
    let (status, tokens) = app.exchange_code(&client, &code, &verifier).await;
    assert_eq!(status, StatusCode::OK);
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(mcp_status(&app, access).await.0, StatusCode::OK);
    let (status, body) = app.exchange_code(&client, &code, &verifier).await;
    assert_eq!(
        (status, error_of(&body)),
        (StatusCode::BAD_REQUEST, "invalid_grant")
    );
    assert_eq!(mcp_status(&app, access).await.0, StatusCode::UNAUTHORIZED);
    let (status, body) = app
        .refresh(&client, tokens["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(
        (status, error_of(&body)),
        (StatusCode::BAD_REQUEST, "invalid_grant")
    );
}

#[tokio::test]
async fn a_mismatched_redirect_uri_at_authorize_shows_a_page_and_never_redirects() {
    let app = spawn(Options::default()).await;
    let client = app.register_public_client().await;
    let (_, challenge) = pkce();
    for evil in [
        "https://evil.example.com/callback",
        "http://127.0.0.1:33418/other",
        "http://evil.example.com/callback",
    ] {
        let tampered = TestClient {
            redirect_uri: evil.into(),
            ..client.clone()
        };
        let url = app.authorize_url(&AuthRequest {
            client: &tampered,
            challenge: &challenge,
            state: "s",
            scope: None,
            resource: None,
        });
        let response = browser().get(&url).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{evil}");
        assert!(
            response.headers().get("location").is_none(),
            "never redirects to {evil}"
        );
    }
}

#[tokio::test]
async fn a_mismatched_redirect_uri_at_token_is_invalid_grant() {
    let app = spawn(Options::default()).await;
    let client = app.register_public_client().await;
    let (code, verifier) = code_for(&app, &client).await;
    let (status, _, body) = app
        .post_form(
            "/token",
            &client,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", "http://127.0.0.1:1/x"),
                ("code_verifier", &verifier),
            ],
        )
        .await;
    assert_eq!(
        (status, error_of(&body)),
        (StatusCode::BAD_REQUEST, "invalid_grant")
    );
}

#[tokio::test]
async fn an_unknown_client_gets_a_page_at_authorize_and_invalid_client_at_token() {
    let app = spawn(Options::default()).await;
    let ghost = TestClient {
        client_id: "no-such-client".into(),
        client_secret: None,
        redirect_uri: "http://127.0.0.1:5/cb".into(),
    };
    let (_, challenge) = pkce();
    let url = app.authorize_url(&AuthRequest {
        client: &ghost,
        challenge: &challenge,
        state: "s",
        scope: None,
        resource: None,
    });
    let response = browser().get(&url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.headers().get("location").is_none());
    let (status, _, body) = app
        .post_form(
            "/token",
            &ghost,
            &[("grant_type", "authorization_code"), ("code", "x")],
        )
        .await;
    assert_eq!(
        (status, error_of(&body)),
        (StatusCode::UNAUTHORIZED, "invalid_client")
    );
    let wrong_secret = TestClient {
        client_secret: Some("nope".into()),
        ..ghost
    };
    let (status, headers, body) = app
        .post_form(
            "/token",
            &wrong_secret,
            &[("grant_type", "authorization_code"), ("code", "x")],
        )
        .await;
    assert_eq!(
        (status, error_of(&body)),
        (StatusCode::UNAUTHORIZED, "invalid_client")
    );
    assert!(
        headers["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic")
    );
}

#[tokio::test]
async fn a_consent_form_without_its_csrf_token_is_refused_and_changes_nothing() {
    let app = spawn(Options::default()).await;
    let client = app.register_public_client().await;
    let (_, challenge) = pkce();
    let browser = browser();
    let url = app.authorize_url(&AuthRequest {
        client: &client,
        challenge: &challenge,
        state: "s",
        scope: None,
        resource: None,
    });
    let consent = app.reach_consent(&browser, &url).await;
    let (action, fields) = form_fields(&consent);
    for csrf in [None, Some("forged-token-forged-token-forged-token-xx")] {
        let mut forged: Vec<(String, String)> = fields
            .iter()
            .filter(|(k, _)| k != "csrf")
            .cloned()
            .collect();
        if let Some(value) = csrf {
            forged.push(("csrf".into(), value.into()));
        }
        forged.push(("decision".into(), "approve".into()));
        let response = browser.post(&action).form(&forged).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
    }
    let genuine = app.submit_consent(&browser, &consent, "deny").await;
    assert_eq!(
        genuine.status(),
        StatusCode::SEE_OTHER,
        "the flow survived the forged posts"
    );
}

#[tokio::test]
async fn a_consent_form_from_another_browser_is_refused() {
    let app = spawn(Options::default()).await;
    let client = app.register_public_client().await;
    let (_, challenge) = pkce();
    let url = app.authorize_url(&AuthRequest {
        client: &client,
        challenge: &challenge,
        state: "s",
        scope: None,
        resource: None,
    });
    let consent = app.reach_consent(&browser(), &url).await;
    let attacker = browser();
    let response = app.submit_consent(&attacker, &consent, "approve").await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let (action, _) = form_fields(&consent);
    assert!(action.ends_with("/authorize/consent"));
}

#[tokio::test]
async fn a_tampered_state_at_the_callback_is_refused() {
    let app = spawn(Options::default()).await;
    let client = app.register_public_client().await;
    let (_, challenge) = pkce();
    let browser = browser();
    let url = app.authorize_url(&AuthRequest {
        client: &client,
        challenge: &challenge,
        state: "s",
        scope: None,
        resource: None,
    });
    let consent = app.reach_consent(&browser, &url).await;
    let approved = app.submit_consent(&browser, &consent, "approve").await;
    let upstream = location(&approved);
    let callback = crate::support::idp::sign_in(&browser, &upstream, "tamper").await;
    let mut tampered = callback.clone();
    let pairs: Vec<(String, String)> = callback
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == "state" {
                format!("{v}x")
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    tampered.query_pairs_mut().clear().extend_pairs(pairs);
    let response = browser.get(tampered.as_str()).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.headers().get("location").is_none());
    // The genuine callback still completes: the tampered one changed nothing.
    let genuine = browser.get(callback.as_str()).send().await.unwrap();
    assert_eq!(genuine.status(), StatusCode::SEE_OTHER);
    assert!(query_param(&location(&genuine), "code").is_some());
}
