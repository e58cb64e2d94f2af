use std::collections::HashMap;

use axum::body::Body;
use axum::http::Request;
use tower::ServiceExt;

use super::*;
use crate::config::ProviderKind;

/// The RFC 7636 Appendix B verifier.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

fn base() -> Url {
    Url::parse("https://example.com/auth").unwrap()
}

fn secrets() -> Secrets {
    Secrets::from_keys(&[Secrets::generate_key()]).unwrap()
}

fn provider(secrets: Secrets) -> DevProvider {
    let settings = ProviderSettings {
        id: "dev".into(),
        display_name: "dev".into(),
        logo: None,
        grant_scopes: None,
        admission: Default::default(),
        claim_roles: Default::default(),
        require_upstream_session: false,
        kind: ProviderKind::Dev,
    };
    DevProvider::new(&settings, &base(), secrets)
}

fn callback() -> String {
    "https://example.com/auth/callback/dev".into()
}

fn form(redirect_uri: &str, email: &str) -> String {
    serde_urlencoded::to_string([
        ("provider", "dev"),
        ("state", "state-1"),
        ("nonce", "nonce-1"),
        ("code_challenge", &pkce_s256(VERIFIER)),
        ("redirect_uri", redirect_uri),
        ("email", email),
    ])
    .unwrap()
}

/// The configured roles the form offers.
fn roles() -> Vec<String> {
    vec!["admin".into(), "reader".into()]
}

async fn post(secrets: Secrets, body: String) -> Response {
    let request = Request::post(SIGN_IN_PATH)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(body))
        .unwrap();
    router::<()>(secrets, base(), crate::clock::Clock::default(), roles())
        .oneshot(request)
        .await
        .unwrap()
}

async fn body_text(response: Response) -> String {
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    String::from_utf8(bytes.to_vec()).unwrap()
}

/// Signs in through the form and returns the code from the callback redirect.
async fn sign_in(secrets: &Secrets, email: &str) -> String {
    let response = post(secrets.clone(), form(&callback(), email)).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let location = Url::parse(response.headers()[header::LOCATION].to_str().unwrap()).unwrap();
    assert_eq!(
        location.as_str().split('?').next(),
        Some(callback().as_str())
    );
    let query: HashMap<String, String> = location.query_pairs().into_owned().collect();
    assert_eq!(query["state"], "state-1");
    query["code"].clone()
}

#[test]
fn the_authorization_url_keeps_the_public_path_prefix() {
    let provider = provider(secrets());
    let challenge = pkce_s256(VERIFIER);
    let redirect_uri = Url::parse(&callback()).unwrap();
    let request = AuthorizationRequest {
        state: "s",
        nonce: "n",
        pkce_challenge: &challenge,
        redirect_uri: &redirect_uri,
    };

    let url = provider.authorization_url(&request).unwrap();

    assert_eq!(
        url.as_str().split('?').next(),
        Some("https://example.com/auth/dev/sign-in")
    );
    let query: HashMap<String, String> = url.query_pairs().into_owned().collect();
    assert_eq!(query["provider"], "dev");
    assert_eq!(query["code_challenge"], challenge);
    assert_eq!(query["redirect_uri"], callback());
    let root = join_public(&Url::parse("http://127.0.0.1:8080").unwrap(), SIGN_IN_PATH);
    assert_eq!(root.as_str(), "http://127.0.0.1:8080/dev/sign-in");
}

