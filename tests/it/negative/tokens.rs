//! Tokens and bodies: refresh reuse, foreign or forged access tokens, malformed requests.

use chrono::Duration;
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{claims_of, code_for, error_of, mcp_status};
use crate::support::app::{Options, TestClient, spawn};

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
