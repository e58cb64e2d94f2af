//! Every attack and malformed request gets the RFC's error and changes nothing.

use chrono::Duration;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::app::{
    AuthRequest, Options, TestApp, TestClient, browser, form_fields, location, pkce, query_param,
    spawn,
};

/// A signed-in client's code, verifier and browser, ready for `/token`.
async fn code_for(app: &TestApp, client: &TestClient) -> (String, String) {
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

fn error_of(body: &Value) -> &str {
    body["error"].as_str().unwrap_or_default()
}

async fn mcp_status(app: &TestApp, token: &str) -> (StatusCode, String) {
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

#[tokio::test]
async fn a_reused_refresh_token_revokes_the_grant_after_the_grace_window() {
    let app = spawn(Options::default()).await;
    let (client, tokens) = app.tokens_for("reuse", None).await;
    let first = tokens["refresh_token"].as_str().unwrap();
    let (status, rotated) = app.refresh(&client, first).await;
    assert_eq!(status, StatusCode::OK);
    // A concurrent duplicate inside the grace window gets the same successor.
    let (status, duplicate) = app.refresh(&client, first).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(duplicate["refresh_token"], rotated["refresh_token"]);
    // After the window, presenting the old token again means it leaked: the grant dies.
    app.clock.advance(Duration::seconds(31));
    let (status, body) = app.refresh(&client, first).await;
    assert_eq!(
        (status, error_of(&body)),
        (StatusCode::BAD_REQUEST, "invalid_grant")
    );
    let (status, body) = app
        .refresh(&client, rotated["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(
        (status, error_of(&body)),
        (StatusCode::BAD_REQUEST, "invalid_grant")
    );
    assert_eq!(
        mcp_status(&app, rotated["access_token"].as_str().unwrap())
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
}

/// The claims of a token the app issued, decoded without verification (the test knows them).
pub fn claims_of(token: &str) -> portcullis::oauth::tokens::AccessClaims {
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn tokens_for_another_audience_expired_tampered_or_unsigned_are_refused_alike() {
    let app = spawn(Options::default()).await;
    let (_, tokens) = app.tokens_for("aud", None).await;
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(mcp_status(&app, access).await.0, StatusCode::OK);
    let mut claims = claims_of(access);

    claims.aud = app.url("/mcp/other");
    let other_audience = app.state.keys.issue(&claims).unwrap();
    claims.aud = app.mcp_url();
    let (header, _) = access.split_once('.').unwrap();
    let tampered_claims = {
        use base64::Engine;
        let mut c = claims.clone();
        c.scope = "admin:*:*".into();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(&c).unwrap())
    };
    let signature = access.rsplit('.').next().unwrap();
    let tampered = format!("{header}.{tampered_claims}.{signature}");
    let none = {
        use base64::Engine;
        let h = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(br#"{"alg":"none","typ":"at+jwt"}"#);
        format!("{h}.{tampered_claims}.")
    };
    let hs256 = {
        let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        h.kid = jsonwebtoken::decode_header(access).unwrap().kid;
        jsonwebtoken::encode(
            &h,
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(b"the-public-key-as-secret"),
        )
        .unwrap()
    };
    for (what, token) in [
        ("another audience", other_audience),
        ("tampered", tampered),
        ("alg none", none),
        ("HS256", hs256),
    ] {
        let (status, challenge) = mcp_status(&app, &token).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}");
        assert!(
            challenge.contains("error=\"invalid_token\"")
                && challenge.contains("resource_metadata="),
            "{what}: {challenge}"
        );
    }
    app.clock.advance(Duration::hours(2));
    assert_eq!(
        mcp_status(&app, access).await.0,
        StatusCode::UNAUTHORIZED,
        "expired"
    );
}

#[tokio::test]
async fn oversized_and_malformed_bodies_get_rfc_errors() {
    let app = spawn(Options::default()).await;
    let big = "a".repeat(200 * 1024);
    let response = app
        .http
        .post(app.url("/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("grant_type=authorization_code&code={big}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"],
        "invalid_request"
    );

    let response = app
        .http
        .post(app.url("/token"))
        .json(&json!({"grant_type": "authorization_code"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"],
        "invalid_request"
    );

    let response = app
        .http
        .post(app.url("/register"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"],
        "invalid_client_metadata"
    );

    let (status, body) = app
        .register(json!({"redirect_uris": ["http://evil.example.com/cb"]}))
        .await;
    assert_eq!(
        (status, error_of(&body)),
        (StatusCode::BAD_REQUEST, "invalid_redirect_uri")
    );
    let (status, body) = app
        .register(
            json!({"redirect_uris": ["https://ok.example.com/cb"], "grant_types": ["password"]}),
        )
        .await;
    assert_eq!(
        (status, error_of(&body)),
        (StatusCode::BAD_REQUEST, "invalid_client_metadata")
    );

    let client = app.register_public_client().await;
    let (status, _, body) = app
        .post_form("/token", &client, &[("grant_type", "password")])
        .await;
    assert_eq!(
        (status, error_of(&body)),
        (StatusCode::BAD_REQUEST, "unsupported_grant_type")
    );
    let (status, _, body) = app
        .post_form(
            "/token",
            &client,
            &[
                ("grant_type", "authorization_code"),
                ("grant_type", "refresh_token"),
            ],
        )
        .await;
    assert_eq!(
        (status, error_of(&body)),
        (StatusCode::BAD_REQUEST, "invalid_request")
    );
}

#[tokio::test]
async fn a_confidential_client_authenticates_with_its_secret() {
    let app = spawn(Options::default()).await;
    let (status, body) = app
        .register(json!({
            "client_name": "Server-side client",
            "redirect_uris": ["https://app.example.com/oauth/callback"],
            "grant_types": ["authorization_code", "refresh_token"],
        }))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(body["token_endpoint_auth_method"], "client_secret_basic");
    let client = TestClient {
        client_id: body["client_id"].as_str().unwrap().into(),
        client_secret: Some(body["client_secret"].as_str().unwrap().into()),
        redirect_uri: "https://app.example.com/oauth/callback".into(),
    };
    let (code, verifier) = code_for(&app, &client).await;
    let anonymous = TestClient {
        client_secret: None,
        ..client.clone()
    };
    let (status, body) = app.exchange_code(&anonymous, &code, &verifier).await;
    assert_eq!(
        (status, error_of(&body)),
        (StatusCode::UNAUTHORIZED, "invalid_client")
    );
    let (status, body) = app.exchange_code(&client, &code, &verifier).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}
