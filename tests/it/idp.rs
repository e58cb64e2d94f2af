//! The test IdP on its own: an authorization-code + PKCE flow straight against it, as
//! Portcullis will run it, proving `scripts/idp/idp.mjs` and `support::idp::sign_in` before any
//! Portcullis flow test relies on them.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use reqwest::redirect::Policy;
use serde_json::Value;
use sha2::{Digest, Sha256};
use url::Url;

use crate::support::idp::{TestIdp, sign_in};

/// A port nothing listens on: the IdP must accept a loopback callback on any port (RFC 8252).
fn unregistered_loopback_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap()
}

fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(Policy::none())
        .build()
        .unwrap()
}

async fn discovery(idp: &TestIdp) -> Value {
    let url = format!("{}/.well-known/openid-configuration", idp.issuer);
    let response = http().get(&url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "GET {url}");
    response.json().await.unwrap()
}

fn endpoint(discovery: &Value, name: &str) -> String {
    discovery[name]
        .as_str()
        .unwrap_or_else(|| panic!("discovery has no {name}"))
        .to_owned()
}

/// What the client side of one flow knows after the browser comes back.
struct Callback {
    code: String,
    redirect_uri: String,
    verifier: String,
}

/// Sends a browser through the IdP as `login` and checks the callback it comes back with.
async fn authorize(idp: &TestIdp, discovery: &Value, login: &str, provider_id: &str) -> Callback {
    // Arrange: PKCE by hand (RFC 7636 §4.1-4.2), independent of Portcullis' own helper.
    let verifier = portcullis::crypto::random_token(32);
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let state = portcullis::crypto::random_token(16);
    let redirect_uri = format!(
        "http://127.0.0.1:{}/callback/{provider_id}",
        unregistered_loopback_port()
    );
    let authorize_url = Url::parse_with_params(
        &endpoint(discovery, "authorization_endpoint"),
        [
            ("response_type", "code"),
            ("client_id", idp.client_id.as_str()),
            ("redirect_uri", redirect_uri.as_str()),
            ("scope", "openid email profile offline_access"),
            ("state", state.as_str()),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ],
    )
    .unwrap();

    // Act
    let callback = sign_in(&browser(), authorize_url.as_str(), login).await;

    // Assert: back at exactly the redirect URI, with the state and the issuer (RFC 9207).
    let mut without_query = callback.clone();
    without_query.set_query(None);
    assert_eq!(without_query.as_str(), redirect_uri);
    let params: std::collections::HashMap<String, String> =
        callback.query_pairs().into_owned().collect();
    assert_eq!(
        params.get("error"),
        None,
        "the IdP answered an error: {callback}"
    );
    assert_eq!(params.get("state"), Some(&state));
    assert_eq!(params.get("iss"), Some(&idp.issuer));
    let code = params
        .get("code")
        .unwrap_or_else(|| panic!("no code in {callback}"))
        .clone();
    Callback {
        code,
        redirect_uri,
        verifier,
    }
}

async fn token_request(request: reqwest::RequestBuilder) -> Value {
    let response = request.send().await.unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "token endpoint answered {body}");
    body
}

async fn userinfo(discovery: &Value, access_token: &str) -> Value {
    let response = http()
        .get(endpoint(discovery, "userinfo_endpoint"))
        .bearer_auth(access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

#[tokio::test]
async fn a_code_flow_with_pkce_on_an_unregistered_loopback_port_yields_tokens_and_a_verified_email()
{
    let idp = TestIdp::from_env();
    let discovery = discovery(&idp).await;
    assert_eq!(discovery["issuer"], idp.issuer.as_str());
    let callback = authorize(&idp, &discovery, "alice", "corp").await;

    // The code exchange, client_secret_basic.
    let tokens = token_request(
        http()
            .post(endpoint(&discovery, "token_endpoint"))
            .basic_auth(&idp.client_id, Some(&idp.client_secret))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", callback.code.as_str()),
                ("redirect_uri", callback.redirect_uri.as_str()),
                ("code_verifier", callback.verifier.as_str()),
            ]),
    )
    .await;
    assert_eq!(tokens["token_type"], "Bearer");
    assert!(tokens["id_token"].is_string(), "no id_token in {tokens}");
    assert!(
        tokens["refresh_token"].is_string(),
        "no refresh_token in {tokens}"
    );
    let access_token = tokens["access_token"].as_str().expect("no access_token");

    let claims = userinfo(&discovery, access_token).await;
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["email"], "alice@example.com");
    assert_eq!(claims["email_verified"], true);
    assert_eq!(claims["name"], "alice");

    // The refresh token works, here with client_secret_post, and yields a usable access token.
    let refresh_token = tokens["refresh_token"].as_str().unwrap();
    let refreshed = token_request(http().post(endpoint(&discovery, "token_endpoint")).form(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
        ("client_id", idp.client_id.as_str()),
        ("client_secret", idp.client_secret.as_str()),
    ]))
    .await;
    let new_access_token = refreshed["access_token"].as_str().expect("no access_token");
    assert_ne!(new_access_token, access_token);
    assert_eq!(
        userinfo(&discovery, new_access_token).await["email"],
        "alice@example.com"
    );
}

#[tokio::test]
async fn a_login_that_is_an_email_address_is_the_users_email_for_any_provider_id() {
    let idp = TestIdp::from_env();
    let discovery = discovery(&idp).await;
    let callback = authorize(&idp, &discovery, "bob@corp.test", "another-provider").await;

    let tokens = token_request(
        http()
            .post(endpoint(&discovery, "token_endpoint"))
            .basic_auth(&idp.client_id, Some(&idp.client_secret))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", callback.code.as_str()),
                ("redirect_uri", callback.redirect_uri.as_str()),
                ("code_verifier", callback.verifier.as_str()),
            ]),
    )
    .await;

    let claims = userinfo(&discovery, tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(claims["sub"], "bob@corp.test");
    assert_eq!(claims["email"], "bob@corp.test");
}

#[tokio::test]
async fn a_redirect_uri_off_loopback_is_refused_without_redirecting() {
    let idp = TestIdp::from_env();
    let discovery = discovery(&idp).await;
    let authorize_url = Url::parse_with_params(
        &endpoint(&discovery, "authorization_endpoint"),
        [
            ("response_type", "code"),
            ("client_id", idp.client_id.as_str()),
            ("redirect_uri", "http://attacker.test:8080/callback/corp"),
            ("scope", "openid"),
            ("state", "s"),
            (
                "code_challenge",
                "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            ),
            ("code_challenge_method", "S256"),
        ],
    )
    .unwrap();

    let response = browser().get(authorize_url).send().await.unwrap();

    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn an_idp_of_a_tests_own_issues_access_tokens_with_the_lifetime_asked_for() {
    let own = TestIdp::spawn(2).await;
    let idp = &own.idp;
    let discovery = discovery(idp).await;
    let callback = authorize(idp, &discovery, "carol", "corp").await;

    let tokens = token_request(
        http()
            .post(endpoint(&discovery, "token_endpoint"))
            .basic_auth(&idp.client_id, Some(&idp.client_secret))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", callback.code.as_str()),
                ("redirect_uri", callback.redirect_uri.as_str()),
                ("code_verifier", callback.verifier.as_str()),
            ]),
    )
    .await;

    assert_eq!(tokens["expires_in"], 2);
}