#[tokio::test]
async fn the_sign_in_page_renders_the_form_with_security_headers() {
    let challenge = pkce_s256(VERIFIER);
    let query = serde_urlencoded::to_string([
        ("provider", "dev"),
        ("state", "state-1"),
        ("nonce", "nonce-1"),
        ("code_challenge", challenge.as_str()),
        ("redirect_uri", &callback()),
    ])
    .unwrap();
    let request = Request::get(format!("{SIGN_IN_PATH}?{query}"))
        .body(Body::empty())
        .unwrap();

    let response = router::<()>(secrets(), base(), crate::clock::Clock::default(), roles())
        .oneshot(request)
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::OK);
    let csp = response.headers()[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap();
    assert!(csp.contains("frame-ancestors 'none'"));
    assert_eq!(response.headers()[header::X_FRAME_OPTIONS], "DENY");
    let html = body_text(response).await;
    assert!(
        html.contains(r#"href="/auth/static/portcullis.css""#),
        "{html}"
    );
    assert!(html.contains(r#"action="/auth/dev/sign-in""#));
    assert!(html.contains(r#"name="state" value="state-1""#));
    assert!(
        html.contains(r#"<option value="admin">admin</option>"#),
        "{html}"
    );
}

#[tokio::test]
async fn a_role_picked_on_the_form_is_the_identitys_role_claim() {
    let secrets = secrets();
    let picked = post(
        secrets.clone(),
        format!("{}&role=admin", form(&callback(), "ada@example.com")),
    )
    .await;
    assert_eq!(picked.status(), StatusCode::SEE_OTHER);
    let location = picked.headers()[header::LOCATION].to_str().unwrap();
    let code = Url::parse(location)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let identity = provider(secrets.clone())
        .exchange(&code, VERIFIER, "nonce-1", &base(), Utc::now())
        .await
        .unwrap();
    assert_eq!(identity.claims, serde_json::json!({"role": "admin"}));

    let unknown = post(
        secrets,
        format!("{}&role=owner", form(&callback(), "ada@example.com")),
    )
    .await;
    assert_eq!(unknown.status(), StatusCode::BAD_REQUEST);
    assert!(
        body_text(unknown)
            .await
            .contains("Choose one of the listed roles.")
    );
}

#[tokio::test]
async fn the_code_round_trips_into_an_identity() {
    let secrets = secrets();
    let code = sign_in(&secrets, "  Ada@Example.com ").await;
    let now = Utc::now();

    let identity = provider(secrets)
        .exchange(&code, VERIFIER, "nonce-1", &base(), now)
        .await
        .unwrap();

    assert_eq!(identity.subject, "ada@example.com");
    assert_eq!(identity.email.as_deref(), Some("Ada@Example.com"));
    assert!(identity.email_verified);
    assert!(identity.tokens.access_token.is_some() && identity.tokens.refresh_token.is_some());
    assert_eq!(
        identity.tokens.expires_at,
        Some(now + chrono::Duration::seconds(3600))
    );
}

#[tokio::test]
async fn a_wrong_verifier_or_nonce_is_rejected() {
    let secrets = secrets();
    let code = sign_in(&secrets, "ada@example.com").await;
    let provider = provider(secrets);
    let other_verifier = "x".repeat(43);

    let err = provider
        .exchange(&code, &other_verifier, "nonce-1", &base(), Utc::now())
        .await
        .unwrap_err();
    assert!(matches!(err, UpstreamError::Refused(_)), "{err}");
    let err = provider
        .exchange(&code, VERIFIER, "nonce-2", &base(), Utc::now())
        .await
        .unwrap_err();
    assert!(matches!(err, UpstreamError::Invalid(_)), "{err}");
}

#[tokio::test]
async fn a_code_older_than_two_minutes_is_rejected() {
    let secrets = secrets();
    let code = sign_in(&secrets, "ada@example.com").await;
    let later = Utc::now() + chrono::Duration::seconds(CODE_TTL_SECS + 1);

    let err = provider(secrets)
        .exchange(&code, VERIFIER, "nonce-1", &base(), later)
        .await
        .unwrap_err();

    assert!(
        matches!(&err, UpstreamError::Refused(msg) if msg.contains("expired")),
        "{err}"
    );
}

#[tokio::test]
async fn a_code_from_other_keys_is_rejected() {
    let code = sign_in(&secrets(), "ada@example.com").await;

    let err = provider(secrets())
        .exchange(&code, VERIFIER, "nonce-1", &base(), Utc::now())
        .await
        .unwrap_err();

    assert!(matches!(err, UpstreamError::Refused(_)), "{err}");
}

#[tokio::test]
async fn the_form_refuses_a_foreign_redirect_uri() {
    for foreign in [
        "https://evil.example/callback/dev",
        "https://example.com/callback/dev",
        "https://example.com/auth/callback/dev?x=1",
        "https://example.com/auth/callback/other",
    ] {
        let response = post(secrets(), form(foreign, "ada@example.com")).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{foreign}");
        assert!(response.headers().get(header::LOCATION).is_none());
    }
}

#[tokio::test]
async fn an_invalid_email_re_renders_the_form_with_an_error() {
    for email in [
        "",
        "no-at-sign",
        "a@b@c",
        "@example.com",
        "ada@",
        "a b@example.com",
        &format!("{}@x.io", "a".repeat(250)),
    ] {
        let response = post(secrets(), form(&callback(), email)).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{email}");
        let html = body_text(response).await;
        assert!(
            html.contains(r#"class="error""#) && html.contains(r#"name="email""#),
            "{email}"
        );
    }
}

#[tokio::test]
async fn refresh_returns_new_random_tokens() {
    let provider = provider(secrets());
    let first = provider.refresh("old", Utc::now()).await.unwrap();
    let second = provider.refresh("old", Utc::now()).await.unwrap();
    assert!(first.access_token.is_some() && first.access_token != second.access_token);
    assert!(first.refresh_token.is_some() && first.refresh_token != second.refresh_token);
}
